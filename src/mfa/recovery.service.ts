/**
 * Recovery codes (NIST SP 800-63B §5.1.2 look-up secrets): ten single-use codes of 80 bits each,
 * shown once and stored only as hashes. At 80 bits a fast hash is enough: there is nothing to
 * guess offline. Using one is a security event and the citizen is asked to make new ones.
 */
import crypto from 'node:crypto';
import type { CounterRepository, RecoveryCodeRepository } from '../store/index.js';
import { claimCodeAttempt, clearCodeAttempts } from './attempts.js';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I: read aloud and typed from paper

export type RecoveryResult = { ok: true; remaining: number } | { ok: false; reason: 'invalid' | 'locked' };

export interface RecoveryService {
  /** Makes a new set (the old one stops working) and returns the codes to show once. */
  regenerate(personId: string): Promise<string[]>;
  use(personId: string, code: string): Promise<RecoveryResult>;
  remaining(personId: string): Promise<number>;
}

/** Upper-case, without separators or spaces; undefined when it cannot be a code. */
export function normaliseRecoveryCode(input: string): string | undefined {
  const s = input.toUpperCase().replace(/[\s-]/g, '');
  return /^[A-Z0-9]{16}$/.test(s) ? s : undefined;
}

function hash(personId: string, code: string): string {
  return crypto.createHash('sha256').update(`${personId}\u0000${code}`).digest('base64url');
}

function newCode(): string {
  const bytes = crypto.randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i += 1) out += ALPHABET[bytes[i]! % 32];
  return out;
}

export function formatRecoveryCode(code: string): string {
  return code.match(/.{4}/g)!.join('-');
}

export function createRecoveryService(deps: { codes: RecoveryCodeRepository; counters: CounterRepository; now?: () => number }): RecoveryService {
  const now = deps.now ?? Date.now;
  return {
    async regenerate(personId) {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newCode);
      await deps.codes.replace(personId, codes.map((c) => hash(personId, c)), now());
      return codes.map(formatRecoveryCode);
    },
    async use(personId, input) {
      const t = now();
      if (!(await claimCodeAttempt(deps.counters, personId, t))) return { ok: false, reason: 'locked' };
      const code = normaliseRecoveryCode(input);
      if (!code || !(await deps.codes.consume(personId, hash(personId, code), t))) return { ok: false, reason: 'invalid' };
      await clearCodeAttempts(deps.counters, personId);
      return { ok: true, remaining: await deps.codes.countUnused(personId) };
    },
    remaining: (personId) => deps.codes.countUnused(personId),
  };
}
