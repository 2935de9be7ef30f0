/**
 * Hostile input on a real HTTP server (issue 17): deeply nested JSON on every kind of route,
 * the Telegram webhook's secret checked before its body, and requests Node's HTTP parser
 * refuses answered as problem+json — in process and through the real service (src/main.ts).
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { accountStore } from '../../src/accounts/account-store.js';
import { MAX_JSON_DEPTH } from '../../src/http/json-depth.js';
import { createHttpServer } from '../../src/http/server.js';
import { newId } from '../../src/lib/ids.js';
import { webhookSecretFor } from '../../src/telegram/webhook-secret.js';
import { makeKey } from '../helpers/factories.js';
import { baseEnv, startMain, type MainProcess } from '../helpers/main-process.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { createTestDatabase, useTestDatabase, type TestDatabase } from '../helpers/test-db.js';

/** `[[[…]]]` or `{"a":{"a":…}}` as JSON text, `depth` levels around `leaf`. */
const nestedText = (kind: 'array' | 'object', depth: number, leaf = '1') =>
  kind === 'array' ? `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;

interface RawAnswer { status: number; headers: Record<string, string>; text: string }

/** One request over a fresh socket, written byte for byte; resolves with what came back before the close. */
function rawRequest(port: number, bytes: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = raw.split('\r\n\r\n');
      const [statusLine, ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: rest.join('\r\n\r\n') });
    });
    socket.write(bytes);
  });
}

/** A parser refusal answered as a problem, with a request id and the connection closed. */
function assertRawProblem(res: RawAnswer, status: number, code: string) {
  assert.equal(res.status, status, JSON.stringify(res));
  assert.equal(res.headers['content-type'], 'application/problem+json');
  assert.equal(res.headers.connection, 'close');
  assert.match(res.headers['x-request-id'] ?? '', /^req_[0-9A-Z]{26}$/);
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.text));
  const body = JSON.parse(res.text);
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(body.request_id, res.headers['x-request-id']);
  for (const f of ['type', 'title', 'detail']) assert.equal(typeof body[f], 'string', f);
  return body;
}

const malformedRequestLine = 'GARBAGE / HTTP/1.1 extra\r\nHost: x\r\n\r\n';
const oversizedHeaders = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;

describe('hostile input on a real HTTP server', function () {
  this.timeout(60_000);
  const db = useTestDatabase();
  let t: TestApp;
  let server: Server;
  let base: string;
  let port: number;
  let auth: string;
  let accountId: string;
  let secret: string;

  before(async () => {
    t = createTestApp(db.knex);
    server = createHttpServer(t.app.callback(), t.deps.logger);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    auth = (await makeKey(db.knex, t.services)).auth;
    const token = '123456:AAhostile-input-test-token-000000000';
    accountId = (await accountStore.insert(db.knex, { workspaceId: 'ws_default', name: 'Webhook bot', botToken: token, botUsername: 'hostile_bot', at: new Date() })).id;
    secret = webhookSecretFor(token, null);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', requestId: res.headers.get('x-request-id'), text, json: () => JSON.parse(text) };
  };
  const webhookPath = (id = accountId) => `/telegram/${id}/webhook`;
  const storedUpdates = async (updateId: number) => Number((await db.knex('telegram_updates').where({ update_id: updateId }).count({ n: '*' }))[0].n);

  describe('deeply nested JSON', () => {
    const routes = (): { name: string; path: string; headers: Record<string, string> }[] => [
      { name: 'POST /v1/contacts', path: '/v1/contacts', headers: { Authorization: auth } },
      { name: 'POST /v1/tickets with an Idempotency-Key', path: '/v1/tickets', headers: { Authorization: auth, 'Idempotency-Key': newId('req') } },
      { name: 'POST /v1/webhooks', path: '/v1/webhooks', headers: { Authorization: auth } },
      { name: 'POST /mcp', path: '/mcp', headers: { Authorization: auth, Accept: 'application/json, text/event-stream' } },
      { name: 'POST /telegram/{id}/webhook (right secret)', path: webhookPath(), headers: { 'X-Telegram-Bot-Api-Secret-Token': secret } },
    ];

    it('answers 10,000 nested arrays and objects with a 422 naming the limit, on every kind of route', async () => {
      for (const route of routes()) {
        for (const kind of ['array', 'object'] as const) {
          // Arrays at the top, and inside an object the route's schema would otherwise look into.
          for (const body of [nestedText(kind, 10_000), `{"tags":${nestedText(kind, 10_000)}}`]) {
            const res = await post(route.path, body, route.headers);
            assert.equal(res.status, 422, `${route.name} ${kind}: ${res.status} ${res.text.slice(0, 300)}`);
            assert.match(res.type, /^application\/problem\+json/);
            const problem = res.json();
            assert.equal(problem.code, 'validation_error');
            assert.match(problem.detail, new RegExp(`more than ${MAX_JSON_DEPTH} levels deep`));
            assert.deepEqual(problem.details, [{ field: 'body', error: `must not nest arrays and objects more than ${MAX_JSON_DEPTH} levels deep` }]);
            assert.equal(problem.request_id, res.requestId);
          }
        }
      }
      assert.ok(!t.logs.join('').includes('RangeError'), 'no stack overflow anywhere');
    });

    it('takes a body exactly at the limit and refuses one level more', async () => {
      // The update object is level 1, so the nested value adds MAX_JSON_DEPTH - 1 levels.
      const atLimit = `{"update_id":7100001,"x":${nestedText('object', MAX_JSON_DEPTH - 1)}}`;
      const res = await post(webhookPath(), atLimit, { 'X-Telegram-Bot-Api-Secret-Token': secret });
      assert.equal(res.status, 200, res.text);
      assert.equal(await storedUpdates(7100001), 1);
      const over = `{"update_id":7100002,"x":${nestedText('array', MAX_JSON_DEPTH)}}`;
      assert.equal((await post(webhookPath(), over, { 'X-Telegram-Bot-Api-Secret-Token': secret })).status, 422);
      assert.equal(await storedUpdates(7100002), 0);
      // And a deep body on an API route: refused before the idempotency claim or the handler.
      const contacts = await post('/v1/contacts', `{"email":"deep@example.com","custom_fields":${nestedText('object', MAX_JSON_DEPTH)}}`, { Authorization: auth });
      assert.equal(contacts.status, 422);
      assert.equal(Number((await db.knex('contacts').where({ email: 'deep@example.com' }).count({ n: '*' }))[0].n), 0);
    });
  });

  describe('POST /telegram/{id}/webhook: the secret before the body', () => {
    const badBodies: [string, string, Record<string, string>][] = [
      ['an array', '[1,2,3]', {}],
      ['no update_id', '{"message":{}}', {}],
      ['invalid JSON', '{"update_id":', {}],
      ['10,000 nested arrays', nestedText('array', 10_000), {}],
      ['a NUL character', '{"update_id":1,"x":"a\\u0000b"}', {}],
      ['not JSON at all', 'update_id=1', { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ];

    it('answers 401 to a missing or wrong secret whatever the body', async () => {
      for (const [what, body, headers] of badBodies) {
        for (const given of [undefined, '', 'wrong', `${secret}x`, webhookSecretFor('999:AAother-bot', null)]) {
          const res = await post(webhookPath(), body, { ...headers, ...(given === undefined ? {} : { 'X-Telegram-Bot-Api-Secret-Token': given }) });
          assert.equal(res.status, 401, `${what}, secret ${JSON.stringify(given)}: ${res.status} ${res.text.slice(0, 200)}`);
          assert.match(res.type, /^application\/problem\+json/);
          assert.equal(res.json().code, 'unauthorized');
        }
      }
    });

    it('answers an unknown bot with the same 401, body or no body', async () => {
      const unknown = await post(webhookPath(newId('acc')), '[]', { 'X-Telegram-Bot-Api-Secret-Token': secret });
      const wrong = await post(webhookPath(), '[]', { 'X-Telegram-Bot-Api-Secret-Token': 'nope' });
      assert.deepEqual([unknown.status, unknown.json().detail], [401, wrong.json().detail]);
    });

    it('with the right secret, a bad body is the client error it is', async () => {
      const h = { 'X-Telegram-Bot-Api-Secret-Token': secret };
      assert.equal((await post(webhookPath(), '[1,2,3]', h)).status, 422);
      assert.equal((await post(webhookPath(), '{"message":{}}', h)).status, 422);
      assert.equal((await post(webhookPath(), '{"update_id":', h)).status, 400);
      assert.equal((await post(webhookPath(), 'update_id=1', { ...h, 'Content-Type': 'application/x-www-form-urlencoded' })).status, 415);
      assert.equal((await post(webhookPath(), '{"update_id":7200001}', h)).status, 200);
    });
  });

  describe('requests the HTTP parser refuses', () => {
    it('answers a malformed request line with 400 problem+json, a request id and Connection: close', async () => {
      const body = assertRawProblem(await rawRequest(port, malformedRequestLine), 400, 'bad_request');
      assert.equal(body.title, 'Bad request');
      assertRawProblem(await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n'), 400, 'bad_request');
      assertRawProblem(await rawRequest(port, 'POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzzz\r\n'), 400, 'bad_request');
    });

    it('answers oversized headers with 431 problem+json', async () => {
      const body = assertRawProblem(await rawRequest(port, oversizedHeaders), 431, 'bad_request');
      assert.equal(body.title, 'Request header fields too large');
      assert.match(body.detail, /16 KB/);
    });

    it('logs each refusal with its request id', async () => {
      const res = await rawRequest(port, malformedRequestLine);
      const id = res.headers['x-request-id'];
      const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.request_id === id);
      assert.ok(line, 'a log line carries the request id the client got');
      assert.equal(line.status, 400);
    });

    it('still serves well-formed requests on the same server', async () => {
      const res = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(res.status, 200);
    });
  });

  describe('found by the fuzzer (test/api/fuzz.test.ts)', () => {
    const get = async (path: string) => {
      const res = await fetch(`${base}${path}`, { headers: { Authorization: auth } });
      return { status: res.status, body: await res.json() };
    };

    it('refuses a query number that coerces to Infinity (1e999, 400 digits) with 422, not a 500 or a page with offset null', async () => {
      for (const [query, field] of [['offset=1e999', 'offset'], [`offset=${'9'.repeat(400)}`, 'offset'], ['limit=1e999', 'limit'], ['limit=-1e999', 'limit']]) {
        const res = await get(`/v1/api-keys?${query}`);
        assert.equal(res.status, 422, `${query.slice(0, 20)}: ${JSON.stringify(res.body)}`);
        assert.deepEqual(res.body.details, [{ field, error: 'must be a finite number' }]);
      }
      assert.equal((await get('/v1/api-keys?offset=1e2')).body.offset, 100, 'a finite exponent is still a number');
    });

    it('calls a field named __proto__ or constructor unknown, never "use [object Object]"', async () => {
      for (const name of ['__proto__', 'constructor', 'toString']) {
        const query = await get(`/v1/tickets?${name}=1`);
        assert.equal(query.status, 422);
        assert.deepEqual(query.body.details.map((d: { error: string }) => d.error), ['is not a known field'], name);
        // PATCH /v1/tickets/{id} names moved fields (status → POST …/status): the lookup must be of its own names only.
        const body = await fetch(`${base}/v1/tickets/tkt_01ARZ3NDEKTSV4RRFFQ69G5FAV`, {
          method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: `{"${name}":1}`,
        });
        const problem = await body.json();
        assert.equal(body.status, 422);
        // A __proto__ key never reaches validation: the JSON parser refuses it (and said "not valid JSON").
        const expected = name === '__proto__' ? ['body', 'must not have a field named __proto__ or constructor.prototype'] : [name, 'is not a known field'];
        assert.deepEqual(problem.details.map((d: { field: string; error: string }) => [d.field, d.error]), [expected], name);
      }
    });
  });

  describe('the real service (src/main.ts)', () => {
    let p: MainProcess | undefined;
    let database: TestDatabase | undefined;
    after(async () => {
      if (p && !p.hasExited()) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
      await database?.drop();
    });

    it('answers parser refusals as problem+json too', async () => {
      database = await createTestDatabase();
      p = startMain(baseEnv({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: database.url, LOG_LEVEL: 'info', SCHEDULER_ENABLED: 'false' }));
      const url = new URL(await p.listening());
      assertRawProblem(await rawRequest(Number(url.port), malformedRequestLine), 400, 'bad_request');
      assertRawProblem(await rawRequest(Number(url.port), oversizedHeaders), 431, 'bad_request');
      p.child.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
    });
  });
});
