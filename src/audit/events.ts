/**
 * The closed, numbered list of security events (login.gov style): numbers are never reused and
 * events are only ever appended. Written only through the audit service.
 */
export const SECURITY_EVENTS = {
  LOGIN_SUCCEEDED: 1001,
  LOGIN_FAILED: 1002,
  LOGIN_THROTTLED: 1003,
  ACCOUNT_LOCKED_BY_FAILURES: 1004,
  LOGIN_IP_LIMITED: 1005,
  PASSWORD_REHASHED: 1006,
  /**
   * A sign-in finished and its session got a level (details: person, portal, acr, amr, device and
   * network in the coarse form the person sees, new_browser: not seen on this account in 90 days).
   */
  SIGN_IN_COMPLETED: 1007,
  CONSENT_GRANTED: 1101,
  CONSENT_DENIED: 1102,
  CONSENT_REUSED: 1103,
  CONSENT_REVOKED: 1104,
  LOGOUT: 1201,
  SESSION_ENDED: 1202,
  /** A portal acknowledged a back-channel logout token (details: portal, attempt, reason, outcome). */
  BACKCHANNEL_LOGOUT_DELIVERED: 1203,
  /** A delivery failed and is scheduled again (details include the next attempt's time). */
  BACKCHANNEL_LOGOUT_RETRYING: 1204,
  /** A delivery was given up: the portal refused it, is not allowed, or never answered. */
  BACKCHANNEL_LOGOUT_FAILED: 1205,
  UNMET_AUTHENTICATION_REQUIREMENTS: 1301,
  MFA_SUCCEEDED: 1401,
  MFA_FAILED: 1402,
  MFA_LOCKED: 1403,
  FACTOR_ENROLLED: 1404,
  FACTOR_REMOVED: 1405,
  RECOVERY_CODE_USED: 1406,
  RECOVERY_CODES_GENERATED: 1407,
  /** A one-time code went out by SMS or e-mail (details: person, channel, masked destination). */
  MESSAGE_CODE_SENT: 1408,
  /** A code was refused by the per-person or per-destination send limits. */
  MESSAGE_CODE_RATE_LIMITED: 1409,
  /** The gateway or relay failed (details: channel and the notifier's error code only). */
  MESSAGE_CODE_DELIVERY_FAILED: 1410,
  /** A security notice was not sent: its destination's hourly limit was reached (details: person, notice kind, channel). */
  SECURITY_NOTICE_SUPPRESSED: 1411,
  ACCOUNT_CREATED: 2001,
  ACCOUNT_UNLOCKED: 2002,
  /** An operator locked an account (details: operator, reason; sessions ended everywhere). */
  ACCOUNT_LOCKED: 2003,
  /** An operator changed the identity level (details: operator, reason, evidence id, masked document number). */
  ACCOUNT_LEVEL_CHANGED: 2004,
  /** An operator removed every second factor after re-verifying the person (details: operator, reason, evidence id). */
  ACCOUNT_MFA_RESET: 2005,
  PORTAL_REGISTERED: 3001,
  PORTAL_DISABLED: 3002,
  RESOURCE_SERVER_REGISTERED: 3003,
  /** An operator approved a portal for national_id or offline_access, with the legal basis. */
  PORTAL_APPROVED: 3004,
  /** A disabled portal was enabled again (its grants and tokens from before stay ended). */
  PORTAL_ENABLED: 3005,
  /**
   * An operator gave a portal (or resource server) a new client secret; the one it replaced is
   * accepted until the grace period ends (details: portal, grace_seconds — 0: it ended at once —,
   * operator, role, reason, via; never a secret).
   */
  PORTAL_SECRET_ROTATED: 3006,
  /** An operator changed a portal's redirect URIs or other registration details (details: operator, role, reason, portal, changed fields). */
  PORTAL_UPDATED: 3007,
  /** A portal made its security event stream (details: portal, stream, method). */
  SSF_STREAM_CREATED: 3101,
  /** A portal changed its stream's configuration or status (details: portal, stream, changed or status). */
  SSF_STREAM_UPDATED: 3102,
  /** A portal deleted its stream, and the events queued for it (details: portal, stream). */
  SSF_STREAM_DELETED: 3103,
  /** A portal asked for a verification event (details: portal, stream). */
  SSF_VERIFICATION_REQUESTED: 3104,
  /** A security event token reached a portal's push endpoint (details: portal, stream, jti, attempt, outcome). */
  SSF_EVENT_DELIVERED: 3105,
  /** A push of a security event token failed and will be tried again (details: portal, stream, jti, attempt, outcome, next_attempt). */
  SSF_EVENT_RETRYING: 3106,
  /** A security event token was given up: refused by the portal, its destination not allowed, or too many tries (details: portal, stream, jti, outcome). */
  SSF_EVENT_FAILED: 3107,
  /** A polling portal acknowledged security event tokens (details: portal, stream, count). */
  SSF_EVENTS_ACKNOWLEDGED: 3108,
  KEYS_GENERATED: 4001,
  KEYS_ROTATED: 4002,
  KEY_RETIRED: 4003,
  ORG_REGISTERED: 5001,
  ORG_SUSPENDED: 5002,
  ORG_REACTIVATED: 5003,
  DELEGATION_GRANTED: 5004,
  DELEGATION_REVOKED: 5005,
  /** A person chose to act for an enterprise in a sign-in (details: org, role, portal). */
  ORG_CHOSEN: 5006,
  /** A person asked to act for an enterprise had none available (the portal got access_denied). */
  ORG_NONE_AVAILABLE: 5007,
  /** Tokens issued for an enterprise were ended (revocation, expiry, suspension). */
  ORG_ACCESS_ENDED: 5008,
  DELEGATION_EXPIRED: 5009,
  /** An operator wrote a verified backup of the store (details: operator, target path, bytes, schema version). */
  STORE_BACKED_UP: 6001,
  // Self-service (selfservice/): registration and recovery. Details never hold a full identification
  // number, a contact in full, a code or a link's token.
  /** A registration's details were checked against the population registry (details: masked pid, outcome match/no_match/unavailable). */
  REGISTRATION_REGISTRY_CHECKED: 7001,
  /** A registration step was refused by a rate limit (details: which limit: ip, pid, phone). */
  REGISTRATION_LIMITED: 7002,
  /** A citizen registered: a level-1 account with a verified phone (details: person, masked pid, portal when started from one). */
  REGISTRATION_COMPLETED: 7003,
  /** Someone proved a phone while registering a number that already has an account; its contacts were told (details: person). */
  REGISTRATION_EXISTING_ACCOUNT: 7004,
  /** A password recovery was asked for (details: masked pid, matched: whether the number and contact match an active account). */
  RECOVERY_STARTED: 7101,
  /** A recovery step was refused by a rate limit (details: which limit). */
  RECOVERY_LIMITED: 7102,
  /** The code sent for a recovery was proven (details: person, channel). */
  RECOVERY_CODE_VERIFIED: 7103,
  /** A citizen set a new password through recovery: every session ended, every grant revoked (details: person, second factor used, sessions ended). */
  PASSWORD_RESET: 7104,
  /** A citizen who lost every factor asked for an account reset; every contact was told, with a link to cancel (details: person, due). */
  ACCOUNT_RESET_REQUESTED: 7105,
  /** A pending account reset was cancelled from the link in a notice (details: person). */
  ACCOUNT_RESET_CANCELLED: 7106,
  /** The waiting period of an account reset ended and its link went to the verified phone (details: person). */
  ACCOUNT_RESET_READY: 7107,
  /** An account reset was completed: new password, every factor and recovery code removed, level 2 lowered to 1, everything ended (details: person, factors removed, level before). */
  ACCOUNT_RESET_COMPLETED: 7108,
  /** An operator appended a record to the file population registry (details: operator, masked pid). */
  REGISTRY_RECORD_ADDED: 7201,
  // The account area (account/): what the citizen changes on their own account. Details never hold
  // a password, a code, a link's token or a contact in full (masked).
  /** The citizen changed their password, knowing the current one; other sessions ended (details: person, sessions_ended). */
  PASSWORD_CHANGED: 8001,
  /** A phone or e-mail was added, proven by a code sent to it (details: person, kind, masked value). */
  CONTACT_ADDED: 8002,
  /** A contact already on file was proven by a code (details: person, kind, masked value). */
  CONTACT_VERIFIED: 8003,
  /** A contact was removed (details: person, kind, masked value). */
  CONTACT_REMOVED: 8004,
  /** The contact for notices was chosen (details: person, kind, masked value; or none for every contact). */
  NOTICE_CONTACT_CHOSEN: 8005,
  /** "This wasn't me": everything ended, a new password required, the account flagged (details: person, via activity/notice, sessions_ended). */
  NOT_ME_REPORTED: 8006,
  /** "Lock my account": locked by its owner, everything ended (details: person, sessions_ended). */
  ACCOUNT_SELF_LOCKED: 8007,
  /** An account its owner locked was unlocked by recovery with the second factor (details: person, factor). */
  ACCOUNT_SELF_UNLOCKED: 8008,
  /** The citizen downloaded everything held about them (details: person, bytes). */
  DATA_EXPORTED: 8009,
  /** The current password typed on an account page was wrong (details: person, action, failures). */
  REAUTHENTICATION_FAILED: 8010,
  /** An operator cleared the attention flag of an account (details: operator, reason). */
  ACCOUNT_ATTENTION_CLEARED: 8011,
  // The operators' console and two-person control (admin/). Every entry names the operator (a
  // person id, or `cli:<name>` for the command line), the role they acted in, `via` (console/cli)
  // and the reason they gave.
  /** A person was made an operator (details: operator, role, reason, target, roles, bootstrap). */
  OPERATOR_ADDED: 9001,
  /** An operator's roles were changed by an admin (details: operator, role, reason, target, from, to). */
  OPERATOR_ROLES_CHANGED: 9002,
  /** An operator was removed, after a second operator's approval (details: operator, approved_by, approval, target). */
  OPERATOR_REMOVED: 9003,
  /** A dangerous action was proposed for a second operator's approval (details: approval, action, subject, operator, role, reason). */
  APPROVAL_PROPOSED: 9101,
  /** A second operator approved a proposal; it was carried out (details: approval, action, subject, proposed_by, operator, role, reason, outcome). */
  APPROVAL_APPROVED: 9102,
  /** A second operator rejected a proposal (details: approval, action, subject, proposed_by, operator, role, reason). */
  APPROVAL_REJECTED: 9103,
  /** An admin carried out a two-person action alone, from the command line (details: action, subject, operator, reason); always reviewed. */
  BREAK_GLASS_USED: 9104,
  /** An operator signed in to the console (details: operator, roles, acr, amr). */
  CONSOLE_SIGNED_IN: 9201,
  /** An operator signed out of the console, or its session ended (details: operator, why). */
  CONSOLE_SIGNED_OUT: 9202,
  /** A console sign-in or request was refused (details: why: not_operator, level, role, person: when known, path template). */
  CONSOLE_ACCESS_REFUSED: 9203,
  /** An auditor exported audit entries (details: operator, role, reason, filter, entries). */
  AUDIT_EXPORTED: 9204,
  /** An operator opened an account's page in the console (details: operator, role, person): who looked at whose data. */
  ACCOUNT_VIEWED: 9205,
} as const;

export type SecurityEventName = keyof typeof SECURITY_EVENTS;
