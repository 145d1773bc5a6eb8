/**
 * The operators' console: a Koa app of its own, served only on the operators' listener
 * (DINHDANH_ADMIN_HOST/PORT; ARCHITECTURE.md rule 13: the public listener answers 404 under
 * /admin). The same error page, security headers (CSP without inline script), CSRF and origin
 * checks and strict form schemas as the citizen pages, and the same two languages.
 *
 * Sign-in: through dinhdanh itself as a first-party client at loa:high (console-client.ts); the
 * console then keeps its own session (console-session.ts).
 */
import { withCause } from '../events/set.js';
import fs from 'node:fs';
import path from 'node:path';
import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Store } from '../store/index.js';
import type { AuditService } from '../audit/index.js';
import type { Renderer } from '../http/render.js';
import type { Csrf } from '../http/csrf.js';
import { errorHandler } from '../http/error-handler.js';
import { requestContext } from '../http/request-context.js';
import { securityHeaders, noStore } from '../http/headers.js';
import { PUBLIC_DIR } from '../http/paths.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import type { PortalService, PortalAdmin } from '../portals/index.js';
import type { OrgService } from '../orgs/index.js';
import type { AccountAdmin } from '../accounts/index.js';
import type { SigningKeys } from '../keys/signing-keys.js';
import type { ActivityService } from '../activity/activity.service.js';
import { maskPid } from '../accounts/index.js';
import type { AdminActions } from './actions.js';
import type { OperatorsService } from './operators.service.js';
import { consoleClient } from './console-client.js';
import { createConsoleSessions, safeReturn } from './console-session.js';
import { createAdminKit, type AdminKit } from './admin-http.js';
import { registerDashboardRoutes } from './sections/dashboard.js';
import { registerAccountRoutes } from './sections/accounts.js';
import { registerPortalRoutes } from './sections/portals.js';
import { registerOrgRoutes } from './sections/orgs.js';
import { registerKeyRoutes } from './sections/keys.js';
import { registerApprovalRoutes } from './sections/approvals.js';
import { registerAuditRoutes } from './sections/audit.js';
import { registerOperatorRoutes } from './sections/operators.js';
import { registerUsageRoutes, type UsageReader } from './sections/usage.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Tracing } from '../metrics/tracing.js';
import { metricsRoutes } from '../metrics/metrics.routes.js';
import crypto from 'node:crypto';

export interface ConsoleDeps {
  config: Config;
  logger: Logger;
  accessLogger?: Logger;
  store: Store;
  renderer: Renderer;
  csrf: Csrf;
  cookieKeys: string[];
  audit: AuditService;
  portals: PortalService;
  portalAdmin: PortalAdmin;
  orgs: OrgService;
  accountAdmin: AccountAdmin;
  signingKeys: SigningKeys;
  /** Picks up a key change at once on this instance (the others within a minute). */
  reloadKeys: () => Promise<boolean>;
  activity: ActivityService;
  operators: OperatorsService;
  actions: AdminActions;
  /** The console's origin as operators' browsers see it (DINHDANH_ADMIN_URL, or the listener's). */
  origin: () => string;
  /** Prometheus metrics (GET /metrics here); null or absent with DINHDANH_METRICS=off. */
  metrics?: Metrics | null;
  /** A span per request (metrics/tracing.ts); null or absent without an OTLP endpoint. */
  tracing?: Tracing | null;
  /** The usage statistics' reports (metrics/usage.report.ts) for /admin/usage and a portal's funnel; null or absent: the pages say statistics are off. */
  usageReports?: UsageReader | null;
  now?: () => number;
}

/** What each section's routes receive. */
export interface SectionDeps extends ConsoleDeps {
  kit: AdminKit;
}

const STYLESHEET = fs.readFileSync(path.join(PUBLIC_DIR, 'app.css'));
const ADMIN_STYLESHEET = fs.readFileSync(path.join(PUBLIC_DIR, 'admin.css'));

export function buildAdminApp(deps: ConsoleDeps): Koa & { client: ReturnType<typeof consoleClient> } {
  const now = deps.now ?? Date.now;
  const app = new Koa();
  app.keys = deps.cookieKeys;
  // Behind its own TLS proxy only when DINHDANH_ADMIN_URL says so.
  app.proxy = deps.config.admin.url !== null && deps.config.trustProxyHops > 0;
  app.maxIpsCount = deps.config.trustProxyHops;
  app.silent = true;
  if (deps.tracing) app.use(deps.tracing.middleware('admin'));
  if (deps.metrics) app.use(deps.metrics.http('admin'));
  app.use(requestContext((deps.accessLogger ?? deps.logger).child({ listener: 'admin' }), { trustRequestId: app.proxy }));
  // One request, one cause: the security events it makes share a `txn` (SSF 1.0 §4.1.8).
  app.use(function securityEventCause(_ctx, next) { return withCause(next); });
  app.use(errorHandler(deps.renderer));
  app.use(securityHeaders({ https: deps.config.admin.url?.startsWith('https:') ?? false }));
  // For scrapers, before anything of the console's sign-in (metrics.routes.ts).
  app.use(metricsRoutes({ metrics: deps.metrics ?? null, token: deps.config.metrics.token }).routes());

  const sessions = createConsoleSessions({ oidc: deps.store.oidc, https: deps.config.admin.url?.startsWith('https:') ?? false, now: deps.now });
  const client = consoleClient({ issuer: deps.config.issuer, origin: deps.origin, cookieKeys: deps.cookieKeys, portals: deps.portals });
  const kit = createAdminKit({ origin: deps.origin, sessions, operators: deps.operators, persons: deps.store.persons, renderer: deps.renderer, csrf: deps.csrf, audit: deps.audit, now: deps.now });

  const open = new Router();
  open.get('/static/app.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = STYLESHEET;
  });
  open.get('/static/admin.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = ADMIN_STYLESHEET;
  });
  open.get('/', (ctx) => ctx.redirect('/admin'));

  // Sign-in: the authorization request (a new one for a step-up), then the callback.
  open.get('/admin/login', noStore, async (ctx) => {
    rememberLocale(ctx);
    const reauth = ctx.query.reauth === '1';
    const login = {
      state: crypto.randomBytes(24).toString('base64url'), nonce: crypto.randomBytes(24).toString('base64url'), verifier: crypto.randomBytes(32).toString('base64url'),
      returnTo: safeReturn(ctx.query.return), at: now(),
    };
    await sessions.beginLogin(ctx, login);
    ctx.redirect(await client.authorizationUrl({ ...login, reauth, locale: localeFor(ctx) }));
  });
  open.get('/admin/callback', noStore, async (ctx) => {
    const login = await sessions.takeLogin(ctx);
    if (!login) {
      kit.page(ctx, 'admin/signin-problem', (t) => ({ title: t('admin.signin.title'), alert: t('admin.signin.expired') }), 400);
      return;
    }
    const result = await client.redeem(new URL(ctx.originalUrl, deps.origin()), login);
    if (!result.ok) {
      const unmet = result.error === 'unmet_authentication_requirements';
      deps.audit.record('CONSOLE_ACCESS_REFUSED', { why: unmet ? 'level' : 'sign_in_failed', error: result.error });
      kit.page(ctx, 'admin/signin-problem', (t) => ({
        title: t('admin.signin.title'),
        alert: t(unmet ? 'admin.signin.need_high' : result.error === 'access_denied' ? 'admin.signin.denied' : 'admin.signin.failed'),
        howTo: unmet, error: result.error,
      }), unmet ? 403 : 400);
      return;
    }
    const person = result.nationalId ? await deps.store.persons.findByPid(result.nationalId) : undefined;
    const operator = person ? await deps.operators.find(person.id) : undefined;
    // The provider only issues loa:high to level-2 people with an app or passkey; checked again here.
    if (!person || !operator || operator.roles.length === 0 || result.acr !== 'urn:dinhdanh:loa:high') {
      deps.audit.record('CONSOLE_ACCESS_REFUSED', { why: !person || !operator ? 'not_operator' : 'level', ...(person ? { person: person.id, pid: maskPid(person.pid) } : {}), acr: result.acr });
      kit.page(ctx, 'admin/signin-problem', (t) => ({ title: t('admin.signin.title'), alert: t(person && operator ? 'admin.signin.need_high' : 'admin.signin.not_operator'), howTo: !!(person && operator) }), 403);
      return;
    }
    const current = await sessions.current(ctx);
    // auth_time is on the provider's clock (the real one); the console dates the factor on its own
    // clock, by how long ago it was proven.
    const mfaAt = now() - Math.max(0, Date.now() - result.authTime);
    if (current && current.personId === person.id) {
      await sessions.refreshed(current, mfaAt, result.idToken);
    } else {
      if (current) await sessions.end(ctx, current);
      await sessions.start(ctx, { personId: person.id, mfaAt, idToken: result.idToken });
      deps.audit.record('CONSOLE_SIGNED_IN', { operator: person.id, roles: operator.roles, acr: result.acr, amr: result.amr });
    }
    ctx.redirect(login.returnTo);
  });
  open.get('/admin/signed-out', noStore, (ctx) => {
    kit.page(ctx, 'admin/signed-out', (t) => ({ title: t('admin.signed_out.title') }));
  });
  app.use(open.routes());
  app.use(open.allowedMethods());

  const router = new Router();
  router.use('/admin', noStore, kit.signedIn);
  router.post('/admin/logout', async (ctx) => {
    await kit.readPost(ctx, {});
    const s = kit.state(ctx);
    await sessions.end(ctx, s.session);
    deps.audit.record('CONSOLE_SIGNED_OUT', { operator: s.actor.id, why: 'logout' });
    ctx.status = 303;
    ctx.redirect(await client.endSessionUrl(s.session.idToken));
  });
  const section = { ...deps, kit };
  registerDashboardRoutes(router, section);
  registerAccountRoutes(router, section);
  registerPortalRoutes(router, section);
  registerOrgRoutes(router, section);
  registerKeyRoutes(router, section);
  registerApprovalRoutes(router, section);
  registerAuditRoutes(router, section);
  registerOperatorRoutes(router, section);
  registerUsageRoutes(router, section);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return Object.assign(app, { client });
}
