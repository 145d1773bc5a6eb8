import { describe, it, expect } from '@jest/globals';
import { checkPid, isPidShape, maskPid, PROVINCE_CODES } from './pid.js';

const male1999 = { birthdate: '1999-04-30', gender: 'male' } as const;
const female2003 = { birthdate: '2003-01-15', gender: 'female' } as const;

describe('checkPid', () => {
  it('accepts a male born in the 1900s and a female born in the 2000s', () => {
    expect(checkPid('001099012345', male1999)).toEqual({ ok: true });
    expect(checkPid('079303000123', female2003)).toEqual({ ok: true });
  });

  it('accepts a female born in the 1900s and a male born in the 2000s', () => {
    expect(checkPid('001185000001', { birthdate: '1985-12-01', gender: 'female' })).toEqual({ ok: true });
    expect(checkPid('096210999999', { birthdate: '2010-06-06', gender: 'male' })).toEqual({ ok: true });
  });

  it('accepts the 2100s digits', () => {
    expect(checkPid('001400000001', { birthdate: '2100-01-01', gender: 'male' })).toEqual({ ok: true });
    expect(checkPid('001501000001', { birthdate: '2101-01-01', gender: 'female' })).toEqual({ ok: true });
  });

  it('checks shape, province and digit 4 range without a birth record', () => {
    expect(checkPid('001099012345')).toEqual({ ok: true });
    expect(checkPid('001699012345')).toEqual({ ok: false, reason: 'century_gender' });
    expect(checkPid('001999012345')).toEqual({ ok: false, reason: 'century_gender' });
  });

  it('refuses an unknown province code', () => {
    expect(checkPid('003099012345', male1999)).toEqual({ ok: false, reason: 'province' });
    expect(checkPid('000099012345', male1999)).toEqual({ ok: false, reason: 'province' });
    expect(checkPid('097099012345', male1999)).toEqual({ ok: false, reason: 'province' });
  });

  it('refuses a century/gender digit that disagrees with the birth record', () => {
    // female digit for a male
    expect(checkPid('001199012345', male1999)).toEqual({ ok: false, reason: 'century_gender' });
    // 2000s digit for a 1999 birth
    expect(checkPid('001299012345', male1999)).toEqual({ ok: false, reason: 'century_gender' });
    // 1900s female digit for a 2003 birth
    expect(checkPid('079103000123', female2003)).toEqual({ ok: false, reason: 'century_gender' });
    // outside 1900–2199
    expect(checkPid('001099012345', { birthdate: '1899-01-01', gender: 'male' })).toEqual({
      ok: false,
      reason: 'century_gender',
    });
  });

  it('refuses an unreadable birthdate rather than accepting the number', () => {
    expect(checkPid('001099012345', { birthdate: '30/04/1999', gender: 'male' })).toEqual({
      ok: false,
      reason: 'century_gender',
    });
  });

  it('refuses year digits that disagree with the birth year', () => {
    expect(checkPid('001098012345', male1999)).toEqual({ ok: false, reason: 'birth_year' });
    expect(checkPid('079313000123', female2003)).toEqual({ ok: false, reason: 'birth_year' });
  });

  it.each([
    ['11 digits', '00109901234'],
    ['13 digits', '0010990123456'],
    ['empty', ''],
    ['letters', '00109901234a'],
    ['Arabic-Indic digits', '٠٠١٠٩٩٠١٢٣٤٥'],
    ['full-width digits', '００１０９９０１２３４５'],
    ['leading space', ' 001099012345'],
    ['trailing newline', '001099012345\n'],
    ['inner space', '001099 012345'],
    ['sign', '+01099012345'],
    ['hyphenated', '001-099-012345'],
  ])('refuses %s as format', (_label, pid) => {
    expect(checkPid(pid, male1999)).toEqual({ ok: false, reason: 'format' });
    expect(isPidShape(pid)).toBe(false);
  });
});

describe('PROVINCE_CODES', () => {
  it('holds the 63 listed codes', () => {
    expect(PROVINCE_CODES.size).toBe(63);
    expect(PROVINCE_CODES.has('001')).toBe(true);
    expect(PROVINCE_CODES.has('096')).toBe(true);
    expect(PROVINCE_CODES.has('003')).toBe(false);
  });
});

describe('maskPid', () => {
  it('keeps only the last 3 digits', () => {
    expect(maskPid('001099012789')).toBe('*********789');
  });

  it('masks anything that is not a well-formed number entirely', () => {
    expect(maskPid('abc\n789')).toBe('************');
    expect(maskPid('0010990127890')).toBe('************');
  });
});
