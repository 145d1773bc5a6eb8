/**
 * The load generator's HTTP side: keep-alive requests over loopback as the TLS proxy would pass them
 * on (`X-Forwarded-Proto: https`, `X-Forwarded-Host`, `X-Forwarded-For`), a browser with a cookie
 * jar for the sign-in, and the portal's back-channel calls. No OpenID Connect library: the client
 * does the least work it can (it shares the machine with the server), and checks only what tells
 * a success from a failure.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import { BENCH_HOST, BENCH_ISSUER, type BenchPerson, type BenchPortal } from './protocol.js';

export interface Target {
  name: string;
  port: number;
  portal: BenchPortal;
  persons: BenchPerson[];
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class BenchError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'BenchError';
  }
}

/** One keep-alive connection pool to a target; `ip` is the client address the proxy reports. */
export class Client {
  readonly basic: string;

  constructor(readonly target: Target, readonly agent: http.Agent) {
    const { client_id: id, client_secret: secret } = target.portal;
    this.basic = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  }

  send(method: string, path: string, headers: Record<string, string>, body?: string, ip = '203.0.113.10'): Promise<Res> {
    return new Promise((resolve, reject) => {
      const all: Record<string, string | number> = {
        'x-forwarded-proto': 'https', 'x-forwarded-host': BENCH_HOST, 'x-forwarded-for': ip, ...headers,
      };
      if (body !== undefined) all['content-length'] = Buffer.byteLength(body);
      const req = http.request({ host: '127.0.0.1', port: this.target.port, method, path, headers: all, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(60_000, () => req.destroy(new BenchError('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** A portal back end calling the token endpoint (client_secret_basic). */
  tokenRequest(params: Record<string, string>): Promise<Res> {
    return this.send('POST', '/token', { authorization: this.basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, new URLSearchParams(params).toString());
  }
}

export interface Tokens {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
}

export function parseTokens(res: Res, what: string): Tokens {
  if (res.status !== 200) throw new BenchError(`${what}: ${res.status} ${res.body.slice(0, 200)}`, res.status);
  const json = JSON.parse(res.body) as Partial<Tokens>;
  if (typeof json.access_token !== 'string') throw new BenchError(`${what}: no access_token`);
  return json as Tokens;
}

function decodeEntities(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

function formOf(html: string): { action: string; hidden: Record<string, string> } {
  const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
  if (action === undefined) throw new BenchError('no form on the page');
  const hidden: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) hidden[m[1]!] = decodeEntities(m[2]!);
  return { action: decodeEntities(action), hidden };
}

const b64 = (n: number) => crypto.randomBytes(n).toString('base64url');

/**
 * A citizen in a new browser (an empty cookie jar) signing in at the portal: authorization request
 * (PKCE S256), the login page, the password with the page's CSRF token and the interaction cookies,
 * the consent page when asked (the first time at this portal), the code back at the portal; then
 * the portal redeems the code and reads userinfo. Returns the tokens and whether consent was asked.
 */
export async function signIn(client: Client, person: BenchPerson, ip: string): Promise<{ tokens: Tokens; consent: boolean }> {
  const jar = new Map<string, string>();
  const { portal } = client.target;
  const browser = async (method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<Res> => {
    const headers: Record<string, string> = { 'user-agent': 'Mozilla/5.0 (dinhdanh-bench)', 'accept-language': 'vi', accept: 'text/html' };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = BENCH_ISSUER;
      headers['sec-fetch-site'] = 'same-origin';
    }
    const res = await client.send(method, path, headers, form ? new URLSearchParams(form).toString() : undefined, ip);
    for (const line of res.headers['set-cookie'] ?? []) {
      const pair = line.slice(0, line.indexOf(';') === -1 ? undefined : line.indexOf(';'));
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };

  const verifier = b64(32);
  const state = b64(16);
  const query = new URLSearchParams({
    client_id: portal.client_id, redirect_uri: portal.redirect_uri, response_type: 'code', scope: 'openid profile',
    state, nonce: b64(16), code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  });
  let res = await browser('GET', `/auth?${query}`);
  let code: string | undefined;
  let consent = false;
  let loggedIn = false;
  for (let step = 0; step < 16 && code === undefined; step += 1) {
    if (res.status >= 300 && res.status < 400 && res.headers.location) {
      const loc = new URL(res.headers.location, BENCH_ISSUER);
      if (loc.origin === BENCH_ISSUER) {
        res = await browser('GET', loc.pathname + loc.search);
        continue;
      }
      if (`${loc.origin}${loc.pathname}` !== portal.redirect_uri) throw new BenchError(`redirected to ${loc.origin}${loc.pathname}`);
      if (loc.searchParams.get('state') !== state) throw new BenchError(`state mismatch (${loc.searchParams.get('error') ?? 'no error'})`);
      code = loc.searchParams.get('code') ?? undefined;
      if (!code) throw new BenchError(`no code: ${loc.searchParams.get('error')} ${loc.searchParams.get('error_description')}`);
      break;
    }
    if (res.status === 200 && res.body.includes('name="password"')) {
      if (loggedIn) throw new BenchError('the password was refused');
      loggedIn = true;
      const form = formOf(res.body);
      res = await browser('POST', new URL(form.action, BENCH_ISSUER).pathname, { ...form.hidden, identifier: person.pid, password: person.password });
      continue;
    }
    if (res.status === 200 && res.body.includes('name="decision"')) {
      if (consent) throw new BenchError('consent asked twice');
      consent = true;
      const form = formOf(res.body);
      res = await browser('POST', new URL(form.action, BENCH_ISSUER).pathname, { ...form.hidden, decision: 'allow' });
      continue;
    }
    throw new BenchError(`sign-in stopped at ${res.status}: ${res.body.replace(/\s+/g, ' ').slice(0, 300)}`, res.status);
  }
  if (!code) throw new BenchError('too many redirects');
  const tokens = parseTokens(await client.tokenRequest({
    grant_type: 'authorization_code', code, redirect_uri: portal.redirect_uri, code_verifier: verifier,
  }), 'code redemption');
  if (!tokens.id_token) throw new BenchError('no id_token');
  const info = await client.send('GET', '/me', { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json' });
  if (info.status !== 200) throw new BenchError(`userinfo after sign-in: ${info.status}`, info.status);
  return { tokens, consent };
}
