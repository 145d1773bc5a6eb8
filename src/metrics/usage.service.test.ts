/**
 * The usage recorder on a real SQLite store with real portal labels: security events become rows
 * of closed keys per Vietnam day and portal, distinct citizens are counted from tags that name no
 * one, a flush that fails keeps its counts, the buffer stays bounded, and the maintenance compacts
 * finished days and deletes those past 25 months.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createStore, type Store, type UsageRepository } from '../store/index.js';
import { LOA } from '../provider/levels.js';
import { createPortalLabels, type PortalLabels } from './portal-labels.js';
import { MAX_BUFFERED_TAGS, createUsageRecorder, retentionStart, shiftDay, vietnamDay } from './usage.service.js';

const A = 'cong-dich-vu-cong';
const B = 'thue-dien-tu';
/** 2026-06-01 10:00 in Vietnam. */
const T0 = Date.UTC(2026, 5, 1, 3, 0, 0);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let store: Store;
let labels: PortalLabels;
let clock: number;
let logs: Array<Record<string, unknown>>;

function logger() {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'info' }, sink);
}

/** The real repository, made to fail while `down` is set (a store outage). */
function flaky(repo: UsageRepository) {
  const state = { down: false, calls: 0 };
  const guard = <T>(fn: () => Promise<T>): Promise<T> => {
    state.calls += 1;
    return state.down ? Promise.reject(new Error('store down')) : fn();
  };
  const wrapped: UsageRepository = {
    add: (rows) => guard(() => repo.add(rows)),
    addDistinct: (rows) => guard(() => repo.addDistinct(rows)),
    countDistinct: (...a) => repo.countDistinct(...a),
    range: (...a) => repo.range(...a),
    sums: (q) => repo.sums(q),
    compact: (d) => guard(() => repo.compact(d)),
    uncompacted: (b) => guard(() => repo.uncompacted(b)),
    purge: (b) => guard(() => repo.purge(b)),
  };
  return { state, repo: wrapped };
}

const rows = async (day: string, portal?: string) =>
  Object.fromEntries((await store.usage.range(day, day, portal)).map((r) => [`${r.portal} ${r.key}`, r.n]));

beforeEach(async () => {
  clock = T0;
  logs = [];
  store = await createStore('sqlite::memory:', { now: () => clock });
  for (const clientId of [A, B]) {
    await store.portals.create({
      clientId, name: clientId, metadata: { redirect_uris: [`https://${clientId}.example.vn/cb`] }, secretCiphertext: null,
      sector: `${clientId}.example.vn`, nationalId: false, nationalIdBasis: null, disabled: false,
    });
  }
  labels = createPortalLabels({ portals: store.portals, now: () => clock });
  await labels.refresh();
});

afterEach(async () => {
  await store.close();
});

const recorder = (over: Partial<Parameters<typeof createUsageRecorder>[0]> = {}) =>
  createUsageRecorder({ repo: store.usage, labels, secret: 'test-secret', logger: logger(), now: () => clock, ...over });

describe('Vietnam days', () => {
  it('are UTC+7 all year: a day runs from 17:00Z to 17:00Z', () => {
    expect(vietnamDay(Date.UTC(2026, 0, 1, 16, 59, 59))).toBe('2026-01-01');
    expect(vietnamDay(Date.UTC(2026, 0, 1, 17, 0, 0))).toBe('2026-01-02');
    expect(vietnamDay(Date.UTC(2026, 6, 1, 17, 0, 0))).toBe('2026-07-02');
    expect(shiftDay('2026-03-01', 1)).toBe('2026-02-28');
    expect(shiftDay('2024-03-01', 1)).toBe('2024-02-29');
    // The day after 9999-12-31 has no YYYY-MM-DD: an error, never a string that still compares as one.
    expect(shiftDay('9999-12-30', -1)).toBe('9999-12-31');
    expect(() => shiftDay('9999-12-31', -1)).toThrow(RangeError);
    expect(() => shiftDay('not a day', 1)).toThrow(RangeError);
  });

  it('keep 25 months: the same day of the month 25 months before, clamped to a shorter month', () => {
    expect(retentionStart('2026-06-15')).toBe('2024-05-15');
    expect(retentionStart('2026-03-31')).toBe('2024-02-29');
    expect(retentionStart('2027-03-31')).toBe('2025-02-28');
    expect(retentionStart('2026-01-10')).toBe('2023-12-10');
  });
});

describe('recording', () => {
  it('counts sign-ins per portal by level, method and Vietnam hour, on the Vietnam day of the event', async () => {
    const usage = recorder();
    const late = Date.UTC(2026, 5, 1, 16, 59, 0); // 23:59 in Vietnam, 2026-06-01
    const early = Date.UTC(2026, 5, 1, 17, 1, 0); // 00:01 in Vietnam, 2026-06-02
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: A, acr: LOA.low, method: 'pwd' }, T0);
    usage.audit('SIGN_IN_COMPLETED', { person: 'p2', portal: A, acr: LOA.substantial, method: 'pwd+otp+mfa' }, T0);
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: B, acr: LOA.high, method: 'pwd+hwk+mfa' }, late);
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: B, acr: LOA.high, method: 'pwd+hwk+mfa' }, early);
    await usage.flush();
    expect(await rows('2026-06-01')).toEqual({
      [`${A} signins`]: 2, [`${A} acr:${LOA.low}`]: 1, [`${A} acr:${LOA.substantial}`]: 1,
      [`${A} method:pwd`]: 1, [`${A} method:pwd+otp+mfa`]: 1,
      [`${A} hour:10:${LOA.low}`]: 1, [`${A} hour:10:${LOA.substantial}`]: 1,
      [`${B} signins`]: 1, [`${B} acr:${LOA.high}`]: 1, [`${B} method:pwd+hwk+mfa`]: 1, [`${B} hour:23:${LOA.high}`]: 1,
    });
    expect(await rows('2026-06-02')).toEqual({
      [`${B} signins`]: 1, [`${B} acr:${LOA.high}`]: 1, [`${B} method:pwd+hwk+mfa`]: 1, [`${B} hour:00:${LOA.high}`]: 1,
    });
  });

  it('lets only closed sets into a row: unregistered portals are `other`, none is `-`, unknown levels and methods `other`', async () => {
    const usage = recorder();
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: 'forged-<script>', acr: 'urn:evil', method: 'pwd+x' }, T0);
    usage.audit('SIGN_IN_COMPLETED', { person: 'p2', portal: null, acr: null, method: null }, T0);
    usage.audit('LOGIN_FAILED', { reason: 'made_up', portal: "x' OR 1=1" }, T0);
    usage.signInPageShown('some-client-nobody-registered');
    await usage.flush();
    expect(await rows('2026-06-01')).toEqual({
      'other signins': 1, 'other acr:other': 1, 'other method:other': 1, 'other hour:10:other': 1,
      '- signins': 1, '- acr:other': 1, '- method:other': 1, '- hour:10:other': 1,
      'other failure:other': 1, 'other funnel:shown': 1,
    });
  });

  it('counts failures by reason, consents, registrations, recoveries and the funnel', async () => {
    const usage = recorder();
    usage.audit('LOGIN_FAILED', { reason: 'wrong_password', person: 'p', portal: A }, T0);
    usage.audit('LOGIN_FAILED', { reason: 'unknown_identifier', portal: A }, T0);
    usage.audit('LOGIN_FAILED', { reason: 'password_reset_required', person: 'p' }, T0);
    usage.audit('LOGIN_THROTTLED', { person: 'p', portal: A }, T0);
    usage.audit('LOGIN_IP_LIMITED', { portal: A }, T0);
    usage.audit('MFA_FAILED', { person: 'p', method: 'totp', portal: A }, T0);
    usage.audit('MFA_LOCKED', { person: 'p', method: 'totp', portal: A }, T0);
    // Not sign-in failures: a factor added meanwhile, the account area's and recovery's checks.
    usage.audit('MFA_FAILED', { person: 'p', reason: 'factor_exists', portal: A }, T0);
    usage.audit('MFA_FAILED', { person: 'p', method: 'passkey', via: 'account' }, T0);
    usage.audit('MFA_FAILED', { person: 'p', method: 'totp', portal: A, journey: 'recovery' }, T0);
    usage.audit('CONSENT_GRANTED', { person: 'p', portal: A }, T0);
    usage.audit('CONSENT_REUSED', { person: 'p', portal: A }, T0);
    usage.audit('CONSENT_REVOKED', { person: 'p', portal: B }, T0);
    usage.audit('REGISTRATION_COMPLETED', { person: 'p', portal: A }, T0);
    usage.audit('REGISTRATION_EXISTING_ACCOUNT', { person: 'p' }, T0);
    usage.audit('REGISTRATION_LIMITED', { limit: 'ip' }, T0);
    usage.audit('RECOVERY_STARTED', { matched: true }, T0);
    usage.audit('PASSWORD_RESET', { person: 'p' }, T0);
    usage.audit('RECOVERY_LIMITED', { limit: 'ip' }, T0);
    usage.audit('ACCOUNT_RESET_REQUESTED', { person: 'p' }, T0);
    usage.audit('ACCOUNT_RESET_COMPLETED', { person: 'p' }, T0);
    // Events that are no usage statistic.
    usage.audit('LOGOUT', { person: 'p', portal: A }, T0);
    usage.audit('KEYS_ROTATED', {}, T0);
    usage.signInPageShown(A);
    usage.signInPageShown(A);
    usage.grantSucceeded('authorization_code', A);
    usage.grantSucceeded('refresh_token', A);
    usage.grantSucceeded('client_credentials', B);
    await usage.flush();
    expect(await rows('2026-06-01')).toEqual({
      [`${A} failure:wrong_password`]: 1, [`${A} failure:unknown_identifier`]: 1, '- failure:password_reset_required': 1,
      [`${A} failure:throttled`]: 1, [`${A} failure:ip_limited`]: 1, [`${A} failure:mfa_failed`]: 1, [`${A} failure:mfa_locked`]: 1,
      [`${A} consent:given`]: 1, [`${A} consent:reused`]: 1, [`${B} consent:withdrawn`]: 1,
      [`${A} registration:completed`]: 1, '- registration:existing_account': 1, '- registration:limited': 1,
      '- recovery:started': 1, '- recovery:completed': 1, '- recovery:limited': 1,
      '- recovery:account_reset_requested': 1, '- recovery:account_reset_completed': 1,
      [`${A} funnel:shown`]: 2, [`${A} funnel:code`]: 1,
    });
  });

  it('counts distinct citizens per portal and for all portals, from tags that name no one and differ by day and portal', async () => {
    const usage = recorder();
    const person = 'f3c1a7d2-0c0e-4d1b-9d55-3e0c9b7c2a11';
    for (let i = 0; i < 3; i++) usage.audit('SIGN_IN_COMPLETED', { person, portal: A, acr: LOA.low, method: 'pwd' }, T0 + i);
    usage.audit('SIGN_IN_COMPLETED', { person, portal: B, acr: LOA.low, method: 'pwd' }, T0);
    usage.audit('SIGN_IN_COMPLETED', { person: 'other-person', portal: B, acr: LOA.low, method: 'pwd' }, T0);
    usage.audit('SIGN_IN_COMPLETED', { person, portal: A, acr: LOA.low, method: 'pwd' }, T0 + DAY);
    await usage.flush();
    expect(await store.usage.countDistinct('2026-06-01', '2026-06-02')).toEqual([
      { day: '2026-06-01', portal: '*', n: 2 },
      { day: '2026-06-01', portal: A, n: 1 },
      { day: '2026-06-01', portal: B, n: 2 },
      { day: '2026-06-02', portal: '*', n: 1 },
      { day: '2026-06-02', portal: A, n: 1 },
    ]);
    const tags: string[] = [];
    for await (const r of store.copy.exportAll('usageTags')) tags.push(r.tag as string);
    expect(tags).toHaveLength(7);
    expect(new Set(tags).size).toBe(7);
    for (const tag of tags) {
      expect(tag).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(tag).not.toContain(person.slice(0, 8));
    }
    // Another secret (another installation's pairwise salt) makes other tags for the same person.
    const elsewhere = recorder({ secret: 'another-secret' });
    elsewhere.audit('SIGN_IN_COMPLETED', { person, portal: A, acr: LOA.low, method: 'pwd' }, T0);
    await elsewhere.flush();
    await expect(store.usage.countDistinct('2026-06-01', '2026-06-01', A)).resolves.toEqual([{ day: '2026-06-01', portal: A, n: 2 }]);
  });

  it('never throws into the caller, whatever the details or a failing part', () => {
    const broken: PortalLabels = {
      label() {
        throw new Error('labels broke');
      },
      refresh: async () => undefined,
    };
    const usage = recorder({ labels: broken });
    expect(() => usage.audit('SIGN_IN_COMPLETED', { person: 'p', portal: A }, T0)).not.toThrow();
    expect(() => usage.signInPageShown(A)).not.toThrow();
    expect(() => usage.grantSucceeded('authorization_code', A)).not.toThrow();
    expect(logs.some((l) => l.msg === 'usage statistics: an event could not be counted')).toBe(true);
    const fine = recorder();
    expect(() => fine.audit('SIGN_IN_COMPLETED', { person: ['x'], portal: 7 as unknown as string, acr: true, method: 3 }, Number.NaN)).not.toThrow();
  });
});

describe('flushing', () => {
  it('keeps the counts of a failed flush and writes each exactly once when the store is back', async () => {
    const { state, repo } = flaky(store.usage);
    let failures = 0;
    const usage = recorder({ repo, onFlushFailure: () => (failures += 1) });
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: A, acr: LOA.low, method: 'pwd' }, T0);
    state.down = true;
    await expect(usage.flush()).resolves.toBeUndefined();
    usage.audit('SIGN_IN_COMPLETED', { person: 'p2', portal: A, acr: LOA.low, method: 'pwd' }, T0);
    await usage.flush();
    expect(failures).toBe(2);
    // One warning for the outage, not one per flush.
    expect(logs.filter((l) => l.msg === 'usage statistics could not be written; kept in memory and retried')).toHaveLength(1);
    expect(await rows('2026-06-01', A)).toEqual({});
    state.down = false;
    await usage.flush();
    await usage.flush();
    expect(await rows('2026-06-01', A)).toMatchObject({ [`${A} signins`]: 2, [`${A} acr:${LOA.low}`]: 2 });
    await expect(store.usage.countDistinct('2026-06-01', '2026-06-01', A)).resolves.toEqual([{ day: '2026-06-01', portal: A, n: 2 }]);
    expect(logs.some((l) => l.msg === 'usage statistics written again after failed flushes')).toBe(true);
    expect(failures).toBe(2);
  });

  it('after a write that added some rows and names the others, retries only those: nothing counted twice', async () => {
    // A store that adds the rows of portal A and refuses B's, saying so (as MongoDB's unordered
    // bulk write does, per row), once.
    let faults = 1;
    const partial: UsageRepository = {
      ...store.usage,
      add: async (sent) => {
        if (faults === 0) return store.usage.add(sent);
        faults -= 1;
        await store.usage.add(sent.filter((r) => r.portal === A));
        throw Object.assign(new Error('2 usage row(s) could not be added; the others were'), { failedRows: sent.filter((r) => r.portal === B) });
      },
    };
    const failures: number[] = [];
    const usage = recorder({ repo: partial, onFlushFailure: () => failures.push(1) });
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: A, acr: LOA.low, method: 'pwd' }, T0);
    usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: B }, T0);
    usage.audit('LOGIN_FAILED', { reason: 'unknown_identifier', portal: B }, T0);
    await usage.flush();
    expect(failures).toHaveLength(1);
    expect(logs.some((l) => l.msg === 'usage statistics partly written; the rows not written are retried' && l.notAdded === 2)).toBe(true);
    // A's rows are in; B's are not, yet.
    expect(await rows(vietnamDay(T0))).toEqual({
      [`${A} signins`]: 1, [`${A} acr:${LOA.low}`]: 1, [`${A} method:pwd`]: 1, [`${A} hour:10:${LOA.low}`]: 1,
    });
    usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: B }, T0);
    await usage.flush();
    // Each once: A's not again, B's put back and merged with what came meanwhile.
    expect(await rows(vietnamDay(T0))).toEqual({
      [`${A} signins`]: 1, [`${A} acr:${LOA.low}`]: 1, [`${A} method:pwd`]: 1, [`${A} hour:10:${LOA.low}`]: 1,
      [`${B} failure:unknown_identifier`]: 1, [`${B} failure:wrong_password`]: 2,
    });
    await expect(store.usage.countDistinct(vietnamDay(T0), vietnamDay(T0), A)).resolves.toEqual([{ day: vietnamDay(T0), portal: A, n: 1 }]);
  });

  it('puts everything back when a failed write names rows it was not sent (nothing is known then)', async () => {
    let faults = 1;
    const confused: UsageRepository = {
      ...store.usage,
      add: async (sent) => {
        if (faults-- > 0) throw Object.assign(new Error('partly'), { failedRows: [{ ...sent[0]!, n: sent[0]!.n + 1 }] });
        return store.usage.add(sent);
      },
    };
    const usage = recorder({ repo: confused });
    usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: A }, T0);
    usage.audit('LOGIN_FAILED', { reason: 'wrong_password', portal: B }, T0);
    await usage.flush();
    await usage.flush();
    expect(await rows(vietnamDay(T0))).toEqual({ [`${A} failure:wrong_password`]: 1, [`${B} failure:wrong_password`]: 1 });
  });

  it('does not call the store when nothing happened', async () => {
    const { state, repo } = flaky(store.usage);
    const usage = recorder({ repo });
    await usage.flush();
    await usage.flush();
    expect(state.calls).toBe(0);
  });

  it('bounds the tags it holds while the store is down, dropping the excess with a counted warning', async () => {
    const { state, repo } = flaky(store.usage);
    state.down = true;
    const usage = recorder({ repo });
    // Two tags per person (its portal and all portals): two more than the buffer holds.
    const people = MAX_BUFFERED_TAGS / 2 + 1;
    for (let i = 0; i < people; i++) usage.audit('SIGN_IN_COMPLETED', { person: `p${i}`, portal: A, acr: LOA.low, method: 'pwd' }, T0);
    await usage.flush();
    state.down = false;
    await usage.flush();
    expect(logs.find((l) => l.msg?.toString().startsWith('usage statistics dropped'))).toMatchObject({ droppedTags: 2, droppedCounts: 0 });
    // The counts are all there; the distinct count misses only what was dropped.
    expect(await rows('2026-06-01', A)).toMatchObject({ [`${A} signins`]: people });
    const distinct = await store.usage.countDistinct('2026-06-01', '2026-06-01');
    expect(distinct.reduce((s, r) => s + r.n, 0)).toBe(MAX_BUFFERED_TAGS);
  });

  it('stop() flushes what is buffered (start() may be called twice)', async () => {
    const usage = recorder({ flushMs: 60_000 });
    usage.start();
    usage.start();
    usage.audit('SIGN_IN_COMPLETED', { person: 'p1', portal: B, acr: LOA.high, method: 'pwd+hwk+mfa' }, T0);
    await usage.stop();
    expect(await rows('2026-06-01', B)).toMatchObject({ [`${B} signins`]: 1 });
  });
});

describe('maintenance', () => {
  it('compacts days before yesterday (Vietnam time) into `citizens`, leaves yesterday and today open, and deletes days past 25 months', async () => {
    const usage = recorder();
    const sign = (person: string, at: number) => usage.audit('SIGN_IN_COMPLETED', { person, portal: A, acr: LOA.low, method: 'pwd' }, at);
    sign('p1', T0 - 2 * DAY);
    sign('p2', T0 - 2 * DAY);
    sign('p1', T0 - 2 * DAY + HOUR);
    sign('p1', T0 - DAY);
    sign('p1', T0);
    await usage.flush();
    await store.usage.add([
      { day: '2024-04-30', portal: A, key: 'signins', n: 4 },
      { day: '2024-05-01', portal: A, key: 'signins', n: 5 },
    ]);
    await usage.maintain();
    await expect(store.usage.uncompacted('2026-06-02')).resolves.toEqual(['2026-05-31', '2026-06-01']);
    expect(await rows('2026-05-30', A)).toMatchObject({ [`${A} signins`]: 3, [`${A} citizens`]: 2 });
    expect(await rows('2026-05-30', '*')).toEqual({ '* citizens': 2 });
    await expect(store.usage.countDistinct('2026-05-30', '2026-05-30')).resolves.toEqual([]);
    expect(await rows('2026-05-31', A)).not.toHaveProperty(`${A} citizens`);
    // 25 months before 2026-06-01 is 2024-05-01: kept; the day before it went.
    await expect(store.usage.range('2024-04-01', '2024-05-31')).resolves.toEqual([{ day: '2024-05-01', portal: A, key: 'signins', n: 5 }]);
    // A day later, yesterday's day is finished too.
    clock += DAY;
    await usage.maintain();
    await expect(store.usage.uncompacted('2026-06-03')).resolves.toEqual(['2026-06-01']);
    expect(await rows('2026-05-31', A)).toMatchObject({ [`${A} citizens`]: 1 });
    await expect(store.usage.range('2024-04-01', '2024-05-31')).resolves.toEqual([]);
  });

  it('never rejects when the store is down', async () => {
    const { state, repo } = flaky(store.usage);
    state.down = true;
    const usage = recorder({ repo });
    await expect(usage.maintain()).resolves.toBeUndefined();
    expect(logs.some((l) => l.msg === 'usage statistics maintenance failed; tried again within the hour')).toBe(true);
  });
});
