/**
 * Persons (citizens) in `persons`, keyed by their id; the pid has a unique index.
 */
import { StoreConflictError, type Address, type Person, type PersonRepository } from '../types.js';
import { str, num, limitOf, insert, duplicateKeyHint, hintNames, type MongoContext } from './shared.js';

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
  /** Absent on documents written before it existed (read as null). */
  accessRevokedBefore?: number | null;
  createdAt: number;
  updatedAt: number;
}

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
    accessRevokedBefore: typeof doc.accessRevokedBefore === 'number' ? doc.accessRevokedBefore : null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

export function createMongoPersons({ db, now, run, write }: MongoContext): PersonRepository {
  const col = { persons: db.collection<PersonDoc>('persons') };

  return {
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
          accessRevokedBefore: null,
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
    // $max: one atomic update that only ever moves the instant forward (null sorts below numbers;
    // a missing field is set).
    revokeAccessBefore: (id, before) =>
      write('persons', async () => {
        const result = await col.persons.updateOne({ _id: str(id, 'id') }, { $max: { accessRevokedBefore: num(before, 'before') }, $set: { updatedAt: now() } });
        return result.matchedCount === 1;
      }),
  };
}
