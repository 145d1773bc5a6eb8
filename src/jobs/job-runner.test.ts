/**
 * Stopping the job runner: what it holds goes back to the queue (README, "Restarts"). Two runners
 * on two connections to one real SQLite file stand for two instances.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { createStore, type Job, type Store } from '../store/index.js';
import { createJobRunner, type JobHandler, type JobResult } from './job-runner.js';

const logger = pino({ level: 'silent' });
const KIND = 'test-job';
const LEASE_MS = 10 * 60_000;

let dir: string;
let mine: Store;
let theirs: Store;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-jobs-'));
  const url = `sqlite:${path.join(dir, 'jobs.db')}`;
  mine = await createStore(url);
  theirs = await createStore(url);
});

afterEach(async () => {
  await mine.close();
  await theirs.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A handler whose runs wait until the test lets each one finish with the result it gives. */
function heldHandler() {
  const started: Job[] = [];
  const finishers: ((result: JobResult) => void)[] = [];
  const handler: JobHandler = {
    kind: KIND,
    leaseMs: LEASE_MS,
    keepMs: 60_000,
    run: (job) => new Promise<JobResult>((resolve) => {
      started.push(job);
      finishers.push(resolve);
    }),
  };
  return { handler, started, finish: (i: number, result: JobResult) => finishers[i]!(result) };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i === 500) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function enqueue(id: string): Promise<void> {
  const t = Date.now();
  await mine.jobs.enqueue({ id, kind: KIND, payload: {}, dueAt: t }, t);
}

/** A runner whose handler has started on job `a` and waits. */
async function runningJob() {
  const h = heldHandler();
  const runner = createJobRunner({ jobs: mine.jobs, handlers: [h.handler], logger });
  await enqueue('a');
  void runner.runDue();
  await until(() => h.started.length === 1);
  return { h, runner };
}

describe('stopping the job runner', () => {
  it('without a hand-back, waits for the running job and records its result', async () => {
    const { h, runner } = await runningJob();
    let stopped = false;
    const stopping = runner.stop().then(() => { stopped = true; });
    await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(false);
    h.finish(0, { status: 'done', outcome: 'ok' });
    await stopping;
    expect(await mine.jobs.find('a')).toMatchObject({ status: 'done', lastOutcome: 'ok' });
  });

  it('a job that finishes before the hand-back time keeps its result', async () => {
    const { h, runner } = await runningJob();
    h.finish(0, { status: 'failed', outcome: 'HTTP 400' });
    await runner.stop(new Promise(() => {}));
    expect(await mine.jobs.find('a')).toMatchObject({ status: 'failed', lastOutcome: 'HTTP 400' });
  });

  it('a job still running at the hand-back time is pending again at once: another instance claims it, and the late result is not written', async () => {
    const { h, runner } = await runningJob();
    const before = Date.now();
    await runner.stop(Promise.resolve());

    const job = await theirs.jobs.find('a');
    expect(job).toMatchObject({ status: 'pending', leaseUntil: 0, attempts: 1 });
    expect(job!.dueAt).toBeGreaterThanOrEqual(before);
    expect(job!.dueAt).toBeLessThanOrEqual(Date.now());
    expect(job!.lastOutcome).toMatch(/handed back/);

    // Another instance takes it now, not when the first lease (ten minutes) would have ended.
    const other = heldHandler();
    const otherRunner = createJobRunner({ jobs: theirs.jobs, handlers: [other.handler], logger });
    void otherRunner.runDue();
    await until(() => other.started.length === 1);
    expect(other.started[0]).toMatchObject({ id: 'a', attempts: 2 });

    // The first handler returns late: its result would put the job back under the other's feet.
    h.finish(0, { status: 'retry', outcome: 'late', dueAt: Date.now() + 3_600_000 });
    await new Promise((r) => setTimeout(r, 50));
    const held = await theirs.jobs.find('a');
    expect(held!.leaseUntil).toBeGreaterThan(Date.now());
    expect(held!.lastOutcome).toMatch(/handed back/);

    other.finish(0, { status: 'done', outcome: 'ok' });
    await otherRunner.stop();
    expect(await theirs.jobs.find('a')).toMatchObject({ status: 'done', lastOutcome: 'ok' });
  });

  it('jobs claimed as the runner stops go back without being started', async () => {
    const h = heldHandler();
    const runner = createJobRunner({ jobs: mine.jobs, handlers: [h.handler], logger });
    await enqueue('a');
    await enqueue('b');
    void runner.runDue();
    await runner.stop(Promise.resolve());
    expect(h.started).toEqual([]);
    const claimed = await theirs.jobs.claimDue(KIND, Date.now(), LEASE_MS, 10);
    expect(claimed.map((j) => j.id).sort()).toEqual(['a', 'b']);
    expect(claimed.every((j) => j.lastOutcome?.includes('handed back'))).toBe(true);
  });

  it('a second stop returns the first one: it does not wait for a handler that was handed back', async () => {
    const { runner } = await runningJob();
    await runner.stop(Promise.resolve());
    // compose.ts's close() stops the runner again, without a hand-back time: it must not hang.
    await runner.stop();
    expect(await mine.jobs.find('a')).toMatchObject({ status: 'pending', leaseUntil: 0 });
  });
});
