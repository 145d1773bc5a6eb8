/**
 * Claims released for a person, by scope (PRODUCT.md, Claims). `national_id` only for portals an
 * operator approved for it (and whose registered scope therefore allows the scope at all).
 */
import type { Person } from '../store/index.js';
import { NATIONAL_ID_PROPERTY } from '../portals/index.js';

export interface ClaimsClient {
  metadata(): Record<string, unknown>;
}

export function personClaims(person: Person, sub: string, client: ClaimsClient | undefined): Record<string, unknown> {
  const approvedForNationalId = client?.metadata()[NATIONAL_ID_PROPERTY] === true;
  return {
    sub,
    name: person.name,
    family_name: person.familyName || undefined,
    given_name: person.givenName,
    birthdate: person.birthdate,
    gender: person.gender,
    ...(person.email ? { email: person.email, email_verified: person.emailVerified } : {}),
    ...(person.phone ? { phone_number: person.phone, phone_number_verified: person.phoneVerified } : {}),
    ...(person.address ? { address: person.address } : {}),
    ...(approvedForNationalId ? { national_id: person.pid } : {}),
  };
}
