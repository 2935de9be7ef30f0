import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { EVENT_CONSUMERS } from '../../src/events/event-consumers.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('event consumers (events/event-consumers.ts)', () => {
  const db = useTestDatabase();

  it('lists exactly the triggers that feed consumers from the events table', async () => {
    const rows = (await db.knex.raw(
      `SELECT t.tgname AS trigger FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relname = 'events' AND NOT t.tgisinternal ORDER BY 1`,
    )).rows.map((r: { trigger: string }) => r.trigger);
    assert.deepEqual(rows, EVENT_CONSUMERS.map((c) => c.trigger).sort());
  });

  it('names queue tables and migrations that exist', async () => {
    for (const c of EVENT_CONSUMERS) {
      assert.ok(await db.knex.schema.hasTable(c.queue), `${c.queue} exists`);
      assert.ok(existsSync(new URL(`../../${c.migration}`, import.meta.url)), `${c.migration} exists`);
    }
  });

  it('queues every recorded event for each consumer in the same transaction, except the types it skips', async () => {
    const { eventOutbox } = await import('../../src/events/event-outbox.js');
    const ws = (await db.knex('workspaces').first()).id;
    await db.knex.transaction(async (tx) => {
      await eventOutbox.record(tx, ws, new Date(), [
        { type: 'contact.created', actor: { type: 'system', id: null }, payload: {} },
        { type: 'ping', actor: { type: 'system', id: null }, payload: {} },
      ]);
      const events = await tx('events').select('id', 'type').where({ workspace_id: ws });
      for (const c of EVENT_CONSUMERS) {
        const queued = new Set((await tx(c.queue).select('event_id')).map((r: { event_id: string }) => r.event_id));
        for (const e of events) assert.equal(queued.has(e.id), !c.skips.includes(e.type), `${c.queue} and ${e.type}`);
      }
      await tx.rollback();
    }).catch((err) => { if (err !== undefined) throw err; });
  });
});
