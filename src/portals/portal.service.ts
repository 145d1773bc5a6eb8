/**
 * The relying-party registry. Portals are registered by operators (CLI) and read by oidc-provider
 * through the adapter. Secrets are generated here, shown once, and kept encrypted at rest.
 *
 * Resource servers (APIs that accept dinhdanh access tokens) live in the same registry: each is a
 * client that can only authenticate, to introspect the tokens meant for it.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Portal, PortalRepository } from '../store/index.js';
import type { SecretBox } from '../keys/secret-box.js';
import {
  BASE_SCOPES, FAPI_PROPERTY, NATIONAL_ID_SCOPE, OFFLINE_ACCESS_PROPERTY, RESOURCE_ALG_PROPERTY, RESOURCE_CC_PORTALS_PROPERTY,
  RESOURCE_FORMAT_PROPERTY, RESOURCE_PROPERTY, RESOURCE_SCOPES_PROPERTY, OFFLINE_ACCESS_BASIS_PROPERTY,
} from './scopes.js';
import { PortalValidationError, type PortalInput, type ResourceInput, type SigningAlg } from './portal.validation.js';

export interface RegisteredPortal {
  client_id: string;
  /** null for portals that authenticate with their own keys (private_key_jwt). */
  client_secret: string | null;
}

export interface PortalSummary {
  client_id: string;
  name: string;
  kind: 'portal' | 'resource_server';
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  grant_types: string[];
  auth_method: string;
  jwks_uri: string | null;
  fapi: boolean;
  offline_access: boolean;
  offline_access_basis: string | null;
  id_token_alg: string;
  sector: string;
  national_id: boolean;
  disabled: boolean;
  created_at: string;
  /** Resource servers only. */
  resource?: string;
  scopes?: string[];
  token_format?: 'jwt' | 'opaque';
}

export interface ResourceServer {
  clientId: string;
  name: string;
  uri: string;
  scopes: string[];
  clientCredentialsPortals: string[];
  accessTokenAlg: SigningAlg;
  tokenFormat: 'jwt' | 'opaque';
}

export interface PortalService {
  register(input: PortalInput): Promise<RegisteredPortal>;
  /**
   * Registers a portal under a chosen client id, or re-registers it (new metadata and secret):
   * the development demo portals, which come back with the same id at every start.
   */
  ensure(clientId: string, input: PortalInput, options?: { secret?: string }): Promise<RegisteredPortal>;
  registerResource(input: ResourceInput): Promise<RegisteredPortal & { resource: string }>;
  /**
   * An operator's approval of what a portal may receive (issue 6), with the legal basis recorded:
   * `national_id`, or `offline_access` (which needs the refresh_token grant).
   */
  approve(clientId: string, what: 'national_id' | 'offline_access', legalBasis: string): Promise<Portal>;
  findResource(uri: string): Promise<ResourceServer | undefined>;
  list(): Promise<PortalSummary[]>;
  find(clientId: string): Promise<Portal | undefined>;
  /**
   * oidc-provider client metadata (secret included), or undefined for unknown or disabled portals.
   * Kept in this process per portal while its revision in the store stays the same: each call
   * reads that one number, so an operator's change (a disabled portal, a new secret) holds at the
   * next request on every instance, without decrypting the secret on every request (issue 8).
   * The same object is returned while it holds; callers must not change it.
   *
   * `presentedSecret` is the client secret the current request authenticates with, if any. When it
   * is the portal's previous secret (portal-admin.ts rotateSecret) and its grace period has not
   * ended, the metadata returned carries that secret instead of the current one, so that
   * oidc-provider, which compares exactly one secret per client, accepts it; the use is logged (at
   * most hourly per portal). Any other presented secret gets the current metadata (and is refused).
   */
  clientMetadata(clientId: string, presentedSecret?: string): Promise<Record<string, unknown> | undefined>;
}

/** The secret box's associated data for a portal's client secret: a ciphertext opens only as that portal's. */
export const portalSecretAad = (clientId: string) => `portal-secret:${clientId}`;
const secretAad = portalSecretAad;

/** A new client secret: 256 bits, far above RFC 6749 §10.10's 128-bit guidance for credentials. */
export function newClientSecret(random: (n: number) => Buffer = crypto.randomBytes): string {
  return random(32).toString('base64url');
}

/**
 * Equality of two secrets in time independent of where they differ and of their lengths: SHA-256
 * first, so timingSafeEqual compares equal-length digests (RFC 6749 §10.10 asks servers not to
 * leak credentials through timing).
 */
export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
  return crypto.timingSafeEqual(digest(a), digest(b));
}

/** A resource server's client id follows from its URI, so a token request finds it without a scan. */
export function resourceClientId(uri: string): string {
  return `rs-${crypto.createHash('sha256').update(uri).digest('base64url').slice(0, 32)}`;
}

export function summarise(p: Portal): PortalSummary {
  const m = p.metadata as Record<string, unknown> & {
    redirect_uris?: string[]; post_logout_redirect_uris?: string[]; grant_types?: string[]; backchannel_logout_uri?: string;
    token_endpoint_auth_method?: string; jwks_uri?: string; id_token_signed_response_alg?: string;
  };
  const resource = typeof m[RESOURCE_PROPERTY] === 'string' ? (m[RESOURCE_PROPERTY] as string) : undefined;
  return {
    client_id: p.clientId,
    name: p.name,
    kind: resource ? 'resource_server' : 'portal',
    redirect_uris: m.redirect_uris ?? [],
    post_logout_redirect_uris: m.post_logout_redirect_uris ?? [],
    backchannel_logout_uri: m.backchannel_logout_uri ?? null,
    grant_types: m.grant_types ?? [],
    auth_method: m.token_endpoint_auth_method ?? 'client_secret_basic',
    jwks_uri: m.jwks_uri ?? null,
    fapi: m[FAPI_PROPERTY] === true,
    offline_access: m[OFFLINE_ACCESS_PROPERTY] === true,
    offline_access_basis: typeof m[OFFLINE_ACCESS_BASIS_PROPERTY] === 'string' ? (m[OFFLINE_ACCESS_BASIS_PROPERTY] as string) : null,
    id_token_alg: m.id_token_signed_response_alg ?? 'RS256',
    sector: p.sector,
    national_id: p.nationalId,
    disabled: p.disabled,
    created_at: new Date(p.createdAt).toISOString(),
    ...(resource ? { resource, scopes: (m[RESOURCE_SCOPES_PROPERTY] as string[] | undefined) ?? [], token_format: m[RESOURCE_FORMAT_PROPERTY] === 'opaque' ? 'opaque' : 'jwt' } : {}),
  };
}

/** oidc-provider client metadata for a validated registration (secrets excluded). */
function portalMetadata(input: PortalInput): Record<string, unknown> {
  const scopes: string[] = [...BASE_SCOPES];
  if (input.nationalId) scopes.push(NATIONAL_ID_SCOPE);
  if (input.offlineAccess) scopes.push('offline_access');
  return {
    client_name: input.name,
    redirect_uris: input.redirectUris,
    post_logout_redirect_uris: input.postLogoutRedirectUris,
    grant_types: input.grantTypes,
    response_types: ['code'],
    token_endpoint_auth_method: input.authMethod,
    ...(input.jwksUri ? { jwks_uri: input.jwksUri } : {}),
    ...(input.jwks ? { jwks: input.jwks } : {}),
    subject_type: 'pairwise',
    scope: scopes.join(' '),
    id_token_signed_response_alg: input.idTokenAlg,
    ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
    // FAPI 2.0 Security Profile §5.3.2.2 (PAR), §5.3.2.1 (sender-constrained tokens: DPoP here;
    // mTLS would need the client certificate, which the TLS-terminating proxy does not pass on).
    ...(input.fapi ? { [FAPI_PROPERTY]: true, require_pushed_authorization_requests: true, dpop_bound_access_tokens: true } : {}),
    ...(input.offlineAccess ? { [OFFLINE_ACCESS_PROPERTY]: true } : {}),
  };
}

export function createPortalService(deps: {
  repo: PortalRepository;
  secretBox: SecretBox;
  random?: (n: number) => Buffer;
  /** The clock the end of a previous secret's grace period is read on. */
  now?: () => number;
  /** Where a portal still authenticating with its previous secret is reported (clientMetadata). */
  logger?: Pick<Logger, 'warn'>;
}): PortalService {
  const now = deps.now ?? Date.now;
  /**
   * A portal still using its previous secret is logged at most once an hour per portal (and
   * instance): enough for operators to see which portals have not moved before the grace period
   * ends, without a line, or an audit append in the store, on every token request it makes. The
   * rotation itself is in the audit log (PORTAL_SECRET_ROTATED).
   */
  const previousSecretLogged = new Map<string, number>();
  function reportPreviousSecret(clientId: string, validUntil: number): void {
    const t = now();
    const last = previousSecretLogged.get(clientId);
    if (last !== undefined && t - last < 3_600_000) return;
    previousSecretLogged.set(clientId, t);
    deps.logger?.warn(
      { portal: clientId, previous_valid_until: new Date(validUntil).toISOString() },
      'a portal authenticated with its previous client secret: it must move to the new one before the grace period ends',
    );
  }
  /**
   * Per portal and revision: its metadata, and its previous secret while a rotation's grace period
   * may still run (opened once per revision, like the current one), with the metadata that carries
   * it, made when first needed.
   */
  interface CachedClient {
    revision: number;
    metadata: Record<string, unknown> | undefined;
    previous?: { secret: string; expiresAt: number; metadata?: Record<string, unknown> };
  }
  const clientCache = new Map<string, CachedClient>();
  function previousOf(portal: Portal): CachedClient['previous'] {
    const previous = portal.previousSecret;
    if (!previous || previous.expiresAt <= now()) return undefined;
    try {
      return { secret: deps.secretBox.open(previous.ciphertext, secretAad(portal.clientId)), expiresAt: previous.expiresAt };
    } catch {
      // A previous secret that no data key opens any more is simply not accepted: the portal
      // still authenticates with its current one, which is what the rotation asked for.
      return undefined;
    }
  }
  function clientMetadataOf(portal: Portal): Record<string, unknown> | undefined {
    if (portal.disabled) return undefined;
    const {
      [RESOURCE_SCOPES_PROPERTY]: _scopes, [RESOURCE_CC_PORTALS_PROPERTY]: _cc, [RESOURCE_ALG_PROPERTY]: _alg, [OFFLINE_ACCESS_PROPERTY]: _offline, [OFFLINE_ACCESS_BASIS_PROPERTY]: _offlineBasis,
      [RESOURCE_FORMAT_PROPERTY]: _format,
      ...metadata
    } = portal.metadata;
    return Object.freeze({
      ...metadata,
      client_id: portal.clientId,
      ...(portal.secretCiphertext ? { client_secret: deps.secretBox.open(portal.secretCiphertext, secretAad(portal.clientId)) } : {}),
      'urn:dinhdanh:sector': portal.sector,
      'urn:dinhdanh:national_id': portal.nationalId,
    });
  }
  const random = deps.random ?? crypto.randomBytes;
  const newSecret = () => newClientSecret(random);

  async function save(clientId: string, input: PortalInput, replace: boolean, given?: string): Promise<RegisteredPortal> {
    const secret = input.authMethod === 'client_secret_basic' ? (given ?? newSecret()) : null;
    const secretCiphertext = secret ? deps.secretBox.seal(secret, secretAad(clientId)) : null;
    const metadata = portalMetadata(input);
    if (replace && (await deps.repo.update(clientId, { name: input.name, metadata, secretCiphertext }))) {
      return { client_id: clientId, client_secret: secret };
    }
    await deps.repo.create({
      clientId,
      name: input.name,
      metadata,
      secretCiphertext,
      sector: input.sector,
      nationalId: input.nationalId,
      nationalIdBasis: input.nationalIdBasis,
      disabled: false,
    });
    return { client_id: clientId, client_secret: secret };
  }

  return {
    register: (input) => save(`portal-${random(12).toString('base64url')}`, input, false),
    ensure: (clientId, input, options) => save(clientId, input, true, options?.secret),

    async registerResource(input) {
      const clientId = resourceClientId(input.uri);
      const secret = newSecret();
      await deps.repo.create({
        clientId,
        name: input.name,
        metadata: {
          client_name: input.name,
          redirect_uris: [],
          grant_types: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
          [RESOURCE_PROPERTY]: input.uri,
          [RESOURCE_SCOPES_PROPERTY]: input.scopes,
          [RESOURCE_CC_PORTALS_PROPERTY]: input.clientCredentialsPortals,
          [RESOURCE_ALG_PROPERTY]: input.accessTokenAlg,
          [RESOURCE_FORMAT_PROPERTY]: input.tokenFormat,
        },
        secretCiphertext: deps.secretBox.seal(secret, secretAad(clientId)),
        sector: new URL(input.uri).host,
        nationalId: false,
        nationalIdBasis: null,
        disabled: false,
      });
      return { client_id: clientId, client_secret: secret, resource: input.uri };
    },

    async approve(clientId, what, legalBasis) {
      const portal = await deps.repo.find(clientId);
      if (!portal || portal.metadata[RESOURCE_PROPERTY]) throw new PortalValidationError(`no portal with client_id ${clientId}`);
      const basis = legalBasis.normalize('NFC').trim();
      if (basis.length < 5 || basis.length > 500 || /\p{Cc}/u.test(basis)) throw new PortalValidationError('--legal-basis must name the legal instrument (5–500 characters)');
      const scopes = new Set(String(portal.metadata.scope ?? '').split(' ').filter(Boolean));
      scopes.add(what);
      if (what === 'national_id') {
        await deps.repo.setNationalId(clientId, basis, { ...portal.metadata, scope: [...scopes].join(' ') });
      } else {
        if (!(portal.metadata.grant_types as string[] | undefined)?.includes('refresh_token')) {
          throw new PortalValidationError('offline_access needs a portal registered with --grant-type refresh_token');
        }
        // The metadata only: writing back the secret read above would undo a rotation made meanwhile.
        await deps.repo.updateMetadata(clientId, { ...portal.metadata, scope: [...scopes].join(' '), [OFFLINE_ACCESS_PROPERTY]: true, [OFFLINE_ACCESS_BASIS_PROPERTY]: basis });
      }
      return (await deps.repo.find(clientId))!;
    },

    async findResource(uri) {
      const portal = await deps.repo.find(resourceClientId(uri));
      const m = portal?.metadata;
      if (!portal || portal.disabled || !m || m[RESOURCE_PROPERTY] !== uri) return undefined;
      return {
        clientId: portal.clientId,
        name: portal.name,
        uri,
        scopes: (m[RESOURCE_SCOPES_PROPERTY] as string[] | undefined) ?? [],
        clientCredentialsPortals: (m[RESOURCE_CC_PORTALS_PROPERTY] as string[] | undefined) ?? [],
        accessTokenAlg: m[RESOURCE_ALG_PROPERTY] === 'ES256' ? 'ES256' : 'RS256',
        tokenFormat: m[RESOURCE_FORMAT_PROPERTY] === 'opaque' ? 'opaque' : 'jwt',
      };
    },

    async list() {
      return (await deps.repo.list()).map(summarise);
    },

    find: (clientId) => deps.repo.find(clientId),

    async clientMetadata(clientId, presentedSecret) {
      // Read the revision first: a change that lands between the two reads is then seen as a
      // newer revision at the next request, never hidden behind the older one.
      const revision = await deps.repo.revision(clientId);
      if (revision === undefined) {
        clientCache.delete(clientId);
        return undefined;
      }
      let cached = clientCache.get(clientId);
      if (cached?.revision !== revision) {
        const portal = await deps.repo.find(clientId);
        if (!portal) return undefined;
        const metadata = clientMetadataOf(portal);
        cached = { revision, metadata, previous: metadata && previousOf(portal) };
        clientCache.set(clientId, cached);
      }
      const { metadata, previous } = cached;
      // The previous secret counts only while its grace period runs (expiresAt is its first
      // instant refused), and only for a request that presents exactly it.
      if (!metadata || presentedSecret === undefined || !previous || previous.expiresAt <= now() || !sameSecret(presentedSecret, previous.secret)) {
        return metadata;
      }
      reportPreviousSecret(clientId, previous.expiresAt);
      previous.metadata ??= Object.freeze({ ...metadata, client_secret: previous.secret });
      return previous.metadata;
    },
  };
}
