import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  /** SQL, run first. */
  up: string;
  /**
   * What SQL alone cannot say (rebuilding a table: https://www.sqlite.org/lang_altertable.html §7),
   * run after `up` in the same transaction. Foreign key enforcement is off while it runs (step 1:
   * the pragma cannot change inside a transaction) and `PRAGMA foreign_key_check` must come back
   * empty before the migration is committed (step 10).
   */
  run?: (db: Database.Database) => void;
}

const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** The CHECK of migration 8 on persons.lock_reason, as it is stored in sqlite_schema. */
const LOCK_REASON_CHECK_8 = "lock_reason IN ('operator', 'failures', 'self')";
const LOCK_REASON_CHECK_10 = "lock_reason IN ('operator', 'failures', 'self', 'fraud')";

/**
 * Widens the CHECK on persons.lock_reason. SQLite cannot alter a constraint, so the table is
 * rebuilt the documented safe way (https://www.sqlite.org/lang_altertable.html §7, steps 3–8):
 * remember its indexes and triggers, create persons_new from the stored CREATE statement with only
 * the CHECK changed, copy every row, drop persons, rename persons_new, and create the indexes and
 * triggers again. No table of this schema has a foreign key to persons; should one appear (a table
 * added by hand), the migration stops with nothing changed rather than risk it (keeping such a key
 * working needs steps of its own), and foreign_key_check runs before the commit anyway.
 */
function widenLockReasonCheck(db: Database.Database): void {
  const table = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'persons'").get();
  if (!table) throw new Error('migration 10: the persons table is missing');
  if (table.sql.split(LOCK_REASON_CHECK_8).length !== 2) {
    throw new Error('migration 10: the persons table does not have the lock_reason CHECK of migration 8 exactly once');
  }
  const createNew = table.sql.replace(LOCK_REASON_CHECK_8, LOCK_REASON_CHECK_10).replace(/^CREATE TABLE\s+("?)persons\1\s*\(/, 'CREATE TABLE persons_new (');
  if (!createNew.startsWith('CREATE TABLE persons_new (')) throw new Error('migration 10: unexpected CREATE statement for persons');

  const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all();
  for (const { name } of tables) {
    const keys = db.prepare<[string], { table: string }>('SELECT "table" FROM pragma_foreign_key_list(?)').all(name);
    if (keys.some((k) => k.table.toLowerCase() === 'persons')) {
      throw new Error(`migration 10: ${name} has a foreign key to persons; the rebuild must be extended to keep it`);
    }
  }

  // Step 3: the indexes and triggers to make again (automatic indexes have no SQL: CREATE TABLE makes them).
  const dependents = db
    .prepare<[], { sql: string }>("SELECT sql FROM sqlite_schema WHERE tbl_name = 'persons' AND type IN ('index', 'trigger') AND sql IS NOT NULL")
    .all();
  const columns = db
    .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('persons')")
    .all()
    .map((c) => quoteIdentifier(c.name))
    .join(', ');
  const before = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM persons').get()?.n ?? 0;
  db.exec(createNew);
  db.exec(`INSERT INTO persons_new (${columns}) SELECT ${columns} FROM persons`);
  const copied = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM persons_new').get()?.n ?? 0;
  if (copied !== before) throw new Error(`migration 10: ${copied} of ${before} persons copied`);
  db.exec('DROP TABLE persons');
  db.exec('ALTER TABLE persons_new RENAME TO persons');
  for (const { sql } of dependents) db.exec(sql);
}

/**
 * Ordered schema migrations. Never edit an applied migration; append a new one.
 * Times are epoch milliseconds (INTEGER); JSON is stored as TEXT; booleans as 0/1.
 * Tables are STRICT so a wrongly typed bind fails instead of being silently coerced.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: `
      CREATE TABLE oidc_models (
        model       TEXT NOT NULL,
        id          TEXT NOT NULL,
        payload     TEXT NOT NULL CHECK (json_valid(payload)),
        uid         TEXT,
        user_code   TEXT,
        grant_id    TEXT,
        expires_at  INTEGER,
        consumed_at INTEGER,
        PRIMARY KEY (model, id)
      ) STRICT;
      CREATE INDEX oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
      CREATE INDEX oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
      CREATE INDEX oidc_models_grant_id ON oidc_models (model, grant_id) WHERE grant_id IS NOT NULL;
      CREATE INDEX oidc_models_expires_at ON oidc_models (expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE persons (
        id             TEXT PRIMARY KEY NOT NULL,
        pid            TEXT NOT NULL UNIQUE,
        name           TEXT NOT NULL,
        family_name    TEXT NOT NULL,
        given_name     TEXT NOT NULL,
        birthdate      TEXT NOT NULL,
        gender         TEXT NOT NULL CHECK (gender IN ('male', 'female')),
        email          TEXT,
        email_verified INTEGER NOT NULL CHECK (email_verified IN (0, 1)),
        phone          TEXT,
        phone_verified INTEGER NOT NULL CHECK (phone_verified IN (0, 1)),
        address        TEXT CHECK (address IS NULL OR json_valid(address)),
        level          INTEGER NOT NULL CHECK (level IN (1, 2)),
        password_hash  TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('active', 'locked')),
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX persons_created_at ON persons (created_at, id);

      CREATE TABLE portals (
        client_id         TEXT PRIMARY KEY NOT NULL,
        name              TEXT NOT NULL,
        metadata          TEXT NOT NULL CHECK (json_valid(metadata)),
        secret_ciphertext TEXT,
        sector            TEXT NOT NULL,
        national_id       INTEGER NOT NULL CHECK (national_id IN (0, 1)),
        national_id_basis TEXT,
        disabled          INTEGER NOT NULL CHECK (disabled IN (0, 1)),
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE consents (
        person_id  TEXT NOT NULL,
        client_id  TEXT NOT NULL,
        scopes     TEXT NOT NULL CHECK (json_valid(scopes)),
        claims     TEXT NOT NULL CHECK (json_valid(claims)),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (person_id, client_id)
      ) STRICT;

      CREATE TABLE counters (
        key        TEXT PRIMARY KEY NOT NULL,
        count      INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX counters_expires_at ON counters (expires_at);
    `,
  },
  {
    version: 2,
    name: 'second factors and recovery codes',
    up: `
      CREATE TABLE factors (
        id                TEXT PRIMARY KEY NOT NULL,
        person_id         TEXT NOT NULL,
        type              TEXT NOT NULL CHECK (type IN ('totp', 'passkey')),
        label             TEXT NOT NULL,
        confirmed         INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
        secret_ciphertext TEXT,
        last_step         INTEGER,
        credential_id     TEXT UNIQUE,
        public_key        TEXT,
        sign_count        INTEGER,
        transports        TEXT CHECK (transports IS NULL OR json_valid(transports)),
        created_at        INTEGER NOT NULL,
        last_used_at      INTEGER
      ) STRICT;
      CREATE INDEX factors_person_id ON factors (person_id, created_at);

      CREATE TABLE recovery_codes (
        person_id  TEXT NOT NULL,
        code_hash  TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        used_at    INTEGER,
        PRIMARY KEY (person_id, code_hash)
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'durable jobs (back-channel logout deliveries, session expiry)',
    up: `
      CREATE TABLE jobs (
        id           TEXT PRIMARY KEY NOT NULL,
        kind         TEXT NOT NULL,
        payload      TEXT NOT NULL CHECK (json_valid(payload)),
        status       TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
        attempts     INTEGER NOT NULL,
        due_at       INTEGER NOT NULL,
        lease_until  INTEGER NOT NULL,
        last_outcome TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        expires_at   INTEGER
      ) STRICT;
      CREATE INDEX jobs_due ON jobs (kind, due_at) WHERE status = 'pending';
      CREATE INDEX jobs_kind_created ON jobs (kind, created_at);
      CREATE INDEX jobs_expires_at ON jobs (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'enterprises, representatives, delegations, org grants',
    up: `
      CREATE TABLE enterprises (
        code        TEXT PRIMARY KEY NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'dissolved')),
        parent_code TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX enterprises_parent_code ON enterprises (parent_code, code) WHERE parent_code IS NOT NULL;

      CREATE TABLE org_representatives (
        enterprise_code TEXT NOT NULL,
        person_id       TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        PRIMARY KEY (enterprise_code, person_id)
      ) STRICT;
      CREATE INDEX org_representatives_person_id ON org_representatives (person_id, enterprise_code);

      CREATE TABLE delegations (
        enterprise_code TEXT NOT NULL,
        person_id       TEXT NOT NULL,
        role            TEXT NOT NULL,
        until           INTEGER,
        portals         TEXT CHECK (portals IS NULL OR json_valid(portals)),
        granted_by      TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        revoked_at      INTEGER,
        PRIMARY KEY (enterprise_code, person_id)
      ) STRICT;
      CREATE INDEX delegations_person_id ON delegations (person_id, enterprise_code);

      CREATE TABLE org_grants (
        grant_id        TEXT PRIMARY KEY NOT NULL,
        enterprise_code TEXT NOT NULL,
        person_id       TEXT NOT NULL,
        client_id       TEXT NOT NULL,
        session_uid     TEXT,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX org_grants_enterprise ON org_grants (enterprise_code, person_id);
      CREATE INDEX org_grants_expires_at ON org_grants (expires_at);
    `,
  },
  {
    version: 5,
    name: 'signing keys, audit log, account evidence',
    up: `
      CREATE TABLE signing_keys (
        kid                TEXT PRIMARY KEY NOT NULL,
        alg                TEXT NOT NULL,
        public_jwk         TEXT NOT NULL CHECK (json_valid(public_jwk)),
        private_jwk_sealed TEXT NOT NULL,
        origin             TEXT NOT NULL,
        created_at         INTEGER NOT NULL,
        activate_at        INTEGER NOT NULL,
        retired_at         INTEGER
      ) STRICT;
      CREATE INDEX signing_keys_activate_at ON signing_keys (activate_at, kid);

      -- One row: bumped in the same transaction as every add/retire, so instances notice a rotation
      -- by reading one integer.
      CREATE TABLE signing_keys_version (
        id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
        version INTEGER NOT NULL
      ) STRICT;
      INSERT INTO signing_keys_version (id, version) VALUES (1, 0);

      CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY NOT NULL CHECK (seq > 0),
        at        INTEGER NOT NULL,
        event     TEXT NOT NULL,
        event_id  INTEGER NOT NULL,
        details   TEXT NOT NULL CHECK (json_valid(details)),
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_at ON audit_log (at);

      CREATE TABLE account_evidence (
        id         TEXT PRIMARY KEY NOT NULL,
        person_id  TEXT NOT NULL,
        action     TEXT NOT NULL,
        reason     TEXT NOT NULL,
        evidence   TEXT NOT NULL CHECK (json_valid(evidence)),
        operator   TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX account_evidence_person_id ON account_evidence (person_id, created_at);
    `,
  },
  {
    version: 6,
    name: 'portal revisions',
    up: `
      -- Bumped by every change of a portal: instances keep a portal's decoded metadata while it holds.
      ALTER TABLE portals ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 7,
    name: 'oidc records by account and client; persons access revocation',
    up: `
      -- Copied from the payload at every upsert: a person's sessions, and every grant and token of a
      -- person (or of a person at one portal, or of one portal) are found and ended by an index.
      ALTER TABLE oidc_models ADD COLUMN account_id TEXT;
      ALTER TABLE oidc_models ADD COLUMN client_id TEXT;
      UPDATE oidc_models SET
        account_id = CASE WHEN json_type(payload, '$.accountId') = 'text' THEN json_extract(payload, '$.accountId') END,
        client_id = CASE WHEN json_type(payload, '$.clientId') = 'text' THEN json_extract(payload, '$.clientId') END;
      CREATE INDEX oidc_models_account ON oidc_models (account_id, model) WHERE account_id IS NOT NULL;
      CREATE INDEX oidc_models_client ON oidc_models (client_id, model) WHERE client_id IS NOT NULL;
      -- Sessions and tokens from before this instant (epoch ms) count for nothing.
      ALTER TABLE persons ADD COLUMN access_revoked_before INTEGER;
    `,
  },
  {
    version: 8,
    name: 'persons contact lists, lock reasons and flags; activity',
    up: `
      -- The contact list as JSON; NULL means "never stored" (a row from before lists existed, read
      -- as the list made from phone and email), which is not the same as an empty list.
      ALTER TABLE persons ADD COLUMN contacts TEXT CHECK (contacts IS NULL OR json_valid(contacts));
      -- Compare-and-set revision of the list: every change raises it by one.
      ALTER TABLE persons ADD COLUMN contacts_rev INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE persons ADD COLUMN notice_contact TEXT;
      -- NULL while active, and for locks from before it was recorded (an operator's).
      ALTER TABLE persons ADD COLUMN lock_reason TEXT CHECK (lock_reason IS NULL OR lock_reason IN ('operator', 'failures', 'self'));
      ALTER TABLE persons ADD COLUMN password_reset_required INTEGER NOT NULL DEFAULT 0 CHECK (password_reset_required IN (0, 1));
      ALTER TABLE persons ADD COLUMN attention TEXT CHECK (attention IS NULL OR json_valid(attention));

      -- A person's own history, read by person and time (newest first), purged by expires_at.
      CREATE TABLE activity (
        id         TEXT PRIMARY KEY NOT NULL,
        person_id  TEXT NOT NULL,
        at         INTEGER NOT NULL,
        event      TEXT NOT NULL,
        details    TEXT NOT NULL CHECK (json_valid(details)),
        expires_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX activity_person_at ON activity (person_id, at DESC, id DESC);
      CREATE INDEX activity_expires_at ON activity (expires_at);
    `,
  },
  {
    version: 9,
    name: 'portals previous secret and paging',
    up: `
      -- The secret replaced by the last rotation and when it stops being accepted: both set or both
      -- NULL (NULL on every row from before, which never rotated).
      ALTER TABLE portals ADD COLUMN previous_secret_ciphertext TEXT;
      ALTER TABLE portals ADD COLUMN previous_secret_expires_at INTEGER
        CHECK ((previous_secret_expires_at IS NULL) = (previous_secret_ciphertext IS NULL));
      -- The console's list of portals, a page at a time in creation order.
      CREATE INDEX portals_created_at ON portals (created_at, client_id);
    `,
  },
  {
    version: 10,
    name: 'operators, approvals, audit search, fraud locks',
    up: `
      -- The console's operators: a person and their roles (a JSON list of role names, checked by the
      -- store); rev is the compare-and-set revision of the roles.
      CREATE TABLE operators (
        person_id  TEXT PRIMARY KEY NOT NULL,
        roles      TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
        added_by   TEXT NOT NULL,
        added_at   INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        rev        INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX operators_added_at ON operators (added_at, person_id);

      -- Two-person approvals. A pending row past expires_at has lapsed; decide refuses it.
      CREATE TABLE approvals (
        id              TEXT PRIMARY KEY NOT NULL,
        action          TEXT NOT NULL,
        subject         TEXT NOT NULL,
        params          TEXT NOT NULL CHECK (json_valid(params)),
        proposed_by     TEXT NOT NULL,
        proposed_role   TEXT NOT NULL,
        reason          TEXT NOT NULL,
        evidence        TEXT,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        decided_by      TEXT,
        decided_role    TEXT,
        decided_at      INTEGER,
        decision_reason TEXT,
        outcome         TEXT
      ) STRICT;
      CREATE INDEX approvals_created ON approvals (created_at, id);
      CREATE INDEX approvals_status_created ON approvals (status, created_at, id);
      CREATE INDEX approvals_pending ON approvals (action, subject, expires_at) WHERE status = 'pending';

      -- The operators' audit search, newest first by seq, each filter served by an index. The detail
      -- indexes are on expressions (https://www.sqlite.org/expridx.html): a query uses one only when
      -- it names the identical expression and implies the same WHERE (audit.ts builds them so). Only
      -- string values are indexed: a detail that is a number, a list or an object never matches.
      CREATE INDEX audit_log_event ON audit_log (event, seq);
      CREATE INDEX audit_log_event_at ON audit_log (event, at);
      CREATE INDEX audit_log_person ON audit_log (json_extract(details, '$.person'), seq)
        WHERE json_type(details, '$.person') = 'text';
      CREATE INDEX audit_log_portal ON audit_log (json_extract(details, '$.portal'), seq)
        WHERE json_type(details, '$.portal') = 'text';
      CREATE INDEX audit_log_operator ON audit_log (json_extract(details, '$.operator'), seq)
        WHERE json_type(details, '$.operator') = 'text';
    `,
    // Persons: lock_reason may now be 'fraud' (a lock whose unlock needs a second operator).
    run: widenLockReasonCheck,
  },
  {
    version: 11,
    name: 'usage statistics',
    up: `
      -- Usage statistics (metrics/usage.service.ts): one row per Vietnam day, portal and key (a closed
      -- set: signins, acr:<acr>, hour:<HH>:<acr>, failure:<reason> …), added to atomically by
      -- INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n. Clustered on the key, which is what
      -- every read ranges over (https://www.sqlite.org/withoutrowid.html: no separate rowid b-tree).
      CREATE TABLE usage_counts (
        day    TEXT NOT NULL,
        portal TEXT NOT NULL,
        key    TEXT NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (day, portal, key)
      ) STRICT, WITHOUT ROWID;
      -- One portal's days (stats usage --portal, the console's portal page).
      CREATE INDEX usage_counts_portal ON usage_counts (portal, day);
      -- Pseudonymous tags (an HMAC of a person under a key of that day) for a day's distinct count;
      -- deleted when the day is compacted into usage_counts' key 'citizens'.
      CREATE TABLE usage_tags (
        day    TEXT NOT NULL,
        portal TEXT NOT NULL,
        tag    TEXT NOT NULL,
        PRIMARY KEY (day, portal, tag)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 12,
    name: 'usage sums by day and key',
    up: `
      -- The sums over portals of the console's all-portals charts (usage.ts: sums): a day's rows of
      -- some keys (acr:*, hour:*) whatever the portal. The primary key (day, portal, key) puts the
      -- portal between the day and the key, so without this index a day's every row is read; with
      -- it each day is one range of keys. n is in the index so the sums never visit the table
      -- (a covering index, https://www.sqlite.org/queryplanner.html §1.7).
      CREATE INDEX usage_counts_day_key ON usage_counts (day, key, n);
    `,
  },
  {
    version: 13,
    name: 'security event streams and their events',
    up: `
      -- OpenID Shared Signals Framework 1.0 (events/): one stream per portal (SSF 1.0 §8.1.1.1 lets
      -- a transmitter refuse a second), and the SETs queued for it. seq orders a stream's events:
      -- the table's rowid (INTEGER PRIMARY KEY), increasing under SQLite's single writer.
      CREATE TABLE ssf_streams (
        id                   TEXT PRIMARY KEY NOT NULL,
        client_id            TEXT NOT NULL UNIQUE,
        events_requested     TEXT NOT NULL,
        delivery_method      TEXT NOT NULL,
        endpoint_url         TEXT,
        authorization_header TEXT,
        description          TEXT,
        status               TEXT NOT NULL,
        status_reason        TEXT,
        created_at           INTEGER NOT NULL,
        updated_at           INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE ssf_events (
        seq             INTEGER PRIMARY KEY,
        stream_id       TEXT NOT NULL,
        jti             TEXT NOT NULL,
        set_jwt         TEXT NOT NULL,
        types           TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_outcome    TEXT,
        last_attempt_at INTEGER,
        delivered_at    INTEGER,
        failed          INTEGER NOT NULL DEFAULT 0,
        UNIQUE (stream_id, jti)
      ) STRICT;
      -- A stream's line (undelivered, not failed, by seq) and the purge by expiry.
      CREATE INDEX ssf_events_line ON ssf_events (stream_id, delivered_at, failed, seq);
      CREATE INDEX ssf_events_expiry ON ssf_events (expires_at);
    `,
  },
];

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction so that two processes
 * migrating the same file at once serialise on the write lock and the loser sees the
 * version already recorded. Idempotent.
 */
export function migrate(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY NOT NULL,
      name       TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT
  `);
  const isApplied = db.prepare<[number], { version: number }>('SELECT version FROM schema_migrations WHERE version = ?');
  const record = db.prepare<[number, string, number]>(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );

  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (isApplied.get(migration.version)) continue;
    const apply = db.transaction(() => {
      // Checked again under the write lock: another process may have applied it meanwhile.
      if (isApplied.get(migration.version)) return;
      db.exec(migration.up);
      if (migration.run) {
        migration.run(db);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new Error(`migration ${migration.version} would break ${broken.length} foreign key reference(s)`);
      }
      record.run(migration.version, migration.name, Date.now());
    });
    // https://www.sqlite.org/lang_altertable.html §7 step 1: foreign keys off around a rebuild
    // (outside the transaction: inside one the pragma does nothing), on again afterwards (step 12).
    const foreignKeys = migration.run !== undefined && db.pragma('foreign_keys', { simple: true }) === 1;
    if (foreignKeys) db.pragma('foreign_keys = OFF');
    try {
      apply.immediate();
    } finally {
      if (foreignKeys) db.pragma('foreign_keys = ON');
    }
  }
}
