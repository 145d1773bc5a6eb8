/**
 * A minimal browser for integration tests: a cookie jar, manual redirects, and form extraction from
 * the rendered HTML (the tests assert on what a person would see).
 */
export interface Response {
  status: number;
  url: string;
  location: string | null;
  headers: Headers;
  text: string;
}

export interface BrowserOptions {
  /** The fetch to send requests with (default the global one), e.g. one that trusts a test CA. */
  fetch?: typeof fetch;
  /** Sees every response, redirects included (their headers: cookies set on the way, HSTS). */
  onResponse?: (res: Response) => void;
}

export class Browser {
  private jar = new Map<string, Map<string, string>>();

  constructor(private readonly origin: string, private readonly options: BrowserOptions = {}) {}

  cookieHeader(url: string): string {
    const host = new URL(url).host;
    const cookies = this.jar.get(host);
    return cookies ? [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }

  cookies(url = this.origin): Map<string, string> {
    return new Map(this.jar.get(new URL(url).host) ?? []);
  }

  clearCookies(): void {
    this.jar.clear();
  }

  private store(url: string, headers: Headers): void {
    const host = new URL(url).host;
    const cookies = this.jar.get(host) ?? new Map<string, string>();
    for (const line of headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = /expires=Thu, 01 Jan 1970/i.test(line) || value === '';
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    this.jar.set(host, cookies);
  }

  async request(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    const cookie = this.cookieHeader(url);
    if (cookie) headers.cookie = cookie;
    if (init.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await (this.options.fetch ?? fetch)(url, { method: init.method ?? 'GET', body: init.body, headers, redirect: 'manual' });
    this.store(url, res.headers);
    const location = res.headers.get('location');
    const response = { status: res.status, url, location: location ? new URL(location, url).href : null, headers: res.headers, text: await res.text() };
    this.options.onResponse?.(response);
    return response;
  }

  /** GET, following redirects on our origin; stops at the first response that is not a redirect or leaves our origin. */
  async get(url: string): Promise<Response> {
    let res = await this.request(url);
    for (let i = 0; i < 10 && res.location && new URL(res.location).origin === this.origin; i += 1) {
      res = await this.request(res.location);
    }
    return res;
  }

  /** POSTs a form as a same-origin browser would (Origin and Fetch Metadata), then follows redirects on our origin. */
  async post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    let res = await this.request(url, {
      method: 'POST',
      body: new URLSearchParams(fields).toString(),
      headers: { origin: this.origin, 'sec-fetch-site': 'same-origin', ...headers },
    });
    for (let i = 0; i < 10 && res.location && new URL(res.location).origin === this.origin; i += 1) {
      res = await this.request(res.location);
    }
    return res;
  }
}

export function formAction(html: string, index = 0): string {
  const actions = [...html.matchAll(/<form[^>]*action="([^"]*)"/g)].map((m) => decodeEntities(m[1]!));
  if (!actions[index]) throw new Error('no form on the page');
  return actions[index]!;
}

export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no hidden field ${name}`);
  return decodeEntities(m[1]!);
}

export function alertText(html: string): string | null {
  const m = /role="alert"[^>]*>([^<]*)</.exec(html);
  return m ? decodeEntities(m[1]!.trim()) : null;
}

export function decodeEntities(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}
