/**
 * Composition root: load configuration, open the store, build services, start serving.
 */
import fs from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { KeyMaterialError } from './keys/key-files.js';
import { composeSystem, type System } from './compose.js';
import { createAccessLogger, createLogger } from './services.js';
import { KEY_RELOAD_MS, KeyRingError } from './keys/signing-keys.js';
import { startDemo, type Demo } from './demo/index.js';

const PURGE_INTERVAL_MS = 10 * 60_000;
const AUDIT_HEAD_INTERVAL_MS = 5 * 60_000;

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
  const logger = createLogger(config);
  let system;
  try {
    system = await composeSystem(config, { logger, accessLogger: createAccessLogger(config) });
  } catch (err) {
    if (err instanceof KeyMaterialError || err instanceof KeyRingError) {
      logger.fatal({ code: 'key_material' }, err.message);
      console.error(`dinhdanh: ${err.message}`);
      process.exit(2);
    }
    logger.fatal({ err }, 'could not start');
    console.error(`dinhdanh: could not start: ${(err as Error).message}`);
    process.exit(1);
  }

  for (const file of system.keys.generated) {
    logger.warn({ file }, 'generated DEVELOPMENT key material; never use it in production');
  }

  const server = http.createServer(system.app.callback());
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  // The development demo portals start once dinhdanh listens (they discover it at their first request).
  let demoStarting: Promise<Demo | null> = Promise.resolve(null);
  server.listen(config.port, config.host, () => {
    logger.info({ issuer: config.issuer, port: config.port, store: system.store.kind, env: config.env }, 'dinhdanh is serving');
    if (config.env === 'production') return;
    if (!config.demo) {
      printBanner(config, system, null);
      return;
    }
    demoStarting = startDemo(system).then(
      (demo) => {
        printBanner(config, system, demo);
        return demo;
      },
      (err: unknown) => {
        logger.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'the demo portals did not start');
        printBanner(config, system, null, err as Error);
        return null;
      },
    );
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

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    clearInterval(purge);
    clearInterval(keyReload);
    clearInterval(auditHead);
    const demoClosed = demoStarting.then((demo) => demo?.close()).catch(() => undefined);
    server.close(() => {
      demoClosed.then(() => system.close()).finally(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

/**
 * What to do next, on the terminal (development only). The demo citizen's password is printed here
 * and nowhere else: never through the logger.
 */
function printBanner(config: Config, system: System, demo: Demo | null, demoError?: Error): void {
  const lines = [
    '',
    `dinhdanh is serving ${config.issuer} (discovery: ${config.issuer}/.well-known/openid-configuration)`,
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

// Run when executed directly (npm start), not when imported by the CLI.
// argv[1] may be a symlink (a `current` release link) or need percent-encoding; import.meta.url is
// the resolved, encoded real path.
const entry = process.argv[1] ? pathToFileURL(fs.realpathSync(process.argv[1])).href : '';
if (import.meta.url === entry) {
  void serve();
}
