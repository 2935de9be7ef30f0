/**
 * Telegram bots of a workspace (SPEC §2): rows ↔ objects, and the API's shape.
 *
 * A removed bot keeps its row (tickets and messages point at it) with deleted_at set; every
 * finder here ignores removed rows. The bot token is read only by the bot runtime
 * (listRunnable / findRunnable) and never reaches an API shape.
 */
import { CONTACT_COLUMNS } from '../contacts/contact.js';
import type { Db } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import { newId } from '../lib/ids.js';
import type { AccountJson } from './account-schemas.js';

export interface Account {
  id: string;
  workspaceId: string;
  name: string;
  botUserId: number | null;
  botUsername: string | null;
  supportChatId: number | null;
  isDefault: boolean;
}

/** An account as the API manages it (never with its token). */
export interface AccountRecord extends Account {
  createdAt: Date;
  updatedAt: Date;
}

/** What the bot runtime needs to run one bot. */
export interface RunnableAccount {
  id: string;
  workspaceId: string;
  token: string;
  supportChatId: number | null;
  botUserId: number | null;
  botUsername: string | null;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

const toAccount = (r: any): Account => ({
  id: r.id, workspaceId: r.workspace_id, name: r.name, botUserId: num(r.bot_user_id), botUsername: r.bot_username,
  supportChatId: num(r.support_chat_id), isDefault: r.is_default,
});

const toRecord = (r: any): AccountRecord => ({ ...toAccount(r), createdAt: r.created_at, updatedAt: r.updated_at });

const toRunnable = (r: any): RunnableAccount => ({
  id: r.id, workspaceId: r.workspace_id, token: r.bot_token, supportChatId: num(r.support_chat_id),
  botUserId: num(r.bot_user_id), botUsername: r.bot_username,
});

/** The API's account shape: no token, ever. */
export function presentAccount(a: AccountRecord): AccountJson {
  return {
    id: a.id,
    name: a.name,
    bot_user_id: a.botUserId,
    bot_username: a.botUsername,
    support_chat_id: a.supportChatId,
    is_default: a.isDefault,
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

/** The columns an API answer is built from (the token is not among them). */
const RECORD_COLUMNS = ['id', 'workspace_id', 'name', 'bot_user_id', 'bot_username', 'support_chat_id', 'is_default', 'created_at', 'updated_at'] as const;

/**
 * A contact and its preferred bot (see contactWithPreferred). Prepared: every ticket created for
 * a known contact runs it. Its columns are named: a prepared `c.*` would break on every
 * connection holding it when a migration adds a column to contacts.
 */
const CONTACT_WITH_PREFERRED_BOT = `SELECT ${CONTACT_COLUMNS.map((c) => `c.${c}`).join(', ')}, to_jsonb(a) AS preferred_account
   FROM contacts c
   LEFT JOIN LATERAL (
     SELECT a.id, a.workspace_id, a.name, a.bot_user_id, a.bot_username, a.support_chat_id, a.is_default
       FROM accounts a
      WHERE a.workspace_id = c.workspace_id
        AND a.deleted_at IS NULL
        AND (a.is_default OR a.id = (SELECT cc.account_id FROM contact_chats cc WHERE cc.contact_id = c.id ORDER BY cc.last_inbound_at DESC LIMIT 1))
      ORDER BY a.is_default
      LIMIT 1
   ) a ON true
  WHERE c.workspace_id = ? AND c.id = ?`;

const live = (db: Db) => db('accounts').whereNull('deleted_at');

export const accountStore = {
  async findById(db: Db, workspaceId: string, id: string): Promise<Account | null> {
    const row = await live(db).select(RECORD_COLUMNS).where({ workspace_id: workspaceId, id }).first();
    return row ? toAccount(row) : null;
  },

  /**
   * A contact (by id) and the bot a new ticket of theirs belongs to — the one they last wrote
   * to, else the workspace's default — in one round trip (ticket creation is a hot path).
   * Removed bots are skipped. Null when the contact does not exist in the workspace.
   */
  async contactWithPreferred(db: Db, workspaceId: string, contactId: string): Promise<{ contactRow: any; account: Account | null } | null> {
    const r = await prepared(db, 'contact_with_preferred_bot', CONTACT_WITH_PREFERRED_BOT, [workspaceId, contactId]);
    const row = r.rows[0];
    if (!row) return null;
    return { contactRow: row, account: row.preferred_account ? toAccount(row.preferred_account) : null };
  },

  /** The bot the contact last wrote to, else the workspace's default bot. */
  async preferredFor(db: Db, workspaceId: string, contactId: string): Promise<Account | null> {
    const found = await accountStore.contactWithPreferred(db, workspaceId, contactId);
    return found?.account ?? null;
  },

  async insert(db: Db, a: {
    workspaceId: string; name: string; botUserId?: number | null; botUsername?: string | null; botToken?: string | null;
    supportChatId?: number | null; isDefault?: boolean; at: Date;
  }): Promise<AccountRecord> {
    const [row] = await db('accounts').insert({
      id: newId('acc'), workspace_id: a.workspaceId, name: a.name, bot_user_id: a.botUserId ?? null, bot_username: a.botUsername ?? null,
      bot_token: a.botToken ?? null, support_chat_id: a.supportChatId ?? null, is_default: a.isDefault ?? false, created_at: a.at, updated_at: a.at,
    }).returning(RECORD_COLUMNS);
    return toRecord(row);
  },

  /** One bot of the workspace, not removed; `lock` takes its row for update. */
  async findRecord(db: Db, workspaceId: string, id: string, opts: { lock?: boolean } = {}): Promise<AccountRecord | null> {
    const q = live(db).select(RECORD_COLUMNS).where({ workspace_id: workspaceId, id }).first();
    if (opts.lock) q.forUpdate();
    const row = await q;
    return row ? toRecord(row) : null;
  },

  /** The connected (not removed) account of a Telegram bot, in any workspace. */
  async findByBotUserId(db: Db, botUserId: number): Promise<{ id: string; workspaceId: string } | null> {
    const row = await live(db).select('id', 'workspace_id').where({ bot_user_id: botUserId }).first();
    return row ? { id: row.id, workspaceId: row.workspace_id } : null;
  },

  async countLive(db: Db, workspaceId: string): Promise<number> {
    const [{ n }] = await live(db).where({ workspace_id: workspaceId }).count({ n: '*' });
    return Number(n);
  },

  /** Newest first. */
  list(db: Db, workspaceId: string, page: PageRequest) {
    const q = live(db).select(RECORD_COLUMNS).where({ workspace_id: workspaceId });
    return paginate(q, [['created_at', 'desc'], ['id', 'desc']], page, toRecord);
  },

  async update(db: Db, id: string, changes: Record<string, unknown>): Promise<AccountRecord> {
    const [row] = await db('accounts').where({ id }).update(changes).returning(RECORD_COLUMNS);
    return toRecord(row);
  },

  /** The workspace has no default bot afterwards (the caller sets the new one). */
  async clearDefault(db: Db, workspaceId: string, at: Date): Promise<void> {
    await live(db).where({ workspace_id: workspaceId, is_default: true }).update({ is_default: false, updated_at: at });
  },

  /** The oldest bot still connected, to inherit the default from a removed one. */
  async oldest(db: Db, workspaceId: string): Promise<{ id: string } | null> {
    return (await live(db).select('id').where({ workspace_id: workspaceId }).orderBy([{ column: 'created_at', order: 'asc' }, { column: 'id', order: 'asc' }]).first()) ?? null;
  },

  /** Removes a bot: the row stays (tickets point at it), its token goes. */
  async softDelete(db: Db, id: string, at: Date): Promise<void> {
    await db('accounts').where({ id }).update({ deleted_at: at, is_default: false, bot_token: null, updated_at: at });
  },

  async tokenOf(db: Db, id: string): Promise<string | null> {
    return (await live(db).select('bot_token').where({ id }).first())?.bot_token ?? null;
  },

  async hasDefault(db: Db, workspaceId: string): Promise<boolean> {
    return !!(await live(db).select('id').where({ workspace_id: workspaceId, is_default: true }).first());
  },

  /** The default bot with a token, else the oldest bot with one. */
  async speakerOfWorkspace(db: Db, workspaceId: string): Promise<{ id: string } | null> {
    return (await live(db).select('id').where({ workspace_id: workspaceId }).whereNotNull('bot_token')
      .orderBy([{ column: 'is_default', order: 'desc' }, { column: 'created_at', order: 'asc' }, { column: 'id', order: 'asc' }]).first()) ?? null;
  },

  /** The oldest bot connected to a support group (with a token). */
  async oldestInGroup(db: Db, workspaceId: string, chatId: number): Promise<{ id: string } | null> {
    return (await live(db).select('id').where({ workspace_id: workspaceId, support_chat_id: chatId }).whereNotNull('bot_token')
      .orderBy('created_at').orderBy('id').first()) ?? null;
  },

  /** For the bot runtime: every bot to run — live workspaces, not removed, with a token. */
  async listRunnable(db: Db): Promise<RunnableAccount[]> {
    const rows = await runnable(db).orderBy('a.id');
    return rows.map(toRunnable);
  },

  /** For the bot runtime: one bot if it is runnable (see listRunnable), else null. */
  async findRunnable(db: Db, id: string): Promise<RunnableAccount | null> {
    const row = await runnable(db).where('a.id', id).first();
    return row ? toRunnable(row) : null;
  },
};

function runnable(db: Db) {
  return db('accounts as a')
    .join('workspaces as w', 'w.id', 'a.workspace_id')
    .select('a.id', 'a.workspace_id', 'a.bot_token', 'a.support_chat_id', 'a.bot_user_id', 'a.bot_username')
    .where('w.mode', 'live')
    .whereNull('a.deleted_at')
    .whereNotNull('a.bot_token');
}
