/**
 * Registration (Decree 69/2024/ND-CP, identity level 1): identity attributes checked against the
 * population registry, a mobile phone shown to be in the person's hands by a code, then a password.
 *
 * Anti-enumeration (OWASP ASVS 5.0 6.3.8): up to the code, a number that already has an account
 * takes exactly the path of a new one — the same limits, the same registry question, a real code to
 * the phone typed in — so neither the page, its status nor its time tells them apart. Only someone
 * who has proven the phone learns that the number is taken, and every contact of the existing
 * account is told that someone tried.
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { Person, PersonRepository } from '../store/index.js';
import { StoreConflictError } from '../store/index.js';
import { checkPassword, maskPid, splitVietnameseName, type PasswordError, type PasswordHasher } from '../accounts/index.js';
import type { FactorNotices, MessageCodeService } from '../mfa/index.js';
import type { Locale } from '../http/i18n.js';
import type { FlowCode, RegistrationDetails } from './flow.js';
import { keyOf, type LimitName, type SelfServiceLimits } from './limits.js';

/** What the population registry answers (registry/): the connector never throws. */
export interface RegistryVerifier {
  verify(q: { pid: string; fullName: string; birthdate: string; gender: 'male' | 'female'; phone?: string }): Promise<'match' | 'no_match' | 'unavailable'>;
}

export type StartResult =
  | { ok: true; code: FlowCode }
  | { ok: false; reason: 'limited'; limit: LimitName | 'phone'; retryAfterMs: number }
  | { ok: false; reason: 'no_match' | 'registry_unavailable' | 'sms_unavailable' };

export type CodeResult = { ok: true; existing?: Person } | { ok: false; reason: 'invalid' | 'expired' | 'locked' | 'used' };

export type PasswordStepResult =
  | { ok: true; person: Person }
  | { ok: false; reason: PasswordError | 'mismatch' }
  /** The number was registered meanwhile (another browser finished first). */
  | { ok: false; reason: 'exists' };

/** Shared by the password pages of registration, recovery and account reset. */
export function checkNewPassword(password: string, confirm: string, context: { pid: string; birthdate: string; hasSecondFactor: boolean }) {
  if (password.normalize('NFC') !== confirm.normalize('NFC')) return { ok: false as const, reason: 'mismatch' as const };
  return checkPassword(password, { hasSecondFactor: context.hasSecondFactor, userInputs: [context.pid, context.birthdate.replaceAll('-', ''), context.birthdate] });
}

export function createRegistrationService(deps: {
  persons: PersonRepository;
  registry: RegistryVerifier;
  messageCodes: MessageCodeService;
  limits: SelfServiceLimits;
  hasher: PasswordHasher;
  notices: FactorNotices;
  audit: AuditService;
}) {
  const { audit } = deps;

  return {
    /** Registration needs codes by SMS: without a gateway (production) it is not offered. */
    available: () => deps.messageCodes.channels().has('sms'),

    async start(details: RegistrationDetails, ip: string, locale: Locale): Promise<StartResult> {
      if (!deps.messageCodes.channels().has('sms')) return { ok: false, reason: 'sms_unavailable' };
      const limited = await deps.limits.admit('register', ip, details.pid);
      if (limited) {
        audit.record('REGISTRATION_LIMITED', { limit: limited.limit });
        return { ok: false, reason: 'limited', ...limited };
      }
      const answer = await deps.registry.verify({ pid: details.pid, fullName: details.fullName, birthdate: details.birthdate, gender: details.gender, phone: details.phone });
      audit.record('REGISTRATION_REGISTRY_CHECKED', { pid: maskPid(details.pid), outcome: answer });
      if (answer === 'unavailable') return { ok: false, reason: 'registry_unavailable' };
      if (answer === 'no_match') return { ok: false, reason: 'no_match' };
      // The code's limits count per phone (1 a minute, 5 an hour), whoever asks.
      const key = keyOf('register-phone', details.phone);
      const sent = await deps.messageCodes.send(key, 'sms', details.phone, locale);
      if (!sent.ok) {
        if (sent.reason === 'rate_limited') {
          audit.record('REGISTRATION_LIMITED', { limit: 'phone' });
          return { ok: false, reason: 'limited', limit: 'phone', retryAfterMs: sent.retryAfterMs };
        }
        audit.record('MESSAGE_CODE_DELIVERY_FAILED', { channel: 'sms', journey: 'register' });
        return { ok: false, reason: 'sms_unavailable' };
      }
      audit.record('MESSAGE_CODE_SENT', { channel: 'sms', journey: 'register' });
      return { ok: true, code: { id: sent.id, key, channel: 'sms', sentTo: sent.sentTo } };
    },

    /** A new code to the same phone (the same limits). */
    async resend(details: RegistrationDetails, locale: Locale): Promise<StartResult> {
      const key = keyOf('register-phone', details.phone);
      const sent = await deps.messageCodes.send(key, 'sms', details.phone, locale);
      if (!sent.ok) {
        if (sent.reason === 'rate_limited') return { ok: false, reason: 'limited', limit: 'phone', retryAfterMs: sent.retryAfterMs };
        return { ok: false, reason: 'sms_unavailable' };
      }
      audit.record('MESSAGE_CODE_SENT', { channel: 'sms', journey: 'register' });
      return { ok: true, code: { id: sent.id, key, channel: 'sms', sentTo: sent.sentTo } };
    },

    /**
     * Checks the code (5 minutes, once, 5 wrong answers end it). Once the phone is proven, a number
     * that already has an account is said to have one, and its contacts are told.
     */
    async verifyCode(details: RegistrationDetails, code: FlowCode, input: string, locale: Locale): Promise<CodeResult> {
      const result = await deps.messageCodes.verify(code.key, code.id, input.trim());
      if (!result.ok) return result;
      const existing = await deps.persons.findByPid(details.pid);
      if (existing) {
        audit.record('REGISTRATION_EXISTING_ACCOUNT', { person: existing.id });
        await deps.notices.registrationAttempt(existing.id, locale);
        return { ok: true, existing };
      }
      return { ok: true };
    },

    /**
     * Creates the level-1 account with the proven phone, under `id` (chosen when the phone was
     * proven, so that the same form posted twice — a double click — is told apart from another
     * registration of the number: the second post finds its own account and gets the same answer).
     */
    async complete(details: RegistrationDetails, password: string, confirm: string, portal?: string, id: string = crypto.randomUUID()): Promise<PasswordStepResult> {
      const checked = checkNewPassword(password, confirm, { pid: details.pid, birthdate: details.birthdate, hasSecondFactor: false });
      if (!checked.ok) return checked;
      const passwordHash = await deps.hasher.hash(checked.normalised);
      const { familyName, givenName } = splitVietnameseName(details.fullName);
      try {
        const person = await deps.persons.create({
          id,
          pid: details.pid,
          name: details.fullName,
          familyName,
          givenName,
          birthdate: details.birthdate,
          gender: details.gender,
          email: details.email,
          emailVerified: false,
          phone: details.phone,
          phoneVerified: true,
          address: null,
          level: 1,
          passwordHash,
          status: 'active',
        });
        audit.record('REGISTRATION_COMPLETED', { person: person.id, pid: maskPid(person.pid), ...(portal ? { portal } : {}) });
        audit.record('ACCOUNT_CREATED', { person: person.id, pid: maskPid(person.pid), level: 1, via: 'registration' });
        return { ok: true, person };
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
        const mine = await this.madeBy(id, checked.normalised);
        return mine ? { ok: true, person: mine } : { ok: false, reason: 'exists' };
      }
    },

    /** The account this flow made (`id`), if it exists and has this password: a repeated password step. */
    async madeBy(id: string, password: string): Promise<Person | undefined> {
      const p = await deps.persons.findById(id);
      return p && (await deps.hasher.verify(p.passwordHash, password.normalize('NFC'))) ? p : undefined;
    },
  };
}
export type RegistrationService = ReturnType<typeof createRegistrationService>;
