/**
 * HSTS on an https issuer (SECURITY.md #31): a server configured for https (behind one trusted
 * proxy that terminates TLS) sends Strict-Transport-Security on its pages.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, type Response } from '../helpers/browser.js';

const ISSUER = 'https://id.example.vn';
const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.vn', host: 'id.example.vn' };

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ env: { DINHDANH_ISSUER: ISSUER, DINHDANH_TRUST_PROXY_HOPS: '1' } });
});
afterAll(async () => { await srv.close(); });

/** An authorization request for the portal (code flow with PKCE), as its back end would build it. */
async function authUrl(portal: { client_id: string; redirect_uri: string }): Promise<string> {
  const auth = new URL(`${srv.issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: portal.client_id, response_type: 'code', scope: 'openid', redirect_uri: portal.redirect_uri,
    state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  }).toString();
  return auth.href;
}

/** The same path and query on the test server (the browser talks to it as the proxy would). */
const local = (location: string) => { const u = new URL(location); return `${srv.issuer}${u.pathname}${u.search}`; };

/** Posts the login page's form with the person's number and password, through the proxy. */
function postPassword(browser: Browser, page: Response, person: { pid: string; password: string }): Promise<Response> {
  const action = /<form[^>]*action="([^"]*)"/.exec(page.text)![1]!;
  const csrf = /name="_csrf" value="([^"]*)"/.exec(page.text)![1]!;
  return browser.request(`${srv.issuer}${action}`, {
    method: 'POST',
    body: new URLSearchParams({ _csrf: csrf, identifier: person.pid, password: person.password }).toString(),
    headers: { ...viaProxy, origin: ISSUER, 'sec-fetch-site': 'same-origin' },
  });
}

function expectHsts(res: Response): void {
  const hsts = res.headers.get('strict-transport-security');
  expect(hsts).toBeTruthy();
  const maxAge = Number(/max-age=(\d+)/.exec(hsts!)?.[1]);
  expect(maxAge).toBeGreaterThanOrEqual(31_536_000);
}

describe('HSTS on https', () => {
  it('the home page, an error page and the login page send Strict-Transport-Security', async () => {
    const browser = new Browser(srv.issuer);
    const home = await browser.request(`${srv.issuer}/`, { headers: viaProxy });
    expect(home.status).toBe(200);
    expectHsts(home);

    const error = await browser.request(`${srv.issuer}/interaction/does-not-exist`, { headers: viaProxy });
    expect(error.status).toBe(400);
    expectHsts(error);

    const portal = await srv.addPortal({ redirectUris: ['https://portal.example.vn/callback'] });
    const auth = new URL(`${srv.issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: portal.client_id,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: portal.redirect_uri,
      state: oidc.randomState(),
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }).toString();
    let res = await browser.request(auth.href, { headers: viaProxy });
    for (let i = 0; i < 5 && res.status >= 300 && res.status < 400 && res.location; i += 1) {
      const next = new URL(res.location);
      res = await browser.request(`${srv.issuer}${next.pathname}${next.search}`, { headers: viaProxy });
    }
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="identifier"');
    expectHsts(res);
  });

  it('signs in with a __Host- session cookie: Secure, Path=/, no Domain (no sibling can plant one)', async () => {
    const browser = new Browser(srv.issuer);
    const portal = await srv.addPortal({ redirectUris: ['https://portal.example.vn/cb2'] });
    const person = await srv.addPerson();
    let res = await browser.request(await authUrl(portal), { headers: viaProxy });
    res = await browser.request(local(res.location!), { headers: viaProxy });
    res = await postPassword(browser, res, person);
    expect(res.status).toBe(303);
    res = await browser.request(local(res.location!), { headers: viaProxy });
    const session = res.headers.getSetCookie().find((c) => c.startsWith('__Host-dd_session='));
    expect(session).toBeDefined();
    expect(session!.toLowerCase()).toContain('; secure');
    expect(session!.toLowerCase()).toContain('; path=/;');
    expect(session!.toLowerCase()).not.toContain('domain=');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('dd_session='))).toBe(false);
  });

  /**
   * The interaction and resume cookies bind a sign-in to the browser that started it. A sibling
   * sub-domain could otherwise plant another sign-in's pair (its signature included) and make a
   * victim's browser finish the attacker's sign-in (login CSRF) or type their password into it.
   */
  it('carries the interaction and resume cookies as __Host- (Secure, Path=/, no Domain), and signs in with them', async () => {
    const browser = new Browser(srv.issuer);
    const portal = await srv.addPortal({ redirectUris: ['https://portal.example.vn/cb3'] });
    const person = await srv.addPerson();
    let res = await browser.request(await authUrl(portal), { headers: viaProxy });
    const set = res.headers.getSetCookie();
    for (const name of ['dd_interaction', 'dd_interaction.sig', 'dd_resume', 'dd_resume.sig']) {
      expect(set.some((c) => c.startsWith(`${name}=`))).toBe(false);
      const cookie = set.find((c) => c.startsWith(`__Host-${name}=`))?.toLowerCase();
      expect({ name, secure: cookie?.includes('; secure'), root: /; path=\/(;|$)/.test(cookie ?? ''), domain: cookie?.includes('domain=') })
        .toEqual({ name, secure: true, root: true, domain: false });
    }
    res = await browser.request(local(res.location!), { headers: viaProxy });
    res = await postPassword(browser, res, person);
    expect(res.status).toBe(303);
    const follow = async (r: Response) => {
      for (let i = 0; i < 5 && r.location && !r.location.startsWith('https://portal.example.vn/'); i += 1) r = await browser.request(local(r.location), { headers: viaProxy });
      return r;
    };
    res = await follow(res);
    if (res.status === 200 && res.text.includes('name="decision"')) {
      const consent = /<form[^>]*action="([^"]*)"/.exec(res.text)![1]!;
      res = await follow(await browser.request(`${srv.issuer}${consent}`, {
        method: 'POST',
        body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]*)"/.exec(res.text)![1]!, decision: 'allow' }).toString(),
        headers: { ...viaProxy, origin: ISSUER, 'sec-fetch-site': 'same-origin' },
      }));
    }
    expect(res.location).toMatch(/^https:\/\/portal\.example\.vn\/cb3\?code=/);
    // Once resumed, the resume cookie is cleared where it was set.
    const cleared = browser.cookies().get('__Host-dd_resume');
    expect(cleared).toBeUndefined();
  });
});
