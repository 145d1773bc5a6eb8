/**
 * /account/security: a signed-in citizen sees their second factors (when added, when last used),
 * adds an authenticator app, removes a factor and makes new recovery codes.
 *
 * - Signing in to the account area is an ordinary sign-in through the provider as dinhdanh's own
 *   first-party client (so every rule of a sign-in applies: lockouts, second factor).
 * - Every change needs a sign-in in the last 5 minutes (NIST SP 800-63B §6.1.2.3 / SECURITY.md
 *   #39); an older session is sent through `prompt=login` first.
 * - Every POST: same-origin, CSRF token bound to the session, strict form schema.
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuditService } from '../audit/index.js';
import type { FactorRepository, OidcModelStore, PersonRepository, RecoveryCodeRepository } from '../store/index.js';
import { PASSKEY_CHALLENGE_TTL_MS, type FactorNotices, type PasskeyService, type RecoveryService, type TotpService } from '../mfa/index.js';
import { AppError } from '../http/errors.js';
import type { Csrf } from '../http/csrf.js';
import type { MessageKey, Translate } from '../http/i18n.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import { csrfBinding, formatDate, readAccountPost } from './account-http.js';
import type { Renderer } from '../http/render.js';
import { sessionTimeoutData } from '../http/site.routes.js';
import { ACCOUNT_CLIENT_ID, type AccountSession } from '../provider/account-session.js';
import { LOA } from '../provider/levels.js';
import type { AccountState, AuthenticationService } from '../accounts/index.js';

export const REAUTH_WINDOW_MS = 5 * 60_000;
/** Account pages a sign-in or re-authentication comes back to (`home` is /account itself). */
const REAUTH_BACK = ['home', 'security', 'organizations', 'profile', 'password', 'activity', 'data'] as const;
export type ReauthBack = (typeof REAUTH_BACK)[number];
export const accountPath = (back: ReauthBack) => (back === 'home' ? '/account' : `/account/${back}`);
const STATE_COOKIE = 'dd_account_state';

export interface SecurityDeps {
  issuer: string;
  accountSession: (ctx: Context) => Promise<AccountSession | undefined>;
  persons: PersonRepository;
  factors: FactorRepository;
  recoveryCodes: RecoveryCodeRepository;
  totp: TotpService;
  recovery: RecoveryService;
  passkeys: PasskeyService;
  /** Short-lived server-side records (the passkey challenge of an account session). */
  oidcStore: OidcModelStore;
  notices: FactorNotices;
  /** The account-state table: removing a factor ends the person's other sessions. */
  state: AccountState;
  /** The current password typed again before a change of what authenticates or recovers the account. */
  auth: Pick<AuthenticationService, 'verifyPassword'>;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
  now?: () => number;
}

/**
 * Every change of a second factor asks for the current password again (ASVS 5.0 7.5.1) and offers
 * to end the other sessions (7.4.3): `end_others` is a checkbox.
 */
export const reauthFields = { current_password: z.string().max(1024), end_others: z.literal('on').optional() };
const withPassword = { _csrf: z.string().max(128), current_password: z.string().max(1024) };
const factorForm = { _csrf: z.string().max(128), factor: z.string().uuid(), ...reauthFields };
const confirmForm = { _csrf: z.string().max(128), factor: z.string().uuid(), code: z.string().max(64), end_others: z.literal('on').optional() };
const passkeyForm = { _csrf: z.string().max(128), response: z.string().max(12_000), end_others: z.literal('on').optional() };
const CHALLENGE_MODEL = 'AccountPasskeyChallenge';
const PASSKEY_ERRORS: Record<string, MessageKey> = { duplicate: 'enrol.passkey_duplicate' };


export function createSecurityController(deps: SecurityDeps) {
  const now = deps.now ?? Date.now;
  const binding = csrfBinding;

  /** Sends the browser through a sign-in of the account client; back at /account/callback. */
  async function startSignIn(ctx: Context, options: { reauth: boolean; back?: ReauthBack; fresh?: boolean; acr?: string }) {
    const state = crypto.randomBytes(24).toString('base64url');
    // PKCE is required of every client; the account area never redeems the code (the SSO session
    // the sign-in creates is what it uses), so the verifier is not kept.
    const challenge = crypto.createHash('sha256').update(crypto.randomBytes(32)).digest('base64url');
    const purpose = `${options.reauth ? 'reauth' : 'signin'}-${options.back ?? 'security'}`;
    ctx.cookies.set(STATE_COOKIE, `${state}.${purpose}`, { httpOnly: true, sameSite: 'lax', signed: true, path: '/account', maxAge: 10 * 60_000, secure: ctx.secure, overwrite: true });
    const url = new URL('/auth', deps.issuer);
    url.search = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${deps.issuer}/account/callback`,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ui_locales: localeFor(ctx),
      ...(options.reauth || options.fresh ? { prompt: 'login' } : {}),
      ...(options.acr ? { acr_values: options.acr } : {}),
    }).toString();
    ctx.status = 303;
    ctx.redirect(url.href);
  }

  async function requireSession(ctx: Context, back: ReauthBack = 'security'): Promise<AccountSession | undefined> {
    const session = await deps.accountSession(ctx);
    if (!session) await startSignIn(ctx, { reauth: false, back });
    return session;
  }

  /** For a POST: the session, same origin, CSRF, and a recent sign-in (else re-authentication). */
  async function forChange<T extends z.ZodRawShape>(ctx: Context, shape: T, back?: ReauthBack, options: { secondFactor?: boolean } = {}): Promise<{ session: AccountSession; form: z.infer<z.ZodObject<T>> } | undefined> {
    const { session, form } = await readAccountPost(ctx, deps, shape);
    if (now() - session.signedInAt > REAUTH_WINDOW_MS) {
      await startSignIn(ctx, { reauth: true, back, ...(options.secondFactor && (await canProveMore(session)) ? { acr: LOA.substantial } : {}) });
      return undefined;
    }
    // Taking a contact away, or choosing where notices go, needs more than the password when the
    // person can prove more: a code to a contact they already had, or their app or passkey. With
    // the password alone a thief could otherwise leave only their own number on the account and
    // own its recovery (NIST SP 800-63B §6.1.2.3).
    if (options.secondFactor && !session.amr.includes('mfa') && (await canProveMore(session))) {
      await startSignIn(ctx, { reauth: true, back, acr: LOA.substantial });
      return undefined;
    }
    return { session, form };
  }

  /** A session signed in within the last 5 minutes (else a sign-in, then back to `back`). */
  async function requireRecent(ctx: Context, back: ReauthBack): Promise<AccountSession | undefined> {
    const session = await deps.accountSession(ctx);
    if (!session) await startSignIn(ctx, { reauth: false, back });
    else if (now() - session.signedInAt > REAUTH_WINDOW_MS) await startSignIn(ctx, { reauth: true, back });
    else return session;
    return undefined;
  }

  /** Whether the person has a second factor, or a verified contact a code can go to. */
  async function canProveMore(session: AccountSession): Promise<boolean> {
    const p = await deps.persons.findById(session.accountId);
    if (!p) return false;
    return (p.phone !== null && p.phoneVerified) || (p.email !== null && p.emailVerified) || (await deps.factors.listForPerson(p.id)).some((f) => f.confirmed);
  }

  /**
   * The current password typed again: true when right; otherwise false, with `render` called with
   * the message to show (wrong, or too many tries for now: the sign-in delays apply).
   */
  async function confirmPassword(session: AccountSession, password: string, action: string, render: (error: MessageKey, status: number) => Promise<void>): Promise<boolean> {
    const person = await deps.persons.findById(session.accountId);
    if (!person) throw new AppError('no_session', 401, 'error.session_expired');
    const verdict = await deps.auth.verifyPassword(person, password);
    if (verdict === 'ok') return true;
    deps.audit.record('REAUTHENTICATION_FAILED', { person: person.id, action, throttled: verdict === 'throttled' });
    await render(verdict === 'throttled' ? 'account.password_throttled' : 'account.password_wrong', verdict === 'throttled' ? 429 : 400);
    return false;
  }

  /** "Also sign out everywhere else": every other session ends (account-state.ts, `end-other-sessions`). */
  async function endOthers(session: AccountSession, asked: string | undefined): Promise<number> {
    if (asked !== 'on') return 0;
    const ended = await deps.state.apply('end-other-sessions', { id: session.accountId, status: 'active' }, { session: session.uid });
    deps.audit.record('SESSION_ENDED', { person: session.accountId, by: 'citizen', count: ended });
    return ended;
  }

  async function renderPage(ctx: Context, session: AccountSession, notice?: MessageKey, status = 200) {
    const locale = localeFor(ctx);
    const person = await deps.persons.findById(session.accountId);
    if (!person) throw new AppError('no_session', 401, 'error.session_expired');
    const factors = (await deps.factors.listForPerson(session.accountId)).filter((f) => f.confirmed);
    const remaining = await deps.recovery.remaining(session.accountId);
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/security', locale, (t: Translate) => ({
      title: t('account.title'),
      signedInAs: t('account.signed_in_as', { name: person.name }),
      notice: notice ? t(notice) : null,
      csrf: deps.csrf.token(binding(session)),
      sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(session))),
      factors: factors.map((f) => ({
        id: f.id,
        type: t(f.type === 'totp' ? 'account.type_totp' : 'account.type_passkey'),
        label: f.label,
        added: t('account.added', { date: formatDate(f.createdAt, locale) }),
        lastUsed: f.lastUsedAt ? t('account.last_used', { date: formatDate(f.lastUsedAt, locale) }) : t('account.never_used'),
      })),
      recovery: factors.length === 0 ? null : remaining > 0 ? t('account.recovery_left', { remaining: String(remaining) }) : t('account.recovery_none'),
    }), status);
  }

  function renderCodes(ctx: Context, session: AccountSession, codes: string[], notice?: MessageKey) {
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/recovery-codes', localeFor(ctx), (t) => ({
      title: t('recovery.title'),
      notice: notice ? t(notice) : null,
      codes,
      csrf: deps.csrf.token(binding(session)),
      sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(session))),
    }));
  }

  async function renderPasskey(ctx: Context, session: AccountSession) {
    const person = await deps.persons.findById(session.accountId);
    if (!person) throw new AppError('no_session', 401, 'error.session_expired');
    const existing = (await deps.factors.listForPerson(person.id)).filter((f) => f.type === 'passkey');
    const { options, challenge } = await deps.passkeys.registrationOptions(person, existing);
    await deps.oidcStore.upsert(CHALLENGE_MODEL, session.uid, { value: challenge, issuedAt: now() }, Math.ceil(PASSKEY_CHALLENGE_TTL_MS / 1000));
    ctx.set('Cache-Control', 'no-store');
    deps.renderer.render(ctx, 'account/passkey', localeFor(ctx), (t) => ({
      title: t('account.add_passkey'),
      csrf: deps.csrf.token(binding(session)),
      sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(session))),
      options: JSON.stringify(options),
      messages: {
        unsupported: t('mfa.passkey_unsupported'),
        cancelled: t('mfa.passkey_cancelled'),
        failed: t('enrol.passkey_failed'),
        exists: t('enrol.passkey_duplicate'),
      },
      error: null,
    }));
  }

  return {
    forChange,
    requireSession,
    requireRecent,
    confirmPassword,
    endOthers,

    async show(ctx: Context) {
      rememberLocale(ctx);
      const session = await requireSession(ctx);
      // After a re-authentication the change must be made again (a POST is never replayed): say so.
      if (session) await renderPage(ctx, session, ctx.query.reauth === '1' ? 'account.reauth' : undefined);
    },

    /**
     * A sign-in to the account area even when this browser is signed in already (`prompt=login`):
     * where a registration made on its own hands its new account over, so that a browser signed in
     * as someone else does not land in that person's account.
     */
    async signIn(ctx: Context) {
      await startSignIn(ctx, { reauth: false, fresh: true, back: 'home' });
    },

    async callback(ctx: Context) {
      const cookie = ctx.cookies.get(STATE_COOKIE, { signed: true }) ?? '';
      ctx.cookies.set(STATE_COOKIE, null, { path: '/account' });
      const [expected = '', purpose = ''] = cookie.split('.');
      const given = Buffer.from(typeof ctx.query.state === 'string' ? ctx.query.state : '');
      const want = Buffer.from(expected);
      if (!expected || given.length !== want.length || !crypto.timingSafeEqual(given, want)) {
        throw new AppError('account_state', 400, 'account.signin_failed');
      }
      if (typeof ctx.query.error === 'string' || typeof ctx.query.code !== 'string') {
        throw new AppError('account_signin', 400, 'account.signin_failed');
      }
      ctx.status = 303;
      const [kind = '', named = ''] = purpose.split('-');
      const back: ReauthBack = (REAUTH_BACK as readonly string[]).includes(named) ? (named as ReauthBack) : 'security';
      ctx.redirect(kind === 'reauth' ? `${accountPath(back)}?reauth=1` : accountPath(back));
    },

    async startTotp(ctx: Context) {
      const change = await forChange(ctx, withPassword);
      if (!change) return;
      if (!(await confirmPassword(change.session, change.form.current_password, 'add_factor', (e, st) => renderPage(ctx, change.session, e, st)))) return;
      const person = await deps.persons.findById(change.session.accountId);
      if (!person) throw new AppError('no_session', 401, 'error.session_expired');
      await deps.factors.removeUnconfirmed(person.id, now());
      const enrolment = await deps.totp.startEnrolment(person.id, 'Ứng dụng xác thực', `${person.pid.slice(0, 3)}…${person.pid.slice(-3)}`);
      ctx.set('Cache-Control', 'no-store');
      deps.renderer.render(ctx, 'account/enrol-totp', localeFor(ctx), (t) => ({
        title: t('account.enrol_title'),
        csrf: deps.csrf.token(binding(change.session)),
        sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(change.session))),
        factor: enrolment.factorId,
        qrDataUrl: enrolment.qrDataUrl,
        secret: enrolment.secret,
        error: null,
      }));
    },

    async confirmTotp(ctx: Context) {
      const change = await forChange(ctx, confirmForm);
      if (!change) return;
      const { session, form } = change;
      const hadFactor = (await deps.factors.listForPerson(session.accountId)).some((f) => f.confirmed);
      const result = await deps.totp.confirmEnrolment(session.accountId, form.factor, form.code.trim());
      if (!result.ok) {
        deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: session.accountId, method: 'totp', stage: 'enrol' });
        const enrolment = await deps.totp.resumeEnrolment(session.accountId, form.factor, '');
        if (!enrolment || result.reason === 'locked') return renderPage(ctx, session, result.reason === 'locked' ? 'mfa.locked' : 'mfa.invalid', 400);
        ctx.set('Cache-Control', 'no-store');
        return deps.renderer.render(ctx, 'account/enrol-totp', localeFor(ctx), (t) => ({
          title: t('account.enrol_title'),
          csrf: deps.csrf.token(binding(session)),
          sessionTimeout: sessionTimeoutData(deps.csrf.token(binding(session))),
          factor: enrolment.factorId,
          qrDataUrl: enrolment.qrDataUrl,
          secret: enrolment.secret,
          error: t(result.reason === 'replayed' ? 'mfa.replayed' : 'mfa.invalid'),
        }), 400);
      }
      deps.audit.record('FACTOR_ENROLLED', { person: session.accountId, type: 'totp', factor: form.factor, via: 'account' });
      await deps.notices.factorAdded(session.accountId, 'totp', localeFor(ctx));
      await endOthers(session, form.end_others);
      if (!hadFactor) {
        const codes = await deps.recovery.regenerate(session.accountId);
        deps.audit.record('RECOVERY_CODES_GENERATED', { person: session.accountId });
        return renderCodes(ctx, session, codes, 'account.totp_added');
      }
      await renderPage(ctx, session, 'account.totp_added');
    },

    async removeFactor(ctx: Context) {
      const change = await forChange(ctx, factorForm);
      if (!change) return;
      const { session, form } = change;
      if (!(await confirmPassword(session, form.current_password, 'remove_factor', (e, st) => renderPage(ctx, session, e, st)))) return;
      const factor = await deps.factors.find(form.factor);
      if (!factor || !(await deps.factors.remove(session.accountId, form.factor))) throw new AppError('unknown_factor', 404, 'error.not_found');
      // Whoever signed in with it elsewhere (a lost phone, or the factor was someone else's) is
      // signed out everywhere; this session stays (NIST SP 800-63B §6.1.2.1; ASVS 5.0 7.4.3).
      const ended = factor.confirmed ? await deps.state.apply('remove-factor', { id: session.accountId, status: 'active' }, { session: session.uid }) : 0;
      deps.audit.record('FACTOR_REMOVED', { person: session.accountId, factor: form.factor, type: factor.type, confirmed: factor.confirmed, sessions_ended: ended });
      if (factor.confirmed) await deps.notices.factorRemoved(session.accountId, factor.type, localeFor(ctx));
      // Recovery codes recover a second factor: with none left, they go too.
      if (!(await deps.factors.listForPerson(session.accountId)).some((f) => f.confirmed)) {
        await deps.recoveryCodes.removeAll(session.accountId);
      }
      await renderPage(ctx, session, 'account.removed');
    },

    /** Shows passkey registration (its challenge kept server-side for this session, 5 minutes, single use). */
    async startPasskey(ctx: Context) {
      const change = await forChange(ctx, withPassword);
      if (!change) return;
      if (!(await confirmPassword(change.session, change.form.current_password, 'add_factor', (e, st) => renderPage(ctx, change.session, e, st)))) return;
      await renderPasskey(ctx, change.session);
    },

    async finishPasskey(ctx: Context) {
      const change = await forChange(ctx, passkeyForm);
      if (!change) return;
      const { session, form } = change;
      const kept = (await deps.oidcStore.find(CHALLENGE_MODEL, session.uid)) as { value?: string; issuedAt?: number } | undefined;
      await deps.oidcStore.destroy(CHALLENGE_MODEL, session.uid);
      if (!kept?.value || typeof kept.issuedAt !== 'number' || now() - kept.issuedAt > PASSKEY_CHALLENGE_TTL_MS) {
        // Back to the page whose form asks for the password: only startPasskey, after the current
        // password, writes a registration challenge (ASVS 5.0 7.5.1), never an error path.
        return renderPage(ctx, session, 'mfa.passkey_expired', 400);
      }
      const hadFactor = (await deps.factors.listForPerson(session.accountId)).some((f) => f.confirmed);
      const result = await deps.passkeys.finishRegistration(session.accountId, form.response, kept.value, 'Khóa truy cập (passkey)');
      if (!result.ok) {
        deps.audit.record('MFA_FAILED', { person: session.accountId, method: 'passkey', stage: 'enrol', via: 'account', reason: result.reason });
        return renderPage(ctx, session, PASSKEY_ERRORS[result.reason] ?? 'enrol.passkey_failed', 400);
      }
      deps.audit.record('FACTOR_ENROLLED', { person: session.accountId, type: 'passkey', factor: result.factor.id, via: 'account' });
      await deps.notices.factorAdded(session.accountId, 'passkey', localeFor(ctx));
      await endOthers(session, form.end_others);
      if (!hadFactor) {
        const codes = await deps.recovery.regenerate(session.accountId);
        deps.audit.record('RECOVERY_CODES_GENERATED', { person: session.accountId });
        return renderCodes(ctx, session, codes, 'account.passkey_added');
      }
      await renderPage(ctx, session, 'account.passkey_added');
    },

    async regenerateCodes(ctx: Context) {
      const change = await forChange(ctx, withPassword);
      if (!change) return;
      const { session } = change;
      if (!(await confirmPassword(session, change.form.current_password, 'recovery_codes', (e, st) => renderPage(ctx, session, e, st)))) return;
      if (!(await deps.factors.listForPerson(session.accountId)).some((f) => f.confirmed)) {
        throw new AppError('no_factor', 400, 'error.invalid_request');
      }
      const codes = await deps.recovery.regenerate(session.accountId);
      deps.audit.record('RECOVERY_CODES_GENERATED', { person: session.accountId, via: 'account' });
      renderCodes(ctx, session, codes);
    },
  };
}
