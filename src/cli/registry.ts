/**
 * `dinhdanh registry`: the population registry (PRODUCT.md, "Population registry"). `add` appends a
 * person to a file registry (the development and test stand-in); `check` asks the configured
 * registry, file or https adapter, as registration would (operators' diagnostics).
 */
import { Option, type Command } from 'commander';
import pino from 'pino';
import { maskPid } from '../accounts/index.js';
import { appendRegistryRecord, createRegistry, RegistryInputError, validateRegistryRecord, type RegistryRecordInput } from '../registry/index.js';
import { checkInput, UsageError, type CliContext } from './shared.js';

interface PersonOptions {
  pid: string;
  name: string;
  birthdate: string;
  gender: string;
  phone?: string;
  json?: boolean;
}

/** The options `add` and `check` share: the details registration asks for. */
function personOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--pid <12 digits>', 'personal identification number')
    .requiredOption('--name <full name>', 'full name, family name first, with its diacritics')
    .requiredOption('--birthdate <YYYY-MM-DD>', 'date of birth')
    .addOption(new Option('--gender <gender>', 'male or female').makeOptionMandatory())
    .option('--phone <number>', 'mobile number registered in the person\'s name (0912345678 or +84912345678)')
    .option('--json', 'print JSON');
}

const toInput = (opts: PersonOptions): RegistryRecordInput => ({
  pid: opts.pid, fullName: opts.name, birthdate: opts.birthdate, gender: opts.gender, phone: opts.phone,
});

export function registerRegistryCommands(program: Command, cli: CliContext): void {
  const { config, operatorFor, print, withServices } = cli;
  const registry = program.command('registry').description('the population registry: add to a file registry, ask the configured one');

  personOptions(registry.command('add')
    .description('append a person to the file registry (DINHDANH_REGISTRY=file:…; development and tests); the server sees it at once'))
    .action(async (opts: PersonOptions) => {
      const cfg = config();
      const file = cfg.registry.path;
      if (file === null) {
        throw new UsageError('registry add writes to a file registry only; DINHDANH_REGISTRY is the national population database\'s adapter, which dinhdanh asks and never writes to');
      }
      // Bad details are refused before the store is opened.
      checkInput(() => validateRegistryRecord(toInput(opts)), RegistryInputError);
      const operator = operatorFor(cfg);
      await withServices(async (s) => {
        const record = await appendRegistryRecord(file, toInput(opts));
        s.audit.record('REGISTRY_RECORD_ADDED', { operator, pid: maskPid(record.pid) });
        print({ json: !!opts.json }, { pid: maskPid(record.pid), added: true }, () => `added ${maskPid(record.pid)} to the registry file ${file}`);
      }, RegistryInputError);
    });

  personOptions(registry.command('check')
    .description('ask the configured registry whether these details match a person, as registration does (match, no_match or unavailable; exit 0 for any answer)'))
    .action(async (opts: PersonOptions) => {
      const record = checkInput(() => validateRegistryRecord(toInput(opts)), RegistryInputError);
      const cfg = config();
      // Why a registry is unavailable (timeout, status, refused address) goes to stderr at warn.
      const reg = createRegistry(cfg, { logger: pino({ level: 'warn' }, pino.destination(2)) });
      const result = await reg.verify({
        pid: record.pid, fullName: record.full_name, birthdate: record.birthdate, gender: record.gender, phone: record.phone,
      });
      print({ json: !!opts.json }, { result, registry: reg.kind }, () => `${result} (${reg.kind} registry)`);
    });
}
