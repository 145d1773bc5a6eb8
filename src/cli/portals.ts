/**
 * `dinhdanh portals`: registering portals (relying parties), approving what they may receive, disabling
 * them, rotating their client secrets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { PortalValidationError, summarise, validatePortalInput } from '../portals/index.js';
import { actAs } from '../admin/index.js';
import { KeyRingError, parseDuration } from '../keys/signing-keys.js';
import { UsageError, breakGlass, checkInput, collect, needProposer, operatorsExist, proposalOf, type CliContext, type CliServices } from './shared.js';

/** `--grace`: parsed as `keys rotate --activate-after` is (bare numbers are seconds), 0 to 30 days. */
function parseGrace(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    if (err instanceof KeyRingError) throw new UsageError(`--grace ${JSON.stringify(value.slice(0, 40))} is not a grace period: give a duration from 0 to 30d, such as 0, 90s, 15m, 24h or 7d`);
    throw err;
  }
}

export function registerPortalCommands(program: Command, cli: CliContext): void {
  const { io, config, operatorFor, print, printProposal, withServices } = cli;
  const portals = program.command('portals').description('relying parties (portals)');
  portals.command('add')
    .description('register a portal; prints its client_id and client_secret (shown once)')
    .requiredOption('--name <text>', 'the name citizens see on the consent page')
    .option('--redirect-uri <url>', 'an exact redirect URI (repeatable)', collect, [])
    .option('--post-logout-redirect-uri <url>', 'an exact post-logout redirect URI (repeatable)', collect, [])
    .option('--backchannel-logout-uri <url>', 'back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0)')
    .addOption(new Option('--grant-type <type>', 'authorization_code (always), refresh_token, client_credentials (repeatable)').argParser(collect).default([]))
    .option('--public', 'a public client (not supported: every portal authenticates)')
    .option('--national-id', 'approve the portal to receive the national identification number (only while no operator exists; then: portals approve --national-id, approved by a second operator)')
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
      const input = checkInput(() => validatePortalInput({
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
      }, { production: cfg.env === 'production' }), PortalValidationError);
      await withServices(async (s) => {
        // national_id is two-person once operators exist (admin/approvals.service.ts): approving
        // it while registering would skip the second operator.
        if (input.nationalId && (await operatorsExist(s))) {
          throw new UsageError('--national-id is refused once operators exist: register the portal without it, then `portals approve <client_id> --national-id --legal-basis <text>` (a second operator approves)');
        }
        const reg = await s.portals.register(input);
        s.audit.record('PORTAL_REGISTERED', {
          operator: operatorFor(cfg),
          portal: reg.client_id, national_id: input.nationalId, offline_access: input.offlineAccess, fapi: input.fapi, auth_method: input.authMethod,
        });
        print({ json: !!opts.json }, { client_id: reg.client_id, client_secret: reg.client_secret }, () =>
          reg.client_secret
            ? `registered "${input.name}"\nclient_id:     ${reg.client_id}\nclient_secret: ${reg.client_secret}\n(the secret is shown only now; store it in the portal's secret store)`
            : `registered "${input.name}"\nclient_id:     ${reg.client_id}\n(no secret: the portal authenticates with its own keys, private_key_jwt)`);
      });
    });
  portals.command('list')
    .description('list registered portals')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withServices(async (s) => {
        const list = await s.portals.list();
        print({ json: !!opts.json }, { portals: list }, () =>
          list.length ? list.map((p) => `${p.client_id}  ${p.disabled ? '[disabled] ' : ''}${p.name}  ${p.redirect_uris.join(' ')}`).join('\n') : 'no portals registered');
      });
    });

  const portalById = async (s: CliServices, clientId: string) => {
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
      await withServices(async (s) => {
        const portal = await portalById(s, clientId);
        const summary = { ...summarise(portal), national_id_basis: portal.nationalIdBasis };
        print({ json: !!opts.json }, { portal: summary }, () => Object.entries(summary).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : String(v)}`).join('\n'));
      });
    });
  portals.command('approve')
    .description('approve what a portal may receive, recording the legal basis: national_id (proposed to a second operator once operators exist), or offline_access (30-day refresh tokens)')
    .argument('<client_id>', 'the portal\'s client_id')
    .option('--national-id', 'the 12-digit identification number (scope national_id)')
    .option('--offline-access', 'refresh tokens that outlive the session (scope offline_access)')
    .requiredOption('--legal-basis <text>', 'the legal instrument that allows it')
    .option('--reason <text>', 'national_id: why (recorded in the audit log; default: the legal basis)')
    .option('--break-glass', 'national_id: a registered admin, alone and at once (recorded as such)')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: { nationalId?: boolean; offlineAccess?: boolean; legalBasis: string; reason?: string; breakGlass?: boolean; json?: boolean }) => {
      if (!!opts.nationalId === !!opts.offlineAccess) throw new UsageError('give exactly one of --national-id or --offline-access');
      const what = opts.nationalId ? 'national_id' : 'offline_access';
      const operator = operatorFor(config());
      await withServices(async (s) => {
        await portalById(s, clientId);
        let portal;
        if (what === 'national_id') {
          // Two-person control (admin/actions.ts), which records PORTAL_APPROVED itself with who proposed and approved it.
          const actor = await s.operators.cliActor(operator);
          const alone = breakGlass(actor, opts);
          needProposer(actor, 'approving national_id');
          const approval = proposalOf(await s.adminActions.portals.approveNationalId(actor, clientId, opts.legalBasis, opts.reason ?? opts.legalBasis, { breakGlass: alone }));
          if (approval) return printProposal({ json: !!opts.json }, approval);
          portal = (await s.portals.find(clientId))!;
        } else {
          portal = await s.portals.approve(clientId, what, opts.legalBasis);
          s.audit.record('PORTAL_APPROVED', { portal: clientId, scope: what, legal_basis: opts.legalBasis.trim().slice(0, 500), operator });
        }
        const summary = summarise(portal);
        print({ json: !!opts.json }, { client_id: clientId, approved: what, national_id: summary.national_id, offline_access: summary.offline_access }, () => `${clientId} may now receive ${what}`);
      }, PortalValidationError);
    });

  portals.command('rotate-secret')
    .description('give a portal (or resource server) a new client secret, shown once; the one it replaces is still accepted for the grace period, so the portal can move without an outage')
    .argument('<client_id>', 'the portal\'s client_id')
    .option('--grace <duration>', 'how long the old secret is still accepted: 0 (it leaked: ends at once), 90s, 15m, 24h, 7d; at most 30d', '24h')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .option('--json', 'print JSON')
    .action(async (clientId: string, opts: { grace: string; reason?: string; json?: boolean }) => {
      const graceMs = parseGrace(opts.grace);
      const operator = operatorFor(config());
      await withServices(async (s) => {
        await portalById(s, clientId);
        // The same door as the console's: the integration role once operators exist.
        const actor = await s.operators.cliActor(operator);
        const act = actAs(actor, 'portals.act', opts.reason ?? 'no reason given');
        const r = await s.portalAdmin.rotateSecret(clientId, graceMs, { operator: actor.id, role: act.role, reason: act.reason, via: 'cli' });
        print({ json: !!opts.json }, { client_id: r.client_id, client_secret: r.client_secret, previous_valid_until: r.previous_valid_until }, () => [
          `new client secret for ${r.client_id}`,
          `client_secret: ${r.client_secret}`,
          '(the secret is shown only now; store it in the portal\'s secret store)',
          r.previous_valid_until
            ? `the previous secret is still accepted until ${r.previous_valid_until}; after that only the new one works`
            : 'the previous secret no longer works',
          ...(r.earlier_previous_ended ? ['(the secret replaced by the earlier rotation, still in its grace period, no longer works either)'] : []),
        ].join('\n'));
      }, PortalValidationError);
    });

  // Disabling ends every grant and token issued to the portal; enabling brings back none of them.
  for (const [name, description, disabled] of [
    ['disable', 'disable a portal: no new sign-ins; every grant and token issued to it ends at once (userinfo, introspection, refresh), and stays ended if it is enabled again', true],
    ['enable', 'enable a disabled portal again: new sign-ins work; nothing it held before it was disabled does', false],
  ] as const) {
    portals.command(name)
      .description(description)
      .argument('<client_id>', 'the portal\'s client_id')
      .option('--json', 'print JSON')
      .action(async (clientId: string, opts: { json?: boolean }) => {
        await withServices(async (s) => {
          const operator = operatorFor(config());
          await portalById(s, clientId);
          await (disabled ? s.portalAdmin.disable(clientId, operator) : s.portalAdmin.enable(clientId, operator));
          print({ json: !!opts.json }, { client_id: clientId, disabled }, () => `${name}d ${clientId}`);
        });
      });
  }
}
