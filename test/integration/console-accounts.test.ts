/**
 * The console's accounts section (helpdesk: accounts.read / accounts.act), through the real
 * console listener with operators signed in through dinhdanh: finding an account by its number,
 * its page and history, each action with its reason in the hash-chained audit log, the two-person
 * actions as proposals decided by a second operator, the role checks of pages and of direct POSTs,
 * malformed forms, acting on one's own account, and the fresh second factor of dangerous actions.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { Browser, decodeEntities, hiddenField } from '../helpers/browser.js';
import { actorOf, consolePost, consoleSignIn, consoleTestKit, pageText as text, statusText, type TestOperator } from '../helpers/console.js';
import { authRequest, discover, signIn, type Portal } from '../helpers/rp.js';
import { openAccountPage } from './selfservice-support.js';
import type * as oidc from 'openid-client';

const kit = consoleTestKit();
const { now, tick, consoleAs, audit } = kit;
let srv: TestServer;
let portal: Portal;
let config: oidc.Configuration;

let helpdesk: TestOperator;
let helpdesk2: TestOperator;
let auditor: TestOperator;
let integration: TestOperator;

beforeAll(async () => {
  srv = await kit.start();
  portal = await srv.addPortal();
  config = await discover(srv.issuer, portal);
  helpdesk = await kit.operator(['helpdesk']);
  helpdesk2 = await kit.operator(['helpdesk']);
  auditor = await kit.operator(['auditor']);
  integration = await kit.operator(['integration']);
});
afterAll(() => kit.close());

let citizens = 0;
/** A citizen signed in at a portal in a browser of their own (a live session the console can end). */
async function citizen(options: { level?: '1' | '2'; atPortal?: boolean } = {}) {
  citizens += 1;
  const person = await srv.addPerson({ pid: `001090${String(650000 + citizens)}`, level: options.level ?? '1' });
  const browser = new Browser(srv.issuer);
  if (options.atPortal !== false) {
    const res = await signIn(browser, await authRequest(config, portal), person);
    expect(new URL(res.location!).searchParams.get('code')).toBeTruthy();
  }
  return { ...person, browser };
}

/** Where a browser's return to the portal without a prompt ends: a code, or the error (login_required once its session ended). */
async function silentAtPortal(browser: Browser): Promise<string> {
  const res = await browser.get((await authRequest(config, portal, { prompt: 'none' })).url.href);
  const params = new URL(res.location!).searchParams;
  return params.get('code') ? 'code' : params.get('error') ?? 'none';
}

/** The person's activity index once it holds `events` (its lines are written just after the audit event, in the background). */
async function activityHas(personId: string, events: string[]): Promise<void> {
  for (const until = Date.now() + 3000; ;) {
    const seen = (await srv.system.store.activity.list(personId, { since: 0, limit: 100 })).map((e) => e.event);
    if (events.every((e) => seen.includes(e))) return;
    if (Date.now() > until) throw new Error(`the activity index never got ${events.join(', ')}: ${seen.join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const accountPath = (id: string) => `/admin/accounts/${id}`;
const person = async (id: string) => (await srv.system.store.persons.findById(id))!;

describe('its own listener', () => {
  it('is 404 on the public listener: /admin and /admin/accounts', async () => {
    for (const path of ['/admin', '/admin/accounts', '/admin/accounts/x/lock']) {
      const res = await fetch(`${srv.issuer}${path}`, { redirect: 'manual' });
      expect([path, res.status]).toEqual([path, 404]);
    }
    const post = await fetch(`${srv.issuer}/admin/accounts`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'q=001090000001' });
    expect(post.status).toBe(404);
  });
});

describe('a helpdesk operator at the counter', () => {
  it('finds an account by its number, sees it, locks it with a reason: the citizen\'s sessions end, the audit log names the operator, role, door and reason, and the history shows it', async () => {
    const c = await citizen();
    const browser = await consoleAs(helpdesk);

    const search = await browser.get(`${srv.adminUrl}/admin/accounts`);
    expect(search.status).toBe(200);
    expect(search.text).toContain('name="q"');
    expect(search.text).toContain('name="_csrf"');
    expect([...search.text.matchAll(/<h1>/g)]).toHaveLength(1);

    // The search form posts the number (kept out of the URL) and lands on the account's page.
    const found = await consolePost(srv, browser, '/admin/accounts', { q: c.pid }, '/admin/accounts');
    expect(found.status).toBe(200);
    expect(new URL(found.url).pathname).toBe(accountPath(c.id));
    // A GET with ?q= does not search: the number is never put in an address.
    const byGet = await browser.request(`${srv.adminUrl}/admin/accounts?q=${c.pid}`);
    expect([byGet.status, byGet.location, byGet.text.includes('role="alert"')]).toEqual([400, null, true]);

    // Masked number, name, level, state, a live session, no full number anywhere.
    expect(found.text).toContain(`*********${c.pid.slice(9)}`);
    expect(found.text).not.toContain(c.pid);
    expect(found.text).toContain('Nguyễn Văn An');
    expect(/data-testid="account-state" data-state="([^"]+)"/.exec(found.text)![1]).toBe('active');
    expect(text(found)).toContain('Số phiên đang hoạt động: 1');
    expect(found.text).toContain('data-testid="account-session"');

    const reason = 'Công dân báo mất điện thoại tại quầy, yêu cầu khóa';
    const locked = await consolePost(srv, browser, `${accountPath(c.id)}/lock`, { reason }, accountPath(c.id));
    expect(locked.status).toBe(200);
    expect(new URL(locked.url).search).toBe('?done=locked');
    expect(statusText(locked)).toContain('Đã khóa tài khoản');
    expect(await person(c.id)).toMatchObject({ status: 'locked', lockReason: 'operator' });
    expect(/data-testid="account-state" data-state="([^"]+)"/.exec(locked.text)![1]).toBe('locked:operator');

    // The citizen's sessions ended in the store, and the portal's silent return meets it.
    expect(await srv.system.store.oidc.listByAccount('Session', c.id)).toHaveLength(0);
    expect(await silentAtPortal(c.browser)).toBe('login_required');

    const [entry] = await audit({ event: 'ACCOUNT_LOCKED', person: c.id });
    expect(entry!.details).toMatchObject({ operator: helpdesk.id, role: 'helpdesk', via: 'console', reason, lock_reason: 'operator', person: c.id });
    expect(JSON.stringify(entry!.details)).not.toContain(c.pid);

    // The operators' recorded actions (with the reason) and the history (operator id, role, reason).
    const page = await browser.get(`${srv.adminUrl}${accountPath(c.id)}`);
    expect(page.text).toContain('data-testid="recorded-action"');
    const history = await browser.get(`${srv.adminUrl}${accountPath(c.id)}/history`);
    expect(history.status).toBe(200);
    const row = history.text.split('data-testid="history-row"').slice(1).find((r) => r.includes('ACCOUNT_LOCKED'))!;
    expect(row).toBeDefined();
    expect(decodeEntities(row)).toContain(reason);
    expect(row).toContain(helpdesk.id);
    expect(row).toContain('hỗ trợ một cửa');
    for (const p of [page, history]) expect(decodeEntities(p.text)).toContain(reason);

    // Unlocked at the counter: the citizen signs in again and sees the lock as done by a role only.
    const unlockReason = 'Công dân xuất trình CCCD tại quầy, mở khóa';
    const unlocked = await consolePost(srv, browser, `${accountPath(c.id)}/unlock`, { reason: unlockReason }, accountPath(c.id));
    expect(statusText(unlocked)).toContain('Đã mở khóa');
    expect((await person(c.id)).status).toBe('active');
    tick();
    await activityHas(c.id, ['ACCOUNT_LOCKED', 'ACCOUNT_UNLOCKED']);
    const activity = await openAccountPage(srv, new Browser(srv.issuer), c, '/account/activity', { now, advance: tick });
    expect(activity.status).toBe(200);
    expect(text(activity)).toContain('thực hiện bởi cán bộ hỗ trợ');
    for (const hidden of [reason, unlockReason, helpdesk.id]) expect({ hidden, shown: decodeEntities(activity.text).includes(hidden) }).toEqual({ hidden, shown: false });
  });

  it('answers a malformed or unknown number with an alert, never a 500', async () => {
    const browser = await consoleAs(helpdesk);
    for (const q of ['12345', 'abcdefghijkl', '0010901234567', '', '<script>']) {
      const res = await consolePost(srv, browser, '/admin/accounts', { q }, '/admin/accounts');
      expect([q, res.status, res.text.includes('role="alert"')]).toEqual([q, 400, true]);
      expect(res.text).not.toContain('<script>');
    }
    const byGet = await browser.get(`${srv.adminUrl}/admin/accounts?q=${encodeURIComponent('1; DROP TABLE persons')}`);
    expect([byGet.status, byGet.text.includes('role="alert"')]).toEqual([400, true]);
    const twice = await browser.get(`${srv.adminUrl}/admin/accounts?q=001090000001&q=001090000002`);
    expect(twice.status).toBe(400);
    const unknown = await consolePost(srv, browser, '/admin/accounts', { q: '001090999998' }, '/admin/accounts');
    expect([unknown.status, unknown.text.includes('role="alert"')]).toEqual([404, true]);
    const operatorShaped = await consolePost(srv, browser, '/admin/accounts', { 'q[$ne]': 'x' }, '/admin/accounts');
    expect(operatorShaped.status).toBe(400);
    const noSuchId = await browser.get(`${srv.adminUrl}/admin/accounts/${crypto.randomUUID()}`);
    expect(noSuchId.status).toBe(404);
    const badId = await browser.get(`${srv.adminUrl}/admin/accounts/${encodeURIComponent('{"$ne":1}')}`);
    expect(badId.status).toBe(404);
  });

  it('raising to level 2 is a proposal (level unchanged) that a second helpdesk operator approves, never the proposer', async () => {
    const c = await citizen({ atPortal: false });
    const browser = await consoleAs(helpdesk);
    const reason = 'Đối chiếu CCCD gắn chip tại quầy một cửa';
    const res = await consolePost(srv, browser, `${accountPath(c.id)}/level`, {
      level: '2', reason, document_type: 'cccd-chip', document_number: '001090654321', place: 'Bộ phận một cửa, phường Hoàn Kiếm',
    }, accountPath(c.id));
    expect(res.status).toBe(200);
    const approval = new URL(res.url).searchParams.get('approval')!;
    expect(new URL(res.url).searchParams.get('done')).toBe('proposed');
    expect(statusText(res)).toContain(approval);
    expect(statusText(res)).toContain('Đã gửi đề xuất');
    expect((await person(c.id)).level).toBe(1);
    expect(res.text).toContain(`data-approval="${approval}"`);

    const [proposed] = await audit({ event: 'APPROVAL_PROPOSED', operator: helpdesk.id });
    expect(proposed!.details).toMatchObject({ approval, action: 'set-level-2', subject: c.id, operator: helpdesk.id, role: 'helpdesk', via: 'console', reason });

    // The proposer cannot approve their own proposal.
    await expect(srv.system.adminActions.approvals.approve(actorOf(helpdesk), approval, 'tự phê duyệt')).rejects.toMatchObject({ code: 'forbidden' });
    expect((await person(c.id)).level).toBe(1);
    // A second helpdesk operator can.
    const decided = await srv.system.adminActions.approvals.approve(actorOf(helpdesk2), approval, 'Đã kiểm tra hồ sơ đối chiếu');
    expect(decided.outcome).toBe('done: identity level 2');
    expect((await person(c.id)).level).toBe(2);
    const [changed] = await audit({ event: 'ACCOUNT_LEVEL_CHANGED', person: c.id });
    expect(changed!.details).toMatchObject({ from: 1, to: 2, operator: helpdesk.id, approved_by: helpdesk2.id, approval, document: '********4321' });

    const page = await browser.get(`${srv.adminUrl}${accountPath(c.id)}`);
    expect(page.text).toContain('Mức 2');
    expect(page.text).not.toContain(`data-approval="${approval}"`);
  });

  it('a fraud lock ends everything, and its unlock is a proposal until a second operator approves', async () => {
    const c = await citizen();
    const browser = await consoleAs(helpdesk);
    const locked = await consolePost(srv, browser, `${accountPath(c.id)}/lock-fraud`, { reason: 'Nghi chiếm đoạt tài khoản, theo công văn của công an' }, accountPath(c.id));
    expect(statusText(locked)).toContain('nghi gian lận');
    expect(await person(c.id)).toMatchObject({ status: 'locked', lockReason: 'fraud' });
    expect(await silentAtPortal(c.browser)).toBe('login_required');
    // A plain lock cannot replace it.
    const relock = await consolePost(srv, browser, `${accountPath(c.id)}/lock`, { reason: 'khóa thường thay khóa gian lận' }, accountPath(c.id));
    expect([relock.status, relock.text.includes('role="alert"')]).toEqual([409, true]);
    expect((await person(c.id)).lockReason).toBe('fraud');

    const unlock = await consolePost(srv, browser, `${accountPath(c.id)}/unlock`, { reason: 'Công an xác nhận đã xử lý xong vụ việc' }, accountPath(c.id));
    const approval = new URL(unlock.url).searchParams.get('approval')!;
    expect(statusText(unlock)).toContain(approval);
    expect((await person(c.id)).status).toBe('locked');
    await expect(srv.system.adminActions.approvals.approve(actorOf(helpdesk), approval, 'tự phê duyệt')).rejects.toMatchObject({ code: 'forbidden' });
    await srv.system.adminActions.approvals.approve(actorOf(helpdesk2), approval, 'Đã xem công văn xác nhận');
    expect(await person(c.id)).toMatchObject({ status: 'active', lockReason: null });
    const [unlocked] = await audit({ event: 'ACCOUNT_UNLOCKED', person: c.id });
    expect(unlocked!.details).toMatchObject({ was: 'locked:fraud', operator: helpdesk.id, approved_by: helpdesk2.id, approval });
  });

  it('resets second factors only with a second factor proven in the last 5 minutes, then with reason and evidence', async () => {
    const c = await citizen({ atPortal: false });
    const factorId = crypto.randomUUID();
    await srv.system.store.factors.create({
      id: factorId, personId: c.id, type: 'totp', label: 'Điện thoại', confirmed: true,
      secretCiphertext: srv.system.secretBox.seal('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', `totp:${factorId}`), credentialId: null, publicKey: null, signCount: null, transports: null,
    });
    const browser = await consoleAs(helpdesk);
    const csrfPage = await browser.get(`${srv.adminUrl}${accountPath(c.id)}`);
    expect(csrfPage.text).toContain('data-testid="account-factor"');
    const fields = { _csrf: hiddenField(csrfPage.text, '_csrf'), reason: 'Công dân mất điện thoại, đến quầy', evidence: 'Đối chiếu CCCD trực tiếp tại quầy' };

    tick(6 * 60_000);
    const stale = await browser.post(`${srv.adminUrl}${accountPath(c.id)}/reset-mfa`, fields);
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('data-testid="reauth-link"');
    expect(await srv.system.store.factors.listForPerson(c.id)).toHaveLength(1);
    const level = await browser.post(`${srv.adminUrl}${accountPath(c.id)}/level`, { _csrf: fields._csrf, level: '2', reason: fields.reason, document_type: 'cccd', document_number: '001090123123', place: 'Quầy một cửa' });
    expect(level.status).toBe(403);
    expect(level.text).toContain('data-testid="reauth-link"');

    // Authenticated again (a new app code): the reset goes through.
    tick();
    await consoleSignIn(srv, helpdesk, { browser, codeAt: now(), reauth: true, returnTo: accountPath(c.id) });
    const done = await browser.post(`${srv.adminUrl}${accountPath(c.id)}/reset-mfa`, fields);
    expect(done.status).toBe(200);
    expect(statusText(done)).toContain('Đã đặt lại yếu tố thứ hai');
    expect(await srv.system.store.factors.listForPerson(c.id)).toHaveLength(0);
    const [entry] = await audit({ event: 'ACCOUNT_MFA_RESET', person: c.id });
    expect(entry!.details).toMatchObject({ operator: helpdesk.id, role: 'helpdesk', via: 'console', reason: fields.reason, evidence: expect.any(String), factors_removed: 1 });
  });

  it('clears the attention flag with a reason; a second clear is refused as a conflict', async () => {
    const c = await citizen({ atPortal: false });
    await srv.system.store.persons.setAttention(c.id, { reason: 'not_me', at: now() });
    const browser = await consoleAs(helpdesk);
    const page = await browser.get(`${srv.adminUrl}${accountPath(c.id)}`);
    expect(page.text).toContain('data-testid="action-clear-attention"');
    const done = await consolePost(srv, browser, `${accountPath(c.id)}/clear-attention`, { reason: 'Đã gọi điện xác nhận với công dân' }, accountPath(c.id));
    expect(statusText(done)).toContain('Đã bỏ cờ');
    expect((await person(c.id)).attention).toBeNull();
    const again = await consolePost(srv, browser, `${accountPath(c.id)}/clear-attention`, { reason: 'Đã gọi điện xác nhận với công dân' }, accountPath(c.id));
    expect([again.status, again.text.includes('role="alert"')]).toEqual([409, true]);
  });
});

describe('refusals: nothing changes', () => {
  it('an auditor or integration operator gets 403 on the pages and on a direct POST with a valid CSRF token', async () => {
    const c = await citizen({ atPortal: false });
    for (const op of [auditor, integration]) {
      const browser = await consoleAs(op);
      const dashboard = await browser.get(`${srv.adminUrl}/admin`);
      expect(dashboard.status).toBe(200);
      expect(dashboard.text).not.toContain('href="/admin/accounts"');
      for (const path of ['/admin/accounts', accountPath(c.id), `${accountPath(c.id)}/history`]) {
        const res = await browser.get(`${srv.adminUrl}${path}`);
        expect([op.roles[0], path, res.status]).toEqual([op.roles[0], path, 403]);
      }
      const csrf = hiddenField(dashboard.text, '_csrf');
      for (const [path, fields] of [
        ['/lock', { reason: 'thử khóa không có quyền' }],
        ['/lock-fraud', { reason: 'thử khóa không có quyền' }],
        ['/level', { level: '2', reason: 'thử nâng mức không có quyền', document_type: 'cccd', document_number: '001090123123', place: 'Quầy một cửa' }],
      ] as const) {
        const res = await browser.post(`${srv.adminUrl}${accountPath(c.id)}${path}`, { _csrf: csrf, ...fields });
        expect([op.roles[0], path, res.status]).toEqual([op.roles[0], path, 403]);
      }
      const search = await browser.post(`${srv.adminUrl}/admin/accounts`, { _csrf: csrf, q: c.pid });
      expect(search.status).toBe(403);
      expect(search.location).toBeNull();
    }
    expect(await person(c.id)).toMatchObject({ status: 'active', level: 1 });
    expect(await audit({ person: c.id, event: 'ACCOUNT_LOCKED' })).toHaveLength(0);
    expect(await audit({ event: 'APPROVAL_PROPOSED', operator: auditor.id })).toHaveLength(0);
    const refused = await audit({ event: 'CONSOLE_ACCESS_REFUSED', operator: auditor.id });
    expect(refused.map((e) => e.details.permission)).toEqual(expect.arrayContaining(['accounts.read', 'accounts.act']));
  });

  it('malformed forms are 400 and change nothing: operator-shaped fields, a missing, short or 501-character reason, unknown fields, a bad level', async () => {
    const c = await citizen({ atPortal: false });
    const browser = await consoleAs(helpdesk);
    const page = await browser.get(`${srv.adminUrl}${accountPath(c.id)}`);
    const csrf = hiddenField(page.text, '_csrf');
    const cases: Array<[string, Record<string, string>]> = [
      ['/lock', { 'reason[$ne]': 'x' }],
      ['/lock', {}],
      ['/lock', { reason: 'x'.repeat(501) }],
      ['/lock', { reason: 'ab' }],
      ['/lock', { reason: '   \n  ' }],
      ['/lock', { reason: 'lý do hợp lệ nhưng', extra: '1' }],
      ['/lock', { reason: 'lý do hợp lệ', 'reason.$gt': '' }],
      ['/lock-fraud', { reason: 'x'.repeat(501) }],
      ['/unlock', {}],
      ['/clear-attention', { 'reason[$ne]': 'x' }],
      ['/level', { level: '3', reason: 'lý do hợp lệ' }],
      ['/level', { level: '2', reason: 'lý do hợp lệ', document_type: 'bằng lái', document_number: '001090123123', place: 'Quầy' }],
      ['/level', { level: '2', reason: 'lý do hợp lệ', document_type: 'cccd', document_number: '1', place: 'Quầy' }],
      ['/reset-mfa', { reason: 'lý do hợp lệ' }],
      ['/reset-mfa', { reason: 'lý do hợp lệ', evidence: 'x'.repeat(501) }],
    ];
    for (const [path, fields] of cases) {
      const res = await browser.post(`${srv.adminUrl}${accountPath(c.id)}${path}`, { _csrf: csrf, ...fields });
      expect([path, Object.keys(fields), res.status]).toEqual([path, Object.keys(fields), 400]);
      expect(res.text).toContain('role="alert"');
    }
    expect(await person(c.id)).toMatchObject({ status: 'active', level: 1 });
    expect(await audit({ person: c.id })).toEqual(expect.not.arrayContaining([expect.objectContaining({ event: expect.stringMatching(/^ACCOUNT_(LOCKED|UNLOCKED|LEVEL_CHANGED|MFA_RESET)$/) })]));
    expect(await audit({ event: 'APPROVAL_PROPOSED', operator: helpdesk.id })).toEqual(expect.not.arrayContaining([expect.objectContaining({ details: expect.objectContaining({ subject: c.id }) })]));
    // Without the CSRF token, or from another origin: refused too.
    const noCsrf = await browser.post(`${srv.adminUrl}${accountPath(c.id)}/lock`, { reason: 'lý do hợp lệ' });
    expect(noCsrf.status).toBeGreaterThanOrEqual(400);
    expect(noCsrf.status).toBeLessThan(500);
    const crossSite = await browser.post(`${srv.adminUrl}${accountPath(c.id)}/lock`, { _csrf: csrf, reason: 'lý do hợp lệ' }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect((await person(c.id)).status).toBe('active');
  });

  it('an operator acting on their own account is refused (the page offers no action, a direct POST is 403)', async () => {
    const browser = await consoleAs(helpdesk);
    const page = await browser.get(`${srv.adminUrl}${accountPath(helpdesk.id)}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-testid="own-account"');
    expect(page.text).not.toContain('data-testid="action-lock"');
    const csrf = hiddenField(page.text, '_csrf');
    for (const [path, fields] of [
      ['/lock', { reason: 'tự khóa tài khoản của mình' }],
      ['/unlock', { reason: 'tự mở khóa tài khoản của mình' }],
      ['/level', { level: '1', reason: 'tự hạ mức của mình' }],
      ['/reset-mfa', { reason: 'tự đặt lại yếu tố', evidence: 'không có bằng chứng' }],
    ] as const) {
      const res = await browser.post(`${srv.adminUrl}${accountPath(helpdesk.id)}${path}`, { _csrf: csrf, ...fields });
      expect([path, res.status, res.text.includes('role="alert"')]).toEqual([path, 403, true]);
    }
    expect(await person(helpdesk.id)).toMatchObject({ status: 'active', level: 2 });
    expect(await srv.system.store.factors.listForPerson(helpdesk.id)).toHaveLength(1);
  });
});
