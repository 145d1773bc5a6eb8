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

/** NotImplemented: what FerretDB 1.x answers for a $group accumulator it lacks ($min). */
const NOT_IMPLEMENTED = 238;

function errorCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

export function createMongoJobs({ db, now, run, write }: MongoContext): JobRepository {
  const col = { jobs: db.collection<JobDoc>('jobs') };
  /** Whether the server has $min in $group; learnt from the first stats() (undefined until then). */
  let minSupported: boolean | undefined;

  return {
    // Through the index kind_status_due only (FerretDB 1.x has no $min in $group, and a $group on
    // status would scan every job kept): the kinds from the index, then per kind a count and the
    // first pending job by due time.
    pending: () =>
      run(async () => {
        const kinds = (await col.jobs.distinct('kind')).filter((k): k is string => typeof k === 'string').sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const out: Array<{ kind: string; count: number; oldestDueAt: number }> = [];
        for (const kind of kinds) {
          const first = await col.jobs.find({ kind, status: 'pending' }, { projection: { _id: 0, dueAt: 1 } }).sort({ kind: 1, status: 1, dueAt: 1 }).limit(1).next();
          if (!first) continue;
          out.push({ kind, count: await col.jobs.countDocuments({ kind, status: 'pending' }), oldestDueAt: first.dueAt });
        }
        return out;
      }),
    // Counted in the server: one $group with $min for the oldest due time. FerretDB 1.x implements
    // no accumulator but $sum/$count and answers NotImplemented: there, the counts come from $group
    // and the oldest due times from one read of the pending jobs' kind and dueAt (never their
    // payloads), in the order of the index kind_status_due. Finished jobs kept past their time count
    // no more than they read (types.ts: expiry on read); pending ones never expire.
    stats: () =>
      run(async () => {
        const t = now();
        type Group = { _id: { kind: string; status: JobStatus }; count: number; oldest?: number | null };
        const pipeline = (withMin: boolean) => [
          { $match: liveAt(t) },
          {
            $group: {
              _id: { kind: '$kind', status: '$status' },
              count: { $sum: 1 },
              ...(withMin ? { oldest: { $min: '$dueAt' } } : {}),
            },
          },
          { $sort: { '_id.kind': 1, '_id.status': 1 } },
        ];
        let groups: Group[] | undefined;
        if (minSupported !== false) {
          try {
            groups = await col.jobs.aggregate<Group>(pipeline(true)).toArray();
            minSupported = true;
          } catch (err) {
            if (minSupported === true || errorCode(err) !== NOT_IMPLEMENTED) throw err;
            minSupported = false;
          }
        }
        if (!groups) {
          groups = await col.jobs.aggregate<Group>(pipeline(false)).toArray();
          const oldest = new Map<string, number>();
          const pending = col.jobs
            .find({ status: 'pending' }, { projection: { _id: 0, kind: 1, dueAt: 1 } })
            .sort({ kind: 1, status: 1, dueAt: 1 });
          for await (const job of pending) if (!oldest.has(job.kind)) oldest.set(job.kind, job.dueAt);
          for (const g of groups) g.oldest = g._id.status === 'pending' ? oldest.get(g._id.kind) ?? null : null;
        }
        return groups.map((g) => ({
          kind: g._id.kind,
          status: g._id.status,
          count: g.count,
          oldestDueAt: g._id.status === 'pending' && typeof g.oldest === 'number' ? g.oldest : null,
        }));
      }),
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
