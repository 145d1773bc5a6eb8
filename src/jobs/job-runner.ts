/**
 * Runs durable jobs from the store (back-channel logout deliveries, session-expiry checks).
 *
 * Work that must outlive a request, a slow portal or a restart is written to the store first and
 * done afterwards: a request only enqueues and kicks the runner, so the citizen never waits. Every
 * instance polls; claims are leased atomically by the store, so each job runs on one instance at a
 * time, and a job whose instance died mid-way is picked up again when its lease ends. An instance
 * that stops cleanly does not make the others wait for that: it hands back what it holds (`stop`).
 */
import type { Logger } from 'pino';
import type { Job, JobRepository } from '../store/index.js';

export type JobResult =
  | { status: 'done'; outcome: string }
  | { status: 'failed'; outcome: string }
  | { status: 'retry'; outcome: string; dueAt: number };

export interface JobHandler {
  kind: string;
  /** How long a claim holds a job: longer than one run can take (its timeouts included). */
  leaseMs: number;
  /** How long finished jobs are kept for inspection. */
  keepMs: number;
  run(job: Job): Promise<JobResult>;
}

export interface JobRunner {
  /** The kinds of job handlers registered so far. */
  kinds(): string[];
  /** Adds a handler (for handlers built after the runner, e.g. ones that enqueue jobs themselves). */
  register(handler: JobHandler): void;
  enqueue(kind: string, id: string, payload: Record<string, unknown>, dueAt?: number): Promise<boolean>;
  /** Runs due jobs soon, without waiting (after an enqueue). */
  kick(): void;
  /** Runs every due job now and resolves when they are finished (tests). */
  runDue(): Promise<number>;
  start(): void;
  /**
   * Claims no more jobs, and resolves once the running ones are finished. With `handBackWhen`, when
   * it settles first, the jobs still running are put back as pending, due at once, for another
   * instance to claim without waiting for their leases to end; what their handlers do afterwards
   * is not recorded. A second call returns the first one's promise.
   */
  stop(handBackWhen?: Promise<unknown>): Promise<void>;
}

const BATCH = 50;
const HANDED_BACK = 'handed back: the instance stopped before the job finished';

export function createJobRunner(deps: {
  jobs: JobRepository;
  handlers?: readonly JobHandler[];
  logger: Logger;
  now?: () => number;
  pollMs?: number;
  /**
   * Told after each run of a job with what came of it (the metrics' job runs). Not told of a job
   * handed back unfinished by `stop`: it did not run to an outcome here.
   */
  onRun?: (kind: string, outcome: JobResult['status']) => void;
}): JobRunner {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'jobs' });
  const handlers = new Map((deps.handlers ?? []).map((h) => [h.kind, h]));
  let running: Promise<number> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  /** Jobs claimed by this instance whose handler has not returned yet. */
  const held = new Map<string, Job>();
  /** Results being written. */
  const recording = new Set<Promise<void>>();
  /** The claim in progress, if any. */
  let claiming: Promise<Job[]> | undefined;

  /**
   * Puts a claimed job back as pending, due now. It is no longer this instance's: another may
   * claim it at once, so nothing this instance learns about it later is written.
   */
  async function handBack(job: Job): Promise<void> {
    held.delete(job.id);
    const t = now();
    try {
      await deps.jobs.retry(job.id, t, HANDED_BACK, t);
      log.info({ job: job.id, kind: job.kind }, 'job handed back');
    } catch (err) {
      log.warn({ err, job: job.id, kind: job.kind }, 'job could not be handed back; it is claimed again when its lease ends');
    }
  }

  /** Claims due jobs; if the runner stopped meanwhile, they go back unstarted, at once. */
  async function claim(handler: JobHandler): Promise<Job[]> {
    const batch = await deps.jobs.claimDue(handler.kind, now(), handler.leaseMs, BATCH);
    if (!stopped) return batch;
    await Promise.all(batch.map(handBack));
    return [];
  }

  async function runOne(handler: JobHandler, job: Job): Promise<void> {
    held.set(job.id, job);
    let result: JobResult;
    try {
      result = await handler.run(job);
    } catch (err) {
      // A handler bug must not lose the job: try again in a minute, and say so.
      log.error({ err, job: job.id, kind: job.kind }, 'job handler failed');
      result = { status: 'retry', outcome: 'internal error', dueAt: now() + 60_000 };
    }
    if (!held.delete(job.id)) return;
    try {
      deps.onRun?.(job.kind, result.status);
    } catch (err) {
      log.warn({ err, kind: job.kind }, 'job run observer failed');
    }
    const t = now();
    const write = result.status === 'retry'
      ? deps.jobs.retry(job.id, result.dueAt, result.outcome, t)
      : deps.jobs.finish(job.id, result.status, result.outcome, t, handler.keepMs);
    recording.add(write);
    try {
      await write;
    } finally {
      recording.delete(write);
    }
  }

  async function drain(): Promise<number> {
    let total = 0;
    for (;;) {
      let claimed = 0;
      for (const handler of handlers.values()) {
        if (stopped) return total;
        claiming = claim(handler);
        let batch: Job[];
        try {
          batch = await claiming;
        } finally {
          claiming = undefined;
        }
        claimed += batch.length;
        // In parallel: one slow portal does not hold up the others' deliveries.
        await Promise.all(batch.map((job) => runOne(handler, job)));
      }
      total += claimed;
      if (claimed === 0 || stopped) return total;
    }
  }

  function runDue(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      try {
        do {
          again = false;
          total += await drain();
        } while (again && !stopped);
      } catch (err) {
        log.warn({ err }, 'job run failed; retrying at the next poll');
      } finally {
        running = undefined;
      }
      return total;
    })();
    return running;
  }

  return {
    kinds: () => [...handlers.keys()],
    register(handler) {
      handlers.set(handler.kind, handler);
    },
    async enqueue(kind, id, payload, dueAt) {
      if (!handlers.has(kind)) throw new Error(`no handler for job kind ${kind}`);
      return deps.jobs.enqueue({ id, kind, payload, dueAt: dueAt ?? now() }, now());
    },
    kick() {
      if (!stopped) setImmediate(() => void runDue());
    },
    runDue,
    start() {
      stopped = false;
      stopping = undefined;
      if (timer) return;
      timer = setInterval(() => void runDue(), deps.pollMs ?? 5_000);
      timer.unref();
    },
    stop(handBackWhen) {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      stopping ??= (async () => {
        const finished = (running ?? Promise.resolve()).then(() => true);
        if (!handBackWhen) {
          await finished;
          return;
        }
        if (await Promise.race([finished, handBackWhen.then(() => false, () => false)])) return;
        await claiming?.catch(() => undefined);
        await Promise.all([...held.values()].map(handBack));
        // Results that came in before are written before the caller closes the store.
        await Promise.allSettled([...recording]);
      })();
      return stopping;
    },
  };
}
