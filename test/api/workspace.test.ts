import assert from 'node:assert/strict';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('workspace settings', () => {
  const db = useTestDatabase();
  const clock = new FakeClock('2026-11-21T12:00:00.000Z');
  let t: TestApp;
  before(() => { t = createTestApp(db.knex, { clock }); });

  /** A workspace of its own, and a key for it with every scope. */
  async function fresh(opts: { sandbox?: boolean; name?: string } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, opts);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id });
    const get = () => t.request.get('/v1/workspace').set('Authorization', key.auth);
    const patch = (body: unknown) => t.request.patch('/v1/workspace').set('Authorization', key.auth).send(body as object);
    return { ws, key, get, patch };
  }

  describe('GET /v1/workspace', () => {
    it('answers the default workspace with the documented defaults', async () => {
      const key = await makeKey(db.knex, t.services);
      const res = await t.request.get('/v1/workspace').set('Authorization', key.auth).expect(200);
      assert.deepEqual({ ...res.body, created_at: undefined, updated_at: undefined }, {
        id: 'ws_default',
        name: 'Default',
        mode: 'live',
        timezone: 'UTC',
        auto_close_after_hours: 72,
        daily_send_limit: 50,
        reopen_resolved_on_reply: true,
        lead_chat_id: null,
        digest_time: null,
        created_at: undefined,
        updated_at: undefined,
      });
      assert.ok(!Number.isNaN(Date.parse(res.body.created_at)));
      assert.ok(!Number.isNaN(Date.parse(res.body.updated_at)));
    });

    it('answers a sandbox workspace with mode sandbox', async () => {
      const w = await fresh({ sandbox: true, name: 'Sandbox A' });
      const res = await w.get().expect(200);
      assert.equal(res.body.id, w.ws.id);
      assert.equal(res.body.name, 'Sandbox A');
      assert.equal(res.body.mode, 'sandbox');
      assert.equal(res.body.created_at, clock.now().toISOString());
    });
  });

  describe('PATCH /v1/workspace', () => {
    const changes: [string, unknown][] = [
      ['name', 'Acme Support'],
      ['timezone', 'Europe/Berlin'],
      ['auto_close_after_hours', 24],
      ['daily_send_limit', 10],
      ['daily_send_limit', 0],
      ['reopen_resolved_on_reply', false],
      ['lead_chat_id', -1001234567890],
      ['lead_chat_id', 424242],
      ['digest_time', '09:00'],
      ['digest_time', '00:00'],
      ['digest_time', '23:59'],
    ];
    for (const [field, value] of changes) {
      it(`changes ${field} to ${JSON.stringify(value)} and nothing else`, async () => {
        const w = await fresh();
        const before = (await w.get().expect(200)).body;
        clock.advance(60_000);
        const res = await w.patch({ [field]: value }).expect(200);
        assert.deepEqual(res.body, { ...before, [field]: value, updated_at: clock.now().toISOString() });
        assert.deepEqual((await w.get().expect(200)).body, res.body, 'GET shows the change');
      });
    }

    it('changes several fields in one request', async () => {
      const w = await fresh();
      const res = await w.patch({ timezone: 'America/New_York', auto_close_after_hours: 8760, daily_send_limit: 100000, reopen_resolved_on_reply: false }).expect(200);
      assert.equal(res.body.timezone, 'America/New_York');
      assert.equal(res.body.auto_close_after_hours, 8760);
      assert.equal(res.body.daily_send_limit, 100000);
      assert.equal(res.body.reopen_resolved_on_reply, false);
    });

    it('stores a time zone in its canonical spelling', async () => {
      const w = await fresh();
      assert.equal((await w.patch({ timezone: 'europe/berlin' }).expect(200)).body.timezone, 'Europe/Berlin');
      assert.equal((await w.patch({ timezone: 'utc' }).expect(200)).body.timezone, 'UTC');
    });

    it('trims the name', async () => {
      const w = await fresh();
      assert.equal((await w.patch({ name: '  Helpdesk  ' }).expect(200)).body.name, 'Helpdesk');
    });

    const invalid: [string, unknown, string][] = [
      ['an unknown time zone', { timezone: 'Mars/Olympus' }, 'timezone'],
      ['an empty time zone', { timezone: '' }, 'timezone'],
      ['a UTC offset instead of a zone name', { timezone: '+01:00' }, 'timezone'],
      ['an unknown field', { colour: 'blue' }, 'colour'],
      ['an attempt to change the mode', { mode: 'sandbox' }, 'mode'],
      ['an attempt to change the id', { id: 'ws_other' }, 'id'],
      ['an empty body', {}, 'body'],
      ['a negative daily_send_limit', { daily_send_limit: -1 }, 'daily_send_limit'],
      ['a fractional daily_send_limit', { daily_send_limit: 2.5 }, 'daily_send_limit'],
      ['a daily_send_limit given as text', { daily_send_limit: '10' }, 'daily_send_limit'],
      ['a daily_send_limit of null', { daily_send_limit: null }, 'daily_send_limit'],
      ['auto_close_after_hours of 0', { auto_close_after_hours: 0 }, 'auto_close_after_hours'],
      ['auto_close_after_hours over a year', { auto_close_after_hours: 8761 }, 'auto_close_after_hours'],
      ['reopen_resolved_on_reply given as text', { reopen_resolved_on_reply: 'yes' }, 'reopen_resolved_on_reply'],
      ['an empty name', { name: '' }, 'name'],
      ['a blank name', { name: '   ' }, 'name'],
      ['a name over 200 characters', { name: 'n'.repeat(201) }, 'name'],
      ['a JSON array', [{ name: 'x' }], 'body'],
      ['a lead_chat_id given as text', { lead_chat_id: '-1001234567890' }, 'lead_chat_id'],
      ['a fractional lead_chat_id', { lead_chat_id: 1.5 }, 'lead_chat_id'],
      ['a lead_chat_id of 0', { lead_chat_id: 0 }, 'lead_chat_id'],
      ['a lead_chat_id beyond Telegram ids', { lead_chat_id: -10000000000000 }, 'lead_chat_id'],
      ['a digest_time without a leading zero', { digest_time: '9:00' }, 'digest_time'],
      ['a digest_time of 24:00', { digest_time: '24:00' }, 'digest_time'],
      ['a digest_time with seconds', { digest_time: '09:00:00' }, 'digest_time'],
      ['a digest_time of 12:60', { digest_time: '12:60' }, 'digest_time'],
      ['a digest_time given as a number', { digest_time: 900 }, 'digest_time'],
    ];
    for (const [what, body, field] of invalid) {
      it(`answers ${what} with 422 validation_error naming ${field}, changing nothing`, async () => {
        const w = await fresh();
        const before = (await w.get().expect(200)).body;
        const res = await w.patch(body).expect(422);
        assert.match(res.headers['content-type'], /^application\/problem\+json/);
        assert.equal(res.body.code, 'validation_error');
        assert.ok(res.body.details.some((d: { field: string; error: string }) => d.field === field && typeof d.error === 'string'), JSON.stringify(res.body.details));
        assert.deepEqual((await w.get().expect(200)).body, before);
      });
    }

    it('answers a PATCH without a body with 422', async () => {
      const w = await fresh();
      const res = await t.request.patch('/v1/workspace').set('Authorization', w.key.auth).expect(422);
      assert.equal(res.body.code, 'validation_error');
    });

    it('answers a body that is not JSON with 400 invalid_json', async () => {
      const w = await fresh();
      const res = await t.request.patch('/v1/workspace').set('Authorization', w.key.auth).set('Content-Type', 'application/json').send('{"name": ').expect(400);
      assert.equal(res.body.code, 'invalid_json');
    });

    it('answers other methods on /v1/workspace with 405 method_not_allowed', async () => {
      const w = await fresh();
      for (const method of ['post', 'put', 'delete'] as const) {
        const res = await t.request[method]('/v1/workspace').set('Authorization', w.key.auth).send({ name: 'x' }).expect(405);
        assert.equal(res.body.code, 'method_not_allowed');
      }
    });

    it('clears lead_chat_id and digest_time with null, and keeps them across other changes', async () => {
      const w = await fresh();
      const set = (await w.patch({ lead_chat_id: -1001234567890, digest_time: '08:30' }).expect(200)).body;
      assert.equal(set.lead_chat_id, -1001234567890);
      assert.equal(set.digest_time, '08:30');
      assert.equal((await w.patch({ name: 'Other' }).expect(200)).body.lead_chat_id, -1001234567890, 'untouched by another change');
      const cleared = (await w.patch({ lead_chat_id: null, digest_time: null }).expect(200)).body;
      assert.equal(cleared.lead_chat_id, null);
      assert.equal(cleared.digest_time, null);
      assert.deepEqual((await w.get().expect(200)).body, cleared);
      assert.equal((await t.services.workspaces.get(db.knex, w.ws.id)).leadChatId, null);
    });

    it('the service reads lead_chat_id as a number (the escalation notices send to it)', async () => {
      const w = await fresh();
      await w.patch({ lead_chat_id: -1009876543210 }).expect(200);
      const ws = await t.services.workspaces.get(db.knex, w.ws.id);
      assert.equal(ws.leadChatId, -1009876543210);
      assert.equal(typeof ws.leadChatId, 'number');
    });

    it('changing lead_chat_id needs manage:settings (403 naming it); reading needs any key', async () => {
      const w = await fresh();
      const reader = await makeKey(db.knex, t.services, { workspaceId: w.ws.id, scopes: ['read:tickets'] });
      const denied = await t.request.patch('/v1/workspace').set('Authorization', reader.auth).send({ lead_chat_id: -100 }).expect(403);
      assert.equal(denied.body.required_scope, 'manage:settings');
      assert.equal((await t.request.get('/v1/workspace').set('Authorization', reader.auth).expect(200)).body.lead_chat_id, null);
    });

    it('leaves other workspaces untouched', async () => {
      const a = await fresh();
      const b = await fresh();
      const bBefore = (await b.get().expect(200)).body;
      await a.patch({ name: 'Only A', daily_send_limit: 7 }).expect(200);
      assert.deepEqual((await b.get().expect(200)).body, bBefore);
    });
  });
});
