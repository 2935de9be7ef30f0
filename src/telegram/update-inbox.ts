/**
 * Inbound updates, polled or pushed, land here before anything else happens (table
 * telegram_updates). The primary key (bot, update_id) drops a repeated update — Telegram
 * resends after a restart or a webhook timeout. An update is handled in the transaction that
 * marks it processed, so its effects happen once; within a chat, updates are handled strictly
 * in update_id order, even across replicas (only the oldest pending update of a chat is ever
 * claimable).
 */
import type { Db } from '../db/knex.js';

export interface StoredUpdate {
  accountId: string;
  updateId: number;
  chatId: number;
  payload: any;
  attempts: number;
}

/** The chat an update belongs to, for ordering (0: no chat, e.g. an inline query). */
export function chatOfUpdate(u: any): number {
  const m = u.message ?? u.edited_message ?? u.channel_post ?? u.edited_channel_post;
  if (m?.chat?.id) return Number(m.chat.id);
  if (u.callback_query) return Number(u.callback_query.message?.chat?.id ?? u.callback_query.from?.id ?? 0);
  if (u.my_chat_member?.chat?.id) return Number(u.my_chat_member.chat.id);
  if (u.chat_member?.chat?.id) return Number(u.chat_member.chat.id);
  if (u.message_reaction?.chat?.id) return Number(u.message_reaction.chat.id);
  return 0;
}

export const updateInbox = {
  /** Stores updates not seen before; returns how many were new. */
  async store(db: Db, accountId: string, updates: any[], at: Date): Promise<number> {
    const rows = updates
      .filter((u) => Number.isSafeInteger(u?.update_id))
      .map((u) => ({ account_id: accountId, update_id: u.update_id, chat_id: chatOfUpdate(u), payload: JSON.stringify(u), received_at: at, next_attempt_at: at }));
    if (!rows.length) return 0;
    const inserted = await db('telegram_updates').insert(rows).onConflict(['account_id', 'update_id']).ignore().returning('update_id');
    return inserted.length;
  },

  /** Locks the oldest pending update of some chat whose earlier updates are all handled. */
  async claimNext(tx: Db, now: Date): Promise<StoredUpdate | null> {
    const r = (await tx.raw(
      `SELECT u.account_id, u.update_id, u.chat_id, u.payload, u.attempts
         FROM telegram_updates u
        WHERE u.processed_at IS NULL AND u.next_attempt_at <= ?
          AND NOT EXISTS (SELECT 1 FROM telegram_updates e
                           WHERE e.account_id = u.account_id AND e.chat_id = u.chat_id
                             AND e.processed_at IS NULL AND e.update_id < u.update_id)
        ORDER BY u.received_at, u.update_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED`,
      [now],
    )).rows[0];
    return r ? { accountId: r.account_id, updateId: Number(r.update_id), chatId: Number(r.chat_id), payload: r.payload, attempts: r.attempts } : null;
  },

  async markProcessed(tx: Db, u: StoredUpdate, at: Date, error: string | null = null): Promise<void> {
    await tx('telegram_updates').where({ account_id: u.accountId, update_id: u.updateId }).update({ processed_at: at, last_error: error });
  },

  /** A handler failed: try again later, or give up (processed, with the error) after too many tries. */
  async recordFailure(db: Db, u: StoredUpdate, error: string, at: Date, retryAt: Date | null): Promise<void> {
    await db('telegram_updates').where({ account_id: u.accountId, update_id: u.updateId }).update({
      attempts: u.attempts + 1, last_error: error, ...(retryAt ? { next_attempt_at: retryAt } : { processed_at: at }),
    });
  },
};
