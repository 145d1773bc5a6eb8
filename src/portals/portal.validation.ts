/**
 * Validation of what an operator registers. Redirect URIs are kept byte-for-byte (they are compared
 * exactly, RFC 9700 §4.1.3); in production they must be https.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { BASE_SCOPES, NATIONAL_ID_SCOPE } from './scopes.js';

export interface PortalInput {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  grantTypes: string[];
  sector: string;
  nationalId: boolean;
  nationalIdBasis: string | null;
  /** How the portal authenticates at the token, PAR, introspection and revocation endpoints. */
  authMethod: AuthMethod;
  /** private_key_jwt: where its public keys are (one of the two). */
  jwksUri: string | null;
  jwks: { keys: Record<string, unknown>[] } | null;
  /** FAPI 2.0 Security Profile: PAR, PKCE, private_key_jwt and DPoP-bound tokens required. */
  fapi: boolean;
  /** Approved for `offline_access`: refresh tokens that outlive the session (30 days at most). */
  offlineAccess: boolean;
  /** ID token (and logout token) signing algorithm. */
  idTokenAlg: SigningAlg;
}

export type AuthMethod = 'client_secret_basic' | 'private_key_jwt';
export type SigningAlg = 'RS256' | 'ES256';
const AUTH_METHODS = new Set<string>(['client_secret_basic', 'private_key_jwt']);
const SIGNING_ALGS = new Set<string>(['RS256', 'ES256']);

export class PortalValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortalValidationError';
  }
}

const SUPPORTED_GRANTS = new Set(['authorization_code', 'refresh_token', 'client_credentials']);
const HOST_RE = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;

/** The name citizens see on the consent page: NFC, trimmed, 2–120 characters, nothing markup-like. */
function checkName(raw: string): string {
  const name = raw.normalize('NFC').trim();
  if (name.length < 2 || name.length > 120 || /[\p{Cc}<>]/u.test(name)) {
    throw new PortalValidationError('--name must be 2–120 characters, without control characters or angle brackets');
  }
  return name;
}

/**
 * A URL dinhdanh posts to on a portal's behalf (a back-channel logout URI, a security events push
 * endpoint): the same rules as checkUri below; returns it as given.
 */
export function validateEndpointUrl(label: string, value: string, production: boolean): string {
  return checkUri(label, value, production).href;
}

function checkUri(label: string, value: string, production: boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PortalValidationError(`${label} "${value}" is not an absolute URL`);
  }
  if (url.href !== value && `${url.href}` !== value) {
    // URL normalised the input (case, default port, dot segments): registering the normalised
    // form silently would make the portal's own value fail the exact match later.
    throw new PortalValidationError(`${label} "${value}" is not in canonical form; register "${url.href}"`);
  }
  if (url.hash) throw new PortalValidationError(`${label} must not contain a fragment`);
  if (url.username || url.password) throw new PortalValidationError(`${label} must not contain credentials`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new PortalValidationError(`${label} must be an http(s) URL`);
  }
  if (url.protocol === 'http:') {
    const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
    if (production || !loopback) {
      throw new PortalValidationError(`${label} must use https (http is allowed only for localhost in development)`);
    }
  }
  return url;
}

export const portalArgsSchema = z.object({
  name: z.string(),
  redirectUris: z.array(z.string()).min(1, 'at least one --redirect-uri is required'),
  postLogoutRedirectUris: z.array(z.string()).default([]),
  backchannelLogoutUri: z.string().optional(),
  grantTypes: z.array(z.string()).default([]),
  public: z.boolean().default(false),
  nationalId: z.boolean().default(false),
  legalBasis: z.string().optional(),
  sector: z.string().optional(),
  authMethod: z.string().optional(),
  jwksUri: z.string().optional(),
  /** A parsed JWKS document (the CLI reads it from --jwks-file). */
  jwks: z.unknown().optional(),
  fapi: z.boolean().default(false),
  offlineAccess: z.boolean().default(false),
  signingAlg: z.string().optional(),
});

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/**
 * A portal's own public keys, for private_key_jwt (RFC 7523) and request objects: asymmetric,
 * public members only (a private key pasted here would be a leaked key), RSA of 2048 bits or more,
 * distinct `kid`s, and each one importable.
 */
export function validatePortalJwks(value: unknown): { keys: Record<string, unknown>[] } {
  const doc = value as { keys?: unknown };
  if (typeof value !== 'object' || value === null || !Array.isArray(doc.keys) || doc.keys.length === 0 || doc.keys.length > 10) {
    throw new PortalValidationError('the JWKS must be a JSON object {"keys": [...]} with 1 to 10 public keys');
  }
  const kids = new Set<string>();
  const keys = doc.keys.map((raw, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PortalValidationError(`JWKS key #${i + 1} is not an object`);
    const jwk = raw as Record<string, unknown>;
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') {
      throw new PortalValidationError(`JWKS key #${i + 1}: kty must be RSA, EC or OKP (symmetric keys are not accepted)`);
    }
    const leaked = PRIVATE_MEMBERS.filter((m) => m in jwk);
    if (leaked.length) {
      throw new PortalValidationError(`JWKS key #${i + 1} contains private key material (${leaked.join(', ')}): register the public key only, and replace this key pair — it has been exposed`);
    }
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new PortalValidationError(`JWKS key #${i + 1}: use must be "sig"`);
    if (jwk.kid !== undefined) {
      if (typeof jwk.kid !== 'string' || !jwk.kid || jwk.kid.length > 128) throw new PortalValidationError(`JWKS key #${i + 1}: kid must be a short string`);
      if (kids.has(jwk.kid)) throw new PortalValidationError(`JWKS key #${i + 1}: kid "${jwk.kid}" is used twice`);
      kids.add(jwk.kid);
    }
    let key: crypto.KeyObject;
    try {
      key = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
    } catch {
      throw new PortalValidationError(`JWKS key #${i + 1} is not a valid ${String(jwk.kty)} public key`);
    }
    if (jwk.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw new PortalValidationError(`JWKS key #${i + 1}: RSA keys must have at least 2048 bits`);
    }
    return jwk;
  });
  return { keys };
}

export function validatePortalInput(raw: z.input<typeof portalArgsSchema>, options: { production: boolean }): PortalInput {
  const parsed = portalArgsSchema.safeParse(raw);
  if (!parsed.success) throw new PortalValidationError(parsed.error.issues[0]?.message ?? 'invalid portal');
  const args = parsed.data;

  const name = checkName(args.name);
  if (args.public) {
    // Public clients authenticate with `none`, which this provider does not offer (discovery must
    // advertise no `none`; SECURITY.md #1). Native and browser apps use a back end (BFF) instead.
    throw new PortalValidationError('--public is not supported: every portal authenticates to the token endpoint; give the portal a back end that keeps the client secret');
  }

  const redirectUris = [...new Set(args.redirectUris)];
  const urls = redirectUris.map((u) => checkUri('--redirect-uri', u, options.production));
  const postLogoutRedirectUris = [...new Set(args.postLogoutRedirectUris)];
  postLogoutRedirectUris.forEach((u) => checkUri('--post-logout-redirect-uri', u, options.production));
  // Back-Channel Logout 1.0 §2.2: an absolute URL, no fragment; https outside loopback development.
  // Whether its address may be reached is checked at each delivery (the SSRF guard), where DNS is.
  const backchannelLogoutUri = args.backchannelLogoutUri === undefined
    ? null
    : checkUri('--backchannel-logout-uri', args.backchannelLogoutUri, options.production).href;

  const grantTypes = args.grantTypes.length ? [...new Set(args.grantTypes)] : ['authorization_code'];
  for (const g of grantTypes) {
    if (!SUPPORTED_GRANTS.has(g)) {
      throw new PortalValidationError(`--grant-type ${g} is not supported; use authorization_code, refresh_token or client_credentials`);
    }
  }
  if (!grantTypes.includes('authorization_code')) grantTypes.unshift('authorization_code');

  let sector: string;
  if (args.sector !== undefined) {
    sector = args.sector.toLowerCase();
    if (!HOST_RE.test(sector)) throw new PortalValidationError('--sector must be a host name such as portal.example.gov.vn');
  } else {
    const hosts = new Set(urls.map((u) => u.host));
    if (hosts.size > 1) {
      throw new PortalValidationError(`the redirect URIs span several hosts (${[...hosts].join(', ')}): give --sector <host> so the portal keeps one pairwise subject per person`);
    }
    sector = urls[0]!.host;
  }

  if (args.nationalId && !args.legalBasis?.trim()) {
    throw new PortalValidationError('--national-id needs --legal-basis "<the legal instrument that allows this portal to receive the identification number>"');
  }

  const fapi = args.fapi;
  const authMethod = args.authMethod ?? (fapi || args.jwksUri !== undefined || args.jwks !== undefined ? 'private_key_jwt' : 'client_secret_basic');
  if (!AUTH_METHODS.has(authMethod)) {
    throw new PortalValidationError(`--auth-method ${authMethod} is not supported; use client_secret_basic or private_key_jwt`);
  }
  let jwksUri: string | null = null;
  let jwks: PortalInput['jwks'] = null;
  if (authMethod === 'private_key_jwt') {
    if ((args.jwksUri === undefined) === (args.jwks === undefined)) {
      throw new PortalValidationError('--auth-method private_key_jwt needs the portal\'s public keys: give either --jwks-uri <url> or --jwks-file <file>');
    }
    if (args.jwksUri !== undefined) jwksUri = checkUri('--jwks-uri', args.jwksUri, options.production).href;
    else jwks = validatePortalJwks(args.jwks);
  } else if (args.jwksUri !== undefined || args.jwks !== undefined) {
    throw new PortalValidationError('--jwks-uri and --jwks-file are for --auth-method private_key_jwt');
  }
  if (fapi && authMethod !== 'private_key_jwt') {
    throw new PortalValidationError('--fapi requires --auth-method private_key_jwt (FAPI 2.0 Security Profile §5.3.2.1)');
  }

  // FAPI 2.0 allows PS256, ES256 and EdDSA only: its portals' ID tokens are ES256.
  const idTokenAlg = args.signingAlg ?? (fapi ? 'ES256' : 'RS256');
  if (!SIGNING_ALGS.has(idTokenAlg)) throw new PortalValidationError(`--signing-alg ${idTokenAlg} is not supported; use RS256 or ES256`);
  if (fapi && idTokenAlg === 'RS256') throw new PortalValidationError('--fapi portals cannot use RS256 (FAPI 2.0 §5.4: PS256, ES256 or EdDSA); use --signing-alg ES256');

  if (args.offlineAccess && !grantTypes.includes('refresh_token')) {
    throw new PortalValidationError('--offline-access needs --grant-type refresh_token');
  }

  return {
    name,
    redirectUris,
    postLogoutRedirectUris,
    backchannelLogoutUri,
    grantTypes,
    sector,
    nationalId: args.nationalId,
    nationalIdBasis: args.nationalId ? args.legalBasis!.trim() : null,
    authMethod: authMethod as AuthMethod,
    jwksUri,
    jwks,
    fapi,
    offlineAccess: args.offlineAccess,
    idTokenAlg: idTokenAlg as SigningAlg,
  };
}

/** A resource server (an API that accepts dinhdanh access tokens, RFC 8707 / RFC 9068). */
export interface ResourceInput {
  name: string;
  /** The resource indicator: an absolute https URI without fragment or query. */
  uri: string;
  scopes: string[];
  /** Portals allowed to obtain tokens for it by client credentials (as themselves). */
  clientCredentialsPortals: string[];
  accessTokenAlg: SigningAlg;
  /**
   * `jwt` (RFC 9068): the API verifies tokens itself against the JWKS, and they cannot be revoked
   * before their 10 minutes end; `opaque`: the API introspects each token, so revocation, a
   * disabled portal or an ended delegation take effect at once.
   */
  tokenFormat: 'jwt' | 'opaque';
}

const RESERVED_SCOPES = new Set<string>([...BASE_SCOPES, NATIONAL_ID_SCOPE, 'offline_access', 'organization']);
const SCOPE_RE = /^[a-z0-9][a-z0-9:._-]{0,63}$/;
export const CLIENT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export const resourceArgsSchema = z.object({
  name: z.string(),
  uri: z.string(),
  scopes: z.array(z.string()).min(1, 'at least one --scope is required'),
  clientCredentialsPortals: z.array(z.string()).default([]),
  signingAlg: z.string().optional(),
  tokenFormat: z.string().optional(),
});

export function validateResourceInput(raw: z.input<typeof resourceArgsSchema>, options: { production: boolean }): ResourceInput {
  const parsed = resourceArgsSchema.safeParse(raw);
  if (!parsed.success) throw new PortalValidationError(parsed.error.issues[0]?.message ?? 'invalid resource server');
  const args = parsed.data;
  const name = checkName(args.name);
  const url = checkUri('--uri', args.uri, options.production);
  // RFC 8707 §2: an absolute URI, no fragment, and no query (it identifies the API, not a call).
  if (url.search) throw new PortalValidationError('--uri must not contain a query (RFC 8707 §2)');
  const scopes = [...new Set(args.scopes)];
  for (const scope of scopes) {
    if (!SCOPE_RE.test(scope)) throw new PortalValidationError(`--scope ${JSON.stringify(scope)}: use lower-case letters, digits and : . _ - (at most 64)`);
    if (RESERVED_SCOPES.has(scope)) throw new PortalValidationError(`--scope ${scope} is an OpenID Connect scope of dinhdanh, not an API's`);
  }
  if (scopes.length > 20) throw new PortalValidationError('at most 20 scopes per resource server');
  const portals = [...new Set(args.clientCredentialsPortals)];
  for (const p of portals) if (!CLIENT_ID_RE.test(p)) throw new PortalValidationError(`--client-credentials-portal ${JSON.stringify(p)} is not a client id`);
  const alg = args.signingAlg ?? 'RS256';
  if (!SIGNING_ALGS.has(alg)) throw new PortalValidationError(`--signing-alg ${alg} is not supported; use RS256 or ES256`);
  const tokenFormat = args.tokenFormat ?? 'jwt';
  if (tokenFormat !== 'jwt' && tokenFormat !== 'opaque') throw new PortalValidationError(`--token-format ${tokenFormat} is not supported; use jwt or opaque`);
  return { name, uri: url.href, scopes, clientCredentialsPortals: portals, accessTokenAlg: alg as SigningAlg, tokenFormat };
}
