/**
 * Shared steps for the self-service tests (selfservice-*.test.ts): the file population registry,
 * the development outbox (codes and links), the registration and recovery pages step by step, and
 * a sign-in at a portal that goes through whatever the pages ask.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, redeem, type AuthRequest, type Portal } from '../helpers/rp.js';
import { totpCode, totpSecret } from '../helpers/pages.js';

export interface RegistryRecord { pid: string; full_name: string; birthdate: string; gender: 'male' | 'female'; phone?: string }

/** Appends a person to the server's file registry (`DINHDANH_REGISTRY`, default `file:data/registry.jsonl`). */
export function registryAdd(srv: TestServer, record: RegistryRecord): void {
  const file = srv.system.config.registry.path ?? path.join(srv.dir, 'data', 'registry.jsonl');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(file, `${JSON.stringify(record)}\n`);
}

export interface Message { at: string; channel: 'sms' | 'email'; to: string; subject?: string; text: string }

export function outbox(srv: TestServer): Message[] {
  const file = path.join(srv.system.config.outboxDir, 'outbox.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Message);
}

export const messagesTo = (srv: TestServer, to: string) => outbox(srv).filter((m) => m.to === to);

/** The one-time code of a message: the only run of exactly 6 digits (PRODUCT.md, Messages). */
export function codeOf(m: Message | undefined): string | undefined {
  if (!m) return undefined;
  // Outside links: a link's random token holds a run of six digits now and then (about 1 in 2,500).
  const runs = [...m.text.replace(/https?:\/\/\S+/g, ' ').matchAll(/(?<!\d)\d{6}(?!\d)/g)].map((x) => x[0]);
  return runs.length === 1 ? runs[0] : undefined;
}

/** The link of a message: the only http(s) URL in it. */
export function linkOf(m: Message | undefined): string | undefined {
  if (!m) return undefined;
  const urls = [...m.text.matchAll(/https?:\/\/[^\s]+/g)].map((x) => x[0]);
  return urls.length === 1 ? urls[0] : undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (real time) until `probe` gives a value; fails the test after `ms`. */
export async function waitFor<T>(probe: () => T | undefined, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('waitFor: nothing came');
    await sleep(20);
  }
}

/** The newest code sent to `to` after the first `after` messages to it (recovery delivers after answering). */
export async function nextCode(srv: TestServer, to: string, after: number): Promise<string> {
  const m = await waitFor(() => messagesTo(srv, to).slice(after).find((x) => codeOf(x) !== undefined));
  return codeOf(m)!;
}

/** Replaces per-request values (CSRF tokens, masked destinations) so that two pages can be compared. */
export function normalisePage(html: string): string {
  return html
    .replace(/name="_csrf" value="[^"]*"/g, 'name="_csrf" value="«csrf»"')
    .replace(/\+84 \*\*\* \*\*\* \d{3}/g, '«to»')
    .replace(/[^\s<>"@]*\*\*\*@[A-Za-z0-9.-]*[A-Za-z0-9]/g, '«to»');
}

export const heading = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];

/** Binds page steps to a server. */
export function selfServiceSteps(server: () => TestServer) {
  const url = (p: string) => new URL(p, server().issuer).href;

  /** Posts the page's form number `index` with its CSRF token. */
  function submit(browser: Browser, page: Response, fields: Record<string, string>, index = 0): Promise<Response> {
    return browser.post(url(formAction(page.text, index)), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
  }

  /** Posts to `action` with the CSRF token of `page`. */
  function post(browser: Browser, page: Response, action: string, fields: Record<string, string>): Promise<Response> {
    return browser.post(url(action), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
  }

  /** The href of a `data-testid` link on a page. */
  function testLink(html: string, testid: string): string {
    const m = new RegExp(`<a href="([^"]*)" data-testid="${testid}"`).exec(html);
    if (!m) throw new Error(`no ${testid} link on the page`);
    return url(m[1]!.replace(/&amp;/g, '&'));
  }

  /**
   * Follows an account reset's link as its owner does: the link's page changes nothing (an SMS
   * app's preview opens links), the button uses it up; returns the password page it leads to.
   */
  async function openResetLink(browser: Browser, link: string): Promise<Response> {
    const confirm = await browser.get(link);
    if (confirm.status !== 200 || !confirm.text.includes('name="token"')) return confirm;
    return browser.post(url(formAction(confirm.text)), { _csrf: hiddenField(confirm.text, '_csrf'), token: hiddenField(confirm.text, 'token') });
  }

  return { url, submit, post, testLink, openResetLink };
}

export interface Details { pid: string; full_name: string; birthdate: string; gender: 'male' | 'female'; phone: string; email?: string }

/**
 * Goes through a portal's pages after a password or a registration's hand-off: authenticator-app
 * enrolment (keeping the seed), a code, recovery codes, consent; returns the redirect to the portal
 * (or the page it stopped at).
 */
export async function throughPortalPages(
  srv: TestServer,
  browser: Browser,
  page: Response,
  opts: { now: () => number; advance: () => void; held?: { secret?: string; pid?: string; password?: string } },
): Promise<Response> {
  const held = opts.held ?? {};
  const url = (p: string) => new URL(p, srv.issuer).href;
  const submit = (res: Response, fields: Record<string, string>) => browser.post(url(formAction(res.text)), { _csrf: hiddenField(res.text, '_csrf'), ...fields });
  let passwordSent = false;
  for (let step = 0; step < 8 && page.status === 200; step += 1) {
    if (page.text.includes('name="identifier"') && held.pid && !passwordSent) {
      passwordSent = true; // once: a refused password shows the form again
      page = await submit(page, { identifier: held.pid, password: held.password! });
    } else if (page.text.includes('data-testid="totp-secret"')) {
      held.secret = totpSecret(page.text);
      page = await submit(page, { code: await totpCode(held.secret, opts.now()) });
    } else if (page.text.includes('data-testid="recovery-code"')) {
      page = await submit(page, { next: 'continue' });
    } else if (page.text.includes('name="code"') && held.secret) {
      opts.advance(); // a new time step: each app code is accepted once
      page = await submit(page, { code: await totpCode(held.secret, opts.now()) });
    } else if (page.text.includes('name="decision"')) {
      page = await submit(page, { decision: 'allow' });
    } else {
      break;
    }
  }
  return page;
}

/** Redeems the code of a redirect back to the portal; returns the tokens. */
export async function redeemAt(config: oidc.Configuration, req: AuthRequest, res: Response, portal: Portal) {
  expect(res.status).toBe(303);
  expect(res.location!.startsWith(portal.redirect_uri)).toBe(true);
  return redeem(config, req, res.location!);
}

export { authRequest };

/** The clock a test moves: the server's `now`, and a step to a new time step (each app code is accepted once). */
export interface TestClock { now: () => number; advance: () => void }

/**
 * Opens an account page in `browser` as a person would: when the page sends them to sign in (the
 * account area is a first-party client of the provider), the password, then an app code when the
 * person has one (`secret`); signing in may land on /account, so the page asked for is opened again.
 */
export async function openAccountPage(
  srv: TestServer,
  browser: Browser,
  person: { pid: string; password: string; secret?: string },
  pagePath: string,
  clock: TestClock,
): Promise<Response> {
  const url = (p: string) => new URL(p, srv.issuer).href;
  const submit = (res: Response, fields: Record<string, string>) => browser.post(url(formAction(res.text)), { _csrf: hiddenField(res.text, '_csrf'), ...fields });
  let page = await browser.get(url(pagePath));
  if (page.status === 200 && page.text.includes('name="identifier"')) page = await submit(page, { identifier: person.pid, password: person.password });
  if (page.status === 200 && page.text.includes('name="code"') && person.secret) {
    clock.advance();
    page = await submit(page, { code: await totpCode(person.secret, clock.now()) });
  }
  if (new URL(page.url).pathname !== new URL(url(pagePath)).pathname) page = await browser.get(url(pagePath));
  return page;
}

/**
 * Adds an authenticator app at /account/security (the current password, the seed shown, a first
 * code); returns the seed and the recovery codes the page showed.
 */
export async function enrolAppInAccount(
  srv: TestServer,
  browser: Browser,
  person: { pid: string; password: string },
  clock: TestClock,
): Promise<{ secret: string; recoveryCodes: string[] }> {
  const url = (p: string) => new URL(p, srv.issuer).href;
  const page = await openAccountPage(srv, browser, person, '/account/security', clock);
  expect(page.status).toBe(200);
  const enrol = await browser.post(url('/account/security/totp'), { _csrf: hiddenField(page.text, '_csrf'), current_password: person.password });
  const secret = totpSecret(enrol.text);
  const done = await browser.post(url('/account/security/totp/confirm'), {
    _csrf: hiddenField(enrol.text, '_csrf'), factor: hiddenField(enrol.text, 'factor'), code: await totpCode(secret, clock.now()),
  });
  const recoveryCodes = [...done.text.matchAll(/data-testid="recovery-code">([A-Z0-9-]+)</g)].map((m) => m[1]!);
  expect(recoveryCodes.length).toBeGreaterThan(0);
  return { secret, recoveryCodes };
}

/**
 * Opens an account page in a session signed in with a second factor: removing a contact or
 * choosing where notices go asks for one (a code to a contact on file) when the person can give it.
 * Signs in with the password (openAccountPage), then asks for such a change, which sends the browser
 * through a sign-in at `substantial`: the password again, a code by SMS to the person's phone (or
 * the app code), then back to `pagePath`.
 */
export async function openAccountPageWithCode(
  srv: TestServer,
  browser: Browser,
  person: { pid: string; password: string; phone?: string; secret?: string },
  pagePath: string,
  clock: TestClock,
): Promise<Response> {
  const url = (p: string) => new URL(p, srv.issuer).href;
  const submitTo = (res: Response, action: string, fields: Record<string, string>) => browser.post(url(action), { _csrf: hiddenField(res.text, '_csrf'), ...fields });
  let page = await openAccountPage(srv, browser, person, pagePath, clock);
  // A choice that needs the second factor (nothing changes: after a re-authentication the change is made again).
  page = await submitTo(page, '/account/profile/contacts/notice', { notice: 'all', current_password: person.password });
  if (page.text.includes('name="identifier"')) page = await submitTo(page, formAction(page.text), { identifier: person.pid, password: person.password });
  if (person.secret && page.text.includes('name="code"')) {
    clock.advance();
    page = await submitTo(page, formAction(page.text), { code: await totpCode(person.secret, clock.now()) });
  } else {
    const send = /action="([^"]*\/send-code)"/.exec(page.text)?.[1];
    if (!send || !person.phone) throw new Error('no way to send a code on this page');
    const before = messagesTo(srv, person.phone).length;
    clock.advance(); // a phone gets at most one code a minute (a code may have just gone to it)
    page = await submitTo(page, send, { channel: 'sms' });
    page = await submitTo(page, formAction(page.text), { code: await nextCode(srv, person.phone, before) });
  }
  if (new URL(page.url).pathname !== new URL(url(pagePath)).pathname) page = await browser.get(url(pagePath));
  return page;
}

/** The audit entries of one event about one person (after everything recorded so far is stored). */
export async function auditOf(srv: TestServer, event: string, personId: string) {
  await srv.system.audit.flush();
  return (await srv.system.store.audit.list(0, 100_000)).filter((e) => e.event === event && e.details.person === personId);
}

/**
 * How a browser meets one portal and the account area, for tests of what a change of the account
 * ends: a sign-in at the portal (password, app code, consent: whatever is asked) returning its
 * tokens, a silent return (`prompt=none`: `code` or the error), and whether an account page opens or
 * asks to sign in.
 */
export function portalVisits(srv: () => TestServer, at: () => { config: oidc.Configuration; portal: Portal }, clock: TestClock) {
  const url = (p: string) => new URL(p, srv().issuer).href;
  const submit = (browser: Browser, res: Response, fields: Record<string, string>) => browser.post(url(formAction(res.text)), { _csrf: hiddenField(res.text, '_csrf'), ...fields });
  return {
    async atPortal(browser: Browser, c: { pid: string; password: string; secret?: string }, extra: Record<string, string> = {}) {
      const { config, portal } = at();
      const req = await authRequest(config, portal, extra);
      let res = await browser.get(req.url.href);
      if (res.text.includes('name="identifier"')) res = await submit(browser, res, { identifier: c.pid, password: c.password });
      if (res.text.includes('name="code"') && c.secret) {
        clock.advance();
        res = await submit(browser, res, { code: await totpCode(c.secret, clock.now()) });
      }
      if (res.text.includes('name="decision"')) res = await submit(browser, res, { decision: 'allow' });
      expect(res.status).toBe(303);
      return redeem(config, req, res.location!);
    },
    async silently(browser: Browser): Promise<string> {
      const { config, portal } = at();
      const res = await browser.get((await authRequest(config, portal, { prompt: 'none' })).url.href);
      const params = new URL(res.location!).searchParams;
      return params.get('code') ? 'code' : params.get('error')!;
    },
    async accountArea(browser: Browser, pagePath: string): Promise<'page' | 'signin'> {
      const res = await browser.get(url(pagePath));
      expect(res.status).toBe(200);
      return res.text.includes('name="identifier"') ? 'signin' : 'page';
    },
  };
}
