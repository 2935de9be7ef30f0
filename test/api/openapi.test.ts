import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('GET /v1/openapi.json and /docs', () => {
  const db = useTestDatabase();
  let t: TestApp;
  let doc: any;
  before(async () => {
    t = createTestApp(db.knex);
    doc = (await t.request.get('/v1/openapi.json').expect(200)).body;
  });

  it('is a valid OpenAPI 3.1 document (checked by swagger-parser)', async () => {
    assert.equal(doc.openapi, '3.1.0');
    // validate() dereferences and checks the document against the official 3.1 schema.
    await SwaggerParser.validate(structuredClone(doc));
  });

  it('describes every API route with its scope, parameters and bodies', () => {
    const ops = Object.entries(doc.paths).flatMap(([path, methods]: [string, any]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    for (const op of [
      'GET /v1/me', 'GET /v1/workspace', 'PATCH /v1/workspace', 'GET /v1/api-keys', 'POST /v1/api-keys',
      'GET /v1/api-keys/{id}', 'DELETE /v1/api-keys/{id}', 'POST /v1/api-keys/{id}/rotate', 'GET /healthz', 'GET /readyz',
      'GET /v1/escalation-rules', 'POST /v1/escalation-rules', 'GET /v1/escalation-rules/{id}', 'PATCH /v1/escalation-rules/{id}', 'DELETE /v1/escalation-rules/{id}',
    ]) assert.ok(ops.includes(op), `${op} is documented`);
    const create = doc.paths['/v1/api-keys'].post;
    assert.equal(create['x-required-scope'], 'manage:keys');
    assert.equal(create.requestBody.content['application/json'].schema.additionalProperties, false);
    assert.ok(create.parameters.some((p: any) => p.name === 'Idempotency-Key' && p.in === 'header'));
    const list = doc.paths['/v1/api-keys'].get;
    const limit = list.parameters.find((p: any) => p.name === 'limit');
    assert.equal(limit.schema.maximum, 200);
    assert.ok(doc.paths['/v1/api-keys/{id}'].get.parameters.some((p: any) => p.name === 'id' && p.in === 'path' && p.required));
  });

  it('uses the very schemas the server validates with', async () => {
    // The documented body schema refuses what the server refuses: both reject unknown fields.
    const schema = doc.paths['/v1/workspace'].patch.requestBody.content['application/json'].schema;
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(Object.keys(schema.properties).sort(), ['auto_close_after_hours', 'daily_send_limit', 'digest_time', 'lead_chat_id', 'name', 'reopen_resolved_on_reply', 'timezone']);
  });

  it('serves human docs at /docs: the renderer, and the error codes problem types link to', async () => {
    const res = await t.request.get('/docs').expect(200);
    assert.match(res.headers['content-type'], /text\/html/);
    assert.match(res.text, /swagger-ui-bundle\.js/);
    assert.match(res.text, /id="error-idempotency_key_reused"/);
    // The operations themselves come from the document the renderer loads.
    assert.match((await t.request.get('/docs/assets/docs-init.js').expect(200)).text, /\/v1\/openapi\.json/);
  });
});
