/**
 * The development demo in a real browser (issue 4, "the demo shows all of it in a browser"): one
 * headless Chromium context walks the README's "Try it: two demo portals" section step by step —
 * sign in at the national portal with the demo citizen's password, single sign-on at the provincial
 * portal (consent only, a different pairwise `sub`), "Đăng xuất" with "all portals" on dinhdanh's
 * page, the other portal showing that back-channel logout ended its session, and a fresh sign-in
 * asking for the password again.
 *
 * As in `npm start`, dinhdanh is on http://localhost:<port>, the national portal on
 * http://localhost:<port> and the provincial one on http://127.0.0.1:<port>; the browser keeps its
 * own cookies for each. Runs only when /usr/bin/chromium exists, like signin.browser.test.ts.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { browserSuite, launchChromium } from '../helpers/chromium.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { DEMO_CITIZEN, startDemo, type Demo } from '../../src/demo/index.js';
import { translator } from '../../src/http/i18n.js';

jest.setTimeout(60000);

const { describeBrowser, suite: SUITE } = browserSuite('the demo portals in headless Chromium (README "Try it")');

const vi = translator('vi');
const SIGN_IN = 'Đăng nhập bằng dinhdanh';
const SIGN_OUT = 'Đăng xuất';

let srv: TestServer;
let demo: Demo;
let browser: Browser;
let national: string;
let provincial: string;

const onIssuer = (url: URL) => url.origin === srv.issuer;
const at = (origin: string, pathname: string) => (url: URL) => url.origin === origin && url.pathname === pathname;

/** Text of a `data-testid` element on the page (trimmed). */
async function shown(page: Page, testid: string): Promise<string> {
  return ((await page.getByTestId(testid).textContent()) ?? '').trim();
}

/** Presses the portal's "Đăng nhập bằng dinhdanh" and waits on dinhdanh's page. */
async function pressSignIn(page: Page): Promise<void> {
  const link = page.getByRole('link', { name: SIGN_IN, exact: true });
  expect(await link.getAttribute('href')).toBe('/login');
  await Promise.all([page.waitForURL(onIssuer), link.click()]);
  await page.waitForLoadState('load');
}

/** On dinhdanh's consent page: "allow", then back at the portal's home page. */
async function allow(page: Page, portal: string): Promise<void> {
  const button = page.locator('button[name="decision"][value="allow"]');
  await button.waitFor({ state: 'visible' });
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('consent.title'));
  await Promise.all([page.waitForURL(at(portal, '/')), button.click()]);
  await page.getByTestId('sub').waitFor();
}

describeBrowser(SUITE, () => {
  beforeAll(async () => {
    srv = await startTestServer({ host: 'localhost' });
    demo = await startDemo(srv.system, { ports: [0, 0] });
    [national, provincial] = demo.urls as [string, string];
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
    await srv?.close();
  });

  it('signs in at the national portal, single sign-on at the provincial one, single logout reaches the other portal', async () => {
    expect(new URL(national).hostname).toBe('localhost');
    expect(new URL(provincial).hostname).toBe('127.0.0.1');
    const password = demo.citizen.password;
    expect(password).toBeTruthy();

    const context: BrowserContext = await browser.newContext({ locale: 'vi-VN' });
    try {
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(String(err)));

      // 2. The national portal: "Đăng nhập bằng dinhdanh", dinhdanh's login page, the printed password.
      await page.goto(`${national}/`);
      expect(await shown(page, 'signed-out')).toBe('Bạn chưa đăng nhập.');
      await pressSignIn(page);
      await expect(page.locator('h1').textContent()).resolves.toBe(vi('login.title'));
      await page.locator('input[name="identifier"]').fill(demo.citizen.pid);
      await page.locator('input[name="password"]').fill(password!);
      await Promise.all([
        page.waitForURL((url) => onIssuer(url) && url.pathname.includes('/interaction/')),
        page.locator('form:has(input[name="password"]) button[type="submit"]').click(),
      ]);
      // Allow sharing: back at the portal with the citizen's name and its `sub`, `acr`, `amr`, `sid`.
      await allow(page, national);
      expect(await shown(page, 'name')).toBe(DEMO_CITIZEN.name);
      expect(await shown(page, 'amr')).toBe('pwd');
      expect(await shown(page, 'acr')).toBe('urn:dinhdanh:loa:low');
      const subNational = await shown(page, 'sub');
      expect(subNational).toMatch(/^\S{16,}$/);
      expect(subNational).not.toContain(DEMO_CITIZEN.pid);
      expect(await shown(page, 'sid')).toMatch(/\S/);

      // 3. Follow the link to the provincial portal and sign in: no password, only consent.
      const peer = page.getByTestId('peer');
      expect(await peer.getAttribute('href')).toBe(provincial);
      await Promise.all([page.waitForURL(at(provincial, '/')), peer.click()]);
      expect(await shown(page, 'signed-out')).toBe('Bạn chưa đăng nhập.');
      await pressSignIn(page);
      await page.locator('button[name="decision"][value="allow"]').waitFor({ state: 'visible' });
      expect(await page.locator('input[name="password"]').count()).toBe(0);
      expect(await page.locator('input[name="identifier"]').count()).toBe(0);
      await allow(page, provincial);
      expect(await shown(page, 'name')).toBe(DEMO_CITIZEN.name);
      const subProvincial = await shown(page, 'sub');
      expect(subProvincial).toMatch(/^\S{16,}$/);
      expect(subProvincial).not.toBe(subNational);

      // 4. "Đăng xuất", then "all portals" on dinhdanh's confirmation page.
      await Promise.all([page.waitForURL(onIssuer), page.getByRole('button', { name: SIGN_OUT, exact: true }).click()]);
      const all = page.locator('button[name="logout"][value="all"]');
      await all.waitFor({ state: 'visible' });
      await expect(page.locator('h1').textContent()).resolves.toBe(vi('logout.title'));
      await Promise.all([page.waitForURL(at(provincial, '/signed-out')), all.click()]);
      await expect(page.locator('h1').textContent()).resolves.toBe('Bạn đã đăng xuất');

      // Back to the other portal: it says back-channel logout ended its session (delivered
      // asynchronously from dinhdanh's job queue, so reload until it has arrived).
      await page.goto(`${national}/`);
      const notice = page.getByTestId('backchannel-logout');
      for (const until = Date.now() + 10_000; (await notice.count()) === 0 && Date.now() < until;) {
        await page.waitForTimeout(100);
        await page.reload();
      }
      expect(await notice.count()).toBe(1);
      await expect(notice.textContent()).resolves.toContain('đăng xuất kênh sau');
      expect(await page.getByTestId('sub').count()).toBe(0);
      expect(await shown(page, 'signed-out')).toBe('Bạn chưa đăng nhập.');

      // The SSO session at dinhdanh is over too: signing in again asks for the password.
      await pressSignIn(page);
      await page.locator('input[name="password"]').waitFor({ state: 'visible' });
      expect(await page.locator('input[name="identifier"]').count()).toBe(1);
      expect(await page.locator('button[name="decision"]').count()).toBe(0);

      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
