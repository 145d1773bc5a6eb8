/**
 * Request id and one structured log line per request. Only the path is logged: query strings can
 * carry codes, hints and personal data.
 */
import crypto from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from 'pino';

const SAFE_ID = /^[A-Za-z0-9._-]{8,64}$/;
/** A path longer than this is cut in the access line: a request must not make a log line as long as it likes. */
export const LOGGED_PATH_MAX = 256;

/**
 * Paths whose last segment is a secret (the account reset's cancel and reset links carry a
 * single-use token): logged as the route, never the token (ASVS 5.0 16.2.5: no credentials in logs).
 */
const SECRET_SEGMENT = /^(\/recover\/(?:cancel|reset)|\/account\/not-me)\/(?!open\/?$)[^/]+\/?$/;

export function loggedPath(path: string): string {
  const route = path.replace(SECRET_SEGMENT, '$1/:token');
  return route.length > LOGGED_PATH_MAX ? `${route.slice(0, LOGGED_PATH_MAX)}…` : route;
}

export function requestContext(logger: Logger, options: { trustRequestId: boolean }): Middleware {
  return async function requestContextMiddleware(ctx, next) {
    const incoming = ctx.get('x-request-id');
    const id = options.trustRequestId && SAFE_ID.test(incoming) ? incoming : crypto.randomUUID();
    ctx.state.requestId = id;
    // The request's logger is made only when something logs through it (most requests only write
    // the access line below, which needs none).
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { get: () => (child ??= logger.child({ req_id: id })), configurable: true, enumerable: true });
    ctx.set('X-Request-Id', id);
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      logger.info({ req_id: id, method: ctx.method, path: loggedPath(ctx.path), status: ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}
