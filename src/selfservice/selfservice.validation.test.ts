import { describe, expect, it } from '@jest/globals';
import { checkDetails, toE164, toEmail } from './selfservice.validation.js';

const valid = { _csrf: 'x', pid: '001090123456', full_name: '  Nguyễn   Văn An ', birthdate: '1990-05-17', gender: 'male', phone: '0912 345 678' };
const TODAY = '2026-12-04';

describe('registration details', () => {
  it('normalises what people type: the name (NFC, spaces), the phone (E.164), no e-mail', () => {
    const decomposed = { ...valid, full_name: 'Nguye\u0302\u0303n Va\u0306n An' };
    const result = checkDetails(decomposed, TODAY);
    expect(result).toEqual({ ok: true, details: { pid: '001090123456', fullName: 'Nguyễn Văn An', birthdate: '1990-05-17', gender: 'male', phone: '+84912345678', email: null } });
    expect(checkDetails(valid, TODAY).ok).toBe(true);
  });

  it('names each field that breaks its rule, and only those', () => {
    const result = checkDetails({ ...valid, pid: '00109012345', phone: '12', email: 'not-an-address' }, TODAY);
    expect(result).toEqual({ ok: false, errors: { pid: 'login.identifier_format', phone: 'register.phone_format', email: 'register.email_format' } });
  });

  it('refuses a number whose century/gender or year digits disagree with the birth date and gender', () => {
    expect(checkDetails({ ...valid, gender: 'female' }, TODAY)).toEqual({ ok: false, errors: { pid: 'register.pid_inconsistent' } });
    expect(checkDetails({ ...valid, birthdate: '1991-05-17' }, TODAY)).toEqual({ ok: false, errors: { pid: 'register.pid_inconsistent' } });
  });

  it('refuses an impossible or future birth date and a missing gender', () => {
    expect(checkDetails({ ...valid, birthdate: '1990-02-30' }, TODAY)).toMatchObject({ ok: false, errors: { birthdate: 'register.birthdate_format' } });
    expect(checkDetails({ ...valid, birthdate: '2027-01-01' }, TODAY)).toMatchObject({ ok: false, errors: { birthdate: 'register.birthdate_format' } });
    const { gender: _omitted, ...noGender } = valid;
    expect(checkDetails(noGender, TODAY)).toEqual({ ok: false, errors: { gender: 'register.gender_required' } });
  });

  it('takes only a Vietnamese mobile number (a number abroad or a landline is refused)', () => {
    for (const phone of ['+88213456789', '+14155550100', '0241234567', '+842412345678']) {
      expect(checkDetails({ ...valid, phone }, TODAY)).toEqual({ ok: false, errors: { phone: 'register.phone_format' } });
    }
    expect(checkDetails({ ...valid, phone: '0351234567' }, TODAY).ok).toBe(true);
  });

  it('refuses names with digits, markup or control characters', () => {
    for (const full_name of ['Nguyễn 2', '<script>', 'An\u0000B', '']) {
      expect(checkDetails({ ...valid, full_name }, TODAY)).toMatchObject({ ok: false, errors: { full_name: 'register.name_format' } });
    }
  });
});

describe('contacts', () => {
  it('reads Vietnamese and international phone numbers, and nothing else', () => {
    expect(toE164('0912345678')).toBe('+84912345678');
    expect(toE164('+84 912-345-678')).toBe('+84912345678');
    expect(toE164('091234567')).toBeUndefined();
    expect(toE164('+84912345678; DROP TABLE')).toBeUndefined();
  });

  it('reads e-mail addresses in lower case, and refuses the rest', () => {
    expect(toEmail(' An@Example.VN ')).toBe('an@example.vn');
    expect(toEmail('an@')).toBeUndefined();
    expect(toEmail(`${'a'.repeat(250)}@x.vn`)).toBeUndefined();
  });
});
