/** Scopes and the claims each releases (PRODUCT.md, Claims). */
export const BASE_SCOPES = ['openid', 'profile', 'email', 'phone', 'address', 'organization'] as const;
export const NATIONAL_ID_SCOPE = 'national_id';

export const SCOPE_CLAIMS: Readonly<Record<string, readonly string[]>> = {
  // acr, amr and auth_time always accompany the ID token: portals need the true level (PRODUCT.md).
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  profile: ['name', 'family_name', 'given_name', 'birthdate', 'gender'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
  national_id: ['national_id'],
  // The enterprise the person chose to act for in this authorization (issue 5).
  organization: ['org'],
};

/** Extra client metadata properties (our own, namespaced so they never collide with a registered name). */
export const SECTOR_PROPERTY = 'urn:dinhdanh:sector';
export const NATIONAL_ID_PROPERTY = 'urn:dinhdanh:national_id';
export const FAPI_PROPERTY = 'urn:dinhdanh:fapi';
export const OFFLINE_ACCESS_PROPERTY = 'urn:dinhdanh:offline_access';
/** On a resource server's record: its indicator, scopes, portals allowed client credentials, token alg. */
export const RESOURCE_PROPERTY = 'urn:dinhdanh:resource';
export const RESOURCE_SCOPES_PROPERTY = 'urn:dinhdanh:resource_scopes';
export const RESOURCE_CC_PORTALS_PROPERTY = 'urn:dinhdanh:resource_cc_portals';
export const RESOURCE_ALG_PROPERTY = 'urn:dinhdanh:resource_alg';
export const RESOURCE_FORMAT_PROPERTY = 'urn:dinhdanh:resource_token_format';
export const OFFLINE_ACCESS_BASIS_PROPERTY = 'urn:dinhdanh:offline_access_basis';
