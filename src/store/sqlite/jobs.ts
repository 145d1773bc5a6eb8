/**
 * Durable background jobs in `jobs`, claimed with a lease.
 */
import type { Job, JobRepository, JobStatus } from '../types.js';
import type { SqliteContext } from './shared.js';

interface JobRow {
  id: string;
  kind: string;
  payload: string;
  status: JobStatus;
  attempts: number;
  due_at: number;
  lease_until: number;
  last_outcome: string | null;
  created_at: number;
  updated_at: number;
}

function jobRow(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    payload: JSON.parse(row.payload) as Record<string, unknown>,
    status: row.status,
    attempts: row.attempts,
    dueAt: row.due_at,
    leaseUntil: row.lease_until,
    lastOutcome: row.last_outcome,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function createSqliteJobs({ now, statement, call }: SqliteContext): JobRepository {
  const jobInsert = statement<[{ id: string; kind: string; payload: string; dueAt: number; now: number }]>(`
    INSERT INTO jobs (id, kind, payload, status, attempts, due_at, lease_until, last_outcome, created_at, updated_at, expires_at)
    VALUES (@id, @kind, @payload, 'pending', 0, @dueAt, 0, NULL, @now, @now, NULL)
    ON CONFLICT (id) DO NOTHING
  `);
  // One statement: the sub-select and the update run under SQLite's single writer, so two
  // processes claiming at once never take the same job.
  const jobClaim = statement<[{ kind: string; now: number; leaseUntil: number; limit: number }], JobRow>(`
    UPDATE jobs SET lease_until = @leaseUntil, attempts = attempts + 1, updated_at = @now
    WHERE id IN (
      SELECT id FROM jobs
      WHERE kind = @kind AND status = 'pending' AND due_at <= @now AND lease_until <= @now
      ORDER BY due_at, id LIMIT @limit
    )
    RETURNING *
  `);
  const jobFinish = statement<[{ id: string; status: string; outcome: string; now: number; expiresAt: number }]>(
    "UPDATE jobs SET status = @status, last_outcome = @outcome, lease_until = 0, updated_at = @now, expires_at = @expiresAt WHERE id = @id AND status = 'pending'",
  );
  const jobRetry = statement<[{ id: string; dueAt: number; outcome: string; now: number }]>(
    "UPDATE jobs SET due_at = @dueAt, last_outcome = @outcome, lease_until = 0, updated_at = @now WHERE id = @id AND status = 'pending'",
  );
  const jobFind = statement<[string, number], JobRow>('SELECT * FROM jobs WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)');
  const jobList = statement<[{ kind: string; status: string | null; limit: number; now: number }], JobRow>(`
    SELECT * FROM jobs WHERE kind = @kind AND (@status IS NULL OR status = @status)
      AND (expires_at IS NULL OR expires_at > @now)
    ORDER BY created_at DESC, id DESC LIMIT @limit
  `);
  // Grouped in the store: one row per (kind, status), the oldest due time of the pending ones.
  // Finished jobs kept past their time count no more than they read (types.ts: expiry on read).
  const jobStats = statement<[number], { kind: string; status: JobStatus; n: number; oldest: number | null }>(`
    SELECT kind, status, count(*) AS n, min(CASE WHEN status = 'pending' THEN due_at END) AS oldest
    FROM jobs WHERE expires_at IS NULL OR expires_at > ?
    GROUP BY kind, status ORDER BY kind, status
  `);

  // Served by the partial index jobs_due (kind, due_at) WHERE status = 'pending', covering.
  const jobPending = statement<[], { kind: string; n: number; oldest: number }>(`
    SELECT kind, count(*) AS n, min(due_at) AS oldest FROM jobs WHERE status = 'pending' GROUP BY kind ORDER BY kind
  `);

  return {
    pending: () => call(() => jobPending().all().map((r) => ({ kind: r.kind, count: r.n, oldestDueAt: r.oldest }))),
    stats: () =>
      call(() => jobStats().all(now()).map((r) => ({ kind: r.kind, status: r.status, count: r.n, oldestDueAt: r.oldest }))),
    enqueue: (job, at) =>
      call(() => jobInsert().run({ id: job.id, kind: job.kind, payload: JSON.stringify(job.payload), dueAt: job.dueAt, now: at }).changes === 1),
    claimDue: (kind, at, leaseMs, limit) =>
      call(() =>
        jobClaim()
          .all({ kind, now: at, leaseUntil: at + leaseMs, limit })
          .map(jobRow)
          .sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : 1)),
      ),
    finish: (id, status, outcome, at, keepMs) =>
      call(() => {
        jobFinish().run({ id, status, outcome: outcome.slice(0, 500), now: at, expiresAt: at + keepMs });
      }),
    retry: (id, dueAt, outcome, at) =>
      call(() => {
        jobRetry().run({ id, dueAt, outcome: outcome.slice(0, 500), now: at });
      }),
    find: (id) =>
      call(() => {
        const row = jobFind().get(id, now());
        return row && jobRow(row);
      }),
    list: (kind, options) =>
      call(() => jobList().all({ kind, status: options.status ?? null, limit: options.limit, now: now() }).map(jobRow)),
  };
}
