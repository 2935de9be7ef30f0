import assert from 'node:assert/strict';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('GET /v1/me', () => {
  const db = useTestDatabase();
  let t: TestApp;
  before(() => { t = createTestApp(db.knex); });

  it('describes the calling key with its expanded scopes, workspace and rate limit', async () => {
    const key = await makeKey(db.knex, t.services, { scopes: ['read:tickets', 'manage:keys'] });
    const res = await t.request.get('/v1/me').set('Authorization', key.auth).expect(200);
    assert.deepEqual(res.body, {
      id: key.id,
      name: res.body.name,
      scopes: ['read:tickets', 'manage:keys'],
      mode: 'live',
      expires_at: null,
      workspace: { id: 'ws_default', name: 'Default', mode: 'live' },
      rate_limit: { limit: 600, window_seconds: 60 },
    });
    assert.equal(res.headers['x-ratelimit-limit'], '600');
    assert.match(res.headers['x-request-id'], /^req_/);
  });

  it('refuses a request without a key with 401 problem+json', async () => {
    const res = await t.request.get('/v1/me').expect(401);
    assert.match(res.headers['content-type'], /application\/problem\+json/);
    assert.equal(res.body.code, 'unauthorized');
    assert.equal(res.body.request_id, res.headers['x-request-id']);
  });
});
