/**
 * What a handler of one update works with: the update's transaction, the bot it came through,
 * its workspace, and helpers that queue replies (handlers never call Telegram themselves:
 * everything outbound is a send-queue row committed with the update's effects).
 */
import type { RunnableAccount } from '../accounts/account-store.js';
import type { Services } from '../container.js';
import { LOCK_NAMESPACES } from '../db/advisory-lock.js';
import type { Db } from '../db/knex.js';
import type { Workspace } from '../tickets/ticket-service.js';
import { sendQueue } from '../send-queue/send-queue.js';

export interface BotCtx {
  db: Db;
  account: RunnableAccount;
  ws: Workspace;
  at: Date;
  services: Services;
  albumGatherMs: number;
  /** A text message to a chat, or into a ticket's topic. */
  say(chatId: number, text: string, extra?: { replyMarkup?: unknown; ticketId?: string; inTopic?: boolean }): Promise<void>;
  /** Stops the button's spinner, with an optional toast (or alert). */
  answer(callbackQueryId: string, text?: string, alert?: boolean): Promise<void>;
  /** 👍 on a message: a command worked (cheaper for the group's budget than a reply). */
  react(chatId: number, messageId: number, emoji?: string): Promise<void>;
  /** A bot message rewritten in place (cheaper than a new one); no replyMarkup removes its buttons. */
  edit(chatId: number, messageId: number, text: string, replyMarkup?: unknown): Promise<void>;
  /** A bot message removed (posts nothing, so it costs none of the group's budget). */
  delete(chatId: number, messageId: number): Promise<void>;
}

export function createBotCtx(base: Omit<BotCtx, 'say' | 'answer' | 'react' | 'edit' | 'delete'>): BotCtx {
  const { db, account, ws, at } = base;
  const enqueue = (r: Omit<Parameters<typeof sendQueue.enqueue>[1], 'workspaceId' | 'accountId' | 'at'>) =>
    sendQueue.enqueue(db, { workspaceId: ws.id, accountId: account.id, at, ...r });
  return {
    ...base,
    say: (chatId, text, extra = {}) => enqueue({
      chatId, op: 'send_message', ticketId: extra.ticketId ?? null,
      payload: { text, ...(extra.replyMarkup ? { reply_markup: extra.replyMarkup } : {}), ...(extra.inTopic ? { in_topic: true } : {}) },
    }),
    answer: (id, text, alert) => enqueue({ chatId: null, op: 'answer_callback', payload: { callback_query_id: id, ...(text ? { text } : {}), ...(alert ? { show_alert: true } : {}) } }),
    react: (chatId, messageId, emoji = '👍') => enqueue({ chatId, op: 'react', payload: { message_id: messageId, emoji } }),
    edit: (chatId, messageId, text, replyMarkup) => enqueue({
      chatId, op: 'edit_message', payload: { message_id: messageId, text, reply_markup: replyMarkup ?? { inline_keyboard: [] } },
    }),
    delete: (chatId, messageId) => enqueue({ chatId, op: 'delete_message', payload: { message_id: messageId } }),
  };
}

/** What a Telegram message carries besides text, as stored on our message (file ids, names). */
export function attachmentsOf(m: any): Record<string, unknown>[] {
  const base = (type: string, f: any) => ({
    type, file_id: f.file_id, file_unique_id: f.file_unique_id,
    ...(f.file_name ? { file_name: f.file_name } : {}), ...(f.mime_type ? { mime_type: f.mime_type } : {}),
    ...(m.media_group_id ? { media_group_id: m.media_group_id } : {}),
  });
  const out: Record<string, unknown>[] = [];
  if (Array.isArray(m.photo) && m.photo.length) out.push(base('photo', m.photo[m.photo.length - 1]));
  for (const type of ['document', 'video', 'voice', 'audio', 'animation', 'video_note', 'sticker'] as const) {
    if (m[type]) out.push(base(type, m[type]));
  }
  return out;
}

/** The words of a message: its text, or its caption. */
export const textOf = (m: any): string => m.text ?? m.caption ?? '';

/** Customer and agent locks and other advisory locks of the Telegram module. */
export const CUSTOMER_LOCK = LOCK_NAMESPACES.customer;
export const POLLER_LOCK = LOCK_NAMESPACES.poller;
