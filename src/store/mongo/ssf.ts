/**
 * Security event streams and their queued SETs (events/, OpenID Shared Signals Framework 1.0) in
 * `ssf_streams` and `ssf_events`. An event's `seq` comes from one sequence document, taken by an
 * atomic `$inc` (findOneAndUpdate with upsert) for the whole batch: increasing in the order events
 * are added, across instances. (Two instances adding to one stream at once may insert in the other
 * order than their seqs; the line is read by seq each time, so the later-inserted one is still
 * delivered, after the other: events made at the same moment have no order of their own.)
 * Filters are built from validated scalars only.
 */
import { DELIVERED_KEEP_MS } from '../../events/event-types.js';
import { StoreConflictError, type SsfEvent, type SsfRepository, type SsfStream } from '../types.js';
import { isDuplicateKey, num, str, type MongoContext } from './shared.js';

interface StreamDoc extends Omit<SsfStream, 'id'> {
  _id: string;
  /**
   * The newest push attempt's or delivery's outcome and time over the stream's events, kept here by
   * markDelivered and recordAttempt so that deliveryStats needs no read per stream (FerretDB 1.x has
   * no $max/$first in $group, and every filtered read there is a scan). Absent until the first one;
   * not part of SsfStream, not copied.
   */
  lastOutcome?: string | null;
  lastAttemptAt?: number | null;
}

interface EventDoc extends Omit<SsfEvent, 'failed'> {
  _id: string;
  failed: boolean;
}

const SEQUENCE_ID = 'ssf_events';

/** NotImplemented: what FerretDB 1.x answers for a $group accumulator it lacks ($min). */
const NOT_IMPLEMENTED = 238;

function errorCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

const streamOf = ({ _id, lastOutcome: _outcome, lastAttemptAt: _at, ...rest }: StreamDoc): SsfStream => ({ id: _id, ...rest });
const eventOf = ({ _id: _ignored, ...rest }: EventDoc): SsfEvent => rest;
const eventId = (streamId: string, jti: string) => JSON.stringify([streamId, jti]);

/** The fields `updateStream` may set. */
const FIELDS = new Set(['eventsRequested', 'deliveryMethod', 'endpointUrl', 'authorizationHeader', 'description', 'status', 'statusReason']);

export function createMongoSsf({ db, run, write }: MongoContext): SsfRepository {
  const streams = db.collection<StreamDoc>('ssf_streams');
  const events = db.collection<EventDoc>('ssf_events');
  const sequence = db.collection<{ _id: string; n: number }>('ssf_sequence');
  const line = (streamId: string, at: number) => ({ streamId, deliveredAt: null, failed: false, expiresAt: { $gt: at } });
  const lineAll = (at: number) => ({ deliveredAt: null, failed: false, expiresAt: { $gt: at } });
  /** Whether the server has $min in $group; learnt from the first deliveryStats() (as in jobs.ts). */
  let minSupported: boolean | undefined;

  /** Keeps the stream's newest outcome: only a newer one replaces it (calls may finish out of order). */
  const noteOutcome = (streamId: string, outcome: string, at: number) =>
    write('ssf_streams', () => streams.updateOne(
      { _id: streamId, $or: [{ lastAttemptAt: { $exists: false } }, { lastAttemptAt: null }, { lastAttemptAt: { $lte: at } }] },
      { $set: { lastOutcome: outcome, lastAttemptAt: at } },
    ));

  return {
    createStream: (s) =>
      write('ssf_streams', async () => {
        const { id, ...rest } = s;
        try {
          await streams.insertOne({ _id: str(id, 'stream id'), ...rest, clientId: str(s.clientId, 'client id') });
          return true;
        } catch (err) {
          if (isDuplicateKey(err)) return false;
          throw err;
        }
      }),
    findStream: (id) => run(async () => { const d = await streams.findOne({ _id: str(id, 'stream id') }); return d ? streamOf(d) : undefined; }),
    findStreamByClient: (clientId) => run(async () => { const d = await streams.findOne({ clientId: str(clientId, 'client id') }); return d ? streamOf(d) : undefined; }),
    streamsFor: (clientIds) =>
      run(async () => (clientIds.length === 0 ? [] : (await streams.find({ clientId: { $in: clientIds.map((c) => str(c, 'client id')) } }).toArray()).map(streamOf))),
    listStreams: () => run(async () => (await streams.find({}).sort({ clientId: 1 }).toArray()).map(streamOf)),
    updateStream: (id, changes, now) =>
      write('ssf_streams', async () => {
        const set: Record<string, unknown> = { updatedAt: num(now, 'now') };
        for (const [field, value] of Object.entries(changes)) if (FIELDS.has(field) && value !== undefined) set[field] = value;
        const d = await streams.findOneAndUpdate({ _id: str(id, 'stream id') }, { $set: set }, { returnDocument: 'after' });
        return d ? streamOf(d) : undefined;
      }),
    deleteStream: (id) =>
      write('ssf_streams', async () => {
        const streamId = str(id, 'stream id');
        await write('ssf_events', () => events.deleteMany({ streamId }));
        return (await streams.deleteOne({ _id: streamId })).deletedCount === 1;
      }),
    addEvents: (batch) =>
      run(async () => {
        if (batch.length === 0) return [];
        // A jti already queued (RFC 8417 §2.2: unique per stream), here or in the batch, refuses the
        // whole batch before anything is written: FerretDB 1.x has no transactions, and an ordered
        // insertMany would otherwise leave the events before the duplicate behind.
        const ids = batch.map((e) => eventId(str(e.streamId, 'stream id'), str(e.jti, 'jti')));
        if (new Set(ids).size !== ids.length || (await events.countDocuments({ _id: { $in: ids } })) > 0) throw new StoreConflictError('jti');
        const taken = await write('ssf_sequence', () =>
          sequence.findOneAndUpdate({ _id: SEQUENCE_ID }, { $inc: { n: batch.length } }, { upsert: true, returnDocument: 'after' }));
        const last = taken?.n ?? batch.length;
        const docs: EventDoc[] = batch.map((e, i) => ({
          _id: ids[i]!, ...e, seq: last - batch.length + 1 + i, attempts: 0, lastOutcome: null, lastAttemptAt: null, deliveredAt: null, failed: false,
        }));
        try {
          await write('ssf_events', () => events.insertMany(docs, { ordered: true }));
        } catch (err) {
          // Only a race with another instance adding the same jti gets here.
          if (isDuplicateKey(err)) throw new StoreConflictError('jti');
          throw err;
        }
        return docs.map(eventOf);
      }),
    findEvent: (streamId, jti) => run(async () => { const d = await events.findOne({ _id: eventId(str(streamId, 'stream id'), str(jti, 'jti')) }); return d ? eventOf(d) : undefined; }),
    undelivered: (streamId, now, limit) =>
      run(async () => {
        // limit(0) would mean no limit to the driver: a line of none is asked for nothing.
        if (!(limit >= 1)) return [];
        return (await events.find(line(str(streamId, 'stream id'), num(now, 'now'))).sort({ seq: 1 }).limit(Math.min(Math.floor(limit), 1000)).toArray()).map(eventOf);
      }),
    // The stream's outcome is noted after the events' write is over: deleteStream takes the
    // streams' write lock and then the events' (shared.ts: FerretDB), never the other way round.
    markDelivered: (streamId, jtis, outcome, now) =>
      run(async () => {
        const id = str(streamId, 'stream id');
        const at = num(now, 'now');
        const text = outcome.slice(0, 200);
        const done = await write('ssf_events', async () => {
          const changed: string[] = [];
          // One conditional update per event: of two concurrent calls for one jti, one matches.
          for (const jti of new Set(jtis)) {
            const result = await events.updateOne(
              { _id: eventId(id, str(jti, 'jti')), deliveredAt: null, failed: false },
              { $set: { deliveredAt: at, lastOutcome: text, expiresAt: at + DELIVERED_KEEP_MS } },
            );
            if (result.modifiedCount === 1) changed.push(jti);
          }
          return changed;
        });
        if (done.length) await noteOutcome(id, text, at);
        return done;
      }),
    recordAttempt: (streamId, jti, outcome, now, failed = false) =>
      run(async () => {
        const id = str(streamId, 'stream id');
        const at = num(now, 'now');
        const text = outcome.slice(0, 200);
        const result = await write('ssf_events', () => events.updateOne(
          { _id: eventId(id, str(jti, 'jti')) },
          { $inc: { attempts: 1 }, $set: { lastOutcome: text, lastAttemptAt: at, ...(failed ? { failed: true } : {}) } },
        ));
        if (result.matchedCount === 1) await noteOutcome(id, text, at);
      }),
    // Counted in the server: three $group/$sum over the kept (unexpired) events, by stream. With $min
    // and $max in $group the oldest undelivered comes with the first; FerretDB 1.x has neither and
    // answers NotImplemented: there it comes from one read of the line's (streamId, seq, createdAt),
    // never the SETs, in the order of the index stream_line. The newest outcome is the stream's own
    // (noteOutcome). Only streams with kept events are listed, as in SQLite.
    deliveryStats: (now) =>
      run(async () => {
        const at = num(now, 'now');
        type Group = { _id: string; n: number; oldest?: number | null };
        const counted = (match: Record<string, unknown>, withMin = false) =>
          events.aggregate<Group>([
            { $match: match },
            { $group: { _id: '$streamId', n: { $sum: 1 }, ...(withMin ? { oldest: { $min: '$createdAt' } } : {}) } },
          ]).toArray();
        let waiting: Group[] | undefined;
        if (minSupported !== false) {
          try {
            waiting = await counted(lineAll(at), true);
            minSupported = true;
          } catch (err) {
            if (minSupported === true || errorCode(err) !== NOT_IMPLEMENTED) throw err;
            minSupported = false;
          }
        }
        if (!waiting) {
          waiting = await counted(lineAll(at));
          const oldest = new Map<string, number>();
          const heads = events.find(lineAll(at), { projection: { _id: 0, streamId: 1, createdAt: 1 } }).sort({ streamId: 1, deliveredAt: 1, failed: 1, seq: 1 });
          for await (const e of heads) if (!oldest.has(e.streamId)) oldest.set(e.streamId, e.createdAt);
          for (const g of waiting) g.oldest = oldest.get(g._id) ?? null;
        }
        const [delivered, failed] = await Promise.all([
          counted({ deliveredAt: { $ne: null }, expiresAt: { $gt: at } }),
          counted({ failed: true, expiresAt: { $gt: at } }),
        ]);
        const ids = new Set([...waiting, ...delivered, ...failed].map((g) => g._id));
        if (ids.size === 0) return [];
        const byId = (groups: Group[]) => new Map(groups.map((g) => [g._id, g]));
        const [w, d, f] = [byId(waiting), byId(delivered), byId(failed)];
        const outcomes = new Map((await streams.find({ _id: { $in: [...ids] } }, { projection: { _id: 1, lastOutcome: 1, lastAttemptAt: 1 } }).toArray()).map((s) => [s._id, s]));
        return [...ids].sort().map((streamId) => ({
          streamId,
          undelivered: w.get(streamId)?.n ?? 0,
          oldestUndeliveredAt: w.get(streamId)?.oldest ?? null,
          delivered: d.get(streamId)?.n ?? 0,
          failed: f.get(streamId)?.n ?? 0,
          lastOutcome: outcomes.get(streamId)?.lastOutcome ?? null,
          lastAttemptAt: outcomes.get(streamId)?.lastAttemptAt ?? null,
        }));
      }),
    purge: (now) => write('ssf_events', async () => (await events.deleteMany({ expiresAt: { $lte: num(now, 'now') } })).deletedCount),
  };
}
