/**
 * Usage statistics in `usage_counts` and `usage_tags` (migration 11; types.ts: UsageRepository).
 * Every addition is one upsert statement (`n = n + excluded.n`), so instances flushing into one file
 * at once add up; a day's compaction (distinct count written, tags deleted) is one transaction.
 */
import type { UsageCount, UsageRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** Longer than any portal id (64), key or tag the usage service writes; a bound on what a row may hold. */
const MAX_TEXT = 256;

function day(value: unknown, what = 'day'): string {
  if (typeof value !== 'string' || !DAY.test(value)) throw new TypeError(`${what} must be a date YYYY-MM-DD`);
  return value;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) throw new TypeError(`${what} must be a string of 1 to ${MAX_TEXT} characters`);
  return value;
}

function count(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError('n must be a whole number, 0 or more');
  return value;
}

export function createSqliteUsage({ db, statement, call }: SqliteContext): UsageRepository {
  const addRow = statement<[string, string, string, number]>(
    'INSERT INTO usage_counts (day, portal, key, n) VALUES (?, ?, ?, ?) ON CONFLICT (day, portal, key) DO UPDATE SET n = usage_counts.n + excluded.n',
  );
  const addTag = statement<[string, string, string]>('INSERT OR IGNORE INTO usage_tags (day, portal, tag) VALUES (?, ?, ?)');
  const distinctAll = statement<[string, string], { day: string; portal: string; n: number }>(
    'SELECT day, portal, COUNT(*) AS n FROM usage_tags WHERE day >= ? AND day <= ? GROUP BY day, portal ORDER BY day, portal',
  );
  const distinctPortal = statement<[string, string, string], { day: string; portal: string; n: number }>(
    'SELECT day, portal, COUNT(*) AS n FROM usage_tags WHERE day >= ? AND day <= ? AND portal = ? GROUP BY day, portal ORDER BY day, portal',
  );
  const rangeAll = statement<[string, string], UsageCount>(
    'SELECT day, portal, key, n FROM usage_counts WHERE day >= ? AND day <= ? ORDER BY day, portal, key',
  );
  const rangePortal = statement<[string, string, string], UsageCount>(
    'SELECT day, portal, key, n FROM usage_counts WHERE portal = ? AND day >= ? AND day <= ? ORDER BY day, portal, key',
  );
  // max(): a second instance compacting the same day at once reads the same tags (the transaction
  // serialises them) and writes the same count; tags flushed late for a day already compacted
  // (the store down for a day) can only raise the figure, never replace it with a smaller one.
  const compactCount = statement<[string]>(`
    INSERT INTO usage_counts (day, portal, key, n)
    SELECT day, portal, 'citizens', COUNT(*) FROM usage_tags WHERE day = ? GROUP BY day, portal
    ON CONFLICT (day, portal, key) DO UPDATE SET n = max(usage_counts.n, excluded.n)
  `);
  const deleteDayTags = statement<[string]>('DELETE FROM usage_tags WHERE day = ?');
  const uncompacted = statement<[string], { day: string }>('SELECT DISTINCT day FROM usage_tags WHERE day < ? ORDER BY day');
  const purgeCounts = statement<[string]>('DELETE FROM usage_counts WHERE day < ?');
  const purgeTags = statement<[string]>('DELETE FROM usage_tags WHERE day < ?');

  const addAll = db.transaction((rows: ReadonlyArray<[string, string, string, number]>) => {
    for (const r of rows) addRow().run(...r);
  });
  const addTags = db.transaction((rows: ReadonlyArray<[string, string, string]>) => {
    for (const r of rows) addTag().run(...r);
  });
  const compact = db.transaction((d: string) => {
    compactCount().run(d);
    deleteDayTags().run(d);
  });
  const purge = db.transaction((before: string) => purgeCounts().run(before).changes + purgeTags().run(before).changes);

  // Arguments are checked before any write (a malformed row adds nothing) and reject, never throw.
  return {
    add: async (rows) => {
      const checked = rows
        .map((r) => [day(r.day), text(r.portal, 'portal'), text(r.key, 'key'), count(r.n)] as [string, string, string, number])
        .filter((r) => r[3] > 0);
      return call(() => {
        if (checked.length > 0) addAll.immediate(checked);
      });
    },
    addDistinct: async (rows) => {
      const checked = rows.map((r) => [day(r.day), text(r.portal, 'portal'), text(r.tag, 'tag')] as [string, string, string]);
      return call(() => {
        if (checked.length > 0) addTags.immediate(checked);
      });
    },
    countDistinct: async (from, to, portal) => {
      const [f, t] = [day(from, 'from'), day(to, 'to')];
      const p = portal === undefined ? undefined : text(portal, 'portal');
      return call(() => (p === undefined ? distinctAll().all(f, t) : distinctPortal().all(f, t, p)));
    },
    range: async (from, to, portal) => {
      const [f, t] = [day(from, 'from'), day(to, 'to')];
      const p = portal === undefined ? undefined : text(portal, 'portal');
      return call(() => (p === undefined ? rangeAll().all(f, t) : rangePortal().all(p, f, t)));
    },
    compact: async (d) => {
      const checked = day(d);
      return call(() => {
        compact.immediate(checked);
      });
    },
    uncompacted: async (before) => {
      const b = day(before, 'before');
      return call(() => uncompacted().all(b).map((r) => r.day));
    },
    purge: async (before) => {
      const b = day(before, 'before');
      return call(() => purge.immediate(b));
    },
  };
}
