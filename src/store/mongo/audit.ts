/**
 * The hash-chained audit log in `audit_log`. Optimistic chain append (replaces SQLite's IMMEDIATE
 * transaction): read the last entry, seal seq + 1 onto its hash, insert with _id = seq. The unique
 * _id lets exactly one of two concurrent appends take a seq; the other gets a duplicate key and
 * starts again from the new last entry, so no two entries share a seq or a previous hash and the
 * chain has no gaps. A seal that throws appends nothing.
 */
import { StoreUnavailableError, type AuditEntry, type AuditRepository } from '../types.js';
import { str, num, limitOf, insert, MAX_ATTEMPTS, type MongoContext } from './shared.js';

interface AuditDoc {
  /** The seq. */
  _id: number;
  at: number;
  event: string;
  eventId: number;
  /** JSON text. */
  details: string;
  prevHash: string;
  hash: string;
}

function auditDoc(doc: AuditDoc): AuditEntry {
  return {
    seq: doc._id,
    at: doc.at,
    event: doc.event,
    eventId: doc.eventId,
    details: JSON.parse(doc.details) as Record<string, unknown>,
    prevHash: doc.prevHash,
    hash: doc.hash,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The previous hash of the first audit entry. */
const AUDIT_GENESIS_HASH = '0'.repeat(64);

export function createMongoAudit({ db, run, write, where }: MongoContext): AuditRepository {
  const col = { audit: db.collection<AuditDoc>('audit_log') };

  return {
    append: (entry, seal) =>
      write('audit_log', async () => {
        const details = JSON.stringify(entry.details);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          const [last] = await col.audit.find({}, { projection: { _id: 1, hash: 1 } }).sort({ _id: -1 }).limit(1).toArray();
          const seq = last ? last._id + 1 : 1;
          const prevHash = last ? last.hash : AUDIT_GENESIS_HASH;
          const doc: AuditDoc = {
            _id: seq,
            at: num(entry.at, 'at'),
            event: str(entry.event, 'event'),
            eventId: num(entry.eventId, 'eventId'),
            details,
            prevHash,
            hash: str(seal(seq, prevHash), 'hash'),
          };
          const lost = await insert(col.audit, doc, () => true);
          if (!lost) return auditDoc(doc);
          // Someone else took this seq: back off a little (spreads a burst), then re-read the head.
          await sleep(Math.random() * Math.min(20, attempt + 1));
        }
        throw new StoreUnavailableError(`${where}: audit append made no progress under contention`);
      }),
    list: (afterSeq, limit) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        return (await col.audit.find({ _id: { $gt: num(afterSeq, 'afterSeq') } }).sort({ _id: 1 }).limit(n).toArray()).map(auditDoc);
      }),
    listSince: (since, afterSeq, limit) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const docs = await col.audit
          .find({ at: { $gte: num(since, 'since') }, _id: { $gt: num(afterSeq, 'afterSeq') } })
          .sort({ _id: 1 })
          .limit(n)
          .toArray();
        return docs.map(auditDoc);
      }),
    head: () =>
      run(async () => {
        const [last] = await col.audit.find({}).sort({ _id: -1 }).limit(1).toArray();
        return last ? auditDoc(last) : undefined;
      }),
  };
}
