/**
 * Portals (relying parties) in `portals`, keyed by client id; every change bumps `revision`.
 */
import { StoreConflictError, type Portal, type PortalRepository } from '../types.js';
import { str, num, limitOf, insert, type MongoContext } from './shared.js';

type PreviousSecret = NonNullable<Portal['previousSecret']>;

interface PortalDoc {
  _id: string;
  name: string;
  /** JSON text. */
  metadata: string;
  secretCiphertext: string | null;
  /** Absent on documents from before rotation existed, and null when none (read as null). */
  previousSecret?: PreviousSecret | null;
  sector: string;
  nationalId: boolean;
  nationalIdBasis: string | null;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
  /** Bumped by every change (absent: 0). */
  revision?: number;
}

/**
 * The previous secret with exactly its fields, checked: a fixed-shape subdocument built from
 * scalars, never a caller's object with fields of its own.
 */
export function cleanPreviousSecret(value: PreviousSecret): PreviousSecret {
  if (typeof value !== 'object' || value === null) throw new TypeError('the previous secret must be an object');
  return { ciphertext: str(value.ciphertext, 'previous secret ciphertext'), expiresAt: num(value.expiresAt, 'previous secret expiresAt') };
}

function portalDoc(doc: PortalDoc): Portal {
  return {
    clientId: doc._id,
    name: doc.name,
    metadata: JSON.parse(doc.metadata) as Record<string, unknown>,
    secretCiphertext: doc.secretCiphertext,
    previousSecret: doc.previousSecret ? cleanPreviousSecret(doc.previousSecret) : null,
    sector: doc.sector,
    nationalId: doc.nationalId,
    nationalIdBasis: doc.nationalIdBasis,
    disabled: doc.disabled,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

export function createMongoPortals({ db, now, run, write }: MongoContext): PortalRepository {
  const col = { portals: db.collection<PortalDoc>('portals') };

  return {
    create: (portal) =>
      write('portals', async () => {
        const t = now();
        const doc: PortalDoc = {
          _id: str(portal.clientId, 'clientId'),
          name: portal.name,
          metadata: JSON.stringify(portal.metadata),
          secretCiphertext: portal.secretCiphertext,
          sector: portal.sector,
          nationalId: portal.nationalId === true,
          nationalIdBasis: portal.nationalIdBasis,
          disabled: portal.disabled === true,
          createdAt: t,
          updatedAt: t,
        };
        await insert(col.portals, doc, () => {
          throw new StoreConflictError('clientId');
        });
        return portalDoc(doc);
      }),
    find: (clientId) =>
      run(async () => {
        const doc = await col.portals.findOne({ _id: str(clientId, 'clientId') });
        return doc ? portalDoc(doc) : undefined;
      }),
    list: () => run(async () => (await col.portals.find({}).sort({ createdAt: 1, _id: 1 }).toArray()).map(portalDoc)),
    // Strictly after the cursor in the order (createdAt, _id), served by the index createdAt_id.
    page: ({ after, limit }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const filter = after
          ? {
              $or: [
                { createdAt: { $gt: num(after.createdAt, 'after.createdAt') } },
                { createdAt: after.createdAt, _id: { $gt: str(after.clientId, 'after.clientId') } },
              ],
            }
          : {};
        return (await col.portals.find(filter).sort({ createdAt: 1, _id: 1 }).limit(n).toArray()).map(portalDoc);
      }),
    count: () => run(() => col.portals.countDocuments({})),
    revision: (clientId) =>
      run(async () => {
        const doc = await col.portals.findOne({ _id: str(clientId, 'clientId') }, { projection: { revision: 1 } });
        return doc ? (doc.revision ?? 0) : undefined;
      }),
    setDisabled: (clientId, disabled) =>
      write('portals', async () => {
        const result = await col.portals.updateOne(
          { _id: str(clientId, 'clientId') },
          { $set: { disabled: disabled === true, updatedAt: now() }, $inc: { revision: 1 } },
        );
        return result.matchedCount === 1;
      }),
    update: (clientId, changes) =>
      write('portals', async () => {
        const result = await col.portals.updateOne(
          { _id: str(clientId, 'clientId') },
          {
            $set: {
              name: changes.name,
              metadata: JSON.stringify(changes.metadata),
              secretCiphertext: changes.secretCiphertext,
              updatedAt: now(),
            },
            $inc: { revision: 1 },
          },
        );
        return result.matchedCount === 1;
      }),
    rotateSecret: (clientId, secretCiphertext, previous) =>
      write('portals', async () => {
        const result = await col.portals.updateOne(
          { _id: str(clientId, 'clientId') },
          {
            $set: {
              secretCiphertext: str(secretCiphertext, 'secretCiphertext'),
              previousSecret: previous === null ? null : cleanPreviousSecret(previous),
              updatedAt: now(),
            },
            $inc: { revision: 1 },
          },
        );
        return result.matchedCount === 1;
      }),
    updateMetadata: (clientId, metadata) =>
      write('portals', async () => {
        const result = await col.portals.updateOne(
          { _id: str(clientId, 'clientId') },
          { $set: { metadata: JSON.stringify(metadata), updatedAt: now() }, $inc: { revision: 1 } },
        );
        return result.matchedCount === 1;
      }),
    setNationalId: (clientId, legalBasis, metadata) =>
      write('portals', async () => {
        const result = await col.portals.updateOne(
          { _id: str(clientId, 'clientId') },
          {
            $set: {
              nationalId: legalBasis !== null,
              nationalIdBasis: legalBasis,
              metadata: JSON.stringify(metadata),
              updatedAt: now(),
            },
            $inc: { revision: 1 },
          },
        );
        return result.matchedCount === 1;
      }),
  };
}
