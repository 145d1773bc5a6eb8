import { describe, it, expect } from '@jest/globals';
import { checkPassword } from './password-policy.js';

const noMfa = { hasSecondFactor: false };
const mfa = { hasSecondFactor: true };

/** Deterministic pseudo-random text (no repeats or sequences for zxcvbn to find). */
function randomText(codePoints: number, alphabet: readonly string[], seed = 12345): string {
  let state = seed;
  let out = '';
  for (let i = 0; i < codePoints; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    out += alphabet[state % alphabet.length];
  }
  return out;
}

const ASCII = [...'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%&*+=?@^~'];
const EMOJI = [...'🐃🍜🎋🏮🪷🛵🌾🐉🥢🦆🐟🌸🍉🐓🦋🌙🍵🎐🦀🪁'];

describe('checkPassword length', () => {
  it('needs 12 code points without a second factor', () => {
    expect(checkPassword(randomText(11, ASCII), noMfa)).toEqual({ ok: false, reason: 'too_short' });
    const twelve = randomText(12, ASCII);
    expect(checkPassword(twelve, noMfa)).toEqual({ ok: true, normalised: twelve });
  });

  it('allows 128 code points and refuses 129, without truncating', () => {
    const max = randomText(128, ASCII);
    expect(checkPassword(max, noMfa)).toEqual({ ok: true, normalised: max });
    expect(checkPassword(randomText(129, ASCII), noMfa)).toEqual({ ok: false, reason: 'too_long' });
    expect(checkPassword(randomText(129, ASCII), mfa)).toEqual({ ok: false, reason: 'too_long' });
  });

  it('needs 8 code points once a second factor is enrolled', () => {
    expect(checkPassword(randomText(7, EMOJI), mfa)).toEqual({ ok: false, reason: 'too_short' });
    const eight = randomText(8, EMOJI);
    expect(checkPassword(eight, mfa)).toEqual({ ok: true, normalised: eight });
    expect(checkPassword(eight, noMfa)).toEqual({ ok: false, reason: 'too_short' });
    // Eight characters typed on a keyboard, not only emoji (which zxcvbn counts as 16 units): the
    // estimator's score for a random 8-character string must not refuse it as "common".
    const typed = Array.from({ length: 20 }, () => randomText(8, ASCII));
    expect(typed.filter((p) => checkPassword(p, mfa).ok)).toHaveLength(20);
  });

  it('counts code points, not UTF-16 units', () => {
    const eleven = randomText(11, EMOJI); // 22 UTF-16 units
    expect(eleven.length).toBe(22);
    expect(checkPassword(eleven, noMfa)).toEqual({ ok: false, reason: 'too_short' });
    expect(checkPassword(randomText(12, EMOJI), noMfa).ok).toBe(true);
    expect(checkPassword(randomText(128, EMOJI), noMfa).ok).toBe(true);
    expect(checkPassword(randomText(129, EMOJI), noMfa)).toEqual({ ok: false, reason: 'too_long' });
  });

  it('counts after NFC normalisation', () => {
    const nfc = 'Phở bò Hà Nội'; // 13 code points
    const nfd = nfc.normalize('NFD');
    expect([...nfd].length).toBeGreaterThan(13);
    expect(checkPassword(nfd, noMfa)).toEqual({ ok: true, normalised: nfc });

    const elevenNfc = 'Đường ướt ở'; // 11 code points composed, 15 decomposed
    expect([...elevenNfc.normalize('NFD')].length).toBeGreaterThanOrEqual(12);
    expect(checkPassword(elevenNfc.normalize('NFD'), noMfa)).toEqual({ ok: false, reason: 'too_short' });
  });
});

describe('checkPassword content', () => {
  it('accepts a Vietnamese passphrase with an emoji and returns it in NFC', () => {
    const phrase = 'Trâu vàng gặm cỏ xanh bên đồi 🐃';
    expect(checkPassword(phrase.normalize('NFD'), noMfa)).toEqual({ ok: true, normalised: phrase });
  });

  it('accepts a strong random passphrase with no composition rules', () => {
    expect(checkPassword('mèo đen ăn phở lúc ba giờ sáng', noMfa).ok).toBe(true);
    expect(checkPassword('vK8#qL2m!xR9wZ', noMfa).ok).toBe(true);
  });

  it.each(['password1234', '123456789012', 'qwertyuiopas', 'abcdefghijkl', 'PASSWORD1234'])(
    'refuses %s as common',
    (p) => {
      expect(checkPassword(p, noMfa)).toEqual({ ok: false, reason: 'common' });
    },
  );

  it('refuses entries of the bundled common-password list', () => {
    expect(checkPassword('password', mfa)).toEqual({ ok: false, reason: 'common' });
    expect(checkPassword('iloveyou', mfa)).toEqual({ ok: false, reason: 'common' });
  });

  it('refuses a password containing personal data, case-insensitively', () => {
    const userInputs = ['001099012345', '19990430', 'Nguyễn Văn Khải'];
    expect(checkPassword('x!001099012345!y', { ...noMfa, userInputs })).toEqual({
      ok: false,
      reason: 'contains_personal',
    });
    expect(checkPassword('Rồng bay 19990430 qua sông', { ...noMfa, userInputs })).toEqual({
      ok: false,
      reason: 'contains_personal',
    });
    expect(checkPassword('tôi là NGUYỄN VĂN KHẢI đây', { ...noMfa, userInputs })).toEqual({
      ok: false,
      reason: 'contains_personal',
    });
    expect(checkPassword('mèo đen ăn phở lúc ba giờ sáng', { ...noMfa, userInputs }).ok).toBe(true);
  });

  it('ignores empty and very short user inputs', () => {
    expect(checkPassword('mèo đen ăn phở lúc ba giờ sáng', { ...noMfa, userInputs: ['', ' ', 'ăn'] }).ok).toBe(
      true,
    );
  });

  it.each([
    ['NUL', '\u0000'],
    ['newline', '\n'],
    ['tab', '\t'],
    ['unit separator', '\u001f'],
    ['DEL', '\u007f'],
    ['lone surrogate', '\ud800'],
  ])('refuses a %s as invalid', (_label, c) => {
    expect(checkPassword(`mèo đen ăn phở${c}lúc ba giờ sáng`, noMfa)).toEqual({ ok: false, reason: 'invalid' });
  });
});
