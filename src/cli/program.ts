/**
 * The `dinhdanh` command. Every command takes `--json` and then prints exactly one JSON object on
 * stdout; bad input exits 2 with a message that says what to fix; failures exit 1. The CLI opens
 * the same store as the server, so it works while the server runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { composeServices } from '../services.js';
import { AccountInputError, maskPid } from '../accounts/index.js';
import { PortalValidationError, summarise, validatePortalInput, validateResourceInput } from '../portals/index.js';
import { OrgInputError } from '../orgs/index.js';
import {
  KeyMaterialError, SECRETS_FILE, SIGNING_KEYS_FILE, describeSigningKeys, newSecretsFile, newSigningKeysFile,
  readSecrets, readSigningKeys, writePrivateJson,
} from '../keys/key-files.js';
import pino from 'pino';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readStdin: () => Promise<string>;
}

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
  // The CLI logs security events at warn and above only; its output is the JSON it prints.
  const services = async () => composeServices(config(), { logger: pino({ level: 'warn' }, pino.destination(2)) });

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
  keys.command('list')
    .description('list the signing keys (public information only)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const cfg = config();
      const file = readSigningKeys(cfg.keysDir);
      const listed = file ? describeSigningKeys(file) : [];
      print({ json: !!opts.json }, { keys: listed }, () =>
        listed.length ? listed.map((k) => `${k.kid}  ${k.alg}  ${k.kty}  ${k.origin}  ${k.createdAt}`).join('\n') : `no signing keys in ${cfg.keysDir}`);
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
  portals.command('disable')
    .description('disable a portal: no new sign-ins, its tokens stop working (userinfo, introspection, refresh)')
    .argument('<client_id>', 'the portal\'s client_id')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: { json?: boolean }) => {
      const s = await services();
      try {
        await portalById(s, clientId);
        await s.store.portals.setDisabled(clientId, true);
        s.audit.record('PORTAL_DISABLED', { portal: clientId });
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
        s.audit.record('RESOURCE_SERVER_REGISTERED', { resource_server: reg.client_id, resource: input.uri, scopes: input.scopes });
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
  const OPERATOR = { operator: 'cli' } as const;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  orgs.command('add')
    .description('register an enterprise (or a branch, NNNNNNNNNN-NNN) and its legal representatives')
    .requiredOption('--code <code>', 'enterprise code: 10 digits, or 10 digits-3 digits for a branch')
    .requiredOption('--name <text>', 'registered name')
    .option('--representative <pid>', 'a legal representative\'s identification number (repeatable; required for an enterprise)', collect, [])
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; name: string; representative: string[]; json?: boolean }) => {
      const e = await orgAction((s) => s.orgs.register({ code: opts.code, name: opts.name, representatives: opts.representative }, OPERATOR));
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
        const e = await orgAction((s) => s.orgs.setStatus(code, status, OPERATOR, opts.reason?.slice(0, 500)));
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
      const d = await orgAction((s) => s.orgs.delegate({ code: opts.code, pid: opts.pid, role: opts.role, until: opts.until, portals: opts.portal }, OPERATOR));
      print({ json: !!opts.json }, { code: d.enterpriseCode, pid: maskPid(opts.pid), role: d.role, until: iso(d.until), portals: d.portals }, () =>
        `${maskPid(opts.pid)} may act for ${d.enterpriseCode} as ${d.role}${d.until ? ` until ${iso(d.until)}` : ''}`);
    });
  orgs.command('revoke')
    .description('end a person\'s delegation: tokens issued under it stop working, portals are told')
    .requiredOption('--code <code>', 'enterprise code')
    .requiredOption('--pid <pid>', 'the person\'s identification number')
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; pid: string; json?: boolean }) => {
      const revoked = await orgAction((s) => s.orgs.revoke(opts.code, opts.pid, OPERATOR));
      if (!revoked) throw new UsageError(`no delegation in force for ${maskPid(opts.pid)} at ${opts.code}`);
      print({ json: !!opts.json }, { code: opts.code, pid: maskPid(opts.pid), revoked: true }, () => `revoked ${maskPid(opts.pid)} at ${opts.code}`);
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
      const s = await services();
      try {
        const person = await s.accounts.create({
          pid: opts.pid, name: opts.name, birthdate: opts.birthdate, gender: opts.gender,
          email: opts.email, phone: opts.phone, level: opts.level, password,
        });
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

  accounts.command('unlock')
    .description('unlock an account locked after too many failed sign-ins, and clear its failure count')
    .argument('<pid>', 'personal identification number (12 digits)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { json?: boolean }) => {
      if (!/^[0-9]{12}$/.test(pid)) throw new UsageError('<pid> must be exactly 12 digits');
      const s = await services();
      try {
        const person = await s.store.persons.findByPid(pid);
        if (!person) throw new UsageError(`no account with identification number ${maskPid(pid)}`);
        await s.store.persons.setStatus(person.id, 'active');
        await s.store.counters.reset(`login-fail:${person.id}`);
        s.audit.record('ACCOUNT_UNLOCKED', { person: person.id, pid: maskPid(pid), was: person.status });
        print({ json: !!opts.json }, { id: person.id, status: 'active' }, () => `unlocked ${maskPid(pid)} (${person.id})`);
      } finally {
        await s.store.close();
      }
    });

  async function run(argv: string[]): Promise<number> {
    const json = argv.includes('--json');
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
      if (err instanceof UsageError || err instanceof ConfigError) return fail(2, err.message);
      if (err instanceof KeyMaterialError) return fail(1, err.message);
      return fail(1, (err as Error).message);
    }
  }

  return { program, run };
}
