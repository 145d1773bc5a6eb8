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
