/**
 * Steps through the pages shared by the integration tests: a server with a portal, the password
 * page, posting a page's form with its CSRF token, consent and the redirect back to the portal, the
 * passkey forms, and what the enrolment pages show (authenticator-app seed, recovery codes).
 */
import { expect } from '@jest/globals';
import { generate } from 'otplib';
import type * as oidc from 'openid-client';
import { startTestServer, type TestServer } from './harness.js';
import { decodeEntities, formAction, hiddenField, type Browser, type Response } from './browser.js';
import { discover, type AuthRequest, type Portal } from './rp.js';

export const MINUTE = 60_000;
export const LOW = 'urn:dinhdanh:loa:low';
export const SUBSTANTIAL = 'urn:dinhdanh:loa:substantial';
export const HIGH = 'urn:dinhdanh:loa:high';

export interface Person { pid: string; password: string }

/**
 * A test server with one portal, the portal's view of it (discovery through openid-client), and
 * the server's origin (what a WebAuthn authenticator is told it is talking to).
 */
export async function startWithPortal(options: Parameters<typeof startTestServer>[0] = {}): Promise<{ srv: TestServer; portal: Portal; config: oidc.Configuration; origin: string }> {
  const srv = await startTestServer(options);
  const portal = await srv.addPortal();
  return { srv, portal, config: await discover(srv.issuer, portal), origin: new URL(srv.issuer).origin };
}

/** The authenticator-app seed shown on an enrolment page. */
export const TOTP_SECRET = /data-testid="totp-secret">([A-Z2-7]+)</;

/** The seed on an enrolment page; throws when the page shows none. */
export function totpSecret(html: string): string {
  return TOTP_SECRET.exec(html)![1]!;
}

/** The recovery codes a page shows. */
export function shownRecoveryCodes(html: string): string[] {
  return [...html.matchAll(/data-testid="recovery-code">([A-Z0-9-]+)</g)].map((m) => m[1]!);
}

/** The authenticator-app code for `secret` at the time `at` (ms). */
export function totpCode(secret: string, at: number) {
  return generate({ secret, epoch: Math.floor(at / 1000) });
}

export interface PasskeyForm<T> { action: string; csrf: string; options: T }

/** Posts a WebAuthn answer as /static/webauthn.js does: a JSON string in `response`, with the form's CSRF token. */
export async function postPasskey(browser: Browser, form: PasskeyForm<unknown>, response: unknown): Promise<Response> {
  return browser.post(form.action, { _csrf: form.csrf, response: typeof response === 'string' ? response : JSON.stringify(response) });
}

export interface PageStepsOptions {
  /** The server the pages are on; read at each step, so it may be started in `beforeAll`. */
  server: () => { issuer: string };
  /** The portal `toPortal` expects to be sent back to. */
  portal?: () => Portal;
  /** `password` first expects the page it opens to be the login form. */
  expectLoginForm?: boolean;
}

/** The steps, bound to a server (and a portal). */
export function pageSteps({ server, portal, expectLoginForm = false }: PageStepsOptions) {
  const url = (path: string) => new URL(path, server().issuer).href;

  /** Posts the page's first form with its CSRF token. */
  async function submit(browser: Browser, page: Response, fields: Record<string, string>): Promise<Response> {
    return browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), ...fields });
  }

  /** Opens the authorization URL and signs in on the login form with the password. */
  async function password(browser: Browser, req: AuthRequest, person: Person): Promise<Response> {
    const page = await browser.get(req.url.href);
    if (expectLoginForm) expect(page.text).toContain('name="identifier"');
    return browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password });
  }

  /** Consent if asked; expects the redirect back to the portal. */
  async function toPortal(browser: Browser, res: Response): Promise<Response> {
    if (!portal) throw new Error('pageSteps: toPortal needs the portal');
    if (res.status === 200 && res.text.includes('name="decision"')) res = await submit(browser, res, { decision: 'allow' });
    expect(res.status).toBe(303);
    expect(res.location!.startsWith(portal().redirect_uri)).toBe(true);
    return res;
  }

  /** The passkey form of a page: where it posts, its CSRF token, and the WebAuthn options it embeds. */
  function passkeyForm<T>(html: string, kind: 'get' | 'create'): PasskeyForm<T> {
    const form = new RegExp(`<form method="post" action="([^"]+)" data-webauthn="${kind}" data-options="([^"]*)"[^>]*>([\\s\\S]*?)</form>`).exec(html);
    if (!form) throw new Error(`no data-webauthn="${kind}" form on the page`);
    return {
      action: url(decodeEntities(form[1]!)),
      options: JSON.parse(decodeEntities(form[2]!)) as T,
      csrf: hiddenField(form[3]!, '_csrf'),
    };
  }

  return { url, submit, password, toPortal, passkeyForm };
}
