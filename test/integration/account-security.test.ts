/**
 * /account/security: a citizen signs in to their own account area (through the provider, as
 * dinhdanh's first-party client), adds an authenticator app, sees it listed, removes it after
 * re-authenticating, and makes new recovery codes. Every change is same-origin, CSRF-checked and
 * needs a sign-in within the last 5 minutes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { MINUTE, pageSteps, totpCode, totpSecret, type Person } from '../helpers/pages.js';

let now = Date.now();
let srv: TestServer;

beforeAll(async () => { srv = await startTestServer({ now: () => now }); });
afterAll(async () => { await srv.close(); });

const { url, submit } = pageSteps({ server: () => srv });
const totp = (secret: string) => totpCode(secret, now);

async function post(browser: Browser, page: Response, action: string, fields: Record<string, string> = {}): Promise<Response> {
  return browser.post(url(action), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
}

/** Opens /account/security, signing in with the password (and a code when enrolled). */
async function openAccount(browser: Browser, person: Person, secret?: string): Promise<Response> {
  let page = await browser.get(url('/account/security'));
  if (page.text.includes('name="identifier"')) {
    page = await submit(browser, page, { identifier: person.pid, password: person.password });
  }
  if (page.text.includes('name="code"') && secret && !page.text.includes('data-testid="totp-secret"')) {
    page = await submit(browser, page, { code: await totp(secret) });
  }
  return page;
}

describe('account security', () => {
  it('signs in without a consent page, adds an authenticator app with recovery codes, lists it', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const page = await openAccount(browser, person);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Bảo mật tài khoản');
    expect(page.text).not.toContain('name="decision"');
    expect(page.text).not.toContain('data-testid="factor"');

    const enrol = await post(browser, page, '/account/security/totp', { current_password: person.password });
    const secret = totpSecret(enrol.text);
    const factor = hiddenField(enrol.text, 'factor');
    const codes = await post(browser, enrol, '/account/security/totp/confirm', { factor, code: await totp(secret) });
    expect([...codes.text.matchAll(/data-testid="recovery-code"/g)]).toHaveLength(10);

    const listed = await browser.get(url('/account/security'));
    expect([...listed.text.matchAll(/data-testid="factor"/g)]).toHaveLength(1);
    expect(listed.text).toContain('Ứng dụng xác thực');
    expect(listed.text).toContain('Còn 10 mã');
  });

  it('asks for a fresh sign-in (password and code) before a change after 5 minutes, then removes the factor and its recovery codes', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    let page = await openAccount(browser, person);
    const enrol = await post(browser, page, '/account/security/totp', { current_password: person.password });
    const secret = totpSecret(enrol.text);
    await post(browser, enrol, '/account/security/totp/confirm', { factor: hiddenField(enrol.text, 'factor'), code: await totp(secret) });
    const [stored] = (await srv.system.store.factors.listForPerson(person.id)).filter((f) => f.confirmed);

    now += 6 * MINUTE;
    page = await browser.get(url('/account/security'));
    const reauth = await post(browser, page, '/account/security/factors/remove', { factor: stored!.id, current_password: person.password });
    // Sent through a sign-in with prompt=login: the password page, then the code.
    expect(reauth.text).toContain('name="identifier"');
    expect((await srv.system.store.factors.listForPerson(person.id)).some((f) => f.id === stored!.id)).toBe(true);
    let back = await submit(browser, reauth, { identifier: person.pid, password: person.password });
    expect(back.text).toContain('name="code"');
    now += 31_000;
    back = await submit(browser, back, { code: await totp(secret) });
    expect(back.status).toBe(200);
    expect(back.text).toContain('Bảo mật tài khoản');

    const removed = await post(browser, back, '/account/security/factors/remove', { factor: stored!.id, current_password: person.password });
    expect(alertText(removed.text)).toMatch(/gỡ bỏ/);
    expect(await srv.system.store.factors.listForPerson(person.id)).toEqual([]);
    expect(await srv.system.store.recoveryCodes.countUnused(person.id)).toBe(0);
  });

  it('refuses changes without the CSRF token, from another origin, without a session, and to another person\'s factor', async () => {
    const owner = await srv.addPerson();
    const ownerBrowser = new Browser(srv.issuer);
    const ownerPage = await openAccount(ownerBrowser, owner);
    const enrol = await post(ownerBrowser, ownerPage, '/account/security/totp', { current_password: owner.password });
    const secret = totpSecret(enrol.text);
    await post(ownerBrowser, enrol, '/account/security/totp/confirm', { factor: hiddenField(enrol.text, 'factor'), code: await totp(secret) });
    const [ownerFactor] = await srv.system.store.factors.listForPerson(owner.id);

    const other = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const page = await openAccount(browser, other);
    const csrf = hiddenField(page.text, '_csrf');

    const noToken = await browser.post(url('/account/security/factors/remove'), { factor: ownerFactor!.id });
    expect(noToken.status).toBe(403);
    const foreign = await browser.post(url('/account/security/factors/remove'), { _csrf: csrf, factor: ownerFactor!.id, current_password: other.password }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(foreign.status).toBe(403);
    const notMine = await browser.post(url('/account/security/factors/remove'), { _csrf: csrf, factor: ownerFactor!.id, current_password: other.password });
    expect(notMine.status).toBe(404);
    const anonymous = await new Browser(srv.issuer).post(url('/account/security/factors/remove'), { _csrf: csrf, factor: ownerFactor!.id, current_password: other.password });
    expect(anonymous.status).toBe(401);
    const injected = await browser.post(url('/account/security/factors/remove'), { _csrf: csrf, 'factor[$ne]': 'x', current_password: other.password });
    expect(injected.status).toBe(400);

    expect((await srv.system.store.factors.listForPerson(owner.id)).map((f) => f.id)).toEqual([ownerFactor!.id]);
  });

  it('a forged callback state is refused', async () => {
    const res = await new Browser(srv.issuer).request(url('/account/callback?code=x&state=forged'));
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
  });
});
