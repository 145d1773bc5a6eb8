/**
 * How log lines look: JSON lines (one object a line, for a log shipper) everywhere, except for a
 * person at a terminal in development, who gets pino's own pretty-printer (pino-pretty). Production
 * and anything reading a pipe or a file keep JSON whatever the terminal, so nothing that parses the
 * logs ever meets a pretty line.
 *
 * pino-pretty is loaded only when it is used, and in this thread: its formatter turns each JSON line
 * into a readable one on its way to the same stdout destination, so the lines still go out through
 * `closeLogs` at exit (a pino transport would print from a worker thread of its own, whose buffered
 * lines the process's exit would have to wait for).
 */
import { createRequire } from 'node:module';
import type { PrettyOptions } from 'pino-pretty';
import type { Config } from './config/config.js';

export type LogOutput = 'json' | 'pretty';

/** Pretty only in development (or test) and only with a terminal on stdout. */
export function logOutput(env: Config['env'], stdoutIsTTY: boolean | undefined): LogOutput {
  return env !== 'production' && stdoutIsTTY === true ? 'pretty' : 'json';
}

/**
 * One line a log entry, local time, colours; `pid`, `hostname` and the constant `service` left out
 * (the rest, request id included, follows the message).
 */
export const PRETTY_OPTIONS: PrettyOptions = {
  colorize: true,
  translateTime: 'SYS:HH:MM:ss.l',
  ignore: 'pid,hostname,service',
  singleLine: true,
};

/** pino-pretty's formatter: a JSON line in, a readable line out. Loads pino-pretty (only now). */
export function prettyFormatter(options: PrettyOptions = {}): (line: string) => string {
  const require = createRequire(import.meta.url);
  const { prettyFactory } = require('pino-pretty') as typeof import('pino-pretty');
  return prettyFactory({ ...PRETTY_OPTIONS, ...options });
}

/**
 * The destination a logger writes to: `destination` itself for JSON, else a destination that
 * pretty-prints each line before handing it on.
 */
export function readableWhenTerminal<D extends { write(line: string): void }>(env: Config['env'], stdoutIsTTY: boolean | undefined, destination: D): D {
  if (logOutput(env, stdoutIsTTY) === 'json') return destination;
  const pretty = prettyFormatter();
  // The same destination (flush and close included), each line formatted on the way.
  return Object.assign(Object.create(destination) as D, { write: (line: string) => destination.write(pretty(line)) });
}

export interface LogOptions {
  /** pino's `mixin`: fields added to every line (the trace and span ids while tracing, metrics/tracing.ts). */
  mixin?: () => Record<string, unknown>;
}
