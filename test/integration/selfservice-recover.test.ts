/**
 * Self-service recovery (/recover) and the account reset for a lost second factor, black-box:
 * answers that do not tell whether the details match an account; a new password that ends every
 * session and refresh token; the second factor still required; the reset's wait, its cancel link
 * and its link to the verified phone, with the injected clock and the job runner.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import { type TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, type Portal } from '../helpers/rp.js';
import { LOW, MINUTE, SUBSTANTIAL, shownRecoveryCodes, startWithPortal, totpCode, totpSecret } from '../helpers/pages.js';
import { form, rawPost, sameOrigin } from './pages-support.js';
import { endpoints, tokenRequest } from './protocol-support.js';
import {
  codeOf, heading, linkOf, messagesTo, nextCode, normalisePage, redeemAt, selfServiceSteps, sleep, throughPortalPages,
} from './selfservice-support.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration;
let tokenEndpoint: string;
beforeAll(async () => {
  ({ srv, portal, config } = await startWithPortal({ now: () => now, env: { DINHDANH_ACCOUNT_RESET_WAIT: '1h' } }));
  // A portal that holds refresh tokens (what a reset must take away).
  portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
  config = await discover(srv.issuer, portal);
  tokenEndpoint = (await endpoints(srv.issuer)).token;
});
afterAll(async () => { await srv.close(); });
// Every test in a new hour: the limits (starts per number and network, codes per contact, notices
// per destination) are the test's own.
beforeEach(() => { now += 61 * MINUTE; });

const { url, submit, post, testLink, openResetLink } = selfServiceSteps(() => srv);
const advance = () => { now += MINUTE; };
const steps = { now: () => now, advance };
const NEW_PASSWORD = 'đường về quê ngoại mùa lúa chín vàng';

let seq = 0;
interface Citizen { id: string; pid: string; password: string; phone: string; email: string; secret?: string; recoveryCodes?: string[] }
async function citizen(extra: { level?: '1' | '2' } = {}): Promise<Citizen> {
  seq += 1;
  const n = String(seq).padStart(4, '0');
  const phone = `+8491440${n}`;
  const email = `cong.dan.${n}@example.vn`;
  // Contacts an operator proved at the counter: only verified contacts recover an account.
  const p = await srv.addPerson({ pid: `00109044${n}`, phone, email, contactsVerified: true, ...(extra.level ? { level: extra.level } : {}) });
  return { ...p, phone, email };
}

/** Signs in at the portal in a new browser (enrolling an app when asked); returns the browser and the tokens. */
async function signInAtPortal(c: Citizen, acr?: string, password = c.password) {
  const browser = new Browser(srv.issuer);
  const req = await authRequest(config, portal, acr ? { acr_values: acr } : {});
  const held = { pid: c.pid, password, secret: c.secret };
  let page = await browser.get(req.url.href);
  // Keep the recovery codes the enrolment shows.
  page = await throughPortalPages(srv, browser, page, { ...steps, held });
  c.secret = held.secret;
  return { browser, req, page };
}

async function signedInAtPortal(c: Citizen, acr?: string, password = c.password) {
  const { browser, req, page } = await signInAtPortal(c, acr, password);
  const tokens = await redeemAt(config, req, page, portal);
  return { browser, tokens };
}

/** Enrols an authenticator app through a sign-in at substantial; keeps the seed and the recovery codes. */
async function withApp(c: Citizen): Promise<void> {
  const browser = new Browser(srv.issuer);
  const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
  let page = await browser.get(req.url.href);
  page = await submit(browser, page, { identifier: c.pid, password: c.password });
  expect(page.text).toContain('data-testid="totp-secret"');
  c.secret = totpSecret(page.text);
  page = await submit(browser, page, { code: await totpCode(c.secret, now) });
  c.recoveryCodes = shownRecoveryCodes(page.text);
  expect(c.recoveryCodes.length).toBeGreaterThan(0);
  page = await throughPortalPages(srv, browser, page, steps);
  expect(page.location).toContain('code=');
}

async function refresh(refreshToken: string) {
  const res = await tokenRequest(tokenEndpoint, { client_id: portal.client_id, client_secret: portal.client_secret }, { grant_type: 'refresh_token', refresh_token: refreshToken });
  return res.status === 200 ? 'ok' : String(res.body.error);
}

async function accountArea(browser: Browser): Promise<'page' | 'signin'> {
  const res = await browser.get(url('/account/security'));
  expect(res.status).toBe(200);
  return res.text.includes('name="identifier"') ? 'signin' : 'page';
}

async function openRecover(browser = new Browser(srv.issuer)): Promise<{ browser: Browser; page: Response }> {
  const page = await browser.get(url('/recover'));
  expect(page.status).toBe(200);
  expect(page.text).toContain('name="contact"');
  return { browser, page };
}

/** /recover → the code page; `contact` as typed. */
async function start(pid: string, contact: string) {
  const { browser, page } = await openRecover();
  const codePage = await submit(browser, page, { pid, contact });
  return { browser, codePage };
}

/** /recover with a contact on file, and the code sent to it: the page after the code. */
async function throughCode(c: Citizen, contact: string = c.phone): Promise<{ browser: Browser; page: Response; codePage: Response }> {
  const to = contact.startsWith('0') ? `+84${contact.slice(1)}` : contact;
  const before = messagesTo(srv, to).length;
  const { browser, codePage } = await start(c.pid, contact);
  expect(codePage.status).toBe(200);
  expect(codePage.text).toContain('name="code"');
  const code = await nextCode(srv, to, before);
  const page = await submit(browser, codePage, { code });
  expect(page.status).toBe(200);
  return { browser, page, codePage };
}

describe('the start answers alike whether or not the details match', () => {
  it('matching, unknown number, wrong contact, malformed-but-valid contact: same status and page; a message only for the match', async () => {
    const c = await citizen();
    const stranger = '001090449999';
    const phoneBefore = messagesTo(srv, c.phone).length;
    const mailBefore = messagesTo(srv, c.email).length;
    const wrongPhone = '+84914499999';
    const matched = await start(c.pid, c.phone.replace('+84', '0'));
    const unknown = await start(stranger, c.phone.replace('+84', '0'));
    const wrongContact = await start(c.pid, wrongPhone);
    const wrongEmail = await start(c.pid, 'someone.else@example.vn');
    const matchedEmail = await start(c.pid, c.email.toUpperCase());
    // A locked account answers like any other, and gets no code.
    const locked = await citizen();
    await srv.system.accountAdmin.lock(locked.pid, { operator: 'ops.test', reason: 'locked for the recovery test' });
    const lockedBefore = messagesTo(srv, locked.phone).length;
    const lockedStart = await start(locked.pid, locked.phone);
    // So does a contact on file that was never shown to be the person's (typed by an operator, not verified).
    seq += 1;
    const unverifiedPhone = `+8491440${String(seq).padStart(4, '0')}`;
    const unverified = await srv.addPerson({ pid: `00109044${String(seq).padStart(4, '0')}`, phone: unverifiedPhone });
    const unverifiedStart = await start(unverified.pid, unverifiedPhone);
    const all = [matched, unknown, wrongContact, wrongEmail, matchedEmail, lockedStart, unverifiedStart];
    for (const r of all) {
      expect(r.codePage.status).toBe(200);
      expect(r.codePage.text).toContain('name="code"');
      expect(r.codePage.headers.get('set-cookie') === null).toBe(matched.codePage.headers.get('set-cookie') === null);
    }
    const ref = normalisePage(matched.codePage.text);
    for (const r of all.slice(1)) expect(normalisePage(r.codePage.text)).toBe(ref);
    expect(alertText(matched.codePage.text)).toBeNull();

    // The matching start's code arrives; nothing goes to the contacts that matched nothing.
    const code = await nextCode(srv, c.phone, phoneBefore);
    await nextCode(srv, c.email, mailBefore);
    await sleep(300);
    expect(messagesTo(srv, c.phone).length).toBe(phoneBefore + 1);
    expect(messagesTo(srv, wrongPhone)).toHaveLength(0);
    expect(messagesTo(srv, locked.phone)).toHaveLength(lockedBefore);
    expect(messagesTo(srv, unverifiedPhone)).toHaveLength(0);
    expect(messagesTo(srv, 'someone.else@example.vn')).toHaveLength(0);
    expect(messagesTo(srv, c.email).length).toBe(mailBefore + 1);

    // The unknown number's flow never accepts a code, not even the one sent to the phone.
    const decoy = await submit(unknown.browser, unknown.codePage, { code });
    const wrong = await submit(matched.browser, matched.codePage, { code: code === '000000' ? '111111' : '000000' });
    expect(decoy.status).toBe(wrong.status);
    expect(normalisePage(decoy.text)).toBe(normalisePage(wrong.text));
    expect(decoy.text).not.toContain('name="password"');
    // The right code in the matching flow goes on.
    const ok = await submit(matched.browser, wrong, { code });
    expect(ok.text).toContain('name="password_confirm"');
  });

  it('contacts count as verified only when the operator says they were proven (accounts add --contacts-verified)', async () => {
    seq += 1;
    const n = String(seq).padStart(4, '0');
    const plain = await srv.addPerson({ pid: `00109044${n}`, phone: `+8491440${n}`, email: `a.${n}@example.vn` });
    expect(await srv.system.store.persons.findById(plain.id)).toMatchObject({ phoneVerified: false, emailVerified: false });
    seq += 1;
    const m = String(seq).padStart(4, '0');
    const proven = await srv.addPerson({ pid: `00109044${m}`, phone: `+8491440${m}`, contactsVerified: true });
    // Both contacts on file are marked (the harness gives every person an e-mail).
    expect(await srv.system.store.persons.findById(proven.id)).toMatchObject({ phoneVerified: true, emailVerified: true, email: 'an@example.vn' });
  });

  it('a number that is not 12 digits, or a contact that is neither a phone nor an address: 400 with the field marked', async () => {
    const { browser, page } = await openRecover();
    const badPid = await submit(browser, page, { pid: '12345', contact: '0912345678' });
    expect(badPid.status).toBe(400);
    expect(badPid.text).toContain('pid-error');
    const badContact = await submit(browser, page, { pid: '001090440001', contact: 'not a contact' });
    expect(badContact.status).toBe(400);
    expect(badContact.text).toContain('contact-error');
  });
});

describe('recovery without a second factor', () => {
  it('new password works, the old one does not, every session and refresh token from before ends, contacts are told', async () => {
    const c = await citizen();
    const other = await signedInAtPortal(c);
    expect(other.tokens.refresh_token).toBeTruthy();
    expect(await accountArea(other.browser)).toBe('page');
    advance();

    const { browser, page } = await throughCode(c);
    expect(page.text).toContain('name="password_confirm"');
    expect(page.text).not.toContain('data-testid="totp-secret"');
    // The same password as before: refused, with the reason.
    const same = await submit(browser, page, { password: c.password, password_confirm: c.password });
    expect(same.status).toBe(400);
    expect(alertText(same.text)).toBe('Mật khẩu mới phải khác mật khẩu cũ.');
    const mismatch = await submit(browser, same, { password: NEW_PASSWORD, password_confirm: `${NEW_PASSWORD}!` });
    expect(mismatch.status).toBe(400);
    const short = await submit(browser, mismatch, { password: 'ngắn quá', password_confirm: 'ngắn quá' });
    expect(short.status).toBe(400);
    const phoneBefore = messagesTo(srv, c.phone).length;
    const mailBefore = messagesTo(srv, c.email).length;
    const done = await submit(browser, short, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(heading(done.text)).toBe('Đã đổi mật khẩu');
    // Told on every contact, with no code and no link.
    for (const [to, before] of [[c.phone, phoneBefore], [c.email, mailBefore]] as const) {
      const notices = messagesTo(srv, to).slice(before);
      expect(notices).toHaveLength(1);
      expect(notices[0]!.text).toMatch(/đặt lại/);
      expect(codeOf(notices[0])).toBeUndefined();
      expect(linkOf(notices[0])).toBeUndefined();
    }
    // The old session: the account area asks for a sign-in; the old refresh token is refused.
    expect(await accountArea(other.browser)).toBe('signin');
    expect(await refresh(other.tokens.refresh_token!)).toBe('invalid_grant');
    // The old password fails; the new one signs in.
    advance();
    const old = await signInAtPortal(c);
    expect(old.page.status).toBe(200);
    expect(old.page.text).toContain('name="identifier"');
    expect(old.page.location).toBeNull();
    const fresh = await signedInAtPortal(c, undefined, NEW_PASSWORD);
    expect(fresh.tokens.claims()!.acr).toBe(LOW);
    expect(await refresh(fresh.tokens.refresh_token!)).toBe('ok');
    // The finished flow cannot set a password again.
    const again = await post(browser, page, '/recover/password', { password: `${NEW_PASSWORD} 2`, password_confirm: `${NEW_PASSWORD} 2` });
    expect(again.status).toBe(400);
  });

  it('from a portal\'s sign-in page: back to that sign-in, where the new password works', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal);
    const login = await browser.get(req.url.href);
    const recover = await browser.get(testLink(login.text, 'recover-link'));
    expect(recover.status).toBe(200);
    expect(recover.text).toContain('name="contact"');
    const before = messagesTo(srv, c.email).length;
    const codePage = await submit(browser, recover, { pid: c.pid, contact: c.email });
    const pw = await submit(browser, codePage, { code: await nextCode(srv, c.email, before) });
    const done = await submit(browser, pw, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    const back = /<a href="([^"]*\/interaction\/[^"]+)"/.exec(done.text)?.[1];
    expect(back).toBeTruthy();
    advance();
    const signin = await browser.get(url(back!));
    expect(signin.text).toContain('name="identifier"');
    const res = await throughPortalPages(srv, browser, signin, { ...steps, held: { pid: c.pid, password: NEW_PASSWORD } });
    expect((await redeemAt(config, req, res, portal)).claims()!.acr).toBe(LOW);
  });

  it('the code expires after 5 minutes and allows 5 tries', async () => {
    const c = await citizen();
    const before = messagesTo(srv, c.phone).length;
    const { browser, codePage } = await start(c.pid, c.phone);
    const code = await nextCode(srv, c.phone, before);
    now += 6 * MINUTE;
    const late = await submit(browser, codePage, { code });
    expect(late.status).toBe(400);
    expect(late.text).not.toContain('name="password"');
    now += MINUTE;
    const before2 = messagesTo(srv, c.phone).length;
    const second = await start(c.pid, c.phone);
    const code2 = await nextCode(srv, c.phone, before2);
    let res = second.codePage;
    for (let i = 0; i < 5; i += 1) {
      res = await submit(second.browser, res, { code: code2 === '999999' ? '888888' : '999999' });
      expect(res.status).toBe(400);
    }
    const right = await submit(second.browser, res, { code: code2 });
    expect(right.status).toBe(400);
    expect(right.text).not.toContain('name="password"');
  });

  it('limits: a 6th start for one number within an hour is 429 with Retry-After; a second code to one contact within a minute too', async () => {
    const c = await citizen();
    const first = await start(c.pid, c.phone);
    expect(first.codePage.status).toBe(200);
    const soon = await start(c.pid, c.phone);
    expect(soon.codePage.status).toBe(429);
    expect(Number(soon.codePage.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(soon.codePage.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    for (let i = 0; i < 3; i += 1) {
      now += MINUTE + 1000;
      expect((await start(c.pid, c.phone)).codePage.status).toBe(200);
    }
    now += MINUTE + 1000;
    const sixth = await start(c.pid, c.phone);
    expect(sixth.codePage.status).toBe(429);
    expect(Number(sixth.codePage.headers.get('retry-after'))).toBeGreaterThan(60);
    // An unknown number is limited the same way (nothing tells them apart).
    for (let i = 0; i < 5; i += 1) {
      now += MINUTE + 1000;
      expect((await start('001090448888', `+8491448800${i}`)).codePage.status).toBe(200);
    }
    now += MINUTE + 1000;
    expect((await start('001090448888', '+84914488009')).codePage.status).toBe(429);
  });

  it('starts naming a phone with numbers that match nothing use up none of its codes', async () => {
    const c = await citizen();
    // Five strangers' numbers with the citizen's phone, within the minute and the hour.
    for (let i = 0; i < 6; i += 1) {
      const r = await start(`00109047${String(1000 + i)}`, c.phone);
      expect(r.codePage.status).toBe(200);
    }
    // The citizen's own recovery still gets its code at once.
    const before = messagesTo(srv, c.phone).length;
    const own = await start(c.pid, c.phone);
    expect(own.codePage.status).toBe(200);
    const code = await nextCode(srv, c.phone, before);
    expect((await submit(own.browser, own.codePage, { code })).text).toContain('name="password_confirm"');
  });

  it('a matching start within the minute of its phone\'s last code answers alike and sends nothing', async () => {
    const c = await citizen();
    // A second account on the same verified phone (a parent's phone, say).
    seq += 1;
    const other = await srv.addPerson({ pid: `00109044${String(seq).padStart(4, '0')}`, phone: c.phone, contactsVerified: true });
    const first = await start(c.pid, c.phone);
    expect(first.codePage.status).toBe(200);
    await nextCode(srv, c.phone, messagesTo(srv, c.phone).length - 1);
    const before = messagesTo(srv, c.phone).length;
    // One code a minute to a phone: the other account's start gets the usual page, not a 429 (which
    // would tell a phone on file apart), and no message.
    const second = await start(other.pid, c.phone);
    expect(second.codePage.status).toBe(200);
    expect(normalisePage(second.codePage.text)).toBe(normalisePage(first.codePage.text));
    await sleep(300);
    expect(messagesTo(srv, c.phone).length).toBe(before);
  });

  it('a recovery left open at its password step is void once the owner has taken the account back', async () => {
    const c = await citizen();
    // Someone holding the e-mail reaches the password step and waits.
    const stale = await throughCode(c, c.email);
    expect(stale.page.text).toContain('name="password_confirm"');
    // The owner recovers by phone.
    now += MINUTE + 1000;
    const owner = await throughCode(c, c.phone);
    const done = await submit(owner.browser, owner.page, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    // The stale flow's password is refused, and the owner's stays.
    const other = `${NEW_PASSWORD} lần nữa`;
    const refused = await submit(stale.browser, stale.page, { password: other, password_confirm: other });
    expect(refused.status).toBe(400);
    const hash = (await srv.system.store.persons.findById(c.id))!.passwordHash;
    expect(await srv.system.hasher.verify(hash, NEW_PASSWORD)).toBe(true);
    expect(await srv.system.hasher.verify(hash, other)).toBe(false);
  });
});

describe('recovery with an authenticator app', () => {
  it('the factor is required before the password; the next sign-in still asks for it', async () => {
    const c = await citizen();
    await withApp(c);
    const other = await signedInAtPortal(c, SUBSTANTIAL);
    advance();

    const { browser, page, codePage } = await throughCode(c);
    expect(heading(page.text)).toBe('Yếu tố xác thực thứ hai');
    expect(page.text).toContain('name="code"');
    expect(page.text).toContain('name="reset"');
    expect(page.text).not.toContain('name="password"');
    // The password step before the factor: refused, nothing changed.
    const hash = (await srv.system.store.persons.findById(c.id))!.passwordHash;
    const early = await post(browser, codePage, '/recover/password', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(early.status).toBe(400);
    expect((await srv.system.store.persons.findById(c.id))!.passwordHash).toBe(hash);
    // A wrong app code: refused.
    advance();
    const right = await totpCode(c.secret!, now);
    const wrong = await submit(browser, page, { method: 'totp', code: right === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    expect(wrong.text).not.toContain('name="password"');
    const pw = await submit(browser, wrong, { method: 'totp', code: right });
    expect(pw.status).toBe(200);
    expect(pw.text).toContain('name="password_confirm"');
    // The same app code again (another flow) is refused: each code once.
    const done = await submit(browser, pw, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(heading(done.text)).toBe('Đã đổi mật khẩu');
    // The factor is still there; the old session is gone.
    expect((await srv.system.store.factors.listForPerson(c.id)).filter((f) => f.confirmed)).toHaveLength(1);
    expect(await accountArea(other.browser)).toBe('signin');
    expect(await refresh(other.tokens.refresh_token!)).toBe('invalid_grant');
    // The next sign-in, even at low, asks for the app code after the new password.
    advance();
    const b = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const afterPassword = await submit(b, await b.get(req.url.href), { identifier: c.pid, password: NEW_PASSWORD });
    expect(afterPassword.text).toContain('name="code"');
    expect(afterPassword.text).not.toContain('data-testid="totp-secret"');
    const back = await throughPortalPages(srv, b, afterPassword, { ...steps, held: { secret: c.secret } });
    expect((await redeemAt(config, req, back, portal)).claims()!.acr).toBe(SUBSTANTIAL);
  });

  it('a recovery code works as the factor, once', async () => {
    const c = await citizen();
    await withApp(c);
    const { browser, page } = await throughCode(c);
    expect(page.text).toContain('?method=recovery');
    const recoveryPage = await browser.get(url('/recover?method=recovery'));
    expect(recoveryPage.status).toBe(200);
    const pw = await submit(browser, recoveryPage, { method: 'recovery', code: c.recoveryCodes![0]! });
    expect(pw.text).toContain('name="password_confirm"');
    // A second recovery using the same code: refused.
    now += 2 * MINUTE;
    const again = await throughCode(c);
    const reused = await submit(again.browser, again.page, { method: 'recovery', code: c.recoveryCodes![0]! });
    expect(reused.status).toBe(400);
    expect(reused.text).not.toContain('name="password"');
  });

  it('a forged form cannot skip the factor (method, empty code, a code for someone else)', async () => {
    const c = await citizen();
    await withApp(c);
    const someoneElse = await citizen();
    await withApp(someoneElse);
    const { browser, page } = await throughCode(c);
    advance();
    for (const fields of [
      { method: 'passkey', code: '123456' },
      { code: '' },
      { method: 'totp' },
      { method: 'totp', code: await totpCode(someoneElse.secret!, now) },
      { method: 'recovery', code: someoneElse.recoveryCodes![0]! },
    ]) {
      const res = await submit(browser, page, fields as Record<string, string>);
      expect({ fields, status: res.status }).toEqual({ fields, status: 400 });
      expect(res.text).not.toContain('name="password_confirm"');
    }
    const passkey = await post(browser, page, '/recover/passkey', { response: '{}' });
    expect(passkey.status).toBe(400);
    expect(passkey.text).not.toContain('name="password_confirm"');
  });
});

describe('forms that are not what the pages send', () => {
  it('are 4xx, never 5xx, and change nothing', async () => {
    const c = await citizen();
    const { browser, page } = await openRecover();
    const csrf = hiddenField(page.text, '_csrf');
    const good = { _csrf: csrf, pid: c.pid, contact: c.phone };
    const target = url('/recover');
    const cases: Array<{ body: string; headers?: Record<string, string>; status: number[] }> = [
      { body: `${form(good)}&contact%5B%24ne%5D=x`, status: [400] },
      { body: form(good).replace(/(^|&)pid=[^&]*/, '$1pid%5B%24gt%5D='), status: [400] },
      { body: `${form(good)}&pid=${c.pid}`, status: [400] },
      { body: JSON.stringify(good), headers: { 'content-type': 'application/json' }, status: [400, 415] },
      { body: form({ ...good, contact: 'x'.repeat(20_000) }), status: [400, 413] },
      { body: form({ ...good, _csrf: 'nope' }), status: [403] },
      { body: form({ pid: c.pid, contact: c.phone }), status: [403] },
      { body: form(good), headers: { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' }, status: [403] },
      { body: form(good), headers: { 'sec-fetch-site': 'same-site', origin: 'http://sibling.localhost' }, status: [403] },
    ];
    for (const k of cases) {
      const res = await rawPost(browser, target, k.body, { 'content-type': 'application/x-www-form-urlencoded', ...sameOrigin(srv.issuer), ...k.headers });
      expect({ body: k.body.slice(0, 60), ok: k.status.includes(res.status), status: res.status }).toEqual({ body: k.body.slice(0, 60), ok: true, status: res.status });
    }
    for (const [action, fields] of [
      ['/recover/code', { code: '123456' }], ['/recover/factor', { reset: '1' }], ['/recover/password', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }],
      ['/recover/passkey', { response: '{}' }], ['/recover/reset', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }],
      ['/recover/cancel', { token: 'x'.repeat(43) }],
    ] as const) {
      const res = await post(browser, page, action, fields);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect({ action, status: res.status < 500 }).toEqual({ action, status: true });
    }
    await sleep(200);
    expect(messagesTo(srv, c.phone)).toHaveLength(0);
    expect((await srv.system.store.persons.findById(c.id))!.passwordHash).toBeTruthy();
    // Links with tokens that are not ones: 404, no 5xx.
    for (const p of ['/recover/cancel/abc', `/recover/cancel/${'A'.repeat(43)}`, '/recover/reset/abc', `/recover/reset/${'A'.repeat(43)}`, '/recover/reset']) {
      const res = await new Browser(srv.issuer).get(url(p));
      expect({ p, status: res.status }).toEqual({ p, status: 404 });
    }
  });
});

describe('account reset (every factor lost)', () => {
  /** Recovery up to the factor page, then the reset button. */
  async function requestReset(c: Citizen): Promise<{ cancelPhone: string; cancelMail: string }> {
    const phoneBefore = messagesTo(srv, c.phone).length;
    const { browser, page } = await throughCode(c, c.email);
    expect(page.text).toContain('name="reset"');
    // After the code itself (delivered before throughCode returned).
    const afterCode = messagesTo(srv, c.email).length;
    const requested = await submit(browser, page, { reset: '1' }, page.text.includes('data-webauthn') ? 2 : 1);
    expect(requested.status).toBe(200);
    expect(heading(requested.text)).toBe('Đã ghi nhận yêu cầu đặt lại tài khoản');
    expect(requested.text).toMatch(/Sau 1 giờ/);
    const toPhone = messagesTo(srv, c.phone).slice(phoneBefore);
    const toMail = messagesTo(srv, c.email).slice(afterCode);
    expect(toPhone).toHaveLength(1);
    expect(toMail).toHaveLength(1);
    const cancelPhone = linkOf(toPhone[0]);
    const cancelMail = linkOf(toMail[0]);
    for (const link of [cancelPhone, cancelMail]) expect(link).toMatch(new RegExp(`^${srv.issuer}/recover/cancel/[A-Za-z0-9_-]{43}$`));
    expect(codeOf(toPhone[0])).toBeUndefined();
    // A second press in the same flow is not another request.
    const twice = await post(browser, page, '/recover/factor', { reset: '1' });
    expect(twice.status).toBe(400);
    expect(messagesTo(srv, c.phone).length).toBe(phoneBefore + 1);
    return { cancelPhone: cancelPhone!, cancelMail: cancelMail! };
  }

  const resetLinks = (c: Citizen) => messagesTo(srv, c.phone).map(linkOf).filter((l): l is string => !!l && l.includes('/recover/reset/'));

  it('waits, can be cancelled, and after the wait a link to the phone resets: factors gone, level 2 → 1, old sessions ended', async () => {
    const c = await citizen({ level: '2' });
    await withApp(c);
    expect((await srv.system.store.factors.listForPerson(c.id)).length).toBeGreaterThan(0);

    // 1. A request, then cancelled from the link every contact got.
    const first = await requestReset(c);
    await srv.system.jobs.runDue();
    expect(resetLinks(c)).toHaveLength(0);
    const canceller = new Browser(srv.issuer);
    const cancelPage = await canceller.get(first.cancelMail);
    expect(cancelPage.status).toBe(200);
    expect(cancelPage.text).toContain('action="/recover/cancel"');
    // The token is in this page's URL: it must not leave in a Referer, a cache or a frame.
    expect(cancelPage.headers.get('referrer-policy')).toBe('no-referrer');
    expect(cancelPage.headers.get('cache-control')).toContain('no-store');
    expect(cancelPage.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    // A GET changes nothing: the page shows again, the button still works.
    const again = await new Browser(srv.issuer).get(first.cancelPhone);
    expect(again.status).toBe(200);
    const cancelled = await submit(canceller, cancelPage, { token: hiddenField(cancelPage.text, 'token') });
    expect(cancelled.status).toBe(200);
    expect(heading(cancelled.text)).toBe('Đã hủy');
    const twice = await submit(canceller, cancelPage, { token: hiddenField(cancelPage.text, 'token') });
    expect(twice.status).toBe(404);
    expect((await new Browser(srv.issuer).get(first.cancelPhone)).status).toBe(404);
    // Past the wait: the cancelled request sends nothing.
    now += 61 * MINUTE;
    await srv.system.jobs.runDue();
    expect(resetLinks(c)).toHaveLength(0);
    expect((await srv.system.store.persons.findById(c.id))!.level).toBe(2);

    // 2. Another request, left to run.
    now += 61 * MINUTE;
    await requestReset(c);
    now += 30 * MINUTE;
    await srv.system.jobs.runDue();
    expect(resetLinks(c)).toHaveLength(0);
    now += 31 * MINUTE;
    // A session and a refresh token from before the reset (signed in after the wait began).
    const held = await signedInAtPortal(c, SUBSTANTIAL);
    expect(await accountArea(held.browser)).toBe('page');
    advance();
    await srv.system.jobs.runDue();
    const links = resetLinks(c);
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(new RegExp(`^${srv.issuer}/recover/reset/[A-Za-z0-9_-]{43}$`));
    // Only the verified phone gets it.
    expect(messagesTo(srv, c.email).some((m) => (linkOf(m) ?? '').includes('/recover/reset/'))).toBe(false);
    // The job ran once: running again sends nothing more.
    await srv.system.jobs.runDue();
    expect(resetLinks(c)).toHaveLength(1);

    const resetter = new Browser(srv.issuer);
    // The link's page only shows a button (a link preview opening it uses nothing up)...
    const confirm = await resetter.get(links[0]!);
    expect(confirm.status).toBe(200);
    expect(confirm.text).not.toContain('name="password"');
    expect((await new Browser(srv.issuer).get(links[0]!)).status).toBe(200);
    // ...whose press uses the link up and continues in this browser.
    const pwPage = await submit(resetter, confirm, { token: hiddenField(confirm.text, 'token') });
    expect(new URL(pwPage.url).pathname).toBe('/recover/reset');
    expect(pwPage.status).toBe(200);
    expect(pwPage.text).toContain('name="password_confirm"');
    // The old password is refused as the new one.
    const same = await submit(resetter, pwPage, { password: c.password, password_confirm: c.password });
    expect(same.status).toBe(400);
    const done = await submit(resetter, same, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);
    expect(heading(done.text)).toBe('Đã đặt lại tài khoản');

    const person = (await srv.system.store.persons.findById(c.id))!;
    expect(person.level).toBe(1);
    expect(await srv.system.store.factors.listForPerson(c.id)).toHaveLength(0);
    expect(await srv.system.store.recoveryCodes.countUnused(c.id)).toBe(0);
    expect(await accountArea(held.browser)).toBe('signin');
    expect(await refresh(held.tokens.refresh_token!)).toBe('invalid_grant');
    // The link works once.
    expect((await new Browser(srv.issuer).request(links[0]!)).status).toBe(404);
    // The new password signs in at low; substantial asks to enrol a new factor.
    advance();
    const low = await signedInAtPortal({ ...c, secret: undefined }, undefined, NEW_PASSWORD);
    expect(low.tokens.claims()!.acr).toBe(LOW);
    const b = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const enrol = await submit(b, await b.get(req.url.href), { identifier: c.pid, password: NEW_PASSWORD });
    expect(enrol.text).toContain('data-testid="totp-secret"');
  });

  it('operators see a pending reset, and a reset of second factors at the counter drops it (no link goes out after)', async () => {
    const c = await citizen();
    await withApp(c);
    await requestReset(c);
    const shown = await srv.system.accountAdmin.show(c.pid);
    expect(shown.account_reset).toMatchObject({ status: 'pending' });
    await srv.system.accountAdmin.resetMfa(c.pid, { operator: 'ops.counter', reason: 'citizen at the counter, card checked' }, 'CCCD checked in person at the counter');
    expect((await srv.system.accountAdmin.show(c.pid)).account_reset).toBeNull();
    now += 61 * MINUTE;
    await srv.system.jobs.runDue();
    await sleep(100);
    expect(resetLinks(c)).toHaveLength(0);
    await srv.system.audit.flush();
    const cancelled = (await srv.system.store.audit.list(0, 100_000)).filter((e) => e.event === 'ACCOUNT_RESET_CANCELLED' && e.details.person === c.id);
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]!.details.operator).toBe('ops.counter');
  });

  it('cancelled after the link went out: the link no longer works', async () => {
    const c = await citizen();
    await withApp(c);
    const { cancelPhone } = await requestReset(c);
    now += 61 * MINUTE;
    await srv.system.jobs.runDue();
    const link = resetLinks(c).at(-1)!;
    expect(link).toBeDefined();
    const canceller = new Browser(srv.issuer);
    const cancelPage = await canceller.get(cancelPhone);
    const cancelled = await submit(canceller, cancelPage, { token: hiddenField(cancelPage.text, 'token') });
    expect(heading(cancelled.text)).toBe('Đã hủy');
    expect((await new Browser(srv.issuer).request(link)).status).toBe(404);
    expect((await srv.system.store.factors.listForPerson(c.id)).length).toBeGreaterThan(0);
  });

  it('a browser that opened the link, then the reset is cancelled: the password step is refused', async () => {
    const c = await citizen();
    await withApp(c);
    const { cancelMail } = await requestReset(c);
    now += 61 * MINUTE;
    await srv.system.jobs.runDue();
    const resetter = new Browser(srv.issuer);
    const pwPage = await openResetLink(resetter, resetLinks(c).at(-1)!);
    expect(pwPage.text).toContain('name="password_confirm"');
    const canceller = new Browser(srv.issuer);
    const cancelPage = await canceller.get(cancelMail);
    await submit(canceller, cancelPage, { token: hiddenField(cancelPage.text, 'token') });
    const refused = await submit(resetter, pwPage, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(refused.status).toBe(400);
    expect(heading(refused.text)).not.toBe('Đã đặt lại tài khoản');
    expect((await srv.system.store.factors.listForPerson(c.id)).length).toBeGreaterThan(0);
    expect(await srv.system.hasher.verify((await srv.system.store.persons.findById(c.id))!.passwordHash, NEW_PASSWORD)).toBe(false);
  });

  it('a second request while one is pending changes nothing (no new notices, the wait does not restart)', async () => {
    const c = await citizen();
    await withApp(c);
    await requestReset(c);
    now += 40 * MINUTE;
    const phoneBefore = messagesTo(srv, c.phone).length;
    const mailBefore = messagesTo(srv, c.email).length;
    const { browser, page } = await throughCode(c, c.email);
    const res = await submit(browser, page, { reset: '1' }, 1);
    expect(res.status).toBe(200);
    await sleep(100);
    expect(messagesTo(srv, c.phone).length).toBe(phoneBefore);
    // The only new e-mail is the code itself.
    expect(messagesTo(srv, c.email).slice(mailBefore).filter((m) => linkOf(m) !== undefined)).toHaveLength(0);
    now += 21 * MINUTE; // 61 minutes after the first request
    await srv.system.jobs.runDue();
    expect(resetLinks(c)).toHaveLength(1);
  });

  it('an account without a phone cannot be reset online: 400 saying so, nothing sent, nothing scheduled', async () => {
    seq += 1;
    const n = String(seq).padStart(4, '0');
    const p = await srv.addPerson({ pid: `00109044${n}`, email: `khong.so.${n}@example.vn`, contactsVerified: true });
    const c: Citizen = { ...p, phone: '', email: `khong.so.${n}@example.vn` };
    await withApp(c);
    const { browser, page } = await throughCode(c, c.email);
    const before = messagesTo(srv, c.email).length;
    // The page offers no reset, says why, and a forged request is refused.
    expect(page.text).not.toContain('name="reset"');
    expect(page.text).toMatch(/chưa có số điện thoại đã xác thực/);
    const res = await post(browser, page, '/recover/factor', { reset: '1' });
    expect(res.status).toBe(400);
    expect(alertText(res.text)).toMatch(/chưa có số điện thoại/);
    now += 25 * 60 * MINUTE;
    await srv.system.jobs.runDue();
    await sleep(100);
    expect(messagesTo(srv, c.email).length).toBe(before);
  });

  it('an account without a second factor never reaches the reset button; a forged reset request is refused', async () => {
    const c = await citizen();
    const { browser, page } = await throughCode(c);
    expect(page.text).toContain('name="password_confirm"');
    const forged = await post(browser, page, '/recover/factor', { reset: '1' });
    expect(forged.status).toBe(400);
    await sleep(100);
    expect(messagesTo(srv, c.phone).some((m) => (linkOf(m) ?? '').includes('/recover/cancel/'))).toBe(false);
  });
});

describe('a double submit', () => {
  it('of the new password: the password is set once, and neither answer says it failed', async () => {
    const c = await citizen();
    const { browser, page } = await throughCode(c);
    const [r1, r2] = await Promise.all([
      submit(browser, page, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }),
      submit(browser, page, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }),
    ]);
    for (const r of [r1, r2]) {
      expect({ status: r.status, heading: heading(r.text), alert: alertText(r.text) }).toEqual({ status: 200, heading: 'Đã đổi mật khẩu', alert: expect.any(String) });
    }
    // One reset: one notice to each contact.
    expect(messagesTo(srv, c.email).filter((m) => /đã được đặt lại/.test(m.text))).toHaveLength(1);
    // Posted once more later: the same answer; with another password: refused, the first one stays.
    const thrice = await submit(browser, page, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(heading(thrice.text)).toBe('Đã đổi mật khẩu');
    const other = await submit(browser, page, { password: `${NEW_PASSWORD} khác`, password_confirm: `${NEW_PASSWORD} khác` });
    expect(other.status).toBe(400);
    advance();
    const fresh = await signedInAtPortal(c, undefined, NEW_PASSWORD);
    expect(fresh.tokens.claims()!.acr).toBe(LOW);
  });

  it('of the account reset\'s new password: reset once, and neither answer says the link is invalid', async () => {
    const c = await citizen({ level: '2' });
    await withApp(c);
    const { browser, page } = await throughCode(c, c.email);
    await submit(browser, page, { reset: '1' }, 1);
    now += 61 * MINUTE;
    await srv.system.jobs.runDue();
    const link = messagesTo(srv, c.phone).map(linkOf).find((l) => l?.includes('/recover/reset/'));
    const resetter = new Browser(srv.issuer);
    const pwPage = await openResetLink(resetter, link!);
    expect(pwPage.text).toContain('name="password_confirm"');
    const [r1, r2] = await Promise.all([
      submit(resetter, pwPage, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }),
      submit(resetter, pwPage, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }),
    ]);
    for (const r of [r1, r2]) expect({ status: r.status, heading: heading(r.text) }).toEqual({ status: 200, heading: 'Đã đặt lại tài khoản' });
    const thrice = await submit(resetter, pwPage, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(heading(thrice.text)).toBe('Đã đặt lại tài khoản');
    expect(messagesTo(srv, c.email).filter((m) => /đã được đặt lại lúc/.test(m.text) && /yếu tố xác thực thứ hai đã bị xóa/.test(m.text))).toHaveLength(1);
    expect((await srv.system.store.persons.findById(c.id))!.level).toBe(1);
    expect(await srv.system.store.factors.listForPerson(c.id)).toHaveLength(0);
  });
});
