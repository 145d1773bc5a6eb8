import { describe, it, expect } from '@jest/globals';
import { ARGON2_PARAMS, createLimiter, createPasswordHasher } from './password-hasher.js';

// Cheap parameters keep the suite fast; one test runs the product's own.
const cheap = { memoryCost: 1024, timeCost: 1, parallelism: 1 };
const hasher = createPasswordHasher(cheap);
const NFC = 'Mật khẩu của tôi rất dài 🐃';
const NFD = NFC.normalize('NFD');

describe('createPasswordHasher', () => {
  it('exports the frozen product parameters', () => {
    expect(ARGON2_PARAMS).toEqual({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(Object.isFrozen(ARGON2_PARAMS)).toBe(true);
  });

  it('hashes with argon2id at the product parameters by default', async () => {
    const product = createPasswordHasher();
    const hash = await product.hash(NFC);
    // The PHC parameter order is the library's business; check each value.
    const [, id, version, params] = hash.split('$');
    expect([id, version]).toEqual(['argon2id', 'v=19']);
    expect(params?.split(',').sort()).toEqual(['m=19456', 'p=1', 't=2']);
    expect(await product.verify(hash, NFC)).toBe(true);
    expect(product.needsRehash(hash)).toBe(false);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hasher.hash(NFC);
    expect(hash.startsWith('$argon2id$')).toBe(true);
    expect(await hasher.verify(hash, NFC)).toBe(true);
    expect(await hasher.verify(hash, `${NFC} `)).toBe(false);
  });

  it('salts each hash', async () => {
    expect(await hasher.hash(NFC)).not.toBe(await hasher.hash(NFC));
  });

  it('treats NFC and NFD forms of a Vietnamese password as the same', async () => {
    expect(NFD).not.toBe(NFC);
    expect(await hasher.verify(await hasher.hash(NFD), NFC)).toBe(true);
    expect(await hasher.verify(await hasher.hash(NFC), NFD)).toBe(true);
  });

  it('detects a hash made with other parameters', async () => {
    const old = await hasher.hash(NFC); // timeCost 1
    expect(hasher.needsRehash(old)).toBe(false);
    expect(createPasswordHasher().needsRehash(old)).toBe(true);
    expect(createPasswordHasher({ ...cheap, memoryCost: 2048 }).needsRehash(old)).toBe(true);
  });

  it('asks for a rehash of non-argon2id or malformed hashes', () => {
    const argon2i = '$argon2i$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$ZG9lc250bWF0dGVyd2hhdGl0aXM';
    expect(hasher.needsRehash(argon2i)).toBe(true);
    expect(hasher.needsRehash('$2b$10$abcdefghijklmnopqrstuv')).toBe(true);
    expect(hasher.needsRehash('$argon2id$garbage')).toBe(true);
    expect(hasher.needsRehash('')).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['garbage', 'not a hash'],
    ['truncated argon2id', '$argon2id$v=19$m=1024,t=1,p=1$'],
    ['bad parameters', '$argon2id$v=19$m=x,t=y,p=z$c29tZXNhbHQ$aGFzaA'],
    ['bcrypt', '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy'],
  ])('returns false for a %s hash instead of throwing', async (_label, stored) => {
    await expect(hasher.verify(stored, NFC)).resolves.toBe(false);
  });

  it('verifyDummy always resolves false', async () => {
    await expect(hasher.verifyDummy(NFC)).resolves.toBe(false);
    await expect(hasher.verifyDummy('')).resolves.toBe(false);
  });
});

describe('createLimiter (hashes at once: one per core)', () => {
  it('runs at most `limit` tasks at once, starts the others in arrival order, and frees the slot of a failed task', async () => {
    const limited = createLimiter(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates: Array<() => void> = [];
    const task = (n: number, fail = false) => limited(async () => {
      started.push(n);
      running += 1;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => gates.push(resolve));
      running -= 1;
      if (fail) throw new Error(`task ${n} failed`);
      return n;
    });
    const results = [task(1, true), task(2), task(3), task(4)].map((p) => p.then((v) => v, (e: Error) => e.message));
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2]);
    gates.shift()!(); // task 1 fails: its slot goes to task 3
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    while (started.length < 4 || gates.length) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await expect(Promise.all(results)).resolves.toEqual(['task 1 failed', 2, 3, 4]);
    expect(peak).toBe(2);
    // Free again: a new task starts at once.
    const next = limited(async () => 'now');
    await expect(next).resolves.toBe('now');
  });

  it('limits real hashes too: a burst completes with every result correct', async () => {
    const one = createPasswordHasher(cheap, 1);
    const hashes = await Promise.all(['a1b2c3d4e5f6g7', 'h8i9j0k1l2m3n4', 'o5p6q7r8s9t0u1'].map((p) => one.hash(p)));
    await expect(Promise.all(hashes.map((h, i) => one.verify(h, ['a1b2c3d4e5f6g7', 'h8i9j0k1l2m3n4', 'o5p6q7r8s9t0u1'][i]!)))).resolves.toEqual([true, true, true]);
    await expect(one.verify(hashes[0]!, 'wrong')).resolves.toBe(false);
  });
});
