/**
 * The ticket routes (SPEC §2.1, §4.2; brief of issue 3) against the real app and a real
 * PostgreSQL: create, numbering, list (filters, sorts, pages), get, patch, archive, status,
 * assign, timeline and Idempotency-Key on create. Each block works in a workspace of its own.
 */
import assert from 'node:assert/strict';
import type supertest from 'supertest';
import { inTransaction } from '../../src/db/transaction.js';
import { SYSTEM } from '../../src/kernel/actor.js';
import { STATUSES, type TicketStatus } from '../../src/tickets/ticket-status.js';
import { makeAccount, makeAgent, makeKey, makeReachableContact, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

type Res = supertest.Response;
type Key = Awaited<ReturnType<typeof makeKey>>;

interface Tenant {
  wsId: string;
  mode: 'live' | 'sandbox';
  key: Key;
  /** A contact of the workspace, for tickets that need one. */
  contactId: string;
}

const UNKNOWN = {
  ticket: 'tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  contact: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  team: 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  agent: 'ag_01ARZ3NDEKTSV4RRFFQ69G5FAV',
  account: 'acc_01ARZ3NDEKTSV4RRFFQ69G5FAV',
};

describe('tickets API', () => {
  const db = useTestDatabase();
  const clock = new FakeClock('2026-03-02T09:00:00.000Z');
  let t: TestApp;
  let seq = 0;

  before(() => {
    t = createTestApp(db.knex, { clock });
  });

  // ---------------------------------------------------------------------------------------
  // helpers

  async function tenant(opts: { sandbox?: boolean } = {}): Promise<Tenant> {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: opts.sandbox });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, rateLimitPerMinute: 1_000_000 });
    const { contact } = await t.services.contacts.upsert(db.knex, ws.id, { telegram_user_id: 700000 + ++seq, name: `Customer ${seq}` }, SYSTEM);
    return { wsId: ws.id, mode: ws.mode, key, contactId: contact.id };
  }

  const post = (k: Tenant, path: string, body: unknown, headers: Record<string, string> = {}) =>
    t.request.post(path).set('Authorization', k.key.auth).set(headers).send(body as object);
  const get = (k: Tenant, path: string) => t.request.get(path).set('Authorization', k.key.auth);
  const patch = (k: Tenant, path: string, body: unknown) => t.request.patch(path).set('Authorization', k.key.auth).send(body as object);
  const del = (k: Tenant, path: string) => t.request.delete(path).set('Authorization', k.key.auth);

  /** Creates a ticket (for the tenant's contact unless the body says otherwise); expects 201. */
  async function create(k: Tenant, body: Record<string, unknown> = {}): Promise<any> {
    const full = body.contact ? { subject: 'Help please', ...body } : { contact_id: k.contactId, subject: 'Help please', ...body };
    const res = await post(k, '/v1/tickets', full);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  function setStatus(k: Tenant, id: string, status: TicketStatus, note?: string): supertest.Test {
    return post(k, `/v1/tickets/${id}/status`, note === undefined ? { status } : { status, note });
  }

  /** Drives a new ticket along allowed moves to `status`. */
  async function ticketIn(k: Tenant, status: TicketStatus, body: Record<string, unknown> = {}): Promise<any> {
    const path: Record<TicketStatus, TicketStatus[]> = {
      open: [], in_progress: ['in_progress'], waiting_on_customer: ['waiting_on_customer'], resolved: ['resolved'], closed: ['resolved', 'closed'],
    };
    let ticket = await create(k, body);
    for (const s of path[status]) {
      const res = await setStatus(k, ticket.id, s);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      ticket = res.body;
    }
    return ticket;
  }

  function expectProblem(res: Res, status: number, code: string, detail?: RegExp): void {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    if (detail) assert.match(res.body.detail, detail);
  }

  const eventsOf = (ticketId: string, type?: string) => {
    const q = db.knex('events').where({ ticket_id: ticketId }).orderBy([{ column: 'created_at' }, { column: 'id' }]);
    return type ? q.andWhere({ type }) : q;
  };
  const count = async (table: string, where: Record<string, unknown>) => Number((await db.knex(table).where(where).count({ n: '*' }))[0].n);
  const ticketRow = (id: string) => db.knex('tickets').where({ id }).first();
  const qs = (params: Record<string, string | number | boolean>) => new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();

  async function list(k: Tenant, params: Record<string, string | number | boolean> = {}): Promise<any> {
    const res = await get(k, `/v1/tickets?${qs({ limit: 200, ...params })}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.total, res.body.items.length, 'one page holds them all');
    return res.body;
  }
  const idsOf = (page: { items: { id: string }[] }) => page.items.map((i) => i.id);

  // ---------------------------------------------------------------------------------------

  describe('POST /v1/tickets', () => {
    let k: Tenant;
    before(async () => { k = await tenant(); });

    describe('with contact_id', () => {
      it('creates an open ticket with defaults, a Location header and the contact embedded', async () => {
        clock.set('2026-03-02T10:00:00.000Z');
        const res = await post(k, '/v1/tickets', { contact_id: k.contactId, subject: '  Cannot log in  ' });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        const b = res.body;
        assert.match(b.id, /^tkt_[0-9A-Z]{26}$/);
        assert.equal(res.headers.location, `/v1/tickets/${b.id}`);
        assert.equal(b.subject, 'Cannot log in', 'the subject is trimmed');
        assert.equal(b.description, '');
        assert.equal(b.status, 'open');
        assert.equal(b.priority, 'normal');
        assert.equal(b.category, null);
        assert.deepEqual(b.tags, []);
        assert.deepEqual(b.custom_fields, {});
        assert.equal(b.contact.id, k.contactId);
        assert.equal(b.assignee_id, null);
        assert.equal(b.team_id, null);
        assert.equal(b.topic, null);
        assert.equal(b.created_at, '2026-03-02T10:00:00.000Z');
        assert.equal(b.updated_at, '2026-03-02T10:00:00.000Z');
        assert.equal(b.first_response_at, null);
        assert.equal(b.resolved_at, null);
        assert.equal(b.closed_at, null);
        assert.equal(b.reopened_count, 0);
        assert.equal(b.archived, false);
        assert.equal(b.sla.policy_id, null);
        const stored = await get(k, `/v1/tickets/${b.id}`).expect(200);
        assert.deepEqual(stored.body, b);
      });

      it('keeps every optional field, with tags normalised (trimmed, lower-cased, deduplicated)', async () => {
        const team = await makeTeam(db.knex, { workspaceId: k.wsId });
        const agent = await makeAgent(db.knex, { workspaceId: k.wsId });
        const account = await makeAccount(db.knex, { workspaceId: k.wsId, supportChatId: null });
        const b = await create(k, {
          subject: 'Refund', description: 'Charged twice', priority: 'urgent', category: 'billing',
          tags: [' VIP', 'vip', 'Billing '], custom_fields: { order_id: 'A-17', amount: 12.5, paid: true, gone: null },
          team_id: team.id, assignee_id: agent.id, account_id: account.id,
        });
        assert.equal(b.description, 'Charged twice');
        assert.equal(b.priority, 'urgent');
        assert.equal(b.category, 'billing');
        assert.deepEqual(b.tags, ['vip', 'billing']);
        assert.deepEqual(b.custom_fields, { order_id: 'A-17', amount: 12.5, paid: true });
        assert.equal(b.team_id, team.id);
        assert.equal(b.assignee_id, agent.id);
        assert.equal(b.account_id, account.id);
      });

      // The create answers from what it wrote (it does not read the row back): it must say
      // byte for byte what every later read says, keys in the same order included.
      it('answers exactly what GET /v1/tickets/{id} then shows, with an SLA policy, an assignee and custom fields', async () => {
        const own = await tenant();
        const team = await makeTeam(db.knex, { workspaceId: own.wsId });
        const agent = await makeAgent(db.knex, { workspaceId: own.wsId });
        const policy = await post(own, '/v1/sla-policies', {
          name: 'Team plan', team_id: team.id, targets: { high: { first_response_minutes: 30, next_response_minutes: 60, resolution_minutes: 480 } },
        });
        assert.equal(policy.status, 201, JSON.stringify(policy.body));
        for (const body of [
          { priority: 'high', team_id: team.id, custom_fields: { zeta: 1, a: 'x', order_id: 'A-17', bb: null, paid: true }, tags: ['Vip'] },
          { priority: 'high', team_id: team.id, assignee_id: agent.id, description: 'With an assignee', category: 'billing' },
          { priority: 'low' },
        ]) {
          const res = await post(own, '/v1/tickets', { contact_id: own.contactId, subject: 'Exact', ...body });
          assert.equal(res.status, 201, JSON.stringify(res.body));
          const stored = await get(own, `/v1/tickets/${res.body.id}`).expect(200);
          assert.equal(res.text, stored.text);
          if (body.team_id) assert.equal(res.body.sla.policy_id, policy.body.id);
        }
        // And the service's own Ticket (callers go on with it: assignment, escalation) is the row,
        // unpresented fields too (unassigned_since is the trigger's, sla_due_at 'infinity' is null).
        for (const body of [{ priority: 'high', team_id: team.id }, { priority: 'high', team_id: team.id, assignee_id: agent.id }, { priority: 'low' }]) {
          const made = await inTransaction(db.knex, (tx) => t.services.tickets.create(tx, { id: own.wsId, mode: own.mode }, { contact_id: own.contactId, subject: 'Row', ...body } as any, SYSTEM));
          const { ticket: row } = await t.services.tickets.get(db.knex, own.wsId, made.ticket.id);
          assert.deepEqual(made.ticket, row);
        }
      });

      it('accepts a 200-character subject', async () => {
        const b = await create(k, { subject: 's'.repeat(200) });
        assert.equal(b.subject.length, 200);
      });

      it('answers 404 for an unknown or another workspace\'s contact_id', async () => {
        const other = await tenant();
        for (const contactId of [UNKNOWN.contact, other.contactId]) {
          expectProblem(await post(k, '/v1/tickets', { contact_id: contactId, subject: 'x' }), 404, 'not_found', /^Contact not found$/);
        }
      });
    });

    describe('with an inline contact', () => {
      it('uses the existing contact matched on telegram_user_id, creating none', async () => {
        const existing = await t.services.contacts.upsert(db.knex, k.wsId, { telegram_user_id: 4242001, name: 'Known' }, SYSTEM);
        const before = await count('contacts', { workspace_id: k.wsId });
        const b = await create(k, { contact: { telegram_user_id: 4242001 } });
        assert.equal(b.contact.id, existing.contact.id);
        assert.equal(await count('contacts', { workspace_id: k.wsId }), before);
      });

      it('matches on username (with @, any case) and on email (any case)', async () => {
        const byName = await t.services.contacts.upsert(db.knex, k.wsId, { username: 'known_user' }, SYSTEM);
        const byMail = await t.services.contacts.upsert(db.knex, k.wsId, { email: 'known@example.com' }, SYSTEM);
        assert.equal((await create(k, { contact: { username: '@Known_User' } })).contact.id, byName.contact.id);
        assert.equal((await create(k, { contact: { email: 'KNOWN@Example.com' } })).contact.id, byMail.contact.id);
      });

      it('creates the contact when nothing matches, with a contact.created event', async () => {
        const before = await count('contacts', { workspace_id: k.wsId });
        const b = await create(k, { contact: { telegram_user_id: 4242002, username: 'brand_new', first_name: 'Ada', last_name: 'L' } });
        assert.equal(await count('contacts', { workspace_id: k.wsId }), before + 1);
        assert.equal(b.contact.telegram_user_id, 4242002);
        assert.equal(b.contact.username, 'brand_new');
        assert.equal(b.contact.first_name, 'Ada');
        assert.equal(await count('events', { contact_id: b.contact.id, type: 'contact.created' }), 1);
      });

      it('answers 409 conflict when the identities belong to two contacts, creating no ticket', async () => {
        const a = await t.services.contacts.upsert(db.knex, k.wsId, { telegram_user_id: 4242005 }, SYSTEM);
        const b = await t.services.contacts.upsert(db.knex, k.wsId, { email: 'split@example.com' }, SYSTEM);
        const before = await count('tickets', { workspace_id: k.wsId });
        const res = await post(k, '/v1/tickets', { contact: { telegram_user_id: 4242005, email: 'split@example.com' }, subject: 'x' });
        expectProblem(res, 409, 'conflict');
        assert.deepEqual([...res.body.contact_ids].sort(), [a.contact.id, b.contact.id].sort());
        assert.equal(await count('tickets', { workspace_id: k.wsId }), before);
      });

      it('does not match a contact of another workspace', async () => {
        const other = await tenant();
        await t.services.contacts.upsert(db.knex, other.wsId, { telegram_user_id: 4242003 }, SYSTEM);
        const b = await create(k, { contact: { telegram_user_id: 4242003 } });
        assert.equal((await db.knex('contacts').where({ id: b.contact.id }).first()).workspace_id, k.wsId);
      });

      it('leaves no contact behind when the create fails afterwards', async () => {
        const before = await count('contacts', { workspace_id: k.wsId });
        const res = await post(k, '/v1/tickets', { contact: { telegram_user_id: 4242004 }, subject: 'x', team_id: UNKNOWN.team });
        expectProblem(res, 404, 'not_found');
        assert.equal(await count('contacts', { workspace_id: k.wsId }), before);
      });
    });

    describe('bad input', () => {
      const cases: [string, (k: Tenant) => Record<string, unknown>, string?][] = [
        ['both contact_id and contact', (k) => ({ contact_id: k.contactId, contact: { telegram_user_id: 5 }, subject: 'x' }), 'contact_id'],
        ['neither contact_id nor contact', () => ({ subject: 'x' }), 'contact_id'],
        ['an empty inline contact', () => ({ contact: {}, subject: 'x' }), 'contact'],
        ['an unknown field', (k) => ({ contact_id: k.contactId, subject: 'x', status: 'resolved' }), 'status'],
        ['an unknown inline contact field', () => ({ contact: { telegram_user_id: 5, nickname: 'x' }, subject: 'x' }), 'contact.nickname'],
        ['no subject', (k) => ({ contact_id: k.contactId }), 'subject'],
        ['an empty subject', (k) => ({ contact_id: k.contactId, subject: '' }), 'subject'],
        ['a blank subject', (k) => ({ contact_id: k.contactId, subject: '   ' }), 'subject'],
        ['a 201-character subject', (k) => ({ contact_id: k.contactId, subject: 's'.repeat(201) }), 'subject'],
        ['a subject that is not a string', (k) => ({ contact_id: k.contactId, subject: 42 }), 'subject'],
        ['an unknown priority', (k) => ({ contact_id: k.contactId, subject: 'x', priority: 'critical' }), 'priority'],
        ['a tag with a space inside', (k) => ({ contact_id: k.contactId, subject: 'x', tags: ['two words'] }), 'tags[0]'],
        ['51 tags', (k) => ({ contact_id: k.contactId, subject: 'x', tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }), 'tags'],
        ['a nested custom field', (k) => ({ contact_id: k.contactId, subject: 'x', custom_fields: { a: { b: 1 } } }), 'custom_fields.a'],
        ['a malformed contact_id', () => ({ contact_id: 'ct_nope', subject: 'x' }), 'contact_id'],
        ['a malformed team_id', (k) => ({ contact_id: k.contactId, subject: 'x', team_id: 'team_nope' }), 'team_id'],
      ];
      for (const [what, body, field] of cases) {
        it(`answers 422 for ${what}, creating nothing`, async () => {
          const before = await count('tickets', { workspace_id: k.wsId });
          const res = await post(k, '/v1/tickets', body(k));
          expectProblem(res, 422, 'validation_error');
          if (field) assert.ok(res.body.details.some((d: { field: string }) => d.field === field), JSON.stringify(res.body.details));
          assert.equal(await count('tickets', { workspace_id: k.wsId }), before);
        });
      }
    });

    describe('references', () => {
      let other: Tenant;
      before(async () => { other = await tenant(); });

      it('answers 404 Team not found for an unknown or foreign team_id', async () => {
        const foreign = await makeTeam(db.knex, { workspaceId: other.wsId });
        for (const id of [UNKNOWN.team, foreign.id]) {
          expectProblem(await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', team_id: id }), 404, 'not_found', /^Team not found$/);
        }
      });

      it('answers 404 Agent not found for an unknown or foreign assignee_id', async () => {
        const foreign = await makeAgent(db.knex, { workspaceId: other.wsId });
        for (const id of [UNKNOWN.agent, foreign.id]) {
          expectProblem(await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', assignee_id: id }), 404, 'not_found', /^Agent not found$/);
        }
      });

      it('answers 404 Account not found for an unknown or foreign account_id', async () => {
        const foreign = await makeAccount(db.knex, { workspaceId: other.wsId });
        for (const id of [UNKNOWN.account, foreign.id]) {
          expectProblem(await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', account_id: id }), 404, 'not_found', /^Account not found$/);
        }
      });

      it('answers 409 conflict for an inactive assignee', async () => {
        const inactive = await makeAgent(db.knex, { workspaceId: k.wsId, active: false });
        const before = await count('tickets', { workspace_id: k.wsId });
        expectProblem(await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', assignee_id: inactive.id }), 409, 'conflict', /inactive/);
        assert.equal(await count('tickets', { workspace_id: k.wsId }), before);
      });
    });

    describe('the bot and the forum topic', () => {
      it('queues one create_topic send in a live workspace whose bot has a support chat', async () => {
        const live = await tenant();
        const account = await makeAccount(db.knex, { workspaceId: live.wsId, supportChatId: -1009876543210 });
        const b = await create(live, { account_id: account.id });
        const rows = await db.knex('telegram_sends').where({ ticket_id: b.id });
        assert.equal(rows.length, 1);
        assert.equal(rows[0].op, 'create_topic');
        assert.equal(rows[0].status, 'queued');
        assert.equal(rows[0].account_id, account.id);
        assert.equal(rows[0].workspace_id, live.wsId);
        assert.equal(Number(rows[0].chat_id), -1009876543210);
      });

      it('queues nothing when the bot has no support chat', async () => {
        const live = await tenant();
        const account = await makeAccount(db.knex, { workspaceId: live.wsId, supportChatId: null });
        const b = await create(live, { account_id: account.id });
        assert.equal(await count('telegram_sends', { ticket_id: b.id }), 0);
      });

      it('queues nothing when the workspace has no bot at all', async () => {
        const live = await tenant();
        const b = await create(live);
        assert.equal(b.account_id, null);
        assert.equal(await count('telegram_sends', { ticket_id: b.id }), 0);
      });

      it('never queues a send in a sandbox workspace', async () => {
        const sandbox = await tenant({ sandbox: true });
        const account = await makeAccount(db.knex, { workspaceId: sandbox.wsId, supportChatId: -1001111111111, isDefault: true });
        const explicit = await create(sandbox, { account_id: account.id });
        const byDefault = await create(sandbox);
        assert.equal(byDefault.account_id, account.id);
        assert.equal(await count('telegram_sends', { workspace_id: sandbox.wsId }), 0);
        assert.equal(explicit.account_id, account.id);
      });

      it('takes the bot the contact last wrote to, else the workspace default', async () => {
        const live = await tenant();
        const byDefault = await makeAccount(db.knex, { workspaceId: live.wsId, isDefault: true });
        const wroteTo = await makeAccount(db.knex, { workspaceId: live.wsId });
        const chatty = await makeReachableContact(db.knex, t.services, { workspaceId: live.wsId, accountId: wroteTo.id });
        assert.equal((await create(live, { contact_id: chatty.id })).account_id, wroteTo.id);
        assert.equal((await create(live)).account_id, byDefault.id);
        assert.equal((await create(live, { contact_id: chatty.id, account_id: byDefault.id })).account_id, byDefault.id, 'an explicit account_id wins');
      });
    });

    describe('events', () => {
      it('writes one ticket.created event with the ticket as payload, attributed to the key', async () => {
        const b = await create(k, { subject: 'Event me' });
        const rows = await eventsOf(b.id);
        assert.deepEqual(rows.map((r) => r.type), ['ticket.created']);
        const e = rows[0];
        assert.match(e.id, /^evt_/);
        assert.equal(e.workspace_id, k.wsId);
        assert.equal(e.contact_id, k.contactId);
        assert.equal(e.actor_type, 'api');
        assert.equal(e.actor_id, k.key.id);
        assert.equal(e.payload.id, b.id);
        assert.equal(e.payload.number, b.number);
        assert.equal(e.payload.subject, 'Event me');
        assert.equal(e.created_at.toISOString(), b.created_at);
      });

      it('writes no event for a refused create', async () => {
        const before = await count('events', { workspace_id: k.wsId });
        await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', team_id: UNKNOWN.team }).expect(404);
        await post(k, '/v1/tickets', { contact_id: k.contactId, subject: '' }).expect(422);
        assert.equal(await count('events', { workspace_id: k.wsId }), before);
      });
    });

    it('needs write:tickets', async () => {
      const readOnly = await makeKey(db.knex, t.services, { workspaceId: k.wsId, scopes: ['read:tickets'] });
      const res = await t.request.post('/v1/tickets').set('Authorization', readOnly.auth).send({ contact_id: k.contactId, subject: 'x' });
      expectProblem(res, 403, 'forbidden');
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('ticket numbers', () => {
    it('counts 1, 2, 3… per workspace, each workspace on its own', async () => {
      const a = await tenant();
      const b = await tenant();
      const numbers: [string, number][] = [];
      for (const k of [a, b, a, a, b, a]) numbers.push([k === a ? 'a' : 'b', (await create(k)).number]);
      assert.deepEqual(numbers, [['a', 1], ['b', 1], ['a', 2], ['a', 3], ['b', 2], ['a', 4]]);
    });

    it('hands out exactly 1..30 to 30 parallel creates', async () => {
      const k = await tenant();
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) =>
        post(k, '/v1/tickets', { contact_id: k.contactId, subject: `parallel ${i}` })));
      for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
      const numbers = results.map((r) => r.body.number).sort((x, y) => x - y);
      assert.deepEqual(numbers, Array.from({ length: 30 }, (_, i) => i + 1));
      const stored = await db.knex('tickets').where({ workspace_id: k.wsId }).orderBy('number').pluck('number');
      assert.deepEqual(stored, numbers);
    });

    it('numbers parallel creates for one new inline contact 1..10, sharing one contact', async () => {
      const k = await tenant();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
        post(k, '/v1/tickets', { contact: { telegram_user_id: 4343001, username: 'racing_customer' }, subject: `race ${i}` })));
      for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(results.map((r) => r.body.number).sort((x, y) => x - y), Array.from({ length: 10 }, (_, i) => i + 1));
      assert.equal(new Set(results.map((r) => r.body.contact.id)).size, 1);
      assert.equal(await count('contacts', { workspace_id: k.wsId, telegram_user_id: 4343001 }), 1);
    });

    it('does not burn a number on a refused create (404, 409, 422)', async () => {
      const k = await tenant();
      const inactive = await makeAgent(db.knex, { workspaceId: k.wsId, active: false });
      assert.equal((await create(k)).number, 1);
      await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', team_id: UNKNOWN.team }).expect(404);
      await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'x', assignee_id: inactive.id }).expect(409);
      await post(k, '/v1/tickets', { subject: 'x' }).expect(422);
      assert.equal((await create(k)).number, 2);
    });

    it('gives the number back when the insert fails after the number was taken', async () => {
      const k = await tenant();
      // A database refusal after the allocation: the request's transaction rolls back.
      await db.knex.raw(`
        CREATE OR REPLACE FUNCTION test_refuse_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.subject = 'refused by the database' THEN RAISE EXCEPTION 'test: ticket insert refused'; END IF;
          RETURN NEW;
        END $$;
        DROP TRIGGER IF EXISTS test_refuse_ticket ON tickets;
        CREATE TRIGGER test_refuse_ticket BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION test_refuse_ticket();
      `);
      try {
        assert.equal((await create(k)).number, 1);
        const res = await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'refused by the database' });
        expectProblem(res, 500, 'internal_error');
        assert.equal((await create(k)).number, 2);
        assert.equal((await db.knex('ticket_numbers').where({ workspace_id: k.wsId }).first()).last_number, 2);
      } finally {
        await db.knex.raw('DROP TRIGGER IF EXISTS test_refuse_ticket ON tickets; DROP FUNCTION IF EXISTS test_refuse_ticket()');
      }
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('Idempotency-Key on POST /v1/tickets', () => {
    it('replays the same ticket and creates only one', async () => {
      const k = await tenant();
      const body = { contact_id: k.contactId, subject: 'Only once' };
      const first = await post(k, '/v1/tickets', body, { 'Idempotency-Key': 'create-once-1' });
      const again = await post(k, '/v1/tickets', body, { 'Idempotency-Key': 'create-once-1' });
      assert.equal(first.status, 201);
      assert.equal(again.status, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.headers.location, first.headers.location);
      assert.deepEqual(again.body, first.body);
      assert.equal(await count('tickets', { workspace_id: k.wsId }), 1);
      assert.equal(await count('events', { ticket_id: first.body.id, type: 'ticket.created' }), 1);
      assert.equal((await create(k)).number, 2, 'the replay took no number');
    });

    it('refuses the same key with a different body', async () => {
      const k = await tenant();
      await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'A' }, { 'Idempotency-Key': 'create-once-2' }).expect(201);
      const res = await post(k, '/v1/tickets', { contact_id: k.contactId, subject: 'B' }, { 'Idempotency-Key': 'create-once-2' });
      expectProblem(res, 409, 'idempotency_key_reused');
      assert.equal(await count('tickets', { workspace_id: k.wsId }), 1);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('GET /v1/tickets filters', () => {
    let k: Tenant;
    let agent: { id: string };
    let team: { id: string };
    let contact2: string;
    /** t1…t6 by creation order, one minute apart. */
    const tk: Record<string, any> = {};

    before(async () => {
      k = await tenant();
      agent = await makeAgent(db.knex, { workspaceId: k.wsId });
      team = await makeTeam(db.knex, { workspaceId: k.wsId });
      contact2 = (await t.services.contacts.upsert(db.knex, k.wsId, { email: 'second@example.com' }, SYSTEM)).contact.id;
      clock.set('2026-04-01T08:00:00.000Z');
      const next = () => clock.advance(60_000);
      tk.t1 = await create(k, { subject: 'Refund for order', priority: 'urgent', tags: ['billing', 'VIP'], assignee_id: agent.id, team_id: team.id });
      next();
      tk.t2 = await create(k, { subject: 'Login broken', description: 'cannot sign in with my passkey', priority: 'low', tags: ['auth'], contact_id: contact2 });
      next();
      tk.t3 = await create(k, { subject: 'Feature request', priority: 'high', team_id: team.id });
      next();
      tk.t4 = await create(k, { subject: 'Invoice copy', priority: 'normal' });
      next();
      tk.t5 = await create(k, { subject: 'Old archived thing', priority: 'normal' });
      next();
      tk.t6 = await create(k, { subject: 'Closed thing', priority: 'high' });
      next();
      await setStatus(k, tk.t2.id, 'in_progress').expect(200);
      await setStatus(k, tk.t3.id, 'waiting_on_customer').expect(200);
      await setStatus(k, tk.t4.id, 'resolved').expect(200);
      await setStatus(k, tk.t6.id, 'resolved').expect(200);
      await setStatus(k, tk.t6.id, 'closed').expect(200);
      await del(k, `/v1/tickets/${tk.t5.id}`).expect(200);
      await post(k, `/v1/tickets/${tk.t3.id}/messages`, { text: 'customer mentions a zebra crossing', internal: true }).expect(201);
      // A customer message on t4 (resolved) would reopen it: put it on t1 instead.
      await t.services.messages.recordInbound(db.knex, { id: k.wsId, mode: 'live' }, tk.t1.id, { text: 'my parcel is a giraffe', accountId: null, chatId: null });
      // Another workspace's tickets share the words but never show up.
      const other = await tenant();
      await create(other, { subject: 'Refund for order', tags: ['vip'] });
    });

    const ids = (...names: string[]) => names.map((n) => tk[n].id);

    it('lists the workspace\'s tickets, newest first, without archived ones by default', async () => {
      assert.deepEqual(idsOf(await list(k)), ids('t6', 't4', 't3', 't2', 't1'));
      assert.deepEqual(idsOf(await list(k, { archived: false })), ids('t6', 't4', 't3', 't2', 't1'));
    });

    it('lists only archived tickets with archived=true', async () => {
      const page = await list(k, { archived: true });
      assert.deepEqual(idsOf(page), ids('t5'));
      assert.equal(page.items[0].archived, true);
    });

    it('filters by one status or a comma list of statuses', async () => {
      assert.deepEqual(idsOf(await list(k, { status: 'open' })), ids('t1'));
      assert.deepEqual(idsOf(await list(k, { status: 'open,in_progress' })), ids('t2', 't1'));
      assert.deepEqual(idsOf(await list(k, { status: 'resolved,closed,waiting_on_customer' })), ids('t6', 't4', 't3'));
      assert.deepEqual(idsOf(await list(k, { status: 'open,open' })), ids('t1'));
    });

    it('filters by one priority or a comma list of priorities', async () => {
      assert.deepEqual(idsOf(await list(k, { priority: 'urgent' })), ids('t1'));
      assert.deepEqual(idsOf(await list(k, { priority: 'urgent,low' })), ids('t2', 't1'));
      assert.deepEqual(idsOf(await list(k, { priority: 'high' })), ids('t6', 't3'));
    });

    it('filters by assignee_id, or none for unassigned', async () => {
      assert.deepEqual(idsOf(await list(k, { assignee_id: agent.id })), ids('t1'));
      assert.deepEqual(idsOf(await list(k, { assignee_id: 'none' })), ids('t6', 't4', 't3', 't2'));
      assert.deepEqual(idsOf(await list(k, { assignee_id: UNKNOWN.agent })), []);
    });

    it('filters by team_id, or none for no team', async () => {
      assert.deepEqual(idsOf(await list(k, { team_id: team.id })), ids('t3', 't1'));
      assert.deepEqual(idsOf(await list(k, { team_id: 'none' })), ids('t6', 't4', 't2'));
    });

    it('filters by contact_id', async () => {
      assert.deepEqual(idsOf(await list(k, { contact_id: contact2 })), ids('t2'));
      assert.deepEqual(idsOf(await list(k, { contact_id: k.contactId })), ids('t6', 't4', 't3', 't1'));
    });

    it('filters by tag, case-insensitively', async () => {
      assert.deepEqual(idsOf(await list(k, { tag: 'vip' })), ids('t1'));
      assert.deepEqual(idsOf(await list(k, { tag: 'VIP' })), ids('t1'));
      assert.deepEqual(idsOf(await list(k, { tag: 'auth' })), ids('t2'));
      assert.deepEqual(idsOf(await list(k, { tag: 'nothing' })), []);
    });

    it('filters by created_after (inclusive) and created_before (exclusive)', async () => {
      const at = tk.t3.created_at;
      assert.deepEqual(idsOf(await list(k, { created_after: at })), ids('t6', 't4', 't3'));
      assert.deepEqual(idsOf(await list(k, { created_before: at })), ids('t2', 't1'));
      assert.deepEqual(idsOf(await list(k, { created_after: tk.t2.created_at, created_before: tk.t4.created_at })), ids('t3', 't2'));
    });

    it('accepts timestamps with an offset', async () => {
      // 09:02 UTC written as 11:02 at +02:00: t3's created_at.
      assert.equal(tk.t3.created_at, '2026-04-01T08:02:00.000Z');
      assert.deepEqual(idsOf(await list(k, { created_after: '2026-04-01T10:02:00+02:00' })), ids('t6', 't4', 't3'));
    });

    it('filters by updated_after (inclusive)', async () => {
      clock.set('2026-04-02T00:00:00.000Z');
      await patch(k, `/v1/tickets/${tk.t2.id}`, { category: 'auth' }).expect(200);
      assert.deepEqual(idsOf(await list(k, { updated_after: '2026-04-02T00:00:00.000Z' })), ids('t2'));
      assert.deepEqual(idsOf(await list(k, { updated_after: '2026-04-02T00:00:00.001Z' })), []);
    });

    it('searches the subject, the description and message text with q', async () => {
      assert.deepEqual(idsOf(await list(k, { q: 'refund' })), ids('t1'));
      assert.deepEqual(idsOf(await list(k, { q: 'REFUND' })), ids('t1'), 'case-insensitive');
      assert.deepEqual(idsOf(await list(k, { q: 'passkey' })), ids('t2'), 'description');
      assert.deepEqual(idsOf(await list(k, { q: 'zebra' })), ids('t3'), 'an internal note');
      assert.deepEqual(idsOf(await list(k, { q: 'giraffe' })), ids('t1'), 'a customer message');
      assert.deepEqual(idsOf(await list(k, { q: 'thing' })), ids('t6'), 'archived tickets stay hidden');
      assert.deepEqual(idsOf(await list(k, { q: 'nonexistentword' })), []);
    });

    it('treats search syntax and punctuation in q as plain input, never as an error', async () => {
      for (const q of ['"refund', 'refund & !', '(', "o'brien", 'a:*', '\\', '!!!', '-refund', 'refund OR login', '#', '#0', '#99999999999']) {
        const res = await get(k, `/v1/tickets?${qs({ q })}`);
        assert.equal(res.status, 200, `${q}: ${JSON.stringify(res.body)}`);
      }
      assert.deepEqual(idsOf(await list(k, { q: '"Refund for"' })), ids('t1'), 'a quoted phrase');
    });

    it('finds a ticket by its number with q=#N or q=N', async () => {
      assert.deepEqual(idsOf(await list(k, { q: `#${tk.t4.number}` })), ids('t4'));
      assert.deepEqual(idsOf(await list(k, { q: String(tk.t4.number) })), ids('t4'));
      assert.deepEqual(idsOf(await list(k, { q: '#999' })), []);
    });

    it('combines filters (all must hold) and counts the matches in total', async () => {
      const res = await get(k, `/v1/tickets?${qs({ status: 'open,in_progress,waiting_on_customer', team_id: team.id, limit: 1 })}`).expect(200);
      assert.equal(res.body.total, 2);
      assert.deepEqual(idsOf(res.body), ids('t3'));
      assert.equal(res.body.has_more, true);
      assert.deepEqual(idsOf(await list(k, { status: 'open,in_progress', priority: 'low' })), ids('t2'));
      assert.deepEqual(idsOf(await list(k, { q: 'refund', status: 'closed' })), []);
    });

    it('presents every item like GET /v1/tickets/{id}', async () => {
      const page = await list(k);
      for (const item of page.items) assert.deepEqual(item, (await get(k, `/v1/tickets/${item.id}`).expect(200)).body);
    });

    describe('bad query values', () => {
      const bad: [string, Record<string, string>][] = [
        ['an unknown status', { status: 'pending' }],
        ['a trailing comma in status', { status: 'open,' }],
        ['a space in the status list', { status: 'open, closed' }],
        ['an unknown priority', { priority: 'critical' }],
        ['a malformed assignee_id', { assignee_id: 'bob' }],
        ['an agent id as team_id', { team_id: UNKNOWN.agent }],
        ['a malformed contact_id', { contact_id: 'ct_123' }],
        ['a tag with a comma', { tag: 'a,b' }],
        ['created_after that is not a timestamp', { created_after: 'yesterday' }],
        ['created_before that is not a date', { created_before: '2026-13-45' }],
        ['updated_after without a time', { updated_after: '2026-04-01' }],
        ['an empty q', { q: '' }],
        ['a q of 201 characters', { q: 'x'.repeat(201) }],
        ['archived that is not a boolean', { archived: 'maybe' }],
        ['an unknown sort', { sort: 'newest' }],
        ['limit 0', { limit: '0' }],
        ['limit 201', { limit: '201' }],
        ['a negative offset', { offset: '-1' }],
        ['a garbage cursor', { cursor: 'not-a-cursor' }],
        ['cursor and offset together', { cursor: 'abc', offset: '2' }],
        ['an unknown parameter', { assignee: 'none' }],
      ];
      for (const [what, params] of bad) {
        it(`answers 422 for ${what}`, async () => {
          expectProblem(await get(k, `/v1/tickets?${qs(params)}`), 422, 'validation_error');
        });
      }

      it('answers 422 for a cursor made under another sort', async () => {
        const page = await get(k, '/v1/tickets?limit=1&sort=created_at').expect(200);
        assert.ok(page.body.next_cursor);
        expectProblem(await get(k, `/v1/tickets?${qs({ cursor: page.body.next_cursor, sort: 'priority' })}`), 422, 'validation_error');
      });
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('GET /v1/tickets sorts and pages', () => {
    let k: Tenant;
    /** In creation order; pairs share a created_at to exercise the id tie-break. */
    const made: any[] = [];
    const PRIORITIES = ['normal', 'urgent', 'low', 'urgent', 'high', 'normal', 'low', 'high', 'normal'] as const;

    before(async () => {
      k = await tenant();
      clock.set('2026-05-01T08:00:00.000Z');
      for (let i = 0; i < PRIORITIES.length; i++) {
        if (i % 2 === 0) clock.advance(60_000);
        made.push(await create(k, { subject: `sort ${i}`, priority: PRIORITIES[i] }));
      }
      // No SLA policies yet (SPEC §5): set deadlines on three tickets directly, one tie.
      const due = (i: number, at: string) => db.knex('tickets').where({ id: made[i].id }).update({ sla_due_at: at });
      await due(6, '2026-05-02T10:00:00.000Z');
      await due(2, '2026-05-02T09:00:00.000Z');
      await due(4, '2026-05-02T10:00:00.000Z');
    });

    const byIndex = (...is: number[]) => is.map((i) => made[i].id);
    const expected: Record<string, () => string[]> = {
      '-created_at': () => byIndex(8, 7, 6, 5, 4, 3, 2, 1, 0),
      created_at: () => byIndex(0, 1, 2, 3, 4, 5, 6, 7, 8),
      priority: () => byIndex(1, 3, 4, 7, 0, 5, 8, 2, 6),
      sla_due: () => byIndex(2, 4, 6, 0, 1, 3, 5, 7, 8),
    };

    it('sorts newest first by default', async () => {
      assert.deepEqual(idsOf(await list(k)), expected['-created_at']());
    });

    for (const sort of Object.keys(expected)) {
      describe(`sort=${sort}`, () => {
        it('orders the tickets as specified', async () => {
          assert.deepEqual(idsOf(await list(k, { sort })), expected[sort]());
        });

        it('walks every ticket once with offset pages', async () => {
          const seen: string[] = [];
          for (let offset = 0; ; offset += 2) {
            const page = (await get(k, `/v1/tickets?${qs({ sort, limit: 2, offset })}`).expect(200)).body;
            assert.equal(page.total, made.length);
            assert.equal(page.offset, offset);
            seen.push(...idsOf(page));
            if (!page.has_more) break;
          }
          assert.deepEqual(seen, expected[sort]());
        });

        it('walks every ticket once with cursor pages', async () => {
          const seen: string[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const params: Record<string, string | number> = { sort, limit: 2 };
            if (cursor) params.cursor = cursor;
            const page: any = (await get(k, `/v1/tickets?${qs(params)}`).expect(200)).body;
            seen.push(...idsOf(page));
            assert.equal(page.has_more, page.next_cursor !== null);
            cursor = page.next_cursor;
            assert.ok(++pages <= made.length, 'the walk ends');
          } while (cursor);
          assert.deepEqual(seen, expected[sort]());
          assert.equal(new Set(seen).size, made.length);
        });
      });
    }

    it('keeps filters on every cursor page', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const params: Record<string, string | number> = { sort: 'priority', priority: 'urgent,high', limit: 1 };
        if (cursor) params.cursor = cursor;
        const page: any = (await get(k, `/v1/tickets?${qs(params)}`).expect(200)).body;
        assert.equal(page.total, 4);
        seen.push(...idsOf(page));
        cursor = page.next_cursor;
      } while (cursor);
      assert.deepEqual(seen, byIndex(1, 3, 4, 7));
    });

    it('answers an empty last page past the end', async () => {
      const page = (await get(k, '/v1/tickets?offset=100').expect(200)).body;
      assert.deepEqual(page.items, []);
      assert.equal(page.total, made.length);
      assert.equal(page.has_more, false);
      assert.equal(page.next_cursor, null);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('GET /v1/tickets/{id}', () => {
    let k: Tenant;
    before(async () => { k = await tenant(); });

    it('returns the ticket with its contact', async () => {
      const made = await create(k, { subject: 'Show me' });
      const res = await get(k, `/v1/tickets/${made.id}`).expect(200);
      assert.deepEqual(res.body, made);
      assert.equal(res.body.contact.id, k.contactId);
    });

    it('answers 404 Ticket not found for unknown, malformed and foreign ids alike', async () => {
      const other = await tenant();
      const foreign = await create(other);
      for (const id of [UNKNOWN.ticket, 'tkt_nope', foreign.id]) {
        expectProblem(await get(k, `/v1/tickets/${id}`), 404, 'not_found', /^Ticket not found$/);
      }
    });

    it('shows an archived ticket', async () => {
      const made = await create(k);
      await del(k, `/v1/tickets/${made.id}`).expect(200);
      assert.equal((await get(k, `/v1/tickets/${made.id}`).expect(200)).body.archived, true);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('PATCH /v1/tickets/{id}', () => {
    let k: Tenant;
    before(async () => { k = await tenant(); });

    /** Patches, expects 200, and returns the ticket plus the ticket.updated events it wrote. */
    async function patched(id: string, body: Record<string, unknown>): Promise<{ ticket: any; events: any[] }> {
      const before = (await eventsOf(id, 'ticket.updated')).length;
      const res = await patch(k, `/v1/tickets/${id}`, body);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return { ticket: res.body, events: (await eventsOf(id, 'ticket.updated')).slice(before) };
    }

    it('changes the subject (trimmed), with one ticket.updated event', async () => {
      const made = await create(k, { subject: 'Old subject' });
      clock.advance(60_000);
      const { ticket, events } = await patched(made.id, { subject: '  New subject ' });
      assert.equal(ticket.subject, 'New subject');
      assert.equal(ticket.updated_at, clock.now().toISOString());
      assert.equal(events.length, 1);
      assert.deepEqual(events[0].detail, { changes: { subject: { from: 'Old subject', to: 'New subject' } } });
      assert.equal(events[0].actor_type, 'api');
      assert.equal(events[0].actor_id, k.key.id);
      assert.equal(events[0].payload.subject, 'New subject');
    });

    it('changes the description', async () => {
      const made = await create(k, { description: 'before' });
      const { ticket, events } = await patched(made.id, { description: 'after' });
      assert.equal(ticket.description, 'after');
      assert.deepEqual(events[0].detail.changes, { description: { from: 'before', to: 'after' } });
    });

    it('changes the priority', async () => {
      const made = await create(k);
      const { ticket, events } = await patched(made.id, { priority: 'high' });
      assert.equal(ticket.priority, 'high');
      assert.deepEqual(events[0].detail.changes, { priority: { from: 'normal', to: 'high' } });
    });

    it('sets and clears the category', async () => {
      const made = await create(k);
      assert.equal((await patched(made.id, { category: 'billing' })).ticket.category, 'billing');
      const { ticket, events } = await patched(made.id, { category: null });
      assert.equal(ticket.category, null);
      assert.deepEqual(events[0].detail.changes, { category: { from: 'billing', to: null } });
    });

    it('replaces the tags, normalised', async () => {
      const made = await create(k, { tags: ['a', 'b'] });
      const { ticket, events } = await patched(made.id, { tags: ['C', ' c ', 'b'] });
      assert.deepEqual(ticket.tags, ['c', 'b']);
      assert.deepEqual(events[0].detail.changes, { tags: { from: ['a', 'b'], to: ['c', 'b'] } });
      assert.deepEqual((await patched(made.id, { tags: [] })).ticket.tags, []);
    });

    it('merges custom_fields: sets, overwrites and removes with null', async () => {
      const made = await create(k, { custom_fields: { keep: 1, change: 'old', drop: true } });
      const { ticket, events } = await patched(made.id, { custom_fields: { change: 'new', drop: null, add: false } });
      assert.deepEqual(ticket.custom_fields, { keep: 1, change: 'new', add: false });
      assert.deepEqual(events[0].detail.changes, {
        custom_fields: { from: { keep: 1, change: 'old', drop: true }, to: { keep: 1, change: 'new', add: false } },
      });
    });

    it('refuses custom fields that would exceed 50 in all, changing nothing', async () => {
      const fields = (from: number, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${from + i}`, i]));
      const made = await create(k, { custom_fields: fields(0, 40) });
      const res = await patch(k, `/v1/tickets/${made.id}`, { custom_fields: fields(40, 11), subject: 'should not stick' });
      expectProblem(res, 422, 'validation_error');
      const row = await ticketRow(made.id);
      assert.equal(Object.keys(row.custom_fields).length, 40);
      assert.equal(row.subject, made.subject);
      // Exactly 50 is fine, and removing makes room.
      assert.equal(Object.keys((await patched(made.id, { custom_fields: fields(40, 10) })).ticket.custom_fields).length, 50);
      assert.equal(Object.keys((await patched(made.id, { custom_fields: { f0: null, f50: 'x' } })).ticket.custom_fields).length, 50);
    });

    it('sets the team, and null clears it', async () => {
      const team = await makeTeam(db.knex, { workspaceId: k.wsId });
      const made = await create(k);
      assert.equal((await patched(made.id, { team_id: team.id })).ticket.team_id, team.id);
      const { ticket, events } = await patched(made.id, { team_id: null });
      assert.equal(ticket.team_id, null);
      assert.deepEqual(events[0].detail.changes, { team_id: { from: team.id, to: null } });
    });

    it('answers 404 for an unknown or foreign team, changing nothing', async () => {
      const other = await tenant();
      const foreign = await makeTeam(db.knex, { workspaceId: other.wsId });
      const made = await create(k);
      for (const id of [UNKNOWN.team, foreign.id]) {
        expectProblem(await patch(k, `/v1/tickets/${made.id}`, { team_id: id, subject: 'nope' }), 404, 'not_found', /^Team not found$/);
      }
      assert.equal((await ticketRow(made.id)).subject, made.subject);
      assert.equal((await eventsOf(made.id, 'ticket.updated')).length, 0);
    });

    it('writes one event listing every field a multi-field patch changed', async () => {
      const made = await create(k, { subject: 'multi', priority: 'low' });
      const { events } = await patched(made.id, { subject: 'multi', priority: 'urgent', description: 'now described' });
      assert.equal(events.length, 1);
      assert.deepEqual(events[0].detail.changes, {
        priority: { from: 'low', to: 'urgent' },
        description: { from: '', to: 'now described' },
      });
    });

    it('writes no event and keeps updated_at for a patch that changes nothing', async () => {
      const made = await create(k, { subject: 'Same', priority: 'high', tags: ['x'], custom_fields: { a: 1 } });
      clock.advance(60_000);
      const { ticket, events } = await patched(made.id, { subject: ' Same ', priority: 'high', tags: ['X'], custom_fields: { a: 1, gone: null }, archived: false });
      assert.equal(events.length, 0);
      assert.equal(ticket.updated_at, made.updated_at);
      assert.deepEqual(ticket, made);
    });

    it('archives with archived: true and restores with archived: false', async () => {
      const made = await create(k);
      const archived = await patched(made.id, { archived: true });
      assert.equal(archived.ticket.archived, true);
      assert.deepEqual(archived.events[0].detail.changes, { archived: { from: false, to: true } });
      const restored = await patched(made.id, { archived: false });
      assert.equal(restored.ticket.archived, false);
      assert.deepEqual(restored.events[0].detail.changes, { archived: { from: true, to: false } });
      assert.ok((await list(k)).items.some((i: { id: string }) => i.id === made.id));
    });

    describe('bad input', () => {
      const bad: [string, Record<string, unknown>][] = [
        ['an empty body', {}],
        ['status (use POST /status)', { status: 'resolved' }],
        ['assignee_id (use POST /assign)', { assignee_id: UNKNOWN.agent }],
        ['an unknown field', { colour: 'red' }],
        ['an empty subject', { subject: '' }],
        ['a blank subject', { subject: '  ' }],
        ['a 201-character subject', { subject: 's'.repeat(201) }],
        ['a null subject', { subject: null }],
        ['an unknown priority', { priority: 'critical' }],
        ['an empty category', { category: '' }],
        ['a tag with a comma', { tags: ['a,b'] }],
        ['a custom field name with capitals', { custom_fields: { Plan: 'pro' } }],
        ['an array custom field', { custom_fields: { plan: ['pro'] } }],
        ['a malformed team_id', { team_id: 'team_x' }],
        ['a non-boolean archived', { archived: 'yes' }],
      ];
      let target: any;
      before(async () => { target = await create(k, { subject: 'untouched' }); });
      for (const [what, body] of bad) {
        it(`answers 422 for ${what}`, async () => {
          expectProblem(await patch(k, `/v1/tickets/${target.id}`, body), 422, 'validation_error');
          assert.equal((await ticketRow(target.id)).subject, 'untouched');
        });
      }

      it('answers 404 for an unknown or foreign ticket', async () => {
        const other = await tenant();
        const foreign = await create(other, { subject: 'theirs' });
        for (const id of [UNKNOWN.ticket, foreign.id]) expectProblem(await patch(k, `/v1/tickets/${id}`, { subject: 'mine' }), 404, 'not_found');
        assert.equal((await ticketRow(foreign.id)).subject, 'theirs');
      });
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('DELETE /v1/tickets/{id} (archive)', () => {
    let k: Tenant;
    before(async () => { k = await tenant(); });

    it('archives: 200 with archived true, hidden from the default list, shown with archived=true', async () => {
      const made = await create(k);
      const res = await del(k, `/v1/tickets/${made.id}`).expect(200);
      assert.equal(res.body.id, made.id);
      assert.equal(res.body.archived, true);
      assert.ok(!idsOf(await list(k)).includes(made.id));
      assert.ok(idsOf(await list(k, { archived: true })).includes(made.id));
      assert.notEqual((await ticketRow(made.id)).archived_at, null);
    });

    it('answers 200 again for an archived ticket, with one event in all', async () => {
      const made = await create(k);
      const first = await del(k, `/v1/tickets/${made.id}`).expect(200);
      clock.advance(60_000);
      const second = await del(k, `/v1/tickets/${made.id}`).expect(200);
      assert.deepEqual(second.body, first.body);
      const events = await eventsOf(made.id, 'ticket.updated');
      assert.equal(events.length, 1);
      assert.deepEqual(events[0].detail, { changes: { archived: { from: false, to: true } } });
    });

    it('keeps the ticket and its status', async () => {
      const made = await ticketIn(k, 'in_progress');
      const res = await del(k, `/v1/tickets/${made.id}`).expect(200);
      assert.equal(res.body.status, 'in_progress');
      assert.equal(await count('tickets', { id: made.id }), 1);
    });

    it('answers 404 for an unknown or foreign ticket, archiving nothing', async () => {
      const other = await tenant();
      const foreign = await create(other);
      for (const id of [UNKNOWN.ticket, foreign.id]) expectProblem(await del(k, `/v1/tickets/${id}`), 404, 'not_found');
      assert.equal((await ticketRow(foreign.id)).archived_at, null);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('POST /v1/tickets/{id}/status', () => {
    let k: Tenant;
    before(async () => { k = await tenant(); });

    describe('every from/to pair over HTTP', () => {
      const allowed: Record<TicketStatus, TicketStatus[]> = {
        open: ['in_progress', 'waiting_on_customer', 'resolved'],
        in_progress: ['open', 'waiting_on_customer', 'resolved'],
        waiting_on_customer: ['open', 'in_progress', 'resolved'],
        resolved: ['closed', 'open'],
        closed: [],
      };
      for (const from of STATUSES) {
        for (const to of STATUSES) {
          const ok = allowed[from].includes(to);
          it(`${ok ? 'moves' : 'refuses with 409 invalid_transition'} ${from} → ${to}`, async () => {
            const ticket = await ticketIn(k, from);
            const eventsBefore = (await eventsOf(ticket.id)).length;
            const res = await setStatus(k, ticket.id, to);
            if (ok) {
              assert.equal(res.status, 200, JSON.stringify(res.body));
              assert.equal(res.body.status, to);
            } else {
              expectProblem(res, 409, 'invalid_transition');
              assert.equal(res.body.from, from);
              assert.equal(res.body.to, to);
              assert.equal((await ticketRow(ticket.id)).status, from);
              assert.equal((await eventsOf(ticket.id)).length, eventsBefore, 'a refused move writes no event');
            }
          });
        }
      }
    });

    it('sets resolved_at on resolve and closed_at on close, keeping resolved_at', async () => {
      const made = await create(k);
      clock.set('2026-06-01T10:00:00.000Z');
      const resolved = (await setStatus(k, made.id, 'resolved').expect(200)).body;
      assert.equal(resolved.resolved_at, '2026-06-01T10:00:00.000Z');
      assert.equal(resolved.closed_at, null);
      assert.equal(resolved.updated_at, '2026-06-01T10:00:00.000Z');
      clock.set('2026-06-02T10:00:00.000Z');
      const closed = (await setStatus(k, made.id, 'closed').expect(200)).body;
      assert.equal(closed.closed_at, '2026-06-02T10:00:00.000Z');
      assert.equal(closed.resolved_at, '2026-06-01T10:00:00.000Z');
    });

    it('counts reopens and clears resolved_at on each', async () => {
      const made = await create(k);
      let ticket = made;
      for (let i = 1; i <= 2; i++) {
        await setStatus(k, made.id, 'resolved').expect(200);
        ticket = (await setStatus(k, made.id, 'open').expect(200)).body;
        assert.equal(ticket.reopened_count, i);
        assert.equal(ticket.resolved_at, null);
      }
      ticket = (await setStatus(k, made.id, 'in_progress').expect(200)).body;
      assert.equal(ticket.reopened_count, 2, 'other moves do not count');
    });

    it('writes ticket.status_changed for every move, plus ticket.resolved / closed / reopened', async () => {
      const made = await create(k);
      const moves: [TicketStatus, string[]][] = [
        ['in_progress', ['ticket.status_changed']],
        ['waiting_on_customer', ['ticket.status_changed']],
        ['open', ['ticket.status_changed']],
        ['resolved', ['ticket.status_changed', 'ticket.resolved']],
        ['open', ['ticket.status_changed', 'ticket.reopened']],
        ['resolved', ['ticket.status_changed', 'ticket.resolved']],
        ['closed', ['ticket.status_changed', 'ticket.closed']],
      ];
      let from: TicketStatus = 'open';
      for (const [to, types] of moves) {
        const before = (await eventsOf(made.id)).length;
        await setStatus(k, made.id, to).expect(200);
        const written = (await eventsOf(made.id)).slice(before);
        assert.deepEqual(written.map((e) => e.type), types, `${from} → ${to}`);
        for (const e of written) {
          assert.deepEqual(e.detail, { from, to, reason: 'api' });
          assert.equal(e.actor_type, 'api');
          assert.equal(e.actor_id, k.key.id);
          assert.equal(e.payload.status, to);
        }
        from = to;
      }
    });

    it('posts a note as an internal message and keeps it in the event', async () => {
      const made = await create(k);
      const res = await setStatus(k, made.id, 'resolved', 'Refund sent by bank transfer');
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [changed] = await eventsOf(made.id, 'ticket.status_changed');
      assert.deepEqual(changed.detail, { from: 'open', to: 'resolved', reason: 'api', note: 'Refund sent by bank transfer' });
      const messages = (await get(k, `/v1/tickets/${made.id}/messages`).expect(200)).body.items;
      assert.equal(messages.length, 1);
      assert.equal(messages[0].text, 'Refund sent by bank transfer');
      assert.equal(messages[0].visibility, 'internal');
      assert.equal(messages[0].direction, 'outbound');
      assert.deepEqual(messages[0].author, { type: 'api', id: k.key.id });
      assert.equal(await count('telegram_sends', { ticket_id: made.id, op: 'send_message' }), 0, 'a note is never sent');
    });

    it('posts no note for a refused move', async () => {
      const made = await create(k);
      expectProblem(await setStatus(k, made.id, 'closed', 'closing early'), 409, 'invalid_transition', /resolved/);
      assert.equal(await count('messages', { ticket_id: made.id }), 0);
    });

    it('refuses the status a ticket already has', async () => {
      const made = await create(k);
      expectProblem(await setStatus(k, made.id, 'open'), 409, 'invalid_transition', /already open/);
    });

    describe('bad input', () => {
      const bad: [string, Record<string, unknown>][] = [
        ['no status', {}],
        ['an unknown status', { status: 'pending' }],
        ['an empty note', { status: 'resolved', note: '' }],
        ['a blank note', { status: 'resolved', note: '   ' }],
        ['a 4097-character note', { status: 'resolved', note: 'n'.repeat(4097) }],
        ['an unknown field', { status: 'resolved', reason: 'done' }],
      ];
      for (const [what, body] of bad) {
        it(`answers 422 for ${what}`, async () => {
          const made = await create(k);
          expectProblem(await post(k, `/v1/tickets/${made.id}/status`, body), 422, 'validation_error');
          assert.equal((await ticketRow(made.id)).status, 'open');
        });
      }

      it('answers 404 for an unknown or foreign ticket', async () => {
        const other = await tenant();
        const foreign = await create(other);
        for (const id of [UNKNOWN.ticket, foreign.id]) expectProblem(await setStatus(k, id, 'resolved'), 404, 'not_found');
        assert.equal((await ticketRow(foreign.id)).status, 'open');
      });
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('POST /v1/tickets/{id}/assign', () => {
    let k: Tenant;
    let agent: { id: string };
    let agent2: { id: string };
    let team: { id: string };
    before(async () => {
      k = await tenant();
      agent = await makeAgent(db.knex, { workspaceId: k.wsId });
      agent2 = await makeAgent(db.knex, { workspaceId: k.wsId });
      team = await makeTeam(db.knex, { workspaceId: k.wsId });
    });

    const assign = (id: string, body: Record<string, unknown>) => post(k, `/v1/tickets/${id}/assign`, body);

    it('assigns an agent, with a ticket.assigned event', async () => {
      const made = await create(k);
      clock.advance(60_000);
      const res = await assign(made.id, { agent_id: agent.id }).expect(200);
      assert.equal(res.body.assignee_id, agent.id);
      assert.equal(res.body.team_id, null);
      assert.equal(res.body.updated_at, clock.now().toISOString());
      const events = await eventsOf(made.id, 'ticket.assigned');
      assert.equal(events.length, 1);
      assert.deepEqual(events[0].detail.assignee_id, { from: null, to: agent.id });
      assert.equal(events[0].actor_type, 'api');
      assert.equal(events[0].payload.assignee_id, agent.id);
    });

    it('assigns a team', async () => {
      const made = await create(k);
      const res = await assign(made.id, { team_id: team.id }).expect(200);
      assert.equal(res.body.team_id, team.id);
      assert.equal(res.body.assignee_id, null);
      const [e] = await eventsOf(made.id, 'ticket.assigned');
      assert.deepEqual(e.detail.team_id, { from: null, to: team.id });
    });

    it('assigns both at once, in one event', async () => {
      const made = await create(k);
      const res = await assign(made.id, { agent_id: agent.id, team_id: team.id }).expect(200);
      assert.equal(res.body.assignee_id, agent.id);
      assert.equal(res.body.team_id, team.id);
      const events = await eventsOf(made.id, 'ticket.assigned');
      assert.equal(events.length, 1);
      assert.deepEqual(events[0].detail, { assignee_id: { from: null, to: agent.id }, team_id: { from: null, to: team.id } });
    });

    it('moves a ticket from one agent to another', async () => {
      const made = await create(k, { assignee_id: agent.id });
      await assign(made.id, { agent_id: agent2.id }).expect(200);
      const [e] = await eventsOf(made.id, 'ticket.assigned');
      assert.deepEqual(e.detail.assignee_id, { from: agent.id, to: agent2.id });
    });

    it('unassigns the agent and the team with null', async () => {
      const made = await create(k, { assignee_id: agent.id, team_id: team.id });
      const res = await assign(made.id, { agent_id: null, team_id: null }).expect(200);
      assert.equal(res.body.assignee_id, null);
      assert.equal(res.body.team_id, null);
      const [e] = await eventsOf(made.id, 'ticket.assigned');
      assert.deepEqual(e.detail, { assignee_id: { from: agent.id, to: null }, team_id: { from: team.id, to: null } });
    });

    it('leaves the field not given as it is', async () => {
      const made = await create(k, { assignee_id: agent.id, team_id: team.id });
      const res = await assign(made.id, { agent_id: null }).expect(200);
      assert.equal(res.body.assignee_id, null);
      assert.equal(res.body.team_id, team.id);
    });

    it('writes no second event and keeps updated_at for the same assignment again', async () => {
      const made = await create(k);
      const first = (await assign(made.id, { agent_id: agent.id, team_id: team.id }).expect(200)).body;
      clock.advance(60_000);
      const again = (await assign(made.id, { agent_id: agent.id, team_id: team.id }).expect(200)).body;
      assert.deepEqual(again, first);
      assert.equal((await eventsOf(made.id, 'ticket.assigned')).length, 1);
    });

    it('posts a note as an internal message and keeps it in the event', async () => {
      const made = await create(k);
      await assign(made.id, { agent_id: agent.id, note: 'Billing expert, over to you' }).expect(200);
      const [e] = await eventsOf(made.id, 'ticket.assigned');
      assert.equal(e.detail.note, 'Billing expert, over to you');
      const notes = await db.knex('messages').where({ ticket_id: made.id });
      assert.equal(notes.length, 1);
      assert.equal(notes[0].visibility, 'internal');
      assert.equal(notes[0].text, 'Billing expert, over to you');
      assert.equal(notes[0].author_type, 'api');
    });

    it('posts the note even when the assignment does not change, without an event', async () => {
      const made = await create(k, { assignee_id: agent.id });
      await assign(made.id, { agent_id: agent.id, note: 'Still yours' }).expect(200);
      assert.equal((await eventsOf(made.id, 'ticket.assigned')).length, 0);
      assert.equal(await count('messages', { ticket_id: made.id, visibility: 'internal' }), 1);
    });

    it('answers 409 conflict for a closed ticket, changing nothing', async () => {
      const closed = await ticketIn(k, 'closed');
      expectProblem(await assign(closed.id, { agent_id: agent.id, note: 'too late' }), 409, 'conflict', /closed/);
      assert.equal((await ticketRow(closed.id)).assignee_id, null);
      assert.equal(await count('messages', { ticket_id: closed.id }), 0);
      assert.equal((await eventsOf(closed.id, 'ticket.assigned')).length, 0);
    });

    it('assigns a resolved ticket', async () => {
      const resolved = await ticketIn(k, 'resolved');
      assert.equal((await assign(resolved.id, { agent_id: agent.id }).expect(200)).body.assignee_id, agent.id);
    });

    it('answers 409 conflict for an inactive agent', async () => {
      const made = await create(k);
      const inactive = await makeAgent(db.knex, { workspaceId: k.wsId, active: false });
      expectProblem(await assign(made.id, { agent_id: inactive.id }), 409, 'conflict', /inactive/);
      assert.equal((await ticketRow(made.id)).assignee_id, null);
    });

    it('answers 404 for an unknown or foreign agent or team', async () => {
      const made = await create(k);
      const other = await tenant();
      const foreignAgent = await makeAgent(db.knex, { workspaceId: other.wsId });
      const foreignTeam = await makeTeam(db.knex, { workspaceId: other.wsId });
      for (const id of [UNKNOWN.agent, foreignAgent.id]) expectProblem(await assign(made.id, { agent_id: id }), 404, 'not_found', /^Agent not found$/);
      for (const id of [UNKNOWN.team, foreignTeam.id]) expectProblem(await assign(made.id, { team_id: id }), 404, 'not_found', /^Team not found$/);
      const row = await ticketRow(made.id);
      assert.equal(row.assignee_id, null);
      assert.equal(row.team_id, null);
    });

    it('answers 404 for an unknown or foreign ticket', async () => {
      const other = await tenant();
      const foreign = await create(other);
      for (const id of [UNKNOWN.ticket, foreign.id]) expectProblem(await assign(id, { team_id: null }), 404, 'not_found', /^Ticket not found$/);
    });

    describe('bad input', () => {
      const bad: [string, Record<string, unknown>][] = [
        ['an empty body', {}],
        ['only a note', { note: 'hello' }],
        ['a malformed agent_id', { agent_id: 'bob' }],
        ['a team id as agent_id', { agent_id: UNKNOWN.team }],
        ['a blank note', { agent_id: null, note: '  ' }],
        ['an unknown field', { assignee_id: UNKNOWN.agent }],
      ];
      for (const [what, body] of bad) {
        it(`answers 422 for ${what}`, async () => {
          const made = await create(k);
          expectProblem(await assign(made.id, body), 422, 'validation_error');
        });
      }
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('GET /v1/tickets/{id}/events (timeline)', () => {
    let k: Tenant;
    let made: any;
    let agent: { id: string };
    before(async () => {
      k = await tenant();
      agent = await makeAgent(db.knex, { workspaceId: k.wsId });
      clock.set('2026-07-01T09:00:00.000Z');
      made = await create(k, { subject: 'Timeline' });
      clock.advance(1000);
      await patch(k, `/v1/tickets/${made.id}`, { priority: 'high' }).expect(200);
      clock.advance(1000);
      await setStatus(k, made.id, 'resolved', 'Fixed').expect(200);
      clock.advance(1000);
      await post(k, `/v1/tickets/${made.id}/assign`, { agent_id: agent.id }).expect(200);
      clock.advance(1000);
      await setStatus(k, made.id, 'open').expect(200);
      // Another ticket's events stay out of this timeline.
      await create(k, { subject: 'Other' });
    });

    const TYPES = ['ticket.created', 'ticket.updated', 'ticket.status_changed', 'ticket.resolved', 'ticket.assigned', 'ticket.status_changed', 'ticket.reopened'];

    it('lists the ticket\'s events oldest first, in the order they happened', async () => {
      const page = (await get(k, `/v1/tickets/${made.id}/events`).expect(200)).body;
      assert.deepEqual(page.items.map((e: { type: string }) => e.type), TYPES);
      assert.equal(page.total, TYPES.length);
      assert.equal(page.has_more, false);
      assert.deepEqual(page.items.map((e: { created_at: string }) => e.created_at), [
        '2026-07-01T09:00:00.000Z', '2026-07-01T09:00:01.000Z', '2026-07-01T09:00:02.000Z', '2026-07-01T09:00:02.000Z',
        '2026-07-01T09:00:03.000Z', '2026-07-01T09:00:04.000Z', '2026-07-01T09:00:04.000Z',
      ]);
    });

    it('shows who, what, from and to for each event', async () => {
      const items = (await get(k, `/v1/tickets/${made.id}/events`).expect(200)).body.items;
      const withPrevious = ['ticket.updated', 'ticket.status_changed', 'ticket.assigned'];
      for (const e of items) {
        assert.deepEqual(Object.keys(e).sort(), ['actor', 'created_at', 'data', 'id', 'ticket_id', 'type', ...(withPrevious.includes(e.type) ? ['previous'] : [])].sort());
        assert.match(e.id, /^evt_/);
        assert.equal(e.ticket_id, made.id);
        assert.deepEqual(e.actor, { type: 'api', id: k.key.id });
      }
      assert.deepEqual(items[1].data, { changes: { priority: { from: 'normal', to: 'high' } } });
      assert.deepEqual(items[2].data, { from: 'open', to: 'resolved', reason: 'api', note: 'Fixed' });
      assert.deepEqual(items[3].data, { from: 'open', to: 'resolved', reason: 'api', note: 'Fixed' });
      assert.deepEqual(items[4].data.assignee_id, { from: null, to: agent.id });
      assert.deepEqual(items[5].data, { from: 'resolved', to: 'open', reason: 'api' });
      assert.deepEqual(items[6].data, { from: 'resolved', to: 'open', reason: 'api' });
    });

    it('carries previous (the changed fields before the change) on ticket.updated, ticket.status_changed and ticket.assigned', async () => {
      const items = (await get(k, `/v1/tickets/${made.id}/events`).expect(200)).body.items;
      assert.equal(items[0].previous, undefined, 'ticket.created has none');
      assert.deepEqual(items[1].previous, { priority: 'normal' });
      assert.deepEqual(items[2].previous, { status: 'open', resolved_at: null });
      assert.equal(items[3].previous, undefined, 'ticket.resolved has none');
      assert.deepEqual(items[4].previous, { assignee_id: null, team_id: null });
      assert.deepEqual(items[5].previous, { status: 'resolved', resolved_at: '2026-07-01T09:00:02.000Z', reopened_count: 0 });
      assert.equal(items[6].previous, undefined, 'ticket.reopened has none');
    });

    it('pages with offset and with a cursor, each event once', async () => {
      const all = (await get(k, `/v1/tickets/${made.id}/events`).expect(200)).body.items.map((e: { id: string }) => e.id);
      const byOffset: string[] = [];
      for (let offset = 0; offset < all.length; offset += 3) {
        byOffset.push(...(await get(k, `/v1/tickets/${made.id}/events?limit=3&offset=${offset}`).expect(200)).body.items.map((e: { id: string }) => e.id));
      }
      assert.deepEqual(byOffset, all);
      const byCursor: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = (await get(k, `/v1/tickets/${made.id}/events?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).expect(200)).body;
        byCursor.push(...page.items.map((e: { id: string }) => e.id));
        cursor = page.next_cursor;
      } while (cursor);
      assert.deepEqual(byCursor, all);
    });

    it('answers 422 for bad paging values', async () => {
      for (const q of ['limit=0', 'limit=abc', 'offset=-1', 'cursor=zzz', 'status=open']) {
        expectProblem(await get(k, `/v1/tickets/${made.id}/events?${q}`), 422, 'validation_error');
      }
    });

    it('answers 404 for an unknown or foreign ticket', async () => {
      const other = await tenant();
      const foreign = await create(other);
      for (const id of [UNKNOWN.ticket, foreign.id]) expectProblem(await get(k, `/v1/tickets/${id}/events`), 404, 'not_found');
    });

    it('needs read:tickets', async () => {
      const narrow = await makeKey(db.knex, t.services, { workspaceId: k.wsId, scopes: ['read:contacts'] });
      expectProblem(await t.request.get(`/v1/tickets/${made.id}/events`).set('Authorization', narrow.auth), 403, 'forbidden');
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('previous and details (SPEC §4.6): timeline and outbox', () => {
    let k: Tenant;
    let agent: { id: string };
    let team: { id: string };
    before(async () => {
      k = await tenant();
      agent = await makeAgent(db.knex, { workspaceId: k.wsId });
      team = await makeTeam(db.knex, { workspaceId: k.wsId });
    });

    /** The ticket's timeline events of a type, oldest first. */
    const timelineOf = async (id: string, type: string) =>
      (await get(k, `/v1/tickets/${id}/events?limit=200`).expect(200)).body.items.filter((e: { type: string }) => e.type === type);

    it('ticket.updated: only the changed fields, in API names and shapes (tags, custom_fields, team_id, archived)', async () => {
      const made = await create(k, { subject: 'Same', tags: ['billing'], custom_fields: { plan: 'pro' } });
      clock.advance(1000);
      await patch(k, `/v1/tickets/${made.id}`, { subject: 'Same', priority: 'urgent', tags: ['billing', 'vip'], custom_fields: { plan: null, seats: 3 }, team_id: team.id }).expect(200);
      clock.advance(1000);
      await del(k, `/v1/tickets/${made.id}`).expect(200);
      clock.advance(1000);
      await patch(k, `/v1/tickets/${made.id}`, { archived: false }).expect(200);

      const updates = await timelineOf(made.id, 'ticket.updated');
      assert.equal(updates.length, 3);
      assert.deepEqual(updates[0].previous, { priority: 'normal', tags: ['billing'], custom_fields: { plan: 'pro' }, team_id: null });
      assert.deepEqual(updates[1].previous, { archived: false });
      assert.deepEqual(updates[2].previous, { archived: true });
      // The timeline's data is unchanged: {changes: {field: {from, to}}}, from = previous.
      assert.deepEqual(updates[0].data.changes.priority, { from: 'normal', to: 'urgent' });
      for (const e of updates) {
        assert.deepEqual(e.previous, Object.fromEntries(Object.entries(e.data.changes).map(([f, c]: [string, any]) => [f, c.from])));
      }
      // The outbox row the webhook is sent from holds the same, and no details.
      const rows = await eventsOf(made.id, 'ticket.updated');
      assert.deepEqual(rows.map((r: any) => r.previous), updates.map((e: any) => e.previous));
      assert.deepEqual(rows.map((r: any) => r.details), [null, null, null]);
    });

    it('ticket.status_changed: the status before (and what the move changed with it); ticket.resolved / closed / reopened carry none', async () => {
      const made = await create(k);
      await setStatus(k, made.id, 'in_progress').expect(200);
      clock.advance(1000);
      const resolvedAt = clock.now().toISOString();
      await setStatus(k, made.id, 'resolved').expect(200);
      clock.advance(1000);
      await setStatus(k, made.id, 'open').expect(200);
      clock.advance(1000);
      await setStatus(k, made.id, 'resolved').expect(200);
      clock.advance(1000);
      const secondResolvedAt = (await get(k, `/v1/tickets/${made.id}`).expect(200)).body.resolved_at;
      await setStatus(k, made.id, 'closed').expect(200);

      const changes = await timelineOf(made.id, 'ticket.status_changed');
      assert.deepEqual(changes.map((e: any) => e.previous), [
        { status: 'open' },
        { status: 'in_progress', resolved_at: null },
        { status: 'resolved', resolved_at: resolvedAt, reopened_count: 0 },
        { status: 'open', resolved_at: null },
        { status: 'resolved', closed_at: null },
      ]);
      assert.equal(secondResolvedAt, changes[3].created_at);
      const all = (await get(k, `/v1/tickets/${made.id}/events?limit=200`).expect(200)).body.items;
      for (const e of all.filter((x: any) => ['ticket.resolved', 'ticket.closed', 'ticket.reopened', 'ticket.created'].includes(x.type))) {
        assert.equal('previous' in e, false, `${e.type} has no previous`);
      }
      const rows = await eventsOf(made.id, 'ticket.status_changed');
      assert.deepEqual(rows.map((r: any) => r.previous), changes.map((e: any) => e.previous));
    });

    it('ticket.assigned: previous holds assignee_id and team_id before, both always; details {strategy: null, note}', async () => {
      const made = await create(k);
      await post(k, `/v1/tickets/${made.id}/assign`, { agent_id: agent.id, note: 'Billing knows this one' }).expect(200);
      clock.advance(1000);
      // A team alone moves the ticket to its queue, unassigned (SPEC §4.4).
      await post(k, `/v1/tickets/${made.id}/assign`, { team_id: team.id }).expect(200);
      clock.advance(1000);
      await post(k, `/v1/tickets/${made.id}/assign`, { agent_id: agent.id }).expect(200);

      const assigned = await timelineOf(made.id, 'ticket.assigned');
      assert.deepEqual(assigned.map((e: any) => e.previous), [
        { assignee_id: null, team_id: null },
        { assignee_id: agent.id, team_id: null },
        { assignee_id: null, team_id: team.id },
      ]);
      const rows = await eventsOf(made.id, 'ticket.assigned');
      assert.deepEqual(rows.map((r: any) => r.previous), assigned.map((e: any) => e.previous));
      assert.deepEqual(rows.map((r: any) => r.details), [
        { strategy: null, note: 'Billing knows this one' },
        { strategy: null, note: null },
        { strategy: null, note: null },
      ]);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('scopes', () => {
    it('lets read:tickets read but not change', async () => {
      const k = await tenant();
      const made = await create(k);
      const reader = await makeKey(db.knex, t.services, { workspaceId: k.wsId, scopes: ['read:tickets'] });
      const as = (r: supertest.Test) => r.set('Authorization', reader.auth);
      await as(t.request.get('/v1/tickets')).expect(200);
      await as(t.request.get(`/v1/tickets/${made.id}`)).expect(200);
      for (const r of [
        as(t.request.patch(`/v1/tickets/${made.id}`)).send({ subject: 'x' }),
        as(t.request.delete(`/v1/tickets/${made.id}`)),
        as(t.request.post(`/v1/tickets/${made.id}/status`)).send({ status: 'resolved' }),
        as(t.request.post(`/v1/tickets/${made.id}/assign`)).send({ team_id: null }),
      ]) expectProblem(await r, 403, 'forbidden');
      assert.deepEqual((await get(k, `/v1/tickets/${made.id}`).expect(200)).body, made);
    });
  });
});
