/**
 * The development demo portals (issue 4, item 7): two real openid-client relying parties on
 * different hosts, a demo citizen with a printed password; single sign-on from one to the other
 * with different pairwise subjects, and single logout ending the other portal's session by
 * back-channel logout. The logout endpoint refuses forged, malformed and replayed tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import * as jose from 'jose';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { DEMO_CITIZEN, DemoError, startDemo, type Demo } from '../../src/demo/index.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

let srv: TestServer;
let demo: Demo;
let national: string;
let provincial: string;

beforeAll(async () => {
  srv = await startTestServer();
  demo = await startDemo(srv.system, { ports: [0, 0] });
  [national, provincial] = demo.urls as [string, string];
});
afterAll(async () => {
  await demo?.close();
  await srv?.close();
});

/** Follows redirects across origins, as a browser does (each origin keeps its own cookies). */
async function follow(browser: Browser, res: Response): Promise<Response> {
  for (let i = 0; i < 15 && res.status >= 300 && res.status < 400 && res.location; i += 1) res = await browser.request(res.location);
  return res;
}

const open = async (browser: Browser, url: string) => follow(browser, await browser.request(url));

/** Posts a page's form as a same-origin browser would, then follows redirects. */
async function submit(browser: Browser, page: Response, fields: Record<string, string>, index = 0): Promise<Response> {
  const action = new URL(formAction(page.text, index), page.url).href;
  return follow(browser, await browser.request(action, {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { origin: new URL(page.url).origin, 'sec-fetch-site': 'same-origin' },
  }));
}

function shown(page: Response, testid: string): string | undefined {
  return new RegExp(`data-testid="${testid}">([^<]*)<`).exec(page.text)?.[1];
}

function password(): string {
  expect(demo.citizen.password).toBeTruthy();
  return demo.citizen.password!;
}

/** Signs in at a demo portal with the password (and consent when asked); returns its home page. */
async function signInWithPassword(browser: Browser, portal: string): Promise<Response> {
  let page = await open(browser, `${portal}/login`);
  expect(page.url.startsWith(srv.issuer)).toBe(true);
  expect(page.text).toContain('name="identifier"');
  page = await submit(browser, page, { _csrf: hiddenField(page.text, '_csrf'), identifier: DEMO_CITIZEN.pid, password: password() });
  if (page.text.includes('name="decision"')) page = await submit(browser, page, { _csrf: hiddenField(page.text, '_csrf'), decision: 'allow' });
  expect(page.url).toBe(`${portal}/`);
  return page;
}

async function postLogoutToken(portal: string, body: string, contentType = 'application/x-www-form-urlencoded') {
  const res = await fetch(`${portal}/backchannel-logout`, { method: 'POST', body, headers: { 'content-type': contentType } });
  return { status: res.status, text: await res.text(), cacheControl: res.headers.get('cache-control') };
}

describe('demo portals', () => {
  it('are registered on different hosts, with back-channel logout and a sign-out page, and the citizen exists', async () => {
    expect(demo.urls).toEqual([expect.stringMatching(/^http:\/\/localhost:\d+$/), expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/)]);
    const portals = (await srv.system.portals.list()).filter((p) => p.client_id.startsWith('demo-'));
    expect(portals.map((p) => p.client_id).sort()).toEqual(['demo-national', 'demo-provincial']);
    const byId = Object.fromEntries(portals.map((p) => [p.client_id, p]));
    expect(byId['demo-national']).toMatchObject({
      redirect_uris: [`${national}/callback`],
      post_logout_redirect_uris: [`${national}/signed-out`],
      backchannel_logout_uri: `${national}/backchannel-logout`,
      grant_types: ['authorization_code', 'refresh_token'],
      sector: new URL(national).host,
    });
    expect(byId['demo-provincial']!.sector).toBe(new URL(provincial).host);
    expect(byId['demo-national']!.sector).not.toBe(byId['demo-provincial']!.sector);

    const person = await srv.system.store.persons.findByPid(DEMO_CITIZEN.pid);
    expect(person).toMatchObject({ name: 'Nguyễn Văn Demo', birthdate: '1999-05-01', gender: 'male', email: 'demo@example.invalid', level: 1 });
    expect(password().length).toBeGreaterThanOrEqual(16);
    expect(await srv.system.hasher.verify(person!.passwordHash, password())).toBe(true);
  });

  it('serve escaped pages with a restrictive CSP and no script', async () => {
    const res = await fetch(`${national}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/script-src|unsafe-inline/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const text = await res.text();
    expect(text).toContain('lang="vi"');
    expect(text).toContain('Đăng nhập bằng dinhdanh');
    expect(text).not.toContain('<script');
  });

  it('single sign-on from the national portal to the provincial one (consent only, different sub), then single logout of both', async () => {
    const browser = new Browser(srv.issuer);
    const before = await open(browser, `${national}/`);
    expect(shown(before, 'signed-out')).toBe('Bạn chưa đăng nhập.');

    // 1. The national portal: dinhdanh's login page, the demo citizen's printed password, consent.
    const atNational = await signInWithPassword(browser, national);
    expect(shown(atNational, 'name')).toBe('Nguyễn Văn Demo');
    expect(shown(atNational, 'acr')).toBe('urn:dinhdanh:loa:low');
    expect(shown(atNational, 'amr')).toBe('pwd');
    const subNational = shown(atNational, 'sub')!;
    expect(subNational).toMatch(/\S{16,}/);
    expect(subNational).not.toContain(DEMO_CITIZEN.pid);
    expect(atNational.text).toContain(`href="${provincial}"`);

    // 2. The provincial portal: no password, only its first consent.
    const consent = await open(browser, `${provincial}/login`);
    expect(consent.url.startsWith(srv.issuer)).toBe(true);
    expect(consent.text).not.toContain('name="password"');
    expect(consent.text).toContain('name="decision"');
    const atProvince = await submit(browser, consent, { _csrf: hiddenField(consent.text, '_csrf'), decision: 'allow' });
    expect(atProvince.url).toBe(`${provincial}/`);
    expect(shown(atProvince, 'name')).toBe('Nguyễn Văn Demo');
    const subProvince = shown(atProvince, 'sub')!;
    expect(subProvince).toBeTruthy();
    expect(subProvince).not.toBe(subNational);
    expect(shown(atProvince, 'sid')).not.toBe(shown(atNational, 'sid'));

    // 3. Sign out at the provincial portal, "all portals" on dinhdanh's confirmation page.
    const confirm = await submit(browser, atProvince, { _csrf: hiddenField(atProvince.text, '_csrf') });
    expect(confirm.url.startsWith(srv.issuer)).toBe(true);
    expect(confirm.text).toContain('name="logout"');
    const done = await submit(browser, confirm, { xsrf: hiddenField(confirm.text, 'xsrf'), _csrf: hiddenField(confirm.text, '_csrf'), logout: 'all' });
    expect(done.url).toBe(`${provincial}/signed-out`);
    expect(done.text).toContain('Bạn đã đăng xuất');
    expect(shown(await open(browser, `${provincial}/`), 'signed-out')).toBeTruthy();

    // 4. The national portal was told by back-channel logout (delivered from dinhdanh's job queue).
    let page = await open(browser, `${national}/`);
    for (let until = Date.now() + 10_000; !page.text.includes('data-testid="backchannel-logout"') && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 50));
      page = await open(browser, `${national}/`);
    }
    expect(page.text).toContain('data-testid="backchannel-logout"');
    expect(page.text).toContain('đăng xuất kênh sau');
    expect(shown(page, 'sub')).toBeUndefined();
    expect(shown(page, 'signed-out')).toBeTruthy();

    // 5. And dinhdanh's session is over: the next sign-in asks for the password again.
    const again = await open(browser, `${national}/login`);
    expect(again.text).toContain('name="identifier"');
  });

  it('a logout form without its token signs no one out', async () => {
    const browser = new Browser(srv.issuer);
    const home = await signInWithPassword(browser, national);
    const res = await browser.request(`${national}/logout`, { method: 'POST', body: '_csrf=forged', headers: { origin: 'http://evil.example' } });
    expect(res.status).toBe(303);
    expect(res.location).toBe(`${national}/`);
    expect(shown(await open(browser, `${national}/`), 'sub')).toBe(shown(home, 'sub'));
  });

  describe('back-channel logout endpoint', () => {
    let browser: Browser;
    let sid: string;
    let sub: string;
    const issuerKey = async () => {
      const jwk = srv.system.keys.jwks.keys.find((k) => k.alg === 'RS256')!;
      return { key: await jose.importJWK(jwk, 'RS256'), kid: jwk.kid! };
    };
    async function token(claims: Record<string, unknown>, options: { key?: jose.CryptoKey | Uint8Array | jose.KeyObject; kid?: string; typ?: string; aud?: string } = {}) {
      const real = await issuerKey();
      return new jose.SignJWT({ events: { [EVENT]: {} }, sid, sub, ...claims })
        .setProtectedHeader({ alg: 'RS256', typ: options.typ ?? 'logout+jwt', kid: options.kid ?? real.kid })
        .setIssuer(srv.issuer)
        .setAudience(options.aud ?? 'demo-national')
        .setIssuedAt()
        .setExpirationTime('2 minutes')
        .setJti(crypto.randomUUID())
        .sign(options.key ?? real.key);
    }
    const stillSignedIn = async () => shown(await open(browser, `${national}/`), 'sub') === sub;

    beforeAll(async () => {
      browser = new Browser(srv.issuer);
      const home = await signInWithPassword(browser, national);
      sid = shown(home, 'sid')!;
      sub = shown(home, 'sub')!;
      expect(sid).toBeTruthy();
    });

    it('refuses a token signed by another key with 400 invalid_request, and ends nothing', async () => {
      const { privateKey } = await jose.generateKeyPair('RS256');
      const forged = await token({}, { key: privateKey });
      const res = await postLogoutToken(national, new URLSearchParams({ logout_token: forged }).toString());
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text)).toEqual({ error: 'invalid_request' });
      expect(res.cacheControl).toBe('no-store');
      expect(await stillSignedIn()).toBe(true);
    });

    it.each([
      ['a nonce', async () => token({ nonce: 'n-0S6_WzA2Mj' })],
      ['no logout event', async () => token({ events: { 'http://schemas.openid.net/event/other': {} } })],
      ['neither sid nor sub', async () => token({ sid: undefined, sub: undefined })],
      ['another audience', async () => token({}, { aud: 'demo-provincial' })],
      ['the wrong typ', async () => token({}, { typ: 'JWT' })],
    ])('refuses a token with %s', async (_label, make) => {
      const res = await postLogoutToken(national, new URLSearchParams({ logout_token: await make() }).toString());
      expect(res.status).toBe(400);
      expect(await stillSignedIn()).toBe(true);
    });

    it('refuses a request that is not one logout_token in a form', async () => {
      const good = await token({});
      expect((await postLogoutToken(national, JSON.stringify({ logout_token: good }), 'application/json')).status).toBe(400);
      expect((await postLogoutToken(national, `logout_token=${good}&logout_token=${good}`)).status).toBe(400);
      expect((await postLogoutToken(national, 'logout_token=')).status).toBe(400);
      expect((await postLogoutToken(national, `logout_token=${'a'.repeat(20_000)}`)).status).toBe(400);
      expect(await stillSignedIn()).toBe(true);
    });

    it('accepts a valid token for the session\'s sid once, ending that session; a replay is refused', async () => {
      const valid = await token({ sub: undefined });
      const body = new URLSearchParams({ logout_token: valid }).toString();
      expect((await postLogoutToken(national, body)).status).toBe(200);
      const page = await open(browser, `${national}/`);
      expect(page.text).toContain('data-testid="backchannel-logout"');
      expect(shown(page, 'sub')).toBeUndefined();
      expect((await postLogoutToken(national, body)).status).toBe(400);
    });
  });

  it('subscribe to security events (a verification event arrives) and sign the citizen out when dinhdanh locks the account (account-disabled, session-revoked)', async () => {
    const streams = await demo.subscribed;
    expect(streams.every((id) => typeof id === 'string')).toBe(true);
    const until = async (check: () => Promise<boolean>) => {
      for (const end = Date.now() + 10_000; !(await check()) && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
    };
    const browser = new Browser(srv.issuer);
    await until(async () => (await open(browser, `${national}/`)).text.includes('>verification<'));
    expect((await open(browser, `${national}/`)).text).toContain('>verification<');

    const atNational = await signInWithPassword(browser, national);
    const sub = shown(atNational, 'sub')!;
    const person = (await srv.system.store.persons.findByPid(DEMO_CITIZEN.pid))!;
    // Back-channel logout would end the session too (and race the event): here only the events do.
    const registered = (await srv.system.store.portals.find('demo-national'))!;
    const { backchannel_logout_uri: _bcl, ...metadata } = registered.metadata;
    await srv.system.store.portals.updateMetadata('demo-national', metadata);
    await srv.system.accountAdmin.lock(DEMO_CITIZEN.pid, { operator: 'ops.test', reason: 'demo: account disabled' });
    let page = await open(browser, `${national}/`);
    // Both events of the lock arrive, in the order they were made: session-revoked (the lock ends the
    // sessions first), then account-disabled. The first ends the local session.
    await until(async () => {
      page = await open(browser, `${national}/`);
      return page.text.includes('data-testid="security-event-logout"') && page.text.includes('>account-disabled<') && page.text.includes('>session-revoked<');
    });
    expect(page.text).toContain('data-testid="security-event-logout"');
    expect(shown(page, 'signed-out')).toBeTruthy();
    expect(page.text).toContain('>account-disabled<');
    expect(page.text).toContain(`<code>${sub}</code>`);
    await srv.system.accountAdmin.unlock(DEMO_CITIZEN.pid, { operator: 'ops.test', reason: 'demo: account enabled' });
    expect(person.status).toBe('active');
  });

  it('refuses a pushed SET that is not dinhdanh\'s, with RFC 8935\'s error body, and ends nothing', async () => {
    const res = await fetch(`${national}/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: 'eyJhbGciOiJub25lIn0.e30.' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { err: string }).err).toBe('authentication_failed');
    const wrongType = await fetch(`${national}/ssf/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(wrongType.status).toBe(400);
  });

  it('refuses to run in production', async () => {
    await expect(startDemo({ ...srv.system, config: { ...srv.system.config, env: 'production' } }, { ports: [0, 0] })).rejects.toThrow(DemoError);
    await expect(startDemo({ ...srv.system, config: { ...srv.system.config, env: 'production' } }, { ports: [0, 0] })).rejects.toThrow(/development only/);
  });

  it('gives the demo citizen a new password at every start (the old one stops working) and reports a busy port', async () => {
    const old = password();
    const next = await startDemo(srv.system, { ports: [0, 0] });
    try {
      expect(next.citizen.password).toBeTruthy();
      expect(next.citizen.password).not.toBe(old);
      const person = (await srv.system.store.persons.findByPid(DEMO_CITIZEN.pid))!;
      expect(await srv.system.hasher.verify(person.passwordHash, next.citizen.password!)).toBe(true);
      expect(await srv.system.hasher.verify(person.passwordHash, old)).toBe(false);
      const busy = Number(new URL(next.urls[0]!).port);
      await expect(startDemo(srv.system, { ports: [busy, 0] })).rejects.toThrow(`port ${busy} is already in use`);
    } finally {
      await next.close();
    }
  });
});
