/**
 * Helpers shared by the protocol tests (protocol-*.test.ts): hand-built authorization URLs (for what
 * a real RP library refuses to send), raw token and userinfo requests, and the usual sign-in to a
 * code with openid-client and the cookie-jar browser.
 */
import { expect } from '@jest/globals';
import * as oidc from 'openid-client';
import { Browser, type Response } from '../helpers/browser.js';
import { authRequest, discover, signIn, type AuthRequest, type Portal } from '../helpers/rp.js';

export interface Endpoints {
  authorization: string;
  token: string;
  userinfo: string;
  jwks: string;
}

export async function endpoints(issuer: string): Promise<Endpoints> {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  const meta = (await res.json()) as Record<string, string>;
  return {
    authorization: meta.authorization_endpoint!,
    token: meta.token_endpoint!,
    userinfo: meta.userinfo_endpoint!,
    jwks: meta.jwks_uri!,
  };
}

export interface Pkce {
  verifier: string;
  challenge: string;
}

export async function pkce(): Promise<Pkce> {
  const verifier = oidc.randomPKCECodeVerifier();
  return { verifier, challenge: await oidc.calculatePKCECodeChallenge(verifier) };
}

/**
 * An authorization URL built by hand. Starts from a complete, valid code-flow request for the portal
 * (PKCE S256, state, nonce, scope openid); `params` overrides it, and an `undefined` value removes
 * the parameter altogether.
 */
export async function rawAuthRequest(
  authorizationEndpoint: string,
  portal: Portal,
  params: Record<string, string | undefined> = {},
): Promise<AuthRequest> {
  const { verifier, challenge } = await pkce();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const all: Record<string, string | undefined> = {
    client_id: portal.client_id,
    redirect_uri: portal.redirect_uri,
    response_type: 'code',
    scope: 'openid',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  };
  const url = new URL(authorizationEndpoint);
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
  return { url, verifier, state: all.state ?? state, nonce: all.nonce ?? nonce };
}

/** Query and fragment parameters of a redirect, together (a code or token in either counts). */
export function redirectParams(location: string): URLSearchParams {
  const url = new URL(location);
  const out = new URLSearchParams(url.search);
  for (const [k, v] of new URLSearchParams(url.hash.replace(/^#/, ''))) out.append(k, v);
  return out;
}

const CREDENTIALS = ['code', 'access_token', 'id_token', 'refresh_token'];

/** The response hands out no code and no token, wherever it might put one. */
export function expectNoCredentials(res: Response): void {
  if (res.location) {
    const params = redirectParams(res.location);
    for (const name of CREDENTIALS) expect(params.has(name)).toBe(false);
  }
  // A form_post response would carry them as hidden inputs (a second-factor page's visible
  // name="code" input is not a credential).
  expect(res.text).not.toMatch(/type="hidden" name="(code|access_token|id_token|refresh_token)"/);
}

/** An error redirect to the portal: `error` set, `state` and `iss` carried back, no credential. */
export function expectErrorRedirect(res: Response, redirectUri: string, error: string, req: { state: string }, issuer: string): URLSearchParams {
  expect(res.status).toBeGreaterThanOrEqual(300);
  expect(res.status).toBeLessThan(400);
  expect(res.location).not.toBeNull();
  const target = new URL(res.location!);
  expect(`${target.origin}${target.pathname}`).toBe(redirectUri.replace(/\?.*$/, ''));
  expectNoCredentials(res);
  const params = redirectParams(res.location!);
  expect(params.get('error')).toBe(error);
  expect(params.get('state')).toBe(req.state);
  expect(params.get('iss')).toBe(issuer);
  return params;
}

/** Our HTML error page: status 400, no Location, no credential. */
export function expectErrorPage(res: Response, error?: string): void {
  expect(res.status).toBe(400);
  expect(res.location).toBeNull();
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(res.text).toContain('role="alert"');
  if (error) expect(res.text).toContain(error);
  expectNoCredentials(res);
}

export interface Json {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** A raw token request, authenticated with client_secret_basic (or not at all when `auth` is null). */
export async function tokenRequest(tokenEndpoint: string, auth: { client_id: string; client_secret: string } | null, fields: Record<string, string>): Promise<Json> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (auth) headers.authorization = basic(auth.client_id, auth.client_secret);
  const res = await fetch(tokenEndpoint, { method: 'POST', headers, body: new URLSearchParams(fields).toString() });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** A raw userinfo request with an optional bearer token. */
export async function userinfoRequest(userinfoEndpoint: string, accessToken?: string): Promise<Json> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (accessToken !== undefined) headers.authorization = `Bearer ${accessToken}`;
  const res = await fetch(userinfoEndpoint, { headers });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { raw: text };
  }
  return { status: res.status, headers: res.headers, body };
}

export interface SignedIn {
  browser: Browser;
  config: oidc.Configuration;
  req: AuthRequest;
  /** The final redirect to the portal (callback URL with code, state and iss). */
  callback: string;
  code: string;
}

/**
 * Signs a person in with openid-client's authorization URL and the cookie-jar browser, accepting
 * consent; returns the callback and its code (the test fails here if no code came back).
 */
export async function signInForCode(
  issuer: string,
  portal: Portal,
  person: { pid: string; password: string },
  extra: Record<string, string> = {},
  browser = new Browser(issuer),
): Promise<SignedIn> {
  const config = await discover(issuer, portal);
  const req = await authRequest(config, portal, { scope: 'openid', ...extra });
  const res = await signIn(browser, req, person);
  expect(res.status).toBe(303);
  expect(res.location).not.toBeNull();
  const params = redirectParams(res.location!);
  expect(params.get('error')).toBeNull();
  const code = params.get('code');
  expect(code).toEqual(expect.any(String));
  return { browser, config, req, callback: res.location!, code: code! };
}

/** Waits (at most about one second) until the clock's epoch second is past `epochSeconds`. */
export async function untilSecondAfter(epochSeconds: number): Promise<void> {
  const target = (epochSeconds + 1) * 1000;
  const wait = target - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 5));
}

export const BASE64URL_128 = /^[A-Za-z0-9_-]{22,}$/;
