/**
 * The operators' console's own session, apart from the citizen's SSO session: a random cookie
 * (`__Host-` on https: RFC 6265bis §4.1.3.2), stored in the store only as its SHA-256 (a copy of
 * the store signs no one in), 15 minutes idle and 8 hours at most (NIST SP 800-63B §7.2: AAL3's
 * 15-minute inactivity timeout, 12 hours overall; we keep a working day). Shared by every instance.
 *
 * `mfaAt` is when the operator last proved a second factor at dinhdanh (the ID token's auth_time
 * at loa:high): dangerous actions ask for it again when it is older than five minutes.
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type { OidcModelStore } from '../store/index.js';
import { CONSOLE_SESSION_MODEL } from '../provider/access.js';

export const CONSOLE_IDLE_MS = 15 * 60_000;
export const CONSOLE_ABSOLUTE_MS = 8 * 3600_000;
/** How recent the last second factor must be for a dangerous action. */
export const FRESH_MFA_MS = 5 * 60_000;
/** A sign-in started at the console must come back within this. */
export const LOGIN_TTL_MS = 10 * 60_000;

const SESSION_MODEL = CONSOLE_SESSION_MODEL;
const LOGIN_MODEL = 'ConsoleLogin';

export interface ConsoleSession {
  /** The store key (hash of the cookie): the CSRF binding too. */
  id: string;
  personId: string;
  createdAt: number;
  seenAt: number;
  mfaAt: number;
  /** For RP-initiated logout at dinhdanh (id_token_hint). */
  idToken: string;
}

export interface ConsoleLogin {
  state: string;
  nonce: string;
  verifier: string;
  /** A path under /admin to return to. */
  returnTo: string;
  at: number;
}

const hash = (v: string) => crypto.createHash('sha256').update(v).digest('base64url');
const random = () => crypto.randomBytes(32).toString('base64url');

/** `/admin…` paths only, no scheme-relative or backslash tricks: the only places a sign-in returns to. */
export function safeReturn(value: unknown): string {
  if (typeof value !== 'string' || value.length > 512 || !/^\/admin(\/[A-Za-z0-9/_.-]*)?(\?[A-Za-z0-9=&_.%-]*)?$/.test(value) || value.includes('//')) return '/admin';
  return value;
}

export function createConsoleSessions(deps: { oidc: OidcModelStore; https: boolean; now?: () => number }) {
  const now = deps.now ?? Date.now;
  const cookie = deps.https ? '__Host-dd_console' : 'dd_console';
  const loginCookie = deps.https ? '__Host-dd_console_login' : 'dd_console_login';
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure: deps.https, signed: false, overwrite: true, path: '/' };

  async function save(s: ConsoleSession): Promise<void> {
    const left = Math.min(CONSOLE_IDLE_MS, s.createdAt + CONSOLE_ABSOLUTE_MS - now());
    // `accountId` files it under the person (store/types.ts destroyByAccount): whatever ends the
    // person's sessions — a lock, a password change, "sign out everywhere else", a factor removed —
    // ends their console sessions too (provider/access.ts).
    await deps.oidc.upsert(SESSION_MODEL, s.id, { ...s, accountId: s.personId }, Math.max(1, Math.ceil(left / 1000)));
  }

  return {
    /** The live session of this request (sliding its idle time), or undefined. */
    async current(ctx: Context): Promise<ConsoleSession | undefined> {
      const value = ctx.cookies.get(cookie, { signed: false });
      if (!value || value.length > 100) return undefined;
      const found = (await deps.oidc.find(SESSION_MODEL, hash(value))) as ConsoleSession | undefined;
      const t = now();
      if (!found || typeof found.personId !== 'string' || t - found.seenAt > CONSOLE_IDLE_MS || t - found.createdAt > CONSOLE_ABSOLUTE_MS) return undefined;
      // Written back at most every 30 s: a page's few requests cost one write.
      if (t - found.seenAt > 30_000) {
        found.seenAt = t;
        await save(found);
      }
      return found;
    },
    /** A new session (a new cookie value: one planted before sign-in signs no one in). */
    async start(ctx: Context, v: { personId: string; mfaAt: number; idToken: string }): Promise<ConsoleSession> {
      const value = random();
      const t = now();
      const s: ConsoleSession = { id: hash(value), personId: v.personId, createdAt: t, seenAt: t, mfaAt: v.mfaAt, idToken: v.idToken };
      await save(s);
      ctx.cookies.set(cookie, value, cookieOptions);
      return s;
    },
    /** A second factor proven again (step-up) in the same session. */
    async refreshed(s: ConsoleSession, mfaAt: number, idToken: string): Promise<void> {
      await save({ ...s, mfaAt: Math.max(s.mfaAt, mfaAt), idToken, seenAt: now() });
    },
    async end(ctx: Context, s?: ConsoleSession): Promise<void> {
      if (s) await deps.oidc.destroy(SESSION_MODEL, s.id);
      ctx.cookies.set(cookie, '', { ...cookieOptions, maxAge: 0 });
    },
    async beginLogin(ctx: Context, login: ConsoleLogin): Promise<void> {
      const value = random();
      await deps.oidc.upsert(LOGIN_MODEL, hash(value), { ...login }, Math.ceil(LOGIN_TTL_MS / 1000));
      ctx.cookies.set(loginCookie, value, cookieOptions);
    },
    /** The sign-in this browser started, used once. */
    async takeLogin(ctx: Context): Promise<ConsoleLogin | undefined> {
      const value = ctx.cookies.get(loginCookie, { signed: false });
      ctx.cookies.set(loginCookie, '', { ...cookieOptions, maxAge: 0 });
      if (!value || value.length > 100) return undefined;
      const id = hash(value);
      const found = (await deps.oidc.find(LOGIN_MODEL, id)) as ConsoleLogin | undefined;
      await deps.oidc.destroy(LOGIN_MODEL, id);
      if (!found || now() - found.at > LOGIN_TTL_MS) return undefined;
      return found;
    },
  };
}
export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;
