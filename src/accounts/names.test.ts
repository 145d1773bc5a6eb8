import { describe, it, expect } from '@jest/globals';
import { normaliseName, splitVietnameseName, validateName } from './names.js';

const NFD = 'Nguye\u0302\u0303n Thi\u0323 Minh Khai';
const NFC = 'Nguyễn Thị Minh Khai';

describe('normaliseName', () => {
  it('composes to NFC, trims and collapses whitespace', () => {
    expect(normaliseName(`  ${NFD.replace(' ', '   ')}\u00a0 `)).toBe(NFC);
    expect(normaliseName('Trần\u3000 Văn  An')).toBe('Trần Văn An');
  });
});

describe('validateName', () => {
  it('accepts Vietnamese names and returns the normalised form', () => {
    expect(validateName(NFD)).toEqual({ ok: true, name: NFC });
    expect(validateName('  Lê   Thị Hồng  Gấm ')).toEqual({ ok: true, name: 'Lê Thị Hồng Gấm' });
  });

  it('accepts apostrophes, hyphens and periods', () => {
    expect(validateName("H'Hen Niê").ok).toBe(true);
    expect(validateName('H\u2019Hen Niê').ok).toBe(true);
    expect(validateName('Anne-Marie St. John').ok).toBe(true);
  });

  it('refuses empty and whitespace-only names', () => {
    expect(validateName('')).toEqual({ ok: false, reason: 'empty' });
    expect(validateName('   ')).toEqual({ ok: false, reason: 'empty' });
  });

  it('counts the 100-code-point limit after normalisation', () => {
    expect(validateName('Ễ'.repeat(100))).toEqual({ ok: true, name: 'Ễ'.repeat(100) });
    // 100 NFC code points are 300 in NFD
    expect(validateName('E\u0302\u0303'.repeat(100)).ok).toBe(true);
    expect(validateName('Ễ'.repeat(101))).toEqual({ ok: false, reason: 'too_long' });
    expect(validateName(` ${'a'.repeat(100)}   `).ok).toBe(true);
  });

  it.each([
    ['digit', 'Nguyễn Văn 2'],
    ['control character', 'Nguyễn\u0000Văn'],
    ['newline', 'Nguyễn\nVăn'],
    ['tab', 'Nguyễn\tVăn'],
    ['zero-width joiner', 'Nguyễn\u200dVăn'],
    ['angle bracket', '<script>'],
    ['emoji', 'An 😀'],
    ['leading punctuation', "-An"],
    ['punctuation only', "'.-"],
  ])('refuses a %s', (_label, name) => {
    expect(validateName(name)).toEqual({ ok: false, reason: 'invalid_character' });
  });
});

describe('splitVietnameseName', () => {
  it('takes the first word as the family name and the last as the given name', () => {
    expect(splitVietnameseName(NFD)).toEqual({ familyName: 'Nguyễn', givenName: 'Khai' });
    expect(splitVietnameseName('Trần An')).toEqual({ familyName: 'Trần', givenName: 'An' });
    expect(splitVietnameseName('  Lê   Thị Hồng  Gấm ')).toEqual({ familyName: 'Lê', givenName: 'Gấm' });
  });

  it('takes a single word as the given name', () => {
    expect(splitVietnameseName('Hùng')).toEqual({ familyName: '', givenName: 'Hùng' });
  });

  it('returns empty strings for an empty name', () => {
    expect(splitVietnameseName('  ')).toEqual({ familyName: '', givenName: '' });
  });
});
