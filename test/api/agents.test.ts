/**
 * Agents and teams over the HTTP API (SPEC §4.2, §4.4): listing, pre-registering, reading and
 * changing agents (roles, skills, capacity, retirement, teams) and teams (name, members,
 * auto_assign, paused); membership written from either side; open_tickets; scopes (manage:agents
 * writes, read:tickets reads); tenant isolation of ids in paths and in bodies; and group members
 * becoming agents on first use, linked to their pre-registration instead of duplicated.
 */
import assert from 'node:assert/strict';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const AGENT_KEYS = ['id', 'telegram_user_id', 'username', 'name', 'role', 'skills', 'max_open_tickets', 'active', 'team_ids', 'open_tickets', 'last_assigned_at', 'created_at', 'updated_at'].sort();
const TEAM_KEYS = ['id', 'name', 'agent_ids', 'auto_assign', 'paused', 'created_at', 'updated_at'].sort();
const UNKNOWN_AGENT = 'ag_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_TEAM = 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV';

type Res = { status: number; body: any; headers: Record<string, string> };
type Method = 'get' | 'post' | 'patch' | 'delete';

describe('agents and teams API', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let tgSeq = 500_000_000;
  let nameSeq = 0;
  const nextTg = () => ++tgSeq;
  const uname = (base = 'agent') => `${base}_${++nameSeq}_x`;

  before(() => {
    t = createTestApp(db.knex);
  });

  /** A workspace of its own with a key (every scope unless told) and request helpers. */
  async function desk(opts: { scopes?: string[] } = {}) {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: opts.scopes });
    const withKey = async (auth: string, method: Method, path: string, body?: unknown) => {
      const r = t.request[method](path).set('Authorization', auth);
      return (await (body === undefined ? r : r.send(body as object))) as unknown as Res;
    };
    const call = (method: Method, path: string, body?: unknown) => withKey(key.auth, method, path, body);
    const keyWith = async (scopes: string[]) => {
      const k = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes });
      return (method: Method, path: string, body?: unknown) => withKey(k.auth, method, path, body);
    };
    const agent = async (body: Record<string, unknown> = {}) => {
      const res = await call('post', '/v1/agents', { username: uname(), ...body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const team = async (body: Record<string, unknown> = {}) => {
      const res = await call('post', '/v1/teams', { name: `Team ${++nameSeq}`, ...body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const getAgent = async (id: string) => {
      const res = await call('get', `/v1/agents/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const getTeam = async (id: string) => {
      const res = await call('get', `/v1/teams/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    /** A ticket assigned to `agentId` (a contact made on the way). */
    const ticket = async (agentId: string | null) => {
      const res = await call('post', '/v1/tickets', { contact: { telegram_user_id: nextTg() }, subject: 'Help', ...(agentId ? { assignee_id: agentId } : {}) });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const setStatus = async (ticketId: string, status: string) => {
      const res = await call('post', `/v1/tickets/${ticketId}/status`, { status });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    return { ws, key, call, keyWith, agent, team, getAgent, getTeam, ticket, setStatus };
  }

  function assertProblem(res: Res, status: number, code: string) {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /application\/problem\+json/);
  }

  function assertValidation(res: Res, field: string) {
    assertProblem(res, 422, 'validation_error');
    assert.ok(res.body.details.some((d: any) => d.field === field), `expected a detail for ${field}: ${JSON.stringify(res.body.details)}`);
  }

  // -------------------------------------------------------------------------------------------
  describe('POST /v1/agents', () => {
    it('pre-registers by username: @ stripped, name defaults to @username, role agent, active, no Telegram user yet', async () => {
      const d = await desk();
      const res = await d.call('post', '/v1/agents', { username: '@Ann_Support' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.headers.location, `/v1/agents/${res.body.id}`);
      assert.deepEqual(Object.keys(res.body).sort(), AGENT_KEYS);
      assert.match(res.body.id, /^ag_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.body.username, 'Ann_Support');
      assert.equal(res.body.name, '@Ann_Support');
      assert.equal(res.body.telegram_user_id, null);
      assert.equal(res.body.role, 'agent');
      assert.equal(res.body.active, true);
      assert.deepEqual(res.body.skills, []);
      assert.equal(res.body.max_open_tickets, null);
      assert.deepEqual(res.body.team_ids, []);
      assert.equal(res.body.open_tickets, 0);
      assert.equal(res.body.last_assigned_at, null);
      assert.deepEqual(await d.getAgent(res.body.id), res.body);
    });

    it('pre-registers by telegram_user_id with everything set: name, role, skills (normalised), capacity, teams', async () => {
      const d = await desk();
      const a = await d.team();
      const b = await d.team();
      const tg = nextTg();
      const res = await d.call('post', '/v1/agents', {
        telegram_user_id: tg, name: 'Bob Builder', role: 'lead', skills: [' Billing ', 'billing', 'Refunds'], max_open_tickets: 5, team_ids: [b.id, a.id, b.id],
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.telegram_user_id, tg);
      assert.equal(res.body.username, null);
      assert.equal(res.body.name, 'Bob Builder');
      assert.equal(res.body.role, 'lead');
      assert.deepEqual(res.body.skills, ['billing', 'refunds']);
      assert.equal(res.body.max_open_tickets, 5);
      assert.deepEqual(res.body.team_ids, [a.id, b.id].sort());
      assert.deepEqual((await d.getTeam(a.id)).agent_ids, [res.body.id]);
    });

    it('names an agent known only by id "User <id>"', async () => {
      const d = await desk();
      const tg = nextTg();
      assert.equal((await d.agent({ username: undefined, telegram_user_id: tg })).name, `User ${tg}`);
    });

    it('needs telegram_user_id or username (422 naming both)', async () => {
      const d = await desk();
      const res = await d.call('post', '/v1/agents', { name: 'Nobody' });
      assertValidation(res, 'telegram_user_id');
      assertValidation(res, 'username');
      assertValidation(await d.call('post', '/v1/agents', {}), 'username');
    });

    it('refuses bad input with 422: unknown fields, bad types, bad username, skills, capacity, role', async () => {
      const d = await desk();
      const bad: [Record<string, unknown>, string][] = [
        [{ username: uname(), nickname: 'x' }, 'nickname'],
        [{ username: 'ab' }, 'username'],
        [{ username: 'has space' }, 'username'],
        [{ telegram_user_id: 0 }, 'telegram_user_id'],
        [{ telegram_user_id: '12' }, 'telegram_user_id'],
        [{ telegram_user_id: 1.5 }, 'telegram_user_id'],
        [{ username: uname(), role: 'owner' }, 'role'],
        [{ username: uname(), skills: 'billing' }, 'skills'],
        [{ username: uname(), skills: [''] }, 'skills[0]'],
        [{ username: uname(), skills: ['   '] }, 'skills[0]'],
        [{ username: uname(), skills: ['x'.repeat(101)] }, 'skills[0]'],
        [{ username: uname(), skills: Array.from({ length: 51 }, (_, i) => `s${i}`) }, 'skills'],
        [{ username: uname(), max_open_tickets: 0 }, 'max_open_tickets'],
        [{ username: uname(), max_open_tickets: 2.5 }, 'max_open_tickets'],
        [{ username: uname(), max_open_tickets: 'ten' }, 'max_open_tickets'],
        [{ username: uname(), name: '' }, 'name'],
        [{ username: uname(), name: '   ' }, 'name'],
        [{ username: uname(), active: 'yes' }, 'active'],
        [{ username: uname(), team_ids: 'team_x' }, 'team_ids'],
        [{ username: uname(), team_ids: ['team_123'] }, 'team_ids[0]'],
        [{ username: uname(), team_ids: [UNKNOWN_AGENT] }, 'team_ids[0]'],
      ];
      for (const [body, field] of bad) assertValidation(await d.call('post', '/v1/agents', body), field);
      const list = await d.call('get', '/v1/agents');
      assert.equal(list.body.total, 0, 'nothing was created');
    });

    it('409 for a second agent of the same telegram_user_id, or the same username (any case)', async () => {
      const d = await desk();
      const tg = nextTg();
      await d.agent({ username: undefined, telegram_user_id: tg });
      assertProblem(await d.call('post', '/v1/agents', { telegram_user_id: tg, username: uname() }), 409, 'conflict');
      const name = uname('carol');
      await d.agent({ username: name });
      const dup = await d.call('post', '/v1/agents', { username: `@${name.toUpperCase()}` });
      assertProblem(dup, 409, 'conflict');
      assert.equal(dup.body.details[0].field, 'username');
      assert.equal((await d.call('get', '/v1/agents')).body.total, 2);
    });

    it('a retired pre-registration (never linked) does not block registering the username again', async () => {
      const d = await desk();
      const name = uname('dave');
      const old = await d.agent({ username: name });
      assert.equal((await d.call('patch', `/v1/agents/${old.id}`, { active: false })).status, 200);
      const again = await d.agent({ username: name });
      assert.notEqual(again.id, old.id);
    });

    it('the same telegram_user_id in another workspace is another agent', async () => {
      const a = await desk();
      const b = await desk();
      const tg = nextTg();
      const one = await a.agent({ telegram_user_id: tg });
      const two = await b.agent({ telegram_user_id: tg });
      assert.notEqual(one.id, two.id);
    });

    it('404 naming the team when team_ids holds an unknown id or another workspace\'s team; nothing is created', async () => {
      const a = await desk();
      const b = await desk();
      const foreign = await b.team();
      const mine = await a.team();
      for (const id of [foreign.id, UNKNOWN_TEAM]) {
        const res = await a.call('post', '/v1/agents', { username: uname(), team_ids: [mine.id, id] });
        assertProblem(res, 404, 'not_found');
        assert.equal(res.body.detail, 'Team not found');
      }
      assert.equal((await a.call('get', '/v1/agents')).body.total, 0);
      assert.deepEqual((await b.getTeam(foreign.id)).agent_ids, []);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('GET /v1/agents and /v1/agents/{id}', () => {
    it('lists oldest first with limit/offset and cursor pages', async () => {
      const d = await desk();
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await d.agent());
      const first = await d.call('get', '/v1/agents?limit=2');
      assert.equal(first.status, 200);
      assert.deepEqual(first.body.items.map((a: any) => a.id), made.slice(0, 2).map((a) => a.id));
      assert.equal(first.body.total, 5);
      assert.equal(first.body.has_more, true);
      for (const a of first.body.items) assert.deepEqual(Object.keys(a).sort(), AGENT_KEYS);
      const offset = await d.call('get', '/v1/agents?limit=2&offset=2');
      assert.deepEqual(offset.body.items.map((a: any) => a.id), made.slice(2, 4).map((a) => a.id));
      const next = await d.call('get', `/v1/agents?limit=2&cursor=${first.body.next_cursor}`);
      assert.deepEqual(next.body.items.map((a: any) => a.id), made.slice(2, 4).map((a) => a.id));
      const last = await d.call('get', `/v1/agents?limit=2&cursor=${next.body.next_cursor}`);
      assert.deepEqual(last.body.items.map((a: any) => a.id), [made[4].id]);
      assert.equal(last.body.has_more, false);
      assert.equal(last.body.next_cursor, null);
    });

    it('filters by active, role, team_id, skill and q (name or username)', async () => {
      const d = await desk();
      const team = await d.team();
      const ann = await d.agent({ username: 'ann_filter', name: 'Ann Zebra', role: 'admin', skills: ['billing'], team_ids: [team.id] });
      const bob = await d.agent({ username: 'bob_filter', role: 'lead' });
      const cid = await d.agent({ username: 'cid_filter', active: false });
      const ids = async (q: string) => {
        const res = await d.call('get', `/v1/agents?${q}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.items.map((a: any) => a.id);
      };
      assert.deepEqual(await ids('active=false'), [cid.id]);
      assert.deepEqual(await ids('active=true'), [ann.id, bob.id]);
      assert.deepEqual(await ids('role=lead'), [bob.id]);
      assert.deepEqual(await ids(`team_id=${team.id}`), [ann.id]);
      assert.deepEqual(await ids('skill=Billing'), [ann.id]);
      assert.deepEqual(await ids('q=zEBRA'), [ann.id]);
      assert.deepEqual(await ids('q=%40bob_f'), [bob.id]);
      assert.deepEqual(await ids('q=%25'), []);
      assert.deepEqual(await ids(`team_id=${UNKNOWN_TEAM}`), []);
    });

    it('refuses bad query values with 422', async () => {
      const d = await desk();
      for (const [q, field] of [['limit=0', 'limit'], ['limit=201', 'limit'], ['offset=-1', 'offset'], ['active=maybe', 'active'], ['role=owner', 'role'], ['team_id=nope', 'team_id'], ['sort=name', 'sort'], ['cursor=garbage', 'cursor']]) {
        assertValidation(await d.call('get', `/v1/agents?${q}`), field);
      }
    });

    it('404 for an unknown or malformed id', async () => {
      const d = await desk();
      for (const id of [UNKNOWN_AGENT, 'nope', UNKNOWN_TEAM]) {
        const res = await d.call('get', `/v1/agents/${id}`);
        assertProblem(res, 404, 'not_found');
        assert.equal(res.body.detail, 'Agent not found');
      }
    });

    it('has no DELETE: agents are retired, never deleted', async () => {
      const d = await desk();
      const a = await d.agent();
      assertProblem(await d.call('delete', `/v1/agents/${a.id}`), 405, 'method_not_allowed');
      assert.equal((await d.getAgent(a.id)).active, true);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('PATCH /v1/agents/{id}', () => {
    it('changes role, skills, capacity; retires and reactivates; updated_at moves', async () => {
      const d = await desk();
      const a = await d.agent();
      const roles = await d.call('patch', `/v1/agents/${a.id}`, { role: 'admin' });
      assert.equal(roles.status, 200, JSON.stringify(roles.body));
      assert.equal(roles.body.role, 'admin');
      assert.ok(roles.body.updated_at >= a.updated_at);
      const back = await d.call('patch', `/v1/agents/${a.id}`, { role: 'agent', skills: ['VIP', 'vip', 'Billing'], max_open_tickets: 3 });
      assert.equal(back.body.role, 'agent');
      assert.deepEqual(back.body.skills, ['vip', 'billing']);
      assert.equal(back.body.max_open_tickets, 3);
      const uncapped = await d.call('patch', `/v1/agents/${a.id}`, { max_open_tickets: null, skills: [] });
      assert.equal(uncapped.body.max_open_tickets, null);
      assert.deepEqual(uncapped.body.skills, []);
      assert.equal((await d.call('patch', `/v1/agents/${a.id}`, { active: false })).body.active, false);
      assert.equal((await d.getAgent(a.id)).active, false);
      assert.equal((await d.call('patch', `/v1/agents/${a.id}`, { active: true })).body.active, true);
      assert.equal((await d.getAgent(a.id)).role, 'agent');
    });

    it('a retired agent cannot take tickets', async () => {
      const d = await desk();
      const a = await d.agent();
      await d.call('patch', `/v1/agents/${a.id}`, { active: false });
      const tk = await d.ticket(null);
      assertProblem(await d.call('post', `/v1/tickets/${tk.id}/assign`, { agent_id: a.id }), 409, 'conflict');
    });

    it('team_ids replaces the agent\'s teams (and the teams show it)', async () => {
      const d = await desk();
      const [x, y, z] = [await d.team(), await d.team(), await d.team()];
      const a = await d.agent({ team_ids: [x.id, y.id] });
      const res = await d.call('patch', `/v1/agents/${a.id}`, { team_ids: [y.id, z.id] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.team_ids, [y.id, z.id].sort());
      assert.deepEqual((await d.getTeam(x.id)).agent_ids, []);
      assert.deepEqual((await d.getTeam(y.id)).agent_ids, [a.id]);
      assert.deepEqual((await d.getTeam(z.id)).agent_ids, [a.id]);
      assert.deepEqual((await d.call('patch', `/v1/agents/${a.id}`, { team_ids: [] })).body.team_ids, []);
      assert.deepEqual((await d.getTeam(y.id)).agent_ids, []);
    });

    it('refuses bad input with 422: empty body, unknown or read-only fields, bad values', async () => {
      const d = await desk();
      const a = await d.agent();
      const bad: [Record<string, unknown>, string][] = [
        [{ name: 'New name' }, 'name'],
        [{ telegram_user_id: 5 }, 'telegram_user_id'],
        [{ open_tickets: 3 }, 'open_tickets'],
        [{ role: 'root' }, 'role'],
        [{ max_open_tickets: -1 }, 'max_open_tickets'],
        [{ skills: [42] }, 'skills[0]'],
        [{ active: null }, 'active'],
        [{ team_ids: [null] }, 'team_ids[0]'],
      ];
      for (const [body, field] of bad) assertValidation(await d.call('patch', `/v1/agents/${a.id}`, body), field);
      assertProblem(await d.call('patch', `/v1/agents/${a.id}`, {}), 422, 'validation_error');
      const after = await d.getAgent(a.id);
      assert.deepEqual(after, a);
    });

    it('404 for an unknown or malformed id', async () => {
      const d = await desk();
      for (const id of [UNKNOWN_AGENT, 'ag_nope']) {
        const res = await d.call('patch', `/v1/agents/${id}`, { role: 'lead' });
        assertProblem(res, 404, 'not_found');
        assert.equal(res.body.detail, 'Agent not found');
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('open_tickets', () => {
    it('counts the agent\'s tickets in open, in_progress and waiting_on_customer, not resolved or closed, nor others\'', async () => {
      const d = await desk();
      const a = await d.agent();
      const b = await d.agent();
      const t1 = await d.ticket(a.id);
      const t2 = await d.ticket(a.id);
      const t3 = await d.ticket(a.id);
      const t4 = await d.ticket(a.id);
      await d.ticket(b.id);
      await d.ticket(null);
      assert.equal((await d.getAgent(a.id)).open_tickets, 4);
      await d.setStatus(t2.id, 'in_progress');
      await d.setStatus(t3.id, 'waiting_on_customer');
      assert.equal((await d.getAgent(a.id)).open_tickets, 4);
      await d.setStatus(t4.id, 'resolved');
      assert.equal((await d.getAgent(a.id)).open_tickets, 3);
      await d.setStatus(t4.id, 'closed');
      await d.setStatus(t1.id, 'resolved');
      assert.equal((await d.getAgent(a.id)).open_tickets, 2);
      const list = await d.call('get', '/v1/agents');
      const byId = new Map(list.body.items.map((x: any) => [x.id, x.open_tickets]));
      assert.equal(byId.get(a.id), 2);
      assert.equal(byId.get(b.id), 1);
      // last_assigned_at moves when assignment picks the agent.
      const picked = await d.ticket(null);
      const res = await d.call('post', `/v1/tickets/${picked.id}/assign`, { strategy: 'least_loaded' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const chosen = await d.getAgent(res.body.assignee_id);
      assert.equal(typeof chosen.last_assigned_at, 'string');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('teams', () => {
    it('POST creates a team with members, auto_assign and paused; GET shows it', async () => {
      const d = await desk();
      const a = await d.agent();
      const b = await d.agent();
      const res = await d.call('post', '/v1/teams', { name: '  Billing  ', agent_ids: [b.id, a.id, a.id], auto_assign: 'round_robin', paused: true });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.headers.location, `/v1/teams/${res.body.id}`);
      assert.deepEqual(Object.keys(res.body).sort(), TEAM_KEYS);
      assert.match(res.body.id, /^team_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.body.name, 'Billing');
      assert.deepEqual(res.body.agent_ids, [a.id, b.id].sort());
      assert.equal(res.body.auto_assign, 'round_robin');
      assert.equal(res.body.paused, true);
      assert.deepEqual(await d.getTeam(res.body.id), res.body);
      assert.deepEqual((await d.getAgent(a.id)).team_ids, [res.body.id]);
      const plain = await d.team({ name: 'Plain' });
      assert.equal(plain.auto_assign, null);
      assert.equal(plain.paused, false);
      assert.deepEqual(plain.agent_ids, []);
    });

    it('team names are unique per workspace, any case (409), on create and on rename; other workspaces may reuse them', async () => {
      const d = await desk();
      await d.team({ name: 'Support' });
      const dup = await d.call('post', '/v1/teams', { name: 'SUPPORT' });
      assertProblem(dup, 409, 'conflict');
      assert.equal(dup.body.details[0].field, 'name');
      const other = await d.team({ name: 'Sales' });
      assertProblem(await d.call('patch', `/v1/teams/${other.id}`, { name: 'support' }), 409, 'conflict');
      assert.equal((await d.getTeam(other.id)).name, 'Sales');
      const renamed = await d.call('patch', `/v1/teams/${other.id}`, { name: 'SALES' });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
      assert.equal(renamed.body.name, 'SALES');
      const e = await desk();
      await e.team({ name: 'Support' });
    });

    it('PATCH replaces members, sets auto_assign (null too) and paused', async () => {
      const d = await desk();
      const [a, b, c] = [await d.agent(), await d.agent(), await d.agent()];
      const team = await d.team({ agent_ids: [a.id, b.id] });
      const res = await d.call('patch', `/v1/teams/${team.id}`, { agent_ids: [c.id, b.id], auto_assign: 'skills', paused: true });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.agent_ids, [b.id, c.id].sort());
      assert.equal(res.body.auto_assign, 'skills');
      assert.equal(res.body.paused, true);
      assert.deepEqual((await d.getAgent(a.id)).team_ids, []);
      assert.deepEqual((await d.getAgent(c.id)).team_ids, [team.id]);
      const cleared = await d.call('patch', `/v1/teams/${team.id}`, { auto_assign: null, paused: false, agent_ids: [] });
      assert.equal(cleared.body.auto_assign, null);
      assert.equal(cleared.body.paused, false);
      assert.deepEqual(cleared.body.agent_ids, []);
      assert.deepEqual((await d.getAgent(b.id)).team_ids, []);
    });

    it('membership written from the agent\'s side and the team\'s side agree', async () => {
      const d = await desk();
      const [x, y] = [await d.team(), await d.team()];
      const a = await d.agent({ team_ids: [x.id] });
      const b = await d.agent();
      await d.call('patch', `/v1/teams/${y.id}`, { agent_ids: [a.id, b.id] });
      assert.deepEqual((await d.getAgent(a.id)).team_ids, [x.id, y.id].sort());
      assert.deepEqual((await d.getAgent(b.id)).team_ids, [y.id]);
      await d.call('patch', `/v1/agents/${a.id}`, { team_ids: [x.id] });
      assert.deepEqual((await d.getTeam(y.id)).agent_ids, [b.id]);
      assert.deepEqual((await d.getTeam(x.id)).agent_ids, [a.id]);
      const members = await d.call('get', `/v1/agents?team_id=${y.id}`);
      assert.deepEqual(members.body.items.map((m: any) => m.id), [b.id]);
    });

    it('lists teams oldest first, paginated, q over the name', async () => {
      const d = await desk();
      const made = [await d.team({ name: 'Alpha billing' }), await d.team({ name: 'Beta' }), await d.team({ name: 'Gamma Billing' })];
      const page = await d.call('get', '/v1/teams?limit=2');
      assert.equal(page.status, 200);
      assert.deepEqual(page.body.items.map((x: any) => x.id), made.slice(0, 2).map((x) => x.id));
      assert.equal(page.body.total, 3);
      for (const x of page.body.items) assert.deepEqual(Object.keys(x).sort(), TEAM_KEYS);
      const next = await d.call('get', `/v1/teams?limit=2&cursor=${page.body.next_cursor}`);
      assert.deepEqual(next.body.items.map((x: any) => x.id), [made[2].id]);
      const q = await d.call('get', '/v1/teams?q=BILLING');
      assert.deepEqual(q.body.items.map((x: any) => x.id), [made[0].id, made[2].id]);
      assertValidation(await d.call('get', '/v1/teams?active=true'), 'active');
      assertValidation(await d.call('get', '/v1/teams?limit=500'), 'limit');
    });

    it('refuses bad input with 422', async () => {
      const d = await desk();
      const team = await d.team();
      const badCreate: [Record<string, unknown>, string][] = [
        [{}, 'name'],
        [{ name: '' }, 'name'],
        [{ name: '  ' }, 'name'],
        [{ name: 'x'.repeat(201) }, 'name'],
        [{ name: 'Ok', auto_assign: 'random' }, 'auto_assign'],
        [{ name: 'Ok', paused: 'no' }, 'paused'],
        [{ name: 'Ok', agent_ids: ['ag_bad'] }, 'agent_ids[0]'],
        [{ name: 'Ok', agent_ids: [UNKNOWN_TEAM] }, 'agent_ids[0]'],
        [{ name: 'Ok', color: 'red' }, 'color'],
      ];
      for (const [body, field] of badCreate) assertValidation(await d.call('post', '/v1/teams', body), field);
      assertProblem(await d.call('patch', `/v1/teams/${team.id}`, {}), 422, 'validation_error');
      assertValidation(await d.call('patch', `/v1/teams/${team.id}`, { agent_ids: 'all' }), 'agent_ids');
      assertValidation(await d.call('patch', `/v1/teams/${team.id}`, { id: UNKNOWN_TEAM }), 'id');
      assert.equal((await d.call('get', '/v1/teams')).body.total, 1);
    });

    it('404 for an unknown or malformed team id in the path; no DELETE', async () => {
      const d = await desk();
      for (const id of [UNKNOWN_TEAM, 'team_1', UNKNOWN_AGENT]) {
        for (const res of [await d.call('get', `/v1/teams/${id}`), await d.call('patch', `/v1/teams/${id}`, { paused: true })]) {
          assertProblem(res, 404, 'not_found');
          assert.equal(res.body.detail, 'Team not found');
        }
      }
      const team = await d.team();
      assertProblem(await d.call('delete', `/v1/teams/${team.id}`), 405, 'method_not_allowed');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('scopes', () => {
    const writes = (ids: { agent: string; team: string }): [Method, string, unknown][] => [
      ['post', '/v1/agents', { username: uname() }],
      ['patch', `/v1/agents/${ids.agent}`, { role: 'lead' }],
      ['post', '/v1/teams', { name: `Scoped ${++nameSeq}` }],
      ['patch', `/v1/teams/${ids.team}`, { paused: true }],
    ];
    const reads = (ids: { agent: string; team: string }): [Method, string][] => [
      ['get', '/v1/agents'], ['get', `/v1/agents/${ids.agent}`], ['get', '/v1/teams'], ['get', `/v1/teams/${ids.team}`],
    ];

    it('writes need manage:agents (403 with required_scope otherwise, also for a read:tickets key)', async () => {
      const d = await desk();
      const ids = { agent: (await d.agent()).id, team: (await d.team()).id };
      const reader = await d.keyWith(['read:tickets', 'write:tickets', 'manage:settings']);
      for (const [method, path, body] of writes(ids)) {
        const res = await reader(method, path, body);
        assertProblem(res, 403, 'forbidden');
        assert.equal(res.body.required_scope, 'manage:agents', `${method} ${path}`);
      }
      assert.equal((await d.getAgent(ids.agent)).role, 'agent');
      assert.equal((await d.getTeam(ids.team)).paused, false);
      const manager = await d.keyWith(['manage:agents']);
      for (const [method, path, body] of writes(ids)) {
        const res = await manager(method, path, body);
        assert.ok(res.status === 200 || res.status === 201, `${method} ${path}: ${JSON.stringify(res.body)}`);
      }
    });

    it('reads need read:tickets (403 with required_scope otherwise, also for a manage:agents key)', async () => {
      const d = await desk();
      const ids = { agent: (await d.agent()).id, team: (await d.team()).id };
      const reader = await d.keyWith(['read:tickets']);
      for (const [method, path] of reads(ids)) assert.equal((await reader(method, path)).status, 200, `${method} ${path}`);
      for (const scopes of [['manage:agents'], ['read:contacts', 'write:tickets']]) {
        const other = await d.keyWith(scopes);
        for (const [method, path] of reads(ids)) {
          const res = await other(method, path);
          assertProblem(res, 403, 'forbidden');
          assert.equal(res.body.required_scope, 'read:tickets');
        }
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('tenant isolation', () => {
    it('another workspace\'s agent and team ids in the path answer 404 like unknown ones, and change nothing', async () => {
      const a = await desk();
      const b = await desk();
      const agentA = await a.agent({ role: 'agent' });
      const teamA = await a.team({ agent_ids: [agentA.id] });
      const cases: [Method, string, string, unknown][] = [
        ['get', `/v1/agents/${agentA.id}`, `/v1/agents/${UNKNOWN_AGENT}`, undefined],
        ['patch', `/v1/agents/${agentA.id}`, `/v1/agents/${UNKNOWN_AGENT}`, { role: 'admin', active: false, team_ids: [] }],
        ['get', `/v1/teams/${teamA.id}`, `/v1/teams/${UNKNOWN_TEAM}`, undefined],
        ['patch', `/v1/teams/${teamA.id}`, `/v1/teams/${UNKNOWN_TEAM}`, { name: 'Hijacked', agent_ids: [], paused: true }],
      ];
      for (const [method, foreign, unknown, body] of cases) {
        const f = await b.call(method, foreign, body);
        const u = await b.call(method, unknown, body);
        assertProblem(f, 404, 'not_found');
        assert.equal(f.body.detail, u.body.detail, `${method} ${foreign}`);
      }
      const agentNow = await a.getAgent(agentA.id);
      assert.equal(agentNow.role, 'agent');
      assert.equal(agentNow.active, true);
      assert.deepEqual(agentNow.team_ids, [teamA.id]);
      assert.deepEqual(await a.getTeam(teamA.id), teamA);
    });

    it('another workspace\'s ids in bodies answer 404 naming the resource, and change nothing', async () => {
      const a = await desk();
      const b = await desk();
      const agentA = await a.agent();
      const teamA = await a.team();
      const agentB = await b.agent();
      const teamB = await b.team({ agent_ids: [agentB.id] });
      const cases: [Method, string, unknown, string][] = [
        ['post', '/v1/agents', { username: uname(), team_ids: [teamA.id] }, 'Team not found'],
        ['patch', `/v1/agents/${agentB.id}`, { team_ids: [teamB.id, teamA.id] }, 'Team not found'],
        ['post', '/v1/teams', { name: 'Poacher', agent_ids: [agentA.id] }, 'Agent not found'],
        ['patch', `/v1/teams/${teamB.id}`, { agent_ids: [agentA.id] }, 'Agent not found'],
        ['patch', `/v1/teams/${teamB.id}`, { agent_ids: [UNKNOWN_AGENT] }, 'Agent not found'],
      ];
      for (const [method, path, body, detail] of cases) {
        const res = await b.call(method, path, body);
        assertProblem(res, 404, 'not_found');
        assert.equal(res.body.detail, detail, `${method} ${path}`);
      }
      assert.deepEqual((await a.getTeam(teamA.id)).agent_ids, []);
      assert.deepEqual((await a.getAgent(agentA.id)).team_ids, []);
      assert.deepEqual((await b.getTeam(teamB.id)).agent_ids, [agentB.id]);
      assert.deepEqual((await b.getAgent(agentB.id)).team_ids, [teamB.id]);
      assert.equal((await b.call('get', '/v1/agents')).body.total, 1);
      assert.equal((await b.call('get', '/v1/teams')).body.total, 1);
      assert.equal(Number((await db.knex('agent_teams').where({ team_id: teamA.id }).count({ n: '*' }))[0].n), 0);
    });

    it('lists show only the workspace\'s own agents and teams', async () => {
      const a = await desk();
      const b = await desk();
      const mine = await a.agent();
      await b.agent();
      const myTeam = await a.team();
      await b.team();
      assert.deepEqual((await a.call('get', '/v1/agents')).body.items.map((x: any) => x.id), [mine.id]);
      assert.deepEqual((await a.call('get', '/v1/teams')).body.items.map((x: any) => x.id), [myTeam.id]);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('group members become agents (registerMember)', () => {
    const register = (workspaceId: string, m: { telegramUserId: number; firstName?: string; lastName?: string; username?: string }) =>
      t.services.agents.registerMember(db.knex, workspaceId, m);

    it('a member who acts for the first time becomes an agent (role agent), once; name and username kept current', async () => {
      const d = await desk();
      const tg = nextTg();
      const first = await register(d.ws.id, { telegramUserId: tg, firstName: 'Eve', lastName: 'Adams', username: 'eve_a' });
      assert.equal(first.role, 'agent');
      assert.equal(first.name, 'Eve Adams');
      const again = await register(d.ws.id, { telegramUserId: tg, firstName: 'Eve', username: 'eve_b' });
      assert.equal(again.id, first.id);
      const shown = await d.getAgent(first.id);
      assert.equal(shown.name, 'Eve');
      assert.equal(shown.username, 'eve_b');
      assert.equal(shown.telegram_user_id, tg);
      assert.equal((await d.call('get', '/v1/agents')).body.total, 1);
    });

    it('links a pre-registered agent by username (any case) on first use: no duplicate; its settings stay', async () => {
      const d = await desk();
      const team = await d.team();
      const pre = await d.agent({ username: 'Frank_Pre', role: 'lead', skills: ['billing'], max_open_tickets: 4, team_ids: [team.id] });
      const tg = nextTg();
      const agent = await register(d.ws.id, { telegramUserId: tg, firstName: 'Frank', lastName: 'Ocean', username: 'frank_pre' });
      assert.equal(agent.id, pre.id);
      const shown = await d.getAgent(pre.id);
      assert.equal(shown.telegram_user_id, tg);
      assert.equal(shown.username, 'frank_pre');
      assert.equal(shown.name, 'Frank Ocean');
      assert.equal(shown.role, 'lead');
      assert.deepEqual(shown.skills, ['billing']);
      assert.equal(shown.max_open_tickets, 4);
      assert.deepEqual(shown.team_ids, [team.id]);
      assert.equal((await d.call('get', '/v1/agents')).body.total, 1);
      assert.equal((await register(d.ws.id, { telegramUserId: tg, firstName: 'Frank', lastName: 'Ocean', username: 'frank_pre' })).id, pre.id);
      // Another person taking that username later is not linked to the taken agent.
      const other = await register(d.ws.id, { telegramUserId: nextTg(), firstName: 'Imposter', username: 'Frank_Pre' });
      assert.notEqual(other.id, pre.id);
      assert.equal((await d.getAgent(pre.id)).telegram_user_id, tg);
    });

    it('a pre-registration by telegram_user_id is the agent of that member', async () => {
      const d = await desk();
      const tg = nextTg();
      const pre = await d.agent({ username: undefined, telegram_user_id: tg, role: 'admin' });
      const agent = await register(d.ws.id, { telegramUserId: tg, firstName: 'Gina', username: 'gina_g' });
      assert.equal(agent.id, pre.id);
      assert.equal(agent.role, 'admin');
      assert.equal((await d.getAgent(pre.id)).name, 'Gina');
    });

    it('links only in its own workspace, only active pre-registrations, only without a Telegram user', async () => {
      const a = await desk();
      const b = await desk();
      const inB = await b.agent({ username: 'hank_ws' });
      const retired = await a.agent({ username: 'ivy_retired' });
      await a.call('patch', `/v1/agents/${retired.id}`, { active: false });
      const hank = await register(a.ws.id, { telegramUserId: nextTg(), firstName: 'Hank', username: 'hank_ws' });
      assert.notEqual(hank.id, inB.id);
      assert.equal((await b.getAgent(inB.id)).telegram_user_id, null);
      const ivy = await register(a.ws.id, { telegramUserId: nextTg(), firstName: 'Ivy', username: 'ivy_retired' });
      assert.notEqual(ivy.id, retired.id);
      assert.equal(ivy.active, true);
      assert.equal((await a.getAgent(retired.id)).telegram_user_id, null);
      // A member without a username is never linked to a pre-registration.
      const pre = await a.agent({ username: 'jay_pre' });
      const anon = await register(a.ws.id, { telegramUserId: nextTg(), firstName: 'Jay' });
      assert.notEqual(anon.id, pre.id);
      assert.equal(anon.name, 'Jay');
    });

    it('concurrent first messages of one member (and of another with the same username) give one linked agent, and of a fresh member one agent', async () => {
      const d = await desk();
      const pre = await d.agent({ username: 'kim_race' });
      const tg = nextTg();
      const results = await Promise.all(Array.from({ length: 8 }, () =>
        db.knex.transaction((tx) => t.services.agents.registerMember(tx, d.ws.id, { telegramUserId: tg, firstName: 'Kim', username: 'kim_race' }))));
      assert.deepEqual(new Set(results.map((r) => r.id)), new Set([pre.id]));
      assert.equal((await d.call('get', '/v1/agents')).body.total, 1);
      assert.equal((await d.getAgent(pre.id)).telegram_user_id, tg);
      // Fresh members registering at once: one agent each.
      const fresh = nextTg();
      const many = await Promise.all(Array.from({ length: 6 }, () => register(d.ws.id, { telegramUserId: fresh, firstName: 'Lou' })));
      assert.equal(new Set(many.map((r) => r.id)).size, 1);
      assert.equal((await d.call('get', '/v1/agents')).body.total, 2);
    });

    it('a pre-registration by id still being written when the member first acts: the member gets that agent, no error, no duplicate', async () => {
      const d = await desk();
      const byUsername = await d.agent({ username: 'mo_race' });
      const tg = nextTg();
      // The API pre-registers the member by id (another username) and has not committed yet…
      let release!: () => void;
      const held = new Promise<void>((r) => { release = r; });
      let created!: string;
      const api = db.knex.transaction(async (tx) => {
        created = (await t.services.agents.create(tx, d.ws.id, { telegram_user_id: tg, username: 'mo_by_id' })).id;
        await held;
      });
      await new Promise((r) => setTimeout(r, 100));
      // …when the member's first message arrives (their username matches the other pre-registration).
      const member = t.services.agents.registerMember(db.knex, d.ws.id, { telegramUserId: tg, firstName: 'Mo', username: 'mo_race' });
      await new Promise((r) => setTimeout(r, 200));
      release();
      await api;
      const agent = await member;
      assert.equal(agent.id, created);
      assert.equal((await d.getAgent(byUsername.id)).telegram_user_id, null, 'the username pre-registration is left alone');
      assert.equal((await d.call('get', '/v1/agents')).body.total, 2);
    });
  });
});
