/**
 * A rotated client secret's grace period at every endpoint where a portal authenticates with it
 * (token, introspection, revocation, pushed authorization requests): see portal-admin.ts.
 *
 * oidc-provider keeps one `client_secret` per client and compares the secret a request presents
 * with it. Rather than rewrite requests before the library parses them, the client metadata the
 * adapter hands it for this one request carries the previous secret instead of the current one,
 * when — and only when — the request presents exactly that previous secret and its grace period
 * has not ended (portal.service.ts clientMetadata). The library's own comparison stays the only
 * gate: whatever is parsed here only chooses which of the portal's two valid secrets it compares
 * against, so a request this parser reads differently from the library is refused, never let in.
 * This holds for both ways a secret travels (client_secret_basic and client_secret_post, which
 * the library accepts from a portal registered with either, and which openid-client uses by
 * default), without reading the request body before the library does.
 *
 * The request is found through `Provider.ctx`, the library's documented way for an adapter to
 * reach the request it serves (AsyncLocalStorage); nothing here reads its private fields.
 */
import Provider from 'oidc-provider';

/**
 * RFC 6749 §2.3.1: in the Authorization header the client id and secret are each encoded with
 * application/x-www-form-urlencoded (so `+` is a space) before the Basic scheme (RFC 7617) joins
 * them with a colon and base64-encodes the pair. Undefined when the header is not that shape.
 */
function basicCredentials(header: string): { clientId: string; secret: string } | undefined {
  const parts = header.split(' ');
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'basic') return undefined;
  const pair = Buffer.from(parts[1]!, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon === -1) return undefined;
  try {
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, '%20'));
    return { clientId: decode(pair.slice(0, colon)), secret: decode(pair.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

/**
 * The client secret that the request oidc-provider is handling presents for `clientId`: from an
 * `Authorization: Basic` header (client_secret_basic) or the `client_secret` parameter
 * (client_secret_post, RFC 6749 §2.3.1). Undefined outside a request, when the request names
 * another client (an introspection by a resource server looks up the token's portal too) or
 * presents no secret.
 */
export function presentedClientSecret(clientId: string): string | undefined {
  const ctx = Provider.ctx;
  if (!ctx) return undefined;
  const header = ctx.get('authorization');
  if (header) {
    const basic = basicCredentials(header);
    return basic && basic.clientId === clientId && basic.secret ? basic.secret : undefined;
  }
  const params = ctx.oidc.params as { client_id?: unknown; client_secret?: unknown } | undefined;
  const secret = params?.client_secret;
  return params?.client_id === clientId && typeof secret === 'string' && secret ? secret : undefined;
}
