/**
 * Everything that configures oidc-provider. The library owns the protocol; we own interactions,
 * accounts, storage, keys and policy. Every default that matters is set explicitly here.
 */
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { JWK } from 'jose';
import { StoreUnavailableError, type Store } from '../store/index.js';
import type { PortalService } from '../portals/index.js';
import { FAPI_PROPERTY, NATIONAL_ID_PROPERTY, RESOURCE_PROPERTY, SCOPE_CLAIMS, SECTOR_PROPERTY } from '../portals/index.js';
import type { Renderer } from '../http/render.js';
import type { AuditService } from '../audit/index.js';
import type { Telemetry } from '../metrics/telemetry.js';
import { OAUTH_ERROR_EVENTS, endpointOfRoute, oauthErrorLabel } from '../metrics/oauth-errors.js';
import { localeFor } from '../http/locale.js';
import { createAdapterClass } from './adapter.js';
import { ACCOUNT_CLIENT_ID, accountClient, recordSession } from './account-session.js';
import { issuedInForce, tokenIssuedAt } from './access.js';
import { personClaims } from './claims.js';
import { pairwiseSubject } from './pairwise.js';
import type { SessionLike } from './session-lifecycle.js';
import type { LogoutReason } from './backchannel-logout.js';
import type { SignedIn } from '../activity/sign-ins.js';
import type { Context } from 'koa';
import { ORG_SCOPE, orgClaim, organizationPrompt, type OrgContexts } from './org-access.js';
import { ENTERPRISE_CODE_RE } from '../orgs/index.js';
import { ACR_VALUES, HIGH_FRESHNESS_MS, LOA, RANKS, acrRank, requestedRank } from './levels.js';

export const TTL = Object.freeze({
  AuthorizationCode: 60,
  AccessToken: 10 * 60,
  IdToken: 10 * 60,
  Interaction: 60 * 60,
  /** Absolute session lifetime (PRODUCT.md: 12 h). */
  Session: 12 * 60 * 60,
  Grant: 12 * 60 * 60,
  /** Refresh tokens: absolute 12 h from the first issue, across rotations. */
  RefreshTokenAbsolute: 12 * 60 * 60,
  /** ... and 30 days for `offline_access`, only for portals approved for it (PRODUCT.md). */
  OfflineRefreshTokenAbsolute: 30 * 24 * 60 * 60,
});

export const COOKIE_NAMES = Object.freeze({ session: 'dd_session', interaction: 'dd_interaction', resume: 'dd_resume' });

function hostPrefixed(names: typeof COOKIE_NAMES): Record<keyof typeof COOKIE_NAMES, string> {
  return { session: `__Host-${names.session}`, interaction: `__Host-${names.interaction}`, resume: `__Host-${names.resume}` };
}

const ASYMMETRIC_JWS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

export interface ProviderDeps {
  config: Config;
  /** Private signing JWKs, active first (keys/signing-keys.ts); rebuilt into a new provider on rotation. */
  jwks: JWK[];
  cookieKeys: string[];
  store: Store;
  portals: PortalService;
  renderer: Renderer;
  logger: Logger;
  pairwiseSalt: string;
  audit: AuditService;
  /** Clock (epoch ms) for session idle/absolute limits and request-object checks; injectable for tests. */
  now?: () => number;
  /** Told when a session starts and when the expiry check meets an expired one. */
  sessions: SessionHooks;
  /** The SSRF-guarded fetch for portal-supplied URLs (`jwks_uri`, `sector_identifier_uri`). */
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** The enterprise context of a token (issue 5). */
  orgContexts: OrgContexts;
  /** Told when a sign-in finishes (activity/sign-ins.ts: the record of it, the new-browser notice). */
  signedIn?: (ctx: Context, info: SignedIn) => Promise<void>;
  /** Told of tokens issued and OAuth errors answered (metrics/: counts and usage statistics). */
  telemetry?: Telemetry;
}

/**
 * oidc-provider's `fetch`. Its own back-channel logout POSTs (made inline in the sign-out request,
 * once, unrecorded) are answered here without going out: the durable queue delivers them instead
 * (backchannel-logout.ts). The library still validates `backchannel_logout_uri` at registration,
 * advertises support in discovery and puts `sid` in ID tokens. Everything else goes through the
 * SSRF guard; the library's own guard (an undici dispatcher) is replaced by ours, which also
 * honours the configured allow-list.
 */
function providerFetch(guarded: ProviderDeps['fetch']) {
  return async (url: string | URL, options: RequestInit & { dispatcher?: unknown }): Promise<Response> => {
    const body = options.body;
    if ((options.method ?? 'GET').toUpperCase() === 'POST' && body instanceof URLSearchParams && body.has('logout_token')) {
      return new Response(null, { status: 200 });
    }
    const { dispatcher: _ignored, ...init } = options;
    return guarded(String(url), init);
  };
}

export interface SessionHooks {
  started(uid: string, startedAt: number, idleMs: number): Promise<void>;
  expiredInRequest(session: SessionLike, reason?: LogoutReason): Promise<void>;
}

/**
 * Forgets, in this request, who a session was signed in as. oidc-provider writes the request's
 * session back to the store when the request ends, so an ended session must not go back with its
 * person in it; it goes back empty (same cookie), and the sign-in that follows fills it afresh.
 */
function signOutInMemory(session: object): void {
  for (const field of ['accountId', 'loginTs', 'acr', 'amr', 'authorizations', 'transient']) Reflect.deleteProperty(session, field);
  (session as { touched?: boolean }).touched = true;
}

/** Idle limit of an SSO session (PRODUCT.md: 30 minutes). */
export const SESSION_IDLE_MS = 30 * 60_000;
/** Absolute limit of an SSO session from its first sign-in (PRODUCT.md: 12 hours). */
export const SESSION_ABSOLUTE_MS = TTL.Session * 1000;

/**
 * The login prompt, plus two checks of ours:
 * - `session_expired`: the SSO session is idle for 30 minutes or signed in 12 hours ago. Kept as
 *   store counters keyed by the session's uid (one that slides with use, one that does not), read
 *   with the injected clock, so the limits hold on every instance and tests can prove them.
 * - `acr_values_unmet`: the session's level does not satisfy `acr_values`.
 * With `prompt=none`, either answers `login_required` (OIDC Core §3.1.2.6).
 */
function buildPolicy(store: Store, now: () => number, hooks: SessionHooks, signedIn?: ProviderDeps['signedIn']) {
  const { Check } = interactionPolicy;
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  // A session whose person can no longer sign in — locked, removed, or signed in before their
  // access was revoked (findAccount then resolves no account) — ends here, in the store, and the
  // browser is asked to sign in (`login_required` with prompt=none). Without it the library's
  // consent checks would run on a session without an account or grant.
  login.checks.add(
    new Check('account_unavailable', 'the account can no longer use this session', 'login_required', async (ctx: KoaContextWithOIDC) => {
      const session = ctx.oidc.session;
      if (!session?.accountId || ctx.oidc.account || ctx.oidc.result?.login) return Check.NO_NEED_TO_PROMPT;
      await hooks.expiredInRequest(session as unknown as SessionLike, 'account_unavailable');
      signOutInMemory(session);
      return Check.REQUEST_PROMPT;
    }),
  );
  login.checks.add(
    new Check('session_expired', 'the session is idle or too old', 'login_required', async (ctx: KoaContextWithOIDC) => {
      const session = ctx.oidc.session;
      if (!session?.accountId) return Check.NO_NEED_TO_PROMPT;
      const seenKey = `session-seen:${session.uid}`;
      const startKey = `session-start:${session.uid}`;
      const t = now();
      if (ctx.oidc.result?.login) {
        // A sign-in just happened. The idle clock starts again; the absolute one starts only with
        // a new session — a step-up (a code on an existing session) must not extend its life.
        // `session-auth` records when the person last authenticated (for re-authentication windows).
        const start = await store.counters.get(startKey, t);
        await Promise.all([
          start ? Promise.resolve() : store.counters.start(startKey, SESSION_ABSOLUTE_MS, t),
          store.counters.start(seenKey, SESSION_IDLE_MS, t),
          store.counters.start(`session-auth:${session.uid}`, SESSION_ABSOLUTE_MS, t),
        ]);
        if (!start) {
          await hooks.started(session.uid, t, SESSION_IDLE_MS);
          await recordSession(store, session.accountId, { uid: session.uid, startedAt: t, userAgent: ctx.get('user-agent'), ip: ctx.ip }, TTL.Session);
        }
        // When this sign-in used a second factor, `high` stays available for 15 minutes.
        const mfaKey = `session-mfa:${session.uid}`;
        if (ctx.oidc.result.login.amr?.includes('mfa')) await store.counters.start(mfaKey, HIGH_FRESHNESS_MS, t);
        else await store.counters.reset(mfaKey);
        // A consent or enterprise choice carries the login submitted earlier in the same interaction
        // (oidc-interactions.ts, mergeWithLastSubmission): that sign-in was told of already.
        const result = ctx.oidc.result as Record<string, unknown>;
        if (!('consent' in result) && !('organization' in result)) {
          await signedIn?.(ctx, {
            accountId: session.accountId, sessionUid: session.uid, clientId: ctx.oidc.client?.clientId,
            acr: ctx.oidc.result.login.acr, amr: ctx.oidc.result.login.amr ?? [], newSession: !start,
          });
        }
        return Check.NO_NEED_TO_PROMPT;
      }
      const [start, seen, mfa] = await Promise.all([
        store.counters.get(startKey, t),
        store.counters.get(seenKey, t),
        store.counters.get(`session-mfa:${session.uid}`, t),
      ]);
      if (!start || !seen) {
        // Expired (idle or absolute): its portals are told now, not only by the expiry sweep. The
        // ended session goes back empty, like an unavailable account's above: an interaction saved
        // against the record just deleted would fail its login (SessionNotFound) in this browser.
        await hooks.expiredInRequest(session as unknown as SessionLike);
        signOutInMemory(session);
        return Check.REQUEST_PROMPT;
      }
      await store.counters.increment(seenKey, SESSION_IDLE_MS, t, { slide: true });
      // `high` is a second factor in the last 15 minutes (PRODUCT.md): past that the session is
      // worth `substantial`, and tokens say so.
      if (session.acr === LOA.high && !mfa) session.acr = LOA.substantial;
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  // The library's essential_acr(s) checks want the exact value; ours accepts a higher level and
  // reports it truthfully, so they are replaced by one rank-based check.
  login.checks.remove('essential_acrs');
  login.checks.remove('essential_acr');
  login.checks.add(
    new Check('acr_values_unmet', 'the session does not meet the requested level', 'login_required', async (ctx: KoaContextWithOIDC) => {
      const required = requestedRank(ctx.oidc.params?.acr_values, ctx.oidc.claims?.id_token?.acr);
      if (required === 0) return Check.NO_NEED_TO_PROMPT;
      if (acrRank(ctx.oidc.acr) < required) return Check.REQUEST_PROMPT;
      if (required >= RANKS.high && !ctx.oidc.result?.login) {
        const session = ctx.oidc.session;
        const fresh = session && (await store.counters.get(`session-mfa:${session.uid}`, now()));
        if (!fresh) return Check.REQUEST_PROMPT;
      }
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  // Acting for an enterprise: chosen after sign-in, before consent (issue 5).
  policy.add(organizationPrompt(), policy.indexOf(policy.get('consent')!));
  return policy;
}

export { pairwiseSubject };

export function createProvider(deps: ProviderDeps): Provider {
  const { config, store, portals, renderer } = deps;
  const now_ = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'provider' });
  const https = config.issuer.startsWith('https:');

  const configuration: Configuration = {
    adapter: createAdapterClass(store, portals),
    jwks: { keys: deps.jwks } as Configuration['jwks'],
    cookies: {
      keys: deps.cookieKeys,
      // On https every cookie of a sign-in is `__Host-` prefixed: Secure, Path=/, no Domain, so a
      // sibling portal on the parent domain cannot plant one (RFC 6265bis §4.1.3.2). For the session
      // that prevents fixation; for the interaction and resume cookies, a planted pair (signature
      // included, taken from the attacker's own sign-in) would make a victim's browser finish the
      // attacker's sign-in (login CSRF) or type the victim's password into it. Path=/ is required by
      // the prefix: one sign-in at a time per browser (a second one started in another tab takes
      // over, and the first asks to start again). The library pins the resume cookie's path to
      // `/auth/<uid>`; mount.ts moves it to `/`.
      names: https ? hostPrefixed(COOKIE_NAMES) : COOKIE_NAMES,
      long: { httpOnly: true, sameSite: 'lax', overwrite: true },
      short: { httpOnly: true, sameSite: 'lax', overwrite: true, ...(https ? { path: '/' } : {}) },
    },
    acrValues: [...ACR_VALUES],
    claims: {
      acr: null,
      amr: null,
      auth_time: null,
      sid: null,
      ...Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
      // `org` belongs in the ID token too (issue 5), where only `openid` claims go (conformIdTokenClaims).
      // findAccount returns it only for tokens of an authorization made for an enterprise.
      openid: [...SCOPE_CLAIMS.openid!, 'org'],
    },
    // offline_access is granted only to portals whose registration lists it (their `scope`).
    scopes: [...Object.keys(SCOPE_CLAIMS), 'offline_access'],
    responseTypes: ['code'],
    subjectTypes: ['pairwise'],
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: ASYMMETRIC_JWS,
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      requestObjectSigningAlgValues: ASYMMETRIC_JWS,
      userinfoSigningAlgValues: ['RS256', 'ES256'],
      introspectionSigningAlgValues: ['RS256', 'ES256'],
      authorizationSigningAlgValues: ['RS256', 'ES256'],
    } as Configuration['enabledJWA'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      subject_type: 'pairwise',
    },
    extraClientMetadata: {
      properties: [SECTOR_PROPERTY, NATIONAL_ID_PROPERTY, FAPI_PROPERTY, RESOURCE_PROPERTY],
      validator(_ctx, key, value) {
        if (key === SECTOR_PROPERTY && typeof value !== 'string') throw new Error(`${key} must be a string`);
        if ((key === NATIONAL_ID_PROPERTY || key === FAPI_PROPERTY) && value !== undefined && typeof value !== 'boolean') throw new Error(`${key} must be a boolean`);
        if (key === RESOURCE_PROPERTY && value !== undefined && typeof value !== 'string') throw new Error(`${key} must be a string`);
      },
    },
    allowOmittingSingleRegisteredRedirectUri: false,
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      userinfo: { enabled: true },
      requestObjects: {
        enabled: true,
        requireSignedRequestObject: false,
        // Request objects live briefly and name their audience (SECURITY.md #27).
        async assertJwtClaimsAndHeader(_ctx, claims) {
          const now = Math.floor(now_() / 1000);
          if (typeof claims.exp !== 'number' || typeof claims.nbf !== 'number') {
            throw new errors.InvalidRequestObject('request objects must carry exp and nbf');
          }
          if (claims.exp - now > 60 || claims.exp - claims.nbf > 60) {
            throw new errors.InvalidRequestObject('request object lifetime exceeds 60 seconds');
          }
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx) {
          const oidcCtx = ctx as KoaContextWithOIDC;
          const secret = oidcCtx.oidc.session?.state?.secret as string | undefined;
          renderer.render(ctx, 'interactions/logout', localeFor(ctx), (t) => ({
            title: t('logout.title'),
            portalName: oidcCtx.oidc.client?.clientName ?? null,
            action: oidcCtx.oidc.urlFor('end_session_confirm'),
            xsrf: secret ?? '',
          }));
        },
        async postLogoutSuccessSource(ctx) {
          renderer.render(ctx, 'message', localeFor(ctx), (t) => ({
            title: t('logged_out.title'),
            paragraphs: [t('logged_out.body')],
          }));
        },
      },
      // RFC 7662 / RFC 7009: a portal introspects and revokes the tokens issued to it (the
      // library answers `active: false` for anything else, revealing nothing). A disabled portal
      // no longer exists for the provider, so it can neither call nor have live tokens.
      introspection: {
        enabled: true,
        // The portal a token was issued to, and a registered resource server for the tokens whose
        // audience it is (RFC 7662 §2.1: the server decides who may introspect what).
        async allowedPolicy(ctx, client, token) {
          // Who may see it first (no store read): the portal it was issued to, or an API that is its audience.
          const own = token.clientId === client.clientId;
          if (!own) {
            const resource = client.metadata()[RESOURCE_PROPERTY];
            const aud = (token as unknown as { aud?: string | string[] }).aud;
            if (typeof resource !== 'string' || !(aud === resource || (Array.isArray(aud) && aud.includes(resource)))) return false;
            // The portal it was issued to must still exist: a disabled portal's tokens are inactive
            // (and the library would otherwise fail computing its pairwise subject).
            if (!token.clientId || !(await ctx.oidc.provider.Client.find(token.clientId))) return false;
          }
          // A locked (or removed) person's tokens are inactive at once, and so are tokens issued
          // before their access was revoked.
          const accountId = (token as { accountId?: string }).accountId;
          if (accountId) {
            const person = await store.persons.findById(accountId);
            if (!person || person.status !== 'active' || !issuedInForce(person, tokenIssuedAt(token as { iat?: number; iiat?: number }))) return false;
          }
          // A token issued for an enterprise is active only while the person may still act for it.
          return (await deps.orgContexts(token as unknown as Parameters<OrgContexts>[0])) !== undefined;
        },
      },
      revocation: {
        enabled: true,
        async allowedPolicy(_ctx, client, token) {
          return token.clientId === client.clientId;
        },
      },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      // RFC 9126: any portal may push its request; FAPI portals must (their registration says so).
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false, allowUnregisteredRedirectUris: false },
      // RFC 9449: any portal may bind its tokens to a key; FAPI portals must.
      dPoP: { enabled: true },
      // FAPI 2.0 Security Profile per portal (`--fapi`): PKCE, client assertions addressed to the
      // issuer; PAR, private_key_jwt and DPoP come from the portal's registered metadata.
      fapi: {
        enabled: true,
        profile(_ctx: unknown, client: { metadata(): Record<string, unknown> } | undefined) {
          return client?.metadata()[FAPI_PROPERTY] === true ? '2.0' : undefined;
        },
      } as unknown as NonNullable<Configuration['features']>['fapi'],
      // RFC 8707 / RFC 9068: a portal names a registered API with `resource` and receives an access
      // token for it (audience: that API; `sub`: the portal's pairwise subject) — a JWT the API
      // verifies itself, or an opaque token it introspects, as the API was registered. Without
      // `resource`, access tokens are opaque and good for userinfo only.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        // A code obtained with `resource` yields a token for it without naming it again.
        useGrantedResource: async () => true,
        async getResourceServerInfo(ctx, indicator, client) {
          const rs = await portals.findResource(indicator);
          if (!rs) throw new errors.InvalidTarget('unknown resource server');
          // As itself (client credentials) a portal reaches only the APIs that list it.
          if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials' && !rs.clientCredentialsPortals.includes(client.clientId)) {
            throw new errors.InvalidTarget('this portal is not allowed client credentials for this resource server');
          }
          return {
            scope: rs.scopes.join(' '),
            audience: rs.uri,
            accessTokenTTL: TTL.AccessToken,
            accessTokenFormat: rs.tokenFormat,
            ...(rs.tokenFormat === 'jwt' ? { jwt: { sign: { alg: rs.accessTokenAlg } } } : {}),
          };
        },
      },
    },
    fetch: providerFetch(deps.fetch) as unknown as Configuration['fetch'],
    // A portal's key set is small; a sector identifier document is a short list of URIs.
    fetchResponseBodyLimits: { jwks_uri: 64 * 1024, sector_identifier_uri: 16 * 1024 } as Configuration['fetchResponseBodyLimits'],
    ttl: {
      AuthorizationCode: TTL.AuthorizationCode,
      AccessToken: TTL.AccessToken,
      ClientCredentials: TTL.AccessToken,
      IdToken: TTL.IdToken,
      Interaction: TTL.Interaction,
      // oidc-provider re-saves the session with this TTL whenever it changes, which would make the
      // lifetime slide; keeping the expiry makes it absolute. This only bounds storage: the
      // session_expired check enforces the limits (30 min idle, 12 h from the session's start).
      Session(ctx, session) {
        const exp = (session as unknown as { exp?: number }).exp;
        if (typeof exp !== 'number' || ctx?.oidc?.result?.login) return TTL.Session;
        return Math.max(1, exp - Math.floor(Date.now() / 1000));
      },
      Grant(_ctx, grant) {
        const offline = String(grant.getOIDCScope?.() ?? '').split(' ').includes('offline_access');
        return offline ? TTL.OfflineRefreshTokenAbsolute : TTL.Grant;
      },
      RefreshToken(_ctx, token) {
        const iiat = (token as unknown as { iiat?: number; iat?: number }).iiat ?? token.iat ?? Math.floor(Date.now() / 1000);
        const offline = String(token.scope ?? '').split(' ').includes('offline_access');
        const life = offline ? TTL.OfflineRefreshTokenAbsolute : TTL.RefreshTokenAbsolute;
        return Math.max(1, iiat + life - Math.floor(Date.now() / 1000));
      },
    },
    // The account area is dinhdanh itself: its sign-ins need no consent page (the grant is made here).
    clients: [accountClient(config.issuer)] as unknown as Configuration['clients'],
    // Each authorization for an enterprise gets a grant of its own, so the `org` of its tokens is
    // the choice made in it (issue 5: the choice is per authorization).
    extraParams: {
      org_hint(_ctx: unknown, value: unknown) {
        if (value !== undefined && (typeof value !== 'string' || !ENTERPRISE_CODE_RE.test(value))) {
          throw new errors.InvalidRequest('org_hint must be an enterprise code (10 digits, or 10-3 for a branch)');
        }
      },
    } as unknown as Configuration['extraParams'],
    async loadExistingGrant(ctx) {
      if (String(ctx.oidc.params?.scope ?? '').split(' ').includes(ORG_SCOPE) && !ctx.oidc.result?.consent?.grantId) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (ctx.oidc.client!.clientId === ACCOUNT_CLIENT_ID && ctx.oidc.session!.accountId) {
        const grant = new ctx.oidc.provider.Grant({ clientId: ACCOUNT_CLIENT_ID, accountId: ctx.oidc.session!.accountId });
        grant.addOIDCScope('openid');
        await grant.save();
        return grant;
      }
      return undefined;
    },
    rotateRefreshToken: true,
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    pairwiseIdentifier(_ctx, accountId, client) {
      const registered = client.metadata()[SECTOR_PROPERTY];
      const sector = typeof registered === 'string' ? registered : client.sectorIdentifier;
      if (!sector) throw new Error('portal has no sector');
      return pairwiseSubject(deps.pairwiseSalt, String(sector), accountId);
    },
    async findAccount(ctx, accountId, token) {
      const person = await store.persons.findById(accountId);
      if (!person || person.status !== 'active') return undefined;
      // Tokens issued, and sessions signed in, before the person's access was revoked (a lock, a
      // reset of second factors, a lower level) count for nothing, whatever a request in flight
      // wrote back to the store after they were ended. Without a token, the session being
      // resolved is what is checked (its sign-in time).
      const session = ctx.oidc?.session;
      const checked = token ? { issuedAt: tokenIssuedAt(token as { iat?: number; iiat?: number }) } : session?.accountId === accountId ? { issuedAt: session.loginTs } : undefined;
      if (checked && !issuedInForce(person, checked.issuedAt)) return undefined;
      // Tokens issued for an enterprise stop working (invalid_grant at refresh, 401 at userinfo)
      // once the person may no longer act for it.
      const org = await deps.orgContexts(token as unknown as Parameters<OrgContexts>[0]);
      if (org === undefined) return undefined;
      return {
        accountId: person.id,
        async claims(_use, _scope, _claims, _rejected) {
          // `sub` here is replaced by the pairwise value for pairwise portals by oidc-provider.
          const claims = personClaims(person, person.id, ctx.oidc.client ?? undefined);
          return (org ? { ...claims, org: orgClaim(org) } : claims) as { sub: string };
        },
      };
    },
    interactions: {
      policy: buildPolicy(store, now_, deps.sessions, deps.signedIn),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async renderError(ctx, out, error) {
      // The store down is a 503 with a page that says so, not a server error (issue 7).
      if (error instanceof StoreUnavailableError || (error as { cause?: unknown })?.cause instanceof StoreUnavailableError) ctx.status = 503;
      const status = ctx.status >= 400 ? ctx.status : 400;
      if (status >= 500) log.error({ err: error }, 'provider error');
      renderer.render(ctx, 'message', localeFor(ctx), (t) => ({
        title: t('error.title'),
        alert: status === 503 ? t('error.unavailable') : status >= 500 ? t('error.server_error') : t('error.oauth'),
        details: [
          { label: t('error.code'), value: String(out.error) },
          ...(out.error_description && status < 500 ? [{ label: 'error_description', value: String(out.error_description) }] : []),
        ],
      }), status);
    },
    discovery: {
      claim_types_supported: ['normal'],
      ui_locales_supported: ['vi', 'en'],
      service_documentation: `${config.issuer}/`,
    },
    conformIdTokenClaims: true,
    clockTolerance: 15,
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxyHops > 0;

  provider.on('server_error', (_ctx, err) => log.error({ err }, 'provider server_error'));
  provider.on('end_session.success', (ctx: KoaContextWithOIDC) => {
    deps.audit.record('LOGOUT', { portal: ctx.oidc.client?.clientId ?? null });
  });
  const telemetry = deps.telemetry;
  if (telemetry) {
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const grantType = ctx.oidc.params?.grant_type;
      telemetry.grantSucceeded(typeof grantType === 'string' ? grantType : 'other', ctx.oidc.client?.clientId);
    });
    // Only the error code goes further, bounded to the specifications' list: never the request's
    // client id, description or URL (metrics.ts, OAUTH_ERRORS).
    for (const [event, endpoint] of Object.entries(OAUTH_ERROR_EVENTS)) {
      // Event names built from a table: the library's typings list each literal name separately.
      (provider as unknown as NodeJS.EventEmitter).on(event, (_ctx: unknown, err: { error?: unknown } | undefined) => telemetry.oauthError(endpoint, oauthErrorLabel(err?.error)));
    }
    // The library reports a server_error (RFC 6749 §4.1.2.1) by this event instead of its route's.
    provider.on('server_error', (ctx: KoaContextWithOIDC | undefined) => telemetry.oauthError(endpointOfRoute(ctx?.oidc?.route), 'server_error'));
  }
  return provider;
}
