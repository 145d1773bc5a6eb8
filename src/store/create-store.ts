import path from 'node:path';
import type { Store } from './types.js';
import { DEFAULT_MONGO_DB_NAME, createMongoStore, describeMongoUrl } from './mongo/mongo-store.js';
import { createSqliteStore } from './sqlite/sqlite-store.js';

const ACCEPTED = 'sqlite:<path>, sqlite::memory:, mongodb://… or mongodb+srv://…';

export interface CreateStoreOptions {
  /** Clock in epoch ms (default `Date.now`); injectable so tests can move time. */
  now?: () => number;
}

/**
 * Opens the store named by `url` and applies pending migrations.
 * Accepted: `sqlite:<path>` (relative to the working directory), `sqlite::memory:`,
 * `mongodb://…` and `mongodb+srv://…` (the database is the URL's path, default `dinhdanh`).
 * Error messages never repeat the URL: it may carry a password.
 */
export async function createStore(url: string, options: CreateStoreOptions = {}): Promise<Store> {
  if (url.startsWith('mongodb://') || url.startsWith('mongodb+srv://')) {
    const target = describeMongoUrl(url);
    const store = createMongoStore({ url, now: options.now, dbName: target.dbName ?? DEFAULT_MONGO_DB_NAME });
    try {
      // Connects (or fails within the 2 s server selection timeout) before migrating.
      await store.ping();
      await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }
  if (url.startsWith('sqlite:')) {
    const target = url.slice('sqlite:'.length);
    if (target === '') throw new Error(`the store URL has no SQLite path; expected ${ACCEPTED}`);
    const filename = target === ':memory:' ? ':memory:' : path.resolve(process.cwd(), target);
    const store = createSqliteStore({ filename, now: options.now });
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }
  // Name only the scheme, and only if it looks like one.
  const scheme = /^[a-z][a-z0-9+.-]{0,30}:/i.exec(url)?.[0];
  throw new Error(
    `unsupported store URL${scheme ? ` (scheme "${scheme}")` : ''}; expected ${ACCEPTED}`,
  );
}
