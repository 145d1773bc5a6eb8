/**
 * The console is a first-party client of dinhdanh: operators sign in through dinhdanh itself, with
 * the authorization code flow and PKCE (RFC 9700 §2.1.1), at `urn:dinhdanh:loa:high` — identity
 * level 2 and an authenticator app or passkey within the last 15 minutes — and `national_id`, which
 * names the person to look up among the operators (pairwise subjects name no one: OIDC Core §8.1).
 *
 * Its registration is kept in the portal registry under a reserved client id, its secret derived
 * from the cookie keys (HMAC), so every instance sharing those keys registers the same client and
 * the secret is never stored in the clear anywhere else.
 */
import crypto from 'node:crypto';
import * as oidc from 'openid-client';
import type { PortalService, PortalInput } from '../portals/index.js';

export const CONSOLE_CLIENT_ID = 'dinhdanh-console';
export const HIGH = 'urn:dinhdanh:loa:high';

export function consoleClient(deps: { issuer: string; origin: () => string; cookieKeys: readonly string[]; portals: PortalService }) {
  const secret = crypto.createHmac('sha256', deps.cookieKeys[0]!).update('dinhdanh operators\' console client secret').digest('base64url');
  let registered: Promise<void> | undefined;
  let discovered: Promise<oidc.Configuration> | undefined;
  const redirectUri = () => `${deps.origin()}/admin/callback`;

  function input(): PortalInput {
    return {
      name: 'dinhdanh — bảng điều khiển vận hành', redirectUris: [redirectUri()], postLogoutRedirectUris: [`${deps.origin()}/admin/signed-out`],
      backchannelLogoutUri: null, grantTypes: ['authorization_code'], sector: new URL(deps.origin()).hostname,
      nationalId: true, nationalIdBasis: 'dinhdanh\'s own operators\' console (first party): identifies the operator',
      authMethod: 'client_secret_basic', jwksUri: null, jwks: null, fapi: false, offlineAccess: false, idTokenAlg: 'ES256',
    };
  }

  /** Registers (or re-registers when the console's address or keys changed) the console client, once per process. */
  function ensure(): Promise<void> {
    registered ??= (async () => {
      const meta = await deps.portals.clientMetadata(CONSOLE_CLIENT_ID);
      const uris = meta?.redirect_uris as string[] | undefined;
      if (meta && meta.client_secret === secret && uris?.length === 1 && uris[0] === redirectUri()) return;
      await deps.portals.ensure(CONSOLE_CLIENT_ID, input(), { secret });
    })().catch((err: unknown) => {
      registered = undefined;
      throw err;
    });
    return registered;
  }

  function configuration(): Promise<oidc.Configuration> {
    discovered ??= ensure().then(() => oidc.discovery(
      new URL(deps.issuer), CONSOLE_CLIENT_ID, undefined, oidc.ClientSecretBasic(secret),
      new URL(deps.issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
    )).catch((err: unknown) => {
      discovered = undefined;
      throw err;
    });
    return discovered;
  }

  return {
    ensure,
    redirectUri,
    async authorizationUrl(p: { state: string; nonce: string; verifier: string; reauth: boolean; locale: string }): Promise<string> {
      const config = await configuration();
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri(),
        scope: 'openid profile national_id',
        acr_values: HIGH,
        // A dangerous action's step-up: the second factor again, whatever the SSO session holds
        // (OIDC Core §3.1.2.1); otherwise at most 15 minutes old, as loa:high requires. max_age
        // also makes auth_time an ID token claim (OIDC Core §2), from which the console dates the factor.
        ...(p.reauth ? { prompt: 'login', max_age: '0' } : { max_age: '900' }),
        ui_locales: p.locale,
        code_challenge: await oidc.calculatePKCECodeChallenge(p.verifier),
        code_challenge_method: 'S256',
        state: p.state,
        nonce: p.nonce,
      }).href;
    },
    /**
     * Redeems the code; returns who signed in and how, or the OAuth error the provider returned
     * (`unmet_authentication_requirements` when the person cannot reach loa:high).
     */
    async redeem(currentUrl: URL, p: { state: string; nonce: string; verifier: string }): Promise<
      | { ok: true; nationalId: string | null; acr: string | null; amr: string[]; authTime: number; idToken: string }
      | { ok: false; error: string }
    > {
      const config = await configuration();
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: p.verifier, expectedState: p.state, expectedNonce: p.nonce, idTokenExpected: true, maxAge: 900 });
      } catch (err) {
        if (err instanceof oidc.AuthorizationResponseError) return { ok: false, error: /^[a-z_]{1,64}$/.test(err.error) ? err.error : 'invalid_response' };
        if (err instanceof oidc.ResponseBodyError) {
          // A secret that changed under us (keys rotated on another instance): discover again next time.
          discovered = undefined;
          registered = undefined;
          return { ok: false, error: 'token_error' };
        }
        return { ok: false, error: 'invalid_response' };
      }
      const claims = tokens.claims()!;
      const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
      return {
        ok: true,
        nationalId: typeof info.national_id === 'string' ? info.national_id : null,
        acr: typeof claims.acr === 'string' ? claims.acr : null,
        amr: Array.isArray(claims.amr) ? claims.amr.map(String) : [],
        authTime: typeof claims.auth_time === 'number' ? claims.auth_time * 1000 : 0,
        idToken: tokens.id_token!,
      };
    },
    async endSessionUrl(idToken: string): Promise<string> {
      const config = await configuration();
      return oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${deps.origin()}/admin/signed-out` }).href;
    },
  };
}
export type ConsoleClient = ReturnType<typeof consoleClient>;
