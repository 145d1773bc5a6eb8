/**
 * The console's portals and resource servers (role `integration`), against the real server: an
 * integration operator registers a portal (the secret shown once, and an openid-client relying party
 * then signs a person in with it), edits its redirect URIs (the old one refused at the
 * authorization endpoint), disables and enables it, rotates its secret (the old one kept for the
 * grace period chosen, or ended at once), proposes `national_id` (approved only by a second
 * integration operator) and approves `offline_access`; the console's own client offers no
 * action; a helpdesk operator is refused every page and every direct POST; malformed input changes
 * nothing; every change is in the audit chain with the operator, role, door and reason.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { Browser, decodeEntities, hiddenField, type Response } from '../helpers/browser.js';
import { consolePost, consoleSignIn, consoleTestKit, type TestOperator } from '../helpers/console.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';
import { CONSOLE_CLIENT_ID } from '../../src/admin/console-client.js';
import { PAGE_SIZE } from '../../src/admin/admin-http.js';
import type { Actor } from '../../src/admin/roles.js';
import { validateResourceInput } from '../../src/portals/index.js';
import { verifyAuditLog } from '../../src/audit/index.js';

const kit = consoleTestKit();
const { now, tick } = kit;
let srv: TestServer;
const logLines: string[] = [];

let integration: TestOperator;
let second: TestOperator;
let helpdesk: TestOperator;
let browser: Browser;
let helpdeskBrowser: Browser;

beforeAll(async () => {
  srv = await kit.start({ logSink: (line) => { logLines.push(line); } });
  integration = await kit.operator(['integration']);
  second = await kit.operator(['integration']);
  helpdesk = await kit.operator(['helpdesk']);
  tick();
  ({ browser } = await consoleSignIn(srv, integration, { codeAt: now() }));
});
afterAll(() => kit.close());

const page = (b: Browser, path: string) => b.get(`${srv.adminUrl}${path}`);
const post = (b: Browser, path: string, fields: Record<string, string>, from = '/admin') => consolePost(srv, b, path, fields, from);

const audit = (event: string, portal?: string) => kit.audit({ event, ...(portal ? { portal } : {}) }, 50);

/** Signs in again when the last second factor is too old for a dangerous action (5 minutes). */
async function freshFactor(op: TestOperator, b: Browser): Promise<void> {
  tick();
  const { res } = await consoleSignIn(srv, op, { browser: b, codeAt: now(), reauth: true });
  expect(res.status).toBe(302);
}

let registered: { clientId: string; secret: string; redirect: string };

function registerFields(over: Record<string, string> = {}): Record<string, string> {
  return {
    name: 'Cổng dịch vụ công tỉnh Thử Nghiệm',
    redirect_uris: 'http://localhost:9501/callback',
    post_logout_redirect_uris: 'http://localhost:9501/signed-out',
    backchannel_logout_uri: '',
    grant_refresh_token: 'on',
    sector: '',
    reason: 'Hồ sơ tích hợp số 12/2025 của Sở Thông tin',
    ...over,
  };
}

async function signInAt(p: { client_id: string; client_secret: string; redirect_uri: string }) {
  const config = await discover(srv.issuer, p);
  const person = await srv.addPerson();
  const req = await authRequest(config, p);
  const res = await signIn(new Browser(srv.issuer), req, person);
  return { config, req, res };
}

function expectForbidden(res: Response): void {
  expect(res.status).toBe(403);
  expect(res.text).not.toContain('data-testid="client-secret"');
}

describe('the list', () => {
  it('lists portals and resource servers with their kind, state and approvals; the console client is first-party with no action', async () => {
    const res = await page(browser, '/admin/portals');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.text).toContain('data-testid="portals-table"');
    expect(res.text).toContain(`data-client-id="${CONSOLE_CLIENT_ID}"`);
    const row = res.text.slice(res.text.indexOf(`data-client-id="${CONSOLE_CLIENT_ID}"`)).split('</tr>')[0]!;
    expect(row).toMatch(/bên thứ nhất/);
    expect(res.text).toContain('href="/admin/portals/new"');

    const detail = await page(browser, `/admin/portals/${CONSOLE_CLIENT_ID}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain('data-testid="first-party"');
    expect(detail.text).not.toContain(`action="/admin/portals/${CONSOLE_CLIENT_ID}/`);

    // A direct POST is refused too: disabling the console's client would lock every operator out.
    const refused = await post(browser, `/admin/portals/${CONSOLE_CLIENT_ID}/disable`, { reason: 'probing the first-party client' });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('data-testid="console-refusal"');
    const uris = await post(browser, `/admin/portals/${CONSOLE_CLIENT_ID}/uris`, { redirect_uris: 'http://localhost:9999/callback', reason: 'probing the first-party client' });
    expect(uris.status).toBe(403);
    const console = await srv.system.store.portals.find(CONSOLE_CLIENT_ID);
    expect(console!.disabled).toBe(false);
    expect(console!.metadata.redirect_uris).toEqual([`${srv.adminUrl}/admin/callback`]);
  });

  it('shows a portal\'s security event stream: method, endpoint origin only, status, undelivered and the last outcome; never the header', async () => {
    const portal = await srv.addPortal();
    const t = Date.now();
    const streamId = `st-${t}`;
    await srv.system.store.ssf.createStream({
      id: streamId, clientId: portal.client_id, eventsRequested: ['https://schemas.openid.net/secevent/risc/event-type/account-disabled'],
      deliveryMethod: 'urn:ietf:rfc:8935', endpointUrl: 'https://portal.example/ssf/events?token=path-secret', authorizationHeader: 'sealed-header-secret',
      description: null, status: 'enabled', statusReason: null, createdAt: t, updatedAt: t,
    });
    await srv.system.store.ssf.addEvents([{ streamId, jti: 'j1', set: 'eyJ.x.y', types: ['x'], createdAt: t, expiresAt: t + 3600_000 }]);
    await srv.system.store.ssf.recordAttempt(streamId, 'j1', 'HTTP 503', t);
    const detail = await page(browser, `/admin/portals/${portal.client_id}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain('data-testid="ssf-stream"');
    expect(detail.text).toContain('<code>https://portal.example</code>');
    expect(/data-testid="ssf-undelivered">1/.test(detail.text)).toBe(true);
    expect(detail.text).toMatch(/data-testid="ssf-last">HTTP 503/);
    expect(detail.text).not.toMatch(/path-secret|sealed-header-secret|eyJ\.x/);
    expect(detail.text).toContain('account-disabled');
  });

  it('pages through the registry by cursor, with the total', async () => {
    const before = await srv.system.store.portals.count();
    for (let i = 0; i < PAGE_SIZE + 2 - before; i++) await srv.addPortal();
    const total = await srv.system.store.portals.count();
    expect(total).toBeGreaterThan(PAGE_SIZE);
    const first = await page(browser, '/admin/portals');
    expect(first.text).toContain(`data-testid="portals-total"`);
    expect(first.text.match(/data-testid="portal-row"/g)).toHaveLength(PAGE_SIZE);
    const next = /href="(\/admin\/portals\?after=[^"]+)"[^>]*data-testid="next-page"/.exec(first.text)?.[1];
    expect(next).toBeDefined();
    const second = await page(browser, decodeEntities(next!));
    expect(second.status).toBe(200);
    const rows = (html: string) => [...html.matchAll(/data-client-id="([^"]+)"/g)].map((m) => m[1]);
    expect(rows(second.text)).toHaveLength(total - PAGE_SIZE);
    expect(rows(second.text).filter((id) => rows(first.text).includes(id))).toEqual([]);
    expect(second.text).not.toContain('data-testid="next-page"');
    // A cursor that is not one is the first page, not an error.
    expect((await page(browser, '/admin/portals?after=%7B%22%24gt%22%3A1%7D')).status).toBe(200);
  });
});

describe('resource servers', () => {
  it('lists a resource server as such, shows its indicator and scopes, and offers disabling but no URIs or approvals', async () => {
    const rs = await srv.system.portals.registerResource(validateResourceInput({ name: 'API hồ sơ', uri: 'http://localhost:9600/api', scopes: ['records:read'] }, { production: false }));
    let list = await page(browser, '/admin/portals');
    for (let hops = 0; !list.text.includes(`data-client-id="${rs.client_id}"`) && hops < 5; hops++) {
      const next = /href="(\/admin\/portals\?after=[^"]+)"[^>]*data-testid="next-page"/.exec(list.text)?.[1];
      if (!next) break;
      list = await page(browser, decodeEntities(next));
    }
    const row = list.text.slice(list.text.indexOf(`data-client-id="${rs.client_id}"`)).split('</tr>')[0]!;
    expect(row).toContain('máy chủ tài nguyên');
    const detail = await page(browser, `/admin/portals/${rs.client_id}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain('http://localhost:9600/api');
    expect(detail.text).toContain('records:read');
    expect(detail.text).toContain(`action="/admin/portals/${rs.client_id}/disable"`);
    for (const action of ['uris', 'approve-national-id', 'approve-offline-access']) expect(detail.text).not.toContain(`action="/admin/portals/${rs.client_id}/${action}"`);
    const before = await srv.system.store.portals.find(rs.client_id);
    const uris = await post(browser, `/admin/portals/${rs.client_id}/uris`, { redirect_uris: 'http://localhost:9600/cb', reason: 'an API has no redirect URIs' });
    expect(uris.status).toBe(400);
    const offline = await post(browser, `/admin/portals/${rs.client_id}/approve-offline-access`, { legal_basis: 'Quyết định 12/QĐ-BCA', reason: 'an API gets no refresh tokens' });
    expect(offline.status).toBe(400);
    expect(await srv.system.store.portals.find(rs.client_id)).toEqual(before);
    const off = await post(browser, `/admin/portals/${rs.client_id}/disable`, { reason: 'API ngừng hoạt động để bảo trì' });
    expect(off.url).toBe(`${srv.adminUrl}/admin/portals/${rs.client_id}?done=disabled`);
    expect(await srv.system.portals.findResource('http://localhost:9600/api')).toBeUndefined();
  });
});

describe('registering a portal', () => {
  it('shows the form, registers the portal and shows its secret once; a relying party then signs a person in with it', async () => {
    const form = await page(browser, '/admin/portals/new');
    expect(form.status).toBe(200);
    for (const name of ['name', 'redirect_uris', 'post_logout_redirect_uris', 'backchannel_logout_uri', 'grant_refresh_token', 'grant_client_credentials', 'sector', 'reason']) {
      expect(form.text).toContain(`name="${name}"`);
    }
    const res = await post(browser, '/admin/portals', registerFields(), '/admin/portals/new');
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.location).toBeNull();
    const clientId = decodeEntities(/data-testid="client-id">([^<]+)</.exec(res.text)![1]!);
    const secret = decodeEntities(/data-testid="client-secret">([^<]+)</.exec(res.text)![1]!);
    expect(clientId).toMatch(/^portal-/);
    expect(secret.length).toBeGreaterThanOrEqual(43);
    registered = { clientId, secret, redirect: 'http://localhost:9501/callback' };

    // Once: the portal's page never shows it again.
    const detail = await page(browser, `/admin/portals/${clientId}`);
    expect(detail.status).toBe(200);
    expect(detail.text).not.toContain(secret);
    expect(detail.text).toContain('http://localhost:9501/callback');
    expect(detail.text).toContain('refresh_token');

    const stored = await srv.system.store.portals.find(clientId);
    expect(stored!.metadata.grant_types).toEqual(['authorization_code', 'refresh_token']);
    expect(stored!.metadata.post_logout_redirect_uris).toEqual(['http://localhost:9501/signed-out']);
    expect(stored!.sector).toBe('localhost:9501');
    expect(stored!.nationalId).toBe(false);

    const [entry] = await audit('PORTAL_REGISTERED', clientId);
    expect(entry!.details).toMatchObject({ operator: integration.id, role: 'integration', via: 'console', reason: 'Hồ sơ tích hợp số 12/2025 của Sở Thông tin', portal: clientId });
    // The registration's audit entry, every log line and the page's address hold no secret.
    expect(JSON.stringify(entry)).not.toContain(secret);
    expect(logLines.some((l) => l.includes(secret))).toBe(false);

    const { config, req, res: back } = await signInAt({ client_id: clientId, client_secret: secret, redirect_uri: registered.redirect });
    expect(back.status).toBe(303);
    expect(back.location!.startsWith(`${registered.redirect}?`)).toBe(true);
    const tokens = await redeem(config, req, back.location!);
    expect(tokens.claims()!.aud).toBe(clientId);
  });

  it('refuses bad input with the page\'s alert and registers nothing', async () => {
    const count = await srv.system.store.portals.count();
    const cases: Array<[Record<string, string>, number]> = [
      [registerFields({ redirect_uris: 'javascript:alert(1)' }), 400],
      [registerFields({ redirect_uris: 'https://portal.example.vn/cb#frag' }), 400],
      [registerFields({ redirect_uris: 'http://portal.example.vn/callback' }), 400],
      [registerFields({ redirect_uris: 'https://user:pw@portal.example.vn/cb' }), 400],
      [registerFields({ redirect_uris: '' }), 400],
      [registerFields({ backchannel_logout_uri: 'javascript:alert(1)' }), 400],
      [registerFields({ name: '<script>x</script>' }), 400],
      [registerFields({ sector: 'not a host!' }), 400],
      [registerFields({ reason: '' }), 400],
      [registerFields({ reason: 'x'.repeat(600) }), 400],
      [registerFields({ redirect_uris: Array.from({ length: 21 }, (_, i) => `http://localhost:9501/cb${i}`).join('\n') }), 400],
    ];
    for (const [fields, status] of cases) {
      const res = await post(browser, '/admin/portals', fields, '/admin/portals/new');
      expect([fields, res.status]).toEqual([fields, status]);
      expect(res.text).toContain('data-testid="console-refusal"');
      expect(res.text).not.toContain('data-testid="client-secret"');
      // The form comes back filled in, escaped.
      expect(res.text).not.toContain('<script>x</script>');
    }
    // Malformed forms: unknown fields (an operator injection probe), oversized fields, no reason.
    for (const fields of [
      { ...registerFields(), 'name[$ne]': 'x' },
      registerFields({ name: 'x'.repeat(5000) }),
      registerFields({ grant_refresh_token: 'yes' }),
      (() => { const { reason: _r, ...rest } = registerFields(); return rest; })(),
    ]) {
      const res = await post(browser, '/admin/portals', fields as Record<string, string>, '/admin/portals/new');
      expect(res.status).toBe(400);
    }
    expect(await srv.system.store.portals.count()).toBe(count);
  });
});

describe('editing a portal\'s URIs', () => {
  it('replaces the redirect URIs, keeps every other registration detail, and the old URI is refused at the authorization endpoint', async () => {
    const before = await srv.system.store.portals.find(registered.clientId);
    const res = await post(browser, `/admin/portals/${registered.clientId}/uris`, {
      redirect_uris: 'http://localhost:9502/callback\r\n',
      post_logout_redirect_uris: 'http://localhost:9501/signed-out',
      backchannel_logout_uri: 'http://localhost:9502/backchannel',
      reason: 'Cổng chuyển sang máy chủ mới theo công văn 45',
    }, `/admin/portals/${registered.clientId}`);
    // A 303 to the portal's page (followed by the test browser), which says what was done.
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${srv.adminUrl}/admin/portals/${registered.clientId}?done=updated`);
    const shown = res;
    expect(shown.text).toContain('data-testid="console-done"');
    expect(shown.text).toContain('http://localhost:9502/callback');
    // The change is in the portal's recent audit entries, with the reason.
    expect(shown.text).toContain('PORTAL_UPDATED');
    expect(shown.text).toContain('Cổng chuyển sang máy chủ mới theo công văn 45');

    const after = await srv.system.store.portals.find(registered.clientId);
    expect(after!.metadata).toEqual({
      ...before!.metadata,
      redirect_uris: ['http://localhost:9502/callback'],
      backchannel_logout_uri: 'http://localhost:9502/backchannel',
      backchannel_logout_session_required: true,
    });
    expect(after!.sector).toBe(before!.sector);
    expect(after!.secretCiphertext).toBe(before!.secretCiphertext);

    const [entry] = await audit('PORTAL_UPDATED', registered.clientId);
    expect(entry!.details).toMatchObject({
      operator: integration.id, role: 'integration', via: 'console', reason: 'Cổng chuyển sang máy chủ mới theo công văn 45',
      changed: ['redirect_uris', 'backchannel_logout_uri'],
      redirect_uris: ['http://localhost:9502/callback'], previous_redirect_uris: ['http://localhost:9501/callback'],
    });

    // The old redirect URI is refused (an error page, no redirect); the new one signs in.
    const old = await signInAt({ client_id: registered.clientId, client_secret: registered.secret, redirect_uri: registered.redirect });
    expect(old.res.status).toBe(400);
    expect(old.res.location).toBeNull();
    registered.redirect = 'http://localhost:9502/callback';
    const now = await signInAt({ client_id: registered.clientId, client_secret: registered.secret, redirect_uri: registered.redirect });
    expect(now.res.status).toBe(303);
    expect(now.res.location!.startsWith(`${registered.redirect}?`)).toBe(true);
  });

  it('refuses URIs that registration would refuse, and malformed forms; nothing changes', async () => {
    const before = await srv.system.store.portals.find(registered.clientId);
    const base = { redirect_uris: 'http://localhost:9502/callback', post_logout_redirect_uris: '', backchannel_logout_uri: '', reason: 'trying a bad edit here' };
    for (const over of [
      { redirect_uris: 'javascript:alert(document.cookie)' },
      { redirect_uris: 'https://evil.example/cb#x' },
      { redirect_uris: 'HTTP://LOCALHOST:9502/callback' },
      { redirect_uris: '' },
      { post_logout_redirect_uris: 'data:text/html,hi' },
      { backchannel_logout_uri: 'ftp://localhost/x' },
      { reason: 'abc' },
    ]) {
      const res = await post(browser, `/admin/portals/${registered.clientId}/uris`, { ...base, ...over }, `/admin/portals/${registered.clientId}`);
      expect([over, res.status]).toEqual([over, 400]);
      expect(res.text).toContain('data-testid="console-refusal"');
    }
    for (const fields of [
      { ...base, 'redirect_uris[$ne]': 'x' },
      { ...base, redirect_uris: `http://localhost:9502/${'a'.repeat(5000)}` },
      { redirect_uris: base.redirect_uris },
    ]) {
      expect((await post(browser, `/admin/portals/${registered.clientId}/uris`, fields, `/admin/portals/${registered.clientId}`)).status).toBe(400);
    }
    const after = await srv.system.store.portals.find(registered.clientId);
    expect(after!.metadata).toEqual(before!.metadata);
    expect(after!.updatedAt).toBe(before!.updatedAt);
  });

  it('answers an unknown client id with 404', async () => {
    expect((await page(browser, '/admin/portals/portal-nobody')).status).toBe(404);
    expect((await page(browser, '/admin/portals/%24where')).status).toBe(404);
    const res = await post(browser, '/admin/portals/portal-nobody/disable', { reason: 'no such portal here' });
    expect(res.status).toBe(404);
  });
});

describe('disabling and enabling', () => {
  it('disables the portal (sign-in refused) and enables it again, each recorded with the reason', async () => {
    const res = await post(browser, `/admin/portals/${registered.clientId}/disable`, { reason: 'Sự cố bảo mật tại cổng, tạm dừng' }, `/admin/portals/${registered.clientId}`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${srv.adminUrl}/admin/portals/${registered.clientId}?done=disabled`);
    expect((await srv.system.store.portals.find(registered.clientId))!.disabled).toBe(true);
    const refused = await signInAt({ client_id: registered.clientId, client_secret: registered.secret, redirect_uri: registered.redirect });
    expect(refused.res.status).toBe(400);
    expect(refused.res.location).toBeNull();

    // Disabling twice is a conflict, not a second event.
    const again = await post(browser, `/admin/portals/${registered.clientId}/disable`, { reason: 'Sự cố bảo mật tại cổng, tạm dừng' }, `/admin/portals/${registered.clientId}`);
    expect(again.status).toBe(409);

    const [disabled] = await audit('PORTAL_DISABLED', registered.clientId);
    expect(disabled!.details).toMatchObject({ portal: registered.clientId, operator: integration.id });
    const updates = await audit('PORTAL_UPDATED', registered.clientId);
    expect(updates.filter((e) => e.details.change === 'disabled')).toHaveLength(1);
    expect(updates[0]!.details).toMatchObject({ operator: integration.id, role: 'integration', via: 'console', reason: 'Sự cố bảo mật tại cổng, tạm dừng', change: 'disabled' });

    const on = await post(browser, `/admin/portals/${registered.clientId}/enable`, { reason: 'Cổng đã khắc phục sự cố' }, `/admin/portals/${registered.clientId}`);
    expect(on.url).toBe(`${srv.adminUrl}/admin/portals/${registered.clientId}?done=enabled`);
    expect((await srv.system.store.portals.find(registered.clientId))!.disabled).toBe(false);
    const [enabled] = await audit('PORTAL_UPDATED', registered.clientId);
    expect(enabled!.details).toMatchObject({ operator: integration.id, role: 'integration', reason: 'Cổng đã khắc phục sự cố', change: 'enabled' });
    expect((await audit('PORTAL_ENABLED', registered.clientId))[0]!.details).toMatchObject({ operator: integration.id });
    const back = await signInAt({ client_id: registered.clientId, client_secret: registered.secret, redirect_uri: registered.redirect });
    expect(back.res.status).toBe(303);
  });
});

describe('approvals', () => {
  const asActor = (op: TestOperator): Actor => ({ id: op.id, roles: op.roles, via: 'console' });

  it('proposes national_id; it is not approved until a second integration operator approves', async () => {
    await freshFactor(integration, browser);
    const res = await post(browser, `/admin/portals/${registered.clientId}/approve-national-id`, {
      legal_basis: 'Nghị định 59/2022/NĐ-CP, Điều 14', reason: 'Cổng cần số định danh để tra hồ sơ',
    }, `/admin/portals/${registered.clientId}`);
    expect(res.status).toBe(200);
    const approval = /\?done=proposed&approval=([0-9a-f-]{36})$/.exec(res.url)?.[1];
    expect(approval).toBeDefined();
    expect((await srv.system.store.portals.find(registered.clientId))!.nationalId).toBe(false);
    const shown = res;
    expect(shown.text).toContain(approval!);
    expect(shown.text).toContain('data-testid="national-id-proposal"');
    // No second proposal while one waits.
    expect(shown.text).not.toContain(`action="/admin/portals/${registered.clientId}/approve-national-id"`);
    const twice = await post(browser, `/admin/portals/${registered.clientId}/approve-national-id`, { legal_basis: 'Nghị định 59/2022/NĐ-CP, Điều 14', reason: 'Cổng cần số định danh để tra hồ sơ' }, `/admin/portals/${registered.clientId}`);
    expect(twice.status).toBe(409);

    const [proposed] = await audit('APPROVAL_PROPOSED');
    expect(proposed!.details).toMatchObject({ operator: integration.id, role: 'integration', via: 'console', reason: 'Cổng cần số định danh để tra hồ sơ', approval, subject: registered.clientId });

    // The proposer cannot approve their own proposal; a second integration operator can.
    const approvals = srv.system.adminActions.approvals;
    await expect(approvals.approve(asActor(integration), approval, 'tự phê duyệt không được')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(approvals.approve(asActor(helpdesk), approval, 'không có vai trò tích hợp')).rejects.toMatchObject({ code: 'forbidden' });
    expect((await srv.system.store.portals.find(registered.clientId))!.nationalId).toBe(false);
    const decided = await approvals.approve(asActor(second), approval, 'Đã đối chiếu căn cứ pháp lý');
    expect(decided.outcome).toBe('done: national_id approved');
    const portal = await srv.system.store.portals.find(registered.clientId);
    expect(portal!.nationalId).toBe(true);
    expect(portal!.nationalIdBasis).toBe('Nghị định 59/2022/NĐ-CP, Điều 14');
    const [approved] = await audit('PORTAL_APPROVED', registered.clientId);
    expect(approved!.details).toMatchObject({ scope: 'national_id', operator: integration.id, approved_by: second.id, legal_basis: 'Nghị định 59/2022/NĐ-CP, Điều 14' });
  });

  it('approves offline_access directly, with its legal basis; a portal without refresh tokens is refused', async () => {
    await freshFactor(integration, browser);
    const res = await post(browser, `/admin/portals/${registered.clientId}/approve-offline-access`, {
      legal_basis: 'Quyết định 12/QĐ-BCA về dịch vụ nền', reason: 'Cổng đồng bộ hồ sơ ban đêm',
    }, `/admin/portals/${registered.clientId}`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${srv.adminUrl}/admin/portals/${registered.clientId}?done=offline_access`);
    const portal = await srv.system.store.portals.find(registered.clientId);
    expect(portal!.metadata['urn:dinhdanh:offline_access']).toBe(true);
    expect(String(portal!.metadata.scope).split(' ')).toEqual(expect.arrayContaining(['offline_access', 'national_id']));
    const [entry] = await audit('PORTAL_APPROVED', registered.clientId);
    expect(entry!.details).toMatchObject({ operator: integration.id, role: 'integration', via: 'console', reason: 'Cổng đồng bộ hồ sơ ban đêm', scope: 'offline_access', legal_basis: 'Quyết định 12/QĐ-BCA về dịch vụ nền' });

    const plain = await srv.addPortal();
    const refused = await post(browser, `/admin/portals/${plain.client_id}/approve-offline-access`, { legal_basis: 'Quyết định 12/QĐ-BCA về dịch vụ nền', reason: 'Cổng đồng bộ hồ sơ ban đêm' }, `/admin/portals/${plain.client_id}`);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('refresh_token');
    for (const fields of [{ legal_basis: '', reason: 'Cổng đồng bộ hồ sơ ban đêm' }, { legal_basis: 'x'.repeat(501), reason: 'Cổng đồng bộ hồ sơ ban đêm' }, { legal_basis: 'Quyết định 12', reason: '' }]) {
      const withRefresh = await srv.addPortal({ grantTypes: ['refresh_token'] });
      const r = await post(browser, `/admin/portals/${withRefresh.client_id}/approve-offline-access`, fields, `/admin/portals/${withRefresh.client_id}`);
      expect(r.status).toBe(400);
      expect((await srv.system.store.portals.find(withRefresh.client_id))!.metadata['urn:dinhdanh:offline_access']).toBeUndefined();
    }
    expect((await srv.system.store.portals.find(plain.client_id))!.metadata['urn:dinhdanh:offline_access']).toBeUndefined();
  });

  it('asks for the second factor again when the last one is older than five minutes, and changes nothing', async () => {
    const target = await srv.addPortal({ grantTypes: ['refresh_token'] });
    tick(6 * 60_000);
    const res = await post(browser, `/admin/portals/${target.client_id}/approve-offline-access`, { legal_basis: 'Quyết định 12/QĐ-BCA về dịch vụ nền', reason: 'Cổng đồng bộ hồ sơ ban đêm' }, `/admin/portals/${target.client_id}`);
    expect(res.status).toBe(403);
    expect(res.text).toContain('data-testid="reauth-link"');
    expect(decodeEntities(res.text)).toContain(`return=${encodeURIComponent(`/admin/portals/${target.client_id}`)}`);
    expect((await srv.system.store.portals.find(target.client_id))!.metadata['urn:dinhdanh:offline_access']).toBeUndefined();
    const nid = await post(browser, `/admin/portals/${target.client_id}/approve-national-id`, { legal_basis: 'Nghị định 59/2022/NĐ-CP', reason: 'Cổng cần số định danh' }, `/admin/portals/${target.client_id}`);
    expect(nid.status).toBe(403);
    expect((await srv.system.adminActions.approvals.list({ state: 'pending', limit: 50 })).filter((a) => a.subject === target.client_id)).toEqual([]);
  });
});

describe('rotating a secret', () => {
  const grant = (clientId: string, secret: string) =>
    fetch(`${srv.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
  const secretOf = (html: string) => decodeEntities(/data-testid="client-secret">([^<]+)</.exec(html)![1]!);

  it('offers 24 hours by default; shows the new secret once; the old one works through the grace period, and with none it stops at once', async () => {
    const portal = await srv.addPortal({ grantTypes: ['client_credentials'] });
    const form = await page(browser, `/admin/portals/${portal.client_id}`);
    expect(form.text).toContain(`action="/admin/portals/${portal.client_id}/rotate-secret"`);
    expect(form.text).toMatch(/<option value="24h" selected>/);

    await freshFactor(integration, browser);
    const res = await post(browser, `/admin/portals/${portal.client_id}/rotate-secret`, { grace: '24h', reason: 'Định kỳ đổi khóa hằng năm' }, `/admin/portals/${portal.client_id}`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${srv.adminUrl}/admin/portals/${portal.client_id}/rotate-secret`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const first = secretOf(res.text);
    expect(first).not.toBe(portal.client_secret);
    expect(res.text).toContain('data-testid="grace"');
    expect((await grant(portal.client_id, first)).status).toBe(200);
    expect((await grant(portal.client_id, portal.client_secret)).status).toBe(200);
    // Shown once: the portal's page afterwards holds neither secret.
    const after = await page(browser, `/admin/portals/${portal.client_id}`);
    expect(after.text).not.toContain(first);
    expect(after.text).toContain('PORTAL_SECRET_ROTATED');
    expect(after.text).toContain('grace_seconds: 86400');

    const again = await post(browser, `/admin/portals/${portal.client_id}/rotate-secret`, { grace: '0', reason: 'Khóa bị lộ trong nhật ký của cổng' }, `/admin/portals/${portal.client_id}`);
    expect(again.status).toBe(200);
    const second = secretOf(again.text);
    expect((await grant(portal.client_id, second)).status).toBe(200);
    expect((await grant(portal.client_id, first)).status).toBe(401);
    expect((await grant(portal.client_id, portal.client_secret)).status).toBe(401);

    const rotations = await audit('PORTAL_SECRET_ROTATED', portal.client_id);
    expect(rotations.map((e) => e.details.grace_seconds)).toEqual([0, 86_400]);
    expect(rotations[0]!.details).toMatchObject({ operator: integration.id, role: 'integration', via: 'console', reason: 'Khóa bị lộ trong nhật ký của cổng' });
    for (const secret of [first, second]) {
      expect(JSON.stringify(rotations)).not.toContain(secret);
      expect(logLines.some((l) => l.includes(secret))).toBe(false);
    }
  });

  it('refuses the console client, a grace not offered, and a missing reason; nothing changes', async () => {
    const portal = await srv.addPortal({ grantTypes: ['client_credentials'] });
    const before = await srv.system.store.portals.find(portal.client_id);
    const consoleBefore = await srv.system.store.portals.find(CONSOLE_CLIENT_ID);
    await freshFactor(integration, browser);
    const own = await post(browser, `/admin/portals/${CONSOLE_CLIENT_ID}/rotate-secret`, { grace: '0', reason: 'probing the first-party client' });
    expect(own.status).toBe(403);
    expect(own.text).not.toContain('data-testid="client-secret"');
    for (const fields of [{ grace: '30d', reason: 'Định kỳ đổi khóa hằng năm' }, { grace: '24h', reason: '' }, { grace: '24h', reason: 'Định kỳ', 'grace[$ne]': 'x' }, { reason: 'Định kỳ đổi khóa hằng năm' }]) {
      const res = await post(browser, `/admin/portals/${portal.client_id}/rotate-secret`, fields as Record<string, string>, `/admin/portals/${portal.client_id}`);
      expect([fields, res.status]).toEqual([fields, 400]);
      expect(res.text).not.toContain('data-testid="client-secret"');
    }
    expect(await srv.system.store.portals.find(portal.client_id)).toEqual(before);
    expect(await srv.system.store.portals.find(CONSOLE_CLIENT_ID)).toEqual(consoleBefore);
    expect((await grant(portal.client_id, portal.client_secret)).status).toBe(200);
  });

  it('asks for the second factor again when the last one is older than five minutes', async () => {
    const portal = await srv.addPortal({ grantTypes: ['client_credentials'] });
    const before = await srv.system.store.portals.find(portal.client_id);
    tick(6 * 60_000);
    const res = await post(browser, `/admin/portals/${portal.client_id}/rotate-secret`, { grace: '24h', reason: 'Định kỳ đổi khóa hằng năm' }, `/admin/portals/${portal.client_id}`);
    expect(res.status).toBe(403);
    expect(res.text).toContain('data-testid="reauth-link"');
    expect(await srv.system.store.portals.find(portal.client_id)).toEqual(before);
  });
});

describe('another role', () => {
  it('a helpdesk operator gets 403 on every portals page and every direct POST (with a valid CSRF token); nothing changes', async () => {
    tick();
    ({ browser: helpdeskBrowser } = await consoleSignIn(srv, helpdesk, { codeAt: now() }));
    const target = await srv.addPortal({ grantTypes: ['refresh_token'] });
    const before = await srv.system.store.portals.find(target.client_id);
    const count = await srv.system.store.portals.count();
    expect((await page(helpdeskBrowser, '/admin')).status).toBe(200);
    for (const path of ['/admin/portals', '/admin/portals/new', `/admin/portals/${target.client_id}`, `/admin/portals/${CONSOLE_CLIENT_ID}`]) {
      expectForbidden(await page(helpdeskBrowser, path));
    }
    const reason = { reason: 'helpdesk probing the portals section' };
    for (const [path, fields] of [
      ['/admin/portals', registerFields()],
      [`/admin/portals/${target.client_id}/uris`, { redirect_uris: 'http://localhost:9777/cb', ...reason }],
      [`/admin/portals/${target.client_id}/disable`, reason],
      [`/admin/portals/${target.client_id}/enable`, reason],
      [`/admin/portals/${target.client_id}/rotate-secret`, { grace: '0', ...reason }],
      [`/admin/portals/${target.client_id}/approve-national-id`, { legal_basis: 'Nghị định 59/2022/NĐ-CP', ...reason }],
      [`/admin/portals/${target.client_id}/approve-offline-access`, { legal_basis: 'Nghị định 59/2022/NĐ-CP', ...reason }],
    ] as const) {
      // The CSRF token is a valid one, from a page the helpdesk operator may open.
      const res = await post(helpdeskBrowser, path, fields as Record<string, string>, '/admin');
      expect([path, res.status]).toEqual([path, 403]);
    }
    expect(await srv.system.store.portals.find(target.client_id)).toEqual(before);
    expect(await srv.system.store.portals.count()).toBe(count);
    const refusals = (await audit('CONSOLE_ACCESS_REFUSED')).filter((e) => e.details.operator === helpdesk.id);
    expect(refusals.length).toBeGreaterThanOrEqual(11);
    expect(refusals.every((e) => e.details.permission === 'portals.read' || e.details.permission === 'portals.act')).toBe(true);
    expect((await srv.system.adminActions.approvals.list({ state: 'pending', limit: 50 })).filter((a) => a.subject === target.client_id)).toEqual([]);
  });

  it('an operator without the console session cannot post at all', async () => {
    const res = await fetch(`${srv.adminUrl}/admin/portals`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: srv.adminUrl }, body: new URLSearchParams(registerFields()).toString() });
    expect(res.status).toBe(401);
  });

  it('a forged CSRF token or another origin is refused for an integration operator too', async () => {
    const count = await srv.system.store.portals.count();
    const form = await page(browser, '/admin/portals/new');
    const csrf = hiddenField(form.text, '_csrf');
    expect((await browser.post(`${srv.adminUrl}/admin/portals`, { _csrf: 'forged', ...registerFields() }, { origin: srv.adminUrl })).status).toBe(403);
    expect((await browser.post(`${srv.adminUrl}/admin/portals`, { _csrf: csrf, ...registerFields() }, { origin: srv.issuer, 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await browser.post(`${srv.adminUrl}/admin/portals`, { _csrf: csrf, ...registerFields() }, { origin: srv.issuer, 'sec-fetch-site': '' })).status).toBe(403);
    expect(await srv.system.store.portals.count()).toBe(count);
  });
});

describe('the audit chain', () => {
  it('holds every change above, unbroken', async () => {
    await srv.system.audit.flush();
    const result = await verifyAuditLog(srv.system.store.audit);
    expect(result.ok).toBe(true);
  });
});
