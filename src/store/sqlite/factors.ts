/**
 * Second factors (TOTP, passkeys) in `factors`.
 */
import type { Factor, FactorRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

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

export function createSqliteFactors({ now, statement, call }: SqliteContext): FactorRepository {
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

  return {
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
}
