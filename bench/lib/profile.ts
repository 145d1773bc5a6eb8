/**
 * Reads a V8 CPU profile (.cpuprofile, as written by `node --cpu-prof` or the inspector) and sums
 * self time by function and by module: a package under node_modules, a file under src/, a Node.js
 * internal, or V8 itself (garbage collector, "(program)": native code outside JavaScript frames).
 * Idle time is left out, so percentages are of the time the main thread was busy.
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  busyMs: number;
  functions: { name: string; ms: number; pct: number }[];
  modules: { name: string; ms: number; pct: number }[];
  /** Time spent in a src/ file or anything it called (a frame counted once per sample). */
  inclusiveSrc: { name: string; ms: number; pct: number }[];
}

export function moduleOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'V8: garbage collector';
    if (functionName === '(program)') return 'V8: (program) native';
    if (functionName === '(idle)' || functionName === '(root)') return functionName;
    return 'V8/native builtins';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const src = url.indexOf('/src/');
  if (src !== -1) return `src/${url.slice(src + 5)}`;
  const bench = url.indexOf('/bench/');
  if (bench !== -1) return `bench/${url.slice(bench + 7)}`;
  return url;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) return url.slice(nm + '/node_modules/'.length);
  const src = url.indexOf('/src/');
  if (src !== -1) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

/** Sums one or more profiles (e.g. the measured windows of one scenario). */
export function summarise(files: string | string[], top = 25): ProfileSummary {
  const fns = new Map<string, number>();
  const mods = new Map<string, number>();
  const incl = new Map<string, number>();
  let busy = 0;
  for (const file of typeof files === 'string' ? [files] : files) {
    busy += addProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, fns, mods, incl);
  }
  const rank = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, ms]) => ({ name, ms, pct: (100 * ms) / busy }));
  return { busyMs: busy, functions: rank(fns, top), modules: rank(mods, 15), inclusiveSrc: rank(incl, 15) };
}

function addProfile(profile: CpuProfile, fns: Map<string, number>, mods: Map<string, number>, incl: Map<string, number>): number {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  let busy = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const mod = moduleOf(url, functionName);
    if (mod === '(idle)' || mod === '(root)') continue;
    busy += ms;
    const fname = `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ''}`;
    fns.set(fname, (fns.get(fname) ?? 0) + ms);
    mods.set(mod, (mods.get(mod) ?? 0) + ms);
    // Inclusive time of src/ files: each file on this sample's stack, once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const m = moduleOf(byId.get(cur)!.callFrame.url, byId.get(cur)!.callFrame.functionName);
      if (m.startsWith('src/') && !seen.has(m)) {
        seen.add(m);
        incl.set(m, (incl.get(m) ?? 0) + ms);
      }
    }
  }
  return busy;
}

export function formatSummary(title: string, s: ProfileSummary, opsInWindow?: number): string {
  const lines = [`### ${title}: ${s.busyMs.toFixed(0)} ms busy on the main thread${opsInWindow ? ` (${(s.busyMs / opsInWindow).toFixed(3)} ms/op)` : ''}`, ''];
  lines.push('self time by module:', ...s.modules.map((m) => `  ${m.pct.toFixed(1).padStart(5)}%  ${m.name}`), '');
  lines.push('self time by function:', ...s.functions.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${f.name}`), '');
  lines.push('inclusive time of src/ files (with everything they call):', ...s.inclusiveSrc.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${f.name}`), '');
  return lines.join('\n');
}

// `node --import tsx bench/lib/profile.ts <file.cpuprofile>…` prints the summary of saved profiles.
if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  if (files.length) console.log(formatSummary(files.join(' + '), summarise(files)));
}
