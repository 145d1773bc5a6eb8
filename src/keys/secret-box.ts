/**
 * Authenticated encryption for secrets at rest (client secrets now, TOTP seeds later):
 * AES-256-GCM with a key id in every ciphertext so data keys can rotate.
 * Format: `v1.<kid>.<iv>.<ciphertext+tag>` (base64url parts).
 */
import crypto from 'node:crypto';

export interface DataKey {
  kid: string;
  /** 32 bytes, base64url. */
  key: string;
}

export interface SecretBox {
  seal(plaintext: string, aad: string): string;
  open(sealed: string, aad: string): string;
}

export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/** The first key seals; every key opens (so older ciphertexts survive a rotation). */
export function createSecretBox(keys: readonly DataKey[]): SecretBox {
  if (keys.length === 0) throw new SecretBoxError('no data keys');
  const byKid = new Map<string, Buffer>();
  for (const k of keys) {
    const raw = Buffer.from(k.key, 'base64url');
    if (raw.length !== 32) throw new SecretBoxError(`data key ${k.kid} is not 32 bytes`);
    byKid.set(k.kid, raw);
  }
  const current = keys[0]!;
  const currentKey = byKid.get(current.kid)!;

  return {
    seal(plaintext, aad) {
      const iv = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', currentKey, iv);
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${current.kid}.${iv.toString('base64url')}.${ct.toString('base64url')}`;
    },
    open(sealed, aad) {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== 'v1') throw new SecretBoxError('malformed ciphertext');
      const key = byKid.get(parts[1]!);
      if (!key) throw new SecretBoxError(`unknown data key ${parts[1]}`);
      const iv = Buffer.from(parts[2]!, 'base64url');
      const data = Buffer.from(parts[3]!, 'base64url');
      if (iv.length !== 12 || data.length < 16) throw new SecretBoxError('malformed ciphertext');
      try {
        const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(Buffer.from(aad, 'utf8'));
        decipher.setAuthTag(data.subarray(data.length - 16));
        return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('ciphertext failed authentication');
      }
    },
  };
}

export function newDataKey(): DataKey {
  return { kid: `dk-${crypto.randomBytes(6).toString('base64url')}`, key: crypto.randomBytes(32).toString('base64url') };
}
