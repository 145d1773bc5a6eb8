/**
 * The `dinhdanh` command as operators run it: a real child process (`node --import tsx
 * src/cli/bin.ts …`) on a temporary SQLite store and keys folder. PRODUCT.md "Command line": every
 * command takes `--json` and then prints one JSON object on stdout; bad input exits non-zero (2)
 * with a message that says what to fix.
 */
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import { createStore } from '../../src/store/index.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { oneJson, runCli, type Run } from '../helpers/cli-process.js';
import * as oidc from 'openid-client';
import { startTestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';

const PASSWORD = 'sông Hồng chảy qua bốn mùa lúa chín';

let dir: string;
let env: NodeJS.ProcessEnv;


const cli = (args: string[], stdin?: string): Promise<Run> => runCli(env, args, stdin);

const json = oneJson;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-cli-'));
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'development',
    DINHDANH_STORE: `sqlite:${path.join(dir, 'data', 'x.db')}`,
    DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
  };
});
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const PID = '001090000123';
const PORTAL_REDIRECT = 'http://localhost:9400/callback';
let portal: { client_id: string; client_secret: string };

describe('dinhdanh portals / accounts / keys with --json', () => {
  it('portals add prints one JSON object with client_id and client_secret', async () => {
    const run = await cli(['portals', 'add', '--name', 'Cổng dịch vụ công tỉnh thử', '--redirect-uri', PORTAL_REDIRECT, '--json']);
    expect(run.code).toBe(0);
    const out = json(run);
    expect(typeof out.client_id).toBe('string');
    expect(typeof out.client_secret).toBe('string');
    expect((out.client_secret as string).length).toBeGreaterThanOrEqual(43); // ≥ 256 bits, base64url
    portal = { client_id: out.client_id as string, client_secret: out.client_secret as string };
  });

  it('portals list --json lists it, without its secret', async () => {
    const run = await cli(['portals', 'list', '--json']);
    expect(run.code).toBe(0);
    const out = json(run) as { portals: Array<Record<string, unknown>> };
    const listed = out.portals.find((p) => p.client_id === portal.client_id);
    expect(listed).toMatchObject({ name: 'Cổng dịch vụ công tỉnh thử', redirect_uris: [PORTAL_REDIRECT] });
    expect(run.stdout).not.toContain(portal.client_secret);
  });

  it('accounts add --password-stdin --json reads the password from stdin and prints {"id":…}', async () => {
    const run = await cli(['accounts', 'add', '--pid', PID, '--name', 'Trần Thị Bình', '--birthdate', '1990-07-01', '--gender', 'male',
      '--email', 'binh@example.vn', '--password-stdin', '--json'], `${PASSWORD}\n`);
    expect(run.stderr).not.toContain(PASSWORD);
    expect(run.code).toBe(0);
    const out = json(run);
    expect(Object.keys(out)).toEqual(['id']);
    expect(out.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(run.stdout).not.toContain(PASSWORD);
    expect(run.stdout).not.toContain(PID);
  });

  it('accounts list --json masks the identification number', async () => {
    const run = await cli(['accounts', 'list', '--json']);
    expect(run.code).toBe(0);
    const out = json(run) as { total: number; accounts: Array<{ pid: string; name: string }> };
    expect(out.total).toBe(1);
    expect(out.accounts).toHaveLength(1);
    expect(out.accounts[0]!.name).toBe('Trần Thị Bình');
    expect(out.accounts[0]!.pid).not.toBe(PID);
    expect(out.accounts[0]!.pid).toMatch(/^\*+\d{0,4}$/);
    expect(run.stdout).not.toContain(PID);
    expect(run.stdout).not.toMatch(/\d{12}/);
    expect(run.stderr).not.toContain(PID);
  });

  it('keys list --json shows kids and algs and no private members; key files are 0600', async () => {
    const run = await cli(['keys', 'list', '--json']);
    expect(run.code).toBe(0);
    const out = json(run) as { keys: Array<Record<string, unknown>> };
    expect(out.keys.length).toBeGreaterThanOrEqual(1);
    expect(out.keys.map((k) => k.alg)).toContain('RS256');
    const kids = out.keys.map((k) => k.kid);
    for (const kid of kids) expect(typeof kid).toBe('string');
    expect(new Set(kids).size).toBe(kids.length);
    for (const k of out.keys) {
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) expect(k).not.toHaveProperty(priv);
    }
    const signing = JSON.parse(fs.readFileSync(path.join(dir, 'keys', 'signing-keys.json'), 'utf8')) as { keys: Array<{ d?: string }> };
    for (const k of signing.keys) expect(run.stdout).not.toContain(k.d!);

    for (const file of fs.readdirSync(path.join(dir, 'keys'))) {
      expect({ file, mode: (fs.statSync(path.join(dir, 'keys', file)).mode & 0o777).toString(8) }).toEqual({ file, mode: '600' });
    }
    expect(fs.statSync(path.join(dir, 'keys')).mode & 0o077).toBe(0);
  });

  it('a portal and a person registered by the CLI can sign in on a server using the same store', async () => {
    const srv = await startTestServer({ env: { DINHDANH_STORE: env.DINHDANH_STORE!, DINHDANH_KEYS_DIR: env.DINHDANH_KEYS_DIR! } });
    try {
      const rp = { ...portal, redirect_uri: PORTAL_REDIRECT };
      const config = await discover(srv.issuer, rp);
      const req = await authRequest(config, rp, { scope: 'openid profile email' });
      const done = await signIn(new Browser(srv.issuer), req, { pid: PID, password: PASSWORD });
      expect(done.status).toBe(303);
      const tokens = await redeem(config, req, done.location!);
      expect(tokens.claims()!.acr).toBe('urn:dinhdanh:loa:low');
      expect(tokens.claims()!.sub).not.toContain(PID);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
      expect(info.name).toBe('Trần Thị Bình');
      expect(info.email).toBe('binh@example.vn');
    } finally {
      await srv.close();
    }
  });
});

describe('bad input exits 2 with a message naming what to fix, and {"error"} on stdout with --json', () => {
  const account = (over: Record<string, string>, flags: string[] = ['--password-stdin']) => {
    const opts = { '--pid': '079301000456', '--name': 'Lê Thị Cúc', '--birthdate': '2001-05-20', '--gender': 'female', ...over };
    return [...['accounts', 'add'], ...Object.entries(opts).flat(), ...flags, '--json'];
  };

  const cases: Array<{ name: string; args: string[]; stdin?: string; mentions: RegExp }> = [
    { name: 'a pid with an unknown province code', args: account({ '--pid': '003301000456' }), stdin: PASSWORD, mentions: /--pid.*province/i },
    { name: 'a pid whose century/gender digit disagrees', args: account({ '--pid': '079201000456' }), stdin: PASSWORD, mentions: /--pid.*digit 4/i },
    { name: 'a pid of 11 digits', args: account({ '--pid': '07930100045' }), stdin: PASSWORD, mentions: /--pid.*12 digits/i },
    { name: 'a gender word other than male/female', args: account({ '--gender': 'nữ' }), stdin: PASSWORD, mentions: /--gender.*male or female/i },
    { name: 'an impossible birthdate', args: account({ '--birthdate': '2001-02-30' }), stdin: PASSWORD, mentions: /--birthdate/ },
    { name: 'a weak password (password1234)', args: account({}), stdin: 'password1234\n', mentions: /password.*(common|guess)/i },
    { name: 'no --password-stdin', args: account({}, []), stdin: PASSWORD, mentions: /--password-stdin/ },
    { name: 'a duplicate pid', args: account({ '--pid': PID, '--birthdate': '1990-07-01', '--gender': 'male' }), stdin: PASSWORD, mentions: /--pid.*already exists|already exists.*--pid/i },
    { name: 'a non-https redirect URI for a non-localhost host', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'http://portal.example.vn/cb', '--json'], mentions: /--redirect-uri.*https/ },
    { name: 'a redirect URI with a fragment', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb#x', '--json'], mentions: /--redirect-uri.*fragment/ },
    { name: '--grant-type implicit', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--grant-type', 'implicit', '--json'], mentions: /--grant-type implicit.*not supported/ },
    { name: '--national-id without --legal-basis', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--national-id', '--json'], mentions: /--legal-basis/ },
    { name: 'an unknown command', args: ['portal', 'ad', '--json'], mentions: /unknown command/ },
    { name: '--auth-method none', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--auth-method', 'none', '--json'], mentions: /--auth-method none.*not supported/ },
    { name: 'private_key_jwt without keys', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--auth-method', 'private_key_jwt', '--json'], mentions: /--jwks-uri.*--jwks-file/ },
    { name: '--fapi with a client secret', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--fapi', '--auth-method', 'client_secret_basic', '--json'], mentions: /--fapi requires --auth-method private_key_jwt/ },
    { name: '--offline-access without refresh tokens', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--offline-access', '--json'], mentions: /--offline-access needs --grant-type refresh_token/ },
    { name: 'a back-channel logout URI over http to a public host', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--backchannel-logout-uri', 'http://portal.example.vn/logout', '--json'], mentions: /--backchannel-logout-uri.*https/ },
    { name: 'a missing --jwks-file', args: ['portals', 'add', '--name', 'Cổng X', '--redirect-uri', 'https://portal.example.vn/cb', '--jwks-file', '/nonexistent/jwks.json', '--json'], mentions: /--jwks-file.*cannot be read/ },
    { name: 'a resource URI with a query', args: ['resources', 'add', '--name', 'API X', '--uri', 'https://api.example.vn/?v=1', '--scope', 'x:doc', '--json'], mentions: /--uri must not contain a query/ },
    { name: 'a resource scope that is an OIDC scope', args: ['resources', 'add', '--name', 'API X', '--uri', 'https://api.example.vn/', '--scope', 'profile', '--json'], mentions: /--scope profile is an OpenID Connect scope/ },
    { name: 'a resource without scopes', args: ['resources', 'add', '--name', 'API X', '--uri', 'https://api.example.vn/', '--json'], mentions: /--scope/ },
    { name: 'a resource token format of its own', args: ['resources', 'add', '--name', 'API X', '--uri', 'https://api.example.vn/', '--scope', 'x:doc', '--token-format', 'saml', '--json'], mentions: /--token-format saml/ },
  ];

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const run = await cli(c.args, c.stdin);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(c.mentions);
    const out = json(run);
    expect(Object.keys(out)).toEqual(['error']);
    expect(out.error).toMatch(c.mentions);
    if (c.stdin) {
      expect(run.stdout).not.toContain(c.stdin.trim());
      expect(run.stderr).not.toContain(c.stdin.trim());
    }
  });

  it('none of the refused inputs was stored', async () => {
    const accounts = json(await cli(['accounts', 'list', '--json'])) as { total: number };
    expect(accounts.total).toBe(1);
    const portals = json(await cli(['portals', 'list', '--json'])) as { portals: unknown[] };
    expect(portals.portals).toHaveLength(1);
  });
});

describe('portals show / disable / enable', () => {
  it('show prints the portal without its secret; disable turns it off, enable on again; bad or unknown ids exit 2', async () => {
    const shown = await cli(['portals', 'show', portal.client_id, '--json']);
    expect(shown.code).toBe(0);
    const out = json(shown) as { portal: { client_id: string; disabled: boolean } };
    expect(out.portal).toMatchObject({ client_id: portal.client_id, disabled: false });
    expect(shown.stdout).not.toContain(portal.client_secret);

    const disabled = await cli(['portals', 'disable', portal.client_id, '--json']);
    expect(disabled.code).toBe(0);
    expect(json(disabled)).toEqual({ client_id: portal.client_id, disabled: true });
    expect((json(await cli(['portals', 'show', portal.client_id, '--json'])) as { portal: { disabled: boolean } }).portal.disabled).toBe(true);

    for (const id of ['portal-does-not-exist', "x' OR 1=1 --"]) {
      const bad = await cli(['portals', 'disable', id, '--json']);
      expect(bad.code).toBe(2);
      expect(json(bad)).toHaveProperty('error');
    }

    const enabled = await cli(['portals', 'enable', portal.client_id, '--json']);
    expect(enabled.code).toBe(0);
    expect(json(enabled)).toEqual({ client_id: portal.client_id, disabled: false });
    expect((json(await cli(['portals', 'show', portal.client_id, '--json'])) as { portal: { disabled: boolean } }).portal.disabled).toBe(false);
    expect((await cli(['portals', 'enable', 'portal-does-not-exist', '--json'])).code).toBe(2);
  });
});

describe('portals with their own keys, back-channel logout, FAPI; resource servers', () => {
  it('registers a private_key_jwt portal from a JWKS file (no secret) and shows what it is', async () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = path.join(dir, 'portal-jwks.json');
    fs.writeFileSync(file, JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig' }] }));
    const run = await cli([
      'portals', 'add', '--name', 'Cổng FAPI', '--redirect-uri', 'https://fapi.example.vn/cb', '--jwks-file', file, '--fapi',
      '--backchannel-logout-uri', 'https://fapi.example.vn/logout', '--grant-type', 'refresh_token', '--offline-access', '--json',
    ]);
    expect(run.code).toBe(0);
    const out = json(run) as { client_id: string; client_secret: null };
    expect(out.client_secret).toBeNull();
    const shown = json(await cli(['portals', 'show', out.client_id, '--json'])) as { portal: Record<string, unknown> };
    expect(shown.portal).toMatchObject({
      auth_method: 'private_key_jwt', fapi: true, offline_access: true, id_token_alg: 'ES256',
      backchannel_logout_uri: 'https://fapi.example.vn/logout', grant_types: ['authorization_code', 'refresh_token'],
    });

    // A JWKS file carrying the private key is refused, and says the key is now exposed.
    const leaked = path.join(dir, 'leaked-jwks.json');
    fs.writeFileSync(leaked, JSON.stringify({ keys: [privateKey.export({ format: 'jwk' })] }));
    const refused = await cli(['portals', 'add', '--name', 'Cổng Y', '--redirect-uri', 'https://y.example.vn/cb', '--jwks-file', leaked, '--json']);
    expect(refused.code).toBe(2);
    expect(String(json(refused).error)).toMatch(/private key material.*exposed/);
  });

  it('registers a resource server once, with its introspection credentials; a second time exits 2', async () => {
    const args = ['resources', 'add', '--name', 'Hồ sơ', '--uri', 'https://api.hoso.example.vn/', '--scope', 'hoso:doc', '--json'];
    const run = await cli(args);
    expect(run.code).toBe(0);
    const out = json(run) as { resource: string; client_id: string; client_secret: string };
    expect(out.resource).toBe('https://api.hoso.example.vn/');
    expect(out.client_secret.length).toBeGreaterThanOrEqual(43);
    const listed = json(await cli(['resources', 'list', '--json'])) as { resources: Array<Record<string, unknown>> };
    expect(listed.resources).toEqual([expect.objectContaining({ client_id: out.client_id, resource: out.resource, scopes: ['hoso:doc'], token_format: 'jwt' })]);
    expect(JSON.stringify(listed)).not.toContain(out.client_secret);
    const again = await cli(args);
    expect(again.code).toBe(2);
    expect(String(json(again).error)).toMatch(/already registered/);
  });
});

/** accounts add for a second person (079301000789: Ho Chi Minh City, female, born 2001). */
const account2 = () => ['accounts', 'add', '--pid', '079301000789', '--name', 'Lê Thị Cúc', '--birthdate', '2001-05-20', '--gender', 'female', '--password-stdin', '--json'];

/** A last day next year (delegations end within ten years). */
const UNTIL = `${new Date().getUTCFullYear() + 1}-12-31`;

describe('orgs', () => {
  it('add, delegate, show (masked), revoke, suspend — each printing one JSON object', async () => {
    const add = await cli(['orgs', 'add', '--code', '0101234567', '--name', 'Công ty TNHH Sông Hồng', '--representative', PID, '--json']);
    expect(add.code).toBe(0);
    expect(json(add)).toEqual({ code: '0101234567', name: 'Công ty TNHH Sông Hồng', status: 'active', parent_code: null });
    const branch = await cli(['orgs', 'add', '--code', '0101234567-001', '--name', 'Chi nhánh Hải Phòng', '--json']);
    expect(json(branch)).toMatchObject({ code: '0101234567-001', parent_code: '0101234567' });

    const other = await cli(account2(), PASSWORD);
    expect(other.code).toBe(0);
    const delegated = await cli(['orgs', 'delegate', '--code', '0101234567', '--pid', '079301000789', '--role', 'ke-toan', '--until', UNTIL, '--json']);
    expect(delegated.code).toBe(0);
    // The last day is held through its end in Vietnam: 17:00 UTC.
    expect(json(delegated)).toMatchObject({ code: '0101234567', pid: '*********789', role: 'ke-toan', until: `${UNTIL}T17:00:00.000Z`, portals: null });

    const shown = json(await cli(['orgs', 'show', '0101234567', '--json'])) as { enterprise: Record<string, unknown> };
    expect(shown.enterprise).toMatchObject({
      code: '0101234567', status: 'active', branches: [{ code: '0101234567-001', name: 'Chi nhánh Hải Phòng', status: 'active' }],
      delegations: [expect.objectContaining({ role: 'ke-toan', pid: '*********789', revoked_at: null })],
    });
    expect(JSON.stringify(shown)).not.toContain(PID);
    expect(JSON.stringify(shown)).not.toContain('079301000789');

    expect(json(await cli(['orgs', 'list', '--json']))).toEqual({ enterprises: [
      { code: '0101234567', name: 'Công ty TNHH Sông Hồng', status: 'active', parent_code: null },
      { code: '0101234567-001', name: 'Chi nhánh Hải Phòng', status: 'active', parent_code: '0101234567' },
    ] });
    const revoked = await cli(['orgs', 'revoke', '--code', '0101234567', '--pid', '079301000789', '--json']);
    expect(json(revoked)).toEqual({ code: '0101234567', pid: '*********789', revoked: true });
    const again = await cli(['orgs', 'revoke', '--code', '0101234567', '--pid', '079301000789', '--json']);
    expect(again.code).toBe(2);
    const suspended = await cli(['orgs', 'suspend', '0101234567', '--reason', 'unpaid tax', '--json']);
    expect(json(suspended)).toEqual({ code: '0101234567', status: 'suspended' });
  });

  it.each([
    ['a 9-digit code', ['orgs', 'add', '--code', '010123456', '--name', 'X Y', '--representative', '001090000001'], /--code must be an enterprise code/],
    ['a branch with 2 digits', ['orgs', 'add', '--code', '0101234567-01', '--name', 'X Y'], /--code must be an enterprise code/],
    ['an injection-shaped code', ['orgs', 'show', "0101234567' OR 1=1 --"], /<code> must be an enterprise code/],
    ['a branch of an unknown enterprise', ['orgs', 'add', '--code', '0999999999-001', '--name', 'X Y'], /not registered/],
    ['an enterprise without a representative', ['orgs', 'add', '--code', '0202020202', '--name', 'X Y'], /--representative/],
    ['an unknown representative', ['orgs', 'add', '--code', '0202020202', '--name', 'X Y', '--representative', '001090999999'], /no account/],
    ['a role with capitals', ['orgs', 'delegate', '--code', '0101234567', '--pid', '079301000789', '--role', 'KeToan'], /--role must be a short code/],
    ['a date in the past', ['orgs', 'delegate', '--code', '0101234567', '--pid', '079301000789', '--role', 'ke-toan', '--until', '2001-01-01'], /--until must be today or a later date/],
    ['an impossible date', ['orgs', 'delegate', '--code', '0101234567', '--pid', '079301000789', '--role', 'ke-toan', '--until', '2099-02-30'], /--until must be a date/],
    ['a duplicate code', ['orgs', 'add', '--code', '0101234567', '--name', 'X Y', '--representative', PID], /already registered/],
  ])('%s exits 2 saying what to fix', async (_label, args, message) => {
    const run = await cli([...args, '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(message);
  });
});

describe('accounts unlock', () => {
  it('unlocks a locked account and clears its failure count; an unknown number exits 2', async () => {
    const store = await createStore(env.DINHDANH_STORE!);
    try {
      const person = await store.persons.findByPid(PID);
      expect(person).toBeDefined();
      await store.persons.setStatus(person!.id, 'locked');
      await store.counters.increment(`login-fail:${person!.id}`, 60_000, Date.now());
      const run = await cli(['accounts', 'unlock', PID, '--json']);
      expect(run.code).toBe(0);
      expect(json(run)).toEqual({ id: person!.id, status: 'active' });
      expect((await store.persons.findById(person!.id))!.status).toBe('active');
      expect(await store.counters.get(`login-fail:${person!.id}`, Date.now())).toBeUndefined();
    } finally {
      await store.close();
    }
    const unknown = await cli(['accounts', 'unlock', '079303999999', '--json']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no account/);
    expect(json(unknown)).toHaveProperty('error');
  });
});

describe('operators: keys rotate / retire, accounts lock / set-level / reset-mfa, portals approve, audit verify / export', () => {
  it('rotates keys: the next pair is listed with its activation date; the active key cannot be retired', async () => {
    const before = (json(await cli(['keys', 'list', '--json'])) as { keys: Array<{ kid: string; state: string; alg: string }> }).keys;
    expect(before.filter((k) => k.state === 'active').map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    const rotated = await cli(['keys', 'rotate', '--activate-after', '2h', '--operator', 'ops.an', '--reason', 'scheduled rotation', '--json']);
    expect(rotated.code).toBe(0);
    const added = (json(rotated) as { keys: Array<{ kid: string; state: string; activate_at: string }> }).keys;
    expect(added.map((k) => k.state)).toEqual(['next', 'next']);
    expect(Date.parse(added[0]!.activate_at) - Date.now()).toBeGreaterThan(119 * 60_000);
    const active = before.find((k) => k.state === 'active')!;
    const refused = await cli(['keys', 'retire', active.kid, '--json']);
    expect(refused.code).toBe(2);
    expect(String(json(refused).error)).toMatch(/active .* key/);
    const retired = await cli(['keys', 'retire', added[0]!.kid, '--operator', 'ops.an', '--json']);
    expect(json(retired)).toMatchObject({ kid: added[0]!.kid, retired: true });
    const bad = await cli(['keys', 'rotate', '--activate-after', 'soon', '--json']);
    expect(bad.code).toBe(2);
    expect(String(json(bad).error)).toMatch(/--activate-after must be a duration/);
  });

  it('retires a key whose id begins with "-" (a base64url thumbprint does, one time in 64)', async () => {
    const store = await createStore(String(env.DINHDANH_STORE));
    const kid = `-dash${crypto.randomBytes(8).toString('base64url')}`;
    try {
      const [template] = await store.signingKeys.list();
      // Two keys of one algorithm, long activated: the older is retiring whatever else the store holds.
      for (const [id, at] of [[kid, 1000], [`${kid}-newer`, 2000]] as const) {
        await store.signingKeys.add({ ...template!, kid: id, publicJwk: { ...template!.publicJwk, kid: id }, activateAt: at, createdAt: at, retiredAt: null });
      }
    } finally {
      await store.close();
    }
    const retired = await cli(['keys', 'retire', kid, '--operator', 'ops.an', '--json']);
    expect({ code: retired.code, out: json(retired) }).toMatchObject({ code: 0, out: { kid, retired: true } });
    const misspelt = await cli(['keys', 'retire', '--jsn']);
    expect(misspelt.code).toBe(2);
  });

  it('locks, shows, raises the level with evidence and resets second factors; refuses without a reason or evidence', async () => {
    const noReason = await cli(['accounts', 'lock', PID, '--json']);
    expect(noReason.code).toBe(2);
    expect(json(await cli(['accounts', 'lock', PID, '--reason', 'suspected account takeover', '--operator', 'ops.an', '--json']))).toMatchObject({ status: 'locked' });
    expect(json(await cli(['accounts', 'unlock', PID, '--reason', 'owner verified in person', '--operator', 'ops.an', '--json']))).toMatchObject({ status: 'active' });
    const missing = await cli(['accounts', 'set-level', PID, '2', '--reason', 'verified in person', '--json']);
    expect(missing.code).toBe(2);
    expect(String(json(missing).error)).toMatch(/--document-type/);
    const raised = await cli(['accounts', 'set-level', PID, '2', '--reason', 'verified in person', '--document-type', 'cccd-chip',
      '--document-number', '001090000123', '--place', 'UBND phường Bến Nghé', '--operator', 'ops.binh', '--json']);
    expect(json(raised)).toMatchObject({ level: 2 });
    const reset = await cli(['accounts', 'reset-mfa', PID, '--reason', 'lost authenticator', '--evidence', 'CCCD checked at the counter', '--operator', 'ops.binh', '--json']);
    expect(json(reset)).toMatchObject({ factors_removed: 0 });
    const shown = json(await cli(['accounts', 'show', PID, '--json'])) as { account: { pid: string; level: number; actions: Array<{ action: string; operator: string }> } };
    expect(shown.account.pid).toBe('*********123');
    expect(shown.account.level).toBe(2);
    // The command line acts as the host's operator `cli:<name>` (admin/operators.service.ts cliActor).
    expect(shown.account.actions.map((a) => `${a.action}:${a.operator}`).slice(-4)).toEqual(['lock:cli:ops.an', 'unlock:cli:ops.an', 'set-level:cli:ops.binh', 'reset-mfa:cli:ops.binh']);
    expect(JSON.stringify(shown)).not.toContain('001090000123');
  });

  it('approves a portal for national_id with the legal basis; offline_access needs refresh tokens', async () => {
    const reg = json(await cli(['portals', 'add', '--name', 'Cổng BHXH', '--redirect-uri', 'https://bhxh.example.vn/cb', '--json'])) as { client_id: string };
    const approved = await cli(['portals', 'approve', reg.client_id, '--national-id', '--legal-basis', 'Luật Căn cước 2023, Điều 10', '--operator', 'ops.an', '--json']);
    expect(json(approved)).toMatchObject({ approved: 'national_id', national_id: true });
    const shown = json(await cli(['portals', 'show', reg.client_id, '--json'])) as { portal: Record<string, unknown> };
    expect(shown.portal).toMatchObject({ national_id: true, national_id_basis: 'Luật Căn cước 2023, Điều 10' });
    const offline = await cli(['portals', 'approve', reg.client_id, '--offline-access', '--legal-basis', 'Quyết định 06/QĐ-TTg', '--json']);
    expect(offline.code).toBe(2);
    expect(String(json(offline).error)).toMatch(/refresh_token/);
  });

  it('audit verify passes on the log the commands above wrote, and export prints JSON lines', async () => {
    const verified = await cli(['audit', 'verify', '--json']);
    expect(verified.code).toBe(0);
    const out = json(verified) as { ok: boolean; entries: number; head: { seq: number; hash: string } };
    expect(out.ok).toBe(true);
    expect(out.entries).toBeGreaterThan(5);
    const exported = await cli(['audit', 'export', '--since', '2020-01-01']);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; event: string; hash: string; details: Record<string, unknown> });
    expect(lines).toHaveLength(out.entries);
    expect(lines.map((l) => l.seq)).toEqual(lines.map((_l, i) => i + 1));
    expect(lines.map((l) => l.event)).toEqual(expect.arrayContaining(['KEYS_ROTATED', 'ACCOUNT_LOCKED', 'ACCOUNT_LEVEL_CHANGED', 'PORTAL_APPROVED']));
    expect(lines.find((l) => l.event === 'ACCOUNT_LOCKED')?.details).toMatchObject({ operator: 'cli:ops.an', via: 'cli', reason: 'suspected account takeover', bootstrap: true });
    // Registering a person records who did it too (the local user name outside production).
    const created = lines.find((l) => l.event === 'ACCOUNT_CREATED' && l.details.pid === '*********123');
    expect(created?.details.operator).toEqual(expect.stringMatching(/^[A-Za-z0-9._@-]{2,64}$/));
    expect(exported.stdout).not.toContain('001090000123');

    // Editing any entry makes verify fail, name it, and exit 1.
    const db = new Database(path.join(dir, 'data', 'x.db'));
    try {
      db.prepare("UPDATE audit_log SET details = json_set(details, '$.reason', 'nothing to see') WHERE event = 'ACCOUNT_LOCKED'").run();
      const seq = (db.prepare("SELECT seq FROM audit_log WHERE event = 'ACCOUNT_LOCKED'").get() as { seq: number }).seq;
      const broken = await cli(['audit', 'verify', '--json']);
      expect(broken.code).toBe(1);
      expect(json(broken)).toMatchObject({ ok: false, broken_at: seq });
      expect(broken.stderr).toContain(`broken at entry ${seq}`);
    } finally {
      db.close();
    }
  });

  it('store copy moves the whole populated store into an empty one, verified per collection; a populated target is refused', async () => {
    const target = `sqlite:${path.join(dir, 'data', 'copy.db')}`;
    const run = await cli(['store', 'copy', '--from', env.DINHDANH_STORE!, '--to', target, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = json(run) as { verified: boolean; collections: Array<{ collection: string; count: number; verified: boolean }> };
    expect(out.verified).toBe(true);
    const counts = Object.fromEntries(out.collections.map((c) => [c.collection, c.count]));
    expect(counts.persons).toBeGreaterThanOrEqual(2);
    expect(counts.portals).toBeGreaterThanOrEqual(2);
    expect(counts.auditLog).toBeGreaterThan(5);
    expect(counts.signingKeys).toBeGreaterThanOrEqual(2);
    expect(counts.enterprises).toBeGreaterThanOrEqual(2);
    // The copy is a working store: its audit chain verifies and its people are there.
    const verified = await cli(['audit', 'verify', '--json'], undefined);
    expect(verified.code).toBe(1); // the source's chain was edited on purpose above …
    const saved = env;
    env = { ...env, DINHDANH_STORE: target };
    try {
      const copyVerify = await cli(['audit', 'verify', '--json']);
      expect(copyVerify.code).toBe(1); // … and the copy carries exactly that history, edit included
      expect((json(await cli(['accounts', 'show', PID, '--json'])) as { account: { level: number } }).account.level).toBe(2);
    } finally {
      env = saved;
    }
    const again = await cli(['store', 'copy', '--from', env.DINHDANH_STORE!, '--to', target, '--json']);
    expect(again.code).toBe(2);
    expect(String(json(again).error)).toMatch(/already holds persons/);
    const bad = await cli(['store', 'copy', '--from', 'postgres://u:hunter2@db/x', '--to', target, '--json']);
    expect(bad.code).toBe(2);
    expect(bad.stdout + bad.stderr).not.toContain('hunter2');
  });

  const itMongo = process.env.MONGODB_URI ? it : it.skip;
  itMongo(`store copy moves the populated SQLite store into MongoDB, verified${process.env.MONGODB_URI ? '' : ' (skipped: set MONGODB_URI)'}`, async () => {
    const url = new URL(process.env.MONGODB_URI!);
    url.pathname = `/dd_copy_${Date.now().toString(36)}`;
    const run = await cli(['store', 'copy', '--from', env.DINHDANH_STORE!, '--to', url.href, '--json']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = json(run) as { from: string; to: string; verified: boolean; collections: Array<{ collection: string; count: number }> };
    expect(out).toMatchObject({ from: 'sqlite', to: 'mongodb', verified: true });
    expect(out.collections.find((c) => c.collection === 'persons')!.count).toBeGreaterThanOrEqual(2);
    const saved = env;
    env = { ...env, DINHDANH_STORE: url.href };
    try {
      expect((json(await cli(['accounts', 'show', PID, '--json'])) as { account: { level: number } }).account.level).toBe(2);
    } finally {
      env = saved;
    }
  });

  it('in production, an action without an operator is refused', async () => {
    const saved = env;
    env = { ...env, NODE_ENV: 'production', DINHDANH_REGISTRY: 'https://registry.example.gov.vn/verify', DINHDANH_REGISTRY_TOKEN: 'registry-test-token', DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' };
    try {
      const run = await cli(['accounts', 'lock', PID, '--reason', 'suspected account takeover', '--json']);
      expect(run.code).toBe(2);
      expect(String(json(run).error)).toMatch(/--operator <name> or DINHDANH_OPERATOR/);
    } finally {
      env = saved;
    }
  });
});

describe('keys generate (last: it replaces the development keys the other tests used)', () => {
  it('replaces development keys without carrying them over, keeps the pairwise salt, and refuses to overwrite production keys without --force', async () => {
    const readJson = (f: string) => JSON.parse(fs.readFileSync(path.join(env.DINHDANH_KEYS_DIR!, f), 'utf8')) as {
      origin: string; keys?: Array<{ kid: string }>; cookieKeys?: string[]; pairwiseSalt?: string;
    };
    const devSigning = readJson('signing-keys.json');
    const devSecrets = readJson('secrets.json');
    expect(devSigning.origin).toBe('development');

    const first = await cli(['keys', 'generate', '--json']);
    expect(first.code).toBe(0);
    const prodSigning = readJson('signing-keys.json');
    const prodSecrets = readJson('secrets.json');
    expect(prodSigning.origin).toBe('operator');
    const devKids = devSigning.keys!.map((k) => k.kid);
    expect(prodSigning.keys!.some((k) => devKids.includes(k.kid))).toBe(false);
    expect(prodSecrets.cookieKeys!.some((k) => devSecrets.cookieKeys!.includes(k))).toBe(false);
    expect(prodSecrets.pairwiseSalt).toBe(devSecrets.pairwiseSalt);

    const again = await cli(['keys', 'generate', '--json']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--force/);
    expect(readJson('signing-keys.json')).toEqual(prodSigning);

    const forced = await cli(['keys', 'generate', '--force', '--json']);
    expect(forced.code).toBe(0);
    const rotated = readJson('signing-keys.json');
    // The replaced production keys stay published after the new ones.
    expect(rotated.keys!.slice(2).map((k) => k.kid)).toEqual(prodSigning.keys!.map((k) => k.kid));
  });
});
