/**
 * What every command group of `dinhdanh` shares: its input and output, the errors that decide the
 * exit code, the configuration and the operator, and `withServices`, which opens the services (and
 * so the store) for one command and always closes them.
 */
import { withCause } from '../events/set.js';
import os from 'node:os';
import pino from 'pino';
import { loadConfig, parseOperator, type Config } from '../config/config.js';
import { AdminError, type Actor, type Requested } from '../admin/index.js';
import { maskPid } from '../accounts/index.js';
import { createTotpService } from '../mfa/index.js';
import { composeServices } from '../services.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readStdin: () => Promise<string>;
}

/** `audit verify` found a broken chain: exit 1 (its message is already printed). */
export class VerifyFailed extends Error {}

/** Bad input: exit 2 with a message saying what to fix. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Output {
  json: boolean;
}

/** Commander's argument parser for a repeatable option. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

// The CLI logs security events at warn and above only; its output is the JSON it prints.
async function openServices(cfg: Config) {
  const s = await composeServices(cfg, { logger: pino({ level: 'warn' }, pino.destination(2)) });
  // Closing the store first waits for the audit entries this command recorded.
  const close = s.store.close.bind(s.store);
  return { ...s, store: { ...s.store, close: async () => { await s.audit.flush(); await s.activity.settled(); await s.securityEvents.settled(); await close(); } } };
}

export type CliServices = Awaited<ReturnType<typeof openServices>>;

/** An error class whose errors are the caller's bad input. */
type InputErrorClass = abstract new (...args: never[]) => Error;

/** Rethrows `err`, as a UsageError (exit 2, its message) when it is one of `inputErrors`. */
function rethrow(err: unknown, inputErrors: readonly InputErrorClass[]): never {
  if (inputErrors.some((E) => err instanceof E)) throw new UsageError((err as Error).message);
  throw err;
}

/** Runs a parsing or validation step whose errors of `inputErrors` are bad input (exit 2 with their message). */
export function checkInput<T>(fn: () => T, ...inputErrors: InputErrorClass[]): T {
  try {
    return fn();
  } catch (err) {
    rethrow(err, inputErrors);
  }
}

/**
 * `--break-glass` (approvals.service.ts): an admin acting alone, at once, from the command line —
 * only with `--reason`, and only as a registered operator (the service then checks the admin role).
 * Returns whether it was asked for.
 */
export function breakGlass(actor: Actor, opts: { breakGlass?: boolean; reason?: string }): boolean {
  if (!opts.breakGlass) return false;
  if (opts.reason === undefined) throw new UsageError('--break-glass needs --reason <text>: why this cannot wait for a second operator (recorded in the audit log)');
  needRegistered(actor, '--break-glass');
  return true;
}

/** What a registered operator adds to the command line to act as themself. */
const NAME_YOURSELF = 'name yourself with --operator <your 12-digit number> and prove it with --code-stdin (a current code from your authenticator app on standard input)';

/**
 * Refuses the host's operator (`cli:<name>`, operators.service.ts cliActor) where a registered
 * operator must answer for the act: deciding proposals, managing operators, break-glass.
 */
export function needRegistered(actor: Actor, what: string): void {
  if (actor.id.startsWith('cli:')) throw new AdminError('forbidden', `${what} is for a registered operator: ${NAME_YOURSELF}`);
}

/**
 * Refuses the host's operator as the proposer of a two-person action once operators exist: a
 * proposal by `cli:<name>` names nobody, so whoever can run the command could propose under that
 * name and approve as themself. The bootstrap actor (no operator yet) still acts at once.
 */
export function needProposer(actor: Actor, what: string): void {
  if (actor.bootstrap) return;
  if (actor.id.startsWith('cli:')) throw new AdminError('forbidden', `${what} is a two-person action once operators exist, proposed by a registered operator: ${NAME_YOURSELF}`);
}

/**
 * Whether this store is past its bootstrap (an operator exists): creating a level-2 account or a
 * portal approved for national_id then goes through two-person control instead.
 */
export async function operatorsExist(s: CliServices): Promise<boolean> {
  return (await s.operators.count()) > 0;
}

/**
 * A registered operator named with `--operator <12 digits>` proves it is them with a current code
 * from their authenticator app, read from standard input (`--code-stdin`), before anything is done:
 * a number alone is no proof, and anyone who can run the command could otherwise act, propose and
 * approve as any operator (two-person control forged by one person).
 *
 * Standard input rather than a `--code <6 digits>` argument: the code is single use (NIST SP
 * 800-63B §5.1.4.2, OTP verifiers accept a code only once) and short-lived, but while it is valid
 * an argument is readable by every local user in the process list (and lands in shell history), so
 * another user of the host could race it to the store; standard input is not. Verified by the same
 * TOTP service as the sign-in: accepted once per 30-second step, wrong codes counted against the
 * person's guess budget and entry locked after ten (SP 800-63B §5.2.2, rate limiting).
 */
async function proveOperator(s: CliServices, io: CliIo, codeStdin: boolean, actor: Actor, name: string): Promise<void> {
  const who = `--operator ${maskPid(name)}`;
  const factors = (await s.store.factors.listForPerson(actor.id)).filter((f) => f.confirmed);
  if (!factors.some((f) => f.type === 'totp')) {
    throw new AdminError('forbidden', factors.length
      ? `${who} has no authenticator app, only passkeys, which the command line cannot check: use the operators' console, or add an authenticator app to the account`
      : `${who} has no second factor to prove it is them: add an authenticator app to the account`);
  }
  if (!codeStdin) throw new UsageError(`${who} must prove it is you: pass --code-stdin and pipe a current code from your authenticator app on standard input (never as an argument)`);
  const code = (await io.readStdin()).trim();
  if (!code) throw new UsageError('no code on standard input: pipe the 6-digit code from your authenticator app');
  const totp = createTotpService({ factors: s.store.factors, counters: s.store.counters, secretBox: s.secretBox, issuerName: 'dinhdanh' });
  const r = await totp.verify(actor.id, code);
  if (r.ok) return;
  throw new AdminError('forbidden', {
    invalid: `${who}: the code is wrong or expired; nothing was done`,
    replayed: `${who}: this code was already used (each code works once); wait for the next one; nothing was done`,
    locked: `${who}: too many wrong codes, code entry waits 10 minutes; nothing was done`,
    factor_exists: `${who}: the code is wrong or expired; nothing was done`,
  }[r.reason]);
}

/**
 * The proposal when a two-person action (admin/actions.ts) was proposed, undefined when it was
 * carried out (the command then prints its own result, as before operators existed). Carried out at
 * once but not done ("not done: …": the account or key changed meanwhile) exits 2 with why.
 */
export function proposalOf(r: Requested): string | undefined {
  if (r.status === 'proposed') return r.approval;
  if (r.outcome.startsWith('not done')) throw new UsageError(r.outcome);
  return undefined;
}

/** What the command groups are built on: one per buildProgram(). */
export interface CliContext {
  readonly io: CliIo;
  /** `--operator <name>`, taken from anywhere on the command line by run(). */
  operator: string | undefined;
  /** `--code-stdin`: the operator's authenticator code is on standard input (taken by run()). */
  codeStdin: boolean;
  config(): Config;
  /**
   * Who is acting, for the audit log (issue 6): `--operator` or DINHDANH_OPERATOR; required in
   * production, the local user name otherwise.
   */
  operatorFor(cfg: Config): string;
  /** `value` as one line of JSON with `--json`, else the human form. */
  print(out: Output, value: Record<string, unknown>, human: () => string): void;
  /** A proposal waiting for a second operator: with `--json` exactly `{"status":"proposed","approval":"<id>"}` (PRODUCT.md). */
  printProposal(out: Output, approval: string): void;
  /**
   * Opens the services, runs `fn` and always closes the store (after the audit entries are
   * written). An error of one of `inputErrors` is bad input: it exits 2 with its message. Its
   * `operators.cliActor` makes a registered operator prove it is them (proveOperator) once.
   */
  withServices<T>(fn: (s: CliServices) => Promise<T>, ...inputErrors: InputErrorClass[]): Promise<T>;
}

export function createCliContext(io: CliIo): CliContext {
  const cli: CliContext = {
    io,
    operator: undefined,
    codeStdin: false,
    config: () => loadConfig(io.env, io.cwd),
    operatorFor: (cfg) => {
      const named = cli.operator !== undefined ? parseOperator(cli.operator) : cfg.operator;
      if (named) return named;
      if (cfg.env === 'production') throw new UsageError('name the operator: --operator <name> or DINHDANH_OPERATOR (required in production, recorded in the audit log)');
      return parseOperator(os.userInfo().username.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 64).padEnd(2, '_')) ?? 'local';
    },
    print: (out, value, human) => {
      io.stdout(out.json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
    },
    printProposal: (out, approval) => {
      cli.print(out, { status: 'proposed', approval }, () =>
        `proposed: approval ${approval} waits up to 24 hours for a second operator with the same role\n(dinhdanh approvals approve ${approval} --operator <their 12-digit number> --code-stdin --reason <text>, their app's code on standard input)`);
    },
    withServices: async (fn, ...inputErrors) => {
      const opened = await openServices(cli.config());
      // Every door to a registered operator's actor goes through the proof, in every command.
      const proven = new Map<string, Actor>();
      const cliActor = async (name: string): Promise<Actor> => {
        const known = proven.get(name);
        if (known) return known;
        const actor = await opened.operators.cliActor(name);
        if (!actor.id.startsWith('cli:')) await proveOperator(opened, io, cli.codeStdin, actor, name);
        proven.set(name, actor);
        return actor;
      };
      const s: CliServices = { ...opened, operators: { ...opened.operators, cliActor } };
      try {
        // One command, one cause: the security events it makes share a `txn` (SSF 1.0 §4.1.8).
        return await withCause(() => fn(s));
      } catch (err) {
        rethrow(err, inputErrors);
      } finally {
        await s.store.close();
      }
    },
  };
  return cli;
}
