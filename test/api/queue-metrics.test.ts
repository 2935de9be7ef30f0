/**
 * The service's own Prometheus metrics for the queues (SPEC §6 last point) on /metrics: Telegram
 * sends pending and the oldest one's age, webhook deliveries pending and dead, updates pending
 * (one query per scrape), the SLA sweep's duration and job failures (kept in memory by this
 * replica, reported by the sweep's onSwept and the scheduler's onOutcome).
 */
import assert from 'node:assert/strict';
import supertest from 'supertest';
import { createApp } from '../../src/app.js';
import { createOpsMetrics } from '../../src/http/metrics.js';
import { createScheduler } from '../../src/jobs/scheduler.js';
import { slaSweepJob } from '../../src/sla/sla-sweep-job.js';
import { deliveryQueue } from '../../src/webhooks/delivery-queue.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const NOW = '2026-12-04T12:00:00.000Z';
const ago = (s: number) => new Date(Date.parse(NOW) - s * 1000);

/** `name{labels} value` lines of the Prometheus text format, by `name{labels}`. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

describe('queue gauges on /metrics', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(NOW);
  const ops = createOpsMetrics();
  let t: TestApp;
  let request: supertest.Agent;
  before(() => {
    t = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: true } } });
    request = supertest.agent(createApp(t.deps, { services: t.services, ops }).callback());
  });

  const scrape = async () => {
    const res = await request.get('/metrics');
    assert.equal(res.status, 200);
    return parse(res.text);
  };

  it('reads 0 on empty queues, in one query per scrape', async () => {
    let queries = 0;
    const count = () => { queries++; };
    db.knex.on('query', count);
    let m: Map<string, number>;
    try {
      m = await scrape();
    } finally {
      db.knex.removeListener('query', count);
    }
    assert.equal(queries, 1);
    for (const name of ['topicdesk_telegram_sends_pending', 'topicdesk_telegram_sends_oldest_pending_seconds', 'topicdesk_webhook_deliveries_pending',
      'topicdesk_webhook_deliveries_dead', 'topicdesk_telegram_updates_pending']) assert.equal(m.get(name), 0, name);
  });

  it('counts what is waiting after seeding rows: sends, the oldest send\'s age, deliveries pending and dead, updates', async () => {
    const account = await makeAccount(db.knex, { supportChatId: null });
    const send = (status: string, createdAt: Date) => ({
      workspace_id: 'ws_default', account_id: account.id, chat_id: 42, op: 'send_message', payload: '{}', status, next_attempt_at: createdAt, created_at: createdAt,
    });
    await db.knex('telegram_sends').insert([
      send('sent', ago(3600)), send('cancelled', ago(1800)), // done: not pending, however old
      send('sending', ago(90)), send('queued', ago(30)), send('queued', ago(5)),
    ]);
    const update = (id: number, processed: boolean) => ({
      account_id: account.id, update_id: id, chat_id: 42, payload: '{}', received_at: ago(10), next_attempt_at: ago(10), processed_at: processed ? ago(1) : null,
    });
    await db.knex('telegram_updates').insert([update(1, true), update(2, false), update(3, false)]);

    // Deliveries: an endpoint and four tickets' events, then one dead, one succeeded, one failed (a retry due), one pending.
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: true });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const hook = await request.post('/v1/webhooks').set('Authorization', key.auth).send({ url: 'http://127.0.0.1:9/hook', events: ['ticket.created'] });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    for (let i = 0; i < 4; i++) {
      const r = await request.post('/v1/tickets').set('Authorization', key.auth).send({ contact: { telegram_user_id: 5000 + i, first_name: 'Sam' }, subject: 'Hi' });
      assert.equal(r.status, 201);
    }
    await deliveryQueue.fanOut(db.knex, 100, clock.now()); // what the webhook worker does first
    const ids = (await db.knex('webhook_deliveries').where({ workspace_id: ws.id }).orderBy('id').select('id')).map((r) => r.id);
    assert.equal(ids.length, 4);
    await db.knex('webhook_deliveries').where({ id: ids[0] }).update({ status: 'dead' });
    await db.knex('webhook_deliveries').where({ id: ids[1] }).update({ status: 'succeeded' });
    await db.knex('webhook_deliveries').where({ id: ids[2] }).update({ status: 'failed' });

    const m = await scrape();
    assert.equal(m.get('topicdesk_telegram_sends_pending'), 3);
    assert.equal(m.get('topicdesk_telegram_sends_oldest_pending_seconds'), 90);
    assert.equal(m.get('topicdesk_webhook_deliveries_pending'), 2);
    assert.equal(m.get('topicdesk_webhook_deliveries_dead'), 1);
    assert.equal(m.get('topicdesk_telegram_updates_pending'), 2);

    clock.set(new Date(Date.parse(NOW) + 60_000));
    assert.equal((await scrape()).get('topicdesk_telegram_sends_oldest_pending_seconds'), 150, 'the age grows with the clock');
  });

  it('the last SLA sweep\'s duration and job failures by job', async () => {
    let swept = -1;
    const jobs = [
      slaSweepJob({ schedule: '*/30 * * * * *', sla: t.services.sla, onSwept: (ms) => { swept = ms; ops.slaSwept(ms); } }),
      { name: 'broken', schedule: '0 * * * * *', async run() { throw new Error('planted'); } },
    ];
    const scheduler = createScheduler({ db: db.knex, logger: t.deps.logger, jobs, onOutcome: ops.jobFinished });
    try {
      assert.equal(await scheduler.runTick('sla-sweep', new Date(NOW)), 'ran');
      assert.equal(await scheduler.runTick('broken', new Date(NOW)), 'failed');
      assert.equal(await scheduler.runTick('broken', ago(-60)), 'failed');
      assert.equal(await scheduler.runTick('broken', ago(-60)), 'already-ran', 'a tick already run is no failure');
    } finally {
      await scheduler.stop();
    }
    const m = await scrape();
    assert.ok(swept >= 0);
    assert.equal(m.get('topicdesk_sla_sweep_duration_seconds'), swept / 1000);
    assert.equal(m.get('topicdesk_job_failures_total{job="broken"}'), 2);
    assert.equal(m.get('topicdesk_job_failures_total{job="sla-sweep"}'), 0);
  });
});
