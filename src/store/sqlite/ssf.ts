/**
 * Security event streams and their queued SETs (events/, OpenID Shared Signals Framework 1.0) in
 * `ssf_streams` and `ssf_events`. An event's `seq` is its rowid: increasing in the order events are
 * added, across processes (SQLite has one writer at a time).
 */
import { DELIVERED_KEEP_MS } from '../../events/event-types.js';
import type { SsfEvent, SsfRepository, SsfStream } from '../types.js';
import type { SqliteContext } from './shared.js';

interface StreamRow {
  id: string;
  client_id: string;
  events_requested: string;
  delivery_method: SsfStream['deliveryMethod'];
  endpoint_url: string | null;
  authorization_header: string | null;
  description: string | null;
  status: SsfStream['status'];
  status_reason: string | null;
  created_at: number;
  updated_at: number;
}

interface EventRow {
  seq: number;
  stream_id: string;
  jti: string;
  set_jwt: string;
  types: string;
  created_at: number;
  expires_at: number;
  attempts: number;
  last_outcome: string | null;
  last_attempt_at: number | null;
  delivered_at: number | null;
  failed: number;
}

const streamOf = (r: StreamRow): SsfStream => ({
  id: r.id, clientId: r.client_id, eventsRequested: JSON.parse(r.events_requested) as string[], deliveryMethod: r.delivery_method,
  endpointUrl: r.endpoint_url, authorizationHeader: r.authorization_header, description: r.description, status: r.status,
  statusReason: r.status_reason, createdAt: r.created_at, updatedAt: r.updated_at,
});

const eventOf = (r: EventRow): SsfEvent => ({
  streamId: r.stream_id, jti: r.jti, seq: r.seq, set: r.set_jwt, types: JSON.parse(r.types) as string[], createdAt: r.created_at,
  expiresAt: r.expires_at, attempts: r.attempts, lastOutcome: r.last_outcome, lastAttemptAt: r.last_attempt_at,
  deliveredAt: r.delivered_at, failed: r.failed === 1,
});

/** The columns `updateStream` may set, by field. */
const COLUMNS: Record<string, string> = {
  eventsRequested: 'events_requested', deliveryMethod: 'delivery_method', endpointUrl: 'endpoint_url',
  authorizationHeader: 'authorization_header', description: 'description', status: 'status', statusReason: 'status_reason',
};

export function createSqliteSsf({ db, statement, call }: SqliteContext): SsfRepository {
  const insertStream = statement<[Record<string, unknown>]>(`
    INSERT INTO ssf_streams (id, client_id, events_requested, delivery_method, endpoint_url, authorization_header, description, status, status_reason, created_at, updated_at)
    VALUES (@id, @clientId, @eventsRequested, @deliveryMethod, @endpointUrl, @authorizationHeader, @description, @status, @statusReason, @createdAt, @updatedAt)
    ON CONFLICT DO NOTHING
  `);
  const byId = statement<[string], StreamRow>('SELECT * FROM ssf_streams WHERE id = ?');
  const byClient = statement<[string], StreamRow>('SELECT * FROM ssf_streams WHERE client_id = ?');
  const all = statement<[], StreamRow>('SELECT * FROM ssf_streams ORDER BY client_id');
  const deleteEvents = statement<[string]>('DELETE FROM ssf_events WHERE stream_id = ?');
  const deleteStream = statement<[string]>('DELETE FROM ssf_streams WHERE id = ?');
  const insertEvent = statement<[Record<string, unknown>]>(`
    INSERT INTO ssf_events (stream_id, jti, set_jwt, types, created_at, expires_at) VALUES (@streamId, @jti, @set, @types, @createdAt, @expiresAt)
  `);
  const eventBy = statement<[string, string], EventRow>('SELECT * FROM ssf_events WHERE stream_id = ? AND jti = ?');
  const line = statement<[string, number, number], EventRow>(
    'SELECT * FROM ssf_events WHERE stream_id = ? AND delivered_at IS NULL AND failed = 0 AND expires_at > ? ORDER BY seq LIMIT ?',
  );
  const deliver = statement<[{ stream: string; jti: string; outcome: string; now: number; expiresAt: number }]>(`
    UPDATE ssf_events SET delivered_at = @now, last_outcome = @outcome, expires_at = @expiresAt
    WHERE stream_id = @stream AND jti = @jti AND delivered_at IS NULL AND failed = 0
  `);
  const attempt = statement<[{ stream: string; jti: string; outcome: string; now: number; failed: number }]>(`
    UPDATE ssf_events SET attempts = attempts + 1, last_outcome = @outcome, last_attempt_at = @now, failed = MAX(failed, @failed)
    WHERE stream_id = @stream AND jti = @jti
  `);
  // Over the kept (unexpired) events only: expiry is checked on read (types.ts).
  const stats = statement<[number], { stream_id: string; undelivered: number; oldest: number | null; delivered: number; failed: number }>(`
    SELECT stream_id,
      SUM(CASE WHEN delivered_at IS NULL AND failed = 0 THEN 1 ELSE 0 END) AS undelivered,
      MIN(CASE WHEN delivered_at IS NULL AND failed = 0 THEN created_at END) AS oldest,
      SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END) AS delivered,
      SUM(failed) AS failed
    FROM ssf_events WHERE expires_at > ? GROUP BY stream_id ORDER BY stream_id
  `);
  // The newest outcome: an event's last_outcome is its latest (a delivery replaces an attempt's), at
  // the later of its last attempt and its delivery (a push delivered after retries has both).
  const lastAttempt = statement<[string, number], { last_outcome: string | null; at: number }>(`
    SELECT last_outcome, MAX(COALESCE(last_attempt_at, 0), COALESCE(delivered_at, 0)) AS at FROM ssf_events
    WHERE stream_id = ? AND expires_at > ? AND (last_attempt_at IS NOT NULL OR delivered_at IS NOT NULL)
    ORDER BY at DESC LIMIT 1
  `);
  const purge = statement<[number]>('DELETE FROM ssf_events WHERE expires_at <= ?');

  return {
    createStream: (s) =>
      call(() => insertStream().run({ ...s, eventsRequested: JSON.stringify(s.eventsRequested) }).changes === 1),
    findStream: (id) => call(() => { const r = byId().get(id); return r && streamOf(r); }),
    findStreamByClient: (clientId) => call(() => { const r = byClient().get(clientId); return r && streamOf(r); }),
    streamsFor: (clientIds) =>
      call(() => {
        if (clientIds.length === 0) return [];
        const rows = db.prepare<string[], StreamRow>(`SELECT * FROM ssf_streams WHERE client_id IN (${clientIds.map(() => '?').join(',')})`).all(...clientIds);
        return rows.map(streamOf);
      }),
    listStreams: () => call(() => all().all().map(streamOf)),
    updateStream: (id, changes, now) =>
      call(() => {
        const sets: string[] = ['updated_at = @updatedAt'];
        const params: Record<string, unknown> = { id, updatedAt: now };
        for (const [field, value] of Object.entries(changes)) {
          const column = COLUMNS[field];
          if (!column || value === undefined) continue;
          sets.push(`${column} = @${field}`);
          params[field] = field === 'eventsRequested' ? JSON.stringify(value) : value;
        }
        // Field names come from COLUMNS only; values are bound parameters.
        db.prepare(`UPDATE ssf_streams SET ${sets.join(', ')} WHERE id = @id`).run(params);
        const r = byId().get(id);
        return r && streamOf(r);
      }),
    deleteStream: (id) =>
      call(() => db.transaction(() => {
        deleteEvents().run(id);
        return deleteStream().run(id).changes === 1;
      })()),
    // One transaction: a jti already queued in its stream (RFC 8417 §2.2) refuses the whole batch.
    addEvents: (events) =>
      call(() => db.transaction(() => events.map((e) => {
        const seq = Number(insertEvent().run({ ...e, types: JSON.stringify(e.types) }).lastInsertRowid);
        return { ...e, seq, attempts: 0, lastOutcome: null, lastAttemptAt: null, deliveredAt: null, failed: false } satisfies SsfEvent;
      }))(), () => 'jti'),
    findEvent: (streamId, jti) => call(() => { const r = eventBy().get(streamId, jti); return r && eventOf(r); }),
    // A negative LIMIT is no limit to SQLite: a line of none is asked for nothing.
    undelivered: (streamId, now, limit) => call(() => (limit >= 1 ? line().all(streamId, now, Math.floor(limit)).map(eventOf) : [])),
    markDelivered: (streamId, jtis, outcome, now) =>
      call(() => db.transaction(() => [...new Set(jtis)].filter((jti) =>
        deliver().run({ stream: streamId, jti, outcome: outcome.slice(0, 200), now, expiresAt: now + DELIVERED_KEEP_MS }).changes === 1))()),
    recordAttempt: (streamId, jti, outcome, now, failed = false) =>
      call(() => { attempt().run({ stream: streamId, jti, outcome: outcome.slice(0, 200), now, failed: failed ? 1 : 0 }); }),
    deliveryStats: (now) =>
      call(() => stats().all(now).map((r) => {
        const last = lastAttempt().get(r.stream_id, now);
        return {
          streamId: r.stream_id, undelivered: r.undelivered, oldestUndeliveredAt: r.oldest, delivered: r.delivered, failed: r.failed,
          lastOutcome: last?.last_outcome ?? null, lastAttemptAt: last?.at ?? null,
        };
      })),
    purge: (now) => call(() => purge().run(now).changes),
  };
}
