/**
 * Usage statistics in `usage_counts` and `usage_tags` (migration 5; types.ts: UsageRepository).
 * A row's `_id` is the JSON of its key ([day, portal, key] or [day, portal, tag]), so an addition is
 * one upsert on `_id` with `$inc` (atomic on MongoDB; serialised in-process on FerretDB 1.x by
 * `write`), and a tag is remembered once however often it is flushed. Only checked scalars reach a
 * filter: days match YYYY-MM-DD, portals, keys and tags are strings, counts whole numbers.
 *
 * Counted and summed with `$group`/`$sum` only (FerretDB 1.x has no other accumulator); a day's compaction
 * writes its count with the `$max` update operator so that two instances compacting at once, or
 * one reading while the other deletes, never lower a count already written.
 */
import type { AnyBulkWriteOperation, Document } from 'mongodb';
import type { UsageCount, UsageRepository } from '../types.js';
import type { MongoContext } from './shared.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MAX_TEXT = 256;

function day(value: unknown, what = 'day'): string {
  if (typeof value !== 'string' || !DAY.test(value)) throw new TypeError(`${what} must be a date YYYY-MM-DD`);
  return value;
}

/** A day that exists (not 2030-02-30), as sqlite/usage.ts asks of sums(). */
function realDay(value: unknown, what: string): string {
  const d = day(value, what);
  const t = Date.parse(`${d}T00:00:00Z`);
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== d) throw new TypeError(`${what} must be a real date YYYY-MM-DD`);
  return d;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) throw new TypeError(`${what} must be a string of 1 to ${MAX_TEXT} characters`);
  return value;
}

/** As sqlite/usage.ts: an ASCII key prefix and the least string above every key it starts. */
const KEY_PREFIX = /^[A-Za-z0-9_+.:-]{1,64}$/;
function prefixRange(value: unknown): [string, string] {
  if (typeof value !== 'string' || !KEY_PREFIX.test(value)) throw new TypeError('keyPrefix must be 1 to 64 of A-Z a-z 0-9 _ + . : -');
  return [value, value.slice(0, -1) + String.fromCharCode(value.charCodeAt(value.length - 1) + 1)];
}

function count(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError('n must be a whole number, 0 or more');
  return value;
}

/** The `_id` of a row: injective, since JSON quoting keeps the parts apart. */
export const usageId = (d: string, portal: string, key: string): string => JSON.stringify([d, portal, key]);

export interface UsageCountDoc {
  _id: string;
  day: string;
  portal: string;
  key: string;
  n: number;
}

export interface UsageTagDoc {
  _id: string;
  day: string;
  portal: string;
  tag: string;
}

export const USAGE_COUNTS = 'usage_counts';
export const USAGE_TAGS = 'usage_tags';

export function createMongoUsage({ db, run, write }: MongoContext): UsageRepository {
  const counts = db.collection<UsageCountDoc>(USAGE_COUNTS);
  const tags = db.collection<UsageTagDoc>(USAGE_TAGS);

  function dayRange(from: string, to: string, portal: string | undefined): Document {
    return { day: { $gte: from, $lte: to }, ...(portal === undefined ? {} : { portal }) };
  }

  async function distinct(from: string, to: string, portal: string | undefined): Promise<Array<{ day: string; portal: string; n: number }>> {
    type Group = { _id: { day: string; portal: string }; n: number };
    const groups = await tags
      .aggregate<Group>([
        { $match: dayRange(from, to, portal) },
        { $group: { _id: { day: '$day', portal: '$portal' }, n: { $sum: 1 } } },
        { $sort: { '_id.day': 1, '_id.portal': 1 } },
      ])
      .toArray();
    return groups.map((g) => ({ day: g._id.day, portal: g._id.portal, n: g.n }));
  }

  return {
    async add(rows) {
      // Checked (and merged: one update per row key) before the first write.
      const merged = new Map<string, UsageCountDoc>();
      for (const r of rows) {
        const doc = { day: day(r.day), portal: text(r.portal, 'portal'), key: text(r.key, 'key'), n: count(r.n) };
        if (doc.n === 0) continue;
        const id = usageId(doc.day, doc.portal, doc.key);
        const seen = merged.get(id);
        if (seen) seen.n += doc.n;
        else merged.set(id, { _id: id, ...doc });
      }
      if (merged.size === 0) return;
      const operations: AnyBulkWriteOperation<UsageCountDoc>[] = [...merged.values()].map((d) => ({
        updateOne: { filter: { _id: d._id }, update: { $inc: { n: d.n }, $setOnInsert: { day: d.day, portal: d.portal, key: d.key } }, upsert: true },
      }));
      await write(USAGE_COUNTS, async () => {
        await counts.bulkWrite(operations, { ordered: false });
      });
    },

    async addDistinct(rows) {
      const docs = new Map<string, UsageTagDoc>();
      for (const r of rows) {
        const d = day(r.day);
        const portal = text(r.portal, 'portal');
        const tag = text(r.tag, 'tag');
        const id = usageId(d, portal, tag);
        docs.set(id, { _id: id, day: d, portal, tag });
      }
      if (docs.size === 0) return;
      // An upsert that sets fields only on insert: a tag already there is left as it is, no error.
      const operations: AnyBulkWriteOperation<UsageTagDoc>[] = [...docs.values()].map((d) => ({
        updateOne: { filter: { _id: d._id }, update: { $setOnInsert: { day: d.day, portal: d.portal, tag: d.tag } }, upsert: true },
      }));
      await write(USAGE_TAGS, async () => {
        await tags.bulkWrite(operations, { ordered: false });
      });
    },

    async countDistinct(from, to, portal) {
      const [f, t] = [day(from, 'from'), day(to, 'to')];
      const p = portal === undefined ? undefined : text(portal, 'portal');
      return run(() => distinct(f, t, p));
    },

    async range(from, to, portal) {
      const [f, t] = [day(from, 'from'), day(to, 'to')];
      const p = portal === undefined ? undefined : text(portal, 'portal');
      return run(async () => {
        const docs = await counts
          .find(dayRange(f, t, p), { projection: { _id: 0, day: 1, portal: 1, key: 1, n: 1 } })
          .sort({ day: 1, portal: 1, key: 1 })
          .toArray();
        return docs.map((d): UsageCount => ({ day: d.day, portal: d.portal, key: d.key, n: d.n }));
      });
    },

    async sums(q) {
      const [f, t] = [realDay(q.from, 'from'), realDay(q.to, 'to')];
      const [lo, hi] = prefixRange(q.keyPrefix);
      const p = q.portal === undefined ? undefined : text(q.portal, 'portal');
      type Group = { _id: { day: string; key: string }; n: number };
      // Served by the (day, key) index (migration 6): the day and key bounds both narrow the scan.
      // `*` is the all-portals distinct count, no portal's: never summed.
      const match: Document = { day: { $gte: f, $lte: t }, key: { $gte: lo, $lt: hi }, portal: p === undefined ? { $ne: '*' } : { $eq: p, $ne: '*' } };
      return run(async () => {
        const groups = await counts
          .aggregate<Group>([
            { $match: match },
            { $group: { _id: { day: '$day', key: '$key' }, n: { $sum: '$n' } } },
            { $sort: { '_id.day': 1, '_id.key': 1 } },
          ])
          .toArray();
        return groups.map((g) => ({ day: g._id.day, key: g._id.key, n: g.n }));
      });
    },

    async compact(d) {
      const checked = day(d);
      const groups = await run(() => distinct(checked, checked, undefined));
      if (groups.length > 0) {
        const operations: AnyBulkWriteOperation<UsageCountDoc>[] = groups.map((g) => ({
          updateOne: {
            filter: { _id: usageId(checked, g.portal, 'citizens') },
            update: { $max: { n: g.n }, $setOnInsert: { day: checked, portal: g.portal, key: 'citizens' } },
            upsert: true,
          },
        }));
        await write(USAGE_COUNTS, async () => {
          await counts.bulkWrite(operations, { ordered: false });
        });
      }
      // Only once the count is written: a failure before leaves the tags for the next attempt.
      await write(USAGE_TAGS, async () => {
        await tags.deleteMany({ day: checked });
      });
    },

    async uncompacted(before) {
      const b = day(before, 'before');
      return run(async () => {
        const days = (await tags.distinct('day', { day: { $lt: b } })) as unknown[];
        return days.filter((x): x is string => typeof x === 'string').sort();
      });
    },

    async purge(before) {
      const b = day(before, 'before');
      const gone = await write(USAGE_COUNTS, async () => (await counts.deleteMany({ day: { $lt: b } })).deletedCount);
      return gone + (await write(USAGE_TAGS, async () => (await tags.deleteMany({ day: { $lt: b } })).deletedCount));
    },
  };
}
