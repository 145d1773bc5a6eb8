/**
 * Persons (citizens) in `persons`.
 */
import { contactsFromFields, mirrorContacts } from '../contacts.js';
import type { Address, AttentionFlag, Contact, LockReason, Person, PersonRepository } from '../types.js';
import { LOCK_REASONS, isLockReason } from '../values.js';
import type { SqliteContext } from './shared.js';

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
  access_revoked_before: number | null;
  /** JSON list; NULL on rows written before lists existed (see personRow). */
  contacts: string | null;
  contacts_rev: number;
  notice_contact: string | null;
  lock_reason: LockReason | null;
  password_reset_required: number;
  /** JSON object. */
  attention: string | null;
  created_at: number;
  updated_at: number;
}

/** The contact with exactly its fields, in a fixed order (the stored JSON is the same whoever wrote it). */
function cleanContact(c: Contact): Contact {
  if (typeof c.id !== 'string' || typeof c.value !== 'string' || (c.kind !== 'phone' && c.kind !== 'email')) {
    throw new TypeError('a contact needs a string id and value and a kind of phone or email');
  }
  if (!Number.isFinite(c.addedAt) || (c.verifiedAt !== null && !Number.isFinite(c.verifiedAt))) {
    throw new TypeError('a contact needs numeric times');
  }
  return { id: c.id, kind: c.kind, value: c.value, verified: c.verified === true, addedAt: c.addedAt, verifiedAt: c.verifiedAt ?? null };
}

function personRow(row: PersonRow): Person {
  const fields = {
    phone: row.phone,
    phoneVerified: row.phone_verified === 1,
    email: row.email,
    emailVerified: row.email_verified === 1,
  };
  return {
    id: row.id,
    pid: row.pid,
    name: row.name,
    familyName: row.family_name,
    givenName: row.given_name,
    birthdate: row.birthdate,
    gender: row.gender,
    email: fields.email,
    emailVerified: fields.emailVerified,
    phone: fields.phone,
    phoneVerified: fields.phoneVerified,
    address: row.address === null ? null : (JSON.parse(row.address) as Address),
    level: row.level === 2 ? 2 : 1,
    passwordHash: row.password_hash,
    status: row.status,
    lockReason: row.lock_reason,
    // NULL: never stored (a row from before lists existed), read as the list of its fields until
    // its first change. An empty stored list is a person without contacts.
    contacts: row.contacts === null ? contactsFromFields(fields, row.created_at) : (JSON.parse(row.contacts) as Contact[]),
    contactsRev: row.contacts_rev,
    noticeContact: row.notice_contact,
    passwordResetRequired: row.password_reset_required === 1,
    attention: row.attention === null ? null : (JSON.parse(row.attention) as AttentionFlag),
    accessRevokedBefore: row.access_revoked_before,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function createSqlitePersons({ now, statement, call }: SqliteContext): PersonRepository {
  const personInsert = statement<[Record<string, unknown>], PersonRow>(`
    INSERT INTO persons (id, pid, name, family_name, given_name, birthdate, gender, email, email_verified,
                         phone, phone_verified, address, level, password_hash, status, lock_reason, contacts,
                         contacts_rev, notice_contact, password_reset_required, attention, created_at, updated_at)
    VALUES (@id, @pid, @name, @familyName, @givenName, @birthdate, @gender, @email, @emailVerified,
            @phone, @phoneVerified, @address, @level, @passwordHash, @status, @lockReason, @contacts,
            0, NULL, 0, NULL, @createdAt, @updatedAt)
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
  const personSetStatus = statement<[string, string | null, number, string]>(
    'UPDATE persons SET status = ?, lock_reason = ?, updated_at = ? WHERE id = ?',
  );
  // Compare-and-set on the revision in one statement: SQLite's single writer makes it atomic across
  // processes, so two changes read from the same list cannot both land.
  const personSetContacts = statement<[Record<string, unknown>]>(`
    UPDATE persons SET contacts = @contacts, contacts_rev = contacts_rev + 1, notice_contact = @noticeContact,
                       phone = @phone, phone_verified = @phoneVerified, email = @email, email_verified = @emailVerified,
                       updated_at = @updatedAt
    WHERE id = @id AND contacts_rev = @expectedRev
  `);
  const personSetResetRequired = statement<[number, number, string]>(
    'UPDATE persons SET password_reset_required = ?, updated_at = ? WHERE id = ?',
  );
  const personSetAttention = statement<[string | null, number, string]>(
    'UPDATE persons SET attention = ?, updated_at = ? WHERE id = ?',
  );
  const personSetLevel = statement<[number, number, string]>(
    'UPDATE persons SET level = ?, updated_at = ? WHERE id = ?',
  );
  const personRevokeAccess = statement<[number, number, string]>(
    'UPDATE persons SET access_revoked_before = max(coalesce(access_revoked_before, 0), ?), updated_at = ? WHERE id = ?',
  );

  return {
    create: (person) =>
      call(
        () => {
          const t = now();
          // Every new row stores its list; the mirrored fields are always the list's primaries.
          const contacts = person.contacts ? person.contacts.map(cleanContact) : contactsFromFields(person, t);
          const mirror = mirrorContacts(contacts);
          const row = personInsert().get({
            id: person.id,
            pid: person.pid,
            name: person.name,
            familyName: person.familyName,
            givenName: person.givenName,
            birthdate: person.birthdate,
            gender: person.gender,
            email: mirror.email,
            emailVerified: mirror.emailVerified ? 1 : 0,
            phone: mirror.phone,
            phoneVerified: mirror.phoneVerified ? 1 : 0,
            address: person.address === null ? null : JSON.stringify(person.address),
            level: person.level,
            passwordHash: person.passwordHash,
            status: person.status,
            lockReason: person.status === 'locked' ? 'operator' : null,
            contacts: JSON.stringify(contacts),
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
    setStatus: (id, status, lockReason) =>
      call(() => {
        const reason = status === 'locked' ? (lockReason ?? 'operator') : null;
        // The table's CHECK would refuse it too; a TypeError says so the same way as the other backend.
        if (reason !== null && !isLockReason(reason)) throw new TypeError(`lockReason must be one of ${LOCK_REASONS.join(', ')}`);
        return personSetStatus().run(status, reason, now(), id).changes === 1;
      }),
    updateContacts: (id, expectedRev, contacts, noticeContact) =>
      call(() => {
        const list = contacts.map(cleanContact);
        const mirror = mirrorContacts(list);
        return personSetContacts().run({
          id,
          expectedRev,
          contacts: JSON.stringify(list),
          noticeContact,
          phone: mirror.phone,
          phoneVerified: mirror.phoneVerified ? 1 : 0,
          email: mirror.email,
          emailVerified: mirror.emailVerified ? 1 : 0,
          updatedAt: now(),
        }).changes === 1;
      }),
    setPasswordResetRequired: (id, required) =>
      call(() => personSetResetRequired().run(required ? 1 : 0, now(), id).changes === 1),
    setAttention: (id, flag) =>
      call(() => personSetAttention().run(flag === null ? null : JSON.stringify({ reason: flag.reason, at: flag.at }), now(), id).changes === 1),
    setLevel: (id, level) => call(() => personSetLevel().run(level, now(), id).changes === 1),
    revokeAccessBefore: (id, before) => call(() => personRevokeAccess().run(before, now(), id).changes === 1),
  };
}
