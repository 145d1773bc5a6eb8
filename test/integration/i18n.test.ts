/**
 * Locale parity: Vietnamese and English carry the same keys, no empty text, the same placeholders,
 * and every message key the code and the templates use exists in both.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { vi } from '../../src/http/locales/vi.js';
import { en } from '../../src/http/locales/en.js';
import { SCOPE_CLAIMS } from '../../src/portals/scopes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const catalogues: Record<string, Record<string, string>> = { vi, en };

function filesUnder(dir: string, ext: string): string[] {
  return (fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
    .filter((f) => f.endsWith(ext) && !f.endsWith('.test.ts'))
    .map((f) => path.join(ROOT, dir, f));
}

const sources = [...filesUnder('src', '.ts'), ...filesUnder('views', '.eta')]
  .filter((f) => !f.includes(`${path.sep}locales${path.sep}`))
  .map((file) => ({ file: path.relative(ROOT, file), text: fs.readFileSync(file, 'utf8') }));

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const FILE_EXTENSIONS = new Set(['css', 'js', 'ts', 'json', 'eta', 'html', 'db', 'png', 'svg']);
const namespaces = new Set(Object.keys(vi).map((k) => k.split('.')[0]!));

/** Keys in `t('…')` calls (including `it.t('…')` in templates). */
function translateCalls(): Array<{ file: string; key: string }> {
  const out: Array<{ file: string; key: string }> = [];
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/\bt\(\s*(['"])([^'"]+)\1/g)) out.push({ file, key: m[2]! });
    for (const m of text.matchAll(/\bt\(\s*`([^`$]+)`/g)) out.push({ file, key: m[1]! });
    // A computed key (`scope.${s}`) is recorded by its fixed prefix, ending in '.'.
    for (const m of text.matchAll(/\bt\(\s*`([^`$]*)\$\{/g)) out.push({ file, key: m[1]! });
  }
  return out;
}

/** Key-shaped string literals in a message namespace (keys handed to AppError, renderLogin, …). */
/** Strings shaped like message keys that are not: OpenTelemetry semantic-convention attributes (metrics/tracing.ts). */
const NOT_KEYS = new Set(['error.type']);

function keyLiterals(): Array<{ file: string; key: string }> {
  const out: Array<{ file: string; key: string }> = [];
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/(['"`])([a-z_]+)\.([a-z_]+)\1/g)) {
      // File names ('app.css') are not keys, nor OpenTelemetry's attribute names ('error.type').
      if (namespaces.has(m[2]!) && !FILE_EXTENSIONS.has(m[3]!) && !NOT_KEYS.has(`${m[2]}.${m[3]}`)) out.push({ file, key: `${m[2]}.${m[3]}` });
    }
  }
  return out;
}

describe('locale catalogues', () => {
  it('vi and en have exactly the same keys', () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(vi).sort());
  });

  it.each(Object.entries(catalogues))('%s has no empty or untrimmed text', (_locale, messages) => {
    for (const [key, text] of Object.entries(messages)) {
      expect({ key, text: typeof text === 'string' && text.trim().length > 0 }).toEqual({ key, text: true });
      expect({ key, trimmed: text === text.trim() }).toEqual({ key, trimmed: true });
    }
  });

  it('each key has the same placeholders in both languages', () => {
    for (const key of Object.keys(vi) as Array<keyof typeof vi>) {
      expect({ key, placeholders: placeholders(en[key]) }).toEqual({ key, placeholders: placeholders(vi[key]) });
    }
  });

  it('the two languages differ where they should (English is not a copy of Vietnamese)', () => {
    expect(en['login.title']).toBe('Sign in');
    expect(vi['login.title']).toBe('Đăng nhập');
    const same = (Object.keys(vi) as Array<keyof typeof vi>).filter((k) => vi[k] === en[k]);
    expect(same).toEqual([]);
  });
});

describe('keys used by the code and the templates', () => {
  it('the scan finds the t() calls of the templates and the code', () => {
    const files = new Set(translateCalls().map((c) => c.file));
    expect([...files].some((f) => f.endsWith('.eta'))).toBe(true);
    expect([...files].some((f) => f.endsWith('.ts'))).toBe(true);
    expect(translateCalls().length).toBeGreaterThan(20);
  });

  it('every t(\'…\') key exists in vi and en', () => {
    const missing = translateCalls()
      .filter(({ key }) => !key.endsWith('.')) // `scope.${s}`: checked below
      .flatMap(({ file, key }) => Object.entries(catalogues).filter(([, m]) => !(key in m)).map(([locale]) => `${file}: ${key} (${locale})`));
    expect(missing).toEqual([]);
  });

  it('every message key named as a string (error pages, login alerts) exists in vi and en', () => {
    const found = keyLiterals();
    expect(found.some((f) => f.key === 'error.session_expired')).toBe(true);
    const missing = found.flatMap(({ file, key }) =>
      Object.entries(catalogues).filter(([, m]) => !(key in m)).map(([locale]) => `${file}: ${key} (${locale})`));
    expect(missing).toEqual([]);
  });

  it('every scope the consent page can show has a plain-words description in vi and en', () => {
    const dynamic = translateCalls().filter(({ key }) => key.endsWith('.')).map(({ key }) => key);
    expect(dynamic).toContain('scope.');
    for (const scope of [...Object.keys(SCOPE_CLAIMS), 'offline_access']) {
      for (const [locale, m] of Object.entries(catalogues)) {
        expect({ locale, scope, described: `scope.${scope}` in m }).toEqual({ locale, scope, described: true });
      }
    }
  });
});
