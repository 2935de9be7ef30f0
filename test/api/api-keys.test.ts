import assert from 'node:assert/strict';
import { ALL_SCOPES } from '../../src/kernel/scopes.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const HOUR = 3_600_000;

/** |a - b| within `toleranceMs`. */
function assertNear(actual: string | Date | null, expected: number, toleranceMs: number, what: string) {
  assert.ok(actual, `${what} is set`);
  const at = new Date(actual).getTime();
  assert.ok(Math.abs(at - expected) <= toleranceMs, `${what}: ${new Date(at).toISOString()} is not within ${toleranceMs} ms of ${new Date(expected).toISOString()}`);
}

describe('API keys API', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let admin: { id: string; token: string; auth: string };
  before(async () => {
    t = createTestApp(db.knex);
    admin = await makeKey(db.knex, t.services, { name: 'admin' });
  });

  const keyCount = async () => Number((await db.knex('api_keys').count({ n: '*' }))[0].n);

  describe('POST /v1/api-keys', () => {
    it('creates a key: 201, Location, the token in the body, and the token works at once', async () => {
      const res = await t.request.post('/v1/api-keys').set('Authorization', admin.auth)
        .send({ name: 'CRM sync', scopes: ['read:tickets', 'write:tickets'] }).expect(201);
      const k = res.body;
      assert.match(k.id, /^key_[0-9A-Z]{26}$/);
      assert.equal(res.headers.location, `/v1/api-keys/${k.id}`);
      assert.match(k.token, /^td_live_[0-9A-Za-z]{46}$/);
      assert.deepEqual({ ...k, id: undefined, token: undefined, created_at: undefined }, {
        id: undefined, token: undefined, created_at: undefined,
        name: 'CRM sync',
        token_prefix: k.token.slice(0, 12),
        scopes: ['read:tickets', 'write:tickets'],
        mode: 'live',
        workspace_id: 'ws_default',
        status: 'active',
        rate_limit_per_minute: null,
        expires_at: null,
        revoked_at: null,
        last_used_at: null,
        rotated_from_id: null,
      });
      assertNear(k.created_at, Date.now(), 60_000, 'created_at');
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${k.token}`).expect(200);
      assert.equal(me.body.id, k.id);
      assert.equal(me.body.name, 'CRM sync');
      assert.deepEqual(me.body.scopes, ['read:tickets', 'write:tickets']);
    });

    it('stores expires_at and a per-key rate limit when given', async () => {
      const expiresAt = new Date(Date.now() + 30 * 24 * HOUR).toISOString();
      const res = await t.request.post('/v1/api-keys').set('Authorization', admin.auth)
        .send({ name: 'temporary', scopes: ['read:tickets'], expires_at: expiresAt, rate_limit_per_minute: 120 }).expect(201);
      assert.equal(res.body.expires_at, expiresAt);
      assert.equal(res.body.rate_limit_per_minute, 120);
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${res.body.token}`).expect(200);
      assert.equal(me.body.expires_at, expiresAt);
      assert.deepEqual(me.body.rate_limit, { limit: 120, window_seconds: 60 });
    });

    it('expands all to every scope', async () => {
      const res = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).send({ name: 'everything', scopes: ['all'] }).expect(201);
      assert.deepEqual(res.body.scopes, [...ALL_SCOPES]);
    });

    it('makes a different token every time', async () => {
      const a = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).send({ name: 'twin', scopes: ['read:tickets'] }).expect(201);
      const b = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).send({ name: 'twin', scopes: ['read:tickets'] }).expect(201);
      assert.notEqual(a.body.token, b.body.token);
      assert.notEqual(a.body.id, b.body.id);
    });

    it('refuses to grant a scope the calling key does not hold (403 naming it), and creates nothing', async () => {
      const limited = await makeKey(db.knex, t.services, { scopes: ['read:tickets', 'manage:keys'] });
      const before = await keyCount();
      for (const [scopes, missing] of [[['write:tickets'], 'write:tickets'], [['read:tickets', 'manage:webhooks'], 'manage:webhooks'], [['all'], 'write:tickets']] as const) {
        const res = await t.request.post('/v1/api-keys').set('Authorization', limited.auth).send({ name: 'escalate', scopes }).expect(403);
        assert.equal(res.body.code, 'forbidden');
        assert.equal(res.body.required_scope, missing);
      }
      assert.equal(await keyCount(), before);
      const ok = await t.request.post('/v1/api-keys').set('Authorization', limited.auth).send({ name: 'narrower', scopes: ['read:tickets'] }).expect(201);
      assert.deepEqual(ok.body.scopes, ['read:tickets']);
    });

    const invalid: [string, object, string][] = [
      ['an unknown scope', { name: 'x', scopes: ['read:everything'] }, 'scopes[0]'],
      ['an empty scope list', { name: 'x', scopes: [] }, 'scopes'],
      ['a repeated scope', { name: 'x', scopes: ['read:tickets', 'read:tickets'] }, 'scopes'],
      ['scopes given as a string', { name: 'x', scopes: 'all' }, 'scopes'],
      ['a missing name', { scopes: ['all'] }, 'name'],
      ['an empty name', { name: '', scopes: ['all'] }, 'name'],
      ['a name over 100 characters', { name: 'n'.repeat(101), scopes: ['all'] }, 'name'],
      ['an unknown field', { name: 'x', scopes: ['all'], workspace_id: 'ws_other' }, 'workspace_id'],
      ['expires_at in the past', { name: 'x', scopes: ['all'], expires_at: '2020-01-01T00:00:00Z' }, 'expires_at'],
      ['expires_at that is not a date-time', { name: 'x', scopes: ['all'], expires_at: 'tomorrow' }, 'expires_at'],
      ['a rate limit of 0', { name: 'x', scopes: ['all'], rate_limit_per_minute: 0 }, 'rate_limit_per_minute'],
      ['a fractional rate limit', { name: 'x', scopes: ['all'], rate_limit_per_minute: 1.5 }, 'rate_limit_per_minute'],
    ];
    for (const [what, body, field] of invalid) {
      it(`answers ${what} with 422 validation_error naming ${field}, and creates nothing`, async () => {
        const before = await keyCount();
        const res = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).send(body).expect(422);
        assert.match(res.headers['content-type'], /^application\/problem\+json/);
        assert.equal(res.body.code, 'validation_error');
        assert.ok(Array.isArray(res.body.details) && res.body.details.length > 0);
        for (const d of res.body.details) {
          assert.equal(typeof d.field, 'string');
          assert.equal(typeof d.error, 'string');
        }
        assert.ok(res.body.details.some((d: { field: string }) => d.field === field), JSON.stringify(res.body.details));
        assert.equal(await keyCount(), before);
      });
    }

    it('answers a body that is not JSON with 400 invalid_json', async () => {
      const res = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).set('Content-Type', 'application/json').send('{"name":').expect(400);
      assert.equal(res.body.code, 'invalid_json');
    });
  });

  describe('never showing a token again', () => {
    it('shows token_prefix but no token in GET /v1/api-keys/{id} and in the list', async () => {
      const created = (await t.request.post('/v1/api-keys').set('Authorization', admin.auth).send({ name: 'shown once', scopes: ['read:tickets'] }).expect(201)).body;
      const one = await t.request.get(`/v1/api-keys/${created.id}`).set('Authorization', admin.auth).expect(200);
      assert.equal(one.body.token, undefined);
      assert.equal(one.body.token_prefix, created.token.slice(0, 12));
      const list = await t.request.get('/v1/api-keys?limit=200').set('Authorization', admin.auth).expect(200);
      assert.ok(list.body.items.length > 1);
      for (const item of list.body.items) {
        assert.equal(item.token, undefined);
        assert.match(item.token_prefix, /^td_live_[0-9A-Za-z]{4}$/);
      }
      for (const res of [one, list]) assert.ok(!res.text.includes(created.token.slice(12)), 'the secret part never comes back');
    });
  });

  describe('GET /v1/api-keys (pagination)', () => {
    let ws: string;
    let boss: { id: string; auth: string };
    let ids: string[];
    before(async () => {
      ws = (await makeWorkspace(db.knex, t.services)).id;
      boss = await makeKey(db.knex, t.services, { workspaceId: ws, name: 'boss' });
      ids = [boss.id];
      for (let i = 0; i < 6; i++) ids.push((await makeKey(db.knex, t.services, { workspaceId: ws, name: `k${i}` })).id);
      ids.reverse(); // newest first
    });
    const list = (query: string) => t.request.get(`/v1/api-keys${query}`).set('Authorization', boss.auth);

    it('answers the page envelope, newest first, default limit 50', async () => {
      const res = await list('').expect(200);
      assert.deepEqual(Object.keys(res.body).sort(), ['has_more', 'items', 'limit', 'next_cursor', 'offset', 'total']);
      assert.equal(res.body.limit, 50);
      assert.equal(res.body.offset, 0);
      assert.equal(res.body.total, 7);
      assert.equal(res.body.has_more, false);
      assert.equal(res.body.next_cursor, null);
      assert.deepEqual(res.body.items.map((k: { id: string }) => k.id), ids);
    });

    it('pages with limit and offset', async () => {
      const first = await list('?limit=3').expect(200);
      assert.deepEqual(first.body.items.map((k: { id: string }) => k.id), ids.slice(0, 3));
      assert.equal(first.body.has_more, true);
      assert.equal(first.body.total, 7);
      const second = await list('?limit=3&offset=3').expect(200);
      assert.deepEqual(second.body.items.map((k: { id: string }) => k.id), ids.slice(3, 6));
      assert.equal(second.body.offset, 3);
      const last = await list('?limit=3&offset=6').expect(200);
      assert.deepEqual(last.body.items.map((k: { id: string }) => k.id), ids.slice(6));
      assert.equal(last.body.has_more, false);
      assert.equal(last.body.next_cursor, null);
    });

    it('walks the whole list with next_cursor', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: any = await list(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).expect(200);
        seen.push(...res.body.items.map((k: { id: string }) => k.id));
        assert.equal(res.body.total, 7);
        cursor = res.body.next_cursor;
        assert.equal(res.body.has_more, cursor !== null);
        pages++;
      } while (cursor && pages < 10);
      assert.equal(pages, 4);
      assert.deepEqual(seen, ids);
    });

    const badQueries: [string, string][] = [
      ['?limit=201', 'limit'],
      ['?limit=0', 'limit'],
      ['?limit=abc', 'limit'],
      ['?offset=-1', 'offset'],
      ['?offset=abc', 'offset'],
      ['?cursor=not-a-cursor', 'cursor'],
      ['?include_revoked=maybe', 'include_revoked'],
      ['?sort=name', 'sort'],
    ];
    for (const [query, field] of badQueries) {
      it(`answers ${query} with 422 validation_error naming ${field}`, async () => {
        const res = await list(query).expect(422);
        assert.equal(res.body.code, 'validation_error');
        assert.ok(res.body.details.some((d: { field: string }) => d.field === field), JSON.stringify(res.body.details));
      });
    }

    it('refuses cursor and offset together with 422', async () => {
      const cursor = (await list('?limit=2').expect(200)).body.next_cursor;
      const res = await list(`?offset=2&cursor=${encodeURIComponent(cursor)}`).expect(422);
      assert.equal(res.body.code, 'validation_error');
    });

    it('accepts limit=200', async () => {
      const res = await list('?limit=200').expect(200);
      assert.equal(res.body.limit, 200);
    });

    it('hides revoked keys unless include_revoked=true, and marks expired ones', async () => {
      const gone = await makeKey(db.knex, t.services, { workspaceId: ws, name: 'gone' });
      await t.request.delete(`/v1/api-keys/${gone.id}`).set('Authorization', boss.auth).expect(200);
      const stale = await makeKey(db.knex, t.services, { workspaceId: ws, name: 'stale', expiresAt: new Date(Date.now() + HOUR) });
      await db.knex('api_keys').where({ id: stale.id }).update({ expires_at: new Date(Date.now() - 1000) });

      const active = await list('?limit=200').expect(200);
      assert.ok(!active.body.items.some((k: { id: string }) => k.id === gone.id));
      assert.equal(active.body.items.find((k: { id: string }) => k.id === stale.id).status, 'expired');
      assert.equal(active.body.total, 8);

      const all = await list('?limit=200&include_revoked=true').expect(200);
      const revoked = all.body.items.find((k: { id: string }) => k.id === gone.id);
      assert.equal(revoked.status, 'revoked');
      assert.ok(revoked.revoked_at);
      assert.equal(all.body.total, 9);
    });
  });

  describe('GET /v1/api-keys/{id}', () => {
    it('answers one key of the workspace', async () => {
      const k = await makeKey(db.knex, t.services, { name: 'one', scopes: ['read:tickets'] });
      const res = await t.request.get(`/v1/api-keys/${k.id}`).set('Authorization', admin.auth).expect(200);
      assert.equal(res.body.id, k.id);
      assert.equal(res.body.name, 'one');
      assert.deepEqual(res.body.scopes, ['read:tickets']);
      assert.equal(res.body.status, 'active');
    });

    it('answers 404 not_found for an unknown or malformed id', async () => {
      for (const id of ['key_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'key_nope', 'ws_default', '1']) {
        const res = await t.request.get(`/v1/api-keys/${id}`).set('Authorization', admin.auth).expect(404);
        assert.equal(res.body.code, 'not_found');
      }
    });
  });

  describe('DELETE /v1/api-keys/{id} (revoke)', () => {
    it('revokes a key: 200 with status revoked, and its very next request gets 401', async () => {
      const k = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', k.auth).expect(200);
      const res = await t.request.delete(`/v1/api-keys/${k.id}`).set('Authorization', admin.auth).expect(200);
      assert.equal(res.body.id, k.id);
      assert.equal(res.body.status, 'revoked');
      assertNear(res.body.revoked_at, Date.now(), 60_000, 'revoked_at');
      const after = await t.request.get('/v1/me').set('Authorization', k.auth).expect(401);
      assert.equal(after.body.code, 'unauthorized');
    });

    it('keeps the first revoked_at when a key is revoked twice', async () => {
      const k = await makeKey(db.knex, t.services);
      const first = await t.request.delete(`/v1/api-keys/${k.id}`).set('Authorization', admin.auth).expect(200);
      const second = await t.request.delete(`/v1/api-keys/${k.id}`).set('Authorization', admin.auth).expect(200);
      assert.equal(second.body.revoked_at, first.body.revoked_at);
    });

    it('lets a key revoke itself', async () => {
      const self = await makeKey(db.knex, t.services, { scopes: ['manage:keys'] });
      await t.request.delete(`/v1/api-keys/${self.id}`).set('Authorization', self.auth).expect(200);
      await t.request.get('/v1/me').set('Authorization', self.auth).expect(401);
    });

    it('answers 404 for an unknown id', async () => {
      const res = await t.request.delete('/v1/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV').set('Authorization', admin.auth).expect(404);
      assert.equal(res.body.code, 'not_found');
    });
  });

  describe('POST /v1/api-keys/{id}/rotate', () => {
    const rotate = (id: string, body: object = {}, auth = admin.auth) => t.request.post(`/v1/api-keys/${id}/rotate`).set('Authorization', auth).send(body);
    const row = async (id: string) => db.knex('api_keys').where({ id }).first();

    it('issues a replacement with the same name, scopes and rate limit; both tokens work during the overlap', async () => {
      const old = await makeKey(db.knex, t.services, { name: 'webshop', scopes: ['read:tickets', 'write:messages'], rateLimitPerMinute: 90 });
      const res = await rotate(old.id).expect(201);
      const fresh = res.body;
      assert.notEqual(fresh.id, old.id);
      assert.equal(res.headers.location, `/v1/api-keys/${fresh.id}`);
      assert.match(fresh.token, /^td_live_[0-9A-Za-z]{46}$/);
      assert.notEqual(fresh.token, old.token);
      assert.equal(fresh.name, 'webshop');
      assert.deepEqual(fresh.scopes, ['read:tickets', 'write:messages']);
      assert.equal(fresh.rate_limit_per_minute, 90);
      assert.equal(fresh.rotated_from_id, old.id);
      assert.equal(fresh.expires_at, null);
      assert.equal((await t.request.get('/v1/me').set('Authorization', `Bearer ${fresh.token}`).expect(200)).body.id, fresh.id);
      assert.equal((await t.request.get('/v1/me').set('Authorization', old.auth).expect(200)).body.id, old.id);
    });

    it('lets the old key live 24 hours by default', async () => {
      const old = await makeKey(db.knex, t.services);
      const at = Date.now();
      await rotate(old.id).expect(201);
      const shown = await t.request.get(`/v1/api-keys/${old.id}`).set('Authorization', admin.auth).expect(200);
      assertNear(shown.body.expires_at, at + 24 * HOUR, 60_000, 'old key expires_at');
      assert.equal(shown.body.status, 'active');
      const me = await t.request.get('/v1/me').set('Authorization', old.auth).expect(200);
      assert.equal(me.body.expires_at, shown.body.expires_at);
    });

    it('honours overlap_hours', async () => {
      const old = await makeKey(db.knex, t.services);
      const at = Date.now();
      await rotate(old.id, { overlap_hours: 2 }).expect(201);
      assertNear((await row(old.id)).expires_at, at + 2 * HOUR, 60_000, 'old key expires_at');
    });

    it('ends the old key at once with overlap_hours 0', async () => {
      const old = await makeKey(db.knex, t.services);
      const res = await rotate(old.id, { overlap_hours: 0 }).expect(201);
      await t.request.get('/v1/me').set('Authorization', old.auth).expect(401);
      await t.request.get('/v1/me').set('Authorization', `Bearer ${res.body.token}`).expect(200);
    });

    it('refuses the old token once the overlap has passed, while the new one keeps working', async () => {
      const old = await makeKey(db.knex, t.services);
      const fresh = (await rotate(old.id).expect(201)).body;
      await t.request.get('/v1/me').set('Authorization', old.auth).expect(200);
      // 24 hours later: move the end of the overlap into the past
      await db.knex('api_keys').where({ id: old.id }).update({ expires_at: db.knex.raw(`now() - interval '1 second'`) });
      const refused = await t.request.get('/v1/me').set('Authorization', old.auth).expect(401);
      assert.equal(refused.body.code, 'unauthorized');
      await t.request.get('/v1/me').set('Authorization', `Bearer ${fresh.token}`).expect(200);
      const shown = await t.request.get(`/v1/api-keys/${old.id}`).set('Authorization', admin.auth).expect(200);
      assert.equal(shown.body.status, 'expired');
    });

    it('never extends the old key\'s life', async () => {
      const endsSoon = Date.now() + HOUR;
      const old = await makeKey(db.knex, t.services, { expiresAt: new Date(endsSoon) });
      await rotate(old.id, { overlap_hours: 48 }).expect(201);
      assert.equal((await row(old.id)).expires_at.getTime(), endsSoon);
    });

    it('sets the replacement\'s expiry from expires_at', async () => {
      const old = await makeKey(db.knex, t.services);
      const expiresAt = new Date(Date.now() + 90 * 24 * HOUR).toISOString();
      const res = await rotate(old.id, { expires_at: expiresAt }).expect(201);
      assert.equal(res.body.expires_at, expiresAt);
    });

    it('gives the replacement the old key\'s expiry when none is given', async () => {
      const ends = new Date(Date.now() + 30 * 24 * HOUR);
      const old = await makeKey(db.knex, t.services, { expiresAt: ends });
      const res = await rotate(old.id).expect(201);
      assert.equal(res.body.expires_at, ends.toISOString());
    });

    it('replaces a key once: parallel rotations give one 201 and 409s, and a second rotation is refused', async () => {
      const old = await makeKey(db.knex, t.services);
      const answers = await Promise.all(Array.from({ length: 6 }, () => rotate(old.id)));
      const statuses = answers.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409]);
      const children = await db.knex('api_keys').where({ rotated_from_id: old.id });
      assert.equal(children.length, 1);
      const again = await rotate(old.id).expect(409);
      assert.match(again.body.detail, new RegExp(children[0].id));
    });

    it('never leaves a live replacement of a key revoked before the rotation commits', async () => {
      for (let i = 0; i < 5; i++) {
        const old = await makeKey(db.knex, t.services);
        const [rot, rev] = await Promise.all([rotate(old.id), t.request.delete(`/v1/api-keys/${old.id}`).set('Authorization', admin.auth)]);
        assert.equal(rev.status, 200);
        const child = await db.knex('api_keys').where({ rotated_from_id: old.id }).first();
        const oldRow = await row(old.id);
        if (rot.status === 201) {
          // The rotation committed first: its replacement is legitimately alive.
          assert.ok(child && oldRow.revoked_at);
        } else {
          assert.equal(rot.status, 409);
          assert.equal(child, undefined);
        }
      }
    });

    it('answers 409 conflict for a revoked key, and issues nothing', async () => {
      const old = await makeKey(db.knex, t.services);
      await t.request.delete(`/v1/api-keys/${old.id}`).set('Authorization', admin.auth).expect(200);
      const before = await keyCount();
      const res = await rotate(old.id).expect(409);
      assert.equal(res.body.code, 'conflict');
      assert.equal(await keyCount(), before);
    });

    it('answers 409 conflict for an expired key', async () => {
      const old = await makeKey(db.knex, t.services, { expiresAt: new Date(Date.now() + HOUR) });
      await db.knex('api_keys').where({ id: old.id }).update({ expires_at: new Date(Date.now() - 1000) });
      const res = await rotate(old.id).expect(409);
      assert.equal(res.body.code, 'conflict');
    });

    it('refuses to rotate a key with scopes the calling key lacks (403), changing nothing', async () => {
      const powerful = await makeKey(db.knex, t.services, { scopes: ['all'] });
      const keysOnly = await makeKey(db.knex, t.services, { scopes: ['manage:keys'] });
      const before = await keyCount();
      const res = await rotate(powerful.id, {}, keysOnly.auth).expect(403);
      assert.equal(res.body.code, 'forbidden');
      assert.ok(ALL_SCOPES.includes(res.body.required_scope));
      assert.notEqual(res.body.required_scope, 'manage:keys');
      assert.equal(await keyCount(), before);
      assert.equal((await row(powerful.id)).expires_at, null, 'the old key keeps its life');
    });

    it('lets a key rotate itself and keep working through the overlap', async () => {
      const self = await makeKey(db.knex, t.services, { scopes: ['manage:keys'] });
      const fresh = (await rotate(self.id, {}, self.auth).expect(201)).body;
      await t.request.get('/v1/me').set('Authorization', self.auth).expect(200);
      await t.request.get('/v1/me').set('Authorization', `Bearer ${fresh.token}`).expect(200);
    });

    for (const [what, body, field] of [
      ['overlap_hours over 168', { overlap_hours: 169 }, 'overlap_hours'],
      ['a negative overlap_hours', { overlap_hours: -1 }, 'overlap_hours'],
      ['an unknown field', { scopes: ['all'] }, 'scopes'],
      ['expires_at in the past', { expires_at: '2020-01-01T00:00:00Z' }, 'expires_at'],
    ] as const) {
      it(`answers ${what} with 422 validation_error, changing nothing`, async () => {
        const old = await makeKey(db.knex, t.services);
        const before = await keyCount();
        const res = await rotate(old.id, body).expect(422);
        assert.ok(res.body.details.some((d: { field: string }) => d.field === field), JSON.stringify(res.body.details));
        assert.equal(await keyCount(), before);
        assert.equal((await row(old.id)).expires_at, null);
      });
    }

    it('answers 404 for an unknown id', async () => {
      const res = await rotate('key_01ARZ3NDEKTSV4RRFFQ69G5FAV').expect(404);
      assert.equal(res.body.code, 'not_found');
    });
  });

  describe('sandbox workspaces', () => {
    it('issue td_test_ keys, and /v1/me says mode test', async () => {
      const sandbox = await makeWorkspace(db.knex, t.services, { sandbox: true, name: 'Playground' });
      const first = await makeKey(db.knex, t.services, { workspaceId: sandbox.id });
      assert.match(first.token, /^td_test_[0-9A-Za-z]{46}$/);
      const me = await t.request.get('/v1/me').set('Authorization', first.auth).expect(200);
      assert.equal(me.body.mode, 'test');
      assert.deepEqual(me.body.workspace, { id: sandbox.id, name: 'Playground', mode: 'sandbox' });

      const created = await t.request.post('/v1/api-keys').set('Authorization', first.auth).send({ name: 'sandboxed', scopes: ['read:tickets'] }).expect(201);
      assert.match(created.body.token, /^td_test_/);
      assert.equal(created.body.mode, 'test');
      assert.equal(created.body.workspace_id, sandbox.id);
      const rotated = await t.request.post(`/v1/api-keys/${created.body.id}/rotate`).set('Authorization', first.auth).send({}).expect(201);
      assert.match(rotated.body.token, /^td_test_/);
      const listed = await t.request.get('/v1/api-keys').set('Authorization', first.auth).expect(200);
      assert.ok(listed.body.items.every((k: { mode: string; token_prefix: string }) => k.mode === 'test' && k.token_prefix.startsWith('td_test_')));
    });

    it('keeps live workspace keys td_live_ with mode live', async () => {
      const me = await t.request.get('/v1/me').set('Authorization', admin.auth).expect(200);
      assert.equal(me.body.mode, 'live');
      assert.equal(me.body.workspace.mode, 'live');
      assert.match(admin.token, /^td_live_/);
    });
  });
});
