/**
 * `dinhdanh keys`: signing keys and secrets, in the keys folder and in the store.
 */
import path from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import {
  SECRETS_FILE, SIGNING_KEYS_FILE, describeSigningKeys, newSecretsFile, newSigningKeysFile, readSecrets, readSigningKeys,
  writePrivateJson,
} from '../keys/key-files.js';
import { KeyRingError, createSigningKeys, parseDuration, type KeyView } from '../keys/signing-keys.js';
import { UsageError, breakGlass, needProposer, proposalOf, type CliContext, type CliServices } from './shared.js';

export function registerKeyCommands(program: Command, cli: CliContext): void {
  const { io, config, operatorFor, print, printProposal, withServices } = cli;
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
  const withSigningKeys = <T>(fn: (ring: ReturnType<typeof createSigningKeys>, s: CliServices) => Promise<T>): Promise<T> =>
    withServices(async (s) => {
      const ring = createSigningKeys({ repo: s.store.signingKeys, box: s.keyEncryptionBox, logger: pino({ level: 'warn' }, pino.destination(2)) });
      await ring.bootstrap(s.keys.jwks.keys, s.keys.signingOrigin);
      return fn(ring, s);
    }, KeyRingError);
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
    .description('stop publishing a key (never the active one): do it once its retire-after date has passed; proposed to a second operator with the keys role once operators exist')
    .argument('<kid>', 'the key id')
    .option('--reason <text>', 'why (recorded in the audit log; required once operators exist: the approver reads it)')
    .option('--break-glass', 'a registered admin, alone and at once (recorded as such)')
    .option('--json', 'print JSON')
    // A key id is a JWK thumbprint in base64url (RFC 7638), which begins with '-' one time in 64:
    // such a kid is the argument, not an unknown option. (A misspelt option is then taken for a
    // kid, and refused as one that does not exist.)
    .allowUnknownOption()
    .action(async (kid: string, opts: { reason?: string; breakGlass?: boolean; json?: boolean }) => {
      const operator = operatorFor(config());
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(kid)) throw new UsageError('<kid> is not a key id');
      const done = await withSigningKeys(async (ring, s) => {
        const actor = await s.operators.cliActor(operator);
        const alone = breakGlass(actor, opts);
        needProposer(actor, 'retiring a key');
        // Before any operator exists the key is retired at once, as it always was without --reason.
        const reason = opts.reason ?? (actor.bootstrap ? 'no reason given' : undefined);
        if (reason === undefined) throw new UsageError('--reason is required: retiring a key is proposed to a second operator, who reads why');
        const before = (await ring.describe()).find((k) => k.kid === kid);
        // Said before anything is proposed, with what to do instead.
        if (before?.state === 'active') throw new UsageError(`${kid} is the active ${before.alg} key: rotate first, and retire it once its successor is active and its tokens have expired`);
        // The action records KEY_RETIRED itself (admin/actions.ts), with who proposed and approved it.
        const approval = proposalOf(await s.adminActions.keys.retire(actor, kid, reason, { breakGlass: alone }));
        return approval ? { approval } : { alg: before?.alg ?? 'unknown', was: before?.state ?? 'unknown' };
      });
      if (done.approval) printProposal({ json: !!opts.json }, done.approval);
      else print({ json: !!opts.json }, { kid, alg: done.alg, retired: true }, () => `retired ${kid} (${done.alg}, was ${done.was})`);
    });
}
