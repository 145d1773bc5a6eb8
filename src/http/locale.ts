import type { Context } from 'koa';
import { DEFAULT_LOCALE, isLocale, localeFromUiLocales, type Locale } from './i18n.js';

export const LANG_COOKIE = 'dd_lang';

/**
 * The page's locale: an explicit `?lang=` on this request, then the language switch's cookie, then
 * the portal's `ui_locales` (OIDC Core §3.1.2.1), then Vietnamese.
 */
export function localeFor(ctx: Context, uiLocales?: unknown): Locale {
  const q = ctx.query.lang;
  if (isLocale(q)) return q;
  const cookie = ctx.cookies.get(LANG_COOKIE, { signed: false });
  if (isLocale(cookie)) return cookie;
  const params = (ctx as Context & { oidc?: { params?: { ui_locales?: unknown } } }).oidc?.params;
  return localeFromUiLocales(uiLocales ?? params?.ui_locales) ?? DEFAULT_LOCALE;
}

/** Remembers an explicit language choice for the browser session. */
export function rememberLocale(ctx: Context): void {
  const q = ctx.query.lang;
  if (isLocale(q)) {
    ctx.cookies.set(LANG_COOKIE, q, { httpOnly: true, sameSite: 'lax', signed: false, secure: ctx.secure, overwrite: true });
  }
}
