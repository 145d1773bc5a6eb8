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
  /** The second factor that passed, once one has. */
  mfa?: { method: 'totp' | 'recovery' };
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
