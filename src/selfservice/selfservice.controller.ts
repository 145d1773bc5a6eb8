/**
 * The pages of registration (/register), recovery (/recover) and the account reset's links. Thin:
 * check the request (same origin, the flow cookie's CSRF token, a strict form, the journey's step),
 * call a service, render or redirect. Each POST is accepted only at the step it belongs to; a flow
 * that expired or never existed starts again.
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type { z } from 'zod';
import { AppError } from '../http/errors.js';
import { parseForm, readForm } from '../http/body.js';
import { assertCsrf, assertSameOrigin, type Csrf } from '../http/csrf.js';
import type { MessageKey, Translate } from '../http/i18n.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import type { Renderer } from '../http/render.js';
import type { AuditService } from '../audit/index.js';
import type { FactorRepository } from '../store/index.js';
import type { PasskeyService, RecoveryService, TotpService } from '../mfa/index.js';
import { PASSKEY_CHALLENGE_TTL_MS } from '../mfa/index.js';
import { RANKS } from '../provider/levels.js';
import type { FlowOrigin, Flows, RecoverFlow, RegisterFlow, ResetFlow } from './flow.js';
import type { RegistrationService } from './registration.service.js';
import type { RecoveryJourney } from './recovery.service.js';
import { cancelForm, checkDetails, codeForm, csrfOnlyForm, detailsForm, factorForm, offerForm, passkeyForm, passwordForm, recoverStartForm, type FieldErrors } from './selfservice.validation.js';

export interface SelfServiceDeps {
  flows: Flows;
  registration: RegistrationService;
  recovery: RecoveryJourney;
  factors: FactorRepository;
  totp: TotpService;
  recoveryCodes: RecoveryService;
  passkeys: PasskeyService;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
  issuerOrigin: string;
  /** How long an account reset waits, for the page that says so. */
  resetWaitMs: number;
  now?: () => number;
}

const PASSWORD_ERRORS: Record<string, MessageKey> = {
  mismatch: 'password.mismatch',
  too_short: 'password.too_short',
  too_long: 'password.too_long',
  common: 'password.common',
  contains_personal: 'password.contains_personal',
  invalid: 'password.invalid',
  same_as_old: 'password.same_as_old',
};
const CODE_ERRORS: Record<string, MessageKey> = {
  invalid: 'selfservice.code_invalid',
  expired: 'selfservice.code_expired',
  used: 'selfservice.code_expired',
  locked: 'selfservice.code_locked',
};

/** How long a recovery's first answer takes at least (see submitRecoverStart). */
export const RECOVER_START_FLOOR_MS = 100;

/**
 * How long after a password step finished the same form posted again (a double click) still gets
 * the finished page: it costs an argon2 check, so it is not open to anyone for the flow's 30 minutes.
 */
const REPEAT_WINDOW_MS = 60_000;

/** Steps that end a journey: opening its page again starts a new one (the origin is kept). */
const FINISHED = new Set<string>(['existing', 'done', 'reset_requested']);

const retryAfter = (ctx: Context, ms: number) => ctx.set('Retry-After', String(Math.max(1, Math.ceil(ms / 1000))));

export function createSelfServiceController(deps: SelfServiceDeps) {
  const { flows, renderer, csrf } = deps;
  const now = deps.now ?? Date.now;
  const binding = (id: string) => `selfservice:${id}`;
  const repeatable = (flow: { finishedAt?: number }) => flow.finishedAt !== undefined && now() - flow.finishedAt <= REPEAT_WINDOW_MS;
  const waitHours = () => String(Math.round((deps.resetWaitMs / 3600_000) * 10) / 10);

  function render(ctx: Context, view: string, data: (t: Translate) => Record<string, unknown> & { title: string }, status = 200) {
    ctx.set('Cache-Control', 'no-store');
    const id = flows.ensureId(ctx);
    renderer.render(ctx, view, localeFor(ctx), (t) => ({ csrf: csrf.token(binding(id)), ...data(t) }), status);
  }

  function message(ctx: Context, opts: { title: MessageKey; alert?: MessageKey; paragraphs?: MessageKey[]; vars?: Record<string, string>; link?: { href: string; text: MessageKey } }, status = 200) {
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'message', localeFor(ctx), (t) => ({
      title: t(opts.title, opts.vars),
      alert: opts.alert ? t(opts.alert, opts.vars) : null,
      paragraphs: (opts.paragraphs ?? []).map((p) => t(p, opts.vars)),
      link: opts.link ? { href: opts.link.href, text: t(opts.link.text, opts.vars) } : null,
    }), status);
  }

  /** A checked POST: same origin, the flow cookie's CSRF token, then a strict form. */
  async function readPost<T extends z.ZodRawShape>(ctx: Context, shape: T): Promise<z.infer<z.ZodObject<T>>> {
    assertSameOrigin(ctx, deps.issuerOrigin);
    const raw = await readForm(ctx);
    const id = flows.idOf(ctx);
    if (!id) throw new AppError('no_flow', 400, 'error.session_expired');
    assertCsrf(csrf, binding(id), raw._csrf);
    return parseForm(raw, shape);
  }

  async function flowOf<K extends 'register' | 'recover' | 'reset'>(ctx: Context, kind: K, steps: string[]) {
    const found = await flows.get(ctx);
    const flow = found?.flow;
    if (!flow || flow.kind !== kind || !steps.includes(flow.step)) throw new AppError('wrong_step', 400, 'error.session_expired');
    return flow as Extract<RegisterFlow | RecoverFlow | ResetFlow, { kind: K }>;
  }

  /**
   * The flow, when it is already past the step being posted: the same form posted twice (a double
   * click; the first post moved the journey on) is shown where the journey is, not an error.
   */
  async function movedOn(ctx: Context, kind: 'register' | 'recover', later: string[]) {
    const found = await flows.get(ctx);
    return found && found.flow.kind === kind && later.includes(found.flow.step) ? found.flow : undefined;
  }

  /** Where a finished or abandoned journey leads back to: the portal's sign-in, or the account area. */
  const backHref = (origin?: FlowOrigin) => (origin ? `/interaction/${origin.uid}` : '/account');

  // ---- registration ----

  function renderDetails(ctx: Context, flow: RegisterFlow | undefined, opts: { values?: Record<string, string>; errors?: FieldErrors; alert?: MessageKey; alertVars?: Record<string, string>; status?: number } = {}) {
    const origin = flow?.origin;
    render(ctx, 'selfservice/register', (t) => ({
      title: t('register.title'),
      portalName: origin?.portalName ?? null,
      action: '/register',
      values: { pid: '', full_name: '', birthdate: '', gender: '', phone: '', email: '', ...(opts.values ?? {}) },
      errors: Object.fromEntries(Object.entries(opts.errors ?? {}).map(([k, v]) => [k, t(v)])),
      alert: opts.alert ? t(opts.alert, opts.alertVars) : null,
      signInHref: backHref(origin),
      recoverHref: '/recover',
    }), opts.status ?? 200);
  }

  function renderCode(ctx: Context, journey: 'register' | 'recover', flow: RegisterFlow | RecoverFlow, error?: MessageKey, status = 200) {
    render(ctx, 'selfservice/code', (t) => ({
      title: t(journey === 'register' ? 'register.code_title' : 'recover.code_title'),
      intro: journey === 'register'
        ? t('register.code_intro', { to: flow.code?.sentTo ?? '' })
        : t('recover.code_intro', { to: flow.code?.sentTo ?? '' }),
      action: `/${journey}/code`,
      resendAction: journey === 'register' ? '/register/resend' : null,
      restartAction: `/${journey}/restart`,
      error: error ? t(error) : null,
    }), status);
  }

  function renderPassword(ctx: Context, action: string, title: MessageKey, opts: { error?: MessageKey; intro?: MessageKey; minimum?: number; status?: number } = {}) {
    render(ctx, 'selfservice/password', (t) => ({
      title: t(title),
      intro: opts.intro ? t(opts.intro) : null,
      hint: t('password.hint', { min: String(opts.minimum ?? 12) }),
      action,
      error: opts.error ? t(opts.error) : null,
    }), opts.status ?? (opts.error ? 400 : 200));
  }

  function renderOffer(ctx: Context, flow: RegisterFlow) {
    const rank = flow.origin?.requiredRank ?? 0;
    const required = rank >= RANKS.substantial;
    // `high` needs identity level 2, which only an operator can give (Decree 69/2024/ND-CP): no
    // factor set up now would get this sign-in there, so the page says how, and continues.
    const levelTooLow = rank >= RANKS.high;
    const portal = flow.origin?.portalName ?? '';
    render(ctx, 'selfservice/offer', (t) => ({
      title: t('register.done_title'),
      intro: t('register.done_intro'),
      offer: levelTooLow ? t('register.level_required', { portal }) : required ? t('register.factor_required', { portal }) : t('register.factor_offer'),
      required: required && !levelTooLow,
      levelTooLow,
      action: '/register/continue',
      portalName: flow.origin?.portalName ?? null,
    }));
  }

  function renderExisting(ctx: Context, flow: RegisterFlow) {
    message(ctx, {
      title: 'register.existing_title',
      paragraphs: ['register.existing_body'],
      link: { href: flow.origin ? `/interaction/${flow.origin.uid}` : '/recover', text: flow.origin ? 'register.existing_signin' : 'register.existing_recover' },
    });
  }

  function renderRegisterStep(ctx: Context, flow: RegisterFlow) {
    switch (flow.step) {
      case 'code': return renderCode(ctx, 'register', flow);
      case 'password': return renderPassword(ctx, '/register/password', 'register.password_title', { intro: 'register.password_intro' });
      case 'existing': return renderExisting(ctx, flow);
      case 'offer': return renderOffer(ctx, flow);
      default: return renderDetails(ctx, flow);
    }
  }

  function notOffered(ctx: Context, what: 'register' | 'recover') {
    message(ctx, {
      title: what === 'register' ? 'register.title' : 'recover.title',
      alert: what === 'register' ? 'register.not_offered' : 'recover.not_offered',
      paragraphs: ['selfservice.counter'],
    }, 503);
  }

  // ---- recovery ----

  function renderRecoverStart(ctx: Context, flow: RecoverFlow | undefined, opts: { values?: Record<string, string>; errors?: FieldErrors; alert?: MessageKey; status?: number } = {}) {
    const channels = deps.recovery.channels();
    render(ctx, 'selfservice/recover', (t) => ({
      title: t('recover.title'),
      intro: t(channels.has('sms') && channels.has('email') ? 'recover.intro' : channels.has('sms') ? 'recover.intro_phone' : 'recover.intro_email'),
      portalName: flow?.origin?.portalName ?? null,
      action: '/recover',
      values: { pid: '', contact: '', ...(opts.values ?? {}) },
      errors: Object.fromEntries(Object.entries(opts.errors ?? {}).map(([k, v]) => [k, t(v)])),
      alert: opts.alert ? t(opts.alert) : null,
      signInHref: backHref(flow?.origin),
    }), opts.status ?? 200);
  }

  async function renderFactor(ctx: Context, flow: RecoverFlow, opts: { method?: 'totp' | 'recovery'; error?: MessageKey; status?: number } = {}) {
    const personId = flow.personId!;
    const factors = (await deps.factors.listForPerson(personId)).filter((f) => f.confirmed);
    const hasTotp = factors.some((f) => f.type === 'totp');
    const passkeys = factors.filter((f) => f.type === 'passkey');
    const hasRecovery = (await deps.recoveryCodes.remaining(personId)) > 0;
    const person = await deps.recovery.activePerson(personId);
    const canReset = !!person && deps.recovery.canReset(person);
    const method = opts.method ?? (hasTotp ? 'totp' : hasRecovery && passkeys.length === 0 ? 'recovery' : 'totp');
    let passkeyOptions: string | null = null;
    if (passkeys.length > 0 && method !== 'recovery') {
      const { options, challenge } = await deps.passkeys.authenticationOptions(passkeys);
      await flows.put(ctx, { ...flow, passkeyChallenge: { value: challenge, issuedAt: now() } });
      passkeyOptions = JSON.stringify(options);
    }
    render(ctx, 'selfservice/factor', (t) => ({
      title: t('recover.factor_title'),
      method,
      hasTotp,
      hasRecovery,
      showCode: method === 'recovery' || hasTotp,
      action: '/recover/factor',
      selfHref: '/recover',
      passkey: passkeyOptions === null ? null : {
        action: '/recover/passkey',
        options: passkeyOptions,
        messages: { unsupported: t('mfa.passkey_unsupported'), cancelled: t('mfa.passkey_cancelled'), failed: t('mfa.passkey_failed'), exists: t('mfa.passkey_failed') },
      },
      resetIntro: t('recover.reset_intro', { hours: waitHours() }),
      canReset,
      resetUnavailable: t('recover.reset_counter_only'),
      error: opts.error ? t(opts.error) : null,
    }), opts.status ?? (opts.error ? 400 : 200));
  }

  async function renderRecoverStep(ctx: Context, flow: RecoverFlow) {
    const method = ctx.query.method === 'recovery' ? 'recovery' : ctx.query.method === 'totp' ? 'totp' : undefined;
    switch (flow.step) {
      case 'code': return renderCode(ctx, 'recover', flow);
      case 'factor': return renderFactor(ctx, flow, { method });
      case 'password': return renderPassword(ctx, '/recover/password', 'recover.password_title', { minimum: (await deps.recovery.hasFactor(flow.personId!)) ? 8 : 12 });
      case 'reset_requested': return resetRequested(ctx);
      case 'done': return recovered(ctx, flow);
      default: return renderRecoverStart(ctx, flow);
    }
  }

  function recovered(ctx: Context, flow: RecoverFlow) {
    message(ctx, {
      title: 'recover.done_title',
      alert: 'recover.done_body',
      paragraphs: ['recover.done_factor'],
      link: { href: backHref(flow.origin), text: flow.origin ? 'recover.back_to_signin' : 'recover.to_account' },
    });
  }

  function resetRequested(ctx: Context) {
    message(ctx, {
      title: 'recover.reset_requested_title',
      alert: 'recover.reset_requested_body',
      paragraphs: ['recover.reset_requested_cancel', 'selfservice.counter_now'],
      vars: { hours: waitHours() },
    });
  }

  /** After the code, or after the second factor: the password step. */
  async function toPassword(ctx: Context, flow: RecoverFlow, factor?: RecoverFlow['factor']) {
    const next: RecoverFlow = { ...flow, step: 'password', ...(factor ? { factor } : {}) };
    delete next.passkeyChallenge;
    await flows.put(ctx, next);
    return renderPassword(ctx, '/recover/password', 'recover.password_title', { minimum: (await deps.recovery.hasFactor(flow.personId!)) ? 8 : 12 });
  }

  return {
    /** Starts a journey from a portal's sign-in page (called by the interaction routes, which checked the interaction). */
    async begin(ctx: Context, kind: 'register' | 'recover', origin: FlowOrigin) {
      await flows.put(ctx, kind === 'register' ? { kind, step: 'details', origin } : { kind, step: 'start', origin });
      ctx.status = 303;
      ctx.redirect(`/${kind}`);
    },

    async showRegister(ctx: Context) {
      rememberLocale(ctx);
      if (!deps.registration.available()) return notOffered(ctx, 'register');
      const found = await flows.get(ctx);
      // A finished registration ("already has an account") does not hold the browser: a new one starts.
      if (found?.flow.kind === 'register' && !FINISHED.has(found.flow.step)) return renderRegisterStep(ctx, found.flow);
      return renderDetails(ctx, found?.flow.kind === 'register' ? found.flow : undefined);
    },

    async submitDetails(ctx: Context) {
      const form = await readPost(ctx, detailsForm);
      if (!deps.registration.available()) return notOffered(ctx, 'register');
      const found = await flows.get(ctx);
      const previous = found?.flow.kind === 'register' ? found.flow : undefined;
      if (previous?.step === 'code' && previous.details) {
        // The same details posted twice (a double click on a page that waits for the registry and
        // the SMS gateway): the code page the first post led to, with no second registry question.
        const again = checkDetails(form, new Date(now()).toISOString().slice(0, 10));
        if (again.ok && JSON.stringify(again.details) === JSON.stringify(previous.details)) return renderCode(ctx, 'register', previous);
      }
      if (previous && previous.step !== 'details' && !FINISHED.has(previous.step)) throw new AppError('wrong_step', 400, 'error.session_expired');
      const values = { pid: form.pid.slice(0, 12), full_name: form.full_name.slice(0, 100), birthdate: form.birthdate.slice(0, 10), gender: form.gender ?? '', phone: form.phone.slice(0, 20), email: (form.email ?? '').slice(0, 254) };
      const checked = checkDetails(form, new Date(now()).toISOString().slice(0, 10));
      if (!checked.ok) return renderDetails(ctx, previous, { values, errors: checked.errors, alert: 'selfservice.fix_fields', status: 400 });
      const started = await deps.registration.start(checked.details, ctx.ip, localeFor(ctx));
      if (!started.ok) {
        switch (started.reason) {
          case 'limited':
            retryAfter(ctx, started.retryAfterMs);
            return renderDetails(ctx, previous, { values, alert: started.limit === 'phone' ? 'selfservice.phone_limited' : 'selfservice.limited', status: 429 });
          case 'no_match':
            return renderDetails(ctx, previous, { values, alert: 'register.no_match', status: 400 });
          case 'registry_unavailable':
            retryAfter(ctx, 60_000);
            return renderDetails(ctx, previous, { values, alert: 'register.registry_unavailable', status: 503 });
          default:
            return renderDetails(ctx, previous, { values, alert: 'selfservice.sms_unavailable', status: 503 });
        }
      }
      const flow: RegisterFlow = { kind: 'register', step: 'code', ...(previous?.origin ? { origin: previous.origin } : {}), details: checked.details, code: started.code };
      await flows.put(ctx, flow);
      return renderCode(ctx, 'register', flow);
    },

    async submitRegisterCode(ctx: Context) {
      const form = await readPost(ctx, codeForm);
      const moved = await movedOn(ctx, 'register', ['password', 'existing', 'offer']);
      if (moved) return renderRegisterStep(ctx, moved as RegisterFlow);
      const flow = await flowOf(ctx, 'register', ['code']);
      const result = await deps.registration.verifyCode(flow.details!, flow.code!, form.code, localeFor(ctx));
      if (!result.ok) {
        if (result.reason === 'locked') retryAfter(ctx, 10 * 60_000);
        return renderCode(ctx, 'register', flow, CODE_ERRORS[result.reason], result.reason === 'locked' ? 429 : 400);
      }
      // The new account's id, chosen now: a password step posted twice finds the account it made.
      const next: RegisterFlow = { ...flow, step: result.existing ? 'existing' : 'password', ...(result.existing ? {} : { personId: crypto.randomUUID() }) };
      delete next.code;
      await flows.put(ctx, next);
      return renderRegisterStep(ctx, next);
    },

    async resendRegisterCode(ctx: Context) {
      await readPost(ctx, csrfOnlyForm);
      const flow = await flowOf(ctx, 'register', ['code']);
      const sent = await deps.registration.resend(flow.details!, localeFor(ctx));
      if (!sent.ok) {
        if (sent.reason === 'limited') {
          retryAfter(ctx, sent.retryAfterMs);
          return renderCode(ctx, 'register', flow, 'selfservice.phone_limited', 429);
        }
        return renderCode(ctx, 'register', flow, 'selfservice.sms_unavailable', 503);
      }
      const next: RegisterFlow = { ...flow, code: sent.code };
      await flows.put(ctx, next);
      return renderCode(ctx, 'register', next);
    },

    async submitRegisterPassword(ctx: Context) {
      const form = await readPost(ctx, passwordForm);
      const flow = await flowOf(ctx, 'register', ['password', 'offer']);
      if (flow.step === 'offer') {
        // The same form posted again after it made the account (a double click): the same answer.
        if (flow.personId && repeatable(flow) && (await deps.registration.madeBy(flow.personId, form.password))) return renderOffer(ctx, flow);
        throw new AppError('wrong_step', 400, 'error.session_expired');
      }
      const result = await deps.registration.complete(flow.details!, form.password, form.password_confirm, flow.origin?.clientId, flow.personId);
      if (!result.ok) {
        if (result.reason === 'exists') {
          const next: RegisterFlow = { ...flow, step: 'existing' };
          await flows.put(ctx, next);
          return renderExisting(ctx, next);
        }
        return renderPassword(ctx, '/register/password', 'register.password_title', { intro: 'register.password_intro', error: PASSWORD_ERRORS[result.reason] ?? 'password.invalid' });
      }
      const next: RegisterFlow = { kind: 'register', step: 'offer', personId: result.person.id, finishedAt: now(), ...(flow.origin ? { origin: flow.origin } : {}) };
      await flows.put(ctx, next);
      return renderOffer(ctx, next);
    },

    /** After the account is made: signed in at the portal it started from, or in the account area. */
    async continueRegistered(ctx: Context) {
      const form = await readPost(ctx, offerForm);
      const flow = await flowOf(ctx, 'register', ['offer']);
      await flows.offerHandoff(ctx, { personId: flow.personId!, enrol: form.choice === 'now', ...(flow.origin ? { originUid: flow.origin.uid } : {}) });
      ctx.status = 303;
      ctx.redirect(flow.origin ? `/interaction/${flow.origin.uid}` : '/account/signin');
    },

    async restart(ctx: Context) {
      await readPost(ctx, csrfOnlyForm);
      const found = await flows.get(ctx);
      const kind = ctx.path.startsWith('/recover') ? 'recover' : 'register';
      const origin = found && found.flow.kind !== 'reset' ? found.flow.origin : undefined;
      // Nothing to keep: the page starts afresh without a record (no store write per anonymous post).
      if (!found) {
        ctx.status = 303;
        return ctx.redirect(`/${kind}`);
      }
      await flows.put(ctx, kind === 'register' ? { kind, step: 'details', ...(origin ? { origin } : {}) } : { kind, step: 'start', ...(origin ? { origin } : {}) });
      ctx.status = 303;
      ctx.redirect(`/${kind}`);
    },

    // ---- recovery ----

    async showRecover(ctx: Context) {
      rememberLocale(ctx);
      if (deps.recovery.channels().size === 0) return notOffered(ctx, 'recover');
      const found = await flows.get(ctx);
      if (found?.flow.kind === 'recover' && !FINISHED.has(found.flow.step)) return renderRecoverStep(ctx, found.flow);
      return renderRecoverStart(ctx, found?.flow.kind === 'recover' ? found.flow : undefined);
    },

    async submitRecoverStart(ctx: Context) {
      const form = await readPost(ctx, recoverStartForm);
      if (deps.recovery.channels().size === 0) return notOffered(ctx, 'recover');
      const found = await flows.get(ctx);
      const previous = found?.flow.kind === 'recover' ? found.flow : undefined;
      if (previous && previous.step !== 'start' && !FINISHED.has(previous.step)) throw new AppError('wrong_step', 400, 'error.session_expired');
      const pid = form.pid.trim();
      const values = { pid: pid.slice(0, 12), contact: form.contact.slice(0, 254) };
      if (!/^\d{12}$/.test(pid)) return renderRecoverStart(ctx, previous, { values, errors: { pid: 'login.identifier_format' }, alert: 'selfservice.fix_fields', status: 400 });
      // The answer is held to a floor: what is left of the difference between a match (a person
      // read, a code to deliver) and no match — tens of microseconds — is then well inside the
      // floor, whatever the load (ASVS 5.0 6.3.8: not by timing). The real clock, not the injected one.
      const floor = new Promise((resolve) => setTimeout(resolve, RECOVER_START_FLOOR_MS));
      const started = await deps.recovery.start(pid, form.contact, ctx.ip, localeFor(ctx));
      await floor;
      if (!started.ok) {
        if (started.reason === 'limited') {
          retryAfter(ctx, started.retryAfterMs);
          return renderRecoverStart(ctx, previous, { values, alert: 'selfservice.limited', status: 429 });
        }
        if (started.reason === 'contact_format') return renderRecoverStart(ctx, previous, { values, errors: { contact: 'recover.contact_format' }, alert: 'selfservice.fix_fields', status: 400 });
        return renderRecoverStart(ctx, previous, { values, errors: { contact: 'recover.channel_unavailable' }, alert: 'selfservice.fix_fields', status: 400 });
      }
      const flow: RecoverFlow = {
        kind: 'recover', step: 'code', ...(previous?.origin ? { origin: previous.origin } : {}),
        matched: started.matched, ...(started.personId ? { personId: started.personId } : {}), code: started.code,
      };
      await flows.put(ctx, flow);
      return renderCode(ctx, 'recover', flow);
    },

    async submitRecoverCode(ctx: Context) {
      const form = await readPost(ctx, codeForm);
      const moved = await movedOn(ctx, 'recover', ['factor', 'password']);
      if (moved) return renderRecoverStep(ctx, moved as RecoverFlow);
      const flow = await flowOf(ctx, 'recover', ['code']);
      const result = await deps.recovery.verifyCode(flow, form.code);
      if (!result.ok) {
        if (result.reason === 'locked_by_owner') {
          await flows.clear(ctx);
          return message(ctx, { title: 'recover.locked_title', alert: 'recover.locked_by_owner', paragraphs: ['selfservice.counter_now'] }, 403);
        }
        if (result.reason === 'locked') retryAfter(ctx, 10 * 60_000);
        return renderCode(ctx, 'recover', flow, CODE_ERRORS[result.reason], result.reason === 'locked' ? 429 : 400);
      }
      const next: RecoverFlow = { ...flow, step: result.hasFactor ? 'factor' : 'password', passwordTag: result.passwordTag, contactKey: result.contactKey };
      delete next.code;
      await flows.put(ctx, next);
      if (result.hasFactor) return renderFactor(ctx, next);
      return toPassword(ctx, next);
    },

    /** The second factor (an app code or a recovery code), or the request for an account reset. */
    async submitFactor(ctx: Context) {
      const form = await readPost(ctx, factorForm);
      const flow = await flowOf(ctx, 'recover', ['factor']);
      const personId = flow.personId!;
      if (form.reset !== undefined) {
        const requested = await deps.recovery.requestReset(personId, localeFor(ctx));
        if (!requested.ok) {
          return message(ctx, { title: 'recover.reset_requested_title', alert: requested.reason === 'no_phone' ? 'recover.reset_no_phone' : 'error.session_expired', paragraphs: ['selfservice.counter_now'] }, 400);
        }
        await flows.put(ctx, { ...flow, step: 'reset_requested' });
        return resetRequested(ctx);
      }
      const method = form.method ?? 'totp';
      const code = (form.code ?? '').trim();
      if (method === 'recovery') {
        const used = await deps.recoveryCodes.use(personId, code);
        if (!used.ok) {
          deps.audit.record(used.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: personId, method, journey: 'recover' });
          return renderFactor(ctx, flow, { method, error: used.reason === 'locked' ? 'mfa.locked' : 'mfa.invalid', status: used.reason === 'locked' ? 429 : 400 });
        }
        deps.audit.record('RECOVERY_CODE_USED', { person: personId, remaining: used.remaining, journey: 'recover' });
        return toPassword(ctx, flow, 'recovery');
      }
      const verified = await deps.totp.verify(personId, code);
      if (!verified.ok) {
        deps.audit.record(verified.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: personId, method, journey: 'recover', reason: verified.reason });
        const error: MessageKey = verified.reason === 'locked' ? 'mfa.locked' : verified.reason === 'replayed' ? 'mfa.replayed' : 'mfa.invalid';
        return renderFactor(ctx, flow, { method, error, status: verified.reason === 'locked' ? 429 : 400 });
      }
      deps.audit.record('MFA_SUCCEEDED', { person: personId, method, journey: 'recover' });
      return toPassword(ctx, flow, 'totp');
    },

    async submitPasskey(ctx: Context) {
      const form = await readPost(ctx, passkeyForm);
      const flow = await flowOf(ctx, 'recover', ['factor']);
      const personId = flow.personId!;
      const kept = flow.passkeyChallenge;
      const rest: RecoverFlow = { ...flow };
      delete rest.passkeyChallenge;
      // A challenge answers one attempt only, whatever the outcome.
      await flows.put(ctx, rest);
      if (!kept || now() - kept.issuedAt > PASSKEY_CHALLENGE_TTL_MS) return renderFactor(ctx, rest, { error: 'mfa.passkey_expired' });
      const result = await deps.passkeys.finishAuthentication(personId, form.response, kept.value);
      if (!result.ok) {
        deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: personId, method: 'passkey', journey: 'recover', reason: result.reason });
        return renderFactor(ctx, rest, { error: result.reason === 'locked' ? 'mfa.passkey_locked' : 'mfa.passkey_failed', status: result.reason === 'locked' ? 429 : 400 });
      }
      deps.audit.record('MFA_SUCCEEDED', { person: personId, method: 'passkey', journey: 'recover' });
      return toPassword(ctx, rest, 'passkey');
    },

    async submitRecoverPassword(ctx: Context) {
      const form = await readPost(ctx, passwordForm);
      const flow = await flowOf(ctx, 'recover', ['password', 'done']);
      const personId = flow.personId!;
      if (flow.step === 'done') {
        // The same form posted again after it set the password (a double click): the same answer.
        if (personId && repeatable(flow) && (await deps.recovery.isPassword(personId, form.password, flow.passwordTag))) return recovered(ctx, flow);
        throw new AppError('wrong_step', 400, 'error.session_expired');
      }
      // The journey's guard: an account with a second factor cannot reach this step without it.
      if (!flow.factor && (await deps.recovery.hasFactor(personId))) {
        await flows.put(ctx, { ...flow, step: 'factor' });
        return renderFactor(ctx, { ...flow, step: 'factor' });
      }
      const result = await deps.recovery.setPassword(personId, form.password, form.password_confirm, flow.factor, localeFor(ctx), flow.passwordTag, flow.contactKey);
      if (!result.ok) {
        if (result.reason === 'unavailable') throw new AppError('account_unavailable', 400, 'error.session_expired');
        return renderPassword(ctx, '/recover/password', 'recover.password_title', { error: PASSWORD_ERRORS[result.reason] ?? 'password.invalid', minimum: flow.factor ? 8 : 12 });
      }
      const next: RecoverFlow = { kind: 'recover', step: 'done', personId, passwordTag: result.passwordTag, finishedAt: now(), ...(flow.origin ? { origin: flow.origin } : {}) };
      await flows.put(ctx, next);
      return recovered(ctx, next);
    },

    // ---- the account reset's links ----

    /** The cancel link: a page with a button (a GET changes nothing: mail scanners open links). */
    async showCancel(ctx: Context) {
      const token = String(ctx.params.token);
      const opened = await deps.recovery.openToken(token, 'cancel');
      if (!opened) return message(ctx, { title: 'reset.cancel_title', alert: 'reset.link_invalid' }, 404);
      render(ctx, 'selfservice/confirm', (t) => ({
        title: t('reset.cancel_title'),
        intro: t('reset.cancel_intro'),
        action: '/recover/cancel',
        token,
        button: t('reset.cancel_button'),
      }));
    },

    async submitCancel(ctx: Context) {
      const form = await readPost(ctx, cancelForm);
      const cancelled = await deps.recovery.cancelReset(form.token);
      if (!cancelled) return message(ctx, { title: 'reset.cancel_title', alert: 'reset.link_invalid' }, 404);
      return message(ctx, { title: 'reset.cancelled_title', paragraphs: ['reset.cancelled_body'], link: { href: '/account', text: 'recover.to_account' } });
    },

    /**
     * The link sent after the wait: a page with a button, like the cancel link's (an SMS app's link
     * preview opens the link; only the citizen's press uses it).
     */
    async openReset(ctx: Context) {
      const token = String(ctx.params.token);
      const opened = await deps.recovery.openToken(token, 'complete');
      if (!opened) return message(ctx, { title: 'reset.title', alert: 'reset.link_invalid' }, 404);
      render(ctx, 'selfservice/confirm', (t) => ({
        title: t('reset.title'),
        intro: t('reset.open_intro'),
        action: '/recover/reset/open',
        token,
        button: t('reset.open_button'),
      }));
    },

    /** The press: the link is used up and the reset continues in this browser only. */
    async claimReset(ctx: Context) {
      const form = await readPost(ctx, cancelForm);
      const claimed = await deps.recovery.claimResetLink(form.token);
      if (!claimed) return message(ctx, { title: 'reset.title', alert: 'reset.link_invalid' }, 404);
      await flows.put(ctx, { kind: 'reset', step: 'password', personId: claimed.personId, resetId: claimed.resetId });
      ctx.status = 303;
      ctx.redirect('/recover/reset');
    },

    async showReset(ctx: Context) {
      rememberLocale(ctx);
      const found = await flows.get(ctx);
      if (found?.flow.kind !== 'reset') return message(ctx, { title: 'reset.title', alert: 'reset.link_invalid' }, 404);
      if (found.flow.step === 'done') return resetDone(ctx);
      return renderPassword(ctx, '/recover/reset', 'reset.title', { intro: 'reset.intro' });
    },

    async submitReset(ctx: Context) {
      const form = await readPost(ctx, passwordForm);
      const flow = await flowOf(ctx, 'reset', ['password', 'done']);
      if (flow.step === 'done') {
        // The same form posted again after it reset the account (a double click): the same answer.
        if (repeatable(flow) && (await deps.recovery.isPassword(flow.personId, form.password, flow.passwordTag))) return resetDone(ctx);
        throw new AppError('wrong_step', 400, 'error.session_expired');
      }
      const result = await deps.recovery.completeReset(flow, form.password, form.password_confirm, localeFor(ctx));
      if (!result.ok) {
        if (result.reason === 'unavailable') {
          await flows.clear(ctx);
          return message(ctx, { title: 'reset.title', alert: 'reset.link_invalid' }, 400);
        }
        return renderPassword(ctx, '/recover/reset', 'reset.title', { intro: 'reset.intro', error: PASSWORD_ERRORS[result.reason] ?? 'password.invalid' });
      }
      await flows.put(ctx, { ...flow, step: 'done', passwordTag: result.passwordTag, finishedAt: now() });
      return resetDone(ctx);
    },
  };

  function resetDone(ctx: Context) {
    message(ctx, { title: 'reset.done_title', alert: 'reset.done_body', paragraphs: ['reset.done_level'], link: { href: '/account', text: 'recover.to_account' } });
  }
}
export type SelfServiceController = ReturnType<typeof createSelfServiceController>;
