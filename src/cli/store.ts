/**
 * `dinhdanh store`: schema migrations, and copying every record from one backend to another.
 */
import type { Command } from 'commander';
import { StoreCopyError, copyStore, createStore, type Store } from '../store/index.js';
import { UsageError, VerifyFailed, type CliContext } from './shared.js';

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
  const { io, config, operatorFor, print } = cli;
  const storeCmd = program.command('store').description('the store: schema migrations, copying between backends');
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
}
