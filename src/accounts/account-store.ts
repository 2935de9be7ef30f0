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

  /**
   * A contact (by id) and the bot a new ticket of theirs belongs to — the one they last wrote
   * to, else the workspace's default — in one round trip (ticket creation is a hot path).
   * Null when the contact does not exist in the workspace.
   */
  async contactWithPreferred(db: Db, workspaceId: string, contactId: string): Promise<{ contactRow: any; account: Account | null } | null> {
    const r = await db.raw(
      `SELECT c.*, to_jsonb(a) AS preferred_account
         FROM contacts c
         LEFT JOIN LATERAL (
           SELECT a.* FROM accounts a
            WHERE a.workspace_id = c.workspace_id
              AND (a.is_default OR a.id = (SELECT cc.account_id FROM contact_chats cc WHERE cc.contact_id = c.id ORDER BY cc.last_inbound_at DESC LIMIT 1))
            ORDER BY a.is_default
            LIMIT 1
         ) a ON true
        WHERE c.workspace_id = ? AND c.id = ?`,
      [workspaceId, contactId],
    );
    const row = r.rows[0];
    if (!row) return null;
    return { contactRow: row, account: row.preferred_account ? toAccount(row.preferred_account) : null };
  },

  /** The bot the contact last wrote to, else the workspace's default bot. */
  async preferredFor(db: Db, workspaceId: string, contactId: string): Promise<Account | null> {
    const found = await accountStore.contactWithPreferred(db, workspaceId, contactId);
    return found?.account ?? null;
  },

  async insert(db: Db, a: { workspaceId: string; name: string; botUsername?: string | null; supportChatId?: number | null; isDefault?: boolean; at: Date }): Promise<Account> {
    const [row] = await db('accounts').insert({
      id: newId('acc'), workspace_id: a.workspaceId, name: a.name, bot_username: a.botUsername ?? null,
      support_chat_id: a.supportChatId ?? null, is_default: a.isDefault ?? false, created_at: a.at, updated_at: a.at,
    }).returning('*');
    return toAccount(row);
  },
};
