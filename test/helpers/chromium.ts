/**
 * Headless Chromium for the browser tests: Debian's package, driven by playwright-core. The suites
 * run only when it is installed (`.ci/run` installs it with apt-get); otherwise they are skipped
 * with a name that says why.
 */
import fs from 'node:fs';
import { describe } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);

/** `describe` for a browser suite, or `describe.skip` with the reason in its name. */
export function browserSuite(name: string): { describeBrowser: typeof describe; suite: string } {
  const suite = HAVE_CHROMIUM ? name : `${name} (skipped: ${CHROMIUM} is not installed — .ci/run installs it)`;
  // Jest lists no test names for a file whose tests are all skipped: say why in the run's output too.
  if (!HAVE_CHROMIUM) console.warn(suite);
  return { describeBrowser: (HAVE_CHROMIUM ? describe : describe.skip) as typeof describe, suite };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A mid-range Android phone (360 px wide): what most citizens register and sign in with. */
export const PHONE = {
  viewport: { width: 360, height: 740 },
  isMobile: true,
  hasTouch: true,
  deviceScaleFactor: 2,
  userAgent: 'Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
  locale: 'vi-VN',
} as const;

/** What a page did wrong while a test watched it. */
export interface Watch {
  cspViolations: string[];
  pageErrors: string[];
}

/** CSP refusals (from the console, which also works with JavaScript off, and from the DOM event) and page errors. */
export async function watch(page: Page, javaScript = true): Promise<Watch> {
  const w: Watch = { cspViolations: [], pageErrors: [] };
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) w.cspViolations.push(msg.text());
  });
  page.on('pageerror', (err) => w.pageErrors.push(String(err)));
  if (javaScript) {
    await page.exposeBinding('__reportCsp', (_source, text: string) => { w.cspViolations.push(text); });
    await page.addInitScript({
      content: "document.addEventListener('securitypolicyviolation', (e) => { window.__reportCsp(e.violatedDirective + ' blocked ' + e.blockedURI); });",
    });
  }
  return w;
}
