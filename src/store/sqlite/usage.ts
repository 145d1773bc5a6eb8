/**
 * Usage statistics in `usage_counts` and `usage_tags` (migration 11; types.ts: UsageRepository).
 * Every addition is one upsert statement (`n = n + excluded.n`), so instances flushing into one file
 * at once add up; a day's compaction (distinct count written, tags deleted) is one transaction.
 */
import type { UsageCount, UsageRepository } from '../types.js';
import type { SqliteContext } from './shared.js';
import { usageCount as count, usageDay as day, usagePrefixRange as prefixRange, usageRealDay as realDay, usageText as text } from '../values.js';

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
  // One range of keys per day (usage_counts_day_key, migration 12): `day IN (the days)` makes each
  // day an equality, so the key range is a second bound of the same index search rather than a
  // filter over every row of the period (a range on day would leave key a filter).
  const DAYS = "WITH RECURSIVE days(d) AS (SELECT ? UNION ALL SELECT date(d, '+1 day') FROM days WHERE d < ?)";
  const sumsAll = statement<[string, string, string, string], { day: string; key: string; n: number }>(
    `${DAYS} SELECT day, key, SUM(n) AS n FROM usage_counts WHERE day IN (SELECT d FROM days) AND key >= ? AND key < ? AND portal <> '*' GROUP BY day, key ORDER BY day, key`,
  );
  const sumsPortal = statement<[string, string, string, string, string], { day: string; key: string; n: number }>(
    `${DAYS} SELECT day, key, SUM(n) AS n FROM usage_counts WHERE day IN (SELECT d FROM days) AND key >= ? AND key < ? AND portal = ? AND portal <> '*' GROUP BY day, key ORDER BY day, key`,
  );
  // max(): a second instance compacting the same day at once reads the same tags (the transaction
  // serialises them) and writes the same count; tags flushed late for a day already compacted
  // (the store down for a day) can only raise the figure, never replace it with a smaller one. It
  // is then a lower bound: whether those late people were among the ones counted before is not
  // known any more (their tags are gone), so neither the sum nor the count of the late ones alone
  // is exact; the larger of the two errs low. The count and the deletion are one transaction:
  // no tag is deleted without being counted.
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
    sums: async (q) => {
      const [f, t] = [realDay(q.from, 'from'), realDay(q.to, 'to')];
      const [lo, hi] = prefixRange(q.keyPrefix);
      const p = q.portal === undefined ? undefined : text(q.portal, 'portal');
      return call(() => (p === undefined ? sumsAll().all(f, t, lo, hi) : sumsPortal().all(f, t, lo, hi, p)));
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
