import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  StoreConflictError,
  StoreUnavailableError,
  type AccountEvidence,
  type AccountEvidenceRepository,
  type Address,
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
import { migrate } from './migrations.js';
import { createSqliteCopy } from './sqlite-copy.js';

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. */
  filename: string;
  /** Clock in epoch ms (default `Date.now`): oidc expiry and record timestamps. Injectable for tests. */
  now?: () => number;
}

interface OidcRow {
  payload: string;
  consumed_at: number | null;
}

interface PersonRow {
  id: string;
  pid: string;
  name: string;
  family_name: string;
  given_name: string;
  birthdate: string;
  gender: Person['gender'];
  email: string | null;
  email_verified: number;
  phone: string | null;
  phone_verified: number;
  address: string | null;
  level: number;
  password_hash: string;
  status: Person['status'];
  created_at: number;
  updated_at: number;
}

interface PortalRow {
  client_id: string;
  name: string;
  metadata: string;
  secret_ciphertext: string | null;
  sector: string;
  national_id: number;
  national_id_basis: string | null;
  disabled: number;
  created_at: number;
  updated_at: number;
}

interface ConsentRow {
  person_id: string;
  client_id: string;
  scopes: string;
  claims: string;
  created_at: number;
  updated_at: number;
}

interface CounterRow {
  count: number;
  updated_at: number;
  expires_at: number;
}

interface FactorRow {
  id: string;
  person_id: string;
  type: Factor['type'];
  label: string;
  confirmed: number;
  secret_ciphertext: string | null;
  last_step: number | null;
  credential_id: string | null;
  public_key: string | null;
  sign_count: number | null;
  transports: string | null;
  created_at: number;
  last_used_at: number | null;
}

/** Result codes meaning the database itself is unusable (as opposed to a bad statement). */
const UNAVAILABLE_CODES = [
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_FULL',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_PROTOCOL',
  'SQLITE_NOMEM',
  'SQLITE_PERM',
  'SQLITE_AUTH',
];

function sqliteCode(err: unknown): string | undefined {
  // Not `instanceof Error`: errors from the native addon may come from another realm (e.g. jest's
  // VM contexts), where that check fails.
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function isUniqueViolation(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function personRow(row: PersonRow): Person {
  return {
    id: row.id,
    pid: row.pid,
    name: row.name,
    familyName: row.family_name,
    givenName: row.given_name,
    birthdate: row.birthdate,
    gender: row.gender,
    email: row.email,
    emailVerified: row.email_verified === 1,
    phone: row.phone,
    phoneVerified: row.phone_verified === 1,
    address: row.address === null ? null : (JSON.parse(row.address) as Address),
    level: row.level === 2 ? 2 : 1,
    passwordHash: row.password_hash,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function portalRow(row: PortalRow): Portal {
  return {
    clientId: row.client_id,
    name: row.name,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    secretCiphertext: row.secret_ciphertext,
    sector: row.sector,
    nationalId: row.national_id === 1,
    nationalIdBasis: row.national_id_basis,
    disabled: row.disabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

interface JobRow {
  id: string;
  kind: string;
  payload: string;
  status: JobStatus;
  attempts: number;
  due_at: number;
  lease_until: number;
  last_outcome: string | null;
  created_at: number;
  updated_at: number;
}

function jobRow(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    payload: JSON.parse(row.payload) as Record<string, unknown>,
    status: row.status,
    attempts: row.attempts,
    dueAt: row.due_at,
    leaseUntil: row.lease_until,
    lastOutcome: row.last_outcome,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function consentRow(row: ConsentRow): Consent {
  return {
    personId: row.person_id,
    clientId: row.client_id,
    scopes: JSON.parse(row.scopes) as string[],
    claims: JSON.parse(row.claims) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function counterRow(row: CounterRow): CounterState {
  return { count: row.count, updatedAt: row.updated_at, expiresAt: row.expires_at };
}

function factorRow(row: FactorRow): Factor {
  return {
    id: row.id,
    personId: row.person_id,
    type: row.type,
    label: row.label,
    confirmed: row.confirmed === 1,
    secretCiphertext: row.secret_ciphertext,
    lastStep: row.last_step,
    credentialId: row.credential_id,
    publicKey: row.public_key,
    signCount: row.sign_count,
    transports: row.transports === null ? null : (JSON.parse(row.transports) as string[]),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

interface EnterpriseRow {
  code: string;
  name: string;
  status: EnterpriseStatus;
  parent_code: string | null;
  created_at: number;
  updated_at: number;
}

interface DelegationRow {
  enterprise_code: string;
  person_id: string;
  role: string;
  until: number | null;
  portals: string | null;
  granted_by: string;
  created_at: number;
  revoked_at: number | null;
}

interface OrgGrantRow {
  grant_id: string;
  enterprise_code: string;
  person_id: string;
  client_id: string;
  session_uid: string | null;
  created_at: number;
  expires_at: number;
}

function enterpriseRow(row: EnterpriseRow): Enterprise {
  return {
    code: row.code,
    name: row.name,
    status: row.status,
    parentCode: row.parent_code,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function delegationRow(row: DelegationRow): Delegation {
  return {
    enterpriseCode: row.enterprise_code,
    personId: row.person_id,
    role: row.role,
    until: row.until,
    portals: row.portals === null ? null : (JSON.parse(row.portals) as string[]),
    grantedBy: row.granted_by,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

function orgGrantRow(row: OrgGrantRow): OrgGrant {
  return {
    grantId: row.grant_id,
    enterpriseCode: row.enterprise_code,
    personId: row.person_id,
    clientId: row.client_id,
    sessionUid: row.session_uid,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk_sealed: string;
  origin: string;
  created_at: number;
  activate_at: number;
  retired_at: number | null;
}

interface AuditRow {
  seq: number;
  at: number;
  event: string;
  event_id: number;
  details: string;
  prev_hash: string;
  hash: string;
}

interface AccountEvidenceRow {
  id: string;
  person_id: string;
  action: string;
  reason: string;
  evidence: string;
  operator: string;
  created_at: number;
}

function signingKeyRow(row: SigningKeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    publicJwk: JSON.parse(row.public_jwk) as Record<string, unknown>,
    privateJwkSealed: row.private_jwk_sealed,
    origin: row.origin,
    createdAt: row.created_at,
    activateAt: row.activate_at,
    retiredAt: row.retired_at,
  };
}

function auditRow(row: AuditRow): AuditEntry {
  return {
    seq: row.seq,
    at: row.at,
    event: row.event,
    eventId: row.event_id,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function accountEvidenceRow(row: AccountEvidenceRow): AccountEvidence {
  return {
    id: row.id,
    personId: row.person_id,
    action: row.action,
    reason: row.reason,
    evidence: JSON.parse(row.evidence) as Record<string, unknown>,
    operator: row.operator,
    createdAt: row.created_at,
  };
}

/** The previous hash of the first audit entry. */
const AUDIT_GENESIS_HASH = '0'.repeat(64);

function oidcRow(row: OidcRow | undefined): OidcPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as OidcPayload;
  // oidc-provider checks `payload.consumed` (epoch seconds) to detect code/token replay.
  if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at / 1000);
  return payload;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

export function createSqliteStore(options: SqliteStoreOptions): Store {
  const now = options.now ?? Date.now;
  const memory = options.filename === ':memory:';

  let opened: Database.Database | undefined;
  try {
    if (!memory) {
      const file = path.resolve(options.filename);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // Create the file ourselves so it is private; SQLite gives -wal/-shm the same mode.
      try {
        fs.writeFileSync(file, '', { flag: 'wx', mode: 0o600 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    opened = new Database(options.filename);
    // busy_timeout first: switching to WAL needs a lock another process may briefly hold.
    opened.pragma('busy_timeout = 5000');
    opened.pragma('journal_mode = WAL');
    opened.pragma('foreign_keys = ON');
    opened.pragma('synchronous = NORMAL');
  } catch (err) {
    if (opened?.open) opened.close();
    throw new StoreUnavailableError('cannot open the SQLite database', { cause: err });
  }
  const db = opened;

  /** Prepares on first use (tables exist only after migrate()) and reuses the statement. */
  function statement<P extends unknown[] = unknown[], R = unknown>(sql: string): () => Database.Statement<P, R> {
    let prepared: Database.Statement<P, R> | undefined;
    return () => (prepared ??= db.prepare<P, R>(sql) as Database.Statement<P, R>);
  }

  /** Runs a synchronous driver call, translating driver errors into store errors. */
  async function call<T>(fn: () => T, conflictField?: (err: Error) => string): Promise<T> {
    try {
      return fn();
    } catch (err) {
      if (conflictField && isUniqueViolation(err)) throw new StoreConflictError(conflictField(err as Error));
      if (!db.open) throw new StoreUnavailableError('the SQLite database is closed', { cause: err });
      const code = sqliteCode(err);
      if (code && UNAVAILABLE_CODES.some((c) => code === c || code.startsWith(`${c}_`))) {
        throw new StoreUnavailableError(`SQLite failed (${code})`, { cause: err });
      }
      if (code === 'SQLITE_ERROR' && /no such table/.test((err as Error).message)) {
        throw new StoreUnavailableError('the SQLite schema is missing; run migrations', { cause: err });
      }
      throw err;
    }
  }

  // --- oidc ---------------------------------------------------------------------------------

  const oidcUpsert = statement<[Record<string, unknown>]>(`
    INSERT INTO oidc_models (model, id, payload, uid, user_code, grant_id, expires_at, consumed_at)
    VALUES (@model, @id, @payload, @uid, @userCode, @grantId, @expiresAt, @consumedAt)
    ON CONFLICT (model, id) DO UPDATE SET
      payload = excluded.payload, uid = excluded.uid, user_code = excluded.user_code,
      grant_id = excluded.grant_id, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at
  `);
  const live = '(expires_at IS NULL OR expires_at > ?)';
  const oidcFind = statement<[string, string, number], OidcRow>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND id = ? AND ${live}`,
  );
  const oidcFindByUid = statement<[string, string, number], OidcRow>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND uid = ? AND ${live} LIMIT 1`,
  );
  const oidcFindByUserCode = statement<[string, string, number], OidcRow>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND user_code = ? AND ${live} LIMIT 1`,
  );
  const oidcConsume = statement<[number, string, string, number]>(
    `UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id = ? AND consumed_at IS NULL AND ${live}`,
  );
  const oidcDestroy = statement<[string, string]>('DELETE FROM oidc_models WHERE model = ? AND id = ?');
  const oidcRevoke = statement<[string, string]>('DELETE FROM oidc_models WHERE model = ? AND grant_id = ?');

  const oidc: OidcModelStore = {
    upsert: (model, id, payload, expiresInSeconds) =>
      call(() => {
        const { consumed, ...rest } = payload;
        oidcUpsert().run({
          model,
          id,
          payload: JSON.stringify(rest),
          uid: optionalString(payload.uid),
          userCode: optionalString(payload.userCode),
          grantId: optionalString(payload.grantId),
          expiresAt: expiresInSeconds === undefined ? null : now() + Math.round(expiresInSeconds * 1000),
          // A payload re-saved after consumption keeps its consumed mark.
          consumedAt: typeof consumed === 'number' ? Math.round(consumed * 1000) : null,
        });
      }),
    find: (model, id) => call(() => oidcRow(oidcFind().get(model, id, now()))),
    findByUid: (model, uid) => call(() => oidcRow(oidcFindByUid().get(model, uid, now()))),
    findByUserCode: (model, userCode) => call(() => oidcRow(oidcFindByUserCode().get(model, userCode, now()))),
    consume: (model, id) =>
      call(() => {
        const t = now();
        return oidcConsume().run(t, model, id, t).changes === 1;
      }),
    destroy: (model, id) =>
      call(() => {
        oidcDestroy().run(model, id);
      }),
    revokeByGrantId: (model, grantId) =>
      call(() => {
        oidcRevoke().run(model, grantId);
      }),
  };

  // --- persons ------------------------------------------------------------------------------

  const personInsert = statement<[Record<string, unknown>], PersonRow>(`
    INSERT INTO persons (id, pid, name, family_name, given_name, birthdate, gender, email, email_verified,
                         phone, phone_verified, address, level, password_hash, status, created_at, updated_at)
    VALUES (@id, @pid, @name, @familyName, @givenName, @birthdate, @gender, @email, @emailVerified,
            @phone, @phoneVerified, @address, @level, @passwordHash, @status, @createdAt, @updatedAt)
    RETURNING *
  `);
  const personById = statement<[string], PersonRow>('SELECT * FROM persons WHERE id = ?');
  const personByPid = statement<[string], PersonRow>('SELECT * FROM persons WHERE pid = ?');
  const personList = statement<[number, number], PersonRow>(
    'SELECT * FROM persons ORDER BY created_at, id LIMIT ? OFFSET ?',
  );
  const personCount = statement<[], { n: number }>('SELECT count(*) AS n FROM persons');
  const personSetHash = statement<[string, number, string, string]>(
    'UPDATE persons SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?',
  );
  const personSetStatus = statement<[string, number, string]>(
    'UPDATE persons SET status = ?, updated_at = ? WHERE id = ?',
  );
  const personSetLevel = statement<[number, number, string]>(
    'UPDATE persons SET level = ?, updated_at = ? WHERE id = ?',
  );

  const persons: PersonRepository = {
    create: (person) =>
      call(
        () => {
          const t = now();
          const row = personInsert().get({
            id: person.id,
            pid: person.pid,
            name: person.name,
            familyName: person.familyName,
            givenName: person.givenName,
            birthdate: person.birthdate,
            gender: person.gender,
            email: person.email,
            emailVerified: person.emailVerified ? 1 : 0,
            phone: person.phone,
            phoneVerified: person.phoneVerified ? 1 : 0,
            address: person.address === null ? null : JSON.stringify(person.address),
            level: person.level,
            passwordHash: person.passwordHash,
            status: person.status,
            createdAt: t,
            updatedAt: t,
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return personRow(row);
        },
        (err) => (/persons\.pid/.test(err.message) ? 'pid' : 'id'),
      ),
    findById: (id) =>
      call(() => {
        const row = personById().get(id);
        return row && personRow(row);
      }),
    findByPid: (pid) =>
      call(() => {
        const row = personByPid().get(pid);
        return row && personRow(row);
      }),
    list: ({ limit, offset }) => call(() => personList().all(limit, offset).map(personRow)),
    count: () => call(() => personCount().get()?.n ?? 0),
    updatePasswordHash: (id, expectedHash, newHash) =>
      call(() => personSetHash().run(newHash, now(), id, expectedHash).changes === 1),
    setStatus: (id, status) => call(() => personSetStatus().run(status, now(), id).changes === 1),
    setLevel: (id, level) => call(() => personSetLevel().run(level, now(), id).changes === 1),
  };

  // --- portals ------------------------------------------------------------------------------

  const portalInsert = statement<[Record<string, unknown>], PortalRow>(`
    INSERT INTO portals (client_id, name, metadata, secret_ciphertext, sector, national_id, national_id_basis,
                         disabled, created_at, updated_at)
    VALUES (@clientId, @name, @metadata, @secretCiphertext, @sector, @nationalId, @nationalIdBasis,
            @disabled, @createdAt, @updatedAt)
    RETURNING *
  `);
  const portalFind = statement<[string], PortalRow>('SELECT * FROM portals WHERE client_id = ?');
  const portalList = statement<[], PortalRow>('SELECT * FROM portals ORDER BY created_at, client_id');
  const portalRevision = statement<[string], { revision: number }>('SELECT revision FROM portals WHERE client_id = ?');
  const portalSetDisabled = statement<[number, number, string]>(
    'UPDATE portals SET disabled = ?, updated_at = ?, revision = revision + 1 WHERE client_id = ?',
  );

  const portalUpdate = statement<[{ clientId: string; name: string; metadata: string; secretCiphertext: string | null; now: number }]>(
    'UPDATE portals SET name = @name, metadata = @metadata, secret_ciphertext = @secretCiphertext, updated_at = @now, revision = revision + 1 WHERE client_id = @clientId',
  );

  const portalSetNationalId = statement<[{ clientId: string; nationalId: number; basis: string | null; metadata: string; now: number }]>(
    'UPDATE portals SET national_id = @nationalId, national_id_basis = @basis, metadata = @metadata, updated_at = @now, revision = revision + 1 WHERE client_id = @clientId',
  );

  const portals: PortalRepository = {
    create: (portal) =>
      call(
        () => {
          const t = now();
          const row = portalInsert().get({
            clientId: portal.clientId,
            name: portal.name,
            metadata: JSON.stringify(portal.metadata),
            secretCiphertext: portal.secretCiphertext,
            sector: portal.sector,
            nationalId: portal.nationalId ? 1 : 0,
            nationalIdBasis: portal.nationalIdBasis,
            disabled: portal.disabled ? 1 : 0,
            createdAt: t,
            updatedAt: t,
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return portalRow(row);
        },
        () => 'clientId',
      ),
    find: (clientId) =>
      call(() => {
        const row = portalFind().get(clientId);
        return row && portalRow(row);
      }),
    list: () => call(() => portalList().all().map(portalRow)),
    revision: (clientId) => call(() => portalRevision().get(clientId)?.revision),
    setDisabled: (clientId, disabled) =>
      call(() => portalSetDisabled().run(disabled ? 1 : 0, now(), clientId).changes === 1),
    setNationalId: (clientId, basis, metadata) =>
      call(() => portalSetNationalId().run({ clientId, nationalId: basis === null ? 0 : 1, basis, metadata: JSON.stringify(metadata), now: now() }).changes === 1),
    update: (clientId, changes) =>
      call(
        () =>
          portalUpdate().run({
            clientId,
            name: changes.name,
            metadata: JSON.stringify(changes.metadata),
            secretCiphertext: changes.secretCiphertext,
            now: now(),
          }).changes === 1,
      ),
  };

  // --- consents -----------------------------------------------------------------------------

  const consentPut = statement<
    [{ personId: string; clientId: string; scopes: string; claims: string; now: number }],
    ConsentRow
  >(`
    INSERT INTO consents (person_id, client_id, scopes, claims, created_at, updated_at)
    VALUES (@personId, @clientId, @scopes, @claims, @now, @now)
    ON CONFLICT (person_id, client_id) DO UPDATE SET
      scopes = excluded.scopes, claims = excluded.claims, updated_at = excluded.updated_at
    RETURNING *
  `);
  const consentFind = statement<[string, string], ConsentRow>(
    'SELECT * FROM consents WHERE person_id = ? AND client_id = ?',
  );
  const consentList = statement<[string], ConsentRow>(
    'SELECT * FROM consents WHERE person_id = ? ORDER BY created_at, client_id',
  );
  const consentRemove = statement<[string, string]>('DELETE FROM consents WHERE person_id = ? AND client_id = ?');

  const consents: ConsentRepository = {
    put: (consent) =>
      call(() => {
        const row = consentPut().get({
          personId: consent.personId,
          clientId: consent.clientId,
          scopes: JSON.stringify(consent.scopes),
          claims: JSON.stringify(consent.claims),
          now: now(),
        });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return consentRow(row);
      }),
    find: (personId, clientId) =>
      call(() => {
        const row = consentFind().get(personId, clientId);
        return row && consentRow(row);
      }),
    listForPerson: (personId) => call(() => consentList().all(personId).map(consentRow)),
    remove: (personId, clientId) => call(() => consentRemove().run(personId, clientId).changes === 1),
  };

  // --- counters -----------------------------------------------------------------------------

  // One statement, so the read-modify-write is atomic. SET expressions see the old row.
  const counterIncrement = statement<[{ key: string; now: number; expiresAt: number; slide: number }], CounterRow>(`
    INSERT INTO counters (key, count, updated_at, expires_at) VALUES (@key, 1, @now, @expiresAt)
    ON CONFLICT (key) DO UPDATE SET
      count = CASE WHEN counters.expires_at <= excluded.updated_at THEN 1 ELSE counters.count + 1 END,
      expires_at = CASE WHEN counters.expires_at <= excluded.updated_at OR @slide THEN excluded.expires_at
                        ELSE counters.expires_at END,
      updated_at = excluded.updated_at
    RETURNING count, updated_at, expires_at
  `);
  const counterGet = statement<[string, number], CounterRow>(
    'SELECT count, updated_at, expires_at FROM counters WHERE key = ? AND expires_at > ?',
  );
  const counterStart = statement<[{ key: string; now: number; expiresAt: number }], CounterRow>(`
    INSERT INTO counters (key, count, updated_at, expires_at) VALUES (@key, 1, @now, @expiresAt)
    ON CONFLICT (key) DO UPDATE SET count = 1, updated_at = excluded.updated_at, expires_at = excluded.expires_at
    RETURNING count, updated_at, expires_at
  `);
  const counterReset = statement<[string]>('DELETE FROM counters WHERE key = ?');
  // Admission and increment in one statement: the DO UPDATE's WHERE sees the old row, and a row
  // that fails it is left alone and returns nothing (the attempt is refused, not counted).
  const counterClaim = statement<[{ key: string; now: number; expiresAt: number; free: number; base: number; max: number }], CounterRow>(`
    INSERT INTO counters (key, count, updated_at, expires_at) VALUES (@key, 1, @now, @expiresAt)
    ON CONFLICT (key) DO UPDATE SET
      count = CASE WHEN counters.expires_at <= @now THEN 1 ELSE counters.count + 1 END,
      expires_at = @expiresAt,
      updated_at = @now
    WHERE counters.expires_at <= @now
       OR counters.count < @free
       OR counters.updated_at + min(@max, @base * (1 << min(counters.count - @free, 20))) <= @now
    RETURNING count, updated_at, expires_at
  `);

  const counters: CounterRepository = {
    increment: (key, ttlMs, at, opts) =>
      call(() => {
        const row = counterIncrement().get({ key, now: at, expiresAt: at + ttlMs, slide: opts?.slide ? 1 : 0 });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return counterRow(row);
      }),
    get: (key, at) =>
      call(() => {
        const row = counterGet().get(key, at);
        return row && counterRow(row);
      }),
    start: (key, ttlMs, at) =>
      call(() => {
        const row = counterStart().get({ key, now: at, expiresAt: at + ttlMs });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return counterRow(row);
      }),
    reset: (key) =>
      call(() => {
        counterReset().run(key);
      }),
    claimAttempt: (key, at, policy) =>
      call(() => {
        const row = counterClaim().get({
          key, now: at, expiresAt: at + policy.ttlMs, free: policy.freeAttempts, base: policy.baseDelayMs, max: policy.maxDelayMs,
        });
        if (row) return { admitted: true, count: row.count };
        return { admitted: false, count: counterGet().get(key, at)?.count ?? 0 };
      }),
  };

  // --- factors ------------------------------------------------------------------------------

  const factorInsert = statement<[Record<string, unknown>], FactorRow>(`
    INSERT INTO factors (id, person_id, type, label, confirmed, secret_ciphertext, last_step, credential_id,
                         public_key, sign_count, transports, created_at, last_used_at)
    VALUES (@id, @personId, @type, @label, @confirmed, @secretCiphertext, NULL, @credentialId,
            @publicKey, @signCount, @transports, @createdAt, NULL)
    RETURNING *
  `);
  const factorFind = statement<[string], FactorRow>('SELECT * FROM factors WHERE id = ?');
  const factorList = statement<[string], FactorRow>(
    'SELECT * FROM factors WHERE person_id = ? ORDER BY created_at, id',
  );
  const factorByCredentialId = statement<[string], FactorRow>('SELECT * FROM factors WHERE credential_id = ?');
  const factorConfirm = statement<[number, string, string]>(
    'UPDATE factors SET confirmed = 1, last_used_at = ? WHERE id = ? AND person_id = ?',
  );
  const factorRemove = statement<[string, string]>('DELETE FROM factors WHERE id = ? AND person_id = ?');
  const factorRemoveUnconfirmed = statement<[string, number]>(
    'DELETE FROM factors WHERE person_id = ? AND confirmed = 0 AND created_at < ?',
  );
  // Single statements, so check and write are atomic: a concurrent caller sees the new value.
  const factorAcceptStep = statement<[number, number, string, number]>(
    'UPDATE factors SET last_step = ?, last_used_at = ? WHERE id = ? AND (last_step IS NULL OR last_step < ?)',
  );
  const factorSignCount = statement<[{ id: string; signCount: number; now: number }]>(`
    UPDATE factors SET sign_count = @signCount, last_used_at = @now
    WHERE id = @id AND (sign_count < @signCount OR (sign_count = 0 AND @signCount = 0))
  `);

  const factors: FactorRepository = {
    create: (factor) =>
      call(
        () => {
          const row = factorInsert().get({
            id: factor.id,
            personId: factor.personId,
            type: factor.type,
            label: factor.label,
            confirmed: factor.confirmed ? 1 : 0,
            secretCiphertext: factor.secretCiphertext,
            credentialId: factor.credentialId,
            publicKey: factor.publicKey,
            signCount: factor.signCount,
            transports: factor.transports === null ? null : JSON.stringify(factor.transports),
            createdAt: now(),
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return factorRow(row);
        },
        (err) => (/factors\.credential_id/.test(err.message) ? 'credentialId' : 'id'),
      ),
    find: (id) =>
      call(() => {
        const row = factorFind().get(id);
        return row && factorRow(row);
      }),
    listForPerson: (personId) => call(() => factorList().all(personId).map(factorRow)),
    findByCredentialId: (credentialId) =>
      call(() => {
        const row = factorByCredentialId().get(credentialId);
        return row && factorRow(row);
      }),
    confirm: (personId, id, at) => call(() => factorConfirm().run(at, id, personId).changes === 1),
    remove: (personId, id) => call(() => factorRemove().run(id, personId).changes === 1),
    removeUnconfirmed: (personId, olderThan) =>
      call(() => factorRemoveUnconfirmed().run(personId, olderThan).changes),
    acceptTotpStep: (id, step, at) => call(() => factorAcceptStep().run(step, at, id, step).changes === 1),
    updateSignCount: (id, signCount, at) =>
      call(() => factorSignCount().run({ id, signCount, now: at }).changes === 1),
  };

  // --- recovery codes -----------------------------------------------------------------------

  const recoveryDeleteAll = statement<[string]>('DELETE FROM recovery_codes WHERE person_id = ?');
  const recoveryInsert = statement<[string, string, number]>(
    'INSERT INTO recovery_codes (person_id, code_hash, created_at, used_at) VALUES (?, ?, ?, NULL)',
  );
  const recoveryConsume = statement<[number, string, string]>(
    'UPDATE recovery_codes SET used_at = ? WHERE person_id = ? AND code_hash = ? AND used_at IS NULL',
  );
  const recoveryCountUnused = statement<[string], { n: number }>(
    'SELECT count(*) AS n FROM recovery_codes WHERE person_id = ? AND used_at IS NULL',
  );
  const recoveryCreatedAt = statement<[string], { t: number | null }>(
    'SELECT max(created_at) AS t FROM recovery_codes WHERE person_id = ?',
  );
  // Delete then insert in one transaction: readers never see a half-replaced set, and a failure
  // (e.g. a duplicated hash) leaves the old set in place.
  const recoveryReplace = db.transaction((personId: string, hashes: readonly string[], at: number) => {
    recoveryDeleteAll().run(personId);
    for (const hash of hashes) recoveryInsert().run(personId, hash, at);
  });

  const recoveryCodes: RecoveryCodeRepository = {
    replace: (personId, hashes, at) =>
      call(
        () => {
          recoveryReplace(personId, hashes, at);
        },
        () => 'codeHash',
      ),
    consume: (personId, hash, at) => call(() => recoveryConsume().run(at, personId, hash).changes === 1),
    countUnused: (personId) => call(() => recoveryCountUnused().get(personId)?.n ?? 0),
    createdAt: (personId) => call(() => recoveryCreatedAt().get(personId)?.t ?? undefined),
    removeAll: (personId) =>
      call(() => {
        recoveryDeleteAll().run(personId);
      }),
  };

  // --- jobs ----------------------------------------------------------------------------------

  const jobInsert = statement<[{ id: string; kind: string; payload: string; dueAt: number; now: number }]>(`
    INSERT INTO jobs (id, kind, payload, status, attempts, due_at, lease_until, last_outcome, created_at, updated_at, expires_at)
    VALUES (@id, @kind, @payload, 'pending', 0, @dueAt, 0, NULL, @now, @now, NULL)
    ON CONFLICT (id) DO NOTHING
  `);
  // One statement: the sub-select and the update run under SQLite's single writer, so two
  // processes claiming at once never take the same job.
  const jobClaim = statement<[{ kind: string; now: number; leaseUntil: number; limit: number }], JobRow>(`
    UPDATE jobs SET lease_until = @leaseUntil, attempts = attempts + 1, updated_at = @now
    WHERE id IN (
      SELECT id FROM jobs
      WHERE kind = @kind AND status = 'pending' AND due_at <= @now AND lease_until <= @now
      ORDER BY due_at, id LIMIT @limit
    )
    RETURNING *
  `);
  const jobFinish = statement<[{ id: string; status: string; outcome: string; now: number; expiresAt: number }]>(
    "UPDATE jobs SET status = @status, last_outcome = @outcome, lease_until = 0, updated_at = @now, expires_at = @expiresAt WHERE id = @id AND status = 'pending'",
  );
  const jobRetry = statement<[{ id: string; dueAt: number; outcome: string; now: number }]>(
    "UPDATE jobs SET due_at = @dueAt, last_outcome = @outcome, lease_until = 0, updated_at = @now WHERE id = @id AND status = 'pending'",
  );
  const jobFind = statement<[string, number], JobRow>('SELECT * FROM jobs WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)');
  const jobList = statement<[{ kind: string; status: string | null; limit: number; now: number }], JobRow>(`
    SELECT * FROM jobs WHERE kind = @kind AND (@status IS NULL OR status = @status)
      AND (expires_at IS NULL OR expires_at > @now)
    ORDER BY created_at DESC, id DESC LIMIT @limit
  `);

  const jobs: JobRepository = {
    enqueue: (job, at) =>
      call(() => jobInsert().run({ id: job.id, kind: job.kind, payload: JSON.stringify(job.payload), dueAt: job.dueAt, now: at }).changes === 1),
    claimDue: (kind, at, leaseMs, limit) =>
      call(() =>
        jobClaim()
          .all({ kind, now: at, leaseUntil: at + leaseMs, limit })
          .map(jobRow)
          .sort((a, b) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : 1)),
      ),
    finish: (id, status, outcome, at, keepMs) =>
      call(() => {
        jobFinish().run({ id, status, outcome: outcome.slice(0, 500), now: at, expiresAt: at + keepMs });
      }),
    retry: (id, dueAt, outcome, at) =>
      call(() => {
        jobRetry().run({ id, dueAt, outcome: outcome.slice(0, 500), now: at });
      }),
    find: (id) =>
      call(() => {
        const row = jobFind().get(id, now());
        return row && jobRow(row);
      }),
    list: (kind, options) =>
      call(() => jobList().all({ kind, status: options.status ?? null, limit: options.limit, now: now() }).map(jobRow)),
  };

  // --- enterprises, representatives, delegations, org grants --------------------------------

  const enterpriseInsert = statement<
    [{ code: string; name: string; status: string; parentCode: string | null; now: number }],
    EnterpriseRow
  >(`
    INSERT INTO enterprises (code, name, status, parent_code, created_at, updated_at)
    VALUES (@code, @name, @status, @parentCode, @now, @now)
    RETURNING *
  `);
  const enterpriseFind = statement<[string], EnterpriseRow>('SELECT * FROM enterprises WHERE code = ?');
  const enterpriseList = statement<[number, number], EnterpriseRow>(
    'SELECT * FROM enterprises ORDER BY code LIMIT ? OFFSET ?',
  );
  const enterpriseBranches = statement<[string], EnterpriseRow>(
    'SELECT * FROM enterprises WHERE parent_code = ? ORDER BY code',
  );
  const enterpriseSetStatus = statement<[string, number, string]>(
    'UPDATE enterprises SET status = ?, updated_at = ? WHERE code = ?',
  );

  const representativeAdd = statement<[string, string, number]>(`
    INSERT INTO org_representatives (enterprise_code, person_id, created_at) VALUES (?, ?, ?)
    ON CONFLICT (enterprise_code, person_id) DO NOTHING
  `);
  const representativeRemove = statement<[string, string]>(
    'DELETE FROM org_representatives WHERE enterprise_code = ? AND person_id = ?',
  );
  const representativeList = statement<[string], { person_id: string }>(
    'SELECT person_id FROM org_representatives WHERE enterprise_code = ? ORDER BY created_at, person_id',
  );
  const representativeCodes = statement<[string], { enterprise_code: string }>(
    'SELECT enterprise_code FROM org_representatives WHERE person_id = ? ORDER BY enterprise_code',
  );

  // One statement: a replaced (or revoked) delegation is rewritten in place and comes back in force.
  const delegationPut = statement<
    [{ code: string; personId: string; role: string; until: number | null; portals: string | null; grantedBy: string; now: number }],
    DelegationRow
  >(`
    INSERT INTO delegations (enterprise_code, person_id, role, until, portals, granted_by, created_at, revoked_at)
    VALUES (@code, @personId, @role, @until, @portals, @grantedBy, @now, NULL)
    ON CONFLICT (enterprise_code, person_id) DO UPDATE SET
      role = excluded.role, until = excluded.until, portals = excluded.portals,
      granted_by = excluded.granted_by, created_at = excluded.created_at, revoked_at = NULL
    RETURNING *
  `);
  const delegationFind = statement<[string, string], DelegationRow>(
    'SELECT * FROM delegations WHERE enterprise_code = ? AND person_id = ?',
  );
  const delegationRevoke = statement<[number, string, string]>(
    'UPDATE delegations SET revoked_at = ? WHERE enterprise_code = ? AND person_id = ? AND revoked_at IS NULL',
  );
  const delegationList = statement<[string], DelegationRow>(
    'SELECT * FROM delegations WHERE enterprise_code = ? ORDER BY created_at, person_id',
  );
  const delegationListForPerson = statement<[string], DelegationRow>(
    'SELECT * FROM delegations WHERE person_id = ? ORDER BY enterprise_code',
  );

  const grantInsert = statement<
    [{ grantId: string; code: string; personId: string; clientId: string; sessionUid: string | null; now: number; expiresAt: number }]
  >(`
    INSERT INTO org_grants (grant_id, enterprise_code, person_id, client_id, session_uid, created_at, expires_at)
    VALUES (@grantId, @code, @personId, @clientId, @sessionUid, @now, @expiresAt)
    ON CONFLICT (grant_id) DO NOTHING
  `);
  const grantFind = statement<[string, number], OrgGrantRow>(
    'SELECT * FROM org_grants WHERE grant_id = ? AND expires_at > ?',
  );
  const grantList = statement<[{ code: string; personId: string | null; now: number }], OrgGrantRow>(`
    SELECT * FROM org_grants
    WHERE enterprise_code = @code AND (@personId IS NULL OR person_id = @personId) AND expires_at > @now
    ORDER BY created_at, grant_id
  `);
  const grantForget = statement<[string]>('DELETE FROM org_grants WHERE grant_id = ?');

  const orgs: OrgRepository = {
    createEnterprise: (enterprise) =>
      call(
        () => {
          const row = enterpriseInsert().get({
            code: enterprise.code,
            name: enterprise.name,
            status: enterprise.status,
            parentCode: enterprise.parentCode,
            now: now(),
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return enterpriseRow(row);
        },
        () => 'code',
      ),
    findEnterprise: (code) =>
      call(() => {
        const row = enterpriseFind().get(code);
        return row && enterpriseRow(row);
      }),
    listEnterprises: (options) =>
      call(() => enterpriseList().all(options.limit, options.offset).map(enterpriseRow)),
    listBranches: (parentCode) => call(() => enterpriseBranches().all(parentCode).map(enterpriseRow)),
    setEnterpriseStatus: (code, status) =>
      call(() => enterpriseSetStatus().run(status, now(), code).changes === 1),

    addRepresentative: (code, personId) =>
      call(() => representativeAdd().run(code, personId, now()).changes === 1),
    removeRepresentative: (code, personId) =>
      call(() => representativeRemove().run(code, personId).changes === 1),
    listRepresentatives: (code) => call(() => representativeList().all(code).map((r) => r.person_id)),
    representedBy: (personId) => call(() => representativeCodes().all(personId).map((r) => r.enterprise_code)),

    putDelegation: (delegation) =>
      call(() => {
        const row = delegationPut().get({
          code: delegation.enterpriseCode,
          personId: delegation.personId,
          role: delegation.role,
          until: delegation.until,
          portals: delegation.portals === null ? null : JSON.stringify(delegation.portals),
          grantedBy: delegation.grantedBy,
          now: now(),
        });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return delegationRow(row);
      }),
    findDelegation: (code, personId) =>
      call(() => {
        const row = delegationFind().get(code, personId);
        return row && delegationRow(row);
      }),
    revokeDelegation: (code, personId, at) =>
      call(() => delegationRevoke().run(at, code, personId).changes === 1),
    listDelegations: (code) => call(() => delegationList().all(code).map(delegationRow)),
    delegationsOf: (personId) => call(() => delegationListForPerson().all(personId).map(delegationRow)),

    recordGrant: (grant) =>
      call(() => {
        grantInsert().run({
          grantId: grant.grantId,
          code: grant.enterpriseCode,
          personId: grant.personId,
          clientId: grant.clientId,
          sessionUid: grant.sessionUid,
          now: now(),
          expiresAt: grant.expiresAt,
        });
      }),
    findGrant: (grantId) =>
      call(() => {
        const row = grantFind().get(grantId, now());
        return row && orgGrantRow(row);
      }),
    grantsFor: (code, personId) =>
      call(() => grantList().all({ code, personId: personId ?? null, now: now() }).map(orgGrantRow)),
    forgetGrant: (grantId) =>
      call(() => {
        grantForget().run(grantId);
      }),
  };

  // --- signing keys -------------------------------------------------------------------------

  const signingKeyInsert = statement<
    [{ kid: string; alg: string; publicJwk: string; privateJwkSealed: string; origin: string; createdAt: number; activateAt: number; retiredAt: number | null }]
  >(`
    INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_sealed, origin, created_at, activate_at, retired_at)
    VALUES (@kid, @alg, @publicJwk, @privateJwkSealed, @origin, @createdAt, @activateAt, @retiredAt)
  `);
  const signingKeyList = statement<[], SigningKeyRow>('SELECT * FROM signing_keys ORDER BY activate_at, kid');
  const signingKeyRetire = statement<[number, string]>(
    'UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL',
  );
  const signingKeysBump = statement<[]>('UPDATE signing_keys_version SET version = version + 1 WHERE id = 1');
  const signingKeysVersion = statement<[], { version: number }>('SELECT version FROM signing_keys_version WHERE id = 1');
  // The change and the version bump commit together: a reader never sees a new key set under an old
  // version (and so never misses a rotation).
  const signingKeyAdd = db.transaction((key: SigningKeyRecord) => {
    signingKeyInsert().run({
      kid: key.kid,
      alg: key.alg,
      publicJwk: JSON.stringify(key.publicJwk),
      privateJwkSealed: key.privateJwkSealed,
      origin: key.origin,
      createdAt: key.createdAt,
      activateAt: key.activateAt,
      retiredAt: key.retiredAt,
    });
    signingKeysBump().run();
  });
  const signingKeyRetireOnce = db.transaction((kid: string, at: number) => {
    const retired = signingKeyRetire().run(at, kid).changes === 1;
    if (retired) signingKeysBump().run();
    return retired;
  });

  const signingKeys: SigningKeyRepository = {
    add: (key) =>
      call(
        () => {
          signingKeyAdd(key);
        },
        () => 'kid',
      ),
    list: () => call(() => signingKeyList().all().map(signingKeyRow)),
    retire: (kid, at) => call(() => signingKeyRetireOnce(kid, at)),
    version: () => call(() => signingKeysVersion().get()?.version ?? 0),
  };

  // --- audit log ----------------------------------------------------------------------------

  const auditLast = statement<[], { seq: number; hash: string }>(
    'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
  );
  const auditInsert = statement<
    [{ seq: number; at: number; event: string; eventId: number; details: string; prevHash: string; hash: string }],
    AuditRow
  >(`
    INSERT INTO audit_log (seq, at, event, event_id, details, prev_hash, hash)
    VALUES (@seq, @at, @event, @eventId, @details, @prevHash, @hash)
    RETURNING *
  `);
  const auditList = statement<[number, number], AuditRow>('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?');
  const auditListSince = statement<[number, number, number], AuditRow>(
    'SELECT * FROM audit_log WHERE at >= ? AND seq > ? ORDER BY seq LIMIT ?',
  );
  const auditHead = statement<[], AuditRow>('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1');
  type AuditInput = Parameters<AuditRepository['append']>[0];
  type AuditSeal = Parameters<AuditRepository['append']>[1];
  // Read the last entry, seal and insert under one write lock (IMMEDIATE: taken before the read),
  // so two appends, from this connection or another process, never share a seq or a prevHash.
  // A seal that throws rolls the transaction back and nothing is appended.
  const auditAppend = db.transaction((entry: AuditInput, seal: AuditSeal) => {
    const last = auditLast().get();
    const seq = last ? last.seq + 1 : 1;
    const prevHash = last ? last.hash : AUDIT_GENESIS_HASH;
    const hash = seal(seq, prevHash);
    const row = auditInsert().get({
      seq,
      at: entry.at,
      event: entry.event,
      eventId: entry.eventId,
      details: JSON.stringify(entry.details),
      prevHash,
      hash,
    });
    if (!row) throw new Error('INSERT … RETURNING returned no row');
    return auditRow(row);
  });

  const audit: AuditRepository = {
    append: (entry, seal) => call(() => auditAppend.immediate(entry, seal), () => 'seq'),
    list: (afterSeq, limit) => call(() => auditList().all(afterSeq, limit).map(auditRow)),
    listSince: (since, afterSeq, limit) => call(() => auditListSince().all(since, afterSeq, limit).map(auditRow)),
    head: () =>
      call(() => {
        const row = auditHead().get();
        return row && auditRow(row);
      }),
  };

  // --- account evidence ---------------------------------------------------------------------

  const evidenceInsert = statement<
    [{ id: string; personId: string; action: string; reason: string; evidence: string; operator: string; createdAt: number }]
  >(`
    INSERT INTO account_evidence (id, person_id, action, reason, evidence, operator, created_at)
    VALUES (@id, @personId, @action, @reason, @evidence, @operator, @createdAt)
  `);
  const evidenceList = statement<[string], AccountEvidenceRow>(
    'SELECT * FROM account_evidence WHERE person_id = ? ORDER BY created_at, id',
  );

  const accountEvidence: AccountEvidenceRepository = {
    add: (record) =>
      call(
        () => {
          evidenceInsert().run({
            id: record.id,
            personId: record.personId,
            action: record.action,
            reason: record.reason,
            evidence: JSON.stringify(record.evidence),
            operator: record.operator,
            createdAt: record.createdAt,
          });
        },
        () => 'id',
      ),
    listForPerson: (personId) => call(() => evidenceList().all(personId).map(accountEvidenceRow)),
  };

  // --- maintenance --------------------------------------------------------------------------

  const purgeOidc = statement<[number]>('DELETE FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= ?');
  const purgeCounters = statement<[number]>('DELETE FROM counters WHERE expires_at <= ?');
  const selectOne = statement<[]>('SELECT 1');
  const purgeJobs = statement<[number]>('DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?');
  const purgeOrgGrants = statement<[number]>('DELETE FROM org_grants WHERE expires_at <= ?');
  const purge = db.transaction(
    (at: number) =>
      purgeOidc().run(at).changes +
      purgeCounters().run(at).changes +
      purgeJobs().run(at).changes +
      purgeOrgGrants().run(at).changes,
  );

  return {
    kind: 'sqlite',
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
    copy: createSqliteCopy(() => db, (fn) => call(fn)),
    migrate: () => call(() => migrate(db)),
    ping: () =>
      call(() => {
        selectOne().get();
      }),
    purgeExpired: (at) => call(() => purge(at)),
    close: async () => {
      if (db.open) db.close();
    },
  };
}
