/**
 * What operators do to accounts, each with a reason, recorded evidence and an audit entry naming
 * the operator, and each a change of the account-state table (account-state.ts), which ends in the
 * store, at once, what the change ends — from the CLI too, which runs no background jobs:
 *
 * - lock: the person cannot sign in, every session ends everywhere, every grant and token is
 *   deleted (portals registered for back-channel logout are told);
 * - unlock: nothing held before the lock comes back;
 * - set-level: level 2 needs the in-person (or chip) verification's evidence: document type and
 *   number, place, and the operator (Decree 69/2024/ND-CP); a lower level ends everything that
 *   rested on the higher one;
 * - reset-mfa: removes every second factor and recovery code after the person was re-verified
 *   (NIST SP 800-63B §6.1.2.3), with the evidence of that re-verification, and ends everything
 *   signed in with them.
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { AccountEvidenceRepository, CounterRepository, FactorRepository, Person, PersonRepository, RecoveryCodeRepository } from '../store/index.js';
import { maskPid } from './pid.js';
import { maskEmail, maskPhone } from '../mfa/notifier/mask.js';
import type { AccountState } from './account-state.js';

/** Jobs of this kind were queued by locks before a lock ended sessions itself; servers still run them. */
export const ACCOUNT_LOCKED_JOB = 'account-locked';

export class AccountAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountAdminError';
  }
}

export interface OperatorAct {
  operator: string;
  reason: string;
  /**
   * More audit details naming who acted and on whose authority (admin/roles.ts actDetails,
   * admin/approvals.service.ts authorityDetails): role, door, approver, break-glass.
   */
  audit?: Record<string, string | boolean>;
}

export interface LevelEvidence {
  documentType: string;
  documentNumber: string;
  place: string;
}

const DOCUMENT_TYPES = new Set(['cccd', 'cccd-chip', 'can-cuoc', 'passport']);

function checkReason(reason: unknown): string {
  const r = typeof reason === 'string' ? reason.normalize('NFC').trim() : '';
  if (r.length < 5 || r.length > 500 || /\p{Cc}/u.test(r)) throw new AccountAdminError('--reason is required: 5–500 characters saying why (it is recorded and audited)');
  return r;
}

/** The last 4 characters of a document number: enough to find the record, not to reuse it. */
const maskDocument = (n: string) => `${'*'.repeat(Math.max(0, n.length - 4))}${n.slice(-4)}`;

export function createAccountAdmin(deps: {
  persons: PersonRepository;
  factors: FactorRepository;
  recoveryCodes: RecoveryCodeRepository;
  counters: CounterRepository;
  evidence: AccountEvidenceRepository;
  state: AccountState;
  audit: AuditService;
  /** A pending self-service account reset (selfservice/recovery.service.ts). */
  pendingReset?: {
    find(personId: string): Promise<{ requestedAt: number; readyAt: number; status: 'pending' | 'ready' } | undefined>;
    drop(personId: string): Promise<boolean>;
  };
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;

  async function person(pid: unknown): Promise<Person> {
    if (typeof pid !== 'string' || !/^\d{12}$/.test(pid)) throw new AccountAdminError('<pid> must be exactly 12 digits');
    const found = await deps.persons.findByPid(pid);
    if (!found) throw new AccountAdminError(`no account with identification number ${maskPid(pid)}`);
    return found;
  }

  async function record(p: Person, action: string, act: OperatorAct, evidence: Record<string, unknown>): Promise<string> {
    const id = crypto.randomUUID();
    await deps.evidence.add({ id, personId: p.id, action, reason: act.reason, evidence, operator: act.operator, createdAt: now() });
    return id;
  }

  return {
    async show(pid: unknown) {
      const p = await person(pid);
      const factors = (await deps.factors.listForPerson(p.id)).filter((f) => f.confirmed);
      const evidence = await deps.evidence.listForPerson(p.id);
      const reset = await deps.pendingReset?.find(p.id);
      return {
        id: p.id,
        pid: maskPid(p.pid),
        name: p.name,
        level: p.level,
        status: p.status,
        // Who locked it: an operator, the failed-sign-in limit, or the person ("lock my account").
        lock_reason: p.status === 'locked' ? (p.lockReason ?? 'operator') : null,
        // "This wasn't me": the password may not be used until recovery replaces it.
        password_reset_required: p.passwordResetRequired,
        // Why operators should look at the account (cleared with `accounts clear-attention`).
        attention: p.attention ? { reason: p.attention.reason, at: new Date(p.attention.at).toISOString() } : null,
        contacts: p.contacts.map((c) => ({ kind: c.kind, value: c.kind === 'phone' ? maskPhone(c.value) : maskEmail(c.value), verified: c.verified })),
        created_at: new Date(p.createdAt).toISOString(),
        factors: factors.map((f) => ({ type: f.type, label: f.label, created_at: new Date(f.createdAt).toISOString() })),
        recovery_codes_left: await deps.recoveryCodes.countUnused(p.id),
        // A reset the citizen asked for online (every factor lost): when its link goes (or went) to the phone.
        account_reset: reset ? { status: reset.status, requested_at: new Date(reset.requestedAt).toISOString(), ready_at: new Date(reset.readyAt).toISOString() } : null,
        actions: evidence.map((e) => ({
          action: e.action, reason: e.reason, operator: e.operator, at: new Date(e.createdAt).toISOString(),
          evidence: typeof e.evidence.documentNumber === 'string' ? { ...e.evidence, documentNumber: maskDocument(e.evidence.documentNumber) } : e.evidence,
        })),
      };
    },

    /** Locks an account; `fraud` (suspected takeover or misuse) makes unlocking a two-person action. */
    async lock(pid: unknown, act: OperatorAct, options: { fraud?: boolean } = {}): Promise<Person> {
      const p = await person(pid);
      const reason = checkReason(act.reason);
      const fraud = !!options.fraud;
      const ended = await deps.state.apply(fraud ? 'lock-for-fraud' : 'lock', p);
      const evidenceId = await record(p, fraud ? 'lock-for-fraud' : 'lock', { ...act, reason }, {});
      deps.audit.record('ACCOUNT_LOCKED', { ...act.audit, person: p.id, pid: maskPid(p.pid), operator: act.operator, reason, evidence: evidenceId, sessions_ended: ended, lock_reason: fraud ? 'fraud' : 'operator' });
      return { ...p, status: 'locked', lockReason: fraud ? 'fraud' : 'operator' };
    },

    /** The account was looked at (after "this wasn't me"): the flag goes, with the operator's reason. */
    async clearAttention(pid: unknown, act: OperatorAct): Promise<Person> {
      const p = await person(pid);
      const reason = checkReason(act.reason);
      if (!p.attention) throw new AccountAdminError('this account is not flagged for attention');
      await deps.persons.setAttention(p.id, null);
      const evidenceId = await record(p, 'clear-attention', { ...act, reason }, { flagged: p.attention.reason, flagged_at: new Date(p.attention.at).toISOString() });
      deps.audit.record('ACCOUNT_ATTENTION_CLEARED', { ...act.audit, person: p.id, pid: maskPid(p.pid), operator: act.operator, reason, evidence: evidenceId });
      return { ...p, attention: null };
    },

    /**
     * Unlocks an account. A fraud lock is lifted only with `fraudApproved`: a second operator's
     * approval (admin/approvals.service.ts) or an admin's break-glass.
     */
    async unlock(pid: unknown, act: { operator: string; reason?: string; audit?: Record<string, string | boolean> }, options: { fraudApproved?: boolean } = {}): Promise<Person> {
      const p = await person(pid);
      const reason = act.reason === undefined ? 'unlocked' : checkReason(act.reason);
      await deps.state.apply(p.status === 'locked' && p.lockReason === 'fraud' && options.fraudApproved ? 'unlock-fraud' : 'unlock', p);
      await deps.counters.reset(`login-fail:${p.id}`);
      const evidenceId = await record(p, 'unlock', { operator: act.operator, reason }, {});
      deps.audit.record('ACCOUNT_UNLOCKED', { ...act.audit, person: p.id, pid: maskPid(p.pid), was: p.status === 'locked' ? `locked:${p.lockReason ?? 'operator'}` : p.status, operator: act.operator, reason, evidence: evidenceId });
      return { ...p, status: 'active' };
    },

    async setLevel(pid: unknown, level: unknown, act: OperatorAct, evidence?: Partial<LevelEvidence>): Promise<Person> {
      const p = await person(pid);
      if (level !== '1' && level !== '2' && level !== 1 && level !== 2) throw new AccountAdminError('<level> must be 1 or 2');
      const to = Number(level) as 1 | 2;
      const reason = checkReason(act.reason);
      let proof: Record<string, unknown> = {};
      if (to === 2) {
        const type = evidence?.documentType?.trim().toLowerCase();
        const number = evidence?.documentNumber?.trim().toUpperCase();
        const place = evidence?.place?.normalize('NFC').trim();
        if (!type || !DOCUMENT_TYPES.has(type)) throw new AccountAdminError(`--document-type is required for level 2: one of ${[...DOCUMENT_TYPES].join(', ')}`);
        if (!number || !/^[A-Z0-9]{6,20}$/.test(number)) throw new AccountAdminError('--document-number is required for level 2: 6–20 letters or digits');
        if (!place || place.length < 2 || place.length > 200 || /\p{Cc}/u.test(place)) throw new AccountAdminError('--place is required for level 2: where the person was verified (2–200 characters)');
        proof = { documentType: type, documentNumber: number, place };
      }
      await deps.persons.setLevel(p.id, to);
      await deps.state.apply(to < p.level ? 'lower-level' : 'raise-level', p);
      const evidenceId = await record(p, 'set-level', { ...act, reason }, { from: p.level, to, ...proof });
      deps.audit.record('ACCOUNT_LEVEL_CHANGED', {
        ...act.audit, person: p.id, pid: maskPid(p.pid), from: p.level, to, operator: act.operator, reason, evidence: evidenceId,
        ...(to === 2 ? { document_type: String(proof.documentType), document: maskDocument(String(proof.documentNumber)), place: String(proof.place) } : {}),
      });
      return { ...p, level: to };
    },

    async resetMfa(pid: unknown, act: OperatorAct, evidence: unknown): Promise<{ person: Person; removed: number }> {
      const p = await person(pid);
      const reason = checkReason(act.reason);
      const proof = typeof evidence === 'string' ? evidence.normalize('NFC').trim() : '';
      if (proof.length < 5 || proof.length > 500 || /\p{Cc}/u.test(proof)) {
        throw new AccountAdminError('--evidence is required: how the person was re-verified (e.g. "CCCD checked in person at …"), 5–500 characters');
      }
      const factors = await deps.factors.listForPerson(p.id);
      for (const f of factors) await deps.factors.remove(p.id, f.id);
      await deps.recoveryCodes.removeAll(p.id);
      await deps.counters.reset(`mfa-fail:${p.id}`);
      await deps.state.apply('reset-mfa', p);
      // Done at the counter: a reset asked for online is moot, and its link must not reset again.
      const droppedReset = (await deps.pendingReset?.drop(p.id)) ?? false;
      if (droppedReset) deps.audit.record('ACCOUNT_RESET_CANCELLED', { person: p.id, operator: act.operator, reason: 'reset-mfa at the counter' });
      const evidenceId = await record(p, 'reset-mfa', { ...act, reason }, { verification: proof, factorsRemoved: factors.length });
      deps.audit.record('ACCOUNT_MFA_RESET', { ...act.audit, person: p.id, pid: maskPid(p.pid), operator: act.operator, reason, evidence: evidenceId, factors_removed: factors.length, types: [...new Set(factors.filter((f) => f.confirmed).map((f) => f.type))] });
      return { person: p, removed: factors.length };
    },
  };
}
export type AccountAdmin = ReturnType<typeof createAccountAdmin>;
