/**
 * Password sign-in. Wrong passwords are results, not exceptions.
 *
 * - An unknown identifier costs the same argon2 work as a known one (verifyDummy), and unknown,
 *   wrong and locked all produce the same result (`invalid`): SECURITY.md #34.
 * - Consecutive failures per account are counted atomically in the store. From the 5th, each try
 *   must wait 1 min doubling to 1 h after the last failure; the 100th locks the account
 *   (NIST SP 800-63B §5.2.2, PRODUCT.md). Tries during a wait are refused without being counted,
 *   so a legitimate person is not locked out further by an attacker's guesses.
 * - A per-IP budget of attempts bounds guessing across many accounts from one address.
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { CounterRepository, Person, PersonRepository } from '../store/index.js';
import type { PasswordHasher } from './password-hasher.js';
import type { AccountState } from './account-state.js';
import { isPidShape, maskPid } from './pid.js';

export const LOCKOUT = Object.freeze({
  /** Attempts counted before delays start. */
  freeFailures: 5,
  baseDelayMs: 60_000,
  maxDelayMs: 60 * 60_000,
  hardLockAt: 100,
  /** Consecutive-failure counters lapse after this long without a failure. */
  counterTtlMs: 7 * 24 * 60 * 60_000,
  /**
   * Sign-in attempts one IP address may make per window. Attempts, not failures: the budget is
   * claimed before the password is checked (so a parallel burst cannot overrun it) and never
   * refunded (so signing in to one's own account does not refill it). Generous, because
   * carrier-grade NAT and public one-stop-shop offices put many citizens behind one address.
   */
  ipBudget: 600,
  ipWindowMs: 15 * 60_000,
});

/** Looked up for identifiers that are not shaped like a number: province code 000 does not exist. */
const NO_SUCH_PID = '000000000000';

export type AuthResult =
  | { ok: true; person: Person }
  | { ok: false; reason: 'invalid' | 'ip_limited' | 'reset_required' };

export interface AuthenticationService {
  /**
   * `portal`: the client id of the sign-in's portal when known (the interaction's), put in the
   * details of the failure events so that failures can be counted per portal (metrics/).
   */
  authenticate(input: { identifier: string; password: string; ip: string; portal?: string }): Promise<AuthResult>;
  /**
   * The current password typed again on an account page (ASVS 5.0 7.5.1: re-authentication before
   * a change of what authenticates or recovers the account). Counted on the same failure counter
   * and delay schedule as sign-ins, so the page is no way around them.
   */
  verifyPassword(person: Person, password: string): Promise<'ok' | 'wrong' | 'throttled'>;
}

/** Delay owed after `failures` consecutive failures (0 while below the threshold). */
export function delayAfter(failures: number): number {
  if (failures < LOCKOUT.freeFailures) return 0;
  const exp = failures - LOCKOUT.freeFailures;
  return Math.min(LOCKOUT.maxDelayMs, LOCKOUT.baseDelayMs * 2 ** Math.min(exp, 20));
}

const ATTEMPT_POLICY = Object.freeze({
  freeAttempts: LOCKOUT.freeFailures,
  baseDelayMs: LOCKOUT.baseDelayMs,
  maxDelayMs: LOCKOUT.maxDelayMs,
  ttlMs: LOCKOUT.counterTtlMs,
});

/** The address a budget is kept for: IPv4 as is, IPv6 by /64 (one subscriber's usual allocation). */
export function ipBucket(ip: string): string {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4mapped) return v4mapped[1]!;
  if (!ip.includes(':')) return ip;
  const [head, tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => (g || '0').toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export function createAuthenticationService(deps: {
  persons: PersonRepository;
  counters: CounterRepository;
  hasher: PasswordHasher;
  audit: AuditService;
  /** The account-state table: the hard lock ends what a lock ends. Without it only the status changes. */
  state?: Pick<AccountState, 'apply'>;
  now?: () => number;
}): AuthenticationService {
  const now = deps.now ?? Date.now;
  const failKey = (personId: string) => `login-fail:${personId}`;
  const ipKey = (ip: string) => `login-ip:${ipBucket(ip)}`;
  const unknownKey = (identifier: string) => `login-fail:unknown:${crypto.createHash('sha256').update(identifier).digest('base64url').slice(0, 22)}`;

  return {
    async authenticate({ identifier, password, ip, portal }) {
      const t = now();
      const at = portal === undefined ? {} : { portal };
      const ipState = await deps.counters.increment(ipKey(ip), LOCKOUT.ipWindowMs, t);
      if (ipState.count > LOCKOUT.ipBudget) {
        deps.audit.record('LOGIN_IP_LIMITED', { ip, ...at });
        return { ok: false, reason: 'ip_limited' };
      }

      // Known, unknown and malformed identifiers cost the same store work before the hash: one
      // read, then one atomic claim on a failure counter — the person's, or one kept for the
      // unknown identifier (a hash of it) — so neither a missing write nor a missing read tells
      // which numbers have accounts (OWASP ASVS 5.0 6.3.8; on MongoDB the claim is a majority write).
      const person = await deps.persons.findByPid(isPidShape(identifier) ? identifier : NO_SUCH_PID);
      // Claimed before the (slow) password check, atomically in the store: a burst of parallel
      // guesses is admitted only as far as the delay schedule allows (NIST SP 800-63B §5.2.2).
      const claim = await deps.counters.claimAttempt(person ? failKey(person.id) : unknownKey(identifier), t, ATTEMPT_POLICY);
      if (!person) {
        await deps.hasher.verifyDummy(password);
        deps.audit.record('LOGIN_FAILED', { reason: 'unknown_identifier', ip, ...at });
        return { ok: false, reason: 'invalid' };
      }
      const valid = await deps.hasher.verify(person.passwordHash, password);

      if (!claim.admitted || person.status !== 'active') {
        deps.audit.record('LOGIN_THROTTLED', { person: person.id, status: person.status, ip, ...at });
        return { ok: false, reason: 'invalid' };
      }

      if (!valid) {
        deps.audit.record('LOGIN_FAILED', { reason: 'wrong_password', person: person.id, failures: claim.count, ip, ...at });
        if (claim.count >= LOCKOUT.hardLockAt) {
          if (deps.state) await deps.state.apply('lock-by-failures', person);
          else await deps.persons.setStatus(person.id, 'locked', 'failures');
          deps.audit.record('ACCOUNT_LOCKED_BY_FAILURES', { person: person.id, pid: maskPid(person.pid), ...at });
        }
        return { ok: false, reason: 'invalid' };
      }

      await deps.counters.reset(failKey(person.id));
      // "This wasn't me" made the password unusable until recovery replaces it: whoever typed it
      // (the owner, or the one who took it) is sent to recovery, which needs the contact.
      if (person.passwordResetRequired) {
        deps.audit.record('LOGIN_FAILED', { reason: 'password_reset_required', person: person.id, ip, ...at });
        return { ok: false, reason: 'reset_required' };
      }
      if (deps.hasher.needsRehash(person.passwordHash)) {
        const rehashed = await deps.hasher.hash(password);
        if (await deps.persons.updatePasswordHash(person.id, person.passwordHash, rehashed)) {
          deps.audit.record('PASSWORD_REHASHED', { person: person.id });
        }
      }
      deps.audit.record('LOGIN_SUCCEEDED', { person: person.id, ip });
      return { ok: true, person };
    },

    async verifyPassword(person, password) {
      // After "this wasn't me" the password proves nothing until recovery replaces it.
      if (person.passwordResetRequired) return 'wrong';
      const claim = await deps.counters.claimAttempt(failKey(person.id), now(), ATTEMPT_POLICY);
      const valid = password.length > 0 && password.length <= 1024 && (await deps.hasher.verify(person.passwordHash, password));
      if (!claim.admitted) return 'throttled';
      if (!valid) {
        if (claim.count >= LOCKOUT.hardLockAt) {
          if (deps.state) await deps.state.apply('lock-by-failures', person);
          else await deps.persons.setStatus(person.id, 'locked', 'failures');
          deps.audit.record('ACCOUNT_LOCKED_BY_FAILURES', { person: person.id, pid: maskPid(person.pid) });
        }
        return 'wrong';
      }
      await deps.counters.reset(failKey(person.id));
      return 'ok';
    },
  };
}
