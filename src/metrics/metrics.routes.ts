/**
 * GET /metrics on the operators' listener only (ARCHITECTURE.md rule 13; the public listener
 * answers 404): Prometheus' text format, for scrapers, not browsers, so it sits before the
 * console's sign-in. With DINHDANH_METRICS_TOKEN set, a scraper sends it as a bearer token
 * (Prometheus: `authorization: { credentials_file: … }`); without it, a 401 carrying
 * `WWW-Authenticate: Bearer` (RFC 6750 §3), with `error="invalid_token"` when a token was sent
 * and was not the one (§3.1). With metrics off, 404: there is nothing to serve.
 */
import crypto from 'node:crypto';
import Router from '@koa/router';
import type { Metrics } from './metrics.js';

export const METRICS_PATH = '/metrics';
const REALM = 'dinhdanh-metrics';
/** RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token` (the scheme in any case, RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** Equal by content, in time that does not depend on where they differ (both hashed to 32 bytes first). */
function sameToken(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

export function metricsRoutes(deps: { metrics: Metrics | null; token: string | null }): Router {
  const router = new Router();
  router.get(METRICS_PATH, async function metricsEndpoint(ctx) {
    ctx.set('Cache-Control', 'no-store');
    const { metrics, token } = deps;
    if (!metrics) {
      ctx.status = 404;
      ctx.body = 'Not Found';
      return;
    }
    if (token !== null) {
      const header = ctx.get('authorization');
      const presented = BEARER.exec(header)?.[1];
      if (presented === undefined || !sameToken(presented, token)) {
        ctx.status = 401;
        // A bearer token that is not the one is invalid_token; no bearer token at all gets no error code (§3.1).
        ctx.set('WWW-Authenticate', /^bearer\s/i.test(header) ? `Bearer realm="${REALM}", error="invalid_token"` : `Bearer realm="${REALM}"`);
        ctx.body = 'Unauthorized';
        return;
      }
    }
    ctx.body = await metrics.registry.metrics();
    ctx.set('Content-Type', metrics.registry.contentType);
  });
  return router;
}
