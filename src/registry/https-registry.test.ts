/**
 * The population registry adapter over http(s): the contract (README, "Population registry
 * contract"), every way of not answering counted as unavailable, and the circuit breaker. Real local
 * HTTP servers; the breaker's clock is injected.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Config } from '../config/config.js';
import { createGuardedFetch } from '../outbound/index.js';
import { createCircuitBreaker, createRegistry, REGISTRY_BREAKER_OPEN_MS, type RegistryQuery } from './index.js';

const TOKEN = 'reg.T0ken-value~';
const Q: RegistryQuery = { pid: '001090123456', fullName: 'Nguyễn Văn An', birthdate: '1990-05-17', gender: 'male', phone: '+84912345678' };

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

let server: http.Server;
let base: string;
let handler: Handler;
let seen: Seen[];
let logs: string[];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
afterEach(() => {
  // Nothing personal and never the token in any log line.
  const text = logs.join('\n');
  for (const secret of [Q.pid, 'Nguyễn', Q.birthdate, Q.phone!, TOKEN, 'key=QKEY']) expect(text).not.toContain(secret);
});

function reset(h: Handler): void {
  handler = h;
  seen = [];
  logs = [];
}

const json = (status: number, value: unknown): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
};

/** Answers match after `ms`, if the client is still there (the timer does not hold the test run open). */
const slow = (ms: number): Handler => (req, res, body) => {
  setTimeout(() => { if (!res.destroyed) json(200, { result: 'match' })(req, res, body); }, ms).unref();
};

function config(url: string, env: Config['env'] = 'test', outboundAllowCidrs: string[] = []): Pick<Config, 'env' | 'registry' | 'outboundAllowCidrs'> {
  return { env, registry: { url, path: null, token: TOKEN }, outboundAllowCidrs };
}

function registry(options: { url?: string; now?: () => number; timeoutMs?: number } = {}) {
  const logger = pino({ level: 'debug' }, { write: (l: string) => { logs.push(l); } });
  const fetch = options.timeoutMs
    ? createGuardedFetch({ allowPrivate: true, allowCidrs: [], timeoutMs: options.timeoutMs, maxResponseBytes: 16 * 1024 })
    : undefined;
  return createRegistry(config(options.url ?? `${base}/v1/verify?key=QKEY`), { logger, now: options.now, fetch });
}

describe('https registry: the contract', () => {
  it('POSTs the details as JSON with the bearer token and takes match / no_match', async () => {
    reset(json(200, { result: 'match' }));
    const r = registry();
    expect(r.kind).toBe('https');
    expect(await r.verify({ ...Q, fullName: '  Nguyễn   Văn An '.normalize('NFD') })).toBe('match');
    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/verify?key=QKEY');
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.headers['content-type']).toBe('application/json');
    // The name goes NFC-normalised, trimmed and collapsed, with its case and diacritics.
    expect(JSON.parse(req.body)).toEqual({ pid: Q.pid, full_name: 'Nguyễn Văn An', birthdate: Q.birthdate, gender: 'male', phone: Q.phone });
    expect(req.body).toContain('Nguyễn Văn An'.normalize('NFC'));

    reset(json(200, { result: 'no_match', reason: 'ignored' }));
    const { phone: _phone, ...withoutPhone } = Q;
    expect(await r.verify(withoutPhone)).toBe('no_match');
    expect(JSON.parse(seen[0]!.body)).toEqual({ pid: Q.pid, full_name: Q.fullName, birthdate: Q.birthdate, gender: 'male' });
  });

  it.each<[string, Handler]>([
    ['a server error', json(500, { result: 'match' })],
    ['another 2xx', json(201, { result: 'match' })],
    ['an unauthorised answer', json(401, { error: 'invalid_token' })],
    ['a body that is not JSON', (_req, res) => res.writeHead(200).end('match')],
    ['an unknown result', json(200, { result: 'maybe' })],
    ['no result', json(200, { match: true })],
    ['a JSON array', json(200, [{ result: 'match' }])],
    ['a body over 16 kB', json(200, { result: 'match', padding: 'x'.repeat(17 * 1024) })],
    ['a connection closed without an answer', (req) => req.socket.destroy()],
  ])('answers unavailable for %s, and logs why', async (_label, h) => {
    reset(h);
    expect(await registry().verify(Q)).toBe('unavailable');
    const warned = logs.map((l) => JSON.parse(l) as { level: number; pid?: string; msg: string }).find((l) => l.level === 40);
    expect(warned?.pid).toBe('*********456');
    expect(warned?.msg).toMatch(/no usable answer/);
  });

  it('follows no redirect: a 3xx is unavailable and its target is never asked', async () => {
    let targetHit = false;
    const target = http.createServer((_req, res) => { targetHit = true; res.end('{"result":"match"}'); });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    try {
      reset((_req, res) => res.writeHead(307, { location: `http://127.0.0.1:${(target.address() as AddressInfo).port}/` }).end());
      expect(await registry().verify(Q)).toBe('unavailable');
      expect(targetHit).toBe(false);
    } finally {
      await new Promise<void>((resolve) => target.close(() => resolve()));
    }
  });

  it('answers unavailable when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    reset(json(200, { result: 'match' }));
    expect(await registry({ url: `http://127.0.0.1:${port}/verify` }).verify(Q)).toBe('unavailable');
    expect(logs.join('\n')).toMatch(/ECONNREFUSED/);
  });

  it('answers unavailable when the answer is too slow (the guard\'s timeout)', async () => {
    reset(slow(1_000));
    const started = Date.now();
    expect(await registry({ timeoutMs: 200 }).verify(Q)).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(900);
    expect(logs.join('\n')).toMatch(/"reason":"timeout"/);
  });

  it('gives up after 5 seconds by default', async () => {
    reset(slow(7_000));
    const started = Date.now();
    expect(await registry().verify(Q)).toBe('unavailable');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(4_900);
    expect(took).toBeLessThan(6_500);
  }, 15_000);

  it('goes through the SSRF guard: in production a loopback adapter is refused unless DINHDANH_OUTBOUND_ALLOW_CIDRS allows it', async () => {
    reset(json(200, { result: 'match' }));
    const logger = pino({ level: 'debug' }, { write: (l: string) => { logs.push(l); } });
    expect(await createRegistry(config(`${base}/verify`, 'production'), { logger }).verify(Q)).toBe('unavailable');
    expect(seen).toHaveLength(0);
    expect(logs.join('\n')).toMatch(/special-use address/);
    expect(await createRegistry(config(`${base}/verify`, 'production', ['127.0.0.0/8']), { logger }).verify(Q)).toBe('match');
    expect(seen).toHaveLength(1);
  });
});

describe('https registry: the circuit breaker', () => {
  it('opens after 5 failures in a row, answers at once for 30 s, then lets one probe through', async () => {
    let now = 1_000_000;
    reset(json(503, { error: 'down' }));
    const r = registry({ now: () => now });
    for (let i = 0; i < 5; i += 1) expect(await r.verify(Q)).toBe('unavailable');
    expect(seen).toHaveLength(5);
    expect(logs.join('\n')).toMatch(/answering unavailable without asking for 30 s/);

    // Open: no request at all.
    expect(await r.verify(Q)).toBe('unavailable');
    now += REGISTRY_BREAKER_OPEN_MS - 1;
    expect(await r.verify(Q)).toBe('unavailable');
    expect(seen).toHaveLength(5);

    // Half-open: one probe; a question asked while it is out is answered at once.
    now += 1;
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    handler = (req, res, body) => { void held.then(() => json(503, {})(req, res, body)); };
    const probe = r.verify(Q);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await r.verify(Q)).toBe('unavailable');
    release();
    expect(await probe).toBe('unavailable');
    expect(seen).toHaveLength(6);

    // The probe failed: open again for 30 s.
    handler = json(200, { result: 'match' });
    now += REGISTRY_BREAKER_OPEN_MS - 1;
    expect(await r.verify(Q)).toBe('unavailable');
    expect(seen).toHaveLength(6);
    now += 1;
    expect(await r.verify(Q)).toBe('match');
    expect(logs.join('\n')).toMatch(/answers again/);
    // Closed: every question is asked.
    handler = json(200, { result: 'no_match' });
    expect(await r.verify(Q)).toBe('no_match');
    expect(seen).toHaveLength(8);
  });

  it('counts only consecutive failures: an answer (no_match too) starts the count again', async () => {
    reset(json(500, {}));
    const r = registry({ now: () => 0 });
    for (let i = 0; i < 4; i += 1) await r.verify(Q);
    handler = json(200, { result: 'no_match' });
    expect(await r.verify(Q)).toBe('no_match');
    handler = json(500, {});
    for (let i = 0; i < 4; i += 1) await r.verify(Q);
    handler = json(200, { result: 'match' });
    expect(await r.verify(Q)).toBe('match');
    expect(seen).toHaveLength(10);
  });
});

describe('createCircuitBreaker', () => {
  it('moves closed → open → half-open → closed', () => {
    let now = 0;
    const events: string[] = [];
    const b = createCircuitBreaker({ threshold: 2, openMs: 100, now: () => now, onOpen: (n) => events.push(`open ${n}`), onClose: () => events.push('close') });
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state()).toBe('closed');
    b.failure();
    expect(b.state()).toBe('open');
    expect(b.allow()).toBe(false);
    now = 100;
    expect(b.allow()).toBe(true);
    expect(b.state()).toBe('half_open');
    expect(b.allow()).toBe(false);
    b.success();
    expect(b.state()).toBe('closed');
    expect(b.allow()).toBe(true);
    expect(events).toEqual(['open 2', 'close']);
  });
});
