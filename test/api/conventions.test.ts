import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { AppError } from '../../src/kernel/errors.js';
import { defineRoute, type RouteDef } from '../../src/http/route.js';
import { createKnex } from '../../src/db/knex.js';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

// Test-only routes that exercise the shared machinery with controlled handlers.
const probeRoutes: RouteDef[] = [
  {
    method: 'post', path: '/v1/test/echo', tag: 'test', auth: 'key', summary: 'echo',
    body: {
      type: 'object', additionalProperties: false, required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1 },
        count: { type: 'integer', minimum: 0 },
        contact: { type: 'object', additionalProperties: false, properties: { email: { type: 'string', format: 'email' } } },
        tags: { type: 'array', items: { type: 'string', maxLength: 5 } },
      },
    },
    responses: { 200: { description: 'echo' } },
    handler(ctx) { ctx.body = ctx.state.input.body; },
  },
  {
    method: 'get', path: '/v1/test/boom', tag: 'test', auth: 'key', summary: 'throws',
    responses: { 200: { description: 'never' } },
    handler() { throw new Error('relation "secret_table" does not exist at SELECT * FROM secret_table'); },
  },
  {
    method: 'get', path: '/v1/test/teapot', tag: 'test', auth: 'key', summary: 'business error',
    responses: { 200: { description: 'never' } },
    handler() { throw new AppError('conflict', 'The thing is in the way'); },
  },
  defineRoute({
    method: 'post', path: '/v1/test/half-done', tag: 'test', auth: 'key', summary: 'writes, then fails',
    body: { type: 'object', additionalProperties: false, required: ['name', 'fail'], properties: { name: { type: 'string' }, fail: { type: 'string', enum: ['throw', 'conflict', 'no'] } } },
    responses: { 201: { description: 'made' } },
    async handler(ctx, { body }) {
      const { name, fail } = body;
      await ctx.state.db('workspaces').insert({ id: `ws_${name}`, name, mode: 'live' });
      if (fail === 'throw') throw new Error('disk on fire');
      if (fail === 'conflict') throw new AppError('conflict', 'changed my mind');
      ctx.status = 201;
      ctx.body = { ok: true };
    },
  }),
  {
    method: 'get', path: '/v1/test/bad-response', tag: 'test', auth: 'key', summary: 'breaks its schema',
    responses: { 200: { description: 'x', schema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } } },
    handler(ctx) { ctx.body = { id: 42 }; },
  },
];

describe('HTTP conventions', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let auth: string;
  before(async () => {
    t = createTestApp(db.knex, { extraRoutes: probeRoutes });
    auth = (await makeKey(db.knex, t.services)).auth;
  });

  const expectProblem = (res: { status: number; headers: any; body: any }, status: number, code: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /^application\/problem\+json/);
    assert.equal(res.body.code, code);
    assert.equal(res.body.status, status);
    for (const f of ['type', 'title', 'detail', 'request_id']) assert.equal(typeof res.body[f], 'string', f);
    assert.equal(res.body.request_id, res.headers['x-request-id']);
  };

  describe('request ids', () => {
    it('gives every response an X-Request-Id', async () => {
      const res = await t.request.get('/healthz').expect(200);
      assert.match(res.headers['x-request-id'], /^req_[0-9A-Z]{26}$/);
    });
    it('honours a sane client request id', async () => {
      const res = await t.request.get('/healthz').set('X-Request-Id', 'client-abc-12345').expect(200);
      assert.equal(res.headers['x-request-id'], 'client-abc-12345');
    });
    it('replaces an insane client request id', async () => {
      const res = await t.request.get('/healthz').set('X-Request-Id', 'bad id <script>').expect(200);
      assert.match(res.headers['x-request-id'], /^req_/);
    });
  });

  describe('routing', () => {
    it('answers an unknown route with 404 not_found as a problem', async () => {
      expectProblem(await t.request.get('/v1/nope'), 404, 'not_found');
      expectProblem(await t.request.post('/nothing/here').send({}), 404, 'not_found');
    });
    it('answers a wrong method with 405 method_not_allowed as a problem', async () => {
      const res = await t.request.put('/v1/me').set('Authorization', auth);
      expectProblem(res, 405, 'method_not_allowed');
    });
    it('answers an id of the wrong shape in the path with 404', async () => {
      expectProblem(await t.request.get('/v1/api-keys/not-a-key-id').set('Authorization', auth), 404, 'not_found');
    });
  });

  describe('bodies', () => {
    it('refuses malformed JSON with 400 invalid_json', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'application/json').send('{"name": "x",');
      expectProblem(res, 400, 'invalid_json');
    });
    it('refuses a JSON scalar body with 400 invalid_json', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'application/json').send('"just a string"');
      expectProblem(res, 400, 'invalid_json');
    });
    it('refuses a body over 1 MB with 413 payload_too_large', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: 'x'.repeat(1_100_000) });
      expectProblem(res, 413, 'payload_too_large');
    });
    it('accepts a body just under 1 MB', async () => {
      const name = 'x'.repeat(1_000_000);
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name }).expect(200);
      assert.equal(res.body.name.length, name.length);
    });
    it('refuses a body that is not JSON with 415', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'text/plain').send('name=x');
      expectProblem(res, 415, 'unsupported_media_type');
    });
    it('answers a corrupt compressed body with 400, not 500', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip').serialize((b: any) => b).send(Buffer.from('definitely not gzip') as any);
      expectProblem(res, 400, 'bad_request');
    });
    it('reads a gzip-compressed JSON body', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip').serialize((b: any) => b).send(gzipSync(JSON.stringify({ name: 'zipped' })) as any);
      assert.equal(res.status, 200);
      assert.equal(res.body.name, 'zipped');
    });
    it('refuses JSON-ish content types it would not parse', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'application/foo+json').send('{"name":"x"}');
      expectProblem(res, 415, 'unsupported_media_type');
    });
    it('checks authentication before reading the body', async () => {
      const res = await t.request.post('/v1/test/echo').set('Content-Type', 'application/json').send('{broken');
      expectProblem(res, 401, 'unauthorized');
    });
  });

  describe('validation', () => {
    it('names an unknown field', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: 'a', colour: 'red' });
      expectProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details, [{ field: 'colour', error: 'is not a known field', received: 'red' }]);
    });
    it('names a mistyped field and what it received', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: 'a', count: '5' });
      expectProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details, [{ field: 'count', error: 'must be integer', received: '5' }]);
    });
    it('names a missing required field', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({});
      expectProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details, [{ field: 'name', error: 'is required' }]);
    });
    it('treats an empty body as {} and reports what is missing', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth);
      expectProblem(res, 422, 'validation_error');
      assert.equal(res.body.details[0].field, 'name');
    });
    it('gives nested and array fields a path', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth)
        .send({ name: 'a', contact: { email: 'not-an-email' }, tags: ['ok', 'way too long'] });
      expectProblem(res, 422, 'validation_error');
      const fields = res.body.details.map((d: any) => d.field).sort();
      assert.deepEqual(fields, ['contact.email', 'tags[1]']);
    });
    it('reports every bad field at once', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: '', count: -1, extra: 1 });
      assert.equal(res.status, 422);
      assert.deepEqual(res.body.details.map((d: any) => d.field).sort(), ['count', 'extra', 'name']);
    });
    it('refuses a NUL character in any string, naming the field, instead of failing in the database', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: 'a\u0000b', tags: ['ok', 'x\u0000'] });
      expectProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details.map((d: any) => d.field), ['name', 'tags[1]']);
      const real = await t.request.patch('/v1/workspace').set('Authorization', auth).send({ name: 'a\u0000' });
      expectProblem(real, 422, 'validation_error');
    });
    // JSON may escape half a surrogate pair ("\ud800"): no character, so PostgreSQL would get
    // U+FFFD in its place (text) or refuse it (jsonb) — the client learns which field instead.
    it('refuses an unpaired surrogate in any string or key, naming the field, instead of storing U+FFFD', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).set('Content-Type', 'application/json')
        .send('{"name":"a\\ud800b","tags":["ok","\\udc00x","\\ud83d\\ude00 paired is fine"]}');
      expectProblem(res, 422, 'validation_error');
      assert.deepEqual(res.body.details.map((d: any) => d.field), ['name', 'tags[1]']);
      assert.match(res.body.details[0].error, /well-formed Unicode/);
      const contact = await t.request.post('/v1/contacts').set('Authorization', auth).set('Content-Type', 'application/json')
        .send('{"telegram_user_id":424242,"name":"Ann","custom_fields":{"\\ud800":"x"}}');
      expectProblem(contact, 422, 'validation_error');
      assert.deepEqual(contact.body.details.map((d: any) => d.field), ['custom_fields.\ud800']);
      const ticket = await t.request.post('/v1/tickets').set('Authorization', auth).set('Content-Type', 'application/json')
        .send('{"contact":{"telegram_user_id":424243},"subject":"Help \\udbff"}');
      expectProblem(ticket, 422, 'validation_error');
      assert.deepEqual(ticket.body.details.map((d: any) => d.field), ['subject']);
      const fine = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: 'Grinning \u{1F600}', tags: [] });
      assert.equal(fine.status, 200, fine.text);
    });
    it('reports at most 20 problems, and how many more there were', async () => {
      const res = await t.request.post('/v1/test/echo').set('Authorization', auth).send({ name: 'a', tags: Array.from({ length: 500 }, () => 'too long!') });
      expectProblem(res, 422, 'validation_error');
      assert.equal(res.body.details.length, 21);
      assert.deepEqual(res.body.details[20], { field: 'body', error: 'and 480 more problems' });
    });
    it('enforces query limits instead of clamping them', async () => {
      for (const q of ['limit=abc', 'limit=0', 'limit=201', 'offset=-1', 'offset=x', 'unknown=1']) {
        const res = await t.request.get(`/v1/api-keys?${q}`).set('Authorization', auth);
        expectProblem(res, 422, 'validation_error');
        assert.ok(res.body.details.length > 0, q);
      }
    });
  });

  describe('errors', () => {
    it('turns an unexpected error into 500 internal_error without leaking internals, and logs it', async () => {
      const res = await t.request.get('/v1/test/boom').set('Authorization', auth);
      expectProblem(res, 500, 'internal_error');
      const text = JSON.stringify(res.body);
      assert.doesNotMatch(text, /secret_table|SELECT|stack|\.ts:/);
      assert.ok(t.logs.some((l) => l.includes('secret_table') && l.includes(res.body.request_id)), 'the real error is in the log');
    });
    it('renders a thrown AppError with its own status and code', async () => {
      expectProblem(await t.request.get('/v1/test/teapot').set('Authorization', auth), 409, 'conflict');
    });
    it('catches a response that breaks its declared schema (response validation in tests)', async () => {
      expectProblem(await t.request.get('/v1/test/bad-response').set('Authorization', auth), 500, 'internal_error');
    });
  });

  describe('atomic writes', () => {
    const count = async (name: string) => Number((await db.knex('workspaces').where({ name }).count({ n: '*' }))[0].n);
    it('commits a mutating request that succeeds', async () => {
      await t.request.post('/v1/test/half-done').set('Authorization', auth).send({ name: 'okay', fail: 'no' }).expect(201);
      assert.equal(await count('okay'), 1);
    });
    it('undoes every write of a mutating request that fails, with or without Idempotency-Key', async () => {
      expectProblem(await t.request.post('/v1/test/half-done').set('Authorization', auth).send({ name: 'boom', fail: 'throw' }), 500, 'internal_error');
      expectProblem(await t.request.post('/v1/test/half-done').set('Authorization', auth).send({ name: 'nope', fail: 'conflict' }), 409, 'conflict');
      expectProblem(await t.request.post('/v1/test/half-done').set('Authorization', auth).set('Idempotency-Key', 'half').send({ name: 'nope2', fail: 'conflict' }), 409, 'conflict');
      assert.equal(await count('boom'), 0);
      assert.equal(await count('nope'), 0);
      assert.equal(await count('nope2'), 0);
    });
  });

  describe('probes and metrics', () => {
    it('answers /healthz and /readyz when the database is up', async () => {
      assert.deepEqual((await t.request.get('/healthz').expect(200)).body, { status: 'ok' });
      assert.deepEqual((await t.request.get('/readyz').expect(200)).body, { status: 'ok' });
    });
    it('answers /readyz with 503 when the database is unreachable', async () => {
      const dead = createKnex('postgres://nobody:x@127.0.0.1:1/none', 1);
      try {
        const down = createTestApp(dead);
        const probe = await down.request.get('/readyz');
        expectProblem(probe, 503, 'service_unavailable');
        assert.equal(probe.headers['retry-after'], '5');
        assert.equal((await down.request.get('/healthz')).status, 200);
        // Any API call while the database is away: 503 with Retry-After, not a 500.
        const res = await down.request.get('/v1/me').set('Authorization', auth);
        expectProblem(res, 503, 'service_unavailable');
        assert.equal(res.headers['retry-after'], '5');
      } finally {
        await dead.destroy();
      }
    });
    it('exposes request counts and latencies by route template on /metrics', async () => {
      await t.request.get('/v1/me').set('Authorization', auth).expect(200);
      await t.request.get('/v1/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV').set('Authorization', auth).expect(404);
      const res = await t.request.get('/metrics').expect(200);
      assert.match(res.headers['content-type'], /^text\/plain/);
      assert.match(res.text, /topicdesk_http_requests_total\{method="GET",route="\/v1\/me",status="200"\} \d+/);
      assert.match(res.text, /route="\/v1\/api-keys\/:id",status="404"/);
      assert.match(res.text, /topicdesk_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/v1\/me"\}/);
      assert.doesNotMatch(res.text, /key_01ARZ3NDEKTSV4RRFFQ69G5FAV/, 'ids never become labels');
    });
  });
});
