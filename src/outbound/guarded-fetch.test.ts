import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import {
  type OutboundPolicy,
  OutboundRefusedError,
  createGuardedFetch,
  isSpecialUseAddress,
  parseCidrList,
} from './guarded-fetch.js';

const devPolicy: OutboundPolicy = { allowPrivate: true, allowCidrs: [], timeoutMs: 5000, maxResponseBytes: 1000 };
const prodPolicy: OutboundPolicy = { ...devPolicy, allowPrivate: false };

/** A real portal stand-in on 127.0.0.1 that counts what reaches it. */
let server: http.Server;
let base: string;
let port: number;
const hits: string[] = [];
let connections = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    switch (path) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'text/plain', 'x-portal': 'yes' }).end('xin chào');
        return;
      case '/echo': {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString() }));
        });
        return;
      }
      case '/slow':
        // Headers never come; the client's timeout must end this.
        return;
      case '/slow-body':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        return;
      case '/big-declared':
        res.writeHead(200, { 'content-length': '2000' }).end('x'.repeat(2000));
        return;
      case '/big-chunked': {
        res.writeHead(200, { 'content-type': 'text/plain' }); // no content-length: chunked
        let sent = 0;
        const more = () => {
          if (sent >= 5000 || res.destroyed) return void res.end();
          sent += 500;
          res.write('y'.repeat(500), () => setImmediate(more));
        };
        more();
        return;
      }
      case '/redirect':
        res.writeHead(302, { location: `${base}/ok` }).end();
        return;
      case '/no-content':
        res.writeHead(204).end();
        return;
      case '/gzip':
        res.writeHead(200, { 'content-encoding': 'gzip' }).end(zlib.gzipSync('nén rồi'));
        return;
      case '/gzip-bomb':
        res.writeHead(200, { 'content-encoding': 'gzip' }).end(zlib.gzipSync(Buffer.alloc(100_000)));
        return;
      default:
        res.writeHead(404).end();
    }
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('isSpecialUseAddress', () => {
  it.each([
    '127.0.0.1',
    '::1',
    '[::1]',
    '::',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.1.2.3',
    '10.20.30.40',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '192.0.0.8',
    '192.0.2.1',
    '198.18.0.1',
    '198.51.100.7',
    '203.0.113.9',
    '224.0.0.1',
    '240.0.0.1',
    '255.255.255.255',
    'fd12:3456::1',
    'fe80::1',
    'fe80::1%eth0',
    'ff02::1',
    '2001:db8::1',
    '64:ff9b::a00:1',
    'example.com',
  ])('%s is special-use', (ip) => {
    expect(isSpecialUseAddress(ip)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '203.0.114.1', '100.128.0.1', '::ffff:8.8.8.8', '2606:4700::1111', '2001:4860:4860::8888'])(
    '%s is not special-use',
    (ip) => {
      expect(isSpecialUseAddress(ip)).toBe(false);
    },
  );
});

describe('parseCidrList', () => {
  it('accepts IPv4 and IPv6 CIDRs separated by commas and/or spaces', () => {
    expect(parseCidrList('10.20.0.0/16, fd00::/8  192.168.5.0/24')).toEqual(['10.20.0.0/16', 'fd00::/8', '192.168.5.0/24']);
    expect(parseCidrList('')).toEqual([]);
    expect(parseCidrList(' , ')).toEqual([]);
    expect(parseCidrList('0.0.0.0/0,::/0')).toEqual(['0.0.0.0/0', '::/0']);
  });

  it('refuses malformed entries with a message naming them', () => {
    expect(() => parseCidrList('10.20.0.0')).toThrow(/invalid CIDR "10\.20\.0\.0".*prefix length/);
    expect(() => parseCidrList('10.20.0.0/33')).toThrow(/at most 32/);
    expect(() => parseCidrList('fd00::/129')).toThrow(/at most 128/);
    expect(() => parseCidrList('10.0.0.0/8, 300.1.1.1/8')).toThrow(/"300\.1\.1\.1\/8"/);
    expect(() => parseCidrList('intranet.example/24')).toThrow(/invalid CIDR/);
    expect(() => parseCidrList('10.0.0.0/-1')).toThrow(/invalid CIDR/);
    expect(() => parseCidrList('fe80::/10%eth0')).toThrow(/invalid CIDR/);
  });
});

describe('createGuardedFetch', () => {
  it('refuses an invalid policy at once', () => {
    expect(() => createGuardedFetch({ ...prodPolicy, allowCidrs: ['10.0.0.0'] })).toThrow(/invalid CIDR/);
    expect(() => createGuardedFetch({ ...prodPolicy, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => createGuardedFetch({ ...prodPolicy, maxResponseBytes: -1 })).toThrow(/maxResponseBytes/);
  });

  it('has the shape of fetch, so it can be oidc-provider\'s fetch option', () => {
    const asFetch: typeof fetch = createGuardedFetch(devPolicy);
    expect(typeof asFetch).toBe('function');
  });

  describe('with private destinations allowed (development)', () => {
    const guarded = createGuardedFetch(devPolicy);

    it('returns status, headers and body through a Response', async () => {
      const res = await guarded(`${base}/ok`);
      expect(res).toBeInstanceOf(Response);
      expect(res.status).toBe(200);
      expect(res.ok).toBe(true);
      expect(res.headers.get('x-portal')).toBe('yes');
      expect(res.headers.get('content-type')).toBe('text/plain');
      expect(await res.text()).toBe('xin chào');
    });

    it('accepts a URL object and ignores options it does not know (oidc-provider passes a dispatcher)', async () => {
      const res = await guarded(new URL(`${base}/ok`), {
        method: 'GET',
        headers: new Headers({ accept: 'application/json', 'user-agent': '' }),
        signal: AbortSignal.timeout(2500),
        dispatcher: {},
      } as RequestInit);
      expect(res.status).toBe(200);
    });

    it('sends a form body with its content type and a dinhdanh user agent', async () => {
      const res = await guarded(`${base}/echo`, {
        method: 'post',
        redirect: 'manual',
        body: new URLSearchParams({ logout_token: 'eyJ.x.y' }),
      });
      const echoed = (await res.json()) as { method: string; headers: Record<string, string>; body: string };
      expect(echoed.method).toBe('POST');
      expect(echoed.body).toBe('logout_token=eyJ.x.y');
      expect(echoed.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(echoed.headers['content-length']).toBe(String('logout_token=eyJ.x.y'.length));
      expect(echoed.headers['user-agent']).toBe('dinhdanh');
    });

    it('keeps the caller\'s headers and sends a string body as given', async () => {
      const res = await guarded(`${base}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer t', 'user-agent': 'custom/1' },
        body: '{"a":1}',
      });
      const echoed = (await res.json()) as { headers: Record<string, string>; body: string };
      expect(echoed.body).toBe('{"a":1}');
      expect(echoed.headers['content-type']).toBe('application/json');
      expect(echoed.headers.authorization).toBe('Bearer t');
      expect(echoed.headers['user-agent']).toBe('custom/1');
    });

    it('accepts a Request object, body included', async () => {
      const res = await guarded(new Request(`${base}/echo`, { method: 'PUT', body: 'from a Request' }));
      const echoed = (await res.json()) as { method: string; body: string };
      expect(echoed).toMatchObject({ method: 'PUT', body: 'from a Request' });
    });

    it('returns a 302 as it is instead of following it', async () => {
      const before = hits.filter((h) => h === '/ok').length;
      const res = await guarded(`${base}/redirect`);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe(`${base}/ok`);
      expect(res.redirected).toBe(false);
      expect(hits.filter((h) => h === '/ok').length).toBe(before);
    });

    it('returns a 204 with no body', async () => {
      const res = await guarded(`${base}/no-content`, { method: 'POST', body: 'x' });
      expect(res.status).toBe(204);
      expect(res.body).toBeNull();
    });

    it('decodes a gzip body a server sends anyway, and caps the decoded size', async () => {
      const res = await guarded(`${base}/gzip`);
      expect(await res.text()).toBe('nén rồi');
      expect(res.headers.get('content-encoding')).toBeNull();
      await expect(guarded(`${base}/gzip-bomb`)).rejects.toThrow(/exceeds 1000 bytes/);
    });

    it('times out a slow server', async () => {
      const quick = createGuardedFetch({ ...devPolicy, timeoutMs: 200 });
      await expect(quick(`${base}/slow`)).rejects.toThrow(/timed out after 200 ms/);
      // The timeout covers the body too, not only the headers.
      await expect(quick(`${base}/slow-body`)).rejects.toThrow(/timed out after 200 ms/);
    });

    it('honours the caller\'s abort signal', async () => {
      const controller = new AbortController();
      const pending = guarded(`${base}/slow`, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('caller gave up')), 50);
      await expect(pending).rejects.toThrow('caller gave up');
      await expect(guarded(`${base}/ok`, { signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');
    });

    it('refuses a body over the cap, declared by content-length', async () => {
      await expect(guarded(`${base}/big-declared`)).rejects.toThrow(/exceeds 1000 bytes/);
    });

    it('refuses a body over the cap, streamed in chunks without content-length', async () => {
      await expect(guarded(`${base}/big-chunked`)).rejects.toThrow(/exceeds 1000 bytes/);
    });

    it('refuses schemes other than http and https', async () => {
      await expect(guarded('file:///etc/passwd')).rejects.toThrow(OutboundRefusedError);
      await expect(guarded('ftp://ftp.example.com/x')).rejects.toThrow(/ftp: scheme is not allowed/);
      await expect(guarded('data:text/plain,hi')).rejects.toThrow(OutboundRefusedError);
      await expect(guarded('not a url')).rejects.toThrow(OutboundRefusedError);
    });

    it('refuses credentials in the URL', async () => {
      await expect(guarded(`http://user:pw@127.0.0.1:${port}/ok`)).rejects.toThrow(/credentials/);
    });
  });

  describe('with private destinations refused (production)', () => {
    const guarded = createGuardedFetch(prodPolicy);

    it('refuses a loopback IP literal without connecting', async () => {
      const before = connections;
      const err = await guarded(`${base}/ok`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutboundRefusedError);
      expect((err as OutboundRefusedError).code).toBe('outbound_refused');
      expect((err as Error).message).toContain(`http://127.0.0.1:${port}`);
      await expect(guarded(`http://[::1]:${port}/ok`)).rejects.toThrow(OutboundRefusedError);
      await expect(guarded(`http://[::ffff:127.0.0.1]:${port}/ok`)).rejects.toThrow(OutboundRefusedError);
      await expect(guarded(`http://0x7f.1:${port}/ok`)).rejects.toThrow(OutboundRefusedError);
      await expect(guarded('http://169.254.169.254/latest/meta-data/')).rejects.toThrow(OutboundRefusedError);
      expect(connections).toBe(before);
    });

    it('refuses a host name that resolves to loopback (checked at lookup)', async () => {
      const before = connections;
      const err = await guarded(`http://localhost:${port}/ok`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutboundRefusedError);
      expect((err as Error).message).toMatch(/localhost resolves to a special-use address/);
      expect(connections).toBe(before);
    });

    it('allows a destination inside allowCidrs', async () => {
      const allowed = createGuardedFetch({ ...prodPolicy, allowCidrs: ['127.0.0.0/8', '::1/128'] });
      expect((await allowed(`${base}/ok`)).status).toBe(200);
      expect((await allowed(`http://localhost:${port}/ok`)).status).toBe(200);
      // A CIDR that does not cover the destination does not help.
      const other = createGuardedFetch({ ...prodPolicy, allowCidrs: ['10.20.0.0/16'] });
      await expect(other(`${base}/ok`)).rejects.toThrow(OutboundRefusedError);
    });

    it('never puts the query string or header values in an error message', async () => {
      const headers = { authorization: 'Bearer secret' };
      const messages: string[] = [];
      const collect = (p: Promise<unknown>) =>
        p.then(
          () => messages.push('resolved'),
          (e: unknown) => messages.push(String((e as Error).message)),
        );
      await collect(guarded(`${base}/ok?token=secret`, { headers }));
      await collect(guarded(`http://localhost:${port}/ok?token=secret#secret`, { headers }));
      await collect(guarded(`http://u:secret@example.com/?token=secret`, { headers }));
      await collect(guarded('ftp://example.com/?token=secret'));
      await collect(guarded('not a url ?token=secret'));
      const dev = createGuardedFetch({ ...devPolicy, timeoutMs: 200 });
      await collect(dev(`${base}/slow?token=secret`, { headers }));
      await collect(dev(`${base}/big-declared?token=secret`, { headers }));
      await collect(dev(`${base}/ok?token=secret`, { headers: { authorization: 'Bearer secret\r\nx-injected: 1' } }));
      // A closed port: the connection is refused by the operating system.
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      await collect(dev(`http://127.0.0.1:${closedPort}/?token=secret`, { headers }));

      expect(messages).toHaveLength(9);
      expect(messages).not.toContain('resolved');
      for (const message of messages) expect(message).not.toContain('secret');
    });
  });
});
