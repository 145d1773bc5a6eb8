/**
 * Operators of the console in `operators`, keyed by their person id; roles as a JSON list of
 * checked role names; `rev` is the compare-and-set revision of the roles.
 */
import type { Operator, OperatorRepository } from '../types.js';
import { checkRoles } from '../values.js';
import type { SqliteContext } from './shared.js';

interface OperatorRow {
  person_id: string;
  /** JSON list of role names. */
  roles: string;
  added_by: string;
  added_at: number;
  updated_at: number;
  rev: number;
}

function operatorRow(row: OperatorRow): Operator {
  return {
    personId: row.person_id,
    roles: checkRoles(JSON.parse(row.roles)),
    addedBy: row.added_by,
    addedAt: row.added_at,
    updatedAt: row.updated_at,
    rev: row.rev,
  };
}

/** Rows for a caller's limit or offset: none below 0 (a negative LIMIT would mean "no limit" to SQLite). */
const whole = (n: number): number => (Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0);

export function createSqliteOperators({ statement, call }: SqliteContext): OperatorRepository {
  const operatorInsert = statement<[{ personId: string; roles: string; addedBy: string; addedAt: number }], OperatorRow>(`
    INSERT INTO operators (person_id, roles, added_by, added_at, updated_at, rev)
    VALUES (@personId, @roles, @addedBy, @addedAt, @addedAt, 0)
    RETURNING *
  `);
  const operatorFind = statement<[string], OperatorRow>('SELECT * FROM operators WHERE person_id = ?');
  const operatorList = statement<[number, number], OperatorRow>(
    'SELECT * FROM operators ORDER BY added_at, person_id LIMIT ? OFFSET ?',
  );
  const operatorCount = statement<[], { n: number }>('SELECT count(*) AS n FROM operators');
  // Compare-and-set in one statement: SQLite's single writer makes it atomic across processes, so
  // two admins changing the roles they both read cannot both land.
  const operatorSetRoles = statement<[{ personId: string; expectedRev: number; roles: string; now: number }]>(
    'UPDATE operators SET roles = @roles, rev = rev + 1, updated_at = @now WHERE person_id = @personId AND rev = @expectedRev',
  );
  const operatorRemove = statement<[string]>('DELETE FROM operators WHERE person_id = ?');

  return {
    create: (operator) =>
      call(
        () => {
          const row = operatorInsert().get({
            personId: operator.personId,
            roles: JSON.stringify(checkRoles(operator.roles)),
            addedBy: operator.addedBy,
            addedAt: operator.addedAt,
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return operatorRow(row);
        },
        () => 'personId',
      ),
    find: (personId) =>
      call(() => {
        const row = operatorFind().get(personId);
        return row && operatorRow(row);
      }),
    list: ({ limit, offset }) => call(() => operatorList().all(whole(limit), whole(offset)).map(operatorRow)),
    count: () => call(() => operatorCount().get()?.n ?? 0),
    setRoles: (personId, expectedRev, roles, at) =>
      call(() => operatorSetRoles().run({ personId, expectedRev, roles: JSON.stringify(checkRoles(roles)), now: at }).changes === 1),
    remove: (personId) => call(() => operatorRemove().run(personId).changes === 1),
  };
}
