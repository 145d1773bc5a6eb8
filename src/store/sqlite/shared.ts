/**
 * What every SQLite repository shares: the open database, the clock, prepared statements, and the
 * translation of driver errors into store errors (types.ts: StoreConflictError, StoreUnavailableError).
 */
import type Database from 'better-sqlite3';
import { StoreConflictError, StoreUnavailableError } from '../types.js';

/** Result codes meaning the database itself is unusable (as opposed to a bad statement). */
const UNAVAILABLE_CODES = [
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_FULL',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_PROTOCOL',
  'SQLITE_NOMEM',
  'SQLITE_PERM',
  'SQLITE_AUTH',
];

function sqliteCode(err: unknown): string | undefined {
  // Not `instanceof Error`: errors from the native addon may come from another realm (e.g. jest's
  // VM contexts), where that check fails.
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function isUniqueViolation(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** What a repository factory is given: one per store, built by `createSqliteStore`. */
export interface SqliteContext {
  db: Database.Database;
  /** Clock in epoch ms: oidc expiry and record timestamps. */
  now: () => number;
  /** Prepares on first use (tables exist only after migrate()) and reuses the statement. */
  statement<P extends unknown[] = unknown[], R = unknown>(sql: string): () => Database.Statement<P, R>;
  /**
   * Runs a synchronous driver call, translating driver errors into store errors; a unique violation
   * becomes a StoreConflictError naming `conflictField(err)` when that is given.
   */
  call<T>(fn: () => T, conflictField?: (err: Error) => string): Promise<T>;
}

export function createSqliteContext(db: Database.Database, now: () => number): SqliteContext {
  function statement<P extends unknown[] = unknown[], R = unknown>(sql: string): () => Database.Statement<P, R> {
    let prepared: Database.Statement<P, R> | undefined;
    return () => (prepared ??= db.prepare<P, R>(sql) as Database.Statement<P, R>);
  }

  async function call<T>(fn: () => T, conflictField?: (err: Error) => string): Promise<T> {
    try {
      return fn();
    } catch (err) {
      if (conflictField && isUniqueViolation(err)) throw new StoreConflictError(conflictField(err as Error));
      if (!db.open) throw new StoreUnavailableError('the SQLite database is closed', { cause: err });
      const code = sqliteCode(err);
      if (code && UNAVAILABLE_CODES.some((c) => code === c || code.startsWith(`${c}_`))) {
        throw new StoreUnavailableError(`SQLite failed (${code})`, { cause: err });
      }
      if (code === 'SQLITE_ERROR' && /no such table/.test((err as Error).message)) {
        throw new StoreUnavailableError('the SQLite schema is missing; run migrations', { cause: err });
      }
      throw err;
    }
  }

  return { db, now, statement, call };
}
