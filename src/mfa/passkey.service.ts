/**
 * Passkeys (WebAuthn Level 3 public-key credentials) as a second factor, with @simplewebauthn/server
 * doing the ceremony checks: client data type, challenge, origin, RP ID hash, user presence, the
 * attestation (format `none`: we do not ask which authenticator model it is) and the signature.
 * This service adds what the library leaves to the relying party:
 * - the credential must be registered, confirmed and the signed-in person's (and, when the
 *   authenticator names the user handle, it must be that person's);
 * - the signature counter is checked and stored in ONE atomic store operation
 *   (`updateSignCount`), so two parallel uses of a cloned key cannot both pass on a stale read. A
 *   counter that does not grow means a copy of the key is in use somewhere (WebAuthn §6.1.1): the
 *   assertion is refused. Authenticators that do not count (0 every time) are allowed, as the spec
 *   says;
 * - failed assertions share the person's one guess budget with codes (`attempts.ts`);
 * - nothing the browser sends can make it throw: bad JSON, wrong types, unknown credentials and
 *   every verification failure come back as a result with a reason.
 *
 * Challenges are returned to the caller to keep server-side (the sign-in keeps them in its journey,
 * in the store), never in anything the browser could choose.
 */
import crypto from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import { StoreConflictError, type CounterRepository, type Factor, type FactorRepository, type Person } from '../store/index.js';
import { claimCodeAttempt, clearCodeAttempts } from './attempts.js';

/** COSE algorithms offered and accepted: ES256 (-7) and RS256 (-257, Windows Hello's TPM keys). */
export const PASSKEY_ALGORITHMS: readonly number[] = Object.freeze([-7, -257]);
/** How long the browser may wait for the authenticator (a hint to the browser). */
export const PASSKEY_TIMEOUT_MS = 120_000;
/** How long a challenge kept for a sign-in stays usable (checked by the caller that keeps it). */
export const PASSKEY_CHALLENGE_TTL_MS = 5 * 60_000;

/**
 * RFC 8176 `amr` for a passkey: `hwk` (proof of possession of a hardware-secured key) or `swk`
 * (of a software-secured key). Decided from the backup-eligibility flag (BE) of the authenticator
 * data, which an authenticator sets for the lifetime of the credential:
 * - a single-device credential (BE=0: a security key, or a key bound to a phone's or laptop's
 *   secure element/TPM) never leaves that hardware → `hwk`;
 * - a multi-device credential (BE=1: a synced passkey in a cloud keychain or password manager) can
 *   be copied to other devices by software, whether or not it is backed up yet (BS) → `swk`.
 * Both are phishing-resistant (origin-bound); when in doubt the lesser claim (`swk`) is made.
 */
export type PasskeyAmr = 'hwk' | 'swk';
export function passkeyAmr(credentialDeviceType: 'singleDevice' | 'multiDevice'): PasskeyAmr {
  return credentialDeviceType === 'singleDevice' ? 'hwk' : 'swk';
}

export type PasskeyRegistrationResult =
  | { ok: true; factor: Factor; amr: PasskeyAmr; userVerified: boolean }
  | { ok: false; reason: 'malformed' | 'invalid' | 'duplicate' };

export type PasskeyAuthenticationResult =
  | { ok: true; factor: Factor; amr: PasskeyAmr; userVerified: boolean; backedUp: boolean }
  | { ok: false; reason: 'locked' | 'malformed' | 'unknown_credential' | 'wrong_person' | 'invalid' | 'cloned' };

export interface PasskeyService {
  /** Options for navigator.credentials.create(), and the challenge to remember server-side. */
  registrationOptions(person: Pick<Person, 'id' | 'pid' | 'name'>, existingPasskeys: Factor[]): Promise<{ options: PublicKeyCredentialCreationOptionsJSON; challenge: string }>;
  /** Verifies a registration response (a JSON string or the parsed value) and stores a confirmed passkey. */
  finishRegistration(personId: string, response: unknown, expectedChallenge: string, label: string): Promise<PasskeyRegistrationResult>;
  /** Options for navigator.credentials.get() allowing the person's passkeys, and the challenge to remember. */
  authenticationOptions(personPasskeys: Factor[]): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; challenge: string }>;
  /** Verifies an assertion (a JSON string or the parsed value) by one of `personId`'s passkeys. */
  finishAuthentication(personId: string, response: unknown, expectedChallenge: string): Promise<PasskeyAuthenticationResult>;
}

// --- what a browser may send (WebAuthn L3 §5.1 toJSON(), or webauthn.js doing the same) ----------

const B64URL = /^[A-Za-z0-9_-]*$/;
const b64url = (max: number) => z.string().max(max).regex(B64URL);
/** Credential ids are at most 1023 bytes (WebAuthn §4): 1364 base64url characters. */
const credentialId = b64url(1364).min(1);
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

const common = {
  id: credentialId,
  rawId: credentialId,
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).nullish(),
  clientExtensionResults: z.record(z.string(), z.unknown()).nullish(),
};

const registrationSchema = z.object({
  ...common,
  response: z.object({
    clientDataJSON: b64url(4096).min(1),
    attestationObject: b64url(12288).min(1),
    transports: z.array(z.string().max(32)).max(16).nullish(),
  }),
});

const authenticationSchema = z.object({
  ...common,
  response: z.object({
    clientDataJSON: b64url(4096).min(1),
    authenticatorData: b64url(4096).min(1),
    signature: b64url(2048).min(1),
    userHandle: b64url(128).nullish(),
  }),
});

/** A JSON string or an already-parsed value, checked against the schema; undefined when malformed. */
function parse<T>(schema: z.ZodType<T>, input: unknown): T | undefined {
  let value = input;
  if (typeof input === 'string') {
    if (input.length > 32_768) return undefined;
    try {
      value = JSON.parse(input);
    } catch {
      return undefined;
    }
  }
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

/** The user handle of a person: the opaque account id (never the identification number). */
export function userHandleOf(personId: string): string {
  return Buffer.from(personId, 'utf8').toString('base64url');
}

export function createPasskeyService(deps: {
  factors: FactorRepository;
  counters: CounterRepository;
  /** The issuer's host name. */
  rpId: string;
  rpName: string;
  /** The issuer's origin (scheme://host[:port]). */
  origin: string;
  now?: () => number;
}): PasskeyService {
  const now = deps.now ?? Date.now;

  return {
    async registrationOptions(person, existingPasskeys) {
      const options = await generateRegistrationOptions({
        rpName: deps.rpName,
        rpID: deps.rpId,
        userID: new Uint8Array(Buffer.from(person.id, 'utf8')),
        // Shown by authenticators in account pickers: the masked number, as for authenticator apps.
        userName: `${person.pid.slice(0, 3)}…${person.pid.slice(-3)}`,
        userDisplayName: person.name,
        timeout: PASSKEY_TIMEOUT_MS,
        attestationType: 'none',
        excludeCredentials: existingPasskeys
          .filter((f) => f.type === 'passkey' && f.credentialId)
          .map((f) => ({ id: f.credentialId!, transports: f.transports ?? undefined })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
        supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
      });
      return { options, challenge: options.challenge };
    },

    async finishRegistration(personId, input, expectedChallenge, label) {
      const parsed = parse(registrationSchema, input);
      if (!parsed) return { ok: false, reason: 'malformed' };
      const response: RegistrationResponseJSON = {
        id: parsed.id,
        rawId: parsed.rawId,
        type: parsed.type,
        response: {
          clientDataJSON: parsed.response.clientDataJSON,
          attestationObject: parsed.response.attestationObject,
          transports: (parsed.response.transports ?? []).filter((t) => TRANSPORTS.has(t)),
        },
        authenticatorAttachment: parsed.authenticatorAttachment ?? undefined,
        clientExtensionResults: {},
      };
      let verification: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
      try {
        verification = await verifyRegistrationResponse({
          response,
          expectedChallenge,
          expectedOrigin: deps.origin,
          expectedRPID: deps.rpId,
          // A second factor after the password: presence is required, verification (PIN,
          // biometrics) is welcome but not demanded (userVerification 'preferred').
          requireUserPresence: true,
          requireUserVerification: false,
          supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
        });
      } catch {
        return { ok: false, reason: 'invalid' };
      }
      if (!verification.verified) return { ok: false, reason: 'invalid' };
      const info = verification.registrationInfo;
      // The id the browser reports must be the one the authenticator attested.
      if (info.credential.id !== parsed.id) return { ok: false, reason: 'invalid' };
      try {
        const factor = await deps.factors.create({
          id: crypto.randomUUID(),
          personId,
          type: 'passkey',
          label: label.slice(0, 64),
          confirmed: true,
          secretCiphertext: null,
          credentialId: info.credential.id,
          publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
          signCount: info.credential.counter,
          transports: response.response.transports ?? [],
        });
        return { ok: true, factor, amr: passkeyAmr(info.credentialDeviceType), userVerified: info.userVerified };
      } catch (err) {
        if (err instanceof StoreConflictError) return { ok: false, reason: 'duplicate' };
        throw err;
      }
    },

    async authenticationOptions(personPasskeys) {
      const options = await generateAuthenticationOptions({
        rpID: deps.rpId,
        allowCredentials: personPasskeys
          .filter((f) => f.type === 'passkey' && f.confirmed && f.credentialId)
          .map((f) => ({ id: f.credentialId!, transports: f.transports ?? undefined })),
        userVerification: 'preferred',
        timeout: PASSKEY_TIMEOUT_MS,
      });
      return { options, challenge: options.challenge };
    },

    async finishAuthentication(personId, input, expectedChallenge) {
      const t = now();
      if (!(await claimCodeAttempt(deps.counters, personId, t))) return { ok: false, reason: 'locked' };

      const parsed = parse(authenticationSchema, input);
      if (!parsed) return { ok: false, reason: 'malformed' };
      const factor = await deps.factors.findByCredentialId(parsed.id);
      if (!factor || factor.type !== 'passkey' || !factor.confirmed || !factor.publicKey) return { ok: false, reason: 'unknown_credential' };
      if (factor.personId !== personId) return { ok: false, reason: 'wrong_person' };
      const userHandle = parsed.response.userHandle;
      if (userHandle && userHandle !== userHandleOf(personId)) return { ok: false, reason: 'wrong_person' };

      const response: AuthenticationResponseJSON = {
        id: parsed.id,
        rawId: parsed.rawId,
        type: parsed.type,
        response: {
          clientDataJSON: parsed.response.clientDataJSON,
          authenticatorData: parsed.response.authenticatorData,
          signature: parsed.response.signature,
          userHandle: userHandle ?? undefined,
        },
        authenticatorAttachment: parsed.authenticatorAttachment ?? undefined,
        clientExtensionResults: {},
      };
      let verification: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
      try {
        verification = await verifyAuthenticationResponse({
          response,
          expectedChallenge,
          expectedOrigin: deps.origin,
          expectedRPID: deps.rpId,
          credential: {
            id: factor.credentialId!,
            publicKey: new Uint8Array(Buffer.from(factor.publicKey, 'base64url')),
            // The counter is checked below, atomically in the store, and only once the signature
            // is known to be good (the library's own check would read a possibly stale value and
            // refuse before the signature is verified, so a forged assertion could pose as a clone).
            counter: 0,
            transports: factor.transports ?? undefined,
          },
          requireUserVerification: false,
        });
      } catch {
        return { ok: false, reason: 'invalid' };
      }
      if (!verification.verified) return { ok: false, reason: 'invalid' };
      const info = verification.authenticationInfo;
      // Same predicate as WebAuthn §7.2 step 21, as one atomic store operation.
      if (!(await deps.factors.updateSignCount(factor.id, info.newCounter, t))) return { ok: false, reason: 'cloned' };
      await clearCodeAttempts(deps.counters, personId);
      return {
        ok: true,
        factor: { ...factor, signCount: info.newCounter, lastUsedAt: t },
        amr: passkeyAmr(info.credentialDeviceType),
        userVerified: info.userVerified,
        backedUp: info.credentialBackedUp,
      };
    },
  };
}
