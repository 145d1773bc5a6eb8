/**
 * `store copy` for MongoDB: every collection as backend-neutral records (types.ts, StoreCopy) and
 * back. The neutral form is the SQLite backend's (camelCase columns, JSON columns as values), so a
 * copy either way verifies by count and checksum.
 */
import type { AnyBulkWriteOperation, Collection, Db, Document, Sort } from 'mongodb';
import type { Approval, AttentionFlag, Contact, CopyCollection, Portal, StoreCopy } from '../types.js';
import { LOCK_REASONS, checkRoles, isLockReason } from '../values.js';
import { approvalDoc, approvalToDoc, type ApprovalDoc } from './approvals.js';
import { auditSearchFields } from './audit.js';
import { cleanAttention, cleanContact, readLockReason } from './persons.js';
import { cleanPreviousSecret } from './portals.js';
import type { RecoveryCodesDoc } from './recovery-codes.js';
import { pairId } from './shared.js';
import { USAGE_COUNTS, USAGE_TAGS, usageId } from './usage.js';

type Neutral = Record<string, unknown>;
type PreviousSecret = NonNullable<Portal['previousSecret']>;

/** How one neutral collection maps onto documents. */
interface CopySpec {
  collection: string;
  /** Export order (the neutral key). */
  sort: Sort;
  toNeutral(doc: Document): Neutral[];
  toDocument(record: Neutral): Document;
}

function str(record: Neutral, field: string): string {
  const value = record[field];
  if (typeof value !== 'string') throw new TypeError(`store copy: ${field} must be a string`);
  return value;
}

function optStr(record: Neutral, field: string): string | null {
  const value = record[field] ?? null;
  if (value !== null && typeof value !== 'string') throw new TypeError(`store copy: ${field} must be a string or null`);
  return value;
}

function num(record: Neutral, field: string): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`store copy: ${field} must be a number`);
  return value;
}

function optNum(record: Neutral, field: string): number | null {
  const value = record[field] ?? null;
  if (value !== null && (typeof value !== 'number' || !Number.isFinite(value))) {
    throw new TypeError(`store copy: ${field} must be a number or null`);
  }
  return value;
}

function strings(record: Neutral, field: string): string[] {
  const value = record[field];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new TypeError(`store copy: ${field} must be a list of strings`);
  return [...(value as string[])];
}

function optStrings(record: Neutral, field: string): string[] | null {
  return (record[field] ?? null) === null ? null : strings(record, field);
}

/** A contact list (each contact checked field by field), or null when the record has none stored. */
function optContacts(record: Neutral, field: string): Contact[] | null {
  const value = record[field] ?? null;
  if (value === null) return null;
  if (!Array.isArray(value)) throw new TypeError(`store copy: ${field} must be a list of contacts or null`);
  return (value as Contact[]).map(cleanContact);
}

function optLockReason(record: Neutral): string | null {
  const value = optStr(record, 'lockReason');
  if (value !== null && !isLockReason(value)) throw new TypeError(`store copy: lockReason must be one of ${LOCK_REASONS.join(', ')}, or null`);
  return value;
}

const json = (value: unknown): string => JSON.stringify(value ?? null);
const parsed = (text: unknown): unknown => (typeof text === 'string' ? JSON.parse(text) : null);
const nullable = (value: unknown): unknown => (value === undefined ? null : value);
const expireAt = (expiresAt: number | null): Document => (expiresAt === null ? {} : { expireAt: new Date(expiresAt) });

/** A string field of a record's payload (an object), or null. */
function payloadString(r: Record<string, unknown>, field: string): string | null {
  const payload = r.payload;
  const v = payload && typeof payload === 'object' ? (payload as Record<string, unknown>)[field] : undefined;
  return typeof v === 'string' ? v : null;
}

/** The second string of a pair key (uidKey, userCodeKey), or null. */
function secondOf(key: unknown): string | null {
  if (typeof key !== 'string') return null;
  const pair = JSON.parse(key) as unknown;
  return Array.isArray(pair) && typeof pair[1] === 'string' ? pair[1] : null;
}

/** A usage record's day, checked (it becomes part of the `_id`). */
function usageDay(record: Neutral): string {
  const value = str(record, 'day');
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new TypeError('store copy: day of a usage record must be a date YYYY-MM-DD');
  return value;
}

function usageCount(record: Neutral): number {
  const value = num(record, 'n');
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError('store copy: n of a usage record must be a whole number');
  return value;
}

const SPECS: Record<Exclude<CopyCollection, 'recoveryCodes'>, CopySpec> = {
  persons: {
    collection: 'persons',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      id: d._id, pid: d.pid, name: d.name, familyName: d.familyName, givenName: d.givenName, birthdate: d.birthdate,
      gender: d.gender, email: nullable(d.email), emailVerified: d.emailVerified === true, phone: nullable(d.phone),
      phoneVerified: d.phoneVerified === true, address: parsed(d.address), level: d.level, passwordHash: d.passwordHash,
      status: d.status, accessRevokedBefore: nullable(d.accessRevokedBefore),
      // null: the list was never stored (a document from before lists existed), kept as it is.
      contacts: Array.isArray(d.contacts) ? (d.contacts as Contact[]).map(cleanContact) : null,
      contactsRev: typeof d.contactsRev === 'number' ? d.contactsRev : 0, noticeContact: nullable(d.noticeContact),
      lockReason: readLockReason(d.lockReason), passwordResetRequired: d.passwordResetRequired === true,
      attention: d.attention ? cleanAttention(d.attention as AttentionFlag) : null,
      createdAt: d.createdAt, updatedAt: d.updatedAt,
    }],
    toDocument: (r) => ({
      _id: str(r, 'id'), pid: str(r, 'pid'), name: str(r, 'name'), familyName: str(r, 'familyName'), givenName: str(r, 'givenName'),
      birthdate: str(r, 'birthdate'), gender: str(r, 'gender'), email: optStr(r, 'email'), emailVerified: r.emailVerified === true,
      phone: optStr(r, 'phone'), phoneVerified: r.phoneVerified === true,
      address: (r.address ?? null) === null ? null : json(r.address), level: num(r, 'level'), passwordHash: str(r, 'passwordHash'),
      status: str(r, 'status'), accessRevokedBefore: optNum(r, 'accessRevokedBefore'),
      contacts: optContacts(r, 'contacts'), contactsRev: r.contactsRev === undefined ? 0 : num(r, 'contactsRev'),
      noticeContact: optStr(r, 'noticeContact'), lockReason: optLockReason(r), passwordResetRequired: r.passwordResetRequired === true,
      attention: (r.attention ?? null) === null ? null : cleanAttention(r.attention as AttentionFlag),
      createdAt: num(r, 'createdAt'), updatedAt: num(r, 'updatedAt'),
    }),
  },
  portals: {
    collection: 'portals',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      clientId: d._id, name: d.name, metadata: parsed(d.metadata), secretCiphertext: nullable(d.secretCiphertext),
      previousSecret: d.previousSecret ? cleanPreviousSecret(d.previousSecret as PreviousSecret) : null, sector: d.sector,
      nationalId: d.nationalId === true, nationalIdBasis: nullable(d.nationalIdBasis), disabled: d.disabled === true,
      createdAt: d.createdAt, updatedAt: d.updatedAt, revision: d.revision ?? 0,
    }],
    toDocument: (r) => ({
      _id: str(r, 'clientId'), name: str(r, 'name'), metadata: json(r.metadata), secretCiphertext: optStr(r, 'secretCiphertext'),
      // Records exported before rotation existed have none.
      previousSecret: (r.previousSecret ?? null) === null ? null : cleanPreviousSecret(r.previousSecret as PreviousSecret),
      sector: str(r, 'sector'), nationalId: r.nationalId === true, nationalIdBasis: optStr(r, 'nationalIdBasis'),
      disabled: r.disabled === true, createdAt: num(r, 'createdAt'), updatedAt: num(r, 'updatedAt'), revision: r.revision === undefined ? 0 : num(r, 'revision'),
    }),
  },
  consents: {
    collection: 'consents',
    sort: { personId: 1, clientId: 1 },
    toNeutral: (d) => [{
      personId: d.personId, clientId: d.clientId, scopes: d.scopes, claims: d.claims, createdAt: d.createdAt, updatedAt: d.updatedAt,
    }],
    toDocument: (r) => ({
      _id: pairId(str(r, 'personId'), str(r, 'clientId')), personId: str(r, 'personId'), clientId: str(r, 'clientId'),
      scopes: strings(r, 'scopes'), claims: strings(r, 'claims'), createdAt: num(r, 'createdAt'), updatedAt: num(r, 'updatedAt'),
    }),
  },
  counters: {
    collection: 'counters',
    sort: { _id: 1 },
    toNeutral: (d) => [{ key: d._id, count: d.count, updatedAt: d.updatedAt, expiresAt: d.expiresAt }],
    toDocument: (r) => ({
      _id: str(r, 'key'), count: num(r, 'count'), updatedAt: num(r, 'updatedAt'), expiresAt: num(r, 'expiresAt'),
      expireAt: new Date(num(r, 'expiresAt')),
    }),
  },
  factors: {
    collection: 'factors',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      id: d._id, personId: d.personId, type: d.type, label: d.label, confirmed: d.confirmed === true,
      secretCiphertext: nullable(d.secretCiphertext), lastStep: nullable(d.lastStep), credentialId: nullable(d.credentialId),
      publicKey: nullable(d.publicKey), signCount: nullable(d.signCount), transports: nullable(d.transports),
      createdAt: d.createdAt, lastUsedAt: nullable(d.lastUsedAt),
    }],
    toDocument: (r) => {
      const credentialId = optStr(r, 'credentialId');
      return {
        _id: str(r, 'id'), personId: str(r, 'personId'), type: str(r, 'type'), label: str(r, 'label'), confirmed: r.confirmed === true,
        secretCiphertext: optStr(r, 'secretCiphertext'), lastStep: optNum(r, 'lastStep'),
        ...(credentialId !== null ? { credentialId } : {}),
        publicKey: optStr(r, 'publicKey'), signCount: optNum(r, 'signCount'), transports: optStrings(r, 'transports'),
        createdAt: num(r, 'createdAt'), lastUsedAt: optNum(r, 'lastUsedAt'),
      };
    },
  },
  oidc: {
    collection: 'oidc_models',
    sort: { model: 1, key: 1 },
    toNeutral: (d) => [{
      model: d.model, id: d.key, payload: parsed(d.payload), uid: secondOf(d.uidKey), userCode: secondOf(d.userCodeKey),
      grantId: nullable(d.grantId), accountId: nullable(d.accountId), clientId: nullable(d.clientId),
      expiresAt: nullable(d.expiresAt), consumedAt: nullable(d.consumedAt),
    }],
    toDocument: (r) => {
      const model = str(r, 'model');
      const uid = optStr(r, 'uid');
      const userCode = optStr(r, 'userCode');
      const expiresAt = optNum(r, 'expiresAt');
      return {
        _id: pairId(model, str(r, 'id')), model, key: str(r, 'id'), payload: json(r.payload),
        ...(uid !== null ? { uidKey: pairId(model, uid) } : {}),
        ...(userCode !== null ? { userCodeKey: pairId(model, userCode) } : {}),
        grantId: optStr(r, 'grantId'),
        // Records exported before these lookup fields existed carry them only in the payload.
        accountId: optStr(r, 'accountId') ?? payloadString(r, 'accountId'), clientId: optStr(r, 'clientId') ?? payloadString(r, 'clientId'),
        expiresAt, ...expireAt(expiresAt), consumedAt: optNum(r, 'consumedAt'),
      };
    },
  },
  jobs: {
    collection: 'jobs',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      id: d._id, kind: d.kind, payload: parsed(d.payload), status: d.status, attempts: d.attempts, dueAt: d.dueAt,
      leaseUntil: d.leaseUntil, lastOutcome: nullable(d.lastOutcome), createdAt: d.createdAt, updatedAt: d.updatedAt,
      expiresAt: nullable(d.expiresAt),
    }],
    toDocument: (r) => {
      const expiresAt = optNum(r, 'expiresAt');
      return {
        _id: str(r, 'id'), kind: str(r, 'kind'), payload: json(r.payload), status: str(r, 'status'), attempts: num(r, 'attempts'),
        dueAt: num(r, 'dueAt'), leaseUntil: num(r, 'leaseUntil'), lastOutcome: optStr(r, 'lastOutcome'),
        createdAt: num(r, 'createdAt'), updatedAt: num(r, 'updatedAt'), expiresAt, ...expireAt(expiresAt),
      };
    },
  },
  enterprises: {
    collection: 'enterprises',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      code: d._id, name: d.name, status: d.status, parentCode: nullable(d.parentCode), createdAt: d.createdAt, updatedAt: d.updatedAt,
    }],
    toDocument: (r) => ({
      _id: str(r, 'code'), name: str(r, 'name'), status: str(r, 'status'), parentCode: optStr(r, 'parentCode'),
      createdAt: num(r, 'createdAt'), updatedAt: num(r, 'updatedAt'),
    }),
  },
  representatives: {
    collection: 'org_representatives',
    sort: { enterpriseCode: 1, personId: 1 },
    toNeutral: (d) => [{ enterpriseCode: d.enterpriseCode, personId: d.personId, createdAt: d.createdAt }],
    toDocument: (r) => ({
      _id: pairId(str(r, 'enterpriseCode'), str(r, 'personId')), enterpriseCode: str(r, 'enterpriseCode'),
      personId: str(r, 'personId'), createdAt: num(r, 'createdAt'),
    }),
  },
  delegations: {
    collection: 'delegations',
    sort: { enterpriseCode: 1, personId: 1 },
    toNeutral: (d) => [{
      enterpriseCode: d.enterpriseCode, personId: d.personId, role: d.role, until: nullable(d.until), portals: nullable(d.portals),
      grantedBy: d.grantedBy, createdAt: d.createdAt, revokedAt: nullable(d.revokedAt),
    }],
    toDocument: (r) => ({
      _id: pairId(str(r, 'enterpriseCode'), str(r, 'personId')), enterpriseCode: str(r, 'enterpriseCode'), personId: str(r, 'personId'),
      role: str(r, 'role'), until: optNum(r, 'until'), portals: optStrings(r, 'portals'), grantedBy: str(r, 'grantedBy'),
      createdAt: num(r, 'createdAt'), revokedAt: optNum(r, 'revokedAt'),
    }),
  },
  orgGrants: {
    collection: 'org_grants',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      grantId: d._id, enterpriseCode: d.enterpriseCode, personId: d.personId, clientId: d.clientId,
      sessionUid: nullable(d.sessionUid), createdAt: d.createdAt, expiresAt: d.expiresAt,
    }],
    toDocument: (r) => ({
      _id: str(r, 'grantId'), enterpriseCode: str(r, 'enterpriseCode'), personId: str(r, 'personId'), clientId: str(r, 'clientId'),
      sessionUid: optStr(r, 'sessionUid'), createdAt: num(r, 'createdAt'), expiresAt: num(r, 'expiresAt'),
      expireAt: new Date(num(r, 'expiresAt')),
    }),
  },
  signingKeys: {
    collection: 'signing_keys',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      kid: d._id, alg: d.alg, publicJwk: parsed(d.publicJwk), privateJwkSealed: d.privateJwkSealed, origin: d.origin,
      createdAt: d.createdAt, activateAt: d.activateAt, retiredAt: nullable(d.retiredAt),
    }],
    toDocument: (r) => ({
      _id: str(r, 'kid'), alg: str(r, 'alg'), publicJwk: json(r.publicJwk), privateJwkSealed: str(r, 'privateJwkSealed'),
      origin: str(r, 'origin'), createdAt: num(r, 'createdAt'), activateAt: num(r, 'activateAt'), retiredAt: optNum(r, 'retiredAt'),
    }),
  },
  auditLog: {
    collection: 'audit_log',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      seq: d._id, at: d.at, event: d.event, eventId: d.eventId, details: parsed(d.details), prevHash: d.prevHash, hash: d.hash,
    }],
    toDocument: (r) => ({
      _id: num(r, 'seq'), at: num(r, 'at'), event: str(r, 'event'), eventId: num(r, 'eventId'), details: json(r.details),
      prevHash: str(r, 'prevHash'), hash: str(r, 'hash'),
      // The searchable copies (audit.ts), made again from the details.
      ...auditSearchFields(r.details),
    }),
  },
  accountEvidence: {
    collection: 'account_evidence',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      id: d._id, personId: d.personId, action: d.action, reason: d.reason, evidence: parsed(d.evidence), operator: d.operator,
      createdAt: d.createdAt,
    }],
    toDocument: (r) => ({
      _id: str(r, 'id'), personId: str(r, 'personId'), action: str(r, 'action'), reason: str(r, 'reason'),
      evidence: json(r.evidence), operator: str(r, 'operator'), createdAt: num(r, 'createdAt'),
    }),
  },
  operators: {
    collection: 'operators',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      personId: d._id, roles: checkRoles(d.roles), addedBy: d.addedBy, addedAt: d.addedAt, updatedAt: d.updatedAt, rev: d.rev,
    }],
    toDocument: (r) => ({
      _id: str(r, 'personId'), roles: checkRoles(r.roles), addedBy: str(r, 'addedBy'), addedAt: num(r, 'addedAt'),
      updatedAt: num(r, 'updatedAt'), rev: num(r, 'rev'),
    }),
  },
  approvals: {
    collection: 'approvals',
    sort: { _id: 1 },
    toNeutral: (d) => [approvalDoc(d as ApprovalDoc) as unknown as Neutral],
    toDocument: (r) => approvalToDoc(r as unknown as Approval),
  },
  usageCounts: {
    collection: USAGE_COUNTS,
    sort: { day: 1, portal: 1, key: 1 },
    toNeutral: (d) => [{ day: d.day, portal: d.portal, key: d.key, n: d.n }],
    toDocument: (r) => {
      const [day, portal, key] = [usageDay(r), str(r, 'portal'), str(r, 'key')];
      return { _id: usageId(day, portal, key), day, portal, key, n: usageCount(r) };
    },
  },
  usageTags: {
    collection: USAGE_TAGS,
    sort: { day: 1, portal: 1, tag: 1 },
    toNeutral: (d) => [{ day: d.day, portal: d.portal, tag: d.tag }],
    toDocument: (r) => {
      const [day, portal, tag] = [usageDay(r), str(r, 'portal'), str(r, 'tag')];
      return { _id: usageId(day, portal, tag), day, portal, tag };
    },
  },
  ssfStreams: {
    collection: 'ssf_streams',
    sort: { clientId: 1 },
    toNeutral: (d) => [{
      id: d._id, clientId: d.clientId, eventsRequested: d.eventsRequested, deliveryMethod: d.deliveryMethod, endpointUrl: d.endpointUrl,
      authorizationHeader: d.authorizationHeader, description: d.description, status: d.status, statusReason: d.statusReason,
      createdAt: d.createdAt, updatedAt: d.updatedAt,
    }],
    toDocument: (r) => {
      const method = str(r, 'deliveryMethod');
      const status = str(r, 'status');
      if (method !== 'urn:ietf:rfc:8935' && method !== 'urn:ietf:rfc:8936') throw new TypeError('store copy: deliveryMethod of a stream must be urn:ietf:rfc:8935 or urn:ietf:rfc:8936');
      if (status !== 'enabled' && status !== 'paused' && status !== 'disabled') throw new TypeError('store copy: status of a stream must be enabled, paused or disabled');
      return {
        _id: str(r, 'id'), clientId: str(r, 'clientId'), eventsRequested: strings(r, 'eventsRequested'), deliveryMethod: method,
        endpointUrl: optStr(r, 'endpointUrl'), authorizationHeader: optStr(r, 'authorizationHeader'), description: optStr(r, 'description'),
        status, statusReason: optStr(r, 'statusReason'), createdAt: num(r, 'createdAt'), updatedAt: num(r, 'updatedAt'),
      };
    },
  },
  activity: {
    collection: 'activity',
    sort: { _id: 1 },
    toNeutral: (d) => [{
      id: d._id, personId: d.personId, at: d.at, event: d.event, details: parsed(d.details), expiresAt: d.expiresAt,
    }],
    toDocument: (r) => ({
      _id: str(r, 'id'), personId: str(r, 'personId'), at: num(r, 'at'), event: str(r, 'event'), details: json(r.details),
      expiresAt: num(r, 'expiresAt'), expireAt: new Date(num(r, 'expiresAt')),
    }),
  },
};

/** One neutral record per code (personId, codeHash, createdAt, usedAt), ordered by code hash. */
function recoveryNeutral(doc: RecoveryCodesDoc): Neutral[] {
  const codes = [
    ...doc.unused.map((hash) => ({ personId: doc._id, codeHash: hash, createdAt: doc.createdAt, usedAt: null })),
    ...doc.used.map((u) => ({ personId: doc._id, codeHash: u.hash, createdAt: doc.createdAt, usedAt: u.usedAt })),
  ];
  return codes.sort((a, b) => (a.codeHash < b.codeHash ? -1 : a.codeHash > b.codeHash ? 1 : 0));
}

export interface MongoCopyDeps {
  db: Db;
  /** Runs a read, translating driver errors into store errors. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs a write of `collection` (serialised where the server needs it). */
  write<T>(collection: string, fn: () => Promise<T>): Promise<T>;
}

export function createMongoCopy(deps: MongoCopyDeps): StoreCopy {
  const { db, run, write } = deps;

  async function* exportDocs(collection: Collection, sort: Sort, toNeutral: (doc: Document) => Neutral[]): AsyncGenerator<Neutral> {
    const cursor = collection.find({}).sort(sort);
    try {
      for (;;) {
        const doc = await run(() => cursor.next());
        if (doc === null) return;
        yield* toNeutral(doc);
      }
    } finally {
      await cursor.close().catch(() => undefined);
    }
  }

  return {
    exportAll(collection) {
      if (collection === 'recoveryCodes') {
        return exportDocs(db.collection('recovery_codes'), { _id: 1 }, (d) => recoveryNeutral(d as RecoveryCodesDoc));
      }
      const spec = SPECS[collection];
      if (!spec) throw new TypeError(`store copy: unknown collection ${JSON.stringify(collection)}`);
      return exportDocs(db.collection(spec.collection), spec.sort, spec.toNeutral);
    },

    async importMany(collection, records) {
      if (records.length === 0) return;
      if (collection === 'recoveryCodes') {
        await importRecoveryCodes(records);
        return;
      }
      const spec = SPECS[collection];
      if (!spec) throw new TypeError(`store copy: unknown collection ${JSON.stringify(collection)}`);
      // Built before the first write, so a malformed record imports nothing.
      const operations: AnyBulkWriteOperation[] = records.map((record) => {
        const doc = spec.toDocument(record);
        return { replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } };
      });
      await write(spec.collection, async () => {
        await db.collection(spec.collection).bulkWrite(operations, { ordered: true });
      });
    },
  };

  /**
   * Codes arrive one record each, possibly split across batches: merge them into each person's
   * single document (a code's key is (personId, codeHash); a record replaces the code it names).
   */
  async function importRecoveryCodes(records: readonly Neutral[]): Promise<void> {
    const byPerson = new Map<string, Neutral[]>();
    for (const record of records) {
      const personId = str(record, 'personId');
      str(record, 'codeHash');
      num(record, 'createdAt');
      optNum(record, 'usedAt');
      byPerson.set(personId, [...(byPerson.get(personId) ?? []), record]);
    }
    const codes = db.collection<RecoveryCodesDoc>('recovery_codes');
    await write('recovery_codes', async () => {
      for (const [personId, list] of byPerson) {
        const existing = await codes.findOne({ _id: personId });
        const state = new Map<string, number | null>();
        for (const hash of existing?.unused ?? []) state.set(hash, null);
        for (const u of existing?.used ?? []) state.set(u.hash, u.usedAt);
        let createdAt = existing?.createdAt ?? 0;
        for (const record of list) {
          state.set(str(record, 'codeHash'), optNum(record, 'usedAt'));
          createdAt = Math.max(createdAt, num(record, 'createdAt'));
        }
        const doc: RecoveryCodesDoc = {
          _id: personId,
          createdAt,
          unused: [...state].filter(([, usedAt]) => usedAt === null).map(([hash]) => hash),
          used: [...state].flatMap(([hash, usedAt]) => (usedAt === null ? [] : [{ hash, usedAt }])),
        };
        await codes.replaceOne({ _id: personId }, doc, { upsert: true });
      }
    });
  }
}
