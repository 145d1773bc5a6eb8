/**
 * The console's operators section (role `admin`: operators.read / operators.act), through the real
 * console listener with operators signed in through dinhdanh: the list (masked numbers), adding an
 * operator with roles and a reason, changing another operator's roles on the revision the page
 * showed (a stale one is a 409 and changes nothing), nobody changing their own roles, a removal
 * proposed by one admin and approved by a second (two-person control), the role check of pages and
 * of direct POSTs, malformed forms, and the fresh second factor these dangerous actions need.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { decodeEntities, hiddenField } from '../helpers/browser.js';
import { consolePost, consoleTestKit, pageText as text, statusText, type TestOperator } from '../helpers/console.js';

const kit = consoleTestKit();
const { tick, reusedConsoleAs: consoleAs, audit } = kit;
let srv: TestServer;

let admin: TestOperator;
let admin2: TestOperator;
let helpdesk: TestOperator;

beforeAll(async () => {
  srv = await kit.start();
  admin = await kit.operator(['admin']);
  admin2 = await kit.operator(['admin', 'auditor']);
  helpdesk = await kit.operator(['helpdesk']);
});
afterAll(() => kit.close());

/** Every operator-management event so far: a refused request must add none. */
async function operatorEvents(): Promise<number> {
  await srv.system.audit.flush();
  let n = 0;
  for (const event of ['OPERATOR_ADDED', 'OPERATOR_ROLES_CHANGED', 'OPERATOR_REMOVED', 'APPROVAL_PROPOSED', 'APPROVAL_APPROVED']) n += await srv.system.store.audit.count({ event });
  return n;
}

const opPath = (id: string) => `/admin/operators/${id}`;
const rolesOf = async (id: string) => (await srv.system.store.operators.find(id))?.roles;

let people = 0;
/** A citizen at level 2 (the kind of person who becomes an operator). */
async function person() {
  people += 1;
  return srv.addPerson({ pid: `001090${String(770000 + people)}`, level: '2', name: 'Lê Văn Mới' });
}

describe('the operators list', () => {
  it('shows each operator with a masked number, name, level, roles, who added them and when; no change controls for oneself', async () => {
    const browser = await consoleAs(admin);
    const list = await browser.get(`${srv.adminUrl}/admin/operators`);
    expect(list.status).toBe(200);
    expect([...list.text.matchAll(/<h1>/g)]).toHaveLength(1);
    for (const op of [admin, admin2, helpdesk]) {
      expect(list.text).toContain(`data-operator="${op.id}"`);
      expect(list.text).toContain(`*********${op.pid.slice(9)}`);
      expect(list.text).not.toContain(op.pid);
    }
    const mine = list.text.split('data-testid="operator-row"').find((r) => r.includes(`data-operator="${admin.id}"`))!;
    expect(decodeEntities(mine)).toContain('bạn');
    expect(decodeEntities(mine)).toContain('quản trị người vận hành');
    expect(decodeEntities(mine)).toContain('cli:test');
    expect(text(list)).toContain('Mức 2');
    // The add form: the number, one checkbox per role, a reason.
    for (const field of ['name="pid"', 'name="role_helpdesk"', 'name="role_admin"', 'name="reason"', 'name="_csrf"']) expect(list.text).toContain(field);
    expect(list.text).not.toContain('name="role"');

    const own = await browser.get(`${srv.adminUrl}${opPath(admin.id)}`);
    expect(own.status).toBe(200);
    expect(own.text).toContain('data-testid="operator-self"');
    expect(own.text).not.toContain('data-testid="operator-roles-form"');
    expect(own.text).not.toContain('data-testid="operator-remove-form"');
    const other = await browser.get(`${srv.adminUrl}${opPath(helpdesk.id)}`);
    expect(other.text).toContain('data-testid="operator-roles-form"');
    expect(other.text).toContain('data-testid="operator-remove-form"');
    expect(other.text).toMatch(/name="role_helpdesk" value="on"[^>]*checked/);
  });

  it('answers an unknown or malformed operator id with 404, never a 500', async () => {
    const browser = await consoleAs(admin);
    for (const id of ['00000000-0000-0000-0000-000000000000', encodeURIComponent('{"$ne":1}'), 'a'.repeat(80)]) {
      const res = await browser.get(`${srv.adminUrl}/admin/operators/${id}`);
      expect([id, res.status]).toEqual([id, 404]);
    }
    const page = await browser.get(`${srv.adminUrl}/admin/operators?page=abc`);
    expect(page.status).toBe(200);
  });
});

describe('adding an operator', () => {
  it('adds a person with the roles ticked, recorded with the admin, role and reason (OPERATOR_ADDED)', async () => {
    const p = await person();
    const browser = await consoleAs(admin);
    const reason = 'Nhân viên mới của bộ phận một cửa, theo quyết định 12/QĐ';
    const res = await consolePost(srv, browser, '/admin/operators', { pid: p.pid, role_helpdesk: 'on', role_auditor: 'on', reason }, '/admin/operators');
    expect(res.status).toBe(200);
    expect(new URL(res.url).pathname).toBe(opPath(p.id));
    expect(new URL(res.url).search).toBe('?done=added');
    expect(statusText(res)).toContain('Đã thêm người vận hành');
    expect(await rolesOf(p.id)).toEqual(['helpdesk', 'auditor']);
    const [entry] = await audit('OPERATOR_ADDED');
    expect(entry!.details).toMatchObject({ operator: admin.id, role: 'admin', via: 'console', reason, person: p.id, roles: ['helpdesk', 'auditor'] });
    expect(JSON.stringify(entry!.details)).not.toContain(p.pid);

    // Added twice: a conflict, said on the page, and nothing changes.
    const before = await operatorEvents();
    const again = await consolePost(srv, browser, '/admin/operators', { pid: p.pid, role_keys: 'on', reason }, '/admin/operators');
    expect(again.status).toBe(409);
    expect(again.text).toContain('role="alert"');
    expect(await rolesOf(p.id)).toEqual(['helpdesk', 'auditor']);
    expect(await operatorEvents()).toBe(before);
  });

  it('refuses an unknown number (404) and no roles (400), keeping what was typed', async () => {
    const browser = await consoleAs(admin);
    const count = await srv.system.store.operators.count();
    const unknown = await consolePost(srv, browser, '/admin/operators', { pid: '001090999991', role_keys: 'on', reason: 'Thêm người quản lý khóa' }, '/admin/operators');
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('value="001090999991"');
    expect(unknown.text).toMatch(/name="role_keys" value="on"[^>]*checked/);
    const p = await person();
    const none = await consolePost(srv, browser, '/admin/operators', { pid: p.pid, reason: 'Thêm mà không có vai trò' }, '/admin/operators');
    expect(none.status).toBe(400);
    expect(none.text).toContain('role="alert"');
    expect(await srv.system.store.operators.count()).toBe(count);
  });
});

describe('changing roles', () => {
  it('replaces another operator\'s roles on the revision the page showed (OPERATOR_ROLES_CHANGED); a stale revision is a 409 with the current roles shown, and changes nothing', async () => {
    const target = await kit.operator(['helpdesk']);
    const browser = await consoleAs(admin);
    const page = await browser.get(`${srv.adminUrl}${opPath(target.id)}`);
    const rev = hiddenField(page.text, 'rev');
    const reason = 'Chuyển sang nhóm quản lý khóa ký';
    const res = await browser.post(`${srv.adminUrl}${opPath(target.id)}/roles`, { _csrf: hiddenField(page.text, '_csrf'), rev, role_keys: 'on', reason });
    expect(res.status).toBe(200);
    expect(new URL(res.url).search).toBe('?done=roles');
    expect(await rolesOf(target.id)).toEqual(['keys']);
    const [entry] = await audit('OPERATOR_ROLES_CHANGED');
    expect(entry!.details).toMatchObject({ operator: admin.id, role: 'admin', via: 'console', reason, person: target.id, from: ['helpdesk'], to: ['keys'] });

    // The same form sent again (the revision it carried has moved on): refused, said clearly.
    const before = await operatorEvents();
    const stale = await browser.post(`${srv.adminUrl}${opPath(target.id)}/roles`, { _csrf: hiddenField(page.text, '_csrf'), rev, role_admin: 'on', reason });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('data-testid="roles-stale"');
    expect(text(stale)).toContain('vừa được người khác thay đổi');
    expect(await rolesOf(target.id)).toEqual(['keys']);
    expect(await operatorEvents()).toBe(before);
    // The page now carries the current revision: sending from it works.
    const retried = await browser.post(`${srv.adminUrl}${opPath(target.id)}/roles`, { _csrf: hiddenField(stale.text, '_csrf'), rev: hiddenField(stale.text, 'rev'), role_keys: 'on', role_auditor: 'on', reason });
    expect(retried.status).toBe(200);
    expect(await rolesOf(target.id)).toEqual(['keys', 'auditor']);
  });

  it('nobody changes their own roles or removes themself: refused (403), nothing changed', async () => {
    const browser = await consoleAs(admin);
    const before = await operatorEvents();
    const rev = String((await srv.system.store.operators.find(admin.id))!.rev);
    const roles = await consolePost(srv, browser, `${opPath(admin.id)}/roles`, { rev, role_admin: 'on', role_helpdesk: 'on', reason: 'Tự thêm vai trò hỗ trợ' }, '/admin/operators');
    expect(roles.status).toBe(403);
    expect(roles.text).toContain('role="alert"');
    expect(roles.text).toContain('no one changes their own roles');
    const remove = await consolePost(srv, browser, `${opPath(admin.id)}/remove`, { reason: 'Tự xóa khỏi danh sách' }, '/admin/operators');
    expect(remove.status).toBe(403);
    const add = await consolePost(srv, browser, '/admin/operators', { pid: admin.pid, role_keys: 'on', reason: 'Tự thêm lại chính mình' }, '/admin/operators');
    expect(add.status).toBe(403);
    expect(await rolesOf(admin.id)).toEqual(['admin']);
    expect(await operatorEvents()).toBe(before);
  });
});

describe('the admin role', () => {
  // One admin must not demote the others at once (and become the last, irremovable one), nor mint
  // the second person of their own two-person control by granting admin to someone.
  it('is granted or taken away only by a proposal a second admin approves; other roles change at once', async () => {
    const target = await kit.operator(['auditor']);
    const browser = await consoleAs(admin);
    const rev = (await srv.system.store.operators.find(target.id))!.rev;
    const grant = await consolePost(srv, browser, `${opPath(target.id)}/roles`, { rev: String(rev), role_auditor: 'on', role_admin: 'on', reason: 'Cần thêm một quản trị viên trực đêm' }, opPath(target.id));
    expect(new URL(grant.url).pathname).toMatch(/^\/admin\/approvals\/[0-9a-f-]{36}$/);
    expect(await rolesOf(target.id)).toEqual(['auditor']);
    const approval = new URL(grant.url).pathname.split('/').pop()!;
    const second = await consoleAs(admin2);
    const done = await consolePost(srv, second, `/admin/approvals/${approval}/approve`, { reason: 'Đã xác minh với lãnh đạo đơn vị' }, `/admin/approvals/${approval}`);
    expect(done.status).toBe(200);
    expect(await rolesOf(target.id)).toEqual(['auditor', 'admin']);
    const [changed] = await audit('OPERATOR_ROLES_CHANGED');
    expect(changed!.details).toMatchObject({ operator: admin.id, approved_by: admin2.id, person: target.id, to: ['auditor', 'admin'] });

    // Taking it away again: a proposal too, whichever admin asks.
    const rev2 = (await srv.system.store.operators.find(target.id))!.rev;
    const demote = await consolePost(srv, second, `${opPath(target.id)}/roles`, { rev: String(rev2), role_auditor: 'on', reason: 'Hết ca trực đêm' }, opPath(target.id));
    expect(new URL(demote.url).pathname).toMatch(/^\/admin\/approvals\//);
    expect(await rolesOf(target.id)).toEqual(['auditor', 'admin']);

    // A new operator is never added as an admin directly.
    const p = await person();
    const added = await consolePost(srv, browser, '/admin/operators', { pid: p.pid, role_admin: 'on', reason: 'Thêm quản trị viên mới' }, '/admin/operators');
    expect(added.status).toBe(400);
    expect(await rolesOf(p.id)).toBeUndefined();
  });
});

describe('removing an operator', () => {
  it('is a proposal (the operator stays) that a second admin approves (OPERATOR_REMOVED with approved_by); the proposer cannot approve it', async () => {
    const target = await kit.operator(['integration']);
    const browser = await consoleAs(admin);
    const reason = 'Đã chuyển công tác sang đơn vị khác';
    const res = await consolePost(srv, browser, `${opPath(target.id)}/remove`, { reason }, opPath(target.id));
    expect(res.status).toBe(200);
    const approval = /^\/admin\/approvals\/([0-9a-f-]{36})$/.exec(new URL(res.url).pathname)![1]!;
    expect(new URL(res.url).search).toBe('?done=proposed');
    expect(statusText(res)).toContain(approval);
    expect(res.text).toContain('data-state="pending"');
    expect(await rolesOf(target.id)).toEqual(['integration']);
    // The operator's page says a removal is waiting, and does not offer another.
    const page = await browser.get(`${srv.adminUrl}${opPath(target.id)}`);
    expect(page.text).toContain('data-testid="removal-pending"');
    expect(page.text).not.toContain('data-testid="operator-remove-form"');

    // The proposer is shown no buttons, and a direct POST is refused.
    expect(res.text).not.toContain('data-testid="approve-form"');
    const own = await consolePost(srv, browser, `/admin/approvals/${approval}/approve`, { reason: 'Tự phê duyệt đề xuất của mình' }, `/admin/approvals/${approval}`);
    expect(own.status).toBe(403);
    expect(await rolesOf(target.id)).toEqual(['integration']);

    const second = await consoleAs(admin2);
    const shown = await second.get(`${srv.adminUrl}/admin/approvals/${approval}`);
    expect(shown.text).toContain('data-testid="approve-form"');
    const approveReason = 'Đã xác nhận với phòng tổ chức cán bộ';
    const done = await consolePost(srv, second, `/admin/approvals/${approval}/approve`, { reason: approveReason }, `/admin/approvals/${approval}`);
    expect(done.status).toBe(200);
    expect(done.text).toContain('data-state="approved"');
    expect(decodeEntities(done.text)).toContain('done: removed');
    expect(await rolesOf(target.id)).toBeUndefined();
    const [entry] = await audit('OPERATOR_REMOVED');
    expect(entry!.details).toMatchObject({
      operator: admin.id, role: 'admin', reason, person: target.id,
      approved_by: admin2.id, approver_role: 'admin', approval_reason: approveReason, approval,
    });
    // The removed operator's page is gone.
    expect((await second.get(`${srv.adminUrl}${opPath(target.id)}`)).status).toBe(404);
  });
});

describe('role checks', () => {
  it('a helpdesk operator cannot open the operators pages nor post to them directly (403, audited), and nothing changes', async () => {
    const browser = await consoleAs(helpdesk);
    const home = await browser.get(`${srv.adminUrl}/admin/approvals`);
    expect(home.status).toBe(200);
    expect(home.text).not.toContain('href="/admin/operators"');
    for (const path of ['/admin/operators', opPath(admin.id)]) {
      const res = await browser.get(`${srv.adminUrl}${path}`);
      expect([path, res.status]).toEqual([path, 403]);
    }
    const p = await person();
    const before = await operatorEvents();
    const count = await srv.system.store.operators.count();
    const rev = String((await srv.system.store.operators.find(admin2.id))!.rev);
    // A valid CSRF token (from a page every operator opens): only the role stands in the way.
    const posts: Array<[string, Record<string, string>]> = [
      ['/admin/operators', { pid: p.pid, role_admin: 'on', reason: 'Tự cấp quyền quản trị' }],
      [`${opPath(admin2.id)}/roles`, { rev, role_helpdesk: 'on', reason: 'Hạ quyền quản trị viên' }],
      [`${opPath(admin2.id)}/remove`, { reason: 'Xóa quản trị viên' }],
    ];
    for (const [path, fields] of posts) {
      const res = await consolePost(srv, browser, path, fields, '/admin/approvals');
      expect([path, res.status]).toEqual([path, 403]);
    }
    expect(await srv.system.store.operators.count()).toBe(count);
    expect(await rolesOf(admin2.id)).toEqual(['admin', 'auditor']);
    expect(await operatorEvents()).toBe(before);
    const refused = (await audit('CONSOLE_ACCESS_REFUSED')).filter((e) => e.details.operator === helpdesk.id);
    expect(refused.map((e) => e.details.permission)).toEqual(expect.arrayContaining(['operators.read', 'operators.act']));
  });
});

describe('bad input', () => {
  it('malformed forms are 400 and change nothing', async () => {
    const target = await kit.operator(['keys']);
    const p = await person();
    const browser = await consoleAs(admin);
    const page = await browser.get(`${srv.adminUrl}${opPath(target.id)}`);
    const csrf = hiddenField(page.text, '_csrf');
    const rev = hiddenField(page.text, 'rev');
    const reason = 'Lý do hợp lệ cho thao tác';
    const before = await operatorEvents();
    const count = await srv.system.store.operators.count();
    const cases: Array<[string, Record<string, string>]> = [
      ['/admin/operators', { pid: p.pid, role: 'admin', reason }],
      ['/admin/operators', { 'pid[$ne]': 'x', role_admin: 'on', reason }],
      ['/admin/operators', { pid: p.pid, role_admin: 'yes', reason }],
      ['/admin/operators', { pid: p.pid, role_admin: 'on' }],
      ['/admin/operators', { pid: p.pid, role_admin: 'on', reason: 'x' }],
      ['/admin/operators', { pid: p.pid, role_admin: 'on', reason: 'quá dài '.repeat(80) }],
      ['/admin/operators', { pid: p.pid, role_admin: 'on', reason: 'có ký tự\u0007điều khiển' }],
      ['/admin/operators', { pid: '12345', role_admin: 'on', reason }],
      [`${opPath(target.id)}/roles`, { rev: 'abc', role_admin: 'on', reason }],
      [`${opPath(target.id)}/roles`, { role_admin: 'on', reason }],
      [`${opPath(target.id)}/roles`, { rev, role_superuser: 'on', reason }],
      [`${opPath(target.id)}/roles`, { rev, reason }],
      [`${opPath(target.id)}/remove`, { reason: '' }],
      [`${opPath(target.id)}/remove`, { reason, 'reason[$gt]': '' }],
    ];
    for (const [path, fields] of cases) {
      const res = await browser.post(`${srv.adminUrl}${path}`, { _csrf: csrf, ...fields });
      expect([path, fields, res.status]).toEqual([path, fields, 400]);
    }
    // The same key twice (a `role` list the way browsers send checkboxes) is malformed too.
    const twice = await browser.request(`${srv.adminUrl}/admin/operators`, {
      method: 'POST', headers: { origin: srv.adminUrl },
      body: `_csrf=${encodeURIComponent(csrf)}&pid=${p.pid}&role_admin=on&role_admin=on&reason=${encodeURIComponent(reason)}`,
    });
    expect(twice.status).toBe(400);
    // No CSRF token, another origin.
    expect((await browser.post(`${srv.adminUrl}/admin/operators`, { pid: p.pid, role_admin: 'on', reason })).status).toBe(403);
    expect((await browser.post(`${srv.adminUrl}/admin/operators`, { _csrf: csrf, pid: p.pid, role_admin: 'on', reason }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await srv.system.store.operators.count()).toBe(count);
    expect(await rolesOf(target.id)).toEqual(['keys']);
    expect(await srv.system.store.operators.find(p.id)).toBeUndefined();
    expect(await operatorEvents()).toBe(before);
  });

  it('a change more than 5 minutes after the second factor asks for it again, and changes nothing', async () => {
    const p = await person();
    const browser = await consoleAs(admin);
    const page = await browser.get(`${srv.adminUrl}/admin/operators`);
    tick(6 * 60_000);
    const res = await browser.post(`${srv.adminUrl}/admin/operators`, { _csrf: hiddenField(page.text, '_csrf'), pid: p.pid, role_keys: 'on', reason: 'Thêm người quản lý khóa' });
    expect(res.status).toBe(403);
    expect(res.text).toContain('data-testid="reauth-link"');
    expect(await srv.system.store.operators.find(p.id)).toBeUndefined();
  });
});
