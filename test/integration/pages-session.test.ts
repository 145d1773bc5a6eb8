/**
 * The SSO session cookie (SECURITY.md #32, #23, #24): it changes at every sign-in, is worthless
 * after sign-out, and RP-initiated logout redirects only to a registered post-logout URI.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, redeem, signIn, type Portal } from '../helpers/rp.js';
import { configFor, submitAutoPost } from './pages-support.js';

const SESSION = 'dd_session';

let srv: TestServer;
let portal: Awaited<ReturnType<TestServer['addPortal']>>;
beforeAll(async () => {
  srv = await startTestServer();
  portal = await srv.addPortal({ postLogoutRedirectUris: ['http://localhost:9001/signed-out'] });
});
afterAll(async () => { await srv.close(); });

type Person = Awaited<ReturnType<TestServer['addPerson']>>;

function callbackParams(res: Response, p: Portal): URLSearchParams {
  expect(res.status).toBe(303);
  const url = new URL(res.location!);
  expect(`${url.origin}${url.pathname}`).toBe(p.redirect_uri);
  return url.searchParams;
}

/** Signs a person in through the pages (consent allowed) and returns the ID token. */
async function signInFully(browser: Browser, person: Person, extra: Record<string, string> = {}) {
  const config = await configFor(srv, portal);
  const req = await authRequest(config, portal, extra);
  const done = await signIn(browser, req, person);
  expect(callbackParams(done, portal).get('code')).toBeTruthy();
  const tokens = await redeem(config, req, done.location!);
  return { idToken: tokens.id_token!, sub: tokens.claims()!.sub, authTime: tokens.claims()!.auth_time };
}

/** A `prompt=none` request from `browser`: the portal's callback parameters. */
async function silent(browser: Browser): Promise<URLSearchParams> {
  const config = await configFor(srv, portal);
  const req = await authRequest(config, portal, { prompt: 'none' });
  const res = await browser.get(req.url.href);
  const params = callbackParams(res, portal);
  expect(params.get('state')).toBe(req.state);
  expect(params.get('iss')).toBe(srv.issuer);
  return params;
}

/** A fresh browser presenting only the given cookies. */
async function silentWithCookies(cookies: Map<string, string>): Promise<URLSearchParams> {
  const config = await configFor(srv, portal);
  const req = await authRequest(config, portal, { prompt: 'none' });
  const header = [...cookies].filter(([k]) => k.startsWith(SESSION)).map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await new Browser(srv.issuer).request(req.url.href, { headers: { cookie: header } });
  expect(res.status).toBe(303);
  return new URL(res.location!).searchParams;
}

/** Opens the sign-out confirmation and answers it. */
async function logOut(browser: Browser, query: Record<string, string>, choice: 'all' | 'portal' = 'all'): Promise<Response> {
  const page = await browser.get(`${srv.issuer}/session/end?${new URLSearchParams(query).toString()}`);
  expect(page.status).toBe(200);
  expect(page.text).toMatch(/<button type="submit" name="logout" value="all"/);
  expect(page.text).toMatch(/<button type="submit" name="logout" value="portal"/);
  return browser.post(new URL(formAction(page.text), srv.issuer).href, {
    xsrf: hiddenField(page.text, 'xsrf'),
    _csrf: hiddenField(page.text, '_csrf'),
    logout: choice,
  });
}

describe('the session cookie changes at sign-in (SECURITY.md #32)', () => {
  it('signing in again (prompt=login) issues a new session cookie and the old one is worthless', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    expect(browser.cookies().has(SESSION)).toBe(false);
    const first = await signInFully(browser, person);
    const before = browser.cookies();
    expect(before.get(SESSION)).toBeTruthy();

    const second = await signInFully(browser, person, { prompt: 'login' });
    const after = browser.cookies();
    expect(after.get(SESSION)).toBeTruthy();
    expect(after.get(SESSION)).not.toBe(before.get(SESSION));
    expect(second.sub).toBe(first.sub);

    // The current cookie works silently; the replaced one does not.
    expect((await silent(browser)).get('code')).toBeTruthy();
    expect((await silentWithCookies(before)).get('error')).toBe('login_required');
    expect((await silentWithCookies(after)).get('code')).toBeTruthy();
  });

  it('prompt=login for a person who still has to consent: login, consent, then back at the portal (asked to sign in once)', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const config = await configFor(srv, portal);
    const req = await authRequest(config, portal, { prompt: 'login' });
    let res = await browser.get(req.url.href);
    expect(res.text).toContain('name="identifier"');
    res = await browser.post(new URL(formAction(res.text), srv.issuer).href, { _csrf: hiddenField(res.text, '_csrf'), identifier: person.pid, password: person.password });
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="decision"');
    res = await browser.post(new URL(formAction(res.text), srv.issuer).href, { _csrf: hiddenField(res.text, '_csrf'), decision: 'allow' });
    // Not the login page a second time.
    expect(res.text).not.toContain('name="identifier"');
    expect(callbackParams(res, portal).get('code')).toBeTruthy();
    expect(browser.cookies().get(SESSION)).toBeTruthy();
  });

  it('another person signing in in the same browser (prompt=login) gets a new session cookie and their own subject', async () => {
    const a = await srv.addPerson();
    const b = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const asA = await signInFully(browser, a);
    const cookieA = browser.cookies().get(SESSION);

    const config = await configFor(srv, portal);
    const req = await authRequest(config, portal, { prompt: 'login' });
    let res = await browser.get(req.url.href);
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="identifier"');
    res = await browser.post(new URL(formAction(res.text), srv.issuer).href, { _csrf: hiddenField(res.text, '_csrf'), identifier: b.pid, password: b.password });
    // oidc-provider ends A's session first (a page that posts itself to the sign-out endpoint).
    res = await submitAutoPost(browser, res, srv.issuer);
    expect(res.status).toBeLessThan(500);
    if (res.status === 200 && res.text.includes('name="decision"')) {
      res = await browser.post(new URL(formAction(res.text), srv.issuer).href, { _csrf: hiddenField(res.text, '_csrf'), decision: 'allow' });
    }
    expect(callbackParams(res, portal).get('code')).toBeTruthy();
    const tokens = await redeem(config, req, res.location!);
    expect(tokens.claims()!.sub).not.toBe(asA.sub);
    const cookieB = browser.cookies().get(SESSION);
    expect(cookieB).toBeTruthy();
    expect(cookieB).not.toBe(cookieA);
  });
});

describe('RP-initiated logout (SECURITY.md #23, #24, #32)', () => {
  it('after logout=all, prompt=none answers login_required, and the old cookie is worthless in another browser', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const { idToken } = await signInFully(browser, person);
    const old = browser.cookies();
    expect((await silent(browser)).get('code')).toBeTruthy();

    const done = await logOut(browser, { id_token_hint: idToken, client_id: portal.client_id });
    expect(done.status).toBe(200);
    expect(done.location).toBeNull();

    const after = await silent(browser);
    expect(after.get('error')).toBe('login_required');
    expect(after.get('code')).toBeNull();

    const replay = await silentWithCookies(old);
    expect(replay.get('error')).toBe('login_required');
    expect(replay.get('code')).toBeNull();
  });

  it('redirects to a registered post_logout_redirect_uri (exact match) with state', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const { idToken } = await signInFully(browser, person);
    const done = await logOut(browser, {
      id_token_hint: idToken, client_id: portal.client_id, post_logout_redirect_uri: 'http://localhost:9001/signed-out', state: 'au-revoir 1',
    });
    expect(done.status).toBe(303);
    const url = new URL(done.location!);
    expect(`${url.origin}${url.pathname}`).toBe('http://localhost:9001/signed-out');
    expect(url.searchParams.get('state')).toBe('au-revoir 1');
    expect((await silent(browser)).get('error')).toBe('login_required');
  });

  it.each([
    ['an unregistered URI', 'http://localhost:9001/elsewhere'],
    ['the registered URI with a query appended', 'http://localhost:9001/signed-out?next=/'],
    ['the registered URI with a trailing slash', 'http://localhost:9001/signed-out/'],
    ['the registered URI on another host', 'http://127.0.0.1:9001/signed-out'],
    ['the callback URI (not a post-logout URI)', 'http://localhost:9001/callback'],
  ])('%s as post_logout_redirect_uri → an error page, no redirect, still signed in', async (_name, uri) => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const { idToken } = await signInFully(browser, person);
    // As a browser navigates: asking for HTML.
    const res = await browser.request(`${srv.issuer}/session/end?${new URLSearchParams({
      id_token_hint: idToken, client_id: portal.client_id, post_logout_redirect_uri: uri, state: 's',
    }).toString()}`, { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    expect(res.text).toContain('role="alert"');
    expect(res.text).not.toContain('name="logout"');
    expect((await silent(browser)).get('code')).toBeTruthy();
  });
});

describe('the sign-out confirmation is guarded like our other forms (SECURITY.md #30)', () => {
  async function confirmPage(browser: Browser) {
    const page = await browser.get(`${srv.issuer}/session/end?client_id=${encodeURIComponent(portal.client_id)}`);
    expect(page.status).toBe(200);
    return { action: new URL(formAction(page.text), srv.issuer).href, xsrf: hiddenField(page.text, 'xsrf'), csrf: hiddenField(page.text, '_csrf') };
  }

  const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };
  it.each([
    ['from another origin', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, 'none'],
    ['from a sibling portal (same-site)', { origin: 'http://portal.example.vn', 'sec-fetch-site': 'same-site' }, 'none'],
    ['with a forged xsrf token', SAME_ORIGIN, 'forged-token'],
    ['with an operator-shaped logout field', SAME_ORIGIN, 'operator'],
  ] as Array<[string, Record<string, string>, 'none' | 'forged-token' | 'operator']>)('a sign-out POST %s is refused and the session survives', async (_name, headers, twist) => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    await signInFully(browser, person);
    const page = await confirmPage(browser);
    const fields: Record<string, string> = { xsrf: page.xsrf, _csrf: page.csrf, logout: 'all' };
    const body = twist === 'forged-token'
      ? new URLSearchParams({ ...fields, xsrf: 'forged', _csrf: 'forged' }).toString()
      : twist === 'operator'
        ? `xsrf=${encodeURIComponent(page.xsrf)}&_csrf=${encodeURIComponent(page.csrf)}&logout[$ne]=portal`
        : new URLSearchParams(fields).toString();
    const res = await browser.request(page.action, { method: 'POST', body, headers: { origin: srv.issuer, ...headers, accept: 'text/html' } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.location).toBeNull();
    expect((await silent(browser)).get('code')).toBeTruthy();
  });
});

describe('signing out of one portal only (logout=portal)', () => {
  it('ends the session for that portal and keeps it for the others', async () => {
    const other = await srv.addPortal();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const { idToken } = await signInFully(browser, person);
    const otherConfig = await configFor(srv, other);
    const otherReq = await authRequest(otherConfig, other);
    expect(callbackParams(await signIn(browser, otherReq, person), other).get('code')).toBeTruthy();

    const done = await logOut(browser, { id_token_hint: idToken, client_id: portal.client_id }, 'portal');
    expect(done.status).toBeLessThan(500);
    expect(done.location === null || !done.location.includes('code=')).toBe(true);

    // This portal gets no silent code; the other still does.
    const here = await silent(browser);
    expect(here.get('code')).toBeNull();
    expect(['login_required', 'consent_required', 'interaction_required']).toContain(here.get('error'));
    const silentOther = await authRequest(otherConfig, other, { prompt: 'none' });
    expect(callbackParams(await browser.get(silentOther.url.href), other).get('code')).toBeTruthy();
  });
});
