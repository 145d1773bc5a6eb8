/**
 * /account/portals: the portals a citizen has let receive their data, what each receives (in plain
 * words), since when — and withdrawing it, which revokes every token that consent produced.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuditService } from '../audit/index.js';
import type { ConsentRepository, PortalRepository } from '../store/index.js';
import { AppError } from '../http/errors.js';
import type { Csrf } from '../http/csrf.js';
import type { MessageKey, Translate } from '../http/i18n.js';
import { localeFor } from '../http/locale.js';
import { csrfBinding, formatDate, readAccountPost } from './account-http.js';
import type { Renderer } from '../http/render.js';
import { sessionTimeoutData } from '../http/site.routes.js';
import type { AccountSession } from '../provider/account-session.js';
import type { AccountState } from '../accounts/index.js';
import { resourceClientId } from '../portals/index.js';

const SCOPE_ORDER = ['openid', 'profile', 'email', 'phone', 'address', 'organization', 'national_id', 'offline_access'] as const;

export interface PortalsDeps {
  issuer: string;
  accountSession: (ctx: Context) => Promise<AccountSession | undefined>;
  consents: ConsentRepository;
  portals: PortalRepository;
  state: AccountState;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
}

const revokeForm = { _csrf: z.string().max(128), client: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) };

export function createPortalsController(deps: PortalsDeps) {
  const binding = csrfBinding;

  async function render(ctx: Context, session: AccountSession, notice?: MessageKey) {
    const locale = localeFor(ctx);
    const consents = await deps.consents.listForPerson(session.accountId);
    const rows: Array<{ clientId: string; name: string; scopes: string[]; apis: Array<{ name: string; scopes: string }>; updatedAt: number }> = [];
    for (const c of consents) {
      const portal = await deps.portals.find(c.clientId);
      // An API's scopes are remembered as `<resource>#<scope>` (resource indicators have no fragment).
      const byApi = new Map<string, string[]>();
      for (const entry of c.scopes) {
        const at = entry.lastIndexOf('#');
        if (at > 0) byApi.set(entry.slice(0, at), [...(byApi.get(entry.slice(0, at)) ?? []), entry.slice(at + 1)]);
      }
      const apis = await Promise.all([...byApi].map(async ([uri, list]) => ({
        name: (await deps.portals.find(resourceClientId(uri)))?.name ?? uri,
        scopes: list.join(', '),
      })));
      rows.push({ clientId: c.clientId, name: portal?.name ?? c.clientId, scopes: c.scopes, apis, updatedAt: c.updatedAt });
    }
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/portals', locale, (t: Translate) => ({
      title: t('account.portals_title'),
      notice: notice ? t(notice) : null,
      csrf: deps.csrf.token(binding(session)),
      sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(session))),
      portals: rows.map((r) => ({
        clientId: r.clientId,
        name: r.name,
        since: t('account.portals_since', { date: formatDate(r.updatedAt, locale, false) }),
        items: [...SCOPE_ORDER.filter((s) => r.scopes.includes(s)).map((s) => t(`scope.${s}`)), ...r.apis.map((api) => t('scope.resource', api))],
      })),
    }));
  }

  return {
    async show(ctx: Context) {
      const session = await deps.accountSession(ctx);
      if (!session) {
        ctx.status = 303;
        return ctx.redirect('/account/security');
      }
      await render(ctx, session);
    },

    async revoke(ctx: Context) {
      const { session, form } = await readAccountPost(ctx, deps, revokeForm);
      if (!(await deps.consents.remove(session.accountId, form.client))) throw new AppError('unknown_portal', 404, 'error.not_found');
      // Every grant and token of the person at that portal, from the store — offline ones
      // included, however old (Decree 356/2025/ND-CP: withdrawing consent stops the processing).
      const records = await deps.state.apply('withdraw-consent', { id: session.accountId, status: 'active' }, { clientId: form.client });
      deps.audit.record('CONSENT_REVOKED', { person: session.accountId, portal: form.client, records });
      await render(ctx, session, 'account.portals_revoked');
    },
  };
}
