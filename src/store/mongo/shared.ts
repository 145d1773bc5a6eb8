/**
 * What every MongoDB repository shares: the checks that let only validated scalars reach a filter,
 * the reading of driver errors, and a context (createMongoContext) that runs driver calls with
 * store errors and serialises writes where the server needs it.
 */
import type { Collection, Db, Document } from 'mongodb';
import { StoreConflictError, StoreUnavailableError } from '../types.js';
import { withWriteLock } from './write-lock.js';

/** The text with every secret (URL userinfo, option values) replaced by `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***');
  return out;
}

// --- validation: only checked scalars reach a filter ------------------------------------------

export function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  return value;
}

export function num(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${what} must be a finite number`);
  return value;
}

/** A deterministic `_id` for a pair of strings (injective: JSON quoting keeps the parts apart). */
export function pairId(a: string, b: string): string {
  return JSON.stringify([a, b]);
}

/** Number of documents to return for a caller's limit (a limit below 1 means none, as in SQL). */
export function limitOf(limit: number): number {
  return Math.floor(num(limit, 'limit'));
}

/** Records without an expiry, or whose expiry is still ahead of `at`. */
export function liveAt(at: number): { $or: Document[] } {
  return { $or: [{ expiresAt: null }, { expiresAt: { $gt: at } }] };
}

// --- errors ---------------------------------------------------------------------------------

function errorCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

function errorName(err: unknown): string {
  const name = typeof err === 'object' && err !== null ? (err as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name : '';
}

export function errorMessage(err: unknown): string {
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(err);
}

export function isDuplicateKey(err: unknown): boolean {
  const code = errorCode(err);
  if (code === 11000 || code === 11001) return true;
  // FerretDB 1.x reports a unique violation met by an update (not an insert) as InternalError.
  return code === 1 && /UNIQUE constraint failed/.test(errorMessage(err));
}

/** The duplicated key's field or index name when the server says (MongoDB does; FerretDB may not). */
export function duplicateKeyHint(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { keyPattern } = err as { keyPattern?: unknown };
  if (keyPattern && typeof keyPattern === 'object') {
    const [first] = Object.keys(keyPattern);
    if (first) return first;
  }
  const message = errorMessage(err);
  return /index: (\S+)/.exec(message)?.[1] ?? /index '([^']+)'/.exec(message)?.[1];
}

export function hintNames(hint: string | undefined, field: string, indexName: string): boolean {
  return hint !== undefined && (hint === field || hint === indexName || hint.endsWith(`_${indexName}`));
}

/** Driver errors meaning the server cannot be reached or cannot serve now (as opposed to a bad request). */
const UNAVAILABLE_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoTopologyClosedError',
  'MongoNotConnectedError',
  'MongoServerClosedError',
  'MongoPoolClosedError',
  'MongoPoolClearedError',
  'MongoWriteConcernError',
  'MongoOperationTimeoutError',
  'MongoStalePrimaryError',
]);

/** Server error codes of the same kind: unreachable hosts, elections, shutdowns, auth, timeouts. */
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  13, // Unauthorized
  18, // AuthenticationFailed
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * Node's socket errors that can reach us unwrapped: a command written to a connection the server
 * has just closed (killed, restarted) fails in driver 7 with Node's own "This socket has been ended
 * by the other party" — code EPIPE, no `syscall` — not a MongoNetworkError.
 */
const SOCKET_CODES = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

function isUnavailable(err: unknown): boolean {
  if (UNAVAILABLE_NAMES.has(errorName(err))) return true;
  const code = errorCode(err);
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) return true;
  if (typeof err === 'object' && err !== null) {
    const labelled = (err as { hasErrorLabel?: unknown }).hasErrorLabel;
    if (typeof labelled === 'function' && (labelled as (label: string) => boolean).call(err, 'RetryableWriteError')) return true;
    // DNS (mongodb+srv) and socket errors from Node itself: ENOTFOUND, ECONNREFUSED, ETIMEOUT, ...
    const { syscall, code: sysCode } = err as { syscall?: unknown; code?: unknown };
    if (typeof syscall === 'string' && typeof sysCode === 'string' && sysCode.startsWith('E')) return true;
    if (typeof sysCode === 'string' && SOCKET_CODES.has(sysCode)) return true;
  }
  return false;
}

/** Attempts at an optimistic step (audit append) before the store reports it cannot make progress. */
export const MAX_ATTEMPTS = 200;

/** What a repository factory is given: one per store, built by `createMongoStore`. */
export interface MongoContext {
  db: Db;
  /** Clock in epoch ms: oidc expiry and record timestamps. */
  now: () => number;
  /** `MongoDB at <hosts>`, for messages (never the URL: it may carry a password). */
  where: string;
  /** Runs a driver call, translating driver errors into store errors. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** A call that writes `collection`: atomic on MongoDB by itself, serialised in-process on FerretDB 1.x. */
  write<T>(collection: string, fn: () => Promise<T>): Promise<T>;
}

export interface MongoContextOptions {
  db: Db;
  dbName: string;
  now: () => number;
  /** The URL's hosts, as written (no userinfo). */
  hosts: string;
  /** What to scrub from driver messages (describeMongoUrl's `secrets`). */
  secrets: readonly string[];
  /** True once the store was closed. */
  isClosed: () => boolean;
}

export function createMongoContext(options: MongoContextOptions): MongoContext {
  const { db, dbName, now, hosts, secrets, isClosed } = options;
  const where = `MongoDB at ${hosts}`;

  function unavailable(err: unknown): StoreUnavailableError {
    if (isClosed()) return new StoreUnavailableError('the MongoDB store is closed', { cause: err });
    return new StoreUnavailableError(`${where} is unavailable (${redact(errorMessage(err), secrets)})`, { cause: err });
  }

  async function run<T>(fn: () => Promise<T>): Promise<T> {
    // The driver reconnects on demand after close(); a closed store must not.
    if (isClosed()) throw new StoreUnavailableError('the MongoDB store is closed');
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreConflictError || err instanceof StoreUnavailableError) throw err;
      if (isClosed() || isUnavailable(err)) throw unavailable(err);
      throw err;
    }
  }

  // FerretDB 1.x applies updates as read-then-write without isolation (see write-lock.ts): on it,
  // writes of one collection are serialised in this process. Decided once per store from buildInfo.
  let serialised: Promise<boolean> | undefined;
  function needsWriteLock(): Promise<boolean> {
    serialised ??= db
      .admin()
      .command({ buildInfo: 1 })
      .then((info) => typeof info.ferretdbVersion === 'string' && /^v?[01]\./.test(info.ferretdbVersion))
      .catch((err: unknown) => {
        serialised = undefined;
        throw err;
      });
    return serialised;
  }

  function write<T>(collection: string, fn: () => Promise<T>): Promise<T> {
    return run(async () =>
      (await needsWriteLock()) ? withWriteLock(`${hosts}/${dbName}/${collection}`, fn) : fn(),
    );
  }

  return { db, now, where, run, write };
}

/** Inserts; on a duplicate key calls `onDuplicate` (which may return a value or throw a conflict). */
export async function insert<D extends Document, T>(
  collection: Collection<D>,
  doc: D,
  onDuplicate: (err: unknown) => Promise<T> | T,
): Promise<T | undefined> {
  try {
    await collection.insertOne(doc as Parameters<Collection<D>['insertOne']>[0]);
    return undefined;
  } catch (err) {
    if (isDuplicateKey(err)) return onDuplicate(err);
    throw err;
  }
}
