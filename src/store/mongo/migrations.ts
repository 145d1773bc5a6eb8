import type { AnyBulkWriteOperation, Db, IndexSpecification } from 'mongodb';
import { AUDIT_SEARCH_KEYS, auditSearchFields } from './audit.js';

/**
 * MongoDB schema migrations: collections and indexes, created by `migrate()` only (never at request
 * time). Never edit an applied migration; append a new one.
 *
 * Documents keep the interface's shapes: times are epoch-ms numbers; free-form JSON (oidc payloads,
 * portal metadata, job payloads, audit and activity details, evidence, JWKs, addresses) is stored
 * as JSON text, as in the SQLite backend, so keys such as `$where` or `a.b` are data and never field
 * paths, and the round trip is exact. Values of a fixed shape (a person's contacts, its attention
 * flag) are subdocuments built field by field from checked scalars. Expiring records also carry `expireAt` (a BSON Date) for TTL indexes,
 * which are clean-up only: every read checks `expiresAt > now` itself.
 */

export interface MongoIndex {
  key: IndexSpecification;
  name: string;
  unique?: boolean;
  /** Only documents that have the field are indexed (optional unique keys such as credentialId). */
  sparse?: boolean;
  /** A TTL index (clean-up only). Skipped, and recorded as skipped, on servers without TTL support. */
  expireAfterSeconds?: number;
}

export interface MongoCollectionSpec {
  name: string;
  indexes: MongoIndex[];
}

export interface MongoMigration {
  version: number;
  name: string;
  collections: MongoCollectionSpec[];
  /** Seed documents, inserted once (a duplicate key means already there). */
  seed?: { collection: string; documents: Record<string, unknown>[] }[];
  /** Fills new fields of existing documents; idempotent (a crash before the version is recorded runs it again). */
  backfill?: (db: Db) => Promise<void>;
}

const ttl = (name: string): MongoIndex => ({ key: { expireAt: 1 }, name, expireAfterSeconds: 0 });

export const mongoMigrations: readonly MongoMigration[] = [
  {
    version: 1,
    name: 'initial schema (persons, portals, consents, counters, oidc, factors, recovery codes, jobs, orgs, signing keys, audit log, account evidence)',
    collections: [
      {
        // _id: JSON [model, id]; uidKey / userCodeKey: JSON [model, value], present only when set.
        name: 'oidc_models',
        indexes: [
          { key: { uidKey: 1 }, name: 'uidKey_unique', unique: true, sparse: true },
          { key: { userCodeKey: 1 }, name: 'userCodeKey_unique', unique: true, sparse: true },
          { key: { model: 1, grantId: 1 }, name: 'model_grantId' },
          { key: { expiresAt: 1 }, name: 'expiresAt' },
          ttl('expireAt_ttl'),
        ],
      },
      {
        // _id: the person id.
        name: 'persons',
        indexes: [
          { key: { pid: 1 }, name: 'pid_unique', unique: true },
          { key: { createdAt: 1, _id: 1 }, name: 'createdAt_id' },
        ],
      },
      // _id: the client id.
      { name: 'portals', indexes: [{ key: { createdAt: 1, _id: 1 }, name: 'createdAt_id' }] },
      {
        // _id: JSON [personId, clientId].
        name: 'consents',
        indexes: [{ key: { personId: 1, createdAt: 1, clientId: 1 }, name: 'personId_createdAt' }],
      },
      {
        // _id: the counter key.
        name: 'counters',
        indexes: [{ key: { expiresAt: 1 }, name: 'expiresAt' }, ttl('expireAt_ttl')],
      },
      {
        // _id: the factor id; credentialId is absent (not null) for factors without one.
        name: 'factors',
        indexes: [
          { key: { credentialId: 1 }, name: 'credentialId_unique', unique: true, sparse: true },
          { key: { personId: 1, createdAt: 1, _id: 1 }, name: 'personId_createdAt' },
        ],
      },
      // _id: the person id; one document holds the person's whole current set.
      { name: 'recovery_codes', indexes: [] },
      {
        // _id: the job id.
        name: 'jobs',
        indexes: [
          { key: { kind: 1, status: 1, dueAt: 1, _id: 1 }, name: 'kind_status_due' },
          { key: { kind: 1, createdAt: -1, _id: -1 }, name: 'kind_createdAt' },
          { key: { expiresAt: 1 }, name: 'expiresAt' },
          ttl('expireAt_ttl'),
        ],
      },
      // _id: the enterprise code.
      { name: 'enterprises', indexes: [{ key: { parentCode: 1, _id: 1 }, name: 'parentCode_code' }] },
      {
        // _id: JSON [enterpriseCode, personId].
        name: 'org_representatives',
        indexes: [
          { key: { enterpriseCode: 1, createdAt: 1, personId: 1 }, name: 'enterprise_createdAt' },
          { key: { personId: 1, enterpriseCode: 1 }, name: 'personId_enterprise' },
        ],
      },
      {
        // _id: JSON [enterpriseCode, personId].
        name: 'delegations',
        indexes: [
          { key: { enterpriseCode: 1, createdAt: 1, personId: 1 }, name: 'enterprise_createdAt' },
          { key: { personId: 1, enterpriseCode: 1 }, name: 'personId_enterprise' },
        ],
      },
      {
        // _id: the grant id.
        name: 'org_grants',
        indexes: [
          { key: { enterpriseCode: 1, personId: 1 }, name: 'enterprise_person' },
          { key: { expiresAt: 1 }, name: 'expiresAt' },
          ttl('expireAt_ttl'),
        ],
      },
      // _id: the kid.
      { name: 'signing_keys', indexes: [{ key: { activateAt: 1, _id: 1 }, name: 'activateAt_kid' }] },
      // One document, _id 1: bumped after every add/retire so instances notice a rotation cheaply.
      { name: 'signing_keys_version', indexes: [] },
      // _id: seq (1, 2, 3, …): the unique _id is what keeps two appends from sharing a seq.
      { name: 'audit_log', indexes: [{ key: { at: 1 }, name: 'at' }] },
      // _id: the record id.
      { name: 'account_evidence', indexes: [{ key: { personId: 1, createdAt: 1, _id: 1 }, name: 'personId_createdAt' }] },
    ],
    seed: [{ collection: 'signing_keys_version', documents: [{ _id: 1, version: 0 }] }],
  },
  {
    version: 2,
    name: 'oidc records by account and client',
    collections: [
      {
        name: 'oidc_models',
        indexes: [
          { key: { accountId: 1, model: 1 }, name: 'accountId_model' },
          { key: { clientId: 1, model: 1 }, name: 'clientId_model' },
        ],
      },
    ],
    // Records written before: their accountId and clientId come out of the payload (JSON text).
    async backfill(db) {
      const col = db.collection<{ _id: string; payload: string; accountId?: unknown }>('oidc_models');
      for await (const doc of col.find({ accountId: { $exists: false } }, { projection: { _id: 1, payload: 1 } })) {
        let payload: Record<string, unknown> = {};
        try {
          payload = JSON.parse(doc.payload) as Record<string, unknown>;
        } catch {
          // not JSON: nothing to copy
        }
        const pick = (v: unknown) => (typeof v === 'string' ? v : null);
        await col.updateOne({ _id: doc._id }, { $set: { accountId: pick(payload.accountId), clientId: pick(payload.clientId) } });
      }
    },
  },
  {
    version: 3,
    // Persons gain contacts, contactsRev, noticeContact, lockReason, passwordResetRequired and
    // attention. No backfill: a document without them reads as before (persons.ts), its list made
    // from its phone and email until the first change, which finds a missing revision as 0.
    name: 'activity; persons contact lists and flags',
    collections: [
      {
        // _id: the entry id.
        name: 'activity',
        indexes: [
          { key: { personId: 1, at: -1, _id: -1 }, name: 'personId_at_id' },
          { key: { expiresAt: 1 }, name: 'expiresAt' },
          ttl('expireAt_ttl'),
        ],
      },
    ],
  },
  {
    version: 4,
    // Persons' lockReason may now be 'fraud': a value, no schema change (persons.ts checks it).
    // Portals' previousSecret needs nothing either: a document without it has none (portals.ts).
    name: 'operators, approvals, audit search',
    collections: [
      // _id: the person id.
      { name: 'operators', indexes: [{ key: { addedAt: 1, _id: 1 }, name: 'addedAt_id' }] },
      {
        // _id: the approval id.
        name: 'approvals',
        indexes: [
          { key: { createdAt: -1, _id: -1 }, name: 'createdAt_id' },
          { key: { status: 1, createdAt: -1, _id: -1 }, name: 'status_createdAt_id' },
          { key: { action: 1, subject: 1, status: 1, expiresAt: 1 }, name: 'action_subject_pending' },
        ],
      },
      {
        // The operators' search, newest first (_id is the seq): by event, by a detail (copied to
        // top-level person/portal/operator, present only when a string: audit.ts), by time.
        name: 'audit_log',
        indexes: [
          { key: { event: 1, _id: 1 }, name: 'event_id' },
          { key: { event: 1, at: 1 }, name: 'event_at' },
          { key: { person: 1, _id: 1 }, name: 'person_id' },
          { key: { portal: 1, _id: 1 }, name: 'portal_id' },
          { key: { operator: 1, _id: 1 }, name: 'operator_id' },
        ],
      },
    ],
    // Entries written before: their searchable copies come out of the details (JSON text), as in
    // migration 2. Idempotent: a rerun finds each value again from the same text.
    async backfill(db) {
      type Entry = { _id: number; details: string } & Partial<Record<(typeof AUDIT_SEARCH_KEYS)[number], string>>;
      const col = db.collection<Entry>('audit_log');
      const missing = Object.fromEntries(AUDIT_SEARCH_KEYS.map((key) => [key, { $exists: false }]));
      let batch: AnyBulkWriteOperation<Entry>[] = [];
      const flush = async (): Promise<void> => {
        if (batch.length > 0) await col.bulkWrite(batch, { ordered: false });
        batch = [];
      };
      for await (const doc of col.find(missing, { projection: { _id: 1, details: 1 } })) {
        let details: unknown = null;
        try {
          details = JSON.parse(doc.details);
        } catch {
          // not JSON: nothing to copy
        }
        const fields = auditSearchFields(details);
        if (Object.keys(fields).length === 0) continue;
        batch.push({ updateOne: { filter: { _id: doc._id }, update: { $set: fields } } });
        if (batch.length >= 500) await flush();
      }
      await flush();
    },
  },
  {
    version: 5,
    // Usage statistics (usage.ts). _id: JSON [day, portal, key] / [day, portal, tag], so an upsert
    // on it is the atomic addition; the unique indexes restate that key in the order reads use it.
    name: 'usage statistics',
    collections: [
      {
        name: 'usage_counts',
        indexes: [
          { key: { day: 1, portal: 1, key: 1 }, name: 'day_portal_key_unique', unique: true },
          { key: { portal: 1, day: 1 }, name: 'portal_day' },
        ],
      },
      { name: 'usage_tags', indexes: [{ key: { day: 1, portal: 1, tag: 1 }, name: 'day_portal_tag_unique', unique: true }] },
    ],
  },
  {
    version: 6,
    // The sums over portals of the console's all-portals charts (usage.ts: sums): some keys of a
    // period's days whatever the portal. day_portal_key_unique has the portal between day and key,
    // so only the day would bound its scan; here the key range bounds it within each day.
    name: 'usage sums by day and key',
    collections: [{ name: 'usage_counts', indexes: [{ key: { day: 1, key: 1 }, name: 'day_key' }] }],
  },
  {
    version: 7,
    // Security event streams (ssf.ts): one per portal; a stream's line of undelivered events by seq,
    // and the purge by expiry.
    name: 'security event streams and their events',
    collections: [
      { name: 'ssf_streams', indexes: [{ key: { clientId: 1 }, name: 'client_unique', unique: true }] },
      {
        name: 'ssf_events',
        indexes: [
          { key: { streamId: 1, deliveredAt: 1, failed: 1, seq: 1 }, name: 'stream_line' },
          { key: { expiresAt: 1 }, name: 'expires' },
        ],
      },
      { name: 'ssf_sequence', indexes: [] },
    ],
  },
];

/** Where applied migrations are recorded: `{ _id: version, name, appliedAt, skipped }`. */
export const MIGRATIONS_COLLECTION = 'schema_migrations';

export interface AppliedMigration {
  _id: number;
  name: string;
  appliedAt: Date;
  /** Indexes the server could not create (TTL on servers without it); purgeExpired does their work. */
  skipped: string[];
}

function errorCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/** NamespaceExists: a concurrent or earlier migrate created it. */
const NAMESPACE_EXISTS = 48;
/** NotImplemented (FerretDB 1.x answers this for `expireAfterSeconds`). */
const NOT_IMPLEMENTED = 238;
const DUPLICATE_KEY = 11000;

/**
 * Applies pending migrations in order. Every step is idempotent (create a collection or an index
 * that may exist, insert a seed that may exist), so two processes migrating at once do no harm; the
 * record of a version is written last, once its steps succeeded.
 */
export async function migrateMongo(db: Db): Promise<void> {
  const applied = db.collection<AppliedMigration>(MIGRATIONS_COLLECTION);
  const existing = new Set<string>((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));

  for (const migration of [...mongoMigrations].sort((a, b) => a.version - b.version)) {
    if (await applied.findOne({ _id: migration.version })) continue;
    const skipped: string[] = [];
    for (const spec of migration.collections) {
      if (!existing.has(spec.name)) {
        try {
          await db.createCollection(spec.name);
        } catch (err) {
          if (errorCode(err) !== NAMESPACE_EXISTS) throw err;
        }
        existing.add(spec.name);
      }
      const collection = db.collection(spec.name);
      for (const index of spec.indexes) {
        const options = {
          name: index.name,
          ...(index.unique ? { unique: true } : {}),
          ...(index.sparse ? { sparse: true } : {}),
          ...(index.expireAfterSeconds !== undefined ? { expireAfterSeconds: index.expireAfterSeconds } : {}),
        };
        try {
          await collection.createIndex(index.key, options);
        } catch (err) {
          // TTL is clean-up only (reads check expiry, purgeExpired deletes): a server without it
          // (FerretDB 1.x) still gives a correct store.
          if (index.expireAfterSeconds !== undefined && errorCode(err) === NOT_IMPLEMENTED) {
            skipped.push(`${spec.name}.${index.name}`);
            continue;
          }
          throw err;
        }
      }
    }
    for (const seed of migration.seed ?? []) {
      for (const document of seed.documents) {
        try {
          await db.collection(seed.collection).insertOne({ ...document });
        } catch (err) {
          if (errorCode(err) !== DUPLICATE_KEY) throw err;
        }
      }
    }
    await migration.backfill?.(db);
    try {
      await applied.insertOne({ _id: migration.version, name: migration.name, appliedAt: new Date(), skipped });
    } catch (err) {
      if (errorCode(err) !== DUPLICATE_KEY) throw err;
    }
  }
}
