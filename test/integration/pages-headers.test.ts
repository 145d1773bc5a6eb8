/**
 * What our pages send and how they print what they did not write (SECURITY.md #31): security headers
 * on the login, consent, error and logout pages; escaping of a portal's name, `login_hint` and
 * reflected input on error pages.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, signIn, type Portal } from '../helpers/rp.js';
import { configFor, expectLoginShownAgain, openLogin } from './pages-support.js';

let srv: TestServer;
let portal: Awaited<ReturnType<TestServer['addPortal']>>;
beforeAll(async () => {
  srv = await startTestServer();
  portal = await srv.addPortal();
});
afterAll(async () => { await srv.close(); });

function cspDirectives(res: Response): Map<string, string[]> {
  const csp = res.headers.get('content-security-policy');
  expect(csp).toBeTruthy();
  return new Map(csp!.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
    const [name, ...values] = d.split(/\s+/);
    return [name!.toLowerCase(), values];
  }));
}

function expectPageHeaders(res: Response, options: { noStore: boolean }): void {
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  const csp = cspDirectives(res);
  expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
  expect(res.headers.get('content-security-policy')).not.toContain("'unsafe-inline'");
  expect(res.headers.get('content-security-policy')).not.toContain("'unsafe-eval'");
  // Without a script-src (or default-src) inline scripts would run.
  expect(csp.get('script-src') ?? csp.get('default-src')).toBeDefined();
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('x-frame-options')).toBe('DENY');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  // Served over http: no HSTS (it would be ignored, and must not be sent for a plain-http issuer).
  expect(res.headers.get('strict-transport-security')).toBeNull();
  if (options.noStore) expect(res.headers.get('cache-control')).toMatch(/\bno-store\b/);
}

/** Signs in and comes back with the browser, the ID token and the client. */
async function signedIn(p: Portal, scope = 'openid profile') {
  const person = await srv.addPerson();
  const browser = new Browser(srv.issuer);
  const config = await configFor(srv, p);
  const req = await authRequest(config, p, { scope });
  const done = await signIn(browser, req, person);
  expect(done.status).toBe(303);
  return { browser, person };
}

describe('security headers on our pages (SECURITY.md #31)', () => {
  it('login page', async () => {
    const login = await openLogin(srv, portal);
    expect(login.page.status).toBe(200);
    expectPageHeaders(login.page, { noStore: true });
  });

  it('login page re-rendered after a wrong password', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const res = await login.browser.post(login.action, { _csrf: login.csrf, identifier: person.pid, password: 'sai mật khẩu rồi nhé 000' });
    expectLoginShownAgain(res);
    expectPageHeaders(res, { noStore: true });
  });

  it('consent page', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const res = await login.browser.post(login.action, { _csrf: login.csrf, identifier: person.pid, password: person.password });
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="decision"');
    expectPageHeaders(res, { noStore: true });
  });

  it('error pages: ours (expired interaction), a refused POST, and the provider\'s (unknown portal)', async () => {
    const ours = await new Browser(srv.issuer).get(`${srv.issuer}/interaction/does-not-exist`);
    expect(ours.status).toBe(400);
    expect(ours.text).toContain('role="alert"');
    expectPageHeaders(ours, { noStore: true });

    const login = await openLogin(srv, portal);
    const refused = await login.browser.post(login.action, { _csrf: 'forged', identifier: '001090000001', password: 'x' });
    expect(refused.status).toBe(403);
    expectPageHeaders(refused, { noStore: true });

    const provider = await new Browser(srv.issuer).get(`${srv.issuer}/auth?client_id=unknown&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://localhost:9999/cb')}`);
    expect(provider.status).toBe(400);
    expect(provider.text).toContain('role="alert"');
    expectPageHeaders(provider, { noStore: true });

    const missing = await new Browser(srv.issuer).get(`${srv.issuer}/no/such/page`);
    expect(missing.status).toBe(404);
    expectPageHeaders(missing, { noStore: false });
  });

  it('logout confirmation and signed-out pages', async () => {
    const { browser } = await signedIn(portal);
    const page = await browser.get(`${srv.issuer}/session/end?client_id=${encodeURIComponent(portal.client_id)}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="logout"');
    expectPageHeaders(page, { noStore: true });

    const done = await browser.post(new URL(formAction(page.text), srv.issuer).href, { xsrf: hiddenField(page.text, 'xsrf'), _csrf: hiddenField(page.text, '_csrf'), logout: 'all' });
    expect(done.status).toBe(200);
    expectPageHeaders(done, { noStore: true });
  });
});

describe('escaping (SECURITY.md #31)', () => {
  const NAME = '<script>alert(1)</script> Cổng "thử" & \'nghiệm\'';
  let evil: Portal;
  beforeAll(async () => {
    // The CLI refuses angle brackets in names; a name that reached the store some other way must
    // still be printed as text.
    const redirect = 'http://localhost:9200/callback';
    const reg = await srv.system.portals.register({
      name: NAME,
      redirectUris: [redirect],
      postLogoutRedirectUris: [],
      backchannelLogoutUri: null,
      grantTypes: ['authorization_code'],
      sector: 'localhost:9200',
      nationalId: false,
      nationalIdBasis: null,
      authMethod: 'client_secret_basic',
      jwksUri: null,
      jwks: null,
      fapi: false,
      offlineAccess: false,
      idTokenAlg: 'RS256',
    });
    evil = { client_id: reg.client_id, client_secret: reg.client_secret!, redirect_uri: redirect };
  });

  const escapedName = '&lt;script&gt;alert(1)&lt;/script&gt;';

  function expectNoMarkupFrom(html: string, ...raw: string[]): void {
    // We ship no script: no <script> element at all on our pages.
    expect(html).not.toMatch(/<script/i);
    for (const r of raw) expect(html).not.toContain(r);
  }

  it('a portal name with markup is printed escaped on the login, consent and logout pages', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, evil);
    expect(login.page.text).toContain(escapedName);
    expectNoMarkupFrom(login.page.text, '<script>alert(1)');

    const consent = await login.browser.post(login.action, { _csrf: login.csrf, identifier: person.pid, password: person.password });
    expect(consent.status).toBe(200);
    expect(consent.text).toContain('name="decision"');
    expect(consent.text).toContain(escapedName);
    expectNoMarkupFrom(consent.text, '<script>alert(1)');

    const allowed = await login.browser.post(new URL(formAction(consent.text), srv.issuer).href, { _csrf: hiddenField(consent.text, '_csrf'), decision: 'allow' });
    expect(allowed.status).toBe(303);
    const logout = await login.browser.get(`${srv.issuer}/session/end?client_id=${encodeURIComponent(evil.client_id)}`);
    expect(logout.status).toBe(200);
    expect(logout.text).toContain(escapedName);
    expectNoMarkupFrom(logout.text, '<script>alert(1)');
  });

  it('a login_hint with markup never reaches the page raw', async () => {
    const hint = '"><script>alert(2)</script><img src=x onerror=alert(3)>';
    const login = await openLogin(srv, portal, { login_hint: hint });
    expectNoMarkupFrom(login.page.text, '<script>alert(2)', '<img src=x', 'onerror=alert(3)>');
    // If the hint is shown at all, it is shown as text.
    if (login.page.text.includes('alert(2)')) expect(login.page.text).toContain('&lt;script&gt;alert(2)');
  });

  it('input reflected on error pages is escaped (a path with markup; markup in every authorization parameter)', async () => {
    const origin = new URL(srv.issuer);
    for (const p of ['/interaction/"><script>alert(4)</script>', '/nope"><script>alert(5)</script>', '/interaction/x"><script>alert(6)</script>/abort']) {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: origin.hostname, port: origin.port, path: p, headers: { accept: 'text/html' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => { text += c; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      expect(body).toContain('role="alert"');
      expectNoMarkupFrom(body, '"><script>', '<script>alert(');
      if (body.includes('alert(')) expect(body).toMatch(/&lt;script&gt;alert\([456]\)/);
    }

    const x = '"><script>alert(7)</script>';
    const query = new URLSearchParams({
      client_id: x, response_type: x, scope: `openid ${x}`, redirect_uri: `http://localhost:9999/${x}`, state: x, nonce: x,
      login_hint: x, ui_locales: x, prompt: x, acr_values: x, claims: x,
    });
    const res = await new Browser(srv.issuer).get(`${srv.issuer}/auth?${query.toString()}`);
    expect(res.status).toBe(400);
    expect(res.text).toContain('role="alert"');
    expectNoMarkupFrom(res.text, '"><script>', '<script>alert(7)');

    // A registered portal, so the request gets further before it is refused.
    const config = await configFor(srv, portal);
    const req = await authRequest(config, portal, { prompt: x, claims: x, max_age: x });
    const refused = await new Browser(srv.issuer).get(req.url.href);
    expect(refused.status).toBeLessThan(500);
    if (refused.status === 200) expectNoMarkupFrom(refused.text, '<script>alert(7)');
    else expect(refused.location ?? '').not.toContain('<script>');
  });
});
