/**
 * A forgotten password: the identification number and a contact on file, a code sent to that
 * contact, then the second factor when the account has one (OWASP ASVS 5.0 6.4.3, NIST SP 800-63B
 * §6.1.2.3: a reset never lowers what the next sign-in asks for), then a new password. A reset ends
 * everything the old password held (account-state.ts, `reset-password`).
 *
 * Anti-enumeration (ASVS 6.3.8): whether the number and contact match an active account, the start
 * does the same work — the same limits, one lookup, one code record written (a decoy's hash is of
 * a code nobody is sent) and the message delivered after the answer — and answers the same page:
 * "if they match an account, we sent a code". A decoy's code is never accepted.
 *
 * Every factor lost: an account reset, which waits (`DINHDANH_ACCOUNT_RESET_WAIT`, 24 h by default)
 * while every contact holds a link that cancels it; then a link to the verified phone sets a new
 * password, removes every factor and recovery code and lowers identity level 2 to 1 (in person
 * again to regain it: Decree 69/2024/ND-CP).
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditService } from '../audit/index.js';
import type { CounterRepository, FactorRepository, OidcModelStore, Person, PersonRepository, RecoveryCodeRepository } from '../store/index.js';
import { maskPid, type AccountState, type PasswordHasher } from '../accounts/index.js';
import type { FactorNotices, MessageCodeService } from '../mfa/index.js';
import type { JobHandler, JobRunner } from '../jobs/index.js';
import type { Locale } from '../http/i18n.js';
import type { FlowCode } from './flow.js';
import { keyOf, type LimitName, type SelfServiceLimits } from './limits.js';
import { checkNewPassword } from './registration.service.js';
import { toE164, toEmail } from './selfservice.validation.js';

export const ACCOUNT_RESET_JOB = 'account-reset-ready';
const RESET_MODEL = 'AccountReset';
const RESET_TOKEN_MODEL = 'AccountResetToken';
/** How long the link sent after the waiting period works. */
export const RESET_LINK_TTL_SECONDS = 24 * 60 * 60;

interface ResetRecord {
  resetId: string;
  personId: string;
  requestedAt: number;
  readyAt: number;
  status: 'pending' | 'ready';
  locale: Locale;
}

/**
 * A person's pending account reset, as the operators' tools see it: `accounts show` lists it, and an
 * operator's `accounts reset-mfa` (the person re-verified at the counter) drops it — its link would
 * otherwise still arrive and reset the account again.
 */
export interface PendingResets {
  find(personId: string): Promise<{ requestedAt: number; readyAt: number; status: 'pending' | 'ready' } | undefined>;
  /** Drops the pending reset, if any (its links then open nothing); true when there was one. */
  drop(personId: string): Promise<boolean>;
}

export function createPendingResets(store: OidcModelStore): PendingResets {
  return {
    async find(personId) {
      const r = (await store.find(RESET_MODEL, personId)) as (ResetRecord & { consumed?: unknown }) | undefined;
      if (!r || r.consumed !== undefined || typeof r.readyAt !== 'number') return undefined;
      return { requestedAt: r.requestedAt, readyAt: r.readyAt, status: r.status };
    },
    async drop(personId) {
      // The same atomic step as a cancel or a completion: whichever comes first decides.
      if (!(await store.consume(RESET_MODEL, personId))) return false;
      await store.destroy(RESET_MODEL, personId);
      return true;
    },
  };
}

interface ResetToken {
  personId: string;
  resetId: string;
  purpose: 'cancel' | 'complete';
}

export type RecoverStart =
  | { ok: true; matched: boolean; personId?: string; code: FlowCode }
  | { ok: false; reason: 'limited'; limit: LimitName | 'contact'; retryAfterMs: number }
  | { ok: false; reason: 'contact_format' | 'channel_unavailable' };

const tokenKey = (token: string) => crypto.createHash('sha256').update(`account-reset\u0000${token}`).digest('base64url');
/** Tells one password hash from another without keeping it (which password a flow's code was proven against, which one it set). */
export const passwordTag = (passwordHash: string) => crypto.createHash('sha256').update(`password-tag\u0000${passwordHash}`).digest('base64url').slice(0, 22);
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;


/** Active, or locked by its owner (LockReason `self`): what recovery may act on. */
export function isRecoverable(p: Person): boolean {
  return p.status === 'active' || (p.status === 'locked' && p.lockReason === 'self');
}

export function createRecoveryJourney(deps: {
  persons: PersonRepository;
  factors: FactorRepository;
  recoveryCodes: RecoveryCodeRepository;
  counters: CounterRepository;
  store: OidcModelStore;
  messageCodes: MessageCodeService;
  limits: SelfServiceLimits;
  hasher: PasswordHasher;
  notices: FactorNotices;
  state: AccountState;
  audit: AuditService;
  jobs: Pick<JobRunner, 'enqueue'>;
  issuer: string;
  resetWaitMs: number;
  logger: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const { audit } = deps;

  async function activePerson(personId: string): Promise<Person | undefined> {
    const p = await deps.persons.findById(personId);
    return p && p.status === 'active' ? p : undefined;
  }

  /**
   * A person whose password recovery can set: active, or locked by themself ("lock my account"),
   * which recovery undoes — but only with the second factor (setPassword). A lock by an operator
   * or by failed sign-ins is lifted at the counter only.
   */
  async function recoverablePerson(personId: string): Promise<Person | undefined> {
    const p = await deps.persons.findById(personId);
    return p && isRecoverable(p) ? p : undefined;
  }

  /** The keys (limits.ts keyOf) of the person's verified contacts, as a recovery's code records its contact. */
  function verifiedContactKeys(p: Person): string[] {
    return p.contacts.filter((c) => c.verified).map((c) => keyOf('recover', `${p.pid}\u0000${c.value.toLowerCase()}`));
  }

  async function hasFactor(personId: string): Promise<boolean> {
    return (await deps.factors.listForPerson(personId)).some((f) => f.confirmed);
  }

  /** Sets the new password over the old one (compare-and-set) and clears the failed-password delay; the new hash, or undefined. */
  async function replacePassword(p: Person, normalised: string, newHash?: string): Promise<string | undefined> {
    const hash = newHash ?? (await deps.hasher.hash(normalised));
    if (!(await deps.persons.updatePasswordHash(p.id, p.passwordHash, hash))) return undefined;
    await deps.counters.reset(`login-fail:${p.id}`);
    // A password replaced through recovery is the one "this wasn't me" asked for.
    if (p.passwordResetRequired) await deps.persons.setPasswordResetRequired(p.id, false);
    return hash;
  }

  return {
    channels: () => deps.messageCodes.channels(),

    async start(pid: string, contactInput: string, ip: string, locale: Locale): Promise<RecoverStart> {
      const phone = toE164(contactInput);
      const email = phone ? undefined : toEmail(contactInput);
      const channel = phone ? 'sms' : email ? 'email' : undefined;
      const destination = phone ?? email;
      if (!channel || !destination) return { ok: false, reason: 'contact_format' };
      if (!deps.messageCodes.channels().has(channel)) return { ok: false, reason: 'channel_unavailable' };
      const limited = await deps.limits.admit('recover', ip, pid);
      if (limited) {
        audit.record('RECOVERY_LIMITED', { limit: limited.limit });
        return { ok: false, reason: 'limited', ...limited };
      }
      const person = await deps.persons.findByPid(pid);
      // Only a contact shown to be the person's (a code answered at registration or in the account
      // area) can take an account back: an address mistyped once, or typed by someone else, must
      // not let its owner reset the password (NIST SP 800-63B §6.1.2.3 binds recovery to verified
      // addresses of record).
      const matched = !!person && isRecoverable(person)
        && person.contacts.some((c) => c.verified && c.kind === (channel === 'sms' ? 'phone' : 'email') && c.value.toLowerCase() === destination.toLowerCase());
      // The code's limits count per number and per contact, matched or not (so they answer alike).
      const key = keyOf('recover', `${pid}\u0000${destination}`);
      // A decoy neither checks nor counts the contact's own limits (requests naming someone else's
      // phone must not use up its codes); a match whose contact has had its codes for now is
      // answered as if sent, with nothing sent (a 429 here would tell a contact on file apart).
      const sent = await deps.messageCodes.send(key, channel, destination, locale, matched ? { background: true, destinationLimit: 'quiet' } : { decoy: true });
      audit.record('RECOVERY_STARTED', { pid: maskPid(pid), matched, channel, ...(matched ? { person: person!.id } : {}) });
      if (!sent.ok) {
        if (sent.reason === 'rate_limited') {
          audit.record('RECOVERY_LIMITED', { limit: 'contact' });
          return { ok: false, reason: 'limited', limit: 'contact', retryAfterMs: sent.retryAfterMs };
        }
        return { ok: false, reason: 'channel_unavailable' };
      }
      return { ok: true, matched, ...(matched ? { personId: person!.id } : {}), code: { id: sent.id, key, channel, sentTo: sent.sentTo } };
    },

    /** The code, then whether the account has a second factor to ask for. A decoy's code never passes. */
    async verifyCode(flow: { matched?: boolean; personId?: string; code?: FlowCode }, input: string) {
      if (!flow.code) return { ok: false as const, reason: 'expired' as const };
      const result = await deps.messageCodes.verify(flow.code.key, flow.code.id, input.trim());
      if (!result.ok) return result;
      const person = flow.matched && flow.personId ? await recoverablePerson(flow.personId) : undefined;
      if (!person) return { ok: false as const, reason: 'invalid' as const };
      audit.record('RECOVERY_CODE_VERIFIED', { person: person.id, channel: flow.code.channel });
      // The code proved the contact, so saying the account is locked tells nothing new; without a
      // second factor, a contact alone (a stolen phone: why it was locked) must not unlock it.
      if (person.status === 'locked' && !(await hasFactor(person.id))) return { ok: false as const, reason: 'locked_by_owner' as const };
      return { ok: true as const, personId: person.id, hasFactor: await hasFactor(person.id), passwordTag: passwordTag(person.passwordHash), contactKey: flow.code.key };
    },

    hasFactor,
    activePerson,

    /** Whether `password` is the person's password now and the one a finished step set (`tag`): that step posted again. */
    async isPassword(personId: string, password: string, tag: string | undefined): Promise<boolean> {
      const p = await recoverablePerson(personId);
      return !!p && tag !== undefined && passwordTag(p.passwordHash) === tag && deps.hasher.verify(p.passwordHash, password.normalize('NFC'));
    },

    /**
     * Sets the new password after the code (and the factor when there is one); ends everything.
     * `since`: the passwordTag of the password the flow's code was proven against. The same form
     * posted twice (a double click) gets the same answer: the second post finds the password it asks
     * for already set by the first (a changed password that is now this one), or loses the
     * compare-and-set to it; either way `repeated`, with nothing done twice.
     */
    async setPassword(personId: string, password: string, confirm: string, factor: string | undefined, locale: Locale, since?: string, contactKey?: string) {
      const p = await recoverablePerson(personId);
      if (!p) return { ok: false as const, reason: 'unavailable' as const };
      if (p.status === 'locked' && (factor === undefined || factor === 'none')) return { ok: false as const, reason: 'unavailable' as const };
      const checked = checkNewPassword(password, confirm, { pid: p.pid, birthdate: p.birthdate, hasSecondFactor: await hasFactor(p.id) });
      if (!checked.ok) return checked;
      const isOld = await deps.hasher.verify(p.passwordHash, checked.normalised);
      const changedSince = since !== undefined && passwordTag(p.passwordHash) !== since;
      if (isOld && changedSince) return { ok: true as const, person: p, repeated: true, passwordTag: passwordTag(p.passwordHash) };
      // The password changed since this flow's code was proven (the owner took the account back
      // meanwhile), or the contact the code went to is no longer a verified contact of the account:
      // what the code proved no longer holds, and a recovery left open must not undo the owner's.
      if (changedSince || (contactKey !== undefined && !verifiedContactKeys(p).includes(contactKey))) {
        return { ok: false as const, reason: 'unavailable' as const };
      }
      // NIST SP 800-63B §6.1.2.3: recovery must not hand back the credential that was lost or stolen.
      if (isOld) return { ok: false as const, reason: 'same_as_old' as const };
      const newHash = await replacePassword(p, checked.normalised);
      if (!newHash) {
        const now = await recoverablePerson(personId);
        if (now && (await deps.hasher.verify(now.passwordHash, checked.normalised))) return { ok: true as const, person: now, repeated: true, passwordTag: passwordTag(now.passwordHash) };
        return { ok: false as const, reason: 'unavailable' as const };
      }
      const ended = await deps.state.apply(p.status === 'locked' ? 'self-unlock' : 'reset-password', p);
      audit.record('PASSWORD_RESET', { person: p.id, factor: factor ?? 'none', sessions_ended: ended });
      if (p.status === 'locked') audit.record('ACCOUNT_SELF_UNLOCKED', { person: p.id, factor: factor ?? 'none' });
      await deps.notices.passwordReset(p.id, locale);
      return { ok: true as const, person: p, repeated: false, passwordTag: passwordTag(newHash) };
    },

    /**
     * Every factor lost: records the request, tells every contact at once with a link that cancels
     * it, and schedules the link to the verified phone after the wait. A second request while one is
     * pending changes nothing (the wait does not start again, no more notices).
     */
    async requestReset(personId: string, locale: Locale) {
      const p = await activePerson(personId);
      if (!p) return { ok: false as const, reason: 'unavailable' as const };
      if (!this.canReset(p)) return { ok: false as const, reason: 'no_phone' as const };
      const existing = (await deps.store.find(RESET_MODEL, p.id)) as ResetRecord | undefined;
      if (existing && typeof existing.readyAt === 'number') return { ok: true as const, readyAt: existing.readyAt };
      const t = now();
      const record: ResetRecord = { resetId: crypto.randomUUID(), personId: p.id, requestedAt: t, readyAt: t + deps.resetWaitMs, status: 'pending', locale };
      // Kept through the wait and the link's life.
      const ttl = Math.ceil(deps.resetWaitMs / 1000) + RESET_LINK_TTL_SECONDS;
      await deps.store.upsert(RESET_MODEL, p.id, { ...record }, ttl);
      const cancel = crypto.randomBytes(32).toString('base64url');
      await deps.store.upsert(RESET_TOKEN_MODEL, tokenKey(cancel), { personId: p.id, resetId: record.resetId, purpose: 'cancel' } satisfies ResetToken, ttl);
      await deps.jobs.enqueue(ACCOUNT_RESET_JOB, `account-reset:${record.resetId}`, { personId: p.id, resetId: record.resetId }, record.readyAt);
      audit.record('ACCOUNT_RESET_REQUESTED', { person: p.id, ready_at: new Date(record.readyAt).toISOString() });
      await deps.notices.accountResetRequested(p.id, `${deps.issuer}/recover/cancel/${cancel}`, record.readyAt, locale);
      return { ok: true as const, readyAt: record.readyAt };
    },

    /** The job that ends the wait: a link to the verified phone, if the reset still stands. */
    readyHandler(): JobHandler {
      return {
        kind: ACCOUNT_RESET_JOB,
        leaseMs: 60_000,
        keepMs: 7 * 24 * 3600_000,
        async run(job) {
          const { personId, resetId } = job.payload;
          if (typeof personId !== 'string' || typeof resetId !== 'string') return { status: 'failed', outcome: 'malformed job' };
          const record = (await deps.store.find(RESET_MODEL, personId)) as ResetRecord | undefined;
          if (!record || record.resetId !== resetId) return { status: 'done', outcome: 'cancelled' };
          const p = await activePerson(personId);
          if (!p || !p.phone || !p.phoneVerified) return { status: 'done', outcome: 'account unavailable' };
          const complete = crypto.randomBytes(32).toString('base64url');
          await deps.store.upsert(RESET_TOKEN_MODEL, tokenKey(complete), { personId, resetId, purpose: 'complete' } satisfies ResetToken, RESET_LINK_TTL_SECONDS);
          await deps.store.upsert(RESET_MODEL, personId, { ...record, status: 'ready' }, RESET_LINK_TTL_SECONDS);
          const sent = await deps.notices.accountResetReady(personId, p.phone, `${deps.issuer}/recover/reset/${complete}`, record.locale ?? 'vi');
          if (!sent) {
            await deps.store.destroy(RESET_TOKEN_MODEL, tokenKey(complete));
            return { status: 'retry', outcome: 'link not delivered', dueAt: now() + 5 * 60_000 };
          }
          audit.record('ACCOUNT_RESET_READY', { person: personId });
          return { status: 'done', outcome: 'link sent' };
        },
      };
    },

    /** What a link's token opens, if it is live and its reset still stands. */
    async openToken(token: string, purpose: 'cancel' | 'complete'): Promise<{ personId: string; resetId: string; key: string } | undefined> {
      if (!TOKEN_RE.test(token)) return undefined;
      const key = tokenKey(token);
      const found = (await deps.store.find(RESET_TOKEN_MODEL, key)) as (ResetToken & { consumed?: unknown }) | undefined;
      if (!found || found.purpose !== purpose || found.consumed !== undefined) return undefined;
      const record = (await deps.store.find(RESET_MODEL, found.personId)) as (ResetRecord & { consumed?: unknown }) | undefined;
      if (!record || record.resetId !== found.resetId || record.consumed !== undefined) return undefined;
      if (purpose === 'complete' && record.status !== 'ready') return undefined;
      return { personId: found.personId, resetId: found.resetId, key };
    },

    /**
     * The link sent after the wait, followed (a POST from its page: link previews only GET): used
     * up at once, so that it opens the reset in one browser only — a copy in a log, a history or a
     * proxy opens nothing afterwards.
     */
    async claimResetLink(token: string): Promise<{ personId: string; resetId: string } | undefined> {
      const opened = await this.openToken(token, 'complete');
      if (!opened || !(await deps.store.consume(RESET_TOKEN_MODEL, opened.key))) return undefined;
      return { personId: opened.personId, resetId: opened.resetId };
    },

    /** Whether an account reset can reach this person: a verified phone, and SMS offered here. */
    canReset(p: Pick<Person, 'phone' | 'phoneVerified'>): boolean {
      return !!p.phone && p.phoneVerified && deps.messageCodes.channels().has('sms');
    },

    async cancelReset(token: string): Promise<boolean> {
      const opened = await this.openToken(token, 'cancel');
      if (!opened) return false;
      // One atomic step decides between a cancel and a completion racing for the same reset.
      if (!(await deps.store.consume(RESET_MODEL, opened.personId))) return false;
      await deps.store.destroy(RESET_MODEL, opened.personId);
      await deps.store.destroy(RESET_TOKEN_MODEL, opened.key);
      audit.record('ACCOUNT_RESET_CANCELLED', { person: opened.personId });
      return true;
    },

    /** Completes a reset from its link: new password, no factors, level 1, everything ended. */
    async completeReset(flow: { personId: string; resetId: string }, password: string, confirm: string, locale: Locale) {
      const p = await activePerson(flow.personId);
      if (!p) return { ok: false as const, reason: 'unavailable' as const };
      // The same form posted twice (a double click): once the link is used, the answer is the one
      // the first post got if the password is the one it set, and nothing is done twice.
      const repeated = async (normalised: string) => {
        const now = await activePerson(flow.personId);
        return now && (await deps.hasher.verify(now.passwordHash, normalised))
          ? { ok: true as const, person: now, levelLowered: false, repeated: true, passwordTag: passwordTag(now.passwordHash) }
          : { ok: false as const, reason: 'unavailable' as const };
      };
      // A post that lost the race to the same form's other post (which took the reset record and is
      // writing the password) waits for that write, briefly, before comparing (up to 3 s; the write
      // follows the take at once).
      const settled = async (normalised: string) => {
        for (let i = 0; i < 30; i += 1) {
          const current = await activePerson(flow.personId);
          if (!current || current.passwordHash !== p.passwordHash) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return repeated(normalised);
      };
      const record = (await deps.store.find(RESET_MODEL, flow.personId)) as (ResetRecord & { consumed?: unknown }) | undefined;
      // Completed already (or being completed): the repeated post's answer, if it is that password.
      if (!record) return repeated(password.normalize('NFC'));
      if (record.consumed !== undefined) return settled(password.normalize('NFC'));
      if (record.resetId !== flow.resetId || record.status !== 'ready') return { ok: false as const, reason: 'unavailable' as const };
      // Checked against the rules for an account without factors: it will have none.
      const checked = checkNewPassword(password, confirm, { pid: p.pid, birthdate: p.birthdate, hasSecondFactor: false });
      if (!checked.ok) return checked;
      if (await deps.hasher.verify(p.passwordHash, checked.normalised)) return { ok: false as const, reason: 'same_as_old' as const };
      // Hashed before the reset is taken, so that a post losing the race below finds the new password set.
      const newHash = await deps.hasher.hash(checked.normalised);
      // The reset is done once, whatever two tabs do, and a cancel racing it either wins or fails.
      if (!(await deps.store.consume(RESET_MODEL, flow.personId))) return settled(checked.normalised);
      if (!(await replacePassword(p, checked.normalised, newHash))) return { ok: false as const, reason: 'unavailable' as const };
      const factors = await deps.factors.listForPerson(p.id);
      for (const f of factors) await deps.factors.remove(p.id, f.id);
      await deps.recoveryCodes.removeAll(p.id);
      await deps.counters.reset(`mfa-fail:${p.id}`);
      if (p.level === 2) await deps.persons.setLevel(p.id, 1);
      const ended = await deps.state.apply('account-reset', p);
      await deps.store.destroy(RESET_MODEL, p.id);
      audit.record('ACCOUNT_RESET_COMPLETED', { person: p.id, factors_removed: factors.length, types: [...new Set(factors.filter((f) => f.confirmed).map((f) => f.type))], level_before: p.level, sessions_ended: ended });
      await deps.notices.accountResetDone(p.id, locale);
      return { ok: true as const, person: p, levelLowered: p.level === 2, repeated: false, passwordTag: passwordTag(newHash) };
    },
  };
}
export type RecoveryJourney = ReturnType<typeof createRecoveryJourney>;
