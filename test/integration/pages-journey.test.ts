/**
 * The journey as a person sees it: language (Vietnamese first, English on request or by the switch),
 * consent in plain words and remembered per portal (PRODUCT.md), and cancelling the sign-in.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, decodeEntities, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { redeem, type Portal } from '../helpers/rp.js';
import { vi } from '../../src/http/locales/vi.js';
import { en } from '../../src/http/locales/en.js';
import { expectLoginShownAgain, expectSignedIn, heading, htmlLang, openLogin, type LoginPage } from './pages-support.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

type Person = Awaited<ReturnType<TestServer['addPerson']>>;

function langSwitch(html: string): { href: string; text: string } {
  const m = /<a class="lang" href="([^"]*)"[^>]*>([^<]*)<\/a>/.exec(html);
  if (!m) throw new Error('no language switch on the page');
  return { href: decodeEntities(m[1]!), text: decodeEntities(m[2]!) };
}

function listItems(html: string): string[] {
  const list = /<ul class="scopes">([\s\S]*?)<\/ul>/.exec(html)?.[1] ?? '';
  return [...list.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => decodeEntities(m[1]!.trim()));
}

async function login(page: LoginPage, person: Person): Promise<Response> {
  return page.browser.post(page.action, { _csrf: page.csrf, identifier: person.pid, password: person.password });
}

async function decide(browser: Browser, consent: Response, decision: 'allow' | 'deny'): Promise<Response> {
  return browser.post(new URL(formAction(consent.text), srv.issuer).href, { _csrf: hiddenField(consent.text, '_csrf'), decision });
}

function callback(res: Response, portal: Portal): URLSearchParams {
  expect(res.status).toBe(303);
  expect(res.location).toBeTruthy();
  const url = new URL(res.location!);
  expect(`${url.origin}${url.pathname}`).toBe(portal.redirect_uri);
  return url.searchParams;
}

describe('language (Vietnamese by default, English on request)', () => {
  let portal: Portal;
  beforeAll(async () => { portal = await srv.addPortal(); });

  it('is Vietnamese by default', async () => {
    const { page } = await openLogin(srv, portal);
    expect(htmlLang(page.text)).toBe('vi');
    expect(heading(page.text)).toBe('Đăng nhập');
    expect(page.text).toContain(vi['login.identifier']);
    expect(langSwitch(page.text).text).toBe('English');
  });

  it('follows ui_locales=en (and the first supported tag of a list)', async () => {
    for (const uiLocales of ['en', 'fr-FR en-GB vi']) {
      const { page } = await openLogin(srv, portal, { ui_locales: uiLocales });
      expect(htmlLang(page.text)).toBe('en');
      expect(heading(page.text)).toBe('Sign in');
      expect(page.text).toContain(en['login.identifier']);
      expect(page.text).not.toContain(vi['login.identifier']);
    }
  });

  it('the switch on the login page changes the language, and the choice sticks for the next pages', async () => {
    const person = await srv.addPerson();
    const start = await openLogin(srv, portal);
    const sw = langSwitch(start.page.text);
    expect(new URL(sw.href, start.page.url).searchParams.get('lang')).toBe('en');

    const english = await start.browser.get(new URL(sw.href, start.page.url).href);
    expect(english.status).toBe(200);
    expect(htmlLang(english.text)).toBe('en');
    expect(heading(english.text)).toBe('Sign in');
    expect(english.text).toContain('name="identifier"');
    expect(langSwitch(english.text).text).toBe('Tiếng Việt');

    // The next page (a wrong password: a POST, no ?lang) is in English.
    const wrong = await start.browser.post(start.action, { _csrf: start.csrf, identifier: person.pid, password: 'sai mật khẩu rồi nhé 000' });
    expectLoginShownAgain(wrong);
    expect(htmlLang(wrong.text)).toBe('en');
    expect(alertText(wrong.text)).toBe(en['login.failed']);

    // The consent page after signing in is in English too.
    const consent = await start.browser.post(start.action, { _csrf: start.csrf, identifier: person.pid, password: person.password });
    expect(consent.status).toBe(200);
    expect(htmlLang(consent.text)).toBe('en');
    expect(heading(consent.text)).toBe(en['consent.title']);
    expect(listItems(consent.text)).toContain(en['scope.profile']);

  });

  it('the choice sticks for the next sign-in in the same browser, and wins over the portal\'s ui_locales', async () => {
    const again = await openLogin(srv, portal);
    await again.browser.get(new URL(langSwitch(again.page.text).href, again.page.url).href);
    const later = await openLogin(srv, portal, {}, again.browser);
    expect(htmlLang(later.page.text)).toBe('en');
    expect(heading(later.page.text)).toBe('Sign in');
    // The explicit choice wins over the portal's ui_locales.
    const back = await again.browser.get(new URL(langSwitch(later.page.text).href, later.page.url).href);
    expect(htmlLang(back.text)).toBe('vi');
    const withUiLocales = await openLogin(srv, portal, { ui_locales: 'en' }, again.browser);
    expect(htmlLang(withUiLocales.page.text)).toBe('vi');
  });
});

describe('consent (PRODUCT.md)', () => {
  it('names the portal and lists each requested scope in plain words', async () => {
    const portal = await srv.addPortal();
    const person = await srv.addPerson();
    const page = await openLogin(srv, portal, { scope: 'openid profile email phone' });
    const consent = await login(page, person);
    expect(consent.status).toBe(200);
    expect(heading(consent.text)).toBe(vi['consent.title']);
    expect(decodeEntities(consent.text)).toContain(vi['consent.intro'].replace('{portal}', portal.input.name));
    const items = listItems(consent.text);
    expect(items).toContain('Họ tên, ngày sinh và giới tính');
    expect(items).toEqual(expect.arrayContaining([vi['scope.openid'], vi['scope.profile'], vi['scope.email'], vi['scope.phone']]));
    expect(items).not.toContain(vi['scope.address']);
    // Plain words, not scope names.
    for (const raw of ['profile', 'email', 'phone', 'openid']) expect(items).not.toContain(raw);
    expect(consent.text).toMatch(/<button type="submit" name="decision" value="allow"/);
    expect(consent.text).toMatch(/<button type="submit" name="decision" value="deny"/);
  });

  it('"deny" sends the person back to the portal with access_denied, state and iss, and nothing is remembered', async () => {
    const portal = await srv.addPortal();
    const person = await srv.addPerson();
    const page = await openLogin(srv, portal, { scope: 'openid profile' });
    const consent = await login(page, person);
    expect(consent.status).toBe(200);
    const denied = callback(await decide(page.browser, consent, 'deny'), portal);
    expect(denied.get('error')).toBe('access_denied');
    expect(denied.get('state')).toBe(page.req.state);
    expect(denied.get('iss')).toBe(srv.issuer);
    expect(denied.get('code')).toBeNull();
    expect(await srv.system.store.consents.find(person.id, portal.client_id)).toBeUndefined();

    // A new browser session signing in again is asked again.
    const again = await openLogin(srv, portal, { scope: 'openid profile' });
    const asked = await login(again, person);
    expect(asked.status).toBe(200);
    expect(asked.text).toContain('name="decision"');
  });

  it('"allow" is remembered for the portal: a new browser session is not asked again; an additional scope is', async () => {
    const portal = await srv.addPortal();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const first = await openLogin(srv, portal, { scope: 'openid profile email' }, browser);
    const consent = await login(first, person);
    expect(consent.status).toBe(200);
    const allowed = callback(await decide(browser, consent, 'allow'), portal);
    expect(allowed.get('code')).toBeTruthy();

    browser.clearCookies();
    const second = await openLogin(srv, portal, { scope: 'openid profile email' }, browser);
    const res = await login(second, person);
    const params = callback(res, portal);
    expect(params.get('code')).toBeTruthy();
    expect(params.get('state')).toBe(second.req.state);
    // The code works and carries the remembered scopes.
    const tokens = await redeem(second.config, second.req, res.location!);
    expect(tokens.scope?.split(' ').sort()).toEqual(['email', 'openid', 'profile']);

    // Another portal is asked on its own.
    const otherPortal = await srv.addPortal();
    const other = await openLogin(srv, otherPortal, { scope: 'openid profile email' });
    expect((await login(other, person)).text).toContain('name="decision"');

    browser.clearCookies();
    const third = await openLogin(srv, portal, { scope: 'openid profile email phone' }, browser);
    const more = await login(third, person);
    expect(more.status).toBe(200);
    expect(more.text).toContain('name="decision"');
    expect(listItems(more.text)).toContain(vi['scope.phone']);
    expectSignedIn(await decide(browser, more, 'allow'), portal);
  });
});

describe('cancelling the sign-in', () => {
  it('the cancel link on the login page ends at the portal with access_denied, state and iss', async () => {
    const portal = await srv.addPortal();
    const page = await openLogin(srv, portal);
    const link = /<p class="secondary"><a href="([^"]*)">([^<]*)<\/a>/.exec(page.page.text);
    expect(link).toBeTruthy();
    expect(decodeEntities(link![2]!)).toBe(vi['login.cancel'].replace('{portal}', portal.input.name));
    const res = await page.browser.get(new URL(decodeEntities(link![1]!), srv.issuer).href);
    const params = callback(res, portal);
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('state')).toBe(page.req.state);
    expect(params.get('iss')).toBe(srv.issuer);
    expect(params.get('code')).toBeNull();
    expect(page.browser.cookies().has('dd_session')).toBe(false);
  });
});
