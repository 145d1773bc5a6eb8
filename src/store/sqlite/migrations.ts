import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  up: string;
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
    const apply = db.transaction(() => {
      if (isApplied.get(migration.version)) return;
      db.exec(migration.up);
      record.run(migration.version, migration.name, Date.now());
    });
    apply.immediate();
  }
}
