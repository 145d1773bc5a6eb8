/**
 * The file registry (the development and test stand-in) and `appendRegistryRecord`, on real files.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { appendRegistryRecord, createFileRegistry, normaliseRegistryName, RegistryInputError, type RegistryQuery } from './index.js';

let dir: string;
let file: string;
let logs: string[];
const logger = () => pino({ level: 'debug' }, { write: (line: string) => { logs.push(line); } });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-registry-'));
  file = path.join(dir, 'data', 'registry.jsonl');
  logs = [];
});
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const AN = { pid: '001090123456', full_name: 'Nguyễn Văn An', birthdate: '1990-05-17', gender: 'male' };
const NGOC = { pid: '001195004217', full_name: 'Trần Thị Bích Ngọc', birthdate: '1995-08-21', gender: 'female', phone: '+84901234567' };
const Q_AN: RegistryQuery = { pid: AN.pid, fullName: AN.full_name, birthdate: AN.birthdate, gender: 'male' };
const Q_NGOC: RegistryQuery = { pid: NGOC.pid, fullName: NGOC.full_name, birthdate: NGOC.birthdate, gender: 'female', phone: NGOC.phone };

function write(lines: string[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
}

describe('normaliseRegistryName', () => {
  it('compares after NFC, trimming, collapsing spaces and lower-casing', () => {
    expect(normaliseRegistryName('  NGUYỄN   Văn\tAN ')).toBe('nguyễn văn an');
    expect(normaliseRegistryName('Nguyễn Văn An'.normalize('NFD'))).toBe(normaliseRegistryName('Nguyễn Văn An'));
    expect(normaliseRegistryName('ĐẶNG THỊ Ánh')).toBe('đặng thị ánh');
  });

  it('never strips diacritics', () => {
    expect(normaliseRegistryName('Nguyễn')).not.toBe(normaliseRegistryName('Nguyen'));
    expect(normaliseRegistryName('Lê Văn Đức')).not.toBe(normaliseRegistryName('Le Van Duc'));
    expect(normaliseRegistryName('Đặng')).not.toBe(normaliseRegistryName('Dặng'));
  });

  it('does not depend on the locale (no Turkish dotless i)', () => {
    expect(normaliseRegistryName('KIM')).toBe('kim');
  });
});

describe('file registry', () => {
  it('is empty when the file is missing: no_match, not unavailable', async () => {
    const registry = createFileRegistry({ path: file, logger: logger() });
    expect(registry.kind).toBe('file');
    expect(await registry.verify(Q_AN)).toBe('no_match');
  });

  it('matches the same number, name (normalised), birth date and gender', async () => {
    write([JSON.stringify(AN), JSON.stringify(NGOC)]);
    const registry = createFileRegistry({ path: file, logger: logger() });
    expect(await registry.verify(Q_AN)).toBe('match');
    expect(await registry.verify({ ...Q_AN, fullName: ' nguyễn  VĂN an '.normalize('NFD') })).toBe('match');
    expect(await registry.verify({ ...Q_AN, fullName: 'Nguyen Van An' })).toBe('no_match');
    expect(await registry.verify({ ...Q_AN, fullName: 'Nguyễn Văn Anh' })).toBe('no_match');
    expect(await registry.verify({ ...Q_AN, birthdate: '1990-05-18' })).toBe('no_match');
    expect(await registry.verify({ ...Q_AN, gender: 'female' })).toBe('no_match');
    expect(await registry.verify({ ...Q_AN, pid: '001090123457' })).toBe('no_match');
  });

  it('where the record has a phone, a different phone does not match (Decree 69/2024/ND-CP)', async () => {
    write([JSON.stringify(AN), JSON.stringify({ ...NGOC, phone: '0901234567' })]);
    const registry = createFileRegistry({ path: file, logger: logger() });
    expect(await registry.verify(Q_NGOC)).toBe('match');
    expect(await registry.verify({ ...Q_NGOC, phone: '+84901234568' })).toBe('no_match');
    // Without a phone in the question there is nothing to compare.
    const { phone: _phone, ...withoutPhone } = Q_NGOC;
    expect(await registry.verify(withoutPhone)).toBe('match');
    // A record without a phone accepts any.
    expect(await registry.verify({ ...Q_AN, phone: '+84912345678' })).toBe('match');
  });

  it('skips malformed and repeated lines, logging each once by line number, never its content', async () => {
    write([
      JSON.stringify(AN),
      '{"pid":"001195004217","full_name":"Trần Thị',
      JSON.stringify({ ...NGOC, gender: 'f' }),
      '',
      'null',
      JSON.stringify({ ...AN, full_name: 'Nguyễn Văn Bình' }),
      JSON.stringify({ ...NGOC, phone: 'call me' }),
      JSON.stringify(NGOC),
    ]);
    const registry = createFileRegistry({ path: file, logger: logger() });
    expect(await registry.verify(Q_AN)).toBe('match');
    expect(await registry.verify(Q_NGOC)).toBe('match');
    await Promise.all([registry.verify(Q_AN), registry.verify(Q_AN)]);
    const skipped = logs.map((l) => JSON.parse(l) as { line?: number; msg: string }).filter((l) => l.line !== undefined);
    expect(skipped.map((l) => l.line)).toEqual([2, 3, 5, 6, 7]);
    expect(skipped[3]!.msg).toMatch(/earlier line/);
    const text = logs.join('\n');
    for (const secret of [AN.pid, NGOC.pid, 'Nguyễn', 'Trần', 'Bình', NGOC.phone, AN.birthdate]) expect(text).not.toContain(secret);
  });

  it('sees a record appended while it runs, and a file replaced under it', async () => {
    const registry = createFileRegistry({ path: file, logger: logger() });
    write([JSON.stringify(NGOC)]);
    expect(await registry.verify(Q_AN)).toBe('no_match');
    await appendRegistryRecord(file, { pid: AN.pid, fullName: AN.full_name, birthdate: AN.birthdate, gender: AN.gender });
    expect(await registry.verify(Q_AN)).toBe('match');
    // Same size, new file (an editor's save-and-rename): the inode tells.
    const replacement = path.join(dir, 'data', 'next.jsonl');
    fs.writeFileSync(replacement, `${JSON.stringify({ ...NGOC, pid: '001195004218' })}\n${JSON.stringify(AN)}\n`);
    fs.renameSync(replacement, file);
    expect(await registry.verify(Q_NGOC)).toBe('no_match');
    fs.rmSync(file);
    expect(await registry.verify(Q_AN)).toBe('no_match');
  });

  it('answers unavailable, logging the number masked, when the file cannot be read', async () => {
    fs.mkdirSync(file, { recursive: true });
    const registry = createFileRegistry({ path: file, logger: logger() });
    expect(await registry.verify(Q_AN)).toBe('unavailable');
    const text = logs.join('\n');
    expect(text).toContain('*********456');
    expect(text).not.toContain(AN.pid);
    expect(text).not.toContain('Nguyễn');
  });
});

describe('appendRegistryRecord', () => {
  const input = { pid: NGOC.pid, fullName: '  Trần  Thị Bích Ngọc '.normalize('NFD'), birthdate: NGOC.birthdate, gender: 'female', phone: '0901 234 567' };

  it('creates the folder and appends one normalised line (name NFC, phone E.164), readable by its owner only', async () => {
    const record = await appendRegistryRecord(file, input);
    expect(record).toEqual(NGOC);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${JSON.stringify(NGOC)}\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const withoutPhone = await appendRegistryRecord(file, { pid: AN.pid, fullName: AN.full_name, birthdate: AN.birthdate, gender: 'male' });
    expect(withoutPhone).toEqual(AN);
    expect(fs.readFileSync(file, 'utf8').split('\n')).toEqual([JSON.stringify(NGOC), JSON.stringify(AN), '']);
  });

  it('refuses a number already in the file, naming it masked', async () => {
    await appendRegistryRecord(file, input);
    const again = appendRegistryRecord(file, { ...input, fullName: 'Trần Thị Ngọc' });
    await expect(again).rejects.toThrow(RegistryInputError);
    await expect(appendRegistryRecord(file, input)).rejects.toThrow(/already has a record for --pid \*{9}217/);
    expect(fs.readFileSync(file, 'utf8').split('\n')).toHaveLength(2);
  });

  it('starts a new line after a last line without one (a file edited by hand)', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(AN));
    await appendRegistryRecord(file, input);
    const registry = createFileRegistry({ path: file, logger: logger() });
    expect(await registry.verify(Q_AN)).toBe('match');
    expect(await registry.verify(Q_NGOC)).toBe('match');
  });

  it('keeps every line whole when many are appended at once', async () => {
    const pids = Array.from({ length: 40 }, (_, i) => `001090${String(200_000 + i)}`);
    await Promise.all(pids.map((pid) => appendRegistryRecord(file, { pid, fullName: 'Nguyễn Văn An', birthdate: '1990-05-17', gender: 'male' })));
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { pid: string }).pid).sort()).toEqual(pids);
  });

  it.each([
    ['pid format', { pid: '00109012345' }, /--pid must be exactly 12 digits/],
    ['province', { pid: '003195004217' }, /--pid starts with a province code/],
    ['century and gender', { gender: 'male' }, /--pid digit 4.*--birthdate and --gender/],
    ['birth year', { birthdate: '1996-08-21' }, /--pid digits 5–6/],
    ['gender', { gender: 'nữ' }, /--gender must be male or female/],
    ['date', { birthdate: '1995-02-30' }, /--birthdate must be a real date/],
    ['date in the future', { birthdate: '2095-08-21', pid: '001395004217' }, /--birthdate must be a real date/],
    ['name', { fullName: 'Ngọc <script>' }, /--name must be/],
    ['empty name', { fullName: '   ' }, /--name must be/],
    ['phone', { phone: '12345' }, /--phone must be a phone number/],
  ])('refuses a bad %s, naming the option, and writes nothing', async (_label, change, message) => {
    await expect(appendRegistryRecord(file, { ...input, ...change })).rejects.toThrow(RegistryInputError);
    await expect(appendRegistryRecord(file, { ...input, ...change })).rejects.toThrow(message);
    expect(fs.existsSync(file)).toBe(false);
  });
});
