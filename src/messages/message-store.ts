import type { Db } from '../db/knex.js';
import type { Actor, ActorType } from '../kernel/actor.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import type { MessageJson } from './message-schemas.js';

export type MessageStatus = 'received' | 'queued' | 'sent' | 'failed';

export interface Message {
  id: string;
  workspaceId: string;
  ticketId: string | null;
  contactId: string | null;
  accountId: string | null;
  direction: 'inbound' | 'outbound';
  visibility: 'public' | 'internal';
  authorType: ActorType;
  authorId: string | null;
  text: string;
  attachments: Record<string, unknown>[];
  status: MessageStatus;
  failureReason: string | null;
  simulated: boolean;
  createdAt: Date;
  sentAt: Date | null;
}

const COLUMNS = [
  'id', 'workspace_id', 'ticket_id', 'contact_id', 'account_id', 'direction', 'visibility', 'author_type', 'author_id',
  'text', 'attachments', 'status', 'failure_reason', 'simulated', 'created_at', 'sent_at',
];

export function toMessage(r: any): Message {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    ticketId: r.ticket_id,
    contactId: r.contact_id,
    accountId: r.account_id,
    direction: r.direction,
    visibility: r.visibility,
    authorType: r.author_type,
    authorId: r.author_id,
    text: r.text,
    attachments: r.attachments,
    status: r.status,
    failureReason: r.failure_reason,
    simulated: r.simulated,
    createdAt: r.created_at,
    sentAt: r.sent_at,
  };
}

export function presentMessage(m: Message): MessageJson {
  return {
    id: m.id,
    ticket_id: m.ticketId,
    contact_id: m.contactId,
    direction: m.direction,
    visibility: m.visibility,
    author: { type: m.authorType, id: m.authorId },
    text: m.text,
    attachments: m.attachments as MessageJson['attachments'],
    status: m.status,
    failure_reason: m.failureReason,
    simulated: m.simulated,
    created_at: m.createdAt.toISOString(),
    sent_at: m.sentAt?.toISOString() ?? null,
  };
}

export const messageStore = {
  async insert(db: Db, m: Message): Promise<Message> {
    const [row] = await db('messages').insert({
      id: m.id, workspace_id: m.workspaceId, ticket_id: m.ticketId, contact_id: m.contactId, account_id: m.accountId,
      direction: m.direction, visibility: m.visibility, author_type: m.authorType, author_id: m.authorId, text: m.text,
      attachments: JSON.stringify(m.attachments), status: m.status, failure_reason: m.failureReason, simulated: m.simulated,
      created_at: m.createdAt, sent_at: m.sentAt,
    }).returning(COLUMNS);
    return toMessage(row);
  },

  /** An internal note on a ticket: never sent anywhere, so it is settled (sent) at once. */
  insertNote(db: Db, n: { id: string; workspaceId: string; ticketId: string; contactId: string; accountId: string | null; author: Actor; text: string; at: Date }): Promise<Message> {
    return messageStore.insert(db, {
      id: n.id, workspaceId: n.workspaceId, ticketId: n.ticketId, contactId: n.contactId, accountId: n.accountId,
      direction: 'outbound', visibility: 'internal', authorType: n.author.type, authorId: n.author.id, text: n.text,
      attachments: [], status: 'sent', failureReason: null, simulated: false, createdAt: n.at, sentAt: n.at,
    });
  },

  async updateText(db: Db, id: string, text: string): Promise<void> {
    await db('messages').where({ id }).update({ text });
  },

  async findById(db: Db, workspaceId: string, id: string): Promise<Message | null> {
    const row = await db('messages').select(COLUMNS).where({ workspace_id: workspaceId, id }).first();
    return row ? toMessage(row) : null;
  },

  listForTicket(db: Db, workspaceId: string, ticketId: string, q: PageRequest & { visibility?: 'public' | 'internal' }) {
    const query = db('messages').select(COLUMNS).where({ workspace_id: workspaceId, ticket_id: ticketId });
    if (q.visibility) query.where('visibility', q.visibility);
    return paginate(query, [['created_at', 'asc'], ['id', 'asc']], q, toMessage);
  },

  /** Moves a queued message to sent/failed; null when it was not queued (already settled). */
  async settle(db: Db, id: string, change: { status: 'sent' | 'failed'; at: Date; reason?: string }): Promise<Message | null> {
    const [row] = await db('messages').where({ id, status: 'queued' }).update({
      status: change.status,
      sent_at: change.status === 'sent' ? change.at : null,
      failure_reason: change.status === 'failed' ? change.reason ?? 'unknown' : null,
    }).returning(COLUMNS);
    return row ? toMessage(row) : null;
  },

  /**
   * Counts one proactive message against the daily cap of (workspace, bot, UTC day).
   * False when the cap is reached; the increment is part of the caller's transaction.
   */
  async takeDailySend(db: Db, workspaceId: string, accountKey: string, day: string, limit: number): Promise<boolean> {
    if (limit <= 0) return false;
    const r = await db.raw(
      `INSERT INTO daily_send_counters AS c (workspace_id, account_key, day, sent) VALUES (?, ?, ?, 1)
       ON CONFLICT (workspace_id, account_key, day) DO UPDATE SET sent = c.sent + 1 WHERE c.sent < ?
       RETURNING sent`,
      [workspaceId, accountKey, day, limit],
    );
    return r.rows.length === 1;
  },
};
