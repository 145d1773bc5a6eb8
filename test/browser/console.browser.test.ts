/**
 * The operators' console in a real browser: headless Chromium (Debian's package, driven by
 * playwright-core) against the real app, the console on its own listener as in production.
 *
 * A help-desk operator at a one-stop-shop counter signs in at loa:high through dinhdanh (password,
 * then the authenticator app's code), finds a citizen by identification number, locks the account
 * with a reason and sees the lock in the account's history; proposes raising the citizen to
 * identity level 2 with the card's evidence, which waits; a second help-desk operator, in another
 * browser, approves it, and the level is 2. The proposer's own browser offers no approval.
 *
 * Every console page on the way is held to: one h1, an accessible name for every control, and no
 * serious or critical WCAG 2.1 A/AA violation axe-core finds; no page error, no CSP refusal.
 * Runs only when /usr/bin/chromium exists (`.ci/run` installs it); otherwise skipped, saying why.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { type Browser, type Page } from 'playwright-core';
import { PHONE, browserSuite, launchChromium, watch, type Watch } from '../helpers/chromium.js';
import { axeViolations, serious, unnamedControls } from '../helpers/axe.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { addOperator, type TestOperator } from '../helpers/console.js';
import { totpCode } from '../helpers/pages.js';

jest.setTimeout(240_000);

const { describeBrowser, suite } = browserSuite('the operators\' console in headless Chromium');

let srv: TestServer;
let browser: Browser;
const DESK = { viewport: { width: 1280, height: 800 }, locale: 'vi-VN' } as const;

async function checkPage(page: Page, name: string, w: Watch, options: { width?: number } = {}): Promise<void> {
  await page.waitForLoadState('load');
  if (options.width) {
    // No horizontal scrolling of the page itself (WCAG 2.1 SC 1.4.10); wide tables scroll in their own region.
    const scroll = await page.locator('html').evaluate((el) => (el as unknown as { scrollWidth: number }).scrollWidth);
    const wide = scroll <= options.width ? [] : await page.locator('body *').evaluateAll((els, max) => els.filter((e) => (e as unknown as { getBoundingClientRect(): { right: number } }).getBoundingClientRect().right > max).map((e) => `${(e as unknown as { tagName: string }).tagName}.${(e as unknown as { className: string }).className}`).slice(0, 8), options.width);
    expect({ page: name, wide, fits: scroll <= options.width }).toEqual({ page: name, wide: [], fits: true });
  }
  expect({ page: name, h1s: await page.locator('h1').count() }).toEqual({ page: name, h1s: 1 });
  // Folded actions are checked opened too (what they hold must be named and pass), then folded again.
  const folded = await page.locator('details:not([open])').count();
  if (folded > 0) await page.locator('details').evaluateAll((ds) => ds.forEach((d) => { (d as unknown as { open: boolean }).open = true; }));
  expect({ page: name, unnamed: await unnamedControls(page) }).toEqual({ page: name, unnamed: [] });
  expect({ page: name, serious: serious(await axeViolations(page)) }).toEqual({ page: name, serious: [] });
  if (folded > 0) await page.locator('details').evaluateAll((ds) => ds.forEach((d) => { (d as unknown as { open: boolean }).open = false; }));
  expect({ page: name, ...w }).toEqual({ page: name, cspViolations: [], pageErrors: [] });
}

/** Signs in at the console as a person would: the console sends the browser to dinhdanh and back. */
async function signIn(page: Page, op: TestOperator): Promise<void> {
  await page.goto(`${srv.adminUrl}/admin`);
  expect(new URL(page.url()).origin).toBe(srv.issuer);
  await page.locator('input[name="identifier"]').fill(op.pid);
  await page.locator('input[name="password"]').fill(op.password);
  await Promise.all([page.waitForURL(/second-factor|interaction/), page.locator('button[type="submit"]').first().click()]);
  await page.locator('input[name="code"]').fill(await totpCode(op.totpSecret, Date.now()));
  await Promise.all([page.waitForEvent('load'), page.locator('button[type="submit"]').first().click()]);
  if (await page.locator('button[name="decision"][value="allow"]').count()) {
    await Promise.all([page.waitForURL(`${srv.adminUrl}/admin`), page.locator('button[name="decision"][value="allow"]').click()]);
  }
  expect(page.url()).toBe(`${srv.adminUrl}/admin`);
}

describeBrowser(suite, () => {
  let first: TestOperator;
  let second: TestOperator;
  let citizen: { id: string; pid: string };

  beforeAll(async () => {
    srv = await startTestServer();
    browser = await launchChromium();
    first = await addOperator(srv, ['helpdesk']);
    second = await addOperator(srv, ['helpdesk']);
    citizen = await srv.addPerson({ pid: '079190000321', name: 'Lê Thị Cúc', gender: 'female', birthdate: '1990-07-09' });
  });
  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('a help-desk operator signs in at loa:high, finds a citizen, locks the account with a reason, sees it in the history, and proposes level 2; a second operator approves', async () => {
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const w = await watch(page);
    await signIn(page, first);
    await checkPage(page, 'dashboard', w);

    await page.getByRole('link', { name: 'Tài khoản', exact: true }).click();
    await page.waitForURL(`${srv.adminUrl}/admin/accounts`);
    await checkPage(page, 'account search', w);
    await page.locator('input[name="q"]').fill(citizen.pid);
    await Promise.all([page.waitForEvent('load'), page.locator('form[data-testid="account-search"] button[type="submit"]').click()]);
    expect(page.url()).toBe(`${srv.adminUrl}/admin/accounts/${citizen.id}`);
    await expect(page.locator('[data-testid="account-state"]').getAttribute('data-state')).resolves.toBe('active');
    await checkPage(page, 'account', w);

    const reason = 'Công dân báo mất điện thoại tại quầy, yêu cầu khóa';
    await page.locator('[data-testid="action-lock"] > summary').click();
    const lock = page.locator('[data-testid="action-lock"] form');
    await lock.locator('textarea[name="reason"]').fill(reason);
    await Promise.all([page.waitForEvent('load'), lock.locator('button[type="submit"]').click()]);
    await expect(page.locator('[data-testid="account-state"]').getAttribute('data-state')).resolves.toBe('locked:operator');
    await expect(page.locator('main').textContent()).resolves.toContain(reason);
    await checkPage(page, 'account after the lock', w);
    expect((await srv.system.store.persons.findById(citizen.id))!.status).toBe('locked');
    await page.locator('[data-testid="history-link"]').click();
    await page.waitForLoadState('load');
    await expect(page.locator('main').textContent()).resolves.toContain('ACCOUNT_LOCKED');
    await checkPage(page, 'account history', w);

    // Level 2: proposed, not done; the proposer is offered no approval of it.
    await page.goBack();
    await page.locator('details:has(select[name="document_type"]) > summary').click();
    const level = page.locator('form[action$="/level"]').filter({ has: page.locator('select[name="document_type"]') });
    await level.locator('select[name="document_type"]').selectOption('cccd-chip');
    await level.locator('input[name="document_number"]').fill('079190000321');
    await level.locator('input[name="place"]').fill('Bộ phận một cửa UBND phường Bến Nghé');
    await level.locator('textarea[name="reason"]').fill('Đối chiếu chip căn cước tại quầy');
    await Promise.all([page.waitForEvent('load'), level.locator('button[type="submit"]').click()]);
    await checkPage(page, 'after proposing level 2', w);
    expect((await srv.system.store.persons.findById(citizen.id))!.level).toBe(1);
    const [proposal] = await srv.system.adminActions.approvals.list({ state: 'pending', limit: 5 });
    expect(proposal).toMatchObject({ action: 'set-level-2', subject: citizen.id, proposedBy: first.id });
    await page.goto(`${srv.adminUrl}/admin/approvals/${proposal!.id}`);
    expect(await page.locator('[data-testid="approve-form"]').count()).toBe(0);
    await checkPage(page, 'own proposal', w);
    await context.close();

    // The second operator, in another browser.
    const other = await browser.newContext(DESK);
    const page2 = await other.newPage();
    const w2 = await watch(page2);
    await signIn(page2, second);
    // The dashboard says a proposal is waiting.
    await page2.locator('[data-testid="pending-approvals"] a').click();
    await page2.waitForLoadState('load');
    await checkPage(page2, 'approvals', w2);
    await page2.goto(`${srv.adminUrl}/admin/approvals/${proposal!.id}`);
    await checkPage(page2, 'proposal to decide', w2);
    const approve = page2.locator('[data-testid="approve-form"]');
    await approve.locator('textarea[name="reason"]').fill('Đã xem bằng chứng chip, đồng ý');
    await Promise.all([page2.waitForEvent('load'), approve.locator('button[type="submit"]').click()]);
    await checkPage(page2, 'approved proposal', w2);
    expect((await srv.system.store.persons.findById(citizen.id))!.level).toBe(2);
    await srv.system.audit.flush();
    const [changed] = await srv.system.store.audit.search({ event: 'ACCOUNT_LEVEL_CHANGED', person: citizen.id, limit: 1 });
    expect(changed!.details).toMatchObject({ operator: first.id, approved_by: second.id, role: 'helpdesk', via: 'console' });
    await other.close();
  });

  it('every section\'s page, in both languages, at desk width and on a 360 px phone: one h1, named controls, no serious axe-core violation', async () => {
    const portal = await srv.addPortal();
    // Usage figures so the pictures draw bars of every level and a funnel (metrics/charts.ts).
    const vn = new Date(Date.now() + 7 * 3600_000 - 3600_000);
    const day = vn.toISOString().slice(0, 10);
    const hh = String(vn.getUTCHours()).padStart(2, '0');
    const levels = ['urn:dinhdanh:loa:low', 'urn:dinhdanh:loa:substantial', 'urn:dinhdanh:loa:high', 'urn:example:other'];
    await srv.system.store.usage.add([
      ...levels.flatMap((acr, i) => [
        { day, portal: portal.client_id, key: `acr:${acr}`, n: 40 - 9 * i },
        { day, portal: portal.client_id, key: `hour:${hh}:${acr}`, n: 40 - 9 * i },
      ]),
      { day, portal: portal.client_id, key: 'funnel:shown', n: 150 },
      { day, portal: portal.client_id, key: 'signins', n: 112 },
      { day, portal: portal.client_id, key: 'consent:given', n: 90 },
      { day, portal: portal.client_id, key: 'funnel:code', n: 88 },
    ]);
    const paths = ['/admin', '/admin/accounts', `/admin/accounts/${citizen.id}`, `/admin/accounts/${citizen.id}/history`, '/admin/portals', '/admin/portals/new',
      `/admin/portals/${portal.client_id}`, '/admin/orgs', '/admin/keys', '/admin/approvals', '/admin/audit', '/admin/operators', `/admin/operators/${first.id}`,
      '/admin/usage', `/admin/usage?portal=${portal.client_id}`];
    for (const [label, options] of [['desk', DESK], ['phone', PHONE]] as const) {
      const context = await browser.newContext(options);
      const page = await context.newPage();
      const w = await watch(page);
      // The pages seen without a console session: signed out, and a sign-in that expired.
      for (const path of ['/admin/signed-out', '/admin/callback?code=x&state=y']) {
        await page.goto(`${srv.adminUrl}${path}`);
        await checkPage(page, `${path} (${label})`, w, label === 'phone' ? { width: 360 } : {});
      }
      // An operator of every role (one per browser: an app code works once).
      await signIn(page, await addOperator(srv, ['helpdesk', 'integration', 'keys', 'auditor', 'admin']));
      for (const path of paths) {
        for (const lang of ['vi', 'en']) {
          await page.goto(`${srv.adminUrl}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`);
          expect(await page.locator('html').getAttribute('lang')).toBe(lang);
          await checkPage(page, `${path} (${label}, ${lang})`, w, label === 'phone' ? { width: 360 } : {});
          // The usage pictures are drawn (named SVG, bars of the figures above) and styled by admin.css, not refused by the CSP.
          if (path.startsWith('/admin/usage') || path === `/admin/portals/${portal.client_id}`) {
            const charts = page.locator('figure.chart svg[role="img"]');
            expect({ path, charts: await charts.count() }).toEqual({ path, charts: path.startsWith('/admin/usage') ? 2 : 1 });
            const styled = path.startsWith('/admin/usage') ? 'figure.chart pattern rect' : 'figure.chart rect.chart-funnel-bar';
            const fill = await page.locator(styled).first().evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(el).fill);
            expect({ path, fill }).toEqual({ path, fill: 'rgb(29, 112, 184)' });
            if (path.startsWith('/admin/usage')) expect(await page.locator('figure.chart rect.chart-seg').count()).toBeGreaterThan(3);
          }
        }
      }
      await context.close();
    }
  });
});
