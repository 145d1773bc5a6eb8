/**
 * The `route` label of dinhdanh_http_requests_total and dinhdanh_http_request_duration_seconds:
 * the route template a request was served by, never the path it asked for. A raw path would make a
 * series per interaction uid, per token and per random URL a scanner tries (Prometheus naming
 * practice: "do not use labels to store dimensions with high cardinality, … such as user IDs"),
 * so only templates written in our code can ever be a value:
 *
 * - oidc-provider's endpoints (provider/mount.ts, isProtocolPath) by their fixed paths, the
 *   interaction resume `/auth/<uid>` as `/auth/:uid`;
 * - our routers' templates, as @koa/router records the matched layer on the context
 *   (`ctx._matchedRoute`, e.g. `/interaction/:uid/login`);
 * - the sign-out confirmation, a middleware of its own rather than a router's;
 * - anything else `unmatched` (404s, scanners, methods a path does not take).
 */
import type Koa from 'koa';
import { isProtocolPath } from '../provider/mount.js';

export const UNMATCHED = 'unmatched';

/** RFC 9110 §9 methods we may see; anything else is `other` (a method is a client's free text). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/** Paths answered by a middleware of ours outside any router (interactions/logout.middleware.ts). */
const FIXED_PATHS = new Set(['/session/end/confirm']);

export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'other';
}

export function statusClass(status: number): string {
  if (status >= 100 && status < 600) return `${Math.floor(status / 100)}xx`;
  return 'other';
}

/** The route template of a request that has been handled (its router ran), from `path` as it arrived. */
export function routeTemplate(ctx: Koa.Context, path: string): string {
  if (isProtocolPath(path)) return path.startsWith('/auth/') ? '/auth/:uid' : path;
  if (FIXED_PATHS.has(path)) return path;
  // @koa/router sets this to the matched layer's path: a template from our code (a string; a layer
  // made from a RegExp would have no template to show, so it is not taken).
  const matched = (ctx as unknown as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string' && matched.length > 0 && matched.length <= 200) return matched;
  return UNMATCHED;
}

export interface HttpObservation {
  (route: string, method: string, statusClass: string, seconds: number): void;
}

/**
 * A Koa middleware that times the rest of the chain and reports it by route template. Mounted
 * first on a listener, so it sees the status the error handler settled on; a request whose error
 * escaped every handler is reported as the 500 Koa answers.
 */
export function httpMetricsMiddleware(observe: HttpObservation): Koa.Middleware {
  return async function httpMetrics(ctx, next) {
    const start = performance.now();
    const path = ctx.path;
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } finally {
      try {
        observe(routeTemplate(ctx, path), methodLabel(ctx.method), statusClass(status), (performance.now() - start) / 1000);
      } catch {
        // Counting never fails a request.
      }
    }
  };
}
