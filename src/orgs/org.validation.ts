/**
 * What operators and legal representatives may type about enterprises: codes per PRODUCT.md (10
 * digits; a branch is the parent's 10 digits, a hyphen and 3 digits), short role codes, end dates.
 */
import { z } from 'zod';

/** What was wrong, for pages that say it in the citizen's language (the message is for the CLI). */
export type OrgInputProblem = 'code' | 'name' | 'role' | 'until' | 'pid' | 'no_account' | 'already_representative' | 'forbidden' | 'rate_limited' | 'other';

export class OrgInputError extends Error {
  constructor(message: string, readonly problem: OrgInputProblem = 'other') {
    super(message);
    this.name = 'OrgInputError';
  }
}

export const ENTERPRISE_CODE_RE = /^\d{10}(?:-\d{3})?$/;
/** A role is a short lower-case code (`ke-toan`, `nhan-vien-thue`); `legal_representative` is ours. */
export const ROLE_RE = /^[a-z][a-z0-9-]{1,31}$/;
export const LEGAL_REPRESENTATIVE = 'legal_representative';

export function checkCode(label: string, value: unknown): string {
  if (typeof value !== 'string' || !ENTERPRISE_CODE_RE.test(value)) {
    throw new OrgInputError(`${label} must be an enterprise code: 10 digits, or 10 digits, a hyphen and 3 digits for a branch (e.g. 0101234567 or 0101234567-001)`, 'code');
  }
  return value;
}

/** The parent of a branch code, or null for an enterprise. */
export function parentOf(code: string): string | null {
  return code.length === 14 ? code.slice(0, 10) : null;
}

export function checkName(label: string, value: unknown): string {
  const name = typeof value === 'string' ? value.normalize('NFC').trim() : '';
  if (name.length < 2 || name.length > 200 || /[\p{Cc}<>]/u.test(name)) {
    throw new OrgInputError(`${label} must be 2–200 characters, without control characters or angle brackets`, 'name');
  }
  return name;
}

export function checkRole(label: string, value: unknown): string {
  if (typeof value !== 'string' || !ROLE_RE.test(value) || value === 'legal-representative') {
    throw new OrgInputError(`${label} must be a short code of lower-case letters, digits and hyphens (2–32), such as ke-toan`, 'role');
  }
  return value;
}

/**
 * `YYYY-MM-DD`: the delegation holds through that whole day in Vietnam (UTC+7), so it ends at the
 * next midnight there. Must be in the future.
 */
export function checkUntil(label: string, value: unknown, now: number): number {
  const parsed = z.iso.date().safeParse(value);
  if (!parsed.success) throw new OrgInputError(`${label} must be a date YYYY-MM-DD`, 'until');
  const [y, m, d] = parsed.data.split('-').map(Number) as [number, number, number];
  const end = Date.UTC(y, m - 1, d + 1, 0, 0, 0) - 7 * 3600_000;
  if (end <= now) throw new OrgInputError(`${label} must be today or a later date`, 'until');
  if (end - now > 10 * 366 * 24 * 3600_000) throw new OrgInputError(`${label} must be within ten years`, 'until');
  return end;
}
