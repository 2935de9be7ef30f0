/**
 * SPEC §3.3, the inbound half: every update handled once and in order per chat, one ticket per
 * customer however fast they write, replicas that share a database, topics deleted or closed by
 * hand, and the webhook route (secret token, unknown bots, malformed ids, nothing in the logs).
 * Everything runs through the real workers against the fake Bot API server; each test checks
 * what Telegram saw (the fake) and what topicdesk stored (database / API).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createServices } from '../../src/container.js';
import { systemClock } from '../../src/lib/clock.js';
import { newId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/logger.js';
import { createTelegram } from '../../src/telegram/telegram.js';
import { updateInbox } from '../../src/telegram/update-inbox.js';
import { webhookSecretFor } from '../../src/telegram/webhook-secret.js';
import type { FakeUser, Message, Update } from '../helpers/fake-bot-api.js';
import { settleConfirmed as settle, useTelegramHarness, type TelegramHarness, ticketRows } from '../helpers/telegram-harness.js';

// ------------------------------------------------------------------------------------------
// Journeys shared by the tests
// ------------------------------------------------------------------------------------------


/** What the bot has written to this customer, oldest first. */
const fromBot = (h: TelegramHarness, user: FakeUser): Message[] =>
  h.fake.messagesIn(user.id, { botId: h.bot.id }).filter((m) => m.from?.id === h.bot.id);

const press = (h: TelegramHarness, user: FakeUser, m: Message, data: string): string =>
  h.fake.userPresses(h.bot, user, { chatId: user.id, messageId: m.message_id }, data);

function buttonData(m: Message, label: RegExp): string {
  const b = (m.reply_markup?.inline_keyboard ?? []).flat().find((x: { text: string }) => label.test(x.text));
  assert.ok(b, `a button ${label} under "${m.text}"`);
  return b.callback_data;
}

/** Answers the default form up to its last question (the optional email); returns that question. */
async function fillFormUntilEmail(h: TelegramHarness, user: FakeUser, subject: string): Promise<Message> {
  h.fake.userSends(h.bot, user, '/start');
  await settle(h);
  const q1 = fromBot(h, user).at(-1)!;
  press(h, user, q1, q1.reply_markup.inline_keyboard[0][0].callback_data);
  await settle(h);
  h.fake.userSends(h.bot, user, subject);
  await settle(h);
  h.fake.userSends(h.bot, user, `Details about ${subject}`);
  await settle(h);
  const q4 = fromBot(h, user).at(-1)!;
  assert.match(q4.text, /email/i, 'the last question of the default form is the email');
  return q4;
}

interface TicketRow { id: string; number: number; subject: string; topic_chat_id: string | null; topic_thread_id: string | null; topic_card_message_id: string | null; topic_closed: boolean }

async function ticketsOf(h: TelegramHarness, user: FakeUser): Promise<TicketRow[]> {
  return ticketRows(h.db).join('contacts', 'contacts.id', 'tickets.contact_id')
    .where('contacts.telegram_user_id', user.id).orderBy('tickets.number');
}

/** A customer with one open ticket whose topic (with its pinned card) exists. */
async function openTicket(h: TelegramHarness, user: FakeUser, subject: string): Promise<{ id: string; number: number; threadId: number }> {
  const q4 = await fillFormUntilEmail(h, user, subject);
  press(h, user, q4, buttonData(q4, /^Skip$/));
  await settle(h);
  const [t] = await ticketsOf(h, user);
  assert.ok(t && t.topic_thread_id !== null, 'the ticket has its topic');
  return { id: t.id, number: t.number, threadId: Number(t.topic_thread_id) };
}

/** Copies of customer texts in a topic, in the order they appear there. */
const textsIn = (h: TelegramHarness, threadId: number, prefix: string): string[] =>
  (h.fake.topic(h.group.id, threadId)?.messages ?? []).filter((m) => m.from?.id === h.bot.id && typeof m.text === 'string' && m.text.startsWith(prefix)).map((m) => m.text);

const lastUpdateOf = (h: TelegramHarness, pred: (u: Update) => boolean): Update => {
  const u = h.fake.updatesFor(h.bot).filter(pred).at(-1);
  assert.ok(u, 'the fake produced that update');
  return u;
};

async function storedRows(h: TelegramHarness, updateId: number): Promise<number> {
  const [{ n }] = await h.db('telegram_updates').where({ account_id: h.accountId, update_id: updateId }).count({ n: '*' });
  return Number(n);
}

/** A Bot API message update as Telegram would push it, for a customer the fake knows. */
function craftedUpdate(updateId: number, user: FakeUser, text: string, messageId: number): Update {
  return {
    update_id: updateId,
    message: {
      message_id: messageId, from: { id: user.id, is_bot: false, first_name: user.firstName, language_code: 'en' },
      chat: { id: user.id, type: 'private', first_name: user.firstName }, date: Math.floor(Date.now() / 1000), text,
      ...(text.startsWith('/') ? { entities: [{ type: 'bot_command', offset: 0, length: text.split(' ')[0].length }] } : {}),
    },
  };
}

// ------------------------------------------------------------------------------------------

describe('Telegram robustness: inbound updates and topics (SPEC §3.3)', () => {
  const harness = useTelegramHarness({ config: { telegram: { updates: { concurrency: 4 } } } });
  let h: TelegramHarness;
  before(() => { h = harness.h; });

  describe('each update is processed once', () => {
    it('gives an update Telegram delivers again after it was handled no second effect', async () => {
      const user = h.fake.addUser({ firstName: 'Dora' });
      const t = await openTicket(h, user, 'Printer on fire');
      h.fake.userSends(h.bot, user, 'again: it is still burning');
      await settle(h);
      const update = lastUpdateOf(h, (u) => u.message?.from?.id === user.id && u.message?.text === 'again: it is still burning');

      // Telegram resends (a restart before the offset moved, a webhook timeout): twice, and twice at once.
      assert.equal(await updateInbox.store(h.db, h.accountId, [update], new Date()), 0, 'a known update is not stored again');
      const again = await Promise.all([updateInbox.store(h.db, h.accountId, [update], new Date()), updateInbox.store(h.db, h.accountId, [update], new Date())]);
      assert.deepEqual(again, [0, 0]);
      h.telegram.updates.wake();
      await settle(h);

      assert.deepEqual(textsIn(h, t.threadId, 'again:'), ['again: it is still burning'], 'copied into the topic once');
      const msgs = await h.db('messages').where({ ticket_id: t.id, text: 'again: it is still burning' });
      assert.equal(msgs.length, 1, 'one message recorded');
      assert.equal(await storedRows(h, update.update_id), 1);
    });

    it('handles an update stored twice at the same moment once', async () => {
      const user = h.fake.addUser({ firstName: 'Eli' });
      h.fake.userSends(h.bot, user, '/help'); // the chat exists: the bot may write to Eli
      await settle(h);
      assert.equal(fromBot(h, user).length, 1);
      const update = craftedUpdate(5_000_001, user, '/help', 9001);
      const stored = await Promise.all([
        updateInbox.store(h.db, h.accountId, [update], new Date()),
        updateInbox.store(h.db, h.accountId, [update], new Date()),
      ]);
      assert.equal(stored[0] + stored[1], 1, 'exactly one of the two inserts stored it');
      h.telegram.updates.wake();
      await settle(h);
      const replies = fromBot(h, user);
      assert.equal(replies.length, 2, 'the help text once for the real /help and once for the crafted one');
      assert.equal(replies[0].text, replies[1].text);
      assert.equal(await storedRows(h, 5_000_001), 1);
      const row = await h.db('telegram_updates').where({ account_id: h.accountId, update_id: 5_000_001 }).first();
      assert.ok(row.processed_at, 'handled');
      assert.equal(row.attempts, 0, 'on the first attempt');
    });
  });

  it('handles the updates of one chat in update_id order, with several update workers', async () => {
    assert.ok(h.config.telegram.updates.concurrency >= 2, 'several workers compete');
    const user = h.fake.addUser({ firstName: 'Fay' });
    const t = await openTicket(h, user, 'Order matters');
    // Ten messages stored in one go, while the poller is stopped (then it fetches them again: dedupe).
    await h.telegram.runtime.stop();
    const texts = Array.from({ length: 10 }, (_, i) => `step ${String(i + 1).padStart(2, '0')}`);
    for (const text of texts) h.fake.userSends(h.bot, user, text);
    const updates = h.fake.updatesFor(h.bot).slice(-10);
    assert.deepEqual(updates.map((u) => u.message?.text), texts);
    assert.equal(await updateInbox.store(h.db, h.accountId, updates, new Date()), 10);
    h.telegram.updates.wake();
    await h.telegram.runtime.start();
    await settle(h);

    assert.deepEqual(textsIn(h, t.threadId, 'step '), texts, 'the copies appear in the topic in the order written');
    const recorded = await h.db('messages').where({ ticket_id: t.id }).where('text', 'like', 'step %').orderBy('id');
    assert.deepEqual(recorded.map((m) => m.text), texts, 'recorded in the order written, once each');
    const handled = await h.db('telegram_updates').where({ account_id: h.accountId }).whereIn('update_id', updates.map((u) => u.update_id)).whereNotNull('processed_at');
    assert.equal(handled.length, 10, 'each stored once and handled');
  });

  describe('a per-customer lock', () => {
    /** Stops the poller, lets `act` produce updates, restarts it: they arrive in one getUpdates answer. */
    async function inOneBatch(act: () => void): Promise<Update[]> {
      await h.telegram.runtime.stop();
      const before = h.fake.updatesFor(h.bot).length;
      act();
      const produced = h.fake.updatesFor(h.bot).slice(before);
      await h.telegram.runtime.start();
      await settle(h);
      const ids = produced.map((u) => u.update_id);
      const batch = h.fake.callsTo('getUpdates').find((c) => Array.isArray(c.response?.result) && ids.every((id) => c.response.result.some((u: Update) => u.update_id === id)));
      assert.ok(batch, 'the updates reached the bot in one getUpdates answer');
      return produced;
    }

    it('never starts two forms for two quick messages of a new customer, and opens no ticket or topic', async () => {
      const topicsBefore = h.fake.topics(h.group.id).length;
      const user = h.fake.addUser({ firstName: 'Gus' });
      await inOneBatch(() => {
        h.fake.userSends(h.bot, user, 'hello?');
        h.fake.userSends(h.bot, user, 'anyone there? my card was charged twice');
      });
      const intros = fromBot(h, user).filter((m) => /no open ticket/i.test(m.text));
      assert.equal(intros.length, 1, 'one form started');
      assert.deepEqual(await ticketsOf(h, user), [], 'no ticket before the form is complete');
      assert.equal(h.fake.topics(h.group.id).length, topicsBefore, 'no topic');
      const contacts = await h.db('contacts').where({ telegram_user_id: user.id });
      assert.equal(contacts.length, 1, 'one contact');
    });

    it('opens one ticket and one topic when the last answer and a follow-up arrive in one batch', async () => {
      const topicsBefore = h.fake.topics(h.group.id).length;
      const user = h.fake.addUser({ firstName: 'Hana' });
      await fillFormUntilEmail(h, user, 'Two at once');
      await inOneBatch(() => {
        h.fake.userSends(h.bot, user, 'hana@example.com');
        h.fake.userSends(h.bot, user, 'follow-up: also the invoice is wrong');
      });
      const tickets = await ticketsOf(h, user);
      assert.equal(tickets.length, 1, 'one ticket');
      assert.equal(h.fake.topics(h.group.id).length, topicsBefore + 1, 'one topic');
      assert.equal(fromBot(h, user).filter((m) => /^Ticket #\d+ created/.test(m.text)).length, 1);
      assert.deepEqual(textsIn(h, Number(tickets[0].topic_thread_id), 'follow-up:'), ['follow-up: also the invoice is wrong'], 'the follow-up went to that ticket');
    });

    it('opens one ticket when the last question\'s Skip button is pressed twice in one batch', async () => {
      const topicsBefore = h.fake.topics(h.group.id).length;
      const user = h.fake.addUser({ firstName: 'Ivo' });
      const q4 = await fillFormUntilEmail(h, user, 'Double tap');
      const skip = buttonData(q4, /^Skip$/);
      let second = '';
      await inOneBatch(() => {
        press(h, user, q4, skip);
        second = press(h, user, q4, skip);
      });
      assert.equal((await ticketsOf(h, user)).length, 1, 'one ticket');
      assert.equal(h.fake.topics(h.group.id).length, topicsBefore + 1, 'one topic');
      assert.equal(fromBot(h, user).filter((m) => /^Ticket #\d+ created/.test(m.text)).length, 1);
      assert.match(h.fake.callbackAnswers.get(second)?.text ?? '', /already answered/i, 'the second press is answered, not acted on');
    });
  });

  it('does not process updates twice when a second replica runs on the same database', async () => {
    const lines: string[] = [];
    const logger = createLogger('debug', new Writable({ write(chunk, _e, cb) { lines.push(chunk.toString()); cb(); } }));
    const deps = { config: h.config, db: h.db, logger, clock: systemClock };
    const replica = createTelegram({ ...deps, services: createServices(deps) });
    await replica.start();
    try {
      const user = h.fake.addUser({ firstName: 'Jon' });
      const t = await openTicket(h, user, 'Two replicas');
      const texts = Array.from({ length: 6 }, (_, i) => `replica check ${i + 1}`);
      for (const text of texts) h.fake.userSends(h.bot, user, text);
      // Both replicas' workers drain at once, on top of their own loops.
      await Promise.all([h.telegram.updates.drain(), replica.updates.drain(), h.telegram.updates.drain(), replica.updates.drain()]);
      await settle(h);

      assert.deepEqual(textsIn(h, t.threadId, 'replica check'), texts, 'each message copied once, in order');
      const recorded = await h.db('messages').where({ ticket_id: t.id }).where('text', 'like', 'replica check%');
      assert.equal(recorded.length, texts.length, 'each message recorded once');
      const questions = fromBot(h, user).map((m) => m.text);
      assert.equal(new Set(questions).size, questions.length, 'no question of the form was asked twice');
      assert.equal((await ticketsOf(h, user)).length, 1);
      assert.deepEqual(h.fake.callsTo('getUpdates').filter((c) => c.status === 409), [], 'only one replica polls Telegram');
    } finally {
      await replica.stop();
    }
  });

  describe('a topic deleted by hand', () => {
    for (const error of ['message thread not found', 'TOPIC_DELETED'] as const) {
      it(`is recreated with a pinned card, the mapping updated and the failed message delivered there ("${error}")`, async () => {
        const user = h.fake.addUser({ firstName: `Kim ${error}` });
        const t = await openTicket(h, user, `Deleted topic ${error}`);
        h.fake.deleteTopicByHand(h.group, t.threadId);
        h.fake.deletedTopicError = error;
        try {
          h.fake.userSends(h.bot, user, 'lost message: are you there?');
          await settle(h);
        } finally {
          h.fake.deletedTopicError = 'message thread not found';
        }

        const failed = h.fake.callsTo('copyMessage').filter((c) => Number(c.params.message_thread_id) === t.threadId && c.status === 400);
        assert.equal(failed.length, 1, 'the copy into the old topic failed');
        assert.match(failed[0].response.description, error === 'TOPIC_DELETED' ? /TOPIC_DELETED/ : /message thread not found/);

        const view = await h.api.get(`/v1/tickets/${t.id}`).set('Authorization', h.auth).expect(200);
        const newThread = view.body.topic?.message_thread_id;
        assert.equal(typeof newThread, 'number');
        assert.notEqual(newThread, t.threadId, 'the ticket points at a new topic');
        assert.equal(view.body.topic.chat_id, h.group.id);
        const topic = h.fake.topic(h.group.id, newThread)!;
        assert.ok(topic && !topic.deleted && !topic.closed, 'the new topic exists');
        assert.match(topic.name, new RegExp(`#${t.number} · Deleted topic`));

        const [row] = await ticketsOf(h, user);
        assert.equal(Number(row.topic_thread_id), newThread);
        const card = topic.messages.find((m) => m.message_id === Number(row.topic_card_message_id));
        assert.ok(card, 'the card is in the new topic');
        assert.match(card.text, new RegExp(`#${t.number}`));
        assert.deepEqual(topic.pinned, [card.message_id], 'and pinned');
        assert.deepEqual(textsIn(h, newThread, 'lost message'), ['lost message: are you there?'], 'the failed message is delivered to the new topic');
        assert.equal(h.fake.topics(h.group.id).filter((x) => x.name.includes(`#${t.number} ·`) && !x.deleted).length, 1, 'one live topic for the ticket');

        const msg = await h.db('messages').where({ ticket_id: t.id, text: 'lost message: are you there?' }).first();
        const copy = await h.db('message_telegram_refs').where({ message_id: msg.id, role: 'copy' }).first();
        assert.ok(copy, 'the copy is remembered (edits mirror to it)');
        assert.equal(Number(copy.chat_id), h.group.id);
        assert.equal(h.fake.message(h.group.id, Number(copy.telegram_message_id))?.message_thread_id, newThread);
        const send = await h.db('telegram_sends').where({ op: 'copy_message', message_id: msg.id }).first();
        assert.equal(send.status, 'sent');
      });
    }
  });

  describe('a topic closed by hand', () => {
    it('is reopened before a customer\'s message is relayed', async () => {
      const agent = h.fake.addUser({ firstName: 'Lea', username: 'lea' });
      h.fake.addMember(h.group, agent, { status: 'administrator' });
      const user = h.fake.addUser({ firstName: 'Max' });
      const t = await openTicket(h, user, 'Closed by hand');
      h.fake.closeTopicByHand(h.group, t.threadId, agent);
      await settle(h);
      assert.equal((await ticketsOf(h, user))[0].topic_closed, true, 'topicdesk saw the topic being closed');

      const mark = h.fake.calls.length;
      h.fake.userSends(h.bot, user, 'reopen please: it broke again');
      await settle(h);

      const calls = h.fake.calls.slice(mark);
      const reopen = calls.findIndex((c) => c.method === 'reopenForumTopic' && Number(c.params.message_thread_id) === t.threadId && c.status === 200);
      const copies = calls.filter((c) => c.method === 'copyMessage' && Number(c.params.message_thread_id) === t.threadId);
      assert.ok(reopen >= 0, 'reopenForumTopic was called');
      assert.equal(copies.length, 1, 'one copy call, which did not fail');
      assert.equal(copies[0].status, 200);
      assert.ok(reopen < calls.indexOf(copies[0]), 'the topic was reopened before the copy');
      assert.equal(h.fake.topic(h.group.id, t.threadId)?.closed, false);
      assert.deepEqual(textsIn(h, t.threadId, 'reopen please'), ['reopen please: it broke again']);
      const [row] = await ticketsOf(h, user);
      assert.equal(row.topic_closed, false);
      assert.equal(Number(row.topic_thread_id), t.threadId, 'the same topic');
    });

    it('is reopened and the message delivered when a send fails with TOPIC_CLOSED', async () => {
      const agent = h.fake.addUser({ firstName: 'Nia', username: 'nia' });
      h.fake.addMember(h.group, agent, { status: 'administrator' });
      const user = h.fake.addUser({ firstName: 'Oto' });
      const t = await openTicket(h, user, 'Closed unnoticed');
      h.fake.closeTopicByHand(h.group, t.threadId, agent);
      await settle(h);
      // As if the forum_topic_closed service message had never reached topicdesk.
      await h.db('ticket_topics').where({ ticket_id: t.id }).update({ closed: false });

      const mark = h.fake.calls.length;
      h.fake.userSends(h.bot, user, 'closed topic: hello?');
      await settle(h);

      const calls = h.fake.calls.slice(mark);
      const copies = calls.filter((c) => c.method === 'copyMessage' && Number(c.params.message_thread_id) === t.threadId);
      assert.equal(copies.length, 2, 'the copy failed once, then went through');
      assert.equal(copies[0].status, 400);
      assert.match(copies[0].response.description, /TOPIC_CLOSED/);
      assert.equal(copies[1].status, 200);
      const reopen = calls.findIndex((c) => c.method === 'reopenForumTopic' && Number(c.params.message_thread_id) === t.threadId && c.status === 200);
      assert.ok(reopen > calls.indexOf(copies[0]) && reopen < calls.indexOf(copies[1]), 'reopened between the two');
      assert.equal(h.fake.topic(h.group.id, t.threadId)?.closed, false);
      assert.deepEqual(textsIn(h, t.threadId, 'closed topic:'), ['closed topic: hello?']);
      const msg = await h.db('messages').where({ ticket_id: t.id, text: 'closed topic: hello?' }).first();
      const send = await h.db('telegram_sends').where({ op: 'copy_message', message_id: msg.id }).first();
      assert.equal(send.status, 'sent');
      assert.equal((await ticketsOf(h, user))[0].topic_closed, false);
    });
  });
});

// ------------------------------------------------------------------------------------------

const webhookPath = (accountId: string) => `/telegram/${accountId}/webhook`;

describe('Telegram webhook mode', () => {
  const harness = useTelegramHarness({ webhook: true });
  let h: TelegramHarness;
  let secret: string;
  before(() => {
    h = harness.h;
    secret = webhookSecretFor(h.bot.token, null);
  });

  it('sets the webhook to <TELEGRAM_WEBHOOK_URL>/telegram/<account id>/webhook with the derived secret, and never polls', async () => {
    const [set] = await h.fake.waitForCalls('setWebhook', 1);
    assert.equal(set.status, 200);
    assert.equal(set.params.url, `${h.config.telegram.webhookUrl}/telegram/${h.accountId}/webhook`);
    assert.equal(set.params.secret_token, secret);
    assert.match(secret, /^[A-Za-z0-9_-]{1,256}$/, 'in the alphabet Telegram accepts');
    assert.notEqual(secret, webhookSecretFor(`${h.bot.id}:another-token-of-the-same-bot`, null), 'derived from the token');

    // A customer journey arrives through the webhook.
    const user = h.fake.addUser({ firstName: 'Pia' });
    h.fake.userSends(h.bot, user, '/start');
    await settle(h);
    assert.match(fromBot(h, user).at(-1)?.text ?? '', /\(1\/4\)/, 'the first question of the form');
    assert.deepEqual(h.fake.callsTo('getUpdates'), [], 'no long polling in webhook mode');
  });

  it('handles an update POSTed twice once', async () => {
    const user = h.fake.addUser({ firstName: 'Quin' });
    h.fake.userSends(h.bot, user, '/help');
    await settle(h);
    const before = fromBot(h, user).length;
    const update = craftedUpdate(6_000_001, user, '/help', 7001);
    const post = () => h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', secret).send(update);
    const answers = await Promise.all([post(), post()]);
    const third = await post();
    for (const a of [...answers, third]) assert.deepEqual([a.status, a.body], [200, { ok: true }]);
    await settle(h);
    assert.equal(fromBot(h, user).length, before + 1, 'one reply for three deliveries');
    assert.equal(await storedRows(h, 6_000_001), 1);
  });

  describe('the route', () => {
    const update = (id: number) => ({ update_id: id, message: { message_id: 1, date: 1, chat: { id: 42, type: 'private', first_name: 'X' }, from: { id: 42, is_bot: false, first_name: 'X' }, text: 'hi' } });

    it('answers 401 and stores nothing when the secret token is wrong or missing', async () => {
      const wrong = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', `${secret}x`).send(update(6_100_001));
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.code, 'unauthorized');
      const missing = await h.api.post(webhookPath(h.accountId)).send(update(6_100_002));
      assert.equal(missing.status, 401);
      const empty = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', '').send(update(6_100_003));
      assert.equal(empty.status, 401);
      const otherBots = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', webhookSecretFor('999:AAanother-bot-token-000000', null)).send(update(6_100_004));
      assert.equal(otherBots.status, 401);
      for (const id of [6_100_001, 6_100_002, 6_100_003, 6_100_004]) assert.equal(await storedRows(h, id), 0, `update ${id} not stored`);
      const [{ n }] = await h.db('telegram_updates').where('update_id', '>=', 6_100_000).count({ n: '*' });
      assert.equal(Number(n), 0);
    });

    it('answers an unknown account id with the same 401', async () => {
      const wrong = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', 'nope').send(update(6_200_001));
      const unknownId = newId('acc');
      const unknown = await h.api.post(webhookPath(unknownId)).set('X-Telegram-Bot-Api-Secret-Token', secret).send(update(6_200_002));
      assert.equal(unknown.status, 401);
      assert.deepEqual([unknown.body.code, unknown.body.detail], [wrong.body.code, wrong.body.detail], 'indistinguishable from a wrong secret');
      const [{ n }] = await h.db('telegram_updates').whereIn('update_id', [6_200_001, 6_200_002]).count({ n: '*' });
      assert.equal(Number(n), 0);
    });

    it('answers 404 for a malformed account id', async () => {
      for (const id of ['not-an-id', 'tkt_01JD3ABCDEFGHJKMNPQRSTVWXY', `${h.accountId}x`.replace('acc_', 'acc-')]) {
        const res = await h.api.post(webhookPath(id)).set('X-Telegram-Bot-Api-Secret-Token', secret).send(update(6_300_001));
        assert.equal(res.status, 404, id);
      }
      assert.equal(await storedRows(h, 6_300_001), 0);
    });

    it('answers 200 with the right secret and stores the update', async () => {
      const res = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', secret).send(update(6_400_001));
      assert.deepEqual([res.status, res.body], [200, { ok: true }]);
      assert.equal(await storedRows(h, 6_400_001), 1);
      await settle(h);
    });
  });

  it('never writes the bot token or the webhook secret to the logs', async () => {
    // Error paths too: a failed setWebhook (then set again) and a failing send.
    h.fake.failNext({ method: 'setWebhook' }, { code: 502, description: 'Bad Gateway' });
    await h.telegram.runtime.stop();
    await h.telegram.runtime.start();
    await h.telegram.runtime.reconcile();
    assert.ok(h.fake.callsTo('setWebhook').some((c) => c.status === 502), 'setWebhook failed once');
    assert.equal(h.fake.callsTo('setWebhook').at(-1)!.status, 200, 'and was set again');
    const user = h.fake.addUser({ firstName: 'Rui' });
    h.fake.failNext({ method: 'sendMessage', chatId: user.id }, { code: 500, description: 'Internal Server Error' });
    h.fake.userSends(h.bot, user, '/start');
    await settle(h);
    assert.match(fromBot(h, user).at(-1)?.text ?? '', /\(1\/4\)/);
    await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', 'wrong').send({ update_id: 6_500_001 });

    assert.ok(h.logs.length > 0);
    const all = h.logs.join('');
    assert.ok(/"level":(40|50)/.test(all), 'the error paths were logged');
    assert.equal(all.includes(h.bot.token), false, 'the token is not in the logs');
    assert.equal(all.includes(h.bot.token.split(':')[1]), false, 'nor its secret part');
    assert.equal(all.includes(secret), false, 'the webhook secret is not in the logs');
  });
});

describe('Telegram webhook mode with TELEGRAM_WEBHOOK_SECRET', () => {
  const configured = 'configured_Secret-0123456789';
  const harness = useTelegramHarness({ webhook: true, config: { telegram: { webhookSecret: configured } } });
  let h: TelegramHarness;
  before(() => { h = harness.h; });

  it('gives Telegram the configured secret and accepts only it', async () => {
    const [set] = await h.fake.waitForCalls('setWebhook', 1);
    assert.equal(set.params.secret_token, configured);
    const derived = webhookSecretFor(h.bot.token, null);
    const update = { update_id: 8_000_001, message: { message_id: 1, date: 1, chat: { id: 43, type: 'private', first_name: 'Y' }, from: { id: 43, is_bot: false, first_name: 'Y' }, text: 'hi' } };
    const refused = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', derived).send(update);
    assert.equal(refused.status, 401, 'the derived secret no longer works');
    assert.equal(await storedRows(h, 8_000_001), 0);
    const accepted = await h.api.post(webhookPath(h.accountId)).set('X-Telegram-Bot-Api-Secret-Token', configured).send(update);
    assert.equal(accepted.status, 200);
    assert.equal(await storedRows(h, 8_000_001), 1);

    // Telegram's own pushes carry it and get through.
    const user = h.fake.addUser({ firstName: 'Sol' });
    h.fake.userSends(h.bot, user, '/start');
    await settle(h);
    assert.match(fromBot(h, user).at(-1)?.text ?? '', /\(1\/4\)/);
    assert.equal(h.logs.join('').includes(configured), false, 'the configured secret is not logged');
  });
});
