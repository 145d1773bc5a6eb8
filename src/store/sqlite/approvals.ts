/**
 * Two-person approvals in `approvals`. `decide` is a compare-and-set in one UPDATE (still pending,
 * not lapsed): of two operators deciding at once exactly one changes the row.
 */
import type { Approval, ApprovalRepository, ApprovalStatus } from '../types.js';
import { checkApprovalStatus } from '../values.js';
import type { SqliteContext } from './shared.js';

interface ApprovalRow {
  id: string;
  action: string;
  subject: string;
  /** JSON object. */
  params: string;
  proposed_by: string;
  proposed_role: string;
  reason: string;
  evidence: string | null;
  status: ApprovalStatus;
  created_at: number;
  expires_at: number;
  decided_by: string | null;
  decided_role: string | null;
  decided_at: number | null;
  decision_reason: string | null;
  outcome: string | null;
}

function approvalRow(row: ApprovalRow): Approval {
  return {
    id: row.id,
    action: row.action,
    subject: row.subject,
    params: JSON.parse(row.params) as Record<string, unknown>,
    proposedBy: row.proposed_by,
    proposedRole: row.proposed_role,
    reason: row.reason,
    evidence: row.evidence,
    status: row.status,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    decidedBy: row.decided_by,
    decidedRole: row.decided_role,
    decidedAt: row.decided_at,
    decisionReason: row.decision_reason,
    outcome: row.outcome,
  };
}

/** Rows for a caller's limit: none below 0 (a negative LIMIT would mean "no limit" to SQLite). */
const limitOf = (limit: number): number => (Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0);

export function createSqliteApprovals({ statement, call }: SqliteContext): ApprovalRepository {
  const approvalInsert = statement<[Record<string, unknown>]>(`
    INSERT INTO approvals (id, action, subject, params, proposed_by, proposed_role, reason, evidence, status, created_at,
                           expires_at, decided_by, decided_role, decided_at, decision_reason, outcome)
    VALUES (@id, @action, @subject, @params, @proposedBy, @proposedRole, @reason, @evidence, @status, @createdAt,
            @expiresAt, @decidedBy, @decidedRole, @decidedAt, @decisionReason, @outcome)
  `);
  const approvalFind = statement<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?');
  // Newest first, strictly after the cursor in that order: the row value (created_at, id) < cursor
  // is answered from the index (https://www.sqlite.org/rowvalue.html#row_value_comparisons). One
  // statement per shape, so each has a plan that uses its index (an `? IS NULL OR` would not).
  const approvalList = statement<[number], ApprovalRow>('SELECT * FROM approvals ORDER BY created_at DESC, id DESC LIMIT ?');
  const approvalListBefore = statement<[number, string, number], ApprovalRow>(
    'SELECT * FROM approvals WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?',
  );
  const approvalListStatus = statement<[string, number], ApprovalRow>(
    'SELECT * FROM approvals WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT ?',
  );
  const approvalListStatusBefore = statement<[string, number, string, number], ApprovalRow>(
    'SELECT * FROM approvals WHERE status = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?',
  );
  const approvalFindPending = statement<[string, string, number], ApprovalRow>(`
    SELECT * FROM approvals WHERE action = ? AND subject = ? AND status = 'pending' AND expires_at > ?
    ORDER BY created_at DESC, id DESC LIMIT 1
  `);
  // The compare-and-set: the row changes only while pending and before it lapses (at < expires_at).
  const approvalDecide = statement<[{ id: string; status: string; by: string; role: string; at: number; reason: string }]>(`
    UPDATE approvals SET status = @status, decided_by = @by, decided_role = @role, decided_at = @at, decision_reason = @reason
    WHERE id = @id AND status = 'pending' AND expires_at > @at
  `);
  const approvalSetOutcome = statement<[string, string]>("UPDATE approvals SET outcome = ? WHERE id = ? AND status = 'approved'");

  return {
    create: (approval) =>
      call(
        () => {
          approvalInsert().run({
            id: approval.id,
            action: approval.action,
            subject: approval.subject,
            params: JSON.stringify(approval.params),
            proposedBy: approval.proposedBy,
            proposedRole: approval.proposedRole,
            reason: approval.reason,
            evidence: approval.evidence,
            status: checkApprovalStatus(approval.status),
            createdAt: approval.createdAt,
            expiresAt: approval.expiresAt,
            decidedBy: approval.decidedBy,
            decidedRole: approval.decidedRole,
            decidedAt: approval.decidedAt,
            decisionReason: approval.decisionReason,
            outcome: approval.outcome,
          });
        },
        () => 'id',
      ),
    find: (id) =>
      call(() => {
        const row = approvalFind().get(id);
        return row && approvalRow(row);
      }),
    list: ({ status, before, limit }) =>
      call(() => {
        const n = limitOf(limit);
        let rows: ApprovalRow[];
        if (status === undefined) {
          rows = before ? approvalListBefore().all(before.createdAt, before.id, n) : approvalList().all(n);
        } else {
          const s = checkApprovalStatus(status);
          rows = before ? approvalListStatusBefore().all(s, before.createdAt, before.id, n) : approvalListStatus().all(s, n);
        }
        return rows.map(approvalRow);
      }),
    findPending: (action, subject, at) =>
      call(() => {
        const row = approvalFindPending().get(action, subject, at);
        return row && approvalRow(row);
      }),
    decide: (id, decision) =>
      call(() => {
        if (decision.status !== 'approved' && decision.status !== 'rejected') throw new TypeError('a decision approves or rejects');
        return approvalDecide().run({
          id,
          status: decision.status,
          by: decision.by,
          role: decision.role,
          at: decision.at,
          reason: decision.reason,
        }).changes === 1;
      }),
    setOutcome: (id, outcome) =>
      call(() => {
        approvalSetOutcome().run(outcome, id);
      }),
  };
}
