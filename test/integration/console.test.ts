/**
 * The operators' console's door: its own listener (the public one answers 404 under /admin),
 * sign-in through dinhdanh at loa:high as a first-party client, refusals for people who are not
 * operators or cannot reach `high`, its own session (15 minutes idle, 8 hours at most, ended when
 * the operator is removed or their account locked), sign-out, and the CSRF and origin checks of its
 * forms. The sections' own pages and role checks have their own suites (console-*.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import type { TestServer } from '../helpers/harness.js';
import { Browser, hiddenField } from '../helpers/browser.js';
import { consoleSignIn, consoleTestKit, type TestOperator } from '../helpers/console.js';

const kit = consoleTestKit();
const { now, tick } = kit;
let srv: TestServer;

beforeAll(async () => {
  srv = await kit.start();
});
afterAll(() => kit.close());

const auditEvents = (event: string) => kit.audit(event, 50);

describe('its own door', () => {
  it('is not served on the public listener, and the console listener serves no protocol endpoint', async () => {
    for (const path of ['/admin', '/admin/', '/admin/login', '/admin/accounts', '/admin/callback?code=x&state=y']) {
      const res = await fetch(`${srv.issuer}${path}`, { redirect: 'manual' });
      expect([path, res.status]).toEqual([path, 404]);
    }
    for (const path of ['/.well-known/openid-configuration', '/jwks', '/auth', '/token', '/account', '/login']) {
      const res = await fetch(`${srv.adminUrl}${path}`, { redirect: 'manual' });
      expect([path, res.status]).toEqual([path, 404]);
    }
  });

  it('sends a browser without a console session to sign in, and refuses a POST outright', async () => {
    const res = await fetch(`${srv.adminUrl}/admin/accounts`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/admin/login?return=%2Fadmin%2Faccounts');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const post = await fetch(`${srv.adminUrl}/admin/logout`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '_csrf=x' });
    expect(post.status).toBe(401);
  });
});

describe('signing in', () => {
  let helpdesk: TestOperator;
  beforeAll(async () => {
    helpdesk = await kit.operator(['helpdesk']);
  });

  it('signs an operator in at loa:high (level 2, app code) and returns to the page asked for', async () => {
    tick();
    const { browser, res } = await consoleSignIn(srv, helpdesk, { codeAt: now(), returnTo: '/admin' });
    expect(res.status).toBe(302);
    expect(res.location).toBe('/admin');
    const page = await browser.get(`${srv.adminUrl}/admin`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-testid="console-operator"');
    expect(page.text).toContain('Trần Thị Vận Hành');
    expect(page.headers.get('cache-control')).toBe('no-store');
    // The cookie is the console's own, not the SSO session's.
    expect([...browser.cookies(srv.adminUrl).keys()]).toContain('dd_console');
    const signedIn = await auditEvents('CONSOLE_SIGNED_IN');
    expect(signedIn[0]!.details).toMatchObject({ operator: helpdesk.id, roles: ['helpdesk'], acr: 'urn:dinhdanh:loa:high' });
  });

  it('never returns to another site or path (open redirect)', async () => {
    tick();
    for (const evil of ['//evil.example/admin', 'https://evil.example/', '/admin/../account', '/account']) {
      const start = await fetch(`${srv.adminUrl}/admin/login?return=${encodeURIComponent(evil)}`, { redirect: 'manual' });
      expect(start.status).toBe(302);
    }
    const { res } = await consoleSignIn(srv, helpdesk, { codeAt: now(), returnTo: '//evil.example/admin' });
    expect(res.location).toBe('/admin');
  });

  it('refuses a person who is not an operator, and says so', async () => {
    const stranger = await kit.operator(['helpdesk']);
    await srv.system.store.operators.remove(stranger.id);
    tick();
    const { browser, res } = await consoleSignIn(srv, stranger, { codeAt: now() });
    expect(res.status).toBe(403);
    expect(res.text).toContain('data-testid="signin-problem"');
    expect(browser.cookies(srv.adminUrl).has('dd_console')).toBe(false);
    const refused = await auditEvents('CONSOLE_ACCESS_REFUSED');
    expect(refused[0]!.details).toMatchObject({ why: 'not_operator', person: stranger.id });
  });

  it('tells an operator at identity level 1 how to reach loa:high, and lets nobody in', async () => {
    const low = await kit.operator(['auditor']);
    await srv.system.store.persons.setLevel(low.id, 1);
    tick();
    const { browser, res } = await consoleSignIn(srv, low, { codeAt: now() });
    // dinhdanh's own page says why and how (PRODUCT.md, "Levels"); the console is never reached.
    expect(res.url.startsWith(srv.issuer)).toBe(true);
    expect(browser.cookies(srv.adminUrl).has('dd_console')).toBe(false);
    expect(res.text).toContain('role="alert"');
    expect(res.text).toMatch(/nâng mức định danh/);
    // Going back to the console from there: the console says what it needs and how to get it.
    const abort = /href="([^"]*\/abort\?reason=unmet)"/.exec(res.text)![1]!;
    let back = await browser.request(new URL(abort.replace(/&amp;/g, '&'), srv.issuer).href);
    for (let i = 0; i < 5 && back.location; i++) back = await browser.request(new URL(back.location, back.url).href);
    expect(back.url.startsWith(`${srv.adminUrl}/admin/callback`)).toBe(true);
    expect(back.status).toBe(403);
    expect(back.text).toContain('data-testid="signin-problem"');
    expect(back.text).toContain('<ol class="steps">');
  });

  it('a callback is used once: replaying it signs no one in', async () => {
    tick();
    const browser = new Browser(srv.adminUrl);
    let res = await browser.get(`${srv.adminUrl}/admin/login`);
    // Follow the sign-in by hand up to the callback, then replay it.
    const { res: end } = await consoleSignIn(srv, helpdesk, { codeAt: now(), browser });
    expect(end.location).toBe('/admin');
    res = await browser.get(`${srv.adminUrl}/admin/callback?code=${crypto.randomBytes(16).toString('base64url')}&state=x`);
    expect(res.status).toBe(400);
    expect(res.text).toContain('data-testid="signin-problem"');
  });
});

describe('the console session', () => {
  it('ends after 15 minutes idle, and after 8 hours even when used', async () => {
    const op = await kit.operator(['auditor']);
    tick();
    const { browser } = await consoleSignIn(srv, op, { codeAt: now() });
    tick(14 * 60_000);
    expect((await browser.get(`${srv.adminUrl}/admin`)).status).toBe(200);
    tick(16 * 60_000);
    const idle = await browser.request(`${srv.adminUrl}/admin`);
    expect(idle.status).toBe(302);
    expect(idle.location).toBe(`${srv.adminUrl}/admin/login?return=%2Fadmin`);

    tick();
    const again = await consoleSignIn(srv, op, { codeAt: now() });
    // Used every 10 minutes for 7 h 50 min: still signed in; 8 h after it began: over.
    for (let used = 10; used < 8 * 60; used += 10) {
      tick(10 * 60_000);
      expect((await again.browser.request(`${srv.adminUrl}/admin`)).status).toBe(200);
    }
    tick(11 * 60_000);
    expect((await again.browser.request(`${srv.adminUrl}/admin`)).status).toBe(302);
  });

  it('ends at once when the operator is removed or their account is locked, whatever the cookie says', async () => {
    const removed = await kit.operator(['auditor']);
    tick();
    const a = await consoleSignIn(srv, removed, { codeAt: now() });
    expect((await a.browser.get(`${srv.adminUrl}/admin`)).status).toBe(200);
    await srv.system.store.operators.remove(removed.id);
    expect((await a.browser.get(`${srv.adminUrl}/admin`)).status).toBe(302);

    const locked = await kit.operator(['auditor']);
    tick();
    const b = await consoleSignIn(srv, locked, { codeAt: now() });
    expect((await b.browser.get(`${srv.adminUrl}/admin`)).status).toBe(200);
    await srv.system.accountAdmin.lock(locked.pid, { operator: 'cli:test', reason: 'compromised workstation' });
    expect((await b.browser.get(`${srv.adminUrl}/admin`)).status).toBe(302);
    // The removal is found at the next request; the lock ended the console session in the store itself.
    const out = await auditEvents('CONSOLE_SIGNED_OUT');
    expect(out.map((e) => e.details.operator)).toContain(removed.id);
  });

  it('ends when the operator ends their other sessions or changes their password elsewhere (a stolen console cookie)', async () => {
    const op = await kit.operator(['auditor']);
    tick();
    const { browser } = await consoleSignIn(srv, op, { codeAt: now() });
    expect((await browser.request(`${srv.adminUrl}/admin`)).status).toBe(200);
    await srv.system.access.endSessions(op.id, 'ended_elsewhere', { except: 'not-this-one' });
    expect((await browser.request(`${srv.adminUrl}/admin`)).status).toBe(302);
  });

  it('a step-up (prompt=login) keeps the session and dates the second factor again; no new sign-in is recorded', async () => {
    const op = await kit.operator(['keys']);
    tick();
    const { browser } = await consoleSignIn(srv, op, { codeAt: now() });
    const before = (await auditEvents('CONSOLE_SIGNED_IN')).filter((e) => e.details.operator === op.id).length;
    const cookie = browser.cookies(srv.adminUrl).get('dd_console');
    tick(6 * 60_000);
    const { res } = await consoleSignIn(srv, op, { browser, codeAt: now(), reauth: true, returnTo: '/admin/keys' });
    expect(res.location).toBe('/admin/keys');
    expect(browser.cookies(srv.adminUrl).get('dd_console')).toBe(cookie);
    expect((await auditEvents('CONSOLE_SIGNED_IN')).filter((e) => e.details.operator === op.id)).toHaveLength(before);
  });

  it('signs out (CSRF and origin checked) and sends the browser to end the SSO session too', async () => {
    const op = await kit.operator(['auditor']);
    tick();
    const { browser } = await consoleSignIn(srv, op, { codeAt: now() });
    const page = await browser.get(`${srv.adminUrl}/admin`);
    const csrf = hiddenField(page.text, '_csrf');
    expect((await browser.post(`${srv.adminUrl}/admin/logout`, { _csrf: 'forged' }, { origin: srv.adminUrl })).status).toBe(403);
    expect((await browser.post(`${srv.adminUrl}/admin/logout`, { _csrf: csrf }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // Without Fetch Metadata (older browsers), the Origin header decides.
    const noMetadata = await browser.request(`${srv.adminUrl}/admin/logout`, { method: 'POST', body: `_csrf=${encodeURIComponent(csrf)}`, headers: { origin: 'https://evil.example' } });
    expect(noMetadata.status).toBe(403);
    // The public listener's origin is another origin: a page there cannot post here either.
    expect((await browser.post(`${srv.adminUrl}/admin/logout`, { _csrf: csrf }, { origin: srv.issuer, 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await browser.post(`${srv.adminUrl}/admin/logout`, { _csrf: csrf, extra: 'x' }, { origin: srv.adminUrl })).status).toBe(400);
    const out = await browser.post(`${srv.adminUrl}/admin/logout`, { _csrf: csrf }, { origin: srv.adminUrl });
    expect(out.status).toBe(303);
    expect(out.location!.startsWith(`${srv.issuer}/session/end`)).toBe(true);
    expect((await browser.get(`${srv.adminUrl}/admin`)).status).toBe(302);
  });
});
