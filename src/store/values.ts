/**
 * The closed lists of values the store accepts for fields typed as unions in types.ts, shared by
 * both backends: a value outside them is refused on write (a TypeError, as for any malformed input)
 * and reported on read rather than passed on as if it were one of them.
 */
import type { ApprovalStatus, LockReason, OperatorRole } from './types.js';

export const LOCK_REASONS: readonly LockReason[] = ['operator', 'failures', 'self', 'fraud'];
export const OPERATOR_ROLES: readonly OperatorRole[] = ['helpdesk', 'integration', 'keys', 'auditor', 'admin'];
export const APPROVAL_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'rejected'];

export function isLockReason(value: unknown): value is LockReason {
  return typeof value === 'string' && (LOCK_REASONS as readonly string[]).includes(value);
}

/** A list of roles, each a known role (a copy: the caller's array is never stored as it is). */
export function checkRoles(value: unknown): OperatorRole[] {
  if (!Array.isArray(value)) throw new TypeError('roles must be a list');
  return value.map((role: unknown) => {
    if (typeof role !== 'string' || !(OPERATOR_ROLES as readonly string[]).includes(role)) {
      throw new TypeError(`roles must be among ${OPERATOR_ROLES.join(', ')}`);
    }
    return role as OperatorRole;
  });
}

export function checkApprovalStatus(value: unknown): ApprovalStatus {
  if (typeof value !== 'string' || !(APPROVAL_STATUSES as readonly string[]).includes(value)) {
    throw new TypeError(`an approval status must be one of ${APPROVAL_STATUSES.join(', ')}`);
  }
  return value as ApprovalStatus;
}

/**
 * The usage statistics' rows (UsageRepository), checked alike by both backends before anything is
 * written or a filter is built: days are real `YYYY-MM-DD` dates, portals, keys and tags bounded
 * strings, counts whole numbers, key prefixes ASCII (so a prefix is a range of keys).
 */
const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** Longer than any portal id (64), key or tag the usage service writes; a bound on what a row may hold. */
const MAX_TEXT = 256;

export function usageDay(value: unknown, what = 'day'): string {
  if (typeof value !== 'string' || !DAY.test(value)) throw new TypeError(`${what} must be a date YYYY-MM-DD`);
  return value;
}

/** A day that exists (not 2030-02-30): the days of sums() are counted from it one calendar day at a time. */
export function usageRealDay(value: unknown, what: string): string {
  const d = usageDay(value, what);
  const t = Date.parse(`${d}T00:00:00Z`);
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== d) throw new TypeError(`${what} must be a real date YYYY-MM-DD`);
  return d;
}

export function usageText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) throw new TypeError(`${what} must be a string of 1 to ${MAX_TEXT} characters`);
  return value;
}

const KEY_PREFIX = /^[A-Za-z0-9_+.:-]{1,64}$/;

/** [prefix, the least string greater than every string that starts with it): the keys of a sum, as a range. */
export function usagePrefixRange(value: unknown): [string, string] {
  if (typeof value !== 'string' || !KEY_PREFIX.test(value)) throw new TypeError('keyPrefix must be 1 to 64 of A-Z a-z 0-9 _ + . : -');
  return [value, value.slice(0, -1) + String.fromCharCode(value.charCodeAt(value.length - 1) + 1)];
}

export function usageCount(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError('n must be a whole number, 0 or more');
  return value;
}
