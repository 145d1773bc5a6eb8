/**
 * How an SSO session ends, whichever way it ends — sign-out, idle or absolute expiry, the citizen
 * ending it from another device, an operator's lock — and what follows: the session and its clocks
 * are removed and every portal in it that registered for back-channel logout is told.
 *
 * Expiry needs a sweep: a browser that never comes back never meets the `session_expired` check,
 * yet its portals must still learn that the session is over. At sign-in a `session-expiry` job is
 * scheduled for when the session would go idle; when it runs it either finds the session still in
 * use and moves itself to the new idle deadline, or ends the session.
 */
import type { Logger } from 'pino';
import type { AuditService } from '../audit/index.js';
import type { JobHandler, JobRunner } from '../jobs/index.js';
import type { Store } from '../store/index.js';
import type { LogoutNotifier, LogoutReason, PortalSessionRef } from './backchannel-logout.js';

export const SESSION_EXPIRY_JOB = 'session-expiry';

/** What the lifecycle needs of an oidc-provider session (its public members). */
export interface SessionLike {
  uid: string;
  accountId?: string;
  authorizations?: Record<string, { sid?: string } | undefined>;
  destroy(): Promise<void>;
}

export const sessionCounterKeys = (uid: string) => [`session-start:${uid}`, `session-seen:${uid}`, `session-auth:${uid}`, `session-mfa:${uid}`];

export function portalRefs(session: Pick<SessionLike, 'authorizations'>, only?: readonly string[]): PortalSessionRef[] {
  return Object.entries(session.authorizations ?? {})
    .filter(([clientId, a]) => typeof a?.sid === 'string' && (!only || only.includes(clientId)))
    .map(([clientId, a]) => ({ clientId, sid: a!.sid! }));
}

export function createSessionLifecycle(deps: {
  store: Store;
  findSession: (uid: string) => Promise<SessionLike | undefined>;
  notifyPortals: LogoutNotifier;
  runner: JobRunner;
  audit: AuditService;
  logger: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;

  /** A new session began at `startedAt`: schedule its expiry check for when it would go idle. */
  async function started(uid: string, startedAt: number, idleMs: number): Promise<void> {
    await deps.runner.enqueue(SESSION_EXPIRY_JOB, `session-expiry:${uid}:${startedAt}`, { uid, startedAt }, startedAt + idleMs);
  }

  /** The portals in a session that has just ended (the caller removed or is removing it). */
  async function ended(accountId: string, refs: readonly PortalSessionRef[], reason: LogoutReason): Promise<void> {
    await deps.notifyPortals(accountId, refs, reason);
  }

  /**
   * Ends a stored session: destroys it, removes its clocks, tells its portals. False when there is
   * no such session (already ended) or it belongs to someone else.
   */
  async function end(uid: string, reason: LogoutReason, accountId?: string): Promise<boolean> {
    const session = await deps.findSession(uid);
    if (session?.accountId && accountId && session.accountId !== accountId) return false;
    await Promise.all(sessionCounterKeys(uid).map((k) => deps.store.counters.reset(k)));
    if (!session?.accountId) return false;
    await session.destroy();
    await ended(session.accountId, portalRefs(session), reason);
    // The account area records the sessions a citizen ends themselves (with who and how many).
    if (reason !== 'ended_elsewhere') deps.audit.record('SESSION_ENDED', { person: session.accountId, reason, portals: Object.keys(session.authorizations ?? {}) });
    return true;
  }

  /**
   * The `session_expired` check met an expired session on its way to a new sign-in: its portals are
   * told, and the in-memory session forgets them (the sign-in that follows starts afresh).
   */
  async function expiredInRequest(session: SessionLike): Promise<void> {
    if (!session.accountId) return;
    const refs = portalRefs(session);
    await Promise.all(sessionCounterKeys(session.uid).map((k) => deps.store.counters.reset(k)));
    await ended(session.accountId, refs, 'expired');
    if (refs.length) deps.audit.record('SESSION_ENDED', { person: session.accountId, reason: 'expired', portals: refs.map((r) => r.clientId) });
    for (const clientId of Object.keys(session.authorizations ?? {})) delete session.authorizations![clientId];
  }

  const expiryHandler: JobHandler = {
    kind: SESSION_EXPIRY_JOB,
    leaseMs: 60_000,
    keepMs: 24 * 3600_000,
    async run(job) {
      const uid = job.payload.uid;
      if (typeof uid !== 'string') return { status: 'failed', outcome: 'malformed job' };
      const t = now();
      const [start, seen] = await Promise.all([
        deps.store.counters.get(`session-start:${uid}`, t),
        deps.store.counters.get(`session-seen:${uid}`, t),
      ]);
      if (start && seen) {
        // Still in use: look again when it would next go idle (or reach its absolute limit).
        return { status: 'retry', outcome: 'live', dueAt: Math.min(seen.expiresAt, start.expiresAt) };
      }
      const endedNow = await end(uid, 'expired');
      return { status: 'done', outcome: endedNow ? 'ended' : 'already ended' };
    },
  };

  return { started, ended, end, expiredInRequest, expiryHandler };
}
export type SessionLifecycle = ReturnType<typeof createSessionLifecycle>;
