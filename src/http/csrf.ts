/**
 * CSRF defence for our POST forms (ten mistakes #2: SameSite=Lax is not enough, sibling portals are
 * same-site). Two independent checks:
 *  1. a synchronizer token: HMAC of a binding value (the interaction uid or session id) under the
 *     cookie keys, so it cannot be minted without the server secret and is useless for another flow;
 *  2. the request's origin: Sec-Fetch-Site must be same-origin when sent; otherwise Origin must be
 *     ours. (Our pages send Referrer-Policy: no-referrer, under which browsers send `Origin: null`
 *     for form posts; Fetch Metadata is unaffected, so it is checked first.)
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import { AppError } from './errors.js';

export interface Csrf {
  token(binding: string): string;
  verify(binding: string, token: unknown): boolean;
}

export function createCsrf(keys: readonly string[]): Csrf {
  if (keys.length === 0) throw new Error('CSRF needs at least one key');
  const mac = (key: string, binding: string) => crypto.createHmac('sha256', key).update(`csrf\u0000${binding}`).digest();
  return {
    token: (binding) => mac(keys[0]!, binding).toString('base64url'),
    verify(binding, token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
      const given = Buffer.from(token, 'base64url');
      return keys.some((k) => {
        const expected = mac(k, binding);
        return given.length === expected.length && crypto.timingSafeEqual(given, expected);
      });
    },
  };
}

export function assertSameOrigin(ctx: Context, issuerOrigin: string): void {
  const site = ctx.get('sec-fetch-site');
  if (site) {
    if (site !== 'same-origin') throw new AppError('cross_origin', 403, 'error.cross_origin');
    return;
  }
  const origin = ctx.get('origin');
  if (origin && origin !== 'null' && origin !== issuerOrigin) {
    throw new AppError('cross_origin', 403, 'error.cross_origin');
  }
  if (!origin) {
    const referer = ctx.get('referer');
    if (referer) {
      let refOrigin: string | undefined;
      try { refOrigin = new URL(referer).origin; } catch { refOrigin = undefined; }
      if (refOrigin !== issuerOrigin) throw new AppError('cross_origin', 403, 'error.cross_origin');
    }
  }
}

export function assertCsrf(csrf: Csrf, binding: string, token: unknown): void {
  if (!csrf.verify(binding, token)) throw new AppError('csrf', 403, 'error.csrf');
}
