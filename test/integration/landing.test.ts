/**
 * The citizens' landing page at `/` and the account pages' session keep-alive, over real HTTP.
 *
 * `/` says what dinhdanh is and links the ways in (my account, register, forgotten password) and
 * help, in Vietnamese and English; the discovery document is only a small line for portal teams.
 * `POST /account/keepalive` (the time-out warning's "stay signed in", WCAG 2.1 SC 2.2.1) is an
 * account-area POST like any other: 403 from another origin or without the page's token, 401
 * without a live session, and 204 with one, which restarts the 30-minute idle clock (proven with
 * the injected clock: a session kept alive at 29 minutes is still there 29 minutes later).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, decodeEntities, type Response } from '../helpers/browser.js';
import { MINUTE, pageSteps, type Person } from '../helpers/pages.js';
import { translator } from '../../src/http/i18n.js';
import { SESSION_IDLE_MS } from '../../src/provider/provider.js';

let now = Date.now();
let srv: TestServer;
beforeAll(async () => { srv = await startTestServer({ now: () => now }); });
afterAll(async () => { await srv.close(); });

const { url, submit } = pageSteps({ server: () => srv });
const vi = translator('vi');
const en = translator('en');

/** Every link of the page: its attributes (raw) and its text (entities decoded, tags dropped). */
function links(html: string): Array<{ attrs: string; href: string; text: string }> {
  return [...html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/g)].map((m) => ({
    attrs: m[1]!,
    href: decodeEntities(/href="([^"]*)"/.exec(m[1]!)?.[1] ?? ''),
    text: decodeEntities(m[2]!.replace(/<[^>]+>/g, '')).trim(),
  }));
}

function byTestId(html: string, id: string) {
  const found = links(html).filter((l) => l.attrs.includes(`data-testid="${id}"`));
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** The page's text as a person reads it (entities decoded). */
const text = (res: Response) => decodeEntities(res.text);

/** Signs in through the account area (/account/sessions → sign-in page → back) and opens /account/sessions. */
async function accountPage(person: Person): Promise<{ browser: Browser; page: Response }> {
  const browser = new Browser(srv.issuer);
  const login = await browser.get(url('/account/sessions'));
  expect(login.text).toContain('name="identifier"');
  const back = await submit(browser, login, { identifier: person.pid, password: person.password });
  expect(back.status).toBe(200);
  const page = await browser.get(url('/account/sessions'));
  expect(page.status).toBe(200);
  return { browser, page };
}

/** The time-out dialog's data: its CSRF token, and the session's uid (the one row of /account/sessions). */
function dialogData(page: Response): { csrf: string; uid: string } {
  const dialog = /<dialog id="session-timeout"[^>]*>/.exec(page.text)?.[0];
  expect(dialog).toBeDefined();
  const attr = (name: string) => decodeEntities(new RegExp(`${name}="([^"]*)"`).exec(dialog!)?.[1] ?? '');
  const uids = [...page.text.matchAll(/name="session" value="([^"]+)"/g)].map((m) => m[1]!);
  expect(uids).toHaveLength(1);
  return { csrf: attr('data-csrf'), uid: uids[0]! };
}

const keepalive = (browser: Browser, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  browser.post(url('/account/keepalive'), fields, { accept: 'application/json', ...headers });

describe('landing page', () => {
  it.each([
    ['vi', '/', vi],
    ['en', '/?lang=en', en],
  ] as const)('in %s: what dinhdanh is, the three ways in, help, and discovery only in the portal teams\' line', async (lang, path, t) => {
    const res = await new Browser(srv.issuer).get(url(path));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.text).toContain(`<html lang="${lang}">`);
    const page = text(res);
    expect(page).toContain(`<h1>${t('home.title')}</h1>`);
    expect(page).toContain(t('home.intro'));
    for (const key of ['home.level_low', 'home.level_substantial', 'home.level_high', 'home.help_title', 'home.help'] as const) {
      expect(page).toContain(t(key));
    }
    expect(page).toContain(t('home.safety', { minutes: String(SESSION_IDLE_MS / MINUTE) }));

    expect(byTestId(res.text, 'home-account')).toMatchObject({ href: '/account', text: t('home.account') });
    expect(byTestId(res.text, 'home-register')).toMatchObject({ href: '/register', text: t('home.register') });
    expect(byTestId(res.text, 'home-recover')).toMatchObject({ href: '/recover', text: t('home.recover') });
    // The three come first among the page's own links (after the skip link and the language switch).
    const inMain = links(res.text.split('<main')[1]!.split('</main>')[0]!);
    expect(inMain.slice(0, 3).map((l) => l.href)).toEqual(['/account', '/register', '/recover']);

    // Discovery is a small line for portal teams, the last thing in the page's content.
    const discovery = inMain.filter((l) => l.href.includes('openid-configuration'));
    expect(discovery).toEqual([expect.objectContaining({ href: '/.well-known/openid-configuration' })]);
    expect(inMain.at(-1)!.href).toBe('/.well-known/openid-configuration');
    expect(res.text).toMatch(/<p class="home-integrators">[^<]*<a href="\/\.well-known\/openid-configuration">/);
    expect(page).toContain(t('home.integrators'));
    expect(page).not.toContain('OpenID Connect discovery</a>');

    // No script and no time-out dialog on a page without a session.
    expect(res.text).not.toContain('<script');
    expect(res.text).not.toContain('session-timeout');
  });

  it('remembers ?lang=en (the switch\'s cookie) and keeps the page out of shared caches', async () => {
    const browser = new Browser(srv.issuer);
    const first = await browser.get(url('/?lang=en'));
    expect(first.headers.get('cache-control')).toMatch(/\bprivate\b/);
    const again = await browser.get(url('/'));
    expect(again.text).toContain('<html lang="en">');
    expect(again.text).toContain(`href="?lang=vi"`);
  });
});

describe('session time-out on the account pages', () => {
  it('serves the script from our origin, and an account page carries the closed dialog with its data', async () => {
    const script = await new Browser(srv.issuer).get(url('/static/session-timeout.js'));
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(script.text).toContain('showModal');

    const { page } = await accountPage(await srv.addPerson());
    const dialog = /<dialog id="session-timeout"[^>]*>/.exec(page.text)![0];
    // Closed (no `open`): not rendered nor exposed without JavaScript.
    expect(dialog).not.toMatch(/\sopen[\s>=]/);
    expect(dialog).toContain(`data-idle-ms="${SESSION_IDLE_MS}"`);
    expect(dialog).toContain(`data-warn-ms="${2 * MINUTE}"`);
    expect(dialog).toContain('data-keepalive-url="/account/keepalive"');
    expect(dialog).toContain('aria-labelledby="session-timeout-title"');
    expect(dialog).toContain('aria-describedby="session-timeout-message"');
    expect(decodeEntities(dialog)).toContain(`data-text-warning="${vi('timeout.warning')}"`);
    expect(page.text).toContain('<script src="/static/session-timeout.js" defer></script>');
    expect(page.text).toContain('href="/account" data-action="sign-in"');
    // The dialog's token is the page's own (its forms carry the same).
    const { csrf } = dialogData(page);
    expect(page.text).toContain(`name="_csrf" value="${csrf}"`);
  });

  it('refuses a keep-alive without a session (401), from another origin or without the page\'s token (403)', async () => {
    const stranger = new Browser(srv.issuer);
    const none = await keepalive(stranger, { _csrf: 'x' });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text)).toEqual({ error: 'no_session' });

    const { browser, page } = await accountPage(await srv.addPerson());
    const { csrf } = dialogData(page);
    expect((await keepalive(browser, { _csrf: csrf }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // A sibling site (same-site, another origin) is refused too: SameSite is not the defence.
    expect((await keepalive(browser, { _csrf: csrf }, { origin: 'https://portal.example', 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await keepalive(browser, {})).status).toBe(403);
    expect((await keepalive(browser, { _csrf: 'not-the-token' })).status).toBe(403);
    // Another person's token is worthless here (bound to the session).
    const other = dialogData((await accountPage(await srv.addPerson())).page);
    expect((await keepalive(browser, { _csrf: other.csrf })).status).toBe(403);
    // Only a POST.
    expect((await browser.request(url('/account/keepalive'))).status).toBe(405);
  });

  it('answers 204 with a live session and restarts its idle clock: still signed in 58 minutes after the last page, while an untouched session ended', async () => {
    const kept = await accountPage(await srv.addPerson());
    const left = await accountPage(await srv.addPerson());
    const { csrf, uid } = dialogData(kept.page);
    const seenAt = async () => (await srv.system.store.counters.get(`session-seen:${uid}`, now))?.updatedAt;
    const before = await seenAt();
    expect(before).toBe(now);

    now += 29 * MINUTE;
    const res = await keepalive(kept.browser, { _csrf: csrf });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers.get('cache-control')).toMatch(/\bno-store\b/);
    expect(await seenAt()).toBe(now);

    now += 29 * MINUTE;
    // 58 minutes after sign-in, 29 after the keep-alive: the page opens without a sign-in.
    const later = await kept.browser.get(url('/account/sessions'));
    expect(later.status).toBe(200);
    expect(later.text).not.toContain('name="identifier"');
    expect(later.text).toContain('id="session-timeout"');
    // The other browser's session, untouched for 58 minutes, is gone: its keep-alive says so.
    expect((await keepalive(left.browser, { _csrf: dialogData(left.page).csrf })).status).toBe(401);
    expect((await left.browser.get(url('/account/sessions'))).text).toContain('name="identifier"');

    // And the kept one ends too once left alone for 30 minutes.
    now += 30 * MINUTE;
    expect((await keepalive(kept.browser, { _csrf: csrf })).status).toBe(401);
  });
});
