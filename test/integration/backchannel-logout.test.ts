/**
 * Single sign-on and single logout across two portals (issue 4, SECURITY.md #9, #23, #25): silent
 * SSO with different pairwise subjects, and back-channel logout tokens delivered from the durable
 * queue — on sign-out (all or one portal), idle expiry, a session ended from another device — with
 * a slow or dead portal never delaying the citizen and a failed delivery retried later.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, redeem, signIn, type Portal } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';
import { configFor } from './pages-support.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

let srv: TestServer;
let receiver: LogoutReceiver;
let clock = Date.now();
let national: Awaited<ReturnType<TestServer['addPortal']>>;
let province: Awaited<ReturnType<TestServer['addPortal']>>;
let jwks: ReturnType<typeof jose.createRemoteJWKSet>;

beforeAll(async () => {
  receiver = await new LogoutReceiver().start();
  srv = await startTestServer({ now: () => clock });
  national = await srv.addPortal({ name: 'Cổng Dịch vụ công quốc gia', backchannelLogoutUri: receiver.url('/national'), postLogoutRedirectUris: ['http://localhost:9001/signed-out'] });
  province = await srv.addPortal({ name: 'Cổng dịch vụ công tỉnh', backchannelLogoutUri: receiver.url('/province') });
  jwks = jose.createRemoteJWKSet(new URL(`${srv.issuer}/jwks`));
});
afterAll(async () => {
  await srv.close();
  await receiver.close();
});

type Person = Awaited<ReturnType<TestServer['addPerson']>>;

function callback(res: Response, p: Portal): URLSearchParams {
  expect(res.status).toBe(303);
  const url = new URL(res.location!);
  expect(`${url.origin}${url.pathname}`).toBe(p.redirect_uri);
  return url.searchParams;
}

/** Signs in at a portal (login and consent pages as needed) and redeems the code. */
async function enter(browser: Browser, p: Portal, person: Person) {
  const config = await configFor(srv, p);
  const req = await authRequest(config, p);
  const res = await signIn(browser, req, person);
  expect(callback(res, p).get('code')).toBeTruthy();
  const tokens = await redeem(config, req, res.location!);
  const claims = tokens.claims()!;
  return { idToken: tokens.id_token!, sub: claims.sub, sid: claims.sid as string };
}

async function silent(browser: Browser, p: Portal): Promise<URLSearchParams> {
  const req = await authRequest(await configFor(srv, p), p, { prompt: 'none' });
  return callback(await browser.get(req.url.href), p);
}

async function logOut(browser: Browser, query: Record<string, string>, choice: 'all' | 'portal'): Promise<Response> {
  const page = await browser.get(`${srv.issuer}/session/end?${new URLSearchParams(query).toString()}`);
  expect(page.status).toBe(200);
  return browser.post(new URL(formAction(page.text), srv.issuer).href, {
    xsrf: hiddenField(page.text, 'xsrf'),
    _csrf: hiddenField(page.text, '_csrf'),
    logout: choice,
  });
}

/** Validates a logout token as a portal must (Back-Channel Logout 1.0 §2.6). */
async function verifyLogoutToken(token: string, p: Portal) {
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: srv.issuer,
    audience: p.client_id,
    typ: 'logout+jwt',
    currentDate: new Date(clock),
    algorithms: ['RS256'],
  });
  expect(protectedHeader.kid).toBeTruthy();
  expect(payload.events).toEqual({ [EVENT]: {} });
  expect(payload).not.toHaveProperty('nonce');
  expect(typeof payload.jti).toBe('string');
  expect(typeof payload.iat).toBe('number');
  return payload;
}

const newPath = (() => {
  let n = 0;
  return (name: string) => `/${name}-${(n += 1)}`;
})();

/** A pair of portals whose receivers only this test reads. */
async function freshPortals(behaviours: { a?: 'ok' | 'hang' | number; b?: 'ok' | 'hang' | number } = {}) {
  const pa = newPath('a');
  const pb = newPath('b');
  if (behaviours.a) receiver.behave(pa, behaviours.a);
  if (behaviours.b) receiver.behave(pb, behaviours.b);
  const a = await srv.addPortal({ backchannelLogoutUri: receiver.url(pa) });
  const b = await srv.addPortal({ backchannelLogoutUri: receiver.url(pb) });
  return { a, b, pa, pb };
}

describe('single sign-on', () => {
  it('signed in at the national portal, the citizen enters the provincial one with a consent only, then silently; subjects differ', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const first = await enter(browser, national, person);

    // The second portal: no login page, only its first consent.
    const config = await configFor(srv, province);
    const req = await authRequest(config, province);
    const page = await browser.get(req.url.href);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('name="password"');
    expect(page.text).toContain('name="decision"');
    const second = await enter(browser, province, person);
    expect(second.sub).not.toBe(first.sub);
    expect(second.sid).not.toBe(first.sid);

    // From now on, no page at all.
    expect((await silent(browser, province)).get('code')).toBeTruthy();
    expect((await silent(browser, national)).get('code')).toBeTruthy();
  });

  it('discovery advertises back-channel logout with sessions', async () => {
    const res = await fetch(`${srv.issuer}/.well-known/openid-configuration`);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc.backchannel_logout_supported).toBe(true);
    expect(doc.backchannel_logout_session_supported).toBe(true);
    expect(doc.frontchannel_logout_supported).toBeUndefined();
  });
});

describe('single logout', () => {
  it('"all portals": every portal receives a valid logout token for its subject and sid, and prompt=none answers login_required everywhere', async () => {
    const { a, b, pa, pb } = await freshPortals();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const atA = await enter(browser, a, person);
    const atB = await enter(browser, b, person);

    const done = await logOut(browser, { id_token_hint: atA.idToken, client_id: a.client_id }, 'all');
    expect(done.status).toBeLessThan(400);

    const [tokenA] = await receiver.waitFor(pa);
    const [tokenB] = await receiver.waitFor(pb);
    const claimsA = await verifyLogoutToken(tokenA!, a);
    const claimsB = await verifyLogoutToken(tokenB!, b);
    expect(claimsA).toMatchObject({ sub: atA.sub, sid: atA.sid });
    expect(claimsB).toMatchObject({ sub: atB.sub, sid: atB.sid });
    expect(receiver.received.find((r) => r.path === pa)?.contentType).toBe('application/x-www-form-urlencoded');

    expect((await silent(browser, a)).get('error')).toBe('login_required');
    expect((await silent(browser, b)).get('error')).toBe('login_required');
    // One ending, one delivery each (the job ids are per portal and sid).
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pa)).toHaveLength(1);
    expect(receiver.tokens(pb)).toHaveLength(1);
  });

  it('"this portal": only that portal is told; the other keeps its session', async () => {
    const { a, b, pa, pb } = await freshPortals();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const atA = await enter(browser, a, person);
    await enter(browser, b, person);

    await logOut(browser, { id_token_hint: atA.idToken, client_id: a.client_id }, 'portal');
    const [token] = await receiver.waitFor(pa);
    expect(await verifyLogoutToken(token!, a)).toMatchObject({ sub: atA.sub, sid: atA.sid });
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pb)).toHaveLength(0);
    expect((await silent(browser, b)).get('code')).toBeTruthy();
  });

  it('a portal that does not answer does not delay the sign-out, nor the other portal\'s delivery', async () => {
    const { a, b, pa, pb } = await freshPortals({ a: 'hang' });
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const atA = await enter(browser, a, person);
    await enter(browser, b, person);

    const done = await logOut(browser, { id_token_hint: atA.idToken, client_id: a.client_id }, 'all');
    expect(done.status).toBeLessThan(400);
    // The other portal is told while the first still holds its request.
    await receiver.waitFor(pb);
    await receiver.waitFor(pa);
    expect(receiver.pending).toBe(1);
    receiver.release(200);
    expect(receiver.tokens(pa)).toHaveLength(1);
  });

  it('a failed delivery is recorded and retried later with a fresh token; a portal that rejects the token is not retried', async () => {
    const { a, b, pa, pb } = await freshPortals({ a: 503, b: 400 });
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const atA = await enter(browser, a, person);
    const atB = await enter(browser, b, person);
    await logOut(browser, { id_token_hint: atA.idToken, client_id: a.client_id }, 'all');
    await receiver.waitFor(pa);
    await receiver.waitFor(pb);
    await srv.system.jobs.runDue();

    const jobA = await srv.system.store.jobs.find(`bcl:${a.client_id}:${atA.sid}`);
    expect(jobA).toMatchObject({ status: 'pending', attempts: 1, lastOutcome: 'HTTP 503' });
    expect(jobA!.dueAt).toBe(clock + 10_000);
    await expect(srv.system.store.jobs.find(`bcl:${b.client_id}:${atB.sid}`)).resolves.toMatchObject({ status: 'failed', lastOutcome: 'HTTP 400' });

    // Not before it is due …
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pa)).toHaveLength(1);
    // … then again, and the portal is back.
    receiver.behave(pa, 'ok');
    clock += 11_000;
    await srv.system.jobs.runDue();
    const tokens = receiver.tokens(pa);
    expect(tokens).toHaveLength(2);
    const first = jose.decodeJwt(tokens[0]!);
    const second = await verifyLogoutToken(tokens[1]!, a);
    expect(second.jti).not.toBe(first.jti);
    expect(second.iat).toBeGreaterThan(first.iat!);
    await expect(srv.system.store.jobs.find(`bcl:${a.client_id}:${atA.sid}`)).resolves.toMatchObject({ status: 'done', attempts: 2, lastOutcome: 'HTTP 200' });
    expect(receiver.tokens(pb)).toHaveLength(1);
  });

  it('a dead portal (connection refused) is retried with back-off, and the sign-out completes', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/logout`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dead = await srv.addPortal({ backchannelLogoutUri: deadUrl });
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const at = await enter(browser, dead, person);

    const done = await logOut(browser, { id_token_hint: at.idToken, client_id: dead.client_id }, 'all');
    expect(done.status).toBeLessThan(400);
    await srv.system.jobs.runDue();
    const job = await srv.system.store.jobs.find(`bcl:${dead.client_id}:${at.sid}`);
    expect(job).toMatchObject({ status: 'pending', attempts: 1 });
    expect(job!.lastOutcome).toMatch(/ECONNREFUSED|refused|connect/i);
    expect(job!.lastOutcome).not.toContain('logout_token');
    clock += 10_000;
    await srv.system.jobs.runDue();
    const again = await srv.system.store.jobs.find(`bcl:${dead.client_id}:${at.sid}`);
    expect(again).toMatchObject({ status: 'pending', attempts: 2 });
    expect(again!.dueAt).toBe(clock + 30_000);
  });
});

describe('other ways a session ends', () => {
  it('idle expiry: the sweep tells every portal, with no request from the browser', async () => {
    const { a, b, pa, pb } = await freshPortals();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const atA = await enter(browser, a, person);
    const atB = await enter(browser, b, person);

    clock += 10 * 60_000;
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pa)).toHaveLength(0);
    // Used at 10 minutes: idle from then on.
    expect((await silent(browser, a)).get('code')).toBeTruthy();
    clock += 25 * 60_000;
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pa)).toHaveLength(0);
    clock += 6 * 60_000;
    await srv.system.jobs.runDue();
    expect(await verifyLogoutToken((await receiver.waitFor(pa))[0]!, a)).toMatchObject({ sub: atA.sub, sid: atA.sid });
    expect(await verifyLogoutToken((await receiver.waitFor(pb))[0]!, b)).toMatchObject({ sub: atB.sub, sid: atB.sid });
    expect((await silent(browser, a)).get('error')).toBe('login_required');
  });

  it('idle expiry met by the browser first: the portals are told once', async () => {
    const { a, pa } = await freshPortals();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    await enter(browser, a, person);
    clock += 31 * 60_000;
    expect((await silent(browser, a)).get('error')).toBe('login_required');
    await receiver.waitFor(pa);
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pa)).toHaveLength(1);
  });

  it('a session ended from another device tells its portals', async () => {
    const { a, pa } = await freshPortals();
    const person = await srv.addPerson();
    const phone = new Browser(srv.issuer);
    const atA = await enter(phone, a, person);
    const laptop = new Browser(srv.issuer);
    await enter(laptop, a, person);

    const page = await laptop.get(`${srv.issuer}/account/sessions`);
    await laptop.post(`${srv.issuer}/account/sessions/end-others`, { _csrf: hiddenField(page.text, '_csrf') });
    const [token] = await receiver.waitFor(pa);
    expect(await verifyLogoutToken(token!, a)).toMatchObject({ sub: atA.sub, sid: atA.sid });
    expect((await silent(phone, a)).get('error')).toBe('login_required');
    expect((await silent(laptop, a)).get('code')).toBeTruthy();
  });

  it('a disabled portal is not called', async () => {
    const { a, pa } = await freshPortals();
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const atA = await enter(browser, a, person);
    await srv.system.store.portals.setDisabled(a.client_id, true);
    const page = await browser.get(`${srv.issuer}/session/end`);
    await browser.post(new URL(formAction(page.text), srv.issuer).href, { xsrf: hiddenField(page.text, 'xsrf'), _csrf: hiddenField(page.text, '_csrf'), logout: 'all' });
    await srv.system.jobs.runDue();
    expect(receiver.tokens(pa)).toHaveLength(0);
    await expect(srv.system.store.jobs.find(`bcl:${a.client_id}:${atA.sid}`)).resolves.toBeUndefined();
  });
});
