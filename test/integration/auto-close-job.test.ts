/**
 * Auto-close: resolved tickets close once their workspace's auto_close_after_hours have
 * passed since resolved_at — services.tickets.autoClose directly, and the 'auto-close' job
 * under the scheduler. Time is a FakeClock; tickets are resolved through the API.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createScheduler } from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/lib/logger.js';
import { autoCloseJob } from '../../src/tickets/auto-close-job.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const START = '2026-11-21T12:00:00.000Z';
const HOUR = 3_600_000;

describe('auto-close of resolved tickets', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const clock = new FakeClock(START);
  let t: TestApp;
  before(() => { t = createTestApp(db.knex, { clock }); });
  beforeEach(async () => {
    clock.set(START);
    // autoClose sweeps every workspace: earlier tests' resolved tickets are put out of the way.
    await db.knex('tickets').where({ status: 'resolved' }).update({ status: 'closed', closed_at: db.knex.raw('resolved_at') });
  });

  /** A workspace with a bot, a reachable contact and helpers to open and move tickets. */
  async function desk(settings: Record<string, unknown> = {}) {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const account = await makeAccount(db.knex, { workspaceId: ws.id });
    const contact = await makeReachableContact(db.knex, t.services, { workspaceId: ws.id, accountId: account.id });
    const post = (path: string, body: unknown) => t.request.post(path).set('Authorization', key.auth).send(body as object);
    const get = (path: string) => t.request.get(path).set('Authorization', key.auth);
    if (Object.keys(settings).length) await t.request.patch('/v1/workspace').set('Authorization', key.auth).send(settings).expect(200);
    const open = async (...statuses: string[]): Promise<string> => {
      const tk = (await post('/v1/tickets', { contact_id: contact.id, subject: 'Printer on fire' }).expect(201)).body;
      for (const status of statuses) await post(`/v1/tickets/${tk.id}/status`, { status }).expect(200);
      return tk.id;
    };
    const ticket = async (id: string) => (await get(`/v1/tickets/${id}`).expect(200)).body;
    const timeline = async (id: string) => (await get(`/v1/tickets/${id}/events?limit=200`).expect(200)).body.items as any[];
    return { ws, key, contact, open, ticket, timeline, post };
  }

  const autoClose = (now: Date, batch = 100) => db.knex.transaction((trx) => t.services.tickets.autoClose(trx, now, batch));
  const statusOf = async (id: string) => (await db.knex('tickets').where({ id }).first()).status as string;

  // ---------------------------------------------------------------------------------------
  describe('services.tickets.autoClose', () => {
    it('closes a resolved ticket once auto_close_after_hours (default 72) have passed', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      const resolvedAt = (await d.ticket(id)).resolved_at;
      assert.equal(resolvedAt, START);
      clock.advance(72 * HOUR);
      assert.equal(await autoClose(clock.now()), 1);
      const after = await d.ticket(id);
      assert.equal(after.status, 'closed');
      assert.equal(after.closed_at, clock.now().toISOString());
      assert.equal(after.resolved_at, resolvedAt, 'resolved_at is kept');
    });

    it('writes ticket.status_changed and ticket.closed with actor system and reason auto_close', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      clock.advance(80 * HOUR);
      await autoClose(clock.now());
      const events = (await d.timeline(id)).filter((e) => e.created_at === clock.now().toISOString());
      assert.deepEqual(events.map((e) => e.type), ['ticket.status_changed', 'ticket.closed']);
      for (const e of events) {
        assert.deepEqual(e.actor, { type: 'system', id: null });
        assert.deepEqual(e.data, { from: 'resolved', to: 'closed', reason: 'auto_close' });
      }
      const [outbox] = await db.knex('events').where({ ticket_id: id, type: 'ticket.closed' });
      assert.equal(outbox.payload.status, 'closed', 'the event carries the closed ticket');
      assert.equal(outbox.payload.closed_at, clock.now().toISOString());
    });

    it('leaves a ticket resolved for less than auto_close_after_hours alone', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      clock.advance(72 * HOUR - 1);
      assert.equal(await autoClose(clock.now()), 0);
      assert.equal(await statusOf(id), 'resolved');
      assert.equal((await d.ticket(id)).closed_at, null);
      assert.equal((await d.timeline(id)).filter((e) => e.type === 'ticket.closed').length, 0);
      clock.advance(1);
      assert.equal(await autoClose(clock.now()), 1);
      assert.equal(await statusOf(id), 'closed');
    });

    it('never closes tickets in other statuses, however old', async () => {
      const d = await desk();
      const open = await d.open();
      const inProgress = await d.open('in_progress');
      const waiting = await d.open('waiting_on_customer');
      const reopened = await d.open('resolved', 'open');
      const closed = await d.open('resolved', 'closed');
      const closedAt = (await d.ticket(closed)).closed_at;
      clock.advance(10_000 * HOUR);
      assert.equal(await autoClose(clock.now()), 0);
      assert.deepEqual(await Promise.all([open, inProgress, waiting, reopened, closed].map(statusOf)),
        ['open', 'in_progress', 'waiting_on_customer', 'open', 'closed']);
      assert.equal((await d.ticket(closed)).closed_at, closedAt, 'a closed ticket is not closed again');
    });

    it('counts from the latest resolve when a ticket was reopened and resolved again', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      clock.advance(10 * HOUR);
      await d.post(`/v1/tickets/${id}/status`, { status: 'open' }).expect(200);
      clock.advance(10 * HOUR);
      await d.post(`/v1/tickets/${id}/status`, { status: 'resolved' }).expect(200);
      clock.set(new Date(Date.parse(START) + 72 * HOUR));
      assert.equal(await autoClose(clock.now()), 0, '72 h after the first resolve');
      assert.equal(await statusOf(id), 'resolved');
      clock.set(new Date(Date.parse(START) + 92 * HOUR));
      assert.equal(await autoClose(clock.now()), 1, '72 h after the second resolve');
      assert.equal(await statusOf(id), 'closed');
    });

    it('respects each workspace\'s auto_close_after_hours', async () => {
      const quick = await desk({ auto_close_after_hours: 24 });
      const slow = await desk();
      const yearly = await desk({ auto_close_after_hours: 8760 });
      const q = await quick.open('resolved');
      const s = await slow.open('resolved');
      const y = await yearly.open('resolved');
      clock.advance(24 * HOUR);
      assert.equal(await autoClose(clock.now()), 1);
      assert.deepEqual(await Promise.all([q, s, y].map(statusOf)), ['closed', 'resolved', 'resolved']);
      clock.advance(48 * HOUR);
      assert.equal(await autoClose(clock.now()), 1);
      assert.deepEqual(await Promise.all([q, s, y].map(statusOf)), ['closed', 'closed', 'resolved']);
      clock.set(new Date(Date.parse(START) + 8760 * HOUR));
      assert.equal(await autoClose(clock.now()), 1);
      assert.equal(await statusOf(y), 'closed');
    });

    it('applies a changed setting to tickets already resolved', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      clock.advance(5 * HOUR);
      assert.equal(await autoClose(clock.now()), 0);
      await t.request.patch('/v1/workspace').set('Authorization', d.key.auth).send({ auto_close_after_hours: 4 }).expect(200);
      assert.equal(await autoClose(clock.now()), 1);
      assert.equal(await statusOf(id), 'closed');
    });

    it('skips a ticket another open transaction holds, and closes it on a later run', async () => {
      const d = await desk();
      const held = await d.open('resolved');
      const free = await d.open('resolved');
      clock.advance(73 * HOUR);
      const trx = await db.knex.transaction();
      try {
        await trx('tickets').where({ id: held }).forUpdate().select('id');
        assert.equal(await autoClose(clock.now()), 1, 'only the free one; the held one does not block the run');
        assert.equal(await statusOf(free), 'closed');
        assert.equal(await statusOf(held), 'resolved');
      } finally {
        await trx.rollback();
      }
      clock.advance(60_000);
      assert.equal(await autoClose(clock.now()), 1);
      assert.equal(await statusOf(held), 'closed');
      assert.equal((await d.timeline(held)).filter((e) => e.type === 'ticket.closed').length, 1);
    });

    it('closes at most batchSize tickets per call, oldest resolve first', async () => {
      const d = await desk();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push(await d.open('resolved'));
        clock.advance(60_000);
      }
      clock.set(new Date(Date.parse(START) + 100 * HOUR));
      assert.equal(await autoClose(clock.now(), 3), 3);
      assert.deepEqual(await Promise.all(ids.map(statusOf)), ['closed', 'closed', 'closed', 'resolved', 'resolved', 'resolved', 'resolved']);
      assert.equal(await autoClose(clock.now(), 3), 3);
      assert.equal(await autoClose(clock.now(), 3), 1);
      assert.equal(await autoClose(clock.now(), 3), 0);
      assert.ok((await Promise.all(ids.map(statusOf))).every((s) => s === 'closed'));
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('the auto-close job', () => {
    let lines: string[];
    const logger = createLogger('info', new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } }));
    beforeEach(async () => {
      lines = [];
      await db.knex('job_runs').del();
    });
    const config = loadConfig({});
    const job = () => autoCloseJob({ schedule: config.jobs.autoClose, tickets: t.services.tickets });
    const closedLogged = () => lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'auto-closed resolved tickets').map((l) => l.closed);

    /** `n` resolved tickets of one new workspace, made in one transaction through the services. */
    async function resolvedTickets(n: number): Promise<{ wsId: string; ids: string[] }> {
      const ws = await makeWorkspace(db.knex, t.services);
      const account = await makeAccount(db.knex, { workspaceId: ws.id });
      const contact = await makeReachableContact(db.knex, t.services, { workspaceId: ws.id, accountId: account.id });
      const actor = { type: 'system' as const, id: null };
      const ids = await db.knex.transaction(async (trx) => {
        const out: string[] = [];
        for (let i = 0; i < n; i++) {
          const { ticket } = await t.services.tickets.create(trx, ws, { contact_id: contact.id, subject: `Bulk ${i}`, priority: 'normal' }, actor);
          await t.services.tickets.changeStatus(trx, ws.id, ticket.id, 'resolved', undefined, actor);
          out.push(ticket.id);
        }
        return out;
      });
      return { wsId: ws.id, ids };
    }
    const countByStatus = async (wsId: string) => Object.fromEntries(
      (await db.knex('tickets').where({ workspace_id: wsId }).groupBy('status').select('status').count({ n: '*' })).map((r: any) => [r.status, Number(r.n)]),
    );

    it('is named auto-close and runs on the configured schedule', () => {
      const j = job();
      assert.equal(j.name, 'auto-close');
      assert.equal(j.schedule, config.jobs.autoClose);
    });

    it('closes more tickets than one batch (200) in one run under the scheduler and records its run', async () => {
      const { wsId, ids } = await resolvedTickets(205);
      clock.advance(70 * HOUR);
      const young = await (await desk()).open('resolved');
      clock.set(new Date(Date.parse(START) + 72 * HOUR));
      const scheduler = createScheduler({ db: db.knex, logger, jobs: [job()], runnerId: 'test' });
      try {
        const tick = clock.now();
        assert.equal(await scheduler.runTick('auto-close', tick), 'ran');
        assert.deepEqual(await countByStatus(wsId), { closed: 205 });
        assert.equal(await statusOf(young), 'resolved', 'resolved 2 h ago: stays');
        assert.deepEqual(closedLogged(), [205]);
        const [run] = await db.knex('job_runs').where({ job: 'auto-close' }).select('status');
        assert.equal(run.status, 'succeeded');
        const closedEvents = await db.knex('events').whereIn('ticket_id', ids).where({ type: 'ticket.closed' }).count({ n: '*' });
        assert.equal(Number(closedEvents[0].n), 205, 'one ticket.closed per ticket');
        assert.equal(await scheduler.runTick('auto-close', tick), 'already-ran', 'a tick runs once');
      } finally {
        await scheduler.stop();
      }
    });

    it('uses the tick as "now": a later tick closes what has become due', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      const scheduler = createScheduler({ db: db.knex, logger, jobs: [job()], runnerId: 'test' });
      try {
        clock.set(new Date(Date.parse(START) + 71 * HOUR));
        assert.equal(await scheduler.runTick('auto-close', clock.now()), 'ran');
        assert.equal(await statusOf(id), 'resolved');
        assert.deepEqual(closedLogged(), [], 'logs nothing when nothing closed');
        clock.set(new Date(Date.parse(START) + 72 * HOUR));
        assert.equal(await scheduler.runTick('auto-close', clock.now()), 'ran');
        assert.equal(await statusOf(id), 'closed');
        const closedEvent = (await d.timeline(id)).find((e) => e.type === 'ticket.closed');
        assert.deepEqual(closedEvent.actor, { type: 'system', id: null });
        assert.equal(closedEvent.data.reason, 'auto_close');
      } finally {
        await scheduler.stop();
      }
    });

    it('skips locked tickets and closes them on a later tick', async () => {
      const d = await desk();
      const held = await d.open('resolved');
      const free = await d.open('resolved');
      clock.advance(100 * HOUR);
      const scheduler = createScheduler({ db: db.knex, logger, jobs: [job()], runnerId: 'test' });
      const trx = await db.knex.transaction();
      try {
        await trx('tickets').where({ id: held }).forUpdate().select('id');
        assert.equal(await scheduler.runTick('auto-close', clock.now()), 'ran');
        assert.equal(await statusOf(free), 'closed');
        assert.equal(await statusOf(held), 'resolved');
        await trx.rollback();
        clock.advance(60_000);
        assert.equal(await scheduler.runTick('auto-close', clock.now()), 'ran');
        assert.equal(await statusOf(held), 'closed');
      } finally {
        if (!trx.isCompleted()) await trx.rollback();
        await scheduler.stop();
      }
    });

    it('stops before its next batch once shutdown has begun', async () => {
      const d = await desk();
      const id = await d.open('resolved');
      clock.advance(100 * HOUR);
      const abort = new AbortController();
      abort.abort();
      await job().run({ db: db.knex, logger, tick: clock.now(), signal: abort.signal });
      assert.equal(await statusOf(id), 'resolved', 'left for the next run');
    });
  });
});
