/**
 * The durable Telegram send queue (table telegram_sends). Every outbound Bot API call is a
 * row written in the same transaction as the change that causes it; the send worker claims
 * rows and makes the calls. Sandbox workspaces never enqueue. Invariants:
 * - order per chat: a priority-0 row is only claimed when no older priority-0 row of the same
 *   (bot, chat) is still queued or in flight, so a chat sees its messages in the order written;
 * - cosmetic rows (priority 1: topic rename, card edit, transfer note) are rendered when sent,
 *   so one queued row per (ticket, kind) stands for any number of changes; they are claimed
 *   after messages, which keeps the group's 20-a-minute budget for what customers wrote, and
 *   one at a time per (ticket, kind): a newer one waits while an older one is in flight, so it
 *   never lands first (a stale card edit, transfer notes out of order);
 * - pacing is decided at claim time against windows kept in PostgreSQL (telegram_rate_windows),
 *   locked in key order, so replicas share one count per chat and per bot. A claim may take a
 *   slot a moment ahead (`aheadMs`): the row is reserved in the windows at that slot and its
 *   first call waits for it, so the claim's round trips are done before the slot opens instead
 *   of after; once the call is answered, its place moves to then (recordSent);
 * - a claimed row carries a lease; a worker that dies loses it and the row is sent again after
 *   the lease (at most one duplicate: the call may have reached Telegram before the crash).
 *   `attempts` is the fencing token: an outcome is only recorded by the claim that made it.
 */
import type { Db } from '../db/knex.js';
import { earliestSlot, take, type WindowRule, type WindowState } from './pacing.js';
import { inTransaction } from '../db/transaction.js';

export type SendOp =
  | 'send_message' | 'copy_message' | 'edit_copy' | 'react'
  | 'create_topic' | 'post_card' | 'rename_topic' | 'edit_card' | 'close_topic' | 'reopen_topic'
  | 'resolution_notice' | 'answer_callback' | 'transfer_note' | 'edit_message' | 'delete_message' | 'sla_notice';

export interface SendRequest {
  workspaceId: string;
  accountId: string;
  /** Target chat; for topic operations the support group; null for answer_callback. */
  chatId: number | null;
  op: SendOp;
  ticketId?: string | null;
  messageId?: string | null;
  payload?: Record<string, unknown>;
  at: Date;
  /** Not before this time (album items gather for a moment). Defaults to `at`. */
  notBefore?: Date;
}

export interface QueuedSend {
  id: number;
  workspaceId: string;
  accountId: string;
  chatId: number | null;
  op: SendOp;
  ticketId: string | null;
  messageId: string | null;
  payload: Record<string, any>;
  attempts: number;
  failures: number;
  createdAt: Date;
  /**
   * This row's place in the pacing windows: the claim's now, or a moment later for a row claimed
   * ahead of its slot. Its first Bot API call is not made before it.
   */
  slotAt?: Date;
}

export interface PacingRules {
  perChat: WindowRule;
  perGroup: WindowRule;
  perBot: WindowRule;
}

/**
 * A cosmetic row going back to the queue while a newer one for the same ticket already waits
 * there: the newer one renders the latest state, so this one is cancelled (two queued would
 * also break the one-queued-per-(ticket, kind) index).
 */
const HAS_NEWER_COSMETIC = `(telegram_sends.priority = 1 AND EXISTS (SELECT 1 FROM telegram_sends q
  WHERE q.ticket_id = telegram_sends.ticket_id AND q.op = telegram_sends.op AND q.status = 'queued' AND q.priority = 1 AND q.id <> telegram_sends.id))`;
const REQUEUE_OR_CANCEL = `CASE WHEN ${HAS_NEWER_COSMETIC} THEN 'cancelled' ELSE 'queued' END`;

/**
 * A transfer note going back to the queue while a newer one for the same ticket waits (and so
 * is cancelled): it never posted, so the newer one takes over where the burst started, and its
 * note when the newer has none. Completed with the condition picking the rows going back.
 */
const MERGE_INTO_NEWER_TRANSFER_NOTE = `UPDATE telegram_sends q SET payload = q.payload
     || jsonb_build_object('from_assignee_id', o.payload->'from_assignee_id', 'from_team_id', o.payload->'from_team_id')
     || CASE WHEN q.payload->'note' IS NULL AND o.payload->'note' IS NOT NULL THEN jsonb_build_object('note', o.payload->'note') ELSE '{}'::jsonb END
   FROM telegram_sends o
  WHERE o.op = 'transfer_note' AND o.status = 'sending' AND q.ticket_id = o.ticket_id AND q.op = o.op
    AND q.status = 'queued' AND q.priority = 1 AND q.id <> o.id`;

/** Likewise an SLA notice going back: the newer one takes over its marks too. */
const MERGE_INTO_NEWER_SLA_NOTICE = `UPDATE telegram_sends q SET payload = jsonb_set(q.payload, '{marks}', COALESCE(o.payload->'marks', '[]') || COALESCE(q.payload->'marks', '[]'))
   FROM telegram_sends o
  WHERE o.op = 'sla_notice' AND o.status = 'sending' AND q.ticket_id = o.ticket_id AND q.op = o.op
    AND q.status = 'queued' AND q.priority = 1 AND q.id <> o.id`;

/**
 * Runs `fn`, which may put cosmetic rows back to 'queued', in a savepoint — again when that
 * collides with the one-queued-per-(ticket, kind) index: a newer row was queued (by a trigger,
 * enqueueCoalesced) in a transaction that committed after `fn`'s statement took its snapshot,
 * so the statement neither saw it to cancel in its favour nor may add a second queued one. Run
 * again, it sees that row, merges into it and cancels.
 */
async function requeueing<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(db, fn);
    } catch (err) {
      if (attempt >= 3 || (err as { constraint?: string })?.constraint !== 'telegram_sends_coalesced') throw err;
    }
  }
}

const toSend = (r: any): QueuedSend => ({
  id: Number(r.id), workspaceId: r.workspace_id, accountId: r.account_id, chatId: r.chat_id === null ? null : Number(r.chat_id),
  op: r.op, ticketId: r.ticket_id, messageId: r.message_id, payload: r.payload ?? {}, attempts: r.attempts, failures: r.failures,
  createdAt: r.created_at,
});

/** Calls that post nothing into a chat and so do not count against its flood limits. */
const UNPACED: ReadonlySet<SendOp> = new Set(['answer_callback', 'react', 'delete_message']);

/**
 * The pacing windows a row counts in: its bot (30/s) and its chat (1/s); a group chat also
 * in the group's 20/min.
 */
export function pacingKeys(r: { op: string; account_id: string; chat_id: number | string | null }, rules: PacingRules): { key: string; rule: WindowRule }[] {
  if (UNPACED.has(r.op as SendOp)) return [];
  const keys = [{ key: botKey(r.account_id), rule: rules.perBot }];
  if (r.chat_id !== null) {
    keys.push({ key: chatKey(r.account_id, Number(r.chat_id)), rule: rules.perChat });
    if (Number(r.chat_id) < 0) keys.push({ key: groupKey(r.account_id, Number(r.chat_id)), rule: rules.perGroup });
  }
  return keys;
}

/** How many messages a row may post in its chat (a topic recreated on the way costs three). */
function costOf(r: { op: SendOp; payload: Record<string, any>; needs_topic: boolean }): number {
  const topicSetUp = r.needs_topic ? 3 : 0;
  switch (r.op) {
    case 'create_topic': return 3;
    case 'post_card': return 2 + topicSetUp;
    case 'copy_message': return Math.max(1, (r.payload.message_ids ?? []).length) + (r.payload.in_topic ? topicSetUp : 0);
    case 'send_message': case 'edit_copy': return 1 + (r.payload.in_topic ? topicSetUp : 0);
    case 'transfer_note': case 'sla_notice': return 1 + topicSetUp;
    default: return 1;
  }
}

export const sendQueue = {
  async enqueue(db: Db, r: SendRequest): Promise<void> {
    await db('telegram_sends').insert({
      workspace_id: r.workspaceId, account_id: r.accountId, chat_id: r.chatId, op: r.op,
      ticket_id: r.ticketId ?? null, message_id: r.messageId ?? null, payload: JSON.stringify(r.payload ?? {}),
      next_attempt_at: r.notBefore ?? r.at, created_at: r.at,
    });
  },

  /**
   * A cosmetic row (priority 1), one queued per (ticket, op): a second request while one waits
   * appends its `listKey` items to the waiting row's (rendered together when sent).
   */
  async enqueueCoalesced(db: Db, r: SendRequest & { ticketId: string }, listKey: string): Promise<void> {
    await db.raw(
      `INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, payload, priority, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?::jsonb, 1, ?, ?)
       ON CONFLICT (ticket_id, op) WHERE status = 'queued' AND priority = 1
       DO UPDATE SET payload = jsonb_set(telegram_sends.payload, ARRAY[?], COALESCE(telegram_sends.payload->?, '[]') || COALESCE(EXCLUDED.payload->?, '[]'))`,
      [r.workspaceId, r.accountId, r.chatId, r.op, r.ticketId, JSON.stringify(r.payload ?? {}), r.notBefore ?? r.at, r.at, listKey, listKey, listKey],
    );
  },

  /**
   * The note of a change of assignee or team joins the ticket's queued transfer note (queued by
   * the trigger tickets_transfer_note, migration 20261205000100); the latest note given wins.
   * Nothing when none is queued (a sandbox workspace, a ticket without a topic).
   */
  async noteTransfer(db: Db, ticketId: string, note: string): Promise<void> {
    await db.raw(
      `UPDATE telegram_sends SET payload = jsonb_set(payload, '{note}', to_jsonb(?::text))
        WHERE ticket_id = ? AND op = 'transfer_note' AND status = 'queued' AND priority = 1`,
      [note, ticketId],
    );
  },

  /** Where a copy of our message was queued to go (bot and chat), or null. */
  async findCopyTarget(db: Db, messageId: string): Promise<{ accountId: string; chatId: number } | null> {
    const row = await db('telegram_sends').select('account_id', 'chat_id').where({ message_id: messageId, op: 'copy_message' }).first();
    return row ? { accountId: row.account_id, chatId: Number(row.chat_id) } : null;
  },

  /** A removed bot: the calls still waiting for it will never be made. */
  async cancelForAccount(db: Db, accountId: string, at: Date): Promise<number> {
    return db('telegram_sends').where({ account_id: accountId, status: 'queued' })
      .update({ status: 'cancelled', last_error: 'account removed', done_at: at });
  },

  /**
   * An album item: joins the queued copy of the same album (same source chat and
   * media_group_id) so copyMessages keeps the grouping, else starts one that waits `gatherMs`
   * for the rest. Returns true when it joined an existing row.
   */
  async enqueueAlbumItem(db: Db, r: SendRequest & { payload: { from_chat_id: number; message_ids: number[]; media_group_id: string } }, gatherMs: number): Promise<boolean> {
    const joined = await db.raw(
      `UPDATE telegram_sends SET payload = jsonb_set(payload, '{message_ids}', (payload->'message_ids') || to_jsonb(?::bigint))
        WHERE status = 'queued' AND op = 'copy_message' AND account_id = ? AND chat_id = ?
          AND payload->>'media_group_id' = ? AND (payload->>'from_chat_id')::bigint = ?
          AND jsonb_array_length(payload->'message_ids') < 10
        RETURNING id`,
      [r.payload.message_ids[0], r.accountId, r.chatId, r.payload.media_group_id, r.payload.from_chat_id],
    );
    if (joined.rows.length) return true;
    await sendQueue.enqueue(db, { ...r, notBefore: new Date(r.at.getTime() + gatherMs) });
    return false;
  },

  /**
   * When a message enqueued now should go out: after what is already waiting for the same
   * bot, at the bot's overall rate. An estimate for clients, not a promise.
   */
  async eta(db: Db, accountId: string, now: Date, perSecond = 30): Promise<Date> {
    const [{ n }] = await db('telegram_sends').where('account_id', accountId).whereIn('status', ['queued', 'sending']).count({ n: '*' });
    return new Date(now.getTime() + Math.ceil((Number(n) / perSecond) * 1000));
  },

  /**
   * Claims what may be sent now without breaking order or a flood limit, and returns it with
   * the earliest time something else becomes sendable (for the worker's sleep). When there is
   * anything to do, one transaction: expired leases go back to the queue, candidates are locked SKIP LOCKED,
   * the pacing windows of their keys are locked in key order, and the chosen rows leave with
   * a lease.
   */
  async claim(db: Db, opts: { now: Date; limit: number; leaseMs: number; rules: PacingRules; aheadMs?: number }): Promise<{ claimed: QueuedSend[]; nextAt: Date | null }> {
    const { now, rules } = opts;
    const aheadMs = opts.aheadMs ?? 0;
    // One look first, outside a transaction: expired leases (rare: a worker died), anything due,
    // and the earliest row due later. An idle claim ends here, one statement instead of five.
    const look = (await db.raw(
      `SELECT EXISTS (SELECT 1 FROM telegram_sends WHERE status = 'sending' AND lease_until < ?) AS expired,
              EXISTS (SELECT 1 FROM telegram_sends WHERE status = 'queued' AND next_attempt_at <= ?) AS due,
              (SELECT min(next_attempt_at) FROM telegram_sends WHERE status = 'queued' AND next_attempt_at > ?) AS upcoming`,
      [now, now, now],
    )).rows[0] as { expired: boolean; due: boolean; upcoming: Date | null };
    const upcoming = look.upcoming ? new Date(look.upcoming).getTime() : null;
    if (!look.expired && !look.due) return { claimed: [], nextAt: upcoming === null ? null : new Date(upcoming) };
    return inTransaction(db, async (tx) => {
      // The savepoint with its three statements only when a lease has expired.
      if (look.expired) await requeueing(tx, async (sp) => {
        await sp.raw(`${MERGE_INTO_NEWER_TRANSFER_NOTE} AND o.lease_until < ?`, [now]);
        await sp.raw(`${MERGE_INTO_NEWER_SLA_NOTICE} AND o.lease_until < ?`, [now]);
        await sp.raw(
          `UPDATE telegram_sends SET status = ${REQUEUE_OR_CANCEL}, next_attempt_at = ?, done_at = CASE WHEN ${HAS_NEWER_COSMETIC} THEN ?::timestamptz END,
                  last_error = 'lease expired: the worker stopped before recording the outcome'
            WHERE status = 'sending' AND lease_until < ?`,
          [now, now, now],
        );
      });
      const candidates = (await tx.raw(
        `SELECT s.*, (s.ticket_id IS NOT NULL AND t.topic_thread_id IS NULL) AS needs_topic
           FROM telegram_sends s
           LEFT JOIN tickets t ON t.id = s.ticket_id
          WHERE s.status = 'queued' AND s.next_attempt_at <= ?
            AND (s.priority = 0 OR NOT EXISTS (
                  SELECT 1 FROM telegram_sends f WHERE f.ticket_id = s.ticket_id AND f.op = s.op AND f.status = 'sending'))
            AND (s.priority = 1 OR s.chat_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM telegram_sends p
                   WHERE p.account_id = s.account_id AND p.chat_id = s.chat_id AND p.priority = 0
                     AND p.status IN ('queued', 'sending') AND p.id < s.id))
          ORDER BY s.priority, s.id
          LIMIT ?
          FOR UPDATE OF s SKIP LOCKED`,
        [now, opts.limit * 4],
      )).rows as any[];

      const keysOf = (r: any) => pacingKeys(r, rules);
      const allKeys = [...new Set(candidates.flatMap((r) => keysOf(r).map((k) => k.key)))].sort();
      const windows = new Map<string, WindowState>();
      /** Per window, the places of sends claimed and not answered yet. */
      const pending = new Map<string, number[]>();
      if (allKeys.length) {
        await tx.raw(`INSERT INTO telegram_rate_windows (key) SELECT unnest(?::text[]) ON CONFLICT DO NOTHING`, [allKeys]);
        const rows = (await tx.raw(`SELECT key, sent_at, pending_at, blocked_until FROM telegram_rate_windows WHERE key = ANY(?) ORDER BY key FOR UPDATE`, [allKeys])).rows;
        for (const w of rows) {
          windows.set(w.key, { sentAt: (w.sent_at as Date[]).map((d) => new Date(d).getTime()), blockedUntil: w.blocked_until ? new Date(w.blocked_until).getTime() : null });
          pending.set(w.key, (w.pending_at as Date[]).map((d) => new Date(d).getTime()));
        }
      }

      const t = now.getTime();
      /**
       * The window as this claim must count it: a send whose slot has passed and whose answer has
       * not come may have left only now (a busy machine's call leaves late), so it counts from now.
       * Counted from its slot, a send claimed now could arrive too soon after it; the windows'
       * margin is left for a call that leaves later still.
       */
      const asLateAsNow = (key: string, rule: WindowRule): WindowState => {
        const w = windows.get(key)!;
        const inFlight = pending.get(key) ?? [];
        // Only places still in the window: an older one (its worker died) has left it anyway.
        const late = (x: number) => x < t && x > t - rule.windowMs && inFlight.includes(x);
        return inFlight.length ? { ...w, sentAt: w.sentAt.map((x) => (late(x) ? t : x)) } : w;
      };
      const chosen: any[] = [];
      const slotOf = new Map<number, number>();
      let nextAt: number | null = null;
      const touched = new Set<string>();
      for (const r of candidates) {
        if (chosen.length >= opts.limit) { nextAt = t; break; }
        const keys = keysOf(r);
        const cost = costOf(r);
        const at = Math.max(t, ...keys.map((k) => earliestSlot(asLateAsNow(k.key, k.rule), k.rule, t, cost)));
        if (at > t + aheadMs) {
          // Claimed again when its slot is `aheadMs` away.
          nextAt = nextAt === null ? at - aheadMs : Math.min(nextAt, at - aheadMs);
          continue;
        }
        for (const k of keys) {
          windows.set(k.key, take(windows.get(k.key)!, k.rule, at, cost, t));
          pending.set(k.key, [...(pending.get(k.key) ?? []), at]);
          touched.add(k.key);
        }
        slotOf.set(Number(r.id), at);
        chosen.push(r);
      }
      if (touched.size) {
        // Every touched window in one statement (a row counts in up to three).
        const rows = [...touched].map((key) => {
          const w = windows.get(key)!;
          // Pending places the window has forgotten (a worker that died without an answer) go too.
          const inFlight = (pending.get(key) ?? []).filter((x) => w.sentAt.includes(x));
          return {
            key, sent_at: w.sentAt.map((ms) => new Date(ms).toISOString()), pending_at: inFlight.map((ms) => new Date(ms).toISOString()),
            blocked_until: w.blockedUntil === null ? null : new Date(w.blockedUntil).toISOString(),
          };
        });
        await tx.raw(
          `UPDATE telegram_rate_windows w SET sent_at = v.sent_at, pending_at = v.pending_at, blocked_until = v.blocked_until
             FROM jsonb_to_recordset(?::jsonb) AS v(key text, sent_at timestamptz[], pending_at timestamptz[], blocked_until timestamptz)
            WHERE w.key = v.key`,
          [JSON.stringify(rows)],
        );
      }
      if (chosen.length) {
        await tx.raw(
          `UPDATE telegram_sends SET status = 'sending', attempts = attempts + 1, lease_until = ? WHERE id = ANY(?::bigint[])`,
          [new Date(t + opts.leaseMs), chosen.map((r) => r.id)],
        );
      }
      // Rows due later were due later before this claim too: it only takes rows due now, and
      // expired leases go back as due now.
      if (upcoming !== null) nextAt = nextAt === null ? upcoming : Math.min(nextAt, upcoming);
      return {
        claimed: chosen.map((r) => ({ ...toSend(r), attempts: r.attempts + 1, slotAt: new Date(slotOf.get(Number(r.id))!) })),
        nextAt: nextAt === null ? null : new Date(nextAt),
      };
    });
  },

  /**
   * Ends a claimed row (sent, failed, cancelled) — only if this claim still owns it.
   * False when the lease was lost (another worker re-claimed the row): the caller must roll back.
   */
  async finish(db: Db, s: QueuedSend, outcome: { status: 'sent' | 'failed' | 'cancelled'; error?: string | null; at: Date }): Promise<boolean> {
    const n = await db('telegram_sends').where({ id: s.id, status: 'sending', attempts: s.attempts })
      .update({ status: outcome.status, last_error: outcome.error ?? null, done_at: outcome.at, lease_until: null });
    return n === 1;
  },

  /**
   * Keeps what one call of a claimed row returned (`payload.done[step]`), so a retry of the row
   * resumes after that call instead of making it again — only while this claim owns the row.
   */
  async recordStep(db: Db, s: QueuedSend, step: string, result: unknown): Promise<boolean> {
    const n = await db('telegram_sends').where({ id: s.id, status: 'sending', attempts: s.attempts }).update({
      payload: db.raw(`jsonb_set(payload, '{done}', COALESCE(payload->'done', '{}'::jsonb) || jsonb_build_object(?::text, ?::jsonb))`, [step, JSON.stringify(result ?? null)]),
    });
    if (n === 1) s.payload = { ...s.payload, done: { ...(s.payload.done ?? {}), [step]: result ?? null } };
    return n === 1;
  },

  /** Puts a claimed row back in the queue for `at`; a failure counts towards giving up, a wait does not. */
  async retryLater(db: Db, s: QueuedSend, r: { at: Date; error: string; countsAsFailure: boolean }): Promise<boolean> {
    return requeueing(db, async (tx) => {
      if (s.op === 'transfer_note') await tx.raw(`${MERGE_INTO_NEWER_TRANSFER_NOTE} AND o.id = ? AND o.attempts = ?`, [s.id, s.attempts]);
      if (s.op === 'sla_notice') await tx.raw(`${MERGE_INTO_NEWER_SLA_NOTICE} AND o.id = ? AND o.attempts = ?`, [s.id, s.attempts]);
      const n = await tx('telegram_sends').where({ id: s.id, status: 'sending', attempts: s.attempts }).update({
        status: tx.raw(REQUEUE_OR_CANCEL), done_at: tx.raw(`CASE WHEN ${HAS_NEWER_COSMETIC} THEN ?::timestamptz END`, [r.at]),
        next_attempt_at: r.at, last_error: r.error, lease_until: null,
        failures: r.countsAsFailure ? s.failures + 1 : s.failures,
      });
      return n === 1;
    });
  },

  /**
   * A send reached Telegram (or may have: a failed call): its place in the windows moves from
   * its slot to `at`, when its answer came. Telegram counts a call when it arrives, at some
   * moment between its slot and its answer; counting from the slot alone would let two sends
   * to a chat arrive closer than the limit when the first one was slow to leave, and counting
   * from the answer holds however long the way there took (a loaded machine, a slow network).
   */
  async recordSent(db: Db, s: QueuedSend, rules: PacingRules, at: Date): Promise<void> {
    if (!s.slotAt) return;
    // Never earlier than the slot: a place only moves later.
    if (at.getTime() < s.slotAt.getTime()) at = s.slotAt;
    const keys = pacingKeys({ op: s.op, account_id: s.accountId, chat_id: s.chatId }, rules).map((k) => k.key);
    if (!keys.length) return;
    // Answered: no longer pending (array_remove takes every place at that instant, which at worst
    // counts another send claimed for the same millisecond from its slot, as before pending places).
    await db.raw(
      `UPDATE telegram_rate_windows SET sent_at[array_position(sent_at, ?::timestamptz)] = ?, pending_at = array_remove(pending_at, ?::timestamptz)
        WHERE key = ANY(?) AND array_position(sent_at, ?::timestamptz) IS NOT NULL`,
      [s.slotAt, at, s.slotAt, keys, s.slotAt],
    );
  },

  /** A 429: nothing more goes to that chat (or from that bot) before Telegram says so. */
  async pause(db: Db, key: string, until: Date): Promise<void> {
    await db.raw(
      `INSERT INTO telegram_rate_windows (key, blocked_until) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET blocked_until = GREATEST(telegram_rate_windows.blocked_until, EXCLUDED.blocked_until)`,
      [key, until],
    );
  },
};

export const chatKey = (accountId: string, chatId: number) => `chat:${accountId}:${chatId}`;
export const botKey = (accountId: string) => `bot:${accountId}`;
export const groupKey = (accountId: string, chatId: number) => `group:${accountId}:${chatId}`;
