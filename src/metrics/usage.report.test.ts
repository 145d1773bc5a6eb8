/**
 * The usage reports over a real SQLite store filled by the real recorder: day entries (before and
 * after a day is compacted the same citizens), the all-portals totals, the console's hourly and
 * daily series (zero-filled, Vietnam time), and the EMC export with small counts withheld.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { createStore, type Store } from '../store/index.js';
import { LOA } from '../provider/levels.js';
import { createPortalLabels } from './portal-labels.js';
import { createUsageRecorder } from './usage.service.js';
import { CONSOLE_CLIENT_ID } from '../admin/console-client.js';
import { ACCOUNT_CLIENT_ID } from '../provider/account-session.js';
import { EMC_FIELDS, FIRST_PARTY_CLIENTS, UsageQueryError, checkEmcPeriod, checkPeriod, createUsageReports, emcRow, lastFinalDay } from './usage.report.js';

const A = 'cong-dich-vu-cong';
const B = 'thue-dien-tu';
/** 2026-06-01 10:00 in Vietnam. */
const T0 = Date.UTC(2026, 5, 1, 3, 0, 0);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let store: Store;
let clock: number;
let usage: ReturnType<typeof createUsageRecorder>;
let reports: ReturnType<typeof createUsageReports>;

beforeEach(async () => {
  clock = T0;
  store = await createStore('sqlite::memory:', { now: () => clock });
  for (const [clientId, name] of [[A, 'Cổng Dịch vụ công quốc gia'], [B, 'Thuế điện tử']] as const) {
    await store.portals.create({
      clientId, name, metadata: { redirect_uris: [`https://${clientId}.example.vn/cb`] }, secretCiphertext: null,
      sector: `${clientId}.example.vn`, nationalId: false, nationalIdBasis: null, disabled: false,
    });
  }
  const labels = createPortalLabels({ portals: store.portals, now: () => clock });
  await labels.refresh();
  usage = createUsageRecorder({ repo: store.usage, labels, secret: 's', logger: pino({ level: 'silent' }), now: () => clock });
  reports = createUsageReports({ repo: store.usage, now: () => clock, portalName: async (id) => (await store.portals.find(id))?.name });
});

afterEach(async () => {
  await store.close();
});

const signIn = (person: string, portal: string, acr: string, at = clock, method = 'pwd') =>
  usage.audit('SIGN_IN_COMPLETED', { person, portal, acr, method }, at);

describe('days', () => {
  it('gives each day and portal its sign-ins by level and method, citizens, failures, consents and funnel; the same citizens once compacted', async () => {
    signIn('p1', A, LOA.low);
    signIn('p1', A, LOA.substantial, clock, 'pwd+otp+mfa');
    signIn('p2', A, LOA.low);
    signIn('p1', B, LOA.high, clock, 'pwd+hwk+mfa');
    usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: A }, clock);
    usage.audit('CONSENT_GRANTED', { person: 'p1', portal: A }, clock);
    usage.audit('CONSENT_REUSED', { person: 'p2', portal: A }, clock);
    usage.audit('REGISTRATION_COMPLETED', { person: 'p3' }, clock);
    usage.signInPageShown(A);
    usage.signInPageShown(A);
    usage.signInPageShown(A);
    usage.grantSucceeded('authorization_code', A);
    signIn('p1', A, LOA.low, T0 - 2 * DAY);
    await usage.flush();

    const open = await reports.days({ from: '2026-05-30', to: '2026-06-01' });
    expect(open.map((d) => [d.date, d.portal])).toEqual([['2026-05-30', A], ['2026-06-01', '-'], ['2026-06-01', A], ['2026-06-01', B]]);
    expect(open[2]).toEqual({
      date: '2026-06-01', portal: A, signins: 3, citizens: 2,
      by_level: { [LOA.low]: 2, [LOA.substantial]: 1, [LOA.high]: 0 },
      by_method: { pwd: 2, 'pwd+otp+mfa': 1 },
      failures: { wrong_password: 1 }, consents: { given: 1, withdrawn: 0 }, registrations: {}, recoveries: {},
      funnel: { shown: 3, signed_in: 3, consent: 2, code: 1 },
    });
    expect(open[1]).toMatchObject({ portal: '-', signins: 0, registrations: { completed: 1 } });
    await expect(reports.days({ from: '2026-06-01', to: '2026-06-01', portal: B })).resolves.toEqual([
      expect.objectContaining({ portal: B, signins: 1, citizens: 1, by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 1 } }),
    ]);

    // Two days on, both days are compacted: the same figures, from the stored count.
    clock += 2 * DAY;
    await usage.maintain();
    await expect(store.usage.countDistinct('2026-05-30', '2026-06-01')).resolves.toEqual([]);
    await expect(reports.days({ from: '2026-05-30', to: '2026-06-01' })).resolves.toEqual(open);
  });

  it('gives all portals per day, zero-filled, with citizens counted once across portals', async () => {
    signIn('p1', A, LOA.low);
    signIn('p1', B, LOA.high);
    signIn('p2', B, LOA.high);
    await usage.flush();
    const all = await reports.allPortals({ from: '2026-05-31', to: '2026-06-02' });
    expect(all).toEqual([
      { date: '2026-05-31', signins: 0, by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 0 }, citizens: 0 },
      { date: '2026-06-01', signins: 3, by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 2 }, citizens: 2 },
      { date: '2026-06-02', signins: 0, by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 0 }, citizens: 0 },
    ]);
    clock += 2 * DAY;
    await usage.maintain();
    await expect(reports.allPortals({ from: '2026-06-01', to: '2026-06-01' })).resolves.toEqual([all[1]]);
  });
});

describe('the console series', () => {
  it('hourly: the last 24 hours up to the current one, Vietnam time, zero-filled, across midnight', async () => {
    clock = Date.UTC(2026, 5, 1, 18, 30, 0); // 01:30 on 2026-06-02 in Vietnam
    signIn('p1', A, LOA.low, Date.UTC(2026, 5, 1, 16, 10, 0)); // 23:10 on 06-01
    signIn('p2', A, LOA.high, Date.UTC(2026, 5, 1, 18, 0, 0)); // 01:00 on 06-02
    signIn('p3', B, LOA.high, Date.UTC(2026, 5, 1, 18, 5, 0));
    signIn('p4', A, LOA.low, Date.UTC(2026, 5, 0, 18, 0, 0)); // 01:00 on 06-01: 25 hours ago, outside
    await usage.flush();
    const hours = await reports.hourly({});
    expect(hours).toHaveLength(24);
    expect(hours[0]!.hour).toBe('2026-06-01T02:00:00+07:00');
    expect(hours[23]!.hour).toBe('2026-06-02T01:00:00+07:00');
    const nonZero = hours.filter((h) => Object.values(h.by_level).some((n) => n > 0));
    expect(nonZero).toEqual([
      { hour: '2026-06-01T23:00:00+07:00', by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 0 } },
      { hour: '2026-06-02T01:00:00+07:00', by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 2 } },
    ]);
    const onlyA = await reports.hourly({ portal: A, hours: 3 });
    expect(onlyA.map((h) => h.by_level[LOA.high])).toEqual([0, 0, 1]);
  });

  it('daily: the last 90 days up to today, zero-filled, by level', async () => {
    signIn('p1', A, LOA.low);
    signIn('p1', A, LOA.low, T0 - 89 * DAY);
    signIn('p1', A, LOA.low, T0 - 90 * DAY);
    await usage.flush();
    const days = await reports.daily({});
    expect(days).toHaveLength(90);
    expect(days[0]).toEqual({ date: '2026-03-04', by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 0 } });
    expect(days[89]).toEqual({ date: '2026-06-01', by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 0 } });
    expect(days.slice(1, 89).every((d) => d.by_level[LOA.low] === 0)).toBe(true);
    await expect(reports.daily({ portal: B, days: 2 })).resolves.toEqual([
      { date: '2026-05-31', by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 0 } },
      { date: '2026-06-01', by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 0 } },
    ]);
  });
});

describe('reading all portals', () => {
  it('the charts and the all-portals totals are summed by the store: no portal\'s rows are read, the figures the same', async () => {
    signIn('p1', A, LOA.low);
    signIn('p2', A, LOA.high, clock - HOUR);
    signIn('p1', B, LOA.high, clock - HOUR);
    signIn('p3', 'not-registered', LOA.substantial, clock - DAY);
    await usage.flush();
    // The store's every-row read, watched: on SQLite it blocks the process while it reads every
    // portal's rows (seconds for a few hundred portals over 90 days).
    const wholeReads: string[] = [];
    const watched = createUsageReports({
      repo: { ...store.usage, range: (from, to, portal) => {
        if (portal === undefined) wholeReads.push(`${from}..${to}`);
        return store.usage.range(from, to, portal);
      } },
      now: () => clock,
    });
    const daily = await watched.daily({ days: 2 });
    expect(daily).toEqual([
      { date: '2026-05-31', by_level: { [LOA.low]: 0, [LOA.substantial]: 1, [LOA.high]: 0 } },
      { date: '2026-06-01', by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 2 } },
    ]);
    const hourly = await watched.hourly({ hours: 2 });
    expect(hourly).toEqual([
      { hour: '2026-06-01T09:00:00+07:00', by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 2 } },
      { hour: '2026-06-01T10:00:00+07:00', by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 0 } },
    ]);
    const all = await watched.allPortals({ from: '2026-05-31', to: '2026-06-01' });
    expect(all).toEqual([
      { date: '2026-05-31', signins: 1, by_level: { [LOA.low]: 0, [LOA.substantial]: 1, [LOA.high]: 0 }, citizens: 1 },
      { date: '2026-06-01', signins: 3, by_level: { [LOA.low]: 1, [LOA.substantial]: 0, [LOA.high]: 2 }, citizens: 2 },
    ]);
    expect(wholeReads).toEqual([]);
    // The same figures as each portal's day entries added up here.
    const entries = await reports.days({ from: '2026-06-01', to: '2026-06-01' });
    expect(all[1]!.signins).toBe(entries.reduce((n, d) => n + d.signins, 0));
    for (const acr of [LOA.low, LOA.substantial, LOA.high]) expect(all[1]!.by_level[acr]).toBe(entries.reduce((n, d) => n + (d.by_level[acr] ?? 0), 0));
  });
});

describe('the EMC export', () => {
  it('gives a row per day and registered portal, withholding counts from 1 to 9 and whatever would reveal them', async () => {
    for (let i = 0; i < 10; i++) signIn(`a${i}`, A, LOA.low);
    for (let i = 0; i < 2; i++) signIn(`a${i}`, A, LOA.high, clock, 'pwd+hwk+mfa');
    for (let i = 0; i < 3; i++) usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: A }, clock);
    for (let i = 0; i < 20; i++) signIn(`b${i}`, B, LOA.substantial, clock, 'pwd+otp+mfa');
    for (let i = 0; i < 30; i++) usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: B }, clock);
    for (let i = 0; i < 12; i++) usage.audit('REGISTRATION_COMPLETED', { person: `r${i}`, portal: B }, clock);
    // No portal, and an unregistered one: not exported.
    usage.audit('REGISTRATION_COMPLETED', { person: 'r' }, clock);
    signIn('x', 'not-registered', LOA.low);
    await usage.flush();

    // Exported once finished: two days on, compacted.
    clock += 2 * DAY;
    await usage.maintain();
    const rows = await reports.emc({ from: '2026-06-01', to: '2026-06-01' });
    expect(rows).toEqual([
      {
        date: '2026-06-01', portal_id: A, portal_name: 'Cổng Dịch vụ công quốc gia',
        // 12 sign-ins by 10 people; the 2 at level high are withheld, so the split is too.
        signins: 12, signins_low: null, signins_substantial: null, signins_high: null, citizens: 10,
        failures: null, success_rate: null, registrations: 0, recoveries: 0,
        suppressed: ['signins_low', 'signins_substantial', 'signins_high', 'failures', 'success_rate'],
      },
      {
        date: '2026-06-01', portal_id: B, portal_name: 'Thuế điện tử',
        signins: 20, signins_low: 0, signins_substantial: 20, signins_high: 0, citizens: 20,
        failures: 30, success_rate: 0.4, registrations: 12, recoveries: 0, suppressed: [],
      },
    ]);
  });

  it('leaves out dinhdanh\'s own clients (the console, the account area), which stay in the operators\' figures', async () => {
    const own = [CONSOLE_CLIENT_ID, ACCOUNT_CLIENT_ID];
    const firstParty = createPortalLabels({ portals: store.portals, firstParty: own, now: () => clock });
    await firstParty.refresh();
    const recorder = createUsageRecorder({ repo: store.usage, labels: firstParty, secret: 's', logger: pino({ level: 'silent' }), now: () => clock });
    for (let i = 0; i < 12; i++) for (const portal of [...own, A]) recorder.audit('SIGN_IN_COMPLETED', { person: `o${i}`, portal, acr: LOA.low, method: 'pwd' }, clock);
    await recorder.flush();
    clock += 2 * DAY;
    const rows = await reports.emc({ from: '2026-06-01', to: '2026-06-01' });
    expect(rows.map((r) => r.portal_id)).toEqual([A]);
    expect(rows[0]).toMatchObject({ signins: 12, citizens: 12 });
    const days = await reports.days({ from: '2026-06-01', to: '2026-06-01' });
    expect(days.map((d) => [d.portal, d.signins])).toEqual([[A, 12], [ACCOUNT_CLIENT_ID, 12], [CONSOLE_CLIENT_ID, 12]]);
    expect([...FIRST_PARTY_CLIENTS].sort()).toEqual([...own].sort());
  });

  it('covers finished days only: today and yesterday (Vietnam time) still change, and are refused', async () => {
    for (let i = 0; i < 12; i++) signIn(`a${i}`, A, LOA.low);
    await usage.flush();
    // 2026-06-01 10:00 in Vietnam: the last finished day is 2026-05-30.
    for (const to of ['2026-06-01', '2026-05-31']) {
      const attempt = reports.emc({ from: '2026-05-30', to });
      await expect(attempt).rejects.toBeInstanceOf(UsageQueryError);
      await expect(attempt).rejects.toThrow(/covers finished days only: --to must be 2026-05-30 or earlier/);
    }
    await expect(reports.emc({ from: '2026-05-01', to: '2026-05-30' })).resolves.toEqual([]);
    expect(lastFinalDay(clock)).toBe('2026-05-30');
    // At 00:00 in Vietnam on 06-03 the 1st is the day before yesterday: its figures are final.
    clock = Date.UTC(2026, 5, 2, 17, 0, 0);
    expect(lastFinalDay(clock)).toBe('2026-06-01');
    expect(lastFinalDay(clock - 1)).toBe('2026-05-31');
    await expect(reports.emc({ from: '2026-06-01', to: '2026-06-01' })).resolves.toEqual([expect.objectContaining({ portal_id: A, signins: 12 })]);
    expect(() => checkEmcPeriod({ from: '2026-06-01', to: '2026-06-02' }, clock)).toThrow(UsageQueryError);
  });

  it('withholds the sign-ins, their split and the rate when there were fewer than 10', () => {
    const row = emcRow({
      date: '2026-06-01', portal: A, signins: 3, by_level: { [LOA.low]: 0, [LOA.substantial]: 0, [LOA.high]: 3 }, by_method: {}, citizens: 3,
      failures: { wrong_password: 40 }, consents: { given: 0, withdrawn: 0 }, registrations: { completed: 1 }, recoveries: { completed: 25 },
      funnel: { shown: 0, signed_in: 3, consent: 0, code: 0 },
    }, null);
    expect(row).toEqual({
      date: '2026-06-01', portal_id: A, portal_name: null, signins: null, signins_low: null, signins_substantial: null, signins_high: null,
      citizens: null, failures: 40, success_rate: null, registrations: null, recoveries: 25,
      suppressed: ['signins', 'signins_low', 'signins_substantial', 'signins_high', 'citizens', 'success_rate', 'registrations'],
    });
    // Sign-ins at no known level (an `acr` not among the levels) cannot be worked out as the rest.
    const unlevelled = emcRow({
      date: '2026-06-01', portal: A, signins: 22, by_level: { [LOA.low]: 20, [LOA.substantial]: 0, [LOA.high]: 0, other: 2 }, by_method: {}, citizens: 22,
      failures: {}, consents: { given: 0, withdrawn: 0 }, registrations: {}, recoveries: {}, funnel: { shown: 0, signed_in: 22, consent: 0, code: 0 },
    }, null);
    expect(unlevelled).toMatchObject({ signins: 22, signins_low: null, signins_substantial: null, signins_high: null, suppressed: ['signins_low', 'signins_substantial', 'signins_high'] });
    // Every figure published is 0 or at least 10.
    for (const f of EMC_FIELDS) {
      const v = row[f];
      if (typeof v === 'number' && f !== 'success_rate') expect(v === 0 || v >= 10).toBe(true);
    }
  });
});

describe('periods', () => {
  it('refuses malformed, unreal, reversed and over-long periods and odd portals with a clear error', async () => {
    const refusals: Array<[Record<string, unknown>, RegExp]> = [
      [{ from: '2026-6-1', to: '2026-06-01' }, /--from must be a date YYYY-MM-DD/],
      [{ from: '2026-06-01', to: 'today' }, /--to must be a date YYYY-MM-DD/],
      [{ to: '2026-06-01' }, /--from is required/],
      [{ from: '2026-02-30', to: '2026-03-01' }, /--from 2026-02-30 is not a real date/],
      [{ from: '2026-06-02', to: '2026-06-01' }, /--from 2026-06-02 is after --to 2026-06-01/],
      [{ from: '2024-04-30', to: '2026-06-01' }, /longer than 25 months.*2024-05-01/],
      [{ from: '2026-06-01', to: '2026-06-01', portal: "a' OR 1=1 --" }, /--portal must be a portal client id/],
      [{ from: '2026-06-01', to: '2026-06-01', portal: { $ne: null } }, /--portal must be a portal client id/],
      [{ from: '2026-06-01', to: '2026-06-01', portal: '*' }, /--portal must be a portal client id/],
      // Years from 2000 to next year (the clock's, 2026): nothing else has statistics, and the
      // last days of year 9999 have no next day to lay out.
      [{ from: '9999-01-01', to: '9999-12-31' }, /--from 9999-01-01 is out of range: the year must be from 2000 to 2027/],
      [{ from: '2026-06-01', to: '2028-01-01' }, /--to 2028-01-01 is out of range: the year must be from 2000 to 2027/],
      [{ from: '1999-12-31', to: '2000-01-01' }, /--from 1999-12-31 is out of range/],
    ];
    for (const [q, message] of refusals) {
      const attempt = reports.days(q as { from: string; to: string });
      await expect(attempt).rejects.toBeInstanceOf(UsageQueryError);
      await expect(attempt).rejects.toThrow(message);
    }
    await expect(reports.emc({ from: '2026-06-01', to: '2025-06-01' })).rejects.toBeInstanceOf(UsageQueryError);
    await expect(reports.hourly({ hours: 0 })).rejects.toBeInstanceOf(UsageQueryError);
    await expect(reports.daily({ days: 1.5 })).rejects.toBeInstanceOf(UsageQueryError);
    expect(checkPeriod({ from: '2024-05-01', to: '2026-06-01' })).toEqual({ from: '2024-05-01', to: '2026-06-01' });
    expect(checkPeriod({ from: '2024-02-29', to: '2024-02-29' })).toEqual({ from: '2024-02-29', to: '2024-02-29' });
    await expect(reports.allPortals({ from: '9999-12-30', to: '9999-12-31' })).rejects.toThrow(/out of range/);
    await expect(reports.emc({ from: '9999-12-30', to: '9999-12-31' })).rejects.toThrow(/out of range/);
    // Next year is the last: a period reaching into it is laid out to its end.
    await expect(reports.allPortals({ from: '2027-12-30', to: '2027-12-31' })).resolves.toHaveLength(2);
  });
});
