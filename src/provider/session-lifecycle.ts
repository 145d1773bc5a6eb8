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
import type { JobHandler } from '../jobs/index.js';
import type { JobRepository, Store } from '../store/index.js';
import type { LogoutNotifier, LogoutReason } from './backchannel-logout.js';
import { portalRefs, sessionCounterKeys, type Access, type StoredSession } from './access.js';

export { portalRefs, sessionCounterKeys };

export const SESSION_EXPIRY_JOB = 'session-expiry';

/** What the lifecycle needs of an oidc-provider session (its public members). */
export interface SessionLike {
  uid: string;
  accountId?: string;
  authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean } | undefined>;
}

export function createSessionLifecycle(deps: {
  store: Store;
  access: Access;
  notifyPortals: LogoutNotifier;
  jobs: JobRepository;
  kick?: () => void;
  audit: AuditService;
  logger: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;

  /** A new session began at `startedAt`: schedule its expiry check for when it would go idle. */
  async function started(uid: string, startedAt: number, idleMs: number): Promise<void> {
    await deps.jobs.enqueue({ id: `session-expiry:${uid}:${startedAt}`, kind: SESSION_EXPIRY_JOB, payload: { uid, startedAt }, dueAt: startedAt + idleMs }, now());
  }

  /** The portals in a session that has just ended (the caller removed or is removing it). */
  async function ended(accountId: string, refs: ReturnType<typeof portalRefs>, reason: LogoutReason): Promise<void> {
    await deps.notifyPortals(accountId, refs, reason);
  }

  /**
   * Ends a stored session: destroys it, removes its clocks, revokes the grants it made (but those
   * made to outlive it), tells its portals. False when there is no such session (already ended)
   * or it belongs to someone else.
   */
  async function end(uid: string, reason: LogoutReason, accountId?: string): Promise<boolean> {
    const { ended: done, session } = await deps.access.endSession(uid, reason, accountId);
    // The account area records the sessions a citizen ends themselves (with who and how many).
    if (done && reason !== 'ended_elsewhere') {
      deps.audit.record('SESSION_ENDED', { person: session!.accountId as string, reason, portals: Object.keys(session!.authorizations ?? {}) });
    }
    return done;
  }

  /**
   * A check met an expired (or no longer valid) session on its way to a new sign-in: it ends as any
   * session ends, and the in-memory session forgets its portals (the sign-in that follows starts afresh).
   */
  async function expiredInRequest(session: SessionLike, reason: LogoutReason = 'expired'): Promise<void> {
    if (!session.accountId) return;
    const refs = portalRefs(session as StoredSession);
    const { ended: done } = await deps.access.endSession(session.uid, reason, session.accountId);
    if (!done) {
      // Its record was gone already (ended elsewhere, or written back by a request in flight):
      // what it held in this request still ends.
      for (const a of Object.values(session.authorizations ?? {})) {
        if (typeof a?.grantId === 'string' && a.persistsLogout !== true) await deps.access.revokeGrant(a.grantId);
      }
      await ended(session.accountId, refs, reason);
    }
    if (refs.length) deps.audit.record('SESSION_ENDED', { person: session.accountId, reason, portals: refs.map((r) => r.clientId) });
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
