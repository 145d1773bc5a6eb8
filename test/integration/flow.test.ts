/**
 * The whole journey with a real relying party: a portal registered like the CLI does, a citizen
 * signing in with a password, consent, the code exchanged with PKCE, the ID token validated, the
 * userinfo fetched, and single sign-on on the second visit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

describe('sign-in with openid-client', () => {
  it('signs a citizen in, validates the ID token, then signs in again without a password', async () => {
    const portal = await srv.addPortal();
    const person = await srv.addPerson();
    const config = await discover(srv.issuer, portal);
    const browser = new Browser(srv.issuer);

    const req = await authRequest(config, portal, { scope: 'openid profile email' });
    const done = await signIn(browser, req, person);
    expect(done.status).toBe(303);
    expect(done.location).toMatch(new RegExp(`^${portal.redirect_uri}\\?`));
    const cb = new URL(done.location!);
    expect(cb.searchParams.get('iss')).toBe(srv.issuer);

    const tokens = await redeem(config, req, done.location!);
    const claims = tokens.claims()!;
    expect(claims.iss).toBe(srv.issuer);
    expect(claims.aud).toBe(portal.client_id);
    expect(claims.acr).toBe('urn:dinhdanh:loa:low');
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.sub).not.toContain(person.pid);
    expect(claims.sub).not.toBe(person.id);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info.name).toBe('Nguyễn Văn An');
    expect(info.email).toBe('an@example.vn');
    expect(info.national_id).toBeUndefined();

    const sessionId = browser.cookies().get('dd_session')!;
    const session = await srv.system.store.oidc.find('Session', sessionId);
    expect(session?.exp).toBeGreaterThan(Math.floor(Date.now() / 1000) + 12 * 3600 - 60);

    // Second visit a second later (expiry has one-second resolution): same browser, no password,
    // same subject and auth_time.
    await new Promise((r) => setTimeout(r, 1100));
    const again = await authRequest(config, portal, { scope: 'openid profile email' });
    const res = await browser.get(again.url.href);
    expect(res.status).toBe(303);
    expect(res.location).toMatch(new RegExp(`^${portal.redirect_uri}\\?`));
    const second = await redeem(config, again, res.location!);
    expect(second.claims()!.sub).toBe(claims.sub);
    expect(second.claims()!.auth_time).toBe(claims.auth_time);
    // The session lifetime is absolute: using it does not extend it.
    const after = await srv.system.store.oidc.find('Session', browser.cookies().get('dd_session')!);
    expect(after?.exp).toBe(session?.exp);
  });
});
