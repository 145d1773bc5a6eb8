/**
 * HTML rendering: Eta templates from views/, auto-escaped (`<%= %>` escapes; `<%~ %>` is used only
 * for the layout body and includes, which are themselves rendered templates, and for the charts'
 * SVG built by metrics/charts.ts, which escapes every text it holds). Nothing user-supplied is
 * rendered raw.
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
      const switchHref = ctx.method === 'GET' ? switchTo(locale === 'vi' ? 'en' : 'vi') : null;
      ctx.status = status;
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = html(view, locale, data, switchHref ?? undefined);
    },
  };
}

/**
 * The language switch: a query-only relative reference, which keeps the current path and replaces
 * the query (RFC 3986 §5.2.2). Never built from the request path: `GET //evil.example/login` would
 * otherwise render a scheme-relative link to another site (RFC 3986 §4.2).
 */
function switchTo(lang: Locale): string {
  return `?lang=${lang}`;
}
