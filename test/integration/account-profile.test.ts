/**
 * The account area's home (/account) and the person's contacts (/account/profile), black-box:
 * real HTTP against the real app and store, codes and notices read from the development outbox,
 * a portal (openid-client) reading userinfo.
 *
 * - The home shows who is signed in with the identification number masked (Decree 356/2025/ND-CP:
 *   no more personal data on a page than its purpose needs) and links to every section.
 * - A change of a contact asks for the current password again (ASVS 5.0 7.5.1), counts only once
 *   a code sent to the new contact is answered, and is told to every contact on file before it
 *   (ASVS 4.0.3 V2.2.3: notices after a change of authentication details; a thief who swaps the
 *   contacts is heard on the owner's).
 * - The last verified contact cannot go: recovery needs one (NIST SP 800-63B §6.1.2.3).
 * - Phones are Vietnamese mobile numbers only (codes by SMS cost money; Decree 69/2024/ND-CP).
 * - Every POST is same-origin, CSRF-checked and schema-checked; "also sign out everywhere else"
 *   ends the other sessions (ASVS 5.0 7.4.3).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, redeem, type Portal } from '../helpers/rp.js';
import { MINUTE, startWithPortal } from '../helpers/pages.js';
import {
  codeOf, messagesTo, nextCode, auditOf, openAccountPage, openAccountPageWithCode, registryAdd, selfServiceSteps, type Message,
} from './selfservice-support.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration;
beforeAll(async () => { ({ srv, portal, config } = await startWithPortal({ now: () => now })); });
afterAll(async () => { await srv.close(); });
// Every test in a new hour: codes (one a minute to a destination) and notices (an hourly allowance
// per destination) are the test's own.
beforeEach(() => { now += 61 * MINUTE; });

const { url, submit } = selfServiceSteps(() => srv);
const clock = { now: () => now, advance: () => { now += MINUTE; } };

let seq = 0;
interface Citizen { id: string; pid: string; password: string; phone: string; email: string }
/** A person with a phone and an e-mail address an operator proved at the counter. */
async function citizen(extra: { level?: '1' | '2' } = {}): Promise<Citizen> {
  seq += 1;
  const n = String(seq).padStart(4, '0');
  const phone = `+8491230${n}`;
  const email = `lien.he.${n}@example.vn`;
  const p = await srv.addPerson({ pid: `00109012${n}`, name: 'Trần Thị Bích Ngọc', phone, email, contactsVerified: true, ...extra });
  return { ...p, phone, email };
}

/** Posts to `action` with the CSRF token of `page` (a form of the page). */
function post(browser: Browser, page: Response, action: string, fields: Record<string, string>): Promise<Response> {
  return browser.post(url(action), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
}

interface ShownContact { id: string; value: string; verified: boolean }
/** The contacts the profile page lists (data-testid="contact"), with the id its forms name each by. */
function contactsShown(html: string): ShownContact[] {
  return html.split('data-testid="contact"').slice(1).map((chunk) => {
    const li = chunk.slice(0, chunk.indexOf('</li>'));
    return {
      verified: /^ data-verified="true"/.test(li),
      value: /<strong>[^<:]*: ([^<]*)<\/strong>/.exec(li)![1]!,
      id: /name="contact" value="([^"]+)"/.exec(li)![1]!,
    };
  });
}

/** The page's notice of a change made (role="status": a polite announcement, not an error). */
const statusText = (html: string) => /role="status"[^>]*>([^<]*)</.exec(html)?.[1]?.trim() ?? null;

const stored = async (id: string) => (await srv.system.store.persons.findById(id))!;
const counts = (...to: string[]) => to.map((t) => messagesTo(srv, t).length);
const newSince = (to: string, before: number): Message[] => messagesTo(srv, to).slice(before);
const maskedPhone = (phone: string) => `+84 *** *** ${phone.slice(-3)}`;

describe('the account home', () => {
  it('shows the name, the identification number masked (never its 12 digits), the level and how to raise it, and links to every section; each section links back', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const home = await openAccountPage(srv, browser, c, '/account', clock);
    expect(home.status).toBe(200);
    const summary = /data-testid="account-summary">([\s\S]*?)<\/dl>/.exec(home.text)![1]!;
    expect(summary).toContain('Trần Thị Bích Ngọc');
    expect(summary).toContain(`*********${c.pid.slice(-3)}`);
    expect(summary).toContain('Mức 1 (đăng ký trực tuyến)');
    // Level 1 is told how to reach level 2 (Decree 69/2024/ND-CP: in person, with the card).
    expect(home.text).toContain('Để lên mức 2');
    expect(home.text).not.toContain(c.pid);
    const links = [...home.text.matchAll(/<li><a href="(\/account\/[a-z]+)">/g)].map((m) => m[1]);
    expect(links.sort()).toEqual([
      '/account/activity', '/account/data', '/account/organizations', '/account/password',
      '/account/portals', '/account/profile', '/account/security', '/account/sessions',
    ]);
    for (const section of links) {
      const page = await browser.get(url(section!));
      expect({ section, status: page.status, back: page.text.includes('href="/account" data-testid="account-home-link"') }).toEqual({ section, status: 200, back: true });
      expect(page.text).not.toContain(c.pid);
    }
  });

  it('a level-2 person sees level 2 and no advice to raise it', async () => {
    const c = await citizen({ level: '2' });
    const home = await openAccountPage(srv, new Browser(srv.issuer), c, '/account', clock);
    expect(home.text).toContain('Mức 2 (đã xác minh trực tiếp)');
    expect(home.text).not.toContain('Để lên mức 2');
  });

  it('without a session, /account sends the browser to sign in and shows nothing of anyone', async () => {
    const res = await new Browser(srv.issuer).request(url('/account'));
    expect(res.status).toBe(303);
    expect(new URL(res.location!).pathname).toBe('/auth');
  });
});

describe('adding a phone', () => {
  it('asks for the current password, refuses numbers that are not Vietnamese mobiles, proves the new one by a code, tells the contacts on file before, and the portal sees the new number', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    // A portal that receives the phone number (scope phone) signs the person in in this browser.
    const req = await authRequest(config, portal, { scope: 'openid phone' });
    let res = await browser.get(req.url.href);
    res = await submit(browser, res, { identifier: c.pid, password: c.password });
    if (res.text.includes('name="decision"')) res = await submit(browser, res, { decision: 'allow' });
    const tokens = await redeem(config, req, res.location!);
    const sub = tokens.claims()!.sub;
    expect(await oidc.fetchUserInfo(config, tokens.access_token, sub)).toMatchObject({ phone_number: c.phone, phone_number_verified: true });

    let page = await openAccountPage(srv, browser, c, '/account/profile', clock);
    expect(page.status).toBe(200);
    expect(contactsShown(page.text)).toEqual([
      { id: expect.any(String), value: c.phone, verified: true },
      { id: expect.any(String), value: c.email, verified: true },
    ]);
    const fresh = '0388123456';
    const freshE164 = '+84388123456';
    const [phoneBefore, mailBefore, freshBefore] = counts(c.phone, c.email, freshE164);

    // The current password, wrong: 400, nothing sent, the failure audited (it counts like a sign-in's).
    const wrong = await post(browser, page, '/account/profile/contacts/add', { phone: fresh, current_password: 'không phải mật khẩu này đâu' });
    expect(wrong.status).toBe(400);
    expect(alertText(wrong.text)).toBe('Mật khẩu hiện tại không đúng.');
    expect(messagesTo(srv, freshE164)).toHaveLength(freshBefore!);
    expect((await auditOf(srv, 'REAUTHENTICATION_FAILED', c.id)).map((e) => e.details.action)).toEqual(['add_contact']);

    // A foreign number and a Hà Nội landline: refused, nothing sent (no codes to premium-rate or fixed lines).
    for (const typed of ['+14155550123', '+842438251234']) {
      const refused = await post(browser, page, '/account/profile/contacts/add', { phone: typed, current_password: c.password });
      expect({ typed, status: refused.status, alert: alertText(refused.text) }).toEqual({
        typed, status: 400, alert: 'Chỉ nhận số di động Việt Nam (bắt đầu bằng 03, 05, 07, 08 hoặc 09).',
      });
      expect(messagesTo(srv, typed)).toHaveLength(0);
    }
    // The landline as people write it (0 24 3825 1234: 11 digits) is no phone number the page takes either.
    const landline = await post(browser, page, '/account/profile/contacts/add', { phone: '024 3825 1234', current_password: c.password });
    expect(landline.status).toBe(400);
    expect(messagesTo(srv, '+842438251234')).toHaveLength(0);

    // The new mobile: a code is sent to it; nothing is added before it is answered.
    const codePage = await post(browser, page, '/account/profile/contacts/add', { phone: fresh, current_password: c.password });
    expect(codePage.status).toBe(200);
    expect(codePage.text).toContain('name="code"');
    expect(codePage.text).toContain(maskedPhone(freshE164));
    const code = await nextCode(srv, freshE164, freshBefore!);
    expect((await stored(c.id)).contacts.map((x) => x.value)).toEqual([c.phone, c.email]);

    const wrongCode = await post(browser, codePage, '/account/profile/contacts/code', { code: code === '000000' ? '111111' : '000000' });
    expect(wrongCode.status).toBe(400);
    expect(alertText(wrongCode.text)).toBe('Mã không đúng. Vui lòng kiểm tra và nhập lại.');
    expect((await stored(c.id)).contacts.map((x) => x.value)).toEqual([c.phone, c.email]);

    const added = await post(browser, wrongCode, '/account/profile/contacts/code', { code });
    expect(added.status).toBe(200);
    expect(statusText(added.text)).toBe('Đã xác minh liên hệ. Các liên hệ trước đó đã được thông báo.');
    const after = await stored(c.id);
    expect(after.contacts.map((x) => ({ value: x.value, verified: x.verified }))).toEqual([
      { value: c.phone, verified: true }, { value: c.email, verified: true }, { value: freshE164, verified: true },
    ]);
    expect(contactsShown(added.text).map((x) => [x.value, x.verified])).toEqual([[c.phone, true], [c.email, true], [freshE164, true]]);
    expect((await auditOf(srv, 'CONTACT_ADDED', c.id)).map((e) => e.details)).toEqual([expect.objectContaining({ kind: 'phone', masked: maskedPhone(freshE164) })]);

    // Told to the contacts that were there before (the old phone, the e-mail), not to the new one,
    // which got its code only; no notice carries a code or the identification number.
    const toOldPhone = newSince(c.phone, phoneBefore!);
    const toMail = newSince(c.email, mailBefore!);
    expect(toOldPhone).toHaveLength(1);
    expect(toMail).toHaveLength(1);
    expect(newSince(freshE164, freshBefore!).map((m) => codeOf(m))).toEqual([code]);
    for (const m of [...toOldPhone, ...toMail]) {
      expect(m.text).toContain(`${maskedPhone(freshE164)} đã được thêm vào tài khoản định danh`);
      expect(codeOf(m)).toBeUndefined();
      expect(m.text).not.toContain(code);
      expect(m.text).not.toContain(c.pid);
      expect(m.text).not.toContain(freshE164);
    }
    expect(toOldPhone[0]!.channel).toBe('sms');
    expect(toMail[0]).toMatchObject({ channel: 'email', subject: 'Thay đổi liên hệ của tài khoản định danh' });

    // A number added with the password alone does not take over where codes go, nor what portals
    // see: the portal holding the phone scope still reads the number verified first…
    expect(await oidc.fetchUserInfo(config, tokens.access_token, sub)).toMatchObject({ phone_number: c.phone, phone_number_verified: true });
    // …until the old number is removed, which needs a sign-in with a code to a contact on file; then
    // the portal reads the new number at userinfo (OIDC Core §5.1), with the token it already holds.
    const coded = await openAccountPageWithCode(srv, browser, c, '/account/profile', clock);
    const oldPhone = contactsShown(coded.text).find((x) => x.value === c.phone)!;
    expect((await post(browser, coded, '/account/profile/contacts/remove', { contact: oldPhone.id, current_password: c.password })).status).toBe(200);
    expect(await oidc.fetchUserInfo(config, tokens.access_token, sub)).toMatchObject({ phone_number: freshE164, phone_number_verified: true });
    // Adding a contact ends nothing by itself: the portal's session carries on.
    const silent = await browser.get((await authRequest(config, portal, { scope: 'openid phone', prompt: 'none' })).url.href);
    expect(new URL(silent.location!).searchParams.get('code')).toBeTruthy();
    page = await browser.get(url('/account/profile'));
    expect(page.status).toBe(200);
  });

  it('the same number twice is refused without a code', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/profile', clock);
    const [before] = counts(c.phone);
    const again = await post(browser, page, '/account/profile/contacts/add', { phone: `0${c.phone.slice(3)}`, current_password: c.password });
    expect(again.status).toBe(400);
    expect(alertText(again.text)).toBe('Liên hệ này đã có trong tài khoản.');
    expect(messagesTo(srv, c.phone)).toHaveLength(before!);
  });
});

describe('a contact typed at registration and never proven', () => {
  it('is listed as unverified, is not a contact recovery can rely on (the phone stays the last verified one), cannot receive notices until proven, and is proven by a code', async () => {
    // Registered online: the phone proven by its code, the e-mail address only typed.
    seq += 1;
    const n = String(seq).padStart(4, '0');
    const d = { pid: `00109013${n}`, full_name: 'Nguyễn Văn An', birthdate: '1990-05-17', gender: 'male' as const, phone: `09123${n}9`.slice(0, 10), email: `dang.ky.${n}@example.vn` };
    const phone = `+84${d.phone.slice(1)}`;
    registryAdd(srv, { pid: d.pid, full_name: d.full_name, birthdate: d.birthdate, gender: d.gender });
    const password = 'sông Hồng chảy qua Hà Nội mùa thu';
    const reg = new Browser(srv.issuer);
    let step = await reg.get(url('/register'));
    const sent = messagesTo(srv, phone).length;
    step = await submit(reg, step, { pid: d.pid, full_name: d.full_name, birthdate: d.birthdate, gender: d.gender, phone: d.phone, email: d.email });
    step = await submit(reg, step, { code: await nextCode(srv, phone, sent) });
    step = await submit(reg, step, { password, password_confirm: password });
    expect(step.status).toBe(200);
    const person = (await srv.system.store.persons.findByPid(d.pid))!;
    const c = { id: person.id, pid: d.pid, password, phone };

    const browser = new Browser(srv.issuer);
    // Removing a contact and choosing where notices go need a sign-in with a code to a contact on file.
    let page = await openAccountPageWithCode(srv, browser, c, '/account/profile', clock);
    const [shownPhone, shownMail] = contactsShown(page.text);
    expect(shownPhone).toMatchObject({ value: phone, verified: true });
    expect(shownMail).toMatchObject({ value: d.email, verified: false });
    expect(page.text).toContain('Chưa xác minh: chưa dùng được để khôi phục tài khoản');
    // Only verified contacts are offered for notices.
    expect(page.text).not.toContain(`name="notice" value="${shownMail!.id}"`);

    // The phone is the only verified contact: it cannot go (the unverified address does not count).
    const lastOne = await post(browser, page, '/account/profile/contacts/remove', { contact: shownPhone!.id, current_password: password });
    expect(lastOne.status).toBe(400);
    expect(alertText(lastOne.text)).toContain('Không thể gỡ liên hệ đã xác minh cuối cùng');
    expect((await stored(c.id)).contacts.map((x) => x.value)).toEqual([phone, d.email]);

    // Notices to an address nobody proved: refused, even posted by hand.
    const unproven = await post(browser, page, '/account/profile/contacts/notice', { notice: shownMail!.id, current_password: password });
    expect(unproven.status).toBe(400);
    expect(alertText(unproven.text)).toBe('Chỉ chọn được liên hệ đã xác minh.');
    expect((await stored(c.id)).noticeContact).toBeNull();

    // Proving it: the password again, a code to the address, the code.
    const [phoneBefore, mailBefore] = counts(phone, d.email);
    const codePage = await post(browser, page, '/account/profile/contacts/verify', { contact: shownMail!.id, current_password: password });
    expect(codePage.status).toBe(200);
    expect(codePage.text).toContain('name="code"');
    const code = await nextCode(srv, d.email, mailBefore!);
    const proven = await post(browser, codePage, '/account/profile/contacts/code', { code });
    expect(proven.status).toBe(200);
    expect((await stored(c.id)).contacts.map((x) => [x.value, x.verified])).toEqual([[phone, true], [d.email, true]]);
    expect(contactsShown(proven.text).map((x) => x.verified)).toEqual([true, true]);
    // Told to both contacts on file before (the address itself was one of them), without the code.
    const told = [...newSince(phone, phoneBefore!), ...newSince(d.email, mailBefore!).filter((m) => codeOf(m) === undefined)];
    expect(told).toHaveLength(2);
    for (const m of told) {
      expect(m.text).toContain('đã được xác minh trên tài khoản định danh');
      expect(m.text).not.toContain(code);
    }

    // Now a verified contact can be chosen for notices; a sign-in from a new browser is told there only.
    page = await browser.get(url('/account/profile'));
    const chosen = await post(browser, page, '/account/profile/contacts/notice', { notice: shownPhone!.id, current_password: password });
    expect(chosen.status).toBe(200);
    expect(statusText(chosen.text)).toBe('Đã lưu nơi nhận thông báo.');
    expect((await stored(c.id)).noticeContact).toBe(shownPhone!.id);
    expect(chosen.text).toContain(`name="notice" value="${shownPhone!.id}" checked`);
    const [phoneNow, mailNow] = counts(phone, d.email);
    const elsewhere = await openAccountPage(srv, new Browser(srv.issuer), c, '/account', clock);
    expect(elsewhere.status).toBe(200);
    expect(newSince(phone, phoneNow!).filter((m) => m.text.includes('/account/not-me/'))).toHaveLength(1);
    expect(newSince(d.email, mailNow!)).toHaveLength(0);
  });
});

describe('removing a contact', () => {
  it('removes one with the password, tells every contact on file before (the removed one too), and never the last verified one', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPageWithCode(srv, browser, c, '/account/profile', clock);
    const [phone, mail] = contactsShown(page.text);
    const [phoneBefore, mailBefore] = counts(c.phone, c.email);

    const wrong = await post(browser, page, '/account/profile/contacts/remove', { contact: mail!.id, current_password: 'mật khẩu sai hoàn toàn rồi' });
    expect(wrong.status).toBe(400);
    expect((await stored(c.id)).contacts).toHaveLength(2);

    const removed = await post(browser, page, '/account/profile/contacts/remove', { contact: mail!.id, current_password: c.password });
    expect(removed.status).toBe(200);
    expect(statusText(removed.text)).toBe('Đã gỡ liên hệ. Các liên hệ trước đó đã được thông báo.');
    const after = await stored(c.id);
    expect(after.contacts.map((x) => x.value)).toEqual([c.phone]);
    // The mirrored field portals read goes with it.
    expect(after.email).toBeNull();
    expect(contactsShown(removed.text).map((x) => x.value)).toEqual([c.phone]);
    for (const [to, before] of [[c.phone, phoneBefore!], [c.email, mailBefore!]] as const) {
      const told = newSince(to, before);
      expect({ to, n: told.length }).toEqual({ to, n: 1 });
      expect(told[0]!.text).toContain('đã bị gỡ khỏi tài khoản định danh');
      expect(told[0]!.text).not.toContain(c.pid);
    }

    // The phone is now the last verified contact: refused, kept, nobody told.
    const [phoneNow] = counts(c.phone);
    const last = await post(browser, removed, '/account/profile/contacts/remove', { contact: phone!.id, current_password: c.password });
    expect(last.status).toBe(400);
    expect(alertText(last.text)).toContain('Không thể gỡ liên hệ đã xác minh cuối cùng');
    expect((await stored(c.id)).contacts.map((x) => x.value)).toEqual([c.phone]);
    expect(messagesTo(srv, c.phone)).toHaveLength(phoneNow!);

    // A contact that is not on this account (gone, or someone else's): 404.
    const gone = await post(browser, removed, '/account/profile/contacts/remove', { contact: mail!.id, current_password: c.password });
    expect(gone.status).toBe(404);
  });

  it('"also sign out everywhere else" ends the other browser\'s session and keeps this one; without it, the other browser stays', async () => {
    const c = await citizen();
    const other = new Browser(srv.issuer);
    expect((await openAccountPage(srv, other, c, '/account/profile', clock)).status).toBe(200);
    const browser = new Browser(srv.issuer);
    const page = await openAccountPageWithCode(srv, browser, c, '/account/profile', clock);
    const [phone, mail] = contactsShown(page.text);

    const kept = await post(browser, page, '/account/profile/contacts/notice', { notice: phone!.id, current_password: c.password });
    expect(kept.status).toBe(200);
    expect((await other.get(url('/account/profile'))).text).toContain('data-testid="contact"');

    const ended = await post(browser, kept, '/account/profile/contacts/remove', { contact: mail!.id, current_password: c.password, end_others: 'on' });
    expect(ended.status).toBe(200);
    const otherNow = await other.get(url('/account/profile'));
    expect(otherNow.text).toContain('name="identifier"');
    expect(otherNow.text).not.toContain('data-testid="contact"');
    const mine = await browser.get(url('/account/profile'));
    expect(mine.text).toContain('data-testid="contact"');
    expect(await srv.system.store.oidc.listByAccount('Session', c.id)).toHaveLength(1);
  });
});

describe('the forms of /account/profile', () => {
  it('refuse a post without the CSRF token (403), from another origin (403), with an operator-shaped field (400), without a session (401); nothing is sent', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/profile', clock);
    const csrf = hiddenField(page.text, '_csrf');
    const target = '+84399000111';
    const action = url('/account/profile/contacts/add');

    const noToken = await browser.post(action, { phone: target, current_password: c.password });
    expect(noToken.status).toBe(403);
    const foreign = await browser.post(action, { _csrf: csrf, phone: target, current_password: c.password }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(foreign.status).toBe(403);
    const injected = await browser.post(action, { _csrf: csrf, 'phone[$ne]': 'x', current_password: c.password });
    expect(injected.status).toBe(400);
    const anonymous = await new Browser(srv.issuer).post(action, { _csrf: csrf, phone: target, current_password: c.password });
    expect(anonymous.status).toBe(401);
    // None of them asked for the password, sent a code or changed anything.
    expect(messagesTo(srv, target)).toHaveLength(0);
    expect(await auditOf(srv, 'REAUTHENTICATION_FAILED', c.id)).toHaveLength(0);
    expect((await stored(c.id)).contacts.map((x) => x.value)).toEqual([c.phone, c.email]);
  });

  it('a change more than 5 minutes after signing in goes through a new sign-in first, and is not made', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/profile', clock);
    now += 6 * MINUTE;
    const target = '+84399000222';
    const reauth = await post(browser, page, '/account/profile/contacts/add', { phone: target, current_password: c.password });
    expect(reauth.text).toContain('name="identifier"');
    const back = await submit(browser, reauth, { identifier: c.pid, password: c.password });
    expect(back.status).toBe(200);
    expect(back.text).toContain('Vì an toàn, bạn vừa đăng nhập lại.');
    expect((await stored(c.id)).contacts).toHaveLength(2);
    expect(messagesTo(srv, target)).toHaveLength(0);
  });

  it('removing a contact with a sign-in that used the password alone asks for a code to a contact on file first, and removes nothing', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/profile', clock);
    const [, mail] = contactsShown(page.text);
    const reauth = await post(browser, page, '/account/profile/contacts/remove', { contact: mail!.id, current_password: c.password });
    expect(reauth.text).toContain('name="identifier"');
    const second = await submit(browser, reauth, { identifier: c.pid, password: c.password });
    // The second step: a code to a contact on file (never one added with the password alone).
    expect(second.text).toContain('/send-code');
    expect((await stored(c.id)).contacts).toHaveLength(2);
  });
});
