/**
 * Reading the usage statistics (usage.service.ts writes them): the entries of `dinhdanh stats
 * usage` and the console's charts, and the export for the e-government monitoring system (EMC:
 * Decree 42/2022/ND-CP on online public services; Circular 22/2023/TT-BTTTT connects portals to it).
 *
 * A day not yet compacted has no `citizens` row: its distinct count is read from its tags
 * (countDistinct); a compacted day has only the row. Both are read and the larger kept, which is
 * the exact count either way, except for tags flushed after their day was compacted (an instance
 * that could not write for a day): then a lower bound (types.ts: UsageRepository.compact).
 *
 * Anything published outside the operators is the EMC export, and there every count from 1 to 9 is
 * withheld (small-count suppression: a figure that small can single out the few people behind it,
 * the rule national statistics offices apply to published tables), as is any figure from which a
 * withheld one could be worked back.
 */
// The constants only: neither module imports the reports (nor anything that does), so no cycle.
import { CONSOLE_CLIENT_ID } from '../admin/console-client.js';
import { ACCOUNT_CLIENT_ID } from '../provider/account-session.js';
import { ACR_VALUES, LOA } from '../provider/levels.js';
import type { UsageRepository } from '../store/index.js';
import { ALL_PORTALS, retentionStart, shiftDay, vietnamDay } from './usage.service.js';
import { NO_PORTAL, OTHER_PORTAL, VIETNAM_OFFSET_MS, type UsageDay, type UsageHour } from './usage.types.js';

/** A question the reports cannot answer as asked: the message says what to give instead. */
export class UsageQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageQueryError';
  }
}

/**
 * dinhdanh's own clients: the operators' console and the citizens' account area. Their sign-ins are
 * counted (operators see them in `stats usage`) but they are no public service's portal, so the
 * EMC export leaves them out.
 */
export const FIRST_PARTY_CLIENTS: ReadonlySet<string> = new Set([CONSOLE_CLIENT_ID, ACCOUNT_CLIENT_ID]);

/** The smallest count the EMC export publishes; 1 to SUPPRESS_BELOW - 1 are withheld (0 is not). */
export const SUPPRESS_BELOW = 10;

/** One finished day and portal of the EMC export. Withheld figures are null and named in `suppressed`. */
export interface EmcRow {
  /** `YYYY-MM-DD`, Vietnam time. */
  date: string;
  /** The portal's client id (only registered portals are exported; dinhdanh's own clients are not). */
  portal_id: string;
  /** The portal's registered name, when known. */
  portal_name: string | null;
  /** Completed sign-ins. */
  signins: number | null;
  /** Completed sign-ins by level reached (urn:dinhdanh:loa:low / substantial / high). */
  signins_low: number | null;
  signins_substantial: number | null;
  signins_high: number | null;
  /** Distinct people who signed in that day. */
  citizens: number | null;
  /** Failed sign-in steps (wrong password, unknown number, limits, second factor …). */
  failures: number | null;
  /** signins / (signins + failures), 4 decimals; null when there were neither, or withheld. */
  success_rate: number | null;
  /** Registrations completed that began at the portal. */
  registrations: number | null;
  /** Password recoveries completed that began at the portal. */
  recoveries: number | null;
  /** The fields withheld in this row (small counts, and figures that would reveal them). */
  suppressed: string[];
}

/** The EMC export's fields, in order (the CSV header). */
export const EMC_FIELDS = [
  'date', 'portal_id', 'portal_name', 'signins', 'signins_low', 'signins_substantial', 'signins_high', 'citizens',
  'failures', 'success_rate', 'registrations', 'recoveries', 'suppressed',
] as const satisfies ReadonlyArray<keyof EmcRow>;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** A portal's client id as registered (cli/portals.ts), `-` and `other` included. */
const PORTAL = /^[A-Za-z0-9_-]{1,64}$/;
/** The levels a report always shows (zero when none): the provider's (provider/levels.ts). */
const LEVELS: readonly string[] = ACR_VALUES;
const MAX_HOURS = 24 * 31;
const MAX_DAYS = 800;
/** The first year a period may name: dinhdanh kept no statistics before it. */
export const FIRST_YEAR = 2000;
const DAY_MS = 86_400_000;
/**
 * The most days any report lays out one by one: 25 months is at most 762. A bound on the loop
 * itself, whatever the checks before it let through (a loop over dates near year 9999 once ran
 * on past it, to memory exhaustion).
 */
const MAX_LAID_OUT_DAYS = 1_000;

function checkDate(value: unknown, flag: string, now: number): string {
  if (typeof value !== 'string') throw new UsageQueryError(`${flag} is required: a date YYYY-MM-DD`);
  const m = DATE.exec(value);
  if (!m) throw new UsageQueryError(`${flag} must be a date YYYY-MM-DD (Vietnam time)`);
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) throw new UsageQueryError(`${flag} ${value} is not a real date`);
  // Statistics exist from dinhdanh's start to today: a year beyond next is a typing error, and the
  // dates near year 9999 have no next day in this format.
  const lastYear = Number(vietnamDay(now).slice(0, 4)) + 1;
  if (Number(m[1]) < FIRST_YEAR || Number(m[1]) > lastYear) throw new UsageQueryError(`${flag} ${value} is out of range: the year must be from ${FIRST_YEAR} to ${lastYear}`);
  return value;
}

/** Checks a period: both real dates of a year from 2000 to next year, from <= to, at most 25 months (the statistics' retention). */
export function checkPeriod(q: { from?: unknown; to?: unknown }, now: number = Date.now()): { from: string; to: string } {
  const from = checkDate(q.from, '--from', now);
  const to = checkDate(q.to, '--to', now);
  if (from > to) throw new UsageQueryError(`--from ${from} is after --to ${to}`);
  if (from < retentionStart(to)) throw new UsageQueryError(`the period is longer than 25 months (the statistics are kept 25 months): from ${retentionStart(to)} at the earliest for --to ${to}`);
  return { from, to };
}

/**
 * The last day the EMC export covers at `now`: the day before yesterday, Vietnam time. Today and
 * yesterday still change (sign-ins still come, yesterday's tags until it is compacted), and two
 * exports of a day that changed in between would give a withheld count by their difference (the
 * suppression holds only for figures that are final). Before yesterday a day is finished and
 * compacted (usage.service.ts).
 */
export function lastFinalDay(now: number): string {
  return shiftDay(vietnamDay(now), 2);
}

/** Checks an EMC export's period: as checkPeriod, and finished days only (up to lastFinalDay). */
export function checkEmcPeriod(q: { from?: unknown; to?: unknown }, now: number = Date.now()): { from: string; to: string } {
  const period = checkPeriod(q, now);
  const last = lastFinalDay(now);
  if (period.to > last) {
    throw new UsageQueryError(`the EMC export covers finished days only: --to must be ${last} or earlier (today and yesterday, Vietnam time, still change, and two exports of a changing day would reveal withheld counts by their difference)`);
  }
  return period;
}

/** Checks a portal filter: a client id as portals are registered (or `-`, `other`). */
export function checkPortal(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !PORTAL.test(value)) throw new UsageQueryError('--portal must be a portal client id (letters, digits, _ and -, at most 64)');
  return value;
}

function checkCount(value: unknown, what: string, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) throw new UsageQueryError(`${what} must be a whole number from 1 to ${max}`);
  return value;
}

/** Every day from `from` to `to`, both included: counted in whole days since the epoch, at most MAX_LAID_OUT_DAYS. */
function eachDay(from: string, to: string): string[] {
  const first = Date.parse(`${from}T00:00:00Z`) / DAY_MS;
  const count = Date.parse(`${to}T00:00:00Z`) / DAY_MS - first + 1;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || count < 0 || count > MAX_LAID_OUT_DAYS) {
    throw new UsageQueryError(`a period of at most ${MAX_LAID_OUT_DAYS} days is laid out day by day: ${from} … ${to} is not one`);
  }
  return Array.from({ length: count }, (_, i) => new Date((first + i) * DAY_MS).toISOString().slice(0, 10));
}

const zeroLevels = (): Record<string, number> => Object.fromEntries(LEVELS.map((l) => [l, 0]));

function emptyDay(date: string, portal: string): UsageDay {
  return {
    date, portal, signins: 0, by_level: zeroLevels(), by_method: {}, citizens: 0, failures: {}, consents: { given: 0, withdrawn: 0 },
    registrations: {}, recoveries: {}, funnel: { shown: 0, signed_in: 0, consent: 0, code: 0 },
  };
}

/** Adds one row of the store (its key) to the day's entry. */
function apply(day: UsageDay, key: string, n: number): void {
  const colon = key.indexOf(':');
  const kind = colon < 0 ? key : key.slice(0, colon);
  const rest = colon < 0 ? '' : key.slice(colon + 1);
  switch (kind) {
    case 'signins':
      day.signins += n;
      day.funnel.signed_in += n;
      return;
    case 'citizens':
      day.citizens = Math.max(day.citizens, n);
      return;
    case 'acr':
      day.by_level[rest] = (day.by_level[rest] ?? 0) + n;
      return;
    case 'method':
      day.by_method[rest] = (day.by_method[rest] ?? 0) + n;
      return;
    case 'failure':
      day.failures[rest] = (day.failures[rest] ?? 0) + n;
      return;
    case 'consent':
      if (rest === 'given') day.consents.given += n;
      if (rest === 'withdrawn') day.consents.withdrawn += n;
      if (rest === 'given' || rest === 'reused') day.funnel.consent += n;
      return;
    case 'registration':
      day.registrations[rest] = (day.registrations[rest] ?? 0) + n;
      return;
    case 'recovery':
      day.recoveries[rest] = (day.recoveries[rest] ?? 0) + n;
      return;
    case 'funnel':
      if (rest === 'shown') day.funnel.shown += n;
      if (rest === 'code') day.funnel.code += n;
      return;
    default:
      // hour:<HH>:<acr> rows are read by hourly(); unknown keys (a newer version's) are skipped.
      return;
  }
}

const sum = (record: Record<string, number>): number => Object.values(record).reduce((s, n) => s + n, 0);

/** The EMC row of a day's entry, small counts withheld. */
export function emcRow(day: UsageDay, portalName: string | null): EmcRow {
  const suppressed = new Set<string>();
  const small = (n: number) => n > 0 && n < SUPPRESS_BELOW;
  const failures = sum(day.failures);
  const figures = {
    signins: day.signins,
    signins_low: day.by_level[LOA.low] ?? 0,
    signins_substantial: day.by_level[LOA.substantial] ?? 0,
    signins_high: day.by_level[LOA.high] ?? 0,
    citizens: day.citizens,
    failures,
    registrations: day.registrations.completed ?? 0,
    recoveries: day.recoveries.completed ?? 0,
  };
  for (const [field, n] of Object.entries(figures)) if (small(n)) suppressed.add(field);
  // Secondary suppression: a withheld figure must not be recoverable from published ones.
  // - The levels add up to the sign-ins (with those at no known level): one level withheld could be
  //   worked back from the others, and with the sign-ins withheld the levels would give them back.
  //   Sign-ins at no known level (not a field) are what the levels leave of the sign-ins: when
  //   those are 1 to 9, the split is withheld too.
  const levels = ['signins_low', 'signins_substantial', 'signins_high'] as const;
  const unlevelled = day.signins - levels.reduce((s, f) => s + figures[f], 0);
  if (suppressed.has('signins') || levels.some((f) => suppressed.has(f)) || small(unlevelled)) for (const f of levels) suppressed.add(f);
  // - The rate with the sign-ins gives the failures, and with the failures gives the sign-ins.
  if (suppressed.has('signins') || suppressed.has('failures')) suppressed.add('success_rate');
  const attempts = day.signins + failures;
  const rate = attempts === 0 ? null : Math.round((day.signins / attempts) * 10_000) / 10_000;
  const out = (field: keyof typeof figures): number | null => (suppressed.has(field) ? null : figures[field]);
  return {
    date: day.date,
    portal_id: day.portal,
    portal_name: portalName,
    signins: out('signins'),
    signins_low: out('signins_low'),
    signins_substantial: out('signins_substantial'),
    signins_high: out('signins_high'),
    citizens: out('citizens'),
    failures: out('failures'),
    success_rate: suppressed.has('success_rate') ? null : rate,
    registrations: out('registrations'),
    recoveries: out('recoveries'),
    suppressed: EMC_FIELDS.filter((f) => suppressed.has(f)),
  };
}

/** `2026-12-04T23:00:00+07:00`: an hour's start, Vietnam time. */
function hourLabel(vietnamHourStart: number): string {
  return `${new Date(vietnamHourStart).toISOString().slice(0, 13)}:00:00+07:00`;
}

export function createUsageReports(deps: {
  repo: UsageRepository;
  now?: () => number;
  /** The registered name of a portal (the EMC export's portal_name); absent: null. */
  portalName?: (clientId: string) => Promise<string | undefined>;
}) {
  const now = deps.now ?? Date.now;

  /** Every (day, portal) entry of the period with anything counted, by date then portal. */
  async function entries(from: string, to: string, portal: string | undefined): Promise<Map<string, UsageDay>> {
    const [rows, distinct] = await Promise.all([deps.repo.range(from, to, portal), deps.repo.countDistinct(from, to, portal)]);
    const out = new Map<string, UsageDay>();
    const entry = (date: string, p: string): UsageDay => {
      const k = `${date}\u0000${p}`;
      let e = out.get(k);
      if (!e) out.set(k, (e = emptyDay(date, p)));
      return e;
    };
    for (const r of rows) apply(entry(r.day, r.portal), r.key, r.n);
    for (const d of distinct) {
      const e = entry(d.day, d.portal);
      e.citizens = Math.max(e.citizens, d.n);
    }
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  async function days(q: { from: string; to: string; portal?: string }): Promise<UsageDay[]> {
    const { from, to } = checkPeriod(q, now());
    const portal = checkPortal(q.portal);
    return [...(await entries(from, to, portal)).values()].filter((d) => d.portal !== ALL_PORTALS);
  }

  async function allPortals(q: { from: string; to: string }): Promise<Array<{ date: string; signins: number; by_level: Record<string, number>; citizens: number }>> {
    const { from, to } = checkPeriod(q, now());
    const byDate = new Map(eachDay(from, to).map((date) => [date, { date, signins: 0, by_level: zeroLevels(), citizens: 0 }]));
    // Summed in the store: every portal's rows (most of them hourly) are never read here.
    const [signins, levels, all] = await Promise.all([
      deps.repo.sums({ from, to, keyPrefix: 'signins' }),
      deps.repo.sums({ from, to, keyPrefix: 'acr:' }),
      // The all-portals distinct count is its own set of tags (a person at two portals is one citizen).
      entries(from, to, ALL_PORTALS),
    ]);
    for (const r of signins) {
      const total = byDate.get(r.day);
      if (total && r.key === 'signins') total.signins += r.n;
    }
    for (const r of levels) {
      const total = byDate.get(r.day);
      if (total) total.by_level[r.key.slice(4)] = (total.by_level[r.key.slice(4)] ?? 0) + r.n;
    }
    for (const d of all.values()) {
      const total = byDate.get(d.date);
      if (total) total.citizens = d.citizens;
    }
    return [...byDate.values()];
  }

  async function hourly(q: { portal?: string; hours?: number }): Promise<UsageHour[]> {
    const portal = checkPortal(q.portal);
    const hours = checkCount(q.hours, 'hours', MAX_HOURS, 24);
    // Hour starts on a clock shifted to Vietnam time: its UTC fields read as Vietnam's.
    const current = Math.floor((now() + VIETNAM_OFFSET_MS) / 3_600_000) * 3_600_000;
    const starts = Array.from({ length: hours }, (_, i) => current - (hours - 1 - i) * 3_600_000);
    const slots = new Map(starts.map((s) => [new Date(s).toISOString().slice(0, 13), { hour: hourLabel(s), by_level: zeroLevels() }]));
    const from = new Date(starts[0]!).toISOString().slice(0, 10);
    const to = new Date(current).toISOString().slice(0, 10);
    for (const r of await deps.repo.sums({ from, to, keyPrefix: 'hour:', portal })) {
      const [, hh, acr] = /^hour:(\d{2}):(.+)$/.exec(r.key) ?? [];
      const slot = hh === undefined ? undefined : slots.get(`${r.day}T${hh}`);
      if (!slot || acr === undefined) continue;
      slot.by_level[acr] = (slot.by_level[acr] ?? 0) + r.n;
    }
    return [...slots.values()];
  }

  async function daily(q: { portal?: string; days?: number }): Promise<Array<{ date: string; by_level: Record<string, number> }>> {
    const portal = checkPortal(q.portal);
    const count = checkCount(q.days, 'days', MAX_DAYS, 90);
    const to = vietnamDay(now());
    const from = shiftDay(to, count - 1);
    const byDate = new Map(eachDay(from, to).map((date) => [date, { date, by_level: zeroLevels() }]));
    for (const r of await deps.repo.sums({ from, to, keyPrefix: 'acr:', portal })) {
      const day = byDate.get(r.day);
      if (!day) continue;
      const acr = r.key.slice(4);
      day.by_level[acr] = (day.by_level[acr] ?? 0) + r.n;
    }
    return [...byDate.values()];
  }

  async function emc(q: { from: string; to: string }): Promise<EmcRow[]> {
    const { from, to } = checkEmcPeriod(q, now());
    const names = new Map<string, string | null>();
    const rows: EmcRow[] = [];
    for (const d of (await entries(from, to, undefined)).values()) {
      // Per portal: journeys begun at dinhdanh itself, unregistered clients, the all-portals set
      // and dinhdanh's own clients are no portal of the monitoring system.
      if (d.portal === NO_PORTAL || d.portal === OTHER_PORTAL || d.portal === ALL_PORTALS || FIRST_PARTY_CLIENTS.has(d.portal)) continue;
      if (!names.has(d.portal)) names.set(d.portal, deps.portalName ? ((await deps.portalName(d.portal).catch(() => undefined)) ?? null) : null);
      rows.push(emcRow(d, names.get(d.portal) ?? null));
    }
    return rows;
  }

  return { days, allPortals, hourly, daily, emc };
}

export type UsageReports = ReturnType<typeof createUsageReports>;
