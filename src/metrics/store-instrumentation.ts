/**
 * Times every repository call of a store for the observers that ask (Prometheus' store histogram,
 * OpenTelemetry spans): each method of each repository is wrapped once, up front, so a call costs
 * the hooks' own work and nothing else. The store's other members (kind, copy, backup, migrate,
 * ping, purgeExpired, close) are left as they are: maintenance, not the request path, and a
 * readiness ping is measured by the scrape itself (dinhdanh_store_up).
 *
 * With no hooks (metrics off, no traces) the store itself is returned: nothing is wrapped.
 */
import type { Store } from '../store/index.js';
import type { StoreCallHook } from './metrics.js';

/** Members of a Store that are not repositories, or whose calls are bulk maintenance. */
const NOT_WRAPPED = new Set(['kind', 'copy', 'backup', 'migrate', 'ping', 'purgeExpired', 'close']);

type Finish = (error?: unknown) => void;
type AnyFn = (...args: unknown[]) => unknown;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

/** One hook, or all of them in order, as one. */
function combine(hooks: readonly StoreCallHook[]): StoreCallHook {
  if (hooks.length === 1) return hooks[0]!;
  return (backend, repository, operation) => {
    const finishes: Finish[] = [];
    for (const hook of hooks) {
      try {
        finishes.push(hook(backend, repository, operation));
      } catch {
        // An observer never fails a store call.
      }
    }
    return (error) => {
      for (const finish of finishes) {
        try {
          finish(error);
        } catch {
          // idem
        }
      }
    };
  };
}

/** Every function member of `repo`, its own and its prototypes' (Object's excepted). */
function methodNames(repo: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = repo; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(o, name);
      if (d && typeof d.value === 'function') names.add(name);
    }
  }
  return [...names];
}

function wrapRepository(repo: object, backend: string, repository: string, hook: StoreCallHook): object {
  // The wrapper inherits from the repository: anything not wrapped (a value, a getter) reads through.
  const wrapped = Object.create(repo) as Record<string, AnyFn>;
  for (const operation of methodNames(repo)) {
    const original = (repo as Record<string, AnyFn>)[operation]!;
    Object.defineProperty(wrapped, operation, {
      configurable: true,
      enumerable: true,
      writable: true,
      // The repository stays `this`, as for an unwrapped call.
      value: function instrumented(...args: unknown[]): unknown {
        let finish: Finish;
        try {
          finish = hook(backend, repository, operation);
        } catch {
          return original.apply(repo, args);
        }
        let result: unknown;
        try {
          result = original.apply(repo, args);
        } catch (err) {
          finish(err ?? new Error('thrown'));
          throw err;
        }
        if (!isThenable(result)) {
          finish();
          return result;
        }
        return Promise.resolve(result).then(
          (value) => {
            finish();
            return value;
          },
          (err: unknown) => {
            finish(err ?? new Error('rejected'));
            throw err;
          },
        );
      },
    });
  }
  return wrapped;
}

export function instrumentStore(store: Store, hooks: readonly StoreCallHook[]): Store {
  if (hooks.length === 0) return store;
  const hook = combine(hooks);
  const backend = store.kind;
  const instrumented = Object.create(store) as Record<string, unknown>;
  for (const name of Object.keys(store)) {
    if (NOT_WRAPPED.has(name)) continue;
    const value = (store as unknown as Record<string, unknown>)[name];
    if (value === null || typeof value !== 'object') continue;
    Object.defineProperty(instrumented, name, { value: wrapRepository(value, backend, name, hook), enumerable: true, configurable: false, writable: false });
  }
  // Members not wrapped are read through the prototype, with the store as `this` when called.
  for (const name of NOT_WRAPPED) {
    const value = (store as unknown as Record<string, unknown>)[name];
    if (typeof value === 'function') {
      Object.defineProperty(instrumented, name, { value: (value as AnyFn).bind(store), enumerable: true, configurable: false, writable: false });
    } else if (value !== undefined) {
      Object.defineProperty(instrumented, name, { value, enumerable: true, configurable: false, writable: false });
    }
  }
  return instrumented as unknown as Store;
}
