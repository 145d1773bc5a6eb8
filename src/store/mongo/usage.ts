/**
 * Usage statistics in `usage_counts` and `usage_tags` (migration 5; types.ts: UsageRepository).
 * A row's `_id` is the JSON of its key ([day, portal, key] or [day, portal, tag]), so an addition is
 * one upsert on `_id` with `$inc` (atomic on MongoDB; serialised in-process on FerretDB 1.x by
 * `write`), and a tag is remembered once however often it is flushed. Only checked scalars reach a
 * filter: days match YYYY-MM-DD, portals, keys and tags are strings, counts whole numbers.
 *
 * A flush's rows go in one unordered bulk write; when some fail, the server names them and add()
 * reports just those (UsageRowsNotAddedError) for the recorder to retry. FerretDB 1.x does not name
 * them (it stops at the first, answers index 0 and no counts), so there each row is its own update.
 *
 * Counted and summed with `$group`/`$sum` only (FerretDB 1.x has no other accumulator); a day's compaction
 * seals the tags it counts and deletes only those, and writes its count with the `$max` update
 * operator so that two instances compacting at once, or one reading while the other deletes, never
 * lower a count already written. Tags flushed after their day was compacted are compacted on
 * their own into the larger of the two counts: a lower bound (types.ts: UsageRepository.compact).
 */
import { MongoBulkWriteError, MongoServerError, type AnyBulkWriteOperation, type Document } from 'mongodb';
import type { UsageCount, UsageRepository } from '../types.js';
import { usageCount as count, usageDay as day, usagePrefixRange as prefixRange, usageRealDay as realDay, usageText as text } from '../values.js';
import type { MongoContext } from './shared.js';

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
  /** Set by compact() on the tags it is counting: only those are then deleted. */
  sealed?: true;
}

/**
 * add() applied some rows and not others, and knows which: `failedRows` were not added (each as it
 * was given, merged per row key); every other row was. The caller retries only those (types.ts:
 * UsageRepository.add).
 */
export class UsageRowsNotAddedError extends Error {
  constructor(readonly failedRows: UsageCount[], options?: { cause?: unknown }) {
    super(`${failedRows.length} usage row(s) could not be added; the others were`, options);
    this.name = 'UsageRowsNotAddedError';
  }
}

/**
 * A row's own update refused by the server (a TypeMismatch on a corrupted `n`, a duplicate key):
 * not applied, since a single-document update is atomic. A network error, or a server error the
 * driver would retry, leaves the outcome unknown.
 */
function refusedByServer(err: unknown): boolean {
  return err instanceof MongoServerError && !(err instanceof MongoBulkWriteError) && !err.hasErrorLabel('RetryableWriteError') && err.code !== 64 /* WriteConcernFailed */;
}

/**
 * The operations of an unordered bulk write that failed, when the server said of every operation
 * whether it was applied: write errors (by index) for some, matched or upserted for all the others,
 * and no write concern error. Undefined when the outcome is not known that way: the connection lost
 * after sending (the driver wraps that in MongoBulkWriteError too, with no write errors and the
 * counts so far), or a write concern not met (applied on the primary, perhaps rolled back).
 */
export function failedOperations(err: unknown, total: number): number[] | undefined {
  if (!(err instanceof MongoBulkWriteError)) return undefined;
  const errors = [err.writeErrors].flat();
  if (errors.length === 0 || err.result === undefined || err.result.getWriteConcernError() !== undefined) return undefined;
  const failed = [...new Set(errors.map((e) => e.index))];
  if (!failed.every((i) => Number.isInteger(i) && i >= 0 && i < total)) return undefined;
  if (err.result.matchedCount + err.result.upsertedCount + failed.length !== total) return undefined;
  return failed.sort((a, b) => a - b);
}

export const USAGE_COUNTS = 'usage_counts';
export const USAGE_TAGS = 'usage_tags';

export function createMongoUsage({ db, run, write }: MongoContext): UsageRepository {
  const counts = db.collection<UsageCountDoc>(USAGE_COUNTS);
  const tags = db.collection<UsageTagDoc>(USAGE_TAGS);

  // FerretDB 1.x answers a bulk update that fails part-way with the first error at index 0 and no
  // counts, having applied the updates before it: nothing says which rows were added. There, rows
  // are added one update each, so each one's outcome is known (one instance only, writes already
  // serialised: shared.ts). Decided once per store, as shared.ts decides its write lock.
  let oneByOne: Promise<boolean> | undefined;
  function addsOneByOne(): Promise<boolean> {
    oneByOne ??= db
      .admin()
      .command({ buildInfo: 1 })
      .then((info) => typeof info.ferretdbVersion === 'string' && /^v?[01]\./.test(info.ferretdbVersion))
      .catch((err: unknown) => {
        oneByOne = undefined;
        throw err;
      });
    return oneByOne;
  }

  const rowOf = (d: UsageCountDoc): UsageCount => ({ day: d.day, portal: d.portal, key: d.key, n: d.n });

  function dayRange(from: string, to: string, portal: string | undefined): Document {
    return { day: { $gte: from, $lte: to }, ...(portal === undefined ? {} : { portal }) };
  }

  async function distinct(from: string, to: string, portal: string | undefined, sealedOnly = false): Promise<Array<{ day: string; portal: string; n: number }>> {
    type Group = { _id: { day: string; portal: string }; n: number };
    const groups = await tags
      .aggregate<Group>([
        { $match: { ...dayRange(from, to, portal), ...(sealedOnly ? { sealed: true } : {}) } },
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
      const docs = [...merged.values()];
      const operations: AnyBulkWriteOperation<UsageCountDoc>[] = docs.map((d) => ({
        updateOne: { filter: { _id: d._id }, update: { $inc: { n: d.n }, $setOnInsert: { day: d.day, portal: d.portal, key: d.key } }, upsert: true },
      }));
      if (await run(addsOneByOne)) {
        await write(USAGE_COUNTS, async () => {
          const failed: UsageCount[] = [];
          let cause: unknown;
          for (const [i, d] of docs.entries()) {
            try {
              await counts.updateOne({ _id: d._id }, { $inc: { n: d.n }, $setOnInsert: { day: d.day, portal: d.portal, key: d.key } }, { upsert: true });
            } catch (err) {
              cause ??= err;
              failed.push(rowOf(d));
              if (refusedByServer(err)) continue;
              // Unknown (the connection lost): this row is retried with the rest, never sent.
              if (i === 0) throw err;
              failed.push(...docs.slice(i + 1).map(rowOf));
              break;
            }
          }
          if (failed.length > 0) throw new UsageRowsNotAddedError(failed, { cause });
        });
        return;
      }
      await write(USAGE_COUNTS, async () => {
        try {
          await counts.bulkWrite(operations, { ordered: false });
        } catch (err) {
          // Unordered: the server tried every operation. When it says which failed, only those are
          // the caller's to retry (retrying all would add the applied ones twice). Otherwise the
          // error as it is: the outcome is unknown (see UsageRepository.add).
          const failed = failedOperations(err, operations.length);
          if (failed === undefined) throw err;
          throw new UsageRowsNotAddedError(failed.map((i) => rowOf(docs[i]!)), { cause: err });
        }
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
      // The tags there now are sealed, and only sealed tags are counted and deleted: one flushed
      // between the count and the deletion (by another instance) is neither, and waits for the
      // next compaction instead of being deleted uncounted.
      await write(USAGE_TAGS, async () => {
        await tags.updateMany({ day: checked, sealed: { $ne: true } }, { $set: { sealed: true } });
      });
      const groups = await run(() => distinct(checked, checked, undefined, true));
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
        await tags.deleteMany({ day: checked, sealed: true });
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
