/**
 * The security events dinhdanh transmits to portals (OpenID Shared Signals Framework 1.0 with
 * CAEP 1.0 and RISC 1.0), as one closed list: a portal asks for some of these in its stream's
 * `events_requested`, and receives only those (SSF §8.1.1, `events_delivered`).
 */
export const SSF_PUSH = 'urn:ietf:rfc:8935';
export const SSF_POLL = 'urn:ietf:rfc:8936';
export type SsfDeliveryMethod = typeof SSF_PUSH | typeof SSF_POLL;

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';

export const EVENT = {
  sessionRevoked: `${CAEP}session-revoked`,
  credentialChange: `${CAEP}credential-change`,
  assuranceLevelChange: `${CAEP}assurance-level-change`,
  accountDisabled: `${RISC}account-disabled`,
  accountEnabled: `${RISC}account-enabled`,
  accountPurged: `${RISC}account-purged`,
  recoveryActivated: `${RISC}recovery-activated`,
  recoveryInformationChanged: `${RISC}recovery-information-changed`,
  identifierChanged: `${RISC}identifier-changed`,
  /**
   * Ours (SSF §4.1.3 lets a transmitter define event types): a person's delegation to act for an
   * enterprise ended (revoked, expired), or the enterprise was suspended. Subject: the person's
   * `iss_sub` with the enterprise as `tenant` (SSF §3.2).
   */
  delegationEnded: 'urn:dinhdanh:secevent:delegation-ended',
} as const;
export type EventType = (typeof EVENT)[keyof typeof EVENT];

/** Every event type a portal may request (the transmitter's `events_supported`). */
export const EVENTS_SUPPORTED: readonly EventType[] = Object.values(EVENT);

/**
 * SSF §8.1.4.1: sent on a receiver's request, whatever its stream asked for. (dinhdanh never
 * changes a stream's status itself, so it sends no stream-updated event, §8.1.5.)
 */
export const VERIFICATION_EVENT = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

export function isSupportedEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENTS_SUPPORTED as readonly string[]).includes(value);
}

/** Undelivered events are kept this long (then dropped; the operators see them go). */
export const UNDELIVERED_KEEP_MS = 14 * 24 * 3600_000;
/** Delivered (push 202, poll acknowledged) events are kept this long for operators to inspect. */
export const DELIVERED_KEEP_MS = 24 * 3600_000;
