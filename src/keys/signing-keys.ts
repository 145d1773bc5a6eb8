/**
 * Signing keys in the store, rotated without a restart (issue 6).
 *
 * A key's state follows from its times (store/types.ts, SigningKeyRecord): `next` keys are
 * published before they sign, so portals' JWKS caches hold them by the time they do; the newest
 * activated key of each algorithm is `active`; older ones are `retiring`, still published so the
 * tokens they signed keep verifying, until an operator retires them. RS256 (which OpenID Connect
 * requires) and ES256 rotate together.
 *
 * Every instance reloads the set at least every 30 seconds and rebuilds its provider when the
 * published keys or the signing key changed: a rotation reaches all instances within a minute.
 */
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { SigningKeyRecord, SigningKeyRepository } from '../store/index.js';
import { StoreConflictError } from '../store/index.js';
import type { SecretBox } from './secret-box.js';
import { newSigningJwk, type KeyOrigin } from './key-files.js';

export type KeyState = 'next' | 'active' | 'retiring' | 'retired';
export const SIGNING_ALGS = ['RS256', 'ES256'] as const;
/**
 * Default delay before a new key signs: longer than any reasonable JWKS cache (our JWKS answers
 * `Cache-Control: max-age=600`; common libraries also refetch on an unknown kid).
 */
export const DEFAULT_ACTIVATE_AFTER_MS = 60 * 60_000;
/** Tokens signed by a key live at most 10 minutes (ID and JWT access tokens); 5 more for clock skew. */
export const SIGNED_TOKEN_LIFE_MS = 15 * 60_000;
export const KEY_RELOAD_MS = 30_000;

export class KeyRingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

const aad = (kid: string) => `signing-key:${kid}`;

export interface KeyView {
  kid: string;
  alg: string;
  state: KeyState;
  origin: string;
  created_at: string;
  activate_at: string;
  /** When a retiring key has verified everything it signed (its successor's activation + token life). */
  retire_after: string | null;
  retired_at: string | null;
}

/** States of every key at `now`. */
export function keyStates(records: readonly SigningKeyRecord[], now: number): Array<SigningKeyRecord & { state: KeyState; successorAt: number | null }> {
  const out: Array<SigningKeyRecord & { state: KeyState; successorAt: number | null }> = [];
  for (const alg of new Set(records.map((r) => r.alg))) {
    const same = records.filter((r) => r.alg === alg).sort((a, b) => a.activateAt - b.activateAt || (a.kid < b.kid ? -1 : 1));
    const activated = same.filter((r) => r.retiredAt === null && r.activateAt <= now);
    const active = activated[activated.length - 1];
    for (const r of same) {
      let state: KeyState;
      if (r.retiredAt !== null) state = 'retired';
      else if (r.activateAt > now) state = 'next';
      else state = r === active ? 'active' : 'retiring';
      const successor = same.find((s) => s.activateAt > r.activateAt && s.retiredAt === null && s.activateAt <= now);
      out.push({ ...r, state, successorAt: state === 'retiring' && successor ? successor.activateAt : null });
    }
  }
  return out;
}

export interface KeySet {
  /** Private JWKs for oidc-provider, active keys first; the others marked verify-only. */
  jwks: JWK[];
  /** Identifies the published set and the signing keys: a change means "rebuild the provider". */
  fingerprint: string;
  /** The active key of each algorithm (private JWK), for tokens we sign ourselves. */
  active: Map<string, JWK>;
  origins: Set<string>;
}

export function createSigningKeys(deps: { repo: SigningKeyRepository; box: SecretBox; logger: Logger; now?: () => number }) {
  const now = deps.now ?? Date.now;

  async function seal(jwk: JWK, origin: KeyOrigin, activateAt: number): Promise<SigningKeyRecord> {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk as Record<string, unknown>;
    const kid = String(jwk.kid);
    return {
      kid,
      alg: String(jwk.alg),
      publicJwk,
      privateJwkSealed: deps.box.seal(JSON.stringify(jwk), aad(kid)),
      origin,
      createdAt: now(),
      activateAt,
      retiredAt: null,
    };
  }

  async function add(records: SigningKeyRecord[]): Promise<void> {
    for (const r of records) {
      try {
        await deps.repo.add(r);
      } catch (err) {
        // Two instances importing the same file keys at once: the first wins, which is the same key.
        if (!(err instanceof StoreConflictError)) throw err;
      }
    }
  }

  return {
    /** First start on this store: the keys folder's keys become the active set. */
    async bootstrap(fileKeys: readonly JWK[], origin: KeyOrigin): Promise<void> {
      if ((await deps.repo.list()).length > 0) return;
      await add(await Promise.all(fileKeys.map((k) => seal(k, origin, 0))));
      deps.logger.info({ kids: fileKeys.map((k) => k.kid) }, 'signing keys imported into the store from the keys folder');
    },

    async load(): Promise<KeySet> {
      const records = keyStates(await deps.repo.list(), now()).filter((r) => r.state !== 'retired');
      const order = { active: 0, retiring: 1, next: 2 } as const;
      records.sort((a, b) => order[a.state as keyof typeof order] - order[b.state as keyof typeof order] || b.activateAt - a.activateAt);
      const jwks: JWK[] = [];
      const active = new Map<string, JWK>();
      for (const r of records) {
        let jwk: JWK;
        try {
          jwk = JSON.parse(deps.box.open(r.privateJwkSealed, aad(r.kid))) as JWK;
        } catch {
          throw new KeyRingError(`signing key ${r.kid} cannot be opened with this key-encryption key (DINHDANH_KEY_ENCRYPTION_KEY or the keys folder's data keys)`);
        }
        // Only the active key signs: oidc-provider skips keys whose key_ops exclude "sign".
        if (r.state === 'active') active.set(r.alg, jwk);
        jwks.push(r.state === 'active' ? jwk : { ...jwk, key_ops: ['verify'] });
      }
      for (const alg of SIGNING_ALGS) if (!active.has(alg)) throw new KeyRingError(`no active ${alg} signing key: run "dinhdanh keys rotate --activate-after 0"`);
      return {
        jwks,
        active,
        origins: new Set(records.map((r) => r.origin)),
        fingerprint: records.map((r) => `${r.kid}:${r.state}`).join(','),
      };
    },

    /** Adds a next RS256 and ES256 key that start signing after `activateAfterMs`. */
    async rotate(activateAfterMs: number, origin: KeyOrigin): Promise<SigningKeyRecord[]> {
      const activateAt = now() + activateAfterMs;
      const records = await Promise.all(SIGNING_ALGS.map(async (alg) => seal(await newSigningJwk(alg), origin, activateAt)));
      for (const r of records) await deps.repo.add(r);
      return records;
    },

    /** Stops publishing a key. The active key (and an unknown one) is refused. */
    async retire(kid: string): Promise<SigningKeyRecord> {
      const record = keyStates(await deps.repo.list(), now()).find((r) => r.kid === kid);
      if (!record) throw new KeyRingError(`no signing key with kid ${kid}`);
      if (record.state === 'active') throw new KeyRingError(`${kid} is the active ${record.alg} key: rotate first, and retire it once its successor is active and its tokens have expired`);
      if (record.state === 'retired') throw new KeyRingError(`${kid} is already retired`);
      await deps.repo.retire(kid, now());
      return record;
    },

    async describe(): Promise<KeyView[]> {
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      return keyStates(await deps.repo.list(), now()).map((r) => ({
        kid: r.kid,
        alg: r.alg,
        state: r.state,
        origin: r.origin,
        created_at: new Date(r.createdAt).toISOString(),
        activate_at: new Date(r.activateAt).toISOString(),
        retire_after: iso(r.successorAt === null ? null : r.successorAt + SIGNED_TOKEN_LIFE_MS),
        retired_at: iso(r.retiredAt),
      }));
    },
  };
}
export type SigningKeys = ReturnType<typeof createSigningKeys>;

/** `90s`, `15m`, `1h`, `2d`, or `0`: a duration for `keys rotate --activate-after`. */
export function parseDuration(value: string): number {
  const m = /^(\d{1,6})(s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new KeyRingError('--activate-after must be a duration such as 0, 90s, 15m, 1h or 2d');
  const n = Number(m[1]);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
  const ms = n * unit;
  if (ms > 30 * 86_400_000) throw new KeyRingError('--activate-after must be at most 30 days');
  return ms;
}
