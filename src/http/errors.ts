/**
 * Exceptions are for broken invariants and refused requests, never for wrong passwords or bad codes
 * (those are results). Each carries a stable code, an HTTP status, whether its message may be shown,
 * and the i18n key of what the person sees.
 */
import type { MessageKey } from './i18n.js';

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  /** Whether `message` may reach the user (koa's `expose`). */
  readonly expose: boolean;
  readonly i18nKey: MessageKey;

  constructor(code: string, status: number, i18nKey: MessageKey, options?: { message?: string; expose?: boolean; cause?: unknown }) {
    super(options?.message ?? code, { cause: options?.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.expose = options?.expose ?? status < 500;
    this.i18nKey = i18nKey;
  }
}

export const badRequest = (code = 'invalid_request', key: MessageKey = 'error.invalid_request') => new AppError(code, 400, key);
export const forbidden = (code: string, key: MessageKey = 'error.forbidden') => new AppError(code, 403, key);
export const notFound = () => new AppError('not_found', 404, 'error.not_found');
