/**
 * A key never hands out more than it has (issue 17, defect 4): keys made or rotated through
 * the API are bounded by the calling key's scopes, rate limit and expiry. Asking for more is a
 * 422 naming the bound; leaving a limit out inherits the caller's bound. The CLI, the
 * operator's root of trust, is not bounded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const HOUR = 3_600_000;
const BIN = fileURLToPath(new URL('../../bin/topicdesk.js', import.meta.url));

/** `node bin/topicdesk.js …args` as the operator runs it; resolves with its parsed --json output. */
function topicdeskJson(databaseUrl: string, args: string[]): Promise<any> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' };
  delete env.NODE_ENV;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`exit ${code}: ${stderr}`))));
  });
}

describe('API keys: a key never hands out more than it has', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let t: TestApp;
  let defaultLimit: number;
  before(() => {
    t = createTestApp(db.knex);
    defaultLimit = t.config.rateLimit.defaultPerMinute;
  });

  const keyCount = async () => Number((await db.knex('api_keys').count({ n: '*' }))[0].n);
  const row = async (id: string) => db.knex('api_keys').where({ id }).first();
  const create = (auth: string, body: object) => t.request.post('/v1/api-keys').set('Authorization', auth).send(body);
  const rotate = (auth: string, id: string, body: object = {}) => t.request.post(`/v1/api-keys/${id}/rotate`).set('Authorization', auth).send(body);
  const me = (token: string) => t.request.get('/v1/me').set('Authorization', `Bearer ${token}`).expect(200);

  /** A 422 validation_error whose detail and details name the field and the bound. */
  function assertRefused(res: { status: number; body: any; headers: any }, field: string, bound: RegExp) {
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /^application\/problem\+json/);
    assert.equal(res.body.code, 'validation_error');
    assert.match(res.body.detail, new RegExp(`^${field} may not`));
    assert.match(res.body.detail, bound);
    const d = res.body.details.find((x: { field: string }) => x.field === field);
    assert.ok(d, JSON.stringify(res.body.details));
    assert.match(d.error, bound);
  }

  describe('rate limit', () => {
    it('refuses a rate limit above the calling key\'s (10/min asking 100,000/min) with 422 naming the bound, and creates nothing', async () => {
      const slow = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10 });
      const before = await keyCount();
      const res = await create(slow.auth, { name: 'faster', scopes: ['read:tickets'], rate_limit_per_minute: 100_000 });
      assertRefused(res, 'rate_limit_per_minute', /the creating key's 10 per minute/);
      assert.equal(res.body.details[0].received, 100_000);
      assertRefused(await create(slow.auth, { name: 'faster', scopes: ['read:tickets'], rate_limit_per_minute: 11 }), 'rate_limit_per_minute', /10 per minute/);
      assert.equal(await keyCount(), before);
    });

    it('allows a rate limit up to the calling key\'s', async () => {
      const slow = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10 });
      for (const limit of [10, 3]) {
        const res = await create(slow.auth, { name: `at ${limit}`, scopes: ['read:tickets'], rate_limit_per_minute: limit }).expect(201);
        assert.equal(res.body.rate_limit_per_minute, limit);
      }
    });

    it('gives a key made without a rate limit the calling key\'s (10/min), on the key and in /v1/me', async () => {
      const slow = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10 });
      const res = await create(slow.auth, { name: 'inherits', scopes: ['read:tickets'] }).expect(201);
      assert.equal(res.body.rate_limit_per_minute, 10);
      assert.deepEqual((await me(res.body.token)).body.rate_limit, { limit: 10, window_seconds: 60 });
    });

    it('bounds a key on the service default by that default, and lets its children follow the default too', async () => {
      const plain = await makeKey(db.knex, t.services);
      assertRefused(await create(plain.auth, { name: 'x', scopes: ['read:tickets'], rate_limit_per_minute: defaultLimit + 1 }),
        'rate_limit_per_minute', new RegExp(`the creating key's ${defaultLimit} per minute`));
      const child = await create(plain.auth, { name: 'default', scopes: ['read:tickets'] }).expect(201);
      assert.equal(child.body.rate_limit_per_minute, null);
      assert.deepEqual((await me(child.body.token)).body.rate_limit, { limit: defaultLimit, window_seconds: 60 });
    });

    it('holds down a chain: a child made by a bounded key cannot make a grandchild above the bound', async () => {
      const slow = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10, scopes: ['manage:keys', 'read:tickets'] });
      const child = (await create(slow.auth, { name: 'child', scopes: ['manage:keys', 'read:tickets'] }).expect(201)).body;
      assertRefused(await create(`Bearer ${child.token}`, { name: 'grandchild', scopes: ['read:tickets'], rate_limit_per_minute: 100_000 }),
        'rate_limit_per_minute', /10 per minute/);
      const grandchild = (await create(`Bearer ${child.token}`, { name: 'grandchild', scopes: ['read:tickets'] }).expect(201)).body;
      assert.equal(grandchild.rate_limit_per_minute, 10);
    });
  });

  describe('expiry', () => {
    it('refuses expires_at after the calling key\'s expiry (1 h, asking 2099) with 422 naming the bound, and creates nothing', async () => {
      const ends = new Date(Date.now() + HOUR);
      const brief = await makeKey(db.knex, t.services, { expiresAt: ends });
      const before = await keyCount();
      const res = await create(brief.auth, { name: 'forever', scopes: ['read:tickets'], expires_at: '2099-01-01T00:00:00Z' });
      assertRefused(res, 'expires_at', new RegExp(`the creating key's expiry, ${ends.toISOString()}`));
      assert.equal(res.body.details[0].received, '2099-01-01T00:00:00.000Z');
      assertRefused(await create(brief.auth, { name: 'later', scopes: ['read:tickets'], expires_at: new Date(ends.getTime() + 1000).toISOString() }),
        'expires_at', /creating key's expiry/);
      assert.equal(await keyCount(), before);
    });

    it('allows expires_at up to the calling key\'s expiry', async () => {
      const ends = new Date(Date.now() + HOUR);
      const brief = await makeKey(db.knex, t.services, { expiresAt: ends });
      for (const at of [ends, new Date(ends.getTime() - 10 * 60_000)]) {
        const res = await create(brief.auth, { name: 'within', scopes: ['read:tickets'], expires_at: at.toISOString() }).expect(201);
        assert.equal(res.body.expires_at, at.toISOString());
      }
    });

    it('gives a key made without expires_at the calling key\'s expiry, not "never", on the key and in /v1/me', async () => {
      const ends = new Date(Date.now() + HOUR);
      const brief = await makeKey(db.knex, t.services, { expiresAt: ends });
      const res = await create(brief.auth, { name: 'inherits', scopes: ['read:tickets'] }).expect(201);
      assert.equal(res.body.expires_at, ends.toISOString());
      assert.equal((await me(res.body.token)).body.expires_at, ends.toISOString());
    });

    it('lets a key without expiry make keys with any expiry or none', async () => {
      const lasting = await makeKey(db.knex, t.services);
      assert.equal((await create(lasting.auth, { name: 'none', scopes: ['read:tickets'] }).expect(201)).body.expires_at, null);
      const far = (await create(lasting.auth, { name: 'far', scopes: ['read:tickets'], expires_at: '2099-01-01T00:00:00Z' }).expect(201)).body;
      assert.equal(far.expires_at, '2099-01-01T00:00:00.000Z');
    });
  });

  describe('scopes', () => {
    it('refuses scopes the calling key lacks (403 naming one), also to a child made by a narrower key', async () => {
      const keyAdmin = await makeKey(db.knex, t.services, { scopes: ['manage:keys', 'read:tickets'] });
      for (const scopes of [['write:tickets'], ['all'], ['read:tickets', 'manage:webhooks']]) {
        const res = await create(keyAdmin.auth, { name: 'wider', scopes }).expect(403);
        assert.equal(res.body.code, 'forbidden');
        assert.ok(!['manage:keys', 'read:tickets'].includes(res.body.required_scope), res.body.required_scope);
      }
      const child = (await create(keyAdmin.auth, { name: 'child', scopes: ['manage:keys'] }).expect(201)).body;
      const res = await create(`Bearer ${child.token}`, { name: 'back up', scopes: ['read:tickets'] }).expect(403);
      assert.equal(res.body.required_scope, 'read:tickets');
    });
  });

  describe('rotation', () => {
    it('refuses expires_at after the calling key\'s expiry (2099), changing nothing, also when a key rotates itself', async () => {
      const ends = new Date(Date.now() + HOUR);
      const brief = await makeKey(db.knex, t.services, { expiresAt: ends, scopes: ['manage:keys', 'read:tickets'] });
      const other = await makeKey(db.knex, t.services, { scopes: ['read:tickets'] });
      const before = await keyCount();
      for (const target of [other.id, brief.id]) {
        assertRefused(await rotate(brief.auth, target, { expires_at: '2099-01-01T00:00:00Z' }), 'expires_at', new RegExp(ends.toISOString()));
      }
      assert.equal(await keyCount(), before);
      assert.equal((await row(other.id)).expires_at, null, 'the old key keeps its life');
      assert.equal((await row(brief.id)).expires_at.getTime(), ends.getTime());
    });

    it('caps the replacement\'s inherited expiry at the calling key\'s', async () => {
      const ends = new Date(Date.now() + HOUR);
      const brief = await makeKey(db.knex, t.services, { expiresAt: ends });
      const lasting = await makeKey(db.knex, t.services, { scopes: ['read:tickets'] });
      const res = await rotate(brief.auth, lasting.id).expect(201);
      assert.equal(res.body.expires_at, ends.toISOString());
      // An old key that ends sooner keeps its own, earlier expiry.
      const sooner = new Date(Date.now() + HOUR / 2);
      const short = await makeKey(db.knex, t.services, { scopes: ['read:tickets'], expiresAt: sooner });
      assert.equal((await rotate(brief.auth, short.id).expect(201)).body.expires_at, sooner.toISOString());
    });

    it('lets a key without expiry rotate itself into a key without expiry (its bound is read before its overlap starts)', async () => {
      const self = await makeKey(db.knex, t.services, { scopes: ['manage:keys'], rateLimitPerMinute: 50 });
      const fresh = (await rotate(self.auth, self.id).expect(201)).body;
      assert.equal(fresh.expires_at, null);
      assert.equal(fresh.rate_limit_per_minute, 50);
      assert.notEqual((await row(self.id)).expires_at, null, 'the old key ends after the overlap');
    });

    it('caps the replacement\'s inherited rate limit at the calling key\'s', async () => {
      const slow = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10 });
      const fast = await makeKey(db.knex, t.services, { scopes: ['read:tickets'], rateLimitPerMinute: 100_000 });
      const res = await rotate(slow.auth, fast.id).expect(201);
      assert.equal(res.body.rate_limit_per_minute, 10);
      assert.deepEqual((await me(res.body.token)).body.rate_limit, { limit: 10, window_seconds: 60 });
      const onDefault = await makeKey(db.knex, t.services, { scopes: ['read:tickets'] });
      assert.equal((await rotate(slow.auth, onDefault.id).expect(201)).body.rate_limit_per_minute, 10);
      const slower = await makeKey(db.knex, t.services, { scopes: ['read:tickets'], rateLimitPerMinute: 5 });
      assert.equal((await rotate(slow.auth, slower.id).expect(201)).body.rate_limit_per_minute, 5, 'a lower limit is kept');
    });

    it('caps an inherited rate limit at the service default when that is the calling key\'s limit', async () => {
      const plain = await makeKey(db.knex, t.services);
      const fast = await makeKey(db.knex, t.services, { scopes: ['read:tickets'], rateLimitPerMinute: 100_000 });
      const res = await rotate(plain.auth, fast.id).expect(201);
      assert.equal(res.body.rate_limit_per_minute, null);
      assert.deepEqual((await me(res.body.token)).body.rate_limit, { limit: defaultLimit, window_seconds: 60 });
    });

    it('leaves a rotation within the calling key\'s bounds as before: same limit, any expiry', async () => {
      const root = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
      const fast = await makeKey(db.knex, t.services, { scopes: ['read:tickets'], rateLimitPerMinute: 100_000 });
      const res = await rotate(root.auth, fast.id, { expires_at: '2099-01-01T00:00:00Z' }).expect(201);
      assert.equal(res.body.rate_limit_per_minute, 100_000);
      assert.equal(res.body.expires_at, '2099-01-01T00:00:00.000Z');
    });
  });

  describe('the CLI (the operator\'s root of trust)', () => {
    it('makes unbounded keys, and such a key can hand out up to its own limit through the API', async () => {
      const out = await topicdeskJson(db.current.url, ['keys', 'create', '--name', 'root', '--scopes', 'all', '--rate-limit', '100000']);
      const shown = await me(out.token);
      assert.equal(shown.body.expires_at, null);
      assert.deepEqual(shown.body.rate_limit, { limit: 100_000, window_seconds: 60 });
      const child = await create(`Bearer ${out.token}`, { name: 'big', scopes: ['read:tickets'], rate_limit_per_minute: 100_000, expires_at: '2099-01-01T00:00:00Z' }).expect(201);
      assert.equal(child.body.rate_limit_per_minute, 100_000);
      const short = await topicdeskJson(db.current.url, ['keys', 'create', '--name', 'short', '--scopes', 'all', '--expires-in', '1h', '--rate-limit', '10']);
      assertRefused(await create(`Bearer ${short.token}`, { name: 'x', scopes: ['read:tickets'], expires_at: '2099-01-01T00:00:00Z' }), 'expires_at', /creating key's expiry/);
      assertRefused(await create(`Bearer ${short.token}`, { name: 'x', scopes: ['read:tickets'], rate_limit_per_minute: 100_000 }), 'rate_limit_per_minute', /10 per minute/);
    });
  });
});
