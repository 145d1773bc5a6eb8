/**
 * Evidence behind operators' actions on accounts, in `account_evidence`.
 */
import type { AccountEvidence, AccountEvidenceRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface AccountEvidenceRow {
  id: string;
  person_id: string;
  action: string;
  reason: string;
  evidence: string;
  operator: string;
  created_at: number;
}

function accountEvidenceRow(row: AccountEvidenceRow): AccountEvidence {
  return {
    id: row.id,
    personId: row.person_id,
    action: row.action,
    reason: row.reason,
    evidence: JSON.parse(row.evidence) as Record<string, unknown>,
    operator: row.operator,
    createdAt: row.created_at,
  };
}

export function createSqliteAccountEvidence({ statement, call }: SqliteContext): AccountEvidenceRepository {
  const evidenceInsert = statement<
    [{ id: string; personId: string; action: string; reason: string; evidence: string; operator: string; createdAt: number }]
  >(`
    INSERT INTO account_evidence (id, person_id, action, reason, evidence, operator, created_at)
    VALUES (@id, @personId, @action, @reason, @evidence, @operator, @createdAt)
  `);
  const evidenceList = statement<[string], AccountEvidenceRow>(
    'SELECT * FROM account_evidence WHERE person_id = ? ORDER BY created_at, id',
  );

  return {
    add: (record) =>
      call(
        () => {
          evidenceInsert().run({
            id: record.id,
            personId: record.personId,
            action: record.action,
            reason: record.reason,
            evidence: JSON.stringify(record.evidence),
            operator: record.operator,
            createdAt: record.createdAt,
          });
        },
        () => 'id',
      ),
    listForPerson: (personId) => call(() => evidenceList().all(personId).map(accountEvidenceRow)),
  };
}
