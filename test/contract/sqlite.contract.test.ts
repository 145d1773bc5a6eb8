import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { createStore } from '../../src/store/create-store.js';
import { auditSearchQuery } from '../../src/store/sqlite/audit.js';
import { migrate, migrations } from '../../src/store/sqlite/migrations.js';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { StoreConflictError, StoreUnavailableError, type Store } from '../../src/store/types.js';
import { storeContract } from './store-contract.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-store-'));
let seq = 0;
const tempFile = (): string => path.join(dir, `store-${++seq}.db`);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

storeContract('sqlite (temp file)', async ({ now }) => {
  const store = createSqliteStore({ filename: tempFile(), now });
  await store.migrate();
  return store;
});

storeContract('sqlite (:memory: via createStore)', ({ now }) => createStore('sqlite::memory:', { now }));

describe('sqlite specifics', () => {
  const open: Store[] = [];
  const track = (store: Store): Store => {
    open.push(store);
    return store;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  function raw(file: string): Database.Database {
    return new Database(file, { readonly: true });
  }

  it('puts the file in WAL mode', async () => {
    const file = tempFile();
    await track(createSqliteStore({ filename: file })).migrate();
    const db = raw(file);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('records each migration once in schema_migrations', async () => {
    const file = tempFile();
    const store = track(createSqliteStore({ filename: file }));
    await store.migrate();
    await store.migrate();
    await track(createSqliteStore({ filename: file })).migrate();
    const db = raw(file);
    try {
      const rows = db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
        version: number;
        name: string;
        applied_at: number;
      }[];
      expect(rows.map((r) => [r.version, r.name])).toEqual(migrations.map((m) => [m.version, m.name]));
      for (const r of rows) expect(typeof r.applied_at).toBe('number');
    } finally {
      db.close();
    }
  });

  it('a second connection on the same file sees rows written by the first (CLI and server share it)', async () => {
    const file = tempFile();
    const server = track(createSqliteStore({ filename: file }));
    await server.migrate();
    const cli = track(createSqliteStore({ filename: file }));
    await cli.migrate();

    const person = await cli.persons.create({
      id: randomUUID(),
      pid: '001090000001',
      name: 'Nguyễn Văn Á',
      familyName: 'Nguyễn',
      givenName: 'Văn Á',
      birthdate: '1990-01-01',
      gender: 'male',
      email: null,
      emailVerified: false,
      phone: null,
      phoneVerified: false,
      address: null,
      level: 2,
      passwordHash: 'h',
      status: 'active',
    });
    await expect(server.persons.findByPid('001090000001')).resolves.toEqual(person);

    await server.oidc.upsert('AuthorizationCode', 'code-1', { grantId: 'g' }, 60);
    await expect(cli.oidc.find('AuthorizationCode', 'code-1')).resolves.toEqual({ grantId: 'g' });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? server : cli).oidc.consume('AuthorizationCode', 'code-1')),
    );
    expect(results.filter((r) => r)).toHaveLength(1);

    const now = Date.now();
    await server.counters.increment('login:x', 60_000, now);
    await expect(cli.counters.increment('login:x', 60_000, now)).resolves.toMatchObject({ count: 2 });
    await expect(cli.persons.setStatus(person.id, 'locked')).resolves.toBe(true);
    await expect(server.persons.findById(person.id)).resolves.toMatchObject({ status: 'locked' });
  });

  it('upgrades a version-1 database to the current schema, keeping its data', async () => {
    const file = tempFile();
    const v1 = migrations.find((m) => m.version === 1);
    if (!v1) throw new Error('migration 1 is missing');
    const db = new Database(file);
    try {
      db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
      db.exec(v1.up);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, ?, 0)').run(v1.name);
      db.prepare("INSERT INTO counters (key, count, updated_at, expires_at) VALUES ('login:old', 3, 0, 9e15)").run();
    } finally {
      db.close();
    }
    const store = track(createSqliteStore({ filename: file }));
    await store.migrate();
    await expect(store.counters.get('login:old', 1)).resolves.toMatchObject({ count: 3 });
    await store.recoveryCodes.replace('p', ['h1', 'h2'], 1);
    await expect(store.recoveryCodes.countUnused('p')).resolves.toBe(2);
    const raw2 = raw(file);
    try {
      const versions = raw2.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
      expect(versions).toEqual(migrations.map((m) => m.version));
    } finally {
      raw2.close();
    }
  });

  it('upgrades a version-7 database: its persons read with the list of their fields until the first change, locks without a reason', async () => {
    const file = tempFile();
    const db = new Database(file);
    try {
      db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
      for (const m of migrations.filter((x) => x.version <= 7)) {
        db.exec(m.up);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
      }
      db.prepare(`INSERT INTO persons (id, pid, name, family_name, given_name, birthdate, gender, email, email_verified, phone, phone_verified,
                    address, level, password_hash, status, access_revoked_before, created_at, updated_at)
                  VALUES ('old-1', '001090000777', 'Lê Văn Cũ', 'Lê', 'Văn Cũ', '1970-05-06', 'male', 'cu@example.vn', 0, '+84907777777', 1,
                    NULL, 1, 'h', 'locked', NULL, 1000, 2000)`).run();
    } finally {
      db.close();
    }
    const store = track(createSqliteStore({ filename: file, now: () => 5000 }));
    await store.migrate();
    const person = await store.persons.findById('old-1');
    expect(person).toMatchObject({
      status: 'locked', lockReason: null, contactsRev: 0, noticeContact: null, passwordResetRequired: false, attention: null,
      phone: '+84907777777', phoneVerified: true, email: 'cu@example.vn', emailVerified: false,
      contacts: [
        { id: 'phone-0', kind: 'phone', value: '+84907777777', verified: true, addedAt: 1000, verifiedAt: 1000 },
        { id: 'email-0', kind: 'email', value: 'cu@example.vn', verified: false, addedAt: 1000, verifiedAt: null },
      ],
    });
    // Read again, the same list (nothing was written by reading).
    await expect(store.persons.findById('old-1')).resolves.toEqual(person);
    await expect(store.persons.updateContacts('old-1', 0, [person!.contacts[0]!], null)).resolves.toBe(true);
    await expect(store.persons.findById('old-1')).resolves.toMatchObject({ contacts: [person!.contacts[0]], contactsRev: 1, email: null, updatedAt: 5000 });
    const check = raw(file);
    try {
      expect(check.prepare("SELECT contacts_rev, json_array_length(contacts) AS n FROM persons WHERE id = 'old-1'").get()).toEqual({ contacts_rev: 1, n: 1 });
      // The activity table and its index by person and time exist.
      const plan = check.prepare("EXPLAIN QUERY PLAN SELECT * FROM activity WHERE person_id = 'p' AND at >= 0 AND expires_at > 0 AND (at, id) < (5, 'x') ORDER BY at DESC, id DESC LIMIT 20").all() as { detail: string }[];
      expect(plan.map((r) => r.detail).join(' ')).toMatch(/USING INDEX activity_person_at/);
      expect(plan.map((r) => r.detail).join(' ')).not.toMatch(/TEMP B-TREE/);
    } finally {
      check.close();
    }
  });

  it('upgrades a version-8 database: its portals read with no previous secret, and can rotate and page', async () => {
    const file = tempFile();
    const db = new Database(file);
    try {
      db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
      for (const m of migrations.filter((x) => x.version <= 8)) {
        db.exec(m.up);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
      }
      const insertPortal = db.prepare(`INSERT INTO portals (client_id, name, metadata, secret_ciphertext, sector, national_id, national_id_basis,
                                         disabled, created_at, updated_at, revision)
                                       VALUES (?, 'Cổng cũ', '{"redirect_uris":["https://cu.example.vn/cb"]}', 'v1.k.old', 'cu.example.vn', 0, NULL, 0, ?, ?, 4)`);
      insertPortal.run('old-b', 1000, 1000);
      insertPortal.run('old-a', 1000, 2000);
    } finally {
      db.close();
    }
    const store = track(createSqliteStore({ filename: file, now: () => 5000 }));
    await store.migrate();
    const old = await store.portals.find('old-a');
    expect(old).toEqual({
      clientId: 'old-a', name: 'Cổng cũ', metadata: { redirect_uris: ['https://cu.example.vn/cb'] }, secretCiphertext: 'v1.k.old', previousSecret: null,
      sector: 'cu.example.vn', nationalId: false, nationalIdBasis: null, disabled: false, createdAt: 1000, updatedAt: 2000,
    });
    await expect(store.portals.count()).resolves.toBe(2);
    await expect(store.portals.page({ limit: 10 })).resolves.toEqual([old, await store.portals.find('old-b')]);
    await expect(store.portals.rotateSecret('old-a', 'v1.k.new', { ciphertext: 'v1.k.old', expiresAt: 9000 })).resolves.toBe(true);
    await expect(store.portals.find('old-a')).resolves.toMatchObject({ secretCiphertext: 'v1.k.new', previousSecret: { ciphertext: 'v1.k.old', expiresAt: 9000 }, updatedAt: 5000 });
    await expect(store.portals.revision('old-a')).resolves.toBe(5);
    const check = raw(file);
    try {
      // The two columns are set together or not at all.
      const rw = new Database(file);
      try {
        expect(() => rw.prepare("UPDATE portals SET previous_secret_expires_at = NULL WHERE client_id = 'old-a'").run()).toThrow(/CHECK/);
      } finally {
        rw.close();
      }
      // The console's pages are read through the index in creation order, without sorting.
      const plan = check.prepare('EXPLAIN QUERY PLAN SELECT * FROM portals WHERE (created_at, client_id) > (?, ?) ORDER BY created_at, client_id LIMIT 20').all(0, '') as { detail: string }[];
      expect(plan.map((r) => r.detail).join(' ')).toMatch(/USING INDEX portals_created_at/);
      expect(plan.map((r) => r.detail).join(' ')).not.toMatch(/TEMP B-TREE/);
    } finally {
      check.close();
    }
  });

  /** A database file at schema version 8 (before portals' previous secret, operators and fraud locks), as that code left it. */
  function version8(file: string, extra?: (db: Database.Database) => void): void {
    const db = new Database(file);
    try {
      db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT');
      for (const m of migrations.filter((x) => x.version <= 8)) {
        db.exec(m.up);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
      }
      const person = db.prepare(`INSERT INTO persons (id, pid, name, family_name, given_name, birthdate, gender, email, email_verified, phone,
                                   phone_verified, address, level, password_hash, status, access_revoked_before, contacts, contacts_rev,
                                   notice_contact, lock_reason, password_reset_required, attention, created_at, updated_at)
                                 VALUES (@id, @pid, 'Lê Văn Cũ', 'Lê', 'Văn Cũ', '1970-05-06', 'male', @email, 1, NULL, 0, @address, 2, 'h',
                                   @status, @revoked, @contacts, @rev, NULL, @lockReason, @reset, NULL, @createdAt, @createdAt)`);
      const contacts = JSON.stringify([{ id: 'c1', kind: 'email', value: 'cu@example.vn', verified: true, addedAt: 1000, verifiedAt: 1000 }]);
      person.run({ id: 'p-active', pid: '001090000001', email: 'cu@example.vn', address: '{"locality":"Huế"}', status: 'active', revoked: null, contacts, rev: 3, lockReason: null, reset: 0, createdAt: 1000 });
      person.run({ id: 'p-self', pid: '001090000002', email: null, address: null, status: 'locked', revoked: 1500, contacts: '[]', rev: 0, lockReason: 'self', reset: 1, createdAt: 1100 });
      person.run({ id: 'p-legacy', pid: '001090000003', email: null, address: null, status: 'locked', revoked: null, contacts: null, rev: 0, lockReason: null, reset: 0, createdAt: 900 });
      const audit = db.prepare("INSERT INTO audit_log (seq, at, event, event_id, details, prev_hash, hash) VALUES (?, ?, ?, 1, ?, 'p', 'h')");
      audit.run(1, 1000, 'ACCOUNT_LOCKED', JSON.stringify({ person: 'p-self', operator: 'op-1', lock_reason: 'self' }));
      audit.run(2, 2000, 'SIGN_IN_COMPLETED', JSON.stringify({ person: 'p-active', portal: 'dvc' }));
      audit.run(3, 3000, 'SIGN_IN_COMPLETED', JSON.stringify({ person: ['p-active'], portal: 7 }));
      extra?.(db);
    } finally {
      db.close();
    }
  }

  it('upgrades a version-8 database with persons: every row kept as it was, the indexes made again, fraud locks possible, old audit entries searchable', async () => {
    const file = tempFile();
    version8(file);
    const snapshot = () => {
      const db = raw(file);
      try {
        return {
          rows: db.prepare('SELECT * FROM persons ORDER BY id').all(),
          indexes: db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'persons' ORDER BY name").all(),
        };
      } finally {
        db.close();
      }
    };
    const before = snapshot();
    expect(before.rows).toHaveLength(3);
    const store = track(createSqliteStore({ filename: file, now: () => 5000 }));
    await store.migrate();
    const after = snapshot();
    expect(after).toEqual(before);

    const check = raw(file);
    try {
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      const table = check.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'persons'").pluck().get() as string;
      expect(table).toContain("lock_reason IN ('operator', 'failures', 'self', 'fraud')");
      expect(table).toMatch(/\) STRICT$/);
      expect(check.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'persons_new'").pluck().get()).toBe(0);
      expect(check.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all()).toEqual(migrations.map((m) => m.version));
    } finally {
      check.close();
    }

    // Read through the store as before.
    await expect(store.persons.findById('p-active')).resolves.toMatchObject({ status: 'active', lockReason: null, contactsRev: 3, address: { locality: 'Huế' }, email: 'cu@example.vn' });
    await expect(store.persons.findById('p-self')).resolves.toMatchObject({ status: 'locked', lockReason: 'self', passwordResetRequired: true, accessRevokedBefore: 1500, contacts: [] });
    await expect(store.persons.findById('p-legacy')).resolves.toMatchObject({ status: 'locked', lockReason: null, contacts: [] });
    await expect(store.persons.list({ limit: 10, offset: 0 })).resolves.toMatchObject([{ id: 'p-legacy' }, { id: 'p-active' }, { id: 'p-self' }]);
    // The constraints came along: the pid is unique, the CHECK refuses an unknown reason and now takes fraud.
    await expect(store.persons.create({
      id: 'p-new', pid: '001090000001', name: 'x', familyName: 'x', givenName: 'x', birthdate: '1990-01-01', gender: 'female', email: null,
      emailVerified: false, phone: null, phoneVerified: false, address: null, level: 1, passwordHash: 'h', status: 'active',
    })).rejects.toMatchObject({ field: 'pid' });
    await expect(store.persons.setStatus('p-active', 'locked', 'fraud')).resolves.toBe(true);
    await expect(store.persons.findById('p-active')).resolves.toMatchObject({ status: 'locked', lockReason: 'fraud', updatedAt: 5000 });
    const rw = new Database(file);
    try {
      expect(() => rw.prepare("UPDATE persons SET lock_reason = 'suspicious' WHERE id = 'p-self'").run()).toThrow(/CHECK/);
    } finally {
      rw.close();
    }
    // The expression indexes were built over the entries already there; a list is not a string.
    await expect(store.audit.search({ person: 'p-active', limit: 10 })).resolves.toMatchObject([{ seq: 2 }]);
    await expect(store.audit.search({ operator: 'op-1', limit: 10 })).resolves.toMatchObject([{ seq: 1 }]);
    await expect(store.audit.count({ event: 'SIGN_IN_COMPLETED', from: 2000 })).resolves.toBe(2);
    await expect(store.audit.search({ portal: '7', limit: 10 })).resolves.toEqual([]);
  });

  it('answers the audit search, approvals, operators and portal pages from indexes', async () => {
    const file = tempFile();
    await track(createSqliteStore({ filename: file })).migrate();
    const db = raw(file);
    try {
      const plan = (sql: string, params: unknown[] = []): string =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join(' | ');
      const search = (kind: 'search' | 'count', filter: Parameters<typeof auditSearchQuery>[1]): string => {
        const q = auditSearchQuery(kind, filter);
        return plan(q.sql, q.params);
      };
      for (const key of ['person', 'portal', 'operator'] as const) {
        expect(search('search', { [key]: 'x', limit: 50 })).toBe(`SEARCH audit_log USING INDEX audit_log_${key} (<expr>=?)`);
        expect(search('search', { [key]: 'x', beforeSeq: 9, limit: 50 })).toBe(`SEARCH audit_log USING INDEX audit_log_${key} (<expr>=? AND seq<?)`);
        expect(search('count', { [key]: 'x', from: 1 })).toMatch(new RegExp(`^SEARCH audit_log USING INDEX audit_log_${key} `));
      }
      expect(search('search', { event: 'E', limit: 50 })).toBe('SEARCH audit_log USING INDEX audit_log_event (event=?)');
      expect(search('search', { event: 'E', beforeSeq: 9, limit: 50 })).toBe('SEARCH audit_log USING INDEX audit_log_event (event=? AND seq<?)');
      expect(search('count', { event: 'SIGN_IN_COMPLETED', from: 1 })).toBe('SEARCH audit_log USING COVERING INDEX audit_log_event_at (event=? AND at>?)');
      expect(search('search', { event: 'E', person: 'x', portal: 'y', limit: 50 })).toMatch(/^SEARCH audit_log USING INDEX audit_log_(event|person|portal) /);
      // A time window alone is read through the index on at, however few entries it holds.
      expect(search('search', { from: 1, limit: 50 })).toMatch(/^SEARCH audit_log USING INDEX audit_log_at \(at>\?\)/);
      expect(search('search', { from: 1, to: 2, beforeSeq: 3, limit: 50 })).toMatch(/^SEARCH audit_log USING INDEX audit_log_at \(at>\? AND at<\?\)/);
      expect(search('count', { from: 1, to: 2 })).toBe('SEARCH audit_log USING COVERING INDEX audit_log_at (at>? AND at<?)');

      expect(plan('SELECT * FROM approvals WHERE (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT 20', [1, 'x']))
        .toBe('SEARCH approvals USING INDEX approvals_created ((created_at,id)<(?,?))');
      expect(plan('SELECT * FROM approvals WHERE status = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT 20', ['pending', 1, 'x']))
        .toBe('SEARCH approvals USING INDEX approvals_status_created (status=? AND (created_at,id)<(?,?))');
      expect(plan("SELECT * FROM approvals WHERE action = ? AND subject = ? AND status = 'pending' AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1", ['a', 's', 1]))
        .toMatch(/^SEARCH approvals USING INDEX approvals_pending \(action=\? AND subject=\? AND expires_at>\?\)/);
      expect(plan('SELECT * FROM operators ORDER BY added_at, person_id LIMIT 20 OFFSET 0')).toBe('SCAN operators USING INDEX operators_added_at');
    } finally {
      db.close();
    }
  });

  it('rebuilds persons with foreign keys enforced again afterwards, and refuses (changing nothing) when another table refers to persons', async () => {
    const plain = tempFile();
    version8(plain);
    const db = new Database(plain);
    try {
      db.pragma('foreign_keys = ON');
      migrate(db);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.prepare('SELECT count(*) FROM persons').pluck().get()).toBe(3);
    } finally {
      db.close();
    }

    const referred = tempFile();
    version8(referred, (v8) => {
      v8.exec('CREATE TABLE notes (person_id TEXT NOT NULL REFERENCES persons (id), note TEXT NOT NULL) STRICT');
      v8.prepare("INSERT INTO notes (person_id, note) VALUES ('p-self', 'gọi lại')").run();
    });
    const db2 = new Database(referred);
    try {
      db2.pragma('foreign_keys = ON');
      expect(() => migrate(db2)).toThrow(/notes has a foreign key to persons/);
      expect(db2.pragma('foreign_keys', { simple: true })).toBe(1);
      // Migration 9 went in on its own; 10 changed nothing.
      expect(db2.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(9);
      expect(db2.prepare("SELECT count(*) FROM sqlite_schema WHERE name IN ('operators', 'approvals', 'persons_new', 'audit_log_person')").pluck().get()).toBe(0);
      expect(db2.prepare('SELECT count(*) FROM persons').pluck().get()).toBe(3);
      expect(db2.prepare('SELECT sql FROM sqlite_schema WHERE name = ?').pluck().get('persons')).not.toContain('fraud');
      expect(db2.prepare('SELECT note FROM notes JOIN persons ON persons.id = notes.person_id').pluck().all()).toEqual(['gọi lại']);
    } finally {
      db2.close();
    }
  });

  it('recovery code replace is all or nothing: a duplicated hash keeps the old set', async () => {
    const store = track(createSqliteStore({ filename: ':memory:' }));
    await store.migrate();
    await store.recoveryCodes.replace('p', ['a', 'b', 'c'], 1);
    await store.recoveryCodes.consume('p', 'a', 2);
    await expect(store.recoveryCodes.replace('p', ['x', 'y', 'x'], 3)).rejects.toBeInstanceOf(StoreConflictError);
    await expect(store.recoveryCodes.countUnused('p')).resolves.toBe(2);
    await expect(store.recoveryCodes.createdAt('p')).resolves.toBe(1);
    await expect(store.recoveryCodes.consume('p', 'x', 4)).resolves.toBe(false);
    await expect(store.recoveryCodes.consume('p', 'b', 4)).resolves.toBe(true);
  });

  it('creates a missing parent directory (0700) and a private database file (0600)', async () => {
    const nested = path.join(dir, `nested-${++seq}`, 'deeper');
    const file = path.join(nested, 'dinhdanh.db');
    await track(createSqliteStore({ filename: file })).migrate();
    expect(fs.statSync(nested).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.dirname(nested)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('reports an unmigrated database as unavailable rather than as a bug', async () => {
    const store = track(createSqliteStore({ filename: ':memory:' }));
    await expect(store.persons.count()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.ping()).resolves.toBeUndefined();
    await store.migrate();
    await expect(store.persons.count()).resolves.toBe(0);
  });

  it('refuses a file that is not a SQLite database with StoreUnavailableError', () => {
    const file = tempFile();
    fs.writeFileSync(file, 'this is not a database, just some text that is long enough to have a header');
    expect(() => createSqliteStore({ filename: file })).toThrow(StoreUnavailableError);
  });

  describe('createStore', () => {
    it('opens sqlite:<relative path> relative to the working directory, migrated', async () => {
      const file = tempFile();
      const store = track(await createStore(`sqlite:${path.relative(process.cwd(), file)}`));
      expect(store.kind).toBe('sqlite');
      await expect(store.persons.count()).resolves.toBe(0);
      expect(fs.existsSync(file)).toBe(true);
    });

    it('opens sqlite:<absolute path>', async () => {
      const file = tempFile();
      track(await createStore(`sqlite:${file}`));
      expect(fs.existsSync(file)).toBe(true);
    });

    it('opens sqlite::memory:', async () => {
      const store = track(await createStore('sqlite::memory:'));
      await expect(store.counters.increment('k', 1000, 0)).resolves.toMatchObject({ count: 1 });
    });

    it('fails fast on an unreachable MongoDB, naming MongoDB and the host but never the password', async () => {
      // Port 9 (discard) refuses connections; `.invalid` never resolves (RFC 6761), so the SRV lookup fails.
      for (const [url, host] of [
        ['mongodb://admin:hunter2@127.0.0.1:9/dinhdanh', '127.0.0.1:9'],
        ['mongodb+srv://admin:hunter2@cluster.invalid/x', 'cluster.invalid'],
      ] as const) {
        const started = Date.now();
        const error: unknown = await createStore(url).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(error).toBeInstanceOf(StoreUnavailableError);
        const message = (error as Error).message;
        expect(message).toMatch(/MongoDB/);
        expect(message).toContain(host);
        expect(message).not.toMatch(/hunter2|admin/);
      }
    }, 30_000);

    it('rejects anything else naming the accepted forms, without echoing a password', async () => {
      for (const url of ['postgres://admin:hunter2@db.example/dinhdanh', 'admin:hunter2', '', 'sqlite:']) {
        const attempt = createStore(url);
        await expect(attempt).rejects.toThrow(/sqlite:<path>.*sqlite::memory:/);
        await expect(attempt).rejects.not.toThrow(/hunter2/);
      }
    });
  });
});
