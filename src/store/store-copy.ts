/**
 * `dinhdanh store copy --from <url> --to <url>` (issue 7): moves every record between backends
 * (SQLite → MongoDB for a growing deployment) through their backend-neutral export, then verifies
 * each collection by count and by a checksum computed the same way on both sides.
 */
import crypto from 'node:crypto';
import { COPY_COLLECTIONS, type CopyCollection, type Store } from './types.js';

const BATCH = 500;

/**
 * The usage statistics' collections (types.ts: UsageRepository), carried like the others:
 * usageCounts records are { day, portal, key, n }, usageTags records { day, portal, tag } (the tags
 * of days not yet compacted: without them a copied day's distinct count would be lost).
 */
export const USAGE_COPY_COLLECTIONS = ['usageCounts', 'usageTags'] as const;
export type CopyableCollection = CopyCollection | (typeof USAGE_COPY_COLLECTIONS)[number];
/** Every collection `store copy` carries, in order (a name already in COPY_COLLECTIONS once). */
export const ALL_COPY_COLLECTIONS: readonly CopyableCollection[] = [...new Set<CopyableCollection>([...COPY_COLLECTIONS, ...USAGE_COPY_COLLECTIONS])];

/** StoreCopy over every collection: what both backends' copies implement. */
export interface FullStoreCopy {
  exportAll(collection: CopyableCollection): AsyncIterable<Record<string, unknown>>;
  importMany(collection: CopyableCollection, records: readonly Record<string, unknown>[]): Promise<void>;
}

const copyOf = (store: Store): FullStoreCopy => store.copy as unknown as FullStoreCopy;

/** JSON with sorted keys, so equal records hash equally whatever the backend's field order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export interface CollectionSummary {
  collection: CopyableCollection;
  count: number;
  /** sha256 over the sorted canonical records. */
  checksum: string;
}

export async function summarise(store: Store, collection: CopyableCollection): Promise<CollectionSummary> {
  const lines: string[] = [];
  for await (const record of copyOf(store).exportAll(collection)) lines.push(canonical(record));
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
  for (const collection of ALL_COPY_COLLECTIONS) {
    let batch: Record<string, unknown>[] = [];
    for await (const record of copyOf(from).exportAll(collection)) {
      batch.push(record);
      if (batch.length >= BATCH) {
        await copyOf(to).importMany(collection, batch);
        batch = [];
      }
    }
    await copyOf(to).importMany(collection, batch);
  }
  const results = [];
  for (const collection of ALL_COPY_COLLECTIONS) {
    const [source, target] = await Promise.all([summarise(from, collection), summarise(to, collection)]);
    results.push({ ...source, verified: source.count === target.count && source.checksum === target.checksum });
  }
  return results;
}
