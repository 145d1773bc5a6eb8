/**
 * instrumentStore on a real SQLite store: every repository call reaches the hooks once, with the
 * call's outcome, and behaves exactly as before (results, errors, `this`); with no hooks nothing is
 * wrapped at all.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StoreConflictError, createStore, type Store } from '../store/index.js';
import type { StoreCallHook } from './metrics.js';
import { instrumentStore } from './store-instrumentation.js';

interface Call { backend: string; repository: string; operation: string; outcome?: 'ok' | 'error'; error?: unknown }

function recorder(): { hook: StoreCallHook; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    hook: (backend, repository, operation) => {
      const call: Call = { backend, repository, operation };
      calls.push(call);
      return (error) => {
        if (call.outcome) throw new Error('finished twice');
        call.outcome = error === undefined ? 'ok' : 'error';
        call.error = error;
      };
    },
  };
}

let dir: string;
let store: Store;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-instrument-'));
  store = await createStore(`sqlite:${path.join(dir, 'store.db')}`);
});
afterAll(async () => {
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const person = (id: string, pid: string) => ({
  id, pid, name: 'Nguyễn Văn An', familyName: 'Nguyễn', givenName: 'An', birthdate: '1990-03-15', gender: 'male' as const, email: null, emailVerified: false,
  phone: null, phoneVerified: false, address: null, level: 1 as const, passwordHash: '$argon2id$x', status: 'active' as const,
});

describe('instrumentStore', () => {
  it('returns the store itself when there is nothing to tell', () => {
    expect(instrumentStore(store, [])).toBe(store);
  });

  it('tells each hook of each call, with its outcome, and changes nothing of what the call does', async () => {
    const a = recorder();
    const b = recorder();
    const timed = instrumentStore(store, [a.hook, b.hook]);
    const created = await timed.persons.create(person('p-1', '001090000001'));
    expect(created.id).toBe('p-1');
    expect((await timed.persons.findById('p-1'))?.pid).toBe('001090000001');
    expect(await timed.persons.findById('nobody')).toBeUndefined();
    const conflict = await timed.persons.create(person('p-2', '001090000001')).catch((err: unknown) => err);
    expect(conflict).toBeInstanceOf(StoreConflictError);
    expect(await timed.counters.increment('k', 60_000, Date.now())).toMatchObject({ count: 1 });
    for (const r of [a, b]) {
      expect(r.calls.map((c) => [c.backend, c.repository, c.operation, c.outcome])).toEqual([
        ['sqlite', 'persons', 'create', 'ok'],
        ['sqlite', 'persons', 'findById', 'ok'],
        ['sqlite', 'persons', 'findById', 'ok'],
        ['sqlite', 'persons', 'create', 'error'],
        ['sqlite', 'counters', 'increment', 'ok'],
      ]);
      expect(r.calls[3]!.error).toBe(conflict);
    }
    // The same records, through either door.
    expect((await store.persons.findById('p-1'))?.id).toBe('p-1');
  });

  it('wraps every repository but leaves the store\'s own members as they are', async () => {
    const a = recorder();
    const timed = instrumentStore(store, [a.hook]);
    expect(timed.kind).toBe('sqlite');
    await timed.ping();
    expect(await timed.purgeExpired(Date.now())).toBeGreaterThanOrEqual(0);
    expect(a.calls).toEqual([]);
    for (const [name, repo] of Object.entries(store)) {
      if (['kind', 'copy', 'backup', 'migrate', 'ping', 'purgeExpired', 'close'].includes(name) || typeof repo !== 'object' || repo === null) continue;
      expect([name, (timed as unknown as Record<string, unknown>)[name] !== repo]).toEqual([name, true]);
    }
    await timed.oidc.upsert('Session', 's-1', { accountId: 'p-1' }, 60);
    await timed.jobs.stats();
    await timed.signingKeys.list();
    await timed.audit.head();
    expect(a.calls.map((c) => `${c.repository}.${c.operation}`)).toEqual(['oidc.upsert', 'jobs.stats', 'signingKeys.list', 'audit.head']);
    // A hook that throws never fails the store call.
    const broken = instrumentStore(store, [() => { throw new Error('observer bug'); }]);
    expect((await broken.persons.findById('p-1'))?.id).toBe('p-1');
  });

  it('keeps `this` for class-based repositories and sync results for sync methods', async () => {
    class Tally {
      private n = 0;
      async add(k: number): Promise<number> {
        this.n += k;
        return this.n;
      }
      peek(): number {
        return this.n;
      }
      boom(): never {
        throw new Error('sync failure');
      }
    }
    const tally = new Tally();
    const fake = { kind: 'test', tally, ping: async () => {}, close: async () => {} } as unknown as Store;
    const a = recorder();
    const timed = instrumentStore(fake, [a.hook]) as unknown as { tally: Tally };
    expect(await timed.tally.add(2)).toBe(2);
    expect(await timed.tally.add(3)).toBe(5);
    expect(timed.tally.peek()).toBe(5);
    expect(() => timed.tally.boom()).toThrow('sync failure');
    expect(a.calls.map((c) => [c.repository, c.operation, c.outcome])).toEqual([
      ['tally', 'add', 'ok'], ['tally', 'add', 'ok'], ['tally', 'peek', 'ok'], ['tally', 'boom', 'error'],
    ]);
  });
});
