/**
 * /account/organizations: a legal representative delegates staff to act for the enterprise (a role,
 * an optional last day) and revokes them; everyone sees the enterprises they may act for.
 * Changes need a recent sign-in (re-authentication), like every change in the account area.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { Translate, MessageKey } from '../http/i18n.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import type { Renderer } from '../http/render.js';
import { sessionTimeoutData } from '../http/site.routes.js';
import type { Csrf } from '../http/csrf.js';
import { OrgInputError, LEGAL_REPRESENTATIVE, type OrgInputProblem, type OrgService } from '../orgs/index.js';
import type { AccountSession } from '../provider/account-session.js';
import { csrfBinding, formatDate } from './account-http.js';
import type { ReauthBack } from './security.controller.js';

export interface OrganizationsDeps {
  orgs: OrgService;
  renderer: Renderer;
  csrf: Csrf;
  requireSession(ctx: Context): Promise<AccountSession | undefined>;
  forChange<T extends z.ZodRawShape>(ctx: Context, shape: T, back?: ReauthBack): Promise<{ session: AccountSession; form: z.infer<z.ZodObject<T>> } | undefined>;
}

const CODE = z.string().max(32);
const delegateForm = {
  _csrf: z.string().max(128),
  code: CODE,
  pid: z.string().max(32),
  full_name: z.string().max(200),
  role: z.string().max(64),
  until: z.string().max(16).optional(),
};
const revokeForm = { _csrf: z.string().max(128), code: CODE, person: z.string().uuid() };

const PROBLEMS: Record<OrgInputProblem, MessageKey> = {
  code: 'account.orgs_error_code',
  name: 'account.orgs_error_other',
  role: 'account.orgs_error_role',
  until: 'account.orgs_error_until',
  pid: 'account.orgs_error_pid',
  no_account: 'account.orgs_error_no_account',
  rate_limited: 'account.orgs_error_rate',
  already_representative: 'account.orgs_error_representative',
  forbidden: 'account.orgs_error_forbidden',
  other: 'account.orgs_error_other',
};

const STATUS: Partial<Record<OrgInputProblem, number>> = { forbidden: 403, rate_limited: 429 };

export function createOrganizationsController(deps: OrganizationsDeps) {
  async function render(ctx: Context, session: AccountSession, opts: { notice?: MessageKey; error?: MessageKey; status?: number } = {}) {
    const locale = localeFor(ctx);
    const { managed, mine } = await deps.orgs.overview(session.accountId);
    const day = (ms: number) => formatDate(ms - 1, locale, false);
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/organizations', locale, (t: Translate) => ({
      title: t('account.orgs_title'),
      notice: opts.notice ? t(opts.notice) : null,
      error: opts.error ? t(opts.error) : null,
      csrf: deps.csrf.token(csrfBinding(session)),
      sessionTimeout: sessionTimeoutData(deps.csrf.token(csrfBinding(session))),
      managed: managed.map(({ enterprise, delegations }) => ({
        code: enterprise.code,
        name: enterprise.name,
        suspended: enterprise.status !== 'active',
        delegations: delegations.map((d) => ({
          person: d.personId,
          who: `${d.name ?? '—'} (…${d.pidTail ?? '???'})`,
          detail: [d.role, d.until !== null ? t('org.until', { date: day(d.until) }) : null, d.portals ? t('account.orgs_some_portals', { n: String(d.portals.length) }) : null]
            .filter(Boolean).join(' · '),
        })),
      })),
      mine: mine.map((d) => ({
        name: d.enterpriseName,
        code: d.enterpriseCode,
        detail: [d.role === LEGAL_REPRESENTATIVE ? t('org.role_legal') : t('org.role_delegated', { role: d.role }), d.until !== null ? t('org.until', { date: day(d.until) }) : null]
          .filter(Boolean).join(' · '),
      })),
    }), opts.status ?? 200);
  }

  return {
    async show(ctx: Context) {
      rememberLocale(ctx);
      const session = await deps.requireSession(ctx);
      if (session) await render(ctx, session, { notice: ctx.query.reauth === '1' ? 'account.reauth' : undefined });
    },

    async delegate(ctx: Context) {
      const change = await deps.forChange(ctx, delegateForm, 'organizations');
      if (!change) return;
      const { session, form } = change;
      try {
        await deps.orgs.delegate({ code: form.code, pid: form.pid.trim(), fullName: form.full_name, role: form.role.trim(), until: form.until || undefined }, { personId: session.accountId });
      } catch (err) {
        if (err instanceof OrgInputError) return render(ctx, session, { error: PROBLEMS[err.problem], status: STATUS[err.problem] ?? 400 });
        throw err;
      }
      await render(ctx, session, { notice: 'account.orgs_delegated' });
    },

    async revoke(ctx: Context) {
      const change = await deps.forChange(ctx, revokeForm, 'organizations');
      if (!change) return;
      const { session, form } = change;
      try {
        const revoked = await deps.orgs.revokePerson(form.code, form.person, { personId: session.accountId });
        return render(ctx, session, revoked ? { notice: 'account.orgs_revoked' } : { error: 'account.orgs_error_none', status: 404 });
      } catch (err) {
        if (err instanceof OrgInputError) return render(ctx, session, { error: PROBLEMS[err.problem], status: STATUS[err.problem] ?? 400 });
        throw err;
      }
    },
  };
}
