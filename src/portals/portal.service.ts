/**
 * The relying-party registry. Portals are registered by operators (CLI) and read by oidc-provider
 * through the adapter. Secrets are generated here, shown once, and kept encrypted at rest.
 */
import crypto from 'node:crypto';
import type { Portal, PortalRepository } from '../store/index.js';
import type { SecretBox } from '../keys/secret-box.js';
import { BASE_SCOPES, NATIONAL_ID_SCOPE } from './scopes.js';
import type { PortalInput } from './portal.validation.js';

export interface RegisteredPortal {
  client_id: string;
  client_secret: string | null;
}

export interface PortalSummary {
  client_id: string;
  name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri: string | null;
  grant_types: string[];
  sector: string;
  national_id: boolean;
  disabled: boolean;
  created_at: string;
}

export interface PortalService {
  register(input: PortalInput): Promise<RegisteredPortal>;
  list(): Promise<PortalSummary[]>;
  find(clientId: string): Promise<Portal | undefined>;
  /** oidc-provider client metadata (secret included), or undefined for unknown or disabled portals. */
  clientMetadata(clientId: string): Promise<Record<string, unknown> | undefined>;
}

const secretAad = (clientId: string) => `portal-secret:${clientId}`;

export function summarise(p: Portal): PortalSummary {
  const m = p.metadata as { redirect_uris?: string[]; post_logout_redirect_uris?: string[]; grant_types?: string[]; backchannel_logout_uri?: string };
  return {
    client_id: p.clientId,
    name: p.name,
    redirect_uris: m.redirect_uris ?? [],
    post_logout_redirect_uris: m.post_logout_redirect_uris ?? [],
    backchannel_logout_uri: m.backchannel_logout_uri ?? null,
    grant_types: m.grant_types ?? [],
    sector: p.sector,
    national_id: p.nationalId,
    disabled: p.disabled,
    created_at: new Date(p.createdAt).toISOString(),
  };
}

export function createPortalService(deps: { repo: PortalRepository; secretBox: SecretBox; random?: (n: number) => Buffer }): PortalService {
  const random = deps.random ?? crypto.randomBytes;

  return {
    async register(input) {
      const clientId = `portal-${random(12).toString('base64url')}`;
      // 256 bits: far above RFC 6749 §10.10's 128-bit guidance for credentials.
      const secret = random(32).toString('base64url');
      const scopes = input.nationalId ? [...BASE_SCOPES, NATIONAL_ID_SCOPE] : [...BASE_SCOPES];
      const metadata: Record<string, unknown> = {
        client_name: input.name,
        redirect_uris: input.redirectUris,
        post_logout_redirect_uris: input.postLogoutRedirectUris,
        grant_types: input.grantTypes,
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        subject_type: 'pairwise',
        scope: scopes.join(' '),
        id_token_signed_response_alg: 'RS256',
        ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
      };
      await deps.repo.create({
        clientId,
        name: input.name,
        metadata,
        secretCiphertext: deps.secretBox.seal(secret, secretAad(clientId)),
        sector: input.sector,
        nationalId: input.nationalId,
        nationalIdBasis: input.nationalIdBasis,
        disabled: false,
      });
      return { client_id: clientId, client_secret: secret };
    },

    async list() {
      return (await deps.repo.list()).map(summarise);
    },

    find: (clientId) => deps.repo.find(clientId),

    async clientMetadata(clientId) {
      const portal = await deps.repo.find(clientId);
      if (!portal || portal.disabled) return undefined;
      return {
        ...portal.metadata,
        client_id: portal.clientId,
        ...(portal.secretCiphertext ? { client_secret: deps.secretBox.open(portal.secretCiphertext, secretAad(clientId)) } : {}),
        'urn:dinhdanh:sector': portal.sector,
        'urn:dinhdanh:national_id': portal.nationalId,
      };
    },
  };
}
