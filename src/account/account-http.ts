/**
 * What every /account page shares: the CSRF binding to the SSO session, the checks of a POST
 * (same origin, a live session, the token, then a strict form), and how dates are shown.
 */
import type { Context } from 'koa';
import type { z } from 'zod';
import { AppError } from '../http/errors.js';
import { parseForm, readForm } from '../http/body.js';
import { assertCsrf, assertSameOrigin, type Csrf } from '../http/csrf.js';
import type { Locale } from '../http/i18n.js';
import type { AccountSession } from '../provider/account-session.js';

export const csrfBinding = (session: AccountSession) => `account:${session.uid}`;

export interface AccountPostDeps {
  issuer: string;
  accountSession: (ctx: Context) => Promise<AccountSession | undefined>;
  csrf: Csrf;
}

/** A checked POST of the account area: 403 cross-origin or bad token, 401 without a session, 400 malformed. */
export async function readAccountPost<T extends z.ZodRawShape>(ctx: Context, deps: AccountPostDeps, shape: T): Promise<{ session: AccountSession; form: z.infer<z.ZodObject<T>> }> {
  assertSameOrigin(ctx, new URL(deps.issuer).origin);
  const raw = await readForm(ctx);
  const session = await deps.accountSession(ctx);
  if (!session) throw new AppError('no_session', 401, 'error.session_expired');
  assertCsrf(deps.csrf, csrfBinding(session), raw._csrf);
  return { session, form: parseForm(raw, shape) };
}

/** Dates in Vietnam's time zone, in the page's language. */
export function formatDate(ms: number, locale: Locale, withTime = true): string {
  return new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', {
    dateStyle: 'medium',
    ...(withTime ? { timeStyle: 'short' as const } : {}),
    timeZone: 'Asia/Ho_Chi_Minh',
  }).format(ms);
}
