/**
 * The operators' console in integration tests: operators made the way production makes them
 * (level 2, an authenticator app, a row in the operators table), and their sign-in through
 * dinhdanh itself — the console's authorization request, the login page, the app code, consent,
 * the callback — with the test's cookie-jar browser.
 */
import crypto from 'node:crypto';
import { expect } from '@jest/globals';
import { Browser, decodeEntities, formAction, hiddenField, type Response } from './browser.js';
import { totpCode } from './pages.js';
import { startTestServer, type TestServer } from './harness.js';
import type { Actor } from '../../src/admin/index.js';
import type { AuditEntry, AuditFilter, OperatorRole } from '../../src/store/index.js';

export interface TestOperator {
  id: string;
  pid: string;
  password: string;
  totpSecret: string;
  roles: OperatorRole[];
}

let operators = 0;

/** A level-2 person with an authenticator app, registered as an operator with `roles`. */
export async function addOperator(srv: TestServer, roles: OperatorRole[], clock: () => number = Date.now): Promise<TestOperator> {
  operators += 1;
  // Hanoi (001), female born 1985: digit 4 = 1, digits 5-6 = 85; a range apart from addPerson's.
  const pid = `00118500${String(operators).padStart(4, '0')}`;
  const person = await srv.addPerson({ pid, name: 'Trần Thị Vận Hành', gender: 'female', birthdate: '1985-02-01', level: '2' });
  const totpSecret = 'JBSWY3DPEHPK3PXP' + crypto.randomBytes(10).toString('hex').toUpperCase().replace(/[0189]/g, 'A').slice(0, 16);
  const id = crypto.randomUUID();
  await srv.system.store.factors.create({
    id, personId: person.id, type: 'totp', label: 'Điện thoại công vụ', confirmed: true,
    secretCiphertext: srv.system.secretBox.seal(totpSecret, `totp:${id}`), credentialId: null, publicKey: null, signCount: null, transports: null,
  });
  await srv.system.store.operators.create({ personId: person.id, roles, addedBy: 'cli:test', addedAt: clock() });
  return { id: person.id, pid, password: person.password, totpSecret, roles };
}

const sameHost = (a: string, b: string) => new URL(a).origin === new URL(b).origin;

/**
 * Follows the console's sign-in to the end; returns the browser (its console cookie set) and the
 * last response. `reauth` starts a step-up (prompt=login) instead. Each sign-in uses the TOTP code
 * of `codeAt` (a different 30-second step than any earlier sign-in of the same operator: codes are
 * single use).
 */
export async function consoleSignIn(srv: TestServer, op: Pick<TestOperator, 'pid' | 'password' | 'totpSecret'>, options: { browser?: Browser; codeAt: number; returnTo?: string; reauth?: boolean }): Promise<{ browser: Browser; res: Response }> {
  const browser = options.browser ?? new Browser(srv.adminUrl);
  const start = `${srv.adminUrl}/admin/login?${options.reauth ? 'reauth=1&' : ''}return=${encodeURIComponent(options.returnTo ?? '/admin')}`;
  // Step by step (browser.request follows nothing), so the callback's own redirect is what ends it.
  let res = await browser.request(start);
  for (let hops = 0; hops < 20; hops++) {
    if (res.status >= 300 && res.status < 400 && res.location) {
      const next = new URL(res.location, res.url).href;
      if (sameHost(next, srv.adminUrl) && !next.includes('/admin/callback')) return { browser, res: { ...res, location: new URL(next).pathname + new URL(next).search } };
      res = await browser.request(next);
      continue;
    }
    if (res.status !== 200 || !/<form[^>]*action=/.test(res.text)) return { browser, res };
    const action = new URL(formAction(res.text), res.url).href;
    const csrf = hiddenField(res.text, '_csrf');
    const post = (fields: Record<string, string>) => browser.request(action, {
      method: 'POST', body: new URLSearchParams({ _csrf: csrf, ...fields }).toString(), headers: { origin: new URL(action).origin, 'sec-fetch-site': 'same-origin' },
    });
    if (res.text.includes('name="identifier"')) res = await post({ identifier: op.pid, password: op.password });
    else if (res.text.includes('name="password"')) res = await post({ password: op.password });
    else if (res.text.includes('name="code"')) res = await post({ code: await totpCode(op.totpSecret, options.codeAt) });
    else if (res.text.includes('name="decision"')) res = await post({ decision: 'allow' });
    else return { browser, res };
  }
  throw new Error('console sign-in did not finish');
}

/** Posts a console form with the page's CSRF token (taken from `page`, or fetched from `pagePath`). */
export async function consolePost(srv: TestServer, browser: Browser, path: string, fields: Record<string, string>, pagePath = '/admin'): Promise<Response> {
  const page = await browser.get(`${srv.adminUrl}${pagePath}`);
  expect(page.status).toBe(200);
  return browser.post(`${srv.adminUrl}${path}`, { _csrf: hiddenField(page.text, '_csrf'), ...fields }, { origin: srv.adminUrl });
}

/** An operator acting through the console, as the admin actions take them. */
export const actorOf = (op: TestOperator): Actor => ({ id: op.id, roles: op.roles, via: 'console' });
/** A page's text: tags dropped, entities decoded, white space collapsed. */
export const pageText = (res: Response): string => decodeEntities(res.text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ');
/** The text of a page's role="status" message ('' when it has none). */
export const statusText = (res: Response): string => decodeEntities(/role="status"[^>]*>([^<]*)</.exec(res.text)?.[1] ?? '');

type ServerOptions = Omit<NonNullable<Parameters<typeof startTestServer>[0]>, 'now'>;

/**
 * The scaffolding of a console suite: a test server on an injected clock, its operators, sign-ins
 * and the audit log. Call `start` in beforeAll and `close` in afterAll.
 */
export interface ConsoleTestKit {
  /** The injected clock's time. */
  now: () => number;
  /** Moves the injected clock on; by default past one 30-second TOTP step (codes are single use). */
  tick: (ms?: number) => void;
  /** Starts the test server on the injected clock. */
  start: (options?: ServerOptions) => Promise<TestServer>;
  close: () => Promise<void>;
  /** A level-2 operator with `roles`, added at the injected clock's time. */
  operator: (roles: OperatorRole[]) => Promise<TestOperator>;
  /** A console browser signed in just now (the clock moved to a new TOTP step; the sign-in ends in a 302). */
  consoleAs: (op: TestOperator) => Promise<Browser>;
  /**
   * A console browser for `op`, signed in through dinhdanh once and reused while its session lasts
   * (15 minutes idle on the injected clock). A new sign-in of the same operator moves the clock to
   * the next 30-second TOTP step: codes are single use. Sign-ins are kept few on purpose: the
   * console dates the second factor by the ID token's auth_time, which comes from oidc-provider's
   * own (real) clock, and every tick of the injected clock would otherwise count against the
   * 5-minute window of the dangerous actions.
   */
  reusedConsoleAs: (op: TestOperator) => Promise<Browser>;
  /** The audit log's entries (flushed first) for an event or a filter, newest first. */
  audit: (filter: string | AuditFilter, limit?: number) => Promise<AuditEntry[]>;
}

export function consoleTestKit(options: { clockStart?: number } = {}): ConsoleTestKit {
  let clock = options.clockStart ?? Date.now();
  let server: TestServer | undefined;
  const now = () => clock;
  const tick = (ms = 31_000) => { clock += ms; };
  const srv = (): TestServer => {
    if (!server) throw new Error('consoleTestKit: start() the server first');
    return server;
  };
  const signedIn = new Map<string, { browser: Browser; at: number; step: number }>();
  return {
    now,
    tick,
    start: async (serverOptions = {}) => (server = await startTestServer({ ...serverOptions, now })),
    close: () => srv().close(),
    operator: (roles) => addOperator(srv(), roles, now),
    consoleAs: async (op) => {
      tick();
      const { browser, res } = await consoleSignIn(srv(), op, { codeAt: clock });
      expect(res.status).toBe(302);
      return browser;
    },
    reusedConsoleAs: async (op) => {
      const known = signedIn.get(op.id);
      if (known && clock - known.at < 10 * 60_000) return known.browser;
      if (known && Math.floor(clock / 30_000) <= known.step) clock = (known.step + 1) * 30_000 + 1_000;
      const { browser } = await consoleSignIn(srv(), op, { codeAt: clock });
      // Signed in: the console's own session cookie (wherever the helper stopped following redirects).
      expect(browser.cookies(srv().adminUrl).has('dd_console')).toBe(true);
      signedIn.set(op.id, { browser, at: clock, step: Math.floor(clock / 30_000) });
      return browser;
    },
    audit: async (filter, limit = 100) => {
      await srv().system.audit.flush();
      return srv().system.store.audit.search({ ...(typeof filter === 'string' ? { event: filter } : filter), limit });
    },
  };
}
