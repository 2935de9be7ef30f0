import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { EVENT_TYPES } from '../../src/events/event-types.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

describe('OpenAPI document quality and the /docs renderer', function () {
  // Generating types, type-checking them and the Redocly lint take a few seconds together.
  this.timeout(60_000);
  const db = useTestDatabase();
  let t: TestApp;
  let doc: any;
  let tmp: string;
  before(async () => {
    t = createTestApp(db.knex);
    doc = (await t.request.get('/v1/openapi.json').expect(200)).body;
    tmp = mkdtempSync(path.join(tmpdir(), 'topicdesk-openapi-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const operations = () => Object.entries<Record<string, any>>(doc.paths)
    .flatMap(([p, ops]) => Object.entries<any>(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${p}`, method, op })));

  it('names the API shapes as components and refers to them', () => {
    for (const name of ['Ticket', 'Contact', 'Message', 'Agent', 'Team', 'CannedResponse', 'SlaPolicy', 'EscalationRule', 'WebhookEndpoint', 'Delivery', 'Problem', 'TimelineEvent', 'ApiKey', 'Workspace']) {
      assert.ok(doc.components.schemas[name], `components.schemas.${name}`);
    }
    const json = (op: any, status: number) => op.responses[status].content['application/json'].schema;
    assert.deepEqual(json(doc.paths['/v1/tickets/{id}'].get, 200), ref('Ticket'));
    assert.deepEqual(json(doc.paths['/v1/tickets'].post, 201), ref('Ticket'));
    assert.deepEqual(json(doc.paths['/v1/tickets'].get, 200).properties.items.items, ref('Ticket'));
    assert.deepEqual(json(doc.paths['/v1/webhooks/{id}/deliveries'].get, 200).properties.items.items, ref('Delivery'));
    // Nested shapes too: a ticket's contact, a message's author.
    assert.deepEqual(doc.components.schemas.Ticket.properties.contact, ref('Contact'));
    assert.deepEqual(doc.components.schemas.Message.properties.author, ref('Actor'));
    assert.deepEqual(doc.components.responses.Unauthorized.content['application/problem+json'].schema, ref('Problem'));
  });

  it('describes every operation, names its scope and the bearer scheme', () => {
    assert.equal(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');
    for (const { name, op } of operations()) {
      assert.ok(op.summary && op.description, `${name} has a summary and a description`);
      const scope = op['x-required-scope'];
      if (scope) {
        assert.deepEqual(op.security, [{ bearerAuth: [scope] }], name);
        assert.ok(op.description.includes(`\`${scope}\``), `${name} names ${scope} in its description`);
      }
    }
  });

  it('declares the rate-limit and idempotency headers on responses', () => {
    const header = (name: string) => ({ $ref: `#/components/headers/${name}` });
    for (const { name, method, op } of operations()) {
      if (!op.security.length) continue;
      for (const [status, r] of Object.entries<any>(op.responses)) {
        const headers = r.$ref ? doc.components.responses[r.$ref.split('/').pop()].headers : r.headers;
        for (const h of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'X-Request-Id']) {
          assert.deepEqual(headers[h], header(h), `${name} ${status} ${h}`);
        }
        if (method !== 'get' && Number(status) < 300) assert.deepEqual(headers['Idempotent-Replayed'], header('Idempotent-Replayed'), `${name} ${status}`);
      }
    }
    assert.deepEqual(doc.components.responses.RateLimited.headers['Retry-After'], header('Retry-After'));
  });

  it('has examples that pass their own schemas, for the main operations at least', async () => {
    const deref: any = await SwaggerParser.dereference(structuredClone(doc));
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addFormat('time-zone', true); // the server's own format (an IANA name); not what this test checks
    const check = (where: string, media: any) => {
      if (media?.example === undefined) return false;
      const validate = ajv.compile(media.schema);
      assert.ok(validate(media.example), `${where}: ${ajv.errorsText(validate.errors)}`);
      return true;
    };
    const withExamples = new Set<string>();
    for (const [p, ops] of Object.entries<any>(deref.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        const name = `${method.toUpperCase()} ${p}`;
        if (check(`${name} body`, op.requestBody?.content['application/json'])) withExamples.add(`${name} body`);
        for (const [status, r] of Object.entries<any>(op.responses)) {
          if (check(`${name} ${status}`, r.content?.['application/json'])) withExamples.add(`${name} ${status}`);
        }
      }
    }
    for (const [event, w] of Object.entries<any>(deref.webhooks)) assert.ok(check(`webhook ${event}`, w.post.requestBody.content['application/json']), event);
    for (const [name, s] of Object.entries<any>(deref.components.schemas)) {
      if (s.examples) assert.ok(ajv.validate({ ...s, examples: undefined }, s.examples[0]), `${name}: ${ajv.errorsText()}`);
    }
    for (const main of [
      'POST /v1/tickets body', 'POST /v1/tickets 201', 'GET /v1/tickets 200', 'GET /v1/tickets/{id} 200', 'PATCH /v1/tickets/{id} body',
      'POST /v1/tickets/{id}/status body', 'POST /v1/tickets/{id}/messages body', 'POST /v1/tickets/{id}/messages 201',
      'POST /v1/messages/send body', 'POST /v1/contacts body', 'GET /v1/contacts/{id} 200', 'POST /v1/webhooks body', 'GET /v1/me 200',
    ]) assert.ok(withExamples.has(main), `${main} has an example`);
    assert.match(deref.paths['/v1/tickets/{id}'].get.responses[200].content['application/json'].example.id, /^tkt_/);
  });

  it('lists every webhook event of SPEC §7 with its payload', () => {
    assert.deepEqual(Object.keys(doc.webhooks).sort(), [...EVENT_TYPES].sort());
    for (const [event, w] of Object.entries<any>(doc.webhooks)) {
      const schema = w.post.requestBody.content['application/json'].schema;
      assert.deepEqual(schema.required, ['id', 'event', 'created_at', 'workspace_id', 'data'], event);
      assert.equal(schema.properties.event.const, event);
      assert.ok(w.post.parameters.some((p: any) => p.name === 'webhook-signature' && p.in === 'header'), event);
    }
    const payload = (e: string) => doc.webhooks[e].post.requestBody.content['application/json'].schema.properties;
    assert.deepEqual(payload('ticket.created').data, ref('Ticket'));
    assert.deepEqual(payload('message.sent').data, ref('Message'));
    assert.deepEqual(payload('contact.updated').data, ref('Contact'));
    assert.ok(payload('ticket.status_changed').previous && !payload('ticket.created').previous);
    assert.deepEqual(payload('sla.breached').details.required, ['target', 'due_at']);
  });

  it('generates TypeScript with openapi-typescript that has a named Ticket type', async () => {
    const source = astToString(await openapiTS(structuredClone(doc)));
    assert.match(source, /export interface components \{/);
    assert.match(source, /\n\s+Ticket: \{/);
    // The generated file compiles and its Ticket type is usable by name.
    writeFileSync(path.join(tmp, 'api.ts'), source);
    writeFileSync(path.join(tmp, 'use.ts'), [
      "import type { components, paths } from './api.js';",
      "type Ticket = components['schemas']['Ticket'];",
      "export const status: Ticket['status'] = 'open';",
      "export const contactId: Ticket['contact']['id'] = 'ct_1';",
      "type GetTicket = paths['/v1/tickets/{id}']['get']['responses'][200]['content']['application/json'];",
      'export const same = (t: GetTicket): Ticket => t;',
    ].join('\n'));
    const program = ts.createProgram([path.join(tmp, 'use.ts')], { strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts'], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022 });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(diagnostics, []);
  });

  it('passes the Redocly linter with zero problems', async () => {
    const file = path.join(tmp, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const config = path.join(tmp, 'redocly.yaml');
    writeFileSync(config, [
      // recommended-strict: every rule of `recommended`, warnings raised to errors.
      'extends:', '  - recommended-strict', 'rules:',
      // Tags are the route modules' names (tickets, contacts…); the operations carry the prose.
      '  tag-description: off',
      // The public probes and documents (/healthz, /metrics, /v1/openapi.json, /docs) take no input, so they have no client error to declare.
      '  operation-4xx-response: off',
    ].join('\n'));
    // The CLI has no stable in-process API; spawning it takes ~2 s. No telemetry, no update check.
    const run = promisify(execFile);
    const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
    const res = await run(path.join(ROOT, 'node_modules/.bin/redocly'), ['lint', file, '--config', config, '--format', 'json'], { env, maxBuffer: 64 * 1024 * 1024 })
      .catch((err: { stdout: string; stderr: string }) => err);
    const report = JSON.parse(res.stdout.slice(res.stdout.indexOf('{')));
    const problems = report.problems.map((p: any) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer}`);
    assert.deepEqual(problems, []);
    assert.equal(report.totals.errors, 0);
  });

  it('serves the renderer at /docs with same-origin scripts and styles only', async () => {
    const res = await t.request.get('/docs').expect(200);
    assert.match(res.headers['content-type'], /text\/html/);
    const csp = res.headers['content-security-policy'];
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /default-src 'none'/);
    const sources = [...res.text.matchAll(/<(script|link)\b[^>]*>/g)].map((m) => m[0]);
    assert.ok(sources.some((s) => s.includes('swagger-ui-bundle.js')));
    for (const tag of sources) {
      const url = /(?:src|href)="([^"]*)"/.exec(tag)?.[1];
      assert.ok(url, `${tag} loads a file (no inline script)`);
      assert.match(url, /^\/(?!\/)/, `${tag} is same-origin`);
      await t.request.get(url).expect(200);
    }
  });

  it('serves the renderer bundle as JavaScript, long-cached, and nothing outside its list', async () => {
    const res = await t.request.get('/docs/assets/swagger-ui-bundle.js').expect(200);
    assert.match(res.headers['content-type'], /^application\/javascript/);
    assert.match(res.headers['cache-control'], /max-age=31536000/);
    assert.ok(Number(res.headers['content-length']) > 100_000);
    assert.match((await t.request.get('/docs/assets/docs-init.js').expect(200)).text, /url: '\/v1\/openapi\.json'/);
    await t.request.get('/docs/assets/package.json').expect(404);
    await t.request.get('/docs/assets/..%2F..%2Fpackage.json').expect(404);
    assert.equal(doc.paths['/docs/assets/{file}'], undefined, 'the asset route is not part of the API');
  });
});
