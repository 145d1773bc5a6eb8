/**
 * `dinhdanh stats usage` and `dinhdanh stats export` as operators run them: real child processes
 * (test/helpers/cli-process.ts) reading the store a server writes.
 *
 * First on a store filled through the usage recorder itself (fixed days, exact figures, the EMC
 * export's withheld counts, CSV that parses, bad input refused with exit 2); then end to end: a
 * burst of sign-ins at two portals and three levels through openid-client and the pages of a real
 * dinhdanh, flushed, gives the same numbers in `stats usage` as the burst, and /metrics on the
 * operators' listener shows them by portal and level.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import type * as oidc from 'openid-client';
import { createStore, type Store } from '../../src/store/index.js';
import { createPortalLabels } from '../../src/metrics/portal-labels.js';
import { createUsageRecorder, vietnamDay } from '../../src/metrics/usage.service.js';
import { EMC_FIELDS } from '../../src/metrics/usage.report.js';
import type { UsageDay } from '../../src/metrics/usage.types.js';
import { USAGE_CSV_FIELDS } from '../../src/cli/stats.js';
import { oneJson, runCli, type Run } from '../helpers/cli-process.js';
import { TEST_STORE_KIND, startTestServer, type TestServer } from '../helpers/harness.js';
import { CONSOLE_CLIENT_ID } from '../../src/admin/console-client.js';
import { ACCOUNT_CLIENT_ID } from '../../src/provider/account-session.js';
import { SECRETS_FILE, newSecretsFile, readSecrets, writePrivateJson } from '../../src/keys/key-files.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';
import { HIGH, LOW, MINUTE, SUBSTANTIAL, pageSteps, totpCode, totpSecret, type Person } from '../helpers/pages.js';

/** RFC 4180 records (quoted fields, doubled quotes, CRLF), strictly: anything else throws. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const field = (): string => {
    if (text[i] !== '"') {
      const start = i;
      while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
        if (text[i] === '"') throw new Error(`a quote inside an unquoted field at ${i}`);
        i++;
      }
      return text.slice(start, i);
    }
    let out = '';
    i++;
    for (;;) {
      if (i >= text.length) throw new Error('an unterminated quoted field');
      if (text[i] === '"') {
        if (text[i + 1] === '"') {
          out += '"';
          i += 2;
          continue;
        }
        i++;
        return out;
      }
      out += text[i++];
    }
  };
  while (i < text.length) {
    row.push(field());
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text.slice(i, i + 2) !== '\r\n') throw new Error(`a record not ended by CRLF at ${i}`);
    i += 2;
    rows.push(row);
    row = [];
  }
  return rows;
}

/** The CSV as objects keyed by its header, which must be `fields`. */
function csvObjects(run: Run, fields: readonly string[]): Array<Record<string, string>> {
  expect(run.code).toBe(0);
  const [header, ...rows] = parseCsv(run.stdout);
  expect(header).toEqual([...fields]);
  for (const r of rows) expect(r).toHaveLength(fields.length);
  return rows.map((r) => Object.fromEntries(fields.map((f, i) => [f, r[i]!])));
}

function refused(run: Run, message: RegExp): void {
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/\n\s+at /); // a message, not a stack
}

describe('stats on a store the usage recorder filled', () => {
  const A = 'cong-dvc-tinh';
  const B = 'cong-thue';
  /** 2025-03-10 at 09:00 in Vietnam. */
  const AT = Date.UTC(2025, 2, 10, 2, 0, 0);
  const DAY = '2025-03-10';
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const cli = (args: string[]): Promise<Run> => runCli(env, ['stats', ...args]);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-stats-'));
    const storeUrl = `sqlite:${path.join(dir, 'data', 'x.db')}`;
    env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'development', DINHDANH_STORE: storeUrl, DINHDANH_KEYS_DIR: path.join(dir, 'keys') };
    const store: Store = await createStore(storeUrl);
    try {
      for (const [clientId, name] of [[A, '=Cổng DVC, tỉnh "thử"'], [B, 'Thuế']] as const) {
        await store.portals.create({
          clientId, name, metadata: { redirect_uris: [`https://${clientId}.example.vn/cb`] }, secretCiphertext: null,
          sector: `${clientId}.example.vn`, nationalId: false, nationalIdBasis: null, disabled: false,
        });
      }
      const labels = createPortalLabels({ portals: store.portals });
      await labels.refresh();
      const usage = createUsageRecorder({ repo: store.usage, labels, secret: 'cookie-derived', logger: pino({ level: 'silent' }) });
      const sign = (person: string, portal: string, acr: string, method = 'pwd') => usage.audit('SIGN_IN_COMPLETED', { person, portal, acr, method }, AT);
      // A: 15 sign-ins by 12 people (12 low, 3 substantial); 10 wrong passwords.
      for (let i = 0; i < 12; i++) sign(`p${i}`, A, LOW);
      for (let i = 0; i < 3; i++) sign(`p${i}`, A, SUBSTANTIAL, 'pwd+otp+mfa');
      for (let i = 0; i < 10; i++) usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: A }, AT);
      // B: 4 high sign-ins by 4 people, two of them also at A.
      for (let i = 0; i < 4; i++) sign(`p${i + 10}`, B, HIGH, 'pwd+hwk+mfa');
      // An unregistered client, and a registration begun at dinhdanh itself.
      sign('q', 'not-registered', LOW);
      usage.audit('REGISTRATION_COMPLETED', { person: 'r' }, AT);
      await usage.flush();
    } finally {
      await store.close();
    }
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stats usage --json: each portal\'s day with sign-ins by level, citizens, and all portals with citizens counted once', async () => {
    const run = await cli(['usage', '--from', DAY, '--to', DAY, '--json']);
    expect(run.code).toBe(0);
    const out = oneJson(run) as { from: string; to: string; days: UsageDay[]; all_portals: Array<Record<string, unknown>> };
    expect(out.from).toBe(DAY);
    expect(out.days.map((d) => d.portal)).toEqual(['-', A, B, 'other']);
    const [none, a, b, other] = out.days;
    expect(a).toMatchObject({ date: DAY, signins: 15, by_level: { [LOW]: 12, [SUBSTANTIAL]: 3, [HIGH]: 0 }, citizens: 12, failures: { wrong_password: 10 }, by_method: { pwd: 12, 'pwd+otp+mfa': 3 } });
    expect(b).toMatchObject({ date: DAY, signins: 4, by_level: { [LOW]: 0, [SUBSTANTIAL]: 0, [HIGH]: 4 }, citizens: 4 });
    expect(other).toMatchObject({ signins: 1, citizens: 1 });
    expect(none).toMatchObject({ signins: 0, registrations: { completed: 1 } });
    expect(out.all_portals).toEqual([{ date: DAY, signins: 20, by_level: { [LOW]: 13, [SUBSTANTIAL]: 3, [HIGH]: 4 }, citizens: 15 }]);
    // No person id, and nothing of the tags, reaches the output.
    expect(run.stdout).not.toMatch(/"p\d+"|cookie-derived/);

    const onlyB = oneJson(await cli(['usage', '--from', '2025-03-01', '--to', '2025-03-31', '--portal', B, '--format', 'json'])) as { days: UsageDay[]; all_portals?: unknown };
    expect(onlyB.days).toEqual([b]);
    expect(onlyB.all_portals).toBeUndefined();
  });

  it('stats usage --format csv parses (RFC 4180) to the same numbers; the default is a table', async () => {
    const rows = csvObjects(await cli(['usage', '--from', DAY, '--to', DAY, '--format', 'csv']), USAGE_CSV_FIELDS);
    expect(rows.map((r) => r.portal)).toEqual(['-', A, B, 'other', '*']);
    expect(rows[1]).toMatchObject({ date: DAY, portal: A, signins: '15', citizens: '12', level_low: '12', level_substantial: '3', level_high: '0', level_other: '0', failures: '10' });
    expect(rows[4]).toMatchObject({ portal: '*', signins: '20', citizens: '15', level_low: '13', level_high: '4', failures: '' });
    const table = await cli(['usage', '--from', DAY, '--to', DAY]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`${DAY}\\s+${A}\\s+15\\s+12\\s+12\\s+3\\s+0\\s+10`));
    expect(table.stdout).toMatch(/all portals/);
  });

  it('stats export: a row per registered portal, counts from 1 to 9 withheld and named, in JSON and CSV', async () => {
    const out = oneJson(await cli(['export', '--from', DAY, '--to', DAY, '--json'])) as { suppress_below: number; rows: Array<Record<string, unknown>> };
    expect(out.suppress_below).toBe(10);
    expect(out.rows).toEqual([
      {
        date: DAY, portal_id: A, portal_name: '=Cổng DVC, tỉnh "thử"', signins: 15, signins_low: null, signins_substantial: null, signins_high: null,
        citizens: 12, failures: 10, success_rate: 0.6, registrations: 0, recoveries: 0, suppressed: ['signins_low', 'signins_substantial', 'signins_high'],
      },
      {
        date: DAY, portal_id: B, portal_name: 'Thuế', signins: null, signins_low: null, signins_substantial: null, signins_high: null,
        citizens: null, failures: 0, success_rate: null, registrations: 0, recoveries: 0,
        suppressed: ['signins', 'signins_low', 'signins_substantial', 'signins_high', 'citizens', 'success_rate'],
      },
    ]);
    const rows = csvObjects(await cli(['export', '--from', DAY, '--to', DAY, '--format', 'csv']), EMC_FIELDS);
    // A name a spreadsheet would take for a formula is made text; the comma and quotes survive quoting.
    expect(rows[0]).toMatchObject({ portal_id: A, portal_name: '\'=Cổng DVC, tỉnh "thử"', signins: '15', signins_low: '', success_rate: '0.6', suppressed: 'signins_low signins_substantial signins_high' });
    expect(rows[1]).toMatchObject({ portal_id: B, signins: '', citizens: '', failures: '0' });
    // Published figures are 0 or at least 10.
    for (const r of rows) for (const f of ['signins', 'signins_low', 'signins_substantial', 'signins_high', 'citizens', 'failures', 'registrations', 'recoveries']) {
      expect([f, r[f] === '' || r[f] === '0' || Number(r[f]) >= 10]).toEqual([f, true]);
    }
  });

  it('dinhdanh\'s own clients are in stats usage, said to be its own, and never in stats export', async () => {
    const DAY2 = '2025-03-11';
    const store = await createStore(env.DINHDANH_STORE!);
    try {
      await store.usage.add([CONSOLE_CLIENT_ID, ACCOUNT_CLIENT_ID, A].map((portal) => ({ day: DAY2, portal, key: 'signins', n: 20 })));
    } finally {
      await store.close();
    }
    const usage = oneJson(await cli(['usage', '--from', DAY2, '--to', DAY2, '--json'])) as { days: UsageDay[] };
    expect(usage.days.map((d) => [d.portal, d.signins])).toEqual([[A, 20], [ACCOUNT_CLIENT_ID, 20], [CONSOLE_CLIENT_ID, 20]]);
    const table = await cli(['usage', '--from', DAY2, '--to', DAY2]);
    expect(table.stdout).toContain(`${ACCOUNT_CLIENT_ID}, ${CONSOLE_CLIENT_ID}: dinhdanh's own clients`);
    const exported = oneJson(await cli(['export', '--from', DAY2, '--to', DAY2, '--json'])) as { rows: Array<{ portal_id: string; signins: number }> };
    expect(exported.rows.map((r) => [r.portal_id, r.signins])).toEqual([[A, 20]]);
    const csvRows = csvObjects(await cli(['export', '--from', DAY2, '--to', DAY2, '--format', 'csv']), EMC_FIELDS);
    expect(csvRows.map((r) => r.portal_id)).toEqual([A]);
    // A day without them says nothing of them.
    expect((await cli(['usage', '--from', DAY, '--to', DAY])).stdout).not.toContain('own clients');
  });

  it('refuses bad dates, periods, portals and formats with exit 2 and a message, printing nothing else', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['usage', '--from', '2025-02-30', '--to', DAY], /--from 2025-02-30 is not a real date/],
      [['usage', '--from', '2025-13-01', '--to', DAY], /not a real date/],
      [['usage', '--from', '10/03/2025', '--to', DAY], /--from must be a date YYYY-MM-DD/],
      [['usage', '--from', DAY, '--to', '2025-03-09'], /--from 2025-03-10 is after --to 2025-03-09/],
      [['usage', '--from', '2023-01-01', '--to', DAY], /longer than 25 months/],
      [['usage', '--from', DAY, '--to', DAY, '--portal', "x' OR 1=1 --"], /--portal must be a portal client id/],
      [['usage', '--from', DAY, '--to', DAY, '--portal', '{"$ne":null}'], /--portal must be a portal client id/],
      [['usage', '--from', DAY, '--to', DAY, '--format', 'xml'], /argument 'xml' is invalid/],
      [['usage', '--from', DAY, '--to', DAY, '--json', '--format', 'csv'], /two formats/],
      [['usage', '--to', DAY], /required option '--from/],
      [['export', '--from', DAY, '--to', '2025-3-10'], /--to must be a date YYYY-MM-DD/],
      // The last days of year 9999 have no next day: once a loop without end, to memory exhaustion.
      [['usage', '--from', '9999-01-01', '--to', '9999-12-31'], /--from 9999-01-01 is out of range: the year must be from 2000 to \d{4}/],
      [['export', '--from', '9999-12-31', '--to', '9999-12-31'], /--from 9999-12-31 is out of range/],
      [['usage', '--from', '1999-12-01', '--to', '2000-01-31'], /--from 1999-12-01 is out of range/],
      // The EMC export is of finished days: today and yesterday still change (two exports would
      // give a withheld count by their difference).
      [['export', '--from', DAY, '--to', vietnamDay(Date.now())], /the EMC export covers finished days only: --to must be \d{4}-\d{2}-\d{2} or earlier/],
      [['export', '--from', vietnamDay(Date.now()), '--to', vietnamDay(Date.now()), '--format', 'csv'], /covers finished days only/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      refused(run, message);
      if (!args.includes('--json')) expect(run.stdout).toBe('');
    }
    const withJson = await cli(['usage', '--from', '2025-02-30', '--to', DAY, '--json']);
    refused(withJson, /not a real date/);
    expect(oneJson(withJson)).toEqual({ error: '--from 2025-02-30 is not a real date' });
  });
});

describe('end to end: a burst of sign-ins at two portals, then stats usage and /metrics', () => {
  let now = Date.now();
  let srv: TestServer;
  let portalA: Portal;
  let portalB: Portal;
  let configA: oidc.Configuration;
  let configB: oidc.Configuration;
  let env: NodeJS.ProcessEnv;
  const stepsB = pageSteps({ server: () => srv, portal: () => portalB, expectLoginForm: true });

  /** A password-only sign-in at a portal, its code redeemed by openid-client. */
  async function lowSignIn(portal: Portal, config: oidc.Configuration, who: Person): Promise<void> {
    const req = await authRequest(config, portal);
    const res = await signIn(new Browser(srv.issuer), req, who);
    expect(res.status).toBe(303);
    expect((await redeem(config, req, res.location!)).claims()!.acr).toBe(LOW);
  }

  beforeAll(async () => {
    srv = await startTestServer({ now: () => now });
    portalA = await srv.addPortal();
    portalB = await srv.addPortal();
    configA = await discover(srv.issuer, portalA);
    configB = await discover(srv.issuer, portalB);
    await srv.system.portalLabels.refresh();
    env = {
      PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'development',
      DINHDANH_STORE: srv.system.config.storeUrl, DINHDANH_KEYS_DIR: srv.system.config.keysDir,
    };

    // A: four password sign-ins by three people. B: one of them with a password, and a level-2
    // person enrolling an authenticator app (substantial), then at level high.
    const [one, two, three] = [await srv.addPerson(), await srv.addPerson(), await srv.addPerson()];
    await Promise.all([one, two, three].map((who) => lowSignIn(portalA, configA, who)));
    await lowSignIn(portalA, configA, one);
    await lowSignIn(portalB, configB, one);
    const strong = await srv.addPerson({ level: '2' });
    now += MINUTE;
    const enrolBrowser = new Browser(srv.issuer);
    const enrolReq = await authRequest(configB, portalB, { acr_values: SUBSTANTIAL });
    const enrolPage = await stepsB.password(enrolBrowser, enrolReq, strong);
    const seed = totpSecret(enrolPage.text);
    const codes = await stepsB.submit(enrolBrowser, enrolPage, { code: await totpCode(seed, now) });
    const back = await stepsB.toPortal(enrolBrowser, await stepsB.submit(enrolBrowser, codes, { next: 'continue' }));
    expect((await redeem(configB, enrolReq, back.location!)).claims()!.acr).toBe(SUBSTANTIAL);
    now += MINUTE;
    const highBrowser = new Browser(srv.issuer);
    const highReq = await authRequest(configB, portalB, { acr_values: HIGH });
    const codePage = await stepsB.password(highBrowser, highReq, strong);
    const high = await stepsB.toPortal(highBrowser, await stepsB.submit(highBrowser, codePage, { code: await totpCode(seed, now) }));
    expect((await redeem(configB, highReq, high.location!)).claims()!.acr).toBe(HIGH);

    // What the instance counted is in the store once flushed (every 5 s, or now).
    await srv.system.usage!.flush();
  });
  afterAll(async () => {
    await srv.close();
  });

  it('stats usage gives exactly the burst: sign-ins by portal and level, distinct citizens, all portals', async () => {
    const day = vietnamDay(now);
    const run = await runCli(env, ['stats', 'usage', '--from', day, '--to', day, '--json']);
    expect(run.code).toBe(0);
    const out = oneJson(run) as { days: UsageDay[]; all_portals: Array<Record<string, unknown>> };
    const of = (clientId: string) => out.days.find((d) => d.portal === clientId);
    expect(of(portalA.client_id)).toMatchObject({
      date: day, signins: 4, by_level: { [LOW]: 4, [SUBSTANTIAL]: 0, [HIGH]: 0 }, by_method: { pwd: 4 }, citizens: 3,
      funnel: { signed_in: 4, code: 4 },
    });
    expect(of(portalB.client_id)).toMatchObject({
      date: day, signins: 3, by_level: { [LOW]: 1, [SUBSTANTIAL]: 1, [HIGH]: 1 }, citizens: 2,
      funnel: { signed_in: 3, code: 3 },
    });
    expect(out.days.reduce((n, d) => n + d.signins, 0)).toBe(7);
    expect(out.all_portals).toEqual([{ date: day, signins: 7, by_level: { [LOW]: 5, [SUBSTANTIAL]: 1, [HIGH]: 1 }, citizens: 4 }]);

    const rows = csvObjects(await runCli(env, ['stats', 'usage', '--from', day, '--to', day, '--portal', portalB.client_id, '--format', 'csv']), USAGE_CSV_FIELDS);
    expect(rows).toEqual([expect.objectContaining({ portal: portalB.client_id, signins: '3', citizens: '2', level_low: '1', level_substantial: '1', level_high: '1' })]);
  });

  it('refuses a bad date and an injected portal against the live store too', async () => {
    const day = vietnamDay(now);
    refused(await runCli(env, ['stats', 'usage', '--from', day, '--to', '2026-02-30']), /not a real date/);
    refused(await runCli(env, ['stats', 'usage', '--from', day, '--to', day, '--portal', `${portalA.client_id}' OR '1'='1`]), /--portal must be a portal client id/);
  });

  it('GET /metrics on the operators\' listener shows dinhdanh_signins_total by those portals and levels', async () => {
    const res = await fetch(`${srv.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (portal: string, acr: string): number => {
      const line = text.split('\n').find((l) => l.startsWith('dinhdanh_signins_total{')
        && l.includes(`portal="${portal}"`) && l.includes(`acr="${acr}"`) && l.includes('outcome="success"'));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    expect(value(portalA.client_id, LOW)).toBe(4);
    expect(value(portalB.client_id, LOW)).toBe(1);
    expect(value(portalB.client_id, SUBSTANTIAL)).toBe(1);
    expect(value(portalB.client_id, HIGH)).toBe(1);
  });
});

describe('distinct citizens across a rotation of the cookie keys', () => {
  const now = Date.now();
  let dir: string;
  let env: Record<string, string>;
  let storeUrl: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-stats-rotation-'));
    env = { DINHDANH_KEYS_DIR: path.join(dir, 'keys') };
    if (TEST_STORE_KIND === 'sqlite') storeUrl = `sqlite:${path.join(dir, 'data', 'x.db')}`;
    else {
      const url = new URL(process.env.MONGODB_URI!);
      url.pathname = `/dd_rotation_${Date.now().toString(36)}`;
      storeUrl = url.href;
    }
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function lowSignIn(srv: TestServer, portal: Portal, who: Person): Promise<void> {
    const config = await discover(srv.issuer, portal);
    const req = await authRequest(config, portal);
    const res = await signIn(new Browser(srv.issuer), req, who);
    expect(res.status).toBe(303);
    expect((await redeem(config, req, res.location!)).claims()!.acr).toBe(LOW);
  }

  it('a person signing in before and after the operator rotates the cookie keys (keys generate --force) is one citizen that day', async () => {
    // Before: an instance with the first cookie keys.
    const first = await startTestServer({ now: () => now, storeUrl, env });
    const portal = await first.addPortal();
    const person = await first.addPerson();
    await first.system.portalLabels.refresh();
    await lowSignIn(first, portal, person);
    await first.close();

    // The rotation: a new first cookie key, the old ones kept to verify, the pairwise salt carried over.
    const keysDir = path.join(dir, 'keys');
    const before = readSecrets(keysDir)!;
    const rotated = newSecretsFile(before.origin, before);
    writePrivateJson(path.join(keysDir, SECRETS_FILE), rotated, true);
    expect(rotated.cookieKeys[0]).not.toBe(before.cookieKeys[0]);
    expect(rotated.pairwiseSalt).toBe(before.pairwiseSalt);

    // After: an instance on the rotated keys, the same store; the same person at the same portal.
    const second = await startTestServer({ now: () => now, storeUrl, env });
    try {
      expect(second.system.keys.cookieKeys[0]).toBe(rotated.cookieKeys[0]);
      await second.system.portalLabels.refresh();
      await lowSignIn(second, portal, person);
      await second.system.usage!.flush();
      const day = vietnamDay(now);
      const usage = second.system.store.usage;
      await expect(usage.range(day, day, portal.client_id)).resolves.toContainEqual({ day, portal: portal.client_id, key: 'signins', n: 2 });
      // Two sign-ins, one person: the tags of both instances are the same tag.
      await expect(usage.countDistinct(day, day, portal.client_id)).resolves.toEqual([{ day, portal: portal.client_id, n: 1 }]);
      await expect(usage.countDistinct(day, day, '*')).resolves.toEqual([{ day, portal: '*', n: 1 }]);
    } finally {
      await second.close();
    }
  });
});
