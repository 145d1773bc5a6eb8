/**
 * A person's own history (/account/activity, the data export): the security events that concern
 * them, projected from the audit service as they are recorded into an index of their own
 * (store.activity) — read by person and time, never by scanning the audit log — and kept six
 * months (the audit log keeps its own retention).
 *
 * What the person sees of an event is chosen here, field by field: the portal, the level reached,
 * the device and network in the coarse form of the session list, the method, a reason code. An
 * operator appears as a role, never by name, and an operator's free-text reason is not shown (it
 * may mention other people or the fraud case: Decree 356/2025/ND-CP lets the subject see their
 * data, not the operator's notes). Never a secret, code, hash, link or full contact.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { ActivityEntry, ActivityRepository } from '../store/index.js';
import type { SecurityEventName } from '../audit/events.js';
import type { AuditDetails } from '../audit/audit.service.js';
import { describeNetwork } from './devices.js';

/** Six months (183 days), after which an entry is no longer shown and is purged. */
export const ACTIVITY_RETENTION_MS = 183 * 24 * 60 * 60_000;
export const ACTIVITY_PAGE_SIZE = 20;

/** What kind of line an event makes, for the page's wording and the export. */
export type ActivityKind =
  | 'signin' | 'signin_failed' | 'lockout' | 'second_factor_failed' | 'factor' | 'password' | 'contact'
  | 'consent' | 'session' | 'operator' | 'account';

/** The events a person's history holds, and the kind of line each makes. */
export const ACTIVITY_EVENTS: Partial<Record<SecurityEventName, ActivityKind>> = {
  SIGN_IN_COMPLETED: 'signin',
  LOGIN_FAILED: 'signin_failed',
  LOGIN_THROTTLED: 'signin_failed',
  ACCOUNT_LOCKED_BY_FAILURES: 'lockout',
  MFA_FAILED: 'second_factor_failed',
  MFA_LOCKED: 'lockout',
  FACTOR_ENROLLED: 'factor',
  FACTOR_REMOVED: 'factor',
  RECOVERY_CODES_GENERATED: 'factor',
  RECOVERY_CODE_USED: 'factor',
  PASSWORD_CHANGED: 'password',
  PASSWORD_RESET: 'password',
  ACCOUNT_RESET_REQUESTED: 'password',
  ACCOUNT_RESET_CANCELLED: 'password',
  ACCOUNT_RESET_COMPLETED: 'password',
  CONTACT_ADDED: 'contact',
  CONTACT_VERIFIED: 'contact',
  CONTACT_REMOVED: 'contact',
  NOTICE_CONTACT_CHOSEN: 'contact',
  CONSENT_GRANTED: 'consent',
  CONSENT_REVOKED: 'consent',
  SESSION_ENDED: 'session',
  ACCOUNT_LOCKED: 'operator',
  ACCOUNT_UNLOCKED: 'operator',
  ACCOUNT_LEVEL_CHANGED: 'operator',
  ACCOUNT_MFA_RESET: 'operator',
  ACCOUNT_ATTENTION_CLEARED: 'operator',
  ACCOUNT_CREATED: 'account',
  REGISTRATION_COMPLETED: 'account',
  REGISTRATION_EXISTING_ACCOUNT: 'account',
  NOT_ME_REPORTED: 'account',
  ACCOUNT_SELF_LOCKED: 'account',
  ACCOUNT_SELF_UNLOCKED: 'account',
  DATA_EXPORTED: 'account',
};

/** Details a person may see, when their values are short codes, numbers or booleans. */
const SHOWN = new Set([
  'portal', 'acr', 'device', 'network', 'method', 'type', 'channel', 'by', 'count', 'via', 'kind', 'masked',
  'stage', 'new_browser', 'current', 'sessions_ended', 'failures', 'factor', 'level', 'from', 'to', 'scopes',
]);
const CODE = /^[A-Za-z0-9_.:·/ +\-…*@]{0,80}$/u;

/** The details of an event as the person sees them (see the module comment). */
export function shownDetails(event: SecurityEventName, details: AuditDetails): ActivityEntry['details'] {
  const out: ActivityEntry['details'] = {};
  const operatorAction = ACTIVITY_EVENTS[event] === 'operator' || typeof details.operator === 'string';
  for (const [key, value] of Object.entries(details)) {
    if (value === undefined) continue;
    if (key === 'ip' && typeof value === 'string') {
      out.network = describeNetwork(value);
      continue;
    }
    if (key === 'reason' && !operatorAction && typeof value === 'string' && /^[a-z_]{1,40}$/.test(value)) {
      out.reason = value;
      continue;
    }
    if (!SHOWN.has(key)) continue;
    if (Array.isArray(value)) out[key] = value.filter((v) => CODE.test(v)).slice(0, 20).join(' ');
    else if (typeof value === 'string') { if (CODE.test(value)) out[key] = value; }
    else out[key] = value;
  }
  // The operator as a role: the console records one; the CLI's operators are all "an operator".
  if (operatorAction) out.by = typeof details.role === 'string' && /^[a-z]{1,20}$/.test(details.role) ? details.role : 'operator';
  return out;
}

export interface ActivityService {
  /** The audit service's observer: writes the person's line for an event that concerns them. */
  observe(event: SecurityEventName, details: AuditDetails, at: number): void;
  /** Resolves when every line observed so far is written (a page read right after a change shows it). */
  settled(): Promise<void>;
  /** A page of the person's history, newest first; `next` is the cursor of the following page. */
  page(personId: string, before: string | undefined, limit?: number): Promise<{ entries: ActivityEntry[]; next: string | null }>;
  /** Everything kept (the data export), newest first. */
  all(personId: string): Promise<ActivityEntry[]>;
  find(personId: string, id: string): Promise<ActivityEntry | undefined>;
}

/** `<at>.<id>`: where a page starts (exclusive), in the list's order. */
function parseCursor(cursor: string | undefined): { at: number; id: string } | undefined {
  const m = cursor ? /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(cursor) : null;
  return m ? { at: Number(m[1]), id: m[2]! } : undefined;
}

export function createActivityService(deps: { repo: ActivityRepository; logger: Logger; now?: () => number }): ActivityService {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'activity' });
  // Writes run one after another, like the audit log's, so a person's lines keep their order.
  let tail: Promise<unknown> = Promise.resolve();

  return {
    observe(event, details, at) {
      const kind = ACTIVITY_EVENTS[event];
      const personId = details.person;
      if (!kind || typeof personId !== 'string') return;
      const entry: ActivityEntry = {
        id: crypto.randomUUID(), personId, at, event, details: { kind, ...shownDetails(event, details) }, expiresAt: at + ACTIVITY_RETENTION_MS,
      };
      tail = tail.then(() => deps.repo.add(entry)).catch((err: unknown) => {
        // The audit log still has the event; only the person's own view misses a line.
        log.error({ err, event }, 'activity line not written');
      });
    },
    settled: () => tail.then(() => undefined),
    async page(personId, before, limit = ACTIVITY_PAGE_SIZE) {
      const rows = await deps.repo.list(personId, { since: now() - ACTIVITY_RETENTION_MS, before: parseCursor(before), limit: limit + 1 });
      const entries = rows.slice(0, limit);
      const last = entries[entries.length - 1];
      return { entries, next: rows.length > limit && last ? `${last.at}.${last.id}` : null };
    },
    async all(personId) {
      const out: ActivityEntry[] = [];
      let before: { at: number; id: string } | undefined;
      for (;;) {
        const rows = await deps.repo.list(personId, { since: now() - ACTIVITY_RETENTION_MS, before, limit: 500 });
        out.push(...rows);
        const last = rows[rows.length - 1];
        if (rows.length < 500 || !last) return out;
        before = { at: last.at, id: last.id };
      }
    },
    find: (personId, id) => deps.repo.find(personId, id),
  };
}
