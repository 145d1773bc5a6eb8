/**
 * A real relying party (openid-client 6) driving a browser through dinhdanh.
 */
import * as oidc from 'openid-client';
import { Browser, formAction, hiddenField, type Response } from './browser.js';

export interface Portal {
  client_id: string;
  client_secret: string;
  redirect_uri: string;
}

/** `fetch` replaces the relying party's HTTP client for every call (e.g. one trusting a test CA). */
export async function discover(issuer: string, portal: Portal, options: { fetch?: typeof fetch } = {}): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), portal.client_id, portal.client_secret, undefined, {
    // Plain http only for the loopback test servers; an https issuer gets no such allowance.
    execute: new URL(issuer).protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
    ...(options.fetch ? { [oidc.customFetch]: options.fetch } : {}),
  });
}

export interface AuthRequest {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

export async function authRequest(config: oidc.Configuration, portal: Portal, extra: Record<string, string> = {}): Promise<AuthRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: portal.redirect_uri,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

/** Signs in with a password on the login page, accepts consent if asked; returns the final redirect. */
export async function signIn(browser: Browser, req: AuthRequest, creds: { pid: string; password: string }, options: { consent?: 'allow' | 'deny' } = {}): Promise<Response> {
  let res = await browser.get(req.url.href);
  if (res.status === 200 && res.text.includes('name="identifier"')) {
    res = await browser.post(new URL(formAction(res.text), req.url).href, {
      _csrf: hiddenField(res.text, '_csrf'),
      identifier: creds.pid,
      password: creds.password,
    });
  }
  if (res.status === 200 && res.text.includes('name="decision"')) {
    res = await browser.post(new URL(formAction(res.text), req.url).href, {
      _csrf: hiddenField(res.text, '_csrf'),
      decision: options.consent ?? 'allow',
    });
  }
  return res;
}

export async function redeem(config: oidc.Configuration, req: AuthRequest, callback: string) {
  return oidc.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: req.verifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
    idTokenExpected: true,
  });
}
