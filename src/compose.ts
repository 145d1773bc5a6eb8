/**
 * Builds the running system from configuration: store, key material, services, provider, app.
 * Used by main.ts and by the integration tests (which pass their own store URL and keys folder).
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from './config/config.js';
import type { Store } from './store/index.js';
import { KeyMaterialError, type KeyMaterial } from './keys/key-files.js';
import type { SecretBox } from './keys/secret-box.js';
import { createSigningKeys, type SigningKeys } from './keys/signing-keys.js';
import type { PortalService } from './portals/index.js';
import { createAuthenticationService, type AccountService, type PasswordHasher } from './accounts/index.js';
import type { AuditService } from './audit/index.js';
import { composeServices, createAccessLogger, createAccountChanges, type ComposeOptions } from './services.js';
import { createRenderer } from './http/render.js';
import { createCsrf } from './http/csrf.js';
import { createProvider } from './provider/provider.js';
import { buildApp } from './app.js';
import { createJobRunner, type JobRunner } from './jobs/index.js';
import { createGuardedFetch } from './outbound/index.js';
import { DELIVERY_TIMEOUT_MS, createBackchannelLogout } from './provider/backchannel-logout.js';
import { createEventDelivery } from './events/delivery.js';
import { createSsfRoutes } from './events/ssf.routes.js';
import { createClientAuth } from './events/client-auth.js';
import type { EventDelivery } from './events/types.js';
import type { SecurityEvents } from './events/emitter.js';
import type { AccountActions } from './account/account-actions.js';
import type { ActivityService } from './activity/activity.service.js';
import type { SessionLifecycle } from './provider/session-lifecycle.js';
import type { Access } from './provider/access.js';
import type { LogoutNotifier } from './provider/backchannel-logout.js';
import { createOrgContexts, createOrgJobHandlers } from './provider/org-access.js';
import { ACCOUNT_LOCKED_JOB, createAccountAdmin, type AccountAdmin, type AccountState } from './accounts/index.js';
import { createOrgService, type OrgService } from './orgs/index.js';
import { createAccountActions, createContactsService } from './account/index.js';
import { createSignInObserver, type SignInObserver } from './activity/sign-ins.js';
import { createRegistry } from './registry/index.js';
import { buildAdminApp } from './admin/admin.app.js';
import type { AdminActions, OperatorsService } from './admin/index.js';
import { createFlows, createPendingResets, createRecoveryJourney, createRegistrationService, createSelfServiceLimits } from './selfservice/index.js';
import type { Metrics } from './metrics/metrics.js';
import { fanOut, type Telemetry } from './metrics/telemetry.js';
import { createUsageRecorder, type UsageRecorder } from './metrics/usage.service.js';
import { createUsageReports, type UsageReports } from './metrics/usage.report.js';
import type { PortalLabels } from './metrics/portal-labels.js';
import { type FactorNotices, createFactorNotices, createMessageCodeService, createNotifier, createPasskeyService, createRecoveryService, createTotpService } from './mfa/index.js';

export interface System {
  config: Config;
  logger: Logger;
  store: Store;
  keys: KeyMaterial;
  portals: PortalService;
  accounts: AccountService;
  hasher: PasswordHasher;
  audit: AuditService;
  /** Seals data at rest with the keys folder's data keys (second-factor seeds, portal secrets). */
  secretBox: SecretBox;
  /** The current provider: a key rotation replaces it (the old one finishes its requests). */
  provider: () => Provider;
  app: Koa;
  /** The operators' console (admin/), for the operators' listener only. */
  adminApp: Koa;
  /**
   * Tells the console the port its listener got (when DINHDANH_ADMIN_PORT is 0); its origin is
   * then `http://<admin host>:<port>` unless DINHDANH_ADMIN_URL names it.
   */
  adminListening(port: number): void;
  /** The console's origin as operators' browsers see it. */
  adminOrigin(): string;
  notices: FactorNotices;
  /** Durable background work (back-channel logout, session expiry); main.ts starts its polling. */
  jobs: JobRunner;
  sessions: SessionLifecycle;
  /** Ending sessions, grants and tokens in the store (provider/access.ts). */
  access: Access;
  /** The account-state table (accounts/account-state.ts): every change of an account's state goes through it. */
  state: AccountState;
  notifyPortals: LogoutNotifier;
  orgs: OrgService;
  signingKeys: SigningKeys;
  accountAdmin: AccountAdmin;
  /** The operators' actions (admin/), through the server's account admin. */
  adminActions: AdminActions;
  operators: OperatorsService;
  /** Prometheus metrics (metrics/metrics.ts); null with DINHDANH_METRICS=off. */
  metrics: Metrics | null;
  /** Everything observable, told to every observer (metrics, usage statistics); noTelemetry when off. */
  telemetry: Telemetry;
  /** The `portal` label of metrics and usage rows (registered client ids only). */
  portalLabels: PortalLabels;
  /** Usage statistics being counted (flushed every 5 s, and at close); null with DINHDANH_METRICS=off. */
  usage: UsageRecorder | null;
  /** The usage statistics as read back (console charts, `dinhdanh stats usage`); reads even with metrics off. */
  usageReports: UsageReports;
  /** Security events for portals (events/emitter.ts): made from audit events and session ends. */
  securityEvents: SecurityEvents;
  /** Security events' delivery (events/delivery.ts): push jobs, verification, polling. */
  eventDelivery: EventDelivery;
  /** The account area's changes (account/account-actions.ts): password, "this wasn't me", self-lock. */
  accountActions: AccountActions;
  /** The person's own history, written behind the audit events (activity/). */
  activity: ActivityService;
  /** Reloads the signing keys from the store; rebuilds the provider when they changed. main.ts polls it. */
  reloadKeys(): Promise<boolean>;
  close(): Promise<void>;
}

export async function composeSystem(config: Config, options: ComposeOptions = {}): Promise<System> {
  // Store calls are timed for the metrics and, when tracing, each is a span of its request's trace.
  const services = await composeServices(config, options, { observe: true, storeHooks: options.tracing ? [options.tracing.storeHook] : [] });
  const { logger, keys, store, audit, hasher, portals, observability } = services;
  const { metrics } = observability;
  // Usage statistics: the second observer of the one Telemetry, shared by every instance through the
  // store. Its tags are keyed by a secret derived from the pairwise salt (every instance derives
  // the same; never stored). Not from the cookie keys: rotated, they would change a day's tags and
  // count its people twice; the pairwise salt never changes (`keys generate --force` keeps it), and
  // no pairwise sub is this HMAC (those hash `sector NUL account`).
  const usage = metrics ? createUsageRecorder({
    repo: store.usage, labels: observability.portalLabels, logger, now: options.now,
    secret: crypto.createHmac('sha256', keys.pairwiseSalt).update('dinhdanh usage tags').digest('hex'),
    onFlushFailure: () => metrics.usageFlushFailed(),
  }) : null;
  // Before the provider and the pages are built: they hold the telemetry they are given.
  if (metrics && usage) observability.telemetry = fanOut([metrics, usage], (err) => logger.warn({ err }, 'a telemetry observer failed'));
  const usageReports = createUsageReports({ repo: store.usage, now: options.now, portalName: async (id) => (await store.portals.find(id))?.name });
  const renderer = createRenderer({ cache: config.env === 'production' });
  // Portal-supplied URLs are fetched only through the SSRF guard (SECURITY.md #29).
  const outbound = createGuardedFetch({
    allowPrivate: config.env !== 'production',
    allowCidrs: config.outboundAllowCidrs,
    timeoutMs: DELIVERY_TIMEOUT_MS,
    maxResponseBytes: 64 * 1024,
  }, { observe: options.tracing?.outboundHook });
  const jobs = createJobRunner({ jobs: store.jobs, logger, now: options.now, onRun: metrics ? (kind, outcome) => metrics.jobRun(kind, outcome) : undefined });
  observability.jobKinds = () => jobs.kinds();
  // Signing keys live in the store (rotation without restart); the keys folder seeds them once.
  const signingKeys = createSigningKeys({ repo: store.signingKeys, box: services.keyEncryptionBox, logger, now: options.now });
  await signingKeys.bootstrap(keys.jwks.keys, keys.signingOrigin);
  let keySet = await signingKeys.load();
  if (config.env === 'production' && keySet.origins.has('development')) {
    throw new KeyMaterialError('refusing to start in production: the store publishes development signing keys; run "dinhdanh keys rotate --activate-after 0", then retire the development keys');
  }
  const backchannel = createBackchannelLogout({
    issuer: config.issuer, signingKey: (alg) => keySet.active.get(alg), pairwiseSalt: keys.pairwiseSalt, portals, fetch: outbound, audit, logger, now: options.now,
  });
  jobs.register(backchannel.handler);
  // Security events for portals (events/): signed with this key set (rotations included), and pushed
  // by this job runner at once; the command line's are pushed by a server's next poll.
  services.eventHooks.signingKey = (alg) => keySet.active.get(alg);
  services.eventHooks.kick = () => jobs.kick();
  const eventDelivery = createEventDelivery({
    store, jobs: store.jobs, events: services.securityEvents, fetch: outbound, secretBox: services.secretBox, audit, logger, kick: () => jobs.kick(), now: options.now,
  });
  jobs.register(eventDelivery.handler);
  const late: { provider?: Provider } = {};
  const providerRef = () => late.provider!;
  // Changes of an account's state, as the CLI makes them, but with deliveries run at once.
  const { notifyPortals, access, sessions, state } = createAccountChanges({ store, portals, audit, logger, now: options.now, kick: () => jobs.kick(), securityEvents: services.securityEvents });
  jobs.register(sessions.expiryHandler);
  // In the server, ending an enterprise access runs at once (the CLI's waits for the next poll).
  const orgs = createOrgService({
    orgs: store.orgs, persons: store.persons, jobs: store.jobs, audit, now: options.now, kick: () => jobs.kick(),
    counters: store.counters, tellDelegate: (personId, what) => notices.delegated(personId, what),
  });
  const orgContexts = createOrgContexts({ orgs: store.orgs, service: orgs });
  // Told of every finished sign-in (its record, the new-browser notice); built below, with the notices.
  const late$: { signedIn?: SignInObserver } = {};
  const buildProvider = () => createProvider({
    config, jwks: keySet.jwks, cookieKeys: keys.cookieKeys, store, portals, renderer, logger, audit, pairwiseSalt: keys.pairwiseSalt,
    now: options.now, sessions, fetch: outbound, orgContexts, telemetry: observability.telemetry,
    signedIn: async (ctx, info) => { await late$.signedIn?.(ctx, info); },
  });
  late.provider = buildProvider();
  async function reloadKeys(): Promise<boolean> {
    const next = await signingKeys.load();
    if (next.fingerprint === keySet.fingerprint) return false;
    keySet = next;
    // A new provider with the new key set; requests already inside the old one finish there.
    late.provider = buildProvider();
    logger.info({ keys: next.fingerprint }, 'signing keys changed: provider rebuilt');
    return true;
  }
  // Locks queued before a lock ended sessions itself (an upgrade with such jobs pending) still run.
  jobs.register({
    kind: ACCOUNT_LOCKED_JOB,
    leaseMs: 60_000,
    keepMs: 7 * 24 * 3600_000,
    async run(job) {
      const personId = job.payload.personId;
      if (typeof personId !== 'string') return { status: 'failed', outcome: 'malformed job' };
      return { status: 'done', outcome: `${await access.endSessions(personId, 'account_locked', { allGrants: true })} session(s) ended` };
    },
  });
  const accountAdmin = createAccountAdmin({
    persons: store.persons, factors: store.factors, recoveryCodes: store.recoveryCodes, counters: store.counters, evidence: store.accountEvidence,
    state, audit, pendingReset: createPendingResets(store.oidc), now: options.now,
  });
  for (const handler of createOrgJobHandlers({
    provider: providerRef, orgs: store.orgs, service: orgs, revokeGrant: access.revokeGrant, notifyPortals, audit,
  })) jobs.register(handler);
  const auth = createAuthenticationService({ persons: store.persons, counters: store.counters, hasher, audit, state, now: options.now });
  const totp = createTotpService({ factors: store.factors, counters: store.counters, secretBox: services.secretBox, issuerName: 'dinhdanh', now: options.now });
  const recovery = createRecoveryService({ codes: store.recoveryCodes, counters: store.counters, now: options.now });
  // WebAuthn binds passkeys to the issuer: its host name is the RP ID, its origin the only origin.
  const issuerUrl = new URL(config.issuer);
  const passkeys = createPasskeyService({
    factors: store.factors, counters: store.counters, rpId: issuerUrl.hostname, rpName: 'dinhdanh', origin: issuerUrl.origin, now: options.now,
  });
  const notifier = options.notifier ?? createNotifier(config, logger);
  const messageCodes = createMessageCodeService({ store: store.oidc, counters: store.counters, notifier, now: options.now, logger });
  const notices = createFactorNotices({ notifier, persons: store.persons, counters: store.counters, logger, audit, now: options.now });
  // The account area's changes (account/): password, contacts, "this wasn't me", self-lock, the data export.
  const accountActions = createAccountActions({
    persons: store.persons, factors: store.factors, oidc: store.oidc, auth, hasher, state, audit, notices, issuer: config.issuer, now: options.now,
  });
  const contacts = createContactsService({
    persons: store.persons, oidc: store.oidc, messageCodes, notices, audit, now: options.now, identifierChanged: services.securityEvents.identifierChanged,
  });
  late$.signedIn = createSignInObserver({
    oidc: store.oidc, audit, notices, issueNotMeLink: accountActions.issueNotMeLink, https: config.issuer.startsWith('https:'), logger, now: options.now,
  });
  // Self-service registration and recovery (selfservice/), against the population registry.
  const registry = createRegistry(config, { logger, now: options.now, observe: options.tracing?.outboundHook });
  const limits = createSelfServiceLimits({ counters: store.counters, now: options.now ?? Date.now });
  const registration = createRegistrationService({ persons: store.persons, registry, messageCodes, limits, hasher, notices, audit });
  const recoveryJourney = createRecoveryJourney({
    persons: store.persons, factors: store.factors, recoveryCodes: store.recoveryCodes, counters: store.counters, store: store.oidc, messageCodes, limits, hasher,
    notices, state, audit, jobs, issuer: config.issuer, resetWaitMs: config.accountResetWaitMs, logger, now: options.now,
  });
  jobs.register(recoveryJourney.readyHandler());
  const flows = createFlows({ store: store.oidc, https: config.issuer.startsWith('https:') });
  const csrf = createCsrf(keys.cookieKeys);
  // The transmitter's API for portals (SSF 1.0 §7, §8.1; RFC 8936), on the public listener.
  const ssf = createSsfRoutes({
    issuer: config.issuer, jwksUri: `${config.issuer}/jwks`, store, counters: store.counters, secretBox: services.secretBox, delivery: eventDelivery, audit,
    production: config.env === 'production', now: options.now,
    auth: createClientAuth({ issuer: config.issuer, portals, counters: store.counters, fetch: outbound, now: options.now }),
  });
  const app = buildApp({
    ssf,
    config, logger, accessLogger: options.accessLogger ?? (options.logger ? undefined : createAccessLogger(config)), store, provider: providerRef, renderer, sessions, state, orgs, auth, audit, totp, recovery, passkeys, messageCodes, notices, now: options.now,
    selfService: { flows, registration, recovery: recoveryJourney },
    account: { contacts, actions: accountActions, activity: services.activity },
    csrf,
    cookieKeys: keys.cookieKeys,
    metrics,
    tracing: options.tracing ?? null,
    telemetry: observability.telemetry,
  });
  // The operators' console, on a listener of its own (main.ts); its origin is known once it listens.
  let adminPort = config.admin.port;
  const adminHost = config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host;
  const adminOrigin = () => config.admin.url ?? `http://${adminHost}:${adminPort}`;
  const adminActions = services.makeAdminActions(accountAdmin);
  const adminApp = buildAdminApp({
    config, logger, accessLogger: options.accessLogger ?? (options.logger ? undefined : createAccessLogger(config)), store, renderer, csrf,
    cookieKeys: keys.cookieKeys, audit, portals, portalAdmin: services.portalAdmin, orgs, accountAdmin, signingKeys, reloadKeys,
    activity: services.activity, operators: services.operators, actions: adminActions, origin: adminOrigin, now: options.now,
    metrics, usageReports, tracing: options.tracing ?? null,
  });
  // The first unknown-identifier sign-in would otherwise pay for computing the dummy hash.
  await hasher.verifyDummy('warm-up');
  // Flushes every 5 s and compacts hourly, on unref'd timers; close() stops it with a last flush.
  usage?.start();
  return {
    ...services, metrics, telemetry: observability.telemetry, portalLabels: observability.portalLabels, usage, usageReports, adminActions, provider: providerRef, app, adminApp, adminOrigin, adminListening: (port: number) => { adminPort = port; }, notices, jobs, sessions, access, state, notifyPortals, orgs, signingKeys, reloadKeys, accountAdmin, eventDelivery, accountActions,
    async close() {
      await jobs.stop();
      await audit.flush();
      // The security events of what was recorded are in the store before it closes.
      await services.securityEvents.settled();
      // What is counted in memory is written before the store closes.
      await usage?.stop();
      await services.activity.settled();
      await store.close();
    },
  };
}
