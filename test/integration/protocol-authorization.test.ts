/**
 * Protocol tests, part 1: discovery, the JWKS and the authorization endpoint (SECURITY.md #1, #2,
 * #4–#11, #14), over real HTTP. openid-client plays the portal where a portal would use it; hand-built
 * URLs send what a real RP library refuses to send.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, formAction, hiddenField } from '../helpers/browser.js';
import { discover, redeem, signIn } from '../helpers/rp.js';
import {
  endpoints,
  expectErrorPage,
  expectErrorRedirect,
  expectNoCredentials,
  pkce,
  rawAuthRequest,
  redirectParams,
  signInForCode,
  untilSecondAfter,
  type Endpoints,
} from './protocol-support.js';

let srv: TestServer;
let ep: Endpoints;
beforeAll(async () => {
  srv = await startTestServer();
  ep = await endpoints(srv.issuer);
});
afterAll(async () => { await srv.close(); });

describe('discovery (SECURITY #1)', () => {
  let meta: Record<string, unknown>;
  beforeAll(async () => {
    const res = await fetch(`${srv.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    meta = (await res.json()) as Record<string, unknown>;
  });

  it('names the issuer exactly, and openid-client accepts the document', async () => {
    expect(meta.issuer).toBe(srv.issuer);
    const portal = await srv.addPortal();
    const config = await discover(srv.issuer, portal);
    expect(config.serverMetadata().issuer).toBe(srv.issuer);
  });

  it('puts every endpoint and URI on the issuer origin', () => {
    const origin = new URL(srv.issuer).origin;
    const urls = Object.entries(meta).filter(([k]) => k.endsWith('_endpoint') || k.endsWith('_uri'));
    const names = urls.map(([k]) => k);
    expect(names).toEqual(expect.arrayContaining(['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']));
    for (const [name, value] of urls) {
      expect([name, new URL(String(value)).origin]).toEqual([name, origin]);
    }
  });

  it('advertises "none" in no *_supported list', () => {
    const lists = Object.entries(meta).filter(([k, v]) => k.endsWith('_supported') && Array.isArray(v));
    expect(lists.length).toBeGreaterThan(5);
    for (const [name, values] of lists) {
      expect([name, (values as unknown[]).map((v) => String(v).toLowerCase())]).toEqual([name, expect.not.arrayContaining(['none'])]);
    }
  });

  it('advertises the iss response parameter, S256 only and the code response type only', () => {
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.response_types_supported).toEqual(['code']);
  });

  it('offers no HMAC (HS*) algorithm in any *_alg_values_supported list', () => {
    const lists = Object.entries(meta).filter(([k, v]) => k.endsWith('_alg_values_supported') && Array.isArray(v));
    expect(lists.map(([k]) => k)).toEqual(expect.arrayContaining(['id_token_signing_alg_values_supported']));
    for (const [name, values] of lists) {
      expect([name, (values as string[]).filter((v) => /^HS/i.test(v))]).toEqual([name, []]);
    }
  });
});

describe('JWKS (SECURITY #2)', () => {
  let keys: Array<Record<string, unknown>>;
  beforeAll(async () => {
    const res = await fetch(ep.jwks);
    expect(res.status).toBe(200);
    keys = ((await res.json()) as { keys: Array<Record<string, unknown>> }).keys;
  });

  it('publishes public members only', () => {
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) expect([key.kid, member, key[member]]).toEqual([key.kid, member, undefined]);
      expect(['RSA', 'EC', 'OKP']).toContain(key.kty);
    }
  });

  it('gives every key a unique kid', () => {
    const kids = keys.map((k) => k.kid);
    for (const kid of kids) expect(typeof kid === 'string' && kid.length > 0).toBe(true);
    expect(new Set(kids).size).toBe(kids.length);
  });

  it('holds an RS256 key and an ES256 (P-256) key', () => {
    expect(keys).toEqual(expect.arrayContaining([
      expect.objectContaining({ kty: 'RSA', alg: 'RS256' }),
      expect.objectContaining({ kty: 'EC', crv: 'P-256', alg: 'ES256' }),
    ]));
    for (const key of keys) if (key.use !== undefined) expect(key.use).toBe('sig');
  });
});

describe('authorization endpoint', () => {
  let person: { pid: string; password: string };
  beforeAll(async () => { person = await srv.addPerson(); });

  describe('response types (SECURITY #4)', () => {
    // A browser that already has a session: any request the provider accepted would come straight
    // back with a code or token, so "no credential" is a real check.
    let browser: Browser;
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    beforeAll(async () => {
      portal = await srv.addPortal();
      browser = (await signInForCode(srv.issuer, portal, person)).browser;
    });

    it.each([
      ['absent', undefined],
      ['token', 'token'],
      ['id_token', 'id_token'],
      ['code id_token', 'code id_token'],
      ['code token', 'code token'],
      ['id_token token', 'id_token token'],
      ['code id_token token', 'code id_token token'],
      ['none', 'none'],
    ])('response_type %s → an error, never a code or token', async (_label, responseType) => {
      const req = await rawAuthRequest(ep.authorization, portal, { response_type: responseType });
      const res = await browser.get(req.url.href);
      expectNoCredentials(res);
      if (res.location) {
        const params = redirectParams(res.location);
        expect(params.get('error')).toMatch(/^(invalid_request|unsupported_response_type)$/);
        expect(params.get('state')).toBe(req.state);
      } else {
        expectErrorPage(res);
      }
    });

    it('control: response_type=code with the same session → a code', async () => {
      const req = await rawAuthRequest(ep.authorization, portal);
      const res = await browser.get(req.url.href);
      expect(redirectParams(res.location!).get('code')).toEqual(expect.any(String));
    });

    it('an unsigned (alg none) request object → refused, never a code ("none" is not accepted in practice either)', async () => {
      const inner = await rawAuthRequest(ep.authorization, portal);
      const now = Math.floor(Date.now() / 1000);
      const claims = { ...Object.fromEntries(inner.url.searchParams), iss: portal.client_id, aud: srv.issuer, iat: now, nbf: now, exp: now + 30 };
      const jwt = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
      const url = new URL(ep.authorization);
      for (const k of ['client_id', 'response_type', 'scope', 'redirect_uri', 'state']) url.searchParams.set(k, inner.url.searchParams.get(k)!);
      url.searchParams.set('request', jwt);
      const res = await browser.get(url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_request_object', inner, srv.issuer);
    });
  });

  describe('redirect_uri compared byte for byte (SECURITY #5)', () => {
    const REGISTERED = 'https://dvc.example.gov.vn/callback';
    const WITH_QUERY = 'https://hoso.example.gov.vn/cb?lang=vi';
    let plain: Awaited<ReturnType<TestServer['addPortal']>>;
    let withQuery: Awaited<ReturnType<TestServer['addPortal']>>;
    let loopback: Awaited<ReturnType<TestServer['addPortal']>>;
    beforeAll(async () => {
      plain = await srv.addPortal({ redirectUris: [REGISTERED] });
      withQuery = await srv.addPortal({ redirectUris: [WITH_QUERY] });
      loopback = await srv.addPortal();
    });

    it('accepts the registered value itself (control)', async () => {
      const req = await rawAuthRequest(ep.authorization, plain);
      const res = await new Browser(srv.issuer).get(req.url.href);
      expect(res.status).toBe(200);
      expect(res.text).toContain('name="identifier"');
    });

    const cases: Array<[string, 'plain' | 'withQuery' | 'loopback', (registered: string) => string]> = [
      ['extra query', 'plain', (r) => `${r}?next=https://evil.example`],
      ['changed query', 'withQuery', (r) => r.replace('lang=vi', 'lang=en')],
      ['extra query parameter after the registered one', 'withQuery', (r) => `${r}&x=1`],
      ['registered query removed', 'withQuery', (r) => r.replace(/\?.*$/, '')],
      ['fragment', 'plain', (r) => `${r}#frag`],
      ['empty fragment', 'plain', (r) => `${r}#`],
      ['trailing slash', 'plain', (r) => `${r}/`],
      ['path case', 'plain', (r) => r.replace('/callback', '/Callback')],
      ['host case', 'plain', (r) => r.replace('dvc.', 'DVC.')],
      ['dot segment /../ before the path', 'plain', (r) => r.replace('/callback', '/x/../callback')],
      ['dot segment /../ after the path', 'plain', (r) => `${r}/../evil`],
      ['encoded path', 'plain', (r) => r.replace('/callback', '/%63allback')],
      ['explicit default port', 'plain', (r) => r.replace('.vn/', '.vn:443/')],
      ['user@host', 'plain', (r) => r.replace('https://', 'https://attacker@')],
      ['host@attacker', 'plain', (r) => r.replace('.gov.vn/', '.gov.vn@evil.example/')],
      ['https → http', 'plain', (r) => r.replace('https://', 'http://')],
      ['http → https (loopback portal)', 'loopback', (r) => r.replace('http://', 'https://')],
      ['sibling subdomain', 'plain', (r) => r.replace('dvc.', 'dvc-evil.')],
      ['sub-subdomain', 'plain', (r) => r.replace('dvc.', 'evil.dvc.')],
      ['parent domain', 'plain', (r) => r.replace('dvc.', '')],
      ['another loopback port', 'loopback', (r) => r.replace(/:(\d+)\//, (_m, p: string) => `:${Number(p) + 1000}/`)],
    ];

    it.each(cases)('%s → HTML error page, status 400, no redirect', async (_label, which, mutate) => {
      const portal = { plain, withQuery, loopback }[which];
      const redirectUri = mutate(portal.redirect_uri);
      expect(redirectUri).not.toBe(portal.redirect_uri);
      const req = await rawAuthRequest(ep.authorization, portal, { redirect_uri: redirectUri });
      const res = await new Browser(srv.issuer).request(req.url.href);
      expectErrorPage(res, 'invalid_redirect_uri');
    });

    it('unknown client_id → HTML error page, no redirect', async () => {
      const req = await rawAuthRequest(ep.authorization, { ...plain, client_id: 'portal-doesnotexist' });
      const res = await new Browser(srv.issuer).request(req.url.href);
      expectErrorPage(res);
    });
  });

  describe('redirect_uri omitted (SECURITY #6)', () => {
    it('a portal with two registered redirect URIs and none sent → error page, no redirect', async () => {
      const portal = await srv.addPortal({ redirectUris: ['https://mot.example.gov.vn/cb', 'https://mot.example.gov.vn/cb2'] });
      const req = await rawAuthRequest(ep.authorization, portal, { redirect_uri: undefined });
      expectErrorPage(await new Browser(srv.issuer).request(req.url.href));
    });

    it('a portal with one registered redirect URI and none sent → error page too (omission not allowed)', async () => {
      const portal = await srv.addPortal({ redirectUris: ['https://hai.example.gov.vn/cb'] });
      const req = await rawAuthRequest(ep.authorization, portal, { redirect_uri: undefined });
      expectErrorPage(await new Browser(srv.issuer).request(req.url.href));
    });
  });

  describe('tolerated parameters (SECURITY #7)', () => {
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    beforeAll(async () => { portal = await srv.addPortal(); });

    it.each<[string, Record<string, string>]>([
      ['reordered scopes', { scope: 'email profile openid' }],
      ['unknown parameters', { foo: 'bar', 'x-trace': '1', ui: 'dark' }],
      ['display=page', { display: 'page' }],
      ['display=popup', { display: 'popup' }],
      ['ui_locales', { ui_locales: 'en vi' }],
      ['login_hint', { login_hint: '001090999999' }],
      ['all together', { scope: 'profile openid', foo: 'bar', display: 'page', ui_locales: 'en', login_hint: 'x' }],
    ])('%s → login page, then a code that redeems', async (_label, extra) => {
      const { config, req, callback } = await signInForCode(srv.issuer, portal, person, extra);
      expect(new URL(callback).href.startsWith(`${portal.redirect_uri}?`)).toBe(true);
      const tokens = await redeem(config, req, callback);
      expect(tokens.claims()!.sub).toEqual(expect.any(String));
    });
  });

  describe('error redirects (SECURITY #8)', () => {
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    beforeAll(async () => { portal = await srv.addPortal(); });

    it('a scope the portal may not ask for, on a valid redirect_uri → invalid_scope with state and iss', async () => {
      const req = await rawAuthRequest(ep.authorization, portal, { scope: 'openid national_id' });
      const res = await new Browser(srv.issuer).request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_scope', req, srv.issuer);
    });

    it('a missing PKCE challenge on a valid redirect_uri → invalid_request with state and iss', async () => {
      const req = await rawAuthRequest(ep.authorization, portal, { code_challenge: undefined, code_challenge_method: undefined });
      const res = await new Browser(srv.issuer).request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_request', req, srv.issuer);
    });

    it('an unrecognised scope is ignored (RFC 6749 §3.3), never granted', async () => {
      const { config, req, callback } = await signInForCode(srv.issuer, portal, person, { scope: 'openid payroll' });
      const tokens = await redeem(config, req, callback);
      expect(String(tokens.scope ?? '').split(' ')).not.toContain('payroll');
    });

    it('prompt=none without a session → login_required with state and iss', async () => {
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none' });
      const res = await new Browser(srv.issuer).request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'login_required', req, srv.issuer);
    });

    it('openid-client sees the error as an authorization error, not a code', async () => {
      const config = await discover(srv.issuer, portal);
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none' });
      const res = await new Browser(srv.issuer).request(req.url.href);
      const { verifier } = await pkce();
      await expect(oidc.authorizationCodeGrant(config, new URL(res.location!), { pkceCodeVerifier: verifier, expectedState: req.state }))
        .rejects.toMatchObject({ error: 'login_required' });
    });
  });

  describe('prompt (SECURITY #9, #10)', () => {
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    beforeAll(async () => { portal = await srv.addPortal(); });

    it('prompt=none with a session → a silent code, same sub and auth_time', async () => {
      const first = await signInForCode(srv.issuer, portal, person);
      const firstClaims = (await redeem(first.config, first.req, first.callback)).claims()!;

      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none' });
      const res = await first.browser.request(req.url.href);
      expect(res.status).toBe(303);
      const params = redirectParams(res.location!);
      expect(params.get('error')).toBeNull();
      expect(params.get('code')).toEqual(expect.any(String));
      expect(params.get('state')).toBe(req.state);
      expect(params.get('iss')).toBe(srv.issuer);
      const second = (await redeem(first.config, req, res.location!)).claims()!;
      expect(second.sub).toBe(firstClaims.sub);
      expect(second.auth_time).toBe(firstClaims.auth_time);
    });

    it('prompt=login with a session → the login page, then a newer auth_time for the same sub', async () => {
      const first = await signInForCode(srv.issuer, portal, person);
      const firstClaims = (await redeem(first.config, first.req, first.callback)).claims()!;
      expect(firstClaims.auth_time).toEqual(expect.any(Number));

      // auth_time has one-second resolution: let the clock pass into the next second (≤ 1 s).
      await untilSecondAfter(firstClaims.auth_time!);

      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'login' });
      const page = await first.browser.get(req.url.href);
      expect(page.status).toBe(200);
      expect(page.text).toContain('name="identifier"');
      expect(page.text).toContain('name="password"');

      const done = await signIn(first.browser, req, person);
      expect(done.status).toBe(303);
      const again = (await redeem(first.config, req, done.location!)).claims()!;
      expect(again.sub).toBe(firstClaims.sub);
      expect(again.auth_time).toBeGreaterThan(firstClaims.auth_time!);
    });

    it('prompt=login: the login form on that page is a real, fresh interaction (password required again)', async () => {
      const first = await signInForCode(srv.issuer, portal, person);
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'login' });
      const page = await first.browser.get(req.url.href);
      expect(page.status).toBe(200);
      const res = await first.browser.post(new URL(formAction(page.text), srv.issuer).href, {
        _csrf: hiddenField(page.text, '_csrf'),
        identifier: person.pid,
        password: 'not the password at all 123',
      });
      // Refused: the login form again with an alert, no redirect anywhere (the status code of a
      // failed sign-in is the pages' business, not the protocol's).
      expect(res.location).toBeNull();
      expect(res.text).toContain('name="password"');
      expect(alertText(res.text)).toEqual(expect.stringMatching(/\S/));
      expectNoCredentials(res);
    });
  });

  describe('max_age (SECURITY #10)', () => {
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    beforeAll(async () => { portal = await srv.addPortal(); });

    it('max_age=10000 with a fresh session → a silent code with the same auth_time', async () => {
      const first = await signInForCode(srv.issuer, portal, person);
      const firstClaims = (await redeem(first.config, first.req, first.callback)).claims()!;
      const req = await rawAuthRequest(ep.authorization, portal, { max_age: '10000' });
      const res = await first.browser.request(req.url.href);
      expect(res.status).toBe(303);
      expect(redirectParams(res.location!).get('code')).toEqual(expect.any(String));
      const again = (await redeem(first.config, req, res.location!)).claims()!;
      expect(again.auth_time).toBe(firstClaims.auth_time);
    });

    it('max_age=0 with a session → the login page (re-authentication), no silent code', async () => {
      const first = await signInForCode(srv.issuer, portal, person);
      const req = await rawAuthRequest(ep.authorization, portal, { max_age: '0' });
      const page = await first.browser.get(req.url.href);
      expectNoCredentials(page);
      expect(page.status).toBe(200);
      expect(page.text).toContain('name="identifier"');
    });
  });

  describe('id_token_hint (SECURITY #11)', () => {
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    let mine: { browser: Browser; idToken: string; sub: string };
    let theirs: string;
    beforeAll(async () => {
      portal = await srv.addPortal();
      const a = await signInForCode(srv.issuer, portal, person);
      const aTokens = await redeem(a.config, a.req, a.callback);
      mine = { browser: a.browser, idToken: aTokens.id_token!, sub: aTokens.claims()!.sub };
      const someoneElse = await srv.addPerson();
      const b = await signInForCode(srv.issuer, portal, someoneElse);
      theirs = (await redeem(b.config, b.req, b.callback)).id_token!;
    });

    it('our own ID token as hint, prompt=none → a silent code for the same sub', async () => {
      const config = await discover(srv.issuer, portal);
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none', id_token_hint: mine.idToken });
      const res = await mine.browser.request(req.url.href);
      expect(redirectParams(res.location!).get('code')).toEqual(expect.any(String));
      expect((await redeem(config, req, res.location!)).claims()!.sub).toBe(mine.sub);
    });

    it('another person\'s ID token as hint, prompt=none → login_required, no code', async () => {
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none', id_token_hint: theirs });
      const res = await mine.browser.request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'login_required', req, srv.issuer);
    });

    it('an unsigned (alg none) copy of our own ID token as hint → invalid_request, no code', async () => {
      const payload = mine.idToken.split('.')[1]!;
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none', id_token_hint: unsigned });
      const res = await mine.browser.request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_request', req, srv.issuer);
    });

    it('a hint signed by a foreign key (same claims, same kid) → invalid_request, no code', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const claims = decodeJwt(mine.idToken);
      const kid = decodeProtectedHeader(mine.idToken).kid;
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey);
      const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none', id_token_hint: forged });
      const res = await mine.browser.request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_request', req, srv.issuer);
    });
  });

  describe('PKCE at the authorization endpoint (SECURITY #14)', () => {
    let portal: Awaited<ReturnType<TestServer['addPortal']>>;
    let browser: Browser;
    beforeAll(async () => {
      portal = await srv.addPortal();
      browser = (await signInForCode(srv.issuer, portal, person)).browser;
    });

    it('control: a well-formed S256 challenge with the session → a code', async () => {
      const req = await rawAuthRequest(ep.authorization, portal);
      const res = await browser.request(req.url.href);
      expect(redirectParams(res.location!).get('code')).toEqual(expect.any(String));
    });

    const goodChallenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
    it.each<[string, Record<string, string | undefined>]>([
      ['no code_challenge and no method', { code_challenge: undefined, code_challenge_method: undefined }],
      ['no code_challenge, method S256', { code_challenge: undefined }],
      ['code_challenge_method=plain', { code_challenge: goodChallenge, code_challenge_method: 'plain' }],
      ['challenge without a method (defaults to plain)', { code_challenge: goodChallenge, code_challenge_method: undefined }],
      ['unknown method', { code_challenge: goodChallenge, code_challenge_method: 'S512' }],
      ['challenge too short', { code_challenge: 'abc' }],
      ['challenge of 42 characters', { code_challenge: goodChallenge.slice(0, 42) }],
      ['challenge too long', { code_challenge: 'a'.repeat(129) }],
      ['challenge with characters outside base64url', { code_challenge: `${goodChallenge.slice(0, 40)}+/=` }],
    ])('%s → refused, no code', async (_label, params) => {
      const req = await rawAuthRequest(ep.authorization, portal, params);
      const res = await browser.request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_request', req, srv.issuer);
    });
  });

  describe('national_id scope', () => {
    it('asked by a portal not approved for it → invalid_scope error redirect with state and iss', async () => {
      const portal = await srv.addPortal();
      const req = await rawAuthRequest(ep.authorization, portal, { scope: 'openid national_id' });
      const res = await new Browser(srv.issuer).request(req.url.href);
      expectErrorRedirect(res, portal.redirect_uri, 'invalid_scope', req, srv.issuer);
    });
  });
});
