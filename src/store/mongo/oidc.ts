/**
 * The oidc-provider adapter models (Session, AccessToken, Grant, ...) in `oidc_models`. One document
 * per (model, id) with a deterministic _id; uid and user code lookups go through sparse unique keys
 * that carry the model. consume is one conditional updateOne.
 */
import { StoreConflictError, type OidcModelStore, type OidcPayload } from '../types.js';
import { str, num, pairId, liveAt, isDuplicateKey, type MongoContext } from './shared.js';

interface OidcDoc {
  /** JSON [model, id]. */
  _id: string;
  model: string;
  key: string;
  /** JSON text of the payload without `consumed`. */
  payload: string;
  /** JSON [model, uid]; absent when the payload has no uid (sparse unique index). */
  uidKey?: string;
  /** JSON [model, userCode]; absent when the payload has none (sparse unique index). */
  userCodeKey?: string;
  grantId: string | null;
  expiresAt: number | null;
  expireAt?: Date;
  consumedAt: number | null;
}

function oidcDoc(doc: OidcDoc | null): OidcPayload | undefined {
  if (!doc) return undefined;
  const payload = JSON.parse(doc.payload) as OidcPayload;
  // oidc-provider checks `payload.consumed` (epoch seconds) to detect code/token replay.
  if (doc.consumedAt !== null) payload.consumed = Math.floor(doc.consumedAt / 1000);
  return payload;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

export function createMongoOidc({ db, now, run, write }: MongoContext): OidcModelStore {
  const col = { oidc: db.collection<OidcDoc>('oidc_models') };

  return {
    upsert: (model, id, payload, expiresInSeconds) =>
      write('oidc_models', async () => {
        const m = str(model, 'model');
        const k = str(id, 'id');
        const { consumed, ...rest } = payload;
        const uid = optionalString(payload.uid);
        const userCode = optionalString(payload.userCode);
        const expiresAt = expiresInSeconds === undefined ? null : now() + Math.round(num(expiresInSeconds, 'expiresIn') * 1000);
        const doc: OidcDoc = {
          _id: pairId(m, k),
          model: m,
          key: k,
          payload: JSON.stringify(rest),
          ...(uid !== null ? { uidKey: pairId(m, uid) } : {}),
          ...(userCode !== null ? { userCodeKey: pairId(m, userCode) } : {}),
          grantId: optionalString(payload.grantId),
          expiresAt,
          ...(expiresAt !== null ? { expireAt: new Date(expiresAt) } : {}),
          // A payload re-saved after consumption keeps its consumed mark.
          consumedAt: typeof consumed === 'number' ? Math.round(consumed * 1000) : null,
        };
        for (let attempt = 0; ; attempt += 1) {
          try {
            // A replacement: lookup keys and expiry that the new payload lacks are gone.
            await col.oidc.replaceOne({ _id: doc._id }, doc, { upsert: true });
            return;
          } catch (err) {
            if (!isDuplicateKey(err)) throw err;
            // Two upserts of a new id raced (one inserted first): replace again, once.
            if (attempt === 0 && (await col.oidc.countDocuments({ _id: doc._id }, { limit: 1 })) === 1) continue;
            const uidTaken = doc.uidKey !== undefined && (await col.oidc.findOne({ uidKey: doc.uidKey, _id: { $ne: doc._id } }, { projection: { _id: 1 } }));
            throw new StoreConflictError(uidTaken ? 'uid' : 'userCode');
          }
        }
      }),
    find: (model, id) =>
      run(async () => oidcDoc(await col.oidc.findOne({ _id: pairId(str(model, 'model'), str(id, 'id')), ...liveAt(now()) }))),
    findByUid: (model, uid) =>
      run(async () => oidcDoc(await col.oidc.findOne({ uidKey: pairId(str(model, 'model'), str(uid, 'uid')), ...liveAt(now()) }))),
    findByUserCode: (model, userCode) =>
      run(async () =>
        oidcDoc(await col.oidc.findOne({ userCodeKey: pairId(str(model, 'model'), str(userCode, 'userCode')), ...liveAt(now()) })),
      ),
    consume: (model, id) =>
      write('oidc_models', async () => {
        const t = now();
        const result = await col.oidc.updateOne(
          { _id: pairId(str(model, 'model'), str(id, 'id')), consumedAt: null, ...liveAt(t) },
          { $set: { consumedAt: t } },
        );
        return result.matchedCount === 1;
      }),
    destroy: (model, id) =>
      write('oidc_models', async () => {
        await col.oidc.deleteOne({ _id: pairId(str(model, 'model'), str(id, 'id')) });
      }),
    revokeByGrantId: (model, grantId) =>
      write('oidc_models', async () => {
        await col.oidc.deleteMany({ model: str(model, 'model'), grantId: str(grantId, 'grantId') });
      }),
  };
}
