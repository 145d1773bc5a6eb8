/**
 * Headless Chromium for the browser tests: Debian's package, driven by playwright-core. The suites
 * run only when it is installed (`.ci/run` installs it with apt-get); otherwise they are skipped
 * with a name that says why.
 */
import fs from 'node:fs';
import { describe } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';

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
