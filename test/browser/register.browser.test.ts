/**
 * Self-service registration in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) against the real app over HTTP, with openid-client as the portal.
 *
 * A citizen who has no account opens a portal's sign-in page, follows "Đăng ký", types the details
 * the population registry holds (a file registry written before the server starts), the code that
 * arrives in the development outbox, and a password; chooses "later" for the second factor, and lands
 * back at the portal's redirect URI with an authorization code, which the portal redeems for an ID
 * token at `urn:dinhdanh:loa:low`. What the fetch-based tests cannot show: the browser's own cookies
 * (the self-service flow cookie, the interaction cookie), the Origin / Fetch Metadata headers of its
 * form posts under `Referrer-Policy: no-referrer`, the CSP applied to each page, an `<input
 * type=date>` filled as a person would, and a phone-sized layout.
 *
 * Runs only when /usr/bin/chromium exists (`.ci/run` installs it with apt-get); otherwise the
 * describe is skipped with a name that says why.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type BrowserContext, type Page, type Request, type Response } from 'playwright-core';
import { PHONE, browserSuite, launchChromium, watch } from '../helpers/chromium.js';
import { axeViolations } from '../helpers/axe.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { authRequest, discover, redeem, type Portal } from '../helpers/rp.js';
import { translator } from '../../src/http/i18n.js';

jest.setTimeout(90000);

const { describeBrowser, suite: SUITE } = browserSuite('self-service registration in headless Chromium');

const vi = translator('vi');

/** A person in the population registry who has no dinhdanh account yet. */
interface Citizen {
  pid: string;
  full_name: string;
  birthdate: string;
  gender: 'male' | 'female';
  /** As typed on the form (national format). */
  phone: string;
  /** As the outbox records it. */
  e164: string;
}

/**
 * Identification numbers consistent with birth date and gender (PRODUCT.md reference data): Hanoi
 * (001), then 0 for a man / 1 for a woman born in the 1900s, then the year's last two digits, then
 * six random digits (never 000xxx: the harness's `addPerson` numbers start there).
 */
function citizen(gender: 'male' | 'female', full_name: string, birthdate: string): Citizen {
  const serial = String(100000 + crypto.randomInt(900000));
  const local = `9${String(crypto.randomInt(100000000)).padStart(8, '0')}`;
  return {
    pid: `001${gender === 'male' ? '0' : '1'}${birthdate.slice(2, 4)}${serial}`,
    full_name,
    birthdate,
    gender,
    phone: `0${local}`,
    e164: `+84${local}`,
  };
}

const AN = citizen('male', 'Nguyễn Văn An', '1990-05-17');
const NGOC = citizen('female', 'Trần Thị Bích Ngọc', '1990-11-02');
/** A password with nothing personal in it, long enough for an account without a second factor. */
const NEW_PASSWORD = 'sông dài biển rộng trăng soi bến cũ 2025';

let srv: TestServer;
let browser: Browser;
let registryDir: string;

async function newPhone(options: { javaScriptEnabled?: boolean } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ...PHONE, javaScriptEnabled: options.javaScriptEnabled ?? true });
  const page = await context.newPage();
  return { context, page };
}

async function scrollWidth(page: Page): Promise<number> {
  // Read through a locator so it also works with JavaScript disabled for the page.
  return page.locator('html').evaluate((el) => (el as unknown as { scrollWidth: number }).scrollWidth);
}

/**
 * The portal's redirect URI (http://localhost:<port>/callback) has nothing listening: the browser's
 * navigation to it is captured as a request (and then fails to connect, which is fine).
 */
function waitForCallback(page: Page, portal: Portal): Promise<Request> {
  return page.waitForRequest((r) => r.url().startsWith(`${portal.redirect_uri}?`) && r.isNavigationRequest());
}

/** Submits the form the button belongs to and waits for the POST's own response (before redirects). */
async function submitAndWaitForPost(page: Page, click: () => Promise<void>, pathname: string) {
  const posted = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === pathname);
  const answered = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === pathname);
  await click();
  const request = await posted;
  const response = await answered;
  const headers = await request.allHeaders();
  return { request, response, headers };
}

/** What a real browser sent with a form post, and the answer's status. */
function postEvidence(post: { response: Response; headers: Record<string, string> }) {
  const h = post.headers;
  return { status: post.response.status(), 'sec-fetch-site': h['sec-fetch-site'], origin: h.origin, cookie: h.cookie };
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

/** The development outbox's messages to `to`, oldest first. */
function outboxTo(to: string): Array<{ to: string; text: string }> {
  const file = path.join(srv.system.config.outboxDir, 'outbox.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { to: string; text: string })
    .filter((m) => m.to === to);
}

/** The code in the newest message to `to` (the only run of exactly six digits), waiting for it to arrive. */
async function codeSentTo(to: string, before: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const messages = outboxTo(to);
    if (messages.length > before) {
      const runs = messages.at(-1)!.text.match(/(?<!\d)\d{6}(?!\d)/g) ?? [];
      expect(runs).toHaveLength(1);
      return runs[0]!;
    }
    if (Date.now() > deadline) throw new Error(`no message to ${to} in the outbox`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A fresh portal and authorization request; the browser opens the portal's sign-in page, then its "Đăng ký" link. */
async function openRegisterFromPortal(page: Page) {
  const portal = await srv.addPortal();
  const config = await discover(srv.issuer, portal);
  const req = await authRequest(config, portal);
  const first = await page.goto(req.url.href);
  expect(first?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+$/);
  const uid = new URL(page.url()).pathname.split('/')[2]!;

  const link = page.getByTestId('register-link');
  expect(await link.textContent()).toBe(vi('login.register'));
  expect(await link.getAttribute('href')).toBe(`/interaction/${uid}/register`);
  // The link's GET answers 303 to /register, which the browser follows by itself.
  await Promise.all([page.waitForURL((u) => u.pathname === '/register'), link.click()]);
  await page.waitForLoadState('load');
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('register.title'));
  await expect(page.locator('main').textContent()).resolves.toContain(vi('register.intro_portal', { portal: portal.input.name }));
  return { portal, config, req, uid };
}

/**
 * The whole registration on one page, from the portal's sign-in page to its redirect URI; the portal
 * redeems the code. Asserts every step; `checkLayout` also checks each page at 360 px.
 */
async function registerThroughBrowser(page: Page, person: Citizen, opts: { checkLayout?: boolean } = {}) {
  const { portal, config, req, uid } = await openRegisterFromPortal(page);
  // Each page fits a 360 px phone and breaks no WCAG 2.1 AA rule axe-core checks.
  const fits = async () => {
    if (!opts.checkLayout) return;
    expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
    expect(await axeViolations(page)).toEqual([]);
  };
  await fits();

  // 1. The details, each field found through its visible label.
  await page.getByLabel(vi('login.identifier'), { exact: true }).fill(person.pid);
  await page.getByLabel(vi('register.full_name'), { exact: true }).fill(person.full_name);
  await page.getByLabel(vi('register.birthdate'), { exact: true }).fill(person.birthdate);
  await page.getByRole('radio', { name: vi(person.gender === 'male' ? 'register.gender_male' : 'register.gender_female'), exact: true }).check();
  await page.getByLabel(vi('register.phone'), { exact: true }).fill(person.phone);
  const sentBefore = outboxTo(person.e164).length;
  const details = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('register.submit'), exact: true }).click(), '/register');
  // A 403 here (cross_origin / csrf) would mean no citizen can register from a real browser.
  expect(postEvidence(details)).toEqual({ status: 200, 'sec-fetch-site': 'same-origin', origin: 'null', cookie: expect.stringContaining('dd_selfservice=') });

  // 2. The code sent to the phone.
  const code = page.getByLabel(vi('selfservice.code_label'), { exact: true });
  await code.waitFor({ state: 'visible' });
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('register.code_title'));
  expect(await code.getAttribute('name')).toBe('code');
  await fits();
  await code.fill(await codeSentTo(person.e164, sentBefore));
  const coded = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('selfservice.continue'), exact: true }).click(), '/register/code');
  expect(postEvidence(coded)).toEqual({ status: 200, 'sec-fetch-site': 'same-origin', origin: 'null', cookie: expect.stringContaining('dd_selfservice=') });

  // 3. The password, twice.
  const password = page.getByLabel(vi('password.new'), { exact: true });
  await password.waitFor({ state: 'visible' });
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('register.password_title'));
  expect(await password.getAttribute('name')).toBe('password');
  await fits();
  await password.fill(NEW_PASSWORD);
  const confirm = page.getByLabel(vi('password.confirm'), { exact: true });
  expect(await confirm.getAttribute('name')).toBe('password_confirm');
  await confirm.fill(NEW_PASSWORD);
  const set = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('selfservice.continue'), exact: true }).click(), '/register/password');
  expect(postEvidence(set)).toEqual({ status: 200, 'sec-fetch-site': 'same-origin', origin: 'null', cookie: expect.stringContaining('dd_selfservice=') });

  // 4. The account is made; the second factor is offered, "later" goes on to the portal.
  const later = page.locator('button[name="choice"][value="later"]');
  await later.waitFor({ state: 'visible' });
  await expect(page.locator('h1').textContent()).resolves.toBe(vi('register.done_title'));
  expect(await page.locator('button[name="choice"][value="now"]').count()).toBe(1);
  expect((await later.textContent())?.trim()).toBe(vi('register.factor_later_portal', { portal: portal.input.name }));
  await fits();

  const callback = waitForCallback(page, portal);
  const allow = page.locator('button[name="decision"][value="allow"]');
  const onward = await submitAndWaitForPost(page, () => later.click(), '/register/continue');
  expect(postEvidence(onward)).toEqual({ status: 303, 'sec-fetch-site': 'same-origin', origin: 'null', cookie: expect.stringContaining('dd_selfservice=') });
  expect(onward.response.headers().location).toBe(`/interaction/${uid}`);

  // 5. The portal may ask for consent first (a first sign-in there); then back at its redirect URI.
  const next = await Promise.race([
    callback.then(() => 'callback' as const),
    allow.waitFor({ state: 'visible' }).then(() => 'consent' as const, () => 'neither' as const),
  ]);
  if (next === 'consent') {
    await expect(page.locator('h1').textContent()).resolves.toBe(vi('consent.title'));
    await expect(page.locator('main').textContent()).resolves.toContain(portal.input.name);
    await fits();
    const consent = await submitAndWaitForPost(page, () => allow.click(), `${new URL(page.url()).pathname}/consent`);
    expect(consent.response.status()).toBe(303);
  }
  const cb = await callback;
  const chain = await chainStatuses(cb);
  expect(chain.at(-2)).toMatch(/^GET \/auth\/[^/]+ → 303$/);
  expect(chain.at(-1)).toMatch(/^GET \/callback → /);
  const params = new URL(cb.url()).searchParams;
  expect(params.get('iss')).toBe(srv.issuer);
  expect(params.get('state')).toBe(req.state);
  expect(params.get('code')).toBeTruthy();
  expect(params.get('error')).toBeNull();

  // 6. The portal redeems the code with PKCE and validates the ID token: a password-level sign-in.
  const tokens = await redeem(config, req, cb.url());
  const claims = tokens.claims()!;
  expect(claims.iss).toBe(srv.issuer);
  expect(claims.aud).toBe(portal.client_id);
  expect(claims.acr).toBe('urn:dinhdanh:loa:low');
  expect(claims.sub).not.toContain(person.pid);
  return { portal, claims, consented: next === 'consent' };
}

/** Every form control a person can reach, with the text of its label(s) (or aria-label). */
async function controlsWithLabels(page: Page): Promise<Array<{ name: string; type: string; value: string; label: string }>> {
  return page.locator('main input:not([type="hidden"]), main select, main textarea').evaluateAll((els) => els.map((el) => {
    const e = el as unknown as {
      name: string; type: string; value: string;
      labels: ArrayLike<{ textContent: string | null }> | null;
      getAttribute(name: string): string | null;
    };
    const fromLabels = Array.from(e.labels ?? []).map((l) => (l.textContent ?? '').replace(/\s+/g, ' ').trim()).join(' ');
    return { name: e.name, type: e.type, value: e.type === 'radio' ? e.value : '', label: fromLabels || (e.getAttribute('aria-label') ?? '').trim() };
  }));
}

describeBrowser(SUITE, () => {
  beforeAll(async () => {
    // The file registry, written before the server starts (whether the connector reads it once or on each question).
    registryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-registry-'));
    const registry = path.join(registryDir, 'registry.jsonl');
    fs.writeFileSync(registry, [AN, NGOC].map((p) => JSON.stringify({ pid: p.pid, full_name: p.full_name, birthdate: p.birthdate, gender: p.gender })).join('\n') + '\n');
    srv = await startTestServer({ env: { DINHDANH_REGISTRY: `file:${registry}` } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    if (registryDir) fs.rmSync(registryDir, { recursive: true, force: true });
  });

  it('registers a citizen from a portal\'s sign-in page on a 360 px phone and lands at the portal with a code for an acr=low ID token', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await registerThroughBrowser(page, AN, { checkLayout: true });
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
      // The account exists now, under the number the registry knows.
      expect(await srv.system.store.persons.findByPid(AN.pid)).toMatchObject({ pid: AN.pid });
    } finally {
      await context.close();
    }
  });

  it('fits /register in 360 px, labels every input, and reports an empty form\'s errors in role="alert"', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await openRegisterFromPortal(page);
      await page.waitForLoadState('networkidle');
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);

      // Every input has a label a screen reader announces (the radios by their wrapping label).
      const controls = await controlsWithLabels(page);
      expect(controls.filter((c) => c.label === '')).toEqual([]);
      expect(controls.map(({ name, value, label }) => ({ name, value, label }))).toEqual([
        { name: 'pid', value: '', label: vi('login.identifier') },
        { name: 'full_name', value: '', label: vi('register.full_name') },
        { name: 'birthdate', value: '', label: vi('register.birthdate') },
        { name: 'gender', value: 'male', label: vi('register.gender_male') },
        { name: 'gender', value: 'female', label: vi('register.gender_female') },
        { name: 'phone', value: '', label: vi('register.phone') },
        { name: 'email', value: '', label: vi('register.email') },
      ]);
      expect(await page.locator('input[name="birthdate"]').getAttribute('type')).toBe('date');
      await expect(page.locator('fieldset legend').textContent()).resolves.toBe(vi('register.gender'));
      for (const c of controls) {
        const box = await page.locator(`input[name="${c.name}"]${c.type === 'radio' ? `[value="${c.value}"]` : ''}`).boundingBox();
        expect(box!.x).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width).toBeLessThanOrEqual(360);
      }
      const submit = await page.getByRole('button', { name: vi('register.submit'), exact: true }).boundingBox();
      expect(submit!.height).toBeGreaterThanOrEqual(44); // a touch target a thumb can hit
      expect(await page.getByRole('alert').count()).toBe(0);
      await page.screenshot({ path: '/tmp/dinhdanh-register-360.png', fullPage: true });

      // An empty form (the page's `novalidate` lets the browser send it): the server's answer.
      const empty = await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('register.submit'), exact: true }).click(), '/register');
      expect(postEvidence(empty)).toEqual({ status: 400, 'sec-fetch-site': 'same-origin', origin: 'null', cookie: expect.stringContaining('dd_selfservice=') });
      await page.waitForLoadState('load');
      const alert = page.getByRole('alert');
      expect(await alert.count()).toBe(1);
      expect(await alert.isVisible()).toBe(true);
      expect((await alert.textContent())?.trim()).toBe(vi('selfservice.fix_fields'));

      // Each field's own message is tied to its field (aria-invalid, aria-describedby), as the alert says.
      const expected: Record<string, string> = {
        pid: vi('login.identifier_format'),
        full_name: vi('register.name_format'),
        birthdate: vi('register.birthdate_format'),
        phone: vi('register.phone_format'),
      };
      for (const [name, text] of Object.entries(expected)) {
        const input = page.locator(`input[name="${name}"]`);
        expect({ name, invalid: await input.getAttribute('aria-invalid') }).toEqual({ name, invalid: 'true' });
        const described = (await input.getAttribute('aria-describedby'))?.split(/\s+/) ?? [];
        expect(described).toContain(`${name}-error`);
        expect((await page.locator(`#${name}-error`).textContent())?.trim()).toBe(text);
      }
      expect(await page.locator('fieldset').getAttribute('aria-describedby')).toBe('gender-error');
      expect((await page.locator('#gender-error').textContent())?.trim()).toBe(vi('register.gender_required'));
      // The optional e-mail left empty is not an error.
      expect(await page.locator('input[name="email"]').getAttribute('aria-invalid')).toBeNull();
      expect(await page.locator('#email-error').count()).toBe(0);

      // The page with its errors still fits, and its inputs are still labelled.
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      expect((await controlsWithLabels(page)).filter((c) => c.label === '')).toEqual([]);
      expect(await axeViolations(page)).toEqual([]);
      await page.screenshot({ path: '/tmp/dinhdanh-register-360-errors.png', fullPage: true });
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('fits /recover in 360 px with no WCAG 2.1 AA violation found by axe-core, before and after a wrong entry', async () => {
    const { context, page } = await newPhone();
    try {
      const w = await watch(page);
      await page.goto(`${srv.issuer}/recover`);
      await expect(page.locator('h1').textContent()).resolves.toBe(vi('recover.title'));
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      expect(await axeViolations(page)).toEqual([]);
      await page.getByLabel(vi('login.identifier'), { exact: true }).fill('12345');
      await page.getByLabel(vi('recover.contact'), { exact: true }).fill('not a contact');
      await submitAndWaitForPost(page, () => page.getByRole('button', { name: vi('recover.submit'), exact: true }).click(), '/recover');
      await expect(page.getByRole('alert').textContent()).resolves.toContain(vi('selfservice.fix_fields'));
      expect(await scrollWidth(page)).toBeLessThanOrEqual(360);
      expect(await axeViolations(page)).toEqual([]);
      expect({ csp: w.cspViolations, page: w.pageErrors }).toEqual({ csp: [], page: [] });
    } finally {
      await context.close();
    }
  });

  it('registers with JavaScript turned off', async () => {
    const { context, page } = await newPhone({ javaScriptEnabled: false });
    try {
      const w = await watch(page, false);
      await registerThroughBrowser(page, NGOC);
      expect(w.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
