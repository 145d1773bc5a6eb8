/**
 * Refusals found in review, kept as regressions: request objects that are too long-lived or lack
 * nbf are refused (never a 500), `prompt=consent` shows the consent page even when consent is
 * remembered, and the sign-out confirmation's same-origin guard holds for every spelling of its path.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';

let srv: TestServer;
let portal: Portal;
beforeAll(async () => {
  srv = await startTestServer();
  portal = await srv.addPortal();
});
afterAll(async () => { await srv.close(); });

describe('request objects', () => {
  it.each([
    ['without nbf', (now: number) => ({ exp: now + 30 })],
    ['with exp 3000 s ahead', (now: number) => ({ exp: now + 3000, nbf: now })],
    ['with exp - nbf over 60 s', (now: number) => ({ exp: now + 30, nbf: now - 600 })],
  ])('a request object %s is refused as invalid, never a server error', async (_label, times) => {
    // Signed by a key the portal never registered: the lifetime checks run first and must refuse.
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ client_id: portal.client_id, response_type: 'code', redirect_uri: portal.redirect_uri, scope: 'openid', ...times(now) })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(portal.client_id)
      .setAudience(srv.issuer)
      .sign(privateKey);
    const url = new URL(`${srv.issuer}/auth`);
    url.search = new URLSearchParams({ client_id: portal.client_id, response_type: 'code', scope: 'openid', redirect_uri: portal.redirect_uri, request: jwt }).toString();
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).not.toBe(500);
    const where = res.headers.get('location');
    const body = await res.text();
    const error = where ? new URL(where).searchParams.get('error') : /invalid_request_object|invalid_request/.exec(body)?.[0];
    expect(error).toMatch(/^invalid_request(_object)?$/);
    if (where) expect(new URL(where).searchParams.get('code')).toBeNull();
  });
});

describe('prompt=consent', () => {
  it('shows the consent page although consent was remembered', async () => {
    const config = await discover(srv.issuer, portal);
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const first = await signIn(browser, await authRequest(config, portal), person);
    expect(new URL(first.location!).searchParams.get('code')).toBeTruthy();

    const silentAgain = await browser.get((await authRequest(config, portal)).url.href);
    expect(silentAgain.status).toBe(303);

    const req = await authRequest(config, portal, { prompt: 'consent' });
    const page = await browser.get(req.url.href);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="decision"');
    const done = await browser.post(new URL(formAction(page.text), srv.issuer).href, { _csrf: hiddenField(page.text, '_csrf'), decision: 'allow' });
    const tokens = await redeem(config, req, done.location!);
    expect(tokens.claims()!.acr).toBe('urn:dinhdanh:loa:low');
  });
});

describe('sign-out confirmation', () => {
  it.each(['/session/end/confirm/', '/SESSION/END/CONFIRM', '/Session/End/Confirm//'])('refuses a cross-site post to %s and keeps the session', async (spelling) => {
    const config = await discover(srv.issuer, portal);
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const done = await signIn(browser, await authRequest(config, portal), person);
    expect(new URL(done.location!).searchParams.get('code')).toBeTruthy();
    const logoutPage = await browser.get(`${srv.issuer}/session/end?client_id=${portal.client_id}`);
    expect(logoutPage.status).toBe(200);
    const xsrf = hiddenField(logoutPage.text, 'xsrf');
    const res = await browser.request(`${srv.issuer}${spelling}`, {
      method: 'POST',
      body: new URLSearchParams({ xsrf, logout: 'all' }).toString(),
      headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(res.status).toBe(403);
    const silent = await browser.get((await authRequest(config, portal, { prompt: 'none' })).url.href);
    expect(new URL(silent.location!).searchParams.get('code')).toBeTruthy();
  });
});

describe('the language switch', () => {
  it.each(['//evil.example/login', '/\\evil.example/login', '//evil.example/%2e%2e/login', '/interaction/x//evil.example'])(
    'on a page for %s links only to this site (never a scheme-relative URL to another host)',
    async (path) => {
      const res = await fetch(`${srv.issuer}${path}`, { redirect: 'manual' });
      const html = await res.text();
      const href = /<a class="lang" href="([^"]*)"/.exec(html)?.[1];
      expect(href).toBeDefined();
      const target = new URL(href!.replace(/&amp;/g, '&'), `${srv.issuer}${path.replace(/\\/g, '/')}`);
      expect(target.origin).toBe(srv.issuer);
      expect(target.searchParams.get('lang')).toBe('en');
    },
  );
});
