/**
 * Builds the running system from configuration: store, key material, services, provider, app.
 * Used by main.ts and by the integration tests (which pass their own store URL and keys folder).
 */
import pino, { type Logger } from 'pino';
import type Koa from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from './config/config.js';
import { createStore, type Store } from './store/index.js';
import { loadKeyMaterial, type KeyMaterial } from './keys/key-files.js';
import { createSecretBox } from './keys/secret-box.js';
import { createPortalService, type PortalService } from './portals/index.js';
import { createAccountService, createAuthenticationService, createPasswordHasher, type AccountService, type PasswordHasher } from './accounts/index.js';
import { createAuditService, type AuditService } from './audit/index.js';
import { createRenderer } from './http/render.js';
import { createCsrf } from './http/csrf.js';
import { createProvider } from './provider/provider.js';
import { buildApp } from './app.js';

export interface System {
  config: Config;
  logger: Logger;
  store: Store;
  keys: KeyMaterial;
  portals: PortalService;
  accounts: AccountService;
  hasher: PasswordHasher;
  audit: AuditService;
  provider: Provider;
  app: Koa;
  close(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'dinhdanh' },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'password', '*.password', 'client_secret', '*.client_secret'], censor: '[redacted]' },
  });
}

export interface ComposeOptions {
  logger?: Logger;
  hasher?: PasswordHasher;
  now?: () => number;
}

/** Services that need the store and keys but not the HTTP app (the CLI uses these). */
export async function composeServices(config: Config, options: ComposeOptions = {}) {
  const logger = options.logger ?? createLogger(config);
  const keys = await loadKeyMaterial({ keysDir: config.keysDir, production: config.env === 'production' });
  const store = await createStore(config.storeUrl);
  const secretBox = createSecretBox(keys.dataKeys);
  const audit = createAuditService({ logger });
  const hasher = options.hasher ?? createPasswordHasher();
  const portals = createPortalService({ repo: store.portals, secretBox });
  const accounts = createAccountService({ persons: store.persons, hasher, audit });
  return { config, logger, keys, store, secretBox, audit, hasher, portals, accounts };
}

export async function composeSystem(config: Config, options: ComposeOptions = {}): Promise<System> {
  const services = await composeServices(config, options);
  const { logger, keys, store, audit, hasher, portals } = services;
  const renderer = createRenderer({ cache: config.env === 'production' });
  const provider = createProvider({ config, keys, store, portals, renderer, logger, pairwiseSalt: keys.pairwiseSalt });
  const auth = createAuthenticationService({ persons: store.persons, counters: store.counters, hasher, audit, now: options.now });
  const app = buildApp({
    config, logger, store, provider, renderer, auth, audit,
    csrf: createCsrf(keys.cookieKeys),
    cookieKeys: keys.cookieKeys,
  });
  // The first unknown-identifier sign-in would otherwise pay for computing the dummy hash.
  await hasher.verifyDummy('warm-up');
  return { ...services, provider, app, close: () => store.close() };
}
