import { describe, expect, it } from '@jest/globals';
import { contactsFromFields, mirrorContacts, primaryContact } from './contacts.js';
import type { Contact } from './types.js';

const T = Date.UTC(2030, 0, 1);

function phone(id: string, overrides: Partial<Contact> = {}): Contact {
  return { id, kind: 'phone', value: `+8490${id.padStart(7, '0').slice(-7)}`, verified: false, addedAt: T, verifiedAt: null, ...overrides };
}

function email(id: string, overrides: Partial<Contact> = {}): Contact {
  return { id, kind: 'email', value: `${id}@example.vn`, verified: false, addedAt: T, verifiedAt: null, ...overrides };
}

describe('primaryContact', () => {
  it('is undefined when the list has no contact of the kind', () => {
    expect(primaryContact([], 'phone')).toBeUndefined();
    expect(primaryContact([email('a', { verified: true, verifiedAt: T })], 'phone')).toBeUndefined();
  });

  it('prefers a verified contact to any unverified one, whatever their order or times', () => {
    const verified = phone('1', { verified: true, addedAt: T, verifiedAt: T });
    const newer = phone('2', { addedAt: T + 1000 });
    expect(primaryContact([verified, newer], 'phone')).toBe(verified);
    expect(primaryContact([newer, verified], 'phone')).toBe(verified);
  });

  // The primary is where sign-in codes and reset links go: a contact added later (perhaps by
  // whoever knows only the password) never takes that over while the first one is there.
  it('among verified contacts, takes the one verified first (not the one added first)', () => {
    const old = phone('1', { verified: true, addedAt: T, verifiedAt: T + 5000 });
    const added = phone('2', { verified: true, addedAt: T + 1000, verifiedAt: T + 2000 });
    expect(primaryContact([old, added], 'phone')).toBe(added);
    const proven = phone('3', { verified: true, addedAt: T + 3000, verifiedAt: T + 9000 });
    expect(primaryContact([old, added, proven], 'phone')).toBe(added);
    expect(primaryContact([proven, old, added], 'phone')).toBe(added);
  });

  it('among unverified contacts only, takes the one added first', () => {
    const a = email('a', { addedAt: T + 2000 });
    const b = email('b', { addedAt: T + 1000 });
    expect(primaryContact([a, b], 'email')).toBe(b);
    expect(primaryContact([b, a], 'email')).toBe(b);
  });

  it('on equal times takes the earlier one in the list (lists are oldest first)', () => {
    const first = phone('1', { verified: true, verifiedAt: T });
    const second = phone('2', { verified: true, verifiedAt: T });
    expect(primaryContact([first, second], 'phone')).toBe(first);
    const u1 = email('u1');
    const u2 = email('u2');
    expect(primaryContact([u1, u2], 'email')).toBe(u1);
  });

  it('counts a verified contact without a verification time as verified long ago', () => {
    const undated = phone('1', { verified: true, verifiedAt: null });
    const dated = phone('2', { verified: true, verifiedAt: T });
    expect(primaryContact([dated, undated], 'phone')).toBe(undated);
    expect(primaryContact([undated, phone('3')], 'phone')).toBe(undated);
  });
});

describe('mirrorContacts', () => {
  it('mirrors the primary of each kind with its verified flag', () => {
    const list = [
      phone('1', { value: '+84901111111', verified: true, verifiedAt: T }),
      phone('2', { value: '+84902222222', addedAt: T + 1 }),
      email('a', { value: 'a@example.vn', addedAt: T + 1 }),
    ];
    expect(mirrorContacts(list)).toEqual({ phone: '+84901111111', phoneVerified: true, email: 'a@example.vn', emailVerified: false });
  });

  it('is empty for an empty list', () => {
    expect(mirrorContacts([])).toEqual({ phone: null, phoneVerified: false, email: null, emailVerified: false });
  });
});

describe('contactsFromFields', () => {
  it('makes one contact per field present, with fixed ids, stamped with the given time', () => {
    expect(contactsFromFields({ phone: '+84901234567', phoneVerified: true, email: 'an@example.vn', emailVerified: false }, T)).toEqual([
      { id: 'phone-0', kind: 'phone', value: '+84901234567', verified: true, addedAt: T, verifiedAt: T },
      { id: 'email-0', kind: 'email', value: 'an@example.vn', verified: false, addedAt: T, verifiedAt: null },
    ]);
  });

  it('makes nothing for absent fields (a verified flag without a value is ignored)', () => {
    expect(contactsFromFields({ phone: null, phoneVerified: true, email: null, emailVerified: false }, T)).toEqual([]);
    expect(contactsFromFields({ phone: null, phoneVerified: false, email: 'x@example.vn', emailVerified: true }, T).map((c) => c.id)).toEqual(['email-0']);
  });

  it('mirrors back to the fields it was made from', () => {
    for (const fields of [
      { phone: '+84901234567', phoneVerified: true, email: 'an@example.vn', emailVerified: true },
      { phone: '+84901234567', phoneVerified: false, email: null, emailVerified: false },
      { phone: null, phoneVerified: false, email: 'an@example.vn', emailVerified: false },
    ]) {
      expect(mirrorContacts(contactsFromFields(fields, T))).toEqual(fields);
    }
  });
});
