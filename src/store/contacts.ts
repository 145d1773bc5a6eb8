/**
 * How a person's contact list and its mirrored fields relate, the same in every backend.
 *
 * `Person.phone`/`email` (with their verified flags) are the primary contact of each kind: what
 * portals receive as `phone_number`/`email` and where sign-in codes and account-reset links go. The
 * primary is the contact of its kind verified first, else the one added first: a number added
 * with the password alone never takes over where codes go (whoever knows only the password cannot
 * redirect the second factor or recovery to themselves). A changed number becomes the primary once
 * the old one is removed — which needs a sign-in with a second factor (account/profile.controller.ts).
 */
import type { Contact, ContactKind } from './types.js';

export interface ContactFields {
  phone: string | null;
  phoneVerified: boolean;
  email: string | null;
  emailVerified: boolean;
}

/** The primary contact of a kind (see above), or undefined when there is none. */
export function primaryContact(contacts: readonly Contact[], kind: ContactKind): Contact | undefined {
  let best: Contact | undefined;
  for (const c of contacts) {
    if (c.kind !== kind) continue;
    if (!best) best = c;
    else if (c.verified !== best.verified) best = c.verified ? c : best;
    else if (c.verified ? (c.verifiedAt ?? 0) < (best.verifiedAt ?? 0) : c.addedAt < best.addedAt) best = c;
  }
  return best;
}

/** The mirrored fields of a contact list. */
export function mirrorContacts(contacts: readonly Contact[]): ContactFields {
  const phone = primaryContact(contacts, 'phone');
  const email = primaryContact(contacts, 'email');
  return {
    phone: phone?.value ?? null,
    phoneVerified: phone?.verified ?? false,
    email: email?.value ?? null,
    emailVerified: email?.verified ?? false,
  };
}

/**
 * The list a person has when only the fields are known: a person created without a list, or a row
 * written before lists existed (read as this list until its first change). The ids are fixed, so a
 * form naming such a contact still finds it after a reload.
 */
export function contactsFromFields(fields: ContactFields, at: number): Contact[] {
  const list: Contact[] = [];
  if (fields.phone) list.push({ id: 'phone-0', kind: 'phone', value: fields.phone, verified: fields.phoneVerified, addedAt: at, verifiedAt: fields.phoneVerified ? at : null });
  if (fields.email) list.push({ id: 'email-0', kind: 'email', value: fields.email, verified: fields.emailVerified, addedAt: at, verifiedAt: fields.emailVerified ? at : null });
  return list;
}
