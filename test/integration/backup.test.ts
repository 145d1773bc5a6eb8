/**
 * `dinhdanh store backup` as operators use it: the real CLI process backs up the SQLite store of a
 * real running server while citizens keep signing in, and a second server started on a copy of the
 * backup (same keys folder) still knows every account, portal, consent, signing key and refresh
 * token that existed before. Then the refusals: an existing file, the store's own files, a folder
 * that does not exist, and a MongoDB store (advice instead); and a copy that fails verification.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import * as oidc from 'openid-client';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { composeServices } from '../../src/services.js';
import { createStore } from '../../src/store/index.js';
import { validatePortalInput } from '../../src/portals/index.js';
import { Browser, formAction, hiddenField } from '../helpers/browser.js';
import { freePort } from '../helpers/free-port.js';
import { ProcessGroup, type CliRun } from '../helpers/processes.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';

jest.setTimeout(180_000);

const PASSWORD = 'mưa phùn tháng hai trên đồi chè xanh';

let dir: string;
let port: number;
let issuer: string;
let env: Record<string, string>;
let storeFile: string;
let server: ChildProcess | undefined;
const portals: Portal[] = [];
/** Citizens signed in before the backup; `loaders` only sign in during it. */
const citizens: string[] = [];
const loaders: string[] = [];

const processes = new ProcessGroup();
const cli = (args: string[], runEnv: Record<string, string> = env): Promise<CliRun> => processes.cli(args, { cwd: dir, env: runEnv });
const startServer = (store: string): Promise<ChildProcess> =>
  processes.server(issuer, { cwd: dir, env: { ...env, DINHDANH_STORE: `sqlite:${store}`, PORT: String(port) } });

/** stdout must be exactly one JSON object. */
function json(run: CliRun): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const kids = async (): Promise<string[]> =>
  ((await (await fetch(`${issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();

/** A sign-in by a new browser, the code redeemed: its tokens (a refresh token among them). */
async function signInAndRedeem(config: oidc.Configuration, portal: Portal, pid: string) {
  const req = await authRequest(config, portal);
  const done = await signIn(new Browser(issuer), req, { pid, password: PASSWORD });
  if (done.status !== 303 || !done.location?.startsWith(portal.redirect_uri)) throw new Error(`sign-in of ${pid} ended with ${done.status}`);
  return redeem(config, req, done.location);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-backup-'));
  port = await freePort();
  issuer = `http://localhost:${port}`;
  storeFile = path.join(dir, 'live', 'store.db');
  env = {
    PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, NODE_ENV: 'test', DINHDANH_ISSUER: issuer, DINHDANH_DEMO: 'off',
    LOG_LEVEL: 'silent', DINHDANH_STORE: `sqlite:${storeFile}`, DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
  };
  // Portals and citizens through the same store, as the CLI would.
  const services = await composeServices(loadConfig(env, dir), { logger: pino({ level: 'silent' }) });
  try {
    for (const [i, name] of ['Cổng dịch vụ công tỉnh Lào Cai', 'Cổng bảo hiểm xã hội'].entries()) {
      const input = validatePortalInput({ name, redirectUris: [`http://localhost:${9710 + i}/callback`], grantTypes: ['authorization_code', 'refresh_token'] }, { production: false });
      const reg = await services.portals.register(input);
      portals.push({ client_id: reg.client_id, client_secret: reg.client_secret!, redirect_uri: input.redirectUris[0]! });
    }
    const names = ['Lê Văn Sao', 'Phạm Thị Mai', 'Hoàng Văn Núi', 'Đặng Thị Lan', 'Vũ Văn Gió', 'Bùi Thị Mây'];
    for (const [i, name] of names.entries()) {
      // Digit 4 is the century and gender (0 a man, 1 a woman born in the 1900s), then the year.
      const pid = `001${i % 2}90${788000 + i}`;
      await services.accounts.create({ pid, name, birthdate: `1990-03-0${i + 1}`, gender: i % 2 ? 'female' : 'male', password: PASSWORD });
      (i < 4 ? citizens : loaders).push(pid);
    }
  } finally {
    await services.store.close();
  }
  server = await startServer(storeFile);
});

afterAll(async () => {
  await processes.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('store backup under load, and a restore', () => {
  it('backs up the running store while citizens sign in; a server on the restored copy honours everything from before', async () => {
    const configs = await Promise.all(portals.map((p) => discover(issuer, p)));
    // Before: each citizen signs in at each portal (consent given, a refresh token held).
    const held: Array<{ portal: number; pid: string; refreshToken: string; sub: string }> = [];
    for (const pid of citizens) {
      for (const [i, portal] of portals.entries()) {
        const tokens = await signInAndRedeem(configs[i]!, portal, pid);
        expect(tokens.refresh_token).toBeTruthy();
        held.push({ portal: i, pid, refreshToken: tokens.refresh_token!, sub: tokens.claims()!.sub });
      }
    }
    const kidsBefore = await kids();
    expect(kidsBefore.length).toBeGreaterThanOrEqual(2);

    // Load: sign-ins (sessions, codes, grants, tokens, audit entries written) and refreshes,
    // two at a time, until the backup is done.
    let loading = true;
    let signIns = 0;
    const loadErrors: string[] = [];
    const load = async (pid: string, i: number) => {
      while (loading) {
        try {
          const tokens = await signInAndRedeem(configs[i]!, portals[i]!, pid);
          await oidc.refreshTokenGrant(configs[i]!, tokens.refresh_token!);
          signIns += 1;
        } catch (err) {
          loadErrors.push((err as Error).message);
        }
      }
    };
    const loops = [load(loaders[0]!, 0), load(loaders[1]!, 1)];
    while (signIns < 2 && loadErrors.length === 0) await new Promise((r) => setTimeout(r, 50));
    const signInsAtStart = signIns;

    const target = path.join(dir, 'backups', 'store-backup.db');
    fs.mkdirSync(path.dirname(target), { mode: 0o700 });
    const run = await cli(['store', 'backup', '--to', target, '--json']);
    const signInsDuring = signIns - signInsAtStart;
    loading = false;
    await Promise.all(loops);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = json(run) as { store: string; to: string; bytes: number; integrity: string; schema_version: number; collections: Record<string, number> };
    expect(loadErrors).toEqual([]);
    // The server kept serving while the CLI ran: not a measure of speed, only that load overlapped it.
    expect(signInsDuring).toBeGreaterThanOrEqual(1);
    expect(report).toMatchObject({ store: 'sqlite', to: target, integrity: 'ok', bytes: fs.statSync(target).size });
    expect(report.schema_version).toBeGreaterThanOrEqual(7);
    expect(report.collections.persons).toBe(citizens.length + loaders.length);
    expect(report.collections.portals).toBe(portals.length);
    expect(report.collections.consents).toBeGreaterThanOrEqual(citizens.length * portals.length);
    expect(report.collections.signingKeys).toBeGreaterThanOrEqual(kidsBefore.length);
    expect(report.collections.oidc).toBeGreaterThanOrEqual(held.length);
    expect(report.collections.auditLog).toBeGreaterThan(0);
    // Private like the store, and nothing left beside it (no temporary file, no -wal or -shm).
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(target))).toEqual(['store-backup.db']);

    // Restore as README says: stop the server, put the backup in place of the store (a new
    // folder here), start on it with the same keys folder.
    await ProcessGroup.stop(server!);
    const restored = path.join(dir, 'restored', 'store.db');
    fs.mkdirSync(path.dirname(restored), { mode: 0o700 });
    fs.copyFileSync(target, restored);
    server = await startServer(restored);

    expect(await kids()).toEqual(kidsBefore);
    // Every refresh token held from before the backup works (200), for the same subject.
    for (const h of held) {
      const refreshed = await oidc.refreshTokenGrant(configs[h.portal]!, h.refreshToken);
      expect(refreshed.access_token).toBeTruthy();
      expect(refreshed.claims()?.sub ?? h.sub).toBe(h.sub);
      await expect(oidc.fetchUserInfo(configs[h.portal]!, refreshed.access_token, h.sub)).resolves.toMatchObject({ sub: h.sub });
    }
    // Every account signs in with its password, and every consent is remembered: no consent page.
    for (const pid of citizens) {
      for (const [i, portal] of portals.entries()) {
        const req = await authRequest(configs[i]!, portal);
        const browser = new Browser(issuer);
        const login = await browser.get(req.url.href);
        expect(login.text).toContain('name="identifier"');
        const done = await browser.post(new URL(formAction(login.text), issuer).href, { _csrf: hiddenField(login.text, '_csrf'), identifier: pid, password: PASSWORD });
        expect(done.status).toBe(303);
        expect(done.location!.startsWith(portal.redirect_uri)).toBe(true);
        const tokens = await redeem(configs[i]!, req, done.location!);
        expect(tokens.claims()!.sub).toBe(held.find((h) => h.pid === pid && h.portal === i)!.sub);
      }
    }
  });
});

describe('store backup refusals (exit 2, nothing changed) and failures (exit 1)', () => {
  it('refuses an existing file without --force, and replaces it with --force', async () => {
    const target = path.join(dir, 'existing.db');
    fs.writeFileSync(target, 'an older backup');
    const before = fs.readdirSync(dir).sort();
    const run = await cli(['store', 'backup', '--to', target, '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(/already exists.*--force/);
    expect(fs.readFileSync(target, 'utf8')).toBe('an older backup');
    expect(fs.readdirSync(dir).sort()).toEqual(before);

    const forced = await cli(['store', 'backup', '--to', target, '--force', '--json']);
    expect(forced.code).toBe(0);
    expect(json(forced)).toMatchObject({ to: target, integrity: 'ok' });
    expect(fs.readFileSync(target).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
  });

  it("refuses the store's own file and the files beside it, even with --force, however it is named", async () => {
    const inode = fs.statSync(storeFile).ino;
    const link = path.join(dir, 'looks-like-a-backup.db');
    fs.symlinkSync(storeFile, link);
    for (const target of [storeFile, `${storeFile}-wal`, `${storeFile}-shm`, link]) {
      const run = await cli(['store', 'backup', '--to', target, '--force', '--json']);
      expect(run.code).toBe(2);
      expect(String(json(run).error)).toMatch(/the store's own file/);
    }
    expect(fs.statSync(storeFile).ino).toBe(inode);
    expect(fs.readlinkSync(link)).toBe(storeFile);
  });

  it('refuses a folder that does not exist', async () => {
    const missing = path.join(dir, 'no-such-folder');
    const run = await cli(['store', 'backup', '--to', path.join(missing, 'b.db'), '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(/does not exist; create it first/);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('a copy that fails verification is removed: exit 1 with the reason, no file left', async () => {
    // A store with one damaged index entry (a counter's key changed in the primary-key index
    // only): SQLite opens and serves it, the backup API copies pages as they are, and only the
    // integrity check of the copy finds it.
    const damaged = path.join(dir, 'damaged', 'store.db');
    const store = await createStore(`sqlite:${damaged}`);
    for (let i = 0; i < 40; i++) await store.counters.increment(`backup-test:${i}`, 60_000, Date.now());
    await store.close();
    const raw = new Database(damaged);
    const { pageno } = raw.prepare("SELECT pageno FROM dbstat WHERE name = 'sqlite_autoindex_counters_1' AND pagetype = 'leaf'").get() as { pageno: number };
    const pageSize = raw.pragma('page_size', { simple: true }) as number;
    raw.close(); // the last connection checkpoints the WAL into the file
    const bytes = fs.readFileSync(damaged);
    const page = bytes.subarray((pageno - 1) * pageSize, pageno * pageSize);
    const at = page.indexOf('backup-test:17');
    expect(at).toBeGreaterThan(0);
    page.write('backup-test#17', at, 'latin1');
    fs.writeFileSync(damaged, bytes);

    const out = path.join(dir, 'from-damaged');
    fs.mkdirSync(out);
    const run = await cli(['store', 'backup', '--to', path.join(out, 'b.db'), '--json'], { ...env, DINHDANH_STORE: `sqlite:${damaged}` });
    expect(run.code).toBe(1);
    expect(String(json(run).error)).toMatch(/failed verification and was removed: the copy fails SQLite.s integrity check: .*missing from index sqlite_autoindex_counters_1/);
    expect(fs.readdirSync(out)).toEqual([]);
  });

  const itMongo = process.env.MONGODB_URI ? it : it.skip;
  itMongo(`refuses a MongoDB store with advice (mongodump --oplog)${process.env.MONGODB_URI ? '' : ' (skipped: set MONGODB_URI)'}`, async () => {
    const url = new URL(process.env.MONGODB_URI!);
    url.pathname = `/dd_backup_${Date.now().toString(36)}`;
    const target = path.join(dir, 'mongo-backup.db');
    const run = await cli(['store', 'backup', '--to', target, '--json'], { ...env, DINHDANH_STORE: url.href });
    expect(run.code).toBe(2);
    const error = String(json(run).error);
    expect(error).toMatch(/mongodump --oplog/);
    expect(error).toMatch(/mongorestore --oplogReplay/);
    expect(fs.existsSync(target)).toBe(false);
  });
});
