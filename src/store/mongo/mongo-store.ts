/**
 * The MongoDB store: reads the URL (never echoing its userinfo), opens the client, builds one
 * repository per file of this folder on a shared context (shared.ts), and does what concerns the
 * whole database: migrations, ping, purge, close.
 */
import { MongoClient, type MongoClientOptions } from 'mongodb';
import type { Store } from '../types.js';
import { createMongoAccountEvidence } from './account-evidence.js';
import { createMongoActivity } from './activity.js';
import { createMongoApprovals } from './approvals.js';
import { createMongoAudit } from './audit.js';
import { createMongoConsents } from './consents.js';
import { createMongoCopy } from './copy.js';
import { createMongoCounters } from './counters.js';
import { createMongoFactors } from './factors.js';
import { createMongoJobs } from './jobs.js';
import { migrateMongo } from './migrations.js';
import { createMongoOidc } from './oidc.js';
import { createMongoOperators } from './operators.js';
import { createMongoOrgs } from './orgs.js';
import { createMongoPersons } from './persons.js';
import { createMongoPortals } from './portals.js';
import { createMongoRecoveryCodes } from './recovery-codes.js';
import { createMongoContext, errorMessage, num, redact } from './shared.js';
import { createMongoSigningKeys } from './signing-keys.js';
import { createMongoSsf } from './ssf.js';
import { createMongoUsage } from './usage.js';

export interface MongoStoreOptions {
  /** `mongodb://…` or `mongodb+srv://…`; never echoed in errors (it may carry a password). */
  url: string;
  /** Clock in epoch ms (default `Date.now`): oidc expiry and record timestamps. Injectable for tests. */
  now?: () => number;
  /** Database name; default the URL's path, else `dinhdanh`. */
  dbName?: string;
  /** Extra driver options (they override the defaults below). */
  clientOptions?: MongoClientOptions;
}

export const DEFAULT_MONGO_DB_NAME = 'dinhdanh';

/** What may be said about a MongoDB URL: its hosts and database, never its userinfo. */
export interface MongoUrlParts {
  scheme: 'mongodb' | 'mongodb+srv';
  /** `host[:port][,host[:port]…]` as written, without userinfo. */
  hosts: string;
  /** The database named in the path, if any. */
  dbName: string | undefined;
  /** The raw and decoded userinfo pieces and option values, to scrub from any message that might repeat them. */
  secrets: string[];
}

// The driver's own split (mongodb-connection-string-url): userinfo ends at the first `@`, hosts run
// to the first `/`, `?` or `@`. Using the same split means we never print part of a password as a
// "host" on a URL the driver would read differently.
const URL_SHAPE = /^(mongodb(?:\+srv)?):\/\/(?:([^:@]*)(?::([^@]*))?@)?((?!:)[^/?@]*)(.*)$/s;

/** Splits a MongoDB URL into what may be shown; throws (without echoing the URL) when malformed. */
export function describeMongoUrl(url: string): MongoUrlParts {
  const match = URL_SHAPE.exec(url);
  if (!match || !match[4]) throw new Error('the MongoDB store URL is malformed (expected mongodb://host[:port][/database])');
  const scheme = match[1] as MongoUrlParts['scheme'];
  const [, , user, password, hosts = '', rest = ''] = match;
  const secrets: string[] = [];
  for (const piece of [user, password]) {
    if (!piece) continue;
    secrets.push(piece);
    try {
      secrets.push(decodeURIComponent(piece));
    } catch {
      // Not valid percent-encoding: the raw form is enough.
    }
  }
  // Option values may carry secrets too (authMechanismProperties tokens, tlsCertificateKeyFilePassword).
  const query = rest.split('?')[1] ?? '';
  for (const pair of query.split('&')) {
    const value = pair.slice(pair.indexOf('=') + 1);
    if (pair.includes('=') && value.length > 0) secrets.push(value);
  }
  let dbName: string | undefined;
  if (rest.startsWith('/')) {
    const path = rest.slice(1).split('?')[0] ?? '';
    try {
      dbName = decodeURIComponent(path) || undefined;
    } catch {
      throw new Error('the MongoDB store URL has a malformed database name');
    }
  }
  return { scheme, hosts, dbName, secrets };
}

/**
 * A Store on MongoDB 6.0+ (driver 7). Collections and indexes come from `migrate()`; every
 * read-modify-write is one conditional single-document operation (no multi-document transactions):
 * see the comments at each repository. On FerretDB 1.x, whose updates are not atomic, writes are
 * additionally serialised per collection within the process (write-lock.ts): correct for one
 * instance, not for several.
 */
export function createMongoStore(options: MongoStoreOptions): Store {
  const now = options.now ?? Date.now;
  const target = describeMongoUrl(options.url);
  const dbName = options.dbName ?? target.dbName ?? DEFAULT_MONGO_DB_NAME;

  let client: MongoClient;
  try {
    client = new MongoClient(options.url, {
      // Fail within seconds when the server is unreachable, rather than after the driver's 30 s: a
      // request then gets its 503 page promptly. Two seconds, because a page may wait twice (when an
      // authorization request fails, oidc-provider reads the portal again to render the error).
      serverSelectionTimeoutMS: 2000,
      connectTimeoutMS: 5000,
      // Security-relevant writes (consumed codes, counters, revocations, audit) must survive a
      // primary failover: acknowledge them only once a majority has them, journaled.
      writeConcern: { w: 'majority', journal: true },
      readPreference: 'primary',
      ...options.clientOptions,
    });
  } catch (err) {
    // The driver's parse errors may quote a username or an option value: those are redacted.
    throw new Error(`the MongoDB store URL is invalid (${redact(errorMessage(err), target.secrets)})`);
  }
  const db = client.db(dbName);
  let closed = false;
  const mongo = createMongoContext({ db, dbName, now, hosts: target.hosts, secrets: target.secrets, isClosed: () => closed });
  const { run, write } = mongo;

  // --- maintenance --------------------------------------------------------------------------

  async function purge(name: string, at: number): Promise<number> {
    return write(name, async () => {
      const result = await db.collection(name).deleteMany({ expiresAt: { $ne: null, $lte: at } });
      return result.deletedCount;
    });
  }

  return {
    kind: 'mongodb',
    oidc: createMongoOidc(mongo),
    persons: createMongoPersons(mongo),
    portals: createMongoPortals(mongo),
    consents: createMongoConsents(mongo),
    counters: createMongoCounters(mongo),
    factors: createMongoFactors(mongo),
    recoveryCodes: createMongoRecoveryCodes(mongo),
    jobs: createMongoJobs(mongo),
    orgs: createMongoOrgs(mongo),
    signingKeys: createMongoSigningKeys(mongo),
    audit: createMongoAudit(mongo),
    accountEvidence: createMongoAccountEvidence(mongo),
    activity: createMongoActivity(mongo),
    operators: createMongoOperators(mongo),
    approvals: createMongoApprovals(mongo),
    usage: createMongoUsage(mongo),
    ssf: createMongoSsf(mongo),
    copy: createMongoCopy({ db, run, write }),
    migrate: () => run(() => migrateMongo(db)),
    ping: () =>
      run(async () => {
        await db.command({ ping: 1 });
      }),
    // Usage statistics have no expiry time: their retention (25 months) and the compaction of
    // finished days are the usage service's hourly work (UsageRepository.compact/purge).
    purgeExpired: async (at) => {
      const t = num(at, 'now');
      let total = 0;
      total += await purge('oidc_models', t);
      total += await purge('counters', t);
      total += await purge('jobs', t);
      total += await purge('org_grants', t);
      total += await purge('activity', t);
      total += await purge('ssf_events', t);
      return total;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await client.close().catch(() => undefined);
    },
  };
}
