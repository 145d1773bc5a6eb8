/**
 * Separation of duties around two-person control (NIST SP 800-53 AC-5), through the one door
 * every console page and CLI command uses (admin/actions.ts): a help-desk operator cannot act alone
 * on another operator's account; a proposal does not outlive its proposer's standing; a portal's
 * `national_id` is approved for the portal as proposed, not for redirect URIs changed since.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { actorOf as actor, addOperator, consolePost, consoleSignIn, type TestOperator } from '../helpers/console.js';

let srv: TestServer;
let a: TestOperator;
let b: TestOperator;
let admin: TestOperator;
const EVIDENCE = { documentType: 'cccd', documentNumber: '079123456789', place: 'UBND phường Bến Nghé' };

beforeAll(async () => {
  srv = await startTestServer();
  a = await addOperator(srv, ['helpdesk']);
  b = await addOperator(srv, ['helpdesk']);
  admin = await addOperator(srv, ['admin', 'helpdesk']);
});
afterAll(async () => {
  await srv.close();
});

describe('an operator\'s own account', () => {
  it('is not for a help-desk colleague alone: lock, fraud lock, level and second factors are refused; an admin with helpdesk may', async () => {
    const actions = srv.system.adminActions.accounts;
    await expect(actions.lock(actor(a), b.pid, 'Khóa đồng nghiệp', { fraud: true })).rejects.toThrow(/belongs to an operator/);
    await expect(actions.setLevel(actor(a), b.pid, 1, 'Hạ mức đồng nghiệp', {})).rejects.toThrow(/belongs to an operator/);
    await expect(actions.resetMfa(actor(a), b.pid, 'Xóa yếu tố của đồng nghiệp', 'không có')).rejects.toThrow(/belongs to an operator/);
    expect(await srv.system.store.persons.findById(b.id)).toMatchObject({ status: 'active', level: 2 });
    await expect(actions.lock(actor(admin), b.pid, 'Máy trạm bị xâm nhập, khóa tạm')).resolves.toMatchObject({ status: 'done' });
    expect((await srv.system.store.persons.findById(b.id))!.status).toBe('locked');
    await actions.unlock(actor(admin), b.pid, 'Đã kiểm tra máy trạm');
  });
});

describe('a proposal', () => {
  it('cannot be approved once its proposer is no longer an operator with the role', async () => {
    const citizen = await srv.addPerson({ pid: '001090550001' });
    const proposed = await srv.system.adminActions.accounts.setLevel(actor(a), citizen.pid, 2, 'Đối chiếu căn cước tại quầy', EVIDENCE);
    expect(proposed.status).toBe('proposed');
    await srv.system.store.operators.remove(a.id);
    const id = (proposed as { approval: string }).approval;
    await expect(srv.system.adminActions.approvals.approve(actor(b), id, 'Đồng ý theo hồ sơ')).rejects.toThrow(/proposer is no longer/);
    expect((await srv.system.store.persons.findById(citizen.id))!.level).toBe(1);
  });

  it('for national_id is void once the portal changed after it was proposed', async () => {
    const i1 = await addOperator(srv, ['integration']);
    const i2 = await addOperator(srv, ['integration']);
    const portal = await srv.addPortal();
    const proposed = await srv.system.adminActions.portals.approveNationalId(actor(i1), portal.client_id, 'Nghị định 69/2024/NĐ-CP, Điều 12', 'Cổng cần số định danh');
    expect(proposed.status).toBe('proposed');
    const current = (await srv.system.store.portals.find(portal.client_id))!;
    await srv.system.store.portals.updateMetadata(portal.client_id, { ...current.metadata, redirect_uris: ['https://evil.example/cb'] });
    await expect(srv.system.adminActions.approvals.approve(actor(i2), (proposed as { approval: string }).approval, 'Đồng ý')).rejects.toThrow(/changed after this was proposed/);
    expect((await srv.system.store.portals.find(portal.client_id))!.nationalId).toBe(false);
  });
});

describe('a portal approved for national_id', () => {
  it('changes its redirect URIs only through a proposal a second integration operator approves', async () => {
    const i1 = await addOperator(srv, ['integration']);
    const i2 = await addOperator(srv, ['integration']);
    const portal = await srv.addPortal({ nationalId: true, legalBasis: 'Nghị định 69/2024/NĐ-CP' });
    const { browser } = await consoleSignIn(srv, i1, { codeAt: Date.now() });
    const path = `/admin/portals/${portal.client_id}`;
    const res = await consolePost(srv, browser, `${path}/uris`, { redirect_uris: 'http://localhost:9999/cb', post_logout_redirect_uris: '', backchannel_logout_uri: '', reason: 'Cổng chuyển sang máy chủ mới' }, path);
    expect(res.status).toBe(200);
    expect(new URL(res.url).searchParams.get('done')).toBe('proposed');
    const approval = new URL(res.url).searchParams.get('approval')!;
    expect(((await srv.system.store.portals.find(portal.client_id))!.metadata.redirect_uris as string[])).toEqual([portal.redirect_uri]);
    await expect(srv.system.adminActions.approvals.approve(actor(i1), approval, 'Tự phê duyệt')).rejects.toThrow(/different operator/);
    await srv.system.adminActions.approvals.approve(actor(i2), approval, 'Đã xác minh máy chủ mới của cổng');
    expect(((await srv.system.store.portals.find(portal.client_id))!.metadata.redirect_uris as string[])).toEqual(['http://localhost:9999/cb']);
  });
});
