import assert from 'node:assert/strict';
import { generateToken, hashToken } from '../../src/auth/api-key-token.js';
import { apiKeyRoutes } from '../../src/auth/api-key-routes.js';
import { ALL_SCOPES, type Scope } from '../../src/kernel/scopes.js';
import { createKnex, type Knex } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { workspaceRoutes } from '../../src/workspaces/workspace-routes.js';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const withoutRequestId = (body: Record<string, unknown>) => {
  const { request_id: _ignored, ...rest } = body;
  return rest;
};

/** The same token with its last (checksum) character changed. */
const breakChecksum = (token: string) => token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a');

/** SQL statements the knex instance ran while `fn` ran. */
async function queriesDuring(knex: Knex, fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (q: { sql: string }) => seen.push(q.sql);
  knex.on('query', listener);
  try {
    await fn();
  } finally {
    knex.removeListener('query', listener);
  }
  return seen;
}

/** Rows of every table in the database whose text form contains `needle`. */
async function rowsContaining(knex: Knex, needle: string): Promise<string[]> {
  const { rows: tables } = await knex.raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
  const hits: string[] = [];
  for (const { tablename } of tables as { tablename: string }[]) {
    const { rows } = await knex.raw(`SELECT count(*)::int AS n FROM ?? AS t WHERE t::text LIKE ?`, [tablename, `%${needle}%`]);
    if (rows[0].n > 0) hits.push(tablename);
  }
  return hits;
}

describe('authentication', () => {
  const db = useTestDatabase();
  let t: TestApp;
  before(() => { t = createTestApp(db.knex); });

  describe('refusals', () => {
    let reference: Record<string, unknown>;
    before(async () => {
      const res = await t.request.get('/v1/me').expect(401);
      reference = withoutRequestId(res.body);
    });

    async function expectUnauthorized(authorization: string | null) {
      const req = t.request.get('/v1/me');
      if (authorization !== null) req.set('Authorization', authorization);
      const res = await req;
      assert.equal(res.status, 401);
      assert.match(res.headers['content-type'], /^application\/problem\+json/);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="topicdesk"');
      assert.equal(res.body.code, 'unauthorized');
      assert.equal(res.body.request_id, res.headers['x-request-id']);
      assert.deepEqual(withoutRequestId(res.body), reference, 'every 401 body is the same apart from request_id');
      return res;
    }

    it('answers a request without an Authorization header with 401 unauthorized', async () => {
      assert.deepEqual(Object.keys(reference).sort(), ['code', 'detail', 'status', 'title', 'type']);
      assert.equal(reference.status, 401);
      await expectUnauthorized(null);
    });

    it('answers a non-Bearer scheme with the same 401', async () => {
      const key = await makeKey(db.knex, t.services);
      await expectUnauthorized(`Basic ${Buffer.from(`user:${key.token}`).toString('base64')}`);
      await expectUnauthorized(`Token ${key.token}`);
    });

    it('answers an empty Bearer credential with the same 401', async () => {
      await expectUnauthorized('Bearer');
      await expectUnauthorized('Bearer   ');
    });

    it('answers a garbage token with the same 401', async () => {
      await expectUnauthorized('Bearer garbage');
      await expectUnauthorized(`Bearer td_live_${'!'.repeat(46)}`);
      await expectUnauthorized(`Bearer ${'x'.repeat(5000)}`);
    });

    it('answers a valid token followed by extra words with the same 401', async () => {
      const key = await makeKey(db.knex, t.services);
      await expectUnauthorized(`${key.auth} extra`);
    });

    it('answers a well-formed token with a wrong checksum with the same 401', async () => {
      const key = await makeKey(db.knex, t.services);
      await expectUnauthorized(`Bearer ${breakChecksum(key.token)}`);
      // the mode is part of the checksummed text: a live token relabelled as test fails too
      await expectUnauthorized(`Bearer ${key.token.replace('td_live_', 'td_test_')}`);
    });

    it('answers an unknown token with a valid checksum with the same 401', async () => {
      await expectUnauthorized(`Bearer ${generateToken('live').token}`);
      await expectUnauthorized(`Bearer ${generateToken('test').token}`);
    });

    it('answers an expired key with the same 401', async () => {
      const key = await makeKey(db.knex, t.services, { expiresAt: new Date(Date.now() + 3_600_000) });
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      await db.knex('api_keys').where({ id: key.id }).update({ expires_at: db.knex.raw(`now() - interval '1 second'`) });
      await expectUnauthorized(key.auth);
    });

    it('answers a revoked key with the same 401', async () => {
      const key = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      await t.services.apiKeys.revoke(db.knex, 'ws_default', key.id);
      await expectUnauthorized(key.auth);
    });

    it('answers 401 on key-protected routes before looking at the body or the path id', async () => {
      const res = await t.request.post('/v1/api-keys/not-an-id/rotate').set('Content-Type', 'application/json').send('{not json');
      assert.equal(res.status, 401);
      assert.deepEqual(withoutRequestId(res.body), reference);
    });
  });

  describe('checks before touching the database', () => {
    it('refuses a token with a bad checksum without running any query', async () => {
      const key = await makeKey(db.knex, t.services);
      const sql = await queriesDuring(db.knex, async () => {
        await t.request.get('/v1/me').set('Authorization', `Bearer ${breakChecksum(key.token)}`).expect(401);
      });
      assert.deepEqual(sql, []);
    });

    it('refuses missing, non-Bearer and malformed credentials without running any query', async () => {
      const sql = await queriesDuring(db.knex, async () => {
        await t.request.get('/v1/me').expect(401);
        await t.request.get('/v1/me').set('Authorization', 'Basic Zm9vOmJhcg==').expect(401);
        await t.request.get('/v1/me').set('Authorization', 'Bearer garbage').expect(401);
        await t.request.get('/v1/api-keys').set('Authorization', `Bearer td_live_${'a'.repeat(46)}`).expect(401);
      });
      assert.deepEqual(sql, []);
    });

    it('authenticates a valid key in one query (lookup, rate-limit count and last-used write together)', async () => {
      const key = await makeKey(db.knex, t.services);
      const sql = await queriesDuring(db.knex, async () => {
        await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      });
      assert.equal(sql.length, 1, sql.join('\n'));
    });

    it('still answers 401 for a bad checksum while the database pool is destroyed', async () => {
      const knex2 = createKnex(db.current.url, 2);
      const t2 = createTestApp(knex2);
      const key = await makeKey(db.knex, t.services);
      await t2.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      await knex2.destroy();
      const res = await t2.request.get('/v1/me').set('Authorization', `Bearer ${breakChecksum(key.token)}`);
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'unauthorized');
      // …whereas a token that passes the checksum needs the (now gone) database:
      const valid = await t2.request.get('/v1/me').set('Authorization', key.auth);
      assert.equal(valid.status, 500);
      assert.equal(valid.body.code, 'internal_error');
    });
  });

  describe('valid keys', () => {
    it('accepts a valid key with 200', async () => {
      const key = await makeKey(db.knex, t.services);
      const res = await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      assert.equal(res.body.id, key.id);
      assert.equal(res.headers['www-authenticate'], undefined);
    });

    it('accepts the Bearer scheme in any letter case and surrounding spaces', async () => {
      const key = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', `bearer ${key.token}`).expect(200);
      await t.request.get('/v1/me').set('Authorization', `BEARER   ${key.token}  `).expect(200);
    });

    it('accepts a key whose expires_at is still ahead', async () => {
      const expiresAt = new Date(Date.now() + 60_000);
      const key = await makeKey(db.knex, t.services, { expiresAt });
      const res = await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      assert.equal(res.body.expires_at, expiresAt.toISOString());
    });

    it('accepts several active keys of one workspace at once', async () => {
      const a = await makeKey(db.knex, t.services);
      const b = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', a.auth).expect(200);
      await t.request.get('/v1/me').set('Authorization', b.auth).expect(200);
    });
  });

  describe('secrecy of tokens', () => {
    it('stores only the SHA-256 of a token and a 12-character prefix, never the token', async () => {
      const admin = await makeKey(db.knex, t.services, { scopes: ['manage:keys'] });
      const created = await t.request.post('/v1/api-keys').set('Authorization', admin.auth)
        .send({ name: 'integration', scopes: ['manage:keys'] }).expect(201);
      const token: string = created.body.token;
      await t.request.get('/v1/me').set('Authorization', `Bearer ${token}`).expect(200);

      const row = await db.knex('api_keys').where({ id: created.body.id }).first();
      assert.deepEqual(row.key_hash, hashToken(token));
      assert.equal(row.token_prefix, token.slice(0, 12));
      for (const [column, value] of Object.entries(row)) {
        if (typeof value === 'string') assert.ok(!value.includes(token.slice(12)), `column ${column} holds token text`);
      }
      for (const secret of [token, token.slice(12, 52), admin.token, admin.token.slice(12, 52)]) {
        assert.deepEqual(await rowsContaining(db.knex, secret), [], 'no table holds the token or its secret part');
      }
    });

    it('does not store the token when create or rotate carries an Idempotency-Key; the replay says token: null', async () => {
      const admin = await makeKey(db.knex, t.services, { scopes: ['manage:keys'] });
      const created = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).set('Idempotency-Key', 'create-once')
        .send({ name: 'idempotent', scopes: ['manage:keys'] }).expect(201);
      assert.match(created.body.token, /^td_live_/, 'the first answer shows the token');
      assert.deepEqual(await rowsContaining(db.knex, created.body.token.slice(12, 52)), []);
      const replay = await t.request.post('/v1/api-keys').set('Authorization', admin.auth).set('Idempotency-Key', 'create-once')
        .send({ name: 'idempotent', scopes: ['manage:keys'] }).expect(201);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.deepEqual(replay.body, { ...created.body, token: null });

      const rotated = await t.request.post(`/v1/api-keys/${created.body.id}/rotate`).set('Authorization', admin.auth)
        .set('Idempotency-Key', 'rotate-once').send({}).expect(201);
      assert.deepEqual(await rowsContaining(db.knex, rotated.body.token.slice(12, 52)), []);
      const again = await t.request.post(`/v1/api-keys/${created.body.id}/rotate`).set('Authorization', admin.auth)
        .set('Idempotency-Key', 'rotate-once').send({}).expect(201);
      assert.equal(again.body.token, null);
      assert.equal(again.body.id, rotated.body.id, 'no second replacement was made');
    });

    it('never writes a token to the logs when it is created, used, revoked or refused', async () => {
      const t2 = createTestApp(db.knex);
      const admin = await makeKey(db.knex, t2.services, { scopes: ['manage:keys'] });
      const created = await t2.request.post('/v1/api-keys').set('Authorization', admin.auth)
        .send({ name: 'logged', scopes: ['manage:keys'] }).expect(201);
      const token: string = created.body.token;
      await t2.request.get('/v1/me').set('Authorization', `Bearer ${token}`).expect(200);
      const rotated = await t2.request.post(`/v1/api-keys/${created.body.id}/rotate`).set('Authorization', `Bearer ${token}`).send({}).expect(201);
      await t2.request.delete(`/v1/api-keys/${rotated.body.id}`).set('Authorization', `Bearer ${token}`).expect(200);
      await t2.request.get('/v1/me').set('Authorization', `Bearer ${rotated.body.token}`).expect(401);
      await t2.request.get('/v1/me').set('Authorization', `Bearer ${breakChecksum(token)}`).expect(401);
      await t2.request.get('/v1/me').set('Authorization', `Basic ${token}`).expect(401);

      assert.ok(t2.logs.length >= 7, 'the app logged its requests');
      assert.ok(t2.logs.some((l) => l.includes(created.body.id)), 'log lines name keys by id');
      const all = t2.logs.join('\n');
      for (const secret of [token, rotated.body.token, admin.token]) {
        assert.ok(!all.includes(secret.slice(12, 52)), 'a token reached the logs');
      }
    });
  });

  describe('last_used_at', () => {
    const lastUsed = async (id: string): Promise<Date | null> => (await db.knex('api_keys').where({ id }).first()).last_used_at;

    it('is null until the key is first used, then set by that request', async () => {
      const key = await makeKey(db.knex, t.services);
      assert.equal(await lastUsed(key.id), null);
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const first = await lastUsed(key.id);
      assert.ok(first instanceof Date);
      assert.ok(Math.abs(first.getTime() - Date.now()) < 60_000);
      const shown = await t.request.get(`/v1/api-keys/${key.id}`).set('Authorization', key.auth).expect(200);
      assert.equal(shown.body.last_used_at, first.toISOString());
    });

    it('is written at most once per interval however many requests arrive', async () => {
      const key = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const first = await lastUsed(key.id);
      for (let i = 0; i < 15; i++) await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      assert.deepEqual(await lastUsed(key.id), first);
    });

    it('is written again by the next request once the interval has passed', async () => {
      const key = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      await db.knex('api_keys').where({ id: key.id }).update({ last_used_at: db.knex.raw(`now() - interval '61 seconds'`) });
      const backdated = (await lastUsed(key.id))!;
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const updated = (await lastUsed(key.id))!;
      assert.ok(updated.getTime() > backdated.getTime() + 60_000);
      // …and then holds still again
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      assert.deepEqual(await lastUsed(key.id), updated);
    });

    it('is not touched by requests that fail authentication', async () => {
      const key = await makeKey(db.knex, t.services);
      await t.request.get('/v1/me').set('Authorization', `Bearer ${breakChecksum(key.token)}`).expect(401);
      await t.services.apiKeys.revoke(db.knex, 'ws_default', key.id);
      await t.request.get('/v1/me').set('Authorization', key.auth).expect(401);
      assert.equal(await lastUsed(key.id), null);
    });

    it('follows the configured interval (0 = every request)', async () => {
      const t0 = createTestApp(db.knex, { config: { apiKeys: { lastUsedWriteIntervalSeconds: 0 } } });
      const key = await makeKey(db.knex, t0.services);
      await t0.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const first = (await lastUsed(key.id))!;
      await t0.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      assert.ok((await lastUsed(key.id))!.getTime() > first.getTime());
    });
  });

  describe('the prepared statement', () => {
    // A pool of one connection: the statements the app ran are the ones this pool's connection holds.
    let knex1: Knex;
    let t1: TestApp;
    before(() => { knex1 = createKnex(db.current.url, 1); t1 = createTestApp(knex1); });
    after(() => knex1.destroy());

    const preparedOnPool = async () => (await knex1.raw(
      `SELECT name, generic_plans + custom_plans AS plans FROM pg_prepared_statements WHERE name = 'td_auth_key'`,
    )).rows as { name: string; plans: number }[];

    it('authenticates with one named statement, prepared once per connection and then only executed', async () => {
      const key = await makeKey(db.knex, t.services);
      await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const rows = await preparedOnPool();
      assert.equal(rows.length, 1);
      assert.ok(rows[0].plans >= 2, `executed ${rows[0].plans} times`);
    });

    it('keeps working when a migration adds a column to api_keys or workspaces while the statement is prepared', async () => {
      const key = await makeKey(db.knex, t.services);
      await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      assert.equal((await preparedOnPool()).length, 1);
      await db.knex.raw('ALTER TABLE api_keys ADD COLUMN td_test_extra text');
      await db.knex.raw('ALTER TABLE workspaces ADD COLUMN td_test_extra text');
      try {
        const res = await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
        assert.equal(res.body.id, key.id);
      } finally {
        await db.knex.raw('ALTER TABLE api_keys DROP COLUMN td_test_extra');
        await db.knex.raw('ALTER TABLE workspaces DROP COLUMN td_test_extra');
      }
      await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
    });

    it('prepares it again on the new connection once the old one is gone', async () => {
      const key = await makeKey(db.knex, t.services);
      await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const conn = await knex1.client.acquireConnection();
      const pid = (await conn.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await knex1.client.releaseConnection(conn);
      const ended = new Promise((resolve) => conn.once('end', resolve));
      await db.knex.raw('SELECT pg_terminate_backend(?)', [pid]);
      await ended;
      await t1.request.get('/v1/me').set('Authorization', key.auth).expect(200);
      const now = (await knex1.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      assert.notEqual(now, pid);
      assert.equal((await preparedOnPool()).length, 1);
    });
  });
});

/** Every route this module family defines, with its scope and a request that succeeds. */
interface RouteCase {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  scope: Scope | null;
  status: number;
  body?: object;
}

const ROUTES: RouteCase[] = [
  { method: 'get', path: '/v1/me', scope: null, status: 200 },
  { method: 'get', path: '/v1/workspace', scope: null, status: 200 },
  { method: 'patch', path: '/v1/workspace', scope: 'manage:settings', status: 200, body: { daily_send_limit: 40 } },
  { method: 'get', path: '/v1/api-keys', scope: 'manage:keys', status: 200 },
  { method: 'post', path: '/v1/api-keys', scope: 'manage:keys', status: 201, body: { name: 'made', scopes: ['manage:keys'] } },
  { method: 'get', path: '/v1/api-keys/:id', scope: 'manage:keys', status: 200 },
  { method: 'delete', path: '/v1/api-keys/:id', scope: 'manage:keys', status: 200 },
  { method: 'post', path: '/v1/api-keys/:id/rotate', scope: 'manage:keys', status: 201, body: {} },
];

describe('scopes on every route', () => {
  const db = useTestDatabase();
  let t: TestApp;
  before(() => { t = createTestApp(db.knex); });

  async function call(route: RouteCase, auth: string) {
    let path = route.path;
    if (path.includes(':id')) path = path.replace(':id', (await makeKey(db.knex, t.services, { scopes: ['manage:keys'] })).id);
    const req = t.request[route.method](path).set('Authorization', auth);
    return route.body ? req.send(route.body) : req;
  }

  it('covers every route of the api-key and workspace modules in this table', () => {
    const defined = [...apiKeyRoutes(t.services.apiKeys, systemClock), ...workspaceRoutes(t.services.workspaces)]
      .map((r) => `${r.method} ${r.path} ${r.auth === 'key' ? r.scope ?? 'any key' : 'public'}`).sort();
    assert.deepEqual(ROUTES.map((r) => `${r.method} ${r.path} ${r.scope ?? 'any key'}`).sort(), defined);
  });

  for (const route of ROUTES) {
    const name = `${route.method.toUpperCase()} ${route.path}`;
    if (route.scope) {
      const scope = route.scope;
      it(`${name} refuses a key holding every other scope with 403 forbidden naming ${scope}`, async () => {
        const key = await makeKey(db.knex, t.services, { scopes: ALL_SCOPES.filter((s) => s !== scope) });
        const res = await call(route, key.auth);
        assert.equal(res.status, 403);
        assert.match(res.headers['content-type'], /^application\/problem\+json/);
        assert.equal(res.body.code, 'forbidden');
        assert.equal(res.body.required_scope, scope);
        assert.equal(res.body.request_id, res.headers['x-request-id']);
      });
      it(`${name} succeeds with a key holding only ${scope}`, async () => {
        const key = await makeKey(db.knex, t.services, { scopes: [scope] });
        const res = await call(route, key.auth);
        assert.equal(res.status, route.status, JSON.stringify(res.body));
      });
    } else {
      it(`${name} succeeds with a key holding any single scope`, async () => {
        for (const scope of ['read:analytics', 'manage:keys'] as const) {
          const key = await makeKey(db.knex, t.services, { scopes: [scope] });
          const res = await call(route, key.auth);
          assert.equal(res.status, route.status, JSON.stringify(res.body));
        }
      });
    }
    it(`${name} answers 401 without a key`, async () => {
      const res = await call(route, '');
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'unauthorized');
    });
  }

  it('gives a key created with all every scope, as GET /v1/me shows', async () => {
    const key = await makeKey(db.knex, t.services, { scopes: ['all'] });
    const me = await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
    assert.deepEqual(me.body.scopes, [...ALL_SCOPES]);
    for (const route of ROUTES) {
      const res = await call(route, key.auth);
      assert.equal(res.status, route.status, `${route.method} ${route.path}: ${JSON.stringify(res.body)}`);
    }
  });

  it('enforces x-required-scope of every operation in the OpenAPI document (routes added later included)', async () => {
    const doc = (await t.request.get('/v1/openapi.json').expect(200)).body;
    let checked = 0;
    for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        const needsKey = Array.isArray(op.security) && op.security.some((s: object) => 'bearerAuth' in s);
        if (!needsKey) continue;
        const url = path.replace(/\{[^}]+\}/g, 'x_does_not_matter');
        const send = (auth: string | null) => {
          const req = (t.request as any)[method](url);
          if (auth) req.set('Authorization', auth);
          return method === 'get' || method === 'delete' ? req : req.send({});
        };
        const anonymous = await send(null);
        assert.equal(anonymous.status, 401, `${method} ${path} without a key`);
        const scope: Scope | undefined = op['x-required-scope'];
        if (scope) {
          const lacking = await makeKey(db.knex, t.services, { scopes: ALL_SCOPES.filter((s) => s !== scope) });
          const res = await send(lacking.auth);
          assert.equal(res.status, 403, `${method} ${path} without ${scope}`);
          assert.equal(res.body.required_scope, scope, `${method} ${path}`);
          const holding = await makeKey(db.knex, t.services, { scopes: [scope] });
          const ok = await send(holding.auth);
          assert.ok(!(ok.status === 403 && ok.body.required_scope === scope) && ok.status !== 401, `${method} ${path} with ${scope}: ${ok.status}`);
        }
        checked++;
      }
    }
    assert.ok(checked >= ROUTES.length, `checked ${checked} operations`);
  });
});
