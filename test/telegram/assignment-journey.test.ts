/**
 * Agents, teams and assignment on the Telegram side (issue 12, SPEC §3.2 and §4.4): /transfer,
 * /team, /queue, refusals, and the transfer note every change of assignee or team posts in the
 * ticket's topic — whatever path made the change — coalesced so a burst of reassignments costs
 * one message and never delays what customers wrote. Real app and workers against the fake Bot
 * API; agents and teams are made with SQL and the factories (not the agents API).
 */
import assert from 'node:assert/strict';
import { SYSTEM } from '../../src/kernel/actor.js';
import { inTransaction } from '../../src/db/transaction.js';
import { groupKey } from '../../src/send-queue/send-queue.js';
import type { FakeUser, Message } from '../helpers/fake-bot-api.js';
import { makeAccount, makeAgent, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { useTelegramHarness, type TelegramHarness, ticketRows } from '../helpers/telegram-harness.js';

interface Opened {
  user: FakeUser;
  contactId: string;
  ticketId: string;
  number: number;
  threadId: number;
}

interface AgentOf {
  user: FakeUser;
  id: string;
  username: string;
}

describe('Telegram: agents, teams and the transfer note (issue 12)', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  before(() => {
    h = harness.h;
  });

  let seq = 0;

  async function until<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v) return v as T;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Every update handled and nothing waiting to be sent (the last update the fake produced included). */
  async function settle(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      await h.settle();
      const last = h.fake.updatesFor(h.bot).at(-1)?.update_id;
      const handled = last === undefined || !!(await h.db('telegram_updates').where({ account_id: h.accountId, update_id: last }).whereNotNull('processed_at').first());
      const [{ n: sends }] = await h.db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
      if (handled && Number(sends) === 0) return;
      if (Date.now() > deadline) throw new Error(`not settled: last update handled ${handled}, ${sends} sends`);
    }
  }

  const api = {
    get: (path: string) => h.api.get(path).set('Authorization', h.auth),
    post: (path: string, body: object) => h.api.post(path).set('Authorization', h.auth).send(body),
    patch: (path: string, body: object) => h.api.patch(path).set('Authorization', h.auth).send(body),
  };

  /** A group member who is an agent (made with the factory, linked by Telegram user id), with options. */
  async function agent(firstName: string, o: { maxOpen?: number; active?: boolean } = {}): Promise<AgentOf> {
    const n = ++seq;
    const username = `${firstName.toLowerCase()}_${n}`;
    const user = h.fake.addUser({ firstName, username });
    h.fake.addMember(h.group, user);
    const a = await makeAgent(h.db, { name: firstName, telegramUserId: user.id, active: o.active ?? true });
    await h.db('agents').where({ id: a.id }).update({ username, max_open_tickets: o.maxOpen ?? null });
    return { user, id: a.id, username };
  }

  async function team(name: string, o: { autoAssign?: string; members?: AgentOf[]; paused?: boolean } = {}) {
    const t = await makeTeam(h.db, { name });
    await h.db('teams').where({ id: t.id }).update({ auto_assign: o.autoAssign ?? null, paused: o.paused ?? false });
    for (const m of o.members ?? []) await h.db('agent_teams').insert({ workspace_id: 'ws_default', team_id: t.id, agent_id: m.id });
    return t;
  }

  async function openTicket(subject = 'Invoice is wrong', extra: Record<string, unknown> = {}): Promise<Opened> {
    const user = h.fake.addUser({ firstName: 'Sarah', username: `sarah_${++seq}` });
    h.fake.userSends(h.bot, user, '/start');
    h.fake.userSends(h.bot, user, '/cancel');
    await settle();
    const contact = await h.db('contacts').where({ telegram_user_id: user.id }).first();
    const r = await api.post('/v1/tickets', { contact_id: contact.id, subject, description: 'Charged twice', ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await settle();
    const t = (await api.get(`/v1/tickets/${r.body.id}`)).body;
    assert.ok(t.topic, 'the ticket has its topic');
    return { user, contactId: contact.id, ticketId: t.id, number: t.number, threadId: t.topic.message_thread_id };
  }

  const ticket = async (o: Opened) => (await api.get(`/v1/tickets/${o.ticketId}`)).body;
  const cardOf = async (o: Opened): Promise<Message> => {
    const r = await ticketRows(h.db).where({ 'tickets.id': o.ticketId }).first();
    return h.fake.message(h.group.id, Number(r.topic_card_message_id))!;
  };

  async function say(a: AgentOf, o: Opened, text: string): Promise<Message> {
    const m = h.fake.memberSends(h.group, a.user, text, { threadId: o.threadId });
    await settle();
    return m;
  }

  const botTexts = (o: Opened, afterId = 0) =>
    h.fake.messagesIn(h.group.id, { threadId: o.threadId }).filter((m) => m.message_id > afterId && m.from?.id === h.bot.id && typeof m.text === 'string').map((m) => m.text as string);
  const transferNotes = (o: Opened, afterId = 0) => botTexts(o, afterId).filter((t) => t.startsWith('🔀'));
  const lastMessageId = (o: Opened) => h.fake.messagesIn(h.group.id, { threadId: o.threadId }).at(-1)?.message_id ?? 0;
  const reactionsTo = (m: Message) =>
    h.fake.callsTo('setMessageReaction').filter((c) => c.status === 200 && Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === m.message_id);
  const customerCalls = (o: Opened) => h.fake.calls.filter((c) => c.params.chat_id !== undefined && Number(c.params.chat_id) === o.user.id).length;

  /** Assigned through the API (settled), so the test starts from a known assignee. */
  async function assignTo(o: Opened, a: AgentOf | null): Promise<void> {
    const r = await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: a?.id ?? null });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await settle();
  }

  describe('commands in a ticket topic', () => {
    it('/transfer @user <note> assigns with a 👍 and one transfer note naming both; the note is kept once as an internal note, never sent', async () => {
      const ann = await agent('Ann');
      const bob = await agent('Bob');
      const o = await openTicket();
      await assignTo(o, ann);
      const before = customerCalls(o);
      const cmd = await say(ann, o, `/transfer @${bob.username.toUpperCase()} Customer wants a refund, you handle those`);

      assert.equal(reactionsTo(cmd).length, 1, 'a 👍 on the command');
      assert.deepEqual(botTexts(o, cmd.message_id), [`🔀 Reassigned from @${ann.username} to @${bob.username}: Customer wants a refund, you handle those`]);
      assert.equal((await ticket(o)).assignee_id, bob.id);
      assert.match((await cardOf(o)).text, new RegExp(`Assignee: Bob \\(@${bob.username}\\)`));
      const notes = await h.db('messages').where({ ticket_id: o.ticketId, text: 'Customer wants a refund, you handle those' });
      assert.equal(notes.length, 1, 'the note is stored once');
      assert.equal(notes[0].visibility, 'internal');
      assert.equal(customerCalls(o), before, 'the customer hears nothing of it');

      const usage = await say(ann, o, `/transfer @${ann.username}`);
      assert.deepEqual(botTexts(o, usage.message_id), ['Usage: /transfer @username <note for them>']);
      assert.equal((await ticket(o)).assignee_id, bob.id);
    });

    it('/team <name> moves the ticket to that team’s queue (any case); an auto-assigning team assigns it at once; the card shows the team', async () => {
      const ann = await agent('Ann');
      const carl = await agent('Carl');
      const billing = await team('Billing');
      const support = await team('Support Tier 2', { autoAssign: 'round_robin', members: [carl] });
      const o = await openTicket();
      await assignTo(o, ann);

      const c1 = await say(ann, o, '/team billing');
      assert.equal(reactionsTo(c1).length, 1);
      assert.deepEqual(botTexts(o, c1.message_id), [`🔀 Moved to team Billing · Reassigned from @${ann.username} to nobody`]);
      let t = await ticket(o);
      assert.equal(t.team_id, billing.id);
      assert.equal(t.assignee_id, null, 'in the queue, unassigned');
      assert.match((await cardOf(o)).text, /Assignee: — nobody yet · Team: Billing/);

      const c2 = await say(ann, o, '/team SUPPORT tier 2');
      assert.equal(reactionsTo(c2).length, 1);
      assert.deepEqual(botTexts(o, c2.message_id), [`🔀 Moved from team Billing to team Support Tier 2 · Reassigned from nobody to @${carl.username}`], 'move and auto-assignment: one note');
      t = await ticket(o);
      assert.equal(t.team_id, support.id);
      assert.equal(t.assignee_id, carl.id, 'the team auto-assigned it');
      assert.match((await cardOf(o)).text, new RegExp(`Assignee: Carl \\(@${carl.username}\\) · Team: Support Tier 2`));

      const c3 = await say(ann, o, '/team none');
      assert.deepEqual(botTexts(o, c3.message_id), [`🔀 Removed from team Support Tier 2 · Reassigned from @${carl.username} to nobody`]);
      assert.equal((await ticket(o)).team_id, null);
      assert.doesNotMatch((await cardOf(o)).text, /Team:/);
    });

    it('refusals — unknown user, unknown team, an agent at capacity, an inactive agent — answer one short line and change nothing', async () => {
      const ann = await agent('Ann');
      const full = await agent('Fay', { maxOpen: 1 });
      const gone = await agent('Dave', { active: false });
      await team('Sales');
      const other = await openTicket('Fay already has one');
      await assignTo(other, full);
      const o = await openTicket();
      await assignTo(o, ann);
      const before = await ticket(o);

      const cases: [string, RegExp][] = [
        ['/transfer @nobody_here_42 please take it', /^⚠️ @nobody_here_42 is not an agent yet/],
        ['/assign @nobody_here_42', /^⚠️ @nobody_here_42 is not an agent yet/],
        ['/team Nonexistent', /^⚠️ No team named "Nonexistent"\. Teams: .*Sales/],
        [`/transfer @${full.username} over to you`, new RegExp(`^⚠️ @${full.username} is at capacity \\(1 open tickets\\)`)],
        [`/assign @${gone.username}`, new RegExp(`^⚠️ @${gone.username} is inactive and cannot take tickets`)],
        [`/transfer @${gone.username} you again`, new RegExp(`^⚠️ @${gone.username} is inactive`)],
      ];
      for (const [text, pattern] of cases) {
        const cmd = await say(ann, o, text);
        assert.equal(reactionsTo(cmd).length, 0, `no 👍 on ${text}`);
        const replies = botTexts(o, cmd.message_id);
        assert.equal(replies.length, 1, `one reply to ${text}: ${JSON.stringify(replies)}`);
        assert.match(replies[0], pattern);
        assert.ok(!replies[0].includes('\n') && replies[0].length <= 300, `one short line: ${replies[0]}`);
      }
      const after = await ticket(o);
      assert.equal(after.assignee_id, before.assignee_id);
      assert.equal(after.team_id, before.team_id);
      assert.equal(after.updated_at, before.updated_at, 'nothing changed');
      assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, text: 'over to you' }).first(), undefined, 'a refused transfer stores no note');
      assert.equal((await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'transfer_note' })).length, 1, 'only the first assignment queued a transfer note');
    });

    it('the card’s Take assigns whoever pressed it, with a transfer note', async () => {
      const ann = await agent('Ann');
      const o = await openTicket();
      const card = await cardOf(o);
      const mark = lastMessageId(o);
      const take = (card.reply_markup!.inline_keyboard.flat() as { text: string; callback_data: string }[]).find((b) => b.text === '🙋 Take')!;
      const q = h.fake.userPresses(h.bot, ann.user, { chatId: h.group.id, messageId: card.message_id }, take.callback_data);
      await settle();
      assert.equal(h.fake.callbackAnswers.get(q)?.text, `#${o.number} is yours now`);
      assert.equal((await ticket(o)).assignee_id, ann.id);
      assert.deepEqual(transferNotes(o, mark), [`🔀 Reassigned from nobody to @${ann.username}`]);
    });
  });

  describe('/queue in General', () => {
    it('shows every team’s depth and oldest wait, paused queues and the no-team queue, in one message in General', async () => {
      const ann = await agent('Ann');
      const q1 = await team('Queue Alpha');
      await team('Queue Empty');
      const q3 = await team('Queue Paused', { paused: true });
      const a1 = await openTicket('alpha one', { team_id: q1.id });
      await openTicket('alpha two', { team_id: q1.id });
      await openTicket('paused one', { team_id: q3.id });
      await h.db('tickets').where({ id: a1.ticketId }).update({ created_at: h.db.raw("now() - interval '2 hours 5 minutes'") });
      // The no-team queue: whatever this file left unassigned without a team.
      const [{ n: noTeam }] = await h.db('tickets').where({ workspace_id: 'ws_default' }).whereNull('archived_at').whereNull('assignee_id').whereNull('team_id').whereIn('status', ['open', 'in_progress', 'waiting_on_customer']).count({ n: '*' });

      const mark = h.fake.messagesIn(h.group.id).length;
      h.fake.memberSends(h.group, ann.user, '/queue');
      await settle();
      const replies = h.fake.messagesIn(h.group.id).slice(mark).filter((m) => m.from?.id === h.bot.id);
      assert.equal(replies.length, 1, 'one message');
      const send = h.fake.callsTo('sendMessage').find((c) => c.status === 200 && c.response.result.message_id === replies[0].message_id)!;
      assert.equal(send.params.message_thread_id, undefined, 'answered in General');
      const lines: string[] = replies[0].text.split('\n');
      assert.equal(lines[0], '📥 Queues (unassigned, not resolved)');
      assert.ok(lines.includes('Queue Alpha: 2 waiting · oldest 2h 05m'), replies[0].text);
      assert.ok(lines.includes('Queue Empty: empty'), replies[0].text);
      assert.ok(lines.some((l) => /^Queue Paused: 1 waiting · oldest \d+m \(paused\)$/.test(l)), replies[0].text);
      assert.match(lines.at(-1)!, Number(noTeam) ? new RegExp(`^No team: ${noTeam} waiting · oldest \\d`) : /^No team: empty$/);

      // In a ticket topic /queue points to General.
      const o = await openTicket();
      const cmd = await say(ann, o, '/queue');
      assert.deepEqual(botTexts(o, cmd.message_id), ['Use /queue in the General topic.']);
    });
  });

  describe('the transfer note from every path', () => {
    it('an API reassignment (with a note) and a team change by PATCH post the note too', async () => {
      const ann = await agent('Ann');
      const bob = await agent('Bob');
      const billing = await team('Billing API');
      const o = await openTicket();
      await assignTo(o, ann);
      let mark = lastMessageId(o);
      const r = await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: bob.id, note: 'VIP, be quick' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.deepEqual(transferNotes(o, mark), [`🔀 Reassigned from @${ann.username} to @${bob.username}: VIP, be quick`]);

      mark = lastMessageId(o);
      const p = await api.patch(`/v1/tickets/${o.ticketId}`, { team_id: billing.id });
      assert.equal(p.status, 200, JSON.stringify(p.body));
      await settle();
      assert.deepEqual(transferNotes(o, mark), ['🔀 Moved to team Billing API']);
      assert.match((await cardOf(o)).text, /Team: Billing API/);
    });

    it('an agent without a username is named by name; "nobody" for none', async () => {
      const plain = await makeAgent(h.db, { name: 'Gus Plain' });
      const o = await openTicket();
      const mark = lastMessageId(o);
      const r = await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: plain.id });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.deepEqual(transferNotes(o, mark), ['🔀 Reassigned from nobody to Gus Plain']);
    });

    it('five quick reassignments while the send worker is stopped cost ONE transfer note showing the final state, and a customer relay goes first', async () => {
      const [ann, bob, carl] = [await agent('Ann'), await agent('Bob'), await agent('Carl')];
      const o = await openTicket('Hot potato');
      await assignTo(o, ann);
      const mark = lastMessageId(o);
      const before = h.fake.callsTo('sendMessage').length;
      await h.telegram.sends.stop();
      try {
        const steps: [AgentOf, string | null][] = [[bob, 'first hop'], [carl, null], [ann, 'back to you'], [bob, null], [carl, 'final: carl owns it']];
        for (const [who, note] of steps) {
          const r = await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: who.id, ...(note ? { note } : {}) });
          assert.equal(r.status, 200, JSON.stringify(r.body));
        }
        const queued = await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'transfer_note', status: 'queued' });
        assert.equal(queued.length, 1, 'one queued transfer note for five changes');
        assert.equal(queued[0].priority, 1, 'cosmetic: behind messages');
        assert.equal(queued[0].payload.from_assignee_id, ann.id);
        assert.equal(queued[0].payload.to_assignee_id, carl.id);

        // The customer writes meanwhile; the group's budget has room for one message only: the relay gets it.
        h.fake.userSends(h.bot, o.user, 'Any news?');
        await until(() => h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'copy_message', status: 'queued' }).first(), 'the relay row');
        const key = groupKey(h.accountId, h.group.id);
        const rule = h.config.telegram.sends.pacing.perGroup;
        const now = new Date().toISOString();
        await h.db.raw('INSERT INTO telegram_rate_windows (key) VALUES (?) ON CONFLICT DO NOTHING', [key]);
        await h.db.raw('UPDATE telegram_rate_windows SET sent_at = ?::timestamptz[], blocked_until = NULL WHERE key = ?', [Array(rule.limit - 1).fill(now), key]);
        const calls = h.fake.calls.length;
        await h.telegram.sends.drain();
        const posted = h.fake.calls.slice(calls).filter((c) => c.status === 200 && Number(c.params.chat_id) === h.group.id && ['copyMessage', 'sendMessage'].includes(c.method));
        assert.deepEqual(posted.map((c) => c.method), ['copyMessage'], 'the relay went out, the transfer note waits');
        assert.ok(await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'transfer_note', status: 'queued' }).first(), 'still queued');
      } finally {
        h.telegram.sends.start();
      }
      await h.settle(20_000);
      await settle();
      assert.deepEqual(transferNotes(o, mark), [`🔀 Reassigned from @${ann.username} to @${carl.username}: final: carl owns it`], 'one message, first → last, the latest note');
      const notesSent = h.fake.callsTo('sendMessage').slice(before).filter((c) => String(c.params.text ?? '').startsWith('🔀'));
      assert.equal(notesSent.length, 1, 'one sendMessage for the five changes');
      assert.equal((await ticket(o)).assignee_id, carl.id);
      assert.match((await cardOf(o)).text, new RegExp(`Assignee: Carl \\(@${carl.username}\\)`));
    });

    it('a transfer note that fails in flight while a newer change waits: the newer one posts first → last, once', async () => {
      const [ann, bob, carl] = [await agent('Ann'), await agent('Bob'), await agent('Carl')];
      const o = await openTicket('Fails in flight');
      await assignTo(o, ann);
      const mark = lastMessageId(o);
      h.fake.slow({ method: 'sendMessage' }, 1500);
      h.fake.failNext({ method: 'sendMessage', chatId: h.group.id }, { code: 502, description: 'Bad Gateway' });
      try {
        assert.equal((await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: bob.id, note: 'bob first' })).status, 200);
        await until(() => h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'transfer_note', status: 'sending' }).first(), 'the first note in flight');
        assert.equal((await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: carl.id })).status, 200);
        const rows = await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'transfer_note' }).whereIn('status', ['queued', 'sending']).orderBy('id');
        assert.deepEqual(rows.map((r) => r.status), ['sending', 'queued']);
        await until(() => h.fake.callsTo('sendMessage').some((c) => c.status === 502), 'the first note to fail');
      } finally {
        h.fake.slow({ method: 'sendMessage' }, 0);
      }
      await settle();
      assert.deepEqual(transferNotes(o, mark), [`🔀 Reassigned from @${ann.username} to @${carl.username}: bob first`]);
    });

    it('a burst that ends where it started posts nothing', async () => {
      const [ann, bob] = [await agent('Ann'), await agent('Bob')];
      const o = await openTicket('Round trip');
      await assignTo(o, ann);
      const mark = lastMessageId(o);
      await h.telegram.sends.stop();
      try {
        for (const who of [bob, ann]) assert.equal((await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: who.id })).status, 200);
      } finally {
        h.telegram.sends.start();
      }
      await settle();
      assert.deepEqual(transferNotes(o, mark), []);
      const row = await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'transfer_note' }).orderBy('id', 'desc').first();
      assert.equal(row.status, 'cancelled');
    });

    it('sandbox workspaces and tickets without a topic queue nothing', async () => {
      // A sandbox ticket, even one that somehow has a topic address.
      const ws = await makeWorkspace(h.db, h.services, { sandbox: true });
      const acc = await makeAccount(h.db, { workspaceId: ws.id, supportChatId: h.group.id });
      const sandAgent = await makeAgent(h.db, { workspaceId: ws.id, name: 'Sandy Agent' });
      const made = await inTransaction(h.db, (tx) => h.services.tickets.create(tx, { id: ws.id, mode: 'sandbox' }, { subject: 'Sandbox', description: 'x', contact: { first_name: 'Sam', telegram_user_id: 777000 + seq++ }, account_id: acc.id } as never, SYSTEM));
      await h.db('tickets').where({ id: made.ticket.id }).update({ topic_chat_id: h.group.id, topic_thread_id: 999_001 });
      await inTransaction(h.db, (tx) => h.services.assignment.assign(tx, ws.id, made.ticket.id, { agent_id: sandAgent.id, note: 'sandbox note' }, SYSTEM));
      assert.equal((await h.db('tickets').where({ id: made.ticket.id }).first()).assignee_id, sandAgent.id);
      assert.equal((await h.db('telegram_sends').where({ workspace_id: ws.id })).length, 0, 'a sandbox never queues');

      // A live ticket whose bot has no group (so no topic).
      const noGroup = await makeAccount(h.db, { supportChatId: null });
      const ann = await agent('Ann');
      const live = await inTransaction(h.db, (tx) => h.services.tickets.create(tx, { id: 'ws_default', mode: 'live' }, { subject: 'No topic', description: 'x', contact: { first_name: 'Tia', telegram_user_id: 777000 + seq++ }, account_id: noGroup.id } as never, SYSTEM));
      await inTransaction(h.db, (tx) => h.services.assignment.assign(tx, 'ws_default', live.ticket.id, { agent_id: ann.id, note: 'no topic' }, SYSTEM));
      assert.equal((await h.db('telegram_sends').where({ ticket_id: live.ticket.id, op: 'transfer_note' })).length, 0);
    });
  });
});
