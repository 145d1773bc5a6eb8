/**
 * The sign-out confirmation posts to oidc-provider's end_session_confirm. Our page offers
 * `logout=all` (every portal, the default) or `logout=portal` (this one); oidc-provider treats any
 * non-empty `logout` as "all", so the form is validated here and translated into what the library
 * expects before it reads the body. Same-origin is checked as for every POST of ours.
 */
import type { Middleware } from 'koa';
import { z } from 'zod';
import { parseForm, readForm } from '../http/body.js';
import { assertSameOrigin } from '../http/csrf.js';

const logoutForm = {
  xsrf: z.string().max(128),
  _csrf: z.string().max(128).optional(),
  // `yes` is what oidc-provider's own auto-submitted form sends when another person signs in.
  logout: z.enum(['all', 'portal', 'yes']).optional(),
};

export interface LogoutHooks<S> {
  /** Reads what the sign-out will end, before oidc-provider changes the session. */
  before(ctx: Parameters<Middleware>[0]): Promise<S>;
  /** After a successful sign-out: `all` when every portal was signed out, else only the one. */
  after(snapshot: S, all: boolean): Promise<void>;
}

export function logoutConfirm<S>(options: { issuerOrigin: string; path: string } & LogoutHooks<S>): Middleware {
  return async function logoutConfirmMiddleware(ctx, next) {
    // oidc-provider's router matches case-insensitively and ignores a trailing slash: so must we.
    if (ctx.method !== 'POST' || ctx.path.toLowerCase().replace(/\/+$/, '') !== options.path) return next();
    assertSameOrigin(ctx, options.issuerOrigin);
    const form = parseForm(await readForm(ctx), logoutForm);
    const all = form.logout !== 'portal';
    // oidc-provider falls back to an already-parsed body when the stream has been read.
    (ctx.request as { body?: unknown }).body = all ? { xsrf: form.xsrf, logout: 'yes' } : { xsrf: form.xsrf };
    const snapshot = await options.before(ctx);
    await next();
    // oidc-provider answers a completed sign-out with a redirect (to the portal or the signed-out
    // page); a refused one (bad xsrf, no session) renders an error.
    if (ctx.status === 302 || ctx.status === 303) await options.after(snapshot, all);
  };
}
