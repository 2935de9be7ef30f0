/**
 * Ticket writes under concurrency: the locks taken by creation, upserts and moves must never
 * deadlock each other, and the trigger-kept ticket_counts must always equal a real count.
 */
import assert from 'node:assert/strict';
import { makeKey, makeWorkspace } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('ticket writes under concurrency', () => {
  const db = useTestDatabase();
  let t: TestApp;

  before(() => { t = createTestApp(db.knex); });

  async function tenant() {
    const ws = await makeWorkspace(db.knex, t.services);
    const key = await makeKey(db.knex, t.services, { workspaceId: ws.id, rateLimitPerMinute: 1_000_000 });
    return { ws: ws.id, auth: key.auth };
  }

  /** ticket_counts as stored, and as counted from the tickets. */
  async function counts(ws: string) {
    const kept = await db.knex('ticket_counts').where({ workspace_id: ws }).where('n', '>', 0).orderBy('status').select('status', 'n');
    const real = await db.knex('tickets').where({ workspace_id: ws }).whereNull('archived_at').groupBy('status').orderBy('status').select('status').count({ n: '*' });
    return { kept: kept.map((r) => `${r.status}=${r.n}`), real: real.map((r: any) => `${r.status}=${r.n}`) };
  }

  it('never deadlocks creations for one contact given by id and by inline identity at once (5 rounds × 16)', async function () {
    this.timeout(60_000);
    const k = await tenant();
    const first = await t.request.post('/v1/tickets').set('Authorization', k.auth).send({ subject: 'seed', contact: { email: 'same@example.com' } }).expect(201);
    const contactId = first.body.contact.id;
    for (let round = 0; round < 5; round++) {
      const all = await Promise.all(Array.from({ length: 16 }, (_, i) => t.request.post('/v1/tickets').set('Authorization', k.auth)
        .send(i % 2 ? { subject: `r${round} ${i}`, contact_id: contactId } : { subject: `r${round} ${i}`, contact: { email: 'SAME@example.com', name: `Name ${i}` } })));
      assert.deepEqual(all.map((r) => r.status), Array(16).fill(201), all.map((r) => r.text).filter((x) => !x.includes('"number"')).join('\n'));
    }
    const numbers = (await db.knex('tickets').where({ workspace_id: k.ws }).orderBy('number').pluck('number')).map(Number);
    assert.deepEqual(numbers, Array.from({ length: 81 }, (_, i) => i + 1));
  });

  it('never deadlocks status moves, notes, archives and creations in one workspace, and keeps ticket_counts exact', async function () {
    this.timeout(60_000);
    const k = await tenant();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await t.request.post('/v1/tickets').set('Authorization', k.auth).send({ subject: `t${i}`, contact: { email: `c${i % 3}@example.com` } }).expect(201)).body.id);
    const moves = [['resolved', 'open'], ['in_progress', 'resolved', 'closed'], ['waiting_on_customer', 'open', 'resolved']];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all([
        ...ids.map(async (id, i) => {
          // Some moves are refused (409) as tickets close or get archived; none may fail (500).
          for (const status of moves[i % 3]) {
            const r = await t.request.post(`/v1/tickets/${id}/status`).set('Authorization', k.auth).send({ status, note: `to ${status}` });
            if (r.status !== 200 && r.status !== 409) return r.status;
          }
          return 200;
        }),
        ...Array.from({ length: 6 }, (_, i) => t.request.post('/v1/tickets').set('Authorization', k.auth).send({ subject: `new ${round} ${i}`, contact: { email: `c${i % 3}@example.com` } }).then((r) => r.status)),
        ...ids.slice(0, 3).map((id) => t.request.delete(`/v1/tickets/${id}`).set('Authorization', k.auth).then((r) => r.status)),
      ]);
      assert.ok(results.every((s) => s === 200 || s === 201), `round ${round}: ${results.join(',')}`);
    }
    const { kept, real } = await counts(k.ws);
    assert.deepEqual(kept, real);
  });

  it('keeps ticket_counts exact through archive, restore and deletion, and lets a workspace with tickets be deleted', async () => {
    const k = await tenant();
    const a = (await t.request.post('/v1/tickets').set('Authorization', k.auth).send({ subject: 'a', contact: { email: 'a@example.com' } }).expect(201)).body.id;
    await t.request.post('/v1/tickets').set('Authorization', k.auth).send({ subject: 'b', contact: { email: 'a@example.com' } }).expect(201);
    await t.request.delete(`/v1/tickets/${a}`).set('Authorization', k.auth).expect(200);
    assert.deepEqual(await counts(k.ws), { kept: ['open=1'], real: ['open=1'] });
    const listed = await t.request.get('/v1/tickets').set('Authorization', k.auth).expect(200);
    assert.equal(listed.body.total, 1);
    await t.request.patch(`/v1/tickets/${a}`).set('Authorization', k.auth).send({ archived: false }).expect(200);
    assert.deepEqual(await counts(k.ws), { kept: ['open=2'], real: ['open=2'] });
    await db.knex('tickets').where({ id: a }).del();
    assert.deepEqual(await counts(k.ws), { kept: ['open=1'], real: ['open=1'] });

    await db.knex('api_keys').where({ workspace_id: k.ws }).del();
    await db.knex('workspaces').where({ id: k.ws }).del();
    assert.equal((await db.knex('ticket_counts').where({ workspace_id: k.ws })).length, 0);
    assert.equal((await db.knex('tickets').where({ workspace_id: k.ws })).length, 0);
  });
});
