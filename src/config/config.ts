/**
 * The only reader of process.env. Validated once, frozen, then passed down explicitly.
 */
import path from 'node:path';

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  readonly issuer: string;
  readonly storeUrl: string;
  readonly keysDir: string;
  /** How many reverse-proxy hops to trust for X-Forwarded-* (0 = none). */
  readonly trustProxyHops: number;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function parseIntStrict(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function parseIssuer(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`DINHDANH_ISSUER must be an absolute URL, got "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('DINHDANH_ISSUER must be an http(s) URL');
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError('DINHDANH_ISSUER must not carry a query, fragment or credentials');
  }
  if (url.pathname !== '/') {
    // The provider is mounted at the root of our app; an issuer with a path would need a prefix
    // that the interaction routes do not have.
    throw new ConfigError('DINHDANH_ISSUER must not have a path (serve dinhdanh at the root of its host)');
  }
  return url.origin;
}

/** Reads and validates configuration from an environment (process.env by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Config {
  const nodeEnv = env.NODE_ENV ?? 'development';
  if (nodeEnv !== 'development' && nodeEnv !== 'production' && nodeEnv !== 'test') {
    throw new ConfigError(`NODE_ENV must be development, production or test, got "${nodeEnv}"`);
  }
  const port = env.PORT ? parseIntStrict('PORT', env.PORT, 0, 65535) : 3000;
  const issuer = parseIssuer(env.DINHDANH_ISSUER ?? `http://localhost:${port}`);
  const storeUrl = env.DINHDANH_STORE ?? 'sqlite:data/dinhdanh.db';
  const keysDir = path.resolve(cwd, env.DINHDANH_KEYS_DIR ?? 'keys');
  const trustProxyHops = env.DINHDANH_TRUST_PROXY_HOPS
    ? parseIntStrict('DINHDANH_TRUST_PROXY_HOPS', env.DINHDANH_TRUST_PROXY_HOPS, 0, 10)
    : 0;
  const logLevel = env.LOG_LEVEL ?? (nodeEnv === 'test' ? 'silent' : 'info');
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}`);
  const host = env.HOST ?? (nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1');

  if (nodeEnv === 'production' && new URL(issuer).protocol !== 'https:') {
    throw new ConfigError(`refusing to start in production on a non-https issuer (${issuer}): set DINHDANH_ISSUER to the public https URL`);
  }
  if (nodeEnv === 'production' && trustProxyHops === 0) {
    // dinhdanh serves plain HTTP: in production TLS ends at a proxy, and without trusting it the
    // cookies lose `Secure` and every citizen shares the proxy's address for rate limits.
    throw new ConfigError('refusing to start in production without DINHDANH_TRUST_PROXY_HOPS: set it to the number of TLS-terminating proxies in front (usually 1)');
  }

  return Object.freeze({ env: nodeEnv, port, host, issuer, storeUrl, keysDir, trustProxyHops, logLevel });
}
