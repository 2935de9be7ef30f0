/**
 * Outbound webhooks over the HTTP API (SPEC §7, §4.1): registering endpoints (url checks,
 * secrets, events), listing/reading/changing/deleting them, rotating secrets, test pings,
 * the delivery log, replays, scopes and tenancy. Deliveries are made by a real worker
 * (createWebhookWorker().drain()) to a real local receiver; time moves with a FakeClock.
 *
 * Two apps share the database: `t` allows private targets (so the 127.0.0.1 receiver is
 * reachable), `strict` does not (the SSRF checks at registration).
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { ALL_SCOPES } from '../../src/kernel/scopes.js';
import { deliveryQueue } from '../../src/webhooks/delivery-queue.js';
import { createWebhookWorker } from '../../src/webhooks/webhook-worker.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';
import { startReceiver, type Receiver, type ReceivedRequest } from '../helpers/webhook-receiver.js';

const START = '2026-11-21T12:00:00.000Z';
const HOUR = 3600_000;
const UNKNOWN_ENDPOINT = `whk_${'0'.repeat(26)}`;
const UNKNOWN_DELIVERY = `dlv_${'0'.repeat(26)}`;
const PUBLIC_URL = 'https://hooks.example.com/topicdesk';
const SCHEDULE = [30, 120, 600, 3600, 10800, 21600, 43200, 86400];

const ENDPOINT_KEYS = ['id', 'url', 'events', 'description', 'enabled', 'disabled_reason', 'disabled_at', 'failing_since',
  'previous_secret_expires_at', 'created_at', 'updated_at'].sort();
const DELIVERY_KEYS = ['id', 'event_id', 'event', 'endpoint_id', 'status', 'attempts', 'next_attempt_at', 'created_at'].sort();
const ATTEMPT_KEYS = ['at', 'status_code', 'duration_ms', 'error', 'response_excerpt'].sort();

type Res = { status: number; body: any; headers: Record<string, string>; text: string };

/** Independent signing code (not src/): GitHub-style and Standard Webhooks. */
const xSignature = (secret: string, body: string) => `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('hex')}`;
function standardSignature(secret: string, id: string, timestamp: string, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

describe('webhooks API', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(START);
  let t: TestApp;
  let strict: TestApp;
  /** Every secret a test has seen or sent (valid or not): none may reach a log line. */
  const secretsSeen = new Set<string>();
  const remember = (s: string | null | undefined) => { if (s) secretsSeen.add(s); return s; };

  before(() => {
    t = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: true } } });
    strict = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: false } } });
  });

  const receivers: Receiver[] = [];
  async function receiver(): Promise<Receiver> {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  }

  beforeEach(async () => {
    clock.set(START);
    // Each test drains the whole database: what earlier tests left queued or outstanding
    // (to receivers long closed) must not be attempted again in this one.
    await db.knex('webhook_fanout_queue').del();
    await db.knex('webhook_deliveries').whereIn('status', ['pending', 'failed'])
      .update({ status: 'dead', next_attempt_at: null, in_flight_since: null });
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });

  /** One whole worker pass at the clock's time (fan-out, attempts, outcomes recorded). */
  async function drain(app: TestApp = t) {
    const worker = createWebhookWorker({
      db: db.knex, logger: app.deps.logger, clock, config: app.config.webhooks, webhooks: app.services.webhooks, random: () => 0.5,
    });
    try {
      return await worker.drain();
    } finally {
      await worker.stop();
    }
  }

  /** A workspace of its own with a key (every scope unless told) and request helpers. */
  async function desk(opts: { app?: TestApp; scopes?: string[] } = {}) {
    const app = opts.app ?? t;
    const ws = await makeWorkspace(db.knex, app.services);
    const key = await makeKey(db.knex, app.services, { workspaceId: ws.id, scopes: opts.scopes });
    const auth = key.auth;
    const call = (method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown, headers: Record<string, string> = {}) => {
      let r = app.request[method](path).set('Authorization', auth);
      for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
      return (body === undefined ? r : r.send(body as object)) as unknown as Promise<Res>;
    };
    const get = (path: string) => call('get', path);
    const post = (path: string, body?: unknown, headers?: Record<string, string>) => call('post', path, body, headers);
    const patch = (path: string, body: unknown) => call('patch', path, body);
    const del = (path: string) => call('delete', path);
    const create = async (body: Record<string, unknown>) => {
      const res = await post('/v1/webhooks', { events: ['*'], ...body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      remember(res.body.secret);
      return res.body;
    };
    const ping = async (endpointId: string) => {
      const res = await post(`/v1/webhooks/${endpointId}/test`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body;
    };
    const delivery = async (id: string) => {
      const res = await get(`/v1/webhook-deliveries/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const endpoint = async (id: string) => {
      const res = await get(`/v1/webhooks/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const newContact = async (email: string) => {
      const res = await post('/v1/contacts', { email, name: 'Sarah Miller' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    return { ws, key, auth, call, get, post, patch, del, create, ping, delivery, endpoint, newContact };
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

  const endpointRow = (id: string) => db.knex('webhook_endpoints').where({ id }).first();
  const deliveryRows = (where: Record<string, unknown>) => db.knex('webhook_deliveries').where(where).orderBy('created_at');
  const bodyOf = (r: ReceivedRequest) => JSON.parse(r.body);

  // ---------------------------------------------------------------------------------------
  describe('POST /v1/webhooks', () => {
    it('registers an endpoint: 201, Location, every field, a generated whsec_ secret of 32 bytes', async () => {
      const d = await desk();
      const res = await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['ticket.created', 'message.received'], description: 'CRM sync' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      remember(res.body.secret);
      assert.match(res.body.id, /^whk_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.headers.location, `/v1/webhooks/${res.body.id}`);
      assert.deepEqual(res.body, {
        id: res.body.id,
        url: PUBLIC_URL,
        events: ['ticket.created', 'message.received'],
        description: 'CRM sync',
        enabled: true,
        disabled_reason: null,
        disabled_at: null,
        failing_since: null,
        previous_secret_expires_at: null,
        created_at: START,
        updated_at: START,
        secret: res.body.secret,
      });
      const secret: string = res.body.secret;
      assert.match(secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
      const raw = Buffer.from(secret.slice('whsec_'.length), 'base64');
      assert.equal(raw.length, 32);
      assert.equal(raw.toString('base64'), secret.slice('whsec_'.length), 'standard base64, canonical');
      const row = await endpointRow(res.body.id);
      assert.equal(row.workspace_id, d.ws.id);
      assert.equal(row.secret, secret);
    });

    it('generates a different secret for every endpoint', async () => {
      const d = await desk();
      const a = await d.create({ url: PUBLIC_URL });
      const b = await d.create({ url: PUBLIC_URL });
      assert.notEqual(a.secret, b.secret);
      assert.notEqual(a.id, b.id);
    });

    it('takes a given secret in both forms: whsec_ + base64 (24-64 bytes) and 24-128 printable characters', async () => {
      const d = await desk();
      const given = [
        remember(`whsec_${randomBytes(24).toString('base64')}`)!,
        remember(`whsec_${randomBytes(64).toString('base64')}`)!,
        remember('a-plain-secret_of_32chars!#$%&()')!,
        remember('x'.repeat(128))!,
      ];
      for (const secret of given) {
        const res = await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], secret });
        assert.equal(res.status, 201, `${secret}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.secret, secret);
        assert.equal((await endpointRow(res.body.id)).secret, secret);
      }
    });

    describe('bad secrets: 422 on the field secret, never echoed back', () => {
      const cases: Array<[string, () => string]> = [
        ['too short', () => 'short-secret-123'],
        ['23 characters', () => 'abcdefghijklmnopqrstuvw'],
        ['129 characters', () => 'y'.repeat(129)],
        ['bad base64 after whsec_', () => `whsec_${'*'.repeat(20)}!!notbase64`],
        ['base64 with a bad length after whsec_', () => `whsec_${randomBytes(32).toString('base64').slice(0, -2)}`],
        ['10 bytes after whsec_', () => `whsec_${randomBytes(10).toString('base64')}`],
        ['65 bytes after whsec_', () => `whsec_${randomBytes(65).toString('base64')}`],
        ['spaces', () => 'this secret has spaces inside it'],
        ['a control character', () => `tab\there-and-then-some-more-text`],
      ];
      for (const [name, make] of cases) {
        it(name, async () => {
          const d = await desk();
          const secret = remember(make())!;
          const res = await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], secret });
          assertInvalid(res, 'secret');
          assert.ok(!res.text.includes(secret), `the rejected secret is echoed: ${res.text}`);
          assert.ok(!res.text.includes(JSON.stringify(secret).slice(1, -1)), `the rejected secret is echoed (JSON-escaped): ${res.text}`);
          const encoded = secret.replace(/^whsec_/, '');
          assert.ok(!res.text.includes(encoded), `the rejected secret's body is echoed: ${res.text}`);
          assert.equal(Number((await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0].n), 0);
        });
      }

      it('longer than the schema allows (201+ characters): not echoed either, not even its start', async () => {
        const d = await desk();
        const secret = remember(`S3cr3t${randomBytes(150).toString('hex')}`)!; // 306 characters
        const res = await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], secret });
        assertInvalid(res, 'secret');
        assert.ok(!res.text.includes(secret.slice(0, 40)), `the start of the rejected secret is echoed: ${res.text}`);
      });
    });

    describe('events', () => {
      it('keeps an explicit list, each name once, in the order given', async () => {
        const d = await desk();
        const w = await d.create({ url: PUBLIC_URL, events: ['ticket.created', 'contact.created', 'ticket.created', 'sla.breached', 'contact.created'] });
        assert.deepEqual(w.events, ['ticket.created', 'contact.created', 'sla.breached']);
        assert.deepEqual((await endpointRow(w.id)).events, ['ticket.created', 'contact.created', 'sla.breached']);
      });

      it('takes "*" for every event', async () => {
        const d = await desk();
        const w = await d.create({ url: PUBLIC_URL, events: ['*'] });
        assert.deepEqual(w.events, ['*']);
      });

      it('normalises "*" mixed with names to ["*"]', async () => {
        const d = await desk();
        const w = await d.create({ url: PUBLIC_URL, events: ['ticket.created', '*', 'message.sent', '*'] });
        assert.deepEqual(w.events, ['*']);
        assert.deepEqual((await d.endpoint(w.id)).events, ['*']);
      });

      it('refuses an unknown event name, an empty list, a missing list and a non-list', async () => {
        const d = await desk();
        assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['ticket.created', 'ticket.exploded'] }), 'events[1]');
        assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['ping'] }), 'events[0]');
        assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: [] }), 'events');
        assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL }), 'events');
        assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: '*' }), 'events');
        assert.equal(Number((await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0].n), 0);
      });
    });

    describe('url (allowPrivateTargets false)', () => {
      const refused: Array<[string, RegExp?]> = [
        ['not a url'],
        ['/relative/path'],
        ['ftp://hooks.example.com/x'],
        ['http://hooks.example.com/x', /https/],
        ['https://user:pass@hooks.example.com/x', /credentials/],
        ['https://token@hooks.example.com/x', /credentials/],
        ['https://hooks.example.com/x#frag', /fragment/],
        ['https://127.0.0.1/hook', /127\.0\.0\.1.*loopback/],
        ['http://127.0.0.1/hook'],
        ['https://10.0.0.1/hook', /10\.0\.0\.1.*private/],
        ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254/],
        ['http://[::1]/'],
        ['https://[::1]/', /::1.*loopback/],
        ['https://[::ffff:127.0.0.1]/', /loopback/],
        ['https://[::ffff:169.254.169.254]/', /public addresses/],
        ['https://0.0.0.0/', /0\.0\.0\.0/],
        ['https://[::]/', /public addresses/],
        ['https://100.64.0.1/', /100\.64\.0\.1/],
        ['https://192.168.1.1/', /192\.168\.1\.1.*private/],
        ['https://172.16.0.1/', /172\.16\.0\.1.*private/],
        ['https://[fd00::1]/', /fd00::1/],
        ['https://[fe80::1]/', /fe80::1/],
        ['https://localhost/hook', /localhost/],
        ['https://LOCALHOST:8443/hook', /localhost/],
        ['https://foo.localhost/hook', /foo\.localhost/],
        ['http://0x7f000001/'],
        ['https://0x7f000001/', /127\.0\.0\.1/],
        ['http://127.1/'],
        ['https://127.1/', /127\.0\.0\.1/],
        ['https://2130706433/', /127\.0\.0\.1/],
      ];
      for (const [url, reason] of refused) {
        it(`refuses ${url}`, async () => {
          const d = await desk({ app: strict });
          const res = await d.post('/v1/webhooks', { url, events: ['*'] });
          assertInvalid(res, 'url');
          if (reason) {
            const detail = res.body.details.find((x: any) => x.field === 'url');
            assert.match(detail.error, reason, JSON.stringify(detail));
          }
          assert.equal(Number((await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0].n), 0);
        });
      }

      it('refuses localhost written with the root dot (localhost., foo.localhost.)', async () => {
        const d = await desk({ app: strict });
        for (const url of ['https://localhost./hook', 'https://foo.localhost./hook']) {
          assertInvalid(await d.post('/v1/webhooks', { url, events: ['*'] }), 'url');
        }
      });

      it('accepts a public https URL (with a port and a query)', async () => {
        const d = await desk({ app: strict });
        for (const url of [PUBLIC_URL, 'https://hooks.example.com:8443/in?source=topicdesk', 'https://93.184.216.34/hook']) {
          const res = await d.post('/v1/webhooks', { url, events: ['*'] });
          assert.equal(res.status, 201, `${url}: ${JSON.stringify(res.body)}`);
          remember(res.body.secret);
          assert.equal(res.body.url, url);
        }
      });

      it('with allowPrivateTargets true: http and loopback are accepted, credentials and fragments still refused', async () => {
        const d = await desk();
        for (const url of ['http://127.0.0.1:9/hook', 'http://localhost:9/hook', 'https://10.0.0.1/hook']) {
          const res = await d.post('/v1/webhooks', { url, events: ['*'] });
          assert.equal(res.status, 201, `${url}: ${JSON.stringify(res.body)}`);
          remember(res.body.secret);
        }
        assertInvalid(await d.post('/v1/webhooks', { url: 'http://u:p@127.0.0.1:9/', events: ['*'] }), 'url');
        assertInvalid(await d.post('/v1/webhooks', { url: 'http://127.0.0.1:9/#x', events: ['*'] }), 'url');
        assertInvalid(await d.post('/v1/webhooks', { url: 'ftp://127.0.0.1/', events: ['*'] }), 'url');
      });
    });

    it('refuses unknown fields, a bad enabled and a too long description', async () => {
      const d = await desk();
      assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], retries: 3 }), 'retries');
      assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], previous_secret: 'x'.repeat(30) }), 'previous_secret');
      assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], enabled: 'yes' }), 'enabled');
      assertInvalid(await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'], description: 'd'.repeat(501) }), 'description');
      assertInvalid(await d.post('/v1/webhooks', { events: ['*'] }), 'url');
      assert.equal(Number((await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0].n), 0);
    });

    it('may create an endpoint disabled', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL, enabled: false });
      assert.equal(w.enabled, false);
      assert.equal(w.disabled_at, START);
      assert.equal(typeof w.disabled_reason, 'string');
    });

    describe('at most maxEndpointsPerWorkspace endpoints', () => {
      let capped: TestApp;
      before(() => {
        capped = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: true, maxEndpointsPerWorkspace: 2 } } });
      });

      it('the third endpoint is a 409 conflict; another workspace still has room; deleting one makes room', async () => {
        const d = await desk({ app: capped });
        const a = await d.create({ url: PUBLIC_URL });
        await d.create({ url: PUBLIC_URL, enabled: false });
        const third = await d.post('/v1/webhooks', { url: PUBLIC_URL, events: ['*'] });
        assertProblem(third, 409, 'conflict');
        assert.equal(third.body.secret, undefined);
        assert.equal(Number((await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0].n), 2);
        const other = await desk({ app: capped });
        await other.create({ url: PUBLIC_URL });
        assert.equal((await d.del(`/v1/webhooks/${a.id}`)).status, 204);
        await d.create({ url: PUBLIC_URL });
      });

      it('holds for two creates in concurrent transactions: never more than the maximum', async () => {
        // Interleaved by hand: A counts and inserts (uncommitted), then B counts and inserts.
        const d = await desk({ app: capped });
        await d.create({ url: PUBLIC_URL });
        const trxA = await db.knex.transaction();
        const trxB = await db.knex.transaction();
        const attempt = (trx: typeof trxA) => capped.services.webhooks.create(trx, d.ws.id, { url: PUBLIC_URL, events: ['*'] })
          .then((made) => { remember(made.secret); return 'created'; }, (err: any) => String(err.code ?? err));
        let outcomes: string[] = [];
        try {
          // A has counted and inserted, not committed yet.
          const a = await attempt(trxA);
          // B counts now: it either finishes (no lock) or waits for A (a lock); either is fine here.
          const b = attempt(trxB);
          await Promise.race([b, new Promise((r) => setTimeout(r, 300))]);
          await trxA.commit();
          outcomes = [a, await b];
          await trxB.commit();
        } finally {
          if (!trxA.isCompleted()) await trxA.rollback();
          if (!trxB.isCompleted()) await trxB.rollback();
        }
        const n = Number((await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id }).count({ n: '*' }))[0].n);
        assert.equal(n, 2, `endpoints after two concurrent creates with room for one (outcomes: ${outcomes.join(', ')})`);
      });
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('Idempotency-Key replays', () => {
    it('a replayed create answers the same endpoint with secret: null and creates nothing more', async () => {
      const d = await desk();
      const body = { url: PUBLIC_URL, events: ['ticket.created'], description: 'once' };
      const first = await d.post('/v1/webhooks', body, { 'Idempotency-Key': 'create-1' });
      assert.equal(first.status, 201);
      remember(first.body.secret);
      assert.match(first.body.secret, /^whsec_/);
      const again = await d.post('/v1/webhooks', body, { 'Idempotency-Key': 'create-1' });
      assert.equal(again.status, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.headers.location, `/v1/webhooks/${first.body.id}`);
      assert.deepEqual(again.body, { ...first.body, secret: null });
      const rows = await db.knex('webhook_endpoints').where({ workspace_id: d.ws.id });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].secret, first.body.secret, 'the endpoint keeps the secret first shown');
      const stored = await db.knex('idempotency_keys').where({ workspace_id: d.ws.id, key: 'create-1' }).first();
      assert.ok(!String(stored.response_body).includes(first.body.secret), 'the idempotency store never keeps the secret');
    });

    it('a replayed create with a given secret does not show it either', async () => {
      const d = await desk();
      const secret = remember(`whsec_${randomBytes(32).toString('base64')}`)!;
      const body = { url: PUBLIC_URL, events: ['*'], secret };
      const first = await d.post('/v1/webhooks', body, { 'Idempotency-Key': 'create-given' });
      assert.equal(first.body.secret, secret);
      const again = await d.post('/v1/webhooks', body, { 'Idempotency-Key': 'create-given' });
      assert.equal(again.status, 201);
      assert.equal(again.body.id, first.body.id);
      assert.equal(again.body.secret, null);
      assert.ok(!again.text.includes(secret));
    });

    it('a replayed rotation answers secret: null (same endpoint) and rotates once', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL });
      clock.advance(60_000);
      const first = await d.post(`/v1/webhooks/${w.id}/rotate-secret`, {}, { 'Idempotency-Key': 'rotate-1' });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      remember(first.body.secret);
      clock.advance(60_000);
      const again = await d.post(`/v1/webhooks/${w.id}/rotate-secret`, {}, { 'Idempotency-Key': 'rotate-1' });
      assert.equal(again.status, 200);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.body.id, w.id);
      assert.equal(again.body.secret, null);
      assert.deepEqual(again.body, { ...first.body, secret: null });
      const row = await endpointRow(w.id);
      assert.equal(row.secret, first.body.secret);
      assert.equal(row.previous_secret, w.secret, 'rotated once: the previous secret is the original one');
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('GET /v1/webhooks and GET /v1/webhooks/{id}', () => {
    it('lists the workspace\'s endpoints oldest first, without secrets, with offset and cursor paging', async () => {
      const d = await desk();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await d.create({ url: `${PUBLIC_URL}/${i}`, enabled: i % 2 === 0 })).id);
        clock.advance(1000);
      }
      const all = await d.get('/v1/webhooks');
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.items.map((w: any) => w.id), ids);
      assert.equal(all.body.total, 5);
      assert.equal(all.body.has_more, false);
      assert.equal(all.body.next_cursor, null);
      assert.equal(all.body.limit, 50);
      assert.equal(all.body.offset, 0);
      for (const w of all.body.items) {
        assert.deepEqual(Object.keys(w).sort(), ENDPOINT_KEYS);
        assert.ok(!('secret' in w));
      }
      for (const s of secretsSeen) assert.ok(!all.text.includes(s));

      const p1 = await d.get('/v1/webhooks?limit=2');
      assert.deepEqual(p1.body.items.map((w: any) => w.id), ids.slice(0, 2));
      assert.equal(p1.body.has_more, true);
      assert.equal(p1.body.total, 5);
      const p2 = await d.get(`/v1/webhooks?limit=2&cursor=${encodeURIComponent(p1.body.next_cursor)}`);
      assert.deepEqual(p2.body.items.map((w: any) => w.id), ids.slice(2, 4));
      const p3 = await d.get(`/v1/webhooks?limit=2&cursor=${encodeURIComponent(p2.body.next_cursor)}`);
      assert.deepEqual(p3.body.items.map((w: any) => w.id), ids.slice(4));
      assert.equal(p3.body.has_more, false);
      assert.equal(p3.body.next_cursor, null);
      const byOffset = await d.get('/v1/webhooks?limit=2&offset=3');
      assert.deepEqual(byOffset.body.items.map((w: any) => w.id), ids.slice(3, 5));
    });

    it('filters on enabled', async () => {
      const d = await desk();
      const on = await d.create({ url: PUBLIC_URL });
      const off = await d.create({ url: PUBLIC_URL, enabled: false });
      const enabled = await d.get('/v1/webhooks?enabled=true');
      assert.deepEqual(enabled.body.items.map((w: any) => w.id), [on.id]);
      assert.equal(enabled.body.total, 1);
      const disabled = await d.get('/v1/webhooks?enabled=false');
      assert.deepEqual(disabled.body.items.map((w: any) => w.id), [off.id]);
    });

    it('refuses bad query values with 422', async () => {
      const d = await desk();
      assertInvalid(await d.get('/v1/webhooks?limit=0'), 'limit');
      assertInvalid(await d.get('/v1/webhooks?limit=201'), 'limit');
      assertInvalid(await d.get('/v1/webhooks?limit=abc'), 'limit');
      assertInvalid(await d.get('/v1/webhooks?offset=-1'), 'offset');
      assertInvalid(await d.get('/v1/webhooks?enabled=maybe'), 'enabled');
      assertInvalid(await d.get('/v1/webhooks?cursor=not-a-cursor'), 'cursor');
      assertInvalid(await d.get('/v1/webhooks?colour=red'), 'colour');
    });

    it('shows one endpoint without any secret field', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL, events: ['ticket.created'], description: 'desc' });
      const res = await d.get(`/v1/webhooks/${w.id}`);
      assert.equal(res.status, 200);
      assert.deepEqual(Object.keys(res.body).sort(), ENDPOINT_KEYS);
      const { secret, ...rest } = w;
      assert.deepEqual(res.body, rest);
      assert.ok(!res.text.includes(secret));
      assert.ok(!res.text.includes(secret.slice('whsec_'.length)));
    });

    it('answers 404 for an unknown or malformed id', async () => {
      const d = await desk();
      assertProblem(await d.get(`/v1/webhooks/${UNKNOWN_ENDPOINT}`), 404, 'not_found');
      assertProblem(await d.get('/v1/webhooks/whk_nope'), 404, 'not_found');
      assertProblem(await d.get(`/v1/webhooks/tkt_${'0'.repeat(26)}`), 404, 'not_found');
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('PATCH /v1/webhooks/{id}', () => {
    it('changes url, events and description; updated_at moves, the secret stays', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL, events: ['ticket.created'], description: 'old' });
      clock.advance(5 * 60_000);
      const res = await d.patch(`/v1/webhooks/${w.id}`, { url: 'https://other.example.com/in', events: ['message.sent', 'message.sent', 'contact.tagged'], description: 'new' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.url, 'https://other.example.com/in');
      assert.deepEqual(res.body.events, ['message.sent', 'contact.tagged']);
      assert.equal(res.body.description, 'new');
      assert.equal(res.body.created_at, START);
      assert.equal(res.body.updated_at, clock.now().toISOString());
      assert.ok(!('secret' in res.body));
      assert.equal((await endpointRow(w.id)).secret, w.secret);
      const star = await d.patch(`/v1/webhooks/${w.id}`, { events: ['ticket.created', '*'] });
      assert.deepEqual(star.body.events, ['*']);
      const cleared = await d.patch(`/v1/webhooks/${w.id}`, { description: null });
      assert.equal(cleared.body.description, null);
      assert.deepEqual(await d.endpoint(w.id), cleared.body);
    });

    it('refuses bad values with 422 and changes nothing', async () => {
      const d = await desk({ app: strict });
      const w = await d.create({ url: PUBLIC_URL, events: ['ticket.created'] });
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, {}), 'body');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { url: 'https://127.0.0.1/x' }), 'url');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { url: 'http://hooks.example.com/x' }), 'url');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { url: 'not a url' }), 'url');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { events: [] }), 'events');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { events: ['ticket.nope'] }), 'events[0]');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { description: 'd'.repeat(501) }), 'description');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { enabled: 'no' }), 'enabled');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { secret: 'x'.repeat(40) }), 'secret');
      assertInvalid(await d.patch(`/v1/webhooks/${w.id}`, { url: PUBLIC_URL, colour: 'red' }), 'colour');
      const { secret, ...unchanged } = w;
      assert.deepEqual(await d.endpoint(w.id), unchanged);
      assertProblem(await d.patch(`/v1/webhooks/${UNKNOWN_ENDPOINT}`, { description: 'x' }), 404, 'not_found');
    });

    it('enabled false: disabled_reason and disabled_at set, outstanding deliveries held; enabled true releases them and clears failing_since', async () => {
      const d = await desk();
      const r = await receiver();
      r.respond(() => ({ status: 500, body: 'down for maintenance' }));
      const watching = await receiver();
      const w = await d.create({ url: r.url, events: ['contact.created'] });
      await d.create({ url: watching.url, events: ['webhook.disabled'] });

      // One failed delivery (failing_since set) and one still pending.
      const failed = await d.ping(w.id);
      await d.newContact('held-1@example.com');
      const first = await drain();
      assert.equal(first.attempts, 2);
      assert.equal((await d.delivery(failed.id)).status, 'failed');
      assert.equal((await d.endpoint(w.id)).failing_since, START);
      const [contactDelivery] = await deliveryRows({ endpoint_id: w.id, event_type: 'contact.created' });
      assert.equal(contactDelivery.status, 'failed');
      clock.advance(10_000);
      const pending = await d.ping(w.id);

      clock.advance(5_000);
      const disabledAt = clock.now().toISOString();
      const off = await d.patch(`/v1/webhooks/${w.id}`, { enabled: false });
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.equal(off.body.enabled, false);
      assert.equal(off.body.disabled_at, disabledAt);
      assert.equal(off.body.disabled_reason, 'disabled through the API');
      assert.equal(off.body.failing_since, START, 'disabling keeps the failure streak visible');
      const held = await deliveryRows({ endpoint_id: w.id });
      assert.equal(held.length, 3);
      for (const row of held) assert.equal(row.paused, true, `${row.event_type} ${row.status} is held`);
      assert.deepEqual(held.map((x: any) => x.status).sort(), ['failed', 'failed', 'pending']);

      // The webhook.disabled event reaches the endpoint watching for it.
      r.respond(() => ({ status: 200, body: 'ok' }));
      clock.advance(HOUR);
      await drain();
      assert.equal(watching.requests.length, 1);
      const notice = bodyOf(watching.requests[0]);
      assert.equal(notice.event, 'webhook.disabled');
      assert.equal(notice.data.id, w.id);
      assert.equal(notice.data.enabled, false);
      assert.equal(r.requests.length, 2, 'nothing more reached the disabled endpoint than the 2 failed attempts of the first drain');
      // An event while disabled is not queued for it.
      await d.newContact('while-disabled@example.com');
      await drain();
      assert.equal((await deliveryRows({ endpoint_id: w.id })).length, 3);
      assert.equal(r.requests.length, 2);

      clock.advance(60_000);
      const on = await d.patch(`/v1/webhooks/${w.id}`, { enabled: true });
      assert.equal(on.status, 200);
      assert.equal(on.body.enabled, true);
      assert.equal(on.body.disabled_reason, null);
      assert.equal(on.body.disabled_at, null);
      assert.equal(on.body.failing_since, null);
      for (const row of await deliveryRows({ endpoint_id: w.id })) assert.equal(row.paused, false);
      const before = r.requests.length;
      await drain();
      const delivered = r.requests.slice(before);
      assert.equal(delivered.length, 3, 'the held deliveries go out once enabled');
      assert.deepEqual(delivered.map((q) => q.headers['x-topicdesk-event']).sort(), ['contact.created', 'ping', 'ping']);
      assert.equal((await d.delivery(pending.id)).status, 'succeeded');
      assert.equal((await d.delivery(failed.id)).status, 'succeeded');
    });

    it('enabled false twice is a no-op the second time (one webhook.disabled event)', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL });
      await d.patch(`/v1/webhooks/${w.id}`, { enabled: false });
      clock.advance(60_000);
      const again = await d.patch(`/v1/webhooks/${w.id}`, { enabled: false });
      assert.equal(again.status, 200);
      assert.equal(again.body.disabled_at, START);
      const events = await db.knex('events').where({ workspace_id: d.ws.id, type: 'webhook.disabled' });
      assert.equal(events.length, 1);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('DELETE /v1/webhooks/{id}', () => {
    it('204, then 404 everywhere; its deliveries are gone; others are untouched', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      const keep = await d.create({ url: r.url });
      const p = await d.ping(w.id);
      await d.ping(keep.id);
      await drain();
      await d.ping(w.id);
      assert.equal((await deliveryRows({ endpoint_id: w.id })).length, 2);

      const res = await d.del(`/v1/webhooks/${w.id}`);
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      assertProblem(await d.get(`/v1/webhooks/${w.id}`), 404, 'not_found');
      assertProblem(await d.del(`/v1/webhooks/${w.id}`), 404, 'not_found');
      assertProblem(await d.get(`/v1/webhooks/${w.id}/deliveries`), 404, 'not_found');
      assertProblem(await d.get(`/v1/webhook-deliveries/${p.id}`), 404, 'not_found');
      assertProblem(await d.post(`/v1/webhook-deliveries/${p.id}/replay`), 404, 'not_found');
      assert.equal(await endpointRow(w.id), undefined);
      assert.equal((await deliveryRows({ endpoint_id: w.id })).length, 0);
      assert.equal((await deliveryRows({ endpoint_id: keep.id })).length, 1);
      assert.deepEqual((await d.get('/v1/webhooks')).body.items.map((x: any) => x.id), [keep.id]);
      const before = r.requests.length;
      await drain();
      assert.equal(r.requests.length, before, 'nothing is sent for a deleted endpoint');
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('POST /v1/webhooks/{id}/rotate-secret', () => {
    it('returns a new generated secret; previous_secret_expires_at is now + 24 h', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL });
      clock.advance(HOUR);
      const res = await d.post(`/v1/webhooks/${w.id}/rotate-secret`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      remember(res.body.secret);
      assert.match(res.body.secret, /^whsec_/);
      assert.equal(Buffer.from(res.body.secret.slice(6), 'base64').length, 32);
      assert.notEqual(res.body.secret, w.secret);
      assert.equal(res.body.id, w.id);
      assert.equal(res.body.previous_secret_expires_at, new Date(clock.now().getTime() + 24 * HOUR).toISOString());
      assert.equal(res.body.updated_at, clock.now().toISOString());
      const shown = await d.endpoint(w.id);
      assert.equal(shown.previous_secret_expires_at, res.body.previous_secret_expires_at);
      assert.ok(!('secret' in shown));
      const row = await endpointRow(w.id);
      assert.equal(row.secret, res.body.secret);
      assert.equal(row.previous_secret, w.secret);
    });

    it('takes a given secret (both forms); refuses the current one and bad ones with 422, never echoed', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL });
      const given = remember(`whsec_${randomBytes(40).toString('base64')}`)!;
      const a = await d.post(`/v1/webhooks/${w.id}/rotate-secret`, { secret: given });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(a.body.secret, given);
      const plain = remember('plain-rotation-secret-0123456789')!;
      const b = await d.post(`/v1/webhooks/${w.id}/rotate-secret`, { secret: plain });
      assert.equal(b.body.secret, plain);
      assert.equal((await endpointRow(w.id)).secret, plain);

      const same = await d.post(`/v1/webhooks/${w.id}/rotate-secret`, { secret: plain });
      assertInvalid(same, 'secret');
      assert.ok(!same.text.includes(plain));
      for (const bad of ['short', `whsec_${randomBytes(10).toString('base64')}`, 'has spaces in the rotation secret', 'whsec_***notbase64***']) {
        remember(bad);
        const res = await d.post(`/v1/webhooks/${w.id}/rotate-secret`, { secret: bad });
        assertInvalid(res, 'secret');
        assert.ok(!res.text.includes(bad), res.text);
      }
      assertInvalid(await d.post(`/v1/webhooks/${w.id}/rotate-secret`, { secret: plain + 'x', url: PUBLIC_URL }), 'url');
      const row = await endpointRow(w.id);
      assert.equal(row.secret, plain);
      assert.equal(row.previous_secret, given);
      assertProblem(await d.post(`/v1/webhooks/${UNKNOWN_ENDPOINT}/rotate-secret`), 404, 'not_found');
    });

    it('during 24 h a delivery carries both signatures in both headers; afterwards only the new one', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      const oldSecret: string = w.secret;
      clock.advance(60_000);
      const rot = await d.post(`/v1/webhooks/${w.id}/rotate-secret`);
      const newSecret: string = remember(rot.body.secret)!;

      const p = await d.ping(w.id);
      await drain();
      const [req] = r.withWebhookId(p.event_id);
      assert.ok(req, 'the ping arrived');
      const ts = req.headers['webhook-timestamp'] as string;
      assert.equal(ts, String(Math.floor(clock.now().getTime() / 1000)));
      assert.equal(req.headers['x-signature'], xSignature(newSecret, req.body));
      assert.equal(req.headers['x-signature-previous'], xSignature(oldSecret, req.body));
      assert.deepEqual(String(req.headers['webhook-signature']).split(' '), [
        standardSignature(newSecret, p.event_id, ts, req.body), standardSignature(oldSecret, p.event_id, ts, req.body),
      ]);

      clock.advance(24 * HOUR + 1000);
      assert.equal((await d.endpoint(w.id)).previous_secret_expires_at, null);
      const later = await d.ping(w.id);
      await drain();
      const [req2] = r.withWebhookId(later.event_id);
      const ts2 = req2.headers['webhook-timestamp'] as string;
      assert.equal(req2.headers['x-signature'], xSignature(newSecret, req2.body));
      assert.equal(req2.headers['x-signature-previous'], undefined);
      assert.equal(req2.headers['webhook-signature'], standardSignature(newSecret, later.event_id, ts2, req2.body));
    });

    it('a given plain secret signs: X-Signature and webhook-signature with its UTF-8 bytes', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      const plain = remember('Plain_Secret-For.Signing~0123456789')!;
      await d.post(`/v1/webhooks/${w.id}/rotate-secret`, { secret: plain });
      clock.advance(24 * HOUR + 1);
      const p = await d.ping(w.id);
      await drain();
      const [req] = r.withWebhookId(p.event_id);
      assert.equal(req.headers['x-signature'], xSignature(plain, req.body));
      assert.equal(req.headers['webhook-signature'], standardSignature(plain, p.event_id, req.headers['webhook-timestamp'] as string, req.body));
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('POST /v1/webhooks/{id}/test', () => {
    it('202 + Location + a pending ping delivery, delivered to the receiver with data.webhook_id', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url, events: ['ticket.created'] });
      const res = await d.post(`/v1/webhooks/${w.id}/test`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.headers.location, `/v1/webhook-deliveries/${res.body.id}`);
      assert.match(res.body.id, /^dlv_/);
      assert.match(res.body.event_id, /^evt_/);
      assert.deepEqual(res.body, {
        id: res.body.id, event_id: res.body.event_id, event: 'ping', endpoint_id: w.id,
        status: 'pending', attempts: [], next_attempt_at: START, created_at: START,
      });
      assert.deepEqual(await d.delivery(res.body.id), res.body);
      const queued = await db.knex('webhook_fanout_queue').where({ event_id: res.body.event_id });
      assert.equal(queued.length, 0, 'a ping is never queued for fan-out');

      const drained = await drain();
      assert.equal(drained.attempts, 1);
      assert.equal(r.requests.length, 1);
      const [req] = r.requests;
      assert.equal(req.method, 'POST');
      assert.equal(req.path, '/hook');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers['user-agent'], 'topicdesk-webhooks/1');
      assert.equal(req.headers['webhook-id'], res.body.event_id);
      assert.equal(req.headers['x-topicdesk-event'], 'ping');
      assert.equal(req.headers['x-topicdesk-delivery'], res.body.id);
      assert.equal(req.headers['x-signature'], xSignature(w.secret, req.body));
      assert.equal(req.headers['webhook-signature'], standardSignature(w.secret, res.body.event_id, req.headers['webhook-timestamp'] as string, req.body));
      const body = bodyOf(req);
      assert.equal(body.id, res.body.event_id);
      assert.equal(body.event, 'ping');
      assert.equal(body.workspace_id, d.ws.id);
      assert.equal(body.created_at, START);
      assert.equal(body.data.webhook_id, w.id);

      const after = await d.delivery(res.body.id);
      assert.equal(after.status, 'succeeded');
      assert.equal(after.next_attempt_at, null);
      assert.equal(after.attempts.length, 1);
      assert.deepEqual(Object.keys(after.attempts[0]).sort(), ATTEMPT_KEYS);
      assert.equal(after.attempts[0].status_code, 200);
      assert.equal(after.attempts[0].error, null);
      assert.equal(after.attempts[0].response_excerpt, 'ok');
      assert.equal(after.attempts[0].at, START);
      assert.ok(Number.isInteger(after.attempts[0].duration_ms) && after.attempts[0].duration_ms >= 0);
    });

    it('is never fanned out to the workspace\'s other endpoints subscribed to "*"', async () => {
      const d = await desk();
      const r = await receiver();
      const other = await receiver();
      const w = await d.create({ url: r.url, events: ['*'] });
      const star = await d.create({ url: other.url, events: ['*'] });
      const p = await d.ping(w.id);
      await drain();
      assert.equal(r.withWebhookId(p.event_id).length, 1);
      assert.equal(other.requests.length, 0);
      assert.equal((await deliveryRows({ endpoint_id: star.id })).length, 0);
      assert.equal((await deliveryRows({ event_id: p.event_id })).length, 1);
    });

    it('409 conflict for a disabled endpoint; 404 for an unknown one', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL, enabled: false });
      assertProblem(await d.post(`/v1/webhooks/${w.id}/test`), 409, 'conflict');
      const w2 = await d.create({ url: PUBLIC_URL });
      await d.patch(`/v1/webhooks/${w2.id}`, { enabled: false });
      assertProblem(await d.post(`/v1/webhooks/${w2.id}/test`), 409, 'conflict');
      assert.equal((await deliveryRows({ workspace_id: d.ws.id })).length, 0);
      assertProblem(await d.post(`/v1/webhooks/${UNKNOWN_ENDPOINT}/test`), 404, 'not_found');
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('GET /v1/webhooks/{id}/deliveries', () => {
    /** Three deliveries: ping P1 (succeeded), contact.created C1 (failed twice), ping P2 (succeeded). */
    async function threeDeliveries() {
      const d = await desk();
      const r = await receiver();
      r.respond((req) => (req.headers['x-topicdesk-event'] === 'ping' ? { status: 204 } : { status: 500, body: 'x'.repeat(3000) }));
      const w = await d.create({ url: r.url, events: ['contact.created'] });
      const p1 = await d.ping(w.id);
      await drain();
      clock.advance(60_000);
      await d.newContact('log@example.com');
      await drain();
      const [c1row] = await deliveryRows({ endpoint_id: w.id, event_type: 'contact.created' });
      clock.advance(60_000);
      const p2 = await d.ping(w.id);
      await drain();
      return { d, r, w, p1, p2, c1: c1row.id as string };
    }

    it('newest first, with every attempt logged', async () => {
      const { d, w, p1, p2, c1 } = await threeDeliveries();
      const res = await d.get(`/v1/webhooks/${w.id}/deliveries`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.items.map((x: any) => x.id), [p2.id, c1, p1.id]);
      assert.equal(res.body.total, 3);
      for (const item of res.body.items) {
        assert.deepEqual(Object.keys(item).sort(), DELIVERY_KEYS);
        assert.equal(item.endpoint_id, w.id);
        for (const a of item.attempts) assert.deepEqual(Object.keys(a).sort(), ATTEMPT_KEYS);
      }
      const [p2j, c1j, p1j] = res.body.items;
      assert.deepEqual([p2j.status, c1j.status, p1j.status], ['succeeded', 'failed', 'succeeded']);
      assert.deepEqual([p2j.event, c1j.event, p1j.event], ['ping', 'contact.created', 'ping']);
      assert.equal(p1j.attempts.length, 1);
      assert.equal(p1j.attempts[0].status_code, 204);
      assert.equal(p1j.attempts[0].response_excerpt, null);
      // C1: fanned out at START+1m and failed; retried (30 s later was due) at START+2m and failed again.
      assert.equal(c1j.created_at, new Date(Date.parse(START) + 60_000).toISOString());
      assert.equal(c1j.attempts.length, 2);
      assert.deepEqual(c1j.attempts.map((a: any) => a.at), [
        new Date(Date.parse(START) + 60_000).toISOString(), new Date(Date.parse(START) + 120_000).toISOString(),
      ]);
      for (const a of c1j.attempts) {
        assert.equal(a.status_code, 500);
        assert.equal(a.error, 'the endpoint answered 500');
        assert.ok(Buffer.byteLength(a.response_excerpt) <= 1024, 'excerpt at most 1 KB');
        assert.match(a.response_excerpt, /^x+$/);
      }
      assert.equal(c1j.next_attempt_at, new Date(Date.parse(START) + 120_000 + SCHEDULE[1] * 1000).toISOString());
      assert.equal(p1j.next_attempt_at, null);
    });

    it('filters on status and event; refuses bad values; pages with offset and cursor', async () => {
      const { d, w, p1, p2, c1 } = await threeDeliveries();
      const ids = async (q: string) => {
        const res = await d.get(`/v1/webhooks/${w.id}/deliveries${q}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.items.map((x: any) => x.id);
      };
      assert.deepEqual(await ids('?status=failed'), [c1]);
      assert.deepEqual(await ids('?status=succeeded'), [p2.id, p1.id]);
      assert.deepEqual(await ids('?status=succeeded,failed'), [p2.id, c1, p1.id]);
      assert.deepEqual(await ids('?status=dead'), []);
      assert.deepEqual(await ids('?status=pending'), []);
      assert.deepEqual(await ids('?event=ping'), [p2.id, p1.id]);
      assert.deepEqual(await ids('?event=contact.created'), [c1]);
      assert.deepEqual(await ids('?event=ticket.created'), []);
      assert.deepEqual(await ids('?event=ping&status=failed'), []);

      assertInvalid(await d.get(`/v1/webhooks/${w.id}/deliveries?status=delivering`), 'status');
      assertInvalid(await d.get(`/v1/webhooks/${w.id}/deliveries?status=failed,`), 'status');
      assertInvalid(await d.get(`/v1/webhooks/${w.id}/deliveries?event=ticket.exploded`), 'event');
      assertInvalid(await d.get(`/v1/webhooks/${w.id}/deliveries?limit=0`), 'limit');
      assertInvalid(await d.get(`/v1/webhooks/${w.id}/deliveries?limit=500`), 'limit');
      assertInvalid(await d.get(`/v1/webhooks/${w.id}/deliveries?cursor=zzz`), 'cursor');
      assertProblem(await d.get(`/v1/webhooks/${UNKNOWN_ENDPOINT}/deliveries`), 404, 'not_found');

      const page1 = (await d.get(`/v1/webhooks/${w.id}/deliveries?limit=1`)).body;
      assert.deepEqual(page1.items.map((x: any) => x.id), [p2.id]);
      assert.equal(page1.has_more, true);
      assert.equal(page1.total, 3);
      const page2 = (await d.get(`/v1/webhooks/${w.id}/deliveries?limit=1&cursor=${encodeURIComponent(page1.next_cursor)}`)).body;
      assert.deepEqual(page2.items.map((x: any) => x.id), [c1]);
      const page3 = (await d.get(`/v1/webhooks/${w.id}/deliveries?limit=1&cursor=${encodeURIComponent(page2.next_cursor)}`)).body;
      assert.deepEqual(page3.items.map((x: any) => x.id), [p1.id]);
      assert.equal(page3.has_more, false);
      assert.equal(page3.next_cursor, null);
      assert.deepEqual(await ids('?limit=1&offset=1'), [c1]);
      const filtered1 = (await d.get(`/v1/webhooks/${w.id}/deliveries?limit=1&event=ping`)).body;
      assert.equal(filtered1.total, 2);
      const filtered2 = (await d.get(`/v1/webhooks/${w.id}/deliveries?limit=1&event=ping&cursor=${encodeURIComponent(filtered1.next_cursor)}`)).body;
      assert.deepEqual(filtered2.items.map((x: any) => x.id), [p1.id]);
    });

    it('orders deliveries created at the same instant by id, newest first, across cursor pages', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL });
      const made: string[] = [];
      for (let i = 0; i < 4; i++) made.push((await d.ping(w.id)).id);
      await db.knex('webhook_deliveries').whereIn('id', made).update({ status: 'dead', next_attempt_at: null });
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: Res = await d.get(`/v1/webhooks/${w.id}/deliveries?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        seen.push(...res.body.items.map((x: any) => x.id));
        cursor = res.body.next_cursor;
      } while (cursor);
      assert.deepEqual(seen, [...made].sort().reverse());
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('GET /v1/webhook-deliveries/{id} and POST /v1/webhook-deliveries/{id}/replay', () => {
    it('GET shows one delivery; unknown or malformed ids are 404', async () => {
      const d = await desk();
      const w = await d.create({ url: PUBLIC_URL });
      const p = await d.ping(w.id);
      const res = await d.get(`/v1/webhook-deliveries/${p.id}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, p);
      await db.knex('webhook_deliveries').where({ id: p.id }).update({ status: 'dead', next_attempt_at: null });
      assertProblem(await d.get(`/v1/webhook-deliveries/${UNKNOWN_DELIVERY}`), 404, 'not_found');
      assertProblem(await d.get('/v1/webhook-deliveries/dlv_123'), 404, 'not_found');
      assertProblem(await d.post(`/v1/webhook-deliveries/${UNKNOWN_DELIVERY}/replay`), 404, 'not_found');
    });

    it('replays a succeeded delivery: 202 pending, due now, sent again with the same webhook-id', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      const p = await d.ping(w.id);
      await drain();
      assert.equal((await d.delivery(p.id)).status, 'succeeded');
      clock.advance(HOUR);
      const res = await d.post(`/v1/webhook-deliveries/${p.id}/replay`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.id, p.id);
      assert.equal(res.body.status, 'pending');
      assert.equal(res.body.next_attempt_at, clock.now().toISOString());
      assert.equal(res.body.attempts.length, 1, 'the log is kept');
      await drain();
      const sent = r.withWebhookId(p.event_id);
      assert.equal(sent.length, 2);
      assert.equal(sent[1].headers['x-topicdesk-delivery'], p.id);
      assert.equal(sent[1].body, sent[0].body, 'the same body');
      assert.equal(sent[1].headers['webhook-timestamp'], String(Math.floor(clock.now().getTime() / 1000)));
      const after = await d.delivery(p.id);
      assert.equal(after.status, 'succeeded');
      assert.equal(after.attempts.length, 2);
    });

    it('replays a dead delivery (schedule exhausted after 9 attempts) with the same webhook-id', async () => {
      const d = await desk();
      const r = await receiver();
      r.respond(() => ({ status: 503, body: 'nope' }));
      const w = await d.create({ url: r.url, events: ['contact.created'] });
      await d.newContact('dead@example.com');
      await drain();
      const [row] = await deliveryRows({ endpoint_id: w.id });
      for (const seconds of SCHEDULE) {
        clock.advance(seconds * 1000);
        const pass = await drain();
        assert.equal(pass.attempts, 1);
      }
      const dead = await d.delivery(row.id);
      assert.equal(dead.status, 'dead');
      assert.equal(dead.attempts.length, 9);
      assert.equal(dead.next_attempt_at, null);
      assert.equal(r.withWebhookId(row.event_id).length, 9);
      assert.equal((await d.endpoint(w.id)).enabled, true, '46 h of failures do not disable it (120 h do)');

      r.respond(() => ({ status: 200, body: 'ok' }));
      clock.advance(HOUR);
      const res = await d.post(`/v1/webhook-deliveries/${row.id}/replay`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.status, 'pending');
      assert.equal(res.body.next_attempt_at, clock.now().toISOString());
      await drain();
      const sent = r.withWebhookId(row.event_id);
      assert.equal(sent.length, 10);
      assert.equal(bodyOf(sent[9]).event, 'contact.created');
      const after = await d.delivery(row.id);
      assert.equal(after.status, 'succeeded');
      assert.equal(after.attempts.length, 10);
      assert.equal((await d.endpoint(w.id)).failing_since, null, 'a success ends the failure streak');
    });

    it('a replayed failed delivery starts its schedule over (next wait: the first step)', async () => {
      const d = await desk();
      const r = await receiver();
      r.respond(() => ({ status: 500 }));
      const w = await d.create({ url: r.url });
      const p = await d.ping(w.id);
      await drain();
      clock.advance(SCHEDULE[0] * 1000);
      await drain();
      clock.advance(SCHEDULE[1] * 1000);
      await drain();
      assert.equal((await deliveryRows({ id: p.id }))[0].schedule_step, 3);
      const res = await d.post(`/v1/webhook-deliveries/${p.id}/replay`);
      assert.equal(res.status, 202);
      await drain();
      const after = await d.delivery(p.id);
      assert.equal(after.status, 'failed');
      assert.equal(after.attempts.length, 4);
      assert.equal(after.next_attempt_at, new Date(clock.now().getTime() + SCHEDULE[0] * 1000).toISOString());
    });

    it('409 while the delivery is in flight (claimed, lease not over); allowed again after the lease', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      const p = await d.ping(w.id);
      const now = clock.now();
      const claimed = await deliveryQueue.claim(db.knex, { now, leaseUntil: new Date(now.getTime() + 30_000), limit: 50, busy: [] });
      assert.ok(claimed.some((c) => c.id === p.id), 'the test claimed the ping');
      const busy = await d.post(`/v1/webhook-deliveries/${p.id}/replay`);
      assertProblem(busy, 409, 'conflict');
      assert.ok(busy.headers['retry-after'], 'Retry-After is set');
      clock.advance(10_000);
      assertProblem(await d.post(`/v1/webhook-deliveries/${p.id}/replay`), 409, 'conflict');

      clock.advance(25_000);
      const res = await d.post(`/v1/webhook-deliveries/${p.id}/replay`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await drain();
      assert.equal(r.withWebhookId(p.event_id).length, 1);
      const after = await d.delivery(p.id);
      assert.equal(after.status, 'succeeded');
      assert.equal(after.attempts.length, 2, 'the lost attempt is logged too');
      assert.match(after.attempts[0].error, /no outcome was recorded/);
    });

    it('409 when the endpoint is disabled; the delivery is left as it was', async () => {
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      const p = await d.ping(w.id);
      await drain();
      await d.patch(`/v1/webhooks/${w.id}`, { enabled: false });
      const before = await d.delivery(p.id);
      assertProblem(await d.post(`/v1/webhook-deliveries/${p.id}/replay`), 409, 'conflict');
      assert.deepEqual(await d.delivery(p.id), before);
      assert.equal(before.status, 'succeeded');
      clock.advance(HOUR);
      await drain();
      assert.equal(r.withWebhookId(p.event_id).length, 1);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('scopes and authentication', () => {
    const routes = (whk: string, dlv: string): Array<['get' | 'post' | 'patch' | 'delete', string, unknown?]> => [
      ['get', '/v1/webhooks'],
      ['post', '/v1/webhooks', { url: PUBLIC_URL, events: ['*'] }],
      ['get', `/v1/webhooks/${whk}`],
      ['patch', `/v1/webhooks/${whk}`, { description: 'changed' }],
      ['delete', `/v1/webhooks/${whk}`],
      ['post', `/v1/webhooks/${whk}/rotate-secret`, {}],
      ['post', `/v1/webhooks/${whk}/test`],
      ['get', `/v1/webhooks/${whk}/deliveries`],
      ['get', `/v1/webhook-deliveries/${dlv}`],
      ['post', `/v1/webhook-deliveries/${dlv}/replay`],
    ];

    it('every route answers 403 with required_scope manage:webhooks to a key holding every other scope, and does nothing', async () => {
      const owner = await desk();
      const w = await owner.create({ url: PUBLIC_URL, description: 'original' });
      const p = await owner.ping(w.id);
      await db.knex('webhook_deliveries').where({ id: p.id }).update({ status: 'dead', next_attempt_at: null });
      const others = ALL_SCOPES.filter((s) => s !== 'manage:webhooks');
      const weak = await makeKey(db.knex, t.services, { workspaceId: owner.ws.id, scopes: [...others] });
      const endpointBefore = await endpointRow(w.id);
      const deliveriesBefore = await deliveryRows({ workspace_id: owner.ws.id });
      for (const [method, path, body] of routes(w.id, p.id)) {
        const r = t.request[method](path).set('Authorization', weak.auth);
        const res = (body === undefined ? await r : await r.send(body as object)) as unknown as Res;
        assertProblem(res, 403, 'forbidden');
        assert.equal(res.body.required_scope, 'manage:webhooks', `${method} ${path}`);
        assert.equal(res.body.secret, undefined);
      }
      assert.deepEqual(await endpointRow(w.id), endpointBefore);
      assert.deepEqual(await deliveryRows({ workspace_id: owner.ws.id }), deliveriesBefore);
      assert.equal(Number((await db.knex('webhook_endpoints').where({ workspace_id: owner.ws.id }).count({ n: '*' }))[0].n), 1);
      // The same key with manage:webhooks added gets through.
      const ok = await makeKey(db.knex, t.services, { workspaceId: owner.ws.id, scopes: ['manage:webhooks'] });
      assert.equal((await t.request.get(`/v1/webhooks/${w.id}`).set('Authorization', ok.auth)).status, 200);
    });

    it('every route answers 401 without a token or with a bad one', async () => {
      const owner = await desk();
      const w = await owner.create({ url: PUBLIC_URL });
      const p = await owner.ping(w.id);
      await db.knex('webhook_deliveries').where({ id: p.id }).update({ status: 'dead', next_attempt_at: null });
      for (const [method, path, body] of routes(w.id, p.id)) {
        for (const auth of [undefined, 'Bearer td_live_notarealtoken', 'Basic dXNlcjpwYXNz']) {
          let r = t.request[method](path);
          if (auth) r = r.set('Authorization', auth);
          const res = (body === undefined ? await r : await r.send(body as object)) as unknown as Res;
          assertProblem(res, 401, 'unauthorized');
        }
      }
      assert.equal((await endpointRow(w.id)).description, null);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('tenancy', () => {
    it('another workspace\'s endpoint or delivery id answers the same 404 as an unknown id, on every route, and changes nothing', async () => {
      const a = await desk();
      const b = await desk();
      const w = await a.create({ url: PUBLIC_URL, description: 'mine' });
      const p = await a.ping(w.id);
      await db.knex('webhook_deliveries').where({ id: p.id }).update({ status: 'dead', next_attempt_at: null });
      const endpointBefore = await endpointRow(w.id);
      const deliveriesBefore = await deliveryRows({ workspace_id: a.ws.id });

      const routes = (whk: string, dlv: string): Array<['get' | 'post' | 'patch' | 'delete', string, unknown?]> => [
        ['get', `/v1/webhooks/${whk}`],
        ['patch', `/v1/webhooks/${whk}`, { description: 'stolen' }],
        ['patch', `/v1/webhooks/${whk}`, { enabled: false }],
        ['delete', `/v1/webhooks/${whk}`],
        ['post', `/v1/webhooks/${whk}/rotate-secret`, {}],
        ['post', `/v1/webhooks/${whk}/rotate-secret`, { secret: 'a-given-secret-for-another-ws-123' }],
        ['post', `/v1/webhooks/${whk}/test`],
        ['get', `/v1/webhooks/${whk}/deliveries`],
        ['get', `/v1/webhook-deliveries/${dlv}`],
        ['post', `/v1/webhook-deliveries/${dlv}/replay`],
      ];
      remember('a-given-secret-for-another-ws-123');
      const foreign = routes(w.id, p.id);
      const unknown = routes(UNKNOWN_ENDPOINT, UNKNOWN_DELIVERY);
      for (let i = 0; i < foreign.length; i++) {
        const [method, path, body] = foreign[i];
        const theirs = await b.call(method, path, body);
        const none = await b.call(unknown[i][0], unknown[i][1], unknown[i][2]);
        assertProblem(theirs, 404, 'not_found');
        const shape = (r: Res) => ({ status: r.status, code: r.body.code, detail: r.body.detail, title: r.body.title, type: r.body.type, keys: Object.keys(r.body).sort() });
        assert.deepEqual(shape(theirs), shape(none), `${method} ${path}`);
        assert.ok(!theirs.text.includes(w.id) && !theirs.text.includes(p.id), 'the id is not echoed');
      }
      assert.deepEqual(await endpointRow(w.id), endpointBefore);
      assert.deepEqual(await deliveryRows({ workspace_id: a.ws.id }), deliveriesBefore);
      assert.equal((await deliveryRows({ workspace_id: b.ws.id })).length, 0);
      assert.equal((await db.knex('events').where({ workspace_id: a.ws.id, type: 'webhook.disabled' })).length, 0);
    });

    it('listing never shows another workspace\'s endpoints', async () => {
      const a = await desk();
      const b = await desk();
      const mine = await a.create({ url: PUBLIC_URL });
      await b.create({ url: PUBLIC_URL });
      await b.create({ url: PUBLIC_URL, enabled: false });
      const list = await a.get('/v1/webhooks?limit=200');
      assert.deepEqual(list.body.items.map((x: any) => x.id), [mine.id]);
      assert.equal(list.body.total, 1);
      assert.deepEqual((await a.get('/v1/webhooks?enabled=false')).body.items, []);
      assert.equal((await b.get('/v1/webhooks')).body.total, 2);
    });

    it('a workspace\'s events never reach another workspace\'s endpoint', async () => {
      const a = await desk();
      const b = await desk();
      const ra = await receiver();
      const rb = await receiver();
      const wa = await a.create({ url: ra.url, events: ['*'] });
      const wb = await b.create({ url: rb.url, events: ['*'] });
      await a.newContact('tenant-a@example.com');
      await a.ping(wa.id);
      await a.patch(`/v1/webhooks/${wa.id}`, { description: 'changed' });
      await drain();
      assert.equal(ra.requests.length, 2, 'contact.created and ping');
      for (const q of ra.requests) assert.equal(bodyOf(q).workspace_id, a.ws.id);
      assert.equal(rb.requests.length, 0);
      assert.equal((await deliveryRows({ endpoint_id: wb.id })).length, 0);

      // And the other way round.
      await b.newContact('tenant-b@example.com');
      await drain();
      assert.equal(rb.requests.length, 1);
      assert.equal(bodyOf(rb.requests[0]).workspace_id, b.ws.id);
      assert.equal(bodyOf(rb.requests[0]).event, 'contact.created');
      assert.equal(ra.requests.length, 2);
      assert.deepEqual((await deliveryRows({ endpoint_id: wa.id })).map((x: any) => x.workspace_id), [a.ws.id, a.ws.id]);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('logs', () => {
    it('no secret, generated or given, accepted or refused, ever appears in a log line', async () => {
      // Make sure at least one of each kind went through this app while logging.
      const d = await desk();
      const r = await receiver();
      const w = await d.create({ url: r.url });
      remember((await d.post(`/v1/webhooks/${w.id}/rotate-secret`)).body.secret);
      await d.ping(w.id);
      await drain();
      const logs = [...t.logs, ...strict.logs];
      assert.ok(t.logs.some((l) => l.includes('"route":"/v1/webhooks"')), 'the create requests were logged');
      assert.ok(t.logs.some((l) => l.includes('/rotate-secret')), 'the rotations were logged');
      assert.ok(secretsSeen.size >= 20, `secrets collected: ${secretsSeen.size}`);
      for (const secret of secretsSeen) {
        const forms = [secret, JSON.stringify(secret).slice(1, -1)];
        if (secret.startsWith('whsec_')) forms.push(secret.slice('whsec_'.length));
        for (const line of logs) {
          for (const form of forms) assert.ok(!line.includes(form), `a secret is in a log line: ${line}`);
        }
      }
    });
  });
});
