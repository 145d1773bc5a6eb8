/**
 * Two-person approvals in `approvals`, keyed by id; params as JSON text (free-form keys stay data:
 * see migrations.ts). `decide` is one conditional updateOne (still pending, not lapsed): of two
 * operators deciding at once exactly one matches.
 */
import type { Filter } from 'mongodb';
import { StoreConflictError, type Approval, type ApprovalRepository, type ApprovalStatus } from '../types.js';
import { checkApprovalStatus } from '../values.js';
import { str, num, limitOf, insert, type MongoContext } from './shared.js';

export interface ApprovalDoc {
  _id: string;
  action: string;
  subject: string;
  /** JSON text. */
  params: string;
  proposedBy: string;
  proposedRole: string;
  reason: string;
  evidence: string | null;
  status: ApprovalStatus;
  createdAt: number;
  expiresAt: number;
  decidedBy: string | null;
  decidedRole: string | null;
  decidedAt: number | null;
  decisionReason: string | null;
  outcome: string | null;
}

export function approvalDoc(doc: ApprovalDoc): Approval {
  return {
    id: doc._id,
    action: doc.action,
    subject: doc.subject,
    params: JSON.parse(doc.params) as Record<string, unknown>,
    proposedBy: doc.proposedBy,
    proposedRole: doc.proposedRole,
    reason: doc.reason,
    evidence: doc.evidence ?? null,
    status: checkApprovalStatus(doc.status),
    createdAt: doc.createdAt,
    expiresAt: doc.expiresAt,
    decidedBy: doc.decidedBy ?? null,
    decidedRole: doc.decidedRole ?? null,
    decidedAt: doc.decidedAt ?? null,
    decisionReason: doc.decisionReason ?? null,
    outcome: doc.outcome ?? null,
  };
}

const optStr = (value: string | null, what: string): string | null => (value === null ? null : str(value, what));
const optNum = (value: number | null, what: string): number | null => (value === null ? null : num(value, what));

/** The document of an approval, every field checked (store copy imports through it too). */
export function approvalToDoc(a: Approval): ApprovalDoc {
  return {
    _id: str(a.id, 'id'),
    action: str(a.action, 'action'),
    subject: str(a.subject, 'subject'),
    params: JSON.stringify(a.params ?? {}),
    proposedBy: str(a.proposedBy, 'proposedBy'),
    proposedRole: str(a.proposedRole, 'proposedRole'),
    reason: str(a.reason, 'reason'),
    evidence: optStr(a.evidence ?? null, 'evidence'),
    status: checkApprovalStatus(a.status),
    createdAt: num(a.createdAt, 'createdAt'),
    expiresAt: num(a.expiresAt, 'expiresAt'),
    decidedBy: optStr(a.decidedBy ?? null, 'decidedBy'),
    decidedRole: optStr(a.decidedRole ?? null, 'decidedRole'),
    decidedAt: optNum(a.decidedAt ?? null, 'decidedAt'),
    decisionReason: optStr(a.decisionReason ?? null, 'decisionReason'),
    outcome: optStr(a.outcome ?? null, 'outcome'),
  };
}

export function createMongoApprovals({ db, run, write }: MongoContext): ApprovalRepository {
  const col = { approvals: db.collection<ApprovalDoc>('approvals') };

  return {
    create: (approval) =>
      write('approvals', async () => {
        await insert(col.approvals, approvalToDoc(approval), () => {
          throw new StoreConflictError('id');
        });
      }),
    find: (id) =>
      run(async () => {
        const doc = await col.approvals.findOne({ _id: str(id, 'id') });
        return doc ? approvalDoc(doc) : undefined;
      }),
    // Newest first, strictly after the cursor in the order (createdAt, _id) descending.
    list: ({ status, before, limit }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const filter: Filter<ApprovalDoc> = {};
        if (status !== undefined) filter.status = checkApprovalStatus(status);
        if (before) {
          filter.$or = [
            { createdAt: { $lt: num(before.createdAt, 'before.createdAt') } },
            { createdAt: before.createdAt, _id: { $lt: str(before.id, 'before.id') } },
          ];
        }
        return (await col.approvals.find(filter).sort({ createdAt: -1, _id: -1 }).limit(n).toArray()).map(approvalDoc);
      }),
    findPending: (action, subject, at) =>
      run(async () => {
        const [doc] = await col.approvals
          .find({ action: str(action, 'action'), subject: str(subject, 'subject'), status: 'pending', expiresAt: { $gt: num(at, 'now') } })
          .sort({ createdAt: -1, _id: -1 })
          .limit(1)
          .toArray();
        return doc ? approvalDoc(doc) : undefined;
      }),
    // The compare-and-set: the filter requires the proposal still pending and not lapsed at the
    // decision's time, so of concurrent deciders only the first update matches.
    decide: (id, decision) =>
      write('approvals', async () => {
        if (decision.status !== 'approved' && decision.status !== 'rejected') throw new TypeError('a decision approves or rejects');
        const at = num(decision.at, 'at');
        const result = await col.approvals.updateOne(
          { _id: str(id, 'id'), status: 'pending', expiresAt: { $gt: at } },
          {
            $set: {
              status: decision.status,
              decidedBy: str(decision.by, 'by'),
              decidedRole: str(decision.role, 'role'),
              decidedAt: at,
              decisionReason: str(decision.reason, 'reason'),
            },
          },
        );
        return result.matchedCount === 1;
      }),
    setOutcome: (id, outcome) =>
      write('approvals', async () => {
        await col.approvals.updateOne({ _id: str(id, 'id'), status: 'approved' }, { $set: { outcome: str(outcome, 'outcome') } });
      }),
  };
}
