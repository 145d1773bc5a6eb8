/**
 * The console's enterprises and delegations (helpdesk: orgs.read / orgs.act), through the real
 * console listener with operators signed in through dinhdanh: the paged list and the search by
 * enterprise code, an enterprise's page (masked numbers only), suspending and reactivating it and
 * revoking and granting a delegation through the OrgService — each in the hash-chained audit log
 * with the operator — and the refusals: other roles (pages and direct POSTs with a valid CSRF
 * token), an operator with a stake in the enterprise, malformed codes and forms, a stale second
 * factor. Nothing changes on a refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { decodeEntities, hiddenField } from '../helpers/browser.js';
import { consolePost, consoleSignIn, consoleTestKit, pageText as text, statusText, type TestOperator } from '../helpers/console.js';
import { verifyAuditLog } from '../../src/audit/index.js';
import type { AuditEntry } from '../../src/store/index.js';

const CLI = { operator: 'test' } as const;

const kit = consoleTestKit();
const { now, tick, consoleAs } = kit;
let srv: TestServer;

let helpdesk: TestOperator;
let auditor: TestOperator;
let integration: TestOperator;

beforeAll(async () => {
  srv = await kit.start();
  helpdesk = await kit.operator(['helpdesk']);
  auditor = await kit.operator(['auditor']);
  integration = await kit.operator(['integration']);
});
afterAll(() => kit.close());

let people = 0;
const addPerson = (name = 'Nguyễn Văn An') => {
  people += 1;
  return srv.addPerson({ pid: `001090${String(720000 + people)}`, name });
};

let enterprises = 0;
/** An enterprise with a legal representative and a delegate (ke-toan), registered the way the CLI does. */
async function enterprise(options: { branch?: boolean } = {}) {
  enterprises += 1;
  const code = `01${String(enterprises).padStart(8, '0')}`;
  const rep = await addPerson('Lê Thị Đại Diện');
  const staff = await addPerson('Phạm Văn Kế Toán');
  await srv.system.orgs.register({ code, name: `Công ty TNHH Thử Nghiệm ${enterprises}`, representatives: [rep.pid] }, CLI);
  if (options.branch) await srv.system.orgs.register({ code: `${code}-001`, name: 'Chi nhánh Đà Nẵng', representatives: [] }, CLI);
  await srv.system.orgs.delegate({ code, pid: staff.pid, role: 'ke-toan' }, CLI);
  return { code, rep, staff };
}

async function audit(event: string, code?: string): Promise<AuditEntry[]> {
  const rows = await kit.audit(event, 200);
  return code === undefined ? rows : rows.filter((e) => e.details.org === code);
}

const orgPath = (code: string) => `/admin/orgs/${code}`;
const statusOf = async (code: string) => (await srv.system.store.orgs.findEnterprise(code))!.status;
/** A date `days` from the test's clock, as the form takes it (YYYY-MM-DD, Vietnam time). */
const dayFromNow = (days: number) => new Date(now() + days * 86_400_000 + 7 * 3600_000).toISOString().slice(0, 10);

describe('its own listener', () => {
  it('is 404 on the public listener', async () => {
    for (const path of ['/admin/orgs', '/admin/orgs/0101234567', '/admin/orgs/0101234567/suspend']) {
      const res = await fetch(`${srv.issuer}${path}`, { redirect: 'manual' });
      expect([path, res.status]).toEqual([path, 404]);
    }
  });
});

describe('a helpdesk operator', () => {
  it('lists enterprises, finds one by its code (posted or ?q=) and sees its branches, representatives and delegations with masked numbers', async () => {
    const { code, rep, staff } = await enterprise({ branch: true });
    const browser = await consoleAs(helpdesk);

    const dashboard = await browser.get(`${srv.adminUrl}/admin`);
    expect(dashboard.text).toContain('href="/admin/orgs"');
    const list = await browser.get(`${srv.adminUrl}/admin/orgs`);
    expect(list.status).toBe(200);
    expect([...list.text.matchAll(/<h1>/g)]).toHaveLength(1);
    expect(list.text).toContain('name="q"');
    expect(list.text).toContain(`data-testid="org-row" data-code="${code}" data-status="active"`);
    expect(list.text).toContain(`data-code="${code}-001"`);

    const found = await consolePost(srv, browser, '/admin/orgs', { q: ` ${code} ` }, '/admin/orgs');
    expect(found.status).toBe(200);
    expect(new URL(found.url).pathname).toBe(orgPath(code));
    const byGet = await browser.request(`${srv.adminUrl}/admin/orgs?q=${code}-001`);
    expect([byGet.status, byGet.location]).toEqual([303, `${srv.adminUrl}${orgPath(`${code}-001`)}`]);

    expect([...found.text.matchAll(/<h1>/g)]).toHaveLength(1);
    expect(/data-testid="org-status" data-status="([^"]+)"/.exec(found.text)![1]).toBe('active');
    expect(found.text).toContain(`data-testid="org-branch" data-code="${code}-001"`);
    expect(text(found)).toContain(`*********${rep.pid.slice(9)} Lê Thị Đại Diện`);
    expect(found.text).toContain(`data-testid="org-delegation" data-person="${staff.id}" data-state="in_force"`);
    expect(text(found)).toContain(`*********${staff.pid.slice(9)} Phạm Văn Kế Toán ke-toan`);
    for (const full of [rep.pid, staff.pid]) expect(found.text).not.toContain(full);
    for (const form of ['action-suspend', 'action-revoke', 'action-delegate']) expect(found.text).toContain(`data-testid="${form}"`);
    expect(found.text).not.toContain('data-testid="action-reactivate"');

    // The branch's page links its parent and offers its own suspension.
    const branch = await browser.get(`${srv.adminUrl}${orgPath(`${code}-001`)}`);
    expect(branch.status).toBe(200);
    expect(branch.text).toContain(`href="${orgPath(code)}"`);
    expect(branch.text).toContain('data-testid="action-suspend"');
  });

  it('suspends an enterprise with a reason (ORG_SUSPENDED with the operator and reason; its delegate can no longer act for it), then reactivates it', async () => {
    const { code, staff } = await enterprise({ branch: true });
    expect(await srv.system.orgs.accessFor(staff.id, code, null, now())).toBeDefined();
    const browser = await consoleAs(helpdesk);

    const reason = 'Cơ quan thuế thông báo doanh nghiệp tạm ngừng kinh doanh';
    const suspended = await consolePost(srv, browser, `${orgPath(code)}/suspend`, { reason }, orgPath(code));
    expect(suspended.status).toBe(200);
    expect(new URL(suspended.url).search).toBe('?done=suspended');
    expect(statusText(suspended)).toContain('Đã tạm ngừng doanh nghiệp');
    expect(/data-testid="org-status" data-status="([^"]+)"/.exec(suspended.text)![1]).toBe('suspended');
    expect(suspended.text).toContain('data-testid="action-reactivate"');
    expect(suspended.text).not.toContain('data-testid="action-suspend"');
    expect(await statusOf(code)).toBe('suspended');
    expect(await srv.system.orgs.accessFor(staff.id, code, null, now())).toBeUndefined();
    // The branch goes with it (it acts only through an active parent).
    expect(await srv.system.orgs.accessFor(staff.id, `${code}-001`, null, now())).toBeUndefined();

    const [entry, ...more] = await audit('ORG_SUSPENDED', code);
    expect(more).toHaveLength(0);
    expect(entry!.details).toMatchObject({ org: code, status: 'suspended', by: `operator:${helpdesk.id}`, operator: helpdesk.id, role: 'helpdesk', via: 'console', reason });

    // A second suspension is refused as a conflict, and nothing more is recorded.
    const again = await consolePost(srv, browser, `${orgPath(code)}/suspend`, { reason }, orgPath(code));
    expect([again.status, again.text.includes('role="alert"')]).toEqual([409, true]);
    expect(await audit('ORG_SUSPENDED', code)).toHaveLength(1);

    const back = 'Doanh nghiệp đã nộp thông báo hoạt động trở lại';
    const reactivated = await consolePost(srv, browser, `${orgPath(code)}/reactivate`, { reason: back }, orgPath(code));
    expect(reactivated.status).toBe(200);
    expect(statusText(reactivated)).toContain('hoạt động trở lại');
    expect(await statusOf(code)).toBe('active');
    expect(await srv.system.orgs.accessFor(staff.id, code, null, now())).toBeDefined();
    const [react] = await audit('ORG_REACTIVATED', code);
    expect(react!.details).toMatchObject({ org: code, status: 'active', by: `operator:${helpdesk.id}`, reason: back });
    const reactivateAgain = await consolePost(srv, browser, `${orgPath(code)}/reactivate`, { reason: back }, orgPath(code));
    expect(reactivateAgain.status).toBe(409);

    const verified = await verifyAuditLog(srv.system.store.audit);
    expect(verified.ok).toBe(true);
  });

  it('revokes a delegation (DELEGATION_REVOKED with the operator): the delegate can no longer act for the enterprise', async () => {
    const { code, staff } = await enterprise();
    const browser = await consoleAs(helpdesk);
    const page = await browser.get(`${srv.adminUrl}${orgPath(code)}`);
    expect(page.text).toContain(`<option value="${staff.id}">`);

    const revoked = await consolePost(srv, browser, `${orgPath(code)}/revoke`, { person: staff.id, reason: 'Người đại diện báo nhân viên đã nghỉ việc' }, orgPath(code));
    expect(revoked.status).toBe(200);
    expect(statusText(revoked)).toContain('Đã thu hồi ủy quyền');
    expect(revoked.text).toContain(`data-person="${staff.id}" data-state="revoked"`);
    expect((await srv.system.store.orgs.findDelegation(code, staff.id))!.revokedAt).not.toBeNull();
    expect(await srv.system.orgs.accessFor(staff.id, code, null, now())).toBeUndefined();
    const [entry] = await audit('DELEGATION_REVOKED', code);
    expect(entry!.details).toMatchObject({ org: code, person: staff.id, by: `operator:${helpdesk.id}`, operator: helpdesk.id, role: 'helpdesk', via: 'console', reason: 'Người đại diện báo nhân viên đã nghỉ việc' });

    // Revoked already, or nobody's delegation: refused, nothing more recorded.
    const again = await consolePost(srv, browser, `${orgPath(code)}/revoke`, { person: staff.id, reason: 'Thu hồi lần hai' }, orgPath(code));
    expect([again.status, again.text.includes('role="alert"')]).toEqual([409, true]);
    const nobody = await consolePost(srv, browser, `${orgPath(code)}/revoke`, { person: helpdesk.id, reason: 'Không có ủy quyền này' }, orgPath(code));
    expect([nobody.status, nobody.text.includes('role="alert"')]).toEqual([404, true]);
    expect(await audit('DELEGATION_REVOKED', code)).toHaveLength(1);
  });

  it('grants a delegation only with a second factor proven in the last 5 minutes (DELEGATION_GRANTED with the operator); refuses bad people and roles', async () => {
    const { code, rep } = await enterprise();
    const newcomer = await addPerson('Đỗ Thị Mới');
    const browser = await consoleAs(helpdesk);
    const page = await browser.get(`${srv.adminUrl}${orgPath(code)}`);
    const csrf = hiddenField(page.text, '_csrf');
    const until = dayFromNow(30);
    const fields = { _csrf: csrf, pid: newcomer.pid, role: 'nhan-vien-thue', until, reason: 'Giấy ủy quyền của người đại diện nộp tại quầy' };

    tick(6 * 60_000);
    const stale = await browser.post(`${srv.adminUrl}${orgPath(code)}/delegate`, fields, { origin: srv.adminUrl });
    expect(stale.status).toBe(403);
    expect(stale.text).toContain('data-testid="reauth-link"');
    expect(await srv.system.store.orgs.findDelegation(code, newcomer.id)).toBeUndefined();

    tick();
    await consoleSignIn(srv, helpdesk, { browser, codeAt: now(), reauth: true, returnTo: orgPath(code) });
    const done = await browser.post(`${srv.adminUrl}${orgPath(code)}/delegate`, fields, { origin: srv.adminUrl });
    expect(done.status).toBe(200);
    expect(statusText(done)).toContain('Đã ủy quyền');
    const d = (await srv.system.store.orgs.findDelegation(code, newcomer.id))!;
    expect(d).toMatchObject({ role: 'nhan-vien-thue', portals: null, grantedBy: `operator:${helpdesk.id}`, revokedAt: null });
    expect(d.until).toBeGreaterThan(now());
    expect(await srv.system.orgs.accessFor(newcomer.id, code, null, now())).toMatchObject({ role: 'nhan-vien-thue' });
    expect(done.text).toContain(`data-person="${newcomer.id}" data-state="in_force"`);
    // The end shows as the last day given, not as the midnight after it.
    const [y, m, day] = until.split('-').map(Number) as [number, number, number];
    expect(text(done)).toContain(`hết ngày ${day} thg ${m}, ${y}`);
    const [entry] = await audit('DELEGATION_GRANTED', code).then((rows) => rows.filter((e) => e.details.person === newcomer.id));
    expect(entry!.details).toMatchObject({ org: code, person: newcomer.id, role: 'nhan-vien-thue', by: `operator:${helpdesk.id}`, operator: helpdesk.id, operator_role: 'helpdesk', via: 'console', reason: expect.any(String) });

    // Refused input: shown on the page, nothing granted.
    const before = (await audit('DELEGATION_GRANTED', code)).length;
    for (const [what, extra, status] of [
      ['malformed number', { pid: '12345' }, 400],
      ['no account', { pid: '001090799999' }, 400],
      ['the legal representative', { pid: rep.pid }, 400],
      ['a bad role', { role: 'Kế Toán' }, 400],
      ['the reserved role', { role: 'legal-representative' }, 400],
      ['a past date', { until: '2001-01-01' }, 400],
      ['not a date', { until: '31/12/2030' }, 400],
      ['oneself', { pid: helpdesk.pid }, 403],
      ['a short reason', { reason: 'ok' }, 400],
    ] as const) {
      const res = await browser.post(`${srv.adminUrl}${orgPath(code)}/delegate`, { ...fields, ...extra }, { origin: srv.adminUrl });
      expect([what, res.status, res.text.includes('role="alert"')]).toEqual([what, status, true]);
    }
    expect(await audit('DELEGATION_GRANTED', code)).toHaveLength(before);
    expect(await srv.system.store.orgs.findDelegation(code, helpdesk.id)).toBeUndefined();
  });

  it('pages through the enterprises, 25 a page', async () => {
    for (let i = 0; i < 30; i++) {
      await srv.system.store.orgs.createEnterprise({ code: `09${String(i).padStart(8, '0')}`, name: `Hợp tác xã ${i}`, status: 'active', parentCode: null });
    }
    const browser = await consoleAs(helpdesk);
    const seen = new Set<string>();
    let path: string | null = '/admin/orgs';
    for (let pages = 0; path && pages < 20; pages++) {
      const res = await browser.get(`${srv.adminUrl}${path}`);
      expect(res.status).toBe(200);
      const codes = [...res.text.matchAll(/data-testid="org-row" data-code="([^"]+)"/g)].map((m) => m[1]!);
      expect(codes.length).toBeLessThanOrEqual(25);
      for (const c of codes) {
        expect(seen.has(c)).toBe(false);
        seen.add(c);
      }
      const next = /<a href="([^"]+)" rel="next"/.exec(res.text);
      path = next ? decodeEntities(next[1]!) : null;
    }
    for (let i = 0; i < 30; i++) expect(seen.has(`09${String(i).padStart(8, '0')}`)).toBe(true);
    const total = (await srv.system.store.orgs.listEnterprises({ limit: 1000, offset: 0 })).length;
    expect(seen.size).toBe(total);
  });
});

describe('refusals: nothing changes', () => {
  it('an auditor or integration operator gets 403 on the pages and on direct POSTs with a valid CSRF token', async () => {
    const { code, staff } = await enterprise();
    const newcomer = await addPerson();
    for (const op of [auditor, integration]) {
      const browser = await consoleAs(op);
      const dashboard = await browser.get(`${srv.adminUrl}/admin`);
      expect(dashboard.status).toBe(200);
      expect(dashboard.text).not.toContain('href="/admin/orgs"');
      for (const path of ['/admin/orgs', `/admin/orgs?q=${code}`, orgPath(code), '/admin/orgs/not-a-code']) {
        const res = await browser.get(`${srv.adminUrl}${path}`);
        expect([op.roles[0], path, res.status]).toEqual([op.roles[0], path, 403]);
      }
      const csrf = hiddenField(dashboard.text, '_csrf');
      for (const [path, fields] of [
        ['/admin/orgs', { q: code }],
        [`${orgPath(code)}/suspend`, { reason: 'thử tạm ngừng không có quyền' }],
        [`${orgPath(code)}/reactivate`, { reason: 'thử mở lại không có quyền' }],
        [`${orgPath(code)}/revoke`, { person: staff.id, reason: 'thử thu hồi không có quyền' }],
        [`${orgPath(code)}/delegate`, { pid: newcomer.pid, role: 'ke-toan', reason: 'thử ủy quyền không có quyền' }],
      ] as const) {
        const res = await browser.post(`${srv.adminUrl}${path}`, { _csrf: csrf, ...fields }, { origin: srv.adminUrl });
        expect([op.roles[0], path, res.status]).toEqual([op.roles[0], path, 403]);
        expect(res.location).toBeNull();
      }
    }
    expect(await statusOf(code)).toBe('active');
    expect((await srv.system.store.orgs.findDelegation(code, staff.id))!.revokedAt).toBeNull();
    expect(await srv.system.store.orgs.findDelegation(code, newcomer.id)).toBeUndefined();
    expect(await audit('ORG_SUSPENDED', code)).toHaveLength(0);
    expect(await audit('DELEGATION_REVOKED', code)).toHaveLength(0);
    for (const op of [auditor, integration]) {
      const refused = (await srv.system.store.audit.search({ event: 'CONSOLE_ACCESS_REFUSED', operator: op.id, limit: 100 })).map((e) => e.details.permission);
      expect(refused).toEqual(expect.arrayContaining(['orgs.read', 'orgs.act']));
    }
  });

  it('malformed codes, searches and forms are 400 (unknown codes 404), never a 500, and change nothing', async () => {
    const { code, staff } = await enterprise();
    const browser = await consoleAs(helpdesk);

    for (const bad of ['abc', '010123456', '0101234567-1', '0101234567-0011', encodeURIComponent('{"$ne":1}'), encodeURIComponent('0101234567 ')]) {
      const res = await browser.get(`${srv.adminUrl}/admin/orgs/${bad}`);
      expect([bad, res.status, res.text.includes('role="alert"')]).toEqual([bad, 400, true]);
    }
    const unknown = await browser.get(`${srv.adminUrl}${orgPath('0999999999')}`);
    expect([unknown.status, unknown.text.includes('role="alert"')]).toEqual([404, true]);

    for (const q of ['12345', '', 'abcdefghij', '0101234567-', '<script>', '0101234567_001']) {
      const res = await consolePost(srv, browser, '/admin/orgs', { q }, '/admin/orgs');
      expect([q, res.status, res.text.includes('role="alert"')]).toEqual([q, 400, true]);
      expect(res.text).not.toContain('<script>');
    }
    const notFound = await consolePost(srv, browser, '/admin/orgs', { q: '0999999998' }, '/admin/orgs');
    expect([notFound.status, notFound.text.includes('role="alert"')]).toEqual([404, true]);
    expect((await consolePost(srv, browser, '/admin/orgs', { 'q[$ne]': 'x' }, '/admin/orgs')).status).toBe(400);
    expect((await browser.get(`${srv.adminUrl}/admin/orgs?q=${code}&q=${code}`)).status).toBe(400);
    expect((await browser.get(`${srv.adminUrl}/admin/orgs?page=${encodeURIComponent('1;DROP')}`)).status).toBe(200);

    const page = await browser.get(`${srv.adminUrl}${orgPath(code)}`);
    const csrf = hiddenField(page.text, '_csrf');
    const reason = 'lý do hợp lệ cho thao tác';
    const cases: Array<[string, Record<string, string>]> = [
      ['/suspend', { 'reason[$ne]': 'x' }],
      ['/suspend', {}],
      ['/suspend', { reason: 'x'.repeat(501) }],
      ['/suspend', { reason: 'ab' }],
      ['/suspend', { reason: '   \n  ' }],
      ['/suspend', { reason: 'lý do có ký tự \u0007 điều khiển' }],
      ['/suspend', { reason, extra: '1' }],
      ['/suspend', { reason, 'reason.$gt': '' }],
      ['/reactivate', { reason: 'x'.repeat(501) }],
      ['/revoke', { reason }],
      ['/revoke', { person: '{"$ne":1}', reason }],
      ['/revoke', { 'person[$ne]': 'x', reason }],
      ['/revoke', { person: staff.id }],
      ['/delegate', { pid: '001090799998', reason }],
      ['/delegate', { pid: '001090799998', role: 'ke-toan', 'until[$gt]': '', reason }],
      ['/delegate', { pid: 'x'.repeat(65), role: 'ke-toan', reason }],
    ];
    for (const [path, fields] of cases) {
      const res = await browser.post(`${srv.adminUrl}${orgPath(code)}${path}`, { _csrf: csrf, ...fields }, { origin: srv.adminUrl });
      expect([path, Object.keys(fields), res.status]).toEqual([path, Object.keys(fields), 400]);
      expect(res.text).toContain('role="alert"');
    }
    // A malformed or unknown code in an action's path.
    for (const [bad, status] of [['abc', 400], ['0101234567-1', 400], ['0999999997', 404]] as const) {
      const res = await browser.post(`${srv.adminUrl}/admin/orgs/${bad}/suspend`, { _csrf: csrf, reason }, { origin: srv.adminUrl });
      expect([bad, res.status]).toEqual([bad, status]);
    }
    // Without the CSRF token, or from another origin.
    const noCsrf = await browser.post(`${srv.adminUrl}${orgPath(code)}/suspend`, { reason }, { origin: srv.adminUrl });
    expect(noCsrf.status).toBeGreaterThanOrEqual(400);
    expect(noCsrf.status).toBeLessThan(500);
    const crossSite = await browser.post(`${srv.adminUrl}${orgPath(code)}/suspend`, { _csrf: csrf, reason }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);

    expect(await statusOf(code)).toBe('active');
    expect((await srv.system.store.orgs.findDelegation(code, staff.id))!.revokedAt).toBeNull();
    for (const event of ['ORG_SUSPENDED', 'ORG_REACTIVATED', 'DELEGATION_REVOKED']) expect(await audit(event, code)).toHaveLength(0);
    expect(await audit('DELEGATION_GRANTED', code)).toHaveLength(1);
  });

  it('an operator who represents the enterprise, or holds a delegation for it, reads its page but may not act on it (403 on direct POSTs)', async () => {
    const { code, staff } = await enterprise();
    // The helpdesk operator is made a delegate of this enterprise.
    await srv.system.orgs.delegate({ code, pid: helpdesk.pid, role: 'nhan-vien' }, CLI);
    const owned = `01${String(9000 + enterprises).padStart(8, '0')}`;
    await srv.system.orgs.register({ code: owned, name: 'Công ty của người vận hành', representatives: [helpdesk.pid] }, CLI);

    const browser = await consoleAs(helpdesk);
    for (const c of [code, owned]) {
      const page = await browser.get(`${srv.adminUrl}${orgPath(c)}`);
      expect([c, page.status]).toEqual([c, 200]);
      expect(page.text).toContain('data-testid="own-interest"');
      expect(page.text).not.toContain('data-testid="action-suspend"');
      const csrf = hiddenField(page.text, '_csrf');
      for (const [path, fields] of [
        ['/suspend', { reason: 'tạm ngừng doanh nghiệp của mình' }],
        ['/revoke', { person: staff.id, reason: 'thu hồi ở doanh nghiệp của mình' }],
      ] as const) {
        const res = await browser.post(`${srv.adminUrl}${orgPath(c)}${path}`, { _csrf: csrf, ...fields }, { origin: srv.adminUrl });
        expect([c, path, res.status, res.text.includes('role="alert"')]).toEqual([c, path, 403, true]);
      }
      expect(await statusOf(c)).toBe('active');
    }
    expect((await srv.system.store.orgs.findDelegation(code, staff.id))!.revokedAt).toBeNull();
    expect(await audit('ORG_SUSPENDED', code)).toHaveLength(0);
  });
});
