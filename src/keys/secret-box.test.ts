import { describe, expect, it } from '@jest/globals';
import { SecretBoxError, createSecretBox, newDataKey } from './secret-box.js';

describe('secret box (AES-256-GCM with key ids)', () => {
  const k1 = newDataKey();
  const k2 = newDataKey();

  it('seals and opens, with a fresh IV each time', () => {
    const box = createSecretBox([k1]);
    const a = box.seal('bí mật', 'aad');
    const b = box.seal('bí mật', 'aad');
    expect(a).not.toBe(b);
    expect(a).not.toContain('bí mật');
    expect(box.open(a, 'aad')).toBe('bí mật');
  });

  it('binds the ciphertext to its context (AAD)', () => {
    const box = createSecretBox([k1]);
    expect(() => box.open(box.seal('s', 'portal-secret:a'), 'portal-secret:b')).toThrow(SecretBoxError);
  });

  it('detects tampering', () => {
    const box = createSecretBox([k1]);
    const sealed = box.seal('secret', 'x');
    const parts = sealed.split('.');
    const data = Buffer.from(parts[3]!, 'base64url');
    data[0] = data[0]! ^ 1;
    parts[3] = data.toString('base64url');
    expect(() => box.open(parts.join('.'), 'x')).toThrow(/authentication/);
    expect(() => box.open('v1.nope', 'x')).toThrow(/malformed/);
  });

  it('opens old ciphertexts after a rotation, seals with the newest key', () => {
    const old = createSecretBox([k1]).seal('s', 'x');
    const rotated = createSecretBox([k2, k1]);
    expect(rotated.open(old, 'x')).toBe('s');
    expect(rotated.seal('s', 'x').split('.')[1]).toBe(k2.kid);
    expect(() => createSecretBox([k2]).open(old, 'x')).toThrow(/unknown data key/);
  });

  it('refuses keys of the wrong size', () => {
    expect(() => createSecretBox([{ kid: 'short', key: Buffer.alloc(16).toString('base64url') }])).toThrow(/32 bytes/);
    expect(() => createSecretBox([])).toThrow();
  });
});
