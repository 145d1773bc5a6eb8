/**
 * MongoDB usage rows written part-way: which rows add() reports as not added, so that the usage
 * recorder retries only those. The reading of a bulk write's error is checked on the driver's own
 * error objects (MongoDB's answer: per-row write errors and counts; a lost connection; a write
 * concern not met; FerretDB 1.x's answer without counts); with MONGODB_URI set (FerretDB in CI),
 * against the server, a corrupted row among good ones, and a tag flushed by another instance while
 * its day is being compacted.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoBulkWriteError, MongoClient, MongoNetworkError, type BulkWriteResult, type Db, type WriteError } from 'mongodb';
import pino from 'pino';
import { createStore } from '../create-store.js';
import type { Store } from '../types.js';
import { createUsageRecorder } from '../../metrics/usage.service.js';
import { createMongoContext } from './shared.js';
import { USAGE_COUNTS, USAGE_TAGS, UsageRowsNotAddedError, createMongoUsage, failedOperations, usageId } from './usage.js';

// The driver's result and write error classes, as it builds them (exported as types only).
const driver = createRequire(import.meta.url)('mongodb/lib/bulk/common.js') as {
  BulkWriteResult: new (bulkResult: BulkResult, isOrdered: boolean) => BulkWriteResult;
  WriteError: new (err: { index: number; code: number; errmsg: string }) => WriteError;
};
interface BulkResult {
  ok: number;
  writeErrors: WriteError[];
  writeConcernErrors: Array<{ code: number; errmsg: string }>;
  insertedIds: Array<{ index: number; _id: unknown }>;
  nInserted: number;
  nUpserted: number;
  nMatched: number;
  nModified: number;
  nRemoved: number;
  upserted: Array<{ index: number; _id: unknown }>;
}

function result(over: Partial<BulkResult> = {}): BulkWriteResult {
  return new driver.BulkWriteResult({
    ok: 1, writeErrors: [], writeConcernErrors: [], insertedIds: [], nInserted: 0, nUpserted: 0, nMatched: 0, nModified: 0, nRemoved: 0, upserted: [], ...over,
  }, false);
}

const writeError = (index: number) => new driver.WriteError({ index, code: 14, errmsg: 'Cannot apply $inc to a value of non-numeric type' });

describe('reading a failed unordered bulk write', () => {
  it('names the failed operations when the server accounted for every one (write errors, the rest matched or upserted)', () => {
    const errors = [writeError(3), writeError(1)];
    const err = new MongoBulkWriteError(
      { message: 'write errors', code: 14, writeErrors: errors },
      result({ writeErrors: errors, nMatched: 2, upserted: [{ index: 0, _id: 'a' }, { index: 4, _id: 'e' }] }),
    );
    expect(failedOperations(err, 6)).toEqual([1, 3]);
    // A count that does not add up (FerretDB 1.x answers with no counts): nothing known.
    expect(failedOperations(err, 7)).toBeUndefined();
    const ferret = new MongoBulkWriteError({ message: 'write errors', code: 14, writeErrors: [writeError(0)] }, result({ writeErrors: [writeError(0)] }));
    expect(failedOperations(ferret, 3)).toBeUndefined();
  });

  it('knows nothing when the connection was lost, when a write concern was not met, or for any other error', () => {
    const lost = new MongoBulkWriteError(new MongoNetworkError('connection reset'), result({ nMatched: 1 }));
    expect(failedOperations(lost, 3)).toBeUndefined();
    const errors = [writeError(0)];
    const unmet = new MongoBulkWriteError(
      { message: 'write errors', code: 14, writeErrors: errors },
      result({ writeErrors: errors, nMatched: 2, writeConcernErrors: [{ code: 64, errmsg: 'waiting for replication timed out' }] }),
    );
    expect(failedOperations(unmet, 3)).toBeUndefined();
    expect(failedOperations(new Error('no'), 3)).toBeUndefined();
  });
});

const uri = process.env.MONGODB_URI;

(uri ? describe : describe.skip)('on the server (MongoDB; skipped without MONGODB_URI): a corrupted row among good ones', () => {
  const dbName = `dd_usage_partial_${Date.now().toString(36)}`;
  let client: MongoClient;
  let db: Db;
  let store: Store;
  const day = '2030-01-01';

  beforeAll(async () => {
    const url = new URL(uri!);
    url.pathname = `/${dbName}`;
    store = await createStore(url.href);
    client = await new MongoClient(uri!, { serverSelectionTimeoutMS: 5000 }).connect();
    db = client.db(dbName);
  });
  afterAll(async () => {
    await store.close();
    await db.dropDatabase();
    await client.close();
  });

  it('add() adds every other row once and names the one not added; the recorder retries only that one', async () => {
    // A row whose count is not a number (written by hand, or by a broken copy): $inc fails on it.
    await db.collection('usage_counts').insertOne({ _id: usageId(day, 'p', 'bad') as never, day, portal: 'p', key: 'bad', n: 'x' });
    await store.usage.add([{ day, portal: 'p', key: 'before', n: 1 }]);
    const attempt = store.usage.add([
      { day, portal: 'p', key: 'after', n: 1 },
      { day, portal: 'p', key: 'bad', n: 2 },
      { day, portal: 'p', key: 'before', n: 5 },
    ]);
    await expect(attempt).rejects.toBeInstanceOf(UsageRowsNotAddedError);
    await expect(attempt).rejects.toMatchObject({ failedRows: [{ day, portal: 'p', key: 'bad', n: 2 }] });
    const good = async () => (await store.usage.range(day, day, 'p')).filter((r) => r.key !== 'bad');
    await expect(good()).resolves.toEqual([{ day, portal: 'p', key: 'after', n: 1 }, { day, portal: 'p', key: 'before', n: 6 }]);

    // Through the recorder: two flushes while the row is broken, then one after it is repaired.
    const labels = { label: () => 'q', refresh: async () => undefined };
    const usage = createUsageRecorder({ repo: store.usage, labels, secret: 's', logger: pino({ level: 'silent' }), now: () => Date.UTC(2029, 11, 31, 20) });
    await db.collection('usage_counts').insertOne({ _id: usageId(day, 'q', 'failure:other') as never, day, portal: 'q', key: 'failure:other', n: 'x' });
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: 'q', acr: 'urn:dinhdanh:loa:low', method: 'pwd' }, Date.UTC(2029, 11, 31, 20));
    usage.audit('LOGIN_FAILED', { reason: 'made_up', portal: 'q' }, Date.UTC(2029, 11, 31, 20));
    await usage.flush();
    await usage.flush();
    const q = async () => Object.fromEntries((await store.usage.range(day, day, 'q')).map((r) => [r.key, r.n]));
    await expect(q()).resolves.toEqual({
      signins: 1, 'acr:urn:dinhdanh:loa:low': 1, 'method:pwd': 1, 'hour:03:urn:dinhdanh:loa:low': 1, 'failure:other': 'x',
    });
    await db.collection('usage_counts').updateOne({ _id: usageId(day, 'q', 'failure:other') as never }, { $set: { n: 0 } });
    await usage.flush();
    await expect(q()).resolves.toEqual({ signins: 1, 'acr:urn:dinhdanh:loa:low': 1, 'method:pwd': 1, 'hour:03:urn:dinhdanh:loa:low': 1, 'failure:other': 1 });
    await expect(store.usage.countDistinct(day, day, 'q')).resolves.toEqual([{ day, portal: 'q', n: 1 }]);
  });
});

(uri ? describe : describe.skip)('on the server (MongoDB; skipped without MONGODB_URI): compacting while another instance flushes tags', () => {
  const dbName = `dd_usage_compact_${Date.now().toString(36)}`;
  let client: MongoClient;
  let db: Db;

  beforeAll(async () => {
    client = await new MongoClient(uri!, { serverSelectionTimeoutMS: 5000 }).connect();
    db = client.db(dbName);
    const url = new URL(uri!);
    url.pathname = `/${dbName}`;
    // Migrated (indexes), then closed: the repository below runs on this test's own client.
    await (await createStore(url.href)).close();
  });
  afterAll(async () => {
    await db.dropDatabase();
    await client.close();
  });

  it('deletes only the tags it counted: one written between the count and the deletion waits for the next compaction', async () => {
    const base = createMongoContext({ db, dbName, now: Date.now, hosts: 'test', secrets: [], isClosed: () => false });
    // Another instance's flush lands right after the count is written, before the tags are deleted.
    let meanwhile: (() => Promise<void>) | undefined;
    const usage = createMongoUsage({
      ...base,
      write: async (collection, fn) => {
        const out = await base.write(collection, fn);
        if (collection === USAGE_COUNTS && meanwhile) {
          const late = meanwhile;
          meanwhile = undefined;
          await late();
        }
        return out;
      },
    });
    const day = '2031-05-01';
    await usage.addDistinct([{ day, portal: 'p', tag: 'x' }, { day, portal: 'p', tag: 'y' }, { day, portal: '*', tag: 'x' }]);
    meanwhile = () => usage.addDistinct([{ day, portal: 'p', tag: 'z' }]);
    await usage.compact(day);
    expect(await db.collection(USAGE_TAGS).countDocuments({ day })).toBe(1);
    await expect(usage.countDistinct(day, day, 'p')).resolves.toEqual([{ day, portal: 'p', n: 1 }]);
    await expect(usage.uncompacted('2031-05-02')).resolves.toEqual([day]);
    await expect(usage.range(day, day, 'p')).resolves.toEqual([{ day, portal: 'p', key: 'citizens', n: 2 }]);
    // Compacted again on its own: the larger count stays (a lower bound: z may have been x or y).
    await usage.compact(day);
    await expect(usage.countDistinct(day, day)).resolves.toEqual([]);
    await expect(usage.range(day, day, 'p')).resolves.toEqual([{ day, portal: 'p', key: 'citizens', n: 2 }]);
    await expect(usage.range(day, day, '*')).resolves.toEqual([{ day, portal: '*', key: 'citizens', n: 1 }]);
  });
});
