/**
 * One demo portal: a small Koa app that is a real OpenID Connect relying party of dinhdanh
 * (openid-client 6), built the way the README's "Integrating a portal" tells an integrator to:
 * authorization code flow with PKCE S256, state and nonce kept server-side, the ID token and
 * userinfo read, RP-initiated logout with `id_token_hint`, and a back-channel logout endpoint that
 * validates the logout token (Back-Channel Logout 1.0 §2.6) and ends the matching local sessions.
 *
 * Local sessions live in memory, keyed by a random cookie (httpOnly, SameSite=Lax). Development
 * only: startDemo (demo.ts) refuses to run in production.
 */
import crypto from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import getRawBody from 'raw-body';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import { STYLESHEET, errorPage, homePage, signedOutPage, type PortalLook, type ReceivedEvent, type SignedIn } from './pages.js';
import { EVENT, EVENTS_SUPPORTED, SSF_PUSH } from '../events/event-types.js';

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Local sessions end after this long unused (dinhdanh's own SSO session ends sooner). */
const SESSION_IDLE_MS = 12 * 3600_000;
/** An authorization request must come back within this. */
const PENDING_MS = 10 * 60_000;
/** Bounds memory: the oldest sessions go first. */
const MAX_SESSIONS = 10_000;
const BODY_LIMIT = 16 * 1024;

export interface DemoPortalOptions extends PortalLook {
  /** This portal's own origin, e.g. `http://localhost:3001` (its redirect URIs are built on it). */
  baseUrl: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  cookieName: string;
  logger: Logger;
  now?: () => number;
}

interface LocalSession {
  id: string;
  lastSeen: number;
  csrf: string;
  pending?: { state: string; nonce: string; verifier: string; at: number };
  user?: SignedIn & { idToken: string };
  /** When dinhdanh ended this session by back-channel logout (shown on the home page). */
  endedByBackchannelAt?: number;
  /** When a security event (session-revoked, account-disabled) ended it, and which. */
  endedByEvent?: { at: number; type: string };
}

export interface DemoPortal {
  app: Koa;
  /**
   * Subscribes to dinhdanh's security events (SSF 1.0 §8.1.1: a push stream to this portal's
   * /ssf/events, every event type) and asks for a verification event; tries again while dinhdanh
   * is not answering yet. Resolves with the stream id, or undefined once it gives up.
   */
  subscribe(): Promise<string | undefined>;
  /** The security events received, newest first (tests and the page). */
  events(): readonly ReceivedEvent[];
  /** Signed-in local sessions (tests and the banner). */
  signedIn(): number;
}

const random = () => crypto.randomBytes(32).toString('base64url');

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

class InvalidLogoutToken extends Error {}

/** A SET this portal refuses, with RFC 8935 §2.3's error code. */
class InvalidSet extends Error {
  constructor(readonly err: string, message: string) {
    super(message);
  }
}

export function createDemoPortal(options: DemoPortalOptions): DemoPortal {
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'demo', portal: options.clientId });
  const look: PortalLook = { name: options.name, key: options.key, peer: options.peer };
  const redirectUri = `${options.baseUrl}/callback`;
  const postLogoutRedirectUri = `${options.baseUrl}/signed-out`;
  const sessions = new Map<string, LocalSession>();
  const seenJti = new Map<string, number>();

  // Discovery happens at the first request that needs it: dinhdanh may start listening after us.
  // A failure is not cached, so the next request tries again.
  let discovered: Promise<oidc.Configuration> | undefined;
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  function configuration(): Promise<oidc.Configuration> {
    discovered ??= oidc.discovery(
      new URL(options.issuer),
      options.clientId,
      undefined,
      oidc.ClientSecretBasic(options.clientSecret),
      // http only because the issuer is http://localhost in development.
      new URL(options.issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
    ).catch((err: unknown) => {
      discovered = undefined;
      throw err;
    });
    return discovered;
  }

  function prune(): void {
    const t = now();
    for (const [id, s] of sessions) if (t - s.lastSeen > SESSION_IDLE_MS) sessions.delete(id);
    while (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
    for (const [jti, exp] of seenJti) if (exp < t) seenJti.delete(jti);
  }

  function setCookie(ctx: Koa.Context, value: string): void {
    ctx.cookies.set(options.cookieName, value, { httpOnly: true, sameSite: 'lax', path: '/', overwrite: true, signed: false });
  }

  function current(ctx: Koa.Context): LocalSession | undefined {
    const id = ctx.cookies.get(options.cookieName);
    const session = id ? sessions.get(id) : undefined;
    if (!session) return undefined;
    if (now() - session.lastSeen > SESSION_IDLE_MS) {
      sessions.delete(session.id);
      return undefined;
    }
    session.lastSeen = now();
    return session;
  }

  function create(ctx: Koa.Context): LocalSession {
    prune();
    const session: LocalSession = { id: random(), lastSeen: now(), csrf: random() };
    sessions.set(session.id, session);
    setCookie(ctx, session.id);
    return session;
  }

  /** A new cookie value at sign-in: a value planted before it (session fixation) signs no one in. */
  function renew(ctx: Koa.Context, session: LocalSession): void {
    sessions.delete(session.id);
    session.id = random();
    session.csrf = random();
    sessions.set(session.id, session);
    setCookie(ctx, session.id);
  }

  function page(ctx: Koa.Context, body: string, status = 200): void {
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = body;
  }

  /** Back-Channel Logout 1.0 §2.6. */
  /** dinhdanh's issuer and signing keys, from its discovery document. */
  async function issuerKeys(): Promise<{ issuer: string; keys: ReturnType<typeof createRemoteJWKSet> }> {
    const metadata = (await configuration()).serverMetadata();
    if (!metadata.jwks_uri) throw new Error('the issuer publishes no jwks_uri');
    jwks ??= createRemoteJWKSet(new URL(metadata.jwks_uri));
    return { issuer: metadata.issuer, keys: jwks };
  }

  async function validateLogoutToken(token: string): Promise<{ sid?: string; sub?: string }> {
    const metadata = await issuerKeys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, metadata.keys, {
        issuer: metadata.issuer,
        audience: options.clientId,
        typ: 'logout+jwt',
        algorithms: ['RS256', 'ES256'],
        requiredClaims: ['iat', 'jti'],
        maxTokenAge: '5 minutes',
        clockTolerance: 60,
        currentDate: new Date(now()),
      }));
    } catch (err) {
      // A token that does not verify is refused (400, final); dinhdanh's keys being out of reach is
      // our failure (5xx), and dinhdanh retries the delivery later.
      if (err instanceof joseErrors.JOSEError && !(err instanceof joseErrors.JWKSTimeout)) throw new InvalidLogoutToken(err.message);
      throw err;
    }
    const events = payload.events as Record<string, unknown> | undefined;
    if (typeof events !== 'object' || events === null || Array.isArray(events) || typeof events[BACKCHANNEL_LOGOUT_EVENT] !== 'object') {
      throw new InvalidLogoutToken('events does not contain the back-channel logout event');
    }
    if ('nonce' in payload) throw new InvalidLogoutToken('a logout token must not contain a nonce');
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    if (!sid && !sub) throw new InvalidLogoutToken('a logout token needs sid or sub');
    // A token is used once (§2.6 allows refusing a replayed jti).
    const jti = String(payload.jti);
    if (seenJti.has(jti)) throw new InvalidLogoutToken('this logout token was already used');
    seenJti.set(jti, now() + 10 * 60_000);
    return { sid, sub };
  }

  const received: ReceivedEvent[] = [];

  /**
   * A receiver's checks of a SET (RFC 8417 §2, SSF 1.0 §4.1): signed by dinhdanh's keys, typed
   * `secevent+jwt`, from dinhdanh, for this portal, no `sub` and no `exp`, one event, each jti once.
   */
  async function validateSet(token: string): Promise<{ type: string; event: Record<string, unknown>; subject: Record<string, unknown>; txn?: string }> {
    const metadata = await issuerKeys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, metadata.keys, { issuer: metadata.issuer, typ: 'secevent+jwt', algorithms: ['RS256', 'ES256'], requiredClaims: ['iat', 'jti'], currentDate: new Date(now()) }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEError && !(err instanceof joseErrors.JWKSTimeout)) throw new InvalidSet('authentication_failed', err.message);
      throw err;
    }
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!aud.includes(options.clientId)) throw new InvalidSet('invalid_audience', 'this SET is for another portal');
    if ('sub' in payload || 'exp' in payload) throw new InvalidSet('invalid_request', 'an SSF SET carries neither sub nor exp');
    const events = payload.events as Record<string, Record<string, unknown>> | undefined;
    const types = events && typeof events === 'object' ? Object.keys(events) : [];
    if (types.length !== 1 || typeof events![types[0]!] !== 'object') throw new InvalidSet('invalid_request', 'a SET carries one event');
    const subject = payload.sub_id as Record<string, unknown> | undefined;
    if (!subject || typeof subject !== 'object') throw new InvalidSet('invalid_request', 'no sub_id');
    const jti = String(payload.jti);
    if (seenJti.has(jti)) throw new InvalidSet('invalid_request', 'this SET was received already');
    seenJti.set(jti, now() + 24 * 3600_000);
    return { type: types[0]!, event: events![types[0]!]!, subject, txn: typeof payload.txn === 'string' ? payload.txn : undefined };
  }

  /** Ends this portal's sessions of a person (`sub`), or only the one whose dinhdanh `sid` is given. */
  function endSessions(sub: unknown, sid: unknown, type: string): number {
    let ended = 0;
    for (const session of sessions.values()) {
      const user = session.user;
      if (!user || user.sub !== sub || (typeof sid === 'string' && user.sid !== sid)) continue;
      delete session.user;
      session.endedByEvent = { at: now(), type };
      ended += 1;
    }
    return ended;
  }

  async function subscribe(): Promise<string | undefined> {
    const auth = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${options.issuer}${path}`, { method, headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      const text = await res.text();
      return { status: res.status, json: (text ? JSON.parse(text) : undefined) as { stream_id?: string } & Array<{ stream_id?: string }> };
    };
    const config = { events_requested: EVENTS_SUPPORTED, delivery: { method: SSF_PUSH, endpoint_url: `${options.baseUrl}/ssf/events` }, description: options.name };
    for (let attempt = 0; attempt < 15; attempt += 1) {
      try {
        let made = await call('POST', '/ssf/stream', config);
        // A stream from an earlier start: pointed at this start's address.
        if (made.status === 409) {
          const id = (await call('GET', '/ssf/stream')).json[0]?.stream_id;
          made = await call('PUT', '/ssf/stream', { stream_id: id, ...config });
        }
        const id = made.json?.stream_id;
        if ((made.status === 200 || made.status === 201) && id) {
          await call('POST', '/ssf/verify', { stream_id: id, state: random().slice(0, 16) });
          log.info({ stream: id }, 'demo portal: subscribed to security events');
          return id;
        }
        log.warn({ status: made.status }, 'demo portal: security event stream refused');
        return undefined;
      } catch {
        // dinhdanh not listening yet.
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    return undefined;
  }

  /** A capped application/x-www-form-urlencoded body, or undefined when it is not one. */
  async function readForm(ctx: Koa.Context): Promise<URLSearchParams | undefined> {
    if (ctx.request.type !== 'application/x-www-form-urlencoded') return undefined;
    try {
      return new URLSearchParams(await getRawBody(ctx.req, { limit: BODY_LIMIT, encoding: 'utf8', length: ctx.request.length }));
    } catch {
      return undefined;
    }
  }

  const router = new Router();

  router.get('/', (ctx) => {
    const session = current(ctx);
    page(ctx, homePage(look, { user: session?.user, csrf: session?.csrf, endedByBackchannelAt: session?.endedByBackchannelAt, endedByEvent: session?.endedByEvent, events: received }));
  });

  router.get('/demo.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = STYLESHEET;
  });

  // Browsers ask for it on every page; nothing to show.
  router.get('/favicon.ico', (ctx) => {
    ctx.status = 204;
  });

  router.get('/login', async (ctx) => {
    const config = await configuration();
    const session = current(ctx) ?? create(ctx);
    const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier(), at: now() };
    session.pending = pending;
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const session = current(ctx);
    const pending = session?.pending;
    if (!session || !pending || now() - pending.at > PENDING_MS) {
      page(ctx, errorPage(look, 'Không tìm thấy yêu cầu đăng nhập', 'Yêu cầu đăng nhập này đã hết hạn, đã được dùng, hoặc được mở trong một trình duyệt khác. Hãy đăng nhập lại.'), 400);
      return;
    }
    // Used once, whatever the outcome.
    delete session.pending;
    const config = await configuration();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, new URL(ctx.originalUrl, options.baseUrl), {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      if (err instanceof oidc.AuthorizationResponseError) {
        const denied = err.error === 'access_denied';
        page(ctx, errorPage(look, 'Đăng nhập không thành công', denied ? 'Bạn đã từ chối chia sẻ thông tin với cổng này.' : 'dinhdanh đã trả về một lỗi.', err.error), 400);
        return;
      }
      log.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'demo sign-in failed');
      page(ctx, errorPage(look, 'Đăng nhập không thành công', 'Phản hồi đăng nhập không hợp lệ. Hãy đăng nhập lại.'), 400);
      return;
    }
    const claims = tokens.claims()!;
    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    session.user = {
      name: typeof info.name === 'string' ? info.name : null,
      sub: claims.sub,
      acr: typeof claims.acr === 'string' ? claims.acr : null,
      amr: Array.isArray(claims.amr) ? claims.amr.map(String) : [],
      sid: typeof claims.sid === 'string' ? claims.sid : null,
      signedInAt: now(),
      idToken: tokens.id_token!,
    };
    delete session.endedByBackchannelAt;
    renew(ctx, session);
    log.info({ sid: session.user.sid }, 'demo portal: signed in');
    ctx.redirect('/');
  });

  router.post('/logout', async (ctx) => {
    const session = current(ctx);
    const form = await readForm(ctx);
    const token = form?.get('_csrf');
    if (!session?.user || !token || !sameSecret(token, session.csrf)) {
      ctx.status = 303;
      ctx.redirect('/');
      return;
    }
    const config = await configuration();
    const url = oidc.buildEndSessionUrl(config, { id_token_hint: session.user.idToken, post_logout_redirect_uri: postLogoutRedirectUri });
    // The local session ends now; dinhdanh then asks which portals to sign out of.
    delete session.user;
    session.csrf = random();
    ctx.status = 303;
    ctx.redirect(url.href);
  });

  router.get('/signed-out', (ctx) => {
    page(ctx, signedOutPage(look));
  });

  router.post('/backchannel-logout', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const refuse = (reason: string) => {
      log.warn({ reason }, 'demo portal: back-channel logout token refused');
      ctx.status = 400;
      ctx.body = { error: 'invalid_request' };
    };
    const form = await readForm(ctx);
    if (!form) return refuse('not a readable form');
    const token = form.getAll('logout_token').length === 1 ? form.get('logout_token') : null;
    if (!token) return refuse('no logout_token');
    let claims: { sid?: string; sub?: string };
    try {
      claims = await validateLogoutToken(token);
    } catch (err) {
      if (err instanceof InvalidLogoutToken) return refuse(err.message);
      throw err;
    }
    let ended = 0;
    const t = now();
    for (const session of sessions.values()) {
      const user = session.user;
      if (!user) continue;
      const matches = claims.sid ? user.sid === claims.sid && (!claims.sub || user.sub === claims.sub) : user.sub === claims.sub;
      if (matches) {
        delete session.user;
        session.endedByBackchannelAt = t;
        ended += 1;
      }
    }
    log.info({ sid: claims.sid ?? null, ended }, 'demo portal: back-channel logout');
    ctx.status = 200;
    ctx.body = '';
  });

  // RFC 8935: a pushed SET, answered 202 when accepted, 400 with {err, description} when not.
  router.post('/ssf/events', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const refuse = (err: string, description: string) => {
      log.warn({ err, description }, 'demo portal: security event refused');
      ctx.status = 400;
      ctx.body = { err, description };
    };
    if (ctx.request.type !== 'application/secevent+jwt') return refuse('invalid_request', 'not application/secevent+jwt');
    let token: string;
    try {
      token = (await getRawBody(ctx.req, { limit: BODY_LIMIT, encoding: 'utf8', length: ctx.request.length })).trim();
    } catch {
      return refuse('invalid_request', 'unreadable body');
    }
    let set: Awaited<ReturnType<typeof validateSet>>;
    try {
      set = await validateSet(token);
    } catch (err) {
      if (err instanceof InvalidSet) return refuse(err.err, err.message);
      throw err;
    }
    const user = (set.subject.format === 'complex' ? set.subject.user : set.subject) as { sub?: unknown } | undefined;
    const session = set.subject.format === 'complex' ? (set.subject.session as { id?: unknown } | undefined) : undefined;
    let ended = 0;
    // What a portal does with each (README, "Security events for portals"): a revoked session, or a
    // disabled account, ends the local session at once.
    if (set.type === EVENT.sessionRevoked) ended = endSessions(user?.sub, session?.id, set.type);
    if (set.type === EVENT.accountDisabled) ended = endSessions(user?.sub, undefined, set.type);
    received.unshift({ type: set.type, at: now(), sub: typeof user?.sub === 'string' ? user.sub : null, txn: set.txn ?? null, ended });
    received.length = Math.min(received.length, 20);
    log.info({ type: set.type, ended }, 'demo portal: security event received');
    ctx.status = 202;
    ctx.body = '';
  });

  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'");
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    if (ctx.path !== '/demo.css') ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } catch (err) {
      const e = err as Error & { status?: number; expose?: boolean };
      if (e.status && e.status < 500) {
        page(ctx, errorPage(look, 'Yêu cầu không hợp lệ', 'Yêu cầu này không hợp lệ.'), e.status);
        return;
      }
      // Most likely dinhdanh is not reachable (discovery, token or userinfo endpoint).
      log.warn({ err: { name: e.name, message: e.message } }, 'demo portal request failed');
      page(ctx, errorPage(look, 'Không kết nối được dinhdanh', `Cổng thử nghiệm không gọi được dinhdanh tại ${options.issuer}. Hãy kiểm tra dinhdanh đang chạy, rồi thử lại.`), 502);
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());

  return {
    app,
    subscribe,
    events: () => received,
    signedIn: () => [...sessions.values()].filter((s) => s.user).length,
  };
}
