/**
 * Does a self-service page's time tell a registered number from an unregistered one (OWASP ASVS 5.0
 * 6.3.8)? Measures, in one process and interleaved (so the shared machine's drift falls on both
 * alike):
 *
 * - recovery starts (`POST /recover`) whose number and contact match an account, against ones that
 *   match nothing (the baseline);
 * - registration starts (`POST /register`, registry check and a code to the phone) for a number
 *   that already has an account, against a new number (the baseline).
 *
 * Each operation is a new browser (GET the form, then the timed POST), a new client address (one
 * trusted proxy hop) and a new number and phone, so no rate limit is met. Prints the medians and
 * p90s of each pair and their ratios; `npm run bench:enumeration` (about 30 s).
 *
 *   node --import tsx bench/enumeration.ts [--rounds 150]
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { composeSystem } from '../src/compose.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 150;
const PASSWORD = 'mây trắng bay về phía núi xa 2024';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-enum-'));
const server = http.createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
const issuer = `http://127.0.0.1:${port}`;
const config = loadConfig({
  NODE_ENV: 'test', PORT: String(port), DINHDANH_ISSUER: issuer, DINHDANH_TRUST_PROXY_HOPS: '1',
  DINHDANH_STORE: `sqlite:${path.join(dir, 'data', 'dinhdanh.db')}`, DINHDANH_KEYS_DIR: path.join(dir, 'keys'), LOG_LEVEL: 'silent',
}, dir);
const system = await composeSystem(config, { logger: pino({ level: 'silent' }) });
server.on('request', system.app.callback());

// Numbers 001090xxxxxx: men born in 1990 in Hà Nội. Accounts (with proven contacts) for the "known"
// half; every number is in the registry file.
const pidOf = (i: number) => `001090${String(100000 + i).padStart(6, '0')}`;
const phoneOf = (i: number, kind: number) => `+849${kind}${String(1000000 + i).slice(-7)}`;
const warmup = 10;
// Number ranges of S each: [0, S) recovery that matches, [S, 2S) registration of an existing
// account, [2S, 3S) registration of a new number, [3S, 4S) recovery that matches nothing.
const S = rounds + warmup;
const registry: string[] = [];
for (let i = 0; i < 3 * S; i += 1) registry.push(JSON.stringify({ pid: pidOf(i), full_name: 'Nguyễn Văn An', birthdate: '1990-03-15', gender: 'male' }));
fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
fs.writeFileSync(path.join(dir, 'data', 'registry.jsonl'), `${registry.join('\n')}\n`);
for (let i = 0; i < 2 * S; i += 1) {
  await system.accounts.create({ pid: pidOf(i), name: 'Nguyễn Văn An', birthdate: '1990-03-15', gender: 'male', phone: phoneOf(i, 1), password: PASSWORD, contactsVerified: true });
}

let address = 0;
async function timedStart(pathname: string, fields: Record<string, string>): Promise<number> {
  address += 1;
  const ip = `10.${(address >> 16) & 255}.${(address >> 8) & 255}.${address & 255}`;
  const headers = { 'x-forwarded-for': ip, 'x-forwarded-proto': 'http' };
  const page = await fetch(`${issuer}${pathname}`, { headers });
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
  const body = new URLSearchParams({ _csrf: csrf, ...fields }).toString();
  const t0 = process.hrtime.bigint();
  const res = await fetch(`${issuer}${pathname}`, {
    method: 'POST', body, headers: { ...headers, cookie, origin: issuer, 'content-type': 'application/x-www-form-urlencoded' },
  });
  const text = await res.text();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.status !== 200 || !text.includes('name="code"')) throw new Error(`${pathname}: ${res.status}`);
  return ms;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const samples = { recoverMatch: [] as number[], recoverNone: [] as number[], registerExisting: [] as number[], registerNew: [] as number[] };
for (let r = 0; r < rounds + warmup; r += 1) {
  const keep = r >= warmup;
  // Alternate which of each pair goes first.
  const pair = [
    async () => { const t = await timedStart('/recover', { pid: pidOf(r), contact: phoneOf(r, 1) }); if (keep) samples.recoverMatch.push(t); },
    async () => { const t = await timedStart('/recover', { pid: pidOf(3 * S + r), contact: phoneOf(r, 2) }); if (keep) samples.recoverNone.push(t); },
  ];
  const reg = [
    async () => { const t = await timedStart('/register', { pid: pidOf(S + r), full_name: 'Nguyễn Văn An', birthdate: '1990-03-15', gender: 'male', phone: phoneOf(r, 3) }); if (keep) samples.registerExisting.push(t); },
    async () => { const t = await timedStart('/register', { pid: pidOf(2 * S + r), full_name: 'Nguyễn Văn An', birthdate: '1990-03-15', gender: 'male', phone: phoneOf(r, 4) }); if (keep) samples.registerNew.push(t); },
  ];
  for (const run of r % 2 ? [...pair, ...reg] : [...pair.reverse(), ...reg.reverse()]) await run();
}

const row = (name: string, subject: number[], baseline: number[]) => {
  const [s50, b50, s90, b90] = [quantile(subject, 0.5), quantile(baseline, 0.5), quantile(subject, 0.9), quantile(baseline, 0.9)];
  return `| ${name} | ${s50.toFixed(2)} | ${b50.toFixed(2)} | ${(s50 / b50).toFixed(3)} | ${s90.toFixed(2)} | ${b90.toFixed(2)} | ${(s90 / b90).toFixed(3)} |`;
};
console.log(`\n${rounds} operations of each kind (after ${warmup} warm-up rounds), interleaved; ms of the POST\n`);
console.log('| subject vs baseline | p50 | p50 baseline | ratio | p90 | p90 baseline | ratio |');
console.log('|---|---|---|---|---|---|---|');
console.log(row('recovery: matching account vs nothing', samples.recoverMatch, samples.recoverNone));
console.log(row('registration: existing account vs new number', samples.registerExisting, samples.registerNew));

server.close();
await system.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
