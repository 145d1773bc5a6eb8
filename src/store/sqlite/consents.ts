/**
 * Remembered consents in `consents`, one row per (person, portal).
 */
import type { Consent, ConsentRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface ConsentRow {
  person_id: string;
  client_id: string;
  scopes: string;
  claims: string;
  created_at: number;
  updated_at: number;
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

export function createSqliteConsents({ now, statement, call }: SqliteContext): ConsentRepository {
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

  return {
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
}
