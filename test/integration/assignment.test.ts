/**
 * Assignment against real PostgreSQL: strategies, capacity and round robin under concurrency,
 * auto-assignment when a ticket enters a queue, and queues worked off when room appears —
 * exactly once with two workers (replicas) draining at the same time.
 */
import assert from 'node:assert/strict';
import { createAssignmentWorker } from '../../src/assignment/assignment-worker.js';
import type { Strategy } from '../../src/assignment/assignment.js';
import { inTransaction } from '../../src/db/transaction.js';
import { SYSTEM } from '../../src/kernel/actor.js';
import { AppError } from '../../src/kernel/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import { systemClock } from '../../src/lib/clock.js';
import { makeAgent, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('assignment (strategies, capacity, queues)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let t: TestApp;
  let seq = 0;
  before(() => { t = createTestApp(db.knex); });

  const actor = { type: 'api' as const, id: 'key_test' };

  async function workspace() {
    const ws = await makeWorkspace(db.knex, t.services, {});
    const { contact } = await t.services.contacts.upsert(db.knex, ws.id, { telegram_user_id: 900000 + ++seq, name: `Customer ${seq}` }, SYSTEM);
    return { id: ws.id, mode: ws.mode, contactId: contact.id };
  }

  async function agentsIn(wsId: string, teamId: string | null, n: number, o: { max?: number | null; skills?: string[] } = {}) {
    const made = [];
    for (let i = 0; i < n; i++) {
      const a = await makeAgent(db.knex, { workspaceId: wsId });
      await db.knex('agents').where({ id: a.id }).update({ max_open_tickets: o.max ?? null, skills: o.skills ?? [] });
      if (teamId) await db.knex('agent_teams').insert({ workspace_id: wsId, team_id: teamId, agent_id: a.id });
      made.push(a);
    }
    return made;
  }

  async function team(wsId: string, o: { autoAssign?: Strategy | null; paused?: boolean } = {}) {
    const tm = await makeTeam(db.knex, { workspaceId: wsId });
    await db.knex('teams').where({ id: tm.id }).update({ auto_assign: o.autoAssign ?? null, paused: o.paused ?? false });
    return tm;
  }

  async function tickets(ws: { id: string; mode: 'live' | 'sandbox'; contactId: string }, n: number, o: { teamId?: string; category?: string; tags?: string[] } = {}) {
    const made = [];
    for (let i = 0; i < n; i++) {
      const v = await inTransaction(db.knex, (tx) => t.services.tickets.create(tx, ws, {
        contact_id: ws.contactId, subject: `T${i}`, ...(o.teamId ? { team_id: o.teamId } : {}), ...(o.category ? { category: o.category } : {}), ...(o.tags ? { tags: o.tags } : {}),
      }, actor));
      made.push(v.ticket);
    }
    return made;
  }

  const assign = (wsId: string, ticketId: string, body: Parameters<TestApp['services']['assignment']['assign']>[3]) =>
    inTransaction(db.knex, (tx) => t.services.assignment.assign(tx, wsId, ticketId, body, actor));

  async function loads(wsId: string): Promise<Map<string | null, number>> {
    const rows = await db.knex('tickets').select('assignee_id').count({ n: '*' }).where({ workspace_id: wsId }).groupBy('assignee_id');
    return new Map(rows.map((r: any) => [r.assignee_id, Number(r.n)]));
  }

  const code = (err: unknown) => (err instanceof AppError ? err.code : String(err));

  it('round robin is exact under concurrency: 50 tickets assigned at once across 5 agents give 10 each', async () => {
    const ws = await workspace();
    const tm = await team(ws.id);
    const pool = await agentsIn(ws.id, tm.id, 5);
    const made = await tickets(ws, 50, { teamId: tm.id });
    await Promise.all(made.map((tk) => assign(ws.id, tk.id, { strategy: 'round_robin' })));
    const l = await loads(ws.id);
    assert.deepEqual(pool.map((a) => l.get(a.id)), [10, 10, 10, 10, 10]);
    const events = await db.knex('events').where({ workspace_id: ws.id, type: 'ticket.assigned' });
    assert.equal(events.length, 50);
    assert.ok(events.every((e: any) => e.details.strategy === 'round_robin'));
  });

  it('never exceeds max_open_tickets under parallel strategy picks: the rest get no_agent_available and stay unassigned', async () => {
    const ws = await workspace();
    const tm = await team(ws.id);
    const pool = await agentsIn(ws.id, tm.id, 5, { max: 3 });
    const made = await tickets(ws, 30, { teamId: tm.id });
    const results = await Promise.allSettled(made.map((tk) => assign(ws.id, tk.id, { strategy: 'least_loaded' })));
    const refused = results.filter((r) => r.status === 'rejected');
    assert.equal(refused.length, 15);
    assert.ok(refused.every((r) => code((r as PromiseRejectedResult).reason) === 'no_agent_available'));
    const l = await loads(ws.id);
    assert.deepEqual(pool.map((a) => l.get(a.id)), [3, 3, 3, 3, 3]);
    assert.equal(l.get(null), 15);
  });

  it('checks capacity on direct assignment too, also in parallel', async () => {
    const ws = await workspace();
    const [a] = await agentsIn(ws.id, null, 1, { max: 2 });
    const made = await tickets(ws, 6);
    const results = await Promise.allSettled(made.map((tk) => assign(ws.id, tk.id, { agent_id: a.id })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
    assert.ok(results.filter((r) => r.status === 'rejected').every((r) => /at capacity/.test((r as PromiseRejectedResult).reason.message)));
    assert.equal((await loads(ws.id)).get(a.id), 2);
  });

  it('skills: only agents with the category and every skill: tag; among them the least loaded', async () => {
    const ws = await workspace();
    const [plain] = await agentsIn(ws.id, null, 1);
    const [billing] = await agentsIn(ws.id, null, 1, { skills: ['billing'] });
    const [german] = await agentsIn(ws.id, null, 1, { skills: ['billing', 'de'] });
    const [tk1, tk2] = await tickets(ws, 2, { category: 'billing', tags: ['skill:de'] });
    assert.equal((await assign(ws.id, tk1.id, { strategy: 'skills' })).ticket.assigneeId, german.id);
    const [tk3] = await tickets(ws, 1, { category: 'billing' });
    assert.equal((await assign(ws.id, tk3.id, { strategy: 'skills' })).ticket.assigneeId, billing.id);
    await db.knex('agents').where({ id: german.id }).update({ active: false });
    await assert.rejects(assign(ws.id, tk2.id, { strategy: 'skills' }), (err) => code(err) === 'no_agent_available');
    const after = await t.services.tickets.find(db.knex, ws.id, tk2.id);
    assert.equal(after!.assigneeId, null, 'a refused pick changes nothing');
    assert.ok(plain);
  });

  it('a ticket moved to an auto-assigning team is assigned at once; a paused queue keeps it', async () => {
    const ws = await workspace();
    const auto = await team(ws.id, { autoAssign: 'least_loaded' });
    const paused = await team(ws.id, { autoAssign: 'least_loaded', paused: true });
    const [a] = await agentsIn(ws.id, auto.id, 1);
    await agentsIn(ws.id, paused.id, 1);
    const [tk1, tk2] = await tickets(ws, 2);
    const v1 = await assign(ws.id, tk1.id, { team_id: auto.id, note: 'billing question' });
    assert.equal(v1.ticket.teamId, auto.id);
    assert.equal(v1.ticket.assigneeId, a.id);
    const v2 = await assign(ws.id, tk2.id, { team_id: paused.id });
    assert.equal(v2.ticket.assigneeId, null);
  });

  describe('queues worked off when room appears', () => {
    const logger = createLogger('silent');
    const worker = () => createAssignmentWorker({ db: db.knex, logger, clock: systemClock, assignment: t.services.assignment, settings: { pollIntervalMs: 20 } });

    it('a waiting ticket is assigned when the agent resolves one of theirs (the kick comes from the change, in its transaction)', async () => {
      const ws = await workspace();
      const tm = await team(ws.id, { autoAssign: 'round_robin' });
      const [a] = await agentsIn(ws.id, tm.id, 1, { max: 1 });
      const [first, second] = await tickets(ws, 2, { teamId: tm.id });
      await worker().drain();
      const l = await loads(ws.id);
      assert.equal(l.get(a.id), 1, 'one ticket each while there is room');
      const held = (await t.services.tickets.find(db.knex, ws.id, first.id))!.assigneeId ? first : second;
      const waiting = held === first ? second : first;
      assert.equal((await t.services.tickets.find(db.knex, ws.id, waiting.id))!.assigneeId, null, 'the other waits in the queue');

      await inTransaction(db.knex, (tx) => t.services.tickets.changeStatus(tx, ws.id, held.id, 'resolved', undefined, actor));
      assert.equal(await worker().drain(), 1);
      assert.equal((await t.services.tickets.find(db.knex, ws.id, waiting.id))!.assigneeId, a.id);
    });

    it('capacity growing, an agent returning, a new member and a resumed queue each hand out waiting tickets', async () => {
      const ws = await workspace();
      const tm = await team(ws.id, { autoAssign: 'least_loaded' });
      const [a] = await agentsIn(ws.id, tm.id, 1, { max: 1 });
      await tickets(ws, 4, { teamId: tm.id });
      await worker().drain();
      assert.equal((await loads(ws.id)).get(null), 3);

      await db.knex('agents').where({ id: a.id }).update({ max_open_tickets: 2 });
      await worker().drain();
      assert.equal((await loads(ws.id)).get(null), 2, 'capacity grew by one');

      const [b] = await agentsIn(ws.id, null, 1, { max: 1 });
      await db.knex('agents').where({ id: b.id }).update({ active: false });
      await db.knex('agent_teams').insert({ workspace_id: ws.id, team_id: tm.id, agent_id: b.id });
      await worker().drain();
      assert.equal((await loads(ws.id)).get(null), 2, 'an inactive member takes nothing');
      await db.knex('agents').where({ id: b.id }).update({ active: true });
      await worker().drain();
      assert.equal((await loads(ws.id)).get(null), 1, 'the agent returned');

      await db.knex('teams').where({ id: tm.id }).update({ paused: true });
      await db.knex('agents').where({ id: a.id }).update({ max_open_tickets: 5 });
      await worker().drain();
      assert.equal((await loads(ws.id)).get(null), 1, 'a paused queue hands out nothing');
      await db.knex('teams').where({ id: tm.id }).update({ paused: false });
      await worker().drain();
      assert.equal((await loads(ws.id)).get(null), undefined, 'resumed: the last one goes');
    });

    it('two replicas draining one queue at once assign each ticket exactly once and respect capacity', async () => {
      const ws = await workspace();
      const tm = await team(ws.id, { autoAssign: 'round_robin', paused: true });
      const pool = await agentsIn(ws.id, tm.id, 4, { max: 5 });
      const made = await tickets(ws, 24, { teamId: tm.id });
      await db.knex('teams').where({ id: tm.id }).update({ paused: false });
      const [w1, w2] = [worker(), worker()];
      // More kicks while both work: each makes another pass, none assigns twice.
      await Promise.all([w1.drain(), w2.drain(), t.services.assignment.kick(db.knex, ws.id, tm.id), w2.drain()]);
      await Promise.all([w1.drain(), w2.drain()]);
      const l = await loads(ws.id);
      assert.deepEqual(pool.map((a) => l.get(a.id)), [5, 5, 5, 5]);
      assert.equal(l.get(null), 4, 'four wait: everyone is full');
      const events = await db.knex('events').where({ workspace_id: ws.id, type: 'ticket.assigned' }).whereIn('ticket_id', made.map((m) => m.id));
      const perTicket = new Map<string, number>();
      for (const e of events) perTicket.set(e.ticket_id, (perTicket.get(e.ticket_id) ?? 0) + 1);
      assert.equal(perTicket.size, 20);
      assert.ok([...perTicket.values()].every((n) => n === 1), 'each ticket assigned once');
      assert.equal((await db.knex('queue_kicks').where({ team_id: tm.id })).length, 0, 'kicks are worked off');
    });

    it('a listening worker is woken by the kick\'s NOTIFY at commit, long before its next poll', async () => {
      const ws = await workspace();
      const tm = await team(ws.id, { autoAssign: 'least_loaded' });
      const [a] = await agentsIn(ws.id, tm.id, 1, { max: 1 });
      const w = createAssignmentWorker({ db: db.knex, logger, clock: systemClock, assignment: t.services.assignment, settings: { pollIntervalMs: 600_000 }, listenUrl: db.current.url });
      try {
        w.start();
        const [held, waiting] = await tickets(ws, 2, { teamId: tm.id });
        const assigneeOf = async (id: string) => (await t.services.tickets.find(db.knex, ws.id, id))!.assigneeId;
        const until = async (what: string, check: () => Promise<boolean>) => {
          for (let i = 0; i < 400 && !(await check()); i++) await new Promise((r) => setTimeout(r, 25));
          assert.ok(await check(), what);
        };
        await until('the first ticket is handed out', async () => (await assigneeOf(held.id)) === a.id || (await assigneeOf(waiting.id)) === a.id);
        const first = (await assigneeOf(held.id)) === a.id ? held : waiting;
        const second = first === held ? waiting : held;
        await inTransaction(db.knex, (tx) => t.services.tickets.changeStatus(tx, ws.id, first.id, 'resolved', undefined, actor));
        await until('the waiting ticket is handed out once room appears', async () => (await assigneeOf(second.id)) === a.id);
      } finally {
        await w.stop();
      }
    });

    it('hands out in queue order: manual rank first, then priority, then age', async () => {
      const ws = await workspace();
      const tm = await team(ws.id, { autoAssign: 'least_loaded', paused: true });
      const [a] = await agentsIn(ws.id, tm.id, 1, { max: 1 });
      const [old, urgent, ranked] = await tickets(ws, 3, { teamId: tm.id });
      await db.knex('tickets').where({ id: urgent.id }).update({ priority: 'urgent' });
      await db.knex('tickets').where({ id: ranked.id }).update({ queue_rank: 1 });
      await db.knex('teams').where({ id: tm.id }).update({ paused: false });
      await worker().drain();
      assert.equal((await t.services.tickets.find(db.knex, ws.id, ranked.id))!.assigneeId, a.id);
      await inTransaction(db.knex, (tx) => t.services.tickets.changeStatus(tx, ws.id, ranked.id, 'resolved', undefined, actor));
      await worker().drain();
      assert.equal((await t.services.tickets.find(db.knex, ws.id, urgent.id))!.assigneeId, a.id);
      assert.equal((await t.services.tickets.find(db.knex, ws.id, old.id))!.assigneeId, null);
    });
  });
});
