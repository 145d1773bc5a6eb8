/**
 * Failed-password delays and the hard lock, driven through the login page with an injected clock
 * (PRODUCT.md "failed passwords": after 5 consecutive failures 1 min doubling to 1 h, a hard lock
 * after 100, the same answer for unknown, wrong and locked; SECURITY.md #34, #36).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField, type Response } from '../helpers/browser.js';
import { vi } from '../../src/http/locales/vi.js';
import { expectLoginShownAgain, expectSignedIn, failures, normalise, openLogin, type LoginPage } from './pages-support.js';

const MINUTE = 60_000;
const WRONG = 'hoàn toàn không phải mật khẩu 42';

let now = Date.now();
let srv: TestServer;
let portal: Awaited<ReturnType<TestServer['addPortal']>>;
beforeAll(async () => {
  srv = await startTestServer({ now: () => now });
  portal = await srv.addPortal();
});
afterAll(async () => { await srv.close(); });

type Person = Awaited<ReturnType<TestServer['addPerson']>>;

async function attempt(login: LoginPage, person: Person, password: string): Promise<Response> {
  const res = await login.browser.post(login.action, { _csrf: login.csrf, identifier: person.pid, password });
  expect(res.status).toBeLessThan(500);
  return res;
}

/**
 * The refusal (the login form again), made comparable across attempts: status and page, with the
 * uid, the token and the echoed identifier removed.
 */
function refusalPage(res: Response, login: LoginPage, person: Person): string {
  expectLoginShownAgain(res);
  expect(alertText(res.text)).toBe(vi['login.failed']);
  expect(login.browser.cookies().has('dd_session')).toBe(false);
  return `${res.status}\n${normalise(res.text, [login.uid, hiddenField(res.text, '_csrf'), person.pid])}`;
}

async function fail(login: LoginPage, person: Person, times: number): Promise<string> {
  let page = '';
  for (let i = 0; i < times; i += 1) page = refusalPage(await attempt(login, person, WRONG), login, person);
  return page;
}

const count = (person: Person) => failures(srv, person.id, now);

describe('delays after consecutive failures', () => {
  it('after 5 wrong passwords the correct one is refused with the same page until 1 minute has passed, then accepted and the counter resets', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    const wrongPage = await fail(login, person, 5);
    expect(await count(person)).toBe(5);
    const lastFailure = now;

    // Right password during the delay: the same answer as a wrong one, and nothing counted.
    const during = await attempt(login, person, person.password);
    expect(refusalPage(during, login, person)).toBe(wrongPage);
    expect(login.browser.cookies().has('dd_session')).toBe(false);
    expect(await count(person)).toBe(5);

    // Wrong passwords during the delay are refused without being counted (no lock-out by an attacker's guesses).
    now = lastFailure + 30_000;
    await fail(login, person, 2);
    expect(await count(person)).toBe(5);

    now = lastFailure + MINUTE - 1;
    expect(refusalPage(await attempt(login, person, person.password), login, person)).toBe(wrongPage);

    now = lastFailure + MINUTE;
    expectSignedIn(await attempt(login, person, person.password), portal);
    expect(await count(person)).toBe(0);
  });

  it('a 6th failure doubles the delay to 2 minutes', async () => {
    const person = await srv.addPerson();
    const login = await openLogin(srv, portal);
    await fail(login, person, 5);
    now += MINUTE;
    const wrongPage = await fail(login, person, 1);
    expect(await count(person)).toBe(6);
    const sixth = now;

    for (const wait of [MINUTE, 2 * MINUTE - 1]) {
      now = sixth + wait;
      expect(refusalPage(await attempt(login, person, person.password), login, person)).toBe(wrongPage);
    }
    expect(await count(person)).toBe(6);

    now = sixth + 2 * MINUTE;
    expectSignedIn(await attempt(login, person, person.password), portal);
    expect(await count(person)).toBe(0);
  });

  it('the delay stops doubling at 1 hour', async () => {
    const person = await srv.addPerson();
    for (let i = 0; i < 20; i += 1) await srv.system.store.counters.increment(`login-fail:${person.id}`, 7 * 24 * 60 * MINUTE, now, { slide: true });
    const last = now;
    const login = await openLogin(srv, portal);

    now = last + 60 * MINUTE - 1;
    refusalPage(await attempt(login, person, person.password), login, person);
    now = last + 60 * MINUTE;
    expectSignedIn(await attempt(login, person, person.password), portal);
    expect(await count(person)).toBe(0);
  });

  it('after a success the count starts again: 4 new failures cause no delay', async () => {
    const person = await srv.addPerson();
    const first = await openLogin(srv, portal);
    await fail(first, person, 5);
    now += MINUTE;
    expectSignedIn(await attempt(first, person, person.password), portal);
    expect(await count(person)).toBe(0);

    const second = await openLogin(srv, portal);
    await fail(second, person, 4);
    expect(await count(person)).toBe(4);
    expectSignedIn(await attempt(second, person, person.password), portal);
    expect(await count(person)).toBe(0);
  });

  it('a burst of 20 parallel wrong passwords from 20 browsers gets past no delay: exactly the 5 free attempts count', async () => {
    const person = await srv.addPerson();
    const logins = await Promise.all(Array.from({ length: 20 }, () => openLogin(srv, portal, {}, new Browser(srv.issuer))));
    const answers = await Promise.all(logins.map((l) => l.browser.post(l.action, { _csrf: l.csrf, identifier: person.pid, password: WRONG })));
    for (const [i, res] of answers.entries()) {
      expectLoginShownAgain(res);
      expect(alertText(res.text)).toBe(vi['login.failed']);
      expect(logins[i]!.browser.cookies().has('dd_session')).toBe(false);
    }
    // The attempt is claimed atomically before the password is checked, so the burst cannot read
    // a stale count: 5 are admitted and counted, the other 15 wait for the delay uncounted.
    expect(await count(person)).toBe(5);
    expect((await srv.system.store.persons.findById(person.id))!.status).toBe('active');
  });
});

describe('hard lock after 100 consecutive failures', () => {
  it('the 100th failure locks the account; the correct password is then refused with the same page', async () => {
    const person = await srv.addPerson();
    const other = await srv.addPerson();
    for (let i = 0; i < 99; i += 1) {
      await srv.system.store.counters.increment(`login-fail:${person.id}`, 7 * 24 * 60 * MINUTE, now, { slide: true });
    }
    expect(await count(person)).toBe(99);
    expect((await srv.system.store.persons.findById(person.id))!.status).toBe('active');

    now += 60 * MINUTE + 1_000;
    const login = await openLogin(srv, portal);
    const wrongPage = refusalPage(await attempt(login, person, WRONG), login, person);
    expect(await count(person)).toBe(100);
    expect((await srv.system.store.persons.findById(person.id))!.status).toBe('locked');

    // Long after any delay: still refused, with the page a wrong password gets.
    now += 24 * 60 * MINUTE;
    const lockedPage = refusalPage(await attempt(login, person, person.password), login, person);
    expect(lockedPage).toBe(wrongPage);
    expect(login.browser.cookies().has('dd_session')).toBe(false);

    // ...and the page another person's wrong password gets (the lock is not revealed).
    const otherLogin = await openLogin(srv, portal);
    const otherPage = refusalPage(await attempt(otherLogin, other, WRONG), otherLogin, other);
    expect(otherPage).toBe(wrongPage);
  });
});
