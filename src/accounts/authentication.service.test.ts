import { describe, expect, it } from '@jest/globals';
import { delayAfter, ipBucket } from './authentication.service.js';

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
