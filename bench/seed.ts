/**
 * The benchmark's registrations, made before its dinhdanh starts and in a process of its own, as an
 * operator makes them with the CLI: operator keys in the scratch keys folder, one portal
 * (authorization_code, refresh_token, client_credentials) and `--persons` persons, through
 * dinhdanh's services (`portals.register`, `accounts.create`: password policy and argon2id at the
 * product's parameters). Writes seed.json (the portal's secret and the persons) into the scratch
 * folder and exits. Keeping this out of the server process keeps its memory figure honest: the
 * password-strength dictionaries and eight argon2id hashes at a time are the CLI's, not the server's.
 *
 * Arguments: --dir <scratch folder> --persons <n>
 */
import { parseArgs } from 'node:util';
import { composeServices } from '../src/services.js';
import { validatePortalInput } from '../src/portals/index.js';
import pino from 'pino';
import { writePrivateJson } from '../src/keys/key-files.js';
import { benchConfig, seedFile, writeOperatorKeys, type Seed } from './lib/bench-config.js';
import { BENCH_PASSWORD, PORTAL_REDIRECT_URI } from './lib/protocol.js';

const { values: args } = parseArgs({ options: { dir: { type: 'string' }, persons: { type: 'string', default: '64' } } });

async function main(): Promise<void> {
  // Ends with the parent (its IPC channel closing), like the servers.
  process.on('disconnect', () => process.exit(1));
  const dir = args.dir;
  if (!dir) throw new Error('--dir is required');
  await writeOperatorKeys(dir);
  const services = await composeServices(benchConfig(dir, 'warn'), { logger: pino({ level: 'warn' }) });
  try {
    const portal = await services.portals.register(validatePortalInput({
      name: 'Cổng đo tải',
      redirectUris: [PORTAL_REDIRECT_URI],
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
    }, { production: true }));
    const count = Number(args.persons);
    const persons: Seed['persons'] = [];
    for (let i = 0; i < count; i += 8) {
      persons.push(...await Promise.all(Array.from({ length: Math.min(8, count - i) }, async (_, j) => {
        // Hanoi (001), a man born in 1990: digit 4 = 0, digits 5–6 = 90.
        const pid = `001090${String(i + j + 1).padStart(6, '0')}`;
        const person = await services.accounts.create({
          pid, name: 'Nguyễn Văn Đo Tải', birthdate: '1990-03-15', gender: 'male', email: `do-tai-${i + j}@example.vn`, password: BENCH_PASSWORD,
        });
        return { id: person.id, pid, password: BENCH_PASSWORD };
      })));
    }
    const seed: Seed = { portal: { client_id: portal.client_id, client_secret: portal.client_secret!, redirect_uri: PORTAL_REDIRECT_URI }, persons };
    writePrivateJson(seedFile(dir), seed);
  } finally {
    await services.audit.flush();
    await services.store.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
