/**
 * The benchmark's dinhdanh configuration, shared by the seeding step (bench/seed.ts) and the server
 * (bench/server.ts), which open the same scratch store and keys folder: production mode, an https
 * issuer behind one trusted proxy hop, operator keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/config.js';
import { SECRETS_FILE, SIGNING_KEYS_FILE, newSecretsFile, newSigningKeysFile, writePrivateJson } from '../../src/keys/key-files.js';
import { BENCH_ISSUER, type BenchPerson, type BenchPortal } from './protocol.js';

/**
 * `metrics`: DINHDANH_METRICS. `on` (the product's default) runs the registry, the usage recorder
 * and the store timing; `off` builds none of them (src/compose.ts), so a run can measure their cost.
 */
export function benchConfig(dir: string, logLevel = 'info', metrics: 'on' | 'off' = 'on'): Config {
  return loadConfig({
    NODE_ENV: 'production',
    // A production config needs an https registry (never contacted by the benchmarks).
    DINHDANH_REGISTRY: 'https://registry.example.gov.vn/verify',
    DINHDANH_REGISTRY_TOKEN: 'bench-registry-token',
    DINHDANH_ISSUER: BENCH_ISSUER,
    DINHDANH_TRUST_PROXY_HOPS: '1',
    DINHDANH_KEYS_DIR: path.join(dir, 'keys'),
    DINHDANH_STORE: `sqlite:${path.join(dir, 'data', 'dinhdanh.db')}`,
    DINHDANH_OUTBOX_DIR: path.join(dir, 'outbox'),
    DINHDANH_OPERATOR: 'bench',
    LOG_LEVEL: logLevel,
    DINHDANH_METRICS: metrics,
    HOST: '127.0.0.1',
    PORT: '0',
    // The operators' listener (the console, /metrics) on a free loopback port, as PORT is.
    DINHDANH_ADMIN_PORT: '0',
  }, dir);
}

/** Operator (not development) signing keys and secrets, as `dinhdanh keys generate` writes them. */
export async function writeOperatorKeys(dir: string): Promise<void> {
  const keysDir = path.join(dir, 'keys');
  writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
  writePrivateJson(path.join(keysDir, SECRETS_FILE), newSecretsFile('operator'));
}

/** What the seeding step registered; kept (owner-readable) in the scratch folder for the server. */
export interface Seed {
  portal: BenchPortal;
  persons: (BenchPerson & { id: string })[];
}

export const seedFile = (dir: string) => path.join(dir, 'seed.json');

export function readSeed(dir: string): Seed {
  return JSON.parse(fs.readFileSync(seedFile(dir), 'utf8')) as Seed;
}
