/**
 * The customer's side of Telegram (SPEC §3.1), end to end: a fake customer talks to the bot
 * through the fake Bot API server; the real app, update workers and send queue do the rest.
 * Every test checks what Telegram saw (calls, messages in chats and topics) and what the
 * database / API holds.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { systemClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { createTelegram, type Telegram } from '../../src/telegram/telegram.js';
import type { Call, Content, FakeUser, Message } from '../helpers/fake-bot-api.js';
import { useTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';

// ------------------------------------------------------------------------------------------
// Helpers acting as the customer and reading what came out
// ------------------------------------------------------------------------------------------

type Button = { text: string; callback_data: string };

function journey(get: () => TelegramHarness) {
  const h = () => get();

  /** What the bot wrote in the customer's private chat, oldest first. */
  const fromBot = (u: FakeUser): Message[] => h().fake.messagesIn(u.id, { botId: h().bot.id }).filter((m) => m.from?.id === h().bot.id);
  const lastFromBot = (u: FakeUser): Message => {
    const m = fromBot(u).at(-1);
    assert.ok(m, `the bot never wrote to ${u.firstName}`);
    return m;
  };
  const buttons = (m: Message): Button[] => (m.reply_markup?.inline_keyboard ?? []).flat();
  const buttonData = (m: Message, label: string): string => {
    const b = buttons(m).find((x) => x.text === label);
    assert.ok(b, `no button "${label}" on "${m.text}" (buttons: ${buttons(m).map((x) => x.text).join(', ')})`);
    return b.callback_data;
  };

  /**
   * h.settle(), made sure of. The harness's settle reads "no unprocessed update" before it
   * checks that the fake's last update is stored, so an update stored in between passes as
   * settled (reported). Here the pipeline is read in order: every update the fake produced
   * is processed, then nothing queued, then the fake produced nothing new meanwhile.
   */
  async function settle(): Promise<void> {
    const { fake, bot, db, accountId } = h();
    for (let i = 0; i < 100; i++) {
      await h().settle();
      const produced = fake.updatesFor(bot).length;
      const [{ n: processed }] = await db('telegram_updates').where({ account_id: accountId }).whereNotNull('processed_at').count({ n: '*' });
      const [{ n: open }] = await db('telegram_updates').whereNull('processed_at').count({ n: '*' });
      const [{ n: sends }] = await db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
      if (Number(processed) >= produced && Number(open) === 0 && Number(sends) === 0 && fake.updatesFor(bot).length === produced) return;
    }
    throw new Error('not settled');
  }

  async function say(u: FakeUser, content: string | Content, o?: { mediaGroupId?: string }): Promise<Message> {
    const m = h().fake.userSends(h().bot, u, content, o);
    await settle();
    return m;
  }
  async function press(u: FakeUser, m: Message, label: string): Promise<string> {
    const id = h().fake.userPresses(h().bot, u, { chatId: u.id, messageId: m.message_id }, buttonData(m, label));
    await settle();
    return id;
  }

  const callsSince = (method: string, before: number): Call[] => h().fake.callsTo(method).slice(before);
  const count = (method: string): number => h().fake.callsTo(method).length;

  async function contactOf(u: FakeUser): Promise<any> {
    const c = await h().db('contacts').where({ telegram_user_id: u.id }).first();
    assert.ok(c, `no contact for ${u.firstName}`);
    const res = await h().api.get(`/v1/contacts/${c.id}`).set('Authorization', h().auth);
    assert.equal(res.status, 200);
    return res.body;
  }
  async function ticketsOf(u: FakeUser): Promise<any[]> {
    const c = await h().db('contacts').where({ telegram_user_id: u.id }).first();
    if (!c) return [];
    const res = await h().api.get('/v1/tickets').query({ contact_id: c.id, limit: 100 }).set('Authorization', h().auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  }
  async function ticket(id: string): Promise<any> {
    const res = await h().api.get(`/v1/tickets/${id}`).set('Authorization', h().auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  }
  async function messagesOf(ticketId: string): Promise<any[]> {
    const res = await h().api.get(`/v1/tickets/${ticketId}/messages`).query({ limit: 100 }).set('Authorization', h().auth);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items;
  }
  async function chatRow(u: FakeUser): Promise<any> {
    return h().db('telegram_chats').where({ account_id: h().accountId, chat_id: u.id }).first();
  }

  /** The whole default form; returns the ticket the API shows. */
  async function openTicket(u: FakeUser, o: { category?: string; subject: string; description?: string; email?: string | null }): Promise<any> {
    await say(u, '/start');
    await press(u, lastFromBot(u), o.category ?? 'Technical problem');
    await say(u, o.subject);
    await say(u, o.description ?? 'It does not work');
    if (o.email) await say(u, o.email);
    else await press(u, lastFromBot(u), 'Skip');
    const done = lastFromBot(u).text ?? '';
    const n = /^Ticket #(\d+) created/.exec(done);
    assert.ok(n, `the form did not end with "Ticket #N created": ${done}`);
    const t = (await ticketsOf(u)).find((x) => x.number === Number(n[1]));
    assert.ok(t, `ticket #${n[1]} is not in GET /v1/tickets`);
    return t;
  }

  /** The copy a copyMessage call made, as it is now in the topic. */
  const copyOf = (call: Call): Message => {
    const m = h().fake.message(h().group.id, call.response.result.message_id);
    assert.ok(m, 'the copy is not in the group');
    return m;
  };

  return { settle, fromBot, lastFromBot, buttons, buttonData, say, press, callsSince, count, contactOf, ticketsOf, ticket, messagesOf, chatRow, openTicket, copyOf };
}

const DEFAULT_CATEGORIES = ['Billing', 'Technical problem', 'Account', 'Other'];

// ------------------------------------------------------------------------------------------

describe('telegram customer journey (long polling)', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  before(() => { h = harness.h; });
  const j = journey(() => h);
  afterEach(function () {
    // A failing test shows what the service complained about.
    if (this.currentTest?.state === 'failed') console.log(h.logs.filter((l) => /"level":(40|50)/.test(l)).slice(-20).join(''));
  });

  describe('the intake form', () => {
    it('runs the default form on /start and creates the ticket and its topic only when the form completes', async () => {
      const sarah = h.fake.addUser({ firstName: 'Sarah', username: 'sarah_form' });
      const topicsBefore = h.fake.topics(h.group.id).length;
      const createsBefore = j.count('createForumTopic');

      await j.say(sarah, '/start');
      const q1 = j.lastFromBot(sarah);
      assert.match(q1.text, /\(1\/4\) What can we help you with\?$/);
      assert.deepEqual(j.buttons(q1).map((b) => b.text), DEFAULT_CATEGORIES, 'category buttons, and no Skip on a required question');

      await j.press(sarah, q1, 'Technical problem');
      const q2 = j.lastFromBot(sarah);
      assert.equal(q2.text, '(2/4) What is the subject?');
      assert.deepEqual(j.buttons(q2), []);

      await j.say(sarah, 'Cannot log in');
      const q3 = j.lastFromBot(sarah);
      assert.match(q3.text, /^\(3\/4\) .*describe/);

      await j.say(sarah, 'It says wrong password every time');
      const q4 = j.lastFromBot(sarah);
      assert.match(q4.text, /^\(4\/4\) .*email/);
      assert.deepEqual(j.buttons(q4).map((b) => b.text), ['Skip'], 'the optional email question offers Skip');

      // Three answers in: still no ticket and no topic.
      assert.deepEqual(await j.ticketsOf(sarah), []);
      assert.equal(h.fake.topics(h.group.id).length, topicsBefore);
      assert.equal(j.count('createForumTopic'), createsBefore);
      assert.equal((await j.chatRow(sarah)).form_step, 3);

      await j.say(sarah, 'sarah@example.com');
      const done = j.lastFromBot(sarah);
      const m = /^Ticket #(\d+) created/.exec(done.text);
      assert.ok(m, done.text);

      const [t] = await j.ticketsOf(sarah);
      assert.equal(t.number, Number(m[1]));
      assert.equal(t.subject, 'Cannot log in');
      assert.equal(t.description, 'It says wrong password every time');
      assert.equal(t.category, 'technical');
      assert.equal(t.priority, 'high', 'Technical problem maps to high');
      assert.equal(t.status, 'open');
      assert.equal(t.account_id, h.accountId);
      assert.equal(t.contact.email, 'sarah@example.com');
      assert.equal((await j.contactOf(sarah)).email, 'sarah@example.com');

      // Exactly one new topic, for this ticket.
      assert.equal(j.count('createForumTopic'), createsBefore + 1);
      assert.ok(t.topic, 'the ticket has a topic');
      assert.equal(t.topic.chat_id, h.group.id);
      const topic = h.fake.topic(h.group.id, t.topic.message_thread_id);
      assert.ok(topic && !topic.deleted);
      assert.match(topic.name, new RegExp(`#${t.number} · Cannot log in`));
      assert.equal((await j.chatRow(sarah)).form, null, 'the finished form is cleared');
    });

    it('takes a photo as the description, skips the email and uses the category\'s priority', async () => {
      const u = h.fake.addUser({ firstName: 'Pia' });
      await j.say(u, '/start');
      await j.press(u, j.lastFromBot(u), 'Billing');
      await j.say(u, 'Charged twice');
      const before = j.count('copyMessage');
      const photo = await j.say(u, { photo: true, caption: 'the invoice' });
      assert.match(j.lastFromBot(u).text, /^\(4\/4\)/, 'the photo answered the description');
      assert.equal(j.count('copyMessage'), before, 'nothing is copied before the ticket exists');
      await j.press(u, j.lastFromBot(u), 'Skip');
      assert.match(j.lastFromBot(u).text, /^Ticket #\d+ created/);

      const [t] = await j.ticketsOf(u);
      assert.equal(t.priority, 'normal', 'Billing maps to normal');
      assert.equal(t.category, 'billing');
      assert.equal(t.description, 'the invoice');
      assert.equal(t.contact.email, null, 'skipped: no email');
      // The screenshot follows the card into the topic.
      const copies = j.callsSince('copyMessage', before);
      assert.equal(copies.length, 1);
      assert.equal(Number(copies[0].params.from_chat_id), u.id);
      assert.equal(Number(copies[0].params.message_id), photo.message_id);
      assert.equal(Number(copies[0].params.message_thread_id), t.topic.message_thread_id);
      assert.deepEqual(j.copyOf(copies[0]).photo, photo.photo);
      const [msg] = await j.messagesOf(t.id);
      assert.equal(msg.attachments[0].type, 'photo');
      assert.equal(msg.attachments[0].file_id, photo.photo.at(-1).file_id);
    });

    it('takes a document as the description', async () => {
      const u = h.fake.addUser({ firstName: 'Dora' });
      await j.say(u, '/start');
      await j.press(u, j.lastFromBot(u), 'Other');
      await j.say(u, 'Logs attached');
      const doc = await j.say(u, { document: { file_name: 'app.log', mime_type: 'text/plain' } });
      assert.match(j.lastFromBot(u).text, /^\(4\/4\)/);
      await j.press(u, j.lastFromBot(u), 'Skip');
      const [t] = await j.ticketsOf(u);
      assert.equal(t.priority, 'low', 'Other maps to low');
      const copy = h.fake.messagesIn(h.group.id, { threadId: t.topic.message_thread_id }).find((m) => m.document);
      assert.ok(copy, 'the document is in the topic');
      assert.deepEqual(copy.document, doc.document);
    });

    it('takes an album as the description: one answer, and all its photos reach the topic as one album', async () => {
      const u = h.fake.addUser({ firstName: 'Alba' });
      await j.say(u, '/start');
      await j.press(u, j.lastFromBot(u), 'Technical problem');
      await j.say(u, 'Display glitch');
      const asked = j.fromBot(u).length;
      const photos = [
        h.fake.userSends(h.bot, u, { photo: true, caption: 'three screenshots' }, { mediaGroupId: 'form-album' }),
        h.fake.userSends(h.bot, u, { photo: true }, { mediaGroupId: 'form-album' }),
        h.fake.userSends(h.bot, u, { photo: true }, { mediaGroupId: 'form-album' }),
      ];
      await j.settle();
      const replies = j.fromBot(u).slice(asked).map((m) => m.text);
      assert.deepEqual(replies, ['(4/4) What email address can we reach you at?'], 'the album is one answer: the next question, once, and no complaints');

      const many = j.count('copyMessages');
      await j.press(u, j.lastFromBot(u), 'Skip');
      const [t] = await j.ticketsOf(u);
      assert.equal(t.description, 'three screenshots');
      const calls = j.callsSince('copyMessages', many);
      assert.equal(calls.length, 1, 'the album is copied with one copyMessages call');
      const ids = (typeof calls[0].params.message_ids === 'string' ? JSON.parse(calls[0].params.message_ids) : calls[0].params.message_ids).map(Number);
      assert.deepEqual(ids, photos.map((m) => m.message_id));
    });

    it('asks the form set with PUT /v1/intake-form', async () => {
      const form = {
        fields: [
          { key: 'product', type: 'choice', question: 'Which product is it about?', required: true,
            options: [{ value: 'app', label: 'Mobile app', priority: 'urgent' }, { value: 'web', label: 'Website' }] },
          { key: 'subject', type: 'text', question: 'Sum it up in a few words', required: true, max_length: 30 },
          { key: 'order_number', type: 'text', question: 'Your order number, if you have one', required: false },
        ],
      };
      const put = await h.api.put('/v1/intake-form').set('Authorization', h.auth).send(form);
      assert.equal(put.status, 200, JSON.stringify(put.body));
      try {
        const u = h.fake.addUser({ firstName: 'Carl' });
        await j.say(u, '/start');
        const q1 = j.lastFromBot(u);
        assert.match(q1.text, /\(1\/3\) Which product is it about\?$/);
        assert.deepEqual(j.buttons(q1).map((b) => b.text), ['Mobile app', 'Website']);
        await j.press(u, q1, 'Mobile app');
        assert.equal(j.lastFromBot(u).text, '(2/3) Sum it up in a few words');
        await j.say(u, 'x'.repeat(31));
        assert.match(j.lastFromBot(u).text, /at most 30 characters[\s\S]*\(2\/3\) Sum it up in a few words$/, 'the custom max_length applies');
        await j.say(u, 'App crashes on launch');
        const q3 = j.lastFromBot(u);
        assert.equal(q3.text, '(3/3) Your order number, if you have one');
        assert.deepEqual(j.buttons(q3).map((b) => b.text), ['Skip']);
        await j.say(u, 'A-1042');
        assert.match(j.lastFromBot(u).text, /^Ticket #\d+ created/);

        const [t] = await j.ticketsOf(u);
        assert.equal(t.subject, 'App crashes on launch');
        assert.equal(t.priority, 'urgent', 'the chosen option sets the priority');
        assert.deepEqual(t.custom_fields, { product: 'app', order_number: 'A-1042' });
        assert.ok(t.topic, 'the topic is created when the custom form completes');
      } finally {
        await h.api.delete('/v1/intake-form').set('Authorization', h.auth);
      }
    });

    it('answers a bad answer with a short explanation and the same question again', async () => {
      const u = h.fake.addUser({ firstName: 'Bea' });
      await j.say(u, '/start');
      const q1 = j.lastFromBot(u);
      const question1 = '(1/4) What can we help you with?';

      // Text when a button is expected.
      await j.say(u, 'billing please');
      let r = j.lastFromBot(u);
      const [why1, again1] = r.text.split('\n\n');
      assert.match(why1, /button/i);
      assert.ok(why1.length < 120, `short: ${why1}`);
      assert.equal(again1, question1);
      assert.deepEqual(r.reply_markup, q1.reply_markup, 'the same buttons again');
      assert.equal((await j.chatRow(u)).form_step, 0);

      await j.press(u, r, 'Account');

      // A subject over 120 characters.
      await j.say(u, 'a'.repeat(121));
      r = j.lastFromBot(u);
      assert.match(r.text, /^The subject can be at most 120 characters \(yours has 121\)\.\n\n\(2\/4\) What is the subject\?$/);

      // Media where only text is taken.
      await j.say(u, { photo: true, caption: 'see screenshot' });
      r = j.lastFromBot(u);
      const [why2, again2] = r.text.split('\n\n');
      assert.match(why2, /text/i);
      assert.ok(why2.length < 120, `short: ${why2}`);
      assert.equal(again2, '(2/4) What is the subject?');
      assert.equal((await j.chatRow(u)).form_step, 1);

      await j.say(u, 'a'.repeat(120));
      await j.say(u, 'details');

      // A bad email, then media on the email question.
      await j.say(u, 'bea-at-example');
      r = j.lastFromBot(u);
      assert.match(r.text, /email address[\s\S]*\n\n\(4\/4\) What email address can we reach you at\?$/);
      assert.deepEqual(j.buttons(r).map((b) => b.text), ['Skip'], 'Skip is offered again');
      await j.say(u, { document: { file_name: 'card.vcf' } });
      r = j.lastFromBot(u);
      assert.match(r.text, /email address[\s\S]*\n\n\(4\/4\)/);

      // Still no ticket, no topic, and no bad answer kept.
      assert.deepEqual(await j.ticketsOf(u), []);
      const row = await j.chatRow(u);
      assert.equal(row.form_step, 3);
      assert.equal(row.form_answers.subject, 'a'.repeat(120));

      await j.say(u, 'bea@example.com');
      const [t] = await j.ticketsOf(u);
      assert.equal(t.subject, 'a'.repeat(120));
      assert.equal(t.category, 'account');
      assert.equal(t.contact.email, 'bea@example.com');
    });

    it('refuses a button of a question already answered', async () => {
      const u = h.fake.addUser({ firstName: 'Otto' });
      await j.say(u, '/start');
      const q1 = j.lastFromBot(u);
      await j.press(u, q1, 'Billing');
      const sent = j.fromBot(u).length;
      const id = await j.press(u, q1, 'Technical problem');
      assert.match(h.fake.callbackAnswers.get(id)?.text ?? '', /already answered/);
      assert.equal(j.fromBot(u).length, sent, 'no question is asked again');
      const row = await j.chatRow(u);
      assert.equal(row.form_step, 1);
      assert.equal(row.form_answers.category, 'billing');
    });

    it('/cancel abandons the form: no ticket, no topic', async () => {
      const u = h.fake.addUser({ firstName: 'Cleo' });
      const creates = j.count('createForumTopic');
      await j.say(u, '/start');
      await j.press(u, j.lastFromBot(u), 'Billing');
      await j.say(u, 'Refund');
      await j.say(u, '/cancel');
      assert.match(j.lastFromBot(u).text, /^Cancelled/);
      const row = await j.chatRow(u);
      assert.equal(row.form, null);
      assert.equal(row.form_step, null);
      assert.deepEqual(await j.ticketsOf(u), []);
      assert.equal(j.count('createForumTopic'), creates);

      // The answers are gone: the next message starts a fresh form rather than finishing this one.
      await j.say(u, 'hello again');
      assert.match(j.lastFromBot(u).text, /\(1\/4\) What can we help you with\?$/);
      assert.deepEqual(await j.ticketsOf(u), []);
      assert.equal(j.count('createForumTopic'), creates);
    });

    it('starts the form for a customer with no open ticket who writes, without a topic', async () => {
      const u = h.fake.addUser({ firstName: 'Nina' });
      const creates = j.count('createForumTopic');
      const copies = j.count('copyMessage') + j.count('copyMessages');
      await j.say(u, 'Hi, my order never arrived');
      const q = j.lastFromBot(u);
      assert.match(q.text, /\(1\/4\) What can we help you with\?$/);
      assert.deepEqual(j.buttons(q).map((b) => b.text), DEFAULT_CATEGORIES);
      assert.deepEqual(await j.ticketsOf(u), []);
      assert.equal(j.count('createForumTopic'), creates, 'no topic before the form is complete');
      assert.equal(j.count('copyMessage') + j.count('copyMessages'), copies, 'the message is not copied anywhere');
      assert.equal((await j.chatRow(u)).form_step, 0);
    });
  });

  describe('messages into the ticket', () => {
    it('copies a follow-up into the open ticket\'s topic', async () => {
      const u = h.fake.addUser({ firstName: 'Finn' });
      const t = await j.openTicket(u, { subject: 'Slow app' });
      const before = j.count('copyMessage');
      const m = await j.say(u, 'any news?');
      const calls = j.callsSince('copyMessage', before);
      assert.equal(calls.length, 1);
      const p = calls[0].params;
      assert.equal(Number(p.chat_id), h.group.id);
      assert.equal(Number(p.from_chat_id), u.id, 'copied from the customer chat');
      assert.equal(Number(p.message_id), m.message_id);
      assert.equal(Number(p.message_thread_id), t.topic.message_thread_id);
      const copy = j.copyOf(calls[0]);
      assert.equal(copy.text, 'any news?');
      assert.equal(copy.message_thread_id, t.topic.message_thread_id);

      const msgs = await j.messagesOf(t.id);
      const inbound = msgs.find((x) => x.text === 'any news?');
      assert.ok(inbound, 'the message is on the ticket');
      assert.equal(inbound.direction, 'inbound');
      assert.equal(inbound.author.type, 'contact');
      assert.equal((await j.ticketsOf(u)).length, 1, 'no second ticket');
    });

    it('lets a customer with several open tickets choose one, and sends the waiting messages there', async () => {
      const u = h.fake.addUser({ firstName: 'Max' });
      const t1 = await j.openTicket(u, { subject: 'First problem' });
      const t2 = await j.openTicket(u, { category: 'Billing', subject: 'Second problem' });
      assert.notEqual(t1.id, t2.id);
      // Half an hour later the last choice no longer holds.
      await h.db('telegram_chats').where({ account_id: h.accountId, chat_id: u.id }).update({ chosen_until: new Date(Date.now() - 60_000) });

      const before = j.count('copyMessage');
      const a = await j.say(u, 'message A');
      const b = await j.say(u, 'message B');
      const asks = j.fromBot(u).filter((m) => /several open tickets/.test(m.text ?? ''));
      assert.equal(asks.length, 1, 'asked once, not for every message');
      const ask = asks[0];
      assert.deepEqual(j.buttons(ask).map((x) => x.text).sort(), [`#${t1.number} · First problem`, `#${t2.number} · Second problem`, '➕ A new ticket'].sort());
      assert.equal(j.count('copyMessage'), before, 'nothing is copied before the choice');

      await j.press(u, ask, `#${t1.number} · First problem`);
      assert.equal(j.lastFromBot(u).text, `Got it: this goes to ticket #${t1.number}.`);
      const calls = j.callsSince('copyMessage', before);
      assert.deepEqual(calls.map((c) => Number(c.params.message_id)), [a.message_id, b.message_id], 'both, in order');
      for (const c of calls) assert.equal(Number(c.params.message_thread_id), t1.topic.message_thread_id);
      assert.deepEqual((await j.messagesOf(t1.id)).map((x) => x.text).filter((x) => x.startsWith('message ')), ['message A', 'message B']);
      assert.equal((await j.messagesOf(t2.id)).some((x) => x.text.startsWith('message ')), false);
      assert.deepEqual((await j.chatRow(u)).pending_messages, []);

      // The choice holds for the next message.
      const c = await j.say(u, 'message C');
      const next = j.callsSince('copyMessage', before + 2);
      assert.equal(next.length, 1);
      assert.equal(Number(next[0].params.message_id), c.message_id);
      assert.equal(Number(next[0].params.message_thread_id), t1.topic.message_thread_id);
    });

    it('delivers photos, documents, voice, video and stickers intact', async () => {
      const u = h.fake.addUser({ firstName: 'Mia' });
      const t = await j.openTicket(u, { subject: 'Media' });
      const cases: { content: Content; field: string }[] = [
        { content: { photo: true, caption: 'a photo' }, field: 'photo' },
        { content: { document: { file_name: 'report.pdf', mime_type: 'application/pdf' }, caption: 'a pdf' }, field: 'document' },
        { content: { voice: true }, field: 'voice' },
        { content: { video: true, caption: 'a video' }, field: 'video' },
        { content: { sticker: true }, field: 'sticker' },
      ];
      for (const { content, field } of cases) {
        const before = j.count('copyMessage');
        const sent = await j.say(u, content);
        const calls = j.callsSince('copyMessage', before);
        assert.equal(calls.length, 1, `${field}: one copyMessage`);
        assert.equal(Number(calls[0].params.from_chat_id), u.id);
        assert.equal(Number(calls[0].params.message_id), sent.message_id);
        assert.equal(Number(calls[0].params.message_thread_id), t.topic.message_thread_id);
        const copy = j.copyOf(calls[0]);
        assert.deepEqual(copy[field], sent[field], `${field}: the same file`);
        assert.equal(copy.caption, sent.caption, `${field}: the same caption`);
      }
      const inbound = (await j.messagesOf(t.id)).filter((m) => m.direction === 'inbound' && m.attachments.length);
      assert.deepEqual(inbound.map((m) => m.attachments[0].type), ['photo', 'document', 'voice', 'video', 'sticker']);
      assert.equal(inbound[1].attachments[0].file_name, 'report.pdf');
      assert.equal(inbound[1].text, 'a pdf');
    });

    it('copies an album with one copyMessages call that keeps the grouping', async () => {
      const u = h.fake.addUser({ firstName: 'Ada' });
      const t = await j.openTicket(u, { subject: 'Album' });
      const single = j.count('copyMessage');
      const many = j.count('copyMessages');
      const photos = [
        h.fake.userSends(h.bot, u, { photo: true, caption: 'three screenshots' }, { mediaGroupId: 'album-1' }),
        h.fake.userSends(h.bot, u, { photo: true }, { mediaGroupId: 'album-1' }),
        h.fake.userSends(h.bot, u, { photo: true }, { mediaGroupId: 'album-1' }),
      ];
      await j.settle();
      assert.equal(j.count('copyMessage'), single, 'no single copies');
      const calls = j.callsSince('copyMessages', many);
      assert.equal(calls.length, 1, 'ONE copyMessages call');
      const p = calls[0].params;
      assert.equal(Number(p.from_chat_id), u.id);
      assert.equal(Number(p.message_thread_id), t.topic.message_thread_id);
      const ids = (typeof p.message_ids === 'string' ? JSON.parse(p.message_ids) : p.message_ids).map(Number);
      assert.deepEqual(ids, photos.map((m) => m.message_id));

      const copies = (calls[0].response.result as { message_id: number }[]).map((r) => h.fake.message(h.group.id, r.message_id)!);
      assert.equal(copies.length, 3);
      const groups = new Set(copies.map((m) => m.media_group_id));
      assert.equal(groups.size, 1, 'one album in the topic');
      assert.ok([...groups][0]);
      copies.forEach((c, i) => assert.deepEqual(c.photo, photos[i].photo));
      assert.equal(copies[0].caption, 'three screenshots');

      const inbound = (await j.messagesOf(t.id)).filter((m) => m.attachments.some((a: any) => a.media_group_id === 'album-1'));
      assert.equal(inbound.length, 3, 'three messages on the ticket');
    });

    it('mirrors an edited text onto the topic copy', async () => {
      const u = h.fake.addUser({ firstName: 'Eve' });
      const t = await j.openTicket(u, { subject: 'Browser' });
      const before = j.count('copyMessage');
      const m = await j.say(u, 'I use Firefox');
      const [copyCall] = j.callsSince('copyMessage', before);
      const copyId = copyCall.response.result.message_id;
      const edits = j.count('editMessageText');
      h.fake.userEdits(h.bot, u, m.message_id, 'I use Chrome');
      await j.settle();
      const calls = j.callsSince('editMessageText', edits);
      assert.equal(calls.length, 1);
      assert.equal(Number(calls[0].params.chat_id), h.group.id);
      assert.equal(Number(calls[0].params.message_id), copyId);
      assert.equal(h.fake.message(h.group.id, copyId)?.text, 'I use Chrome');
      const texts = (await j.messagesOf(t.id)).map((x) => x.text);
      assert.ok(texts.includes('I use Chrome'));
      assert.ok(!texts.includes('I use Firefox'));
    });

    it('mirrors an edited caption onto the topic copy', async () => {
      const u = h.fake.addUser({ firstName: 'Ivo' });
      const t = await j.openTicket(u, { subject: 'Screenshot' });
      const before = j.count('copyMessage');
      const m = await j.say(u, { photo: true, caption: 'before' });
      const [copyCall] = j.callsSince('copyMessage', before);
      const copyId = copyCall.response.result.message_id;
      const edits = j.count('editMessageCaption');
      h.fake.userEdits(h.bot, u, m.message_id, 'after');
      await j.settle();
      const calls = j.callsSince('editMessageCaption', edits);
      assert.equal(calls.length, 1);
      assert.equal(Number(calls[0].params.message_id), copyId);
      const copy = h.fake.message(h.group.id, copyId)!;
      assert.equal(copy.caption, 'after');
      assert.ok(copy.photo, 'still the photo');
      assert.ok((await j.messagesOf(t.id)).some((x) => x.text === 'after'));
    });
  });

  describe('resolution and satisfaction', () => {
    it('tells the customer on resolve, stores a 4-star rating as csat.received, and reopens on a reply', async () => {
      const u = h.fake.addUser({ firstName: 'Rita' });
      const t = await j.openTicket(u, { subject: 'Password reset' });
      const res = await h.api.post(`/v1/tickets/${t.id}/status`).set('Authorization', h.auth).send({ status: 'resolved' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await j.settle();

      const notice = j.lastFromBot(u);
      assert.ok(notice.text.startsWith(`Your ticket #${t.number} was resolved — reply here to reopen it`), notice.text);
      assert.deepEqual(j.buttons(notice).map((b) => b.text.replace(/\D/g, '')), ['1', '2', '3', '4', '5']);

      const four = j.buttons(notice).find((b) => b.text.startsWith('4'))!;
      const qid = h.fake.userPresses(h.bot, u, { chatId: u.id, messageId: notice.message_id }, four.callback_data);
      await j.settle();
      assert.match(h.fake.callbackAnswers.get(qid)?.text ?? '', /4/, 'the press is answered with the rating');

      const row = await h.db('tickets').where({ id: t.id }).first();
      assert.equal(row.csat_rating, 4);
      const timeline = await h.api.get(`/v1/tickets/${t.id}/events`).query({ limit: 100 }).set('Authorization', h.auth);
      assert.equal(timeline.status, 200);
      const csat = timeline.body.items.filter((e: any) => e.type === 'csat.received');
      assert.equal(csat.length, 1);
      assert.equal(csat[0].actor.type, 'contact');
      const ev = await h.db('events').where({ ticket_id: t.id, type: 'csat.received' }).first();
      assert.equal(ev.payload.rating, 4);

      // A reply after resolution reopens the ticket and reaches the topic.
      const before = j.count('copyMessage');
      const m = await j.say(u, 'It broke again');
      const after = await j.ticket(t.id);
      assert.equal(after.status, 'open');
      assert.equal(after.reopened_count, 1);
      const calls = j.callsSince('copyMessage', before);
      assert.equal(calls.length, 1);
      assert.equal(Number(calls[0].params.message_id), m.message_id);
      assert.equal(Number(calls[0].params.message_thread_id), t.topic.message_thread_id);
      assert.equal((await j.ticketsOf(u)).length, 1, 'the same ticket, not a new one');
    });
  });

  describe('blocking the bot', () => {
    it('marks the contact blocked when they block the bot and clears it when they unblock', async () => {
      const u = h.fake.addUser({ firstName: 'Bob' });
      await j.openTicket(u, { subject: 'Blocking' });
      assert.equal((await j.contactOf(u)).blocked, false);
      const sends = h.fake.calls.length;

      h.fake.userBlocks(h.bot, u);
      await j.settle();
      assert.equal((await j.contactOf(u)).blocked, true);
      assert.equal(h.fake.pendingUpdatesFor(h.bot).length, 0, 'the my_chat_member update was taken');

      h.fake.userUnblocks(h.bot, u);
      await j.settle();
      assert.equal((await j.contactOf(u)).blocked, false);
      const toUser = h.fake.calls.slice(sends).filter((c) => Number(c.params.chat_id) === u.id);
      assert.deepEqual(toUser.map((c) => c.method), [], 'nothing is sent to the customer for a (un)block');
    });
  });
});

// ------------------------------------------------------------------------------------------

describe('telegram customer journey: the form survives a restart', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  before(() => { h = harness.h; });
  const j = journey(() => h);
  let second: Telegram | undefined;
  // Stopped here, before the harness's own after hook drops the database under it.
  afterEach(async () => { await second?.stop(); second = undefined; });

  it('continues the same form in another Telegram instance on the same database', async () => {
    const u = h.fake.addUser({ firstName: 'Rolf' });
    await j.say(u, '/start');
    await j.press(u, j.lastFromBot(u), 'Technical problem');
    await j.say(u, 'Sync fails');
    const row = await j.chatRow(u);
    assert.equal(row.form_step, 2, 'the step is in the database');
    assert.equal(row.form_answers.subject, 'Sync fails');

    await h.telegram.stop();
    // Written while no instance runs.
    h.fake.userSends(h.bot, u, 'It stops at 50%');
    const asked = j.fromBot(u).length;

    const logs: string[] = [];
    const logger = createLogger('debug', new Writable({ write(chunk, _e, cb) { logs.push(chunk.toString()); cb(); } }));
    second = createTelegram({ config: h.config, db: h.db, logger, clock: systemClock, services: h.services });
    await second.start();
    await j.settle();

    assert.equal(j.fromBot(u).length, asked + 1);
    const q4 = j.lastFromBot(u);
    assert.match(q4.text, /^\(4\/4\) /, 'the form went on at the email question, not from the start');
    await j.press(u, q4, 'Skip');
    assert.match(j.lastFromBot(u).text, /^Ticket #\d+ created/);
    const [t] = await j.ticketsOf(u);
    assert.equal(t.subject, 'Sync fails');
    assert.equal(t.description, 'It stops at 50%');
    assert.equal(t.priority, 'high');
    assert.ok(t.topic);
    assert.ok(h.fake.topic(h.group.id, t.topic.message_thread_id));
  });
});

// ------------------------------------------------------------------------------------------

describe('telegram customer journey (webhook mode)', () => {
  const harness = useTelegramHarness({ webhook: true });
  let h: TelegramHarness;
  before(() => { h = harness.h; });
  const j = journey(() => h);

  it('runs the form, creates the ticket and its topic, and relays a follow-up', async () => {
    assert.equal(h.fake.callsTo('setWebhook').length > 0, true, 'the webhook is set');
    const polls = h.fake.callsTo('getUpdates').length;

    const u = h.fake.addUser({ firstName: 'Wendy' });
    const t = await j.openTicket(u, { category: 'Account', subject: 'Locked out', email: 'wendy@example.com' });
    assert.equal(t.priority, 'normal');
    assert.equal(t.category, 'account');
    assert.equal(t.contact.email, 'wendy@example.com');
    assert.ok(t.topic);
    const topic = h.fake.topic(h.group.id, t.topic.message_thread_id);
    assert.ok(topic);
    assert.match(topic.name, /#\d+ · Locked out/);

    const before = j.count('copyMessage');
    const m = await j.say(u, 'still locked');
    const calls = j.callsSince('copyMessage', before);
    assert.equal(calls.length, 1);
    assert.equal(Number(calls[0].params.from_chat_id), u.id);
    assert.equal(Number(calls[0].params.message_id), m.message_id);
    assert.equal(Number(calls[0].params.message_thread_id), t.topic.message_thread_id);
    assert.equal(j.copyOf(calls[0]).text, 'still locked');
    assert.ok((await j.messagesOf(t.id)).some((x) => x.text === 'still locked'));

    assert.equal(h.fake.callsTo('getUpdates').length, polls, 'no long polling in webhook mode');
  });
});
