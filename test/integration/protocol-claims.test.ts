/**
 * Protocol tests, part 3: what the tokens say (SECURITY.md #12, #13, #20 and PRODUCT.md's claims):
 * ID token claims and signature, pairwise subjects, authentication levels, the claims parameter and
 * the national_id claim, over real HTTP with openid-client as the portal.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, decodeEntities, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';
import {
  endpoints,
  expectErrorRedirect,
  expectNoCredentials,
  rawAuthRequest,
  redirectParams,
  signInForCode,
  userinfoRequest,
  type Endpoints,
} from './protocol-support.js';

type Portal = Awaited<ReturnType<TestServer['addPortal']>>;

const LOW = 'urn:dinhdanh:loa:low';
const HIGH = 'urn:dinhdanh:loa:high';
const SUBSTANTIAL = 'urn:dinhdanh:loa:substantial';

let srv: TestServer;
let ep: Endpoints;
let person: { id: string; pid: string; password: string };
beforeAll(async () => {
  srv = await startTestServer();
  ep = await endpoints(srv.issuer);
  person = await srv.addPerson();
});
afterAll(async () => { await srv.close(); });

/** Signs in on a fresh browser and redeems the code with openid-client (which validates the ID token). */
async function tokensFor(portal: Portal, who: { pid: string; password: string } = person, extra: Record<string, string> = {}) {
  const flow = await signInForCode(srv.issuer, portal, who, extra);
  const tokens = await redeem(flow.config, flow.req, flow.callback);
  return { flow, tokens, claims: tokens.claims()! };
}

describe('ID token (SECURITY #20)', () => {
  let portal: Portal;
  let jwks: JSONWebKeySet;
  beforeAll(async () => {
    portal = await srv.addPortal();
    jwks = (await (await fetch(ep.jwks)).json()) as JSONWebKeySet;
  });

  it('carries iss, aud, a 10-minute life, the nonce, acr low, amr pwd and auth_time', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { flow, claims } = await tokensFor(portal, person, { scope: 'openid profile' });
    expect(claims.iss).toBe(srv.issuer);
    expect([claims.aud].flat()).toEqual([portal.client_id]);
    expect(claims.exp - claims.iat).toBe(600);
    expect(claims.nonce).toBe(flow.req.nonce);
    expect(claims.acr).toBe(LOW);
    expect(claims.amr).toEqual(['pwd']);
    expect(typeof claims.auth_time).toBe('number');
    expect(claims.auth_time!).toBeGreaterThanOrEqual(before - 1);
    expect(claims.auth_time!).toBeLessThanOrEqual(claims.iat);
  });

  it('is signed with a key of the JWKS (kid in the JWKS, RS256 as registered) and verifies against it', async () => {
    const { tokens } = await tokensFor(portal);
    const idToken = tokens.id_token!;
    const header = decodeProtectedHeader(idToken);
    expect(header.alg).toBe('RS256');
    expect(header.kid).toEqual(expect.any(String));
    const key = jwks.keys.find((k) => k.kid === header.kid);
    expect(key).toBeDefined();
    expect(key!.kty).toBe('RSA');
    const { payload } = await jwtVerify(idToken, createLocalJWKSet(jwks), { issuer: srv.issuer, audience: portal.client_id, algorithms: ['RS256'] });
    expect(payload.sub).toBe(tokens.claims()!.sub);
  });

  it('the ID token nonce is the one of its own request (two requests, two nonces)', async () => {
    const a = await tokensFor(portal);
    const b = await tokensFor(portal);
    expect(a.claims.nonce).toBe(a.flow.req.nonce);
    expect(b.claims.nonce).toBe(b.flow.req.nonce);
    expect(a.claims.nonce).not.toBe(b.claims.nonce);
  });

  it('an ID token with a tampered signature fails verification against the JWKS (control for the check above)', async () => {
    const { tokens } = await tokensFor(portal);
    const [h, p, s] = tokens.id_token!.split('.');
    const flipped = `${h}.${p}.${s!.slice(0, -4)}${s!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    await expect(jwtVerify(flipped, createLocalJWKSet(jwks), { issuer: srv.issuer, audience: portal.client_id })).rejects.toThrow();
  });
});

describe('pairwise subjects (SECURITY #20)', () => {
  it('differ between two portals on different hosts, for the same person', async () => {
    const a = await srv.addPortal({ redirectUris: ['https://a.example.gov.vn/cb'] });
    const b = await srv.addPortal({ redirectUris: ['https://b.example.gov.vn/cb'] });
    const subA = (await tokensFor(a)).claims.sub;
    const subB = (await tokensFor(b)).claims.sub;
    expect(subA).not.toBe(subB);
  });

  it('are equal for two portals registered with the same sector', async () => {
    const c1 = await srv.addPortal({ redirectUris: ['https://c1.example.gov.vn/cb'], sector: 'mot-cua.example.gov.vn' });
    const c2 = await srv.addPortal({ redirectUris: ['https://c2.example.gov.vn/cb'], sector: 'mot-cua.example.gov.vn' });
    const other = await srv.addPortal({ redirectUris: ['https://c3.example.gov.vn/cb'], sector: 'khac.example.gov.vn' });
    const sub1 = (await tokensFor(c1)).claims.sub;
    const sub2 = (await tokensFor(c2)).claims.sub;
    const sub3 = (await tokensFor(other)).claims.sub;
    expect(sub1).toBe(sub2);
    expect(sub3).not.toBe(sub1);
  });

  it('are stable for one portal across sign-ins, match userinfo, and differ between people', async () => {
    const portal = await srv.addPortal({ redirectUris: ['https://d.example.gov.vn/cb'] });
    const someoneElse = await srv.addPerson();
    const first = await tokensFor(portal);
    const again = await tokensFor(portal);
    const other = await tokensFor(portal, someoneElse);
    expect(again.claims.sub).toBe(first.claims.sub);
    expect(other.claims.sub).not.toBe(first.claims.sub);
    const info = await oidc.fetchUserInfo(first.flow.config, first.tokens.access_token, first.claims.sub);
    expect(info.sub).toBe(first.claims.sub);
  });

  it('never contain the identification number (nor the internal account id)', async () => {
    const portals = [await srv.addPortal(), await srv.addPortal({ redirectUris: ['https://e.example.gov.vn/cb'] })];
    for (const portal of portals) {
      const { tokens, claims } = await tokensFor(portal, person, { scope: 'openid profile' });
      expect(claims.sub).not.toContain(person.pid);
      expect(claims.sub).not.toContain(person.id);
      expect(Buffer.from(claims.sub, 'base64url').toString('latin1')).not.toContain(person.pid);
      const info = await userinfoRequest(ep.userinfo, tokens.access_token);
      expect(JSON.stringify(info.body)).not.toContain(person.pid);
      expect(JSON.stringify(claims)).not.toContain(person.pid);
    }
  });
});

describe('authentication levels (SECURITY #12)', () => {
  let portal: Portal;
  beforeAll(async () => { portal = await srv.addPortal(); });

  /** Signs in with the password on a request and returns the page the browser lands on. */
  async function passwordStep(browser: Browser, url: string) {
    const page = await browser.get(url);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="identifier"');
    return browser.post(new URL(formAction(page.text), srv.issuer).href, {
      _csrf: hiddenField(page.text, '_csrf'),
      identifier: person.pid,
      password: person.password,
    });
  }

  function unmetLink(html: string): string {
    const links = [...html.matchAll(/<a href="([^"]*)"/g)].map((m) => decodeEntities(m[1]!));
    const link = links.find((l) => l.includes('/interaction/'));
    expect(link).toBeDefined();
    return new URL(link!, srv.issuer).href;
  }

  it('acr_values=high for a level-1 person → a page explaining the level, whose link ends at the portal with unmet_authentication_requirements', async () => {
    const browser = new Browser(srv.issuer);
    const config = await discover(srv.issuer, portal);
    const req = await authRequest(config, portal, { scope: 'openid', acr_values: HIGH });
    const page = await passwordStep(browser, req.url.href);
    expect(page.location).toBeNull();
    expect(page.status).toBeLessThan(300);
    // The alert names the portal that asked for more (and is not the wrong-password message).
    expect(alertText(page.text)).toContain(portal.input.name);
    expect(page.text).not.toContain('name="password"');
    expectNoCredentials(page);

    const end = await browser.get(unmetLink(page.text));
    expectErrorRedirect(end, portal.redirect_uri, 'unmet_authentication_requirements', req, srv.issuer);
  });

  it('after the unmet page, a silent (prompt=none) request for substantial still gets no code', async () => {
    const browser = new Browser(srv.issuer);
    const config = await discover(srv.issuer, portal);
    const req = await authRequest(config, portal, { scope: 'openid', acr_values: SUBSTANTIAL });
    await passwordStep(browser, req.url.href);
    const silent = await rawAuthRequest(ep.authorization, portal, { prompt: 'none', acr_values: SUBSTANTIAL });
    const res = await browser.request(silent.url.href);
    expectNoCredentials(res);
    expect(redirectParams(res.location!).get('error')).toEqual(expect.any(String));
  });

  it('a low session asked for substantial → no silent code: the password again, then enrolment of a second factor', async () => {
    const { browser } = await signInForCode(srv.issuer, portal, person);
    const req = await rawAuthRequest(ep.authorization, portal, { acr_values: SUBSTANTIAL });
    const first = await browser.get(req.url.href);
    expectNoCredentials(first);
    expect(first.status).toBe(200);
    expect(first.text).toContain('name="identifier"');
    const enrol = await passwordStep(browser, req.url.href);
    expectNoCredentials(enrol);
    expect(enrol.text).toContain('data-testid="totp-secret"');
  });

  it('a low session of a level-1 person asked for high → the unmet page straight away, never a code', async () => {
    const { browser } = await signInForCode(srv.issuer, portal, person);
    const req = await rawAuthRequest(ep.authorization, portal, { acr_values: HIGH });
    const page = await browser.get(req.url.href);
    expectNoCredentials(page);
    expect(page.text).not.toContain('name="password"');
    expect(alertText(page.text)).toContain(portal.input.name);
  });

  it('a low session asked for substantial with prompt=none → an error redirect, never a code', async () => {
    const { browser } = await signInForCode(srv.issuer, portal, person);
    const req = await rawAuthRequest(ep.authorization, portal, { prompt: 'none', acr_values: SUBSTANTIAL });
    const res = await browser.request(req.url.href);
    expectNoCredentials(res);
    const params = redirectParams(res.location!);
    expect(['login_required', 'interaction_required', 'unmet_authentication_requirements']).toContain(params.get('error'));
    expect(params.get('state')).toBe(req.state);
    expect(params.get('iss')).toBe(srv.issuer);
  });

  it('an essential acr claim for high (claims parameter) from a level-1 person → unmet too, never a code', async () => {
    const browser = new Browser(srv.issuer);
    const config = await discover(srv.issuer, portal);
    const req = await authRequest(config, portal, {
      scope: 'openid',
      claims: JSON.stringify({ id_token: { acr: { essential: true, values: [HIGH] } } }),
    });
    const page = await passwordStep(browser, req.url.href);
    expectNoCredentials(page);
    expect(alertText(page.text)).toEqual(expect.stringMatching(/\S/));
    const end = await browser.get(unmetLink(page.text));
    expectErrorRedirect(end, portal.redirect_uri, 'unmet_authentication_requirements', req, srv.issuer);
  });

  it('acr_values=low → signs in, and the ID token says low', async () => {
    const { claims } = await tokensFor(portal, person, { acr_values: LOW });
    expect(claims.acr).toBe(LOW);
    expect(claims.amr).toEqual(['pwd']);
  });

  it('acr_values="substantial low" (either will do) → signs in at low', async () => {
    const { claims } = await tokensFor(portal, person, { acr_values: `${SUBSTANTIAL} ${LOW}` });
    expect(claims.acr).toBe(LOW);
  });
});

describe('claims parameter (SECURITY #13)', () => {
  it('an essential name claim for the ID token, with scope openid profile → name in the ID token', async () => {
    const portal = await srv.addPortal();
    const { claims } = await tokensFor(portal, person, {
      scope: 'openid profile',
      claims: JSON.stringify({ id_token: { name: { essential: true } } }),
    });
    expect(claims.name).toBe('Nguyễn Văn An');
  });

  it('without the claims parameter, scope openid profile keeps name out of the ID token (control) but in userinfo', async () => {
    const portal = await srv.addPortal();
    const { tokens, claims } = await tokensFor(portal, person, { scope: 'openid profile' });
    expect(claims.name).toBeUndefined();
    const info = await userinfoRequest(ep.userinfo, tokens.access_token);
    expect(info.body.name).toBe('Nguyễn Văn An');
  });

  it('a malformed claims parameter → invalid_request error redirect, no code', async () => {
    const portal = await srv.addPortal();
    const req = await rawAuthRequest(ep.authorization, portal, { claims: '{"id_token":' });
    const res = await new Browser(srv.issuer).request(req.url.href);
    expectErrorRedirect(res, portal.redirect_uri, 'invalid_request', req, srv.issuer);
  });
});

describe('national_id claim', () => {
  const LEGAL_BASIS = 'Nghị định 59/2022/NĐ-CP, Điều 13';

  it('an approved portal asking scope openid national_id gets the identification number at userinfo', async () => {
    const approved = await srv.addPortal({ nationalId: true, legalBasis: LEGAL_BASIS });
    const { tokens, claims } = await tokensFor(approved, person, { scope: 'openid national_id' });
    expect(claims.sub).not.toContain(person.pid);
    const info = await userinfoRequest(ep.userinfo, tokens.access_token);
    expect(info.status).toBe(200);
    expect(info.body.national_id).toBe(person.pid);
  });

  it('an approved portal that does not ask for the scope does not get it', async () => {
    const approved = await srv.addPortal({ nationalId: true, legalBasis: LEGAL_BASIS });
    const { tokens, claims } = await tokensFor(approved, person, { scope: 'openid profile' });
    expect(claims.national_id).toBeUndefined();
    const info = await userinfoRequest(ep.userinfo, tokens.access_token);
    expect(info.body.name).toBe('Nguyễn Văn An');
    expect(info.body.national_id).toBeUndefined();
  });

  it('a portal not approved for it asking the scope → invalid_scope error redirect with state and iss', async () => {
    const portal = await srv.addPortal();
    const req = await rawAuthRequest(ep.authorization, portal, { scope: 'openid profile national_id' });
    const res = await new Browser(srv.issuer).request(req.url.href);
    expectErrorRedirect(res, portal.redirect_uri, 'invalid_scope', req, srv.issuer);
  });

  it('a portal not approved for it never sees it, even asking through the claims parameter', async () => {
    const portal = await srv.addPortal();
    const claimsParam = { id_token: { national_id: { essential: true } }, userinfo: { national_id: { essential: true } } };
    const browser = new Browser(srv.issuer);
    const config = await discover(srv.issuer, portal);
    const req = await authRequest(config, portal, { scope: 'openid profile', claims: JSON.stringify(claimsParam) });
    const res = await signIn(browser, req, person);
    const params = redirectParams(res.location!);
    if (params.get('code')) {
      const tokens = await redeem(config, req, res.location!);
      expect(tokens.claims()!.national_id).toBeUndefined();
      expect(JSON.stringify(tokens.claims())).not.toContain(person.pid);
      const info = await userinfoRequest(ep.userinfo, tokens.access_token);
      expect(info.status).toBe(200);
      expect(info.body.national_id).toBeUndefined();
      expect(JSON.stringify(info.body)).not.toContain(person.pid);
    } else {
      // Refusing the request outright is as good as leaving the claim out.
      expect(params.get('error')).toEqual(expect.any(String));
    }
  });
});
