/**
 * What happens when a sign-in finishes (the provider's login check sees a fresh login result):
 * the sign-in is recorded (SIGN_IN_COMPLETED: portal, level, device and network as the person sees
 * them) and, from a browser not seen on the account for 90 days, the person is told.
 *
 * Browsers are recognised by a random long-lived cookie, stored only as a hash with the account
 * (a browser signed in to two accounts is two records, neither linkable to the other): no
 * fingerprinting. ASVS 5.0 6.3.5 asks for notices of suspicious sign-ins; a new browser is the
 * signal people understand. The first browser an account ever signs in from is recorded without a
 * notice: an account just registered, or just created at the counter, has nothing to compare it
 * with, and its owner has just been there.
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { AuditService } from '../audit/index.js';
import type { OidcModelStore } from '../store/index.js';
import type { FactorNotices } from '../mfa/index.js';
import { localeFor } from '../http/locale.js';
import { describeDevice, describeNetwork } from './devices.js';

/** A browser not seen on an account for this long is new to it. */
export const KNOWN_BROWSER_TTL_SECONDS = 90 * 24 * 3600;
const KNOWN_BROWSER_MODEL = 'KnownBrowser';
const SIGNED_IN_BEFORE_MODEL = 'SignedInBefore';
/** Longer than any account stays unused (the store needs an expiry; ten years). */
const SIGNED_IN_BEFORE_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** Browsers cap a cookie's life at 400 days (RFC 6265bis §5.5); it is renewed at every sign-in. */
const BROWSER_COOKIE_MAX_AGE_MS = 400 * 24 * 3600_000;
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface SignedIn {
  accountId: string;
  sessionUid: string;
  clientId: string | undefined;
  acr: string | undefined;
  amr: readonly string[];
  /** A new SSO session (not a step-up on an existing one). */
  newSession: boolean;
}

export function browserCookieName(https: boolean): string {
  // `__Host-` on https: Secure, Path=/, no Domain, so a sibling site cannot plant one (RFC 6265bis §4.1.3.2).
  return https ? '__Host-dd_browser' : 'dd_browser';
}

export function createSignInObserver(deps: {
  oidc: OidcModelStore;
  audit: AuditService;
  notices: Pick<FactorNotices, 'newBrowser'>;
  issueNotMeLink: (personId: string, signIn: { at: number; device: string; network: string }) => Promise<string>;
  https: boolean;
  logger: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const cookieName = browserCookieName(deps.https);
  const log = deps.logger.child({ component: 'sign-ins' });

  /** Whether this browser is new to the account (and remembers it either way). */
  async function recognise(ctx: Context, accountId: string, t: number): Promise<boolean> {
    let value = ctx.cookies.get(cookieName) ?? '';
    if (!COOKIE_VALUE.test(value)) value = crypto.randomBytes(32).toString('base64url');
    ctx.cookies.set(cookieName, value, { httpOnly: true, secure: deps.https, sameSite: 'lax', path: '/', maxAge: BROWSER_COOKIE_MAX_AGE_MS, overwrite: true, signed: false });
    const id = crypto.createHash('sha256').update(`${accountId}\u0000${value}`).digest('base64url');
    const known = await deps.oidc.find(KNOWN_BROWSER_MODEL, id);
    // "Ever" is a marker of its own, not the browsers still remembered: those lapse after 90 days,
    // and an account idle that long must not have its next sign-in (a stolen password's) pass unseen.
    const firstEver = !known && !(await deps.oidc.find(SIGNED_IN_BEFORE_MODEL, accountId));
    if (firstEver) await deps.oidc.upsert(SIGNED_IN_BEFORE_MODEL, accountId, { accountId, at: t }, SIGNED_IN_BEFORE_TTL_SECONDS);
    const firstSeenAt = typeof known?.firstSeenAt === 'number' ? known.firstSeenAt : t;
    await deps.oidc.upsert(KNOWN_BROWSER_MODEL, id, { accountId, firstSeenAt, lastSeenAt: t }, KNOWN_BROWSER_TTL_SECONDS);
    return !known && !firstEver;
  }

  return async function signedIn(ctx: Context, info: SignedIn): Promise<void> {
    const t = now();
    const device = describeDevice(ctx.get('user-agent'));
    const network = describeNetwork(ctx.ip);
    // A step-up happens in a session this browser already holds: it was recognised when it started.
    const newBrowser = info.newSession ? await recognise(ctx, info.accountId, t) : false;
    deps.audit.record('SIGN_IN_COMPLETED', {
      person: info.accountId, portal: info.clientId ?? null, acr: info.acr ?? null, method: info.amr.join('+') || null, device, network, new_browser: newBrowser,
    });
    if (!newBrowser) return;
    try {
      const what = { at: t, device, network };
      await deps.notices.newBrowser(info.accountId, what, () => deps.issueNotMeLink(info.accountId, what), localeFor(ctx));
    } catch (err) {
      // A notice that cannot go out never stops the sign-in; the audit entry above records it.
      log.warn({ err, person: info.accountId }, 'new-browser notice not sent');
    }
  };
}
export type SignInObserver = ReturnType<typeof createSignInObserver>;
