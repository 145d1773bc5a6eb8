/**
 * axe-core in a Playwright page: its bundle is evaluated through the DevTools protocol, which the
 * pages' CSP (`script-src 'self'`) does not govern, so the page under test stays as served.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';

const AXE_SOURCE = fs.readFileSync(path.join(process.cwd(), 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/** WCAG 2.0 and 2.1, levels A and AA: what the pages have been held to so far. */
export const WCAG21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] as const;
/** The same plus WCAG 2.2's A and AA rules (target size among them). */
export const WCAG22_AA = [...WCAG21_AA, 'wcag22a', 'wcag22aa'] as const;

export interface AxeViolation {
  id: string;
  /** axe-core's impact: minor, moderate, serious or critical. */
  impact: string | null;
  /** The first offending element's selector. */
  target: string;
}

/** The rules of `tags` that axe-core finds broken on the page (id, impact and the first offending element). */
export async function axeViolations(page: Page, tags: readonly string[] = WCAG21_AA): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (values) => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Array<{ id: string; impact?: string | null; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact ?? null, target: JSON.stringify(v.nodes[0]?.target ?? []) }));
  }, [...tags]);
}

/** Only the serious and critical ones. */
export function serious(violations: AxeViolation[]): AxeViolation[] {
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * Form controls (inputs other than hidden ones, selects, text areas, buttons) whose accessible name,
 * as axe-core computes it (HTML-AAM and accname: label, aria-label(ledby), title, content), is
 * empty — WCAG 2.1 SC 1.3.1 and 4.1.2. Each is described as `tag[name="…"]#id`. Only rendered
 * controls count (`checkVisibility()`): what is not rendered — a closed `<dialog>` or `<details>`, a
 * `hidden` block — has no accessible name by definition, so open such parts first to check them.
 */
export async function unnamedControls(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  return page.evaluate(() => {
    interface El { tagName: string; id: string; getAttribute(n: string): string | null; checkVisibility(): boolean }
    const g = globalThis as unknown as {
      document: { querySelectorAll(s: string): ArrayLike<El> };
      axe: { _tree?: unknown; setup(node: unknown): unknown; teardown(): void; commons: { text: { accessibleText(el: El): string } } };
    };
    if (g.axe._tree) g.axe.teardown();
    g.axe.setup(g.document);
    try {
      return Array.from(g.document.querySelectorAll('input:not([type="hidden"]), select, textarea, button'))
        .filter((el) => el.checkVisibility() && g.axe.commons.text.accessibleText(el).trim() === '')
        .map((el) => `${el.tagName.toLowerCase()}[name="${el.getAttribute('name') ?? ''}"]#${el.id}`);
    } finally {
      g.axe.teardown();
    }
  });
}
