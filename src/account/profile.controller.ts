/**
 * The account area's home (/account), the person's details and contacts (/account/profile) and the
 * password (/account/password). Same rules as every account page: a first-party sign-in, changes
 * need one in the last 5 minutes, every POST same-origin with its CSRF token and a strict form; a
 * change of a contact also asks for the current password (ASVS 5.0 7.5.1) and offers to end the
 * other sessions (7.4.3).
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { PersonRepository } from '../store/index.js';
import { primaryContact } from '../store/contacts.js';
import { maskPid } from '../accounts/index.js';
import { AppError } from '../http/errors.js';
import type { Csrf } from '../http/csrf.js';
import type { MessageKey, Translate } from '../http/i18n.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import type { Renderer } from '../http/render.js';
import { sessionTimeoutData } from '../http/site.routes.js';
import type { AccountSession } from '../provider/account-session.js';
import { LOA } from '../provider/levels.js';
import { csrfBinding, formatDate } from './account-http.js';
import type { ReauthBack } from './security.controller.js';
import { reauthFields } from './security.controller.js';
import { maskContact, type ContactError, type ContactsService } from './contacts.service.js';
import type { AccountActions, PasswordChange } from './account-actions.js';

export interface ProfileDeps {
  persons: PersonRepository;
  contacts: ContactsService;
  actions: AccountActions;
  renderer: Renderer;
  csrf: Csrf;
  requireSession(ctx: Context, back?: ReauthBack): Promise<AccountSession | undefined>;
  forChange<T extends z.ZodRawShape>(ctx: Context, shape: T, back?: ReauthBack, options?: { secondFactor?: boolean }): Promise<{ session: AccountSession; form: z.infer<z.ZodObject<T>> } | undefined>;
  confirmPassword(session: AccountSession, password: string, action: string, render: (error: MessageKey, status: number) => Promise<void>): Promise<boolean>;
  endOthers(session: AccountSession, asked: string | undefined): Promise<number>;
}

const CSRF = z.string().max(128);
const CONTACT_ID = z.string().regex(/^[A-Za-z0-9-]{1,64}$/);
const addForm = { _csrf: CSRF, phone: z.string().max(64).optional(), email: z.string().max(320).optional(), ...reauthFields };
const verifyForm = { _csrf: CSRF, contact: CONTACT_ID, ...reauthFields };
const codeForm = { _csrf: CSRF, code: z.string().max(64), end_others: z.literal('on').optional() };
const removeForm = { _csrf: CSRF, contact: CONTACT_ID, ...reauthFields };
const noticeForm = { _csrf: CSRF, notice: z.union([CONTACT_ID, z.literal('all')]), ...reauthFields };
const passwordForm = { _csrf: CSRF, current_password: z.string().max(1024), password: z.string().max(1024), password_confirm: z.string().max(1024) };

const CONTACT_ERRORS: Record<ContactError, MessageKey> = {
  format: 'profile.error_format',
  not_mobile: 'profile.error_not_mobile',
  exists: 'profile.error_exists',
  too_many: 'profile.error_too_many',
  unknown: 'profile.error_unknown',
  already_verified: 'profile.error_already_verified',
  last_verified: 'profile.error_last_verified',
  not_verified: 'profile.error_not_verified',
  rate_limited: 'profile.error_rate_limited',
  unavailable: 'profile.error_unavailable',
  changed: 'profile.error_changed',
};
const CONTACT_STATUS: Partial<Record<ContactError, number>> = { rate_limited: 429, unknown: 404, unavailable: 503, changed: 409 };

const PASSWORD_ERRORS: Record<Exclude<PasswordChange, { ok: true }>['reason'], MessageKey> = {
  wrong_current: 'account.password_wrong',
  throttled: 'account.password_throttled',
  mismatch: 'password.mismatch',
  too_short: 'password.too_short',
  too_long: 'password.too_long',
  common: 'password.common',
  contains_personal: 'password.contains_personal',
  invalid: 'password.invalid',
  same_as_old: 'password.same_as_old',
  unavailable: 'error.session_expired',
};

/** The identity level in words, and how to raise it (Decree 69/2024/ND-CP: level 2 needs the citizen's presence). */
function levelText(level: 1 | 2, t: Translate) {
  return level === 2 ? { level: t('acct_home.level2'), raise: null } : { level: t('acct_home.level1'), raise: t('acct_home.raise') };
}

export function createProfileController(deps: ProfileDeps) {
  const token = (session: AccountSession) => deps.csrf.token(csrfBinding(session));
  const common = (session: AccountSession, t: Translate) => ({ csrf: token(session), sessionTimeout: sessionTimeoutData(token(session)), backText: t('account.home_back') });

  async function person(session: AccountSession) {
    const p = await deps.persons.findById(session.accountId);
    if (!p) throw new AppError('no_session', 401, 'error.session_expired');
    return p;
  }

  async function renderProfile(ctx: Context, session: AccountSession, opts: { notice?: MessageKey; error?: MessageKey; field?: 'phone' | 'email'; status?: number } = {}) {
    const locale = localeFor(ctx);
    const p = await person(session);
    const primary = { phone: primaryContact(p.contacts, 'phone')?.id, email: primaryContact(p.contacts, 'email')?.id };
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/profile', locale, (t) => ({
      title: t('profile.title'),
      ...common(session, t),
      notice: opts.notice ? t(opts.notice) : null,
      error: opts.error ? t(opts.error) : null,
      errorField: opts.field ?? null,
      details: [
        { label: t('profile.name'), value: p.name },
        { label: t('profile.pid'), value: maskPid(p.pid) },
        { label: t('profile.birthdate'), value: formatDate(Date.parse(`${p.birthdate}T12:00:00Z`), locale, false) },
        { label: t('profile.gender'), value: t(p.gender === 'male' ? 'profile.male' : 'profile.female') },
      ],
      contacts: p.contacts.map((c) => ({
        id: c.id,
        kind: t(c.kind === 'phone' ? 'profile.kind_phone' : 'profile.kind_email'),
        value: c.value,
        masked: maskContact(c),
        verified: c.verified,
        status: c.verified ? t('profile.verified', { date: formatDate(c.verifiedAt ?? c.addedAt, locale, false) }) : t('profile.unverified'),
        primary: primary[c.kind] === c.id,
        forNotices: p.noticeContact === c.id,
      })),
      noticeAll: p.noticeContact === null,
    }), opts.status ?? 200);
  }

  async function renderCode(ctx: Context, session: AccountSession, opts: { error?: MessageKey; status?: number } = {}) {
    const pending = await deps.contacts.pending(session.accountId, session.uid);
    if (!pending) return renderProfile(ctx, session, { error: 'profile.error_no_code', status: 400 });
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/contact-code', localeFor(ctx), (t) => ({
      title: t('profile.code_title'),
      ...common(session, t),
      intro: t('profile.code_intro', { to: pending.masked }),
      error: opts.error ? t(opts.error) : null,
    }), opts.status ?? 200);
  }

  function renderPassword(ctx: Context, session: AccountSession, hasFactor: boolean, opts: { notice?: MessageKey; error?: MessageKey; status?: number } = {}) {
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/password', localeFor(ctx), (t) => ({
      title: t('password_page.title'),
      ...common(session, t),
      hint: t(hasFactor ? 'password_page.hint_mfa' : 'password_page.hint'),
      notice: opts.notice ? t(opts.notice) : null,
      error: opts.error ? t(opts.error) : null,
    }), opts.status ?? 200);
  }

  /** A failed contact change shown on the profile page with its message. */
  const contactError = (ctx: Context, session: AccountSession, reason: ContactError, field?: 'phone' | 'email') =>
    renderProfile(ctx, session, { error: CONTACT_ERRORS[reason], field, status: CONTACT_STATUS[reason] ?? 400 });

  return {
    async home(ctx: Context) {
      rememberLocale(ctx);
      const session = await deps.requireSession(ctx, 'home');
      if (!session) return;
      const locale = localeFor(ctx);
      const p = await person(session);
      ctx.set('Cache-Control', 'no-store');
      deps.renderer.render(ctx, 'account/home', locale, (t) => ({
        title: t('acct_home.title'),
        ...common(session, t),
        name: p.name,
        pid: maskPid(p.pid),
        ...levelText(p.level, t),
        signedInAt: t('acct_home.signed_in_level', {
          level: t(session.acr === LOA.high ? 'acct_home.acr_high' : session.acr === LOA.substantial ? 'acct_home.acr_substantial' : 'acct_home.acr_low'),
        }),
        sections: [
          { href: '/account/profile', text: t('acct_home.profile'), hint: t('acct_home.profile_hint') },
          { href: '/account/password', text: t('acct_home.password'), hint: t('acct_home.password_hint') },
          { href: '/account/security', text: t('acct_home.security'), hint: t('acct_home.security_hint') },
          { href: '/account/sessions', text: t('account.sessions_link'), hint: t('acct_home.sessions_hint') },
          { href: '/account/portals', text: t('account.portals_link'), hint: t('acct_home.portals_hint') },
          { href: '/account/organizations', text: t('account.orgs_link'), hint: t('acct_home.orgs_hint') },
          { href: '/account/activity', text: t('acct_home.activity'), hint: t('acct_home.activity_hint') },
          { href: '/account/data', text: t('acct_home.data'), hint: t('acct_home.data_hint') },
        ],
      }));
    },

    async profile(ctx: Context) {
      rememberLocale(ctx);
      const session = await deps.requireSession(ctx, 'profile');
      if (session) await renderProfile(ctx, session, { notice: ctx.query.reauth === '1' ? 'account.reauth' : undefined });
    },

    async add(ctx: Context) {
      const change = await deps.forChange(ctx, addForm, 'profile');
      if (!change) return;
      const { session, form } = change;
      const phone = form.phone?.trim() ?? '';
      const email = form.email?.trim() ?? '';
      // Exactly one of the two fields (the page has a form for each).
      if ((phone === '') === (email === '')) return contactError(ctx, session, 'format', phone ? 'phone' : 'email');
      const kind = phone ? 'phone' : 'email';
      if (!(await deps.confirmPassword(session, form.current_password, 'add_contact', (e, st) => renderProfile(ctx, session, { error: e, status: st })))) return;
      const started = await deps.contacts.startAdd(session.accountId, session.uid, kind, phone || email, localeFor(ctx));
      if (!started.ok) {
        if (started.retryAfterMs) ctx.set('Retry-After', String(Math.ceil(started.retryAfterMs / 1000)));
        return contactError(ctx, session, started.reason, kind);
      }
      await renderCode(ctx, session);
    },

    async verify(ctx: Context) {
      const change = await deps.forChange(ctx, verifyForm, 'profile');
      if (!change) return;
      const { session, form } = change;
      if (!(await deps.confirmPassword(session, form.current_password, 'verify_contact', (e, st) => renderProfile(ctx, session, { error: e, status: st })))) return;
      const started = await deps.contacts.startVerify(session.accountId, session.uid, form.contact, localeFor(ctx));
      if (!started.ok) {
        if (started.retryAfterMs) ctx.set('Retry-After', String(Math.ceil(started.retryAfterMs / 1000)));
        return contactError(ctx, session, started.reason);
      }
      await renderCode(ctx, session);
    },

    /** The code sent to the contact: a code is proof of the contact, so no password again here. */
    async code(ctx: Context) {
      const change = await deps.forChange(ctx, codeForm, 'profile');
      if (!change) return;
      const { session, form } = change;
      const result = await deps.contacts.confirm(session.accountId, session.uid, form.code, localeFor(ctx));
      if (!result.ok) {
        if (result.reason === 'invalid') return renderCode(ctx, session, { error: 'selfservice.code_invalid', status: 400 });
        if (result.reason === 'changed') return contactError(ctx, session, 'changed');
        return renderProfile(ctx, session, { error: result.reason === 'locked' ? 'selfservice.code_locked' : 'selfservice.code_expired', status: result.reason === 'locked' ? 429 : 400 });
      }
      await deps.endOthers(session, form.end_others);
      await renderProfile(ctx, session, { notice: 'profile.added' });
    },

    async remove(ctx: Context) {
      const change = await deps.forChange(ctx, removeForm, 'profile', { secondFactor: true });
      if (!change) return;
      const { session, form } = change;
      if (!(await deps.confirmPassword(session, form.current_password, 'remove_contact', (e, st) => renderProfile(ctx, session, { error: e, status: st })))) return;
      const removed = await deps.contacts.remove(session.accountId, form.contact, localeFor(ctx));
      if (!removed.ok) return contactError(ctx, session, removed.reason);
      await deps.endOthers(session, form.end_others);
      await renderProfile(ctx, session, { notice: 'profile.removed' });
    },

    async notice(ctx: Context) {
      const change = await deps.forChange(ctx, noticeForm, 'profile', { secondFactor: true });
      if (!change) return;
      const { session, form } = change;
      if (!(await deps.confirmPassword(session, form.current_password, 'notice_contact', (e, st) => renderProfile(ctx, session, { error: e, status: st })))) return;
      const chosen = await deps.contacts.chooseNotice(session.accountId, form.notice, localeFor(ctx));
      if (!chosen.ok) return contactError(ctx, session, chosen.reason);
      await deps.endOthers(session, form.end_others);
      await renderProfile(ctx, session, { notice: 'profile.notice_chosen' });
    },

    async password(ctx: Context) {
      rememberLocale(ctx);
      const session = await deps.requireSession(ctx, 'password');
      if (!session) return;
      // After a re-authentication the change must be made again (a POST is never replayed): say so.
      renderPassword(ctx, session, await deps.actions.hasFactor(session.accountId), { notice: ctx.query.reauth === '1' ? 'account.reauth' : undefined });
    },

    async changePassword(ctx: Context) {
      const change = await deps.forChange(ctx, passwordForm, 'password');
      if (!change) return;
      const { session, form } = change;
      const result = await deps.actions.changePassword(session.accountId, session.uid, form.current_password, form.password, form.password_confirm, localeFor(ctx));
      if (!result.ok) {
        if (result.reason === 'unavailable') throw new AppError('account_unavailable', 409, 'error.session_expired');
        return renderPassword(ctx, session, await deps.actions.hasFactor(session.accountId), { error: PASSWORD_ERRORS[result.reason], status: result.reason === 'throttled' ? 429 : 400 });
      }
      ctx.set('Cache-Control', 'no-store');
      deps.renderer.render(ctx, 'message', localeFor(ctx), (t) => ({
        title: t('password_page.done_title'),
        paragraphs: [t('password_page.done_body', { n: String(result.sessionsEnded) })],
        link: { href: '/account', text: t('account.home_back') },
      }));
    },
  };
}
