import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  KeyMaterialError, SECRETS_FILE, SIGNING_KEYS_FILE, loadKeyMaterial, newSecretsFile, newSigningKeysFile, readSecrets, writePrivateJson,
} from './key-files.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-keys-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('key material', () => {
  it('generates development keys on first load, owner-readable only, and reuses them after', async () => {
    const first = await loadKeyMaterial({ keysDir: dir, production: false });
    expect(first.generated.sort()).toEqual([path.join(dir, SECRETS_FILE), path.join(dir, SIGNING_KEYS_FILE)].sort());
    expect(first.jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    for (const f of [SIGNING_KEYS_FILE, SECRETS_FILE]) {
      expect(fs.statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    }
    const second = await loadKeyMaterial({ keysDir: dir, production: false });
    expect(second.generated).toEqual([]);
    expect(second.jwks.keys.map((k) => k.kid)).toEqual(first.jwks.keys.map((k) => k.kid));
    expect(second.pairwiseSalt).toBe(first.pairwiseSalt);
  });

  it('in production refuses missing keys, naming the file and the command to run', async () => {
    await expect(loadKeyMaterial({ keysDir: dir, production: true })).rejects.toThrow(/signing-keys\.json.*keys generate/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('in production refuses development signing keys', async () => {
    await loadKeyMaterial({ keysDir: dir, production: false });
    await expect(loadKeyMaterial({ keysDir: dir, production: true })).rejects.toThrow(/development signing keys/);
  });

  it('in production refuses a missing secrets file (cookie secrets)', async () => {
    writePrivateJson(path.join(dir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
    await expect(loadKeyMaterial({ keysDir: dir, production: true })).rejects.toThrow(/no cookie secrets/);
  });

  it('in production refuses development cookie secrets and accepts operator material', async () => {
    writePrivateJson(path.join(dir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
    writePrivateJson(path.join(dir, SECRETS_FILE), newSecretsFile('development'));
    await expect(loadKeyMaterial({ keysDir: dir, production: true })).rejects.toThrow(/development cookie secrets/);
    writePrivateJson(path.join(dir, SECRETS_FILE), newSecretsFile('operator'), true);
    const km = await loadKeyMaterial({ keysDir: dir, production: true });
    expect(km.signingOrigin).toBe('operator');
  });

  it('refuses a corrupt or incomplete key file with a clear error', async () => {
    fs.writeFileSync(path.join(dir, SIGNING_KEYS_FILE), '{"origin":"operator"');
    await expect(loadKeyMaterial({ keysDir: dir, production: false })).rejects.toThrow(KeyMaterialError);
    fs.writeFileSync(path.join(dir, SIGNING_KEYS_FILE), JSON.stringify({ origin: 'operator', createdAt: 'x', keys: [] }));
    await expect(loadKeyMaterial({ keysDir: dir, production: false })).rejects.toThrow(/not a valid dinhdanh key file/);
  });

  it('new secrets keep the pairwise salt and the old keys (after the new ones)', () => {
    const old = newSecretsFile('development');
    const next = newSecretsFile('operator', old);
    expect(next.pairwiseSalt).toBe(old.pairwiseSalt);
    expect(next.cookieKeys.slice(1)).toEqual(old.cookieKeys);
    expect(next.dataKeys.slice(1)).toEqual(old.dataKeys);
    expect(next.cookieKeys[0]).not.toBe(old.cookieKeys[0]);
  });

  it('never overwrites a key file by accident', () => {
    const file = path.join(dir, SECRETS_FILE);
    writePrivateJson(file, newSecretsFile('operator'));
    const before = readSecrets(dir);
    expect(() => writePrivateJson(file, newSecretsFile('operator'))).toThrow();
    expect(readSecrets(dir)).toEqual(before);
  });
});
