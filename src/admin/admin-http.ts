/**
 * What every console page shares (the "kit" each section receives): who is signed in (their
 * roles read again from the store at every request, so a removed operator or a changed role
 * holds at once), the role check of every page and action, the fresh-second-factor check of the
 * dangerous ones, checked POSTs (same origin, a live console session, the CSRF token bound to it,
 * a strict form) and rendering in the console's layout.
 */
import type { Context, Middleware, Next } from 'koa';
import type { z } from 'zod';
import type { AuditService } from '../audit/index.js';
import { AppError } from '../http/errors.js';
import { parseForm, readForm } from '../http/body.js';
import { assertCsrf, assertSameOrigin, type Csrf } from '../http/csrf.js';
import { localeFor } from '../http/locale.js';
import type { Locale, MessageKey, Translate } from '../http/i18n.js';
import type { Renderer } from '../http/render.js';
import type { Operator, Person, PersonRepository } from '../store/index.js';
import { maskPid } from '../accounts/index.js';
import type { OperatorsService } from './operators.service.js';
import { AdminError, can, roleFor, type Actor, type Permission } from './roles.js';
import { FRESH_MFA_MS, type ConsoleSession, type ConsoleSessions } from './console-session.js';

export interface ConsoleState {
  session: ConsoleSession;
  person: Person;
  operator: Operator;
  actor: Actor;
}

/** The navigation: each section with the permission that shows it. */
export const NAV: ReadonlyArray<{ href: string; key: MessageKey; permission: Permission }> = [
  { href: '/admin', key: 'admin.nav.dashboard', permission: 'dashboard' },
  { href: '/admin/accounts', key: 'admin.nav.accounts', permission: 'accounts.read' },
  { href: '/admin/portals', key: 'admin.nav.portals', permission: 'portals.read' },
  { href: '/admin/orgs', key: 'admin.nav.orgs', permission: 'orgs.read' },
  { href: '/admin/keys', key: 'admin.nav.keys', permission: 'keys.read' },
  { href: '/admin/approvals', key: 'admin.nav.approvals', permission: 'approvals.read' },
  { href: '/admin/audit', key: 'admin.nav.audit', permission: 'audit.read' },
  { href: '/admin/usage', key: 'admin.nav.usage', permission: 'usage.read' },
  { href: '/admin/operators', key: 'admin.nav.operators', permission: 'operators.read' },
];

export interface AdminKitDeps {
  origin: () => string;
  sessions: ConsoleSessions;
  operators: OperatorsService;
  persons: PersonRepository;
  renderer: Renderer;
  csrf: Csrf;
  audit: AuditService;
  now?: () => number;
}

export type PageData = Record<string, unknown> & { title: string };

export function createAdminKit(deps: AdminKitDeps) {
  const now = deps.now ?? Date.now;
  const binding = (s: ConsoleSession) => `console:${s.id}`;

  function state(ctx: Context): ConsoleState {
    const s = ctx.state.console as ConsoleState | undefined;
    if (!s) throw new AppError('no_session', 401, 'error.session_expired');
    return s;
  }

  /** Loads the operator behind the console session; without one, GET goes to sign in, POST is refused. */
  const signedIn: Middleware = async function consoleSignedIn(ctx: Context, next: Next) {
    const session = await deps.sessions.current(ctx);
    let found: ConsoleState | undefined;
    if (session) {
      const [person, operator] = await Promise.all([deps.persons.findById(session.personId), deps.operators.find(session.personId)]);
      // Everything the person held ended after this session began (a lock, "this wasn't me"), or
      // they are no longer an operator or no longer at level 2: the console session ends too.
      const revoked = person?.accessRevokedBefore !== undefined && person.accessRevokedBefore !== null && person.accessRevokedBefore > session.createdAt;
      if (person && operator && operator.roles.length && person.status === 'active' && person.level === 2 && !revoked) {
        found = { session, person, operator, actor: { id: person.id, roles: operator.roles, via: 'console' } };
      } else {
        await deps.sessions.end(ctx, session);
        deps.audit.record('CONSOLE_SIGNED_OUT', { operator: session.personId, why: !operator ? 'not_operator' : person?.status !== 'active' ? 'account_locked' : 'access_ended' });
      }
    }
    if (!found) {
      if (ctx.method === 'GET' || ctx.method === 'HEAD') {
        ctx.redirect(`/admin/login?return=${encodeURIComponent(ctx.path)}`);
        return;
      }
      throw new AppError('no_session', 401, 'error.session_expired');
    }
    ctx.state.console = found;
    await next();
  };

  /** The page or action needs `permission`; refusals are audited (a probe shows in the log). */
  function need(permission: Permission): Middleware {
    return async function consolePermission(ctx: Context, next: Next) {
      const s = state(ctx);
      if (!can(s.actor.roles, permission)) {
        deps.audit.record('CONSOLE_ACCESS_REFUSED', { operator: s.actor.id, why: 'role', permission, method: ctx.method, path: (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unknown' });
        throw new AppError('forbidden_role', 403, 'admin.error.role');
      }
      await next();
    };
  }

  /**
   * A dangerous action needs a second factor proven in the last five minutes; otherwise the page
   * asks for it again (a new sign-in at dinhdanh with prompt=login) and comes back to `back`.
   */
  function fresh(back: (ctx: Context) => string): Middleware {
    return async function consoleFreshFactor(ctx: Context, next: Next) {
      const s = state(ctx);
      if (now() - s.session.mfaAt > FRESH_MFA_MS) {
        page(ctx, 'admin/reauth', (t) => ({ title: t('admin.reauth.title'), href: `/admin/login?reauth=1&return=${encodeURIComponent(back(ctx))}` }), 403);
        return;
      }
      await next();
    };
  }

  /** A checked POST: same origin (the console's), the session's CSRF token, then a strict form. */
  async function readPost<T extends z.ZodRawShape>(ctx: Context, shape: T): Promise<z.infer<z.ZodObject<T>>> {
    assertSameOrigin(ctx, deps.origin());
    const raw = await readForm(ctx);
    assertCsrf(deps.csrf, binding(state(ctx).session), raw._csrf);
    const { _csrf: _ignored, ...rest } = raw;
    return parseForm(rest, shape);
  }

  function page(ctx: Context, view: string, data: (t: Translate, locale: Locale) => PageData, status = 200): void {
    const locale = localeFor(ctx);
    const s = ctx.state.console as ConsoleState | undefined;
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, view, locale, (t) => {
      const d = data(t, locale);
      return {
        ...d,
        csrf: s ? deps.csrf.token(binding(s.session)) : '',
        operator: s ? { name: s.person.name, pid: maskPid(s.person.pid), roles: s.operator.roles } : null,
        nav: s ? NAV.filter((n) => can(s.actor.roles, n.permission)).map((n) => ({ href: n.href, text: t(n.key), current: n.href === '/admin' ? ctx.path === '/admin' : ctx.path.startsWith(n.href) })) : [],
      };
    }, status);
  }

  /** An AdminError as the page's alert (the detail is the service's English text, marked as such). */
  function refusal(err: unknown): { code: string; status: number; detail: string } {
    // Refusals from below the door: a change the account's state does not allow, or bad input the
    // account or portal services caught (their messages are written for operators).
    if (err instanceof Error && (err.name === 'AccountStateError' || err.name === 'KeyRingError')) return { code: 'conflict', status: 409, detail: err.message };
    if (err instanceof Error && (err.name === 'AccountAdminError' || err.name === 'PortalValidationError' || err.name === 'OrgInputError')) return { code: 'invalid', status: 400, detail: err.message };
    if (!(err instanceof AdminError)) throw err;
    const status = { forbidden: 403, invalid: 400, not_found: 404, conflict: 409 }[err.code];
    return { code: err.code, status, detail: err.message };
  }

  return {
    signedIn, need, fresh, readPost, page, refusal, state,
    actor: (ctx: Context) => state(ctx).actor,
    roleFor: (ctx: Context, p: Permission) => roleFor(state(ctx).actor.roles, p),
    now,
  };
}
export type AdminKit = ReturnType<typeof createAdminKit>;

/** `?page=` cursors and sizes for the console's lists: nothing loads the whole store. */
export const PAGE_SIZE = 25;
export function pageNumber(value: unknown): number {
  return typeof value === 'string' && /^\d{1,5}$/.test(value) ? Math.max(0, Number(value)) : 0;
}
