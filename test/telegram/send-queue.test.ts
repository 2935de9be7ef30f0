/**
 * The durable Telegram send queue (src/telegram/send-queue.ts, send-executor.ts, send-worker.ts)
 * against the fake Bot API server: API messages delivered and settled (sent/failed with their
 * events), order per chat, pacing under Telegram's real limits, 429/5xx/network/permanent/403
 * handling, relays before cosmetic updates and their coalescing, leases (a dead worker) and two
 * workers on one database, and sandbox workspaces that never reach Telegram.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createServices, type Services } from '../../src/container.js';
import type { Knex } from '../../src/db/knex.js';
import { SYSTEM } from '../../src/kernel/actor.js';
import { systemClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { accountStore } from '../../src/accounts/account-store.js';
import { createBotApi, type BotApi } from '../../src/telegram/bot-api.js';
import { createSendExecutor, type RetrySettings } from '../../src/telegram/send-executor.js';
import { botKey, chatKey, groupKey, pacingKeys, sendQueue, type PacingRules } from '../../src/send-queue/send-queue.js';
import { createSendWorker, type SendWorker } from '../../src/telegram/send-worker.js';
import { topicName } from '../../src/topics/topic-card.js';
import { ERR, startFakeBotApi, type Call, type FakeBot, type FakeBotApi, type FakeUser } from '../helpers/fake-bot-api.js';
import { makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { useTelegramHarness, type TelegramHarness, ticketRows } from '../helpers/telegram-harness.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';

// ------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------

/** Waits for an observable condition (polls; no fixed sleeps). */
async function eventually<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const chatOf = (c: Call) => Number(c.params.chat_id);
/** Calls to `method` into `chatId`, made after the `since` mark (an index into fake.calls). */
const callsInto = (fake: FakeBotApi, method: string, chatId: number, since = 0) =>
  fake.calls.slice(since).filter((c) => c.method === method && chatOf(c) === chatId);
/** What the bot wrote to a customer, oldest first. */
const botTexts = (fake: FakeBotApi, bot: FakeBot, user: FakeUser) =>
  fake.messagesIn(user.id, { botId: bot.id }).filter((m) => m.from?.is_bot).map((m) => m.text as string);

const describe429 = (c: Call) => `${c.method} → ${c.params.chat_id} at +${c.at % 100_000} ms: ${c.response?.description}`;

async function eventsOf(db: Knex, messageId: string, type: string) {
  return db('events').where({ message_id: messageId, type }).orderBy('id');
}

async function sendRowOf(db: Knex, messageId: string) {
  const rows = await db('telegram_sends').where({ message_id: messageId });
  assert.equal(rows.length, 1, `one send row for ${messageId}`);
  return rows[0];
}

// ------------------------------------------------------------------------------------------
// Through the whole app (harness): API → queue → fake Telegram
// ------------------------------------------------------------------------------------------

describe('telegram send queue', () => {
  describe('delivering what the API queued', () => {
    const harness = useTelegramHarness();
    let h: TelegramHarness;
    before(async () => {
      h = harness.h;
      await h.db('workspaces').where({ id: 'ws_default' }).update({ daily_send_limit: 100_000 });
    });

    /** A customer who has written to the bot (/help: no form left open), and their contact id. */
    async function customer(name: string): Promise<{ user: FakeUser; contactId: string }> {
      const user = h.fake.addUser({ firstName: name });
      h.fake.userSends(h.bot, user, '/help');
      await h.settle();
      // The /help answer has arrived, so no reply of the bot's is still on its way when the test starts.
      await eventually(() => botTexts(h.fake, h.bot, user).length >= 1, `the /help answer to ${name}`);
      const row = await eventually(() => h.db('contacts').where({ telegram_user_id: user.id }).first(), `contact for ${name}`);
      return { user, contactId: row.id };
    }

    async function apiSend(to: string, text: string) {
      const res = await h.api.post('/v1/messages/send').set('Authorization', h.auth).send({ to, text });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body as { id: string; status: string; simulated: boolean };
    }

    async function ticketWithTopic(contactId: string, subject = 'Cannot log in') {
      const res = await h.api.post('/v1/tickets').set('Authorization', h.auth).send({ contact_id: contactId, subject });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await h.settle();
      const t = await h.db('tickets').where({ id: res.body.id }).first();
      assert.ok(t.topic_thread_id, 'the topic was created');
      return t;
    }

    const getMessage = async (id: string) => (await h.api.get(`/v1/messages/${id}`).set('Authorization', h.auth).expect(200)).body;

    it('a message queued by POST /v1/messages/send reaches the customer and becomes sent, with a message.sent event', async () => {
      const { user, contactId } = await customer('Sarah');
      const mark = h.fake.calls.length;
      const queued = await apiSend(contactId, 'Your order has shipped');
      assert.equal(queued.status, 'queued');
      assert.equal(queued.simulated, false);
      await h.settle();

      const calls = callsInto(h.fake, 'sendMessage', user.id, mark);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].status, 200);
      assert.equal(botTexts(h.fake, h.bot, user).filter((t) => t === 'Your order has shipped').length, 1);
      const m = await getMessage(queued.id);
      assert.equal(m.status, 'sent');
      assert.ok(m.sent_at);
      assert.equal(m.failure_reason, null);
      const sent = await eventsOf(h.db, queued.id, 'message.sent');
      assert.equal(sent.length, 1);
      assert.equal(sent[0].payload.status, 'sent');
      const row = await sendRowOf(h.db, queued.id);
      assert.equal(row.status, 'sent');
      assert.equal(row.attempts, 1);
      const ref = await h.db('message_telegram_refs').where({ message_id: queued.id, role: 'copy' }).first();
      assert.equal(Number(ref.chat_id), user.id);
      assert.equal(Number(ref.telegram_message_id), calls[0].response.result.message_id);
    });

    it('edit_message and delete_message: done once Telegram has done them; "not modified" and "not found" are done too, with one call each', async () => {
      const { user } = await customer('Edith');
      const target = h.fake.messagesIn(user.id, { botId: h.bot.id }).filter((m) => m.from?.is_bot).at(-1)!;
      const queue = async (op: 'edit_message' | 'delete_message', payload: Record<string, unknown>) => {
        await sendQueue.enqueue(h.db, { workspaceId: 'ws_default', accountId: h.accountId, chatId: user.id, op, payload, at: new Date() });
        await h.settle();
        const [row] = await h.db('telegram_sends').where({ op, chat_id: user.id }).orderBy('id', 'desc').limit(1);
        return row;
      };
      const markup = { inline_keyboard: [[{ text: 'OK', callback_data: 'x:1' }]] };
      const edit = { message_id: target.message_id, text: 'Edited', reply_markup: markup };
      const mark = h.fake.calls.length;

      assert.equal((await queue('edit_message', edit)).status, 'sent');
      const edited = h.fake.message(user.id, target.message_id, { botId: h.bot.id })!;
      assert.equal(edited.text, 'Edited');
      assert.deepEqual(edited.reply_markup, markup);
      const same = await queue('edit_message', edit);
      assert.equal(same.status, 'sent', 'message is not modified: nothing left to do');
      assert.equal(same.attempts, 1);
      const gone = await queue('edit_message', { ...edit, message_id: 999_999 });
      assert.equal(gone.status, 'cancelled', 'message to edit not found: nothing to do, not a failure');
      assert.equal(gone.attempts, 1);

      assert.equal((await queue('delete_message', { message_id: target.message_id })).status, 'sent');
      assert.equal(h.fake.message(user.id, target.message_id, { botId: h.bot.id }), undefined);
      const again = await queue('delete_message', { message_id: target.message_id });
      assert.equal(again.status, 'cancelled', 'message to delete not found: already done');
      assert.equal(again.attempts, 1);
      assert.deepEqual(h.fake.calls.slice(mark).filter((c) => c.params.chat_id !== undefined && chatOf(c) === user.id).map((c) => c.method),
        ['editMessageText', 'editMessageText', 'editMessageText', 'deleteMessage', 'deleteMessage'], 'no retries');

      // Deleting posts nothing, so it is not paced; an edit is paced like a post.
      const rules = { perChat: { limit: 1, windowMs: 1000 }, perGroup: { limit: 20, windowMs: 60_000 }, perBot: { limit: 30, windowMs: 1000 } };
      assert.deepEqual(pacingKeys({ op: 'delete_message', account_id: h.accountId, chat_id: h.group.id }, rules), []);
      assert.deepEqual(pacingKeys({ op: 'edit_message', account_id: h.accountId, chat_id: h.group.id }, rules).map((k) => k.key),
        pacingKeys({ op: 'send_message', account_id: h.accountId, chat_id: h.group.id }, rules).map((k) => k.key));
    });

    it('a public reply through POST /v1/tickets/{id}/messages reaches the customer, becomes sent and is the first response', async () => {
      const { user, contactId } = await customer('Omar');
      const ticket = await ticketWithTopic(contactId);
      const mark = h.fake.calls.length;
      const res = await h.api.post(`/v1/tickets/${ticket.id}/messages`).set('Authorization', h.auth).send({ text: 'Please try resetting your password' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.status, 'queued');
      await h.settle();

      assert.equal(callsInto(h.fake, 'sendMessage', user.id, mark).length, 1);
      assert.equal(botTexts(h.fake, h.bot, user).at(-1), 'Please try resetting your password');
      const m = await getMessage(res.body.id);
      assert.equal(m.status, 'sent');
      assert.equal((await eventsOf(h.db, res.body.id, 'message.sent')).length, 1);
      const after = await h.db('tickets').where({ id: ticket.id }).first();
      assert.ok(after.first_response_at, 'first_response_at is set once the reply reached the customer');
      assert.equal(after.first_response_at.toISOString(), m.sent_at);
    });

    it('keeps order per chat: 10 messages to one customer arrive in order while another chat proceeds in parallel', async () => {
      const a = await customer('Ann');
      const b = await customer('Ben');
      const mark = h.fake.calls.length;
      const chain = async (c: { contactId: string }, tag: string) => {
        for (let i = 1; i <= 10; i++) await apiSend(c.contactId, `${tag} ${i}`);
      };
      await Promise.all([chain(a, 'A'), chain(b, 'B')]);
      await h.settle();

      const expect = (tag: string) => Array.from({ length: 10 }, (_, i) => `${tag} ${i + 1}`);
      assert.deepEqual(botTexts(h.fake, h.bot, a.user).filter((t) => t.startsWith('A ')), expect('A'));
      assert.deepEqual(botTexts(h.fake, h.bot, b.user).filter((t) => t.startsWith('B ')), expect('B'));
      // Parallel: the chats' sends interleave instead of one chat waiting for the other's ten.
      const order = h.fake.calls.slice(mark).filter((c) => c.method === 'sendMessage').map((c) => (chatOf(c) === a.user.id ? 'A' : chatOf(c) === b.user.id ? 'B' : '-'));
      assert.ok(order.indexOf('B') < order.lastIndexOf('A') && order.indexOf('A') < order.lastIndexOf('B'), `interleaved: ${order.join('')}`);
      const rows = await h.db('telegram_sends').join('messages', 'messages.id', 'telegram_sends.message_id').whereIn('messages.contact_id', [a.contactId, b.contactId]).select('telegram_sends.status', 'messages.status as m');
      assert.equal(rows.length, 20);
      assert.ok(rows.every((r) => r.status === 'sent' && r.m === 'sent'));
    });

    it('a 429 with retry_after is honoured: the chat pauses (blocked_until), the next attempt waits, and it is not counted as a failure', async () => {
      const { user, contactId } = await customer('Rita');
      const mark = h.fake.calls.length;
      h.fake.failNext({ method: 'sendMessage', chatId: user.id }, { code: 429, description: 'Too Many Requests: retry after 2', retryAfter: 2 });
      const queued = await apiSend(contactId, 'Flood-controlled hello');

      const first = await eventually(() => callsInto(h.fake, 'sendMessage', user.id, mark).find((c) => c.status === 429), 'the 429');
      const key = chatKey(h.accountId, user.id);
      const window = await eventually(async () => (await h.db('telegram_rate_windows').where({ key }).first())?.blocked_until ? h.db('telegram_rate_windows').where({ key }).first() : null, 'blocked_until');
      assert.ok(new Date(window.blocked_until).getTime() >= first.at + 2000, 'paused for retry_after from the 429');
      const waiting = await sendRowOf(h.db, queued.id);
      assert.ok(['queued', 'sending'].includes(waiting.status));
      await h.settle();

      const calls = callsInto(h.fake, 'sendMessage', user.id, mark);
      assert.deepEqual(calls.map((c) => c.status), [429, 200]);
      assert.ok(calls[1].at - calls[0].at >= 2000, `retried ${calls[1].at - calls[0].at} ms after the 429 (retry_after 2 s)`);
      const row = await sendRowOf(h.db, queued.id);
      assert.equal(row.status, 'sent');
      assert.equal(row.attempts, 2);
      assert.equal(row.failures, 0, 'a 429 is a wait, not a failure');
      assert.equal((await getMessage(queued.id)).status, 'sent');
      assert.equal((await eventsOf(h.db, queued.id, 'message.failed')).length, 0);
      assert.equal(botTexts(h.fake, h.bot, user).filter((t) => t === 'Flood-controlled hello').length, 1);
    });

    it('5xx answers are retried with backoff, the chat\'s later message waiting behind, and then delivered in order', async () => {
      const { user, contactId } = await customer('Ivan');
      const mark = h.fake.calls.length;
      h.fake.failNext({ method: 'sendMessage', chatId: user.id, times: 2 }, { code: 502, description: 'Bad Gateway' });
      const one = await apiSend(contactId, 'first');
      const two = await apiSend(contactId, 'second');
      await h.settle();

      const calls = callsInto(h.fake, 'sendMessage', user.id, mark);
      assert.deepEqual(calls.map((c) => c.status), [502, 502, 200, 200]);
      assert.deepEqual(calls.map((c) => c.params.text), ['first', 'first', 'first', 'second'], 'the second waits for the first');
      // Exponential backoff from retryBaseMs (50 ms in the harness) with ±20 % jitter: ≥ 40 ms, then ≥ 80 ms.
      assert.ok(calls[1].at - calls[0].at >= 40, `first backoff ${calls[1].at - calls[0].at} ms`);
      assert.ok(calls[2].at - calls[1].at >= 80, `second backoff ${calls[2].at - calls[1].at} ms`);
      const row = await sendRowOf(h.db, one.id);
      assert.equal(row.status, 'sent');
      assert.equal(row.failures, 2);
      assert.equal(row.attempts, 3);
      assert.equal((await getMessage(one.id)).status, 'sent');
      assert.equal((await getMessage(two.id)).status, 'sent');
      assert.deepEqual(botTexts(h.fake, h.bot, user).slice(-2), ['first', 'second']);
    });

    it('after maxFailures 5xx answers the row and its message are failed with the reason and message.failed', async () => {
      const { user, contactId } = await customer('Nora');
      const max = h.config.telegram.sends.maxFailures;
      const mark = h.fake.calls.length;
      h.fake.failNext({ method: 'sendMessage', chatId: user.id, times: max }, { code: 503, description: 'Service Unavailable' });
      const queued = await apiSend(contactId, 'never arrives');
      await h.settle(30_000);

      // Had it tried once more, that call would have succeeded (only `max` faults were injected).
      const calls = callsInto(h.fake, 'sendMessage', user.id, mark);
      assert.equal(calls.length, max, `gives up after ${max} failures`);
      assert.ok(calls.every((c) => c.status === 503));
      const row = await sendRowOf(h.db, queued.id);
      assert.equal(row.status, 'failed');
      assert.equal(row.last_error, '503: Service Unavailable');
      const m = await getMessage(queued.id);
      assert.equal(m.status, 'failed');
      assert.equal(m.failure_reason, '503: Service Unavailable');
      const failed = await eventsOf(h.db, queued.id, 'message.failed');
      assert.equal(failed.length, 1);
      assert.equal(failed[0].detail.reason, '503: Service Unavailable');
      assert.equal((await eventsOf(h.db, queued.id, 'message.sent')).length, 0);
    });

    it('a permanent 400 fails the message at once with Telegram\'s description (one call, no retry)', async () => {
      const { user, contactId } = await customer('Pavel');
      const mark = h.fake.calls.length;
      h.fake.failNext({ method: 'sendMessage', chatId: user.id }, { code: 400, description: ERR.textTooLong });
      const queued = await apiSend(contactId, 'too long for Telegram (pretend)');
      await h.settle();

      assert.equal(callsInto(h.fake, 'sendMessage', user.id, mark).length, 1);
      const row = await sendRowOf(h.db, queued.id);
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts, 1);
      assert.equal(row.failures, 0);
      const m = await getMessage(queued.id);
      assert.equal(m.status, 'failed');
      assert.match(m.failure_reason, /Bad Request: message is too long/);
      const failed = await eventsOf(h.db, queued.id, 'message.failed');
      assert.equal(failed.length, 1);
      assert.match(failed[0].detail.reason, /Bad Request: message is too long/);
      assert.ok(!botTexts(h.fake, h.bot, user).includes('too long for Telegram (pretend)'));
    });

    it('a customer who blocked the bot (403) on an API reply: contact blocked, message failed with a reason, a note and a message in the topic, one sendMessage only', async () => {
      const { user, contactId } = await customer('Bella');
      const ticket = await ticketWithTopic(contactId, 'Billing question');
      const mark = h.fake.calls.length;
      h.fake.failNext({ method: 'sendMessage', chatId: user.id }, { code: 403, description: ERR.blocked });
      const res = await h.api.post(`/v1/tickets/${ticket.id}/messages`).set('Authorization', h.auth).send({ text: 'We refunded you' });
      assert.equal(res.status, 201);
      await h.settle();

      assert.equal(callsInto(h.fake, 'sendMessage', user.id, mark).length, 1, 'no retry after 403');
      const m = await getMessage(res.body.id);
      assert.equal(m.status, 'failed');
      assert.equal(m.failure_reason, 'The customer has blocked the bot');
      const failed = await eventsOf(h.db, res.body.id, 'message.failed');
      assert.equal(failed.length, 1);
      const row = await sendRowOf(h.db, res.body.id);
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts, 1);
      assert.match(row.last_error, /Forbidden: bot was blocked by the user/);
      const contact = (await h.api.get(`/v1/contacts/${contactId}`).set('Authorization', h.auth).expect(200)).body;
      assert.equal(contact.blocked, true);
      const notes = (await h.api.get(`/v1/tickets/${ticket.id}/messages?visibility=internal`).set('Authorization', h.auth).expect(200)).body.items;
      assert.ok(notes.some((n: any) => n.text === '⚠️ Not delivered: the customer has blocked the bot.'), JSON.stringify(notes.map((n: any) => n.text)));
      const topic = h.fake.topic(h.group.id, Number(ticket.topic_thread_id))!;
      assert.ok(topic.messages.some((x) => x.text === '⚠️ Not delivered: the customer has blocked the bot.'), 'agents are told in the topic');
      // And nothing more is queued for them: the API refuses up front.
      const again = await h.api.post('/v1/messages/send').set('Authorization', h.auth).send({ to: contactId, text: 'hello?' });
      assert.equal(again.status, 422);
      assert.equal(callsInto(h.fake, 'sendMessage', user.id, mark).length, 1);
    });

    it('an agent\'s topic reply to a customer who blocked the bot (403): one copyMessage only, contact blocked, reply failed, note in the topic', async () => {
      const { user, contactId } = await customer('Carl');
      const ticket = await ticketWithTopic(contactId, 'Shipping');
      const agent = h.fake.addUser({ firstName: 'Alex', username: 'alex_agent' });
      h.fake.addMember(h.group, agent);
      const mark = h.fake.calls.length;
      h.fake.failNext({ method: 'copyMessage', chatId: user.id }, { code: 403, description: ERR.blocked });
      h.fake.memberSends(h.group, agent, 'Your parcel is on its way', { threadId: Number(ticket.topic_thread_id) });
      await h.settle();

      assert.equal(callsInto(h.fake, 'copyMessage', user.id, mark).length, 1, 'no retry after 403');
      const reply = await h.db('messages').where({ ticket_id: ticket.id, text: 'Your parcel is on its way' }).first();
      assert.equal(reply.status, 'failed');
      assert.equal(reply.failure_reason, 'The customer has blocked the bot');
      assert.equal((await eventsOf(h.db, reply.id, 'message.failed')).length, 1);
      assert.equal((await h.db('contacts').where({ id: contactId }).first()).blocked, true);
      const topic = h.fake.topic(h.group.id, Number(ticket.topic_thread_id))!;
      assert.ok(topic.messages.some((x) => x.from?.is_bot && x.text === '⚠️ Not delivered: the customer has blocked the bot.'));
      assert.ok(!botTexts(h.fake, h.bot, user).includes('Your parcel is on its way'));
    });

    it('relays go before cosmetic updates, and any number of changes leaves one queued edit_card and one rename_topic per ticket', async () => {
      const { user, contactId } = await customer('Dora');
      const ticket = await ticketWithTopic(contactId, 'Login broken');
      const auth = h.auth;
      await h.telegram.sends.stop();
      try {
        await h.api.patch(`/v1/tickets/${ticket.id}`).set('Authorization', auth).send({ priority: 'high' }).expect(200);
        await h.api.patch(`/v1/tickets/${ticket.id}`).set('Authorization', auth).send({ tags: ['vip'] }).expect(200);
        await h.api.patch(`/v1/tickets/${ticket.id}`).set('Authorization', auth).send({ subject: 'Login still broken' }).expect(200);
        await h.api.post(`/v1/tickets/${ticket.id}/status`).set('Authorization', auth).send({ status: 'in_progress' }).expect(200);
        await h.api.patch(`/v1/tickets/${ticket.id}`).set('Authorization', auth).send({ priority: 'urgent', tags: ['vip', 'sso'] }).expect(200);
        await h.api.patch(`/v1/tickets/${ticket.id}`).set('Authorization', auth).send({ subject: 'Login broken since Monday' }).expect(200);

        const queued = await h.db('telegram_sends').where({ ticket_id: ticket.id, status: 'queued' }).select('op', 'priority');
        assert.deepEqual(queued.filter((r) => r.op === 'edit_card').map((r) => r.priority), [1], 'one queued card edit');
        assert.deepEqual(queued.filter((r) => r.op === 'rename_topic').map((r) => r.priority), [1], 'one queued rename');

        // The customer writes: a relay into the same group, queued after the cosmetic rows.
        h.fake.userSends(h.bot, user, 'Any news?');
        await eventually(() => h.db('telegram_sends').where({ ticket_id: ticket.id, op: 'copy_message', status: 'queued' }).first(), 'the relay row');
        // The group's budget has room for one message only: it must go to the relay.
        const key = groupKey(h.accountId, h.group.id);
        const rule = h.config.telegram.sends.pacing.perGroup;
        const now = new Date().toISOString();
        await h.db.raw('INSERT INTO telegram_rate_windows (key) VALUES (?) ON CONFLICT DO NOTHING', [key]);
        await h.db.raw('UPDATE telegram_rate_windows SET sent_at = ?::timestamptz[], blocked_until = NULL WHERE key = ?', [Array(rule.limit - 1).fill(now), key]);
        const mark = h.fake.calls.length;
        await h.telegram.sends.drain();

        const copies = callsInto(h.fake, 'copyMessage', h.group.id, mark);
        assert.equal(copies.length, 1, 'the relay went out');
        assert.equal(copies[0].status, 200);
        assert.equal(callsInto(h.fake, 'editMessageText', h.group.id, mark).length, 0, 'the card edit waits');
        assert.equal(callsInto(h.fake, 'editForumTopic', h.group.id, mark).length, 0, 'the rename waits');
        const still = await h.db('telegram_sends').where({ ticket_id: ticket.id, status: 'queued' }).pluck('op');
        assert.deepEqual(still.sort(), ['edit_card', 'rename_topic']);
      } finally {
        h.telegram.sends.start();
      }
      const mark = h.fake.calls.length;
      await h.settle(20_000);
      const edits = callsInto(h.fake, 'editMessageText', h.group.id, mark);
      const renames = callsInto(h.fake, 'editForumTopic', h.group.id, mark);
      assert.equal(edits.length, 1, 'one card edit for all the changes');
      assert.equal(renames.length, 1, 'one rename for all the changes');
      const t = await ticketRows(h.db).where({ 'tickets.id': ticket.id }).first();
      const topic = h.fake.topic(h.group.id, Number(t.topic_thread_id))!;
      assert.equal(topic.name, topicName({ status: t.status, number: t.number, subject: 'Login broken since Monday' }), 'the latest state');
      const card = h.fake.message(h.group.id, Number(t.topic_card_message_id))!;
      assert.match(card.text, /Priority: urgent/);
      assert.match(card.text, /Tags: #vip #sso/);
      assert.match(card.text, /Login broken since Monday/);
    });

    it('sandbox workspaces never call Telegram: messages are sent with simulated: true and tickets get no topic', async () => {
      const ws = await makeWorkspace(h.db, h.services, { sandbox: true });
      const key = await makeKey(h.db, h.services, { workspaceId: ws.id });
      const sandboxBot = h.fake.addBot({ username: 'sandbox_desk_bot' });
      const sandboxGroup = h.fake.addGroup({ title: 'Sandbox support' });
      h.fake.addBotToGroup(sandboxBot, sandboxGroup);
      const customerUser = h.fake.addUser({ firstName: 'Sandy' });
      h.fake.userSends(sandboxBot, customerUser, 'hello'); // started: a live workspace could write to them

      const account = await h.api.post('/v1/accounts').set('Authorization', key.auth).send({ name: 'Sandbox bot', bot_token: sandboxBot.token, support_chat_id: sandboxGroup.id });
      assert.equal(account.status, 201, JSON.stringify(account.body));
      const contact = await h.api.post('/v1/contacts').set('Authorization', key.auth).send({ telegram_user_id: customerUser.id, first_name: 'Sandy' });
      assert.ok([200, 201].includes(contact.status), JSON.stringify(contact.body));
      const sent = [];
      for (const text of ['one', 'two', 'three']) {
        const r = await h.api.post('/v1/messages/send').set('Authorization', key.auth).send({ to: contact.body.id, text, account_id: account.body.id });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        sent.push(r.body);
      }
      const ticket = await h.api.post('/v1/tickets').set('Authorization', key.auth).send({ contact_id: contact.body.id, subject: 'Sandbox ticket', account_id: account.body.id });
      assert.equal(ticket.status, 201, JSON.stringify(ticket.body));
      const reply = await h.api.post(`/v1/tickets/${ticket.body.id}/messages`).set('Authorization', key.auth).send({ text: 'A simulated reply' });
      assert.equal(reply.status, 201);
      await h.api.patch(`/v1/tickets/${ticket.body.id}`).set('Authorization', key.auth).send({ priority: 'urgent', subject: 'Renamed' }).expect(200);
      await h.api.post(`/v1/tickets/${ticket.body.id}/status`).set('Authorization', key.auth).send({ status: 'resolved' }).expect(200);
      await h.telegram.runtime.reconcile();
      await h.settle();

      for (const m of [...sent, reply.body]) {
        assert.equal(m.status, 'sent');
        assert.equal(m.simulated, true);
        assert.ok(m.sent_at);
        assert.equal((await eventsOf(h.db, m.id, 'message.sent')).length, 1);
      }
      assert.equal(Number((await h.db('telegram_sends').where({ workspace_id: ws.id }).count({ n: '*' }))[0].n), 0, 'nothing queued');
      assert.deepEqual(h.fake.calls.filter((c) => c.token === sandboxBot.token).map((c) => c.method), [], 'no call with the sandbox bot\'s token');
      assert.deepEqual(h.fake.topics(sandboxGroup.id), []);
      assert.equal((await h.api.get(`/v1/tickets/${ticket.body.id}`).set('Authorization', key.auth).expect(200)).body.topic, null);
    });
  });

  // ------------------------------------------------------------------------------------------
  // Telegram's real limits, enforced by the fake
  // ------------------------------------------------------------------------------------------

  describe('pacing under Telegram\'s real limits (the fake answers 429 past them)', () => {
    const harness = useTelegramHarness({ realPacing: true, limits: {} });
    let h: TelegramHarness;
    before(async () => {
      h = harness.h;
      await h.db('workspaces').where({ id: 'ws_default' }).update({ daily_send_limit: 100_000 });
    });

    it('40 messages to 20 customers go out with zero 429s (1 a second per chat, 30 a second per bot), in order per chat', async function () {
      this.timeout(60_000);
      const limited = h.fake.rateLimited.length;
      const customers = Array.from({ length: 20 }, (_, i) => h.fake.addUser({ firstName: `Cust${i}` }));
      for (const u of customers) h.fake.userSends(h.bot, u, '/help'); // 20 replies at once as well
      await h.settle(30_000);
      const ids: string[] = [];
      for (let round = 1; round <= 2; round++) {
        for (const u of customers) {
          const res = await h.api.post('/v1/messages/send').set('Authorization', h.auth).send({ to: String(u.id), text: `update ${round}` });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          ids.push(res.body.id);
        }
      }
      await h.settle(45_000);

      assert.deepEqual(h.fake.rateLimited.slice(limited).map(describe429), [], 'no 429');
      for (const u of customers) assert.deepEqual(botTexts(h.fake, h.bot, u).slice(-2), ['update 1', 'update 2'], `customer ${u.firstName}`);
      const statuses = await h.db('messages').whereIn('id', ids).pluck('status');
      assert.equal(statuses.length, 40);
      assert.ok(statuses.every((s) => s === 'sent'));
    });

    it('a new ticket\'s topic and card, then the customer\'s next messages, reach the support group with zero 429s (one a second per chat holds in the group too)', async function () {
      this.timeout(60_000);
      const limited = h.fake.rateLimited.length;
      const user = h.fake.addUser({ firstName: 'Gus' });
      h.fake.userSends(h.bot, user, '/help');
      await h.settle(30_000);
      const contact = await eventually(() => h.db('contacts').where({ telegram_user_id: user.id }).first(), 'the contact');
      const mark = h.fake.calls.length;
      const res = await h.api.post('/v1/tickets').set('Authorization', h.auth).send({ contact_id: contact.id, subject: 'Paced topic' });
      assert.equal(res.status, 201);
      await eventually(() => h.fake.calls.slice(mark).some((c) => c.method === 'createForumTopic' && c.status === 200), 'the topic');
      for (const text of ['one', 'two', 'three']) h.fake.userSends(h.bot, user, text);
      await eventually(() => callsInto(h.fake, 'copyMessage', h.group.id, mark).filter((c) => c.status === 200).length >= 3, 'three relays', 30_000);

      assert.deepEqual(h.fake.rateLimited.slice(limited).map(describe429), [], 'no 429');
      await h.settle(30_000);
      const t = await h.db('tickets').where({ id: res.body.id }).first();
      const topic = h.fake.topic(h.group.id, Number(t.topic_thread_id))!;
      assert.deepEqual(topic.messages.filter((m) => ['one', 'two', 'three'].includes(m.text)).map((m) => m.text), ['one', 'two', 'three']);
    });

    it('the group\'s 20 a minute: with 20 group messages in the last minute, the next waits until the oldest is a window old (no 429)', async function () {
      this.timeout(60_000);
      await h.settle(30_000);
      const user = h.fake.addUser({ firstName: 'Hana' });
      h.fake.userSends(h.bot, user, '/help');
      await h.settle(30_000);
      const contact = await eventually(() => h.db('contacts').where({ telegram_user_id: user.id }).first(), 'the contact');
      const res = await h.api.post('/v1/tickets').set('Authorization', h.auth).send({ contact_id: contact.id, subject: 'Busy group' });
      assert.equal(res.status, 201);
      await h.settle(30_000);

      // The queue's own count for the group: 20 sends 59 s ago (say, by another replica).
      const rule = h.config.telegram.sends.pacing.perGroup;
      const key = groupKey(h.accountId, h.group.id);
      const oldest = Date.now() - (rule.windowMs - 2_000);
      await h.db.raw('UPDATE telegram_rate_windows SET sent_at = ?::timestamptz[], blocked_until = NULL WHERE key = ?', [Array(rule.limit).fill(new Date(oldest).toISOString()), key]);
      const mark = h.fake.calls.length;
      const limited = h.fake.rateLimited.length;
      h.fake.userSends(h.bot, user, 'is anyone there?');
      const [copy] = await eventually(() => {
        const c = callsInto(h.fake, 'copyMessage', h.group.id, mark).filter((x) => x.status !== 0);
        return c.length ? c : null;
      }, 'the relay', 30_000);
      assert.equal(copy.status, 200);
      assert.ok(copy.at >= oldest + rule.windowMs, `sent ${copy.at - (oldest + rule.windowMs)} ms after the window allowed it`);
      assert.deepEqual(h.fake.rateLimited.slice(limited).map(describe429), []);
    });
  });

  // ------------------------------------------------------------------------------------------
  // The queue's mechanics on a database: leases, two workers, network errors
  // ------------------------------------------------------------------------------------------

  describe('claims, leases and workers on one database', () => {
    const FAST: PacingRules = { perChat: { limit: 1, windowMs: 50 }, perGroup: { limit: 20, windowMs: 3000 }, perBot: { limit: 30, windowMs: 50 } };
    const RETRY: RetrySettings = { maxFailures: 3, baseDelayMs: 20, maxDelayMs: 100 };
    let database: TestDatabase;
    let db: Knex;
    let fake: FakeBotApi;
    let bot: FakeBot;
    let services: Services;
    let accountId: string;
    const logger = createLogger('silent', new Writable({ write(_c, _e, cb) { cb(); } }));
    const workers: SendWorker[] = [];

    before(async () => {
      database = await createTestDatabase();
      db = database.knex;
      fake = await startFakeBotApi({ limits: false });
      bot = fake.addBot({ username: 'queue_bot' });
      services = createServices({ config: loadConfig({ NODE_ENV: 'test' }), db, logger, clock: systemClock });
      const account = await accountStore.insert(db, { workspaceId: 'ws_default', name: 'Queue bot', botUserId: bot.id, botUsername: bot.username, botToken: bot.token, supportChatId: null, isDefault: false, at: new Date() });
      accountId = account.id;
      await db('workspaces').where({ id: 'ws_default' }).update({ daily_send_limit: 100_000 });
    });
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.stop()));
    });
    after(async () => {
      await fake?.close();
      await database?.drop();
    });

    const realApi = () => createBotApi({ db, accounts: services.accounts, apiRoot: fake.url, timeoutMs: 5_000 });
    function worker(api: BotApi, o: { retry?: RetrySettings; leaseMs?: number } = {}): SendWorker {
      const executor = createSendExecutor({ db, logger, clock: systemClock, api, messages: services.messages, contacts: services.contacts, topics: services.topics, sla: services.sla, retry: o.retry ?? RETRY, pacing: FAST });
      const w = createSendWorker({ db, logger, clock: systemClock, executor, settings: { concurrency: 8, pollIntervalMs: 20, leaseMs: o.leaseMs ?? 30_000, claimAheadMs: 0, pacing: FAST } });
      workers.push(w);
      return w;
    }
    async function customer(): Promise<{ user: FakeUser; contactId: string }> {
      const user = fake.addUser();
      fake.userSends(bot, user, 'hi'); // the customer started the bot (nobody polls these updates)
      const contact = await makeReachableContact(db, services, { accountId, telegramUserId: user.id });
      return { user, contactId: contact.id };
    }
    const queue = async (contactId: string, text: string) =>
      (await services.messages.send(db, { id: 'ws_default', mode: 'live' }, { to: contactId, text, account_id: accountId }, SYSTEM)).message;
    const idle = () => eventually(async () => Number((await db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' }))[0].n) === 0, 'an empty queue', 20_000);
    const sentTexts = (user: FakeUser) => fake.messagesIn(user.id, { botId: bot.id }).filter((m) => m.from?.is_bot).map((m) => m.text as string);

    it('a claim with nothing due is one statement, no transaction, and says when the next row is due; once due, the row is claimed', async () => {
      await idle();
      const { contactId } = await customer();
      const m = await queue(contactId, 'later');
      const later = new Date(Date.now() + 60_000);
      await db('telegram_sends').where({ message_id: m.id }).update({ next_attempt_at: later });
      const sent: string[] = [];
      const record = (q: { sql: string }) => { sent.push(q.sql); };
      db.on('query', record);
      try {
        const idleClaim = await sendQueue.claim(db, { now: new Date(), limit: 8, leaseMs: 30_000, rules: FAST });
        assert.deepEqual(idleClaim.claimed, []);
        assert.equal(idleClaim.nextAt?.getTime(), later.getTime());
        assert.equal(sent.length, 1, `one statement, no BEGIN: ${sent.join(' | ')}`);
        const dueClaim = await sendQueue.claim(db, { now: new Date(later.getTime() + 1), limit: 8, leaseMs: 30_000, rules: FAST });
        assert.deepEqual(dueClaim.claimed.map((c) => c.messageId), [m.id]);
        assert.ok(sent.some((s) => /^BEGIN/i.test(s)), 'a claim that takes rows is a transaction');
      } finally {
        db.removeListener('query', record);
        await db('telegram_sends').where({ message_id: m.id }).update({ status: 'cancelled', lease_until: null, done_at: new Date() });
      }
    });

    it('a claim that takes rows also says when the next row is due', async () => {
      await idle();
      const { contactId } = await customer();
      const now = await queue(contactId, 'now');
      const later = await queue(contactId, 'later');
      const at = new Date(Date.now() + 60_000);
      await db('telegram_sends').where({ message_id: later.id }).update({ next_attempt_at: at });
      try {
        const claim = await sendQueue.claim(db, { now: new Date(), limit: 8, leaseMs: 30_000, rules: FAST });
        assert.deepEqual(claim.claimed.map((c) => c.messageId), [now.id]);
        assert.equal(claim.nextAt?.getTime(), at.getTime());
      } finally {
        await db('telegram_sends').whereIn('message_id', [now.id, later.id]).update({ status: 'cancelled', lease_until: null, done_at: new Date() });
      }
    });

    it('a row whose worker died after claiming is sent by another worker once the lease expires (at most one duplicate: the dead worker may have reached Telegram); the dead claim\'s late outcome is refused', async () => {
      const { user } = await customer();
      const contact = await db('contacts').where({ telegram_user_id: user.id }).first();
      const m = await queue(contact.id, 'lease me');
      const { claimed: [dead] } = await sendQueue.claim(db, { now: new Date(), limit: 10, leaseMs: 400, rules: FAST });
      assert.equal(dead.messageId, m.id);
      assert.equal(dead.attempts, 1);
      // It reached Telegram, then the process died before recording the outcome.
      await realApi().call(accountId, 'sendMessage', { chat_id: user.id, text: dead.payload.text });

      const other = worker(realApi());
      assert.equal(await other.drain(), 0, 'a live lease is not taken');
      assert.equal((await sendRowOf(db, m.id)).status, 'sending');
      const row0 = await sendRowOf(db, m.id);
      await eventually(() => Date.now() > new Date(row0.lease_until).getTime() + 5, 'the lease to expire');
      assert.equal(await other.drain(), 1, 'the expired lease is taken over');

      const row = await sendRowOf(db, m.id);
      assert.equal(row.status, 'sent');
      assert.equal(row.attempts, 2);
      assert.equal((await db('messages').where({ id: m.id }).first()).status, 'sent');
      assert.deepEqual(sentTexts(user), ['lease me', 'lease me'], 'exactly one duplicate: the dead worker\'s call and the new owner\'s');

      // The dead worker's outcome, arriving late, is fenced off by attempts.
      assert.equal(await sendQueue.finish(db, dead, { status: 'failed', error: 'late', at: new Date() }), false);
      assert.equal(await sendQueue.retryLater(db, dead, { at: new Date(), error: 'late', countsAsFailure: true }), false);
      const after = await sendRowOf(db, m.id);
      assert.equal(after.status, 'sent');
      assert.equal(after.last_error, null);
      assert.equal(after.failures, 0);
      assert.equal((await db('messages').where({ id: m.id }).first()).status, 'sent');
      assert.equal((await eventsOf(db, m.id, 'message.sent')).length, 1);
    });

    it('two send workers on one database deliver 100 messages exactly once each, in order per chat', async function () {
      this.timeout(60_000);
      const customers = await Promise.all(Array.from({ length: 10 }, () => customer()));
      const ids: string[] = [];
      for (let i = 1; i <= 10; i++) for (const c of customers) ids.push((await queue(c.contactId, `msg ${i}`)).id);
      const counts = [0, 0];
      const counting = (n: number, api: BotApi): BotApi => ({ client: api.client, call: (a, method, p) => { if (method === 'sendMessage') counts[n]++; return api.call(a, method, p); } });
      const w1 = worker(counting(0, realApi()));
      const w2 = worker(counting(1, realApi()));
      w1.start();
      w2.start();
      await idle();

      assert.equal(counts[0] + counts[1], 100, `calls by worker: ${counts.join(' + ')}`);
      for (const c of customers) assert.deepEqual(sentTexts(c.user), Array.from({ length: 10 }, (_, i) => `msg ${i + 1}`));
      const rows = await db('telegram_sends').whereIn('message_id', ids);
      assert.equal(rows.length, 100);
      assert.ok(rows.every((r) => r.status === 'sent' && r.attempts === 1), 'each claimed once');
      const statuses = await db('messages').whereIn('id', ids).pluck('status');
      assert.ok(statuses.length === 100 && statuses.every((s) => s === 'sent'));
      const events = await db('events').whereIn('message_id', ids).where({ type: 'message.sent' }).count({ n: '*' });
      assert.equal(Number(events[0].n), 100);
    });

    it('a row whose pacing slot opens within claimAheadMs is claimed ahead and its call waits for the slot; its place in the windows then moves to when the answer came; a later slot is claimed when it is claimAheadMs away', async () => {
      const [soon, later] = [await customer(), await customer()];
      const m = await queue(soon.contactId, 'ahead of its slot');
      const m2 = await queue(later.contactId, 'not yet');
      const now = Date.now();
      // Each chat holds a send claimed ahead by another replica: 50 ms windows (FAST) put the
      // next slots 300 ms and 650 ms from now.
      const setWindow = (user: FakeUser, at: number) => db.raw(
        `INSERT INTO telegram_rate_windows (key, sent_at) VALUES (?, ARRAY[?::timestamptz]) ON CONFLICT (key) DO UPDATE SET sent_at = EXCLUDED.sent_at, blocked_until = NULL`,
        [chatKey(accountId, user.id), new Date(at).toISOString()]);
      await setWindow(soon.user, now + 250);
      await setWindow(later.user, now + 600);
      const { claimed, nextAt } = await sendQueue.claim(db, { now: new Date(now), limit: 10, leaseMs: 30_000, rules: FAST, aheadMs: 400 });
      assert.deepEqual(claimed.map((c) => c.messageId), [m.id], 'only the row whose slot is within 400 ms');
      const [row] = claimed;
      assert.equal(row.slotAt?.getTime(), now + 300);
      assert.equal(nextAt?.getTime(), now + 650 - 400, 'the claim comes back when the later slot is 400 ms away');
      const windowOf = async (user: FakeUser) => (await db('telegram_rate_windows').where({ key: chatKey(accountId, user.id) }).first()).sent_at.map((d: Date) => new Date(d).getTime());
      assert.deepEqual(await windowOf(soon.user), [now + 300], 'the slot is reserved in the chat\'s window at claim time');
      assert.equal((await sendRowOf(db, m2.id)).status, 'queued');

      // The call: when it left, and when its (slow) answer came.
      let leftAt = 0;
      let answeredAt = 0;
      const api = realApi();
      const slowAnswer: BotApi = {
        client: api.client,
        async call(a, method, p) {
          leftAt = Date.now();
          const result = await api.call(a, method, p);
          await new Promise((r) => setTimeout(r, 200));
          answeredAt = Date.now();
          return result as any;
        },
      };
      const executor = createSendExecutor({ db, logger, clock: systemClock, api: slowAnswer, messages: services.messages, contacts: services.contacts, topics: services.topics, sla: services.sla, retry: RETRY, pacing: FAST });
      await executor.run(row);
      assert.equal((await sendRowOf(db, m.id)).status, 'sent');
      assert.ok(leftAt >= now + 300, `the call left ${now + 300 - leftAt} ms before its slot`);
      const [place] = await windowOf(soon.user);
      assert.ok(place >= answeredAt, 'the chat\'s window counts the send from when its answer came');

      await sendQueue.claim(db, { now: new Date(now + 250), limit: 10, leaseMs: 30_000, rules: FAST, aheadMs: 400 }).then(async ({ claimed: [r2] }) => {
        assert.equal(r2?.messageId, m2.id);
        await executor.run(r2);
      });
      await idle();
    });

    it('a send still in flight past its slot counts as leaving as late as the next claim: a row sharing its window is slotted a window after that claim; its answer ends that', async () => {
      const ONE_A_SECOND: PacingRules = { perChat: { limit: 1, windowMs: 50 }, perGroup: { limit: 20, windowMs: 3000 }, perBot: { limit: 1, windowMs: 1000 } };
      await idle();
      await db('telegram_rate_windows').where({ key: botKey(accountId) }).update({ sent_at: [], pending_at: [] }); // earlier tests' sends
      const [first, second] = [await customer(), await customer()];
      const a = await queue(first.contactId, 'in flight');
      const b = await queue(second.contactId, 'same bot');
      const t0 = Date.now();
      const { claimed: [rowA] } = await sendQueue.claim(db, { now: new Date(t0), limit: 1, leaseMs: 30_000, rules: ONE_A_SECOND });
      assert.equal(rowA.messageId, a.id);
      assert.equal(rowA.slotAt?.getTime(), t0);
      const pendingOf = async () => (await db('telegram_rate_windows').where({ key: botKey(accountId) }).first()).pending_at.map((d: Date) => new Date(d).getTime());
      assert.deepEqual(await pendingOf(), [t0], 'the bot window knows the send is not answered yet');
      // 300 ms later its answer has not come: it may have left only now
      const { claimed: [rowB] } = await sendQueue.claim(db, { now: new Date(t0 + 300), limit: 10, leaseMs: 30_000, rules: ONE_A_SECOND, aheadMs: 5_000 });
      assert.equal(rowB.messageId, b.id);
      assert.equal(rowB.slotAt?.getTime(), t0 + 300 + 1000, 'a window after the claim, not after the first send\'s slot');
      assert.deepEqual(await pendingOf(), [t0 + 1300], 'a window of one forgets the place before the new one');
      await sendQueue.recordSent(db, rowB, ONE_A_SECOND, new Date(t0 + 1400));
      assert.deepEqual(await pendingOf(), [], 'answered: no longer pending');
      await db('telegram_sends').whereIn('id', [rowA.id, rowB.id]).update({ status: 'cancelled', done_at: new Date() });
      await db('telegram_rate_windows').where({ key: botKey(accountId) }).update({ sent_at: [], pending_at: [] });
    });

    it('a call answered 5xx (it may have taken effect) counts in the windows from when the answer came, not from its slot', async () => {
      const { user, contactId } = await customer();
      const m = await queue(contactId, 'maybe delivered');
      const claimedAt = Date.now();
      const { claimed } = await sendQueue.claim(db, { now: new Date(claimedAt), limit: 10, leaseMs: 30_000, rules: FAST });
      const row = claimed.find((c) => c.messageId === m.id)!;
      assert.equal(row.slotAt?.getTime(), claimedAt);
      let answeredAt = 0;
      const api = realApi();
      const failsAfterEffect: BotApi = {
        client: api.client,
        async call(a, method, p) {
          await api.call(a, method, p); // it reached Telegram…
          await new Promise((r) => setTimeout(r, 100));
          answeredAt = Date.now();
          throw Object.assign(new Error('502: Bad Gateway'), { response: { error_code: 502, description: 'Bad Gateway' } }); // …but the answer was lost
        },
      };
      const executor = createSendExecutor({ db, logger, clock: systemClock, api: failsAfterEffect, messages: services.messages, contacts: services.contacts, topics: services.topics, sla: services.sla, retry: RETRY, pacing: FAST });
      await executor.run(row);
      const after = await sendRowOf(db, m.id);
      assert.equal(after.status, 'queued', 'retried later');
      assert.equal(after.failures, 1);
      const [place] = (await db('telegram_rate_windows').where({ key: chatKey(accountId, user.id) }).first()).sent_at.map((d: Date) => new Date(d).getTime());
      assert.ok(place >= answeredAt, `counted from ${place - claimedAt} ms after the claim, the answer came ${answeredAt - claimedAt} ms after`);
      worker(realApi()).start();
      await idle();
    });

    it('network errors (connection refused) are retried with backoff and the message is then delivered', async () => {
      const { user, contactId } = await customer();
      const m = await queue(contactId, 'after a network blip');
      const dead = createBotApi({ db, accounts: services.accounts, apiRoot: 'http://127.0.0.1:1', timeoutMs: 2_000 });
      const live = realApi();
      let n = 0;
      const flaky: BotApi = { client: live.client, call: (a, method, p) => (n++ < 2 ? dead.call(a, method, p) : live.call(a, method, p)) };
      worker(flaky).start();
      await idle();

      const row = await sendRowOf(db, m.id);
      assert.equal(row.status, 'sent');
      assert.equal(row.failures, 2);
      assert.equal(row.attempts, 3);
      assert.equal((await db('messages').where({ id: m.id }).first()).status, 'sent');
      assert.deepEqual(sentTexts(user), ['after a network blip']);
    });

    it('a network error that never clears fails the row and message after maxFailures, with a reason that does not leak the token', async () => {
      const { user, contactId } = await customer();
      const m = await queue(contactId, 'into the void');
      const dead = createBotApi({ db, accounts: services.accounts, apiRoot: 'http://127.0.0.1:1', timeoutMs: 2_000 });
      let n = 0;
      const counting: BotApi = { client: dead.client, call: (a, method, p) => { n++; return dead.call(a, method, p); } };
      worker(counting).start();
      await idle();

      assert.equal(n, RETRY.maxFailures);
      const row = await sendRowOf(db, m.id);
      assert.equal(row.status, 'failed');
      assert.match(row.last_error, /ECONNREFUSED/);
      const msg = await db('messages').where({ id: m.id }).first();
      assert.equal(msg.status, 'failed');
      assert.match(msg.failure_reason, /ECONNREFUSED/);
      assert.ok(!msg.failure_reason.includes(bot.token.split(':')[1]), 'the bot token is not in the reason');
      assert.equal((await eventsOf(db, m.id, 'message.failed')).length, 1);
      assert.deepEqual(sentTexts(user), []);
    });
  });
});
