import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { createStore } from '../../src/store/create-store.js';
import { mongoMigrations } from '../../src/store/mongo/migrations.js';
import { DEFAULT_MONGO_DB_NAME, createMongoStore, describeMongoUrl } from '../../src/store/mongo/mongo-store.js';
import { StoreConflictError, type Store } from '../../src/store/types.js';
import { storeContract } from './store-contract.js';

const uri = process.env.MONGODB_URI;

describe('MongoDB store URLs (no server needed)', () => {
  it('names the hosts and the database, never the userinfo', () => {
    expect(describeMongoUrl('mongodb://admin:hunter2@db1.example:27017,db2.example/dinhdanh_prod?replicaSet=rs0&w=majority')).toMatchObject({
      scheme: 'mongodb',
      hosts: 'db1.example:27017,db2.example',
      dbName: 'dinhdanh_prod',
    });
    const srv = describeMongoUrl('mongodb+srv://admin:p%40ss%2Fw0rd@cluster.example/');
    expect(srv).toMatchObject({ scheme: 'mongodb+srv', hosts: 'cluster.example', dbName: undefined });
    expect(srv.secrets).toEqual(expect.arrayContaining(['admin', 'p%40ss%2Fw0rd', 'p@ss/w0rd']));
    expect(describeMongoUrl('mongodb://localhost')).toMatchObject({ hosts: 'localhost', dbName: undefined });
  });

  it('refuses a malformed URL without echoing it', () => {
    for (const url of ['mongodb://', 'mongodb://admin:hunter2@/x', 'mongodb://admin:hunter2@host/%E0%A4%A']) {
      expect(() => describeMongoUrl(url)).toThrow(/MongoDB store URL/);
      expect(() => describeMongoUrl(url)).not.toThrow(/hunter2/);
    }
  });
});

if (uri) {
  // The contract tolerates a shared database (each test uses its own random keys).
  storeContract('mongodb', ({ now }) => createStore(uri, { now }));

  describe('mongodb specifics', () => {
    const dbName = describeMongoUrl(uri).dbName ?? DEFAULT_MONGO_DB_NAME;
    let client: MongoClient;
    let db: Db;
    const open: Store[] = [];
    const track = (store: Store): Store => {
      open.push(store);
      return store;
    };

    beforeAll(async () => {
      client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
      await client.connect();
      db = client.db(dbName);
    });

    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    afterAll(async () => {
      await client.close();
    });

    it('uses the database named in the URL path and records each migration once', async () => {
      const store = track(await createStore(uri));
      expect(store.kind).toBe('mongodb');
      await store.migrate();
      await track(await createStore(uri)).migrate();
      const applied = await db.collection<{ _id: number; name: string; appliedAt: Date; skipped: string[] }>('schema_migrations').find({}).sort({ _id: 1 }).toArray();
      expect(applied.map((m) => [m._id, m.name])).toEqual(mongoMigrations.map((m) => [m.version, m.name]));
      const collections = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
      for (const spec of mongoMigrations.flatMap((m) => m.collections)) expect(collections.has(spec.name)).toBe(true);
    });

    it('creates the unique and TTL indexes, or records a TTL index the server cannot make as skipped', async () => {
      track(await createStore(uri));
      // FerretDB 1.x accepts `sparse` but does not report it (its unique indexes never count a
      // missing field, so the behaviour is the same; the contract checks that behaviour).
      const info = await db.admin().command({ buildInfo: 1 });
      const reportsSparse = typeof info.ferretdbVersion !== 'string';
      const applied = await db.collection<{ _id: number; skipped: string[] }>('schema_migrations').find({}).toArray();
      const skipped = new Set(applied.flatMap((m) => m.skipped ?? []));
      for (const spec of mongoMigrations.flatMap((m) => m.collections)) {
        const indexes = await db.collection(spec.name).listIndexes().toArray();
        for (const index of spec.indexes) {
          const found = indexes.find((i) => i.name === index.name);
          if (index.expireAfterSeconds !== undefined && skipped.has(`${spec.name}.${index.name}`)) {
            expect(found).toBeUndefined();
            continue;
          }
          expect({ collection: spec.name, index: index.name, found: found !== undefined }).toEqual({ collection: spec.name, index: index.name, found: true });
          if (index.unique) expect(found?.unique).toBe(true);
          if (index.sparse && reportsSparse) expect(found?.sparse).toBe(true);
          if (index.expireAfterSeconds !== undefined) expect(found?.expireAfterSeconds).toBe(index.expireAfterSeconds);
        }
      }
    });

    it('refuses a non-string where an id belongs, so no operator object reaches a filter', async () => {
      const store = track(await createStore(uri));
      const person = await store.persons.create({
        id: randomUUID(), pid: String(Date.now()).slice(-12).padStart(12, '0'), name: 'Trần Thị B', familyName: 'Trần', givenName: 'Thị B',
        birthdate: '1991-02-03', gender: 'female', email: null, emailVerified: false, phone: null, phoneVerified: false, address: null,
        level: 1, passwordHash: 'h', status: 'active',
      });
      const operator = { $ne: null } as unknown as string;
      await expect(store.persons.findById(operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.findByPid(operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.updatePasswordHash(person.id, operator, 'pwned')).rejects.toBeInstanceOf(TypeError);
      await expect(store.oidc.find('Session', operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.counters.get(operator, 0)).rejects.toBeInstanceOf(TypeError);
      await expect(store.recoveryCodes.consume(person.id, operator, 0)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.updateContacts(operator, 0, [], null)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.updateContacts(person.id, operator as unknown as number, [], null)).rejects.toBeInstanceOf(TypeError);
      const contact = { id: 'c', kind: 'phone' as const, value: operator, verified: true, addedAt: 1, verifiedAt: 1 };
      await expect(store.persons.updateContacts(person.id, 0, [contact], null)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.updateContacts(person.id, 0, [], operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.setAttention(operator, null)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.setPasswordResetRequired(operator, true)).rejects.toBeInstanceOf(TypeError);
      await expect(store.activity.find(person.id, operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.activity.find(operator, 'x')).rejects.toBeInstanceOf(TypeError);
      await expect(store.activity.list(operator, { since: 0, limit: 10 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.activity.list(person.id, { since: 0, before: { at: 1, id: operator }, limit: 10 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.findById(person.id)).resolves.toMatchObject({ passwordHash: 'h', contacts: [], contactsRev: 0 });
    });

    it('reads a person document from before contact lists (fields absent) with defaults; its first change finds no revision as 0', async () => {
      const store = track(await createStore(uri));
      const id = randomUUID();
      // As version-2 code wrote it: none of the newer fields.
      await db.collection('persons').insertOne({
        _id: id as never, pid: `9${String(Date.now()).slice(-11)}`, name: 'Lê Văn Cũ', familyName: 'Lê', givenName: 'Văn Cũ', birthdate: '1970-05-06',
        gender: 'male', email: 'cu@example.vn', emailVerified: false, phone: '+84907777777', phoneVerified: true, address: null, level: 1,
        passwordHash: 'h', status: 'locked', createdAt: 1000, updatedAt: 2000,
      });
      const person = await store.persons.findById(id);
      expect(person).toMatchObject({
        status: 'locked', lockReason: null, contactsRev: 0, noticeContact: null, passwordResetRequired: false, attention: null, accessRevokedBefore: null,
        contacts: [
          { id: 'phone-0', kind: 'phone', value: '+84907777777', verified: true, addedAt: 1000, verifiedAt: 1000 },
          { id: 'email-0', kind: 'email', value: 'cu@example.vn', verified: false, addedAt: 1000, verifiedAt: null },
        ],
      });
      // Exported as a record without a stored list.
      const exported: Record<string, unknown>[] = [];
      for await (const r of store.copy.exportAll('persons')) if (r.id === id) exported.push(r);
      expect(exported).toEqual([expect.objectContaining({ contacts: null, contactsRev: 0, lockReason: null, passwordResetRequired: false, attention: null })]);
      // Two first changes at once from revision 0: one lands.
      const [phone] = person!.contacts;
      const results = await Promise.all([
        store.persons.updateContacts(id, 0, [phone!], null),
        store.persons.updateContacts(id, 0, [], null),
        store.persons.updateContacts(id, 1, [], null),
      ]);
      expect(results.slice(0, 2).filter((r) => r)).toHaveLength(1);
      const after = await store.persons.findById(id);
      expect(after?.contactsRev).toBe(results[2] ? 2 : 1);
      await expect(db.collection('persons').findOne({ _id: id as never })).resolves.toMatchObject({ contactsRev: after?.contactsRev });
    });

    it('reads a portal document from before secret rotation (no previousSecret) as having none, and rotates it', async () => {
      const store = track(await createStore(uri));
      const clientId = `old-${randomUUID()}`;
      await db.collection('portals').insertOne({
        _id: clientId as never, name: 'Cổng cũ', metadata: JSON.stringify({ redirect_uris: ['https://cu.example.vn/cb'] }), secretCiphertext: 'v1.k.old',
        sector: 'cu.example.vn', nationalId: false, nationalIdBasis: null, disabled: false, createdAt: 1000, updatedAt: 2000,
      });
      await expect(store.portals.find(clientId)).resolves.toMatchObject({ secretCiphertext: 'v1.k.old', previousSecret: null, updatedAt: 2000 });
      const exported: Record<string, unknown>[] = [];
      for await (const r of store.copy.exportAll('portals')) if (r.clientId === clientId) exported.push(r);
      expect(exported).toEqual([expect.objectContaining({ previousSecret: null, revision: 0 })]);
      await expect(store.portals.rotateSecret(clientId, 'v1.k.new', { ciphertext: 'v1.k.old', expiresAt: 9000 })).resolves.toBe(true);
      await expect(store.portals.find(clientId)).resolves.toMatchObject({ secretCiphertext: 'v1.k.new', previousSecret: { ciphertext: 'v1.k.old', expiresAt: 9000 } });
      await expect(store.portals.revision(clientId)).resolves.toBe(1);
      // Stored as a subdocument of exactly its two fields, whatever else the caller's object had.
      await store.portals.rotateSecret(clientId, 'v1.k.3', { ciphertext: 'v1.k.new', expiresAt: 9500, extra: { $ne: 1 } } as never);
      await expect(db.collection('portals').findOne({ _id: clientId as never })).resolves.toMatchObject({ previousSecret: { ciphertext: 'v1.k.new', expiresAt: 9500 } });
      expect(Object.keys((await db.collection('portals').findOne({ _id: clientId as never }))!.previousSecret as object)).toEqual(['ciphertext', 'expiresAt']);
      // A non-string where a client id or a secret belongs never reaches a filter or the document.
      const operator = { $ne: null } as unknown as string;
      await expect(store.portals.rotateSecret(operator, 'x', null)).rejects.toBeInstanceOf(TypeError);
      await expect(store.portals.rotateSecret(clientId, operator, null)).rejects.toBeInstanceOf(TypeError);
      await expect(store.portals.rotateSecret(clientId, 'x', { ciphertext: operator, expiresAt: 1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.portals.updateMetadata(operator, {})).rejects.toBeInstanceOf(TypeError);
      await expect(store.portals.page({ after: { createdAt: 0, clientId: operator }, limit: 1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.portals.page({ after: { createdAt: operator as unknown as number, clientId: 'x' }, limit: 1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.portals.find(clientId)).resolves.toMatchObject({ secretCiphertext: 'v1.k.3' });
    });

    it('copies string person/portal/operator details to top-level fields at append (and only strings), never into what is read back', async () => {
      const store = track(await createStore(uri));
      const tag = randomUUID();
      const seal = (seq: number, prev: string): string => `${seq}:${prev}`.padEnd(64, '0').slice(0, 64);
      const text = await store.audit.append({ at: 1, event: 'E', eventId: 1, details: { person: `p-${tag}`, portal: `c-${tag}`, operator: `o-${tag}`, other: 'x' } }, seal);
      const mixed = await store.audit.append({ at: 1, event: 'E', eventId: 1, details: { person: 7, portal: [`c-${tag}`], operator: { $ne: null } } }, seal);
      await expect(db.collection('audit_log').findOne({ _id: text.seq as never })).resolves.toMatchObject({ person: `p-${tag}`, portal: `c-${tag}`, operator: `o-${tag}` });
      const raw = await db.collection('audit_log').findOne({ _id: mixed.seq as never });
      expect(raw && ['person', 'portal', 'operator'].filter((k) => k in raw)).toEqual([]);
      await expect(store.audit.search({ person: `p-${tag}`, limit: 5 })).resolves.toEqual([text]);
      await expect(store.audit.search({ portal: `c-${tag}`, limit: 5 })).resolves.toEqual([text]);
      // A non-string where a filter value belongs never reaches a filter.
      const operator = { $ne: null } as unknown as string;
      await expect(store.audit.search({ person: operator, limit: 5 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.audit.count({ event: operator })).rejects.toBeInstanceOf(TypeError);
      await expect(store.audit.search({ from: '0' as unknown as number, limit: 5 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.audit.search({ beforeSeq: operator as unknown as number, limit: 5 })).rejects.toBeInstanceOf(TypeError);
    });

    it('migration 4 fills the search fields of audit entries written before it, and store copy makes them for imported ones', async () => {
      const name = `dinhdanh_m4_${randomUUID().slice(0, 8)}`;
      const fresh = track(createMongoStore({ url: uri, dbName: name }));
      const other = client.db(name);
      try {
        await fresh.migrate();
        // As version-3 code wrote them: no top-level copies.
        await other.collection('audit_log').insertMany([
          { _id: 1 as never, at: 1, event: 'A', eventId: 1, details: JSON.stringify({ person: 'p1', operator: 'o1' }), prevHash: 'x', hash: 'h1' },
          { _id: 2 as never, at: 2, event: 'B', eventId: 1, details: JSON.stringify({ person: 5, portal: 'c1' }), prevHash: 'h1', hash: 'h2' },
          { _id: 3 as never, at: 3, event: 'C', eventId: 1, details: JSON.stringify({ nothing: true }), prevHash: 'h2', hash: 'h3' },
          { _id: 4 as never, at: 4, event: 'D', eventId: 1, details: 'not json', prevHash: 'h3', hash: 'h4' },
        ]);
        await expect(fresh.audit.search({ person: 'p1', limit: 5 })).resolves.toEqual([]);
        await other.collection('schema_migrations').deleteOne({ _id: 4 as never });
        await fresh.migrate();
        await fresh.migrate();
        await expect(fresh.audit.search({ person: 'p1', limit: 5 })).resolves.toMatchObject([{ seq: 1 }]);
        await expect(fresh.audit.search({ operator: 'o1', limit: 5 })).resolves.toMatchObject([{ seq: 1 }]);
        await expect(fresh.audit.search({ portal: 'c1', limit: 5 })).resolves.toMatchObject([{ seq: 2, details: { person: 5, portal: 'c1' } }]);
        await expect(fresh.audit.count({ person: '5' })).resolves.toBe(0);
        // Nothing to copy from details without such strings (or, the backfill does not stop at it, not JSON at all).
        for (const id of [3, 4]) {
          const doc = await other.collection('audit_log').findOne({ _id: id as never });
          expect(doc && ['person', 'portal', 'operator'].filter((k) => k in doc)).toEqual([]);
        }

        await other.collection('audit_log').deleteOne({ _id: 4 as never });

        // Entries imported by store copy are searchable at once.
        await fresh.copy.importMany('auditLog', [{ seq: 5, at: 5, event: 'E', eventId: 1, details: { person: 'p9', portal: ['x'] }, prevHash: 'h4', hash: 'h5' }]);
        await expect(fresh.audit.search({ person: 'p9', limit: 5 })).resolves.toMatchObject([{ seq: 5, details: { person: 'p9', portal: ['x'] } }]);
        const exported: Record<string, unknown>[] = [];
        for await (const r of fresh.copy.exportAll('auditLog')) if (r.seq === 5) exported.push(r);
        expect(exported).toEqual([{ seq: 5, at: 5, event: 'E', eventId: 1, details: { person: 'p9', portal: ['x'] }, prevHash: 'h4', hash: 'h5' }]);
      } finally {
        await other.dropDatabase();
      }
    });

    it('reads a fraud lock, refuses a lock reason outside the list on read and on write, and no operator object reaches an operator or approval filter', async () => {
      const store = track(await createStore(uri));
      const person = await store.persons.create({
        id: randomUUID(), pid: `8${String(Date.now()).slice(-11)}`, name: 'Trần Thị B', familyName: 'Trần', givenName: 'Thị B',
        birthdate: '1991-02-03', gender: 'female', email: null, emailVerified: false, phone: null, phoneVerified: false, address: null,
        level: 1, passwordHash: 'h', status: 'active',
      });
      await db.collection('persons').updateOne({ _id: person.id as never }, { $set: { status: 'locked', lockReason: 'fraud' } });
      await expect(store.persons.findById(person.id)).resolves.toMatchObject({ status: 'locked', lockReason: 'fraud' });
      await db.collection('persons').updateOne({ _id: person.id as never }, { $set: { lockReason: 'suspicious' } });
      await expect(store.persons.findById(person.id)).rejects.toBeInstanceOf(TypeError);
      await expect(store.persons.setStatus(person.id, 'locked', 'suspicious' as never)).rejects.toBeInstanceOf(TypeError);
      await store.persons.setStatus(person.id, 'locked', 'fraud');
      await expect(store.persons.findById(person.id)).resolves.toMatchObject({ lockReason: 'fraud' });

      const operator = { $ne: null } as unknown as string;
      await expect(store.operators.find(operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.operators.remove(operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.operators.setRoles(operator, 0, ['admin'], 1)).rejects.toBeInstanceOf(TypeError);
      await store.operators.create({ personId: person.id, roles: ['helpdesk'], addedBy: 'cli:root', addedAt: 1 });
      await expect(store.operators.setRoles(person.id, operator as unknown as number, ['admin'], 1)).rejects.toBeInstanceOf(TypeError);
      await expect(store.operators.create({ personId: operator, roles: ['admin'], addedBy: 'x', addedAt: 1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.operators.find(person.id)).resolves.toMatchObject({ roles: ['helpdesk'], rev: 0 });
      await expect(store.approvals.find(operator)).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.findPending(operator, 'x', 1)).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.findPending('x', operator, 1)).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.decide(operator, { status: 'approved', by: 'x', role: 'admin', at: 1, reason: 'x' })).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.decide('x', { status: operator as never, by: 'x', role: 'admin', at: 1, reason: 'x' })).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.list({ status: operator as never, limit: 1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.list({ before: { createdAt: 1, id: operator }, limit: 1 })).rejects.toBeInstanceOf(TypeError);
      await expect(store.approvals.setOutcome(operator, 'done')).rejects.toBeInstanceOf(TypeError);
    });

    it('stores free-form JSON whose keys look like operators or paths as data', async () => {
      const store = track(await createStore(uri));
      const id = `id-${randomUUID()}`;
      const payload = { $where: 'sleep(1000)', 'a.b': { $ne: null, 'c.d': ['$x'] }, uid: `uid-${randomUUID()}` };
      await store.oidc.upsert('Session', id, payload, 600);
      await expect(store.oidc.find('Session', id)).resolves.toEqual(payload);
      await expect(store.oidc.findByUid('Session', payload.uid)).resolves.toEqual(payload);
      const jobId = `job-${randomUUID()}`;
      await store.jobs.enqueue({ id: jobId, kind: 'k', payload: { $set: { admin: true } }, dueAt: 0 }, 0);
      await expect(store.jobs.find(jobId)).resolves.toMatchObject({ payload: { $set: { admin: true } } });
    });

    it('recovery code replace is all or nothing: a duplicated hash keeps the old set', async () => {
      const store = track(await createStore(uri));
      const p = randomUUID();
      await store.recoveryCodes.replace(p, ['a', 'b', 'c'], 1);
      await store.recoveryCodes.consume(p, 'a', 2);
      await expect(store.recoveryCodes.replace(p, ['x', 'y', 'x'], 3)).rejects.toBeInstanceOf(StoreConflictError);
      await expect(store.recoveryCodes.countUnused(p)).resolves.toBe(2);
      await expect(store.recoveryCodes.createdAt(p)).resolves.toBe(1);
      await expect(store.recoveryCodes.consume(p, 'x', 4)).resolves.toBe(false);
      await expect(store.recoveryCodes.consume(p, 'b', 4)).resolves.toBe(true);
    });

    it('a signing key written and nothing after it (a crash there) still changes the key set\'s version for every instance', async () => {
      const store = track(await createStore(uri));
      await store.migrate();
      const before = await store.signingKeys.version();
      // The key document alone, as if the process died right after writing it.
      const kid = `crash-${randomUUID()}`;
      await db.collection('signing_keys').insertOne({
        _id: kid as never, alg: 'ES256', publicJwk: JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid }), privateJwkSealed: 'sealed',
        origin: 'operator', createdAt: 1, activateAt: 1, retiredAt: null,
      });
      const other = track(await createStore(uri));
      expect(await other.signingKeys.version()).toBeGreaterThan(before);
      expect((await other.signingKeys.list()).map((k) => k.kid)).toContain(kid);
      // A retirement written the same way moves it too.
      const afterAdd = await other.signingKeys.version();
      await db.collection('signing_keys').updateOne({ _id: kid as never }, { $set: { retiredAt: 2 } });
      expect(await store.signingKeys.version()).toBeGreaterThan(afterAdd);
    });

    it('two store instances on one database see each other and share one audit chain', async () => {
      const a = track(await createStore(uri));
      const b = track(await createStore(uri));
      const key = `ip:${randomUUID()}`;
      await a.counters.increment(key, 60_000, 1);
      await expect(b.counters.increment(key, 60_000, 1)).resolves.toMatchObject({ count: 2 });
      const before = await a.audit.head();
      const seal = (seq: number, prev: string): string => `${seq}:${prev}`.padEnd(64, '0').slice(0, 64);
      const [x, y] = await Promise.all([
        a.audit.append({ at: 1, event: 'A', eventId: 1, details: {} }, seal),
        b.audit.append({ at: 1, event: 'B', eventId: 2, details: {} }, seal),
      ]);
      expect([x?.seq, y?.seq].sort((m, n) => (m ?? 0) - (n ?? 0))).toEqual([(before?.seq ?? 0) + 1, (before?.seq ?? 0) + 2]);
    });
  });
} else {
  describe.skip('mongodb contract (skipped: set MONGODB_URI to run against MongoDB)', () => {
    it('runs the store contract against MongoDB', () => {
      // Placeholder so the skip and its reason show in the test report.
    });
  });
}
