/**
 * The hash-chained audit log in `audit_log`. Optimistic chain append (replaces SQLite's IMMEDIATE
 * transaction): read the last entry, seal seq + 1 onto its hash, insert with _id = seq. The unique
 * _id lets exactly one of two concurrent appends take a seq; the other gets a duplicate key and
 * starts again from the new last entry, so no two entries share a seq or a previous hash and the
 * chain has no gaps. A seal that throws appends nothing.
 */
import type { Filter } from 'mongodb';
import { StoreUnavailableError, type AuditEntry, type AuditFilter, type AuditRepository } from '../types.js';
import { str, num, limitOf, insert, MAX_ATTEMPTS, type MongoContext } from './shared.js';

/** The details searched by value, copied to top-level fields (details are JSON text: migrations.ts). */
export const AUDIT_SEARCH_KEYS = ['person', 'portal', 'operator'] as const;
type SearchKey = (typeof AUDIT_SEARCH_KEYS)[number];

interface AuditDoc extends Partial<Record<SearchKey, string>> {
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

/**
 * The searchable copies of a details object: each of person, portal, operator whose value is a
 * string, absent otherwise (a number, a list or an object is not matched by a search). Written at
 * append, by store copy, and by migration 4 for entries from before.
 */
export function auditSearchFields(details: unknown): Partial<Record<SearchKey, string>> {
  const out: Partial<Record<SearchKey, string>> = {};
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return out;
  for (const key of AUDIT_SEARCH_KEYS) {
    const value = (details as Record<string, unknown>)[key];
    if (typeof value === 'string') out[key] = value;
  }
  return out;
}

/** The filter of a search, built from checked scalars only; each field has an index with _id (migration 4). */
function searchFilter(filter: AuditFilter & { beforeSeq?: number }): Filter<AuditDoc> {
  const out: Filter<AuditDoc> = {};
  if (filter.event !== undefined) out.event = str(filter.event, 'event');
  for (const key of AUDIT_SEARCH_KEYS) if (filter[key] !== undefined) out[key] = str(filter[key], key);
  if (filter.from !== undefined || filter.to !== undefined) {
    out.at = {
      ...(filter.from !== undefined ? { $gte: num(filter.from, 'from') } : {}),
      ...(filter.to !== undefined ? { $lt: num(filter.to, 'to') } : {}),
    };
  }
  if (filter.beforeSeq !== undefined) out._id = { $lt: num(filter.beforeSeq, 'beforeSeq') };
  return out;
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
        const searchable = auditSearchFields(entry.details);
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
            ...searchable,
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
    search: (filter) =>
      run(async () => {
        const query = searchFilter(filter);
        const n = limitOf(filter.limit);
        if (n < 1) return [];
        return (await col.audit.find(query).sort({ _id: -1 }).limit(n).toArray()).map(auditDoc);
      }),
    count: ({ event, person, portal, operator, from, to }) =>
      run(() => col.audit.countDocuments(searchFilter({ event, person, portal, operator, from, to }))),
    head: () =>
      run(async () => {
        const [last] = await col.audit.find({}).sort({ _id: -1 }).limit(1).toArray();
        return last ? auditDoc(last) : undefined;
      }),
  };
}
