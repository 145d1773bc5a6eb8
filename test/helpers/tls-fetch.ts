/**
 * A `fetch` for tests that talk to a TLS endpoint the way a remote client would: it trusts one
 * certificate authority (a self-signed certificate made by the test), connects to a fixed address
 * whatever the URL's host name resolves to (like curl's --connect-to, so the certificate's name is
 * checked through SNI), and can leave from a chosen local address (127.0.0.2, 127.0.0.3, … are all
 * loopback on Linux: a proxy in front sees distinct client addresses).
 *
 * Node's own fetch takes a CA only through an undici dispatcher, and undici is not a dependency:
 * this is node:https underneath, answering with a standard `Response`.
 */
import http from 'node:http';
import https from 'node:https';

export interface TlsFetchOptions {
  /** PEM of the certificate (or CA) to trust; nothing else is trusted. */
  ca: string;
  /** The address to connect to instead of resolving the URL's host name. */
  connectTo?: string;
  /** The local address to connect from. */
  localAddress?: string;
  /** Headers sent on every request (a request's own headers win). */
  headers?: Record<string, string>;
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

export function tlsFetch(options: TlsFetchOptions): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    const headers: Record<string, string> = { ...options.headers, ...Object.fromEntries(req.headers), host: url.host };
    if (body) headers['content-length'] = String(body.length);
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const outgoing = client.request({
        host: options.connectTo ?? url.hostname,
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        ca: options.ca,
        servername: url.hostname,
        localAddress: options.localAddress,
        signal: req.signal,
        // A connection per request: nothing is left open when a test ends.
        agent: false,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (let i = 0; i < res.rawHeaders.length; i += 2) responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 0;
          const empty = NULL_BODY_STATUSES.has(status) || req.method === 'HEAD';
          resolve(new Response(empty ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: responseHeaders }));
        });
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  };
}
