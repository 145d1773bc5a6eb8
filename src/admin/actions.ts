/**
 * The operators' actions, one door for the console and the command line: each checks the actor's
 * role, refuses an operator acting on their own account (separation of duties), and sends the
 * two-person actions through approvals (approvals.service.ts) — raising an identity to level 2,
 * approving `national_id` for a portal, retiring a signing key, removing an operator, unlocking an
 * account locked for fraud. The account changes themselves are rows of the account-state table
 * (accounts/account-state.ts), applied by the account admin service.
 */
import type { AuditService } from '../audit/index.js';
import { maskPid, type AccountAdmin, type LevelEvidence } from '../accounts/index.js';
import type { Person, PersonRepository } from '../store/index.js';
import { checkRoles, type OperatorsService } from './operators.service.js';
import { authorityDetails, createApprovals, type Authority, type ProposalAction, type ProposalSpec, type Requested } from './approvals.service.js';
import { AdminError, actAs, actDetails, type Act, type Actor } from './roles.js';
import type { ApprovalRepository } from '../store/index.js';

export interface AdminActionsDeps {
  persons: PersonRepository;
  accountAdmin: AccountAdmin;
  operators: OperatorsService;
  approvalsRepo: ApprovalRepository;
  audit: AuditService;
  /** Approves a portal for national_id with its legal basis (portals/): throws on bad input. */
  approveNationalId(clientId: string, legalBasis: string): Promise<void>;
  /** Checks a portal exists (the proposal's subject). */
  portalExists(clientId: string): Promise<boolean>;
  /** The portal's revision (store): a change to it after a proposal voids the proposal. */
  portalRevision(clientId: string): Promise<number | undefined>;
  /** Replaces a portal's metadata (store): an approved edit of a national_id portal's URIs. */
  updatePortalMetadata(clientId: string, metadata: Record<string, unknown>): Promise<boolean>;
  /** Retires a signing key (keys/signing-keys.ts): never the active one. */
  retireKey(kid: string): Promise<{ alg: string; was: string }>;
  /** Checks a key can be retired (exists, not active, not retired). */
  checkRetirable(kid: string): Promise<void>;
  now?: () => number;
}

const opAct = (a: Authority) => ({ operator: a.proposer.actor.id, reason: a.proposer.reason, audit: authorityDetails(a) });

export function createAdminActions(deps: AdminActionsDeps) {
  async function personByPid(pid: unknown): Promise<Person> {
    if (typeof pid !== 'string' || !/^\d{12}$/.test(pid)) throw new AdminError('invalid', 'the personal identification number is exactly 12 digits');
    const p = await deps.persons.findByPid(pid);
    if (!p) throw new AdminError('not_found', `no account with identification number ${maskPid(pid)}`);
    return p;
  }
  async function personById(id: unknown): Promise<Person> {
    const p = typeof id === 'string' && id.length <= 64 ? await deps.persons.findById(id) : undefined;
    if (!p) throw new AdminError('not_found', 'no such account');
    return p;
  }
  function notSelf(actor: Actor, p: Person): void {
    if (p.id === actor.id) throw new AdminError('forbidden', 'operators do not act on their own account: another operator does');
  }
  /**
   * An operator's own account is handled by an admin (who holds helpdesk too), never by a help-desk
   * colleague alone: otherwise one help-desk operator could lower or lock every other operator out
   * of the console, and with them the second person of every two-person action.
   */
  async function guardOperatorAccount(actor: Actor, p: Person): Promise<void> {
    notSelf(actor, p);
    if (!actor.bootstrap && !actor.roles.includes('admin') && (await deps.operators.find(p.id))) {
      throw new AdminError('forbidden', 'this account belongs to an operator: an admin (who also holds helpdesk) acts on it');
    }
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : '');

  const specs: Record<ProposalAction, ProposalSpec> = {
    'set-level-2': {
      role: 'helpdesk',
      personSubject: true,
      async check(params, actor) {
        const p = await personById(params.personId);
        await guardOperatorAccount(actor, p);
        if (p.level === 2) throw new AdminError('conflict', 'this account is already at identity level 2');
        const evidence = checkLevelEvidence(params);
        return { subject: p.id, params: { personId: p.id, ...evidence } };
      },
      async run(params, authority) {
        const p = await personById(params.personId);
        await deps.accountAdmin.setLevel(p.pid, 2, opAct(authority), { documentType: str(params.documentType), documentNumber: str(params.documentNumber), place: str(params.place) });
        return 'done: identity level 2';
      },
    },
    'unlock-fraud': {
      role: 'helpdesk',
      personSubject: true,
      async check(params, actor) {
        const p = await personById(params.personId);
        await guardOperatorAccount(actor, p);
        if (p.status !== 'locked' || p.lockReason !== 'fraud') throw new AdminError('conflict', 'this account is not locked for fraud');
        return { subject: p.id, params: { personId: p.id } };
      },
      async run(params, authority) {
        const p = await personById(params.personId);
        await deps.accountAdmin.unlock(p.pid, opAct(authority), { fraudApproved: true });
        return 'done: unlocked';
      },
    },
    'approve-national-id': {
      role: 'integration',
      async check(params) {
        const clientId = str(params.clientId);
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(clientId) || !(await deps.portalExists(clientId))) throw new AdminError('not_found', 'no such portal');
        const legalBasis = str(params.legalBasis).normalize('NFC').trim();
        if (legalBasis.length < 5 || legalBasis.length > 500 || /\p{Cc}/u.test(legalBasis)) throw new AdminError('invalid', 'the legal basis is required: the legal instrument that allows it (5–500 characters)');
        // The approver approves the portal as it was proposed: its redirect URIs may not change
        // in between (else the identification numbers would go wherever they were moved to).
        const revision = await deps.portalRevision(clientId);
        if (typeof params.revision === 'number' && params.revision !== revision) throw new AdminError('conflict', 'the portal was changed after this was proposed: look at it again and propose again');
        return { subject: clientId, params: { clientId, legalBasis, revision } };
      },
      async run(params, authority) {
        await deps.approveNationalId(str(params.clientId), str(params.legalBasis));
        deps.audit.record('PORTAL_APPROVED', { ...authorityDetails(authority), portal: str(params.clientId), scope: 'national_id', legal_basis: str(params.legalBasis) });
        return 'done: national_id approved';
      },
    },
    'retire-key': {
      role: 'keys',
      async check(params) {
        const kid = str(params.kid);
        if (!/^[A-Za-z0-9_-]{1,128}$/.test(kid)) throw new AdminError('invalid', 'not a key id');
        await deps.checkRetirable(kid);
        return { subject: kid, params: { kid } };
      },
      async run(params, authority) {
        const kid = str(params.kid);
        const r = await deps.retireKey(kid);
        deps.audit.record('KEY_RETIRED', { ...authorityDetails(authority), kid, alg: r.alg, was: r.was });
        return `done: retired (was ${r.was})`;
      },
    },
    // Where a portal approved for national_id sends people (and their identification numbers):
    // changing its URIs is checked by a second operator, on the portal as it was when proposed.
    'edit-national-id-portal': {
      role: 'integration',
      async check(params) {
        const clientId = str(params.clientId);
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(clientId) || !(await deps.portalExists(clientId))) throw new AdminError('not_found', 'no such portal');
        const revision = await deps.portalRevision(clientId);
        if (typeof params.revision === 'number' && params.revision !== revision) throw new AdminError('conflict', 'the portal was changed after this was proposed: look at it again and propose again');
        const metadata = params.metadata;
        if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw new AdminError('invalid', 'no metadata');
        const changed = Array.isArray(params.changed) ? params.changed.filter((c): c is string => typeof c === 'string') : [];
        return { subject: clientId, params: { clientId, metadata, changed, revision } };
      },
      async run(params, authority) {
        const clientId = str(params.clientId);
        if (!(await deps.updatePortalMetadata(clientId, params.metadata as Record<string, unknown>))) return 'not done: no such portal';
        deps.audit.record('PORTAL_UPDATED', { ...authorityDetails(authority), portal: clientId, changed: (params.changed as string[]) ?? [] });
        return 'done: URIs changed';
      },
    },
    'change-admin-role': {
      role: 'admin',
      personSubject: true,
      async check(params, actor) {
        const personId = str(params.personId);
        if (personId === actor.id) throw new AdminError('forbidden', 'no one changes their own roles');
        const op = await deps.operators.find(personId);
        if (!op) throw new AdminError('not_found', 'no such operator');
        const roles = checkRoles(Array.isArray(params.roles) ? params.roles : []);
        if (typeof params.rev === 'number' && params.rev !== op.rev) throw new AdminError('conflict', 'the roles were changed after this was proposed: look again and propose again');
        if (op.roles.includes('admin') === roles.includes('admin')) throw new AdminError('conflict', 'this no longer changes the admin role');
        return { subject: personId, params: { personId, roles, rev: op.rev } };
      },
      async run(params, authority) {
        const roles = checkRoles(Array.isArray(params.roles) ? params.roles : []);
        const act: Act = { ...authority.proposer, role: 'admin' };
        await deps.operators.setRoles(act, str(params.personId), Number(params.rev), roles, { approved: authorityDetails(authority) });
        return `done: roles ${roles.join(', ')}`;
      },
    },
    'remove-operator': {
      role: 'admin',
      personSubject: true,
      async check(params, actor) {
        const op = await deps.operators.checkRemovable(actor, str(params.personId));
        return { subject: op.personId, params: { personId: op.personId } };
      },
      async run(params, authority) {
        const id = str(params.personId);
        if (!(await deps.operators.removeNow(id))) return 'not done: no longer an operator';
        deps.audit.record('OPERATOR_REMOVED', { ...authorityDetails(authority), person: id, target: id });
        return 'done: removed';
      },
    },
  };

  const approvals = createApprovals({
    repo: deps.approvalsRepo, audit: deps.audit, specs: () => specs, now: deps.now,
    async proposerValid(id, role) {
      const [op, p] = await Promise.all([deps.operators.find(id), deps.persons.findById(id)]);
      return !!op && op.roles.includes(role) && !!p && p.status === 'active' && p.level === 2;
    },
  });
  /** A two-person action: a proposal, at once for the bootstrap actor, or alone with break-glass. */
  const twoPerson = (act: Act, action: ProposalAction, params: Record<string, unknown>, breakGlass?: boolean): Promise<Requested> =>
    breakGlass ? approvals.breakGlass(act, action, params) : approvals.request(act, action, params);

  return {
    approvals,
    operators: deps.operators,
    accounts: {
      async lock(actor: Actor, pid: unknown, reason: unknown, options: { fraud?: boolean } = {}): Promise<Requested> {
        const act = actAs(actor, 'accounts.act', String(reason ?? ''));
        const p = await personByPid(pid);
        await guardOperatorAccount(actor, p);
        await deps.accountAdmin.lock(p.pid, { operator: actor.id, reason: act.reason, audit: actDetails(act) }, options);
        return { status: 'done', outcome: options.fraud ? 'locked for fraud' : 'locked' };
      },
      async unlock(actor: Actor, pid: unknown, reason: unknown, options: { breakGlass?: boolean } = {}): Promise<Requested> {
        const act = actAs(actor, 'accounts.act', String(reason ?? ''));
        const p = await personByPid(pid);
        await guardOperatorAccount(actor, p);
        if (p.status === 'locked' && p.lockReason === 'fraud') return twoPerson(act, 'unlock-fraud', { personId: p.id }, options.breakGlass);
        await deps.accountAdmin.unlock(p.pid, { operator: actor.id, reason: act.reason, audit: actDetails(act) });
        return { status: 'done', outcome: 'unlocked' };
      },
      async setLevel(actor: Actor, pid: unknown, level: unknown, reason: unknown, evidence: Partial<LevelEvidence>, options: { breakGlass?: boolean } = {}): Promise<Requested> {
        const act = actAs(actor, 'accounts.act', String(reason ?? ''));
        const p = await personByPid(pid);
        await guardOperatorAccount(actor, p);
        if (level !== '1' && level !== '2' && level !== 1 && level !== 2) throw new AdminError('invalid', 'the level must be 1 or 2');
        if (Number(level) === 2 && p.level !== 2) return twoPerson(act, 'set-level-2', { personId: p.id, ...evidence }, options.breakGlass);
        await deps.accountAdmin.setLevel(p.pid, level, { operator: actor.id, reason: act.reason, audit: actDetails(act) }, evidence);
        return { status: 'done', outcome: `identity level ${Number(level)}` };
      },
      async resetMfa(actor: Actor, pid: unknown, reason: unknown, evidence: unknown): Promise<Requested & { removed?: number }> {
        const act = actAs(actor, 'accounts.act', String(reason ?? ''), String(evidence ?? ''));
        const p = await personByPid(pid);
        await guardOperatorAccount(actor, p);
        const r = await deps.accountAdmin.resetMfa(p.pid, { operator: actor.id, reason: act.reason, audit: actDetails(act) }, act.evidence);
        return { status: 'done', outcome: `${r.removed} second factor(s) removed`, removed: r.removed };
      },
      async clearAttention(actor: Actor, pid: unknown, reason: unknown): Promise<Requested> {
        const act = actAs(actor, 'accounts.act', String(reason ?? ''));
        const p = await personByPid(pid);
        await guardOperatorAccount(actor, p);
        await deps.accountAdmin.clearAttention(p.pid, { operator: actor.id, reason: act.reason, audit: actDetails(act) });
        return { status: 'done', outcome: 'attention cleared' };
      },
    },
    portals: {
      /** Proposes new URIs for a portal approved for national_id (computed and checked by the caller). */
      proposeNationalIdPortalEdit: (actor: Actor, clientId: string, metadata: Record<string, unknown>, changed: string[], revision: number | undefined, reason: unknown) =>
        approvals.request(actAs(actor, 'portals.act', String(reason ?? '')), 'edit-national-id-portal', { clientId, metadata, changed, revision }),
      approveNationalId: (actor: Actor, clientId: unknown, legalBasis: unknown, reason: unknown, options: { breakGlass?: boolean } = {}) =>
        twoPerson(actAs(actor, 'portals.act', String(reason ?? '')), 'approve-national-id', { clientId, legalBasis }, options.breakGlass),
    },
    keys: {
      retire: (actor: Actor, kid: unknown, reason: unknown, options: { breakGlass?: boolean } = {}) =>
        twoPerson(actAs(actor, 'keys.act', String(reason ?? '')), 'retire-key', { kid }, options.breakGlass),
    },
    operatorsAdmin: {
      /** Another operator's roles: at once, or a proposal when it grants or takes away admin. */
      async setRoles(actor: Actor, personId: string, rev: number, roles: readonly unknown[], reason: unknown, options: { breakGlass?: boolean } = {}): Promise<Requested> {
        const act = actAs(actor, 'operators.act', String(reason ?? ''));
        // With a single admin (a new installation's first), the second one is made by break-glass.
        if (await deps.operators.changesAdmin(personId, roles)) return twoPerson(act, 'change-admin-role', { personId, roles: [...roles], rev }, options.breakGlass);
        await deps.operators.setRoles(act, personId, rev, roles);
        return { status: 'done', outcome: 'roles changed' };
      },
      remove: (actor: Actor, personId: unknown, reason: unknown, options: { breakGlass?: boolean } = {}) =>
        twoPerson(actAs(actor, 'operators.act', String(reason ?? '')), 'remove-operator', { personId }, options.breakGlass),
    },
  };
}
export type AdminActions = ReturnType<typeof createAdminActions>;

const DOCUMENT_TYPES = new Set(['cccd', 'cccd-chip', 'can-cuoc', 'passport']);

/** Level 2's evidence (Decree 69/2024/ND-CP: verified in person or with the card's chip): checked before it is proposed. */
export function checkLevelEvidence(params: Record<string, unknown>): LevelEvidence {
  const type = typeof params.documentType === 'string' ? params.documentType.trim().toLowerCase() : '';
  const number = typeof params.documentNumber === 'string' ? params.documentNumber.trim().toUpperCase() : '';
  const place = typeof params.place === 'string' ? params.place.normalize('NFC').trim() : '';
  if (!DOCUMENT_TYPES.has(type)) throw new AdminError('invalid', `the document type is required for level 2: one of ${[...DOCUMENT_TYPES].join(', ')}`);
  if (!/^[A-Z0-9]{6,20}$/.test(number)) throw new AdminError('invalid', 'the document number is required for level 2: 6–20 letters or digits');
  if (place.length < 2 || place.length > 200 || /\p{Cc}/u.test(place)) throw new AdminError('invalid', 'the place is required for level 2: where the person was verified (2–200 characters)');
  return { documentType: type, documentNumber: number, place };
}
