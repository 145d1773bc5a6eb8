/**
 * `dinhdanh registry add | check` as operators run it: real CLI processes in a scratch folder (the
 * default registry, `file:data/registry.jsonl`, lands there), a temporary SQLite store, and a local
 * HTTP server standing in for the national population database's adapter (README, "Population
 * registry contract"). Every command prints one JSON object with --json; bad input exits 2 with a
 * message saying what to fix.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createStore } from '../../src/store/index.js';
import { ProcessGroup, type CliRun } from '../helpers/processes.js';

const group = new ProcessGroup();
let dir: string;
let env: Record<string, string>;

const NGOC = ['--pid', '001195004217', '--name', 'Trần Thị Bích Ngọc', '--birthdate', '1995-08-21', '--gender', 'female'];
const PHUC = ['--pid', '048201001234', '--name', 'Lê Hoàng Phúc', '--birthdate', '2001-02-14', '--gender', 'male'];
const TOKEN = 'reg.T0ken-value~';

const cli = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> =>
  group.cli(args, { cwd: dir, env: { ...env, ...extraEnv } });

/** stdout must be exactly one JSON object (one line). */
function json(run: CliRun): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  const value = JSON.parse(lines[0]!) as unknown;
  expect(value).toEqual(expect.any(Object));
  expect(Array.isArray(value)).toBe(false);
  return value as Record<string, unknown>;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-registry-cli-'));
  env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    NODE_ENV: 'development',
    DINHDANH_STORE: `sqlite:${path.join(dir, 'store', 'x.db')}`,
    DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
    DINHDANH_OPERATOR: 'ops.lan',
  };
});
afterAll(async () => {
  await group.stopAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dinhdanh registry add (file registry)', () => {
  const file = () => path.join(dir, 'data', 'registry.jsonl');

  it('appends to the default file under the working folder, prints the number masked, and audits it', async () => {
    const run = await cli(['registry', 'add', ...NGOC, '--phone', '0901 234 567', '--json']);
    expect(run.code).toBe(0);
    expect(json(run)).toEqual({ pid: '*********217', added: true });
    expect(fs.readFileSync(file(), 'utf8')).toBe(`${JSON.stringify({ pid: '001195004217', full_name: 'Trần Thị Bích Ngọc', birthdate: '1995-08-21', gender: 'female', phone: '+84901234567' })}\n`);

    const store = await createStore(env.DINHDANH_STORE!);
    try {
      const entries = await store.audit.list(0, 100);
      const added = entries.filter((e) => e.event === 'REGISTRY_RECORD_ADDED');
      expect(added).toHaveLength(1);
      expect(added[0]!.details).toEqual({ operator: 'ops.lan', pid: '*********217' });
    } finally {
      await store.close();
    }
    expect(run.stderr).not.toContain('001195004217');
  });

  it('prints a human line without --json', async () => {
    const run = await cli(['registry', 'add', ...PHUC]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^added \*{9}234 to the registry file .*registry\.jsonl\n$/);
  });

  it('refuses a number already in the registry (exit 2)', async () => {
    const run = await cli(['registry', 'add', ...NGOC, '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(/already has a record for --pid \*{9}217/);
    expect(fs.readFileSync(file(), 'utf8').trimEnd().split('\n')).toHaveLength(2);
  });

  it.each([
    ['a number that disagrees with the birth date and gender', ['--gender', 'male'], /--pid digit 4/],
    ['a date that is not real', ['--birthdate', '1995-02-29'], /--birthdate must be a real date/],
    ['a gender', ['--gender', 'nam'], /--gender must be male or female/],
    ['a phone', ['--phone', '+84'], /--phone must be a phone number/],
    ['a name', ['--name', 'Ngọc 2'], /--name must be/],
  ])('refuses %s with exit 2, naming the option', async (_label, change, message) => {
    const args = [...NGOC];
    for (let i = 0; i < change.length; i += 2) {
      const at = args.indexOf(change[i]!);
      if (at === -1) args.push(change[i]!, change[i + 1]!);
      else args[at + 1] = change[i + 1]!;
    }
    args[1] = '001195009999';
    const run = await cli(['registry', 'add', ...args, '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(message);
    expect(run.stderr).toMatch(message);
  });

  it('refuses a missing option with exit 2', async () => {
    const run = await cli(['registry', 'add', '--pid', '001195009999', '--birthdate', '1995-08-21', '--gender', 'female', '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(/--name/);
  });
});

describe('dinhdanh registry check', () => {
  it('asks the file registry: match, no_match (diacritics matter; the registered phone must be used)', async () => {
    const match = await cli(['registry', 'check', ...NGOC, '--phone', '+84901234567', '--json']);
    expect(match.code).toBe(0);
    expect(json(match)).toEqual({ result: 'match', registry: 'file' });

    const lower = await cli(['registry', 'check', ...NGOC.map((a) => (a === 'Trần Thị Bích Ngọc' ? '  trần thị  BÍCH ngọc ' : a)), '--json']);
    expect(json(lower)).toEqual({ result: 'match', registry: 'file' });

    const plain = await cli(['registry', 'check', ...NGOC.map((a) => (a === 'Trần Thị Bích Ngọc' ? 'Tran Thi Bich Ngoc' : a)), '--json']);
    expect(plain.code).toBe(0);
    expect(json(plain)).toEqual({ result: 'no_match', registry: 'file' });

    const otherPhone = await cli(['registry', 'check', ...NGOC, '--phone', '0901234568', '--json']);
    expect(json(otherPhone)).toEqual({ result: 'no_match', registry: 'file' });

    const human = await cli(['registry', 'check', ...PHUC]);
    expect(human.stdout).toBe('match (file registry)\n');
  });

  it('refuses bad details with exit 2 before asking', async () => {
    const run = await cli(['registry', 'check', ...NGOC.map((a) => (a === '1995-08-21' ? '1996-08-21' : a)), '--json']);
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(/--pid digits 5–6/);
  });

  describe('against an http(s) adapter', () => {
    let server: http.Server;
    let url: string;
    let answer: { status: number; body: string } = { status: 200, body: '{"result":"match"}' };
    const seen: Array<{ auth: string | undefined; body: unknown }> = [];

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
          seen.push({ auth: req.headers.authorization, body: JSON.parse(body) });
          res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const adapter = () => ({ DINHDANH_REGISTRY: url, DINHDANH_REGISTRY_TOKEN: TOKEN });

    it('sends the details with the bearer token and prints the answer', async () => {
      const run = await cli(['registry', 'check', ...NGOC, '--phone', '0901234567', '--json'], adapter());
      expect(run.code).toBe(0);
      expect(json(run)).toEqual({ result: 'match', registry: 'https' });
      expect(seen.at(-1)).toEqual({
        auth: `Bearer ${TOKEN}`,
        body: { pid: '001195004217', full_name: 'Trần Thị Bích Ngọc', birthdate: '1995-08-21', gender: 'female', phone: '+84901234567' },
      });
      answer = { status: 200, body: '{"result":"no_match"}' };
      expect(json(await cli(['registry', 'check', ...NGOC, '--json'], adapter()))).toEqual({ result: 'no_match', registry: 'https' });
    });

    it('prints unavailable (exit 0) when the adapter fails, saying why on stderr without the token', async () => {
      answer = { status: 502, body: 'bad gateway' };
      const run = await cli(['registry', 'check', ...NGOC, '--json'], adapter());
      expect(run.code).toBe(0);
      expect(json(run)).toEqual({ result: 'unavailable', registry: 'https' });
      expect(run.stderr).toMatch(/"status":502/);
      expect(run.stderr).not.toContain(TOKEN);
      expect(run.stderr).not.toContain('001195004217');
    });

    it('registry add refuses an https registry (exit 2)', async () => {
      const run = await cli(['registry', 'add', ...PHUC, '--json'], adapter());
      expect(run.code).toBe(2);
      expect(String(json(run).error)).toMatch(/file registry only/);
    });
  });

  it('in production a file registry is refused, for the CLI too (exit 2)', async () => {
    const run = await cli(['registry', 'check', ...NGOC, '--json'], {
      NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1',
    });
    expect(run.code).toBe(2);
    expect(String(json(run).error)).toMatch(/refusing to start in production with a file registry/);
  });
});
