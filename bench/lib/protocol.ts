/**
 * What the benchmark's parent (bench/run.ts) and its server children (bench/server.ts,
 * bench/baseline-server.ts) say to each other over the IPC channel of `child_process.fork`.
 *
 * The server children measure themselves: CPU time comes from `process.cpuUsage()` inside the
 * server process, so the load generator sharing the machine does not enter the figures.
 */

/** The public issuer both servers claim; the transport is plain http on 127.0.0.1 (TLS ends at a proxy). */
export const BENCH_ISSUER = 'https://id.bench.local';
export const BENCH_HOST = 'id.bench.local';
export const PORTAL_REDIRECT_URI = 'https://portal.bench.local/cb';
/** One password for every bench person: long, uncommon, free of the number and birth date. */
export const BENCH_PASSWORD = 'mây trắng bay về phía núi xa 2024';

export interface BenchPortal {
  client_id: string;
  client_secret: string;
  redirect_uri: string;
}

export interface BenchPerson {
  pid: string;
  password: string;
}

/** Child → parent, once the server listens and its data is registered. */
export interface ReadyMessage {
  type: 'ready';
  port: number;
  portal: BenchPortal;
  persons: BenchPerson[];
  /** How long the child took to set up (keys, store, persons), ms. */
  setupMs: number;
  /** dinhdanh only: the operators' listener (loopback), where `/metrics` is served when metrics are on. */
  adminPort?: number;
  /** dinhdanh only: whether metrics and usage statistics are on (DINHDANH_METRICS). */
  metrics?: boolean;
}

export interface FatalMessage {
  type: 'fatal';
  message: string;
}

export type Command =
  | { cmd: 'usage' }
  | { cmd: 'argon2'; samples: number; parallel?: number }
  | { cmd: 'sessions'; count: number }
  | { cmd: 'profile-start' }
  | { cmd: 'profile-stop'; file: string }
  | { cmd: 'gc' }
  /** Writes the usage statistics buffered so far (dinhdanh: `usage.flush()`; a no-op with metrics off). */
  | { cmd: 'flush' };

export interface Usage {
  /** Microseconds of CPU (user + system) of the whole server process, every thread included. */
  cpuMicros: number;
  rss: number;
  /**
   * Microseconds of CPU of the main thread alone (Linux: /proc/self/task/<pid>/stat, 10 ms ticks):
   * JavaScript, SQLite and the HTTP stack. The rest of `cpuMicros` is V8's helper threads (GC) and
   * libuv's thread pool (argon2id).
   */
  mainMicros?: number;
  /** With --count-sql: SQLite statements executed so far, by SQL text. */
  sql?: Record<string, number>;
}

export type Reply =
  | ({ id: number; ok: true } & Record<string, unknown>)
  | { id: number; ok: false; error: string };

export interface Request {
  id: number;
  command: Command;
}
