/**
 * The one error middleware, first in the chain. Known errors render their page with their status;
 * anything else is a 500 with a generic page and a reference (the request id), logged with detail.
 */
import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../store/index.js';
import { AppError } from './errors.js';
import { localeFor } from './locale.js';
import type { Renderer } from './render.js';

export function errorHandler(renderer: Renderer): Middleware {
  return async function errorHandlerMiddleware(ctx, next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('not_found', 404, 'error.not_found');
    } catch (err) {
      const log = ctx.state.log as Logger | undefined;
      let appErr: AppError;
      if (err instanceof AppError) {
        appErr = err;
      } else if (err instanceof StoreUnavailableError) {
        appErr = new AppError('store_unavailable', 503, 'error.unavailable', { cause: err });
      } else if (typeof (err as { status?: unknown }).status === 'number' && (err as { status: number }).status < 500 && (err as { expose?: boolean }).expose) {
        // koa/http-errors raised by middleware (e.g. a malformed cookie): a client error, not a crash.
        appErr = new AppError('invalid_request', (err as { status: number }).status, 'error.invalid_request', { cause: err });
      } else {
        appErr = new AppError('server_error', 500, 'error.server_error', { cause: err, expose: false });
      }
      if (appErr.status >= 500) log?.error({ err: appErr.cause ?? err, code: appErr.code }, 'request failed');
      else log?.info({ code: appErr.code, status: appErr.status }, 'request refused');

      ctx.set('Cache-Control', 'no-store');
      if (ctx.path.startsWith('/healthz') || ctx.accepts('html', 'json') === 'json') {
        ctx.status = appErr.status;
        ctx.body = { error: appErr.code };
        return;
      }
      renderer.render(ctx, 'message', localeFor(ctx), (t) => ({
        title: t('error.title'),
        alert: t(appErr.i18nKey),
        details: [
          { label: t('error.code'), value: appErr.code },
          ...(appErr.status >= 500 ? [{ label: t('error.reference'), value: String(ctx.state.requestId ?? '') }] : []),
        ],
      }), appErr.status);
    }
  };
}
