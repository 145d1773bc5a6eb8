/**
 * Validation of what an operator registers. Redirect URIs are kept byte-for-byte (they are compared
 * exactly, RFC 9700 §4.1.3); in production they must be https.
 */
import { z } from 'zod';

export interface PortalInput {
  name: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  grantTypes: string[];
  sector: string;
  nationalId: boolean;
  nationalIdBasis: string | null;
}

export class PortalValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortalValidationError';
  }
}

const SUPPORTED_GRANTS = new Set(['authorization_code', 'refresh_token', 'client_credentials']);
const HOST_RE = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;

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
});

export function validatePortalInput(raw: z.input<typeof portalArgsSchema>, options: { production: boolean }): PortalInput {
  const parsed = portalArgsSchema.safeParse(raw);
  if (!parsed.success) throw new PortalValidationError(parsed.error.issues[0]?.message ?? 'invalid portal');
  const args = parsed.data;

  const name = args.name.normalize('NFC').trim();
  if (name.length < 2 || name.length > 120 || /[\p{Cc}<>]/u.test(name)) {
    throw new PortalValidationError('--name must be 2–120 characters, without control characters or angle brackets');
  }
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

  return {
    name,
    redirectUris,
    postLogoutRedirectUris,
    backchannelLogoutUri,
    grantTypes,
    sector,
    nationalId: args.nationalId,
    nationalIdBasis: args.nationalId ? args.legalBasis!.trim() : null,
  };
}
