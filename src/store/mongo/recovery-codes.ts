/**
 * Recovery codes in `recovery_codes`. One document per person holds the whole set (replaces the
 * SQLite transaction): replace is one replaceOne, consume one updateOne that matches only while the
 * hash is still unused and pulls it.
 */
import { StoreConflictError, type RecoveryCodeRepository } from '../types.js';
import { str, num, isDuplicateKey, type MongoContext } from './shared.js';

export interface RecoveryCodesDoc {
  /** The person id: one document holds the person's whole set, so replace and consume are single-document writes. */
  _id: string;
  createdAt: number;
  /** Hashes not used yet; consuming one pulls it from here. */
  unused: string[];
  /** Used hashes and when (kept with the set, dropped with it). */
  used: { hash: string; usedAt: number }[];
}

export function createMongoRecoveryCodes({ db, run, write }: MongoContext): RecoveryCodeRepository {
  const col = { recoveryCodes: db.collection<RecoveryCodesDoc>('recovery_codes') };

  return {
    replace: (personId, hashes, at) =>
      write('recovery_codes', async () => {
        const id = str(personId, 'personId');
        const set = hashes.map((h) => str(h, 'hash'));
        // All or nothing, as in SQLite: a repeated hash is refused and the old set stays.
        if (new Set(set).size !== set.length) throw new StoreConflictError('codeHash');
        if (set.length === 0) {
          await col.recoveryCodes.deleteOne({ _id: id });
          return;
        }
        const doc: RecoveryCodesDoc = { _id: id, createdAt: num(at, 'now'), unused: set, used: [] };
        for (let attempt = 0; ; attempt += 1) {
          try {
            await col.recoveryCodes.replaceOne({ _id: id }, doc, { upsert: true });
            return;
          } catch (err) {
            if (attempt === 0 && isDuplicateKey(err)) continue;
            throw err;
          }
        }
      }),
    consume: (personId, hash, at) =>
      write('recovery_codes', async () => {
        const h = str(hash, 'hash');
        const result = await col.recoveryCodes.updateOne(
          { _id: str(personId, 'personId'), unused: h },
          { $pull: { unused: h }, $push: { used: { hash: h, usedAt: num(at, 'now') } } },
        );
        return result.matchedCount === 1;
      }),
    countUnused: (personId) =>
      run(async () => {
        const doc = await col.recoveryCodes.findOne({ _id: str(personId, 'personId') }, { projection: { unused: 1 } });
        return doc?.unused.length ?? 0;
      }),
    createdAt: (personId) =>
      run(async () => {
        const doc = await col.recoveryCodes.findOne({ _id: str(personId, 'personId') }, { projection: { createdAt: 1 } });
        return doc?.createdAt;
      }),
    removeAll: (personId) =>
      write('recovery_codes', async () => {
        await col.recoveryCodes.deleteOne({ _id: str(personId, 'personId') });
      }),
  };
}
