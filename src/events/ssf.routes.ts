/**
 * The transmitter's public face (OpenID Shared Signals Framework 1.0): its metadata at
 * `/.well-known/ssf-configuration` (§7), the stream-management API (§8.1: a portal's one stream,
 * its status and verification), and the poll endpoint (RFC 8936). On the public listener only.
 *
 * Every call but the metadata authenticates the portal (client-auth.ts). A portal sees only its
 * own stream: another's `stream_id` is answered 404, never 403, so nothing says it exists. Bodies
 * are JSON objects of at most 32 KiB; a member of the wrong type is a 400 and changes nothing;
 * members the API does not know are ignored (SSF §8.1.1). Errors are JSON, `error` and
 * `error_description` (RFC 6749 §5.2's shape), and never a 500 for what a portal can send.
 */
import crypto from 'node:crypto';
import Router from '@koa/router';
import getRawBody from 'raw-body';
import type { Context } from 'koa';
import type { AuditService } from '../audit/index.js';
import type { SecretBox } from '../keys/secret-box.js';
import { PortalValidationError, validateEndpointUrl } from '../portals/portal.validation.js';
import type { CounterRepository, Portal, SsfStream, Store } from '../store/index.js';
import { StoreUnavailableError } from '../store/index.js';
import { authorizationAad } from './delivery.js';
import { ClientAuthError, type ClientAuth } from './client-auth.js';
import { EVENTS_SUPPORTED, SSF_POLL, SSF_PUSH, isSupportedEventType } from './event-types.js';
import type { EventDelivery, PollRequest } from './types.js';

const BODY_LIMIT = 32 * 1024;
/** SSF §8.1.1 `min_verification_interval`: a verification request at most this often per stream. */
export const MIN_VERIFICATION_INTERVAL_S = 15;
/** RFC 8936 long polling: how long a poll with nothing to hand out may wait. */
export const LONG_POLL_MS = 20_000;
const MAX_EVENTS = 1000;
/** Long polls of one stream that may wait at once, per instance. */
const MAX_WAITING = 2;

class ApiError extends Error {
  constructor(readonly status: number, readonly error: string, description: string, readonly headers: Record<string, string> = {}) {
    super(description);
  }
}

const bad = (description: string) => new ApiError(400, 'invalid_request', description);
const notFound = () => new ApiError(404, 'not_found', 'no such stream');

async function readJson(ctx: Context): Promise<Record<string, unknown>> {
  if (ctx.request.type !== 'application/json') throw new ApiError(415, 'invalid_request', 'the body must be application/json');
  let raw: string;
  try {
    raw = await getRawBody(ctx.req, { limit: BODY_LIMIT, encoding: 'utf8', length: ctx.request.length });
  } catch (err) {
    if ((err as { type?: string }).type === 'entity.too.large') throw new ApiError(413, 'invalid_request', `the body is larger than ${BODY_LIMIT} bytes`);
    throw bad('the body could not be read');
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw bad('the body is not JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('the body must be a JSON object');
  return value as Record<string, unknown>;
}

function optString(body: Record<string, unknown>, name: string, max: number): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max || /\p{Cc}/u.test(v)) throw bad(`${name} must be a string of at most ${max} characters`);
  return v;
}

/** `events_requested`: a list of strings; types the transmitter does not make are dropped (SSF §8.1.1). */
function eventsRequested(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > 100 || !value.every((v) => typeof v === 'string' && v.length <= 300)) {
    throw bad('events_requested must be a list of event type URIs');
  }
  return [...new Set(value.filter(isSupportedEventType))];
}

interface DeliveryInput {
  method: SsfStream['deliveryMethod'];
  endpointUrl: string | null;
  authorizationHeader: string | null | undefined;
}

function deliveryOf(value: unknown, production: boolean): DeliveryInput {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad('delivery must be an object with a method');
  const d = value as Record<string, unknown>;
  if (d.method !== SSF_PUSH && d.method !== SSF_POLL) throw bad(`delivery.method must be ${SSF_PUSH} (push) or ${SSF_POLL} (poll)`);
  if (d.method === SSF_POLL) return { method: SSF_POLL, endpointUrl: null, authorizationHeader: null };
  if (typeof d.endpoint_url !== 'string' || d.endpoint_url.length > 2000) throw bad('delivery.endpoint_url is required for push');
  let endpointUrl: string;
  try {
    // The URL rules of a back-channel logout URI (Back-Channel Logout 1.0 §2.2); whether its
    // address may be reached is the SSRF guard's, at each delivery.
    endpointUrl = validateEndpointUrl('delivery.endpoint_url', d.endpoint_url, production);
  } catch (err) {
    if (err instanceof PortalValidationError) throw bad(err.message);
    throw err;
  }
  let authorizationHeader: string | null | undefined;
  if (d.authorization_header !== undefined) {
    const h = d.authorization_header;
    if (h !== null && (typeof h !== 'string' || h.length === 0 || h.length > 1024 || !/^[\x20-\x7e]+$/.test(h))) {
      throw bad('delivery.authorization_header must be visible ASCII, at most 1024 characters');
    }
    authorizationHeader = h as string | null;
  }
  return { method: SSF_PUSH, endpointUrl, authorizationHeader };
}

export function createSsfRoutes(deps: {
  issuer: string;
  jwksUri: string;
  store: Pick<Store, 'ssf'>;
  counters: CounterRepository;
  auth: ClientAuth;
  secretBox: SecretBox;
  delivery: EventDelivery;
  audit: AuditService;
  production: boolean;
  now?: () => number;
}): Router {
  const now = deps.now ?? Date.now;
  const router = new Router();
  const url = (path: string) => `${deps.issuer}${path}`;
  const waitingPolls = new Map<string, number>();

  /** SSF §8.1.1's stream configuration, as the portal may see it (never the authorization header). */
  function config(s: SsfStream) {
    return {
      stream_id: s.id,
      iss: deps.issuer,
      aud: s.clientId,
      events_supported: EVENTS_SUPPORTED,
      events_requested: s.eventsRequested,
      events_delivered: s.eventsRequested.filter(isSupportedEventType),
      delivery: { method: s.deliveryMethod, endpoint_url: s.deliveryMethod === SSF_POLL ? url('/ssf/poll') : s.endpointUrl },
      min_verification_interval: MIN_VERIFICATION_INTERVAL_S,
      ...(s.description ? { description: s.description } : {}),
    };
  }

  /** Runs `fn` for an authenticated portal, answering errors as JSON. */
  const api = (fn: (ctx: Context, portal: Portal) => Promise<void>) => async (ctx: Context) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const portal = await deps.auth.authenticate(ctx.get('authorization') || undefined, `${deps.issuer}${ctx.path}`);
      await fn(ctx, portal);
    } catch (err) {
      let e: ApiError;
      if (err instanceof ApiError) e = err;
      else if (err instanceof ClientAuthError) e = new ApiError(401, 'invalid_client', 'client authentication failed', { 'WWW-Authenticate': 'Basic realm="dinhdanh", Bearer realm="dinhdanh"' });
      else if (err instanceof StoreUnavailableError) e = new ApiError(503, 'temporarily_unavailable', 'the store is unavailable; try again shortly', { 'Retry-After': '5' });
      else throw err;
      for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
      ctx.status = e.status;
      ctx.body = { error: e.error, error_description: e.message };
    }
  };

  /** The portal's stream, when `id` (if given) names it; else 404. */
  async function own(portal: Portal, id: unknown): Promise<SsfStream> {
    const stream = await deps.store.ssf.findStreamByClient(portal.clientId);
    if (!stream || (id !== undefined && id !== stream.id)) throw notFound();
    return stream;
  }
  const queryId = (ctx: Context): string | undefined => {
    const v = ctx.query.stream_id;
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw bad('stream_id must be given once');
    return v;
  };
  const bodyId = (body: Record<string, unknown>): string => {
    if (typeof body.stream_id !== 'string') throw bad('stream_id is required');
    return body.stream_id;
  };
  const seal = (streamId: string, header: string | null | undefined) => (header ? deps.secretBox.seal(header, authorizationAad(streamId)) : null);
  const record = (event: 'SSF_STREAM_CREATED' | 'SSF_STREAM_UPDATED' | 'SSF_STREAM_DELETED' | 'SSF_VERIFICATION_REQUESTED', portal: Portal, stream: SsfStream, extra: Record<string, string> = {}) =>
    deps.audit.record(event, { portal: portal.clientId, stream: stream.id, ...extra });

  router.get('/.well-known/ssf-configuration', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = {
      spec_version: '1_0',
      issuer: deps.issuer,
      jwks_uri: deps.jwksUri,
      delivery_methods_supported: [SSF_PUSH, SSF_POLL],
      configuration_endpoint: url('/ssf/stream'),
      status_endpoint: url('/ssf/status'),
      verification_endpoint: url('/ssf/verify'),
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
      default_subjects: 'ALL',
    };
  });

  router.post('/ssf/stream', api(async (ctx, portal) => {
    const body = await readJson(ctx);
    // SSF 1.0 §8.1.1.1: a stream created without `delivery` is polled.
    const delivery = deliveryOf(body.delivery ?? { method: SSF_POLL }, deps.production);
    const t = now();
    const id = crypto.randomBytes(16).toString('base64url');
    const stream: SsfStream = {
      id, clientId: portal.clientId, eventsRequested: eventsRequested(body.events_requested ?? []), deliveryMethod: delivery.method,
      endpointUrl: delivery.endpointUrl, authorizationHeader: seal(id, delivery.authorizationHeader), description: optString(body, 'description', 200) ?? null,
      status: 'enabled', statusReason: null, createdAt: t, updatedAt: t,
    };
    // SSF §8.1.1.1: a transmitter may refuse more streams than it supports (one per portal).
    if (!(await deps.store.ssf.createStream(stream))) throw new ApiError(409, 'conflict', 'this portal has a stream already: read, update or delete it');
    record('SSF_STREAM_CREATED', portal, stream, { method: stream.deliveryMethod });
    ctx.status = 201;
    ctx.body = config(stream);
  }));

  router.get('/ssf/stream', api(async (ctx, portal) => {
    const id = queryId(ctx);
    if (id !== undefined) {
      ctx.body = config(await own(portal, id));
      return;
    }
    const stream = await deps.store.ssf.findStreamByClient(portal.clientId);
    ctx.body = stream ? [config(stream)] : [];
  }));

  /** PATCH changes the members given; PUT replaces the configuration (SSF §8.1.1.3, §8.1.1.4). */
  const update = (replace: boolean) => api(async (ctx, portal) => {
    const body = await readJson(ctx);
    const stream = await own(portal, bodyId(body));
    const changes: Partial<SsfStream> = {};
    if (replace || body.events_requested !== undefined) changes.eventsRequested = eventsRequested(body.events_requested ?? []);
    if (replace || body.description !== undefined) changes.description = optString(body, 'description', 200) ?? null;
    if (replace || body.delivery !== undefined) {
      const d = deliveryOf(body.delivery ?? { method: SSF_POLL }, deps.production);
      changes.deliveryMethod = d.method;
      changes.endpointUrl = d.endpointUrl;
      if (d.method === SSF_POLL) changes.authorizationHeader = null;
      // The header is kept only for the same endpoint: sent to a new URL it would hand a secret the
      // portal gave for one server to another (it is write-only, never shown back).
      else if (d.authorizationHeader !== undefined || replace || stream.deliveryMethod !== SSF_PUSH || d.endpointUrl !== stream.endpointUrl) changes.authorizationHeader = seal(stream.id, d.authorizationHeader);
    }
    const after = await deps.store.ssf.updateStream(stream.id, changes, now());
    if (!after) throw notFound();
    record('SSF_STREAM_UPDATED', portal, after, { changed: Object.keys(changes).join(',') });
    // A new line of pushes for the new configuration (delivery.ts).
    await deps.delivery.resume(after);
    ctx.body = config(after);
  });
  router.patch('/ssf/stream', update(false));
  router.put('/ssf/stream', update(true));

  router.delete('/ssf/stream', api(async (ctx, portal) => {
    const id = queryId(ctx);
    if (id === undefined) throw bad('stream_id is required');
    const stream = await own(portal, id);
    await deps.store.ssf.deleteStream(stream.id);
    record('SSF_STREAM_DELETED', portal, stream);
    ctx.status = 204;
  }));

  router.get('/ssf/status', api(async (ctx, portal) => {
    const stream = await own(portal, queryId(ctx));
    ctx.body = { stream_id: stream.id, status: stream.status, ...(stream.statusReason ? { reason: stream.statusReason } : {}) };
  }));

  router.post('/ssf/status', api(async (ctx, portal) => {
    const body = await readJson(ctx);
    const stream = await own(portal, bodyId(body));
    const status = body.status;
    if (status !== 'enabled' && status !== 'paused' && status !== 'disabled') throw bad('status must be enabled, paused or disabled');
    const reason = optString(body, 'reason', 200) ?? null;
    const after = await deps.store.ssf.updateStream(stream.id, { status, statusReason: reason }, now());
    if (!after) throw notFound();
    record('SSF_STREAM_UPDATED', portal, after, { status });
    // The receiver's own change: no stream-updated event (SSF §8.1.5 is for a transmitter's own).
    if (status === 'enabled') await deps.delivery.resume(after);
    ctx.body = { stream_id: after.id, status: after.status, ...(after.statusReason ? { reason: after.statusReason } : {}) };
  }));

  router.post('/ssf/verify', api(async (ctx, portal) => {
    const body = await readJson(ctx);
    const stream = await own(portal, bodyId(body));
    const state = optString(body, 'state', 200);
    // Counted in the store: every instance holds the portal to the same interval.
    const t = now();
    const asked = await deps.counters.increment(`ssf-verify:${stream.id}`, MIN_VERIFICATION_INTERVAL_S * 1000, t);
    if (asked.count > 1) {
      const wait = Math.max(1, Math.ceil((asked.expiresAt - t) / 1000));
      throw new ApiError(429, 'slow_down', `at most one verification request every ${MIN_VERIFICATION_INTERVAL_S} seconds`, { 'Retry-After': String(wait) });
    }
    // A disabled stream gets no events (SSF 1.0 §8.1.2), a verification event neither.
    if (stream.status !== 'disabled') await deps.delivery.verify(stream, state);
    record('SSF_VERIFICATION_REQUESTED', portal, stream);
    ctx.status = 204;
  }));

  router.post('/ssf/poll', api(async (ctx, portal) => {
    const body = await readJson(ctx);
    const stream = await own(portal, undefined);
    if (stream.deliveryMethod !== SSF_POLL) throw bad('this stream is delivered by push');
    const list = (name: string): string[] => {
      const v = body[name];
      if (v === undefined) return [];
      if (!Array.isArray(v) || v.length > MAX_EVENTS || !v.every((x) => typeof x === 'string' && x.length <= 200)) throw bad(`${name} must be a list of at most ${MAX_EVENTS} jti strings`);
      return v as string[];
    };
    const setErrs: PollRequest['setErrs'] = {};
    if (body.setErrs !== undefined) {
      const v = body.setErrs;
      if (!v || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length > MAX_EVENTS) throw bad('setErrs must be an object of jti → {err, description}');
      for (const [jti, e] of Object.entries(v as Record<string, unknown>)) {
        const err = (e as { err?: unknown } | null)?.err;
        const description = (e as { description?: unknown } | null)?.description;
        if (jti.length > 200 || typeof err !== 'string' || err.length > 100 || (description !== undefined && typeof description !== 'string')) throw bad('each setErrs member must be {err, description}');
        setErrs[jti] = { err, description: String(description ?? '').slice(0, 500) };
      }
    }
    const maxEvents = body.maxEvents ?? 100;
    if (typeof maxEvents !== 'number' || !Number.isInteger(maxEvents) || maxEvents < 0 || maxEvents > MAX_EVENTS) throw bad(`maxEvents must be a whole number from 0 to ${MAX_EVENTS}`);
    const returnImmediately = body.returnImmediately ?? false;
    if (typeof returnImmediately !== 'boolean') throw bad('returnImmediately must be true or false');
    // The wait ends when the portal goes away: the response's 'close' comes when the connection
    // closes before the answer (the request's own 'close' came already, once its body was read).
    const gone = new AbortController();
    ctx.res.once('close', () => gone.abort());
    // At most MAX_WAITING long polls of one stream wait at once on this instance; more are answered
    // at once (each waiting poll reads the store twice a second).
    const waiting = waitingPolls.get(stream.id) ?? 0;
    const wait = !returnImmediately && waiting < MAX_WAITING;
    if (wait) waitingPolls.set(stream.id, waiting + 1);
    try {
      ctx.body = await deps.delivery.poll(stream, { ack: list('ack'), setErrs, maxEvents, returnImmediately: !wait }, { waitMs: LONG_POLL_MS, signal: gone.signal });
    } finally {
      if (wait) {
        const left = (waitingPolls.get(stream.id) ?? 1) - 1;
        if (left > 0) waitingPolls.set(stream.id, left);
        else waitingPolls.delete(stream.id);
      }
    }
  }));

  return router;
}
