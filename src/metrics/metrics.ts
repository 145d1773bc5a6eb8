/**
 * Prometheus metrics (prom-client): the process's default metrics (event-loop lag, GC, heap) and
 * dinhdanh's own, named `dinhdanh_…` (the names and labels are fixed: the alert rules in
 * deploy/prometheus/ and the dashboard in deploy/grafana/ use them). Served at /metrics on the
 * operators' listener (metrics.routes.ts).
 *
 * A Registry of its own per running system rather than prom-client's global one: two systems in one
 * process (the tests) each count their own.
 *
 * Every label value comes from a closed set, whatever a request carried (Prometheus naming practice:
 * "do not use labels to store dimensions with high cardinality"): a route template, never a path
 * (http-metrics.ts); a portal only when registered (portal-labels.ts, else `other`); OAuth errors
 * from the specifications' lists; job kinds the runner registered. Never a person, `sub`, an IP, a
 * secret or a URL. What a security event says about who is in the audit log, not here.
 *
 * Counters follow the audit service's events (Telemetry.audit), so a count and its audit entry
 * never disagree; gauges (queue, keys, store) are read from the store when scraped.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type Koa from 'koa';
import type { Store } from '../store/index.js';
import type { AuditDetails } from '../audit/audit.service.js';
import type { SecurityEventName } from '../audit/events.js';
import { keyStates, type KeyState } from '../keys/signing-keys.js';
import { ACR_VALUES } from '../provider/levels.js';
import type { PortalLabels } from './portal-labels.js';
import type { Telemetry } from './telemetry.js';
import { httpMetricsMiddleware } from './http-metrics.js';
import { oauthErrorLabel } from './oauth-errors.js';
import { FastCounter, FastHistogram, type CounterChild, type HistogramChild } from './fast-metrics.js';

/**
 * Told of one store call as it starts; returns what to call when it settles (with the error when it
 * failed). store-instrumentation.ts calls every hook around every repository method.
 */
export type StoreCallHook = (backend: string, repository: string, operation: string) => (error?: unknown) => void;

export interface Metrics extends Telemetry {
  readonly registry: Registry;
  /** Koa middleware: counts and times each request by route template. Mount first on each listener. */
  http(listener: 'public' | 'admin'): Koa.Middleware;
  storeHook: StoreCallHook;
  jobRun(kind: string, outcome: 'done' | 'retry' | 'failed'): void;
  usageFlushFailed(): void;
}

/**
 * How long a scrape waits for each of its store reads (ping, pending jobs, signing keys) before
 * giving up on it: the scrape then answers at once, with dinhdanh_store_up 0 and without the
 * gauges that needed the read (the process metrics and the counters are still served).
 */
export const STORE_READ_TIMEOUT_MS = 1_000;
/**
 * How long one system reuses a scrape-time store read for the scrapes after it: N scrapes within
 * this time, concurrent or one after another (several Prometheus servers, a retrying agent, a
 * flood), cost the store one read of each kind. Shorter than any sensible scrape interval (15 s in
 * deploy/prometheus/prometheus.yml), so one Prometheus still gets fresh figures at every scrape.
 */
export const SCRAPE_READ_CACHE_MS = 10_000;

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Store calls: SQLite answers in tens of microseconds, MongoDB in a millisecond or more. */
const STORE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

/**
 * The `amr` combinations a sign-in can finish with (interactions/second-factor.controller.ts,
 * RFC 8176 values): the password alone, or with an authenticator app or e-mail/recovery code
 * (otp), an SMS code (sms), a device-bound (hwk) or synced (swk) passkey.
 */
export const SIGN_IN_METHODS = new Set(['pwd', 'pwd+otp+mfa', 'pwd+sms+mfa', 'pwd+hwk+mfa', 'pwd+swk+mfa']);
const MFA_METHODS = new Set(['totp', 'passkey', 'recovery', 'sms', 'email']);
const JOB_OUTCOMES = ['done', 'retry', 'failed'] as const;
const ACRS = new Set<string>(ACR_VALUES);

const ENDPOINTS = new Set(['authorization', 'token', 'userinfo', 'introspection', 'revocation', 'par', 'end_session']);

/** Grant types a portal may use at /token (RFC 6749 §4, RFC 8693 token exchange, RFC 8628 device, CIBA). */
const GRANT_TYPES = new Set([
  'authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:device_code', 'urn:openid:params:grant-type:ciba',
]);

const str = (v: AuditDetails[string]): string | undefined => (typeof v === 'string' ? v : undefined);
const closed = (set: ReadonlySet<string>, v: string | undefined, none = 'other'): string => (v === undefined ? none : set.has(v) ? v : 'other');

/**
 * A store read made at scrape time, shared by the gauges of one scrape (prom-client collects them
 * in parallel), by scrapes arriving together (while one read is under way, asking again joins it)
 * and by the scrapes of the next SCRAPE_READ_CACHE_MS (its outcome, answer or failure, is reused;
 * a clock moved backwards reads again). A read that does not answer within STORE_READ_TIMEOUT_MS
 * counts as failed: it is no longer joined, and once its outcome has aged the store is asked
 * again, never the read that may never end. One per system (createMetrics): nothing is shared
 * between two systems in one process.
 */
function scrapeRead<T>(read: () => Promise<T>, now: () => number): () => Promise<T> {
  let pending: Promise<T> | undefined;
  let last: { at: number; outcome: Promise<T> } | undefined;
  return () => {
    const t = now();
    if (last && t >= last.at && t - last.at < SCRAPE_READ_CACHE_MS) return last.outcome;
    if (!pending) {
      // A read that throws before returning its promise fails like one that rejects.
      const outcome = withTimeout(Promise.resolve().then(read), STORE_READ_TIMEOUT_MS);
      pending = outcome;
      const settle = () => {
        last = { at: now(), outcome };
        pending = undefined;
      };
      // Handled here, so a failure nobody else awaits is no unhandled rejection.
      outcome.then(settle, settle);
    }
    return pending;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function createMetrics(deps: {
  store: Store;
  labels: PortalLabels;
  /** The job kinds the runner knows (registered after the metrics are built). */
  jobKinds: () => readonly string[];
  version: string;
  now?: () => number;
}): Metrics {
  const now = deps.now ?? Date.now;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const portal = (clientId: string | null | undefined) => deps.labels.label(clientId);

  // Every request and every store call pass here: fast-metrics.ts's children, taken once per label set.
  const httpRequests = new FastCounter('dinhdanh_http_requests_total', 'HTTP requests answered, by listener, route template, method and status class.',
    ['listener', 'route', 'method', 'status_class'], registry);
  const httpDuration = new FastHistogram('dinhdanh_http_request_duration_seconds', 'Time to answer an HTTP request, by listener, route template and method.',
    ['listener', 'route', 'method'], HTTP_BUCKETS, registry);
  const signins = new Counter({
    name: 'dinhdanh_signins_total', help: 'Sign-in steps by portal, level reached (acr), method (amr) and outcome (success or the failure reason).',
    labelNames: ['portal', 'acr', 'method', 'outcome'] as const, registers,
  });
  const mfaChecks = new Counter({
    name: 'dinhdanh_mfa_checks_total', help: 'Second-factor checks by method and outcome.',
    labelNames: ['method', 'outcome'] as const, registers,
  });
  const lockouts = new Counter({
    name: 'dinhdanh_lockouts_total', help: 'Accounts locked by failed passwords, and second-factor attempts refused while locked.',
    labelNames: ['kind'] as const, registers,
  });
  const registrations = new Counter({
    name: 'dinhdanh_registrations_total', help: 'Self-service registrations by outcome.', labelNames: ['outcome'] as const, registers,
  });
  const recoveries = new Counter({
    name: 'dinhdanh_recoveries_total', help: 'Self-service recoveries by outcome.', labelNames: ['outcome'] as const, registers,
  });
  const consents = new Counter({
    name: 'dinhdanh_consents_total', help: 'Consents by portal and outcome.', labelNames: ['portal', 'outcome'] as const, registers,
  });
  const tokensIssued = new Counter({
    name: 'dinhdanh_tokens_issued_total', help: 'Successful token endpoint grants by portal and grant type.',
    labelNames: ['portal', 'grant_type'] as const, registers,
  });
  const oauthErrors = new Counter({
    name: 'dinhdanh_oauth_errors_total', help: 'OAuth errors answered by protocol endpoint and error code.',
    labelNames: ['endpoint', 'error'] as const, registers,
  });
  const backchannel = new Counter({
    name: 'dinhdanh_backchannel_logout_total', help: 'Back-channel logout delivery attempts by outcome.', labelNames: ['outcome'] as const, registers,
  });
  const securityEvents = new Counter({
    name: 'dinhdanh_security_event_deliveries_total', help: 'Security event (SSF) deliveries by portal and outcome: pushed, retried, given up, acknowledged by a polling portal.',
    labelNames: ['portal', 'outcome'] as const, registers,
  });
  const jobRuns = new Counter({
    name: 'dinhdanh_job_runs_total', help: 'Background job runs by kind and outcome.', labelNames: ['kind', 'outcome'] as const, registers,
    // Kinds are registered after the metrics are built: their series are made at 0 when scraped.
    collect() {
      for (const kind of deps.jobKinds()) for (const outcome of JOB_OUTCOMES) this.inc({ kind, outcome }, 0);
    },
  });
  const storeDuration = new FastHistogram('dinhdanh_store_operation_duration_seconds', 'Time of store calls by backend, repository, operation and outcome.',
    ['backend', 'repository', 'operation', 'outcome'], STORE_BUCKETS, registry);
  const usageFlushFailures = new Counter({
    name: 'dinhdanh_usage_flush_failures_total', help: 'Usage-statistics flushes that failed (their counts are kept and retried).', registers,
  });
  const buildInfo = new Gauge({
    name: 'dinhdanh_build_info', help: 'The running version and store backend (always 1).', labelNames: ['version', 'store'] as const, registers,
  });
  buildInfo.set({ version: deps.version, store: deps.store.kind }, 1);

  // Series of small closed sets exist at 0 from the start: otherwise each first appears at 1, and
  // rate()/increase() cannot see that first event (Prometheus, Instrumentation: "Avoid missing
  // metrics") — the first lockout or failed delivery of a process would raise no alert.
  for (const outcome of ['delivered', 'retrying', 'failed']) backchannel.inc({ outcome }, 0);
  for (const kind of ['password', 'mfa']) lockouts.inc({ kind }, 0);
  for (const outcome of ['completed', 'existing_account', 'limited']) registrations.inc({ outcome }, 0);
  for (const outcome of ['started', 'completed', 'limited', 'account_reset_requested', 'account_reset_completed']) recoveries.inc({ outcome }, 0);
  for (const method of MFA_METHODS) for (const outcome of ['success', 'failure', 'locked']) mfaChecks.inc({ method, outcome }, 0);

  const knownKinds = () => new Set(deps.jobKinds());
  const jobKind = (kind: string) => (knownKinds().has(kind) ? kind : 'other');

  // --- gauges read at scrape time -----------------------------------------------------------
  // Pending jobs only, through their index: a scrape never counts the finished jobs kept for a day.
  const readJobs = scrapeRead(() => deps.store.jobs.pending(), now);
  const readKeys = scrapeRead(() => deps.store.signingKeys.list(), now);
  const readPing = scrapeRead(() => deps.store.ping(), now);

  async function jobsByKind(): Promise<Map<string, { queued: number; oldestDueAt: number | null }>> {
    const out = new Map<string, { queued: number; oldestDueAt: number | null }>();
    for (const kind of knownKinds()) out.set(kind, { queued: 0, oldestDueAt: null });
    for (const row of await readJobs()) {
      const kind = jobKind(row.kind);
      const entry = out.get(kind) ?? { queued: 0, oldestDueAt: null };
      entry.queued += row.count;
      if (entry.oldestDueAt === null || row.oldestDueAt < entry.oldestDueAt) entry.oldestDueAt = row.oldestDueAt;
      out.set(kind, entry);
    }
    return out;
  }

  new Gauge({
    name: 'dinhdanh_jobs_queued', help: 'Pending background jobs by kind (due or not yet due).', labelNames: ['kind'] as const, registers,
    async collect() {
      this.reset();
      // With the store down the scrape still answers (dinhdanh_store_up 0), without these series.
      const jobs = await jobsByKind().catch(() => new Map<string, { queued: number; oldestDueAt: number | null }>());
      for (const [kind, v] of jobs) this.set({ kind }, v.queued);
    },
  });
  new Gauge({
    name: 'dinhdanh_jobs_oldest_due_age_seconds', help: 'Age of the oldest pending job already due, by kind (0 when none is due).',
    labelNames: ['kind'] as const, registers,
    async collect() {
      this.reset();
      const t = now();
      const jobs = await jobsByKind().catch(() => new Map<string, { queued: number; oldestDueAt: number | null }>());
      for (const [kind, v] of jobs) this.set({ kind }, v.oldestDueAt !== null && v.oldestDueAt <= t ? (t - v.oldestDueAt) / 1000 : 0);
    },
  });
  new Gauge({
    name: 'dinhdanh_store_up', help: 'Whether the store answered the scrape-time reads (ping, pending jobs, signing keys) within 1 s (1) or not (0); a read serves the scrapes of 10 s.', registers,
    async collect() {
      // The same (shared) reads as the other gauges: a store that answers a ping but not the
      // jobs' or keys' read is not up for the gauges that needed it either.
      const answered = await Promise.all([readPing(), readJobs(), readKeys()]).then(() => true, () => false);
      this.set(answered ? 1 : 0);
    },
  });
  // Security events waiting per portal: one grouped read of the events' line per scrape window.
  const readSsf = scrapeRead(async () => {
    const [streams, stats] = await Promise.all([deps.store.ssf.listStreams(), deps.store.ssf.deliveryStats(now())]);
    const client = new Map(streams.map((st) => [st.id, st.clientId]));
    return stats.map((x) => ({ portal: portal(client.get(x.streamId)), undelivered: x.undelivered, oldest: x.oldestUndeliveredAt }));
  }, now);
  new Gauge({
    name: 'dinhdanh_security_events_undelivered', help: 'Security events (SSF) made and not yet delivered or acknowledged, by portal.', labelNames: ['portal'] as const, registers,
    async collect() {
      this.reset();
      for (const x of await readSsf().catch(() => [])) this.inc({ portal: x.portal }, x.undelivered);
    },
  });
  new Gauge({
    name: 'dinhdanh_security_events_oldest_undelivered_age_seconds', help: 'Age of the oldest undelivered security event (SSF), by portal.', labelNames: ['portal'] as const, registers,
    async collect() {
      this.reset();
      const t = now();
      const oldest = new Map<string, number>();
      for (const x of await readSsf().catch(() => [])) if (x.oldest !== null) oldest.set(x.portal, Math.max(oldest.get(x.portal) ?? 0, (t - x.oldest) / 1000));
      for (const [p, age] of oldest) this.set({ portal: p }, age);
    },
  });
  const STATES: readonly KeyState[] = ['next', 'active', 'retiring', 'retired'];
  new Gauge({
    name: 'dinhdanh_signing_keys', help: 'Signing keys by algorithm and state.', labelNames: ['alg', 'state'] as const, registers,
    async collect() {
      this.reset();
      const keys = keyStates(await readKeys().catch(() => []), now());
      for (const alg of new Set(keys.map((k) => k.alg))) for (const state of STATES) this.set({ alg, state }, 0);
      for (const k of keys) this.inc({ alg: k.alg, state: k.state });
    },
  });
  new Gauge({
    name: 'dinhdanh_signing_key_active_age_seconds', help: 'Seconds since the active signing key of each algorithm began signing.',
    labelNames: ['alg'] as const, registers,
    async collect() {
      this.reset();
      const t = now();
      // A key imported active from the keys folder has activateAt 0: it began signing when it was added.
      for (const k of keyStates(await readKeys().catch(() => []), t)) if (k.state === 'active') this.set({ alg: k.alg }, Math.max(0, (t - Math.max(k.activateAt, k.createdAt)) / 1000));
    },
  });

  // --- security events ----------------------------------------------------------------------
  const signInFailure = (details: AuditDetails, outcome: string) =>
    signins.inc({ portal: portal(str(details.portal)), acr: 'none', method: 'none', outcome });
  /**
   * A second-factor event belongs to a sign-in when the interaction recorded it (it names the
   * portal); the account area's enrolments and the recovery journey's checks are not sign-ins.
   */
  const inSignIn = (details: AuditDetails) => typeof details.portal === 'string' && details.journey === undefined && details.via === undefined;
  const mfaMethod = (details: AuditDetails) => closed(MFA_METHODS, str(details.method));

  function audit(event: SecurityEventName, details: AuditDetails): void {
    switch (event) {
      case 'SIGN_IN_COMPLETED':
        signins.inc({
          portal: portal(str(details.portal)), acr: closed(ACRS, str(details.acr), 'none'), method: closed(SIGN_IN_METHODS, str(details.method), 'none'), outcome: 'success',
        });
        return;
      case 'LOGIN_FAILED': {
        const reason = str(details.reason);
        signInFailure(details, reason === 'wrong_password' || reason === 'unknown_identifier' || reason === 'password_reset_required' ? reason : 'other');
        return;
      }
      case 'LOGIN_THROTTLED':
        signInFailure(details, 'throttled');
        return;
      case 'LOGIN_IP_LIMITED':
        signInFailure(details, 'ip_limited');
        return;
      case 'ACCOUNT_LOCKED_BY_FAILURES':
        lockouts.inc({ kind: 'password' });
        return;
      case 'MFA_SUCCEEDED':
        mfaChecks.inc({ method: mfaMethod(details), outcome: 'success' });
        return;
      case 'RECOVERY_CODE_USED':
        // The recovery journey records MFA_SUCCEEDED beside it; a sign-in records only this.
        if (details.journey === undefined) mfaChecks.inc({ method: 'recovery', outcome: 'success' });
        return;
      case 'MFA_FAILED':
        // "A factor was added meanwhile" is recorded as MFA_FAILED but checked nothing.
        if (details.reason === 'factor_exists') return;
        mfaChecks.inc({ method: mfaMethod(details), outcome: 'failure' });
        if (inSignIn(details)) signInFailure(details, 'mfa_failed');
        return;
      case 'MFA_LOCKED':
        mfaChecks.inc({ method: mfaMethod(details), outcome: 'locked' });
        lockouts.inc({ kind: 'mfa' });
        if (inSignIn(details)) signInFailure(details, 'mfa_locked');
        return;
      case 'REGISTRATION_COMPLETED':
        registrations.inc({ outcome: 'completed' });
        return;
      case 'REGISTRATION_EXISTING_ACCOUNT':
        registrations.inc({ outcome: 'existing_account' });
        return;
      case 'REGISTRATION_LIMITED':
        registrations.inc({ outcome: 'limited' });
        return;
      case 'RECOVERY_STARTED':
        recoveries.inc({ outcome: 'started' });
        return;
      case 'PASSWORD_RESET':
        recoveries.inc({ outcome: 'completed' });
        return;
      case 'RECOVERY_LIMITED':
        recoveries.inc({ outcome: 'limited' });
        return;
      case 'ACCOUNT_RESET_REQUESTED':
        recoveries.inc({ outcome: 'account_reset_requested' });
        return;
      case 'ACCOUNT_RESET_COMPLETED':
        recoveries.inc({ outcome: 'account_reset_completed' });
        return;
      case 'CONSENT_GRANTED':
        consents.inc({ portal: portal(str(details.portal)), outcome: 'given' });
        return;
      case 'CONSENT_REUSED':
        consents.inc({ portal: portal(str(details.portal)), outcome: 'reused' });
        return;
      case 'CONSENT_DENIED':
        consents.inc({ portal: portal(str(details.portal)), outcome: 'denied' });
        return;
      case 'CONSENT_REVOKED':
        consents.inc({ portal: portal(str(details.portal)), outcome: 'withdrawn' });
        return;
      case 'BACKCHANNEL_LOGOUT_DELIVERED':
        backchannel.inc({ outcome: 'delivered' });
        return;
      case 'BACKCHANNEL_LOGOUT_RETRYING':
        backchannel.inc({ outcome: 'retrying' });
        return;
      case 'BACKCHANNEL_LOGOUT_FAILED':
        backchannel.inc({ outcome: 'failed' });
        return;
      case 'SSF_EVENT_DELIVERED':
        securityEvents.inc({ portal: portal(str(details.portal)), outcome: 'delivered' });
        return;
      case 'SSF_EVENT_RETRYING':
        securityEvents.inc({ portal: portal(str(details.portal)), outcome: 'retrying' });
        return;
      case 'SSF_EVENT_FAILED':
        securityEvents.inc({ portal: portal(str(details.portal)), outcome: 'failed' });
        return;
      case 'SSF_EVENTS_ACKNOWLEDGED':
        securityEvents.inc({ portal: portal(str(details.portal)), outcome: 'acknowledged' }, typeof details.count === 'number' && details.count > 0 ? details.count : 1);
        return;
      default:
        return;
    }
  }

  // --- HTTP ---------------------------------------------------------------------------------
  function http(listener: 'public' | 'admin'): Koa.Middleware {
    // One entry per (route, method, status class) seen: bounded, since every part is.
    const children = new Map<string, { count: CounterChild; time: HistogramChild }>();
    return httpMetricsMiddleware((route, method, statusClass, seconds) => {
      const key = `${route} ${method} ${statusClass}`;
      let c = children.get(key);
      if (!c) {
        c = { count: httpRequests.child(listener, route, method, statusClass), time: httpDuration.child(listener, route, method) };
        children.set(key, c);
      }
      c.count.value += 1;
      c.time.observe(seconds);
    });
  }

  // --- store calls --------------------------------------------------------------------------
  // A series appears with its first observation: an operation that never failed has no error series.
  type Timer = { ok?: HistogramChild; error?: HistogramChild };
  // backend → repository → operation: found without building a key string on every call.
  const timers = new Map<string, Map<string, Map<string, Timer>>>();
  const storeHook: StoreCallHook = (backend, repository, operation) => {
    let byRepo = timers.get(backend);
    if (!byRepo) timers.set(backend, (byRepo = new Map()));
    let byOp = byRepo.get(repository);
    if (!byOp) byRepo.set(repository, (byOp = new Map()));
    let timer = byOp.get(operation);
    if (!timer) byOp.set(operation, (timer = {}));
    const start = performance.now();
    const t = timer;
    return (error) => {
      const seconds = (performance.now() - start) / 1000;
      if (error === undefined) {
        (t.ok ??= storeDuration.child(backend, repository, operation, 'ok')).observe(seconds);
        return;
      }
      t.error ??= storeDuration.child(backend, repository, operation, 'error');
      t.error.observe(seconds);
    };
  };

  return {
    registry,
    http,
    storeHook,
    audit,
    signInPageShown() {
      // The funnel's first step is a usage statistic (usage.service.ts), not a metric.
    },
    grantSucceeded(grantType, clientId) {
      tokensIssued.inc({ portal: portal(clientId), grant_type: closed(GRANT_TYPES, grantType) });
    },
    oauthError(endpoint, error) {
      oauthErrors.inc({ endpoint: ENDPOINTS.has(endpoint) ? endpoint : 'other', error: oauthErrorLabel(error) });
    },
    jobRun(kind, outcome) {
      jobRuns.inc({ kind: jobKind(kind), outcome });
    },
    usageFlushFailed() {
      usageFlushFailures.inc();
    },
  };
}
