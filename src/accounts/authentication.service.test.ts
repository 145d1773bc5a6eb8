import { describe, expect, it } from '@jest/globals';
import { createAuthenticationService, delayAfter, ipBucket } from './authentication.service.js';

describe('delayAfter', () => {
  it('is 0 below 5 failures, then 1 min doubling, capped at 1 h', () => {
    expect(delayAfter(4)).toBe(0);
    expect(delayAfter(5)).toBe(60_000);
    expect(delayAfter(6)).toBe(120_000);
    expect(delayAfter(10)).toBe(32 * 60_000);
    expect(delayAfter(11)).toBe(60 * 60_000);
    expect(delayAfter(99)).toBe(60 * 60_000);
  });
});

describe('ipBucket', () => {
  it('keeps IPv4 addresses and unwraps IPv4-mapped IPv6', () => {
    expect(ipBucket('203.0.113.7')).toBe('203.0.113.7');
    expect(ipBucket('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });
  it('groups IPv6 addresses by /64, whatever their notation', () => {
    expect(ipBucket('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(ipBucket('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(ipBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipBucket('::1')).toBe('0:0:0:0::/64');
  });
});

describe('authenticate: what the store sees', () => {
  /**
   * The work done before the password hash must not depend on whether the number has an account:
   * a write that only known numbers cost (a majority write on MongoDB) would tell them apart by
   * timing (OWASP ASVS 5.0 6.3.8). Every store call is recorded; known, unknown and malformed
   * identifiers must make the same kinds of calls in the same order.
   */
  it('makes the same store calls for a known, an unknown and a malformed identifier', async () => {
    const { createSqliteStore } = await import('../store/sqlite/sqlite-store.js');
    const store = createSqliteStore({ filename: ':memory:' });
    await store.migrate();
    const calls: string[] = [];
    const spy = <T extends object>(name: string, target: T): T => new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(`${name}.${String(prop)}`);
          return (value as (...a: unknown[]) => unknown).apply(obj, args);
        };
      },
    });
    const hasher = {
      verify: async () => { calls.push('hash'); return false; },
      verifyDummy: async () => { calls.push('hash'); return false; },
      hash: async () => 'x', needsRehash: () => false,
    };
    const audit = { record: () => undefined } as unknown as Parameters<typeof createAuthenticationService>[0]['audit'];
    const auth = createAuthenticationService({ persons: spy('persons', store.persons), counters: spy('counters', store.counters), hasher: hasher as never, audit });
    await store.persons.create({
      id: 'p1', pid: '001090000123', name: 'Nguyễn Văn An', familyName: 'Nguyễn', givenName: 'An', birthdate: '1990-01-01', gender: 'male',
      email: null, emailVerified: false, phone: null, phoneVerified: false, address: null, level: 1, passwordHash: '$argon2id$x', status: 'active',
    });
    const trace = async (identifier: string) => {
      calls.length = 0;
      await auth.authenticate({ identifier, password: 'wrong password here', ip: '203.0.113.9' });
      return calls.slice(0, calls.indexOf('hash') + 1);
    };
    const known = await trace('001090000123');
    expect(await trace('001090000999')).toEqual(known);
    expect(await trace('not-a-number')).toEqual(known);
    await store.close();
  });
});
