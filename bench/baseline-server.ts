/**
 * The benchmark's baseline: bare oidc-provider 9 with its in-memory adapter, one static client, and
 * a trivial login — the ceiling of this stack. Run by bench/run.ts (`fork`, IPC), never by hand.
 *
 * The same public face as the benchmark's dinhdanh (https issuer behind one trusted proxy hop,
 * served over http on 127.0.0.1), the same signing keys (RS256 + ES256), token lifetimes, PKCE,
 * refresh-token rotation and client authentication (client_secret_basic). What it leaves out is
 * everything dinhdanh adds: a durable store, pairwise subjects, policy checks, our pages, logs.
 *
 * The login page takes any registered identification number and checks the password with
 * argon2id at the product's parameters (the one cost a password sign-in cannot avoid), so the
 * `signin` ratio compares like with like; consent is granted without a page (dinhdanh's remembered
 * consent does the same after the first sign-in).
 *
 * Arguments: --persons <n>
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import crypto from 'node:crypto';
import argon2 from 'argon2';
import Provider, { type Configuration } from 'oidc-provider';
import { ARGON2_PARAMS } from '../src/accounts/password-hasher.js';
import { newSigningKeysFile } from '../src/keys/key-files.js';
import { fatal, guardParent, ready, serveCommands } from './lib/child.js';
import { BENCH_ISSUER, BENCH_PASSWORD, PORTAL_REDIRECT_URI, type BenchPerson, type Command } from './lib/protocol.js';

const { values: args } = parseArgs({ options: { persons: { type: 'string', default: '64' } } });
const started = Date.now();
let server: http.Server | undefined;

async function close(): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server!.close(() => resolve()));
}

function page(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><body>${html}</body></html>`);
}

async function readBody(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function main(): Promise<void> {
  guardParent(close);
  const count = Number(args.persons);
  const persons: BenchPerson[] = Array.from({ length: count }, (_, i) => ({ pid: `001090${String(i + 1).padStart(6, '0')}`, password: BENCH_PASSWORD }));
  const known = new Set(persons.map((p) => p.pid));
  const passwordHash = await argon2.hash(BENCH_PASSWORD.normalize('NFC'), {
    type: argon2.argon2id, memoryCost: ARGON2_PARAMS.memoryCost, timeCost: ARGON2_PARAMS.timeCost, parallelism: ARGON2_PARAMS.parallelism,
  });
  const client = { client_id: 'bench-portal', client_secret: crypto.randomBytes(32).toString('base64url'), redirect_uri: PORTAL_REDIRECT_URI };
  const keys = await newSigningKeysFile('operator');

  const configuration: Configuration = {
    clients: [{
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: [PORTAL_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: keys.keys } as Configuration['jwks'],
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], profile: ['name', 'family_name', 'given_name', 'birthdate', 'gender'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    rotateRefreshToken: true,
    async issueRefreshToken(_ctx, c) {
      return c.grantTypeAllowed('refresh_token');
    },
    ttl: {
      AccessToken: 600, AuthorizationCode: 60, ClientCredentials: 600, IdToken: 600, Interaction: 3600, Session: 43_200, Grant: 43_200,
      RefreshToken: 43_200,
    },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: 'Nguyễn Văn Đo Tải', family_name: 'Nguyễn', given_name: 'Văn Đo Tải', birthdate: '1990-03-15', gender: 'male' };
        },
      };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  };
  const provider = new Provider(BENCH_ISSUER, configuration);
  provider.proxy = true;
  const callback = provider.callback();

  async function interaction(req: http.IncomingMessage, res: http.ServerResponse, uid: string, step: string | undefined): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return page(res, 400, 'wrong interaction');
    if (step === 'login' && req.method === 'POST') {
      const form = await readBody(req);
      const pid = form.get('identifier') ?? '';
      const ok = await argon2.verify(passwordHash, (form.get('password') ?? '').normalize('NFC'));
      if (!ok || !known.has(pid)) return page(res, 200, 'wrong password');
      await provider.interactionFinished(req, res, { login: { accountId: pid } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'login') {
      return page(res, 200, `<form method="post" action="/interaction/${uid}/login"><input name="identifier"><input type="password" name="password"><button>OK</button></form>`);
    }
    if (details.prompt.name === 'consent') {
      const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      const grant = details.grantId
        ? (await provider.Grant.find(details.grantId))!
        : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
      if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    page(res, 400, `unexpected prompt ${details.prompt.name}`);
  }

  const srv = http.createServer((req, res) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?(?:\?|$)/.exec(req.url ?? '');
    if (!m) {
      void callback(req, res);
      return;
    }
    interaction(req, res, m[1]!, m[2]).catch((err: unknown) => {
      if (!res.headersSent) page(res, 500, (err as Error).message);
      else res.destroy();
    });
  });
  srv.headersTimeout = 20_000;
  srv.requestTimeout = 30_000;
  server = srv;
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));

  serveCommands(async (command: Command) => {
    if (command.cmd === 'sessions') {
      // The in-memory adapter is an LRU of 1,000 entries: it cannot hold 10,000 sessions.
      return { unsupported: true };
    }
    return undefined;
  });
  ready({ port: (srv.address() as AddressInfo).port, portal: client, persons, setupMs: Date.now() - started });
}

main().catch(fatal);
