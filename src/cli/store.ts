/**
 * `dinhdanh store`: schema migrations, copying every record from one backend to another, and
 * operators' backups.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { BackupTargetError, StoreCopyError, copyStore, createStore, type BackupReport, type Store } from '../store/index.js';
import { UsageError, VerifyFailed, type CliContext } from './shared.js';

/**
 * For a store that cannot copy itself to a file (MongoDB): the database's own tools. `mongodump
 * --oplog` also captures the oplog entries written while it runs, and `mongorestore --oplogReplay`
 * applies them, so the restore is the data as of one moment; --oplog works against replica set
 * members only (MongoDB Database Tools docs, https://www.mongodb.com/docs/database-tools/mongodump/
 * "--oplog", https://www.mongodb.com/docs/database-tools/mongorestore/ "--oplogReplay").
 */
const noBackupAdvice = (kind: string) =>
  `store backup copies SQLite stores only; back up this ${kind} store with \`mongodump --oplog\` against a replica set `
  + '(a point-in-time consistent dump) or your hosting provider\'s snapshots, and restore with `mongorestore --oplogReplay` (README, "Backups")';

function backupTable(r: BackupReport): string {
  return [
    `backed up and verified: ${r.to} (${r.bytes} bytes)`,
    `integrity ok, schema version ${r.schemaVersion}`,
    ...Object.entries(r.collections).map(([collection, count]) => `  ${collection.padEnd(16)} ${String(count).padStart(8)}`),
  ].join('\n');
}

/**
 * Opens (and migrates) the store at `url`, runs `fn` and always closes it. A store that cannot be
 * opened is bad input (exit 2), its message prefixed with `label` when one is given.
 */
async function withStore<T>(url: string, fn: (store: Store) => Promise<T>, label?: string): Promise<T> {
  let store: Store;
  try {
    store = await createStore(url);
  } catch (err) {
    throw new UsageError(label === undefined ? (err as Error).message : `${label}: ${(err as Error).message}`);
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function registerStoreCommands(program: Command, cli: CliContext): void {
  const { io, config, operatorFor, print, withServices } = cli;
  const storeCmd = program.command('store').description('the store: schema migrations, copying between backends, backups');
  storeCmd.command('migrate')
    .description('create or upgrade the schema (collections, tables, indexes) of DINHDANH_STORE; the server never does it at request time')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const cfg = config();
      const kind = await withStore(cfg.storeUrl, async (store) => store.kind);
      print({ json: !!opts.json }, { store: kind, migrated: true }, () => `the ${kind} store is migrated`);
    });
  storeCmd.command('copy')
    .description('copy every record from one store into another, empty one, and verify each collection by count and checksum')
    .requiredOption('--from <url>', 'source store URL (sqlite:<path>, mongodb://…)')
    .requiredOption('--to <url>', 'target store URL')
    .option('--json', 'print JSON')
    .action(async (opts: { from: string; to: string; json?: boolean }) => {
      operatorFor(config());
      if (opts.from === opts.to) throw new UsageError('--from and --to name the same store');
      await withStore(opts.from, (from) => withStore(opts.to, async (to) => {
        let results;
        try {
          results = await copyStore(from, to);
        } catch (err) {
          if (err instanceof StoreCopyError) throw new UsageError(err.message);
          throw err;
        }
        const ok = results.every((r) => r.verified);
        if (!ok) {
          const bad = results.filter((r) => !r.verified).map((r) => r.collection).join(', ');
          io.stderr(`dinhdanh: the copy differs from the source in: ${bad}\n`);
        }
        print({ json: !!opts.json }, { from: from.kind, to: to.kind, verified: ok, collections: results }, () =>
          [...results.map((r) => `${r.verified ? 'ok  ' : 'DIFF'}  ${r.collection.padEnd(16)} ${String(r.count).padStart(8)}  ${r.checksum.slice(0, 16)}`),
            ok ? `copied and verified: ${from.kind} → ${to.kind}` : 'the copy is NOT verified'].join('\n'));
        if (!ok) throw new VerifyFailed();
      }, '--to'), '--from');
    });
  storeCmd.command('backup')
    .description('write a consistent copy of the SQLite store to a file while the server runs, verify it, then put it in place')
    .requiredOption('--to <file>', 'the backup file, in an existing folder (keep it off this machine)')
    .option('--force', 'replace an existing file')
    .option('--json', 'print JSON')
    .action(async (opts: { to: string; force?: boolean; json?: boolean }) => {
      const operator = operatorFor(config());
      if (opts.to.trim() === '') throw new UsageError('--to names no file');
      const to = path.resolve(io.cwd, opts.to);
      const { kind, r } = await withServices(async (s) => {
        if (!s.store.backup) throw new UsageError(noBackupAdvice(s.store.kind));
        const r = await s.store.backup(to, { force: opts.force === true });
        s.audit.record('STORE_BACKED_UP', { operator, to: r.to, bytes: r.bytes, schema_version: r.schemaVersion });
        await s.audit.flush();
        return { kind: s.store.kind, r };
      }, BackupTargetError);
      print({ json: !!opts.json }, {
        store: kind, to: r.to, bytes: r.bytes, integrity: r.integrity, schema_version: r.schemaVersion, collections: r.collections,
      }, () => backupTable(r));
    });
}
