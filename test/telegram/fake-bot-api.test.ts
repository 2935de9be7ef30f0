/**
 * The fake Bot API server behaves like Telegram, as seen through Telegraf's own client:
 * envelopes, error strings (as TelegramError .code/.description/.parameters), forum topics,
 * copies and albums, flood limits, long polling and webhook delivery.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Telegraf, TelegramError } from 'telegraf';
import type { Telegram } from 'telegraf';
import { startFakeBotApi, ERR, type FakeBotApi, type FakeBot, type FakeUser, type FakeGroup } from '../helpers/fake-bot-api.js';

function clientFor(fake: FakeBotApi, bot: FakeBot | string): Telegram {
  const token = typeof bot === 'string' ? bot : bot.token;
  return new Telegraf(token, { telegram: { apiRoot: fake.url, webhookReply: false } }).telegram;
}

/** Runs `fn`, expects a TelegramError, returns it. */
async function tgError(fn: () => Promise<unknown>): Promise<TelegramError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof TelegramError, `expected TelegramError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

async function expectError(fn: () => Promise<unknown>, code: number, description: string): Promise<TelegramError> {
  const e = await tgError(fn);
  assert.equal(e.code, code);
  assert.equal(e.description, description);
  return e;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('fake Telegram Bot API (driven through Telegraf)', () => {
  let fake: FakeBotApi;
  let bot: FakeBot;
  let tg: Telegram;
  let customer: FakeUser;
  let agent: FakeUser;
  let group: FakeGroup;

  beforeEach(async () => {
    fake = await startFakeBotApi({ limits: false });
    bot = fake.addBot({ username: 'desk_bot' });
    tg = clientFor(fake, bot);
    customer = fake.addUser({ firstName: 'Carla', username: 'carla' });
    agent = fake.addUser({ firstName: 'Alex' });
    group = fake.addGroup({ title: 'Support' });
    fake.addBotToGroup(bot, group);
    fake.addMember(group, agent);
  });
  afterEach(async () => {
    await fake.close();
  });

  describe('envelope and access', () => {
    it('answers getMe, 401 for an unknown token and 404 for an unknown method', async () => {
      const me = await tg.getMe();
      assert.equal(me.id, bot.id);
      assert.equal(me.is_bot, true);
      assert.equal(me.username, 'desk_bot');
      await expectError(() => clientFor(fake, '123:nope').getMe(), 401, ERR.unauthorized);
      await expectError(() => tg.callApi('noSuchMethod' as any, {} as any), 404, ERR.notFound);
      assert.equal(fake.callsTo('getMe').length, 2);
      assert.equal(fake.callsTo('getMe')[1].status, 401);
    });

    it('accepts application/x-www-form-urlencoded and multipart uploads', async () => {
      fake.userSends(bot, customer, 'hi');
      const res = await fetch(`${fake.url}/bot${bot.token}/sendMessage`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ chat_id: String(customer.id), text: 'form body', reply_markup: JSON.stringify({ inline_keyboard: [[{ text: 'A', callback_data: 'a' }]] }) }),
      });
      const body = (await res.json()) as { ok: boolean; result: { text: string; reply_markup: unknown } };
      assert.equal(body.ok, true);
      assert.equal(body.result.text, 'form body');
      assert.deepEqual(body.result.reply_markup, { inline_keyboard: [[{ text: 'A', callback_data: 'a' }]] });
      // Telegraf sends multipart when a payload carries an upload.
      const photo = await tg.sendPhoto(customer.id, { source: Buffer.from('not really a jpeg'), filename: 'x.jpg' }, { caption: 'look' });
      assert.equal(photo.caption, 'look');
      assert.ok(photo.photo.length > 0 && typeof photo.photo[0].file_id === 'string');
      assert.equal(fake.callsTo('sendPhoto')[0].params.chat_id, String(customer.id));
    });

    it("refuses to start a conversation, and chat not found / bots / blocked users, in Telegram's words", async () => {
      await expectError(() => tg.sendMessage(customer.id, 'hello'), 403, ERR.cantInitiate);
      await expectError(() => tg.sendMessage(999_999_999, 'hello'), 400, ERR.chatNotFound);
      await expectError(() => tg.sendMessage(-100999, 'hello'), 400, ERR.chatNotFound);
      const other = fake.addBot();
      await expectError(() => tg.sendMessage(other.id, 'hello'), 403, ERR.cantSendToBots);
      fake.userSends(bot, customer, '/start');
      fake.userBlocks(bot, customer);
      await expectError(() => tg.sendMessage(customer.id, 'hello'), 403, ERR.blocked);
      fake.userUnblocks(bot, customer);
      await tg.sendMessage(customer.id, 'welcome back');
      const kinds = fake.updatesFor(bot).map((u) => (u.my_chat_member ? `${u.my_chat_member.old_chat_member.status}>${u.my_chat_member.new_chat_member.status}` : Object.keys(u)[1]));
      assert.deepEqual(kinds, ['message', 'member>kicked', 'kicked>member']);
      assert.equal(fake.updatesFor(bot)[1].my_chat_member.chat.id, customer.id);
    });

    it('403s a bot that is not (or no longer) in the group', async () => {
      const stranger = fake.addBot();
      await expectError(() => clientFor(fake, stranger).sendMessage(group.id, 'x'), 403, ERR.notMember);
      fake.removeBotFromGroup(bot, group);
      await expectError(() => tg.sendMessage(group.id, 'x'), 403, ERR.kicked);
    });
  });

  describe('private chats', () => {
    it('returns real Message shapes, per-chat increasing ids, dates in seconds, and validates text', async () => {
      const incoming = fake.userSends(bot, customer, '/start hello');
      assert.equal(incoming.message_id, 1);
      assert.deepEqual(incoming.entities, [{ type: 'bot_command', offset: 0, length: 6 }]);
      const sent = await tg.sendMessage(customer.id, 'Hi Carla', { reply_markup: { inline_keyboard: [[{ text: 'Go', callback_data: 'go' }]] } });
      assert.equal(sent.message_id, 2);
      assert.deepEqual(sent.chat, { id: customer.id, type: 'private', first_name: 'Carla', username: 'carla' });
      assert.deepEqual(sent.from, { id: bot.id, is_bot: true, first_name: 'Fake Bot', username: 'desk_bot' });
      assert.ok(Math.abs(sent.date - Date.now() / 1000) < 5, 'date in unix seconds');
      assert.deepEqual(sent.reply_markup, { inline_keyboard: [[{ text: 'Go', callback_data: 'go' }]] });
      // Another bot's chat with the same user has its own sequence.
      const bot2 = fake.addBot();
      assert.equal(fake.userSends(bot2, customer, 'hey').message_id, 1);
      assert.deepEqual(
        fake.messagesIn(customer.id, { botId: bot.id }).map((m) => m.message_id),
        [1, 2],
      );
      await expectError(() => tg.sendMessage(customer.id, '   '), 400, ERR.textEmpty);
      await expectError(() => tg.sendMessage(customer.id, 'x'.repeat(4097)), 400, ERR.textTooLong);
      await tg.sendMessage(customer.id, 'x'.repeat(4096));
      // message_thread_id to a private chat is ignored.
      const m = await tg.sendMessage(customer.id, 'threaded?', { message_thread_id: 77 });
      assert.equal(m.message_thread_id, undefined);
    });

    it('edits: not found, not modified, keyboard removed when reply_markup is omitted; user edits give edited_message', async () => {
      fake.userSends(bot, customer, 'hi');
      const kb = { inline_keyboard: [[{ text: 'A', callback_data: 'a' }]] };
      const sent = await tg.sendMessage(customer.id, 'v1', { reply_markup: kb });
      await expectError(() => tg.editMessageText(customer.id, 999, undefined, 'x'), 400, ERR.editNotFound);
      await expectError(() => tg.editMessageText(customer.id, sent.message_id, undefined, 'v1', { reply_markup: kb }), 400, ERR.notModified);
      const edited = (await tg.editMessageText(customer.id, sent.message_id, undefined, 'v1')) as { reply_markup?: unknown; edit_date?: number };
      assert.equal(edited.reply_markup, undefined);
      assert.ok(edited.edit_date);
      await expectError(() => tg.editMessageReplyMarkup(customer.id, sent.message_id, undefined, undefined), 400, ERR.notModified);
      await expectError(() => tg.editMessageText(customer.id, 1, undefined, 'not mine'), 400, ERR.cantEdit);
      const photo = await tg.sendPhoto(customer.id, 'file-abc', { caption: 'c1' });
      await expectError(() => tg.editMessageCaption(customer.id, photo.message_id, undefined, 'c1'), 400, ERR.notModified);
      await tg.editMessageCaption(customer.id, photo.message_id, undefined, 'c2');
      assert.equal(fake.message(customer.id, photo.message_id)?.caption, 'c2');
      fake.userEdits(bot, customer, 1, 'hi (edited)');
      const last = fake.updatesFor(bot).at(-1)!;
      assert.equal(last.edited_message.text, 'hi (edited)');
      assert.ok(last.edited_message.edit_date);
      await tg.deleteMessage(customer.id, sent.message_id);
      await expectError(() => tg.deleteMessage(customer.id, sent.message_id), 400, ERR.deleteNotFound);
    });

    it('callback queries can be answered once', async () => {
      fake.userSends(bot, customer, 'hi');
      const sent = await tg.sendMessage(customer.id, 'pick', { reply_markup: { inline_keyboard: [[{ text: '5', callback_data: 'csat:5' }]] } });
      const id = fake.userPresses(bot, customer, { chatId: customer.id, messageId: sent.message_id }, 'csat:5');
      const u = fake.updatesFor(bot).at(-1)!;
      assert.equal(u.callback_query.id, id);
      assert.equal(u.callback_query.data, 'csat:5');
      assert.equal(u.callback_query.message.message_id, sent.message_id);
      await tg.answerCbQuery(id, 'Thanks!');
      assert.equal(fake.callbackAnswers.get(id)?.text, 'Thanks!');
      await expectError(() => tg.answerCbQuery(id), 400, ERR.queryInvalid);
      await expectError(() => tg.answerCbQuery('nope'), 400, ERR.queryInvalid);
    });
  });

  describe('forum topics', () => {
    it('creates a topic whose id is its service message id; sends land in it; General is not addressable', async () => {
      const t = await tg.createForumTopic(group.id, 'Ticket #1', { icon_color: 0xff93b2 });
      assert.deepEqual(t, { message_thread_id: t.message_thread_id, name: 'Ticket #1', icon_color: 0xff93b2 });
      const [created] = fake.messagesIn(group.id, { threadId: t.message_thread_id });
      assert.equal(created.message_id, t.message_thread_id);
      assert.deepEqual(created.forum_topic_created, { name: 'Ticket #1', icon_color: 0xff93b2 });
      assert.equal(created.is_topic_message, true);
      const m = await tg.sendMessage(group.id, 'card', { message_thread_id: t.message_thread_id });
      assert.equal(m.message_thread_id, t.message_thread_id);
      assert.equal(m.is_topic_message, true);
      assert.deepEqual(m.chat, { id: group.id, type: 'supergroup', title: 'Support', is_forum: true });
      assert.equal(m.message_id, t.message_thread_id + 1, 'one id sequence per group');
      await expectError(() => tg.sendMessage(group.id, 'x', { message_thread_id: 1 }), 400, ERR.threadNotFound);
      await expectError(() => tg.sendMessage(group.id, 'x', { message_thread_id: 4242 }), 400, ERR.threadNotFound);
      const general = await tg.sendMessage(group.id, 'in General');
      assert.equal(general.message_thread_id, undefined);
      assert.equal(general.is_topic_message, undefined);
      assert.deepEqual(fake.messagesIn(group.id, { threadId: null }).map((x) => x.text), ['in General']);
      assert.deepEqual(fake.topic(group.id, t.message_thread_id)?.messages.map((x) => x.message_id), [created.message_id, m.message_id]);
      // Another bot in the group sees the service message; the creating bot does not get its own.
      assert.equal(fake.updatesFor(bot).length, 0);
    });

    it('validates names, colours, rights and forum-ness', async () => {
      await expectError(() => tg.createForumTopic(group.id, ''), 400, ERR.topicNameEmpty);
      await expectError(() => tg.createForumTopic(group.id, 'x'.repeat(129)), 400, ERR.topicNameTooLong);
      await tg.createForumTopic(group.id, 'x'.repeat(128));
      await expectError(() => tg.createForumTopic(group.id, 'ok', { icon_color: 123 as any }), 400, ERR.iconColorInvalid);
      const plain = fake.addGroup({ isForum: false });
      fake.addBotToGroup(bot, plain);
      await expectError(() => tg.createForumTopic(plain.id, 'x'), 400, ERR.notAForum);
      const g2 = fake.addGroup();
      fake.addBotToGroup(bot, g2, { status: 'member' });
      await expectError(() => tg.createForumTopic(g2.id, 'x'), 400, ERR.noRightsCreateTopic);
      const g3 = fake.addGroup();
      fake.addBotToGroup(bot, g3, { rights: { can_pin_messages: false, can_delete_messages: false } });
      const t = await tg.createForumTopic(g3.id, 'x');
      const m = await tg.sendMessage(g3.id, 'card', { message_thread_id: t.message_thread_id });
      await expectError(() => tg.pinChatMessage(g3.id, m.message_id), 400, ERR.noRightsPin);
      await expectError(() => tg.deleteForumTopic(g3.id, t.message_thread_id), 400, ERR.noRightsDeleteTopic);
    });

    it('close/reopen/edit give TOPIC_CLOSED and TOPIC_NOT_MODIFIED like Telegram', async () => {
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T');
      await expectError(() => tg.reopenForumTopic(group.id, tid), 400, ERR.topicNotModified);
      await tg.closeForumTopic(group.id, tid);
      await expectError(() => tg.closeForumTopic(group.id, tid), 400, ERR.topicNotModified);
      await expectError(() => tg.sendMessage(group.id, 'x', { message_thread_id: tid }), 400, ERR.topicClosed);
      await tg.reopenForumTopic(group.id, tid);
      await tg.sendMessage(group.id, 'x', { message_thread_id: tid });
      await expectError(() => tg.editForumTopic(group.id, tid, { name: 'T' }), 400, ERR.topicNotModified);
      await tg.editForumTopic(group.id, tid, { name: 'T2' });
      assert.equal(fake.topic(group.id, tid)?.name, 'T2');
      const svc = fake.topic(group.id, tid)!.messages.map((m) => Object.keys(m).find((k) => k.startsWith('forum_topic_')));
      assert.deepEqual(svc, ['forum_topic_created', 'forum_topic_closed', 'forum_topic_reopened', undefined, 'forum_topic_edited']);
      // An agent closing it by hand sends the bot a forum_topic_closed update.
      fake.closeTopicByHand(group, tid, agent);
      const u = fake.updatesFor(bot).at(-1)!;
      assert.deepEqual(u.message.forum_topic_closed, {});
      assert.equal(u.message.from.id, agent.id);
      assert.equal(fake.topic(group.id, tid)?.closed, true);
    });

    it('a deleted topic loses its messages and answers "message thread not found" (or TOPIC_DELETED)', async () => {
      const a = await tg.createForumTopic(group.id, 'A');
      await tg.sendMessage(group.id, 'hello', { message_thread_id: a.message_thread_id });
      await tg.deleteForumTopic(group.id, a.message_thread_id);
      assert.equal(fake.topic(group.id, a.message_thread_id)?.deleted, true);
      assert.deepEqual(fake.messagesIn(group.id, { threadId: a.message_thread_id }), []);
      await expectError(() => tg.sendMessage(group.id, 'x', { message_thread_id: a.message_thread_id }), 400, ERR.threadNotFound);
      const b = await tg.createForumTopic(group.id, 'B');
      const before = fake.updatesFor(bot).length;
      fake.deleteTopicByHand(group, b.message_thread_id);
      assert.equal(fake.updatesFor(bot).length, before, 'Telegram sends no update for a deleted topic');
      fake.deletedTopicError = 'TOPIC_DELETED';
      await expectError(() => tg.sendMessage(group.id, 'x', { message_thread_id: b.message_thread_id }), 400, ERR.topicDeleted);
      await expectError(() => tg.copyMessage(group.id, group.id, 1, { message_thread_id: b.message_thread_id }), 400, ERR.copyNotFound);
    });

    it('members writing: topic messages are is_topic_message; a reply in General carries a thread id but is not a topic message', async () => {
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T');
      const inTopic = fake.memberSends(group, agent, 'hello customer', { threadId: tid });
      assert.equal(inTopic.message_thread_id, tid);
      assert.equal(inTopic.is_topic_message, true);
      assert.equal(inTopic.reply_to_message?.message_id, tid, 'topic messages reply to the topic creation message');
      const root = fake.memberSends(group, agent, 'General question');
      const reply = fake.memberSends(group, agent, 'General reply', { replyTo: root.message_id });
      assert.equal(root.message_thread_id, undefined);
      assert.equal(reply.message_thread_id, root.message_id);
      assert.equal(reply.is_topic_message, undefined);
      // The trap: that thread id is not a topic.
      await expectError(() => tg.sendMessage(group.id, 'x', { message_thread_id: reply.message_thread_id }), 400, ERR.threadNotFound);
      const ups = fake.updatesFor(bot).map((u) => u.message.text);
      assert.deepEqual(ups, ['hello customer', 'General question', 'General reply']);
      // Bots never see other bots' messages.
      const other = fake.addBot();
      fake.addBotToGroup(other, group);
      await clientFor(fake, other).sendMessage(group.id, 'from the other bot', { message_thread_id: tid });
      assert.equal(fake.updatesFor(bot).length, 3);
      // ...but do see service messages (another bot's new topic).
      await clientFor(fake, other).createForumTopic(group.id, 'by other');
      assert.equal(fake.updatesFor(bot).at(-1)!.message.forum_topic_created.name, 'by other');
      // Edits by members arrive as edited_message.
      fake.memberEdits(group, agent, inTopic.message_id, 'hello customer!');
      assert.equal(fake.updatesFor(bot).at(-1)!.edited_message.text, 'hello customer!');
    });

    it('pins go to the topic and emit a pinned_message service message', async () => {
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T');
      const card = await tg.sendMessage(group.id, 'card', { message_thread_id: tid });
      await tg.pinChatMessage(group.id, card.message_id, { disable_notification: true });
      assert.deepEqual(fake.topic(group.id, tid)?.pinned, [card.message_id]);
      const svc = fake.topic(group.id, tid)!.messages.at(-1)!;
      assert.equal(svc.pinned_message.message_id, card.message_id);
      await tg.unpinChatMessage(group.id, card.message_id);
      assert.deepEqual(fake.topic(group.id, tid)?.pinned, []);
      await expectError(() => tg.pinChatMessage(group.id, 9999), 400, ERR.pinNotFound);
    });

    it('getChat and getChatMember report forum and admin rights', async () => {
      const chat = (await tg.getChat(group.id)) as { is_forum?: boolean; type: string; title: string };
      assert.equal(chat.is_forum, true);
      assert.equal(chat.type, 'supergroup');
      await expectError(() => tg.getChat(-100123), 400, ERR.chatNotFound);
      const me = (await tg.getChatMember(group.id, bot.id)) as { status: string; can_manage_topics?: boolean; can_pin_messages?: boolean };
      assert.equal(me.status, 'administrator');
      assert.equal(me.can_manage_topics, true);
      assert.equal(me.can_pin_messages, true);
      assert.equal((await tg.getChatMember(group.id, agent.id)).status, 'member');
      assert.equal((await tg.getChatMember(group.id, customer.id)).status, 'left');
    });
  });

  describe('copies and forwards', () => {
    it('copyMessage copies media and caption into a topic and returns only the id', async () => {
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T');
      const doc = fake.userSends(bot, customer, { document: { file_name: 'invoice.pdf' }, caption: 'my invoice' });
      const r = await tg.copyMessage(group.id, customer.id, doc.message_id, { message_thread_id: tid });
      assert.deepEqual(Object.keys(r), ['message_id']);
      const copy = fake.message(group.id, r.message_id)!;
      assert.equal(copy.document.file_name, 'invoice.pdf');
      assert.equal(copy.document.file_id, doc.document.file_id);
      assert.equal(copy.caption, 'my invoice');
      assert.equal(copy.from.id, bot.id);
      assert.equal(copy.is_topic_message, true);
      const r2 = await tg.copyMessage(group.id, customer.id, doc.message_id, { message_thread_id: tid, caption: 'new caption' });
      assert.equal(fake.message(group.id, r2.message_id)!.caption, 'new caption');
      await expectError(() => tg.copyMessage(group.id, customer.id, 999, { message_thread_id: tid }), 400, ERR.copyNotFound);
      const fwd = await tg.forwardMessage(group.id, customer.id, doc.message_id, { message_thread_id: tid });
      assert.equal((fwd as { forward_origin?: { type: string } }).forward_origin?.type, 'user');
      // Agent → customer: copy without a thread.
      const agentMsg = fake.memberSends(group, agent, { photo: true, caption: 'see this' }, { threadId: tid });
      const back = await tg.copyMessage(customer.id, group.id, agentMsg.message_id);
      const inPrivate = fake.message(customer.id, back.message_id, { botId: bot.id })!;
      assert.ok(inPrivate.photo);
      assert.equal(inPrivate.caption, 'see this');
      assert.equal(inPrivate.message_thread_id, undefined);
    });

    it('copyMessages keeps the album grouping, skips missing ids and wants strictly increasing ids', async () => {
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T');
      const a = fake.userSends(bot, customer, { photo: true, caption: 'album' }, { mediaGroupId: 'g1' });
      const b = fake.userSends(bot, customer, { photo: true }, { mediaGroupId: 'g1' });
      const gone = fake.userSends(bot, customer, { photo: true }, { mediaGroupId: 'g1' });
      const c = fake.userSends(bot, customer, { video: true }, { mediaGroupId: 'g1' });
      await tg.deleteMessage(customer.id, gone.message_id);
      const ids = await tg.copyMessages(group.id, customer.id, [a.message_id, b.message_id, gone.message_id, c.message_id], { message_thread_id: tid });
      assert.equal(ids.length, 3);
      const copies = ids.map((i) => fake.message(group.id, i.message_id)!);
      assert.ok(copies[0].media_group_id);
      assert.notEqual(copies[0].media_group_id, 'g1');
      assert.ok(copies.every((m) => m.media_group_id === copies[0].media_group_id));
      assert.equal(copies[0].caption, 'album');
      assert.ok(copies[2].video);
      await expectError(() => tg.copyMessages(group.id, customer.id, [b.message_id, a.message_id]), 400, ERR.idsOrder);
      await expectError(() => tg.copyMessages(group.id, customer.id, []), 400, ERR.idsEmpty);
    });
  });

  describe('flood limits', () => {
    it('429s the second message in a second to one chat, with retry_after, and records it', async () => {
      fake.setLimits({});
      fake.userSends(bot, customer, 'hi');
      await tg.sendMessage(customer.id, 'one');
      const e = await expectError(() => tg.sendMessage(customer.id, 'two'), 429, 'Too Many Requests: retry after 1');
      assert.equal(e.parameters?.retry_after, 1);
      assert.equal(fake.rateLimited.length, 1);
      assert.equal(fake.rateLimited[0].method, 'sendMessage');
      // Edits and getters do not count.
      const [first] = fake.messagesIn(customer.id, { botId: bot.id }).filter((m) => m.text === 'one');
      await tg.editMessageText(customer.id, first.message_id, undefined, 'one!');
      await tg.getChat(customer.id);
      await sleep(1050);
      await tg.sendMessage(customer.id, 'two');
    });

    it('limits a group to perGroupPerMinute (copyMessages counts each message) and reports the wait', async () => {
      fake.setLimits({ perChatPerSecond: 100, perGroupPerMinute: 5 });
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T'); // 1
      const a = fake.userSends(bot, customer, { photo: true }, { mediaGroupId: 'x' });
      const b = fake.userSends(bot, customer, { photo: true }, { mediaGroupId: 'x' });
      await tg.copyMessages(group.id, customer.id, [a.message_id, b.message_id], { message_thread_id: tid }); // 3
      await tg.sendMessage(group.id, 'm', { message_thread_id: tid }); // 4
      await tg.sendMessage(group.id, 'm', { message_thread_id: tid }); // 5
      const e = await tgError(() => tg.sendMessage(group.id, 'm', { message_thread_id: tid }));
      assert.equal(e.code, 429);
      assert.ok(e.parameters!.retry_after! >= 59 && e.parameters!.retry_after! <= 60, `retry_after ${e.parameters?.retry_after}`);
      // Private chats are not affected by the group budget.
      fake.userSends(bot, customer, 'hi');
      await tg.sendMessage(customer.id, 'still fine');
      fake.setLimits(false);
      await tg.sendMessage(group.id, 'no limits', { message_thread_id: tid });
    });

    it('limits the bot as a whole to perBotPerSecond', async () => {
      fake.setLimits({ perBotPerSecond: 3, retryAfterSeconds: 7 });
      const users = [1, 2, 3, 4].map(() => fake.addUser());
      for (const u of users) fake.userSends(bot, u, 'hi');
      for (const u of users.slice(0, 3)) await tg.sendMessage(u.id, 'x');
      const e = await expectError(() => tg.sendMessage(users[3].id, 'x'), 429, 'Too Many Requests: retry after 7');
      assert.equal(e.parameters?.retry_after, 7);
    });
  });

  describe('faults', () => {
    it('failNext answers the real envelope (and >= 500 like a proxy: status only)', async () => {
      fake.userSends(bot, customer, 'hi');
      fake.failNext({ method: 'sendMessage', chatId: customer.id }, { code: 429, description: 'Too Many Requests: retry after 3', retryAfter: 3 });
      const e = await expectError(() => tg.sendMessage(customer.id, 'x'), 429, 'Too Many Requests: retry after 3');
      assert.equal(e.parameters?.retry_after, 3);
      assert.equal(fake.rateLimited.length, 1);
      fake.failNext({ method: 'sendMessage', times: 2 }, { code: 502, description: 'Bad Gateway' });
      await expectError(() => tg.sendMessage(customer.id, 'x'), 502, 'Bad Gateway');
      await expectError(() => tg.sendMessage(customer.id, 'x'), 502, 'Bad Gateway');
      assert.equal(fake.callsTo('sendMessage').at(-1)!.status, 502);
      // Other chats don't match a chatId rule.
      fake.failNext({ chatId: -1 }, { code: 400, description: ERR.chatNotFound });
      await tg.sendMessage(customer.id, 'ok now');
      assert.equal(fake.messagesIn(customer.id).at(-1)!.text, 'ok now');
    });

    it('slow delays the answer', async () => {
      fake.userSends(bot, customer, 'hi');
      fake.slow({ method: 'sendMessage' }, 300);
      const t0 = Date.now();
      await tg.sendMessage(customer.id, 'x');
      assert.ok(Date.now() - t0 >= 280);
      fake.slow({ method: 'sendMessage' }, 0);
      const t1 = Date.now();
      await tg.sendMessage(customer.id, 'y');
      assert.ok(Date.now() - t1 < 250);
    });
  });

  describe('getUpdates', () => {
    it('long-polls, returns as soon as an update exists, and offset confirms', async () => {
      const t0 = Date.now();
      const poll = tg.getUpdates(5, 100, 0, undefined);
      await sleep(100);
      fake.userSends(bot, customer, 'wake up');
      const ups = await poll;
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(ups.length, 1);
      assert.equal((ups[0] as { message: { text: string } }).message.text, 'wake up');
      fake.userSends(bot, customer, 'second');
      const again = await tg.getUpdates(0, 100, 0, undefined);
      assert.deepEqual(
        again.map((u) => u.update_id),
        [ups[0].update_id, ups[0].update_id + 1],
      );
      const confirmed = await tg.getUpdates(0, 100, ups[0].update_id + 1, undefined);
      assert.deepEqual(
        confirmed.map((u) => u.update_id),
        [ups[0].update_id + 1],
      );
      assert.deepEqual(await tg.getUpdates(0, 100, ups[0].update_id + 2, undefined), []);
      const limited = (fake.userSends(bot, customer, 'a'), fake.userSends(bot, customer, 'b'), await tg.getUpdates(0, 1, 0, undefined));
      assert.equal(limited.length, 1);
      const empty = Date.now();
      assert.deepEqual(await tg.getUpdates(1, 100, ups[0].update_id + 10, undefined), []);
      assert.ok(Date.now() - empty >= 900, 'waited for the timeout');
    });

    it('honours allowed_updates, with message_reaction excluded by default', async () => {
      fake.userSends(bot, customer, 'hi');
      fake.userReacts(bot, customer, 1, '👍');
      assert.equal(fake.updatesFor(bot).length, 1);
      await tg.getUpdates(0, 100, 0, ['message', 'message_reaction']);
      fake.userReacts(bot, customer, 1, '❤');
      assert.equal(fake.updatesFor(bot).at(-1)!.message_reaction.new_reaction[0].emoji, '❤');
      await tg.getUpdates(0, 100, 0, ['callback_query']);
      fake.userSends(bot, customer, 'not delivered');
      assert.equal(fake.updatesFor(bot).at(-1)!.message_reaction !== undefined, true);
    });

    it('409s the older of two overlapping polls, and polling while a webhook is set', async () => {
      const first = tgError(() => tg.getUpdates(5, 100, 0, undefined));
      await sleep(50);
      const second = tg.getUpdates(1, 100, 0, undefined);
      const e = await first;
      assert.equal(e.code, 409);
      assert.equal(e.description, ERR.terminatedByOther);
      await second;
      await tg.setWebhook('http://127.0.0.1:1/hook');
      await expectError(() => tg.getUpdates(0, 100, 0, undefined), 409, ERR.webhookActive);
      await tg.deleteWebhook();
      assert.deepEqual(await tg.getUpdates(0, 100, 0, undefined), []);
    });

    it('drives a real Telegraf bot in long polling (commands, ctx.reply into the topic)', async () => {
      const { message_thread_id: tid } = await tg.createForumTopic(group.id, 'T');
      const app = new Telegraf(bot.token, { telegram: { apiRoot: fake.url, webhookReply: false } });
      app.command('ping', (ctx) => ctx.reply('pong'));
      app.on('callback_query', (ctx) => ctx.answerCbQuery('ok'));
      app.catch((err) => {
        throw err;
      });
      void app.launch({ dropPendingUpdates: true });
      try {
        await waitUntil(() => fake.callsTo('getUpdates').length > 0);
        fake.memberSends(group, agent, '/ping', { threadId: tid });
        fake.userSends(bot, customer, '/ping');
        await fake.waitForCalls('sendMessage', 2);
        const inTopic = fake.messagesIn(group.id, { threadId: tid }).at(-1)!;
        assert.equal(inTopic.text, 'pong');
        assert.equal(inTopic.is_topic_message, true);
        assert.equal(fake.messagesIn(customer.id).at(-1)!.text, 'pong');
        const pressed = fake.userPresses(bot, customer, { chatId: customer.id, messageId: 2 }, 'x');
        await fake.waitForCalls('answerCallbackQuery', 1);
        assert.equal(fake.callbackAnswers.get(pressed)?.text, 'ok');
      } finally {
        app.stop();
      }
    });
  });

  describe('webhook mode', () => {
    let hook: http.Server;
    let hookUrl: string;
    let received: Array<{ body: { update_id: number; message?: { chat: { id: number }; text: string } }; secret?: string }>;
    let status: (n: number) => number;

    beforeEach(async () => {
      received = [];
      status = () => 200;
      hook = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({ body: JSON.parse(Buffer.concat(chunks).toString()), secret: req.headers['x-telegram-bot-api-secret-token'] as string | undefined });
          res.statusCode = status(received.length);
          res.end();
        });
      });
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    });
    afterEach(async () => {
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
    });

    it('validates the secret, POSTs updates with the secret header, and reports pending updates', async () => {
      await expectError(() => tg.setWebhook(hookUrl, { secret_token: 'bad secret!' }), 400, ERR.secretInvalid);
      fake.userSends(bot, customer, 'before the webhook');
      await tg.setWebhook(hookUrl, { secret_token: 's3cret_-X' });
      fake.userSends(bot, customer, 'after');
      await waitUntil(() => received.length >= 2);
      assert.deepEqual(
        received.map((r) => [r.body.message?.text, r.secret]),
        [
          ['before the webhook', 's3cret_-X'],
          ['after', 's3cret_-X'],
        ],
      );
      await waitUntil(() => fake.pendingUpdatesFor(bot).length === 0);
      const info = await tg.getWebhookInfo();
      assert.equal(info.url, hookUrl);
      assert.equal(info.pending_update_count, 0);
    });

    it('keeps per-chat order: the next update of a chat waits for a 2xx; failures are retried', async () => {
      status = (n) => (n === 1 ? 500 : 200);
      await tg.setWebhook(hookUrl);
      fake.userSends(bot, customer, 'one');
      fake.userSends(bot, customer, 'two');
      await waitUntil(() => received.filter((r) => r.body.message?.text === 'two').length > 0);
      assert.deepEqual(
        received.map((r) => r.body.message?.text),
        ['one', 'one', 'two'],
      );
      const info = await tg.getWebhookInfo();
      assert.match(info.last_error_message ?? '', /500/);
      // deleteWebhook stops the pushing; drop_pending_updates empties the queue.
      await tg.deleteWebhook({ drop_pending_updates: true });
      fake.userSends(bot, customer, 'three');
      await sleep(100);
      assert.equal(received.length, 3);
      assert.equal((await tg.getUpdates(0, 100, 0, undefined)).length, 1);
    });

    it('drives a real Telegraf webhook handler', async () => {
      const app = new Telegraf(bot.token, { telegram: { apiRoot: fake.url, webhookReply: false } });
      app.on('message', (ctx) => ctx.reply(`echo: ${'text' in ctx.message ? ctx.message.text : '?'}`));
      const server = http.createServer(app.webhookCallback('/tg', { secretToken: 'tok' }) as http.RequestListener);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        await tg.setWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/tg`, { secret_token: 'tok' });
        fake.userSends(bot, customer, 'hello');
        await fake.waitForCalls('sendMessage', 1);
        assert.equal(fake.messagesIn(customer.id).at(-1)!.text, 'echo: hello');
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    });
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}
