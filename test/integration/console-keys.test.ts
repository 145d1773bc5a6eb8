/**
 * The console's keys section (keys: keys.read / keys.act), through the real console listener with
 * operators signed in through dinhdanh: the keys with their states and dates; a rotation (published
 * at once, signing once active, KEYS_ROTATED with operator, role, door and reason); a retirement as
 * a proposal that leaves the key published until a second keys operator approves; refusals shown
 * on the page (the active key, an unknown key, a bad delay, a missing reason); a stale second factor
 * answered with the re-authentication page; and the role checks of pages and direct POSTs.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import type { TestServer } from '../helpers/harness.js';
import { Browser, hiddenField, type Response } from '../helpers/browser.js';
import { actorOf, consolePost, consoleTestKit, statusText, type TestOperator } from '../helpers/console.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';
import type { AuditFilter } from '../../src/store/index.js';

const kit = consoleTestKit();
const { now, tick, consoleAs } = kit;
let srv: TestServer;

let keys1: TestOperator;
let keys2: TestOperator;
let auditor: TestOperator;
let helpdesk: TestOperator;
type Portal = Awaited<ReturnType<TestServer['addPortal']>>;
let portal: Portal;

beforeAll(async () => {
  srv = await kit.start();
  portal = await srv.addPortal();
  keys1 = await kit.operator(['keys']);
  keys2 = await kit.operator(['keys']);
  auditor = await kit.operator(['auditor']);
  helpdesk = await kit.operator(['helpdesk']);
});
afterAll(() => kit.close());

const audit = (filter: AuditFilter) => kit.audit(filter, 1000);

async function publishedKids(): Promise<string[]> {
  const res = await fetch(`${srv.issuer}/jwks`);
  return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
}

/** The kid of the ID token a citizen gets at the portal now. */
async function signingKid(): Promise<string> {
  const person = await srv.addPerson();
  const config = await discover(srv.issuer, portal);
  const req = await authRequest(config, portal);
  const res = await signIn(new Browser(srv.issuer), req, person);
  expect(res.status).toBe(303);
  const tokens = await redeem(config, req, res.location!);
  return jose.decodeProtectedHeader(tokens.id_token!).kid!;
}

const keyRow = (res: Response, kid: string) => {
  const at = res.text.indexOf(`data-kid="${kid}"`);
  return at < 0 ? null : res.text.slice(at, res.text.indexOf('</tr>', at));
};

describe('a keys operator', () => {
  it('sees every key with its algorithm, state, origin and dates', async () => {
    const browser = await consoleAs(keys1);
    const page = await browser.get(`${srv.adminUrl}/admin/keys`);
    expect(page.status).toBe(200);
    expect([...page.text.matchAll(/<h1>/g)]).toHaveLength(1);
    for (const k of await srv.system.signingKeys.describe()) {
      const row = keyRow(page, k.kid)!;
      expect(row).toContain(`data-state="${k.state}"`);
      expect(row).toContain(k.alg);
      expect(row).toContain(`<time datetime="${k.activate_at}">`);
    }
    expect(page.text).toContain('data-testid="keys-rotate"');
    expect(page.text).toContain('name="activate_after"');
    // The signing key offers no retirement.
    const active = (await srv.system.signingKeys.describe()).filter((k) => k.state === 'active');
    for (const k of active) expect(page.text).not.toContain(`action="/admin/keys/${k.kid}/retire"`);
  });

  it('rotates with a delay and a reason: the new keys are published at once, sign once active, and KEYS_ROTATED names the operator, role and reason', async () => {
    const oldKid = await signingKid();
    const before = await srv.system.signingKeys.describe();
    const browser = await consoleAs(keys1);
    const reason = 'Xoay vòng khóa định kỳ theo quy chế an toàn thông tin';
    const res = await consolePost(srv, browser, '/admin/keys/rotate', { activate_after: '15m', reason }, '/admin/keys');
    expect(res.status).toBe(200);
    expect(new URL(res.url).search).toBe('?done=rotated');
    expect(statusText(res)).toContain('Đã tạo khóa mới');

    const after = await srv.system.signingKeys.describe();
    const added = after.filter((k) => !before.some((b) => b.kid === k.kid));
    expect(added.map((k) => [k.alg, k.state, k.origin]).sort()).toEqual([['ES256', 'next', 'development'], ['RS256', 'next', 'development']]);
    expect(added.every((k) => k.activate_at === new Date(now() + 15 * 60_000).toISOString())).toBe(true);
    for (const k of added) expect(keyRow(res, k.kid)).toContain('data-state="next"');
    // Published at once (the console reloaded this instance's keys), not signing yet.
    expect(await publishedKids()).toEqual(expect.arrayContaining([oldKid, ...added.map((k) => k.kid)]));
    expect(await signingKid()).toBe(oldKid);

    const [entry] = await audit({ event: 'KEYS_ROTATED', operator: keys1.id });
    expect(entry!.details).toMatchObject({ operator: keys1.id, role: 'keys', via: 'console', reason, activate_at: added[0]!.activate_at, activate_after_ms: 15 * 60_000 });
    expect([...(entry!.details.kids as string[])].sort()).toEqual(added.map((k) => k.kid).sort());

    // Once active (every instance reloads its keys within a minute; here, now), the new RS256 key signs.
    tick(16 * 60_000);
    expect(await srv.system.reloadKeys()).toBe(true);
    const rs = added.find((k) => k.alg === 'RS256')!;
    expect(await signingKid()).toBe(rs.kid);
    expect(await publishedKids()).toEqual(expect.arrayContaining([oldKid, rs.kid]));
    expect((await srv.system.signingKeys.describe()).find((k) => k.kid === oldKid)!.state).toBe('retiring');
  });

  it('proposes a retirement: the key stays published until a second keys operator approves', async () => {
    let retiring = (await srv.system.signingKeys.describe()).find((k) => k.state === 'retiring' && k.alg === 'RS256');
    if (!retiring) {
      // Run alone: make a retiring key the way the command line would.
      await srv.system.signingKeys.rotate(0, 'development');
      await srv.system.reloadKeys();
      retiring = (await srv.system.signingKeys.describe()).find((k) => k.state === 'retiring' && k.alg === 'RS256')!;
    }
    const kid = retiring.kid;
    const browser = await consoleAs(keys1);
    const page = await browser.get(`${srv.adminUrl}/admin/keys`);
    expect(page.text).toContain(`action="/admin/keys/${kid}/retire"`);
    const reason = 'Khóa cũ đã hết thời gian cần giữ sau lần xoay vòng';
    const res = await consolePost(srv, browser, `/admin/keys/${kid}/retire`, { reason }, '/admin/keys');
    expect(res.status).toBe(200);
    const approval = new URL(res.url).searchParams.get('approval')!;
    expect(new URL(res.url).searchParams.get('done')).toBe('proposed');
    expect(statusText(res)).toContain(approval);
    expect(keyRow(res, kid)).toContain(`href="/admin/approvals/${approval}"`);
    expect(res.text).not.toContain(`action="/admin/keys/${kid}/retire"`);

    const [proposed] = (await audit({ event: 'APPROVAL_PROPOSED', operator: keys1.id })).filter((e) => e.details.approval === approval);
    expect(proposed!.details).toMatchObject({ action: 'retire-key', subject: kid, operator: keys1.id, role: 'keys', via: 'console', reason });
    expect((await srv.system.signingKeys.describe()).find((k) => k.kid === kid)!.state).toBe('retiring');
    await srv.system.reloadKeys();
    expect(await publishedKids()).toContain(kid);

    // Asking again while it waits is refused, not a second proposal.
    const twice = await consolePost(srv, browser, `/admin/keys/${kid}/retire`, { reason }, '/admin/keys');
    expect([twice.status, twice.text.includes('role="alert"')]).toEqual([409, true]);

    // Not by the proposer; by a second keys operator.
    await expect(srv.system.adminActions.approvals.approve(actorOf(keys1), approval, 'tự phê duyệt')).rejects.toMatchObject({ code: 'forbidden' });
    expect(await publishedKids()).toContain(kid);
    const decided = await srv.system.adminActions.approvals.approve(actorOf(keys2), approval, 'Đã kiểm tra: khóa không còn ký mã nào còn hiệu lực');
    expect(decided.outcome).toBe('done: retired (was retiring)');
    expect((await srv.system.signingKeys.describe()).find((k) => k.kid === kid)!.state).toBe('retired');
    // The approving instance (and every other) reloads within a minute; here, now.
    await srv.system.reloadKeys();
    expect(await publishedKids()).not.toContain(kid);
    const [retired] = (await audit({ event: 'KEY_RETIRED' })).filter((e) => e.details.kid === kid);
    expect(retired!.details).toMatchObject({ operator: keys1.id, role: 'keys', reason, approved_by: keys2.id, approval });
  });
});

describe('refusals are shown on the page, never a 500; nothing changes', () => {
  it('the active key, an unknown key, a bad delay, a missing or oversized reason, operator-shaped and unknown fields', async () => {
    const browser = await consoleAs(keys1);
    const page = await browser.get(`${srv.adminUrl}/admin/keys`);
    const csrf = hiddenField(page.text, '_csrf');
    const before = await srv.system.signingKeys.describe();
    const active = before.find((k) => k.state === 'active')!;

    const cases: Array<[string, Record<string, string>, number]> = [
      [`/admin/keys/${active.kid}/retire`, { reason: 'thu hồi khóa đang ký' }, 409],
      ['/admin/keys/khong-co-khoa-nay/retire', { reason: 'thu hồi khóa không tồn tại' }, 404],
      [`/admin/keys/${encodeURIComponent('{"$ne":1}')}/retire`, { reason: 'thu hồi khóa không tồn tại' }, 404],
      [`/admin/keys/${active.kid}/retire`, {}, 400],
      [`/admin/keys/${active.kid}/retire`, { 'reason[$ne]': 'x' }, 400],
      ['/admin/keys/rotate', { activate_after: '2y', reason: 'xoay vòng khóa' }, 400],
      ['/admin/keys/rotate', { activate_after: '31d', reason: 'xoay vòng khóa' }, 400],
      ['/admin/keys/rotate', { activate_after: 'soon', reason: 'xoay vòng khóa' }, 400],
      ['/admin/keys/rotate', { activate_after: '1h', reason: 'ab' }, 400],
      ['/admin/keys/rotate', { activate_after: '1h', reason: 'x'.repeat(501) }, 400],
      ['/admin/keys/rotate', { activate_after: '1h' }, 400],
      ['/admin/keys/rotate', { reason: 'xoay vòng khóa' }, 400],
      ['/admin/keys/rotate', { activate_after: '1h', reason: 'xoay vòng khóa', extra: '1' }, 400],
      ['/admin/keys/rotate', { 'activate_after[$gt]': '', reason: 'xoay vòng khóa' }, 400],
    ];
    for (const [path, fields, status] of cases) {
      const res = await browser.post(`${srv.adminUrl}${path}`, { _csrf: csrf, ...fields });
      expect([path, Object.keys(fields), res.status, res.text.includes('role="alert"')]).toEqual([path, Object.keys(fields), status, true]);
    }
    expect(await srv.system.signingKeys.describe()).toEqual(before);
    expect((await audit({ event: 'APPROVAL_PROPOSED', operator: keys1.id })).filter((e) => e.details.subject === active.kid)).toHaveLength(0);

    const noCsrf = await browser.post(`${srv.adminUrl}/admin/keys/rotate`, { activate_after: '1h', reason: 'xoay vòng khóa' });
    expect(noCsrf.status).toBeGreaterThanOrEqual(400);
    expect(noCsrf.status).toBeLessThan(500);
    const crossSite = await browser.post(`${srv.adminUrl}/admin/keys/rotate`, { _csrf: csrf, activate_after: '1h', reason: 'xoay vòng khóa' }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect(await srv.system.signingKeys.describe()).toEqual(before);
  });

  it('a second factor older than five minutes gets the re-authentication page, and no key', async () => {
    const browser = await consoleAs(keys1);
    const page = await browser.get(`${srv.adminUrl}/admin/keys`);
    const csrf = hiddenField(page.text, '_csrf');
    tick(6 * 60_000);
    const before = await srv.system.signingKeys.describe();
    const stale = await browser.post(`${srv.adminUrl}/admin/keys/rotate`, { _csrf: csrf, activate_after: '1h', reason: 'xoay vòng khóa định kỳ' });
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('data-testid="reauth-link"');
    const kid = before.find((k) => k.state === 'next' || k.state === 'retiring')?.kid ?? 'khoa-bat-ky';
    const staleRetire = await browser.post(`${srv.adminUrl}/admin/keys/${kid}/retire`, { _csrf: csrf, reason: 'thu hồi khóa cũ' });
    expect(staleRetire.status).toBe(403);
    expect(staleRetire.text).toContain('data-testid="reauth-link"');
    expect(await srv.system.signingKeys.describe()).toEqual(before);
  });

  it('an auditor or helpdesk operator gets 403 on the page and on direct POSTs with a valid CSRF token; a keys operator gets 403 on the audit log and accounts', async () => {
    const before = await srv.system.signingKeys.describe();
    const someKid = before[0]!.kid;
    for (const op of [auditor, helpdesk]) {
      const browser = await consoleAs(op);
      const dashboard = await browser.get(`${srv.adminUrl}/admin`);
      expect(dashboard.text).not.toContain('href="/admin/keys"');
      const csrf = hiddenField(dashboard.text, '_csrf');
      const page = await browser.get(`${srv.adminUrl}/admin/keys`);
      expect([op.roles[0], page.status]).toEqual([op.roles[0], 403]);
      const rotate = await browser.post(`${srv.adminUrl}/admin/keys/rotate`, { _csrf: csrf, activate_after: '0', reason: 'xoay vòng khóa không có quyền' });
      expect([op.roles[0], rotate.status]).toEqual([op.roles[0], 403]);
      const retire = await browser.post(`${srv.adminUrl}/admin/keys/${someKid}/retire`, { _csrf: csrf, reason: 'thu hồi khóa không có quyền' });
      expect([op.roles[0], retire.status]).toEqual([op.roles[0], 403]);
    }
    expect(await srv.system.signingKeys.describe()).toEqual(before);
    for (const op of [auditor, helpdesk]) expect(await audit({ event: 'KEYS_ROTATED', operator: op.id })).toHaveLength(0);

    const browser = await consoleAs(keys2);
    const dashboard = await browser.get(`${srv.adminUrl}/admin`);
    expect(dashboard.text).toContain('href="/admin/keys"');
    for (const path of ['/admin/audit', '/admin/accounts']) {
      const res = await browser.get(`${srv.adminUrl}${path}`);
      expect([path, res.status]).toEqual([path, 403]);
    }
    const refused = await audit({ event: 'CONSOLE_ACCESS_REFUSED', operator: auditor.id });
    expect(refused.map((e) => e.details.permission)).toEqual(expect.arrayContaining(['keys.read', 'keys.act']));
  });
});
