/**
 * The SQLite store: opens the database file (WAL), builds one repository per file of this folder on
 * a shared context (shared.ts), and does what concerns the whole database: migrations, ping, purge.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { StoreUnavailableError, type Store } from '../types.js';
import { createSqliteAccountEvidence } from './account-evidence.js';
import { createSqliteActivity } from './activity.js';
import { createSqliteApprovals } from './approvals.js';
import { createSqliteAudit } from './audit.js';
import { backupSqlite } from './backup.js';
import { createSqliteConsents } from './consents.js';
import { createSqliteCopy } from './copy.js';
import { createSqliteCounters } from './counters.js';
import { createSqliteFactors } from './factors.js';
import { createSqliteJobs } from './jobs.js';
import { migrate } from './migrations.js';
import { createSqliteOidc } from './oidc.js';
import { createSqliteOperators } from './operators.js';
import { createSqliteOrgs } from './orgs.js';
import { createSqlitePersons } from './persons.js';
import { createSqlitePortals } from './portals.js';
import { createSqliteRecoveryCodes } from './recovery-codes.js';
import { createSqliteContext } from './shared.js';
import { createSqliteSigningKeys } from './signing-keys.js';
import { createSqliteUsage } from './usage.js';
import { createSqliteSsf } from './ssf.js';

export interface SqliteStoreOptions {
  /** A file path, or `:memory:`. */
  filename: string;
  /** Clock in epoch ms (default `Date.now`): oidc expiry and record timestamps. Injectable for tests. */
  now?: () => number;
}

export function createSqliteStore(options: SqliteStoreOptions): Store {
  const now = options.now ?? Date.now;
  const memory = options.filename === ':memory:';

  let opened: Database.Database | undefined;
  try {
    if (!memory) {
      const file = path.resolve(options.filename);
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // Create the file ourselves so it is private; SQLite gives -wal/-shm the same mode.
      try {
        fs.writeFileSync(file, '', { flag: 'wx', mode: 0o600 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    opened = new Database(options.filename);
    // busy_timeout first: switching to WAL needs a lock another process may briefly hold.
    opened.pragma('busy_timeout = 5000');
    opened.pragma('journal_mode = WAL');
    opened.pragma('foreign_keys = ON');
    opened.pragma('synchronous = NORMAL');
  } catch (err) {
    if (opened?.open) opened.close();
    throw new StoreUnavailableError('cannot open the SQLite database', { cause: err });
  }
  const db = opened;
  const sqlite = createSqliteContext(db, now);
  const { statement, call } = sqlite;

  // --- maintenance --------------------------------------------------------------------------

  const purgeOidc = statement<[number]>('DELETE FROM oidc_models WHERE expires_at IS NOT NULL AND expires_at <= ?');
  const purgeCounters = statement<[number]>('DELETE FROM counters WHERE expires_at <= ?');
  const selectOne = statement<[]>('SELECT 1');
  const purgeJobs = statement<[number]>('DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?');
  const purgeOrgGrants = statement<[number]>('DELETE FROM org_grants WHERE expires_at <= ?');
  const purgeActivity = statement<[number]>('DELETE FROM activity WHERE expires_at <= ?');
  // Security events: undelivered ones 14 days after they were made, delivered ones a day after.
  const purgeSsf = statement<[number]>('DELETE FROM ssf_events WHERE expires_at <= ?');
  // Usage statistics have no expiry time: their retention (25 months) and the compaction of finished
  // days are the usage service's hourly work (UsageRepository.compact/purge), not this purge's.
  const purge = db.transaction(
    (at: number) =>
      purgeOidc().run(at).changes +
      purgeCounters().run(at).changes +
      purgeJobs().run(at).changes +
      purgeOrgGrants().run(at).changes +
      purgeActivity().run(at).changes +
      purgeSsf().run(at).changes,
  );

  return {
    kind: 'sqlite',
    oidc: createSqliteOidc(sqlite),
    persons: createSqlitePersons(sqlite),
    portals: createSqlitePortals(sqlite),
    consents: createSqliteConsents(sqlite),
    counters: createSqliteCounters(sqlite),
    factors: createSqliteFactors(sqlite),
    recoveryCodes: createSqliteRecoveryCodes(sqlite),
    jobs: createSqliteJobs(sqlite),
    orgs: createSqliteOrgs(sqlite),
    signingKeys: createSqliteSigningKeys(sqlite),
    audit: createSqliteAudit(sqlite),
    accountEvidence: createSqliteAccountEvidence(sqlite),
    activity: createSqliteActivity(sqlite),
    operators: createSqliteOperators(sqlite),
    approvals: createSqliteApprovals(sqlite),
    usage: createSqliteUsage(sqlite),
    ssf: createSqliteSsf(sqlite),
    copy: createSqliteCopy(() => db, (fn) => call(fn)),
    backup: (to, backupOptions) => backupSqlite(db, memory ? null : path.resolve(options.filename), to, backupOptions),
    migrate: () => call(() => migrate(db)),
    ping: () =>
      call(() => {
        selectOne().get();
      }),
    purgeExpired: (at) => call(() => purge(at)),
    close: async () => {
      if (db.open) db.close();
    },
  };
}
