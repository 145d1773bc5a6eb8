/**
 * Services that need the store and keys but not the HTTP app or oidc-provider (the CLI uses these
 * without loading the provider).
 */
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { JWK } from 'jose';
import type { Config } from './config/config.js';
import { createStore, type Store } from './store/index.js';
import { loadKeyMaterial } from './keys/key-files.js';
import { createSecretBox } from './keys/secret-box.js';
import { createPortalAdmin, createPortalService, type PortalService } from './portals/index.js';
import { createAccountAdmin, createAccountService, createAccountState, createPasswordHasher, type PasswordHasher } from './accounts/index.js';
import { createAuditService, type AuditService } from './audit/index.js';
import { createActivityService } from './activity/activity.service.js';
import { createAccess } from './provider/access.js';
import { createLogoutNotifier } from './provider/backchannel-logout.js';
import { createSecurityEvents, type SecurityEvents } from './events/emitter.js';
import { queueHead } from './events/delivery.js';
import { createSessionLifecycle } from './provider/session-lifecycle.js';
import { createOrgService } from './orgs/index.js';
import type { ChannelNotifier } from './mfa/notifier/index.js';
import { createPendingResets } from './selfservice/recovery.service.js';
import { createSigningKeys } from './keys/signing-keys.js';
import { AdminError, createAdminActions, createOperatorsService } from './admin/index.js';
import { CONSOLE_CLIENT_ID } from './admin/console-client.js';
import { PACKAGE_ROOT } from './http/paths.js';
import { createPortalLabels, type PortalLabels } from './metrics/portal-labels.js';
import { ACCOUNT_CLIENT_ID } from './provider/account-session.js';
import type { Metrics, StoreCallHook } from './metrics/metrics.js';
import type { Tracing } from './metrics/tracing.js';
import { instrumentStore } from './metrics/store-instrumentation.js';
import { fanOut, noTelemetry, type Telemetry } from './metrics/telemetry.js';
import { readableWhenTerminal, type LogOptions } from './log-output.js';

/** JSON lines; readable ones for a person at a terminal in development (log-output.ts). */
export function createLogger(config: Config, options: LogOptions = {}): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'dinhdanh' },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'password', '*.password', 'client_secret', '*.client_secret'], censor: '[redacted]' },
    ...(options.mixin ? { mixin: options.mixin } : {}),
  }, readableWhenTerminal(config.env, process.stdout.isTTY, stdoutLog()));
}

/**
 * The access log: one line per request with id, method, path, status and time, nothing to redact
 * (query strings are never logged). A logger of its own, so the line skips redaction's per-line cost,
 * written to stdout in batches (2 kB, or every second) instead of one write per request; what is
 * buffered is written out by `closeLogs` before the process exits. Errors and security events go
 * through the main logger, which writes each line at once.
 *
 * Each write is at most 4 kB of whole lines (`maxWrite`: lines that arrive while one write is in
 * flight start the next chunk; a line is short, its path cut at 256 characters), so it stays within
 * PIPE_BUF: on a pipe it is atomic and the main logger's lines cannot land inside it.
 */
export function createAccessLogger(config: Config, options: LogOptions = {}): Logger {
  return pino(
    { level: config.logLevel, base: { service: 'dinhdanh' }, ...(options.mixin ? { mixin: options.mixin } : {}) },
    readableWhenTerminal(config.env, process.stdout.isTTY, stdoutLog({ minLength: 2048, maxWrite: 4096, periodicFlush: 1000 })),
  );
}

interface StdoutLog {
  write(line: string): void;
  flush(cb?: (err?: Error) => unknown): void;
  /**
   * Writes out what is buffered and lets go of stdout; what is not written within `timeoutMs` is
   * dropped. Later calls return the first one's promise.
   */
  close(timeoutMs: number): Promise<void>;
}

/** This process's stdout loggers, for `closeLogs`. */
const stdoutLogs = new Set<StdoutLog>();

/**
 * A pino destination on stdout: sonic-boom, asynchronous, so a log call never waits for the reader.
 *
 * Exiting must not wait for the reader either. For an asynchronous destination pino registers an
 * exit hook that writes what is buffered synchronously (sonic-boom's flushSync), and that loop
 * sleeps 100 ms and writes again after every failed write, EPIPE included, until the buffer is
 * empty: with lines buffered and the reader gone (EPIPE) or stalled (EAGAIN), a process never got
 * past `process.exit`, its main thread asleep in Atomics.wait. A process therefore exits through
 * `closeLogs`, which writes the buffers out while the event loop still runs and lets go of what it
 * could not write in time; the hook then finds nothing to write.
 *
 * `process.stdout.fd` (rather than 1) opens stdout through libuv, which makes a pipe non-blocking:
 * writing to a full pipe fails with EAGAIN and is retried on a timer, instead of blocking a libuv
 * threadpool thread in write(2), a thread the process's exit would then wait for.
 */
function stdoutLog(options: { minLength?: number; maxWrite?: number; periodicFlush?: number } = {}): StdoutLog {
  const destination = pino.destination({ dest: process.stdout.fd, sync: false, ...options });
  let open = true;
  let failed = false;
  let closing: Promise<void> | undefined;
  // On EPIPE pino turns the destination off for good; any other write error would otherwise be an
  // unhandled 'error' event and end the process. Either way nothing more can be written out.
  destination.on('error', () => { failed = true; });
  const log: StdoutLog = {
    // Lines logged after close are dropped (the process is exiting; a closed destination throws).
    write(line) {
      if (open) destination.write(line);
    },
    flush(cb) {
      if (open) destination.flush(cb);
      else cb?.();
    },
    close(timeoutMs) {
      closing ??= new Promise<void>((resolve) => {
        open = false;
        if (failed) {
          resolve();
          return;
        }
        const done = () => {
          clearTimeout(timer);
          // Idempotent; drops what is still buffered, and the exit hook skips a destroyed destination.
          destination.destroy();
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        destination.once('close', done);
        destination.once('error', done);
        // Writes out everything buffered, then closes (stdout itself stays open).
        try {
          destination.end();
        } catch {
          done();
        }
      });
      return closing;
    },
  };
  stdoutLogs.add(log);
  return log;
}

/**
 * Writes out what the stdout loggers hold and lets go of stdout, within `timeoutMs`: a process's
 * last step before `process.exit`. A reader that reads gets every line; one that went away or
 * stopped reading costs at most the bound and the lines it would not take.
 */
export async function closeLogs(timeoutMs: number): Promise<void> {
  await Promise.all([...stdoutLogs].map((log) => log.close(timeoutMs)));
}

export interface ComposeOptions {
  logger?: Logger;
  /** The access log; by default `logger` when one is given (tests), else createAccessLogger. */
  accessLogger?: Logger;
  /** Replaces the configured message delivery (tests). */
  notifier?: ChannelNotifier;
  hasher?: PasswordHasher;
  now?: () => number;
  /**
   * The store's own clock (record expiry), when it must differ from the real one: tests that let
   * hours pass for the store's records. oidc-provider stamps tokens with the real clock.
   */
  storeNow?: () => number;
  /** OpenTelemetry traces (metrics/tracing.ts; main.ts starts them when OTEL_EXPORTER_OTLP_ENDPOINT is set); null or absent: none. */
  tracing?: Tracing | null;
}

/** The version in package.json (dinhdanh_build_info). */
export function packageVersion(): string {
  try {
    const { version } = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * What a running server observes of itself (metrics/): Prometheus metrics and the observers of the
 * one Telemetry. The command line has none of it (its processes are short and scraped by no one).
 */
export interface Observability {
  /** The `portal` label of metrics and usage rows: one instance for both (portal-labels.ts). */
  portalLabels: PortalLabels;
  /** null with DINHDANH_METRICS=off. */
  metrics: Metrics | null;
  /** Every observer of the running system as one (noTelemetry with metrics off). */
  telemetry: Telemetry;
  /** The job kinds the metrics may name; compose.ts points it at its job runner. */
  jobKinds: () => readonly string[];
}

/** What a running server gives the security events (compose.ts): its key set and its job runner. */
export interface EventHooks {
  signingKey?: (alg: string) => JWK | undefined;
  kick?: () => void;
}

export interface ServiceOptions {
  /** Build the observers of a running server (compose.ts); the CLI leaves it unset. */
  observe?: boolean;
  /** More store-call observers than the metrics' own (traces). */
  storeHooks?: readonly StoreCallHook[];
}

export async function composeServices(config: Config, options: ComposeOptions = {}, serviceOptions: ServiceOptions = {}) {
  const logger = options.logger ?? createLogger(config);
  const keys = await loadKeyMaterial({ keysDir: config.keysDir, production: config.env === 'production' });
  const openedStore = await createStore(config.storeUrl, options.storeNow ? { now: options.storeNow } : undefined);
  // Observers first, so that every repository handed out below is the timed one. The metrics read
  // their gauges from the store itself: a scrape's own reads are not timed.
  const portalLabels = createPortalLabels({ portals: openedStore.portals, firstParty: [ACCOUNT_CLIENT_ID], now: options.now });
  const observability: Observability = { portalLabels, metrics: null, telemetry: noTelemetry, jobKinds: () => [] };
  if (serviceOptions.observe && config.metrics.enabled) {
    // The registered portals are read before the first request: a sign-in right after a restart is
    // then its portal's, not `other`'s. A store that cannot answer yet does not stop the start; the
    // labels are read again at their next use.
    await portalLabels.refresh().catch((err: unknown) => logger.warn({ err }, 'registered portals not read for the metrics\' labels; read again later'));
    // Loaded only here: the command line and DINHDANH_METRICS=off never load prom-client.
    const { createMetrics } = await import('./metrics/metrics.js');
    observability.metrics = createMetrics({
      store: openedStore, labels: portalLabels, jobKinds: () => observability.jobKinds(), version: packageVersion(), now: options.now,
    });
  }
  const storeHooks = [...(observability.metrics ? [observability.metrics.storeHook] : []), ...(serviceOptions.storeHooks ?? [])];
  const store = instrumentStore(openedStore, storeHooks);
  if (observability.metrics) {
    observability.telemetry = fanOut([observability.metrics], (err) => logger.warn({ err }, 'a telemetry observer failed'));
  }
  const secretBox = createSecretBox(keys.dataKeys);
  // Signing keys in the store are sealed under a key-encryption key: from the environment when
  // given (a secret manager), else the keys folder's data keys.
  const keyEncryptionBox = config.keyEncryptionKey ? createSecretBox([{ kid: 'kek-env', key: config.keyEncryptionKey }]) : secretBox;
  // The person's own history is a projection of the audit events, written as they are recorded.
  const activity = createActivityService({ repo: store.activity, logger, now: options.now });
  const audit = createAuditService({
    logger, repo: store.audit, now: options.now,
    // Read when each event is recorded: compose.ts adds the usage statistics to the telemetry later.
    observe: (event, details, at) => {
      // A portal registered through this instance (the console) is labelled as itself at once; one
      // registered elsewhere (the CLI, another instance) within PORTALS_REFRESH_MS.
      if (serviceOptions.observe && (event === 'PORTAL_REGISTERED' || event === 'RESOURCE_SERVER_REGISTERED')) void portalLabels.refresh().catch(() => undefined);
      observability.telemetry.audit(event, details, at);
      activity.observe(event, details, at);
      securityEvents.observe(event, details, at);
    },
  });
  const hasher = options.hasher ?? createPasswordHasher();
  const portals = createPortalService({ repo: store.portals, secretBox, now: options.now, logger });
  const accounts = createAccountService({ persons: store.persons, hasher, audit });
  // Without a running provider (the CLI), ending access is enqueued; the server's jobs do it.
  const orgs = createOrgService({ orgs: store.orgs, persons: store.persons, jobs: store.jobs, audit, now: options.now });
  // Security events for portals (events/): made from the audit events and the ends of sessions, by
  // any door. The server signs with its loaded key set and runs the pushes at once (compose.ts sets
  // `eventHooks`); the command line loads the active keys from the store once, and a server's job
  // runner pushes what it queued.
  const eventHooks: EventHooks = {};
  let storedKeys: Promise<Awaited<ReturnType<Awaited<ReturnType<typeof keyRing>>['load']>>> | undefined;
  const securityEvents: SecurityEvents = createSecurityEvents({
    issuer: config.issuer, store, portals, pairwiseSalt: keys.pairwiseSalt, logger, now: options.now,
    signingKey: async (alg) => (eventHooks.signingKey ? eventHooks.signingKey(alg) : (await (storedKeys ??= keyRing().then((r) => r.load()))).active.get(alg)),
    queued: (stream) => queueHead({ store, jobs: store.jobs, kick: eventHooks.kick }, stream, (options.now ?? Date.now)()),
  });
  const changes = createAccountChanges({ store, portals, audit, logger, now: options.now, securityEvents });
  const accountAdmin = createAccountAdmin({
    persons: store.persons, factors: store.factors, recoveryCodes: store.recoveryCodes, counters: store.counters, evidence: store.accountEvidence,
    state: changes.state, audit, pendingReset: createPendingResets(store.oidc), now: options.now,
  });
  const portalAdmin = createPortalAdmin({ repo: store.portals, access: changes.access, audit, secretBox, now: options.now, firstParty: [CONSOLE_CLIENT_ID] });
  // Operators, roles and two-person approvals (admin/): the console and the command line both act through these.
  const operators = createOperatorsService({ repo: store.operators, persons: store.persons, audit, now: options.now });
  const keyRing = async () => {
    const ring = createSigningKeys({ repo: store.signingKeys, box: keyEncryptionBox, logger, now: options.now });
    await ring.bootstrap(keys.jwks.keys, keys.signingOrigin);
    return ring;
  };
  // The server passes its own account admin (whose changes deliver at once); the CLI's queues them.
  const makeAdminActions = (admin: typeof accountAdmin) => createAdminActions({
    persons: store.persons, accountAdmin: admin, operators, approvalsRepo: store.approvals, audit, now: options.now,
    approveNationalId: async (clientId, legalBasis) => { await portals.approve(clientId, 'national_id', legalBasis); },
    portalExists: async (clientId) => !!(await store.portals.find(clientId)),
    portalRevision: (clientId) => store.portals.revision(clientId),
    updatePortalMetadata: (clientId, metadata) => store.portals.updateMetadata(clientId, metadata),
    async checkRetirable(kid) {
      const key = (await (await keyRing()).describe()).find((k) => k.kid === kid);
      if (!key) throw new AdminError('not_found', `no signing key ${kid}`);
      if (key.state === 'active' || key.state === 'retired') throw new AdminError('conflict', `key ${kid} is ${key.state}: only a next or retiring key can be retired`);
    },
    async retireKey(kid) {
      const ring = await keyRing();
      const was = (await ring.describe()).find((k) => k.kid === kid)?.state ?? 'unknown';
      const record = await ring.retire(kid);
      return { alg: record.alg, was };
    },
  });
  const adminActions = makeAdminActions(accountAdmin);
  return { observability, config, logger, keys, store, secretBox, keyEncryptionBox, audit, activity, securityEvents, eventHooks, hasher, portals, portalAdmin, accounts, orgs, accountAdmin, operators, adminActions, makeAdminActions, keyRing, ...changes };
}

/**
 * What changes of an account's state need, from any door: the back-channel logout queue, ending
 * sessions and grants in the store, the session lifecycle and the account-state table. `kick` runs
 * the queued deliveries at once (a server); without it (the CLI) a server's polling sends them.
 */
export function createAccountChanges(deps: { store: Store; portals: PortalService; audit: AuditService; logger: Logger; now?: () => number; kick?: () => void; securityEvents?: Pick<SecurityEvents, 'sessionsEnded'> }) {
  const { store } = deps;
  const notifyPortals = createLogoutNotifier({ jobs: store.jobs, kick: deps.kick, portals: deps.portals, now: deps.now, ended: deps.securityEvents?.sessionsEnded });
  const access = createAccess({ store, notifyPortals });
  const sessions = createSessionLifecycle({ store, access, notifyPortals, jobs: store.jobs, kick: deps.kick, audit: deps.audit, logger: deps.logger, now: deps.now });
  const state = createAccountState({ persons: store.persons, access, sessions });
  return { notifyPortals, access, sessions, state };
}

