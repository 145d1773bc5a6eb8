/**
 * Security events reach the portals (OpenID Shared Signals Framework 1.0, CAEP 1.0, RISC 1.0):
 * two portals a person signed in at through openid-client, one receiving by push (RFC 8935, a real
 * HTTP receiver) and one by poll (RFC 8936), each with a stream made through the stream-management
 * API. For every change that makes an event, through the service operators and citizens use, each
 * portal gets a SET it verifies as a receiver does (signature by the issuer's keys, `typ`, `iss`,
 * `aud`, no `exp` or `sub`), with its own pairwise subject — never the identification number — and
 * only the event types it asked for. Then: order, `txn`, retries after 5xx, a refusal, the SSRF
 * guard, acknowledgements, and a portal that asked for nothing hears nothing.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, discover, redeem, signIn, type Portal } from '../helpers/rp.js';
import { SetReceiver, verifySet, type VerifiedSet } from '../helpers/set-receiver.js';
import { createEventDelivery } from '../../src/events/delivery.js';
import { composeServices } from '../../src/services.js';
import { withCause } from '../../src/events/set.js';
import { createGuardedFetch } from '../../src/outbound/guarded-fetch.js';
import { EVENT, EVENTS_SUPPORTED, SSF_POLL, SSF_PUSH, VERIFICATION_EVENT } from '../../src/events/event-types.js';

let srv: TestServer;
let receiver: SetReceiver;
const OPERATOR = { operator: 'ops.test', reason: 'security events under test' };

beforeAll(async () => {
  srv = await startTestServer();
  receiver = await new SetReceiver().start();
});
afterAll(async () => {
  await receiver.close();
  await srv.close();
});

const basic = (p: Portal) => `Basic ${Buffer.from(`${encodeURIComponent(p.client_id)}:${encodeURIComponent(p.client_secret)}`).toString('base64')}`;

/** A stream's configuration as the API answers it (SSF 1.0 §8.1.1). */
interface StreamJson { stream_id: string; events_delivered: string[]; delivery: { method: string; endpoint_url?: string } }

async function api(p: Portal, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${srv.issuer}${path}`, {
    method,
    headers: { authorization: basic(p), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** Runs the server's due jobs (pushes) until none is left, and waits for the SETs being made. */
async function settle(): Promise<void> {
  await srv.system.audit.flush();
  await srv.system.securityEvents.settled();
  for (let i = 0; i < 10 && (await srv.system.jobs.runDue()) > 0; i++) await srv.system.securityEvents.settled();
}

async function poll(p: Portal, body: Record<string, unknown> = {}): Promise<{ sets: Record<string, string>; moreAvailable: boolean }> {
  const res = await api(p, 'POST', '/ssf/poll', { returnImmediately: true, ...body });
  expect(res.status).toBe(200);
  return res.json as { sets: Record<string, string>; moreAvailable: boolean };
}

/** Polls everything there is, acknowledging it, and verifies each SET as the poll portal. */
async function drainPoll(p: Portal): Promise<VerifiedSet[]> {
  const out: VerifiedSet[] = [];
  let ack: string[] = [];
  for (;;) {
    const { sets, moreAvailable } = await poll(p, { ack, maxEvents: 50 });
    ack = Object.keys(sets);
    for (const set of Object.values(sets)) out.push(await verifySet(set, srv.issuer, p.client_id));
    if (!moreAvailable && ack.length === 0) break;
    if (!moreAvailable) {
      await poll(p, { ack, maxEvents: 0 });
      break;
    }
  }
  return out;
}

let pushed = 0;
async function newPushed(p: Portal): Promise<VerifiedSet[]> {
  const fresh = receiver.received.slice(pushed);
  pushed = receiver.received.length;
  return Promise.all(fresh.map((r) => verifySet(r.set, srv.issuer, p.client_id)));
}

interface Citizen { id: string; pid: string; password: string; subs: Record<string, string> }

/** A person signed in at both portals (their consents are what makes a portal "used"). */
async function citizen(portals: Portal[]): Promise<Citizen> {
  const person = await srv.addPerson();
  const subs: Record<string, string> = {};
  const browser = new Browser(srv.issuer);
  for (const p of portals) {
    const config = await discover(srv.issuer, p);
    const req = await authRequest(config, p, { scope: 'openid profile' });
    const done = await signIn(browser, req, person);
    subs[p.client_id] = (await redeem(config, req, done.location!)).claims()!.sub;
  }
  return { ...person, subs };
}

function subjectOf(s: VerifiedSet): { iss?: unknown; sub?: unknown } {
  const id = s.payload.sub_id as Record<string, Record<string, unknown>>;
  return (id.format as unknown) === 'complex' ? id.user! : id;
}

describe('security events, push and poll', () => {
  let push: Portal;
  let pollPortal: Portal;
  let quiet: Portal;

  beforeAll(async () => {
    push = await srv.addPortal();
    pollPortal = await srv.addPortal();
    quiet = await srv.addPortal();
    const all = [...EVENTS_SUPPORTED];
    const created = await api(push, 'POST', '/ssf/stream', { events_requested: all, delivery: { method: SSF_PUSH, endpoint_url: receiver.url() }, description: 'test push' });
    expect(created.status).toBe(201);
    expect((created.json as StreamJson).events_delivered.sort()).toEqual([...all].sort());
    const polled = await api(pollPortal, 'POST', '/ssf/stream', { events_requested: all, delivery: { method: SSF_POLL } });
    expect(polled.status).toBe(201);
    expect((polled.json as StreamJson).delivery.endpoint_url).toBe(`${srv.issuer}/ssf/poll`);
    // The third portal asks only for account-purged, which nothing below makes.
    expect((await api(quiet, 'POST', '/ssf/stream', { events_requested: [EVENT.accountPurged], delivery: { method: SSF_POLL } })).status).toBe(201);
  });

  it('a verification event on request, by push and by poll, with the receiver\'s state and the stream as subject', async () => {
    const streamId = ((await api(push, 'GET', '/ssf/stream')).json as StreamJson[])[0]!.stream_id;
    expect((await api(push, 'POST', '/ssf/verify', { stream_id: streamId, state: 'push-state-1' })).status).toBe(204);
    await settle();
    const [v] = await newPushed(push);
    expect(v!.type).toBe(VERIFICATION_EVENT);
    expect(v!.event).toEqual({ state: 'push-state-1' });
    expect(v!.payload.sub_id).toEqual({ format: 'opaque', id: streamId });
    expect(receiver.received.at(-1)!.contentType).toBe('application/secevent+jwt');

    const pollStream = ((await api(pollPortal, 'GET', '/ssf/stream')).json as StreamJson[])[0]!.stream_id;
    expect((await api(pollPortal, 'POST', '/ssf/verify', { stream_id: pollStream, state: 'poll-state' })).status).toBe(204);
    await settle();
    const polled = await drainPoll(pollPortal);
    expect(polled.map((s) => [s.type, s.event.state])).toEqual([[VERIFICATION_EVENT, 'poll-state']]);
  });

  /**
   * One row per change: how it is made, and the events each portal must get (in this order, one
   * cause, one `txn`).
   */
  const rows: Array<{ change: string; make: (c: Citizen) => Promise<unknown>; expect: Array<{ type: string; members?: Record<string, unknown> }> }> = [
    {
      change: 'an operator locks the account (account-disabled, then each session revoked)',
      make: (c) => srv.system.accountAdmin.lock(c.pid, OPERATOR),
      expect: [{ type: EVENT.accountDisabled, members: { reason_class: 'operator', initiating_entity: 'admin' } }],
    },
    {
      change: 'an operator unlocks it (account-enabled)',
      make: (c) => srv.system.accountAdmin.unlock(c.pid, OPERATOR),
      expect: [{ type: EVENT.accountEnabled, members: { initiating_entity: 'admin' } }],
    },
    {
      change: 'a fraud lock (account-disabled, reason hijacking)',
      make: (c) => srv.system.accountAdmin.lock(c.pid, OPERATOR, { fraud: true }),
      expect: [{ type: EVENT.accountDisabled, members: { reason: 'hijacking', reason_class: 'fraud' } }],
    },
    {
      change: 'the identity level raised and lowered (assurance-level-change, both ways)',
      make: async (c) => {
        await srv.system.accountAdmin.unlock(c.pid, OPERATOR, { fraudApproved: true });
        await settle();
        await drainAll();
        await srv.system.accountAdmin.setLevel(c.pid, 2, OPERATOR, { documentType: 'cccd-chip', documentNumber: '001090000001', place: 'Hà Nội' });
        await srv.system.accountAdmin.setLevel(c.pid, 1, OPERATOR);
      },
      expect: [
        { type: EVENT.assuranceLevelChange, members: { previous_level: '1', current_level: '2', change_direction: 'increase' } },
        { type: EVENT.assuranceLevelChange, members: { previous_level: '2', current_level: '1', change_direction: 'decrease' } },
      ],
    },
    {
      change: 'the password changed in the account area (credential-change password update)',
      make: (c) => srv.system.accountActions.changePassword(c.id, 'no-such-session', c.password, 'một mật khẩu mới rất dài 2025', 'một mật khẩu mới rất dài 2025', 'vi'),
      expect: [{ type: EVENT.credentialChange, members: { credential_type: 'password', change_type: 'update', initiating_entity: 'user' } }],
    },
    {
      change: 'an operator resets the second factors (credential-change delete per kind)',
      make: async (c) => {
        await srv.system.store.factors.create({
          id: crypto.randomUUID(), personId: c.id, type: 'totp', label: 'app', confirmed: true, secretCiphertext: null,
          credentialId: null, publicKey: null, signCount: null, transports: null,
        });
        await srv.system.accountAdmin.resetMfa(c.pid, OPERATOR, 'CCCD checked in person');
      },
      expect: [{ type: EVENT.credentialChange, members: { credential_type: 'app', change_type: 'delete', initiating_entity: 'admin' } }],
    },
    {
      change: 'a recovery proven by a contact, and a contact changed (recovery-activated, recovery-information-changed)',
      make: async (c) => {
        srv.system.audit.record('RECOVERY_CODE_VERIFIED', { person: c.id, channel: 'email' });
        srv.system.audit.record('CONTACT_REMOVED', { person: c.id, kind: 'email', masked: 'a…@example.vn' });
      },
      expect: [{ type: EVENT.recoveryActivated }, { type: EVENT.recoveryInformationChanged }],
    },
  ];

  let person: Citizen;
  async function drainAll(): Promise<void> {
    await settle();
    await newPushed(push);
    await drainPoll(pollPortal);
  }

  beforeAll(async () => {
    person = await citizen([push, pollPortal, quiet]);
    await drainAll();
  });

  for (const row of rows) {
    it(row.change, async () => {
      await row.make(person);
      await settle();
      for (const [portal, got] of [[push, await newPushed(push)], [pollPortal, await drainPoll(pollPortal)]] as const) {
        // Sessions revoked by the same change come too; the row's own events come in its order.
        const own = got.filter((s) => s.type !== EVENT.sessionRevoked);
        expect(own.map((s) => s.type)).toEqual(row.expect.map((e) => e.type));
        own.forEach((s, i) => expect(s.event).toMatchObject(row.expect[i]!.members ?? {}));
        for (const s of got) {
          expect(subjectOf(s)).toEqual({ format: 'iss_sub', iss: srv.issuer, sub: person.subs[portal.client_id] });
          expect(JSON.stringify(s.payload)).not.toContain(person.pid);
          expect(typeof s.payload.txn).toBe('string');
          expect(s.header.typ).toBe('secevent+jwt');
        }
      }
      // A portal that asked only for account-purged hears none of it.
      expect((await poll(quiet)).sets).toEqual({});
    });
  }

  it('a lock and the session ends it causes share one txn; each session is named by its sid', async () => {
    const c = await citizen([push, pollPortal]);
    await drainAll();
    // As the console (one request) and the command line (one command) run a change: one cause.
    await withCause(() => srv.system.accountAdmin.lock(c.pid, OPERATOR));
    await settle();
    const got = await newPushed(push);
    expect(got.map((s) => s.type)).toContain(EVENT.accountDisabled);
    const revoked = got.filter((s) => s.type === EVENT.sessionRevoked);
    expect(revoked.length).toBeGreaterThanOrEqual(1);
    expect(new Set(got.map((s) => s.payload.txn)).size).toBe(1);
    const subject = revoked[0]!.payload.sub_id as Record<string, Record<string, unknown>>;
    expect(subject.format as unknown).toBe('complex');
    expect(subject.user).toEqual({ format: 'iss_sub', iss: srv.issuer, sub: c.subs[push.client_id] });
    expect(subject.session?.format).toBe('opaque');
    await drainPoll(pollPortal);
  });

  it('a withdrawn consent revokes the person\'s sessions at that portal only (session-revoked, user subject)', async () => {
    const c = await citizen([push, pollPortal]);
    await drainAll();
    srv.system.audit.record('CONSENT_REVOKED', { person: c.id, portal: push.client_id, records: 1 });
    await settle();
    const got = await newPushed(push);
    expect(got.map((s) => s.type)).toEqual([EVENT.sessionRevoked]);
    expect(got[0]!.payload.sub_id).toEqual({ format: 'iss_sub', iss: srv.issuer, sub: c.subs[push.client_id] });
    expect(await drainPoll(pollPortal)).toEqual([]);
  });

  it('a delegation ended (our event type, the enterprise as tenant)', async () => {
    const c = await citizen([push, pollPortal]);
    await drainAll();
    const owner = await srv.addPerson({ pid: '001090777777' });
    await srv.system.orgs.register({ code: '0100000077', name: 'Công ty Thử Sự Kiện', representatives: [owner.pid] }, { operator: 'ops.test' });
    await srv.system.orgs.delegate({ code: '0100000077', pid: c.pid, role: 'ke-toan' }, { operator: 'ops.test' });
    await srv.system.orgs.revoke('0100000077', c.pid, { operator: 'ops.test' });
    await settle();
    const got = (await newPushed(push)).filter((s) => s.type === EVENT.delegationEnded);
    expect(got).toHaveLength(1);
    expect(got[0]!.event).toMatchObject({ reason: 'revoked' });
    expect((got[0]!.payload.sub_id as Record<string, unknown>).tenant).toEqual({ format: 'opaque', id: '0100000077' });
    await drainPoll(pollPortal);
  });

  it('push keeps going after 5xx answers, in order, and gives up at once on a 400 refusal', async () => {
    const c = await citizen([push]);
    await drainAll();
    receiver.answer(503, 503);
    await srv.system.accountAdmin.lock(c.pid, OPERATOR);
    await srv.system.accountAdmin.unlock(c.pid, OPERATOR);
    await settle();
    // The head failed twice: nothing after it has gone out.
    const stream = ((await api(push, 'GET', '/ssf/stream')).json as StreamJson[])[0]!.stream_id;
    const waiting = await srv.system.store.ssf.undelivered(stream, Date.now(), 10);
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    expect(waiting[0]!.attempts).toBe(1);
    // The next try, pulled forward as a resumed stream would be.
    await srv.system.eventDelivery.resume((await srv.system.store.ssf.findStream(stream))!);
    await settle();
    await srv.system.eventDelivery.resume((await srv.system.store.ssf.findStream(stream))!);
    await settle();
    const got = await newPushed(push);
    // The head was pushed three times (503, 503, 202); then the rest, in the order they were made.
    const line = waiting.map((e) => e.jti);
    expect(got.map((s) => s.payload.jti)).toEqual([line[0], line[0], ...line]);
    expect(got.map((s) => s.type)).toContain(EVENT.accountDisabled);
    expect(got.at(-1)!.type).toBe(EVENT.accountEnabled);
    expect(await srv.system.store.ssf.undelivered(stream, Date.now(), 10)).toEqual([]);

    receiver.answer({ status: 400, err: 'invalid_audience' });
    await srv.system.accountAdmin.lock(c.pid, OPERATOR);
    await settle();
    const refused = (await srv.system.store.jobs.list('ssf-push', { status: 'failed', limit: 5 }))[0];
    expect(refused?.lastOutcome).toBe('HTTP 400 invalid_audience');
    await newPushed(push);
  });

  it('a push endpoint on a private address is refused by the SSRF guard (production policy): given up at once, recorded', async () => {
    // The development server may push to loopback (the demo does); a production one may not.
    const guarded = createEventDelivery({
      store: srv.system.store, jobs: srv.system.store.jobs, events: srv.system.securityEvents, secretBox: srv.system.secretBox,
      fetch: createGuardedFetch({ allowPrivate: false, allowCidrs: [], timeoutMs: 5_000, maxResponseBytes: 64 * 1024 }),
      audit: srv.system.audit, logger: srv.system.logger,
    });
    const c = await citizen([push]);
    await drainAll();
    await srv.system.jobs.stop();
    try {
      await srv.system.accountAdmin.lock(c.pid, OPERATOR);
      await srv.system.audit.flush();
      await srv.system.securityEvents.settled();
      const stream = (await srv.system.store.ssf.findStreamByClient(push.client_id))!;
      const [head] = await srv.system.store.ssf.undelivered(stream.id, Date.now(), 1);
      const result = await guarded.handler.run({ payload: { stream: stream.id, jti: head!.jti, rev: stream.updatedAt } } as never);
      expect(result).toEqual({ status: 'failed', outcome: 'refused: destination not allowed' });
      expect((await srv.system.store.ssf.findEvent(stream.id, head!.jti))!.failed).toBe(true);
      expect(receiver.received.length).toBe(pushed);
    } finally {
      srv.system.jobs.start();
    }
    await settle();
    await newPushed(push);
  });

  it('poll: unacknowledged SETs come again, maxEvents limits, moreAvailable says so, an acknowledgement ends them', async () => {
    const c = await citizen([pollPortal]);
    await drainPoll(pollPortal);
    await srv.system.accountAdmin.lock(c.pid, OPERATOR);
    await srv.system.accountAdmin.unlock(c.pid, OPERATOR);
    await settle();
    const first = await poll(pollPortal, { maxEvents: 1 });
    expect(Object.keys(first.sets)).toHaveLength(1);
    expect(first.moreAvailable).toBe(true);
    const again = await poll(pollPortal, { maxEvents: 1 });
    expect(Object.keys(again.sets)).toEqual(Object.keys(first.sets));
    const next = await poll(pollPortal, { maxEvents: 1, ack: Object.keys(first.sets) });
    expect(Object.keys(next.sets)).not.toEqual(Object.keys(first.sets));
    await drainPoll(pollPortal);
    expect((await poll(pollPortal)).sets).toEqual({});
  });

  it('long polling answers as soon as an event is made', async () => {
    const c = await citizen([pollPortal]);
    await drainPoll(pollPortal);
    const waiting = api(pollPortal, 'POST', '/ssf/poll', { returnImmediately: false, maxEvents: 10 });
    await new Promise((r) => setTimeout(r, 300));
    await srv.system.accountAdmin.lock(c.pid, OPERATOR);
    await settle();
    const res = await waiting;
    expect(res.status).toBe(200);
    const types = await Promise.all(Object.values((res.json as { sets: Record<string, string> }).sets).map(async (s) => (await verifySet(s, srv.issuer, pollPortal.client_id)).type));
    expect(types).toContain(EVENT.accountDisabled);
    await drainPoll(pollPortal);
  });

  it('at most two long polls of a stream wait at once: a third is answered at once', async () => {
    const c = await citizen([pollPortal]);
    await drainPoll(pollPortal);
    const long = () => api(pollPortal, 'POST', '/ssf/poll', { returnImmediately: false, maxEvents: 10 });
    const [a, b] = [long(), long()];
    await new Promise((r) => setTimeout(r, 200));
    const third = await Promise.race([long().then((r) => r.json), new Promise((r) => setTimeout(() => r('still waiting'), 5_000))]);
    expect(third).toEqual({ sets: {}, moreAvailable: false });
    await srv.system.accountAdmin.lock(c.pid, OPERATOR);
    await settle();
    for (const res of await Promise.all([a, b])) expect(Object.keys((res.json as { sets: object }).sets).length).toBeGreaterThan(0);
    await drainPoll(pollPortal);
  });

  it('a SET for one portal fails the other portal\'s audience check, and a tampered one fails its signature', async () => {
    const c = await citizen([push]);
    await drainAll();
    await srv.system.accountAdmin.lock(c.pid, OPERATOR);
    await settle();
    const raw = receiver.received.at(-1)!.set;
    await newPushed(push);
    await expect(verifySet(raw, srv.issuer, pollPortal.client_id)).rejects.toThrow(/aud/);
    const [h, p, s] = raw.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), aud: pollPortal.client_id })).toString('base64url');
    await expect(verifySet(`${h}.${forged}.${s}`, srv.issuer, pollPortal.client_id)).rejects.toThrow(/signature/);
  });
});

describe('who hears what', () => {
  let portalAdmin: Awaited<ReturnType<typeof composeServices>>['portalAdmin'];
  let closeCli: () => Promise<void>;
  beforeAll(async () => {
    const cli = await composeServices(srv.system.config);
    portalAdmin = cli.portalAdmin;
    closeCli = () => cli.store.close();
  });
  afterAll(async () => { await closeCli(); });

  /** A poll stream made in the store for a portal (the API's own tests are in ssf-streams.test.ts). */
  async function stream(p: Portal, events: string[], status: 'enabled' | 'paused' | 'disabled' = 'enabled') {
    const t = Date.now();
    const s = {
      id: crypto.randomBytes(16).toString('base64url'), clientId: p.client_id, eventsRequested: events, deliveryMethod: SSF_POLL as typeof SSF_POLL,
      endpointUrl: null, authorizationHeader: null, description: null, status, statusReason: null, createdAt: t, updatedAt: t,
    };
    expect(await srv.system.store.ssf.createStream(s)).toBe(true);
    return s;
  }
  const held = async (streamId: string) => Promise.all((await srv.system.store.ssf.undelivered(streamId, Date.now(), 100)).map((e) => e.types[0]));

  it('a changed verified e-mail goes, as identifier-changed with the old address as subject, only to portals that received it (scope email)', async () => {
    const withEmail = await srv.addPortal();
    const without = await srv.addPortal();
    const a = await stream(withEmail, [EVENT.identifierChanged]);
    const b = await stream(without, [EVENT.identifierChanged]);
    const person = await srv.addPerson({ email: 'an.cu@example.vn', contactsVerified: true });
    const browser = new Browser(srv.issuer);
    const scoped = await discover(srv.issuer, withEmail);
    const req = await authRequest(scoped, withEmail, { scope: 'openid profile email' });
    const sub = (await redeem(scoped, req, (await signIn(browser, req, person)).location!)).claims()!.sub;
    const plain = await discover(srv.issuer, without);
    const req2 = await authRequest(plain, without, { scope: 'openid profile' });
    await redeem(plain, req2, (await signIn(browser, req2, person)).location!);

    srv.system.securityEvents.identifierChanged(person.id, 'email', 'an.cu@example.vn', 'an.moi@example.vn');
    await srv.system.securityEvents.settled();
    const [event] = await srv.system.store.ssf.undelivered(a.id, Date.now(), 10);
    const v = await verifySet(event!.set, srv.issuer, withEmail.client_id);
    expect(v.type).toBe(EVENT.identifierChanged);
    expect(v.event).toMatchObject({ 'new-value': 'an.moi@example.vn' });
    expect(v.payload.sub_id).toEqual({ format: 'complex', user: { format: 'iss_sub', iss: srv.issuer, sub }, email: { format: 'email', email: 'an.cu@example.vn' } });
    expect(await held(b.id)).toEqual([]);
  });

  it('a paused stream holds events, a disabled stream gets none, a disabled portal gets none, a type not asked for is not sent', async () => {
    const paused = await srv.addPortal();
    const off = await srv.addPortal();
    const other = await srv.addPortal();
    const gone = await srv.addPortal();
    const sp = await stream(paused, [EVENT.accountDisabled], 'paused');
    const so = await stream(off, [EVENT.accountDisabled], 'disabled');
    const st = await stream(other, [EVENT.credentialChange]);
    const sg = await stream(gone, [EVENT.accountDisabled]);
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    for (const p of [paused, off, other, gone]) {
      const config = await discover(srv.issuer, p);
      const req = await authRequest(config, p, { scope: 'openid' });
      await redeem(config, req, (await signIn(browser, req, person)).location!);
    }
    await portalAdmin.disable(gone.client_id, 'ops.test');
    await srv.system.accountAdmin.lock(person.pid, OPERATOR);
    await srv.system.audit.flush();
    await srv.system.securityEvents.settled();
    expect(await held(sp.id)).toEqual([EVENT.accountDisabled]);
    expect((await poll(paused)).sets).toEqual({});
    expect(await held(so.id)).toEqual([]);
    expect(await held(st.id)).toEqual([]);
    expect(await held(sg.id)).toEqual([]);
  });
});

describe('operators see deliveries in the metrics', () => {
  it('dinhdanh_security_event_deliveries_total by portal and outcome, and the undelivered gauge', async () => {
    const p = await srv.addPortal();
    await srv.system.portalLabels.refresh();
    const created = await api(p, 'POST', '/ssf/stream', { events_requested: [EVENT.accountDisabled], delivery: { method: SSF_PUSH, endpoint_url: receiver.url('/m') } });
    expect(created.status).toBe(201);
    const streamId = (created.json as StreamJson).stream_id;
    receiver.answer(503);
    expect((await api(p, 'POST', '/ssf/verify', { stream_id: streamId })).status).toBe(204);
    await settle();
    const scrape = async () => (await (await fetch(`${srv.adminUrl}/metrics`)).text()).split('\n');
    let lines = await scrape();
    expect(lines).toContain(`dinhdanh_security_event_deliveries_total{portal="${p.client_id}",outcome="retrying"} 1`);
    expect(lines).toContain(`dinhdanh_security_events_undelivered{portal="${p.client_id}"} 1`);
    await srv.system.eventDelivery.resume((await srv.system.store.ssf.findStream(streamId))!);
    await settle();
    await new Promise((r) => setTimeout(r, 10_100)); // past the scrape reads' 10-second reuse
    lines = await scrape();
    expect(lines).toContain(`dinhdanh_security_event_deliveries_total{portal="${p.client_id}",outcome="delivered"} 1`);
    expect(lines).toContain(`dinhdanh_security_events_undelivered{portal="${p.client_id}"} 0`);
    await newPushed(p).catch(() => undefined);
  }, 30_000);
});
