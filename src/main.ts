/**
 * Composition root: load configuration, start tracing when asked, open the store, build services,
 * start serving.
 *
 * The rest of the system is imported only once tracing has started (`await import` below): the
 * MongoDB driver's instrumentation hooks `require`, so it must be in place before anything loads
 * the driver (services, the store, the signing keys and the demo all do).
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import type { ComposeOptions } from './services.js';
import type { System } from './compose.js';
import type { Demo } from './demo/index.js';
import { TracingConfigError, startTracing, tracingConfigured, type Tracing } from './metrics/tracing.js';

const PURGE_INTERVAL_MS = 10 * 60_000;
const AUDIT_HEAD_INTERVAL_MS = 5 * 60_000;
/** How long requests in flight at SIGTERM may take to finish. */
const DRAIN_MS = 10_000;
/** How long the log lines still buffered at the end may take to reach the reader of stdout. */
const LOG_CLOSE_MS = 3_000;

export async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`dinhdanh: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  // OpenTelemetry's own variables (OTEL_*), read by its SDK as well: null, and nothing of it
  // loaded, without an OTLP endpoint.
  let tracing: Tracing | null;
  try {
    tracing = tracingConfigured(process.env)
      ? await startTracing(process.env, { mongodb: /^mongodb(\+srv)?:/.test(config.storeUrl), version: await packageVersionOf() })
      : null;
  } catch (err) {
    if (err instanceof TracingConfigError) {
      console.error(`dinhdanh: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const [{ composeSystem }, { closeLogs, createAccessLogger, createLogger }, { KeyMaterialError }, { KEY_RELOAD_MS, KeyRingError }, { demoRegistrationLines, startDemo }] = await Promise.all([
    import('./compose.js'), import('./services.js'), import('./keys/key-files.js'), import('./keys/signing-keys.js'), import('./demo/index.js'),
  ]);
  // While tracing, each log line written within a request carries its trace and span ids.
  const logOptions = tracing ? { mixin: tracing.logMixin } : {};
  const logger = createLogger(config, logOptions);
  tracing?.reportTo(logger);
  // `tracing` goes to the listeners' middleware, the store's hooks and the outbound fetch (compose.ts).
  const options: ComposeOptions & { tracing?: Tracing | null } = { logger, accessLogger: createAccessLogger(config, logOptions), tracing };
  let system: System;
  try {
    system = await composeSystem(config, options);
  } catch (err) {
    const keyMaterial = err instanceof KeyMaterialError || err instanceof KeyRingError;
    if (keyMaterial) logger.fatal({ code: 'key_material' }, err.message);
    else logger.fatal({ err }, 'could not start');
    console.error(`dinhdanh: ${keyMaterial ? '' : 'could not start: '}${(err as Error).message}`);
    await tracing?.shutdown();
    await closeLogs(LOG_CLOSE_MS);
    process.exit(keyMaterial ? 2 : 1);
  }

  for (const file of system.keys.generated) {
    logger.warn({ file }, 'generated DEVELOPMENT key material; never use it in production');
  }

  const handle = system.app.callback();
  /** Responses not yet finished, and whether the server is stopping (see `shutdown`). */
  const unfinished = new Set<http.ServerResponse>();
  let stopping = false;
  const server = http.createServer((req, res) => {
    unfinished.add(res);
    res.once('close', () => unfinished.delete(res));
    if (stopping) res.shouldKeepAlive = false;
    void handle(req, res);
  });
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  // The development demo portals start once dinhdanh listens (they discover it at their first request).
  let demoStarting: Promise<Demo | null> = Promise.resolve(null);
  server.listen(config.port, config.host, () => {
    logger.info({ issuer: config.issuer, port: config.port, store: system.store.kind, env: config.env }, 'dinhdanh is serving');
    if (config.env === 'production') return;
    if (!config.demo) {
      printBanner(config, system, demoRegistrationLines, null);
      return;
    }
    demoStarting = startDemo(system).then(
      (demo) => {
        printBanner(config, system, demoRegistrationLines, demo);
        return demo;
      },
      (err: unknown) => {
        logger.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'the demo portals did not start');
        printBanner(config, system, demoRegistrationLines, null, err as Error);
        return null;
      },
    );
  });

  // The operators' console: its own listener, never the public one (PRODUCT.md, "Operators' console").
  const adminHandle = system.adminApp.callback();
  const adminServer = http.createServer((req, res) => {
    unfinished.add(res);
    res.once('close', () => unfinished.delete(res));
    if (stopping) res.shouldKeepAlive = false;
    void adminHandle(req, res);
  });
  adminServer.headersTimeout = 20_000;
  adminServer.requestTimeout = 30_000;
  adminServer.on('error', (err) => {
    logger.fatal({ err: { name: err.name, message: err.message } }, 'the operators\' listener could not start');
    console.error(`dinhdanh: the operators' listener could not start on ${config.admin.host}:${config.admin.port}: ${err.message} (set DINHDANH_ADMIN_PORT)`);
    void closeLogs(LOG_CLOSE_MS).finally(() => process.exit(1));
  });
  adminServer.listen(config.admin.port, config.admin.host, () => {
    const address = adminServer.address();
    if (address && typeof address === 'object') system.adminListening(address.port);
    logger.info({ console: system.adminOrigin() }, 'the operators\' console is serving');
  });

  // Back-channel logout deliveries and session-expiry sweeps (durable jobs in the store).
  system.jobs.start();
  // Key rotations (by any instance or the CLI) and scheduled activations reach this instance here.
  const keyReload = setInterval(() => {
    system.reloadKeys().catch((err: unknown) => logger.error({ err }, 'signing keys could not be reloaded; still using the previous set'));
  }, KEY_RELOAD_MS);
  keyReload.unref();
  // The audit chain's head goes to the log output (shipped elsewhere): a rewrite of the whole
  // table then disagrees with heads already on record (`dinhdanh audit verify --head <seq:hash>`).
  const auditHead = setInterval(() => {
    system.store.audit.head().then(
      (head) => head && logger.info({ audit_head: `${head.seq}:${head.hash}` }, 'audit log head'),
      (err: unknown) => logger.warn({ err }, 'audit log head could not be read'),
    );
  }, AUDIT_HEAD_INTERVAL_MS);
  auditHead.unref();

  const purge = setInterval(() => {
    system.store.purgeExpired(Date.now()).then(
      (n) => n && logger.debug({ purged: n }, 'expired records purged'),
      (err) => logger.warn({ err }, 'purge failed'),
    );
  }, PURGE_INTERVAL_MS);
  purge.unref();

  /**
   * SIGTERM (a supervisor's restart) or SIGINT: stop taking connections, let the requests in flight
   * finish (at most DRAIN_MS), hand back the jobs still running, close the store, write out the
   * logs, exit 0. A second signal of the same kind ends the process at once (its default action).
   */
  async function shutdown(signal: NodeJS.Signals): Promise<void> {
    logger.info({ signal }, 'shutting down');
    clearInterval(purge);
    clearInterval(keyReload);
    clearInterval(auditHead);

    // Connection: close on every response not yet begun, and on any request still to come on an
    // open connection: the client learns that this connection ends with this response before it
    // could send another on it (RFC 9112 §9.6), and Node closes it once the response is written.
    stopping = true;
    for (const res of unfinished) if (!res.headersSent) res.shouldKeepAlive = false;
    // The listener closes now (new connections are refused), but not through server.close(): since
    // Node 19 that also destroys every idle keep-alive connection at once (closeIdleConnections),
    // and a client may be sending a request on one at that very moment; it would meet a reset.
    // An idle connection ends instead with its next response (Connection: close), or when the
    // keep-alive timeout every response announced (`Keep-Alive: timeout=5`; Node closes a second
    // later) runs out, as in normal operation: clients that keep to it have let go of it by then.
    // Both come well within DRAIN_MS.
    let drained = false;
    const connectionsClosed = Promise.all([server, adminServer].map((s) => new Promise<void>((resolve) => {
      if (!s.listening) {
        resolve();
        return;
      }
      net.Server.prototype.close.call(s, () => resolve());
    }))).then(() => {
      drained = true;
    });
    let drainTimer: NodeJS.Timeout | undefined;
    const drainEnd = Promise.race([connectionsClosed, new Promise<void>((resolve) => { drainTimer = setTimeout(resolve, DRAIN_MS); })]);
    // No job is claimed from now on; the running ones go on while the requests drain, and those
    // still running at its end go back to the queue, due at once, for another instance.
    const jobsStopped = system.jobs.stop(drainEnd);
    const demoClosed = demoStarting.then((demo) => demo?.close()).catch(() => undefined);

    await drainEnd;
    clearTimeout(drainTimer);
    if (!drained) {
      logger.warn({ requests: unfinished.size }, `connections still open after ${DRAIN_MS / 1000} s are closed`);
      server.closeAllConnections();
      adminServer.closeAllConnections();
    }
    await jobsStopped;
    await demoClosed;
    await system.close();
    // The spans still buffered go to the collector (at most 3 s).
    await tracing?.shutdown();
    logger.info({ signal }, 'stopped');
    await closeLogs(LOG_CLOSE_MS);
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    // Whatever hangs in the shutdown (a store that does not answer), the process ends. Not unref'd:
    // were the event loop to run empty first, Node would exit without `closeLogs`.
    setTimeout(() => {
      logger.error('shutdown did not finish in time');
      void closeLogs(LOG_CLOSE_MS).finally(() => process.exit(1));
    }, DRAIN_MS + 10_000);
    shutdown(signal).then(
      () => process.exit(0),
      async (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        await closeLogs(LOG_CLOSE_MS);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/**
 * What to do next, on the terminal (development only). The demo citizen's password is printed here
 * and nowhere else: never through the logger.
 */
function printBanner(
  config: Config, system: System, demoRegistrationLines: typeof import('./demo/index.js').demoRegistrationLines, demo: Demo | null, demoError?: Error,
): void {
  const lines = [
    '',
    `dinhdanh is serving ${config.issuer} (discovery: ${config.issuer}/.well-known/openid-configuration)`,
    `operators' console: ${system.adminOrigin()}/admin (operators sign in at loa:high; see "dinhdanh operators add")`,
    system.keys.generated.length ? `WARNING: development keys were generated in ${config.keysDir}; never use them in production.` : null,
    '',
  ];
  if (demo) {
    const width = Math.max(...demo.portals.map((p) => p.name.length)) + 2;
    lines.push(
      'Try single sign-on with the two demo portals (development only; DINHDANH_DEMO=off turns them off):',
      ...demo.portals.map((p) => `  ${`${p.name}:`.padEnd(width)} ${p.url}`),
      `  demo citizen ${demo.citizen.name}`,
      `    identification number:  ${demo.citizen.pid}`,
      demo.citizen.password
        ? `    password:               ${demo.citizen.password}   (a new one at every start)`
        : '    password:               unchanged: this number belongs to an account that is not the demo\'s',
      '  Sign in at the first, open the second (no password asked: single sign-on), then sign out of all portals.',
      ...demoRegistrationLines(config, demo.registrant),
      '',
    );
  } else if (demoError) {
    lines.push(
      `The demo portals did not start: ${demoError.message.replace(/\.$/, '')}.`,
      '  Set DINHDANH_DEMO_PORTS=<port>,<port> to use other ports, or DINHDANH_DEMO=off to turn them off.',
      '',
    );
  }
  lines.push(
    'Your own portal, in another terminal:',
    '  1. register it:    npm run cli -- portals add --name "My portal" --redirect-uri http://localhost:8080/callback',
    '  2. add a citizen:  echo "a long passphrase of yours" | npm run cli -- accounts add --pid 001099012345 --name "Nguyễn Văn An" --birthdate 1999-05-01 --gender male --password-stdin',
    '  3. point the portal at the discovery URL above and sign in.',
    '',
  );
  console.error(lines.filter((l) => l !== null).join('\n'));
}

/** package.json's version (the traces' service.version), read without loading services.ts before tracing starts. */
async function packageVersionOf(): Promise<string | undefined> {
  const { PACKAGE_ROOT } = await import('./http/paths.js');
  try {
    const { version } = JSON.parse(await fs.promises.readFile(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { version?: unknown };
    return typeof version === 'string' ? version : undefined;
  } catch {
    return undefined;
  }
}

// Run when executed directly (npm start), not when imported by the CLI.
// argv[1] may be a symlink (a `current` release link) or need percent-encoding; import.meta.url is
// the resolved, encoded real path.
const entry = process.argv[1] ? pathToFileURL(fs.realpathSync(process.argv[1])).href : '';
if (import.meta.url === entry) {
  void serve();
}
