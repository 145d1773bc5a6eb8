/**
 * The usage statistics as reports read them (metrics/usage.service.ts writes, usage.report.ts reads):
 * one entry per Vietnam day and portal. Field names are those of `dinhdanh stats usage --format
 * json` (PRODUCT.md, "Metrics and statistics"), relied on from outside.
 */

import { ACR_VALUES } from '../provider/levels.js';

/** The levels a sign-in can reach (PRODUCT.md, "Levels"); any other `acr` is counted as `other`. */
export const USAGE_LEVELS = ACR_VALUES;

/** Vietnam has kept UTC+7 all year since 1975 (no daylight saving): a day is [17:00Z, 17:00Z). */
export const VIETNAM_OFFSET_MS = 7 * 3600_000;

/** The portal value of a journey begun at dinhdanh itself (registration, recovery from the home page). */
export const NO_PORTAL = '-';
/** The portal value of a client id that is not registered (it never reaches a metric or a row as itself). */
export const OTHER_PORTAL = 'other';

export interface UsageDay {
  /** `YYYY-MM-DD`, Vietnam time. */
  date: string;
  /** The portal's client id, `-` (no portal) or `other`. */
  portal: string;
  /** Completed sign-ins (SIGN_IN_COMPLETED). */
  signins: number;
  /** Sign-ins by level reached, keyed by `acr`. */
  by_level: Record<string, number>;
  /** Sign-ins by method (`pwd`, `pwd+otp`, `pwd+hwk` …). */
  by_method: Record<string, number>;
  /** Distinct people who signed in (exact, from pseudonymous tags; see usage.service.ts). */
  citizens: number;
  /** Failed sign-in steps by reason (`wrong_password`, `mfa_failed` …). */
  failures: Record<string, number>;
  consents: { given: number; withdrawn: number };
  /** Registrations by outcome (`completed`, `existing_account`, `limited`). */
  registrations: Record<string, number>;
  /** Recoveries by outcome (`started`, `completed`, `limited`, `account_reset_requested`, `account_reset_completed`). */
  recoveries: Record<string, number>;
  /** The portal's funnel: sign-in pages shown → signed in → consent passed → code redeemed. */
  funnel: { shown: number; signed_in: number; consent: number; code: number };
}

/** One hour (Vietnam time) of sign-ins by level, for the console's 24-hour chart. */
export interface UsageHour {
  /** ISO 8601 with offset, the hour's start: `2026-12-04T23:00:00+07:00`. */
  hour: string;
  by_level: Record<string, number>;
}
