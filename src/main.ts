/**
 * Composition root: load configuration, open the store, build services, start serving.
 */
import fs from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig } from './config/config.js';
import { KeyMaterialError } from './keys/key-files.js';
import { composeSystem } from './compose.js';
import { createLogger } from './services.js';

const PURGE_INTERVAL_MS = 10 * 60_000;

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
    system = await composeSystem(config, { logger });
  } catch (err) {
    if (err instanceof KeyMaterialError) {
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
  server.listen(config.port, config.host, () => {
    logger.info({ issuer: config.issuer, port: config.port, store: system.store.kind, env: config.env }, 'dinhdanh is serving');
    if (config.env !== 'production') {
      console.error([
        '',
        `dinhdanh is serving ${config.issuer} (discovery: ${config.issuer}/.well-known/openid-configuration)`,
        system.keys.generated.length ? `WARNING: development keys were generated in ${config.keysDir}; never use them in production.` : '',
        'Next steps, in another terminal:',
        '  1. register a portal:  npm run cli -- portals add --name "My portal" --redirect-uri http://localhost:8080/callback',
        '  2. add a citizen:      echo "a long passphrase of yours" | npm run cli -- accounts add --pid 001099012345 --name "Nguyễn Văn An" --birthdate 1999-05-01 --gender male --password-stdin',
        '  3. point the portal at the discovery URL above and sign in.',
        '',
      ].filter((l) => l !== '').join('\n'));
    }
  });

  // Back-channel logout deliveries and session-expiry sweeps (durable jobs in the store).
  system.jobs.start();

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
    server.close(() => {
      system.close().finally(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

// Run when executed directly (npm start), not when imported by the CLI.
// argv[1] may be a symlink (a `current` release link) or need percent-encoding; import.meta.url is
// the resolved, encoded real path.
const entry = process.argv[1] ? pathToFileURL(fs.realpathSync(process.argv[1])).href : '';
if (import.meta.url === entry) {
  void serve();
}
