/**
 * Two-person control (NIST SP 800-53 AC-5 separation of duties; SP 800-63A §5.3 for identity
 * proofing decisions): the actions that can hurt most are proposed by one operator, with a reason
 * (and evidence where asked), and carried out only when a different operator holding the action's
 * role approves within 24 hours; a rejection or the 24 hours passing ends the proposal. Both
 * operators and both reasons are in the hash-chained audit log.
 *
 * Before any operator is registered (a fresh installation) nobody could approve: the command line
 * then acts at once, flagged `bootstrap`. An `admin` may act alone from the command line with
 * `--break-glass --reason` (an incident at night): carried out at once, recorded as BREAK_GLASS_USED.
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { Approval, ApprovalRepository, OperatorRole } from '../store/index.js';
import { StoreConflictError } from '../store/index.js';
import { AdminError, actDetails, checkText, type Act, type Actor } from './roles.js';

/** How long a proposal waits for its second operator. */
export const APPROVAL_TTL_MS = 24 * 3600_000;

export const PROPOSAL_ACTIONS = ['set-level-2', 'approve-national-id', 'retire-key', 'remove-operator', 'unlock-fraud', 'change-admin-role', 'edit-national-id-portal'] as const;
export type ProposalAction = (typeof PROPOSAL_ACTIONS)[number];

/** Who carried an action out: the proposer, and the approver (absent for bootstrap and break-glass). */
export interface Authority {
  proposer: Act;
  approver?: Act;
  approval?: string;
  breakGlass?: boolean;
}

/** Audit details naming everyone behind an action. */
export function authorityDetails(a: Authority): Record<string, string | boolean> {
  return {
    ...actDetails(a.proposer),
    ...(a.approver ? { approved_by: a.approver.actor.id, approver_role: a.approver.role, approval_reason: a.approver.reason } : {}),
    ...(a.approval ? { approval: a.approval } : {}),
    ...(a.breakGlass ? { break_glass: true } : {}),
  };
}

export interface ProposalSpec {
  /** The role that proposes and approves it. */
  role: OperatorRole;
  /** The subject is a person (their account's history then shows the proposal and its decision). */
  personSubject?: true;
  /** Checks the parameters (AdminError otherwise) and names the subject; refuses an actor acting on themself. */
  check(params: Record<string, unknown>, actor: Actor): Promise<{ subject: string; params: Record<string, unknown>; evidenceRequired?: boolean }>;
  /** Carries it out; returns a short outcome. Errors (the account changed meanwhile) are reported, not thrown on. */
  run(params: Record<string, unknown>, authority: Authority): Promise<string>;
}

export type ApprovalState = 'pending' | 'approved' | 'rejected' | 'lapsed';

export interface ApprovalView extends Approval {
  state: ApprovalState;
}

export type Requested = { status: 'done'; outcome: string } | { status: 'proposed'; approval: string };

export function createApprovals(deps: {
  repo: ApprovalRepository;
  audit: AuditService;
  /** Filled in once the services they need exist (compose.ts / services.ts). */
  specs: () => Record<ProposalAction, ProposalSpec>;
  /**
   * Whether the proposer may still propose this: a registered operator holding `role`, their
   * account active at level 2. A proposal does not outlive its proposer's standing.
   */
  proposerValid: (id: string, role: OperatorRole) => Promise<boolean>;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const spec = (action: string): ProposalSpec => {
    if (!(PROPOSAL_ACTIONS as readonly string[]).includes(action)) throw new AdminError('invalid', `unknown action ${action.slice(0, 40)}`);
    return deps.specs()[action as ProposalAction];
  };
  const stateOf = (a: Approval): ApprovalState => (a.status === 'pending' && a.expiresAt <= now() ? 'lapsed' : a.status);
  const asView = (a: Approval): ApprovalView => ({ ...a, state: stateOf(a) });

  function needRole(actor: Actor, role: OperatorRole, what: string): void {
    if (!actor.roles.includes(role)) throw new AdminError('forbidden', `${what} needs the ${role} role`);
  }

  async function run(s: ProposalSpec, params: Record<string, unknown>, authority: Authority): Promise<string> {
    try {
      return await s.run(params, authority);
    } catch (err) {
      if (err instanceof AdminError || (err instanceof Error && /StateError|AdminError|ValidationError|KeyRingError|InputError/.test(err.name))) return `not done: ${err.message}`;
      throw err;
    }
  }

  const service = {
    /**
     * The way every two-person action is asked for: a proposal, or at once for the bootstrap actor.
     * `act.role` must be the action's role.
     */
    async request(act: Act, action: ProposalAction, paramsIn: Record<string, unknown>): Promise<Requested> {
      const s = spec(action);
      needRole(act.actor, s.role, action);
      const checked = await s.check(paramsIn, act.actor);
      if (checked.evidenceRequired && !act.evidence) throw new AdminError('invalid', 'evidence is required for this action: what was checked, and how');
      const proposer: Act = { ...act, role: s.role };
      if (act.actor.bootstrap) return { status: 'done', outcome: await run(s, checked.params, { proposer }) };
      if (await deps.repo.findPending(action, checked.subject, now())) throw new AdminError('conflict', 'the same action on the same subject is already waiting for approval');
      const t = now();
      const approval: Approval = {
        id: crypto.randomUUID(), action, subject: checked.subject, params: checked.params,
        proposedBy: act.actor.id, proposedRole: s.role, reason: act.reason, evidence: act.evidence ?? null,
        status: 'pending', createdAt: t, expiresAt: t + APPROVAL_TTL_MS,
        decidedBy: null, decidedRole: null, decidedAt: null, decisionReason: null, outcome: null,
      };
      try {
        await deps.repo.create(approval);
      } catch (err) {
        if (err instanceof StoreConflictError) throw new AdminError('conflict', 'try again');
        throw err;
      }
      deps.audit.record('APPROVAL_PROPOSED', { ...actDetails(proposer), approval: approval.id, action, subject: checked.subject, ...(s.personSubject ? { person: checked.subject } : {}), expires_at: new Date(approval.expiresAt).toISOString() });
      return { status: 'proposed', approval: approval.id };
    },

    /** An admin, alone, from the command line: at once, flagged. */
    async breakGlass(act: Act, action: ProposalAction, paramsIn: Record<string, unknown>): Promise<Requested> {
      if (act.actor.via !== 'cli' || !act.actor.roles.includes('admin')) throw new AdminError('forbidden', '--break-glass is for a registered admin, from the command line');
      const s = spec(action);
      const checked = await s.check(paramsIn, act.actor);
      if (checked.evidenceRequired && !act.evidence) throw new AdminError('invalid', 'evidence is required for this action: what was checked, and how');
      const proposer: Act = { ...act, role: 'admin' };
      const outcome = await run(s, checked.params, { proposer, breakGlass: true });
      deps.audit.record('BREAK_GLASS_USED', { ...actDetails(proposer), break_glass: true, action, subject: checked.subject, outcome });
      return { status: 'done', outcome };
    },

    async find(id: unknown): Promise<ApprovalView | undefined> {
      if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/.test(id)) return undefined;
      const a = await deps.repo.find(id);
      return a && asView(a);
    },

    /** Newest first; `state` filters (lapsed ones are stored as pending, so they are told apart here). */
    async list(options: { state?: ApprovalState; before?: { createdAt: number; id: string }; limit: number }): Promise<ApprovalView[]> {
      const status = options.state === 'lapsed' ? 'pending' : options.state;
      const out: ApprovalView[] = [];
      let before = options.before;
      // A filtered page may need a few store pages (pending vs lapsed); each is bounded, and so is
      // their number (proposals lapse after a day: lapsed and pending ones are never many).
      for (let round = 0; round < 20 && out.length < options.limit; round++) {
        const page = await deps.repo.list({ status, before, limit: options.limit });
        for (const a of page) if (!options.state || stateOf(a) === options.state) out.push(asView(a));
        if (page.length < options.limit) break;
        const last = page[page.length - 1]!;
        before = { createdAt: last.createdAt, id: last.id };
      }
      return out.slice(0, options.limit);
    },

    async approve(actor: Actor, id: unknown, reasonIn: unknown): Promise<ApprovalView> {
      return decide(actor, id, reasonIn, 'approved');
    },
    async reject(actor: Actor, id: unknown, reasonIn: unknown): Promise<ApprovalView> {
      return decide(actor, id, reasonIn, 'rejected');
    },
  };

  async function decide(actor: Actor, id: unknown, reasonIn: unknown, status: 'approved' | 'rejected'): Promise<ApprovalView> {
    const reason = checkText('reason', reasonIn, 5, 500);
    const found = await service.find(id);
    if (!found) throw new AdminError('not_found', 'no such proposal');
    const s = spec(found.action);
    needRole(actor, s.role, `deciding ${found.action}`);
    if (found.proposedBy === actor.id) throw new AdminError('forbidden', 'a proposal is decided by a different operator than the one who made it');
    if (found.state === 'lapsed') throw new AdminError('conflict', 'this proposal lapsed: 24 hours passed without a decision; propose it again');
    if (found.state !== 'pending') throw new AdminError('conflict', `this proposal was already ${found.state}`);
    // Still valid, and not the approver's own account or operator record: checked again now, since
    // the subject may have changed in the 24 hours (or been done meanwhile with break-glass).
    if (status === 'approved') {
      await s.check(found.params, actor);
      if (!(await deps.proposerValid(found.proposedBy, s.role))) {
        throw new AdminError('conflict', 'the proposer is no longer an operator with this role (or their account is locked): propose it again yourself, for a second operator');
      }
    }
    const at = now();
    if (!(await deps.repo.decide(found.id, { status, by: actor.id, role: s.role, at, reason }))) {
      throw new AdminError('conflict', 'this proposal was decided by someone else meanwhile, or lapsed');
    }
    const approver: Act = { actor, role: s.role, reason };
    // The action is carried out through the approver's door (console or command line).
    const proposer: Act = { actor: { id: found.proposedBy, roles: [s.role], via: actor.via }, role: s.role, reason: found.reason, ...(found.evidence ? { evidence: found.evidence } : {}) };
    const common = {
      approval: found.id, action: found.action, subject: found.subject, ...(s.personSubject ? { person: found.subject } : {}), proposed_by: found.proposedBy, proposal_reason: found.reason,
      operator: actor.id, role: s.role, via: actor.via, reason,
    };
    if (status === 'rejected') {
      deps.audit.record('APPROVAL_REJECTED', common);
      return { ...found, status, state: status, decidedBy: actor.id, decidedRole: s.role, decidedAt: at, decisionReason: reason };
    }
    let outcome: string;
    try {
      outcome = await run(s, found.params, { proposer, approver, approval: found.id });
    } catch (err) {
      // Approved but not carried out (the store failed): said so on the proposal and in the chain.
      await deps.repo.setOutcome(found.id, 'failed: not carried out (an internal error); propose it again').catch(() => undefined);
      deps.audit.record('APPROVAL_APPROVED', { ...common, outcome: 'failed' });
      throw err;
    }
    await deps.repo.setOutcome(found.id, outcome);
    deps.audit.record('APPROVAL_APPROVED', { ...common, outcome });
    return { ...found, status, state: status, decidedBy: actor.id, decidedRole: s.role, decidedAt: at, decisionReason: reason, outcome };
  }

  return service;
}
export type Approvals = ReturnType<typeof createApprovals>;
