/**
 * GET /v1/tickets pages are built by PostgreSQL (src/tickets/ticket-list.ts). Property: for
 * any tickets (nulls, unicode, tags, custom fields, SLA fields, topics, contacts with and
 * without fields) and any list shape (sorts, filters, limits, offsets, a full cursor walk),
 * the SQL-built page is the page paginate() + presentTicket give: equal after parsing, keys in
 * the same order, the same total, has_more and next_cursor.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pageBody, presentPage } from '../../src/http/pagination.js';
import { presentTicket, type TicketView } from '../../src/tickets/ticket-service.js';
import type { ListTicketsQuery } from '../../src/tickets/ticket-schemas.js';
import { listPageStatement } from '../../src/tickets/ticket-list.js';
import { makeAccount, makeAgent, makeTeam } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const WS = 'ws_default';
type Arb<A> = A extends fc.Arbitrary<infer T> ? T : never;
const q = (x: Partial<ListTicketsQuery>) => ({ archived: false, sort: '-created_at', ...x }) as ListTicketsQuery;
const noNul = (s: string) => !s.includes('\u0000');
const text = fc.string({ unit: 'binary', maxLength: 12 }).filter(noNul);
const nullableText = fc.option(text, { nil: null });
const moment = fc.date({ min: new Date('1999-12-31T23:59:59.999Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true });
const nullableMoment = fc.option(moment, { nil: null });
const jsonValue = fc.jsonValue({ maxDepth: 2 }).filter((v) => noNul(JSON.stringify(v)));
const customFields = fc.dictionary(text.filter((k) => k !== '__proto__'), jsonValue, { maxKeys: 4 });
const tags = fc.array(text, { maxLength: 3 });
const slaMarks = fc.array(fc.record({ target: fc.constantFrom('first_response', 'next_response', 'resolution'), at: moment.map((d) => d.toISOString()) }), { maxLength: 2 });

const contactArb = fc.record({
  telegram_user_id: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: null }),
  username: nullableText, name: nullableText, first_name: nullableText, last_name: nullableText, email: nullableText, phone: nullableText,
  tags, custom_fields: customFields, blocked: fc.boolean(), created_at: moment, updated_at: moment,
});

const ticketArb = fc.record({
  subject: text, description: text,
  status: fc.constantFrom('open', 'in_progress', 'waiting_on_customer', 'resolved', 'closed'),
  priority: fc.constantFrom('low', 'normal', 'high', 'urgent'),
  category: nullableText, tags, custom_fields: customFields,
  contact: fc.nat(4), team: fc.boolean(), assignee: fc.boolean(), account: fc.boolean(),
  topic: fc.option(fc.record({ chat: fc.integer({ min: -(2 ** 50), max: -1 }), thread: fc.integer({ min: 1, max: 2 ** 31 }) }), { nil: null }),
  // Few distinct created_at values: ties, so the id tie-breaker matters.
  created_at: fc.constantFrom(new Date('2026-01-01T00:00:00.000Z'), new Date('2026-01-01T00:00:00.001Z'), new Date('2031-05-06T07:08:09.123Z')),
  updated_at: moment, first_response_at: nullableMoment, resolved_at: nullableMoment, closed_at: nullableMoment,
  reopened_count: fc.nat(5), archived_at: fc.option(moment, { nil: null }),
  first_response_due_at: nullableMoment, next_response_due_at: nullableMoment, resolution_due_at: nullableMoment,
  sla_due_at: fc.option(moment, { nil: null }), sla_paused: fc.boolean(), sla_warnings: slaMarks, sla_breaches: slaMarks,
  sla_at_risk: fc.boolean(), sla_breached: fc.boolean(),
});

const queryArb: fc.Arbitrary<ListTicketsQuery & { limit: number; offset: number }> = fc.record({
  limit: fc.integer({ min: 1, max: 7 }),
  offset: fc.constantFrom(0, 0, 2),
  sort: fc.option(fc.constantFrom('-created_at', 'created_at', 'priority', 'sla_due'), { nil: undefined }),
  status: fc.option(fc.constantFrom('open', 'open,closed', 'resolved,in_progress,waiting_on_customer'), { nil: undefined }),
  priority: fc.option(fc.constantFrom('urgent', 'low,high'), { nil: undefined }),
  archived: fc.option(fc.boolean(), { nil: undefined }),
  sla: fc.option(fc.constantFrom('at_risk', 'breached'), { nil: undefined }),
  assignee_id: fc.option(fc.constantFrom('none'), { nil: undefined }),
  team_id: fc.option(fc.constantFrom('none'), { nil: undefined }),
  q: fc.option(fc.constantFrom('a', '#1'), { nil: undefined }),
}, { requiredKeys: ['limit', 'offset'] }) as any;

/** The page as the API body, parsed and re-serialised: equal values and equal key order give equal text. */
const normal = (body: string) => JSON.stringify(JSON.parse(body));

describe('GET /v1/tickets built by PostgreSQL (ticket-list.ts) = paginate + presentTicket', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let t: TestApp;
  const refs: { team?: string; agent?: string; account?: string; policy?: string } = {};

  before(async () => {
    t = createTestApp(db.knex);
    refs.team = (await makeTeam(db.knex)).id;
    refs.agent = (await makeAgent(db.knex)).id;
    refs.account = (await makeAccount(db.knex, { supportChatId: null })).id;
  });

  async function load(contacts: Arb<typeof contactArb>[], tickets: Arb<typeof ticketArb>[]) {
    await db.knex.raw('DELETE FROM tickets WHERE workspace_id = ?', [WS]);
    await db.knex.raw(`DELETE FROM contacts WHERE workspace_id = ? AND id LIKE 'ct_P%'`, [WS]);
    const contactIds = contacts.map((_, i) => `ct_P${String(i).padStart(25, '0')}`);
    if (contacts.length) {
      // Identities are unique per workspace: each contact's made its own.
      const own = (v: string | null, i: number) => (v === null ? null : `${v}~${i}`);
      await db.knex('contacts').insert(contacts.map((c, i) => ({
        ...c, id: contactIds[i], workspace_id: WS, custom_fields: JSON.stringify(c.custom_fields), username: own(c.username, i), email: own(c.email, i),
        phone: own(c.phone, i), telegram_user_id: c.telegram_user_id === null ? null : c.telegram_user_id * 8 + i,
      })));
    }
    if (tickets.length) {
      await db.knex('tickets').insert(tickets.map((x, i) => ({
        id: `tkt_P${String(i).padStart(24, '0')}`, workspace_id: WS, number: i + 1, subject: x.subject, description: x.description,
        status: x.status, priority: x.priority, category: x.category, tags: x.tags, custom_fields: JSON.stringify(x.custom_fields),
        contact_id: contactIds[x.contact % contacts.length], team_id: x.team ? refs.team : null, assignee_id: x.assignee ? refs.agent : null,
        account_id: x.account ? refs.account : null, topic_chat_id: x.topic?.chat ?? null, topic_thread_id: x.topic ? x.topic.thread + i : null,
        created_at: x.created_at, updated_at: x.updated_at, first_response_at: x.first_response_at, resolved_at: x.resolved_at,
        closed_at: x.closed_at, reopened_count: x.reopened_count, archived_at: x.archived_at,
        sla_policy_id: null, first_response_due_at: x.first_response_due_at,
        next_response_due_at: x.next_response_due_at, resolution_due_at: x.resolution_due_at, sla_due_at: x.sla_due_at ?? 'infinity',
        sla_paused: x.sla_paused, sla_warnings: JSON.stringify(x.sla_warnings), sla_breaches: JSON.stringify(x.sla_breaches),
        sla_at_risk: x.sla_at_risk, sla_breached: x.sla_breached,
      })));
    }
  }

  const present = (v: TicketView) => presentTicket(v.ticket, v.contact);

  /** Both ways, page after page by cursor: the same page each time. */
  async function compareWalk(query: ListTicketsQuery & { limit: number; offset: number }) {
    let cursor: string | undefined;
    let offset = query.offset;
    for (let guard = 0; guard < 100; guard++) {
      const req = { ...query, offset, cursor };
      const reference = JSON.stringify(presentPage(await t.services.tickets.list(db.knex, WS, req), present));
      const built = pageBody(await t.services.tickets.listJson(db.knex, WS, req));
      assert.equal(normal(built), reference, `page ${guard} of ${JSON.stringify(query)}`);
      const page = JSON.parse(built) as { next_cursor: string | null };
      if (!page.next_cursor) return;
      cursor = page.next_cursor;
      offset = 0;
    }
    throw new Error('the walk did not end');
  }

  it('gives presentTicket\'s JSON, key for key, on every page of every list shape', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(contactArb, { minLength: 1, maxLength: 5 }), fc.array(ticketArb, { maxLength: 25 }), fc.array(queryArb, { minLength: 1, maxLength: 4 }),
        async (contacts, tickets, queries) => {
          await load(contacts, tickets);
          for (const q of queries) await compareWalk(q);
        }),
      { numRuns: 40 },
    );
  });

  it('answers the HTTP request with the same body, as JSON, the response schema checked', async () => {
    const [contact] = fc.sample(contactArb, { numRuns: 1, seed: 18 });
    // Custom field values within the API's schema (scalars), which the response check holds to.
    const scalars = { n: 1.5, s: 'é 🙂', b: true, '10': 'ten', '2': 'two' };
    await load([{ ...contact, custom_fields: scalars }], fc.sample(ticketArb, { numRuns: 30, seed: 18 }).map((x) => ({ ...x, custom_fields: scalars })));
    const token = (await t.services.apiKeys.create(db.knex, { workspaceId: WS, name: 'list', scopes: ['all'], rateLimitPerMinute: null, expiresAt: null })).token;
    const res = await t.request.get('/v1/tickets?limit=5&sort=priority').set('authorization', `Bearer ${token}`);
    assert.equal(res.status, 200, res.text + t.logs.filter((l) => l.includes('"level":50')).join('\n'));
    assert.match(res.headers['content-type'], /^application\/json; charset=utf-8$/);
    const reference = presentPage(await t.services.tickets.list(db.knex, WS, { ...q({ sort: 'priority' }), limit: 5, offset: 0 }), present);
    assert.equal(JSON.stringify(res.body), JSON.stringify(reference));
  });

  it('names one prepared statement per statement text, and leaves rare shapes (searches, many filters) unnamed', () => {
    const a = listPageStatement(WS, q({ status: 'open' }), { limit: 50, offset: 0 });
    const b = listPageStatement('ws_other', q({ status: 'closed' }), { limit: 10, offset: 100 });
    const c = listPageStatement(WS, q({ status: 'open,closed' }), { limit: 50, offset: 0 });
    assert.equal(a.sql, b.sql);
    assert.equal(a.name, b.name);
    assert.notEqual(a.sql, c.sql);
    assert.notEqual(a.name, c.name);
    assert.equal(listPageStatement(WS, q({ q: 'x' }), { limit: 50, offset: 0 }).name, null);
    assert.equal(listPageStatement(WS, q({ tag: 'vip', status: 'open' }), { limit: 50, offset: 0 }).name, null);
    assert.equal(listPageStatement(WS, q({ assignee_id: 'none', team_id: 'none' }), { limit: 50, offset: 0 }).name, null);
    assert.ok(listPageStatement(WS, q({ assignee_id: 'none', status: 'open', sort: 'priority' }), { limit: 50, offset: 0 }).name);
  });
});
