/**
 * The store going away and coming back (README, Deploying: "Failing clearly"). dinhdanh runs on the
 * MongoDB backend against a FerretDB of this test's own (never the shared one at MONGODB_URI, which
 * other suites use at the same time). FerretDB is killed while citizens are signing in: sign-ins in
 * flight and new requests answer promptly — `/healthz/ready` 503, pages a 503 page — with no
 * request left hanging and no 500. FerretDB is started again on the same data and port, and the same
 * dinhdanh process (never restarted) serves sign-ins again, with the session made before the outage
 * still there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { vi } from '../../src/http/locales/vi.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';
import { firstExecutable } from '../helpers/executables.js';
import { freePort } from '../helpers/free-port.js';

jest.setTimeout(120_000);

/** Every request of this test must be answered within this long while the store is down: a hang check, not a measure. */
const ANSWER_WITHIN_MS = 5000;

/** `.ci/run` builds FerretDB and exports its path; a developer's default build location is tried too. */
function findFerretDb(): string | undefined {
  return firstExecutable([process.env.DINHDANH_FERRETDB_BIN, path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin', 'ferretdb-v1.24.2')]);
}

const FERRETDB = findFerretDb();
const suite = FERRETDB ? describe : describe.skip;
const suiteName = `the store going away and coming back (MongoDB backend on a FerretDB of its own)${FERRETDB ? '' : ' (skipped: no FerretDB binary — set DINHDANH_FERRETDB_BIN; .ci/run builds it and sets it)'}`;
// Jest lists no test names for a file whose tests are all skipped: say why in the run's output too.
if (!FERRETDB) console.warn(suiteName);

let ferretDir: string;
let ferretPort: number;
let ferret: ChildProcess | undefined;
let ferretLog = '';
let srv: TestServer;
let portal: Portal;
let person: { pid: string; password: string };

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** FerretDB on its port and data folder, with the flags .ci/run uses. */
async function startFerretDb(): Promise<void> {
  const child = spawn(FERRETDB!, [
    '--handler=sqlite', `--sqlite-url=file:${ferretDir}/`, `--listen-addr=127.0.0.1:${ferretPort}`,
    '--debug-addr=127.0.0.1:0', '--telemetry=disable', `--state-dir=${ferretDir}`, '--log-level=error',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => { ferretLog += d.toString(); });
  ferret = child;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`FerretDB exited (${child.exitCode}): ${ferretLog}`);
    if (await canConnect(ferretPort)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`FerretDB did not listen on ${ferretPort}: ${ferretLog}`);
}

async function stopFerretDb(signal: NodeJS.Signals): Promise<void> {
  const child = ferret;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
  ferret = undefined;
}

/** A fetch that gives up after ANSWER_WITHIN_MS: a request still open then fails the test. */
const bounded: typeof fetch = (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });

/** A browser at the login page of a new authorization request. */
async function atLoginPage(config: Awaited<ReturnType<typeof discover>>): Promise<{ browser: Browser; page: Response }> {
  const browser = new Browser(srv.issuer, { fetch: bounded });
  const page = await browser.get((await authRequest(config, portal)).url.href);
  expect(page.text).toContain('name="identifier"');
  return { browser, page };
}

function expectUnavailablePage(res: Response): void {
  expect(res.status).toBe(503);
  expect(res.headers.get('content-type')).toMatch(/text\/html/);
  expect(alertText(res.text)).toBe(vi['error.unavailable']);
}

suite(suiteName, () => {
  let config: Awaited<ReturnType<typeof discover>>;
  let before: { browser: Browser };

  beforeAll(async () => {
    ferretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-ferret-'));
    ferretPort = await freePort();
    await startFerretDb();
    srv = await startTestServer({ storeUrl: `mongodb://127.0.0.1:${ferretPort}/dinhdanh_outage` });
    portal = await srv.addPortal();
    person = await srv.addPerson();
    config = await discover(srv.issuer, portal);
  });

  afterAll(async () => {
    await srv?.close();
    await stopFerretDb('SIGTERM');
    if (ferretDir) fs.rmSync(ferretDir, { recursive: true, force: true });
  });

  it('signs in while FerretDB is up', async () => {
    const browser = new Browser(srv.issuer, { fetch: bounded });
    const req = await authRequest(config, portal);
    const done = await signIn(browser, req, person);
    expect(done.status).toBe(303);
    const tokens = await redeem(config, req, done.location!);
    expect(tokens.claims()?.sub).toBeTruthy();
    before = { browser };
  });

  // Killed outright (in-flight sign-ins lose their connections), then shut down cleanly.
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`FerretDB stopped (${signal}) during sign-ins: every request answers within ${ANSWER_WITHIN_MS / 1000} s — a 503 page, never a hang or a 500`, async () => {
      // Three citizens at the login page; their passwords go in as FerretDB stops.
      const pending = await Promise.all([1, 2, 3].map(() => atLoginPage(config)));
      const inFlight = pending.map(({ browser, page }) => browser.post(new URL(formAction(page.text), srv.issuer).href, {
        _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password,
      }));
      await stopFerretDb(signal);
      for (const res of await Promise.all(inFlight)) {
        // Finished before the store went (consent page or back to the portal), or told it is unavailable.
        expect([200, 303, 503]).toContain(res.status);
        if (res.status === 503) expectUnavailablePage(res);
      }

      // The health check, a sign-in page that was open, a password sent now, a new authorization request.
      const [{ browser, page }] = pending as [{ browser: Browser; page: Response }];
      const [ready, reopened, posted, fresh] = await Promise.all([
        bounded(`${srv.issuer}/healthz/ready`),
        browser.get(page.url),
        browser.post(new URL(formAction(page.text), srv.issuer).href, { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password }),
        authRequest(config, portal).then((req) => new Browser(srv.issuer, { fetch: bounded }).get(req.url.href)),
      ]);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'unavailable', store: 'mongodb' });
      expectUnavailablePage(reopened);
      expectUnavailablePage(posted);
      expectUnavailablePage(fresh);
    });

    it(`FerretDB back on the same data and port after ${signal}: ready again, sign-ins succeed, the session from before is still there`, async () => {
      await startFerretDb();
      // The driver finds the server again by itself (its monitor); dinhdanh is not restarted.
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await bounded(`${srv.issuer}/healthz/ready`)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 200));
      }
      expect(status).toBe(200);

      const req = await authRequest(config, portal);
      const done = await signIn(new Browser(srv.issuer, { fetch: bounded }), req, person);
      expect(done.status).toBe(303);
      const tokens = await redeem(config, req, done.location!);
      expect(tokens.claims()?.sub).toBeTruthy();

      // The browser signed in before the outage: its SSO session was in FerretDB's files all along.
      const silent = await authRequest(config, portal, { prompt: 'none' });
      const back = await before.browser.get(silent.url.href);
      expect(back.status).toBe(303);
      expect(new URL(back.location!).searchParams.get('error')).toBeNull();
      await expect(redeem(config, silent, back.location!)).resolves.toBeTruthy();
    });
  }
});
