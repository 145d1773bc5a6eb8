/**
 * Security event streams and their queued SETs (events/, OpenID Shared Signals Framework 1.0) in
 * `ssf_streams` and `ssf_events`. An event's `seq` comes from one sequence document, taken by an
 * atomic `$inc` (findOneAndUpdate with upsert) for the whole batch: increasing in the order events
 * are added, across instances. Filters are built from validated scalars only.
 */
import { DELIVERED_KEEP_MS } from '../../events/event-types.js';
import type { SsfEvent, SsfRepository, SsfStream } from '../types.js';
import { isDuplicateKey, num, str, type MongoContext } from './shared.js';

interface StreamDoc extends Omit<SsfStream, 'id'> {
  _id: string;
}

interface EventDoc extends Omit<SsfEvent, 'failed'> {
  _id: string;
  failed: boolean;
}

const SEQUENCE_ID = 'ssf_events';

const streamOf = ({ _id, ...rest }: StreamDoc): SsfStream => ({ id: _id, ...rest });
const eventOf = ({ _id: _ignored, ...rest }: EventDoc): SsfEvent => rest;
const eventId = (streamId: string, jti: string) => JSON.stringify([streamId, jti]);

/** The fields `updateStream` may set. */
const FIELDS = new Set(['eventsRequested', 'deliveryMethod', 'endpointUrl', 'authorizationHeader', 'description', 'status', 'statusReason']);

export function createMongoSsf({ db, run, write }: MongoContext): SsfRepository {
  const streams = db.collection<StreamDoc>('ssf_streams');
  const events = db.collection<EventDoc>('ssf_events');
  const sequence = db.collection<{ _id: string; n: number }>('ssf_sequence');
  const line = (streamId: string, at: number) => ({ streamId, deliveredAt: null, failed: false, expiresAt: { $gt: at } });

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
        const taken = await write('ssf_sequence', () =>
          sequence.findOneAndUpdate({ _id: SEQUENCE_ID }, { $inc: { n: batch.length } }, { upsert: true, returnDocument: 'after' }));
        const last = taken?.n ?? batch.length;
        const docs: EventDoc[] = batch.map((e, i) => ({
          _id: eventId(e.streamId, e.jti), ...e, seq: last - batch.length + 1 + i, attempts: 0, lastOutcome: null, lastAttemptAt: null, deliveredAt: null, failed: false,
        }));
        await write('ssf_events', () => events.insertMany(docs, { ordered: true }));
        return docs.map(eventOf);
      }),
    findEvent: (streamId, jti) => run(async () => { const d = await events.findOne({ _id: eventId(str(streamId, 'stream id'), str(jti, 'jti')) }); return d ? eventOf(d) : undefined; }),
    undelivered: (streamId, now, limit) =>
      run(async () => (await events.find(line(str(streamId, 'stream id'), num(now, 'now'))).sort({ seq: 1 }).limit(Math.max(1, Math.min(limit, 1000))).toArray()).map(eventOf)),
    markDelivered: (streamId, jtis, outcome, now) =>
      write('ssf_events', async () => {
        const done: string[] = [];
        for (const jti of new Set(jtis)) {
          const result = await events.updateOne(
            { _id: eventId(str(streamId, 'stream id'), str(jti, 'jti')), deliveredAt: null, failed: false },
            { $set: { deliveredAt: now, lastOutcome: outcome.slice(0, 200), expiresAt: now + DELIVERED_KEEP_MS } },
          );
          if (result.modifiedCount === 1) done.push(jti);
        }
        return done;
      }),
    recordAttempt: (streamId, jti, outcome, now, failed = false) =>
      write('ssf_events', async () => {
        await events.updateOne(
          { _id: eventId(str(streamId, 'stream id'), str(jti, 'jti')) },
          { $inc: { attempts: 1 }, $set: { lastOutcome: outcome.slice(0, 200), lastAttemptAt: now, ...(failed ? { failed: true } : {}) } },
        );
      }),
    // Per stream, counted in the server with $sum only (FerretDB 1.x has no $min in $group): the
    // oldest undelivered and the newest attempt are each one indexed read per stream.
    deliveryStats: (now) =>
      run(async () => {
        const out = [];
        for (const s of await streams.find({}, { projection: { _id: 1 } }).toArray()) {
          const streamId = s._id;
          const [undelivered, delivered, failed, oldest, latest] = await Promise.all([
            events.countDocuments(line(streamId, now)),
            events.countDocuments({ streamId, deliveredAt: { $ne: null } }),
            events.countDocuments({ streamId, failed: true }),
            events.find(line(streamId, now)).sort({ seq: 1 }).limit(1).next(),
            events.find({ streamId, lastAttemptAt: { $ne: null } }).sort({ lastAttemptAt: -1 }).limit(1).next(),
          ]);
          const acked = await events.find({ streamId, deliveredAt: { $ne: null } }).sort({ deliveredAt: -1 }).limit(1).next();
          const last = [latest && { at: latest.lastAttemptAt!, outcome: latest.lastOutcome }, acked && { at: acked.deliveredAt!, outcome: acked.lastOutcome }]
            .filter((x): x is { at: number; outcome: string | null } => !!x).sort((a, b) => b.at - a.at)[0];
          if (undelivered + delivered + failed === 0) continue;
          out.push({ streamId, undelivered, oldestUndeliveredAt: oldest?.createdAt ?? null, delivered, failed, lastOutcome: last?.outcome ?? null, lastAttemptAt: last?.at ?? null });
        }
        return out;
      }),
    purge: (now) => write('ssf_events', async () => (await events.deleteMany({ expiresAt: { $lte: num(now, 'now') } })).deletedCount),
  };
}
