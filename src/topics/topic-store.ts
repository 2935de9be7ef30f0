/**
 * The topics module's tables: `ticket_topics` (what a ticket's forum topic shows right now) and
 * `message_telegram_refs` (which Telegram messages stand for one of our messages: the original
 * a customer or agent wrote, and every copy we made of it, so edits can be mirrored).
 */
import type { Db } from '../db/knex.js';

/** What the topic shows now; a ticket without a row has never had one set up. */
export interface TopicState {
  name: string | null;
  closed: boolean;
  cardMessageId: number | null;
  cardText: string | null;
  cardPinned: boolean;
}

export const NO_TOPIC_STATE: TopicState = { name: null, closed: false, cardMessageId: null, cardText: null, cardPinned: false };

const COLUMN: Record<keyof TopicState, string> = {
  name: 'name', closed: 'closed', cardMessageId: 'card_message_id', cardText: 'card_text', cardPinned: 'card_pinned',
};

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export interface TelegramRef {
  accountId: string;
  chatId: number;
  telegramMessageId: number;
  messageId: string;
  role: 'original' | 'copy';
}

const toRef = (r: any): TelegramRef => ({
  accountId: r.account_id, chatId: Number(r.chat_id), telegramMessageId: Number(r.telegram_message_id), messageId: r.message_id, role: r.role,
});

export const topicStore = {
  async find(db: Db, ticketId: string): Promise<TopicState> {
    const r = await db('ticket_topics').where({ ticket_id: ticketId }).first();
    return r ? { name: r.name, closed: r.closed, cardMessageId: num(r.card_message_id), cardText: r.card_text, cardPinned: r.card_pinned } : NO_TOPIC_STATE;
  },

  /** Sets fields of the topic's state (the row is created on first use). */
  async save(db: Db, ticketId: string, changes: Partial<TopicState>): Promise<void> {
    const row = Object.fromEntries(Object.entries(changes).map(([k, v]) => [COLUMN[k as keyof TopicState], v]));
    await db('ticket_topics').insert({ ticket_id: ticketId, ...row }).onConflict('ticket_id').merge(Object.keys(row));
  },

  /** Updates only while the card shown is still `cardMessageId` (a newer card wins). */
  async saveIfCard(db: Db, ticketId: string, cardMessageId: number | null, changes: Partial<TopicState>): Promise<void> {
    const row = Object.fromEntries(Object.entries(changes).map(([k, v]) => [COLUMN[k as keyof TopicState], v]));
    await db('ticket_topics').where({ ticket_id: ticketId, card_message_id: cardMessageId }).update(row);
  },

  async addRef(db: Db, r: TelegramRef): Promise<void> {
    await db('message_telegram_refs').insert({ account_id: r.accountId, chat_id: r.chatId, telegram_message_id: r.telegramMessageId, message_id: r.messageId, role: r.role })
      .onConflict(['account_id', 'chat_id', 'telegram_message_id']).ignore();
  },

  async findRef(db: Db, accountId: string, chatId: number, telegramMessageId: number, role?: TelegramRef['role']): Promise<TelegramRef | null> {
    const r = await db('message_telegram_refs').where({ account_id: accountId, chat_id: chatId, telegram_message_id: telegramMessageId, ...(role ? { role } : {}) }).first();
    return r ? toRef(r) : null;
  },

  async refsOfMessage(db: Db, messageId: string, role: TelegramRef['role']): Promise<TelegramRef[]> {
    return (await db('message_telegram_refs').where({ message_id: messageId, role })).map(toRef);
  },

  /** Our message ids behind these Telegram messages of one chat. */
  async messageIdsOf(db: Db, accountId: string, chatId: number, telegramMessageIds: number[]): Promise<string[]> {
    if (!telegramMessageIds.length) return [];
    const rows = await db('message_telegram_refs').select('message_id').where({ account_id: accountId, chat_id: chatId }).whereIn('telegram_message_id', telegramMessageIds);
    return rows.map((r: { message_id: string }) => r.message_id);
  },
};
