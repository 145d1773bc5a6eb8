/**
 * /metrics on a real dinhdanh after a varied run: sign-ins at two portals and three levels through
 * openid-client and the pages, wrong passwords and codes, an unregistered client id, token and
 * userinfo errors, hundreds of random paths on both listeners, the console, background jobs. The
 * scrape shows the sign-ins by portal and level, carries no person, pid, `sub`, IP, path or
 * unregistered client id in any label, and stays under a fixed number of series. The endpoint is
 * on the operators' listener only, behind its bearer token when one is set; with metrics off there
 * is none and nothing is counted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import type * as oidc from 'openid-client';
import { TEST_STORE_KIND, startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';
import { HIGH, LOW, MINUTE, SUBSTANTIAL, pageSteps, totpCode, totpSecret, type Person } from '../helpers/pages.js';
import { endpoints, rawAuthRequest, tokenRequest, userinfoRequest, type Endpoints } from './protocol-support.js';
import { noTelemetry } from '../../src/metrics/telemetry.js';
import { vietnamDay } from '../../src/metrics/usage.service.js';

/**
 * The most series (sample lines) /metrics may hold after this run. Measured at 895: 476 lines of
 * store-call histograms (34 repository operations × 14 lines), 280 of request histograms (20 routes
 * × methods × 14), about 110 of the process's default metrics, the rest dinhdanh's counters and
 * gauges. The cap is that with about 50 % headroom for routes and store operations added later;
 * past it, a label has started to grow with traffic rather than with the code (or buckets were
 * added: each costs a line per series).
 */
const MAX_SERIES = 1_350;
const TOKEN = crypto.randomBytes(24).toString('base64url');
const UNREGISTERED = `evil-client-${crypto.randomBytes(6).toString('hex')}`;

let now = Date.now();
let srv: TestServer;
let portalA: Portal;
let portalB: Portal;
let configA: oidc.Configuration;
let configB: oidc.Configuration;
let ep: Endpoints;
/** Everything that must never appear in a label: person ids, pids, subs, IPs, paths, the unregistered client. */
const secrets = new Set<string>(['127.0.0.1', UNREGISTERED, TOKEN]);

const totp = (secret: string) => totpCode(secret, now);
const stepsA = pageSteps({ server: () => srv, portal: () => portalA, expectLoginForm: true });
const stepsB = pageSteps({ server: () => srv, portal: () => portalB, expectLoginForm: true });

async function scrape(base = srv.adminUrl, token: string | null = TOKEN): Promise<Response> {
  return fetch(`${base}/metrics`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
}

interface Sample { name: string; labels: Record<string, string>; value: number; line: string }

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    out.push({ name: m[1]!, labels, value: Number(m[3]), line });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include these. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

async function person(level: '1' | '2' = '1'): Promise<Person & { id: string }> {
  const p = await srv.addPerson({ level });
  secrets.add(p.id);
  secrets.add(p.pid);
  return p;
}

/** A password-only sign-in at a portal, its code redeemed by openid-client. */
async function lowSignIn(portal: Portal, config: oidc.Configuration, who: Person): Promise<void> {
  const browser = new Browser(srv.issuer);
  const req = await authRequest(config, portal);
  const res = await signIn(browser, req, who);
  expect(res.status).toBe(303);
  const tokens = await redeem(config, req, res.location!);
  const claims = tokens.claims()!;
  expect(claims.acr).toBe(LOW);
  secrets.add(claims.sub);
}

beforeAll(async () => {
  srv = await startTestServer({ now: () => now, env: { DINHDANH_METRICS_TOKEN: TOKEN } });
  portalA = await srv.addPortal();
  portalB = await srv.addPortal();
  configA = await discover(srv.issuer, portalA);
  configB = await discover(srv.issuer, portalB);
  ep = await endpoints(srv.issuer);
  await srv.system.portalLabels.refresh();
});
afterAll(async () => {
  await srv.close();
});

describe('after a varied run', () => {
  let samples: Sample[];
  let text: string;

  beforeAll(async () => {
    // Sign-ins: three at A with a password, one at B enrolling an app (substantial), then high at B.
    const one = await person();
    const two = await person();
    for (const who of [one, two, one]) await lowSignIn(portalA, configA, who);
    const strong = await person('2');
    now += MINUTE;
    const enrolBrowser = new Browser(srv.issuer);
    const enrolReq = await authRequest(configB, portalB, { acr_values: SUBSTANTIAL });
    const enrolPage = await stepsB.password(enrolBrowser, enrolReq, strong);
    const seed = totpSecret(enrolPage.text);
    const codes = await stepsB.submit(enrolBrowser, enrolPage, { code: await totp(seed) });
    const back = await stepsB.toPortal(enrolBrowser, await stepsB.submit(enrolBrowser, codes, { next: 'continue' }));
    const enrolled = (await redeem(configB, enrolReq, back.location!)).claims()!;
    expect(enrolled.acr).toBe(SUBSTANTIAL);
    secrets.add(enrolled.sub);
    now += MINUTE;
    const highBrowser = new Browser(srv.issuer);
    const highReq = await authRequest(configB, portalB, { acr_values: HIGH });
    const codePage = await stepsB.password(highBrowser, highReq, strong);
    // One wrong code first (a sign-in failure at B), then the right one.
    const right = await totp(seed);
    const wrongPage = await stepsB.submit(highBrowser, codePage, { code: right === '000000' ? '111111' : '000000' });
    expect(wrongPage.status).toBe(400);
    const high = await stepsB.toPortal(highBrowser, await stepsB.submit(highBrowser, wrongPage, { code: right }));
    const highClaims = (await redeem(configB, highReq, high.location!)).claims()!;
    expect(highClaims.acr).toBe(HIGH);
    secrets.add(highClaims.sub);

    // Wrong passwords at A, an unknown identifier at B.
    for (const who of [one, two]) {
      const res = await stepsA.password(new Browser(srv.issuer), await authRequest(configA, portalA), { pid: who.pid, password: 'không phải mật khẩu này' });
      expect(res.text).toContain('name="identifier"');
    }
    const unknownPid = '079199000777';
    secrets.add(unknownPid);
    await stepsB.password(new Browser(srv.issuer), await authRequest(configB, portalB), { pid: unknownPid, password: 'mật khẩu bất kỳ nào đó' });

    // An unregistered client id at /auth, and errors at the token and userinfo endpoints.
    const forged = await rawAuthRequest(ep.authorization, { ...portalA, client_id: UNREGISTERED });
    expect((await fetch(forged.url, { redirect: 'manual' })).status).toBe(400);
    expect((await tokenRequest(ep.token, portalA, { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: portalA.redirect_uri, code_verifier: 'x'.repeat(43) })).body.error).toBe('invalid_grant');
    expect((await tokenRequest(ep.token, { client_id: portalA.client_id, client_secret: 'wrong' }, { grant_type: 'client_credentials' })).body.error).toBe('invalid_client');
    expect((await tokenRequest(ep.token, { client_id: UNREGISTERED, client_secret: 'x' }, { grant_type: 'client_credentials' })).body.error).toBe('invalid_client');
    expect((await userinfoRequest(ep.userinfo, 'not-a-token')).status).toBe(401);

    // Scanners: 200 distinct random paths on the public listener, some shaped like our routes, and
    // odd methods; the operators' listener gets its share; the console is visited.
    const random = Array.from({ length: 200 }, (_, i) => {
      const r = crypto.randomBytes(8).toString('hex');
      secrets.add(r);
      return [`/${r}`, `/interaction/${r}`, `/auth/${r}`, `/static/${r}.js`, `/account/${r}`, `/.well-known/${r}`, `/wp-admin/${r}.php`, `/token/${r}`][i % 8]!;
    });
    for (let i = 0; i < random.length; i += 25) {
      await Promise.all(random.slice(i, i + 25).map(async (p) => (await fetch(`${srv.issuer}${p}?q=${p}`, { redirect: 'manual' })).arrayBuffer()));
    }
    for (const method of ['PROPFIND', 'DELETE', 'PUT']) await (await fetch(`${srv.issuer}/interaction/x`, { method })).arrayBuffer();
    for (let i = 0; i < 20; i++) {
      const r = crypto.randomBytes(8).toString('hex');
      secrets.add(r);
      await (await fetch(`${srv.adminUrl}/${i % 2 ? 'admin/' : ''}${r}`, { redirect: 'manual' })).arrayBuffer();
    }
    for (const p of ['/admin', '/admin/accounts', '/admin/login', '/static/admin.css']) await (await fetch(`${srv.adminUrl}${p}`, { redirect: 'manual' })).arrayBuffer();

    // Background work: the sessions' expiry checks, due once the idle limit has passed.
    now += 31 * MINUTE;
    const queued = parse(await (await scrape()).text());
    expect(total(queued, 'dinhdanh_jobs_queued', { kind: 'session-expiry' })).toBeGreaterThanOrEqual(4);
    expect(total(queued, 'dinhdanh_jobs_oldest_due_age_seconds', { kind: 'session-expiry' })).toBeGreaterThan(0);
    expect(await srv.system.jobs.runDue()).toBeGreaterThanOrEqual(4);

    const res = await scrape();
    expect(res.status).toBe(200);
    text = await res.text();
    samples = parse(text);
  });

  it('shows the sign-ins by portal, level and method', () => {
    const A = portalA.client_id;
    const B = portalB.client_id;
    expect(total(samples, 'dinhdanh_signins_total', { portal: A, acr: LOW, method: 'pwd', outcome: 'success' })).toBe(3);
    expect(total(samples, 'dinhdanh_signins_total', { portal: B, acr: SUBSTANTIAL, method: 'pwd+otp+mfa', outcome: 'success' })).toBe(1);
    expect(total(samples, 'dinhdanh_signins_total', { portal: B, acr: HIGH, method: 'pwd+otp+mfa', outcome: 'success' })).toBe(1);
    expect(total(samples, 'dinhdanh_signins_total', { portal: A, outcome: 'wrong_password' })).toBe(2);
    expect(total(samples, 'dinhdanh_signins_total', { portal: B, outcome: 'unknown_identifier' })).toBe(1);
    expect(total(samples, 'dinhdanh_signins_total', { portal: B, acr: 'none', method: 'none', outcome: 'mfa_failed' })).toBe(1);
    expect(total(samples, 'dinhdanh_mfa_checks_total', { method: 'totp', outcome: 'success' })).toBe(1);
    expect(total(samples, 'dinhdanh_mfa_checks_total', { method: 'totp', outcome: 'failure' })).toBe(1);
    expect(total(samples, 'dinhdanh_consents_total', { portal: A, outcome: 'given' })).toBe(2);
    expect(total(samples, 'dinhdanh_consents_total', { portal: A, outcome: 'reused' })).toBe(1);
  });

  it('shows tokens, OAuth errors, requests by route template, store calls and jobs', () => {
    expect(total(samples, 'dinhdanh_tokens_issued_total', { portal: portalA.client_id, grant_type: 'authorization_code' })).toBe(3);
    expect(total(samples, 'dinhdanh_tokens_issued_total', { portal: portalB.client_id, grant_type: 'authorization_code' })).toBe(2);
    expect(total(samples, 'dinhdanh_oauth_errors_total', { endpoint: 'authorization', error: 'invalid_client' })).toBeGreaterThanOrEqual(1);
    expect(total(samples, 'dinhdanh_oauth_errors_total', { endpoint: 'token', error: 'invalid_grant' })).toBe(1);
    expect(total(samples, 'dinhdanh_oauth_errors_total', { endpoint: 'token', error: 'invalid_client' })).toBe(2);
    expect(total(samples, 'dinhdanh_oauth_errors_total', { endpoint: 'userinfo', error: 'invalid_token' })).toBe(1);
    const http = (labels: Record<string, string>) => total(samples, 'dinhdanh_http_requests_total', labels);
    expect(http({ listener: 'public', route: '/interaction/:uid/login', method: 'POST', status_class: '3xx' })).toBeGreaterThanOrEqual(3);
    expect(http({ listener: 'public', route: '/token', method: 'POST', status_class: '2xx' })).toBe(5);
    expect(http({ listener: 'public', route: '/auth', method: 'GET' })).toBe(9);
    expect(http({ listener: 'public', route: '/auth/:uid', method: 'GET' })).toBeGreaterThanOrEqual(5);
    expect(http({ listener: 'public', route: 'unmatched', status_class: '4xx' })).toBeGreaterThanOrEqual(100);
    expect(http({ listener: 'public', route: 'unmatched', method: 'other' })).toBe(1);
    expect(http({ listener: 'admin', route: '/admin/login', method: 'GET', status_class: '3xx' })).toBe(1);
    expect(http({ listener: 'admin', route: '/metrics', method: 'GET', status_class: '2xx' })).toBeGreaterThanOrEqual(1);
    expect(total(samples, 'dinhdanh_store_operation_duration_seconds_count', { backend: TEST_STORE_KIND, repository: 'persons', operation: 'findByPid', outcome: 'ok' })).toBeGreaterThanOrEqual(8);
    expect(total(samples, 'dinhdanh_job_runs_total', { kind: 'session-expiry' })).toBeGreaterThanOrEqual(4);
    expect(total(samples, 'dinhdanh_store_up')).toBe(1);
    expect(total(samples, 'dinhdanh_signing_keys', { alg: 'RS256', state: 'active' })).toBe(1);
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('names no person, pid, sub, IP, path or unregistered client in any label', () => {
    const values = [...new Set(samples.flatMap((s) => Object.values(s.labels)))];
    expect(secrets.size).toBeGreaterThan(200);
    const leaks = values.flatMap((v) => [...secrets].filter((secret) => v.includes(secret)).map((secret) => `${v} holds ${secret}`));
    expect(leaks).toEqual([]);
    // Route labels are templates from the code: never a path with a value in it.
    const routes = new Set(samples.filter((s) => s.labels.route !== undefined).map((s) => s.labels.route!));
    for (const r of routes) expect([r, /^(unmatched|\/[A-Za-z0-9_.\-/:]*)$/.test(r)]).toEqual([r, true]);
    expect(routes.size).toBeLessThan(40);
    const portals = new Set(samples.filter((s) => s.labels.portal !== undefined).map((s) => s.labels.portal!));
    expect([...portals].sort()).toEqual(expect.arrayContaining([portalA.client_id, portalB.client_id]));
    for (const p of portals) expect([portalA.client_id, portalB.client_id, 'other', '-']).toContain(p);
  });

  it('counts the same sign-ins in the usage statistics, once flushed to the store', async () => {
    await srv.system.usage!.flush();
    const day = vietnamDay(now);
    const days = await srv.system.usageReports.days({ from: day, to: day });
    const of = (portal: string) => days.find((d) => d.portal === portal);
    expect(of(portalA.client_id)).toMatchObject({ signins: 3, by_level: { [LOW]: 3 }, citizens: 2, failures: { wrong_password: 2 } });
    expect(of(portalB.client_id)).toMatchObject({ signins: 2, by_level: { [SUBSTANTIAL]: 1, [HIGH]: 1 }, citizens: 1 });
    // The funnel: a sign-in page shown once per interaction (the wrong passwords' pages included),
    // signed in, consent given or reused, code redeemed.
    expect(of(portalA.client_id)!.funnel).toEqual({ shown: 5, signed_in: 3, consent: 3, code: 3 });
    expect(of(portalB.client_id)!.funnel).toEqual({ shown: 3, signed_in: 2, consent: 2, code: 2 });
    expect(days.map((d) => d.portal)).not.toContain(UNREGISTERED);
  });

  it(`stays under ${MAX_SERIES} series`, () => {
    expect(samples.length).toBeGreaterThan(500);
    expect(samples.length).toBeLessThan(MAX_SERIES);
  });
});

describe('the endpoint', () => {
  it('asks for the bearer token, and answers 401 (not 500) to anything else', async () => {
    const none = await scrape(srv.adminUrl, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="dinhdanh-metrics"');
    expect(await none.text()).not.toContain('dinhdanh_');
    const wrong = await scrape(srv.adminUrl, `${TOKEN}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="dinhdanh-metrics", error="invalid_token"');
    for (const header of ['Bearer', 'Bearer ', `Bearer\t${TOKEN}`, `Bearer ${TOKEN} extra`, `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, TOKEN,
      `bearer ${TOKEN.slice(1)}`, `Bearer ${'A'.repeat(10_000)}`, 'Bearer ÿÿÿ', `Bearer ${TOKEN},Bearer ${TOKEN}`]) {
      const res = await fetch(`${srv.adminUrl}/metrics`, { headers: { authorization: header } });
      expect([header.slice(0, 40), res.status]).toEqual([header.slice(0, 40), 401]);
    }
    // RFC 6750 §2.1: the scheme in any case, then one or more spaces.
    const spaced = await fetch(`${srv.adminUrl}/metrics`, { headers: { authorization: `Bearer   ${TOKEN}` } });
    expect(spaced.status).toBe(200);
    const ok = await fetch(`${srv.adminUrl}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(ok.headers.get('cache-control')).toBe('no-store');
    expect(await ok.text()).toContain(`dinhdanh_build_info{version="0.1.0",store="${TEST_STORE_KIND}"} 1`);
  });

  it('knows the registered portals from the start: a sign-in right after a restart is its portal\'s, not `other`\'s', async () => {
    // A second instance on the same store and keys stands for this one restarted; nothing tells its
    // portal labels to read the registry again (no console registration, no refresh here).
    const restarted = await startTestServer({
      now: () => now, storeUrl: srv.system.config.storeUrl, env: { DINHDANH_METRICS_TOKEN: TOKEN, DINHDANH_KEYS_DIR: srv.system.config.keysDir },
    });
    const shown = async (portal: string) => {
      const day = vietnamDay(now);
      return (await srv.system.usageReports.days({ from: day, to: day })).find((d) => d.portal === portal)?.funnel.shown ?? 0;
    };
    await srv.system.usage!.flush();
    const [shownA, shownOther] = [await shown(portalA.client_id), await shown('other')];
    try {
      const who = await person();
      const browser = new Browser(restarted.issuer);
      const config = await discover(restarted.issuer, portalA);
      const req = await authRequest(config, portalA);
      const res = await signIn(browser, req, who);
      expect(res.status).toBe(303);
      secrets.add((await redeem(config, req, res.location!)).claims()!.sub);
      const after = parse(await (await scrape(restarted.adminUrl)).text());
      expect(total(after, 'dinhdanh_signins_total', { portal: portalA.client_id, outcome: 'success' })).toBe(1);
      expect(total(after, 'dinhdanh_signins_total', { portal: 'other' })).toBe(0);
      expect(total(after, 'dinhdanh_tokens_issued_total', { portal: portalA.client_id, grant_type: 'authorization_code' })).toBe(1);
      // The first thing the restarted instance labelled, its sign-in page shown, is the portal's too.
      await restarted.system.usage!.flush();
      expect([await shown(portalA.client_id), await shown('other')]).toEqual([shownA + 1, shownOther]);
    } finally {
      await restarted.close();
    }
  });

  it('is not on the public listener', async () => {
    for (const [method, path] of [['GET', '/metrics'], ['HEAD', '/metrics'], ['GET', '/metrics/'], ['POST', '/metrics']] as const) {
      const res = await fetch(`${srv.issuer}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
      expect([method, path, res.status]).toEqual([method, path, 404]);
      expect(await res.text()).not.toContain('dinhdanh_');
    }
  });
});

describe('with DINHDANH_METRICS=off', () => {
  let off: TestServer;
  beforeAll(async () => {
    off = await startTestServer({ env: { DINHDANH_METRICS: 'off', DINHDANH_METRICS_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await off.close();
  });

  it('serves no /metrics, builds no registry, times no store call, and counts nothing', async () => {
    const portal = await off.addPortal();
    const who = await off.addPerson();
    const config = await discover(off.issuer, portal);
    const req = await authRequest(config, portal);
    const res = await signIn(new Browser(off.issuer), req, who);
    expect(res.status).toBe(303);
    await redeem(config, req, res.location!);
    for (const auth of [{}, { authorization: `Bearer ${TOKEN}` }] as Array<Record<string, string>>) {
      const r = await fetch(`${off.adminUrl}/metrics`, { headers: auth });
      expect(r.status).toBe(404);
      expect(await r.text()).not.toContain('dinhdanh_');
    }
    expect(off.system.metrics).toBeNull();
    expect(off.system.usage).toBeNull();
    expect(off.system.telemetry).toBe(noTelemetry);
    const day = vietnamDay(Date.now());
    expect(await off.system.store.usage.range(day, day)).toEqual([]);
    // The store is the backend's own object, not a timed wrapper around it.
    expect(Object.getPrototypeOf(off.system.store)).toBe(Object.prototype);
  });
});
