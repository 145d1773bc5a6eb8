/**
 * Single-use recovery codes in `recovery_codes`, one row per code hash.
 */
import type { RecoveryCodeRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

export function createSqliteRecoveryCodes({ db, statement, call }: SqliteContext): RecoveryCodeRepository {
  const recoveryDeleteAll = statement<[string]>('DELETE FROM recovery_codes WHERE person_id = ?');
  const recoveryInsert = statement<[string, string, number]>(
    'INSERT INTO recovery_codes (person_id, code_hash, created_at, used_at) VALUES (?, ?, ?, NULL)',
  );
  const recoveryConsume = statement<[number, string, string]>(
    'UPDATE recovery_codes SET used_at = ? WHERE person_id = ? AND code_hash = ? AND used_at IS NULL',
  );
  const recoveryCountUnused = statement<[string], { n: number }>(
    'SELECT count(*) AS n FROM recovery_codes WHERE person_id = ? AND used_at IS NULL',
  );
  const recoveryCreatedAt = statement<[string], { t: number | null }>(
    'SELECT max(created_at) AS t FROM recovery_codes WHERE person_id = ?',
  );
  // Delete then insert in one transaction: readers never see a half-replaced set, and a failure
  // (e.g. a duplicated hash) leaves the old set in place.
  const recoveryReplace = db.transaction((personId: string, hashes: readonly string[], at: number) => {
    recoveryDeleteAll().run(personId);
    for (const hash of hashes) recoveryInsert().run(personId, hash, at);
  });

  return {
    replace: (personId, hashes, at) =>
      call(
        () => {
          recoveryReplace(personId, hashes, at);
        },
        () => 'codeHash',
      ),
    consume: (personId, hash, at) => call(() => recoveryConsume().run(at, personId, hash).changes === 1),
    countUnused: (personId) => call(() => recoveryCountUnused().get(personId)?.n ?? 0),
    createdAt: (personId) => call(() => recoveryCreatedAt().get(personId)?.t ?? undefined),
    removeAll: (personId) =>
      call(() => {
        recoveryDeleteAll().run(personId);
      }),
  };
}
