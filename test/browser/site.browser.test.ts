/**
 * The landing page and the session time-out warning in a real browser: headless Chromium (Debian's
 * package, driven by playwright-core) against the real app over HTTP, on a 360 px phone.
 *
 * - `/`: fits 360 px, no serious or critical WCAG 2.2 A/AA violation axe-core finds, and the
 *   keyboard reaches "my account", "register" and "forgotten password" in that order, with a
 *   visible focus ring.
 * - The account pages' time-out warning (WCAG 2.1 SC 2.2.1 Timing Adjustable): the page's clock is
 *   Playwright's (`page.clock`), so 28 minutes pass in an instant while the server's session stays
 *   live. The dialog opens 2 minutes before the 30-minute idle limit as a modal with focus inside,
 *   speaks the time left every 30 seconds (not every second), and its button — or Escape — posts
 *   the keep-alive (204) and closes it; a keep-alive refused (no session: 401) or the time running
 *   out turns it into "you were signed out", with a link to sign in again. Without JavaScript the
 *   dialog never shows.
 *
 * Runs only when /usr/bin/chromium exists (`.ci/run` installs it with apt-get); otherwise the
 * describe is skipped with a name that says why.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PHONE, browserSuite, launchChromium, watch } from '../helpers/chromium.js';
import { axeViolations, serious, WCAG22_AA } from '../helpers/axe.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { translator } from '../../src/http/i18n.js';

jest.setTimeout(90000);

const { describeBrowser, suite: SUITE } = browserSuite('landing page and session time-out in headless Chromium');

const vi = translator('vi');
const en = translator('en');

let srv: TestServer;
let browser: Browser;

async function newPhone(options: { javaScriptEnabled?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ...PHONE, javaScriptEnabled: options.javaScriptEnabled ?? true });
  return { context, page: await context.newPage() };
}

async function scrollWidth(page: Page): Promise<number> {
  // Read through a locator so it also works with JavaScript disabled for the page.
  return page.locator('html').evaluate((el) => (el as unknown as { scrollWidth: number }).scrollWidth);
}

/** What has focus: its data-testid / data-action, tag, and whether it sits in the time-out dialog. */
async function focused(page: Page): Promise<{ testid: string | null; action: string | null; href: string | null; text: string; tag: string; inDialog: boolean; outline: string }> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: { activeElement: unknown } }).document;
    const el = doc.activeElement as {
      tagName: string; textContent: string | null; getAttribute(n: string): string | null; closest(s: string): unknown;
    } | null;
    const style = (globalThis as unknown as { getComputedStyle(e: unknown): { outlineStyle: string; outlineWidth: string } }).getComputedStyle(el);
    return {
      testid: el?.getAttribute('data-testid') ?? null,
      action: el?.getAttribute('data-action') ?? null,
      href: el?.getAttribute('href') ?? null,
      text: (el?.textContent ?? '').trim(),
      tag: el?.tagName.toLowerCase() ?? '',
      inDialog: !!el?.closest('#session-timeout'),
      outline: `${style.outlineStyle} ${style.outlineWidth}`,
    };
  });
}

/** Signs in through the account area (the sign-in page's identifier and password) and opens /account/sessions. */
async function signInToAccount(page: Page, person: { pid: string; password: string }): Promise<void> {
  await page.goto(`${srv.issuer}/account/sessions`);
  await page.locator('input[name="identifier"]').fill(person.pid);
  await page.locator('input[name="password"]').fill(person.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account/security'),
    page.getByRole('button', { name: vi('login.submit'), exact: true }).click(),
  ]);
  await page.goto(`${srv.issuer}/account/sessions`);
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('account.sessions_title'));
}

const dialog = (page: Page) => page.locator('#session-timeout');
const isOpen = (page: Page) => dialog(page).evaluate((d) => (d as unknown as { open: boolean }).open);
const liveText = (page: Page) => page.locator('#session-timeout [data-role="live"]').textContent();
/** Waits (up to 5 s of real time) for `check` to hold; its last answer. */
async function until(check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 5000;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const keepaliveAnswer = (page: Page) => page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/account/keepalive');

describeBrowser(SUITE, () => {
  beforeAll(async () => {
    srv = await startTestServer();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  it.each([
    ['vi', '/', vi],
    ['en', '/?lang=en', en],
  ] as const)('the landing page (%s) fits 360 px, has no serious axe-core violation, and Tab reaches the three links', async (lang, path, t) => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await page.goto(`${srv.issuer}${path}`);
      await expect(page.locator('h1').textContent()).resolves.toBe(t('home.title'));
      expect(await page.locator('html').getAttribute('lang')).toBe(lang);
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      const violations = await axeViolations(page, WCAG22_AA);
      expect(serious(violations)).toEqual([]);
      expect(violations).toEqual([]);

      for (const [id, key] of [['home-account', 'home.account'], ['home-register', 'home.register'], ['home-recover', 'home.recover']] as const) {
        const link = page.getByTestId(id);
        expect((await link.textContent())?.trim()).toBe(t(key));
        const box = (await link.boundingBox())!;
        expect(box.x).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width).toBeLessThanOrEqual(360);
        expect(box.height).toBeGreaterThanOrEqual(44); // a touch target a thumb can hit
      }
      await page.screenshot({ path: `/tmp/dinhdanh-home-360-${lang}.png`, fullPage: true });

      // Keyboard only: skip link, language switch, then the three ways in, each with a visible ring.
      const reached: string[] = [];
      for (let i = 0; i < 6 && reached.length < 3; i += 1) {
        await page.keyboard.press('Tab');
        const f = await focused(page);
        if (f.testid?.startsWith('home-')) {
          reached.push(f.testid);
          expect(f.outline).toBe('solid 3px');
        }
      }
      expect(reached).toEqual(['home-account', 'home-register', 'home-recover']);
      // Enter follows the focused link.
      await Promise.all([page.waitForURL((u) => u.pathname === '/recover'), page.keyboard.press('Enter')]);
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('warns 2 minutes before the idle limit in a modal dialog; its button and Escape keep the session (204); the time running out signs out', async () => {
    const person = await srv.addPerson();
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await page.clock.install();
      await signInToAccount(page, person);
      expect(await isOpen(page)).toBe(false);
      expect(await dialog(page).isVisible()).toBe(false);

      // 28 minutes without a request: nothing yet at 27:30, the warning at 28:01.
      await page.clock.fastForward('27:30');
      expect(await isOpen(page)).toBe(false);
      await page.clock.fastForward('00:31');
      expect(await isOpen(page)).toBe(true);
      const warning = page.getByRole('dialog', { name: vi('timeout.title'), exact: true });
      expect(await warning.isVisible()).toBe(true);
      // Focus moved into the dialog, onto "stay signed in", with a visible ring.
      expect(await focused(page)).toMatchObject({ inDialog: true, action: 'stay', tag: 'button', outline: 'solid 3px' });
      const message = await page.locator('#session-timeout-message').textContent();
      expect(message).toMatch(/^Bạn đã không thao tác một lúc\. .* sau 1 phút 5\d giây\.$/);
      expect(await dialog(page).getAttribute('aria-describedby')).toBe('session-timeout-message');
      // Nothing said yet beyond the dialog's own description; then once per 30-second step.
      expect(await liveText(page)).toBe('');
      await page.clock.fastForward('00:01');
      expect(await liveText(page)).toBe('');
      await page.clock.fastForward('00:30');
      expect(await liveText(page)).toBe(vi('timeout.remaining', { time: '1 phút 30 giây' }));
      expect(await page.locator('#session-timeout-message').textContent()).toMatch(/sau 1 phút (2\d|30) giây\.$/);
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      const box = (await dialog(page).boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(360);
      const violations = await axeViolations(page, WCAG22_AA);
      expect(serious(violations)).toEqual([]);
      expect(violations).toEqual([]);
      await page.screenshot({ path: '/tmp/dinhdanh-timeout-warning-360.png' });

      // "Stay signed in", with the keyboard: a same-origin form post with the page's token, 204.
      const answered = keepaliveAnswer(page);
      await page.keyboard.press('Enter');
      const res = await answered;
      expect(res.status()).toBe(204);
      const headers = await res.request().allHeaders();
      expect(headers['sec-fetch-site']).toBe('same-origin');
      expect(headers['content-type']).toBe('application/x-www-form-urlencoded');
      const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
      expect(res.request().postData()).toBe(new URLSearchParams({ _csrf: csrf }).toString());
      expect(await until(async () => !(await isOpen(page)))).toBe(true);
      // Focus was nowhere in particular before: it is not left on the hidden dialog's button.
      expect(await until(async () => (await focused(page)).tag === 'body')).toBe(true);

      // The clock starts again from the keep-alive: the warning is back 28 minutes later, and Escape
      // counts as "stay signed in" too; focus goes back where it was.
      const endButton = page.locator('main button').first();
      await endButton.focus();
      const before = await focused(page);
      expect(before).toMatchObject({ tag: 'button', inDialog: false });
      await page.clock.fastForward('27:30');
      expect(await isOpen(page)).toBe(false);
      await page.clock.fastForward('00:31');
      expect(await isOpen(page)).toBe(true);
      expect(await focused(page)).toMatchObject({ inDialog: true, action: 'stay' });
      const escaped = keepaliveAnswer(page);
      await page.keyboard.press('Escape');
      expect((await escaped).status()).toBe(204);
      expect(await until(async () => !(await isOpen(page)))).toBe(true);
      expect(await until(async () => (await focused(page)).text === before.text)).toBe(true);
      expect(await focused(page)).toMatchObject({ tag: 'button', inDialog: false });

      // Left alone past the limit: the warning, then "you were signed out" with a way back in.
      await page.clock.fastForward('28:01');
      expect(await isOpen(page)).toBe(true);
      await page.clock.fastForward('02:00');
      const expired = page.getByRole('dialog', { name: vi('timeout.expired_title'), exact: true });
      expect(await expired.isVisible()).toBe(true);
      expect(await dialog(page).getAttribute('aria-describedby')).toBe('session-timeout-expired-message');
      expect(await page.locator('#session-timeout-expired-message').textContent()).toBe(vi('timeout.expired', { minutes: '30' }));
      expect(await page.locator('[data-action="stay"]').isVisible()).toBe(false);
      const signIn = page.getByRole('link', { name: vi('timeout.sign_in'), exact: true });
      expect(await signIn.getAttribute('href')).toBe('/account');
      expect(await focused(page)).toMatchObject({ inDialog: true, action: 'sign-in', tag: 'a', outline: 'solid 3px' });
      expect(serious(await axeViolations(page, WCAG22_AA))).toEqual([]);
      await page.screenshot({ path: '/tmp/dinhdanh-timeout-expired-360.png' });
      // It can be closed to read the page again.
      await page.getByRole('button', { name: vi('timeout.close'), exact: true }).click();
      expect(await isOpen(page)).toBe(false);
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('shows "signed out" when the keep-alive finds no session (401), in English on an English page', async () => {
    const person = await srv.addPerson();
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await page.clock.install();
      await signInToAccount(page, person);
      await page.goto(`${srv.issuer}/account/sessions?lang=en`);
      await page.clock.fastForward('28:01');
      expect(await page.getByRole('dialog', { name: en('timeout.title'), exact: true }).isVisible()).toBe(true);
      expect(await page.locator('#session-timeout-message').textContent()).toMatch(/signed out in 1 minute 5\d seconds\.$/);
      // The session is gone (as after an idle limit, or ended from another device).
      await context.clearCookies();
      const answered = keepaliveAnswer(page);
      await page.getByRole('button', { name: en('timeout.stay'), exact: true }).click();
      expect((await answered).status()).toBe(401);
      expect(await until(() => page.getByRole('dialog', { name: en('timeout.expired_title'), exact: true }).isVisible())).toBe(true);
      expect(await focused(page)).toMatchObject({ inDialog: true, action: 'sign-in' });
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('never shows the dialog without JavaScript, and the account page still works', async () => {
    const person = await srv.addPerson();
    const { context, page } = await newPhone({ javaScriptEnabled: false });
    try {
      const w = await watch(page, false);
      await signInToAccount(page, person);
      expect(await dialog(page).count()).toBe(1);
      expect(await dialog(page).isVisible()).toBe(false);
      expect(await page.getByRole('dialog').count()).toBe(0);
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      expect(w.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
