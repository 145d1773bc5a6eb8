/**
 * Signing keys in `signing_keys`, and the key set's version in `signing_keys_version`. The key and
 * the version counter are two documents; with no transaction, the counter is bumped ($inc) after
 * each add/retire that succeeded. A reader that reads version() before list() never caches a new
 * key set under an old version for longer than until its next poll.
 */
import type { Db } from 'mongodb';
import { StoreConflictError, type SigningKeyRecord, type SigningKeyRepository } from '../types.js';
import { str, num, insert, type MongoContext } from './shared.js';

interface SigningKeyDoc {
  _id: string;
  alg: string;
  /** JSON text. */
  publicJwk: string;
  privateJwkSealed: string;
  origin: string;
  createdAt: number;
  activateAt: number;
  retiredAt: number | null;
}

interface VersionDoc {
  _id: number;
  version: number;
}

function signingKeyDoc(doc: SigningKeyDoc): SigningKeyRecord {
  return {
    kid: doc._id,
    alg: doc.alg,
    publicJwk: JSON.parse(doc.publicJwk) as Record<string, unknown>,
    privateJwkSealed: doc.privateJwkSealed,
    origin: doc.origin,
    createdAt: doc.createdAt,
    activateAt: doc.activateAt,
    retiredAt: doc.retiredAt,
  };
}

/** Moves the key set's version on, after a change of the set that succeeded. */
export async function bumpSigningKeysVersion(db: Db): Promise<void> {
  await db.collection<VersionDoc>('signing_keys_version').updateOne({ _id: 1 }, { $inc: { version: 1 } }, { upsert: true });
}

export function createMongoSigningKeys({ db, run, write }: MongoContext): SigningKeyRepository {
  const col = {
    signingKeys: db.collection<SigningKeyDoc>('signing_keys'),
    signingKeysVersion: db.collection<VersionDoc>('signing_keys_version'),
  };

  return {
    add: (key) =>
      write('signing_keys', async () => {
        const doc: SigningKeyDoc = {
          _id: str(key.kid, 'kid'),
          alg: key.alg,
          publicJwk: JSON.stringify(key.publicJwk),
          privateJwkSealed: key.privateJwkSealed,
          origin: key.origin,
          createdAt: num(key.createdAt, 'createdAt'),
          activateAt: num(key.activateAt, 'activateAt'),
          retiredAt: key.retiredAt === null ? null : num(key.retiredAt, 'retiredAt'),
        };
        await insert(col.signingKeys, doc, () => {
          throw new StoreConflictError('kid');
        });
        await bumpSigningKeysVersion(db);
      }),
    list: () => run(async () => (await col.signingKeys.find({}).sort({ activateAt: 1, _id: 1 }).toArray()).map(signingKeyDoc)),
    retire: (kid, at) =>
      write('signing_keys', async () => {
        const result = await col.signingKeys.updateOne(
          { _id: str(kid, 'kid'), retiredAt: null },
          { $set: { retiredAt: num(at, 'now') } },
        );
        if (result.matchedCount !== 1) return false;
        await bumpSigningKeysVersion(db);
        return true;
      }),
    version: () => run(async () => (await col.signingKeysVersion.findOne({ _id: 1 }))?.version ?? 0),
  };
}
