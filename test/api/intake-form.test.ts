/**
 * The intake form over the HTTP API (SPEC §3.1, §4.2): GET (the default until one is set),
 * PUT (the meta-schema and the cross-field rules as 422s naming the field), DELETE (back to
 * the default), Idempotency-Key on PUT, sandbox and live alike, scopes and tenancy.
 */
import assert from 'node:assert/strict';
import { ALL_SCOPES } from '../../src/kernel/scopes.js';
import { DEFAULT_INTAKE_FORM } from '../../src/intake/intake-form.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const START = '2026-11-21T12:00:00.000Z';
type Res = { status: number; body: any; headers: Record<string, string>; text: string };

const MY_FORM = {
  fields: [
    { key: 'subject', type: 'text', question: 'What happened?', required: true, max_length: 80 },
    {
      key: 'category', type: 'choice', question: 'Which product?', required: true,
      options: [{ value: 'app', label: 'The app', priority: 'high' }, { value: 'web', label: 'The website' }],
    },
    { key: 'order_number', type: 'text', question: 'Your order number?', required: false, min_length: 6, max_length: 12 },
    { key: 'phone', type: 'phone', question: 'A phone number?', required: false },
  ],
};

describe('intake form API', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(START);
  let t: TestApp;

  before(() => { t = createTestApp(db.knex, { clock }); });
  beforeEach(() => { clock.set(START); });

  async function desk(opts: { scopes?: string[]; sandbox?: boolean } = {}) {
    const ws = await makeWorkspace(db.knex, t.services, { sandbox: opts.sandbox });
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, scopes: opts.scopes });
    const call = (method: 'get' | 'put' | 'delete', body?: unknown, headers: Record<string, string> = {}) => {
      let r = t.request[method]('/v1/intake-form').set('Authorization', key.auth);
      for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
      return (body === undefined ? r : r.send(body as object)) as unknown as Promise<Res>;
    };
    return {
      ws, key,
      get: () => call('get'),
      put: (body: unknown, headers?: Record<string, string>) => call('put', body, headers),
      del: (headers?: Record<string, string>) => call('delete', undefined, headers),
    };
  }

  function assertProblem(res: Res, status: number, code: string): void {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /application\/problem\+json/);
  }
  function assertInvalid(res: Res, field: string): void {
    assertProblem(res, 422, 'validation_error');
    const fields = (res.body.details ?? []).map((d: any) => d.field);
    assert.ok(fields.includes(field), `details name ${field}: ${JSON.stringify(res.body.details)}`);
  }
  const row = (workspaceId: string) => db.knex('intake_forms').where({ workspace_id: workspaceId }).first();

  it('answers the default form until the workspace sets one', async () => {
    const d = await desk();
    const res = await d.get();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body).sort(), ['fields', 'is_default', 'updated_at']);
    assert.deepEqual(res.body.fields, DEFAULT_INTAKE_FORM.fields);
    assert.equal(res.body.is_default, true);
    assert.equal(res.body.updated_at, null);
    assert.equal(await row(d.ws.id), undefined);
  });

  it('PUT replaces the form; GET then answers it as stored', async () => {
    const d = await desk();
    const put = await d.put(MY_FORM);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body, { fields: MY_FORM.fields, is_default: false, updated_at: START });
    const got = await d.get();
    assert.deepEqual(got.body, put.body);
    const stored = await row(d.ws.id);
    assert.deepEqual(stored.fields, MY_FORM.fields);
    // The service hands the bot the same form.
    assert.deepEqual(await t.services.intakeForms.form(db.knex, d.ws.id), { fields: MY_FORM.fields });
  });

  it('PUT again replaces the whole form and moves updated_at', async () => {
    const d = await desk();
    await d.put(MY_FORM);
    clock.advance(60_000);
    const res = await d.put({ fields: [MY_FORM.fields[0]] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.fields, [MY_FORM.fields[0]]);
    assert.equal(res.body.updated_at, '2026-11-21T12:01:00.000Z');
    assert.equal(Number((await db.knex('intake_forms').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0]!.n), 1);
  });

  it('the default form round-trips: PUT of what GET answered is accepted and answered unchanged', async () => {
    const d = await desk();
    const before = await d.get();
    const put = await d.put({ fields: before.body.fields });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.fields, before.body.fields);
    assert.equal(put.body.is_default, false);
  });

  it('a subject without max_length is stored with the 200 it gets', async () => {
    const d = await desk();
    const res = await d.put({ fields: [{ key: 'subject', type: 'text', question: 'Subject?', required: true }] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.fields[0].max_length, 200);
  });

  it('DELETE goes back to the default form (204), also when none was set', async () => {
    const d = await desk();
    await d.put(MY_FORM);
    const del = await d.del();
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.equal(await row(d.ws.id), undefined);
    const got = await d.get();
    assert.equal(got.body.is_default, true);
    assert.deepEqual(got.body.fields, DEFAULT_INTAKE_FORM.fields);
    assert.equal((await d.del()).status, 204);
  });

  describe('validation', () => {
    it('refuses a bad form with 422 naming the field, and keeps the form it had', async () => {
      const d = await desk();
      await d.put(MY_FORM);
      const cases: [unknown, string][] = [
        [{}, 'fields'],
        [{ fields: [] }, 'fields'],
        [{ fields: MY_FORM.fields, extra: true }, 'extra'],
        [{ fields: [{ ...MY_FORM.fields[0], hint: 'x' }] }, 'fields[0].hint'],
        [{ fields: [MY_FORM.fields[0], { ...MY_FORM.fields[1], options: [{ value: 'a', label: 'A', color: 'red' }] }] }, 'fields[1].options[0].color'],
        [{ fields: [{ ...MY_FORM.fields[0], key: 'Subject' }] }, 'fields[0].key'],
        [{ fields: [{ key: 'title', type: 'text', question: 'Q?', required: true }] }, 'fields'],
        [{ fields: [{ ...MY_FORM.fields[0], max_length: 201 }] }, 'fields[0].max_length'],
        [{ fields: [{ ...MY_FORM.fields[0], required: false }] }, 'fields[0].required'],
        [{ fields: [MY_FORM.fields[0], { key: 'x', type: 'choice', question: 'Q?', required: true }] }, 'fields[1].options'],
        [{ fields: [MY_FORM.fields[0], { key: 'x', type: 'text', question: 'Q?', required: true, options: [{ value: 'a', label: 'A' }] }] }, 'fields[1].options'],
        [{ fields: [MY_FORM.fields[0], { key: 'category', type: 'text', question: 'Q?', required: true }] }, 'fields[1].type'],
        [{ fields: [MY_FORM.fields[0], MY_FORM.fields[3], { ...MY_FORM.fields[3], key: 'phone2' }] }, 'fields[2].type'],
        [{ fields: [MY_FORM.fields[0], MY_FORM.fields[0]] }, 'fields[1].key'],
        [{ fields: [MY_FORM.fields[0], { ...MY_FORM.fields[2], min_length: 13 }] }, 'fields[1].min_length'],
        [{ fields: [MY_FORM.fields[0], { ...MY_FORM.fields[1], options: [{ value: 'a', label: 'A' }, { value: 'a', label: 'B' }] }] }, 'fields[1].options[1].value'],
        [{ fields: [MY_FORM.fields[0], { ...MY_FORM.fields[1], options: [{ value: 'a', label: 'L'.repeat(41) }] }] }, 'fields[1].options[0].label'],
      ];
      for (const [body, field] of cases) {
        const res = await d.put(body);
        assertInvalid(res, field);
      }
      assert.deepEqual((await d.get()).body.fields, MY_FORM.fields);
    });

    it('refuses a body that is not JSON or holds a NUL character', async () => {
      const d = await desk();
      const raw = await t.request.put('/v1/intake-form').set('Authorization', d.key.auth).set('Content-Type', 'application/json').send('{"fields":') as unknown as Res;
      assertProblem(raw, 400, 'invalid_json');
      assertInvalid(await d.put({ fields: [{ ...MY_FORM.fields[0], question: 'a\u0000b' }] }), 'fields[0].question');
      assert.equal(await row(d.ws.id), undefined);
    });
  });

  it('sandbox workspaces set and read their form the same way', async () => {
    const d = await desk({ sandbox: true });
    assert.match(d.key.auth, /td_test_/);
    assert.equal((await d.get()).body.is_default, true);
    const res = await d.put(MY_FORM);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual((await d.get()).body.fields, MY_FORM.fields);
    assert.equal((await d.del()).status, 204);
  });

  it('an Idempotency-Key replays PUT and DELETE without doing them again', async () => {
    const d = await desk();
    const first = await d.put(MY_FORM, { 'Idempotency-Key': 'form-1' });
    assert.equal(first.status, 200);
    clock.advance(60_000);
    const again = await d.put(MY_FORM, { 'Idempotency-Key': 'form-1' });
    assert.equal(again.status, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.body, first.body);
    assert.equal((await row(d.ws.id)).updated_at.toISOString(), START);
    const reused = await d.put({ fields: [MY_FORM.fields[0]] }, { 'Idempotency-Key': 'form-1' });
    assertProblem(reused, 409, 'idempotency_key_reused');
    assert.equal((await d.del({ 'Idempotency-Key': 'reset-1' })).status, 204);
    await d.put(MY_FORM);
    const replayedDelete = await d.del({ 'Idempotency-Key': 'reset-1' });
    assert.equal(replayedDelete.status, 204);
    assert.equal(replayedDelete.headers['idempotent-replayed'], 'true');
    assert.equal((await d.get()).body.is_default, false);
  });

  describe('auth and tenancy', () => {
    const calls: ['get' | 'put' | 'delete', unknown][] = [['get', undefined], ['put', MY_FORM], ['delete', undefined]];

    it('every route answers 403 with required_scope manage:settings to a key holding every other scope, and changes nothing', async () => {
      const owner = await desk();
      await owner.put({ fields: [MY_FORM.fields[0]] });
      const before = await row(owner.ws.id);
      const weak = await makeKey(db.knex, t.services, { workspaceId: owner.ws.id, scopes: ALL_SCOPES.filter((s) => s !== 'manage:settings') });
      for (const [method, body] of calls) {
        const r = t.request[method]('/v1/intake-form').set('Authorization', weak.auth);
        const res = (body === undefined ? await r : await r.send(body as object)) as unknown as Res;
        assertProblem(res, 403, 'forbidden');
        assert.equal(res.body.required_scope, 'manage:settings', method);
      }
      assert.deepEqual(await row(owner.ws.id), before);
      const ok = await makeKey(db.knex, t.services, { workspaceId: owner.ws.id, scopes: ['manage:settings'] });
      assert.equal((await t.request.get('/v1/intake-form').set('Authorization', ok.auth)).status, 200);
    });

    it('every route answers 401 without a token or with a bad one', async () => {
      const owner = await desk();
      for (const [method, body] of calls) {
        for (const auth of [undefined, 'Bearer td_live_notarealtoken', 'Basic dXNlcjpwYXNz']) {
          let r = t.request[method]('/v1/intake-form');
          if (auth) r = r.set('Authorization', auth);
          const res = (body === undefined ? await r : await r.send(body as object)) as unknown as Res;
          assertProblem(res, 401, 'unauthorized');
        }
      }
      assert.equal(await row(owner.ws.id), undefined);
    });

    it('another workspace never sees, changes or resets this one\'s form', async () => {
      const a = await desk();
      const b = await desk();
      await a.put(MY_FORM);
      const seen = await b.get();
      assert.equal(seen.body.is_default, true);
      assert.deepEqual(seen.body.fields, DEFAULT_INTAKE_FORM.fields);
      assert.equal((await b.del()).status, 204);
      assert.deepEqual((await a.get()).body.fields, MY_FORM.fields);
      await b.put({ fields: [MY_FORM.fields[0]] });
      assert.deepEqual((await a.get()).body.fields, MY_FORM.fields);
      assert.deepEqual((await b.get()).body.fields, [MY_FORM.fields[0]]);
      assert.equal((await a.del()).status, 204);
      assert.deepEqual((await b.get()).body.fields, [MY_FORM.fields[0]]);
    });
  });

  it('is in the OpenAPI document', async () => {
    const res = await t.request.get('/v1/openapi.json') as unknown as Res;
    assert.equal(res.status, 200);
    const path = res.body.paths['/v1/intake-form'];
    assert.ok(path?.get && path?.put && path?.delete, JSON.stringify(Object.keys(res.body.paths)));
  });
});
