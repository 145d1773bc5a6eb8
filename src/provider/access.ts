/**
 * Ending what a person's sessions and consents gave out, in the store, from any door — the server,
 * or the CLI in another process (which has no provider). oidc-provider keeps sessions, grants and
 * tokens as records of its adapter models; each record copies the person (`accountId`) and the
 * portal (`clientId`) out of its payload, so everything of a person, of a person at one portal, or
 * of one portal is found and deleted by an index, in one operation, with no list kept beside it
 * that could expire, drop an entry or lose one to a race.
 *
 * - A session ends as a sign-out ends it (OpenID Connect RP-Initiated Logout, oidc-provider's
 *   end_session): its record and its idle/absolute clocks are removed, the grants it made are
 *   revoked unless they were made to outlive it (`offline_access`), and its portals are told by
 *   back-channel logout. Without its clocks a session is over even if a request still in flight
 *   writes its record back (provider.ts, `session_expired`).
 * - Ending everything of a person also moves `accessRevokedBefore` (store/types.ts): sessions signed
 *   in and tokens issued before it count for nothing at their next use, whatever a concurrent
 *   request wrote back.
 */
import type { Store } from '../store/index.js';
import type { LogoutNotifier, LogoutReason, PortalSessionRef } from './backchannel-logout.js';

/** The adapter models that carry a grant to a portal: the grant itself and every token and code issued under it. */
/** The operators' console's sessions (admin/console-session.ts), filed under the person. */
export const CONSOLE_SESSION_MODEL = 'ConsoleSession';

export const GRANT_MODELS = ['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'] as const;
const TOKEN_MODELS = GRANT_MODELS.filter((m) => m !== 'Grant');

/** The idle, absolute, last-authentication and second-factor clocks of a session (provider.ts). */
export const sessionCounterKeys = (uid: string) => [`session-start:${uid}`, `session-seen:${uid}`, `session-auth:${uid}`, `session-mfa:${uid}`];

/** A session's part per portal, as oidc-provider stores it. */
interface Authorization {
  sid?: unknown;
  grantId?: unknown;
  persistsLogout?: unknown;
}

/** What a stored session is, as far as ending it goes (oidc-provider's Session payload). */
export interface StoredSession {
  /** The record id (the session cookie's value). */
  jti?: unknown;
  uid?: unknown;
  accountId?: unknown;
  loginTs?: unknown;
  authorizations?: Record<string, Authorization | undefined>;
}

export function portalRefs(session: Pick<StoredSession, 'authorizations'>, only?: readonly string[]): PortalSessionRef[] {
  return Object.entries(session.authorizations ?? {})
    .filter(([clientId, a]) => typeof a?.sid === 'string' && (!only || only.includes(clientId)))
    .map(([clientId, a]) => ({ clientId, sid: a!.sid as string }));
}

/**
 * Whether a session signed in at `loginTs`, or a token issued at `issuedAt` (both epoch seconds, as
 * oidc-provider writes them) still counts for a person whose access was revoked before an instant.
 * Whole seconds: a session or token of the very second of the revocation is let through here, and
 * is ended in the store by the revocation itself.
 */
export function issuedInForce(person: { accessRevokedBefore: number | null }, issuedAt: unknown): boolean {
  if (person.accessRevokedBefore === null) return true;
  return typeof issuedAt === 'number' && issuedAt >= Math.floor(person.accessRevokedBefore / 1000);
}

/**
 * When a token counts as issued for that check: a refresh token from its grant's first issue
 * (`iiat`, which rotation keeps), any other token or code from its `iat`.
 */
export function tokenIssuedAt(token: { iat?: number; iiat?: number }): number | undefined {
  return token.iiat ?? token.iat;
}

export function createAccess(deps: { store: Store; notifyPortals: LogoutNotifier }) {
  const { store } = deps;

  async function revokeGrant(grantId: string): Promise<void> {
    await Promise.all(TOKEN_MODELS.map((model) => store.oidc.revokeByGrantId(model, grantId)));
    await store.oidc.destroy('Grant', grantId);
  }

  /** Ends a stored session (its record is `session`) as a sign-out would. */
  async function endStored(session: StoredSession, reason: LogoutReason, options: { allGrants?: boolean } = {}): Promise<void> {
    const accountId = session.accountId as string;
    if (typeof session.uid === 'string') await Promise.all(sessionCounterKeys(session.uid).map((k) => store.counters.reset(k)));
    if (typeof session.jti === 'string') await store.oidc.destroy('Session', session.jti);
    const grants = Object.values(session.authorizations ?? {})
      .filter((a) => typeof a?.grantId === 'string' && (options.allGrants || a.persistsLogout !== true))
      .map((a) => a!.grantId as string);
    await Promise.all(grants.map(revokeGrant));
    await deps.notifyPortals(accountId, portalRefs(session), reason);
  }

  return {
    revokeGrant,

    /**
     * Ends the session with this uid: false when there is none (already ended) or it belongs to
     * someone other than `accountId`. Its clocks are removed whatever is found.
     */
    async endSession(uid: string, reason: LogoutReason, accountId?: string): Promise<{ ended: boolean; session?: StoredSession }> {
      const session = (await store.oidc.findByUid('Session', uid)) as StoredSession | undefined;
      if (session?.accountId && accountId && session.accountId !== accountId) return { ended: false };
      if (!session || typeof session.accountId !== 'string') {
        await Promise.all(sessionCounterKeys(uid).map((k) => store.counters.reset(k)));
        return { ended: false };
      }
      await endStored(session, reason);
      return { ended: true, session };
    },

    /** Every session of a person but `except`; returns how many ended. */
    async endSessions(personId: string, reason: LogoutReason, options: { except?: string; allGrants?: boolean } = {}): Promise<number> {
      const sessions = await store.oidc.listByAccount('Session', personId);
      let ended = 0;
      for (const { id, payload } of sessions) {
        if (options.except !== undefined && payload.uid === options.except) continue;
        await endStored({ ...payload, jti: id } as StoredSession, reason, options);
        ended += 1;
      }
      // An operator's console sessions (admin/console-session.ts) end with their other sessions,
      // whichever one the change was made in: a stolen console cookie must not outlive a password
      // change or "sign out everywhere else" (ASVS 5.0 7.4.3).
      await store.oidc.destroyByAccount([CONSOLE_SESSION_MODEL], personId);
      return ended;
    },

    /**
     * Every session but `except`, and every grant of the person but those of that session —
     * `offline_access` ones included, whether or not their session still exists (a password
     * changed: a refresh token kept by whoever knew the old one must stop working; NIST SP
     * 800-63B §6.1.2.3). Returns how many sessions ended.
     */
    async endOthersAndGrants(personId: string, reason: LogoutReason, except: string): Promise<number> {
      const own = (await store.oidc.findByUid('Session', except)) as StoredSession | undefined;
      const keep = new Set(own?.accountId === personId ? Object.values(own.authorizations ?? {}).map((a) => a?.grantId).filter((g): g is string => typeof g === 'string') : []);
      const ended = await this.endSessions(personId, reason, { except, allGrants: true });
      for (const { id } of await store.oidc.listByAccount('Grant', personId)) if (!keep.has(id)) await revokeGrant(id);
      return ended;
    },

    /**
     * Everything of a person: sessions signed in and tokens issued before now count for nothing,
     * every session ends, and every grant and token — `offline_access` ones included — is deleted.
     * `at` is the real clock (the one oidc-provider stamps `iat` and `loginTs` with).
     */
    async endEverything(personId: string, reason: LogoutReason, at = Date.now()): Promise<number> {
      await store.persons.revokeAccessBefore(personId, at);
      const ended = await this.endSessions(personId, reason, { allGrants: true });
      await store.oidc.destroyByAccount(GRANT_MODELS, personId);
      return ended;
    },

    /**
     * A person's consent to a portal withdrawn: every grant and token of theirs at that portal is
     * deleted, and the portal is told for each session it has with them (its session there rests on
     * that consent). Returns how many records were deleted.
     */
    async endPortal(personId: string, clientId: string, reason: LogoutReason): Promise<number> {
      const deleted = await store.oidc.destroyByAccount(GRANT_MODELS, personId, clientId);
      for (const { id, payload } of await store.oidc.listByAccount('Session', personId)) {
        const session = payload as StoredSession & { exp?: unknown };
        if (!session.authorizations?.[clientId]) continue;
        await deps.notifyPortals(personId, portalRefs(session, [clientId]), reason);
        // The portal's part of the session ends with the notice: a later sign-in there gets a new
        // `sid`, not the one the portal was just told has ended (Back-Channel Logout 1.0 §2.7).
        delete session.authorizations[clientId];
        const left = typeof session.exp === 'number' ? session.exp - Math.floor(Date.now() / 1000) : 0;
        if (left > 0) await store.oidc.upsert('Session', id, session as Record<string, unknown>, left);
      }
      return deleted;
    },

    /** A portal's grants and tokens, everyone's (a disabled portal): returns how many records were deleted. */
    async endClient(clientId: string): Promise<number> {
      return store.oidc.destroyByClient([...GRANT_MODELS, 'ClientCredentials'], clientId);
    },
  };
}
export type Access = ReturnType<typeof createAccess>;
