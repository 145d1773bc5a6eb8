/**
 * The console's audit section (auditor: audit.read / audit.export), through the real console
 * listener with operators signed in through dinhdanh: searching the hash-chained log by event, by
 * person (the number looked up and kept out of the URL), by operator and by a time window in
 * Vietnam time, paging by seq, verifying the chain, exporting entries that verify again on their
 * own, every malformed filter answered 400 with an alert, and the auditor changing nothing
 * anywhere — refused on the keys and accounts actions even by a direct POST.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { decodeEntities, hiddenField, type Response } from '../helpers/browser.js';
import { actorOf, consolePost, consoleTestKit, type TestOperator } from '../helpers/console.js';
import { GENESIS_HASH, entryHash } from '../../src/audit/audit.service.js';
import { PAGE_SIZE } from '../../src/admin/admin-http.js';
import type { AuditFilter } from '../../src/store/index.js';

const kit = consoleTestKit();
const { now, tick, consoleAs } = kit;
let srv: TestServer;

let auditor: TestOperator;
let helpdesk: TestOperator;
let keys: TestOperator;

beforeAll(async () => {
  srv = await kit.start();
  auditor = await kit.operator(['auditor']);
  helpdesk = await kit.operator(['helpdesk']);
  keys = await kit.operator(['keys']);
});
afterAll(() => kit.close());

const audit = (filter: AuditFilter) => kit.audit(filter, 1000);

let citizens = 0;
async function citizen() {
  citizens += 1;
  return srv.addPerson({ pid: `001090${String(760000 + citizens)}` });
}

/** The rows of a results page: seq, event and the details text, as the page shows them. */
function rows(res: Response): Array<{ seq: number; event: string; text: string }> {
  return res.text.split('data-testid="audit-row"').slice(1).map((r) => ({
    seq: Number(/data-seq="(\d+)"/.exec(r)![1]),
    event: /data-event="([A-Z_]+)"/.exec(r)![1]!,
    text: decodeEntities(r.slice(0, r.indexOf('</tr>')).replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' '),
  }));
}
const nextLink = (res: Response) => {
  const m = /<a href="([^"]+)" rel="next"/.exec(res.text);
  return m ? decodeEntities(m[1]!) : null;
};
/** Epoch ms as the console's datetime-local value in Vietnam time (UTC+7). */
const vietnamLocal = (ms: number) => new Date(ms + 7 * 3600_000).toISOString().slice(0, 16);
const pathOf = (res: Response) => { const u = new URL(res.url); return u.pathname + u.search; };

describe('an auditor searches the log', () => {
  it('by event, and by person with their number: the number is looked up and leaves the URL; details are escaped', async () => {
    const c = await citizen();
    srv.system.audit.record('LOGIN_FAILED', { person: c.id, portal: 'cong-thu', reason: '<script>alert(1)</script>' });
    const browser = await consoleAs(auditor);

    const page = await browser.get(`${srv.adminUrl}/admin/audit`);
    expect(page.status).toBe(200);
    expect([...page.text.matchAll(/<h1>/g)]).toHaveLength(1);
    expect(page.text).toContain('<option value="AUDIT_EXPORTED"');
    expect(page.text).toContain('href="/admin/audit"');
    expect(page.text).not.toContain('href="/admin/keys"');

    const byEvent = await browser.get(`${srv.adminUrl}/admin/audit?event=ACCOUNT_CREATED`);
    expect(byEvent.status).toBe(200);
    const created = rows(byEvent);
    expect(created.length).toBeGreaterThan(0);
    expect(new Set(created.map((r) => r.event))).toEqual(new Set(['ACCOUNT_CREATED']));
    expect(created.find((r) => r.text.includes(`person=${c.id}`))).toBeDefined();
    expect(byEvent.text).toContain('<option value="ACCOUNT_CREATED" selected>');

    // A GET form with the number: answered with the same search by the account's id.
    const byNumber = await browser.get(`${srv.adminUrl}/admin/audit?person=${c.pid}`);
    expect(byNumber.status).toBe(200);
    expect(pathOf(byNumber)).toBe(`/admin/audit?person=${c.id}`);
    expect(byNumber.text).not.toContain(c.pid);
    expect(byNumber.text).toContain(`*********${c.pid.slice(9)}`);
    const mine = rows(byNumber);
    expect(mine.map((r) => r.event)).toEqual(['LOGIN_FAILED', 'ACCOUNT_CREATED']);
    expect(mine[0]!.seq).toBeGreaterThan(mine[1]!.seq);
    expect(mine[0]!.text).toContain('portal=cong-thu');
    // Escaped: the details' markup is text on the page.
    expect(byNumber.text).not.toContain('<script>alert(1)</script>');
    expect(byNumber.text).toContain('&lt;script&gt;');
    // Time (Vietnam) with a machine-readable instant.
    const [entry] = await audit({ person: c.id, event: 'LOGIN_FAILED' });
    expect(byNumber.text).toContain(`<time datetime="${new Date(entry!.at).toISOString()}">`);

    // Filters combine.
    const both = await browser.get(`${srv.adminUrl}/admin/audit?person=${c.id}&event=LOGIN_FAILED&portal=cong-thu`);
    expect(rows(both).map((r) => r.seq)).toEqual([entry!.seq]);
  });

  it('by operator (an account id, their number, or cli:<name>) and by a time window in Vietnam time', async () => {
    const a = await citizen();
    const b = await citizen();
    // A helpdesk lock through the console's door, and one from the command line.
    await srv.system.adminActions.accounts.lock(actorOf(helpdesk), a.pid, 'Công dân báo mất điện thoại');
    await srv.system.adminActions.accounts.lock({ id: 'cli:vanhanh.an', roles: ['helpdesk'], via: 'cli' }, b.pid, 'Khóa theo yêu cầu bằng văn bản');
    const browser = await consoleAs(auditor);

    const byId = await browser.get(`${srv.adminUrl}/admin/audit?operator=${helpdesk.id}&event=ACCOUNT_LOCKED`);
    expect(byId.status).toBe(200);
    const locks = rows(byId);
    expect(locks.length).toBe(1);
    expect(locks[0]!.text).toContain(`person=${a.id}`);
    expect(locks[0]!.text).toContain('role=helpdesk');
    expect(locks[0]!.text).toContain('reason=Công dân báo mất điện thoại');

    const byNumber = await browser.get(`${srv.adminUrl}/admin/audit?operator=${helpdesk.pid}`);
    expect(pathOf(byNumber)).toBe(`/admin/audit?operator=${helpdesk.id}`);
    expect(rows(byNumber).every((r) => r.text.includes(`operator=${helpdesk.id}`))).toBe(true);

    const byCli = await browser.get(`${srv.adminUrl}/admin/audit?operator=${encodeURIComponent('cli:vanhanh.an')}`);
    expect(byCli.status).toBe(200);
    expect(rows(byCli).map((r) => r.event)).toEqual(['ACCOUNT_LOCKED']);
    expect(rows(byCli)[0]!.text).toContain(`person=${b.id}`);

    // Three people created ten minutes apart; the window holds the middle one only.
    tick(10 * 60_000);
    const early = await citizen();
    tick(10 * 60_000);
    const middle = await citizen();
    const middleAt = now();
    tick(10 * 60_000);
    const late = await citizen();
    await srv.system.audit.flush();
    const window = `from=${vietnamLocal(middleAt - 60_000)}&to=${vietnamLocal(middleAt + 2 * 60_000)}`;
    // Half an hour passed: the console session idled out; a new sign-in.
    const again = await consoleAs(auditor);
    const windowed = await again.get(`${srv.adminUrl}/admin/audit?event=ACCOUNT_CREATED&${window}`);
    expect(windowed.status).toBe(200);
    const inWindow = rows(windowed);
    expect(inWindow.map((r) => r.text.includes(`person=${middle.id}`))).toEqual([true]);
    // The form shows the window back in Vietnam time.
    expect(windowed.text).toContain(`value="${vietnamLocal(middleAt - 60_000)}"`);

    // A date alone as the end takes in the whole day: from just before the middle one, until its day's end.
    const dayOfMiddle = vietnamLocal(middleAt).slice(0, 10);
    const untilDayEnd = await again.get(`${srv.adminUrl}/admin/audit?event=ACCOUNT_CREATED&from=${vietnamLocal(middleAt - 60_000)}&to=${dayOfMiddle}`);
    expect(untilDayEnd.status).toBe(200);
    const ids = rows(untilDayEnd).map((r) => r.text);
    expect(ids.some((t) => t.includes(`person=${middle.id}`))).toBe(true);
    expect(ids.some((t) => t.includes(`person=${early.id}`))).toBe(false);
    // The late one is on the same Vietnam day unless the window crossed midnight there.
    expect(ids.some((t) => t.includes(`person=${late.id}`))).toBe(vietnamLocal(now()).slice(0, 10) === dayOfMiddle);
  });

  it('pages through results newest first with a seq cursor', async () => {
    const portal = await srv.addPortal();
    const total = 2 * PAGE_SIZE + 3;
    for (let i = 0; i < total; i++) srv.system.audit.record('CONSENT_GRANTED', { portal: portal.client_id, person: `nguoi-${i}`, scopes: ['openid'] });
    await srv.system.audit.flush();
    const browser = await consoleAs(auditor);

    const seen: number[] = [];
    let res = await browser.get(`${srv.adminUrl}/admin/audit?portal=${portal.client_id}`);
    const sizes: number[] = [];
    for (let pages = 0; pages < 10; pages++) {
      expect(res.status).toBe(200);
      const page = rows(res);
      sizes.push(page.length);
      seen.push(...page.map((r) => r.seq));
      if (pages > 0) expect(res.text).toContain('data-testid="newest-page"');
      const next = nextLink(res);
      if (!next) break;
      expect(next).toContain(`portal=${portal.client_id}`);
      res = await browser.get(`${srv.adminUrl}${next}`);
    }
    expect(sizes).toEqual([PAGE_SIZE, PAGE_SIZE, 3]);
    expect(seen).toEqual([...seen].sort((x, y) => y - x));
    expect(new Set(seen).size).toBe(total);
    const stored = (await audit({ portal: portal.client_id })).map((e) => e.seq);
    expect(seen).toEqual(stored);
  });
});

describe('verifying the chain', () => {
  it('walks the whole chain: intact, with its head; a head recorded earlier is found; a different hash for it is reported as broken', async () => {
    const browser = await consoleAs(auditor);
    await srv.system.audit.flush();
    const ok = await consolePost(srv, browser, '/admin/audit/verify', {}, '/admin/audit');
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('data-testid="verify-result" data-ok="true"');
    const head = decodeEntities(/data-testid="verify-head">([^<]+)</.exec(ok.text)![1]!);
    const [seq, hash] = head.split(':');
    const stored = (await srv.system.store.audit.list(Number(seq) - 1, 1))[0]!;
    expect(stored.hash).toBe(hash);

    const withHead = await consolePost(srv, browser, '/admin/audit/verify', { head }, '/admin/audit');
    expect(withHead.status).toBe(200);
    expect(withHead.text).toContain('data-ok="true"');
    expect(decodeEntities(withHead.text)).toContain('vẫn còn trong chuỗi');

    const wrong = await consolePost(srv, browser, '/admin/audit/verify', { head: `${seq}:${'ab'.repeat(32)}` }, '/admin/audit');
    expect(wrong.status).toBe(200);
    expect(wrong.text).toContain(`data-ok="false" data-seq="${Number(seq)}"`);
    expect(wrong.text).toMatch(/role="alert"/);
    expect(wrong.text).toContain('the log was rewritten');

    for (const bad of ['12', 'x:y', `1:${'g'.repeat(64)}`, '<b>1</b>']) {
      const res = await consolePost(srv, browser, '/admin/audit/verify', { head: bad }, '/admin/audit');
      expect([bad, res.status, res.text.includes('role="alert"')]).toEqual([bad, 400, true]);
      expect(res.text).not.toContain('<b>1</b>');
    }
  });
});

describe('exporting', () => {
  it('downloads the filtered entries as JSON lines that verify again on their own, and records the export with the reason', async () => {
    const c = await citizen();
    srv.system.audit.record('LOGIN_FAILED', { person: c.id, portal: 'cong-thu' });
    srv.system.audit.record('LOGIN_FAILED', { person: c.id, portal: 'cong-thu', note: 'lần hai' });
    await srv.system.audit.flush();
    const browser = await consoleAs(auditor);
    const page = await browser.get(`${srv.adminUrl}/admin/audit?person=${c.id}`);
    expect(page.text).toContain('data-testid="audit-export"');
    expect(page.text).toContain(`<input type="hidden" name="person" value="${c.id}">`);
    expect(decodeEntities(page.text)).toContain('3 mục khớp với bộ lọc');

    const reason = 'Thanh tra theo công văn số 12/TTr về tài khoản này';
    const res = await browser.post(`${srv.adminUrl}/admin/audit/export`, { _csrf: hiddenField(page.text, '_csrf'), person: c.id, reason });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="dinhdanh-audit-\d{8}T\d{6}Z\.jsonl"$/);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(res.headers.get('x-dinhdanh-export-truncated')).toBe('false');
    const lines = res.text.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; at: string; event: string; event_id: number; details: Record<string, unknown>; prev_hash: string; hash: string });
    expect(lines.map((l) => l.event)).toEqual(['ACCOUNT_CREATED', 'LOGIN_FAILED', 'LOGIN_FAILED']);
    // Oldest first, each exactly as stored: its hash recomputes from its own fields.
    expect(lines.map((l) => l.seq)).toEqual([...lines.map((l) => l.seq)].sort((x, y) => x - y));
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(['at', 'details', 'event', 'event_id', 'hash', 'prev_hash', 'seq']);
      expect(entryHash({ seq: l.seq, at: Date.parse(l.at), event: l.event, eventId: l.event_id, details: l.details, prevHash: l.prev_hash })).toBe(l.hash);
    }
    expect(lines[2]!.details).toMatchObject({ person: c.id, note: 'lần hai' });

    const [exported] = await audit({ event: 'AUDIT_EXPORTED', operator: auditor.id, person: c.id });
    expect(exported!.details).toMatchObject({ operator: auditor.id, role: 'auditor', via: 'console', reason, filter: `person=${c.id}`, entries: 3, truncated: false, first_seq: lines[0]!.seq, last_seq: lines[2]!.seq });
  });

  it('an export without a filter is the chain itself: consecutive lines link, from the genesis hash', async () => {
    const browser = await consoleAs(auditor);
    const page = await browser.get(`${srv.adminUrl}/admin/audit`);
    await srv.system.audit.flush();
    const head = (await srv.system.store.audit.head())!;
    const res = await browser.post(`${srv.adminUrl}/admin/audit/export`, { _csrf: hiddenField(page.text, '_csrf'), reason: 'Sao lưu định kỳ cho thanh tra' });
    expect(res.status).toBe(200);
    const lines = res.text.trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; at: string; event: string; event_id: number; details: Record<string, unknown>; prev_hash: string; hash: string });
    expect(lines[0]).toMatchObject({ seq: 1, prev_hash: GENESIS_HASH });
    expect(lines.length).toBeGreaterThanOrEqual(head.seq);
    lines.forEach((l, i) => {
      expect(l.seq).toBe(i + 1);
      if (i > 0) expect(l.prev_hash).toBe(lines[i - 1]!.hash);
      expect(entryHash({ seq: l.seq, at: Date.parse(l.at), event: l.event, eventId: l.event_id, details: l.details, prevHash: l.prev_hash })).toBe(l.hash);
    });
    const recorded = (await audit({ event: 'AUDIT_EXPORTED', operator: auditor.id })).find((e) => e.details.reason === 'Sao lưu định kỳ cho thanh tra');
    expect(recorded!.details).toMatchObject({ filter: '*', entries: lines.length, truncated: false });
  });
});

describe('malformed filters and forms: 400 with an alert, never a 500, nothing recorded', () => {
  it('every filter value is checked', async () => {
    const browser = await consoleAs(auditor);
    const cases = [
      'event=NOT_AN_EVENT', 'event=__proto__', 'event=toString', 'person=12345', 'person=%3Cscript%3E', 'person=%7B%22%24ne%22%3A1%7D', 'portal=a%20b', `portal=${'x'.repeat(65)}`,
      'operator=%24ne', 'operator=cli%3A', 'from=2024-13-01', 'from=2025-02-30', 'to=yesterday', 'from=2024-01-01T25%3A00', 'from=1999-12-31',
      'from=2024-05-02&to=2024-05-01', 'from=2024-05-01T10%3A00&to=2024-05-01T10%3A00', 'before=abc', 'before=0', 'before=-1',
      'person%5B%24ne%5D=x', 'event=LOGIN_FAILED&event=LOGOUT', 'evil=1', `person=${'1'.repeat(101)}`,
    ];
    for (const q of cases) {
      const res = await browser.get(`${srv.adminUrl}/admin/audit?${q}`);
      expect([q, res.status, res.text.includes('role="alert"')]).toEqual([q, 400, true]);
      expect(res.text).not.toContain('<script>');
      expect(res.text).not.toContain('data-testid="audit-row"');
    }
    // A well-formed number nobody has: not found, said as such.
    const unknown = await browser.get(`${srv.adminUrl}/admin/audit?person=001090999997`);
    expect([unknown.status, unknown.text.includes('role="alert"')]).toEqual([404, true]);
    expect(unknown.text).not.toContain('001090999997');
  });

  it('exports need a sound filter and a reason; a direct POST with anything else is refused and records nothing', async () => {
    const browser = await consoleAs(auditor);
    const page = await browser.get(`${srv.adminUrl}/admin/audit`);
    const csrf = hiddenField(page.text, '_csrf');
    const before = (await audit({ event: 'AUDIT_EXPORTED' })).length;
    const cases: Array<Record<string, string>> = [
      {},
      { reason: 'ab' },
      { reason: 'x'.repeat(501) },
      { reason: '   \n  ' },
      { 'reason[$ne]': 'x' },
      { reason: 'lý do hợp lệ', extra: '1' },
      { reason: 'lý do hợp lệ', event: 'NOPE' },
      { reason: 'lý do hợp lệ', from: '2024-05-02', to: '2024-05-01' },
      { reason: 'lý do hợp lệ', 'person[$ne]': 'x' },
      { reason: 'lý do hợp lệ', before: '10' },
    ];
    for (const fields of cases) {
      const res = await browser.post(`${srv.adminUrl}/admin/audit/export`, { _csrf: csrf, ...fields });
      expect([Object.keys(fields), res.status]).toEqual([Object.keys(fields), 400]);
      expect(res.text).toContain('role="alert"');
      expect(res.headers.get('content-disposition')).toBeNull();
    }
    const noCsrf = await browser.post(`${srv.adminUrl}/admin/audit/export`, { reason: 'lý do hợp lệ' });
    expect(noCsrf.status).toBeGreaterThanOrEqual(400);
    expect(noCsrf.status).toBeLessThan(500);
    const crossSite = await browser.post(`${srv.adminUrl}/admin/audit/export`, { _csrf: csrf, reason: 'lý do hợp lệ' }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    const badVerify = await browser.post(`${srv.adminUrl}/admin/audit/verify`, { _csrf: csrf, 'head[$ne]': 'x' });
    expect(badVerify.status).toBe(400);
    expect((await audit({ event: 'AUDIT_EXPORTED' })).length).toBe(before);
  });
});

describe('roles: the auditor reads and changes nothing; others do not read the log', () => {
  it('an auditor gets 403 on the keys page, a direct rotate, and an account lock with a valid CSRF token; nothing changes anywhere', async () => {
    const c = await citizen();
    const keysBefore = await srv.system.signingKeys.describe();
    const browser = await consoleAs(auditor);
    const dashboard = await browser.get(`${srv.adminUrl}/admin`);
    const csrf = hiddenField(dashboard.text, '_csrf');
    const keysPage = await browser.get(`${srv.adminUrl}/admin/keys`);
    expect(keysPage.status).toBe(403);
    const retireKid = keysBefore.find((k) => k.state === 'active')!.kid;
    for (const [path, fields] of [
      ['/admin/keys/rotate', { activate_after: '0', reason: 'thử xoay khóa không có quyền' }],
      [`/admin/keys/${retireKid}/retire`, { reason: 'thử thu hồi không có quyền' }],
      [`/admin/accounts/${c.id}/lock`, { reason: 'thử khóa không có quyền' }],
      [`/admin/accounts/${c.id}/level`, { level: '2', reason: 'thử nâng mức', document_type: 'cccd', document_number: '001090123123', place: 'Quầy' }],
    ] as const) {
      const res = await browser.post(`${srv.adminUrl}${path}`, { _csrf: csrf, ...fields });
      expect([path, res.status]).toEqual([path, 403]);
    }
    // No other POST under /admin/audit changes anything: the search page takes none.
    const stray = await browser.post(`${srv.adminUrl}/admin/audit`, { _csrf: csrf, event: 'LOGOUT' });
    expect(stray.status).toBeGreaterThanOrEqual(400);
    expect(stray.status).toBeLessThan(500);

    expect(await srv.system.signingKeys.describe()).toEqual(keysBefore);
    expect(await srv.system.store.persons.findById(c.id)).toMatchObject({ status: 'active', level: 1 });
    expect(await srv.system.adminActions.approvals.list({ state: 'pending', limit: 50 })).toEqual(expect.not.arrayContaining([expect.objectContaining({ proposedBy: auditor.id })]));
    const refused = await audit({ event: 'CONSOLE_ACCESS_REFUSED', operator: auditor.id });
    expect(refused.map((e) => e.details.permission)).toEqual(expect.arrayContaining(['keys.read', 'keys.act', 'accounts.act']));
    // Across this whole suite, the auditor's name is on sign-ins, refusals and exports only.
    const mine = new Set((await audit({ operator: auditor.id })).map((e) => e.event));
    for (const e of mine) expect(['CONSOLE_SIGNED_IN', 'CONSOLE_SIGNED_OUT', 'CONSOLE_ACCESS_REFUSED', 'AUDIT_EXPORTED']).toContain(e);
  });

  it('a helpdesk or keys operator gets 403 on the audit page, the verification and the export', async () => {
    for (const op of [helpdesk, keys]) {
      const browser = await consoleAs(op);
      const dashboard = await browser.get(`${srv.adminUrl}/admin`);
      expect(dashboard.text).not.toContain('href="/admin/audit"');
      const csrf = hiddenField(dashboard.text, '_csrf');
      for (const path of ['/admin/audit', '/admin/audit?event=LOGOUT']) {
        const res = await browser.get(`${srv.adminUrl}${path}`);
        expect([op.roles[0], path, res.status]).toEqual([op.roles[0], path, 403]);
      }
      const verify = await browser.post(`${srv.adminUrl}/admin/audit/verify`, { _csrf: csrf });
      expect(verify.status).toBe(403);
      const exported = await browser.post(`${srv.adminUrl}/admin/audit/export`, { _csrf: csrf, reason: 'xuất nhật ký không có quyền' });
      expect(exported.status).toBe(403);
      expect(exported.headers.get('content-disposition')).toBeNull();
      expect(await audit({ event: 'AUDIT_EXPORTED', operator: op.id })).toHaveLength(0);
    }
  });
});
