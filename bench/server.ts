/**
 * The benchmark's dinhdanh: a production-mode system (operator keys, https issuer, one trusted
 * proxy hop) on a scratch SQLite store, served over plain http on 127.0.0.1 the way it runs behind
 * its TLS-terminating proxy; the load generator sends `X-Forwarded-Proto: https` and
 * `X-Forwarded-Host` as that proxy would. Run by bench/run.ts (`fork`, IPC), never by hand.
 *
 * Arguments: --dir <scratch folder, seeded by bench/seed.ts> [--log-level <pino level>]
 *            [--metrics on|off]                                 (DINHDANH_METRICS; default on)
 *            [--serve app|split] [--oidc-store sqlite|memory]   (diagnostics: bench/lib/variants.ts)
 *            [--count-sql]                                      (diagnostics: bench/lib/sql-count.ts)
 *
 * Everything is as `npm start` runs it in production (src/main.ts): the same composition, the
 * request log at `info` (to /dev/null: the parent does not keep the child's stdout), the job
 * poller, the key reload, the purge and the audit head timers, and the operators' listener on a
 * loopback port of its own (the console and, with metrics on, `/metrics`, which the parent scrapes
 * once per measured window as Prometheus would). argon2id is the product's.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { composeSystem, type System } from '../src/compose.js';
import { createAccessLogger, createLogger } from '../src/services.js';
import { KEY_RELOAD_MS } from '../src/keys/signing-keys.js';
import { SESSION_ABSOLUTE_MS, SESSION_IDLE_MS, TTL } from '../src/provider/provider.js';
import { recordSession } from '../src/provider/account-session.js';
import { LOA } from '../src/provider/levels.js';
import { addToUsage, fatal, guardParent, ready, serveCommands } from './lib/child.js';
import { countSql, sqlCounts } from './lib/sql-count.js';
import { splitHandler, useMemoryOidcStore } from './lib/variants.js';
import { benchConfig, readSeed } from './lib/bench-config.js';
import type { Command } from './lib/protocol.js';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    serve: { type: 'string', default: 'app' },
    'oidc-store': { type: 'string', default: 'sqlite' },
    'count-sql': { type: 'boolean', default: false },
    metrics: { type: 'string', default: 'on' },
  },
});

const started = Date.now();
let system: System | undefined;
let server: http.Server | undefined;
let adminServer: http.Server | undefined;
const timers: NodeJS.Timeout[] = [];

async function close(): Promise<void> {
  for (const t of timers) clearInterval(t);
  for (const s of [server, adminServer]) {
    if (!s) continue;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  await system?.close();
}

async function main(): Promise<void> {
  guardParent(close);
  if (args['count-sql']) {
    countSql();
    addToUsage(() => ({ sql: sqlCounts() }));
  }
  const dir = args.dir;
  if (!dir) throw new Error('--dir is required');
  if (args.metrics !== 'on' && args.metrics !== 'off') throw new Error('--metrics: on or off');
  const config = benchConfig(dir, args['log-level'], args.metrics);
  const { portal, persons } = readSeed(dir);
  const sys = await composeSystem(config, { logger: createLogger(config), accessLogger: createAccessLogger(config) });
  system = sys;

  // The timers src/main.ts starts in production.
  sys.jobs.start();
  timers.push(setInterval(() => { sys.reloadKeys().catch(() => undefined); }, KEY_RELOAD_MS));
  timers.push(setInterval(() => { sys.store.purgeExpired(Date.now()).catch(() => undefined); }, 10 * 60_000));
  timers.push(setInterval(() => { sys.store.audit.head().catch(() => undefined); }, 5 * 60_000));
  for (const t of timers) t.unref();

  if (args['oidc-store'] === 'memory') useMemoryOidcStore(sys.store);
  else if (args['oidc-store'] !== 'sqlite') throw new Error('--oidc-store: sqlite or memory');
  if (args.serve !== 'app' && args.serve !== 'split') throw new Error('--serve: app or split');
  const srv = http.createServer(args.serve === 'split' ? splitHandler(sys) : sys.app.callback());
  srv.headersTimeout = 20_000;
  srv.requestTimeout = 30_000;
  server = srv;
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  // The operators' listener, as src/main.ts starts it (loopback; config.admin.port is 0 here).
  const admin = http.createServer(sys.adminApp.callback());
  admin.headersTimeout = 20_000;
  admin.requestTimeout = 30_000;
  adminServer = admin;
  await new Promise<void>((resolve) => admin.listen(config.admin.port, config.admin.host, resolve));
  sys.adminListening((admin.address() as AddressInfo).port);

  /**
   * `count` signed-in SSO sessions, written through the real storage path: oidc-provider's Session
   * and Grant models (our adapter, our SQLite store), and what a password sign-in writes beside
   * them (src/provider/provider.ts's login check: the start, idle and authentication counters, the
   * lifecycle's expiry job, the session's record for the person's session list). A sign-in over
   * HTTP costs one argon2id verification, so 10,000 of them would take minutes of CPU; this skips
   * only the password check and the HTTP exchange.
   */
  async function makeSessions(n: number): Promise<Record<string, unknown>> {
    const provider = sys.provider();
    const rssBefore = process.memoryUsage().rss;
    const t0 = Date.now();
    const one = async (i: number) => {
      const person = persons[i % persons.length]!;
      const t = Date.now();
      const session = new provider.Session();
      session.loginAccount({ accountId: person.id, acr: LOA.low, amr: ['pwd'] } as Parameters<typeof session.loginAccount>[0]);
      const grant = new provider.Grant({ accountId: person.id, clientId: portal.client_id });
      grant.addOIDCScope('openid profile');
      const grantId = await grant.save();
      session.ensureClientContainer(portal.client_id);
      session.grantIdFor(portal.client_id, grantId);
      await session.save(TTL.Session);
      await Promise.all([
        sys.store.counters.increment(`session-start:${session.uid}`, SESSION_ABSOLUTE_MS, t),
        sys.store.counters.increment(`session-seen:${session.uid}`, SESSION_IDLE_MS, t, { slide: true }),
        sys.store.counters.increment(`session-auth:${session.uid}`, SESSION_ABSOLUTE_MS, t, { slide: true }),
      ]);
      await sys.sessions.started(session.uid, t, SESSION_IDLE_MS);
      await recordSession(sys.store, person.id, { uid: session.uid, startedAt: t, userAgent: 'dinhdanh-bench/1', ip: `10.1.${(i >> 8) & 255}.${i & 255}` }, TTL.Session);
    };
    for (let i = 0; i < n; i += 32) {
      await Promise.all(Array.from({ length: Math.min(32, n - i) }, (_, j) => one(i + j)));
    }
    const m = process.memoryUsage();
    // Then after a full collection (the child runs with --expose-gc): what is live, not yet-unswept garbage.
    (globalThis as { gc?: () => void }).gc?.();
    const g = process.memoryUsage();
    return {
      rssBefore, rssAfter: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external,
      rssAfterGc: g.rss, heapUsedAfterGc: g.heapUsed, ms: Date.now() - t0, sessions: n,
    };
  }

  serveCommands(async (command: Command) => {
    if (command.cmd === 'sessions') return makeSessions(command.count);
    if (command.cmd === 'flush') {
      // What the usage recorder's 5 s timer would write next, written now: the parent asks at the
      // end of a measured window so that the window pays for the statistics of its own sign-ins.
      await sys.usage?.flush();
      return { flushed: sys.usage !== null };
    }
    return undefined;
  });

  ready({
    port: (srv.address() as AddressInfo).port,
    portal,
    persons: persons.map(({ pid, password }) => ({ pid, password })),
    setupMs: Date.now() - started,
    adminPort: (admin.address() as AddressInfo).port,
    metrics: sys.metrics !== null,
  });
}

main().catch(fatal);
