/**
 * Two provider processes on one store behave as one (issue 7): a citizen signs in on the first,
 * the portal redeems the code at the second, the second sees the SSO session, and signing out on
 * the first ends it for both; the back-channel logout goes out once. Real processes
 * (`node --import tsx src/main.ts`), one SQLite file, one keys folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import crypto from 'node:crypto';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { composeServices } from '../../src/services.js';
import { validatePortalInput } from '../../src/portals/index.js';
import { Browser, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, signIn } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';

jest.setTimeout(60_000);

const ROOT = path.resolve(import.meta.dirname, '../..');
const PASSWORD = 'gió mùa đông bắc về trên phố cổ';
let dir: string;
let env: Record<string, string>;
const children: ChildProcess[] = [];
let a: string;
let b: string;
let receiver: LogoutReceiver;
let portal: { client_id: string; client_secret: string; redirect_uri: string };
let backend: { client_id: string; client_secret: string };
let pid: string;

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function start(port: number): Promise<string> {
  // tsx by absolute URL: the instances run in a scratch folder without node_modules.
  const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const child = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'src/main.ts')], {
    cwd: dir, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`instance on ${port} exited: ${stderr}`);
    try {
      if ((await fetch(`${base}/healthz/ready`)).status === 200) return base;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`instance on ${port} did not become ready: ${stderr}`);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-multi-'));
  receiver = await new LogoutReceiver().start();
  const [portA, portB] = [await freePort(), await freePort()];
  const issuer = `http://localhost:${portA}`;
  env = {
    PATH: process.env.PATH ?? '', NODE_ENV: 'test', DINHDANH_ISSUER: issuer, DINHDANH_DEMO: 'off', LOG_LEVEL: 'silent',
    DINHDANH_STORE: `sqlite:${path.join(dir, 'shared.db')}`, DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
  };
  // Register the portal and the citizen through the same store, as the CLI would.
  const services = await composeServices(loadConfig(env, dir), { logger: pino({ level: 'silent' }) });
  try {
    const input = validatePortalInput({ name: 'Cổng hai máy', redirectUris: ['http://localhost:9700/callback'], grantTypes: ['authorization_code', 'refresh_token'], backchannelLogoutUri: receiver.url('/two') }, { production: false });
    const reg = await services.portals.register(input);
    portal = { client_id: reg.client_id, client_secret: reg.client_secret!, redirect_uri: input.redirectUris[0]! };
    const machine = await services.portals.register(validatePortalInput({ name: 'Cổng máy chủ', redirectUris: ['http://localhost:9701/callback'], grantTypes: ['authorization_code', 'client_credentials'] }, { production: false }));
    backend = { client_id: machine.client_id, client_secret: machine.client_secret! };
    pid = '001090777001';
    await services.accounts.create({ pid, name: 'Trần Thị Hai', birthdate: '1990-04-04', gender: 'male', password: PASSWORD });
  } finally {
    await services.store.close();
  }
  a = await start(portA);
  b = await start(portB);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
  await receiver.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('two instances, one store', () => {
  it('sign in on A, redeem the code on B, SSO seen by B, sign out on A ends it everywhere', async () => {
    // Both instances publish the same keys (imported once into the store).
    const kids = async (base: string) => ((await (await fetch(`${base}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();
    expect(await kids(b)).toEqual(await kids(a));

    const issuer = env.DINHDANH_ISSUER!;
    const atA = await oidc.discovery(new URL(issuer), portal.client_id, portal.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    // The portal's back end talks to B: same issuer, B's endpoints.
    const bMeta = { ...atA.serverMetadata() };
    for (const key of ['token_endpoint', 'userinfo_endpoint', 'introspection_endpoint'] as const) bMeta[key] = String(bMeta[key]).replace(issuer, b);
    const atB = new oidc.Configuration(bMeta, portal.client_id, portal.client_secret);
    oidc.allowInsecureRequests(atB);

    const browser = new Browser(issuer);
    const req = await authRequest(atA, portal);
    const done = await signIn(browser, req, { pid, password: PASSWORD });
    expect(done.status).toBe(303);
    const tokens = await oidc.authorizationCodeGrant(atB, new URL(done.location!), { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce });
    const sub = tokens.claims()!.sub;
    await expect(oidc.fetchUserInfo(atA, tokens.access_token, sub)).resolves.toMatchObject({ sub });
    // B sees the SSO session A created (the browser's cookies, sent to B).
    const cookie = browser.cookieHeader(`${issuer}/`);
    const silent = await authRequest(atA, portal, { prompt: 'none' });
    const viaB = await fetch(silent.url.href.replace(issuer, b), { headers: { cookie }, redirect: 'manual' });
    expect(new URL(viaB.headers.get('location')!).searchParams.get('code')).toBeTruthy();

    // The first code was spent on B: A refuses it (and, per RFC 6749 §4.1.2, revokes its grant).
    await expect(oidc.authorizationCodeGrant(atA, new URL(done.location!), { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce }))
      .rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(atB, tokens.access_token, sub)).rejects.toThrow();

    // Sign out on A.
    const page = await browser.get(`${issuer}/session/end`);
    await browser.post(new URL(formAction(page.text), issuer).href, { xsrf: hiddenField(page.text, 'xsrf'), _csrf: hiddenField(page.text, '_csrf'), logout: 'all' });
    const after = await fetch(silent.url.href.replace(issuer, b), { headers: { cookie }, redirect: 'manual' });
    expect(new URL(after.headers.get('location')!).searchParams.get('error')).toBe('login_required');
    // One logout token for the portal, whichever instance delivered it.
    await receiver.waitFor('/two');
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.tokens('/two')).toHaveLength(1);
  });
});

/** A POST to one instance as if to the issuer's host (a load balancer in front keeps the Host header). */
function postAs(base: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  const target = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path, method: 'POST', headers: { ...headers, host: new URL(env.DINHDANH_ISSUER!).host, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('replay detection across instances', () => {
  it('a DPoP proof sent to both instances at once is accepted by exactly one (RFC 9449 §11.1)', async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
    const jwk = await jose.exportJWK(publicKey);
    const htu = `${env.DINHDANH_ISSUER}/token`;
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${backend.client_id}:${backend.client_secret}`).toString('base64')}`,
    };
    const body = new URLSearchParams({ grant_type: 'client_credentials' }).toString();
    const outcomes: number[][] = [];
    for (let round = 0; round < 10; round += 1) {
      const proof = await new jose.SignJWT({ jti: crypto.randomUUID(), htm: 'POST', htu, iat: Math.floor(Date.now() / 1000) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
      const answers = await Promise.all([a, b, a, b].map((base) => postAs(base, '/token', { ...headers, dpop: proof }, body)));
      outcomes.push(answers.map((r) => r.status).sort());
      for (const r of answers) expect(r.status).toBeLessThan(500);
    }
    expect(outcomes).toEqual(Array.from({ length: 10 }, () => [200, 400, 400, 400]));
  });
});
