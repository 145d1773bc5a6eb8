/** Scopes and the claims each releases (PRODUCT.md, Claims). */
export const BASE_SCOPES = ['openid', 'profile', 'email', 'phone', 'address'] as const;
export const NATIONAL_ID_SCOPE = 'national_id';

export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  // acr, amr and auth_time always accompany the ID token: portals need the true level (PRODUCT.md).
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  profile: ['name', 'family_name', 'given_name', 'birthdate', 'gender'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
  national_id: ['national_id'],
};

/** Extra client metadata properties (our own, namespaced so they never collide with a registered name). */
export const SECTOR_PROPERTY = 'urn:dinhdanh:sector';
export const NATIONAL_ID_PROPERTY = 'urn:dinhdanh:national_id';
