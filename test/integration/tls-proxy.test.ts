/**
 * The production shape behind a real TLS proxy: Debian's nginx terminates TLS with a certificate
 * made for this run, configured by deploy/nginx/dinhdanh.conf (the README's reference, only the
 * host name, ports and certificate paths replaced), in front of a production dinhdanh process
 * (`NODE_ENV=production`, operator keys, `DINHDANH_TRUST_PROXY_HOPS=1`). A real relying party
 * (openid-client) trusts only that certificate.
 *
 * What it shows: `__Host-` cookies with `Secure` (RFC 6265bis §4.1.3.2), HSTS on responses
 * (RFC 6797), the issuer's https URLs in discovery (OpenID Connect Discovery 1.0 §3, §4.3), and
 * per-IP sign-in limits keyed on the client address nginx forwarded — one hop only, so an
 * `X-Forwarded-For` entry the client wrote itself is never read.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { composeServices } from '../../src/services.js';
import { validatePortalInput } from '../../src/portals/index.js';
import { LOCKOUT } from '../../src/accounts/index.js';
import { createStore, type Store } from '../../src/store/index.js';
import { newSecretsFile, newSigningKeysFile, SECRETS_FILE, SIGNING_KEYS_FILE, writePrivateJson } from '../../src/keys/key-files.js';
import { Browser, alertText, type Response } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';
import { firstExecutable } from '../helpers/executables.js';
import { freePort } from '../helpers/free-port.js';
import { tlsFetch } from '../helpers/tls-fetch.js';

jest.setTimeout(60_000);

const ROOT = path.resolve(import.meta.dirname, '../..');
const TEMPLATE_FILE = path.join(ROOT, 'deploy/nginx/dinhdanh.conf');
/** A name under `.test` (RFC 6761): never a real host; the test connects to 127.0.0.1 for it. */
const HOST = 'id.dinhdanh.test';
const PASSWORD = 'sương sớm phủ kín đồi chè Thái Nguyên';
/**
 * Cookies that go without the `__Host-` prefix, and why; every other cookie must carry it. (The
 * prefix requires Path=/ and no Domain, RFC 6265bis §4.1.3.2.)
 */
const WITHOUT_HOST_PREFIX = new Map([
  ['dd_account_state', 'the account area\'s own sign-in state, scoped to Path=/account'],
  ['dd_lang', 'the chosen language only'],
]);

function findNginx(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin'];
  return firstExecutable(dirs.map((d) => path.join(d, 'nginx')));
}

const NGINX = findNginx();

/** A self-signed certificate for `name`, made with openssl for this run only. */
function selfSignedCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

/** The reference site configuration with this run's host, ports and files; every placeholder must still be there. */
function siteConfig(template: string, values: { tlsPort: number; httpPort: number; appPort: number; issuer: string; cert: string; key: string }): string {
  const replacements: Array<[string, string]> = [
    ['listen 443 ssl', `listen 127.0.0.1:${values.tlsPort} ssl`],
    ['listen 80 default_server', `listen 127.0.0.1:${values.httpPort} default_server`],
    ['server 127.0.0.1:3000;', `server 127.0.0.1:${values.appPort};`],
    ['https://id.example.gov.vn', values.issuer],
    ['server_name id.example.gov.vn;', `server_name ${HOST};`],
    ['/etc/ssl/dinhdanh/fullchain.pem', values.cert],
    ['/etc/ssl/dinhdanh/privkey.pem', values.key],
  ];
  return replacements.reduce((text, [from, to]) => {
    if (!text.includes(from)) throw new Error(`${TEMPLATE_FILE} no longer has "${from}": change this test with it`);
    return text.split(from).join(to);
  }, template);
}

/** nginx's own files (pid, logs, buffers) in the test's folder; the site configuration is the reference's. */
function mainConfig(dir: string): string {
  const tmp = (name: string) => path.join(dir, 'nginx-tmp', name);
  return [
    // As root (CI), workers would otherwise drop to `nobody`, which cannot enter the test's private
    // (0700) folder: a response large enough to be buffered to proxy_temp_path would then fail.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'daemon off;',
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'nginx-error.log')} warn;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${path.join(dir, 'nginx-access.log')};`,
    `  client_body_temp_path ${tmp('body')};`,
    `  proxy_temp_path ${tmp('proxy')};`,
    `  fastcgi_temp_path ${tmp('fastcgi')};`,
    `  uwsgi_temp_path ${tmp('uwsgi')};`,
    `  scgi_temp_path ${tmp('scgi')};`,
    `  include ${path.join(dir, 'dinhdanh.conf')};`,
    '}',
    '',
  ].join('\n');
}

async function waitFor(what: string, child: ChildProcess, output: () => string, ready: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${output()}`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready: ${output()}`);
}

function expectHsts(res: { headers: Headers }): void {
  const hsts = res.headers.get('strict-transport-security') ?? '';
  expect(Number(/max-age=(\d+)/.exec(hsts)?.[1])).toBeGreaterThanOrEqual(31_536_000);
}

/**
 * Every cookie set on `responses` is Secure; each carries `__Host-` (so Path=/ and no Domain,
 * RFC 6265bis §4.1.3.2) unless WITHOUT_HOST_PREFIX names it; `required` is among them.
 */
function expectCookies(responses: Response[], required: string): void {
  const cookies = responses.flatMap((res) => res.headers.getSetCookie()).map(parseSetCookie);
  const names = cookies.map((c) => c.name);
  expect(names).toContain(required);
  for (const cookie of cookies) {
    const prefixed = cookie.name.startsWith('__Host-');
    // A koa signature cookie is `<name>.sig` and follows its cookie's rule.
    const base = cookie.name.replace(/^__Host-/, '').replace(/\.sig$/, '');
    expect({ cookie: cookie.name, secure: cookie.attributes.includes('secure'), httpOnly: cookie.attributes.includes('httponly') })
      .toEqual({ cookie: cookie.name, secure: true, httpOnly: true });
    expect({ cookie: cookie.name, prefixed: prefixed || WITHOUT_HOST_PREFIX.has(base) }).toEqual({ cookie: cookie.name, prefixed: true });
    if (prefixed) {
      expect({ cookie: cookie.name, path: cookie.attributes.includes('path=/'), domain: cookie.attributes.some((a) => a.startsWith('domain=')) })
        .toEqual({ cookie: cookie.name, path: true, domain: false });
    }
  }
}

interface SetCookie {
  name: string;
  attributes: string[];
}

function parseSetCookie(line: string): SetCookie {
  const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
  return { name: pair.slice(0, pair.indexOf('=')), attributes: attributes.map((a) => a.toLowerCase()) };
}

const suite = NGINX ? describe : describe.skip;
const suiteName = `behind nginx terminating TLS (deploy/nginx/dinhdanh.conf)${NGINX ? '' : ' (skipped: nginx is not installed — .ci/run installs Debian\'s nginx)'}`;
// Jest lists no test names for a file whose tests are all skipped: say why in the run's output too.
if (!NGINX) console.warn(suiteName);

let dir: string;
let issuer: string;
let ca: string;
let storeUrl: string;
let portal: Portal;
let citizens: string[];
let httpPort: number;
let store: Store | undefined;
const children: ChildProcess[] = [];

/** A client on its own loopback address (nginx sees it as the client), trusting only the test certificate. */
function client(localAddress: string, headers: Record<string, string> = {}): typeof fetch {
  return tlsFetch({ ca, connectTo: '127.0.0.1', localAddress, headers });
}

async function signInVia(fetchImpl: typeof fetch, pid: string, onResponse?: (res: Response) => void) {
  const config = await discover(issuer, portal, { fetch: fetchImpl });
  const browser = new Browser(issuer, { fetch: fetchImpl, onResponse });
  const req = await authRequest(config, portal);
  const done = await signIn(browser, req, { pid, password: PASSWORD });
  return { config, req, done };
}

suite(suiteName, () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-tls-'));
    const [appPort, tlsPort] = [await freePort(), await freePort()];
    httpPort = await freePort();
    issuer = `https://${HOST}:${tlsPort}`;
    const certificate = selfSignedCertificate(dir, HOST);
    ca = fs.readFileSync(certificate.cert, 'utf8');

    // Production key material, written as `dinhdanh keys generate` does.
    const keysDir = path.join(dir, 'keys');
    writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
    writePrivateJson(path.join(keysDir, SECRETS_FILE), newSecretsFile('operator'));
    storeUrl = `sqlite:${path.join(dir, 'dinhdanh.db')}`;
    const env = {
      PATH: process.env.PATH ?? '', NODE_ENV: 'production', DINHDANH_REGISTRY: 'https://registry.example.gov.vn/verify', DINHDANH_REGISTRY_TOKEN: 'registry-test-token', HOST: '127.0.0.1', PORT: String(appPort),
      DINHDANH_ISSUER: issuer, DINHDANH_TRUST_PROXY_HOPS: '1', DINHDANH_STORE: storeUrl, DINHDANH_KEYS_DIR: keysDir, LOG_LEVEL: 'warn',
    };

    // The portal and the citizens go into the production store as the CLI would put them there.
    const services = await composeServices(loadConfig(env, dir), { logger: pino({ level: 'silent' }) });
    try {
      const input = validatePortalInput({ name: 'Cổng sau proxy', redirectUris: ['https://portal.dinhdanh.test/callback'] }, { production: true });
      const reg = await services.portals.register(input);
      portal = { client_id: reg.client_id, client_secret: reg.client_secret!, redirect_uri: input.redirectUris[0]! };
      citizens = ['001090880001', '001090880002', '001090880003'];
      for (const pid of citizens) await services.accounts.create({ pid, name: 'Lê Văn Proxy', birthdate: '1990-08-08', gender: 'male', password: PASSWORD });
    } finally {
      await services.store.close();
    }

    // tsx by absolute URL: the process runs in the scratch folder, which has no node_modules.
    const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    const app = spawn(process.execPath, ['--import', tsx, path.join(ROOT, 'src/main.ts')], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(app);
    let appErr = '';
    app.stderr!.on('data', (d: Buffer) => { appErr += d.toString(); });
    await waitFor('dinhdanh', app, () => appErr, async () => (await fetch(`http://127.0.0.1:${appPort}/healthz/ready`)).status === 200);

    const template = fs.readFileSync(TEMPLATE_FILE, 'utf8');
    fs.writeFileSync(path.join(dir, 'dinhdanh.conf'), siteConfig(template, { tlsPort, httpPort, appPort, issuer, cert: certificate.cert, key: certificate.key }));
    fs.writeFileSync(path.join(dir, 'nginx.conf'), mainConfig(dir));
    fs.mkdirSync(path.join(dir, 'nginx-tmp'));
    const nginx = spawn(NGINX!, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'nginx-error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(nginx);
    let nginxErr = '';
    nginx.stderr!.on('data', (d: Buffer) => { nginxErr += d.toString(); });
    const nginxLog = () => `${nginxErr}${fs.existsSync(path.join(dir, 'nginx-error.log')) ? fs.readFileSync(path.join(dir, 'nginx-error.log'), 'utf8') : ''}`;
    await waitFor('nginx', nginx, nginxLog, async () => (await client('127.0.0.1')(`${issuer}/healthz`)).status === 200);

    store = await createStore(storeUrl);
  });

  afterAll(async () => {
    await store?.close();
    for (const child of children.reverse()) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the README shows the reference configuration this test runs', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = `\`\`\`nginx\n${fs.readFileSync(TEMPLATE_FILE, 'utf8')}\`\`\``;
    expect({ readmeShowsTheTemplate: readme.includes(block) }).toEqual({ readmeShowsTheTemplate: true });
  });

  it('discovery names the https issuer and https endpoints; HSTS; what the client forged in X-Forwarded-* is overwritten', async () => {
    const forged = client('127.0.0.2', { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http', 'x-request-id': 'chosen-by-the-client' });
    const res = await forged(`${issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expectHsts(res);
    // The request id dinhdanh logs is the proxy's ($request_id), never one the client picked.
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc.issuer).toBe(issuer);
    const urls = Object.entries(doc).filter(([key]) => key.endsWith('_endpoint') || key.endsWith('_uri'));
    expect(urls.map(([key]) => key)).toEqual(expect.arrayContaining(['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint']));
    for (const [, url] of urls) expect(String(url).startsWith(`${issuer}/`)).toBe(true);
  });

  it('a relying party that does not trust the certificate cannot even discover the issuer', async () => {
    const other = selfSignedCertificate(dir, 'other.dinhdanh.test');
    const untrusting = tlsFetch({ ca: fs.readFileSync(other.cert, 'utf8'), connectTo: '127.0.0.1' });
    // Refused at the TLS handshake: the certificate is not one it trusts.
    await expect(discover(issuer, portal, { fetch: untrusting })).rejects.toMatchObject({ cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' } });
  });

  it('plain http only redirects to the https issuer', async () => {
    const res = await client('127.0.0.2')(`http://${HOST}:${httpPort}/account?lang=en`, { redirect: 'manual' });
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe(`${issuer}/account?lang=en`);
  });

  it('a citizen signs in through the proxy: __Host- Secure session cookie, every cookie Secure, HSTS on every response', async () => {
    const responses: Response[] = [];
    const { config, req, done } = await signInVia(client('127.0.0.2'), citizens[0]!, (res) => responses.push(res));
    expect(done.status).toBe(303);
    expect(done.location!.startsWith(`${portal.redirect_uri}?`)).toBe(true);
    const tokens = await redeem(config, req, done.location!);
    expect(tokens.claims()).toMatchObject({ iss: issuer, aud: portal.client_id });

    // Login page, form posts, consent, the redirects between: all from dinhdanh, all with HSTS.
    expect(responses.length).toBeGreaterThanOrEqual(4);
    for (const res of responses) expectHsts(res);

    expectCookies(responses, '__Host-dd_session');
    expect(responses.some((res) => res.headers.getSetCookie().some((line) => line.startsWith('dd_session=')))).toBe(false);
  });

  it('the account area signs in through the proxy too: every cookie Secure, __Host- unless listed with a reason', async () => {
    const responses: Response[] = [];
    const browser = new Browser(issuer, { fetch: client('127.0.0.2'), onResponse: (res) => responses.push(res) });
    // The language switch's cookie is Secure only if dinhdanh believed the proxy's X-Forwarded-Proto.
    expect((await browser.get(`${issuer}/?lang=en`)).status).toBe(200);
    // The account area starts its own sign-in (oidc-provider's first-party client) and comes back.
    const done = await signIn(browser, { url: new URL(`${issuer}/account?lang=en`), verifier: '', state: '', nonce: '' }, { pid: citizens[0]!, password: PASSWORD });
    expect(done.status).toBe(200);
    expect(done.url.startsWith(`${issuer}/account`)).toBe(true);
    expectCookies(responses, '__Host-dd_session');
    expect(responses.flatMap((res) => res.headers.getSetCookie()).map((line) => parseSetCookie(line).name)).toEqual(expect.arrayContaining(['dd_lang', 'dd_account_state']));
  });

  it('per-IP limits count the address nginx forwarded, not the proxy\'s, and never a forged X-Forwarded-For entry', async () => {
    // 127.0.0.4 signs in while claiming, in its own X-Forwarded-For, to be 198.51.100.7.
    const { done } = await signInVia(client('127.0.0.4', { 'x-forwarded-for': '198.51.100.7' }), citizens[1]!);
    expect(done.status).toBe(303);
    const now = Date.now();
    expect((await store!.counters.get('login-ip:127.0.0.4', now))?.count).toBe(1);
    expect(await store!.counters.get('login-ip:198.51.100.7', now)).toBeUndefined();
    expect(await store!.counters.get('login-ip:127.0.0.1', now)).toBeUndefined();

    // 127.0.0.5 has used up its budget; a forged entry does not take it out of that budget …
    for (let i = 0; i < LOCKOUT.ipBudget; i++) await store!.counters.increment('login-ip:127.0.0.5', LOCKOUT.ipWindowMs, now);
    const limited = await signInVia(client('127.0.0.5', { 'x-forwarded-for': '198.51.100.8' }), citizens[2]!);
    expect(limited.done.status).toBe(429);
    expect(alertText(limited.done.text)).toMatch(/quá nhiều|too many/i);
    // … and naming the limited address in a forged entry does not put another client into it.
    const other = await signInVia(client('127.0.0.4', { 'x-forwarded-for': '127.0.0.5' }), citizens[2]!);
    expect(other.done.status).toBe(303);
    expect((await store!.counters.get('login-ip:127.0.0.4', Date.now()))?.count).toBe(2);
  });
});
