/**
 * Operators (issue 6): signing keys rotated on a running server without breaking a token in flight,
 * accounts locked (sessions ended everywhere, portals told), identity levels raised with evidence,
 * second factors reset, and the hash-chained audit log detecting any edit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import path from 'node:path';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { TEST_STORE_KIND, startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';
import { verifyAuditLog } from '../../src/audit/index.js';

let srv: TestServer;
let clock = Date.now();
let receiver: LogoutReceiver;
type Portal = Awaited<ReturnType<TestServer['addPortal']>>;
let portal: Portal;

beforeAll(async () => {
  receiver = await new LogoutReceiver().start();
  srv = await startTestServer({ now: () => clock });
  portal = await srv.addPortal({ grantTypes: ['authorization_code', 'refresh_token'], backchannelLogoutUri: receiver.url('/portal') });
});
afterAll(async () => {
  await srv.close();
  await receiver.close();
});

async function signInAt(p: Portal, person: { pid: string; password: string }, browser = new Browser(srv.issuer)) {
  const config = await discover(srv.issuer, p);
  const req = await authRequest(config, p);
  const res = await signIn(browser, req, person);
  expect(res.status).toBe(303);
  const tokens = await redeem(config, req, res.location!);
  return { browser, config, tokens };
}

async function publishedKids(): Promise<string[]> {
  const res = await fetch(`${srv.issuer}/jwks`);
  expect(res.headers.get('cache-control')).toBe('public, max-age=600');
  return ((await res.json()) as { keys: Array<{ kid: string; d?: string }> }).keys.map((k) => {
    expect(k.d).toBeUndefined();
    return k.kid;
  });
}

async function verifyWithPublished(token: string) {
  const jwks = jose.createLocalJWKSet((await (await fetch(`${srv.issuer}/jwks`)).json()) as jose.JSONWebKeySet);
  return jose.jwtVerify(token, jwks, { issuer: srv.issuer });
}

describe('signing key rotation on a running server (SECURITY.md #3)', () => {
  it('publishes the next key before it signs, signs with it after activation, keeps verifying older tokens, and refuses to retire the active key', async () => {
    const person = await srv.addPerson();
    const before = await signInAt(portal, person);
    const k1 = jose.decodeProtectedHeader(before.tokens.id_token!).kid!;
    const [rs, es] = await srv.system.signingKeys.rotate(60 * 60_000, 'development');
    expect(await srv.system.reloadKeys()).toBe(true);

    // Published at once, not signing yet.
    const published = await publishedKids();
    expect(published).toEqual(expect.arrayContaining([k1, rs!.kid, es!.kid]));
    const during = await signInAt(portal, await srv.addPerson());
    expect(jose.decodeProtectedHeader(during.tokens.id_token!).kid).toBe(k1);
    expect((await srv.system.signingKeys.describe()).find((k) => k.kid === rs!.kid)?.state).toBe('next');

    // An hour later (every instance reloads within a minute; here, now) the new key signs.
    clock += 61 * 60_000;
    expect(await srv.system.reloadKeys()).toBe(true);
    const after = await signInAt(portal, await srv.addPerson());
    expect(jose.decodeProtectedHeader(after.tokens.id_token!).kid).toBe(rs!.kid);
    // Tokens from before, during and after all verify against the published set.
    for (const t of [before, during, after]) await expect(verifyWithPublished(t.tokens.id_token!)).resolves.toBeDefined();
    // The refresh of a grant from before the rotation yields a token signed by the new key.
    const refreshed = await oidc.refreshTokenGrant(during.config, during.tokens.refresh_token!);
    expect(jose.decodeProtectedHeader(refreshed.id_token!).kid).toBe(rs!.kid);

    const states = await srv.system.signingKeys.describe();
    expect(states.find((k) => k.kid === k1)).toMatchObject({ state: 'retiring', retire_after: new Date(rs!.activateAt + 15 * 60_000).toISOString() });
    await expect(srv.system.signingKeys.retire(rs!.kid)).rejects.toThrow(/active RS256 key/);
    await srv.system.signingKeys.retire(k1);
    expect(await srv.system.reloadKeys()).toBe(true);
    expect(await publishedKids()).not.toContain(k1);
    expect(await srv.system.reloadKeys()).toBe(false);
  });
});

describe('accounts', () => {
  it('lock: sessions end everywhere (the portal is told), tokens stop working, and sign-in is refused', async () => {
    const person = await srv.addPerson();
    const { browser, config, tokens } = await signInAt(portal, person);
    const sid = tokens.claims()!.sid as string;
    await srv.system.accountAdmin.lock(person.pid, { operator: 'ops.an', reason: 'reported stolen phone and password' });
    await srv.system.jobs.runDue();
    const logout = (await receiver.waitFor('/portal')).map((t) => jose.decodeJwt(t)).find((c) => c.sid === sid);
    expect(logout).toMatchObject({ sub: tokens.claims()!.sub, sid });
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const silent = await browser.get((await authRequest(config, portal, { prompt: 'none' })).url.href);
    expect(new URL(silent.location!).searchParams.get('error')).toBe('login_required');
    const again = await signIn(new Browser(srv.issuer), await authRequest(config, portal), person);
    expect(again.status).toBe(200);
    expect(again.text).toContain('name="password"');

    await srv.system.accountAdmin.unlock(person.pid, { operator: 'ops.an', reason: 'identity re-verified at the counter' });
    expect((await signIn(new Browser(srv.issuer), await authRequest(config, portal), person)).status).toBe(303);
  });

  it('set-level 2 needs the evidence, which is stored and audited with the number masked', async () => {
    const person = await srv.addPerson();
    const act = { operator: 'ops.binh', reason: 'verified in person with chip card' };
    await expect(srv.system.accountAdmin.setLevel(person.pid, '2', act, {})).rejects.toThrow(/--document-type is required/);
    await expect(srv.system.accountAdmin.setLevel(person.pid, '2', act, { documentType: 'cccd-chip', documentNumber: '12', place: 'Hà Nội' })).rejects.toThrow(/--document-number/);
    await expect(srv.system.accountAdmin.setLevel(person.pid, '2', { ...act, reason: '' }, { documentType: 'cccd-chip', documentNumber: '001090123456', place: 'Hà Nội' })).rejects.toThrow(/--reason/);
    expect((await srv.system.store.persons.findByPid(person.pid))!.level).toBe(1);

    await srv.system.accountAdmin.setLevel(person.pid, '2', act, { documentType: 'cccd-chip', documentNumber: '001090123456', place: 'Công an phường Hoàn Kiếm, Hà Nội' });
    expect((await srv.system.store.persons.findByPid(person.pid))!.level).toBe(2);
    const shown = await srv.system.accountAdmin.show(person.pid);
    expect(shown.actions).toEqual([expect.objectContaining({
      action: 'set-level', operator: 'ops.binh', reason: act.reason,
      evidence: expect.objectContaining({ from: 1, to: 2, documentType: 'cccd-chip', documentNumber: '********3456', place: 'Công an phường Hoàn Kiếm, Hà Nội' }),
    })]);
    await srv.system.audit.flush();
    const head = await srv.system.store.audit.head();
    expect(head).toMatchObject({ event: 'ACCOUNT_LEVEL_CHANGED', details: expect.objectContaining({ operator: 'ops.binh', document: '********3456', to: 2 }) });
    expect(JSON.stringify(head)).not.toContain('001090123456');
  });

  it('reset-mfa removes every factor and recovery code, with the re-verification recorded', async () => {
    const person = await srv.addPerson();
    const id = (await srv.system.store.persons.findByPid(person.pid))!.id;
    const enrolment = await srv.system.store.factors.create({
      id: crypto.randomUUID(), personId: id, type: 'totp', label: 'Điện thoại', confirmed: true, secretCiphertext: 'x', credentialId: null, publicKey: null, signCount: null, transports: null,
    });
    await srv.system.store.recoveryCodes.replace(id, ['h1', 'h2'], clock);
    await expect(srv.system.accountAdmin.resetMfa(person.pid, { operator: 'ops.an', reason: 'lost the phone' }, '')).rejects.toThrow(/--evidence/);
    const r = await srv.system.accountAdmin.resetMfa(person.pid, { operator: 'ops.an', reason: 'lost the phone' }, 'CCCD checked in person');
    expect(r.removed).toBe(1);
    await expect(srv.system.store.factors.find(enrolment.id)).resolves.toBeUndefined();
    await expect(srv.system.store.recoveryCodes.countUnused(id)).resolves.toBe(0);
  });
});

describe('the audit log', () => {
  // Tampering edits the SQLite file directly; on MongoDB the contract suite covers the chain.
  const itSqlite = TEST_STORE_KIND === 'sqlite' ? it : it.skip;
  itSqlite(`chains every security event; verify passes, then names the first entry edited, removed, or a rewrite against a recorded head${TEST_STORE_KIND === 'sqlite' ? '' : ' (skipped: edits the SQLite file directly; this run uses MongoDB)'}`, async () => {
    const person = await srv.addPerson();
    await signInAt(portal, person);
    await srv.system.audit.flush();
    const intact = await verifyAuditLog(srv.system.store.audit);
    expect(intact.ok).toBe(true);
    if (!intact.ok) return;
    expect(intact.entries).toBeGreaterThan(5);
    const head = intact.head!;
    const events = (await srv.system.store.audit.list(0, 1000)).map((e) => e.event);
    expect(events).toEqual(expect.arrayContaining(['ACCOUNT_CREATED', 'LOGIN_SUCCEEDED', 'CONSENT_GRANTED']));
    for (const e of await srv.system.store.audit.list(0, 1000)) expect(JSON.stringify(e.details)).not.toContain(person.pid);

    const db = new Database(path.join(srv.dir, 'data', 'dinhdanh.db'));
    try {
      const target = Math.floor(head.seq / 2);
      const original = db.prepare('SELECT details FROM audit_log WHERE seq = ?').get(target) as { details: string };
      db.prepare('UPDATE audit_log SET details = ? WHERE seq = ?').run(JSON.stringify({ ...JSON.parse(original.details), person: 'someone-else' }), target);
      await expect(verifyAuditLog(srv.system.store.audit)).resolves.toMatchObject({ ok: false, seq: target, problem: expect.stringMatching(/altered/) });
      db.prepare('UPDATE audit_log SET details = ? WHERE seq = ?').run(original.details, target);
      await expect(verifyAuditLog(srv.system.store.audit)).resolves.toMatchObject({ ok: true });

      // Removing an entry.
      const row = db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(3) as Record<string, unknown>;
      db.prepare('DELETE FROM audit_log WHERE seq = 3').run();
      await expect(verifyAuditLog(srv.system.store.audit)).resolves.toMatchObject({ ok: false, seq: 3, problem: expect.stringMatching(/missing/) });
      db.prepare('INSERT INTO audit_log (seq, at, event, event_id, details, prev_hash, hash) VALUES (@seq, @at, @event, @event_id, @details, @prev_hash, @hash)').run(row);

      // A rewrite of the whole table into a new, self-consistent chain: only a head recorded
      // earlier can tell. Here: a changed hash at the recorded head's position.
      await expect(verifyAuditLog(srv.system.store.audit, head)).resolves.toMatchObject({ ok: true, expectedHeadFound: true });
      await expect(verifyAuditLog(srv.system.store.audit, { seq: head.seq, hash: 'f'.repeat(64) })).resolves.toMatchObject({ ok: false, seq: head.seq, problem: expect.stringMatching(/rewritten/) });
      await expect(verifyAuditLog(srv.system.store.audit, { seq: head.seq + 100000, hash: head.hash })).resolves.toMatchObject({ ok: false, problem: expect.stringMatching(/truncated or rewritten/) });
    } finally {
      db.close();
    }
  });
});
