/**
 * OpenID Connect Back-Channel Logout 1.0: when a session ends, every portal in it that registered a
 * `backchannel_logout_uri` receives a signed logout token (§2.4) by POST (§2.5).
 *
 * oidc-provider can send these itself, but only inline, inside the sign-out request, once, with no
 * record. Here deliveries are durable jobs (see jobs/): the sign-out only enqueues, deliveries go out
 * in parallel with a 5-second timeout, failures are retried with back-off across restarts and
 * instances, and each attempt's outcome is kept. The token is minted at delivery time so a retried
 * delivery never carries a stale `iat`.
 */
import crypto from 'node:crypto';
import { SignJWT, importJWK, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { AuditService } from '../audit/index.js';
import type { JobHandler, JobResult } from '../jobs/index.js';
import type { PortalService } from '../portals/index.js';
import type { Job, JobRepository } from '../store/index.js';
import { pairwiseSubject } from './pairwise.js';

export const BACKCHANNEL_LOGOUT_JOB = 'backchannel-logout';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Per delivery (issue 4): a slow portal costs at most this, and never the citizen. */
export const DELIVERY_TIMEOUT_MS = 5_000;
/** 10 s, 30 s, 1.5 min, 4.5 min, … capped at 1 h: about 9 hours of tries in all. */
export const MAX_ATTEMPTS = 12;
const RETRY_BASE_MS = 10_000;
const RETRY_MAX_MS = 60 * 60_000;
/** A logout token is used at once; two minutes cover clock skew (§2.6 lets the RP bound `iat`). */
const TOKEN_LIFETIME_S = 120;
const KEEP_MS = 7 * 24 * 3600_000;

/** Why a session (or a portal's part of one) ended: recorded with each delivery, never sent. */
export type LogoutReason =
  | 'logout' | 'expired' | 'ended_elsewhere' | 'account_locked' | 'account_unavailable' | 'org_access_ended'
  | 'consent_withdrawn' | 'mfa_reset' | 'level_lowered' | 'factor_removed' | 'password_reset' | 'account_reset'
  | 'password_changed' | 'not_me' | 'self_locked';

/** One portal's part of a session: oidc-provider's per-client `sid`. */
export interface PortalSessionRef {
  clientId: string;
  sid: string;
}

export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 3 ** Math.max(0, attempts - 1));
}

type Fetch = (url: string, init: { method: string; headers: Record<string, string>; body: string }) => Promise<Response>;

interface DeliveryPayload {
  clientId: string;
  accountId: string;
  sid: string;
  reason: LogoutReason;
}

function readPayload(job: Job): DeliveryPayload | undefined {
  const { clientId, accountId, sid, reason } = job.payload;
  if (typeof clientId !== 'string' || typeof accountId !== 'string' || typeof sid !== 'string' || typeof reason !== 'string') return undefined;
  return { clientId, accountId, sid, reason: reason as LogoutReason };
}

export function createBackchannelLogout(deps: {
  issuer: string;
  /** The active signing key (private JWK) of an algorithm, from the current key set. */
  signingKey: (alg: string) => JWK | undefined;
  pairwiseSalt: string;
  portals: PortalService;
  fetch: Fetch;
  audit: AuditService;
  logger: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'backchannel-logout' });

  /** The logout token of §2.4: `typ` logout+jwt, `events`, `sub` and `sid`, never a `nonce`. */
  async function logoutToken(payload: DeliveryPayload, sector: string, alg: string): Promise<string> {
    const jwk = deps.signingKey(alg) ?? deps.signingKey('RS256');
    if (!jwk) throw new Error(`no signing key for ${alg}`);
    const key = await importJWK(jwk as JWK, String(jwk.alg));
    const iat = Math.floor(now() / 1000);
    return new SignJWT({
      sub: pairwiseSubject(deps.pairwiseSalt, sector, payload.accountId),
      sid: payload.sid,
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    })
      .setProtectedHeader({ alg: String(jwk.alg), typ: 'logout+jwt', kid: String(jwk.kid) })
      .setIssuer(deps.issuer)
      .setAudience(payload.clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + TOKEN_LIFETIME_S)
      .setJti(crypto.randomBytes(16).toString('base64url'))
      .sign(key);
  }

  async function run(job: Job): Promise<JobResult> {
    const payload = readPayload(job);
    if (!payload) return { status: 'failed', outcome: 'malformed job' };
    const portal = await deps.portals.find(payload.clientId);
    const uri = portal?.metadata.backchannel_logout_uri;
    if (!portal || portal.disabled || typeof uri !== 'string') {
      return { status: 'failed', outcome: 'portal disabled or without a back-channel logout URI' };
    }
    const alg = typeof portal.metadata.id_token_signed_response_alg === 'string' ? portal.metadata.id_token_signed_response_alg : 'RS256';
    const token = await logoutToken(payload, portal.sector, alg);
    const details = { portal: payload.clientId, attempt: job.attempts, reason: payload.reason };

    let outcome: string;
    let final = false;
    try {
      const response = await deps.fetch(uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-store' },
        body: new URLSearchParams({ logout_token: token }).toString(),
      });
      await response.body?.cancel().catch(() => undefined);
      outcome = `HTTP ${response.status}`;
      // §2.8: 200 (204 is common and harmless) means the RP logged the session out.
      if (response.status === 200 || response.status === 204) {
        deps.audit.record('BACKCHANNEL_LOGOUT_DELIVERED', { ...details, outcome });
        return { status: 'done', outcome };
      }
      // 400 means the RP rejected this token: sending it again will not help. Other answers
      // (5xx, 408, 429, redirects) may pass.
      final = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      final = e.code === 'outbound_refused';
      outcome = final ? 'refused: destination not allowed' : String(e.message ?? 'network error').slice(0, 200);
    }
    if (final || job.attempts >= MAX_ATTEMPTS) {
      deps.audit.record('BACKCHANNEL_LOGOUT_FAILED', { ...details, outcome });
      log.warn({ portal: payload.clientId, attempts: job.attempts, outcome }, 'back-channel logout given up');
      return { status: 'failed', outcome };
    }
    const dueAt = now() + retryDelayMs(job.attempts);
    deps.audit.record('BACKCHANNEL_LOGOUT_RETRYING', { ...details, outcome, next_attempt: new Date(dueAt).toISOString() });
    return { status: 'retry', outcome, dueAt };
  }

  const handler: JobHandler = { kind: BACKCHANNEL_LOGOUT_JOB, leaseMs: DELIVERY_TIMEOUT_MS * 6, keepMs: KEEP_MS, run };
  return { handler, logoutToken };
}

/**
 * Enqueues deliveries for the portals of an ending session that registered for back-channel
 * logout. Job ids are per (portal, sid), so the several triggers of one ending (sign-out, the
 * expiry sweep, the expired-session check) notify each portal once. Written straight to the store's
 * queue, so the CLI (which runs no jobs) can end sessions too; `kick` runs them at once in a server.
 */
export function createLogoutNotifier(deps: {
  jobs: JobRepository;
  kick?: () => void;
  portals: PortalService;
  now?: () => number;
  /**
   * Told of every ending, for every portal in it whether or not it registered for back-channel
   * logout (the security events' session-revoked: events/emitter.ts). Must not throw.
   */
  ended?: (accountId: string, refs: readonly PortalSessionRef[], reason: LogoutReason) => void;
}) {
  const now = deps.now ?? Date.now;
  return async function notifyPortals(accountId: string, refs: readonly PortalSessionRef[], reason: LogoutReason): Promise<void> {
    deps.ended?.(accountId, refs, reason);
    let queued = 0;
    for (const ref of refs) {
      const portal = await deps.portals.find(ref.clientId);
      if (!portal || portal.disabled || typeof portal.metadata.backchannel_logout_uri !== 'string') continue;
      const payload = { clientId: ref.clientId, accountId, sid: ref.sid, reason };
      const t = now();
      if (await deps.jobs.enqueue({ id: `bcl:${ref.clientId}:${ref.sid}`, kind: BACKCHANNEL_LOGOUT_JOB, payload, dueAt: t }, t)) queued += 1;
    }
    if (queued) deps.kick?.();
  };
}
export type LogoutNotifier = ReturnType<typeof createLogoutNotifier>;
