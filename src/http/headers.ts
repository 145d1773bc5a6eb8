/**
 * Security headers for every response (SECURITY.md #31): a CSP without inline script, no framing,
 * no referrer, no MIME sniffing; HSTS when served over https. `script-src 'self'` is kept (we ship no
 * script) so oidc-provider can add the hash of its own form_post auto-submit script.
 *
 * The set is helmet's (with our policy) written once at start-up: every response pays one loop of
 * `setHeader`, not a chain of middleware (issue 8's profiles).
 */
import type { Middleware } from 'koa';

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // The session time-out warning's "stay signed in" is a fetch to our own origin (WCAG 2.2.1).
  "connect-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  // form-action is left out on purpose: browsers apply it to the redirect chain that follows a
  // form post, which ends at the portal's redirect_uri (another origin).
].join(';');

function securityHeaderList(options: { https: boolean }): ReadonlyArray<readonly [string, string]> {
  return Object.freeze([
    ['Content-Security-Policy', CSP],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ['Origin-Agent-Cluster', '?1'],
    ['Referrer-Policy', 'no-referrer'],
    ...(options.https ? [['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'] as const] : []),
    ['X-Content-Type-Options', 'nosniff'],
    ['X-DNS-Prefetch-Control', 'off'],
    ['X-Download-Options', 'noopen'],
    ['X-Frame-Options', 'DENY'],
    ['X-Permitted-Cross-Domain-Policies', 'none'],
    ['X-XSS-Protection', '0'],
  ] as Array<readonly [string, string]>);
}

export function securityHeaders(options: { https: boolean }): Middleware {
  const list = securityHeaderList(options);
  return async function securityHeadersMiddleware(ctx, next) {
    const res = ctx.res;
    for (const [name, value] of list) res.setHeader(name, value);
    await next();
  };
}

/** Pages with personal data or one-time state are never cached. */
export const noStore: Middleware = async function noStore(ctx, next) {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  await next();
};
