#!/usr/bin/env node
/**
 * The integration suites once more against MongoDB (issue 7), after `npm test`'s SQLite run:
 * every test server gets a database of its own on MONGODB_URI. (The store contract suite already
 * ran against MongoDB in the first pass.) Suites that are about SQLite files or CLI processes with
 * their own stores run only in the first pass, as do the TLS proxy suite (a production process on
 * SQLite) and the store-outage suite (MongoDB already, on a FerretDB of its own). Without
 * MONGODB_URI this pass is skipped, saying so.
 */
import { spawn } from 'node:child_process';
import process from 'node:process';
import console from 'node:console';
import fs from 'node:fs';
import { setInterval, clearInterval, setTimeout, clearTimeout } from 'node:timers';
import { MongoClient } from 'mongodb';

if (!process.env.MONGODB_URI) {
  console.log('MongoDB integration pass skipped: set MONGODB_URI (as .ci/run does, with FerretDB) to run it.');
  process.exit(0);
}

// A database server that stops answering part-way would otherwise leave every remaining test to
// fail on its own 30-second timeout, one after another, for hours: the pass is stopped instead,
// saying why, once the server has not answered a ping for WATCHDOG_MS.
const WATCHDOG_MS = 90_000;
// The whole pass takes about ten minutes; one that has run for this long is stuck (a test waiting
// on something that never comes), and is stopped, naming where it was (test/reporters/progress.mjs).
const PASS_LIMIT_MS = 35 * 60_000;
const PING_EVERY_MS = 10_000;
const client = new MongoClient(process.env.MONGODB_URI, { serverSelectionTimeoutMS: 5_000 });
let lastAnswer = Date.now();
let stoppedByWatchdog = false;

const jest = spawn(
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

const watchdog = setInterval(() => {
  client.db('admin').command({ ping: 1 }, { timeoutMS: 5_000 }).then(
    () => { lastAnswer = Date.now(); },
    (err) => {
      if (Date.now() - lastAnswer < WATCHDOG_MS || stoppedByWatchdog) return;
      stoppedByWatchdog = true;
      console.error(`MongoDB integration pass stopped: ${process.env.MONGODB_URI.replace(/\/\/[^@/]*@/, '//')} has not answered a ping for ${Math.round((Date.now() - lastAnswer) / 1000)} s (${err.message})`);
      jest.kill('SIGTERM');
    },
  );
}, PING_EVERY_MS);

/** The last lines of the progress file (.ci/run sets DINHDANH_TEST_PROGRESS), if there is one. */
function progressTail(lines = 30) {
  const file = process.env.DINHDANH_TEST_PROGRESS;
  if (!file || !fs.existsSync(file)) return '(no progress file: set DINHDANH_TEST_PROGRESS to keep one)';
  return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

const limit = setTimeout(() => {
  stoppedByWatchdog = true;
  console.error(`MongoDB integration pass stopped after ${PASS_LIMIT_MS / 60_000} minutes. The last tests it ran:\n${progressTail()}`);
  jest.kill('SIGTERM');
}, PASS_LIMIT_MS);

jest.on('exit', (code, signal) => {
  clearInterval(watchdog);
  clearTimeout(limit);
  if (stoppedByWatchdog) console.error(`Where the pass was:\n${progressTail()}`);
  void client.close().finally(() => process.exit(stoppedByWatchdog ? 1 : code ?? (signal ? 1 : 0)));
});
