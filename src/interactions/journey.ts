/**
 * What one sign-in has proven so far, between its pages (password checked, second factor pending,
 * enrolment under way). Kept in the store next to the interaction it belongs to and keyed by its
 * uid, so it is bound to the browser holding that interaction's cookie and expires with it.
 */
import type { OidcModelStore } from '../store/index.js';

export type JourneyStage = 'second_factor' | 'enrol' | 'recovery_codes' | 'recovery_used';

export interface Journey {
  personId: string;
  stage: JourneyStage;
  /** The password was checked in this interaction (false for a step-up on an existing session). */
  passwordHere: boolean;
  /** The TOTP factor being enrolled. */
  enrolFactorId?: string;
  /**
   * The second factor that passed, once one has; for a passkey, the RFC 8176 `amr` value its
   * authenticator earned (`hwk` device-bound, `swk` synced: see mfa/passkey.service.ts).
   */
  mfa?: { method: 'totp' | 'recovery' | 'passkey' | 'sms' | 'email'; amr?: 'hwk' | 'swk' };
  /**
   * A factor was bound in this very interaction. Binding rests only on what the session proved
   * before it (NIST SP 800-63B §6.1.2.1), so such a sign-in is `substantial` at most.
   */
  enrolledHere?: boolean;
  /** When the journey began (epoch ms): anything the person's access lost after it ends the journey. */
  startedAt?: number;
  /** A digest of the password hash when it began: a password changed meanwhile ends the journey. */
  passwordTag?: string;
  /** The live session a step-up (passwordHere false) belongs to. */
  sessionUid?: string;
  /** A one-time code sent by SMS or e-mail for this sign-in. */
  messageCode?: { id: string; channel: 'sms' | 'email'; sentTo: string };
  /**
   * The WebAuthn challenge of the passkey options this sign-in's page last embedded. Kept here, in
   * the store, and never in the page or a cookie: the browser cannot choose it. Replaced whenever
   * the page is shown again and removed when an answer is checked (single use).
   */
  passkeyChallenge?: { value: string; purpose: 'authenticate' | 'register'; issuedAt: number };
}

const MODEL = 'Journey';

export interface Journeys {
  get(uid: string): Promise<Journey | undefined>;
  put(uid: string, journey: Journey): Promise<void>;
  clear(uid: string): Promise<void>;
}

export function createJourneys(store: OidcModelStore, ttlSeconds: number): Journeys {
  return {
    async get(uid) {
      return (await store.find(MODEL, uid)) as Journey | undefined;
    },
    async put(uid, journey) {
      await store.upsert(MODEL, uid, journey as unknown as Record<string, unknown>, ttlSeconds);
    },
    async clear(uid) {
      await store.destroy(MODEL, uid);
    },
  };
}
