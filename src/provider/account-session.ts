/**
 * The citizen's own area (/account/…) runs on the SSO session: this reads it from the session
 * cookie with oidc-provider's public Session API, and defines the first-party client through which
 * the account area signs a person in (no consent page: it is dinhdanh itself).
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Store } from '../store/index.js';
import type { SessionLifecycle } from './session-lifecycle.js';
import { issuedInForce } from './access.js';

export const ACCOUNT_CLIENT_ID = 'dinhdanh-account';

export interface AccountSession {
  /** The session's stable uid (CSRF tokens and re-authentication are bound to it). */
  uid: string;
  accountId: string;
  acr: string | undefined;
  amr: string[];
  /** When the person last authenticated in this session (injected clock), epoch ms. */
  signedInAt: number;
}

/**
 * The first-party client of the account area (a static client). Its codes are never redeemed, so
 * its secret is random per process and known to nobody: the token endpoint refuses it.
 */
export function accountClient(issuer: string): Record<string, unknown> {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_secret: crypto.randomBytes(32).toString('base64url'),
    client_name: 'Tài khoản định danh điện tử',
    redirect_uris: [`${issuer}/account/callback`],
    post_logout_redirect_uris: [`${issuer}/`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    subject_type: 'pairwise',
    scope: 'openid',
    'urn:dinhdanh:sector': new URL(issuer).host,
  };
}

/** The current provider (a key rotation replaces it). */
export type ProviderRef = () => Provider;

/**
 * The live SSO session of this browser, or undefined. "Live" uses the same idle and absolute limits
 * as the provider's `session_expired` check (the counters it keeps) and the same person checks as
 * a sign-in at a portal (the account exists, is active, and the session is not older than a
 * revocation of the person's access); using the account area counts as activity. A session that
 * fails the person checks is ended, as the provider's `account_unavailable` check ends it.
 */
export function createAccountSessions(provider: ProviderRef, store: Store, now: () => number, idleMs: number, lifecycle: Pick<SessionLifecycle, 'end'>) {
  return async function accountSession(ctx: Context): Promise<AccountSession | undefined> {
    const session = await provider().Session.get(ctx);
    if (!session.accountId) return undefined;
    const t = now();
    const [start, seen, auth, person] = await Promise.all([
      store.counters.get(`session-start:${session.uid}`, t),
      store.counters.get(`session-seen:${session.uid}`, t),
      store.counters.get(`session-auth:${session.uid}`, t),
      store.persons.findById(session.accountId),
    ]);
    if (!person || person.status !== 'active' || !issuedInForce(person, session.loginTs)) {
      await lifecycle.end(session.uid, 'account_unavailable', session.accountId);
      return undefined;
    }
    if (!start || !seen || !auth) return undefined;
    await store.counters.increment(`session-seen:${session.uid}`, idleMs, t, { slide: true });
    return {
      uid: session.uid,
      accountId: session.accountId,
      acr: session.acr,
      amr: (session.amr as string[] | undefined) ?? [],
      signedInAt: auth.updatedAt,
    };
  };
}

/** Where and how a session was signed in to, for the citizen's session list. */
export interface SessionRecord {
  uid: string;
  startedAt: number;
  userAgent: string;
  ip: string;
}

/** Kept per session (by its uid), with the person's id so that a person's records are found by it. */
const SESSION_INFO = 'SessionInfo';

/** Records where a session started (one write per new session; kept as long as a session can live). */
export async function recordSession(store: Store, accountId: string, record: SessionRecord, ttlSeconds: number): Promise<void> {
  await store.oidc.upsert(SESSION_INFO, record.uid, { accountId, ...record, userAgent: record.userAgent.slice(0, 300) }, ttlSeconds);
}

export interface LiveSession extends SessionRecord {
  lastUsedAt: number;
  /** Client ids of the portals this session has signed in to. */
  portals: string[];
}

/** A person's live SSO sessions: every one, read from the store by the person (ending one is a change of state: account-state.ts). */
export function createSessionDirectory(store: Store, now: () => number) {
  async function list(accountId: string): Promise<LiveSession[]> {
    const t = now();
    const live: LiveSession[] = [];
    for (const { payload } of await store.oidc.listByAccount('Session', accountId)) {
      const uid = payload.uid;
      if (typeof uid !== 'string') continue;
      const [start, seen, info] = await Promise.all([
        store.counters.get(`session-start:${uid}`, t),
        store.counters.get(`session-seen:${uid}`, t),
        store.oidc.find(SESSION_INFO, uid),
      ]);
      if (!start || !seen) continue;
      const authorizations = (payload.authorizations ?? {}) as Record<string, unknown>;
      live.push({
        uid,
        startedAt: typeof info?.startedAt === 'number' ? info.startedAt : start.updatedAt,
        userAgent: typeof info?.userAgent === 'string' ? info.userAgent : '',
        ip: typeof info?.ip === 'string' ? info.ip : '',
        lastUsedAt: seen.updatedAt,
        portals: Object.keys(authorizations),
      });
    }
    return live.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
  }

  return { list };
}
export type SessionDirectory = ReturnType<typeof createSessionDirectory>;
