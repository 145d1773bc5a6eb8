/**
 * buildApp(deps): error handler, request context, security headers, our routes, then the mounted
 * oidc-provider. No listening, no configuration reading: main.ts (and the tests) wire it.
 */
import { withCause } from './events/set.js';
import fs from 'node:fs';
import path from 'node:path';
import Koa from 'koa';
import Router from '@koa/router';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import type { Store } from './store/index.js';
import type { AuthenticationService } from './accounts/index.js';
import type { AuditService } from './audit/index.js';
import type { FactorNotices, MessageCodeService, PasskeyService, RecoveryService, TotpService } from './mfa/index.js';
import { SESSION_IDLE_MS, TTL } from './provider/provider.js';
import { createAccountSessions, createSessionDirectory } from './provider/account-session.js';
import type { SessionLifecycle } from './provider/session-lifecycle.js';
import type { AccountState } from './accounts/index.js';
import type { OrgService } from './orgs/index.js';
import { portalRefs } from './provider/session-lifecycle.js';
import { isProtocolPath, providerMount } from './provider/mount.js';
import { createDataExport, securityRoutes, type AccountActions, type ContactsService } from './account/index.js';
import type { ActivityService } from './activity/activity.service.js';
import { resourceClientId } from './portals/index.js';
import { errorHandler } from './http/error-handler.js';
import { requestContext } from './http/request-context.js';
import { securityHeaders } from './http/headers.js';
import type { Renderer } from './http/render.js';
import type { Csrf } from './http/csrf.js';
import { PUBLIC_DIR } from './http/paths.js';
import { siteRoutes } from './http/site.routes.js';
import { createInteractions, interactionRoutes, logoutConfirm } from './interactions/index.js';
import type { Metrics } from './metrics/metrics.js';
import type { Tracing } from './metrics/tracing.js';
import type { Telemetry } from './metrics/telemetry.js';
import { createSelfServiceController, selfServiceRoutes, type Flows, type RecoveryJourney, type RegistrationService } from './selfservice/index.js';

export interface AppDeps {
  /** The security events' metadata, stream management and polling (events/ssf.routes.ts): this listener only. */
  ssf?: Router;
  config: Config;
  logger: Logger;
  /** Writes the one line per request (no redaction: the line has only id, method, path, status, time); else `logger`. */
  accessLogger?: Logger;
  store: Store;
  /** The current provider (replaced when signing keys rotate). */
  provider: () => Provider;
  renderer: Renderer;
  csrf: Csrf;
  auth: AuthenticationService;
  audit: AuditService;
  totp: TotpService;
  recovery: RecoveryService;
  passkeys: PasskeyService;
  messageCodes: MessageCodeService;
  notices: FactorNotices;
  sessions: SessionLifecycle;
  /** The account-state table: the citizen's changes (remove a factor, end a session, withdraw a consent) go through it. */
  state: AccountState;
  orgs: OrgService;
  cookieKeys: string[];
  /** Registration and recovery (selfservice/). */
  selfService: { flows: Flows; registration: RegistrationService; recovery: RecoveryJourney };
  /** The account area's own services (account/, activity/). */
  account: { contacts: ContactsService; actions: AccountActions; activity: ActivityService };
  /** Counts and times every request (null or absent with DINHDANH_METRICS=off). */
  metrics?: Metrics | null;
  /** A span per request (metrics/tracing.ts); null or absent without an OTLP endpoint. */
  tracing?: Tracing | null;
  /** Told of what the pages see (a sign-in page shown). */
  telemetry?: Telemetry;
  now?: () => number;
}

const STYLESHEET = fs.readFileSync(path.join(PUBLIC_DIR, 'app.css'));
/** The one script: runs WebAuthn on the passkey forms (same-origin, so `script-src 'self'` allows it). */
const WEBAUTHN_SCRIPT = fs.readFileSync(path.join(PUBLIC_DIR, 'webauthn.js'));

export function buildApp(deps: AppDeps): Koa {
  const { config, provider, renderer } = deps;
  const app = new Koa();
  // koa-mount runs the provider's middleware on this app's context: the cookie keys must match.
  app.keys = deps.cookieKeys;
  app.proxy = config.trustProxyHops > 0;
  app.maxIpsCount = config.trustProxyHops;
  app.silent = true;

  // First, so that every request is traced and counted with the status it finally got, errors
  // included; the trace's span is active for everything after it (the log lines carry its ids).
  if (deps.tracing) app.use(deps.tracing.middleware('public'));
  if (deps.metrics) app.use(deps.metrics.http('public'));
  app.use(requestContext(deps.accessLogger ?? deps.logger, { trustRequestId: config.trustProxyHops > 0 }));
  // One request, one cause: the security events it makes share a `txn` (SSF 1.0 §4.1.8).
  app.use(function securityEventCause(_ctx, next) { return withCause(next); });
  app.use(errorHandler(renderer));
  app.use(securityHeaders({ https: config.issuer.startsWith('https:') }));
  // oidc-provider's own endpoints go straight to it: none of our routes or checks apply to them.
  const serveProvider = providerMount({ provider, issuer: config.issuer });
  const noDownstream = async () => {};
  app.use(async function protocolEndpoints(ctx, next) {
    if (isProtocolPath(ctx.path)) return serveProvider(ctx, noDownstream);
    return next();
  });

  // The operators' console is served on its own listener only (ARCHITECTURE.md rule 13): here
  // /admin is nothing, not even the provider's error page.
  app.use(async function noConsoleHere(ctx, next) {
    if (ctx.path === '/admin' || ctx.path.startsWith('/admin/')) {
      ctx.status = 404;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = 'Not Found';
      return;
    }
    return next();
  });

  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/healthz/ready', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      await deps.store.ping();
      ctx.body = { status: 'ready', store: deps.store.kind };
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', store: deps.store.kind };
    }
  });
  router.get('/static/app.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = STYLESHEET;
  });
  router.get('/static/webauthn.js', (ctx) => {
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = WEBAUTHN_SCRIPT;
  });
  router.get('/favicon.ico', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.status = 204;
  });
  const accountSession = createAccountSessions(provider, deps.store, deps.now ?? Date.now, SESSION_IDLE_MS, deps.sessions);

  const selfService = createSelfServiceController({
    ...deps.selfService,
    factors: deps.store.factors,
    totp: deps.totp,
    recoveryCodes: deps.recovery,
    passkeys: deps.passkeys,
    audit: deps.audit,
    renderer,
    csrf: deps.csrf,
    issuerOrigin: new URL(config.issuer).origin,
    resetWaitMs: config.accountResetWaitMs,
    now: deps.now,
  });
  const interactions = createInteractions(provider);
  const flows = interactionRoutes({
    interactions,
    auth: deps.auth,
    consents: deps.store.consents,
    factors: deps.store.factors,
    persons: deps.store.persons,
    store: deps.store,
    interactionTtlSeconds: TTL.Interaction,
    totp: deps.totp,
    recovery: deps.recovery,
    passkeys: deps.passkeys,
    messageCodes: deps.messageCodes,
    notices: deps.notices,
    sessionLive: async (uid: string) => {
      const t = (deps.now ?? Date.now)();
      const [start, seen] = await Promise.all([deps.store.counters.get(`session-start:${uid}`, t), deps.store.counters.get(`session-seen:${uid}`, t)]);
      return !!start && !!seen;
    },
    audit: deps.audit,
    renderer,
    csrf: deps.csrf,
    issuerOrigin: new URL(config.issuer).origin,
    resourceName: async (uri: string) => (await deps.store.portals.find(resourceClientId(uri)))?.name,
    orgs: deps.orgs,
    orgGrants: deps.store.orgs,
    grantTtlSeconds: TTL.Grant,
    selfService: { begin: selfService.begin, takeHandoff: deps.selfService.flows.takeHandoff },
    telemetry: deps.telemetry,
    now: deps.now,
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  // The landing page, the time-out dialog's script and its keep-alive.
  const site = siteRoutes({ issuer: config.issuer, renderer, csrf: deps.csrf, accountSession });
  app.use(site.routes());
  app.use(site.allowedMethods());
  app.use(flows.routes());
  app.use(flows.allowedMethods());
  if (deps.ssf) {
    app.use(deps.ssf.routes());
    app.use(deps.ssf.allowedMethods());
  }
  const selfServicePages = selfServiceRoutes(selfService);
  app.use(selfServicePages.routes());
  app.use(selfServicePages.allowedMethods());
  const sessionDirectory = createSessionDirectory(deps.store, deps.now ?? Date.now);
  const account = securityRoutes({
    issuer: config.issuer,
    accountSession,
    persons: deps.store.persons,
    factors: deps.store.factors,
    recoveryCodes: deps.store.recoveryCodes,
    totp: deps.totp,
    recovery: deps.recovery,
    passkeys: deps.passkeys,
    oidcStore: deps.store.oidc,
    consents: deps.store.consents,
    portals: deps.store.portals,
    state: deps.state,
    sessions: sessionDirectory,
    orgs: deps.orgs,
    notices: deps.notices,
    auth: deps.auth,
    contacts: deps.account.contacts,
    actions: deps.account.actions,
    activity: deps.account.activity,
    dataExport: createDataExport({
      persons: deps.store.persons, factors: deps.store.factors, recoveryCodes: deps.store.recoveryCodes, consents: deps.store.consents,
      portals: deps.store.portals, orgs: deps.store.orgs, sessions: sessionDirectory, activity: deps.account.activity, now: deps.now,
    }),
    audit: deps.audit,
    renderer,
    csrf: deps.csrf,
    now: deps.now,
  });
  app.use(account.routes());
  app.use(account.allowedMethods());
  app.use(logoutConfirm({
    issuerOrigin: new URL(config.issuer).origin,
    path: '/session/end/confirm',
    // Which portals the sign-out ends is read before oidc-provider changes the session, and they
    // are told (back-channel logout) once it has succeeded.
    async before(ctx) {
      const session = await provider().Session.get(ctx);
      const state = session.state as { clientId?: unknown } | undefined;
      return {
        accountId: session.accountId,
        uid: session.uid,
        refs: portalRefs(session),
        clientId: typeof state?.clientId === 'string' ? state.clientId : undefined,
      };
    },
    async after(snapshot, all) {
      if (!snapshot.accountId) return;
      const refs = all ? snapshot.refs : snapshot.refs.filter((r) => r.clientId === snapshot.clientId);
      await deps.sessions.ended(snapshot.accountId, refs, 'logout');
    },
  }));
  app.use(serveProvider);
  return app;
}
