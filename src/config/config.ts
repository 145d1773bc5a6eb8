/**
 * The only reader of process.env. Validated once, frozen, then passed down explicitly.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCidrList } from '../outbound/index.js';

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
  /** HTTP SMS gateway for one-time codes (null: no gateway; outside production the outbox stands in). */
  readonly smsGateway: Readonly<{ url: string; token: string }> | null;
  /** SMTP relay for one-time codes by e-mail (null: none; outside production the outbox stands in). */
  readonly smtp: Readonly<{ url: string; from: string }> | null;
  /** Development/test outbox for messages (absolute path). */
  readonly outboxDir: string;
  /**
   * Private or special-use networks that portal-supplied URLs (back-channel logout, `jwks_uri`) may
   * reach. Outside production loopback and private addresses are always allowed; in production
   * only these (SSRF guard, SECURITY.md #29).
   */
  readonly outboundAllowCidrs: readonly string[];
  /**
   * The population registry (PRODUCT.md, "Population registry"; src/registry/): `url` as configured
   * (`file:<absolute path>` or the adapter's http(s) URL, never logged: it may carry a key), `path`
   * the absolute file of a `file:` registry (null for http(s)), `token` the adapter's bearer token
   * (null for a file).
   */
  readonly registry: Readonly<{ url: string; path: string | null; token: string | null }>;
  /** How long an account reset waits before its link goes out (`DINHDANH_ACCOUNT_RESET_WAIT`, ms). */
  readonly accountResetWaitMs: number;
  /**
   * Key-encryption key for the signing keys in the store (32 bytes, base64url), from a secret
   * manager; null: the keys folder's data keys seal them.
   */
  readonly keyEncryptionKey: string | null;
  /** Who runs the CLI (`DINHDANH_OPERATOR`; `--operator` overrides); required in production. */
  readonly operator: string | null;
  /**
   * The two development demo portals (src/demo/): null when off. Never on in production. Port 0
   * picks a free port (tests).
   */
  readonly demo: Readonly<{ ports: readonly [national: number, provincial: number] }> | null;
  /**
   * The operators' console's own listener (PRODUCT.md, "Operators' console"): `DINHDANH_ADMIN_HOST`
   * (127.0.0.1), `DINHDANH_ADMIN_PORT` (PORT+100; 0 when PORT is 0: a free port), and
   * `DINHDANH_ADMIN_URL`, the origin operators' browsers use when a TLS proxy stands in front of it
   * (null: `http://<host>:<port>`). Never the public listener.
   */
  readonly admin: Readonly<{ host: string; port: number; url: string | null }>;
  /**
   * Prometheus metrics and usage statistics (metrics/): `DINHDANH_METRICS` (on/off, default on: off
   * leaves no registry, no statistics and no `/metrics`) and `DINHDANH_METRICS_TOKEN`, the bearer
   * token a scraper must send to `/metrics` on the operators' listener (null: none asked).
   */
  readonly metrics: Readonly<{ enabled: boolean; token: string | null }>;
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

/**
 * The SMS gateway URL. Messages never repeat the value: a gateway URL may carry a key in its query.
 * In production the bearer token and the codes travel only over https.
 */
function parseSmsGateway(env: NodeJS.ProcessEnv, production: boolean): Config['smsGateway'] {
  const rawUrl = env.DINHDANH_SMS_GATEWAY_URL;
  const token = env.DINHDANH_SMS_GATEWAY_TOKEN;
  if (!rawUrl) {
    if (token) throw new ConfigError('DINHDANH_SMS_GATEWAY_TOKEN is set but DINHDANH_SMS_GATEWAY_URL is not: set both, or neither');
    return null;
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new ConfigError('DINHDANH_SMS_GATEWAY_URL must be an absolute http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError('DINHDANH_SMS_GATEWAY_URL must be an http(s) URL');
  if (url.username || url.password) throw new ConfigError('DINHDANH_SMS_GATEWAY_URL must not carry credentials: put the token in DINHDANH_SMS_GATEWAY_TOKEN');
  if (production && url.protocol !== 'https:') {
    throw new ConfigError('refusing to start in production with a non-https DINHDANH_SMS_GATEWAY_URL: the token and the codes would travel in clear');
  }
  if (!token) throw new ConfigError('DINHDANH_SMS_GATEWAY_TOKEN is required when DINHDANH_SMS_GATEWAY_URL is set');
  // Sent as `Authorization: Bearer <token>` (RFC 6750 §2.1: b64token characters only).
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw new ConfigError('DINHDANH_SMS_GATEWAY_TOKEN must be a bearer token (letters, digits and -._~+/ only, no spaces)');
  }
  return Object.freeze({ url: url.href, token });
}

/**
 * `DINHDANH_REGISTRY` and `DINHDANH_REGISTRY_TOKEN`. `file:<path>` (relative to the working folder,
 * or absolute; `file:///…` URLs too) is the development and test stand-in and is refused in
 * production (PRODUCT.md: the file registry is "refused in production"), as is any URL that is not
 * https: the token and every applicant's identity attributes travel with each question. Outside
 * production `http://` is accepted so tests can run a local registry. Messages never repeat the URL
 * or the token.
 */
function parseRegistry(env: NodeJS.ProcessEnv, production: boolean, cwd: string): Config['registry'] {
  const raw = env.DINHDANH_REGISTRY || 'file:data/registry.jsonl';
  const token = env.DINHDANH_REGISTRY_TOKEN || null;
  if (raw.startsWith('file:')) {
    if (production) {
      throw new ConfigError('refusing to start in production with a file registry (DINHDANH_REGISTRY unset or file:…, the development stand-in): set DINHDANH_REGISTRY to the https URL of the national population database\'s adapter and DINHDANH_REGISTRY_TOKEN to its bearer token');
    }
    if (token !== null) throw new ConfigError('DINHDANH_REGISTRY_TOKEN is set but DINHDANH_REGISTRY is a file: the token is only for an https registry; remove it');
    let file: string;
    if (raw.startsWith('file://')) {
      try {
        file = fileURLToPath(raw);
      } catch {
        throw new ConfigError('DINHDANH_REGISTRY must be file:<path> (e.g. file:data/registry.jsonl) or a local file:///… URL');
      }
    } else {
      file = raw.slice('file:'.length);
    }
    if (file.trim() === '') throw new ConfigError('DINHDANH_REGISTRY=file: needs a path, e.g. file:data/registry.jsonl');
    const resolved = path.resolve(cwd, file);
    return Object.freeze({ url: `file:${resolved}`, path: resolved, token: null });
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('DINHDANH_REGISTRY must be file:<path> or the https URL of the population registry adapter');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('DINHDANH_REGISTRY must be file:<path> or the https URL of the population registry adapter');
  }
  if (url.username || url.password) throw new ConfigError('DINHDANH_REGISTRY must not carry credentials: put the token in DINHDANH_REGISTRY_TOKEN');
  if (url.hash) throw new ConfigError('DINHDANH_REGISTRY must not have a fragment');
  if (production && url.protocol !== 'https:') {
    throw new ConfigError('refusing to start in production with a non-https DINHDANH_REGISTRY: the token and every applicant\'s identity would travel in clear');
  }
  if (token === null) throw new ConfigError('DINHDANH_REGISTRY_TOKEN is required when DINHDANH_REGISTRY is an http(s) URL (the adapter\'s bearer token)');
  // Sent as `Authorization: Bearer <token>` (RFC 6750 §2.1: b64token characters only).
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw new ConfigError('DINHDANH_REGISTRY_TOKEN must be a bearer token (letters, digits and -._~+/ only, no spaces)');
  }
  return Object.freeze({ url: url.href, path: null, token });
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration in the CLI's syntax (`keys rotate --activate-after`, src/keys/signing-keys.ts): `0`,
 * `90s`, `15m`, `1h`, `2d` (a bare number is seconds), at most `max` ms.
 */
function parseDurationMs(name: string, value: string, maxMs: number): number {
  const m = /^(\d{1,6})([smhd])?$/.exec(value.trim());
  if (!m) throw new ConfigError(`${name} must be a duration such as 0, 90s, 15m, 1h or 2d, got "${value}"`);
  const ms = Number(m[1]) * DURATION_UNITS_MS[m[2] ?? 's']!;
  if (ms > maxMs) throw new ConfigError(`${name} must be at most ${maxMs / 86_400_000} days, got "${value}"`);
  return ms;
}

/** `Name <addr@domain>` or `addr@domain`, on one line. */
const MAIL_FROM_RE = /^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)$/;

/** The SMTP relay. Messages never repeat the URL: it may carry a password. */
function parseSmtp(env: NodeJS.ProcessEnv): Config['smtp'] {
  const rawUrl = env.DINHDANH_SMTP_URL;
  const from = env.DINHDANH_MAIL_FROM;
  if (!rawUrl) {
    if (from) throw new ConfigError('DINHDANH_MAIL_FROM is set but DINHDANH_SMTP_URL is not: set both, or neither');
    return null;
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new ConfigError('DINHDANH_SMTP_URL must be an absolute smtp:// or smtps:// URL');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new ConfigError('DINHDANH_SMTP_URL must start with smtp:// or smtps://');
  if (!url.hostname) throw new ConfigError('DINHDANH_SMTP_URL must name a host');
  if (!from) throw new ConfigError('DINHDANH_MAIL_FROM is required when DINHDANH_SMTP_URL is set (e.g. "dinhdanh <no-reply@id.example.gov.vn>")');
  if (!MAIL_FROM_RE.test(from.trim())) {
    throw new ConfigError(`DINHDANH_MAIL_FROM must be an address such as no-reply@id.example.gov.vn or "dinhdanh <no-reply@id.example.gov.vn>", got ${JSON.stringify(from)}`);
  }
  return Object.freeze({ url: url.href, from: from.trim() });
}

/**
 * `DINHDANH_DEMO` (on/off; on by default in development only) and `DINHDANH_DEMO_PORTS` (two ports,
 * `PORT+1,PORT+2` by default). The demo registers portals and resets a citizen's password at every
 * start: it is a development tool, and production refuses it.
 */
function parseDemo(env: NodeJS.ProcessEnv, nodeEnv: Config['env'], port: number): Config['demo'] {
  const raw = env.DINHDANH_DEMO;
  if (raw !== undefined && raw !== 'on' && raw !== 'off') {
    throw new ConfigError(`DINHDANH_DEMO must be on or off, got "${raw}"`);
  }
  if (raw === 'on' && nodeEnv === 'production') {
    throw new ConfigError('refusing to start in production with DINHDANH_DEMO=on: the demo portals are for development only (they register portals and reset the demo citizen\'s password at every start); remove the variable or set it to off');
  }
  const enabled = raw === undefined ? nodeEnv === 'development' : raw === 'on';

  let ports: [number, number] | undefined;
  if (env.DINHDANH_DEMO_PORTS !== undefined) {
    const parts = env.DINHDANH_DEMO_PORTS.split(',').map((p) => p.trim());
    if (parts.length !== 2) {
      throw new ConfigError(`DINHDANH_DEMO_PORTS must be two ports separated by a comma (national,provincial), e.g. 3001,3002; got "${env.DINHDANH_DEMO_PORTS}"`);
    }
    ports = [parseIntStrict('DINHDANH_DEMO_PORTS', parts[0]!, 0, 65535), parseIntStrict('DINHDANH_DEMO_PORTS', parts[1]!, 0, 65535)];
    if (ports[0] !== 0 && ports[0] === ports[1]) throw new ConfigError('DINHDANH_DEMO_PORTS must be two different ports (each demo portal has its own)');
    if (port !== 0 && ports.includes(port)) throw new ConfigError(`DINHDANH_DEMO_PORTS must not include PORT (${port}): dinhdanh listens there`);
  }
  if (!enabled) return null;
  if (!ports) {
    if (port === 0) ports = [0, 0];
    else if (port + 2 > 65535) throw new ConfigError(`PORT ${port} leaves no room for the demo portals on PORT+1 and PORT+2: set DINHDANH_DEMO_PORTS, or DINHDANH_DEMO=off`);
    else ports = [port + 1, port + 2];
  }
  return Object.freeze({ ports: Object.freeze(ports) as readonly [number, number] });
}

/** An operator's name as recorded in the audit log: a short login or e-mail-like handle. */
export function parseOperator(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  if (!/^[A-Za-z0-9._@-]{2,64}$/.test(value)) throw new ConfigError('the operator (DINHDANH_OPERATOR or --operator) must be 2–64 letters, digits or . _ @ -');
  return value;
}

function parseAdmin(env: NodeJS.ProcessEnv, nodeEnv: string, port: number): Config['admin'] {
  const host = env.DINHDANH_ADMIN_HOST || '127.0.0.1';
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(host)) throw new ConfigError('DINHDANH_ADMIN_HOST must be a host name or address');
  const adminPort = env.DINHDANH_ADMIN_PORT ? parseIntStrict('DINHDANH_ADMIN_PORT', env.DINHDANH_ADMIN_PORT, 0, 65535) : (port === 0 ? 0 : port + 100);
  if (adminPort > 65535) throw new ConfigError(`the operators' listener defaults to PORT+100 (${adminPort}), which is not a port: set DINHDANH_ADMIN_PORT`);
  if (adminPort !== 0 && adminPort === port) throw new ConfigError('DINHDANH_ADMIN_PORT must differ from PORT: the operators\' console never shares the public listener');
  let url: string | null = null;
  if (env.DINHDANH_ADMIN_URL) {
    let u: URL;
    try {
      u = new URL(env.DINHDANH_ADMIN_URL);
    } catch {
      throw new ConfigError('DINHDANH_ADMIN_URL must be an absolute URL (the console\'s origin as operators\' browsers see it)');
    }
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
      throw new ConfigError('DINHDANH_ADMIN_URL must be an http(s) origin, without a path, query or credentials');
    }
    url = u.origin;
  }
  // Operators' sessions carry the most powerful cookie there is: in production it travels over
  // TLS only, unless the console is reached on the loopback interface (an SSH tunnel).
  const loopback = (h: string) => h === '127.0.0.1' || h === '::1' || h === 'localhost' || h === '[::1]';
  if (nodeEnv === 'production' && !(url ? url.startsWith('https:') || loopback(new URL(url).hostname) : loopback(host))) {
    throw new ConfigError('refusing to start in production with the operators\' console on a non-loopback address without TLS: set DINHDANH_ADMIN_URL to its https origin (behind a TLS proxy), or keep DINHDANH_ADMIN_HOST on 127.0.0.1');
  }
  return Object.freeze({ host, port: adminPort, url });
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
  const smsGateway = parseSmsGateway(env, nodeEnv === 'production');
  const smtp = parseSmtp(env);
  const outboxDir = path.resolve(cwd, env.DINHDANH_OUTBOX_DIR || 'data/outbox');
  const host = env.HOST ?? (nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1');
  const keyEncryptionKey = env.DINHDANH_KEY_ENCRYPTION_KEY ?? null;
  if (keyEncryptionKey !== null && !/^[A-Za-z0-9_-]{43}$/.test(keyEncryptionKey)) {
    throw new ConfigError('DINHDANH_KEY_ENCRYPTION_KEY must be 32 random bytes in base64url (43 characters), e.g. from: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64url\'))"');
  }
  const operator = parseOperator(env.DINHDANH_OPERATOR);
  let outboundAllowCidrs: string[] = [];
  try {
    outboundAllowCidrs = env.DINHDANH_OUTBOUND_ALLOW_CIDRS ? parseCidrList(env.DINHDANH_OUTBOUND_ALLOW_CIDRS) : [];
  } catch (err) {
    throw new ConfigError(`DINHDANH_OUTBOUND_ALLOW_CIDRS: ${(err as Error).message}`);
  }
  const demo = parseDemo(env, nodeEnv, port);
  const accountResetWaitMs = parseDurationMs('DINHDANH_ACCOUNT_RESET_WAIT', env.DINHDANH_ACCOUNT_RESET_WAIT || '24h', 30 * 86_400_000);
  // The wait is what gives the real owner time to cancel a reset asked for by someone holding only
  // their password and a contact (NIST SP 800-63B §6.1.2.3): production keeps at least an hour.
  if (nodeEnv === 'production' && accountResetWaitMs < 3_600_000) {
    throw new ConfigError('DINHDANH_ACCOUNT_RESET_WAIT must be at least 1h in production: the wait gives the account\'s owner time to cancel a reset someone else asked for');
  }

  if (nodeEnv === 'production' && new URL(issuer).protocol !== 'https:') {
    throw new ConfigError(`refusing to start in production on a non-https issuer (${issuer}): set DINHDANH_ISSUER to the public https URL`);
  }
  if (nodeEnv === 'production' && trustProxyHops === 0) {
    // dinhdanh serves plain HTTP: in production TLS ends at a proxy, and without trusting it the
    // cookies lose `Secure` and every citizen shares the proxy's address for rate limits.
    throw new ConfigError('refusing to start in production without DINHDANH_TRUST_PROXY_HOPS: set it to the number of TLS-terminating proxies in front (usually 1)');
  }
  // After the checks above, so a production set-up missing several things hears about those first.
  const registry = parseRegistry(env, nodeEnv === 'production', cwd);

  const admin = parseAdmin(env, nodeEnv, port);
  const metrics = parseMetrics(env);
  // /metrics is on the operators' listener. Reachable only from the machine itself, the host's
  // users are trusted as they are with the CLI; reachable from a network (another address, or a
  // TLS proxy in front), the figures and the store reads a scrape makes are for the scraper alone
  // (OWASP ASVS 5.0 13.4.5: monitoring endpoints are not exposed without authentication).
  const adminLoopback = admin.url === null && ['127.0.0.1', '::1', 'localhost', '[::1]'].includes(admin.host);
  if (nodeEnv === 'production' && metrics.enabled && metrics.token === null && !adminLoopback) {
    throw new ConfigError('refusing to start in production with /metrics reachable beyond this machine without a token: set DINHDANH_METRICS_TOKEN (e.g. "openssl rand -base64 32"; the scraper sends it as a bearer token), or DINHDANH_METRICS=off');
  }

  return Object.freeze({ admin, metrics, env: nodeEnv, port, host, issuer, storeUrl, keysDir, trustProxyHops, logLevel, smsGateway, smtp, outboxDir, outboundAllowCidrs: Object.freeze(outboundAllowCidrs), registry, accountResetWaitMs, demo, keyEncryptionKey, operator });
}

/**
 * `DINHDANH_METRICS` and `DINHDANH_METRICS_TOKEN`. The token goes in an `Authorization: Bearer`
 * header (RFC 6750 §2.1), so it must be a token68-safe string; 32 characters at least, as it is the
 * only thing between the scraper's network and the figures.
 */
function parseMetrics(env: NodeJS.ProcessEnv): Config['metrics'] {
  const raw = env.DINHDANH_METRICS ?? 'on';
  if (raw !== 'on' && raw !== 'off') throw new ConfigError(`DINHDANH_METRICS must be on or off, got "${raw}"`);
  const token = env.DINHDANH_METRICS_TOKEN ? env.DINHDANH_METRICS_TOKEN : null;
  if (token !== null && !/^[A-Za-z0-9._~+/-]{32,256}=*$/.test(token)) {
    throw new ConfigError('DINHDANH_METRICS_TOKEN must be 32 to 256 characters of letters, digits and -._~+/ (e.g. from "openssl rand -base64 32")');
  }
  return Object.freeze({ enabled: raw === 'on', token });
}
