/**
 * Evidence behind operators' actions on accounts, in `account_evidence`.
 */
import { StoreConflictError, type AccountEvidence, type AccountEvidenceRepository } from '../types.js';
import { str, num, insert, type MongoContext } from './shared.js';

interface EvidenceDoc {
  _id: string;
  personId: string;
  action: string;
  reason: string;
  /** JSON text. */
  evidence: string;
  operator: string;
  createdAt: number;
}

function evidenceDoc(doc: EvidenceDoc): AccountEvidence {
  return {
    id: doc._id,
    personId: doc.personId,
    action: doc.action,
    reason: doc.reason,
    evidence: JSON.parse(doc.evidence) as Record<string, unknown>,
    operator: doc.operator,
    createdAt: doc.createdAt,
  };
}

export function createMongoAccountEvidence({ db, run, write }: MongoContext): AccountEvidenceRepository {
  const col = { evidence: db.collection<EvidenceDoc>('account_evidence') };

  return {
    add: (record) =>
      write('account_evidence', async () => {
        const doc: EvidenceDoc = {
          _id: str(record.id, 'id'),
          personId: str(record.personId, 'personId'),
          action: record.action,
          reason: record.reason,
          evidence: JSON.stringify(record.evidence),
          operator: record.operator,
          createdAt: num(record.createdAt, 'createdAt'),
        };
        await insert(col.evidence, doc, () => {
          throw new StoreConflictError('id');
        });
      }),
    listForPerson: (personId) =>
      run(async () =>
        (await col.evidence.find({ personId: str(personId, 'personId') }).sort({ createdAt: 1, _id: 1 }).toArray()).map(evidenceDoc),
      ),
  };
}
