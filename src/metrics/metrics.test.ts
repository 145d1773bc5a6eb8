/**
 * The metrics on a real SQLite store, read back through the registry's own text output (what a
 * scraper sees): events become counts under bounded labels, gauges come from the store at scrape
 * time, and requests are labelled by route template over real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { createStore, type Store } from '../store/index.js';
import { createPortalLabels } from './portal-labels.js';
import { SCRAPE_READ_CACHE_MS, createMetrics, type Metrics } from './metrics.js';
import { metricsRoutes } from './metrics.routes.js';

const PORTAL = 'cong-dich-vu-cong';
const T0 = Date.UTC(2026, 5, 1, 3, 0, 0);

let dir: string;
let store: Store;
let metrics: Metrics;
let clock = T0;
const kinds = ['backchannel-logout', 'session-expiry'];

/** The sample lines of the registry's text output (comments dropped). */
async function samples(m: Metrics = metrics): Promise<string[]> {
  return (await m.registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#'));
}

/** The value of the one sample of `name` with exactly these labels (in any order), or undefined. */
async function value(name: string, labels: Record<string, string> = {}, m: Metrics = metrics): Promise<number | undefined> {
  for (const line of await samples(m)) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(match[3]);
  }
  return undefined;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-metrics-'));
  store = await createStore(`sqlite:${path.join(dir, 'store.db')}`, { now: () => clock });
  await store.portals.create({
    clientId: PORTAL, name: 'Cổng dịch vụ công', metadata: { redirect_uris: ['https://dvc.example.vn/cb'] }, secretCiphertext: null,
    sector: 'dvc.example.vn', nationalId: false, nationalIdBasis: null, disabled: false,
  });
  const labels = createPortalLabels({ portals: store.portals, now: () => clock });
  await labels.refresh();
  metrics = createMetrics({ store, labels, jobKinds: () => kinds, version: '9.9.9', now: () => clock });
});
afterAll(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('security events', () => {
  it('counts sign-ins by registered portal, level and method; failures by reason with no level', async () => {
    metrics.audit('SIGN_IN_COMPLETED', { person: 'p-1', portal: PORTAL, acr: 'urn:dinhdanh:loa:substantial', method: 'pwd+otp+mfa', network: '203.0.113.x' }, clock);
    metrics.audit('SIGN_IN_COMPLETED', { person: 'p-2', portal: 'forged-client', acr: 'urn:evil', method: 'pwd+face', network: '203.0.113.x' }, clock);
    metrics.audit('LOGIN_FAILED', { reason: 'wrong_password', person: 'p-1', failures: 1, ip: '203.0.113.9', portal: PORTAL }, clock);
    metrics.audit('LOGIN_FAILED', { reason: 'unknown_identifier', ip: '203.0.113.9' }, clock);
    metrics.audit('LOGIN_THROTTLED', { person: 'p-1', status: 'active', ip: '203.0.113.9', portal: PORTAL }, clock);
    metrics.audit('LOGIN_IP_LIMITED', { ip: '203.0.113.9', portal: PORTAL }, clock);
    expect(await value('dinhdanh_signins_total', { portal: PORTAL, acr: 'urn:dinhdanh:loa:substantial', method: 'pwd+otp+mfa', outcome: 'success' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: 'other', acr: 'other', method: 'other', outcome: 'success' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: PORTAL, acr: 'none', method: 'none', outcome: 'wrong_password' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: '-', acr: 'none', method: 'none', outcome: 'unknown_identifier' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: PORTAL, acr: 'none', method: 'none', outcome: 'throttled' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: PORTAL, acr: 'none', method: 'none', outcome: 'ip_limited' })).toBe(1);
    const text = (await samples()).join('\n');
    for (const leaked of ['p-1', 'p-2', '203.0.113', 'forged-client', 'urn:evil', 'face']) expect(text).not.toContain(leaked);
  });

  it('counts second-factor checks at any door, and as sign-in failures only inside a sign-in', async () => {
    metrics.audit('MFA_FAILED', { person: 'p-1', method: 'totp', reason: 'invalid', portal: PORTAL }, clock);
    metrics.audit('MFA_FAILED', { person: 'p-1', method: 'totp', stage: 'enrol', via: 'account' }, clock);
    metrics.audit('MFA_FAILED', { person: 'p-1', method: 'recovery', journey: 'recover' }, clock);
    metrics.audit('MFA_FAILED', { person: 'p-1', stage: 'enrol', reason: 'factor_exists', portal: PORTAL }, clock);
    metrics.audit('MFA_LOCKED', { person: 'p-1', method: 'sms', portal: PORTAL }, clock);
    metrics.audit('MFA_SUCCEEDED', { person: 'p-1', method: 'passkey' }, clock);
    metrics.audit('RECOVERY_CODE_USED', { person: 'p-1', remaining: 9 }, clock);
    // The recovery journey records MFA_SUCCEEDED beside it: counted once, by that.
    metrics.audit('RECOVERY_CODE_USED', { person: 'p-1', remaining: 8, journey: 'recover' }, clock);
    metrics.audit('MFA_FAILED', { person: 'p-1', method: 'carrier-pigeon' }, clock);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'totp', outcome: 'failure' })).toBe(2);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'recovery', outcome: 'failure' })).toBe(1);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'sms', outcome: 'locked' })).toBe(1);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'passkey', outcome: 'success' })).toBe(1);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'recovery', outcome: 'success' })).toBe(1);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'other', outcome: 'failure' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: PORTAL, acr: 'none', method: 'none', outcome: 'mfa_failed' })).toBe(1);
    expect(await value('dinhdanh_signins_total', { portal: PORTAL, acr: 'none', method: 'none', outcome: 'mfa_locked' })).toBe(1);
    expect(await value('dinhdanh_lockouts_total', { kind: 'mfa' })).toBe(1);
    metrics.audit('ACCOUNT_LOCKED_BY_FAILURES', { person: 'p-1', pid: '*********123' }, clock);
    expect(await value('dinhdanh_lockouts_total', { kind: 'password' })).toBe(1);
  });

  it('counts registrations, recoveries, consents and back-channel deliveries by outcome', async () => {
    for (const e of ['REGISTRATION_COMPLETED', 'REGISTRATION_EXISTING_ACCOUNT', 'REGISTRATION_LIMITED', 'RECOVERY_STARTED', 'PASSWORD_RESET', 'RECOVERY_LIMITED',
      'ACCOUNT_RESET_REQUESTED', 'ACCOUNT_RESET_COMPLETED', 'BACKCHANNEL_LOGOUT_DELIVERED', 'BACKCHANNEL_LOGOUT_RETRYING', 'BACKCHANNEL_LOGOUT_FAILED'] as const) {
      metrics.audit(e, { person: 'p-1' }, clock);
    }
    for (const e of ['CONSENT_GRANTED', 'CONSENT_REUSED', 'CONSENT_DENIED', 'CONSENT_REVOKED'] as const) metrics.audit(e, { person: 'p-1', portal: PORTAL }, clock);
    metrics.audit('CONSENT_GRANTED', { person: 'p-1', portal: 'not-registered' }, clock);
    for (const outcome of ['completed', 'existing_account', 'limited']) expect(await value('dinhdanh_registrations_total', { outcome })).toBe(1);
    for (const outcome of ['started', 'completed', 'limited', 'account_reset_requested', 'account_reset_completed']) expect(await value('dinhdanh_recoveries_total', { outcome })).toBe(1);
    for (const outcome of ['given', 'reused', 'denied', 'withdrawn']) expect(await value('dinhdanh_consents_total', { portal: PORTAL, outcome })).toBe(1);
    expect(await value('dinhdanh_consents_total', { portal: 'other', outcome: 'given' })).toBe(1);
    for (const outcome of ['delivered', 'retrying', 'failed']) expect(await value('dinhdanh_backchannel_logout_total', { outcome })).toBe(1);
  });
});

describe('tokens, OAuth errors, jobs', () => {
  it('bounds grant types, portals, endpoints and error codes', async () => {
    metrics.grantSucceeded('authorization_code', PORTAL);
    metrics.grantSucceeded('authorization_code', PORTAL);
    metrics.grantSucceeded('urn:x:made-up', 'someone-else');
    metrics.oauthError('token', 'invalid_grant');
    metrics.oauthError('authorization', 'the client said <script>');
    metrics.oauthError('/token?client_id=x', 'invalid_client');
    expect(await value('dinhdanh_tokens_issued_total', { portal: PORTAL, grant_type: 'authorization_code' })).toBe(2);
    expect(await value('dinhdanh_tokens_issued_total', { portal: 'other', grant_type: 'other' })).toBe(1);
    expect(await value('dinhdanh_oauth_errors_total', { endpoint: 'token', error: 'invalid_grant' })).toBe(1);
    expect(await value('dinhdanh_oauth_errors_total', { endpoint: 'authorization', error: 'other' })).toBe(1);
    expect(await value('dinhdanh_oauth_errors_total', { endpoint: 'other', error: 'invalid_client' })).toBe(1);
  });

  it('counts job runs by registered kind only', async () => {
    metrics.jobRun('backchannel-logout', 'done');
    metrics.jobRun('backchannel-logout', 'retry');
    metrics.jobRun('who-knows', 'failed');
    expect(await value('dinhdanh_job_runs_total', { kind: 'backchannel-logout', outcome: 'done' })).toBe(1);
    expect(await value('dinhdanh_job_runs_total', { kind: 'backchannel-logout', outcome: 'retry' })).toBe(1);
    expect(await value('dinhdanh_job_runs_total', { kind: 'other', outcome: 'failed' })).toBe(1);
    metrics.usageFlushFailed();
    expect(await value('dinhdanh_usage_flush_failures_total')).toBe(1);
    expect(await value('dinhdanh_build_info', { version: '9.9.9', store: 'sqlite' })).toBe(1);
  });
});

describe('gauges read at scrape time', () => {
  it('reports the queue by kind, with the age of the oldest due job', async () => {
    clock = T0 + 60_000;
    await store.jobs.enqueue({ id: 'j1', kind: 'backchannel-logout', payload: {}, dueAt: clock - 30_000 }, clock);
    await store.jobs.enqueue({ id: 'j2', kind: 'backchannel-logout', payload: {}, dueAt: clock + 600_000 }, clock);
    await store.jobs.enqueue({ id: 'j3', kind: 'session-expiry', payload: {}, dueAt: clock + 600_000 }, clock);
    await store.jobs.enqueue({ id: 'j4', kind: 'unknown-kind', payload: {}, dueAt: clock - 5_000 }, clock);
    expect(await value('dinhdanh_jobs_queued', { kind: 'backchannel-logout' })).toBe(2);
    expect(await value('dinhdanh_jobs_queued', { kind: 'session-expiry' })).toBe(1);
    expect(await value('dinhdanh_jobs_queued', { kind: 'other' })).toBe(1);
    expect(await value('dinhdanh_jobs_oldest_due_age_seconds', { kind: 'backchannel-logout' })).toBe(30);
    // Pending, but not due yet: nothing is late.
    expect(await value('dinhdanh_jobs_oldest_due_age_seconds', { kind: 'session-expiry' })).toBe(0);
  });

  it('reports signing keys by state and the active key\'s age since it began signing', async () => {
    const key = (kid: string, alg: string, createdAt: number, activateAt: number, retiredAt: number | null = null) => ({
      kid, alg, publicJwk: { kid }, privateJwkSealed: 'sealed', origin: 'operator', createdAt, activateAt, retiredAt,
    });
    clock = T0 + 100 * 86_400_000;
    await store.signingKeys.add(key('rs-old', 'RS256', T0, 0, T0 + 50 * 86_400_000));
    await store.signingKeys.add(key('rs-1', 'RS256', T0, 0));
    await store.signingKeys.add(key('rs-2', 'RS256', T0 + 9 * 86_400_000, T0 + 10 * 86_400_000));
    await store.signingKeys.add(key('rs-3', 'RS256', clock, clock + 3_600_000));
    expect(await value('dinhdanh_signing_keys', { alg: 'RS256', state: 'active' })).toBe(1);
    expect(await value('dinhdanh_signing_keys', { alg: 'RS256', state: 'retiring' })).toBe(1);
    expect(await value('dinhdanh_signing_keys', { alg: 'RS256', state: 'next' })).toBe(1);
    expect(await value('dinhdanh_signing_keys', { alg: 'RS256', state: 'retired' })).toBe(1);
    expect(await value('dinhdanh_signing_key_active_age_seconds', { alg: 'RS256' })).toBe(90 * 86_400);
  });

  it('reports the store up while it answers', async () => {
    expect(await value('dinhdanh_store_up')).toBe(1);
  });
});

describe('HTTP requests', () => {
  it('are labelled by route template, bounded method and status class, never by path', async () => {
    const app = new Koa();
    app.use(metrics.http('public'));
    const router = new Router();
    router.get('/things/:id', (ctx) => {
      ctx.body = 'ok';
    });
    router.post('/things/:id/fail', () => {
      throw new Error('boom');
    });
    app.use(router.routes());
    app.silent = true;
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (const id of ['a1', 'b2', 'c3']) expect((await fetch(`${base}/things/${id}`)).status).toBe(200);
      expect((await fetch(`${base}/things/x/fail`, { method: 'POST' })).status).toBe(500);
      expect((await fetch(`${base}/random-${Date.now()}`)).status).toBe(404);
      expect((await fetch(`${base}/things/x`, { method: 'PROPFIND' })).status).toBe(404);
      expect((await fetch(`${base}/token`, { method: 'POST' })).status).toBe(404);
      expect((await fetch(`${base}/auth/abc123`)).status).toBe(404);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(await value('dinhdanh_http_requests_total', { listener: 'public', route: '/things/:id', method: 'GET', status_class: '2xx' })).toBe(3);
    expect(await value('dinhdanh_http_requests_total', { listener: 'public', route: '/things/:id/fail', method: 'POST', status_class: '5xx' })).toBe(1);
    expect(await value('dinhdanh_http_requests_total', { listener: 'public', route: 'unmatched', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(await value('dinhdanh_http_requests_total', { listener: 'public', route: 'unmatched', method: 'other', status_class: '4xx' })).toBe(1);
    // oidc-provider's endpoints by their fixed paths (provider/mount.ts), the resume uid templated.
    expect(await value('dinhdanh_http_requests_total', { listener: 'public', route: '/token', method: 'POST', status_class: '4xx' })).toBe(1);
    expect(await value('dinhdanh_http_requests_total', { listener: 'public', route: '/auth/:uid', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(await value('dinhdanh_http_request_duration_seconds_count', { listener: 'public', route: '/things/:id', method: 'GET' })).toBe(3);
    const text = (await samples()).join('\n');
    for (const raw of ['a1', 'b2', 'c3', 'random-', 'abc123', 'PROPFIND']) expect(text).not.toContain(raw);
  });
});

describe('store calls', () => {
  it('are timed by backend, repository, operation and outcome', async () => {
    metrics.storeHook('sqlite', 'persons', 'findById')();
    metrics.storeHook('sqlite', 'persons', 'findById')();
    metrics.storeHook('sqlite', 'persons', 'create')(new Error('conflict'));
    expect(await value('dinhdanh_store_operation_duration_seconds_count', { backend: 'sqlite', repository: 'persons', operation: 'findById', outcome: 'ok' })).toBe(2);
    expect(await value('dinhdanh_store_operation_duration_seconds_count', { backend: 'sqlite', repository: 'persons', operation: 'create', outcome: 'error' })).toBe(1);
    expect(await value('dinhdanh_store_operation_duration_seconds_count', { backend: 'sqlite', repository: 'persons', operation: 'create', outcome: 'ok' })).toBeUndefined();
  });
});

describe('one registry per system', () => {
  it('counts nothing of another system, and has the default process metrics', async () => {
    const other = createMetrics({ store, labels: createPortalLabels({ portals: store.portals }), jobKinds: () => ['k1'], version: '1.0.0' });
    // Small closed sets are there at 0 before anything happened (so rate() sees the first event).
    expect(await value('dinhdanh_lockouts_total', { kind: 'mfa' }, other)).toBe(0);
    expect(await value('dinhdanh_backchannel_logout_total', { outcome: 'failed' }, other)).toBe(0);
    expect(await value('dinhdanh_job_runs_total', { kind: 'k1', outcome: 'failed' }, other)).toBe(0);
    expect(await value('dinhdanh_mfa_checks_total', { method: 'totp', outcome: 'locked' }, other)).toBe(0);
    other.jobRun('k1', 'failed');
    expect(await value('dinhdanh_job_runs_total', { kind: 'k1', outcome: 'failed' }, other)).toBe(1);
    other.grantSucceeded('authorization_code', undefined);
    expect(await value('dinhdanh_tokens_issued_total', { portal: '-', grant_type: 'authorization_code' }, other)).toBe(1);
    expect(await value('dinhdanh_tokens_issued_total', { portal: '-', grant_type: 'authorization_code' })).toBeUndefined();
    const names = new Set((await samples(other)).map((l) => l.split(/[{ ]/)[0]));
    for (const n of ['process_cpu_seconds_total', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) expect(names).toContain(n);
  });

  it('reports the store down once it no longer answers', async () => {
    const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-metrics-'));
    const closed = await createStore(`sqlite:${path.join(dir2, 'store.db')}`);
    let t = T0;
    const m = createMetrics({ store: closed, labels: createPortalLabels({ portals: closed.portals }), jobKinds: () => [], version: '1.0.0', now: () => t });
    expect(await value('dinhdanh_store_up', {}, m)).toBe(1);
    await closed.close();
    // Once the reads of the scrapes before have aged (they serve SCRAPE_READ_CACHE_MS).
    t += SCRAPE_READ_CACHE_MS;
    // The gauges that read the store fail with it; the scrape still answers, saying so.
    const text = await m.registry.metrics().catch((err: unknown) => `failed: ${String(err)}`);
    expect(text).toContain('dinhdanh_store_up 0');
    expect(text).not.toContain('dinhdanh_signing_keys{');
    fs.rmSync(dir2, { recursive: true, force: true });
  });

  it('answers over HTTP, saying the store is down, when the store hangs; once that has aged, the store is asked again', async () => {
    let reads = 0;
    const never = <T>(): Promise<T> => {
      reads += 1;
      return new Promise<T>(() => {});
    };
    // A store whose scrape-time reads never answer (a MongoDB primary lost without a reset).
    const hung = {
      ...store,
      ping: () => never<void>(),
      jobs: { ...store.jobs, pending: () => never<Awaited<ReturnType<Store['jobs']['pending']>>>() },
      signingKeys: { ...store.signingKeys, list: () => never<Awaited<ReturnType<Store['signingKeys']['list']>>>() },
    } as Store;
    let t = T0;
    const m = createMetrics({ store: hung, labels: createPortalLabels({ portals: store.portals }), jobKinds: () => ['k1'], version: '1.0.0', now: () => t });
    const app = new Koa();
    app.use(metricsRoutes({ metrics: m, token: null }).routes());
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    try {
      const first = await fetch(url);
      expect(first.status).toBe(200);
      const text = await first.text();
      expect(text).toContain('dinhdanh_store_up 0');
      expect(text).toContain('process_cpu_seconds_total');
      expect(text).toContain('dinhdanh_build_info{version="1.0.0",store="sqlite"} 1');
      expect(text).not.toContain('dinhdanh_signing_keys{');
      expect(text).not.toContain('dinhdanh_jobs_queued{');
      expect(reads).toBe(3);
      // Within the reuse time the failed reads' outcome answers at once, asking nothing more.
      expect(await (await fetch(url)).text()).toContain('dinhdanh_store_up 0');
      expect(reads).toBe(3);
      // Then not joined to the reads that never ended: the store is asked again (ping, jobs, keys).
      t += SCRAPE_READ_CACHE_MS;
      expect(await (await fetch(url)).text()).toContain('dinhdanh_store_up 0');
      expect(reads).toBe(6);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports the store down when the jobs\' read hangs though the ping answers, and still shows the keys', async () => {
    const hung = { ...store, jobs: { ...store.jobs, pending: () => new Promise<never>(() => {}) } } as Store;
    const m = createMetrics({ store: hung, labels: createPortalLabels({ portals: store.portals }), jobKinds: () => kinds, version: '1.0.0', now: () => clock });
    const text = await m.registry.metrics();
    expect(text).toContain('dinhdanh_store_up 0');
    expect(text).not.toContain('dinhdanh_jobs_queued{');
    expect(text).toContain('dinhdanh_signing_keys{alg="RS256",state="active"} 1');
  });

  it('reads the store once for any number of scrapes within 10 s, concurrent or one after another, and never the finished jobs', async () => {
    const calls: Record<string, number> = { ping: 0, pending: 0, stats: 0, list: 0 };
    // The real store, its scrape-time reads counted.
    const counted = {
      ...store,
      ping: () => {
        calls.ping! += 1;
        return store.ping();
      },
      jobs: {
        ...store.jobs,
        pending: () => {
          calls.pending! += 1;
          return store.jobs.pending();
        },
        stats: () => {
          calls.stats! += 1;
          return store.jobs.stats();
        },
      },
      signingKeys: {
        ...store.signingKeys,
        list: () => {
          calls.list! += 1;
          return store.signingKeys.list();
        },
      },
    } as Store;
    const t0 = clock;
    let t = t0;
    const m = createMetrics({ store: counted, labels: createPortalLabels({ portals: store.portals }), jobKinds: () => kinds, version: '1.0.0', now: () => t });
    const before = await value('dinhdanh_jobs_queued', { kind: 'session-expiry' }, m);
    // Forty scrapes together, then ten one after another over the next 9 s.
    const together = await Promise.all(Array.from({ length: 40 }, () => m.registry.metrics()));
    for (const text of together) expect(text).toContain('dinhdanh_store_up 1');
    for (let i = 0; i < 10; i++) {
      t = t0 + i * 1_000;
      expect(await value('dinhdanh_store_up', {}, m)).toBe(1);
    }
    expect(calls).toEqual({ ping: 1, pending: 1, stats: 0, list: 1 });
    // A job enqueued meanwhile shows once the read has aged, with one more read of each.
    await store.jobs.enqueue({ id: 'j-cache', kind: 'session-expiry', payload: {}, dueAt: clock + 600_000 }, clock);
    expect(await value('dinhdanh_jobs_queued', { kind: 'session-expiry' }, m)).toBe(before);
    t = t0 + SCRAPE_READ_CACHE_MS;
    expect(await value('dinhdanh_jobs_queued', { kind: 'session-expiry' }, m)).toBe(before! + 1);
    expect(calls).toEqual({ ping: 2, pending: 2, stats: 0, list: 2 });
  });
});
