/**
 * Atomic counters in `counters`: each read-modify-write is one statement.
 */
import type { CounterRepository, CounterState } from '../types.js';
import type { SqliteContext } from './shared.js';

interface CounterRow {
  count: number;
  updated_at: number;
  expires_at: number;
}

function counterRow(row: CounterRow): CounterState {
  return { count: row.count, updatedAt: row.updated_at, expiresAt: row.expires_at };
}

export function createSqliteCounters({ statement, call }: SqliteContext): CounterRepository {
  // One statement, so the read-modify-write is atomic. SET expressions see the old row.
  const counterIncrement = statement<[{ key: string; now: number; expiresAt: number; slide: number }], CounterRow>(`
    INSERT INTO counters (key, count, updated_at, expires_at) VALUES (@key, 1, @now, @expiresAt)
    ON CONFLICT (key) DO UPDATE SET
      count = CASE WHEN counters.expires_at <= excluded.updated_at THEN 1 ELSE counters.count + 1 END,
      expires_at = CASE WHEN counters.expires_at <= excluded.updated_at OR @slide THEN excluded.expires_at
                        ELSE counters.expires_at END,
      updated_at = excluded.updated_at
    RETURNING count, updated_at, expires_at
  `);
  const counterGet = statement<[string, number], CounterRow>(
    'SELECT count, updated_at, expires_at FROM counters WHERE key = ? AND expires_at > ?',
  );
  const counterStart = statement<[{ key: string; now: number; expiresAt: number }], CounterRow>(`
    INSERT INTO counters (key, count, updated_at, expires_at) VALUES (@key, 1, @now, @expiresAt)
    ON CONFLICT (key) DO UPDATE SET count = 1, updated_at = excluded.updated_at, expires_at = excluded.expires_at
    RETURNING count, updated_at, expires_at
  `);
  const counterReset = statement<[string]>('DELETE FROM counters WHERE key = ?');
  // Admission and increment in one statement: the DO UPDATE's WHERE sees the old row, and a row
  // that fails it is left alone and returns nothing (the attempt is refused, not counted).
  const counterClaim = statement<[{ key: string; now: number; expiresAt: number; free: number; base: number; max: number }], CounterRow>(`
    INSERT INTO counters (key, count, updated_at, expires_at) VALUES (@key, 1, @now, @expiresAt)
    ON CONFLICT (key) DO UPDATE SET
      count = CASE WHEN counters.expires_at <= @now THEN 1 ELSE counters.count + 1 END,
      expires_at = @expiresAt,
      updated_at = @now
    WHERE counters.expires_at <= @now
       OR counters.count < @free
       OR counters.updated_at + min(@max, @base * (1 << min(counters.count - @free, 20))) <= @now
    RETURNING count, updated_at, expires_at
  `);

  return {
    increment: (key, ttlMs, at, opts) =>
      call(() => {
        const row = counterIncrement().get({ key, now: at, expiresAt: at + ttlMs, slide: opts?.slide ? 1 : 0 });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return counterRow(row);
      }),
    get: (key, at) =>
      call(() => {
        const row = counterGet().get(key, at);
        return row && counterRow(row);
      }),
    start: (key, ttlMs, at) =>
      call(() => {
        const row = counterStart().get({ key, now: at, expiresAt: at + ttlMs });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return counterRow(row);
      }),
    reset: (key) =>
      call(() => {
        counterReset().run(key);
      }),
    claimAttempt: (key, at, policy) =>
      call(() => {
        const row = counterClaim().get({
          key, now: at, expiresAt: at + policy.ttlMs, free: policy.freeAttempts, base: policy.baseDelayMs, max: policy.maxDelayMs,
        });
        if (row) return { admitted: true, count: row.count };
        return { admitted: false, count: counterGet().get(key, at)?.count ?? 0 };
      }),
  };
}
