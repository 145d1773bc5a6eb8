/**
 * Second factors (TOTP, passkeys) in `factors`; the credential id has a sparse unique index.
 */
import { StoreConflictError, type Factor, type FactorRepository } from '../types.js';
import { str, num, insert, duplicateKeyHint, hintNames, type MongoContext } from './shared.js';

interface FactorDoc {
  _id: string;
  personId: string;
  type: Factor['type'];
  label: string;
  confirmed: boolean;
  secretCiphertext: string | null;
  lastStep: number | null;
  /** Absent (not null) when the factor has none: the unique index is sparse. */
  credentialId?: string;
  publicKey: string | null;
  signCount: number | null;
  transports: string[] | null;
  createdAt: number;
  lastUsedAt: number | null;
}

function factorDoc(doc: FactorDoc): Factor {
  return {
    id: doc._id,
    personId: doc.personId,
    type: doc.type,
    label: doc.label,
    confirmed: doc.confirmed,
    secretCiphertext: doc.secretCiphertext,
    lastStep: doc.lastStep,
    credentialId: doc.credentialId ?? null,
    publicKey: doc.publicKey,
    signCount: doc.signCount,
    transports: doc.transports === null ? null : [...doc.transports],
    createdAt: doc.createdAt,
    lastUsedAt: doc.lastUsedAt,
  };
}

export function createMongoFactors({ db, now, run, write }: MongoContext): FactorRepository {
  const col = { factors: db.collection<FactorDoc>('factors') };

  return {
    create: (factor) =>
      write('factors', async () => {
        const credentialId = factor.credentialId === null ? null : str(factor.credentialId, 'credentialId');
        const doc: FactorDoc = {
          _id: str(factor.id, 'id'),
          personId: str(factor.personId, 'personId'),
          type: factor.type,
          label: factor.label,
          confirmed: factor.confirmed === true,
          secretCiphertext: factor.secretCiphertext,
          lastStep: null,
          // Absent rather than null: the unique index on it is sparse.
          ...(credentialId !== null ? { credentialId } : {}),
          publicKey: factor.publicKey,
          signCount: factor.signCount,
          transports: factor.transports === null ? null : [...factor.transports],
          createdAt: now(),
          lastUsedAt: null,
        };
        await insert(col.factors, doc, async (err) => {
          const hint = duplicateKeyHint(err);
          if (hintNames(hint, 'credentialId', 'credentialId_unique')) throw new StoreConflictError('credentialId');
          if (hint === '_id' || hint === '_id_') throw new StoreConflictError('id');
          const byId = await col.factors.countDocuments({ _id: doc._id }, { limit: 1 });
          throw new StoreConflictError(byId === 1 || credentialId === null ? 'id' : 'credentialId');
        });
        return factorDoc(doc);
      }),
    find: (id) =>
      run(async () => {
        const doc = await col.factors.findOne({ _id: str(id, 'id') });
        return doc ? factorDoc(doc) : undefined;
      }),
    listForPerson: (personId) =>
      run(async () =>
        (await col.factors.find({ personId: str(personId, 'personId') }).sort({ createdAt: 1, _id: 1 }).toArray()).map(factorDoc),
      ),
    findByCredentialId: (credentialId) =>
      run(async () => {
        const doc = await col.factors.findOne({ credentialId: str(credentialId, 'credentialId') });
        return doc ? factorDoc(doc) : undefined;
      }),
    confirm: (personId, id, at) =>
      write('factors', async () => {
        const result = await col.factors.updateOne(
          { _id: str(id, 'id'), personId: str(personId, 'personId') },
          { $set: { confirmed: true, lastUsedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    remove: (personId, id) =>
      write('factors', async () => {
        const result = await col.factors.deleteOne({ _id: str(id, 'id'), personId: str(personId, 'personId') });
        return result.deletedCount === 1;
      }),
    removeUnconfirmed: (personId, olderThan) =>
      write('factors', async () => {
        const result = await col.factors.deleteMany({
          personId: str(personId, 'personId'),
          confirmed: false,
          createdAt: { $lt: num(olderThan, 'olderThan') },
        });
        return result.deletedCount;
      }),
    // Replay guard: the filter admits only a step above the stored one, so of two parallel calls
    // with one step the second no longer matches.
    acceptTotpStep: (id, step, at) =>
      write('factors', async () => {
        const s = num(step, 'step');
        const result = await col.factors.updateOne(
          { _id: str(id, 'id'), $or: [{ lastStep: null }, { lastStep: { $lt: s } }] },
          { $set: { lastStep: s, lastUsedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    // Clone check: only a greater counter, or 0 over 0 (authenticators that do not count).
    updateSignCount: (id, signCount, at) =>
      write('factors', async () => {
        const n = num(signCount, 'signCount');
        const result = await col.factors.updateOne(
          { _id: str(id, 'id'), $or: [{ signCount: { $lt: n } }, ...(n === 0 ? [{ signCount: 0 }] : [])] },
          { $set: { signCount: n, lastUsedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
  };
}
