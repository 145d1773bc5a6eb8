/**
 * The citizens' front door and what keeps the account pages' session honest about its time limit:
 * - GET `/`: what dinhdanh is, and the ways in (my account, register, forgotten password, help);
 * - GET `/static/session-timeout.js`: the script of the session time-out warning (WCAG 2.1 SC 2.2.1);
 * - POST `/account/keepalive`: the warning's "stay signed in", which counts as activity on the SSO
 *   session (204), or says it is gone (401).
 */
import fs from 'node:fs';
import path from 'node:path';
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { readAccountPost } from '../account/account-http.js';
import type { AccountSession } from '../provider/account-session.js';
import { SESSION_IDLE_MS } from '../provider/provider.js';
import type { Csrf } from './csrf.js';
import { noStore } from './headers.js';
import { localeFor, rememberLocale } from './locale.js';
import { PUBLIC_DIR } from './paths.js';
import type { Renderer } from './render.js';

export interface SiteDeps {
  issuer: string;
  renderer: Renderer;
  csrf: Csrf;
  accountSession: (ctx: Context) => Promise<AccountSession | undefined>;
}

/** How long before the idle limit the warning opens: two minutes, well over the 20 seconds WCAG 2.1 SC 2.2.1 asks for. */
export const SESSION_WARN_MS = 2 * 60_000;
export const KEEPALIVE_PATH = '/account/keepalive';

/** What views/partials/session-timeout.eta needs (views/layout.eta includes it when a page's data has it). */
export interface SessionTimeoutData {
  idleMs: number;
  warnMs: number;
  /** The account area's CSRF token of this session (csrfBinding in account-http.ts). */
  csrf: string;
  keepaliveUrl: string;
  signInUrl: string;
}

/** `sessionTimeout` for an account page's data: `sessionTimeoutData(deps.csrf.token(csrfBinding(session)))`. */
export function sessionTimeoutData(csrfToken: string): SessionTimeoutData {
  return { idleMs: SESSION_IDLE_MS, warnMs: SESSION_WARN_MS, csrf: csrfToken, keepaliveUrl: KEEPALIVE_PATH, signInUrl: '/account' };
}

const SESSION_TIMEOUT_SCRIPT = fs.readFileSync(path.join(PUBLIC_DIR, 'session-timeout.js'));
const keepaliveForm = { _csrf: z.string().max(128) };

export function siteRoutes(deps: SiteDeps): Router {
  const router = new Router();

  router.get('/', (ctx) => {
    rememberLocale(ctx);
    // The same address answers in either language (`?lang=`, then the switch's cookie): kept out of shared caches.
    ctx.set('Cache-Control', 'private, no-cache');
    deps.renderer.render(ctx, 'home', localeFor(ctx), (t) => ({
      title: t('home.title'),
      idleMinutes: Math.round(SESSION_IDLE_MS / 60_000),
    }));
  });

  router.get('/static/session-timeout.js', (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = SESSION_TIMEOUT_SCRIPT;
  });

  // Same origin, a live account session and its CSRF token (readAccountPost: 403 / 401 / 403 / 400);
  // reading the session is what slides its idle clock (createAccountSessions), so nothing else is done.
  router.post(KEEPALIVE_PATH, noStore, async (ctx) => {
    await readAccountPost(ctx, deps, keepaliveForm);
    ctx.status = 204;
  });

  return router;
}
