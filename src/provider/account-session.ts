/**
 * The citizen's own area (/account/…) runs on the SSO session: this reads it from the session
 * cookie with oidc-provider's public Session API, and defines the first-party client through which
 * the account area signs a person in (no consent page: it is dinhdanh itself).
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Store } from '../store/index.js';
import type { LogoutReason } from './backchannel-logout.js';
import type { SessionLifecycle } from './session-lifecycle.js';

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

/**
 * The live SSO session of this browser, or undefined. "Live" uses the same idle and absolute limits
 * as the provider's `session_expired` check (the counters it keeps), and using the account area
 * counts as activity.
 */
/** The current provider (a key rotation replaces it). */
export type ProviderRef = () => Provider;

export function createAccountSessions(provider: ProviderRef, store: Store, now: () => number, idleMs: number) {
  return async function accountSession(ctx: Context): Promise<AccountSession | undefined> {
    const session = await provider().Session.get(ctx);
    if (!session.accountId) return undefined;
    const t = now();
    const [start, seen, auth] = await Promise.all([
      store.counters.get(`session-start:${session.uid}`, t),
      store.counters.get(`session-seen:${session.uid}`, t),
      store.counters.get(`session-auth:${session.uid}`, t),
    ]);
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

/**
 * Revokes everything a grant carries: its access and refresh tokens and codes (RFC 7009 §2.1: a
 * revoked grant's tokens stop working), then the grant itself.
 */
export function createGrantRevoker(ref: ProviderRef) {
  return async function revokeGrant(grantId: string): Promise<void> {
    const provider = ref();
    await Promise.all([provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode].map((model) => model.revokeByGrantId(grantId)));
    await provider.Grant.adapter.destroy(grantId);
  };
}

const PORTAL_GRANTS = 'PortalGrants';

/**
 * Which grants a person's consent to a portal has produced (one per SSO session), so that
 * withdrawing the consent can revoke them all. Kept as long as a grant lives.
 */
export function createPortalGrants(store: Store, ttlSeconds: number) {
  const id = (personId: string, clientId: string) => `${personId}|${clientId}`;
  return {
    async add(personId: string, clientId: string, grantId: string): Promise<void> {
      const current = (await store.oidc.find(PORTAL_GRANTS, id(personId, clientId))) as { grantIds?: string[] } | undefined;
      const grantIds = [...new Set([...(current?.grantIds ?? []), grantId])].slice(-50);
      await store.oidc.upsert(PORTAL_GRANTS, id(personId, clientId), { grantIds }, ttlSeconds);
    },
    async take(personId: string, clientId: string): Promise<string[]> {
      const current = (await store.oidc.find(PORTAL_GRANTS, id(personId, clientId))) as { grantIds?: string[] } | undefined;
      await store.oidc.destroy(PORTAL_GRANTS, id(personId, clientId));
      return current?.grantIds ?? [];
    },
  };
}
export type PortalGrants = ReturnType<typeof createPortalGrants>;

const ACCOUNT_SESSIONS = 'AccountSessions';
const MAX_SESSIONS_LISTED = 20;

/** Where and how a session was signed in to, for the citizen's session list. */
export interface SessionRecord {
  uid: string;
  startedAt: number;
  userAgent: string;
  ip: string;
}

/** Records a session's start under its person (kept as long as a session can live). */
export async function recordSession(store: Store, accountId: string, record: SessionRecord, ttlSeconds: number): Promise<void> {
  const current = (await store.oidc.find(ACCOUNT_SESSIONS, accountId)) as { sessions?: SessionRecord[] } | undefined;
  const others = (current?.sessions ?? []).filter((s) => s.uid !== record.uid);
  const sessions = [...others, { ...record, userAgent: record.userAgent.slice(0, 300) }].slice(-MAX_SESSIONS_LISTED);
  await store.oidc.upsert(ACCOUNT_SESSIONS, accountId, { sessions }, ttlSeconds);
}

export interface LiveSession extends SessionRecord {
  lastUsedAt: number;
  /** Client ids of the portals this session has signed in to. */
  portals: string[];
}

/**
 * A person's live SSO sessions, and ending one: the session record is destroyed and its idle and
 * absolute clocks removed, so the browser holding it is signed out everywhere at its next request,
 * and its portals are told by back-channel logout.
 */
export function createSessionDirectory(provider: ProviderRef, store: Store, now: () => number, lifecycle: Pick<SessionLifecycle, 'end'>) {
  async function list(accountId: string): Promise<LiveSession[]> {
    const current = (await store.oidc.find(ACCOUNT_SESSIONS, accountId)) as { sessions?: SessionRecord[] } | undefined;
    const t = now();
    const live: LiveSession[] = [];
    for (const record of current?.sessions ?? []) {
      const [start, seen] = await Promise.all([store.counters.get(`session-start:${record.uid}`, t), store.counters.get(`session-seen:${record.uid}`, t)]);
      if (!start || !seen) continue;
      const session = await provider().Session.findByUid(record.uid);
      if (!session || session.accountId !== accountId) continue;
      live.push({ ...record, lastUsedAt: seen.updatedAt, portals: Object.keys(session.authorizations ?? {}) });
    }
    return live.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
  }

  function end(accountId: string, uid: string): Promise<boolean> {
    return lifecycle.end(uid, 'ended_elsewhere', accountId);
  }

  /** Every live session of a person (an operator's lock). */
  async function endAll(accountId: string, reason: LogoutReason): Promise<number> {
    const current = (await store.oidc.find(ACCOUNT_SESSIONS, accountId)) as { sessions?: SessionRecord[] } | undefined;
    let ended = 0;
    for (const record of current?.sessions ?? []) if (await lifecycle.end(record.uid, reason, accountId)) ended += 1;
    return ended;
  }

  return { list, end, endAll };
}
export type SessionDirectory = ReturnType<typeof createSessionDirectory>;
