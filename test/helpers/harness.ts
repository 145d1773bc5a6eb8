/**
 * A real dinhdanh on a temporary SQLite file and keys folder, listening on a loopback port.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../../src/config/config.js';
import { composeSystem, type System } from '../../src/compose.js';
import type { PortalInput } from '../../src/portals/index.js';
import { validatePortalInput } from '../../src/portals/index.js';

export interface TestServer {
  issuer: string;
  /** The operators' console's origin (its own listener, as in production). */
  adminUrl: string;
  system: System;
  dir: string;
  close(): Promise<void>;
  addPortal(input?: Partial<Parameters<typeof validatePortalInput>[0]>): Promise<{ client_id: string; client_secret: string; redirect_uri: string; input: PortalInput }>;
  addPerson(input?: Partial<{ pid: string; name: string; birthdate: string; gender: string; email: string; phone: string; level: string; password: string; contactsVerified: boolean }>): Promise<{ id: string; pid: string; password: string }>;
}

/**
 * The store of a test server: a SQLite file in its folder, or — when the suite runs against
 * MongoDB (`DINHDANH_TEST_STORE=mongodb` with `MONGODB_URI`, as `.ci/run` does) — a database of
 * its own on that server.
 */
export const TEST_STORE_KIND: 'sqlite' | 'mongodb' = process.env.DINHDANH_TEST_STORE === 'mongodb' && process.env.MONGODB_URI ? 'mongodb' : 'sqlite';

function testStoreUrl(dir: string): string {
  if (TEST_STORE_KIND === 'sqlite') return `sqlite:${path.join(dir, 'data', 'dinhdanh.db')}`;
  const url = new URL(process.env.MONGODB_URI!);
  url.pathname = `/dd_${path.basename(dir).replace(/[^A-Za-z0-9]/g, '').slice(-12)}_${Date.now().toString(36)}`;
  return url.href;
}

/** Drops a test server's database; one that cannot be dropped is left, said on stderr (the test's outcome stands). */
async function dropDatabase(url: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  try {
    await client.connect();
    await client.db().dropDatabase();
  } catch (err) {
    process.stderr.write(`test database not dropped: ${(err as Error).message}\n`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

export const DEFAULT_PASSWORD = 'mây trắng bay về phía núi xa 2024';

/**
 * `host: 'localhost'` serves on `http://localhost:<port>` instead of `http://127.0.0.1:<port>`:
 * WebAuthn RP IDs are host names, never IP addresses (the passkey tests need it).
 */
export async function startTestServer(options: {
  /** The store's clock for record expiry (tests that let hours pass for stored records). */
  storeNow?: () => number;
  env?: Record<string, string>;
  now?: () => number;
  host?: 'localhost';
  /** Receives every log line (JSON) at level info and above, for tests that read the logs. */
  logSink?: (line: string) => void;
  /** The store to use instead of the suite's (a test that runs its own database server). */
  storeUrl?: string;
} = {}): Promise<TestServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-test-'));
  const server = http.createServer();
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${host}:${port}`;
  const adminServer = http.createServer();
  await new Promise<void>((resolve) => adminServer.listen(0, host, resolve));
  const adminPort = (adminServer.address() as AddressInfo).port;
  const config = loadConfig({
    DINHDANH_ADMIN_HOST: host,
    DINHDANH_ADMIN_PORT: String(adminPort),
    NODE_ENV: 'test',
    PORT: String(port),
    DINHDANH_ISSUER: issuer,
    DINHDANH_STORE: options.storeUrl ?? testStoreUrl(dir),
    DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  }, dir);
  const logger = options.logSink
    ? pino({ level: 'info' }, { write: options.logSink })
    : pino({ level: config.logLevel });
  const system = await composeSystem(config, { logger, now: options.now, storeNow: options.storeNow });
  server.on('request', system.app.callback());
  adminServer.on('request', system.adminApp.callback());

  let portalCount = 0;
  let personCount = 0;
  return {
    issuer,
    adminUrl: `http://${host}:${adminPort}`,
    system,
    dir,
    async close() {
      server.closeAllConnections();
      adminServer.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => adminServer.close(() => resolve()));
      await system.close();
      // A test server's own MongoDB database goes with it: FerretDB keeps a SQLite file and a
      // connection pool open per database, so a pass that left hundreds of them behind would run
      // the server out of file descriptors and memory part-way through.
      if (!options.storeUrl && TEST_STORE_KIND === 'mongodb') await dropDatabase(config.storeUrl);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async addPortal(raw = {}) {
      portalCount += 1;
      const redirect = `http://localhost:${9000 + portalCount}/callback`;
      const input = validatePortalInput({ name: `Cổng thử nghiệm ${portalCount}`, redirectUris: [redirect], ...raw }, { production: false });
      const reg = await system.portals.register(input);
      return { client_id: reg.client_id, client_secret: reg.client_secret!, redirect_uri: input.redirectUris[0]!, input };
    },
    async addPerson(raw = {}) {
      personCount += 1;
      // Hanoi (001), male born 1990s: digit 4 = 0, digits 5-6 = 90.
      const pid = raw.pid ?? `001090${String(personCount).padStart(6, '0')}`;
      const input = { pid, name: 'Nguyễn Văn An', birthdate: '1990-03-15', gender: 'male', password: DEFAULT_PASSWORD, email: 'an@example.vn', ...raw };
      const person = await system.accounts.create(input);
      return { id: person.id, pid: person.pid, password: input.password };
    },
  };
}
