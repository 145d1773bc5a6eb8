/**
 * /account/portals: the citizen sees which portals receive their data and what, and withdrawing a
 * consent revokes the tokens it produced (the portal's access and refresh tokens stop working) and
 * makes the portal ask again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

const url = (p: string) => new URL(p, srv.issuer).href;

describe('portals a citizen shares data with', () => {
  it('lists the consent in plain words and withdrawing it revokes the tokens and asks again', async () => {
    // With a back-channel logout URI the ID token carries `sid` (nothing listens: deliveries just fail).
    const portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'], backchannelLogoutUri: 'http://127.0.0.1:9/logout' });
    const person = await srv.addPerson();
    const config = await discover(srv.issuer, portal);
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { scope: 'openid profile email' });
    const tokens = await redeem(config, req, (await signIn(browser, req, person)).location!);

    const page = await browser.get(url('/account/portals'));
    expect(page.status).toBe(200);
    expect(page.text).toContain(portal.input.name);
    expect(page.text).toContain('Họ tên, ngày sinh và giới tính');
    expect(page.text).toContain('Địa chỉ thư điện tử');

    const done = await browser.post(url('/account/portals/revoke'), { _csrf: hiddenField(page.text, '_csrf'), client: portal.client_id });
    expect(done.status).toBe(200);
    expect(alertText(done.text)).toMatch(/thu hồi/);
    expect(done.text).not.toContain('data-testid="portal"');

    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const req2 = await authRequest(config, portal, { scope: 'openid profile email' });
    const again = await browser.get(req2.url.href);
    expect(again.text).toContain('name="decision"');
    // Consenting again starts a new part of the session at the portal: not the sid it was told ended.
    const back = await browser.post(url(formAction(again.text)), { _csrf: hiddenField(again.text, '_csrf'), decision: 'allow' });
    const fresh = await redeem(config, req2, back.location!);
    expect(fresh.claims()!.sid).toEqual(expect.any(String));
    expect(fresh.claims()!.sid).not.toBe(tokens.claims()!.sid);
  });

  it('refuses a withdrawal without the CSRF token, from another origin, or of a portal never consented to', async () => {
    const portal = await srv.addPortal();
    const person = await srv.addPerson();
    const config = await discover(srv.issuer, portal);
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal);
    await redeem(config, req, (await signIn(browser, req, person)).location!);
    const page = await browser.get(url('/account/portals'));
    const csrf = hiddenField(page.text, '_csrf');
    expect((await browser.post(url('/account/portals/revoke'), { client: portal.client_id })).status).toBe(403);
    expect((await browser.post(url('/account/portals/revoke'), { _csrf: csrf, client: portal.client_id }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await browser.post(url('/account/portals/revoke'), { _csrf: csrf, client: 'portal-unknown' })).status).toBe(404);
    expect((await browser.post(url('/account/portals/revoke'), { _csrf: csrf, 'client[$ne]': 'x' })).status).toBe(400);
    expect(await srv.system.store.consents.find(person.id, portal.client_id)).toBeDefined();
  });

  it('sends a browser without a session to sign in', async () => {
    const res = await new Browser(srv.issuer).request(url('/account/portals'));
    expect(res.status).toBe(303);
    expect(res.location).toBe(url('/account/security'));
  });
});

describe('withdrawing a consent to an offline_access portal', () => {
  /**
   * Refresh tokens for `offline_access` live 30 days, whatever the sessions do. Withdrawing the
   * consent after the sessions are long gone (12 hours, here on the store's clock) must still end
   * them: what is revoked is found in the store by person and portal, not kept in a list that
   * expires with the sessions.
   */
  it('ends the 30-day refresh token 13 hours later, and every other grant of the person there', async () => {
    let storeClock = Date.now();
    const later = await startTestServer({ storeNow: () => storeClock });
    try {
      const portal = await later.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
      await later.system.portals.approve(portal.client_id, 'offline_access', 'Nghị định 42/2022/NĐ-CP, Điều 10');
      const person = await later.addPerson();
      const config = await discover(later.issuer, portal);
      const held: string[] = [];
      for (let i = 0; i < 2; i += 1) {
        const browser = new Browser(later.issuer);
        const req = await authRequest(config, portal, { scope: 'openid profile offline_access', prompt: 'consent' });
        const tokens = await redeem(config, req, (await signIn(browser, req, person)).location!);
        held.push(tokens.refresh_token!);
      }
      storeClock += 13 * 3600_000;
      // Still working 13 hours on: the grants outlive the sessions.
      const refreshed = await oidc.refreshTokenGrant(config, held[0]!);
      held[0] = refreshed.refresh_token!;

      const browser = new Browser(later.issuer);
      let page = await browser.get(new URL('/account/portals', later.issuer).href);
      if (page.text.includes('name="identifier"')) {
        page = await browser.post(new URL(/<form[^>]*action="([^"]*)"/.exec(page.text)![1]!.replace(/&amp;/g, '&'), later.issuer).href, {
          _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password,
        });
        page = await browser.get(new URL('/account/portals', later.issuer).href);
      }
      const done = await browser.post(new URL('/account/portals/revoke', later.issuer).href, { _csrf: hiddenField(page.text, '_csrf'), client: portal.client_id });
      expect(done.status).toBe(200);
      for (const token of held) await expect(oidc.refreshTokenGrant(config, token)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.fetchUserInfo(config, refreshed.access_token, refreshed.claims()?.sub ?? oidc.skipSubjectCheck)).rejects.toThrow();
    } finally {
      await later.close();
    }
  });
});

describe('changing the password ends offline_access grants too', () => {
  /**
   * Whoever knew the old password may hold a 30-day refresh token from a portal approved for
   * `offline_access`, from a session long gone. A new password must end it (NIST SP 800-63B
   * §6.1.2.3); the session the change is made in keeps its own.
   */
  it('a refresh token issued from another, ended session stops working; the changing session stays signed in', async () => {
    let storeClock = Date.now();
    const later = await startTestServer({ storeNow: () => storeClock });
    try {
      const portal = await later.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
      await later.system.portals.approve(portal.client_id, 'offline_access', 'Nghị định 42/2022/NĐ-CP, Điều 10');
      const person = await later.addPerson();
      const config = await discover(later.issuer, portal);
      const thief = new Browser(later.issuer);
      const req = await authRequest(config, portal, { scope: 'openid profile offline_access', prompt: 'consent' });
      const held = (await redeem(config, req, (await signIn(thief, req, person)).location!)).refresh_token!;
      // The session that issued it is long gone (its 12 hours passed on the store's clock).
      storeClock += 13 * 3600_000;
      const browser = new Browser(later.issuer);
      const at = (p: string) => new URL(p, later.issuer).href;
      let page = await browser.get(at('/account/password'));
      page = await browser.post(at(/<form[^>]*action="([^"]*)"/.exec(page.text)![1]!.replace(/&amp;/g, '&')), {
        _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password,
      });
      page = await browser.get(at('/account/password'));
      const fresh = 'một mật khẩu mới dài hơn mười hai ký tự';
      const done = await browser.post(at('/account/password'), { _csrf: hiddenField(page.text, '_csrf'), current_password: person.password, password: fresh, password_confirm: fresh });
      expect(done.status).toBe(200);
      await expect(oidc.refreshTokenGrant(config, held)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await browser.get(at('/account/password'))).text).toContain('name="current_password"');
    } finally {
      await later.close();
    }
  });
});
