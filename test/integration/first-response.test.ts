/**
 * first_response_at and the Telegram-side hooks of the message service: markSent /
 * markFailed (a queued message reached the customer, or could not) and recordInbound (a
 * customer wrote in a ticket's chat). Replies go through the API; the hooks are called on
 * the services as the Telegram module will call them.
 */
import assert from 'node:assert/strict';
import { AppError } from '../../src/kernel/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeAgent, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const START = '2026-11-21T12:00:00.000Z';

describe('first response and the Telegram message hooks', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(START);
  let t: TestApp;
  before(() => { t = createTestApp(db.knex, { clock }); });
  beforeEach(() => clock.set(START));

  let seq = 0;

  /** A live workspace with a bot, a reachable contact and an open ticket for them. */
  async function desk(opts: { reachable?: boolean } = {}) {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const account = await makeAccount(db.knex, { workspaceId: ws.id });
    const telegramUserId = 8_000_000 + ++seq;
    const post = (path: string, body: unknown) => t.request.post(path).set('Authorization', key.auth).send(body as object);
    const get = (path: string) => t.request.get(path).set('Authorization', key.auth);
    const ticketBody = opts.reachable === false
      ? { contact: { telegram_user_id: telegramUserId, first_name: 'Ann' } }
      : { contact_id: (await makeReachableContact(db.knex, t.services, { workspaceId: ws.id, accountId: account.id, telegramUserId })).id };
    const tk = (await post('/v1/tickets', { subject: 'Refund please', ...ticketBody }).expect(201)).body;
    const reply = async (text: string, internal = false) => (await post(`/v1/tickets/${tk.id}/messages`, { text, internal }).expect(201)).body;
    const ticket = async () => (await get(`/v1/tickets/${tk.id}`).expect(200)).body;
    const setStatus = async (...statuses: string[]) => {
      for (const status of statuses) await post(`/v1/tickets/${tk.id}/status`, { status }).expect(200);
    };
    const inbound = (text: string) => db.knex.transaction((trx) => t.services.messages.recordInbound(trx, ws, tk.id, { text, accountId: account.id, chatId: telegramUserId }));
    const events = (where: Record<string, unknown> = {}) => db.knex('events').where({ ticket_id: tk.id, ...where }).orderBy('id');
    return { ws, key, account, telegramUserId, tk, post, get, reply, ticket, setStatus, inbound, events };
  }

  const at = (iso: string) => new Date(iso);
  const markSent = (id: string, when: Date) => db.knex.transaction((trx) => t.services.messages.markSent(trx, id, when));
  const markFailed = (id: string, reason: string, when: Date) => db.knex.transaction((trx) => t.services.messages.markFailed(trx, id, reason, when));
  const messageEvents = (messageId: string, type: string) => db.knex('events').where({ message_id: messageId, type });

  // ---------------------------------------------------------------------------------------
  describe('first_response_at', () => {
    it('stays null while a live reply is queued, and is the sent time once markSent reports it', async () => {
      const d = await desk();
      const m = await d.reply('Looking into it');
      assert.equal(m.status, 'queued');
      assert.equal((await d.ticket()).first_response_at, null, 'queued is not a response yet');
      const sentAt = at('2026-11-21T12:03:07.250Z');
      const settled = await markSent(m.id, sentAt);
      assert.ok(settled);
      assert.equal(settled.status, 'sent');
      assert.equal(settled.sentAt?.toISOString(), sentAt.toISOString());
      assert.equal((await d.ticket()).first_response_at, sentAt.toISOString());
      const shown = (await d.get(`/v1/messages/${m.id}`).expect(200)).body;
      assert.equal(shown.status, 'sent');
      assert.equal(shown.sent_at, sentAt.toISOString());
    });

    it('emits message.sent for the message (actor system)', async () => {
      const d = await desk();
      const m = await d.reply('Hello');
      assert.equal((await messageEvents(m.id, 'message.sent')).length, 0, 'not before it is sent');
      await markSent(m.id, at('2026-11-21T12:01:00.000Z'));
      const sent = await messageEvents(m.id, 'message.sent');
      assert.equal(sent.length, 1);
      assert.equal(sent[0].ticket_id, d.tk.id);
      assert.equal(sent[0].actor_type, 'system');
      assert.equal(sent[0].payload.id, m.id);
      assert.equal(sent[0].payload.status, 'sent');
      assert.equal(sent[0].created_at.toISOString(), '2026-11-21T12:01:00.000Z');
    });

    it('a second markSent is a no-op: no second event, sent_at and first_response_at unchanged', async () => {
      const d = await desk();
      const m = await d.reply('Hello');
      const first = at('2026-11-21T12:01:00.000Z');
      await markSent(m.id, first);
      assert.equal(await markSent(m.id, at('2026-11-21T13:00:00.000Z')), null);
      assert.equal((await messageEvents(m.id, 'message.sent')).length, 1);
      assert.equal((await d.get(`/v1/messages/${m.id}`).expect(200)).body.sent_at, first.toISOString());
      assert.equal((await d.ticket()).first_response_at, first.toISOString());
    });

    it('a later reply does not change it', async () => {
      const d = await desk();
      const m1 = await d.reply('First');
      await markSent(m1.id, at('2026-11-21T12:01:00.000Z'));
      clock.advance(3_600_000);
      const m2 = await d.reply('Second');
      await markSent(m2.id, at('2026-11-21T13:01:00.000Z'));
      assert.equal((await d.ticket()).first_response_at, '2026-11-21T12:01:00.000Z');
    });

    it('is the first reply that reached the customer, not the first one queued', async () => {
      const d = await desk();
      const m1 = await d.reply('queued first');
      const m2 = await d.reply('queued second');
      await markSent(m2.id, at('2026-11-21T12:05:00.000Z'));
      await markSent(m1.id, at('2026-11-21T12:06:00.000Z'));
      assert.equal((await d.ticket()).first_response_at, '2026-11-21T12:05:00.000Z');
    });

    it('internal notes never set it', async () => {
      const d = await desk();
      const note = await d.reply('internal only', true);
      assert.equal(note.status, 'sent');
      assert.equal((await d.ticket()).first_response_at, null);
      assert.equal(await markSent(note.id, at('2026-11-21T12:10:00.000Z')), null, 'a note is never queued, so never settled');
      assert.equal((await d.ticket()).first_response_at, null);
      assert.equal((await messageEvents(note.id, 'message.sent')).length, 0);
    });

    it('markFailed: status failed with the reason, message.failed, and no first response', async () => {
      const d = await desk();
      const m = await d.reply('Will not arrive');
      const failedAt = at('2026-11-21T12:02:00.000Z');
      const settled = await markFailed(m.id, 'Forbidden: bot was blocked by the user', failedAt);
      assert.ok(settled);
      assert.equal(settled.status, 'failed');
      assert.equal(settled.failureReason, 'Forbidden: bot was blocked by the user');
      assert.equal(settled.sentAt, null);
      const shown = (await d.get(`/v1/messages/${m.id}`).expect(200)).body;
      assert.equal(shown.status, 'failed');
      assert.equal(shown.failure_reason, 'Forbidden: bot was blocked by the user');
      assert.equal(shown.sent_at, null);
      const failed = await messageEvents(m.id, 'message.failed');
      assert.equal(failed.length, 1);
      assert.equal(failed[0].actor_type, 'system');
      assert.equal(failed[0].detail.reason, 'Forbidden: bot was blocked by the user');
      assert.equal((await messageEvents(m.id, 'message.sent')).length, 0);
      assert.equal((await d.ticket()).first_response_at, null);
    });

    it('a failed message cannot be marked sent afterwards, and a sent one cannot fail', async () => {
      const d = await desk();
      const failed = await d.reply('fails');
      await markFailed(failed.id, 'chat not found', at('2026-11-21T12:01:00.000Z'));
      assert.equal(await markSent(failed.id, at('2026-11-21T12:02:00.000Z')), null);
      assert.equal((await d.ticket()).first_response_at, null);
      const sent = await d.reply('arrives');
      await markSent(sent.id, at('2026-11-21T12:03:00.000Z'));
      assert.equal(await markFailed(sent.id, 'late failure', at('2026-11-21T12:04:00.000Z')), null);
      const shown = (await d.get(`/v1/messages/${sent.id}`).expect(200)).body;
      assert.equal(shown.status, 'sent');
      assert.equal(shown.failure_reason, null);
      assert.equal((await d.ticket()).first_response_at, '2026-11-21T12:03:00.000Z');
    });

    it('after a failed first reply, the first one sent counts', async () => {
      const d = await desk();
      const m1 = await d.reply('fails');
      await markFailed(m1.id, 'network', at('2026-11-21T12:01:00.000Z'));
      const m2 = await d.reply('arrives');
      await markSent(m2.id, at('2026-11-21T12:09:00.000Z'));
      assert.equal((await d.ticket()).first_response_at, '2026-11-21T12:09:00.000Z');
    });

    it('a proactive message (no ticket) sets no ticket\'s first response', async () => {
      const d = await desk();
      const res = await d.post('/v1/messages/send', { to: d.telegramUserId, text: 'proactive' }).expect(200);
      await markSent(res.body.id, at('2026-11-21T12:01:00.000Z'));
      assert.equal((await messageEvents(res.body.id, 'message.sent')).length, 1);
      assert.equal((await d.ticket()).first_response_at, null);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('recordInbound (a customer message)', () => {
    it('writes the inbound message and a message.received event', async () => {
      const d = await desk();
      clock.advance(120_000);
      const { message, ticket } = await d.inbound('Any news?');
      assert.equal(message.direction, 'inbound');
      assert.equal(message.visibility, 'public');
      assert.equal(message.status, 'received');
      assert.equal(message.authorType, 'contact');
      assert.equal(message.authorId, d.tk.contact.id);
      assert.equal(message.ticketId, d.tk.id);
      assert.equal(message.text, 'Any news?');
      assert.equal(ticket.ticket.status, 'open', 'an open ticket stays open');
      const received = await messageEvents(message.id, 'message.received');
      assert.equal(received.length, 1);
      assert.equal(received[0].ticket_id, d.tk.id);
      assert.equal(received[0].actor_type, 'contact');
      assert.equal(received[0].actor_id, d.tk.contact.id);
      assert.equal(received[0].created_at.toISOString(), clock.now().toISOString());
      const thread = (await d.get(`/v1/tickets/${d.tk.id}/messages`).expect(200)).body.items;
      assert.deepEqual(thread.map((m: any) => [m.text, m.direction, m.status]), [['Any news?', 'inbound', 'received']]);
      assert.equal((await d.ticket()).first_response_at, null, 'a customer message is no response');
    });

    it('moves waiting_on_customer → in_progress when the ticket is assigned', async () => {
      const d = await desk();
      const agent = await makeAgent(db.knex, { workspaceId: d.ws.id });
      await d.post(`/v1/tickets/${d.tk.id}/assign`, { agent_id: agent.id }).expect(200);
      await d.reply('Which order?');
      assert.equal((await d.ticket()).status, 'waiting_on_customer');
      const { ticket } = await d.inbound('Order 1234');
      assert.equal(ticket.ticket.status, 'in_progress');
      assert.equal((await d.ticket()).status, 'in_progress');
      const changes = await d.events({ type: 'ticket.status_changed' });
      const last = changes.at(-1);
      assert.deepEqual(last.detail, { from: 'waiting_on_customer', to: 'in_progress', reason: 'customer_message' });
      assert.equal(last.actor_type, 'contact');
    });

    it('moves waiting_on_customer → open when nobody is assigned', async () => {
      const d = await desk();
      await d.reply('Which order?');
      const { ticket } = await d.inbound('Order 1234');
      assert.equal(ticket.ticket.status, 'open');
      assert.equal((await d.ticket()).status, 'open');
      const last = (await d.events({ type: 'ticket.status_changed' })).at(-1);
      assert.deepEqual(last.detail, { from: 'waiting_on_customer', to: 'open', reason: 'customer_message' });
    });

    it('leaves open and in_progress tickets as they are', async () => {
      const d = await desk();
      await d.inbound('hello');
      assert.equal((await d.ticket()).status, 'open');
      await d.setStatus('in_progress');
      await d.inbound('hello again');
      assert.equal((await d.ticket()).status, 'in_progress');
      assert.equal((await d.events({ type: 'ticket.status_changed' })).length, 1, 'only the API move');
    });

    it('reopens a resolved ticket: open, reopened_count + 1, resolved_at cleared, ticket.reopened', async () => {
      const d = await desk();
      await d.setStatus('resolved');
      assert.ok((await d.ticket()).resolved_at);
      clock.advance(3_600_000);
      const { ticket } = await d.inbound('It broke again');
      assert.equal(ticket.ticket.status, 'open');
      const after = await d.ticket();
      assert.equal(after.status, 'open');
      assert.equal(after.reopened_count, 1);
      assert.equal(after.resolved_at, null);
      const reopened = await d.events({ type: 'ticket.reopened' });
      assert.equal(reopened.length, 1);
      assert.equal(reopened[0].actor_type, 'contact');
      assert.deepEqual(reopened[0].detail, { from: 'resolved', to: 'open', reason: 'customer_message' });
      const last = (await d.events({ type: 'ticket.status_changed' })).at(-1);
      assert.deepEqual(last.detail, { from: 'resolved', to: 'open', reason: 'customer_message' });
    });

    it('counts every reopen', async () => {
      const d = await desk();
      await d.setStatus('resolved');
      await d.inbound('again');
      await d.setStatus('resolved');
      await d.inbound('and again');
      assert.equal((await d.ticket()).reopened_count, 2);
      assert.equal((await d.events({ type: 'ticket.reopened' })).length, 2);
    });

    it('leaves a resolved ticket resolved when the workspace has reopen_resolved_on_reply = false', async () => {
      const d = await desk();
      await t.request.patch('/v1/workspace').set('Authorization', d.key.auth).send({ reopen_resolved_on_reply: false }).expect(200);
      await d.setStatus('resolved');
      const resolvedAt = (await d.ticket()).resolved_at;
      const { message, ticket } = await d.inbound('thanks!');
      assert.equal(ticket.ticket.status, 'resolved');
      const after = await d.ticket();
      assert.equal(after.status, 'resolved');
      assert.equal(after.reopened_count, 0);
      assert.equal(after.resolved_at, resolvedAt);
      assert.equal((await d.events({ type: 'ticket.reopened' })).length, 0);
      assert.equal((await messageEvents(message.id, 'message.received')).length, 1, 'the message is still recorded');
    });

    it('refuses a closed ticket with a 409 AppError and writes nothing', async () => {
      const d = await desk();
      await d.setStatus('resolved', 'closed');
      const eventsBefore = (await d.events()).length;
      await assert.rejects(d.inbound('hello?'), (err: unknown) => {
        assert.ok(err instanceof AppError, String(err));
        assert.equal(err.status, 409);
        assert.equal(err.code, 'conflict');
        return true;
      });
      assert.equal((await db.knex('messages').where({ ticket_id: d.tk.id, direction: 'inbound' })).length, 0);
      assert.equal((await d.events()).length, eventsBefore);
      assert.equal((await d.ticket()).status, 'closed');
    });

    it('records the private chat: a contact who never wrote becomes reachable', async () => {
      const d = await desk({ reachable: false });
      const contactId = d.tk.contact.id;
      const before = await d.post(`/v1/tickets/${d.tk.id}/messages`, { text: 'Hi Ann' });
      assert.equal(before.status, 422);
      assert.equal(before.body.code, 'recipient_unreachable');
      assert.equal((await db.knex('contact_chats').where({ contact_id: contactId })).length, 0);
      await d.inbound('Hello, it is Ann');
      const chats = await db.knex('contact_chats').where({ contact_id: contactId });
      assert.equal(chats.length, 1);
      assert.equal(chats[0].account_id, d.account.id);
      assert.equal(chats[0].chat_id, d.telegramUserId);
      const reply = (await d.post(`/v1/tickets/${d.tk.id}/messages`, { text: 'Hi Ann' }).expect(201)).body;
      assert.equal(reply.status, 'queued');
      const [send] = await db.knex('telegram_sends').where({ message_id: reply.id });
      assert.equal(send.chat_id, d.telegramUserId);
      assert.equal(send.account_id, d.account.id);
    });
  });
});
