/**
 * The ready-made operations in deploy/: Prometheus' alert and recording rules, their unit tests,
 * the example scrape configuration and the Grafana dashboard.
 *
 * With `promtool` installed (Debian's `prometheus` package; `.ci/run` installs it), the rules are
 * checked and unit-tested by Prometheus' own tool (`promtool check rules`, `promtool test rules`)
 * and the scrape configuration by `promtool check config`. Whether or not it is installed, the
 * files are parsed and their shape checked here, and every metric they name is looked up in the
 * `/metrics` of a real running dinhdanh (a sign-in, a failed one and a token exchange first, so the
 * labelled series exist): a rule or a panel on a metric nobody exports would stay silent for ever.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import YAML from 'yaml';
import { BACKCHANNEL_LOGOUT_JOB } from '../../src/provider/backchannel-logout.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn } from '../helpers/rp.js';
import { firstExecutable } from '../helpers/executables.js';

jest.setTimeout(60_000);

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROMETHEUS_DIR = path.join(ROOT, 'deploy/prometheus');
const RULES_FILE = path.join(PROMETHEUS_DIR, 'dinhdanh.rules.yml');
const RULES_TEST_FILE = path.join(PROMETHEUS_DIR, 'dinhdanh.rules.test.yml');
const CONFIG_FILE = path.join(PROMETHEUS_DIR, 'prometheus.yml');
const DASHBOARD_FILE = path.join(ROOT, 'deploy/grafana/dinhdanh.json');
const DEPLOY_README = path.join(ROOT, 'deploy/README.md');

const PROMTOOL = firstExecutable((process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'promtool')));
const itWithPromtool = PROMTOOL ? it : it.skip;
const withoutPromtool = PROMTOOL ? '' : ' (skipped: promtool not installed: apt-get install prometheus)';

/** The alerts issue 17 asks for, by what they watch: each must exist, with these metrics in its rules. */
const REQUIRED_ALERTS: Record<string, string[]> = {
  DinhdanhDown: ['up'],
  DinhdanhStoreDown: ['dinhdanh_store_up'],
  DinhdanhHighErrorRate: ['dinhdanh_http_requests_total'],
  DinhdanhSignInFailureSpike: ['dinhdanh_signins_total'],
  DinhdanhLockoutSpike: ['dinhdanh_lockouts_total'],
  DinhdanhBackchannelLogoutStalled: ['dinhdanh_jobs_oldest_due_age_seconds'],
  DinhdanhBackchannelQueueGrowing: ['dinhdanh_jobs_queued'],
  DinhdanhBackchannelLogoutFailed: ['dinhdanh_backchannel_logout_total'],
  DinhdanhEventLoopLag: ['nodejs_eventloop_lag_p99_seconds'],
  DinhdanhSigningKeyAging: ['dinhdanh_signing_key_active_age_seconds'],
  DinhdanhUsageFlushFailing: ['dinhdanh_usage_flush_failures_total'],
};

interface Rule {
  alert?: string;
  record?: string;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}
interface RuleGroup { name?: unknown; rules?: Rule[] }

function readYaml(file: string): unknown {
  return YAML.parse(fs.readFileSync(file, 'utf8'));
}

const rulesDoc = readYaml(RULES_FILE) as { groups?: RuleGroup[] };
const groups: RuleGroup[] = Array.isArray(rulesDoc?.groups) ? rulesDoc.groups : [];
const rules: Rule[] = groups.flatMap((g) => (Array.isArray(g.rules) ? g.rules : []));
const alerts = rules.filter((r) => typeof r.alert === 'string');
const records = rules.filter((r) => typeof r.record === 'string');

interface Panel { id?: unknown; type?: string; title?: string; datasource?: { uid?: unknown; type?: unknown }; targets?: Array<{ expr?: unknown; datasource?: { uid?: unknown } }>; gridPos?: { x: number; y: number; w: number; h: number }; panels?: Panel[] }
const dashboard = JSON.parse(fs.readFileSync(DASHBOARD_FILE, 'utf8')) as {
  schemaVersion?: number; uid?: string; title?: string; panels?: Panel[];
  templating?: { list?: Array<{ name?: string; type?: string; query?: unknown; datasource?: { uid?: unknown } }> };
};
/** Every panel, rows' nested panels too; rows themselves only group and query nothing. */
const allPanels: Panel[] = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
const chartPanels = allPanels.filter((p) => p.type !== 'row');
const panelExprs: string[] = chartPanels.flatMap((p) => (p.targets ?? []).map((t) => String(t.expr)));

/**
 * Metric names in a PromQL expression: dinhdanh's own and prom-client's default ones. A name inside
 * a recording rule's `level:metric:operation` is not one (it is ours, made by the rules).
 */
const METRIC_NAME = /(?<![\w:])((?:dinhdanh|nodejs|process)_[a-z0-9_]+)(?![\w:])/g;
function metricNames(expr: string): string[] {
  return [...expr.matchAll(METRIC_NAME)].map((m) => m[1]!);
}

/** `name{label op "value", …}` selectors of an expression, with their matchers. */
function selectors(expr: string): Array<{ name: string; matchers: Array<{ label: string; op: string; value: string }> }> {
  const out: Array<{ name: string; matchers: Array<{ label: string; op: string; value: string }> }> = [];
  for (const m of expr.matchAll(/(?<![\w:])([a-z_][a-z0-9_]*)\{([^}]*)\}/g)) {
    const matchers = [...m[2]!.matchAll(/([a-z_][a-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map((x) => ({ label: x[1]!, op: x[2]!, value: x[3]! }));
    out.push({ name: m[1]!, matchers });
  }
  return out;
}

/** GitHub's anchor for a Markdown heading (lower case, spaces to dashes, punctuation dropped). */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    anchors.add(m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return anchors;
}

function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL!, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('Prometheus rules: shape', () => {
  it('has groups with unique names, each with rules that are an alert or a record with an expression', () => {
    expect(groups.length).toBeGreaterThan(0);
    const names = groups.map((g) => g.name);
    expect(names.every((n) => typeof n === 'string' && n.length > 0)).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    for (const g of groups) {
      expect(Array.isArray(g.rules) && g.rules.length > 0).toBe(true);
      for (const r of g.rules!) {
        expect([typeof r.alert, typeof r.record].filter((t) => t === 'string')).toHaveLength(1);
        expect(typeof r.expr).toBe('string');
        expect((r.expr as string).trim().length).toBeGreaterThan(0);
      }
    }
    // Recording rules follow Prometheus' level:metric:operations naming.
    for (const r of records) expect(r.record).toMatch(/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
    expect(new Set(records.map((r) => r.record)).size).toBe(records.length);
  });

  it('gives every alert a unique name, a for:, a severity (page or ticket), a summary, a description and a runbook section that exists', () => {
    const anchors = headingAnchors(fs.readFileSync(DEPLOY_README, 'utf8'));
    expect(alerts.length).toBeGreaterThanOrEqual(Object.keys(REQUIRED_ALERTS).length);
    expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    for (const a of alerts) {
      expect({ alert: a.alert, for: a.for }).toEqual({ alert: a.alert, for: expect.stringMatching(/^\d+[smhd]$/) });
      expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({ alert: a.alert, severity: expect.stringMatching(/^(page|ticket)$/) });
      expect(typeof a.annotations?.summary).toBe('string');
      expect(typeof a.annotations?.description).toBe('string');
      const runbook = String(a.annotations?.runbook_url);
      expect(runbook).toMatch(/^deploy\/README\.md#[a-z0-9-]+$/);
      expect({ alert: a.alert, anchor: anchors.has(runbook.split('#')[1]!) }).toEqual({ alert: a.alert, anchor: true });
    }
  });

  it('has the alerts the operators need (readiness, errors, sign-in failures, lockouts, back-channel queue, event loop, key age, usage flushes), each on its metric', () => {
    /** An alert's metrics, through the recording rules it uses. */
    const recordExpr = new Map(records.map((r) => [r.record!, String(r.expr)]));
    const expand = (expr: string): string => expr.replace(/[a-z_]+:[a-z0-9_]+:[a-z0-9_]+/g, (name) => (recordExpr.has(name) ? `(${expand(recordExpr.get(name)!)})` : name));
    for (const [name, metrics] of Object.entries(REQUIRED_ALERTS)) {
      const alert = alerts.find((a) => a.alert === name);
      expect({ name, found: Boolean(alert) }).toEqual({ name, found: true });
      const expr = expand(String(alert!.expr));
      for (const metric of metrics) expect({ name, metric, used: new RegExp(`(?<![\\w:])${metric}(?![\\w:])`).test(expr) }).toEqual({ name, metric, used: true });
    }
    // The key alert fires at 80 of the planned 90 days.
    expect(expand(String(alerts.find((a) => a.alert === 'DinhdanhSigningKeyAging')!.expr))).toContain('80 * 86400');
    // The back-channel alerts watch the job kind the code enqueues.
    for (const name of ['DinhdanhBackchannelLogoutStalled', 'DinhdanhBackchannelQueueGrowing']) {
      expect(String(alerts.find((a) => a.alert === name)!.expr)).toContain(`kind="${BACKCHANNEL_LOGOUT_JOB}"`);
    }
  });

  it('has a promtool test that shows every alert firing and one that shows it quiet', () => {
    const doc = readYaml(RULES_TEST_FILE) as { rule_files?: string[]; tests?: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }> };
    expect(doc.rule_files).toEqual([path.basename(RULES_FILE)]);
    const cases = (doc.tests ?? []).flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect({ alert: a.alert, fires: mine.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({ alert: a.alert, fires: true });
      expect({ alert: a.alert, quiet: mine.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({ alert: a.alert, quiet: true });
    }
  });
});

describe('Prometheus scrape configuration: shape', () => {
  it('scrapes the dinhdanh job at /metrics with a bearer token from a file, and loads the rules', () => {
    const config = readYaml(CONFIG_FILE) as { rule_files?: string[]; scrape_configs?: Array<Record<string, unknown>> };
    expect(config.rule_files).toContain(path.basename(RULES_FILE));
    const job = config.scrape_configs?.find((s) => s.job_name === 'dinhdanh');
    expect(job).toBeDefined();
    expect(job!.metrics_path).toBe('/metrics');
    expect(job!.authorization).toEqual({ type: 'Bearer', credentials_file: expect.stringMatching(/^\//) });
    // Several instances, each scraped on its own.
    const targets = (job!.static_configs as Array<{ targets: string[] }>).flatMap((s) => s.targets);
    expect(targets.length).toBeGreaterThan(1);
    // The rules name the same job.
    expect(String(alerts.find((a) => a.alert === 'DinhdanhDown')!.expr)).toContain('job="dinhdanh"');
  });
});

describe('Grafana dashboard: shape', () => {
  it('parses, uses the data source variable, and has the instance and portal variables', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(typeof dashboard.uid).toBe('string');
    const vars = dashboard.templating?.list ?? [];
    expect(vars.find((v) => v.name === 'DS_PROMETHEUS')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['instance', 'portal']) {
      expect(vars.find((v) => v.name === name)).toMatchObject({ type: 'query', datasource: { uid: '${DS_PROMETHEUS}' } });
    }
  });

  it('gives every panel the data source, at least one query, a unique id and a place on the 24-column grid', () => {
    expect(chartPanels.length).toBeGreaterThan(20);
    const ids = allPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of chartPanels) {
      expect({ title: p.title, uid: p.datasource?.uid }).toEqual({ title: p.title, uid: '${DS_PROMETHEUS}' });
      expect({ title: p.title, targets: (p.targets ?? []).length > 0 }).toEqual({ title: p.title, targets: true });
      for (const t of p.targets ?? []) {
        expect(typeof t.expr === 'string' && t.expr.length > 0).toBe(true);
        expect(t.datasource?.uid).toBe('${DS_PROMETHEUS}');
      }
      expect(p.gridPos!.x + p.gridPos!.w).toBeLessThanOrEqual(24);
    }
    // The sign-in, consent and token panels follow the portal variable.
    for (const title of ['Sign-ins by portal', 'Sign-ins by level and method', 'Sign-in failures by reason', 'Tokens issued by grant type']) {
      const panel = chartPanels.find((p) => p.title === title);
      expect({ title, filtered: (panel?.targets ?? []).every((t) => String(t.expr).includes('portal=~"$portal"')) }).toEqual({ title, filtered: true });
    }
  });
});

describe('promtool', () => {
  itWithPromtool(`check rules accepts the rules${withoutPromtool}`, () => {
    const r = promtool(['check', 'rules', path.basename(RULES_FILE)], PROMETHEUS_DIR);
    expect({ status: r.status, output: r.output }).toEqual({ status: 0, output: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
  });

  itWithPromtool(`test rules: every alert fires on its synthetic series and stays quiet on a normal one${withoutPromtool}`, () => {
    const r = promtool(['test', 'rules', path.basename(RULES_TEST_FILE)], PROMETHEUS_DIR);
    expect({ status: r.status, output: r.output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
  });

  itWithPromtool(`check config accepts the example scrape configuration${withoutPromtool}`, () => {
    // promtool checks that the token file exists: the same configuration, with that one path
    // pointing at a file of this run, beside a copy of the rules it loads.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-prometheus-'));
    try {
      const tokenFile = path.join(dir, 'dinhdanh-metrics-token');
      fs.writeFileSync(tokenFile, `${'t'.repeat(40)}\n`, { mode: 0o600 });
      const original = fs.readFileSync(CONFIG_FILE, 'utf8');
      const replaced = original.replace(/^(\s*credentials_file:\s*)\S+$/m, `$1${tokenFile}`);
      expect(replaced).not.toBe(original);
      fs.writeFileSync(path.join(dir, 'prometheus.yml'), replaced);
      fs.copyFileSync(RULES_FILE, path.join(dir, path.basename(RULES_FILE)));
      const r = promtool(['check', 'config', 'prometheus.yml'], dir);
      expect({ status: r.status, output: r.output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS: 1 rule files found') });
      // The file as shipped is valid syntax too.
      const syntax = promtool(['check', 'config', '--syntax-only', path.basename(CONFIG_FILE)], PROMETHEUS_DIR);
      expect(syntax.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every metric the rules and the dashboard use is exposed by a running dinhdanh', () => {
  const TOKEN = 'deploy-rules-test-token-0123456789abcdef';
  let srv: TestServer;
  /** Metric families from `# TYPE` lines: name → type. */
  const families = new Map<string, string>();
  /** Label names seen on each family's samples (families without samples are absent). */
  const labelsOf = new Map<string, Set<string>>();
  /** Label values seen, per family and label. */
  const valuesOf = new Map<string, Set<string>>();

  /** The family a sample or a referenced name belongs to: itself, or a histogram's _bucket/_sum/_count. */
  const familyOf = (name: string): string | undefined => {
    if (families.has(name)) return name;
    const m = /^(.+)_(bucket|sum|count)$/.exec(name);
    if (m && (families.get(m[1]!) === 'histogram' || families.get(m[1]!) === 'summary')) return m[1]!;
    return undefined;
  };

  beforeAll(async () => {
    srv = await startTestServer({ env: { DINHDANH_METRICS_TOKEN: TOKEN } });
    const portal = await srv.addPortal();
    const person = await srv.addPerson();
    const config = await discover(srv.issuer, portal);
    // A failed sign-in (wrong password), then a successful one and its code redeemed.
    const failed = await signIn(new Browser(srv.issuer), await authRequest(config, portal), { pid: person.pid, password: `${person.password} sai` });
    expect(failed.status).toBe(200);
    const req = await authRequest(config, portal);
    const done = await signIn(new Browser(srv.issuer), req, person);
    expect(done.status).toBe(303);
    await redeem(config, req, done.location!);

    const res = await fetch(`${srv.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    for (const line of (await res.text()).split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) {
        families.set(type[1]!, type[2]!);
        continue;
      }
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
      if (!sample) continue;
      const family = familyOf(sample[1]!);
      if (!family) continue;
      const seen = labelsOf.get(family) ?? new Set<string>();
      for (const l of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        seen.add(l[1]!);
        const key = `${family} ${l[1]}`;
        valuesOf.set(key, (valuesOf.get(key) ?? new Set()).add(l[2]!));
      }
      labelsOf.set(family, seen);
    }
  });
  afterAll(async () => { await srv?.close(); });

  it('the running system exposes its families, the labelled ones with samples after the sign-ins', () => {
    expect(families.get('dinhdanh_signins_total')).toBe('counter');
    expect(labelsOf.get('dinhdanh_signins_total')).toEqual(new Set(['portal', 'acr', 'method', 'outcome']));
    expect(valuesOf.get('dinhdanh_signins_total outcome')).toEqual(new Set(['success', 'wrong_password']));
    expect(families.get('nodejs_eventloop_lag_p99_seconds')).toBe('gauge');
  });

  it('every metric named in the alert and recording rules', () => {
    const names = new Set(rules.flatMap((r) => metricNames(String(r.expr))));
    expect(names.size).toBeGreaterThanOrEqual(10);
    const missing = [...names].filter((n) => !familyOf(n));
    expect(missing).toEqual([]);
  });

  it('every metric named in a dashboard panel, and every dinhdanh metric is on the dashboard', () => {
    const names = new Set(panelExprs.flatMap(metricNames));
    expect(names.size).toBeGreaterThanOrEqual(20);
    const missing = [...names].filter((n) => !familyOf(n));
    expect(missing).toEqual([]);
    const charted = new Set([...names].map((n) => familyOf(n)));
    const notCharted = [...families.keys()].filter((f) => f.startsWith('dinhdanh_') && !charted.has(f));
    expect(notCharted).toEqual([]);
  });

  it('every label the rules and panels select on is one the metric has', () => {
    const checked: string[] = [];
    for (const expr of [...rules.map((r) => String(r.expr)), ...panelExprs]) {
      for (const s of selectors(expr)) {
        const family = familyOf(s.name);
        const seen = family ? labelsOf.get(family) : undefined;
        if (!seen) continue; // `up` (Prometheus' own), or a family without samples in this run
        for (const m of s.matchers) {
          if (m.label === 'job' || m.label === 'instance') continue; // added by Prometheus at scrape
          expect({ metric: s.name, label: m.label, known: seen.has(m.label) }).toEqual({ metric: s.name, label: m.label, known: true });
          checked.push(`${s.name}{${m.label}}`);
        }
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['dinhdanh_http_requests_total{status_class}', 'dinhdanh_signins_total{outcome}', 'dinhdanh_signins_total{portal}']));
    // The job kind the back-channel alerts select (through the recording rules) is one the gauges export.
    expect(valuesOf.get('dinhdanh_jobs_queued kind')).toContain(BACKCHANNEL_LOGOUT_JOB);
    expect(valuesOf.get('dinhdanh_jobs_oldest_due_age_seconds kind')).toContain(BACKCHANNEL_LOGOUT_JOB);
  });
});
