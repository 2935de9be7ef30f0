/**
 * Idempotency-Key (SPEC §4.1; research notes §1.2–1.3) against the real middleware and a
 * real PostgreSQL. Effects are counted in rows: api_keys for the real routes, test_effects
 * for the test-only routes of test/helpers/idempotency-routes.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type supertest from 'supertest';
import { cleanupJob } from '../../src/jobs/cleanup-job.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { countEffects, createEffectsTable, effectRoutes, newEffectControl, TEST_ADVISORY_LOCK } from '../helpers/idempotency-routes.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

type Res = supertest.Response;
type Key = Awaited<ReturnType<typeof makeKey>>;

describe('Idempotency-Key', () => {
  const db = useTestDatabase();
  const control = newEffectControl();
  /** Default configuration: lock timeout 1000 ms, retention 24 h. */
  let t: TestApp;
  /** Lock timeout 300 ms: in-flight tests give up quickly. */
  let short: TestApp;
  /** Lock timeout 5000 ms: duplicates wait for the first request to finish. */
  let patient: TestApp;
  let key: Key;

  before(async () => {
    await createEffectsTable(db.knex);
    const extraRoutes = effectRoutes(control);
    t = createTestApp(db.knex, { extraRoutes });
    short = createTestApp(db.knex, { extraRoutes, config: { idempotency: { lockTimeoutMs: 300 } } });
    patient = createTestApp(db.knex, { extraRoutes, config: { idempotency: { lockTimeoutMs: 5000 } } });
    // A high rate limit: the concurrency tests send hundreds of requests with this key.
    key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 1_000_000 });
  });

  beforeEach(() => {
    control.calls = {};
    control.faultNext = false;
  });

  // ---------------------------------------------------------------------------------------
  // helpers

  let seq = 0;
  /** A fresh Idempotency-Key (and a fresh tag to count effects by). */
  const fresh = (label: string) => `${label}-${++seq}-${randomUUID()}`;

  function post(app: TestApp, path: string, body: unknown, idem?: string, auth = key.auth) {
    const r = app.request.post(path).set('Authorization', auth);
    if (idem !== undefined) r.set('Idempotency-Key', idem);
    return r.send(body as object);
  }

  const keyRow = (idem: string, workspaceId = 'ws_default') =>
    db.knex('idempotency_keys').where({ workspace_id: workspaceId, key: idem }).first();

  async function countKeyRows(idem: string): Promise<number> {
    const r = await db.knex('idempotency_keys').where({ key: idem }).count<{ count: number }[]>({ count: '*' });
    return Number(r[0].count);
  }

  async function countApiKeysNamed(name: string): Promise<number> {
    const r = await db.knex('api_keys').where({ name }).count<{ count: number }[]>({ count: '*' });
    return Number(r[0].count);
  }

  /** Polls a condition (not a timing assertion: it only waits for something to have happened). */
  async function waitUntil(what: string, cond: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Sessions of this database currently inside pg_sleep (a held test transaction). */
  async function sleepingSessions(): Promise<number> {
    const r = await db.knex.raw(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%pg_sleep%'`,
    );
    return r.rows[0].n;
  }

  /**
   * Same status, same bytes, same Content-Type and Location; the replay is marked, the original
   * is not. A new API key's token is the one exception: shown once, replayed as null.
   */
  function assertReplayOf(replay: Res, original: Res): void {
    assert.equal(original.headers['idempotent-replayed'], undefined, 'the original response is not marked as a replay');
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal(replay.status, original.status);
    const secretShownOnce = typeof original.body?.token === 'string';
    assert.equal(replay.text, secretShownOnce ? JSON.stringify({ ...original.body, token: null }) : original.text);
    assert.equal(replay.headers['content-type'], original.headers['content-type']);
    assert.equal(replay.headers.location, original.headers.location);
    assert.notEqual(replay.headers['x-request-id'], original.headers['x-request-id'], 'a replay is still a request of its own');
  }

  function assertProblem(res: Res, status: number, code: string): void {
    assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
    assert.match(res.headers['content-type'], /application\/problem\+json/);
    assert.equal(res.body.code, code);
  }

  const apiKeyBody = (name: string) => ({ name, scopes: ['read:tickets'] });

  // ---------------------------------------------------------------------------------------

  describe('first use and replay', () => {
    it('creates the resource once and stores its status, body, type and Location under the workspace and key', async () => {
      const idem = fresh('create');
      const name = fresh('key-name');
      const res = await post(t, '/v1/api-keys', apiKeyBody(name), idem).expect(201);
      assert.equal(res.headers['idempotent-replayed'], undefined);
      assert.match(res.headers.location, /^\/v1\/api-keys\/key_/);
      assert.equal(await countApiKeysNamed(name), 1);

      const row = await keyRow(idem);
      assert.ok(row, 'the key row was committed with the effect');
      assert.equal(row.method, 'POST');
      assert.equal(row.path, '/v1/api-keys');
      assert.equal(row.response_status, 201);
      assert.equal(row.response_type, 'application/json');
      assert.equal(row.response_body, JSON.stringify({ ...res.body, token: null }), 'the stored body is the bytes sent, minus the token shown once');
      assert.deepEqual(row.response_headers, { location: res.headers.location });
      assert.match(row.fingerprint, /^[0-9a-f]{64}$/);
      assert.equal(await countKeyRows(idem), 1);
    });

    it('replays the stored status, body and Location byte for byte with Idempotent-Replayed: true and no new effect', async () => {
      const idem = fresh('replay');
      const name = fresh('key-name');
      const first = await post(t, '/v1/api-keys', apiKeyBody(name), idem).expect(201);
      const second = await post(t, '/v1/api-keys', apiKeyBody(name), idem);
      const third = await post(t, '/v1/api-keys', apiKeyBody(name), idem);
      assertReplayOf(second, first);
      assertReplayOf(third, first);
      assert.equal(second.body.id, first.body.id, 'the replay names the key created first');
      assert.equal(second.body.token, null, 'the token is shown once, never replayed');
      assert.equal(await countApiKeysNamed(name), 1);
      assert.equal(await countKeyRows(idem), 1);
    });

    it('recognises the same request whatever the JSON key order or whitespace of its body', async () => {
      const idem = fresh('order');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects', { tag, note: 'n' }, idem).expect(201);
      const reordered = await t.request.post('/v1/test/effects').set('Authorization', key.auth).set('Idempotency-Key', idem)
        .set('Content-Type', 'application/json').send(`{ "note" : "n",\n  "tag": ${JSON.stringify(tag)} }`);
      assertReplayOf(reordered, first);
      assert.equal(await countEffects(db.knex, tag), 1);
      assert.equal(control.calls.create, 1);
    });

    it('runs every request without Idempotency-Key and stores nothing for it', async () => {
      const tag = fresh('nokey');
      const before = await db.knex('idempotency_keys').count<{ count: number }[]>({ count: '*' });
      const a = await post(t, '/v1/test/effects', { tag }).expect(201);
      const b = await post(t, '/v1/test/effects', { tag }).expect(201);
      assert.notEqual(a.body.id, b.body.id);
      assert.equal(b.headers['idempotent-replayed'], undefined);
      assert.equal(await countEffects(db.knex, tag), 2);
      const after = await db.knex('idempotency_keys').count<{ count: number }[]>({ count: '*' });
      assert.equal(Number(after[0].count), Number(before[0].count));
    });

    it('treats keys that differ only in letter case as different keys', async () => {
      const base = fresh('case');
      const tag = fresh('tag');
      await post(t, '/v1/test/effects', { tag }, `${base}-abc`).expect(201);
      const other = await post(t, '/v1/test/effects', { tag }, `${base}-ABC`).expect(201);
      assert.equal(other.headers['idempotent-replayed'], undefined);
      assert.equal(await countEffects(db.knex, tag), 2);
    });

    it('stores a business error (404 not_found, 409 conflict) and replays it without running the handler again', async () => {
      for (const [code, status] of [['not_found', 404], ['conflict', 409]] as const) {
        const idem = fresh(`biz-${code}`);
        const tag = fresh('tag');
        const first = await post(t, '/v1/test/effects/business-error', { tag, code }, idem);
        assertProblem(first, status, code);
        const row = await keyRow(idem);
        assert.equal(row.response_status, status);
        assert.equal(row.response_type, 'application/problem+json');
        assert.equal(row.response_body, first.text);

        const replay = await post(t, '/v1/test/effects/business-error', { tag, code }, idem);
        assertReplayOf(replay, first);
        assert.equal(replay.body.request_id, first.body.request_id, 'the body is the stored one, request_id included');
        assert.equal(control.calls['business-error'], code === 'not_found' ? 1 : 2, 'the handler ran once per key');
        // The handler's write before the error is rolled back with it.
        assert.equal(await countEffects(db.knex, tag), 0);
      }
    });

    it('replays a 204 DELETE with an empty body and does not delete again', async () => {
      const idem = fresh('del204');
      const tag = fresh('tag');
      const first = await t.request.delete(`/v1/test/effects/${tag}`).set('Authorization', key.auth).set('Idempotency-Key', idem).expect(204);
      const replay = await t.request.delete(`/v1/test/effects/${tag}`).set('Authorization', key.auth).set('Idempotency-Key', idem);
      assertReplayOf(replay, first);
      assert.equal(replay.text, '');
      assert.equal(replay.headers['content-type'], undefined);
      assert.equal(control.calls.delete, 1);
      assert.equal(await countEffects(db.knex, `deleted:${tag}`), 1);
      assert.equal((await keyRow(idem)).response_status, 204);
    });

    it('replays DELETE /v1/api-keys/{id} with the original body and does not revoke again', async () => {
      const victim = await makeKey(db.knex, t.services, { name: fresh('victim') });
      const idem = fresh('revoke');
      const first = await t.request.delete(`/v1/api-keys/${victim.id}`).set('Authorization', key.auth).set('Idempotency-Key', idem).expect(200);
      assert.equal(first.body.status, 'revoked');
      const revokedAt = (await db.knex('api_keys').where({ id: victim.id }).first()).revoked_at as Date;
      const replay = await t.request.delete(`/v1/api-keys/${victim.id}`).set('Authorization', key.auth).set('Idempotency-Key', idem);
      assertReplayOf(replay, first);
      const after = (await db.knex('api_keys').where({ id: victim.id }).first()).revoked_at as Date;
      assert.equal(after.getTime(), revokedAt.getTime(), 'revoked_at was not touched by the replay');
    });

    it('replays PATCH /v1/workspace with the original body without applying the change again', async () => {
      const ws = await makeWorkspace(db.knex, t.services);
      const wsKey = await makeKey(db.knex, t.services, { workspaceId: ws.id });
      const idem = fresh('patch');
      const patch = () => t.request.patch('/v1/workspace').set('Authorization', wsKey.auth).set('Idempotency-Key', idem).send({ name: 'Renamed by the key' });
      const first = await patch().expect(200);
      assert.equal(first.body.name, 'Renamed by the key');
      await db.knex('workspaces').where({ id: ws.id }).update({ name: 'Changed meanwhile' });
      const replay = await patch();
      assertReplayOf(replay, first);
      assert.equal(replay.body.name, 'Renamed by the key');
      assert.equal((await db.knex('workspaces').where({ id: ws.id }).first()).name, 'Changed meanwhile', 'the replay did not write');
    });

    it('stores a streamed or Buffer body as the bytes sent and replays them identically', async () => {
      for (const as of ['stream', 'buffer']) {
        const idem = fresh(`csv-${as}`);
        const tag = fresh('tag');
        const first = await post(t, '/v1/test/effects/csv', { tag, note: as }, idem).buffer(true).expect(201);
        assert.match(first.headers['content-type'], /^text\/csv/);
        assert.equal(first.text, `tag,name\n${tag},Zoë\n`, 'the first response is the whole body, not a serialised stream object');
        assert.equal((await keyRow(idem)).response_body, first.text);
        const replay = await post(t, '/v1/test/effects/csv', { tag, note: as }, idem).buffer(true);
        assertReplayOf(replay, first);
        assert.equal(await countEffects(db.knex, tag), 1);
      }
    });

    it('refuses to store a binary body it could not replay byte for byte: 500 internal_error, nothing kept', async () => {
      const idem = fresh('binary');
      const tag = fresh('tag');
      assertProblem(await post(t, '/v1/test/effects/csv', { tag, note: 'binary' }, idem), 500, 'internal_error');
      assert.equal(await countKeyRows(idem), 0);
      assert.equal(await countEffects(db.knex, tag), 0);
      // Without a key there is nothing to store, and the route answers normally.
      await post(t, '/v1/test/effects/csv', { tag, note: 'binary' }).expect(201);
    });

    it('replays a response without a body with its own status (202), not as 204', async () => {
      const idem = fresh('accepted');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects/accepted', { tag }, idem).expect(202);
      const replay = await post(t, '/v1/test/effects/accepted', { tag }, idem);
      assertReplayOf(replay, first);
      assert.equal(control.calls.accepted, 1);
      assert.equal(await countEffects(db.knex, tag), 1);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('the same key for a different request', () => {
    it('answers 409 idempotency_key_reused for a different body and runs nothing', async () => {
      const idem = fresh('reuse-body');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      const other = await post(t, '/v1/test/effects', { tag, note: 'different' }, idem);
      assertProblem(other, 409, 'idempotency_key_reused');
      assert.equal(other.headers['idempotent-replayed'], undefined);
      assert.ok(!other.text.includes(first.body.nonce), 'the stored response is not leaked');
      assert.equal(control.calls.create, 1);
      assert.equal(await countEffects(db.knex, tag), 1);
      // The stored response is intact: the original request still replays.
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem), first);
    });

    it('answers 409 idempotency_key_reused for a different path or method and runs nothing', async () => {
      const idem = fresh('reuse-route');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      const name = fresh('key-name');

      const otherPath = await post(t, '/v1/api-keys', apiKeyBody(name), idem);
      assertProblem(otherPath, 409, 'idempotency_key_reused');
      const samePathOtherBodyRoute = await post(t, '/v1/test/effects/accepted', { tag }, idem);
      assertProblem(samePathOtherBodyRoute, 409, 'idempotency_key_reused');
      const otherMethod = await t.request.delete(`/v1/test/effects/${tag}`).set('Authorization', key.auth).set('Idempotency-Key', idem);
      assertProblem(otherMethod, 409, 'idempotency_key_reused');
      const patch = await t.request.patch('/v1/workspace').set('Authorization', key.auth).set('Idempotency-Key', idem).send({ reopen_resolved_on_reply: true });
      assertProblem(patch, 409, 'idempotency_key_reused');

      assert.equal(await countApiKeysNamed(name), 0);
      assert.equal(await countEffects(db.knex, tag), 1, 'the DELETE did not run');
      assert.equal(await countEffects(db.knex, `deleted:${tag}`), 0);
      assert.deepEqual(control.calls, { create: 1 });
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem), first);
    });

    it('answers 409 idempotency_key_reused for the same route on another resource id', async () => {
      const a = await makeKey(db.knex, t.services, { name: fresh('a') });
      const b = await makeKey(db.knex, t.services, { name: fresh('b') });
      const idem = fresh('reuse-id');
      await t.request.delete(`/v1/api-keys/${a.id}`).set('Authorization', key.auth).set('Idempotency-Key', idem).expect(200);
      const other = await t.request.delete(`/v1/api-keys/${b.id}`).set('Authorization', key.auth).set('Idempotency-Key', idem);
      assertProblem(other, 409, 'idempotency_key_reused');
      assert.equal((await db.knex('api_keys').where({ id: b.id }).first()).revoked_at, null, 'key b was not revoked');
    });

    it('keeps keys per workspace: another workspace using the same key runs its own request and never gets the first body', async () => {
      const ws2 = await makeWorkspace(db.knex, t.services);
      const key2 = await makeKey(db.knex, t.services, { workspaceId: ws2.id });
      const idem = fresh('tenant');
      const tag = fresh('tag');

      const mine = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      const theirs = await post(t, '/v1/test/effects', { tag }, idem, key2.auth).expect(201);
      assert.equal(theirs.headers['idempotent-replayed'], undefined);
      assert.equal(theirs.body.workspace_id, ws2.id);
      assert.notEqual(theirs.body.nonce, mine.body.nonce);
      assert.ok(!theirs.text.includes(mine.body.nonce));

      // A different body under the same key is a new request there too, not a reuse.
      const idem2 = fresh('tenant-body');
      await post(t, '/v1/test/effects', { tag }, idem2).expect(201);
      const otherBody = await post(t, '/v1/test/effects', { tag, note: 'theirs' }, idem2, key2.auth).expect(201);
      assert.equal(otherBody.body.workspace_id, ws2.id);

      // Each workspace replays its own response.
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem), mine);
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem, key2.auth), theirs);
      assert.equal(await countEffects(db.knex, tag), 4);
      const rows = await db.knex('idempotency_keys').where({ key: idem }).orderBy('workspace_id');
      assert.deepEqual(rows.map((r) => r.workspace_id).sort(), ['ws_default', ws2.id].sort());
    });

    it('shares keys between the API keys of one workspace (keys are scoped to the workspace)', async () => {
      const sibling = await makeKey(db.knex, t.services, { name: fresh('sibling') });
      const idem = fresh('sibling');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem, sibling.auth), first);
      assert.equal(await countEffects(db.knex, tag), 1);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('validating the header', () => {
    it('accepts a key of exactly 255 printable characters, spaces and punctuation included', async () => {
      const idem = `${fresh('k')} ~!@#$%^&*()"'<>{}`.padEnd(255, 'x');
      assert.equal(idem.length, 255);
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem), first);
    });

    it('rejects a key longer than 255 characters with 400 bad_request and runs nothing', async () => {
      const idem = fresh('long').padEnd(256, 'x');
      const tag = fresh('tag');
      assertProblem(await post(t, '/v1/test/effects', { tag }, idem), 400, 'bad_request');
      assert.equal(await countEffects(db.knex, tag), 0);
      assert.equal(await countKeyRows(idem), 0);
      assert.equal(control.calls.create, undefined);
    });

    it('rejects a key with a tab or a non-ASCII character with 400 bad_request and runs nothing', async () => {
      const tag = fresh('tag');
      for (const idem of [`tab\tinside-${randomUUID()}`, `caf\u00e9-${randomUUID()}`]) {
        assertProblem(await post(t, '/v1/test/effects', { tag }, idem), 400, 'bad_request');
        assert.equal(await countKeyRows(idem), 0);
      }
      assert.equal(await countEffects(db.knex, tag), 0);
    });

    it('never lets a key with other control characters reach the handler (Node refuses the request with 400)', async () => {
      const server = http.createServer(t.app.callback()).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      try {
        const { port } = server.address() as AddressInfo;
        const tag = fresh('tag');
        const body = JSON.stringify({ tag });
        for (const ctl of ['\x01', '\x1b', '\x7f']) {
          const raw = await new Promise<string>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => {
              s.write(Buffer.from(
                `POST /v1/test/effects HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${key.auth}\r\n` +
                `Idempotency-Key: bad${ctl}key\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
                `Connection: close\r\n\r\n${body}`, 'latin1'));
            });
            let out = '';
            s.on('data', (d) => { out += d.toString('latin1'); });
            s.on('end', () => resolve(out));
            s.on('error', reject);
          });
          assert.match(raw, /^HTTP\/1\.1 400 /, `control character ${JSON.stringify(ctl)}`);
        }
        assert.equal(await countEffects(db.knex, tag), 0);
      } finally {
        await new Promise((r) => server.close(r));
      }
    });

    it('rejects an empty or blank Idempotency-Key with 400 bad_request and runs nothing', async () => {
      const tag = fresh('tag');
      for (const idem of ['', '   ']) {
        assertProblem(await post(t, '/v1/test/effects', { tag }, idem), 400, 'bad_request');
      }
      assert.equal(await countEffects(db.knex, tag), 0);
      assert.equal(await countKeyRows(''), 0);
    });

    it('rejects a request carrying two Idempotency-Key headers with 400 bad_request', async () => {
      const tag = fresh('tag');
      const a = fresh('dup-a');
      const b = fresh('dup-b');
      const res = await t.request.post('/v1/test/effects').set('Authorization', key.auth)
        .set('Idempotency-Key', [a, b] as unknown as string).send({ tag });
      assertProblem(res, 400, 'bad_request');
      assert.equal(await countEffects(db.knex, tag), 0);
      assert.equal(await countKeyRows(`${a}, ${b}`), 0);
    });

    it('ignores Idempotency-Key on GET, even an invalid one, and stores nothing', async () => {
      const idem = fresh('get');
      const a = await t.request.get('/v1/me').set('Authorization', key.auth).set('Idempotency-Key', idem).expect(200);
      const b = await t.request.get('/v1/me').set('Authorization', key.auth).set('Idempotency-Key', idem).expect(200);
      assert.equal(a.headers['idempotent-replayed'], undefined);
      assert.equal(b.headers['idempotent-replayed'], undefined);
      assert.equal(await countKeyRows(idem), 0);
      await t.request.get('/v1/me').set('Authorization', key.auth).set('Idempotency-Key', 'x'.repeat(300)).expect(200);
      await t.request.get('/v1/api-keys').set('Authorization', key.auth).set('Idempotency-Key', '').expect(200);
      // A key already used for a POST does not turn a GET into a replay.
      const tag = fresh('tag');
      const used = fresh('used');
      await post(t, '/v1/test/effects', { tag }, used).expect(201);
      const get = await t.request.get('/v1/me').set('Authorization', key.auth).set('Idempotency-Key', used).expect(200);
      assert.equal(get.headers['idempotent-replayed'], undefined);
      assert.equal(get.body.id, key.id);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('what is not stored', () => {
    it('stores nothing for a 422 validation error, so the corrected body with the same key succeeds once', async () => {
      const idem = fresh('invalid');
      const name = fresh('key-name');
      const bad = await post(t, '/v1/api-keys', { name, scopes: ['no:such:scope'] }, idem);
      assertProblem(bad, 422, 'validation_error');
      assert.equal(await countKeyRows(idem), 0);
      const missing = await post(t, '/v1/api-keys', { name }, idem);
      assertProblem(missing, 422, 'validation_error');
      assert.equal(await countKeyRows(idem), 0);

      const good = await post(t, '/v1/api-keys', apiKeyBody(name), idem).expect(201);
      assert.equal(good.headers['idempotent-replayed'], undefined);
      assertReplayOf(await post(t, '/v1/api-keys', apiKeyBody(name), idem), good);
      assert.equal(await countApiKeysNamed(name), 1);
    });

    it('stores nothing for a request refused before its handler (invalid JSON, missing scope), so the key stays usable', async () => {
      const idem = fresh('refused');
      const tag = fresh('tag');
      const json = await t.request.post('/v1/test/effects').set('Authorization', key.auth).set('Idempotency-Key', idem)
        .set('Content-Type', 'application/json').send('{"tag": ');
      assertProblem(json, 400, 'invalid_json');
      const reader = await makeKey(db.knex, t.services, { scopes: ['read:tickets'] });
      const forbidden = await post(t, '/v1/api-keys', apiKeyBody(fresh('n')), idem, reader.auth);
      assertProblem(forbidden, 403, 'forbidden');
      const unauthorized = await post(t, '/v1/test/effects', { tag }, idem, 'Bearer td_live_nope');
      assertProblem(unauthorized, 401, 'unauthorized');
      assert.equal(await countKeyRows(idem), 0);

      await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      assert.equal(await countEffects(db.knex, tag), 1);
    });

    it('stores nothing for a validation or permission error raised inside the handler', async () => {
      const pastIdem = fresh('past');
      const past = await post(t, '/v1/api-keys', { ...apiKeyBody(fresh('n')), expires_at: '2001-01-01T00:00:00Z' }, pastIdem);
      assertProblem(past, 422, 'validation_error');
      assert.equal(await countKeyRows(pastIdem), 0);

      const limited = await makeKey(db.knex, t.services, { scopes: ['manage:keys'] });
      const idem = fresh('beyond');
      const name = fresh('key-name');
      const beyond = await post(t, '/v1/api-keys', { name, scopes: ['read:tickets'] }, idem, limited.auth);
      assertProblem(beyond, 403, 'forbidden');
      assert.equal(await countKeyRows(idem), 0);
      // Same key, same request, from a key that may grant the scope: runs.
      await post(t, '/v1/api-keys', { name, scopes: ['read:tickets'] }, idem).expect(201);
      assert.equal(await countApiKeysNamed(name), 1);
    });

    it('rolls back the effect and the key when the handler throws (500 internal_error); a retry with the same key runs once', async () => {
      const idem = fresh('fault');
      const tag = fresh('tag');
      control.faultNext = true;
      const failed = await post(t, '/v1/test/effects', { tag }, idem);
      assertProblem(failed, 500, 'internal_error');
      assert.ok(!failed.text.includes('injected fault'), 'no internals reach the client');
      assert.equal(await countEffects(db.knex, tag), 0, 'the insert before the fault was rolled back');
      assert.equal(await countKeyRows(idem), 0, 'the key was rolled back with it');

      const retry = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      assert.equal(retry.headers['idempotent-replayed'], undefined);
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem), retry);
      assert.equal(await countEffects(db.knex, tag), 1);
      assert.equal(control.calls.create, 2);
    });

    it('does not store a 5xx the handler answers without throwing, and rolls its writes back', async () => {
      const idem = fresh('503');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects/unavailable', { tag }, idem).expect(503);
      assert.equal(await countKeyRows(idem), 0);
      assert.equal(await countEffects(db.knex, tag), 0);
      const again = await post(t, '/v1/test/effects/unavailable', { tag }, idem).expect(503);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.notEqual(again.body.nonce, first.body.nonce, 'the handler ran again');
      assert.equal(control.calls.unavailable, 2);
    });

    it('reports a lock timeout inside the handler as 500 internal_error, not as a key in progress', async () => {
      let release!: () => void;
      const released = new Promise<void>((r) => { release = r; });
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => { locked = r; });
      const holder = db.knex.transaction(async (trx) => {
        await trx.raw('SELECT pg_advisory_xact_lock(?)', [TEST_ADVISORY_LOCK]);
        locked();
        await released;
      });
      const idem = fresh('handler-lock');
      const tag = fresh('tag');
      try {
        await isLocked;
        const res = await post(t, '/v1/test/effects/lock', { tag }, idem);
        assertProblem(res, 500, 'internal_error');
        assert.equal(res.headers['retry-after'], undefined);
        assert.equal(await countKeyRows(idem), 0);
        assert.equal(await countEffects(db.knex, tag), 0);
      } finally {
        release();
        await holder;
      }
      await post(t, '/v1/test/effects/lock', { tag }, idem).expect(201);
      assert.equal(await countEffects(db.knex, tag), 1);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('concurrent requests with one key', () => {
    /** Checks one round of parallel duplicates; returns the response that ran. */
    function checkRound(responses: Res[], round: number): Res {
      for (const r of responses) {
        assert.ok(r.status < 500, `round ${round}: ${r.status} ${r.text}`);
      }
      const ran = responses.filter((r) => r.status === 201 && r.headers['idempotent-replayed'] === undefined);
      assert.equal(ran.length, 1, `round ${round}: exactly one request ran`);
      for (const r of responses) {
        if (r === ran[0]) continue;
        if (r.status === 409) {
          assert.equal(r.body.code, 'idempotency_key_in_progress', `round ${round}: ${r.text}`);
          assert.ok(r.headers['retry-after']);
        } else {
          assertReplayOf(r, ran[0]);
        }
      }
      return ran[0];
    }

    it('runs exactly one of 25 identical parallel POST /v1/api-keys per round over 20 rounds; the rest replay it or get 409 in progress', async function () {
      this.timeout(120_000);
      const rounds = 20;
      const parallel = 25;
      const stats = { replayed: 0, inProgress: 0 };
      for (let round = 0; round < rounds; round++) {
        const idem = fresh(`par-${round}`);
        const name = fresh(`par-name-${round}`);
        const responses = await Promise.all(Array.from({ length: parallel }, () => post(t, '/v1/api-keys', apiKeyBody(name), idem)));
        checkRound(responses, round);
        stats.replayed += responses.filter((r) => r.headers['idempotent-replayed'] === 'true').length;
        stats.inProgress += responses.filter((r) => r.status === 409).length;
        assert.equal(await countApiKeysNamed(name), 1, `round ${round}: exactly one key created`);
        assert.equal(await countKeyRows(idem), 1);
      }
      assert.equal(stats.replayed + stats.inProgress, rounds * (parallel - 1));
    });

    it('makes parallel duplicates of a request that holds its transaction wait for it and replay it (10 rounds × 25)', async function () {
      this.timeout(120_000);
      for (let round = 0; round < 10; round++) {
        const idem = fresh(`held-${round}`);
        const tag = fresh('tag');
        const responses = await Promise.all(Array.from({ length: 25 }, () => post(patient, '/v1/test/effects', { tag, hold_ms: 50 }, idem)));
        checkRound(responses, round);
        assert.equal(responses.filter((r) => r.status === 409).length, 0, 'within a 5 s lock timeout every duplicate replays');
        assert.equal(await countEffects(db.knex, tag), 1, `round ${round}`);
      }
    });

    it('gives parallel duplicates of a business error one stored answer: each replays it or is it, none keeps a write (10 rounds × 25)', async function () {
      // A refusal rolls back its claim and stores itself in a second transaction; a duplicate
      // waiting on the key may run in between. Whoever stores first, every client gets that answer.
      this.timeout(120_000);
      for (let round = 0; round < 10; round++) {
        const idem = fresh(`biz-par-${round}`);
        const tag = fresh('tag');
        const responses = await Promise.all(Array.from({ length: 25 }, () => post(patient, '/v1/test/effects/business-error', { tag, code: 'conflict' }, idem)));
        const original = responses.filter((r) => r.headers['idempotent-replayed'] === undefined);
        assert.equal(original.length, 1, `round ${round}: one answer is the stored one, the rest replay it: ${responses.map((r) => r.status).join(',')}`);
        assertProblem(original[0], 409, 'conflict');
        for (const r of responses) if (r !== original[0]) assertReplayOf(r, original[0]);
        assert.equal((await keyRow(idem)).response_body, original[0].text, `round ${round}: the stored body is the one answered`);
        assert.equal(await countEffects(db.knex, tag), 0, `round ${round}: no refused run kept its write`);
      }
    });

    it('gives parallel duplicates of a request outlasting the lock timeout 409 in progress, never a second effect (5 rounds × 25)', async function () {
      this.timeout(60_000);
      let inProgress = 0;
      for (let round = 0; round < 5; round++) {
        const idem = fresh(`slow-${round}`);
        const tag = fresh('tag');
        const responses = await Promise.all(Array.from({ length: 25 }, () => post(short, '/v1/test/effects', { tag, hold_ms: 600 }, idem)));
        checkRound(responses, round);
        inProgress += responses.filter((r) => r.status === 409).length;
        assert.equal(await countEffects(db.knex, tag), 1, `round ${round}`);
      }
      assert.ok(inProgress > 0, 'duplicates that waited out the 300 ms lock timeout were told the key is in progress');
    });

    it('runs exactly one request when parallel requests mix two bodies under one key; the other body gets 409', async function () {
      this.timeout(60_000);
      for (let round = 0; round < 5; round++) {
        const idem = fresh(`mixed-${round}`);
        const tag = fresh('tag');
        const bodies = Array.from({ length: 24 }, (_, i) => (i % 2 ? { tag, note: 'b' } : { tag, note: 'a' }));
        const responses = await Promise.all(bodies.map((b) => post(t, '/v1/test/effects', b, idem)));
        assert.equal(await countEffects(db.knex, tag), 1, `round ${round}`);
        const ran = responses.filter((r) => r.status === 201 && r.headers['idempotent-replayed'] === undefined);
        assert.equal(ran.length, 1);
        responses.forEach((r, i) => {
          assert.ok(r.status < 500, r.text);
          if (r === ran[0]) return;
          const sameBody = bodies[i].note === bodies[responses.indexOf(ran[0])].note;
          if (r.status === 201) {
            assert.ok(sameBody, 'only the same body replays');
            assertReplayOf(r, ran[0]);
          } else {
            assert.equal(r.status, 409);
            assert.ok(sameBody ? r.body.code === 'idempotency_key_in_progress' : ['idempotency_key_reused', 'idempotency_key_in_progress'].includes(r.body.code), r.text);
          }
        });
      }
    });

    it('answers 409 idempotency_key_in_progress with Retry-After within the lock timeout while the first request holds its transaction, then replays after it commits', async function () {
      this.timeout(20_000);
      const idem = fresh('inflight');
      const tag = fresh('tag');
      let firstDone = false;
      const first = post(short, '/v1/test/effects', { tag, hold_ms: 2000 }, idem).then((r) => { firstDone = true; return r; });
      await waitUntil('the first request holds its transaction', async () => (await sleepingSessions()) > 0);

      const started = Date.now();
      const second = await post(short, '/v1/test/effects', { tag, hold_ms: 2000 }, idem);
      const waited = Date.now() - started;
      assertProblem(second, 409, 'idempotency_key_in_progress');
      assert.match(second.headers['retry-after'], /^[1-9]\d*$/);
      assert.ok(waited >= 250, `waited ${waited} ms: at least the 300 ms lock timeout`);
      assert.ok(waited < 1500, `waited ${waited} ms: gave up after the lock timeout, not when the first finished`);
      assert.equal(firstDone, false, 'the first request was still running');
      // A different body cannot be judged yet either.
      assertProblem(await post(short, '/v1/test/effects', { tag, note: 'other' }, idem), 409, 'idempotency_key_in_progress');
      assert.equal(control.calls.create, 1);

      const firstRes = await first;
      assert.equal(firstRes.status, 201);
      const third = await post(short, '/v1/test/effects', { tag, hold_ms: 2000 }, idem);
      assertReplayOf(third, firstRes);
      assertProblem(await post(short, '/v1/test/effects', { tag, note: 'other' }, idem), 409, 'idempotency_key_reused');
      assert.equal(await countEffects(db.knex, tag), 1);
      assert.equal(control.calls.create, 1);
    });

    it('makes a duplicate that arrives while the first runs wait and replay it once it commits, within the lock timeout', async function () {
      this.timeout(20_000);
      const idem = fresh('wait-replay');
      const tag = fresh('tag');
      const first = post(patient, '/v1/test/effects', { tag, hold_ms: 400 }, idem).then((r) => r); // sent now
      await waitUntil('the first request holds its transaction', async () => (await sleepingSessions()) > 0);
      const second = await post(patient, '/v1/test/effects', { tag, hold_ms: 400 }, idem);
      const firstRes = await first;
      assert.equal(firstRes.status, 201);
      assertReplayOf(second, firstRes);
      assert.equal(await countEffects(db.knex, tag), 1);
      assert.equal(control.calls.create, 1);
    });

    it('lets a duplicate waiting on a first request that fails take the key over and run once', async function () {
      this.timeout(20_000);
      const idem = fresh('takeover-fail');
      const tag = fresh('tag');
      control.faultNext = true;
      const first = post(patient, '/v1/test/effects', { tag, hold_ms: 400 }, idem).then((r) => r); // sent now
      await waitUntil('the first request holds its transaction', async () => (await sleepingSessions()) > 0);
      const second = await post(patient, '/v1/test/effects', { tag, hold_ms: 400 }, idem);
      const firstRes = await first;
      assertProblem(firstRes, 500, 'internal_error');
      assert.equal(second.status, 201, second.text);
      assert.equal(second.headers['idempotent-replayed'], undefined);
      assert.equal(await countEffects(db.knex, tag), 1);
      assertReplayOf(await post(patient, '/v1/test/effects', { tag, hold_ms: 400 }, idem), second);
    });

    it('gives a client that disconnected before the answer the stored response on retry, with one effect', async function () {
      this.timeout(20_000);
      const idem = fresh('abort');
      const tag = fresh('tag');
      // The client gives up after 100 ms; the server commits at about 500 ms.
      await assert.rejects(post(t, '/v1/test/effects', { tag, hold_ms: 500 }, idem).timeout(100), /timeout/i);
      await waitUntil('the abandoned request committed', async () => (await keyRow(idem)) !== undefined);
      const row = await keyRow(idem);
      assert.equal(row.response_status, 201);

      const retry = await post(t, '/v1/test/effects', { tag, hold_ms: 500 }, idem);
      assert.equal(retry.status, 201);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(retry.text, row.response_body);
      assert.equal(retry.headers.location, row.response_headers.location);
      assert.equal(await countEffects(db.knex, tag), 1);
      assert.equal(control.calls.create, 1);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('retention', () => {
    const backdate = (idem: string, hours: number) =>
      db.knex('idempotency_keys').where({ key: idem }).update({ created_at: db.knex.raw(`now() - make_interval(hours => ?)`, [hours]) });

    const runCleanup = () => cleanupJob({ schedule: '* * * * * *', idempotencyRetentionHours: 24, webhookDeliveryRetentionDays: 30 })
      .run({ db: db.knex, logger: t.deps.logger, tick: new Date(), signal: new AbortController().signal });

    it('has the cleanup job delete keys older than 24 h and keep younger ones; a reaped key then runs as a new request', async () => {
      const old = fresh('expired');
      const young = fresh('young');
      const oldTag = fresh('tag');
      const youngTag = fresh('tag');
      const oldFirst = await post(t, '/v1/test/effects', { tag: oldTag }, old).expect(201);
      const youngFirst = await post(t, '/v1/test/effects', { tag: youngTag }, young).expect(201);
      await backdate(old, 25);
      await backdate(young, 23);

      await runCleanup();
      assert.equal(await countKeyRows(old), 0, 'the 25 h old key is gone');
      assert.equal(await countKeyRows(young), 1, 'the 23 h old key is kept');

      const reused = await post(t, '/v1/test/effects', { tag: oldTag }, old).expect(201);
      assert.equal(reused.headers['idempotent-replayed'], undefined);
      assert.notEqual(reused.body.id, oldFirst.body.id);
      assert.equal(await countEffects(db.knex, oldTag), 2);
      assertReplayOf(await post(t, '/v1/test/effects', { tag: oldTag }, old), reused);

      assertReplayOf(await post(t, '/v1/test/effects', { tag: youngTag }, young), youngFirst);
      assert.equal(await countEffects(db.knex, youngTag), 1);
    });

    it('takes over a key past retention that the cleanup job has not removed yet, whatever its old request was', async () => {
      const idem = fresh('stale');
      const tag = fresh('tag');
      const first = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      await backdate(idem, 25);

      const again = await post(t, '/v1/test/effects', { tag }, idem).expect(201);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.notEqual(again.body.id, first.body.id);
      assert.equal(await countEffects(db.knex, tag), 2);
      const row = await keyRow(idem);
      assert.equal(row.response_body, again.text, 'the row now holds the new response');
      assert.ok(Date.now() - new Date(row.created_at).getTime() < 60_000, 'and a fresh created_at');
      assertReplayOf(await post(t, '/v1/test/effects', { tag }, idem), again);

      // A stale key may be reused for a different request altogether.
      await backdate(idem, 25);
      const name = fresh('key-name');
      const other = await post(t, '/v1/api-keys', apiKeyBody(name), idem).expect(201);
      assert.equal(other.headers['idempotent-replayed'], undefined);
      assert.equal(await countApiKeysNamed(name), 1);
      assert.equal((await keyRow(idem)).path, '/v1/api-keys');
    });
  });

  describe('the key\'s one write', () => {
    it('a row another writer stored meanwhile without the key\'s lock fails the request instead of applying it twice; the row stays the other writer\'s', async () => {
      const idem = fresh('unlocked-writer');
      const tag = fresh('unlocked-tag');
      const first = post(t, '/v1/test/effects', { tag, hold_ms: 800 }, idem).then((r) => r);
      // Claimed and holding: the request's transaction sleeps after its effect.
      for (let i = 0; ; i++) {
        const { rows } = await db.knex.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'SELECT pg_sleep%'`);
        if (rows[0].n > 0) break;
        assert.ok(i < 200, 'the request never reached its hold');
        await new Promise((r) => setTimeout(r, 10));
      }
      // What an older replica (a row claim, no advisory lock) would commit during a rolling upgrade.
      await db.knex('idempotency_keys').insert({
        workspace_id: 'ws_default', key: idem, fingerprint: 'other', method: 'POST', path: '/v1/test/effects',
        response_status: 201, response_type: 'application/json', response_headers: {}, response_body: '{"from":"the other writer"}',
      });
      const r = await first;
      assert.equal(r.status, 500, r.text);
      assert.equal(await countEffects(db.knex, tag), 0, 'the effect rolled back with the refused save');
      assert.equal((await keyRow(idem)).response_body, '{"from":"the other writer"}');
    });

    it('writes the key\'s row once: its first version carries the stored response', async () => {
      const idem = fresh('one-write');
      await post(t, '/v1/test/effects', { tag: fresh('one-write-tag') }, idem).expect(201);
      // xmax 0: the row was inserted with its response, never updated after a claim.
      const { rows } = await db.knex.raw(`SELECT xmax::text AS xmax, response_status FROM idempotency_keys WHERE workspace_id = 'ws_default' AND key = ?`, [idem]);
      assert.deepEqual(rows, [{ xmax: '0', response_status: 201 }]);
    });
  });

  describe('the claim\'s lock timeout', () => {
    it('bounds only the claim: the handler runs with the session\'s own lock_timeout', async () => {
      const probe = createTestApp(db.knex, {
        extraRoutes: [{
          method: 'post', path: '/v1/test/lock-timeout', tag: 'test', auth: 'key', summary: 'Report lock_timeout inside the request',
          body: { type: 'object' },
          responses: { 200: { description: 'The setting', schema: { type: 'object' } } },
          async handler(ctx) {
            const r = await ctx.state.db.raw('SHOW lock_timeout');
            ctx.body = { lock_timeout: r.rows[0].lock_timeout };
          },
        }],
      });
      const session = (await db.knex.raw('SHOW lock_timeout')).rows[0].lock_timeout;
      const withKey = await probe.request.post('/v1/test/lock-timeout').set('Authorization', key.auth).set('Idempotency-Key', fresh('lt')).send({}).expect(200);
      assert.equal(withKey.body.lock_timeout, session, 'restored after the claim');
      const without = await probe.request.post('/v1/test/lock-timeout').set('Authorization', key.auth).send({}).expect(200);
      assert.equal(without.body.lock_timeout, session);
    });
  });
});
