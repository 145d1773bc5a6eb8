/**
 * Persons (citizens) in `persons`, keyed by their id; the pid has a unique index.
 */
import { contactsFromFields, mirrorContacts } from '../contacts.js';
import {
  StoreConflictError, type Address, type AttentionFlag, type Contact, type LockReason, type Person, type PersonRepository,
} from '../types.js';
import { LOCK_REASONS, isLockReason } from '../values.js';
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
  /**
   * Absent (or null) on documents written before lists existed: read as the list of the fields
   * above until its first change. An empty list is a person without contacts.
   */
  contacts?: Contact[] | null;
  /** Absent on documents written before lists existed (read as 0). */
  contactsRev?: number;
  noticeContact?: string | null;
  /** Absent or null while active, and on locks from before it was recorded (an operator's). */
  lockReason?: LockReason | null;
  passwordResetRequired?: boolean;
  attention?: AttentionFlag | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * The lock reason of a document: null while unset (and on locks from before it was recorded, an
 * operator's); a value outside the closed list is a broken invariant, reported rather than read as
 * some other reason (one could be easier to undo than what was meant).
 */
export function readLockReason(value: unknown): LockReason | null {
  if (value === undefined || value === null) return null;
  if (!isLockReason(value)) throw new TypeError('a stored lockReason is not one of operator, failures, self, fraud');
  return value;
}

/**
 * The contact with exactly its fields, checked: what reaches the database is a fixed shape of
 * scalars, never a caller's object with fields of its own.
 */
export function cleanContact(c: Contact): Contact {
  if (typeof c !== 'object' || c === null) throw new TypeError('a contact must be an object');
  if (c.kind !== 'phone' && c.kind !== 'email') throw new TypeError('a contact kind must be phone or email');
  return {
    id: str(c.id, 'contact id'),
    kind: c.kind,
    value: str(c.value, 'contact value'),
    verified: c.verified === true,
    addedAt: num(c.addedAt, 'contact addedAt'),
    verifiedAt: c.verifiedAt === null || c.verifiedAt === undefined ? null : num(c.verifiedAt, 'contact verifiedAt'),
  };
}

export function cleanAttention(flag: AttentionFlag): AttentionFlag {
  if (typeof flag !== 'object' || flag === null || flag.reason !== 'not_me') throw new TypeError('an attention flag needs reason not_me');
  return { reason: flag.reason, at: num(flag.at, 'attention at') };
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
    lockReason: readLockReason(doc.lockReason),
    contacts: Array.isArray(doc.contacts)
      ? doc.contacts.map(cleanContact)
      : contactsFromFields({ phone: doc.phone, phoneVerified: doc.phoneVerified, email: doc.email, emailVerified: doc.emailVerified }, doc.createdAt),
    contactsRev: typeof doc.contactsRev === 'number' ? doc.contactsRev : 0,
    noticeContact: doc.noticeContact ?? null,
    passwordResetRequired: doc.passwordResetRequired === true,
    attention: doc.attention ? cleanAttention(doc.attention) : null,
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
        // Every new document stores its list; the mirrored fields are always the list's primaries.
        const contacts = person.contacts ? person.contacts.map(cleanContact) : contactsFromFields(person, t);
        const mirror = mirrorContacts(contacts);
        const doc: PersonDoc = {
          _id: str(person.id, 'id'),
          pid: str(person.pid, 'pid'),
          name: person.name,
          familyName: person.familyName,
          givenName: person.givenName,
          birthdate: person.birthdate,
          gender: person.gender,
          email: mirror.email,
          emailVerified: mirror.emailVerified,
          phone: mirror.phone,
          phoneVerified: mirror.phoneVerified,
          address: person.address === null ? null : JSON.stringify(person.address),
          level: person.level,
          passwordHash: person.passwordHash,
          status: person.status,
          accessRevokedBefore: null,
          contacts,
          contactsRev: 0,
          noticeContact: null,
          lockReason: person.status === 'locked' ? 'operator' : null,
          passwordResetRequired: false,
          attention: null,
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
    setStatus: (id, status, lockReason) =>
      write('persons', async () => {
        if (status !== 'active' && status !== 'locked') throw new TypeError('status must be active or locked');
        const reason = status === 'locked' ? (lockReason ?? 'operator') : null;
        if (reason !== null && !isLockReason(reason)) throw new TypeError(`lockReason must be one of ${LOCK_REASONS.join(', ')}`);
        const result = await col.persons.updateOne({ _id: str(id, 'id') }, { $set: { status, lockReason: reason, updatedAt: now() } });
        return result.matchedCount === 1;
      }),
    // Compare-and-set: the filter carries the expected revision and the update raises it, in one
    // single-document operation, so two changes read from the same list cannot both land. A
    // document from before lists existed has no revision yet: it counts as 0.
    updateContacts: (id, expectedRev, contacts, noticeContact) =>
      write('persons', async () => {
        const rev = num(expectedRev, 'expectedRev');
        const list = contacts.map(cleanContact);
        const mirror = mirrorContacts(list);
        const filter = rev === 0
          ? { _id: str(id, 'id'), $or: [{ contactsRev: 0 }, { contactsRev: { $exists: false } }] }
          : { _id: str(id, 'id'), contactsRev: rev };
        const result = await col.persons.updateOne(filter, {
          $set: {
            contacts: list,
            noticeContact: noticeContact === null ? null : str(noticeContact, 'noticeContact'),
            phone: mirror.phone,
            phoneVerified: mirror.phoneVerified,
            email: mirror.email,
            emailVerified: mirror.emailVerified,
            updatedAt: now(),
          },
          $inc: { contactsRev: 1 },
        });
        return result.matchedCount === 1;
      }),
    setPasswordResetRequired: (id, required) =>
      write('persons', async () => {
        const result = await col.persons.updateOne({ _id: str(id, 'id') }, { $set: { passwordResetRequired: required === true, updatedAt: now() } });
        return result.matchedCount === 1;
      }),
    setAttention: (id, flag) =>
      write('persons', async () => {
        const attention = flag === null ? null : cleanAttention(flag);
        const result = await col.persons.updateOne({ _id: str(id, 'id') }, { $set: { attention, updatedAt: now() } });
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
