/**
 * SSO session limits (PRODUCT.md: idle 30 minutes, absolute 12 hours), proven with the injected
 * clock: `prompt=none` answers silently while the session lives and `login_required` after.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, signIn, type Portal } from '../helpers/rp.js';
import { MINUTE, startWithPortal } from '../helpers/pages.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration;
beforeAll(async () => { ({ srv, portal, config } = await startWithPortal({ now: () => now })); });
afterAll(async () => { await srv.close(); });

async function silent(browser: Browser): Promise<URLSearchParams> {
  const req = await authRequest(config, portal, { prompt: 'none' });
  const res = await browser.get(req.url.href);
  expect(res.status).toBe(303);
  expect(res.location!.startsWith(portal.redirect_uri)).toBe(true);
  return new URL(res.location!).searchParams;
}

async function signedIn(): Promise<Browser> {
  const person = await srv.addPerson();
  const browser = new Browser(srv.issuer);
  const res = await signIn(browser, await authRequest(config, portal), person);
  expect(new URL(res.location!).searchParams.get('code')).toBeTruthy();
  return browser;
}

describe('idle limit', () => {
  it('keeps a session used every 29 minutes, ends one left alone for 30', async () => {
    const browser = await signedIn();
    for (let i = 0; i < 3; i += 1) {
      now += 29 * MINUTE;
      expect((await silent(browser)).get('code')).toBeTruthy();
    }
    now += 30 * MINUTE;
    const answer = await silent(browser);
    expect(answer.get('error')).toBe('login_required');
    expect(answer.get('code')).toBeNull();
  });

  it('an idle session asks for the password again, and the new sign-in starts a fresh session', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    await signIn(browser, await authRequest(config, portal), person);
    now += 31 * MINUTE;
    const page = await browser.get((await authRequest(config, portal)).url.href);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="identifier"');
    const again = await signIn(browser, await authRequest(config, portal), person);
    expect(new URL(again.location!).searchParams.get('code')).toBeTruthy();
    now += 10 * MINUTE;
    expect((await silent(browser)).get('code')).toBeTruthy();
  });
});

describe('absolute limit', () => {
  it('ends a session 12 hours after sign-in however busy it is', async () => {
    const browser = await signedIn();
    for (let elapsed = 0; elapsed < 11 * 60 + 40; elapsed += 20) {
      now += 20 * MINUTE;
      expect((await silent(browser)).get('code')).toBeTruthy();
    }
    now += 20 * MINUTE; // 12 h 00 min after sign-in
    expect((await silent(browser)).get('error')).toBe('login_required');
  });
});
