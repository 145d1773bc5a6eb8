/**
 * What every command group of `dinhdanh` shares: its input and output, the errors that decide the
 * exit code, the configuration and the operator, and `withServices`, which opens the services (and
 * so the store) for one command and always closes them.
 */
import os from 'node:os';
import pino from 'pino';
import { loadConfig, parseOperator, type Config } from '../config/config.js';
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
  return { ...s, store: { ...s.store, close: async () => { await s.audit.flush(); await s.activity.settled(); await close(); } } };
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

/** What the command groups are built on: one per buildProgram(). */
export interface CliContext {
  readonly io: CliIo;
  /** `--operator <name>`, taken from anywhere on the command line by run(). */
  operator: string | undefined;
  config(): Config;
  /**
   * Who is acting, for the audit log (issue 6): `--operator` or DINHDANH_OPERATOR; required in
   * production, the local user name otherwise.
   */
  operatorFor(cfg: Config): string;
  /** `value` as one line of JSON with `--json`, else the human form. */
  print(out: Output, value: Record<string, unknown>, human: () => string): void;
  /**
   * Opens the services, runs `fn` and always closes the store (after the audit entries are
   * written). An error of one of `inputErrors` is bad input: it exits 2 with its message.
   */
  withServices<T>(fn: (s: CliServices) => Promise<T>, ...inputErrors: InputErrorClass[]): Promise<T>;
}

export function createCliContext(io: CliIo): CliContext {
  const cli: CliContext = {
    io,
    operator: undefined,
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
    withServices: async (fn, ...inputErrors) => {
      const s = await openServices(cli.config());
      try {
        return await fn(s);
      } catch (err) {
        rethrow(err, inputErrors);
      } finally {
        await s.store.close();
      }
    },
  };
  return cli;
}
