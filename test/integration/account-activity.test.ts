/**
 * /account/activity and the new-browser notice, black-box.
 *
 * - The person's own history: six months, newest first, 20 a page, read from the store's own index
 *   (`activity`), with the portal, level, device and network of each sign-in — the network coarse,
 *   never the full address (Decree 356/2025/ND-CP: no more personal data than the purpose needs) —
 *   and never a secret. An operator is shown as a role, never by name, and never with their
 *   free-text reason (the subject's right of access covers their data, not the operator's notes).
 * - "This wasn't me" ends every session, grant and token, the browser it was pressed in too, tells
 *   the portals by back-channel logout, makes the password unusable until recovery replaces it and
 *   flags the account for operators (NIST SP 800-63B §6.1.2.3: a compromised authenticator is
 *   replaced through recovery).
 * - A sign-in from a browser not seen on the account is told to the person (ASVS 5.0 6.3.5), with a
 *   single-use "this wasn't me" link that works without signing in; its token is a credential and is
 *   never written to a log (ASVS 5.0 16.2.5).
 * - Lines older than 183 days are not shown and are purged.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, decodeEntities, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, discover, type Portal } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';
import { MINUTE, startWithPortal } from '../helpers/pages.js';
import {
  enrolAppInAccount, heading, linkOf, messagesTo, nextCode, auditOf, openAccountPage, portalVisits, selfServiceSteps, sleep,
} from './selfservice-support.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const DAY = 24 * 60 * MINUTE;
const PORTAL_NAME = 'Cổng Dịch vụ công quốc gia';
/** A phone's browser and a desktop's, as their User-Agent headers say. */
const ANDROID_CHROME = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';
const WINDOWS_FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';

let now = Date.now();
const logLines: string[] = [];
let srv: TestServer;
let receiver: LogoutReceiver;
let portal: Portal, config: oidc.Configuration;
beforeAll(async () => {
  receiver = await new LogoutReceiver().start();
  ({ srv } = await startWithPortal({ now: () => now, logSink: (line) => { logLines.push(line); } }));
  portal = await srv.addPortal({ name: PORTAL_NAME, backchannelLogoutUri: receiver.url('/national') });
  config = await discover(srv.issuer, portal);
});
afterAll(async () => {
  await srv.close();
  await receiver.close();
});
// Every test in a new hour: codes and notices have hourly allowances per destination.
beforeEach(() => { now += 61 * MINUTE; });

const { url, submit } = selfServiceSteps(() => srv);
const clock = { now: () => now, advance: () => { now += MINUTE; } };
const { atPortal, silently, accountArea } = portalVisits(() => srv, () => ({ config, portal }), clock);
const tick = () => { now += 1000; };

/** A browser that says it is `ua` (the device a notice and the history show). */
function browserAs(ua?: string): Browser {
  if (!ua) return new Browser(srv.issuer);
  return new Browser(srv.issuer, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'user-agent': ua } }),
  });
}

let seq = 0;
interface Citizen { id: string; pid: string; password: string; phone: string; email: string }
async function citizen(): Promise<Citizen> {
  seq += 1;
  const n = String(seq).padStart(4, '0');
  const phone = `+8491250${n}`;
  const email = `hoat.dong.${n}@example.vn`;
  const p = await srv.addPerson({ pid: `00109025${n}`, phone, email, contactsVerified: true });
  return { ...p, phone, email };
}

interface Row { kind: string; what: string; iso: string; detail: string; notMe?: string; text: string }
/** The history rows of a page (data-testid="activity-row"), as a person reads them. */
function rowsOf(html: string): Row[] {
  return html.split('data-testid="activity-row"').slice(1).map((chunk) => {
    const li = chunk.slice(0, chunk.indexOf('</li>'));
    return {
      kind: /data-event="([^"]+)"/.exec(li)![1]!,
      what: decodeEntities(/<strong>([^<]*)<\/strong>/.exec(li)![1]!),
      iso: /<time datetime="([^"]+)"/.exec(li)![1]!,
      detail: decodeEntities(/<\/time>(?: · ([^<]*))?<\/span>/.exec(li)?.[1] ?? ''),
      notMe: /name="not_me" value="([^"]+)"/.exec(li)?.[1],
      text: decodeEntities(li.replace(/<[^>]*>/g, ' ')),
    };
  });
}

const entriesOf = (personId: string, since = 0) => srv.system.store.activity.list(personId, { since, limit: 1000 });
/** The person's lines once `ready` holds of them (lines are written just after the event, in the background). */
async function entriesWhen(personId: string, ready: (events: string[]) => boolean) {
  for (const until = Date.now() + 3000; ;) {
    const entries = await entriesOf(personId);
    if (ready(entries.map((e) => e.event))) return entries;
    if (Date.now() > until) throw new Error(`the activity index never got there: ${entries.map((e) => e.event).join(', ')}`);
    await sleep(20);
  }
}

/** The rows the store's index says the page should show, in its order. */
async function expectedRows(personId: string) {
  return (await entriesOf(personId, now - 183 * DAY)).map((e) => ({ iso: new Date(e.at).toISOString(), notMe: e.event === 'SIGN_IN_COMPLETED' ? e.id : undefined }));
}

describe('the history', () => {
  it('shows a portal sign-in, a wrong password, a factor added and a consent withdrawn, newest first, each with what a person can check and no secret; the rows are the store\'s activity index', async () => {
    const c = await citizen();
    tick();
    // 1. A sign-in at the portal from a phone's browser.
    const phone = browserAs(ANDROID_CHROME);
    await atPortal(phone, c);
    tick();
    // 2. A wrong password typed in another browser.
    const wrongPassword = 'ai đó đoán mật khẩu của tôi';
    const guesser = new Browser(srv.issuer);
    const login = await guesser.get((await authRequest(config, portal)).url.href);
    expect((await submit(guesser, login, { identifier: c.pid, password: wrongPassword })).text).toContain('name="identifier"');
    tick();
    // 3. An authenticator app added in the account area (a desktop browser).
    const desk = browserAs(WINDOWS_FIREFOX);
    expect((await openAccountPage(srv, desk, c, '/account', clock)).status).toBe(200);
    tick();
    const { secret, recoveryCodes } = await enrolAppInAccount(srv, desk, c, clock);
    tick();
    // 4. The consent to the portal withdrawn there.
    const portals = await openAccountPage(srv, desk, { ...c, secret }, '/account/portals', clock);
    const withdrawn = await desk.post(url('/account/portals/revoke'), { _csrf: hiddenField(portals.text, '_csrf'), client: portal.client_id });
    expect(withdrawn.status).toBe(200);

    const page = await desk.get(url('/account/activity'));
    expect(page.status).toBe(200);
    const rows = rowsOf(page.text);
    // Exactly the lines of the store's index, in its order (the buttons name its entries' ids).
    expect(rows.map((r) => ({ iso: r.iso, notMe: r.notMe }))).toEqual(await expectedRows(c.id));
    // Newest first.
    const times = rows.map((r) => Date.parse(r.iso));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const at = (what: string, detail?: string) => rows.findIndex((r) => r.what === what && (detail === undefined || r.detail.includes(detail)));
    const order = [
      at('Rút lại sự đồng ý', PORTAL_NAME),
      at('Thêm yếu tố xác thực thứ hai'),
      at('Đăng nhập', 'Tài khoản của tôi'), // the account area itself, in the page's language
      at('Đăng nhập không thành công'),
      at('Đăng nhập', PORTAL_NAME),
      at('Tạo tài khoản'),
    ];
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);

    // The portal sign-in: the portal by name, the level, the device and the network, coarse.
    const portalSignIn = rows[at('Đăng nhập', PORTAL_NAME)]!;
    expect(portalSignIn.kind).toBe('signin');
    expect(portalSignIn.detail).toBe(`${PORTAL_NAME} · cơ bản (mật khẩu) · Chrome · Android · mạng 127.0.0.x`);
    expect(portalSignIn.notMe).toMatch(/^[0-9a-f-]{36}$/);
    // The account area's sign-in came from a browser new to the account: said so.
    expect(rows[at('Đăng nhập', 'Tài khoản của tôi')]!.detail).toContain('Firefox · Windows · mạng 127.0.0.x · trình duyệt mới');
    const failed = rows[at('Đăng nhập không thành công')]!;
    expect(failed.kind).toBe('failed');
    expect(failed.detail).toContain('mạng 127.0.0.x');
    expect(failed.notMe).toBeUndefined();
    // Only sign-ins carry "this wasn't me".
    expect(rows.filter((r) => r.notMe).map((r) => r.what)).toEqual(rows.filter((r) => r.kind === 'signin').map(() => 'Đăng nhập'));

    // Never the full address, a password, a code, a seed, the number, nor the portal's client id.
    const shown = rows.map((r) => r.text).join('\n');
    const entries = JSON.stringify(await entriesOf(c.id));
    for (const secretValue of [
      '127.0.0.1', c.password, wrongPassword, secret, c.pid, c.phone, portal.client_secret,
      ...recoveryCodes, ...recoveryCodes.map((x) => x.replaceAll('-', '')),
    ]) {
      expect({ secretValue, inPage: shown.includes(secretValue), inIndex: entries.includes(secretValue) }).toEqual({ secretValue, inPage: false, inIndex: false });
    }
    // The index keeps the portal's client id (to name it); the page shows its name instead.
    expect(shown).not.toContain(portal.client_id);
  });

  it('pages 20 at a time: the "older" link continues where the page ended, without overlap, and the last page has none', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    for (let i = 0; i < 22; i += 1) {
      await atPortal(browser, c, i === 0 ? {} : { prompt: 'login' });
      tick();
    }
    const first = await openAccountPage(srv, browser, c, '/account/activity', clock);
    const firstRows = rowsOf(first.text);
    expect(firstRows).toHaveLength(20);
    const older = /<a href="([^"]+)" data-testid="activity-next"/.exec(first.text);
    expect(older).not.toBeNull();
    const second = await browser.get(url(decodeEntities(older![1]!)));
    expect(second.status).toBe(200);
    const secondRows = rowsOf(second.text);
    expect(secondRows.length).toBeGreaterThan(0);
    expect(second.text).not.toContain('data-testid="activity-next"');
    // The way back to the newest lines.
    expect(second.text).toContain('href="/account/activity"');
    const all = [...firstRows, ...secondRows].map((r) => ({ iso: r.iso, notMe: r.notMe }));
    expect(all).toEqual(await expectedRows(c.id));
    const ids = all.map((r) => r.notMe).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Date.parse(secondRows[0]!.iso)).toBeLessThanOrEqual(Date.parse(firstRows[19]!.iso));
    // A cursor that is not one shows the first page, never an error.
    const garbage = await browser.get(url(`/account/activity?before=${encodeURIComponent('1\' OR 1=1 --')}`));
    expect(garbage.status).toBe(200);
    expect(rowsOf(garbage.text).map((r) => r.iso)).toEqual(firstRows.map((r) => r.iso));
  });

  it('shows an operator\'s lock, unlock and change of level as done by "an operator", never with the operator\'s name or reason', async () => {
    const c = await citizen();
    const operator = { operator: 'ops.nguyen.van.b', reason: 'fraud_case_suspected' };
    await srv.system.accountAdmin.lock(c.pid, operator);
    tick();
    await srv.system.accountAdmin.unlock(c.pid, { operator: operator.operator, reason: 'cleared_after_callback' });
    tick();
    const evidence = { documentType: 'cccd-chip', documentNumber: '001090998877', place: 'Bộ phận một cửa, Hà Nội' };
    await srv.system.accountAdmin.setLevel(c.pid, '2', operator, evidence);
    tick();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/activity', clock);
    const rows = rowsOf(page.text);
    for (const what of ['Tài khoản bị khóa', 'Tài khoản được mở khóa', 'Thay đổi mức định danh']) {
      const row = rows.find((r) => r.what === what);
      expect({ what, detail: row?.detail }).toEqual({ what, detail: 'thực hiện bởi cán bộ vận hành' });
    }
    const entries = JSON.stringify(await entriesOf(c.id));
    for (const hidden of [operator.operator, operator.reason, 'cleared_after_callback', evidence.documentNumber, 'nguyen']) {
      expect({ hidden, inPage: page.text.includes(hidden), inIndex: entries.includes(hidden) }).toEqual({ hidden, inPage: false, inIndex: false });
    }
  });
});

describe('one sign-in, one line', () => {
  it('a sign-in at a portal is one line of the history and one audit event, whether its consent is asked or remembered', async () => {
    const c = await citizen();
    await atPortal(new Browser(srv.issuer), c); // consent asked
    tick();
    await atPortal(new Browser(srv.issuer), c); // consent remembered
    tick();
    const page = await openAccountPage(srv, new Browser(srv.issuer), c, '/account/activity', clock);
    expect(rowsOf(page.text).filter((r) => r.what === 'Đăng nhập' && r.detail.startsWith(PORTAL_NAME))).toHaveLength(2);
    expect((await auditOf(srv, 'SIGN_IN_COMPLETED', c.id)).filter((e) => e.details.portal === portal.client_id)).toHaveLength(2);
  });
});

describe('"this wasn\'t me" on a sign-in of the history', () => {
  it('ends every session (this browser\'s too) and tells the portal, stops the password until recovery, flags the account; recovery lifts the password requirement', async () => {
    const c = await citizen();
    const intruder = browserAs(ANDROID_CHROME);
    const claims = (await atPortal(intruder, c)).claims()!;
    tick();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/activity', clock);
    const row = rowsOf(page.text).find((r) => r.notMe && r.detail.startsWith(PORTAL_NAME))!;
    const [phoneBefore, mailBefore] = [messagesTo(srv, c.phone).length, messagesTo(srv, c.email).length];
    const delivered = receiver.tokens('/national').length;

    const done = await browser.post(url('/account/activity/not-me'), { _csrf: hiddenField(page.text, '_csrf'), not_me: row.notMe! });
    expect(done.status).toBe(200);
    expect(heading(done.text)).toBe('Đã đăng xuất mọi nơi');
    expect(done.text).toContain('href="/recover"');

    // Every session ended: this browser's, and the portal's, whose portal is told.
    expect(await accountArea(browser, '/account/activity')).toBe('signin');
    expect(await silently(intruder)).toBe('login_required');
    const [logoutToken] = (await receiver.waitFor('/national', delivered + 1)).slice(delivered);
    const { payload } = await jose.jwtVerify(logoutToken!, jose.createRemoteJWKSet(new URL(`${srv.issuer}/jwks`)), {
      issuer: srv.issuer, audience: portal.client_id, typ: 'logout+jwt', currentDate: new Date(now),
    });
    expect(payload).toMatchObject({ sub: claims.sub, sid: claims.sid, events: { [EVENT]: {} } });
    expect(await srv.system.store.oidc.listByAccount('Session', c.id)).toHaveLength(0);

    // Flagged for operators, the password waiting for recovery, every contact told.
    expect(await srv.system.accountAdmin.show(c.pid)).toMatchObject({ attention: { reason: 'not_me' }, password_reset_required: true, status: 'active' });
    expect((await auditOf(srv, 'NOT_ME_REPORTED', c.id)).map((e) => e.details.via)).toEqual(['activity']);
    for (const [to, before] of [[c.phone, phoneBefore], [c.email, mailBefore]] as const) {
      expect(messagesTo(srv, to).slice(before).filter((m) => m.text.includes('không phải của bạn'))).toHaveLength(1);
    }

    // The password, right as it is, no longer signs in: the page says to use the forgotten password.
    const again = new Browser(srv.issuer);
    const login = await again.get((await authRequest(config, portal)).url.href);
    const refused = await submit(again, login, { identifier: c.pid, password: c.password });
    expect(refused.status).toBe(200);
    expect(refused.text).toContain('name="identifier"');
    expect(alertText(refused.text)).toContain('Hãy đặt mật khẩu mới bằng "Quên mật khẩu"');

    // Recovery (a code to the phone, a new password) lifts it.
    const rec = new Browser(srv.issuer);
    let step = await rec.get(url('/recover'));
    const sent = messagesTo(srv, c.phone).length;
    step = await submit(rec, step, { pid: c.pid, contact: c.phone });
    step = await submit(rec, step, { code: await nextCode(srv, c.phone, sent) });
    const newPassword = 'mưa phùn tháng hai trên phố Hàng Đào';
    step = await submit(rec, step, { password: newPassword, password_confirm: newPassword });
    expect(step.status).toBe(200);
    expect((await srv.system.accountAdmin.show(c.pid)).password_reset_required).toBe(false);
    // The operators' flag stays until one of them has looked at the account.
    expect((await srv.system.accountAdmin.show(c.pid)).attention).toMatchObject({ reason: 'not_me' });
    expect((await atPortal(new Browser(srv.issuer), { pid: c.pid, password: newPassword })).claims()!.sub).toBe(claims.sub);
  });

  it('someone else\'s entry, an entry that is not a sign-in, or no entry at all: 404, and nothing changes', async () => {
    const owner = await citizen();
    await atPortal(new Browser(srv.issuer), owner);
    const ownerEntry = (await entriesWhen(owner.id, (ev) => ev.includes('SIGN_IN_COMPLETED'))).find((e) => e.event === 'SIGN_IN_COMPLETED')!;
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/activity', clock);
    const created = (await entriesOf(c.id)).find((e) => e.event === 'ACCOUNT_CREATED')!;
    const csrf = hiddenField(page.text, '_csrf');
    for (const id of [ownerEntry.id, created.id, crypto.randomUUID()]) {
      const res = await browser.post(url('/account/activity/not-me'), { _csrf: csrf, not_me: id });
      expect({ id, status: res.status }).toEqual({ id, status: 404 });
    }
    expect((await browser.post(url('/account/activity/not-me'), { _csrf: csrf, not_me: 'not-an-id' })).status).toBe(400);
    expect(await accountArea(browser, '/account/activity')).toBe('page');
    for (const p of [owner, c]) {
      expect(await srv.system.accountAdmin.show(p.pid)).toMatchObject({ attention: null, password_reset_required: false });
      expect(await auditOf(srv, 'NOT_ME_REPORTED', p.id)).toHaveLength(0);
    }
    expect(await srv.system.store.oidc.listByAccount('Session', owner.id)).toHaveLength(1);
  });
});

describe('six months of history', () => {
  it('lines older than 183 days are not shown, and purgeExpired removes them from the index', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    await atPortal(browser, c);
    const old = await entriesWhen(c.id, (ev) => ev.includes('SIGN_IN_COMPLETED') && ev.includes('CONSENT_GRANTED'));
    expect(old.map((e) => e.event)).toEqual(expect.arrayContaining(['SIGN_IN_COMPLETED', 'CONSENT_GRANTED', 'ACCOUNT_CREATED']));

    now += 184 * DAY;
    const page = await openAccountPage(srv, new Browser(srv.issuer), c, '/account/activity', clock);
    expect(heading(page.text)).toBe('Hoạt động gần đây');
    const rows = rowsOf(page.text);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(Date.parse(r.iso)).toBeGreaterThan(now - 183 * DAY);
    const shownIds = rows.map((r) => r.notMe);
    for (const e of old) expect(shownIds).not.toContain(e.id);
    expect(rows.map((r) => r.what)).not.toContain('Tạo tài khoản');

    // The store's own clock has not reached their expiry yet: they are still there until purged.
    const before = (await entriesOf(c.id)).map((e) => e.id);
    for (const e of old) expect(before).toContain(e.id);
    expect(await srv.system.store.purgeExpired(now)).toBeGreaterThanOrEqual(old.length);
    const after = (await entriesOf(c.id)).map((e) => e.id);
    for (const e of old) expect(after).not.toContain(e.id);
    // The recent lines stay.
    expect(after.length).toBeGreaterThan(0);
    expect(after.length).toBe(before.length - old.length);
  });
});

describe('coming back in the same browser', () => {
  it('after the session at a portal idled out (30 minutes), the account area signs the person in again', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    await atPortal(browser, c);
    now += 31 * MINUTE;
    const page = await openAccountPage(srv, browser, c, '/account/activity', clock);
    expect({ status: page.status, heading: heading(page.text) }).toEqual({ status: 200, heading: 'Hoạt động gần đây' });
  });
});

describe('a sign-in from a new browser', () => {
  it('the first browser ever gets no notice; a second one does (time, device, network, one link); the same browser again gets none', async () => {
    const c = await citizen();
    const [phoneStart, mailStart] = [messagesTo(srv, c.phone).length, messagesTo(srv, c.email).length];
    const desk = browserAs(WINDOWS_FIREFOX);
    expect((await openAccountPage(srv, desk, c, '/account', clock)).status).toBe(200);
    expect(messagesTo(srv, c.phone)).toHaveLength(phoneStart);
    expect(messagesTo(srv, c.email)).toHaveLength(mailStart);

    tick();
    const signedInAt = now;
    const phone = browserAs(ANDROID_CHROME);
    await atPortal(phone, c);
    const sms = messagesTo(srv, c.phone).slice(phoneStart);
    const mail = messagesTo(srv, c.email).slice(mailStart);
    expect(sms).toHaveLength(1);
    expect(mail).toHaveLength(1);
    expect(mail[0]!.subject).toBe('Đăng nhập từ trình duyệt mới');
    const when = new Intl.DateTimeFormat('vi-VN', { dateStyle: 'short', timeStyle: 'short', timeZone: 'Asia/Ho_Chi_Minh' }).format(signedInAt);
    for (const m of [sms[0]!, mail[0]!]) {
      expect(m.text).toContain(when);
      expect(m.text).toContain('Chrome · Android');
      expect(m.text).toContain('mạng 127.0.0.x');
      expect(m.text.replace(linkOf(m)!, '«link»')).not.toContain('127.0.0.1');
      expect(m.text).not.toContain(c.pid);
      // The only URL is the link, of the form the product promises.
      expect(linkOf(m)).toMatch(new RegExp(`^${srv.issuer}/account/not-me/[A-Za-z0-9_-]{43}$`));
    }
    expect(linkOf(sms[0])).toBe(linkOf(mail[0]));
    // The browser is known by a random cookie, kept by the server only as a hash.
    const cookie = phone.cookies().get('dd_browser')!;
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(await srv.system.store.oidc.listByAccount('KnownBrowser', c.id))).not.toContain(cookie);

    // Signed out and in again in the same browser (its cookie kept): nothing new to tell.
    const end = await phone.get(url('/session/end'));
    await phone.post(url(formAction(end.text)), { xsrf: hiddenField(end.text, 'xsrf'), _csrf: hiddenField(end.text, '_csrf'), logout: 'all' });
    expect(await silently(phone)).toBe('login_required');
    tick();
    await atPortal(phone, c);
    expect(messagesTo(srv, c.phone).slice(phoneStart)).toHaveLength(1);
    expect(messagesTo(srv, c.email).slice(mailStart)).toHaveLength(1);
    // The history says which sign-in was from a new browser.
    const rows = rowsOf((await desk.get(url('/account/activity'))).text).filter((r) => r.what === 'Đăng nhập' && r.detail.startsWith(PORTAL_NAME));
    expect(rows.filter((r) => r.detail.endsWith('trình duyệt mới'))).toHaveLength(1);
    expect(rows[0]!.detail.endsWith('trình duyệt mới')).toBe(false);
  });

  it('the link: its page changes nothing; its button ends everything and flags the account; then it no longer works, nor does any other token; it never reaches a log', async () => {
    const c = await citizen();
    const desk = browserAs(WINDOWS_FIREFOX);
    await openAccountPage(srv, desk, c, '/account', clock);
    tick();
    const phoneBefore = messagesTo(srv, c.phone).length;
    const intruder = browserAs(ANDROID_CHROME);
    const claims = (await atPortal(intruder, c)).claims()!;
    const link = linkOf(messagesTo(srv, c.phone).slice(phoneBefore).find((m) => m.text.includes('/account/not-me/')))!;
    const token = new URL(link).pathname.split('/').pop()!;
    const path = new URL(link).pathname;

    // Opened (an SMS app's preview opens links too): a page with a button, and nothing done.
    const owner = new Browser(srv.issuer);
    for (let i = 0; i < 2; i += 1) {
      const opened = await owner.get(link);
      expect(opened.status).toBe(200);
      expect(heading(opened.text)).toBe('Lần đăng nhập này không phải của bạn?');
      expect(opened.text).toContain('Chrome · Android');
      expect(opened.text).toContain('127.0.0.x');
      expect(formAction(opened.text)).toBe(path);
      expect(opened.headers.get('cache-control')).toContain('no-store');
    }
    const page = await owner.get(link);
    expect(await silently(intruder)).toBe('code');
    expect(await accountArea(desk, '/account/activity')).toBe('page');
    expect(await srv.system.accountAdmin.show(c.pid)).toMatchObject({ attention: null, password_reset_required: false });

    // The button's form is checked: another site's post, or one without the page's token, does nothing.
    expect((await owner.post(link, { _csrf: hiddenField(page.text, '_csrf') }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await owner.post(link, {})).status).toBe(403);
    expect(await srv.system.accountAdmin.show(c.pid)).toMatchObject({ attention: null, password_reset_required: false });

    // Pressed, without being signed in: every session ends, the portal is told, the account is flagged.
    const delivered = receiver.tokens('/national').length;
    const [phoneNow, mailNow] = [messagesTo(srv, c.phone).length, messagesTo(srv, c.email).length];
    const pressed = await owner.post(link, { _csrf: hiddenField(page.text, '_csrf') });
    expect(pressed.status).toBe(200);
    expect(heading(pressed.text)).toBe('Đã đăng xuất mọi nơi');
    expect(await silently(intruder)).toBe('login_required');
    expect(await accountArea(desk, '/account/activity')).toBe('signin');
    const [logoutToken] = (await receiver.waitFor('/national', delivered + 1)).slice(delivered);
    expect(jose.decodeJwt(logoutToken!)).toMatchObject({ sub: claims.sub, sid: claims.sid });
    const flagged = await srv.system.accountAdmin.show(c.pid);
    expect(flagged).toMatchObject({ attention: { reason: 'not_me' }, password_reset_required: true });
    expect((await auditOf(srv, 'NOT_ME_REPORTED', c.id)).map((e) => e.details.via)).toEqual(['notice']);
    const told = messagesTo(srv, c.phone).length;
    expect(told).toBe(phoneNow + 1);
    expect(messagesTo(srv, c.email)).toHaveLength(mailNow + 1);

    // Used: pressing again, or opening it, says it no longer works, and does nothing more.
    const twice = await owner.post(link, { _csrf: hiddenField(page.text, '_csrf') });
    expect({ status: twice.status, heading: heading(twice.text) }).toEqual({ status: 200, heading: 'Liên kết không còn hiệu lực' });
    const reopened = await new Browser(srv.issuer).get(link);
    expect({ status: reopened.status, heading: heading(reopened.text) }).toEqual({ status: 200, heading: 'Liên kết không còn hiệu lực' });
    // Unknown and malformed tokens: the same page, never an error.
    const unknown = crypto.randomBytes(32).toString('base64url');
    for (const t of [unknown, 'abc', 'A'.repeat(44), encodeURIComponent('\'"><script>'), 'x'.repeat(600), `${token.slice(0, 42)}!`]) {
      const got = await new Browser(srv.issuer).get(url(`/account/not-me/${t}`));
      expect({ t, status: got.status, heading: heading(got.text) }).toEqual({ t, status: 200, heading: 'Liên kết không còn hiệu lực' });
      const posted = await new Browser(srv.issuer).post(url(`/account/not-me/${t}`), { _csrf: 'x' });
      expect({ t, status: posted.status, heading: heading(posted.text) }).toEqual({ t, status: 200, heading: 'Liên kết không còn hiệu lực' });
    }
    await sleep(50);
    expect(await auditOf(srv, 'NOT_ME_REPORTED', c.id)).toHaveLength(1);
    expect(messagesTo(srv, c.phone)).toHaveLength(told);
    expect((await srv.system.accountAdmin.show(c.pid)).attention).toEqual(flagged.attention);
  });

  it('the link\'s token never reaches a log line: the access log writes the route (ASVS 5.0 16.2.5)', async () => {
    const c = await citizen();
    await openAccountPage(srv, browserAs(WINDOWS_FIREFOX), c, '/account', clock);
    tick();
    const before = messagesTo(srv, c.phone).length;
    await atPortal(browserAs(ANDROID_CHROME), c);
    const link = linkOf(messagesTo(srv, c.phone).slice(before).find((m) => m.text.includes('/account/not-me/')))!;
    const token = new URL(link).pathname.split('/').pop()!;
    const from = logLines.length;
    const owner = new Browser(srv.issuer);
    const page = await owner.get(link);
    await owner.post(link, { _csrf: hiddenField(page.text, '_csrf') });
    const lines = logLines.slice(from);
    // The requests were logged (the check below looks at the lines that matter)...
    expect(lines.filter((l) => l.includes('"msg":"request"') && l.includes('/account/not-me/'))).toHaveLength(2);
    // ...and none of them, nor any other line, carries the token.
    expect(logLines.filter((l) => l.includes(token))).toEqual([]);
  });
});
