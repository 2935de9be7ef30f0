/**
 * The queues API (SPEC §4.4) against the real app and a real PostgreSQL: the queue figures,
 * a queue's tickets in distribution order (rank, priority, age) with pages and cursors,
 * reorder, pause and resume (auto-assignment stops, and restarts through the assignment
 * worker), scopes, and another workspace's ids (path and body) answered 404.
 */
import assert from 'node:assert/strict';
import type supertest from 'supertest';
import { createAssignmentWorker } from '../../src/assignment/assignment-worker.js';
import type { Strategy } from '../../src/assignment/assignment.js';
import { SYSTEM } from '../../src/kernel/actor.js';
import { createLogger } from '../../src/lib/logger.js';
import { systemClock } from '../../src/lib/clock.js';
import { makeAgent, makeKey, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

type Res = supertest.Response;
type Key = Awaited<ReturnType<typeof makeKey>>;

interface Tenant {
  wsId: string;
  key: Key;
  contactId: string;
}

const UNKNOWN_TEAM = 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_TICKET = 'tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV';

describe('queues API', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  const clock = new FakeClock('2026-05-04T09:00:00.000Z');
  let t: TestApp;
  let seq = 0;

  before(() => {
    t = createTestApp(db.knex, { clock });
  });

  // ---------------------------------------------------------------------------------------
  // helpers

  async function tenant(): Promise<Tenant> {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, rateLimitPerMinute: 1_000_000 });
    const { contact } = await t.services.contacts.upsert(db.knex, ws.id, { telegram_user_id: 810000 + ++seq, name: `Customer ${seq}` }, SYSTEM);
    return { wsId: ws.id, key, contactId: contact.id };
  }

  const get = (k: Tenant | Key, path: string) => t.request.get(path).set('Authorization', 'key' in k ? k.key.auth : k.auth);
  const post = (k: Tenant | Key, path: string, body: unknown = {}) => t.request.post(path).set('Authorization', 'key' in k ? k.key.auth : k.auth).send(body as object);

  function expectProblem(res: Res, status: number, code: string, detail?: RegExp): void {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    if (detail) assert.match(res.body.detail, detail);
  }

  async function team(k: Tenant, o: { name?: string; autoAssign?: Strategy | null; paused?: boolean } = {}) {
    const tm = await makeTeam(db.knex, { workspaceId: k.wsId, name: o.name });
    await db.knex('teams').where({ id: tm.id }).update({ auto_assign: o.autoAssign ?? null, paused: o.paused ?? false });
    return tm;
  }

  async function agent(k: Tenant, o: { teamIds?: string[]; max?: number | null; active?: boolean } = {}) {
    const a = await makeAgent(db.knex, { workspaceId: k.wsId });
    await db.knex('agents').where({ id: a.id }).update({ max_open_tickets: o.max ?? null });
    for (const teamId of o.teamIds ?? []) await db.knex('agent_teams').insert({ workspace_id: k.wsId, team_id: teamId, agent_id: a.id });
    if (o.active === false) await db.knex('agents').where({ id: a.id }).update({ active: false });
    return a;
  }

  /** A ticket created a minute after the previous one (ages differ); expects 201. */
  async function ticket(k: Tenant, body: Record<string, unknown> = {}): Promise<any> {
    clock.advance(60_000);
    const res = await post(k, '/v1/tickets', { contact_id: k.contactId, subject: `Ticket ${++seq}`, ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  async function queueOf(k: Tenant, teamId: string | null) {
    const res = await get(k, '/v1/queues');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items.find((q: any) => q.team_id === teamId);
  }

  /** Every ticket id of a queue, page by page through next_cursor. */
  async function order(k: Tenant, teamId: string, limit = 200): Promise<string[]> {
    const ids: string[] = [];
    let path = `/v1/queues/${teamId}/tickets?limit=${limit}`;
    for (;;) {
      const res = await get(k, path);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      ids.push(...res.body.items.map((x: any) => x.id));
      if (!res.body.next_cursor) return ids;
      path = `/v1/queues/${teamId}/tickets?limit=${limit}&cursor=${res.body.next_cursor}`;
    }
  }

  const reorder = (k: Tenant, teamId: string, ticketId: string, position: number) => post(k, `/v1/queues/${teamId}/reorder`, { ticket_id: ticketId, position });

  // ---------------------------------------------------------------------------------------

  describe('GET /v1/queues', () => {
    it('gives every team\'s queue and the no-team queue: depth, by priority, oldest waiting, paused, eligible agents', async () => {
      const k = await tenant();
      const support = await team(k, { name: 'Support' });
      const billing = await team(k, { name: 'billing', paused: true, autoAssign: 'round_robin' });
      await team(k, { name: 'Empty' });
      const free = await agent(k, { teamIds: [support.id], max: 2 });
      const full = await agent(k, { teamIds: [support.id], max: 1 });
      await agent(k, { teamIds: [support.id], active: false });
      await agent(k, { max: null }); // in no team: counts for the no-team queue only

      const oldest = await ticket(k, { team_id: support.id, priority: 'low' });
      await ticket(k, { team_id: support.id, priority: 'urgent' });
      await ticket(k, { team_id: support.id });
      await ticket(k, { team_id: support.id });
      // Not in the queue: assigned (fills `full`), resolved, archived.
      const taken = await ticket(k, { team_id: support.id });
      assert.equal((await post(k, `/v1/tickets/${taken.id}/assign`, { agent_id: full.id })).status, 200);
      const resolved = await ticket(k, { team_id: support.id });
      assert.equal((await post(k, `/v1/tickets/${resolved.id}/status`, { status: 'resolved' })).status, 200);
      const archived = await ticket(k, { team_id: support.id });
      assert.equal((await t.request.delete(`/v1/tickets/${archived.id}`).set('Authorization', k.key.auth)).status, 200);
      const noTeam = await ticket(k, { priority: 'high' });
      await ticket(k, { team_id: billing.id, priority: 'high' });

      const res = await get(k, '/v1/queues');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.items.map((q: any) => q.name), ['billing', 'Empty', 'Support', 'No team'], 'teams by name, then the no-team queue');
      const [b, empty, s, none] = res.body.items;
      assert.deepEqual(s, {
        team_id: support.id, name: 'Support', depth: 4, by_priority: { urgent: 1, high: 0, normal: 2, low: 1 },
        oldest_waiting_since: oldest.created_at, paused: false, eligible_agents: 1,
      });
      assert.deepEqual(b.by_priority, { urgent: 0, high: 1, normal: 0, low: 0 });
      assert.equal(b.paused, true);
      assert.equal(b.eligible_agents, 0, 'billing has no members');
      assert.deepEqual(empty, {
        team_id: empty.team_id, name: 'Empty', depth: 0, by_priority: { urgent: 0, high: 0, normal: 0, low: 0 },
        oldest_waiting_since: null, paused: false, eligible_agents: 0,
      });
      assert.deepEqual(none, {
        team_id: null, name: 'No team', depth: 1, by_priority: { urgent: 0, high: 1, normal: 0, low: 0 },
        oldest_waiting_since: noTeam.created_at, paused: false, eligible_agents: 2, // `free` and the agent without a team; `full` is full
      });

      // Room appears: `full` resolves their ticket.
      assert.equal((await post(k, `/v1/tickets/${taken.id}/status`, { status: 'resolved' })).status, 200);
      assert.equal((await queueOf(k, support.id)).eligible_agents, 2);
      assert.ok(free);
    });

    it('shows only the caller\'s workspace', async () => {
      const k = await tenant();
      const other = await tenant();
      await team(other, { name: 'Theirs' });
      await ticket(other);
      const res = await get(k, '/v1/queues');
      assert.deepEqual(res.body.items, [{
        team_id: null, name: 'No team', depth: 0, by_priority: { urgent: 0, high: 0, normal: 0, low: 0 },
        oldest_waiting_since: null, paused: false, eligible_agents: 0,
      }]);
    });
  });

  describe('GET /v1/queues/{team_id}/tickets', () => {
    it('lists the queue in distribution order: manual rank, then priority (urgent first), then oldest first, across pages and cursors', async () => {
      const k = await tenant();
      const tm = await team(k);
      const a = await agent(k, { teamIds: [tm.id] });
      const n1 = await ticket(k, { team_id: tm.id });
      const l1 = await ticket(k, { team_id: tm.id, priority: 'low' });
      const u1 = await ticket(k, { team_id: tm.id, priority: 'urgent' });
      const h1 = await ticket(k, { team_id: tm.id, priority: 'high' });
      const n2 = await ticket(k, { team_id: tm.id });
      const u2 = await ticket(k, { team_id: tm.id, priority: 'urgent' });
      const assigned = await ticket(k, { team_id: tm.id, priority: 'urgent' });
      assert.equal((await post(k, `/v1/tickets/${assigned.id}/assign`, { agent_id: a.id })).status, 200);
      await ticket(k, { priority: 'urgent' }); // no team: another queue

      const natural = [u1, u2, h1, n1, n2, l1].map((x) => x.id);
      assert.deepEqual(await order(k, tm.id), natural);
      assert.deepEqual(await order(k, tm.id, 2), natural, 'the same order through cursors');

      // Ranked tickets come first, by rank, whatever their priority and age.
      assert.equal((await reorder(k, tm.id, l1.id, 1)).status, 200);
      assert.equal((await reorder(k, tm.id, n2.id, 2)).status, 200);
      const ranked = [l1, n2, u1, u2, h1, n1].map((x) => x.id);
      assert.deepEqual(await order(k, tm.id), ranked);
      for (const limit of [1, 2, 4]) assert.deepEqual(await order(k, tm.id, limit), ranked, `cursor pages of ${limit}`);

      const page2 = await get(k, `/v1/queues/${tm.id}/tickets?limit=2&offset=2`);
      assert.equal(page2.status, 200);
      assert.deepEqual(page2.body.items.map((x: any) => x.id), ranked.slice(2, 4));
      assert.equal(page2.body.total, 6);
      assert.equal(page2.body.has_more, true);
      const item = page2.body.items[0];
      assert.equal(item.contact.id, k.contactId, 'tickets come with their contact');
      assert.equal(item.assignee_id, null);
    });

    it('lists the no-team queue as `none`', async () => {
      const k = await tenant();
      const tm = await team(k);
      const a = await ticket(k);
      const b = await ticket(k, { priority: 'high' });
      await ticket(k, { team_id: tm.id });
      assert.deepEqual(await order(k, 'none'), [b.id, a.id]);
    });

    it('enforces query limits and refuses a cursor with an offset', async () => {
      const k = await tenant();
      const tm = await team(k);
      expectProblem(await get(k, `/v1/queues/${tm.id}/tickets?limit=201`), 422, 'validation_error');
      expectProblem(await get(k, `/v1/queues/${tm.id}/tickets?cursor=nonsense`), 422, 'validation_error');
      expectProblem(await get(k, `/v1/queues/${tm.id}/tickets?sort=priority`), 422, 'validation_error');
      await ticket(k, { team_id: tm.id });
      await ticket(k, { team_id: tm.id });
      const first = await get(k, `/v1/queues/${tm.id}/tickets?limit=1`);
      assert.ok(first.body.next_cursor);
      expectProblem(await get(k, `/v1/queues/${tm.id}/tickets?limit=1&offset=1&cursor=${first.body.next_cursor}`), 422, 'validation_error', /offset or cursor/);
    });
  });

  describe('POST /v1/queues/{team_id}/reorder', () => {
    async function queueOfFive(k: Tenant) {
      const tm = await team(k);
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await ticket(k, { team_id: tm.id }));
      return { tm, ids: made.map((x) => x.id) as string[] };
    }

    it('puts a ticket first, in the middle, last and past the end; the queue reads exactly as asked', async () => {
      const k = await tenant();
      const { tm, ids } = await queueOfFive(k);
      const [a, b, c, d, e] = ids;
      assert.deepEqual(await order(k, tm.id), [a, b, c, d, e]);

      const res = await reorder(k, tm.id, d, 1);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.team_id, tm.id, 'answers the queue item');
      assert.equal(res.body.depth, 5);
      assert.deepEqual(await order(k, tm.id), [d, a, b, c, e], 'first');

      assert.equal((await reorder(k, tm.id, e, 3)).status, 200);
      assert.deepEqual(await order(k, tm.id), [d, a, e, b, c], 'middle (ranks cover everything ahead)');

      assert.equal((await reorder(k, tm.id, d, 2)).status, 200);
      assert.deepEqual(await order(k, tm.id), [a, d, e, b, c], 'a ranked ticket moved down among the ranked');

      assert.equal((await reorder(k, tm.id, a, 5)).status, 200);
      assert.deepEqual(await order(k, tm.id), [d, e, b, c, a], 'last');

      assert.equal((await reorder(k, tm.id, e, 99)).status, 200);
      assert.deepEqual(await order(k, tm.id), [d, b, c, a, e], 'past the end: last');

      // An unranked ticket put behind the ranked ones stays ahead of newer, more urgent ones.
      const urgent = (await ticket(k, { team_id: tm.id, priority: 'urgent' })).id;
      assert.deepEqual(await order(k, tm.id), [d, b, c, a, e, urgent], 'every ticket is ranked now: the new one goes behind');
      assert.equal((await reorder(k, tm.id, urgent, 2)).status, 200);
      assert.deepEqual(await order(k, tm.id), [d, urgent, b, c, a, e]);
    });

    it('keeps the natural order behind the ranked tickets', async () => {
      const k = await tenant();
      const { tm, ids } = await queueOfFive(k);
      const [a, b, c, d, e] = ids;
      assert.equal((await reorder(k, tm.id, e, 2)).status, 200);
      assert.deepEqual(await order(k, tm.id), [a, e, b, c, d]);
      const ranks = await db.knex('tickets').whereIn('id', ids).select('id', 'queue_rank');
      assert.deepEqual(Object.fromEntries(ranks.map((r: any) => [r.id, r.queue_rank])), { [a]: 1, [e]: 2, [b]: null, [c]: null, [d]: null }, 'only the head is ranked');
      const urgent = (await ticket(k, { team_id: tm.id, priority: 'urgent' })).id;
      assert.deepEqual(await order(k, tm.id), [a, e, urgent, b, c, d], 'unranked tickets keep priority, then age');
      assert.equal((await reorder(k, tm.id, d, 1)).status, 200);
      assert.deepEqual(await order(k, tm.id), [d, a, e, urgent, b, c], 'an unranked ticket put first pushes the ranked ones back');
      const after = await db.knex('tickets').whereIn('id', [...ids, urgent]).select('id', 'queue_rank');
      assert.deepEqual(Object.fromEntries(after.map((r: any) => [r.id, r.queue_rank])), { [d]: 1, [a]: 2, [e]: 3, [urgent]: null, [b]: null, [c]: null });
    });

    it('reorders the no-team queue too', async () => {
      const k = await tenant();
      const x = await ticket(k);
      const y = await ticket(k);
      const res = await reorder(k, 'none', y.id, 1);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.team_id, null);
      assert.deepEqual(await order(k, 'none'), [y.id, x.id]);
    });

    it('drops a ticket\'s rank when it leaves the queue: back in it, it queues by priority and age again', async () => {
      const k = await tenant();
      const { tm, ids } = await queueOfFive(k);
      const [a, b, c, d, e] = ids;
      const ag = await agent(k, { teamIds: [tm.id] });
      assert.equal((await reorder(k, tm.id, e, 1)).status, 200);
      assert.equal((await post(k, `/v1/tickets/${e}/assign`, { agent_id: ag.id })).status, 200);
      assert.equal((await post(k, `/v1/tickets/${e}/assign`, { agent_id: null })).status, 200);
      assert.deepEqual(await order(k, tm.id), [a, b, c, d, e]);
    });

    it('reorders one at a time: concurrent reorders each see the order the last one left', async () => {
      const k = await tenant();
      const { tm, ids } = await queueOfFive(k);
      const results = await Promise.all(ids.map((id) => reorder(k, tm.id, id, 1)));
      assert.ok(results.every((r) => r.status === 200));
      const final = await order(k, tm.id);
      assert.deepEqual([...final].sort(), [...ids].sort(), 'no ticket lost or doubled');
      const ranks = (await db.knex('tickets').whereIn('id', ids).orderBy('queue_rank').pluck('queue_rank')) as number[];
      assert.deepEqual(ranks, [1, 2, 3, 4, 5], 'ranks stay 1..n');
    });

    it('refuses a ticket that is not in this queue with 409, naming why', async () => {
      const k = await tenant();
      const tm = await team(k);
      const other = await team(k);
      const ag = await agent(k, { teamIds: [tm.id] });
      const elsewhere = await ticket(k, { team_id: other.id });
      const noTeam = await ticket(k);
      const assigned = await ticket(k, { team_id: tm.id });
      await post(k, `/v1/tickets/${assigned.id}/assign`, { agent_id: ag.id });
      const resolved = await ticket(k, { team_id: tm.id });
      await post(k, `/v1/tickets/${resolved.id}/status`, { status: 'resolved' });
      expectProblem(await reorder(k, tm.id, elsewhere.id, 1), 409, 'conflict', new RegExp(`queue of team ${other.id}`));
      expectProblem(await reorder(k, tm.id, noTeam.id, 1), 409, 'conflict', /no-team queue/);
      expectProblem(await reorder(k, 'none', elsewhere.id, 1), 409, 'conflict', /not in this one/);
      expectProblem(await reorder(k, tm.id, assigned.id, 1), 409, 'conflict', /assigned/);
      expectProblem(await reorder(k, tm.id, resolved.id, 1), 409, 'conflict', /resolved/);
    });

    it('validates the body', async () => {
      const k = await tenant();
      const tm = await team(k);
      const x = await ticket(k, { team_id: tm.id });
      expectProblem(await reorder(k, tm.id, x.id, 0), 422, 'validation_error');
      expectProblem(await post(k, `/v1/queues/${tm.id}/reorder`, { ticket_id: x.id }), 422, 'validation_error');
      expectProblem(await post(k, `/v1/queues/${tm.id}/reorder`, { ticket_id: 'nope', position: 1 }), 422, 'validation_error');
      expectProblem(await post(k, `/v1/queues/${tm.id}/reorder`, { ticket_id: x.id, position: 1, extra: true }), 422, 'validation_error');
    });
  });

  describe('POST /v1/queues/{team_id}/pause and /resume', () => {
    const logger = createLogger('silent');
    const drain = () => createAssignmentWorker({ db: db.knex, logger, clock: systemClock, assignment: t.services.assignment, settings: { pollIntervalMs: 20 } }).drain();

    it('pause stops auto-assignment (manual assignment still works); resume restarts it and the worker hands the queue out', async () => {
      const k = await tenant();
      const tm = await team(k, { autoAssign: 'round_robin' });
      const ag = await agent(k, { teamIds: [tm.id] });

      const paused = await post(k, `/v1/queues/${tm.id}/pause`);
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal(paused.body.paused, true);
      assert.equal(paused.body.team_id, tm.id);
      assert.equal((await post(k, `/v1/queues/${tm.id}/pause`)).body.paused, true, 'pausing twice is fine');

      const waiting = await ticket(k);
      const moved = await post(k, `/v1/tickets/${waiting.id}/assign`, { team_id: tm.id });
      assert.equal(moved.status, 200);
      assert.equal(moved.body.assignee_id, null, 'a paused queue auto-assigns nothing');
      await drain();
      assert.equal((await get(k, `/v1/tickets/${waiting.id}`)).body.assignee_id, null, 'nor does the worker');
      const q = await queueOf(k, tm.id);
      assert.equal(q.depth, 1);
      assert.equal(q.paused, true);

      const manual = await ticket(k, { team_id: tm.id });
      const byHand = await post(k, `/v1/tickets/${manual.id}/assign`, { agent_id: ag.id });
      assert.equal(byHand.body.assignee_id, ag.id, 'manual assignment still works');

      const resumed = await post(k, `/v1/queues/${tm.id}/resume`);
      assert.equal(resumed.status, 200);
      assert.equal(resumed.body.paused, false);
      assert.equal(resumed.body.depth, 1, 'the queue waits for the worker');
      await drain();
      assert.equal((await get(k, `/v1/tickets/${waiting.id}`)).body.assignee_id, ag.id, 'resumed: the worker handed it out');
      assert.equal((await queueOf(k, tm.id)).depth, 0);
    });

    it('the no-team queue has no auto-assignment: 409', async () => {
      const k = await tenant();
      expectProblem(await post(k, '/v1/queues/none/pause'), 409, 'conflict', /no-team queue/);
      expectProblem(await post(k, '/v1/queues/none/resume'), 409, 'conflict', /no-team queue/);
    });
  });

  describe('scopes and tenancy', () => {
    it('reads need read:tickets; reorder, pause and resume need manage:agents', async () => {
      const k = await tenant();
      const tm = await team(k);
      const x = await ticket(k, { team_id: tm.id });
      const reader = await makeKey(db.knex, t.services, { workspaceId: k.wsId, scopes: ['read:tickets'] });
      const manager = await makeKey(db.knex, t.services, { workspaceId: k.wsId, scopes: ['manage:agents'] });
      assert.equal((await get(reader, '/v1/queues')).status, 200);
      assert.equal((await get(reader, `/v1/queues/${tm.id}/tickets`)).status, 200);
      assert.equal((await get(reader, '/v1/queues/none/tickets')).status, 200);
      for (const r of [
        post(reader, `/v1/queues/${tm.id}/reorder`, { ticket_id: x.id, position: 1 }),
        post(reader, `/v1/queues/${tm.id}/pause`),
        post(reader, `/v1/queues/${tm.id}/resume`),
        get(manager, '/v1/queues'),
        get(manager, `/v1/queues/${tm.id}/tickets`),
      ]) expectProblem(await r, 403, 'forbidden');
      assert.equal((await post(manager, `/v1/queues/${tm.id}/reorder`, { ticket_id: x.id, position: 1 })).status, 200);
      assert.equal((await post(manager, `/v1/queues/${tm.id}/pause`)).status, 200);
      assert.equal((await post(manager, `/v1/queues/${tm.id}/resume`)).status, 200);
      assert.equal((await t.request.get('/v1/queues')).status, 401);
    });

    it('another workspace\'s team (path) or ticket (body) is 404, and nothing changes', async () => {
      const k = await tenant();
      const other = await tenant();
      const mine = await team(k);
      const theirs = await team(other, { autoAssign: 'round_robin' });
      const myTicket = await ticket(k, { team_id: mine.id });
      const theirTicket = await ticket(other, { team_id: theirs.id });
      const theirNoTeam = await ticket(other);

      expectProblem(await get(k, `/v1/queues/${theirs.id}/tickets`), 404, 'not_found', /Team/);
      expectProblem(await reorder(k, theirs.id, theirTicket.id, 1), 404, 'not_found', /Team/);
      expectProblem(await post(k, `/v1/queues/${theirs.id}/pause`), 404, 'not_found', /Team/);
      expectProblem(await post(k, `/v1/queues/${theirs.id}/resume`), 404, 'not_found', /Team/);
      expectProblem(await reorder(k, mine.id, theirTicket.id, 1), 404, 'not_found', /Ticket/);
      expectProblem(await reorder(k, 'none', theirNoTeam.id, 1), 404, 'not_found', /Ticket/);
      expectProblem(await reorder(k, mine.id, UNKNOWN_TICKET, 1), 404, 'not_found', /Ticket/);
      expectProblem(await get(k, `/v1/queues/${UNKNOWN_TEAM}/tickets`), 404, 'not_found');
      expectProblem(await get(k, '/v1/queues/team_bad/tickets'), 404, 'not_found');
      expectProblem(await post(k, '/v1/queues/NONE/pause'), 404, 'not_found');

      const theirRow = await db.knex('teams').where({ id: theirs.id }).first();
      assert.equal(theirRow.paused, false, 'their queue is not paused');
      assert.equal((await db.knex('tickets').where({ id: theirTicket.id }).first()).queue_rank, null, 'their ticket is not ranked');
      assert.ok(myTicket);
    });
  });
});
