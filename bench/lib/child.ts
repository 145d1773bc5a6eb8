/**
 * The server side of the IPC protocol, shared by bench/server.ts and bench/baseline-server.ts:
 * CPU and memory accounting, an argon2id measurement, CPU profiles of a measured window, and the
 * rule that a server child never outlives its parent (the IPC channel closing ends it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import argon2 from 'argon2';
import { ARGON2_PARAMS } from '../../src/accounts/password-hasher.js';
import type { Command, FatalMessage, ReadyMessage, Reply, Request } from './protocol.js';

export type Extra = (command: Command) => Promise<Record<string, unknown> | undefined>;

/** CPU of the main thread (tid = pid), from /proc; undefined where there is no /proc. */
function mainThreadMicros(): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime (fields 14 and 15 of stat(5)) in clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

let usageExtra: () => Record<string, unknown> = () => ({});
/** Adds fields to every `usage` reply (the SQL statement counts of --count-sql). */
export function addToUsage(fn: () => Record<string, unknown>): void {
  usageExtra = fn;
}

function send(message: ReadyMessage | FatalMessage | Reply): void {
  process.send?.(message);
}

/**
 * CPU time (ms, this process only) of one argon2id verification at the product's parameters: the
 * median of `samples` verifications one at a time; with `parallel` > 1, the mean over `samples`
 * verifications run `parallel` at a time (as concurrent sign-ins run them: memory-hard hashes
 * sharing caches and cores cost more CPU each).
 */
export async function measureArgon2(samples: number, parallel = 1): Promise<{ medianMs: number; samplesMs: number[] }> {
  const password = 'một mật khẩu đủ dài để đo';
  const hash = await argon2.hash(password, {
    type: argon2.argon2id, memoryCost: ARGON2_PARAMS.memoryCost, timeCost: ARGON2_PARAMS.timeCost, parallelism: ARGON2_PARAMS.parallelism,
  });
  await argon2.verify(hash, password); // warm the thread pool
  if (parallel > 1) {
    const before = process.cpuUsage();
    for (let i = 0; i < samples; i += parallel) {
      await Promise.all(Array.from({ length: Math.min(parallel, samples - i) }, () => argon2.verify(hash, password)));
    }
    const d = process.cpuUsage(before);
    const mean = (d.user + d.system) / 1000 / samples;
    return { medianMs: mean, samplesMs: [mean] };
  }
  const samplesMs: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const before = process.cpuUsage();
    const ok = await argon2.verify(hash, password);
    const d = process.cpuUsage(before);
    if (!ok) throw new Error('argon2 verification failed');
    samplesMs.push((d.user + d.system) / 1000);
  }
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { medianMs, samplesMs };
}

let onExit: () => Promise<void> = async () => undefined;
let exiting = false;

function exit(code: number): void {
  if (exiting) return;
  exiting = true;
  const timer = setTimeout(() => process.exit(code), 3000);
  timer.unref();
  onExit().catch(() => undefined).finally(() => process.exit(code));
}

/**
 * Call first: the child ends when its parent goes away (the IPC channel closes, whatever the
 * reason: exit, crash, SIGKILL) or on SIGTERM/SIGINT, after `cleanup`. No server is left behind.
 */
export function guardParent(cleanup: () => Promise<void>): void {
  if (!process.send) {
    console.error('this is a benchmark server child: start it through bench/run.ts');
    process.exit(2);
  }
  onExit = cleanup;
  process.on('disconnect', () => exit(0));
  process.on('SIGTERM', () => exit(0));
  process.on('SIGINT', () => exit(0));
}

/** Serves the parent's commands; `extra` handles the ones specific to a server. */
export function serveCommands(extra: Extra): void {
  let profiler: Session | undefined;
  process.on('message', (raw: unknown) => {
    const { id, command } = raw as Request;
    void (async (): Promise<Record<string, unknown>> => {
      switch (command.cmd) {
        case 'usage': {
          const u = process.cpuUsage();
          return { cpuMicros: u.user + u.system, mainMicros: mainThreadMicros(), rss: process.memoryUsage().rss, ...usageExtra() };
        }
        case 'argon2':
          return measureArgon2(command.samples, command.parallel);
        case 'gc': {
          const gc = (globalThis as { gc?: () => void }).gc;
          if (gc) gc();
          return { collected: !!gc, rss: process.memoryUsage().rss };
        }
        case 'profile-start': {
          profiler = new Session();
          profiler.connect();
          await profiler.post('Profiler.enable');
          await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
          await profiler.post('Profiler.start');
          return {};
        }
        case 'profile-stop': {
          if (!profiler) throw new Error('no profile running');
          const { profile } = await profiler.post('Profiler.stop');
          profiler.disconnect();
          profiler = undefined;
          fs.mkdirSync(path.dirname(command.file), { recursive: true });
          fs.writeFileSync(command.file, JSON.stringify(profile));
          return { file: command.file };
        }
        default: {
          const out = await extra(command);
          if (!out) throw new Error(`unknown command ${command.cmd}`);
          return out;
        }
      }
    })().then(
      (out) => send({ id, ok: true, ...out }),
      (err: unknown) => send({ id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

export function ready(message: Omit<ReadyMessage, 'type'>): void {
  send({ type: 'ready', ...message });
}

/** Reports a failure to the parent, cleans up and exits 1. */
export function fatal(err: unknown): void {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  console.error(message);
  if (process.send && process.connected) process.send({ type: 'fatal', message } satisfies FatalMessage, () => exit(1));
  else exit(1);
}
