/**
 * /account/sessions: a citizen sees where they are signed in and ends a session (a lost phone's)
 * or all the others; the ended browser's next silent request answers login_required.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, signIn } from '../helpers/rp.js';

let srv: TestServer;
let portal: Awaited<ReturnType<TestServer['addPortal']>>;
let config: oidc.Configuration;
beforeAll(async () => {
  srv = await startTestServer();
  portal = await srv.addPortal();
  config = await discover(srv.issuer, portal);
});
afterAll(async () => { await srv.close(); });

const url = (p: string) => new URL(p, srv.issuer).href;
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36';

async function signedIn(person: { pid: string; password: string }, ua?: string): Promise<Browser> {
  const browser = new Browser(srv.issuer);
  if (ua) {
    const original = browser.request.bind(browser);
    browser.request = (u, init = {}) => original(u, { ...init, headers: { 'user-agent': ua, ...init.headers } });
  }
  const res = await signIn(browser, await authRequest(config, portal), person);
  expect(new URL(res.location!).searchParams.get('code')).toBeTruthy();
  return browser;
}

async function silent(browser: Browser): Promise<string | null> {
  const res = await browser.get((await authRequest(config, portal, { prompt: 'none' })).url.href);
  const params = new URL(res.location!).searchParams;
  return params.get('code') ? 'code' : params.get('error');
}

function endForm(page: Response, index: number): Record<string, string> {
  const uids = [...page.text.matchAll(/name="session" value="([^"]+)"/g)].map((m) => m[1]!);
  return { _csrf: hiddenField(page.text, '_csrf'), session: uids[index]! };
}

describe('sessions', () => {
  it('lists both sessions with device and network, ends the other one, which is then signed out', async () => {
    const person = await srv.addPerson();
    const laptop = await signedIn(person);
    const phone = await signedIn(person, PHONE_UA);
    const page = await laptop.get(url('/account/sessions'));
    expect(page.status).toBe(200);
    expect([...page.text.matchAll(/data-testid="session"/g)]).toHaveLength(2);
    expect(page.text).toContain('Chrome · Android');
    expect(page.text).toContain('127.0.0.x');
    expect(page.text).toContain(portal.input.name);
    expect(page.text).not.toMatch(/127\.0\.0\.1(?!\d)/);

    // The phone's row is the one not marked as this session.
    const rows = page.text.split('data-testid="session"').slice(1);
    const phoneIndex = rows.findIndex((r) => !r.includes('phiên này'));
    const ended = await laptop.post(url('/account/sessions/end'), endForm(page, phoneIndex));
    expect(alertText(ended.text)).toMatch(/kết thúc/);
    expect(await silent(phone)).toBe('login_required');
    expect(await silent(laptop)).toBe('code');
  });

  it('ends all other sessions, and ending the current one signs this browser out', async () => {
    const person = await srv.addPerson();
    const a = await signedIn(person);
    const b = await signedIn(person);
    const c = await signedIn(person);
    const page = await a.get(url('/account/sessions'));
    await a.post(url('/account/sessions/end-others'), { _csrf: hiddenField(page.text, '_csrf') });
    expect(await silent(b)).toBe('login_required');
    expect(await silent(c)).toBe('login_required');
    expect(await silent(a)).toBe('code');

    const again = await a.get(url('/account/sessions'));
    const self = await a.post(url('/account/sessions/end'), endForm(again, 0));
    expect(self.status).toBe(200);
    expect(await silent(a)).toBe('login_required');
  });

  it('refuses to end another person\'s session, without the token, or from another origin', async () => {
    const victim = await srv.addPerson();
    const victimBrowser = await signedIn(victim);
    const victimPage = await victimBrowser.get(url('/account/sessions'));
    const victimUid = endForm(victimPage, 0).session;

    const attacker = await signedIn(await srv.addPerson());
    const page = await attacker.get(url('/account/sessions'));
    const csrf = hiddenField(page.text, '_csrf');
    expect((await attacker.post(url('/account/sessions/end'), { _csrf: csrf, session: victimUid! })).status).toBe(404);
    expect((await attacker.post(url('/account/sessions/end'), { session: victimUid! })).status).toBe(403);
    expect((await attacker.post(url('/account/sessions/end'), { _csrf: csrf, session: victimUid! }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await silent(victimBrowser)).toBe('code');
  });
});
