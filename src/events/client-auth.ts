/**
 * Who is calling the stream-management API: a portal, authenticated as at the token endpoint with
 * the method it registered (`token_endpoint_auth_method`), so that no new credential is issued.
 *
 * - client_secret_basic (RFC 6749 §2.3.1): `Authorization: Basic`, the id and secret each
 *   form-encoded; compared in constant time with the portal's secret, or its previous one while a
 *   rotation's grace period runs (portal.service.ts clientMetadata decides which).
 * - private_key_jwt (RFC 7523 §2.2, §3): the client assertion, sent as `Authorization: Bearer`
 *   because the API's bodies are JSON and cannot carry `client_assertion`; signed by one of the
 *   portal's registered keys, `iss` = `sub` = its client id, `aud` the issuer or the endpoint's URL,
 *   expiring within five minutes, each `jti` used once (RFC 7523 §3 item 7).
 *
 * A disabled portal, an unknown one, a resource server (no redirect URI: it signs nobody in) or a
 * portal presenting the other method is refused alike.
 */
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { PortalService } from '../portals/index.js';
import { sameSecret } from '../portals/portal.service.js';
import type { CounterRepository, Portal } from '../store/index.js';

export class ClientAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientAuthError';
  }
}

const ASSERTION_MAX_S = 300;
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** RFC 6749 §2.3.1: each part form-encoded (`+` a space), then Basic (RFC 7617). */
function basicCredentials(value: string): { clientId: string; secret: string } | undefined {
  const pair = Buffer.from(value, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, '%20'));
    return { clientId: decode(pair.slice(0, colon)), secret: decode(pair.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

export function createClientAuth(deps: {
  issuer: string;
  portals: PortalService;
  counters: CounterRepository;
  /** Fetches a portal's jwks_uri (the SSRF guard). */
  fetch: (url: string, init?: RequestInit) => Promise<Response>;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const remote = new Map<string, { set: JWTVerifyGetKey; at: number }>();

  async function usable(clientId: string): Promise<Portal> {
    const portal = await deps.portals.find(clientId);
    const redirects = portal?.metadata.redirect_uris;
    if (!portal || portal.disabled || !Array.isArray(redirects) || redirects.length === 0) throw new ClientAuthError('unknown or disabled client');
    return portal;
  }

  function keysOf(portal: Portal): JWTVerifyGetKey {
    const { jwks, jwks_uri: uri } = portal.metadata as { jwks?: JSONWebKeySet; jwks_uri?: string };
    if (jwks && Array.isArray(jwks.keys)) return createLocalJWKSet(jwks);
    if (typeof uri !== 'string') throw new ClientAuthError('the client has no registered keys');
    const cached = remote.get(uri);
    // Cached five minutes, as jose's own cache would; a rotated key set is read again after it.
    if (cached && now() - cached.at < 5 * 60_000) return cached.set;
    const set = createRemoteJWKSet(new URL(uri), { [customFetch]: (url: string, init: RequestInit) => deps.fetch(url, init) });
    remote.set(uri, { set, at: now() });
    return set;
  }

  return {
    /** The portal calling `endpoint`, or a ClientAuthError. */
    async authenticate(authorization: string | undefined, endpoint: string): Promise<Portal> {
      const [scheme, value, extra] = (authorization ?? '').split(' ');
      if (!scheme || !value || extra !== undefined) throw new ClientAuthError('client authentication required');
      if (scheme.toLowerCase() === 'basic') {
        const creds = basicCredentials(value);
        if (!creds || !creds.secret) throw new ClientAuthError('malformed Basic credentials');
        const portal = await usable(creds.clientId);
        if ((portal.metadata.token_endpoint_auth_method ?? 'client_secret_basic') !== 'client_secret_basic') throw new ClientAuthError('the client authenticates with private_key_jwt');
        const meta = await deps.portals.clientMetadata(creds.clientId, creds.secret);
        if (!meta || typeof meta.client_secret !== 'string' || !sameSecret(meta.client_secret, creds.secret)) throw new ClientAuthError('invalid client credentials');
        return portal;
      }
      if (scheme.toLowerCase() === 'bearer') {
        let claims: ReturnType<typeof decodeJwt>;
        try {
          claims = decodeJwt(value);
        } catch {
          throw new ClientAuthError('the bearer value is not a client assertion');
        }
        if (typeof claims.iss !== 'string' || claims.sub !== claims.iss) throw new ClientAuthError('iss and sub of a client assertion must be the client id');
        const portal = await usable(claims.iss);
        if (portal.metadata.token_endpoint_auth_method !== 'private_key_jwt') throw new ClientAuthError('the client authenticates with client_secret_basic');
        let payload;
        try {
          ({ payload } = await jwtVerify(value, keysOf(portal), {
            issuer: portal.clientId, subject: portal.clientId, audience: [deps.issuer, endpoint], algorithms: ASYMMETRIC,
            requiredClaims: ['exp', 'jti'], currentDate: new Date(now()), clockTolerance: 15,
          }));
        } catch {
          throw new ClientAuthError('invalid client assertion');
        }
        const left = payload.exp! - Math.floor(now() / 1000);
        if (left > ASSERTION_MAX_S || typeof payload.jti !== 'string' || payload.jti.length > 200) throw new ClientAuthError('a client assertion lives at most five minutes and has a jti');
        const used = await deps.counters.increment(`ssf-assertion:${portal.clientId}:${payload.jti}`, (left + 30) * 1000, now());
        if (used.count > 1) throw new ClientAuthError('the client assertion was used already');
        return portal;
      }
      throw new ClientAuthError('unsupported authorization scheme');
    },
  };
}
export type ClientAuth = ReturnType<typeof createClientAuth>;
