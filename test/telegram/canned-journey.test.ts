/**
 * Canned responses in Telegram (issue 13, SPEC §4.5 and §3.2): `/canned <shortcut>` sends one
 * like an agent reply, `/canned` lists the most used as buttons, a tap edits the list into a
 * preview whose Send / Cancel settle it once. The real app and workers against the fake Bot
 * API; responses are made with POST /v1/canned-responses. Every test checks what the customer
 * got (the fake's private chat), what the topic shows, and what the database / API now says.
 */
import assert from 'node:assert/strict';
import type { FakeUser, Message } from '../helpers/fake-bot-api.js';
import { makeTeam } from '../helpers/factories.js';
import { useTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';

interface Opened {
  user: FakeUser;
  contactId: string;
  ticketId: string;
  number: number;
  threadId: number;
  /** The last message in the customer's chat once the ticket was open (the intake form's). */
  seenId: number;
}

describe('Telegram: canned responses in a ticket topic (issue 13)', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  let workspaceName: string;
  before(async () => {
    h = harness.h;
    workspaceName = (await h.db('workspaces').where({ id: 'ws_default' }).first()).name;
  });

  let seq = 0;

  /** Every update handled and nothing waiting to be sent (the last update the fake produced included). */
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

  const api = {
    get: (path: string) => h.api.get(path).set('Authorization', h.auth),
    post: (path: string, body: object) => h.api.post(path).set('Authorization', h.auth).send(body),
  };

  /** A group member (an agent from their first action on), with a username and a last name. */
  function newAgent(firstName: string): FakeUser {
    const u = h.fake.addUser({ firstName, lastName: 'Lee', username: `${firstName.toLowerCase()}_${++seq}` });
    h.fake.addMember(h.group, u);
    return u;
  }

  /** A customer who has written to the bot (contact and private chat exist), with no form pending. */
  async function newCustomer(firstName = 'Sarah'): Promise<{ user: FakeUser; contactId: string }> {
    const user = h.fake.addUser({ firstName, lastName: 'Miller', username: `${firstName.toLowerCase()}_c${++seq}` });
    h.fake.userSends(h.bot, user, '/start');
    h.fake.userSends(h.bot, user, '/cancel');
    await settle();
    const contact = await h.db('contacts').where({ telegram_user_id: user.id }).first();
    assert.ok(contact, 'writing to the bot creates the contact');
    return { user, contactId: contact.id };
  }

  async function openTicket(subject: string, o: { teamId?: string; firstName?: string } = {}): Promise<Opened> {
    const { user, contactId } = await newCustomer(o.firstName);
    const r = await api.post('/v1/tickets', { contact_id: contactId, subject, description: 'Please help', ...(o.teamId ? { team_id: o.teamId } : {}) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await settle();
    const t = await ticketJson(r.body.id);
    assert.ok(t.topic, 'the ticket has its topic');
    const seenId = h.fake.messagesIn(user.id, { botId: h.bot.id }).at(-1)?.message_id ?? 0;
    return { user, contactId, ticketId: t.id, number: t.number, threadId: t.topic.message_thread_id, seenId };
  }

  async function ticketJson(id: string): Promise<any> {
    const r = await api.get(`/v1/tickets/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  }

  async function canned(shortcut: string, body: string, o: { title?: string; teamId?: string; usage?: number } = {}): Promise<{ id: string; shortcut: string }> {
    const r = await api.post('/v1/canned-responses', { shortcut, title: o.title ?? `Title of ${shortcut}`, body, ...(o.teamId ? { team_id: o.teamId } : {}) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    if (o.usage !== undefined) await h.db('canned_responses').where({ id: r.body.id }).update({ usage_count: o.usage });
    return r.body;
  }

  const usageOf = async (id: string): Promise<number> => {
    const r = await api.get(`/v1/canned-responses/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.usage_count;
  };

  /** An agent writes in the ticket's topic; resolves once everything it caused is done. */
  async function say(agent: FakeUser, o: Opened, text: string): Promise<Message> {
    const m = h.fake.memberSends(h.group, agent, text, { threadId: o.threadId });
    await settle();
    return m;
  }

  /** Presses a button of a group message; resolves once it is handled. Returns the callback query id. */
  async function press(agent: FakeUser, m: Message, data: string): Promise<string> {
    const id = h.fake.userPresses(h.bot, agent, { chatId: h.group.id, messageId: m.message_id }, data);
    await settle();
    return id;
  }

  /** New text messages the bot posted in the topic after `afterId` (not edits). */
  const botPostsInTopic = (o: Opened, afterId: number) =>
    h.fake.messagesIn(h.group.id, { threadId: o.threadId }).filter((m) => m.message_id > afterId && m.from?.id === h.bot.id && typeof m.text === 'string');
  /** What the bot wrote to the customer since the ticket was opened, oldest first. */
  const customerTexts = (o: Opened) =>
    h.fake.messagesIn(o.user.id, { botId: h.bot.id }).filter((m) => m.message_id > o.seenId && m.from?.is_bot).map((m) => m.text as string);
  const buttons = (m: Message): { text: string; callback_data: string }[] => (m.reply_markup?.inline_keyboard ?? []).flat();
  const reactionsTo = (messageId: number) =>
    h.fake.callsTo('setMessageReaction').filter((c) => c.status === 200 && Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === messageId);
  const now = (m: Message) => h.fake.message(h.group.id, m.message_id);
  const answerOf = (queryId: string) => h.fake.callbackAnswers.get(queryId);

  /** `/canned` in the topic: the one list message it posts. */
  async function listIn(agent: FakeUser, o: Opened): Promise<Message> {
    const cmd = await say(agent, o, '/canned');
    const posted = botPostsInTopic(o, cmd.message_id);
    assert.equal(posted.length, 1, `one list message: ${JSON.stringify(posted.map((m) => m.text))}`);
    return posted[0];
  }

  /** `/canned`, then a tap on the response's button: the list message, now the preview. */
  async function previewOf(agent: FakeUser, o: Opened, shortcut: string): Promise<Message> {
    const list = await listIn(agent, o);
    const button = buttons(list).find((b) => b.text.startsWith(`/${shortcut} — `));
    assert.ok(button, `the list offers /${shortcut}: ${JSON.stringify(buttons(list).map((b) => b.text))}`);
    const q = await press(agent, list, button.callback_data);
    assert.ok(answerOf(q), 'the tap is answered');
    const preview = now(list)!;
    assert.match(preview.text, new RegExp(`^📝 /${shortcut} for #${o.number} — preview for @`));
    return preview;
  }

  const sendButton = (preview: Message) => buttons(preview).find((b) => b.text.includes('Send'))!.callback_data;
  const cancelButton = (preview: Message) => buttons(preview).find((b) => b.text.includes('Cancel'))!.callback_data;
  /** Usage that keeps a response in /canned's 8 whatever the other tests made. */
  const TOP = 10_000_000;
  const previewRows = (o: Opened) => h.db('telegram_canned_previews').where({ ticket_id: o.ticketId }).orderBy('id');

  // ---------------------------------------------------------------------------------------

  it('with no canned responses at all, /canned and /canned <shortcut> say so in one line, and how they are made', async () => {
    const o = await openTicket('Nothing canned yet');
    const ann = newAgent('Ann');
    for (const text of ['/canned', '/canned refund']) {
      const cmd = await say(ann, o, text);
      const replies = botPostsInTopic(o, cmd.message_id);
      assert.deepEqual(replies.map((m) => m.text), ['There are no canned responses for this ticket yet: they are created with the API (POST /v1/canned-responses).'], text);
      assert.equal(buttons(replies[0]).length, 0);
      assert.equal(reactionsTo(cmd.message_id).length, 0);
    }
    assert.deepEqual(customerTexts(o), []);
  });

  it('/canned <shortcut> renders every variable for the ticket and the agent, the customer gets exactly that, and the topic gets one record', async () => {
    const refund = await canned('refund', 'Hi {{customer_first_name}}, about #{{ticket_number}} ({{ticket_subject}}): your refund is on its way. {{agent_first_name}} ({{agent_name}}), {{workspace_name}}');
    const o = await openTicket('Refund please', { firstName: 'Nora' });
    assert.equal((await ticketJson(o.ticketId)).status, 'open');
    const ann = newAgent('Ann');
    const cmd = await say(ann, o, '/canned refund');

    const expected = `Hi Nora, about #${o.number} (Refund please): your refund is on its way. Ann (Ann Lee), ${workspaceName}`;
    assert.deepEqual(customerTexts(o), [expected], 'the customer gets the rendered text, once');
    const posted = botPostsInTopic(o, cmd.message_id);
    assert.deepEqual(posted.map((m) => m.text), [`✅ @${ann.username} sent /refund:\n\n${expected}`], 'one record in the topic');
    assert.equal(reactionsTo(cmd.message_id).length, 0, 'the record is the answer: no reaction too');

    const t = await ticketJson(o.ticketId);
    assert.equal(t.status, 'waiting_on_customer', 'like an agent reply');
    assert.ok(t.first_response_at, 'the first response is recorded');
    assert.equal(await usageOf(refund.id), 1);
    const agent = await h.db('agents').where({ telegram_user_id: ann.id }).first();
    const out = await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound' });
    assert.equal(out.length, 1);
    assert.equal(out[0].text, expected);
    assert.equal(out[0].status, 'sent');
    assert.equal(out[0].author_id, agent.id, 'sent as the agent who asked');

    // Any case, a leading slash: the same response.
    const again = await say(ann, o, '/canned /REFUND');
    assert.equal(customerTexts(o).length, 2);
    assert.equal(botPostsInTopic(o, again.message_id).length, 1);
    assert.equal(await usageOf(refund.id), 2);
  });

  it('an unknown shortcut gets the closest ones (or how to list them); nothing reaches the customer', async () => {
    await canned('refunds', 'Refunds take 5 days.'); // next to /refund from the test above
    const o = await openTicket('Where is my money');
    const ann = newAgent('Ann');
    const typo = await say(ann, o, '/canned refnd');
    assert.deepEqual(botPostsInTopic(o, typo.message_id).map((m) => m.text), ['No canned response /refnd. Did you mean /refund, /refunds?']);
    const far = await say(ann, o, '/canned zzzzzzzzzz');
    assert.deepEqual(botPostsInTopic(o, far.message_id).map((m) => m.text), ['No canned response /zzzzzzzzzz. /canned lists them.']);
    assert.deepEqual(customerTexts(o), []);
    assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound' }).first(), undefined);
    assert.equal((await ticketJson(o.ticketId)).status, 'open');
  });

  it('a response shared with another team is refused with one line; the team\'s own works on its tickets', async () => {
    const billing = await makeTeam(h.db, { name: 'Billing' });
    const sales = await makeTeam(h.db, { name: 'Sales' });
    const vip = await canned('vip-offer', 'A special offer for you.', { teamId: sales.id });
    const invoice = await canned('invoice', 'Your invoice is attached.', { teamId: billing.id });
    const o = await openTicket('Invoice missing', { teamId: billing.id });
    const ann = newAgent('Ann');

    const refused = await say(ann, o, '/canned vip-offer');
    assert.deepEqual(botPostsInTopic(o, refused.message_id).map((m) => m.text), ['⚠️ /vip-offer is shared with the team Sales only, and this ticket is not in it.']);
    assert.deepEqual(customerTexts(o), []);
    assert.equal(await usageOf(vip.id), 0);

    await say(ann, o, '/canned invoice');
    assert.deepEqual(customerTexts(o), ['Your invoice is attached.']);
    assert.equal(await usageOf(invoice.id), 1);

    // A ticket of no team cannot use the team's either.
    const other = await openTicket('No team here');
    const cmd = await say(ann, other, '/canned invoice');
    assert.match(botPostsInTopic(other, cmd.message_id)[0].text, /^⚠️ \/invoice is shared with the team Billing only/);
    assert.deepEqual(customerTexts(other), []);
  });

  it('/canned alone posts one message: the 8 most used of the ticket\'s team and workspace-wide as buttons, in usage order', async () => {
    const support = await makeTeam(h.db, { name: 'Support' });
    const other = await makeTeam(h.db, { name: 'Other' });
    // Usage far above the other tests' responses, so exactly these compete for the 8 places.
    const longTitle = 'A very long title that goes on and on well past what fits on one button';
    const made = {
      otherTeam: await canned('l-other', 'x', { teamId: other.id, usage: 1_000_000 }),
      t1: await canned('l-team1', 'x', { teamId: support.id, usage: 900_000, title: longTitle }),
      w1: await canned('l-ws1', 'x', { usage: 800_000 }),
      t2: await canned('l-team2', 'x', { teamId: support.id, usage: 700_000 }),
      w2: await canned('l-ws2', 'x', { usage: 600_000 }),
      w3: await canned('l-ws3', 'x', { usage: 500_000, title: 'For {{customer_first_name}}' }),
      t3: await canned('l-team3', 'x', { teamId: support.id, usage: 400_000 }),
      w4: await canned('l-ws4', 'x', { usage: 300_000 }),
      t4: await canned('l-team4', 'x', { teamId: support.id, usage: 200_000 }),
      ninth: await canned('l-ws5', 'x', { usage: 100_000 }),
    };
    const o = await openTicket('Show me the list', { teamId: support.id, firstName: 'Olga' });
    const ann = newAgent('Ann');
    const list = await listIn(ann, o);

    assert.match(list.text, new RegExp(`#${o.number}`));
    assert.ok(list.reply_markup.inline_keyboard.every((row: unknown[]) => row.length === 1), 'one button a row');
    const listed = buttons(list);
    const order = [made.t1, made.w1, made.t2, made.w2, made.w3, made.t3, made.w4, made.t4];
    assert.deepEqual(listed.map((b) => b.callback_data), order.map((c) => `cp:${o.ticketId}:${c.id}`));
    for (const b of listed) {
      assert.ok(Buffer.byteLength(b.callback_data) <= 64, `callback data fits Telegram's 64 bytes: ${b.callback_data}`);
      assert.ok(b.text.length <= 60, `label fits: ${b.text}`);
    }
    assert.equal(listed[0].text, `/l-team1 — ${longTitle}`.slice(0, 59) + '…');
    assert.equal(listed[1].text, '/l-ws1 — Title of l-ws1');
    assert.equal(listed[4].text, '/l-ws3 — For Olga', 'the title is rendered for the ticket');
    assert.ok(!listed.some((b) => b.callback_data.endsWith(made.ninth.id)), 'the 9th is not listed');
    assert.ok(!listed.some((b) => b.callback_data.endsWith(made.otherTeam.id)), 'another team\'s is not listed');
    assert.deepEqual(customerTexts(o), []);
  });

  it('a tap turns the list into a preview with Send and Cancel (nothing sent yet); Send delivers it once and the preview becomes the record', async () => {
    const greet = await canned('greet', 'Hello {{customer_first_name}}, {{agent_first_name}} here. How can I help with #{{ticket_number}}?', { usage: TOP });
    const o = await openTicket('Say hello', { firstName: 'Pia' });
    const ann = newAgent('Ann');
    const list = await listIn(ann, o);
    const before = h.fake.callsTo('sendMessage').length;
    const q = await press(ann, list, buttons(list).find((b) => b.text.startsWith('/greet — '))!.callback_data);
    assert.equal(answerOf(q)?.show_alert ?? false, false, 'the tap is answered without an alert');

    const text = `Hello Pia, Ann here. How can I help with #${o.number}?`;
    const preview = now(list)!;
    assert.equal(preview.text, `📝 /greet for #${o.number} — preview for @${ann.username}:\n\n${text}`);
    const rows = await previewRows(o);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].state, 'pending');
    assert.deepEqual(buttons(preview), [
      { text: '✅ Send', callback_data: `cs:${o.ticketId}:${rows[0].id}` },
      { text: '✖️ Cancel', callback_data: `cc:${o.ticketId}:${rows[0].id}` },
    ]);
    assert.equal(h.fake.callsTo('sendMessage').length, before, 'the list was edited, nothing was posted');
    assert.equal(botPostsInTopic(o, list.message_id).length, 0);
    assert.deepEqual(customerTexts(o), [], 'nothing reaches the customer before Send');
    assert.equal(await usageOf(greet.id), TOP);

    const sent = await press(ann, preview, sendButton(preview));
    assert.equal(answerOf(sent)?.text, 'Sent');
    assert.deepEqual(customerTexts(o), [text]);
    const record = now(list)!;
    assert.equal(record.text, `✅ @${ann.username} sent /greet:\n\n${text}`);
    assert.deepEqual(buttons(record), [], 'the record has no buttons');
    assert.equal(botPostsInTopic(o, list.message_id).length, 0, 'still one message in the topic');
    assert.equal((await previewRows(o))[0].state, 'sent');
    assert.equal(await usageOf(greet.id), TOP + 1);
    const t = await ticketJson(o.ticketId);
    assert.equal(t.status, 'waiting_on_customer');
    assert.ok(t.first_response_at);
  });

  it('Send pressed twice before the bot handles either, and again after: the customer gets it once, the use counts once', async () => {
    const thanks = await canned('thanks', 'Thanks for waiting, {{customer_first_name}}!', { usage: TOP });
    const o = await openTicket('Double tap', { firstName: 'Quinn' });
    const ann = newAgent('Ann');
    const preview = await previewOf(ann, o, 'thanks');
    const data = sendButton(preview);
    const where = { chatId: h.group.id, messageId: preview.message_id };
    const q1 = h.fake.userPresses(h.bot, ann, where, data);
    const q2 = h.fake.userPresses(h.bot, ann, where, data);
    await settle();
    const q3 = await press(ann, preview, data);

    assert.deepEqual(customerTexts(o), ['Thanks for waiting, Quinn!']);
    assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound' }).count({ n: '*' }).then(([r]) => Number(r.n)), 1);
    assert.equal(await usageOf(thanks.id), TOP + 1);
    assert.deepEqual([q1, q2, q3].map((q) => answerOf(q)?.text).sort(), ['Already sent', 'Already sent', 'Sent']);
    assert.equal(now(preview)!.text, `✅ @${ann.username} sent /thanks:\n\nThanks for waiting, Quinn!`);
  });

  it('only the agent who asked may send: another agent\'s Send is refused with an alert naming them', async () => {
    const hold = await canned('hold', 'One moment please.', { usage: TOP });
    const o = await openTicket('Who sends');
    const ann = newAgent('Ann');
    const bob = newAgent('Bob');
    const preview = await previewOf(ann, o, 'hold');
    const q = await press(bob, preview, sendButton(preview));
    assert.equal(answerOf(q)?.text, `Only @${ann.username} can send this preview.`);
    assert.equal(answerOf(q)?.show_alert, true);
    assert.deepEqual(customerTexts(o), []);
    assert.equal((await previewRows(o))[0].state, 'pending');
    assert.equal(await usageOf(hold.id), TOP);
    assert.equal(now(preview)!.text, preview.text, 'the preview is unchanged');

    await press(ann, preview, sendButton(preview));
    assert.deepEqual(customerTexts(o), ['One moment please.']);
  });

  it('Cancel (by anyone) deletes the preview message and sends nothing; a late Send is answered "Already cancelled"', async () => {
    const bye = await canned('bye', 'Goodbye!', { usage: TOP });
    const o = await openTicket('Never mind');
    const ann = newAgent('Ann');
    const bob = newAgent('Bob');
    const preview = await previewOf(ann, o, 'bye');
    const send = sendButton(preview);
    // Two presses queued together: Cancel first, then the author's Send on the same message.
    const where = { chatId: h.group.id, messageId: preview.message_id };
    const qc = h.fake.userPresses(h.bot, bob, where, cancelButton(preview));
    const qs = h.fake.userPresses(h.bot, ann, where, send);
    await settle();

    assert.equal(answerOf(qc)?.text, 'Cancelled');
    assert.equal(answerOf(qs)?.text, 'Already cancelled');
    assert.equal(now(preview), undefined, 'the preview message is deleted');
    assert.equal(h.fake.callsTo('deleteMessage').filter((c) => c.status === 200 && Number(c.params.message_id) === preview.message_id).length, 1);
    assert.equal((await previewRows(o))[0].state, 'cancelled');
    assert.deepEqual(customerTexts(o), []);
    assert.equal(await usageOf(bye.id), TOP);
  });

  it('a preview of a ticket closed meanwhile: Send is refused with an alert, nothing is sent, the preview stays pending', async () => {
    const late = await canned('late', 'Sorry for the delay.', { usage: TOP });
    const o = await openTicket('Closing soon');
    const ann = newAgent('Ann');
    const preview = await previewOf(ann, o, 'late');
    await say(ann, o, '/resolve');
    await say(ann, o, '/close');
    assert.equal((await ticketJson(o.ticketId)).status, 'closed');
    const before = customerTexts(o).length; // the resolution notice

    const q = await press(ann, preview, sendButton(preview));
    assert.match(answerOf(q)?.text ?? '', /closed/);
    assert.equal(answerOf(q)?.show_alert, true);
    assert.equal(customerTexts(o).length, before, 'nothing more reaches the customer');
    assert.ok(!customerTexts(o).includes('Sorry for the delay.'));
    assert.equal((await previewRows(o))[0].state, 'pending', 'the refusal rolled back');
    assert.equal(await usageOf(late.id), TOP);
    assert.equal(await h.db('messages').where({ ticket_id: o.ticketId, direction: 'outbound', text: 'Sorry for the delay.' }).first(), undefined);
    assert.equal(now(preview)!.text, preview.text, 'the preview is unchanged');
  });
});
