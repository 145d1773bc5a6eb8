/**
 * `dinhdanh resources`: resource servers, the APIs that accept dinhdanh access tokens.
 */
import type { Command } from 'commander';
import { PortalValidationError, validateResourceInput } from '../portals/index.js';
import { UsageError, checkInput, collect, type CliContext } from './shared.js';

export function registerResourceCommands(program: Command, cli: CliContext): void {
  const { config, operatorFor, print, withServices } = cli;
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
      const input = checkInput(() => validateResourceInput({
        name: opts.name, uri: opts.uri, scopes: opts.scope, clientCredentialsPortals: opts.clientCredentialsPortal, signingAlg: opts.signingAlg,
        tokenFormat: opts.tokenFormat,
      }, { production: cfg.env === 'production' }), PortalValidationError);
      await withServices(async (s) => {
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
      });
    });
  resources.command('list')
    .description('list resource servers')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withServices(async (s) => {
        const list = (await s.portals.list()).filter((p) => p.kind === 'resource_server');
        print({ json: !!opts.json }, { resources: list }, () =>
          list.length ? list.map((p) => `${p.client_id}  ${p.disabled ? '[disabled] ' : ''}${p.resource}  ${p.name}  ${(p.scopes ?? []).join(' ')}`).join('\n') : 'no resource servers registered');
      });
    });
}
