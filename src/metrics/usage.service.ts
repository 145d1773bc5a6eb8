/**
 * Usage statistics: how much the national sign-in is used, per Vietnam day and portal, written to
 * the store shared by every instance (types.ts: UsageRepository) and kept 25 months. The figures
 * portals and the e-government monitoring system (EMC, Decree 42/2022/ND-CP; Circular
 * 22/2023/TT-BTTTT) read come from here (usage.report.ts).
 *
 * An observer of the running system's Telemetry like the Prometheus metrics: told synchronously of
 * each security event, it counts in memory and never waits or throws; every `flushMs` (5 s) the
 * counts go to the store as atomic increments (so instances add up), and a flush that fails keeps
 * them for the next one. Only closed sets reach a row: the portal through the shared PortalLabels
 * (a registered client id, `other`, or `-`), the level from the provider's levels, the method from
 * the `amr` combinations a sign-in can end with, failure reasons from a fixed list.
 *
 * Distinct citizens are counted exactly without storing who: each sign-in leaves a tag,
 * HMAC-SHA256 under a key of that day (itself derived from `secret`) of the portal and the person
 * id, remembered once per (day, portal) and per (day, `*`) for all portals together. Without the
 * secret a tag names no one, tags of different days or portals of one person do not match, and once
 * a day is finished (before yesterday, Vietnam time) the hourly maintenance compacts it: the count
 * is written as key `citizens` and the day's tags are deleted, after which nothing links a figure
 * to a person. While a day is open its tags say no more than the audit log already holds (who
 * signed in where, SIGN_IN_COMPLETED) — data minimisation, Decree 13/2023/ND-CP Art. 3.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditDetails } from '../audit/audit.service.js';
import type { SecurityEventName } from '../audit/events.js';
import { ACR_VALUES } from '../provider/levels.js';
import type { UsageCount, UsageRepository } from '../store/index.js';
import type { PortalLabels } from './portal-labels.js';
import type { Telemetry } from './telemetry.js';
import { VIETNAM_OFFSET_MS } from './usage.types.js';

export interface UsageRecorder extends Pick<Telemetry, 'audit' | 'signInPageShown' | 'grantSucceeded'> {
  /** Writes what is buffered (atomic increments); resolves when written (or failed: counts kept for the next try). */
  flush(): Promise<void>;
  /** Timers: flush every flushMs; hourly: compact finished days and purge beyond 25 months. unref'd. */
  start(): void;
  /** Stops the timers and flushes. */
  stop(): Promise<void>;
}

/** What the hourly timer does, callable on its own (tests, and an operator's tooling). */
export interface UsageMaintenance {
  /** Compacts every finished day still holding tags, then deletes days older than 25 months. Never rejects. */
  maintain(): Promise<void>;
}

export const USAGE_FLUSH_MS = 5_000;
export const USAGE_MAINTENANCE_MS = 3_600_000;
/** Kept this many months (the retention); older days are purged by the maintenance. */
export const USAGE_RETENTION_MONTHS = 25;
/**
 * Buffer bounds while the store cannot be written. Count rows are bounded by design (days × portals
 * × a closed set of keys) but grow a day at a time in a long outage; tags grow with people. Past
 * these, new entries are dropped and counted in a warning rather than letting memory grow.
 */
export const MAX_BUFFERED_COUNTS = 200_000;
export const MAX_BUFFERED_TAGS = 100_000;
/** Tags written per store call. */
const TAG_BATCH = 1_000;

/** The portal of the all-portals distinct count. */
export const ALL_PORTALS = '*';

/**
 * The `amr` combinations a sign-in can finish with (interactions/second-factor.controller.ts,
 * RFC 8176 values, as metrics.ts's SIGN_IN_METHODS): anything else is `other`.
 */
export const USAGE_METHODS: ReadonlySet<string> = new Set(['pwd', 'pwd+otp+mfa', 'pwd+sms+mfa', 'pwd+hwk+mfa', 'pwd+swk+mfa']);
/** The provider's levels (provider/levels.ts); any other `acr` is `other`. */
const LEVELS: ReadonlySet<string> = new Set<string>(ACR_VALUES);

/** `YYYY-MM-DD` of an instant, Vietnam time (UTC+7 all year). */
export function vietnamDay(at: number): string {
  return new Date(at + VIETNAM_OFFSET_MS).toISOString().slice(0, 10);
}

/** The Vietnam day `days` before (negative: after) `day`; a RangeError past year 9999 (no such `YYYY-MM-DD`). */
export function shiftDay(day: string, days: number): string {
  const iso = new Date(Date.parse(`${day}T00:00:00Z`) - days * 86_400_000).toISOString();
  // Past 9999 the ISO form is +010000-01-01…: its first ten characters are no day.
  if (!/^\d{4}-\d{2}-\d{2}T/.test(iso)) throw new RangeError(`no day YYYY-MM-DD ${days} days before ${day}`);
  return iso.slice(0, 10);
}

/** The first day kept at `today`: the same day of the month 25 months earlier (clamped to that month's end). */
export function retentionStart(today: string, months = USAGE_RETENTION_MONTHS): string {
  const [y, m, d] = today.split('-').map(Number) as [number, number, number];
  const first = new Date(Date.UTC(y, m - 1 - months, 1));
  const lastDay = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
  first.setUTCDate(Math.min(d, lastDay));
  return first.toISOString().slice(0, 10);
}

const str = (v: AuditDetails[string]): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * A second-factor event belongs to a sign-in when the interaction recorded it (it names the portal);
 * the account area's and the recovery journey's checks are not sign-ins (as metrics.ts counts them).
 */
const inSignIn = (details: AuditDetails): boolean => typeof details.portal === 'string' && details.journey === undefined && details.via === undefined;

const LOGIN_FAILURES = new Set(['wrong_password', 'unknown_identifier', 'password_reset_required']);

/** Events counted as one key and nothing more (the portal: details.portal when present, else `-`). */
const SIMPLE: Partial<Record<SecurityEventName, string>> = {
  LOGIN_THROTTLED: 'failure:throttled',
  LOGIN_IP_LIMITED: 'failure:ip_limited',
  CONSENT_GRANTED: 'consent:given',
  CONSENT_REUSED: 'consent:reused',
  CONSENT_REVOKED: 'consent:withdrawn',
  REGISTRATION_COMPLETED: 'registration:completed',
  REGISTRATION_EXISTING_ACCOUNT: 'registration:existing_account',
  REGISTRATION_LIMITED: 'registration:limited',
  RECOVERY_STARTED: 'recovery:started',
  PASSWORD_RESET: 'recovery:completed',
  RECOVERY_LIMITED: 'recovery:limited',
  ACCOUNT_RESET_REQUESTED: 'recovery:account_reset_requested',
  ACCOUNT_RESET_COMPLETED: 'recovery:account_reset_completed',
};

export function createUsageRecorder(deps: {
  repo: UsageRepository;
  labels: PortalLabels;
  secret: string;
  logger: Logger;
  now?: () => number;
  flushMs?: number;
  onFlushFailure?: () => void;
}): UsageRecorder & UsageMaintenance {
  const now = deps.now ?? Date.now;
  const flushMs = deps.flushMs ?? USAGE_FLUSH_MS;
  const log = deps.logger.child({ component: 'usage' });

  /** (day, portal, key) joined by NUL (none of them holds one) → n to add. */
  let counts = new Map<string, number>();
  /** (day, portal, tag) joined by NUL. */
  let tags = new Set<string>();
  let droppedCounts = 0;
  let droppedTags = 0;

  // --- tags ---------------------------------------------------------------------------------
  const dayKeys = new Map<string, Buffer>();
  function dayKey(day: string): Buffer {
    let key = dayKeys.get(day);
    if (!key) {
      // A few days at most are open at once (today, and yesterday around midnight).
      if (dayKeys.size >= 4) dayKeys.clear();
      key = crypto.createHmac('sha256', deps.secret).update(`dinhdanh usage day ${day}`).digest();
      dayKeys.set(day, key);
    }
    return key;
  }
  /** 128 bits: collisions among a day's people are out of reach (birthday bound ~2^64). */
  const tagOf = (day: string, portal: string, person: string): string =>
    crypto.createHmac('sha256', dayKey(day)).update(`${portal}\u0000${person}`).digest().subarray(0, 16).toString('base64url');

  // --- buffering ----------------------------------------------------------------------------
  function count(day: string, portal: string, key: string, n = 1): void {
    const k = `${day}\u0000${portal}\u0000${key}`;
    const had = counts.get(k);
    if (had === undefined && counts.size >= MAX_BUFFERED_COUNTS) {
      droppedCounts += n;
      return;
    }
    counts.set(k, (had ?? 0) + n);
  }

  function remember(day: string, portal: string, person: string): void {
    for (const p of [portal, ALL_PORTALS]) {
      const k = `${day}\u0000${p}\u0000${tagOf(day, p, person)}`;
      if (tags.has(k)) continue;
      if (tags.size >= MAX_BUFFERED_TAGS) {
        droppedTags += 1;
        continue;
      }
      tags.add(k);
    }
  }

  function record(event: SecurityEventName, details: AuditDetails, at: number): void {
    const day = vietnamDay(at);
    const portal = deps.labels.label(str(details.portal));
    switch (event) {
      case 'SIGN_IN_COMPLETED': {
        const acr = str(details.acr);
        const level = acr !== undefined && LEVELS.has(acr) ? acr : 'other';
        const m = str(details.method);
        const method = m !== undefined && USAGE_METHODS.has(m) ? m : 'other';
        const hour = new Date(at + VIETNAM_OFFSET_MS).toISOString().slice(11, 13);
        count(day, portal, 'signins');
        count(day, portal, `acr:${level}`);
        count(day, portal, `method:${method}`);
        count(day, portal, `hour:${hour}:${level}`);
        const person = str(details.person);
        if (person !== undefined) remember(day, portal, person);
        return;
      }
      case 'LOGIN_FAILED': {
        const reason = str(details.reason);
        count(day, portal, `failure:${reason !== undefined && LOGIN_FAILURES.has(reason) ? reason : 'other'}`);
        return;
      }
      case 'MFA_FAILED':
        // "A factor was added meanwhile" is recorded as MFA_FAILED but checked nothing.
        if (details.reason !== 'factor_exists' && inSignIn(details)) count(day, portal, 'failure:mfa_failed');
        return;
      case 'MFA_LOCKED':
        if (inSignIn(details)) count(day, portal, 'failure:mfa_locked');
        return;
      default: {
        const key = SIMPLE[event];
        if (key !== undefined) count(day, portal, key);
      }
    }
  }

  // --- flushing -----------------------------------------------------------------------------
  let chain: Promise<void> = Promise.resolve();
  let failing = false;

  function putBack(rows: Map<string, number> | null, lost: Set<string> | null): void {
    if (rows) for (const [k, n] of rows) {
      const [day, portal, key] = k.split('\u0000') as [string, string, string];
      count(day, portal, key, n);
    }
    if (lost) for (const k of lost) {
      if (tags.has(k)) continue;
      if (tags.size >= MAX_BUFFERED_TAGS) droppedTags += 1;
      else tags.add(k);
    }
  }

  /**
   * The rows of `sent` a failed add() says it did not add (its error's `failedRows`, types.ts), so
   * that only those are put back: the rest were added, and adding them again would count them
   * twice. Undefined when the error says nothing of the kind, or names a row or an amount not sent
   * (then nothing is known, and everything is put back).
   */
  function notAdded(err: unknown, sent: Map<string, number>): Map<string, number> | undefined {
    const failed = typeof err === 'object' && err !== null ? (err as { failedRows?: unknown }).failedRows : undefined;
    if (!Array.isArray(failed)) return undefined;
    const out = new Map<string, number>();
    for (const r of failed as unknown[]) {
      if (typeof r !== 'object' || r === null) return undefined;
      const { day, portal, key, n } = r as Partial<UsageCount>;
      const k = `${String(day)}\u0000${String(portal)}\u0000${String(key)}`;
      if (sent.get(k) !== n || out.has(k)) return undefined;
      out.set(k, n as number);
    }
    return out;
  }

  async function flushOnce(): Promise<void> {
    if (droppedCounts > 0 || droppedTags > 0) {
      log.warn({ droppedCounts, droppedTags }, 'usage statistics dropped: the buffer was full while the store could not be written');
      droppedCounts = 0;
      droppedTags = 0;
    }
    if (counts.size === 0 && tags.size === 0) return;
    const taken = counts;
    const takenTags = tags;
    counts = new Map();
    tags = new Set();
    let rowsPending: Map<string, number> | null = taken;
    const tagsPending = new Set(takenTags);
    try {
      if (taken.size > 0) {
        const rows: UsageCount[] = [];
        for (const [k, n] of taken) {
          const [day, portal, key] = k.split('\u0000') as [string, string, string];
          rows.push({ day, portal, key, n });
        }
        await deps.repo.add(rows);
      }
      rowsPending = null;
      let batch: Array<{ day: string; portal: string; tag: string }> = [];
      let batchKeys: string[] = [];
      const send = async (): Promise<void> => {
        if (batch.length > 0) await deps.repo.addDistinct(batch);
        // Written (idempotent anyway): not to be put back.
        for (const k of batchKeys) tagsPending.delete(k);
        batch = [];
        batchKeys = [];
      };
      for (const k of takenTags) {
        const [day, portal, tag] = k.split('\u0000') as [string, string, string];
        batch.push({ day, portal, tag });
        batchKeys.push(k);
        if (batch.length >= TAG_BATCH) await send();
      }
      await send();
      if (failing) log.info('usage statistics written again after failed flushes');
      failing = false;
    } catch (err) {
      // Kept, merged with what came meanwhile, for the next flush: what the store says it did not
      // add (the rest was), or else everything. SQLite adds all or nothing. A MongoDB write whose
      // connection was lost mid-way has an unknown outcome: it is put back whole, so a part the
      // server did apply is counted twice. Dropping it instead would lose five seconds of every
      // portal's figures at each such failure; retrying errs the other way only for a write cut
      // off after the server received it, which the driver already retries itself where it can
      // (retryable writes, applied once on a replica set). Tags are idempotent: never twice.
      const partial = rowsPending === null ? undefined : notAdded(err, rowsPending);
      if (partial) {
        log.warn({ notAdded: partial.size, added: rowsPending!.size - partial.size }, 'usage statistics partly written; the rows not written are retried');
        rowsPending = partial;
      }
      putBack(rowsPending, tagsPending);
      try {
        deps.onFlushFailure?.();
      } catch {
        // An observer's failure is not ours to report.
      }
      // Said once per outage, not every five seconds.
      if (!failing) log.warn({ err }, 'usage statistics could not be written; kept in memory and retried');
      failing = true;
    }
  }

  function flush(): Promise<void> {
    chain = chain.then(flushOnce, flushOnce);
    return chain;
  }

  // --- maintenance --------------------------------------------------------------------------
  let maintaining: Promise<void> | null = null;
  async function maintainOnce(): Promise<void> {
    const today = vietnamDay(now());
    try {
      // Finished days: before yesterday, so a sign-in at 23:59 flushed a little late still lands in
      // an open day; compacted ones are left by every instance's uncompacted().
      for (const day of await deps.repo.uncompacted(shiftDay(today, 1))) await deps.repo.compact(day);
      const purged = await deps.repo.purge(retentionStart(today));
      if (purged > 0) log.info({ purged, before: retentionStart(today) }, 'usage statistics older than 25 months deleted');
    } catch (err) {
      log.warn({ err }, 'usage statistics maintenance failed; tried again within the hour');
    }
  }
  function maintain(): Promise<void> {
    maintaining ??= maintainOnce().finally(() => {
      maintaining = null;
    });
    return maintaining;
  }

  // --- timers -------------------------------------------------------------------------------
  let flushTimer: NodeJS.Timeout | undefined;
  let maintenanceTimer: NodeJS.Timeout | undefined;
  let firstMaintenance: NodeJS.Timeout | undefined;

  const guard = <A extends unknown[]>(what: string, fn: (...args: A) => void) => (...args: A): void => {
    try {
      fn(...args);
    } catch (err) {
      // A statistic is never worth a failed request.
      log.warn({ err, what }, 'usage statistics: an event could not be counted');
    }
  };

  return {
    audit: guard('audit', record),
    signInPageShown: guard('signInPageShown', (clientId: string | undefined) => {
      count(vietnamDay(now()), deps.labels.label(clientId), 'funnel:shown');
    }),
    grantSucceeded: guard('grantSucceeded', (grantType: string, clientId: string | undefined) => {
      // The funnel's last step: a code redeemed at /token (refreshes and other grants are not it).
      if (grantType === 'authorization_code') count(vietnamDay(now()), deps.labels.label(clientId), 'funnel:code');
    }),
    flush,
    maintain,
    start() {
      if (flushTimer) return;
      flushTimer = setInterval(() => void flush(), flushMs);
      flushTimer.unref();
      maintenanceTimer = setInterval(() => void maintain(), USAGE_MAINTENANCE_MS);
      maintenanceTimer.unref();
      // Once soon after starting too, so a restarted instance does not leave a day open an hour more.
      firstMaintenance = setTimeout(() => void maintain(), Math.min(flushMs * 2, USAGE_MAINTENANCE_MS));
      firstMaintenance.unref();
    },
    async stop() {
      clearInterval(flushTimer);
      clearInterval(maintenanceTimer);
      clearTimeout(firstMaintenance);
      flushTimer = maintenanceTimer = firstMaintenance = undefined;
      await maintaining?.catch(() => undefined);
      await flush();
    },
  };
}
