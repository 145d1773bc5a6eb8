/**
 * The `dinhdanh` command. Every command takes `--json` and then prints exactly one JSON object on
 * stdout; bad input exits 2 with a message that says what to fix; failures exit 1. The CLI opens
 * the same store as the server, so it works while the server runs.
 *
 * This file assembles the command groups (a file each) and maps errors to exit codes; what they
 * share is in shared.ts.
 */
import { Command, CommanderError } from 'commander';
import { AdminError } from '../admin/index.js';
import { ConfigError } from '../config/config.js';
import { KeyMaterialError } from '../keys/key-files.js';
import { registerAccountCommands } from './accounts.js';
import { registerApprovalCommands } from './approvals.js';
import { registerAuditCommands } from './audit.js';
import { registerKeyCommands } from './keys.js';
import { registerOperatorCommands } from './operators.js';
import { registerOrgCommands } from './orgs.js';
import { registerPortalCommands } from './portals.js';
import { registerRegistryCommands } from './registry.js';
import { registerResourceCommands } from './resources.js';
import { UsageError, VerifyFailed, createCliContext, type CliIo } from './shared.js';
import { registerStatsCommands } from './stats.js';
import { registerEventsCommands } from './events.js';
import { registerStoreCommands } from './store.js';

export { UsageError, type CliIo } from './shared.js';

export function buildProgram(io: CliIo): { program: Command; run: (argv: string[]) => Promise<number> } {
  const program = new Command('dinhdanh')
    .description('dinhdanh — national electronic identification and authentication provider')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .addHelpText('after', '\nA registered operator acts as themself with --operator <their 12-digit number> --code-stdin,\nthe current code of their authenticator app piped on standard input (e.g. `read -s c; echo "$c" | dinhdanh ...`).');
  const cli = createCliContext(io);

  program.command('serve').description('serve the provider (same as npm start)').option('--json', 'accepted for uniformity; logs are JSON already')
    .action(async () => {
      const { serve } = await import('../main.js');
      await serve();
      await new Promise(() => {}); // serve until a signal ends the process
    });

  // In this order: it is the order of `dinhdanh --help`.
  registerKeyCommands(program, cli);
  registerPortalCommands(program, cli);
  registerResourceCommands(program, cli);
  registerOrgCommands(program, cli);
  registerStoreCommands(program, cli);
  registerAccountCommands(program, cli);
  registerRegistryCommands(program, cli);
  registerAuditCommands(program, cli);
  registerStatsCommands(program, cli);
  registerEventsCommands(program, cli);
  registerOperatorCommands(program, cli);
  registerApprovalCommands(program, cli);

  async function run(rawArgv: string[]): Promise<number> {
    const json = rawArgv.includes('--json');
    const argv = [...rawArgv];
    const at = argv.indexOf('--operator');
    if (at !== -1) {
      cli.operator = argv[at + 1] ?? '';
      argv.splice(at, 2);
    } else {
      const inline = argv.findIndex((a) => a.startsWith('--operator='));
      if (inline !== -1) cli.operator = argv.splice(inline, 1)[0]!.slice('--operator='.length);
    }
    // `--code-stdin` too, from anywhere: it goes with `--operator` (shared.ts, proveOperator).
    const codeAt = argv.indexOf('--code-stdin');
    if (codeAt !== -1) {
      cli.codeStdin = true;
      argv.splice(codeAt, 1);
    }
    const fail = (code: number, message: string) => {
      io.stderr(`dinhdanh: ${message}\n`);
      if (json) io.stdout(`${JSON.stringify({ error: message })}\n`);
      return code;
    };
    try {
      await program.parseAsync(argv, { from: 'user' });
      return 0;
    } catch (err) {
      if (err instanceof CommanderError) {
        if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
        // Commander has already printed its message to stderr.
        if (json) io.stdout(`${JSON.stringify({ error: err.message.replace(/^error: /, '') })}\n`);
        return 2;
      }
      if (err instanceof VerifyFailed) return 1;
      // A refusal of the operators' rules (role, own account, self-approval, lapsed) is the caller's to fix.
      if (err instanceof UsageError || err instanceof ConfigError || err instanceof AdminError) return fail(2, err.message);
      if (err instanceof KeyMaterialError) return fail(1, err.message);
      return fail(1, (err as Error).message);
    }
  }

  return { program, run };
}
