/**
 * The one way security events are recorded. For now they go to the structured log with their
 * number; the hash-chained audit table in the store comes with the operators' work.
 * Callers pass pseudonymised identifiers only: never a secret, code, hash or full
 * identification number (SECURITY.md #40).
 */
import type { Logger } from 'pino';
import { SECURITY_EVENTS, type SecurityEventName } from './events.js';

export type AuditDetails = Record<string, string | number | boolean | null | undefined | string[]>;

export interface AuditService {
  record(event: SecurityEventName, details?: AuditDetails): void;
}

export function createAuditService(deps: { logger: Logger }): AuditService {
  const log = deps.logger.child({ component: 'audit' });
  return {
    record(event, details = {}) {
      log.info({ event, event_id: SECURITY_EVENTS[event], ...details }, `security event ${event}`);
    },
  };
}
