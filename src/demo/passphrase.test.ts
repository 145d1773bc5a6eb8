import { describe, expect, it } from '@jest/globals';
import { checkPassword } from '../accounts/password-policy.js';
import { WORDS, demoPassphrase } from './passphrase.js';

describe('demo passphrase', () => {
  it('draws from a list of distinct lower-case words without tone marks', () => {
    expect(new Set(WORDS).size).toBe(WORDS.length);
    expect(WORDS.length).toBeGreaterThanOrEqual(128);
    for (const w of WORDS) expect(w).toMatch(/^[a-z]{2,6}$/);
  });

  it('is four words and four digits, at least 16 characters, accepted by the password policy, new each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i += 1) {
      const p = demoPassphrase(['001099000001', '19990501']);
      expect(p).toMatch(/^([a-z]+-){4}\d{4}$/);
      expect(p.length).toBeGreaterThanOrEqual(16);
      expect(checkPassword(p, { hasSecondFactor: false, userInputs: ['001099000001'] }).ok).toBe(true);
      seen.add(p);
    }
    expect(seen.size).toBe(20);
  });

  it('draws again when a draw fails the password policy', () => {
    expect(checkPassword('hoa-hoa-hoa-hoa-0000', { hasSecondFactor: false }).ok).toBe(false);
    const long = ['thuyen', 'phuong', 'chuong', 'nhanh'].map((w) => WORDS.indexOf(w));
    // First draw: "hoa" four times and 0000 (too guessable), then four long words and 4821.
    const draws = [0, 0, 0, 0, 0, ...long, 4821];
    let i = 0;
    const p = demoPassphrase([], (max) => (i < draws.length ? draws[i++]! : Math.floor(max / 2)));
    expect(p).toBe('thuyen-phuong-chuong-nhanh-4821');
  });
});
