/**
 * Key material in the keys folder: the signing JWK set and the secrets file (cookie keys, data keys).
 * Development: generated on first start, marked `development`, with a warning.
 * Production: must exist, must not be development material (ten mistakes #10: development keys
 * in production, empty cookies.keys).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { z } from 'zod';
import { newDataKey, type DataKey } from './secret-box.js';

export const SIGNING_KEYS_FILE = 'signing-keys.json';
export const SECRETS_FILE = 'secrets.json';

export type KeyOrigin = 'development' | 'operator';

const jwkSchema = z.looseObject({ kty: z.string(), kid: z.string().min(1), alg: z.string(), use: z.literal('sig') });
const signingFileSchema = z.object({
  origin: z.enum(['development', 'operator']),
  createdAt: z.string(),
  keys: z.array(jwkSchema).min(1),
});
const secretsFileSchema = z.object({
  origin: z.enum(['development', 'operator']),
  createdAt: z.string(),
  cookieKeys: z.array(z.string().min(43)).min(1),
  dataKeys: z.array(z.object({ kid: z.string().min(1), key: z.string().length(43) })).min(1),
  /** Salt of the pairwise subject HMAC. Changing it changes every portal's `sub`: it never rotates. */
  pairwiseSalt: z.string().min(43),
});

export type SigningKeysFile = z.infer<typeof signingFileSchema>;
export type SecretsFile = z.infer<typeof secretsFileSchema>;

export interface KeyMaterial {
  /** Private JWKs for oidc-provider's `jwks` (first key of each alg signs). */
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  dataKeys: DataKey[];
  pairwiseSalt: string;
  signingOrigin: KeyOrigin;
  secretsOrigin: KeyOrigin;
  /** Files generated during this load (development only). */
  generated: string[];
}

export class KeyMaterialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyMaterialError';
  }
}

export async function newSigningJwk(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = alg === 'RS256'
    ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
    : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

export async function newSigningKeysFile(origin: KeyOrigin): Promise<SigningKeysFile> {
  return {
    origin,
    createdAt: new Date().toISOString(),
    keys: [await newSigningJwk('RS256'), await newSigningJwk('ES256')] as SigningKeysFile['keys'],
  };
}

/**
 * A new secrets file. Given the previous one, new cookie and data keys are put first (they sign and
 * seal from now on) and the old ones kept (they still verify and open), and the pairwise salt is
 * carried over so that no portal sees its subjects change.
 */
export function newSecretsFile(origin: KeyOrigin, previous?: SecretsFile): SecretsFile {
  return {
    origin,
    createdAt: new Date().toISOString(),
    cookieKeys: [crypto.randomBytes(32).toString('base64url'), ...(previous?.cookieKeys ?? [])].slice(0, 3),
    dataKeys: [newDataKey(), ...(previous?.dataKeys ?? [])],
    pairwiseSalt: previous?.pairwiseSalt ?? crypto.randomBytes(32).toString('base64url'),
  };
}

/** Writes a file readable by the owner only; refuses to overwrite unless `force`. */
export function writePrivateJson(file: string, value: unknown, force = false): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const fd = fs.openSync(file, force ? 'w' : 'wx', 0o600);
  try {
    fs.writeFileSync(fd, `${JSON.stringify(value, null, 2)}\n`);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(file, 0o600);
}

function readJson<T>(file: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new KeyMaterialError(`${file} could not be read as JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new KeyMaterialError(`${file} is not a valid dinhdanh key file: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  }
  return parsed.data;
}

export function readSigningKeys(keysDir: string): SigningKeysFile | undefined {
  const file = path.join(keysDir, SIGNING_KEYS_FILE);
  return fs.existsSync(file) ? readJson(file, signingFileSchema) : undefined;
}

export function readSecrets(keysDir: string): SecretsFile | undefined {
  const file = path.join(keysDir, SECRETS_FILE);
  return fs.existsSync(file) ? readJson(file, secretsFileSchema) : undefined;
}

/**
 * Loads key material. In development, missing files are generated (marked `development`).
 * In production, missing or development material is refused with a message naming the file.
 */
export async function loadKeyMaterial(options: { keysDir: string; production: boolean }): Promise<KeyMaterial> {
  const { keysDir, production } = options;
  const generated: string[] = [];
  let signing = readSigningKeys(keysDir);
  let secrets = readSecrets(keysDir);

  if (production) {
    if (!signing) {
      throw new KeyMaterialError(`no signing keys in ${path.join(keysDir, SIGNING_KEYS_FILE)}: run "dinhdanh keys generate" before starting in production`);
    }
    if (signing.origin === 'development') {
      throw new KeyMaterialError(`refusing to start in production on development signing keys (${path.join(keysDir, SIGNING_KEYS_FILE)}): run "dinhdanh keys generate --force"`);
    }
    if (!secrets) {
      throw new KeyMaterialError(`no cookie secrets in ${path.join(keysDir, SECRETS_FILE)}: run "dinhdanh keys generate" before starting in production`);
    }
    if (secrets.origin === 'development') {
      throw new KeyMaterialError(`refusing to start in production on development cookie secrets (${path.join(keysDir, SECRETS_FILE)}): run "dinhdanh keys generate --force"`);
    }
  } else {
    if (!signing) {
      signing = await newSigningKeysFile('development');
      writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), signing);
      generated.push(path.join(keysDir, SIGNING_KEYS_FILE));
    }
    if (!secrets) {
      secrets = newSecretsFile('development');
      writePrivateJson(path.join(keysDir, SECRETS_FILE), secrets);
      generated.push(path.join(keysDir, SECRETS_FILE));
    }
  }

  const kids = new Set(signing.keys.map((k) => k.kid));
  if (kids.size !== signing.keys.length) throw new KeyMaterialError('signing keys must have unique kids');
  if (!signing.keys.some((k) => k.alg === 'RS256')) {
    throw new KeyMaterialError('the signing key set needs an RS256 key (OpenID Connect Core §15.1 requires RS256 support)');
  }

  return {
    jwks: { keys: signing.keys as JWK[] },
    cookieKeys: secrets.cookieKeys,
    dataKeys: secrets.dataKeys,
    pairwiseSalt: secrets.pairwiseSalt,
    signingOrigin: signing.origin,
    secretsOrigin: secrets.origin,
    generated,
  };
}

/** Public view of the signing keys, for `keys list`. */
export function describeSigningKeys(file: SigningKeysFile): Array<{ kid: string; alg: string; kty: string; origin: KeyOrigin; createdAt: string }> {
  return file.keys.map((k) => ({ kid: k.kid, alg: k.alg, kty: k.kty, origin: file.origin, createdAt: file.createdAt }));
}
