/**
 * The citizen's own area (/account/…) runs on the SSO session: this reads it from the session
 * cookie with oidc-provider's public Session API, and defines the first-party client through which
 * the account area signs a person in (no consent page: it is dinhdanh itself).
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Store } from '../store/index.js';

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
export function createAccountSessions(provider: Provider, store: Store, now: () => number, idleMs: number) {
  return async function accountSession(ctx: Context): Promise<AccountSession | undefined> {
    const session = await provider.Session.get(ctx);
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
