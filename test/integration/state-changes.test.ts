/**
 * Every change of an account's state, met by a live browser and a live portal (ARCHITECTURE.md,
 * rule 12: a change of state ends what it must end, in the store).
 *
 * One row per change. For each row a person signs in at a portal in a browser; the portal redeems
 * the code (access and refresh token) and holds two more codes it has not redeemed yet. Then the
 * change happens through the door people use for it: the operators' CLI (a second set of services
 * on the same store, with no job runner, exactly like `dinhdanh …` in another process), the
 * operators' console (a helpdesk operator signed in on its own listener; a second operator approves
 * what needs two), the citizen's own account area in another browser, or the self-service recovery pages in another
 * browser (/recover, with the codes and links the development outbox receives). Then, twice — before the server's background jobs
 * have run (the CLI only enqueues them) and after — the browser comes back to the portal
 * (interactively and with `prompt=none`) and the portal uses what it holds: the code, the refresh
 * token, userinfo and introspection. Every answer must be what the row expects; none may be a 5xx.
 *
 * A later change of state (password reset, account closure, …) adds a row here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, redeem, type AuthRequest, type Portal } from '../helpers/rp.js';
import { HIGH, MINUTE, SUBSTANTIAL, totpCode, totpSecret } from '../helpers/pages.js';
import { tokenRequest, type Endpoints } from './protocol-support.js';
import { composeServices } from '../../src/services.js';
import { addOperator, consolePost, consoleSignIn, type TestOperator } from '../helpers/console.js';
import { verifySet } from '../helpers/set-receiver.js';
import { EVENTS_SUPPORTED, SSF_POLL } from '../../src/events/event-types.js';

type Services = Awaited<ReturnType<typeof composeServices>>;

let srv: TestServer;
/** The operators' CLI: its own services on the same store, with no job runner (as in another process). */
let cli: Services;
let clock = Date.now();
let endpoints: Endpoints & { introspection: string };
const OPERATOR = { operator: 'ops.test', reason: 'state change under test' };
const EVIDENCE = { documentType: 'cccd-chip', documentNumber: '001090000001', place: 'Bộ phận một cửa, Hà Nội' };

beforeAll(async () => {
  // An account reset's wait shorter than a session's idle limit (30 minutes): the clock passing the
  // wait does not end the session by itself, so the reset has to.
  srv = await startTestServer({ now: () => clock, env: { DINHDANH_ACCOUNT_RESET_WAIT: '15m' } });
  cli = await composeServices(srv.system.config, { now: () => clock });
  const meta = (await (await fetch(`${srv.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  endpoints = {
    authorization: meta.authorization_endpoint!, token: meta.token_endpoint!, userinfo: meta.userinfo_endpoint!,
    jwks: meta.jwks_uri!, introspection: meta.introspection_endpoint!,
  };
});
afterAll(async () => {
  await cli.store.close();
  await srv.close();
});

const url = (p: string) => new URL(p, srv.issuer).href;

interface Person { id: string; pid: string; password: string; phone?: string }

/** What the browser and the portal hold from before the change. */
interface Held {
  person: Person;
  portal: Portal;
  config: oidc.Configuration;
  browser: Browser;
  /** The authorization request parameters of the original sign-in (scope, acr_values). */
  params: Record<string, string>;
  /** An authenticator-app seed, when the person signed in with one. */
  secret?: string;
  enterprise?: string;
  accessToken: string;
  refreshToken: string;
  /** The portal's pairwise subject for the person: every security event must name exactly it. */
  sub: string;
  /** Codes issued before the change and not yet redeemed: one for each check round. */
  codes: Array<{ code: string; verifier: string }>;
}

/** How a browser's return to the portal ends. */
type Visit =
  | 'code' // back at the portal with a code (the session carries on)
  | 'signin' // the sign-in page
  | 'consent' // the consent page
  | 'enterprise' // the enterprise choice
  | 'no-enterprise' // the enterprise step saying there is no enterprise to act for
  | 'error-page' // our error page (an unknown or disabled portal cannot be redirected to)
  | 'login_required' | 'consent_required' | 'interaction_required';

interface Expected {
  interactive: Visit;
  silent: Visit;
  /** Redeeming a code issued before the change; refreshing the refresh token. */
  code: 'ok' | 'invalid_grant' | 'invalid_client';
  refresh: 'ok' | 'invalid_grant' | 'invalid_client';
  userinfo: 200 | 401;
  introspection: 'active' | 'inactive' | 'invalid_client';
  /** The browser opening its own account area: the page, or the sign-in page. */
  account: 'page' | 'signin';
}

interface Given {
  level?: 1 | 2;
  /** Enrol an authenticator app in the sign-in (which asks for this level). */
  acr?: typeof SUBSTANTIAL | typeof HIGH;
  /** Act for an enterprise: as its legal representative, or as a delegate. */
  enterprise?: 'representative' | 'delegate';
}

/** The security events (events/event-types.ts, by their last path segment) the row's portal receives. */
type EventName = 'session-revoked' | 'credential-change' | 'assurance-level-change' | 'account-disabled' | 'account-enabled'
  | 'recovery-activated' | 'recovery-information-changed' | 'delegation-ended';

interface Row {
  change: string;
  given?: Given;
  act(held: Held): Promise<void>;
  expect: Expected;
  /** Which security events the change sends the portal (every type, asked for by its poll stream). */
  events: EventName[];
}

const ENDED: Expected = { interactive: 'signin', silent: 'login_required', code: 'invalid_grant', refresh: 'invalid_grant', userinfo: 401, introspection: 'inactive', account: 'signin' };
const KEPT: Expected = { interactive: 'code', silent: 'code', code: 'ok', refresh: 'ok', userinfo: 200, introspection: 'active', account: 'page' };

let people = 0;
let enterprises = 0;

async function newPortal(): Promise<Portal> {
  return srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'] });
}

/** Posts the page's first form with its CSRF token. */
function submit(browser: Browser, page: Response, fields: Record<string, string>): Promise<Response> {
  return browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
}

/**
 * Goes through whatever the pages ask — password, authenticator-app enrolment or code, enterprise
 * choice, consent — and returns the redirect back to the portal.
 */
async function authorize(held: Omit<Held, 'accessToken' | 'refreshToken' | 'codes' | 'sub'>, req: AuthRequest): Promise<Response> {
  let page = await held.browser.get(req.url.href);
  for (let step = 0; step < 8 && page.status === 200; step += 1) {
    if (page.text.includes('name="identifier"')) {
      page = await submit(held.browser, page, { identifier: held.person.pid, password: held.person.password });
    } else if (page.text.includes('data-testid="totp-secret"')) {
      held.secret = totpSecret(page.text);
      page = await submit(held.browser, page, { code: await totpCode(held.secret, clock) });
    } else if (page.text.includes('data-testid="recovery-code"')) {
      page = await submit(held.browser, page, { next: 'continue' });
    } else if (page.text.includes('name="code"') && held.secret) {
      clock += MINUTE; // a new time step: each code is accepted once
      page = await submit(held.browser, page, { code: await totpCode(held.secret, clock) });
    } else if (page.text.includes('name="org"')) {
      page = await submit(held.browser, page, { org: held.enterprise! });
    } else if (page.text.includes('name="decision"')) {
      page = await submit(held.browser, page, { decision: 'allow' });
    } else {
      break;
    }
  }
  expect({ status: page.status, code: page.location ? new URL(page.location).searchParams.get('code') !== null : false }).toEqual({ status: 303, code: true });
  return page;
}

async function hold(given: Given = {}): Promise<Held> {
  people += 1;
  const phone = `+84917${String(people).padStart(6, '0')}`;
  const person = { ...(await srv.addPerson({ pid: `001090${String(700000 + people)}`, phone, contactsVerified: true, level: String(given.level ?? 1) })), phone };
  const portal = await newPortal();
  const config = await discover(srv.issuer, portal);
  const params: Record<string, string> = { scope: 'openid profile', ...(given.acr ? { acr_values: given.acr } : {}) };
  const held: Omit<Held, 'accessToken' | 'refreshToken' | 'codes' | 'sub'> = { person, portal, config, browser: new Browser(srv.issuer), params };
  if (given.enterprise) {
    enterprises += 1;
    const code = `01${String(10000000 + enterprises)}`;
    const owner = given.enterprise === 'representative' ? person : await srv.addPerson({ pid: `001090${String(800000 + enterprises)}` });
    await srv.system.orgs.register({ code, name: `Công ty thử nghiệm ${enterprises}`, representatives: [owner.pid] }, { operator: 'test' });
    if (given.enterprise === 'delegate') await srv.system.orgs.delegate({ code, pid: person.pid, role: 'ke-toan' }, { operator: 'test' });
    held.enterprise = code;
    params.scope = 'openid profile organization';
  }
  const req = await authRequest(config, portal, params);
  const tokens = await redeem(config, req, (await authorize(held, req)).location!);
  if (given.acr) expect(tokens.claims()!.acr).toBe(given.acr);
  // Two more codes (one per check round), from the same session, not redeemed yet.
  const codes = [];
  for (let i = 0; i < 2; i += 1) {
    const more = await authRequest(config, portal, params);
    codes.push({ code: new URL((await authorize(held, more)).location!).searchParams.get('code')!, verifier: more.verifier });
  }
  const done: Held = { ...held, sub: tokens.claims()!.sub, accessToken: tokens.access_token, refreshToken: tokens.refresh_token!, codes };
  // The portal's security-event stream (SSF 1.0, polled), asking for every event type; whatever
  // signing in made (a factor enrolled) is taken now, so the row sees only its change's.
  const created = await fetch(url('/ssf/stream'), {
    method: 'POST',
    headers: { authorization: basicAuth(portal), 'content-type': 'application/json' },
    body: JSON.stringify({ events_requested: EVENTS_SUPPORTED, delivery: { method: SSF_POLL } }),
  });
  expect(created.status).toBe(201);
  await receivedEvents(done);
  return done;
}

const basicAuth = (p: Portal) => `Basic ${Buffer.from(`${encodeURIComponent(p.client_id)}:${encodeURIComponent(p.client_secret)}`).toString('base64')}`;

/**
 * Every security event the portal's stream holds, polled and acknowledged, each checked as a portal
 * checks it (signature, `typ`, `iss`, `aud`) and naming the person by the portal's pairwise subject.
 * Returns the event types' last path segments, sorted, once each.
 */
async function receivedEvents(h: Pick<Held, 'portal' | 'sub'>): Promise<string[]> {
  await srv.system.audit.flush();
  await cli.audit.flush();
  await srv.system.securityEvents.settled();
  await cli.securityEvents.settled();
  const types = new Set<string>();
  let ack: string[] = [];
  for (let i = 0; i < 20; i += 1) {
    const res = await fetch(url('/ssf/poll'), {
      method: 'POST',
      headers: { authorization: basicAuth(h.portal), 'content-type': 'application/json' },
      body: JSON.stringify({ ack, returnImmediately: true, maxEvents: 100 }),
    });
    // A disabled portal cannot authenticate, so it cannot poll (and nothing is made for it).
    if ((await srv.system.store.portals.find(h.portal.client_id))?.disabled) {
      expect(res.status).toBe(401);
      expect(await srv.system.store.ssf.undelivered((await srv.system.store.ssf.findStreamByClient(h.portal.client_id))!.id, Date.now(), 1)).toEqual([]);
      return [];
    }
    expect(res.status).toBe(200);
    const { sets } = (await res.json()) as { sets: Record<string, string> };
    ack = Object.keys(sets);
    if (ack.length === 0) break;
    for (const set of Object.values(sets)) {
      const verified = await verifySet(set, srv.issuer, h.portal.client_id);
      const subject = verified.payload.sub_id as { format: string; user?: unknown };
      expect(subject.format === 'complex' ? subject.user : subject).toEqual({ format: 'iss_sub', iss: srv.issuer, sub: h.sub });
      types.add(verified.type.split(/[/:]/).pop()!);
    }
  }
  return [...types].sort();
}

/** Classifies where a return to the portal ended; fails on any 5xx. */
function visit(res: Response, portal: Portal): Visit | string {
  if (res.status >= 500) return `${res.status}`;
  if (res.location && res.location.startsWith(portal.redirect_uri)) {
    const params = new URL(res.location).searchParams;
    return params.get('code') ? 'code' : params.get('error') ?? 'redirect without code or error';
  }
  if (res.status === 200 && res.text.includes('name="identifier"')) return 'signin';
  if (res.status === 200 && res.text.includes('name="org"')) return 'enterprise';
  // The enterprise step with nobody to act for: it says why, and offers the way back to the portal.
  if (res.status === 200 && res.text.includes('abort?reason=no_org') && res.text.includes('role="alert"')) return 'no-enterprise';
  if (res.status === 200 && res.text.includes('name="decision"')) return 'consent';
  if (res.status === 400 && res.text.includes('role="alert"')) return 'error-page';
  return `${res.status} ${res.location ?? ''}`;
}

async function tokenError(res: { status: number; body: Record<string, unknown> }): Promise<string> {
  if (res.status >= 500) return `${res.status}`;
  return res.status === 200 ? 'ok' : String(res.body.error);
}

/** What the browser and the portal meet now, for one round (0 or 1). */
async function meet(held: Held, round: number): Promise<Expected> {
  const { browser, portal, config, params } = held;
  // The account area first: the first place the browser meets in the round.
  const area = await browser.get(url('/account/security'));
  const account = area.status >= 500 ? `${area.status}` : area.status === 200 && area.text.includes('name="identifier"') ? 'signin' : area.status === 200 ? 'page' : `${area.status}`;
  const interactive = visit(await browser.get((await authRequest(config, portal, params)).url.href), portal);
  const silent = visit(await browser.get((await authRequest(config, portal, { ...params, prompt: 'none' })).url.href), portal);
  const auth = { client_id: portal.client_id, client_secret: portal.client_secret };
  const { code, verifier } = held.codes[round]!;
  const redeemed = await tokenRequest(endpoints.token, auth, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: portal.redirect_uri });
  const refreshed = await tokenRequest(endpoints.token, auth, { grant_type: 'refresh_token', refresh_token: held.refreshToken });
  // Rotation: a refresh that worked hands out the refresh token to use next.
  if (refreshed.status === 200) held.refreshToken = String(refreshed.body.refresh_token);
  const info = await fetch(endpoints.userinfo, { headers: { authorization: `Bearer ${held.accessToken}` } });
  const introspected = await tokenRequest(endpoints.introspection, auth, { token: held.accessToken });
  return {
    account: account as Expected['account'],
    interactive: interactive as Visit,
    silent: silent as Visit,
    code: (await tokenError(redeemed)) as Expected['code'],
    refresh: (await tokenError(refreshed)) as Expected['refresh'],
    userinfo: info.status as Expected['userinfo'],
    introspection: (introspected.status === 200 ? (introspected.body.active === true ? 'active' : 'inactive') : await tokenError(introspected)) as Expected['introspection'],
  };
}

/** A second browser in the person's own account area (password, and a new code when enrolled). */
async function accountArea(held: Held, path: string): Promise<{ browser: Browser; page: Response }> {
  const browser = new Browser(srv.issuer);
  let page = await browser.get(url(path));
  if (page.text.includes('name="identifier"')) page = await submit(browser, page, { identifier: held.person.pid, password: held.person.password });
  if (page.text.includes('name="code"') && held.secret) {
    clock += MINUTE;
    page = await submit(browser, page, { code: await totpCode(held.secret, clock) });
  }
  // Signing in lands on the account area's home: open the section asked for.
  if (!page.url.endsWith(path)) page = await browser.get(url(path));
  expect(page.status).toBe(200);
  return { browser, page };
}

interface Message { to: string; text: string }

/** What the development outbox holds for `to` (PRODUCT.md, Messages in development: one JSON a line). */
function messagesTo(to: string): Message[] {
  const file = path.join(srv.system.config.outboxDir, 'outbox.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Message).filter((m) => m.to === to);
}

/** The only match of `re` in a message's text (a code: the only 6-digit run; a link: the only http(s) URL). */
function onlyMatch(m: Message, re: RegExp): string | undefined {
  const all = [...m.text.matchAll(re)].map((x) => x[0]);
  return all.length === 1 ? all[0] : undefined;
}
const codeOf = (m: Message) => onlyMatch(m, /(?<!\d)\d{6}(?!\d)/g);
const linkOf = (m: Message) => onlyMatch(m, /https?:\/\/\S+/g);

/** The first message to `to` after the first `after` ones that `pick` finds something in (recovery delivers after answering). */
async function nextFrom(to: string, after: number, pick: (m: Message) => string | undefined): Promise<string> {
  for (const until = Date.now() + 5000; ;) {
    const found = messagesTo(to).slice(after).map(pick).find((v) => v !== undefined);
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`no such message to ${to} in the outbox`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Posts the page's form whose action is `action`, with its CSRF token (the form must be on the page). */
function submitTo(browser: Browser, page: Response, action: string, fields: Record<string, string>): Promise<Response> {
  expect({ status: page.status, forms: [...page.text.matchAll(/<form[^>]*action="([^"]*)"/g)].map((m) => m[1]).includes(action) }).toEqual({ status: 200, forms: true });
  return browser.post(url(action), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
}

/** Two helpdesk operators (a fraud lock's unlock needs a second one), made on first use. */
let helpdesks: [TestOperator, TestOperator] | undefined;

/**
 * The first helpdesk operator signed in to the operators' console (its own listener, through
 * dinhdanh at loa:high) in a browser of their own; `second` decides their proposals.
 */
async function atConsole(): Promise<{ browser: Browser; operator: TestOperator; second: TestOperator }> {
  helpdesks ??= [await addOperator(srv, ['helpdesk'], () => clock), await addOperator(srv, ['helpdesk'], () => clock)];
  clock += 31_000; // a new time step: each app code is accepted once
  const { browser, res } = await consoleSignIn(srv, helpdesks[0], { codeAt: clock });
  expect(res.status).toBe(302);
  return { browser, operator: helpdesks[0], second: helpdesks[1] };
}

/** Posts one of the console's account actions from the account's page; it lands back on the page with its notice. */
async function consoleAction(browser: Browser, personId: string, action: string, reason: string): Promise<Response> {
  const done = await consolePost(srv, browser, `/admin/accounts/${personId}/${action}`, { reason }, `/admin/accounts/${personId}`);
  expect({ status: done.status, notice: done.text.includes('role="status"') }).toEqual({ status: 200, notice: true });
  return done;
}

const NEW_PASSWORD = 'sông Hồng đỏ nặng phù sa mùa nước lên';

/**
 * A second browser through /recover: the number and the phone on file, the code sent to the phone,
 * then at the second-factor step an app code — or, with `reset`, the request for an account reset
 * (every factor lost), where this browser stops — then a new password.
 */
async function recover(h: Held, opts: { reset?: boolean; locked?: boolean } = {}): Promise<void> {
  const phone = h.person.phone!;
  const browser = new Browser(srv.issuer);
  let page = await browser.get(url('/recover'));
  const sent = messagesTo(phone).length;
  page = await submitTo(browser, page, '/recover', { pid: h.person.pid, contact: phone });
  page = await submitTo(browser, page, '/recover/code', { code: await nextFrom(phone, sent, codeOf) });
  // The account has a second factor: the step asks for it, and offers the account reset (not to an
  // account its owner locked: only the factor, or the counter, unlocks it).
  expect(page.text.includes('name="reset"')).toBe(h.secret !== undefined && !opts.locked);
  if (opts.reset) {
    page = await submitTo(browser, page, '/recover/factor', { reset: '1' });
    expect(page.status).toBe(200);
    return;
  }
  if (h.secret) {
    clock += MINUTE; // a new time step: each app code is accepted once
    page = await submitTo(browser, page, '/recover/factor', { method: 'totp', code: await totpCode(h.secret, clock) });
  }
  page = await submitTo(browser, page, '/recover/password', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
  expect(page.status).toBe(200);
  h.person.password = NEW_PASSWORD;
}

const rows: Row[] = [
  {
    change: 'operator lock',
    act: async (h) => { await cli.accountAdmin.lock(h.person.pid, OPERATOR); },
    expect: ENDED,
    events: ['session-revoked', 'account-disabled'],
  },
  {
    change: 'hard lock after 100 failed passwords (NIST SP 800-63B §5.2.2), typed in another browser',
    act: async (h) => {
      // 99 failures already counted: the 100th, typed now, locks the account.
      for (let i = 0; i < 99; i += 1) await srv.system.store.counters.increment(`login-fail:${h.person.id}`, 7 * 24 * 3600_000, clock);
      clock += 2 * 3600_000; // past the delay the failures owe
      const other = new Browser(srv.issuer);
      const page = await other.get((await authRequest(h.config, h.portal, h.params)).url.href);
      const refused = await submit(other, page, { identifier: h.person.pid, password: 'not the password at all' });
      expect(refused.status).toBeLessThan(500);
      expect((await srv.system.store.persons.findById(h.person.id))!.status).toBe('locked');
    },
    expect: ENDED,
    events: ['session-revoked', 'account-disabled'],
  },
  {
    change: 'operator unlock (after a lock): nothing held before the lock comes back',
    act: async (h) => {
      await cli.accountAdmin.lock(h.person.pid, OPERATOR);
      await cli.accountAdmin.unlock(h.person.pid, OPERATOR);
    },
    expect: ENDED,
    events: ['session-revoked', 'account-disabled', 'account-enabled'],
  },
  {
    change: 'operator lock for fraud, through the console',
    act: async (h) => {
      const { browser } = await atConsole();
      await consoleAction(browser, h.person.id, 'lock-fraud', 'Nghi chiếm đoạt tài khoản, theo công văn của công an');
      expect((await srv.system.store.persons.findById(h.person.id))!).toMatchObject({ status: 'locked', lockReason: 'fraud' });
    },
    expect: ENDED,
    events: ['session-revoked', 'account-disabled'],
  },
  {
    change: 'operator unlock of a fraud lock, through the console, once a second operator approved: nothing held before the lock comes back',
    act: async (h) => {
      const { browser, operator, second } = await atConsole();
      await consoleAction(browser, h.person.id, 'lock-fraud', 'Nghi chiếm đoạt tài khoản, theo công văn của công an');
      const proposed = await consoleAction(browser, h.person.id, 'unlock', 'Công an xác nhận đã xử lý xong vụ việc');
      const approval = new URL(proposed.url).searchParams.get('approval')!;
      // A proposal only: still locked for fraud until a different operator approves it.
      expect((await srv.system.store.persons.findById(h.person.id))!).toMatchObject({ status: 'locked', lockReason: 'fraud' });
      await srv.system.adminActions.approvals.approve({ id: second.id, roles: second.roles, via: 'console' }, approval, 'Đã xem công văn xác nhận của công an');
      expect((await srv.system.store.persons.findById(h.person.id))!).toMatchObject({ status: 'active', lockReason: null });
      await srv.system.audit.flush();
      const [unlocked] = await srv.system.store.audit.search({ event: 'ACCOUNT_UNLOCKED', person: h.person.id, limit: 1 });
      expect(unlocked!.details).toMatchObject({ was: 'locked:fraud', operator: operator.id, via: 'console', approved_by: second.id, approval });
    },
    expect: ENDED,
    events: ['session-revoked', 'account-disabled', 'account-enabled'],
  },
  {
    change: 'operator reset-mfa',
    given: { acr: SUBSTANTIAL },
    act: async (h) => { await cli.accountAdmin.resetMfa(h.person.pid, OPERATOR, 'CCCD checked in person at the counter'); },
    expect: { ...ENDED, interactive: 'signin' },
    events: ['session-revoked', 'credential-change'],
  },
  {
    change: 'operator set-level up (1 → 2): the session and its tokens carry on',
    act: async (h) => { await cli.accountAdmin.setLevel(h.person.pid, '2', OPERATOR, EVIDENCE); },
    expect: KEPT,
    events: ['assurance-level-change'],
  },
  {
    change: 'operator set-level down (2 → 1) of a session signed in at high',
    given: { level: 2, acr: HIGH },
    act: async (h) => { await cli.accountAdmin.setLevel(h.person.pid, '1', OPERATOR); },
    expect: ENDED,
    events: ['session-revoked', 'assurance-level-change'],
  },
  {
    change: 'operator portal disable',
    act: async (h) => { await cli.portalAdmin.disable(h.portal.client_id, 'ops.test'); },
    expect: { interactive: 'error-page', silent: 'error-page', code: 'invalid_client', refresh: 'invalid_client', userinfo: 401, introspection: 'invalid_client', account: 'page' },
    events: [],
  },
  {
    change: 'operator portal re-enable (after a disable): the session signs in again, tokens from before stay dead',
    act: async (h) => {
      await cli.portalAdmin.disable(h.portal.client_id, 'ops.test');
      await cli.portalAdmin.enable(h.portal.client_id, 'ops.test');
    },
    expect: { interactive: 'code', silent: 'code', code: 'invalid_grant', refresh: 'invalid_grant', userinfo: 401, introspection: 'inactive', account: 'page' },
    events: [],
  },
  {
    change: 'operator enterprise suspend',
    given: { enterprise: 'representative' },
    act: async (h) => { await cli.orgs.setStatus(h.enterprise!, 'suspended', { operator: 'ops.test' }, 'tax authority order'); },
    expect: { interactive: 'no-enterprise', silent: 'interaction_required', code: 'invalid_grant', refresh: 'invalid_grant', userinfo: 401, introspection: 'inactive', account: 'page' },
    events: ['delegation-ended', 'session-revoked'],
  },
  {
    change: 'operator delegation revoke',
    given: { enterprise: 'delegate' },
    act: async (h) => { await cli.orgs.revoke(h.enterprise!, h.person.pid, { operator: 'ops.test' }); },
    expect: { interactive: 'no-enterprise', silent: 'interaction_required', code: 'invalid_grant', refresh: 'invalid_grant', userinfo: 401, introspection: 'inactive', account: 'page' },
    events: ['delegation-ended', 'session-revoked'],
  },
  {
    change: 'citizen withdraws the consent to the portal',
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/portals');
      const done = await browser.post(url('/account/portals/revoke'), { _csrf: hiddenField(page.text, '_csrf'), client: h.portal.client_id });
      expect(done.status).toBe(200);
    },
    expect: { interactive: 'consent', silent: 'consent_required', code: 'invalid_grant', refresh: 'invalid_grant', userinfo: 401, introspection: 'inactive', account: 'page' },
    events: ['session-revoked'],
  },
  {
    change: 'citizen ends the session from another device',
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/sessions');
      const rows = page.text.split('data-testid="session"').slice(1);
      const uids = [...page.text.matchAll(/name="session" value="([^"]+)"/g)].map((m) => m[1]!);
      const other = rows.findIndex((r) => !r.includes('phiên này'));
      expect(uids).toHaveLength(2);
      const done = await browser.post(url('/account/sessions/end'), { _csrf: hiddenField(page.text, '_csrf'), session: uids[other]! });
      expect(done.status).toBe(200);
    },
    expect: ENDED,
    events: ['session-revoked'],
  },
  {
    change: 'citizen removes the second factor the session signed in with',
    given: { acr: SUBSTANTIAL },
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/security');
      const factor = /name="factor" value="([^"]+)"/.exec(page.text)![1]!;
      const done = await browser.post(url('/account/security/factors/remove'), { _csrf: hiddenField(page.text, '_csrf'), factor, current_password: h.person.password });
      expect(done.status).toBe(200);
    },
    expect: ENDED,
    events: ['session-revoked', 'credential-change'],
  },
  {
    change: 'citizen resets a forgotten password (/recover: a code to the phone, the app code, a new password)',
    given: { acr: SUBSTANTIAL },
    act: async (h) => {
      await recover(h);
      // The second factor survives a password reset; the level too.
      const factors = await srv.system.store.factors.listForPerson(h.person.id);
      expect(factors.filter((f) => f.confirmed).map((f) => f.type)).toEqual(['totp']);
      expect((await srv.system.store.persons.findById(h.person.id))!.level).toBe(1);
    },
    expect: ENDED,
    events: ['recovery-activated', 'credential-change', 'session-revoked'],
  },
  {
    change: 'citizen who lost every factor resets the account (/recover, then after the wait the link sent to the phone)',
    given: { level: 2, acr: HIGH },
    act: async (h) => {
      await recover(h, { reset: true });
      // Nothing changes during the wait.
      expect((await srv.system.store.factors.listForPerson(h.person.id)).length).toBeGreaterThan(0);
      clock += srv.system.config.accountResetWaitMs + MINUTE;
      const sent = messagesTo(h.person.phone!).length;
      await srv.system.jobs.runDue();
      const link = await nextFrom(h.person.phone!, sent, (m) => { const l = linkOf(m); return l && new URL(l).pathname.startsWith('/recover/reset/') ? l : undefined; });
      const browser = new Browser(srv.issuer);
      // The link's page has a button; its press uses the link up and leads to the password step.
      const confirm = await browser.get(link);
      const page = await submitTo(browser, confirm, '/recover/reset/open', { token: hiddenField(confirm.text, 'token') });
      const done = await submitTo(browser, page, '/recover/reset', { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
      expect(done.status).toBe(200);
      h.person.password = NEW_PASSWORD;
      // Every factor and recovery code gone, level 2 lowered to 1.
      expect(await srv.system.store.factors.listForPerson(h.person.id)).toEqual([]);
      expect(await srv.system.store.recoveryCodes.countUnused(h.person.id)).toBe(0);
      expect((await srv.system.store.persons.findById(h.person.id))!.level).toBe(1);
    },
    expect: ENDED,
    events: ['recovery-activated', 'credential-change', 'session-revoked', 'assurance-level-change'],
  },
  {
    change: 'citizen changes the password in the account area (every other session ends)',
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/password');
      const done = await submitTo(browser, page, '/account/password', { current_password: h.person.password, password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
      expect(done.status).toBe(200);
      h.person.password = NEW_PASSWORD;
      // The session it was changed in carries on.
      expect((await browser.get(url('/account/password'))).text).toContain('name="current_password"');
    },
    expect: ENDED,
    events: ['credential-change', 'session-revoked'],
  },
  {
    change: 'citizen adds a phone (a code sent to it) without ending other sessions',
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/profile');
      const phone = `+84388${h.person.phone!.slice(-6)}`;
      const sent = messagesTo(phone).length;
      const codePage = await browser.post(url('/account/profile/contacts/add'), { _csrf: hiddenField(page.text, '_csrf'), phone, current_password: h.person.password });
      const done = await submitTo(browser, codePage, '/account/profile/contacts/code', { code: await nextFrom(phone, sent, codeOf) });
      expect(done.status).toBe(200);
      expect((await srv.system.store.persons.findById(h.person.id))!.contacts.filter((c) => c.verified && c.kind === 'phone').map((c) => c.value)).toEqual([h.person.phone, phone]);
    },
    expect: KEPT,
    events: ['recovery-information-changed'],
  },
  {
    change: 'citizen removes a contact and asks to end the other sessions',
    act: async (h) => {
      await srv.system.store.persons.updateContacts(h.person.id, 0, [
        ...(await srv.system.store.persons.findById(h.person.id))!.contacts,
        { id: 'second-email', kind: 'email', value: `p${h.person.id.slice(0, 8)}@example.vn`, verified: true, addedAt: clock, verifiedAt: clock },
      ], null);
      const { browser, page } = await accountArea(h, '/account/profile');
      const form = { contact: 'second-email', current_password: h.person.password, end_others: 'on' };
      // Signed in with the password alone: removing a contact asks for a code to a contact on file first.
      let step = await browser.post(url('/account/profile/contacts/remove'), { _csrf: hiddenField(page.text, '_csrf'), ...form });
      step = await submit(browser, step, { identifier: h.person.pid, password: h.person.password });
      const sent = messagesTo(h.person.phone!).length;
      clock += MINUTE; // one code a minute to a phone
      step = await submitTo(browser, step, /action="([^"]*\/send-code)"/.exec(step.text)![1]!, { channel: 'sms' });
      step = await submit(browser, step, { code: await nextFrom(h.person.phone!, sent, codeOf) });
      expect(step.text).toContain('data-testid="contact"');
      const done = await browser.post(url('/account/profile/contacts/remove'), { _csrf: hiddenField(step.text, '_csrf'), ...form });
      expect(done.status).toBe(200);
      expect((await srv.system.store.persons.findById(h.person.id))!.contacts.map((c) => c.id)).not.toContain('second-email');
    },
    expect: ENDED,
    events: ['recovery-information-changed', 'session-revoked'],
  },
  {
    change: 'citizen says "this wasn\'t me" on a sign-in in the activity list (everything ends, a new password is required)',
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/activity');
      const entry = /name="not_me" value="([^"]+)"/.exec(page.text)![1]!;
      const done = await browser.post(url('/account/activity/not-me'), { _csrf: hiddenField(page.text, '_csrf'), not_me: entry });
      expect(done.status).toBe(200);
      // The browser it was pressed in is signed out too.
      expect((await browser.get(url('/account/activity'))).text).toContain('name="identifier"');
      expect((await srv.system.store.persons.findById(h.person.id))!.passwordResetRequired).toBe(true);
    },
    expect: ENDED,
    events: ['credential-change', 'session-revoked'],
  },
  {
    change: 'citizen presses the "this wasn\'t me" link of a new-browser notice (without signing in)',
    act: async (h) => {
      const sent = messagesTo(h.person.phone!).length;
      // A sign-in from a second browser: new to the account, so a notice goes to the phone.
      await accountArea(h, '/account');
      const link = await nextFrom(h.person.phone!, sent, (m) => { const l = linkOf(m); return l && new URL(l).pathname.startsWith('/account/not-me/') ? l : undefined; });
      const stranger = new Browser(srv.issuer);
      const page = await stranger.get(link);
      const done = await submitTo(stranger, page, new URL(link).pathname, {});
      expect(done.status).toBe(200);
      expect((await srv.system.store.persons.findById(h.person.id))!.attention?.reason).toBe('not_me');
    },
    expect: ENDED,
    events: ['credential-change', 'session-revoked'],
  },
  {
    change: 'citizen locks the account ("lock my account")',
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/data');
      const done = await submitTo(browser, page, '/account/data/lock', { lock: 'lock' });
      expect(done.status).toBe(200);
      expect((await srv.system.store.persons.findById(h.person.id))!).toMatchObject({ status: 'locked', lockReason: 'self' });
    },
    expect: ENDED,
    events: ['account-disabled', 'session-revoked'],
  },
  {
    change: 'citizen unlocks a self-locked account through /recover with the second factor: nothing from before comes back',
    given: { acr: SUBSTANTIAL },
    act: async (h) => {
      const { browser, page } = await accountArea(h, '/account/data');
      expect((await submitTo(browser, page, '/account/data/lock', { lock: 'lock' })).status).toBe(200);
      await recover(h, { locked: true });
      expect((await srv.system.store.persons.findById(h.person.id))!).toMatchObject({ status: 'active', lockReason: null });
    },
    expect: ENDED,
    events: ['account-disabled', 'session-revoked', 'recovery-activated', 'credential-change', 'account-enabled'],
  },
];

describe('a change of state met by a live browser and a live portal: never a 5xx, never a token for the old state', () => {
  it.each(rows)('$change', async (row) => {
    const held = await hold(row.given);
    await row.act(held);
    expect({ round: 'before the server\'s jobs run', ...(await meet(held, 0)) }).toEqual({ round: 'before the server\'s jobs run', ...row.expect });
    await srv.system.jobs.runDue();
    expect({ round: 'after the server\'s jobs ran', ...(await meet(held, 1)) }).toEqual({ round: 'after the server\'s jobs ran', ...row.expect });
    // The portal's security events, whichever door made the change (the CLI's are made by its own
    // services, straight into the store).
    await srv.system.jobs.runDue();
    expect({ events: await receivedEvents(held) }).toEqual({ events: [...row.events].sort() });
  });
});

describe('every use checks the person, even when a session outlives its ending', () => {
  it.each([
    ['the status alone set to locked', (h: Held) => srv.system.store.persons.setStatus(h.person.id, 'locked')],
    ['the access revoked before now, the session record left in place', (h: Held) => srv.system.store.persons.revokeAccessBefore(h.person.id, Date.now() + 1000)],
  ])('%s: the session ends at its next use, tokens are refused, and nothing answers 5xx', async (_label, change) => {
    const held = await hold();
    await change(held);
    expect({ round: 'next use', ...(await meet(held, 0)) }).toEqual({ round: 'next use', ...ENDED });
    // The session was ended in the store by that use: its record is gone.
    expect(await srv.system.store.oidc.listByAccount('Session', held.person.id)).toHaveLength(0);
  });
});

describe('a person\'s sessions are found in the store, however many', () => {
  it('a lock ends all 25 sessions of a person (no capped list of sessions), and the sessions page listed all 25 before', async () => {
    const person = await srv.addPerson({ pid: '001090799999' });
    const portal = await newPortal();
    const config = await discover(srv.issuer, portal);
    const browsers: Browser[] = [];
    for (let i = 0; i < 25; i += 1) {
      const browser = new Browser(srv.issuer);
      await authorize({ person, portal, config, browser, params: { scope: 'openid' } }, await authRequest(config, portal, { scope: 'openid' }));
      browsers.push(browser);
    }
    const listed = await browsers[0]!.get(url('/account/sessions'));
    expect([...listed.text.matchAll(/data-testid="session"/g)]).toHaveLength(25);
    await cli.accountAdmin.lock(person.pid, OPERATOR);
    expect(await srv.system.store.oidc.listByAccount('Session', person.id)).toHaveLength(0);
    for (const browser of browsers) {
      const silent = await browser.get((await authRequest(config, portal, { scope: 'openid', prompt: 'none' })).url.href);
      expect(new URL(silent.location!).searchParams.get('error')).toBe('login_required');
    }
  });
});
