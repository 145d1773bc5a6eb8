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
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { System } from '../compose.js';
import { AccountInputError } from '../accounts/index.js';
import { maskPid } from '../accounts/pid.js';
import { validatePortalInput } from '../portals/index.js';
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
  portals: DemoPortalInfo[];
  /**
   * The demo citizen. `password` is null when an account with the demo identification number
   * exists but is not the demo's (another e-mail): it is then left alone.
   */
  citizen: { pid: string; name: string; password: string | null };
  close(): Promise<void>;
}

export type DemoSystem = Pick<System, 'config' | 'logger' | 'portals' | 'accounts' | 'store' | 'hasher' | 'audit'>;

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
    servers.forEach((server, i) => server.on('request', apps[i]!.app.callback()));
    system.logger.info({ portals: portals.map((p) => p.url), citizen: maskPid(citizen.pid) }, 'demo portals are serving (development only)');

    return {
      urls: portals.map((p) => p.url),
      portals,
      citizen,
      async close() {
        await Promise.all(servers.map(closeServer));
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }
}
