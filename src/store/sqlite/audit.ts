/**
 * The hash-chained audit log in `audit_log`.
 */
import type Database from 'better-sqlite3';
import type { AuditEntry, AuditFilter, AuditRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface AuditRow {
  seq: number;
  at: number;
  event: string;
  event_id: number;
  details: string;
  prev_hash: string;
  hash: string;
}

function auditRow(row: AuditRow): AuditEntry {
  return {
    seq: row.seq,
    at: row.at,
    event: row.event,
    eventId: row.event_id,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** The previous hash of the first audit entry. */
const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** The details searched by value; each has a partial expression index (migration 10). */
const DETAIL_KEYS = ['person', 'portal', 'operator'] as const;

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  return value;
}

function finite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${what} must be a finite number`);
  return value;
}

/**
 * The SQL and parameters of a search (newest first, with its limit) or a count: exported so that a
 * test can ask SQLite for the plan of exactly these statements.
 */
export function auditSearchQuery(
  kind: 'search' | 'count',
  filter: AuditFilter & { beforeSeq?: number; limit?: number },
): { sql: string; params: Array<string | number> } {
  if (kind === 'count') {
    const { sql, params } = searchWhere(pickFilter(filter));
    return { sql: `SELECT count(*) AS n FROM audit_log ${sql}`, params };
  }
  const { sql, params } = searchWhere(filter);
  const limit = Math.max(0, Math.floor(finite(filter.limit, 'limit')));
  // A time window alone: read it through the index on `at` (bounded by the window). Left to itself
  // the planner walks the whole log newest first, which is quick while the window holds a page of
  // entries and reads everything when it holds fewer (https://www.sqlite.org/lang_indexedby.html).
  const timeOnly = (filter.from !== undefined || filter.to !== undefined) && filter.event === undefined && DETAIL_KEYS.every((k) => filter[k] === undefined);
  const from = timeOnly ? 'audit_log INDEXED BY audit_log_at' : 'audit_log';
  return { sql: `SELECT * FROM ${from} ${sql} ORDER BY seq DESC LIMIT ?`, params: [...params, limit] };
}

/** Only the filter's own fields (count takes no cursor, whatever else the object carries). */
const pickFilter = ({ event, person, portal, operator, from, to }: AuditFilter): AuditFilter => ({ event, person, portal, operator, from, to });

/**
 * The WHERE clause of a search and its parameters. The SQL is one of a fixed set of fragments
 * (which ones depends only on which filters are given); every value is a parameter. A detail is
 * matched through the very expression and condition of its index (migration 10) — the planner uses
 * an expression index only for the identical expression (https://www.sqlite.org/expridx.html) and a
 * partial index only when the query implies its WHERE (https://www.sqlite.org/partialindex.html) —
 * and json_type = 'text' is also what keeps a number, list or object from matching.
 */
function searchWhere(filter: AuditFilter & { beforeSeq?: number }): { sql: string; params: Array<string | number> } {
  const terms: string[] = [];
  const params: Array<string | number> = [];
  if (filter.event !== undefined) {
    terms.push('event = ?');
    params.push(text(filter.event, 'event'));
  }
  for (const key of DETAIL_KEYS) {
    if (filter[key] === undefined) continue;
    terms.push(`json_type(details, '$.${key}') = 'text' AND json_extract(details, '$.${key}') = ?`);
    params.push(text(filter[key], key));
  }
  if (filter.from !== undefined) {
    terms.push('at >= ?');
    params.push(finite(filter.from, 'from'));
  }
  if (filter.to !== undefined) {
    terms.push('at < ?');
    params.push(finite(filter.to, 'to'));
  }
  if (filter.beforeSeq !== undefined) {
    terms.push('seq < ?');
    params.push(finite(filter.beforeSeq, 'beforeSeq'));
  }
  return { sql: terms.length > 0 ? `WHERE ${terms.join(' AND ')}` : '', params };
}

export function createSqliteAudit({ db, statement, call }: SqliteContext): AuditRepository {
  const auditLast = statement<[], { seq: number; hash: string }>(
    'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
  );
  const auditInsert = statement<
    [{ seq: number; at: number; event: string; eventId: number; details: string; prevHash: string; hash: string }],
    AuditRow
  >(`
    INSERT INTO audit_log (seq, at, event, event_id, details, prev_hash, hash)
    VALUES (@seq, @at, @event, @eventId, @details, @prevHash, @hash)
    RETURNING *
  `);
  const auditList = statement<[number, number], AuditRow>('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?');
  const auditListSince = statement<[number, number, number], AuditRow>(
    'SELECT * FROM audit_log WHERE at >= ? AND seq > ? ORDER BY seq LIMIT ?',
  );
  const auditHead = statement<[], AuditRow>('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1');
  type AuditInput = Parameters<AuditRepository['append']>[0];
  type AuditSeal = Parameters<AuditRepository['append']>[1];
  // Read the last entry, seal and insert under one write lock (IMMEDIATE: taken before the read),
  // so two appends, from this connection or another process, never share a seq or a prevHash.
  // A seal that throws rolls the transaction back and nothing is appended.
  const auditAppend = db.transaction((entry: AuditInput, seal: AuditSeal) => {
    const last = auditLast().get();
    const seq = last ? last.seq + 1 : 1;
    const prevHash = last ? last.hash : AUDIT_GENESIS_HASH;
    const hash = seal(seq, prevHash);
    const row = auditInsert().get({
      seq,
      at: entry.at,
      event: entry.event,
      eventId: entry.eventId,
      details: JSON.stringify(entry.details),
      prevHash,
      hash,
    });
    if (!row) throw new Error('INSERT … RETURNING returned no row');
    return auditRow(row);
  });

  // One prepared statement per shape of search (at most 2^6 of each kind), made on first use.
  const prepared = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let stmt = prepared.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      prepared.set(sql, stmt);
    }
    return stmt;
  };

  return {
    search: (filter) =>
      call(() => {
        const { sql, params } = auditSearchQuery('search', filter);
        return (prepare(sql).all(...params) as AuditRow[]).map(auditRow);
      }),
    count: (filter) =>
      call(() => {
        const { sql, params } = auditSearchQuery('count', filter);
        return (prepare(sql).get(...params) as { n: number }).n;
      }),
    append: (entry, seal) => call(() => auditAppend.immediate(entry, seal), () => 'seq'),
    list: (afterSeq, limit) => call(() => auditList().all(afterSeq, limit).map(auditRow)),
    listSince: (since, afterSeq, limit) => call(() => auditListSince().all(since, afterSeq, limit).map(auditRow)),
    head: () =>
      call(() => {
        const row = auditHead().get();
        return row && auditRow(row);
      }),
  };
}
