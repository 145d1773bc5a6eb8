/**
 * Self-service registration (/register), black-box: from a portal's sign-in page and on its own;
 * the population registry's answer; an existing number that looks exactly like a new one until the
 * phone is proven; the limits; the code's life; forms that are not what the pages send.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import { DEFAULT_PASSWORD, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, type Portal } from '../helpers/rp.js';
import { HIGH, LOW, MINUTE, SUBSTANTIAL, startWithPortal } from '../helpers/pages.js';
import { form, rawPost, sameOrigin, submitAutoPost } from './pages-support.js';
import {
  codeOf, heading, messagesTo, normalisePage, redeemAt, registryAdd, selfServiceSteps, sleep, throughPortalPages, type Details,
} from './selfservice-support.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration;
beforeAll(async () => { ({ srv, portal, config } = await startWithPortal({ now: () => now })); });
afterAll(async () => { await srv.close(); });
// Every test in a new hour: the per-network start limit (30 an hour from 127.0.0.1) is the test's own.
beforeEach(() => { now += 61 * MINUTE; });

const { url, submit, post, testLink } = selfServiceSteps(() => srv);
const NEW_PASSWORD = 'sông Hồng chảy qua Hà Nội mùa thu';

let seq = 0;
/** A person the registry knows (male, born 1990 in Hà Nội), with a phone of their own; not yet registered. */
function citizen(extra: Partial<Details> & { registryPhone?: string } = {}): Details {
  seq += 1;
  const n = String(seq).padStart(4, '0');
  const d: Details = {
    pid: `00109055${n}`, full_name: 'Nguyễn Văn An', birthdate: '1990-05-17', gender: 'male', phone: `09155${n}0`.slice(0, 10), ...extra,
  };
  // The registry as the national database would answer: name with diacritics, phone when it has one.
  registryAdd(srv, {
    pid: d.pid, full_name: 'Nguyễn Văn An', birthdate: d.birthdate, gender: d.gender,
    ...(extra.registryPhone ? { phone: extra.registryPhone } : {}),
  });
  return d;
}
const e164 = (phone: string) => (phone.startsWith('0') ? `+84${phone.slice(1)}` : phone);
const formOf = (d: Details): Record<string, string> => ({
  pid: d.pid, full_name: d.full_name, birthdate: d.birthdate, gender: d.gender, phone: d.phone, ...(d.email ? { email: d.email } : {}),
});
const codesTo = (phone: string) => messagesTo(srv, e164(phone)).filter((m) => codeOf(m) !== undefined);

/** Opens /register in a browser (a new one by default). */
async function openRegister(browser = new Browser(srv.issuer)): Promise<{ browser: Browser; page: Response }> {
  const page = await browser.get(url('/register'));
  expect(page.status).toBe(200);
  expect(page.text).toContain('name="full_name"');
  return { browser, page };
}

/** Details → code → password: returns the page after the password (the offer). */
async function register(browser: Browser, page: Response, d: Details): Promise<Response> {
  const before = codesTo(d.phone).length;
  const codePage = await submit(browser, page, formOf(d));
  expect(codePage.status).toBe(200);
  expect(codePage.text).toContain('name="code"');
  const sent = codesTo(d.phone);
  expect(sent).toHaveLength(before + 1);
  const pwPage = await submit(browser, codePage, { code: codeOf(sent.at(-1))! });
  expect(pwPage.status).toBe(200);
  expect(pwPage.text).toContain('name="password_confirm"');
  const offer = await submit(browser, pwPage, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
  expect(offer.status).toBe(200);
  expect(offer.text).toContain('name="choice"');
  return offer;
}

/** A portal's sign-in page and the registration link on it, followed. */
async function registerFromPortal(extra: Record<string, string> = {}) {
  const browser = new Browser(srv.issuer);
  const req = await authRequest(config, portal, extra);
  const login = await browser.get(req.url.href);
  expect(login.text).toContain('name="identifier"');
  const uid = /\/interaction\/([^/"]+)\/login/.exec(login.text)![1]!;
  const page = await browser.get(testLink(login.text, 'register-link'));
  expect(page.status).toBe(200);
  expect(page.text).toContain('name="full_name"');
  return { browser, req, uid, page };
}

const steps = { now: () => now, advance: () => { now += MINUTE; } };

describe('registration from a portal\'s sign-in page', () => {
  it('low: register, code, password, later → the portal gets a code; ID token at low; level 1 with the phone verified', async () => {
    const d = citizen({ email: 'Dang.Thi@Example.vn' });
    const { browser, req, uid, page } = await registerFromPortal();
    expect(page.text).toContain('Cổng thử nghiệm'); // the portal's name on the page
    const offer = await register(browser, page, d);
    const later = await submit(browser, offer, { choice: 'later' });
    const back = await throughPortalPages(srv, browser, later, steps);
    const tokens = await redeemAt(config, req, back, portal);
    expect(tokens.claims()!.acr).toBe(LOW);
    expect(tokens.claims()!.amr).toEqual(['pwd']);
    const person = await srv.system.store.persons.findByPid(d.pid);
    expect(person).toMatchObject({ level: 1, phone: e164(d.phone), phoneVerified: true, status: 'active', name: 'Nguyễn Văn An', email: 'dang.thi@example.vn', emailVerified: false });
    expect(person!.passwordHash).not.toContain(NEW_PASSWORD);
    // The hand-off is used once: back at the same interaction, nothing signs in by itself.
    const again = await browser.get(url(`/interaction/${uid}`));
    expect(again.status).toBeLessThan(500);
    expect(again.location ?? '').not.toContain('code=');
    // And the password just set signs in elsewhere.
    const other = new Browser(srv.issuer);
    const req2 = await authRequest(config, portal);
    const signedIn = await throughPortalPages(srv, other, await other.get(req2.url.href), { ...steps, held: { pid: d.pid, password: NEW_PASSWORD } });
    expect((await redeemAt(config, req2, signedIn, portal)).claims()!.acr).toBe(LOW);
  });

  it('substantial: the offer makes the second factor required; the enrol page follows and the token is substantial', async () => {
    const d = citizen();
    const { browser, req, page } = await registerFromPortal({ acr_values: SUBSTANTIAL });
    const offer = await register(browser, page, d);
    // Only "now": the portal needs a second factor.
    expect(offer.text).toContain('value="now"');
    expect(offer.text).not.toContain('value="later"');
    const enrol = await submit(browser, offer, { choice: 'now' });
    expect(enrol.status).toBe(200);
    expect(enrol.text).toContain('data-testid="totp-secret"');
    const back = await throughPortalPages(srv, browser, enrol, steps);
    const tokens = await redeemAt(config, req, back, portal);
    expect(tokens.claims()!.acr).toBe(SUBSTANTIAL);
    const person = await srv.system.store.persons.findByPid(d.pid);
    expect((await srv.system.store.factors.listForPerson(person!.id)).filter((f) => f.confirmed)).toHaveLength(1);
  });

  it('substantial asked, "later" forged: still the enrol page, never a token below what was asked', async () => {
    const d = citizen();
    const { browser, req, page } = await registerFromPortal({ acr_values: SUBSTANTIAL });
    const offer = await register(browser, page, d);
    const forged = await post(browser, offer, '/register/continue', { choice: 'later' });
    expect(forged.status).toBe(200);
    expect(forged.text).toContain('data-testid="totp-secret"');
    const back = await throughPortalPages(srv, browser, forged, steps);
    expect((await redeemAt(config, req, back, portal)).claims()!.acr).toBe(SUBSTANTIAL);
  });

  it('low with "now": the enrol page, then the portal', async () => {
    const d = citizen();
    const { browser, req, page } = await registerFromPortal();
    const offer = await register(browser, page, d);
    const enrol = await submit(browser, offer, { choice: 'now' });
    expect(enrol.text).toContain('data-testid="totp-secret"');
    const back = await throughPortalPages(srv, browser, enrol, steps);
    expect((await redeemAt(config, req, back, portal)).claims()!.acr).toBe(SUBSTANTIAL);
  });

  it('high: a new account is level 1, so the unmet page, and the portal gets unmet_authentication_requirements', async () => {
    const d = citizen();
    const { browser, page } = await registerFromPortal({ acr_values: HIGH });
    const offer = await register(browser, page, d);
    const unmet = await submit(browser, offer, { choice: 'now' });
    expect(unmet.status).toBe(200);
    expect(heading(unmet.text)).toBe('Cần mức xác thực cao hơn');
    expect(unmet.text).not.toContain('data-testid="totp-secret"');
    const abort = /href="([^"]*abort\?reason=unmet)"/.exec(unmet.text)![1]!;
    const toPortal = await browser.get(url(abort.replace(/&amp;/g, '&')));
    expect(toPortal.location).toMatch(new RegExp(`^${portal.redirect_uri}\\?`));
    expect(new URL(toPortal.location!).searchParams.get('error')).toBe('unmet_authentication_requirements');
    expect((await srv.system.store.persons.findByPid(d.pid))?.level).toBe(1);
  });
});

describe('standalone registration', () => {
  it('ends in the account area, signed in', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const offer = await register(browser, page, d);
    expect(offer.text).toContain('value="later"');
    const home = await submit(browser, offer, { choice: 'later' });
    expect(home.status).toBe(200);
    expect(home.url).toMatch(/\/account(\/security)?$/);
    expect(home.text).not.toContain('name="identifier"');
    expect(home.text).toContain('/account/sessions');
    // Signed in for real: another account page opens too.
    const sessions = await browser.get(url('/account/sessions'));
    expect(sessions.status).toBe(200);
    expect(sessions.text).not.toContain('name="identifier"');
  });

  it('"now": the account area\'s sign-in enrols a second factor first', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const offer = await register(browser, page, d);
    const enrol = await submit(browser, offer, { choice: 'now' });
    expect(enrol.status).toBe(200);
    expect(enrol.text).toContain('data-testid="totp-secret"');
  });

  // A shared computer at a one-stop-shop office: the other person's session ends, the new account signs in.
  it('in a browser signed in as someone else: the new account is signed in, never that person\'s account area', async () => {
    const someone = await srv.addPerson({ pid: '001090660003', name: 'Lê Văn Hùng' });
    const browser = new Browser(srv.issuer);
    const req0 = await authRequest(config, portal);
    await throughPortalPages(srv, browser, await browser.get(req0.url.href), { ...steps, held: { pid: someone.pid, password: someone.password } });
    expect((await browser.get(url('/account/security'))).text).toContain('Lê Văn Hùng');
    const d = citizen();
    const { page } = await openRegister(browser);
    const offer = await register(browser, page, d);
    // The other person's session is ended first (the sign-out page oidc-provider posts by script).
    const home = await submitAutoPost(browser, await submit(browser, offer, { choice: 'later' }), srv.issuer);
    expect(home.status).toBe(200);
    expect(home.text).not.toContain('Lê Văn Hùng');
    expect(home.text).toContain('Nguyễn Văn An');
  });

  it('a finished registration cannot be replayed from the offer page', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const offer = await register(browser, page, d);
    await submit(browser, offer, { choice: 'later' });
    const replay = await post(browser, offer, '/register/continue', { choice: 'later' });
    expect(replay.status).toBe(400);
    // And a second browser holding nothing gets the sign-in page in the account area.
    const stranger = await new Browser(srv.issuer).get(url('/account'));
    expect(stranger.text).toContain('name="identifier"');
  });
});

describe('the population registry decides', () => {
  async function expectNoMatch(d: Details) {
    const { browser, page } = await openRegister();
    const before = codesTo(d.phone).length;
    const res = await submit(browser, page, formOf(d));
    expect(res.status).toBe(400);
    expect(alertText(res.text)).toMatch(/không khớp với Cơ sở dữ liệu quốc gia về dân cư/);
    // Only that: no field is singled out.
    expect(res.text).not.toContain('class="error"');
    expect(res.text).not.toContain('aria-invalid');
    expect(res.text).not.toContain('name="code"');
    expect(codesTo(d.phone)).toHaveLength(before);
    expect(await srv.system.store.persons.findByPid(d.pid)).toBeUndefined();
    return res;
  }

  it('a wrong name', async () => {
    const d = citizen();
    await expectNoMatch({ ...d, full_name: 'Nguyễn Văn Bình' });
  });

  it('the name without diacritics', async () => {
    const d = citizen();
    const res = await expectNoMatch({ ...d, full_name: 'Nguyen Van An' });
    // The registry's spelling is never shown.
    expect(res.text).not.toContain('Nguyễn Văn An');
  });

  it('a wrong birth date (consistent with the number) or gender', async () => {
    const d = citizen();
    await expectNoMatch({ ...d, birthdate: '1990-05-18' });
  });

  it('a number the registry does not have', async () => {
    const d = citizen();
    await expectNoMatch({ ...d, pid: '001090999999' });
  });

  it('another phone than the one the registry has; the registry\'s phone works, in either form', async () => {
    seq += 1;
    const own = `0916${String(seq).padStart(6, '0')}`;
    const d = citizen({ phone: '0916000999', registryPhone: `+84${own.slice(1)}` });
    const res = await expectNoMatch(d);
    // The registry's phone is not revealed.
    expect(res.text).not.toContain(own);
    expect(res.text).not.toContain(own.slice(1));
    const { browser, page } = await openRegister();
    const ok = await submit(browser, page, formOf({ ...d, phone: own.replace(/^0(\d{3})(\d{3})(\d{3})$/, '0$1 $2 $3') }));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('name="code"');
    expect(codesTo(own)).toHaveLength(1);
  });

  it('a registry that cannot answer: 503 with Retry-After, the details kept, no code; it works again when the registry does', async () => {
    const d = citizen();
    const file = srv.system.config.registry.path!;
    fs.renameSync(file, `${file}.away`);
    fs.mkdirSync(file);
    try {
      const { browser, page } = await openRegister();
      const res = await submit(browser, page, formOf(d));
      expect(res.status).toBe(503);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(alertText(res.text)).toMatch(/không kết nối được/);
      expect(res.text).toContain(`value="${d.pid}"`);
      expect(codesTo(d.phone)).toHaveLength(0);
    } finally {
      fs.rmdirSync(file);
      fs.renameSync(`${file}.away`, file);
    }
    const { browser, page } = await openRegister();
    expect((await submit(browser, page, formOf(d))).status).toBe(200);
  });

  it('the registry\'s name in another case and spacing, and decomposed Unicode, still matches', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const res = await submit(browser, page, formOf({ ...d, full_name: '  NGUYỄN   văn an '.normalize('NFD') }));
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="code"');
  });
});

describe('a number that already has an account', () => {
  it('looks like a new one up to the code; then says so, tells every contact of the account, and makes no second account', async () => {
    const existing = citizen();
    const holder = await srv.addPerson({ pid: existing.pid, name: 'Nguyễn Văn An', birthdate: existing.birthdate, gender: 'male', phone: '0903000111', email: 'an.holder@example.vn' });
    const fresh = citizen();
    // The same shape of phone for both (the pages mask all but the last three digits).
    const attacker = { ...existing, phone: '0917000123' };
    const newcomer = { ...fresh, phone: '0917000456' };

    const a = await openRegister();
    const b = await openRegister();
    const ra = await submit(a.browser, a.page, formOf(attacker));
    const rb = await submit(b.browser, b.page, formOf(newcomer));
    expect(ra.status).toBe(rb.status);
    expect(ra.status).toBe(200);
    expect(normalisePage(ra.text)).toBe(normalisePage(rb.text));
    expect(ra.headers.get('retry-after')).toBe(rb.headers.get('retry-after'));
    // Both phones got a real code.
    const codeA = codeOf(codesTo(attacker.phone).at(-1));
    const codeB = codeOf(codesTo(newcomer.phone).at(-1));
    expect(codeA).toMatch(/^\d{6}$/);
    expect(codeB).toMatch(/^\d{6}$/);
    // A wrong code: alike too.
    const wa = await submit(a.browser, ra, { code: codeA === '000000' ? '111111' : '000000' });
    const wb = await submit(b.browser, rb, { code: codeB === '000000' ? '111111' : '000000' });
    expect(wa.status).toBe(wb.status);
    expect(normalisePage(wa.text)).toBe(normalisePage(wb.text));

    const noticesBefore = messagesTo(srv, '+84903000111').length + messagesTo(srv, 'an.holder@example.vn').length;
    const told = await submit(a.browser, wa, { code: codeA! });
    expect(told.status).toBe(200);
    expect(heading(told.text)).toBe('Số định danh này đã có tài khoản');
    expect(told.text).not.toContain('name="password"');
    const toPhone = messagesTo(srv, '+84903000111');
    const toMail = messagesTo(srv, 'an.holder@example.vn');
    expect(toPhone.length + toMail.length).toBe(noticesBefore + 2);
    expect(toPhone.at(-1)!.text).toMatch(/thử đăng ký tài khoản định danh mới bằng số định danh của bạn/);
    expect(toMail.at(-1)!.text).toMatch(/thử đăng ký tài khoản định danh mới bằng số định danh của bạn/);
    // Nothing about the attacker's phone in the notices, and no code.
    expect(toPhone.at(-1)!.text).not.toContain('917000123');
    expect(codeOf(toMail.at(-1))).toBeUndefined();

    // No second account, the first one unchanged; the password step cannot be forced.
    const forced = await post(a.browser, ra, '/register/password', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(forced.status).toBe(400);
    const after = await srv.system.store.persons.findByPid(existing.pid);
    expect(after!.id).toBe(holder.id);
    expect(after!.phone).toBe('+84903000111');
    const req = await authRequest(config, portal);
    const b2 = new Browser(srv.issuer);
    const signedIn = await throughPortalPages(srv, b2, await b2.get(req.url.href), { ...steps, held: { pid: existing.pid, password: DEFAULT_PASSWORD } });
    expect(signedIn.location).toContain('code=');
    // The newcomer goes on to a password.
    const pw = await submit(b.browser, wb, { code: codeB! });
    expect(pw.text).toContain('name="password_confirm"');
  });

  it('two browsers registering one number: the second password step is told the number has an account', async () => {
    const d = citizen();
    const one = await openRegister();
    const two = await openRegister();
    const c1 = await submit(one.browser, one.page, formOf({ ...d, phone: '0918000001' }));
    const c2 = await submit(two.browser, two.page, formOf({ ...d, phone: '0918000002' }));
    const p1 = await submit(one.browser, c1, { code: codeOf(codesTo('0918000001').at(-1))! });
    const p2 = await submit(two.browser, c2, { code: codeOf(codesTo('0918000002').at(-1))! });
    expect(p1.text).toContain('name="password_confirm"');
    expect(p2.text).toContain('name="password_confirm"');
    const done1 = await submit(one.browser, p1, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done1.text).toContain('name="choice"');
    const done2 = await submit(two.browser, p2, { password: `${NEW_PASSWORD} khác`, password_confirm: `${NEW_PASSWORD} khác` });
    expect(done2.status).toBeLessThan(500);
    expect(heading(done2.text)).toBe('Số định danh này đã có tài khoản');
    expect((await srv.system.store.persons.findByPid(d.pid))!.phone).toBe('+84918000001');
  });
});

describe('limits', () => {
  it('a 6th start for one number within an hour: 429 with Retry-After, and no code', async () => {
    const d = citizen();
    for (let i = 1; i <= 5; i += 1) {
      const { browser, page } = await openRegister();
      const res = await submit(browser, page, formOf({ ...d, phone: `091900000${i}` }));
      expect(res.status).toBe(200);
      expect(codesTo(`091900000${i}`)).toHaveLength(1);
    }
    const { browser, page } = await openRegister();
    const sixth = await submit(browser, page, formOf({ ...d, phone: '0919000006' }));
    expect(sixth.status).toBe(429);
    const retry = Number(sixth.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(3600);
    expect(alertText(sixth.text)).toBeTruthy();
    expect(codesTo('0919000006')).toHaveLength(0);
    // An hour later the number may start again.
    now += 61 * MINUTE;
    const later = await openRegister();
    expect((await submit(later.browser, later.page, formOf({ ...d, phone: '0919000007' }))).status).toBe(200);
  });

  it('a second code to one phone within a minute: 429 with Retry-After; after the minute a new code, and only it works', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const codePage = await submit(browser, page, formOf(d));
    const first = codeOf(codesTo(d.phone).at(-1))!;
    const resend = await post(browser, codePage, '/register/resend', {});
    expect(resend.status).toBe(429);
    const retry = Number(resend.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    expect(codesTo(d.phone)).toHaveLength(1);
    // Another browser asking a code for the same phone is limited the same way.
    const other = await openRegister();
    const blocked = await submit(other.browser, other.page, formOf(d));
    expect(blocked.status).toBe(429);
    expect(codesTo(d.phone)).toHaveLength(1);

    now += MINUTE + 1000;
    const again = await post(browser, codePage, '/register/resend', {});
    expect(again.status).toBe(200);
    expect(codesTo(d.phone)).toHaveLength(2);
    const second = codeOf(codesTo(d.phone).at(-1))!;
    if (first !== second) {
      const old = await submit(browser, again, { code: first });
      expect(old.status).toBe(400);
    }
    const ok = await submit(browser, again, { code: second });
    expect(ok.text).toContain('name="password_confirm"');
  });

  it('30 starts an hour from one network, then 429 (per IP, whatever the number)', async () => {
    const { browser, page } = await openRegister();
    for (let i = 0; i < 30; i += 1) {
      // Numbers the registry does not have: each start counts, none sends a code.
      const res = await submit(browser, page, formOf({ pid: `00109077${String(i).padStart(4, '0')}`, full_name: 'Trần Thị Bích', birthdate: '1990-01-01', gender: 'male', phone: '0919999999' }));
      expect(res.status).toBe(400);
    }
    const d = citizen();
    const limited = await submit(browser, page, formOf(d));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(codesTo(d.phone)).toHaveLength(0);
  });
});

describe('the code', () => {
  it('expires after 5 minutes', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const codePage = await submit(browser, page, formOf(d));
    const code = codeOf(codesTo(d.phone).at(-1))!;
    now += 6 * MINUTE;
    const late = await submit(browser, codePage, { code });
    expect(late.status).toBe(400);
    expect(alertText(late.text)).toMatch(/hết hiệu lực/);
    expect(late.text).not.toContain('name="password"');
    expect(await srv.system.store.persons.findByPid(d.pid)).toBeUndefined();
  });

  it('5 wrong tries end it: the right code is refused afterwards', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    let res = await submit(browser, page, formOf(d));
    const code = codeOf(codesTo(d.phone).at(-1))!;
    const wrong = code === '123456' ? '654321' : '123456';
    for (let i = 0; i < 5; i += 1) {
      res = await submit(browser, res, { code: wrong });
      expect(res.status).toBe(400);
    }
    const right = await submit(browser, res, { code });
    expect(right.status).toBe(400);
    expect(right.text).not.toContain('name="password"');
    expect(alertText(right.text)).toMatch(/hết hiệu lực|sai quá nhiều/);
  });

  it('restart goes back to the details; the code of the abandoned flow no longer leads anywhere', async () => {
    const d = citizen();
    const { browser, page } = await openRegister();
    const codePage = await submit(browser, page, formOf(d));
    const code = codeOf(codesTo(d.phone).at(-1))!;
    const restarted = await submit(browser, codePage, {}, 2);
    expect(restarted.status).toBe(200);
    expect(restarted.text).toContain('name="full_name"');
    const stale = await post(browser, restarted, '/register/code', { code });
    expect(stale.status).toBe(400);
    expect(stale.text).not.toContain('name="password"');
  });
});

describe('forms that are not what the pages send', () => {
  it('are 4xx, never 5xx, and create nothing', async () => {
    const d = citizen({ phone: '0913777000' });
    const { browser, page } = await openRegister();
    const csrf = hiddenField(page.text, '_csrf');
    const good = { _csrf: csrf, ...formOf(d) };
    const target = url('/register');
    const cases: Array<{ name: string; body: string; headers?: Record<string, string>; status: number[] }> = [
      { name: 'operator-shaped field', body: `${form(good)}&pid%5B%24ne%5D=x`, status: [400] },
      { name: 'operator-shaped field instead of the value', body: form(good).replace(/(^|&)pid=[^&]*/, '$1pid%5B%24ne%5D=x'), status: [400] },
      { name: 'dotted operator', body: `${form(good)}&pid.%24gt=`, status: [400] },
      { name: 'duplicate field', body: `${form(good)}&pid=001090000001`, status: [400] },
      { name: 'duplicate CSRF', body: `${form(good)}&_csrf=${csrf}`, status: [400] },
      { name: 'JSON body', body: JSON.stringify(good), headers: { 'content-type': 'application/json' }, status: [400, 415] },
      { name: 'JSON object in a field', body: form({ ...good, pid: '{"$ne":null}' }), status: [400] },
      { name: 'oversized body', body: form({ ...good, email: 'a'.repeat(40_000) }), status: [400, 413] },
      { name: 'missing CSRF', body: form({ ...good, _csrf: '' }).replace('_csrf=&', ''), status: [403] },
      { name: 'wrong CSRF', body: form({ ...good, _csrf: 'x'.repeat(43) }), status: [403] },
      { name: 'multipart', body: '--b\r\nContent-Disposition: form-data; name="pid"\r\n\r\n1\r\n--b--', headers: { 'content-type': 'multipart/form-data; boundary=b' }, status: [400, 415] },
    ];
    for (const c of cases) {
      const res = await rawPost(browser, target, c.body, { 'content-type': 'application/x-www-form-urlencoded', ...sameOrigin(srv.issuer), ...c.headers });
      expect({ name: c.name, status: res.status, ok: c.status.includes(res.status) }).toEqual({ name: c.name, status: res.status, ok: true });
    }
    const crossOrigin: Array<{ name: string; headers: Record<string, string> }> = [
      { name: 'another site', headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } },
      { name: 'a sibling on the same site', headers: { origin: 'http://portal.localhost', 'sec-fetch-site': 'same-site' } },
      { name: 'Origin only, foreign', headers: { origin: 'http://evil.example' } },
      { name: 'Referer only, foreign', headers: { referer: 'http://evil.example/form' } },
    ];
    for (const c of crossOrigin) {
      const res = await rawPost(browser, target, form(good), { 'content-type': 'application/x-www-form-urlencoded', ...c.headers });
      expect({ name: c.name, status: res.status }).toEqual({ name: c.name, status: 403 });
    }
    // Without the flow cookie the page's token is worthless.
    const stranger = await rawPost(new Browser(srv.issuer), target, form(good), { 'content-type': 'application/x-www-form-urlencoded', ...sameOrigin(srv.issuer) });
    expect([400, 403]).toContain(stranger.status);
    // Another browser's cookie with this page's token: refused.
    const other = await openRegister();
    const swapped = await rawPost(other.browser, target, form(good), { 'content-type': 'application/x-www-form-urlencoded', ...sameOrigin(srv.issuer) });
    expect(swapped.status).toBe(403);

    // Steps out of order, in a browser with a live flow at the details step.
    for (const [action, fields] of [
      ['/register/code', { code: '123456' }],
      ['/register/resend', {}],
      ['/register/password', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }],
      ['/register/continue', { choice: 'later' }],
    ] as const) {
      const res = await post(browser, page, action, fields);
      expect({ action, status: res.status }).toEqual({ action, status: 400 });
    }
    // Field values that break the rules: 400 with the fields marked, nothing sent.
    for (const bad of [
      { pid: '00109055000' }, { pid: 'abcdefghijkl' }, { birthdate: '17/05/1990' }, { birthdate: '1990-02-30' },
      { gender: 'other' }, { phone: '12345' }, { email: 'not-an-address' }, { full_name: '<script>alert(1)</script>' },
      { pid: '001190550001' }, // digit 4 says female: disagrees with the gender
    ]) {
      const res = await submit(browser, page, formOf({ ...d, ...bad } as Details));
      expect({ bad, status: res.status }).toEqual({ bad, status: 400 });
      expect(res.text).toContain('class="error"');
      expect(res.text).not.toContain('<script>alert(1)</script>');
    }

    await sleep(100);
    expect(codesTo(d.phone)).toHaveLength(0);
    expect(await srv.system.store.persons.findByPid(d.pid)).toBeUndefined();
    // The honest form still works afterwards in that browser.
    const ok = await submit(browser, page, formOf(d));
    expect(ok.status).toBe(200);
    expect(codesTo(d.phone)).toHaveLength(1);
  });

  it('the flow cookie ends with the browser (no expiry), like the sign-in session: a flow at its password step or a registration\'s sign-in does not outlive it on a shared computer', async () => {
    const d = citizen();
    const browser = new Browser(srv.issuer);
    const cookieOf = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith('dd_selfservice='));
    const page = await browser.get(url('/register'));
    const set = cookieOf(page);
    expect(set).toBeDefined();
    expect(set).not.toMatch(/expires=|max-age=/i);
    expect(set).toMatch(/httponly/i);
    expect(set).toMatch(/samesite=lax/i);
    expect(set).toMatch(/path=\//i);
    const value = browser.cookies().get('dd_selfservice');
    const codePage = await submit(browser, page, formOf(d));
    const pw = await submit(browser, codePage, { code: codeOf(codesTo(d.phone).at(-1))! });
    const offer = await submit(browser, pw, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    for (const res of [codePage, pw, offer]) {
      const again = cookieOf(res);
      if (again) expect(again).not.toMatch(/expires=|max-age=/i);
    }
    expect(browser.cookies().get('dd_selfservice')).toBe(value);
    // The browser closed (its session cookies gone): the flow's sign-in is not offered to the next one.
    browser.clearCookies();
    const next = await browser.get(url('/register'));
    expect(next.text).toContain('name="full_name"');
    expect(next.text).not.toContain('name="choice"');
  });

  it('a GET of the pages sets the flow cookie and is not cached; HTML-escaped echoes', async () => {
    const { browser, page } = await openRegister();
    expect(page.headers.get('cache-control')).toContain('no-store');
    expect([...browser.cookies().keys()]).toContain('dd_selfservice');
    const d = citizen();
    const res = await submit(browser, page, formOf({ ...d, full_name: '"><img src=x onerror=alert(1)>' }));
    expect(res.status).toBe(400);
    expect(res.text).not.toContain('<img src=x');
  });
});

describe('registration is not offered through interactions that are not at the login prompt', () => {
  it('an unknown interaction uid: 4xx, no flow', async () => {
    const browser = new Browser(srv.issuer);
    const res = await browser.get(url('/interaction/not-a-real-uid/register'));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it('an interaction at the consent prompt: 400, and the journey is not started', async () => {
    const person = await srv.addPerson({ pid: '001090660001' });
    const other = await srv.addPortal();
    const otherConfig = await discover(srv.issuer, other);
    const browser = new Browser(srv.issuer);
    const req = await authRequest(otherConfig, other);
    const consent = await throughPortalPages(srv, browser, await browser.get(req.url.href), { ...steps, held: { pid: person.pid, password: person.password } });
    // Stopped before consent? throughPortalPages allows it: so sign in without consenting.
    expect(consent.status).toBe(303);
    const req2 = await authRequest(otherConfig, other, { prompt: 'consent' });
    const page = await browser.get(req2.url.href);
    expect(page.text).toContain('name="decision"');
    const uid = /\/interaction\/([^/"]+)\/consent/.exec(page.text)![1]!;
    const res = await browser.get(url(`/interaction/${uid}/register`));
    expect(res.status).toBe(400);
    const register = await browser.get(url('/register'));
    expect(register.text).not.toContain(other.client_id);
  });

  it('a browser already signed in as someone else: the new account signs in at the portal (prompt=login), not the old one', async () => {
    const someone = await srv.addPerson({ pid: '001090660002' });
    const browser = new Browser(srv.issuer);
    const req0 = await authRequest(config, portal);
    const first = await throughPortalPages(srv, browser, await browser.get(req0.url.href), { ...steps, held: { pid: someone.pid, password: someone.password } });
    const sub0 = (await redeemAt(config, req0, first, portal)).claims()!.sub;
    const d = citizen();
    const req = await authRequest(config, portal, { prompt: 'login' });
    const login = await browser.get(req.url.href);
    expect(login.text).toContain('name="identifier"');
    const page = await browser.get(testLink(login.text, 'register-link'));
    const offer = await register(browser, page, d);
    // The old session is ended (the sign-out page oidc-provider posts by script), then the new account signs in.
    const later = await submitAutoPost(browser, await submit(browser, offer, { choice: 'later' }), srv.issuer);
    const back = await throughPortalPages(srv, browser, later, steps);
    expect(back.status).toBe(303);
    const claims = (await redeemAt(config, req, back, portal)).claims()!;
    expect(claims.sub).not.toBe(sub0);
    expect((await srv.system.store.persons.findByPid(d.pid))?.id).toBeDefined();
  });
});

describe('a double submit', () => {
  it('of the password: one account, and the flow goes on to the offer (not "already has an account")', async () => {
    const d = citizen();
    const { browser, req, page } = await registerFromPortal();
    const codePage = await submit(browser, page, formOf(d));
    const pw = await submit(browser, codePage, { code: codeOf(codesTo(d.phone).at(-1))! });
    const [r1, r2] = await Promise.all([
      submit(browser, pw, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }),
      submit(browser, pw, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD }),
    ]);
    for (const r of [r1, r2]) {
      expect(r.status).toBeLessThan(500);
      expect(heading(r.text)).not.toBe('Số định danh này đã có tài khoản');
    }
    for (const r of [r1, r2]) expect(r.text).toContain('name="choice"');
    // Posted once more later: the same answer; with another password: refused, the account keeps the first.
    const thrice = await submit(browser, pw, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(thrice.text).toContain('name="choice"');
    const other = await submit(browser, pw, { password: `${NEW_PASSWORD} khác`, password_confirm: `${NEW_PASSWORD} khác` });
    expect(other.status).toBe(400);
    expect(other.text).not.toContain('name="choice"');
    const offer = r1;
    const later = await submit(browser, offer, { choice: 'later' });
    const back = await throughPortalPages(srv, browser, later, steps);
    expect((await redeemAt(config, req, back, portal)).claims()!.acr).toBe(LOW);
  });
});
