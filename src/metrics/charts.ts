/**
 * The console's usage pictures, drawn on the server as SVG (no script, no third-party code): a
 * stacked bar chart (sign-ins per hour or per day, by level reached) and a funnel (sign-in pages
 * shown → signed in → consent → code redeemed). Pure functions: data and already-translated words
 * in, an HTML fragment out.
 *
 * Each picture is one `<figure>`:
 * - the SVG, `role="img"` named by its `<title>` and described by its `<desc>` (WAI-ARIA Graphics
 *   Module; SVG 2 §5.9), whose text states what the picture shows in words (WCAG 2.1 SC 1.1.1);
 * - a legend in HTML, each level drawn with its own fill pattern as well as its colour, so nothing
 *   is told by colour alone (SC 1.4.1); colours (admin.css) have at least 3:1 against the white
 *   background and segments are parted by a white gap (SC 1.4.11);
 * - the same numbers as a table in a `<details>`: a keyboard user opens it, a screen reader reads
 *   it, and the table and the bars are made from the same figures by the same call.
 *
 * The console's Content-Security-Policy (`style-src 'self'`, http/headers.ts) refuses `style`
 * attributes and `<style>` elements: geometry is given by SVG presentation attributes (x, y,
 * width, height, fill="url(#…)"), which CSS does not govern, and colours by classes of admin.css.
 * Every text is escaped here; every number goes through `finite()`, so no NaN or Infinity can
 * reach an attribute, and an all-zero series draws an empty frame that says so in words.
 */

/** Text escaped for HTML and XML content and for double- or single-quoted attributes. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number safe to write into an attribute: finite, at most two decimals (else 0). */
function finite(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 100) / 100 : 0;
}

/** A count from a report: a non-negative finite integer (anything else counts as 0). */
function count(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/**
 * The top of a count axis and its step: the step is 1, 2 or 5 × 10^k (at least 1: counts are whole),
 * chosen so that about `ticks` steps reach at or above `max`. 0 for an all-zero series.
 */
export function niceScale(max: number, ticks = 4): { top: number; step: number } {
  const m = count(max);
  if (m === 0) return { top: 0, step: 0 };
  const raw = m / Math.max(1, ticks);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((f) => f * magnitude).find((s) => s >= raw) ?? 10 * magnitude);
  return { top: Math.ceil(m / step) * step, step };
}

/** The number formats of the console's two languages (vi: 1.234 and 45,2 %; en: 1,234 and 45.2%). */
function formats(locale: 'vi' | 'en') {
  const tag = locale === 'vi' ? 'vi-VN' : 'en-GB';
  const integer = new Intl.NumberFormat(tag, { maximumFractionDigits: 0 });
  const percent = new Intl.NumberFormat(tag, { style: 'percent', maximumFractionDigits: 1 });
  return { n: (v: number) => integer.format(v), pct: (ratio: number) => (Number.isFinite(ratio) ? percent.format(ratio) : '—') };
}

/** An id usable in `id`/`aria-labelledby`/`url(#…)`: a chart's ids are unique within the page. */
function safeId(id: string): string {
  const clean = id.replace(/[^A-Za-z0-9_-]/g, '');
  return /^[A-Za-z]/.test(clean) ? clean : `c${clean}`;
}

// ---- Patterns ---------------------------------------------------------------------------------

/**
 * The fill patterns, by series index: solid, diagonal hatching, cross-hatching, horizontal lines.
 * A fifth series and beyond cycle through them again with another colour class.
 */
const PATTERN_MARKS = ['', 'M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4', 'M0,0 l8,8 M8,0 l-8,8', 'M0,4 h8'] as const;
const SERIES_CLASSES = 4;

function patternDefs(id: string, n: number): string {
  const defs: string[] = [];
  for (let i = 0; i < n; i++) {
    const marks = PATTERN_MARKS[i % PATTERN_MARKS.length]!;
    defs.push(`<pattern id="${id}-p${i}" patternUnits="userSpaceOnUse" width="8" height="8">`
      + `<rect class="chart-s${i % SERIES_CLASSES}" width="8" height="8"/>`
      + (marks ? `<path class="chart-hatch" d="${marks}"/>` : '')
      + '</pattern>');
  }
  return `<defs>${defs.join('')}</defs>`;
}

function legend(id: string, series: ReadonlyArray<{ label: string }>): string {
  const items = series.map((s, i) => `<li><svg class="chart-swatch" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">`
    + `<rect x="0.5" y="0.5" width="15" height="15" fill="url(#${id}-p${i})" class="chart-swatch-box"/></svg>${esc(s.label)}</li>`);
  return `<ul class="chart-legend" data-testid="${id}-legend">${items.join('')}</ul>`;
}

// ---- Stacked bars -----------------------------------------------------------------------------

export interface StackedBarsInput {
  /** Unique within the page (ids of the title, desc and patterns derive from it). */
  id: string;
  /** The picture's name (its `<title>`, the table's caption). */
  title: string;
  /** What it shows in words (its `<desc>`): totals, the busiest bar, the time zone. */
  desc: string;
  /** Under the horizontal axis, e.g. "Hour, Vietnam time (UTC+7)". */
  axisLabel: string;
  /** The table's header of the bars' column, e.g. "Hour". */
  barHeader: string;
  /** The table's header of the total column. */
  totalHeader: string;
  /** What the closed `<details>` says, e.g. "The numbers as a table". */
  tableSummary: string;
  /** Drawn in place of the bars when every count is 0. */
  emptyText: string;
  /** The stacked series in drawing order (bottom first), with the legend's words. */
  series: ReadonlyArray<{ key: string; label: string }>;
  /** The bars, oldest first: the full label (table, tooltip), the short one (axis), counts per series key. */
  bars: ReadonlyArray<{ label: string; tick: string; values: Readonly<Record<string, number>> }>;
  /** Every `tickEvery`-th bar, counted back from the newest, gets an axis label. */
  tickEvery: number;
  locale: 'vi' | 'en';
}

const W = 720;

/** A stacked bar chart with its legend and its table, as one `<figure>`. */
export function stackedBars(input: StackedBarsInput): string {
  const id = safeId(input.id);
  const { n: fmt } = formats(input.locale);
  const H = 300;
  const left = 64;
  const right = 24;
  const top = 14;
  const bottom = 48;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const bars = input.bars.map((b) => {
    const values = input.series.map((s) => count(b.values[s.key]));
    return { ...b, values, total: values.reduce((a, v) => a + v, 0) };
  });
  const max = bars.reduce((m, b) => Math.max(m, b.total), 0);
  const scale = niceScale(max);
  const slot = bars.length ? plotW / bars.length : plotW;
  const barW = finite(Math.max(1, slot * (bars.length > 40 ? 0.72 : 0.78)));
  const baseline = top + plotH;
  const y = (v: number) => finite(scale.top > 0 ? baseline - (v / scale.top) * plotH : baseline);

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${id}-title ${id}-desc" data-testid="${id}-svg">`);
  parts.push(`<title id="${id}-title">${esc(input.title)}</title><desc id="${id}-desc">${esc(input.desc)}</desc>`);
  parts.push(patternDefs(id, input.series.length));
  // Gridlines and the count axis.
  if (scale.top > 0) {
    for (let v = 0; v <= scale.top; v += scale.step) {
      parts.push(`<line class="chart-grid" x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}"/>`);
      parts.push(`<text class="chart-tick" x="${left - 6}" y="${finite(y(v) + 4)}" text-anchor="end">${esc(fmt(v))}</text>`);
    }
  }
  // The bars: one group per bar, a rect per non-zero segment (bottom first), its numbers in data-*.
  bars.forEach((b, i) => {
    const x = finite(left + i * slot + (slot - barW) / 2);
    const segs: string[] = [];
    let acc = 0;
    b.values.forEach((v, s) => {
      if (v === 0) return;
      const y1 = y(acc + v);
      const h = finite(y(acc) - y1);
      acc += v;
      segs.push(`<rect class="chart-seg" x="${x}" y="${y1}" width="${barW}" height="${h}" fill="url(#${id}-p${s})" data-series="${esc(input.series[s]!.key)}" data-n="${v}"/>`);
    });
    const tip = [`${b.label}: ${fmt(b.total)}`, ...b.values.map((v, s) => (v ? `${input.series[s]!.label} ${fmt(v)}` : '')).filter(Boolean)].join(' · ');
    parts.push(`<g class="chart-bar" data-bar="${esc(b.label)}" data-total="${b.total}"><title>${esc(tip)}</title>${segs.join('')}</g>`);
    if ((bars.length - 1 - i) % Math.max(1, Math.floor(input.tickEvery)) === 0) {
      const cx = finite(left + i * slot + slot / 2);
      parts.push(`<line class="chart-axis" x1="${cx}" x2="${cx}" y1="${baseline}" y2="${baseline + 4}"/>`);
      parts.push(`<text class="chart-tick" x="${cx}" y="${baseline + 18}" text-anchor="middle">${esc(b.tick)}</text>`);
    }
  });
  parts.push(`<line class="chart-axis" x1="${left}" x2="${W - right}" y1="${baseline}" y2="${baseline}"/>`);
  parts.push(`<text class="chart-axis-label" x="${finite(left + plotW / 2)}" y="${H - 8}" text-anchor="middle">${esc(input.axisLabel)}</text>`);
  if (max === 0) {
    // At the right end, where a narrow screen's scrolling region opens (admin.css).
    parts.push(`<text class="chart-empty" x="${W - right - 8}" y="${finite(top + plotH / 2)}" text-anchor="end" data-testid="${id}-empty">${esc(input.emptyText)}</text>`);
  }
  parts.push('</svg>');

  const head = `<tr><th scope="col">${esc(input.barHeader)}</th>${input.series.map((s) => `<th scope="col">${esc(s.label)}</th>`).join('')}<th scope="col">${esc(input.totalHeader)}</th></tr>`;
  const rows = bars.map((b) => `<tr data-bar="${esc(b.label)}"><th scope="row">${esc(b.label)}</th>`
    + b.values.map((v, s) => `<td data-series="${esc(input.series[s]!.key)}" data-n="${v}">${esc(fmt(v))}</td>`).join('')
    + `<td data-total="${b.total}">${esc(fmt(b.total))}</td></tr>`);
  const table = tableIn(id, input.title, input.tableSummary, `<thead>${head}</thead><tbody>${rows.join('')}</tbody>`);

  return `<figure class="chart" id="${id}" data-testid="${id}">`
    + `<div class="chart-scroll" tabindex="0" role="region" aria-label="${esc(input.title)}">${parts.join('')}</div>`
    + legend(id, input.series)
    + table
    + '</figure>';
}

function tableIn(id: string, title: string, summary: string, body: string): string {
  return `<details class="chart-data"><summary>${esc(summary)}</summary>`
    + `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(title)}">`
    + `<table data-testid="${id}-table"><caption>${esc(title)}</caption>${body}</table></div></details>`;
}

/** The figures of a series of bars told in words: the total and the busiest bar (for the `<desc>`). */
export function barsSummary(bars: ReadonlyArray<{ label: string; values: Readonly<Record<string, number>> }>): { total: number; peak: { label: string; total: number } | null } {
  let total = 0;
  let peak: { label: string; total: number } | null = null;
  for (const b of bars) {
    const t = Object.values(b.values).reduce((a, v) => a + count(v), 0);
    total += t;
    if (t > 0 && (!peak || t > peak.total)) peak = { label: b.label, total: t };
  }
  return { total, peak };
}

// ---- Funnel -----------------------------------------------------------------------------------

export interface FunnelInput {
  id: string;
  title: string;
  desc: string;
  /** The table's headers: step, count, share of the first step, share of the step before. */
  headers: { step: string; count: string; ofFirst: string; ofPrevious: string };
  tableSummary: string;
  emptyText: string;
  /** The steps in order, with their words and counts. */
  steps: ReadonlyArray<{ key: string; label: string; n: number }>;
  locale: 'vi' | 'en';
}

/**
 * A funnel: one horizontal bar per step, each labelled directly with its words, its count and its
 * share of the first step (so no colour or legend is needed to read it). Bars are scaled to the
 * largest step, not the first: a later step may count more than an earlier one (a sign-in that
 * reused a session showed no sign-in page), and a bar never runs out of the frame.
 */
export function funnel(input: FunnelInput): string {
  const id = safeId(input.id);
  const { n: fmt, pct } = formats(input.locale);
  const steps = input.steps.map((s) => ({ ...s, n: count(s.n) }));
  const first = steps[0]?.n ?? 0;
  const max = steps.reduce((m, s) => Math.max(m, s.n), 0);
  // Narrower than the bar charts: on a phone the whole funnel fits, its words still legible.
  const FW = 480;
  const left = 8;
  const valueRoom = 150;
  const plotW = FW - left - valueRoom;
  const row = 54;
  // An all-zero funnel says so above its (empty) rows.
  const head = max === 0 ? 30 : 0;
  const H = head + Math.max(1, steps.length) * row + 12;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg chart-funnel" viewBox="0 0 ${FW} ${H}" role="img" aria-labelledby="${id}-title ${id}-desc" data-testid="${id}-svg">`);
  parts.push(`<title id="${id}-title">${esc(input.title)}</title><desc id="${id}-desc">${esc(input.desc)}</desc>`);
  steps.forEach((s, i) => {
    const y0 = head + 8 + i * row;
    const w = finite(max > 0 ? (s.n / max) * plotW : 0);
    const share = first > 0 ? pct(s.n / first) : '—';
    parts.push(`<text class="chart-step" x="${left}" y="${y0 + 14}">${esc(s.label)}</text>`);
    parts.push(`<rect class="chart-funnel-track" x="${left}" y="${y0 + 20}" width="${plotW}" height="24"/>`);
    if (w > 0) parts.push(`<rect class="chart-funnel-bar" x="${left}" y="${y0 + 20}" width="${Math.max(1, w)}" height="24" data-step="${esc(s.key)}" data-n="${s.n}"/>`);
    parts.push(`<text class="chart-value" x="${finite(left + plotW + 8)}" y="${y0 + 37}" data-step="${esc(s.key)}">${esc(`${fmt(s.n)} · ${share}`)}</text>`);
  });
  if (max === 0) {
    parts.push(`<text class="chart-empty" x="${left}" y="24" data-testid="${id}-empty">${esc(input.emptyText)}</text>`);
  }
  parts.push('</svg>');

  const thead = `<tr><th scope="col">${esc(input.headers.step)}</th><th scope="col">${esc(input.headers.count)}</th><th scope="col">${esc(input.headers.ofFirst)}</th><th scope="col">${esc(input.headers.ofPrevious)}</th></tr>`;
  const rows = steps.map((s, i) => {
    const prev = i > 0 ? steps[i - 1]!.n : s.n;
    return `<tr data-step="${esc(s.key)}"><th scope="row">${esc(s.label)}</th><td data-n="${s.n}">${esc(fmt(s.n))}</td>`
      + `<td>${esc(first > 0 ? pct(s.n / first) : '—')}</td><td>${esc(i === 0 ? '—' : prev > 0 ? pct(s.n / prev) : '—')}</td></tr>`;
  });
  return `<figure class="chart" id="${id}" data-testid="${id}">`
    + `<div class="chart-scroll" tabindex="0" role="region" aria-label="${esc(input.title)}">${parts.join('')}</div>`
    + tableIn(id, input.title, input.tableSummary, `<thead>${thead}</thead><tbody>${rows.join('')}</tbody>`)
    + '</figure>';
}
