/**
 * /account/data, black-box: the person's data as a download, and "lock my account".
 *
 * - The export holds everything dinhdanh keeps about the person (Personal Data Protection Law 2025
 *   and Decree 356/2025/ND-CP: the data subject's rights of access and to receive their data) and
 *   nothing that authenticates them or belongs to someone else: no password hash, factor secret,
 *   passkey credential, recovery code, token or cookie (ASVS 5.0 V14, data protection: sensitive
 *   data only where it is needed), and no operator's name or note. Every field is walked.
 * - "Lock my account" ends everything at once — the portals are told by back-channel logout — and
 *   only recovery with the second factor lifts it (a stolen phone alone must not: NIST SP 800-63B
 *   §6.1.2.3); an operator's lock is never lifted by recovery.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, type Portal } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';
import { SoftAuthenticator, type CreationOptions } from '../helpers/soft-authenticator.js';
import { MINUTE, pageSteps, postPasskey, startWithPortal, totpCode } from '../helpers/pages.js';
import { enrolAppInAccount, heading, messagesTo, nextCode, auditOf, openAccountPage, portalVisits, selfServiceSteps, sleep } from './selfservice-support.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const PORTAL_NAME = 'Cổng Dịch vụ công tỉnh Bắc Ninh';

let now = Date.now();
let srv: TestServer;
let receiver: LogoutReceiver;
let portal: Portal, config: oidc.Configuration, origin: string;
beforeAll(async () => {
  receiver = await new LogoutReceiver().start();
  // `localhost`: WebAuthn needs a host name (the passkey of the export test).
  ({ srv, origin } = await startWithPortal({ now: () => now, host: 'localhost' }));
  portal = await srv.addPortal({ name: PORTAL_NAME, grantTypes: ['authorization_code', 'refresh_token'], backchannelLogoutUri: receiver.url('/province') });
  config = await discover(srv.issuer, portal);
});
afterAll(async () => {
  await srv.close();
  await receiver.close();
});
// Every test in a new hour: codes and notices have hourly allowances per destination.
beforeEach(() => { now += 61 * MINUTE; });

const { url, submit } = selfServiceSteps(() => srv);
const { passkeyForm } = pageSteps({ server: () => srv });
const clock = { now: () => now, advance: () => { now += MINUTE; } };
const { atPortal, silently, accountArea } = portalVisits(() => srv, () => ({ config, portal }), clock);
const NEW_PASSWORD = 'gió mùa đông bắc về trên đồi chè';

let seq = 0;
interface Citizen { id: string; pid: string; password: string; phone: string; email: string; secret?: string }
async function citizen(): Promise<Citizen> {
  seq += 1;
  const n = String(seq).padStart(4, '0');
  const phone = `+8491260${n}`;
  const email = `du.lieu.${n}@example.vn`;
  const p = await srv.addPerson({ pid: `00109026${n}`, name: 'Lê Thị Hồng Nhung', phone, email, contactsVerified: true });
  return { ...p, phone, email };
}

/** The person's lines once there are at least `count` (they are written just after each event). */
async function activityCount(personId: string, count: number) {
  // The activity index is written behind the audit events: wait for what was recorded so far, not
  // for a fixed time (a loaded CI machine on FerretDB took longer than 5 s for 520 of them).
  await srv.system.audit.flush();
  await srv.system.activity.settled();
  for (const until = Date.now() + 15_000; ;) {
    const entries = await srv.system.store.activity.list(personId, { since: 0, limit: 100_000 });
    if (entries.length >= count || Date.now() > until) return entries;
    await sleep(20);
  }
}

/** Follows the page's export link as a browser does; the response and its JSON. */
async function download(browser: Browser): Promise<{ res: Response; data: Record<string, unknown> }> {
  const page = await browser.get(url('/account/data'));
  expect(page.status).toBe(200);
  const href = /<a href="([^"]+)"[^>]*data-testid="export-link"/.exec(page.text)![1]!;
  const res = await browser.request(url(href));
  return { res, data: res.status === 200 ? (JSON.parse(res.text) as Record<string, unknown>) : {} };
}

/** Every key and every value of a JSON document, with where it is. */
function everything(value: unknown, at = '$', out: Array<{ at: string; text: string }> = []): Array<{ at: string; text: string }> {
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push({ at: `${at}.${k} (key)`, text: k });
      everything(v, `${at}.${k}`, out);
    }
  } else {
    out.push({ at, text: String(value) });
  }
  return out;
}

/** `person` through /recover with `contact`: the code sent to it, then the page after the code. */
async function recoverUpToFactor(c: Citizen): Promise<{ browser: Browser; page: Response }> {
  const browser = new Browser(srv.issuer);
  const start = await browser.get(url('/recover'));
  const sent = messagesTo(srv, c.phone).length;
  const codePage = await submit(browser, start, { pid: c.pid, contact: c.phone });
  expect(codePage.text).toContain('name="code"');
  const page = await submit(browser, codePage, { code: await nextCode(srv, c.phone, sent) });
  return { browser, page };
}

describe('the data export', () => {
  it('holds the details, contacts, factors, consents, sessions, enterprises, delegations and activity, and no value anywhere is or contains a secret, a token or an operator\'s name or note', async () => {
    const c = await citizen();
    // Operators' actions at the counter: a lock and an unlock with notes, a level raised with evidence.
    const operator = 'ops.tran.thi.c';
    const notes = ['ho_so_can_xem_lai', 'Gọi lại xác nhận ngày 12/3: chị Nhung báo mất ví', 'mo_khoa_sau_khi_xac_minh'];
    const evidence = { documentType: 'cccd-chip', documentNumber: '001090991122', place: 'Bộ phận một cửa, Bắc Ninh' };
    await srv.system.accountAdmin.lock(c.pid, { operator, reason: notes[1]! });
    await srv.system.accountAdmin.unlock(c.pid, { operator, reason: notes[2]! });
    await srv.system.accountAdmin.setLevel(c.pid, '2', { operator, reason: notes[0]! }, evidence);

    // A portal holding the phone scope, with tokens; the account area with an app and a passkey.
    const atProvince = new Browser(srv.issuer);
    const tokens = await atPortal(atProvince, c, { scope: 'openid profile phone' });
    expect(tokens.refresh_token).toBeTruthy();
    const browser = new Browser(srv.issuer);
    const { secret, recoveryCodes } = await enrolAppInAccount(srv, browser, c, clock);
    c.secret = secret;
    const security = await openAccountPage(srv, browser, c, '/account/security', clock);
    const start = await browser.post(url('/account/security/passkey'), { _csrf: hiddenField(security.text, '_csrf'), current_password: c.password });
    const form = passkeyForm<CreationOptions>(start.text, 'create');
    expect((await postPasskey(browser, form, new SoftAuthenticator().create(form.options, origin))).status).toBe(200);

    // Enterprises: one the person represents; delegations from a representative and from an operator.
    const rep = await srv.addPerson({ pid: `00109027${String(seq).padStart(4, '0')}`, email: `dai.dien.${seq}@example.vn` });
    const codes = [`012${String(seq).padStart(7, '0')}`, `013${String(seq).padStart(7, '0')}`, `014${String(seq).padStart(7, '0')}`];
    await srv.system.orgs.register({ code: codes[0]!, name: 'Công ty TNHH Sen Vàng', representatives: [c.pid] }, { operator });
    await srv.system.orgs.register({ code: codes[1]!, name: 'Công ty CP Lúa Mới', representatives: [rep.pid] }, { operator });
    await srv.system.orgs.register({ code: codes[2]!, name: 'Hợp tác xã Rau Sạch', representatives: [rep.pid] }, { operator });
    await srv.system.orgs.delegate({ code: codes[1]!, pid: c.pid, fullName: 'Lê Thị Hồng Nhung', role: 'ke-toan' }, { personId: rep.id });
    await srv.system.orgs.delegate({ code: codes[2]!, pid: c.pid, role: 'thu-quy' }, { operator });

    const { res, data } = await download(browser);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="dinhdanh-\d{4}-\d{2}-\d{2}\.json"$/);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toContain('no-store');

    // What it must not hold, whatever field it would hide in.
    const person = (await srv.system.store.persons.findById(c.id))!;
    const factors = await srv.system.store.factors.listForPerson(c.id);
    const totp = factors.find((f) => f.type === 'totp')!;
    const passkey = factors.find((f) => f.type === 'passkey')!;
    const normalisedCodes = recoveryCodes.map((x) => x.replaceAll('-', ''));
    const codeHashes = normalisedCodes.map((x) => crypto.createHash('sha256').update(`${c.id}\u0000${x}`).digest('base64url'));
    const cookies = [...atProvince.cookies().values(), ...browser.cookies().values()];
    const forbidden: Array<[string, string]> = [
      ['password', c.password],
      ['password hash', person.passwordHash],
      ['password hash digest', person.passwordHash.split('$').pop()!],
      ['TOTP seed', secret],
      ['TOTP seed, sealed', totp.secretCiphertext!],
      ['passkey credential id', passkey.credentialId!],
      ['passkey public key', passkey.publicKey!],
      ...recoveryCodes.map((x, i): [string, string] => [`recovery code ${i}`, x]),
      ...normalisedCodes.map((x, i): [string, string] => [`recovery code ${i}, normalised`, x]),
      ...codeHashes.map((x, i): [string, string] => [`recovery code hash ${i}`, x]),
      ...cookies.map((x, i): [string, string] => [`cookie ${i}`, x]),
      ['access token', tokens.access_token],
      ['refresh token', tokens.refresh_token!],
      ['ID token', tokens.id_token!],
      ['portal secret', portal.client_secret],
      ['operator', operator],
      ...notes.map((x, i): [string, string] => [`operator's note ${i}`, x]),
      ['evidence document', evidence.documentNumber],
    ];
    expect(cookies.length).toBeGreaterThan(3);
    const leaks = everything(data).flatMap(({ at, text }) => forbidden.filter(([, f]) => f.length >= 6 && text.includes(f)).map(([what]) => `${what} at ${at}`));
    expect(leaks).toEqual([]);

    // What it must hold.
    expect(data.format).toBe('dinhdanh-personal-data/1');
    expect(data.details).toMatchObject({
      identification_number: c.pid, name: 'Lê Thị Hồng Nhung', birthdate: '1990-03-15', gender: 'male', identity_level: 2, status: 'active', locked_by: null,
    });
    expect(data.contacts).toEqual([
      expect.objectContaining({ kind: 'phone', value: c.phone, verified: true }),
      expect.objectContaining({ kind: 'email', value: c.email, verified: true }),
    ]);
    const exportedFactors = data.second_factors as Array<Record<string, unknown>>;
    expect(exportedFactors.map((f) => f.kind).sort()).toEqual(['passkey', 'totp']);
    for (const f of exportedFactors) {
      expect(Object.keys(f).sort()).toEqual(['added_at', 'kind', 'last_used_at', 'name']);
      expect(typeof f.name).toBe('string');
      expect(Date.parse(f.added_at as string)).not.toBeNaN();
    }
    expect(data.recovery_codes).toMatchObject({ unused: recoveryCodes.length });
    expect(data.consents).toEqual([expect.objectContaining({ portal: portal.client_id, portal_name: PORTAL_NAME, scopes: expect.arrayContaining(['openid', 'phone']) })]);
    const sessions = data.sessions as Array<{ portals: string[] }>;
    expect(sessions).toHaveLength((await srv.system.store.oidc.listByAccount('Session', c.id)).length);
    expect(sessions.some((s) => s.portals.includes(PORTAL_NAME))).toBe(true);
    expect(data.enterprises).toEqual([{ code: codes[0], name: 'Công ty TNHH Sen Vàng', role: 'legal_representative' }]);
    const delegations = (data.delegations as Array<Record<string, unknown>>).sort((a, b) => String(a.enterprise).localeCompare(String(b.enterprise)));
    expect(delegations).toEqual([
      expect.objectContaining({ enterprise: codes[1], enterprise_name: 'Công ty CP Lúa Mới', role: 'ke-toan', granted_by: 'legal_representative' }),
      expect.objectContaining({ enterprise: codes[2], enterprise_name: 'Hợp tác xã Rau Sạch', role: 'thu-quy', granted_by: 'operator' }),
    ]);
    // The representative who granted it is not named either (their identity is theirs).
    expect(JSON.stringify(data.delegations)).not.toContain(rep.id);
    const activity = data.activity as Array<{ event: string; by?: string }>;
    const events = activity.map((e) => e.event);
    for (const e of ['ACCOUNT_CREATED', 'ACCOUNT_LOCKED', 'ACCOUNT_UNLOCKED', 'ACCOUNT_LEVEL_CHANGED', 'SIGN_IN_COMPLETED', 'CONSENT_GRANTED', 'FACTOR_ENROLLED']) {
      expect({ e, held: events.includes(e) }).toEqual({ e, held: true });
    }
    expect(activity.find((e) => e.event === 'ACCOUNT_LOCKED')!.by).toBe('operator');
    const indexed = await srv.system.store.activity.list(c.id, { since: now - 183 * 24 * 60 * MINUTE, limit: 10_000 });
    expect(activity).toHaveLength(indexed.filter((e) => e.event !== 'DATA_EXPORTED').length);

    // The download is audited with its size.
    expect((await auditOf(srv, 'DATA_EXPORTED', c.id)).map((e) => e.details.bytes)).toEqual([Buffer.byteLength(res.text)]);
  });

  it('without a session: a redirect to the sign-in, and no data; a sign-in older than 5 minutes signs in again first', async () => {
    const c = await citizen();
    const res = await new Browser(srv.issuer).request(url('/account/data/export'));
    expect(res.status).toBe(303);
    expect(new URL(res.location!).pathname).toBe('/auth');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.text).not.toContain(c.pid);
    expect(await auditOf(srv, 'DATA_EXPORTED', c.id)).toHaveLength(0);
    // A browser left signed in: the file (the full number, every contact) needs a recent sign-in.
    const browser = new Browser(srv.issuer);
    expect((await openAccountPage(srv, browser, c, '/account/data', clock)).status).toBe(200);
    now += 6 * MINUTE;
    const stale = await browser.request(url('/account/data/export'));
    expect(stale.status).toBe(303);
    expect(new URL(stale.location!).searchParams.get('prompt')).toBe('login');
    expect(stale.headers.get('content-disposition')).toBeNull();
    expect(await auditOf(srv, 'DATA_EXPORTED', c.id)).toHaveLength(0);
  });

  it('a long history (more than 500 lines, past one read of the index) is exported whole, in order, once each', async () => {
    const c = await citizen();
    // Recorded through the audit service as events are, a second apart.
    for (let i = 0; i < 520; i += 1) {
      now += 1000;
      if (i % 2 === 0) {
        srv.system.audit.record('LOGIN_FAILED', { reason: 'wrong_password', person: c.id, failures: 1, ip: '203.0.113.77' });
      } else {
        srv.system.audit.record('SIGN_IN_COMPLETED', { person: c.id, portal: portal.client_id, acr: 'urn:dinhdanh:loa:low', method: 'pwd', device: 'Chrome · Android', network: '203.0.113.x', new_browser: false });
      }
    }
    expect((await activityCount(c.id, 521)).length).toBeGreaterThanOrEqual(521);
    const browser = new Browser(srv.issuer);
    await openAccountPage(srv, browser, c, '/account/data', clock);
    const { res, data } = await download(browser);
    expect(res.status).toBe(200);
    const activity = data.activity as Array<{ at: string; event: string; network?: string }>;
    // The download's own line is written after it was built.
    const stored = (await srv.system.store.activity.list(c.id, { since: now - 183 * 24 * 60 * MINUTE, limit: 10_000 })).filter((e) => e.event !== 'DATA_EXPORTED');
    expect(stored.length).toBeGreaterThan(520);
    expect(activity.map((e) => [e.at, e.event])).toEqual(stored.map((e) => [new Date(e.at).toISOString(), e.event]));
    expect(activity.filter((e) => e.event === 'LOGIN_FAILED')).toHaveLength(260);
    // The network, coarse, even in the download.
    expect(activity.find((e) => e.event === 'LOGIN_FAILED')!.network).toBe('203.0.113.x');
    expect(res.text).not.toContain('203.0.113.77');
  });
});

describe('locking my account', () => {
  it('locks at once: every session ends (another browser, the portal told by back-channel logout), sign-in is refused, contacts are told; recovery without a second factor is refused and the account stays locked', async () => {
    const c = await citizen();
    const atProvince = new Browser(srv.issuer);
    const claims = (await atPortal(atProvince, c)).claims()!;
    const other = new Browser(srv.issuer);
    expect((await openAccountPage(srv, other, c, '/account/sessions', clock)).status).toBe(200);
    const browser = new Browser(srv.issuer);
    const page = await openAccountPage(srv, browser, c, '/account/data', clock);
    expect(page.text).toContain('name="lock" value="lock"');

    // The form is checked: another value, or no token, does nothing.
    expect((await browser.post(url('/account/data/lock'), { _csrf: hiddenField(page.text, '_csrf'), lock: 'yes' })).status).toBe(400);
    expect((await browser.post(url('/account/data/lock'), { lock: 'lock' })).status).toBe(403);
    expect((await srv.system.store.persons.findById(c.id))!.status).toBe('active');

    const [phoneBefore, mailBefore] = [messagesTo(srv, c.phone).length, messagesTo(srv, c.email).length];
    const delivered = receiver.tokens('/province').length;
    // Locking protects the person: it needs the session, not a sign-in in the last 5 minutes.
    now += 10 * MINUTE;
    const locked = await browser.post(url('/account/data/lock'), { _csrf: hiddenField(page.text, '_csrf'), lock: 'lock' });
    expect(locked.status).toBe(200);
    expect(heading(locked.text)).toBe('Tài khoản đã bị khóa');
    expect((await srv.system.store.persons.findById(c.id))!).toMatchObject({ status: 'locked', lockReason: 'self' });
    expect(await srv.system.accountAdmin.show(c.pid)).toMatchObject({ status: 'locked', lock_reason: 'self' });
    expect(await auditOf(srv, 'ACCOUNT_SELF_LOCKED', c.id)).toHaveLength(1);

    expect(await accountArea(browser, '/account/data')).toBe('signin');
    expect(await accountArea(other, '/account/data')).toBe('signin');
    expect(await silently(atProvince)).toBe('login_required');
    const [logoutToken] = (await receiver.waitFor('/province', delivered + 1)).slice(delivered);
    const { payload } = await jose.jwtVerify(logoutToken!, jose.createRemoteJWKSet(new URL(`${srv.issuer}/jwks`)), {
      issuer: srv.issuer, audience: portal.client_id, typ: 'logout+jwt', currentDate: new Date(now),
    });
    expect(payload).toMatchObject({ sub: claims.sub, sid: claims.sid, events: { [EVENT]: {} } });
    expect(await srv.system.store.oidc.listByAccount('Session', c.id)).toHaveLength(0);
    for (const [to, before] of [[c.phone, phoneBefore], [c.email, mailBefore]] as const) {
      expect(messagesTo(srv, to).slice(before).filter((m) => m.text.includes('đã bị khóa theo yêu cầu của bạn'))).toHaveLength(1);
    }

    // The password, right, is refused like a wrong one.
    const again = new Browser(srv.issuer);
    const login = await again.get((await authRequest(config, portal)).url.href);
    const refused = await submit(again, login, { identifier: c.pid, password: c.password });
    expect(refused.status).toBe(200);
    expect(refused.text).toContain('name="identifier"');
    expect(alertText(refused.text)).toContain('Số định danh hoặc mật khẩu không đúng');

    // Recovery with the phone alone (what a thief of the phone has) does not unlock it.
    const { page: after } = await recoverUpToFactor(c);
    expect(after.status).toBe(403);
    expect(heading(after.text)).toBe('Tài khoản đang bị khóa');
    expect(alertText(after.text)).toBe('Bạn đã tự khóa tài khoản này. Tài khoản chưa có yếu tố xác thực thứ hai, nên chỉ có thể mở khóa tại bộ phận một cửa.');
    expect(after.text).not.toContain('name="password"');
    expect((await srv.system.store.persons.findById(c.id))!).toMatchObject({ status: 'locked', lockReason: 'self' });
    expect(await auditOf(srv, 'ACCOUNT_SELF_UNLOCKED', c.id)).toHaveLength(0);
  });

  it('with an authenticator app, recovery (the code, the app\'s code, a new password) unlocks it; the old password no longer works', async () => {
    const c = await citizen();
    const browser = new Browser(srv.issuer);
    c.secret = (await enrolAppInAccount(srv, browser, c, clock)).secret;
    const page = await openAccountPage(srv, browser, c, '/account/data', clock);
    expect((await browser.post(url('/account/data/lock'), { _csrf: hiddenField(page.text, '_csrf'), lock: 'lock' })).status).toBe(200);
    expect((await srv.system.store.persons.findById(c.id))!.status).toBe('locked');

    const { browser: rec, page: factorStep } = await recoverUpToFactor(c);
    expect(factorStep.status).toBe(200);
    expect(factorStep.text).toContain('name="code"');
    // Not the account reset (every factor lost): only the factor lifts the owner's lock.
    expect(factorStep.text).not.toContain('name="reset"');
    expect((await srv.system.store.persons.findById(c.id))!.status).toBe('locked');
    clock.advance();
    const passwordStep = await submit(rec, factorStep, { method: 'totp', code: await totpCode(c.secret, now) });
    expect(passwordStep.text).toContain('name="password_confirm"');
    const done = await submit(rec, passwordStep, { password: NEW_PASSWORD, password_confirm: NEW_PASSWORD });
    expect(done.status).toBe(200);

    expect((await srv.system.store.persons.findById(c.id))!).toMatchObject({ status: 'active', lockReason: null });
    expect((await auditOf(srv, 'ACCOUNT_SELF_UNLOCKED', c.id)).map((e) => e.details.factor)).toEqual(['totp']);
    const old = new Browser(srv.issuer);
    const login = await old.get((await authRequest(config, portal)).url.href);
    expect((await submit(old, login, { identifier: c.pid, password: c.password })).text).toContain('name="identifier"');
    expect((await atPortal(new Browser(srv.issuer), { ...c, password: NEW_PASSWORD })).claims()!.sub).toBeTruthy();
  });

  it('an operator\'s lock is not lifted by recovery, even with the app: no code is sent, and it stays locked', async () => {
    const c = await citizen();
    c.secret = (await enrolAppInAccount(srv, new Browser(srv.issuer), c, clock)).secret;
    await srv.system.accountAdmin.lock(c.pid, { operator: 'ops.counter', reason: 'locked_at_the_counter' });
    const before = messagesTo(srv, c.phone).length;
    const browser = new Browser(srv.issuer);
    const start = await browser.get(url('/recover'));
    const codePage = await submit(browser, start, { pid: c.pid, contact: c.phone });
    // It answers like any other start (it must not tell a locked account apart)...
    expect(codePage.status).toBe(200);
    expect(codePage.text).toContain('name="code"');
    // ...but nothing is sent, so nothing can be answered.
    await sleep(300);
    expect(messagesTo(srv, c.phone)).toHaveLength(before);
    expect((await srv.system.store.persons.findById(c.id))!).toMatchObject({ status: 'locked', lockReason: 'operator' });
    expect(await srv.system.accountAdmin.show(c.pid)).toMatchObject({ lock_reason: 'operator' });
  });
});
