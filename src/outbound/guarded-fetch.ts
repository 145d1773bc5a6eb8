/**
 * The one way dinhdanh makes outgoing HTTP requests to URLs a portal supplied: back-channel logout
 * deliveries, a portal's `jwks_uri`, and (as oidc-provider's `fetch` option) everything the provider
 * fetches itself. A portal controls those URLs, so each one is a Server-Side Request Forgery vector
 * (OWASP ASVS v4.0.3 V12.6.1 / v5 V1.3.6: "protects against SSRF attacks, by validating or sanitizing
 * untrusted data … using allow lists of protocols, domains, paths and ports").
 *
 * What the guard does, and why here rather than by checking the URL up front:
 * - The destination is judged by the addresses the connection is actually made to: a custom `lookup`
 *   resolves the host, and the request is refused if ANY resolved address is loopback, private or
 *   otherwise special-use (unless policy allows it). Checking the name first and connecting later
 *   would lose to DNS rebinding (the second resolution answers 127.0.0.1).
 * - IP literals skip `lookup` in Node, so they are judged before connecting.
 * - Only `http:` and `https:`; no credentials in the URL; redirects are never followed (a 3xx is
 *   handed back as it is, so a redirect cannot smuggle the request to an internal address).
 * - One timeout over the whole exchange (resolve, connect, headers, body) and a cap on the body, so a
 *   slow or endless portal cannot pin a worker or exhaust memory.
 * - Error messages name only the origin (scheme://host:port): URLs and headers of back-channel calls
 *   can carry tokens, and error messages end up in logs.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import zlib from 'node:zlib';

export interface OutboundPolicy {
  /** Allow loopback and private/special-use destinations (development). */
  allowPrivate: boolean;
  /** CIDRs explicitly allowed even when allowPrivate is false, e.g. ['10.20.0.0/16', 'fd00::/8']. */
  allowCidrs: readonly string[];
  /** Abort the whole request (connect + response) after this many ms. */
  timeoutMs: number;
  /** Refuse (abort) a response body larger than this many bytes. */
  maxResponseBytes: number;
}

/**
 * Same shape as the global `fetch`, so it can be passed as oidc-provider's `fetch` configuration
 * option (which adds keys such as `dispatcher`; unknown keys are ignored).
 */
export type GuardedFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * Told of one outbound request as it starts, with its method and destination (null when the URL
 * does not parse); returns what to call when it ends, with the response's status or the error. An
 * observer (traces) keeps the origin only: the path and query of a portal's URL can carry tokens.
 */
export type OutboundCallHook = (method: string, url: URL | null) => (result: { status?: number; error?: unknown }) => void;

export interface GuardedFetchOptions {
  /** Told of every request made through this fetch (metrics/tracing.ts); nothing is added to the request itself. */
  observe?: OutboundCallHook;
}

/** The destination is not allowed by policy (scheme, credentials, or a special-use address). */
export class OutboundRefusedError extends Error {
  readonly code = 'outbound_refused';
  /** The refused host name or IP literal (never the path or query). */
  readonly host: string | undefined;
  /** The special-use address the host resolved to, for operators' logs. */
  readonly address: string | undefined;

  constructor(message: string, details: { host?: string; address?: string } = {}) {
    super(message);
    this.name = 'OutboundRefusedError';
    this.host = details.host;
    this.address = details.address;
  }
}

/*
 * Special-use address blocks: the IANA IPv4 / IPv6 Special-Purpose Address Registries (RFC 6890 and
 * later updates), plus multicast, which is not in those registries but is never a web server.
 */
const SPECIAL_USE_IPV4: readonly (readonly [string, number])[] = [
  ['0.0.0.0', 8], // "this network" (RFC 791 §3.2); 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space, carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback (RFC 1122 §3.2.1.3)
  ['169.254.0.0', 16], // link-local (RFC 3927), including cloud metadata at 169.254.169.254
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments (RFC 6890 §2.2.2)
  ['192.0.2.0', 24], // documentation TEST-NET-1 (RFC 5737)
  ['192.88.99.0', 24], // 6to4 relay anycast, deprecated (RFC 7526)
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
  ['198.51.100.0', 24], // documentation TEST-NET-2 (RFC 5737)
  ['203.0.113.0', 24], // documentation TEST-NET-3 (RFC 5737)
  ['224.0.0.0', 4], // multicast (RFC 5771)
  ['240.0.0.0', 4], // reserved (RFC 1112 §4), which includes limited broadcast 255.255.255.255 (RFC 919)
];

const SPECIAL_USE_IPV6: readonly (readonly [string, number])[] = [
  ['::', 128], // unspecified (RFC 4291 §2.5.2)
  ['::1', 128], // loopback (RFC 4291 §2.5.3)
  ['::', 96], // IPv4-compatible, deprecated (RFC 4291 §2.5.5.1)
  // ::ffff:0:0/96 (IPv4-mapped, RFC 4291 §2.5.5.2) is judged by its IPv4 address: net.BlockList
  // matches an IPv4-mapped address against the IPv4 rules above.
  ['64:ff9b::', 96], // NAT64 well-known prefix (RFC 6052): embeds any IPv4, private ones included
  ['64:ff9b:1::', 48], // NAT64 local-use prefix (RFC 8215)
  ['100::', 64], // discard-only (RFC 6666)
  ['2001::', 23], // IETF protocol assignments (RFC 2928), including Teredo 2001::/32 (RFC 4380)
  ['2001:db8::', 32], // documentation (RFC 3849)
  ['2002::', 16], // 6to4 (RFC 3056): embeds an IPv4 address
  ['3fff::', 20], // documentation (RFC 9637)
  ['5f00::', 16], // segment routing SIDs (RFC 9602)
  ['fc00::', 7], // unique local (RFC 4193)
  ['fe80::', 10], // link-local (RFC 4291 §2.5.6)
  ['fec0::', 10], // site-local, deprecated (RFC 3879)
  ['ff00::', 8], // multicast (RFC 4291 §2.7)
];

const specialUse = new net.BlockList();
for (const [address, prefix] of SPECIAL_USE_IPV4) specialUse.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of SPECIAL_USE_IPV6) specialUse.addSubnet(address, prefix, 'ipv6');

function familyOf(ip: string): 'ipv4' | 'ipv6' | null {
  const version = net.isIP(ip);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : null;
}

/**
 * True for loopback, private, link-local and every other address an outbound request to a portal
 * must not reach (see the tables above). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged by
 * its IPv4 address. Anything that is not a plain IP address (a host name, a zoned `fe80::1%eth0`)
 * counts as special-use: the check fails closed.
 */
export function isSpecialUseAddress(ip: string): boolean {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const family = familyOf(bare);
  if (family === null || bare.includes('%')) return true;
  return specialUse.check(bare, family);
}

interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

function parseCidr(entry: string): Cidr {
  const invalid = () =>
    new Error(`invalid CIDR "${entry}": expected an address and a prefix length, like 10.20.0.0/16 or fd00::/8`);
  const match = /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(entry);
  if (!match) throw invalid();
  const address = match[1]!;
  const family = familyOf(address);
  if (family === null) throw invalid();
  const prefix = Number(match[2]);
  const max = family === 'ipv4' ? 32 : 128;
  if (prefix > max) throw new Error(`invalid CIDR "${entry}": the prefix length must be at most ${max}`);
  return { address, prefix, family };
}

/**
 * Parses a comma- and/or whitespace-separated CIDR list ("10.20.0.0/16, fd00::/8") as found in an
 * environment variable. The prefix length is required, so a bare address is never silently read as
 * a /32 or /128. Throws with a message naming the bad entry.
 */
export function parseCidrList(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .filter((entry) => entry !== '')
    .map((entry) => {
      const { address, prefix } = parseCidr(entry);
      return `${address}/${prefix}`;
    });
}

/** Methods the Fetch standard forbids (fetch.spec.whatwg.org, "forbidden method"). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);
/** Methods the Fetch standard upper-cases when matched case-insensitively ("normalize a method"). */
const NORMALIZED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
/** Statuses whose response has no body (fetch.spec.whatwg.org, "null body status"). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Request headers the caller cannot set: the destination comes from the URL alone, and framing is
 * computed from the body (a caller's Content-Length or Transfer-Encoding would only desynchronise).
 */
const CONTROLLED_REQUEST_HEADERS = ['host', 'content-length', 'transfer-encoding', 'connection'];

/** Encodes the request body as bytes, setting a Content-Type the way `fetch` would if none is given. */
async function encodeBody(body: RequestInit['body'], headers: Headers): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  const defaultType = (type: string) => {
    if (!headers.has('content-type')) headers.set('content-type', type);
  };
  if (typeof body === 'string') {
    defaultType('text/plain;charset=UTF-8');
    return Buffer.from(body, 'utf8');
  }
  if (body instanceof URLSearchParams) {
    defaultType('application/x-www-form-urlencoded');
    return Buffer.from(body.toString(), 'utf8');
  }
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // Blob, FormData, streams: let the platform serialise them (and pick e.g. the multipart boundary).
  const encoded = new Response(body);
  const type = encoded.headers.get('content-type');
  if (type) defaultType(type);
  return Buffer.from(await encoded.arrayBuffer());
}

function createDecoder(contentEncoding: string | undefined): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | null {
  // Lenient flushing, as browsers and undici do, so a body cut right at the end still decodes.
  const flush = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  switch (contentEncoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip(flush);
    case 'deflate':
      return zlib.createInflate(flush);
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return null;
  }
}

/**
 * Builds the fetch function for one policy. Throws at once on an invalid policy (a bad CIDR, a
 * non-positive timeout), so a misconfiguration stops start-up rather than the first request.
 */
export function createGuardedFetch(policy: OutboundPolicy, options: GuardedFetchOptions = {}): GuardedFetch {
  const { allowPrivate, timeoutMs, maxResponseBytes } = policy;
  // setTimeout fires at once beyond 2^31 - 1 ms, which would turn a huge timeout into none.
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 2 ** 31 - 1) {
    throw new Error(`outbound timeoutMs must be a positive integer number of milliseconds, got ${timeoutMs}`);
  }
  if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 0) {
    throw new Error(`outbound maxResponseBytes must be a non-negative integer, got ${maxResponseBytes}`);
  }
  const allowList = new net.BlockList();
  for (const entry of policy.allowCidrs) {
    const { address, prefix, family } = parseCidr(entry);
    allowList.addSubnet(address, prefix, family);
  }

  const permitted = (ip: string): boolean => {
    if (allowPrivate || !isSpecialUseAddress(ip)) return true;
    const family = familyOf(ip);
    return family !== null && !ip.includes('%') && allowList.check(ip, family);
  };

  const guardedFetch: GuardedFetch = async function guardedFetch(input, init = {}) {
    let href: string;
    let method = init.method;
    let headerInit = init.headers;
    let body = init.body;
    let signal = init.signal ?? undefined;
    if (typeof input === 'string') href = input;
    else if (input instanceof URL) href = input.href;
    else {
      href = input.url;
      method ??= input.method;
      headerInit ??= input.headers;
      signal ??= input.signal;
      if (body === undefined && input.body !== null) body = await input.arrayBuffer();
    }

    let url: URL;
    try {
      url = new URL(href);
    } catch {
      // Not echoed: a malformed URL could still carry a token.
      throw new OutboundRefusedError('outbound request refused: not a valid absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutboundRefusedError(`outbound request refused: the ${url.protocol} scheme is not allowed (only http: and https:)`);
    }
    const origin = url.origin;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (url.username !== '' || url.password !== '') {
      throw new OutboundRefusedError(`outbound request to ${origin} refused: credentials in the URL are not allowed`, { host });
    }
    // Node connects to an IP literal without calling `lookup`, so judge it here.
    if (net.isIP(host) !== 0 && !permitted(host)) {
      throw new OutboundRefusedError(`outbound request to ${origin} refused: ${host} is a special-use address`, {
        host,
        address: host,
      });
    }

    let verb = method ?? 'GET';
    if (NORMALIZED_METHODS.has(verb.toUpperCase())) verb = verb.toUpperCase();
    if (FORBIDDEN_METHODS.has(verb.toUpperCase())) throw new TypeError(`outbound request method ${verb} is not allowed`);

    let headers: Headers;
    try {
      headers = new Headers(headerInit);
    } catch {
      // The platform's message quotes the offending value, which may be a token.
      throw new TypeError(`outbound request to ${origin} has an invalid header`);
    }
    for (const name of CONTROLLED_REQUEST_HEADERS) headers.delete(name);
    // An empty User-Agent counts as none: oidc-provider sets '' only to suppress undici's default.
    if (!headers.get('user-agent')) headers.set('user-agent', 'dinhdanh');
    // Ask for an unencoded body (RFC 9110 §12.5.3): no decompression work, and the cap is exact.
    if (!headers.has('accept-encoding')) headers.set('accept-encoding', 'identity');

    if (body !== undefined && body !== null && (verb === 'GET' || verb === 'HEAD')) {
      throw new TypeError(`outbound ${verb} request cannot have a body`);
    }
    const payload = await encodeBody(body, headers);
    if (payload !== undefined) headers.set('content-length', String(payload.length));

    if (signal?.aborted) throw signal.reason;

    const failed = (err: unknown): Error => {
      if (err instanceof OutboundRefusedError) return err;
      const code = (err as NodeJS.ErrnoException | null)?.code;
      // Node's network errors name at most the host and port, never the path, so they are safe as a cause.
      return new Error(`outbound request to ${origin} failed${code ? ` (${code})` : ''}`, { cause: err });
    };
    const tooLarge = () => new Error(`outbound response from ${origin} exceeds ${maxResponseBytes} bytes`);

    // Resolve every address, refuse if any one is not permitted, then hand Node the addresses it
    // asked for: the connection can only go to an address that passed the check.
    const lookup: net.LookupFunction = (hostname, options, callback) => {
      dns.lookup(hostname, { all: true, hints: options.hints ?? 0 }, (err, addresses) => {
        if (err) return callback(err, []);
        const refused = addresses.find((a) => !permitted(a.address));
        if (refused) {
          return callback(
            new OutboundRefusedError(`outbound request to ${origin} refused: ${hostname} resolves to a special-use address`, {
              host: hostname,
              address: refused.address,
            }),
            [],
          );
        }
        const wanted = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
        const usable = wanted === 0 ? addresses : addresses.filter((a) => a.family === wanted);
        const first = usable[0];
        if (!first) {
          const notFound: NodeJS.ErrnoException = new Error(`no IPv${wanted} address for ${hostname}`);
          notFound.code = 'ENOTFOUND';
          return callback(notFound, []);
        }
        if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      });
    };

    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      let decoder: ReturnType<typeof createDecoder> = null;
      const settle = (err: Error | null, response?: Response) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          req?.destroy();
          decoder?.destroy();
          reject(err);
        } else {
          resolve(response!);
        }
      };
      const timer = setTimeout(
        () => settle(new Error(`outbound request to ${origin} timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => settle(signal?.reason instanceof Error ? signal.reason : new Error(`outbound request to ${origin} was aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });

      const transport = url.protocol === 'https:' ? https : http;
      try {
        req = transport.request({
          protocol: url.protocol,
          hostname: host,
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: verb,
          headers: Object.fromEntries(headers),
          lookup,
          // A fresh connection per request: a pooled socket may have been opened by code that did not
          // check its address (http.globalAgent is shared process-wide).
          agent: false,
        });
      } catch (err) {
        settle(failed(err));
        return;
      }

      req.on('error', (err) => settle(failed(err)));
      req.on('response', (res) => {
        res.on('error', (err) => settle(failed(err)));
        const declared = res.headers['content-length'];
        if (declared !== undefined && Number(declared) > maxResponseBytes) {
          settle(tooLarge());
          return;
        }

        decoder = createDecoder(res.headers['content-encoding']);
        const chunks: Buffer[] = [];
        let received = 0;
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxResponseBytes) settle(tooLarge());
          else if (!decoder) {
            chunks.push(chunk);
          }
        });
        const source = decoder ?? res;
        if (decoder) {
          // The cap applies to the decoded bytes as well: a small compressed body can expand enormously.
          decoder.on('error', (err) => settle(failed(err)));
          decoder.on('data', (chunk: Buffer) => {
            kept += chunk.length;
            if (kept > maxResponseBytes) settle(tooLarge());
            else chunks.push(chunk);
          });
          res.pipe(decoder);
        }
        source.on('end', () => {
          if (settled) return;
          const status = res.statusCode ?? 0;
          const responseHeaders = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
            try {
              responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
            } catch {
              // A header the Fetch API cannot represent is dropped rather than failing the response.
            }
          }
          if (decoder) {
            // The body handed on is decoded, so these would now describe something else.
            responseHeaders.delete('content-encoding');
            responseHeaders.delete('content-length');
          }
          const nullBody = NULL_BODY_STATUSES.has(status) || verb === 'HEAD';
          try {
            settle(
              null,
              new Response(nullBody ? null : Buffer.concat(chunks), {
                status,
                statusText: res.statusMessage ?? '',
                headers: responseHeaders,
              }),
            );
          } catch {
            settle(new Error(`outbound response from ${origin} cannot be represented (status ${status})`));
          }
        });
        res.on('close', () => {
          if (!res.complete) settle(new Error(`outbound response from ${origin} ended before it was complete`));
        });
      });
      req.end(payload);
    });
  };
  const observe = options.observe;
  if (!observe) return guardedFetch;
  return async function observedFetch(input, init = {}) {
    let finish: ReturnType<OutboundCallHook>;
    try {
      const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      let url: URL | null = null;
      try {
        url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      } catch { /* the guard refuses it; the observer is told of no destination */ }
      finish = observe(method, url);
    } catch {
      // An observer never fails a request.
      return guardedFetch(input, init);
    }
    let response: Response;
    try {
      response = await guardedFetch(input, init);
    } catch (err) {
      try { finish({ error: err }); } catch { /* idem */ }
      throw err;
    }
    try { finish({ status: response.status }); } catch { /* idem */ }
    return response;
  };
}
