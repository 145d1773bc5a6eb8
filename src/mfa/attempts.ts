/**
 * One guess budget for every kind of second-factor code a person can type (authenticator app,
 * recovery code, code by message) and for passkey assertions: separate budgets would add up to
 * more guesses per window. Ten wrong attempts make entry wait ten minutes after the last one
 * (PRODUCT.md); the hundredth consecutive failure locks it until a success is no longer possible
 * and an operator resets the person's factors (NIST SP 800-63B §5.2.2: at most 100).
 */
import type { CounterRepository } from '../store/index.js';

export const CODE_ATTEMPTS = Object.freeze({
  freeAttempts: 10,
  baseDelayMs: 10 * 60_000,
  maxDelayMs: 10 * 60_000,
  ttlMs: 30 * 24 * 60 * 60_000,
});
export const CODE_HARD_LOCK_AT = 100;

export const codeFailKey = (personId: string) => `mfa-fail:${personId}`;

/** Claims one attempt; false when entry is waiting out a delay or hard-locked. */
export async function claimCodeAttempt(counters: CounterRepository, personId: string, now: number): Promise<boolean> {
  const claim = await counters.claimAttempt(codeFailKey(personId), now, CODE_ATTEMPTS);
  return claim.admitted && claim.count <= CODE_HARD_LOCK_AT;
}

export async function clearCodeAttempts(counters: CounterRepository, personId: string): Promise<void> {
  await counters.reset(codeFailKey(personId));
}
