/**
 * The agents' side end to end (SPEC §3.2): the real app and Telegram workers against the fake
 * Bot API. Tickets are opened through the customer's intake form or through POST /v1/tickets
 * for a contact who has written to the bot; agents act by writing in the ticket's topic and
 * pressing the card's buttons. Every test checks what Telegram was asked to do (the fake's
 * calls and messages) and what the database / API now says.
 */
import assert from 'node:assert/strict';
import { updateInbox } from '../../src/telegram/update-inbox.js';
import type { Call, Content, FakeUser, Message } from '../helpers/fake-bot-api.js';
import { useTelegramHarness, type TelegramHarness, ticketRows } from '../helpers/telegram-harness.js';

interface Opened {
  user: FakeUser;
  contactId: string;
  ticketId: string;
  number: number;
  threadId: number;
}

describe('Telegram agents’ side: topics, cards, relay and commands (SPEC §3.2)', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  before(() => {
    h = harness.h;
  });

  let seq = 0;

  // ---------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------

  /** Polls an observable condition (no fixed sleeps). */
  async function until<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v) return v as T;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Everything the fake has produced so far is handled and nothing waits to be sent: the
   * harness's settle(), and then the last update the fake produced must itself be processed
   * (the harness counts handled updates, and a test here puts two updates straight into the
   * inbox, which would make that count reach the fake's too early).
   */
  async function settle(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      await h.settle();
      const last = h.fake.updatesFor(h.bot).at(-1)?.update_id;
      const handled = last === undefined || !!(await h.db('telegram_updates').where({ account_id: h.accountId, update_id: last }).whereNotNull('processed_at').first());
      const [{ n: sends }] = await h.db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
      const [{ n: updates }] = await h.db('telegram_updates').whereNull('processed_at').count({ n: '*' });
      if (handled && Number(sends) === 0 && Number(updates) === 0) return;
      if (Date.now() > deadline) throw new Error(`not settled: last update handled ${handled}, ${sends} sends, ${updates} updates`);
    }
  }

  function newAgent(firstName = 'Alex', o: { lastName?: string; admin?: boolean } = {}): FakeUser {
    const n = ++seq;
    const u = h.fake.addUser({ firstName, ...(o.lastName ? { lastName: o.lastName } : {}), username: `${firstName.toLowerCase()}_agent${n}` });
    h.fake.addMember(h.group, u, o.admin ? { status: 'administrator' } : {});
    return u;
  }

  /** A customer who has written to the bot (so the contact and its private chat exist), with no form pending. */
  async function newCustomer(firstName = 'Sarah'): Promise<{ user: FakeUser; contactId: string }> {
    const user = h.fake.addUser({ firstName, lastName: 'Miller', username: `${firstName.toLowerCase()}_c${++seq}` });
    h.fake.userSends(h.bot, user, '/start');
    h.fake.userSends(h.bot, user, '/cancel');
    await settle();
    const contact = await h.db('contacts').where({ telegram_user_id: user.id }).first();
    assert.ok(contact, 'writing to the bot creates the contact');
    return { user, contactId: contact.id };
  }

  const api = {
    get: (path: string) => h.api.get(path).set('Authorization', h.auth),
    post: (path: string, body: object) => h.api.post(path).set('Authorization', h.auth).send(body),
    patch: (path: string, body: object) => h.api.patch(path).set('Authorization', h.auth).send(body),
  };

  async function ticketJson(id: string): Promise<any> {
    const r = await api.get(`/v1/tickets/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  }

  /** POST /v1/tickets for a fresh customer who has written to the bot; waits for its topic. */
  async function openTicket(subject = 'Cannot log in', extra: Record<string, unknown> = {}): Promise<Opened> {
    const { user, contactId } = await newCustomer();
    const r = await api.post('/v1/tickets', { contact_id: contactId, subject, description: 'It says wrong password every time', ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await settle();
    const t = await ticketJson(r.body.id);
    assert.ok(t.topic, 'the ticket has its topic');
    assert.equal(t.topic.chat_id, h.group.id);
    return { user, contactId, ticketId: t.id, number: t.number, threadId: t.topic.message_thread_id };
  }

  const ticketRow = (id: string) => ticketRows(h.db).where({ 'tickets.id': id }).first();

  async function cardOf(o: Opened): Promise<Message> {
    const r = await ticketRow(o.ticketId);
    assert.ok(r.topic_card_message_id, 'the ticket knows its card');
    const m = h.fake.message(h.group.id, Number(r.topic_card_message_id));
    assert.ok(m, 'the card is in the group');
    return m;
  }

  const topicOf = (o: Opened) => {
    const t = h.fake.topic(h.group.id, o.threadId);
    assert.ok(t, 'the topic exists');
    return t;
  };

  /** An agent writes in the ticket's topic; resolves once everything it caused is done. */
  async function say(agent: FakeUser, o: Opened, content: string | Content): Promise<Message> {
    const m = h.fake.memberSends(h.group, agent, content, { threadId: o.threadId });
    await settle();
    return m;
  }

  /** New text messages the bot posted in the topic after `afterId` (replies; not edits, not service messages). */
  const botRepliesInTopic = (o: Opened, afterId: number) =>
    h.fake.messagesIn(h.group.id, { threadId: o.threadId }).filter((m) => m.message_id > afterId && m.from?.id === h.bot.id && typeof m.text === 'string');

  const ok = (c: Call) => c.status === 200;
  const reactionsTo = (messageId: number) =>
    h.fake.callsTo('setMessageReaction').filter((c) => ok(c) && Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === messageId);
  const callsIntoChat = (chatId: number) => h.fake.calls.filter((c) => c.params.chat_id !== undefined && Number(c.params.chat_id) === chatId);
  const customerMessages = (user: FakeUser) => h.fake.messagesIn(user.id, { botId: h.bot.id });

  /** The command worked: a 👍 on it, no message in the topic. */
  function assertReactedOnly(o: Opened, cmd: Message): void {
    const r = reactionsTo(cmd.message_id);
    assert.equal(r.length, 1, `one reaction on ${cmd.text}`);
    assert.deepEqual(r[0].params.reaction, [{ type: 'emoji', emoji: '👍' }]);
    assert.deepEqual(botRepliesInTopic(o, cmd.message_id).map((m) => m.text), [], `no reply message for ${cmd.text}`);
  }

  /** The command was refused or needs usage: one short reply in the topic, no reaction. */
  function assertRepliedOnly(o: Opened, cmd: Message, pattern: RegExp, maxLength = 300): Message {
    assert.equal(reactionsTo(cmd.message_id).length, 0, `no reaction on ${cmd.text}`);
    const replies = botRepliesInTopic(o, cmd.message_id);
    assert.equal(replies.length, 1, `one reply to ${cmd.text}: ${JSON.stringify(replies.map((m) => m.text))}`);
    assert.match(replies[0].text, pattern);
    assert.ok(replies[0].text.length <= maxLength, `the reply is short: ${replies[0].text}`);
    return replies[0];
  }

  const buttons = (m: Message): { text: string; callback_data: string }[] => (m.reply_markup?.inline_keyboard ?? []).flat();

  // ---------------------------------------------------------------------------------------
  // Topic and card
  // ---------------------------------------------------------------------------------------

  describe('the topic and its card', () => {
    it('a ticket opened through the customer form gets a topic named "<emoji> #N · <subject>" whose first message is the pinned card', async () => {
      const { fake, bot } = h;
      const sarah = fake.addUser({ firstName: 'Sarah', lastName: 'Connor', username: `sarah_form${++seq}` });
      fake.userSends(bot, sarah, '/start');
      await settle();
      const q1 = customerMessages(sarah).at(-1)!;
      const technical = buttons(q1).find((b) => b.text === 'Technical problem')!;
      assert.ok(technical, 'the category question offers Technical problem');
      fake.userPresses(bot, sarah, { chatId: sarah.id, messageId: q1.message_id }, technical.callback_data);
      await settle();
      fake.userSends(bot, sarah, 'VPN drops every hour');
      await settle();
      fake.userSends(bot, sarah, 'Since Monday the VPN disconnects');
      await settle();
      const q4 = customerMessages(sarah).at(-1)!;
      fake.userPresses(bot, sarah, { chatId: sarah.id, messageId: q4.message_id }, buttons(q4).find((b) => b.text === 'Skip')!.callback_data);
      await settle();

      const row = await ticketRows(h.db).join('contacts', 'contacts.id', 'tickets.contact_id').where('contacts.telegram_user_id', sarah.id).first();
      assert.ok(row, 'the form created a ticket');
      assert.match(customerMessages(sarah).at(-1)!.text, new RegExp(`^Ticket #${row.number} created`));
      const o: Opened = { user: sarah, contactId: row.contact_id, ticketId: row.id, number: row.number, threadId: Number(row.topic_thread_id) };

      const topic = topicOf(o);
      assert.equal(topic.name, `🆕 #${row.number} · VPN drops every hour`);
      assert.equal(row.topic_name, topic.name);
      assert.equal(topic.createdBy, bot.id);
      const create = fake.callsTo('createForumTopic').find((c) => ok(c) && c.response.result.message_thread_id === o.threadId)!;
      assert.equal(create.params.name, topic.name);
      assert.equal(Number(create.params.icon_color), 0xffd67e, 'a high-priority (technical) ticket gets the high colour');

      // First message after the topic's creation is the card, and it is pinned.
      const [created, first] = topic.messages;
      assert.ok(created.forum_topic_created, 'the topic starts with its creation message');
      assert.equal(first.from?.id, bot.id);
      assert.equal(first.message_id, Number(row.topic_card_message_id), 'the first message is the card the ticket points at');
      assert.deepEqual(topic.pinned, [first.message_id]);
      assert.equal(row.topic_card_pinned, true);

      const text: string = first.text;
      assert.equal(text, row.topic_card_text);
      assert.match(text, new RegExp(`^🎫 #${row.number} · VPN drops every hour`));
      assert.match(text, /Customer: Sarah Connor · @sarah_form\d+/);
      assert.match(text, new RegExp(`\\(id ${sarah.id}\\)`));
      assert.match(text, /Status: 🆕 open · Priority: high · Category: technical/);
      assert.match(text, /Assignee: — nobody yet/);
      assert.match(text, /Since Monday the VPN disconnects/);
      assert.deepEqual(buttons(first).map((b) => b.text), ['🙋 Take', '✅ Resolve', '⚡ Priority']);
      assert.deepEqual(buttons(first).map((b) => b.callback_data.split(':')[1]), [row.id, row.id, row.id]);
    });

    it('cuts a 200-character subject with "…" so the topic name is exactly 128 characters', async () => {
      const subject = Array.from({ length: 20 }, (_, i) => `word${String(i).padStart(5, '0')}`).join(' ').padEnd(200, 'z').slice(0, 200);
      assert.equal(subject.length, 200);
      const o = await openTicket(subject);
      const name = topicOf(o).name;
      const chars = Array.from(name);
      assert.equal(chars.length, 128);
      assert.equal(chars.at(-1), '…');
      const prefix = `🆕 #${o.number} · `;
      assert.ok(name.startsWith(prefix + subject.slice(0, 20)), name);
      assert.equal(name, Array.from(prefix + subject).slice(0, 127).join('') + '…');
      const create = h.fake.callsTo('createForumTopic').find((c) => ok(c) && c.response.result.message_thread_id === o.threadId)!;
      assert.equal(create.params.name, name, 'the topic was created with the cut name (Telegram refuses longer ones)');
      assert.equal((await ticketRow(o.ticketId)).topic_name, name);
      assert.equal((await ticketJson(o.ticketId)).subject, subject, 'the subject itself is kept whole');

      // A later status change re-renders the cut name with the new emoji.
      const r = await api.post(`/v1/tickets/${o.ticketId}/status`, { status: 'in_progress' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      const renamed = topicOf(o).name;
      assert.equal(Array.from(renamed).length, 128);
      assert.ok(renamed.startsWith(`🛠 #${o.number} · `) && renamed.endsWith('…'), renamed);
    });

    it('keeps the topic name current when the subject or status changes through the API', async () => {
      const o = await openTicket('Printer on fire');
      assert.equal(topicOf(o).name, `🆕 #${o.number} · Printer on fire`);

      let r = await api.patch(`/v1/tickets/${o.ticketId}`, { subject: 'Printer smoking' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.equal(topicOf(o).name, `🆕 #${o.number} · Printer smoking`);
      const edit = h.fake.callsTo('editForumTopic').filter((c) => ok(c) && Number(c.params.message_thread_id) === o.threadId);
      assert.equal(edit.length, 1);
      assert.equal(edit[0].params.name, `🆕 #${o.number} · Printer smoking`);
      assert.equal((await ticketRow(o.ticketId)).topic_name, `🆕 #${o.number} · Printer smoking`);
      assert.match((await cardOf(o)).text, new RegExp(`^🎫 #${o.number} · Printer smoking`), 'the card follows the subject too');

      r = await api.post(`/v1/tickets/${o.ticketId}/status`, { status: 'in_progress' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.equal(topicOf(o).name, `🛠 #${o.number} · Printer smoking`);

      // A change that does not touch status or subject renames nothing.
      const before = h.fake.callsTo('editForumTopic').length;
      r = await api.patch(`/v1/tickets/${o.ticketId}`, { priority: 'high' });
      assert.equal(r.status, 200);
      await settle();
      assert.equal(h.fake.callsTo('editForumTopic').length, before);
    });

    it('keeps the topic name current when agents change the status with commands', async () => {
      const o = await openTicket('Refund not received');
      const alex = newAgent('Alex');
      await say(alex, o, '/status waiting_on_customer');
      assert.equal(topicOf(o).name, `⏳ #${o.number} · Refund not received`);
      await say(alex, o, '/resolve');
      assert.equal(topicOf(o).name, `✅ #${o.number} · Refund not received`);
      await say(alex, o, '/reopen');
      assert.equal(topicOf(o).name, `🆕 #${o.number} · Refund not received`);
      assert.equal((await ticketRow(o.ticketId)).topic_name, `🆕 #${o.number} · Refund not received`);
    });

    it('edits the pinned card when priority, assignee, tags and status change through the API', async () => {
      const o = await openTicket('Card follows the ticket');
      const card0 = await cardOf(o);
      const alex = newAgent('Alex', { lastName: 'Kim' });
      // Alex becomes an agent by writing (a note, so the customer gets nothing).
      await say(alex, o, '//looking');
      const agent = await h.db('agents').where({ telegram_user_id: alex.id }).first();
      const editsOfCard = () => h.fake.callsTo('editMessageText').filter((c) => ok(c) && Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === card0.message_id);

      let r = await api.patch(`/v1/tickets/${o.ticketId}`, { priority: 'urgent' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.match((await cardOf(o)).text, /Priority: urgent/);
      assert.equal(editsOfCard().length, 1);

      r = await api.post(`/v1/tickets/${o.ticketId}/assign`, { agent_id: agent.id });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.match((await cardOf(o)).text, new RegExp(`Assignee: Alex Kim \\(@${alex.username}\\)`));

      r = await api.patch(`/v1/tickets/${o.ticketId}`, { tags: ['vip', 'billing'] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      assert.match((await cardOf(o)).text, /Tags: (#vip #billing|#billing #vip)/);

      // Due times, as the SLA engine stores them on the ticket.
      await h.db('tickets').where({ id: o.ticketId }).update({ first_response_due_at: new Date('2030-01-02T03:04:00Z'), resolution_due_at: new Date('2030-01-03T05:06:00Z') });
      await settle();
      assert.match((await cardOf(o)).text, /SLA: first response by 2030-01-02 03:04 UTC · resolution by 2030-01-03 05:06 UTC/);

      r = await api.post(`/v1/tickets/${o.ticketId}/status`, { status: 'resolved' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await settle();
      const card = await cardOf(o);
      assert.equal(card.message_id, card0.message_id, 'the same card is edited, not a new one posted');
      assert.match(card.text, /Status: ✅ resolved/);
      assert.deepEqual(buttons(card).map((b) => b.text), ['🙋 Take', '⚡ Priority'], 'a resolved ticket has no Resolve button');
      assert.equal(editsOfCard().length, 5, 'one edit per change');
      assert.equal((await ticketRow(o.ticketId)).topic_card_text, card.text, 'the ticket remembers what the card shows');
      assert.deepEqual(topicOf(o).pinned, [card0.message_id], 'still the pinned card');
    });

    it('coalesces quick changes: five PATCHes while a card edit waits give one more edit, showing the final state', async () => {
      const o = await openTicket('Many quick changes');
      const card = await cardOf(o);
      const editsOfCard = () => h.fake.callsTo('editMessageText').filter((c) => Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === card.message_id);
      const sendsBefore = (await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'edit_card' }).count({ n: '*' }))[0].n;
      assert.equal(Number(sendsBefore), 0);

      // Telegram asks the bot to wait a second on the first edit: the changes that follow pile up behind it.
      h.fake.failNext({ method: 'editMessageText', chatId: h.group.id }, { code: 429, description: 'Too Many Requests: retry after 1', retryAfter: 1 });
      let r = await api.patch(`/v1/tickets/${o.ticketId}`, { priority: 'high' });
      assert.equal(r.status, 200);
      await until(
        async () => h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'edit_card', status: 'queued' }).where('attempts', '>', 0).first(),
        'the rate-limited card edit to wait in the queue',
      );
      const changes = [{ priority: 'urgent' }, { tags: ['alpha'] }, { priority: 'low' }, { tags: ['alpha', 'beta'] }];
      for (const body of changes) {
        r = await api.patch(`/v1/tickets/${o.ticketId}`, body);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      await settle();

      const edits = editsOfCard();
      assert.equal(edits.length, 2, `five changes, two edit calls (one answered 429): ${edits.map((c) => c.status)}`);
      assert.deepEqual(edits.map((c) => c.status), [429, 200]);
      const rows = await h.db('telegram_sends').where({ ticket_id: o.ticketId, op: 'edit_card' });
      assert.equal(rows.length, 1, 'one queued row stood for all five changes');
      const text = (await cardOf(o)).text;
      assert.match(text, /Priority: low/);
      assert.match(text, /Tags: #alpha #beta/);
      const t = await ticketJson(o.ticketId);
      assert.equal(t.priority, 'low');
      assert.deepEqual(t.tags, ['alpha', 'beta']);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Relay to the customer
  // ---------------------------------------------------------------------------------------

  describe('agent messages to the customer', () => {
    it('copies a message to the customer, sets first_response_at once it is sent and moves the ticket to waiting_on_customer', async () => {
      const o = await openTicket('Where is my parcel');
      const alex = newAgent('Alex');
      h.fake.slow({ method: 'copyMessage' }, 400);
      let m: Message;
      try {
        m = h.fake.memberSends(h.group, alex, 'Hi Sarah, it left the warehouse today', { threadId: o.threadId });
        const call = await until(() => h.fake.callsTo('copyMessage').find((c) => Number(c.params.message_id) === m.message_id), 'the copy to be on its way');
        // While Telegram has not confirmed it: in work, no first response yet.
        const during = await ticketRow(o.ticketId);
        assert.equal(during.status, 'waiting_on_customer', 'an agent reply puts the ticket on the customer');
        assert.equal(during.first_response_at, null, 'not a first response before it reached the customer');
        assert.equal(Number(call.params.from_chat_id), h.group.id);
        assert.equal(Number(call.params.chat_id), o.user.id);
        await settle();
      } finally {
        h.fake.slow({ method: 'copyMessage' }, 0);
      }
      const copies = customerMessages(o.user).filter((x) => x.text === 'Hi Sarah, it left the warehouse today');
      assert.equal(copies.length, 1, 'the customer got it once');
      assert.equal(copies[0].from?.id, h.bot.id);
      assert.equal(copies[0].forward_origin, undefined, 'a copy, not a forward');

      const msg = await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound', visibility: 'public' }).first();
      assert.equal(msg.status, 'sent');
      assert.equal(msg.author_type, 'agent');
      assert.equal(msg.text, 'Hi Sarah, it left the warehouse today');
      const t = await ticketJson(o.ticketId);
      assert.equal(t.status, 'waiting_on_customer');
      assert.ok(t.first_response_at, 'first_response_at is set');
      assert.equal(new Date(t.first_response_at).getTime(), new Date(msg.sent_at).getTime());
      assert.equal(topicOf(o).name, `⏳ #${o.number} · Where is my parcel`);

      // A second reply does not move the first response.
      await say(alex, o, 'Tracking number follows');
      assert.equal((await ticketJson(o.ticketId)).first_response_at, t.first_response_at);
      assert.equal(customerMessages(o.user).filter((x) => x.text === 'Tracking number follows').length, 1);
    });

    it('copies media (a photo with its caption, a document) from the group to the customer', async () => {
      const o = await openTicket('Send me the invoice');
      const alex = newAgent('Alex');
      const photo = await say(alex, o, { photo: true, caption: 'This screen' });
      const doc = await say(alex, o, { document: { file_name: 'invoice.pdf', mime_type: 'application/pdf' }, caption: 'Your invoice' });
      for (const src of [photo, doc]) {
        const call = h.fake.callsTo('copyMessage').find((c) => Number(c.params.from_chat_id) === h.group.id && Number(c.params.message_id) === src.message_id);
        assert.ok(call && ok(call), 'copied with copyMessage');
        assert.equal(Number(call.params.chat_id), o.user.id);
      }
      const got = customerMessages(o.user);
      const p = got.find((x) => x.caption === 'This screen');
      assert.ok(p?.photo, 'the customer got the photo');
      const d = got.find((x) => x.caption === 'Your invoice');
      assert.equal(d?.document?.file_name, 'invoice.pdf');
      const rows = await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound', visibility: 'public' }).orderBy('created_at');
      assert.deepEqual(rows.map((r) => r.status), ['sent', 'sent']);
      assert.deepEqual(rows.map((r) => (r.attachments as any[]).map((a) => a.type)), [['photo'], ['document']]);
      assert.equal((rows[1].attachments as any[])[0].file_name, 'invoice.pdf');
    });

    it("mirrors an agent's edits to the customer's copy (text and caption)", async () => {
      const o = await openTicket('Edit me');
      const alex = newAgent('Alex');
      const text = await say(alex, o, 'Try restarting');
      const photo = await say(alex, o, { photo: true, caption: 'Like this' });
      const copyOf = (src: Message) => {
        const c = h.fake.callsTo('copyMessage').find((x) => ok(x) && Number(x.params.message_id) === src.message_id && Number(x.params.from_chat_id) === h.group.id);
        assert.ok(c);
        return Number(c.response.result.message_id);
      };
      const textCopy = copyOf(text);
      const photoCopy = copyOf(photo);

      h.fake.memberEdits(h.group, alex, text.message_id, 'Try restarting the router');
      await settle();
      assert.equal(h.fake.message(o.user.id, textCopy, { botId: h.bot.id })?.text, 'Try restarting the router');
      const e = h.fake.callsTo('editMessageText').find((c) => ok(c) && Number(c.params.chat_id) === o.user.id);
      assert.equal(Number(e?.params.message_id), textCopy);

      h.fake.memberEdits(h.group, alex, photo.message_id, 'Like this, top left');
      await settle();
      assert.equal(h.fake.message(o.user.id, photoCopy, { botId: h.bot.id })?.caption, 'Like this, top left');
      assert.ok(h.fake.callsTo('editMessageCaption').some((c) => ok(c) && Number(c.params.chat_id) === o.user.id && Number(c.params.message_id) === photoCopy));

      const rows = await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound', visibility: 'public' }).orderBy('created_at');
      assert.deepEqual(rows.map((r) => r.text), ['Try restarting the router', 'Like this, top left']);
      assert.equal(customerMessages(o.user).filter((x) => x.from?.id === h.bot.id && /Try restarting/.test(x.text ?? '')).length, 1, 'edited in place, not sent again');
    });

    it('keeps internal notes (/note and //) internal: stored, never sent to the customer, no status change', async () => {
      const o = await openTicket('Notes stay here');
      const alex = newAgent('Alex');
      const before = callsIntoChat(o.user.id).length;
      const n1 = await say(alex, o, '/note customer sounds upset, be gentle');
      const n2 = await say(alex, o, '//check the logs first');
      assert.equal(callsIntoChat(o.user.id).length, before, 'no call at all to the customer chat');
      assert.ok(!h.fake.callsTo('copyMessage').some((c) => [n1.message_id, n2.message_id].includes(Number(c.params.message_id)) && Number(c.params.from_chat_id) === h.group.id));
      assertReactedOnly(o, n1);
      assertReactedOnly(o, n2);
      const notes = await h.db('messages').where({ ticket_id: o.ticketId, visibility: 'internal' }).orderBy('created_at');
      assert.deepEqual(notes.map((r) => r.text), ['customer sounds upset, be gentle', 'check the logs first']);
      const agent = await h.db('agents').where({ telegram_user_id: alex.id }).first();
      assert.deepEqual(notes.map((r) => [r.author_type, r.author_id]), [['agent', agent.id], ['agent', agent.id]]);
      assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, visibility: 'public', direction: 'outbound' }).first(), undefined);
      const t = await ticketJson(o.ticketId);
      assert.equal(t.status, 'open', 'a note does not put the ticket on the customer');
      assert.equal(t.first_response_at, null, 'a note is no response');
      const api = await h.api.get(`/v1/tickets/${o.ticketId}/messages`).set('Authorization', h.auth);
      assert.equal(api.status, 200);
      assert.deepEqual(api.body.items.filter((m: any) => m.visibility === 'internal').map((m: any) => m.text), ['customer sounds upset, be gentle', 'check the logs first']);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------------------

  describe('commands in a ticket topic', () => {
    it('/assign me, /assign @user and /unassign assign with a reaction; an unknown @user is refused with a short reply', async () => {
      const o = await openTicket('Assign me');
      const alex = newAgent('Alex', { lastName: 'Kim' });
      const bea = newAgent('Bea');
      await say(bea, o, '//hello, I am here'); // Bea becomes an agent
      const agentOf = async (u: FakeUser) => (await h.db('agents').where({ telegram_user_id: u.id }).first()).id;
      const customerCalls = callsIntoChat(o.user.id).length;

      // A 👍, and the one internal line every reassignment posts (the transfer note).
      const assertReactedWithNote = (cmd: Message, note: string) => {
        assert.equal(reactionsTo(cmd.message_id).length, 1, `one reaction on ${cmd.text}`);
        assert.deepEqual(botRepliesInTopic(o, cmd.message_id).map((m) => m.text), [note]);
      };

      const c1 = await say(alex, o, '/assign me');
      assertReactedWithNote(c1, `🔀 Reassigned from nobody to @${alex.username}`);
      assert.equal((await ticketJson(o.ticketId)).assignee_id, await agentOf(alex));
      assert.match((await cardOf(o)).text, new RegExp(`Assignee: Alex Kim \\(@${alex.username}\\)`));

      const c2 = await say(alex, o, `/assign @${bea.username!.toUpperCase()}`);
      assertReactedWithNote(c2, `🔀 Reassigned from @${alex.username} to @${bea.username}`);
      assert.equal((await ticketJson(o.ticketId)).assignee_id, await agentOf(bea));
      assert.match((await cardOf(o)).text, new RegExp(`Assignee: Bea \\(@${bea.username}\\)`));

      const c3 = await say(alex, o, '/assign @nobody_here_42');
      assertRepliedOnly(o, c3, /@nobody_here_42 is not an agent/);
      assert.equal((await ticketJson(o.ticketId)).assignee_id, await agentOf(bea), 'unchanged');

      const c4 = await say(alex, o, '/unassign');
      assertReactedWithNote(c4, `🔀 Reassigned from @${bea.username} to nobody`);
      assert.equal((await ticketJson(o.ticketId)).assignee_id, null);
      assert.match((await cardOf(o)).text, /Assignee: — nobody yet/);

      const c5 = await say(alex, o, '/assign');
      assertRepliedOnly(o, c5, /^Usage: \/assign/);
      assert.equal(callsIntoChat(o.user.id).length, customerCalls, 'the customer hears nothing of it');
    });

    it('/priority sets the priority; a bad value gets the usage', async () => {
      const o = await openTicket('Priority please');
      const alex = newAgent('Alex');
      const c1 = await say(alex, o, '/priority urgent');
      assertReactedOnly(o, c1);
      assert.equal((await ticketJson(o.ticketId)).priority, 'urgent');
      assert.match((await cardOf(o)).text, /Priority: urgent/);
      const c2 = await say(alex, o, '/priority banana');
      assertRepliedOnly(o, c2, /^Usage: \/priority low\|normal\|high\|urgent$/);
      assert.equal((await ticketJson(o.ticketId)).priority, 'urgent');
    });

    it('/status moves the ticket; a refused transition is answered with the reason', async () => {
      const o = await openTicket('Status moves');
      const alex = newAgent('Alex');
      const c1 = await say(alex, o, '/status in_progress');
      assertReactedOnly(o, c1);
      assert.equal((await ticketJson(o.ticketId)).status, 'in_progress');
      assert.match((await cardOf(o)).text, /Status: 🛠 in progress/);

      const c2 = await say(alex, o, '/status closed');
      assertRepliedOnly(o, c2, /resolve it first/);
      assert.equal((await ticketJson(o.ticketId)).status, 'in_progress', 'refused: unchanged');

      const c3 = await say(alex, o, '/status in_progress');
      assertRepliedOnly(o, c3, /already in_progress/);

      const c4 = await say(alex, o, '/status sleeping');
      assertRepliedOnly(o, c4, /^Usage: \/status /);
      assert.equal(h.fake.callsTo('closeForumTopic').filter((c) => Number(c.params.message_thread_id) === o.threadId).length, 0);
    });

    it('/resolve resolves and tells the customer; /close closes the ticket and its topic; /close before resolving is refused', async () => {
      const o = await openTicket('Close me');
      const alex = newAgent('Alex', { admin: true });

      const early = await say(alex, o, '/close');
      assertRepliedOnly(o, early, /resolve it first/);
      assert.equal((await ticketJson(o.ticketId)).status, 'open');
      assert.equal(topicOf(o).closed, false);

      const r = await say(alex, o, '/resolve');
      assertReactedOnly(o, r);
      let t = await ticketJson(o.ticketId);
      assert.equal(t.status, 'resolved');
      assert.ok(t.resolved_at);
      const notice = customerMessages(o.user).at(-1)!;
      assert.match(notice.text, new RegExp(`^Your ticket #${o.number} was resolved — reply here to reopen it`));
      assert.equal(buttons(notice).length, 5, 'with the 1–5 rating');

      const c = await say(alex, o, '/close');
      assertReactedOnly(o, c);
      t = await ticketJson(o.ticketId);
      assert.equal(t.status, 'closed');
      assert.ok(t.closed_at);
      const closes = h.fake.callsTo('closeForumTopic').filter((x) => ok(x) && Number(x.params.message_thread_id) === o.threadId);
      assert.equal(closes.length, 1);
      assert.equal(Number(closes[0].params.chat_id), h.group.id);
      const topic = topicOf(o);
      assert.equal(topic.closed, true);
      assert.equal(topic.name, `🔒 #${o.number} · Close me`);
      assert.equal((await ticketRow(o.ticketId)).topic_closed, true);
      const card = await cardOf(o);
      assert.match(card.text, /Status: 🔒 closed/);
      assert.deepEqual(buttons(card), [], 'a closed ticket’s card has no buttons');
    });

    it('a closed ticket’s topic stays closed when an admin still writes in it; the customer gets nothing', async () => {
      const o = await openTicket('Stay closed');
      const alex = newAgent('Alex', { admin: true }); // only admins can still write in a closed topic
      await say(alex, o, '/resolve');
      await say(alex, o, '/close');
      assert.equal(topicOf(o).closed, true);
      const customerCalls = callsIntoChat(o.user.id).length;
      const late = await say(alex, o, 'thanks, bye');
      const cmd = await say(alex, o, '/reopen');
      assert.equal(callsIntoChat(o.user.id).length, customerCalls, 'nothing reaches the customer');
      assert.equal((await ticketJson(o.ticketId)).status, 'closed', 'closed is final');
      const told = [late, cmd].map((m) => botRepliesInTopic(o, m.message_id).length + h.fake.callsTo('setMessageReaction').filter((c) => ok(c) && Number(c.params.message_id) === m.message_id).length);
      assert.ok(told.every((n) => n > 0), 'the agent is told each time (a reply or a reaction)');
      assert.equal(topicOf(o).closed, true, 'the topic of a closed ticket stays closed');
      assert.equal((await ticketRow(o.ticketId)).topic_closed, true);
    });

    it('/reopen brings a resolved ticket back to open', async () => {
      const o = await openTicket('Reopen me');
      const alex = newAgent('Alex');
      await say(alex, o, '/resolve');
      const c = await say(alex, o, '/reopen');
      assertReactedOnly(o, c);
      const t = await ticketJson(o.ticketId);
      assert.equal(t.status, 'open');
      assert.equal(t.reopened_count, 1);
      assert.equal(t.resolved_at, null);
      assert.equal(topicOf(o).name, `🆕 #${o.number} · Reopen me`);
      assert.match((await cardOf(o)).text, /Status: 🆕 open/);
      const again = await say(alex, o, '/reopen');
      assertRepliedOnly(o, again, /already open/);
    });

    it('/tag +a -b adds and removes tags', async () => {
      const o = await openTicket('Tag me', { tags: ['trial'] });
      const alex = newAgent('Alex');
      const c1 = await say(alex, o, '/tag +vip -trial +billing');
      assertReactedOnly(o, c1);
      let t = await ticketJson(o.ticketId);
      assert.deepEqual([...t.tags].sort(), ['billing', 'vip']);
      assert.match((await cardOf(o)).text, /Tags: #\w+ #\w+/);
      assert.doesNotMatch((await cardOf(o)).text, /#trial/);
      const c2 = await say(alex, o, '/tag -vip');
      assertReactedOnly(o, c2);
      t = await ticketJson(o.ticketId);
      assert.deepEqual(t.tags, ['billing']);
      const c3 = await say(alex, o, '/tag');
      assertRepliedOnly(o, c3, /^Usage: \/tag/);
    });

    it('/ticket posts the card again at the bottom of the topic, pinned, and later changes edit that one', async () => {
      const o = await openTicket('Repost the card');
      const alex = newAgent('Alex');
      await say(alex, o, 'First answer');
      const old = await cardOf(o);
      const cmd = await say(alex, o, '/ticket');
      const posted = botRepliesInTopic(o, cmd.message_id);
      assert.equal(posted.length, 1, 'one new message: the card');
      const card = posted[0];
      assert.equal(card.text, old.text);
      assert.deepEqual(buttons(card).map((b) => b.text), buttons(old).map((b) => b.text));
      const topic = topicOf(o);
      assert.ok(topic.pinned.includes(card.message_id), 'the new card is pinned');
      assert.equal(topic.messages.at(-1)!.pinned_message?.message_id, card.message_id, 'the pin is the last thing in the topic');
      const row = await ticketRow(o.ticketId);
      assert.equal(Number(row.topic_card_message_id), card.message_id);
      assert.equal(row.topic_card_pinned, true);

      await say(alex, o, '/priority high');
      assert.match(h.fake.message(h.group.id, card.message_id)!.text, /Priority: high/, 'the reposted card is the one kept current');
      assert.doesNotMatch(h.fake.message(h.group.id, old.message_id)!.text, /Priority: high/);
    });

    it('/help, /canned and unknown commands get a short reply; the customer hears nothing', async () => {
      const o = await openTicket('Help me help you');
      const alex = newAgent('Alex');
      const before = callsIntoChat(o.user.id).length;
      const help = await say(alex, o, '/help');
      const reply = assertRepliedOnly(o, help, /\/note/, 1000);
      for (const cmd of ['/assign', '/transfer', '/team', '/priority', '/status', '/resolve', '/close', '/reopen', '/tag', '/canned', '/ticket', '/stats', '/queue']) assert.ok(reply.text.includes(cmd), `help mentions ${cmd}`);
      const send = h.fake.callsTo('sendMessage').find((c) => ok(c) && c.response.result.message_id === reply.message_id)!;
      assert.equal(Number(send.params.message_thread_id), o.threadId, 'answered inside the topic');

      // No canned responses in this workspace: the reply says how they are made.
      const canned = await say(alex, o, '/canned refund');
      assertRepliedOnly(o, canned, /no canned responses for this ticket yet.*POST \/v1\/canned-responses/);
      const unknown = await say(alex, o, '/frobnicate now');
      assertRepliedOnly(o, unknown, /Unknown command \/frobnicate/);
      const addressed = await say(alex, o, `/help@${h.bot.username}`);
      assertRepliedOnly(o, addressed, /\/note/, 1000);
      assert.equal(callsIntoChat(o.user.id).length, before);
      assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound' }).first(), undefined, 'commands are not messages');
    });
  });

  // ---------------------------------------------------------------------------------------
  // Agents, buttons, General, what is ignored
  // ---------------------------------------------------------------------------------------

  describe('agents and the card buttons', () => {
    it('registers a group member as an agent on first use and keeps name and username current', async () => {
      const o = await openTicket('Who are you');
      const dana = newAgent('Dana', { lastName: 'Scully' });
      assert.equal(await h.db('agents').where({ telegram_user_id: dana.id }).first(), undefined);
      await say(dana, o, '//first look');
      let rows = await h.db('agents').where({ telegram_user_id: dana.id });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].name, 'Dana Scully');
      assert.equal(rows[0].username, dana.username);
      assert.equal(rows[0].role, 'agent');
      assert.equal(rows[0].active, true);

      dana.firstName = 'Dana K.';
      dana.username = `dana_renamed${++seq}`;
      await say(dana, o, '//renamed myself');
      rows = await h.db('agents').where({ telegram_user_id: dana.id });
      assert.equal(rows.length, 1, 'still one agent');
      assert.equal(rows[0].name, 'Dana K. Scully');
      assert.equal(rows[0].username, dana.username);
    });

    it('Take assigns the presser, Resolve resolves, Priority offers the choices and sets one; each press is answered', async () => {
      const o = await openTicket('Buttons');
      const card = await cardOf(o);
      const byText = (m: Message, t: string) => buttons(m).find((b) => b.text === t)!.callback_data;
      const fox = newAgent('Fox', { lastName: 'Mulder' }); // never wrote: becomes an agent by pressing

      const q1 = h.fake.userPresses(h.bot, fox, { chatId: h.group.id, messageId: card.message_id }, byText(card, '🙋 Take'));
      await settle();
      assert.equal(h.fake.callbackAnswers.get(q1)?.text, `#${o.number} is yours now`);
      const agent = await h.db('agents').where({ telegram_user_id: fox.id }).first();
      assert.ok(agent, 'the presser is registered');
      assert.equal(agent.name, 'Fox Mulder');
      assert.equal((await ticketJson(o.ticketId)).assignee_id, agent.id);
      assert.match((await cardOf(o)).text, /Assignee: Fox Mulder/);

      const q2 = h.fake.userPresses(h.bot, fox, { chatId: h.group.id, messageId: card.message_id }, byText(card, '⚡ Priority'));
      await settle();
      assert.ok(h.fake.callbackAnswers.has(q2), 'the press is answered');
      const menus = botRepliesInTopic(o, card.message_id).filter((m) => m.text === `Priority for #${o.number}:`);
      assert.equal(menus.length, 1, 'the choices are shown in the topic');
      assert.deepEqual(buttons(menus[0]).map((b) => b.text), ['low', 'normal', 'high', 'urgent']);
      const q3 = h.fake.userPresses(h.bot, fox, { chatId: h.group.id, messageId: menus[0].message_id }, byText(menus[0], 'urgent'));
      await settle();
      assert.equal(h.fake.callbackAnswers.get(q3)?.text, 'Priority: urgent');
      assert.equal((await ticketJson(o.ticketId)).priority, 'urgent');
      assert.match((await cardOf(o)).text, /Priority: urgent/);

      const q4 = h.fake.userPresses(h.bot, fox, { chatId: h.group.id, messageId: card.message_id }, byText(card, '✅ Resolve'));
      await settle();
      assert.equal(h.fake.callbackAnswers.get(q4)?.text, `#${o.number} resolved`);
      assert.equal((await ticketJson(o.ticketId)).status, 'resolved');
      assert.match(customerMessages(o.user).at(-1)!.text, /was resolved/);

      // The old card still shows Resolve to someone who has not seen the edit: a second press is refused with a toast.
      const q5 = h.fake.userPresses(h.bot, fox, { chatId: h.group.id, messageId: card.message_id }, `rs:${o.ticketId}`);
      await settle();
      assert.match(h.fake.callbackAnswers.get(q5)?.text ?? '', /already resolved/);
      assert.equal(h.fake.callbackAnswers.get(q5)?.show_alert, true);
      for (const q of [q1, q2, q3, q4, q5]) {
        assert.equal(h.fake.callsTo('answerCallbackQuery').filter((c) => c.params.callback_query_id === q).length, 1, 'each press answered once');
      }
    });
  });

  describe('the General topic and what is ignored', () => {
    it('/stats in General is answered in General, without message_thread_id', async () => {
      const alex = newAgent('Alex');
      const cmd = h.fake.memberSends(h.group, alex, '/stats');
      await settle();
      const replies = h.fake.messagesIn(h.group.id, { threadId: null }).filter((m) => m.message_id > cmd.message_id && m.from?.id === h.bot.id);
      assert.equal(replies.length, 1);
      // The daily digest's form (one formatter), over today so far in the workspace's zone.
      assert.match(replies[0].text, /^📊 Today so far, \w{3} \d{1,2} \w{3} \d{4} \(UTC\)\nTickets: \d+ new · \d+ resolved\nFirst response: p50 \S+ · p90 \S+ \(\d+ answered\)\n/);
      const [{ n }] = await h.db('tickets').count({ n: '*' });
      assert.match(replies[0].text, new RegExp(`\\nTickets: ${n} new`), 'counts today’s tickets');
      assert.match(replies[0].text, /\nSLA: (no breaches|\d+ breached) · first response .+ · next response .+ · resolution .+\nBacklog now: \d+ open \(\d+ unassigned\) · at risk \d+ · breached and open \d+\nMost overdue: /);
      const { ws } = (await h.db('accounts').where({ id: h.accountId }).select('workspace_id as ws'))[0];
      assert.equal(replies[0].text, await h.services.digest.todayText(h.db, ws, new Date()), 'the same text the digest formatter makes for today');
      const send = h.fake.callsTo('sendMessage').find((c) => ok(c) && c.response.result.message_id === replies[0].message_id)!;
      assert.equal(send.params.message_thread_id, undefined);
      assert.equal(replies[0].is_topic_message, undefined);
    });

    it('a reply in General carries message_thread_id but is not a topic message: /stats there is answered in General', async () => {
      const alex = newAgent('Alex');
      const bea = newAgent('Bea');
      const root = h.fake.memberSends(h.group, alex, 'Morning team');
      const reply = h.fake.memberSends(h.group, bea, '/stats', { replyTo: root.message_id });
      assert.equal(reply.message_thread_id, root.message_id, 'the trap: a thread id in General');
      assert.equal(reply.is_topic_message, undefined);
      await settle();
      const answers = h.fake.messagesIn(h.group.id, { threadId: null }).filter((m) => m.message_id > reply.message_id && m.from?.id === h.bot.id);
      assert.equal(answers.length, 1, 'answered');
      assert.match(answers[0].text, /^📊 Today/);

      const cmd = h.fake.memberSends(h.group, bea, '/resolve', { replyTo: root.message_id });
      await settle();
      const told = h.fake.messagesIn(h.group.id, { threadId: null }).filter((m) => m.message_id > cmd.message_id && m.from?.id === h.bot.id);
      assert.equal(told.length, 1);
      assert.match(told[0].text, /inside a ticket/);
    });

    it('a reply in General whose thread id matches a ticket topic is not relayed to that ticket’s customer', async () => {
      const o = await openTicket('Not from General');
      const alex = newAgent('Alex');
      const root = h.fake.memberSends(h.group, alex, 'Anyone free?');
      await settle();
      // Point the ticket at the id General replies will carry (a collision the router must not trust).
      await h.db('tickets').where({ id: o.ticketId }).update({ topic_thread_id: root.message_id });
      try {
        const before = callsIntoChat(o.user.id).length;
        const reply = h.fake.memberSends(h.group, alex, 'I am', { replyTo: root.message_id });
        assert.equal(reply.message_thread_id, root.message_id);
        await settle();
        assert.equal(callsIntoChat(o.user.id).length, before, 'nothing went to the customer');
        assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound' }).first(), undefined);
        assert.equal((await ticketJson(o.ticketId)).status, 'open');
      } finally {
        await h.db('tickets').where({ id: o.ticketId }).update({ topic_thread_id: o.threadId });
      }
    });

    it('ignores messages from bots in a ticket topic', async () => {
      const o = await openTicket('Bots talk too');
      const other = h.fake.addBot({ username: `other${++seq}_bot`, firstName: 'Other' });
      const updateId = 50_000_000 + seq;
      const messageId = 900_000 + seq;
      const update = {
        update_id: updateId,
        message: {
          message_id: messageId, message_thread_id: o.threadId, is_topic_message: true,
          from: { id: other.id, is_bot: true, first_name: 'Other', username: other.username },
          chat: { id: h.group.id, type: 'supergroup', title: h.group.title, is_forum: true },
          date: Math.floor(Date.now() / 1000), text: '/resolve',
        },
      };
      const textUpdate = { update_id: updateId + 1, message: { ...update.message, message_id: messageId + 1, text: 'Automated hello' } };
      assert.equal(await updateInbox.store(h.db, h.accountId, [update, textUpdate], new Date()), 2);
      h.telegram.updates.wake();
      await settle();
      const rows = await h.db('telegram_updates').where({ account_id: h.accountId }).whereIn('update_id', [updateId, updateId + 1]);
      assert.deepEqual(rows.map((r) => [r.processed_at !== null, r.last_error]), [[true, null], [true, null]], 'handled, without error');
      assert.equal(await h.db('agents').where({ telegram_user_id: other.id }).first(), undefined, 'a bot is not an agent');
      assert.equal((await ticketJson(o.ticketId)).status, 'open', 'its /resolve did nothing');
      assert.ok(!h.fake.calls.some((c) => [messageId, messageId + 1].includes(Number(c.params.message_id))), 'no copy, no reaction, nothing');
      assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound' }).first(), undefined);
    });

    it('ignores a topic the bot did not create (no ticket)', async () => {
      const other = h.fake.addBot({ username: `topics${++seq}_bot`, firstName: 'Topics' });
      h.fake.addBotToGroup(other, h.group);
      const res = await fetch(`${h.fake.url}/bot${other.token}/createForumTopic`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ chat_id: h.group.id, name: 'Random chat' }),
      });
      const body = (await res.json()) as any;
      assert.equal(body.ok, true);
      const threadId: number = body.result.message_thread_id;
      await settle();
      const gail = newAgent('Gail');
      const callsBefore = h.fake.calls.length;
      const texts = [h.fake.memberSends(h.group, gail, 'hello', { threadId }), h.fake.memberSends(h.group, gail, '/resolve', { threadId }), h.fake.memberSends(h.group, gail, '/help', { threadId })];
      await settle();
      const made = h.fake.calls.slice(callsBefore).filter((c) => c.method !== 'getUpdates');
      assert.deepEqual(made.map((c) => c.method), [], 'the bot made no call at all');
      assert.deepEqual(h.fake.topic(h.group.id, threadId)!.messages.filter((m) => m.from?.id === h.bot.id), []);
      assert.equal(await h.db('agents').where({ telegram_user_id: gail.id }).first(), undefined, 'nobody is registered by it');
      assert.equal(await h.db('tickets').where({ topic_thread_id: threadId }).first(), undefined);
      const rows = await h.db('telegram_updates').where({ account_id: h.accountId }).whereRaw(`(payload->'message'->>'message_id')::bigint = ANY(?)`, [texts.map((m) => m.message_id)]);
      assert.equal(rows.length, 3, 'the updates arrived');
      assert.ok(rows.every((r) => r.processed_at !== null && r.last_error === null), 'and were handled without error');
    });
  });

  // Last, on a harness of its own: if coalescing jams the send queue, nothing else is affected.
  describe('coalesced card edits when a call fails', () => {
    const own = useTelegramHarness();
    let outer: TelegramHarness;
    before(() => {
      outer = h;
      h = own.h;
    });
    after(() => {
      h = outer;
    });

    it('a card edit that fails while a newer change already waits is retried, and the queue keeps moving', async () => {
      const x = await openTicket('Edit fails in flight');
      const y = await openTicket('Neighbour topic');
      const alex = newAgent('Alex');
      const card = await cardOf(x);
      const editsOfCard = () => h.fake.callsTo('editMessageText').filter((c) => Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === card.message_id);
      // The first card edit is slow and then fails (a 502 from a proxy): it is in flight for a while.
      h.fake.slow({ method: 'editMessageText' }, 4000);
      h.fake.failNext({ method: 'editMessageText', chatId: h.group.id }, { code: 502, description: 'Bad Gateway' });
      try {
        let r = await api.patch(`/v1/tickets/${x.ticketId}`, { priority: 'high' });
        assert.equal(r.status, 200);
        await until(() => editsOfCard().length === 1, 'the first card edit to be on its way');
        // Meanwhile Telegram asks the bot to slow down in the group (a reply in another topic gets a 429).
        h.fake.failNext({ method: 'sendMessage', chatId: h.group.id }, { code: 429, description: 'Too Many Requests: retry after 6', retryAfter: 6 });
        h.fake.memberSends(h.group, alex, '/help', { threadId: y.threadId });
        await until(() => h.fake.rateLimited.some((c) => c.method === 'sendMessage' && Number(c.params.chat_id) === h.group.id), 'the 429 in the group');
        // A newer change waits behind the pause, next to the edit still in flight.
        r = await api.patch(`/v1/tickets/${x.ticketId}`, { priority: 'urgent' });
        assert.equal(r.status, 200);
        const rows = await h.db('telegram_sends').where({ ticket_id: x.ticketId, op: 'edit_card' }).orderBy('id');
        assert.deepEqual(rows.map((row) => row.status), ['sending', 'queued'], 'one edit in flight, one waiting');
        await until(() => editsOfCard()[0].status === 502, 'the first edit to fail');
      } finally {
        h.fake.slow({ method: 'editMessageText' }, 0);
      }
      let settled: unknown = null;
      await settle().catch((err) => {
        settled = err;
      });
      const violations = h.logs.filter((l) => /telegram_sends_coalesced/.test(l)).map((l) => JSON.parse(l).msg);
      assert.deepEqual(violations, [], 'recording the failed edit must not hit the coalescing index');
      const stuck = await h.db('telegram_sends').whereIn('status', ['queued', 'sending']);
      assert.deepEqual(stuck.map((row) => `${row.op} ${row.status}`), [], 'nothing is left in the queue');
      assert.equal(settled, null);
      const shown = await cardOf(x);
      assert.match(shown.text, /Priority: urgent/, 'the card ends showing the final state');
      assert.equal((await ticketJson(x.ticketId)).priority, 'urgent');
      // The neighbour's reply went out after the pause.
      assert.ok(h.fake.messagesIn(h.group.id, { threadId: y.threadId }).some((m) => m.from?.id === h.bot.id && /\/note/.test(m.text ?? '')));
    });
  });
});
