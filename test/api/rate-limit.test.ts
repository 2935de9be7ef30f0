import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import { createKnex, type Knex } from '../../src/db/knex.js';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

/**
 * Windows are fixed calendar minutes of the database clock. A test that needs several
 * requests in one window first waits out the last few seconds of the current minute
 * (a precondition, not a timing assertion).
 */
async function insideOneWindow(knex: Knex, seconds = 8): Promise<void> {
  const { rows } = await knex.raw(`SELECT extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now())::float8 AS left`);
  const left: number = rows[0].left;
  if (left < seconds) await new Promise((resolve) => setTimeout(resolve, Math.ceil(left * 1000) + 200));
}

function assertRateHeaders(res: Response, limit: number, remaining?: number) {
  assert.equal(res.headers['x-ratelimit-limit'], String(limit), 'X-RateLimit-Limit');
  assert.match(res.headers['x-ratelimit-remaining'], /^\d+$/, 'X-RateLimit-Remaining');
  if (remaining !== undefined) assert.equal(res.headers['x-ratelimit-remaining'], String(remaining), 'X-RateLimit-Remaining');
  const reset = res.headers['x-ratelimit-reset'];
  assert.match(reset, /^\d+$/, 'X-RateLimit-Reset');
  // delta seconds until the window ends, not an epoch
  assert.ok(Number(reset) >= 1 && Number(reset) <= 60, `X-RateLimit-Reset ${reset}`);
  assert.equal(res.headers['ratelimit-policy'], `"per-key";q=${limit};w=60`);
  assert.equal(res.headers.ratelimit, `"per-key";r=${res.headers['x-ratelimit-remaining']};t=${reset}`);
}

function assertLimited(res: Response, limit: number) {
  assert.equal(res.status, 429);
  assert.match(res.headers['content-type'], /^application\/problem\+json/);
  assert.equal(res.body.code, 'rate_limit_exceeded');
  assert.equal(res.body.status, 429);
  assertRateHeaders(res, limit, 0);
  assert.match(res.headers['retry-after'], /^\d+$/);
  assert.ok(Number(res.headers['retry-after']) >= 1 && Number(res.headers['retry-after']) <= 60);
  assert.equal(res.headers['retry-after'], res.headers['x-ratelimit-reset']);
}

describe('rate limits', () => {
  const db = useTestDatabase();
  let t: TestApp;
  before(() => { t = createTestApp(db.knex); });
  beforeEach(() => insideOneWindow(db.knex));

  const me = (auth: string, app: TestApp = t) => app.request.get('/v1/me').set('Authorization', auth);

  it('sends X-RateLimit-Limit, -Remaining, -Reset (seconds) and the draft RateLimit headers on authenticated responses', async () => {
    const key = await makeKey(db.knex, t.services);
    const res = await me(key.auth).expect(200);
    assertRateHeaders(res, 600, 599);
    assert.equal(res.headers['retry-after'], undefined);
    const ws = await t.request.get('/v1/workspace').set('Authorization', key.auth).expect(200);
    assertRateHeaders(ws, 600, 598);
  });

  it('counts Remaining down by one per request', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 50 });
    for (let i = 1; i <= 5; i++) assertRateHeaders(await me(key.auth).expect(200), 50, 50 - i);
  });

  it('answers the request after the budget with 429 rate_limit_exceeded and Retry-After', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 5 });
    for (let i = 1; i <= 5; i++) assertRateHeaders(await me(key.auth).expect(200), 5, 5 - i);
    assertLimited(await me(key.auth), 5);
    // and stays limited, on every route
    assertLimited(await me(key.auth), 5);
    assertLimited(await t.request.get('/v1/workspace').set('Authorization', key.auth), 5);
    assertLimited(await t.request.patch('/v1/workspace').set('Authorization', key.auth).send({ daily_send_limit: 1 }), 5);
    const ws = await db.knex('workspaces').where({ id: 'ws_default' }).first();
    assert.notEqual(ws.daily_send_limit, 1, 'a limited request has no effect');
  });

  it('gives every key its own budget', async () => {
    const busy = await makeKey(db.knex, t.services, { rateLimitPerMinute: 3 });
    const quiet = await makeKey(db.knex, t.services, { rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) await me(busy.auth).expect(200);
    assertLimited(await me(busy.auth), 3);
    assertRateHeaders(await me(quiet.auth).expect(200), 3, 2);
    assertLimited(await me(busy.auth), 3);
  });

  it('restores the budget when the window rolls over', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 2 });
    await me(key.auth).expect(200);
    await me(key.auth).expect(200);
    assertLimited(await me(key.auth), 2);
    // a minute passes: the counted window becomes the previous one
    const moved = await db.knex('rate_limit_counters').where({ bucket: `key:${key.id}` })
      .update({ window_start: db.knex.raw(`window_start - interval '1 minute'`) });
    assert.equal(moved, 1);
    assertRateHeaders(await me(key.auth).expect(200), 2, 1);
    await me(key.auth).expect(200);
    assertLimited(await me(key.auth), 2);
  });

  it('shows a per-key override in /v1/me and X-RateLimit-Limit, and the default 600 otherwise', async () => {
    const custom = await makeKey(db.knex, t.services, { rateLimitPerMinute: 42 });
    const plain = await makeKey(db.knex, t.services);
    const a = await me(custom.auth).expect(200);
    assert.deepEqual(a.body.rate_limit, { limit: 42, window_seconds: 60 });
    assertRateHeaders(a, 42, 41);
    const b = await me(plain.auth).expect(200);
    assert.deepEqual(b.body.rate_limit, { limit: 600, window_seconds: 60 });
    assertRateHeaders(b, 600, 599);
  });

  it('takes the default limit from configuration', async () => {
    const small = createTestApp(db.knex, { config: { rateLimit: { defaultPerMinute: 3 } } });
    const key = await makeKey(db.knex, small.services);
    const first = await me(key.auth, small).expect(200);
    assert.deepEqual(first.body.rate_limit, { limit: 3, window_seconds: 60 });
    await me(key.auth, small).expect(200);
    await me(key.auth, small).expect(200);
    assertLimited(await me(key.auth, small), 3);
  });

  it('shares one budget between two app instances on the same database', async () => {
    // a second "replica": its own app and its own connection pool
    const knex2 = createKnex(db.current.url, 4);
    try {
      const replica = createTestApp(knex2);
      const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 6 });
      const apps = [t, replica];
      for (let i = 0; i < 6; i++) assertRateHeaders(await me(key.auth, apps[i % 2]).expect(200), 6, 5 - i);
      assertLimited(await me(key.auth, t), 6);
      assertLimited(await me(key.auth, replica), 6);
    } finally {
      await knex2.destroy();
    }
  });

  it('counts concurrent requests exactly: a burst gets precisely the budget through', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 8 });
    const results = await Promise.all(Array.from({ length: 16 }, () => me(key.auth)));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(8).fill(200), ...Array(8).fill(429)]);
    const remaining = results.filter((r) => r.status === 200).map((r) => Number(r.headers['x-ratelimit-remaining'])).sort((a, b) => a - b);
    assert.deepEqual(remaining, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('counts 403, 404 and 422 answers and still sends the headers on them', async () => {
    const reader = await makeKey(db.knex, t.services, { scopes: ['read:tickets'], rateLimitPerMinute: 10 });
    const forbidden = await t.request.get('/v1/api-keys').set('Authorization', reader.auth).expect(403);
    assertRateHeaders(forbidden, 10, 9);
    const keeper = await makeKey(db.knex, t.services, { scopes: ['manage:keys', 'manage:settings'], rateLimitPerMinute: 10 });
    assertRateHeaders(await t.request.get('/v1/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV').set('Authorization', keeper.auth).expect(404), 10, 9);
    assertRateHeaders(await t.request.get('/v1/api-keys?limit=abc').set('Authorization', keeper.auth).expect(422), 10, 8);
    assertRateHeaders(await t.request.patch('/v1/workspace').set('Authorization', keeper.auth).send({}).expect(422), 10, 7);
  });

  it('neither counts nor labels requests that fail authentication', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 3 });
    const broken = key.token.slice(0, -1) + (key.token.endsWith('a') ? 'b' : 'a');
    for (let i = 0; i < 5; i++) {
      const res = await me(`Bearer ${broken}`).expect(401);
      assert.equal(res.headers['x-ratelimit-limit'], undefined);
      assert.equal(res.headers['retry-after'], undefined);
    }
    assertRateHeaders(await me(key.auth).expect(200), 3, 2);
  });

  it('stops counting for a revoked key (its 401s carry no rate-limit headers)', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 5 });
    await me(key.auth).expect(200);
    await t.services.apiKeys.revoke(db.knex, 'ws_default', key.id);
    const res = await me(key.auth).expect(401);
    assert.equal(res.headers['x-ratelimit-remaining'], undefined);
    const row = await db.knex('rate_limit_counters').where({ bucket: `key:${key.id}` }).first();
    assert.equal(row.count, 1);
  });

  it('keeps a rotated key\'s budget separate from its replacement\'s', async () => {
    const old = await makeKey(db.knex, t.services, { rateLimitPerMinute: 2 });
    await me(old.auth).expect(200);
    await me(old.auth).expect(200);
    assertLimited(await me(old.auth), 2);
    const admin = await makeKey(db.knex, t.services);
    const fresh = await t.request.post(`/v1/api-keys/${old.id}/rotate`).set('Authorization', admin.auth).send({}).expect(201);
    assert.equal(fresh.body.rate_limit_per_minute, 2);
    assertRateHeaders(await me(`Bearer ${fresh.body.token}`).expect(200), 2, 1);
  });

  describe('a busy key, served from its lease (key-leases.ts)', () => {
    /** Enough requests at once that the key is counted in chunks. */
    async function burst(auth: string, app: TestApp = t, n = 120) {
      const results = [];
      for (let wave = 0; wave < n / 40; wave++) results.push(...await Promise.all(Array.from({ length: 40 }, () => me(auth, app))));
      return results;
    }

    it('still counts Remaining down by one per request: no number twice, and the shared count is every request', async () => {
      const key = await makeKey(db.knex, t.services);
      const results = await burst(key.auth);
      assert.ok(results.every((r) => r.status === 200));
      const remaining = results.map((r) => Number(r.headers['x-ratelimit-remaining'])).sort((a, b) => b - a);
      assert.deepEqual(remaining, Array.from({ length: 120 }, (_, i) => 599 - i));
      const row = await db.knex('rate_limit_counters').where({ bucket: `key:${key.id}` }).first();
      assert.ok(row.count >= 120, 'every request was counted before it was answered');
    });

    it('a key revoked on this replica is refused at once, even right after a burst', async () => {
      const key = await makeKey(db.knex, t.services);
      const admin = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10 });
      await burst(key.auth);
      await t.request.delete(`/v1/api-keys/${key.id}`).set('Authorization', admin.auth).expect(200);
      await me(key.auth).expect(401);
    });

    it('a key rotated without overlap on this replica is refused at once, even right after a burst', async () => {
      const key = await makeKey(db.knex, t.services);
      const admin = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10 });
      await burst(key.auth);
      await t.request.post(`/v1/api-keys/${key.id}/rotate`).set('Authorization', admin.auth).send({ overlap_hours: 0 }).expect(201);
      await me(key.auth).expect(401);
    });

    it('a workspace renamed on this replica shows in the next /v1/me, even right after a burst', async () => {
      const key = await makeKey(db.knex, t.services);
      await burst(key.auth);
      const name = `Renamed ${Date.now()}`;
      await t.request.patch('/v1/workspace').set('Authorization', key.auth).send({ name }).expect(200);
      assert.equal((await me(key.auth).expect(200)).body.workspace.name, name);
    });

    it('with API_KEY_LEASE_MAX_AGE_MS=0 a key revoked on another replica is refused here by the very next request, even right after a burst', async () => {
      const knex2 = createKnex(db.current.url, 4);
      try {
        const strict = createTestApp(db.knex, { config: { apiKeys: { leaseMaxAgeMs: 0 } } });
        const replica = createTestApp(knex2);
        const key = await makeKey(db.knex, t.services);
        const results = await burst(key.auth, strict);
        assert.deepEqual(results.map((r) => Number(r.headers['x-ratelimit-remaining'])).sort((a, b) => b - a), Array.from({ length: 120 }, (_, i) => 599 - i));
        await replica.services.apiKeys.revoke(knex2, 'ws_default', key.id);
        await me(key.auth, strict).expect(401);
      } finally {
        await knex2.destroy();
      }
    });

    it('a key revoked on another replica is refused here once a lease\'s life (1 s) has passed', async () => {
      const knex2 = createKnex(db.current.url, 4);
      try {
        const replica = createTestApp(knex2);
        const key = await makeKey(db.knex, t.services);
        await burst(key.auth);
        await replica.services.apiKeys.revoke(knex2, 'ws_default', key.id);
        await new Promise((r) => setTimeout(r, 1100));
        await me(key.auth).expect(401);
      } finally {
        await knex2.destroy();
      }
    });
  });
});
