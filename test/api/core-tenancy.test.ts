import assert from 'node:assert/strict';
import { ALL_SCOPES, type Scope } from '../../src/kernel/scopes.js';
import { contactRoutes } from '../../src/contacts/contact-routes.js';
import { messageRoutes } from '../../src/messages/message-routes.js';
import { ticketRoutes } from '../../src/tickets/ticket-routes.js';
import { assignmentRoutes } from '../../src/assignment/assignment-routes.js';
import { makeAccount, makeAgent, makeKey, makeReachableContact, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const withoutRequestId = (body: Record<string, unknown>) => {
  const { request_id: _ignored, ...rest } = body;
  return rest;
};

/** Well-formed ids that exist in no workspace. */
const UNKNOWN = {
  tkt: 'tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  ct: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  msg: 'msg_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  team: 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  ag: 'ag_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  acc: 'acc_01ARZ3NDEKTSV4RRFFQ69G5FAV',
} as const;

type Method = 'get' | 'post' | 'patch' | 'delete';
type Key = { id: string; token: string; auth: string };

describe('tenant isolation of tickets, contacts and messages', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let wsA: string;
  let wsB: string;
  let adminA: Key;
  let adminB: Key;
  const A = {} as { account: string; contact: string; agent: string; team: string; ticket: string; archivedTicket: string; reply: string; note: string; proactive: string };
  const B = {} as { account: string; contact: string; agent: string; team: string; ticket: string; reply: string };
  const A_USERNAME = 'alice_only_in_a';
  const A_TELEGRAM_ID = 910000001;
  const A_EMAIL = 'alice@tenant-a.example';

  const send = (method: Method, url: string, auth: string, body?: object) => {
    const req = t.request[method](url).set('Authorization', auth);
    return body ? req.send(body) : req;
  };

  /** Every row of every workspace-owned table (keys and their counters aside), for "nothing changed" checks. */
  async function snapshot(workspaceId: string): Promise<Record<string, string[]>> {
    const { rows } = await db.knex.raw(
      `SELECT table_name FROM information_schema.columns
        WHERE table_schema = 'public' AND column_name = 'workspace_id'
          AND table_name NOT IN ('api_keys', 'rate_limit_counters', 'idempotency_keys')
        ORDER BY table_name`,
    );
    const out: Record<string, string[]> = {};
    for (const { table_name: table } of rows as { table_name: string }[]) {
      const found = await db.knex(table).where({ workspace_id: workspaceId });
      out[table] = found.map((r: unknown) => JSON.stringify(r)).sort();
    }
    for (const table of ['tickets', 'contacts', 'contact_chats', 'messages', 'events', 'telegram_sends', 'daily_send_counters']) {
      assert.ok(out[table], `the snapshot covers ${table}`);
    }
    out.workspaces = [JSON.stringify(await db.knex('workspaces').where({ id: workspaceId }).first())];
    return out;
  }

  const count = async (table: string, where: Record<string, unknown> = {}) => Number((await db.knex(table).where(where).count({ n: '*' }))[0].n);

  before(async () => {
    t = createTestApp(db.knex);
    wsA = (await makeWorkspace(db.knex, t.services, { name: 'Tenant A' })).id;
    wsB = (await makeWorkspace(db.knex, t.services, { name: 'Tenant B' })).id;
    adminA = await makeKey(db.knex, t.services, { workspaceId: wsA, name: 'admin A' });
    adminB = await makeKey(db.knex, t.services, { workspaceId: wsB, name: 'admin B' });

    // Workspace A: a bot, a reachable contact with email and tag, an agent, a team, a ticket with a reply, a note, a proactive message.
    A.account = (await makeAccount(db.knex, { workspaceId: wsA, isDefault: true })).id;
    A.contact = (await makeReachableContact(db.knex, t.services, { workspaceId: wsA, accountId: A.account, telegramUserId: A_TELEGRAM_ID, username: A_USERNAME, firstName: 'Alice' })).id;
    await send('patch', `/v1/contacts/${A.contact}`, adminA.auth, { email: A_EMAIL, tags: ['vip-a'] }).expect(200);
    A.agent = (await makeAgent(db.knex, { workspaceId: wsA })).id;
    A.team = (await makeTeam(db.knex, { workspaceId: wsA })).id;
    const ticketA = await send('post', '/v1/tickets', adminA.auth, {
      contact_id: A.contact, subject: 'Zanzibarcharge refund', description: 'Order quixoticorder never arrived',
      team_id: A.team, assignee_id: A.agent, account_id: A.account, tags: ['tag-a'],
    }).expect(201);
    A.ticket = ticketA.body.id;
    assert.equal(ticketA.body.number, 1);
    A.reply = (await send('post', `/v1/tickets/${A.ticket}/messages`, adminA.auth, { text: 'Xylophonewords is the answer' }).expect(201)).body.id;
    A.note = (await send('post', `/v1/tickets/${A.ticket}/messages`, adminA.auth, { text: 'Internal marmalade note', internal: true }).expect(201)).body.id;
    A.proactive = (await send('post', '/v1/messages/send', adminA.auth, { to: A.contact, text: 'Hello {first_name}' }).expect(200)).body.id;
    const archived = await send('post', '/v1/tickets', adminA.auth, { contact_id: A.contact, subject: 'Archived in A' }).expect(201);
    A.archivedTicket = archived.body.id;
    await send('delete', `/v1/tickets/${A.archivedTicket}`, adminA.auth).expect(200);

    // Workspace B: the same kinds of things, of its own.
    B.account = (await makeAccount(db.knex, { workspaceId: wsB, isDefault: true })).id;
    B.contact = (await makeReachableContact(db.knex, t.services, { workspaceId: wsB, accountId: B.account, telegramUserId: 920000001, username: 'bob_in_b', firstName: 'Bob' })).id;
    B.agent = (await makeAgent(db.knex, { workspaceId: wsB })).id;
    B.team = (await makeTeam(db.knex, { workspaceId: wsB })).id;
    const ticketB = await send('post', '/v1/tickets', adminB.auth, { contact_id: B.contact, subject: 'Printer jammed' }).expect(201);
    B.ticket = ticketB.body.id;
    assert.equal(ticketB.body.number, 1);
    B.reply = (await send('post', `/v1/tickets/${B.ticket}/messages`, adminB.auth, { text: 'Try turning it off' }).expect(201)).body.id;
  });

  /** B's answer for A's id next to B's answer for an id that exists nowhere: both 404, identical bodies. */
  async function compareWithUnknown(method: Method, foreignUrl: string, unknownUrl: string, body?: object) {
    const foreign = await send(method, foreignUrl, adminB.auth, body);
    const missing = await send(method, unknownUrl, adminB.auth, body);
    assert.equal(foreign.status, 404, `${method} ${foreignUrl}: ${JSON.stringify(foreign.body)}`);
    assert.equal(foreign.body.code, 'not_found');
    assert.equal(missing.status, 404, `${method} ${unknownUrl}: ${JSON.stringify(missing.body)}`);
    assert.deepEqual(withoutRequestId(foreign.body), withoutRequestId(missing.body), `${method} ${foreignUrl}: a foreign id looks exactly like a missing one`);
    return foreign;
  }

  describe('ids of another workspace in the path', () => {
    const cases: { name: string; method: Method; url: (ids: { tkt: string; ct: string; msg: string }) => string; body?: object }[] = [
      { name: 'GET /v1/tickets/{id}', method: 'get', url: (i) => `/v1/tickets/${i.tkt}` },
      { name: 'PATCH /v1/tickets/{id}', method: 'patch', url: (i) => `/v1/tickets/${i.tkt}`, body: { subject: 'Hijacked', priority: 'urgent' } },
      { name: 'PATCH /v1/tickets/{id} (restore)', method: 'patch', url: (i) => `/v1/tickets/${i.tkt}`, body: { archived: false } },
      { name: 'DELETE /v1/tickets/{id}', method: 'delete', url: (i) => `/v1/tickets/${i.tkt}` },
      { name: 'POST /v1/tickets/{id}/status', method: 'post', url: (i) => `/v1/tickets/${i.tkt}/status`, body: { status: 'resolved', note: 'closing it from B' } },
      { name: 'POST /v1/tickets/{id}/assign', method: 'post', url: (i) => `/v1/tickets/${i.tkt}/assign`, body: { agent_id: null, team_id: null, note: 'taken by B' } },
      { name: 'GET /v1/tickets/{id}/messages', method: 'get', url: (i) => `/v1/tickets/${i.tkt}/messages` },
      { name: 'POST /v1/tickets/{id}/messages (reply)', method: 'post', url: (i) => `/v1/tickets/${i.tkt}/messages`, body: { text: 'Reply from B' } },
      { name: 'POST /v1/tickets/{id}/messages (note)', method: 'post', url: (i) => `/v1/tickets/${i.tkt}/messages`, body: { text: 'Note from B', internal: true } },
      { name: 'GET /v1/tickets/{id}/events', method: 'get', url: (i) => `/v1/tickets/${i.tkt}/events` },
      { name: 'GET /v1/contacts/{id}', method: 'get', url: (i) => `/v1/contacts/${i.ct}` },
      { name: 'PATCH /v1/contacts/{id}', method: 'patch', url: (i) => `/v1/contacts/${i.ct}`, body: { name: 'Hijacked', blocked: true, email: 'b@tenant-b.example' } },
      { name: 'POST /v1/contacts/{id}/tags', method: 'post', url: (i) => `/v1/contacts/${i.ct}/tags`, body: { tags: ['from-b'] } },
      { name: 'DELETE /v1/contacts/{id}/tags/{tag}', method: 'delete', url: (i) => `/v1/contacts/${i.ct}/tags/vip-a` },
      { name: 'GET /v1/messages/{id} (ticket reply)', method: 'get', url: (i) => `/v1/messages/${i.msg}` },
    ];

    for (const c of cases) {
      it(`${c.name}: answers B's key 404 for A's id, exactly as for an unknown id, and changes nothing in A or B`, async () => {
        const beforeA = await snapshot(wsA);
        const beforeB = await snapshot(wsB);
        const foreign = await compareWithUnknown(c.method, c.url({ tkt: A.ticket, ct: A.contact, msg: A.reply }), c.url(UNKNOWN), c.body);
        assert.equal(foreign.body.required_scope, undefined);
        assert.deepEqual(await snapshot(wsA), beforeA, 'A\'s data is unchanged');
        assert.deepEqual(await snapshot(wsB), beforeB, 'nothing was written in B');
      });
    }

    it('answers 404 to GET /v1/messages/{id} for A\'s note and A\'s proactive message', async () => {
      await compareWithUnknown('get', `/v1/messages/${A.note}`, `/v1/messages/${UNKNOWN.msg}`);
      await compareWithUnknown('get', `/v1/messages/${A.proactive}`, `/v1/messages/${UNKNOWN.msg}`);
    });

    it('answers 404 for A\'s archived ticket (also when B tries to restore it)', async () => {
      const before = await snapshot(wsA);
      await compareWithUnknown('get', `/v1/tickets/${A.archivedTicket}`, `/v1/tickets/${UNKNOWN.tkt}`);
      await compareWithUnknown('patch', `/v1/tickets/${A.archivedTicket}`, `/v1/tickets/${UNKNOWN.tkt}`, { archived: false });
      assert.deepEqual(await snapshot(wsA), before);
      assert.notEqual((await db.knex('tickets').where({ id: A.archivedTicket }).first()).archived_at, null);
    });

    it('answers 404 even to a key lacking the scopes A\'s data would need, never 403', async () => {
      const narrowB = await makeKey(db.knex, t.services, { workspaceId: wsB, scopes: ['read:tickets'] });
      const res = await t.request.get(`/v1/tickets/${A.ticket}`).set('Authorization', narrowB.auth).expect(404);
      assert.equal(res.body.code, 'not_found');
      assert.equal(res.body.required_scope, undefined);
    });

    it('still serves A\'s own key all of A\'s data afterwards', async () => {
      const ticket = await send('get', `/v1/tickets/${A.ticket}`, adminA.auth).expect(200);
      assert.equal(ticket.body.subject, 'Zanzibarcharge refund');
      assert.equal(ticket.body.assignee_id, A.agent);
      assert.equal(ticket.body.team_id, A.team);
      const contact = await send('get', `/v1/contacts/${A.contact}`, adminA.auth).expect(200);
      assert.equal(contact.body.email, A_EMAIL);
      assert.deepEqual(contact.body.tags, ['vip-a']);
      assert.equal(contact.body.blocked, false);
      await send('get', `/v1/messages/${A.reply}`, adminA.auth).expect(200);
    });
  });

  describe('ids of another workspace in bodies', () => {
    it('POST /v1/tickets with A\'s contact_id, team_id, assignee_id or account_id: 404, nothing created, no number used', async () => {
      const wsC = (await makeWorkspace(db.knex, t.services, { name: 'Tenant C' })).id;
      const adminC = await makeKey(db.knex, t.services, { workspaceId: wsC });
      const ctC = (await t.services.contacts.upsert(db.knex, wsC, { email: 'carol@tenant-c.example', name: 'Carol' }, { type: 'system', id: null })).contact.id;
      const beforeA = await snapshot(wsA);
      const beforeC = await snapshot(wsC);
      const compare = async (foreign: object, unknown: object, detail: string) => {
        const f = await send('post', '/v1/tickets', adminC.auth, { subject: 'Sneaky', ...foreign });
        const u = await send('post', '/v1/tickets', adminC.auth, { subject: 'Sneaky', ...unknown });
        assert.equal(f.status, 404, JSON.stringify(f.body));
        assert.equal(f.body.code, 'not_found');
        assert.equal(f.body.detail, detail);
        assert.equal(u.status, 404, JSON.stringify(u.body));
        assert.deepEqual(withoutRequestId(f.body), withoutRequestId(u.body));
      };
      await compare({ contact_id: A.contact }, { contact_id: UNKNOWN.ct }, 'Contact not found');
      await compare({ contact_id: ctC, team_id: A.team }, { contact_id: ctC, team_id: UNKNOWN.team }, 'Team not found');
      await compare({ contact_id: ctC, assignee_id: A.agent }, { contact_id: ctC, assignee_id: UNKNOWN.ag }, 'Agent not found');
      await compare({ contact_id: ctC, account_id: A.account }, { contact_id: ctC, account_id: UNKNOWN.acc }, 'Account not found');
      // Inline contact fields: the contact that would have been created is rolled back with the ticket.
      await compare({ contact: { email: 'dave@tenant-c.example' }, team_id: A.team }, { contact: { email: 'dave@tenant-c.example' }, team_id: UNKNOWN.team }, 'Team not found');
      await compare({ contact: { username: 'dave_in_c' }, account_id: A.account }, { contact: { username: 'dave_in_c' }, account_id: UNKNOWN.acc }, 'Account not found');
      assert.deepEqual(await snapshot(wsC), beforeC, 'nothing was written in C');
      assert.deepEqual(await snapshot(wsA), beforeA, 'nothing was written in A');
      assert.equal(await count('tickets', { workspace_id: wsC }), 0);
      const ok = await send('post', '/v1/tickets', adminC.auth, { contact_id: ctC, subject: 'Legit' }).expect(201);
      assert.equal(ok.body.number, 1, 'no ticket number was consumed by the refused creates');
    });

    it('POST /v1/tickets with inline contact identities that exist only in A creates a new contact in B', async () => {
      const beforeA = await snapshot(wsA);
      const wsD = (await makeWorkspace(db.knex, t.services, { name: 'Tenant D' })).id;
      const adminD = await makeKey(db.knex, t.services, { workspaceId: wsD });
      const res = await send('post', '/v1/tickets', adminD.auth, { subject: 'Same person?', contact: { username: A_USERNAME, telegram_user_id: A_TELEGRAM_ID, email: A_EMAIL } }).expect(201);
      assert.notEqual(res.body.contact.id, A.contact);
      assert.equal((await db.knex('contacts').where({ id: res.body.contact.id }).first()).workspace_id, wsD);
      assert.deepEqual(res.body.contact.tags, []);
      assert.equal(res.body.account_id, null, 'never A\'s bot');
      assert.deepEqual(await snapshot(wsA), beforeA);
    });

    it('PATCH /v1/tickets/{B\'s ticket} with A\'s team_id: 404 like an unknown team, B\'s ticket unchanged', async () => {
      const before = await snapshot(wsB);
      const res = await send('patch', `/v1/tickets/${B.ticket}`, adminB.auth, { team_id: A.team });
      assert.equal(res.status, 404, JSON.stringify(res.body));
      assert.equal(res.body.code, 'not_found');
      assert.equal(res.body.detail, 'Team not found');
      const unknown = await send('patch', `/v1/tickets/${B.ticket}`, adminB.auth, { team_id: UNKNOWN.team }).expect(404);
      assert.deepEqual(withoutRequestId(res.body), withoutRequestId(unknown.body));
      await send('patch', `/v1/tickets/${B.ticket}`, adminB.auth, { subject: 'Changed too', team_id: A.team }).expect(404);
      assert.deepEqual(await snapshot(wsB), before);
      assert.equal((await db.knex('tickets').where({ id: B.ticket }).first()).team_id, null);
    });

    it('POST /v1/tickets/{B\'s ticket}/assign with A\'s agent_id or team_id: 404, no assignment, no event, no note', async () => {
      const beforeA = await snapshot(wsA);
      const beforeB = await snapshot(wsB);
      for (const [foreign, unknown, detail] of [
        [{ agent_id: A.agent }, { agent_id: UNKNOWN.ag }, 'Agent not found'],
        [{ team_id: A.team }, { team_id: UNKNOWN.team }, 'Team not found'],
        [{ agent_id: B.agent, team_id: A.team, note: 'half of it' }, { agent_id: B.agent, team_id: UNKNOWN.team, note: 'half of it' }, 'Team not found'],
        [{ agent_id: A.agent, team_id: B.team }, { agent_id: UNKNOWN.ag, team_id: B.team }, 'Agent not found'],
      ] as const) {
        const f = await send('post', `/v1/tickets/${B.ticket}/assign`, adminB.auth, foreign);
        const u = await send('post', `/v1/tickets/${B.ticket}/assign`, adminB.auth, unknown);
        assert.equal(f.status, 404, JSON.stringify(f.body));
        assert.equal(f.body.detail, detail);
        assert.deepEqual(withoutRequestId(f.body), withoutRequestId(u.body));
      }
      assert.deepEqual(await snapshot(wsB), beforeB);
      assert.deepEqual(await snapshot(wsA), beforeA);
      const row = await db.knex('tickets').where({ id: B.ticket }).first();
      assert.equal(row.assignee_id, null);
      assert.equal(row.team_id, null);
    });

    it('POST /v1/messages/send to A\'s ct_ id, or from A\'s bot: 404 like unknown ids, nothing sent', async () => {
      const beforeA = await snapshot(wsA);
      const beforeB = await snapshot(wsB);
      const sends = await count('telegram_sends');
      const contactRes = await send('post', '/v1/messages/send', adminB.auth, { to: A.contact, text: 'Hi' });
      assert.equal(contactRes.status, 404, JSON.stringify(contactRes.body));
      assert.equal(contactRes.body.detail, 'Contact not found');
      const u = await send('post', '/v1/messages/send', adminB.auth, { to: UNKNOWN.ct, text: 'Hi' }).expect(404);
      assert.deepEqual(withoutRequestId(contactRes.body), withoutRequestId(u.body));
      const accRes = await send('post', '/v1/messages/send', adminB.auth, { to: B.contact, text: 'Hi', account_id: A.account });
      const accUnknown = await send('post', '/v1/messages/send', adminB.auth, { to: B.contact, text: 'Hi', account_id: UNKNOWN.acc });
      assert.equal(accRes.status, 404, JSON.stringify(accRes.body));
      assert.equal(accRes.body.detail, 'Account not found');
      assert.deepEqual(withoutRequestId(accRes.body), withoutRequestId(accUnknown.body));
      // A's own contact through A's bot, asked by B: still 404.
      await send('post', '/v1/messages/send', adminB.auth, { to: A.contact, text: 'Hi', account_id: A.account }).expect(404);
      assert.equal(await count('telegram_sends'), sends);
      assert.deepEqual(await snapshot(wsA), beforeA);
      assert.deepEqual(await snapshot(wsB), beforeB, 'no message, no queued send, no daily count in B');
    });

    it('POST /v1/messages/send to the @username or Telegram id of a contact only A has: 422 recipient_unreachable, A\'s contact never reached', async () => {
      const beforeA = await snapshot(wsA);
      const beforeB = await snapshot(wsB);
      const sends = await count('telegram_sends');
      const messages = await count('messages');
      for (const to of [`@${A_USERNAME}`, `@${A_USERNAME.toUpperCase()}`, A_TELEGRAM_ID, String(A_TELEGRAM_ID)]) {
        const res = await send('post', '/v1/messages/send', adminB.auth, { to, text: 'Hi {first_name}' });
        assert.equal(res.status, 422, `${to}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, 'recipient_unreachable');
        assert.doesNotMatch(JSON.stringify(res.body), new RegExp(`${A.contact}|Alice|${A.account}`));
        const withBot = await send('post', '/v1/messages/send', adminB.auth, { to, text: 'Hi', account_id: B.account });
        assert.equal(withBot.status, 422, `${to} via B's bot`);
        assert.equal(withBot.body.code, 'recipient_unreachable');
      }
      assert.equal(await count('telegram_sends'), sends);
      assert.equal(await count('messages'), messages);
      assert.equal(await count('telegram_sends', { workspace_id: wsA }), Number(beforeA.telegram_sends.length));
      assert.deepEqual(await snapshot(wsA), beforeA);
      assert.deepEqual(await snapshot(wsB), beforeB);
    });
  });

  describe('lists and export', () => {
    const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((i) => i.id).sort();

    it('GET /v1/tickets lists only B\'s tickets, archived ones included', async () => {
      const res = await send('get', '/v1/tickets?limit=200', adminB.auth).expect(200);
      const rows = await db.knex('tickets').where({ workspace_id: wsB }).whereNull('archived_at').pluck('id');
      assert.deepEqual(ids(res), rows.sort());
      assert.equal(res.body.total, rows.length);
      assert.ok(ids(res).includes(B.ticket));
      const archived = await send('get', '/v1/tickets?limit=200&archived=true', adminB.auth).expect(200);
      assert.ok(!ids(archived).includes(A.archivedTicket));
      assert.ok(archived.body.items.every((i: { id: string }) => i.id !== A.ticket));
      const archivedRows = await db.knex('tickets').where({ workspace_id: wsB }).whereNotNull('archived_at').pluck('id');
      assert.deepEqual(ids(archived), archivedRows.sort());
    });

    it('GET /v1/tickets filtered by A\'s contact_id, assignee_id or team_id is empty for B (and not for A)', async () => {
      for (const filter of [`contact_id=${A.contact}`, `assignee_id=${A.agent}`, `team_id=${A.team}`]) {
        const inA = await send('get', `/v1/tickets?${filter}`, adminA.auth).expect(200);
        assert.ok(ids(inA).includes(A.ticket), `${filter} finds A's ticket for A`);
        const inB = await send('get', `/v1/tickets?${filter}`, adminB.auth).expect(200);
        assert.deepEqual(inB.body.items, [], filter);
        assert.equal(inB.body.total, 0);
        const archived = await send('get', `/v1/tickets?${filter}&archived=true`, adminB.auth).expect(200);
        assert.deepEqual(archived.body.items, []);
      }
    });

    it('GET /v1/tickets?q= never finds A\'s ticket by its subject, description or message text', async () => {
      for (const q of ['Zanzibarcharge', 'quixoticorder', 'Xylophonewords', 'marmalade']) {
        const inA = await send('get', `/v1/tickets?q=${q}`, adminA.auth).expect(200);
        assert.deepEqual(ids(inA), [A.ticket], `${q} finds A's ticket for A`);
        const inB = await send('get', `/v1/tickets?q=${q}`, adminB.auth).expect(200);
        assert.deepEqual(inB.body.items, [], q);
      }
    });

    it('GET /v1/tickets?q=#1 finds only B\'s ticket number 1, not A\'s', async () => {
      for (const q of ['%231', '1']) {
        const res = await send('get', `/v1/tickets?q=${q}`, adminB.auth).expect(200);
        assert.deepEqual(ids(res), [B.ticket], q);
      }
    });

    it('GET /v1/tickets/{B\'s ticket}/messages and /events show only B\'s rows', async () => {
      const msgs = await send('get', `/v1/tickets/${B.ticket}/messages?limit=200`, adminB.auth).expect(200);
      const msgRows = await db.knex('messages').where({ workspace_id: wsB, ticket_id: B.ticket }).pluck('id');
      assert.deepEqual(ids(msgs), msgRows.sort());
      assert.ok(ids(msgs).includes(B.reply));
      const events = await send('get', `/v1/tickets/${B.ticket}/events?limit=200`, adminB.auth).expect(200);
      assert.ok(events.body.items.length > 0);
      const eventRows = await db.knex('events').where({ workspace_id: wsB, ticket_id: B.ticket }).pluck('id');
      assert.deepEqual(ids(events), eventRows.sort());
      assert.ok(events.body.items.every((e: { ticket_id: string }) => e.ticket_id === B.ticket));
      const aEvents = await db.knex('events').where({ workspace_id: wsA }).pluck('id');
      assert.ok(ids(events).every((id: string) => !aEvents.includes(id)));
    });

    it('GET /v1/contacts lists only B\'s contacts; q and tag never reach A\'s', async () => {
      const res = await send('get', '/v1/contacts?limit=200', adminB.auth).expect(200);
      const rows = await db.knex('contacts').where({ workspace_id: wsB }).pluck('id');
      assert.deepEqual(ids(res), rows.sort());
      assert.ok(!ids(res).includes(A.contact));
      for (const filter of ['q=alice', `q=${A_USERNAME}`, 'q=tenant-a', 'tag=vip-a']) {
        const inA = await send('get', `/v1/contacts?${filter}`, adminA.auth).expect(200);
        assert.deepEqual(ids(inA), [A.contact], `${filter} finds A's contact for A`);
        const inB = await send('get', `/v1/contacts?${filter}`, adminB.auth).expect(200);
        assert.deepEqual(inB.body.items, [], filter);
      }
    });

    it('GET /v1/contacts/export streams only B\'s contacts', async () => {
      const res = await send('get', '/v1/contacts/export', adminB.auth).expect(200);
      assert.match(res.headers['content-type'], /^text\/csv/);
      const lines = res.text.trim().split(/\r?\n/);
      assert.match(lines[0], /^id,/);
      const exported = lines.slice(1).map((l) => l.split(',')[0]).sort();
      const rows = await db.knex('contacts').where({ workspace_id: wsB }).pluck('id');
      assert.deepEqual(exported, rows.sort());
      assert.ok(!res.text.includes(A.contact));
      assert.ok(!res.text.includes(A_USERNAME));
      assert.ok(!res.text.includes(A_EMAIL));
      for (const filter of ['q=alice', 'tag=vip-a']) {
        const filtered = await send('get', `/v1/contacts/export?${filter}`, adminB.auth).expect(200);
        assert.equal(filtered.text.trim().split(/\r?\n/).length, 1, `${filter}: header only`);
        const inA = await send('get', `/v1/contacts/export?${filter}`, adminA.auth).expect(200);
        assert.ok(inA.text.includes(A.contact), `${filter} exports A's contact for A`);
      }
    });
  });

  describe('contact upsert across workspaces', () => {
    it('POST /v1/contacts in B with A\'s contact\'s email creates a new contact in B (201) and leaves A\'s alone', async () => {
      const beforeA = await snapshot(wsA);
      const res = await send('post', '/v1/contacts', adminB.auth, { email: A_EMAIL.toUpperCase(), name: 'Someone in B', tags: ['b-tag'] }).expect(201);
      assert.notEqual(res.body.id, A.contact);
      assert.deepEqual(res.body.tags, ['b-tag']);
      const row = await db.knex('contacts').where({ id: res.body.id }).first();
      assert.equal(row.workspace_id, wsB);
      assert.deepEqual(await snapshot(wsA), beforeA);
      // The second time it matches B's contact, still never A's.
      const again = await send('post', '/v1/contacts', adminB.auth, { email: A_EMAIL }).expect(200);
      assert.equal(again.body.id, res.body.id);
      assert.deepEqual(await snapshot(wsA), beforeA);
    });

    it('POST /v1/contacts in B with A\'s contact\'s username and Telegram id creates a new contact in B', async () => {
      const beforeA = await snapshot(wsA);
      const res = await send('post', '/v1/contacts', adminB.auth, { username: `@${A_USERNAME}`, telegram_user_id: A_TELEGRAM_ID }).expect(201);
      assert.notEqual(res.body.id, A.contact);
      assert.equal((await db.knex('contacts').where({ id: res.body.id }).first()).workspace_id, wsB);
      assert.equal(res.body.email, null);
      assert.deepEqual(await snapshot(wsA), beforeA);
    });
  });
});

/** Every route of the tickets, contacts and messages modules, with its scope and a request that succeeds. */
interface RouteCase {
  method: Method;
  path: string;
  scope: Scope;
  status: number;
  body?: () => object;
}

let uniq = 0;
const ROUTES: RouteCase[] = [
  { method: 'post', path: '/v1/tickets', scope: 'write:tickets', status: 201 },
  { method: 'get', path: '/v1/tickets', scope: 'read:tickets', status: 200 },
  { method: 'get', path: '/v1/tickets/:id', scope: 'read:tickets', status: 200 },
  { method: 'patch', path: '/v1/tickets/:id', scope: 'write:tickets', status: 200, body: () => ({ priority: 'high' }) },
  { method: 'delete', path: '/v1/tickets/:id', scope: 'write:tickets', status: 200 },
  { method: 'post', path: '/v1/tickets/:id/status', scope: 'write:tickets', status: 200, body: () => ({ status: 'in_progress' }) },
  { method: 'post', path: '/v1/tickets/:id/assign', scope: 'write:tickets', status: 200 },
  { method: 'get', path: '/v1/tickets/:id/messages', scope: 'read:messages', status: 200 },
  { method: 'post', path: '/v1/tickets/:id/messages', scope: 'write:messages', status: 201, body: () => ({ text: 'Scoped reply' }) },
  { method: 'get', path: '/v1/tickets/:id/events', scope: 'read:tickets', status: 200 },
  { method: 'post', path: '/v1/contacts', scope: 'write:contacts', status: 201, body: () => ({ email: `scoped${++uniq}@example.com` }) },
  { method: 'get', path: '/v1/contacts', scope: 'read:contacts', status: 200 },
  { method: 'get', path: '/v1/contacts/export', scope: 'read:contacts', status: 200 },
  { method: 'get', path: '/v1/contacts/:id', scope: 'read:contacts', status: 200 },
  { method: 'patch', path: '/v1/contacts/:id', scope: 'write:contacts', status: 200, body: () => ({ name: `Renamed ${++uniq}` }) },
  { method: 'post', path: '/v1/contacts/:id/tags', scope: 'write:contacts', status: 200, body: () => ({ tags: ['vip'] }) },
  { method: 'delete', path: '/v1/contacts/:id/tags/:tag', scope: 'write:contacts', status: 200 },
  { method: 'post', path: '/v1/messages/send', scope: 'write:messages', status: 200 },
  { method: 'get', path: '/v1/messages/:id', scope: 'read:messages', status: 200 },
];

describe('scopes on the ticket, contact and message routes', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let ws: string;
  let admin: Key;
  let contactId: string;
  let agentId: string;
  let messageId: string;

  before(async () => {
    t = createTestApp(db.knex);
    ws = (await makeWorkspace(db.knex, t.services, { name: 'Scoped' })).id;
    admin = await makeKey(db.knex, t.services, { workspaceId: ws });
    const account = await makeAccount(db.knex, { workspaceId: ws, isDefault: true });
    contactId = (await makeReachableContact(db.knex, t.services, { workspaceId: ws, accountId: account.id })).id;
    agentId = (await makeAgent(db.knex, { workspaceId: ws })).id;
    const ticket = await t.request.post('/v1/tickets').set('Authorization', admin.auth).send({ contact_id: contactId, subject: 'Scoped' }).expect(201);
    messageId = (await t.request.post(`/v1/tickets/${ticket.body.id}/messages`).set('Authorization', admin.auth).send({ text: 'A note', internal: true }).expect(201)).body.id;
  });

  /** A fresh open ticket per call, so status moves and archiving always succeed. */
  async function urlFor(route: RouteCase): Promise<string> {
    let path = route.path.replace(':tag', 'vip');
    if (path.startsWith('/v1/tickets/:id')) {
      const ticket = await t.request.post('/v1/tickets').set('Authorization', admin.auth).send({ contact_id: contactId, subject: 'Fresh' }).expect(201);
      path = path.replace(':id', ticket.body.id);
    }
    return path.replace('/v1/contacts/:id', `/v1/contacts/${contactId}`).replace('/v1/messages/:id', `/v1/messages/${messageId}`);
  }

  function bodyFor(route: RouteCase): object | undefined {
    if (route.body) return route.body();
    if (route.path === '/v1/tickets') return { contact_id: contactId, subject: 'Scoped create' };
    if (route.path === '/v1/tickets/:id/assign') return { agent_id: agentId };
    if (route.path === '/v1/messages/send') return { to: contactId, text: 'Hello {first_name}' };
    return undefined;
  }

  async function call(route: RouteCase, auth: string) {
    const req = t.request[route.method](await urlFor(route));
    if (auth) req.set('Authorization', auth);
    const body = bodyFor(route);
    return body ? req.send(body) : req;
  }

  it('covers every route of the ticket, contact and message modules in this table', () => {
    const defined = [...ticketRoutes(t.services.tickets), ...assignmentRoutes(t.services.assignment), ...contactRoutes(t.services.contacts, t.deps.logger), ...messageRoutes(t.services.messages)]
      .map((r) => `${r.method} ${r.path} ${r.auth === 'key' ? r.scope ?? 'any key' : 'public'}`).sort();
    assert.deepEqual(ROUTES.map((r) => `${r.method} ${r.path} ${r.scope}`).sort(), defined);
  });

  for (const route of ROUTES) {
    const name = `${route.method.toUpperCase()} ${route.path}`;
    it(`${name} refuses a key holding every other scope with 403 forbidden naming ${route.scope}`, async () => {
      const key = await makeKey(db.knex, t.services, { workspaceId: ws, scopes: ALL_SCOPES.filter((s) => s !== route.scope) });
      const res = await call(route, key.auth);
      assert.equal(res.status, 403, JSON.stringify(res.body));
      assert.match(res.headers['content-type'], /^application\/problem\+json/);
      assert.equal(res.body.code, 'forbidden');
      assert.equal(res.body.required_scope, route.scope);
    });
    it(`${name} succeeds with a key holding only ${route.scope}`, async () => {
      const key = await makeKey(db.knex, t.services, { workspaceId: ws, scopes: [route.scope] });
      const res = await call(route, key.auth);
      assert.equal(res.status, route.status, JSON.stringify(res.body));
    });
    it(`${name} answers 401 without a key`, async () => {
      const res = await call(route, '');
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'unauthorized');
    });
  }

  it('documents every one of these routes in GET /v1/openapi.json with its scope', async () => {
    const doc = (await t.request.get('/v1/openapi.json').expect(200)).body;
    for (const route of ROUTES) {
      const path = route.path.replace(/:(\w+)/g, '{$1}');
      const op = doc.paths[path]?.[route.method];
      assert.ok(op, `${route.method.toUpperCase()} ${path} is documented`);
      assert.equal(op['x-required-scope'], route.scope, `${route.method.toUpperCase()} ${path}`);
      assert.ok(Array.isArray(op.security) && op.security.some((s: object) => 'bearerAuth' in s), `${route.method.toUpperCase()} ${path} needs a key`);
    }
  });
});
