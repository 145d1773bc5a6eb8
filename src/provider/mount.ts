/**
 * How requests reach oidc-provider. Its own endpoints skip dinhdanh's routers (they are never
 * ours), and the two public documents that change only with the key set — discovery and the JWKS —
 * are served from bytes kept per provider instance: a key rotation builds a new provider, and with
 * it a new cache (issue 8's profiles: both cost twice the bare library's CPU before).
 */
import type Koa from 'koa';
import mount from 'koa-mount';
import type Provider from 'oidc-provider';

/** oidc-provider's routes (its defaults; `/auth/<uid>` resumes an interaction). Not ours: `/session/end/confirm`. */
const PROTOCOL_PATHS = new Set([
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  '/jwks',
  '/auth',
  '/request',
  '/token',
  '/token/introspection',
  '/token/revocation',
  '/me',
  '/session/end',
  '/session/end/success',
]);

const DOCUMENTS = new Set(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks']);

/** The paths oidc-provider alone answers (dinhdanh adds nothing before them). */
export function isProtocolPath(path: string): boolean {
  return PROTOCOL_PATHS.has(path) || (path.startsWith('/auth/') && path.length > 6);
}

/** The headers oidc-provider sets on these documents (CORS for any origin, the content type); ours are set before. */
const DOCUMENT_HEADERS = ['Content-Type', 'Vary', 'Access-Control-Allow-Origin', 'Access-Control-Expose-Headers'];

interface Document {
  body: Buffer;
  headers: Array<[string, string]>;
}

/**
 * A `__Host-` cookie must have Path=/ or browsers drop it (RFC 6265bis §4.1.3.2). oidc-provider sets
 * the resume cookie (and clears it) with the path `/auth/<uid>` whatever the configuration says, so
 * its Set-Cookie lines are given Path=/ here. Only `__Host-` names (https) are touched.
 */
function hostCookiesAtRoot(ctx: Koa.Context): void {
  const header = ctx.res.getHeader('set-cookie');
  if (!Array.isArray(header) || !header.some((c) => c.startsWith('__Host-'))) return;
  ctx.res.setHeader('set-cookie', header.map((c) => (c.startsWith('__Host-') ? c.replace(/; path=[^;]*/i, '; path=/') : c)));
}

export function providerMount(options: { provider: () => Provider; issuer: string }): Koa.Middleware {
  const issuerOrigin = new URL(options.issuer).origin;
  const mounted = new WeakMap<Provider, Koa.Middleware>();
  const documents = new WeakMap<Provider, Map<string, Document>>();
  return async function currentProvider(ctx, next) {
    // The provider in use when a request arrives handles all of it (a rotation swaps it).
    const current = options.provider();
    // Only plain GETs at the issuer's own origin: the endpoints in discovery follow the request's
    // host, and a request with an `Origin` gets CORS headers computed for it.
    const cacheable = ctx.method === 'GET' && DOCUMENTS.has(ctx.path) && !ctx.get('origin') && `${ctx.protocol}://${ctx.host}` === issuerOrigin;
    if (cacheable) {
      const doc = documents.get(current)?.get(ctx.path);
      if (doc) {
        for (const [name, value] of doc.headers) ctx.set(name, value);
        if (ctx.path === '/jwks') ctx.set('Cache-Control', 'public, max-age=600');
        ctx.body = doc.body;
        return;
      }
    }
    let middleware = mounted.get(current);
    if (!middleware) {
      middleware = mount(current) as unknown as Koa.Middleware;
      mounted.set(current, middleware);
    }
    await middleware(ctx, next);
    hostCookiesAtRoot(ctx);
    if (ctx.status !== 200) return;
    // Portals cache the key set; 10 minutes is well inside the delay before a new key signs.
    if (ctx.path === '/jwks') ctx.set('Cache-Control', 'public, max-age=600');
    const body: unknown = ctx.body;
    if (cacheable && body && typeof body === 'object' && !Buffer.isBuffer(body)) {
      let docs = documents.get(current);
      if (!docs) documents.set(current, (docs = new Map()));
      const headers = DOCUMENT_HEADERS.map((name) => [name, ctx.response.get(name)] as [string, string]).filter(([, value]) => value);
      docs.set(ctx.path, { body: Buffer.from(JSON.stringify(body)), headers });
    }
  };
}
