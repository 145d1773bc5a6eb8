/**
 * A person's own history in `activity`, keyed by the entry id, read by person and time through the
 * index { personId: 1, at: -1, _id: -1 }. Expired entries are never returned; `expireAt` (a Date)
 * lets a TTL index clean up where the server has one, and purgeExpired does it everywhere.
 */
import { StoreConflictError, type ActivityEntry, type ActivityRepository } from '../types.js';
import { str, num, limitOf, insert, type MongoContext } from './shared.js';

interface ActivityDoc {
  _id: string;
  personId: string;
  at: number;
  event: string;
  /** JSON text (free-form keys stay data: see migrations.ts). */
  details: string;
  expiresAt: number;
  expireAt: Date;
}

function activityDoc(doc: ActivityDoc): ActivityEntry {
  return {
    id: doc._id,
    personId: doc.personId,
    at: doc.at,
    event: doc.event,
    details: JSON.parse(doc.details) as ActivityEntry['details'],
    expiresAt: doc.expiresAt,
  };
}

export function createMongoActivity({ db, now, run, write }: MongoContext): ActivityRepository {
  const col = { activity: db.collection<ActivityDoc>('activity') };

  return {
    add: (entry) =>
      write('activity', async () => {
        const expiresAt = num(entry.expiresAt, 'expiresAt');
        const doc: ActivityDoc = {
          _id: str(entry.id, 'id'),
          personId: str(entry.personId, 'personId'),
          at: num(entry.at, 'at'),
          event: str(entry.event, 'event'),
          details: JSON.stringify(entry.details),
          expiresAt,
          expireAt: new Date(expiresAt),
        };
        await insert(col.activity, doc, () => {
          throw new StoreConflictError('id');
        });
      }),
    list: (personId, { since, before, limit }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const filter = {
          personId: str(personId, 'personId'),
          at: { $gte: num(since, 'since') },
          expiresAt: { $gt: now() },
          // Strictly after the cursor in the list's order (at, then id, descending).
          ...(before
            ? { $or: [{ at: { $lt: num(before.at, 'before.at') } }, { at: before.at, _id: { $lt: str(before.id, 'before.id') } }] }
            : {}),
        };
        const docs = await col.activity.find(filter).sort({ at: -1, _id: -1 }).limit(n).toArray();
        return docs.map(activityDoc);
      }),
    find: (personId, id) =>
      run(async () => {
        const doc = await col.activity.findOne({ _id: str(id, 'id'), personId: str(personId, 'personId'), expiresAt: { $gt: now() } });
        return doc ? activityDoc(doc) : undefined;
      }),
  };
}
