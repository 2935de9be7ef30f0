/**
 * Outbound webhook delivery (SPEC §7; issue 5): the worker (createWebhookWorker) against a
 * real local receiver (test/helpers/webhook-receiver.ts), a real PostgreSQL and a FakeClock
 * for the retry schedule. Signatures are checked twice: by HMAC code written here and by
 * the `standardwebhooks` npm package as a third-party verifier.
 *
 * Every test starts from empty webhook tables (the workers drain every workspace at once)
 * and works in a workspace of its own; workers and receivers are stopped after each test.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';
import type { Config } from '../../src/config.js';
import { SYSTEM } from '../../src/kernel/actor.js';
import { deliveryQueue } from '../../src/webhooks/delivery-queue.js';
import { createWebhookWorker, type WebhookWorker } from '../../src/webhooks/webhook-worker.js';
import { makeAgent, makeKey, makeTeam, makeWorkspace } from '../helpers/factories.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { waitFor } from '../helpers/process.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';
import { startReceiver, type Receiver, type ReceivedRequest, type Reply } from '../helpers/webhook-receiver.js';

const START = '2026-11-21T12:00:00.000Z';
const SCHEDULE = [30, 120, 600, 3600, 10800, 21600, 43200, 86400];
const LOST = 'no outcome was recorded in time (the worker stopped, or its lease ran out): sent again';

type WebhookConfig = Config['webhooks'];

// ---------------------------------------------------------------------------------------
// Independent signature checks (node:crypto only; nothing imported from src/webhooks).

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

const header = (h: IncomingHttpHeaders, name: string): string => {
  const v = h[name];
  assert.equal(typeof v, 'string', `header ${name} missing or repeated: ${JSON.stringify(v)}`);
  return v as string;
};

/**
 * `X-Signature: sha256=<hex>` (HMAC-SHA256 over the raw body, keyed by the secret's UTF-8 bytes)
 * and, during a rotation overlap, `X-Signature-Previous` with the old secret's: [current, previous?].
 */
function xSignatureEntries(secret: string, body: string, headers: IncomingHttpHeaders): boolean[] {
  const expected = `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(body, 'utf8')).digest('hex')}`;
  const values = [header(headers, 'x-signature'), ...(headers['x-signature-previous'] !== undefined ? [header(headers, 'x-signature-previous')] : [])];
  return values.map((s) => safeEqual(s, expected));
}
const xSignatureOk = (secret: string, body: string, headers: IncomingHttpHeaders) => xSignatureEntries(secret, body, headers).includes(true);

/** Standard Webhooks key: the base64-decoded part after whsec_, else the secret's UTF-8 bytes. */
function standardKey(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

/** `webhook-signature: v1,<base64>[ v1,<base64>]` over "id.timestamp.body". */
function webhookSignatureEntries(secret: string, body: string, headers: IncomingHttpHeaders): boolean[] {
  const signed = `${header(headers, 'webhook-id')}.${header(headers, 'webhook-timestamp')}.${body}`;
  const expected = createHmac('sha256', standardKey(secret)).update(Buffer.from(signed, 'utf8')).digest('base64');
  return header(headers, 'webhook-signature').split(' ').map((part) => {
    const comma = part.indexOf(',');
    return part.slice(0, comma) === 'v1' && safeEqual(part.slice(comma + 1), expected);
  });
}
const webhookSignatureOk = (secret: string, body: string, headers: IncomingHttpHeaders) => webhookSignatureEntries(secret, body, headers).includes(true);

/** The standardwebhooks package's verifier for a secret of either form. */
function thirdPartyVerifier(secret: string): Webhook {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
}
const asStrings = (h: IncomingHttpHeaders) => h as Record<string, string>;

/** Replaces the first occurrence of `from` in the body: a tampered body. */
function tamper(body: string, from: string, to: string): string {
  assert.ok(body.includes(from), `the body should contain ${from}`);
  const out = body.replace(from, to);
  assert.notEqual(out, body, 'tampering must change the body');
  return out;
}

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');
const ms = (d: Date | string | null) => (d === null ? null : new Date(d).getTime());

describe('webhook delivery (worker → a real receiver)', () => {
  const db = useTestDatabase();
  const clock = new FakeClock(START);
  let t: TestApp;
  let seq = 0;
  const receivers: Receiver[] = [];
  const workers: WebhookWorker[] = [];

  before(() => {
    t = createTestApp(db.knex, { clock, config: { webhooks: { allowPrivateTargets: true } } });
  });

  beforeEach(async () => {
    clock.set(START);
    await db.knex.raw('TRUNCATE webhook_deliveries, webhook_endpoints, webhook_fanout_queue');
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });

  // ---------------------------------------------------------------------------------------
  // helpers

  async function receiver(): Promise<Receiver> {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  }

  /** The answers a receiver gave, in order (its own log keeps only the requests). */
  function script(r: Receiver, fn: (req: ReceivedRequest, i: number) => Reply): number[] {
    const answered: number[] = [];
    r.respond((req, i) => {
      const reply = fn(req, i);
      if (!reply.hang && !reply.destroy) answered.push(reply.status ?? 200);
      return reply;
    });
    return answered;
  }

  function worker(over: Partial<WebhookConfig> = {}, random: () => number = () => 0.5): WebhookWorker {
    const w = createWebhookWorker({
      db: db.knex, logger: t.deps.logger, clock, config: { ...t.config.webhooks, ...over }, webhooks: t.services.webhooks, random,
    });
    workers.push(w);
    return w;
  }

  /** A workspace of its own with a key holding every scope, and request helpers. */
  async function desk() {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, rateLimitPerMinute: 1_000_000 });
    const post = (path: string, body: unknown = {}) => t.request.post(path).set('Authorization', key.auth).send(body as object);
    const get = (path: string) => t.request.get(path).set('Authorization', key.auth);
    const patch = (path: string, body: unknown) => t.request.patch(path).set('Authorization', key.auth).send(body as object);
    async function endpoint(url: string, events: string[] = ['*'], extra: Record<string, unknown> = {}) {
      const res = await post('/v1/webhooks', { url, events, ...extra });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body as { id: string; secret: string; enabled: boolean };
    }
    /** A new contact (one contact.created event) and that event's id. */
    async function contact(input: Record<string, unknown> = {}) {
      seq += 1;
      const { contact: c } = await t.services.contacts.upsert(db.knex, ws.id, { email: `customer${seq}@example.com`, name: `Customer ${seq}`, ...input }, SYSTEM);
      const ev = await db.knex('events').where({ contact_id: c.id, type: 'contact.created' }).first();
      assert.ok(ev, 'contact.created written');
      return { contact: c, eventId: ev.id as string };
    }
    async function endpointJson(id: string) {
      const res = await get(`/v1/webhooks/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    }
    async function deliveryJson(id: string) {
      const res = await get(`/v1/webhook-deliveries/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    }
    return { ws, key, post, get, patch, endpoint, contact, endpointJson, deliveryJson };
  }

  async function delivery(endpointId: string, eventId: string) {
    const row = await db.knex('webhook_deliveries').where({ endpoint_id: endpointId, event_id: eventId }).first();
    assert.ok(row, `a delivery of ${eventId} to ${endpointId}`);
    return row;
  }
  const deliveriesOf = (endpointId: string) => db.knex('webhook_deliveries').where({ endpoint_id: endpointId }).orderBy('event_id');
  const eventsOf = (r: Receiver) => r.requests.map((q) => q.headers['x-topicdesk-event']);
  const idsOf = (r: Receiver) => r.requests.map((q) => q.headers['webhook-id']);

  /** Parsed log lines written by the app and its workers. */
  const logLines = () => t.logs.flatMap((l) => l.split('\n').filter(Boolean)).map((l) => JSON.parse(l));

  // ---------------------------------------------------------------------------------------

  describe('signatures', () => {
    // standardwebhooks checks webhook-timestamp against the wall clock (±5 min).
    beforeEach(() => clock.set(new Date()));

    it('a generated whsec_ secret: X-Signature and webhook-signature verify with independent HMAC code and with standardwebhooks; a tampered body fails both', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      assert.match(ep.secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
      assert.equal(Buffer.from(ep.secret.slice(6), 'base64').length, 32);
      const { contact, eventId } = await d.contact({ name: 'Zoë Ünicode 😀' });
      assert.deepEqual(await worker().drain(), { events: 1, attempts: 1 });

      assert.equal(rx.requests.length, 1);
      const { body, headers } = rx.requests[0];
      assert.equal(header(headers, 'webhook-id'), eventId);
      assert.equal(header(headers, 'webhook-timestamp'), String(Math.floor(clock.now().getTime() / 1000)));
      assert.match(header(headers, 'x-signature'), /^sha256=[0-9a-f]{64}$/);
      assert.match(header(headers, 'webhook-signature'), /^v1,[A-Za-z0-9+/]{43}=$/);

      // Independent code.
      assert.equal(xSignatureOk(ep.secret, body, headers), true, 'X-Signature');
      assert.equal(webhookSignatureOk(ep.secret, body, headers), true, 'webhook-signature');
      // Third-party verifier.
      const verified = thirdPartyVerifier(ep.secret).verify(body, asStrings(headers)) as any;
      assert.equal(verified.id, eventId);
      assert.equal(verified.data.id, contact.id);

      // A wrong secret verifies nothing.
      const other = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
      assert.equal(xSignatureOk(other, body, headers), false);
      assert.equal(webhookSignatureOk(other, body, headers), false);
      assert.throws(() => new Webhook(other).verify(body, asStrings(headers)), /No matching signature/);

      // A tampered body (one character of the contact's name) fails every check.
      const tampered = tamper(body, 'Zoë', 'Zoe');
      assert.equal(xSignatureOk(ep.secret, tampered, headers), false);
      assert.equal(webhookSignatureOk(ep.secret, tampered, headers), false);
      assert.throws(() => thirdPartyVerifier(ep.secret).verify(tampered, asStrings(headers)), /No matching signature/);
      // So do a changed webhook-id or webhook-timestamp (they are signed too).
      const ts = Number(header(headers, 'webhook-timestamp'));
      assert.throws(() => thirdPartyVerifier(ep.secret).verify(body, { ...asStrings(headers), 'webhook-timestamp': String(ts - 1) }), /No matching signature/);
      assert.throws(() => thirdPartyVerifier(ep.secret).verify(body, { ...asStrings(headers), 'webhook-id': `${eventId}x` }), /No matching signature/);
      // The secret never reaches the logs.
      assert.ok(!t.logs.some((l) => l.includes(ep.secret)), 'secret in logs');
    });

    it('a given plain secret (not whsec_) signs with its UTF-8 bytes: both schemes verify, standardwebhooks with format "raw"', async () => {
      const d = await desk();
      const rx = await receiver();
      const secret = 'my-own_Secret.For~Webhooks!2026';
      const ep = await d.endpoint(rx.url, ['contact.created'], { secret });
      assert.equal(ep.secret, secret);
      const { eventId } = await d.contact();
      await worker().drain();

      const { body, headers } = rx.requests[0];
      assert.equal(header(headers, 'webhook-id'), eventId);
      assert.equal(xSignatureOk(secret, body, headers), true);
      assert.equal(webhookSignatureOk(secret, body, headers), true);
      assert.equal((thirdPartyVerifier(secret).verify(body, asStrings(headers)) as any).id, eventId);
      // The same key written as whsec_ + base64 of those bytes is the same verifier.
      assert.equal((new Webhook(`whsec_${Buffer.from(secret, 'utf8').toString('base64')}`).verify(body, asStrings(headers)) as any).id, eventId);

      // Another last character (a ULID may end in 0 itself: then "0" would change nothing).
      const tampered = tamper(body, eventId, `${eventId.slice(0, -1)}${eventId.endsWith('0') ? '1' : '0'}`);
      assert.equal(xSignatureOk(secret, tampered, headers), false);
      assert.equal(webhookSignatureOk(secret, tampered, headers), false);
      assert.throws(() => thirdPartyVerifier(secret).verify(tampered, asStrings(headers)), /No matching signature/);
    });

    it('webhook-timestamp is the attempt time: more than 5 min in the past or the future fails standardwebhooks although the HMAC is right', async () => {
      const d = await desk();
      const rx = await receiver();
      // Registered before the earliest event below (an endpoint only gets events not older than itself).
      clock.set(new Date(Date.now() - 10 * 60_000));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker();
      const cases = [
        { offsetMs: -6 * 60_000, expect: /too old/ },
        { offsetMs: +6 * 60_000, expect: /too new/ },
        { offsetMs: -4 * 60_000, expect: null },
        { offsetMs: +4 * 60_000, expect: null },
      ];
      for (const [i, c] of cases.entries()) {
        clock.set(new Date(Date.now() + c.offsetMs));
        await d.contact();
        await w.drain();
        const { body, headers } = rx.requests[i];
        assert.equal(header(headers, 'webhook-timestamp'), String(Math.floor(clock.now().getTime() / 1000)), `case ${i}`);
        assert.equal(webhookSignatureOk(ep.secret, body, headers), true, `case ${i}: the signature itself is right`);
        assert.equal(xSignatureOk(ep.secret, body, headers), true, `case ${i}`);
        if (c.expect) assert.throws(() => thirdPartyVerifier(ep.secret).verify(body, asStrings(headers)), c.expect, `case ${i}`);
        else assert.doesNotThrow(() => thirdPartyVerifier(ep.secret).verify(body, asStrings(headers)), `case ${i}`);
      }
    });

    it('on a retry webhook-timestamp is the new attempt\'s time while webhook-id stays the event id; every attempt verifies', async () => {
      const d = await desk();
      const rx = await receiver();
      script(rx, (_req, i) => ({ status: i < 2 ? 500 : 200 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      const w = worker();
      await w.drain();
      const dlv = await delivery(ep.id, eventId);
      clock.set(dlv.next_attempt_at); // +30 s
      await w.drain();
      clock.set((await delivery(ep.id, eventId)).next_attempt_at); // +120 s
      await w.drain();

      assert.equal(rx.requests.length, 3);
      assert.deepEqual(idsOf(rx), [eventId, eventId, eventId]);
      const stamps = rx.requests.map((r) => Number(header(r.headers, 'webhook-timestamp')));
      assert.deepEqual([stamps[1] - stamps[0], stamps[2] - stamps[1]], [30, 120]);
      // The body is the same on every attempt; the signatures differ (they cover the timestamp).
      assert.equal(new Set(rx.requests.map((r) => r.body)).size, 1);
      assert.equal(new Set(rx.requests.map((r) => r.headers['webhook-signature'])).size, 3);
      for (const r of rx.requests) {
        assert.equal(xSignatureOk(ep.secret, r.body, r.headers), true);
        assert.equal(webhookSignatureOk(ep.secret, r.body, r.headers), true);
      }
      // The last one is recent enough for the third-party verifier's tolerance.
      const last = rx.requests[2];
      assert.doesNotThrow(() => thirdPartyVerifier(ep.secret).verify(last.body, asStrings(last.headers)));
      assert.equal((await delivery(ep.id, eventId)).status, 'succeeded');
    });

    it('during a secret rotation both signatures go out (new first; X-Signature-Previous for the old); a receiver on the old secret still verifies; after 24 h only the new one', async () => {
      const d = await desk();
      const rx = await receiver();
      const oldSecret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
      const ep = await d.endpoint(rx.url, ['contact.created'], { secret: oldSecret });
      const rotated = await d.post(`/v1/webhooks/${ep.id}/rotate-secret`, {});
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      const newSecret = rotated.body.secret as string;
      assert.notEqual(newSecret, oldSecret);
      const w = worker();

      await d.contact();
      await w.drain();
      const during = rx.requests[0];
      assert.deepEqual(xSignatureEntries(newSecret, during.body, during.headers), [true, false]);
      assert.deepEqual(xSignatureEntries(oldSecret, during.body, during.headers), [false, true]);
      assert.deepEqual(webhookSignatureEntries(newSecret, during.body, during.headers), [true, false]);
      assert.deepEqual(webhookSignatureEntries(oldSecret, during.body, during.headers), [false, true]);
      assert.doesNotThrow(() => new Webhook(oldSecret).verify(during.body, asStrings(during.headers)));
      assert.doesNotThrow(() => new Webhook(newSecret).verify(during.body, asStrings(during.headers)));

      clock.advance(24 * 3600_000 + 1000);
      await d.contact();
      await w.drain();
      const after = rx.requests[1];
      assert.equal(after.headers['x-signature-previous'], undefined);
      assert.deepEqual(xSignatureEntries(newSecret, after.body, after.headers), [true]);
      assert.deepEqual(webhookSignatureEntries(newSecret, after.body, after.headers), [true]);
      assert.equal(xSignatureOk(oldSecret, after.body, after.headers), false);
      assert.equal(webhookSignatureOk(oldSecret, after.body, after.headers), false);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('payload contract', () => {
    it('the body is exactly {id, event, created_at, workspace_id, data} (+ previous on ticket.updated) and data equals GET /v1/tickets/{id} at that moment (created, then updated)', async () => {
      const d = await desk();
      const rx = await receiver();
      await d.endpoint(rx.url, ['ticket.created', 'ticket.updated']);
      const w = worker();

      const created = await d.post('/v1/tickets', { subject: 'Parcel lost', description: 'Order 1234', contact: { email: 'sarah@example.com', name: 'Sarah Miller' }, tags: ['shipping'] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ticketId = created.body.id as string;
      const shownAtCreation = (await d.get(`/v1/tickets/${ticketId}`).expect(200)).body;
      await w.drain();

      clock.advance(60_000);
      const patched = await d.patch(`/v1/tickets/${ticketId}`, { priority: 'high', tags: ['shipping', 'vip'] });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      const shownAfterPatch = (await d.get(`/v1/tickets/${ticketId}`).expect(200)).body;
      await w.drain();

      assert.deepEqual(eventsOf(rx), ['ticket.created', 'ticket.updated']);
      const events = await db.knex('events').where({ ticket_id: ticketId }).whereIn('type', ['ticket.created', 'ticket.updated']).orderBy('id');
      assert.equal(events.length, 2);
      for (const [i, shown] of [shownAtCreation, shownAfterPatch].entries()) {
        const body = JSON.parse(rx.requests[i].body);
        assert.deepEqual(Object.keys(body).sort(), ['created_at', 'data', 'event', 'id', 'workspace_id', ...(i === 1 ? ['previous'] : [])].sort());
        assert.match(body.id, /^evt_/);
        assert.equal(body.id, events[i].id);
        assert.equal(body.event, events[i].type);
        assert.equal(body.created_at, events[i].created_at.toISOString());
        assert.equal(body.workspace_id, d.ws.id);
        assert.deepEqual(body.data, shown, `data of ${body.event}`);
      }
      // The number is the real one (not a placeholder) and the update is visible.
      assert.equal(JSON.parse(rx.requests[0].body).data.number, created.body.number);
      assert.equal(JSON.parse(rx.requests[1].body).data.priority, 'high');
      assert.deepEqual(JSON.parse(rx.requests[1].body).previous, { priority: 'normal', tags: ['shipping'] });
    });

    it('contact.created and contact.tagged: data equals GET /v1/contacts/{id} at that moment', async () => {
      const d = await desk();
      const rx = await receiver();
      await d.endpoint(rx.url, ['contact.created', 'contact.tagged']);
      const w = worker();

      const created = await d.post('/v1/contacts', { email: 'lee@example.com', name: 'Lee Chen', custom_fields: { plan: 'pro' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      const shownAtCreation = (await d.get(`/v1/contacts/${id}`).expect(200)).body;
      await w.drain();
      clock.advance(1000);
      const tagged = await d.post(`/v1/contacts/${id}/tags`, { tags: ['vip', 'beta'] });
      assert.equal(tagged.status, 200, JSON.stringify(tagged.body));
      const shownAfterTag = (await d.get(`/v1/contacts/${id}`).expect(200)).body;
      await w.drain();

      assert.deepEqual(eventsOf(rx), ['contact.created', 'contact.tagged']);
      const [a, b] = rx.requests.map((r) => JSON.parse(r.body));
      assert.deepEqual(Object.keys(a).sort(), ['created_at', 'data', 'event', 'id', 'workspace_id']);
      assert.deepEqual(a.data, shownAtCreation);
      assert.deepEqual(b.data, shownAfterTag);
      assert.deepEqual([...b.data.tags].sort(), ['beta', 'vip']);
    });

    it('previous and details next to data (SPEC §4.6): ticket.updated, ticket.status_changed, ticket.assigned, contact.updated; the timeline shows the same previous', async () => {
      const d = await desk();
      const rx = await receiver();
      await d.endpoint(rx.url, ['ticket.created', 'ticket.updated', 'ticket.status_changed', 'ticket.resolved', 'ticket.assigned', 'contact.updated', 'contact.tagged']);
      const w = worker();
      const agent = await makeAgent(db.knex, { workspaceId: d.ws.id });
      const team = await makeTeam(db.knex, { workspaceId: d.ws.id });
      /** Does one thing, delivers it, and returns the bodies it produced (in order). */
      const step = async (action: () => Promise<{ status: number; body: unknown }>): Promise<any[]> => {
        clock.advance(1000);
        const n = rx.requests.length;
        const res = await action();
        assert.equal(res.status, 200, JSON.stringify(res.body));
        await w.drain();
        return rx.requests.slice(n).map((r) => JSON.parse(r.body));
      };
      const BASE = ['created_at', 'data', 'event', 'id', 'workspace_id'];
      const keysOf = (body: object) => Object.keys(body).sort();

      const created = await d.post('/v1/tickets', { subject: 'Refund', contact: { email: 'ada@example.com', name: 'Ada Byron' }, tags: ['billing'] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const ticketId = created.body.id as string;
      const contactId = created.body.contact.id as string;
      await w.drain();
      const [createdBody] = rx.requests.map((r) => JSON.parse(r.body));
      assert.equal(createdBody.event, 'ticket.created');
      assert.deepEqual(keysOf(createdBody), BASE, 'ticket.created: neither previous nor details');

      // ticket.updated: the changed fields only, as the API names and shapes them.
      const [updated] = await step(() => d.patch(`/v1/tickets/${ticketId}`, { subject: 'Refund', priority: 'high', tags: ['billing', 'vip'], custom_fields: { order: 'A-1' } }));
      assert.equal(updated.event, 'ticket.updated');
      assert.deepEqual(keysOf(updated), [...BASE, 'previous'].sort());
      assert.deepEqual(updated.previous, { priority: 'normal', tags: ['billing'], custom_fields: {} });
      assert.equal(updated.data.priority, 'high');

      // ticket.status_changed: {"status":"open"}; ticket.resolved carries none.
      const [inProgress] = await step(() => d.post(`/v1/tickets/${ticketId}/status`, { status: 'in_progress' }));
      assert.equal(inProgress.event, 'ticket.status_changed');
      assert.deepEqual(keysOf(inProgress), [...BASE, 'previous'].sort());
      assert.deepEqual(inProgress.previous, { status: 'open' });
      assert.equal(inProgress.data.status, 'in_progress');
      const resolving = await step(() => d.post(`/v1/tickets/${ticketId}/status`, { status: 'resolved' }));
      const byEvent = Object.fromEntries(resolving.map((b) => [b.event, b]));
      assert.deepEqual(Object.keys(byEvent).sort(), ['ticket.resolved', 'ticket.status_changed']);
      assert.deepEqual(byEvent['ticket.status_changed'].previous, { status: 'in_progress', resolved_at: null });
      assert.deepEqual(keysOf(byEvent['ticket.resolved']), BASE, 'ticket.resolved: no previous');

      // ticket.assigned: previous {assignee_id, team_id}, both always; details {strategy, note}.
      const [toAgent] = await step(() => d.post(`/v1/tickets/${ticketId}/assign`, { agent_id: agent.id, note: 'Ada asked for Sam' }));
      assert.equal(toAgent.event, 'ticket.assigned');
      assert.deepEqual(keysOf(toAgent), [...BASE, 'details', 'previous'].sort());
      assert.deepEqual(toAgent.previous, { assignee_id: null, team_id: null });
      assert.deepEqual(toAgent.details, { strategy: null, note: 'Ada asked for Sam' });
      assert.equal(toAgent.data.assignee_id, agent.id);
      const [toTeam] = await step(() => d.post(`/v1/tickets/${ticketId}/assign`, { team_id: team.id }));
      assert.deepEqual(toTeam.previous, { assignee_id: agent.id, team_id: null }, 'the unchanged assignee is there too');
      assert.deepEqual(toTeam.details, { strategy: null, note: null });
      assert.equal(toTeam.data.team_id, team.id);

      // contact.updated: the changed fields before; contact.tagged carries none.
      const [contactUpdated] = await step(() => d.patch(`/v1/contacts/${contactId}`, { name: 'Ada Lovelace', phone: '+44 20 7946 0000', custom_fields: { plan: 'pro' } }));
      assert.equal(contactUpdated.event, 'contact.updated');
      assert.deepEqual(keysOf(contactUpdated), [...BASE, 'previous'].sort());
      assert.deepEqual(contactUpdated.previous, { name: 'Ada Byron', phone: null, custom_fields: {} });
      assert.equal(contactUpdated.data.name, 'Ada Lovelace');
      const [tagged] = await step(() => d.post(`/v1/contacts/${contactId}/tags`, { tags: ['vip'] }));
      assert.equal(tagged.event, 'contact.tagged');
      assert.deepEqual(keysOf(tagged), BASE, 'contact.tagged: no previous');

      // The timeline shows each ticket event's previous as its webhook did (details stay out of it).
      const timeline = (await d.get(`/v1/tickets/${ticketId}/events?limit=200`).expect(200)).body.items;
      for (const body of [createdBody, updated, inProgress, ...resolving, toAgent, toTeam]) {
        const e = timeline.find((x: { id: string }) => x.id === body.id);
        assert.ok(e, `${body.event} ${body.id} in the timeline`);
        assert.equal(e.type, body.event);
        assert.deepEqual(e.previous, body.previous, `previous of ${body.event}`);
        assert.equal('details' in e, false);
      }
    });

    it('headers: content-type, user-agent, x-topicdesk-event, x-topicdesk-delivery (= the delivery id in the log), webhook-id = event id', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      await worker().drain();

      const log = await d.get(`/v1/webhooks/${ep.id}/deliveries`).expect(200);
      assert.equal(log.body.items.length, 1);
      const item = log.body.items[0];
      assert.equal(item.event_id, eventId);
      assert.match(item.id, /^dlv_/);

      const { headers, method, path } = rx.requests[0];
      assert.equal(method, 'POST');
      assert.equal(path, '/hook');
      assert.equal(headers['content-type'], 'application/json');
      assert.equal(headers['user-agent'], 'topicdesk-webhooks/1');
      assert.equal(headers['x-topicdesk-event'], 'contact.created');
      assert.equal(headers['x-topicdesk-delivery'], item.id);
      assert.equal(headers['webhook-id'], eventId);
      assert.equal(Number(headers['content-length']), byteLength(rx.requests[0].body));
      assert.equal(item.status, 'succeeded');
      assert.equal(item.next_attempt_at, null);
      assert.equal(item.attempts.length, 1);
      assert.equal(item.attempts[0].status_code, 200);
      assert.equal(item.attempts[0].error, null);
      assert.equal(item.attempts[0].response_excerpt, 'ok');
      assert.equal(item.attempts[0].at, START);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('fan-out', () => {
    it('goes to endpoints subscribed to the event (explicit list or "*") of the event\'s workspace only; a ping is not fanned out', async () => {
      const d = await desk();
      const stranger = await desk();
      const [rxTicket, rxAll, rxContact, rxUpdated, rxStranger] = await Promise.all([receiver(), receiver(), receiver(), receiver(), receiver()]);
      const onlyTickets = await d.endpoint(rxTicket.url, ['ticket.created']);
      const all = await d.endpoint(rxAll.url, ['*']);
      const contacts = await d.endpoint(rxContact.url, ['contact.created', 'contact.tagged']);
      const updated = await d.endpoint(rxUpdated.url, ['ticket.updated']);
      const strangers = await stranger.endpoint(rxStranger.url, ['*']);

      const ticket = await d.post('/v1/tickets', { subject: 'Hello', contact: { email: 'fan@example.com', name: 'Fan Out' } });
      assert.equal(ticket.status, 201, JSON.stringify(ticket.body));
      await d.post(`/v1/contacts/${ticket.body.contact.id}/tags`, { tags: ['x'] }).expect(200);
      const ping = await d.post(`/v1/webhooks/${onlyTickets.id}/test`);
      assert.equal(ping.status, 202, JSON.stringify(ping.body));
      assert.equal(ping.body.event, 'ping');

      const result = await worker().drain();
      assert.equal(result.events, 3, 'ping is not in the fan-out queue');
      assert.equal(result.attempts, 7);

      const sorted = (r: Receiver) => eventsOf(r).sort();
      assert.deepEqual(sorted(rxTicket), ['ping', 'ticket.created']);
      assert.deepEqual(sorted(rxAll), ['contact.created', 'contact.tagged', 'ticket.created']);
      assert.deepEqual(sorted(rxContact), ['contact.created', 'contact.tagged']);
      assert.deepEqual(sorted(rxUpdated), []);
      assert.deepEqual(sorted(rxStranger), []);
      const rowsOf = async (id: string) => (await deliveriesOf(id)).map((r: any) => r.event_type).sort();
      assert.deepEqual(await rowsOf(onlyTickets.id), ['ping', 'ticket.created']);
      assert.deepEqual(await rowsOf(all.id), ['contact.created', 'contact.tagged', 'ticket.created']);
      assert.deepEqual(await rowsOf(contacts.id), ['contact.created', 'contact.tagged']);
      assert.deepEqual(await rowsOf(updated.id), []);
      assert.deepEqual(await rowsOf(strangers.id), []);
    });

    it('an endpoint created after an event does not get it (it gets the later ones)', async () => {
      const d = await desk();
      const rx = await receiver();
      const before = await d.contact();
      clock.advance(1000);
      const ep = await d.endpoint(rx.url, ['*']);
      clock.advance(1000);
      const after = await d.contact();
      // Both events are still queued when the endpoint exists: only the later one is its.
      assert.deepEqual(await worker().drain(), { events: 2, attempts: 1 });
      assert.deepEqual(idsOf(rx), [after.eventId]);
      assert.deepEqual((await deliveriesOf(ep.id)).map((r: any) => r.event_id), [after.eventId]);
      assert.notEqual(before.eventId, after.eventId);
    });

    it('a disabled endpoint gets nothing new, not even the events of its disabled time once enabled again', async () => {
      const d = await desk();
      const [rxOff, rxOn, rxBorn] = await Promise.all([receiver(), receiver(), receiver()]);
      const off = await d.endpoint(rxOff.url, ['*']);
      await d.endpoint(rxOn.url, ['*']);
      const bornDisabled = await d.endpoint(rxBorn.url, ['*'], { enabled: false });
      assert.equal(bornDisabled.enabled, false);
      const w = worker();

      const res = await d.patch(`/v1/webhooks/${off.id}`, { enabled: false });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.enabled, false);
      clock.advance(1000);
      const whileOff = await d.contact();
      await w.drain();
      assert.equal(rxOff.requests.length, 0);
      assert.equal(rxBorn.requests.length, 0);
      // The other endpoint got the contact and the webhook.disabled event of the API disable.
      assert.deepEqual(eventsOf(rxOn).sort(), ['contact.created', 'webhook.disabled']);

      clock.advance(1000);
      await d.patch(`/v1/webhooks/${off.id}`, { enabled: true }).expect(200);
      await w.drain();
      assert.equal(rxOff.requests.length, 0, 'an event of the disabled time is not queued for it');
      assert.equal((await db.knex('webhook_deliveries').where({ endpoint_id: off.id, event_id: whileOff.eventId })).length, 0);

      clock.advance(1000);
      const afterOn = await d.contact();
      await w.drain();
      assert.deepEqual(idsOf(rxOff), [afterOn.eventId]);
      assert.equal(rxBorn.requests.length, 0);
      assert.equal((await deliveriesOf(bornDisabled.id)).length, 0);
    });

    it('an event from before a disable that is fanned out after it is held (paused) and goes out when the endpoint is enabled again', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      clock.advance(1000);
      const before = await d.contact();
      // The workers were down: the disable happens before the event is fanned out.
      clock.advance(1000);
      await d.patch(`/v1/webhooks/${ep.id}`, { enabled: false }).expect(200);
      clock.advance(1000);
      const during = await d.contact();
      const w = worker();
      await w.drain();
      assert.equal(rx.requests.length, 0, 'nothing goes to a disabled endpoint');
      const held = await delivery(ep.id, before.eventId);
      assert.equal(held.paused, true);
      assert.equal(held.status, 'pending');
      assert.equal((await d.deliveryJson(held.id)).next_attempt_at, null, 'a held delivery has no next attempt until enabled');
      assert.equal((await db.knex('webhook_deliveries').where({ endpoint_id: ep.id, event_id: during.eventId })).length, 0,
        'an event of the disabled time is not queued');

      clock.advance(1000);
      await d.patch(`/v1/webhooks/${ep.id}`, { enabled: true }).expect(200);
      await w.drain();
      assert.deepEqual(idsOf(rx), [before.eventId]);
      assert.equal((await delivery(ep.id, before.eventId)).status, 'succeeded');
    });

    it('an event from an earlier enabled period still goes out when the endpoint was disabled and enabled again before the fan-out', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      clock.advance(1000);
      const first = await d.contact();
      clock.advance(1000);
      await d.patch(`/v1/webhooks/${ep.id}`, { enabled: false }).expect(200);
      clock.advance(1000);
      const during = await d.contact();
      clock.advance(1000);
      await d.patch(`/v1/webhooks/${ep.id}`, { enabled: true }).expect(200);
      clock.advance(1000);
      const after = await d.contact();
      // Only now do the workers catch up.
      await worker().drain();
      assert.deepEqual(idsOf(rx).sort(), [first.eventId, after.eventId].sort());
      assert.equal((await db.knex('webhook_deliveries').where({ endpoint_id: ep.id, event_id: during.eventId })).length, 0);
    });

    it('an event written in a rolled-back transaction produces no delivery; one in a transaction still open is delivered once it commits', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['*']);
      const w = worker();

      await assert.rejects(db.knex.transaction(async (trx) => {
        await t.services.contacts.upsert(trx, d.ws.id, { email: 'ghost@example.com', name: 'Ghost' }, SYSTEM);
        await t.services.contacts.upsert(trx, d.ws.id, { email: 'ghost2@example.com', name: 'Ghost 2' }, SYSTEM);
        throw new Error('roll it back');
      }), /roll it back/);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      assert.equal(rx.requests.length, 0);

      // A transaction not yet committed: its event is invisible to the fan-out, and is not skipped later.
      const trx = await db.knex.transaction();
      const { contact } = await t.services.contacts.upsert(trx, d.ws.id, { email: 'slow@example.com', name: 'Slow' }, SYSTEM);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      await trx.commit();
      assert.deepEqual(await w.drain(), { events: 1, attempts: 1 });

      assert.equal(rx.requests.length, 1);
      assert.equal(JSON.parse(rx.requests[0].body).data.id, contact.id);
      assert.equal((await db.knex('events').where({ workspace_id: d.ws.id })).length, 1);
      assert.equal((await deliveriesOf(ep.id)).length, 1);
      assert.equal((await db.knex('webhook_fanout_queue')).length, 0);
    });

    it('one delivery per (event, endpoint): two workers draining at once, drain again, a re-queued event', async () => {
      const d = await desk();
      const [rxA, rxB] = await Promise.all([receiver(), receiver()]);
      const a = await d.endpoint(rxA.url, ['*']);
      const b = await d.endpoint(rxB.url, ['contact.created']);
      const eventIds: string[] = [];
      for (let i = 0; i < 30; i++) eventIds.push((await d.contact()).eventId);

      const w1 = worker();
      const w2 = worker();
      const [r1, r2] = await Promise.all([w1.drain(), w2.drain()]);
      assert.equal(r1.events + r2.events, 30);
      assert.equal(r1.attempts + r2.attempts, 60);
      assert.deepEqual(await w1.drain(), { events: 0, attempts: 0 });
      assert.deepEqual(await w2.drain(), { events: 0, attempts: 0 });

      // The same events queued again (as if a fan-out had to be redone) add nothing.
      await db.knex('webhook_fanout_queue').insert(eventIds.map((id) => ({ event_id: id })));
      assert.deepEqual(await w1.drain(), { events: 30, attempts: 0 });

      for (const [ep, rx] of [[a, rxA], [b, rxB]] as const) {
        const rows = await deliveriesOf(ep.id);
        assert.equal(rows.length, 30);
        assert.deepEqual(rows.map((r: any) => r.event_id).sort(), [...eventIds].sort());
        assert.ok(rows.every((r: any) => r.status === 'succeeded' && r.attempt_count === 1));
        assert.equal(rx.requests.length, 30);
        for (const id of eventIds) assert.equal(rx.withWebhookId(id).length, 1, `${id} at ${ep.id}`);
      }
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('retries', () => {
    it('500 ×3 then 200: four attempts on the schedule (random 0.5), succeeded, exactly one 2xx', async () => {
      const d = await desk();
      const rx = await receiver();
      const answered = script(rx, (_req, i) => (i < 3 ? { status: 500, body: `failure ${i + 1}` } : { status: 200, body: 'thanks' }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      const w = worker();
      const t0 = clock.now().getTime();

      await w.drain();
      let row = await delivery(ep.id, eventId);
      const expectedAt = [t0];
      for (const [k, wait] of SCHEDULE.slice(0, 3).entries()) {
        assert.equal(row.status, 'failed', `after failure ${k + 1}`);
        assert.equal(row.in_flight_since, null);
        const due = expectedAt[k] + wait * 1000;
        assert.equal(ms(row.next_attempt_at), due, `next_attempt_at after failure ${k + 1}`);
        // Not a millisecond early.
        clock.set(new Date(due - 1));
        assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
        clock.set(new Date(due));
        assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
        expectedAt.push(due);
        row = await delivery(ep.id, eventId);
      }
      assert.equal(row.status, 'succeeded');
      assert.equal(row.next_attempt_at, null);
      assert.deepEqual(answered, [500, 500, 500, 200]);
      assert.equal(rx.withWebhookId(eventId).length, 4);

      const shown = await d.deliveryJson(row.id);
      assert.equal(shown.status, 'succeeded');
      assert.equal(shown.next_attempt_at, null);
      assert.deepEqual(shown.attempts.map((a: any) => a.status_code), [500, 500, 500, 200]);
      assert.deepEqual(shown.attempts.map((a: any) => ms(a.at)), expectedAt);
      assert.deepEqual(shown.attempts.map((a: any) => a.response_excerpt), ['failure 1', 'failure 2', 'failure 3', 'thanks']);
      assert.deepEqual(shown.attempts.map((a: any) => a.error), ['the endpoint answered 500', 'the endpoint answered 500', 'the endpoint answered 500', null]);
      assert.ok(shown.attempts.every((a: any) => Number.isInteger(a.duration_ms) && a.duration_ms >= 0));
      // A success after failures ends the endpoint's failure streak.
      assert.equal((await d.endpointJson(ep.id)).failing_since, null);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
    });

    it('jitter bounds: random() = 0 waits 0.8× and random() = 1 waits 1.2× of every step', async () => {
      const d = await desk();
      const rx = await receiver();
      script(rx, () => ({ status: 500 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      for (const [r, factor] of [[0, 0.8], [1, 1.2], [0.25, 0.9]] as const) {
        const { eventId } = await d.contact();
        const w = worker({}, () => r);
        await w.drain();
        const waits: number[] = [];
        for (let k = 0; k < SCHEDULE.length; k++) {
          const row = await delivery(ep.id, eventId);
          assert.equal(row.status, 'failed');
          waits.push(ms(row.next_attempt_at)! - clock.now().getTime());
          clock.set(row.next_attempt_at);
          await w.drain();
        }
        assert.deepEqual(waits, SCHEDULE.map((s) => Math.round(s * 1000 * factor)), `random ${r}`);
        assert.equal((await delivery(ep.id, eventId)).status, 'dead');
        await w.stop();
      }
    });

    it('every attempt fails: 9 attempts on the schedule, then dead with next_attempt_at null and a warn log; a replay sends it again with the same webhook-id', async () => {
      const d = await desk();
      const rx = await receiver();
      let failing = true;
      const answered = script(rx, () => ({ status: failing ? 503 : 204 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      const w = worker();
      const t0 = clock.now().getTime();

      await w.drain();
      let at = t0;
      for (const wait of SCHEDULE) {
        const row = await delivery(ep.id, eventId);
        assert.equal(row.status, 'failed');
        assert.equal(ms(row.next_attempt_at), at + wait * 1000);
        at += wait * 1000;
        clock.set(new Date(at));
        assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
      }
      const row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'dead');
      assert.equal(row.next_attempt_at, null);
      assert.equal(row.attempts.length, 9);
      assert.equal(rx.withWebhookId(eventId).length, 9);
      const shown = await d.deliveryJson(row.id);
      assert.equal(shown.status, 'dead');
      assert.equal(shown.next_attempt_at, null);
      // Nothing further, however long we wait.
      clock.advance(30 * 24 * 3600_000);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });

      const warn = logLines().find((l) => l.level === 40 && l.delivery_id === row.id);
      assert.ok(warn, 'a warn log names the dead delivery');
      assert.match(warn.msg, /dead/);
      assert.equal(warn.endpoint_id, ep.id);
      // The schedule spans ~47 h: far from the 120 h that would disable the endpoint.
      assert.equal((await d.endpointJson(ep.id)).enabled, true);

      failing = false;
      const replay = await d.post(`/v1/webhook-deliveries/${row.id}/replay`);
      assert.equal(replay.status, 202, JSON.stringify(replay.body));
      assert.equal(replay.body.status, 'pending');
      assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
      assert.equal(rx.withWebhookId(eventId).length, 10);
      assert.deepEqual(answered.filter((s) => s < 300), [204]);
      assert.equal((await delivery(ep.id, eventId)).status, 'succeeded');
    });

    it('receiver down: "connection refused", retried after it is up again once the clock passes next_attempt_at, delivered exactly once', async () => {
      const d = await desk();
      const rx = await receiver();
      const answered = script(rx, () => ({ status: 200 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      const w = worker();

      await rx.down();
      assert.deepEqual(await w.drain(), { events: 1, attempts: 1 });
      let row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts[0].error, 'connection refused');
      assert.equal(row.attempts[0].status_code, null);
      assert.equal(row.attempts[0].response_excerpt, null);
      assert.equal(ms(row.next_attempt_at), clock.now().getTime() + 30_000);
      assert.notEqual((await d.endpointJson(ep.id)).failing_since, null);

      await rx.up();
      // Up again, but not due yet: nothing is sent early.
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      assert.equal(rx.requests.length, 0);
      clock.set(row.next_attempt_at);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
      row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'succeeded');
      clock.advance(7 * 24 * 3600_000);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      assert.equal(rx.withWebhookId(eventId).length, 1);
      assert.deepEqual(answered, [200]);
      assert.equal((await d.endpointJson(ep.id)).failing_since, null);
    });

    it('a receiver that does not answer within timeoutMs: failed attempt "no answer within 0.3 s", retried later', async () => {
      const d = await desk();
      const rx = await receiver();
      let hang = true;
      script(rx, () => (hang ? { hang: true } : { status: 200 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      const w = worker({ timeoutMs: 300 });

      assert.deepEqual(await w.drain(), { events: 1, attempts: 1 });
      let row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts[0].error, 'no answer within 0.3 s');
      assert.equal(row.attempts[0].status_code, null);
      assert.equal(rx.requests.length, 1, 'the request did arrive');
      hang = false;
      clock.set(row.next_attempt_at);
      await w.drain();
      row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'succeeded');
      assert.equal(rx.withWebhookId(eventId).length, 2);
    });

    it('3xx is a failure "redirects are not followed" and the Location target is never hit', async () => {
      const d = await desk();
      const rx = await receiver();
      const target = await receiver();
      const codes = [301, 302, 303, 307, 308];
      script(rx, (_req, i) => ({ status: codes[i], headers: { Location: target.url }, body: 'moved' }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker();
      for (const code of codes) {
        const { eventId } = await d.contact();
        await w.drain();
        const row = await delivery(ep.id, eventId);
        assert.equal(row.status, 'failed', `${code}`);
        assert.equal(row.attempts[0].status_code, code);
        assert.equal(row.attempts[0].error, `redirects are not followed (${code})`);
        assert.equal(ms(row.next_attempt_at), clock.now().getTime() + 30_000);
      }
      assert.equal(rx.requests.length, codes.length);
      assert.equal(target.requests.length, 0);
    });

    it('Retry-After on 429/503 pushes the next attempt back (max with the schedule, capped at 24 h); ignored on other statuses', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker();
      const cases: Array<{ reply: Reply; waitSeconds: number }> = [
        { reply: { status: 429, headers: { 'Retry-After': '3600' } }, waitSeconds: 3600 },
        { reply: { status: 429, headers: { 'Retry-After': '10' } }, waitSeconds: 30 },
        { reply: { status: 429, headers: { 'Retry-After': '0' } }, waitSeconds: 30 },
        { reply: { status: 503, headers: { 'Retry-After': '7200' } }, waitSeconds: 7200 },
        { reply: { status: 429, headers: { 'Retry-After': '1000000' } }, waitSeconds: 86400 },
        { reply: { status: 429, headers: { 'Retry-After': 'soon' } }, waitSeconds: 30 },
        { reply: { status: 429 }, waitSeconds: 30 },
        { reply: { status: 500, headers: { 'Retry-After': '3600' } }, waitSeconds: 30 },
      ];
      for (const c of cases) {
        rx.respond(() => c.reply);
        const { eventId } = await d.contact();
        await w.drain();
        const row = await delivery(ep.id, eventId);
        assert.equal(row.status, 'failed');
        assert.equal(ms(row.next_attempt_at), clock.now().getTime() + c.waitSeconds * 1000, JSON.stringify(c.reply));
      }

      // A later step of the schedule (2 min) beats a smaller Retry-After (60 s).
      rx.respond(() => ({ status: 500 }));
      const { eventId } = await d.contact();
      await w.drain();
      clock.set((await delivery(ep.id, eventId)).next_attempt_at);
      rx.respond(() => ({ status: 429, headers: { 'Retry-After': '60' } }));
      await w.drain();
      const row = await delivery(ep.id, eventId);
      assert.equal(ms(row.next_attempt_at), clock.now().getTime() + 120_000);
    });

    it('Retry-After as an HTTP date (clock at the wall time): the next attempt waits until then', async () => {
      clock.set(new Date());
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const until = new Date(clock.now().getTime() + 2 * 3600_000);
      rx.respond(() => ({ status: 503, headers: { 'Retry-After': until.toUTCString() } }));
      const { eventId } = await d.contact();
      await worker().drain();
      const row = await delivery(ep.id, eventId);
      const wait = ms(row.next_attempt_at)! - clock.now().getTime();
      // HTTP dates have whole seconds.
      assert.ok(wait > 7190_000 && wait <= 7200_000, `waits ${wait} ms`);
    });

    it('an answer with NUL bytes (binary, gzip) is recorded: the excerpt keeps U+FFFD in their place', async () => {
      const d = await desk();
      const rx = await receiver();
      rx.respond(() => ({ status: 200, body: 'o\u0000k' }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      assert.deepEqual(await worker().drain(), { events: 1, attempts: 1 });
      const row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'succeeded');
      assert.equal(row.attempts[0].response_excerpt, 'o\uFFFDk');
      assert.equal(rx.requests.length, 1);
    });

    it('a plain-http endpoint registered while private targets were allowed is refused once they no longer are', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      await worker({ allowPrivateTargets: false }).drain();
      assert.equal(rx.requests.length, 0);
      const row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts[0].error, 'plain http is refused: the endpoint must use https');
    });

    it('the response excerpt keeps at most 1024 bytes and never cuts a UTF-8 character in half', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker();
      const ascii = 'x'.repeat(5 * 1024);
      const cases: Array<{ status: number; body: string; excerpt: string | null }> = [
        { status: 500, body: ascii, excerpt: ascii.slice(0, 1024) },
        { status: 500, body: '€'.repeat(2000), excerpt: '€'.repeat(341) }, // 3 bytes each: 1023 bytes fit
        { status: 500, body: `a${'😀'.repeat(500)}`, excerpt: `a${'😀'.repeat(255)}` }, // 1 + 4 × 255 = 1021 bytes
        { status: 200, body: 'é'.repeat(600), excerpt: 'é'.repeat(512) }, // exactly 1024 bytes
        { status: 200, body: 'y'.repeat(200 * 1024), excerpt: 'y'.repeat(1024) }, // larger than what is read at all
        { status: 500, body: '', excerpt: null },
      ];
      for (const c of cases) {
        rx.respond(() => ({ status: c.status, body: c.body, headers: { 'content-type': 'text/plain; charset=utf-8' } }));
        const { eventId } = await d.contact();
        await w.drain();
        const row = await delivery(ep.id, eventId);
        assert.equal(row.status, c.status === 200 ? 'succeeded' : 'failed');
        const shown = await d.deliveryJson(row.id);
        const excerpt = shown.attempts[0].response_excerpt as string | null;
        if (c.excerpt === null) { assert.equal(excerpt, null); continue; }
        assert.ok(byteLength(excerpt!) <= 1024, `${byteLength(excerpt!)} bytes`);
        assert.ok(!excerpt!.includes('\uFFFD'), 'no replacement character');
        assert.ok(c.body.startsWith(excerpt!), 'a prefix of the body');
        assert.equal(excerpt, c.excerpt);
      }
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('disabling', () => {
    it('410: the endpoint is disabled, webhook.disabled (no secret) reaches another "*" endpoint, held deliveries are not attempted, PATCH enabled → they go out', async () => {
      const d = await desk();
      const [rxGone, rxOther] = await Promise.all([receiver(), receiver()]);
      const gone = await d.endpoint(rxGone.url, ['contact.created']);
      await d.endpoint(rxOther.url, ['*']);
      const w = worker();

      // e1 fails (due again in 30 s); e2 then answers 410.
      rxGone.respond(() => ({ status: 500 }));
      const e1 = await d.contact();
      await w.drain();
      clock.advance(1000);
      rxGone.respond(() => ({ status: 410, body: 'gone' }));
      const e2 = await d.contact();
      assert.deepEqual(await w.drain(), { events: 1, attempts: 2 });
      const disabledAt = clock.now();

      const shownGone = await d.endpointJson(gone.id);
      assert.equal(shownGone.enabled, false);
      assert.equal(shownGone.disabled_reason, 'the endpoint answered 410 Gone');
      assert.equal(shownGone.disabled_at, disabledAt.toISOString());
      const d2 = await delivery(gone.id, e2.eventId);
      assert.equal(d2.attempts[0].status_code, 410);
      for (const e of [e1, e2]) {
        const row = await delivery(gone.id, e.eventId);
        assert.equal(row.paused, true, 'held');
        assert.equal(row.status, 'failed', 'not dropped');
      }

      // webhook.disabled fans out to the "*" endpoint (not to the disabled one).
      await w.drain();
      const notice = rxOther.requests.find((r) => r.headers['x-topicdesk-event'] === 'webhook.disabled');
      assert.ok(notice, 'webhook.disabled delivered');
      const body = JSON.parse(notice.body);
      assert.equal(body.event, 'webhook.disabled');
      assert.equal(body.workspace_id, d.ws.id);
      assert.deepEqual(body.data, shownGone, 'data is the endpoint as GET shows it');
      assert.ok(!('secret' in body.data));
      assert.ok(!notice.body.includes(gone.secret), 'the secret is not in the body');
      assert.ok(!t.logs.some((l) => l.includes(gone.secret)), 'nor in the logs');
      assert.equal((await deliveriesOf(gone.id)).filter((r: any) => r.event_type === 'webhook.disabled').length, 0);
      const requestsWhenDisabled = rxGone.requests.length;
      assert.equal(requestsWhenDisabled, 2);

      // Held: long past their due time, nothing goes to the disabled endpoint, nothing new is queued.
      rxGone.respond(() => ({ status: 200 }));
      clock.advance(3600_000);
      const e3 = await d.contact();
      await w.drain();
      assert.equal(rxGone.requests.length, requestsWhenDisabled);
      assert.equal((await db.knex('webhook_deliveries').where({ endpoint_id: gone.id, event_id: e3.eventId })).length, 0);
      assert.equal(rxOther.withWebhookId(e3.eventId).length, 1);
      // A replay is refused while it is disabled.
      assert.equal((await d.post(`/v1/webhook-deliveries/${d2.id}/replay`)).status, 409);

      const enabled = await d.patch(`/v1/webhooks/${gone.id}`, { enabled: true });
      assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
      assert.equal(enabled.body.enabled, true);
      assert.equal(enabled.body.disabled_reason, null);
      assert.equal(enabled.body.failing_since, null);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 2 });
      assert.deepEqual(rxGone.requests.slice(requestsWhenDisabled).map((r) => r.headers['webhook-id']).sort(), [e1.eventId, e2.eventId].sort());
      for (const e of [e1, e2]) {
        const row = await delivery(gone.id, e.eventId);
        assert.equal(row.status, 'succeeded');
        assert.equal(row.paused, false);
      }
    });

    it('continuous failure for disableAfterFailingHours disables the endpoint (and is an event)', async () => {
      const d = await desk();
      const rx = await receiver();
      script(rx, () => ({ status: 500 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker({ disableAfterFailingHours: 1 });
      const t0 = clock.now();
      const { eventId } = await d.contact();

      await w.drain();
      // Attempts at +30 s, +150 s, +750 s: failing for less than an hour.
      for (let k = 0; k < 3; k++) {
        clock.set((await delivery(ep.id, eventId)).next_attempt_at);
        await w.drain();
        const shown = await d.endpointJson(ep.id);
        assert.equal(shown.enabled, true, `after attempt ${k + 2}`);
        assert.equal(shown.failing_since, t0.toISOString());
      }
      assert.equal(clock.now().getTime() - t0.getTime(), 750_000);
      // The next is at +4350 s: past the hour.
      clock.set((await delivery(ep.id, eventId)).next_attempt_at);
      await w.drain();
      const shown = await d.endpointJson(ep.id);
      assert.equal(shown.enabled, false);
      assert.match(shown.disabled_reason, /every attempt has failed since/);
      assert.ok(shown.disabled_reason.includes(t0.toISOString()), shown.disabled_reason);
      assert.equal(shown.disabled_at, clock.now().toISOString());
      const row = await delivery(ep.id, eventId);
      assert.equal(row.paused, true);
      assert.equal(row.attempts.length, 5);
      const notice = await db.knex('events').where({ workspace_id: d.ws.id, type: 'webhook.disabled' });
      assert.equal(notice.length, 1);
      assert.equal(notice[0].payload.id, ep.id);
      assert.equal(notice[0].detail.reason, shown.disabled_reason);
      assert.ok(logLines().some((l) => l.level === 40 && l.endpoint_id === ep.id && /disabled/.test(l.msg)));
      // Nothing more goes out.
      clock.advance(24 * 3600_000);
      assert.equal((await w.drain()).attempts, 0);
      assert.equal(rx.requests.length, 5);
    });

    it('a success in between resets failing_since: the failure streak starts again', async () => {
      const d = await desk();
      const rx = await receiver();
      let status = 500;
      script(rx, () => ({ status }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker({ disableAfterFailingHours: 1 });
      const t0 = clock.now();

      await d.contact();
      await w.drain();
      assert.equal((await d.endpointJson(ep.id)).failing_since, t0.toISOString());

      clock.advance(30 * 60_000);
      status = 200;
      await d.contact();
      await w.drain(); // the new event and the retry of the first both succeed
      assert.equal((await d.endpointJson(ep.id)).failing_since, null);

      // 70 min after the first failure: failing again, but the streak starts now.
      clock.advance(40 * 60_000);
      const t1 = clock.now();
      status = 500;
      const { eventId } = await d.contact();
      await w.drain();
      let shown = await d.endpointJson(ep.id);
      assert.equal(shown.enabled, true, 'the earlier streak ended with the success');
      assert.equal(shown.failing_since, t1.toISOString());
      for (let k = 0; k < 3; k++) {
        clock.set((await delivery(ep.id, eventId)).next_attempt_at);
        await w.drain();
        assert.equal((await d.endpointJson(ep.id)).enabled, true);
      }
      // An hour after t1 it does count.
      clock.set((await delivery(ep.id, eventId)).next_attempt_at);
      await w.drain();
      shown = await d.endpointJson(ep.id);
      assert.equal(shown.enabled, false);
      assert.ok(shown.disabled_reason.includes(t1.toISOString()), shown.disabled_reason);
    });
  });

  // ---------------------------------------------------------------------------------------

  describe('nothing lost', () => {
    it('a worker that claims and dies: no resend during the lease; after it the same webhook-id goes out once, the log notes the lost attempt, a late record is ignored', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();

      // The "dead" worker: fans out, claims, never records.
      assert.equal(await deliveryQueue.fanOut(db.knex, 100, clock.now()), 1);
      const claimedAt = clock.now();
      const leaseUntil = new Date(claimedAt.getTime() + t.config.webhooks.timeoutMs + 20_000);
      const claimed = await deliveryQueue.claim(db.knex, { now: claimedAt, leaseUntil, limit: 10, busy: [] });
      assert.equal(claimed.length, 1);
      const dead = claimed[0];
      assert.equal(dead.eventId, eventId);
      assert.equal(dead.attemptCount, 1);

      const w = worker();
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      clock.set(new Date(leaseUntil.getTime() - 1));
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      assert.equal(rx.requests.length, 0);
      // The API refuses a replay while it is in flight.
      assert.equal((await d.post(`/v1/webhook-deliveries/${dead.id}/replay`)).status, 409);

      clock.set(leaseUntil);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
      assert.equal(rx.withWebhookId(eventId).length, 1);
      assert.equal(rx.requests[0].headers['x-topicdesk-delivery'], dead.id);

      const row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'succeeded');
      assert.equal(row.attempt_count, 2);
      assert.equal(row.in_flight_since, null);
      const shown = await d.deliveryJson(dead.id);
      assert.equal(shown.attempts.length, 2);
      assert.deepEqual(shown.attempts[0], { at: claimedAt.toISOString(), status_code: null, duration_ms: null, error: LOST, response_excerpt: null });
      assert.equal(shown.attempts[1].status_code, 200);
      assert.equal(shown.attempts[1].at, leaseUntil.toISOString());

      // The dead worker wakes up and records with its old token: nothing changes.
      const before = await delivery(ep.id, eventId);
      const late = await deliveryQueue.recordAttempt(db.knex, dead, {
        status: 'failed', scheduleStep: 1, nextAttemptAt: new Date(clock.now().getTime() + 30_000), now: clock.now(),
        attempt: { at: claimedAt.toISOString(), status_code: 500, duration_ms: 5, error: 'late', response_excerpt: null },
      });
      assert.equal(late, null);
      assert.deepEqual(await delivery(ep.id, eventId), before);
      clock.advance(3600_000);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 0 });
      assert.equal(rx.requests.length, 1);
    });

    it('a delivery whose worker dies on every attempt is given up (dead) once its schedule is used up, without another send', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      const schedule = [30, 60];
      assert.equal(await deliveryQueue.fanOut(db.knex, 100, clock.now()), 1);
      const lease = (now: Date) => new Date(now.getTime() + 1000);
      // Three claims that never record: the first attempt and the two scheduled retries, all lost.
      for (let i = 0; i < 3; i++) {
        const claimed = await deliveryQueue.claim(db.knex, { now: clock.now(), leaseUntil: lease(clock.now()), limit: 10, busy: [] });
        assert.equal(claimed.length, 1, `claim ${i + 1}`);
        assert.equal(claimed[0].scheduleStep, i, 'each lost attempt advances the schedule');
        clock.advance(1000);
      }
      const w = worker({ retryScheduleSeconds: schedule });
      assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
      assert.equal(rx.requests.length, 0, 'given up without sending again');
      const row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'dead');
      assert.equal(row.next_attempt_at, null);
      const shown = await d.deliveryJson(row.id);
      assert.deepEqual(shown.attempts.map((a: any) => a.error), [LOST, LOST, LOST, 'given up: no outcome was recorded for any scheduled attempt']);
      // A replay starts over and sends it.
      assert.equal((await d.post(`/v1/webhook-deliveries/${row.id}/replay`)).status, 202);
      assert.deepEqual(await w.drain(), { events: 0, attempts: 1 });
      assert.deepEqual(idsOf(rx), [eventId]);
    });

    it('one endpoint with a large backlog never has an attempt waiting for a socket: slow answers within the budget all succeed', async function () {
      this.timeout(20_000);
      const d = await desk();
      const rx = await receiver();
      // Every fourth answer is quick, the others take 500 ms, against a 900 ms budget: the quick
      // ones free the endpoint for more claims while the slow ones hold their sockets, so a
      // request that had to wait for a socket would run out of time.
      rx.respond((_req, i) => ({ status: 200, delayMs: i % 4 === 0 ? 20 : 500 }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      for (let i = 0; i < 24; i++) await d.contact();
      const w = worker({ concurrency: 16, concurrencyPerEndpoint: 4, timeoutMs: 900, pollIntervalMs: 20 });
      w.start();
      await waitFor('24 deliveries settled', async () => {
        const rows = await deliveriesOf(ep.id);
        return rows.length === 24 && rows.every((r: any) => r.status !== 'pending' || r.attempt_count > 1);
      }, 15_000);
      await w.stop();
      const rows = await deliveriesOf(ep.id);
      assert.deepEqual(rows.map((r: any) => r.status), Array(24).fill('succeeded'));
      assert.ok(rows.every((r: any) => r.attempt_count === 1), 'no attempt timed out and was retried');
    });

    it('a replay after the lease fences out a worker that is still running: its late success is not recorded over the replay', async () => {
      const d = await desk();
      const rx = await receiver();
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const { eventId } = await d.contact();
      assert.equal(await deliveryQueue.fanOut(db.knex, 100, clock.now()), 1);
      const leaseUntil = new Date(clock.now().getTime() + 1000);
      const [slow] = await deliveryQueue.claim(db.knex, { now: clock.now(), leaseUntil, limit: 10, busy: [] });
      clock.set(leaseUntil);
      const replayed = await d.post(`/v1/webhook-deliveries/${slow.id}/replay`);
      assert.equal(replayed.status, 202, JSON.stringify(replayed.body));
      assert.equal(replayed.body.attempts[0].error, LOST, 'the abandoned attempt is in the log');
      // The slow worker finally reports a success: too late, the replay's claim is newer.
      const late = await deliveryQueue.recordSuccesses(db.knex, [{ claim: slow, now: clock.now(),
        attempt: { at: clock.now().toISOString(), status_code: 200, duration_ms: 1, error: null, response_excerpt: null } }]);
      assert.deepEqual(late, []);
      assert.equal((await delivery(ep.id, eventId)).status, 'pending');
      await worker().drain();
      assert.deepEqual(idsOf(rx), [eventId]);
      assert.equal((await delivery(ep.id, eventId)).status, 'succeeded');
    });

    it('two started workers (real loops) on 200 events: every delivery exactly once at the receivers, all succeeded, #events × #subscribed = succeeded rows', async function () {
      this.timeout(90_000);
      const d = await desk();
      const [rxAll, rxContacts, rxTickets] = await Promise.all([receiver(), receiver(), receiver()]);
      const all = await d.endpoint(rxAll.url, ['*']);
      const contacts = await d.endpoint(rxContacts.url, ['contact.created']);
      const tickets = await d.endpoint(rxTickets.url, ['ticket.created']);
      const eventIds: string[] = [];
      for (let i = 0; i < 100; i++) eventIds.push((await d.contact()).eventId);

      const config = { pollIntervalMs: 20, batchSize: 25, concurrency: 8, concurrencyPerEndpoint: 4 };
      const w1 = worker(config);
      const w2 = worker(config);
      w1.start();
      w2.start();
      // More events while they run.
      for (let i = 0; i < 100; i++) eventIds.push((await d.contact()).eventId);

      const expected = eventIds.length * 2;
      await waitFor(`${expected} succeeded deliveries`, async () => {
        const [{ n }] = await db.knex('webhook_deliveries').where({ status: 'succeeded' }).count({ n: '*' });
        return Number(n) === expected;
      }, 60_000);
      await Promise.all([w1.stop(), w2.stop()]);

      const rows = await db.knex('webhook_deliveries').select('endpoint_id', 'event_id', 'status', 'attempt_count', 'in_flight_since', 'attempts');
      assert.equal(rows.length, expected, '#events × #subscribed endpoints');
      assert.ok(rows.every((r: any) => r.status === 'succeeded' && r.attempt_count === 1 && r.in_flight_since === null && r.attempts.length === 1));
      assert.equal(rows.filter((r: any) => r.endpoint_id === tickets.id).length, 0);
      for (const [ep, rx] of [[all, rxAll], [contacts, rxContacts]] as const) {
        assert.equal(rows.filter((r: any) => r.endpoint_id === ep.id).length, eventIds.length);
        assert.equal(rx.requests.length, eventIds.length, `requests at ${ep.id}`);
        assert.deepEqual([...new Set(idsOf(rx))].sort(), [...eventIds].sort());
      }
      assert.equal(rxTickets.requests.length, 0);
      assert.equal((await db.knex('webhook_fanout_queue')).length, 0);
    });

    it('stop() waits for the attempt in flight and records it; nothing is claimed afterwards', async () => {
      const d = await desk();
      const rx = await receiver();
      script(rx, () => ({ status: 200, delayMs: 400, body: 'slow ok' }));
      const ep = await d.endpoint(rx.url, ['contact.created']);
      const w = worker({ pollIntervalMs: 20 });
      const { eventId } = await d.contact();
      w.start();
      await rx.waitForRequests(1);
      const inFlight = await delivery(ep.id, eventId);
      assert.notEqual(inFlight.in_flight_since, null, 'claimed, answer pending');
      await w.stop();

      const row = await delivery(ep.id, eventId);
      assert.equal(row.status, 'succeeded');
      assert.equal(row.in_flight_since, null);
      assert.equal(row.attempts.length, 1);
      assert.equal(row.attempts[0].response_excerpt, 'slow ok');

      // Stopped: a new event stays queued.
      const later = await d.contact();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(rx.requests.length, 1);
      assert.deepEqual((await db.knex('webhook_fanout_queue')).map((r: any) => r.event_id), [later.eventId]);
    });
  });
});
