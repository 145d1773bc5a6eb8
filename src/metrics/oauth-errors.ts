/**
 * The closed sets of the `endpoint` and `error` labels of dinhdanh_oauth_errors_total, kept apart
 * from metrics.ts so that provider/ can bound what it reports without loading prom-client.
 */

/**
 * The OAuth error codes a protocol endpoint answers with: RFC 6749 §4.1.2.1 and §5.2, RFC 6750
 * §3.1, OpenID Connect Core §3.1.2.6, and the later specifications oidc-provider implements
 * (RFC 7009 §2.2.1 revocation, RFC 8707 §2 resource indicators, RFC 9126 PAR, RFC 9449 §5 and §8
 * DPoP, RFC 9396 rich authorization requests, RFC 9470 step-up). Anything else is `other`.
 */
export const OAUTH_ERRORS = new Set([
  'invalid_request', 'unauthorized_client', 'access_denied', 'unsupported_response_type', 'invalid_scope', 'server_error',
  'temporarily_unavailable', 'invalid_client', 'invalid_grant', 'unsupported_grant_type',
  'invalid_token', 'insufficient_scope',
  'interaction_required', 'login_required', 'account_selection_required', 'consent_required', 'invalid_request_uri',
  'invalid_request_object', 'request_not_supported', 'request_uri_not_supported', 'registration_not_supported',
  'unsupported_token_type', 'invalid_target', 'invalid_dpop_proof', 'use_dpop_nonce', 'invalid_authorization_details',
  'unmet_authentication_requirements', 'invalid_redirect_uri', 'invalid_client_metadata', 'expired_login_hint_token',
  'authorization_pending', 'slow_down', 'expired_token',
]);

/** oidc-provider's error events (its `<route>.error`) by the endpoint they are counted under. */
export const OAUTH_ERROR_EVENTS: Readonly<Record<string, string>> = Object.freeze({
  'authorization.error': 'authorization',
  'grant.error': 'token',
  'userinfo.error': 'userinfo',
  'introspection.error': 'introspection',
  'revocation.error': 'revocation',
  'pushed_authorization_request.error': 'par',
  'end_session.error': 'end_session',
  'end_session_confirm.error': 'end_session',
  'end_session_success.error': 'end_session',
  'discovery.error': 'other',
  'jwks.error': 'other',
});

/** oidc-provider's route names (`ctx.oidc.route`) by endpoint, for its `server_error` event, which names none. */
const ROUTE_ENDPOINTS: Readonly<Record<string, string>> = Object.freeze({
  authorization: 'authorization',
  resume: 'authorization',
  token: 'token',
  userinfo: 'userinfo',
  introspection: 'introspection',
  revocation: 'revocation',
  pushed_authorization_request: 'par',
  end_session: 'end_session',
  end_session_confirm: 'end_session',
  end_session_success: 'end_session',
});

export function endpointOfRoute(route: unknown): string {
  return typeof route === 'string' && Object.hasOwn(ROUTE_ENDPOINTS, route) ? ROUTE_ENDPOINTS[route]! : 'other';
}

export function oauthErrorLabel(error: unknown): string {
  return typeof error === 'string' && OAUTH_ERRORS.has(error) ? error : 'other';
}

