/**
 * `NODE_ENV=production` refuses to start on development keys, without cookie secrets, or on a
 * non-https issuer, and says which (PRODUCT.md, Running). Real processes, real key files.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadKeyMaterial, newSigningKeysFile, newSecretsFile, SECRETS_FILE, SIGNING_KEYS_FILE, writePrivateJson } from '../../src/keys/key-files.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
let dir: string;

beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-prod-')); });
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

function start(env: Record<string, string>, keysDir: string, waitFor?: RegExp, whenServing?: () => Promise<void>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), [path.join(ROOT, 'src/main.ts')], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PORT: '0', DINHDANH_REGISTRY: 'https://registry.example.gov.vn/verify', DINHDANH_REGISTRY_TOKEN: 'registry-test-token', DINHDANH_KEYS_DIR: keysDir, DINHDANH_STORE: `sqlite:${path.join(dir, 'db.sqlite')}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (waitFor && waitFor.test(stdout)) {
        waitFor = undefined;
        void (whenServing ?? (async () => {}))().finally(() => child.kill('SIGTERM'));
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, stdout }); });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    }).on('error', reject);
  });
}

describe('production start-up refusals', () => {
  it('refuses a non-https issuer', async () => {
    const r = await start({ DINHDANH_ISSUER: 'http://id.example.gov.vn' }, path.join(dir, 'k0'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/non-https issuer/);
  });

  it('refuses to start without a trusted TLS proxy (cookies would lose Secure)', async () => {
    const r = await start({ DINHDANH_ISSUER: 'https://id.example.gov.vn' }, path.join(dir, 'k0'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/DINHDANH_TRUST_PROXY_HOPS/);
  });

  it('refuses to start without signing keys, and does not generate any', async () => {
    const keysDir = path.join(dir, 'k1');
    const r = await start({ DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' }, keysDir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no signing keys.*keys generate/);
    expect(fs.existsSync(path.join(keysDir, SIGNING_KEYS_FILE))).toBe(false);
  });

  it('refuses generated development keys', async () => {
    const keysDir = path.join(dir, 'k2');
    await loadKeyMaterial({ keysDir, production: false });
    const r = await start({ DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' }, keysDir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/development signing keys/);
  });

  it('refuses to start without cookie secrets', async () => {
    const keysDir = path.join(dir, 'k3');
    writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
    const r = await start({ DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' }, keysDir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no cookie secrets/);
  });

  it('an unreachable MongoDB stops the start within seconds, naming MongoDB and the host, never the password', async () => {
    const keysDir = path.join(dir, 'k5');
    writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
    writePrivateJson(path.join(keysDir, SECRETS_FILE), newSecretsFile('operator'));
    const started = Date.now();
    const r = await start({
      DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1',
      DINHDANH_STORE: 'mongodb://dinhdanh:hunter2@127.0.0.1:9/dinhdanh',
    }, keysDir);
    expect(r.code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.stderr).toMatch(/MongoDB/);
    expect(r.stderr).toContain('127.0.0.1:9');
    expect(r.stderr + r.stdout).not.toContain('hunter2');
  });

  it('starts with operator keys and secrets on an https issuer', async () => {
    const keysDir = path.join(dir, 'k4');
    writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
    writePrivateJson(path.join(keysDir, SECRETS_FILE), newSecretsFile('operator'));
    const port = await freePort();
    let health = 0;
    const r = await start({ DINHDANH_ISSUER: 'https://id.example.gov.vn', HOST: '127.0.0.1', PORT: String(port), DINHDANH_TRUST_PROXY_HOPS: '1' }, keysDir, /dinhdanh is serving/, async () => {
      health = (await fetch(`http://127.0.0.1:${port}/healthz?secret=not-logged`)).status;
    });
    expect(health).toBe(200);
    expect(r.stdout).toMatch(/"msg":"dinhdanh is serving"/);
    expect(r.stdout).not.toMatch(/DEVELOPMENT/);
    // The access line (written in batches) is out by the time the process has stopped; the query is not.
    const access = r.stdout.split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(access).toContainEqual(expect.objectContaining({ method: 'GET', path: '/healthz', status: 200 }));
    expect(r.stdout).not.toContain('not-logged');
  });
});
