/**
 * The console's approvals section (every operator reads it; deciding needs the proposed action's
 * role, and a different operator than the proposer), through the real console listener with
 * operators signed in through dinhdanh: the lists by state with a cursor, one proposal with what
 * the second operator judges by, approving (the outcome shown, the action carried out) and
 * rejecting (APPROVAL_REJECTED), the proposer and operators without the role refused whatever they
 * post, the 24-hour lapse on an injected clock, two approvals at once (exactly one wins), and
 * malformed forms.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { decodeEntities, type Response } from '../helpers/browser.js';
import { actorOf, consolePost, consoleTestKit, pageText as text, statusText, type TestOperator } from '../helpers/console.js';
import { AdminError, actAs } from '../../src/admin/index.js';

/**
 * The injected clock starts a day behind the real one, so that after the 24-hour advance of the
 * lapse test it is still behind: the console compares its clock with the ID token's auth_time,
 * which oidc-provider dates by the real clock (see reusedConsoleAs in helpers/console.ts).
 */
const kit = consoleTestKit({ clockStart: Date.now() - 25 * 3600_000 });
const { now, tick, reusedConsoleAs: consoleAs, audit } = kit;
let srv: TestServer;

let helpdesk: TestOperator;
let helpdesk2: TestOperator;
let helpdesk3: TestOperator;
let auditor: TestOperator;

beforeAll(async () => {
  srv = await kit.start();
  helpdesk = await kit.operator(['helpdesk']);
  helpdesk2 = await kit.operator(['helpdesk']);
  helpdesk3 = await kit.operator(['helpdesk', 'auditor']);
  auditor = await kit.operator(['auditor']);
});
afterAll(() => kit.close());

const stateOn = (res: Response) => /data-testid="approval-state" data-state="([^"]+)"/.exec(res.text)?.[1];
const path = (id: string) => `/admin/approvals/${id}`;
const level = async (id: string) => (await srv.system.store.persons.findById(id))!.level;

const EVIDENCE = { documentType: 'cccd', documentNumber: '079123456789', place: 'UBND phường Bến Nghé' };
let citizens = 0;

/** A level-1 citizen and a proposal to raise them to level 2, made by `by` through the actions' door. */
async function proposeLevel2(by: TestOperator = helpdesk, reason = 'Đối chiếu CCCD gắn chip tại quầy') {
  citizens += 1;
  const c = await srv.addPerson({ pid: `001090${String(880000 + citizens)}`, level: '1' });
  const r = await srv.system.adminActions.accounts.setLevel(actorOf(by), c.pid, 2, reason, EVIDENCE);
  expect(r.status).toBe('proposed');
  return { citizen: c, id: (r as { approval: string }).approval, reason };
}

describe('the list and one proposal', () => {
  it('lists pending proposals for every operator with action, subject, proposer, role, reason and times; one proposal shows its evidence', async () => {
    const { citizen, id, reason } = await proposeLevel2();
    // One with an evidence text of its own, through the same service.
    const c2 = await srv.addPerson({ pid: '001090889001', level: '1' });
    const withEvidence = await srv.system.adminActions.approvals.request(
      actAs(actorOf(helpdesk), 'accounts.act', 'Nâng mức theo hồ sơ giấy', 'Đã xem bản gốc CCCD và ảnh chân dung'),
      'set-level-2', { personId: c2.id, ...EVIDENCE },
    );
    expect(withEvidence.status).toBe('proposed');

    const browser = await consoleAs(auditor);
    const list = await browser.get(`${srv.adminUrl}/admin/approvals`);
    expect(list.status).toBe(200);
    expect([...list.text.matchAll(/<h1>/g)]).toHaveLength(1);
    const row = list.text.split('data-testid="approval-row"').find((r) => r.includes(`data-approval="${id}"`))!;
    expect(row).toContain('data-state="pending"');
    const shown = decodeEntities(row);
    expect(shown).toContain('Nâng lên định danh mức 2');
    expect(shown).toContain(`*********${citizen.pid.slice(9)}`);
    expect(shown).toContain('Trần Thị Vận Hành');
    expect(shown).toContain('hỗ trợ một cửa');
    expect(shown).toContain(reason);
    expect(shown).toContain('hết hạn lúc');
    expect(list.text).not.toContain(citizen.pid);
    expect(decodeEntities(list.text)).toContain('Đã xem bản gốc CCCD và ảnh chân dung');

    const one = await browser.get(`${srv.adminUrl}${path((withEvidence as { approval: string }).approval)}`);
    expect(one.status).toBe(200);
    expect(stateOn(one)).toBe('pending');
    expect(decodeEntities(one.text)).toContain('Đã xem bản gốc CCCD và ảnh chân dung');
    expect(decodeEntities(one.text)).toContain('UBND phường Bến Nghé');
    // The document's number is shown by its end only.
    expect(one.text).toContain('********6789');
    expect(one.text).not.toContain('079123456789');
    // An auditor may read, not decide a helpdesk proposal: no buttons, and why.
    expect(one.text).not.toContain('data-testid="approve-form"');
    expect(one.text).not.toContain('data-testid="reject-form"');
    expect(one.text).toContain('data-testid="approval-not-yours"');
  });

  it('pages with a cursor, newest first, nothing twice', async () => {
    const t0 = now();
    for (let i = 0; i < 30; i++) {
      await srv.system.store.approvals.create({
        id: crypto.randomUUID(), action: 'retire-key', subject: `paging-key-${i}`, params: { kid: `paging-key-${i}` },
        proposedBy: 'cli:paging', proposedRole: 'keys', reason: `Thu hồi khóa cũ số ${i}`, evidence: null,
        status: 'rejected', createdAt: t0 - 3600_000 - i * 1000, expiresAt: t0 + 20 * 3600_000 - i * 1000,
        decidedBy: 'cli:paging', decidedRole: 'keys', decidedAt: t0 - 1000, decisionReason: 'Không cần thu hồi', outcome: null,
      });
    }
    const browser = await consoleAs(auditor);
    const first = await browser.get(`${srv.adminUrl}/admin/approvals?state=rejected`);
    expect(first.status).toBe(200);
    const ids = (res: Response) => [...res.text.matchAll(/data-approval="([^"]+)"/g)].map((m) => m[1]!);
    expect(ids(first)).toHaveLength(25);
    const next = decodeEntities(/href="([^"]+)" rel="next"/.exec(first.text)![1]!);
    expect(next).toMatch(/^\/admin\/approvals\?state=rejected&before=\d+_[0-9a-f-]{36}$/);
    const second = await browser.get(`${srv.adminUrl}${next}`);
    expect(second.status).toBe(200);
    expect(ids(second).length).toBeGreaterThanOrEqual(5);
    expect(new Set([...ids(first), ...ids(second)]).size).toBe(ids(first).length + ids(second).length);
    expect(second.text).not.toContain('rel="next"');
    // Newest first: the first row is the last one made, the second page ends with the oldest.
    const rows = (res: Response) => res.text.split('data-testid="approval-row"').slice(1);
    expect(rows(first)[0]).toContain('paging-key-0<');
    expect(rows(second).at(-1)).toContain('paging-key-29<');
  });
});

describe('deciding', () => {
  it('a second helpdesk operator approves: the action is carried out, the outcome shown, both operators in the audit log', async () => {
    const { citizen, id, reason } = await proposeLevel2();
    expect(await level(citizen.id)).toBe(1);
    const browser = await consoleAs(helpdesk2);
    const page = await browser.get(`${srv.adminUrl}${path(id)}`);
    expect(page.text).toContain('data-testid="approve-form"');
    expect(page.text).toContain('data-testid="reject-form"');
    const approveReason = 'Đã xem lại hồ sơ đối chiếu, đồng ý';
    const res = await consolePost(srv, browser, `${path(id)}/approve`, { reason: approveReason }, path(id));
    expect(res.status).toBe(200);
    expect(new URL(res.url).search).toBe('?done=approved');
    expect(statusText(res)).toContain('Đã phê duyệt');
    expect(stateOn(res)).toBe('approved');
    expect(decodeEntities(/data-testid="approval-outcome"[^>]*>([^<]*)</.exec(res.text)![1]!)).toBe('done: identity level 2');
    expect(res.text).not.toContain('data-testid="approve-form"');
    expect(await level(citizen.id)).toBe(2);
    const [entry] = (await audit('APPROVAL_APPROVED')).filter((e) => e.details.approval === id);
    expect(entry!.details).toMatchObject({
      approval: id, action: 'set-level-2', subject: citizen.id, proposed_by: helpdesk.id, proposal_reason: reason,
      operator: helpdesk2.id, role: 'helpdesk', via: 'console', reason: approveReason, outcome: 'done: identity level 2',
    });
    // Approving again: already decided.
    const again = await consolePost(srv, browser, `${path(id)}/approve`, { reason: approveReason }, path(id));
    expect(again.status).toBe(409);
    const approved = await browser.get(`${srv.adminUrl}/admin/approvals?state=approved`);
    expect(approved.text).toContain(`data-approval="${id}"`);
  });

  it('the proposer cannot approve or reject their own proposal: no buttons, and a direct POST is refused (403)', async () => {
    const { citizen, id } = await proposeLevel2(helpdesk);
    const browser = await consoleAs(helpdesk);
    const page = await browser.get(`${srv.adminUrl}${path(id)}`);
    expect(page.text).not.toContain('data-testid="approve-form"');
    expect(text(page)).toContain('Bạn là người đề xuất');
    for (const decision of ['approve', 'reject']) {
      const res = await consolePost(srv, browser, `${path(id)}/${decision}`, { reason: 'Tự quyết định đề xuất của mình' }, path(id));
      expect([decision, res.status]).toEqual([decision, 403]);
      expect(res.text).toContain('role="alert"');
    }
    await expect(srv.system.adminActions.approvals.approve(actorOf(helpdesk), id, 'Tự phê duyệt qua dịch vụ')).rejects.toMatchObject({ code: 'forbidden' });
    expect(stateOn(await browser.get(`${srv.adminUrl}${path(id)}`))).toBe('pending');
    expect(await level(citizen.id)).toBe(1);
  });

  it('an auditor lists approvals but cannot decide a helpdesk proposal (403), nothing changes', async () => {
    const { citizen, id } = await proposeLevel2();
    const browser = await consoleAs(auditor);
    const list = await browser.get(`${srv.adminUrl}/admin/approvals?state=pending`);
    expect(list.status).toBe(200);
    expect(list.text).toContain(`data-approval="${id}"`);
    for (const decision of ['approve', 'reject']) {
      const res = await consolePost(srv, browser, `${path(id)}/${decision}`, { reason: 'Kiểm toán viên quyết định thay' }, path(id));
      expect([decision, res.status]).toEqual([decision, 403]);
      expect(res.text).toContain('needs the helpdesk role');
    }
    expect(stateOn(await browser.get(`${srv.adminUrl}${path(id)}`))).toBe('pending');
    expect(await level(citizen.id)).toBe(1);
  });

  it('a rejection ends the proposal with its reason (APPROVAL_REJECTED), nothing carried out', async () => {
    const { citizen, id, reason } = await proposeLevel2();
    const browser = await consoleAs(helpdesk2);
    const rejectReason = 'Ảnh trên CCCD không khớp với người đến quầy';
    const res = await consolePost(srv, browser, `${path(id)}/reject`, { reason: rejectReason }, path(id));
    expect(res.status).toBe(200);
    expect(new URL(res.url).search).toBe('?done=rejected');
    expect(stateOn(res)).toBe('rejected');
    expect(decodeEntities(res.text)).toContain(rejectReason);
    expect(await level(citizen.id)).toBe(1);
    const [entry] = (await audit('APPROVAL_REJECTED')).filter((e) => e.details.approval === id);
    expect(entry!.details).toMatchObject({
      approval: id, action: 'set-level-2', proposed_by: helpdesk.id, proposal_reason: reason,
      operator: helpdesk2.id, role: 'helpdesk', via: 'console', reason: rejectReason,
    });
    expect((await browser.get(`${srv.adminUrl}/admin/approvals?state=rejected`)).text).toContain(`data-approval="${id}"`);
    expect((await browser.get(`${srv.adminUrl}/admin/approvals?state=pending`)).text).not.toContain(`data-approval="${id}"`);
  });

  it('two eligible operators approving at once: exactly one succeeds, the action runs once', async () => {
    const { citizen, id } = await proposeLevel2(helpdesk);
    const results = await Promise.allSettled([
      srv.system.adminActions.approvals.approve(actorOf(helpdesk2), id, 'Đồng ý theo hồ sơ (người thứ hai)'),
      srv.system.adminActions.approvals.approve(actorOf(helpdesk3), id, 'Đồng ý theo hồ sơ (người thứ ba)'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.reason).toBeInstanceOf(AdminError);
    expect((failed[0]!.reason as AdminError).code).toBe('conflict');
    expect((await audit('APPROVAL_APPROVED')).filter((e) => e.details.approval === id)).toHaveLength(1);
    expect(await level(citizen.id)).toBe(2);
  });
});

describe('the 24 hours', () => {
  it('a proposal lapses after 24 hours: shown as lapsed, approving it then is refused and changes nothing', async () => {
    const { citizen, id } = await proposeLevel2();
    tick(24 * 3600_000 + 60_000);
    const browser = await consoleAs(helpdesk2);
    const page = await browser.get(`${srv.adminUrl}${path(id)}`);
    expect(stateOn(page)).toBe('lapsed');
    expect(page.text).toContain('data-testid="approval-lapsed"');
    expect(page.text).not.toContain('data-testid="approve-form"');
    const res = await consolePost(srv, browser, `${path(id)}/approve`, { reason: 'Phê duyệt muộn sau một ngày' }, path(id));
    expect(res.status).toBe(409);
    expect(stateOn(res)).toBe('lapsed');
    expect(res.text).toContain('this proposal lapsed');
    expect(text(res)).toContain('đã hết hạn');
    await expect(srv.system.adminActions.approvals.approve(actorOf(helpdesk3), id, 'Phê duyệt muộn qua dịch vụ')).rejects.toMatchObject({ code: 'conflict' });
    expect(await level(citizen.id)).toBe(1);
    expect((await audit('APPROVAL_APPROVED')).filter((e) => e.details.approval === id)).toHaveLength(0);
    const lapsed = await browser.get(`${srv.adminUrl}/admin/approvals?state=lapsed`);
    expect(lapsed.text).toContain(`data-approval="${id}"`);
    expect((await browser.get(`${srv.adminUrl}/admin/approvals?state=pending`)).text).not.toContain(`data-approval="${id}"`);
    // The same action on the same person may be proposed again.
    const again = await srv.system.adminActions.accounts.setLevel(actorOf(helpdesk), citizen.pid, 2, 'Đề xuất lại sau khi hết hạn', EVIDENCE);
    expect(again.status).toBe('proposed');
  });
});

describe('bad input', () => {
  it('malformed forms are 400 (unknown or malformed ids 404, bad filters 400), never a 500, and nothing changes', async () => {
    const { citizen, id } = await proposeLevel2();
    const browser = await consoleAs(helpdesk2);
    const page = await browser.get(`${srv.adminUrl}${path(id)}`);
    const csrf = /name="_csrf" value="([^"]*)"/.exec(page.text)![1]!;
    const cases: Array<Record<string, string>> = [
      {},
      { reason: 'abc' },
      { reason: 'quá dài '.repeat(80) },
      { reason: 'có ký tự\u0000điều khiển' },
      { 'reason[$ne]': 'x' },
      { reason: 'Lý do hợp lệ cho quyết định', decision: 'approve' },
    ];
    for (const fields of cases) {
      for (const decision of ['approve', 'reject']) {
        const res = await browser.post(`${srv.adminUrl}${path(id)}/${decision}`, { _csrf: decodeEntities(csrf), ...fields });
        expect([fields, decision, res.status]).toEqual([fields, decision, 400]);
      }
    }
    const twice = await browser.request(`${srv.adminUrl}${path(id)}/approve`, {
      method: 'POST', headers: { origin: srv.adminUrl },
      body: `_csrf=${encodeURIComponent(decodeEntities(csrf))}&reason=Dong+y+theo+ho+so&reason=Dong+y+lan+hai`,
    });
    expect(twice.status).toBe(400);
    expect(stateOn(await browser.get(`${srv.adminUrl}${path(id)}`))).toBe('pending');
    expect(await level(citizen.id)).toBe(1);

    for (const bad of [crypto.randomUUID(), 'not-an-id', encodeURIComponent('{"$ne":1}')]) {
      expect([bad, (await browser.get(`${srv.adminUrl}${path(bad)}`)).status]).toEqual([bad, 404]);
      const post = await browser.post(`${srv.adminUrl}${path(bad)}/approve`, { _csrf: decodeEntities(csrf), reason: 'Lý do hợp lệ cho quyết định' });
      expect([bad, post.status]).toEqual([bad, 404]);
    }
    for (const q of ['state=everything', 'state=pending&state=approved', 'before=123', 'state=pending&before=1_x']) {
      const res = await browser.get(`${srv.adminUrl}/admin/approvals?${q}`);
      expect([q, res.status, res.text.includes('role="alert"')]).toEqual([q, 400, true]);
    }
  });
});
