/**
 * Security headers for every response (SECURITY.md #31): a CSP without inline script, no framing,
 * no referrer, no MIME sniffing; HSTS when served over https. `script-src 'self'` is kept (we ship no
 * script) so oidc-provider can add the hash of its own form_post auto-submit script.
 */
import helmet from 'koa-helmet';
import type { Middleware } from 'koa';

export function securityHeaders(options: { https: boolean }): Middleware {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        // form-action is left out on purpose: browsers apply it to the redirect chain that follows a
        // form post, which ends at the portal's redirect_uri (another origin).
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    strictTransportSecurity: options.https ? { maxAge: 31536000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
  }) as unknown as Middleware;
}

/** Pages with personal data or one-time state are never cached. */
export const noStore: Middleware = async function noStore(ctx, next) {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  await next();
};
