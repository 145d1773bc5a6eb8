/** argon2id password hashing (OWASP parameters), with rehash detection and a dummy verify. */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import argon2, { type HashOptions } from 'argon2';

export interface Argon2Params {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

/** OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane. */
export const ARGON2_PARAMS: Argon2Params = Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 });

export interface PasswordHasher {
  hash(p: string): Promise<string>;
  verify(hash: string, p: string): Promise<boolean>;
  needsRehash(hash: string): boolean;
  verifyDummy(p: string): Promise<false>;
}

/**
 * Runs at most `limit` tasks at once; the others wait in arrival order.
 */
export function createLimiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  };
  return async (task) => {
    if (running < limit) running += 1;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      release();
    }
  };
}

/**
 * How many hashes run at once: one per core. Each is memory-hard (19 MiB) and single-lane; more at
 * once than cores only makes them share the cores and the caches (each then costs more CPU, issue
 * 8's profiles) and fills libuv's pool, where token signatures also run. A burst of sign-ins waits
 * its turn instead.
 */
export const HASH_CONCURRENCY = Math.max(1, os.availableParallelism());

/** `params` defaults to the product's; tests pass cheaper ones. */
export function createPasswordHasher(params: Argon2Params = ARGON2_PARAMS, concurrency = HASH_CONCURRENCY): PasswordHasher {
  const limited = createLimiter(concurrency);
  const options: HashOptions = {
    type: argon2.argon2id,
    memoryCost: params.memoryCost,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  };
  let dummy: Promise<string> | undefined;

  // NIST SP 800-63B §5.1.1.2: NFC so a password typed on any keyboard/OS verifies the same.
  const hash = (p: string): Promise<string> => limited(() => argon2.hash(p.normalize('NFC'), options));

  const verify = async (stored: string, p: string): Promise<boolean> => {
    try {
      return await limited(() => argon2.verify(stored, p.normalize('NFC')));
    } catch {
      return false; // malformed or unsupported hash string
    }
  };

  return {
    hash,
    verify,
    needsRehash(stored: string): boolean {
      if (!stored.startsWith('$argon2id$')) return true;
      try {
        return argon2.needsRehash(stored, params);
      } catch {
        return true;
      }
    },
    async verifyDummy(p: string): Promise<false> {
      // Same argon2 work for an unknown identifier as for a known one, so timing does not tell them apart.
      dummy ??= hash(randomBytes(32).toString('base64url')).catch((error: unknown) => {
        dummy = undefined; // retry on the next call rather than caching a failure
        throw error;
      });
      try {
        await verify(await dummy, p);
      } catch {
        // the outcome is false whatever happens
      }
      return false;
    },
  };
}
