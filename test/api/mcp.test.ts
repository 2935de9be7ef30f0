/**
 * The MCP server (SPEC §8) through the SDK's own client over real HTTP: the Koa app listens
 * on an ephemeral port, the database is real. Each tool's structuredContent is compared with
 * what the HTTP API answers for the same thing. Sandbox workspaces simulate Telegram; one
 * live workspace shows an MCP reply queued for Telegram exactly like an API reply.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { makeAccount, makeAgent, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const ALL_TOOLS = [
  'add_internal_note', 'assign_ticket', 'change_ticket_status', 'get_contact', 'get_metrics', 'get_ticket', 'list_canned_responses',
  'list_tickets', 'reply_to_ticket', 'search_contacts', 'send_message', 'upsert_contact',
];

describe('MCP server (POST /mcp)', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let server: Server;
  let url: string;
  const clients: Client[] = [];
  let seq = 0;
  const nextTelegramId = () => 8_000_000 + ++seq;

  before(async () => {
    t = createTestApp(db.knex);
    server = t.app.listen(0);
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await new Promise((resolve) => server.close(resolve));
  });

  async function connect(auth: string): Promise<Client> {
    const client = new Client({ name: 'mcp-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: auth } } }));
    clients.push(client);
    return client;
  }

  /** A workspace with a bot, a reachable contact, a ticket, an all-scopes key and its client. */
  async function desk(opts: { sandbox?: boolean; scopes?: string[] } = { sandbox: true }) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: opts.sandbox ?? true });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const account = await makeAccount(db.knex, { workspaceId: ws.id });
    const contact = await makeReachableContact(db.knex, t.services, { workspaceId: ws.id, accountId: account.id, telegramUserId: nextTelegramId(), firstName: 'Sarah', username: `sarah_${seq}` });
    const get = async (path: string) => (await t.request.get(path).set('Authorization', key.auth).expect(200)).body;
    const post = (path: string, body: object) => t.request.post(path).set('Authorization', key.auth).send(body);
    const ticket = (await post('/v1/tickets', { contact_id: contact.id, subject: 'Parcel never arrived' }).expect(201)).body;
    const client = await connect(key.auth);
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
    return { ws, key, account, contact, ticket, client, call, get, post };
  }

  /** A tool error: isError, its code, and the text names the code. */
  function assertToolError(r: CallToolResult, code: string): { code: string; message: string; details?: { field: string; error: string }[]; required_scope?: string } {
    assert.equal(r.isError, true, JSON.stringify(r));
    const error = (r.structuredContent as any).error;
    assert.equal(error.code, code, JSON.stringify(r));
    assert.match((r.content[0] as { text: string }).text, new RegExp(`^${code}: `));
    return error;
  }
  /** The fields a validation_error names, each once, sorted. */
  const fieldsOf = (r: CallToolResult) => [...new Set(assertToolError(r, 'validation_error').details!.map((d) => d.field))].sort();
  const count = async (table: string, where: Record<string, unknown>) => Number((await db.knex(table).where(where).count({ n: '*' }))[0].n);

  const initialize = {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  };
  const rawPost = (headers: Record<string, string>, body: unknown = initialize) => fetch(url, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
  });

  describe('authentication and transport', () => {
    it('answers 401 problem+json without a key and with a bad one; the SDK client fails to connect', async () => {
      for (const headers of [{}, { Authorization: 'Bearer td_live_nope' }] as Record<string, string>[]) {
        const res = await rawPost(headers);
        assert.equal(res.status, 401);
        assert.match(res.headers.get('content-type')!, /application\/problem\+json/);
        assert.equal((await res.json()).code, 'unauthorized');
      }
      await assert.rejects(connect('Bearer td_live_nope'));
    });

    it('initializes with a valid key, with the key\'s rate-limit headers and no session id', async () => {
      const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 77 });
      const res = await rawPost({ Authorization: key.auth });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-ratelimit-limit'), '77');
      assert.ok(res.headers.get('x-request-id'));
      assert.equal(res.headers.get('mcp-session-id'), null);
      const body = await res.json();
      assert.equal(body.result.serverInfo.name, 'topicdesk');
      assert.ok(body.result.capabilities.tools);
    });

    it('answers GET and DELETE /mcp with 405 and Allow: POST (stateless)', async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await fetch(url, { method });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.get('allow'), 'POST');
        assert.equal((await res.json()).code, 'method_not_allowed');
      }
    });
  });

  describe('tools/list', () => {
    it('lists every tool for an all-scopes key, read tools marked readOnlyHint, write tools with idempotency_key', async () => {
      const client = await connect((await makeKey(db.knex, t.services, { scopes: ['all'] })).auth);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((x) => x.name).sort(), ALL_TOOLS);
      const byName = new Map(tools.map((x) => [x.name, x]));
      for (const name of ['list_tickets', 'get_ticket', 'search_contacts', 'get_contact', 'list_canned_responses', 'get_metrics']) {
        assert.equal(byName.get(name)!.annotations?.readOnlyHint, true, name);
        assert.equal(byName.get(name)!.inputSchema.properties?.idempotency_key, undefined, name);
      }
      for (const name of ['reply_to_ticket', 'add_internal_note', 'change_ticket_status', 'assign_ticket', 'upsert_contact', 'send_message']) {
        assert.notEqual(byName.get(name)!.annotations?.readOnlyHint, true, name);
        assert.ok(byName.get(name)!.inputSchema.properties?.idempotency_key, name);
      }
      // The inputs are the API's schemas: list_tickets takes GET /v1/tickets' filters.
      assert.deepEqual(Object.keys(byName.get('list_tickets')!.inputSchema.properties!).sort(), [
        'archived', 'assignee_id', 'contact_id', 'created_after', 'created_before', 'cursor', 'limit', 'offset', 'priority', 'q', 'sla', 'sort', 'status', 'tag', 'team_id', 'updated_after',
      ]);
      assert.deepEqual(byName.get('change_ticket_status')!.inputSchema.required, ['ticket_id', 'status']);
    });

    it('lists only what the scopes allow: read:tickets sees the read ticket tools and list_canned_responses', async () => {
      const readTickets = await connect((await makeKey(db.knex, t.services, { scopes: ['read:tickets'] })).auth);
      assert.deepEqual((await readTickets.listTools()).tools.map((x) => x.name).sort(), ['get_ticket', 'list_canned_responses', 'list_tickets']);
      const replying = await connect((await makeKey(db.knex, t.services, { scopes: ['read:contacts', 'write:messages'] })).auth);
      assert.deepEqual((await replying.listTools()).tools.map((x) => x.name).sort(), ['add_internal_note', 'get_contact', 'reply_to_ticket', 'search_contacts', 'send_message']);
    });
  });

  describe('read tools', () => {
    it('list_tickets: the page GET /v1/tickets answers for the same filters; a limit over 200 names the field', async () => {
      const d = await desk();
      await d.post('/v1/tickets', { contact_id: d.contact.id, subject: 'Second one', priority: 'high' }).expect(201);
      const r = await d.call('list_tickets', { priority: 'high,normal', sort: 'priority' });
      assert.equal(r.isError, undefined);
      assert.deepEqual(r.structuredContent, await d.get('/v1/tickets?priority=high,normal&sort=priority'));
      assert.equal((r.structuredContent as any).items.length, 2);
      assert.match((r.content[0] as { text: string }).text, /^2 of 2 tickets/);
      assert.deepEqual(fieldsOf(await d.call('list_tickets', { limit: 500 })), ['limit']);
    });

    it('get_ticket: the ticket and its last 50 messages, as GET /v1/tickets/{id} and …/messages answer them; a malformed id names ticket_id', async () => {
      const d = await desk();
      const actor = { type: 'api' as const, id: d.key.id };
      for (let i = 1; i <= 52; i++) await t.services.messages.postToTicket(db.knex, d.ws, d.ticket.id, { text: `note ${i}`, internal: true }, actor);
      const r = await d.call('get_ticket', { ticket_id: d.ticket.id });
      const sc = r.structuredContent as any;
      assert.deepEqual(sc.ticket, await d.get(`/v1/tickets/${d.ticket.id}`));
      assert.deepEqual(sc.messages, await d.get(`/v1/tickets/${d.ticket.id}/messages?limit=50&offset=2`));
      assert.equal(sc.messages.items.length, 50);
      assert.equal(sc.messages.items[0].text, 'note 3');
      assert.equal(sc.messages.items[49].text, 'note 52');
      assert.deepEqual(fieldsOf(await d.call('get_ticket', { ticket_id: 'tkt_nope' })), ['ticket_id']);
    });

    it('get_ticket without read:messages shows the ticket and no messages', async () => {
      const d = await desk();
      const client = await connect((await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ['read:tickets'] })).auth);
      const r = (await client.callTool({ name: 'get_ticket', arguments: { ticket_id: d.ticket.id } })) as CallToolResult;
      assert.deepEqual(r.structuredContent, { ticket: await d.get(`/v1/tickets/${d.ticket.id}`), messages: null });
    });

    it('search_contacts and get_contact: what GET /v1/contacts and /v1/contacts/{id} answer; unknown or missing fields are named', async () => {
      const d = await desk();
      const r = await d.call('search_contacts', { q: d.contact.username! });
      assert.deepEqual(r.structuredContent, await d.get(`/v1/contacts?q=${d.contact.username}`));
      assert.equal((r.structuredContent as any).total, 1);
      const one = await d.call('get_contact', { contact_id: d.contact.id });
      assert.deepEqual(one.structuredContent, await d.get(`/v1/contacts/${d.contact.id}`));
      assert.deepEqual(fieldsOf(await d.call('search_contacts', { name: 'Sarah' })), ['name']);
      assert.deepEqual(fieldsOf(await d.call('get_contact', {})), ['contact_id']);
      // Half a surrogate pair is refused here too, as in the API's bodies and queries.
      assert.deepEqual(fieldsOf(await d.call('search_contacts', { q: 'Sarah \ud800' })), ['q']);
    });

    it('list_canned_responses: what GET /v1/canned-responses answers; a bad team_id is named', async () => {
      const d = await desk();
      await d.post('/v1/canned-responses', { shortcut: 'hello', title: 'Hello', body: 'Hi {{customer_first_name|there}}' }).expect(201);
      const r = await d.call('list_canned_responses', { q: 'hello' });
      assert.deepEqual(r.structuredContent, await d.get('/v1/canned-responses?q=hello'));
      assert.equal((r.structuredContent as any).items.length, 1);
      assert.deepEqual(fieldsOf(await d.call('list_canned_responses', { team_id: 'sales' })), ['team_id']);
    });
  });

  describe('get_metrics', () => {
    it('each kind answers what GET /v1/metrics/{kind} answers for the same query; only read:analytics lists it', async () => {
      const d = await desk();
      await d.post(`/v1/tickets/${d.ticket.id}/messages`, { text: 'On it' }).expect(201);
      const now = Date.now();
      const range = { from: new Date(now - 86_400_000).toISOString(), to: new Date(now + 86_400_000).toISOString() };
      const qs = new URLSearchParams(range).toString();
      for (const [kind, path] of [['first_response', 'first-response'], ['resolution', 'resolution'], ['sla', 'sla'], ['csat', 'csat']] as const) {
        const r = await d.call('get_metrics', { kind, ...range, group_by: 'priority' });
        assert.equal(r.isError, undefined, JSON.stringify(r));
        assert.deepEqual(r.structuredContent, await d.get(`/v1/metrics/${path}?${qs}&group_by=priority`), kind);
      }
      const fr = await d.call('get_metrics', { kind: 'first_response', ...range });
      assert.equal((fr.structuredContent as any).overall.count, 1);
      assert.match((fr.content[0] as { text: string }).text, /^first response .*: 1 tickets/);
      const backlog = await d.call('get_metrics', { kind: 'backlog' });
      assert.deepEqual({ ...(backlog.structuredContent as any), as_of: null }, { ...(await d.get('/v1/metrics/backlog')), as_of: null });
      const analytics = await connect((await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ['read:analytics'] })).auth);
      assert.deepEqual((await analytics.listTools()).tools.map((x) => x.name), ['get_metrics']);
    });

    it('bad input is named: an unknown kind, a range on the backlog, from after to', async () => {
      const d = await desk();
      assert.deepEqual(fieldsOf(await d.call('get_metrics', { kind: 'speed' })), ['kind']);
      assert.deepEqual(fieldsOf(await d.call('get_metrics', { kind: 'backlog', from: '2026-01-01T00:00:00Z' })), ['from']);
      assertToolError(await d.call('get_metrics', { kind: 'csat', from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }), 'validation_error');
      const noScope = await connect((await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ['read:tickets'] })).auth);
      const denied = (await noScope.callTool({ name: 'get_metrics', arguments: { kind: 'sla' } })) as CallToolResult;
      assert.equal(assertToolError(denied, 'forbidden').required_scope, 'read:analytics');
    });
  });

  describe('write tools', () => {
    it('reply_to_ticket: the message GET /v1/messages/{id} shows, by the key, simulated in a sandbox; neither or both of text and canned_response_id is refused', async () => {
      const d = await desk();
      const r = await d.call('reply_to_ticket', { ticket_id: d.ticket.id, text: 'We are on it, Sarah!' });
      const m = r.structuredContent as any;
      assert.deepEqual(m, await d.get(`/v1/messages/${m.id}`));
      assert.deepEqual(m.author, { type: 'api', id: d.key.id });
      assert.equal(m.visibility, 'public');
      assert.equal(m.simulated, true);
      assert.equal((await d.get(`/v1/tickets/${d.ticket.id}`)).status, 'waiting_on_customer', 'the reply moves the ticket as an API reply does');
      assert.deepEqual(fieldsOf(await d.call('reply_to_ticket', { ticket_id: d.ticket.id })).sort(), ['canned_response_id', 'text']);
      const cannedId = `cr_${'0'.repeat(26)}`;
      assert.deepEqual(fieldsOf(await d.call('reply_to_ticket', { ticket_id: d.ticket.id, text: 'x', canned_response_id: cannedId })).sort(), ['canned_response_id', 'text']);
    });

    it('reply_to_ticket with canned_response_id renders it for the ticket and its usage_count grows', async () => {
      const d = await desk();
      const cr = (await d.post('/v1/canned-responses', { shortcut: 'late', title: 'Late', body: 'Hi {{customer_first_name|there}}, ticket #{{ticket_number}} is on its way.' }).expect(201)).body;
      const r = await d.call('reply_to_ticket', { ticket_id: d.ticket.id, canned_response_id: cr.id });
      const m = r.structuredContent as any;
      assert.equal(m.text, `Hi Sarah, ticket #${d.ticket.number} is on its way.`);
      assert.deepEqual(m, await d.get(`/v1/messages/${m.id}`));
      assert.equal((await d.get(`/v1/canned-responses/${cr.id}`)).usage_count, 1);
    });

    it('reply_to_ticket in a live workspace queues the Telegram send exactly as the API reply does', async () => {
      const d = await desk({ sandbox: false });
      const viaMcp = (await d.call('reply_to_ticket', { ticket_id: d.ticket.id, text: 'From the agent' })).structuredContent as any;
      const viaApi = (await d.post(`/v1/tickets/${d.ticket.id}/messages`, { text: 'From the API' }).expect(201)).body;
      assert.equal(viaMcp.status, 'queued');
      assert.equal(viaMcp.simulated, false);
      const sendOps = async (messageId: string) => (await db.knex('telegram_sends').where({ message_id: messageId })).map((s) => s.op);
      assert.deepEqual(await sendOps(viaMcp.id), await sendOps(viaApi.id));
      assert.equal((await sendOps(viaMcp.id)).length, 1);
      const events = async (messageId: string) => (await db.knex('events').where({ message_id: messageId })).map((e) => e.type).sort();
      assert.deepEqual(await events(viaMcp.id), await events(viaApi.id));
    });

    it('add_internal_note: a note, never sent; an empty text is refused', async () => {
      const d = await desk();
      const m = (await d.call('add_internal_note', { ticket_id: d.ticket.id, text: 'VIP customer' })).structuredContent as any;
      assert.deepEqual(m, await d.get(`/v1/messages/${m.id}`));
      assert.equal(m.visibility, 'internal');
      assert.equal((await d.get(`/v1/tickets/${d.ticket.id}`)).status, 'open');
      assert.deepEqual(fieldsOf(await d.call('add_internal_note', { ticket_id: d.ticket.id, text: '' })), ['text']);
    });

    it('change_ticket_status: the ticket as GET shows it; an unknown status is named, a refused move is invalid_transition', async () => {
      const d = await desk();
      const r = await d.call('change_ticket_status', { ticket_id: d.ticket.id, status: 'in_progress', note: 'on it' });
      assert.deepEqual(r.structuredContent, await d.get(`/v1/tickets/${d.ticket.id}`));
      assert.equal((r.structuredContent as any).status, 'in_progress');
      assert.deepEqual(fieldsOf(await d.call('change_ticket_status', { ticket_id: d.ticket.id, status: 'done' })), ['status']);
      assertToolError(await d.call('change_ticket_status', { ticket_id: d.ticket.id, status: 'closed' }), 'invalid_transition');
      assert.equal((await d.get(`/v1/tickets/${d.ticket.id}`)).status, 'in_progress');
    });

    it('assign_ticket: the ticket as GET shows it; no target at all is refused naming the three', async () => {
      const d = await desk();
      const agent = await makeAgent(db.knex, { workspaceId: d.ws.id });
      const r = await d.call('assign_ticket', { ticket_id: d.ticket.id, agent_id: agent.id, note: 'yours' });
      assert.deepEqual(r.structuredContent, await d.get(`/v1/tickets/${d.ticket.id}`));
      assert.equal((r.structuredContent as any).assignee_id, agent.id);
      assert.deepEqual(fieldsOf(await d.call('assign_ticket', { ticket_id: d.ticket.id })).sort(), ['agent_id', 'strategy', 'team_id']);
    });

    it('upsert_contact: the contact as GET shows it, created then updated; a bad email is named', async () => {
      const d = await desk();
      const telegramUserId = nextTelegramId();
      const created = (await d.call('upsert_contact', { telegram_user_id: telegramUserId, first_name: 'Ann' }));
      const c = created.structuredContent as any;
      assert.deepEqual(c, await d.get(`/v1/contacts/${c.id}`));
      assert.match((created.content[0] as { text: string }).text, /created/);
      const updated = await d.call('upsert_contact', { telegram_user_id: telegramUserId, email: 'ann@example.com', tags: ['vip'] });
      assert.equal((updated.structuredContent as any).id, c.id);
      assert.deepEqual(updated.structuredContent, await d.get(`/v1/contacts/${c.id}`));
      assert.deepEqual(fieldsOf(await d.call('upsert_contact', { email: 'not-an-email' })), ['email']);
    });

    it('send_message: the message as GET shows it, plus eta; a malformed recipient is named', async () => {
      const d = await desk();
      const r = await d.call('send_message', { to: d.contact.id, text: 'Hello {first_name}' });
      const { eta, ...m } = r.structuredContent as any;
      assert.deepEqual(m, await d.get(`/v1/messages/${m.id}`));
      assert.equal(m.text, 'Hello Sarah');
      assert.ok(!Number.isNaN(Date.parse(eta)));
      assert.deepEqual(fieldsOf(await d.call('send_message', { to: '@x', text: 'hi' })), ['to']);
    });
  });

  describe('scopes, idempotency and tenancy', () => {
    it('a write tool the key lacks the scope for is a tool error naming the scope, and nothing is written', async () => {
      const d = await desk();
      const client = await connect((await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ['read:tickets'] })).auth);
      const before = await count('messages', { workspace_id: d.ws.id });
      const r = (await client.callTool({ name: 'reply_to_ticket', arguments: { ticket_id: d.ticket.id, text: 'sneaky' } })) as CallToolResult;
      const error = assertToolError(r, 'forbidden');
      assert.equal(error.required_scope, 'write:messages');
      assert.match((r.content[0] as { text: string }).text, /write:messages/);
      assert.equal(await count('messages', { workspace_id: d.ws.id }), before);
      const status = (await client.callTool({ name: 'change_ticket_status', arguments: { ticket_id: d.ticket.id, status: 'closed' } })) as CallToolResult;
      assert.equal(assertToolError(status, 'forbidden').required_scope, 'write:tickets');
      assert.equal((await d.get(`/v1/tickets/${d.ticket.id}`)).status, 'open');
    });

    it('replays a write with the same idempotency_key (one message, the same result) and refuses the key with other input', async () => {
      const d = await desk();
      const args = { ticket_id: d.ticket.id, text: 'Only once, please', idempotency_key: 'reply-1' };
      const first = await d.call('reply_to_ticket', args);
      const second = await d.call('reply_to_ticket', args);
      assert.deepEqual(second.structuredContent, first.structuredContent);
      assert.deepEqual(second.content, first.content);
      assert.equal(second._meta?.['topicdesk/idempotent_replayed'], true);
      assert.equal(first._meta, undefined);
      assert.equal(await count('messages', { ticket_id: d.ticket.id, text: 'Only once, please' }), 1);
      const reused = await d.call('reply_to_ticket', { ...args, text: 'Something else' });
      assert.match(assertToolError(reused, 'idempotency_key_reused').message, /reply_to_ticket/);
      assert.equal(await count('messages', { ticket_id: d.ticket.id, text: 'Something else' }), 0);
      // Keys are the workspace's, shared with the HTTP API: the same key on an endpoint is another request.
      const http = await d.post(`/v1/tickets/${d.ticket.id}/messages`, { text: 'Only once, please' }).set('Idempotency-Key', 'reply-1');
      assert.equal(http.status, 409);
      assert.equal(http.body.code, 'idempotency_key_reused');
    });

    it('replays a business error stored under a key without running again', async () => {
      const d = await desk();
      const args = { ticket_id: d.ticket.id, status: 'closed', idempotency_key: 'early-close' };
      const first = await d.call('change_ticket_status', args);
      assertToolError(first, 'invalid_transition');
      // Now the move would be allowed; the key still answers what it answered.
      await d.call('change_ticket_status', { ticket_id: d.ticket.id, status: 'resolved' });
      const again = await d.call('change_ticket_status', args);
      assert.deepEqual(again.structuredContent, first.structuredContent);
      assert.equal(again._meta?.['topicdesk/idempotent_replayed'], true);
      assert.equal((await d.get(`/v1/tickets/${d.ticket.id}`)).status, 'resolved');
    });

    it('another workspace\'s ticket is not_found, for reads and writes, and nothing is written', async () => {
      const mine = await desk();
      const theirs = await desk();
      assertToolError(await mine.call('get_ticket', { ticket_id: theirs.ticket.id }), 'not_found');
      const before = await count('messages', { ticket_id: theirs.ticket.id });
      assertToolError(await mine.call('reply_to_ticket', { ticket_id: theirs.ticket.id, text: 'hello' }), 'not_found');
      assertToolError(await mine.call('get_contact', { contact_id: theirs.contact.id }), 'not_found');
      assert.equal(await count('messages', { ticket_id: theirs.ticket.id }), before);
    });

    it('an unknown tool name is a protocol error', async () => {
      const d = await desk();
      await assert.rejects(d.client.callTool({ name: 'drop_database', arguments: {} }), /Unknown tool: drop_database/);
    });
  });
});
