import { MongoClient, type Collection, type Document, type Filter, type MongoClientOptions } from 'mongodb';
import {
  StoreConflictError,
  StoreUnavailableError,
  type AccountEvidence,
  type AccountEvidenceRepository,
  type Address,
  type AttemptPolicy,
  type AuditEntry,
  type AuditRepository,
  type Consent,
  type ConsentRepository,
  type CounterRepository,
  type CounterState,
  type Delegation,
  type Enterprise,
  type EnterpriseStatus,
  type Factor,
  type FactorRepository,
  type Job,
  type JobRepository,
  type JobStatus,
  type OidcModelStore,
  type OidcPayload,
  type OrgGrant,
  type OrgRepository,
  type Person,
  type PersonRepository,
  type Portal,
  type PortalRepository,
  type RecoveryCodeRepository,
  type SigningKeyRecord,
  type SigningKeyRepository,
  type Store,
} from '../types.js';
import { createMongoCopy } from './mongo-copy.js';
import { migrateMongo } from './migrations.js';
import { withWriteLock } from './write-lock.js';

export interface MongoStoreOptions {
  /** `mongodb://…` or `mongodb+srv://…`; never echoed in errors (it may carry a password). */
  url: string;
  /** Clock in epoch ms (default `Date.now`): oidc expiry and record timestamps. Injectable for tests. */
  now?: () => number;
  /** Database name; default the URL's path, else `dinhdanh`. */
  dbName?: string;
  /** Extra driver options (they override the defaults below). */
  clientOptions?: MongoClientOptions;
}

export const DEFAULT_MONGO_DB_NAME = 'dinhdanh';

/** What may be said about a MongoDB URL: its hosts and database, never its userinfo. */
export interface MongoUrlParts {
  scheme: 'mongodb' | 'mongodb+srv';
  /** `host[:port][,host[:port]…]` as written, without userinfo. */
  hosts: string;
  /** The database named in the path, if any. */
  dbName: string | undefined;
  /** The raw and decoded userinfo pieces and option values, to scrub from any message that might repeat them. */
  secrets: string[];
}

// The driver's own split (mongodb-connection-string-url): userinfo ends at the first `@`, hosts run
// to the first `/`, `?` or `@`. Using the same split means we never print part of a password as a
// "host" on a URL the driver would read differently.
const URL_SHAPE = /^(mongodb(?:\+srv)?):\/\/(?:([^:@]*)(?::([^@]*))?@)?((?!:)[^/?@]*)(.*)$/s;

/** Splits a MongoDB URL into what may be shown; throws (without echoing the URL) when malformed. */
export function describeMongoUrl(url: string): MongoUrlParts {
  const match = URL_SHAPE.exec(url);
  if (!match || !match[4]) throw new Error('the MongoDB store URL is malformed (expected mongodb://host[:port][/database])');
  const scheme = match[1] as MongoUrlParts['scheme'];
  const [, , user, password, hosts = '', rest = ''] = match;
  const secrets: string[] = [];
  for (const piece of [user, password]) {
    if (!piece) continue;
    secrets.push(piece);
    try {
      secrets.push(decodeURIComponent(piece));
    } catch {
      // Not valid percent-encoding: the raw form is enough.
    }
  }
  // Option values may carry secrets too (authMechanismProperties tokens, tlsCertificateKeyFilePassword).
  const query = rest.split('?')[1] ?? '';
  for (const pair of query.split('&')) {
    const value = pair.slice(pair.indexOf('=') + 1);
    if (pair.includes('=') && value.length > 0) secrets.push(value);
  }
  let dbName: string | undefined;
  if (rest.startsWith('/')) {
    const path = rest.slice(1).split('?')[0] ?? '';
    try {
      dbName = decodeURIComponent(path) || undefined;
    } catch {
      throw new Error('the MongoDB store URL has a malformed database name');
    }
  }
  return { scheme, hosts, dbName, secrets };
}

function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***');
  return out;
}

// --- documents ------------------------------------------------------------------------------

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

interface PersonDoc {
  _id: string;
  pid: string;
  name: string;
  familyName: string;
  givenName: string;
  birthdate: string;
  gender: Person['gender'];
  email: string | null;
  emailVerified: boolean;
  phone: string | null;
  phoneVerified: boolean;
  /** JSON text. */
  address: string | null;
  level: number;
  passwordHash: string;
  status: Person['status'];
  createdAt: number;
  updatedAt: number;
}

interface PortalDoc {
  _id: string;
  name: string;
  /** JSON text. */
  metadata: string;
  secretCiphertext: string | null;
  sector: string;
  nationalId: boolean;
  nationalIdBasis: string | null;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
  /** Bumped by every change (absent: 0). */
  revision?: number;
}

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

interface CounterDoc {
  _id: string;
  count: number;
  updatedAt: number;
  expiresAt: number;
  expireAt: Date;
}

interface FactorDoc {
  _id: string;
  personId: string;
  type: Factor['type'];
  label: string;
  confirmed: boolean;
  secretCiphertext: string | null;
  lastStep: number | null;
  /** Absent (not null) when the factor has none: the unique index is sparse. */
  credentialId?: string;
  publicKey: string | null;
  signCount: number | null;
  transports: string[] | null;
  createdAt: number;
  lastUsedAt: number | null;
}

interface RecoveryCodesDoc {
  /** The person id: one document holds the person's whole set, so replace and consume are single-document writes. */
  _id: string;
  createdAt: number;
  /** Hashes not used yet; consuming one pulls it from here. */
  unused: string[];
  /** Used hashes and when (kept with the set, dropped with it). */
  used: { hash: string; usedAt: number }[];
}

interface JobDoc {
  _id: string;
  kind: string;
  /** JSON text. */
  payload: string;
  status: JobStatus;
  attempts: number;
  dueAt: number;
  leaseUntil: number;
  lastOutcome: string | null;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  expireAt?: Date;
}

interface EnterpriseDoc {
  _id: string;
  name: string;
  status: EnterpriseStatus;
  parentCode: string | null;
  createdAt: number;
  updatedAt: number;
}

interface RepresentativeDoc {
  /** JSON [enterpriseCode, personId]. */
  _id: string;
  enterpriseCode: string;
  personId: string;
  createdAt: number;
}

interface DelegationDoc {
  /** JSON [enterpriseCode, personId]. */
  _id: string;
  enterpriseCode: string;
  personId: string;
  role: string;
  until: number | null;
  portals: string[] | null;
  grantedBy: string;
  createdAt: number;
  revokedAt: number | null;
}

interface OrgGrantDoc {
  _id: string;
  enterpriseCode: string;
  personId: string;
  clientId: string;
  sessionUid: string | null;
  createdAt: number;
  expiresAt: number;
  expireAt: Date;
}

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

interface VersionDoc {
  _id: number;
  version: number;
}

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

interface EvidenceDoc {
  _id: string;
  personId: string;
  action: string;
  reason: string;
  /** JSON text. */
  evidence: string;
  operator: string;
  createdAt: number;
}

// --- mapping --------------------------------------------------------------------------------

function personDoc(doc: PersonDoc): Person {
  return {
    id: doc._id,
    pid: doc.pid,
    name: doc.name,
    familyName: doc.familyName,
    givenName: doc.givenName,
    birthdate: doc.birthdate,
    gender: doc.gender,
    email: doc.email,
    emailVerified: doc.emailVerified,
    phone: doc.phone,
    phoneVerified: doc.phoneVerified,
    address: doc.address === null ? null : (JSON.parse(doc.address) as Address),
    level: doc.level === 2 ? 2 : 1,
    passwordHash: doc.passwordHash,
    status: doc.status,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function portalDoc(doc: PortalDoc): Portal {
  return {
    clientId: doc._id,
    name: doc.name,
    metadata: JSON.parse(doc.metadata) as Record<string, unknown>,
    secretCiphertext: doc.secretCiphertext,
    sector: doc.sector,
    nationalId: doc.nationalId,
    nationalIdBasis: doc.nationalIdBasis,
    disabled: doc.disabled,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
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

function counterDoc(doc: CounterDoc): CounterState {
  return { count: doc.count, updatedAt: doc.updatedAt, expiresAt: doc.expiresAt };
}

function factorDoc(doc: FactorDoc): Factor {
  return {
    id: doc._id,
    personId: doc.personId,
    type: doc.type,
    label: doc.label,
    confirmed: doc.confirmed,
    secretCiphertext: doc.secretCiphertext,
    lastStep: doc.lastStep,
    credentialId: doc.credentialId ?? null,
    publicKey: doc.publicKey,
    signCount: doc.signCount,
    transports: doc.transports === null ? null : [...doc.transports],
    createdAt: doc.createdAt,
    lastUsedAt: doc.lastUsedAt,
  };
}

function jobDoc(doc: JobDoc): Job {
  return {
    id: doc._id,
    kind: doc.kind,
    payload: JSON.parse(doc.payload) as Record<string, unknown>,
    status: doc.status,
    attempts: doc.attempts,
    dueAt: doc.dueAt,
    leaseUntil: doc.leaseUntil,
    lastOutcome: doc.lastOutcome,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function enterpriseDoc(doc: EnterpriseDoc): Enterprise {
  return {
    code: doc._id,
    name: doc.name,
    status: doc.status,
    parentCode: doc.parentCode,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function delegationDoc(doc: DelegationDoc): Delegation {
  return {
    enterpriseCode: doc.enterpriseCode,
    personId: doc.personId,
    role: doc.role,
    until: doc.until,
    portals: doc.portals === null ? null : [...doc.portals],
    grantedBy: doc.grantedBy,
    createdAt: doc.createdAt,
    revokedAt: doc.revokedAt,
  };
}

function orgGrantDoc(doc: OrgGrantDoc): OrgGrant {
  return {
    grantId: doc._id,
    enterpriseCode: doc.enterpriseCode,
    personId: doc.personId,
    clientId: doc.clientId,
    sessionUid: doc.sessionUid,
    createdAt: doc.createdAt,
    expiresAt: doc.expiresAt,
  };
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

function evidenceDoc(doc: EvidenceDoc): AccountEvidence {
  return {
    id: doc._id,
    personId: doc.personId,
    action: doc.action,
    reason: doc.reason,
    evidence: JSON.parse(doc.evidence) as Record<string, unknown>,
    operator: doc.operator,
    createdAt: doc.createdAt,
  };
}

function oidcDoc(doc: OidcDoc | null): OidcPayload | undefined {
  if (!doc) return undefined;
  const payload = JSON.parse(doc.payload) as OidcPayload;
  // oidc-provider checks `payload.consumed` (epoch seconds) to detect code/token replay.
  if (doc.consumedAt !== null) payload.consumed = Math.floor(doc.consumedAt / 1000);
  return payload;
}

// --- validation: only checked scalars reach a filter ------------------------------------------

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  return value;
}

function num(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${what} must be a finite number`);
  return value;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A deterministic `_id` for a pair of strings (injective: JSON quoting keeps the parts apart). */
function pairId(a: string, b: string): string {
  return JSON.stringify([a, b]);
}

/** Number of documents to return for a caller's limit (a limit below 1 means none, as in SQL). */
function limitOf(limit: number): number {
  return Math.floor(num(limit, 'limit'));
}

/** Records without an expiry, or whose expiry is still ahead of `at`. */
function liveAt(at: number): { $or: Document[] } {
  return { $or: [{ expiresAt: null }, { expiresAt: { $gt: at } }] };
}

// --- errors ---------------------------------------------------------------------------------

function errorCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

function errorName(err: unknown): string {
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name : '';
}

function errorMessage(err: unknown): string {
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(err);
}

function isDuplicateKey(err: unknown): boolean {
  const code = errorCode(err);
  if (code === 11000 || code === 11001) return true;
  // FerretDB 1.x reports a unique violation met by an update (not an insert) as InternalError.
  return code === 1 && /UNIQUE constraint failed/.test(errorMessage(err));
}

/** The duplicated key's field or index name when the server says (MongoDB does; FerretDB may not). */
function duplicateKeyHint(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { keyPattern } = err as { keyPattern?: unknown };
  if (keyPattern && typeof keyPattern === 'object') {
    const [first] = Object.keys(keyPattern);
    if (first) return first;
  }
  const message = errorMessage(err);
  return /index: (\S+)/.exec(message)?.[1] ?? /index '([^']+)'/.exec(message)?.[1];
}

function hintNames(hint: string | undefined, field: string, indexName: string): boolean {
  return hint !== undefined && (hint === field || hint === indexName || hint.endsWith(`_${indexName}`));
}

/** Driver errors meaning the server cannot be reached or cannot serve now (as opposed to a bad request). */
const UNAVAILABLE_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoTopologyClosedError',
  'MongoNotConnectedError',
  'MongoServerClosedError',
  'MongoPoolClosedError',
  'MongoPoolClearedError',
  'MongoWriteConcernError',
  'MongoOperationTimeoutError',
  'MongoStalePrimaryError',
]);

/** Server error codes of the same kind: unreachable hosts, elections, shutdowns, auth, timeouts. */
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  13, // Unauthorized
  18, // AuthenticationFailed
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

function isUnavailable(err: unknown): boolean {
  if (UNAVAILABLE_NAMES.has(errorName(err))) return true;
  const code = errorCode(err);
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) return true;
  if (typeof err === 'object' && err !== null) {
    const labelled = (err as { hasErrorLabel?: unknown }).hasErrorLabel;
    if (typeof labelled === 'function' && (labelled as (label: string) => boolean).call(err, 'RetryableWriteError')) return true;
    // DNS (mongodb+srv) and socket errors from Node itself: ENOTFOUND, ECONNREFUSED, ETIMEOUT, ...
    const { syscall, code: sysCode } = err as { syscall?: unknown; code?: unknown };
    if (typeof syscall === 'string' && typeof sysCode === 'string' && sysCode.startsWith('E')) return true;
  }
  return false;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Attempts at an optimistic step (audit append) before the store reports it cannot make progress. */
const MAX_ATTEMPTS = 200;

/** The previous hash of the first audit entry. */
const AUDIT_GENESIS_HASH = '0'.repeat(64);

/**
 * The admission condition of `claimAttempt` as a filter on a live counter, so that decide and count
 * are one atomic `findOneAndUpdate`: fewer than `freeAttempts` counted, or the delay owed after the
 * current count has passed since the last counted attempt. The delay depends on the count, so the
 * filter lists one branch per count until the delay reaches its cap (at most 21 branches).
 */
function admissionFilter(at: number, policy: AttemptPolicy): Document[] {
  const free = num(policy.freeAttempts, 'freeAttempts');
  const base = num(policy.baseDelayMs, 'baseDelayMs');
  const max = num(policy.maxDelayMs, 'maxDelayMs');
  const branches: Document[] = [{ count: { $lt: free } }];
  for (let step = 0; ; step += 1) {
    const delay = Math.min(max, base * 2 ** Math.min(step, 20));
    const last = step >= 20 || delay >= max;
    branches.push({ count: last ? { $gte: free + step } : free + step, updatedAt: { $lte: at - delay } });
    if (last) break;
  }
  return branches;
}

/** The same condition, decided in code on a counter already read. */
function admits(state: CounterState, at: number, policy: AttemptPolicy): boolean {
  if (state.expiresAt <= at || state.count < policy.freeAttempts) return true;
  const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(state.count - policy.freeAttempts, 20));
  return state.updatedAt + delay <= at;
}

/**
 * A Store on MongoDB 6.0+ (driver 7). Collections and indexes come from `migrate()`; every
 * read-modify-write is one conditional single-document operation (no multi-document transactions):
 * see the comments at each repository. On FerretDB 1.x, whose updates are not atomic, writes are
 * additionally serialised per collection within the process (write-lock.ts): correct for one
 * instance, not for several.
 */
export function createMongoStore(options: MongoStoreOptions): Store {
  const now = options.now ?? Date.now;
  const target = describeMongoUrl(options.url);
  const dbName = options.dbName ?? target.dbName ?? DEFAULT_MONGO_DB_NAME;
  const where = `MongoDB at ${target.hosts}`;

  let client: MongoClient;
  try {
    client = new MongoClient(options.url, {
      // Fail within seconds when the server is unreachable, rather than after the driver's 30 s.
      serverSelectionTimeoutMS: 5000,
      connectTimeoutMS: 5000,
      // Security-relevant writes (consumed codes, counters, revocations, audit) must survive a
      // primary failover: acknowledge them only once a majority has them, journaled.
      writeConcern: { w: 'majority', journal: true },
      readPreference: 'primary',
      ...options.clientOptions,
    });
  } catch (err) {
    // The driver's parse errors may quote a username or an option value: those are redacted.
    throw new Error(`the MongoDB store URL is invalid (${redact(errorMessage(err), target.secrets)})`);
  }
  const db = client.db(dbName);
  let closed = false;

  const col = {
    oidc: db.collection<OidcDoc>('oidc_models'),
    persons: db.collection<PersonDoc>('persons'),
    portals: db.collection<PortalDoc>('portals'),
    consents: db.collection<ConsentDoc>('consents'),
    counters: db.collection<CounterDoc>('counters'),
    factors: db.collection<FactorDoc>('factors'),
    recoveryCodes: db.collection<RecoveryCodesDoc>('recovery_codes'),
    jobs: db.collection<JobDoc>('jobs'),
    enterprises: db.collection<EnterpriseDoc>('enterprises'),
    representatives: db.collection<RepresentativeDoc>('org_representatives'),
    delegations: db.collection<DelegationDoc>('delegations'),
    grants: db.collection<OrgGrantDoc>('org_grants'),
    signingKeys: db.collection<SigningKeyDoc>('signing_keys'),
    signingKeysVersion: db.collection<VersionDoc>('signing_keys_version'),
    audit: db.collection<AuditDoc>('audit_log'),
    evidence: db.collection<EvidenceDoc>('account_evidence'),
  };

  function unavailable(err: unknown): StoreUnavailableError {
    if (closed) return new StoreUnavailableError('the MongoDB store is closed', { cause: err });
    return new StoreUnavailableError(`${where} is unavailable (${redact(errorMessage(err), target.secrets)})`, { cause: err });
  }

  /** Runs a driver call, translating driver errors into store errors. */
  async function run<T>(fn: () => Promise<T>): Promise<T> {
    // The driver reconnects on demand after close(); a closed store must not.
    if (closed) throw new StoreUnavailableError('the MongoDB store is closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreConflictError || err instanceof StoreUnavailableError) throw err;
      if (closed || isUnavailable(err)) throw unavailable(err);
      throw err;
    }
  }

  // FerretDB 1.x applies updates as read-then-write without isolation (see write-lock.ts): on it,
  // writes of one collection are serialised in this process. Decided once per store from buildInfo.
  let serialised: Promise<boolean> | undefined;
  function needsWriteLock(): Promise<boolean> {
    serialised ??= db
      .admin()
      .command({ buildInfo: 1 })
      .then((info) => typeof info.ferretdbVersion === 'string' && /^v?[01]\./.test(info.ferretdbVersion))
      .catch((err: unknown) => {
        serialised = undefined;
        throw err;
      });
    return serialised;
  }

  /** A call that writes `collection`: atomic on MongoDB by itself, serialised in-process on FerretDB 1.x. */
  function write<T>(collection: string, fn: () => Promise<T>): Promise<T> {
    return run(async () =>
      (await needsWriteLock()) ? withWriteLock(`${target.hosts}/${dbName}/${collection}`, fn) : fn(),
    );
  }

  /** Inserts; on a duplicate key calls `onDuplicate` (which may return a value or throw a conflict). */
  async function insert<D extends Document, T>(
    collection: Collection<D>,
    doc: D,
    onDuplicate: (err: unknown) => Promise<T> | T,
  ): Promise<T | undefined> {
    try {
      await collection.insertOne(doc as Parameters<Collection<D>['insertOne']>[0]);
      return undefined;
    } catch (err) {
      if (isDuplicateKey(err)) return onDuplicate(err);
      throw err;
    }
  }

  // --- oidc ---------------------------------------------------------------------------------
  // One document per (model, id) with a deterministic _id; uid and user code lookups go through
  // sparse unique keys that carry the model. consume is one conditional updateOne.

  const oidc: OidcModelStore = {
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

  // --- persons ------------------------------------------------------------------------------

  const persons: PersonRepository = {
    create: (person) =>
      write('persons', async () => {
        const t = now();
        const doc: PersonDoc = {
          _id: str(person.id, 'id'),
          pid: str(person.pid, 'pid'),
          name: person.name,
          familyName: person.familyName,
          givenName: person.givenName,
          birthdate: person.birthdate,
          gender: person.gender,
          email: person.email,
          emailVerified: person.emailVerified === true,
          phone: person.phone,
          phoneVerified: person.phoneVerified === true,
          address: person.address === null ? null : JSON.stringify(person.address),
          level: person.level,
          passwordHash: person.passwordHash,
          status: person.status,
          createdAt: t,
          updatedAt: t,
        };
        await insert(col.persons, doc, async (err) => {
          const hint = duplicateKeyHint(err);
          if (hintNames(hint, 'pid', 'pid_unique')) throw new StoreConflictError('pid');
          if (hint === '_id' || hint === '_id_') throw new StoreConflictError('id');
          const byId = await col.persons.countDocuments({ _id: doc._id }, { limit: 1 });
          throw new StoreConflictError(byId === 1 ? 'id' : 'pid');
        });
        return personDoc(doc);
      }),
    findById: (id) =>
      run(async () => {
        const doc = await col.persons.findOne({ _id: str(id, 'id') });
        return doc ? personDoc(doc) : undefined;
      }),
    findByPid: (pid) =>
      run(async () => {
        const doc = await col.persons.findOne({ pid: str(pid, 'pid') });
        return doc ? personDoc(doc) : undefined;
      }),
    list: ({ limit, offset }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const docs = await col.persons
          .find({})
          .sort({ createdAt: 1, _id: 1 })
          .skip(Math.max(0, Math.floor(num(offset, 'offset'))))
          .limit(n)
          .toArray();
        return docs.map(personDoc);
      }),
    count: () => run(() => col.persons.countDocuments({})),
    // Compare-and-set: the filter carries the expected hash, so a concurrent rehash cannot be lost.
    updatePasswordHash: (id, expectedHash, newHash) =>
      write('persons', async () => {
        const result = await col.persons.updateOne(
          { _id: str(id, 'id'), passwordHash: str(expectedHash, 'expectedHash') },
          { $set: { passwordHash: str(newHash, 'newHash'), updatedAt: now() } },
        );
        return result.matchedCount === 1;
      }),
    setStatus: (id, status) =>
      write('persons', async () => {
        const result = await col.persons.updateOne({ _id: str(id, 'id') }, { $set: { status, updatedAt: now() } });
        return result.matchedCount === 1;
      }),
    setLevel: (id, level) =>
      write('persons', async () => {
        const result = await col.persons.updateOne({ _id: str(id, 'id') }, { $set: { level, updatedAt: now() } });
        return result.matchedCount === 1;
      }),
  };

  // --- portals ------------------------------------------------------------------------------

  const portals: PortalRepository = {
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

  // --- consents -----------------------------------------------------------------------------

  const consents: ConsentRepository = {
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

  // --- counters -----------------------------------------------------------------------------
  // No update pipelines (FerretDB has none): each step is a conditional single-document write, and
  // the steps are ordered so that a racing writer makes the next step's condition fail or succeed
  // cleanly — live counter: $inc; lapsed counter: reset to 1; no counter: insert (a duplicate key
  // means someone else created it: start over).

  async function counterRestart(key: string, at: number, ttlMs: number): Promise<CounterState | undefined> {
    const expiresAt = at + ttlMs;
    const set = { count: 1, updatedAt: at, expiresAt, expireAt: new Date(expiresAt) };
    const reset = await col.counters.findOneAndUpdate(
      { _id: key, expiresAt: { $lte: at } },
      { $set: set },
      { returnDocument: 'after' },
    );
    if (reset) return counterDoc(reset);
    const taken = await insert(col.counters, { _id: key, ...set }, () => true);
    // A duplicate key: someone created it since we looked; the caller starts over.
    return taken ? undefined : { count: 1, updatedAt: at, expiresAt };
  }

  const counters: CounterRepository = {
    increment: (key, ttlMs, at, opts) =>
      write('counters', async () => {
        const k = str(key, 'key');
        const t = num(at, 'now');
        const ttl = num(ttlMs, 'ttlMs');
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          const slide = opts?.slide === true ? { expiresAt: t + ttl, expireAt: new Date(t + ttl) } : {};
          const grown = await col.counters.findOneAndUpdate(
            { _id: k, expiresAt: { $gt: t } },
            { $inc: { count: 1 }, $set: { updatedAt: t, ...slide } },
            { returnDocument: 'after' },
          );
          if (grown) return counterDoc(grown);
          const restarted = await counterRestart(k, t, ttl);
          if (restarted) return restarted;
        }
        throw new StoreUnavailableError(`${where}: counter increment made no progress under contention`);
      }),
    get: (key, at) =>
      run(async () => {
        const doc = await col.counters.findOne({ _id: str(key, 'key'), expiresAt: { $gt: num(at, 'now') } });
        return doc ? counterDoc(doc) : undefined;
      }),
    start: (key, ttlMs, at) =>
      write('counters', async () => {
        const k = str(key, 'key');
        const t = num(at, 'now');
        const expiresAt = t + num(ttlMs, 'ttlMs');
        const set = { count: 1, updatedAt: t, expiresAt, expireAt: new Date(expiresAt) };
        // Two upserts of a new key at once: one inserts, the other gets a duplicate key and
        // then finds the document to overwrite.
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          try {
            await col.counters.updateOne({ _id: k }, { $set: set }, { upsert: true });
            return { count: 1, updatedAt: t, expiresAt };
          } catch (err) {
            if ((err as { code?: unknown }).code !== 11000) throw err;
          }
        }
        throw new StoreUnavailableError(`${where}: counter start made no progress under contention`);
      }),
    reset: (key) =>
      write('counters', async () => {
        await col.counters.deleteOne({ _id: str(key, 'key') });
      }),
    // Decide and count in one findOneAndUpdate whose filter is the admission rule (see
    // admissionFilter); a refusal writes nothing.
    claimAttempt: (key, at, policy) =>
      write('counters', async () => {
        const k = str(key, 'key');
        const t = num(at, 'now');
        const ttl = num(policy.ttlMs, 'ttlMs');
        const admissible = admissionFilter(t, policy);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
          const counted = await col.counters.findOneAndUpdate(
            { _id: k, expiresAt: { $gt: t }, $or: admissible },
            { $inc: { count: 1 }, $set: { updatedAt: t, expiresAt: t + ttl, expireAt: new Date(t + ttl) } },
            { returnDocument: 'after' },
          );
          if (counted) return { admitted: true, count: counted.count };
          const current = await col.counters.findOne({ _id: k, expiresAt: { $gt: t } });
          if (current) {
            if (!admits(counterDoc(current), t, policy)) return { admitted: false, count: current.count };
            continue; // It changed under us (reset and recreated): decide again.
          }
          const restarted = await counterRestart(k, t, ttl);
          if (restarted) return { admitted: true, count: restarted.count };
        }
        throw new StoreUnavailableError(`${where}: claimAttempt made no progress under contention`);
      }),
  };

  // --- factors ------------------------------------------------------------------------------

  const factors: FactorRepository = {
    create: (factor) =>
      write('factors', async () => {
        const credentialId = factor.credentialId === null ? null : str(factor.credentialId, 'credentialId');
        const doc: FactorDoc = {
          _id: str(factor.id, 'id'),
          personId: str(factor.personId, 'personId'),
          type: factor.type,
          label: factor.label,
          confirmed: factor.confirmed === true,
          secretCiphertext: factor.secretCiphertext,
          lastStep: null,
          // Absent rather than null: the unique index on it is sparse.
          ...(credentialId !== null ? { credentialId } : {}),
          publicKey: factor.publicKey,
          signCount: factor.signCount,
          transports: factor.transports === null ? null : [...factor.transports],
          createdAt: now(),
          lastUsedAt: null,
        };
        await insert(col.factors, doc, async (err) => {
          const hint = duplicateKeyHint(err);
          if (hintNames(hint, 'credentialId', 'credentialId_unique')) throw new StoreConflictError('credentialId');
          if (hint === '_id' || hint === '_id_') throw new StoreConflictError('id');
          const byId = await col.factors.countDocuments({ _id: doc._id }, { limit: 1 });
          throw new StoreConflictError(byId === 1 || credentialId === null ? 'id' : 'credentialId');
        });
        return factorDoc(doc);
      }),
    find: (id) =>
      run(async () => {
        const doc = await col.factors.findOne({ _id: str(id, 'id') });
        return doc ? factorDoc(doc) : undefined;
      }),
    listForPerson: (personId) =>
      run(async () =>
        (await col.factors.find({ personId: str(personId, 'personId') }).sort({ createdAt: 1, _id: 1 }).toArray()).map(factorDoc),
      ),
    findByCredentialId: (credentialId) =>
      run(async () => {
        const doc = await col.factors.findOne({ credentialId: str(credentialId, 'credentialId') });
        return doc ? factorDoc(doc) : undefined;
      }),
    confirm: (personId, id, at) =>
      write('factors', async () => {
        const result = await col.factors.updateOne(
          { _id: str(id, 'id'), personId: str(personId, 'personId') },
          { $set: { confirmed: true, lastUsedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    remove: (personId, id) =>
      write('factors', async () => {
        const result = await col.factors.deleteOne({ _id: str(id, 'id'), personId: str(personId, 'personId') });
        return result.deletedCount === 1;
      }),
    removeUnconfirmed: (personId, olderThan) =>
      write('factors', async () => {
        const result = await col.factors.deleteMany({
          personId: str(personId, 'personId'),
          confirmed: false,
          createdAt: { $lt: num(olderThan, 'olderThan') },
        });
        return result.deletedCount;
      }),
    // Replay guard: the filter admits only a step above the stored one, so of two parallel calls
    // with one step the second no longer matches.
    acceptTotpStep: (id, step, at) =>
      write('factors', async () => {
        const s = num(step, 'step');
        const result = await col.factors.updateOne(
          { _id: str(id, 'id'), $or: [{ lastStep: null }, { lastStep: { $lt: s } }] },
          { $set: { lastStep: s, lastUsedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    // Clone check: only a greater counter, or 0 over 0 (authenticators that do not count).
    updateSignCount: (id, signCount, at) =>
      write('factors', async () => {
        const n = num(signCount, 'signCount');
        const result = await col.factors.updateOne(
          { _id: str(id, 'id'), $or: [{ signCount: { $lt: n } }, ...(n === 0 ? [{ signCount: 0 }] : [])] },
          { $set: { signCount: n, lastUsedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
  };

  // --- recovery codes -----------------------------------------------------------------------
  // One document per person holds the whole set (replaces the SQLite transaction): replace is one
  // replaceOne, consume one updateOne that matches only while the hash is still unused and pulls it.

  const recoveryCodes: RecoveryCodeRepository = {
    replace: (personId, hashes, at) =>
      write('recovery_codes', async () => {
        const id = str(personId, 'personId');
        const set = hashes.map((h) => str(h, 'hash'));
        // All or nothing, as in SQLite: a repeated hash is refused and the old set stays.
        if (new Set(set).size !== set.length) throw new StoreConflictError('codeHash');
        if (set.length === 0) {
          await col.recoveryCodes.deleteOne({ _id: id });
          return;
        }
        const doc: RecoveryCodesDoc = { _id: id, createdAt: num(at, 'now'), unused: set, used: [] };
        for (let attempt = 0; ; attempt += 1) {
          try {
            await col.recoveryCodes.replaceOne({ _id: id }, doc, { upsert: true });
            return;
          } catch (err) {
            if (attempt === 0 && isDuplicateKey(err)) continue;
            throw err;
          }
        }
      }),
    consume: (personId, hash, at) =>
      write('recovery_codes', async () => {
        const h = str(hash, 'hash');
        const result = await col.recoveryCodes.updateOne(
          { _id: str(personId, 'personId'), unused: h },
          { $pull: { unused: h }, $push: { used: { hash: h, usedAt: num(at, 'now') } } },
        );
        return result.matchedCount === 1;
      }),
    countUnused: (personId) =>
      run(async () => {
        const doc = await col.recoveryCodes.findOne({ _id: str(personId, 'personId') }, { projection: { unused: 1 } });
        return doc?.unused.length ?? 0;
      }),
    createdAt: (personId) =>
      run(async () => {
        const doc = await col.recoveryCodes.findOne({ _id: str(personId, 'personId') }, { projection: { createdAt: 1 } });
        return doc?.createdAt;
      }),
    removeAll: (personId) =>
      write('recovery_codes', async () => {
        await col.recoveryCodes.deleteOne({ _id: str(personId, 'personId') });
      }),
  };

  // --- jobs ---------------------------------------------------------------------------------

  const jobs: JobRepository = {
    enqueue: (job, at) =>
      write('jobs', async () => {
        const t = num(at, 'now');
        const doc: JobDoc = {
          _id: str(job.id, 'id'),
          kind: str(job.kind, 'kind'),
          payload: JSON.stringify(job.payload),
          status: 'pending',
          attempts: 0,
          dueAt: num(job.dueAt, 'dueAt'),
          leaseUntil: 0,
          lastOutcome: null,
          createdAt: t,
          updatedAt: t,
          expiresAt: null,
        };
        // Idempotent triggers: the first enqueue of an id wins.
        return (await insert(col.jobs, doc, () => false)) ?? true;
      }),
    // A claim loop: each job is taken by one findOneAndUpdate whose filter requires it unheld, so of
    // concurrent claimers each job goes to exactly one.
    claimDue: (kind, at, leaseMs, limit) =>
      write('jobs', async () => {
        const k = str(kind, 'kind');
        const t = num(at, 'now');
        const leaseUntil = t + num(leaseMs, 'leaseMs');
        const claimed: Job[] = [];
        for (let i = 0; i < limitOf(limit); i += 1) {
          const doc = await col.jobs.findOneAndUpdate(
            { kind: k, status: 'pending', dueAt: { $lte: t }, leaseUntil: { $lte: t } },
            { $set: { leaseUntil, updatedAt: t }, $inc: { attempts: 1 } },
            { sort: { dueAt: 1, _id: 1 }, returnDocument: 'after' },
          );
          if (!doc) break;
          claimed.push(jobDoc(doc));
        }
        return claimed.sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : 1));
      }),
    finish: (id, status, outcome, at, keepMs) =>
      write('jobs', async () => {
        const t = num(at, 'now');
        const expiresAt = t + num(keepMs, 'keepMs');
        await col.jobs.updateOne(
          { _id: str(id, 'id'), status: 'pending' },
          {
            $set: {
              status: status === 'failed' ? 'failed' : 'done',
              lastOutcome: outcome.slice(0, 500),
              leaseUntil: 0,
              updatedAt: t,
              expiresAt,
              expireAt: new Date(expiresAt),
            },
          },
        );
      }),
    retry: (id, dueAt, outcome, at) =>
      write('jobs', async () => {
        await col.jobs.updateOne(
          { _id: str(id, 'id'), status: 'pending' },
          { $set: { dueAt: num(dueAt, 'dueAt'), lastOutcome: outcome.slice(0, 500), leaseUntil: 0, updatedAt: num(at, 'now') } },
        );
      }),
    find: (id) =>
      run(async () => {
        const doc = await col.jobs.findOne({ _id: str(id, 'id'), ...liveAt(now()) });
        return doc ? jobDoc(doc) : undefined;
      }),
    list: (kind, options) =>
      run(async () => {
        const n = limitOf(options.limit);
        if (n < 1) return [];
        const filter: Filter<JobDoc> = { kind: str(kind, 'kind'), ...liveAt(now()) };
        if (options.status !== undefined) filter.status = str(options.status, 'status') as JobStatus;
        return (await col.jobs.find(filter).sort({ createdAt: -1, _id: -1 }).limit(n).toArray()).map(jobDoc);
      }),
  };

  // --- enterprises, representatives, delegations, org grants --------------------------------

  const orgs: OrgRepository = {
    createEnterprise: (enterprise) =>
      write('enterprises', async () => {
        const t = now();
        const doc: EnterpriseDoc = {
          _id: str(enterprise.code, 'code'),
          name: enterprise.name,
          status: enterprise.status,
          parentCode: enterprise.parentCode === null ? null : str(enterprise.parentCode, 'parentCode'),
          createdAt: t,
          updatedAt: t,
        };
        await insert(col.enterprises, doc, () => {
          throw new StoreConflictError('code');
        });
        return enterpriseDoc(doc);
      }),
    findEnterprise: (code) =>
      run(async () => {
        const doc = await col.enterprises.findOne({ _id: str(code, 'code') });
        return doc ? enterpriseDoc(doc) : undefined;
      }),
    listEnterprises: ({ limit, offset }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const docs = await col.enterprises
          .find({})
          .sort({ _id: 1 })
          .skip(Math.max(0, Math.floor(num(offset, 'offset'))))
          .limit(n)
          .toArray();
        return docs.map(enterpriseDoc);
      }),
    listBranches: (parentCode) =>
      run(async () =>
        (await col.enterprises.find({ parentCode: str(parentCode, 'parentCode') }).sort({ _id: 1 }).toArray()).map(enterpriseDoc),
      ),
    setEnterpriseStatus: (code, status) =>
      write('enterprises', async () => {
        const result = await col.enterprises.updateOne({ _id: str(code, 'code') }, { $set: { status, updatedAt: now() } });
        return result.matchedCount === 1;
      }),

    addRepresentative: (code, personId) =>
      write('org_representatives', async () => {
        const c = str(code, 'code');
        const p = str(personId, 'personId');
        const doc: RepresentativeDoc = { _id: pairId(c, p), enterpriseCode: c, personId: p, createdAt: now() };
        return (await insert(col.representatives, doc, () => false)) ?? true;
      }),
    removeRepresentative: (code, personId) =>
      write('org_representatives', async () => {
        const result = await col.representatives.deleteOne({ _id: pairId(str(code, 'code'), str(personId, 'personId')) });
        return result.deletedCount === 1;
      }),
    listRepresentatives: (code) =>
      run(async () =>
        (await col.representatives.find({ enterpriseCode: str(code, 'code') }).sort({ createdAt: 1, personId: 1 }).toArray()).map(
          (d) => d.personId,
        ),
      ),
    representedBy: (personId) =>
      run(async () =>
        (await col.representatives.find({ personId: str(personId, 'personId') }).sort({ enterpriseCode: 1 }).toArray()).map(
          (d) => d.enterpriseCode,
        ),
      ),

    // One document per (enterprise, person) under a deterministic _id: put is a whole-document
    // upsert, so a replaced or revoked delegation is rewritten in place and comes back in force.
    putDelegation: (delegation) =>
      write('delegations', async () => {
        const c = str(delegation.enterpriseCode, 'enterpriseCode');
        const p = str(delegation.personId, 'personId');
        const doc: DelegationDoc = {
          _id: pairId(c, p),
          enterpriseCode: c,
          personId: p,
          role: delegation.role,
          until: delegation.until,
          portals: delegation.portals === null ? null : [...delegation.portals],
          grantedBy: delegation.grantedBy,
          createdAt: now(),
          revokedAt: null,
        };
        for (let attempt = 0; ; attempt += 1) {
          try {
            await col.delegations.replaceOne({ _id: doc._id }, doc, { upsert: true });
            return delegationDoc(doc);
          } catch (err) {
            if (attempt === 0 && isDuplicateKey(err)) continue;
            throw err;
          }
        }
      }),
    findDelegation: (code, personId) =>
      run(async () => {
        const doc = await col.delegations.findOne({ _id: pairId(str(code, 'code'), str(personId, 'personId')) });
        return doc ? delegationDoc(doc) : undefined;
      }),
    revokeDelegation: (code, personId, at) =>
      write('delegations', async () => {
        const result = await col.delegations.updateOne(
          { _id: pairId(str(code, 'code'), str(personId, 'personId')), revokedAt: null },
          { $set: { revokedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    listDelegations: (code) =>
      run(async () =>
        (await col.delegations.find({ enterpriseCode: str(code, 'code') }).sort({ createdAt: 1, personId: 1 }).toArray()).map(
          delegationDoc,
        ),
      ),
    delegationsOf: (personId) =>
      run(async () =>
        (await col.delegations.find({ personId: str(personId, 'personId') }).sort({ enterpriseCode: 1 }).toArray()).map(delegationDoc),
      ),

    recordGrant: (grant) =>
      write('org_grants', async () => {
        const expiresAt = num(grant.expiresAt, 'expiresAt');
        const doc: OrgGrantDoc = {
          _id: str(grant.grantId, 'grantId'),
          enterpriseCode: str(grant.enterpriseCode, 'enterpriseCode'),
          personId: str(grant.personId, 'personId'),
          clientId: str(grant.clientId, 'clientId'),
          sessionUid: grant.sessionUid,
          createdAt: now(),
          expiresAt,
          expireAt: new Date(expiresAt),
        };
        // Idempotent by grantId: the first record stays.
        await insert(col.grants, doc, () => undefined);
      }),
    findGrant: (grantId) =>
      run(async () => {
        const doc = await col.grants.findOne({ _id: str(grantId, 'grantId'), expiresAt: { $gt: now() } });
        return doc ? orgGrantDoc(doc) : undefined;
      }),
    grantsFor: (code, personId) =>
      run(async () => {
        const filter: Filter<OrgGrantDoc> = { enterpriseCode: str(code, 'code'), expiresAt: { $gt: now() } };
        if (personId !== undefined) filter.personId = str(personId, 'personId');
        return (await col.grants.find(filter).sort({ createdAt: 1, _id: 1 }).toArray()).map(orgGrantDoc);
      }),
    forgetGrant: (grantId) =>
      write('org_grants', async () => {
        await col.grants.deleteOne({ _id: str(grantId, 'grantId') });
      }),
  };

  // --- signing keys -------------------------------------------------------------------------
  // The key and the version counter are two documents; with no transaction, the counter is bumped
  // ($inc) after each add/retire that succeeded. A reader that reads version() before list() never
  // caches a new key set under an old version for longer than until its next poll.

  async function bumpSigningKeysVersion(): Promise<void> {
    await col.signingKeysVersion.updateOne({ _id: 1 }, { $inc: { version: 1 } }, { upsert: true });
  }

  const signingKeys: SigningKeyRepository = {
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
        await bumpSigningKeysVersion();
      }),
    list: () => run(async () => (await col.signingKeys.find({}).sort({ activateAt: 1, _id: 1 }).toArray()).map(signingKeyDoc)),
    retire: (kid, at) =>
      write('signing_keys', async () => {
        const result = await col.signingKeys.updateOne(
          { _id: str(kid, 'kid'), retiredAt: null },
          { $set: { retiredAt: num(at, 'now') } },
        );
        if (result.matchedCount !== 1) return false;
        await bumpSigningKeysVersion();
        return true;
      }),
    version: () => run(async () => (await col.signingKeysVersion.findOne({ _id: 1 }))?.version ?? 0),
  };

  // --- audit log ----------------------------------------------------------------------------
  // Optimistic chain append (replaces SQLite's IMMEDIATE transaction): read the last entry, seal
  // seq + 1 onto its hash, insert with _id = seq. The unique _id lets exactly one of two concurrent
  // appends take a seq; the other gets a duplicate key and starts again from the new last entry, so
  // no two entries share a seq or a previous hash and the chain has no gaps. A seal that throws
  // appends nothing.

  const audit: AuditRepository = {
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

  // --- account evidence ---------------------------------------------------------------------

  const accountEvidence: AccountEvidenceRepository = {
    add: (record) =>
      write('account_evidence', async () => {
        const doc: EvidenceDoc = {
          _id: str(record.id, 'id'),
          personId: str(record.personId, 'personId'),
          action: record.action,
          reason: record.reason,
          evidence: JSON.stringify(record.evidence),
          operator: record.operator,
          createdAt: num(record.createdAt, 'createdAt'),
        };
        await insert(col.evidence, doc, () => {
          throw new StoreConflictError('id');
        });
      }),
    listForPerson: (personId) =>
      run(async () =>
        (await col.evidence.find({ personId: str(personId, 'personId') }).sort({ createdAt: 1, _id: 1 }).toArray()).map(evidenceDoc),
      ),
  };

  // --- maintenance --------------------------------------------------------------------------

  async function purge<D extends Document>(collection: Collection<D>, name: string, at: number): Promise<number> {
    return write(name, async () => {
      const result = await collection.deleteMany({ expiresAt: { $ne: null, $lte: at } } as unknown as Filter<D>);
      return result.deletedCount;
    });
  }

  return {
    kind: 'mongodb',
    oidc,
    persons,
    portals,
    consents,
    counters,
    factors,
    recoveryCodes,
    jobs,
    orgs,
    signingKeys,
    audit,
    accountEvidence,
    copy: createMongoCopy({ db, run, write, bumpSigningKeysVersion: () => write('signing_keys', bumpSigningKeysVersion) }),
    migrate: () => run(() => migrateMongo(db)),
    ping: () =>
      run(async () => {
        await db.command({ ping: 1 });
      }),
    purgeExpired: async (at) => {
      const t = num(at, 'now');
      let total = 0;
      total += await purge(col.oidc, 'oidc_models', t);
      total += await purge(col.counters, 'counters', t);
      total += await purge(col.jobs, 'jobs', t);
      total += await purge(col.grants, 'org_grants', t);
      return total;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close().catch(() => undefined);
    },
  };
}
