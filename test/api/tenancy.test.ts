import assert from 'node:assert/strict';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const withoutRequestId = (body: Record<string, unknown>) => {
  const { request_id: _ignored, ...rest } = body;
  return rest;
};

describe('tenant isolation', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let wsA: string;
  let wsB: string;
  let adminA: { id: string; token: string; auth: string };
  let adminB: { id: string; token: string; auth: string };
  let targetA: { id: string; token: string; auth: string };
  const unknownId = 'key_01ARZ3NDEKTSV4RRFFQ69G5FAV';

  before(async () => {
    t = createTestApp(db.knex);
    wsA = (await makeWorkspace(db.knex, t.services, { name: 'Tenant A' })).id;
    wsB = (await makeWorkspace(db.knex, t.services, { name: 'Tenant B' })).id;
    adminA = await makeKey(db.knex, t.services, { workspaceId: wsA, name: 'admin A' });
    adminB = await makeKey(db.knex, t.services, { workspaceId: wsB, name: 'admin B' });
    targetA = await makeKey(db.knex, t.services, { workspaceId: wsA, name: 'target A', scopes: ['read:tickets'] });
  });

  const row = async (id: string) => db.knex('api_keys').where({ id }).first();
  const keyCount = async () => Number((await db.knex('api_keys').count({ n: '*' }))[0].n);

  /** B's answer for A's key id, next to B's answer for an id that exists nowhere. */
  async function compareWithUnknown(method: 'get' | 'delete' | 'post', suffix = '', body?: object) {
    const send = (id: string) => {
      const req = t.request[method](`/v1/api-keys/${id}${suffix}`).set('Authorization', adminB.auth);
      return body ? req.send(body) : req;
    };
    const foreign = await send(targetA.id);
    const missing = await send(unknownId);
    assert.equal(foreign.status, 404, JSON.stringify(foreign.body));
    assert.equal(foreign.body.code, 'not_found');
    assert.equal(missing.status, 404);
    assert.deepEqual(withoutRequestId(foreign.body), withoutRequestId(missing.body), 'a foreign id looks exactly like a missing one');
  }

  it('answers 404 (never 403) to GET /v1/api-keys/{id} for another workspace\'s key', async () => {
    await compareWithUnknown('get');
  });

  it('answers 404 to DELETE /v1/api-keys/{id} for another workspace\'s key, which stays usable', async () => {
    await compareWithUnknown('delete');
    assert.equal((await row(targetA.id)).revoked_at, null);
    await t.request.get('/v1/me').set('Authorization', targetA.auth).expect(200);
  });

  it('answers 404 to POST /v1/api-keys/{id}/rotate for another workspace\'s key, issuing nothing', async () => {
    const before = await keyCount();
    await compareWithUnknown('post', '/rotate', {});
    await compareWithUnknown('post', '/rotate', { overlap_hours: 0 });
    assert.equal(await keyCount(), before);
    assert.equal((await row(targetA.id)).expires_at, null);
    await t.request.get('/v1/me').set('Authorization', targetA.auth).expect(200);
  });

  it('answers 404, not 403, even when the foreign key holds scopes the caller lacks', async () => {
    const narrowB = await makeKey(db.knex, t.services, { workspaceId: wsB, scopes: ['manage:keys'] });
    const powerfulA = await makeKey(db.knex, t.services, { workspaceId: wsA, scopes: ['all'] });
    const res = await t.request.post(`/v1/api-keys/${powerfulA.id}/rotate`).set('Authorization', narrowB.auth).send({}).expect(404);
    assert.equal(res.body.code, 'not_found');
    assert.equal(res.body.required_scope, undefined);
  });

  it('never lists another workspace\'s keys, revoked ones included', async () => {
    const revokedA = await makeKey(db.knex, t.services, { workspaceId: wsA });
    await t.services.apiKeys.revoke(db.knex, wsA, revokedA.id);
    const idsOf = async (auth: string) => {
      const res = await t.request.get('/v1/api-keys?limit=200&include_revoked=true').set('Authorization', auth).expect(200);
      assert.equal(res.body.total, res.body.items.length);
      return res.body.items.map((k: { id: string; workspace_id: string }) => k);
    };
    const listedB = await idsOf(adminB.auth);
    assert.ok(listedB.length >= 1);
    assert.ok(listedB.every((k: { workspace_id: string }) => k.workspace_id === wsB));
    const rowsB = await db.knex('api_keys').where({ workspace_id: wsB }).pluck('id');
    assert.deepEqual(listedB.map((k: { id: string }) => k.id).sort(), rowsB.sort());
    const listedA = await idsOf(adminA.auth);
    assert.ok(listedA.every((k: { workspace_id: string }) => k.workspace_id === wsA));
    assert.ok(listedA.some((k: { id: string }) => k.id === revokedA.id));
  });

  it('keeps a cursor from one workspace\'s list inside the caller\'s workspace', async () => {
    for (let i = 0; i < 3; i++) await makeKey(db.knex, t.services, { workspaceId: wsA });
    const pageA = await t.request.get('/v1/api-keys?limit=1').set('Authorization', adminA.auth).expect(200);
    assert.ok(pageA.body.next_cursor);
    const res = await t.request.get(`/v1/api-keys?limit=200&cursor=${encodeURIComponent(pageA.body.next_cursor)}`).set('Authorization', adminB.auth).expect(200);
    assert.ok(res.body.items.every((k: { workspace_id: string }) => k.workspace_id === wsB));
  });

  it('shows each key only its own workspace in GET /v1/workspace and GET /v1/me', async () => {
    const a = await t.request.get('/v1/workspace').set('Authorization', adminA.auth).expect(200);
    const b = await t.request.get('/v1/workspace').set('Authorization', adminB.auth).expect(200);
    assert.equal(a.body.id, wsA);
    assert.equal(a.body.name, 'Tenant A');
    assert.equal(b.body.id, wsB);
    assert.equal(b.body.name, 'Tenant B');
    const meB = await t.request.get('/v1/me').set('Authorization', adminB.auth).expect(200);
    assert.deepEqual(meB.body.workspace, { id: wsB, name: 'Tenant B', mode: 'live' });
  });

  it('applies PATCH /v1/workspace only to the caller\'s workspace', async () => {
    const aBefore = (await t.request.get('/v1/workspace').set('Authorization', adminA.auth).expect(200)).body;
    await t.request.patch('/v1/workspace').set('Authorization', adminB.auth).send({ name: 'Tenant B renamed', daily_send_limit: 3 }).expect(200);
    assert.deepEqual((await t.request.get('/v1/workspace').set('Authorization', adminA.auth).expect(200)).body, aBefore);
  });

  it('creates keys only in the caller\'s workspace', async () => {
    const res = await t.request.post('/v1/api-keys').set('Authorization', adminB.auth).send({ name: 'made by B', scopes: ['read:tickets'] }).expect(201);
    assert.equal(res.body.workspace_id, wsB);
    assert.equal((await row(res.body.id)).workspace_id, wsB);
    const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${res.body.token}`).expect(200);
    assert.equal(me.body.workspace.id, wsB);
  });

  it('scopes Idempotency-Keys to the workspace: the same key in two workspaces makes two API keys', async () => {
    const body = { name: 'same request', scopes: ['read:tickets'] };
    const a = await t.request.post('/v1/api-keys').set('Authorization', adminA.auth).set('Idempotency-Key', 'shared-key-1').send(body).expect(201);
    const b = await t.request.post('/v1/api-keys').set('Authorization', adminB.auth).set('Idempotency-Key', 'shared-key-1').send(body).expect(201);
    assert.equal(b.headers['idempotent-replayed'], undefined);
    assert.notEqual(b.body.id, a.body.id);
    assert.notEqual(b.body.token, a.body.token);
    assert.equal(b.body.workspace_id, wsB);
  });
});
