/**
 * Atomic counters in `counters`. No update pipelines (FerretDB has none): each step is a conditional
 * single-document write, and the steps are ordered so that a racing writer makes the next step's
 * condition fail or succeed cleanly — live counter: $inc; lapsed counter: reset to 1; no counter:
 * insert (a duplicate key means someone else created it: start over).
 */
import type { Document } from 'mongodb';
import {
  StoreUnavailableError,
  type AttemptPolicy,
  type CounterRepository,
  type CounterState,
} from '../types.js';
import { str, num, insert, MAX_ATTEMPTS, type MongoContext } from './shared.js';

interface CounterDoc {
  _id: string;
  count: number;
  updatedAt: number;
  expiresAt: number;
  expireAt: Date;
}

function counterDoc(doc: CounterDoc): CounterState {
  return { count: doc.count, updatedAt: doc.updatedAt, expiresAt: doc.expiresAt };
}

/**
 * The admission condition of `claimAttempt` as a filter on a live counter, so that decide and count
 * are one atomic `findOneAndUpdate`: fewer than `freeAttempts` counted, or the delay owed after the
 * current count has passed since the last counted attempt. The delay depends on the count, so the
 * filter lists one branch per count until the delay reaches its cap (at most 21 branches).
 */
function admissionFilter(at: number, policy: AttemptPolicy): Document[] {
  const free = num(policy.freeAttempts, 'freeAttempts');
  const base = num(policy.baseDelayMs, 'baseDelayMs');
  const max = num(policy.maxDelayMs, 'maxDelayMs');
  const branches: Document[] = [{ count: { $lt: free } }];
  for (let step = 0; ; step += 1) {
    const delay = Math.min(max, base * 2 ** Math.min(step, 20));
    const last = step >= 20 || delay >= max;
    branches.push({ count: last ? { $gte: free + step } : free + step, updatedAt: { $lte: at - delay } });
    if (last) break;
  }
  return branches;
}

/** The same condition, decided in code on a counter already read. */
function admits(state: CounterState, at: number, policy: AttemptPolicy): boolean {
  if (state.expiresAt <= at || state.count < policy.freeAttempts) return true;
  const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(state.count - policy.freeAttempts, 20));
  return state.updatedAt + delay <= at;
}

export function createMongoCounters({ db, run, write, where }: MongoContext): CounterRepository {
  const col = { counters: db.collection<CounterDoc>('counters') };

  async function counterRestart(key: string, at: number, ttlMs: number): Promise<CounterState | undefined> {
    const expiresAt = at + ttlMs;
    const set = { count: 1, updatedAt: at, expiresAt, expireAt: new Date(expiresAt) };
    const reset = await col.counters.findOneAndUpdate(
      { _id: key, expiresAt: { $lte: at } },
      { $set: set },
      { returnDocument: 'after' },
    );
    if (reset) return counterDoc(reset);
    const taken = await insert(col.counters, { _id: key, ...set }, () => true);
    // A duplicate key: someone created it since we looked; the caller starts over.
    return taken ? undefined : { count: 1, updatedAt: at, expiresAt };
  }

  return {
    increment: (key, ttlMs, at, opts) =>
      write('counters', async () => {
        const k = str(key, 'key');
        const t = num(at, 'now');
        const ttl = num(ttlMs, 'ttlMs');
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          const slide = opts?.slide === true ? { expiresAt: t + ttl, expireAt: new Date(t + ttl) } : {};
          const grown = await col.counters.findOneAndUpdate(
            { _id: k, expiresAt: { $gt: t } },
            { $inc: { count: 1 }, $set: { updatedAt: t, ...slide } },
            { returnDocument: 'after' },
          );
          if (grown) return counterDoc(grown);
          const restarted = await counterRestart(k, t, ttl);
          if (restarted) return restarted;
        }
        throw new StoreUnavailableError(`${where}: counter increment made no progress under contention`);
      }),
    get: (key, at) =>
      run(async () => {
        const doc = await col.counters.findOne({ _id: str(key, 'key'), expiresAt: { $gt: num(at, 'now') } });
        return doc ? counterDoc(doc) : undefined;
      }),
    start: (key, ttlMs, at) =>
      write('counters', async () => {
        const k = str(key, 'key');
        const t = num(at, 'now');
        const expiresAt = t + num(ttlMs, 'ttlMs');
        const set = { count: 1, updatedAt: t, expiresAt, expireAt: new Date(expiresAt) };
        // Two upserts of a new key at once: one inserts, the other gets a duplicate key and
        // then finds the document to overwrite.
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          try {
            await col.counters.updateOne({ _id: k }, { $set: set }, { upsert: true });
            return { count: 1, updatedAt: t, expiresAt };
          } catch (err) {
            if ((err as { code?: unknown }).code !== 11000) throw err;
          }
        }
        throw new StoreUnavailableError(`${where}: counter start made no progress under contention`);
      }),
    reset: (key) =>
      write('counters', async () => {
        await col.counters.deleteOne({ _id: str(key, 'key') });
      }),
    // Decide and count in one findOneAndUpdate whose filter is the admission rule (see
    // admissionFilter); a refusal writes nothing.
    claimAttempt: (key, at, policy) =>
      write('counters', async () => {
        const k = str(key, 'key');
        const t = num(at, 'now');
        const ttl = num(policy.ttlMs, 'ttlMs');
        const admissible = admissionFilter(t, policy);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          const counted = await col.counters.findOneAndUpdate(
            { _id: k, expiresAt: { $gt: t }, $or: admissible },
            { $inc: { count: 1 }, $set: { updatedAt: t, expiresAt: t + ttl, expireAt: new Date(t + ttl) } },
            { returnDocument: 'after' },
          );
          if (counted) return { admitted: true, count: counted.count };
          const current = await col.counters.findOne({ _id: k, expiresAt: { $gt: t } });
          if (current) {
            if (!admits(counterDoc(current), t, policy)) return { admitted: false, count: current.count };
            continue; // It changed under us (reset and recreated): decide again.
          }
          const restarted = await counterRestart(k, t, ttl);
          if (restarted) return { admitted: true, count: restarted.count };
        }
        throw new StoreUnavailableError(`${where}: claimAttempt made no progress under contention`);
      }),
  };
}
