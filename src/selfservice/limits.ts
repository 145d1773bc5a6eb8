/**
 * Rate limits of the self-service journeys, counted in the store so that every instance shares them
 * (ten mistakes #3: never per process, never per IP alone). Fixed windows; a refused attempt is not
 * counted, so a refused retry does not push the next one back. Keys hold hashes, never a number or
 * a phone in clear. Codes to one phone are limited by the message-code service (1 a minute, 5 an hour).
 */
import crypto from 'node:crypto';
import type { CounterRepository } from '../store/index.js';
import { ipBucket } from '../accounts/index.js';

export const SELF_SERVICE_LIMITS = Object.freeze({
  windowMs: 60 * 60_000,
  /**
   * Starts per network an hour (IPv4 address, IPv6 /64). Generous: mobile carriers put many people
   * behind one address, and a one-stop-shop office registers many citizens from one network.
   */
  perIp: 30,
  /** Starts per identification number an hour (each asks the population registry). */
  perPid: 5,
});

export type LimitName = 'ip' | 'pid';

const digest = (value: string) => crypto.createHash('sha256').update(value).digest('base64url');

/** A pseudonymous key for a value in counter keys and message-code records. */
export const keyOf = (kind: string, value: string) => `${kind}:${digest(`${kind}\u0000${value.toLowerCase()}`)}`;

export function createSelfServiceLimits(deps: { counters: CounterRepository; now: () => number }) {
  /**
   * Counts one start of `journey` from `ip` for `pid`; the first limit that is full, with how long
   * until it frees, or undefined when admitted.
   */
  async function admit(journey: 'register' | 'recover', ip: string, pid: string): Promise<{ limit: LimitName; retryAfterMs: number } | undefined> {
    const L = SELF_SERVICE_LIMITS;
    const t = deps.now();
    const limits: Array<{ name: LimitName; key: string; max: number }> = [
      { name: 'ip', key: `${journey}-ip:${digest(ipBucket(ip))}`, max: L.perIp },
      { name: 'pid', key: keyOf(`${journey}-pid`, pid), max: L.perPid },
    ];
    const current = await Promise.all(limits.map((l) => deps.counters.get(l.key, t)));
    for (const [i, l] of limits.entries()) {
      const c = current[i];
      if (c && c.count >= l.max) return { limit: l.name, retryAfterMs: Math.max(0, c.expiresAt - t) };
    }
    const counted = await Promise.all(limits.map((l) => deps.counters.increment(l.key, L.windowMs, t)));
    for (const [i, l] of limits.entries()) {
      const c = counted[i]!;
      if (c.count > l.max) return { limit: l.name, retryAfterMs: Math.max(0, c.expiresAt - t) };
    }
    return undefined;
  }
  return { admit };
}
export type SelfServiceLimits = ReturnType<typeof createSelfServiceLimits>;
