/**
 * A cosmetic row (card edit, topic rename, transfer note: one queued per ticket and kind) going
 * back to the queue — after a 429 or 5xx, or when its lease expired — while a newer one of the
 * same ticket is being queued by another transaction. Found by the Telegram fault probe
 * (fault-journey.test.ts): the statement putting it back took its snapshot before the newer row
 * committed, so it neither cancelled in the newer one's favour nor was allowed to become a second
 * queued one (unique index telegram_sends_coalesced). The outcome was lost, the row stayed
 * 'sending' until its lease expired (60 s), and the ticket's card and topic froze meanwhile.
 * Interleavings are forced with a real second transaction, not timed.
 */
import assert from 'node:assert/strict';
import { accountStore } from '../../src/accounts/account-store.js';
import type { Knex } from '../../src/db/knex.js';
import { sendQueue, type PacingRules, type QueuedSend } from '../../src/send-queue/send-queue.js';
import { until } from '../helpers/fault-journey.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';

const RULES: PacingRules = { perChat: { limit: 1, windowMs: 50 }, perGroup: { limit: 20, windowMs: 3000 }, perBot: { limit: 30, windowMs: 50 } };
const GROUP = -1001234567890;

describe('send queue: a cosmetic row going back to the queue while a newer one is queued', () => {
  let database: TestDatabase;
  let db: Knex;
  let accountId: string;
  let seq = 0;

  before(async () => {
    database = await createTestDatabase();
    db = database.knex;
    const account = await accountStore.insert(db, { workspaceId: 'ws_default', name: 'Race bot', botUserId: 9_000_001, botUsername: 'race_bot', botToken: '9000001:AArace_token_for_tests_only', supportChatId: GROUP, isDefault: false, at: new Date() });
    accountId = account.id;
  });
  after(() => database?.drop());

  /** Each test's ticket lives in a group of its own (so pacing never holds its row back). */
  const chatOf = (ticketId: string) => GROUP - Number(ticketId.split('_').at(-1));
  /** A queued cosmetic row, as the card trigger writes it. */
  const queueCosmetic = (q: Knex | Knex.Transaction, ticketId: string, op = 'edit_card') =>
    q('telegram_sends').insert({ workspace_id: 'ws_default', account_id: accountId, chat_id: chatOf(ticketId), op, ticket_id: ticketId, priority: 1, next_attempt_at: new Date(), created_at: new Date() });

  async function claimOne(ticketId: string, leaseMs = 30_000): Promise<QueuedSend> {
    const { claimed } = await sendQueue.claim(db, { now: new Date(), limit: 50, leaseMs, rules: RULES });
    const mine = claimed.find((c) => c.ticketId === ticketId);
    assert.ok(mine, 'the row was claimed');
    return mine;
  }

  /** Until another session waits for a row lock of telegram_sends (our statement is blocked on the open transaction). */
  const blockedOnLock = () => until(async () => {
    const r = await db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%telegram_sends%'`);
    return r.rows[0].n > 0;
  }, 'the statement to wait for the other transaction', 10_000);

  const statusOf = async (ticketId: string) => (await db('telegram_sends').where({ ticket_id: ticketId }).orderBy('id').select('status')).map((r) => r.status);

  it('retryLater (a 429 or 5xx on the card edit): the row is cancelled in favour of the newer one, and the outcome is recorded', async () => {
    const ticketId = `tkt_race_${++seq}`;
    await queueCosmetic(db, ticketId);
    const row = await claimOne(ticketId);

    const other = await db.transaction();
    try {
      await queueCosmetic(other, ticketId); // a ticket change while the edit was in flight
      const retried = sendQueue.retryLater(db, row, { at: new Date(), error: '429: Too Many Requests: retry after 1', countsAsFailure: false });
      await blockedOnLock();
      await other.commit();
      assert.equal(await retried, true, 'the outcome is recorded');
    } finally {
      if (!other.isCompleted()) await other.rollback();
    }
    assert.deepEqual(await statusOf(ticketId), ['cancelled', 'queued'], 'the newer row renders the latest state; the older one steps aside');
  });

  it('a transfer note going back hands its start over to the newer one', async () => {
    const ticketId = `tkt_race_${++seq}`;
    await db('telegram_sends').insert({
      workspace_id: 'ws_default', account_id: accountId, chat_id: chatOf(ticketId), op: 'transfer_note', ticket_id: ticketId, priority: 1,
      payload: JSON.stringify({ from_assignee_id: 'agt_first', from_team_id: null, to_assignee_id: 'agt_second', to_team_id: null }), next_attempt_at: new Date(), created_at: new Date(),
    });
    const row = await claimOne(ticketId);
    const other = await db.transaction();
    try {
      await other('telegram_sends').insert({
        workspace_id: 'ws_default', account_id: accountId, chat_id: chatOf(ticketId), op: 'transfer_note', ticket_id: ticketId, priority: 1,
        payload: JSON.stringify({ from_assignee_id: 'agt_second', from_team_id: null, to_assignee_id: 'agt_third', to_team_id: null }), next_attempt_at: new Date(), created_at: new Date(),
      });
      const retried = sendQueue.retryLater(db, row, { at: new Date(), error: '502: Bad Gateway', countsAsFailure: true });
      await blockedOnLock();
      await other.commit();
      assert.equal(await retried, true);
    } finally {
      if (!other.isCompleted()) await other.rollback();
    }
    const rows = await db('telegram_sends').where({ ticket_id: ticketId }).orderBy('id').select('status', 'payload');
    assert.deepEqual(rows.map((r) => r.status), ['cancelled', 'queued']);
    assert.equal(rows[1].payload.from_assignee_id, 'agt_first', 'the note still says where the burst started');
    assert.equal(rows[1].payload.to_assignee_id, 'agt_third');
  });

  it('an expired lease: the claim cancels the stale row in favour of the newer one instead of failing', async () => {
    const ticketId = `tkt_race_${++seq}`;
    await queueCosmetic(db, ticketId);
    await claimOne(ticketId, 1); // its worker dies: the lease runs out at once
    await until(async () => (await db('telegram_sends').where({ ticket_id: ticketId, status: 'sending' }).where('lease_until', '<', new Date()).first()) !== undefined, 'the lease to expire');

    const other = await db.transaction();
    let claimed: QueuedSend[] = [];
    try {
      await queueCosmetic(other, ticketId);
      const claim = sendQueue.claim(db, { now: new Date(), limit: 50, leaseMs: 30_000, rules: RULES });
      await blockedOnLock();
      await other.commit();
      ({ claimed } = await claim);
    } finally {
      if (!other.isCompleted()) await other.rollback();
    }
    const statuses = await statusOf(ticketId);
    assert.equal(statuses[0], 'cancelled', 'the stale row steps aside');
    assert.ok(statuses[1] === 'queued' || (statuses[1] === 'sending' && claimed.some((c) => c.ticketId === ticketId)), `the newer row goes on: ${statuses}`);
  });
});
