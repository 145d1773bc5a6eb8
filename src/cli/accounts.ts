/**
 * `dinhdanh accounts`: persons (citizens) — registering, listing, and the operators' actions on an account.
 */
import { Option, type Command } from 'commander';
import { AccountAdminError, AccountInputError, maskPid } from '../accounts/index.js';
import { UsageError, breakGlass, needProposer, operatorsExist, proposalOf, type CliContext, type CliServices } from './shared.js';

const ACCOUNT_LIST_MAX = 1000;

export function registerAccountCommands(program: Command, cli: CliContext): void {
  const { io, config, operatorFor, print, printProposal, withServices } = cli;
  const accounts = program.command('accounts').description('persons (citizens)');
  accounts.command('add')
    .description('register a person; the password is read from standard input')
    .requiredOption('--pid <12 digits>', 'personal identification number')
    .requiredOption('--name <full name>', 'full name, family name first')
    .requiredOption('--birthdate <YYYY-MM-DD>', 'date of birth')
    .addOption(new Option('--gender <gender>', 'male or female').makeOptionMandatory())
    .option('--email <address>', 'e-mail address')
    .option('--phone <number>', 'phone number (0912345678 or +84912345678)')
    .option('--contacts-verified', 'the phone and e-mail were shown to be the person\'s at the counter (a code sent to each, answered there): they can then recover the account')
    .option('--level <1|2>', 'identity level; 2 only while no operator exists (then: accounts set-level, approved by a second operator)', '1')
    .option('--password-stdin', 'read the password from standard input (required)')
    .option('--json', 'print JSON')
    .action(async (opts: { pid: string; name: string; birthdate: string; gender: string; email?: string; phone?: string; contactsVerified?: boolean; level: string; passwordStdin?: boolean; json?: boolean }) => {
      if (!opts.passwordStdin) {
        throw new UsageError('pass --password-stdin and pipe the password on standard input (passwords are never taken as arguments: they would land in shell history and process lists)');
      }
      const raw = await io.readStdin();
      const password = raw.replace(/\r?\n$/, '');
      if (!password) throw new UsageError('no password on standard input');
      const operator = operatorFor(config());
      await withServices(async (s) => {
        // Level 2 is the in-person verification's, approved by a second operator once operators
        // exist (two-person control, admin/approvals.service.ts): registering at level 2 would skip it.
        if (opts.level === '2' && (await operatorsExist(s))) {
          throw new UsageError('--level 2 is refused once operators exist: create the account at level 1, then raise it with `accounts set-level <pid> 2` (a second operator approves)');
        }
        const person = await s.accounts.create({
          pid: opts.pid, name: opts.name, birthdate: opts.birthdate, gender: opts.gender,
          email: opts.email, phone: opts.phone, level: opts.level, password, contactsVerified: !!opts.contactsVerified,
        }, { operator });
        print({ json: !!opts.json }, { id: person.id }, () => `registered ${maskPid(person.pid)} as ${person.id}`);
      }, AccountInputError);
    });
  accounts.command('list')
    .description('list persons (identification numbers masked)')
    .option('--limit <n>', `at most n persons (1–${ACCOUNT_LIST_MAX})`, '100')
    .option('--offset <n>', 'skip the first n persons', '0')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; offset: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > ACCOUNT_LIST_MAX) {
        throw new UsageError(`--limit must be a whole number from 1 to ${ACCOUNT_LIST_MAX}`);
      }
      if (!/^\d+$/.test(opts.offset)) throw new UsageError('--offset must be a whole number');
      await withServices(async (s) => {
        const list = await s.accounts.list({ limit: Number(opts.limit), offset: Number(opts.offset) });
        const total = await s.store.persons.count();
        const rows = list.map((p) => ({ id: p.id, pid: maskPid(p.pid), name: p.name, level: p.level, status: p.status, created_at: new Date(p.createdAt).toISOString() }));
        print({ json: !!opts.json }, { total, accounts: rows }, () =>
          rows.length ? rows.map((r) => `${r.id}  ${r.pid}  level ${r.level}  ${r.status}  ${r.name}`).join('\n') : 'no accounts');
      });
    });

  /** Runs an account action; bad input exits 2 with its message. */
  const adminAction = <T>(fn: (s: CliServices) => Promise<T>): Promise<T> => withServices(fn, AccountAdminError);
  accounts.command('show')
    .description('one person: level, status, second factors, and the operators\' actions with their evidence (numbers masked)')
    .argument('<pid>', 'personal identification number (12 digits)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { json?: boolean }) => {
      const shown = await adminAction((s) => s.accountAdmin.show(pid));
      print({ json: !!opts.json }, { account: shown }, () => [
        `${shown.pid}  ${shown.name}  level ${shown.level}  ${shown.status}  (${shown.id})`,
        ...shown.factors.map((f) => `  factor ${f.type}  ${f.label}  since ${f.created_at}`),
        `  recovery codes left: ${shown.recovery_codes_left}`,
        ...shown.contacts.map((c) => `  ${c.kind} ${c.value}${c.verified ? ' (verified)' : ''}`),
        ...(shown.lock_reason ? [`  locked by: ${shown.lock_reason}${shown.lock_reason === 'self' ? ' (the person: recovery with the second factor, or the counter, unlocks it)' : ''}`] : []),
        ...(shown.attention ? [`  ATTENTION: ${shown.attention.reason === 'not_me' ? '"this wasn\'t me" reported' : shown.attention.reason} at ${shown.attention.at}${shown.password_reset_required ? '; the password may not be used until recovery replaces it' : ''} (accounts clear-attention when looked at)`] : []),
        ...(shown.account_reset ? [`  account reset asked online ${shown.account_reset.requested_at}: ${shown.account_reset.status}, link to the phone ${shown.account_reset.status === 'ready' ? 'sent' : 'at'} ${shown.account_reset.ready_at} (accounts reset-mfa at the counter drops it)`] : []),
        ...shown.actions.map((a) => `  ${a.at}  ${a.action} by ${a.operator}: ${a.reason}`),
      ].join('\n'));
    });
  /** The person's id after an action carried out at once (its JSON answer names it, as before operators existed). */
  const personOf = async (s: CliServices, pid: string) => {
    const p = await s.store.persons.findByPid(pid);
    if (!p) throw new UsageError(`no account with identification number ${maskPid(pid)}`);
    return p;
  };
  // Every action below goes through the operators' door (admin/actions.ts): the actor's role, never
  // on one's own account, and the two-person ones proposed once operators exist.
  accounts.command('lock')
    .description('lock an account: no sign-in, its tokens stop working, every session ends (portals told by back-channel logout)')
    .argument('<pid>', 'personal identification number (12 digits)')
    .requiredOption('--reason <text>', 'why (recorded and audited)')
    .option('--fraud', 'suspected takeover or misuse: unlocking it then needs a second operator')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason: string; fraud?: boolean; json?: boolean }) => {
      const operator = operatorFor(config());
      const p = await adminAction(async (s) => {
        await s.adminActions.accounts.lock(await s.operators.cliActor(operator), pid, opts.reason, { fraud: !!opts.fraud });
        return personOf(s, pid);
      });
      print({ json: !!opts.json }, { id: p.id, status: 'locked', ...(opts.fraud ? { lock_reason: 'fraud' } : {}) }, () =>
        `locked ${maskPid(p.pid)} (${p.id})${opts.fraud ? ' for fraud (unlocking needs a second operator)' : ''}; its sessions end within seconds on a running server`);
    });
  accounts.command('clear-attention')
    .description('clear the attention flag of an account (set when its owner reported a sign-in as "this wasn\'t me") once it has been looked at')
    .argument('<pid>', 'personal identification number (12 digits)')
    .requiredOption('--reason <text>', 'what was found (recorded and audited)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason: string; json?: boolean }) => {
      const operator = operatorFor(config());
      const p = await adminAction(async (s) => {
        await s.adminActions.accounts.clearAttention(await s.operators.cliActor(operator), pid, opts.reason);
        return personOf(s, pid);
      });
      print({ json: !!opts.json }, { id: p.id, attention: null }, () => `attention cleared for ${maskPid(p.pid)} (${p.id})`);
    });
  accounts.command('unlock')
    .description('unlock an account (locked by an operator or after too many failed sign-ins) and clear its failure count; a fraud lock is proposed to a second operator')
    .argument('<pid>', 'personal identification number (12 digits)')
    .option('--reason <text>', 'why (recorded and audited; required for a fraud lock)')
    .option('--break-glass', 'a fraud lock: a registered admin, alone and at once (recorded as such)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason?: string; breakGlass?: boolean; json?: boolean }) => {
      const operator = operatorFor(config());
      const done = await adminAction(async (s) => {
        const actor = await s.operators.cliActor(operator);
        const alone = breakGlass(actor, opts);
        const p = /^\d{12}$/.test(pid) ? await s.store.persons.findByPid(pid) : undefined;
        const fraud = p?.status === 'locked' && p.lockReason === 'fraud';
        if (fraud) needProposer(actor, 'unlocking an account locked for fraud');
        let reason = opts.reason;
        if (reason === undefined) {
          // A second operator decides on a fraud unlock: they read why.
          if (fraud) throw new UsageError('--reason is required to unlock an account locked for fraud (a second operator approves it)');
          reason = 'unlocked';
        }
        const approval = proposalOf(await s.adminActions.accounts.unlock(actor, pid, reason, { breakGlass: alone }));
        return approval ? { approval } : { person: await personOf(s, pid) };
      });
      if (done.approval) printProposal({ json: !!opts.json }, done.approval);
      else print({ json: !!opts.json }, { id: done.person!.id, status: 'active' }, () => `unlocked ${maskPid(done.person!.pid)} (${done.person!.id})`);
    });
  accounts.command('set-level')
    .description('set the identity level; level 2 needs the in-person verification\'s evidence, and a second operator\'s approval once operators exist')
    .argument('<pid>', 'personal identification number (12 digits)')
    .argument('<level>', '1 or 2')
    .requiredOption('--reason <text>', 'why (recorded and audited)')
    .option('--document-type <type>', 'level 2: cccd, cccd-chip, can-cuoc or passport')
    .option('--document-number <number>', 'level 2: the document\'s number (stored; masked in logs)')
    .option('--place <text>', 'level 2: where the person was verified')
    .option('--break-glass', 'level 2: a registered admin, alone and at once (recorded as such)')
    .option('--json', 'print JSON')
    .action(async (pid: string, level: string, opts: { reason: string; documentType?: string; documentNumber?: string; place?: string; breakGlass?: boolean; json?: boolean }) => {
      if (level === '2') {
        for (const [flag, value, what] of [
          ['--document-type', opts.documentType, 'cccd, cccd-chip, can-cuoc or passport'],
          ['--document-number', opts.documentNumber, 'the document\'s number'],
          ['--place', opts.place, 'where the person was verified'],
        ] as const) if (value === undefined) throw new UsageError(`${flag} is required for level 2: ${what}`);
      }
      const operator = operatorFor(config());
      const done = await adminAction(async (s) => {
        const actor = await s.operators.cliActor(operator);
        const alone = breakGlass(actor, opts);
        if (level === '2') needProposer(actor, 'raising an account to level 2');
        const approval = proposalOf(await s.adminActions.accounts.setLevel(actor, pid, level, opts.reason, {
          documentType: opts.documentType, documentNumber: opts.documentNumber, place: opts.place,
        }, { breakGlass: alone }));
        return approval ? { approval } : { person: await personOf(s, pid) };
      });
      if (done.approval) printProposal({ json: !!opts.json }, done.approval);
      else print({ json: !!opts.json }, { id: done.person!.id, level: done.person!.level }, () => `${maskPid(done.person!.pid)} is now at identity level ${done.person!.level}`);
    });
  accounts.command('reset-mfa')
    .description('remove every second factor and recovery code after re-verifying the person (they set up a new one at the next sign-in that needs it)')
    .argument('<pid>', 'personal identification number (12 digits)')
    .requiredOption('--reason <text>', 'why (recorded and audited)')
    .requiredOption('--evidence <text>', 'how the person was re-verified')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason: string; evidence: string; json?: boolean }) => {
      const operator = operatorFor(config());
      const r = await adminAction(async (s) => {
        const { removed } = await s.adminActions.accounts.resetMfa(await s.operators.cliActor(operator), pid, opts.reason, opts.evidence);
        return { person: await personOf(s, pid), removed: removed ?? 0 };
      });
      print({ json: !!opts.json }, { id: r.person.id, factors_removed: r.removed }, () => `removed ${r.removed} second factor(s) and the recovery codes of ${maskPid(r.person.pid)}`);
    });
}
