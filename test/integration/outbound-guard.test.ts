/**
 * In production, URLs a portal registered (its `jwks_uri`, its back-channel logout URI) never reach
 * loopback or private addresses unless the operator allowed those networks (SECURITY.md #29,
 * mistake #10: a custom fetch without the SSRF guard). A production-mode system in process, with
 * operator keys; the "portal" endpoints are local servers that count every connection.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as jose from 'jose';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { composeSystem, type System } from '../../src/compose.js';
import { SECRETS_FILE, SIGNING_KEYS_FILE, newSecretsFile, newSigningKeysFile, writePrivateJson } from '../../src/keys/key-files.js';
import { validatePortalInput } from '../../src/portals/index.js';

const ISSUER = 'https://id.example.gov.vn';
let dir: string;
let system: System;
let server: http.Server;
let base: string;
let target: http.Server;
let targetPort: number;
let connections = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-guard-'));
  const keysDir = path.join(dir, 'keys');
  writePrivateJson(path.join(keysDir, SIGNING_KEYS_FILE), await newSigningKeysFile('operator'));
  writePrivateJson(path.join(keysDir, SECRETS_FILE), newSecretsFile('operator'));
  const config = loadConfig({
    NODE_ENV: 'production', DINHDANH_REGISTRY: 'https://registry.example.gov.vn/verify', DINHDANH_REGISTRY_TOKEN: 'registry-test-token', DINHDANH_ISSUER: ISSUER, DINHDANH_TRUST_PROXY_HOPS: '1', DINHDANH_KEYS_DIR: keysDir,
    DINHDANH_STORE: `sqlite:${path.join(dir, 'db.sqlite')}`, LOG_LEVEL: 'silent',
  }, dir);
  system = await composeSystem(config, { logger: pino({ level: 'silent' }) });
  server = http.createServer(system.app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  target = http.createServer((_req, res) => res.end('{"keys":[]}'));
  target.on('connection', () => { connections += 1; });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetPort = (target.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  target.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => target.close(() => resolve()));
  await system.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the SSRF guard in production', () => {
  it('a jwks_uri on a loopback address is never fetched: the client assertion fails as invalid_client', async () => {
    const { privateKey } = await jose.generateKeyPair('ES256');
    const reg = await system.portals.register(validatePortalInput({
      name: 'Cổng nội bộ', redirectUris: ['https://noibo.example.gov.vn/cb'], grantTypes: ['client_credentials'],
      authMethod: 'private_key_jwt', jwksUri: `https://127.0.0.1:${targetPort}/jwks.json`,
    }, { production: true }));
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new jose.SignJWT({ iss: reg.client_id, sub: reg.client_id, aud: ISSUER, jti: crypto.randomUUID(), iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(privateKey);
    const res = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.gov.vn' },
      body: new URLSearchParams({
        grant_type: 'client_credentials', client_id: reg.client_id,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
      }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
    expect(connections).toBe(0);
  });

  it('a back-channel logout to a loopback address is refused without a connection, and not retried', async () => {
    const reg = await system.portals.register(validatePortalInput({
      name: 'Cổng nội bộ 2', redirectUris: ['https://noibo2.example.gov.vn/cb'], backchannelLogoutUri: `https://127.0.0.1:${targetPort}/logout`,
    }, { production: true }));
    await system.sessions.ended('person-1', [{ clientId: reg.client_id, sid: 'sid-1' }], 'logout');
    await system.jobs.runDue();
    await expect(system.store.jobs.find(`bcl:${reg.client_id}:sid-1`)).resolves.toMatchObject({
      status: 'failed', attempts: 1, lastOutcome: 'refused: destination not allowed',
    });
    expect(connections).toBe(0);
  });
});
