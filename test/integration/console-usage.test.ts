/**
 * The console's usage pictures, against the real server: /admin/usage for auditors and portal
 * integration only (help desk, key custodians and operators' admins refused, the refusal audited);
 * a `portal` query that is not a registered portal's client id refused with 400, its value never
 * written back; the 24-hour and 90-day charts and their tables showing the numbers put in the usage
 * statistics (rows through the store's usage repository, and real sign-ins through an openid-client
 * relying party), the tables holding the same numbers as the bars; and a portal's own page showing
 * its 30-day funnel (pages shown → signed in → consent → code redeemed).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TestServer } from '../helpers/harness.js';
import { Browser, type Response } from '../helpers/browser.js';
import { consoleTestKit, pageText, type TestOperator } from '../helpers/console.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';
import { addDays, vietnamDate } from '../../src/admin/sections/usage.js';
import { LOA } from '../../src/provider/levels.js';
import { VIETNAM_OFFSET_MS } from '../../src/metrics/usage.types.js';
import type { UsageCount } from '../../src/store/index.js';
import { validateResourceInput } from '../../src/portals/index.js';

const kit = consoleTestKit();
let srv: TestServer;
const ops: Record<'auditor' | 'integration' | 'helpdesk' | 'keys' | 'admin', TestOperator> = {} as never;
const browsers: Partial<Record<keyof typeof ops, Browser>> = {};

beforeAll(async () => {
  srv = await kit.start();
  for (const role of ['auditor', 'integration', 'helpdesk', 'keys', 'admin'] as const) ops[role] = await kit.operator([role]);
});
afterAll(() => kit.close());

async function as(role: keyof typeof ops): Promise<Browser> {
  return (browsers[role] ??= await kit.reusedConsoleAs(ops[role]));
}
const page = async (role: keyof typeof ops, path: string) => (await as(role)).get(`${srv.adminUrl}${path}`);

/** A chart's bars and table rows, read from the page (metrics/charts.ts writes both from one call). */
function chart(res: Response, id: string) {
  const start = res.text.indexOf(`<figure class="chart" id="${id}"`);
  expect(start).toBeGreaterThan(-1);
  const fig = res.text.slice(start, res.text.indexOf('</figure>', start));
  const svg = fig.slice(0, fig.indexOf('</svg>'));
  const table = fig.slice(fig.indexOf('<table'));
  const bars = [...svg.matchAll(/<g class="chart-bar" data-bar="([^"]*)" data-total="(\d+)">(.*?)<\/g>/g)].map((m) => ({
    label: m[1]!, total: Number(m[2]),
    series: Object.fromEntries([...m[3]!.matchAll(/data-series="([^"]+)" data-n="(\d+)"/g)].map((s) => [s[1]!, Number(s[2])])),
  }));
  const rows = [...table.matchAll(/<tr data-bar="([^"]*)">(.*?)<\/tr>/g)].map((m) => ({
    label: m[1]!, total: Number(/data-total="(\d+)"/.exec(m[2]!)![1]),
    series: Object.fromEntries([...m[2]!.matchAll(/data-series="([^"]+)" data-n="(\d+)"/g)].map((s) => [s[1]!, Number(s[2])]).filter(([, n]) => n !== 0)),
  }));
  return { fig, svg, bars, rows };
}

/** The page's bars and table rows agree, bar by bar and level by level. */
function expectTableMatchesBars(c: ReturnType<typeof chart>): void {
  expect(c.rows.map((r) => r.label)).toEqual(c.bars.map((b) => b.label));
  expect(c.rows.map((r) => r.total)).toEqual(c.bars.map((b) => b.total));
  expect(c.rows.map((r) => r.series)).toEqual(c.bars.map((b) => b.series));
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const pad = (n: number) => String(n).padStart(2, '0');

describe('who may see the usage statistics', () => {
  it('auditors and portal integration see /admin/usage and its link; the help desk, key custodians and operators\' admins are refused (403, audited)', async () => {
    for (const role of ['auditor', 'integration'] as const) {
      const res = await page(role, '/admin/usage');
      expect({ role, status: res.status }).toEqual({ role, status: 200 });
      expect(res.text).toContain('href="/admin/usage"');
      expect(res.text).toMatch(/<h1>[^<]+<\/h1>/);
      expect(res.text).toContain('data-testid="usage-hourly"');
      expect(res.text).toContain('data-testid="usage-daily"');
      // The dashboard shows the 24-hour picture, with a link to the page.
      const dash = await page(role, '/admin');
      expect(dash.text).toContain('data-testid="dashboard-hourly"');
      expect(dash.text).toContain('data-testid="usage-link"');
    }
    for (const role of ['helpdesk', 'keys', 'admin'] as const) {
      const res = await page(role, '/admin/usage');
      expect({ role, status: res.status }).toEqual({ role, status: 403 });
      expect(res.text).not.toContain('data-testid="usage-hourly"');
      const dash = await page(role, '/admin');
      expect(dash.status).toBe(200);
      expect(dash.text).not.toContain('href="/admin/usage"');
      expect(dash.text).not.toContain('data-testid="dashboard-hourly"');
    }
    const refused = await kit.audit('CONSOLE_ACCESS_REFUSED');
    for (const role of ['helpdesk', 'keys', 'admin'] as const) {
      expect(refused.some((e) => e.details.operator === ops[role].id && e.details.permission === 'usage.read' && e.details.why === 'role')).toBe(true);
    }
  });
});

describe('the portal query', () => {
  let portal: Awaited<ReturnType<TestServer['addPortal']>>;
  const hostile = '<script>alert("x")</script> & Cổng';
  beforeAll(async () => {
    portal = await srv.addPortal({ name: 'Cổng "Một cửa" & Dịch vụ' });
    // Registration refuses angle brackets in a name; one written straight into the store (an older
    // record, another tool) must still come out as text.
    const stored = (await srv.system.store.portals.find(portal.client_id))!;
    expect(await srv.system.store.portals.update(portal.client_id, { name: hostile, metadata: stored.metadata, secretCiphertext: stored.secretCiphertext })).toBe(true);
  });

  it('a registered portal is chosen in the select; its name is escaped in the select, the charts and their descriptions', async () => {
    const res = await page('auditor', `/admin/usage?portal=${portal.client_id}`);
    expect(res.status).toBe(200);
    expect(res.text).toContain(`<option value="${portal.client_id}" selected>`);
    expect(res.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Cổng');
    expect(res.text).toMatch(/<desc id="usage-hourly-desc">&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; Cổng: /);
    expect(res.text).not.toContain('<script');
    const show = await page('integration', `/admin/portals/${portal.client_id}`);
    expect(show.text).toContain('<desc id="usage-funnel-desc">&lt;script&gt;');
    expect(show.text).not.toContain('<script');
  });

  it.each([
    ['markup', '<script>alert(1)</script>'],
    ['an unregistered client id', 'khong-ton-tai-zq81'],
    ['a quote breaking out of an attribute', '"><img src=x onerror=alert(1)>'],
    ['a too long id', 'a'.repeat(65)],
    ['an operator\'s filter', '{"$ne":null}'],
  ])('%s: 400, a clear message, the value not written back', async (_what, value) => {
    const res = await page('auditor', `/admin/usage?portal=${encodeURIComponent(value)}`);
    expect(res.status).toBe(400);
    expect(res.text).toContain('data-testid="usage-bad-portal"');
    expect(pageText(res)).toContain('Không có cổng dịch vụ đã đăng ký nào mang mã này');
    expect(res.text).not.toContain(value);
    expect(res.text).not.toContain(value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'));
    expect(res.text).not.toContain('data-testid="usage-hourly"');
    expect(res.text).toMatch(/<select id="usage-portal" name="portal" aria-invalid="true"/);
  });

  it('a repeated query, or a resource server\'s client id, is refused too', async () => {
    expect((await page('auditor', `/admin/usage?portal=${portal.client_id}&portal=${portal.client_id}`)).status).toBe(400);
    // Nobody signs in at a resource server: it is not offered, and not accepted.
    const rs = await srv.system.portals.registerResource(validateResourceInput({ name: 'API thống kê', uri: 'http://localhost:9601/api', scopes: ['records:read'] }, { production: false }));
    const res = await page('auditor', `/admin/usage?portal=${rs.client_id}`);
    expect(res.status).toBe(400);
    expect(res.text).not.toContain(rs.client_id);
    // Empty means all portals.
    expect((await page('auditor', '/admin/usage?portal=')).status).toBe(200);
  });
});

describe('the numbers', () => {
  it('rows put in the usage statistics show in the 24-hour and 90-day charts and their tables, per portal and for all', async () => {
    const a = await srv.addPortal({ name: 'Cổng A thống kê' });
    const b = await srv.addPortal({ name: 'Cổng B thống kê' });
    // Two hours ago (Vietnam time): inside the 24-hour window whatever the hour now.
    const at = kit.now() - 2 * 3600_000;
    const day = vietnamDate(at);
    const hh = pad(new Date(at + VIETNAM_OFFSET_MS).getUTCHours());
    const earlier = addDays(vietnamDate(kit.now()), -40);
    const rows = (portal: string, d: string, counts: Record<string, number>): UsageCount[] => Object.entries(counts).map(([key, n]) => ({ day: d, portal, key, n }));
    await srv.system.store.usage.add([
      ...rows(a.client_id, day, {
        signins: 12, [`acr:${LOA.low}`]: 7, [`acr:${LOA.substantial}`]: 4, [`acr:${LOA.high}`]: 1,
        [`hour:${hh}:${LOA.low}`]: 7, [`hour:${hh}:${LOA.substantial}`]: 4, [`hour:${hh}:${LOA.high}`]: 1,
      }),
      ...rows(b.client_id, day, { signins: 5, [`acr:${LOA.low}`]: 5, [`hour:${hh}:${LOA.low}`]: 5 }),
      ...rows(a.client_id, earlier, { signins: 9, [`acr:${LOA.high}`]: 9, [`hour:10:${LOA.high}`]: 9 }),
    ]);

    const one = await page('auditor', `/admin/usage?portal=${a.client_id}`);
    expect(one.status).toBe(200);
    const hourly = chart(one, 'usage-hourly');
    expect(hourly.bars).toHaveLength(24);
    expectTableMatchesBars(hourly);
    const busy = hourly.bars.filter((x) => x.total > 0);
    expect(busy).toHaveLength(1);
    expect(busy[0]!.label).toMatch(new RegExp(` ${hh}:00$`));
    expect(busy[0]!.series).toEqual({ [LOA.low]: 7, [LOA.substantial]: 4, [LOA.high]: 1 });

    const daily = chart(one, 'usage-daily');
    expect(daily.bars).toHaveLength(90);
    expectTableMatchesBars(daily);
    const [y, m, d] = day.split('-');
    const dayBar = daily.bars.find((x) => x.label.includes(`${d}/${m}/${y}`))!;
    expect(dayBar.series).toEqual({ [LOA.low]: 7, [LOA.substantial]: 4, [LOA.high]: 1 });
    const [ey, em, ed] = earlier.split('-');
    expect(daily.bars.find((x) => x.label.includes(`${ed}/${em}/${ey}`))!.series).toEqual({ [LOA.high]: 9 });
    expect(sum(daily.bars.map((x) => x.total))).toBe(21);
    // The picture says it in words too.
    expect(hourly.svg).toMatch(/<desc id="usage-hourly-desc">Cổng A thống kê: 12 lượt đăng nhập/);

    // All portals: A and B added up.
    const all = await page('integration', '/admin/usage');
    const allHourly = chart(all, 'usage-hourly');
    expectTableMatchesBars(allHourly);
    expect(allHourly.bars.find((x) => x.total > 0)!.series).toEqual({ [LOA.low]: 12, [LOA.substantial]: 4, [LOA.high]: 1 });
    expectTableMatchesBars(chart(all, 'usage-daily'));

    // A portal with nothing: empty frames that say so, no NaN.
    const quiet = await srv.addPortal({ name: 'Cổng yên tĩnh' });
    const none = await page('auditor', `/admin/usage?portal=${quiet.client_id}`);
    expect(none.text).toContain('data-testid="usage-hourly-empty"');
    expect(none.text).toContain('data-testid="usage-daily-empty"');
    expect(none.text).not.toMatch(/NaN|Infinity/);
  });

  it('a portal\'s page shows its funnel for the last 30 days, from the usage rows', async () => {
    const p = await srv.addPortal({ name: 'Cổng phễu' });
    const today = vietnamDate(kit.now());
    await srv.system.store.usage.add([
      { day: addDays(today, -3), portal: p.client_id, key: 'funnel:shown', n: 40 },
      { day: addDays(today, -3), portal: p.client_id, key: 'signins', n: 30 },
      { day: addDays(today, -3), portal: p.client_id, key: 'consent:given', n: 20 },
      { day: addDays(today, -2), portal: p.client_id, key: 'consent:reused', n: 5 },
      { day: addDays(today, -2), portal: p.client_id, key: 'funnel:code', n: 24 },
      // Beyond 30 days: not counted.
      { day: addDays(today, -45), portal: p.client_id, key: 'funnel:shown', n: 1000 },
    ]);
    const res = await page('integration', `/admin/portals/${p.client_id}`);
    expect(res.status).toBe(200);
    const fig = res.text.slice(res.text.indexOf('<figure class="chart" id="usage-funnel"'));
    expect([...fig.matchAll(/<rect class="chart-funnel-bar"[^>]*data-n="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([40, 30, 25, 24]);
    expect([...fig.matchAll(/<td data-n="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([40, 30, 25, 24]);
    expect([...fig.matchAll(/<text class="chart-value"[^>]*>([^<]*)</g)].map((m) => m[1])).toEqual(['40 · 100%', '30 · 75%', '25 · 62,5%', '24 · 60%']);
    expect(res.text).toContain(`href="/admin/usage?portal=${p.client_id}"`);
  });

  it('real sign-ins at a portal (openid-client, password, consent, code redeemed) show in its funnel and the 24-hour chart at the low level', async () => {
    const p = await srv.addPortal({ name: 'Cổng đăng nhập thật' });
    // Registered straight through the portal service (no PORTAL_REGISTERED, which the console's
    // registration records and which relabels at once): the statistics would know the portal within a
    // minute (metrics/portal-labels.ts); read now so its first sign-in page is counted as its own.
    await srv.system.portalLabels.refresh();
    const config = await discover(srv.issuer, p);
    const n = 3;
    for (let i = 0; i < n; i++) {
      const person = await srv.addPerson();
      const req = await authRequest(config, p);
      const res = await signIn(new Browser(srv.issuer), req, person);
      expect(res.status).toBe(303);
      const tokens = await redeem(config, req, res.location!);
      expect(tokens.claims()!.acr).toBe(LOA.low);
    }
    // The usage service writes in the background (every 5 s): flushed here instead of waiting.
    await srv.system.usage?.flush();

    const show = await page('integration', `/admin/portals/${p.client_id}`);
    const fig = show.text.slice(show.text.indexOf('<figure class="chart" id="usage-funnel"'));
    expect([...fig.matchAll(/<td data-n="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([n, n, n, n]);

    const usage = await page('auditor', `/admin/usage?portal=${p.client_id}`);
    const hourly = chart(usage, 'usage-hourly');
    expectTableMatchesBars(hourly);
    // The sign-ins may straddle an hour: counted over the bars.
    expect(sum(hourly.bars.map((x) => x.series[LOA.low] ?? 0))).toBe(n);
    expect(sum(hourly.bars.map((x) => x.total))).toBe(n);
    const daily = chart(usage, 'usage-daily');
    expect(sum(daily.bars.map((x) => x.series[LOA.low] ?? 0))).toBe(n);
  });
});
