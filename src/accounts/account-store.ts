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

  async insert(db: Db, a: { workspaceId: string; name: string; botUsername?: string | null; supportChatId?: number | null; isDefault?: boolean; at: Date }): Promise<Account> {
    const [row] = await db('accounts').insert({
      id: newId('acc'), workspace_id: a.workspaceId, name: a.name, bot_username: a.botUsername ?? null,
      support_chat_id: a.supportChatId ?? null, is_default: a.isDefault ?? false, created_at: a.at, updated_at: a.at,
    }).returning('*');
    return toAccount(row);
  },
};
