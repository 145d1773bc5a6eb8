/**
 * Remembered consents in `consents`, one document per (person, portal).
 */
import type { Consent, ConsentRepository } from '../types.js';
import { str, pairId, isDuplicateKey, type MongoContext } from './shared.js';

interface ConsentDoc {
  /** JSON [personId, clientId]. */
  _id: string;
  personId: string;
  clientId: string;
  scopes: string[];
  claims: string[];
  createdAt: number;
  updatedAt: number;
}

function consentDoc(doc: ConsentDoc): Consent {
  return {
    personId: doc.personId,
    clientId: doc.clientId,
    scopes: [...doc.scopes],
    claims: [...doc.claims],
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

export function createMongoConsents({ db, now, run, write }: MongoContext): ConsentRepository {
  const col = { consents: db.collection<ConsentDoc>('consents') };

  return {
    // One upsert: createdAt only on insert, scopes/claims/updatedAt always.
    put: (consent) =>
      write('consents', async () => {
        const personId = str(consent.personId, 'personId');
        const clientId = str(consent.clientId, 'clientId');
        const t = now();
        for (let attempt = 0; ; attempt += 1) {
          try {
            const doc = await col.consents.findOneAndUpdate(
              { _id: pairId(personId, clientId) },
              {
                $set: { scopes: [...consent.scopes], claims: [...consent.claims], updatedAt: t },
                $setOnInsert: { personId, clientId, createdAt: t },
              },
              { upsert: true, returnDocument: 'after' },
            );
            if (!doc) throw new Error('upsert returned no document');
            return consentDoc(doc);
          } catch (err) {
            // Two first puts raced and the other inserted: update it instead.
            if (attempt === 0 && isDuplicateKey(err)) continue;
            throw err;
          }
        }
      }),
    find: (personId, clientId) =>
      run(async () => {
        const doc = await col.consents.findOne({ _id: pairId(str(personId, 'personId'), str(clientId, 'clientId')) });
        return doc ? consentDoc(doc) : undefined;
      }),
    listForPerson: (personId) =>
      run(async () =>
        (await col.consents.find({ personId: str(personId, 'personId') }).sort({ createdAt: 1, clientId: 1 }).toArray()).map(consentDoc),
      ),
    remove: (personId, clientId) =>
      write('consents', async () => {
        const result = await col.consents.deleteOne({ _id: pairId(str(personId, 'personId'), str(clientId, 'clientId')) });
        return result.deletedCount === 1;
      }),
  };
}
