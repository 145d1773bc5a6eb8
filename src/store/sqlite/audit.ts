/**
 * The hash-chained audit log in `audit_log`.
 */
import type { AuditEntry, AuditRepository } from '../types.js';
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

  return {
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
