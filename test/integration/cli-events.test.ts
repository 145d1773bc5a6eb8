/**
 * `dinhdanh events streams` and `dinhdanh events deliveries` as operators run them (real child
 * processes on the store a server writes): a push portal whose endpoint answers 503 shows its SET
 * waiting with the outcome, a poll portal shows what it has not acknowledged, and neither the
 * endpoint's path nor its authorization header nor a SET is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { oneJson, runCli } from '../helpers/cli-process.js';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { SetReceiver } from '../helpers/set-receiver.js';
import { EVENT, SSF_POLL, SSF_PUSH, VERIFICATION_EVENT } from '../../src/events/event-types.js';
import type { Portal } from '../helpers/rp.js';

let srv: TestServer;
let receiver: SetReceiver;
let env: NodeJS.ProcessEnv;
let push: Portal;
let poll: Portal;

const basic = (p: Portal) => `Basic ${Buffer.from(`${encodeURIComponent(p.client_id)}:${encodeURIComponent(p.client_secret)}`).toString('base64')}`;
async function api(p: Portal, path: string, body: unknown): Promise<{ stream_id: string }> {
  const res = await fetch(`${srv.issuer}${path}`, { method: 'POST', headers: { authorization: basic(p), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBeLessThan(300);
  return (res.status === 204 ? {} : await res.json()) as { stream_id: string };
}

beforeAll(async () => {
  srv = await startTestServer();
  receiver = await new SetReceiver().start();
  push = await srv.addPortal();
  poll = await srv.addPortal();
  env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'development', DINHDANH_STORE: srv.system.config.storeUrl, DINHDANH_KEYS_DIR: srv.system.config.keysDir };
  receiver.answer(503);
  const a = await api(push, '/ssf/stream', { events_requested: [EVENT.accountDisabled], delivery: { method: SSF_PUSH, endpoint_url: receiver.url('/ssf/events?token=path-secret'), authorization_header: 'Bearer header-secret' } });
  await api(push, '/ssf/verify', { stream_id: a.stream_id });
  const b = await api(poll, '/ssf/stream', { events_requested: [EVENT.sessionRevoked], delivery: { method: SSF_POLL } });
  await api(poll, '/ssf/verify', { stream_id: b.stream_id });
  await srv.system.securityEvents.settled();
  await srv.system.jobs.runDue();
});
afterAll(async () => {
  await receiver.close();
  await srv.close();
});

describe('dinhdanh events', () => {
  it('streams --json: each portal\'s stream, its line and last outcome, with the endpoint\'s origin only', async () => {
    const run = await runCli(env, ['events', 'streams', '--json']);
    expect(run.code).toBe(0);
    const { streams } = oneJson(run) as { streams: Array<Record<string, unknown>> };
    const byPortal = Object.fromEntries(streams.map((s) => [s.portal, s]));
    expect(byPortal[push.client_id]).toMatchObject({ method: 'push', endpoint: receiver.base, status: 'enabled', events_requested: ['account-disabled'], undelivered: 1, delivered: 0, failed: 0, last_outcome: 'HTTP 503' });
    expect(byPortal[poll.client_id]).toMatchObject({ method: 'poll', endpoint: null, undelivered: 1, last_outcome: null });
    expect(run.stdout).not.toMatch(/path-secret|header-secret|eyJ/);
    expect(receiver.received).toHaveLength(1);
  });

  it('deliveries --portal: the SETs waiting, their attempts and outcomes; a portal without a stream and bad input exit 2', async () => {
    const run = await runCli(env, ['events', 'deliveries', '--portal', push.client_id, '--json']);
    expect(run.code).toBe(0);
    const out = oneJson(run) as { undelivered: Array<Record<string, unknown>> };
    expect(out.undelivered).toHaveLength(1);
    expect(out.undelivered[0]).toMatchObject({ types: [VERIFICATION_EVENT.split('/').pop()], attempts: 1, last_outcome: 'HTTP 503' });
    expect(run.stdout).not.toContain('eyJ');
    const human = await runCli(env, ['events', 'streams']);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(push.client_id);
    expect((await runCli(env, ['events', 'deliveries', '--portal', 'no-such-portal'])).code).toBe(2);
    expect((await runCli(env, ['events', 'deliveries', '--portal', push.client_id, '--limit', '0'])).code).toBe(2);
    expect((await runCli(env, ['events', 'deliveries', '--portal', "x' OR '1'='1"])).code).toBe(2);
  });
});
