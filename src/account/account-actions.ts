/**
 * What the citizen does to their own account that changes its state, whichever page or link it
 * comes from: change the password, say "this wasn't me", lock the account. Each goes through the
 * account-state table (accounts/account-state.ts), is audited and is told to the person's contacts.
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { AuthenticationService } from '../accounts/index.js';
import type { PasswordHasher } from '../accounts/index.js';
import type { AccountState } from '../accounts/index.js';
import type { FactorRepository, OidcModelStore, PersonRepository } from '../store/index.js';
import type { FactorNotices } from '../mfa/index.js';
import type { Locale } from '../http/i18n.js';
import { checkNewPassword } from '../selfservice/registration.service.js';

/** How long the "this wasn't me" link of a new-browser notice works. */
export const NOT_ME_LINK_TTL_SECONDS = 10 * 24 * 3600;
const NOT_ME_MODEL = 'NotMeLink';
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** The sign-in a "this wasn't me" link is about, as its notice described it. */
export interface NotMeLink {
  /** The link's record key (a hash of its token): CSRF tokens of its page are bound to it. */
  key: string;
  personId: string;
  at: number;
  device: string;
  network: string;
}

export type PasswordChange =
  | { ok: true; sessionsEnded: number }
  | { ok: false; reason: 'wrong_current' | 'throttled' | 'mismatch' | 'too_short' | 'too_long' | 'common' | 'contains_personal' | 'invalid' | 'same_as_old' | 'unavailable' };

export function createAccountActions(deps: {
  persons: PersonRepository;
  factors: FactorRepository;
  oidc: OidcModelStore;
  auth: Pick<AuthenticationService, 'verifyPassword'>;
  hasher: PasswordHasher;
  state: AccountState;
  audit: AuditService;
  notices: FactorNotices;
  issuer: string;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const keyOf = (token: string) => crypto.createHash('sha256').update(`not-me\u0000${token}`).digest('base64url');

  async function readLink(token: string): Promise<NotMeLink | undefined> {
    if (!TOKEN_RE.test(token)) return undefined;
    const key = keyOf(token);
    const rec = await deps.oidc.find(NOT_ME_MODEL, key);
    if (!rec || rec.consumed || typeof rec.accountId !== 'string' || typeof rec.at !== 'number') return undefined;
    return { key, personId: rec.accountId, at: rec.at, device: String(rec.device ?? ''), network: String(rec.network ?? '') };
  }

  return {
    /** Whether the person has a confirmed second factor (the password rules depend on it). */
    hasFactor: async (personId: string) => (await deps.factors.listForPerson(personId)).some((f) => f.confirmed),

    /** A link for a new-browser notice: single use, 10 days, its token stored only as a hash. */
    async issueNotMeLink(personId: string, signIn: { at: number; device: string; network: string }): Promise<string> {
      const token = crypto.randomBytes(32).toString('base64url');
      await deps.oidc.upsert(NOT_ME_MODEL, keyOf(token), { accountId: personId, ...signIn }, NOT_ME_LINK_TTL_SECONDS);
      return `${deps.issuer}/account/not-me/${token}`;
    },

    /** The link's sign-in, while the link is unused and unexpired. */
    openNotMeLink: readLink,

    /** Uses the link up (atomically: of two presses, one acts); its person, or undefined. */
    async useNotMeLink(token: string): Promise<string | undefined> {
      const link = await readLink(token);
      if (!link || !(await deps.oidc.consume(NOT_ME_MODEL, link.key))) return undefined;
      return link.personId;
    },

    /**
     * "This wasn't me": the password is made unusable first (so nobody signs back in with it in
     * between), the account is flagged for the operators, then every session, grant and token
     * ends, this browser's too (NIST SP 800-63B §6.1.2.3: a compromised authenticator is replaced
     * through recovery, which needs a contact on file). False when the account is not active.
     */
    async reportNotMe(personId: string, via: 'activity' | 'notice', locale: Locale): Promise<boolean> {
      const person = await deps.persons.findById(personId);
      if (!person || person.status !== 'active') return false;
      await deps.persons.setPasswordResetRequired(person.id, true);
      await deps.persons.setAttention(person.id, { reason: 'not_me', at: now() });
      const ended = await deps.state.apply('not-me', person);
      deps.audit.record('NOT_ME_REPORTED', { person: person.id, via, sessions_ended: ended });
      await deps.notices.notMeReported(person.id, locale);
      return true;
    },

    /** "Lock my account": at once, everything ends. False when the account is not active. */
    async selfLock(personId: string, locale: Locale): Promise<boolean> {
      const person = await deps.persons.findById(personId);
      if (!person || person.status !== 'active') return false;
      const ended = await deps.state.apply('self-lock', person);
      deps.audit.record('ACCOUNT_SELF_LOCKED', { person: person.id, sessions_ended: ended });
      await deps.notices.selfLocked(person.id, locale);
      return true;
    },

    /**
     * A new password, knowing the current one (PRODUCT.md's rules: 12 characters, or 8 with a
     * second factor; not common; not the number or birth date). Every other session ends, this
     * one stays (ASVS 5.0 7.4.3), and every contact is told.
     */
    async changePassword(personId: string, sessionUid: string, current: string, password: string, confirm: string, locale: Locale): Promise<PasswordChange> {
      const person = await deps.persons.findById(personId);
      if (!person || person.status !== 'active') return { ok: false, reason: 'unavailable' };
      const verdict = await deps.auth.verifyPassword(person, current);
      if (verdict !== 'ok') {
        deps.audit.record('REAUTHENTICATION_FAILED', { person: person.id, action: 'change_password', throttled: verdict === 'throttled' });
        return { ok: false, reason: verdict === 'throttled' ? 'throttled' : 'wrong_current' };
      }
      const hasFactor = (await deps.factors.listForPerson(person.id)).some((f) => f.confirmed);
      const checked = checkNewPassword(password, confirm, { pid: person.pid, birthdate: person.birthdate, hasSecondFactor: hasFactor });
      if (!checked.ok) return checked;
      if (await deps.hasher.verify(person.passwordHash, checked.normalised)) return { ok: false, reason: 'same_as_old' };
      const hash = await deps.hasher.hash(checked.normalised);
      // Compare-and-set: a recovery or another change in between wins, and this one is refused.
      if (!(await deps.persons.updatePasswordHash(person.id, person.passwordHash, hash))) return { ok: false, reason: 'unavailable' };
      const ended = await deps.state.apply('change-password', person, { session: sessionUid });
      deps.audit.record('PASSWORD_CHANGED', { person: person.id, sessions_ended: ended });
      await deps.notices.passwordChanged(person.id, locale);
      return { ok: true, sessionsEnded: ended };
    },
  };
}
export type AccountActions = ReturnType<typeof createAccountActions>;
