/**
 * Passkeys in a real browser: headless Chromium with a virtual authenticator (DevTools protocol
 * `WebAuthn.addVirtualAuthenticator`), against the real pages on http://localhost:<port> (WebAuthn
 * needs a host name, and localhost is a secure context). What the HTTP-level tests cannot show and
 * this does: /static/webauthn.js loads under the CSP, turns the embedded options into a real
 * navigator.credentials.create/get call, and its form post is accepted (CSRF, same origin); the
 * page without JavaScript says that passkeys need it.
 *
 * Runs only when /usr/bin/chromium exists, like signin.browser.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type CDPSession, type Page } from 'playwright-core';
import { browserSuite, launchChromium } from '../helpers/chromium.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { authRequest, discover, redeem, type Portal } from '../helpers/rp.js';
import { translator } from '../../src/http/i18n.js';

jest.setTimeout(60000);

const { describeBrowser, suite: SUITE } = browserSuite('passkeys in headless Chromium (virtual authenticator)');

const vi = translator('vi');
const SUBSTANTIAL = 'urn:dinhdanh:loa:substantial';

let srv: TestServer;
let browser: Browser;
let portal: Portal;
/** The portal's callback endpoint: a page to land on, so navigations end cleanly. */
let portalServer: http.Server;

describeBrowser(SUITE, () => {
  beforeAll(async () => {
    srv = await startTestServer({ host: 'localhost' });
    portalServer = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('portal'); });
    await new Promise<void>((resolve) => portalServer.listen(0, 'localhost', resolve));
    portal = await srv.addPortal({ redirectUris: [`http://localhost:${(portalServer.address() as AddressInfo).port}/callback`] });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    portalServer?.closeAllConnections();
    await new Promise<void>((resolve) => (portalServer ? portalServer.close(() => resolve()) : resolve()));
  });

  /** Console errors and CSP violations the page reported. */
  function watch(page: Page): string[] {
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(msg.text());
      if (/Content Security Policy/i.test(msg.text())) problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(String(err)));
    return problems;
  }

  /** A USB security key that verifies the user and is always touched (no prompt in headless mode). */
  async function addSecurityKey(cdp: CDPSession): Promise<string> {
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return authenticatorId;
  }

  /** Opens the portal's request, signs in with the password; returns where the password page led. */
  async function signInWithPassword(page: Page, person: { pid: string; password: string }, acr?: string) {
    const config = await discover(srv.issuer, portal);
    const req = await authRequest(config, portal, acr ? { acr_values: acr } : {});
    await page.goto(req.url.href);
    await page.getByLabel(vi('login.identifier'), { exact: true }).fill(person.pid);
    await page.getByLabel(vi('login.password'), { exact: true }).fill(person.password);
    await page.getByRole('button', { name: vi('login.submit'), exact: true }).click();
    await page.waitForLoadState('load');
    return { config, req };
  }

  function newContext(options: { javaScriptEnabled?: boolean } = {}) {
    return browser.newContext({ locale: 'vi-VN', ...options });
  }

  async function callback(page: Page, click: () => Promise<void>): Promise<string> {
    const landed = page.waitForURL((u) => u.href.startsWith(`${portal.redirect_uri}?`));
    await click();
    await landed;
    return page.url();
  }

  it('registers a passkey inside the sign-in and signs in with it: the script, the CSP and the form post work together', async () => {
    const person = await srv.addPerson();
    const context = await newContext();
    const page = await context.newPage();
    const problems = watch(page);
    const cdp = await context.newCDPSession(page);
    const authenticatorId = await addSecurityKey(cdp);

    // 1. Enrolment inside a sign-in asking for substantial: choose the passkey instead of the app.
    const first = await signInWithPassword(page, person, SUBSTANTIAL);
    await expect(page.locator('h1').textContent()).resolves.toBe(vi('enrol.title'));
    await page.getByRole('button', { name: vi('enrol.passkey_button'), exact: true }).click();
    await page.locator('[data-testid="recovery-code"]').first().waitFor();
    expect(await page.locator('[data-testid="recovery-code"]').count()).toBe(10);
    await page.getByRole('button', { name: vi('recovery.continue'), exact: true }).click();
    const cb = await callback(page, () => page.locator('button[name="decision"][value="allow"]').click());
    let claims = (await redeem(first.config, first.req, cb)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    const [stored] = await srv.system.store.factors.listForPerson(person.id);
    expect(stored).toMatchObject({ type: 'passkey', confirmed: true, credentialId: credentials[0]!.credentialId.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') });

    // 2. A later sign-in (new browser session, same authenticator): password, then the passkey.
    await context.clearCookies();
    const second = await signInWithPassword(page, person);
    await expect(page.locator('h1').textContent()).resolves.toBe(vi('mfa.title'));
    const cb2 = await callback(page, () => page.getByRole('button', { name: vi('mfa.passkey_button'), exact: true }).click());
    claims = (await redeem(second.config, second.req, cb2)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
    const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect((await srv.system.store.factors.find(stored!.id))!.signCount).toBe(after.credentials[0]!.signCount);

    expect(problems).toEqual([]);
    await context.close();
  });

  it('a browser without JavaScript is told that passkeys need it, and the page still offers recovery codes', async () => {
    const person = await srv.addPerson();
    // A passkey first (with JavaScript and a virtual key)…
    const withJs = await newContext();
    const page = await withJs.newPage();
    await addSecurityKey(await withJs.newCDPSession(page));
    await signInWithPassword(page, person, SUBSTANTIAL);
    await page.getByRole('button', { name: vi('enrol.passkey_button'), exact: true }).click();
    await page.locator('[data-testid="recovery-code"]').first().waitFor();
    await withJs.close();

    // …then a sign-in with JavaScript off.
    const noJs = await newContext({ javaScriptEnabled: false });
    const plain = await noJs.newPage();
    await signInWithPassword(plain, person);
    await expect(plain.locator('h1').textContent()).resolves.toBe(vi('mfa.title'));
    await expect(plain.getByText(vi('mfa.passkey_noscript'), { exact: true }).isVisible()).resolves.toBe(true);
    expect(await plain.getByRole('link', { name: vi('mfa.use_recovery'), exact: true }).count()).toBe(1);
    await noJs.close();
  });
});
