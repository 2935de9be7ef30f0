/**
 * Metrics API (SPEC §6, §4.3): exact stats (count, mean, p50/p90 as percentile_cont, max) of
 * first response and resolution overall and per group_by (agent, team, priority, day, week in
 * the workspace time zone), business seconds with business hours, SLA compliance per target,
 * the backlog, CSAT, the agents table, validation (422/404), scopes and tenancy. The facts are
 * recorded when the moments happen (the tickets are driven through the API on a fake clock).
 */
import assert from 'node:assert/strict';
import { makeAgent, makeKey, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const ALL = ['read:tickets', 'write:tickets', 'read:contacts', 'write:contacts', 'read:messages', 'write:messages', 'read:analytics', 'manage:agents', 'manage:settings', 'manage:webhooks', 'manage:keys'];
const ENDPOINTS = ['first-response', 'resolution', 'sla', 'backlog', 'csat', 'agents'];
const UNKNOWN_TEAM = 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_AGENT = 'ag_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const MIN = 60_000;

type Res = { status: number; body: any };

/** Stats of a list of seconds as §4.3 defines them (percentile_cont: linear interpolation). */
function stats(xs: number[], business: number[] = xs) {
  const one = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    const pc = (p: number) => {
      const pos = p * (s.length - 1);
      const lo = Math.floor(pos);
      return s[lo] + (pos - lo) * ((s[Math.ceil(pos)] ?? s[lo]) - s[lo]);
    };
    return s.length
      ? { count: s.length, mean_seconds: Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 1000) / 1000, p50_seconds: Math.round(pc(0.5) * 1000) / 1000, p90_seconds: Math.round(pc(0.9) * 1000) / 1000, max_seconds: s[s.length - 1] }
      : { count: 0, mean_seconds: null, p50_seconds: null, p90_seconds: null, max_seconds: null };
  };
  return { ...one(xs), business: one(business) };
}

describe('Metrics API', () => {
  const db = useTestDatabase();
  const clock = new FakeClock('2026-12-03T12:00:00.000Z');
  let t: TestApp;
  let seq = 0;

  before(() => { t = createTestApp(db.knex, { clock }); });
  after(() => { if (process.env.METRICS_DEBUG) for (const l of t.logs) if (l.includes("\"level\":50")) console.log(l.slice(0, 1500)); });

  async function desk(opts: { timezone?: string } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: true, name: `Metrics desk ${++seq}` });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const withKey = async (auth: string, method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown) => {
      const r = t.request[method](path).set('Authorization', auth);
      return (await (body === undefined ? r : r.send(body as object))) as unknown as Res;
    };
    const call = (method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown) => withKey(key.auth, method, path, body);
    const ok = async (method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown) => {
      const res = await call(method, path, body);
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    if (opts.timezone) await ok('patch', '/v1/workspace', { timezone: opts.timezone });
    const at = (iso: string) => clock.set(iso);
    const ticket = async (when: string, body: Record<string, unknown> = {}) => {
      at(when);
      return ok('post', '/v1/tickets', { contact: { telegram_user_id: 880_000_000 + ++seq, first_name: 'Sam' }, subject: 'Help', ...body });
    };
    const reply = async (id: string, when: string) => { at(when); return ok('post', `/v1/tickets/${id}/messages`, { text: 'On it' }); };
    const status = async (id: string, s: string, when: string) => { at(when); return ok('post', `/v1/tickets/${id}/status`, { status: s }); };
    const customerWrites = async (id: string, when: string) => {
      at(when);
      await t.services.messages.recordInbound(db.knex, ws, id, { text: 'Any news?', accountId: null, chatId: null });
    };
    const rate = async (tk: any, rating: number, when: string) => {
      assert.ok(await t.services.tickets.recordCsat(db.knex, ws.id, tk.id, tk.contact.id, rating, new Date(when)));
    };
    const agent = async (name: string) => makeAgent(db.knex, { workspaceId: ws.id, name });
    const team = async (name: string) => ok('post', '/v1/teams', { name });
    const metrics = (path: string) => call('get', `/v1/metrics/${path}`);
    return { ws, key, call, ok, withKey, ticket, reply, status, customerWrites, rate, agent, team, metrics };
  }

  /**
   * A desk in New York with four answered tickets (first responses 60, 180, 600, 1200 s) and two
   * resolutions (3600 s; 18000 s after a reopen: the last resolution counts). C is created and
   * answered on Dec 4 UTC, which is still Dec 3 in New York.
   */
  async function seeded() {
    const d = await desk({ timezone: 'America/New_York' });
    const [a1, a2] = [await d.agent('Alice'), await d.agent('Bob')];
    const [x, y] = [await d.team('Xray'), await d.team('Yankee')];
    const A = await d.ticket('2026-12-03T12:00:00.000Z', { assignee_id: a1.id, team_id: x.id, priority: 'high' });
    await d.reply(A.id, '2026-12-03T12:01:00.000Z');
    const B = await d.ticket('2026-12-03T12:10:00.000Z', { assignee_id: a1.id, team_id: x.id });
    await d.reply(B.id, '2026-12-03T12:13:00.000Z');
    await d.status(A.id, 'resolved', '2026-12-03T13:00:00.000Z');
    await d.status(B.id, 'resolved', '2026-12-03T14:10:00.000Z');
    await d.status(B.id, 'open', '2026-12-03T15:10:00.000Z');
    await d.status(B.id, 'resolved', '2026-12-03T17:10:00.000Z');
    const C = await d.ticket('2026-12-04T02:00:00.000Z', { assignee_id: a2.id });
    await d.reply(C.id, '2026-12-04T02:10:00.000Z');
    const D = await d.ticket('2026-12-07T15:00:00.000Z', { assignee_id: a2.id, team_id: y.id, priority: 'low' });
    await d.reply(D.id, '2026-12-07T15:20:00.000Z');
    const E = await d.ticket('2026-12-07T16:20:00.000Z', { team_id: x.id, priority: 'urgent' });
    const F = await d.ticket('2026-12-07T16:21:00.000Z');
    await d.ok('delete', `/v1/tickets/${F.id}`);
    await d.rate(A, 5, '2026-12-03T13:05:00.000Z');
    await d.rate(B, 3, '2026-12-03T17:15:00.000Z');
    await d.rate(C, 1, '2026-12-04T03:00:00.000Z');
    await d.rate(D, 4, '2026-12-09T03:00:00.000Z'); // outside the range
    clock.set('2026-12-07T16:30:00.000Z');
    return { ...d, a1, a2, x, y, A, B, C, D, E };
  }
  let s: Awaited<ReturnType<typeof seeded>>;
  const RANGE = 'from=2026-12-01T00:00:00Z&to=2026-12-08T00:00:00Z';

  describe('first response and resolution', () => {
    before(async () => { s = await seeded(); });
    beforeEach(() => clock.set('2026-12-07T16:30:00.000Z'));

    it('overall: exact count, mean, p50/p90 (percentile_cont) and max; business = wall without business hours', async () => {
      const r = await s.metrics(`first-response?${RANGE}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body, { from: '2026-12-01T00:00:00.000Z', to: '2026-12-08T00:00:00.000Z', group_by: null, overall: stats([60, 180, 600, 1200]), groups: [] });
      assert.deepEqual(r.body.overall.p90_seconds, 1020);
      const res = await s.metrics(`resolution?${RANGE}`);
      assert.deepEqual(res.body.overall, stats([3600, 18000]));
    });

    it('a ticket counts when its measured moment falls in [from, to)', async () => {
      assert.deepEqual((await s.metrics('first-response?from=2026-12-04T00:00:00Z&to=2026-12-08T00:00:00Z')).body.overall, stats([600, 1200]));
      // C was answered at 02:10: to is exclusive, from inclusive.
      assert.equal((await s.metrics('first-response?from=2026-12-04T00:00:00Z&to=2026-12-04T02:10:00Z')).body.overall.count, 0);
      assert.equal((await s.metrics('first-response?from=2026-12-04T02:10:00Z&to=2026-12-04T02:11:00Z')).body.overall.count, 1);
      // Default: the last 7 days up to now (Nov 30 16:30 → Dec 7 16:30).
      const def = (await s.metrics('first-response')).body;
      assert.deepEqual([def.from, def.to, def.overall.count], ['2026-11-30T16:30:00.000Z', '2026-12-07T16:30:00.000Z', 4]);
    });

    it('group_by agent (who answered first / the assignee at resolution, with name), team and priority', async () => {
      const byAgent = (await s.metrics(`first-response?${RANGE}&group_by=agent`)).body;
      assert.equal(byAgent.group_by, 'agent');
      assert.deepEqual(byAgent.overall, stats([60, 180, 600, 1200]));
      assert.deepEqual(new Map(byAgent.groups.map((g: any) => [g.key, g])), new Map([
        [s.a1.id, { key: s.a1.id, name: 'Alice', ...stats([60, 180]) }],
        [s.a2.id, { key: s.a2.id, name: 'Bob', ...stats([600, 1200]) }],
      ]));
      const resByAgent = (await s.metrics(`resolution?${RANGE}&group_by=agent`)).body;
      assert.deepEqual(resByAgent.groups, [{ key: s.a1.id, name: 'Alice', ...stats([3600, 18000]) }]);
      const byTeam = (await s.metrics(`first-response?${RANGE}&group_by=team`)).body;
      assert.deepEqual(new Map(byTeam.groups.map((g: any) => [g.key, g])), new Map<string | null, unknown>([
        [s.x.id, { key: s.x.id, name: 'Xray', ...stats([60, 180]) }],
        [s.y.id, { key: s.y.id, name: 'Yankee', ...stats([1200]) }],
        [null, { key: null, name: null, ...stats([600]) }],
      ]));
      const byPriority = (await s.metrics(`first-response?${RANGE}&group_by=priority`)).body;
      assert.deepEqual(byPriority.groups, [
        { key: 'high', ...stats([60]) }, { key: 'normal', ...stats([180, 600]) }, { key: 'low', ...stats([1200]) },
      ]);
    });

    it('group_by day and ISO week in the workspace time zone (02:10 UTC on Dec 4 is Dec 3 in New York)', async () => {
      const byDay = (await s.metrics(`first-response?${RANGE}&group_by=day`)).body;
      assert.deepEqual(byDay.groups, [{ key: '2026-12-03', ...stats([60, 180, 600]) }, { key: '2026-12-07', ...stats([1200]) }]);
      const byWeek = (await s.metrics(`first-response?${RANGE}&group_by=week`)).body;
      assert.deepEqual(byWeek.groups, [{ key: '2026-W49', ...stats([60, 180, 600]) }, { key: '2026-W50', ...stats([1200]) }]);
      await s.ok('patch', '/v1/workspace', { timezone: 'UTC' });
      try {
        const utc = (await s.metrics(`first-response?${RANGE}&group_by=day`)).body;
        assert.deepEqual(utc.groups.map((g: any) => [g.key, g.count]), [['2026-12-03', 2], ['2026-12-04', 1], ['2026-12-07', 1]]);
      } finally {
        await s.ok('patch', '/v1/workspace', { timezone: 'America/New_York' });
      }
    });

    it('filters team_id, agent_id, priority', async () => {
      assert.deepEqual((await s.metrics(`first-response?${RANGE}&team_id=${s.x.id}`)).body.overall, stats([60, 180]));
      assert.deepEqual((await s.metrics(`first-response?${RANGE}&agent_id=${s.a2.id}`)).body.overall, stats([600, 1200]));
      assert.deepEqual((await s.metrics(`first-response?${RANGE}&priority=normal&group_by=agent`)).body.groups.map((g: any) => [g.name, g.count]), [['Alice', 1], ['Bob', 1]]);
      assert.deepEqual((await s.metrics(`resolution?${RANGE}&agent_id=${s.a2.id}`)).body.overall, stats([]));
    });

    it('the facts are written when the moments happen (and the reopen cleared the first resolution)', async () => {
      const row = await db.knex('ticket_metrics').where({ ticket_id: s.B.id }).first();
      assert.equal(row.first_response_s, 180);
      assert.equal(row.resolution_s, 18000);
      assert.equal(row.resolver_id, s.a1.id);
      assert.equal(await db.knex('ticket_metrics').where({ ticket_id: s.E.id }).first(), undefined);
    });

    it('backlog now: not resolved/closed, not archived; by status, priority, age and team', async () => {
      const r = await s.metrics('backlog');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const { by_team: byTeam, ...rest } = r.body;
      assert.deepEqual(rest, {
        as_of: '2026-12-07T16:30:00.000Z', total: 3, unassigned: 1,
        by_status: { open: 1, in_progress: 0, waiting_on_customer: 2 },
        by_priority: { low: 1, normal: 1, high: 0, urgent: 1 },
        by_age: { lt_1h: 1, h1_to_4: 1, h4_to_24: 0, d1_to_3: 0, gt_3d: 1 },
      });
      assert.deepEqual(new Set(byTeam.map((x: any) => JSON.stringify(x))), new Set([
        { key: s.x.id, name: 'Xray', count: 1 }, { key: s.y.id, name: 'Yankee', count: 1 }, { key: null, name: null, count: 1 },
      ].map((x) => JSON.stringify(x))));
      assert.deepEqual((await s.metrics(`backlog?team_id=${s.x.id}`)).body.total, 1);
      assert.deepEqual((await s.metrics(`backlog?agent_id=${s.a2.id}`)).body.by_age, { lt_1h: 0, h1_to_4: 1, h4_to_24: 0, d1_to_3: 0, gt_3d: 1 });
    });

    it('csat: count, average, distribution; groups', async () => {
      const r = (await s.metrics(`csat?${RANGE}`)).body;
      assert.deepEqual(r, { from: '2026-12-01T00:00:00.000Z', to: '2026-12-08T00:00:00.000Z', count: 3, average: 3, distribution: { 1: 1, 2: 0, 3: 1, 4: 0, 5: 1 } });
      const g = (await s.metrics(`csat?${RANGE}&group_by=agent`)).body;
      assert.deepEqual(g.groups, [
        { key: s.a1.id, name: 'Alice', count: 2, average: 4, distribution: { 1: 0, 2: 0, 3: 1, 4: 0, 5: 1 } },
        { key: s.a2.id, name: 'Bob', count: 1, average: 1, distribution: { 1: 1, 2: 0, 3: 0, 4: 0, 5: 0 } },
      ].sort((a, b) => (a.key < b.key ? -1 : 1)));
    });

    it('agents: assigned, resolved, open now, both stats, CSAT average', async () => {
      const r = (await s.metrics(`agents?${RANGE}`)).body;
      assert.deepEqual(r, {
        from: '2026-12-01T00:00:00.000Z', to: '2026-12-08T00:00:00.000Z',
        items: [
          { agent_id: s.a1.id, name: 'Alice', assigned: 2, resolved: 2, open_now: 0, first_response: stats([60, 180]), resolution: stats([3600, 18000]), csat_average: 4 },
          { agent_id: s.a2.id, name: 'Bob', assigned: 2, resolved: 0, open_now: 2, first_response: stats([600, 1200]), resolution: stats([]), csat_average: 1 },
        ],
      });
      const one = (await s.metrics(`agents?${RANGE}&agent_id=${s.a2.id}`)).body;
      assert.deepEqual(one.items.map((i: any) => i.agent_id), [s.a2.id]);
    });

    it('tenancy: another workspace\'s tickets are never counted; its team or agent in a filter is a 404', async () => {
      const other = await desk();
      const team = await other.team('Other team');
      const agent = await other.agent('Other agent');
      const tk = await other.ticket('2026-12-05T10:00:00.000Z', { team_id: team.id, assignee_id: agent.id });
      await other.reply(tk.id, '2026-12-05T10:05:00.000Z');
      await other.status(tk.id, 'resolved', '2026-12-05T11:00:00.000Z');
      clock.set('2026-12-07T16:30:00.000Z');
      assert.deepEqual((await other.metrics(`first-response?${RANGE}`)).body.overall, stats([300]));
      assert.deepEqual((await s.metrics(`first-response?${RANGE}`)).body.overall, stats([60, 180, 600, 1200]));
      assert.deepEqual((await s.metrics(`resolution?${RANGE}`)).body.overall, stats([3600, 18000]));
      assert.equal((await s.metrics('backlog')).body.total, 3);
      assert.deepEqual((await s.metrics(`agents?${RANGE}`)).body.items.map((i: any) => i.name), ['Alice', 'Bob']);
      for (const path of ENDPOINTS) {
        for (const q of [`team_id=${team.id}`, `agent_id=${agent.id}`, `team_id=${UNKNOWN_TEAM}`, `agent_id=${UNKNOWN_AGENT}`]) {
          const r = await s.metrics(`${path}?${q}`);
          assert.equal(r.status, 404, `${path}?${q}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.code, 'not_found');
        }
      }
    });
  });

  describe('business seconds', () => {
    it('measures in the business hours of the ticket\'s SLA calendar', async () => {
      const d = await desk();
      await d.ok('post', '/v1/sla-policies', {
        name: 'Office', is_default: true, warn_at_percent: 80, pause_while_waiting_on_customer: false,
        targets: { normal: { first_response_minutes: 600, resolution_minutes: 6000 } },
        business_hours: { timezone: 'Europe/Berlin', weekly: [1, 2, 3, 4, 5].map((day) => ({ day, start: '09:00', end: '17:00' })) },
      });
      // Friday 16:00 Berlin (15:00 UTC) → Monday 10:00 Berlin: 66 h of wall time, 1 h + 1 h of business time; resolved at 12:00 Berlin (68 h, 4 h).
      const tk = await d.ticket('2026-12-04T15:00:00.000Z');
      await d.reply(tk.id, '2026-12-07T09:00:00.000Z');
      await d.status(tk.id, 'resolved', '2026-12-07T11:00:00.000Z');
      clock.set('2026-12-08T00:00:00.000Z');
      const fr = (await d.metrics(`first-response?${RANGE}`)).body.overall;
      assert.deepEqual(fr, stats([237_600], [7200]));
      const res = (await d.metrics(`resolution?${RANGE}`)).body.overall;
      assert.deepEqual(res, stats([244_800], [14_400]));
    });
  });

  describe('SLA compliance', () => {
    it('targets due in the range and decided: met / breached / compliance; at risk and breached open now', async () => {
      const d = await desk();
      await d.ok('post', '/v1/sla-policies', {
        name: 'Std', is_default: true, warn_at_percent: 80, pause_while_waiting_on_customer: false,
        targets: { normal: { first_response_minutes: 60, next_response_minutes: 30, resolution_minutes: 240 } },
      });
      const T0 = Date.parse('2026-12-03T12:00:00.000Z');
      const m = (minutes: number) => new Date(T0 + minutes * MIN).toISOString();
      const t1 = await d.ticket(m(0));
      const t2 = await d.ticket(m(0));
      await d.ticket(m(0)); // t3: never answered
      await d.reply(t1.id, m(30));
      await d.customerWrites(t1.id, m(40));
      await d.reply(t1.id, m(50)); // next response met (due 70)
      await d.status(t1.id, 'resolved', m(120));
      await d.reply(t2.id, m(90)); // first response late: breached
      await d.customerWrites(t2.id, m(100)); // next response due 130, never answered
      await d.ticket(m(240)); // t4: at risk at 290
      clock.set(m(290));
      await t.services.sla.sweep(db.knex, clock.now());
      const r = await d.metrics(`sla?from=${m(-60)}&to=${m(290)}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body, {
        from: m(-60), to: m(290),
        targets: {
          first_response: { due: 3, met: 1, breached: 2, compliance_percent: 33.33 },
          next_response: { due: 2, met: 1, breached: 1, compliance_percent: 50 },
          resolution: { due: 3, met: 1, breached: 2, compliance_percent: 33.33 },
        },
        at_risk_now: 1, breached_open_now: 2,
      });
      const byPriority = (await d.metrics(`sla?from=${m(-60)}&to=${m(290)}&group_by=priority`)).body;
      assert.deepEqual(byPriority.groups, [{ key: 'normal', targets: r.body.targets }]);
      const empty = (await d.metrics(`sla?from=${m(1000)}&to=${m(2000)}`)).body.targets.first_response;
      assert.deepEqual(empty, { due: 0, met: 0, breached: 0, compliance_percent: null });
    });
  });

  describe('validation and scopes', () => {
    it('bad dates, from ≥ to, a range over 400 days, unknown group_by/priority, malformed ids → 422 with details', async () => {
      const d = await desk();
      const cases: [string, string][] = [
        ['first-response?from=yesterday', 'from'],
        ['first-response?to=2026-13-01T00:00:00Z', 'to'],
        ['first-response?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z', 'from'],
        ['resolution?from=2026-12-01T00:00:00Z&to=2026-12-01T00:00:00Z', 'from'],
        ['sla?from=2025-01-01T00:00:00Z&to=2026-12-01T00:00:00Z', 'to'],
        ['first-response?group_by=month', 'group_by'],
        ['csat?priority=critical', 'priority'],
        ['agents?team_id=team_nope', 'team_id'],
        ['backlog?agent_id=42', 'agent_id'],
        ['backlog?from=2026-12-01T00:00:00Z', 'from'],
        ['agents?group_by=agent', 'group_by'],
      ];
      for (const [path, field] of cases) {
        const r = await d.metrics(path);
        assert.equal(r.status, 422, `${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 'validation_error');
        assert.ok(r.body.details.some((x: any) => x.field.includes(field)), `${path}: ${JSON.stringify(r.body.details)}`);
      }
      assert.equal((await d.metrics('first-response?from=2025-11-01T00:00:00Z&to=2026-12-05T00:00:00Z')).status, 200); // 399 days
    });

    it('403 naming read:analytics with every other scope; only read:analytics is enough', async () => {
      const d = await desk();
      const others = await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ALL.filter((x) => x !== 'read:analytics') });
      const only = await makeKey(db.knex, t.services, { workspaceId: d.ws.id, scopes: ['read:analytics'] });
      for (const path of ENDPOINTS) {
        const refused = await d.withKey(others.auth, 'get', `/v1/metrics/${path}`);
        assert.equal(refused.status, 403, path);
        assert.equal(refused.body.code, 'forbidden');
        assert.match(JSON.stringify(refused.body), /"required_scope":"read:analytics"/);
        const fine = await d.withKey(only.auth, 'get', `/v1/metrics/${path}`);
        assert.equal(fine.status, 200, `${path}: ${JSON.stringify(fine.body)}`);
      }
    });
  });
});
