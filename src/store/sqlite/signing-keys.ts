/**
 * Signing keys in `signing_keys`, and the key set's version in `signing_keys_version`.
 */
import type { SigningKeyRecord, SigningKeyRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface SigningKeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk_sealed: string;
  origin: string;
  created_at: number;
  activate_at: number;
  retired_at: number | null;
}

function signingKeyRow(row: SigningKeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg,
    publicJwk: JSON.parse(row.public_jwk) as Record<string, unknown>,
    privateJwkSealed: row.private_jwk_sealed,
    origin: row.origin,
    createdAt: row.created_at,
    activateAt: row.activate_at,
    retiredAt: row.retired_at,
  };
}

export function createSqliteSigningKeys({ db, statement, call }: SqliteContext): SigningKeyRepository {
  const signingKeyInsert = statement<
    [{ kid: string; alg: string; publicJwk: string; privateJwkSealed: string; origin: string; createdAt: number; activateAt: number; retiredAt: number | null }]
  >(`
    INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk_sealed, origin, created_at, activate_at, retired_at)
    VALUES (@kid, @alg, @publicJwk, @privateJwkSealed, @origin, @createdAt, @activateAt, @retiredAt)
  `);
  const signingKeyList = statement<[], SigningKeyRow>('SELECT * FROM signing_keys ORDER BY activate_at, kid');
  const signingKeyRetire = statement<[number, string]>(
    'UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL',
  );
  const signingKeysBump = statement<[]>('UPDATE signing_keys_version SET version = version + 1 WHERE id = 1');
  const signingKeysVersion = statement<[], { version: number }>('SELECT version FROM signing_keys_version WHERE id = 1');
  // The change and the version bump commit together: a reader never sees a new key set under an old
  // version (and so never misses a rotation).
  const signingKeyAdd = db.transaction((key: SigningKeyRecord) => {
    signingKeyInsert().run({
      kid: key.kid,
      alg: key.alg,
      publicJwk: JSON.stringify(key.publicJwk),
      privateJwkSealed: key.privateJwkSealed,
      origin: key.origin,
      createdAt: key.createdAt,
      activateAt: key.activateAt,
      retiredAt: key.retiredAt,
    });
    signingKeysBump().run();
  });
  const signingKeyRetireOnce = db.transaction((kid: string, at: number) => {
    const retired = signingKeyRetire().run(at, kid).changes === 1;
    if (retired) signingKeysBump().run();
    return retired;
  });

  return {
    add: (key) =>
      call(
        () => {
          signingKeyAdd(key);
        },
        () => 'kid',
      ),
    list: () => call(() => signingKeyList().all().map(signingKeyRow)),
    retire: (kid, at) => call(() => signingKeyRetireOnce(kid, at)),
    version: () => call(() => signingKeysVersion().get()?.version ?? 0),
  };
}
