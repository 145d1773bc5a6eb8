/**
 * The development demo's registry people: put into a file registry once (a restart adds nothing),
 * never for an https registry or outside development, never given an account; the banner names one
 * who has no account yet.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../config/config.js';
import { createFileRegistry } from '../registry/index.js';
import { checkPid } from '../accounts/index.js';
import { DEMO_REGISTRY_PEOPLE, demoRegistrationLines, seedDemoRegistry } from './demo.js';

let dir: string;
let file: string;
let registered: Set<string>;
let logs: string[];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-demo-registry-'));
  file = path.join(dir, 'data', 'registry.jsonl');
  registered = new Set();
  logs = [];
});
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

function system(env: Record<string, string> = {}) {
  return {
    config: loadConfig({ NODE_ENV: 'development', PORT: '0', ...env }, dir),
    logger: pino({ level: 'info' }, { write: (l: string) => { logs.push(l); } }),
    store: { persons: { findByPid: async (pid: string) => (registered.has(pid) ? ({ pid } as never) : undefined) } },
  };
}

const lines = () => fs.readFileSync(file, 'utf8').trimEnd().split('\n');

describe('demo registry people', () => {
  it('are valid people per the reference data, with diacritics, one with a phone', () => {
    for (const p of DEMO_REGISTRY_PEOPLE) expect(checkPid(p.pid, { birthdate: p.birthdate, gender: p.gender })).toEqual({ ok: true });
    expect(DEMO_REGISTRY_PEOPLE.every((p) => /[^\x20-\x7e]/.test(p.full_name))).toBe(true);
    expect(DEMO_REGISTRY_PEOPLE.filter((p) => p.phone !== undefined)).toHaveLength(1);
  });

  it('go into the default file registry once, and match there', async () => {
    const s = system();
    const first = await seedDemoRegistry(s);
    expect(first).toEqual(DEMO_REGISTRY_PEOPLE[0]);
    expect(lines()).toHaveLength(DEMO_REGISTRY_PEOPLE.length);
    // A restart adds nothing.
    expect(await seedDemoRegistry(system())).toEqual(DEMO_REGISTRY_PEOPLE[0]);
    expect(lines()).toHaveLength(DEMO_REGISTRY_PEOPLE.length);

    const registry = createFileRegistry({ path: file, logger: s.logger });
    for (const p of DEMO_REGISTRY_PEOPLE) {
      expect(await registry.verify({ pid: p.pid, fullName: p.full_name, birthdate: p.birthdate, gender: p.gender, phone: p.phone })).toBe('match');
    }
  });

  it('name the next person without an account, and none once all have registered', async () => {
    registered.add(DEMO_REGISTRY_PEOPLE[0]!.pid);
    expect(await seedDemoRegistry(system())).toEqual(DEMO_REGISTRY_PEOPLE[1]);
    for (const p of DEMO_REGISTRY_PEOPLE) registered.add(p.pid);
    expect(await seedDemoRegistry(system())).toBeNull();
  });

  it('leave alone a different record under a demo number, and keep the others', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const other = { ...DEMO_REGISTRY_PEOPLE[0]!, full_name: 'Trần Thị Ngọc' };
    fs.writeFileSync(file, `${JSON.stringify(other)}\n`);
    expect(await seedDemoRegistry(system())).toEqual(DEMO_REGISTRY_PEOPLE[1]);
    expect(lines()[0]).toBe(JSON.stringify(other));
    expect(lines()).toHaveLength(DEMO_REGISTRY_PEOPLE.length);
    expect(logs.join('\n')).toMatch(/another record under a demo person's number/);
  });

  it('are not added with an https registry, outside development, or with the demo off', async () => {
    expect(await seedDemoRegistry(system({ DINHDANH_REGISTRY: 'http://127.0.0.1:9/verify', DINHDANH_REGISTRY_TOKEN: 't0ken' }))).toBeNull();
    expect(await seedDemoRegistry(system({ DINHDANH_DEMO: 'off' }))).toBeNull();
    expect(await seedDemoRegistry(system({ NODE_ENV: 'test', DINHDANH_DEMO: 'on' }))).toBeNull();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('cost only the hint when the file cannot be written', async () => {
    fs.mkdirSync(file, { recursive: true });
    expect(await seedDemoRegistry(system())).toBeNull();
    expect(logs.join('\n')).toMatch(/could not be put in the registry file/);
  });

  it('give the banner what to type at /register, the phone when the record has one', () => {
    const s = system();
    const text = demoRegistrationLines(s.config, DEMO_REGISTRY_PEOPLE[0]!).join('\n');
    expect(text).toContain('/register');
    expect(text).toContain('001195000101');
    expect(text).toContain('Trần Thị Bích Ngọc');
    expect(text).toContain('1995-08-21');
    expect(text).toContain('female');
    expect(text).toContain('0901234567');
    expect(text).toContain(path.join(dir, 'data', 'outbox', 'outbox.jsonl'));
    expect(demoRegistrationLines(s.config, DEMO_REGISTRY_PEOPLE[1]!).join('\n')).toMatch(/any mobile number/);
    expect(demoRegistrationLines(s.config, null)).toEqual([]);
  });
});
