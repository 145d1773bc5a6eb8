/**
 * The development demo (issue 4, item 7): two real relying parties on different hosts, hence
 * different pairwise sectors — a national public-service portal on `http://localhost:<port1>` and a
 * provincial one on `http://127.0.0.1:<port2>` (different hosts, so their cookies do not collide) —
 * registered at every start under fixed client ids (a fresh secret each time), and a demo citizen
 * whose password is replaced by a new random passphrase at every start and printed once, on the
 * terminal (never logged).
 *
 * Development only: refused when `config.env` is production (loadConfig refuses DINHDANH_DEMO=on
 * there too). main.ts starts it after dinhdanh listens; discovery happens at the first request.
 *
 * In development with a file registry it also puts a few people with no account into the registry
 * file (once: a restart adds nothing), so that registration at /register can be tried with one of
 * them; the start banner names one who still has no account.
 */
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { System } from '../compose.js';
import type { Config } from '../config/config.js';
import { AccountInputError } from '../accounts/index.js';
import { maskPid } from '../accounts/pid.js';
import type { PersonRepository } from '../store/index.js';
import { validatePortalInput } from '../portals/index.js';
import { appendRegistryRecord, readRegistryRecords, RegistryInputError, type RegistryRecord } from '../registry/index.js';
import { createDemoPortal, type DemoPortal } from './demo-portal.js';
import { demoPassphrase } from './passphrase.js';

export const DEMO_CITIZEN = Object.freeze({
  // Hanoi (001), male born 1999: digit 4 = 0, digits 5–6 = 99.
  pid: '001099000001',
  name: 'Nguyễn Văn Demo',
  birthdate: '1999-05-01',
  gender: 'male',
  email: 'demo@example.invalid',
  level: '1',
});

/**
 * People the development registry knows and who have no account: registration can be tried with
 * them. Numbers per PRODUCT.md "Reference data" (province, century/gender digit, year); the last six
 * digits mark them as demo records, like the demo citizen's. The first has a mobile number on
 * record, so registration must use it (Decree 69/2024/ND-CP); the codes go to the development
 * outbox unless an SMS gateway is configured.
 */
export const DEMO_REGISTRY_PEOPLE: readonly Readonly<RegistryRecord>[] = Object.freeze([
  // Hanoi (001), female born 1995: digit 4 = 1, digits 5–6 = 95.
  Object.freeze({ pid: '001195000101', full_name: 'Trần Thị Bích Ngọc', birthdate: '1995-08-21', gender: 'female', phone: '+84901234567' } as const),
  // Da Nang (048), male born 2001: digit 4 = 2, digits 5–6 = 01.
  Object.freeze({ pid: '048201000102', full_name: 'Lê Hoàng Phúc', birthdate: '2001-02-14', gender: 'male' } as const),
  // Ho Chi Minh City (079), male born 1987: digit 4 = 0, digits 5–6 = 87.
  Object.freeze({ pid: '079087000103', full_name: 'Phạm Quốc Huy', birthdate: '1987-11-30', gender: 'male' } as const),
]);

interface PortalPlan {
  key: 'national' | 'provincial';
  clientId: string;
  name: string;
  host: 'localhost' | '127.0.0.1';
  cookieName: string;
}

const PLANS: readonly [PortalPlan, PortalPlan] = [
  { key: 'national', clientId: 'demo-national', name: 'Cổng Dịch vụ công quốc gia (demo)', host: 'localhost', cookieName: 'demo_national_session' },
  { key: 'provincial', clientId: 'demo-provincial', name: 'Cổng dịch vụ công tỉnh Bình Định (demo)', host: '127.0.0.1', cookieName: 'demo_provincial_session' },
];

export interface DemoPortalInfo {
  key: 'national' | 'provincial';
  name: string;
  url: string;
  clientId: string;
}

export interface Demo {
  /** [national, provincial] */
  urls: string[];
  /** Resolves with each demo portal's security event stream id (undefined when it gave up subscribing). */
  subscribed: Promise<Array<string | undefined>>;
  portals: DemoPortalInfo[];
  /**
   * The demo citizen. `password` is null when an account with the demo identification number
   * exists but is not the demo's (another e-mail): it is then left alone.
   */
  citizen: { pid: string; name: string; password: string | null };
  /**
   * A person in the development registry without an account, to try registration with; null when
   * the registry is not a file, outside development, or when every demo person has registered.
   */
  registrant: Readonly<RegistryRecord> | null;
  close(): Promise<void>;
}

export type DemoSystem = Pick<System, 'config' | 'logger' | 'portals' | 'accounts' | 'store' | 'hasher' | 'audit'>;

/**
 * The start banner's lines (main.ts) on trying registration with `registrant`: the details to type
 * at /register, and where the code goes.
 */
export function demoRegistrationLines(config: Pick<Config, 'issuer' | 'smsGateway' | 'outboxDir'>, registrant: Demo['registrant']): string[] {
  if (!registrant) return [];
  const phone = registrant.phone === undefined
    ? 'any mobile number (the registry has none for this person)'
    : `${registrant.phone.startsWith('+84') ? `0${registrant.phone.slice(3)}` : registrant.phone}   (the one the registry knows: registration must use it)`;
  return [
    '',
    '  Register a new account as a person the development registry knows: on a demo portal\'s sign-in',
    `  page follow "Đăng ký" (you end signed in at that portal), or open ${config.issuer}/register:`,
    `    identification number:  ${registrant.pid}`,
    `    full name:              ${registrant.full_name}`,
    `    date of birth:          ${registrant.birthdate}`,
    `    gender:                 ${registrant.gender}`,
    `    mobile phone:           ${phone}`,
    config.smsGateway
      ? '    The code goes out through the configured SMS gateway.'
      : `    The code is in ${path.join(config.outboxDir, 'outbox.jsonl')} (no SMS gateway in development).`,
  ];
}

export class DemoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DemoError';
  }
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new DemoError(err.code === 'EADDRINUSE' ? `port ${port} is already in use` : `cannot listen on 127.0.0.1:${port} (${err.code ?? err.message})`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function closeServer(server: http.Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Creates the demo citizen if missing and gives it a new password; never logs the password. */
async function ensureCitizen(system: DemoSystem): Promise<Demo['citizen']> {
  const log = system.logger.child({ component: 'demo' });
  const c = DEMO_CITIZEN;
  const password = demoPassphrase([c.pid, c.birthdate.replaceAll('-', ''), c.birthdate]);
  let person = await system.store.persons.findByPid(c.pid);
  if (!person) {
    try {
      await system.accounts.create({ ...c, password });
      return { pid: c.pid, name: c.name, password };
    } catch (err) {
      // Created meanwhile by another instance on the same store: fall through and reset it.
      if (!(err instanceof AccountInputError)) throw err;
      person = await system.store.persons.findByPid(c.pid);
      if (!person) throw err;
    }
  }
  if (person.email !== c.email) {
    log.warn({ pid: maskPid(c.pid) }, 'an account with the demo identification number exists and is not the demo citizen: its password is left alone');
    return { pid: c.pid, name: person.name, password: null };
  }
  const hash = await system.hasher.hash(password);
  if (!(await system.store.persons.updatePasswordHash(person.id, person.passwordHash, hash))) {
    throw new DemoError('the demo citizen\'s password changed while it was being reset; start again');
  }
  // A new password, a clean slate: no delay or lock left from earlier tries.
  if (person.status !== 'active') await system.store.persons.setStatus(person.id, 'active');
  await system.store.counters.reset(`login-fail:${person.id}`);
  return { pid: c.pid, name: person.name, password };
}

const sameRecord = (a: Readonly<RegistryRecord>, b: Readonly<RegistryRecord>) =>
  a.pid === b.pid && a.full_name === b.full_name && a.birthdate === b.birthdate && a.gender === b.gender && a.phone === b.phone;

/**
 * Adds the demo people to a file registry, each once (a restart finds them and adds nothing), and
 * returns the first of them who has no account yet. Only in development with the demo on and a file
 * registry: never an https adapter, never production. No account is created for anyone. A registry
 * file that cannot be written costs the hint, not the demo.
 */
export async function seedDemoRegistry(system: Pick<DemoSystem, 'config' | 'logger'> & { store: { persons: Pick<PersonRepository, 'findByPid'> } }): Promise<Demo['registrant']> {
  const { config } = system;
  const file = config.registry.path;
  if (config.env !== 'development' || config.demo === null || file === null) return null;
  const log = system.logger.child({ component: 'demo' });
  try {
    const existing = await readRegistryRecords(file);
    let registrant: Demo['registrant'] = null;
    for (const person of DEMO_REGISTRY_PEOPLE) {
      const on = existing.get(person.pid);
      if (on && !sameRecord(on, person)) {
        log.warn({ pid: maskPid(person.pid) }, 'the registry file has another record under a demo person\'s number: left alone');
        continue;
      }
      if (!on) {
        try {
          await appendRegistryRecord(file, { pid: person.pid, fullName: person.full_name, birthdate: person.birthdate, gender: person.gender, phone: person.phone });
        } catch (err) {
          // Added meanwhile by another instance starting on the same file.
          if (!(err instanceof RegistryInputError)) throw err;
        }
      }
      if (registrant === null && !(await system.store.persons.findByPid(person.pid))) registrant = person;
    }
    return registrant;
  } catch (err) {
    log.warn({ err: { name: (err as Error).name, message: (err as Error).message } }, 'the demo people could not be put in the registry file');
    return null;
  }
}

/**
 * Starts the two demo portals on `ports` ([national, provincial]; 0 picks a free port; by default
 * the configured DINHDANH_DEMO_PORTS), registers them, and prepares the demo citizen.
 */
export async function startDemo(system: DemoSystem, options: { ports?: readonly [number, number] } = {}): Promise<Demo> {
  const { config } = system;
  if (config.env === 'production') {
    throw new DemoError('the demo portals are for development only and never run in production');
  }
  const ports = options.ports ?? config.demo?.ports ?? [0, 0];
  const servers = PLANS.map(() => {
    const server = http.createServer();
    server.headersTimeout = 20_000;
    server.requestTimeout = 30_000;
    return server;
  });
  try {
    const bound: number[] = [];
    for (const [i, server] of servers.entries()) bound.push(await listen(server, ports[i]!));
    const portals: DemoPortalInfo[] = PLANS.map((plan, i) => ({
      key: plan.key, name: plan.name, clientId: plan.clientId, url: `http://${plan.host}:${bound[i]}`,
    }));

    const apps: DemoPortal[] = [];
    for (const [i, plan] of PLANS.entries()) {
      const self = portals[i]!;
      const peer = portals[1 - i]!;
      // The sector defaults to the redirect URI's host and port: the two portals see different
      // pairwise subjects for the same person.
      const input = validatePortalInput({
        name: plan.name,
        redirectUris: [`${self.url}/callback`],
        postLogoutRedirectUris: [`${self.url}/signed-out`],
        backchannelLogoutUri: `${self.url}/backchannel-logout`,
        grantTypes: ['authorization_code', 'refresh_token'],
      }, { production: false });
      const registered = await system.portals.ensure(plan.clientId, input);
      system.audit.record('PORTAL_REGISTERED', { portal: plan.clientId, demo: true, sector: input.sector });
      apps.push(createDemoPortal({
        key: plan.key,
        name: plan.name,
        peer: { name: peer.name, url: peer.url },
        baseUrl: self.url,
        issuer: config.issuer,
        clientId: registered.client_id,
        clientSecret: registered.client_secret!,
        cookieName: plan.cookieName,
        logger: system.logger,
      }));
    }
    const citizen = await ensureCitizen(system);
    const registrant = await seedDemoRegistry(system);
    servers.forEach((server, i) => server.on('request', apps[i]!.app.callback()));
    // Each demo portal subscribes to the security events once dinhdanh answers (it may start
    // listening after the demo portals).
    const subscribed = Promise.all(apps.map((a) => a.subscribe()));
    system.logger.info({ portals: portals.map((p) => p.url), citizen: maskPid(citizen.pid) }, 'demo portals are serving (development only)');

    return {
      urls: portals.map((p) => p.url),
      portals,
      citizen,
      registrant,
      subscribed,
      async close() {
        await Promise.all(servers.map(closeServer));
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }
}
