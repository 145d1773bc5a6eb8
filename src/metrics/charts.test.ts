/**
 * The usage pictures as strings: well-formed XML (every tag closed and nested, every attribute
 * quoted, no bare `<` or `&`), no NaN or Infinity anywhere, every text escaped (a portal called
 * `<script>` stays text), an accessible name and description, a legend with a pattern per level,
 * the table holding the bars' numbers, a nice axis, and an all-zero series drawn as an empty frame
 * that says so.
 */
import { describe, expect, it } from '@jest/globals';
import { barsSummary, esc, funnel, niceScale, stackedBars, type FunnelInput, type StackedBarsInput } from './charts.js';

/**
 * A small XML well-formedness check (enough for what charts.ts writes): tags balanced and nested,
 * names well-formed, attributes `name="value"` without `<` or a bare `&`, text without `<` or a bare `&`.
 * Returns the element names in document order.
 */
function wellFormed(xml: string): string[] {
  const names: string[] = [];
  const open: string[] = [];
  const entity = /&(?:amp|lt|gt|quot|#39|#\d+);/g;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    if (/[>]/.test(text) || /&/.test(text.replace(entity, ''))) throw new Error(`bad text: ${text}`);
    if (lt === -1) break;
    const gt = xml.indexOf('>', lt);
    if (gt === -1) throw new Error('unclosed tag');
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1);
      if (open.pop() !== name) throw new Error(`mismatched </${name}>`);
    } else {
      const m = /^([A-Za-z][\w:-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"<]*")*)\s*(\/?)$/.exec(tag);
      if (!m) throw new Error(`bad tag <${tag}>`);
      const attrs = [...m[2]!.matchAll(/([\w:.-]+)="([^"]*)"/g)];
      const seen = new Set<string>();
      for (const [, name, value] of attrs) {
        if (seen.has(name!)) throw new Error(`duplicate attribute ${name}`);
        seen.add(name!);
        if (/&/.test(value!.replace(entity, ''))) throw new Error(`bare & in ${name}`);
      }
      names.push(m[1]!);
      if (!m[3]) open.push(m[1]!);
    }
    i = gt + 1;
  }
  if (open.length) throw new Error(`unclosed ${open.join(', ')}`);
  return names;
}

const attr = (html: string, re: RegExp) => [...html.matchAll(re)].map((m) => m[1]!);

const LEVELS = [
  { key: 'urn:dinhdanh:loa:low', label: 'Low (password)' },
  { key: 'urn:dinhdanh:loa:substantial', label: 'Substantial' },
  { key: 'urn:dinhdanh:loa:high', label: 'High' },
  { key: 'other', label: 'Other' },
];

function hourly(values: (i: number) => Record<string, number>, n = 24): StackedBarsInput {
  return {
    id: 'usage-24h', title: 'Sign-ins per hour', desc: 'The last 24 hours, Vietnam time.', axisLabel: 'Hour (UTC+7)', barHeader: 'Hour',
    totalHeader: 'Total', tableSummary: 'The numbers as a table', emptyText: 'No sign-ins', series: LEVELS, tickEvery: 3, locale: 'en',
    bars: Array.from({ length: n }, (_, i) => ({ label: `04/12 ${String(i).padStart(2, '0')}:00`, tick: `${String(i).padStart(2, '0')}h`, values: values(i) })),
  };
}

describe('niceScale', () => {
  it('rounds the top up to a step of 1, 2 or 5 × 10^k (whole counts)', () => {
    expect(niceScale(0)).toEqual({ top: 0, step: 0 });
    expect(niceScale(1)).toEqual({ top: 1, step: 1 });
    expect(niceScale(3)).toEqual({ top: 3, step: 1 });
    expect(niceScale(7)).toEqual({ top: 8, step: 2 });
    expect(niceScale(37)).toEqual({ top: 40, step: 10 });
    expect(niceScale(101)).toEqual({ top: 150, step: 50 });
    expect(niceScale(999_999)).toEqual({ top: 1_000_000, step: 500_000 });
    for (const max of [1, 2, 9, 10, 11, 99, 250, 1234, 98765]) {
      const { top, step } = niceScale(max);
      expect(top).toBeGreaterThanOrEqual(max);
      expect(top / step).toBeLessThanOrEqual(5);
      expect(Number.isInteger(step) && /^(1|2|5)0*$/.test(String(step))).toBe(true);
    }
  });

  it('treats NaN, Infinity and negatives as nothing', () => {
    expect(niceScale(Number.NaN)).toEqual({ top: 0, step: 0 });
    expect(niceScale(Number.POSITIVE_INFINITY)).toEqual({ top: 0, step: 0 });
    expect(niceScale(-5)).toEqual({ top: 0, step: 0 });
  });
});

describe('stackedBars', () => {
  const input = hourly((i) => ({ 'urn:dinhdanh:loa:low': i % 5, 'urn:dinhdanh:loa:substantial': i % 3 ? 1 : 0, 'urn:dinhdanh:loa:high': i === 14 ? 9 : 0 }));
  const html = stackedBars(input);

  it('is well-formed, with an SVG named by its title and described by its desc', () => {
    const names = wellFormed(html);
    expect(names.filter((n) => n === 'svg' || n === 'table' || n === 'details' || n === 'figure').sort()).toEqual(['details', 'figure', 'svg', 'svg', 'svg', 'svg', 'svg', 'table'].sort());
    expect(html).toMatch(/<svg [^>]*role="img" aria-labelledby="usage-24h-title usage-24h-desc"/);
    expect(html).toContain('<title id="usage-24h-title">Sign-ins per hour</title>');
    expect(html).toContain('<desc id="usage-24h-desc">The last 24 hours, Vietnam time.</desc>');
    expect(html).not.toMatch(/NaN|Infinity/);
    // Nothing the console's CSP (style-src 'self') would refuse.
    expect(html).not.toMatch(/\sstyle=|<style|<script|\son\w+=/i);
  });

  it('draws each non-zero count as a segment carrying its number, 24 bars, the totals as the table says', () => {
    const bars = html.match(/<g class="chart-bar"/g) ?? [];
    expect(bars).toHaveLength(24);
    const segs = attr(html, /<rect class="chart-seg"[^>]*data-n="(\d+)"/g).map(Number);
    const expected = input.bars.flatMap((b) => Object.values(b.values).filter((v) => v > 0));
    expect(segs).toEqual(expected);
    // Table: one row per bar, with the same numbers per level and the same totals as the bars.
    const table = html.slice(html.indexOf('<table'));
    expect(attr(table, /<td data-total="(\d+)"/g)).toEqual(attr(html, /<g class="chart-bar" data-bar="[^"]*" data-total="(\d+)"/g));
    const row14 = /<tr data-bar="04\/12 14:00">(.*?)<\/tr>/.exec(table)![1]!;
    expect(attr(row14, /data-n="(\d+)"/g).map(Number)).toEqual([4, 1, 9, 0]);
    expect(row14).toContain('<td data-total="14">14</td>');
    expect(table).toContain('<th scope="row">04/12 14:00</th>');
    expect(table).toContain('<caption>Sign-ins per hour</caption>');
  });

  it('the busiest bar is the tallest and reaches at most the nice top; the axis is labelled every 3rd bar from the newest', () => {
    // Max total 14 → top 15 (step 5): the 14:00 bar's top is 14/15 of the plot height above the baseline.
    expect(attr(html, /<text class="chart-tick"[^>]*text-anchor="end">([^<]*)</g)).toEqual(['0', '5', '10', '15']);
    const ticks = attr(html, /<text class="chart-tick"[^>]*text-anchor="middle">([^<]*)</g);
    expect(ticks).toEqual(['02h', '05h', '08h', '11h', '14h', '17h', '20h', '23h']);
    const heights = [...html.matchAll(/<g class="chart-bar" data-bar="([^"]*)" data-total="(\d+)">(.*?)<\/g>/g)]
      .map((m) => ({ total: Number(m[2]), h: attr(m[3]!, /height="([\d.]+)"/g).map(Number).reduce((a, b) => a + b, 0) }));
    const tallest = heights.reduce((a, b) => (b.h > a.h ? b : a));
    expect(tallest.total).toBe(14);
    expect(tallest.h).toBeCloseTo((14 / 15) * (300 - 14 - 48), 0);
  });

  it('gives every level a pattern of its own and a legend with its words (not colour alone)', () => {
    const patterns = attr(html, /<pattern id="([^"]+)"/g);
    expect(patterns).toEqual(['usage-24h-p0', 'usage-24h-p1', 'usage-24h-p2', 'usage-24h-p3']);
    const marks = attr(html, /<pattern [^>]*>(.*?)<\/pattern>/g);
    expect(new Set(marks).size).toBe(4);
    const legend = /<ul class="chart-legend"[^>]*>(.*?)<\/ul>/.exec(html)![1]!;
    expect(attr(legend, /<\/svg>([^<]*)<\/li>/g)).toEqual(LEVELS.map((l) => l.label));
    expect(attr(legend, /fill="url\(#([^)]+)\)"/g)).toEqual(patterns);
    expect(legend).toContain('aria-hidden="true"');
  });

  it('90 daily bars fit the frame', () => {
    const days = stackedBars({ ...hourly((i) => ({ 'urn:dinhdanh:loa:low': (i * 7) % 11 }), 90), id: 'usage-90d', tickEvery: 14 });
    wellFormed(days);
    expect(days.match(/<g class="chart-bar"/g)).toHaveLength(90);
    const xs = attr(days, /<rect class="chart-seg" x="([\d.]+)"/g).map(Number);
    const widths = attr(days, /<rect class="chart-seg" x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g).map(Number);
    xs.forEach((x, i) => { expect(x).toBeGreaterThanOrEqual(64); expect(x + widths[i]!).toBeLessThanOrEqual(720 - 24); });
    expect(days).not.toMatch(/NaN|Infinity/);
  });

  it('all zero: an empty frame that says "No sign-ins", no bars, no NaN', () => {
    const empty = stackedBars(hourly(() => ({})));
    wellFormed(empty);
    expect(empty).toContain('data-testid="usage-24h-empty">No sign-ins</text>');
    expect(empty).not.toContain('class="chart-seg"');
    expect(empty).not.toMatch(/NaN|Infinity/);
    expect(attr(empty, /<td data-total="(\d+)"/g)).toEqual(Array(24).fill('0'));
  });

  it('no bars at all, NaN, negative or fractional counts: drawn as 0 or whole, never NaN', () => {
    const none = stackedBars({ ...hourly(() => ({}), 0) });
    wellFormed(none);
    expect(none).toContain('No sign-ins');
    const odd = stackedBars(hourly((i) => ({ 'urn:dinhdanh:loa:low': [Number.NaN, -3, Number.POSITIVE_INFINITY, 2.7][i % 4]! })));
    wellFormed(odd);
    expect(odd).not.toMatch(/NaN|Infinity/);
    expect(attr(odd, /<rect class="chart-seg"[^>]*data-n="(\d+)"/g)).toEqual(Array(6).fill('2'));
  });

  it('escapes every text: titles, labels, legend words', () => {
    const hostile = '<script>alert("x")</script> & \'';
    const out = stackedBars({
      ...hourly((i) => ({ x: i })), title: hostile, desc: hostile, axisLabel: hostile, barHeader: hostile, totalHeader: hostile,
      tableSummary: hostile, emptyText: hostile, series: [{ key: 'x"><script>', label: hostile }], id: 'a"b<c',
      bars: [{ label: hostile, tick: hostile, values: { 'x"><script>': 3 } }],
    });
    wellFormed(out);
    expect(out).not.toContain('<script');
    expect(out).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;');
    // The id is reduced to a safe one (it is used in url(#…) and aria-labelledby).
    expect(out).toContain('id="abc"');
  });

  it('Vietnamese number format on the axis and in the table', () => {
    const vi = stackedBars({ ...hourly(() => ({ 'urn:dinhdanh:loa:low': 1234 })), locale: 'vi' });
    expect(vi).toContain('>1.234</td>');
    expect(vi).toMatch(/text-anchor="end">1\.500</);
  });
});

describe('barsSummary', () => {
  it('totals and the busiest bar (the first of equals), none when all are zero', () => {
    expect(barsSummary([{ label: 'a', values: { x: 1, y: 1 } }, { label: 'b', values: { x: 3 } }, { label: 'c', values: { x: 3 } }])).toEqual({ total: 8, peak: { label: 'b', total: 3 } });
    expect(barsSummary([{ label: 'a', values: {} }])).toEqual({ total: 0, peak: null });
  });
});

describe('funnel', () => {
  const base: FunnelInput = {
    id: 'funnel-portal', title: 'Funnel, last 30 days', desc: 'From sign-in pages shown to codes redeemed.',
    headers: { step: 'Step', count: 'Count', ofFirst: 'Share of pages shown', ofPrevious: 'Share of the step before' },
    tableSummary: 'The numbers as a table', emptyText: 'No sign-ins', locale: 'en',
    steps: [
      { key: 'shown', label: 'Sign-in pages shown', n: 200 },
      { key: 'signed_in', label: 'Signed in', n: 150 },
      { key: 'consent', label: 'Consent', n: 120 },
      { key: 'code', label: 'Code redeemed', n: 119 },
    ],
  };

  it('four bars, each labelled with its words, count and share of the first step; the table says the same', () => {
    const html = funnel(base);
    wellFormed(html);
    expect(html).toMatch(/role="img" aria-labelledby="funnel-portal-title funnel-portal-desc"/);
    expect(attr(html, /<rect class="chart-funnel-bar"[^>]*data-n="(\d+)"/g)).toEqual(['200', '150', '120', '119']);
    expect(attr(html, /<text class="chart-step"[^>]*>([^<]*)</g)).toEqual(['Sign-in pages shown', 'Signed in', 'Consent', 'Code redeemed']);
    expect(attr(html, /<text class="chart-value"[^>]*>([^<]*)</g)).toEqual(['200 · 100%', '150 · 75%', '120 · 60%', '119 · 59.5%']);
    const widths = attr(html, /<rect class="chart-funnel-bar"[^>]*width="([\d.]+)"/g).map(Number);
    expect(widths[0]).toBe(480 - 8 - 150);
    expect(widths[1]! / widths[0]!).toBeCloseTo(0.75, 2);
    const table = html.slice(html.indexOf('<table'));
    expect(attr(table, /<td data-n="(\d+)"/g)).toEqual(['200', '150', '120', '119']);
    expect(table).toContain('<tr data-step="consent"><th scope="row">Consent</th><td data-n="120">120</td><td>60%</td><td>80%</td></tr>');
    expect(html).not.toMatch(/NaN|Infinity|\sstyle=/);
  });

  it('a later step larger than the first (a session reused, no page shown) stays inside the frame', () => {
    const html = funnel({ ...base, steps: [{ key: 'shown', label: 'a', n: 0 }, { key: 'signed_in', label: 'b', n: 5 }, { key: 'consent', label: 'c', n: 5 }, { key: 'code', label: 'd', n: 10 }] });
    wellFormed(html);
    const widths = attr(html, /<rect class="chart-funnel-bar"[^>]*width="([\d.]+)"/g).map(Number);
    expect(Math.max(...widths)).toBe(480 - 8 - 150);
    expect(attr(html, /<text class="chart-value"[^>]*>([^<]*)</g)).toEqual(['0 · —', '5 · —', '5 · —', '10 · —']);
    expect(html).not.toMatch(/NaN|Infinity/);
  });

  it('all zero: the frame says "No sign-ins", no bar, no NaN; Vietnamese percentages', () => {
    const html = funnel({ ...base, steps: base.steps.map((s) => ({ ...s, n: 0 })) });
    wellFormed(html);
    expect(html).toContain('data-testid="funnel-portal-empty">No sign-ins</text>');
    expect(html).not.toContain('class="chart-funnel-bar"');
    expect(html).not.toMatch(/NaN|Infinity/);
    const vi = funnel({ ...base, locale: 'vi' });
    expect(attr(vi, /<text class="chart-value"[^>]*>([^<]*)</g)[3]).toBe('119 · 59,5%');
  });

  it('escapes a portal name such as <script>', () => {
    const html = funnel({ ...base, title: 'Funnel of <script>alert(1)</script>', desc: '"<b>"' });
    wellFormed(html);
    expect(html).not.toContain('<script');
    expect(html).toContain('Funnel of &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&lt;b&gt;&quot;');
  });
});

describe('esc', () => {
  it('escapes the five characters of HTML and XML', () => {
    expect(esc('<a href="x">&\'</a>')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
  });
});
