/**
 * SLA clocks end to end on a real PostgreSQL with a fake clock (SPEC §5): which policy a ticket
 * gets, due times at creation, a first response met in time, the sweep recording each warning
 * and breach exactly once (also with two sweeps at once), pause and resume while waiting on the
 * customer, reopen, a priority change mid-way, next-response cycles, a target met late,
 * business hours across a weekend and a holiday, the at_risk / breached filters, sort=sla_due,
 * the events, and the coalesced notice in the topic.
 */
import assert from 'node:assert/strict';
import { createScheduler } from '../../src/jobs/scheduler.js';
import { slaSweepJob } from '../../src/sla/sla-sweep-job.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const T0 = '2026-12-01T10:00:00.000Z'; // a Tuesday
const MIN = 60_000;
const at = (minutes: number) => new Date(Date.parse(T0) + minutes * MIN).toISOString();

describe('SLA clocks', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(T0);
  let t: TestApp;
  let seq = 0;
  before(() => { t = createTestApp(db.knex, { clock }); });
  beforeEach(() => clock.set(T0));

  /** A workspace (sandbox unless told) with a key, a default policy unless told, and helpers. */
  async function desk(opts: { live?: boolean; policy?: Record<string, unknown> | null } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: !opts.live });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const call = async (method: 'get' | 'post' | 'patch', path: string, body?: unknown) => {
      const r = t.request[method](path).set('Authorization', key.auth);
      return (await (body === undefined ? r : r.send(body as object))) as unknown as { status: number; body: any };
    };
    const ok = async (method: 'get' | 'post' | 'patch', path: string, body?: unknown) => {
      const res = await call(method, path, body);
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const policy = (body: Record<string, unknown> = {}) => ok('post', '/v1/sla-policies', {
      name: `Policy ${++seq}`, is_default: true, warn_at_percent: 80, pause_while_waiting_on_customer: true,
      targets: { normal: { first_response_minutes: 60, next_response_minutes: 30, resolution_minutes: 240 }, urgent: { first_response_minutes: 15, resolution_minutes: 60 } },
      ...body,
    });
    if (opts.policy !== null) await policy(opts.policy ?? {});
    const ticket = (body: Record<string, unknown> = {}) => ok('post', '/v1/tickets', { contact: { telegram_user_id: 990_000_000 + ++seq, first_name: 'Sam' }, subject: 'Help', ...body });
    const get = (id: string) => ok('get', `/v1/tickets/${id}`);
    const reply = (id: string) => ok('post', `/v1/tickets/${id}/messages`, { text: 'On it' });
    const status = (id: string, s: string) => ok('post', `/v1/tickets/${id}/status`, { status: s });
    const customerWrites = async (id: string) => {
      await t.services.messages.recordInbound(db.knex, ws, id, { text: 'Any news?', accountId: null, chatId: null });
    };
    const sweep = (minutes: number) => { clock.set(at(minutes)); return t.services.sla.sweep(db.knex, clock.now()); };
    const eventsOf = async (id: string, type: string) => db.knex('events').where({ ticket_id: id, type }).orderBy('id');
    return { ws, key, call, ok, policy, ticket, get, reply, status, customerWrites, sweep, eventsOf };
  }

  describe('which policy and the due times at creation', () => {
    it('the workspace default: first response and resolution due from creation; next response not running', async () => {
      const d = await desk();
      const tk = await d.ticket();
      assert.equal(tk.sla.first_response_due_at, at(60));
      assert.equal(tk.sla.resolution_due_at, at(240));
      assert.equal(tk.sla.next_response_due_at, null);
      assert.deepEqual([tk.sla.paused, tk.sla.warnings, tk.sla.breaches], [false, [], []]);
      assert.match(tk.sla.policy_id, /^sla_/);
      assert.deepEqual((await d.get(tk.id)).sla, tk.sla);
    });

    it('a team\'s policy beats the default; no policy (or no target for the priority) leaves the clocks off', async () => {
      const d = await desk();
      const team = await d.ok('post', '/v1/teams', { name: 'VIP' });
      const vip = await d.policy({ is_default: false, team_id: team.id, targets: { normal: { first_response_minutes: 5, resolution_minutes: 30 } } });
      const inTeam = await d.ticket({ team_id: team.id });
      assert.deepEqual([inTeam.sla.policy_id, inTeam.sla.first_response_due_at], [vip.id, at(5)]);
      const low = await d.ticket({ priority: 'low' });
      assert.deepEqual(low.sla, { policy_id: null, first_response_due_at: null, next_response_due_at: null, resolution_due_at: null, paused: false, warnings: [], breaches: [] });
      const none = await desk({ policy: null });
      assert.equal((await none.ticket()).sla.policy_id, null);
    });

    it('moving to a team with its own policy recomputes from creation; time already elapsed counts', async () => {
      const d = await desk();
      const team = await d.ok('post', '/v1/teams', { name: 'Fast' });
      await d.policy({ is_default: false, team_id: team.id, targets: { normal: { first_response_minutes: 20, resolution_minutes: 100 } } });
      const tk = await d.ticket();
      clock.set(at(10));
      const moved = await d.ok('patch', `/v1/tickets/${tk.id}`, { team_id: team.id });
      assert.equal(moved.sla.first_response_due_at, at(20));
      assert.equal(moved.sla.resolution_due_at, at(100));
    });
  });

  describe('the sweep', () => {
    it('stops before its next batch once its signal has aborted (stopping, or its lock lost): what is left is the next sweep\'s', async () => {
      const d = await desk();
      const tks = [await d.ticket(), await d.ticket(), await d.ticket()];
      clock.set(at(61));
      const stop = new AbortController();
      stop.abort();
      assert.deepEqual(await t.services.sla.sweep(db.knex, clock.now(), { batchSize: 1, signal: stop.signal }), { tickets: 0, marks: 0 });
      assert.equal((await db.knex('sla_marks').whereIn('ticket_id', tks.map((x) => x.id))).length, 0);
      await t.services.sla.sweep(db.knex, clock.now(), { batchSize: 1, maxBatches: 1000, signal: new AbortController().signal });
      const marked = await db.knex('sla_marks').whereIn('ticket_id', tks.map((x) => x.id)).distinct('ticket_id');
      assert.equal(marked.length, 3, 'the next sweep takes them all, a batch at a time');
    });

    it('records the warning at warn_at_percent and the breach at the due time, once each, with events and filters', async () => {
      const d = await desk();
      const tk = await d.ticket();
      await d.sweep(47);
      assert.deepEqual((await d.get(tk.id)).sla.warnings, []);
      await d.sweep(48);
      const marks = () => db.knex('sla_marks').where({ ticket_id: tk.id });
      assert.equal((await marks()).length, 1);
      await d.sweep(50);
      assert.equal((await marks()).length, 1, 'a second sweep records nothing new');
      let now = await d.get(tk.id);
      assert.deepEqual(now.sla.warnings, [{ target: 'first_response', warned_at: at(48) }]);
      assert.deepEqual((await d.ok('get', '/v1/tickets?sla=at_risk')).items.map((x: any) => x.id), [tk.id]);
      assert.deepEqual((await d.ok('get', '/v1/tickets?sla=breached')).items, []);
      const warning = await d.eventsOf(tk.id, 'sla.warning');
      assert.equal(warning.length, 1);
      assert.deepEqual(warning[0].details, { target: 'first_response', due_at: at(60) });
      assert.deepEqual(warning[0].payload.sla.warnings, [{ target: 'first_response', warned_at: at(48) }], 'data is the ticket as it is now');

      await d.sweep(61);
      await d.sweep(62);
      now = await d.get(tk.id);
      assert.deepEqual(now.sla.breaches, [{ target: 'first_response', breached_at: at(60) }]);
      assert.equal((await d.eventsOf(tk.id, 'sla.breached')).length, 1);
      assert.deepEqual((await d.ok('get', '/v1/tickets?sla=breached')).items.map((x: any) => x.id), [tk.id]);
      assert.deepEqual((await d.ok('get', '/v1/tickets?sla=at_risk')).items, [], 'breached is no longer at risk');
      assert.equal((await d.eventsOf(tk.id, 'sla.warning')).length, 1);
    });

    it('a first response in time is never breached; resolution runs on', async () => {
      const d = await desk({ policy: { pause_while_waiting_on_customer: false } });
      const tk = await d.ticket();
      clock.set(at(30));
      await d.reply(tk.id);
      await d.sweep(100);
      const now = await d.get(tk.id);
      assert.deepEqual(now.sla.breaches, []);
      assert.deepEqual(now.sla.warnings, []);
      assert.equal(now.sla.first_response_due_at, at(60), 'the due time it had stays visible');
      await d.sweep(240);
      assert.deepEqual((await d.get(tk.id)).sla.breaches.map((b: any) => b.target), ['resolution']);
    });

    it('a target met late is breached at its due time even before a sweep saw it', async () => {
      const d = await desk();
      const tk = await d.ticket();
      clock.set(at(75));
      await d.reply(tk.id);
      const now = await d.get(tk.id);
      assert.deepEqual(now.sla.breaches, [{ target: 'first_response', breached_at: at(60) }]);
      await d.sweep(80);
      assert.equal((await d.eventsOf(tk.id, 'sla.breached')).length, 1);
    });

    it('two sweeps at once record every mark once', async () => {
      const d = await desk();
      const ids = [];
      for (let i = 0; i < 30; i++) ids.push((await d.ticket()).id);
      clock.set(at(61));
      await Promise.all([t.services.sla.sweep(db.knex, clock.now(), { batchSize: 7 }), t.services.sla.sweep(db.knex, clock.now(), { batchSize: 7 })]);
      const marks = await db.knex('sla_marks').whereIn('ticket_id', ids);
      assert.equal(marks.length, 60, 'a warning and a breach per ticket');
      // Whatever one sweep skipped (locked by the other) is taken by the next.
      await t.services.sla.sweep(db.knex, clock.now());
      const events = await db.knex('events').whereIn('ticket_id', ids).whereIn('type', ['sla.warning', 'sla.breached']);
      assert.equal(events.length, 60);
      assert.equal((await db.knex('sla_clocks').whereIn('ticket_id', ids).whereNotNull('check_at').where('check_at', '<=', clock.now())).length, 0);
    });
  });

  describe('the sweep job', () => {
    it('two schedulers (two replicas) on one database: each tick runs once, every mark is recorded once', async () => {
      const d = await desk();
      const ids = [];
      for (let i = 0; i < 12; i++) ids.push((await d.ticket()).id);
      const replicas = ['a', 'b'].map((runnerId) => createScheduler({
        db: db.knex, logger: t.deps.logger, runnerId, jobs: [slaSweepJob({ schedule: '*/30 * * * * *', sla: t.services.sla })],
      }));
      try {
        for (const minutes of [49, 49.5, 61, 61.5]) {
          clock.set(at(minutes));
          const outcomes = await Promise.all(replicas.map((r) => r.runTick('sla-sweep', clock.now())));
          assert.equal(outcomes.filter((o) => o === 'ran').length, 1, JSON.stringify(outcomes));
        }
      } finally {
        await Promise.all(replicas.map((r) => r.stop()));
      }
      const marks = await db.knex('sla_marks').whereIn('ticket_id', ids);
      assert.equal(marks.length, 24);
      assert.equal((await db.knex('events').whereIn('ticket_id', ids).where('type', 'sla.warning')).length, 12);
      assert.equal((await db.knex('events').whereIn('ticket_id', ids).where('type', 'sla.breached')).length, 12);
    });
  });

  describe('pause, resume, reopen and priority', () => {
    it('waiting on the customer pauses resolution; the due time moves later by the paused time', async () => {
      const d = await desk();
      const tk = await d.ticket();
      clock.set(at(20));
      await d.reply(tk.id); // → waiting_on_customer
      let now = await d.get(tk.id);
      assert.equal(now.status, 'waiting_on_customer');
      assert.deepEqual([now.sla.paused, now.sla.resolution_due_at], [true, null]);
      await d.sweep(300);
      assert.deepEqual((await d.get(tk.id)).sla.breaches, [], 'no breach while paused');
      clock.set(at(80));
      await d.customerWrites(tk.id); // → open again: 60 minutes paused
      now = await d.get(tk.id);
      assert.equal(now.sla.paused, false);
      assert.equal(now.sla.resolution_due_at, at(300));
      assert.equal(now.sla.first_response_due_at, at(60), 'the first-response clock never pauses');
    });

    it('without pause_while_waiting_on_customer the clock runs on', async () => {
      const d = await desk({ policy: { pause_while_waiting_on_customer: false } });
      const tk = await d.ticket();
      clock.set(at(20));
      await d.reply(tk.id);
      const now = await d.get(tk.id);
      assert.deepEqual([now.sla.paused, now.sla.resolution_due_at], [false, at(240)]);
    });

    it('a reopen continues the same resolution clock; breaches already recorded stay', async () => {
      const d = await desk();
      const tk = await d.ticket();
      clock.set(at(100));
      await d.status(tk.id, 'resolved');
      clock.set(at(200));
      const reopened = await d.status(tk.id, 'open');
      assert.equal(reopened.sla.resolution_due_at, at(340), '140 minutes were left');
      assert.equal(reopened.sla.first_response_due_at, at(60));
      await d.sweep(400);
      const now = await d.get(tk.id);
      assert.deepEqual(now.sla.breaches, [
        { target: 'first_response', breached_at: at(60) }, // nobody answered before it was resolved
        { target: 'resolution', breached_at: at(340) },
      ]);
    });

    it('a priority change mid-way recomputes from creation; a due time already past is breached then', async () => {
      const d = await desk();
      const tk = await d.ticket();
      clock.set(at(30));
      const urgent = await d.ok('patch', `/v1/tickets/${tk.id}`, { priority: 'urgent' });
      assert.equal(urgent.sla.first_response_due_at, at(15));
      assert.equal(urgent.sla.resolution_due_at, at(60));
      const updated = await d.eventsOf(tk.id, 'ticket.updated');
      assert.equal(updated.at(-1).payload.sla.first_response_due_at, at(15), 'the change\'s event carries the new due times');
      await d.sweep(31);
      assert.deepEqual((await d.get(tk.id)).sla.breaches, [{ target: 'first_response', breached_at: at(15) }]);
    });
  });

  describe('next response', () => {
    it('starts with a customer message after an agent replied, stops at the next reply; each wait is a cycle', async () => {
      const d = await desk({ policy: { pause_while_waiting_on_customer: false } });
      const tk = await d.ticket();
      clock.set(at(5));
      await d.customerWrites(tk.id);
      assert.equal((await d.get(tk.id)).sla.next_response_due_at, null, 'no agent has answered yet: first response runs');
      clock.set(at(10));
      await d.reply(tk.id);
      clock.set(at(20));
      await d.customerWrites(tk.id);
      assert.equal((await d.get(tk.id)).sla.next_response_due_at, at(50));
      clock.set(at(40));
      await d.reply(tk.id);
      assert.equal((await d.get(tk.id)).sla.next_response_due_at, null);
      await d.sweep(60);
      assert.deepEqual((await d.get(tk.id)).sla.breaches, []);
      clock.set(at(100));
      await d.customerWrites(tk.id);
      await d.sweep(131);
      await d.sweep(140);
      const marks = await db.knex('sla_marks').where({ ticket_id: tk.id, target: 'next_response' }).orderBy('kind');
      assert.deepEqual(marks.map((m: any) => [m.kind, m.cycle]), [['breach', 2], ['warning', 2]]);
      clock.set(at(150));
      await d.reply(tk.id);
      clock.set(at(160));
      await d.customerWrites(tk.id);
      await d.sweep(200);
      const all = await db.knex('sla_marks').where({ ticket_id: tk.id, target: 'next_response', kind: 'breach' });
      assert.deepEqual(all.map((m: any) => m.cycle).sort(), [2, 3], 'breached again in the next cycle, once');
    });
  });

  describe('business hours', () => {
    it('counts working time only: Thursday 16:30 + 60 min with Friday a holiday → Monday 09:30 (Europe/Berlin)', async () => {
      const d = await desk({ policy: {
        business_hours: { timezone: 'Europe/Berlin', weekly: [1, 2, 3, 4, 5].map((day) => ({ day, start: '09:00', end: '17:00' })), holidays: ['2026-12-04'] },
      } });
      clock.set('2026-12-03T15:30:00.000Z'); // Thursday 16:30 in Berlin
      const tk = await d.ticket();
      assert.equal(tk.sla.first_response_due_at, '2026-12-07T08:30:00.000Z'); // Monday 09:30 in Berlin
      assert.equal(tk.sla.resolution_due_at, '2026-12-07T11:30:00.000Z'); // 30 min Thu + 3.5 h Mon
    });
  });

  describe('listing and the topic', () => {
    it('sort=sla_due: earliest pending due time first, tickets without one last', async () => {
      const d = await desk();
      const a = await d.ticket();
      clock.set(at(1));
      const b = await d.ticket({ priority: 'urgent' });
      const c = await d.ticket({ priority: 'low' });
      const order = (await d.ok('get', '/v1/tickets?sort=sla_due')).items.map((x: any) => x.id);
      assert.deepEqual(order, [b.id, a.id, c.id]);
    });

    it('a live ticket with a topic gets one notice for a burst of marks, rendered when sent', async () => {
      const d = await desk({ live: true });
      const account = await makeAccount(db.knex, { workspaceId: d.ws.id });
      const contact = await makeReachableContact(db.knex, t.services, { workspaceId: d.ws.id, accountId: account.id });
      const tk = await d.ticket({ contact_id: contact.id, contact: undefined });
      await db.knex('tickets').where({ id: tk.id }).update({ topic_chat_id: account.supportChatId, topic_thread_id: 77 });
      await d.sweep(48);
      await d.sweep(61);
      const notices = await db.knex('telegram_sends').where({ ticket_id: tk.id, op: 'sla_notice' });
      assert.equal(notices.length, 1, 'coalesced into one queued row');
      assert.deepEqual(notices[0].payload.marks.map((m: any) => m.kind), ['warning', 'breach']);
      const text = await t.services.sla.noticeText(db.knex, d.ws.id, tk.id, notices[0].payload.marks, clock.now());
      assert.equal(text, `🔴 first response overdue (#${tk.number})`);
      const warnOnly = await t.services.sla.noticeText(db.knex, d.ws.id, tk.id, [notices[0].payload.marks[0]], new Date(Date.parse(at(54))));
      assert.equal(warnOnly, `⚠️ first response due in 6 min (#${tk.number})`);
    });
  });
});
