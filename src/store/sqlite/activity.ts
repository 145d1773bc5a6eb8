/**
 * A person's own history in `activity`, read by person and time through the index
 * (person_id, at DESC, id DESC); expired lines are never returned and are purged by the store.
 */
import type { ActivityEntry, ActivityRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface ActivityRow {
  id: string;
  person_id: string;
  at: number;
  event: string;
  details: string;
  expires_at: number;
}

function activityRow(row: ActivityRow): ActivityEntry {
  return {
    id: row.id,
    personId: row.person_id,
    at: row.at,
    event: row.event,
    details: JSON.parse(row.details) as ActivityEntry['details'],
    expiresAt: row.expires_at,
  };
}

/** Rows for a caller's limit: none below 1 (a negative LIMIT would mean "no limit" to SQLite). */
const limitOf = (limit: number): number => Math.max(0, Math.floor(limit));

export function createSqliteActivity({ now, statement, call }: SqliteContext): ActivityRepository {
  const activityInsert = statement<[{ id: string; personId: string; at: number; event: string; details: string; expiresAt: number }]>(`
    INSERT INTO activity (id, person_id, at, event, details, expires_at)
    VALUES (@id, @personId, @at, @event, @details, @expiresAt)
  `);
  const activityList = statement<[{ personId: string; now: number; since: number; limit: number }], ActivityRow>(`
    SELECT * FROM activity
    WHERE person_id = @personId AND at >= @since AND expires_at > @now
    ORDER BY at DESC, id DESC LIMIT @limit
  `);
  // The row value (at, id) < (cursor) is the list's order read strictly after the cursor, and is
  // answered from the index (https://www.sqlite.org/rowvalue.html#row_value_comparisons).
  const activityListBefore = statement<
    [{ personId: string; now: number; since: number; limit: number; beforeAt: number; beforeId: string }],
    ActivityRow
  >(`
    SELECT * FROM activity
    WHERE person_id = @personId AND at >= @since AND expires_at > @now AND (at, id) < (@beforeAt, @beforeId)
    ORDER BY at DESC, id DESC LIMIT @limit
  `);
  const activityFind = statement<[string, string, number], ActivityRow>(
    'SELECT * FROM activity WHERE id = ? AND person_id = ? AND expires_at > ?',
  );

  return {
    add: (entry) =>
      call(
        () => {
          activityInsert().run({
            id: entry.id,
            personId: entry.personId,
            at: entry.at,
            event: entry.event,
            details: JSON.stringify(entry.details),
            expiresAt: entry.expiresAt,
          });
        },
        () => 'id',
      ),
    list: (personId, { since, before, limit }) =>
      call(() => {
        const params = { personId, now: now(), since, limit: limitOf(limit) };
        const rows = before
          ? activityListBefore().all({ ...params, beforeAt: before.at, beforeId: before.id })
          : activityList().all(params);
        return rows.map(activityRow);
      }),
    find: (personId, id) =>
      call(() => {
        const row = activityFind().get(id, personId, now());
        return row && activityRow(row);
      }),
  };
}
