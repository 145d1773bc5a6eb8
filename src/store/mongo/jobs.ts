/**
 * Durable background jobs in `jobs`, claimed with a lease.
 */
import type { Filter } from 'mongodb';
import type { Job, JobRepository, JobStatus } from '../types.js';
import { str, num, limitOf, liveAt, insert, type MongoContext } from './shared.js';

interface JobDoc {
  _id: string;
  kind: string;
  /** JSON text. */
  payload: string;
  status: JobStatus;
  attempts: number;
  dueAt: number;
  leaseUntil: number;
  lastOutcome: string | null;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  expireAt?: Date;
}

function jobDoc(doc: JobDoc): Job {
  return {
    id: doc._id,
    kind: doc.kind,
    payload: JSON.parse(doc.payload) as Record<string, unknown>,
    status: doc.status,
    attempts: doc.attempts,
    dueAt: doc.dueAt,
    leaseUntil: doc.leaseUntil,
    lastOutcome: doc.lastOutcome,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

export function createMongoJobs({ db, now, run, write }: MongoContext): JobRepository {
  const col = { jobs: db.collection<JobDoc>('jobs') };

  return {
    enqueue: (job, at) =>
      write('jobs', async () => {
        const t = num(at, 'now');
        const doc: JobDoc = {
          _id: str(job.id, 'id'),
          kind: str(job.kind, 'kind'),
          payload: JSON.stringify(job.payload),
          status: 'pending',
          attempts: 0,
          dueAt: num(job.dueAt, 'dueAt'),
          leaseUntil: 0,
          lastOutcome: null,
          createdAt: t,
          updatedAt: t,
          expiresAt: null,
        };
        // Idempotent triggers: the first enqueue of an id wins.
        return (await insert(col.jobs, doc, () => false)) ?? true;
      }),
    // A claim loop: each job is taken by one findOneAndUpdate whose filter requires it unheld, so of
    // concurrent claimers each job goes to exactly one.
    claimDue: (kind, at, leaseMs, limit) =>
      write('jobs', async () => {
        const k = str(kind, 'kind');
        const t = num(at, 'now');
        const leaseUntil = t + num(leaseMs, 'leaseMs');
        const claimed: Job[] = [];
        for (let i = 0; i < limitOf(limit); i += 1) {
          const doc = await col.jobs.findOneAndUpdate(
            { kind: k, status: 'pending', dueAt: { $lte: t }, leaseUntil: { $lte: t } },
            { $set: { leaseUntil, updatedAt: t }, $inc: { attempts: 1 } },
            { sort: { dueAt: 1, _id: 1 }, returnDocument: 'after' },
          );
          if (!doc) break;
          claimed.push(jobDoc(doc));
        }
        return claimed.sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : 1));
      }),
    finish: (id, status, outcome, at, keepMs) =>
      write('jobs', async () => {
        const t = num(at, 'now');
        const expiresAt = t + num(keepMs, 'keepMs');
        await col.jobs.updateOne(
          { _id: str(id, 'id'), status: 'pending' },
          {
            $set: {
              status: status === 'failed' ? 'failed' : 'done',
              lastOutcome: outcome.slice(0, 500),
              leaseUntil: 0,
              updatedAt: t,
              expiresAt,
              expireAt: new Date(expiresAt),
            },
          },
        );
      }),
    retry: (id, dueAt, outcome, at) =>
      write('jobs', async () => {
        await col.jobs.updateOne(
          { _id: str(id, 'id'), status: 'pending' },
          { $set: { dueAt: num(dueAt, 'dueAt'), lastOutcome: outcome.slice(0, 500), leaseUntil: 0, updatedAt: num(at, 'now') } },
        );
      }),
    find: (id) =>
      run(async () => {
        const doc = await col.jobs.findOne({ _id: str(id, 'id'), ...liveAt(now()) });
        return doc ? jobDoc(doc) : undefined;
      }),
    list: (kind, options) =>
      run(async () => {
        const n = limitOf(options.limit);
        if (n < 1) return [];
        const filter: Filter<JobDoc> = { kind: str(kind, 'kind'), ...liveAt(now()) };
        if (options.status !== undefined) filter.status = str(options.status, 'status') as JobStatus;
        return (await col.jobs.find(filter).sort({ createdAt: -1, _id: -1 }).limit(n).toArray()).map(jobDoc);
      }),
  };
}
