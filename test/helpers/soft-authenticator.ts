/**
 * A software WebAuthn authenticator that produces REAL responses (nothing mocked): an ES256 (P-256)
 * key pair per credential from node:crypto, a CBOR-encoded attestation object with the `none`
 * format, authenticator data laid out as WebAuthn §6.1 says, and DER-encoded ECDSA signatures over
 * `authenticatorData ‖ SHA-256(clientDataJSON)`. It also plays the browser's part (the client data
 * with type, challenge and origin), so a test can hand the options a page embeds to it and post what
 * it returns, as webauthn.js would.
 *
 * Knobs for the refusals the server must make:
 * - `backedUp` sets BE and BS (a synced, multi-device passkey) instead of a device-bound key;
 * - `counts: false` keeps the signature counter at 0 (authenticators that do not count);
 * - `clone()` copies the keys and counters (a cloned authenticator: the two then count separately);
 * - per call: `counter` (force the counter), `rpId` (sign for another relying party), `challenge`,
 *   `credentialId` (use a credential whatever the allow list says), `type`.
 */
import crypto, { type KeyObject } from 'node:crypto';

// --- a minimal CBOR encoder (RFC 8949): unsigned and negative integers, byte and text strings, maps

type CborValue = number | string | Uint8Array | Map<CborValue, CborValue>;

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(length, 1);
    return b;
  }
  if (length < 0x100000000) {
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(length, 1);
    return b;
  }
  throw new RangeError('CBOR value too large for this encoder');
}

export function cbor(value: CborValue): Buffer {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError('only integers');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  // Maps keep insertion order: callers insert keys in CTAP2 canonical order.
  const parts: Buffer[] = [head(5, value.size)];
  for (const [k, v] of value) parts.push(cbor(k), cbor(v));
  return Buffer.concat(parts);
}

// --- the authenticator -----------------------------------------------------------------------

const FLAG = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40 } as const;

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (data: Uint8Array | string) => crypto.createHash('sha256').update(data).digest();

interface Credential {
  id: Buffer;
  rpId: string;
  userHandle: string;
  privateKey: KeyObject;
  publicKeyCose: Buffer;
  counter: number;
}

export interface SoftAuthenticatorOptions {
  /** A synced passkey (BE and BS set): multi-device, backed up. Default false (device-bound). */
  backedUp?: boolean;
  /** Whether the signature counter grows with each use. Default true. */
  counts?: boolean;
  /** Whether the authenticator verifies the user (UV flag). Default true. */
  userVerification?: boolean;
  /** Reported transports and attachment. Default: a roaming USB key, or `internal` when backed up. */
  transports?: string[];
}

export interface CallOptions {
  /** Sign with this counter value instead of the next one. */
  counter?: number;
  /** Hash this RP ID into the authenticator data instead of the one in the options. */
  rpId?: string;
  /** Put this challenge in the client data instead of the one in the options. */
  challenge?: string;
  /** Client data type (default `webauthn.create` / `webauthn.get`). */
  type?: string;
  /** Use this credential (base64url) even if the options do not allow it. */
  credentialId?: string;
}

/** The parts of PublicKeyCredentialCreationOptionsJSON a browser passes to the authenticator. */
export interface CreationOptions {
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  challenge: string;
  pubKeyCredParams: Array<{ alg: number; type: string }>;
  excludeCredentials?: Array<{ id: string }>;
}

export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string }>;
}

export interface RegistrationResponse {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; attestationObject: string; transports: string[] };
  authenticatorAttachment: 'platform' | 'cross-platform';
  clientExtensionResults: Record<string, never>;
}

export interface AuthenticationResponse {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle: string };
  authenticatorAttachment: 'platform' | 'cross-platform';
  clientExtensionResults: Record<string, never>;
}

/** The error a browser raises when the authenticator refuses (DOMException names). */
export class AuthenticatorError extends Error {
  override readonly name: 'InvalidStateError' | 'NotAllowedError' | 'NotSupportedError';
  constructor(name: AuthenticatorError['name'], message: string) {
    super(message);
    this.name = name;
  }
}

export class SoftAuthenticator {
  private readonly credentials: Credential[] = [];
  private readonly opts: Required<Omit<SoftAuthenticatorOptions, 'transports'>> & { transports: string[] };

  constructor(options: SoftAuthenticatorOptions = {}) {
    const backedUp = options.backedUp ?? false;
    this.opts = {
      backedUp,
      counts: options.counts ?? true,
      userVerification: options.userVerification ?? true,
      transports: options.transports ?? (backedUp ? ['hybrid', 'internal'] : ['usb']),
    };
  }

  /** Credential ids (base64url) this authenticator holds. */
  get credentialIds(): string[] {
    return this.credentials.map((c) => b64url(c.id));
  }

  /** A copy holding the same keys and counters, counting on its own from now on. */
  clone(): SoftAuthenticator {
    const copy = new SoftAuthenticator({ ...this.opts });
    for (const c of this.credentials) copy.credentials.push({ ...c });
    return copy;
  }

  private flags(extra: number): number {
    let f = FLAG.UP | extra;
    if (this.opts.userVerification) f |= FLAG.UV;
    if (this.opts.backedUp) f |= FLAG.BE | FLAG.BS;
    return f;
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
  }

  private attachment(): 'platform' | 'cross-platform' {
    return this.opts.transports.includes('internal') ? 'platform' : 'cross-platform';
  }

  /** navigator.credentials.create(): a new ES256 credential and its `none` attestation. */
  create(options: CreationOptions, origin: string, call: CallOptions = {}): RegistrationResponse {
    const rpId = options.rp.id ?? new URL(origin).hostname;
    if (!options.pubKeyCredParams.some((p) => p.alg === -7 && p.type === 'public-key')) {
      throw new AuthenticatorError('NotSupportedError', 'ES256 not offered');
    }
    const excluded = new Set((options.excludeCredentials ?? []).map((c) => c.id));
    if (this.credentials.some((c) => c.rpId === rpId && excluded.has(b64url(c.id)))) {
      throw new AuthenticatorError('InvalidStateError', 'this authenticator already holds a credential for the account');
    }

    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = cbor(new Map<CborValue, CborValue>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]));
    const credential: Credential = {
      id: crypto.randomBytes(32),
      rpId,
      userHandle: options.user.id,
      privateKey,
      publicKeyCose: coseKey,
      counter: 0,
    };
    const counter = call.counter ?? 0;

    const signCount = Buffer.alloc(4);
    signCount.writeUInt32BE(counter);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const authData = Buffer.concat([
      sha256(call.rpId ?? rpId),
      Buffer.from([this.flags(FLAG.AT)]),
      signCount,
      Buffer.alloc(16), // AAGUID: zeros for `none` attestation
      idLength,
      credential.id,
      coseKey,
    ]);
    // CTAP2 canonical order: shorter keys first.
    const attestationObject = cbor(new Map<CborValue, CborValue>([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', authData],
    ]));
    const clientDataJSON = this.clientData(call.type ?? 'webauthn.create', call.challenge ?? options.challenge, origin);
    credential.counter = counter;
    this.credentials.push(credential);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: [...this.opts.transports] },
      authenticatorAttachment: this.attachment(),
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get(): an assertion by the first allowed credential this authenticator holds. */
  get(options: RequestOptions, origin: string, call: CallOptions = {}): AuthenticationResponse {
    const rpId = options.rpId ?? new URL(origin).hostname;
    let credential: Credential | undefined;
    if (call.credentialId) {
      credential = this.credentials.find((c) => b64url(c.id) === call.credentialId);
    } else {
      const allowed = options.allowCredentials?.map((c) => c.id);
      credential = this.credentials.find((c) => c.rpId === rpId && (!allowed || allowed.length === 0 || allowed.includes(b64url(c.id))));
    }
    if (!credential) throw new AuthenticatorError('NotAllowedError', 'no credential for this request');

    let counter: number;
    if (call.counter !== undefined) counter = call.counter;
    else if (this.opts.counts) counter = credential.counter + 1;
    else counter = 0;
    credential.counter = counter;

    const signCount = Buffer.alloc(4);
    signCount.writeUInt32BE(counter);
    const authenticatorData = Buffer.concat([sha256(call.rpId ?? rpId), Buffer.from([this.flags(0)]), signCount]);
    const clientDataJSON = this.clientData(call.type ?? 'webauthn.get', call.challenge ?? options.challenge, origin);
    // ES256: ECDSA P-256 with SHA-256, DER-encoded (node's default for EC keys), as WebAuthn wants.
    const signature = crypto.sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), credential.privateKey);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        userHandle: credential.userHandle,
      },
      authenticatorAttachment: this.attachment(),
      clientExtensionResults: {},
    };
  }
}
