/**
 * Delivering Security Event Tokens: push (RFC 8935) from the durable job queue, and poll (RFC 8936).
 *
 * Push keeps each portal's order: only the oldest undelivered SET of a stream (its head) has a job,
 * and the next one's job is made when the head is delivered or given up. An account disabled and
 * then enabled is never told the other way round, and a portal that is down holds up only its own
 * stream. Retries follow back-channel logout's policy (10 s, 30 s, 1.5 min … capped at 1 h, 12
 * tries, 5-second timeout): 202 (any 2xx) is delivered; a 4xx other than 408 and 429 is the
 * receiver refusing that SET (RFC 8935 §2.3), so it is given up at once and the line moves on.
 * Every request goes through the SSRF guard (outbound/guarded-fetch.ts).
 *
 * A push job's id names the stream, the SET's place and the stream's revision: a stream paused,
 * re-pointed or switched between push and poll starts a new line of jobs (`resume`), and a job of
 * an older revision ends without sending.
 *
 * Poll hands out the undelivered SETs in order until the receiver acknowledges them (RFC 8936
 * §2.4); a request with nothing to hand out may wait (long polling), looking again every half
 * second, so that SETs made by any instance (or the command line) are seen.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AuditService } from '../audit/index.js';
import type { JobHandler, JobResult } from '../jobs/index.js';
import type { SecretBox } from '../keys/secret-box.js';
import type { GuardedFetch } from '../outbound/guarded-fetch.js';
import { MAX_ATTEMPTS, retryDelayMs } from '../provider/backchannel-logout.js';
import type { JobRepository, SsfStream, Store } from '../store/index.js';
import { SSF_PUSH, VERIFICATION_EVENT } from './event-types.js';
import type { SecurityEvents } from './emitter.js';
import type { EventDelivery, PollRequest, PollResponse } from './types.js';

export const SSF_PUSH_JOB = 'ssf-push';
const KEEP_JOBS_MS = 24 * 3600_000;
/** Long polling waits at most this long (the routes ask for less). */
const MAX_WAIT_MS = 30_000;
const POLL_LOOK_MS = 500;

export const authorizationAad = (streamId: string) => `ssf-auth:${streamId}`;

const pushJobId = (stream: SsfStream, seq: number) => `${SSF_PUSH_JOB}:${stream.id}:${seq}:${stream.updatedAt}`;

/**
 * Makes sure the head of a push stream has a job (a new SET was queued, or the line moved on).
 * With `now`, a head waiting for its next try is tried at once (the stream was resumed).
 */
export async function queueHead(deps: { store: Pick<Store, 'ssf'>; jobs: JobRepository; kick?: () => void }, stream: SsfStream, at: number, options: { now?: boolean } = {}): Promise<void> {
  if (stream.deliveryMethod !== SSF_PUSH || stream.status !== 'enabled' || !stream.endpointUrl) return;
  const [head] = await deps.store.ssf.undelivered(stream.id, at, 1);
  if (!head) return;
  const id = pushJobId(stream, head.seq);
  const created = await deps.jobs.enqueue({ id, kind: SSF_PUSH_JOB, payload: { stream: stream.id, jti: head.jti, rev: stream.updatedAt }, dueAt: at }, at);
  if (!created && options.now) {
    const job = await deps.jobs.find(id);
    // Not one being run right now (its lease not over): that one reports for itself.
    if (job?.status === 'pending' && job.leaseUntil <= at) await deps.jobs.retry(id, at, 'resumed', at);
  }
  if (created || options.now) deps.kick?.();
}

export function createEventDelivery(deps: {
  store: Pick<Store, 'ssf'>;
  jobs: JobRepository;
  events: Pick<SecurityEvents, 'streamEvent'>;
  fetch: GuardedFetch;
  secretBox: SecretBox;
  audit: AuditService;
  logger: Logger;
  kick?: () => void;
  now?: () => number;
}): EventDelivery & { handler: JobHandler } {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'security-events' });

  async function moveOn(stream: SsfStream): Promise<void> {
    await queueHead(deps, stream, now());
  }

  async function run(job: { payload: Record<string, unknown> }): Promise<JobResult> {
    const { stream: streamId, jti, rev } = job.payload;
    if (typeof streamId !== 'string' || typeof jti !== 'string' || typeof rev !== 'number') return { status: 'failed', outcome: 'malformed job' };
    const stream = await deps.store.ssf.findStream(streamId);
    if (!stream) return { status: 'done', outcome: 'stream deleted' };
    if (stream.updatedAt !== rev) {
      // The stream changed since: its current line delivers (made here if nothing made it yet).
      await moveOn(stream);
      return { status: 'done', outcome: 'stream changed: a newer job delivers' };
    }
    if (stream.deliveryMethod !== SSF_PUSH || !stream.endpointUrl) return { status: 'done', outcome: 'stream polled' };
    if (stream.status !== 'enabled') return { status: 'done', outcome: `held: stream ${stream.status}` };
    const event = await deps.store.ssf.findEvent(stream.id, jti);
    if (!event || event.deliveredAt !== null || event.failed) {
      await moveOn(stream);
      return { status: 'done', outcome: 'already settled' };
    }
    const details = { portal: stream.clientId, stream: stream.id, jti, attempt: event.attempts + 1 };
    const headers: Record<string, string> = { 'content-type': 'application/secevent+jwt', accept: 'application/json' };
    if (stream.authorizationHeader) headers.authorization = deps.secretBox.open(stream.authorizationHeader, authorizationAad(stream.id));

    let outcome: string;
    let final = false;
    try {
      const response = await deps.fetch(stream.endpointUrl, { method: 'POST', headers, body: event.set });
      outcome = `HTTP ${response.status}`;
      if (response.status >= 200 && response.status < 300) {
        await response.body?.cancel().catch(() => undefined);
        await deps.store.ssf.markDelivered(stream.id, [jti], outcome, now());
        deps.audit.record('SSF_EVENT_DELIVERED', { ...details, outcome });
        await moveOn(stream);
        return { status: 'done', outcome };
      }
      // RFC 8935 §2.3: a 400 carries {"err", "description"}; the code (from its closed list, or
      // whatever the receiver sent, cut short) is kept as the outcome.
      if (response.status === 400) {
        const body = await response.json().catch(() => undefined) as { err?: unknown } | undefined;
        if (typeof body?.err === 'string') outcome += ` ${body.err.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 40)}`;
      } else {
        await response.body?.cancel().catch(() => undefined);
      }
      final = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      final = e.code === 'outbound_refused';
      outcome = final ? 'refused: destination not allowed' : String(e.message ?? 'network error').slice(0, 200);
    }
    const t = now();
    if (final || event.attempts + 1 >= MAX_ATTEMPTS) {
      await deps.store.ssf.recordAttempt(stream.id, jti, outcome, t, true);
      deps.audit.record('SSF_EVENT_FAILED', { ...details, outcome });
      log.warn({ portal: stream.clientId, attempts: event.attempts + 1, outcome }, 'security event given up');
      await moveOn(stream);
      return { status: 'failed', outcome };
    }
    await deps.store.ssf.recordAttempt(stream.id, jti, outcome, t);
    const dueAt = t + retryDelayMs(event.attempts + 1);
    deps.audit.record('SSF_EVENT_RETRYING', { ...details, outcome, next_attempt: new Date(dueAt).toISOString() });
    return { status: 'retry', outcome, dueAt };
  }

  return {
    handler: { kind: SSF_PUSH_JOB, leaseMs: 30_000, keepMs: KEEP_JOBS_MS, run },

    async verify(stream, state) {
      await deps.events.streamEvent(stream, VERIFICATION_EVENT, state === undefined ? {} : { state });
    },

    async resume(stream) {
      await queueHead(deps, stream, now(), { now: true });
    },

    async poll(stream, request: PollRequest, options = {}): Promise<PollResponse> {
      const t = now();
      if (request.ack.length) {
        const acked = await deps.store.ssf.markDelivered(stream.id, request.ack, 'acknowledged', t);
        if (acked.length) deps.audit.record('SSF_EVENTS_ACKNOWLEDGED', { portal: stream.clientId, stream: stream.id, count: acked.length });
      }
      for (const [jti, e] of Object.entries(request.setErrs)) {
        const event = await deps.store.ssf.findEvent(stream.id, jti);
        if (!event || event.deliveredAt !== null || event.failed) continue;
        const outcome = `setErr ${e.err.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 40)}`;
        await deps.store.ssf.recordAttempt(stream.id, jti, outcome, t, true);
        deps.audit.record('SSF_EVENT_FAILED', { portal: stream.clientId, stream: stream.id, jti, outcome });
      }
      // A paused stream holds its events; a disabled one has none to give (SSF §8.1.2).
      const open = stream.status === 'enabled';
      const take = async () => (open ? deps.store.ssf.undelivered(stream.id, now(), request.maxEvents + 1) : []);
      let events = request.maxEvents > 0 ? await take() : [];
      if (request.maxEvents > 0 && events.length === 0 && !request.returnImmediately && open) {
        // Real time, whatever clock the records are stamped with: this is how long a request waits.
        const until = Date.now() + Math.min(options.waitMs ?? MAX_WAIT_MS, MAX_WAIT_MS);
        while (events.length === 0 && Date.now() < until && !options.signal?.aborted) {
          await sleep(POLL_LOOK_MS, undefined, { signal: options.signal }).catch(() => undefined);
          // The stream may have been deleted or paused meanwhile.
          const current = await deps.store.ssf.findStream(stream.id);
          if (!current || current.status !== 'enabled') break;
          events = await take();
        }
      }
      const given = events.slice(0, request.maxEvents);
      const moreAvailable = request.maxEvents === 0
        ? open && (await deps.store.ssf.undelivered(stream.id, t, 1)).length > 0
        : events.length > request.maxEvents;
      return { sets: Object.fromEntries(given.map((e) => [e.jti, e.set])), moreAvailable };
    },
  };
}
