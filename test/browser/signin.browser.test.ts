/**
 * The citizen's journey in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) against the real app over HTTP, with openid-client as the portal.
 *
 * What a fetch-based test cannot show and this one does: the browser's own cookies, the Fetch
 * Metadata / Origin headers it sends on form posts under `Referrer-Policy: no-referrer`, the CSP
 * applied to the page and its stylesheet, the 303 redirect chain followed by a real navigation, a
 * phone-sized layout, and a browser with JavaScript turned off.
 *
 * Runs only when /usr/bin/chromium exists (`.ci/run` installs it with apt-get); otherwise the
 * describe is skipped with a name that says why.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type BrowserContext, type Page, type Request, type Response } from 'playwright-core';
import { PHONE, browserSuite, launchChromium } from '../helpers/chromium.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { authRequest, discover, redeem, type Portal } from '../helpers/rp.js';
import { translator } from '../../src/http/i18n.js';

jest.setTimeout(60000);

const { describeBrowser, suite: SUITE } = browserSuite('browser tests (headless Chromium)');

/** Runs in the page (the project's type-check has no DOM library). */
declare function getComputedStyle(element: unknown): { backgroundColor: string };

const vi = translator('vi');
const en = translator('en');

let srv: TestServer;
let browser: Browser;

/** Everything the page reported that a citizen's browser would show in its console. */
interface Watch {
  consoleErrors: string[];
  cspViolations: string[];
  pageErrors: string[];
}

/**
 * Listens for console errors, page errors and CSP violations. The `securitypolicyviolation` listener
 * is injected by the browser driver (not by the page), so the page's own CSP does not block it; with
 * JavaScript disabled only the console listener (Chromium logs every CSP refusal there) applies.
 */
async function watch(page: Page): Promise<Watch> {
  const w: Watch = { consoleErrors: [], cspViolations: [], pageErrors: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error') w.consoleErrors.push(`${msg.text()} [${msg.location().url}]`);
    if (/Content Security Policy/i.test(msg.text())) w.cspViolations.push(msg.text());
  });
  page.on('pageerror', (err) => w.pageErrors.push(String(err)));
  await page.exposeBinding('__reportCsp', (_source, text: string) => { w.cspViolations.push(text); });
  await page.addInitScript({
    content: "document.addEventListener('securitypolicyviolation', (e) => { window.__reportCsp(e.violatedDirective + ' blocked ' + e.blockedURI); });",
  });
  return w;
}

/**
 * The portal's redirect URI (http://localhost:<port>/callback) has nothing listening: the browser's
 * navigation to it is captured as a request (and then fails to connect, which is fine). It is not
 * answered with `page.route`: request interception hides the Sec-Fetch-* headers from
 * `request.allHeaders()`, and those headers are part of what this test reports.
 */
function waitForCallback(page: Page, portal: Portal): Promise<Request> {
  return page.waitForRequest((r) => r.url().startsWith(`${portal.redirect_uri}?`) && r.isNavigationRequest());
}

/** Submits the form the button belongs to and waits for the POST's own response (before redirects). */
async function submitAndWaitForPost(page: Page, click: () => Promise<void>, pathEnd: string) {
  const posted = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname.endsWith(pathEnd));
  const answered = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith(pathEnd));
  await click();
  const request = await posted;
  const response = await answered;
  const headers = await request.allHeaders();
  await page.waitForLoadState('load');
  return { request, response, headers };
}

function postEvidence(post: { response: Response; headers: Record<string, string> }) {
  const h = post.headers;
  return { status: post.response.status(), 'sec-fetch-site': h['sec-fetch-site'], 'sec-fetch-mode': h['sec-fetch-mode'], origin: h.origin, referer: h.referer, cookie: h.cookie };
}

/** The HTTP statuses of the whole redirect chain a navigation request went through, oldest first. */
async function chainStatuses(request: Request): Promise<string[]> {
  const chain: Request[] = [];
  for (let r: Request | null = request; r; r = r.redirectedFrom()) chain.unshift(r);
  const out: string[] = [];
  for (const r of chain) {
    const res = await r.response();
    out.push(`${r.method()} ${new URL(r.url()).pathname} → ${res ? res.status() : 'no response'}`);
  }
  return out;
}

async function scrollWidth(page: Page): Promise<number> {
  // Read through a locator so it also works with JavaScript disabled for the page.
  return page.locator('html').evaluate((el) => (el as unknown as { scrollWidth: number }).scrollWidth);
}

/** Debian's Chromium; the background-networking flags keep it off this machine's closed network. */
function launch(): Promise<Browser> {
  return launchChromium();
}

async function newPhone(options: { javaScriptEnabled?: boolean; in?: Browser } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await (options.in ?? browser).newContext({ ...PHONE, javaScriptEnabled: options.javaScriptEnabled ?? true });
  const page = await context.newPage();
  return { context, page };
}

/**
 * The citizen's whole sign-in on one page: open the portal's authorization URL, sign in, allow,
 * land on the portal's callback; then the portal redeems the code. Asserts every step.
 */
async function signInThroughBrowser(page: Page, opts: { checkLayout?: boolean } = {}) {
  const portal = await srv.addPortal();
  const person = await srv.addPerson();
  const config = await discover(srv.issuer, portal);
  const req = await authRequest(config, portal);

  // 1. The portal sends the citizen to dinhdanh; the browser follows the redirect to the login page.
  const first = await page.goto(req.url.href);
  expect(first?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+$/);
  expect(await page.locator('html').getAttribute('lang')).toBe('vi');
  const headers = await first!.allHeaders();
  expect(headers['content-security-policy']).toContain("default-src 'none'");
  expect(headers['referrer-policy']).toBe('no-referrer');
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('login.title'));

  // The field is found through its visible label, as a screen reader would announce it.
  const identifier = page.getByLabel(vi('login.identifier'), { exact: true });
  expect(await identifier.getAttribute('name')).toBe('identifier');
  const password = page.getByLabel(vi('login.password'), { exact: true });
  expect(await password.getAttribute('name')).toBe('password');
  if (opts.checkLayout) expect(await scrollWidth(page)).toBeLessThanOrEqual(360);

  // 2. Type the number and the password, press the button.
  await identifier.fill(person.pid);
  await password.fill(person.password);
  const login = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('login.submit'), exact: true }).click(), '/login');
  // What a real browser sends on the form post under `Referrer-Policy: no-referrer`: Fetch Metadata
  // says same-origin, Origin is the opaque "null", no Referer. A 403 (cross_origin / csrf) here would
  // mean that no citizen can sign in.
  expect(postEvidence(login)).toEqual({ status: 303, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', origin: 'null', referer: undefined, cookie: expect.stringContaining('dd_interaction=') });

  // 3. The consent page names the portal.
  const allow = page.locator('button[name="decision"][value="allow"]');
  await allow.waitFor({ state: 'visible' });
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('consent.title'));
  await expect(page.locator('main').textContent()).resolves.toContain(portal.input.name);
  expect(await page.locator('button[name="decision"][value="deny"]').count()).toBe(1);
  if (opts.checkLayout) expect(await scrollWidth(page)).toBeLessThanOrEqual(360);

  // 4. Allow: the browser is sent back to the portal's redirect URI.
  const callback = waitForCallback(page, portal);
  const consent = await submitAndWaitForPost(page, () => allow.click(), '/consent');
  expect(postEvidence(consent)).toEqual({ status: 303, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', origin: 'null', referer: undefined, cookie: expect.stringContaining('dd_session=') });
  const cb = await callback;
  // The browser followed the whole 303 chain by itself: consent post → resume → the portal.
  expect(await chainStatuses(cb)).toEqual([
    expect.stringMatching(/^POST \/interaction\/[^/]+\/consent → 303$/),
    expect.stringMatching(/^GET \/auth\/[^/]+ → 303$/),
    expect.stringMatching(/^GET \/callback → /),
  ]);
  const params = new URL(cb.url()).searchParams;
  expect(params.get('iss')).toBe(srv.issuer);
  expect(params.get('state')).toBe(req.state);
  expect(params.get('code')).toBeTruthy();

  // 5. The portal redeems the code with PKCE and validates the ID token.
  const tokens = await redeem(config, req, cb.url());
  const claims = tokens.claims()!;
  expect(claims.iss).toBe(srv.issuer);
  expect(claims.aud).toBe(portal.client_id);
  expect(claims.acr).toBe('urn:dinhdanh:loa:low');
  expect(claims.amr).toEqual(['pwd']);
  expect(claims.sub).not.toContain(person.pid);
  return { portal, person, claims };
}

/** Opens a fresh authorization request and waits on the login page. */
async function openLogin(page: Page) {
  const portal = await srv.addPortal();
  const person = await srv.addPerson();
  const config = await discover(srv.issuer, portal);
  const req = await authRequest(config, portal);
  const res = await page.goto(req.url.href);
  expect(res?.status()).toBe(200);
  await page.locator('input[name="identifier"]').waitFor();
  return { portal, person, config, req };
}

describeBrowser(SUITE, () => {
  beforeAll(async () => {
    srv = await startTestServer();
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('signs a citizen in on a 360 px phone: login, consent, back at the portal with an acr=low ID token', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await signInThroughBrowser(page, { checkLayout: true });
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('fits the login page in 360 px without horizontal scrolling, styled (screenshot in /tmp)', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await openLogin(page);
      await page.waitForLoadState('networkidle');
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      // The stylesheet loaded and applied under `default-src 'none'; style-src 'self'`.
      const headerColour = await page.locator('header.top').evaluate((el) => getComputedStyle(el).backgroundColor);
      expect(headerColour).toBe('rgb(179, 38, 30)');
      const submit = await page.getByRole('button', { name: vi('login.submit'), exact: true }).boundingBox();
      expect(submit!.height).toBeGreaterThanOrEqual(44); // a touch target a thumb can hit
      for (const name of ['identifier', 'password']) {
        const box = await page.locator(`input[name="${name}"]`).boundingBox();
        expect(box!.x).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width).toBeLessThanOrEqual(360);
      }
      await page.screenshot({ path: '/tmp/dinhdanh-login-360.png', fullPage: true });
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('works with JavaScript turned off', async () => {
    const { context, page } = await newPhone({ javaScriptEnabled: false });
    try {
      const w = await watch(page);
      await signInThroughBrowser(page);
      expect(w.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows a wrong password in role="alert", keeps the number, and the re-shown form still signs in', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      const { person } = await openLogin(page);
      await page.getByLabel(vi('login.identifier'), { exact: true }).fill(person.pid);
      await page.getByLabel(vi('login.password'), { exact: true }).fill('không phải mật khẩu này 9999');
      const failed = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('login.submit'), exact: true }).click(), '/login');
      expect(failed.response.status()).toBe(200);

      const alert = page.getByRole('alert');
      expect(await alert.count()).toBe(1);
      await expect(alert.textContent()).resolves.toContain(vi('login.failed'));
      const identifier = page.getByLabel(vi('login.identifier'), { exact: true });
      expect(await identifier.inputValue()).toBe(person.pid);
      expect(await identifier.getAttribute('aria-invalid')).toBe('true');
      expect(await identifier.getAttribute('aria-describedby')).toContain('form-error');
      expect(await page.getByLabel(vi('login.password'), { exact: true }).inputValue()).toBe(''); // never echoed back
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);

      // The re-rendered form is a working form (fresh CSRF token, same interaction).
      await page.getByLabel(vi('login.password'), { exact: true }).fill(person.password);
      const ok = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('login.submit'), exact: true }).click(), '/login');
      expect(ok.response.status()).toBe(303);
      await page.locator('button[name="decision"][value="allow"]').waitFor();
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('reports no console errors and no CSP violations on the login page, before and after a wrong password', async () => {
    // A browser of its own: Chromium asks an origin for /favicon.ico once per browser process and
    // then remembers the answer, so in the shared browser what this page reports would depend on
    // which test ran first.
    const own = await launch();
    const { page } = await newPhone({ in: own });
    try {
      const w = await watch(page);
      const { person } = await openLogin(page);
      await page.waitForLoadState('networkidle'); // the browser's own follow-up requests (icon) have settled
      const onFirstLoad = [...w.consoleErrors];

      await page.getByLabel(vi('login.identifier'), { exact: true }).fill(person.pid);
      await page.getByLabel(vi('login.password'), { exact: true }).fill('không phải mật khẩu này 9999');
      await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('login.submit'), exact: true }).click(), '/login');
      await page.getByRole('alert').waitFor();
      await page.waitForLoadState('networkidle');
      const afterWrongPassword = w.consoleErrors.slice(onFirstLoad.length);

      expect({ onFirstLoad, afterWrongPassword, csp: w.cspViolations, page: w.pageErrors })
        .toEqual({ onFirstLoad: [], afterWrongPassword: [], csp: [], page: [] });
    } finally {
      await own.close();
    }
  });

  it('switches to English through the language link, and keeps English for the rest of the journey', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      const { person, portal } = await openLogin(page);
      expect(await page.locator('html').getAttribute('lang')).toBe('vi');
      const link = page.getByRole('link', { name: vi('lang.switch'), exact: true });
      expect(await link.getAttribute('hreflang')).toBe('en');
      await Promise.all([page.waitForURL(/[?&]lang=en\b/), link.click()]);
      await page.waitForLoadState('load');

      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      await expect(page.locator('h1').textContent()).resolves.toBe('Sign in');
      expect(await page.getByRole('button', { name: 'Sign in', exact: true }).count()).toBe(1);
      const identifier = page.getByLabel(en('login.identifier'), { exact: true });
      expect(await identifier.getAttribute('name')).toBe('identifier');
      expect(await page.getByRole('link', { name: en('lang.switch'), exact: true }).getAttribute('hreflang')).toBe('vi');

      // The choice is remembered: the consent page after the post is English too.
      await identifier.fill(person.pid);
      await page.getByLabel(en('login.password'), { exact: true }).fill(person.password);
      const login = await submitAndWaitForPost(page, () => page.getByRole('button', { name: 'Sign in', exact: true }).click(), '/login');
      expect(login.response.status()).toBe(303);
      await page.locator('button[name="decision"][value="allow"]').waitFor();
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      await expect(page.locator('h1').textContent()).resolves.toBe(en('consent.title'));
      await expect(page.locator('main').textContent()).resolves.toContain(en('consent.intro', { portal: portal.input.name }));
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });
});
