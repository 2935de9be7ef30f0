/**
 * The daily digest (SPEC §6) on a real PostgreSQL with a fake clock, run as the scheduler runs
 * it (runTick): not before digest_time, once per local day with two replicas and repeated ticks
 * (also a replica whose check passed while another was taking the day), the next day again,
 * a time zone whose date differs from UTC, nothing without a lead chat or in a sandbox, and the
 * content: the figures of the metrics API for yesterday and the most overdue topics' links.
 */
import assert from 'node:assert/strict';
import { createScheduler, type Scheduler } from '../../src/jobs/scheduler.js';
import { digestJob } from '../../src/digest/digest-job.js';
import { duration, formatDigest, topicLink } from '../../src/digest/digest.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const LEAD = -1009876543210;
const GROUP = -1001234567890;
const MIN = 60_000;

describe('daily digest', () => {
  const db = useTestDatabase();
  const clock = new FakeClock('2026-12-04T06:00:00.000Z');
  let t: TestApp;
  let replicas: Scheduler[] = [];
  before(() => { t = createTestApp(db.knex, { clock }); });
  beforeEach(() => {
    replicas = ['a', 'b'].map((runnerId) => createScheduler({
      db: db.knex, logger: t.deps.logger, runnerId, jobs: [digestJob({ schedule: '15 * * * * *', digest: t.services.digest })],
    }));
  });
  afterEach(async () => { await Promise.all(replicas.map((r) => r.stop())); });

  /** A live workspace (unless told) with a bot that has a token, a key, and the settings given. */
  async function desk(settings: Record<string, unknown>, opts: { sandbox?: boolean } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: !!opts.sandbox });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const account = await makeAccount(db.knex, { workspaceId: ws.id, supportChatId: GROUP, isDefault: true });
    await db.knex('accounts').where({ id: account.id }).update({ bot_token: `${700000 + Math.floor(Math.random() * 1e5)}:AAtoken` });
    const call = async (method: 'get' | 'post' | 'patch', path: string, body?: unknown) => {
      const r = t.request[method](path).set('Authorization', key.auth);
      const res = (await (body === undefined ? r : r.send(body as object))) as unknown as { status: number; body: any };
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    await call('patch', '/v1/workspace', settings);
    const digests = () => db.knex('telegram_sends').where({ workspace_id: ws.id, op: 'send_message' }).orderBy('id');
    return { ws, key, account, call, digests };
  }

  /** One tick on both replicas at once (each names the tick alike, as cron does). */
  async function tick(at: string) {
    clock.set(at);
    return Promise.all(replicas.map((r) => r.runTick('digest', clock.now())));
  }

  it('not before digest_time; once per local day across two replicas and repeated ticks; the next day again', async () => {
    const d = await desk({ timezone: 'Europe/Berlin', digest_time: '09:00', lead_chat_id: LEAD });
    await tick('2026-12-04T07:59:15.000Z'); // 08:59 in Berlin
    assert.equal((await d.digests()).length, 0, 'not before 09:00 local');

    const outcomes = await tick('2026-12-04T08:00:15.000Z'); // 09:00 in Berlin
    assert.equal(outcomes.filter((o) => o === 'ran').length, 1, JSON.stringify(outcomes));
    let sent = await d.digests();
    assert.equal(sent.length, 1);
    assert.deepEqual([Number(sent[0].chat_id), sent[0].account_id, sent[0].status], [LEAD, d.account.id, 'queued']);
    assert.match(sent[0].payload.text, /^📊 Daily digest for Thu 3 Dec 2026 \(Europe\/Berlin\)\n/);
    assert.equal(sent[0].payload.parse_mode, undefined, 'plain text');

    // Later ticks the same day, and a late replica running its own (different) tick.
    for (const at of ['2026-12-04T08:01:15.000Z', '2026-12-04T12:00:15.000Z', '2026-12-04T22:59:15.000Z']) await tick(at);
    assert.equal(await replicas[1].runTick('digest', new Date('2026-12-04T12:00:16.000Z')), 'ran');
    assert.equal((await d.digests()).length, 1, 'once that day');

    await tick('2026-12-04T23:00:15.000Z'); // 00:00 on the 5th in Berlin: a new day, but before 09:00
    assert.equal((await d.digests()).length, 1);
    await tick('2026-12-05T08:00:15.000Z');
    sent = await d.digests();
    assert.equal(sent.length, 2, 'the next day again');
    assert.match(sent[1].payload.text, /^📊 Daily digest for Fri 4 Dec 2026 /);
    const days = await db.knex.raw(`SELECT to_char(local_date, 'YYYY-MM-DD') AS d FROM digests WHERE workspace_id = ? ORDER BY 1`, [d.ws.id]);
    assert.deepEqual(days.rows.map((r: any) => r.d), ['2026-12-04', '2026-12-05']);
  });

  it('queues nothing once its signal has aborted (stopping, or its lock lost); the next tick sends the day\'s digest', async () => {
    const d = await desk({ timezone: 'UTC', digest_time: '06:00', lead_chat_id: LEAD });
    clock.set('2026-12-04T06:30:00.000Z');
    const stop = new AbortController();
    stop.abort();
    assert.deepEqual(await t.services.digest.sendDue(db.knex, clock.now(), t.deps.logger, stop.signal), { queued: 0 });
    assert.equal((await d.digests()).length, 0);
    await t.services.digest.sendDue(db.knex, clock.now(), t.deps.logger);
    assert.equal((await d.digests()).length, 1);
  });

  it('a replica whose check passed while another was taking the day queues nothing (the primary key decides)', async () => {
    const d = await desk({ timezone: 'UTC', digest_time: '06:00', lead_chat_id: LEAD });
    clock.set('2026-12-04T06:30:00.000Z');
    // Another replica has inserted the day's row and not committed yet: our check cannot see it.
    const other = await db.knex.transaction();
    try {
      await other('digests').insert({ workspace_id: d.ws.id, local_date: '2026-12-04', queued_at: clock.now() });
      const ours = t.services.digest.sendDue(db.knex, clock.now(), t.deps.logger);
      // Wait until our claim blocks on the other transaction's row.
      for (let i = 0; i < 500; i++) {
        const [{ n }] = (await db.knex.raw(`SELECT count(*) AS n FROM pg_locks WHERE NOT granted`)).rows;
        if (Number(n) > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await other.commit();
      assert.deepEqual(await ours, { queued: 0 });
    } finally {
      if (!other.isCompleted()) await other.rollback();
    }
    assert.equal((await d.digests()).length, 0);
  });

  it('time zone: a workspace whose local date is ahead of UTC gets the digest of its own yesterday', async () => {
    const d = await desk({ timezone: 'Pacific/Auckland', digest_time: '08:00', lead_chat_id: LEAD }); // UTC+13 in December
    const contact = await makeReachableContact(db.knex, t.services, { workspaceId: d.ws.id, accountId: d.account.id });
    for (const at of ['2026-12-03T10:30:00.000Z', '2026-12-04T10:30:00.000Z', '2026-12-04T11:30:00.000Z']) { // 23:30 on the 3rd, 23:30 on the 4th, 00:30 on the 5th
      clock.set(at);
      await d.call('post', '/v1/tickets', { contact_id: contact.id, subject: 'Hi' });
    }
    await tick('2026-12-04T18:59:15.000Z'); // 07:59 on the 5th in Auckland
    assert.equal((await d.digests()).length, 0);
    await tick('2026-12-04T19:00:15.000Z'); // 08:00 on the 5th in Auckland, still the 4th in UTC
    const [sent] = await d.digests();
    assert.match(sent.payload.text, /^📊 Daily digest for Fri 4 Dec 2026 \(Pacific\/Auckland\)\nTickets: 1 new · 0 resolved\n/, 'only the ticket of the 4th, local time');
    const [row] = await db.knex.raw(`SELECT to_char(local_date, 'YYYY-MM-DD') AS d FROM digests WHERE workspace_id = ?`, [d.ws.id]).then((r) => r.rows);
    assert.equal(row.d, '2026-12-05', 'recorded for the local date it was sent on');
  });

  it('no lead chat, no digest time, or a sandbox workspace: nothing queued, nothing recorded', async () => {
    const noLead = await desk({ timezone: 'UTC', digest_time: '06:00' });
    const noTime = await desk({ timezone: 'UTC', lead_chat_id: LEAD });
    const sandbox = await desk({ timezone: 'UTC', digest_time: '06:00', lead_chat_id: LEAD }, { sandbox: true });
    await tick('2026-12-04T07:00:15.000Z');
    for (const d of [noLead, noTime, sandbox]) {
      assert.equal((await d.digests()).length, 0);
      assert.equal((await db.knex('digests').where({ workspace_id: d.ws.id })).length, 0);
    }
    assert.equal((await db.knex('telegram_sends').where({ workspace_id: sandbox.ws.id })).length, 0, 'a sandbox never queues');
  });

  it('content: yesterday\'s figures as the metrics API gives them, the backlog now and the five most overdue topics with links', async () => {
    const d = await desk({ timezone: 'Europe/Berlin', digest_time: '08:30', lead_chat_id: LEAD });
    await d.call('post', '/v1/sla-policies', {
      name: 'Default', is_default: true, warn_at_percent: 80, pause_while_waiting_on_customer: true,
      targets: { normal: { first_response_minutes: 60, resolution_minutes: 240 } },
    });
    const contact = await makeReachableContact(db.knex, t.services, { workspaceId: d.ws.id, accountId: d.account.id });
    // Yesterday (3 Dec, Berlin): nine tickets from 08:00 UTC, ten minutes apart.
    const T = Date.parse('2026-12-03T08:00:00.000Z');
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) {
      clock.set(new Date(T + i * 10 * MIN));
      ids.push((await d.call('post', '/v1/tickets', { contact_id: contact.id, subject: i === 0 ? `Printer\non fire ${'x'.repeat(150)}` : `Problem ${i}` })).id);
    }
    // Tickets 7 and 8 answered in 5 and 95 minutes (the second one breached); 8 resolved.
    // (the reply reaching the customer is what counts: the send worker reports it so)
    const delivered = (i: number) => t.services.tickets.recordAgentReply(db.knex, d.ws.id, ids[i], clock.now());
    clock.set(new Date(T + 75 * MIN));
    await delivered(7);
    clock.set(new Date(T + 175 * MIN));
    await t.services.sla.sweep(db.knex, clock.now());
    await delivered(8);
    await d.call('post', `/v1/tickets/${ids[8]}/status`, { status: 'resolved' });
    // The day before and today do not count; topics for the overdue ones (0..6).
    clock.set('2026-12-02T12:00:00.000Z');
    await d.call('post', '/v1/tickets', { contact_id: contact.id, subject: 'Old' });
    for (let i = 0; i < 7; i++) await db.knex('tickets').where({ id: ids[i] }).update({ topic_chat_id: GROUP, topic_thread_id: 100 + i });

    await tick('2026-12-04T07:30:15.000Z'); // 08:30 in Berlin
    const sweepNow = clock.now();
    const [sent] = await d.digests();
    const text: string = sent.payload.text;

    const range = `from=2026-12-02T23:00:00.000Z&to=2026-12-03T23:00:00.000Z`;
    const fr = (await d.call('get', `/v1/metrics/first-response?${range}`)).overall;
    const res = (await d.call('get', `/v1/metrics/resolution?${range}`)).overall;
    const sla = await d.call('get', `/v1/metrics/sla?${range}`);
    const backlog = await d.call('get', '/v1/metrics/backlog');
    assert.deepEqual([fr.count, res.count, backlog.total], [2, 1, 9], 'the seeded figures');
    const lines = text.split('\n');
    assert.equal(lines[1], `Tickets: 9 new · ${res.count} resolved`);
    assert.equal(lines[2], `First response: p50 ${duration(fr.p50_seconds)} · p90 ${duration(fr.p90_seconds)} (${fr.count} answered)`);
    const target = (x: any) => (x.compliance_percent === null ? '—' : `${x.compliance_percent}% (${x.met} of ${x.due})`);
    const breached = sla.targets.first_response.breached + sla.targets.next_response.breached + sla.targets.resolution.breached;
    assert.ok(breached > 0);
    assert.equal(lines[3], `SLA: ${breached} breached · first response ${target(sla.targets.first_response)} · next response ${target(sla.targets.next_response)} · resolution ${target(sla.targets.resolution)}`);
    assert.equal(lines[4], `Backlog now: ${backlog.total} open (${backlog.unassigned} unassigned) · at risk ${sla.at_risk_now} · breached and open ${sla.breached_open_now}`);

    // The five most overdue: the older day's ticket (no topic yet: no link), then 0..3 with their topics' links.
    assert.equal(lines[5], 'Most overdue:');
    const overdue = lines.slice(6);
    assert.equal(overdue.length, 9, text);
    assert.match(overdue[0], /^#\d+ Old — 42h 30m overdue$/);
    for (let i = 0; i < 4; i++) {
      const tk = await d.call('get', `/v1/tickets/${ids[i]}`);
      const late = duration((sweepNow.getTime() - Date.parse(tk.sla.first_response_due_at)) / 1000);
      assert.match(overdue[1 + 2 * i], new RegExp(`^#${tk.number} .+ — ${late} overdue$`));
      assert.equal(overdue[2 + 2 * i], `https://t.me/c/1234567890/${100 + i}`);
    }
    assert.match(overdue[1], /^#\d+ Printer on fire x+… — /, 'the subject on one line, cut');
    assert.ok(overdue[1].length < 120);
  });

  it('the formatter keeps within 4096 characters and makes topic links only for supergroups', () => {
    const long = formatDigest({
      period: 'yesterday', localDate: '2026-12-03', timezone: 'UTC', now: new Date('2026-12-04T08:00:00Z'), created: 1, resolved: 0,
      firstResponse: { count: 0, p50Seconds: null, p90Seconds: null },
      sla: { first_response: { due: 0, met: 0, breached: 0, compliance_percent: null }, next_response: { due: 0, met: 0, breached: 0, compliance_percent: null }, resolution: { due: 0, met: 0, breached: 0, compliance_percent: null } },
      backlog: { total: 0, unassigned: 0, atRisk: 0, breachedOpen: 0 },
      overdue: Array.from({ length: 200 }, (_, i) => ({ number: i, subject: 'y'.repeat(500), slaDueAt: new Date('2026-12-01T00:00:00Z'), topicChatId: GROUP, topicThreadId: i })),
    });
    assert.equal(long.length, 4096);
    assert.equal(topicLink(-1001234567890, 7), 'https://t.me/c/1234567890/7');
    assert.equal(topicLink(-123456, 7), null);
  });
});
