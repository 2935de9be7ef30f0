/**
 * A fuzzer driven by /v1/openapi.json (issue 17): for every operation, requests shaped by its
 * schemas and hostile ones (wrong types, huge strings, NUL, lone surrogates, deep nesting,
 * extra and prototype-reaching fields, malformed percent-encoding, bad cursors, bad content
 * types and encodings, ids of another workspace), sent over a real HTTP server with a key that
 * has every scope. Each answer must be: no 5xx; every 4xx application/problem+json with the
 * standard fields and the request id; nothing internal in it (stack, SQL, knex, file paths,
 * PostgreSQL's words). Bounded: a fixed number of runs per operation from a fixed seed
 * (FUZZ_SEED, FUZZ_RUNS to vary; a failure prints both).
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { createHttpServer } from '../../src/http/server.js';
import { makeAccount, makeKey, makeWorkspace } from '../helpers/factories.js';
import { startFakeBotApi, type FakeBotApi } from '../helpers/fake-bot-api.js';
import { HOSTILE_KEYS, NASTY_STRINGS, hostileValue, schemaArbitrary, type IdPool } from '../helpers/schema-arbitrary.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261117);
const RUNS = Number(process.env.FUZZ_RUNS ?? 6);

type Schema = Record<string, any>;
interface Param { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Schema }
interface Operation { method: string; path: string; params: Param[]; body?: Schema; mutating: boolean }
interface FuzzRequest { method: string; path: string; query: string; headers: Record<string, string>; body?: string | Buffer; what: string }
interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string }

const nested = (kind: 'array' | 'object', depth: number) =>
  kind === 'array' ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Whole bodies no schema can describe. */
const RAW_BODIES: (string | Buffer)[] = [
  '[]', '"text"', '123', 'null', 'true', '{', '{"a":1,}', '{"a":1}{"b":2}', '\ufeff{}', ' '.repeat(2000), '{"a":"\\ud800"}', '{"a":"\\u0000"}',
  '{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"polluted":true}}}',
  nested('array', 10_000), nested('object', 10_000), `[${'1,'.repeat(150_000)}1]`, `"${'x'.repeat(1_100_000)}"`,
  Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
];

/** Query values no schema allows; some are raw (already percent-encoded, or deliberately malformed). */
const RAW_QUERY_VALUES = ['%00', '%zz', '%E0%A4%A', '%', '%C0%AF', '%ED%A0%80', 'a%26b%3Dc', '%2e%2e%2f', `${'9'.repeat(400)}`, 'x'.repeat(9_000), '-1', '1e309', '0x1F', '1.5', '[]', '{}'];
/** Scalars a forged cursor carries where a timestamp, an id or a number belongs. */
const CURSOR_VALUES: (string | number)[] = ['not-a-date', '', '\u0000', 'infinity', '-infinity', '9999-99-99', '0000-01-01T00:00:00Z', '294277-01-01T00:00:00Z',
  "' OR 1=1 --", 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV', '\ud800', 'x'.repeat(200), 1e308, -1e308, -1, 0.5, 2 ** 63, 2 ** 53 + 1];
/** Path segments no route expects. */
const RAW_PATH_SEGMENTS = ['%00', '%zz', '%E0%A4%A', '%', '..', '%2e%2e%2f%2e%2e', 'a%2Fb', 'x'.repeat(5_000), '%F0%9F%92%A5', 'ct_01ARZ3NDEKTSV4RRFFQ69G5FA%00', 'null', '-1', '0'];

// Anything that would tell a client how the service is built.
const LEAKS: [RegExp, string][] = [
  [/\n\s+at \S|\bat [\w.$<>]+ \([^)]*:\d+:\d+\)/, 'a stack trace'],
  [/knex/i, 'knex'],
  [/node_modules|\/work\/|\/src\/[\w/-]+\.[jt]s|\.[jt]s:\d+:\d+|file:\/\//, 'a file path'],
  [/\bSELECT\b[\s\S]*\bFROM\b|\bINSERT INTO\b|\bUPDATE\b \S+ \bSET\b|\bDELETE FROM\b|\bRETURNING\b/, 'SQL'],
  [/relation "|column "|syntax error at or near|violates \w+[\w -]* constraint|duplicate key value|invalid input syntax|invalid input value|current transaction is aborted|SQLSTATE|out of range for type|unsupported Unicode escape|postgres|\bpg\b/i, 'PostgreSQL error text'],
  [/\b(Range|Type|Reference|Syntax|URI|Eval)Error\b|Maximum call stack|Cannot read propert|is not a function|is not defined|\[object Object\]/, 'a JavaScript error'],
];

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/** What is wrong with an answer, if anything. */
function faultsOf(res: Answer): string[] {
  const out: string[] = [];
  if (res.status >= 500) out.push(`answered ${res.status}`);
  if (res.status < 400) return out;
  const type = String(res.headers['content-type'] ?? '');
  if (!type.startsWith('application/problem+json')) return [...out, `a ${res.status} as ${type || 'no content type'}, not application/problem+json`];
  let p: any;
  try {
    p = JSON.parse(res.text);
  } catch {
    return [...out, 'a problem body that is not JSON'];
  }
  for (const f of ['type', 'title', 'detail', 'code', 'request_id']) if (typeof p[f] !== 'string' || !p[f]) out.push(`the problem has no ${f}`);
  if (p.status !== res.status) out.push(`the problem says status ${p.status}`);
  if (p.request_id !== res.headers['x-request-id']) out.push('the problem\'s request_id is not the X-Request-Id header');
  // What the client sent comes back in details[].received: not ours to judge.
  // The request id is random text ("…KNEX…" happens).
  const { request_id: _id, ...rest } = p;
  const ours = JSON.stringify({ ...rest, details: (p.details ?? []).map((d: { field: string; error: string }) => ({ field: d.field, error: d.error })) });
  for (const [re, what] of LEAKS) if (re.test(ours)) out.push(`the problem shows ${what}: ${clip(ours, 400)}`);
  return out;
}

/** Sets a field on a plain object without ever touching a prototype (`__proto__` becomes a field). */
const withField = (body: unknown, key: string, value: unknown) => Object.fromEntries([...Object.entries(body && typeof body === 'object' && !Array.isArray(body) ? body : {}), [key, value]]);
const DEEP = '\u0001deep\u0001';
/** JSON text of `body`, a DEEP marker anywhere in it replaced by 10,000 nested arrays. */
const toJson = (body: unknown) => JSON.stringify(body).replace(JSON.stringify(DEEP), nested('array', 10_000));

function fieldNames(s: Schema | undefined): string[] {
  const names = Object.keys(s?.properties ?? {});
  for (const b of [...(s?.oneOf ?? []), ...(s?.anyOf ?? [])]) names.push(...Object.keys(b.properties ?? {}));
  return [...new Set(names)];
}

describe('fuzzing every operation of /v1/openapi.json', function () {
  this.timeout(180_000);
  const db = useTestDatabase();
  let t: TestApp;
  let server: Server;
  let port: number;
  let fake: FakeBotApi;
  let auth: string;
  let ops: Operation[];
  const pool: IdPool = { own: {}, foreign: {} };
  let gzipBomb: Buffer;
  const cursorShapes = new Map<string, { s: string; n: number }>();

  /** One of each resource in a workspace, through the API; its ids by prefix. */
  async function seed(workspaceId: string, keyAuth: string): Promise<Record<string, string[]>> {
    const ids: Record<string, string[]> = {};
    const add = (id: string) => (ids[id.split('_')[0]] ??= []).push(id);
    const post = async (path: string, body: object) => {
      const res = await t.request.post(path).set('Authorization', keyAuth).send(body);
      assert.ok(res.status < 300, `seeding ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      add(res.body.id);
      return res.body;
    };
    const n = Math.floor(Math.random() * 1e9);
    const team = await post('/v1/teams', { name: `Team ${n}` });
    await post('/v1/agents', { username: `@agent_${n}`, name: 'Agent', team_ids: [team.id] });
    const contact = await post('/v1/contacts', { email: `c${n}@example.com`, name: 'Fuzz Contact', tags: ['vip'] });
    const ticket = await post('/v1/tickets', { contact_id: contact.id, subject: 'Fuzz me', team_id: team.id });
    await post(`/v1/tickets/${ticket.id}/messages`, { text: 'an internal note', internal: true });
    await post('/v1/canned-responses', { shortcut: `s${n}`, title: 'Canned', body: 'Hi {{customer_first_name|there}}' });
    await post('/v1/sla-policies', { name: `SLA ${n}`, targets: { normal: { first_response_minutes: 30, next_response_minutes: 60, resolution_minutes: 480 } } });
    await post('/v1/escalation-rules', { name: `Rule ${n}`, conditions: { priority_in: ['urgent'] }, actions: [{ type: 'set_priority', priority: 'high' }] });
    const hook = await post('/v1/webhooks', { url: 'https://example.com/hooks/topicdesk', events: ['*'] });
    await post(`/v1/webhooks/${hook.id}/test`, {});
    await post('/v1/api-keys', { name: `other ${n}`, scopes: ['read:tickets'] });
    const events = await t.request.get(`/v1/tickets/${ticket.id}/events`).set('Authorization', keyAuth);
    for (const e of events.body.items ?? []) add(e.id);
    add((await makeAccount(db.knex, { workspaceId })).id);
    add(workspaceId);
    return ids;
  }

  before(async () => {
    fake = await startFakeBotApi();
    t = createTestApp(db.knex, { config: { rateLimit: { defaultPerMinute: 100_000_000 }, telegram: { apiRoot: fake.url } } });
    server = createHttpServer(t.app.callback(), t.deps.logger);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    const wsA = await makeWorkspace(db.knex, t.services, { name: 'Fuzzed' });
    const wsB = await makeWorkspace(db.knex, t.services, { name: 'Bystander' });
    auth = (await makeKey(db.knex, t.services, { workspaceId: wsA.id })).auth;
    // Two of everything here, so every list has a next page (and a cursor to forge).
    const [first, second] = [await seed(wsA.id, auth), await seed(wsA.id, auth)];
    pool.own = Object.fromEntries(Object.keys(first).map((prefix) => [prefix, [...new Set([...first[prefix], ...(second[prefix] ?? [])])]]));
    pool.foreign = await seed(wsB.id, (await makeKey(db.knex, t.services, { workspaceId: wsB.id })).auth);
    gzipBomb = gzipSync(Buffer.alloc(30_000_000, 0x20));

    const doc: any = await SwaggerParser.dereference((await t.request.get('/v1/openapi.json').expect(200)).body);
    ops = [];
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
        const op = item[method];
        if (!op) continue;
        ops.push({ method: method.toUpperCase(), path, params: op.parameters ?? [], body: op.requestBody?.content?.['application/json']?.schema, mutating: method !== 'get' });
      }
    }
    assert.ok(ops.length >= 80, `the document lists ${ops.length} operations`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await fake.close();
  });

  function send(req: FuzzRequest): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port, method: req.method, path: req.query ? `${req.path}?${req.query}` : req.path, headers: req.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      r.setTimeout(20_000, () => r.destroy(new Error('no answer within 20 s')));
      // The server may answer (413) and close before a large body is all written: the answer counts.
      r.on('error', (err) => reject(err));
      r.end(req.body);
    });
  }

  // ---- requests shaped by the operation's schemas ----

  function pathArb(op: Operation): fc.Arbitrary<Record<string, string>> {
    const params = op.params.filter((p) => p.in === 'path');
    return fc.record(Object.fromEntries(params.map((p) => [p.name, schemaArbitrary(p.schema, pool).map(String)])));
  }

  function buildPath(op: Operation, values: Record<string, string>, raw: Record<string, string> = {}): string {
    return op.path.replace(/\{(\w+)\}/g, (_, name: string) => raw[name] ?? encodeURIComponent(values[name] ?? ''));
  }

  function queryArb(op: Operation): fc.Arbitrary<[string, string][]> {
    const params = op.params.filter((p) => p.in === 'query');
    if (!params.length) return fc.constant([]);
    return fc.record(Object.fromEntries(params.map((p) => [p.name, schemaArbitrary(p.schema, pool).map(String)])), { requiredKeys: params.filter((p) => p.required).map((p) => p.name) })
      .map((q) => Object.entries(q).map(([k, v]) => [k, encodeURIComponent(v)] as [string, string]));
  }

  const encodeQuery = (pairs: [string, string][]) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&');

  function shaped(op: Operation): fc.Arbitrary<{ path: Record<string, string>; query: [string, string][]; body: unknown; key: string }> {
    return fc.record({
      path: pathArb(op),
      query: queryArb(op),
      body: op.body ? schemaArbitrary(op.body, pool) : fc.constant(undefined),
      key: fc.stringMatching(/^[A-Za-z0-9-]{16,40}$/),
    });
  }

  function request(op: Operation, parts: { path: Record<string, string>; query: [string, string][]; body: unknown; key: string }, over: Partial<FuzzRequest> & { rawPath?: Record<string, string> } = {}): FuzzRequest {
    const headers: Record<string, string> = { Authorization: auth, Accept: 'application/json' };
    if (op.mutating) headers['Idempotency-Key'] = parts.key;
    const body = over.body ?? (parts.body === undefined ? undefined : toJson(parts.body));
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return {
      method: op.method, path: buildPath(op, parts.path, over.rawPath), query: over.query ?? encodeQuery(parts.query), body, what: over.what ?? 'schema-shaped',
      ...over, headers: { ...headers, ...over.headers },
    };
  }

  // ---- hostile requests: a schema-shaped one with one thing broken ----

  function hostile(op: Operation): fc.Arbitrary<FuzzRequest> {
    const base = shaped(op);
    const fields = fieldNames(op.body);
    const strategies: fc.Arbitrary<FuzzRequest>[] = [];
    const queryNames = op.params.filter((p) => p.in === 'query').map((p) => p.name);
    const pathNames = op.params.filter((p) => p.in === 'path').map((p) => p.name);

    if (op.body || op.mutating) {
      strategies.push(fc.tuple(base, fc.constantFrom(...RAW_BODIES)).map(([b, raw]) => request(op, b, { body: raw, what: 'a body no schema describes' })));
      strategies.push(fc.tuple(base, fc.constantFrom(...HOSTILE_KEYS, 'extra_field'), hostileValue(pool)).map(([b, k, v]) => request(op, b, { body: toJson(withField(b.body, k, v)), what: `an extra field ${JSON.stringify(k)}` })));
    }
    if (fields.length) {
      strategies.push(fc.tuple(base, fc.constantFrom(...fields), hostileValue(pool)).map(([b, k, v]) => request(op, b, { body: toJson(withField(b.body, k, v)), what: `field ${k} of the wrong kind` })));
      strategies.push(fc.tuple(base, fc.constantFrom(...fields)).map(([b, k]) => request(op, b, { body: toJson(withField(b.body, k, DEEP)), what: `field ${k} nested 10,000 deep` })));
      strategies.push(fc.tuple(base, fc.constantFrom(...fields), fc.constantFrom(...fields), hostileValue(pool)).map(([b, k1, k2, v]) => (
        request(op, b, { body: toJson(withField(b.body, k1, { [k2]: v, nested: [v, { [k2]: v }] })), what: `field ${k1} holding an object` }))));
    }
    if (op.body) {
      strategies.push(fc.tuple(base, fc.constantFrom(
        ['Content-Type', 'text/plain'], ['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Type', 'application/json; charset=utf-16'],
        ['Content-Type', 'application/json; charset=latin1'], ['Content-Type', 'multipart/form-data; boundary=x'], ['Content-Type', 'application/merge-patch+json'],
        ['Content-Encoding', 'gzip'], ['Content-Encoding', 'deflate'], ['Content-Encoding', 'br'], ['Content-Encoding', 'compress'], ['Content-Encoding', 'gzip, gzip'],
      )).map(([b, [h, v]]) => request(op, b, { headers: { [h]: v }, what: `${h}: ${v}` })));
      strategies.push(base.map((b) => request(op, b, { body: gzipBomb, headers: { 'Content-Encoding': 'gzip' }, what: 'a gzip bomb (30 MB of spaces)' })));
    }
    if (op.mutating) {
      strategies.push(fc.tuple(base, fc.constantFrom('x'.repeat(300), ' ', '\t', 'ключ')).map(([b, key]) => (
        request(op, b, { headers: { 'Idempotency-Key': Buffer.from(key, 'utf8').toString('latin1') }, what: `Idempotency-Key ${JSON.stringify(key.slice(0, 20))}` }))));
    }
    if (queryNames.length) {
      const value = fc.oneof(fc.constantFrom(...RAW_QUERY_VALUES), fc.constantFrom(...NASTY_STRINGS).map(encodeURIComponent), hostileValue(pool).map((v) => encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v) ?? '')));
      strategies.push(fc.tuple(base, fc.constantFrom(...queryNames), value).map(([b, k, v]) => request(op, b, { query: encodeQuery([...b.query.filter(([n]) => n !== k), [k, v]]), what: `query ${k} hostile` })));
      strategies.push(fc.tuple(base, fc.constantFrom(...queryNames), value, value).map(([b, k, v1, v2]) => request(op, b, { query: encodeQuery([...b.query, [k, v1], [k, v2]]), what: `query ${k} given twice` })));
      if (queryNames.includes('cursor')) {
        // Random ones, and ones shaped like this list's own (its sort key, scalars of the wrong kind).
        const shape = cursorShapes.get(op.path);
        const forged = shape
          ? fc.array(fc.oneof(fc.constantFrom(...CURSOR_VALUES), fc.string({ maxLength: 30 }), fc.double({ noNaN: true, noDefaultInfinity: true })), { minLength: shape.n, maxLength: shape.n }).map((v) => ({ s: shape.s, v }))
          : fc.constant(null);
        const cursor = fc.oneof(hostileValue(pool), fc.jsonValue({ maxDepth: 3 }), fc.record({ s: fc.string(), v: fc.array(hostileValue(pool), { maxLength: 3 }) }), forged, forged)
          .map((v) => Buffer.from(JSON.stringify(v) ?? 'undefined').toString('base64url'));
        strategies.push(fc.tuple(base, cursor).map(([b, c]) => request(op, b, { query: encodeQuery([...b.query.filter(([n]) => n !== 'cursor' && n !== 'offset'), ['cursor', c]]), what: 'a forged cursor' })));
      }
    }
    strategies.push(fc.tuple(base, fc.constantFrom('', 'extra', '__proto__', 'constructor', '%00', 'a[b]', 'limit[]'), fc.constantFrom(...RAW_QUERY_VALUES)).map(([b, k, v]) => (
      request(op, b, { query: `${encodeQuery(b.query)}${b.query.length ? '&' : ''}${k}=${v}`, what: `an unknown query parameter ${JSON.stringify(k)}` }))));
    if (pathNames.length) {
      const segment = fc.oneof(fc.constantFrom(...RAW_PATH_SEGMENTS), fc.constantFrom(...NASTY_STRINGS).map(encodeURIComponent), fc.string({ unit: 'grapheme', maxLength: 30 }).map(encodeURIComponent));
      strategies.push(fc.tuple(base, fc.constantFrom(...pathNames), segment).map(([b, name, seg]) => request(op, b, { rawPath: { [name]: seg }, what: `path {${name}} = ${clip(seg, 40)}` })));
    }
    strategies.push(fc.tuple(base, fc.constantFrom('Bearer ', `Bearer ${'x'.repeat(10_000)}`, 'Basic dXNlcjpwYXNz', 'Bearer td_live_%00', 'bearer  td_live_abc def', 'Bearer \u00ff')).map(([b, a]) => (
      request(op, b, { headers: { Authorization: Buffer.from(a, 'utf8').toString('latin1') }, what: `Authorization ${clip(a, 30)}` }))));
    return fc.oneof(...strategies);
  }

  function describeFailure(op: Operation, req: FuzzRequest, res: Answer | Error, faults: string[]): string {
    const body = req.body === undefined ? '' : clip(Buffer.isBuffer(req.body) ? `<${req.body.length} bytes>` : req.body, 300);
    const answer = res instanceof Error ? `no answer: ${res.message}` : `${res.status} ${clip(res.text, 500)}`;
    return `${op.method} ${op.path} [${req.what}]: ${faults.join('; ')}\n    sent ${req.method} ${clip(req.path, 200)}${req.query ? `?${clip(req.query, 200)}` : ''} ${JSON.stringify(Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'Authorization' || !req.headers[k].startsWith(auth)).map(([k, v]) => [k, clip(v, 60)])))} ${body}\n    got ${answer}`;
  }

  /** Runs `arb` against every operation; returns what went wrong, at most one finding per operation. */
  async function fuzz(kind: string, arbFor: (op: Operation) => fc.Arbitrary<FuzzRequest>, numRuns: number): Promise<string[]> {
    const findings: string[] = [];
    for (const [i, op] of ops.entries()) {
      let finding: string | undefined;
      const property = fc.asyncProperty(arbFor(op), async (req) => {
        let res: Answer;
        try {
          res = await send(req);
        } catch (err) {
          finding = describeFailure(op, req, err as Error, ['the connection failed']);
          return false;
        }
        const faults = faultsOf(res);
        if (faults.length) finding = describeFailure(op, req, res, faults);
        return faults.length === 0;
      });
      const seed = SEED + i;
      await fc.assert(property, { seed, numRuns, endOnFailure: true }).catch(() => undefined);
      if (finding) findings.push(`${finding}\n    (${kind}: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}, seed ${seed} for this operation)`);
    }
    return findings;
  }

  it('answers requests shaped by each operation\'s schemas without a 5xx; every error a problem with nothing internal', async () => {
    const findings = await fuzz('schema-shaped', (op) => shaped(op).map((parts) => request(op, parts)), RUNS);
    assert.deepEqual(findings, [], `\n${findings.join('\n\n')}`);
  });

  it('answers hostile requests to each operation without a 5xx; every error a problem with nothing internal', async () => {
    // What each list's cursors look like (by now the schema-shaped requests have made several of most things).
    for (const op of ops.filter((o) => o.method === 'GET' && o.params.some((p) => p.name === 'cursor') && !o.path.includes('{'))) {
      const res = await t.request.get(op.path).query({ limit: 1 }).set('Authorization', auth);
      const next = res.body?.next_cursor;
      if (next) {
        const { s, v } = JSON.parse(Buffer.from(next, 'base64url').toString('utf8'));
        cursorShapes.set(op.path, { s, n: v.length });
      }
    }
    const findings = await fuzz('hostile', hostile, RUNS * 3);
    assert.deepEqual(findings, [], `\n${findings.join('\n\n')}`);
  });

  it('left the bystander workspace untouched', async () => {
    // Every id of the other workspace was fair game; its resources must be as the seed left them.
    const key = await makeKey(db.knex, t.services, { workspaceId: pool.foreign.ws[0] });
    for (const [path, prefix] of [['/v1/contacts', 'ct'], ['/v1/teams', 'team'], ['/v1/canned-responses', 'cr'], ['/v1/webhooks', 'whk']] as const) {
      const res = await t.request.get(path).set('Authorization', key.auth).expect(200);
      assert.deepEqual(res.body.items.map((x: { id: string }) => x.id).sort(), [...pool.foreign[prefix]].sort(), path);
    }
    const contact = await t.request.get(`/v1/contacts/${pool.foreign.ct[0]}`).set('Authorization', key.auth).expect(200);
    assert.deepEqual([contact.body.name, contact.body.tags], ['Fuzz Contact', ['vip']]);
  });
});
