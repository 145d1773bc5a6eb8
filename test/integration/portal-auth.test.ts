/**
 * Portals that authenticate with their own keys and harden their requests (issue 4, SECURITY.md
 * #18, #26, #28, #29): private_key_jwt with an inline JWKS or a jwks_uri, pushed authorization
 * requests (RFC 9126), DPoP-bound tokens (RFC 9449), and the per-portal FAPI 2.0 switch — driven by
 * openid-client as a real relying party.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import pino from 'pino';
import { composeSystem } from '../../src/compose.js';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { signIn } from '../helpers/rp.js';

type PrivateKey = Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];

let srv: TestServer;
let jwksServer: http.Server;
let servedJwks: { keys: jose.JWK[] } = { keys: [] };
let jwksUrl = '';
beforeAll(async () => {
  srv = await startTestServer();
  jwksServer = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(servedJwks));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
});
afterAll(async () => {
  await srv.close();
  jwksServer.closeAllConnections();
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
});

interface KeyedPortal {
  client_id: string;
  redirect_uri: string;
  privateKey: PrivateKey;
  kid: string;
}

async function portalKeys(alg: 'ES256' | 'RS256' = 'ES256') {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  const kid = await jose.calculateJwkThumbprint(jwk);
  return { privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' }, kid };
}

async function keyedPortal(extra: Record<string, unknown> = {}, where: 'inline' | 'uri' = 'inline'): Promise<KeyedPortal> {
  const keys = await portalKeys();
  if (where === 'uri') servedJwks = { keys: [...servedJwks.keys, keys.publicJwk] };
  const reg = await srv.addPortal({
    authMethod: 'private_key_jwt',
    ...(where === 'inline' ? { jwks: { keys: [keys.publicJwk] } } : { jwksUri: jwksUrl }),
    ...extra,
  });
  expect(reg.client_secret).toBeNull();
  return { client_id: reg.client_id, redirect_uri: reg.redirect_uri, privateKey: keys.privateKey, kid: keys.kid };
}

async function configFor(p: KeyedPortal, metadata: Partial<oidc.ClientMetadata> = {}, key = p.privateKey): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(srv.issuer), p.client_id, metadata, oidc.PrivateKeyJwt(key, { [oidc.modifyAssertion]: (header) => { header.kid = p.kid; } }), {
    execute: [oidc.allowInsecureRequests],
  });
}

async function checks() {
  const verifier = oidc.randomPKCECodeVerifier();
  return { verifier, challenge: await oidc.calculatePKCECodeChallenge(verifier), state: oidc.randomState(), nonce: oidc.randomNonce() };
}

/** Signs a new person in at `url` (login and consent) and returns the callback URL. */
async function browse(url: URL): Promise<URL> {
  const person = await srv.addPerson();
  const res = await signIn(new Browser(srv.issuer), { url, verifier: '', state: '', nonce: '' }, person);
  expect(res.status).toBe(303);
  return new URL(res.location!);
}

async function tokenEndpoint(): Promise<string> {
  const doc = (await (await fetch(`${srv.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  return doc.token_endpoint!;
}

describe('private_key_jwt (RFC 7523)', () => {
  it.each(['inline', 'uri'] as const)('a portal with keys (%s JWKS) completes the code flow and calls back-end APIs without a secret', async (where) => {
    const portal = await keyedPortal({ grantTypes: ['authorization_code', 'client_credentials'] }, where);
    const config = await configFor(portal);
    const c = await checks();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: portal.redirect_uri, scope: 'openid profile', code_challenge: c.challenge, code_challenge_method: 'S256', state: c.state, nonce: c.nonce,
    });
    const tokens = await oidc.authorizationCodeGrant(config, await browse(url), { pkceCodeVerifier: c.verifier, expectedState: c.state, expectedNonce: c.nonce });
    expect(tokens.claims()!.sub).toBeTruthy();
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);
    const cc = await oidc.clientCredentialsGrant(config);
    expect(cc.access_token).toBeTruthy();
  });

  it('an assertion signed with another key, for another audience, expired, without sub, or HS256 with the public key → invalid_client', async () => {
    const portal = await keyedPortal({ grantTypes: ['authorization_code', 'client_credentials'] });
    const endpoint = await tokenEndpoint();
    const stranger = await portalKeys();
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: portal.client_id, sub: portal.client_id, aud: srv.issuer, jti: crypto.randomUUID(), iat: now, exp: now + 60 };
    const sign = (claims: Record<string, unknown>, key: PrivateKey | Uint8Array = portal.privateKey, alg = 'ES256') =>
      new jose.SignJWT(claims).setProtectedHeader({ alg, kid: portal.kid }).sign(key);
    const publicJwk = (await keyedPortalJwk(portal)) as jose.JWK;
    const cases: Array<[string, Promise<string>]> = [
      ['another key', sign({ ...base }, stranger.privateKey)],
      ['another audience', sign({ ...base, aud: 'https://id.example.gov.vn' })],
      ['expired', sign({ ...base, iat: now - 600, exp: now - 300 })],
      ['without sub', sign({ iss: base.iss, aud: base.aud, jti: base.jti, iat: base.iat, exp: base.exp })],
      ['HS256 keyed with the public key', sign({ ...base }, new TextEncoder().encode(JSON.stringify(publicJwk)), 'HS256')],
    ];
    for (const [label, assertion] of cases) {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: portal.client_id,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await assertion,
        }),
      });
      expect({ label, status: res.status, error: ((await res.json()) as { error?: string }).error }).toEqual({ label, status: 401, error: 'invalid_client' });
    }
    // The same request with a good assertion passes: the cases above failed for their defect.
    const good = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials', client_id: portal.client_id,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await sign({ ...base, jti: crypto.randomUUID() }),
      }),
    });
    expect(good.status).toBe(200);
  });

  it('a client secret is no use to a private_key_jwt portal', async () => {
    const portal = await keyedPortal({ grantTypes: ['authorization_code', 'client_credentials'] });
    const res = await fetch(await tokenEndpoint(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${portal.client_id}:guess`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(res.status).toBe(401);
  });
});

async function keyedPortalJwk(portal: KeyedPortal): Promise<jose.JWK> {
  const stored = await srv.system.portals.find(portal.client_id);
  return ((stored!.metadata.jwks as { keys: jose.JWK[] }).keys)[0]!;
}

describe('pushed authorization requests (RFC 9126, SECURITY.md #26)', () => {
  it('a pushed request works once, belongs to its portal, and lives about 60 seconds', async () => {
    const portal = await srv.addPortal();
    const config = await oidc.discovery(new URL(srv.issuer), portal.client_id, portal.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const c = await checks();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: portal.redirect_uri, scope: 'openid', code_challenge: c.challenge, code_challenge_method: 'S256', state: c.state, nonce: c.nonce,
    });
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const stored = await srv.system.store.oidc.find('PushedAuthorizationRequest', url.searchParams.get('request_uri')!.split(':').pop()!);
    expect(stored).toBeDefined();
    const life = (stored!.exp as number) - (stored!.iat as number);
    expect(life).toBeGreaterThanOrEqual(10);
    expect(life).toBeLessThanOrEqual(60);

    // Another portal presenting it is refused.
    const other = await srv.addPortal();
    const stolen = new URL(url);
    stolen.searchParams.set('client_id', other.client_id);
    const res = await new Browser(srv.issuer).get(stolen.href);
    expect(res.status).toBe(400);
    expect(res.location ?? '').not.toContain('code=');

    const tokens = await oidc.authorizationCodeGrant(config, await browse(url), { pkceCodeVerifier: c.verifier, expectedState: c.state, expectedNonce: c.nonce });
    expect(tokens.access_token).toBeTruthy();
    // Used: a second use is refused.
    const again = await new Browser(srv.issuer).get(url.href);
    expect(again.status).toBe(400);
  });

  it('a request_uri by reference (not pushed) → request_uri_not_supported, and nothing is fetched', async () => {
    const portal = await srv.addPortal();
    let fetched = 0;
    const lure = http.createServer((_req, res) => { fetched += 1; res.end('x'); });
    await new Promise<void>((resolve) => lure.listen(0, '127.0.0.1', resolve));
    const lureUrl = `http://127.0.0.1:${(lure.address() as AddressInfo).port}/request.jwt`;
    const c = await checks();
    const url = new URL(`${srv.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: portal.client_id, response_type: 'code', scope: 'openid', redirect_uri: portal.redirect_uri,
      code_challenge: c.challenge, code_challenge_method: 'S256', state: c.state, request_uri: lureUrl,
    }).toString();
    const res = await new Browser(srv.issuer).get(url.href);
    const error = res.location ? new URL(res.location).searchParams.get('error') : res.text;
    expect(error).toContain('request_uri_not_supported');
    expect(fetched).toBe(0);
    lure.close();
  });
});

describe('DPoP (RFC 9449, SECURITY.md #28)', () => {
  it('tokens bound to the portal\'s key work with its proofs only', async () => {
    const portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
    const config = await oidc.discovery(new URL(srv.issuer), portal.client_id, portal.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const c = await checks();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: portal.redirect_uri, scope: 'openid profile', code_challenge: c.challenge, code_challenge_method: 'S256', state: c.state, nonce: c.nonce,
    });
    const tokens = await oidc.authorizationCodeGrant(config, await browse(url), { pkceCodeVerifier: c.verifier, expectedState: c.state, expectedNonce: c.nonce }, undefined, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const sub = tokens.claims()!.sub;
    await expect(oidc.fetchUserInfo(config, tokens.access_token, sub, { DPoP })).resolves.toMatchObject({ sub });
    const info = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(info.cnf).toMatchObject({ jkt: expect.any(String) });

    // As a bearer token, or with another key's proof: refused.
    const userinfo = (await (await fetch(`${srv.issuer}/.well-known/openid-configuration`)).json() as { userinfo_endpoint: string }).userinfo_endpoint;
    const bearer = await fetch(userinfo, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(bearer.status).toBe(401);
    const otherKey = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.fetchUserInfo(config, tokens.access_token, sub, { DPoP: otherKey })).rejects.toThrow();

    // A confidential portal's refresh token is not key-bound (RFC 9449 §5: it authenticates), but
    // the access token it yields is bound to the key of that refresh's proof.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: otherKey });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
    await expect(oidc.fetchUserInfo(config, refreshed.access_token, sub, { DPoP: otherKey })).resolves.toMatchObject({ sub });
    await expect(oidc.fetchUserInfo(config, refreshed.access_token, sub, { DPoP })).rejects.toThrow();
  });

  it('a replayed proof, a proof for another method or URL, or a stale one → refused', async () => {
    const portal = await srv.addPortal({ grantTypes: ['authorization_code', 'client_credentials'] });
    const endpoint = await tokenEndpoint();
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
    const jwk = await jose.exportJWK(publicKey);
    const proof = (claims: Record<string, unknown>) =>
      new jose.SignJWT({ jti: crypto.randomUUID(), htm: 'POST', htu: endpoint, iat: Math.floor(Date.now() / 1000), ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
    const call = (dpop: string) => fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${portal.client_id}:${portal.client_secret}`).toString('base64')}`,
        dpop,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const once = await proof({});
    const first = await call(once);
    expect(first.status).toBe(200);
    expect(((await first.json()) as { token_type: string }).token_type).toBe('DPoP');
    for (const [label, p] of [
      ['replayed', Promise.resolve(once)],
      ['another method', proof({ htm: 'GET' })],
      ['another URL', proof({ htu: `${srv.issuer}/elsewhere` })],
      ['issued 10 minutes ago', proof({ iat: Math.floor(Date.now() / 1000) - 600 })],
      ['issued 10 minutes ahead', proof({ iat: Math.floor(Date.now() / 1000) + 600 })],
    ] as const) {
      const res = await call(await p);
      // oidc-provider answers a replay at the token endpoint as invalid_grant, the rest invalid_dpop_proof.
      const expected = label === 'replayed' ? 'invalid_grant' : 'invalid_dpop_proof';
      expect({ label, status: res.status, error: ((await res.json()) as { error?: string }).error }).toEqual({ label, status: 400, error: expected });
    }
  });

  it('replay detection is one atomic insert in the shared store: of 20 concurrent checks of one jti, on two instances, one is new', async () => {
    // A second instance on the same store (another process in production; here a second system).
    const second = await composeSystem(srv.system.config, { logger: pino({ level: 'silent' }) });
    try {
      type Replay = { unique(iss: string, jti: string, exp: number): Promise<boolean> };
      const replay = (s: typeof second) => (s.provider() as unknown as { ReplayDetection: Replay }).ReplayDetection;
      const jti = crypto.randomUUID();
      const exp = Math.floor(Date.now() / 1000) + 300;
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => replay(i % 2 ? second : srv.system).unique('portal', jti, exp)));
      expect(results.filter(Boolean)).toHaveLength(1);
      await expect(replay(second).unique('portal', jti, exp)).resolves.toBe(false);
      await expect(replay(srv.system).unique('portal', crypto.randomUUID(), exp)).resolves.toBe(true);
    } finally {
      await second.close();
    }
  });

  it('dpop_jkt in the authorization request must match the proof at the token endpoint', async () => {
    const portal = await srv.addPortal();
    const config = await oidc.discovery(new URL(srv.issuer), portal.client_id, portal.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const bound = await oidc.randomDPoPKeyPair('ES256');
    const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(bound.publicKey));
    const c = await checks();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: portal.redirect_uri, scope: 'openid', code_challenge: c.challenge, code_challenge_method: 'S256', state: c.state, nonce: c.nonce, dpop_jkt: jkt,
    });
    const callback = await browse(url);
    const wrong = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: c.verifier, expectedState: c.state, expectedNonce: c.nonce }, undefined, { DPoP: wrong }))
      .rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('FAPI 2.0 portals (--fapi)', () => {
  it('must push their requests, authenticate with keys and bind tokens with DPoP; ID tokens are ES256', async () => {
    const portal = await keyedPortal({ fapi: true });
    const config = await configFor(portal, { id_token_signed_response_alg: 'ES256' });
    const c = await checks();
    const params = { redirect_uri: portal.redirect_uri, scope: 'openid profile', code_challenge: c.challenge, code_challenge_method: 'S256', state: c.state, nonce: c.nonce };

    // Not pushed → refused (an error back at the portal, never a code).
    const plain = await new Browser(srv.issuer).get(oidc.buildAuthorizationUrl(config, params).href);
    expect(plain.status).toBe(303);
    const refused = new URL(plain.location!).searchParams;
    expect(refused.get('code')).toBeNull();
    expect(refused.get('error')).toBe('invalid_request');
    expect(refused.get('error_description')).toMatch(/pushed authorization request/i);

    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const url = await oidc.buildAuthorizationUrlWithPAR(config, params, { DPoP });
    const callback = await browse(url);
    expect(callback.searchParams.get('iss')).toBe(srv.issuer);

    // Without DPoP at the token endpoint → refused (sender-constrained tokens are required).
    const noDpop = await configFor(portal, { id_token_signed_response_alg: 'ES256' });
    await expect(oidc.authorizationCodeGrant(noDpop, callback, { pkceCodeVerifier: c.verifier, expectedState: c.state, expectedNonce: c.nonce }))
      .rejects.toMatchObject({ error: expect.stringMatching(/invalid_request|invalid_dpop_proof|invalid_grant/) });

    const c2 = await checks();
    const url2 = await oidc.buildAuthorizationUrlWithPAR(config, { ...params, code_challenge: c2.challenge, state: c2.state, nonce: c2.nonce }, { DPoP });
    const tokens = await oidc.authorizationCodeGrant(config, await browse(url2), { pkceCodeVerifier: c2.verifier, expectedState: c2.state, expectedNonce: c2.nonce }, undefined, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    expect(jose.decodeProtectedHeader(tokens.id_token!).alg).toBe('ES256');
  });

  it('the CLI refuses a FAPI portal with a client secret or RS256', async () => {
    await expect(srv.addPortal({ fapi: true, authMethod: 'client_secret_basic' })).rejects.toThrow(/--fapi requires --auth-method private_key_jwt/);
    const keys = await portalKeys();
    await expect(srv.addPortal({ fapi: true, jwks: { keys: [keys.publicJwk] }, signingAlg: 'RS256' })).rejects.toThrow(/RS256/);
  });
});
