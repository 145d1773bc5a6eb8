/**
 * Persons (citizens) in `persons`.
 */
import type { Address, Person, PersonRepository } from '../types.js';
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
  created_at: number;
  updated_at: number;
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
    accessRevokedBefore: row.access_revoked_before,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function createSqlitePersons({ now, statement, call }: SqliteContext): PersonRepository {
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
  const personRevokeAccess = statement<[number, number, string]>(
    'UPDATE persons SET access_revoked_before = max(coalesce(access_revoked_before, 0), ?), updated_at = ? WHERE id = ?',
  );

  return {
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
    revokeAccessBefore: (id, before) => call(() => personRevokeAccess().run(before, now(), id).changes === 1),
  };
}
