/**
 * SLA policies over the API (SPEC §5): the full shape and its defaults, business hours (several
 * intervals a day, holidays), every validation problem with its field path, default switching
 * (one default, also under concurrency), team policies (one per team, 409; another workspace's
 * team 404), policyFor/findById for the SLA engine, list filters and pagination, PATCH (nested
 * objects replaced whole), DELETE (archive), scopes, 401, and tenant isolation of every id.
 */
import assert from 'node:assert/strict';
import { slaPolicyRoutes } from '../../src/sla/sla-policy-routes.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const SLA_KEYS = ['id', 'name', 'is_default', 'team_id', 'targets', 'warn_at_percent', 'pause_while_waiting_on_customer', 'business_hours', 'created_at', 'updated_at'].sort();
const UNKNOWN_SLA = 'sla_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const UNKNOWN_TEAM = 'team_01ARZ3NDEKTSV4RRFFQ69G5FAV';
const ALL = ['read:tickets', 'write:tickets', 'read:contacts', 'write:contacts', 'read:messages', 'write:messages', 'read:analytics', 'manage:agents', 'manage:settings', 'manage:webhooks', 'manage:keys'];

const TARGETS = { normal: { first_response_minutes: 60, resolution_minutes: 1440 } };
const FULL_TARGETS = {
  low: { first_response_minutes: 480, resolution_minutes: 10080 },
  normal: { first_response_minutes: 120, next_response_minutes: 240, resolution_minutes: 2880 },
  high: { first_response_minutes: 30, next_response_minutes: 60, resolution_minutes: 480 },
  urgent: { first_response_minutes: 1, next_response_minutes: 1, resolution_minutes: 525600 },
};
const BUSINESS_HOURS = {
  timezone: 'Europe/Berlin',
  weekly: [
    { day: 1, start: '09:00', end: '12:30' }, { day: 1, start: '13:30', end: '17:00' },
    { day: 2, start: '00:00', end: '24:00' },
    { day: 3, start: '08:00', end: '12:00' }, { day: 3, start: '12:00', end: '16:00' },
    { day: 5, start: '09:00', end: '15:00' },
  ],
  holidays: ['2026-12-25', '2026-12-26', '2027-01-01'],
};

type Res = { status: number; body: any; headers: Record<string, string> };
type Method = 'get' | 'post' | 'patch' | 'delete';

describe('SLA policies API', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let seq = 0;

  before(() => {
    t = createTestApp(db.knex);
  });

  /** A workspace of its own with a key and helpers. */
  async function desk() {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: true, name: `SLA desk ${++seq}` });
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
    const create = (body: Record<string, unknown> = {}) => call('post', '/v1/sla-policies', { name: `Policy ${++seq}`, targets: TARGETS, ...body });
    const policy = async (body: Record<string, unknown> = {}) => {
      const res = await create(body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const get = async (id: string) => {
      const res = await call('get', `/v1/sla-policies/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const list = async (q = '') => {
      const res = await call('get', `/v1/sla-policies${q}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const team = async (name = `Team ${++seq}`) => {
      const res = await call('post', '/v1/teams', { name });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const patch = (id: string, body: unknown) => call('patch', `/v1/sla-policies/${id}`, body);
    return { ws, key, call, keyWith, create, policy, get, list, team, patch };
  }

  function assertProblem(res: Res, status: number, code: string) {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /application\/problem\+json/);
  }

  /** A 422 with a detail for exactly `field`. */
  function assertValidation(res: Res, field: string) {
    assertProblem(res, 422, 'validation_error');
    assert.ok(res.body.details.some((d: any) => d.field === field), `expected a detail for ${field}: ${JSON.stringify(res.body.details)}`);
  }

  const liveRows = async (workspaceId: string) => db.knex('sla_policies').where({ workspace_id: workspaceId }).whereNull('archived_at');
  const rowCount = async (workspaceId: string) => (await db.knex('sla_policies').where({ workspace_id: workspaceId })).length;
  const bh = (over: Record<string, unknown>) => ({ ...BUSINESS_HOURS, ...over });

  // -------------------------------------------------------------------------------------------
  describe('POST /v1/sla-policies', () => {
    it('creates a policy with every field (several intervals a day, holidays) and reads it back the same', async () => {
      const d = await desk();
      const res = await d.call('post', '/v1/sla-policies', {
        name: 'Business plan', is_default: true, targets: FULL_TARGETS, warn_at_percent: 75, pause_while_waiting_on_customer: false, business_hours: BUSINESS_HOURS,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(Object.keys(res.body).sort(), SLA_KEYS);
      assert.match(res.body.id, /^sla_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.headers.location, `/v1/sla-policies/${res.body.id}`);
      const { id, created_at, updated_at, ...rest } = res.body;
      assert.deepEqual(rest, {
        name: 'Business plan', is_default: true, team_id: null, targets: FULL_TARGETS, warn_at_percent: 75, pause_while_waiting_on_customer: false, business_hours: BUSINESS_HOURS,
      });
      assert.equal(created_at, updated_at);
      assert.deepEqual(await d.get(id), res.body);
    });

    it('defaults: not the default, no team, warn at 80 %, pauses while waiting on the customer, 24/7 (business_hours null)', async () => {
      const d = await desk();
      const p = await d.policy({ targets: TARGETS });
      assert.deepEqual(
        [p.is_default, p.team_id, p.warn_at_percent, p.pause_while_waiting_on_customer, p.business_hours],
        [false, null, 80, true, null],
      );
    });

    it('next_response_minutes is present only when set (never null); holidays default to []', async () => {
      const d = await desk();
      const p = await d.policy({
        targets: { low: { first_response_minutes: 5, resolution_minutes: 10 }, high: { first_response_minutes: 5, next_response_minutes: 7, resolution_minutes: 10 } },
        business_hours: { timezone: 'America/New_York', weekly: [{ day: 7, start: '10:00', end: '14:00' }] },
      });
      assert.deepEqual(Object.keys(p.targets).sort(), ['high', 'low'], 'a priority without a target has none');
      assert.ok(!('next_response_minutes' in p.targets.low));
      assert.equal(p.targets.high.next_response_minutes, 7);
      assert.deepEqual(p.business_hours, { timezone: 'America/New_York', weekly: [{ day: 7, start: '10:00', end: '14:00' }], holidays: [] });
      assertValidation(await d.create({ targets: { low: { first_response_minutes: 5, next_response_minutes: null, resolution_minutes: 10 } } }), 'targets.low.next_response_minutes');
    });

    it('a team policy; another workspace\'s team or an unknown one is 404 and writes nothing', async () => {
      const d = await desk();
      const other = await desk();
      const tm = await d.team();
      assert.equal((await d.policy({ team_id: tm.id })).team_id, tm.id);
      const foreign = await other.team();
      const a = await d.create({ team_id: foreign.id });
      const b = await d.create({ team_id: UNKNOWN_TEAM });
      assertProblem(a, 404, 'not_found');
      assertProblem(b, 404, 'not_found');
      assert.equal(a.body.detail, b.body.detail);
      assert.equal(await rowCount(d.ws.id), 1);
      assert.equal(await rowCount(other.ws.id), 0);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('validation (422, one detail per problem, with field paths)', () => {
    it('targets: at least one priority, known priorities only, whole minutes 1-525600, required fields', async () => {
      const d = await desk();
      assertValidation(await d.create({ targets: {} }), 'targets');
      assertValidation(await d.create({ targets: { critical: TARGETS.normal } }), 'targets.critical');
      for (const bad of [0, -1, 1.5, 525601, '60', null]) {
        assertValidation(await d.create({ targets: { normal: { first_response_minutes: bad, resolution_minutes: 60 } } }), 'targets.normal.first_response_minutes');
        assertValidation(await d.create({ targets: { high: { first_response_minutes: 5, resolution_minutes: bad } } }), 'targets.high.resolution_minutes');
        assertValidation(await d.create({ targets: { urgent: { first_response_minutes: 5, next_response_minutes: bad, resolution_minutes: 60 } } }), 'targets.urgent.next_response_minutes');
      }
      assertValidation(await d.create({ targets: { normal: { first_response_minutes: 5 } } }), 'targets.normal.resolution_minutes');
      assertValidation(await d.create({ targets: { normal: { resolution_minutes: 5 } } }), 'targets.normal.first_response_minutes');
      assertValidation(await d.create({ targets: { normal: { ...TARGETS.normal, warn: 1 } } }), 'targets.normal.warn');
      assertValidation(await d.call('post', '/v1/sla-policies', { name: 'No targets' }), 'targets');
      assert.equal(await rowCount(d.ws.id), 0);
    });

    it('warn_at_percent is a whole 1-99; name is required and not blank; unknown fields are refused', async () => {
      const d = await desk();
      for (const bad of [0, 100, 50.5, '80', null]) assertValidation(await d.create({ warn_at_percent: bad }), 'warn_at_percent');
      assert.equal((await d.policy({ warn_at_percent: 1 })).warn_at_percent, 1);
      assert.equal((await d.policy({ warn_at_percent: 99 })).warn_at_percent, 99);
      assertValidation(await d.call('post', '/v1/sla-policies', { targets: TARGETS }), 'name');
      assertValidation(await d.create({ name: '   ' }), 'name');
      assertValidation(await d.create({ colour: 'red' }), 'colour');
      assertValidation(await d.create({ business_hours: { ...BUSINESS_HOURS, region: 'eu' } }), 'business_hours.region');
      assertValidation(await d.create({ business_hours: bh({ weekly: [{ day: 1, start: '09:00', end: '17:00', note: 'x' }] }) }), 'business_hours.weekly[0].note');
      assertValidation(await d.create({ is_default: 'yes' }), 'is_default');
      assertValidation(await d.create({ pause_while_waiting_on_customer: 1 }), 'pause_while_waiting_on_customer');
      assertValidation(await d.create({ team_id: 'team_nope' }), 'team_id');
      assert.equal(await rowCount(d.ws.id), 2);
    });

    it('business hours: an unknown time zone', async () => {
      const d = await desk();
      for (const timezone of ['Mars/Olympus', 'Europe/Berln', 'not a zone']) {
        assertValidation(await d.create({ business_hours: bh({ timezone }) }), 'business_hours.timezone');
      }
      assertValidation(await d.create({ business_hours: bh({ timezone: '' }) }), 'business_hours.timezone');
      assertValidation(await d.create({ business_hours: { weekly: BUSINESS_HOURS.weekly } }), 'business_hours.timezone');
    });

    it('business hours: bad HH:MM and days outside 1-7', async () => {
      const d = await desk();
      for (const start of ['9:00', '24:01', '12:60', '25:00', '0900', '09:00:00', '']) {
        assertValidation(await d.create({ business_hours: bh({ weekly: [{ day: 1, start, end: '17:00' }] }) }), 'business_hours.weekly[0].start');
      }
      assertValidation(await d.create({ business_hours: bh({ weekly: [{ day: 1, start: '09:00', end: '17:00' }, { day: 2, start: '09:00', end: '5pm' }] }) }), 'business_hours.weekly[1].end');
      for (const day of [0, 8, 1.5, '1']) {
        assertValidation(await d.create({ business_hours: bh({ weekly: [{ day, start: '09:00', end: '17:00' }] }) }), 'business_hours.weekly[0].day');
      }
      assertValidation(await d.create({ business_hours: bh({ weekly: [{ day: 1, start: '09:00' }] }) }), 'business_hours.weekly[0].end');
      assert.equal(await rowCount(d.ws.id), 0);
    });

    it('business hours: end not after start, and an interval across midnight', async () => {
      const d = await desk();
      const week = (second: { start: string; end: string }) => bh({ weekly: [{ day: 1, start: '09:00', end: '12:00' }, { day: 1, ...second }] });
      assertValidation(await d.create({ business_hours: week({ start: '17:00', end: '13:00' }) }), 'business_hours.weekly[1].end');
      assertValidation(await d.create({ business_hours: week({ start: '13:00', end: '13:00' }) }), 'business_hours.weekly[1].end');
      assertValidation(await d.create({ business_hours: week({ start: '22:00', end: '02:00' }) }), 'business_hours.weekly[1].end');
      assertValidation(await d.create({ business_hours: week({ start: '24:00', end: '24:00' }) }), 'business_hours.weekly[1].start');
      assertValidation(await d.create({ business_hours: week({ start: '22:00', end: '00:00' }) }), 'business_hours.weekly[1].end');
      assert.equal(await rowCount(d.ws.id), 0);
    });

    it('business hours: overlapping intervals of one day (touching ones are fine; other days never overlap)', async () => {
      const d = await desk();
      const res = await d.create({ business_hours: bh({ weekly: [{ day: 3, start: '09:00', end: '12:00' }, { day: 4, start: '09:00', end: '12:00' }, { day: 3, start: '11:00', end: '14:00' }] }) });
      assertProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details.map((x: any) => x.field), ['business_hours.weekly[2]'], 'the later of the two, once; day 4 overlaps nothing');
      assert.match(res.body.details[0].error, /overlaps weekly\[0\]/);
      assertValidation(await d.create({ business_hours: bh({ weekly: [{ day: 3, start: '08:00', end: '18:00' }, { day: 3, start: '10:00', end: '11:00' }] }) }), 'business_hours.weekly[1]');
      assert.equal(await rowCount(d.ws.id), 0);
      await d.policy({ business_hours: bh({ weekly: [{ day: 3, start: '09:00', end: '12:00' }, { day: 3, start: '12:00', end: '14:00' }] }) });
    });

    it('business hours: a week without working time', async () => {
      const d = await desk();
      assertValidation(await d.create({ business_hours: bh({ weekly: [] }) }), 'business_hours.weekly');
      assert.equal(await rowCount(d.ws.id), 0);
    });

    it('business hours: bad holiday dates (shape and calendar)', async () => {
      const d = await desk();
      for (const day of ['2026-02-30', '2026-13-01', '2026-00-10', '26-12-25', '2026-12-25T00:00:00Z', '25.12.2026', '']) {
        assertValidation(await d.create({ business_hours: bh({ holidays: ['2026-12-24', day] }) }), 'business_hours.holidays[1]');
      }
      assertValidation(await d.create({ business_hours: bh({ holidays: [20261225] }) }), 'business_hours.holidays[0]');
      assert.equal(await rowCount(d.ws.id), 0);
      assert.deepEqual((await d.policy({ business_hours: bh({ holidays: ['2028-02-29'] }) })).business_hours.holidays, ['2028-02-29']);
    });

    it('reports every semantic problem at once, each with its own path', async () => {
      const d = await desk();
      const res = await d.create({
        business_hours: { timezone: 'Nowhere/Land', weekly: [{ day: 1, start: '09:00', end: '17:00' }, { day: 2, start: '18:00', end: '08:00' }], holidays: ['2026-02-31'] },
      });
      assertValidation(res, 'business_hours.timezone');
      assertValidation(res, 'business_hours.weekly[1].end');
      assertValidation(res, 'business_hours.holidays[0]');
    });

    it('a default is workspace-wide: is_default with a team_id is refused (422 naming is_default)', async () => {
      const d = await desk();
      const tm = await d.team();
      assertValidation(await d.create({ is_default: true, team_id: tm.id }), 'is_default');
      assert.equal(await rowCount(d.ws.id), 0);
      await d.policy({ is_default: false, team_id: tm.id });
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('the default policy', () => {
    it('making another policy the default unsets the old one (create and PATCH); only ever one default', async () => {
      const d = await desk();
      const a = await d.policy({ is_default: true });
      const b = await d.policy({ is_default: true });
      assert.equal((await d.get(a.id)).is_default, false, 'the old default is unset');
      assert.equal((await d.get(b.id)).is_default, true);
      assert.deepEqual((await d.list('?is_default=true')).items.map((p: any) => p.id), [b.id]);

      const c = await d.policy();
      const res = await d.patch(c.id, { is_default: true });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.is_default, true);
      assert.equal((await d.get(b.id)).is_default, false);
      assert.ok(Date.parse((await d.get(b.id)).updated_at) >= Date.parse(b.updated_at));
      assert.deepEqual((await liveRows(d.ws.id)).filter((r: any) => r.is_default).map((r: any) => r.id), [c.id]);

      const again = await d.patch(c.id, { is_default: true });
      assert.equal(again.body.is_default, true, 'already the default: no change');
      const off = await d.patch(c.id, { is_default: false });
      assert.equal(off.body.is_default, false);
      assert.equal((await d.list('?is_default=true')).total, 0, 'unsetting leaves no default');
    });

    it('concurrent requests to become the default all succeed and leave exactly one', async () => {
      const d = await desk();
      const existing = await Promise.all([d.policy(), d.policy(), d.policy()]);
      const results = await Promise.all([
        ...Array.from({ length: 5 }, () => d.create({ is_default: true })),
        ...existing.map((p) => d.patch(p.id, { is_default: true })),
      ]);
      for (const r of results) assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
      assert.equal((await liveRows(d.ws.id)).filter((r: any) => r.is_default).length, 1);
      assert.equal((await d.list('?is_default=true')).total, 1);
    });

    it('each workspace has its own default', async () => {
      const d = await desk();
      const other = await desk();
      const mine = await d.policy({ is_default: true });
      const theirs = await other.policy({ is_default: true });
      assert.equal((await d.get(mine.id)).is_default, true);
      assert.equal((await other.get(theirs.id)).is_default, true);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('team policies', () => {
    it('409 naming team_id for a second live policy of the same team (create and PATCH); free again after archiving', async () => {
      const d = await desk();
      const tm = await d.team();
      const first = await d.policy({ team_id: tm.id });
      const res = await d.create({ team_id: tm.id });
      assertProblem(res, 409, 'conflict');
      assert.equal(res.body.details[0].field, 'team_id');
      assert.equal(res.body.details[0].received, tm.id);
      const loose = await d.policy();
      assertProblem(await d.patch(loose.id, { team_id: tm.id }), 409, 'conflict');
      assert.equal((await d.get(loose.id)).team_id, null);
      assert.equal((await d.patch(first.id, { team_id: tm.id, name: 'Same team' })).status, 200, 'its own team is no conflict');
      assert.equal((await d.call('delete', `/v1/sla-policies/${first.id}`)).status, 204);
      assert.equal((await d.policy({ team_id: tm.id })).team_id, tm.id);
    });

    it('concurrent creates for one team: one 201, the rest 409', async () => {
      const d = await desk();
      const tm = await d.team();
      const results = await Promise.all(Array.from({ length: 5 }, () => d.create({ team_id: tm.id })));
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409, 409, 409], JSON.stringify(results.map((r) => r.body)));
    });

    it('PATCH to another workspace\'s team or an unknown one is 404 and changes nothing', async () => {
      const d = await desk();
      const other = await desk();
      const p = await d.policy();
      const foreign = await other.team();
      const a = await d.patch(p.id, { team_id: foreign.id, name: 'Moved' });
      const b = await d.patch(p.id, { team_id: UNKNOWN_TEAM, name: 'Moved' });
      assertProblem(a, 404, 'not_found');
      assertProblem(b, 404, 'not_found');
      assert.equal(a.body.detail, b.body.detail);
      assert.deepEqual(await d.get(p.id), p);
    });

    it('a team policy cannot become the default, nor the default get a team (422); moving both at once works', async () => {
      const d = await desk();
      const tm = await d.team();
      const teamPolicy = await d.policy({ team_id: tm.id });
      const def = await d.policy({ is_default: true });
      assertValidation(await d.patch(teamPolicy.id, { is_default: true }), 'is_default');
      assertValidation(await d.patch(def.id, { team_id: tm.id }), 'team_id');
      assert.equal((await d.get(def.id)).is_default, true, 'the refused PATCH unset nothing');
      const moved = await d.patch(teamPolicy.id, { is_default: true, team_id: null });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      assert.deepEqual([moved.body.is_default, moved.body.team_id], [true, null]);
      assert.equal((await d.get(def.id)).is_default, false);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('policyFor and findById (for the SLA engine)', () => {
    it('the team\'s policy, else the workspace default, else none; archived policies are ignored', async () => {
      const d = await desk();
      const other = await desk();
      const svc = t.services.slaPolicies;
      const billing = await d.team();
      const shipping = await d.team();
      await other.policy({ is_default: true });
      assert.equal(await svc.policyFor(db.knex, d.ws.id, null), null, 'another workspace\'s default never applies');
      assert.equal(await svc.policyFor(db.knex, d.ws.id, billing.id), null);

      const def = await d.policy({ is_default: true, name: 'Default' });
      const forBilling = await d.policy({ team_id: billing.id, targets: FULL_TARGETS, business_hours: BUSINESS_HOURS, warn_at_percent: 70 });
      await d.policy({ name: 'Neither' });

      const got = await svc.policyFor(db.knex, d.ws.id, billing.id);
      assert.equal(got?.id, forBilling.id);
      assert.deepEqual(got, {
        id: forBilling.id, workspaceId: d.ws.id, name: forBilling.name, isDefault: false, teamId: billing.id,
        targets: {
          low: { firstResponseMinutes: 480, nextResponseMinutes: null, resolutionMinutes: 10080 },
          normal: { firstResponseMinutes: 120, nextResponseMinutes: 240, resolutionMinutes: 2880 },
          high: { firstResponseMinutes: 30, nextResponseMinutes: 60, resolutionMinutes: 480 },
          urgent: { firstResponseMinutes: 1, nextResponseMinutes: 1, resolutionMinutes: 525600 },
        },
        warnAtPercent: 70, pauseWhileWaitingOnCustomer: true, businessHours: BUSINESS_HOURS,
        createdAt: new Date(forBilling.created_at), updatedAt: new Date(forBilling.updated_at),
      });
      assert.equal((await svc.policyFor(db.knex, d.ws.id, shipping.id))?.id, def.id, 'a team without a policy gets the default');
      assert.equal((await svc.policyFor(db.knex, d.ws.id, null))?.id, def.id, 'no team: the default');

      await d.call('delete', `/v1/sla-policies/${forBilling.id}`);
      assert.equal((await svc.policyFor(db.knex, d.ws.id, billing.id))?.id, def.id, 'an archived team policy is ignored');
      await d.call('delete', `/v1/sla-policies/${def.id}`);
      assert.equal(await svc.policyFor(db.knex, d.ws.id, billing.id), null, 'an archived default is ignored');
      assert.equal(await svc.policyFor(db.knex, d.ws.id, null), null);
    });

    it('findById: live policies of the workspace only', async () => {
      const d = await desk();
      const other = await desk();
      const svc = t.services.slaPolicies;
      const p = await d.policy();
      assert.equal((await svc.findById(db.knex, d.ws.id, p.id))?.name, p.name);
      assert.equal(await svc.findById(db.knex, other.ws.id, p.id), null);
      await d.call('delete', `/v1/sla-policies/${p.id}`);
      assert.equal(await svc.findById(db.knex, d.ws.id, p.id), null);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('GET /v1/sla-policies', () => {
    it('lists oldest first with pagination (offset and cursor); filters team_id (none too) and is_default', async () => {
      const d = await desk();
      const billing = await d.team();
      const shipping = await d.team();
      const a = await d.policy({ name: 'A' });
      const b = await d.policy({ name: 'B', team_id: billing.id });
      const c = await d.policy({ name: 'C', is_default: true });
      const e = await d.policy({ name: 'E', team_id: shipping.id });
      const all = await d.list();
      assert.deepEqual(all.items.map((p: any) => p.id), [a.id, b.id, c.id, e.id]);
      assert.deepEqual([all.total, all.limit, all.offset, all.has_more, all.next_cursor], [4, 50, 0, false, null]);
      assert.deepEqual((await d.list(`?team_id=${billing.id}`)).items.map((p: any) => p.id), [b.id]);
      assert.deepEqual((await d.list('?team_id=none')).items.map((p: any) => p.id), [a.id, c.id]);
      assert.deepEqual((await d.list('?is_default=true')).items.map((p: any) => p.id), [c.id]);
      assert.deepEqual((await d.list('?is_default=false')).items.map((p: any) => p.id), [a.id, b.id, e.id]);
      assert.deepEqual((await d.list('?team_id=none&is_default=false')).items.map((p: any) => p.id), [a.id]);
      assert.equal((await d.list(`?team_id=${UNKNOWN_TEAM}`)).total, 0);

      const first = await d.list('?limit=3');
      assert.deepEqual([first.items.length, first.total, first.has_more], [3, 4, true]);
      const next = await d.list(`?limit=3&cursor=${first.next_cursor}`);
      assert.deepEqual(next.items.map((p: any) => p.id), [e.id]);
      assert.equal(next.has_more, false);
      assert.deepEqual((await d.list('?limit=2&offset=1')).items.map((p: any) => p.id), [b.id, c.id]);

      assertValidation(await d.call('get', '/v1/sla-policies?team_id=billing'), 'team_id');
      assertValidation(await d.call('get', '/v1/sla-policies?is_default=maybe'), 'is_default');
      assertValidation(await d.call('get', '/v1/sla-policies?limit=201'), 'limit');
      assertValidation(await d.call('get', '/v1/sla-policies?offset=-1'), 'offset');
      assertValidation(await d.call('get', '/v1/sla-policies?sort=name'), 'sort');
    });

    it('never shows another workspace\'s policies, nor archived ones', async () => {
      const d = await desk();
      const other = await desk();
      const tm = await other.team();
      await other.policy({ team_id: tm.id });
      await other.policy({ is_default: true });
      const gone = await d.policy();
      await d.call('delete', `/v1/sla-policies/${gone.id}`);
      assert.equal((await d.list()).total, 0);
      assert.equal((await d.list(`?team_id=${tm.id}`)).total, 0);
      assert.equal((await d.list('?is_default=true')).total, 0);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('PATCH /v1/sla-policies/{id}', () => {
    it('replaces targets and business_hours whole; other fields change one by one; created_at stays', async () => {
      const d = await desk();
      const p = await d.policy({ targets: FULL_TARGETS, business_hours: BUSINESS_HOURS });
      const r1 = await d.patch(p.id, { targets: { urgent: { first_response_minutes: 15, resolution_minutes: 240 } } });
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.deepEqual(r1.body.targets, { urgent: { first_response_minutes: 15, resolution_minutes: 240 } }, 'the old priorities and next_response_minutes are gone');
      assert.deepEqual(r1.body.business_hours, BUSINESS_HOURS, 'untouched');

      const week = { timezone: 'Asia/Tokyo', weekly: [{ day: 6, start: '10:00', end: '11:00' }] };
      const r2 = await d.patch(p.id, { business_hours: week });
      assert.deepEqual(r2.body.business_hours, { ...week, holidays: [] }, 'holidays not carried over');
      const r3 = await d.patch(p.id, { name: 'Renamed', warn_at_percent: 90, pause_while_waiting_on_customer: false });
      assert.deepEqual([r3.body.name, r3.body.warn_at_percent, r3.body.pause_while_waiting_on_customer], ['Renamed', 90, false]);
      assert.deepEqual(r3.body.business_hours, { ...week, holidays: [] });
      const r4 = await d.patch(p.id, { business_hours: null });
      assert.equal(r4.body.business_hours, null, 'back to 24/7');
      assert.equal(r4.body.created_at, p.created_at);
      assert.ok(Date.parse(r4.body.updated_at) >= Date.parse(p.updated_at));
      assert.deepEqual(await d.get(p.id), r4.body);
    });

    it('refuses bad values with the same rules as create (business hours, targets, empty patch) and changes nothing', async () => {
      const d = await desk();
      const p = await d.policy({ business_hours: BUSINESS_HOURS });
      assertValidation(await d.patch(p.id, { business_hours: bh({ timezone: 'Mars/Olympus' }) }), 'business_hours.timezone');
      assertValidation(await d.patch(p.id, { business_hours: bh({ weekly: [{ day: 2, start: '10:00', end: '09:00' }] }) }), 'business_hours.weekly[0].end');
      assertValidation(await d.patch(p.id, { targets: {} }), 'targets');
      assertValidation(await d.patch(p.id, { warn_at_percent: 100 }), 'warn_at_percent');
      assertValidation(await d.patch(p.id, { name: '' }), 'name');
      assertValidation(await d.patch(p.id, { id: UNKNOWN_SLA }), 'id');
      assertProblem(await d.patch(p.id, {}), 422, 'validation_error');
      assert.deepEqual(await d.get(p.id), p);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('DELETE /v1/sla-policies/{id}', () => {
    it('archives: 204, then 404 on every route and gone from lists; the row stays', async () => {
      const d = await desk();
      const p = await d.policy();
      const del = await d.call('delete', `/v1/sla-policies/${p.id}`);
      assert.equal(del.status, 204, JSON.stringify(del.body));
      for (const [method, body] of [['get'], ['patch', { name: 'x' }], ['delete']] as const) {
        assertProblem(await d.call(method, `/v1/sla-policies/${p.id}`, body), 404, 'not_found');
      }
      assert.equal((await d.list()).total, 0);
      const row = await db.knex('sla_policies').where({ id: p.id }).first();
      assert.ok(row.archived_at);
      assert.equal(row.name, p.name);
    });

    it('archiving the default leaves the workspace without one; a new default can be made', async () => {
      const d = await desk();
      const def = await d.policy({ is_default: true });
      await d.call('delete', `/v1/sla-policies/${def.id}`);
      assert.equal((await d.list('?is_default=true')).total, 0);
      assert.equal(await t.services.slaPolicies.policyFor(db.knex, d.ws.id, null), null);
      const next = await d.policy({ is_default: true });
      assert.equal((await t.services.slaPolicies.policyFor(db.knex, d.ws.id, null))?.id, next.id);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('scopes and tenancy', () => {
    const routes = (id: string) => [
      { method: 'get', path: '/v1/sla-policies', status: 200 },
      { method: 'post', path: '/v1/sla-policies', status: 201, body: { name: 'Scoped', targets: TARGETS } },
      { method: 'get', path: `/v1/sla-policies/${id}`, status: 200 },
      { method: 'patch', path: `/v1/sla-policies/${id}`, status: 200, body: { name: 'Scoped too' } },
      { method: 'delete', path: `/v1/sla-policies/${id}`, status: 204 },
    ] as { method: Method; path: string; status: number; body?: unknown }[];

    it('covers every SLA policy route of the app, all with manage:settings', () => {
      const defined = slaPolicyRoutes(t.services.slaPolicies).map((r) => `${r.method} ${r.path} ${r.scope}`).sort();
      assert.deepEqual(defined, [
        'delete /v1/sla-policies/:id manage:settings', 'get /v1/sla-policies manage:settings', 'get /v1/sla-policies/:id manage:settings',
        'patch /v1/sla-policies/:id manage:settings', 'post /v1/sla-policies manage:settings',
      ]);
    });

    it('each route refuses a key holding every other scope (403 naming manage:settings) and works with only manage:settings', async () => {
      const d = await desk();
      const p = await d.policy();
      const without = await d.keyWith(ALL.filter((s) => s !== 'manage:settings'));
      const only = await d.keyWith(['manage:settings']);
      for (const r of routes(p.id)) {
        const denied = await without(r.method, r.path, r.body);
        assertProblem(denied, 403, 'forbidden');
        assert.equal(denied.body.required_scope, 'manage:settings', `${r.method} ${r.path}`);
        const ok = await only(r.method, r.path, r.body);
        assert.equal(ok.status, r.status, `${r.method} ${r.path}: ${JSON.stringify(ok.body)}`);
      }
    });

    it('401 without a valid key', async () => {
      for (const r of routes(UNKNOWN_SLA)) {
        const res = (await t.request[r.method](r.path).set('Authorization', 'Bearer td_live_nope')) as unknown as Res;
        assertProblem(res, 401, 'unauthorized');
        const none = (await t.request[r.method](r.path)) as unknown as Res;
        assertProblem(none, 401, 'unauthorized');
      }
    });

    it('another workspace\'s policy answers exactly as an unknown id, on every route, and stays unchanged', async () => {
      const mine = await desk();
      const theirs = await desk();
      const p = await theirs.policy({ is_default: true });
      for (const r of routes(p.id).filter((x) => x.path.includes(p.id))) {
        const foreign = await mine.call(r.method, r.path, r.body);
        const unknown = await mine.call(r.method, r.path.replace(p.id, UNKNOWN_SLA), r.body);
        assertProblem(foreign, 404, 'not_found');
        assertProblem(unknown, 404, 'not_found');
        assert.equal(foreign.body.detail, unknown.body.detail, r.path);
        assert.equal(foreign.body.title, unknown.body.title, r.path);
      }
      // Becoming the default in my workspace does not touch theirs.
      await mine.policy({ is_default: true });
      assert.deepEqual(await theirs.get(p.id), p);
      assertProblem(await mine.call('get', '/v1/sla-policies/sla_x'), 404, 'not_found');
    });
  });
});
