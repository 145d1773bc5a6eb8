/**
 * A citizen acts for an enterprise (issue 5): the choice after sign-in (PRODUCT.md's `name="org"`
 * radios), the `org` claim in the ID token and at userinfo, branches, `org_hint`, delegations
 * limited in time and to portals, and revocation, expiry and suspension taking effect at once —
 * tokens inactive, refresh refused, portals told by back-channel logout. Forged choices refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, redeem, type AuthRequest } from '../helpers/rp.js';
import { LogoutReceiver } from '../helpers/logout-receiver.js';

const OPERATOR = { operator: 'test' } as const;
const ENTERPRISE = '0101234567';
const BRANCH = '0101234567-001';
const OTHER = '0309876543';

let srv: TestServer;
let clock = Date.UTC(2030, 5, 1, 3, 0, 0);
let receiver: LogoutReceiver;
type Portal = Awaited<ReturnType<TestServer['addPortal']>>;
type Person = Awaited<ReturnType<TestServer['addPerson']>>;
let portal: Portal;
let other: Portal;
let rep: Person;
let staff: Person;
let stranger: Person;

beforeAll(async () => {
  receiver = await new LogoutReceiver().start();
  srv = await startTestServer({ now: () => clock });
  portal = await srv.addPortal({ name: 'Cổng thuế', grantTypes: ['authorization_code', 'refresh_token'], backchannelLogoutUri: receiver.url('/thue') });
  other = await srv.addPortal({ name: 'Cổng hải quan' });
  rep = await srv.addPerson({ pid: '001090100001' });
  staff = await srv.addPerson({ pid: '001090100002' });
  stranger = await srv.addPerson({ pid: '001090100003' });
  await srv.system.orgs.register({ code: ENTERPRISE, name: 'Công ty TNHH Sông Hồng', representatives: [rep.pid] }, OPERATOR);
  await srv.system.orgs.register({ code: BRANCH, name: 'Chi nhánh Hải Phòng', representatives: [] }, OPERATOR);
  await srv.system.orgs.register({ code: OTHER, name: 'Công ty CP Mê Kông', representatives: [stranger.pid] }, OPERATOR);
});
afterAll(async () => {
  await srv.close();
  await receiver.close();
});

interface Started {
  browser: Browser;
  req: AuthRequest;
  config: oidc.Configuration;
  page: Response;
}

/** Signs in with scope organization and stops at the enterprise page. */
async function toOrgPage(p: Portal, person: Person, extra: Record<string, string> = {}, browser = new Browser(srv.issuer)): Promise<Started> {
  const config = await discover(srv.issuer, p);
  const req = await authRequest(config, p, { scope: 'openid profile organization', ...extra });
  let page = await browser.get(req.url.href);
  if (page.text.includes('name="identifier"')) {
    page = await browser.post(new URL(formAction(page.text), req.url).href, { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password });
  }
  return { browser, req, config, page };
}

function radios(page: Response): Array<{ code: string; checked: boolean }> {
  return [...page.text.matchAll(/<input type="radio" name="org" id="[^"]*" value="([^"]+)"( checked)?/g)].map((m) => ({ code: m[1]!, checked: !!m[2] }));
}

/** Chooses an enterprise, consents if asked, and redeems the code. */
async function choose(s: Started, code: string) {
  let res = await s.browser.post(new URL(formAction(s.page.text), s.req.url).href, { _csrf: hiddenField(s.page.text, '_csrf'), org: code });
  if (res.status === 200 && res.text.includes('name="decision"')) {
    res = await s.browser.post(new URL(formAction(res.text), s.req.url).href, { _csrf: hiddenField(res.text, '_csrf'), decision: 'allow' });
  }
  expect(res.status).toBe(303);
  const tokens = await redeem(s.config, s.req, res.location!);
  return { tokens, claims: tokens.claims()! };
}

describe('choosing the enterprise', () => {
  it('a legal representative sees the enterprise and its branch, and the portal receives org with the role', async () => {
    const s = await toOrgPage(portal, rep);
    expect(s.page.status).toBe(200);
    expect(radios(s.page).map((r) => r.code)).toEqual([ENTERPRISE, BRANCH]);
    expect(s.page.text).toContain('Người đại diện theo pháp luật');
    const { tokens, claims } = await choose(s, ENTERPRISE);
    expect(claims.org).toEqual({ code: ENTERPRISE, name: 'Công ty TNHH Sông Hồng', role: 'legal_representative' });
    const info = await oidc.fetchUserInfo(s.config, tokens.access_token, claims.sub);
    expect(info.org).toEqual(claims.org);
    expect(info.name).toBe('Nguyễn Văn An');

    // sub stays the person's pairwise subject at this portal.
    const plain = await discover(srv.issuer, portal);
    const req = await authRequest(plain, portal, { prompt: 'none' });
    const silent = await s.browser.get(req.url.href);
    const again = await redeem(plain, req, silent.location!);
    expect(again.claims()!.sub).toBe(claims.sub);
    expect(again.claims()!.org).toBeUndefined();
  });

  it('a branch carries its parent_code', async () => {
    const { claims } = await choose(await toOrgPage(portal, rep), BRANCH);
    expect(claims.org).toEqual({ code: BRANCH, name: 'Chi nhánh Hải Phòng', role: 'legal_representative', parent_code: ENTERPRISE });
  });

  it('org_hint preselects; a malformed org_hint is refused', async () => {
    const s = await toOrgPage(portal, rep, { org_hint: BRANCH });
    expect(radios(s.page)).toEqual([{ code: ENTERPRISE, checked: false }, { code: BRANCH, checked: true }]);
    const bad = await new Browser(srv.issuer).get((await authRequest(s.config, portal, { scope: 'openid organization', org_hint: "0101' OR 1=1" })).url.href);
    expect(new URL(bad.location!).searchParams.get('error')).toBe('invalid_request');
  });

  it('the choice is per authorization: prompt=none cannot reuse it, and a new choice never rewrites earlier tokens', async () => {
    const s = await toOrgPage(portal, rep);
    const first = await choose(s, ENTERPRISE);
    const silentReq = await authRequest(s.config, portal, { scope: 'openid organization', prompt: 'none' });
    const silent = await s.browser.get(silentReq.url.href);
    expect(new URL(silent.location!).searchParams.get('error')).toBe('interaction_required');

    const s2 = await toOrgPage(portal, rep, {}, s.browser);
    expect(s2.page.text).not.toContain('name="password"');
    const second = await choose(s2, BRANCH);
    expect((second.claims.org as { code: string }).code).toBe(BRANCH);
    // The portal's session in this browser now rests on the new authorization: the earlier access
    // token stops (oidc-provider: one grant per session and portal) rather than answering with
    // the new enterprise.
    await expect(oidc.fetchUserInfo(s.config, first.tokens.access_token, first.claims.sub)).rejects.toThrow();
    expect(await oidc.tokenIntrospection(s.config, first.tokens.access_token)).toEqual({ active: false });
    const info = await oidc.fetchUserInfo(s.config, second.tokens.access_token, second.claims.sub);
    expect((info.org as { code: string }).code).toBe(BRANCH);
  });

  it('a person with no enterprise sees why, and the portal receives access_denied', async () => {
    const nobody = await srv.addPerson();
    const s = await toOrgPage(portal, nobody);
    expect(radios(s.page)).toEqual([]);
    expect(alertText(s.page.text)).toMatch(/chưa được ghi nhận/);
    const back = s.page.text.match(/href="(\/interaction\/[^"]+reason=no_org)"/)![1]!;
    const res = await s.browser.get(new URL(back.replace(/&amp;/g, '&'), srv.issuer).href);
    const params = new URL(res.location!).searchParams;
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('code')).toBeNull();
  });

  it.each([
    ['an enterprise the person does not represent', OTHER],
    ['an unknown enterprise', '0100000001'],
    ['a malformed code', "0101234567' OR '1'='1"],
    ['nothing', ''],
  ])('a forged choice (%s) is refused on the page, with no code', async (_label, code) => {
    const s = await toOrgPage(portal, rep);
    const res = await s.browser.post(new URL(formAction(s.page.text), s.req.url).href, { _csrf: hiddenField(s.page.text, '_csrf'), org: code });
    expect(res.status).toBe(400);
    expect(alertText(res.text)).toMatch(/Hãy chọn một doanh nghiệp/);
    expect(res.location).toBeNull();
    // The page still works with an honest choice.
    const { claims } = await choose({ ...s, page: res }, ENTERPRISE);
    expect((claims.org as { code: string }).code).toBe(ENTERPRISE);
  });

  it('an operator-shaped field is malformed, not a query', async () => {
    const s = await toOrgPage(portal, rep);
    const res = await s.browser.request(new URL(formAction(s.page.text), s.req.url).href, {
      method: 'POST',
      body: `_csrf=${encodeURIComponent(hiddenField(s.page.text, '_csrf'))}&org[$ne]=x`,
      headers: { origin: srv.issuer, 'sec-fetch-site': 'same-origin' },
    });
    expect(res.status).toBe(400);
  });
});

describe('delegations', () => {
  it('a delegate acts in the delegated role until its date; only at the portals it lists', async () => {
    await srv.system.orgs.delegate({ code: ENTERPRISE, pid: staff.pid, fullName: 'Nguyễn Văn An', role: 'ke-toan', until: '2030-06-30', portals: [portal.client_id] }, { personId: (await srv.system.store.persons.findByPid(rep.pid))!.id });
    const s = await toOrgPage(portal, staff);
    expect(radios(s.page)).toEqual([{ code: ENTERPRISE, checked: true }]);
    expect(s.page.text).toContain('ke-toan');
    const { claims } = await choose(s, ENTERPRISE);
    expect(claims.org).toEqual({
      code: ENTERPRISE, name: 'Công ty TNHH Sông Hồng', role: 'ke-toan', delegation_expires: Date.UTC(2030, 6, 1, 0, 0, 0) / 1000 - 7 * 3600,
    });
    // At another portal the delegation does not apply.
    const elsewhere = await toOrgPage(other, staff);
    expect(radios(elsewhere.page)).toEqual([]);
  });

  it('only a legal representative may delegate or revoke', async () => {
    const strangerId = (await srv.system.store.persons.findByPid(stranger.pid))!.id;
    await expect(srv.system.orgs.delegate({ code: ENTERPRISE, pid: stranger.pid, role: 'ke-toan' }, { personId: strangerId })).rejects.toThrow(/only a legal representative/);
    await expect(srv.system.orgs.revoke(ENTERPRISE, staff.pid, { personId: strangerId })).rejects.toThrow(/only a legal representative/);
  });

  it('revoking ends it at once: tokens inactive, refresh refused, userinfo 401, the portal told; the choice is gone', async () => {
    const employee = await srv.addPerson({ pid: '001090100010' });
    await srv.system.orgs.delegate({ code: ENTERPRISE, pid: employee.pid, role: 'nhan-vien' }, OPERATOR);
    const s = await toOrgPage(portal, employee);
    const { tokens, claims } = await choose(s, ENTERPRISE);
    expect(tokens.refresh_token).toBeDefined();
    expect((await oidc.tokenIntrospection(s.config, tokens.access_token)).active).toBe(true);
    const sid = claims.sid as string;

    await expect(srv.system.orgs.revoke(ENTERPRISE, employee.pid, OPERATOR)).resolves.toBe(true);
    expect((await oidc.tokenIntrospection(s.config, tokens.access_token)).active).toBe(false);
    await expect(oidc.fetchUserInfo(s.config, tokens.access_token, claims.sub)).rejects.toThrow();
    await expect(oidc.refreshTokenGrant(s.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    await srv.system.jobs.runDue();
    const logout = (await receiver.waitFor('/thue')).map((t) => jose.decodeJwt(t)).find((p) => p.sid === sid);
    expect(logout).toMatchObject({ sub: claims.sub, sid });
    await expect(srv.system.orgs.revoke(ENTERPRISE, employee.pid, OPERATOR)).resolves.toBe(false);
    const after = await toOrgPage(portal, employee, {}, s.browser);
    expect(radios(after.page)).toEqual([]);
  });

  it('an expired delegation stops working at its date, and its sweep ends the grants', async () => {
    const temp = await srv.addPerson({ pid: '001090100011' });
    await srv.system.orgs.delegate({ code: ENTERPRISE, pid: temp.pid, role: 'thoi-vu', until: '2030-06-01' }, OPERATOR);
    const s = await toOrgPage(portal, temp);
    const { tokens } = await choose(s, ENTERPRISE);
    expect((await oidc.tokenIntrospection(s.config, tokens.access_token)).active).toBe(true);
    const saved = clock;
    clock = Date.UTC(2030, 5, 1, 17, 0, 1); // 00:00:01 on 2 June in Vietnam
    try {
      expect((await oidc.tokenIntrospection(s.config, tokens.access_token)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(s.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      await srv.system.jobs.runDue();
      const grants = await srv.system.store.orgs.grantsFor(ENTERPRISE, (await srv.system.store.persons.findByPid(temp.pid))!.id);
      expect(grants).toEqual([]);
    } finally {
      clock = saved;
    }
  });
});

describe('a suspended enterprise', () => {
  it('nobody acts for it or its branches; its tokens stop working; reactivation restores the choice', async () => {
    const owner = await srv.addPerson({ pid: '001090100020' });
    await srv.system.orgs.register({ code: '0400000001', name: 'Công ty Tạm Ngưng', representatives: [owner.pid] }, OPERATOR);
    await srv.system.orgs.register({ code: '0400000001-002', name: 'Chi nhánh Đà Nẵng', representatives: [] }, OPERATOR);
    const s = await toOrgPage(portal, owner);
    const { tokens } = await choose(s, '0400000001-002');
    await srv.system.orgs.setStatus('0400000001', 'suspended', OPERATOR, 'tax debt');
    expect((await oidc.tokenIntrospection(s.config, tokens.access_token)).active).toBe(false);
    const later = await toOrgPage(portal, owner, {}, s.browser);
    expect(radios(later.page)).toEqual([]);
    await srv.system.orgs.setStatus('0400000001', 'active', OPERATOR);
    const back = await toOrgPage(portal, owner, {}, s.browser);
    expect(radios(back.page).map((r) => r.code)).toEqual(['0400000001', '0400000001-002']);
  });
});

describe('/account/organizations', () => {
  /** A browser signed in (through a portal) as `person`. */
  async function signedIn(person: Person): Promise<Browser> {
    const browser = new Browser(srv.issuer);
    const config = await discover(srv.issuer, other);
    const req = await authRequest(config, other);
    let page = await browser.get(req.url.href);
    page = await browser.post(new URL(formAction(page.text), req.url).href, { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password });
    if (page.text.includes('name="decision"')) await browser.post(new URL(formAction(page.text), req.url).href, { _csrf: hiddenField(page.text, '_csrf'), decision: 'allow' });
    return browser;
  }
  const url = (p: string) => `${srv.issuer}${p}`;

  it('a legal representative delegates and revokes; the delegate sees it and can choose the enterprise in between', async () => {
    const owner = await srv.addPerson({ pid: '001090100030' });
    const clerk = await srv.addPerson({ pid: '001090100031' });
    await srv.system.orgs.register({ code: '0500000001', name: 'Hợp tác xã Lúa Vàng', representatives: [owner.pid] }, OPERATOR);
    const browser = await signedIn(owner);
    const page = await browser.get(url('/account/organizations'));
    expect(page.status).toBe(200);
    expect(page.text).toContain('Hợp tác xã Lúa Vàng');
    const csrf = hiddenField(page.text, '_csrf');

    const done = await browser.post(url('/account/organizations/delegate'), { _csrf: csrf, code: '0500000001', pid: clerk.pid, full_name: '  nguyễn   văn AN ', role: 'thu-quy', until: '' });
    expect(done.status).toBe(200);
    expect(alertText(done.text)).toBe('Đã ủy quyền.');
    expect(done.text).toContain('…031');
    expect(done.text).not.toContain(clerk.pid);

    const clerkPage = await toOrgPage(portal, clerk);
    expect(radios(clerkPage.page)).toEqual([{ code: '0500000001', checked: true }]);
    const { tokens } = await choose(clerkPage, '0500000001');

    const person = done.text.match(/name="person" value="([^"]+)"/)![1]!;
    const revoked = await browser.post(url('/account/organizations/revoke'), { _csrf: csrf, code: '0500000001', person });
    expect(alertText(revoked.text)).toMatch(/Đã thu hồi ủy quyền/);
    expect((await oidc.tokenIntrospection(clerkPage.config, tokens.access_token)).active).toBe(false);
  });

  it.each([
    ['a role with spaces', { role: 'kế toán' }, 400, /Vai trò phải là mã ngắn/],
    ['a short pid', { pid: '12345' }, 400, /12 chữ số/],
    ['an unknown person', { pid: '001090999999' }, 400, /Không có tài khoản nào khớp/],
    ['a known person under another name', { full_name: 'Trần Thị Bình' }, 400, /Không có tài khoản nào khớp/],
    ['a known person under the name without its diacritics', { full_name: 'Nguyen Van An' }, 400, /Không có tài khoản nào khớp/],
    ['no name', { full_name: '' }, 400, /Không có tài khoản nào khớp/],
    ['a past date', { until: '2020-01-01' }, 400, /Ngày kết thúc/],
    ['another enterprise', { code: OTHER }, 403, /Chỉ người đại diện theo pháp luật/],
    ['a malformed code', { code: "0101234567' --" }, 400, /Mã doanh nghiệp không hợp lệ/],
  ])('refuses %s with a message in the page, and stores nothing', async (_label, change, status, message) => {
    const browser = await signedIn(rep);
    const page = await browser.get(url('/account/organizations'));
    const before = (await srv.system.store.orgs.listDelegations(ENTERPRISE)).length;
    const res = await browser.post(url('/account/organizations/delegate'), {
      _csrf: hiddenField(page.text, '_csrf'), code: ENTERPRISE, pid: stranger.pid, full_name: 'Nguyễn Văn An', role: 'ke-toan', until: '', ...change,
    });
    expect(res.status).toBe(status);
    expect(alertText(res.text)).toMatch(message);
    expect((await srv.system.store.orgs.listDelegations(ENTERPRISE)).length).toBe(before);
  });

  it('reveals nothing about a number: an unknown one and a known one with the wrong name get the same page; attempts are limited; the delegate is told', async () => {
    const owner = await srv.addPerson({ pid: '001090100040' });
    const known = await srv.addPerson({ pid: '001090100041', name: 'Lê Thị Hoa', phone: '+84912000041', email: 'hoa@example.vn' });
    await srv.system.orgs.register({ code: '0500000002', name: 'Công ty Hoa Sen', representatives: [owner.pid] }, OPERATOR);
    const browser = await signedIn(owner);
    const page = await browser.get(url('/account/organizations'));
    const csrf = hiddenField(page.text, '_csrf');
    const attempt = (pid: string, fullName: string) => browser.post(url('/account/organizations/delegate'), { _csrf: csrf, code: '0500000002', pid, full_name: fullName, role: 'ke-toan', until: '' });
    const unknown = await attempt('001090100049', 'Lê Thị Hoa');
    const wrongName = await attempt(known.pid, 'Lê Thị Hòa');
    expect(wrongName.status).toBe(unknown.status);
    expect(alertText(wrongName.text)).toBe(alertText(unknown.text));
    expect(wrongName.text.replace(/value="[^"]{20,}"/g, '')).toBe(unknown.text.replace(/value="[^"]{20,}"/g, ''));
    expect(wrongName.text).not.toContain('Lê Thị Hòa');
    expect(await srv.system.store.orgs.listDelegations('0500000002')).toEqual([]);

    // The right number and name: delegated, and the delegate hears of it on their contacts.
    const done = await attempt(known.pid, 'lê thị hoa');
    expect(alertText(done.text)).toBe('Đã ủy quyền.');
    const outbox = fs.readFileSync(path.join(srv.system.config.outboxDir, 'outbox.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { to: string; text: string });
    const told = outbox.filter((m) => m.to === '+84912000041' || m.to === 'hoa@example.vn');
    expect(told.map((m) => m.to).sort()).toEqual(['+84912000041', 'hoa@example.vn']);
    expect(told[0]!.text).toContain('Công ty Hoa Sen');

    // Trying numbers one after another is cut short.
    let last = done;
    for (let i = 0; i < 12 && last.status !== 429; i += 1) last = await attempt(`0010901001${String(50 + i)}`, 'Lê Thị Hoa');
    expect(last.status).toBe(429);
    expect(alertText(last.text)).toMatch(/quá nhiều lần/);
    const afterLimit = await attempt(known.pid, 'Lê Thị Hoa');
    expect(afterLimit.status).toBe(429);
  });

  it('needs a recent sign-in: an older one is sent through re-authentication first', async () => {
    const browser = await signedIn(rep);
    const page = await browser.get(url('/account/organizations'));
    const saved = clock;
    clock += 6 * 60_000;
    try {
      const res = await browser.request(url('/account/organizations/delegate'), {
        method: 'POST',
        body: new URLSearchParams({ _csrf: hiddenField(page.text, '_csrf'), code: ENTERPRISE, pid: stranger.pid, full_name: 'Nguyễn Văn An', role: 'ke-toan' }).toString(),
        headers: { origin: srv.issuer, 'sec-fetch-site': 'same-origin' },
      });
      expect(res.status).toBe(303);
      const next = new URL(res.location!);
      expect(next.pathname).toBe('/auth');
      expect(next.searchParams.get('prompt')).toBe('login');
      expect(await srv.system.store.orgs.findDelegation(ENTERPRISE, (await srv.system.store.persons.findByPid(stranger.pid))!.id)).toBeUndefined();
    } finally {
      clock = saved;
    }
  });

  it('refuses a POST without the token or from another origin', async () => {
    const browser = await signedIn(rep);
    const page = await browser.get(url('/account/organizations'));
    const fields = { code: ENTERPRISE, pid: stranger.pid, role: 'ke-toan' };
    expect((await browser.post(url('/account/organizations/delegate'), fields)).status).toBe(403);
    expect((await browser.post(url('/account/organizations/delegate'), { ...fields, _csrf: hiddenField(page.text, '_csrf') }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
  });
});
