/**
 * Probe kept as a test (issue 17): a webhook receiver down for six simulated hours while
 * events keep happening. The first three hours it refuses connections, the next three it
 * answers 503 (some with Retry-After); then it is back. A FakeClock walks the retry schedule
 * (SPEC §7: exponential backoff with jitter over about two days; an endpoint is disabled only
 * after disableAfterFailingHours of failure, 120 h by default) from one due time to the next,
 * the worker attempting whatever is due at each.
 *
 * Asserted: every event is delivered after the recovery, none lost (no dead delivery), each
 * webhook-id answered 2xx exactly once, no attempt before its scheduled time (nor left due
 * and unattempted), no attempt answered 2xx before the receiver is back, and the endpoint
 * stays enabled throughout. A real receiver, a real PostgreSQL; seconds of wall time.
 */
import assert from 'node:assert/strict';
import { SYSTEM } from '../../src/kernel/actor.js';
import { createWebhookWorker, type WebhookWorker } from '../../src/webhooks/webhook-worker.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';
import { startReceiver, type Receiver, type Reply } from '../helpers/webhook-receiver.js';

const START = Date.parse('2026-11-21T12:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;
const REFUSING_UNTIL = START + 3 * HOUR;
const RECOVERY = START + 6 * HOUR;
/** An event every 7 minutes through the outage, and one a second before it ends. */
const EVENT_TIMES = [...Array.from({ length: Math.ceil((6 * HOUR) / (7 * MINUTE)) }, (_, i) => START + i * 7 * MINUTE), RECOVERY - 1000];

/** A small seeded generator (mulberry32): real jitter, the same run every time. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface DeliveryState { id: string; event_id: string; status: string; attempt_count: number; next_attempt_at: Date | null; paused: boolean }

describe('webhook receiver down for six hours (fake clock)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const clock = new FakeClock(new Date(START));
  let t: TestApp;
  let rx: Receiver;
  let worker: WebhookWorker;
  before(async () => {
    t = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: true } } });
    rx = await startReceiver();
  });
  after(async () => {
    await worker?.stop();
    await rx?.close();
  });

  it('delivers every event once after recovery, none early, none lost, the endpoint left enabled', async () => {
    const cfg = t.config.webhooks;
    // The probe is about SPEC §7's schedule and disabling rule as configured by default.
    assert.deepEqual(cfg.retryScheduleSeconds, [30, 120, 600, 3600, 10800, 21600, 43200, 86400]);
    assert.ok(cfg.disableAfterFailingHours > 6 + 24, 'SPEC: no disabling within a six-hour outage and its aftermath');
    const schedule = cfg.retryScheduleSeconds.map((s) => s * 1000);

    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const created = await t.request.post('/v1/webhooks').set('Authorization', key.auth).send({ url: rx.url, events: ['contact.created'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const endpointId: string = created.body.id;

    // The receiver: refusing connections, then 503, then 200. It dedupes on webhook-id as SPEC
    // §7 asks of receivers, and remembers, by the fake clock, when it answered 2xx.
    let phase: 'refusing' | 'unavailable' | 'up' = 'refusing';
    const okAt = new Map<string, number[]>();
    rx.respond((req, i): Reply => {
      if (phase !== 'up') return { status: 503, headers: i % 2 ? { 'Retry-After': '900' } : {}, body: 'maintenance' };
      const id = String(req.headers['webhook-id']);
      okAt.set(id, [...(okAt.get(id) ?? []), clock.now().getTime()]);
      return { status: 200, body: 'ok' };
    });
    await rx.down();

    worker = createWebhookWorker({ db: db.knex, logger: t.deps.logger, clock, config: cfg, webhooks: t.services.webhooks, random: seeded(17) });
    const states = async () => new Map<string, DeliveryState>(
      (await db.knex('webhook_deliveries').where({ endpoint_id: endpointId })
        .select('id', 'event_id', 'status', 'attempt_count', 'next_attempt_at', 'paused'))
        .map((r: DeliveryState) => [r.id, r]),
    );
    const open = (d: DeliveryState) => d.status === 'pending' || d.status === 'failed';

    const eventIds: string[] = [];
    const pendingEvents = [...EVENT_TIMES];
    let steps = 0;
    for (;;) {
      const before = await states();
      const nextDue = Math.min(...[...before.values()].filter(open).map((d) => d.next_attempt_at!.getTime()));
      const stops = [pendingEvents[0], nextDue, ...[REFUSING_UNTIL, RECOVERY].filter((at) => at > clock.now().getTime())].filter(Number.isFinite);
      if (stops.length === 0) break;
      const now = Math.min(...stops);
      assert.ok(now >= clock.now().getTime(), 'time only moves forward');
      assert.ok(now < RECOVERY + 48 * HOUR, 'everything is settled within two days of the recovery');
      clock.set(new Date(now));
      steps += 1;

      if (phase === 'refusing' && now >= REFUSING_UNTIL) { await rx.up(); phase = 'unavailable'; }
      if (phase === 'unavailable' && now >= RECOVERY) phase = 'up';
      while (pendingEvents[0] === now) {
        pendingEvents.shift();
        const { contact } = await t.services.contacts.upsert(db.knex, ws.id, { email: `outage${eventIds.length}@example.com` }, SYSTEM);
        eventIds.push((await db.knex('events').where({ contact_id: contact.id, type: 'contact.created' }).first()).id);
      }

      await worker.drain();

      const after = await states();
      for (const d of after.values()) {
        const was = before.get(d.id);
        const attempted = d.attempt_count - (was?.attempt_count ?? 0);
        assert.ok(attempted <= 1, `${d.event_id}: one attempt per due time, not ${attempted}`);
        // None early: an attempt only for a delivery that was due (or fanned out just now).
        if (attempted && was) assert.ok(was.next_attempt_at!.getTime() <= now, `${d.event_id} attempted before its time`);
        // None late: nothing due is left unattempted.
        if (open(d)) assert.ok(d.next_attempt_at!.getTime() > now, `${d.event_id} due but not attempted`);
        assert.equal(d.paused, false);
      }
      if (now < RECOVERY) assert.equal(okAt.size, 0, 'no attempt succeeds while the receiver is down');
    }

    // Every event, exactly one delivery, succeeded; none dead.
    const final = [...(await states()).values()];
    assert.equal(eventIds.length, EVENT_TIMES.length);
    assert.deepEqual(final.map((d) => d.event_id).sort(), [...eventIds].sort());
    assert.deepEqual([...new Set(final.map((d) => d.status))], ['succeeded']);
    // Each webhook-id answered 2xx once, all after the recovery.
    assert.deepEqual([...okAt.keys()].sort(), [...eventIds].sort());
    for (const [id, times] of okAt) {
      assert.equal(times.length, 1, `${id} answered 2xx ${times.length} times`);
      assert.ok(times[0] >= RECOVERY, `${id} delivered before the recovery`);
    }
    // Within the schedule: the last one arrives at most one jittered step (6 h × 1.2) after the
    // recovery, since no delivery can have reached the 12 h step within six hours.
    const lastOk = Math.max(...[...okAt.values()].flat());
    assert.ok(lastOk <= RECOVERY + 1.2 * schedule[5], `last delivery ${(lastOk - RECOVERY) / HOUR} h after the recovery`);

    // The attempt logs agree: each retry waited at least its jittered step (0.8×) after the
    // previous attempt (more after a Retry-After), and no 2xx came before the recovery.
    const logs = await db.knex('webhook_deliveries').where({ endpoint_id: endpointId }).select('event_id', 'attempts');
    const events = new Map((await db.knex('events').whereIn('id', eventIds).select('id', 'created_at')).map((e: any) => [e.id, e.created_at.getTime()]));
    let failedAttempts = 0;
    for (const { event_id: id, attempts } of logs) {
      const at = attempts.map((a: any) => Date.parse(a.at));
      assert.equal(at[0], events.get(id), `${id}: first attempt when the event happened`);
      for (let k = 1; k < at.length; k++) {
        assert.ok(at[k] - at[k - 1] >= Math.round(0.8 * schedule[k - 1]), `${id}: attempt ${k + 1} early (${at[k] - at[k - 1]} ms after the previous)`);
      }
      assert.equal(attempts.at(-1).status_code, 200);
      for (const a of attempts.slice(0, -1)) {
        assert.ok(Date.parse(a.at) < RECOVERY, `${id}: a failure after the recovery`);
        assert.ok(a.status_code === null ? a.error === 'connection refused' : a.status_code === 503, JSON.stringify(a));
      }
      failedAttempts += attempts.length - 1;
    }
    assert.ok(failedAttempts > EVENT_TIMES.length * 2, `the outage was felt: ${failedAttempts} failed attempts`);

    // The endpoint was never disabled; its failure streak ended with the first success.
    const endpoint = await t.request.get(`/v1/webhooks/${endpointId}`).set('Authorization', key.auth).expect(200);
    assert.equal(endpoint.body.enabled, true);
    assert.equal(endpoint.body.disabled_at, null);
    assert.equal(endpoint.body.failing_since, null);
    assert.equal((await db.knex('events').where({ workspace_id: ws.id, type: 'webhook.disabled' })).length, 0);
    assert.ok(steps < 1000, `${steps} steps`);
  });
});
