/**
 * Shared steps for the page tests (pages-*.test.ts): open a login page for a portal, post raw
 * bodies with chosen headers, read the failure counters, compare pages that must be identical.
 */
import { expect } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, decodeEntities, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, type AuthRequest, type Portal } from '../helpers/rp.js';

export interface LoginPage {
  browser: Browser;
  config: oidc.Configuration;
  req: AuthRequest;
  page: Response;
  /** Absolute URL of the login form's action. */
  action: string;
  uid: string;
  csrf: string;
}

const configs = new Map<string, oidc.Configuration>();

export async function configFor(srv: TestServer, portal: Portal): Promise<oidc.Configuration> {
  const key = `${srv.issuer} ${portal.client_id}`;
  let config = configs.get(key);
  if (!config) {
    config = await discover(srv.issuer, portal);
    configs.set(key, config);
  }
  return config;
}

/** Starts an authorization request in `browser` (a new one by default) and lands on the login page. */
export async function openLogin(srv: TestServer, portal: Portal, extra: Record<string, string> = {}, browser = new Browser(srv.issuer)): Promise<LoginPage> {
  const config = await configFor(srv, portal);
  const req = await authRequest(config, portal, extra);
  const page = await browser.get(req.url.href);
  expect(page.status).toBe(200);
  expect(page.text).toContain('name="identifier"');
  const action = new URL(formAction(page.text), srv.issuer).href;
  const uid = /\/interaction\/([^/]+)\/login$/.exec(new URL(action).pathname)?.[1];
  if (!uid) throw new Error(`unexpected login form action ${action}`);
  return { browser, config, req, page, action, uid, csrf: hiddenField(page.text, '_csrf') };
}

export function sameOrigin(issuer: string): Record<string, string> {
  return { origin: issuer, 'sec-fetch-site': 'same-origin' };
}

/** POSTs a raw body (not re-encoded) with exactly the given headers, following no redirects. */
export async function rawPost(browser: Browser, url: string, body: string, headers: Record<string, string>): Promise<Response> {
  return browser.request(url, { method: 'POST', body, headers });
}

/** Form-encodes fields the way a browser does. */
export function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export async function failures(srv: TestServer, personId: string, now = Date.now()): Promise<number> {
  return (await srv.system.store.counters.get(`login-fail:${personId}`, now))?.count ?? 0;
}

export async function ipFailures(srv: TestServer, now = Date.now()): Promise<number> {
  return (await srv.system.store.counters.get('login-ip:127.0.0.1', now))?.count ?? 0;
}

/** Replaces every occurrence of the given per-request values (uid, CSRF token, echoed input) with a placeholder. */
export function normalise(html: string, values: Array<string | undefined>): string {
  let out = html;
  for (const v of values) {
    if (v) out = out.split(v).join('«var»');
  }
  return out;
}

/**
 * A refused sign-in shows the login form again with an alert. Its status is the product's choice
 * (200 like any re-shown form, or 401); what matters is that it is the same for every refusal.
 */
export const REFUSED_SIGN_IN_STATUSES = [200, 401];

export function expectLoginShownAgain(res: Response): void {
  expect(REFUSED_SIGN_IN_STATUSES).toContain(res.status);
  expect(res.location).toBeNull();
  expect(res.text).toContain('name="identifier"');
  expect(res.text).toContain('role="alert"');
  expect(res.text).not.toContain('name="decision"');
}

/** A successful login POST lands on the consent page or goes back to the portal with a code. */
export function expectSignedIn(res: Response, portal: Portal): void {
  expect(res.status).toBeLessThan(500);
  if (res.status === 200) {
    expect(res.text).toContain('name="decision"');
  } else {
    expect(res.status).toBe(303);
    expect(res.location).toMatch(new RegExp(`^${escapeRegExp(portal.redirect_uri)}\\?`));
    expect(new URL(res.location!).searchParams.get('code')).toBeTruthy();
  }
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The page's `<html lang>`. */
export function htmlLang(html: string): string | undefined {
  return /<html lang="([^"]*)"/.exec(html)?.[1];
}

/** The text of the page's first `<h1>`. */
export function heading(html: string): string | undefined {
  return /<h1>([^<]*)<\/h1>/.exec(html)?.[1];
}

/** All hidden inputs of the first form on a page (oidc-provider's auto-submitting pages included). */
export function hiddenInputs(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) out[m[1]!] = decodeEntities(m[2]!);
  return out;
}

/**
 * oidc-provider answers some steps with a page that submits a form by script as soon as it loads
 * (e.g. ending the previous person's session before another signs in). A browser would submit it:
 * so does this.
 */
export async function submitAutoPost(browser: Browser, res: Response, issuer: string): Promise<Response> {
  if (res.status !== 200 || !/document\.forms\[0\]\.submit\(\)/.test(res.text)) return res;
  const action = new URL(formAction(res.text), issuer).href;
  return browser.post(action, hiddenInputs(res.text));
}
