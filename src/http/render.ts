/**
 * HTML rendering: Eta templates from views/, auto-escaped (`<%= %>` escapes; `<%~ %>` is used only
 * for the layout body, which is itself a rendered template). Nothing user-supplied is rendered raw.
 */
import { Eta } from 'eta';
import type { Context } from 'koa';
import { VIEWS_DIR } from './paths.js';
import { translator, type Locale, type Translate } from './i18n.js';

export interface PageData {
  title: string;
  [key: string]: unknown;
}

export interface Renderer {
  render(ctx: Context, view: string, locale: Locale, data: (t: Translate) => PageData, status?: number): void;
  html(view: string, locale: Locale, data: (t: Translate) => PageData, switchHref?: string): string;
}

export function createRenderer(options: { cache: boolean }): Renderer {
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: options.cache, defaultExtension: '.eta', autoTrim: false });

  const html: Renderer['html'] = (view, locale, data, switchHref) => {
    const t = translator(locale);
    const page = data(t);
    const other: Locale = locale === 'vi' ? 'en' : 'vi';
    return eta.render(view, { ...page, t, locale, otherLocale: other, switchHref: switchHref ?? null });
  };

  return {
    html,
    render(ctx, view, locale, data, status = 200) {
      const switchHref = ctx.method === 'GET' ? withLang(ctx.path, ctx.querystring, locale === 'vi' ? 'en' : 'vi') : null;
      ctx.status = status;
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = html(view, locale, data, switchHref ?? undefined);
    },
  };
}

/** The current page's URL with `lang` set (keeps the path; drops other query parameters). */
function withLang(pathname: string, _query: string, lang: Locale): string {
  return `${pathname}?lang=${lang}`;
}
