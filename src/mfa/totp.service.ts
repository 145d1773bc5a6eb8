/**
 * Authenticator apps (TOTP, RFC 6238) with otplib 13: 6 digits, 30 s, ±1 step. Seeds are sealed
 * with the secret box (AES-256-GCM, key ids). Each code is accepted once: the accepted time step is
 * recorded atomically in the store, so two parallel submissions of one code cannot both pass
 * (NIST SP 800-63B §5.1.4.2). Ten wrong codes lock code entry for ten minutes (PRODUCT.md).
 */
import crypto from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import type { CounterRepository, Factor, FactorRepository } from '../store/index.js';
import type { SecretBox } from '../keys/secret-box.js';
import { claimCodeAttempt, clearCodeAttempts } from './attempts.js';

export const TOTP = Object.freeze({ digits: 6, period: 30, toleranceSeconds: 30 });

export { CODE_ATTEMPTS } from './attempts.js';

export type CodeResult =
  | { ok: true; factor: Factor }
  | { ok: false; reason: 'invalid' | 'replayed' | 'locked' | 'factor_exists' };

export interface TotpEnrolment {
  factorId: string;
  secret: string;
  uri: string;
  /** The QR code as an SVG data URL, rendered here (no third-party service sees the seed). */
  qrDataUrl: string;
}

export interface TotpService {
  startEnrolment(personId: string, label: string, accountName: string): Promise<TotpEnrolment>;
  /** Shows an unfinished enrolment again (same seed) if it exists and is the person's. */
  resumeEnrolment(personId: string, factorId: string, accountName: string): Promise<TotpEnrolment | undefined>;
  /**
   * Confirms an enrolment with its first code. `onlyFactor`: the enrolment is the person's first
   * second factor (inside a sign-in, proven by the password alone) and must not be bound once
   * another factor exists — `factor_exists`, and the pending seed is removed.
   */
  confirmEnrolment(personId: string, factorId: string, code: string, options?: { onlyFactor?: boolean }): Promise<CodeResult>;
  verify(personId: string, code: string): Promise<CodeResult>;
}

const aad = (factorId: string) => `totp:${factorId}`;

async function otherConfirmedFactor(factors: FactorRepository, personId: string, factorId: string): Promise<boolean> {
  return (await factors.listForPerson(personId)).some((f) => f.confirmed && f.id !== factorId);
}

/**
 * A first second factor bound with the password alone is kept only if it is still the person's
 * only confirmed factor after it was confirmed; otherwise it is removed again. Write, then check:
 * of two confirmations that race (this one and one in the account area, or two sign-ins), the
 * later to confirm always sees the earlier, so a factor added meanwhile is never joined by one
 * bound by someone holding only the password (NIST SP 800-63B §6.1.2.1: binding an additional
 * authenticator needs an authenticated session at the level of the existing ones). It holds on
 * every backend, without a multi-record transaction. Also used for passkeys registered in a sign-in.
 */
export async function keptAsOnlyFactor(factors: FactorRepository, personId: string, factorId: string): Promise<boolean> {
  if (!(await otherConfirmedFactor(factors, personId, factorId))) return true;
  await factors.remove(personId, factorId);
  return false;
}
export const CODE_RE = /^[0-9]{6}$/;

export function createTotpService(deps: {
  factors: FactorRepository;
  counters: CounterRepository;
  secretBox: SecretBox;
  issuerName: string;
  now?: () => number;
}): TotpService {
  const now = deps.now ?? Date.now;

  async function present(factor: Factor, accountName: string): Promise<TotpEnrolment> {
    const secret = deps.secretBox.open(factor.secretCiphertext!, aad(factor.id));
    const uri = generateURI({ issuer: deps.issuerName, label: accountName, secret, digits: TOTP.digits, period: TOTP.period });
    const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    return { factorId: factor.id, secret, uri, qrDataUrl: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
  }

  /** The matching time step of `code` for this seed, or undefined. */
  async function match(factor: Factor, code: string, t: number): Promise<number | undefined> {
    const secret = deps.secretBox.open(factor.secretCiphertext!, aad(factor.id));
    const result = await verify({ secret, token: code, epoch: Math.floor(t / 1000), epochTolerance: TOTP.toleranceSeconds, period: TOTP.period, digits: TOTP.digits });
    return result.valid ? (result as { timeStep?: number }).timeStep ?? Math.floor(t / 1000 / TOTP.period) + (result.delta ?? 0) : undefined;
  }

  /** Claims an attempt, tries the candidates, and records the accepted step atomically. */
  async function check(personId: string, code: string, candidates: Factor[]): Promise<CodeResult> {
    const t = now();
    if (!(await claimCodeAttempt(deps.counters, personId, t))) return { ok: false, reason: 'locked' };
    if (!CODE_RE.test(code)) return { ok: false, reason: 'invalid' };
    for (const factor of candidates) {
      const step = await match(factor, code, t);
      if (step === undefined) continue;
      if (!(await deps.factors.acceptTotpStep(factor.id, step, t))) return { ok: false, reason: 'replayed' };
      await clearCodeAttempts(deps.counters, personId);
      return { ok: true, factor };
    }
    return { ok: false, reason: 'invalid' };
  }

  return {
    async startEnrolment(personId, label, accountName) {
      const id = crypto.randomUUID();
      // 160-bit seed (RFC 4226 §4 recommends 160 bits).
      const secret = generateSecret({ length: 20 });
      const factor = await deps.factors.create({
        id, personId, type: 'totp', label, confirmed: false,
        secretCiphertext: deps.secretBox.seal(secret, aad(id)),
        credentialId: null, publicKey: null, signCount: null, transports: null,
      });
      return present(factor, accountName);
    },

    async resumeEnrolment(personId, factorId, accountName) {
      const factor = await deps.factors.find(factorId);
      if (!factor || factor.personId !== personId || factor.type !== 'totp' || factor.confirmed) return undefined;
      return present(factor, accountName);
    },

    async confirmEnrolment(personId, factorId, code, options = {}) {
      const factor = await deps.factors.find(factorId);
      if (!factor || factor.personId !== personId || factor.type !== 'totp' || factor.confirmed) return { ok: false, reason: 'invalid' };
      if (options.onlyFactor && (await otherConfirmedFactor(deps.factors, personId, factorId))) {
        await deps.factors.remove(personId, factorId);
        return { ok: false, reason: 'factor_exists' };
      }
      const result = await check(personId, code, [factor]);
      if (!result.ok) return result;
      await deps.factors.confirm(personId, factorId, now());
      if (options.onlyFactor && !(await keptAsOnlyFactor(deps.factors, personId, factorId))) return { ok: false, reason: 'factor_exists' };
      return result;
    },

    async verify(personId, code) {
      const factors = (await deps.factors.listForPerson(personId)).filter((f) => f.type === 'totp' && f.confirmed);
      if (factors.length === 0) return { ok: false, reason: 'invalid' };
      return check(personId, code, factors);
    },
  };
}
