/**
 * /account/activity: the person's own history, six months, newest first, paged, each sign-in with
 * "this wasn't me". /account/data: everything held about them as a download, and "lock my account".
 * /account/not-me/<token>: the new-browser notice's link, which works without signing in (whoever
 * took the account may have changed nothing yet, but the owner may not be able to sign in).
 *
 * "This wasn't me" and "lock my account" protect the person: they need a live session (or the
 * link) but not a recent sign-in, and take effect at once.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuditService } from '../audit/index.js';
import type { ActivityEntry, PortalRepository } from '../store/index.js';
import { AppError } from '../http/errors.js';
import { parseForm, readForm } from '../http/body.js';
import { assertCsrf, assertSameOrigin, type Csrf } from '../http/csrf.js';
import { translator, type MessageKey, type Translate } from '../http/i18n.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import type { Renderer } from '../http/render.js';
import { sessionTimeoutData } from '../http/site.routes.js';
import { ACCOUNT_CLIENT_ID, type AccountSession } from '../provider/account-session.js';
import { LOA } from '../provider/levels.js';
import { csrfBinding, formatDate, readAccountPost } from './account-http.js';
import type { ReauthBack } from './security.controller.js';
import type { ActivityService } from '../activity/activity.service.js';
import type { AccountActions } from './account-actions.js';
import type { DataExport } from './export.service.js';

export interface ActivityDeps {
  issuer: string;
  accountSession: (ctx: Context) => Promise<AccountSession | undefined>;
  activity: ActivityService;
  actions: AccountActions;
  dataExport: DataExport;
  portals: PortalRepository;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
  requireSession(ctx: Context, back?: ReauthBack): Promise<AccountSession | undefined>;
  requireRecent(ctx: Context, back: ReauthBack): Promise<AccountSession | undefined>;
}

const CSRF = z.string().max(128);
const notMeForm = { _csrf: CSRF, not_me: z.string().uuid() };
const lockForm = { _csrf: CSRF, lock: z.literal('lock') };
const linkForm = { _csrf: CSRF };
const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The words of one history line. */
function describe(e: ActivityEntry, t: Translate, portalName: (id: string) => string): { what: string; detail: string } {
  const d = e.details;
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : '');
  const portal = str('portal') ? portalName(str('portal')) : '';
  const level = str('acr') === LOA.high ? t('acct_home.acr_high') : str('acr') === LOA.substantial ? t('acct_home.acr_substantial') : str('acr') ? t('acct_home.acr_low') : '';
  const where = [str('device'), str('network') ? t('activity.network', { network: str('network') }) : ''].filter(Boolean).join(' · ');
  const key = `activity.event.${e.event}` as MessageKey;
  const what = t(key) === key ? e.event : t(key);
  switch (e.event) {
    case 'SIGN_IN_COMPLETED':
      return { what, detail: [portal, level, where, d.new_browser === true ? t('activity.new_browser') : ''].filter(Boolean).join(' · ') };
    case 'CONSENT_GRANTED':
    case 'CONSENT_REVOKED':
      return { what, detail: portal };
    case 'ACCOUNT_LOCKED':
    case 'ACCOUNT_UNLOCKED':
    case 'ACCOUNT_LEVEL_CHANGED':
    case 'ACCOUNT_MFA_RESET':
    case 'ACCOUNT_ATTENTION_CLEARED':
      return { what, detail: t('activity.by_role', { role: t(str('by') === 'helpdesk' ? 'activity.role_helpdesk' : 'activity.role_operator') }) };
    default:
      return { what, detail: [str('masked'), portal, where].filter(Boolean).join(' · ') };
  }
}

export function createActivityController(deps: ActivityDeps) {
  const token = (session: AccountSession) => deps.csrf.token(csrfBinding(session));
  const linkBinding = (key: string) => `not-me:${key}`;

  /** Portal names of the lines; the account area itself (a static client, not in the store) in the page's language. */
  async function portalNames(entries: ActivityEntry[], t: Translate): Promise<(id: string) => string> {
    const names = new Map<string, string>();
    for (const id of new Set(entries.map((e) => e.details.portal).filter((p): p is string => typeof p === 'string'))) {
      names.set(id, (await deps.portals.find(id))?.name ?? (id === ACCOUNT_CLIENT_ID ? t('acct_home.title') : id));
    }
    return (id) => names.get(id) ?? id;
  }

  function done(ctx: Context, title: MessageKey, paragraphs: MessageKey[], link?: { href: string; text: MessageKey }) {
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'message', localeFor(ctx), (t) => ({
      title: t(title),
      paragraphs: paragraphs.map((p) => t(p)),
      link: link ? { href: link.href, text: t(link.text) } : null,
    }));
  }

  return {
    async activity(ctx: Context) {
      rememberLocale(ctx);
      const session = await deps.requireSession(ctx, 'activity');
      if (!session) return;
      const locale = localeFor(ctx);
      // Lines of this process's own recent events are written in the background: wait for them.
      await deps.activity.settled();
      const before = typeof ctx.query.before === 'string' ? ctx.query.before.slice(0, 64) : undefined;
      const { entries, next } = await deps.activity.page(session.accountId, before);
      const nameOf = await portalNames(entries, translator(locale));
      ctx.set('Cache-Control', 'no-store');
      deps.renderer.render(ctx, 'account/activity', locale, (t) => ({
        title: t('activity.title'),
        csrf: token(session),
        sessionTimeout: sessionTimeoutData(token(session)),
        rows: entries.map((e) => ({
          id: e.id,
          when: formatDate(e.at, locale),
          iso: new Date(e.at).toISOString(),
          signIn: e.event === 'SIGN_IN_COMPLETED',
          failed: e.details.kind === 'signin_failed' || e.details.kind === 'lockout' || e.details.kind === 'second_factor_failed',
          ...describe(e, t, nameOf),
        })),
        nextHref: next ? `/account/activity?before=${encodeURIComponent(next)}` : null,
        firstHref: before ? '/account/activity' : null,
      }));
    },

    /** "This wasn't me" on a sign-in line: everything ends, this session too. */
    async notMe(ctx: Context) {
      const { session, form } = await readAccountPost(ctx, deps, notMeForm);
      const entry = await deps.activity.find(session.accountId, form.not_me);
      if (!entry || entry.event !== 'SIGN_IN_COMPLETED') throw new AppError('unknown_entry', 404, 'error.not_found');
      if (!(await deps.actions.reportNotMe(session.accountId, 'activity', localeFor(ctx)))) throw new AppError('account_unavailable', 409, 'error.session_expired');
      done(ctx, 'notme.done_title', ['notme.done_body', 'notme.done_next'], { href: '/recover', text: 'notme.recover_link' });
    },

    async data(ctx: Context) {
      rememberLocale(ctx);
      const session = await deps.requireSession(ctx, 'data');
      if (!session) return;
      ctx.set('Cache-Control', 'no-store');
      deps.renderer.render(ctx, 'account/data', localeFor(ctx), (t) => ({
        title: t('data.title'),
        notice: ctx.query.reauth === '1' ? t('data.reauth') : null,
        csrf: token(session),
        sessionTimeout: sessionTimeoutData(token(session)),
      }));
    },

    /**
     * The download: a GET (a link), for this browser's session signed in within the last 5 minutes
     * (the file holds the full identification number and every contact, which the pages mask: a
     * browser left signed in must not hand them over).
     */
    async exportData(ctx: Context) {
      const session = await deps.requireRecent(ctx, 'data');
      if (!session) return;
      const data = await deps.dataExport.build(session.accountId);
      if (!data) throw new AppError('no_session', 401, 'error.session_expired');
      const body = JSON.stringify(data, null, 2);
      deps.audit.record('DATA_EXPORTED', { person: session.accountId, bytes: Buffer.byteLength(body) });
      ctx.set('Cache-Control', 'no-store');
      ctx.set('Content-Disposition', `attachment; filename="dinhdanh-${new Date().toISOString().slice(0, 10)}.json"`);
      ctx.type = 'application/json; charset=utf-8';
      ctx.body = body;
    },

    async lock(ctx: Context) {
      const { session } = await readAccountPost(ctx, deps, lockForm);
      if (!(await deps.actions.selfLock(session.accountId, localeFor(ctx)))) throw new AppError('account_unavailable', 409, 'error.session_expired');
      done(ctx, 'lock.done_title', ['lock.done_body', 'lock.done_unlock']);
    },

    /** The notice's link: a page with a button (SMS apps open links to preview them). */
    async notMeLink(ctx: Context) {
      rememberLocale(ctx);
      const raw = String(ctx.params.token ?? '');
      const link = LINK_TOKEN.test(raw) ? await deps.actions.openNotMeLink(raw) : undefined;
      ctx.set('Cache-Control', 'no-store');
      if (!link) return done(ctx, 'notme.link_gone_title', ['notme.link_gone_body'], { href: '/recover', text: 'notme.recover_link' });
      const locale = localeFor(ctx);
      deps.renderer.render(ctx, 'account/not-me', locale, (t) => ({
        title: t('notme.title'),
        csrf: deps.csrf.token(linkBinding(link.key)),
        action: `/account/not-me/${raw}`,
        when: formatDate(link.at, locale),
        device: link.device,
        network: link.network,
      }));
    },

    async notMeLinkPress(ctx: Context) {
      assertSameOrigin(ctx, new URL(deps.issuer).origin);
      const raw = String(ctx.params.token ?? '');
      const body = await readForm(ctx);
      const link = LINK_TOKEN.test(raw) ? await deps.actions.openNotMeLink(raw) : undefined;
      if (!link) return done(ctx, 'notme.link_gone_title', ['notme.link_gone_body'], { href: '/recover', text: 'notme.recover_link' });
      assertCsrf(deps.csrf, linkBinding(link.key), body._csrf);
      parseForm(body, linkForm);
      const personId = await deps.actions.useNotMeLink(raw);
      if (!personId) return done(ctx, 'notme.link_gone_title', ['notme.link_gone_body'], { href: '/recover', text: 'notme.recover_link' });
      await deps.actions.reportNotMe(personId, 'notice', localeFor(ctx));
      done(ctx, 'notme.done_title', ['notme.done_body', 'notme.done_next'], { href: '/recover', text: 'notme.recover_link' });
    },
  };
}
