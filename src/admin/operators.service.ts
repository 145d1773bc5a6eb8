/**
 * Operators and their roles. The first ones are added from the command line (bootstrap: no
 * operator exists yet); afterwards only an `admin` adds operators or changes roles, never their
 * own (no one raises themself: ASVS 5.0 8.2.2, separation of duties), and removing an operator
 * waits for a second admin (approvals.service.ts). The last admin cannot be removed or demoted:
 * nobody could then manage operators without the command line's bootstrap.
 */
import type { AuditService } from '../audit/index.js';
import type { Operator, OperatorRepository, OperatorRole, Person, PersonRepository } from '../store/index.js';
import { StoreConflictError } from '../store/index.js';
import { maskPid } from '../accounts/index.js';
import { AdminError, actDetails, isRole, type Act, type Actor } from './roles.js';

export interface OperatorView {
  personId: string;
  pid: string;
  name: string;
  level: 1 | 2;
  status: string;
  roles: OperatorRole[];
  addedBy: string;
  addedAt: number;
  rev: number;
}

export function checkRoles(values: readonly unknown[]): OperatorRole[] {
  const roles = [...new Set(values)];
  if (roles.length === 0) throw new AdminError('invalid', 'give at least one role: helpdesk, integration, keys, auditor or admin');
  for (const r of roles) if (!isRole(r)) throw new AdminError('invalid', `unknown role "${String(r).slice(0, 40)}": one of helpdesk, integration, keys, auditor, admin`);
  return roles as OperatorRole[];
}

export function createOperatorsService(deps: { repo: OperatorRepository; persons: PersonRepository; audit: AuditService; now?: () => number }) {
  const now = deps.now ?? Date.now;

  async function personByPid(pid: unknown): Promise<Person> {
    if (typeof pid !== 'string' || !/^\d{12}$/.test(pid)) throw new AdminError('invalid', 'the personal identification number is exactly 12 digits');
    const p = await deps.persons.findByPid(pid);
    if (!p) throw new AdminError('not_found', `no account with identification number ${maskPid(pid)}`);
    return p;
  }

  async function view(op: Operator): Promise<OperatorView> {
    const p = await deps.persons.findById(op.personId);
    return {
      personId: op.personId, pid: p ? maskPid(p.pid) : '—', name: p?.name ?? '—', level: p?.level ?? 1, status: p?.status ?? 'missing',
      roles: op.roles, addedBy: op.addedBy, addedAt: op.addedAt, rev: op.rev,
    };
  }

  /** How many admins there are (operators are few: a page of 200 covers them). */
  async function admins(): Promise<Operator[]> {
    const out: Operator[] = [];
    for (let offset = 0; ; offset += 200) {
      const page = await deps.repo.list({ limit: 200, offset });
      out.push(...page.filter((o) => o.roles.includes('admin')));
      if (page.length < 200) return out;
    }
  }

  const service = {
    find: (personId: string) => deps.repo.find(personId),
    count: () => deps.repo.count(),
    async list(page: { limit: number; offset: number }): Promise<{ total: number; operators: OperatorView[] }> {
      const [total, ops] = await Promise.all([deps.repo.count(), deps.repo.list(page)]);
      return { total, operators: await Promise.all(ops.map(view)) };
    },
    async show(personId: string): Promise<OperatorView | undefined> {
      const op = await deps.repo.find(personId);
      return op ? view(op) : undefined;
    },

    /**
     * Makes a person an operator. `act` is an admin's (never for themself); the command line may
     * add the first operators while none exists (`actor.bootstrap`).
     */
    async add(act: Act, pid: unknown, rolesIn: readonly unknown[]): Promise<OperatorView> {
      const roles = checkRoles(rolesIn);
      if (!act.actor.bootstrap && act.role !== 'admin') throw new AdminError('forbidden', 'only an admin adds operators');
      // Granting admin is two-person once operators exist (a lone admin must not mint the second
      // person of their own two-person control): add the operator without it, then propose it.
      if (!act.actor.bootstrap && roles.includes('admin')) throw new AdminError('invalid', 'add the operator without the admin role, then change their roles: granting admin needs a second admin\'s approval');
      const p = await personByPid(pid);
      if (p.id === act.actor.id) throw new AdminError('forbidden', 'no one changes their own roles');
      let op: Operator;
      try {
        op = await deps.repo.create({ personId: p.id, roles, addedBy: act.actor.id, addedAt: now() });
      } catch (err) {
        if (err instanceof StoreConflictError) throw new AdminError('conflict', `${maskPid(p.pid)} is already an operator: change their roles instead`);
        throw err;
      }
      deps.audit.record('OPERATOR_ADDED', { ...actDetails(act), person: p.id, target: p.id, roles });
      return view(op);
    },

    /**
     * Whether changing `personId`'s roles to `roles` grants or takes away `admin`: that change is
     * two-person (admin/actions.ts, change-admin-role), so one admin cannot demote the others at
     * once and become the last, irremovable one.
     */
    async changesAdmin(personId: string, rolesIn: readonly unknown[]): Promise<boolean> {
      const op = await deps.repo.find(personId);
      return !!op && op.roles.includes('admin') !== checkRoles(rolesIn).includes('admin');
    },

    /**
     * Replaces another operator's roles (admin only; `rev` is the revision the admin saw). A change
     * of the admin role itself is carried out only as an approved proposal (`approved`).
     */
    async setRoles(act: Act, personId: string, rev: number, rolesIn: readonly unknown[], options: { approved?: Record<string, string | boolean> } = {}): Promise<OperatorView> {
      const roles = checkRoles(rolesIn);
      if (act.role !== 'admin') throw new AdminError('forbidden', 'only an admin changes roles');
      if (personId === act.actor.id) throw new AdminError('forbidden', 'no one changes their own roles');
      const op = await deps.repo.find(personId);
      if (!op) throw new AdminError('not_found', 'no such operator');
      if (!options.approved && !act.actor.bootstrap && op.roles.includes('admin') !== roles.includes('admin')) {
        throw new AdminError('invalid', 'granting or taking away the admin role needs a second admin\'s approval: it is proposed');
      }
      if (op.roles.includes('admin') && !roles.includes('admin') && (await admins()).length <= 1) {
        throw new AdminError('conflict', 'this is the last admin: add another admin first');
      }
      if (!(await deps.repo.setRoles(personId, rev, roles, now()))) throw new AdminError('conflict', 'the roles were changed meanwhile: look again and retry');
      deps.audit.record('OPERATOR_ROLES_CHANGED', { ...actDetails(act), ...options.approved, person: personId, target: personId, from: op.roles, to: roles });
      return (await service.show(personId))!;
    },

    /** Checks a removal can be proposed (approvals.service.ts carries it out with `removeNow`). */
    async checkRemovable(actor: Actor, personId: string): Promise<Operator> {
      if (personId === actor.id) throw new AdminError('forbidden', 'no one removes themself');
      const op = await deps.repo.find(personId);
      if (!op) throw new AdminError('not_found', 'no such operator');
      if (op.roles.includes('admin') && (await admins()).length <= 1) throw new AdminError('conflict', 'this is the last admin: add another admin first');
      return op;
    },
    async removeNow(personId: string): Promise<boolean> {
      const op = await deps.repo.find(personId);
      if (!op) return false;
      if (op.roles.includes('admin') && (await admins()).length <= 1) throw new AdminError('conflict', 'this is the last admin');
      return deps.repo.remove(personId);
    },

    /**
     * The command line's actor: a registered operator when `--operator` (or DINHDANH_OPERATOR)
     * names their identification number; otherwise the host's operator, `cli:<name>`, who may do
     * what the command line always could but not admin's work, nor decide proposals. Before any
     * operator exists it is the bootstrap actor. A registered operator's account must be active and
     * at identity level 2 (the command line also makes them prove it: src/cli/shared.ts).
     */
    async cliActor(name: string): Promise<Actor> {
      if (/^\d{12}$/.test(name)) {
        const p = await deps.persons.findByPid(name);
        const op = p && (await deps.repo.find(p.id));
        if (!op) throw new AdminError('forbidden', `--operator ${maskPid(name)} is not a registered operator (dinhdanh operators list)`);
        // The same bar as the console's sign-in (loa:high): an operator whose account is locked, or
        // not (or no longer) at identity level 2, does not act (NIST SP 800-63B §6.1.2.3: a
        // suspended subscriber's authenticators are not accepted).
        if (p.status !== 'active') throw new AdminError('forbidden', `--operator ${maskPid(name)}: this operator's account is locked; it must be unlocked before they act`);
        if (p.level !== 2) throw new AdminError('forbidden', `--operator ${maskPid(name)}: this operator's account is not at identity level 2, which operators need`);
        return { id: op.personId, roles: op.roles, via: 'cli' };
      }
      const bootstrap = (await deps.repo.count()) === 0;
      return { id: `cli:${name}`, roles: bootstrap ? ['helpdesk', 'integration', 'keys', 'auditor', 'admin'] : ['helpdesk', 'integration', 'keys', 'auditor'], via: 'cli', ...(bootstrap ? { bootstrap } : {}) };
    },
  };
  return service;
}
export type OperatorsService = ReturnType<typeof createOperatorsService>;
