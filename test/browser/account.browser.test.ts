/**
 * The citizen's account area in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) against the real app over HTTP, on a 360 px phone in Vietnamese.
 *
 * One walk, as a citizen would take it: sign in at /account; the home (name, masked number, level,
 * a link to every section, each section linking back); a password change; a phone added through the
 * code sent to it (the keyboard alone on that form); a stranger's sign-in from a second browser with
 * the new password, which the citizen finds in the activity list and answers with "this wasn't me"
 * (both browsers signed out, the password refused until recovery); recovery with the phone; the data
 * downloaded; the account locked, after which neither a sign-in nor recovery without a second
 * factor opens it.
 *
 * Every distinct page of the account area on the way (and each result page) is held to: no serious
 * or critical WCAG 2.1 A/AA violation axe-core finds, no horizontal scrolling at 360 px (WCAG 2.1
 * SC 1.4.10 Reflow), one h1 (SC 1.3.1, 2.4.6), and an accessible name for every form control (SC
 * 1.3.1, 4.1.2). A second walk shows the key pages in English (?lang=en) with English headings and
 * `<html lang="en">` (SC 3.1.1).
 *
 * Runs only when /usr/bin/chromium exists (`.ci/run` installs it with apt-get); otherwise the
 * describe is skipped with a name that says why.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type Page, type Response } from 'playwright-core';
import { PHONE, browserSuite, launchChromium, watch as watchBoth } from '../helpers/chromium.js';
import { axeViolations, serious, unnamedControls, type AxeViolation } from '../helpers/axe.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { authRequest, discover } from '../helpers/rp.js';
import { codeOf, linkOf, messagesTo, nextCode, waitFor, type Message } from '../integration/selfservice-support.js';
import { translator, type MessageKey } from '../../src/http/i18n.js';

jest.setTimeout(240_000);

/** Page errors and CSP refusals from the console (the DOM event needs a binding per page: not needed here). */
const watch = (page: Page) => watchBoth(page, false);

const { describeBrowser, suite: SUITE } = browserSuite('the citizen\'s account area in headless Chromium');

const vi = translator('vi');
const en = translator('en');
type T = typeof vi;

/** Someone else's computer: a desktop Edge on Windows, so its sign-in reads differently in the history. */
const STRANGER = {
  viewport: { width: 1280, height: 800 },
  userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  locale: 'vi-VN',
} as const;
const STRANGER_DEVICE = 'Edge · Windows';

/** Passwords with nothing personal in them, long enough for an account without a second factor. */
const CHANGED_PASSWORD = 'gió thổi qua đồi chè xanh mướt 2025';
const RECOVERED_PASSWORD = 'trăng lên đầu núi soi bóng hồ thu 2026';

/** A Vietnamese mobile number (09x), as typed (national) and as the outbox records it (E.164). */
function mobile(): { national: string; e164: string } {
  const local = `9${String(crypto.randomInt(100_000_000)).padStart(8, '0')}`;
  return { national: `0${local}`, e164: `+84${local}` };
}

let srv: TestServer;
let browser: Browser;

async function scrollWidth(page: Page): Promise<number> {
  return page.locator('html').evaluate((el) => (el as unknown as { scrollWidth: number }).scrollWidth);
}

/** Every axe-core finding of every page checked, serious or not, for the run's output. */
const findings: Array<{ page: string; violation: AxeViolation }> = [];

/**
 * The checks every account page gets: exactly one h1 (its text when `title` is given, in `t`'s
 * language), no horizontal scrolling at 360 px (SC 1.4.10), an accessible name for every form
 * control (SC 4.1.2), and no serious or critical axe-core violation of WCAG 2.1 A/AA. Folded
 * `<details>` (the profile's verify/remove forms) are checked folded, then opened: what they hold
 * must fit and be named too.
 */
async function checkPage(page: Page, name: string, opts: { title?: MessageKey; t?: T } = {}): Promise<void> {
  const t = opts.t ?? vi;
  await page.waitForLoadState('load');
  const h1 = page.locator('h1');
  expect({ page: name, h1s: await h1.count() }).toEqual({ page: name, h1s: 1 });
  const heading = ((await h1.textContent()) ?? '').trim();
  expect({ page: name, heading: heading !== '' }).toEqual({ page: name, heading: true });
  if (opts.title) expect({ page: name, heading }).toEqual({ page: name, heading: t(opts.title) });
  expect({ page: name, lang: await page.locator('html').getAttribute('lang') }).toEqual({ page: name, lang: t === en ? 'en' : 'vi' });

  const width = await scrollWidth(page);
  expect({ page: name, scrollWidth: width, fits: width <= 360 }).toMatchObject({ page: name, fits: true });
  const folded = await page.locator('details:not([open])').count();
  if (folded > 0) {
    await page.locator('details').evaluateAll((ds) => ds.forEach((d) => { (d as unknown as { open: boolean }).open = true; }));
    const opened = await scrollWidth(page);
    expect({ page: `${name} (details open)`, scrollWidth: opened, fits: opened <= 360 }).toMatchObject({ fits: true });
  }
  expect({ page: name, unnamed: await unnamedControls(page) }).toEqual({ page: name, unnamed: [] });
  const violations = await axeViolations(page);
  for (const v of violations) findings.push({ page: name, violation: v });
  expect({ page: name, serious: serious(violations) }).toEqual({ page: name, serious: [] });
  if (folded > 0) {
    await page.locator('details').evaluateAll((ds) => ds.forEach((d) => { (d as unknown as { open: boolean }).open = false; }));
  }
}

/**
 * Waits for the POST to `pathname` that `act` causes and for the page it leads to to load; the
 * POST's own response (before any redirect).
 */
async function posting(page: Page, pathname: string, act: () => Promise<void>): Promise<Response> {
  const answered = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === pathname);
  const loaded = page.waitForEvent('load');
  await act();
  const res = await answered;
  await loaded;
  return res;
}

/** Whether the page is dinhdanh's sign-in page (the interaction's identifier and password). */
async function isSignInPage(page: Page): Promise<boolean> {
  return new URL(page.url()).pathname.startsWith('/interaction/')
    && (await page.locator('input[name="identifier"]').count()) === 1
    && (await page.locator('input[name="password"]').count()) === 1;
}

/** Types the identifier and password on the sign-in page and presses its button. */
async function typeSignIn(page: Page, pid: string, password: string, t: T = vi): Promise<void> {
  await page.locator('input[name="identifier"]').fill(pid);
  await page.locator('input[name="password"]').fill(password);
  await page.getByRole('button', { name: t('login.submit'), exact: true }).click();
}

/** Opens `path` of the account area, which sends the browser through the sign-in; lands back there. */
async function signIn(page: Page, path: string, pid: string, password: string, t: T = vi): Promise<void> {
  await page.goto(`${srv.issuer}${path}`);
  expect(await isSignInPage(page)).toBe(true);
  const target = new URL(path, srv.issuer).pathname;
  await Promise.all([page.waitForURL((u) => u.pathname === target), typeSignIn(page, pid, password, t)]);
  await page.waitForLoadState('load');
}

/** The newest message to any of `to` that `match` accepts, after the first `after` of them. */
function messageTo(to: string[], after: Map<string, number>, match: (m: Message) => boolean): Message | undefined {
  for (const dest of to) {
    const m = messagesTo(srv, dest).slice(after.get(dest) ?? 0).find(match);
    if (m) return m;
  }
  return undefined;
}
const counts = (to: string[]) => new Map(to.map((d) => [d, messagesTo(srv, d).length]));

/** What has keyboard focus: tag, id, name, type, and its outline (WCAG 2.4.7 Focus Visible). */
async function focused(page: Page): Promise<{ tag: string; id: string; name: string; type: string; form: string; outline: string }> {
  return page.evaluate(() => {
    const el = (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement as {
      tagName: string; id: string; getAttribute(n: string): string | null; form?: { getAttribute(n: string): string | null; querySelector(s: string): unknown } | null;
    } | null;
    const style = (globalThis as unknown as { getComputedStyle(e: unknown): { outlineStyle: string; outlineWidth: string } }).getComputedStyle(el);
    const form = el?.form ?? null;
    return {
      tag: el?.tagName.toLowerCase() ?? '',
      id: el?.id ?? '',
      name: el?.getAttribute('name') ?? '',
      type: el?.getAttribute('type') ?? '',
      form: form ? `${form.getAttribute('action') ?? ''}${form.querySelector('input[name="phone"]') ? ' (phone)' : ''}` : '',
      outline: `${style.outlineStyle} ${style.outlineWidth}`,
    };
  });
}

/** The sections the home links to, with their pages' titles. */
const SECTIONS: Array<{ path: string; link: MessageKey; title: MessageKey }> = [
  { path: '/account/profile', link: 'acct_home.profile', title: 'profile.title' },
  { path: '/account/password', link: 'acct_home.password', title: 'password_page.title' },
  { path: '/account/security', link: 'acct_home.security', title: 'account.title' },
  { path: '/account/sessions', link: 'account.sessions_link', title: 'account.sessions_title' },
  { path: '/account/portals', link: 'account.portals_link', title: 'account.portals_title' },
  { path: '/account/organizations', link: 'account.orgs_link', title: 'account.orgs_title' },
  { path: '/account/activity', link: 'acct_home.activity', title: 'activity.title' },
  { path: '/account/data', link: 'acct_home.data', title: 'data.title' },
];

describeBrowser(SUITE, () => {
  beforeAll(async () => {
    srv = await startTestServer();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    // Moderate and minor findings do not fail the walk; they are listed for whoever reads the run.
    const minor = findings.filter((f) => f.violation.impact !== 'serious' && f.violation.impact !== 'critical');
    if (minor.length > 0) console.warn(`axe-core findings below serious:\n${minor.map((f) => `  ${f.page}: ${f.violation.id} (${f.violation.impact}) ${f.violation.target}`).join('\n')}`);
  });

  it('walks the account area on a 360 px phone: home, password, a phone added, a stranger reported, recovery, the download and the lock', async () => {
    const phone = mobile();
    const added = mobile();
    const email = `an.${crypto.randomBytes(4).toString('hex')}@example.vn`;
    const person = await srv.addPerson({ phone: phone.national, email, contactsVerified: true });
    const contacts = [phone.e164, email];
    // Something on every page: an enterprise the citizen represents, with a delegation to revoke.
    const colleague = await srv.addPerson({ name: 'Lê Văn Hòa' });
    const enterprise = `01${String(crypto.randomInt(100_000_000)).padStart(8, '0')}`;
    await srv.system.orgs.register({ code: enterprise, name: 'Công ty TNHH Sông Hồng', representatives: [person.pid] }, { operator: 'test' });
    await srv.system.orgs.delegate({ code: enterprise, pid: colleague.pid, fullName: 'Lê Văn Hòa', role: 'ke-toan' }, { personId: person.id });
    const portal = await srv.addPortal({ name: 'Cổng dịch vụ công thử nghiệm' });

    const citizen = await browser.newContext({ ...PHONE });
    const stranger = await browser.newContext({ ...STRANGER });
    try {
      const page = await citizen.newPage();
      const w = await watch(page);

      // 1. Sign in at /account: the home says who is signed in, and links to every section.
      await page.goto(`${srv.issuer}/account`);
      expect(await isSignInPage(page)).toBe(true);
      await checkPage(page, 'sign-in', { title: 'login.title' });
      await Promise.all([page.waitForURL((u) => u.pathname === '/account'), typeSignIn(page, person.pid, person.password)]);
      await checkPage(page, 'home', { title: 'acct_home.title' });
      const summary = page.getByTestId('account-summary');
      const summaryText = (await summary.textContent()) ?? '';
      expect(summaryText).toContain('Nguyễn Văn An');
      // The number is masked: only its last three digits, never the whole number on a shared screen.
      expect(summaryText).not.toContain(person.pid);
      expect(summaryText).toContain(`${'*'.repeat(9)}${person.pid.slice(9)}`);
      expect(summaryText).toContain(vi('acct_home.level1'));
      expect(await page.locator('main').textContent()).toContain(vi('acct_home.raise'));
      for (const s of SECTIONS) {
        const link = page.getByRole('link', { name: vi(s.link), exact: true });
        expect({ section: s.path, href: await link.getAttribute('href') }).toEqual({ section: s.path, href: s.path });
      }

      // A portal the citizen agreed to share with (the single sign-on session: only the consent asked).
      const req = await authRequest(await discover(srv.issuer, portal), portal);
      // In a tab of its own: nothing listens at the portal's redirect URI, and the tab is closed once there.
      const portalTab = await citizen.newPage();
      await portalTab.goto(req.url.href);
      const callback = portalTab.waitForRequest((r) => r.url().startsWith(`${portal.redirect_uri}?`) && r.isNavigationRequest());
      await portalTab.locator('button[name="decision"][value="allow"]').click();
      expect(new URL((await callback).url()).searchParams.get('code')).toBeTruthy();
      await portalTab.close();

      // 2. Each section from the home's link, checked, and back through its own link to the home.
      for (const s of SECTIONS) {
        await Promise.all([page.waitForURL((u) => u.pathname === s.path), page.getByRole('link', { name: vi(s.link), exact: true }).click()]);
        await checkPage(page, s.path, { title: s.title });
        if (s.path === '/account/portals') expect(await page.locator('main').textContent()).toContain(portal.input.name);
        if (s.path === '/account/organizations') expect(await page.getByTestId('delegation').count()).toBe(1);
        const back = page.getByTestId('account-home-link');
        expect({ section: s.path, back: await back.count() }).toEqual({ section: s.path, back: 1 });
        expect(await back.getAttribute('href')).toBe('/account');
        await Promise.all([page.waitForURL((u) => u.pathname === '/account'), back.click()]);
        await expect(page.locator('h1').textContent()).resolves.toBe(vi('acct_home.title'));
      }

      // 3. The password, changed: current one, new one twice.
      await page.goto(`${srv.issuer}/account/password`);
      await page.getByLabel(vi('account.current_password'), { exact: true }).fill(person.password);
      await page.getByLabel(vi('password.new'), { exact: true }).fill(CHANGED_PASSWORD);
      await page.getByLabel(vi('password.confirm'), { exact: true }).fill(CHANGED_PASSWORD);
      expect(await page.locator('input[name="current_password"]').getAttribute('autocomplete')).toBe('current-password');
      expect(await page.locator('input[name="password"]').getAttribute('autocomplete')).toBe('new-password');
      const changed = await posting(page, '/account/password', () => page.getByRole('button', { name: vi('password_page.submit'), exact: true }).click());
      expect(changed.status()).toBe(200);
      await checkPage(page, 'password changed', { title: 'password_page.done_title' });
      expect(await page.locator('main').textContent()).toContain(vi('password_page.done_body', { n: '0' }));

      // 4. A phone added, with the keyboard alone (WCAG 2.1.1): Tab reaches the phone field, the
      //    current password and the button, in that order (2.4.3), each with a visible focus (2.4.7);
      //    Enter sends the form.
      await page.goto(`${srv.issuer}/account/profile`);
      await checkPage(page, '/account/profile (before the phone)', { title: 'profile.title' });
      const order: string[] = [];
      for (let i = 0; i < 60; i += 1) {
        await page.keyboard.press('Tab');
        const f = await focused(page);
        if (f.form.endsWith('(phone)')) {
          order.push(`${f.tag}${f.name ? `[name=${f.name}]` : ''}${f.type === 'submit' ? '[type=submit]' : ''}`);
          expect({ at: f.name || f.tag, outline: f.outline.startsWith('none') }).toEqual({ at: f.name || f.tag, outline: false });
          if (f.name === 'phone') await page.keyboard.type(added.national);
          if (f.name === 'current_password') await page.keyboard.type(CHANGED_PASSWORD);
          if (f.tag === 'button') break;
        }
      }
      expect(order).toEqual(['input[name=phone]', 'input[name=current_password]', 'button[type=submit]']);
      const sentBefore = messagesTo(srv, added.e164).length;
      const addedPost = await posting(page, '/account/profile/contacts/add', () => page.keyboard.press('Enter'));
      expect(addedPost.status()).toBe(200);

      // The code page: the 6-digit code sent to the new phone.
      await checkPage(page, 'contact code', { title: 'profile.code_title' });
      const code = page.getByLabel(vi('mfa.code_label'), { exact: true });
      expect(await code.getAttribute('name')).toBe('code');
      expect(await code.getAttribute('autocomplete')).toBe('one-time-code');
      await code.fill(await nextCode(srv, added.e164, sentBefore));
      const proven = await posting(page, '/account/profile/contacts/code', () => page.getByRole('button', { name: vi('profile.confirm_code'), exact: true }).click());
      expect(proven.status()).toBe(200);
      await checkPage(page, '/account/profile (phone added)', { title: 'profile.title' });
      await expect(page.getByRole('status').textContent()).resolves.toContain(vi('profile.added'));
      const row = page.getByTestId('contact').filter({ hasText: added.e164.slice(-6) });
      expect(await row.count()).toBe(1);
      expect(await row.getAttribute('data-verified')).toBe('true');
      expect(await row.textContent()).toContain(vi('profile.verified', { date: '' }).replace(/\s*$/, ''));

      // 5. A stranger with the new password signs in from another browser: a new-browser notice
      //    with a "this wasn't me" link reaches the citizen's contacts.
      const before = counts([...contacts, added.e164]);
      const other = await stranger.newPage();
      await signIn(other, '/account', person.pid, CHANGED_PASSWORD);
      await expect(other.locator('h1').textContent()).resolves.toBe(vi('acct_home.title'));
      const notice = await waitFor(() => messageTo([...contacts, added.e164], before, (m) => m.text.includes('/account/not-me/')), 10_000);
      const notMeLink = linkOf(notice);
      expect(notMeLink).toMatch(new RegExp(`^${srv.issuer.replace(/[.]/g, '\\.')}/account/not-me/[A-Za-z0-9_-]{43}$`));
      expect(codeOf(notice)).toBeUndefined();

      // The citizen's sessions list shows the stranger's browser, with a button to end it.
      await page.goto(`${srv.issuer}/account/sessions`);
      await checkPage(page, '/account/sessions (with the stranger)', { title: 'account.sessions_title' });
      expect(await page.locator('main').textContent()).toContain(STRANGER_DEVICE);

      // The notice's link page, opened in the citizen's browser (no sign-in needed): it names the
      // stranger's device, changes nothing until its button is pressed.
      await page.goto(notMeLink!);
      await checkPage(page, 'not-me link', { title: 'notme.title' });
      expect(await page.locator('main').textContent()).toContain(STRANGER_DEVICE);
      expect(await page.getByRole('button', { name: vi('notme.press'), exact: true }).count()).toBe(1);

      // 6. The activity list shows the stranger's sign-in first; "this wasn't me" on it.
      await page.goto(`${srv.issuer}/account/activity`);
      await checkPage(page, '/account/activity (with the stranger)', { title: 'activity.title' });
      const rows = page.getByTestId('activity-row');
      expect(await rows.count()).toBeGreaterThanOrEqual(2);
      const signIns = page.locator('[data-testid="activity-row"][data-event="signin"]');
      // The stranger's, the citizen's at the portal and in the account area; newest first.
      expect(await signIns.count()).toBeGreaterThanOrEqual(2);
      const strangerRow = signIns.first();
      expect(await strangerRow.textContent()).toContain(STRANGER_DEVICE);
      expect(await strangerRow.textContent()).toContain(vi('activity.new_browser'));
      expect(await signIns.filter({ hasText: STRANGER_DEVICE }).count()).toBe(1);
      const notMe = strangerRow.locator('button[name="not_me"]');
      expect(await notMe.textContent()).toContain(vi('activity.not_me'));
      const reported = await posting(page, '/account/activity/not-me', () => notMe.click());
      expect(reported.status()).toBe(200);
      await checkPage(page, 'not-me done', { title: 'notme.done_title' });
      expect(await page.getByRole('link', { name: vi('notme.recover_link'), exact: true }).getAttribute('href')).toBe('/recover');

      // Both browsers are signed out: the next account page asks to sign in.
      await page.goto(`${srv.issuer}/account`);
      expect(await isSignInPage(page)).toBe(true);
      await other.goto(`${srv.issuer}/account`);
      expect(await isSignInPage(other)).toBe(true);
      // The password no longer works, and the sign-in page says why.
      await typeSignIn(other, person.pid, CHANGED_PASSWORD);
      await other.waitForLoadState('load');
      expect(await isSignInPage(other)).toBe(true);
      await expect(other.getByRole('alert').textContent()).resolves.toContain(vi('login.reset_required'));

      // A link that was used or has expired (10 days): its own result page.
      await page.goto(`${srv.issuer}/account/not-me/${crypto.randomBytes(32).toString('base64url')}`);
      await checkPage(page, 'not-me link gone', { title: 'notme.link_gone_title' });

      // 7. Recovery with the phone (no second factor: the code, then a new password).
      await page.goto(`${srv.issuer}/recover`);
      await page.getByLabel(vi('login.identifier'), { exact: true }).fill(person.pid);
      await page.getByLabel(vi('recover.contact'), { exact: true }).fill(phone.national);
      const codesBefore = messagesTo(srv, phone.e164).length;
      await posting(page, '/recover', () => page.getByRole('button', { name: vi('recover.submit'), exact: true }).click());
      await expect(page.locator('h1').textContent()).resolves.toBe(vi('recover.code_title'));
      await page.getByLabel(vi('selfservice.code_label'), { exact: true }).fill(await nextCode(srv, phone.e164, codesBefore));
      await posting(page, '/recover/code', () => page.getByRole('button', { name: vi('selfservice.continue'), exact: true }).click());
      await expect(page.locator('h1').textContent()).resolves.toBe(vi('recover.password_title'));
      await page.getByLabel(vi('password.new'), { exact: true }).fill(RECOVERED_PASSWORD);
      await page.getByLabel(vi('password.confirm'), { exact: true }).fill(RECOVERED_PASSWORD);
      await posting(page, '/recover/password', () => page.getByRole('button', { name: vi('selfservice.continue'), exact: true }).click());
      await checkPage(page, 'recovered', { title: 'recover.done_title' });

      // 8. Signed in again; the data downloaded as a JSON attachment.
      await signIn(page, '/account/data', person.pid, RECOVERED_PASSWORD);
      await checkPage(page, '/account/data (after recovery)', { title: 'data.title' });
      const exportLink = page.getByTestId('export-link');
      expect(await exportLink.getAttribute('href')).toBe('/account/data/export');
      const [download] = await Promise.all([page.waitForEvent('download'), exportLink.click()]);
      expect(download.suggestedFilename()).toMatch(/\.json$/);
      const raw = fs.readFileSync((await download.path())!, 'utf8');
      const data = JSON.parse(raw) as { details: { identification_number: string; status: string }; contacts: Array<{ value: string; verified: boolean }>; activity: Array<{ event: string }> };
      expect(data.details).toMatchObject({ identification_number: person.pid, status: 'active' });
      expect(data.contacts).toEqual(expect.arrayContaining([
        expect.objectContaining({ value: phone.e164, verified: true }),
        expect.objectContaining({ value: added.e164, verified: true }),
      ]));
      expect(data.activity.map((e) => e.event)).toEqual(expect.arrayContaining(['PASSWORD_CHANGED', 'NOT_ME_REPORTED', 'SIGN_IN_COMPLETED']));
      // Never a secret (the export is an allow-list of fields): no password hash anywhere in it.
      expect(raw).not.toMatch(/\$argon2/);
      // The download leaves the page where it was.
      expect(new URL(page.url()).pathname).toBe('/account/data');

      // 9. The account locked by its owner: at once, and then no sign-in opens it.
      const locked = await posting(page, '/account/data/lock', () => page.locator('button[name="lock"]').click());
      expect(locked.status()).toBe(200);
      await checkPage(page, 'locked', { title: 'lock.done_title' });
      await page.goto(`${srv.issuer}/account`);
      expect(await isSignInPage(page)).toBe(true);
      await typeSignIn(page, person.pid, RECOVERED_PASSWORD);
      await page.waitForLoadState('load');
      expect(await isSignInPage(page)).toBe(true);
      await expect(page.getByRole('alert').textContent()).resolves.toBe(vi('login.failed'));
      // Nor does recovery with a contact alone (the account has no second factor): the counter only.
      await page.goto(`${srv.issuer}/recover`);
      await page.getByLabel(vi('login.identifier'), { exact: true }).fill(person.pid);
      await page.getByLabel(vi('recover.contact'), { exact: true }).fill(email);
      const mailsBefore = messagesTo(srv, email).length;
      await posting(page, '/recover', () => page.getByRole('button', { name: vi('recover.submit'), exact: true }).click());
      await page.getByLabel(vi('selfservice.code_label'), { exact: true }).fill(await nextCode(srv, email, mailsBefore));
      const refused = await posting(page, '/recover/code', () => page.getByRole('button', { name: vi('selfservice.continue'), exact: true }).click());
      expect(refused.status()).toBe(403);
      await checkPage(page, 'recovery of a self-locked account', { title: 'recover.locked_title' });

      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await stranger.close();
      await citizen.close();
    }
  });

  it('shows the key pages in English with ?lang=en: English headings, <html lang="en">, the same checks', async () => {
    const phone = mobile();
    const added = mobile();
    const person = await srv.addPerson({ phone: phone.national, email: `an.${crypto.randomBytes(4).toString('hex')}@example.vn`, contactsVerified: true });
    const citizen = await browser.newContext({ ...PHONE });
    const stranger = await browser.newContext({ ...STRANGER });
    try {
      const page = await citizen.newPage();
      const w = await watch(page);
      await signIn(page, '/account?lang=en', person.pid, person.password, en);
      const english = async (name: string, title: MessageKey) => {
        await checkPage(page, `${name} (en)`, { title, t: en });
        // Not the Vietnamese heading by mistake (an untranslated key falls back to Vietnamese).
        expect({ page: name, heading: await page.locator('h1').textContent() }).not.toEqual({ page: name, heading: vi(title) });
      };
      await english('home', 'acct_home.title');
      for (const s of SECTIONS) {
        await page.goto(`${srv.issuer}${s.path}?lang=en`);
        await english(s.path, s.title);
      }

      await page.goto(`${srv.issuer}/account/profile?lang=en`);
      await page.locator('input[name="phone"]').fill(added.national);
      await page.locator('#add-phone-current').fill(person.password);
      const sentBefore = messagesTo(srv, added.e164).length;
      await posting(page, '/account/profile/contacts/add', () => page.locator('form:has(input[name="phone"]) button[type="submit"]').click());
      await english('contact code', 'profile.code_title');
      await page.locator('input[name="code"]').fill(await nextCode(srv, added.e164, sentBefore));
      await posting(page, '/account/profile/contacts/code', () => page.getByRole('button', { name: en('profile.confirm_code'), exact: true }).click());
      await english('/account/profile (phone added)', 'profile.title');

      await page.goto(`${srv.issuer}/account/password?lang=en`);
      await page.locator('input[name="current_password"]').fill(person.password);
      await page.locator('input[name="password"]').fill(CHANGED_PASSWORD);
      await page.locator('input[name="password_confirm"]').fill(CHANGED_PASSWORD);
      await posting(page, '/account/password', () => page.getByRole('button', { name: en('password_page.submit'), exact: true }).click());
      await english('password changed', 'password_page.done_title');

      const contacts = [phone.e164, added.e164];
      const before = counts(contacts);
      const other = await stranger.newPage();
      await signIn(other, '/account', person.pid, CHANGED_PASSWORD);
      const notice = await waitFor(() => messageTo(contacts, before, (m) => m.text.includes('/account/not-me/')), 10_000);
      await page.goto(`${linkOf(notice)!}?lang=en`);
      await english('not-me link', 'notme.title');
      await posting(page, new URL(page.url()).pathname, () => page.getByRole('button', { name: en('notme.press'), exact: true }).click());
      await english('not-me done', 'notme.done_title');
      // The link's button signs the stranger out too.
      await other.goto(`${srv.issuer}/account`);
      expect(await isSignInPage(other)).toBe(true);
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await stranger.close();
      await citizen.close();
    }
  });
});
