/**
 * A portal's back-channel logout endpoint for the tests: a real HTTP server that records every
 * logout token it is sent, and answers as told (200, another status, or not at all until released).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour = 'ok' | 'hang' | number;

export interface Received {
  path: string;
  logoutToken: string;
  contentType: string | undefined;
}

export class LogoutReceiver {
  readonly received: Received[] = [];
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly held: http.ServerResponse[] = [];
  private server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const path = req.url ?? '/';
      this.received.push({ path, logoutToken: new URLSearchParams(body).get('logout_token') ?? '', contentType: req.headers['content-type'] });
      const behaviour = this.behaviours.get(path) ?? 'ok';
      if (behaviour === 'hang') {
        this.held.push(res);
        return;
      }
      res.statusCode = behaviour === 'ok' ? 200 : behaviour;
      res.setHeader('cache-control', 'no-store');
      res.end();
    });
  });
  base = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  behave(path: string, behaviour: Behaviour): void {
    this.behaviours.set(path, behaviour);
  }

  /** Requests currently held by a `hang` endpoint. */
  get pending(): number {
    return this.held.length;
  }

  release(status = 200): void {
    for (const res of this.held.splice(0)) {
      res.statusCode = status;
      res.end();
    }
  }

  tokens(path: string): string[] {
    return this.received.filter((r) => r.path === path).map((r) => r.logoutToken);
  }

  /** Waits (polling, up to `limitMs`) until `path` has received at least `count` tokens. */
  async waitFor(path: string, count = 1, limitMs = 10_000): Promise<string[]> {
    const until = Date.now() + limitMs;
    while (this.tokens(path).length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return this.tokens(path);
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
