/**
 * Canned responses over the API (SPEC §4.5): create, list with filters, read, change (every
 * title/body change a version, with who made it), archive, versions, render for a ticket with
 * every variable and fallback, sending one on a ticket (canned_response_id), scopes, and tenant
 * isolation of every id (in paths and in bodies). Concurrent PATCHes make two versions and
 * lose neither change.
 */
import assert from 'node:assert/strict';
import { cannedRoutes } from '../../src/canned/canned-routes.js';
import { makeAccount, makeKey, makeReachableContact, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const CR_KEYS = ['id', 'shortcut', 'title', 'body', 'category', 'team_id', 'version', 'usage_count', 'created_at', 'updated_at'].sort();
const UNKNOWN_CR = 'cr_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_TICKET = 'tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const EVERY_VARIABLE = 'Hi {{customer_first_name}} ({{customer_name}}), #{{ticket_number}} "{{ticket_subject}}" — {{agent_name}} / {{agent_first_name}} at {{workspace_name}}';

type Res = { status: number; body: any; headers: Record<string, string> };
type Method = 'get' | 'post' | 'patch' | 'delete';

describe('canned responses API', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let seq = 0;
  const nextTg = () => 880_000_000 + ++seq;

  before(() => {
    t = createTestApp(db.knex);
  });

  /** A workspace of its own (a sandbox unless told: replies are simulated) with a key and helpers. */
  async function desk(opts: { live?: boolean; name?: string } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: !opts.live, name: opts.name ?? `Desk ${++seq}` });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const withKey = async (auth: string, method: Method, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const r = t.request[method](path).set('Authorization', auth);
      for (const [k, v] of Object.entries(headers)) r.set(k, v);
      return (await (body === undefined ? r : r.send(body as object))) as unknown as Res;
    };
    const call = (method: Method, path: string, body?: unknown, headers?: Record<string, string>) => withKey(key.auth, method, path, body, headers);
    const keyWith = async (scopes: string[]) => {
      const k = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes });
      return (method: Method, path: string, body?: unknown) => withKey(k.auth, method, path, body);
    };
    const canned = async (body: Record<string, unknown> = {}) => {
      const res = await call('post', '/v1/canned-responses', { shortcut: `s${++seq}`, title: 'A title', body: 'A body', ...body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const get = async (id: string) => {
      const res = await call('get', `/v1/canned-responses/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const team = async (name = `Team ${++seq}`) => {
      const res = await call('post', '/v1/teams', { name });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const agent = async (name: string) => {
      const res = await call('post', '/v1/agents', { username: `agent_${++seq}_x`, name });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const ticket = async (body: Record<string, unknown> = {}) => {
      const contact = body.contact_id ? {} : { contact: { telegram_user_id: nextTg(), first_name: 'Sarah', last_name: 'Connor' } };
      const res = await call('post', '/v1/tickets', { ...contact, subject: 'Where is my refund?', ...body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const render = (id: string, body: Record<string, unknown>) => call('post', `/v1/canned-responses/${id}/render`, body);
    const versions = async (id: string) => {
      const res = await call('get', `/v1/canned-responses/${id}/versions`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    return { ws, key, call, keyWith, canned, get, team, agent, ticket, render, versions };
  }

  function assertProblem(res: Res, status: number, code: string) {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /application\/problem\+json/);
  }

  function assertValidation(res: Res, field: string, received?: unknown) {
    assertProblem(res, 422, 'validation_error');
    const detail = res.body.details.find((d: any) => d.field === field && (received === undefined || d.received === received));
    assert.ok(detail, `expected a detail for ${field}${received === undefined ? '' : ` (${String(received)})`}: ${JSON.stringify(res.body.details)}`);
  }

  const rowCount = async (table: string, where: Record<string, unknown>) => Number((await db.knex(table).where(where).count({ n: '*' }))[0].n);

  // -------------------------------------------------------------------------------------------
  describe('POST /v1/canned-responses', () => {
    it('creates version 1 with every field, Location, usage_count 0; the version names the key', async () => {
      const d = await desk();
      const tm = await d.team();
      const res = await d.call('post', '/v1/canned-responses', {
        shortcut: 'refund-late_2', title: 'Refund for #{{ticket_number}}', body: 'Hi {{customer_first_name|there}}, your refund is on its way.', category: 'Billing', team_id: tm.id,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(Object.keys(res.body).sort(), CR_KEYS);
      assert.match(res.body.id, /^cr_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.headers.location, `/v1/canned-responses/${res.body.id}`);
      assert.deepEqual(
        { shortcut: res.body.shortcut, category: res.body.category, team_id: res.body.team_id, version: res.body.version, usage_count: res.body.usage_count },
        { shortcut: 'refund-late_2', category: 'Billing', team_id: tm.id, version: 1, usage_count: 0 },
      );
      assert.deepEqual(await d.get(res.body.id), res.body);
      const v = await d.versions(res.body.id);
      assert.equal(v.total, 1);
      assert.deepEqual(v.items[0], { version: 1, title: res.body.title, body: res.body.body, created_at: res.body.created_at, actor: { type: 'api', id: d.key.id } });
    });

    it('defaults category and team_id to null (workspace-wide)', async () => {
      const d = await desk();
      const c = await d.canned();
      assert.equal(c.category, null);
      assert.equal(c.team_id, null);
    });

    it('refuses shortcuts outside 1-32 of a-z 0-9 _ - (upper case, spaces, slash, too long, empty)', async () => {
      const d = await desk();
      for (const shortcut of ['Refund', 're fund', '/refund', 'é', 'x'.repeat(33), '', 'a.b']) {
        assertValidation(await d.call('post', '/v1/canned-responses', { shortcut, title: 'T', body: 'B' }), 'shortcut');
      }
      assert.equal((await d.canned({ shortcut: 'x'.repeat(32) })).shortcut.length, 32);
    });

    it('requires title and body, refuses blank ones, unknown fields and too long a body', async () => {
      const d = await desk();
      assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'a1', body: 'B' }), 'title');
      assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'a1', title: 'T' }), 'body');
      assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'a1', title: '   ', body: 'B' }), 'title');
      assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'a1', title: 'T', body: 'x'.repeat(4097) }), 'body');
      assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'a1', title: 'T', body: 'B', colour: 'red' }), 'colour');
      assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'a1', title: 'T', body: 'B', team_id: 'team_nope' }), 'team_id');
      assert.equal(await rowCount('canned_responses', { workspace_id: d.ws.id }), 0);
    });

    it('refuses unknown variables at write time, naming each one and the field, and writes nothing', async () => {
      const d = await desk();
      const res = await d.call('post', '/v1/canned-responses', { shortcut: 'bad', title: 'For {{customer}}', body: 'Order {{order_id}} {{ticket_number}} {{constructor}}' });
      assertValidation(res, 'title', 'customer');
      assertValidation(res, 'body', 'order_id');
      assertValidation(res, 'body', 'constructor');
      assert.match(res.body.detail, /\{\{customer\}\}/);
      assert.ok(!res.body.details.some((x: any) => x.received === 'ticket_number'));
      for (const body of ['{{customer.name}}', '{{__proto__}}', '{{}}', 'Hi {{customer_name', '{{ Customer_Name }}']) {
        assertValidation(await d.call('post', '/v1/canned-responses', { shortcut: 'bad', title: 'T', body }), 'body');
      }
      assert.equal(await rowCount('canned_responses', { workspace_id: d.ws.id }), 0);
    });

    it('409 when the shortcut is taken in the workspace; another workspace may use it', async () => {
      const d = await desk();
      await d.canned({ shortcut: 'hello' });
      const res = await d.call('post', '/v1/canned-responses', { shortcut: 'hello', title: 'T', body: 'B' });
      assertProblem(res, 409, 'conflict');
      assert.equal(res.body.details[0].field, 'shortcut');
      await (await desk()).canned({ shortcut: 'hello' });
    });

    it('404 for a team of another workspace or none at all', async () => {
      const d = await desk();
      const other = await desk();
      const foreign = await other.team();
      assertProblem(await d.call('post', '/v1/canned-responses', { shortcut: 'x1', title: 'T', body: 'B', team_id: foreign.id }), 404, 'not_found');
      assertProblem(await d.call('post', '/v1/canned-responses', { shortcut: 'x1', title: 'T', body: 'B', team_id: 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV' }), 404, 'not_found');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('GET /v1/canned-responses', () => {
    it('lists by shortcut with pagination; filters team_id (none = workspace-wide), category and q', async () => {
      const d = await desk();
      const billing = await d.team('Billing');
      const shipping = await d.team('Shipping');
      await d.canned({ shortcut: 'zeta', title: 'Goodbye', body: 'Bye {{customer_first_name|there}}' });
      await d.canned({ shortcut: 'alpha', title: 'Refund started', body: 'We started it', team_id: billing.id, category: 'money' });
      await d.canned({ shortcut: 'mid', title: 'Parcel', body: 'Your PARCEL is 100% on its way', team_id: shipping.id });
      const list = async (q = '') => {
        const res = await d.call('get', `/v1/canned-responses${q}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body;
      };
      const all = await list();
      assert.deepEqual(all.items.map((c: any) => c.shortcut), ['alpha', 'mid', 'zeta']);
      assert.equal(all.total, 3);
      assert.deepEqual((await list(`?team_id=${billing.id}`)).items.map((c: any) => c.shortcut), ['alpha']);
      assert.deepEqual((await list('?team_id=none')).items.map((c: any) => c.shortcut), ['zeta']);
      assert.deepEqual((await list('?category=money')).items.map((c: any) => c.shortcut), ['alpha']);
      assert.deepEqual((await list('?q=REFUND')).items.map((c: any) => c.shortcut), ['alpha'], 'title, any case');
      assert.deepEqual((await list('?q=parcel')).items.map((c: any) => c.shortcut), ['mid'], 'body');
      assert.deepEqual((await list('?q=zet')).items.map((c: any) => c.shortcut), ['zeta'], 'shortcut');
      assert.deepEqual((await list('?q=100%25')).items.map((c: any) => c.shortcut), ['mid'], '% is literal');
      assert.deepEqual((await list('?q=bye_')).items, [], '_ is literal');
      assert.deepEqual((await list('?q=first_name')).items.map((c: any) => c.shortcut), ['zeta']);
      const first = await list('?limit=2');
      assert.equal(first.has_more, true);
      const next = await list(`?limit=2&cursor=${first.next_cursor}`);
      assert.deepEqual(next.items.map((c: any) => c.shortcut), ['zeta']);
      assertValidation(await d.call('get', '/v1/canned-responses?team_id=billing'), 'team_id');
      assertValidation(await d.call('get', '/v1/canned-responses?limit=201'), 'limit');
      assertValidation(await d.call('get', '/v1/canned-responses?sort=usage'), 'sort');
    });

    it('a filter by another workspace\'s team finds nothing (and lists never show its responses)', async () => {
      const d = await desk();
      const other = await desk();
      const tm = await other.team();
      await other.canned({ team_id: tm.id });
      await other.canned();
      const res = await d.call('get', `/v1/canned-responses?team_id=${tm.id}`);
      assert.equal(res.body.total, 0);
      assert.equal((await d.call('get', '/v1/canned-responses')).body.total, 0);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('PATCH /v1/canned-responses/{id}', () => {
    it('a new title or body is a new version with who made it; category, team and shortcut change in place', async () => {
      const d = await desk();
      const c = await d.canned({ shortcut: 'greet', title: 'Hello', body: 'Hi there' });
      const other = await d.keyWith(['manage:settings']);
      const otherKey = (await db.knex('api_keys').where({ workspace_id: d.ws.id }).orderBy('created_at', 'desc').first()).id;
      const r1 = await other('patch', `/v1/canned-responses/${c.id}`, { body: 'Hi {{customer_first_name|there}}' });
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.equal(r1.body.version, 2);
      assert.equal(r1.body.title, 'Hello');
      const tm = await d.team();
      const r2 = await d.call('patch', `/v1/canned-responses/${c.id}`, { category: 'greetings', team_id: tm.id, shortcut: 'hi' });
      assert.equal(r2.body.version, 2, 'no new version without a title/body change');
      assert.deepEqual([r2.body.category, r2.body.team_id, r2.body.shortcut], ['greetings', tm.id, 'hi']);
      const r3 = await d.call('patch', `/v1/canned-responses/${c.id}`, { title: 'Hello', body: 'Hi {{customer_first_name|there}}' });
      assert.equal(r3.body.version, 2, 'the same words are not a change');
      const r4 = await d.call('patch', `/v1/canned-responses/${c.id}`, { title: 'Greeting', category: null, team_id: null });
      assert.deepEqual([r4.body.version, r4.body.category, r4.body.team_id], [3, null, null]);
      const v = await d.versions(c.id);
      assert.deepEqual(v.items.map((x: any) => [x.version, x.title, x.body, x.actor.id]), [
        [3, 'Greeting', 'Hi {{customer_first_name|there}}', d.key.id],
        [2, 'Hello', 'Hi {{customer_first_name|there}}', otherKey],
        [1, 'Hello', 'Hi there', d.key.id],
      ]);
      assert.ok(Date.parse(r4.body.updated_at) >= Date.parse(c.updated_at));
    });

    it('refuses unknown variables, an empty body, a taken shortcut and an empty patch; nothing changes', async () => {
      const d = await desk();
      await d.canned({ shortcut: 'taken' });
      const c = await d.canned({ shortcut: 'mine' });
      assertValidation(await d.call('patch', `/v1/canned-responses/${c.id}`, { body: 'Hey {{first_name}}' }), 'body', 'first_name');
      assertValidation(await d.call('patch', `/v1/canned-responses/${c.id}`, { body: '' }), 'body');
      assertProblem(await d.call('patch', `/v1/canned-responses/${c.id}`, { shortcut: 'taken' }), 409, 'conflict');
      assertProblem(await d.call('patch', `/v1/canned-responses/${c.id}`, {}), 422, 'validation_error');
      assertProblem(await d.call('patch', `/v1/canned-responses/${UNKNOWN_CR}`, { title: 'x' }), 404, 'not_found');
      assert.deepEqual(await d.get(c.id), c);
      assert.equal((await d.versions(c.id)).total, 1);
    });

    it('two concurrent PATCHes make two versions and lose neither change', async () => {
      const d = await desk();
      for (let round = 0; round < 5; round++) {
        const c = await d.canned({ title: 'T0', body: 'B0' });
        const [a, b] = await Promise.all([
          d.call('patch', `/v1/canned-responses/${c.id}`, { title: `T-${round}` }),
          d.call('patch', `/v1/canned-responses/${c.id}`, { body: `B-${round}` }),
        ]);
        assert.equal(a.status, 200, JSON.stringify(a.body));
        assert.equal(b.status, 200, JSON.stringify(b.body));
        assert.deepEqual([a.body.version, b.body.version].sort(), [2, 3]);
        const now = await d.get(c.id);
        assert.deepEqual([now.title, now.body, now.version], [`T-${round}`, `B-${round}`, 3]);
        const v = await d.versions(c.id);
        assert.deepEqual(v.items.map((x: any) => x.version), [3, 2, 1]);
        assert.deepEqual([v.items[0].title, v.items[0].body], [`T-${round}`, `B-${round}`]);
        // The middle version holds exactly one of the two changes.
        const middle = v.items[1];
        assert.ok((middle.title === `T-${round}`) !== (middle.body === `B-${round}`), JSON.stringify(middle));
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('DELETE /v1/canned-responses/{id}', () => {
    it('archives: 204, then 404 everywhere and gone from lists; versions kept in the database; the shortcut is free again', async () => {
      const d = await desk();
      const c = await d.canned({ shortcut: 'old' });
      await d.call('patch', `/v1/canned-responses/${c.id}`, { body: 'second' });
      const tk = await d.ticket();
      const del = await d.call('delete', `/v1/canned-responses/${c.id}`);
      assert.equal(del.status, 204, JSON.stringify(del.body));
      for (const [method, suffix, body] of [['get', ''], ['patch', '', { title: 'x' }], ['delete', ''], ['get', '/versions'], ['post', '/render', { ticket_id: tk.id }]] as const) {
        assertProblem(await d.call(method, `/v1/canned-responses/${c.id}${suffix}`, body), 404, 'not_found');
      }
      assertProblem(await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id }), 404, 'not_found');
      assert.equal((await d.call('get', '/v1/canned-responses')).body.total, 0);
      assert.equal(await rowCount('canned_response_versions', { canned_response_id: c.id }), 2);
      assert.ok((await db.knex('canned_responses').where({ id: c.id }).first()).archived_at);
      const again = await d.canned({ shortcut: 'old' });
      assert.notEqual(again.id, c.id);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('POST /v1/canned-responses/{id}/render', () => {
    it('fills every variable for the ticket and the agent named', async () => {
      const d = await desk({ name: 'Acme Support' });
      const ann = await d.agent('Ann Lee');
      const c = await d.canned({ body: EVERY_VARIABLE });
      const tk = await d.ticket();
      const res = await d.render(c.id, { ticket_id: tk.id, agent_id: ann.id });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, {
        text: `Hi Sarah (Sarah Connor), #${tk.number} "Where is my refund?" — Ann Lee / Ann at Acme Support`,
        missing_variables: [],
      });
    });

    it('speaks for the assignee when no agent is named; with neither, agent variables are missing or take their fallback', async () => {
      const d = await desk({ name: 'Acme' });
      const bob = await d.agent('Bob Stone');
      const c = await d.canned({ body: '{{agent_first_name|The team}} here. {{agent_name}}' });
      const assigned = await d.ticket({ assignee_id: bob.id });
      assert.deepEqual((await d.render(c.id, { ticket_id: assigned.id })).body, { text: 'Bob here. Bob Stone', missing_variables: [] });
      const unassigned = await d.ticket();
      assert.deepEqual((await d.render(c.id, { ticket_id: unassigned.id })).body, { text: 'The team here. ', missing_variables: ['agent_name'] });
    });

    it('uses fallbacks for empty customer values and lists the rest as missing (empty in the text)', async () => {
      const d = await desk();
      const c = await d.canned({ body: 'Hi {{customer_first_name|there}}! [{{customer_name}}]' });
      const res = await d.call('post', '/v1/tickets', { contact: { telegram_user_id: nextTg() }, subject: 'S' });
      const rendered = await d.render(c.id, { ticket_id: res.body.id });
      assert.deepEqual(rendered.body, { text: 'Hi there! []', missing_variables: ['customer_name'] });
    });

    it('puts values in as plain text, once: nothing escaped, nothing expanded again', async () => {
      const d = await desk();
      const c = await d.canned({ body: 'Re: {{ticket_subject}} / {{customer_first_name}}' });
      const tk = await d.ticket({ subject: '<b>{{agent_name}}</b> & $1', contact: { telegram_user_id: nextTg(), first_name: '{{workspace_name}}' } });
      assert.equal((await d.render(c.id, { ticket_id: tk.id })).body.text, 'Re: <b>{{agent_name}}</b> & $1 / {{workspace_name}}');
    });

    it('404 for another workspace\'s ticket or agent and unknown ids; 422 for malformed ones; renders count nothing', async () => {
      const d = await desk();
      const other = await desk();
      const c = await d.canned();
      const foreignTicket = await other.ticket();
      const foreignAgent = await other.agent('Eve');
      const tk = await d.ticket();
      assertProblem(await d.render(c.id, { ticket_id: foreignTicket.id }), 404, 'not_found');
      assertProblem(await d.render(c.id, { ticket_id: UNKNOWN_TICKET }), 404, 'not_found');
      assertProblem(await d.render(c.id, { ticket_id: tk.id, agent_id: foreignAgent.id }), 404, 'not_found');
      assertValidation(await d.render(c.id, { ticket_id: 'tkt_1' }), 'ticket_id');
      assertValidation(await d.render(c.id, {}), 'ticket_id');
      assertValidation(await d.render(c.id, { ticket_id: tk.id, extra: 1 }), 'extra');
      assert.equal((await d.render(c.id, { ticket_id: tk.id })).status, 200);
      assert.equal((await d.get(c.id)).usage_count, 0);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('POST /v1/tickets/{id}/messages with canned_response_id', () => {
    it('renders for the ticket (the assignee speaks), sends it like a reply and counts the use', async () => {
      const d = await desk({ name: 'Acme' });
      const ann = await d.agent('Ann Lee');
      const c = await d.canned({ body: 'Hi {{customer_first_name}}, {{agent_first_name}} from {{workspace_name}} here about #{{ticket_number}}.' });
      const tk = await d.ticket({ assignee_id: ann.id });
      const res = await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.text, `Hi Sarah, Ann from Acme here about #${tk.number}.`);
      assert.deepEqual([res.body.direction, res.body.visibility, res.body.status, res.body.simulated], ['outbound', 'public', 'sent', true]);
      assert.equal((await d.get(c.id)).usage_count, 1);
      const after = (await d.call('get', `/v1/tickets/${tk.id}`)).body;
      assert.equal(after.status, 'waiting_on_customer', 'an agent reply moves the ticket');
      assert.ok(after.first_response_at, 'and is its first response');
    });

    it('in a live workspace the rendered text is what the send queue carries', async () => {
      const d = await desk({ live: true });
      const account = await makeAccount(db.knex, { workspaceId: d.ws.id });
      const contact = await makeReachableContact(db.knex, t.services, { workspaceId: d.ws.id, accountId: account.id, telegramUserId: nextTg(), firstName: 'Lena' });
      const c = await d.canned({ body: 'Hello {{customer_first_name}}' });
      const tk = await d.ticket({ contact_id: contact.id });
      const res = await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const send = await db.knex('telegram_sends').where({ message_id: res.body.id, op: 'send_message' }).first();
      assert.equal(send.payload.text, 'Hello Lena');
      assert.equal(res.body.status, 'queued');
    });

    it('as an internal note: never sent, still counted', async () => {
      const d = await desk();
      const c = await d.canned({ body: 'Checked {{customer_name}}' });
      const tk = await d.ticket();
      const res = await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id, internal: true });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual([res.body.visibility, res.body.text], ['internal', 'Checked Sarah Connor']);
      assert.equal((await d.get(c.id)).usage_count, 1);
      assert.equal((await d.call('get', `/v1/tickets/${tk.id}`)).body.first_response_at, null);
    });

    it('text and canned_response_id: exactly one; an empty render is refused; nothing is counted or sent', async () => {
      const d = await desk();
      const c = await d.canned({ body: '{{agent_name}}' });
      const tk = await d.ticket();
      assertValidation(await d.call('post', `/v1/tickets/${tk.id}/messages`, { text: 'Hi', canned_response_id: c.id }), 'canned_response_id');
      assertValidation(await d.call('post', `/v1/tickets/${tk.id}/messages`, {}), 'text');
      assertValidation(await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: 'cr_x' }), 'canned_response_id');
      const empty = await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id });
      assertValidation(empty, 'canned_response_id');
      assert.match(empty.body.detail, /empty.*agent_name/);
      assert.equal((await d.get(c.id)).usage_count, 0);
      assert.equal(await rowCount('messages', { ticket_id: tk.id }), 0);
    });

    it('another workspace\'s canned response is 404, like an unknown one; a closed ticket is 409', async () => {
      const d = await desk();
      const other = await desk();
      const foreign = await other.canned();
      const tk = await d.ticket();
      assertProblem(await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: foreign.id }), 404, 'not_found');
      assertProblem(await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: UNKNOWN_CR }), 404, 'not_found');
      assert.equal((await other.get(foreign.id)).usage_count, 0);
      const c = await d.canned();
      for (const status of ['resolved', 'closed']) await d.call('post', `/v1/tickets/${tk.id}/status`, { status });
      assertProblem(await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id }), 409, 'conflict');
      assert.equal((await d.get(c.id)).usage_count, 0);
    });

    it('an idempotent replay sends once and counts once', async () => {
      const d = await desk();
      const c = await d.canned();
      const tk = await d.ticket();
      const first = await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id }, { 'Idempotency-Key': 'canned-1' });
      const again = await d.call('post', `/v1/tickets/${tk.id}/messages`, { canned_response_id: c.id }, { 'Idempotency-Key': 'canned-1' });
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.body.id, first.body.id);
      assert.equal((await d.get(c.id)).usage_count, 1);
      assert.equal(await rowCount('messages', { ticket_id: tk.id }), 1);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('scopes and tenancy', () => {
    /** Every canned route: path (with :id), method, a body, the scope it needs and its success status. */
    const routes = (id: string, ticketId: string) => [
      { method: 'get', path: '/v1/canned-responses', scope: 'read:tickets', status: 200 },
      { method: 'post', path: '/v1/canned-responses', scope: 'manage:settings', status: 201, body: { shortcut: `n${++seq}`, title: 'T', body: 'B' } },
      { method: 'get', path: `/v1/canned-responses/${id}`, scope: 'read:tickets', status: 200 },
      { method: 'patch', path: `/v1/canned-responses/${id}`, scope: 'manage:settings', status: 200, body: { category: 'c' } },
      { method: 'get', path: `/v1/canned-responses/${id}/versions`, scope: 'read:tickets', status: 200 },
      { method: 'post', path: `/v1/canned-responses/${id}/render`, scope: 'read:tickets', status: 200, body: { ticket_id: ticketId } },
      { method: 'post', path: `/v1/tickets/${ticketId}/messages`, scope: 'write:messages', status: 201, body: { canned_response_id: id } },
      { method: 'delete', path: `/v1/canned-responses/${id}`, scope: 'manage:settings', status: 204 },
    ] as { method: Method; path: string; scope: string; status: number; body?: unknown }[];

    const ALL = ['read:tickets', 'write:tickets', 'read:contacts', 'write:contacts', 'read:messages', 'write:messages', 'read:analytics', 'manage:agents', 'manage:settings', 'manage:webhooks', 'manage:keys'];

    it('covers every canned route of the app', () => {
      const defined = cannedRoutes(t.services.canned).map((r) => `${r.method} ${r.path}`).sort();
      assert.deepEqual(defined, [
        'delete /v1/canned-responses/:id', 'get /v1/canned-responses', 'get /v1/canned-responses/:id', 'get /v1/canned-responses/:id/versions',
        'patch /v1/canned-responses/:id', 'post /v1/canned-responses', 'post /v1/canned-responses/:id/render',
      ].sort());
    });

    it('each route refuses a key holding every other scope (403 naming it) and works with only that scope', async () => {
      const d = await desk();
      const c = await d.canned();
      const tk = await d.ticket();
      for (const r of routes(c.id, tk.id)) {
        const without = await d.keyWith(ALL.filter((s) => s !== r.scope));
        const denied = await without(r.method, r.path, r.body);
        assertProblem(denied, 403, 'forbidden');
        assert.equal(denied.body.required_scope, r.scope, `${r.method} ${r.path}`);
        const only = await d.keyWith([r.scope]);
        const ok = await only(r.method, r.path, r.body);
        assert.equal(ok.status, r.status, `${r.method} ${r.path}: ${JSON.stringify(ok.body)}`);
      }
    });

    it('401 without a valid key', async () => {
      for (const r of routes(UNKNOWN_CR, UNKNOWN_TICKET)) {
        const res = (await t.request[r.method](r.path).set('Authorization', 'Bearer td_live_nope')) as unknown as Res;
        assertProblem(res, 401, 'unauthorized');
      }
    });

    it('another workspace\'s canned response answers exactly as an unknown id, on every route, and stays unchanged', async () => {
      const mine = await desk();
      const theirs = await desk();
      const c = await theirs.canned({ shortcut: 'theirs' });
      const myTicket = await mine.ticket();
      for (const r of routes(c.id, myTicket.id).filter((x) => x.path.includes(c.id))) {
        const foreign = await mine.call(r.method, r.path, r.body);
        const unknown = await mine.call(r.method, r.path.replace(c.id, UNKNOWN_CR), r.body);
        assertProblem(foreign, 404, 'not_found');
        assert.equal(foreign.body.detail, unknown.body.detail, r.path);
      }
      const still = await theirs.get(c.id);
      assert.deepEqual([still.version, still.usage_count, still.category], [1, 0, null]);
      assert.equal(await rowCount('messages', { ticket_id: myTicket.id }), 0);
    });
  });
});
