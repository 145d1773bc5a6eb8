/**
 * `dinhdanh store backup` for SQLite: a consistent copy of the live database through SQLite's
 * online backup API, written to a private temporary file beside the target, verified, and only
 * then moved into place.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  BackupTargetError, BackupVerificationError, COPY_COLLECTIONS, type BackupOptions, type BackupReport, type CopyCollection,
} from '../types.js';
import { sqliteTable } from './copy.js';

/**
 * The most pages better-sqlite3 lets one step copy (it clamps the progress callback's answer to
 * 0x7fffffff): in effect sqlite3_backup_step(-1), "all remaining source pages".
 */
const ALL_PAGES = 0x7fffffff;
/** How long a step that could not take its read lock (SQLITE_BUSY) is retried before giving up. */
const BUSY_DEADLINE_MS = 30_000;
/** Files SQLite keeps beside a database (https://www.sqlite.org/tempfiles.html). */
const SIDE_FILES = ['-wal', '-shm', '-journal'];

const schemaVersion = (db: Database.Database): number =>
  (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;

/** The file's status (`lstat`: a symbolic link itself), or undefined when there is none. */
function statOrUndefined(file: string, link = false): fs.Stats | undefined {
  try {
    return link ? fs.lstatSync(file) : fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Checks the target before anything is written: its folder exists, it is not the store's own
 * database or a file SQLite keeps beside it, and it is absent (or a file, with `force`).
 * Returns the absolute path.
 */
function checkTarget(to: string, source: string | null, force: boolean): string {
  const target = path.resolve(to);
  const dir = path.dirname(target);
  if (!statOrUndefined(dir)?.isDirectory()) {
    throw new BackupTargetError(`the folder ${dir} does not exist; create it first (the backup is written beside its final name, then renamed)`);
  }
  const current = statOrUndefined(target, true);
  if (source !== null) {
    // What the target names, not how it is spelt: through symbolic links (a dangling one is
    // compared as itself) and hard links (same inode).
    const pointed = statOrUndefined(target);
    const real = pointed ? fs.realpathSync(target) : path.join(fs.realpathSync(dir), path.basename(target));
    const realSource = fs.realpathSync(source);
    const sourceStat = fs.statSync(realSource);
    const own = ['', ...SIDE_FILES].map((suffix) => realSource + suffix);
    if (own.includes(real) || (pointed && pointed.ino === sourceStat.ino && pointed.dev === sourceStat.dev)) {
      throw new BackupTargetError(`${target} is the store's own file; write the backup elsewhere (another machine, in the end)`);
    }
  }
  if (current) {
    if (!force) throw new BackupTargetError(`${target} already exists; choose a new file name, or pass --force to replace it`);
    if (!current.isFile() && !current.isSymbolicLink()) throw new BackupTargetError(`${target} exists and is not a file`);
  }
  return target;
}

function removeQuietly(file: string): void {
  for (const f of [file, ...SIDE_FILES.map((s) => file + s)]) fs.rmSync(f, { force: true });
}

/** Opens the copy read-only and checks it; returns what it holds. */
function verify(file: string, expectedVersion: number): { schemaVersion: number; collections: Record<CopyCollection, number> } {
  let copy: Database.Database;
  try {
    copy = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new BackupVerificationError(`the copy cannot be opened: ${(err as Error).message}`);
  }
  try {
    // https://www.sqlite.org/pragma.html#pragma_integrity_check: a single row "ok", or the problems.
    const problems = (copy.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new BackupVerificationError(`the copy fails SQLite's integrity check: ${problems.slice(0, 5).join('; ')}`);
    }
    const version = schemaVersion(copy);
    if (version !== expectedVersion) {
      throw new BackupVerificationError(`the copy's schema version is ${version}, the store's is ${expectedVersion}`);
    }
    const collections = {} as Record<CopyCollection, number>;
    for (const collection of COPY_COLLECTIONS) {
      collections[collection] = (copy.prepare(`SELECT COUNT(*) AS n FROM ${sqliteTable(collection)}`).get() as { n: number }).n;
    }
    return { schemaVersion: version, collections };
  } catch (err) {
    if (err instanceof BackupVerificationError) throw err;
    throw new BackupVerificationError(`the copy cannot be read: ${(err as Error).message}`);
  } finally {
    copy.close();
  }
}

/** Puts the verified copy at `target`: atomically, and without replacing a file unless `force`. */
function moveIntoPlace(tmp: string, target: string, force: boolean): void {
  if (force) {
    fs.renameSync(tmp, target); // rename(2) replaces the target atomically (same folder, so same filesystem)
    return;
  }
  try {
    // link(2) fails with EEXIST instead of replacing: a file that appeared since the check is kept.
    fs.linkSync(tmp, target);
    fs.unlinkSync(tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new BackupTargetError(`${target} already exists; choose a new file name, or pass --force to replace it`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    // A filesystem without hard links: check, then rename.
    if (statOrUndefined(target, true)) throw new BackupTargetError(`${target} already exists; choose a new file name, or pass --force to replace it`);
    fs.renameSync(tmp, target);
  }
}

/**
 * Backs up the open database `db` (whose file is `source`, or null in memory) to `to`.
 */
export async function backupSqlite(db: Database.Database, source: string | null, to: string, options: BackupOptions = {}): Promise<BackupReport> {
  const force = options.force === true;
  const target = checkTarget(to, source, force);
  const expectedVersion = schemaVersion(db);
  // Hidden, unique, beside the target (so the final rename stays on one filesystem), and private
  // from its creation like the store's own file (sqlite-store.ts): it holds every record.
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${crypto.randomBytes(6).toString('hex')}.tmp`);
  fs.writeFileSync(tmp, '', { flag: 'wx', mode: 0o600 });
  let checked: ReturnType<typeof verify>;
  try {
    const started = Date.now();
    // The online backup API (https://www.sqlite.org/backup.html) copies the database page by page
    // in steps; each sqlite3_backup_step holds a read transaction on the source only while it runs,
    // and a change made through another connection (the running servers) between two steps makes
    // the next step start over from the first page. So the whole copy is made in one step:
    // better-sqlite3 (lib/methods/backup.js) first steps 0 pages, which only counts them, then
    // steps as many pages as this callback returns. Returning the largest count it accepts (not
    // the count just seen, which a writer may outgrow before the next step) copies every page in
    // that one step, inside one read transaction. In WAL mode a reader sees one snapshot while
    // writers go on (https://www.sqlite.org/isolation.html, https://www.sqlite.org/wal.html), so
    // the copy is the database as of one commit, never torn, and it never restarts under load.
    // The callback runs again only when a step could not take its read lock (SQLITE_BUSY).
    await db.backup(tmp, {
      progress: () => {
        if (Date.now() - started > BUSY_DEADLINE_MS) throw new Error(`the store stayed busy for ${BUSY_DEADLINE_MS / 1000} s; try again`);
        return ALL_PAGES;
      },
    });
    // The copy carries the source's WAL flag in its header, and a WAL database opened read-only
    // needs its -shm file beside it or creatable (https://www.sqlite.org/wal.html#readonly): a
    // copy on read-only media could not be opened. Rollback-journal mode makes it one
    // self-contained file; the server switches it back to WAL when it opens it after a restore.
    const rw = new Database(tmp, { fileMustExist: true });
    try {
      rw.pragma('journal_mode = DELETE');
    } finally {
      rw.close();
    }
    checked = verify(tmp, expectedVersion);
    moveIntoPlace(tmp, target, force);
  } catch (err) {
    removeQuietly(tmp);
    if (err instanceof BackupVerificationError) throw new BackupVerificationError(`the backup failed verification and was removed: ${err.message}`);
    throw err;
  }
  // The rename is durable once the folder's entry is on disk.
  const dirFd = fs.openSync(path.dirname(target), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
  return { to: target, bytes: fs.statSync(target).size, integrity: 'ok', ...checked };
}
