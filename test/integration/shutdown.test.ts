/**
 * A restart (SIGTERM) is clean (README, "Restarts"): real server processes started as operators
 * start them, real sign-ins over keep-alive connections, and the process's stdout a real pipe that
 * the test reads, stops reading, or closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import type * as oidc from 'openid-client';
import { loadConfig } from '../../src/config/config.js';
import { composeServices } from '../../src/services.js';
import { createStore, type Store } from '../../src/store/index.js';
import { validatePortalInput } from '../../src/portals/index.js';
import { BACKCHANNEL_LOGOUT_JOB } from '../../src/provider/backchannel-logout.js';
import { Browser } from '../helpers/browser.js';
import { freePort } from '../helpers/free-port.js';
import { DEFAULT_PASSWORD, TEST_STORE_KIND } from '../helpers/harness.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
/** How long a stopping server may take before the test calls it hung (it drains for at most 10 s). */
const EXIT_BOUND_MS = 20_000;

let dir: string;
let storeUrl: string;
let store: Store;
let portal: Portal;
const persons: { id: string; pid: string; password: string }[] = [];
const receiver = new LogoutReceiver();
/** Every server this suite started and that has not exited yet: killed in afterAll, whatever happened. */
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-shutdown-'));
  // A SQLite file, or in the MongoDB pass a database of the suite's own (as the harness does).
  if (TEST_STORE_KIND === 'mongodb') {
    const url = new URL(process.env.MONGODB_URI!);
    url.pathname = `/dd_shutdown_${Date.now().toString(36)}`;
    storeUrl = url.href;
  } else {
    storeUrl = `sqlite:${path.join(dir, 'dinhdanh.db')}`;
  }
  await receiver.start();
  // The portal and the citizens go in through the same store the server will open (as the CLI does).
  const services = await composeServices(loadConfig(baseEnv(), dir), { logger: pino({ level: 'silent' }) });
  const input = validatePortalInput({
    name: 'Cổng thử khởi động lại', redirectUris: ['http://localhost:9001/callback'], backchannelLogoutUri: receiver.url('/slow'),
  }, { production: false });
  const registered = await services.portals.register(input);
  portal = { client_id: registered.client_id, client_secret: registered.client_secret!, redirect_uri: input.redirectUris[0]! };
  // One citizen per concurrent sign-in: parallel attempts on one account are throttled by design.
  for (let i = 1; i <= 4; i++) {
    const pid = `001090${String(i).padStart(6, '0')}`;
    const person = await services.accounts.create({ pid, name: 'Nguyễn Văn An', birthdate: '1990-03-15', gender: 'male', password: DEFAULT_PASSWORD, email: 'an@example.vn' });
    persons.push({ id: person.id, pid, password: DEFAULT_PASSWORD });
  }
  await services.audit.flush();
  await services.store.close();
  store = await createStore(storeUrl);
}, 60_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await store?.close();
  await receiver.close();
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
  /** What the process wrote to stdout so far (all of it once `closed` resolves). */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves once its output is all read too (never, while the test does not read it). */
  closed: Promise<void>;
}

/** `node src/main.ts` through tsx, as a supervisor starts it: stdout and stderr are pipes to this test. */
async function startServer(): Promise<ServerProcess> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import', TSX, path.join(ROOT, 'src/main.ts')], {
    cwd: dir,
    env: { ...baseEnv(), PORT: String(port), DINHDANH_ISSUER: base },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, at: Date.now() });
    });
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || i === 300) throw new Error(`the server did not start: ${stderr}`);
    // A connection of its own each time (no agent): the probe leaves no idle keep-alive connection behind.
    if (await status(`${base}/healthz/ready`).catch(() => 0) === 200) break;
    await sleep(100);
  }
  return { child, base, stdout: () => stdout, stderr: () => stderr, exited, closed };
}

function status(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); }).on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms`: a server that does not exit fails the test instead of hanging it. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms); }),
  ]);
}

/** What happened to one request, as its client saw it. */
interface Outcome {
  path: string;
  /** Sent after the test signalled the server. */
  afterSignal: boolean;
  status?: number;
  /** The response said `Connection: close`. */
  closing?: boolean;
  requestId?: string;
  /** The transport error: ECONNREFUSED, ECONNRESET ("socket hang up"), TRUNCATED, TIMEOUT. */
  error?: string;
}

const TRANSPORT = Symbol('transport error');

/** The request itself failed (no whole response), as opposed to a flow that got an answer it did not expect. */
function isTransportError(err: unknown): boolean {
  for (let e = err as { cause?: unknown; [TRANSPORT]?: boolean } | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    if (e[TRANSPORT]) return true;
  }
  return false;
}

/**
 * A `fetch` over Node's HTTP client and a keep-alive agent, so that connections are reused the way
 * a portal's or a proxy's are, and that records every request's outcome: a whole response (every
 * byte its Content-Length announced) or the transport error that stopped it.
 */
function recordingFetch(agent: http.Agent, outcomes: Outcome[], state: { signalled: boolean }): typeof fetch {
  return ((input: string | URL | Request, init: RequestInit = {}) => new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const outcome: Outcome = { path: url.pathname, afterSignal: state.signalled };
    outcomes.push(outcome);
    const fail = (err: NodeJS.ErrnoException) => {
      outcome.error ??= err.code ?? err.message;
      reject(Object.assign(err, { [TRANSPORT]: true }));
    };
    const req = http.request(url, { agent, method: init.method ?? 'GET', headers: Object.fromEntries(new Headers(init.headers)) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const announced = res.headers['content-length'];
        if (!res.complete || (announced !== undefined && Number(announced) !== body.length)) {
          fail(Object.assign(new Error(`truncated body: ${body.length} of ${announced ?? '?'} bytes`), { code: 'TRUNCATED' }));
          return;
        }
        const code = res.statusCode ?? 0;
        Object.assign(outcome, { status: code, closing: res.headers.connection === 'close', requestId: res.headers['x-request-id'] });
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) headers.append(name, v);
        resolve(new Response([204, 205, 304].includes(code) ? null : body, { status: code, headers }));
      });
    });
    req.setTimeout(20_000, () => req.destroy(Object.assign(new Error('no answer in 20 s'), { code: 'TIMEOUT' })));
    req.on('error', fail);
    const body = init.body;
    req.end(typeof body === 'string' ? body : body instanceof URLSearchParams ? body.toString() : undefined);
  })) as typeof fetch;
}

/** A whole sign-in at the portal: authorization request, password, consent, code for tokens. */
async function signInOnce(config: oidc.Configuration, base: string, person: { pid: string; password: string }, transport: typeof fetch): Promise<string | undefined> {
  const browser = new Browser(base, { fetch: transport });
  const req = await authRequest(config, portal);
  const res = await signIn(browser, req, person);
  if (res.status !== 303 || !res.location?.startsWith(portal.redirect_uri)) return undefined;
  const tokens = await redeem(config, req, res.location);
  return tokens.access_token;
}

/**
 * A client on one raw connection: each request written as is, each response read whole (by its
 * Content-Length). It sends whenever told, whatever the server did meanwhile, so it can be the
 * client whose request crosses the server's close.
 */
class RawConnection {
  private data = '';
  private waiting: (() => void) | undefined;
  /** How the connection ended: 'end' (the server closed it after its last response), or the socket error. */
  ended: string | undefined;
  private readonly socket: net.Socket;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => { this.data += d; this.waiting?.(); });
    this.socket.on('end', () => { this.ended ??= 'end'; this.waiting?.(); });
    this.socket.on('error', (err: NodeJS.ErrnoException) => { this.ended ??= err.code ?? err.message; this.waiting?.(); });
  }

  /** Sends a GET and reads its response: status line and headers, and a body of Content-Length bytes. */
  async get(path: string): Promise<{ status: number; headers: Record<string, string> }> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    for (;;) {
      const head = this.data.indexOf('\r\n\r\n');
      if (head >= 0) {
        const [statusLine, ...lines] = this.data.slice(0, head).split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const end = head + 4 + Number(headers['content-length']);
        if (this.data.length >= end) {
          this.data = this.data.slice(end);
          return { status: Number(statusLine!.split(' ')[1]), headers };
        }
      }
      if (this.ended) throw new Error(`the connection ended (${this.ended}) before a whole response to ${path}`);
      await new Promise<void>((resolve) => { this.waiting = resolve; });
    }
  }

  /** Resolves when the connection has ended, with how. */
  async end(): Promise<string> {
    while (!this.ended) await new Promise<void>((resolve) => { this.waiting = resolve; });
    return this.ended;
  }
}

function accessLines(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('SIGTERM', () => {
  it('during a burst of sign-ins: every request completes or is refused at connect, each completed one is in the access log, the job in flight is pending again, exit 0', async () => {
    const server = await startServer();
    const state = { signalled: false };
    const outcomes: Outcome[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
    const transport = recordingFetch(agent, outcomes, state);
    const config = await discover(server.base, portal, { fetch: transport });
    const accessToken = await signInOnce(config, server.base, persons[0]!, transport);
    expect(accessToken).toBeDefined();
    const userinfo = config.serverMetadata().userinfo_endpoint!;

    // A back-channel logout delivery to a portal that holds the request: the job is claimed and
    // running when the signal comes (the server polls its queue every 5 s).
    receiver.behave('/slow', 'hang');
    const jobId = `bcl:${portal.client_id}:shutdown-test`;
    const enqueuedAt = Date.now();
    await store.jobs.enqueue({ id: jobId, kind: BACKCHANNEL_LOGOUT_JOB, payload: { clientId: portal.client_id, accountId: persons[0]!.id, sid: 'shutdown-test', reason: 'logout' }, dueAt: enqueuedAt }, enqueuedAt);

    // Until one of its requests fails (after the signal: refused at connect), each worker goes on:
    // sign-ins (argon2, several requests each) and authenticated requests back to back on reused
    // connections. A flow that got an answer it did not expect starts again.
    const worker = (step: () => Promise<unknown>) => (async () => {
      for (;;) {
        try {
          await step();
        } catch (err) {
          if (isTransportError(err)) return;
        }
      }
    })();
    const workers = [
      ...persons.map((person) => worker(() => signInOnce(config, server.base, person, transport))),
      ...Array.from({ length: 8 }, () => worker(() => transport(userinfo, { headers: { authorization: `Bearer ${accessToken!}` } }))),
    ];

    for (let i = 0; receiver.pending === 0 || outcomes.filter((o) => o.status).length < 60; i++) {
      if (i === 150) throw new Error(`no delivery in flight after 15 s (pending ${receiver.pending}, ${outcomes.length} requests)`);
      await sleep(100);
    }
    const signalledAt = Date.now();
    state.signalled = true;
    server.child.kill('SIGTERM');

    await within(Promise.all(workers), EXIT_BOUND_MS, 'the clients did not finish');
    // The clients close their idle connections, as clients that keep to the server's Keep-Alive
    // timeout do; the server itself never closes one under a client that may be sending on it.
    agent.destroy();
    const exit = await within(server.exited, EXIT_BOUND_MS, 'the server did not exit');
    await server.closed;
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.at - signalledAt).toBeLessThan(15_000);

    // Nothing was cut: every request either completed or was refused at connect.
    const failed = outcomes.filter((o) => o.error);
    expect(failed.filter((o) => o.error !== 'ECONNREFUSED')).toEqual([]);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((o) => o.afterSignal)).toBe(true);
    // The connections open at the signal were reused and then closed by the server saying so.
    expect(outcomes.some((o) => o.closing)).toBe(true);
    expect(outcomes.filter((o) => o.path.endsWith('/token') && o.status === 200).length).toBeGreaterThan(persons.length);

    // The access log was flushed before the exit: every completed request is in it.
    const logged = new Set(accessLines(server.stdout()).map((l) => l.req_id));
    const completed = outcomes.filter((o) => o.requestId);
    expect(completed.length).toBeGreaterThan(60);
    expect(completed.filter((o) => !logged.has(o.requestId))).toEqual([]);
    expect(server.stdout()).toMatch(/"msg":"stopped"/);

    // The delivery that was running was handed back: pending, due now, held by nobody, so
    // another instance takes it at once instead of waiting for the lease to lapse.
    const job = await store.jobs.find(jobId);
    expect(job).toMatchObject({ status: 'pending', leaseUntil: 0 });
    expect(job!.attempts).toBeGreaterThanOrEqual(1);
    expect(job!.dueAt).toBeLessThanOrEqual(exit.at);
    expect(job!.lastOutcome).toMatch(/handed back/);
    const claimed = await store.jobs.claimDue(BACKCHANNEL_LOGOUT_JOB, Date.now(), 60_000, 10);
    expect(claimed.map((j) => j.id)).toContain(jobId);
    await store.jobs.finish(jobId, 'done', 'test over', Date.now(), 1000);
  }, 120_000);

  it('a keep-alive connection idle at the signal still carries the request its client sends, answered whole with Connection: close', async () => {
    const server = await startServer();
    const port = Number(new URL(server.base).port);
    const reused = new RawConnection(port);
    const unused = new RawConnection(port);
    expect((await reused.get('/healthz')).headers.connection).toBe('keep-alive');
    expect((await unused.get('/healthz')).headers).toMatchObject({ connection: 'keep-alive', 'keep-alive': 'timeout=5' });
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    // Long after the server took the signal and closed its listener (new connections are
    // refused), a client sends on the connection it kept, as one whose request crossed the close.
    for (let i = 0; await status(`${server.base}/healthz`).then(() => true, () => false); i++) {
      if (i === 100) throw new Error('the listener is still open 10 s after the signal');
      await sleep(100);
    }
    const last = await reused.get('/healthz');
    expect(last.status).toBe(200);
    expect(last.headers.connection).toBe('close');
    expect(await reused.end()).toBe('end');
    // The connection nobody uses ends as keep-alive connections do: when the announced timeout has
    // passed, closed cleanly (no reset), and then the process exits.
    expect(await unused.end()).toBe('end');
    const exit = await within(server.exited, EXIT_BOUND_MS, 'the server did not exit');
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.at - signalledAt).toBeLessThan(15_000);
  }, 60_000);

  it('exits even when the reader of its stdout goes away at the same moment (a log shipper restarted with it)', async () => {
    const server = await startServer();
    const agent = new http.Agent({ keepAlive: true });
    const transport = recordingFetch(agent, [], { signalled: false });
    const config = await discover(server.base, portal, { fetch: transport });
    expect(await signInOnce(config, server.base, persons[1]!, transport)).toBeDefined();
    // The last access lines are still in the server's buffer (written every 2 kB or every second)
    // when nobody is left to read them.
    for (let i = 0; i < 3; i++) await (await transport(`${server.base}/healthz`)).text();
    server.child.kill('SIGTERM');
    server.child.stdout!.destroy();
    agent.destroy();
    const exit = await within(server.exited, EXIT_BOUND_MS, 'the server did not exit after its stdout reader went away');
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('exits even when nobody reads its stdout any more (a stalled log shipper)', async () => {
    const server = await startServer();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const outcomes: Outcome[] = [];
    const transport = recordingFetch(agent, outcomes, { signalled: false });
    // Stop reading, then log far more than the pipe holds (about 200 kB): writes to stdout now fail
    // with EAGAIN and the loggers' buffers keep what they could not write.
    server.child.stdout!.pause();
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 1000; i++) await (await transport(`${server.base}/healthz`)).text();
    }));
    expect(outcomes.filter((o) => o.status === 200)).toHaveLength(4000);
    server.child.kill('SIGTERM');
    agent.destroy();
    const exit = await within(server.exited, EXIT_BOUND_MS, 'the server did not exit while its stdout was full');
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    server.child.stdout!.destroy();
  }, 90_000);
});
