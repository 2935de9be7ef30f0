/**
 * Escalation rules over the API (SPEC §5): the shape, every condition and action accepted,
 * bad input with its field (empty conditions/actions, each kind of bad value), ids in rules
 * (an id of no workspace 422, another workspace's 404), notify texts with unknown variables
 * (422 naming them), PATCH (replaced whole), DELETE (archive), scopes, 401 and tenancy.
 */
import assert from 'node:assert/strict';
import { escalationRoutes } from '../../src/escalation/escalation-routes.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const KEYS = ['id', 'name', 'enabled', 'conditions', 'actions', 'created_at', 'updated_at'].sort();
const UNKNOWN_ESC = 'esc_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_TEAM = 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_AGENT = 'ag_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const ALL = ['read:tickets', 'write:tickets', 'read:contacts', 'write:contacts', 'read:messages', 'write:messages', 'read:analytics', 'manage:agents', 'manage:settings', 'manage:webhooks', 'manage:keys'];

const COND = { priority_in: ['urgent'] };
const ACT = [{ type: 'add_tag', tag: 'escalated' }];

type Res = { status: number; body: any; headers: Record<string, string> };
type Method = 'get' | 'post' | 'patch' | 'delete';

function assertProblem(res: Res, status: number, code: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(res.headers['content-type'], /^application\/problem\+json/);
  assert.equal(res.body.code, code);
}

const fields = (res: Res) => (res.body.details ?? []).map((d: { field: string }) => d.field);

describe('escalation rules API', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let seq = 0;

  before(() => {
    t = createTestApp(db.knex);
  });

  async function desk() {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: true, name: `Esc desk ${++seq}` });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const withKey = async (auth: string, method: Method, path: string, body?: unknown) => {
      const r = t.request[method](path).set('Authorization', auth);
      return (await (body === undefined ? r : r.send(body as object))) as unknown as Res;
    };
    const call = (method: Method, path: string, body?: unknown) => withKey(key.auth, method, path, body);
    const keyWith = async (scopes: string[]) => {
      const k = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes });
      return (method: Method, path: string, body?: unknown) => withKey(k.auth, method, path, body);
    };
    const create = (body: Record<string, unknown> = {}) => call('post', '/v1/escalation-rules', { name: `Rule ${++seq}`, conditions: COND, actions: ACT, ...body });
    const rule = async (body: Record<string, unknown> = {}) => {
      const res = await create(body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const get = async (id: string) => {
      const res = await call('get', `/v1/escalation-rules/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const team = async () => {
      const res = await call('post', '/v1/teams', { name: `Team ${++seq}` });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const agent = async () => {
      const res = await call('post', '/v1/agents', { username: `esc_agent_${++seq}` });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    return { ws, key, call, keyWith, create, rule, get, team, agent };
  }

  describe('POST and GET', () => {
    it('creates a rule with the documented shape, enabled by default, Location and GET agreeing', async () => {
      const d = await desk();
      const res = await d.create({ name: '  Urgent  ' });
      assert.equal(res.status, 201);
      assert.deepEqual(Object.keys(res.body).sort(), KEYS);
      assert.match(res.body.id, /^esc_[0-9A-Z]{26}$/);
      assert.equal(res.body.name, 'Urgent');
      assert.equal(res.body.enabled, true);
      assert.deepEqual(res.body.conditions, COND);
      assert.deepEqual(res.body.actions, ACT);
      assert.equal(res.headers.location, `/v1/escalation-rules/${res.body.id}`);
      assert.deepEqual(await d.get(res.body.id), res.body);
    });

    it('accepts every condition together and each alone', async () => {
      const d = await desk();
      const tm = await d.team();
      const every = {
        priority_in: ['high', 'urgent'], status_in: ['open', 'in_progress'], team_id_in: [tm.id, null], sla: 'breached',
        age_minutes_gt: 60, contact_tag_in: ['vip'], unassigned_for_minutes_gt: 15,
      };
      assert.deepEqual((await d.rule({ conditions: every })).conditions, every);
      for (const [k, v] of Object.entries(every)) assert.deepEqual((await d.rule({ conditions: { [k]: v } })).conditions, { [k]: v }, k);
      assert.deepEqual((await d.rule({ conditions: { sla: 'warning' } })).conditions, { sla: 'warning' });
      assert.deepEqual((await d.rule({ conditions: { age_minutes_gt: 0 } })).conditions, { age_minutes_gt: 0 });
    });

    it('stores contact tags and add_tag tags as tags are stored (trimmed, lower case)', async () => {
      const d = await desk();
      const r = await d.rule({ conditions: { contact_tag_in: [' VIP ', 'vip', 'Gold'] }, actions: [{ type: 'add_tag', tag: ' Escalated ' }] });
      assert.deepEqual(r.conditions.contact_tag_in, ['vip', 'gold']);
      assert.deepEqual(r.actions, [{ type: 'add_tag', tag: 'escalated' }]);
    });

    it('accepts every action, in order', async () => {
      const d = await desk();
      const tm = await d.team();
      const ag = await d.agent();
      const actions = [
        { type: 'set_priority', priority: 'urgent' },
        { type: 'assign_team', team_id: tm.id },
        { type: 'assign_agent', agent_id: ag.id },
        { type: 'assign', strategy: 'round_robin' },
        { type: 'assign', strategy: 'least_loaded' },
        { type: 'assign', strategy: 'skills' },
        { type: 'add_tag', tag: 'escalated' },
        { type: 'notify', to: ['topic', 'lead_chat'], text: 'Ticket #{{ticket_number}} of {{customer_name|a customer}} ({{agent_name|nobody}}) at {{workspace_name}}' },
        { type: 'notify', to: ['lead_chat'], text: 'plain' },
      ];
      assert.deepEqual((await d.rule({ actions })).actions, actions);
    });

    const invalid: [string, Record<string, unknown>, string][] = [
      ['empty conditions', { conditions: {} }, 'conditions'],
      ['no conditions', { conditions: undefined }, 'conditions'],
      ['empty actions', { actions: [] }, 'actions'],
      ['no actions', { actions: undefined }, 'actions'],
      ['an unknown condition', { conditions: { colour: 'red' } }, 'conditions.colour'],
      ['an unknown priority', { conditions: { priority_in: ['asap'] } }, 'conditions.priority_in[0]'],
      ['an empty priority_in', { conditions: { priority_in: [] } }, 'conditions.priority_in'],
      ['an unknown status', { conditions: { status_in: ['pending'] } }, 'conditions.status_in[0]'],
      ['a malformed team id', { conditions: { team_id_in: ['team_x'] } }, 'conditions.team_id_in[0]'],
      ['an unknown sla value', { conditions: { sla: 'late' } }, 'conditions.sla'],
      ['a negative age', { conditions: { age_minutes_gt: -1 } }, 'conditions.age_minutes_gt'],
      ['a fractional age', { conditions: { age_minutes_gt: 1.5 } }, 'conditions.age_minutes_gt'],
      ['an age over a year', { conditions: { age_minutes_gt: 525601 } }, 'conditions.age_minutes_gt'],
      ['an age given as text', { conditions: { age_minutes_gt: '60' } }, 'conditions.age_minutes_gt'],
      ['a contact tag with a space', { conditions: { contact_tag_in: ['a b'] } }, 'conditions.contact_tag_in[0]'],
      ['a negative unassigned_for', { conditions: { unassigned_for_minutes_gt: -5 } }, 'conditions.unassigned_for_minutes_gt'],
      ['an unknown action type', { actions: [{ type: 'page_someone' }] }, 'actions[0].type'],
      ['set_priority without a priority', { actions: [{ type: 'set_priority' }] }, 'actions[0].priority'],
      ['set_priority with an unknown priority', { actions: [{ type: 'set_priority', priority: 'asap' }] }, 'actions[0].priority'],
      ['assign_team with a malformed id', { actions: [{ type: 'assign_team', team_id: 'nope' }] }, 'actions[0].team_id'],
      ['assign_agent without an id', { actions: [{ type: 'assign_agent' }] }, 'actions[0].agent_id'],
      ['assign with an unknown strategy', { actions: [{ type: 'assign', strategy: 'random' }] }, 'actions[0].strategy'],
      ['add_tag with an empty tag', { actions: [{ type: 'add_tag', tag: '' }] }, 'actions[0].tag'],
      ['notify to nobody', { actions: [{ type: 'notify', to: [], text: 'x' }] }, 'actions[0].to'],
      ['notify to an unknown target', { actions: [{ type: 'notify', to: ['email'], text: 'x' }] }, 'actions[0].to[0]'],
      ['notify with a blank text', { actions: [{ type: 'notify', to: ['topic'], text: '   ' }] }, 'actions[0].text'],
      ['an action with an extra field', { actions: [{ type: 'add_tag', tag: 'x', note: 'y' }] }, 'actions[0].note'],
      ['an unknown field', { colour: 'red' }, 'colour'],
      ['enabled given as text', { enabled: 'yes' }, 'enabled'],
      ['a blank name', { name: '  ' }, 'name'],
    ];
    for (const [what, body, field] of invalid) {
      it(`answers ${what} with 422 naming ${field}, creating nothing`, async () => {
        const d = await desk();
        const res = await d.create(body);
        assertProblem(res, 422, 'validation_error');
        assert.ok(fields(res).includes(field), JSON.stringify(res.body.details));
        assert.equal((await d.call('get', '/v1/escalation-rules')).body.total, 0);
      });
    }

    it('answers a notify text with unknown variables with 422 naming each of them and the action', async () => {
      const d = await desk();
      const res = await d.create({ actions: [ACT[0], { type: 'notify', to: ['topic'], text: 'Hi {{customer_nmae}}, {{ticket_number}} {{priority}}' }] });
      assertProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details.map((x: any) => [x.field, x.received]), [['actions[1].text', 'customer_nmae'], ['actions[1].text', 'priority']]);
      assert.match(res.body.detail, /customer_nmae/);
      const unclosed = await d.create({ actions: [{ type: 'notify', to: ['topic'], text: 'Hi {{customer_name' }] });
      assertProblem(unclosed, 422, 'validation_error');
      assert.deepEqual(fields(unclosed), ['actions[0].text']);
    });

    it('answers ids that are no team or agent at all with 422 naming each field', async () => {
      const d = await desk();
      const res = await d.create({
        conditions: { team_id_in: [UNKNOWN_TEAM] },
        actions: [{ type: 'assign_team', team_id: UNKNOWN_TEAM }, { type: 'assign_agent', agent_id: UNKNOWN_AGENT }],
      });
      assertProblem(res, 422, 'validation_error');
      assert.deepEqual(fields(res), ['conditions.team_id_in[0]', 'actions[0].team_id', 'actions[1].agent_id']);
      assert.equal(res.body.details[0].received, UNKNOWN_TEAM);
    });

    it('answers another workspace\'s team or agent with 404, exactly like an unknown team or agent elsewhere in the API', async () => {
      const mine = await desk();
      const theirs = await desk();
      const tm = await theirs.team();
      const ag = await theirs.agent();
      for (const body of [
        { conditions: { team_id_in: [tm.id] } },
        { actions: [{ type: 'assign_team', team_id: tm.id }] },
        { actions: [{ type: 'assign_agent', agent_id: ag.id }] },
      ]) {
        const res = await mine.create(body);
        assertProblem(res, 404, 'not_found');
        assert.ok(!JSON.stringify(res.body).includes(theirs.ws.id));
      }
      // The same answer the teams API gives for an unknown team.
      const viaTeams = await mine.call('get', `/v1/teams/${UNKNOWN_TEAM}`);
      assert.equal((await mine.create({ actions: [{ type: 'assign_team', team_id: tm.id }] })).body.detail, viaTeams.body.detail);
      assert.equal((await mine.call('get', '/v1/escalation-rules')).body.total, 0);
    });

    it('lists rules oldest first, paginated, filtered by enabled', async () => {
      const d = await desk();
      const a = await d.rule();
      const b = await d.rule({ enabled: false });
      const c = await d.rule();
      const all = (await d.call('get', '/v1/escalation-rules')).body;
      assert.deepEqual(all.items.map((r: any) => r.id), [a.id, b.id, c.id]);
      assert.equal(all.total, 3);
      assert.deepEqual((await d.call('get', '/v1/escalation-rules?enabled=false')).body.items.map((r: any) => r.id), [b.id]);
      const page = (await d.call('get', '/v1/escalation-rules?limit=2')).body;
      assert.equal(page.items.length, 2);
      assert.equal(page.has_more, true);
      assertProblem(await d.call('get', '/v1/escalation-rules?limit=201'), 422, 'validation_error');
    });
  });

  describe('PATCH and DELETE', () => {
    it('changes only the fields given; conditions and actions are replaced whole', async () => {
      const d = await desk();
      const r = await d.rule({ conditions: { priority_in: ['urgent'], sla: 'breached' } });
      const renamed = (await d.call('patch', `/v1/escalation-rules/${r.id}`, { name: 'New name' })).body;
      assert.deepEqual({ ...renamed, updated_at: r.updated_at }, { ...r, name: 'New name' });
      const replaced = await d.call('patch', `/v1/escalation-rules/${r.id}`, { conditions: { age_minutes_gt: 30 }, actions: [{ type: 'set_priority', priority: 'high' }], enabled: false });
      assert.equal(replaced.status, 200);
      assert.deepEqual(replaced.body.conditions, { age_minutes_gt: 30 });
      assert.deepEqual(replaced.body.actions, [{ type: 'set_priority', priority: 'high' }]);
      assert.equal(replaced.body.enabled, false);
      assert.deepEqual(await d.get(r.id), replaced.body);
    });

    it('checks a PATCH like a create: empty body, empty conditions, unknown ids (422), another workspace\'s ids (404), unknown variables (422)', async () => {
      const d = await desk();
      const other = await desk();
      const tm = await other.team();
      const r = await d.rule();
      const path = `/v1/escalation-rules/${r.id}`;
      assertProblem(await d.call('patch', path, {}), 422, 'validation_error');
      assertProblem(await d.call('patch', path, { conditions: {} }), 422, 'validation_error');
      assertProblem(await d.call('patch', path, { actions: [] }), 422, 'validation_error');
      assertProblem(await d.call('patch', path, { actions: [{ type: 'assign_team', team_id: UNKNOWN_TEAM }] }), 422, 'validation_error');
      assertProblem(await d.call('patch', path, { conditions: { team_id_in: [tm.id] } }), 404, 'not_found');
      const vars = await d.call('patch', path, { actions: [{ type: 'notify', to: ['lead_chat'], text: '{{nope}}' }] });
      assertProblem(vars, 422, 'validation_error');
      assert.equal(vars.body.details[0].received, 'nope');
      assert.deepEqual(await d.get(r.id), r, 'nothing changed');
    });

    it('DELETE archives: 204, then 404 on every route, gone from the list', async () => {
      const d = await desk();
      const r = await d.rule();
      const del = await d.call('delete', `/v1/escalation-rules/${r.id}`);
      assert.equal(del.status, 204);
      for (const [m, body] of [['get', undefined], ['patch', { name: 'x' }], ['delete', undefined]] as const) {
        assertProblem(await d.call(m, `/v1/escalation-rules/${r.id}`, body), 404, 'not_found');
      }
      assert.equal((await d.call('get', '/v1/escalation-rules')).body.total, 0);
    });
  });

  describe('scopes and tenancy', () => {
    const routes = (id: string) => [
      { method: 'get', path: '/v1/escalation-rules', status: 200 },
      { method: 'post', path: '/v1/escalation-rules', status: 201, body: { name: 'Scoped', conditions: COND, actions: ACT } },
      { method: 'get', path: `/v1/escalation-rules/${id}`, status: 200 },
      { method: 'patch', path: `/v1/escalation-rules/${id}`, status: 200, body: { name: 'Scoped too' } },
      { method: 'delete', path: `/v1/escalation-rules/${id}`, status: 204 },
    ] as { method: Method; path: string; status: number; body?: unknown }[];

    it('covers every escalation route of the app, all with manage:settings', () => {
      const defined = escalationRoutes(t.services.escalations).map((r) => `${r.method} ${r.path} ${r.scope}`).sort();
      assert.deepEqual(defined, [
        'delete /v1/escalation-rules/:id manage:settings', 'get /v1/escalation-rules manage:settings', 'get /v1/escalation-rules/:id manage:settings',
        'patch /v1/escalation-rules/:id manage:settings', 'post /v1/escalation-rules manage:settings',
      ]);
    });

    it('each route refuses a key holding every other scope (403 naming manage:settings) and works with only manage:settings', async () => {
      const d = await desk();
      const r = await d.rule();
      const without = await d.keyWith(ALL.filter((s) => s !== 'manage:settings'));
      const only = await d.keyWith(['manage:settings']);
      for (const x of routes(r.id)) {
        const denied = await without(x.method, x.path, x.body);
        assertProblem(denied, 403, 'forbidden');
        assert.equal(denied.body.required_scope, 'manage:settings', `${x.method} ${x.path}`);
        const ok = await only(x.method, x.path, x.body);
        assert.equal(ok.status, x.status, `${x.method} ${x.path}: ${JSON.stringify(ok.body)}`);
      }
    });

    it('401 without a valid key', async () => {
      for (const x of routes(UNKNOWN_ESC)) {
        assertProblem((await t.request[x.method](x.path).set('Authorization', 'Bearer td_live_nope')) as unknown as Res, 401, 'unauthorized');
        assertProblem((await t.request[x.method](x.path)) as unknown as Res, 401, 'unauthorized');
      }
    });

    it('another workspace\'s rule answers exactly as an unknown id, on every route, and stays unchanged', async () => {
      const mine = await desk();
      const theirs = await desk();
      const r = await theirs.rule();
      for (const x of routes(r.id).filter((y) => y.path.includes(r.id))) {
        const foreign = await mine.call(x.method, x.path, x.body);
        const unknown = await mine.call(x.method, x.path.replace(r.id, UNKNOWN_ESC), x.body);
        assertProblem(foreign, 404, 'not_found');
        assertProblem(unknown, 404, 'not_found');
        assert.equal(foreign.body.detail, unknown.body.detail, x.path);
      }
      assert.deepEqual(await theirs.get(r.id), r);
      assert.deepEqual((await mine.call('get', '/v1/escalation-rules')).body.items, []);
      assertProblem(await mine.call('get', '/v1/escalation-rules/esc_x'), 404, 'not_found');
    });
  });
});
