/**
 * APIs that accept dinhdanh tokens (RFC 8707 resource indicators, RFC 9068 JWT access tokens), their
 * introspection (RFC 7662) by audience, client credentials towards them, and `offline_access` only
 * for portals approved for it — with openid-client as the portal.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField } from '../helpers/browser.js';
import { discover, redeem, signIn, type AuthRequest } from '../helpers/rp.js';
import { validateResourceInput } from '../../src/portals/index.js';

const API = 'https://api.hoso.example.gov.vn/';
/** An API registered for opaque tokens: it introspects each one. */
const OPAQUE_API = 'https://api.thue.example.gov.vn/';

let srv: TestServer;
let rs: { client_id: string; client_secret: string; resource: string };
let rsConfig: oidc.Configuration;
let opaqueConfig: oidc.Configuration;
let jwks: ReturnType<typeof jose.createRemoteJWKSet>;
let ccPortal: Awaited<ReturnType<TestServer['addPortal']>>;

beforeAll(async () => {
  srv = await startTestServer();
  ccPortal = await srv.addPortal({ grantTypes: ['authorization_code', 'client_credentials'] });
  const reg = await srv.system.portals.registerResource(validateResourceInput({
    name: 'Hồ sơ điện tử', uri: API, scopes: ['hoso:doc', 'hoso:nop'], clientCredentialsPortals: [ccPortal.client_id],
  }, { production: false }));
  rs = { client_id: reg.client_id, client_secret: reg.client_secret!, resource: reg.resource };
  rsConfig = await oidc.discovery(new URL(srv.issuer), rs.client_id, rs.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  jwks = jose.createRemoteJWKSet(new URL(`${srv.issuer}/jwks`));
  const opaque = await srv.system.portals.registerResource(validateResourceInput({
    name: 'Thuế điện tử', uri: OPAQUE_API, scopes: ['thue:tra-cuu'], tokenFormat: 'opaque',
  }, { production: false }));
  opaqueConfig = await oidc.discovery(new URL(srv.issuer), opaque.client_id, opaque.client_secret!, undefined, { execute: [oidc.allowInsecureRequests] });
});

/** Signs a new person in at `portal` with `extra` parameters and redeems the code. */
async function apiTokens(portal: Awaited<ReturnType<TestServer['addPortal']>>, extra: Record<string, string>) {
  const config = await discover(srv.issuer, portal);
  const req = await request(config, portal.redirect_uri, extra);
  const done = await signIn(new Browser(srv.issuer), req, await srv.addPerson());
  return { config, tokens: await redeem(config, req, done.location!) };
}
afterAll(async () => { await srv.close(); });

async function request(config: oidc.Configuration, redirectUri: string, extra: Record<string, string>): Promise<AuthRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce, ...extra,
  });
  return { url, verifier, state, nonce };
}

describe('JWT access tokens for a registered API (RFC 8707, RFC 9068)', () => {
  it('the citizen consents to the API by name; the portal gets an at+jwt for it with its own pairwise sub', async () => {
    const portal = await srv.addPortal();
    const config = await discover(srv.issuer, portal);
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const req = await request(config, portal.redirect_uri, { scope: 'openid hoso:doc', resource: API });

    let res = await browser.get(req.url.href);
    res = await browser.post(new URL(formAction(res.text), req.url).href, { _csrf: hiddenField(res.text, '_csrf'), identifier: person.pid, password: person.password });
    expect(res.text).toContain('name="decision"');
    expect(res.text).toContain('Hồ sơ điện tử');
    expect(res.text).toContain('hoso:doc');
    expect(res.text).not.toContain('hoso:nop');
    res = await browser.post(new URL(formAction(res.text), req.url).href, { _csrf: hiddenField(res.text, '_csrf'), decision: 'allow' });
    const tokens = await redeem(config, req, res.location!);

    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, { issuer: srv.issuer, audience: API, typ: 'at+jwt' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(tokens.claims()!.sub);
    expect(payload.client_id).toBe(portal.client_id);
    expect(String(payload.scope).split(' ')).toContain('hoso:doc');
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(typeof payload.jti).toBe('string');

    // A JWT is verified by the API itself: introspection says so rather than guessing.
    await expect(oidc.tokenIntrospection(rsConfig, tokens.access_token)).rejects.toMatchObject({ error: 'unsupported_token_type' });

    // The citizen's portals page names the API and its permission.
    const mine = await browser.get(`${srv.issuer}/account/portals`);
    expect(mine.text).toContain('Hồ sơ điện tử');
    expect(mine.text).toContain('hoso:doc');

    // The consent is remembered, the API's scope included: the next sign-in asks nothing.
    const again = await request(config, portal.redirect_uri, { scope: 'openid hoso:doc', resource: API });
    const silent = await browser.get(again.url.href);
    expect(silent.status).toBe(303);
    expect(new URL(silent.location!).searchParams.get('code')).toBeTruthy();
  });

  it('an API cannot introspect tokens that are not meant for it', async () => {
    const portal = await srv.addPortal();
    const config = await discover(srv.issuer, portal);
    const person = await srv.addPerson();
    const req = await request(config, portal.redirect_uri, { scope: 'openid profile' });
    const done = await signIn(new Browser(srv.issuer), req, person);
    const tokens = await redeem(config, req, done.location!);
    expect(await oidc.tokenIntrospection(rsConfig, tokens.access_token)).toEqual({ active: false });
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);
  });

  it('an unknown or malformed resource → invalid_target, and no code', async () => {
    const portal = await srv.addPortal();
    const config = await discover(srv.issuer, portal);
    for (const resource of ['https://api.unknown.example.gov.vn/', 'not a uri', `${API}#frag`]) {
      const req = await request(config, portal.redirect_uri, { scope: 'openid hoso:doc', resource });
      const res = await new Browser(srv.issuer).get(req.url.href);
      const params = res.location ? new URL(res.location).searchParams : undefined;
      expect(params?.get('code') ?? null).toBeNull();
      expect(params?.get('error') ?? res.text).toContain('invalid_target');
    }
  });

  it('client credentials for the API only for the portals it lists; the token names the portal, not a person', async () => {
    const config = await discover(srv.issuer, ccPortal);
    const cc = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'hoso:nop' });
    const { payload } = await jose.jwtVerify(cc.access_token, jwks, { issuer: srv.issuer, audience: API, typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id: ccPortal.client_id, sub: ccPortal.client_id, scope: 'hoso:nop' });

    const other = await srv.addPortal({ grantTypes: ['authorization_code', 'client_credentials'] });
    const otherConfig = await discover(srv.issuer, other);
    await expect(oidc.clientCredentialsGrant(otherConfig, { resource: API, scope: 'hoso:nop' })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('an API registered for opaque tokens introspects them (it is their audience) until the portal revokes them', async () => {
    const portal = await srv.addPortal();
    const { config, tokens } = await apiTokens(portal, { scope: 'openid thue:tra-cuu', resource: OPAQUE_API });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    const info = await oidc.tokenIntrospection(opaqueConfig, tokens.access_token);
    expect(info).toMatchObject({ active: true, client_id: portal.client_id, sub: tokens.claims()!.sub, aud: OPAQUE_API });
    expect(String(info.scope).split(' ')).toContain('thue:tra-cuu');
    // The other API is not its audience.
    await expect(oidc.tokenIntrospection(rsConfig, tokens.access_token)).resolves.toEqual({ active: false });
    await oidc.tokenRevocation(config, tokens.access_token);
    expect((await oidc.tokenIntrospection(opaqueConfig, tokens.access_token)).active).toBe(false);
  });

  it('a disabled portal\'s tokens introspect inactive at the API', async () => {
    const portal = await srv.addPortal();
    const { tokens } = await apiTokens(portal, { scope: 'openid thue:tra-cuu', resource: OPAQUE_API });
    expect((await oidc.tokenIntrospection(opaqueConfig, tokens.access_token)).active).toBe(true);
    await srv.system.store.portals.setDisabled(portal.client_id, true);
    expect((await oidc.tokenIntrospection(opaqueConfig, tokens.access_token)).active).toBe(false);
  });
});

describe('offline_access (PRODUCT.md: 30 days, only for approved portals)', () => {
  it('an approved portal gets a refresh token that outlives the sign-out, for 30 days', async () => {
    const portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'], offlineAccess: true });
    const config = await discover(srv.issuer, portal);
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const req = await request(config, portal.redirect_uri, { scope: 'openid offline_access', prompt: 'consent' });
    const consentPage = await (async () => {
      let res = await browser.get(req.url.href);
      res = await browser.post(new URL(formAction(res.text), req.url).href, { _csrf: hiddenField(res.text, '_csrf'), identifier: person.pid, password: person.password });
      return res;
    })();
    expect(consentPage.text).toContain('tối đa 30 ngày');
    const done = await browser.post(new URL(formAction(consentPage.text), req.url).href, { _csrf: hiddenField(consentPage.text, '_csrf'), decision: 'allow' });
    const tokens = await redeem(config, req, done.location!);
    expect(tokens.scope?.split(' ')).toContain('offline_access');
    expect(tokens.refresh_token).toBeDefined();

    const stored = await srv.system.store.oidc.find('RefreshToken', tokens.refresh_token!);
    expect((stored!.exp as number) - (stored!.iat as number)).toBe(30 * 24 * 3600);

    // Signing out of every portal ends the session, not the offline grant.
    const page = await browser.get(`${srv.issuer}/session/end`);
    await browser.post(new URL(formAction(page.text), srv.issuer).href, { xsrf: hiddenField(page.text, 'xsrf'), _csrf: hiddenField(page.text, '_csrf'), logout: 'all' });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
  });

  it('a portal not approved for it → invalid_scope; its refresh tokens end with the session', async () => {
    const portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
    const config = await discover(srv.issuer, portal);
    const person = await srv.addPerson();
    const asked = await request(config, portal.redirect_uri, { scope: 'openid offline_access', prompt: 'consent' });
    const refused = await new Browser(srv.issuer).get(asked.url.href);
    expect(new URL(refused.location!).searchParams.get('error')).toBe('invalid_scope');

    const browser = new Browser(srv.issuer);
    const req = await request(config, portal.redirect_uri, {});
    const done = await signIn(browser, req, person);
    const tokens = await redeem(config, req, done.location!);
    expect(tokens.refresh_token).toBeDefined();
    const page = await browser.get(`${srv.issuer}/session/end`);
    await browser.post(new URL(formAction(page.text), srv.issuer).href, { xsrf: hiddenField(page.text, 'xsrf'), _csrf: hiddenField(page.text, '_csrf'), logout: 'all' });
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('registration refuses offline_access without the refresh_token grant', async () => {
    await expect(srv.addPortal({ offlineAccess: true })).rejects.toThrow(/--offline-access needs --grant-type refresh_token/);
  });
});
