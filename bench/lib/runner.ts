/**
 * Closed-loop load: `concurrency` workers each repeat one operation back to back over a keep-alive
 * pool, first for a warm-up (not recorded), then for the measured window. The server's CPU time is
 * read from the server process itself at the window's two ends (IPC), so CPU per operation is the
 * server's own cost; operations and latencies count the ones completed inside the window.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { BenchError, Client, parseTokens, signIn, type Target, type Tokens } from './client.js';
import type { Usage } from './protocol.js';

export interface ServerHandle {
  readonly name: string;
  usage(): Promise<Usage>;
  profileStart(): Promise<void>;
  profileStop(file: string): Promise<void>;
  alive(): boolean;
}

export interface Measured {
  name: string;
  target: string;
  concurrency: number;
  ops: number;
  errors: number;
  seconds: number;
  ops_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  cpu_ms_per_op: number;
  /** The part of cpu_ms_per_op on the server's main thread (JavaScript, SQLite, HTTP); the rest is GC helpers and the thread pool (argon2id). */
  main_cpu_ms_per_op?: number;
  /** Sign-ins that were asked for consent (the person's first at this portal). */
  consents?: number;
  /** The server's resident memory at the end of the last measured window, MB. */
  rss_mb?: number;
  /** With --count-sql: SQLite statements per operation in the measured windows, by SQL text. */
  sqlPerOp?: Record<string, number>;
  /** Each measured window on its own, in the order measured (round 1, 2, …): the run's noise. */
  windows: WindowFigures[];
  firstError?: string;
}

export interface WindowFigures {
  ops: number;
  seconds: number;
  ops_per_s: number;
  cpu_ms_per_op: number;
}

/**
 * Work a measured window asks of its server besides the load, e.g. (metrics on) a scrape of
 * /metrics and a flush of the usage statistics. `before` runs before the window's CPU reading (not
 * charged), `during` half-way through it and `after` once its operations are counted, before the
 * closing CPU reading (both charged to the window).
 */
export interface WindowHooks {
  before?: () => Promise<void>;
  during?: () => Promise<void>;
  after?: () => Promise<void>;
}

export interface Context {
  client: Client;
  target: Target;
  /** Per worker: the token it uses (introspection, userinfo), or the refresh chains it follows (refresh). */
  tokens: Tokens[];
  /** Per worker: which of its refresh chains comes next. */
  turn: number[];
  spare: Tokens[];
  consents: number;
  nextPerson: () => number;
  nextIp: () => string;
}

export interface Scenario {
  name: string;
  concurrency: number;
  /** Signed-in tokens the scenario needs, prepared before its warm-up (`concurrency` × `tokensPerWorker`, plus spares). */
  needsTokens?: boolean;
  tokensPerWorker?: number;
  op(ctx: Context, worker: number): Promise<void>;
}

/** The persons the token pools sign in with; the sign-in scenario cycles through the others. */
export const POOL_PERSONS = 16;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let ipCounter = 0;
/** A new client address per sign-in (citizens come from many addresses; the per-IP budget is per address). */
export function nextIp(): string {
  ipCounter += 1;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

/** Signs `n` pool persons in (4 at a time) for their tokens. */
async function signedInTokens(client: Client, n: number): Promise<Tokens[]> {
  const persons = client.target.persons.slice(-POOL_PERSONS);
  const out: Tokens[] = [];
  for (let i = 0; i < n; i += 4) {
    out.push(...await Promise.all(Array.from({ length: Math.min(4, n - i) }, async (_, j) => {
      const { tokens } = await signIn(client, persons[(i + j) % persons.length]!, nextIp());
      return tokens;
    })));
  }
  return out;
}

/**
 * One scenario's load against one server: `concurrency` workers that run only inside a window.
 * Between windows they are paused (in-flight operations finish, nothing new starts), so another
 * server can be measured with the machine to itself; the windows of both servers alternate.
 */
export class Load {
  private readonly agent: http.Agent;
  private readonly ctx: Context;
  private workers: Promise<void>[] = [];
  private running = false;
  private stopped = false;
  private recording = false;
  private wake: (() => void) | undefined;
  private resume: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private latencies = new Float64Array(1 << 16);
  private ok = 0;
  private errors = 0;
  private cpuMs = 0;
  private rssMb: number | undefined;
  private mainMs: number | undefined = 0;
  private seconds = 0;
  private consents = 0;
  private readonly windows: WindowFigures[] = [];
  private readonly sql = new Map<string, number>();
  private firstError: string | undefined;
  private failure: unknown;

  private constructor(readonly server: ServerHandle, readonly target: Target, readonly scenario: Scenario) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: scenario.concurrency, keepAliveMsecs: 10_000 });
    const client = new Client(target, this.agent);
    const signInPersons = Math.max(1, target.persons.length - POOL_PERSONS);
    let personCursor = 0;
    this.ctx = { client, target, tokens: [], turn: [], spare: [], consents: 0, nextPerson: () => (personCursor++) % signInPersons, nextIp };
  }

  /** Prepares the scenario's tokens (sign-ins) and starts its workers, paused. */
  static async create(server: ServerHandle, target: Target, scenario: Scenario): Promise<Load> {
    const load = new Load(server, target, scenario);
    if (scenario.needsTokens) {
      const n = scenario.concurrency * (scenario.tokensPerWorker ?? 1);
      const all = await signedInTokens(load.ctx.client, n + 4);
      load.ctx.tokens = all.slice(0, n);
      load.ctx.spare = all.slice(n);
    }
    load.pauseWorkers();
    load.workers = Array.from({ length: scenario.concurrency }, (_, w) => load.worker(w));
    return load;
  }

  private pauseWorkers(): void {
    this.running = false;
    this.resume = new Promise((resolve) => { this.wake = resolve; });
  }

  private async worker(w: number): Promise<void> {
    for (;;) {
      if (!this.running) await this.resume;
      if (this.stopped) return;
      if (!this.server.alive()) {
        this.failure ??= new BenchError(`${this.server.name} exited during ${this.scenario.name}`);
        return;
      }
      const recording = this.recording;
      this.inFlight += 1;
      const start = performance.now();
      let good = true;
      let fatal = false;
      try {
        await this.scenario.op(this.ctx, w);
      } catch (err) {
        good = false;
        fatal = (err as { fatal?: boolean }).fatal === true;
        this.firstError ??= `${(err as Error).message}`.slice(0, 300);
      }
      const dt = performance.now() - start;
      this.inFlight -= 1;
      if (this.inFlight === 0) this.drained?.();
      // Counted when it completes inside a measured window (and began in one).
      if (recording && this.recording) {
        if (good) {
          if (this.ok === this.latencies.length) {
            const bigger = new Float64Array(this.latencies.length * 2);
            bigger.set(this.latencies);
            this.latencies = bigger;
          }
          this.latencies[this.ok] = dt;
          this.ok += 1;
        }
      }
      if (!good) this.errors += 1;
      // Do not spin on a path that only fails.
      if (fatal || (!good && this.ok === 0 && this.errors > 2000)) return;
    }
  }

  /**
   * Runs the workers for `ms`; when `record`, the window's operations, latencies and server CPU
   * count, and the hooks run (see WindowHooks).
   */
  async window(ms: number, record: boolean, profileFile?: string, hooks: WindowHooks = {}): Promise<void> {
    if (this.failure) throw this.failure;
    if (record) await hooks.before?.();
    if (record && profileFile) await this.server.profileStart();
    const u0 = record ? await this.server.usage() : undefined;
    const consents0 = this.ctx.consents;
    const ok0 = this.ok;
    const t0 = performance.now();
    this.recording = record;
    this.running = true;
    this.wake?.();
    let during: Promise<void> | undefined;
    const midway = record && hooks.during ? setTimeout(() => { during = hooks.during!(); during.catch(() => undefined); }, ms / 2) : undefined;
    await sleep(ms);
    this.recording = false;
    const t1 = performance.now();
    clearTimeout(midway);
    const ok1 = this.ok;
    let hookError: unknown;
    if (record) {
      try {
        await during;
        await hooks.after?.();
      } catch (err) {
        hookError = err;
      }
    }
    const u1 = record ? await this.server.usage() : undefined;
    this.pauseWorkers();
    if (u0 && u1) {
      const cpuMs = (u1.cpuMicros - u0.cpuMicros) / 1000;
      this.cpuMs += cpuMs;
      this.windows.push({ ops: ok1 - ok0, seconds: (t1 - t0) / 1000, ops_per_s: (ok1 - ok0) / ((t1 - t0) / 1000), cpu_ms_per_op: ok1 > ok0 ? cpuMs / (ok1 - ok0) : NaN });
      this.rssMb = u1.rss / 2 ** 20;
      this.mainMs = u0.mainMicros !== undefined && u1.mainMicros !== undefined && this.mainMs !== undefined
        ? this.mainMs + (u1.mainMicros - u0.mainMicros) / 1000
        : undefined;
      this.seconds += (t1 - t0) / 1000;
      this.consents += this.ctx.consents - consents0;
      for (const [k, n] of Object.entries(u1.sql ?? {})) this.sql.set(k, (this.sql.get(k) ?? 0) + n - (u0.sql?.[k] ?? 0));
    }
    if (record && profileFile) await this.server.profileStop(profileFile);
    // Let the operations in flight finish before another server's window starts.
    if (this.inFlight > 0) await new Promise<void>((resolve) => { this.drained = resolve; });
    this.drained = undefined;
    if (this.failure) throw this.failure;
    if (hookError) throw hookError;
  }

  /** Stops the workers and returns the figures of the measured windows. */
  async finish(): Promise<Measured> {
    this.stopped = true;
    this.running = true;
    this.wake?.();
    await Promise.all(this.workers);
    this.agent.destroy();
    const sorted = this.latencies.slice(0, this.ok).sort();
    return {
      name: this.scenario.name,
      target: this.target.name,
      concurrency: this.scenario.concurrency,
      ops: this.ok,
      errors: this.errors,
      seconds: this.seconds,
      ops_per_s: this.ok / this.seconds,
      p50_ms: percentile(sorted, 50),
      p95_ms: percentile(sorted, 95),
      p99_ms: percentile(sorted, 99),
      cpu_ms_per_op: this.ok ? this.cpuMs / this.ok : NaN,
      ...(this.mainMs !== undefined && this.ok ? { main_cpu_ms_per_op: this.mainMs / this.ok } : {}),
      ...(this.rssMb !== undefined ? { rss_mb: this.rssMb } : {}),
      ...(this.scenario.name === 'signin' ? { consents: this.consents } : {}),
      ...(this.sql.size ? { sqlPerOp: Object.fromEntries([...this.sql].filter(([, n]) => n > 0).map(([k, n]) => [k, n / this.ok])) } : {}),
      windows: this.windows,
      ...(this.firstError ? { firstError: this.firstError } : {}),
    };
  }
}

export interface Timing {
  /** Unrecorded warm-up of each server before its first window. */
  warmupMs: number;
  /** Measured windows per server, alternating between the servers. */
  rounds: number;
  windowMs: { ours: number; baseline: number };
}

/** One server measured in a scenario: its windows last `windowMs`, with `hooks` in each. */
export interface Arm {
  /** Names the arm in the results and in profile files (`<key>-<scenario>-<round>.cpuprofile`). */
  key: string;
  server: ServerHandle;
  target: Target;
  windowMs: number;
  hooks?: WindowHooks;
}

/**
 * One scenario on every arm (dinhdanh with metrics on, with metrics off, the baseline …): warm-ups,
 * then `rounds` rounds of one measured window per arm, in the arms' order and then reversed
 * (A B C, C B A, A B C …), so that a drift in the machine's speed falls on every arm alike: over
 * each pair of rounds, every arm's windows sit at the same mean position.
 */
export async function measureScenario(
  scenario: Scenario,
  arms: Arm[],
  timing: { warmupMs: number; rounds: number },
  profileFile?: (key: string, round: number) => string,
): Promise<Map<string, Measured>> {
  const loads: Load[] = [];
  try {
    for (const arm of arms) loads.push(await Load.create(arm.server, arm.target, scenario));
    for (const load of loads) await load.window(timing.warmupMs, false);
    for (let r = 0; r < timing.rounds; r += 1) {
      const order = arms.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const i of order) await loads[i]!.window(arms[i]!.windowMs, true, profileFile?.(arms[i]!.key, r), arms[i]!.hooks);
    }
  } catch (err) {
    await Promise.all(loads.map((l) => l.finish().catch(() => undefined)));
    throw err;
  }
  const out = new Map<string, Measured>();
  for (let i = 0; i < arms.length; i += 1) out.set(arms[i]!.key, await loads[i]!.finish());
  return out;
}

/** The scenarios of issue 8, for either server (they speak the same protocol). */
export function scenarios(): Scenario[] {
  const expect200 = (what: string) => (res: { status: number; body: string }) => {
    if (res.status !== 200) throw new BenchError(`${what}: ${res.status} ${res.body.slice(0, 200)}`, res.status);
  };
  const discovery = expect200('discovery');
  const jwks = expect200('jwks');
  const userinfo = expect200('userinfo');
  return [
    {
      name: 'discovery',
      concurrency: 16,
      async op(ctx) {
        discovery(await ctx.client.send('GET', '/.well-known/openid-configuration', { accept: 'application/json' }));
      },
    },
    {
      name: 'jwks',
      concurrency: 16,
      async op(ctx) {
        jwks(await ctx.client.send('GET', '/jwks', { accept: 'application/jwk-set+json, application/json' }));
      },
    },
    {
      // A portal's back end obtaining an access token as itself (opaque; no `resource`).
      name: 'client_credentials',
      concurrency: 12,
      async op(ctx) {
        parseTokens(await ctx.client.tokenRequest({ grant_type: 'client_credentials' }), 'client_credentials');
      },
    },
    {
      // The portal introspecting a citizen's (opaque) access token it holds.
      name: 'introspection',
      concurrency: 12,
      needsTokens: true,
      async op(ctx, w) {
        const res = await ctx.client.send('POST', '/token/introspection', {
          authorization: ctx.client.basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json',
        }, `token=${ctx.tokens[w]!.access_token}`);
        if (res.status !== 200 || !res.body.includes('"active":true')) throw new BenchError(`introspection: ${res.status} ${res.body.slice(0, 200)}`, res.status);
      },
    },
    {
      name: 'userinfo',
      concurrency: 12,
      needsTokens: true,
      async op(ctx, w) {
        userinfo(await ctx.client.send('GET', '/me', { authorization: `Bearer ${ctx.tokens[w]!.access_token}`, accept: 'application/json' }));
      },
    },
    {
      // Rotation: each refresh token is used once; the worker follows its chains with the new one.
      // Each worker takes turns over 12 chains (12 sign-ins, 12 grants), so that a chain sees a few
      // hundred rotations in a full run rather than thousands: a session's refresh chain is short in
      // life (12 hours at most), and the baseline's in-memory adapter re-scans a grant's tokens at
      // every save (its cost grows with the chain; see bench/README.md).
      name: 'refresh',
      concurrency: 8,
      needsTokens: true,
      tokensPerWorker: 12,
      async op(ctx, w) {
        const k = 12;
        const turn = ctx.turn[w] ?? 0;
        ctx.turn[w] = turn + 1;
        const slot = w * k + (turn % k);
        const current = ctx.tokens[slot]!;
        try {
          const next = parseTokens(await ctx.client.tokenRequest({ grant_type: 'refresh_token', refresh_token: current.refresh_token! }), 'refresh');
          if (!next.refresh_token || next.refresh_token === current.refresh_token) throw new BenchError('refresh: the refresh token was not rotated');
          ctx.tokens[slot] = next;
        } catch (err) {
          // A broken chain continues from a spare token, or the worker stops.
          const spare = ctx.spare.pop();
          if (spare) ctx.tokens[slot] = spare;
          else Object.assign(err as object, { fatal: true });
          throw err;
        }
      },
    },
    {
      // A citizen in a new browser: authorize → login page → password → consent (first time) →
      // code → token → userinfo. argon2id dominates: a lower concurrency.
      name: 'signin',
      concurrency: 4,
      async op(ctx) {
        const person = ctx.target.persons[ctx.nextPerson()]!;
        const { consent } = await signIn(ctx.client, person, ctx.nextIp());
        if (consent) ctx.consents += 1;
      },
    },
  ];
}
