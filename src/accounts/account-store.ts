/** Telegram bots of a workspace, as far as tickets and messages reference them. */
import type { Db } from '../db/knex.js';
import { newId } from '../lib/ids.js';

export interface Account {
  id: string;
  workspaceId: string;
  name: string;
  botUsername: string | null;
  supportChatId: number | null;
  isDefault: boolean;
}

const toAccount = (r: any): Account => ({
  id: r.id, workspaceId: r.workspace_id, name: r.name, botUsername: r.bot_username,
  supportChatId: r.support_chat_id, isDefault: r.is_default,
});

export const accountStore = {
  async findById(db: Db, workspaceId: string, id: string): Promise<Account | null> {
    const row = await db('accounts').where({ workspace_id: workspaceId, id }).first();
    return row ? toAccount(row) : null;
  },

  async findDefault(db: Db, workspaceId: string): Promise<Account | null> {
    const row = await db('accounts').where({ workspace_id: workspaceId, is_default: true }).first();
    return row ? toAccount(row) : null;
  },

  /** The bot the contact last wrote to, else the workspace's default bot; one round trip. */
  async preferredFor(db: Db, workspaceId: string, contactId: string): Promise<Account | null> {
    const r = await db.raw(
      `WITH chat AS (SELECT account_id FROM contact_chats WHERE workspace_id = ? AND contact_id = ? ORDER BY last_inbound_at DESC LIMIT 1)
       SELECT a.* FROM accounts a
        WHERE a.workspace_id = ? AND (a.id IN (SELECT account_id FROM chat) OR a.is_default)
        ORDER BY a.id IN (SELECT account_id FROM chat) DESC
        LIMIT 1`,
      [workspaceId, contactId, workspaceId],
    );
    return r.rows[0] ? toAccount(r.rows[0]) : null;
  },

  async insert(db: Db, a: { workspaceId: string; name: string; botUsername?: string | null; supportChatId?: number | null; isDefault?: boolean; at: Date }): Promise<Account> {
    const [row] = await db('accounts').insert({
      id: newId('acc'), workspace_id: a.workspaceId, name: a.name, bot_username: a.botUsername ?? null,
      support_chat_id: a.supportChatId ?? null, is_default: a.isDefault ?? false, created_at: a.at, updated_at: a.at,
    }).returning('*');
    return toAccount(row);
  },
};
