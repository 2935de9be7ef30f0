/**
 * Escalation rules against real PostgreSQL with a fake clock: each condition and action, the
 * condition window (fires, holds, re-arms, fires again), evaluation on every ticket change via
 * the events-outbox consumer, the time sweep (age and unassigned-for, exactly once), two
 * workers and two sweeps on one database firing once, the ping-pong guard, notify sends
 * (topic and lead chat; sandbox none), ticket.escalated with details, and the timeline entry.
 */
import assert from 'node:assert/strict';
import { inTransaction } from '../../src/db/transaction.js';
import { createEscalationWorker } from '../../src/escalation/escalation-worker.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeAgent, makeReachableContact, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const MIN = 60_000;
const TOPIC_CHAT = -1001234567890;
const LEAD_CHAT = -1009999999999;

describe('escalation rules (evaluation, windows, sweep, actions)', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  const clock = new FakeClock('2026-12-07T09:00:00.000Z');
  let t: TestApp;
  let seq = 0;
  const actor = { type: 'api' as const, id: 'key_test' };

  before(() => { t = createTestApp(db.knex, { clock }); });

  const worker = () => createEscalationWorker({ db: db.knex, logger: t.deps.logger, clock, escalations: t.services.escalations });
  /** Evaluates every queued event (as the worker in main.ts does). */
  const drain = () => worker().drain();
  const sweep = (now = clock.now()) => inTransaction(db.knex, (tx) => t.services.escalations.sweep(tx, now, 30_000));
  const tx = <T>(fn: (tx: Parameters<Parameters<typeof inTransaction>[1]>[0]) => Promise<T>) => inTransaction(db.knex, fn);

  /** A live workspace with a bot, a reachable customer and a lead chat (or a sandbox without). */
  async function desk(o: { sandbox?: boolean; leadChat?: boolean } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: o.sandbox, name: `Escalation desk ${++seq}` });
    if (o.leadChat !== false) await t.services.workspaces.update(db.knex, ws.id, { lead_chat_id: LEAD_CHAT });
    const account = await makeAccount(db.knex, { workspaceId: ws.id, supportChatId: TOPIC_CHAT, isDefault: true });
    const contact = await makeReachableContact(db.knex, t.services, { workspaceId: ws.id, accountId: account.id, firstName: 'Sarah', lastName: 'Miller' });
    const rule = (body: Record<string, unknown>) => tx((x) => t.services.escalations.create(x, ws.id, { name: `Rule ${++seq}`, ...body } as any));
    const ticket = async (body: Record<string, unknown> = {}, opts: { topic?: boolean } = {}) => {
      const v = await tx((x) => t.services.tickets.create(x, ws, { contact_id: contact.id, subject: `Help ${++seq}`, ...body } as any, actor));
      if (opts.topic !== false) await t.services.tickets.setTopic(db.knex, v.ticket.id, { chatId: TOPIC_CHAT, threadId: 100 + seq });
      return v.ticket;
    };
    const update = (id: string, body: Record<string, unknown>) => tx((x) => t.services.tickets.update(x, ws.id, id, body as any, actor));
    const find = async (id: string) => (await t.services.tickets.find(db.knex, ws.id, id))!;
    const escalated = async (ticketId?: string) => (await db.knex('events').where({ workspace_id: ws.id, type: 'ticket.escalated', ...(ticketId ? { ticket_id: ticketId } : {}) }).orderBy('id'));
    const fired = async (ruleId: string, ticketId: string) => (await escalated(ticketId)).filter((e: any) => e.details.rule_id === ruleId).length;
    return { ws, account, contact, rule, ticket, update, find, escalated, fired };
  }

  // ---------------------------------------------------------------------------------------
  describe('conditions (each evaluated on ticket change through the consumer)', () => {
    it('priority_in', async () => {
      const d = await desk();
      const r = await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'add_tag', tag: 'hot' }] });
      const tk = await d.ticket();
      await drain();
      assert.equal(await d.fired(r.id, tk.id), 0, 'a normal ticket does not match');
      await d.update(tk.id, { priority: 'urgent' });
      await drain();
      assert.equal(await d.fired(r.id, tk.id), 1);
      assert.deepEqual((await d.find(tk.id)).tags, ['hot']);
    });

    it('status_in, and without status_in only unfinished tickets', async () => {
      const d = await desk();
      const waiting = await d.rule({ conditions: { status_in: ['waiting_on_customer'] }, actions: [{ type: 'add_tag', tag: 'w' }] });
      const any = await d.rule({ conditions: { priority_in: ['low'] }, actions: [{ type: 'add_tag', tag: 'l' }] });
      const tk = await d.ticket();
      await tx((x) => t.services.tickets.changeStatus(x, d.ws.id, tk.id, 'resolved', undefined, actor));
      await d.update(tk.id, { priority: 'low' });
      await drain();
      assert.equal(await d.fired(any.id, tk.id), 0, 'a resolved ticket is not escalated without status_in');
      const tk2 = await d.ticket();
      await tx((x) => t.services.tickets.changeStatus(x, d.ws.id, tk2.id, 'waiting_on_customer', undefined, actor));
      await drain();
      assert.equal(await d.fired(waiting.id, tk2.id), 1);
      assert.equal(await d.fired(waiting.id, tk.id), 0);
    });

    it('team_id_in, with null for "no team"', async () => {
      const d = await desk();
      const tm = await makeTeam(db.knex, { workspaceId: d.ws.id });
      const noTeam = await d.rule({ conditions: { team_id_in: [null] }, actions: [{ type: 'add_tag', tag: 'none' }] });
      const inTeam = await d.rule({ conditions: { team_id_in: [tm.id] }, actions: [{ type: 'add_tag', tag: 'team' }] });
      const tk = await d.ticket();
      await drain();
      assert.equal(await d.fired(noTeam.id, tk.id), 1);
      assert.equal(await d.fired(inTeam.id, tk.id), 0);
      await d.update(tk.id, { team_id: tm.id });
      await drain();
      assert.equal(await d.fired(inTeam.id, tk.id), 1);
    });

    it('sla: warning when a target is at risk, breached once it has a breach (sla.warning / sla.breached events)', async () => {
      const d = await desk();
      await tx((x) => t.services.slaPolicies.create(x, d.ws.id, { name: 'Default', is_default: true, warn_at_percent: 50, targets: { normal: { first_response_minutes: 10, resolution_minutes: 600 } } } as any));
      const warn = await d.rule({ conditions: { sla: 'warning' }, actions: [{ type: 'add_tag', tag: 'at-risk' }] });
      const breach = await d.rule({ conditions: { sla: 'breached' }, actions: [{ type: 'set_priority', priority: 'urgent' }] });
      const tk = await d.ticket();
      await drain();
      assert.equal((await d.escalated(tk.id)).length, 0);
      clock.advance(6 * MIN);
      await t.services.sla.sweep(db.knex, clock.now());
      await drain();
      assert.equal(await d.fired(warn.id, tk.id), 1);
      assert.equal(await d.fired(breach.id, tk.id), 0);
      clock.advance(5 * MIN);
      await t.services.sla.sweep(db.knex, clock.now());
      await drain();
      assert.equal(await d.fired(breach.id, tk.id), 1);
      assert.equal((await d.find(tk.id)).priority, 'urgent');
    });

    it('contact_tag_in: a contact.tagged evaluates the contact\'s open tickets', async () => {
      const d = await desk();
      const r = await d.rule({ conditions: { contact_tag_in: ['vip'] }, actions: [{ type: 'set_priority', priority: 'high' }] });
      const a = await d.ticket();
      const b = await d.ticket();
      await drain();
      assert.equal((await d.escalated()).length, 0);
      await tx((x) => t.services.contacts.addTags(x, d.ws.id, d.contact.id, ['VIP'], actor));
      await drain();
      assert.equal(await d.fired(r.id, a.id), 1);
      assert.equal(await d.fired(r.id, b.id), 1);
      assert.equal((await d.find(a.id)).priority, 'high');
    });

    it('age_minutes_gt and unassigned_for_minutes_gt hold strictly after the minutes given (evaluate)', async () => {
      const d = await desk();
      const age = await d.rule({ conditions: { age_minutes_gt: 30 }, actions: [{ type: 'add_tag', tag: 'old' }] });
      const tk = await d.ticket();
      const at = (await d.find(tk.id)).createdAt.getTime();
      await tx((x) => t.services.escalations.evaluate(x, d.ws.id, tk.id, new Date(at + 30 * MIN)));
      assert.equal(await d.fired(age.id, tk.id), 0, 'exactly 30 minutes is not more than 30');
      await tx((x) => t.services.escalations.evaluate(x, d.ws.id, tk.id, new Date(at + 30 * MIN + 1)));
      assert.equal(await d.fired(age.id, tk.id), 1);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('unassigned_since', () => {
    it('is created_at for a new unassigned ticket, null while assigned, the change\'s time when unassigned again', async () => {
      const d = await desk();
      const ag = await makeAgent(db.knex, { workspaceId: d.ws.id });
      const tk = await d.ticket();
      assert.equal((await d.find(tk.id)).unassignedSince?.toISOString(), tk.createdAt.toISOString());
      clock.advance(MIN);
      await tx((x) => t.services.assignment.assign(x, d.ws.id, tk.id, { agent_id: ag.id }, actor));
      assert.equal((await d.find(tk.id)).unassignedSince, null);
      clock.advance(MIN);
      await d.update(tk.id, { subject: 'still assigned' });
      assert.equal((await d.find(tk.id)).unassignedSince, null);
      clock.advance(MIN);
      await tx((x) => t.services.assignment.assign(x, d.ws.id, tk.id, { agent_id: null }, actor));
      assert.equal((await d.find(tk.id)).unassignedSince?.toISOString(), clock.now().toISOString());
      const assignedAtBirth = await d.ticket({ assignee_id: ag.id });
      assert.equal((await d.find(assignedAtBirth.id)).unassignedSince, null);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('the condition window', () => {
    it('fires when the conditions become true, not again while they hold, re-arms after false, fires again', async () => {
      const d = await desk();
      const r = await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'notify', to: ['topic'], text: 'Urgent: #{{ticket_number}}' }] });
      const tk = await d.ticket();
      await d.update(tk.id, { priority: 'urgent' });
      await drain();
      assert.equal(await d.fired(r.id, tk.id), 1);
      await d.update(tk.id, { subject: 'Still urgent' });
      await d.update(tk.id, { tags: ['x'] });
      await drain();
      assert.equal(await d.fired(r.id, tk.id), 1, 'holds: no second firing');
      await d.update(tk.id, { priority: 'normal' });
      await drain();
      assert.equal(await d.fired(r.id, tk.id), 1);
      const state = await db.knex('escalation_firings').where({ rule_id: r.id, ticket_id: tk.id }).first();
      assert.equal(state.active, false, 'the window closed');
      await d.update(tk.id, { priority: 'urgent' });
      await drain();
      assert.equal(await d.fired(r.id, tk.id), 2, 'a new window fires again');
      assert.equal((await db.knex('escalation_firings').where({ rule_id: r.id, ticket_id: tk.id }).first()).count, 2);
    });

    it('a disabled or archived rule never fires', async () => {
      const d = await desk();
      const off = await d.rule({ enabled: false, conditions: { priority_in: ['normal'] }, actions: [{ type: 'add_tag', tag: 'x' }] });
      const gone = await d.rule({ conditions: { priority_in: ['normal'] }, actions: [{ type: 'add_tag', tag: 'y' }] });
      await t.services.escalations.archive(db.knex, d.ws.id, gone.id);
      const tk = await d.ticket();
      await drain();
      assert.equal(await d.fired(off.id, tk.id) + await d.fired(gone.id, tk.id), 0);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('the time sweep', () => {
    it('fires age and unassigned-for rules once, when their moment passes, and not for tickets that do not cross', async () => {
      await sweep(); // earlier tests' tickets: the sweep starts from now
      const d = await desk();
      const ag = await makeAgent(db.knex, { workspaceId: d.ws.id });
      const age = await d.rule({ conditions: { age_minutes_gt: 60 }, actions: [{ type: 'add_tag', tag: 'old' }] });
      const idle = await d.rule({ conditions: { unassigned_for_minutes_gt: 20 }, actions: [{ type: 'set_priority', priority: 'high' }] });
      const tk = await d.ticket();
      const assigned = await d.ticket({ assignee_id: ag.id });
      await drain();
      for (const step of [10, 10, 5]) { clock.advance(step * MIN); await sweep(); }
      assert.equal(await d.fired(idle.id, tk.id), 1, 'unassigned for 25 > 20 minutes');
      assert.equal(await d.fired(age.id, tk.id), 0);
      assert.equal(await d.fired(idle.id, assigned.id), 0, 'an assigned ticket never crosses');
      for (let i = 0; i < 8; i++) { clock.advance(5 * MIN); await sweep(); }
      await drain();
      assert.equal(await d.fired(age.id, tk.id), 1, 'older than 60 minutes');
      assert.equal(await d.fired(age.id, assigned.id), 1);
      assert.equal(await d.fired(idle.id, tk.id), 1, 'once: later sweeps and change events do not fire it again');
      assert.deepEqual((await d.find(tk.id)).tags, ['old']);
    });

    it('reads only the tickets that cross (by index), and catches up on a missed run', async () => {
      await sweep();
      const d = await desk();
      const r = await d.rule({ conditions: { age_minutes_gt: 5 }, actions: [{ type: 'add_tag', tag: 'late' }] });
      const tk = await d.ticket();
      clock.advance(2 * MIN);
      assert.equal((await sweep()).tickets, 0, 'nothing crossed yet');
      clock.advance(60 * MIN); // a replica was down: the next run covers the whole gap
      const res = await sweep();
      assert.equal(res.tickets, 1);
      assert.equal(await d.fired(r.id, tk.id), 1);
      // The crossing queries have an index to range-scan (the planner's choice on a tiny table aside).
      const plan = (column: string) => tx(async (x) => {
        await x.raw('ANALYZE tickets');
        await x.raw('SET LOCAL enable_seqscan = off');
        const sql = x('tickets').select('id').where({ workspace_id: d.ws.id }).whereNull('archived_at').where(column, '>=', clock.now()).where(column, '<', clock.now()).toString();
        return (await x.raw(`EXPLAIN ${sql}`)).rows.map((row: any) => row['QUERY PLAN']).join('\n');
      });
      assert.match(await plan('unassigned_since'), /Index Cond: .*unassigned_since >=/);
      assert.match(await plan('created_at'), /Index Cond: .*created_at >=/);
    });

    it('two sweeps at once on one database fire once', async () => {
      await sweep();
      const d = await desk();
      const r = await d.rule({ conditions: { age_minutes_gt: 1 }, actions: [{ type: 'add_tag', tag: 'once' }] });
      const tk = await d.ticket();
      clock.advance(2 * MIN);
      const now = clock.now();
      await Promise.all([sweep(now), sweep(now), sweep(now)]);
      assert.equal(await d.fired(r.id, tk.id), 1);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('replicas and loops', () => {
    it('two workers draining one queue at once fire a rule once per ticket', async () => {
      const d = await desk();
      const r = await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'add_tag', tag: 'x' }] });
      const made = [];
      for (let i = 0; i < 6; i++) made.push(await d.ticket({ priority: 'urgent' }));
      for (const tk of made) for (let i = 0; i < 3; i++) await d.update(tk.id, { subject: `change ${i}` });
      const a = worker();
      const b = worker();
      await Promise.all([a.drain(), b.drain(), a.drain()]);
      for (const tk of made) assert.equal(await d.fired(r.id, tk.id), 1, tk.id);
      assert.equal((await db.knex('escalation_queue').count({ n: '*' }))[0].n, 0);
    });

    it('ping-pong guard: rules that undo each other stop after the hourly limit, with a warning', async () => {
      const d = await desk();
      const up = await d.rule({ conditions: { priority_in: ['normal'] }, actions: [{ type: 'set_priority', priority: 'urgent' }] });
      const down = await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'set_priority', priority: 'normal' }] });
      const tk = await d.ticket();
      const before = t.logs.length;
      await drain(); // terminates: that is the point
      const firings = await d.escalated(tk.id);
      assert.equal(firings.length, t.config.escalation.maxFiringsPerTicketPerHour);
      assert.deepEqual(new Set(firings.map((e: any) => e.details.rule_id)), new Set([up.id, down.id]));
      const warned = t.logs.slice(before).map((l) => JSON.parse(l)).filter((l) => l.level === 40 && l.ticket_id === tk.id);
      assert.equal(warned.length, 1, JSON.stringify(warned));
      assert.match(warned[0].msg, /limit of firings per hour/);
      // An hour later the budget is back: a real change fires again.
      clock.advance(61 * MIN);
      await d.update(tk.id, { priority: 'low' });
      await drain(); // an evaluation sees both rules false: both windows close
      await d.update(tk.id, { priority: 'normal' });
      await drain();
      assert.ok((await d.escalated(tk.id)).length > firings.length);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('actions', () => {
    it('set_priority, add_tag, assign_team, assign_agent: applied through the services, with their own events; repeated ones unchanged', async () => {
      const d = await desk();
      const tm = await makeTeam(db.knex, { workspaceId: d.ws.id });
      const ag = await makeAgent(db.knex, { workspaceId: d.ws.id });
      await db.knex('agent_teams').insert({ workspace_id: d.ws.id, team_id: tm.id, agent_id: ag.id });
      const r = await d.rule({
        conditions: { priority_in: ['low'] },
        actions: [
          { type: 'set_priority', priority: 'high' }, { type: 'add_tag', tag: 'esc' }, { type: 'add_tag', tag: 'esc' },
          { type: 'assign_team', team_id: tm.id }, { type: 'assign_agent', agent_id: ag.id },
        ],
      });
      const tk = await d.ticket({ priority: 'low' });
      await drain();
      const after = await d.find(tk.id);
      assert.equal(after.priority, 'high');
      assert.deepEqual(after.tags, ['esc']);
      assert.equal(after.teamId, tm.id);
      assert.equal(after.assigneeId, ag.id);
      const [e] = await d.escalated(tk.id);
      assert.deepEqual(e.details.actions.map((a: any) => a.outcome), ['applied', 'applied', 'unchanged', 'applied', 'applied']);
      assert.equal(e.details.rule_id, r.id);
      const changes = await db.knex('events').where({ ticket_id: tk.id }).whereIn('type', ['ticket.updated', 'ticket.assigned']).orderBy('id');
      assert.ok(changes.length >= 4);
      assert.ok(changes.every((c: any) => c.actor_type === 'system' && c.actor_id === null), 'the system made the changes');
    });

    it('assign by strategy; a refused action (agent at capacity, nobody available) is skipped and reported, the others apply', async () => {
      const d = await desk();
      const busy = await makeAgent(db.knex, { workspaceId: d.ws.id });
      await db.knex('agents').where({ id: busy.id }).update({ max_open_tickets: 1 });
      await d.ticket({ assignee_id: busy.id }); // busy is full
      const r = await d.rule({
        conditions: { priority_in: ['urgent'] },
        actions: [{ type: 'assign_agent', agent_id: busy.id }, { type: 'assign', strategy: 'least_loaded' }, { type: 'add_tag', tag: 'tried' }],
      });
      const tk = await d.ticket({ priority: 'urgent' });
      await drain();
      const [e] = await d.escalated(tk.id);
      assert.equal(e.details.rule_id, r.id);
      const [agent, strategy, tag] = e.details.actions;
      assert.equal(agent.outcome, 'skipped');
      assert.match(agent.reason, /at capacity/);
      assert.equal(strategy.outcome, 'skipped');
      assert.match(strategy.reason, /No agent is available/);
      assert.equal(tag.outcome, 'applied');
      const after = await d.find(tk.id);
      assert.equal(after.assigneeId, null);
      assert.deepEqual(after.tags, ['tried']);
      // With room, the strategy assigns.
      const free = await makeAgent(db.knex, { workspaceId: d.ws.id });
      const tk2 = await d.ticket({ priority: 'urgent' });
      await drain();
      assert.equal((await d.find(tk2.id)).assigneeId, free.id);
      assert.equal((await d.escalated(tk2.id))[0].details.actions[1].outcome, 'applied');
    });

    it('notify queues the rendered text into the topic and to the lead chat, with the ticket\'s bot', async () => {
      const d = await desk();
      await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'notify', to: ['topic', 'lead_chat'], text: '🔺 #{{ticket_number}} {{ticket_subject}} for {{customer_first_name}} ({{agent_name|unassigned}})' }] });
      const tk = await d.ticket({ priority: 'urgent', subject: 'Refund' });
      await drain();
      const sends = await db.knex('telegram_sends').where({ ticket_id: tk.id, op: 'send_message' }).orderBy('id');
      const text = `🔺 #${tk.number} Refund for Sarah (unassigned)`;
      assert.deepEqual(sends.map((s: any) => [Number(s.chat_id), s.account_id, s.payload]), [
        [TOPIC_CHAT, d.account.id, { text, in_topic: true }],
        [LEAD_CHAT, d.account.id, { text }],
      ]);
      const [e] = await d.escalated(tk.id);
      assert.deepEqual(e.details.actions[0].targets, [{ to: 'topic', outcome: 'queued' }, { to: 'lead_chat', outcome: 'queued' }]);
    });

    it('notify skips and reports a ticket without a topic and a workspace without a lead chat', async () => {
      const d = await desk({ leadChat: false });
      await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'notify', to: ['topic', 'lead_chat'], text: 'x' }, { type: 'add_tag', tag: 'n' }] });
      const tk = await d.ticket({ priority: 'urgent' }, { topic: false });
      await drain();
      assert.equal((await db.knex('telegram_sends').where({ ticket_id: tk.id, op: 'send_message' })).length, 0);
      const [e] = await d.escalated(tk.id);
      assert.equal(e.details.actions[0].outcome, 'skipped');
      assert.deepEqual(e.details.actions[0].targets.map((x: any) => [x.to, x.outcome, x.reason]), [
        ['topic', 'skipped', 'the ticket has no topic'], ['lead_chat', 'skipped', 'the workspace has no lead_chat_id'],
      ]);
      assert.equal(e.details.actions[1].outcome, 'applied');
    });

    it('a sandbox workspace queues no send at all', async () => {
      const d = await desk({ sandbox: true });
      await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'notify', to: ['topic', 'lead_chat'], text: 'x' }] });
      const tk = await d.ticket({ priority: 'urgent' });
      await drain();
      assert.equal((await db.knex('telegram_sends').where({ workspace_id: d.ws.id })).length, 0);
      const [e] = await d.escalated(tk.id);
      assert.ok(e.details.actions[0].targets.every((x: any) => x.outcome === 'skipped' && /sandbox/.test(x.reason)));
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('ticket.escalated', () => {
    it('carries the ticket after the actions and {rule_id, actions}; the timeline shows it; webhooks get it, the consumer skips it', async () => {
      const d = await desk();
      const r = await d.rule({ name: 'VIP first', conditions: { priority_in: ['urgent'] }, actions: [{ type: 'add_tag', tag: 'escalated' }] });
      const tk = await d.ticket({ priority: 'urgent' });
      await drain();
      const [e] = await d.escalated(tk.id);
      assert.equal(e.actor_type, 'system');
      assert.equal(e.payload.id, tk.id);
      assert.deepEqual(e.payload.tags, ['escalated'], 'data is the ticket after the actions');
      assert.deepEqual(e.details, { rule_id: r.id, actions: [{ type: 'add_tag', tag: 'escalated', outcome: 'applied' }] });
      const timeline = await t.services.tickets.timeline(db.knex, d.ws.id, tk.id, { limit: 200, offset: 0 } as any);
      const entry = timeline.items.find((x) => x.type === 'ticket.escalated');
      assert.ok(entry);
      assert.equal(entry.detail.rule_id, r.id);
      assert.equal(entry.detail.rule_name, 'VIP first');
      assert.ok(await db.knex('webhook_fanout_queue').where({ event_id: e.id }).first(), 'queued for webhooks');
      assert.equal(await db.knex('escalation_queue').where({ event_id: e.id }).first(), undefined, 'not for escalation');
    });

    it('the actions and the event commit together: a failure rolls back all of them and leaves the events queued', async () => {
      const d = await desk();
      await d.rule({ conditions: { priority_in: ['urgent'] }, actions: [{ type: 'add_tag', tag: 'x' }] });
      const tk = await d.ticket({ priority: 'urgent' });
      await assert.rejects(tx(async (x) => {
        await t.services.escalations.processQueue(x, 1000, clock.now());
        throw new Error('crash before commit');
      }));
      assert.deepEqual((await d.find(tk.id)).tags, []);
      assert.equal((await d.escalated(tk.id)).length, 0);
      await drain();
      assert.equal((await d.escalated(tk.id)).length, 1);
    });
  });
});
