/**
 * The login form over real HTTP: refusals that change nothing (SECURITY.md #30, #35), equal answers
 * for wrong, unknown and locked (#34), and malformed identification numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { vi } from '../../src/http/locales/vi.js';
import {
  expectLoginShownAgain, expectSignedIn, failures, form, ipFailures, normalise, openLogin, rawPost, sameOrigin, type LoginPage,
} from './pages-support.js';

let srv: TestServer;
let portal: Awaited<ReturnType<TestServer['addPortal']>>;
beforeAll(async () => {
  srv = await startTestServer();
  portal = await srv.addPortal();
});
afterAll(async () => { await srv.close(); });

/** What the person sees must not be a crash page. */
function notACrash(res: Response): void {
  expect(res.status).toBeLessThan(500);
  expect(res.text).not.toContain(vi['error.server_error']);
}

describe('login POSTs that are refused change nothing (SECURITY.md #30, #35)', () => {
  type Person = Awaited<ReturnType<TestServer['addPerson']>>;
  interface Refusal {
    name: string;
    status: number | number[];
    /** The alert the refusal page shows (when it is an HTML page of ours). */
    alert?: string;
    send(login: LoginPage, person: Person): Promise<Response>;
  }

  const validFields = (login: LoginPage, person: Person) => ({ _csrf: login.csrf, identifier: person.pid, password: person.password });

  const refusals: Refusal[] = [
    {
      name: 'without the interaction cookie (a fresh browser)',
      status: [400, 401, 403],
      send: (login, person) => new Browser(srv.issuer).post(login.action, validFields(login, person)),
    },
    {
      name: 'with a forged _csrf',
      status: 403,
      alert: vi['error.csrf'],
      send: (login, person) => login.browser.post(login.action, { ...validFields(login, person), _csrf: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
    },
    {
      name: 'with the _csrf of another interaction',
      status: 403,
      alert: vi['error.csrf'],
      send: async (login, person) => {
        const other = await openLogin(srv, portal);
        return login.browser.post(login.action, { ...validFields(login, person), _csrf: other.csrf });
      },
    },
    {
      name: 'without _csrf',
      status: 403,
      alert: vi['error.csrf'],
      send: (login, person) => login.browser.post(login.action, { identifier: person.pid, password: person.password }),
    },
    {
      name: 'from another origin (Origin: https://evil.example, no Fetch Metadata)',
      status: 403,
      alert: vi['error.cross_origin'],
      send: (login, person) => rawPost(login.browser, login.action, form(validFields(login, person)), { origin: 'https://evil.example' }),
    },
    {
      name: 'from another origin (Origin: https://evil.example, Sec-Fetch-Site: cross-site)',
      status: 403,
      alert: vi['error.cross_origin'],
      send: (login, person) => rawPost(login.browser, login.action, form(validFields(login, person)), { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }),
    },
    {
      name: 'from a sibling portal on the same parent domain (Sec-Fetch-Site: same-site)',
      status: 403,
      alert: vi['error.cross_origin'],
      send: (login, person) => rawPost(login.browser, login.action, form(validFields(login, person)), {
        origin: 'http://portal.127.0.0.1.nip.io:9001', 'sec-fetch-site': 'same-site',
      }),
    },
    {
      name: 'from another origin known only by its Referer',
      status: 403,
      alert: vi['error.cross_origin'],
      send: (login, person) => rawPost(login.browser, login.action, form(validFields(login, person)), { referer: 'https://evil.example/page' }),
    },
    {
      name: 'with an operator-shaped field identifier[$ne]=x',
      status: 400,
      alert: vi['error.malformed_form'],
      send: (login, person) => rawPost(login.browser, login.action,
        `_csrf=${encodeURIComponent(login.csrf)}&identifier[$ne]=x&password=${encodeURIComponent(person.password)}`, sameOrigin(srv.issuer)),
    },
    {
      name: 'with identifier and an operator-shaped identifier[$ne] beside it',
      status: 400,
      alert: vi['error.malformed_form'],
      send: (login, person) => rawPost(login.browser, login.action,
        `_csrf=${encodeURIComponent(login.csrf)}&identifier=${person.pid}&identifier[$ne]=x&password=${encodeURIComponent(person.password)}`, sameOrigin(srv.issuer)),
    },
    {
      name: 'with an operator-shaped field identifier.$gt=',
      status: 400,
      alert: vi['error.malformed_form'],
      send: (login, person) => rawPost(login.browser, login.action,
        `_csrf=${encodeURIComponent(login.csrf)}&identifier.$gt=&password=${encodeURIComponent(person.password)}`, sameOrigin(srv.issuer)),
    },
    {
      name: 'with a JSON body carrying an operator',
      status: [400, 415],
      send: (login, person) => rawPost(login.browser, login.action,
        JSON.stringify({ _csrf: login.csrf, identifier: { $ne: null }, password: person.password }),
        { ...sameOrigin(srv.issuer), 'content-type': 'application/json' }),
    },
    {
      name: 'with a JSON body shaped like the form',
      status: [400, 415],
      send: (login, person) => rawPost(login.browser, login.action, JSON.stringify(validFields(login, person)),
        { ...sameOrigin(srv.issuer), 'content-type': 'application/json' }),
    },
    {
      name: 'with a duplicated identifier field',
      status: 400,
      send: (login, person) => rawPost(login.browser, login.action,
        `${form(validFields(login, person))}&identifier=${person.pid}`, sameOrigin(srv.issuer)),
    },
    {
      name: 'with a duplicated _csrf field',
      status: 400,
      send: (login, person) => rawPost(login.browser, login.action,
        `${form(validFields(login, person))}&_csrf=${encodeURIComponent(login.csrf)}`, sameOrigin(srv.issuer)),
    },
    {
      name: 'with a body over the cap (a 100 kB password)',
      status: 413,
      alert: vi['error.body_too_large'],
      send: (login, person) => rawPost(login.browser, login.action,
        form({ _csrf: login.csrf, identifier: person.pid, password: 'x'.repeat(100_000) }), sameOrigin(srv.issuer)),
    },
  ];

  it.each(refusals.map((r) => [r.name, r] as const))('%s → refused, then the real sign-in still works', async (_name, refusal) => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const ipBefore = await ipFailures(srv);

    const res = await refusal.send(login, person);
    notACrash(res);
    if (Array.isArray(refusal.status)) expect(refusal.status).toContain(res.status);
    else expect(res.status).toBe(refusal.status);
    expect(res.location).toBeNull();
    expect(res.text).not.toContain('name="decision"');
    if (refusal.alert) expect(alertText(res.text)).toBe(refusal.alert);

    // Nothing changed: no failure counted, no session, and the interaction still works.
    expect(await failures(srv, person.id)).toBe(0);
    expect(await ipFailures(srv)).toBe(ipBefore);
    expect(login.browser.cookies().has('dd_session')).toBe(false);
    const ok = await login.browser.post(login.action, validFields(login, person));
    expectSignedIn(ok, portal);
    expect(await failures(srv, person.id)).toBe(0);
  });

  it('a cross-origin POST with the right password does not sign the person in, even with a valid CSRF token', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const res = await rawPost(login.browser, login.action, form(validFields(login, person)), { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(res.status).toBe(403);
    expect(login.browser.cookies().has('dd_session')).toBe(false);
    // The same browser then reloads the page: still the login page, not signed in.
    const again = await login.browser.get(login.page.url);
    expect(again.status).toBe(200);
    expect(again.text).toContain('name="identifier"');
  });

  it('the consent POST is guarded the same way (cookie, CSRF, origin)', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const consent = await login.browser.post(login.action, validFields(login, person));
    expect(consent.status).toBe(200);
    expect(consent.text).toContain('name="decision"');
    const action = new URL(/<form[^>]*action="([^"]*)"/.exec(consent.text)![1]!, srv.issuer).href;
    const csrf = hiddenField(consent.text, '_csrf');

    const fresh = await new Browser(srv.issuer).post(action, { _csrf: csrf, decision: 'allow' });
    notACrash(fresh);
    expect(fresh.status).toBeGreaterThanOrEqual(400);
    expect(fresh.location).toBeNull();

    const forged = await login.browser.post(action, { _csrf: 'forged', decision: 'allow' });
    expect(forged.status).toBe(403);
    const sibling = await rawPost(login.browser, action, form({ _csrf: csrf, decision: 'allow' }), { origin: 'http://sibling.example', 'sec-fetch-site': 'same-site' });
    expect(sibling.status).toBe(403);
    const operator = await rawPost(login.browser, action, `_csrf=${encodeURIComponent(csrf)}&decision[$ne]=deny`, sameOrigin(srv.issuer));
    expect(operator.status).toBe(400);
    for (const r of [forged, sibling, operator]) {
      notACrash(r);
      expect(r.location).toBeNull();
    }

    // Nothing was decided: the real decision still goes through.
    const ok = await login.browser.post(action, { _csrf: csrf, decision: 'allow' });
    expect(ok.status).toBe(303);
    expect(new URL(ok.location!).searchParams.get('code')).toBeTruthy();
  });
});

describe('equal answers for wrong password, unknown identifier and locked account (SECURITY.md #34)', () => {
  it('same status, same alert, same page apart from the uid, the CSRF token and the echoed identifier', async () => {
    const known = await srv.addPerson();
    const locked = await srv.addPerson();
    expect(await srv.system.store.persons.setStatus(locked.id, 'locked')).toBe(true);
    const unknownPid = '001090999999';
    expect(await srv.system.store.persons.findByPid(unknownPid)).toBeUndefined();

    const answers: Array<{ res: Response; login: LoginPage; identifier: string }> = [];
    for (const [identifier, password] of [
      [known.pid, 'not the password at all 123'],
      [unknownPid, 'not the password at all 123'],
      [locked.pid, locked.password],
    ] as const) {
      const login = await openLogin(srv, portal);
      const res = await login.browser.post(login.action, { _csrf: login.csrf, identifier, password });
      notACrash(res);
      answers.push({ res, login, identifier });
    }

    const [wrong, unknown, lockedAnswer] = answers;
    expectLoginShownAgain(wrong!.res);
    expect(unknown!.res.status).toBe(wrong!.res.status);
    expect(lockedAnswer!.res.status).toBe(wrong!.res.status);

    expect(alertText(wrong!.res.text)).toBe(vi['login.failed']);
    expect(alertText(unknown!.res.text)).toBe(alertText(wrong!.res.text));
    expect(alertText(lockedAnswer!.res.text)).toBe(alertText(wrong!.res.text));

    const pages = answers.map((a) => normalise(a.res.text, [a.login.uid, hiddenField(a.res.text, '_csrf'), a.identifier]));
    expect(pages[1]).toBe(pages[0]);
    expect(pages[2]).toBe(pages[0]);

    // Headers that could tell them apart are the same too.
    const header = (r: Response, name: string) => r.headers.get(name);
    for (const name of ['content-type', 'cache-control', 'content-security-policy', 'set-cookie']) {
      expect(header(unknown!.res, name)).toBe(header(wrong!.res, name));
      expect(header(lockedAnswer!.res, name)).toBe(header(wrong!.res, name));
    }
    // The locked person's correct password was refused, and nobody was signed in.
    for (const a of answers) expect(a.login.browser.cookies().has('dd_session')).toBe(false);
  });
});

describe('malformed identification numbers in the form', () => {
  const fullWidth = (s: string) => [...s].map((c) => String.fromCharCode(c.charCodeAt(0) - 0x30 + 0xff10)).join('');
  const shapes: Array<[string, (pid: string) => string]> = [
    ['11 digits', (pid) => pid.slice(0, 11)],
    ['13 digits', (pid) => `${pid}0`],
    ['letters', () => 'abcdefghijkl'],
    ['digits with a letter', (pid) => `${pid.slice(0, 11)}a`],
    ['full-width digits', (pid) => fullWidth(pid)],
    ['Arabic-Indic digits', (pid) => [...pid].map((c) => String.fromCharCode(c.charCodeAt(0) - 0x30 + 0x0660)).join('')],
  ];

  it.each(shapes)('%s → 400 with an alert, even with the right password; nothing counted', async (_name, shape) => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const ipBefore = await ipFailures(srv);
    const identifier = shape(person.pid);
    expect(identifier).not.toBe(person.pid);

    const res = await login.browser.post(login.action, { _csrf: login.csrf, identifier, password: person.password });
    notACrash(res);
    expect(res.status).toBe(400);
    expect(alertText(res.text)).toBe(vi['login.identifier_format']);
    expect(res.text).toContain('name="identifier"');
    expect(login.browser.cookies().has('dd_session')).toBe(false);

    expect(await failures(srv, person.id)).toBe(0);
    expect(await ipFailures(srv)).toBe(ipBefore);
  });
});
