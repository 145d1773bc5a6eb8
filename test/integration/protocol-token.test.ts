/**
 * Protocol tests, part 2: the token endpoint, refresh tokens and userinfo (SECURITY.md #15–#17,
 * #19, #21, #22), over real HTTP. Raw token requests (client_secret_basic) where a real RP library
 * would refuse to send what we need to send; openid-client elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { redeem } from '../helpers/rp.js';
import {
  BASE64URL_128,
  endpoints,
  signInForCode,
  tokenRequest,
  userinfoRequest,
  type Endpoints,
  type SignedIn,
} from './protocol-support.js';

type Portal = Awaited<ReturnType<TestServer['addPortal']>>;

let srv: TestServer;
let ep: Endpoints;
let person: { pid: string; password: string };
beforeAll(async () => {
  srv = await startTestServer();
  ep = await endpoints(srv.issuer);
  person = await srv.addPerson();
});
afterAll(async () => { await srv.close(); });

/** The token request a portal makes for a code it received. */
function codeFields(flow: SignedIn, portal: Portal, overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    grant_type: 'authorization_code',
    code: flow.code,
    redirect_uri: portal.redirect_uri,
    code_verifier: flow.req.verifier,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

describe('authorization code (SECURITY #15, #16, #17, #19)', () => {
  let portal: Portal;
  let other: Portal;
  beforeAll(async () => {
    portal = await srv.addPortal();
    other = await srv.addPortal();
  });

  it('works once: a second use → invalid_grant, and the access token from the first use stops working', async () => {
    const flow = await signInForCode(srv.issuer, portal, person, { scope: 'openid profile' });
    const first = await tokenRequest(ep.token, portal, codeFields(flow, portal));
    expect(first.status).toBe(200);
    const accessToken = String(first.body.access_token);
    expect((await userinfoRequest(ep.userinfo, accessToken)).status).toBe(200);

    const second = await tokenRequest(ep.token, portal, codeFields(flow, portal));
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect(second.body.access_token).toBeUndefined();

    const after = await userinfoRequest(ep.userinfo, accessToken);
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
  });

  it('twenty parallel redemptions of one code → exactly one success, the rest invalid_grant', async () => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const results = await Promise.all(Array.from({ length: 20 }, () => tokenRequest(ep.token, portal, codeFields(flow, portal))));
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(ok[0]!.body.access_token).toEqual(expect.any(String));
    const refused = results.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(19);
    for (const r of refused) {
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_grant');
      expect(r.body.access_token).toBeUndefined();
    }
  });

  it('redeemed by another portal (with its own valid credentials) → invalid_grant', async () => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const res = await tokenRequest(ep.token, other, codeFields(flow, portal, { redirect_uri: portal.redirect_uri }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.access_token).toBeUndefined();
  });

  it('redeemed with another registered redirect_uri of the same portal → invalid_grant', async () => {
    const two = await srv.addPortal({ redirectUris: ['https://ba.example.gov.vn/cb', 'https://ba.example.gov.vn/cb2'] });
    const flow = await signInForCode(srv.issuer, two, person);
    expect(flow.callback.startsWith('https://ba.example.gov.vn/cb?')).toBe(true);
    const res = await tokenRequest(ep.token, two, codeFields(flow, two, { redirect_uri: 'https://ba.example.gov.vn/cb2' }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it.each([
    ['an unregistered redirect_uri', (r: string) => `${r}/`],
    ['no redirect_uri', () => undefined],
  ])('redeemed with %s → refused', async (_label, mutate) => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const res = await tokenRequest(ep.token, portal, codeFields(flow, portal, { redirect_uri: mutate(portal.redirect_uri) }));
    expect(res.status).toBe(400);
    expect(['invalid_grant', 'invalid_request']).toContain(res.body.error);
    expect(res.body.access_token).toBeUndefined();
  });

  it('lives 60 seconds: the stored AuthorizationCode has exp - iat = 60', async () => {
    // oidc-provider reads its own clock (not the harness's injected `now`), so the 60 s limit is
    // checked on the record it stores rather than by waiting a minute.
    const flow = await signInForCode(srv.issuer, portal, person);
    const record = await srv.system.store.oidc.find('AuthorizationCode', flow.code);
    expect(record).toBeDefined();
    expect(typeof record!.iat).toBe('number');
    expect(Number(record!.exp) - Number(record!.iat)).toBe(60);
  });

  it('past its exp → invalid_grant (the stored record aged by 61 s instead of sleeping)', async () => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const record = (await srv.system.store.oidc.find('AuthorizationCode', flow.code))!;
    const now = Math.floor(Date.now() / 1000);
    // The row itself stays readable for a while (the store's own expiry is not what is tested here):
    // only the payload's iat/exp say the code was issued 61 s ago.
    await srv.system.store.oidc.upsert('AuthorizationCode', flow.code, { ...record, iat: now - 61, exp: now - 1 }, 60);
    const res = await tokenRequest(ep.token, portal, codeFields(flow, portal));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.access_token).toBeUndefined();

    // Control: the same code with its real iat/exp put back redeems, so age alone was the reason.
    await srv.system.store.oidc.upsert('AuthorizationCode', flow.code, record, 60);
    expect((await tokenRequest(ep.token, portal, codeFields(flow, portal))).status).toBe(200);
  });

  it.each([
    ['a wrong code_verifier', () => oidc.randomPKCECodeVerifier()],
    ['no code_verifier', () => undefined],
  ])('PKCE: %s → invalid_grant', async (_label, verifier) => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const res = await tokenRequest(ep.token, portal, codeFields(flow, portal, { code_verifier: verifier() }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.access_token).toBeUndefined();
  });

  it('PKCE: the challenge itself sent as the verifier → invalid_grant', async () => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const challenge = flow.req.url.searchParams.get('code_challenge')!;
    const res = await tokenRequest(ep.token, portal, codeFields(flow, portal, { code_verifier: challenge }));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('a wrong client secret → 401 invalid_client, and the code is not spent', async () => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const bad = await tokenRequest(ep.token, { client_id: portal.client_id, client_secret: `${portal.client_secret}x` }, codeFields(flow, portal));
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    expect(bad.body.access_token).toBeUndefined();
    // Control: the same request with the right secret succeeds.
    const good = await tokenRequest(ep.token, portal, codeFields(flow, portal));
    expect(good.status).toBe(200);
  });

  it.each([
    ['another portal\'s secret under this client_id', (p: Portal, o: Portal) => ({ client_id: p.client_id, client_secret: o.client_secret })],
    ['an unknown client_id', (p: Portal) => ({ client_id: 'portal-unknown', client_secret: p.client_secret })],
  ])('%s → 401 invalid_client', async (_label, auth) => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const res = await tokenRequest(ep.token, auth(portal, other), codeFields(flow, portal));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.body.access_token).toBeUndefined();
  });

  it.each([
    ['no client authentication at all', () => null],
    ['an empty secret', (p: Portal) => ({ client_id: p.client_id, client_secret: '' })],
  ])('%s → refused, no token', async (_label, auth) => {
    // oidc-provider answers invalid_request for a malformed or absent authentication (it cannot
    // even tell which client is calling); either code is a refusal.
    const flow = await signInForCode(srv.issuer, portal, person);
    const res = await tokenRequest(ep.token, auth(portal), codeFields(flow, portal));
    expect([400, 401]).toContain(res.status);
    expect(['invalid_client', 'invalid_request']).toContain(res.body.error);
    expect(res.body.access_token).toBeUndefined();
  });

  it('token responses (success and error) carry Cache-Control: no-store', async () => {
    const flow = await signInForCode(srv.issuer, portal, person);
    const ok = await tokenRequest(ep.token, portal, codeFields(flow, portal));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toMatch(/\bno-store\b/);
    const replay = await tokenRequest(ep.token, portal, codeFields(flow, portal));
    expect(replay.status).toBe(400);
    expect(replay.headers.get('cache-control')).toMatch(/\bno-store\b/);
  });

  it('codes and access tokens carry at least 128 bits (≥ 22 base64url characters), all different', async () => {
    const codes: string[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const flow = await signInForCode(srv.issuer, portal, person);
      codes.push(flow.code);
      const res = await tokenRequest(ep.token, portal, codeFields(flow, portal));
      expect(res.status).toBe(200);
      expect(res.body.token_type).toMatch(/^Bearer$/i);
      tokens.push(String(res.body.access_token));
    }
    for (const v of [...codes, ...tokens]) expect(v).toMatch(BASE64URL_128);
    expect(new Set([...codes, ...tokens]).size).toBe(6);
  });
});

describe('refresh tokens (SECURITY #21)', () => {
  let portal: Portal;
  let other: Portal;
  beforeAll(async () => {
    portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
    other = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
  });

  async function start(p: Portal) {
    const flow = await signInForCode(srv.issuer, p, person, { scope: 'openid profile' });
    const tokens = await redeem(flow.config, flow.req, flow.callback);
    return { flow, tokens };
  }

  it('a portal allowed refresh_token gets one (≥ 128 bits) with the code', async () => {
    const { tokens } = await start(portal);
    expect(tokens.refresh_token).toMatch(BASE64URL_128);
  });

  it('a portal without the refresh_token grant gets none, and cannot use the grant', async () => {
    const plain = await srv.addPortal();
    const { tokens } = await start(plain);
    expect(tokens.refresh_token).toBeUndefined();
    // Not even when it asks for offline access.
    const offline = await signInForCode(srv.issuer, plain, person, { scope: 'openid offline_access', prompt: 'consent' });
    const offlineTokens = await redeem(offline.config, offline.req, offline.callback);
    expect(offlineTokens.refresh_token).toBeUndefined();
    const { tokens: t2 } = await start(portal);
    const res = await tokenRequest(ep.token, plain, { grant_type: 'refresh_token', refresh_token: t2.refresh_token! });
    expect(res.status).toBe(400);
    // RFC 6749 §5.2 names unauthorized_client; oidc-provider answers invalid_request ("requested
    // grant type is not allowed for this client"). What matters is the refusal.
    expect(['unauthorized_client', 'invalid_grant', 'invalid_request']).toContain(res.body.error);
    expect(res.body.access_token).toBeUndefined();
  });

  it('rotates on use; the refreshed ID token keeps sub, aud and auth_time', async () => {
    const { flow, tokens } = await start(portal);
    const claims = tokens.claims()!;
    const refreshed = await oidc.refreshTokenGrant(flow.config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toMatch(BASE64URL_128);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    const idToken = refreshed.claims();
    expect(idToken).toBeDefined();
    expect(idToken!.sub).toBe(claims.sub);
    expect(idToken!.aud).toBe(claims.aud);
    expect(idToken!.auth_time).toBe(claims.auth_time);
    expect(idToken!.acr).toBe(claims.acr);
    const info = await oidc.fetchUserInfo(flow.config, refreshed.access_token, claims.sub);
    expect(info.sub).toBe(claims.sub);
  });

  it('replaying a rotated refresh token → invalid_grant, and the whole grant is revoked', async () => {
    const { tokens } = await start(portal);
    const old = tokens.refresh_token!;
    const rotated = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: old });
    expect(rotated.status).toBe(200);
    const newest = String(rotated.body.refresh_token);
    const newestAccess = String(rotated.body.access_token);
    expect(newest).not.toBe(old);
    expect((await userinfoRequest(ep.userinfo, newestAccess)).status).toBe(200);

    const replay = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: old });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(replay.body.access_token).toBeUndefined();

    // Everything issued under the grant is gone: the newest refresh token, its access token and
    // the access token from the code.
    const afterNewest = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: newest });
    expect(afterNewest.status).toBe(400);
    expect(afterNewest.body.error).toBe('invalid_grant');
    expect((await userinfoRequest(ep.userinfo, newestAccess)).status).toBe(401);
    expect((await userinfoRequest(ep.userinfo, tokens.access_token)).status).toBe(401);
  });

  it('another portal\'s refresh token → invalid_grant, and it still works for its own portal', async () => {
    const { tokens } = await start(portal);
    const stolen = await tokenRequest(ep.token, other, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(stolen.status).toBe(400);
    expect(stolen.body.error).toBe('invalid_grant');
    expect(stolen.body.access_token).toBeUndefined();
    const own = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(own.status).toBe(200);
  });

  it('cannot widen the scope → invalid_scope', async () => {
    const { tokens } = await start(portal);
    const res = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, scope: 'openid profile email' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_scope');
    expect(res.body.access_token).toBeUndefined();
  });

  it('keeps an absolute lifetime: 12 h from the first issue, not extended by rotation', async () => {
    const { tokens } = await start(portal);
    const first = (await srv.system.store.oidc.find('RefreshToken', tokens.refresh_token!))!;
    expect(first).toBeDefined();
    const life = Number(first.exp) - Number(first.iat);
    expect(life).toBeGreaterThanOrEqual(12 * 3600 - 1);
    expect(life).toBeLessThanOrEqual(12 * 3600);
    const rotated = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(rotated.status).toBe(200);
    const next = (await srv.system.store.oidc.find('RefreshToken', String(rotated.body.refresh_token)))!;
    expect(next).toBeDefined();
    expect(Number(next.exp)).toBeLessThanOrEqual(Number(first.exp));
    expect(Number(next.exp)).toBeGreaterThanOrEqual(Number(first.exp) - 1);
  });

  it('refresh responses carry Cache-Control: no-store', async () => {
    const { tokens } = await start(portal);
    const res = await tokenRequest(ep.token, portal, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/\bno-store\b/);
    const idToken = decodeJwt(String(res.body.id_token));
    expect(idToken.iss).toBe(srv.issuer);
  });
});

describe('userinfo (SECURITY #22)', () => {
  let portal: Portal;
  beforeAll(async () => { portal = await srv.addPortal(); });

  it('without a token → 401 with WWW-Authenticate', async () => {
    const res = await userinfoRequest(ep.userinfo);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(res.body.sub).toBeUndefined();
  });

  it.each([
    ['garbage', 'garbage'],
    ['a well-formed but unknown token', 'A'.repeat(43)],
    ['a JWT-looking string', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'],
  ])('with %s → 401 with WWW-Authenticate error="invalid_token"', async (_label, token) => {
    const res = await userinfoRequest(ep.userinfo, token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b.*error="invalid_token"/);
    expect(res.body.sub).toBeUndefined();
  });

  it('with the portal\'s client secret instead of a token → 401', async () => {
    const res = await userinfoRequest(ep.userinfo, portal.client_secret);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
  });

  it('an access token lives 10 minutes, and past its exp → 401 with WWW-Authenticate', async () => {
    const flow = await signInForCode(srv.issuer, portal, person, { scope: 'openid profile' });
    const tokens = await redeem(flow.config, flow.req, flow.callback);
    expect(tokens.expires_in).toBeGreaterThan(590);
    expect(tokens.expires_in).toBeLessThanOrEqual(600);
    const record = (await srv.system.store.oidc.find('AccessToken', tokens.access_token))!;
    expect(record).toBeDefined();
    expect(Number(record.exp) - Number(record.iat)).toBe(600);
    expect((await userinfoRequest(ep.userinfo, tokens.access_token)).status).toBe(200);

    // Aged in the store instead of waiting ten minutes, as it would be one second past its expiry:
    // payload exp in the past and the row's own expiry (set from expiresIn) too.
    const now = Math.floor(Date.now() / 1000);
    await srv.system.store.oidc.upsert('AccessToken', tokens.access_token, { ...record, iat: now - 601, exp: now - 1 }, -1);
    const res = await userinfoRequest(ep.userinfo, tokens.access_token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b.*error="invalid_token"/);
    expect(res.body.sub).toBeUndefined();
  });

  it('scope openid only → sub and no profile or email claims', async () => {
    const flow = await signInForCode(srv.issuer, portal, person, { scope: 'openid' });
    const tokens = await redeem(flow.config, flow.req, flow.callback);
    const res = await userinfoRequest(ep.userinfo, tokens.access_token);
    expect(res.status).toBe(200);
    expect(res.body.sub).toBe(tokens.claims()!.sub);
    for (const claim of ['name', 'given_name', 'family_name', 'birthdate', 'gender', 'email', 'email_verified', 'national_id']) {
      expect([claim, res.body[claim]]).toEqual([claim, undefined]);
    }
  });

  it('scope openid email → email claims, no profile claims', async () => {
    const flow = await signInForCode(srv.issuer, portal, person, { scope: 'openid email' });
    const tokens = await redeem(flow.config, flow.req, flow.callback);
    const res = await userinfoRequest(ep.userinfo, tokens.access_token);
    expect(res.status).toBe(200);
    expect(res.body.email).toBe('an@example.vn');
    expect(res.body.name).toBeUndefined();
    expect(res.body.birthdate).toBeUndefined();
  });

  it('a valid access token in the query string is refused (RFC 9700 §4.3.2), no claims', async () => {
    const flow = await signInForCode(srv.issuer, portal, person, { scope: 'openid profile' });
    const tokens = await redeem(flow.config, flow.req, flow.callback);
    const res = await fetch(`${ep.userinfo}?access_token=${encodeURIComponent(tokens.access_token)}`);
    expect([400, 401]).toContain(res.status);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.sub).toBeUndefined();
    expect(body.name).toBeUndefined();
    // Control: the same token in the header works.
    expect((await userinfoRequest(ep.userinfo, tokens.access_token)).status).toBe(200);
  });
});
