/**
 * The cost of metrics and usage statistics: the same scenario on two dinhdanh servers in one run,
 * one with `DINHDANH_METRICS=on` (the product's default: prom-client registry, request and store
 * timing, the usage recorder) and one with `off` (none of them built), in alternating windows.
 *
 * While metrics are on, each measured window also pays for what production adds outside the
 * requests: one scrape of `/metrics` on the operators' listener half-way through the window (as
 * Prometheus would, every 15 s: one per 4–10 s window is at least its rate), and a flush of the
 * usage statistics at the window's end, so that every count of the window's operations is written
 * inside it (the recorder's own 5 s timer adds one or two flushes within the window as well).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Measured } from './runner.js';

/** Issue 17's limit: metrics and statistics may add at most this much CPU per operation. */
export const MAX_CPU_DELTA = 0.03;

/**
 * The sign-in figure on record before metrics existed: bench/README.md, the full run of
 * 2026-11-27 05:36 UTC (commit 3330969), signin ratio to baseline 0.847. The full run half an hour
 * before, on the same code but for two CORS headers, measured 0.918 (1.23 baseline ÷ 1.34 ours,
 * in argon2id verifications): how far apart two runs of one code fall on this machine.
 */
export const RECORDED_SIGNIN_RATIO = 0.847;
export const RECORDED_SIGNIN_RUNS: readonly number[] = [0.918, 0.847];

export interface ScrapeStats {
  scrapes: number;
  ms: number[];
  bytes: number;
  /** Sample lines (not comments) in the last answer: the number of series exposed. */
  series: number;
  /** Sum of dinhdanh_http_requests_total in the last answer: proof that the requests are counted. */
  requests: number;
  /** Sum of dinhdanh_signins_total{outcome="success"} in the last answer. */
  signins: number;
  /** Each answer's request and store-call totals, in order: what the work between two scrapes was made of. */
  history: { requests: number; storeCalls: number }[];
}

export function newScrapeStats(): ScrapeStats {
  return { scrapes: 0, ms: [], bytes: 0, series: 0, requests: 0, signins: 0, history: [] };
}

const scrapeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET /metrics on the operators' listener, as a scraper does; fails unless 200 with dinhdanh's series. */
export function scrape(port: number, stats: ScrapeStats): Promise<void> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1', port, path: '/metrics', agent: scrapeAgent,
      headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', 'user-agent': 'Prometheus/2.53 (dinhdanh bench)' },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200 || !body.includes('dinhdanh_http_requests_total')) {
          reject(new Error(`/metrics answered ${res.statusCode}: ${body.slice(0, 200)}`));
          return;
        }
        stats.scrapes += 1;
        stats.ms.push(performance.now() - t0);
        stats.bytes = body.length;
        let series = 0;
        let requests = 0;
        let signins = 0;
        let storeCalls = 0;
        for (const line of body.split('\n')) {
          if (!line || line.startsWith('#')) continue;
          series += 1;
          const value = Number(line.slice(line.lastIndexOf(' ') + 1));
          if (line.startsWith('dinhdanh_http_requests_total{')) requests += value;
          else if (line.startsWith('dinhdanh_signins_total{') && line.includes('outcome="success"')) signins += value;
          else if (line.startsWith('dinhdanh_store_operation_duration_seconds_count{')) storeCalls += value;
        }
        Object.assign(stats, { series, requests, signins });
        stats.history.push({ requests, storeCalls });
        resolve();
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('/metrics did not answer within 10 s')));
  });
}

/**
 * Store calls per HTTP request between the scrapes from index `from` on (one scenario's windows:
 * from half-way through its first to half-way through its last); undefined with fewer than two.
 */
export function storeCallsPerRequest(stats: ScrapeStats, from: number): number | undefined {
  const h = stats.history.slice(from);
  if (h.length < 2) return undefined;
  const first = h[0]!;
  const last = h[h.length - 1]!;
  return last.requests > first.requests ? (last.storeCalls - first.storeCalls) / (last.requests - first.requests) : undefined;
}

export function closeScrapes(): void {
  scrapeAgent.destroy();
}

const pct = (x: number, digits = 1) => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(digits)} %` : '—');
const fmt = (n: number | undefined, digits: number) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));

/** (max − min) ÷ mean: how far apart the windows of one server fall in this run. */
export function spread(values: number[]): number {
  const v = values.filter(Number.isFinite);
  if (v.length < 2) return NaN;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return (Math.max(...v) - Math.min(...v)) / mean;
}

export interface Cost {
  name: string;
  on: Measured;
  off: Measured;
  /** cpu_ms_per_op(on) ÷ cpu_ms_per_op(off) − 1, over all measured windows. */
  delta: number;
  /** The same, round by round (the on and off windows of a round are neighbours in time). */
  perRound: number[];
  spreadOn: number;
  spreadOff: number;
}

export function cost(on: Measured, off: Measured): Cost {
  const rounds = Math.min(on.windows.length, off.windows.length);
  const perRound = Array.from({ length: rounds }, (_, r) => on.windows[r]!.cpu_ms_per_op / off.windows[r]!.cpu_ms_per_op - 1);
  return {
    name: on.name,
    on,
    off,
    delta: on.cpu_ms_per_op / off.cpu_ms_per_op - 1,
    perRound,
    spreadOn: spread(on.windows.map((w) => w.cpu_ms_per_op)),
    spreadOff: spread(off.windows.map((w) => w.cpu_ms_per_op)),
  };
}

/** `labels`: how the two servers are named (`on`, `off`; or `A (off)`, `B (off)` in the null experiment). */
export function costTable(costs: Cost[], [a, b]: [string, string] = ['on', 'off']): string {
  const rows = [
    `| scenario | ops/s ${a} | ops/s ${b} | CPU-ms/op ${a} | CPU-ms/op ${b} | main thread ${a} | main thread ${b} | CPU/op ${a} ÷ ${b} − 1 | per round | windows apart: ${a} | ${b} |`,
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const c of costs) {
    rows.push(`| ${c.name} | ${fmt(c.on.ops_per_s, 1)} | ${fmt(c.off.ops_per_s, 1)} | ${fmt(c.on.cpu_ms_per_op, 3)} | ${fmt(c.off.cpu_ms_per_op, 3)}`
      + ` | ${fmt(c.on.main_cpu_ms_per_op, 3)} | ${fmt(c.off.main_cpu_ms_per_op, 3)} | **${pct(c.delta)}** | ${c.perRound.map((d) => pct(d)).join(', ')}`
      + ` | ${pct(c.spreadOn).replace('+', '')} | ${pct(c.spreadOff).replace('+', '')} |`);
  }
  return rows.join('\n');
}

/**
 * Issue 17's cost goal per scenario, PASS/MISS on the figure over all windows, with the run's
 * noise beside it: the per-round differences, and how far apart the windows of each server fell.
 * When the per-round differences lie on both sides of the limit, the line says so.
 */
export function costGoals(costs: Cost[], [a, b]: [string, string] = ['on', 'off']): string[] {
  const lines: string[] = [];
  if (a !== 'on' || b !== 'off') {
    // The null experiment (two servers alike): no goal, only how far apart noise alone puts them.
    for (const c of costs) {
      lines.push(`      ${c.name}: ${a} ÷ ${b} − 1 = ${pct(c.delta)} CPU per operation; per round ${c.perRound.map((d) => pct(d)).join(', ')}`
        + `; windows of one server apart by ${pct(c.spreadOn).replace('+', '')} (${a}), ${pct(c.spreadOff).replace('+', '')} (${b})`);
    }
    return lines;
  }
  for (const c of costs) {
    const ok = c.delta <= MAX_CPU_DELTA;
    const lo = Math.min(...c.perRound);
    const hi = Math.max(...c.perRound);
    const straddles = c.perRound.length > 1 && lo <= MAX_CPU_DELTA && hi > MAX_CPU_DELTA;
    lines.push(`${ok ? 'PASS' : 'MISS'}  ${c.name}: ${pct(c.delta)} CPU per operation with metrics on (${fmt(c.on.cpu_ms_per_op, 3)} vs ${fmt(c.off.cpu_ms_per_op, 3)} CPU-ms/op) ${ok ? '≤' : '>'} ${pct(MAX_CPU_DELTA, 0)}`
      + `; per round ${c.perRound.map((d) => pct(d)).join(', ')}; windows of one server apart by ${pct(c.spreadOn).replace('+', '')} (on), ${pct(c.spreadOff).replace('+', '')} (off)`
      + `${straddles ? ': the rounds fall on both sides of the limit, within this run\'s noise' : ''}`);
    if (c.off.errors) lines.push(`MISS  ${c.name}: ${c.off.errors} error(s) with metrics off (first: ${c.off.firstError})`);
  }
  return lines;
}

/**
 * The sign-in figure (ratio to the baseline, metrics on) against the one on record: PASS unless it
 * fell by more than the noise, the larger of this run's (how far apart its per-round ratios are)
 * and the recorded runs' (two full runs of one code). The same run's figure with metrics off tells
 * what part of a change metrics account for, the rest being the machine's.
 */
export function signinAgainstRecord(on: Measured, off: Measured | undefined, base: Measured): string[] {
  const ratio = base.cpu_ms_per_op / on.cpu_ms_per_op;
  const rounds = Math.min(on.windows.length, base.windows.length);
  const perRound = Array.from({ length: rounds }, (_, r) => base.windows[r]!.cpu_ms_per_op / on.windows[r]!.cpu_ms_per_op);
  const inRun = spread(perRound);
  const betweenRuns = spread([...RECORDED_SIGNIN_RUNS]);
  const noise = Math.max(Number.isFinite(inRun) ? inRun : 0, betweenRuns);
  const moved = ratio / RECORDED_SIGNIN_RATIO - 1;
  const ok = moved >= -noise;
  const lines = [
    `${ok ? 'PASS' : 'MISS'}  signin: ratio to baseline ${fmt(ratio, 3)} with metrics on, recorded ${RECORDED_SIGNIN_RATIO} (bench/README.md, full run of 2026-11-27): ${pct(moved)}`
    + `, ${moved >= 0 ? 'not below it; noise' : ok ? 'within the noise of' : 'beyond the noise of'} ${pct(noise).replace('+', '±')} (this run's per-round ratios ${perRound.map((x) => fmt(x, 3)).join(', ')}, ${pct(inRun).replace('+', '')} apart;`
    + ` two full runs of one code ${RECORDED_SIGNIN_RUNS.join(' and ')}, ${pct(betweenRuns).replace('+', '')} apart)`,
  ];
  if (off) {
    const offRatio = base.cpu_ms_per_op / off.cpu_ms_per_op;
    lines.push(`      same run, metrics off: ratio to baseline ${fmt(offRatio, 3)}; the part metrics account for: ${pct(ratio / offRatio - 1)}`);
  }
  return lines;
}
