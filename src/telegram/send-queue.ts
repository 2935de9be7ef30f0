/**
 * The durable Telegram send queue (table telegram_sends). Producers enqueue in the same
 * transaction as the change that causes the call; the Telegram module's workers claim rows
 * with FOR UPDATE SKIP LOCKED and deliver them. Sandbox workspaces never enqueue.
 */
import type { Db } from '../db/knex.js';

export type SendOp = 'send_message' | 'create_topic';

export interface SendRequest {
  workspaceId: string;
  accountId: string;
  /** Target chat; for create_topic the support group. */
  chatId: number | null;
  op: SendOp;
  ticketId?: string | null;
  messageId?: string | null;
  payload?: Record<string, unknown>;
  at: Date;
}

/** Telegram allows a bot about 30 messages a second overall. */
const BOT_MESSAGES_PER_SECOND = 30;

export const sendQueue = {
  async enqueue(db: Db, r: SendRequest): Promise<void> {
    await db('telegram_sends').insert({
      workspace_id: r.workspaceId,
      account_id: r.accountId,
      chat_id: r.chatId,
      op: r.op,
      ticket_id: r.ticketId ?? null,
      message_id: r.messageId ?? null,
      payload: JSON.stringify(r.payload ?? {}),
      next_attempt_at: r.at,
      created_at: r.at,
    });
  },

  /**
   * When a message enqueued now should go out: after what is already waiting for the same
   * bot, at the bot's overall rate. An estimate for clients, not a promise.
   */
  async eta(db: Db, accountId: string, now: Date): Promise<Date> {
    const [{ n }] = await db('telegram_sends').where('account_id', accountId).whereIn('status', ['queued', 'sending']).count({ n: '*' });
    return new Date(now.getTime() + Math.ceil((Number(n) / BOT_MESSAGES_PER_SECOND) * 1000));
  },
};
