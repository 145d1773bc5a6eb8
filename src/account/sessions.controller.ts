/**
 * /account/sessions: where the citizen is signed in (device, network, started, last used, portals)
 * and ending one session or all the others — a phone left in a taxi is signed out from here.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuditService } from '../audit/index.js';
import type { PortalRepository } from '../store/index.js';
import { AppError } from '../http/errors.js';
import type { Csrf } from '../http/csrf.js';
import type { MessageKey } from '../http/i18n.js';
import { localeFor } from '../http/locale.js';
import { csrfBinding, formatDate, readAccountPost } from './account-http.js';
import type { Renderer } from '../http/render.js';
import { sessionTimeoutData } from '../http/site.routes.js';
import { describeDevice, describeNetwork } from '../activity/devices.js';
import type { AccountSession, SessionDirectory } from '../provider/account-session.js';
import type { AccountState } from '../accounts/index.js';

export interface SessionsDeps {
  issuer: string;
  accountSession: (ctx: Context) => Promise<AccountSession | undefined>;
  sessions: SessionDirectory;
  state: AccountState;
  portals: PortalRepository;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
}

const endForm = { _csrf: z.string().max(128), session: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) };
const othersForm = { _csrf: z.string().max(128) };

export { describeDevice, describeNetwork } from '../activity/devices.js';

export function createSessionsController(deps: SessionsDeps) {
  const binding = csrfBinding;

  async function render(ctx: Context, session: AccountSession, notice?: MessageKey) {
    const locale = localeFor(ctx);
    const live = await deps.sessions.list(session.accountId);
    const names = new Map<string, string>();
    for (const id of new Set(live.flatMap((s) => s.portals))) names.set(id, (await deps.portals.find(id))?.name ?? id);
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/sessions', locale, (t) => ({
      title: t('account.sessions_title'),
      notice: notice ? t(notice) : null,
      csrf: deps.csrf.token(binding(session)),
      sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(session))),
      others: live.some((s) => s.uid !== session.uid),
      sessions: live.map((s) => ({
        uid: s.uid,
        current: s.uid === session.uid,
        device: describeDevice(s.userAgent),
        network: describeNetwork(s.ip),
        started: t('account.sessions_started', { date: formatDate(s.startedAt, locale) }),
        lastUsed: t('account.last_used', { date: formatDate(s.lastUsedAt, locale) }),
        portals: s.portals.filter((p) => names.has(p) && p !== 'dinhdanh-account').map((p) => names.get(p)!),
      })),
    }));
  }

  const forChange = <T extends z.ZodRawShape>(ctx: Context, shape: T) => readAccountPost(ctx, deps, shape);

  return {
    async show(ctx: Context) {
      const session = await deps.accountSession(ctx);
      if (!session) {
        ctx.status = 303;
        return ctx.redirect('/account/security');
      }
      await render(ctx, session);
    },

    async end(ctx: Context) {
      const { session, form } = await forChange(ctx, endForm);
      const me = { id: session.accountId, status: 'active' as const };
      if (!(await deps.state.apply('end-session', me, { session: form.session }))) throw new AppError('unknown_session', 404, 'error.not_found');
      deps.audit.record('SESSION_ENDED', { person: session.accountId, by: 'citizen', current: form.session === session.uid });
      if (form.session === session.uid) {
        ctx.status = 303;
        return ctx.redirect('/');
      }
      await render(ctx, session, 'account.sessions_ended');
    },

    async endOthers(ctx: Context) {
      const { session } = await forChange(ctx, othersForm);
      const live = await deps.sessions.list(session.accountId);
      let ended = 0;
      const me = { id: session.accountId, status: 'active' as const };
      for (const s of live) if (s.uid !== session.uid) ended += await deps.state.apply('end-session', me, { session: s.uid });
      deps.audit.record('SESSION_ENDED', { person: session.accountId, by: 'citizen', count: ended });
      await render(ctx, session, 'account.sessions_ended');
    },
  };
}
