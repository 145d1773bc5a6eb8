#!/usr/bin/env node
/**
 * The integration suites once more against MongoDB (issue 7), after `npm test`'s SQLite run:
 * every test server gets a database of its own on MONGODB_URI. (The store contract suite already
 * ran against MongoDB in the first pass.) Suites that are about SQLite files or CLI processes with
 * their own stores run only in the first pass, as do the TLS proxy suite (a production process on
 * SQLite) and the store-outage suite (MongoDB already, on a FerretDB of its own). Without
 * MONGODB_URI this pass is skipped, saying so.
 */
import { spawnSync } from 'node:child_process';
import process from 'node:process';
import console from 'node:console';

if (!process.env.MONGODB_URI) {
  console.log('MongoDB integration pass skipped: set MONGODB_URI (as .ci/run does, with FerretDB) to run it.');
  process.exit(0);
}
const result = spawnSync(
  process.execPath,
  [
    'node_modules/jest/bin/jest.js',
    'test/integration',
    '--testPathIgnorePatterns', '/(cli|production-start|multi-instance|outbound-guard|tls-proxy|store-outage|backup)\\.test\\.ts$',
  ],
  {
    stdio: 'inherit',
    env: { ...process.env, NODE_OPTIONS: '--experimental-vm-modules', DINHDANH_TEST_STORE: 'mongodb' },
  },
);
process.exit(result.status ?? 1);
