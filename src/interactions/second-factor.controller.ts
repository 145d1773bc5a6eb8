/**
 * The second step of a sign-in: an authenticator-app code or a recovery code, enrolment of an
 * authenticator app inside the sign-in when the portal needs a level the person cannot reach yet,
 * and the recovery codes shown once. Levels (PRODUCT.md):
 * - a password alone gives `low`;
 * - password + second factor gives `substantial`;
 * - password + authenticator app or passkey, for a person of identity level 2, gives `high` (a
 *   recovery code never does: it is for getting back in, not for the highest assurance).
 * `acr` and `amr` are set only once both factors have passed (ten mistakes #8).
 *
 * Passkeys: the page embeds the WebAuthn options in a `data-options` attribute (escaped like any
 * other value) and /static/webauthn.js runs the ceremony, then posts the answer as a JSON string
 * in an ordinary form field, with the CSRF token, to `/passkey` (sign-in) or `/passkey-register`
 * (enrolment). The challenge stays in the journey (server-side), is replaced each time the page is
 * shown, expires after PASSKEY_CHALLENGE_TTL_MS and is forgotten before an answer is checked.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuditService } from '../audit/index.js';
import type { FactorRepository, Person, PersonRepository } from '../store/index.js';
import { CODE_ATTEMPTS, PASSKEY_CHALLENGE_TTL_MS, keptAsOnlyFactor, maskEmail, maskPhone, type FactorNotices, type MessageCodeService, type PasskeyService, type RecoveryService, type TotpService } from '../mfa/index.js';
import { AppError } from '../http/errors.js';
import { parseForm, readForm } from '../http/body.js';
import { assertCsrf, assertSameOrigin, type Csrf } from '../http/csrf.js';
import { translator, type MessageKey, type Translate } from '../http/i18n.js';
import { localeFor } from '../http/locale.js';
import type { Renderer } from '../http/render.js';
import { LOA, RANKS } from '../provider/levels.js';
import type { InteractionView, Interactions } from './oidc-interactions.js';
import { passwordTag } from '../selfservice/recovery.service.js';
import type { Journey, Journeys } from './journey.js';
import { requestedRankOf } from './requested-level.js';

export interface SecondFactorDeps {
  interactions: Interactions;
  journeys: Journeys;
  persons: PersonRepository;
  factors: FactorRepository;
  totp: TotpService;
  recovery: RecoveryService;
  passkeys: PasskeyService;
  messageCodes: MessageCodeService;
  notices: FactorNotices;
  /** Whether the SSO session with this uid is still live (idle and absolute limits). */
  sessionLive: (sessionUid: string) => Promise<boolean>;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
  issuerOrigin: string;
  now?: () => number;
}

const RANK_HIGH = RANKS.high;
const RANK_SUBSTANTIAL = RANKS.substantial;

const codeForm = {
  _csrf: z.string().max(128),
  method: z.enum(['totp', 'recovery']).optional(),
  code: z.string().max(64),
};
const enrolForm = { _csrf: z.string().max(128), code: z.string().max(64) };
const sendCodeForm = { _csrf: z.string().max(128), channel: z.enum(['sms', 'email']) };
const continueForm = { _csrf: z.string().max(128), next: z.enum(['continue', 'regenerate']).optional() };
/** The WebAuthn answer, as the JSON string webauthn.js puts in the field (checked by the passkey service). */
const passkeyForm = { _csrf: z.string().max(128), response: z.string().max(12_000) };

/** The label a passkey made during a sign-in gets (the citizen can see it on the account page). */
const PASSKEY_LABEL = 'Khóa truy cập (passkey)';

const PASSKEY_SIGN_IN_ERRORS: Record<string, MessageKey> = {
  malformed: 'mfa.passkey_failed',
  invalid: 'mfa.passkey_failed',
  unknown_credential: 'mfa.passkey_unknown',
  wrong_person: 'mfa.passkey_unknown',
  cloned: 'mfa.passkey_cloned',
};
const PASSKEY_ENROL_ERRORS: Record<string, MessageKey> = {
  malformed: 'enrol.passkey_failed',
  invalid: 'enrol.passkey_failed',
  duplicate: 'enrol.passkey_duplicate',
};
const PASSKEY_ENROL_ERROR_KEYS = new Set<MessageKey>([...Object.values(PASSKEY_ENROL_ERRORS), 'mfa.passkey_expired']);

export type AfterPassword = 'finish' | 'second_factor' | 'enrol' | 'unmet';

/**
 * What follows a proven password (or an existing session asked for more):
 * a person with a second factor always uses it; one without it enrols when the request needs more
 * than `low`; `high` needs identity level 2 whatever the factors.
 */
export function nextStep(required: number, person: Pick<Person, 'level'>, hasFactor: boolean): AfterPassword {
  if (required >= RANK_HIGH && person.level < 2) return 'unmet';
  if (hasFactor) return 'second_factor';
  if (required >= RANK_SUBSTANTIAL) return 'enrol';
  return 'finish';
}

export async function hasSecondFactor(factors: FactorRepository, personId: string): Promise<boolean> {
  return (await factors.listForPerson(personId)).some((f) => f.confirmed);
}

export function createSecondFactorController(deps: SecondFactorDeps) {
  const { interactions, journeys, renderer, csrf } = deps;
  const now = deps.now ?? Date.now;
  const self = (uid: string) => `/interaction/${uid}`;
  const abortHref = (uid: string) => `/interaction/${uid}/abort?reason=cancel`;

  /**
   * The person of a journey, while what the journey proved still holds: the account is active, no
   * "this wasn't me" asks for a new password, the password checked here is still the password, and
   * nothing was ended since the journey began (a lock, a reset, "this wasn't me"). A sign-in left
   * open on a page must not finish, or bind a factor, after its owner took the account back.
   */
  async function person(journey: Pick<Journey, 'personId' | 'startedAt' | 'passwordTag'>): Promise<Person> {
    const p = await deps.persons.findById(journey.personId);
    const revoked = !!p && p.accessRevokedBefore !== null && journey.startedAt !== undefined && p.accessRevokedBefore > journey.startedAt;
    const changed = !!p && journey.passwordTag !== undefined && journey.passwordTag !== passwordTag(p.passwordHash);
    if (!p || p.status !== 'active' || p.passwordResetRequired || revoked || changed) throw new AppError('account_unavailable', 400, 'error.session_expired');
    return p;
  }

  /** Messages webauthn.js shows when the browser cannot or did not complete the ceremony. */
  const scriptMessages = (t: Translate, failed: MessageKey, exists: MessageKey) => ({
    unsupported: t('mfa.passkey_unsupported'),
    cancelled: t('mfa.passkey_cancelled'),
    failed: t(failed),
    exists: t(exists),
  });

  async function renderCode(ctx: Context, view: InteractionView, portalName: string, journey: Journey, opts: { method?: 'totp' | 'recovery'; error?: MessageKey; errorFor?: 'code' | 'passkey'; status?: number } = {}) {
    const method = opts.method ?? 'totp';
    const hasRecovery = (await deps.recovery.remaining(journey.personId)) > 0;
    const factors = (await deps.factors.listForPerson(journey.personId)).filter((f) => f.confirmed);
    const hasTotp = factors.some((f) => f.type === 'totp');
    const passkeys = factors.filter((f) => f.type === 'passkey');
    let passkeyOptions: string | null = null;
    if (passkeys.length > 0 && method !== 'recovery') {
      const { options, challenge } = await deps.passkeys.authenticationOptions(passkeys);
      await journeys.put(view.uid, { ...journey, passkeyChallenge: { value: challenge, purpose: 'authenticate', issuedAt: now() } });
      passkeyOptions = JSON.stringify(options);
    }
    const shownOptions = passkeyOptions;
    const locale = localeFor(ctx, view.params.ui_locales);
    const messages = method === 'recovery' ? [] : await messageOptions(view, await person(journey), translator(locale));
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/second-factor', locale, (t) => ({
      messageOptions: messages,
      sendCodeAction: `${self(view.uid)}/send-code`,
      title: t('mfa.title'),
      portalName,
      method,
      hasRecovery,
      hasTotp,
      passkey: shownOptions === null ? null : {
        action: `${self(view.uid)}/passkey`,
        options: shownOptions,
        messages: scriptMessages(t, 'mfa.passkey_failed', 'mfa.passkey_failed'),
      },
      codeError: !!opts.error && opts.errorFor !== 'passkey',
      action: `${self(view.uid)}/second-factor`,
      selfHref: self(view.uid),
      abortHref: abortHref(view.uid),
      csrf: csrf.token(view.uid),
      error: opts.error ? t(opts.error, { portal: portalName }) : null,
    }), opts.status ?? 200);
  }

  /**
   * Enrolment inside a sign-in is for a person without a second factor. Once one exists (added
   * meanwhile, elsewhere), the pending seed is dropped and the sign-in asks for that factor: an
   * enrolment page left open never binds a factor next to it.
   */
  async function useExistingFactor(ctx: Context, view: InteractionView, portalName: string, journey: Journey) {
    const next: Journey = { ...journey, stage: 'second_factor' };
    delete next.enrolFactorId;
    delete next.passkeyChallenge;
    if (journey.enrolFactorId) {
      const pending = await deps.factors.find(journey.enrolFactorId);
      if (pending && !pending.confirmed && pending.personId === journey.personId) await deps.factors.remove(journey.personId, pending.id);
    }
    await journeys.put(view.uid, next);
    deps.audit.record('MFA_FAILED', { person: journey.personId, stage: 'enrol', reason: 'factor_exists', portal: view.clientId });
    return renderCode(ctx, view, portalName, next, { error: 'enrol.factor_added', status: 400 });
  }

  async function renderEnrol(ctx: Context, view: InteractionView, portalName: string, journey: Journey, error?: MessageKey) {
    if (await hasSecondFactor(deps.factors, journey.personId)) return useExistingFactor(ctx, view, portalName, journey);
    const p = await person(journey);
    const accountName = `${p.pid.slice(0, 3)}…${p.pid.slice(-3)}`;
    let enrolment = journey.enrolFactorId ? await deps.totp.resumeEnrolment(p.id, journey.enrolFactorId, accountName) : undefined;
    if (!enrolment) enrolment = await deps.totp.startEnrolment(p.id, 'Ứng dụng xác thực', accountName);
    const shown = enrolment;
    // The passkey alternative: new creation options (and challenge) each time the page is shown.
    const existing = (await deps.factors.listForPerson(p.id)).filter((f) => f.type === 'passkey');
    const { options, challenge } = await deps.passkeys.registrationOptions(p, existing);
    await journeys.put(view.uid, {
      ...journey,
      enrolFactorId: enrolment.factorId,
      passkeyChallenge: { value: challenge, purpose: 'register', issuedAt: now() },
    });
    const passkeyOptions = JSON.stringify(options);
    const locale = localeFor(ctx, view.params.ui_locales);
    const messages = await messageOptions(view, p, translator(locale));
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/enrol-totp', locale, (t) => ({
      messageOptions: messages,
      sendCodeAction: `${self(view.uid)}/send-code`,
      title: t('enrol.title'),
      portalName,
      action: `${self(view.uid)}/enrol`,
      abortHref: abortHref(view.uid),
      csrf: csrf.token(view.uid),
      qrDataUrl: shown.qrDataUrl,
      secret: shown.secret,
      passkey: {
        action: `${self(view.uid)}/passkey-register`,
        options: passkeyOptions,
        messages: scriptMessages(t, 'enrol.passkey_failed', 'enrol.passkey_duplicate'),
      },
      codeError: !!error && !PASSKEY_ENROL_ERROR_KEYS.has(error),
      error: error ? t(error) : null,
    }), error ? 400 : 200);
  }

  /** The codes-by-message the person can ask for here: contacts on file, channels configured, never for `high`. */
  async function messageOptions(view: InteractionView, p: Person, t: Translate) {
    if (requestedRankOf(view) >= RANK_HIGH) return [];
    const channels = deps.messageCodes.channels();
    const out: Array<{ channel: 'sms' | 'email'; label: string }> = [];
    if (p.phone && channels.has('sms')) out.push({ channel: 'sms', label: t('mfa.message_send_sms', { to: maskPhone(p.phone) }) });
    if (p.email && channels.has('email')) out.push({ channel: 'email', label: t('mfa.message_send_email', { to: maskEmail(p.email) }) });
    return out;
  }

  function renderMessageCode(ctx: Context, view: InteractionView, portalName: string, journey: Journey, error?: MessageKey, status = 200) {
    const sent = journey.messageCode!;
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/message-code', localeFor(ctx, view.params.ui_locales), (t) => ({
      title: t('mfa.title'),
      portalName,
      intro: t('mfa.message_intro', { to: sent.sentTo }),
      channel: sent.channel,
      action: `${self(view.uid)}/message-code`,
      sendCodeAction: `${self(view.uid)}/send-code`,
      backHref: `${self(view.uid)}?method=other`,
      abortHref: abortHref(view.uid),
      csrf: csrf.token(view.uid),
      error: error ? t(error) : null,
    }), status);
  }

  function renderRecovery(ctx: Context, view: InteractionView, opts: { codes?: string[]; notice?: string; offerRegenerate?: boolean; title: MessageKey }) {
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/recovery-codes', localeFor(ctx, view.params.ui_locales), (t) => ({
      title: t(opts.title),
      codes: opts.codes ?? [],
      shown: !opts.codes,
      notice: opts.notice ?? null,
      offerRegenerate: !!opts.offerRegenerate,
      continueAction: `${self(view.uid)}/continue`,
      csrf: csrf.token(view.uid),
    }));
  }

  function renderLocked(ctx: Context, view: InteractionView, portalName: string, alert: MessageKey = 'mfa.locked') {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Retry-After', String(CODE_ATTEMPTS.baseDelayMs / 1000));
    renderer.render(ctx, 'message', localeFor(ctx, view.params.ui_locales), (t) => ({
      title: t('mfa.title'),
      alert: t(alert),
      link: { href: abortHref(view.uid), text: t('login.cancel', { portal: portalName }) },
    }), 429);
  }

  /** Finishes the login with the level both factors earned. */
  async function finish(ctx: Context, view: InteractionView, journey: Journey) {
    const p = await person(journey);
    const method = journey.mfa?.method;
    if (!method) throw new AppError('wrong_step', 400, 'error.session_expired');
    // An authenticator app or a passkey gives `high` at identity level 2 — but not in the sign-in that
    // bound it (that binding rested on the password alone). Recovery codes and codes by message
    // never give `high`.
    const strong = method === 'totp' || method === 'passkey';
    const acr = strong && p.level === 2 && !journey.enrolledHere ? LOA.high : LOA.substantial;
    // RFC 8176: pwd + otp (authenticator app, recovery and e-mail codes are one-time codes) or sms,
    // and mfa; a passkey is proof of possession of a key: hwk (device-bound) or swk (synced).
    const amr = method === 'passkey' ? ['pwd', journey.mfa?.amr ?? 'swk', 'mfa'] : method === 'sms' ? ['pwd', 'sms', 'mfa'] : ['pwd', 'otp', 'mfa'];
    await journeys.clear(view.uid);
    await interactions.finish(ctx, {
      login: { accountId: p.id, acr, amr, remember: false },
    });
  }

  /**
   * The journey's passkey challenge for `purpose`, if one is there and fresh, and the journey
   * without it, already saved: a challenge answers one attempt only, whatever the outcome.
   */
  async function takeChallenge(uid: string, journey: Journey, purpose: 'authenticate' | 'register') {
    const kept = journey.passkeyChallenge;
    const rest: Journey = { ...journey };
    delete rest.passkeyChallenge;
    if (kept) await journeys.put(uid, rest);
    const fresh = kept && kept.purpose === purpose && now() - kept.issuedAt <= PASSKEY_CHALLENGE_TTL_MS;
    return { challenge: fresh ? kept.value : undefined, journey: rest };
  }

  async function loadJourney(ctx: Context, stage: Journey['stage'][]) {
    assertSameOrigin(ctx, deps.issuerOrigin);
    const uid = String(ctx.params.uid);
    const raw = await readForm(ctx);
    const view = await interactions.load(ctx, uid);
    assertCsrf(csrf, view.uid, raw._csrf);
    const journey = await journeys.get(view.uid);
    if (view.prompt.name !== 'login' || !journey || !stage.includes(journey.stage)) {
      throw new AppError('wrong_step', 400, 'error.session_expired');
    }
    // A step-up rests on the session it started from: it must still be live and the same person's.
    if (!journey.passwordHere && (view.sessionAccountId !== journey.personId || !journey.sessionUid || !(await deps.sessionLive(journey.sessionUid)))) {
      await journeys.clear(view.uid);
      throw new AppError('session_ended', 400, 'error.session_expired');
    }
    // Every answer rests on what the journey proved: refused once that no longer holds (person()).
    try {
      await person(journey);
    } catch (err) {
      await journeys.clear(view.uid);
      throw err;
    }
    const client = await interactions.client(view.clientId);
    return { raw, view, journey, portalName: client.name };
  }

  return {
    /** Renders the page for the stage this sign-in is at (GET /interaction/:uid while a journey exists). */
    async show(ctx: Context, view: InteractionView, portalName: string, journey: Journey) {
      if (journey.messageCode && (journey.stage === 'second_factor' || journey.stage === 'enrol')) {
        if (ctx.query.method !== 'other') return renderMessageCode(ctx, view, portalName, journey);
        journey = { ...journey };
        delete journey.messageCode;
        await journeys.put(view.uid, journey);
      }
      switch (journey.stage) {
        case 'second_factor': {
          const method = ctx.query.method === 'recovery' ? 'recovery' : 'totp';
          return renderCode(ctx, view, portalName, journey, { method });
        }
        case 'enrol':
          return renderEnrol(ctx, view, portalName, journey);
        case 'recovery_codes':
          return renderRecovery(ctx, view, { title: 'recovery.title' });
        case 'recovery_used':
          return renderRecovery(ctx, view, { title: 'recovery.used_title', offerRegenerate: true });
        default:
          throw new AppError('wrong_step', 400, 'error.session_expired');
      }
    },

    /** Starts the second step for a person whose password was just proven, or whose session is asked for more. */
    async begin(ctx: Context, view: InteractionView, portalName: string, personId: string, stage: 'second_factor' | 'enrol', passwordHere: boolean) {
      const at = await deps.persons.findById(personId);
      const journey: Journey = {
        // The real clock, as `accessRevokedBefore` is (provider/access.ts: oidc-provider's clock).
        personId, stage, passwordHere, startedAt: Date.now(), ...(at ? { passwordTag: passwordTag(at.passwordHash) } : {}),
        ...(passwordHere ? {} : { sessionUid: view.sessionUid }),
      };
      await journeys.put(view.uid, journey);
      if (stage === 'enrol') return renderEnrol(ctx, view, portalName, journey);
      return renderCode(ctx, view, portalName, journey);
    },

    async submitCode(ctx: Context) {
      const { raw, view, journey, portalName } = await loadJourney(ctx, ['second_factor']);
      const form = parseForm(raw, codeForm);
      const method = form.method ?? 'totp';
      const p = await person(journey);
      const required = requestedRankOf(view);

      if (method === 'recovery') {
        if (required >= RANK_HIGH) return renderCode(ctx, view, portalName, journey, { method, error: 'mfa.recovery_not_high', status: 400 });
        const result = await deps.recovery.use(p.id, form.code);
        if (!result.ok) {
          deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: p.id, method, portal: view.clientId });
          if (result.reason === 'locked') return renderLocked(ctx, view, portalName);
          return renderCode(ctx, view, portalName, journey, { method, error: 'mfa.invalid', status: 400 });
        }
        deps.audit.record('RECOVERY_CODE_USED', { person: p.id, remaining: result.remaining });
        const next: Journey = { ...journey, stage: 'recovery_used', mfa: { method: 'recovery' } };
        await journeys.put(view.uid, next);
        return renderRecovery(ctx, view, {
          title: 'recovery.used_title',
          offerRegenerate: true,
          notice: translator(localeFor(ctx, view.params.ui_locales))('recovery.used_body', { remaining: String(result.remaining) }),
        });
      }

      const result = await deps.totp.verify(p.id, form.code.trim());
      if (!result.ok) {
        deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: p.id, method, reason: result.reason, portal: view.clientId });
        if (result.reason === 'locked') return renderLocked(ctx, view, portalName);
        return renderCode(ctx, view, portalName, journey, { method, error: result.reason === 'replayed' ? 'mfa.replayed' : 'mfa.invalid', status: 400 });
      }
      deps.audit.record('MFA_SUCCEEDED', { person: p.id, method, factor: result.factor.id });
      await finish(ctx, view, { ...journey, mfa: { method: 'totp' } });
    },

    async submitEnrol(ctx: Context) {
      const { raw, view, journey, portalName } = await loadJourney(ctx, ['enrol']);
      const form = parseForm(raw, enrolForm);
      if (!journey.enrolFactorId) throw new AppError('wrong_step', 400, 'error.session_expired');
      const result = await deps.totp.confirmEnrolment(journey.personId, journey.enrolFactorId, form.code.trim(), { onlyFactor: true });
      if (!result.ok && result.reason === 'factor_exists') return useExistingFactor(ctx, view, portalName, journey);
      if (!result.ok) {
        deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: journey.personId, method: 'totp', stage: 'enrol', portal: view.clientId });
        if (result.reason === 'locked') return renderLocked(ctx, view, portalName);
        return renderEnrol(ctx, view, portalName, journey, result.reason === 'replayed' ? 'mfa.replayed' : 'mfa.invalid');
      }
      deps.audit.record('FACTOR_ENROLLED', { person: journey.personId, type: 'totp', factor: journey.enrolFactorId });
      await deps.notices.factorAdded(journey.personId, 'totp', localeFor(ctx, view.params.ui_locales));
      const codes = await deps.recovery.regenerate(journey.personId);
      deps.audit.record('RECOVERY_CODES_GENERATED', { person: journey.personId });
      await journeys.put(view.uid, { ...journey, stage: 'recovery_codes', mfa: { method: 'totp' }, enrolledHere: true });
      return renderRecovery(ctx, view, { title: 'recovery.title', codes });
    },

    /** A passkey assertion as the second factor (POST /interaction/:uid/passkey). */
    async submitPasskey(ctx: Context) {
      const loaded = await loadJourney(ctx, ['second_factor']);
      const { raw, view, portalName } = loaded;
      const form = parseForm(raw, passkeyForm);
      const p = await person(loaded.journey);
      const { challenge, journey } = await takeChallenge(view.uid, loaded.journey, 'authenticate');
      if (!challenge) {
        deps.audit.record('MFA_FAILED', { person: p.id, method: 'passkey', type: 'passkey', reason: 'expired', portal: view.clientId });
        return renderCode(ctx, view, portalName, journey, { error: 'mfa.passkey_expired', errorFor: 'passkey', status: 400 });
      }
      const result = await deps.passkeys.finishAuthentication(p.id, form.response, challenge);
      if (!result.ok) {
        deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: p.id, method: 'passkey', type: 'passkey', reason: result.reason, portal: view.clientId });
        if (result.reason === 'locked') return renderLocked(ctx, view, portalName, 'mfa.passkey_locked');
        return renderCode(ctx, view, portalName, journey, { error: PASSKEY_SIGN_IN_ERRORS[result.reason] ?? 'mfa.passkey_failed', errorFor: 'passkey', status: 400 });
      }
      deps.audit.record('MFA_SUCCEEDED', {
        person: p.id, method: 'passkey', type: 'passkey', factor: result.factor.id, amr: result.amr, user_verified: result.userVerified,
      });
      await finish(ctx, view, { ...journey, mfa: { method: 'passkey', amr: result.amr } });
    },

    /** A passkey registered instead of an authenticator app, inside the sign-in (POST /interaction/:uid/passkey-register). */
    async submitPasskeyRegister(ctx: Context) {
      const loaded = await loadJourney(ctx, ['enrol']);
      const { raw, view, portalName } = loaded;
      const form = parseForm(raw, passkeyForm);
      const personId = loaded.journey.personId;
      // Enrolment inside a sign-in is for a person without a second factor; one added meanwhile
      // (elsewhere) must be used instead.
      if (await hasSecondFactor(deps.factors, personId)) return useExistingFactor(ctx, view, portalName, loaded.journey);
      const { challenge, journey } = await takeChallenge(view.uid, loaded.journey, 'register');
      if (!challenge) {
        deps.audit.record('MFA_FAILED', { person: personId, method: 'passkey', type: 'passkey', stage: 'enrol', reason: 'expired', portal: view.clientId });
        return renderEnrol(ctx, view, portalName, journey, 'mfa.passkey_expired');
      }
      const result = await deps.passkeys.finishRegistration(personId, form.response, challenge, PASSKEY_LABEL);
      if (!result.ok) {
        deps.audit.record('MFA_FAILED', { person: personId, method: 'passkey', type: 'passkey', stage: 'enrol', reason: result.reason, portal: view.clientId });
        return renderEnrol(ctx, view, portalName, journey, PASSKEY_ENROL_ERRORS[result.reason] ?? 'enrol.passkey_failed');
      }
      if (!(await keptAsOnlyFactor(deps.factors, personId, result.factor.id))) return useExistingFactor(ctx, view, portalName, journey);
      deps.audit.record('FACTOR_ENROLLED', { person: personId, type: 'passkey', factor: result.factor.id, amr: result.amr });
      await deps.notices.factorAdded(personId, 'passkey', localeFor(ctx, view.params.ui_locales));
      // The authenticator app offered on the same page was not chosen: drop its unconfirmed seed.
      const next: Journey = { ...journey, stage: 'recovery_codes', mfa: { method: 'passkey', amr: result.amr }, enrolledHere: true };
      if (journey.enrolFactorId) {
        const pending = await deps.factors.find(journey.enrolFactorId);
        if (pending && !pending.confirmed && pending.personId === personId) await deps.factors.remove(personId, pending.id);
        delete next.enrolFactorId;
      }
      const codes = await deps.recovery.regenerate(personId);
      deps.audit.record('RECOVERY_CODES_GENERATED', { person: personId });
      await journeys.put(view.uid, next);
      return renderRecovery(ctx, view, { title: 'recovery.title', codes });
    },

    /** Sends a one-time code by SMS or e-mail to a contact on file (POST /interaction/:uid/send-code). */
    async sendCode(ctx: Context) {
      const { raw, view, journey, portalName } = await loadJourney(ctx, ['second_factor', 'enrol']);
      const form = parseForm(raw, sendCodeForm);
      const p = await person(journey);
      if (requestedRankOf(view) >= RANK_HIGH) return renderCode(ctx, view, portalName, journey, { error: 'mfa.message_not_high', status: 400 });
      const destination = form.channel === 'sms' ? p.phone : p.email;
      if (!destination || !deps.messageCodes.channels().has(form.channel)) throw new AppError('no_destination', 400, 'error.invalid_request');
      const sent = await deps.messageCodes.send(p.id, form.channel, destination, localeFor(ctx, view.params.ui_locales));
      if (!sent.ok) {
        deps.audit.record(sent.reason === 'rate_limited' ? 'MESSAGE_CODE_RATE_LIMITED' : 'MESSAGE_CODE_DELIVERY_FAILED', { person: p.id, channel: form.channel });
        const error: MessageKey = sent.reason === 'rate_limited' ? 'mfa.message_rate_limited' : 'mfa.message_unavailable';
        // A limit is 429 with when to come back; a delivery failure is ours (503).
        const status = sent.reason === 'rate_limited' ? 429 : 503;
        if (sent.reason === 'rate_limited') ctx.set('Retry-After', String(Math.max(1, Math.ceil(sent.retryAfterMs / 1000))));
        if (journey.messageCode) return renderMessageCode(ctx, view, portalName, journey, error, status);
        if (journey.stage === 'enrol') {
          await renderEnrol(ctx, view, portalName, journey, error);
          ctx.status = status;
          return;
        }
        return renderCode(ctx, view, portalName, journey, { error, status });
      }
      deps.audit.record('MESSAGE_CODE_SENT', { person: p.id, channel: form.channel });
      const next: Journey = { ...journey, messageCode: { id: sent.id, channel: form.channel, sentTo: sent.sentTo } };
      await journeys.put(view.uid, next);
      return renderMessageCode(ctx, view, portalName, next);
    },

    /** The code that was sent (POST /interaction/:uid/message-code): `substantial`, never `high`. */
    async submitMessageCode(ctx: Context) {
      const { raw, view, journey, portalName } = await loadJourney(ctx, ['second_factor', 'enrol']);
      const form = parseForm(raw, enrolForm);
      if (!journey.messageCode) throw new AppError('wrong_step', 400, 'error.session_expired');
      const channel = journey.messageCode.channel;
      const result = await deps.messageCodes.verify(journey.personId, journey.messageCode.id, form.code.trim());
      if (!result.ok) {
        deps.audit.record(result.reason === 'locked' ? 'MFA_LOCKED' : 'MFA_FAILED', { person: journey.personId, method: channel, reason: result.reason, portal: view.clientId });
        if (result.reason === 'locked') return renderLocked(ctx, view, portalName);
        return renderMessageCode(ctx, view, portalName, journey, result.reason === 'invalid' ? 'mfa.invalid' : 'mfa.message_expired', 400);
      }
      deps.audit.record('MFA_SUCCEEDED', { person: journey.personId, method: channel });
      await finish(ctx, view, { ...journey, mfa: { method: channel } });
    },

    async submitContinue(ctx: Context) {
      const { raw, view, journey } = await loadJourney(ctx, ['recovery_codes', 'recovery_used']);
      const form = parseForm(raw, continueForm);
      if (form.next === 'regenerate' && journey.stage === 'recovery_used') {
        const codes = await deps.recovery.regenerate(journey.personId);
        deps.audit.record('RECOVERY_CODES_GENERATED', { person: journey.personId });
        await journeys.put(view.uid, { ...journey, stage: 'recovery_codes' });
        return renderRecovery(ctx, view, { title: 'recovery.title', codes });
      }
      await finish(ctx, view, journey);
    },
  };
}
