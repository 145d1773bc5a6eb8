/**
 * The `dinhdanh` command. Every command takes `--json` and then prints exactly one JSON object on
 * stdout; bad input exits 2 with a message that says what to fix; failures exit 1. The CLI opens
 * the same store as the server, so it works while the server runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import os from 'node:os';
import { ConfigError, loadConfig, parseOperator, type Config } from '../config/config.js';
import { composeServices } from '../services.js';
import { AccountAdminError, AccountInputError, maskPid } from '../accounts/index.js';
import { verifyAuditLog } from '../audit/index.js';
import { StoreCopyError, copyStore, createStore } from '../store/index.js';
import { PortalValidationError, summarise, validatePortalInput, validateResourceInput } from '../portals/index.js';
import { OrgInputError } from '../orgs/index.js';
import {
  KeyMaterialError, SECRETS_FILE, SIGNING_KEYS_FILE, describeSigningKeys, newSecretsFile, newSigningKeysFile,
  readSecrets, readSigningKeys, writePrivateJson,
} from '../keys/key-files.js';
import pino from 'pino';
import { KeyRingError, createSigningKeys, parseDuration, type KeyView } from '../keys/signing-keys.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readStdin: () => Promise<string>;
}

/** `audit verify` found a broken chain: exit 1 (its message is already printed). */
class VerifyFailed extends Error {}

/** Bad input: exit 2 with a message saying what to fix. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

interface Output {
  json: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const ACCOUNT_LIST_MAX = 1000;

export function buildProgram(io: CliIo): { program: Command; run: (argv: string[]) => Promise<number> } {
  const program = new Command('dinhdanh')
    .description('dinhdanh — national electronic identification and authentication provider')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();

  const config = (): Config => loadConfig(io.env, io.cwd);
  /** `--operator <name>`, taken from anywhere on the command line by run(). */
  let cliOperator: string | undefined;
  /**
   * Who is acting, for the audit log (issue 6): `--operator` or DINHDANH_OPERATOR; required in
   * production, the local user name otherwise.
   */
  const operatorFor = (cfg: Config): string => {
    const named = cliOperator !== undefined ? parseOperator(cliOperator) : cfg.operator;
    if (named) return named;
    if (cfg.env === 'production') throw new UsageError('name the operator: --operator <name> or DINHDANH_OPERATOR (required in production, recorded in the audit log)');
    return parseOperator(os.userInfo().username.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 64).padEnd(2, '_')) ?? 'local';
  };
  // The CLI logs security events at warn and above only; its output is the JSON it prints.
  const services = async () => {
    const s = await composeServices(config(), { logger: pino({ level: 'warn' }, pino.destination(2)) });
    // Closing the store first waits for the audit entries this command recorded.
    const close = s.store.close.bind(s.store);
    return { ...s, store: { ...s.store, close: async () => { await s.audit.flush(); await close(); } } };
  };

  const print = (out: Output, value: Record<string, unknown>, human: () => string) => {
    io.stdout(out.json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
  };

  program.command('serve').description('serve the provider (same as npm start)').option('--json', 'accepted for uniformity; logs are JSON already')
    .action(async () => {
      const { serve } = await import('../main.js');
      await serve();
      await new Promise(() => {}); // serve until a signal ends the process
    });

  const keys = program.command('keys').description('signing keys and secrets in the keys folder');
  keys.command('generate')
    .description('generate production signing keys (RS256, ES256) and secrets; --force replaces existing ones')
    .option('--force', 'replace existing files (old signing keys stay published for verification; the pairwise salt is kept)')
    .option('--json', 'print JSON')
    .action(async (opts: { force?: boolean; json?: boolean }) => {
      const cfg = config();
      const signingPath = path.join(cfg.keysDir, SIGNING_KEYS_FILE);
      const secretsPath = path.join(cfg.keysDir, SECRETS_FILE);
      const oldSigning = readSigningKeys(cfg.keysDir);
      const oldSecrets = readSecrets(cfg.keysDir);
      if ((oldSigning?.origin === 'operator' || oldSecrets?.origin === 'operator') && !opts.force) {
        throw new UsageError(`production keys already exist in ${cfg.keysDir}; pass --force to replace them`);
      }
      const signing = await newSigningKeysFile('operator');
      // Operator keys replaced by --force stay published (after the new ones) so tokens they signed
      // still verify. Development material is never carried into production keys, except the
      // pairwise salt: dropping it would change every portal's subject identifiers.
      if (oldSigning?.origin === 'operator') {
        signing.keys.push(...oldSigning.keys.filter((k) => !signing.keys.some((n) => n.kid === k.kid)));
      }
      const secrets = newSecretsFile('operator', oldSecrets?.origin === 'operator' ? oldSecrets : undefined);
      if (oldSecrets && oldSecrets.origin !== 'operator') {
        // Old data keys only open what they sealed (portal secrets registered so far); the new key
        // seals from now on. Development cookie keys are dropped: they must not verify anything.
        secrets.pairwiseSalt = oldSecrets.pairwiseSalt;
        secrets.dataKeys.push(...oldSecrets.dataKeys);
        io.stderr('dinhdanh: development cookie keys were discarded; the pairwise salt and the data keys that opened existing secrets were kept\n');
      }
      writePrivateJson(signingPath, signing, true);
      writePrivateJson(secretsPath, secrets, true);
      const listed = describeSigningKeys(signing);
      print({ json: !!opts.json }, { keys_dir: cfg.keysDir, keys: listed }, () =>
        `generated production keys in ${cfg.keysDir}:\n${listed.map((k) => `  ${k.kid}  ${k.alg}`).join('\n')}`);
    });
  /** The store's signing keys, seeded from the keys folder on first use (as the server does). */
  const withSigningKeys = async <T>(fn: (ring: ReturnType<typeof createSigningKeys>, s: Awaited<ReturnType<typeof services>>) => Promise<T>): Promise<T> => {
    const s = await services();
    try {
      const ring = createSigningKeys({ repo: s.store.signingKeys, box: s.keyEncryptionBox, logger: pino({ level: 'warn' }, pino.destination(2)) });
      await ring.bootstrap(s.keys.jwks.keys, s.keys.signingOrigin);
      return await fn(ring, s);
    } catch (err) {
      if (err instanceof KeyRingError) throw new UsageError(err.message);
      throw err;
    } finally {
      await s.store.close();
    }
  };
  const keyLine = (k: KeyView) => `${k.kid}  ${k.alg}  ${k.state.padEnd(8)}  ${k.origin}  activates ${k.activate_at}${k.retire_after ? `  retire after ${k.retire_after}` : ''}${k.retired_at ? `  retired ${k.retired_at}` : ''}`;
  keys.command('list')
    .description('the signing keys in the store: state (next, active, retiring, retired) and dates; public information only')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const listed = await withSigningKeys((ring) => ring.describe());
      print({ json: !!opts.json }, { keys: listed }, () => listed.map(keyLine).join('\n'));
    });
  keys.command('rotate')
    .description('add the next RS256 and ES256 keys: published now, signing after --activate-after (default 1h); running servers pick it up within a minute')
    .option('--activate-after <duration>', 'delay before the new keys sign: 0, 90s, 15m, 1h, 2d', '1h')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .option('--json', 'print JSON')
    .action(async (opts: { activateAfter: string; reason?: string; json?: boolean }) => {
      const cfg = config();
      const operator = operatorFor(cfg);
      let delay: number;
      try {
        delay = parseDuration(opts.activateAfter);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const listed = await withSigningKeys(async (ring, s) => {
        const added = await ring.rotate(delay, cfg.env === 'production' ? 'operator' : 'development');
        s.audit.record('KEYS_ROTATED', { kids: added.map((k) => k.kid), activate_at: new Date(added[0]!.activateAt).toISOString(), operator, reason: opts.reason ?? null });
        await s.audit.flush();
        return (await ring.describe()).filter((k) => added.some((a) => a.kid === k.kid));
      });
      print({ json: !!opts.json }, { keys: listed }, () => listed.map(keyLine).join('\n'));
    });
  keys.command('retire')
    .description('stop publishing a key (never the active one): do it once its retire-after date has passed')
    .argument('<kid>', 'the key id')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .option('--json', 'print JSON')
    .action(async (kid: string, opts: { reason?: string; json?: boolean }) => {
      const operator = operatorFor(config());
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(kid)) throw new UsageError('<kid> is not a key id');
      const retired = await withSigningKeys(async (ring, s) => {
        const before = (await ring.describe()).find((k) => k.kid === kid);
        const record = await ring.retire(kid);
        s.audit.record('KEY_RETIRED', { kid, alg: record.alg, was: before?.state ?? null, operator, reason: opts.reason ?? null });
        await s.audit.flush();
        return { alg: record.alg, was: before?.state ?? 'unknown' };
      });
      print({ json: !!opts.json }, { kid, alg: retired.alg, retired: true }, () => `retired ${kid} (${retired.alg}, was ${retired.was})`);
    });

  const portals = program.command('portals').description('relying parties (portals)');
  portals.command('add')
    .description('register a portal; prints its client_id and client_secret (shown once)')
    .requiredOption('--name <text>', 'the name citizens see on the consent page')
    .option('--redirect-uri <url>', 'an exact redirect URI (repeatable)', collect, [])
    .option('--post-logout-redirect-uri <url>', 'an exact post-logout redirect URI (repeatable)', collect, [])
    .option('--backchannel-logout-uri <url>', 'back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0)')
    .addOption(new Option('--grant-type <type>', 'authorization_code (always), refresh_token, client_credentials (repeatable)').argParser(collect).default([]))
    .option('--public', 'a public client (not supported: every portal authenticates)')
    .option('--national-id', 'approve the portal to receive the national identification number')
    .option('--offline-access', 'approve offline_access: refresh tokens that outlive the session (30 days at most); needs --grant-type refresh_token')
    .option('--legal-basis <text>', 'the legal basis for --national-id (required with it)')
    .option('--sector <host>', 'pairwise subject sector (default: the redirect URIs\' host)')
    .option('--auth-method <method>', 'client_secret_basic (default) or private_key_jwt')
    .option('--jwks-uri <url>', 'private_key_jwt: where the portal publishes its public keys')
    .option('--jwks-file <file>', 'private_key_jwt: a file with the portal\'s public keys (JWKS JSON)')
    .option('--fapi', 'FAPI 2.0: PAR, PKCE, private_key_jwt and DPoP-bound tokens required')
    .option('--signing-alg <alg>', 'ID token signing algorithm: RS256 (default) or ES256 (FAPI: ES256)')
    .option('--json', 'print JSON')
    .action(async (opts: {
      name: string; redirectUri: string[]; postLogoutRedirectUri: string[]; backchannelLogoutUri?: string; grantType: string[];
      public?: boolean; nationalId?: boolean; offlineAccess?: boolean; legalBasis?: string; sector?: string; authMethod?: string;
      jwksUri?: string; jwksFile?: string; fapi?: boolean; signingAlg?: string; json?: boolean;
    }) => {
      const cfg = config();
      let jwks: unknown;
      if (opts.jwksFile !== undefined) {
        let text: string;
        try {
          const file = path.resolve(io.cwd, opts.jwksFile);
          if (fs.statSync(file).size > 64 * 1024) throw new UsageError('--jwks-file is larger than 64 kB: a portal\'s key set is a few keys');
          text = fs.readFileSync(file, 'utf8');
        } catch (err) {
          if (err instanceof UsageError) throw err;
          throw new UsageError(`--jwks-file ${opts.jwksFile} cannot be read`);
        }
        try {
          jwks = JSON.parse(text);
        } catch {
          throw new UsageError(`--jwks-file ${opts.jwksFile} is not JSON`);
        }
      }
      let input;
      try {
        input = validatePortalInput({
          name: opts.name,
          redirectUris: opts.redirectUri,
          postLogoutRedirectUris: opts.postLogoutRedirectUri,
          backchannelLogoutUri: opts.backchannelLogoutUri,
          grantTypes: opts.grantType,
          public: !!opts.public,
          nationalId: !!opts.nationalId,
          legalBasis: opts.legalBasis,
          sector: opts.sector,
          authMethod: opts.authMethod,
          jwksUri: opts.jwksUri,
          jwks,
          fapi: !!opts.fapi,
          offlineAccess: !!opts.offlineAccess,
          signingAlg: opts.signingAlg,
        }, { production: cfg.env === 'production' });
      } catch (err) {
        if (err instanceof PortalValidationError) throw new UsageError(err.message);
        throw err;
      }
      const s = await services();
      try {
        const reg = await s.portals.register(input);
        s.audit.record('PORTAL_REGISTERED', {
          operator: operatorFor(cfg),
          portal: reg.client_id, national_id: input.nationalId, offline_access: input.offlineAccess, fapi: input.fapi, auth_method: input.authMethod,
        });
        print({ json: !!opts.json }, { client_id: reg.client_id, client_secret: reg.client_secret }, () =>
          reg.client_secret
            ? `registered "${input.name}"\nclient_id:     ${reg.client_id}\nclient_secret: ${reg.client_secret}\n(the secret is shown only now; store it in the portal's secret store)`
            : `registered "${input.name}"\nclient_id:     ${reg.client_id}\n(no secret: the portal authenticates with its own keys, private_key_jwt)`);
      } finally {
        await s.store.close();
      }
    });
  portals.command('list')
    .description('list registered portals')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const s = await services();
      try {
        const list = await s.portals.list();
        print({ json: !!opts.json }, { portals: list }, () =>
          list.length ? list.map((p) => `${p.client_id}  ${p.disabled ? '[disabled] ' : ''}${p.name}  ${p.redirect_uris.join(' ')}`).join('\n') : 'no portals registered');
      } finally {
        await s.store.close();
      }
    });

  const portalById = async (s: Awaited<ReturnType<typeof services>>, clientId: string) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(clientId)) throw new UsageError('<client_id> is not a portal client id');
    const portal = await s.portals.find(clientId);
    if (!portal) throw new UsageError(`no portal with client_id ${clientId}`);
    return portal;
  };
  portals.command('show')
    .description('show one portal (never its secret)')
    .argument('<client_id>', 'the portal\'s client_id')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: { json?: boolean }) => {
      const s = await services();
      try {
        const portal = await portalById(s, clientId);
        const summary = { ...summarise(portal), national_id_basis: portal.nationalIdBasis };
        print({ json: !!opts.json }, { portal: summary }, () => Object.entries(summary).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : String(v)}`).join('\n'));
      } finally {
        await s.store.close();
      }
    });
  portals.command('approve')
    .description('approve what a portal may receive, recording the legal basis: national_id, or offline_access (30-day refresh tokens)')
    .argument('<client_id>', 'the portal\'s client_id')
    .option('--national-id', 'the 12-digit identification number (scope national_id)')
    .option('--offline-access', 'refresh tokens that outlive the session (scope offline_access)')
    .requiredOption('--legal-basis <text>', 'the legal instrument that allows it')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: { nationalId?: boolean; offlineAccess?: boolean; legalBasis: string; json?: boolean }) => {
      if (!!opts.nationalId === !!opts.offlineAccess) throw new UsageError('give exactly one of --national-id or --offline-access');
      const what = opts.nationalId ? 'national_id' : 'offline_access';
      const operator = operatorFor(config());
      const s = await services();
      try {
        await portalById(s, clientId);
        const portal = await s.portals.approve(clientId, what, opts.legalBasis);
        s.audit.record('PORTAL_APPROVED', { portal: clientId, scope: what, legal_basis: opts.legalBasis.trim().slice(0, 500), operator });
        const summary = summarise(portal);
        print({ json: !!opts.json }, { client_id: clientId, approved: what, national_id: summary.national_id, offline_access: summary.offline_access }, () => `${clientId} may now receive ${what}`);
      } catch (err) {
        if (err instanceof PortalValidationError) throw new UsageError(err.message);
        throw err;
      } finally {
        await s.store.close();
      }
    });
  portals.command('disable')
    .description('disable a portal: no new sign-ins, its tokens stop working (userinfo, introspection, refresh)')
    .argument('<client_id>', 'the portal\'s client_id')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: { json?: boolean }) => {
      const s = await services();
      try {
        await portalById(s, clientId);
        await s.store.portals.setDisabled(clientId, true);
        s.audit.record('PORTAL_DISABLED', { portal: clientId, operator: operatorFor(config()) });
        print({ json: !!opts.json }, { client_id: clientId, disabled: true }, () => `disabled ${clientId}`);
      } finally {
        await s.store.close();
      }
    });

  const resources = program.command('resources').description('resource servers: APIs that accept dinhdanh access tokens (RFC 8707, RFC 9068)');
  resources.command('add')
    .description('register an API; prints the client_id and client_secret it introspects with (shown once)')
    .requiredOption('--name <text>', 'the name citizens see on the consent page')
    .requiredOption('--uri <uri>', 'the resource indicator portals send as `resource` (https, no query or fragment)')
    .option('--scope <scope>', 'a scope of the API (repeatable, at least one)', collect, [])
    .option('--client-credentials-portal <client_id>', 'a portal that may call the API as itself (client credentials; repeatable)', collect, [])
    .option('--signing-alg <alg>', 'access token signing algorithm: RS256 (default) or ES256')
    .option('--token-format <format>', 'jwt (default; the API verifies tokens itself) or opaque (the API introspects every token)')
    .option('--json', 'print JSON')
    .action(async (opts: { name: string; uri: string; scope: string[]; clientCredentialsPortal: string[]; signingAlg?: string; tokenFormat?: string; json?: boolean }) => {
      const cfg = config();
      let input;
      try {
        input = validateResourceInput({
          name: opts.name, uri: opts.uri, scopes: opts.scope, clientCredentialsPortals: opts.clientCredentialsPortal, signingAlg: opts.signingAlg,
          tokenFormat: opts.tokenFormat,
        }, { production: cfg.env === 'production' });
      } catch (err) {
        if (err instanceof PortalValidationError) throw new UsageError(err.message);
        throw err;
      }
      const s = await services();
      try {
        if (await s.portals.findResource(input.uri)) throw new UsageError(`a resource server with --uri ${input.uri} is already registered`);
        for (const clientId of input.clientCredentialsPortals) {
          const portal = await s.portals.find(clientId);
          if (!portal) throw new UsageError(`--client-credentials-portal ${clientId}: no such portal`);
          if (!(portal.metadata.grant_types as string[] | undefined)?.includes('client_credentials')) {
            throw new UsageError(`--client-credentials-portal ${clientId}: the portal is not registered with --grant-type client_credentials`);
          }
        }
        const reg = await s.portals.registerResource(input);
        s.audit.record('RESOURCE_SERVER_REGISTERED', { resource_server: reg.client_id, resource: input.uri, scopes: input.scopes, operator: operatorFor(cfg) });
        print({ json: !!opts.json }, { resource: reg.resource, client_id: reg.client_id, client_secret: reg.client_secret }, () =>
          `registered "${input.name}" (${reg.resource})\nclient_id:     ${reg.client_id}\nclient_secret: ${reg.client_secret}\n(for token introspection; the secret is shown only now)`);
      } finally {
        await s.store.close();
      }
    });
  resources.command('list')
    .description('list resource servers')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const s = await services();
      try {
        const list = (await s.portals.list()).filter((p) => p.kind === 'resource_server');
        print({ json: !!opts.json }, { resources: list }, () =>
          list.length ? list.map((p) => `${p.client_id}  ${p.disabled ? '[disabled] ' : ''}${p.resource}  ${p.name}  ${(p.scopes ?? []).join(' ')}`).join('\n') : 'no resource servers registered');
      } finally {
        await s.store.close();
      }
    });

  const orgs = program.command('orgs').description('enterprises, their legal representatives and delegated staff');
  /** Runs an org action; bad input (OrgInputError) exits 2 with its message. */
  const orgAction = async <T>(fn: (s: Awaited<ReturnType<typeof services>>) => Promise<T>): Promise<T> => {
    const s = await services();
    try {
      return await fn(s);
    } catch (err) {
      if (err instanceof OrgInputError) throw new UsageError(err.message);
      throw err;
    } finally {
      await s.store.close();
    }
  };
  const asOperator = () => ({ operator: operatorFor(config()) });
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  orgs.command('add')
    .description('register an enterprise (or a branch, NNNNNNNNNN-NNN) and its legal representatives')
    .requiredOption('--code <code>', 'enterprise code: 10 digits, or 10 digits-3 digits for a branch')
    .requiredOption('--name <text>', 'registered name')
    .option('--representative <pid>', 'a legal representative\'s identification number (repeatable; required for an enterprise)', collect, [])
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; name: string; representative: string[]; json?: boolean }) => {
      const e = await orgAction((s) => s.orgs.register({ code: opts.code, name: opts.name, representatives: opts.representative }, asOperator()));
      print({ json: !!opts.json }, { code: e.code, name: e.name, status: e.status, parent_code: e.parentCode }, () => `registered ${e.code} "${e.name}"`);
    });
  orgs.command('list')
    .description('list enterprises')
    .option('--limit <n>', 'at most n (1–1000)', '100')
    .option('--offset <n>', 'skip the first n', '0')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; offset: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > 1000) throw new UsageError('--limit must be a whole number from 1 to 1000');
      if (!/^\d+$/.test(opts.offset)) throw new UsageError('--offset must be a whole number');
      const list = await orgAction((s) => s.orgs.list({ limit: Number(opts.limit), offset: Number(opts.offset) }));
      const rows = list.map((e) => ({ code: e.code, name: e.name, status: e.status, parent_code: e.parentCode }));
      print({ json: !!opts.json }, { enterprises: rows }, () => (rows.length ? rows.map((r) => `${r.code}  ${r.status}  ${r.name}`).join('\n') : 'no enterprises'));
    });
  orgs.command('show')
    .description('an enterprise, its branches, legal representatives and delegations (identification numbers masked)')
    .argument('<code>', 'enterprise code')
    .option('--json', 'print JSON')
    .action(async (code: string, opts: { json?: boolean }) => {
      const shown = await orgAction((s) => s.orgs.show(code));
      const out = {
        code: shown.enterprise.code, name: shown.enterprise.name, status: shown.enterprise.status, parent_code: shown.enterprise.parentCode,
        branches: shown.branches.map((b) => ({ code: b.code, name: b.name, status: b.status })),
        representatives: shown.representatives.map((r) => ({ pid: maskPid(r.pid), name: r.name })),
        delegations: shown.delegations.map((d) => ({
          pid: d.pid ? maskPid(d.pid) : null, name: d.name, role: d.role, until: iso(d.until), portals: d.portals, granted_by: d.grantedBy,
          since: iso(d.createdAt), revoked_at: iso(d.revokedAt),
        })),
      };
      print({ json: !!opts.json }, { enterprise: out }, () => [
        `${out.code}  ${out.status}  ${out.name}${out.parent_code ? `  (branch of ${out.parent_code})` : ''}`,
        ...out.branches.map((b) => `  branch ${b.code}  ${b.status}  ${b.name}`),
        ...out.representatives.map((r) => `  legal representative ${r.pid}  ${r.name}`),
        ...out.delegations.map((d) => `  ${d.revoked_at ? '[revoked] ' : ''}${d.role}  ${d.pid}  ${d.name ?? ''}${d.until ? `  until ${d.until}` : ''}${d.portals ? `  at ${d.portals.join(',')}` : ''}`),
      ].join('\n'));
    });
  for (const [name, status, what] of [['suspend', 'suspended', 'suspend an enterprise: nobody acts for it (or its branches); tokens issued for it stop working'],
    ['reactivate', 'active', 'reactivate a suspended enterprise'], ['dissolve', 'dissolved', 'mark an enterprise dissolved (final)']] as const) {
    orgs.command(name)
      .description(what)
      .argument('<code>', 'enterprise code')
      .option('--reason <text>', 'why (recorded in the audit log)')
      .option('--json', 'print JSON')
      .action(async (code: string, opts: { reason?: string; json?: boolean }) => {
        const e = await orgAction((s) => s.orgs.setStatus(code, status, asOperator(), opts.reason?.slice(0, 500)));
        print({ json: !!opts.json }, { code: e.code, status: e.status }, () => `${e.code} is now ${e.status}`);
      });
  }
  orgs.command('delegate')
    .description('let a person act for an enterprise in a role (replaces an earlier delegation of that person)')
    .requiredOption('--code <code>', 'enterprise code')
    .requiredOption('--pid <pid>', 'the person\'s identification number')
    .requiredOption('--role <role>', 'a short role code such as ke-toan')
    .option('--until <date>', 'last day it holds (YYYY-MM-DD, Vietnam time)')
    .option('--portal <client_id>', 'only at this portal (repeatable; default every portal)', collect, [])
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; pid: string; role: string; until?: string; portal: string[]; json?: boolean }) => {
      const d = await orgAction((s) => s.orgs.delegate({ code: opts.code, pid: opts.pid, role: opts.role, until: opts.until, portals: opts.portal }, asOperator()));
      print({ json: !!opts.json }, { code: d.enterpriseCode, pid: maskPid(opts.pid), role: d.role, until: iso(d.until), portals: d.portals }, () =>
        `${maskPid(opts.pid)} may act for ${d.enterpriseCode} as ${d.role}${d.until ? ` until ${iso(d.until)}` : ''}`);
    });
  orgs.command('revoke')
    .description('end a person\'s delegation: tokens issued under it stop working, portals are told')
    .requiredOption('--code <code>', 'enterprise code')
    .requiredOption('--pid <pid>', 'the person\'s identification number')
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; pid: string; json?: boolean }) => {
      const revoked = await orgAction((s) => s.orgs.revoke(opts.code, opts.pid, asOperator()));
      if (!revoked) throw new UsageError(`no delegation in force for ${maskPid(opts.pid)} at ${opts.code}`);
      print({ json: !!opts.json }, { code: opts.code, pid: maskPid(opts.pid), revoked: true }, () => `revoked ${maskPid(opts.pid)} at ${opts.code}`);
    });

  const storeCmd = program.command('store').description('the store: schema migrations, copying between backends');
  storeCmd.command('migrate')
    .description('create or upgrade the schema (collections, tables, indexes) of DINHDANH_STORE; the server never does it at request time')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const cfg = config();
      let store;
      try {
        store = await createStore(cfg.storeUrl);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      await store.close();
      print({ json: !!opts.json }, { store: store.kind, migrated: true }, () => `the ${store.kind} store is migrated`);
    });
  storeCmd.command('copy')
    .description('copy every record from one store into another, empty one, and verify each collection by count and checksum')
    .requiredOption('--from <url>', 'source store URL (sqlite:<path>, mongodb://…)')
    .requiredOption('--to <url>', 'target store URL')
    .option('--json', 'print JSON')
    .action(async (opts: { from: string; to: string; json?: boolean }) => {
      operatorFor(config());
      if (opts.from === opts.to) throw new UsageError('--from and --to name the same store');
      const open = async (label: string, url: string) => {
        try {
          return await createStore(url);
        } catch (err) {
          throw new UsageError(`${label}: ${(err as Error).message}`);
        }
      };
      const from = await open('--from', opts.from);
      try {
        const to = await open('--to', opts.to);
        try {
          let results;
          try {
            results = await copyStore(from, to);
          } catch (err) {
            if (err instanceof StoreCopyError) throw new UsageError(err.message);
            throw err;
          }
          const ok = results.every((r) => r.verified);
          if (!ok) {
            const bad = results.filter((r) => !r.verified).map((r) => r.collection).join(', ');
            io.stderr(`dinhdanh: the copy differs from the source in: ${bad}\n`);
          }
          print({ json: !!opts.json }, { from: from.kind, to: to.kind, verified: ok, collections: results }, () =>
            [...results.map((r) => `${r.verified ? 'ok  ' : 'DIFF'}  ${r.collection.padEnd(16)} ${String(r.count).padStart(8)}  ${r.checksum.slice(0, 16)}`),
              ok ? `copied and verified: ${from.kind} → ${to.kind}` : 'the copy is NOT verified'].join('\n'));
          if (!ok) throw new VerifyFailed();
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
    });

  const accounts = program.command('accounts').description('persons (citizens)');
  accounts.command('add')
    .description('register a person; the password is read from standard input')
    .requiredOption('--pid <12 digits>', 'personal identification number')
    .requiredOption('--name <full name>', 'full name, family name first')
    .requiredOption('--birthdate <YYYY-MM-DD>', 'date of birth')
    .addOption(new Option('--gender <gender>', 'male or female').makeOptionMandatory())
    .option('--email <address>', 'e-mail address')
    .option('--phone <number>', 'phone number (0912345678 or +84912345678)')
    .option('--level <1|2>', 'identity level', '1')
    .option('--password-stdin', 'read the password from standard input (required)')
    .option('--json', 'print JSON')
    .action(async (opts: { pid: string; name: string; birthdate: string; gender: string; email?: string; phone?: string; level: string; passwordStdin?: boolean; json?: boolean }) => {
      if (!opts.passwordStdin) {
        throw new UsageError('pass --password-stdin and pipe the password on standard input (passwords are never taken as arguments: they would land in shell history and process lists)');
      }
      const raw = await io.readStdin();
      const password = raw.replace(/\r?\n$/, '');
      if (!password) throw new UsageError('no password on standard input');
      const operator = operatorFor(config());
      const s = await services();
      try {
        const person = await s.accounts.create({
          pid: opts.pid, name: opts.name, birthdate: opts.birthdate, gender: opts.gender,
          email: opts.email, phone: opts.phone, level: opts.level, password,
        }, { operator });
        print({ json: !!opts.json }, { id: person.id }, () => `registered ${maskPid(person.pid)} as ${person.id}`);
      } catch (err) {
        if (err instanceof AccountInputError) throw new UsageError(err.message);
        throw err;
      } finally {
        await s.store.close();
      }
    });
  accounts.command('list')
    .description('list persons (identification numbers masked)')
    .option('--limit <n>', `at most n persons (1–${ACCOUNT_LIST_MAX})`, '100')
    .option('--offset <n>', 'skip the first n persons', '0')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; offset: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > ACCOUNT_LIST_MAX) {
        throw new UsageError(`--limit must be a whole number from 1 to ${ACCOUNT_LIST_MAX}`);
      }
      if (!/^\d+$/.test(opts.offset)) throw new UsageError('--offset must be a whole number');
      const s = await services();
      try {
        const list = await s.accounts.list({ limit: Number(opts.limit), offset: Number(opts.offset) });
        const total = await s.store.persons.count();
        const rows = list.map((p) => ({ id: p.id, pid: maskPid(p.pid), name: p.name, level: p.level, status: p.status, created_at: new Date(p.createdAt).toISOString() }));
        print({ json: !!opts.json }, { total, accounts: rows }, () =>
          rows.length ? rows.map((r) => `${r.id}  ${r.pid}  level ${r.level}  ${r.status}  ${r.name}`).join('\n') : 'no accounts');
      } finally {
        await s.store.close();
      }
    });

  /** Runs an account action; bad input exits 2 with its message. */
  const adminAction = async <T>(fn: (s: Awaited<ReturnType<typeof services>>) => Promise<T>): Promise<T> => {
    const s = await services();
    try {
      return await fn(s);
    } catch (err) {
      if (err instanceof AccountAdminError) throw new UsageError(err.message);
      throw err;
    } finally {
      await s.store.close();
    }
  };
  accounts.command('show')
    .description('one person: level, status, second factors, and the operators\' actions with their evidence (numbers masked)')
    .argument('<pid>', 'personal identification number (12 digits)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { json?: boolean }) => {
      const shown = await adminAction((s) => s.accountAdmin.show(pid));
      print({ json: !!opts.json }, { account: shown }, () => [
        `${shown.pid}  ${shown.name}  level ${shown.level}  ${shown.status}  (${shown.id})`,
        ...shown.factors.map((f) => `  factor ${f.type}  ${f.label}  since ${f.created_at}`),
        `  recovery codes left: ${shown.recovery_codes_left}`,
        ...shown.actions.map((a) => `  ${a.at}  ${a.action} by ${a.operator}: ${a.reason}`),
      ].join('\n'));
    });
  accounts.command('lock')
    .description('lock an account: no sign-in, its tokens stop working, every session ends (portals told by back-channel logout)')
    .argument('<pid>', 'personal identification number (12 digits)')
    .requiredOption('--reason <text>', 'why (recorded and audited)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason: string; json?: boolean }) => {
      const operator = operatorFor(config());
      const p = await adminAction((s) => s.accountAdmin.lock(pid, { operator, reason: opts.reason }));
      print({ json: !!opts.json }, { id: p.id, status: 'locked' }, () => `locked ${maskPid(p.pid)} (${p.id}); its sessions end within seconds on a running server`);
    });
  accounts.command('unlock')
    .description('unlock an account (locked by an operator or after too many failed sign-ins) and clear its failure count')
    .argument('<pid>', 'personal identification number (12 digits)')
    .option('--reason <text>', 'why (recorded and audited)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason?: string; json?: boolean }) => {
      const operator = operatorFor(config());
      const p = await adminAction((s) => s.accountAdmin.unlock(pid, { operator, reason: opts.reason }));
      print({ json: !!opts.json }, { id: p.id, status: 'active' }, () => `unlocked ${maskPid(p.pid)} (${p.id})`);
    });
  accounts.command('set-level')
    .description('set the identity level; level 2 needs the in-person verification\'s evidence')
    .argument('<pid>', 'personal identification number (12 digits)')
    .argument('<level>', '1 or 2')
    .requiredOption('--reason <text>', 'why (recorded and audited)')
    .option('--document-type <type>', 'level 2: cccd, cccd-chip, can-cuoc or passport')
    .option('--document-number <number>', 'level 2: the document\'s number (stored; masked in logs)')
    .option('--place <text>', 'level 2: where the person was verified')
    .option('--json', 'print JSON')
    .action(async (pid: string, level: string, opts: { reason: string; documentType?: string; documentNumber?: string; place?: string; json?: boolean }) => {
      const operator = operatorFor(config());
      const p = await adminAction((s) => s.accountAdmin.setLevel(pid, level, { operator, reason: opts.reason }, {
        documentType: opts.documentType, documentNumber: opts.documentNumber, place: opts.place,
      }));
      print({ json: !!opts.json }, { id: p.id, level: p.level }, () => `${maskPid(p.pid)} is now at identity level ${p.level}`);
    });
  accounts.command('reset-mfa')
    .description('remove every second factor and recovery code after re-verifying the person (they set up a new one at the next sign-in that needs it)')
    .argument('<pid>', 'personal identification number (12 digits)')
    .requiredOption('--reason <text>', 'why (recorded and audited)')
    .requiredOption('--evidence <text>', 'how the person was re-verified')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason: string; evidence: string; json?: boolean }) => {
      const operator = operatorFor(config());
      const r = await adminAction((s) => s.accountAdmin.resetMfa(pid, { operator, reason: opts.reason }, opts.evidence));
      print({ json: !!opts.json }, { id: r.person.id, factors_removed: r.removed }, () => `removed ${r.removed} second factor(s) and the recovery codes of ${maskPid(r.person.pid)}`);
    });

  const audit = program.command('audit').description('the tamper-evident audit log');
  audit.command('verify')
    .description('check the whole hash chain; names the first broken entry and exits 1 if any')
    .option('--head <seq:hash>', 'a head logged earlier ("audit log head" lines): it must still be in the chain, unchanged')
    .option('--json', 'print JSON')
    .action(async (opts: { head?: string; json?: boolean }) => {
      let expect: { seq: number; hash: string } | undefined;
      if (opts.head !== undefined) {
        const m = /^(\d{1,12}):([0-9a-f]{64})$/.exec(opts.head);
        if (!m) throw new UsageError('--head must be <seq>:<64 hex characters>, as in the "audit log head" log lines');
        expect = { seq: Number(m[1]), hash: m[2]! };
      }
      const s = await services();
      let result;
      try {
        result = await verifyAuditLog(s.store.audit, expect);
      } finally {
        await s.store.close();
      }
      if (!result.ok) {
        if (opts.json) io.stdout(`${JSON.stringify({ ok: false, broken_at: result.seq, problem: result.problem, verified_before: result.entries })}\n`);
        io.stderr(`dinhdanh: the audit log is broken at entry ${result.seq}: ${result.problem}\n`);
        throw new VerifyFailed();
      }
      print({ json: !!opts.json }, { ok: true, entries: result.entries, head: result.head }, () =>
        `audit log intact: ${result.entries} entries${result.head ? `, head ${result.head.seq}:${result.head.hash}` : ''}`);
    });
  audit.command('export')
    .description('write the audit log as JSON lines (one entry per line, for a SIEM)')
    .option('--since <date>', 'only entries at or after this date (YYYY-MM-DD or an ISO time)')
    .action(async (opts: { since?: string }) => {
      let since = 0;
      if (opts.since !== undefined) {
        since = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(opts.since) ? Date.parse(opts.since) : NaN;
        if (Number.isNaN(since)) throw new UsageError('--since must be a date (YYYY-MM-DD) or an ISO time');
      }
      const s = await services();
      try {
        let after = 0;
        for (;;) {
          const page = await s.store.audit.listSince(since, after, 1000);
          if (page.length === 0) break;
          io.stdout(page.map((e) => JSON.stringify({
            seq: e.seq, at: new Date(e.at).toISOString(), event: e.event, event_id: e.eventId, details: e.details, prev_hash: e.prevHash, hash: e.hash,
          })).join('\n') + '\n');
          after = page[page.length - 1]!.seq;
        }
      } finally {
        await s.store.close();
      }
    });

  async function run(rawArgv: string[]): Promise<number> {
    const json = rawArgv.includes('--json');
    const argv = [...rawArgv];
    const at = argv.indexOf('--operator');
    if (at !== -1) {
      cliOperator = argv[at + 1] ?? '';
      argv.splice(at, 2);
    } else {
      const inline = argv.findIndex((a) => a.startsWith('--operator='));
      if (inline !== -1) cliOperator = argv.splice(inline, 1)[0]!.slice('--operator='.length);
    }
    const fail = (code: number, message: string) => {
      io.stderr(`dinhdanh: ${message}\n`);
      if (json) io.stdout(`${JSON.stringify({ error: message })}\n`);
      return code;
    };
    try {
      await program.parseAsync(argv, { from: 'user' });
      return 0;
    } catch (err) {
      if (err instanceof CommanderError) {
        if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
        // Commander has already printed its message to stderr.
        if (json) io.stdout(`${JSON.stringify({ error: err.message.replace(/^error: /, '') })}\n`);
        return 2;
      }
      if (err instanceof VerifyFailed) return 1;
      if (err instanceof UsageError || err instanceof ConfigError) return fail(2, err.message);
      if (err instanceof KeyMaterialError) return fail(1, err.message);
      return fail(1, (err as Error).message);
    }
  }

  return { program, run };
}
