/**
 * The operators' roles and what each may do (PRODUCT.md, "Operators' console"). Least privilege,
 * decided here and checked on the server for every page and every action, whatever the page
 * offered (OWASP ASVS 5.0 8.2.1: access checks at the trusted service layer; 8.3.1 deny by default):
 *
 * - `helpdesk`: the one-stop-shop counter: find an account, see its status and history, lock,
 *   unlock, reset second factors, set the identity level (with evidence); enterprises and their
 *   delegations;
 * - `integration`: portals and resource servers: register, edit, disable, rotate secrets, approve
 *   `national_id` / `offline_access` with a legal basis;
 * - `keys`: signing keys: rotate, retire;
 * - `auditor`: read-only: audit search, verification, export; statistics;
 * - `admin`: operators and their roles, and nothing else (an admin who also serves at the counter
 *   holds `helpdesk` as well).
 *
 * `usage.read` (the usage statistics' pictures: sign-ins per hour and day by level, a portal's
 * funnel) goes to `auditor` (statistics) and `integration` (a portal team asks how its portal is
 * used). The figures are counts per day, hour, portal and level, with nothing that identifies a
 * person (Decree 13/2023/ND-CP art. 2.1: personal data is information tied to or identifying a
 * particular person; these counts are neither). Still, only the roles whose work needs them get
 * them: not the help desk, key custodians or operators' admins (ASVS 5.0 8.2.1, least privilege).
 *
 * Every operator sees the dashboard and the approvals list; deciding a proposal needs the role of
 * the action proposed (approvals.service.ts).
 */
import type { OperatorRole } from '../store/index.js';

export const ROLES = ['helpdesk', 'integration', 'keys', 'auditor', 'admin'] as const satisfies readonly OperatorRole[];

export function isRole(value: unknown): value is OperatorRole {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export type Permission =
  | 'dashboard' | 'approvals.read'
  | 'accounts.read' | 'accounts.act'
  | 'orgs.read' | 'orgs.act'
  | 'portals.read' | 'portals.act'
  | 'keys.read' | 'keys.act'
  | 'audit.read' | 'audit.export'
  | 'usage.read'
  | 'operators.read' | 'operators.act';

const GRANTS: Record<OperatorRole, readonly Permission[]> = {
  helpdesk: ['accounts.read', 'accounts.act', 'orgs.read', 'orgs.act'],
  integration: ['portals.read', 'portals.act', 'usage.read'],
  keys: ['keys.read', 'keys.act'],
  auditor: ['audit.read', 'audit.export', 'usage.read'],
  admin: ['operators.read', 'operators.act'],
};
const EVERYONE: readonly Permission[] = ['dashboard', 'approvals.read'];

/** The first of the operator's roles that grants `permission` (recorded as the role they acted in). */
export function roleFor(roles: readonly OperatorRole[], permission: Permission): OperatorRole | undefined {
  if (EVERYONE.includes(permission)) return roles[0];
  return roles.find((r) => GRANTS[r].includes(permission));
}

export function can(roles: readonly OperatorRole[], permission: Permission): boolean {
  return roles.length > 0 && roleFor(roles, permission) !== undefined;
}

/**
 * Who is acting: an operator signed in to the console (their person id), or the command line
 * (`cli:<name>`, or a registered operator's person id when `--operator` names their number).
 */
export interface Actor {
  id: string;
  roles: readonly OperatorRole[];
  via: 'console' | 'cli';
  /**
   * The command line before any operator is registered: nobody could approve, so two-person
   * actions run at once, flagged `bootstrap` in the audit log.
   */
  bootstrap?: boolean;
}

/** An action's record: who, in which role, why, and on what evidence. */
export interface Act {
  actor: Actor;
  role: OperatorRole;
  reason: string;
  evidence?: string;
}

export class AdminError extends Error {
  constructor(readonly code: 'forbidden' | 'invalid' | 'not_found' | 'conflict', message: string) {
    super(message);
    this.name = 'AdminError';
  }
}

/** The act of `actor` for `permission`, or AdminError('forbidden'). */
export function actAs(actor: Actor, permission: Permission, reason: string, evidence?: string): Act {
  const role = roleFor(actor.roles, permission);
  if (!role) throw new AdminError('forbidden', `this needs a role with ${permission} (you have: ${actor.roles.join(', ') || 'none'})`);
  return { actor, role, reason: checkText('reason', reason, 5, 500), ...(evidence !== undefined ? { evidence: checkText('evidence', evidence, 5, 500) } : {}) };
}

/** A reason or evidence: NFC, trimmed, `min`–`max` characters, no control characters. */
export function checkText(field: 'reason' | 'evidence', value: unknown, min: number, max: number): string {
  const v = typeof value === 'string' ? value.normalize('NFC').trim() : '';
  if (v.length < min || v.length > max || /\p{Cc}/u.test(v)) {
    throw new AdminError('invalid', field === 'reason'
      ? `a reason is required: ${min}–${max} characters saying why (it is recorded in the audit log)`
      : `evidence is required: ${min}–${max} characters saying what was checked (it is recorded in the audit log)`);
  }
  return v;
}

/** The audit details every operator action carries. */
export function actDetails(act: Act): Record<string, string | boolean> {
  return {
    operator: act.actor.id, role: act.role, via: act.actor.via, reason: act.reason,
    ...(act.evidence ? { evidence: act.evidence } : {}),
    ...(act.actor.bootstrap ? { bootstrap: true } : {}),
  };
}
