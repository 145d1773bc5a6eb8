/**
 * /account/password, black-box: a new password knowing the current one.
 *
 * - The current password again (ASVS 5.0 7.5.1); a wrong one is audited and counts towards the
 *   sign-in delays.
 * - The rules of every password (PRODUCT.md: 12 characters, 8 with a second factor; NIST SP
 *   800-63B §5.1.1.2: no composition rules, not the old one).
 * - A change ends every other session — the portals are told by back-channel logout — and keeps
 *   this one (ASVS 5.0 7.4.3; NIST SP 800-63B §6.1.2.3); every contact is told (ASVS 4.0.3 V2.2.3),
 *   never with the password.
 * - A change more than 5 minutes after signing in is sent through a new sign-in first.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, type Portal } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';
import { MINUTE, startWithPortal, totpCode } from '../helpers/pages.js';
import { enrolAppInAccount, heading, messagesTo, auditOf, openAccountPage, portalVisits, selfServiceSteps } from './selfservice-support.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

let now = Date.now();
let srv: TestServer;
let receiver: LogoutReceiver;
let portal: Portal, config: oidc.Configuration;
beforeAll(async () => {
  receiver = await new LogoutReceiver().start();
  ({ srv } = await startWithPortal({ now: () => now }));
  // A portal that holds a back-channel logout endpoint: what a password change must tell.
  portal = await srv.addPortal({ name: 'Cổng Dịch vụ công quốc gia', backchannelLogoutUri: receiver.url('/national') });
  config = await discover(srv.issuer, portal);
});
afterAll(async () => {
  await srv.close();
  await receiver.close();
});
// Every test in a new hour: notices' hourly allowances are the test's own.
beforeEach(() => { now += 61 * MINUTE; });

const { url, submit } = selfServiceSteps(() => srv);
const clock = { now: () => now, advance: () => { now += MINUTE; } };
const { atPortal, silently } = portalVisits(() => srv, () => ({ config, portal }), clock);
const NEW_PASSWORD = 'đèn khuya soi bóng phố cổ Hội An';

let seq = 0;
interface Citizen { id: string; pid: string; password: string; phone: string; email: string; secret?: string }
async function citizen(): Promise<Citizen> {
  seq += 1;
  const n = String(seq).padStart(4, '0');
  const phone = `+8491240${n}`;
  const email = `mat.khau.${n}@example.vn`;
  const p = await srv.addPerson({ pid: `00109024${n}`, phone, email, contactsVerified: true });
  return { ...p, phone, email };
}

function change(browser: Browser, page: Response, fields: { current_password: string; password: string; password_confirm: string }): Promise<Response> {
  return browser.post(url('/account/password'), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
}

const hashOf = async (id: string) => (await srv.system.store.persons.findById(id))!.passwordHash;
describe('changing the password: refused', () => {
  it('a wrong current password (400, audited), two passwords that differ, one too short, the old one again: each with its message, and nothing changes', async () => {
    const c = await citizen();
    const other = new Browser(srv.issuer);
    expect((await openAccountPage(srv, other, c, '/account/sessions', clock)).status).toBe(200);
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/password', clock);
    expect(page.status).toBe(200);
    // No second factor: the rule shown is 12 characters.
    expect(page.text).toContain('Ít nhất 12 ký tự');
    const hash = await hashOf(c.id);
    const [phoneBefore, mailBefore] = [messagesTo(srv, c.phone).length, messagesTo(srv, c.email).length];

    const cases: Array<[string, { current_password: string; password: string; password_confirm: string }, string]> = [
      ['wrong current password', { current_password: 'mật khẩu này sai bét rồi nhé', password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }, 'Mật khẩu hiện tại không đúng.'],
      ['confirmation differs', { current_password: c.password, password: NEW_PASSWORD, password_confirm: `${NEW_PASSWORD}!` }, 'Hai lần nhập mật khẩu không giống nhau.'],
      ['too short', { current_password: c.password, password: 'ngắn quá ạ', password_confirm: 'ngắn quá ạ' }, 'Mật khẩu quá ngắn.'],
      ['same as the old one', { current_password: c.password, password: c.password, password_confirm: c.password }, 'Mật khẩu mới phải khác mật khẩu cũ.'],
    ];
    for (const [label, fields, message] of cases) {
      const res = await change(browser, page, fields);
      expect({ label, status: res.status, alert: alertText(res.text) }).toEqual({ label, status: 400, alert: message });
      // The form is shown again to be corrected.
      expect(res.text).toContain('name="current_password"');
    }
    expect(await hashOf(c.id)).toBe(hash);
    expect((await auditOf(srv, 'REAUTHENTICATION_FAILED', c.id)).map((e) => e.details)).toEqual([expect.objectContaining({ action: 'change_password', throttled: false })]);
    expect(await auditOf(srv, 'PASSWORD_CHANGED', c.id)).toHaveLength(0);
    // Nobody was told of a change that did not happen, and the other browser is still signed in.
    expect(messagesTo(srv, c.phone)).toHaveLength(phoneBefore);
    expect(messagesTo(srv, c.email)).toHaveLength(mailBefore);
    expect((await other.get(url('/account/sessions'))).text).not.toContain('name="identifier"');
  });
});

describe('changing the password', () => {
  it('ends every other session (the portal told by back-channel logout), keeps this one, and tells every contact without the password', async () => {
    const c = await citizen();
    const oldPassword = c.password;
    // A portal session in one browser, the account area in another.
    const atNational = new Browser(srv.issuer);
    const tokens = await atPortal(atNational, c);
    const claims = tokens.claims()!;
    const other = new Browser(srv.issuer);
    expect((await openAccountPage(srv, other, c, '/account/sessions', clock)).status).toBe(200);
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/password', clock);
    const [phoneBefore, mailBefore] = [messagesTo(srv, c.phone).length, messagesTo(srv, c.email).length];
    const delivered = receiver.tokens('/national').length;

    const done = await change(browser, page, { current_password: oldPassword, password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(heading(done.text)).toBe('Đã đổi mật khẩu');
    expect(done.text).toContain('Số phiên đăng nhập khác đã kết thúc: 2.');
    expect(await srv.system.hasher.verify(await hashOf(c.id), NEW_PASSWORD)).toBe(true);
    expect((await auditOf(srv, 'PASSWORD_CHANGED', c.id)).map((e) => e.details.sessions_ended)).toEqual([2]);

    // The portal is told, with a logout token for the session it knew (Back-Channel Logout 1.0 §2.4).
    const [logoutToken] = (await receiver.waitFor('/national', delivered + 1)).slice(delivered);
    const { payload } = await jose.jwtVerify(logoutToken!, jose.createRemoteJWKSet(new URL(`${srv.issuer}/jwks`)), {
      issuer: srv.issuer, audience: portal.client_id, typ: 'logout+jwt', currentDate: new Date(now),
    });
    expect(payload).toMatchObject({ sub: claims.sub, sid: claims.sid, events: { [EVENT]: {} } });
    expect(await silently(atNational)).toBe('login_required');
    // The other account browser is signed out; this one carries on.
    expect((await other.get(url('/account/sessions'))).text).toContain('name="identifier"');
    const still = await browser.get(url('/account/password'));
    expect(still.text).toContain('name="current_password"');
    expect(still.text).not.toContain('name="identifier"');

    // The old password no longer signs in; the new one does.
    const stranger = new Browser(srv.issuer);
    const login = await stranger.get((await authRequest(config, portal)).url.href);
    const refused = await submit(stranger, login, { identifier: c.pid, password: oldPassword });
    expect(refused.status).toBe(200);
    expect(refused.text).toContain('name="identifier"');
    expect(alertText(refused.text)).toContain('Số định danh hoặc mật khẩu không đúng');
    const fresh = new Browser(srv.issuer);
    expect((await atPortal(fresh, { pid: c.pid, password: NEW_PASSWORD })).claims()!.sub).toBe(claims.sub);

    // Every contact told, once, without either password or the identification number.
    const told = [...messagesTo(srv, c.phone).slice(phoneBefore), ...messagesTo(srv, c.email).slice(mailBefore)].filter((m) => m.text.includes('đã được đổi'));
    expect(told.map((m) => m.channel).sort()).toEqual(['email', 'sms']);
    for (const m of told) {
      expect(m.text).toContain('các phiên đăng nhập khác đã kết thúc');
      expect(m.text).not.toContain(NEW_PASSWORD);
      expect(m.text).not.toContain(oldPassword);
      expect(m.text).not.toContain(c.pid);
    }
  });

  it('with a second factor, fewer than 12 characters are enough (PRODUCT.md, password rules); the app is still asked for', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    c.secret = (await enrolAppInAccount(srv, browser, c, clock)).secret;
    const page = await openAccountPage(srv, browser, c, '/account/password', clock);
    expect(page.text).toContain('Ít nhất 8 ký tự');
    const short = 'mèo#Tô7xq';
    const done = await change(browser, page, { current_password: c.password, password: short, password_confirm: short });
    expect({ status: done.status, alert: alertText(done.text) }).toEqual({ status: 200, alert: null });
    expect(await srv.system.hasher.verify(await hashOf(c.id), short)).toBe(true);
    // And the app is still asked for when signing in with it.
    const other = new Browser(srv.issuer);
    const login = await other.get((await authRequest(config, portal)).url.href);
    const second = await submit(other, login, { identifier: c.pid, password: short });
    expect(second.text).toContain('name="code"');
    clock.advance();
    let back = await submit(other, second, { code: await totpCode(c.secret, now) });
    if (back.text.includes('name="decision"')) back = await submit(other, back, { decision: 'allow' });
    expect(back.status).toBe(303);
    expect(back.location!.startsWith(portal.redirect_uri)).toBe(true);
  });

  it('with a second factor, a random 8-character password is accepted', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    c.secret = (await enrolAppInAccount(srv, browser, c, clock)).secret;
    const page = await openAccountPage(srv, browser, c, '/account/password', clock);
    const eight = 'kQ7#vz!M';
    const done = await change(browser, page, { current_password: c.password, password: eight, password_confirm: eight });
    expect({ status: done.status, alert: alertText(done.text) }).toEqual({ status: 200, alert: null });
  });

  it('more than 5 minutes after signing in, the change is sent through a new sign-in first and not made; made again after it', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/password', clock);
    const hash = await hashOf(c.id);
    now += 5 * MINUTE + 1000;
    const reauth = await change(browser, page, { current_password: c.password, password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    // The sign-in page (prompt=login), not the change.
    expect(reauth.status).toBe(200);
    expect(reauth.text).toContain('name="identifier"');
    expect(await hashOf(c.id)).toBe(hash);
    expect(await auditOf(srv, 'PASSWORD_CHANGED', c.id)).toHaveLength(0);

    const back = await submit(browser, reauth, { identifier: c.pid, password: c.password });
    expect(back.status).toBe(200);
    expect(new URL(back.url).pathname).toBe('/account/password');
    // A POST is never replayed after a sign-in: the page says to make the change again.
    expect(back.text).toContain('Vì an toàn, bạn vừa đăng nhập lại. Hãy thực hiện lại thay đổi của bạn.');
    expect(await hashOf(c.id)).toBe(hash);
    const done = await change(browser, back, { current_password: c.password, password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(heading(done.text)).toBe('Đã đổi mật khẩu');
  });

  it('just within 5 minutes of signing in, the change is made without a new sign-in', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/password', clock);
    now += 5 * MINUTE - 1000;
    const done = await change(browser, page, { current_password: c.password, password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(heading(done.text)).toBe('Đã đổi mật khẩu');
  });
});
