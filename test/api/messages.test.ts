/**
 * Messages over the API: replies and notes on a ticket (POST/GET /v1/tickets/{id}/messages),
 * one message (GET /v1/messages/{id}) and proactive messages (POST /v1/messages/send) with
 * the per-bot daily cap. Telegram itself is not called here: a live outbound message is a
 * row in telegram_sends, a sandbox one is marked sent with simulated: true.
 */
import assert from 'node:assert/strict';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeAccount, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const START = '2026-11-21T12:00:00.000Z';
const UNKNOWN_TICKET = `tkt_${'0'.repeat(26)}`;
const UNKNOWN_MESSAGE = `msg_${'0'.repeat(26)}`;
const UNKNOWN_CONTACT = `ct_${'0'.repeat(26)}`;
const UNKNOWN_ACCOUNT = `acc_${'0'.repeat(26)}`;

describe('messages', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(START);
  let t: TestApp;
  before(() => { t = createTestApp(db.knex, { clock }); });
  beforeEach(() => clock.set(START));

  let seq = 0;
  const nextTelegramId = () => 7_000_000 + ++seq;

  /** A workspace of its own with a bot, a key with every scope and request helpers. */
  async function desk(opts: { sandbox?: boolean } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, opts);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const account = await makeAccount(db.knex, { workspaceId: ws.id });
    const auth = key.auth;
    const post = (path: string, body: unknown, idem?: string) => {
      const r = t.request.post(path).set('Authorization', auth);
      if (idem !== undefined) r.set('Idempotency-Key', idem);
      return r.send(body as object);
    };
    const get = (path: string) => t.request.get(path).set('Authorization', auth);
    const patch = (path: string, body: unknown) => t.request.patch(path).set('Authorization', auth).send(body as object);
    const reachable = (o: { accountId?: string; username?: string; firstName?: string; lastName?: string; telegramUserId?: number } = {}) =>
      makeReachableContact(db.knex, t.services, { workspaceId: ws.id, accountId: o.accountId ?? account.id, telegramUserId: o.telegramUserId ?? nextTelegramId(), username: o.username, firstName: o.firstName, lastName: o.lastName });
    const openTicket = async (body: Record<string, unknown>) => (await post('/v1/tickets', { subject: 'My order did not arrive', ...body }).expect(201)).body;
    const setStatus = async (ticketId: string, ...statuses: string[]) => {
      for (const status of statuses) await post(`/v1/tickets/${ticketId}/status`, { status }).expect(200);
    };
    const reply = (ticketId: string, body: unknown) => post(`/v1/tickets/${ticketId}/messages`, body);
    const send = (body: unknown, idem?: string) => post('/v1/messages/send', body, idem);
    const ticket = async (id: string) => (await get(`/v1/tickets/${id}`).expect(200)).body;
    const timeline = async (id: string) => (await get(`/v1/tickets/${id}/events?limit=200`).expect(200)).body.items as any[];
    return { ws, key, account, post, get, patch, reachable, openTicket, setStatus, reply, send, ticket, timeline };
  }

  const sendsOf = (messageId: string) => db.knex('telegram_sends').where({ message_id: messageId });
  const sendMessageRows = (workspaceId: string) => db.knex('telegram_sends').where({ workspace_id: workspaceId, op: 'send_message' });
  const messageRows = (where: Record<string, unknown>) => db.knex('messages').where(where);
  const eventsOf = (where: Record<string, unknown>) => db.knex('events').where(where).orderBy('id');

  function assertProblem(res: { status: number; body: any; headers: Record<string, string> }, status: number, code: string): void {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /application\/problem\+json/);
  }

  // ---------------------------------------------------------------------------------------
  describe('POST /v1/tickets/{id}/messages', () => {
    describe('internal notes', () => {
      it('records a note as sent, never queues it and leaves the ticket alone', async () => {
        const d = await desk();
        const contact = await d.reachable();
        const tk = await d.openTicket({ contact_id: contact.id });
        const eventsBefore = (await eventsOf({ ticket_id: tk.id })).length;
        const res = await d.reply(tk.id, { text: 'Customer is a VIP, be nice', internal: true }).expect(201);
        assert.deepEqual(res.body, {
          id: res.body.id,
          ticket_id: tk.id,
          contact_id: contact.id,
          direction: 'outbound',
          visibility: 'internal',
          author: { type: 'api', id: d.key.id },
          text: 'Customer is a VIP, be nice',
          attachments: [],
          status: 'sent',
          failure_reason: null,
          simulated: false,
          created_at: START,
          sent_at: START,
        });
        assert.match(res.body.id, /^msg_/);
        assert.equal(res.headers.location, `/v1/messages/${res.body.id}`);
        assert.equal((await sendsOf(res.body.id)).length, 0, 'a note never reaches Telegram');
        assert.equal((await sendMessageRows(d.ws.id)).length, 0);
        const after = await d.ticket(tk.id);
        assert.equal(after.status, 'open');
        assert.equal(after.first_response_at, null);
        assert.equal((await eventsOf({ ticket_id: tk.id })).length, eventsBefore, 'no status change, no message.sent');
      });

      it('is a note on an in_progress ticket too: the status stays', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        await d.setStatus(tk.id, 'in_progress');
        await d.reply(tk.id, { text: 'looking into it', internal: true }).expect(201);
        assert.equal((await d.ticket(tk.id)).status, 'in_progress');
      });

      it('may be written for a contact who never wrote to a bot (nothing is sent)', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact: { telegram_user_id: nextTelegramId(), first_name: 'Ann' } });
        const res = await d.reply(tk.id, { text: 'called them by phone', internal: true }).expect(201);
        assert.equal(res.body.status, 'sent');
        assert.equal(res.body.visibility, 'internal');
      });
    });

    describe('public replies in a live workspace', () => {
      it('queues the reply for Telegram: 201, status queued, Location, one send_message row', async () => {
        const d = await desk();
        const telegramUserId = nextTelegramId();
        const contact = await d.reachable({ telegramUserId });
        const tk = await d.openTicket({ contact_id: contact.id });
        const res = await d.reply(tk.id, { text: 'We are on it, Sarah!' }).expect(201);
        assert.deepEqual(res.body, {
          id: res.body.id,
          ticket_id: tk.id,
          contact_id: contact.id,
          direction: 'outbound',
          visibility: 'public',
          author: { type: 'api', id: d.key.id },
          text: 'We are on it, Sarah!',
          attachments: [],
          status: 'queued',
          failure_reason: null,
          simulated: false,
          created_at: START,
          sent_at: null,
        });
        assert.equal(res.headers.location, `/v1/messages/${res.body.id}`);
        const rows = await sendMessageRows(d.ws.id);
        assert.equal(rows.length, 1, 'exactly one send_message row');
        const [row] = rows;
        assert.equal(row.op, 'send_message');
        assert.equal(row.message_id, res.body.id);
        assert.equal(row.account_id, d.account.id);
        assert.equal(row.chat_id, telegramUserId, 'sent to the private chat of the contact');
        assert.equal(row.ticket_id, tk.id);
        assert.equal(row.status, 'queued');
        assert.deepEqual(row.payload, { text: 'We are on it, Sarah!' });
      });

      it('moves an open ticket to waiting_on_customer with a ticket.status_changed event (reason agent_reply)', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        clock.advance(60_000);
        await d.reply(tk.id, { text: 'Could you send the order number?' }).expect(201);
        const after = await d.ticket(tk.id);
        assert.equal(after.status, 'waiting_on_customer');
        assert.equal(after.first_response_at, null, 'queued is not yet a response');
        const changes = (await d.timeline(tk.id)).filter((e) => e.type === 'ticket.status_changed');
        assert.equal(changes.length, 1);
        assert.deepEqual(changes[0].data, { from: 'open', to: 'waiting_on_customer', reason: 'agent_reply' });
        assert.deepEqual(changes[0].actor, { type: 'api', id: d.key.id });
        assert.equal(changes[0].created_at, clock.now().toISOString());
      });

      it('moves an in_progress ticket to waiting_on_customer', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        await d.setStatus(tk.id, 'in_progress');
        await d.reply(tk.id, { text: 'Please try again now' }).expect(201);
        assert.equal((await d.ticket(tk.id)).status, 'waiting_on_customer');
        const last = (await d.timeline(tk.id)).filter((e) => e.type === 'ticket.status_changed').at(-1);
        assert.deepEqual(last.data, { from: 'in_progress', to: 'waiting_on_customer', reason: 'agent_reply' });
      });

      for (const path of [['waiting_on_customer'], ['resolved']]) {
        it(`leaves a ${path.at(-1)} ticket ${path.at(-1)} (the reply is still queued, no status event)`, async () => {
          const d = await desk();
          const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
          await d.setStatus(tk.id, ...path);
          const before = (await d.timeline(tk.id)).length;
          const res = await d.reply(tk.id, { text: 'One more thing' }).expect(201);
          assert.equal(res.body.status, 'queued');
          assert.equal((await d.ticket(tk.id)).status, path.at(-1));
          assert.equal((await d.timeline(tk.id)).length, before, 'no ticket event');
          assert.equal((await sendsOf(res.body.id)).length, 1);
        });
      }

      it('refuses a reply on a closed ticket with 409 conflict and writes nothing', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        await d.setStatus(tk.id, 'resolved', 'closed');
        const res = await d.reply(tk.id, { text: 'Hello?' });
        assertProblem(res, 409, 'conflict');
        assert.equal((await messageRows({ ticket_id: tk.id, visibility: 'public' })).length, 0);
        assert.equal((await sendMessageRows(d.ws.id)).length, 0);
        assert.equal((await d.ticket(tk.id)).status, 'closed');
      });

      it('refuses a contact who blocked the bot with 422 recipient_unreachable and writes nothing', async () => {
        const d = await desk();
        const contact = await d.reachable();
        const tk = await d.openTicket({ contact_id: contact.id });
        await d.patch(`/v1/contacts/${contact.id}`, { blocked: true }).expect(200);
        const res = await d.reply(tk.id, { text: 'Are you there?' });
        assertProblem(res, 422, 'recipient_unreachable');
        assert.equal((await messageRows({ ticket_id: tk.id })).length, 0);
        assert.equal((await sendMessageRows(d.ws.id)).length, 0);
        assert.equal((await d.ticket(tk.id)).status, 'open');
      });

      it('refuses a contact who never wrote to a bot with 422 recipient_unreachable and writes nothing', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact: { telegram_user_id: nextTelegramId(), first_name: 'Ann' } });
        const eventsBefore = await eventsOf({ ticket_id: tk.id });
        const res = await d.reply(tk.id, { text: 'Hi Ann' });
        assertProblem(res, 422, 'recipient_unreachable');
        assert.equal((await messageRows({ ticket_id: tk.id })).length, 0, 'no message');
        assert.equal((await sendMessageRows(d.ws.id)).length, 0, 'no send');
        assert.deepEqual(await eventsOf({ ticket_id: tk.id }), eventsBefore, 'no event');
        const after = await d.ticket(tk.id);
        assert.equal(after.status, 'open');
        assert.equal(after.first_response_at, null);
      });

      it('answers 404 for an unknown ticket and for another workspace\'s ticket', async () => {
        const d = await desk();
        const other = await desk();
        const foreign = await other.openTicket({ contact_id: (await other.reachable()).id });
        assertProblem(await d.reply(UNKNOWN_TICKET, { text: 'hi' }), 404, 'not_found');
        assertProblem(await d.reply(foreign.id, { text: 'hi' }), 404, 'not_found');
        assert.equal((await messageRows({ ticket_id: foreign.id })).length, 0);
      });
    });

    describe('public replies in a sandbox workspace', () => {
      it('marks the reply sent and simulated, emits message.sent, sets first_response_at and queues nothing', async () => {
        const d = await desk({ sandbox: true });
        const contact = await d.reachable();
        const tk = await d.openTicket({ contact_id: contact.id });
        clock.advance(90_000);
        const res = await d.reply(tk.id, { text: 'Sandbox reply' }).expect(201);
        assert.equal(res.body.status, 'sent');
        assert.equal(res.body.simulated, true);
        assert.equal(res.body.sent_at, clock.now().toISOString());
        const sent = await eventsOf({ message_id: res.body.id, type: 'message.sent' });
        assert.equal(sent.length, 1);
        assert.equal(sent[0].ticket_id, tk.id);
        const after = await d.ticket(tk.id);
        assert.equal(after.first_response_at, clock.now().toISOString());
        assert.equal(after.status, 'waiting_on_customer');
        assert.equal((await db.knex('telegram_sends').where({ workspace_id: d.ws.id })).length, 0, 'a sandbox never queues');
      });

      it('takes a contact with a Telegram id as reachable even without a chat', async () => {
        const d = await desk({ sandbox: true });
        const tk = await d.openTicket({ contact: { telegram_user_id: nextTelegramId(), first_name: 'Ann' } });
        const res = await d.reply(tk.id, { text: 'Hi' }).expect(201);
        assert.equal(res.body.simulated, true);
      });

      it('refuses a contact without a Telegram account: 422 recipient_unreachable', async () => {
        const d = await desk({ sandbox: true });
        const tk = await d.openTicket({ contact: { email: `nochat${++seq}@example.com`, name: 'No Chat' } });
        assertProblem(await d.reply(tk.id, { text: 'Hi' }), 422, 'recipient_unreachable');
        assert.equal((await messageRows({ ticket_id: tk.id })).length, 0);
        assert.equal((await d.ticket(tk.id)).first_response_at, null);
      });

      it('a sandbox note does not set first_response_at', async () => {
        const d = await desk({ sandbox: true });
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        await d.reply(tk.id, { text: 'note', internal: true }).expect(201);
        assert.equal((await d.ticket(tk.id)).first_response_at, null);
      });

      it('a second reply does not move first_response_at', async () => {
        const d = await desk({ sandbox: true });
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        await d.reply(tk.id, { text: 'first' }).expect(201);
        const first = clock.now().toISOString();
        clock.advance(3_600_000);
        await d.reply(tk.id, { text: 'second' }).expect(201);
        assert.equal((await d.ticket(tk.id)).first_response_at, first);
      });
    });

    describe('validation', () => {
      const bad: [string, unknown][] = [
        ['empty text', { text: '' }],
        ['blank text', { text: '   \n\t ' }],
        ['text over 4096 characters', { text: 'x'.repeat(4097) }],
        ['no text', { internal: true }],
        ['text not a string', { text: 42 }],
        ['internal not a boolean', { text: 'hi', internal: 'yes' }],
        ['an unknown field', { text: 'hi', channel: 'email' }],
      ];
      for (const [what, body] of bad) {
        it(`refuses ${what} with 422 validation_error and writes nothing`, async () => {
          const d = await desk();
          const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
          const res = await d.reply(tk.id, body);
          assertProblem(res, 422, 'validation_error');
          assert.ok(Array.isArray(res.body.details) && res.body.details.length > 0);
          assert.equal((await messageRows({ ticket_id: tk.id })).length, 0);
        });
      }

      it('accepts exactly 4096 characters', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        const res = await d.reply(tk.id, { text: 'y'.repeat(4096) }).expect(201);
        assert.equal(res.body.text.length, 4096);
      });

      it('needs write:messages (403 naming the scope)', async () => {
        const d = await desk();
        const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
        const readOnly = await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ['read:messages', 'write:tickets'] });
        const res = await t.request.post(`/v1/tickets/${tk.id}/messages`).set('Authorization', readOnly.auth).send({ text: 'hi' });
        assertProblem(res, 403, 'forbidden');
        assert.equal(res.body.required_scope, 'write:messages');
      });
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('GET /v1/tickets/{id}/messages', () => {
    /** A ticket with a note, a reply, a customer message and a second note, one minute apart. */
    async function thread() {
      const d = await desk();
      const contact = await d.reachable();
      const tk = await d.openTicket({ contact_id: contact.id });
      const texts = ['note 1', 'reply 1', 'customer 1', 'note 2'];
      clock.advance(60_000);
      await d.reply(tk.id, { text: 'note 1', internal: true }).expect(201);
      clock.advance(60_000);
      await d.reply(tk.id, { text: 'reply 1' }).expect(201);
      clock.advance(60_000);
      await db.knex.transaction((trx) => t.services.messages.recordInbound(trx, d.ws, tk.id, { text: 'customer 1', accountId: d.account.id, chatId: Number(contact.telegramUserId) }));
      clock.advance(60_000);
      await d.reply(tk.id, { text: 'note 2', internal: true }).expect(201);
      return { d, tk, texts };
    }
    const texts = (body: any) => body.items.map((m: any) => m.text);

    it('lists the thread oldest first, notes and inbound messages included', async () => {
      const { d, tk, texts: all } = await thread();
      const res = await d.get(`/v1/tickets/${tk.id}/messages`).expect(200);
      assert.deepEqual(texts(res.body), all);
      assert.equal(res.body.total, 4);
      assert.equal(res.body.has_more, false);
      assert.deepEqual(res.body.items.map((m: any) => [m.direction, m.visibility]), [
        ['outbound', 'internal'], ['outbound', 'public'], ['inbound', 'public'], ['outbound', 'internal'],
      ]);
      const inbound = res.body.items[2];
      assert.equal(inbound.status, 'received');
      assert.equal(inbound.author.type, 'contact');
    });

    it('filters by visibility', async () => {
      const { d, tk } = await thread();
      assert.deepEqual(texts((await d.get(`/v1/tickets/${tk.id}/messages?visibility=internal`).expect(200)).body), ['note 1', 'note 2']);
      const pub = (await d.get(`/v1/tickets/${tk.id}/messages?visibility=public`).expect(200)).body;
      assert.deepEqual(texts(pub), ['reply 1', 'customer 1']);
      assert.equal(pub.total, 2);
    });

    it('pages with limit/offset and with the cursor', async () => {
      const { d, tk } = await thread();
      const p1 = (await d.get(`/v1/tickets/${tk.id}/messages?limit=3`).expect(200)).body;
      assert.deepEqual(texts(p1), ['note 1', 'reply 1', 'customer 1']);
      assert.equal(p1.total, 4);
      assert.equal(p1.limit, 3);
      assert.equal(p1.has_more, true);
      assert.equal(typeof p1.next_cursor, 'string');
      const p2 = (await d.get(`/v1/tickets/${tk.id}/messages?limit=3&offset=3`).expect(200)).body;
      assert.deepEqual(texts(p2), ['note 2']);
      assert.equal(p2.has_more, false);
      const byCursor = (await d.get(`/v1/tickets/${tk.id}/messages?limit=3&cursor=${encodeURIComponent(p1.next_cursor)}`).expect(200)).body;
      assert.deepEqual(texts(byCursor), ['note 2']);
    });

    it('answers an empty page for a ticket without messages', async () => {
      const d = await desk();
      const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
      const res = await d.get(`/v1/tickets/${tk.id}/messages`).expect(200);
      assert.deepEqual(res.body.items, []);
      assert.equal(res.body.total, 0);
    });

    it('answers 404 for an unknown ticket and another workspace\'s ticket', async () => {
      const { tk } = await thread();
      const stranger = await desk();
      assertProblem(await stranger.get(`/v1/tickets/${UNKNOWN_TICKET}/messages`), 404, 'not_found');
      assertProblem(await stranger.get(`/v1/tickets/${tk.id}/messages`), 404, 'not_found');
    });

    it('refuses bad query values with 422', async () => {
      const { d, tk } = await thread();
      for (const q of ['visibility=secret', 'limit=0', 'limit=201', 'offset=-1', 'foo=bar']) {
        assertProblem(await d.get(`/v1/tickets/${tk.id}/messages?${q}`), 422, 'validation_error');
      }
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('GET /v1/messages/{id}', () => {
    it('answers a note and a reply as they were created', async () => {
      const d = await desk();
      const tk = await d.openTicket({ contact_id: (await d.reachable()).id });
      const note = (await d.reply(tk.id, { text: 'a note', internal: true }).expect(201)).body;
      const reply = (await d.reply(tk.id, { text: 'a reply' }).expect(201)).body;
      assert.deepEqual((await d.get(`/v1/messages/${note.id}`).expect(200)).body, note);
      assert.deepEqual((await d.get(`/v1/messages/${reply.id}`).expect(200)).body, reply);
    });

    it('answers a proactive message (ticket_id null)', async () => {
      const d = await desk();
      const contact = await d.reachable({ username: `msg_get_${++seq}` });
      const sent = (await d.send({ to: contact.id, text: 'Hello' }).expect(200)).body;
      const { eta: _eta, ...message } = sent;
      const got = (await d.get(`/v1/messages/${sent.id}`).expect(200)).body;
      assert.deepEqual(got, message);
      assert.equal(got.ticket_id, null);
    });

    it('answers 404 for an unknown id and another workspace\'s message', async () => {
      const d = await desk();
      const other = await desk();
      const tk = await other.openTicket({ contact_id: (await other.reachable()).id });
      const foreign = (await other.reply(tk.id, { text: 'theirs' }).expect(201)).body;
      assertProblem(await d.get(`/v1/messages/${UNKNOWN_MESSAGE}`), 404, 'not_found');
      assertProblem(await d.get(`/v1/messages/${foreign.id}`), 404, 'not_found');
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('POST /v1/messages/send', () => {
    describe('recipients', () => {
      it('sends to @username: 200, status queued, one send_message row to the contact\'s chat, eta', async () => {
        const d = await desk();
        const telegramUserId = nextTelegramId();
        const username = `sarah_m${++seq}`;
        const contact = await d.reachable({ username, telegramUserId });
        const res = await d.send({ to: `@${username}`, text: 'Your order has shipped' }).expect(200);
        assert.match(res.body.id, /^msg_/);
        assert.equal(res.body.status, 'queued');
        assert.equal(res.body.simulated, false);
        assert.equal(res.body.ticket_id, null);
        assert.equal(res.body.contact_id, contact.id);
        assert.equal(res.body.direction, 'outbound');
        assert.equal(res.body.visibility, 'public');
        assert.deepEqual(res.body.author, { type: 'api', id: d.key.id });
        assert.equal(res.body.text, 'Your order has shipped');
        assert.equal(res.body.sent_at, null);
        assert.equal(res.body.created_at, START);
        assert.ok(!Number.isNaN(Date.parse(res.body.eta)), 'eta is a timestamp');
        assert.ok(Date.parse(res.body.eta) >= Date.parse(res.body.created_at), 'eta is not before now');
        assert.equal(res.headers.location, `/v1/messages/${res.body.id}`);
        const rows = await sendsOf(res.body.id);
        assert.equal(rows.length, 1);
        assert.equal(rows[0].op, 'send_message');
        assert.equal(rows[0].chat_id, telegramUserId);
        assert.equal(rows[0].account_id, d.account.id);
        assert.equal(rows[0].ticket_id, null);
        assert.deepEqual(rows[0].payload, { text: 'Your order has shipped' });
      });

      it('matches @username case-insensitively', async () => {
        const d = await desk();
        const username = `CaseUser${++seq}`;
        const contact = await d.reachable({ username });
        const res = await d.send({ to: `@${username.toUpperCase()}`, text: 'hi' }).expect(200);
        assert.equal(res.body.contact_id, contact.id);
      });

      it('sends to a Telegram user id given as a number', async () => {
        const d = await desk();
        const telegramUserId = nextTelegramId();
        const contact = await d.reachable({ telegramUserId });
        const res = await d.send({ to: telegramUserId, text: 'by number' }).expect(200);
        assert.equal(res.body.contact_id, contact.id);
        assert.equal((await sendsOf(res.body.id))[0].chat_id, telegramUserId);
      });

      it('sends to a Telegram user id given as a digit string', async () => {
        const d = await desk();
        const telegramUserId = nextTelegramId();
        const contact = await d.reachable({ telegramUserId });
        const res = await d.send({ to: String(telegramUserId), text: 'by digits' }).expect(200);
        assert.equal(res.body.contact_id, contact.id);
      });

      it('sends to a contact id', async () => {
        const d = await desk();
        const contact = await d.reachable();
        const res = await d.send({ to: contact.id, text: 'by contact id' }).expect(200);
        assert.equal(res.body.contact_id, contact.id);
        assert.equal((await sendsOf(res.body.id)).length, 1);
      });

      it('answers 422 recipient_unreachable for an unknown @username and an unknown Telegram id', async () => {
        const d = await desk();
        assertProblem(await d.send({ to: '@nobody_knows_me', text: 'hi' }), 422, 'recipient_unreachable');
        assertProblem(await d.send({ to: 987654321, text: 'hi' }), 422, 'recipient_unreachable');
        assertProblem(await d.send({ to: '987654321', text: 'hi' }), 422, 'recipient_unreachable');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
      });

      it('does not find a contact of another workspace by @username or Telegram id', async () => {
        const d = await desk();
        const other = await desk();
        const username = `foreign_u${++seq}`;
        const telegramUserId = nextTelegramId();
        await other.reachable({ username, telegramUserId });
        assertProblem(await d.send({ to: `@${username}`, text: 'hi' }), 422, 'recipient_unreachable');
        assertProblem(await d.send({ to: telegramUserId, text: 'hi' }), 422, 'recipient_unreachable');
      });

      it('answers 422 recipient_unreachable for a known contact who never wrote to a bot, and writes nothing', async () => {
        const d = await desk();
        const username = `silent_${++seq}`;
        const contact = (await d.post('/v1/contacts', { username, telegram_user_id: nextTelegramId(), name: 'Silent Sam' }).expect(201)).body;
        for (const to of [`@${username}`, contact.telegram_user_id, contact.id]) {
          assertProblem(await d.send({ to, text: 'hi' }), 422, 'recipient_unreachable');
        }
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
        assert.equal((await sendMessageRows(d.ws.id)).length, 0);
      });

      it('answers 422 recipient_unreachable for a contact who blocked the bot', async () => {
        const d = await desk();
        const contact = await d.reachable();
        await d.patch(`/v1/contacts/${contact.id}`, { blocked: true }).expect(200);
        assertProblem(await d.send({ to: contact.id, text: 'hi' }), 422, 'recipient_unreachable');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
      });

      it('answers 404 for an unknown contact id and another workspace\'s contact id', async () => {
        const d = await desk();
        const other = await desk();
        const foreign = await other.reachable();
        const r1 = await d.send({ to: UNKNOWN_CONTACT, text: 'hi' });
        assertProblem(r1, 404, 'not_found');
        assert.match(r1.body.detail, /Contact not found/);
        assertProblem(await d.send({ to: foreign.id, text: 'hi' }), 404, 'not_found');
        assert.equal((await messageRows({ contact_id: foreign.id })).length, 0);
      });

      const badTo: [string, unknown][] = [
        ['a bare name', 'sarah'],
        ['a too short @username', '@abc'],
        ['a too long @username', `@${'a'.repeat(33)}`],
        ['@username with a space', '@sarah miller'],
        ['a leading zero', '0123456'],
        ['digits and letters', '12ab'],
        ['a malformed contact id', 'ct_123'],
        ['another kind of id', UNKNOWN_TICKET],
        ['zero', 0],
        ['a negative number', -5],
        ['a fraction', 1.5],
        ['a boolean', true],
        ['null', null],
        ['an empty string', ''],
        ['an object', { id: 1 }],
      ];
      for (const [what, to] of badTo) {
        it(`refuses to = ${what} with 422 validation_error`, async () => {
          const d = await desk();
          assertProblem(await d.send({ to, text: 'hi' }), 422, 'validation_error');
        });
      }

      const badBody: [string, unknown][] = [
        ['no to', { text: 'hi' }],
        ['no text', { to: '@somebody' }],
        ['blank text', { to: '@somebody', text: '   ' }],
        ['text over 4096 characters', { to: '@somebody', text: 'x'.repeat(4097) }],
        ['an unknown field', { to: '@somebody', text: 'hi', parse_mode: 'HTML' }],
        ['a malformed account_id', { to: '@somebody', text: 'hi', account_id: 'bot1' }],
      ];
      for (const [what, body] of badBody) {
        it(`refuses ${what} with 422 validation_error`, async () => {
          const d = await desk();
          assertProblem(await d.send(body), 422, 'validation_error');
        });
      }
    });

    describe('account_id', () => {
      it('answers 404 for an unknown account and another workspace\'s account', async () => {
        const d = await desk();
        const other = await desk();
        const contact = await d.reachable();
        const r = await d.send({ to: contact.id, text: 'hi', account_id: UNKNOWN_ACCOUNT });
        assertProblem(r, 404, 'not_found');
        assert.match(r.body.detail, /Account not found/);
        assertProblem(await d.send({ to: contact.id, text: 'hi', account_id: other.account.id }), 404, 'not_found');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
      });

      it('answers 422 recipient_unreachable when the contact never wrote to that bot', async () => {
        const d = await desk();
        const second = await makeAccount(db.knex, { workspaceId: d.ws.id });
        const contact = await d.reachable();
        assertProblem(await d.send({ to: contact.id, text: 'hi', account_id: second.id }), 422, 'recipient_unreachable');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
      });

      it('sends through the given bot and its chat', async () => {
        const d = await desk();
        const second = await makeAccount(db.knex, { workspaceId: d.ws.id });
        const contact = await d.reachable();
        await t.services.contacts.recordChat(db.knex, { workspaceId: d.ws.id, contactId: contact.id, accountId: second.id, chatId: 424242, at: new Date() });
        const res = await d.send({ to: contact.id, text: 'via the second bot', account_id: second.id }).expect(200);
        const [row] = await sendsOf(res.body.id);
        assert.equal(row.account_id, second.id);
        assert.equal(row.chat_id, 424242);
        const res1 = await d.send({ to: contact.id, text: 'via the first bot', account_id: d.account.id }).expect(200);
        const [row1] = await sendsOf(res1.body.id);
        assert.equal(row1.account_id, d.account.id);
        assert.equal(row1.chat_id, Number(contact.telegramUserId));
      });
    });

    describe('variables', () => {
      it('fills in {first_name} {last_name} {username} (in the message and in the queued payload)', async () => {
        const d = await desk();
        const username = `sarah_v${++seq}`;
        const contact = await d.reachable({ username, firstName: 'Sarah', lastName: 'Miller' });
        const res = await d.send({ to: contact.id, text: 'Hi {first_name} {last_name} (@{username}), {first_name}! {unknown} {FIRST_NAME}' }).expect(200);
        const expected = `Hi Sarah Miller (@${username}), Sarah! {unknown} {FIRST_NAME}`;
        assert.equal(res.body.text, expected);
        assert.deepEqual((await sendsOf(res.body.id))[0].payload, { text: expected });
        assert.equal((await d.get(`/v1/messages/${res.body.id}`).expect(200)).body.text, expected);
      });

      it('falls back to the full name for {first_name} and leaves missing values empty', async () => {
        const d = await desk();
        const telegramUserId = nextTelegramId();
        const { contact } = await t.services.contacts.upsert(db.knex, d.ws.id, { telegram_user_id: telegramUserId, name: 'Sarah Miller' }, { type: 'system', id: null });
        await t.services.contacts.recordChat(db.knex, { workspaceId: d.ws.id, contactId: contact.id, accountId: d.account.id, chatId: telegramUserId, at: new Date() });
        assert.equal(contact.firstName, null);
        const res = await d.send({ to: telegramUserId, text: 'Dear {first_name}[{last_name}][{username}]' }).expect(200);
        assert.equal(res.body.text, 'Dear Sarah Miller[][]');
      });

      it('refuses a text that only becomes too long once filled in (422) and does not count it', async () => {
        const d = await desk();
        const contact = await d.reachable({ firstName: 'Sarah-Jane Elizabeth', lastName: 'Miller' });
        const text = `${'x'.repeat(4096 - '{first_name}'.length)}{first_name}`;
        assert.equal(text.length, 4096);
        assertProblem(await d.send({ to: contact.id, text }), 422, 'validation_error');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
      });
    });

    describe('sandbox', () => {
      it('marks the message sent and simulated, emits message.sent and queues nothing', async () => {
        const d = await desk({ sandbox: true });
        const contact = await d.reachable();
        const res = await d.send({ to: contact.id, text: 'Sandbox hello {first_name}' }).expect(200);
        assert.equal(res.body.status, 'sent');
        assert.equal(res.body.simulated, true);
        assert.equal(res.body.text, 'Sandbox hello Sarah');
        assert.equal(res.body.sent_at, START);
        assert.equal(res.body.eta, START);
        assert.equal((await eventsOf({ message_id: res.body.id, type: 'message.sent' })).length, 1);
        assert.equal((await db.knex('telegram_sends').where({ workspace_id: d.ws.id })).length, 0);
      });

      it('takes a contact with a Telegram id but no chat as reachable', async () => {
        const d = await desk({ sandbox: true });
        const telegramUserId = nextTelegramId();
        await d.post('/v1/contacts', { telegram_user_id: telegramUserId, first_name: 'Ann' }).expect(201);
        const res = await d.send({ to: telegramUserId, text: 'hi {first_name}' }).expect(200);
        assert.equal(res.body.simulated, true);
        assert.equal(res.body.text, 'hi Ann');
      });
    });

    describe('daily cap', () => {
      /** A desk whose workspace allows `limit` proactive messages per bot per UTC day. */
      async function capped(limit: number) {
        const d = await desk();
        const res = await d.patch('/v1/workspace', { daily_send_limit: limit }).expect(200);
        assert.equal(res.body.daily_send_limit, limit);
        return d;
      }

      it('allows daily_send_limit sends, then answers 429 daily_send_limit_exceeded with Retry-After to UTC midnight', async () => {
        const d = await capped(3);
        clock.set('2026-11-21T22:30:15.000Z');
        const contact = await d.reachable();
        for (let i = 1; i <= 3; i++) await d.send({ to: contact.id, text: `message ${i}` }).expect(200);
        const res = await d.send({ to: contact.id, text: 'message 4' });
        assertProblem(res, 429, 'daily_send_limit_exceeded');
        assert.equal(res.headers['retry-after'], String(90 * 60 - 15), 'seconds until 2026-11-22T00:00:00Z');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 3, 'the refused message is not written');
        assert.equal((await sendMessageRows(d.ws.id)).length, 3, 'nor queued');
      });

      it('counts a Retry-After of at least 1 second just before midnight', async () => {
        const d = await capped(1);
        clock.set('2026-11-21T23:59:59.600Z');
        const contact = await d.reachable();
        await d.send({ to: contact.id, text: 'one' }).expect(200);
        const res = await d.send({ to: contact.id, text: 'two' });
        assertProblem(res, 429, 'daily_send_limit_exceeded');
        assert.equal(res.headers['retry-after'], '1');
      });

      it('starts over on the next UTC day', async () => {
        const d = await capped(2);
        clock.set('2026-11-21T23:59:00.000Z');
        const contact = await d.reachable();
        await d.send({ to: contact.id, text: '1' }).expect(200);
        await d.send({ to: contact.id, text: '2' }).expect(200);
        assertProblem(await d.send({ to: contact.id, text: '3' }), 429, 'daily_send_limit_exceeded');
        clock.set('2026-11-22T00:00:00.000Z');
        await d.send({ to: contact.id, text: 'new day 1' }).expect(200);
        await d.send({ to: contact.id, text: 'new day 2' }).expect(200);
        const res = await d.send({ to: contact.id, text: 'new day 3' });
        assertProblem(res, 429, 'daily_send_limit_exceeded');
        assert.equal(res.headers['retry-after'], String(24 * 3600));
      });

      it('does not count failed sends (422)', async () => {
        const d = await capped(2);
        const second = await makeAccount(db.knex, { workspaceId: d.ws.id });
        const contact = await d.reachable({ firstName: 'Sarah-Jane Elizabeth' });
        const blocked = await d.reachable();
        await d.patch(`/v1/contacts/${blocked.id}`, { blocked: true }).expect(200);
        assertProblem(await d.send({ to: '@nobody_at_all', text: 'hi' }), 422, 'recipient_unreachable');
        assertProblem(await d.send({ to: blocked.id, text: 'hi' }), 422, 'recipient_unreachable');
        assertProblem(await d.send({ to: contact.id, text: 'hi', account_id: second.id }), 422, 'recipient_unreachable');
        assertProblem(await d.send({ to: contact.id, text: `${'x'.repeat(4084)}{first_name}` }), 422, 'validation_error');
        assertProblem(await d.send({ to: contact.id, text: '' }), 422, 'validation_error');
        await d.send({ to: contact.id, text: 'ok 1' }).expect(200);
        await d.send({ to: contact.id, text: 'ok 2' }).expect(200);
        assertProblem(await d.send({ to: contact.id, text: 'over' }), 429, 'daily_send_limit_exceeded');
      });

      it('counts per bot: a second bot of the workspace has its own cap', async () => {
        const d = await capped(2);
        const second = await makeAccount(db.knex, { workspaceId: d.ws.id });
        const contact = await d.reachable();
        await t.services.contacts.recordChat(db.knex, { workspaceId: d.ws.id, contactId: contact.id, accountId: second.id, chatId: Number(contact.telegramUserId), at: new Date() });
        const via = (accountId: string, text: string) => d.send({ to: contact.id, text, account_id: accountId });
        await via(d.account.id, 'a1').expect(200);
        await via(d.account.id, 'a2').expect(200);
        assertProblem(await via(d.account.id, 'a3'), 429, 'daily_send_limit_exceeded');
        await via(second.id, 'b1').expect(200);
        await via(second.id, 'b2').expect(200);
        assertProblem(await via(second.id, 'b3'), 429, 'daily_send_limit_exceeded');
        const rows = await sendMessageRows(d.ws.id);
        assert.deepEqual(rows.map((r: any) => r.account_id).sort(), [d.account.id, d.account.id, second.id, second.id].sort());
      });

      it('counts per workspace: another workspace\'s sends do not use this one\'s cap', async () => {
        const a = await capped(1);
        const b = await capped(1);
        const ca = await a.reachable();
        const cb = await b.reachable();
        await a.send({ to: ca.id, text: 'a' }).expect(200);
        await b.send({ to: cb.id, text: 'b' }).expect(200);
        assertProblem(await a.send({ to: ca.id, text: 'a2' }), 429, 'daily_send_limit_exceeded');
      });

      it('counts every recipient of the bot against the same cap', async () => {
        const d = await capped(2);
        const c1 = await d.reachable();
        const c2 = await d.reachable();
        const c3 = await d.reachable();
        await d.send({ to: c1.id, text: 'hi' }).expect(200);
        await d.send({ to: c2.id, text: 'hi' }).expect(200);
        assertProblem(await d.send({ to: c3.id, text: 'hi' }), 429, 'daily_send_limit_exceeded');
      });

      it('holds under parallel sends: exactly daily_send_limit of them go out', async () => {
        const d = await capped(3);
        const contact = await d.reachable();
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => d.send({ to: contact.id, text: `parallel ${i}` })));
        const statuses = results.map((r) => r.status).sort();
        assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 3);
        assert.equal((await sendMessageRows(d.ws.id)).length, 3);
      });

      it('refuses at once with daily_send_limit 0', async () => {
        const d = await capped(0);
        clock.set('2026-11-21T18:00:00.000Z');
        const contact = await d.reachable();
        const res = await d.send({ to: contact.id, text: 'hi' });
        assertProblem(res, 429, 'daily_send_limit_exceeded');
        assert.equal(res.headers['retry-after'], String(6 * 3600));
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 0);
      });

      it('uses the default of 50 per bot per day', async () => {
        const d = await desk();
        const contact = await d.reachable();
        for (let i = 0; i < 50; i++) await d.send({ to: contact.id, text: `bulk ${i}` }).expect(200);
        assertProblem(await d.send({ to: contact.id, text: 'bulk 51' }), 429, 'daily_send_limit_exceeded');
      });

      it('does not count an Idempotency-Key replay twice', async () => {
        const d = await capped(2);
        const contact = await d.reachable();
        const first = await d.send({ to: contact.id, text: 'once' }, 'send-once-1').expect(200);
        const replay = await d.send({ to: contact.id, text: 'once' }, 'send-once-1').expect(200);
        assert.equal(replay.headers['idempotent-replayed'], 'true');
        assert.deepEqual(replay.body, first.body);
        await d.send({ to: contact.id, text: 'second' }, 'send-once-2').expect(200);
        assertProblem(await d.send({ to: contact.id, text: 'third' }, 'send-once-3'), 429, 'daily_send_limit_exceeded');
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 2);
        assert.equal((await sendMessageRows(d.ws.id)).length, 2);
      });

      it('replays a refused send as refused without counting it', async () => {
        const d = await capped(1);
        const contact = await d.reachable();
        await d.send({ to: contact.id, text: 'one' }).expect(200);
        const refused = await d.send({ to: contact.id, text: 'two' }, 'refused-1');
        assertProblem(refused, 429, 'daily_send_limit_exceeded');
        const again = await d.send({ to: contact.id, text: 'two' }, 'refused-1');
        assert.equal(again.status, 429);
        assert.equal((await messageRows({ workspace_id: d.ws.id })).length, 1);
      });
    });
  });
});
