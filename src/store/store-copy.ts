/**
 * `dinhdanh store copy --from <url> --to <url>` (issue 7): moves every record between backends
 * (SQLite → MongoDB for a growing deployment) through their backend-neutral export, then verifies
 * each collection by count and by a checksum computed the same way on both sides.
 */
import crypto from 'node:crypto';
import { COPY_COLLECTIONS, type CopyCollection, type Store } from './types.js';

const BATCH = 500;

/** JSON with sorted keys, so equal records hash equally whatever the backend's field order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export interface CollectionSummary {
  collection: CopyCollection;
  count: number;
  /** sha256 over the sorted canonical records. */
  checksum: string;
}

export async function summarise(store: Store, collection: CopyCollection): Promise<CollectionSummary> {
  const lines: string[] = [];
  for await (const record of store.copy.exportAll(collection)) lines.push(canonical(record));
  lines.sort();
  const hash = crypto.createHash('sha256');
  for (const l of lines) hash.update(l).update('\n');
  return { collection, count: lines.length, checksum: hash.digest('hex') };
}

export class StoreCopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreCopyError';
  }
}

/** Copies every collection; refuses a target that already holds people or portals. */
export async function copyStore(from: Store, to: Store): Promise<Array<CollectionSummary & { verified: boolean }>> {
  for (const guarded of ['persons', 'portals'] as const) {
    for await (const _record of to.copy.exportAll(guarded)) {
      throw new StoreCopyError(`the target store already holds ${guarded}: copy into an empty store`);
    }
  }
  for (const collection of COPY_COLLECTIONS) {
    let batch: Record<string, unknown>[] = [];
    for await (const record of from.copy.exportAll(collection)) {
      batch.push(record);
      if (batch.length >= BATCH) {
        await to.copy.importMany(collection, batch);
        batch = [];
      }
    }
    await to.copy.importMany(collection, batch);
  }
  const results = [];
  for (const collection of COPY_COLLECTIONS) {
    const [source, target] = await Promise.all([summarise(from, collection), summarise(to, collection)]);
    results.push({ ...source, verified: source.count === target.count && source.checksum === target.checksum });
  }
  return results;
}
