/**
 * "Process killed mid-delivery → delivered after restart" (issue 5; research §2.7): the real
 * service (src/main.ts) is spawned on a test database with its webhook worker running; the
 * receiver holds the first request open, the process is SIGKILLed while the attempt is in
 * flight, and the delivery is then completed by a fresh worker — exactly one 2xx for that
 * webhook-id, the same webhook-id and delivery id on both requests, and the lost attempt in
 * the delivery log.
 *
 * A claim leases the delivery for timeoutMs + 20 s (30 s by default). Rather than waiting
 * that long, the first test simulates the lease running out by moving next_attempt_at to
 * now() in SQL and restarts the service; the second uses an in-test worker whose FakeClock is
 * moved past the lease (and shows that one millisecond before it, nothing is claimed).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { createWebhookWorker } from '../../src/webhooks/webhook-worker.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { baseEnv, startMain as spawnMain, type MainProcess } from '../helpers/main-process.js';
import { waitFor } from '../helpers/process.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/webhook-receiver.js';

const LOST = 'no outcome was recorded in time (the worker stopped, or its lease ran out): sent again';
/** config/default.json webhooks.timeoutMs (10 s) + the worker's 20 s lease margin. */
const LEASE_MS = 30_000;

const started: MainProcess[] = [];
let contactSeq = 0;

function startMain(env: NodeJS.ProcessEnv): MainProcess {
  const p = spawnMain(env);
  started.push(p);
  return p;
}

/** SIGKILLs every child still running (by pid) and waits for it to be gone. */
async function killLeftovers(): Promise<void> {
  for (const p of started.splice(0)) {
    if (!p.hasExited()) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
}

async function api(base: string, auth: string, method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { Authorization: auth, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Checks both signature schemes of a received request with code of our own and with standardwebhooks. */
function assertSigned(req: ReceivedRequest, secret: string): void {
  const xsig = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(req.body, 'utf8')).digest('hex');
  assert.equal(req.headers['x-signature'], `sha256=${xsig}`);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const v1 = createHmac('sha256', key).update(`${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${req.body}`).digest('base64');
  assert.equal(req.headers['webhook-signature'], `v1,${v1}`);
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
  assert.doesNotThrow(() => new Webhook(secret).verify(req.body, headers));
}

describe('webhooks: the process dies mid-delivery', function () {
  this.timeout(120_000);

  let db: TestDatabase;
  let t: TestApp;
  let receiver: Receiver;
  /** webhook-ids seen so far: the first request of each hangs, later ones get 200. */
  const seen = new Set<string>();
  /** The 2xx answers given, by webhook-id. */
  const answered2xx = new Map<string, number>();

  before(async () => {
    db = await createTestDatabase();
    // Services on the same database as the spawned process, for keys and the in-test worker.
    t = createTestApp(db.knex, { config: { webhooks: { allowPrivateTargets: true } } });
    receiver = await startReceiver();
    receiver.respond((req) => {
      const id = String(req.headers['webhook-id']);
      if (!seen.has(id)) {
        seen.add(id);
        return { hang: true };
      }
      answered2xx.set(id, (answered2xx.get(id) ?? 0) + 1);
      return { status: 200, body: 'ok' };
    });
  });

  afterEach(killLeftovers);

  after(async () => {
    await killLeftovers();
    await receiver?.close();
    await db?.drop();
  });

  const env = () => baseEnv({
    DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1', SCHEDULER_ENABLED: 'true', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', LOG_LEVEL: 'info',
  });

  /**
   * Starts the service, registers an endpoint (through its API) for ticket.created, opens a
   * ticket (through its API), waits for the receiver to hold the delivery's first request,
   * and SIGKILLs the process. Returns what the rest of the test needs.
   */
  async function killedMidDelivery(label: string) {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, rateLimitPerMinute: 1_000_000 });
    const first = startMain(env());
    const base = await first.listening();

    const created = await api(base, key.auth, 'POST', '/v1/webhooks', { url: receiver.url, events: ['ticket.created'], description: label });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const endpointId: string = created.body.id;
    const secret: string = created.body.secret;

    const requestsBefore = receiver.requests.length;
    const ticket = await api(base, key.auth, 'POST', '/v1/tickets', {
      subject: `Crash test: ${label}`, contact: { name: 'Crash Test', telegram_user_id: 9_100_000 + ++contactSeq },
    });
    assert.equal(ticket.status, 201, JSON.stringify(ticket.body));
    const event = await db.knex('events').where({ workspace_id: ws.id, type: 'ticket.created', ticket_id: ticket.body.id }).first();
    assert.ok(event, 'the ticket.created event was written');

    // The worker of the running process claims the delivery and POSTs it; the receiver holds it.
    await receiver.waitForRequests(requestsBefore + 1, 20_000);
    assert.equal(receiver.withWebhookId(event.id).length, 1, 'the held request is this event');

    const inFlight = await db.knex('webhook_deliveries').where({ endpoint_id: endpointId }).first();
    assert.equal(inFlight.event_id, event.id);
    assert.equal(inFlight.status, 'pending');
    assert.equal(inFlight.attempt_count, 1);
    assert.ok(inFlight.in_flight_since, 'claimed: in flight');
    assert.deepEqual(inFlight.attempts, []);
    assert.equal(inFlight.next_attempt_at.getTime() - inFlight.in_flight_since.getTime(), LEASE_MS, 'leased for timeoutMs + 20 s');

    first.child.kill('SIGKILL');
    assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });

    // Nothing was recorded: the row is as the claim left it.
    const afterKill = await db.knex('webhook_deliveries').where({ id: inFlight.id }).first();
    assert.equal(afterKill.status, 'pending');
    assert.equal(afterKill.attempt_count, 1);
    assert.deepEqual(afterKill.attempts, []);
    assert.equal(afterKill.in_flight_since.getTime(), inFlight.in_flight_since.getTime());

    return { ws, key, endpointId, secret, eventId: event.id as string, deliveryId: inFlight.id as string, inFlightSince: inFlight.in_flight_since as Date, leaseEnd: inFlight.next_attempt_at as Date };
  }

  /** What must hold once the delivery went through after the crash. */
  function assertDeliveredOnce(k: { eventId: string; deliveryId: string; secret: string }): ReceivedRequest[] {
    const got = receiver.withWebhookId(k.eventId);
    assert.equal(got.length, 2, 'the held request, then the one after the restart');
    assert.equal(answered2xx.get(k.eventId), 1, 'exactly one 2xx for this webhook-id');
    for (const r of got) {
      assert.equal(r.headers['x-topicdesk-delivery'], k.deliveryId, 'the same delivery');
      assert.equal(r.headers['x-topicdesk-event'], 'ticket.created');
      assert.equal(r.body, got[0].body, 'the same body, byte for byte');
      assertSigned(r, k.secret);
    }
    const body = JSON.parse(got[1].body);
    assert.equal(body.id, k.eventId);
    assert.equal(body.event, 'ticket.created');
    return got;
  }

  function assertLog(delivery: any, inFlightSince: Date): void {
    assert.equal(delivery.status, 'succeeded');
    assert.equal(delivery.next_attempt_at, null);
    assert.equal(delivery.attempts.length, 2, JSON.stringify(delivery.attempts));
    assert.deepEqual(delivery.attempts[0], {
      at: inFlightSince.toISOString(), status_code: null, duration_ms: null, error: LOST, response_excerpt: null,
    });
    assert.equal(delivery.attempts[1].status_code, 200);
    assert.equal(delivery.attempts[1].error, null);
    assert.equal(delivery.attempts[1].response_excerpt, 'ok');
  }

  it('is delivered after a restart once its lease has run out (lease expiry simulated in SQL)', async () => {
    const k = await killedMidDelivery('restart');

    // The lease would end 30 s after the claim; rather than wait, make it end now. This is
    // exactly the state the row reaches on its own 30 s later (only the clock differs).
    const moved = await db.knex('webhook_deliveries').where({ id: k.deliveryId, attempt_count: 1 }).update({ next_attempt_at: db.knex.fn.now() });
    assert.equal(moved, 1);

    const second = startMain(env());
    const base = await second.listening();
    await waitFor('the delivery to succeed after the restart', async () => {
      const row = await db.knex('webhook_deliveries').where({ id: k.deliveryId }).first();
      return row.status === 'succeeded' ? row : null;
    }, 30_000);

    assertDeliveredOnce(k);
    const one = await api(base, k.key.auth, 'GET', `/v1/webhook-deliveries/${k.deliveryId}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.event_id, k.eventId);
    assertLog(one.body, k.inFlightSince);
    const row = await db.knex('webhook_deliveries').where({ id: k.deliveryId }).first();
    assert.equal(row.attempt_count, 2, 'claimed twice in all');
    assert.equal(row.in_flight_since, null);

    // A clean stop; nothing more reaches the receiver for this event.
    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    assert.equal(receiver.withWebhookId(k.eventId).length, 2);
    assert.equal(answered2xx.get(k.eventId), 1);
  });

  it('is delivered by another worker once the lease ends (FakeClock past the lease), not a millisecond earlier', async () => {
    const k = await killedMidDelivery('fake clock');
    const clock = new FakeClock(new Date(k.leaseEnd.getTime() - 1));
    const worker = createWebhookWorker({
      db: db.knex, logger: t.deps.logger, clock, config: t.config.webhooks, webhooks: t.services.webhooks, random: () => 0.5,
    });
    try {
      // Still leased to the dead process: nobody may take it yet.
      assert.equal((await worker.drain()).attempts, 0);
      assert.equal(receiver.withWebhookId(k.eventId).length, 1);

      clock.set(new Date(k.inFlightSince.getTime() + 31_000));
      assert.equal((await worker.drain()).attempts, 1);
      assertDeliveredOnce(k);
      const list = await t.request.get(`/v1/webhooks/${k.endpointId}/deliveries`).set('Authorization', k.key.auth).expect(200);
      assert.equal(list.body.items.length, 1, 'one delivery for the event, not a second one');
      assertLog(list.body.items[0], k.inFlightSince);
      assert.equal(list.body.items[0].attempts[1].at, clock.now().toISOString());

      // Nothing left to do: succeeded deliveries are never claimed again.
      clock.advance(7 * 24 * 3600_000);
      assert.equal((await worker.drain()).attempts, 0);
      assert.equal(receiver.withWebhookId(k.eventId).length, 2);
      assert.equal(answered2xx.get(k.eventId), 1);
    } finally {
      await worker.stop();
    }
  });
});
