/**
 * OpenTelemetry traces of a real server process (`node src/main.ts`, as operators start it), sent
 * as OTLP/HTTP JSON to a real HTTP collector in this test: a citizen signs in at a portal with
 * openid-client and signs out (a back-channel logout to the portal), and the spans say what
 * happened — each request by its route template with its request id, the store calls inside it
 * (and in the MongoDB pass the driver's commands), the outbound call without trace context — while
 * the log lines carry the trace ids. And without an endpoint, nothing of OpenTelemetry is loaded:
 * a module hook in the server process lists every OpenTelemetry module it loads (ESM and CJS).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { composeServices } from '../../src/services.js';
import { validatePortalInput } from '../../src/portals/index.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { freePort } from '../helpers/free-port.js';
import { DEFAULT_PASSWORD, TEST_STORE_KIND } from '../helpers/harness.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const PID = '001195000017';
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Loaded with --import before anything else: an ESM resolve hook (in the loader thread) notes every
 * module URL with @opentelemetry in it, and at exit the CommonJS cache (what `require` loaded, which
 * in Node 20 no ESM hook sees) is noted too.
 */
const HOOK = `
import fs from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes('@opentelemetry')) fs.appendFileSync(out, 'esm ' + result.url + '\\n');
  return result;
}
`;
const PROBE = `
import fs from 'node:fs';
import { createRequire, register } from 'node:module';
const out = process.env.DINHDANH_TEST_MODULE_PROBE;
fs.writeFileSync(out, '');
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}), import.meta.url, { data: { out } });
process.on('exit', () => {
  const cache = createRequire(import.meta.url).cache;
  fs.appendFileSync(out, Object.keys(cache).filter((k) => k.includes('@opentelemetry')).map((k) => 'cjs ' + k + '\\n').join('') + 'exited\\n');
});
`;

let dir: string;
let storeUrl: string;
let portal: Portal;
const children = new Set<ChildProcess>();

/** A portal's back-channel logout endpoint: what it receives, headers included. */
const logouts: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
const portalServer = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => { body += c; });
  req.on('end', () => { logouts.push({ headers: req.headers, body }); res.setHeader('cache-control', 'no-store'); res.end(); });
});
let portalPort: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-tracing-'));
  fs.writeFileSync(path.join(dir, 'probe.mjs'), PROBE);
  if (TEST_STORE_KIND === 'mongodb') {
    const url = new URL(process.env.MONGODB_URI!);
    url.pathname = `/dd_tracing_${Date.now().toString(36)}`;
    storeUrl = url.href;
  } else {
    storeUrl = `sqlite:${path.join(dir, 'dinhdanh.db')}`;
  }
  await new Promise<void>((r) => portalServer.listen(0, '127.0.0.1', r));
  portalPort = (portalServer.address() as AddressInfo).port;
  // The portal and the citizen go in through the store the servers will open, as the CLI does.
  const services = await composeServices(loadConfig(baseEnv(), dir), { logger: pino({ level: 'silent' }) });
  const input = validatePortalInput({
    name: 'Cổng thử dấu vết', redirectUris: ['http://localhost:9001/callback'], backchannelLogoutUri: `http://127.0.0.1:${portalPort}/backchannel`,
  }, { production: false });
  const registered = await services.portals.register(input);
  portal = { client_id: registered.client_id, client_secret: registered.client_secret!, redirect_uri: input.redirectUris[0]! };
  await services.accounts.create({ pid: PID, name: 'Trần Thị Bình', birthdate: '1995-04-02', gender: 'female', password: DEFAULT_PASSWORD, email: 'binh@example.vn' });
  await services.audit.flush();
  await services.store.close();
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await new Promise<void>((r) => portalServer.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    DINHDANH_DEMO: 'off',
    DINHDANH_STORE: storeUrl,
    DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
  };
}

interface ServerProcess {
  child: ChildProcess;
  base: string;
  admin: string;
  stdout(): string;
  /** Ends it with SIGTERM; resolves with its exit code and the OpenTelemetry modules it loaded. */
  stop(): Promise<{ code: number | null; modules: string[] }>;
}

/** `node src/main.ts` through tsx, with the module probe, stdout and stderr pipes to this test. */
async function startServer(name: string, env: Record<string, string>): Promise<ServerProcess> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  const probeOut = path.join(dir, `${name}.modules`);
  const child = spawn(process.execPath, ['--import', pathToFileURL(path.join(dir, 'probe.mjs')).href, '--import', TSX, path.join(ROOT, 'src/main.ts')], {
    cwd: dir,
    env: { ...baseEnv(), PORT: String(port), DINHDANH_ADMIN_PORT: String(adminPort), DINHDANH_ISSUER: base, DINHDANH_TEST_MODULE_PROBE: probeOut, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => { children.delete(child); resolve(code); }));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || i === 300) throw new Error(`the server did not start: ${stderr}`);
    if (await fetch(`${base}/healthz/ready`).then((r) => r.status, () => 0) === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child, base, admin: `http://127.0.0.1:${adminPort}`, stdout: () => stdout,
    async stop() {
      child.kill('SIGTERM');
      const code = await closed;
      const lines = fs.readFileSync(probeOut, 'utf8').split('\n').filter(Boolean);
      expect(lines.at(-1)).toBe('exited');
      return { code, modules: lines.slice(0, -1) };
    },
  };
}

/** What a visitor, a portal and an operator's scraper do without signing in: pages, discovery, an error, health. */
async function browse(server: ServerProcess): Promise<void> {
  for (const url of [`${server.base}/`, `${server.base}/.well-known/openid-configuration`, `${server.base}/auth?client_id=nobody`, `${server.admin}/metrics`]) {
    expect((await fetch(url)).status).toBeLessThan(500);
  }
}

/** Every source file of the product (src/, bench/, scripts/), relative to the root. */
function sources(): string[] {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = path.join(d, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name)) files.push(rel);
    }
  };
  for (const d of ['src', 'bench', 'scripts']) if (fs.existsSync(path.join(ROOT, d))) walk(d);
  return files;
}

describe('without an OTLP endpoint, nothing of OpenTelemetry', () => {
  it('is imported by any file but src/metrics/tracing*.ts, and that one imports only types statically', () => {
    const mentions = /(?:from\s*|import\s*\(\s*|require\s*\(\s*|import\s+)['"]@opentelemetry\//;
    const files = sources();
    expect(files).toContain(path.join('src', 'metrics', 'tracing.ts'));
    const importing = files.filter((f) => mentions.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
    expect(importing.filter((f) => !/^src\/metrics\/tracing[^/]*\.ts$/.test(f.split(path.sep).join('/')))).toEqual([]);
    const tracing = fs.readFileSync(path.join(ROOT, 'src/metrics/tracing.ts'), 'utf8');
    // Static imports and re-exports of OpenTelemetry: `import type` only (erased at compile time).
    const statics = [...tracing.matchAll(/^\s*(import|export)\s[^;]*?from\s*['"]@opentelemetry\/[^'"]+['"]/gm)].map((m) => m[0].trim());
    expect(statics.length).toBeGreaterThan(0);
    for (const s of statics) expect(s).toMatch(/^import type /);
    // Loaded at run time only, and only when configured: its packages are dependencies of production.
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of ['@opentelemetry/api', '@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http']) expect(pkg.dependencies[name]).toBeDefined();
  });

  it('is loaded by a server with metrics off', async () => {
    const server = await startServer('off', { DINHDANH_METRICS: 'off' });
    await browse(server);
    const { code, modules } = await server.stop();
    expect(code).toBe(0);
    expect(modules).toEqual([]);
  }, 60_000);

  it('is loaded by a server with metrics on, but for the API prom-client itself requires', async () => {
    const server = await startServer('metrics', {});
    await browse(server);
    const { code, modules } = await server.stop();
    expect(code).toBe(0);
    // prom-client's process_cpu metric reads the active span through @opentelemetry/api (a no-op
    // façade without an SDK): loaded by require, never by an import of ours.
    expect(modules.length).toBeGreaterThan(0);
    for (const m of modules) expect(m).toMatch(/^cjs .*\/node_modules\/@opentelemetry\/api\//);
  }, 60_000);
});

describe('with an OTLP endpoint, a running server', () => {
  const collector = new OtlpReceiver();
  let server: ServerProcess;
  let stopped: { code: number | null; modules: string[] };
  /** Every response the citizen's browser got, redirects included. */
  const responses: Response[] = [];
  let spans: ReceivedSpan[];
  const serverSpans = () => spans.filter((s) => s.kind === 2);

  beforeAll(async () => {
    await collector.start();
    server = await startServer('traced', {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.base,
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer collector-token',
      OTEL_SERVICE_NAME: 'dinhdanh-test',
      // Sent every 100 ms rather than 5 s, so the test sees them soon.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    await browse(server);
    // A citizen signs in at the portal, which redeems the code, then signs out everywhere.
    const browser = new Browser(server.base, { onResponse: (r) => responses.push(r) });
    const config = await discover(server.base, portal);
    const req = await authRequest(config, portal);
    const res = await signIn(browser, req, { pid: PID, password: DEFAULT_PASSWORD });
    expect(res.status).toBe(303);
    const tokens = await redeem(config, req, res.location!);
    const page = await browser.get(`${server.base}/session/end?${new URLSearchParams({ id_token_hint: tokens.id_token! })}`);
    expect(page.status).toBe(200);
    await browser.post(new URL(formAction(page.text), server.base).href, { xsrf: hiddenField(page.text, 'xsrf'), _csrf: hiddenField(page.text, '_csrf'), logout: 'all' });
    await collector.until((all) => all.some((s) => s.kind === 3 && s.attributes['server.port'] === portalPort), 'the back-channel logout span');
    await collector.until((all) => all.some((s) => s.name === 'POST /token'), 'the token request span');
    stopped = await server.stop();
    spans = collector.spans;
  }, 120_000);

  afterAll(async () => {
    await collector.stop();
  });

  it('sends OTLP JSON with the collector headers given, as the service named, and stops cleanly', () => {
    expect(stopped.code).toBe(0);
    expect(collector.rejected).toEqual([]);
    for (const r of collector.requests) {
      expect(r.contentType).toMatch(/^application\/json/);
      expect(r.headers.authorization).toBe('Bearer collector-token');
    }
    expect(spans[0]!.resource).toMatchObject({ 'service.name': 'dinhdanh-test', 'service.version': VERSION });
    // The positive control of the probe above: here OpenTelemetry's SDK was loaded.
    expect(stopped.modules.some((m) => m.includes('/@opentelemetry/sdk-trace/'))).toBe(true);
    expect(stopped.modules.some((m) => m.includes('/@opentelemetry/exporter-trace-otlp-http/'))).toBe(true);
  });

  it('names every request by method and route template, never by a path with ids or tokens in it', () => {
    const names = new Set(serverSpans().map((s) => s.name));
    for (const name of ['GET /auth', 'GET /interaction/:uid', 'POST /interaction/:uid/login', 'GET /auth/:uid', 'POST /token', 'GET /session/end', 'GET /.well-known/openid-configuration']) {
      expect(names).toContain(name);
    }
    for (const name of names) expect(name).toMatch(/^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS|_OTHER)( \/[A-Za-z0-9._:/-]*)?$/);
    // The interaction ids, codes and tokens the browser saw: in no span, name or attribute.
    const secrets = new Set<string>();
    for (const r of responses) {
      for (const m of (r.location ?? '').matchAll(/\/(?:interaction|auth)\/([A-Za-z0-9_-]{10,})/g)) secrets.add(m[1]!);
      const location = r.location ? new URL(r.location) : null;
      for (const key of ['code', 'state']) if (location?.searchParams.get(key)) secrets.add(location.searchParams.get(key)!);
    }
    expect(secrets.size).toBeGreaterThan(1);
    const all = JSON.stringify(spans);
    for (const s of secrets) expect(all).not.toContain(s);
    for (const s of [PID, DEFAULT_PASSWORD, 'Trần Thị Bình']) expect(all).not.toContain(s);
  });

  it('gives each request span its request id, listener, route and status', () => {
    const login = responses.find((r) => /\/interaction\/[^/]+\/login$/.test(new URL(r.url).pathname))!;
    expect(login).toBeDefined();
    const id = login.headers.get('x-request-id')!;
    const span = serverSpans().filter((s) => s.attributes['dinhdanh.request_id'] === id);
    expect(span).toHaveLength(1);
    expect(span[0]).toMatchObject({
      name: 'POST /interaction/:uid/login', parentSpanId: undefined,
      attributes: { 'http.request.method': 'POST', 'http.route': '/interaction/:uid/login', 'http.response.status_code': login.status, 'dinhdanh.listener': 'public' },
    });
    const admin = serverSpans().filter((s) => s.attributes['dinhdanh.listener'] === 'admin');
    expect(admin.map((s) => s.name)).toContain('GET /metrics');
    for (const s of serverSpans()) expect(s.attributes['dinhdanh.request_id']).toEqual(expect.any(String));
  });

  it('gives the store calls of a request spans in its trace', () => {
    const login = serverSpans().find((s) => s.name === 'POST /interaction/:uid/login')!;
    const store = spans.filter((s) => s.kind === 1 && s.parentSpanId === login.spanId);
    expect(store.length).toBeGreaterThan(0);
    for (const s of store) {
      expect(s.traceId).toBe(login.traceId);
      expect(s.attributes['db.system.name']).toBe(TEST_STORE_KIND);
      expect(s.name).toBe(`${s.attributes['dinhdanh.store.repository']}.${s.attributes['dinhdanh.store.operation']}`);
    }
    // Store spans only within a request's trace: every one has a parent.
    for (const s of spans.filter((x) => x.attributes['dinhdanh.store.repository'] !== undefined)) expect(s.parentSpanId).toEqual(expect.any(String));
  });

  (TEST_STORE_KIND === 'mongodb' ? it : it.skip)('gives the MongoDB driver\'s commands spans of their own, their values hidden (MongoDB pass only: skipped on SQLite)', () => {
    const commands = spans.filter((s) => s.kind === 3 && s.attributes['db.system.name'] === 'mongodb');
    expect(commands.length).toBeGreaterThan(0);
    const traces = new Set(serverSpans().map((s) => s.traceId));
    for (const c of commands) {
      expect(traces.has(c.traceId)).toBe(true);
      expect(c.attributes['db.collection.name']).toEqual(expect.any(String));
    }
    expect(JSON.stringify(commands)).not.toContain(PID);
  });

  it('gives the back-channel logout a client span with its origin only, and sends the portal no trace context', () => {
    expect(logouts.length).toBeGreaterThan(0);
    for (const { headers } of logouts) {
      expect(Object.keys(headers).filter((h) => ['traceparent', 'tracestate', 'baggage'].includes(h))).toEqual([]);
    }
    const calls = spans.filter((s) => s.kind === 3 && s.attributes['server.port'] === portalPort);
    expect(calls.length).toBe(logouts.length);
    expect(calls[0]!).toMatchObject({
      name: 'POST', statusCode: 0,
      attributes: { 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'url.scheme': 'http', 'http.response.status_code': 200 },
    });
    expect(JSON.stringify(calls)).not.toContain('/backchannel');
  });

  it('writes the trace and span ids of a request in its log lines', () => {
    const lines = server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const requestLines = lines.filter((l) => l.msg === 'request');
    expect(requestLines.length).toBeGreaterThan(5);
    for (const line of requestLines) {
      const span = serverSpans().find((s) => s.attributes['dinhdanh.request_id'] === line.req_id);
      expect(span).toBeDefined();
      expect(line).toMatchObject({ trace_id: span!.traceId, span_id: span!.spanId });
    }
    // Lines outside any request (start, stop) carry none.
    expect(lines.find((l) => l.msg === 'dinhdanh is serving')).not.toHaveProperty('trace_id');
  });
});
