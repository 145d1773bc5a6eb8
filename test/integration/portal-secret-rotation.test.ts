/**
 * Rotating a portal's client secret (portals/portal-admin.ts rotateSecret; `dinhdanh portals
 * rotate-secret`): the new secret is shown once; the one it replaces keeps authenticating the
 * portal until the grace period ends — at the token endpoint (a code redeemed by openid-client as a
 * real relying party), introspection, revocation and pushed authorization requests, whether the
 * secret travels in the Authorization header (client_secret_basic, RFC 6749 §2.3.1) or the body
 * (client_secret_post, openid-client's default) — and is refused (invalid_client) after it, or at
 * once with a grace of 0. The server runs on an injected clock, so the grace period ends when the
 * test says, not after a wait. The CLI runs as a child process on the server's own store and keys
 * folder (SQLite or MongoDB, as the suite runs), so the server it talks to is the one tested.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli, type Run } from '../helpers/cli-process.js';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, redeem, signIn } from '../helpers/rp.js';
import type { PortalAdmin } from '../../src/portals/index.js';
import { validateResourceInput } from '../../src/portals/index.js';
import type { AuditEntry } from '../../src/store/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let srv: TestServer;
// The server's clock. The CLI stamps grace periods on the real clock, so its cases run first,
// before this one is moved forward.
let clock = Date.now();
const logs: string[] = [];
let person: { pid: string; password: string };

type Portal = Awaited<ReturnType<TestServer['addPortal']>>;
type Auth = 'basic' | 'post';

beforeAll(async () => {
  srv = await startTestServer({ now: () => clock, logSink: (line) => { logs.push(line); } });
  person = await srv.addPerson();
}, 60_000);
afterAll(async () => { await srv.close(); });

/** The server's portal admin (composeServices builds it; System does not name it). */
const portalAdmin = () => (srv.system as unknown as { portalAdmin: PortalAdmin }).portalAdmin;

const ACT = { operator: 'cli:ops.test', role: 'integration', reason: 'scheduled yearly rotation', via: 'cli' } as const;

/** openid-client configured for `clientId` with `secret`, sent as client_secret_basic or client_secret_post. */
function configWith(clientId: string, secret: string, auth: Auth): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(srv.issuer), clientId, undefined, auth === 'basic' ? oidc.ClientSecretBasic(secret) : oidc.ClientSecretPost(secret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** A sign-in at `portal` in a new browser, its code redeemed with `config`. */
async function codeRedeemed(portal: Portal, config: oidc.Configuration) {
  const req = await authRequest(config, portal);
  const res = await signIn(new Browser(srv.issuer), req, person);
  expect(res.status).toBe(303);
  return redeem(config, req, res.location!);
}

/** The OAuth error a refused call ended with (a body's `error`, or a 401's WWW-Authenticate challenge). */
async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    const e = err as { error?: string; cause?: Array<{ parameters?: { error?: string } }> };
    return e.error ?? e.cause?.[0]?.parameters?.error ?? String(err);
  }
  throw new Error('the call was not refused');
}

async function auditOf(event: string, portal: string): Promise<AuditEntry[]> {
  await srv.system.audit.flush();
  return (await srv.system.store.audit.list(0, 100_000)).filter((e) => e.event === event && e.details.portal === portal);
}

async function everyAuditEntry(): Promise<string> {
  await srv.system.audit.flush();
  return JSON.stringify(await srv.system.store.audit.list(0, 100_000));
}

const previousSecretLogs = (clientId: string) => logs.filter((l) => l.includes('previous client secret') && l.includes(clientId));

// ---- The command line -------------------------------------------------------------------------

function cli(args: string[]): Promise<Run> {
  return runCli({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'development',
    DINHDANH_STORE: srv.system.config.storeUrl,
    DINHDANH_KEYS_DIR: srv.system.config.keysDir,
  }, args);
}

/** stdout is exactly one JSON object (one line). */
function json(run: Run): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  const value = JSON.parse(lines[0]!) as unknown;
  expect(typeof value).toBe('object');
  expect(Array.isArray(value)).toBe(false);
  return value as Record<string, unknown>;
}

/** A refused run: exit 2, the message on stderr and as {"error"} on stdout. */
function refused(run: Run, message: RegExp): void {
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(message) });
  expect(json(run)).toEqual({ error: expect.stringMatching(message) });
}

const ciphertextOf = async (clientId: string) => (await srv.system.store.portals.find(clientId))!.secretCiphertext;

describe('dinhdanh portals rotate-secret', () => {
  it('--json prints the new secret once, as {client_id, client_secret, previous_valid_until}; the running server takes both secrets; the rotation is audited without it', async () => {
    const portal = await srv.addPortal();
    const before = Date.now();
    const run = await cli(['portals', 'rotate-secret', portal.client_id, '--reason', 'the portal\'s yearly rotation', '--operator', 'ops.rotate', '--json']);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const out = json(run);
    expect(Object.keys(out).sort()).toEqual(['client_id', 'client_secret', 'previous_valid_until']);
    expect(out.client_id).toBe(portal.client_id);
    const secret = out.client_secret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url, as at registration
    expect(secret).not.toBe(portal.client_secret);
    expect(run.stdout.split(secret)).toHaveLength(2);
    // The default grace: 24 hours from the rotation (on the CLI's clock).
    const until = Date.parse(out.previous_valid_until as string);
    expect(until).toBeGreaterThanOrEqual(before + DAY);
    expect(until).toBeLessThanOrEqual(Date.now() + DAY);

    // The server sees the new revision at its next request: both secrets work.
    for (const s of [secret, portal.client_secret]) {
      const tokens = await codeRedeemed(portal, await configWith(portal.client_id, s, 'basic'));
      expect(tokens.access_token).toBeTruthy();
    }

    const [entry, ...more] = await auditOf('PORTAL_SECRET_ROTATED', portal.client_id);
    expect(more).toHaveLength(0);
    expect(entry!.details).toEqual({
      portal: portal.client_id, grace_seconds: 86_400, operator: 'cli:ops.rotate', role: 'integration', reason: 'the portal\'s yearly rotation', via: 'cli',
    });
    const audit = await everyAuditEntry();
    expect(audit).not.toContain(secret);
    expect(audit).not.toContain(portal.client_secret);
    expect(logs.join('\n')).not.toContain(secret);
  }, 60_000);

  it('without --json: the secret once and until when the old one works; --grace 0: the old one no longer works', async () => {
    const portal = await srv.addPortal();
    const run = await cli(['portals', 'rotate-secret', portal.client_id, '--grace', '0', '--reason', 'the old secret was pasted in a ticket']);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const secret = /client_secret: ([A-Za-z0-9_-]{43})\n/.exec(run.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(run.stdout.split(secret!)).toHaveLength(2);
    expect(run.stdout).toContain('the previous secret no longer works');
    const config = await configWith(portal.client_id, portal.client_secret, 'basic');
    expect(await refusal(oidc.tokenIntrospection(config, 'anything'))).toBe('invalid_client');
    expect((await auditOf('PORTAL_SECRET_ROTATED', portal.client_id))[0]!.details).toMatchObject({ grace_seconds: 0, reason: 'the old secret was pasted in a ticket' });
  }, 60_000);

  it.each([
    ['31d', 'more than 30 days'],
    ['-1', 'negative'],
    ['1.5h', 'a fraction'],
    ['soon', 'not a duration'],
    ['', 'empty'],
    ['24 h', 'a space inside'],
  ])('--grace %j (%s) exits 2 with what to give, and changes nothing', async (grace) => {
    const portal = await srv.addPortal();
    const before = await ciphertextOf(portal.client_id);
    refused(await cli(['portals', 'rotate-secret', portal.client_id, '--grace', grace, '--json']), /--grace .*give a duration from 0 to 30d/);
    expect(await ciphertextOf(portal.client_id)).toBe(before);
  }, 30_000);

  it('refuses an unknown or malformed client id, and a portal with its own keys (private_key_jwt): exit 2, nothing changed', async () => {
    refused(await cli(['portals', 'rotate-secret', 'portal-does-not-exist', '--json']), /no portal with client_id portal-does-not-exist/);
    refused(await cli(['portals', 'rotate-secret', 'not a client id', '--json']), /is not a portal client id/);

    const { publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const keyed = await srv.addPortal({ authMethod: 'private_key_jwt', jwks: { keys: [{ ...(await jose.exportJWK(publicKey)), alg: 'ES256', use: 'sig' }] } });
    refused(await cli(['portals', 'rotate-secret', keyed.client_id, '--json']), /has no client secret to rotate.*private_key_jwt/);
    const stored = (await srv.system.store.portals.find(keyed.client_id))!;
    expect(stored.secretCiphertext).toBeNull();
    expect(stored.previousSecret).toBeNull();
    expect(await auditOf('PORTAL_SECRET_ROTATED', keyed.client_id)).toHaveLength(0);
  }, 60_000);

  it('a reason too short to say why is refused (exit 2)', async () => {
    const portal = await srv.addPortal();
    refused(await cli(['portals', 'rotate-secret', portal.client_id, '--reason', 'x', '--json']), /a reason is required/);
    expect((await srv.system.store.portals.find(portal.client_id))!.previousSecret).toBeNull();
  }, 30_000);
});

// ---- The grace period at the endpoints -------------------------------------------------------

describe('during the grace period both secrets authenticate; after it only the new one', () => {
  let portal: Portal;
  let fresh: string;
  let rotatedAt: number;

  beforeAll(async () => {
    portal = await srv.addPortal();
    rotatedAt = clock;
    const r = await portalAdmin().rotateSecret(portal.client_id, DAY, ACT);
    fresh = r.client_secret;
    expect(r.previous_valid_until).toBe(new Date(rotatedAt + DAY).toISOString());
    expect((await srv.system.store.portals.find(portal.client_id))!.previousSecret).toEqual({ ciphertext: expect.any(String), expiresAt: rotatedAt + DAY });
  });

  it.each<[string, 'old' | 'new', Auth]>([
    ['the old secret, client_secret_basic', 'old', 'basic'],
    ['the old secret, client_secret_post', 'old', 'post'],
    ['the new secret, client_secret_basic', 'new', 'basic'],
    ['the new secret, client_secret_post', 'new', 'post'],
  ])('%s: a code is redeemed, and its access token introspected and revoked', async (_label, which, auth) => {
    const config = await configWith(portal.client_id, which === 'old' ? portal.client_secret : fresh, auth);
    const tokens = await codeRedeemed(portal, config);
    expect(tokens.claims()?.aud).toBe(portal.client_id);
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, client_id: portal.client_id });
    await oidc.tokenRevocation(config, tokens.access_token);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
  });

  it('the old secret pushes an authorization request (RFC 9126)', async () => {
    const config = await configWith(portal.client_id, portal.client_secret, 'basic');
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: portal.redirect_uri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
  });

  it('a wrong secret is refused, and so is this portal\'s old secret presented as another portal', async () => {
    for (const auth of ['basic', 'post'] as const) {
      const wrong = await configWith(portal.client_id, `${fresh.slice(0, -1)}${fresh.endsWith('A') ? 'B' : 'A'}`, auth);
      expect(await refusal(codeRedeemed(portal, wrong))).toBe('invalid_client');
      expect(await refusal(oidc.tokenIntrospection(wrong, 'anything'))).toBe('invalid_client');
    }
    const other = await srv.addPortal();
    expect(await refusal(oidc.tokenIntrospection(await configWith(other.client_id, portal.client_secret, 'basic'), 'anything'))).toBe('invalid_client');
  });

  it('the use of the old secret is logged once an hour per portal, never with a secret', async () => {
    // Every old-secret call above fell within one hour of the server's clock.
    expect(previousSecretLogs(portal.client_id)).toHaveLength(1);
    const line = JSON.parse(previousSecretLogs(portal.client_id)[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 40, portal: portal.client_id, previous_valid_until: new Date(rotatedAt + DAY).toISOString() });
    clock = rotatedAt + 2 * HOUR;
    const config = await configWith(portal.client_id, portal.client_secret, 'post');
    await oidc.tokenIntrospection(config, 'anything');
    await oidc.tokenIntrospection(config, 'anything else');
    expect(previousSecretLogs(portal.client_id)).toHaveLength(2);
    const all = logs.join('\n');
    expect(all).not.toContain(portal.client_secret);
    expect(all).not.toContain(fresh);
  });

  it('one second before the end the old secret still works; at the end it is refused (invalid_client) at the token endpoint and introspection, the new one works', async () => {
    clock = rotatedAt + DAY - 1000;
    const old = await configWith(portal.client_id, portal.client_secret, 'basic');
    expect((await oidc.tokenIntrospection(old, 'anything')).active).toBe(false);
    clock = rotatedAt + DAY;
    for (const auth of ['basic', 'post'] as const) {
      const config = await configWith(portal.client_id, portal.client_secret, auth);
      expect(await refusal(codeRedeemed(portal, config))).toBe('invalid_client');
      expect(await refusal(oidc.tokenIntrospection(config, 'anything'))).toBe('invalid_client');
    }
    const tokens = await codeRedeemed(portal, await configWith(portal.client_id, fresh, 'post'));
    expect((await oidc.tokenIntrospection(await configWith(portal.client_id, fresh, 'basic'), tokens.access_token)).active).toBe(true);
  });
});

describe('grace 0, a second rotation, resource servers and refusals (the service both doors call)', () => {
  it('grace 0: the old secret is refused at once, the new one works; no previous secret is kept', async () => {
    const portal = await srv.addPortal();
    const r = await portalAdmin().rotateSecret(portal.client_id, 0, { ...ACT, reason: 'the secret leaked in a log' });
    expect(r.previous_valid_until).toBeNull();
    expect((await srv.system.store.portals.find(portal.client_id))!.previousSecret).toBeNull();
    const old = await configWith(portal.client_id, portal.client_secret, 'basic');
    expect(await refusal(codeRedeemed(portal, old))).toBe('invalid_client');
    expect(await refusal(oidc.tokenIntrospection(old, 'anything'))).toBe('invalid_client');
    const tokens = await codeRedeemed(portal, await configWith(portal.client_id, r.client_secret, 'basic'));
    expect(tokens.access_token).toBeTruthy();
  });

  it('a second rotation within the grace period: the first secret stops at once (one previous secret is kept), the second is the previous one', async () => {
    const portal = await srv.addPortal();
    const first = await portalAdmin().rotateSecret(portal.client_id, DAY, ACT);
    expect(first.earlier_previous_ended).toBe(false);
    const second = await portalAdmin().rotateSecret(portal.client_id, HOUR, ACT);
    expect(second.earlier_previous_ended).toBe(true);
    expect(await refusal(oidc.tokenIntrospection(await configWith(portal.client_id, portal.client_secret, 'basic'), 'x'))).toBe('invalid_client');
    expect((await oidc.tokenIntrospection(await configWith(portal.client_id, first.client_secret, 'basic'), 'x')).active).toBe(false);
    expect((await oidc.tokenIntrospection(await configWith(portal.client_id, second.client_secret, 'basic'), 'x')).active).toBe(false);
    expect((await auditOf('PORTAL_SECRET_ROTATED', portal.client_id)).map((e) => e.details.earlier_previous_ended)).toEqual([undefined, true]);
  });

  it('a resource server\'s introspection secret rotates the same way', async () => {
    const reg = await srv.system.portals.registerResource(validateResourceInput({
      name: 'Hồ sơ xoay vòng', uri: `https://api-${Date.now()}.example.vn/hoso`, scopes: ['hoso:doc'],
    }, { production: false }));
    const r = await portalAdmin().rotateSecret(reg.client_id, HOUR, ACT);
    for (const s of [reg.client_secret!, r.client_secret]) {
      expect((await oidc.tokenIntrospection(await configWith(reg.client_id, s, 'basic'), 'anything')).active).toBe(false);
    }
    clock += HOUR;
    expect(await refusal(oidc.tokenIntrospection(await configWith(reg.client_id, reg.client_secret!, 'basic'), 'anything'))).toBe('invalid_client');
  });

  it('refuses a grace out of range, a missing reason, an unknown client and the console\'s own client, changing nothing', async () => {
    const portal = await srv.addPortal();
    const before = await ciphertextOf(portal.client_id);
    for (const grace of [-1, 30 * DAY + 1, 1.5, Number.NaN]) {
      await expect(portalAdmin().rotateSecret(portal.client_id, grace, ACT)).rejects.toThrow(/grace period must be from 0 to 30 days/);
    }
    await expect(portalAdmin().rotateSecret(portal.client_id, 30 * DAY, { ...ACT, reason: '  ' })).rejects.toThrow(/a reason is required/);
    expect(await ciphertextOf(portal.client_id)).toBe(before);
    await expect(portalAdmin().rotateSecret('portal-nobody', HOUR, ACT)).rejects.toThrow(/no portal with client_id portal-nobody/);
    await expect(portalAdmin().rotateSecret('dinhdanh-console', HOUR, ACT)).rejects.toThrow(/dinhdanh's own client/);
    // The longest grace is allowed.
    const r = await portalAdmin().rotateSecret(portal.client_id, 30 * DAY, ACT);
    expect(r.previous_valid_until).toBe(new Date(clock + 30 * DAY).toISOString());
  });
});
