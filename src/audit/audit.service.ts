/**
 * The one way security events are recorded (SECURITY.md #40, ARCHITECTURE rule 9): each event goes
 * to the structured log with its number and is appended to the hash-chained audit log in the store
 * (issue 6). Each entry carries the previous entry's hash, so editing, removing or inserting an
 * entry breaks the chain at that point; `verify` walks it and names the first broken entry. The
 * chain's head is also written to the log output now and then, so that a rewrite of the whole table
 * (a new, self-consistent chain) disagrees with heads already shipped elsewhere.
 *
 * Callers pass pseudonymised identifiers only: never a secret, code, hash or full identification
 * number.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEntry, AuditRepository } from '../store/index.js';
import { SECURITY_EVENTS, type SecurityEventName } from './events.js';

export type AuditDetails = Record<string, string | number | boolean | null | undefined | string[]>;

export interface AuditService {
  record(event: SecurityEventName, details?: AuditDetails): void;
  /** Resolves when every event recorded so far is in the store. */
  flush(): Promise<void>;
}

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level, so a hash never depends on key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function entryHash(e: Pick<AuditEntry, 'seq' | 'at' | 'event' | 'eventId' | 'details' | 'prevHash'>): string {
  return crypto.createHash('sha256').update(canonical([e.seq, e.at, e.event, e.eventId, e.details, e.prevHash])).digest('hex');
}

/** Drops undefined members (JSON has none) so the stored details hash as they were sealed. */
function clean(details: AuditDetails): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).filter(([, v]) => v !== undefined));
}

export function createAuditService(deps: {
  logger: Logger;
  repo?: AuditRepository;
  now?: () => number;
  /**
   * Told of every event as it is recorded (the person's activity index: activity/). Called after
   * the log line, never allowed to fail the caller.
   */
  observe?: (event: SecurityEventName, details: AuditDetails, at: number) => void;
}): AuditService {
  const log = deps.logger.child({ component: 'audit' });
  const now = deps.now ?? Date.now;
  // One append at a time per process keeps this process's events in order; the store's atomic
  // append orders them across processes.
  let tail: Promise<unknown> = Promise.resolve();
  return {
    record(event, details = {}) {
      const eventId = SECURITY_EVENTS[event];
      log.info({ event, event_id: eventId, ...details }, `security event ${event}`);
      const at = now();
      if (deps.observe) {
        try {
          deps.observe(event, details, at);
        } catch (err) {
          log.error({ err, event }, 'audit observer failed');
        }
      }
      const repo = deps.repo;
      if (!repo) return;
      const entry = { at, event, eventId, details: clean(details) };
      tail = tail.then(() => repo.append(entry, (seq, prevHash) => entryHash({ ...entry, seq, prevHash }))).catch((err: unknown) => {
        // The log line above still carries the event; the gap shows as a missing seq nowhere,
        // so say it loudly.
        log.error({ err, event, event_id: eventId }, 'security event NOT appended to the audit log');
      });
    },
    flush: () => tail.then(() => undefined),
  };
}

export type VerifyResult =
  | { ok: true; entries: number; head: { seq: number; hash: string } | null; expectedHeadFound: boolean | null }
  | { ok: false; seq: number; problem: string; entries: number };

/**
 * Walks the whole chain: seqs 1, 2, 3 … without gaps, each prevHash the previous hash, each hash
 * recomputed from the entry. `expect` (a head logged earlier) must still be in the chain, unchanged.
 */
export async function verifyAuditLog(repo: AuditRepository, expect?: { seq: number; hash: string }): Promise<VerifyResult> {
  let prev: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  let count = 0;
  let expectedHeadFound: boolean | null = expect ? false : null;
  for (;;) {
    const page = await repo.list(prev.seq, 1000);
    if (page.length === 0) break;
    for (const e of page) {
      if (e.seq !== prev.seq + 1) return { ok: false, seq: prev.seq + 1, problem: `entry ${prev.seq + 1} is missing (next is ${e.seq})`, entries: count };
      if (e.prevHash !== prev.hash) return { ok: false, seq: e.seq, problem: `entry ${e.seq} does not follow entry ${prev.seq} (previous hash differs)`, entries: count };
      if (entryHash(e) !== e.hash) return { ok: false, seq: e.seq, problem: `entry ${e.seq} was altered (its hash does not match its content)`, entries: count };
      if (expect && e.seq === expect.seq) {
        if (e.hash !== expect.hash) return { ok: false, seq: e.seq, problem: `entry ${e.seq} differs from the head recorded earlier (the log was rewritten)`, entries: count };
        expectedHeadFound = true;
      }
      prev = { seq: e.seq, hash: e.hash };
      count += 1;
    }
  }
  if (expect && !expectedHeadFound) return { ok: false, seq: expect.seq, problem: `entry ${expect.seq}, recorded earlier as the head, is not in the log (the log was truncated or rewritten)`, entries: count };
  return { ok: true, entries: count, head: count ? prev : null, expectedHeadFound };
}
