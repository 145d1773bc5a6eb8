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
  /** Copied from the payload (null when it has none): a person's records, a portal's records. */
  accountId?: string | null;
  clientId?: string | null;
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

/** The document of a record: lookup keys copied from the payload. */
function oidcRecord(model: string, id: string, payload: OidcPayload, expiresAt: number | null): OidcDoc {
  const m = str(model, 'model');
  const k = str(id, 'id');
  const { consumed, ...rest } = payload;
  const uid = optionalString(payload.uid);
  const userCode = optionalString(payload.userCode);
  return {
    _id: pairId(m, k),
    model: m,
    key: k,
    payload: JSON.stringify(rest),
    ...(uid !== null ? { uidKey: pairId(m, uid) } : {}),
    ...(userCode !== null ? { userCodeKey: pairId(m, userCode) } : {}),
    grantId: optionalString(payload.grantId),
    accountId: optionalString(payload.accountId),
    clientId: optionalString(payload.clientId),
    expiresAt,
    ...(expiresAt !== null ? { expireAt: new Date(expiresAt) } : {}),
    // A payload re-saved after consumption keeps its consumed mark.
    consumedAt: typeof consumed === 'number' ? Math.round(consumed * 1000) : null,
  };
}

/** Models as validated strings, for `$in`. */
const modelList = (models: readonly string[]) => models.map((m) => str(m, 'model'));

export function createMongoOidc({ db, now, run, write }: MongoContext): OidcModelStore {
  const col = { oidc: db.collection<OidcDoc>('oidc_models') };
  const expiry = (expiresInSeconds: number | undefined) => (expiresInSeconds === undefined ? null : now() + Math.round(num(expiresInSeconds, 'expiresIn') * 1000));

  return {
    upsert: (model, id, payload, expiresInSeconds) =>
      write('oidc_models', async () => {
        const doc = oidcRecord(model, id, payload, expiry(expiresInSeconds));
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
    // One conditional upsert: it matches only an expired record (replaced); with a live one in
    // place the upsert's insert meets the unique _id and fails — of concurrent calls, one inserts.
    insertIfAbsent: (model, id, payload, expiresInSeconds) =>
      write('oidc_models', async () => {
        const t = now();
        const { _id, ...fields } = oidcRecord(model, id, { ...payload, consumed: undefined }, expiry(expiresInSeconds));
        try {
          const result = await col.oidc.replaceOne({ _id, expiresAt: { $ne: null, $lte: t } }, fields, { upsert: true });
          return result.upsertedCount === 1 || result.modifiedCount === 1;
        } catch (err) {
          if (isDuplicateKey(err)) return false;
          throw err;
        }
      }),
    listByAccount: (model, accountId) =>
      run(async () => {
        const docs = await col.oidc.find({ accountId: str(accountId, 'accountId'), model: str(model, 'model'), ...liveAt(now()) }).sort({ key: 1 }).toArray();
        return docs.map((d) => ({ id: d.key, payload: oidcDoc(d)! }));
      }),
    destroyByAccount: (models, accountId, clientId) =>
      write('oidc_models', async () => {
        const filter = { accountId: str(accountId, 'accountId'), model: { $in: modelList(models) }, ...(clientId === undefined ? {} : { clientId: str(clientId, 'clientId') }) };
        return (await col.oidc.deleteMany(filter)).deletedCount;
      }),
    destroyByClient: (models, clientId) =>
      write('oidc_models', async () => (await col.oidc.deleteMany({ clientId: str(clientId, 'clientId'), model: { $in: modelList(models) } })).deletedCount),
  };
}
