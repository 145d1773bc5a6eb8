/**
 * Signing keys in `signing_keys`. The key set's version is computed from the keys themselves — how
 * many there are plus how many are retired — rather than kept in a counter beside them: with no
 * multi-document transaction, a counter bumped after the key was written could be left behind by
 * a crash in between, and instances polling it would never see the new key. Keys are never
 * deleted and are retired once, so the sum only grows, and every add and every retire moves it.
 * (`signing_keys_version`, from the first schema, is no longer read.)
 */
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

export function createMongoSigningKeys({ db, run, write }: MongoContext): SigningKeyRepository {
  const col = { signingKeys: db.collection<SigningKeyDoc>('signing_keys') };

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
      }),
    list: () => run(async () => (await col.signingKeys.find({}).sort({ activateAt: 1, _id: 1 }).toArray()).map(signingKeyDoc)),
    retire: (kid, at) =>
      write('signing_keys', async () => {
        const result = await col.signingKeys.updateOne(
          { _id: str(kid, 'kid'), retiredAt: null },
          { $set: { retiredAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    version: () =>
      run(async () => {
        const [keys, retired] = await Promise.all([col.signingKeys.countDocuments({}), col.signingKeys.countDocuments({ retiredAt: { $ne: null } })]);
        return keys + retired;
      }),
  };
}
