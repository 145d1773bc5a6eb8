/**
 * The benchmark of issues 8 and 17: `node --import tsx bench/run.ts [--quick]` (`npm run bench`).
 *
 * Starts three servers, each in a process of its own: dinhdanh in production mode with metrics and
 * usage statistics on (DINHDANH_METRICS=on, the default) and the same with them off, each on its
 * own copy of one seeded scratch SQLite store (bench/server.ts), and, as the baseline, bare
 * oidc-provider 9 with its in-memory adapter (bench/baseline-server.ts). Drives each scenario from
 * this process over loopback keep-alive connections, one server at a time in alternating windows,
 * and takes CPU per operation from the server's own accounting; with metrics on, each window also
 * pays for one scrape of /metrics and the flush of its usage statistics (bench/lib/metrics-cost.ts).
 * Writes bench/results/<timestamp>.json, prints Markdown tables, the goals of issue 8 and the cost
 * of metrics (issue 17).
 *
 * Options:
 *   --quick               2 × 4 s per scenario and server (about three minutes in all) instead of 3 × 10 s
 *   --seconds <n>         measure each scenario for n seconds (both servers)
 *   --rounds <n>          this many measured windows per server (default 2 quick, 3 full)
 *   --scenarios a,b       only these scenarios
 *   --concurrency <n>     this many workers in every scenario (e.g. 1 to profile a sign-in without
 *                         the argon2id threads competing with the main thread for the two cores)
 *   --no-baseline         dinhdanh only (no ratios)
 *   --metrics <a,b>       the two dinhdanh servers compared: `on,off` (default); `off,off` or `on,on`
 *                         is the null experiment (two identical servers: how far apart this run's
 *                         noise alone puts them); `on` or `off` runs one dinhdanh only
 *   --profile             CPU-profile each measured window (main thread, inspector) and print where
 *                         the time goes; figures taken under the profiler are not written to results/
 *   --count-sql           count dinhdanh's SQLite statements per operation (not written to results/)
 *   --verbose             show the servers' stderr
 *   --log-level <level>   dinhdanh's log level (default `info`, as in production: one line per request)
 *   --serve split, --oidc-store memory
 *                         diagnostic variants of dinhdanh that split its cost into layers (see
 *                         bench/lib/variants.ts); like --log-level, not written to results/
 *   --versus="<args>"    in the baseline's place, a second dinhdanh started with these server
 *                         arguments (e.g. --versus="--serve split"), measured in
 *                         alternation with the first: the ratio column is then variant ÷ dinhdanh
 *
 * Everything started here is stopped on exit, on error and on Ctrl-C: the server children also end
 * by themselves when this process goes away (their IPC channel closes), and the scratch folder is
 * removed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureScenario, scenarios, POOL_PERSONS, type Arm, type Measured, type ServerHandle, type Timing, type WindowHooks } from './lib/runner.js';
import { closeScrapes, cost, costGoals, costTable, newScrapeStats, scrape, signinAgainstRecord, storeCallsPerRequest } from './lib/metrics-cost.js';
import { formatSummary, summarise } from './lib/profile.js';
import type { Command, ReadyMessage, Usage } from './lib/protocol.js';
import type { Target } from './lib/client.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH_DIR);

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    scenarios: { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
    serve: { type: 'string', default: 'app' },
    'oidc-store': { type: 'string', default: 'sqlite' },
    versus: { type: 'string' },
    'count-sql': { type: 'boolean', default: false },
    metrics: { type: 'string', default: 'on,off' },
  },
});
/** DINHDANH_METRICS of the dinhdanh server(s): the first is the one of the main table. */
const METRICS = (args.metrics ?? 'on,off').split(',') as ('on' | 'off')[];
if (METRICS.length > 2 || !METRICS.every((m) => m === 'on' || m === 'off')) throw new Error('--metrics: on,off (default), off,off, on,on, on or off');
/** A diagnostic run (a variant of dinhdanh, other timings, a subset): its figures are not written to results/. */
const VARIANT = args.serve !== 'app' || args['oidc-store'] !== 'sqlite' || args['log-level'] !== 'info' || args.versus !== undefined || args['count-sql']
  || args.concurrency !== undefined || args.seconds !== undefined || args.rounds !== undefined || args.scenarios !== undefined || args['no-baseline'] || args.metrics !== 'on,off';

const QUICK = args.quick;
/**
 * Per scenario: a warm-up of each server, then measured windows alternating between them (metrics
 * on, metrics off, baseline, then backwards, …) so that drift in this machine's speed falls on all
 * alike. Quick: 2 × 4 s (each dinhdanh) and 2 × 2.5 s (baseline); full: 3 × 10 s each.
 */
const BASE_TIMING: Timing = args.seconds
  ? { warmupMs: 2000, rounds: 2, windowMs: { ours: Number(args.seconds) * 500, baseline: Number(args.seconds) * 500 } }
  : QUICK
    ? { warmupMs: 1500, rounds: 2, windowMs: { ours: 4000, baseline: 2500 } }
    : { warmupMs: 5000, rounds: 3, windowMs: { ours: 10_000, baseline: 10_000 } };
const TIMING: Timing = args.rounds ? { ...BASE_TIMING, rounds: Number(args.rounds) } : BASE_TIMING;
if (!(TIMING.rounds >= 1)) throw new Error('--rounds: a positive number');
/** Persons: the sign-in scenario cycles through all but the last POOL_PERSONS (which sign in for token pools). */
const PERSONS = QUICK ? 40 : 64;
const SESSIONS = 10_000;
const ARGON2_SAMPLES = 20;

const log = (line: string) => console.error(line);

// ---------------------------------------------------------------------------------------------
// Server children

class ServerChild implements ServerHandle {
  readonly ready: Promise<ReadyMessage>;
  private readonly proc: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited = false;
  private readonly tail: string[] = [];

  constructor(readonly name: string, script: string, argv: string[]) {
    this.proc = fork(path.join(BENCH_DIR, script), argv, {
      cwd: ROOT,
      // --expose-gc only lets the memory report add a figure after a full collection.
      execArgv: ['--import', 'tsx', '--expose-gc'],
      env: { ...process.env, NODE_ENV: 'production' },
      // stdout (the request log, as in production) goes to /dev/null; stderr is kept for failures.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        this.tail.push(line);
        if (this.tail.length > 60) this.tail.shift();
        if (args.verbose) log(`[${name}] ${line}`);
      }
    });
    let readyResolve!: (m: ReadyMessage) => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => { readyResolve = resolve; readyReject = reject; });
    this.ready.catch(() => undefined);
    this.proc.on('message', (raw: unknown) => {
      const m = raw as { type?: string; id?: number; ok?: boolean; error?: string; message?: string };
      if (m.type === 'ready') readyResolve(raw as ReadyMessage);
      else if (m.type === 'fatal') readyReject(new Error(`${name} failed to start: ${m.message}`));
      else if (typeof m.id === 'number') {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.ok) p?.resolve(raw as Record<string, unknown>);
        else p?.reject(new Error(`${name}: ${m.error}`));
      }
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = true;
      const err = new Error(`${name} exited (${signal ?? code})${this.tail.length ? `:\n  ${this.tail.slice(-15).join('\n  ')}` : ''}`);
      readyReject(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  alive(): boolean {
    return !this.exited;
  }

  call(command: Command): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.proc.send({ id, command });
    });
  }

  async usage(): Promise<Usage> {
    const r = await this.call({ cmd: 'usage' });
    return r as unknown as Usage;
  }

  async profileStart(): Promise<void> {
    await this.call({ cmd: 'profile-start' });
  }

  async profileStop(file: string): Promise<void> {
    await this.call({ cmd: 'profile-stop', file });
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves once the process is gone. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => { if (!this.exited) this.proc.kill('SIGKILL'); }, 5000);
    await gone;
    clearTimeout(timer);
  }

  /** Last resort at process exit (synchronous). */
  killNow(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

/** Registers the portal and the persons in a scratch folder (bench/seed.ts, a process of its own). */
function seed(dir: string, persons: number): Promise<void> {
  const proc = fork(path.join(BENCH_DIR, 'seed.ts'), ['--dir', dir, '--persons', String(persons)], {
    cwd: ROOT, execArgv: ['--import', 'tsx'], env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  seeding.add(proc);
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => { stderr = (stderr + c).slice(-4000); });
  return new Promise((resolve, reject) => {
    proc.on('exit', (code, signal) => {
      seeding.delete(proc);
      if (code === 0) resolve();
      else reject(new Error(`seeding ${dir} failed (${signal ?? code}): ${stderr.trim()}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Clean-up: every child and the scratch folder, whatever way this process ends.

const children: ServerChild[] = [];
const seeding = new Set<ChildProcess>();
let scratch: string | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const p of seeding) p.kill('SIGKILL');
    await Promise.all(children.map((c) => c.stop().catch(() => c.killNow())));
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  })();
  return cleaning;
}
process.on('exit', () => {
  for (const p of seeding) p.kill('SIGKILL');
  for (const c of children) c.killNow();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the servers`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Output

export interface ResultScenario {
  name: string;
  ops_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  errors: number;
  cpu_ms_per_op: number;
  baseline_ops_per_s: number | null;
  ratio_to_baseline: number | null;
  /** The same scenario on dinhdanh with DINHDANH_METRICS=off, in the same run (issue 17's cost). */
  ops_per_s_metrics_off?: number | null;
  cpu_ms_per_op_metrics_off?: number | null;
  errors_metrics_off?: number;
  ratio_to_baseline_metrics_off?: number | null;
  /** 100 × (cpu_ms_per_op ÷ cpu_ms_per_op_metrics_off − 1). */
  metrics_cpu_per_op_delta_pct?: number | null;
  /** Each measured window's CPU-ms/op, round by round: the run's noise. */
  window_cpu_ms_per_op?: Record<string, (number | null)[]>;
}

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

function fmt(n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits);
}

function table(ours: Measured[], base: Map<string, Measured>): string {
  const rows = [
    '| scenario | ops/s | p50 ms | p95 ms | p99 ms | errors | CPU-ms/op | baseline ops/s | baseline CPU-ms/op | ratio to baseline |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const m of ours) {
    const b = base.get(m.name);
    rows.push(`| ${m.name} | ${fmt(m.ops_per_s, 1)} | ${fmt(m.p50_ms, 2)} | ${fmt(m.p95_ms, 2)} | ${fmt(m.p99_ms, 2)} | ${m.errors} | ${fmt(m.cpu_ms_per_op, 3)} | ${fmt(b?.ops_per_s, 1)} | ${fmt(b?.cpu_ms_per_op, 3)} | ${b ? fmt(b.cpu_ms_per_op / m.cpu_ms_per_op, 2) : '—'} |`);
  }
  return rows.join('\n');
}

/** Issue 8's goals, as PASS/MISS lines. */
function goals(ours: Measured[], base: Map<string, Measured>, argon2Ms: number): string[] {
  const lines: string[] = [];
  const get = (name: string) => ours.find((m) => m.name === name);
  const limit = (name: string, max: number, label: string) => {
    const m = get(name);
    if (!m) return;
    const ok = m.cpu_ms_per_op <= max;
    lines.push(`${ok ? 'PASS' : 'MISS'}  ${name}: ${fmt(m.cpu_ms_per_op, 3)} CPU-ms/op ${ok ? '≤' : '>'} ${label}`);
  };
  limit('signin', 1.3 * argon2Ms, `1.3 × argon2id verification (1.3 × ${fmt(argon2Ms, 2)} = ${fmt(1.3 * argon2Ms, 2)})`);
  limit('client_credentials', 1.0, '1.0');
  limit('refresh', 3.0, '3.0');
  limit('introspection', 0.7, '0.7');
  limit('userinfo', 0.7, '0.7');
  for (const m of ours) {
    const b = base.get(m.name);
    if (!b) continue;
    const ratio = b.cpu_ms_per_op / m.cpu_ms_per_op;
    const ok = ratio >= 0.7;
    lines.push(`${ok ? 'PASS' : 'MISS'}  ${m.name}: ratio to baseline ${fmt(ratio, 3)} ${ok ? '≥' : '<'} 0.7 (baseline ${fmt(b.cpu_ms_per_op, 3)} ÷ ours ${fmt(m.cpu_ms_per_op, 3)} CPU-ms/op)`);
  }
  for (const m of ours) if (m.errors) lines.push(`MISS  ${m.name}: ${m.errors} error(s) (first: ${m.firstError})`);
  return lines;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = Date.now();
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-bench-'));
  const wanted = args.scenarios ? new Set(args.scenarios.split(',').map((s) => s.trim())) : undefined;
  const list = scenarios().filter((s) => !wanted || wanted.has(s.name))
    .map((s) => (args.concurrency ? { ...s, concurrency: Number(args.concurrency) } : s));
  if (!list.length) throw new Error(`no such scenario: ${args.scenarios}`);
  const withBaseline = !args['no-baseline'];
  const compareMetrics = METRICS.length === 2;
  const oursMetrics = METRICS[0]!;
  const otherMetrics = METRICS[1];
  /** How the cost table names the two: by their setting, or A and B in the null experiment. */
  const labels: [string, string] = oursMetrics === otherMetrics ? [`A (${oursMetrics})`, `B (${oursMetrics})`] : [oursMetrics, otherMetrics ?? ''];
  const profileDir = args.profile ? path.join(BENCH_DIR, 'profiles', stamp) : undefined;

  log(`dinhdanh benchmark (${QUICK ? 'quick' : 'full'}): ${machine().cpu}, ${machine().cores} cores, Node.js ${process.version}`);
  log(`starting the servers (dinhdanh: production mode, scratch store in ${scratch}; ${PERSONS} persons)…`);
  const oursDir = path.join(scratch, 'dinhdanh');
  const offDir = path.join(scratch, 'dinhdanh-2');
  const versusDir = path.join(scratch, 'versus');
  const seedStarted = Date.now();
  await seed(oursDir, PERSONS);
  // The other dinhdanh servers start from copies of the same store: the same keys, portal, persons
  // and hashes, and no SQLite lock shared between two servers.
  if (compareMetrics) fs.cpSync(oursDir, offDir, { recursive: true });
  if (args.versus !== undefined) fs.cpSync(oursDir, versusDir, { recursive: true });
  log(`  registered 1 portal and ${PERSONS} persons in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s (bench/seed.ts)${compareMetrics ? '; the store copied for the second dinhdanh' : ''}`);
  const serverArgs = ['--log-level', args['log-level'], '--serve', args.serve, '--oidc-store', args['oidc-store'], ...(args['count-sql'] ? ['--count-sql'] : [])];
  const ours = new ServerChild('dinhdanh', 'server.ts', ['--dir', oursDir, ...serverArgs, '--metrics', oursMetrics]);
  children.push(ours);
  let off: ServerChild | undefined;
  if (otherMetrics) {
    off = new ServerChild('dinhdanh-2', 'server.ts', ['--dir', offDir, ...serverArgs, '--metrics', otherMetrics]);
    children.push(off);
  }
  let baseline: ServerChild | undefined;
  if (args.versus !== undefined) {
    baseline = new ServerChild('variant', 'server.ts', ['--dir', versusDir, ...args.versus.split(/\s+/).filter(Boolean)]);
  } else if (withBaseline) {
    baseline = new ServerChild('baseline', 'baseline-server.ts', ['--persons', String(PERSONS)]);
  }
  if (baseline) children.push(baseline);
  const [oursReady, offReady, baseReady] = await Promise.all([ours.ready, off?.ready, baseline?.ready]);
  // The servers say what they built: a run that compares nothing is refused rather than printed.
  if (oursReady.metrics !== (oursMetrics === 'on')) throw new Error(`dinhdanh started with metrics ${oursReady.metrics ? 'on' : 'off'}, asked ${oursMetrics}`);
  if (offReady && offReady.metrics !== (otherMetrics === 'on')) throw new Error(`the second dinhdanh started with metrics ${offReady.metrics ? 'on' : 'off'}, asked ${otherMetrics} (DINHDANH_METRICS not honoured)`);
  log(`  dinhdanh (metrics ${oursMetrics}) ready in ${(oursReady.setupMs / 1000).toFixed(1)} s (pid ${ours.pid})`
    + `${offReady ? `, dinhdanh (metrics ${otherMetrics}) in ${(offReady.setupMs / 1000).toFixed(1)} s (pid ${off!.pid})` : ''}`
    + `${baseReady ? `, ${baseline!.name} in ${(baseReady.setupMs / 1000).toFixed(1)} s (pid ${baseline!.pid})` : ''}`);
  const oursTarget: Target = { name: 'dinhdanh', port: oursReady.port, portal: oursReady.portal, persons: oursReady.persons };
  const offTarget: Target | undefined = offReady && { name: 'dinhdanh-2', port: offReady.port, portal: offReady.portal, persons: offReady.persons };
  const baseTarget: Target | undefined = baseReady && { name: 'baseline', port: baseReady.port, portal: baseReady.portal, persons: baseReady.persons };
  if (oursReady.persons.length <= POOL_PERSONS) throw new Error('too few persons');
  const rssAtStart = (await ours.usage()).rss / 2 ** 20;
  const offRssAtStart = off ? (await off.usage()).rss / 2 ** 20 : undefined;
  log(`  dinhdanh RSS after start-up: ${rssAtStart.toFixed(1)} MB${offRssAtStart !== undefined ? ` (second dinhdanh, metrics ${otherMetrics}: ${offRssAtStart.toFixed(1)} MB)` : ''}`);

  // One argon2id verification at the product's parameters, in the (idle) server process. The second
  // dinhdanh does the same, one after the other: both then start the scenarios with the same history
  // (argon2id's 19 MiB blocks already taken from the system once), which the sign-in's CPU feels.
  const argon2 = await ours.call({ cmd: 'argon2', samples: ARGON2_SAMPLES });
  const argon2Ms = argon2.medianMs as number;
  log(`argon2_verify_cpu_ms: ${argon2Ms.toFixed(2)} (median of ${ARGON2_SAMPLES}; min ${Math.min(...(argon2.samplesMs as number[])).toFixed(2)}, max ${Math.max(...(argon2.samplesMs as number[])).toFixed(2)})`);
  if (off) {
    const other = await off.call({ cmd: 'argon2', samples: ARGON2_SAMPLES });
    log(`  in the second dinhdanh (metrics ${otherMetrics}): ${(other.medianMs as number).toFixed(2)}`);
  }

  // With metrics on, a measured window also pays for a scrape (half-way) and for writing its usage
  // statistics (a flush at its end; one before it, not charged, empties what came before). The
  // server with metrics off gets the same two flush calls, which do nothing there, so the IPC is alike.
  const scrapes = newScrapeStats();
  const flush = (server: ServerChild) => async () => { await server.call({ cmd: 'flush' }); };
  const dinhdanhHooks = (server: ServerChild, ready: ReadyMessage): WindowHooks => ({
    before: flush(server),
    ...(ready.metrics && ready.adminPort ? { during: () => scrape(ready.adminPort!, scrapes) } : {}),
    after: flush(server),
  });
  const arms: Arm[] = [{ key: 'dinhdanh', server: ours, target: oursTarget, windowMs: TIMING.windowMs.ours, hooks: dinhdanhHooks(ours, oursReady) }];
  if (off && offReady && offTarget) arms.push({ key: 'dinhdanh-2', server: off, target: offTarget, windowMs: TIMING.windowMs.ours, hooks: dinhdanhHooks(off, offReady) });
  if (baseline && baseTarget) {
    arms.push({
      key: 'baseline', server: baseline, target: baseTarget,
      windowMs: args.versus !== undefined ? TIMING.windowMs.ours : TIMING.windowMs.baseline,
      ...(args.versus !== undefined && baseReady ? { hooks: dinhdanhHooks(baseline, baseReady) } : {}),
    });
  }

  const oursResults: Measured[] = [];
  const offResults = new Map<string, Measured>();
  const baseResults = new Map<string, Measured>();
  const describe = (m: Measured) => `${m.ops_per_s.toFixed(1)} ops/s, p50 ${m.p50_ms.toFixed(2)} ms, p99 ${m.p99_ms.toFixed(2)} ms, ${m.cpu_ms_per_op.toFixed(3)} CPU-ms/op`
    + `${m.main_cpu_ms_per_op !== undefined ? ` (main thread ${m.main_cpu_ms_per_op.toFixed(3)})` : ''}, ${m.errors} errors`
    + `${m.rss_mb !== undefined ? `, RSS ${m.rss_mb.toFixed(0)} MB` : ''}`
    + `${m.consents !== undefined ? `, ${m.consents} consent page(s)` : ''}${m.firstError ? ` (first error: ${m.firstError})` : ''}`
    + `; windows ${m.windows.map((w) => `${w.cpu_ms_per_op.toFixed(3)} (${w.ops_per_s.toFixed(0)}/s)`).join(', ')} CPU-ms/op`;
  const storeCalls = new Map<string, number>();
  for (const scenario of list) {
    log(`${scenario.name} (concurrency ${scenario.concurrency})`);
    const scrapesBefore = scrapes.history.length;
    const r = await measureScenario(
      scenario,
      arms,
      TIMING,
      profileDir ? (key, round) => path.join(profileDir, `${key}-${scenario.name}-${round + 1}.cpuprofile`) : undefined,
    );
    const mine = r.get('dinhdanh')!;
    oursResults.push(mine);
    log(`  dinhdanh (${compareMetrics ? `metrics ${labels[0]}` : `metrics ${oursMetrics}`}): ${describe(mine)}`);
    if (mine.sqlPerOp) {
      const rows = Object.entries(mine.sqlPerOp).sort((x, y) => y[1] - x[1]);
      log(`    SQLite statements per operation: ${rows.reduce((sum, [, n]) => sum + n, 0).toFixed(1)}`);
      for (const [sql, n] of rows.slice(0, 25)) log(`      ${n.toFixed(2).padStart(6)}  ${sql}`);
    }
    const theirs = r.get('dinhdanh-2');
    if (theirs) {
      offResults.set(theirs.name, theirs);
      log(`  dinhdanh (metrics ${labels[1]}): ${describe(theirs)}`);
      log(`  ${labels[0]} ÷ ${labels[1]} − 1: ${(100 * (mine.cpu_ms_per_op / theirs.cpu_ms_per_op - 1)).toFixed(1)} % CPU per operation`);
    }
    const b = r.get('baseline');
    if (b) {
      baseResults.set(b.name, b);
      log(`  ${baseline!.name}: ${describe(b)}`);
    }
    const perRequest = storeCallsPerRequest(scrapes, scrapesBefore);
    if (perRequest !== undefined) storeCalls.set(scenario.name, perRequest);
    if (scrapes.scrapes) {
      log(`  /metrics: ${scrapes.scrapes} scrapes so far, last ${(scrapes.bytes / 1024).toFixed(1)} kB, ${scrapes.series} series, ${scrapes.requests} requests and ${scrapes.signins} sign-ins counted`
        + `${perRequest !== undefined ? `; ${perRequest.toFixed(1)} timed store calls per HTTP request in this scenario` : ''}`);
    }
  }
  closeScrapes();

  // Memory with 10,000 signed-in sessions in the store (see bench/server.ts, makeSessions).
  log(`creating ${SESSIONS} sessions in dinhdanh's store…`);
  const sessions = await ours.call({ cmd: 'sessions', count: SESSIONS });
  const rssAfterMb = (sessions.rssAfter as number) / 2 ** 20;
  const mb = (k: string) => ((sessions[k] as number) / 2 ** 20).toFixed(1);
  log(`  RSS ${mb('rssBefore')} MB before, ${rssAfterMb.toFixed(1)} MB after (${((sessions.ms as number) / 1000).toFixed(1)} s); V8 heap ${mb('heapUsed')} MB used of ${mb('heapTotal')} MB, external ${mb('external')} MB`);
  log(`  after a full garbage collection: RSS ${mb('rssAfterGc')} MB, V8 heap ${mb('heapUsedAfterGc')} MB used`);

  const costs = oursResults.flatMap((m) => {
    const o = offResults.get(m.name);
    return o ? [cost(m, o)] : [];
  });
  const scrapeMs = [...scrapes.ms].sort((x, y) => x - y);
  const result = {
    machine: machine(),
    argon2_verify_cpu_ms: round(argon2Ms, 2),
    metrics: compareMetrics ? 'on (columns without suffix) and off (_metrics_off), same run' : oursMetrics,
    scenarios: oursResults.map((m): ResultScenario => {
      const b = baseResults.get(m.name);
      const o = offResults.get(m.name);
      return {
        name: m.name,
        ops_per_s: round(m.ops_per_s, 1)!,
        p50_ms: round(m.p50_ms, 2)!,
        p95_ms: round(m.p95_ms, 2)!,
        p99_ms: round(m.p99_ms, 2)!,
        errors: m.errors,
        cpu_ms_per_op: round(m.cpu_ms_per_op, 3)!,
        baseline_ops_per_s: b ? round(b.ops_per_s, 1) : null,
        ratio_to_baseline: b ? round(b.cpu_ms_per_op / m.cpu_ms_per_op, 2) : null,
        ...(o ? {
          ops_per_s_metrics_off: round(o.ops_per_s, 1),
          cpu_ms_per_op_metrics_off: round(o.cpu_ms_per_op, 3),
          errors_metrics_off: o.errors,
          ratio_to_baseline_metrics_off: b ? round(b.cpu_ms_per_op / o.cpu_ms_per_op, 2) : null,
          metrics_cpu_per_op_delta_pct: round(100 * (m.cpu_ms_per_op / o.cpu_ms_per_op - 1), 1),
          window_cpu_ms_per_op: { on: m.windows.map((w) => round(w.cpu_ms_per_op, 3)), off: o.windows.map((w) => round(w.cpu_ms_per_op, 3)), ...(b ? { baseline: b.windows.map((w) => round(w.cpu_ms_per_op, 3)) } : {}) },
        } : {}),
      };
    }),
    rss_after_10000_sessions_mb: round(rssAfterMb, 1),
    rss_after_start_mb: { metrics_on: round(rssAtStart, 1), ...(offRssAtStart !== undefined ? { metrics_off: round(offRssAtStart, 1) } : {}) },
    ...(scrapes.scrapes ? { metrics_scrapes: { count: scrapes.scrapes, median_ms: round(scrapeMs[scrapeMs.length >> 1]!, 1), last_bytes: scrapes.bytes, last_series: scrapes.series } } : {}),
  };

  const out: string[] = [];
  out.push(`## dinhdanh benchmark, ${QUICK ? 'quick' : 'full'} run ${new Date(startedAt).toISOString()}`, '');
  out.push(`${result.machine.cpu}, ${result.machine.cores} cores, Node.js ${result.machine.node}, ${result.machine.os}`, '');
  out.push(`dinhdanh with metrics and usage statistics ${oursMetrics}${oursMetrics === 'on' ? ' (the product\'s default)' : ''}${otherMetrics ? `; the second dinhdanh (${otherMetrics}) below` : ''}:`, '');
  out.push(table(oursResults, baseResults), '');
  if (oursResults.some((m) => m.main_cpu_ms_per_op !== undefined)) {
    out.push('CPU-ms/op split by thread: the main thread (JavaScript, SQLite, HTTP) + other threads (V8 GC helpers, the libuv pool: argon2id)', '');
    out.push('| scenario | dinhdanh main | dinhdanh other | baseline main | baseline other |', '|---|--:|--:|--:|--:|');
    for (const m of oursResults) {
      const b = baseResults.get(m.name);
      const split = (x: Measured | undefined) => (x?.main_cpu_ms_per_op === undefined ? '— | —' : `${fmt(x.main_cpu_ms_per_op, 3)} | ${fmt(x.cpu_ms_per_op - x.main_cpu_ms_per_op, 3)}`);
      out.push(`| ${m.name} | ${split(m)} | ${split(b)} |`);
    }
    out.push('');
  }
  out.push(`- argon2_verify_cpu_ms: ${fmt(argon2Ms, 2)}`);
  out.push(`- rss_after_10000_sessions_mb: ${fmt(rssAfterMb, 1)} (after start-up ${fmt(rssAtStart, 1)} MB${offRssAtStart !== undefined ? `, second dinhdanh (metrics ${otherMetrics}) ${fmt(offRssAtStart, 1)} MB` : ''}; after the scenarios, before the sessions, ${mb('rssBefore')} MB;`
    + ` after a full garbage collection ${mb('rssAfterGc')} MB, of which V8 heap in use ${mb('heapUsedAfterGc')} MB)`);
  const signin = oursResults.find((m) => m.name === 'signin');
  if (signin) {
    out.push(`- signin: ${fmt(signin.cpu_ms_per_op / argon2Ms, 2)} × one argon2id verification; ${signin.consents ?? 0} of the measured sign-ins were a first sign-in (consent page)`);
    const b = baseResults.get('signin');
    if (signin.main_cpu_ms_per_op !== undefined) {
      out.push(`- signin, everything but the hash (main thread): ${fmt(signin.main_cpu_ms_per_op, 2)} CPU-ms/op (dinhdanh)${b?.main_cpu_ms_per_op !== undefined ? `, ${fmt(b.main_cpu_ms_per_op, 2)} (baseline)` : ''}`);
    }
  }
  out.push('', '### Goals (issue 8)', '', '```', ...goals(oursResults, baseResults, argon2Ms), '```');

  if (costs.length) {
    out.push('', '### Cost of metrics and usage statistics (issue 17)', '');
    out.push(`Two dinhdanh servers on copies of one store, DINHDANH_METRICS=${oursMetrics} and ${otherMetrics}, in alternating windows (${TIMING.rounds} × ${TIMING.windowMs.ours / 1000} s each per scenario).`
      + `${scrapes.scrapes ? ` With metrics on, the figures include one scrape of /metrics per window (${scrapes.scrapes} in all, median ${fmt(scrapeMs[scrapeMs.length >> 1], 1)} ms, ${(scrapes.bytes / 1024).toFixed(1)} kB, ${scrapes.series} series)`
        + ' and the usage statistics\' flushes of the window (its 5 s timer, and one at the window\'s end).' : ''}`
      + ' "windows apart": (max − min) ÷ mean of one server\'s windows.', '');
    out.push(costTable(costs, labels), '');
    if (storeCalls.size) out.push(`Store calls timed per HTTP request (from the scrapes): ${[...storeCalls].map(([name, n]) => `${name} ${n.toFixed(1)}`).join(', ')}.`, '');
    out.push('```', ...costGoals(costs, labels));
    const b = baseResults.get('signin');
    if (signin && b && oursMetrics === 'on') out.push(...signinAgainstRecord(signin, otherMetrics === 'off' ? offResults.get('signin') : undefined, b));
    out.push('```');
  }

  if (VARIANT) {
    out.push('', `Diagnostic run (dinhdanh: --serve ${args.serve} --oidc-store ${args['oidc-store']} --log-level ${args['log-level']} --metrics ${args.metrics}${args.versus !== undefined ? `; "baseline" columns: dinhdanh ${args.versus}` : ''}): not written to bench/results/.`);
  }
  if (profileDir) {
    out.push('', `Figures taken under the CPU profiler (not written to bench/results/). Profiles: ${path.relative(ROOT, profileDir)}`, '');
    for (const m of oursResults) {
      const files = (key: string) => fs.readdirSync(profileDir).filter((f) => f.startsWith(`${key}-${m.name}-`)).map((f) => path.join(profileDir, f));
      const mine = files('dinhdanh');
      if (mine.length) out.push(formatSummary(`dinhdanh ${m.name}`, summarise(mine), m.ops));
      const o = offResults.get(m.name);
      const offFiles = files('dinhdanh-2');
      if (o && offFiles.length) out.push(formatSummary(`dinhdanh (metrics ${otherMetrics}) ${m.name}`, summarise(offFiles), o.ops));
      const b = baseResults.get(m.name);
      const theirs = files('baseline');
      if (b && theirs.length) out.push(formatSummary(`baseline ${m.name}`, summarise(theirs, 12), b.ops));
    }
  } else if (!VARIANT) {
    const dir = path.join(BENCH_DIR, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${stamp}.json`);
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    log(`results: ${path.relative(ROOT, file)} (${((Date.now() - startedAt) / 1000).toFixed(0)} s)`);
  }
  console.log(out.join('\n'));
}

main().then(
  () => cleanup(),
  async (err: unknown) => {
    log(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
    await cleanup();
  },
);
