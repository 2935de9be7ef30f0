import { likeEscape } from '../db/like.js';
import type { Db, Knex } from '../db/knex.js';
import type { ContactFilters } from './contact-schemas.js';
import { CONTACT_COLUMNS, toContact, type Contact, type ContactFields } from './contact.js';

const COLUMN_OF: Record<keyof ContactFields, string> = {
  telegramUserId: 'telegram_user_id',
  username: 'username',
  name: 'name',
  firstName: 'first_name',
  lastName: 'last_name',
  email: 'email',
  phone: 'phone',
  tags: 'tags',
  customFields: 'custom_fields',
  blocked: 'blocked',
};

function toColumns(fields: Partial<ContactFields>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[COLUMN_OF[k as keyof ContactFields]] = k === 'customFields' ? JSON.stringify(v) : v;
  }
  return out;
}

/** `%` and `_` are wildcards to LIKE; a search for "50%" means the text. */

/** The expression the trigram index is built on (migration 0800): keep them identical. */
const SEARCH_TEXT = `(coalesce(name, '') || ' ' || coalesce(username, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))`;

export interface Identities {
  telegramUserId?: number | null;
  username?: string | null;
  email?: string | null;
}

export const contactStore = {
  async findById(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<Contact | null> {
    const q = db('contacts').select(CONTACT_COLUMNS).where({ workspace_id: workspaceId, id }).first();
    // NO KEY UPDATE: we never change the id, so inserts referencing the contact (a ticket, a
    // message) are not blocked by our lock — FOR UPDATE would block their key-share checks
    // and deadlock ticket creation against upserts of the same contact.
    if (opts.forUpdate) q.forNoKeyUpdate();
    const row = await q;
    return row ? toContact(row) : null;
  },

  /** Every contact holding one of the identities, locked (in id order) for the caller's transaction. */
  async lockMatching(db: Db, workspaceId: string, ids: Identities): Promise<Contact[]> {
    const rows = await db('contacts').select(CONTACT_COLUMNS).where('workspace_id', workspaceId).andWhere((w) => {
      if (ids.telegramUserId != null) w.orWhere('telegram_user_id', ids.telegramUserId);
      if (ids.username != null) w.orWhereRaw('lower(username) = lower(?)', [ids.username]);
      if (ids.email != null) w.orWhereRaw('lower(email) = lower(?)', [ids.email]);
    }).orderBy('id').forNoKeyUpdate();
    return rows.map(toContact);
  },

  /** Inserts unless an identity is already taken (then null: the caller matches again). */
  async insertIfAbsent(db: Db, c: { id: string; workspaceId: string; at: Date } & ContactFields): Promise<Contact | null> {
    const { id, workspaceId, at, ...fields } = c;
    const rows = await db.raw(
      `INSERT INTO contacts (id, workspace_id, telegram_user_id, username, name, first_name, last_name, email, phone, tags, custom_fields, blocked, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING
       RETURNING ${CONTACT_COLUMNS.join(', ')}`,
      [id, workspaceId, fields.telegramUserId, fields.username, fields.name, fields.firstName, fields.lastName,
        fields.email, fields.phone, fields.tags, JSON.stringify(fields.customFields), fields.blocked, at, at],
    );
    return rows.rows[0] ? toContact(rows.rows[0]) : null;
  },

  async update(db: Db, workspaceId: string, id: string, fields: Partial<ContactFields>, at: Date): Promise<Contact> {
    const [row] = await db('contacts').where({ workspace_id: workspaceId, id }).update({ ...toColumns(fields), updated_at: at }).returning(CONTACT_COLUMNS as unknown as string[]);
    return toContact(row);
  },

  /** The filtered set, unordered: list and export share it. */
  filtered(db: Db, workspaceId: string, f: ContactFilters): Knex.QueryBuilder {
    const q = db('contacts').select(CONTACT_COLUMNS).where('workspace_id', workspaceId);
    if (f.q) q.whereRaw(`${SEARCH_TEXT} ILIKE ?`, [`%${likeEscape(f.q)}%`]);
    if (f.tag) q.whereRaw('tags @> ARRAY[?]::text[]', [f.tag.trim().toLowerCase()]);
    if (f.blocked !== undefined) q.where('blocked', f.blocked);
    if (f.created_after) q.where('created_at', '>=', f.created_after);
    if (f.created_before) q.where('created_at', '<', f.created_before);
    return q;
  },

  /** Records that the contact wrote to a bot: from now on the bot can message them. */
  async recordChat(db: Db, c: { workspaceId: string; contactId: string; accountId: string; chatId: number; at: Date }): Promise<void> {
    await db.raw(
      `INSERT INTO contact_chats (workspace_id, contact_id, account_id, chat_id, started_at, last_inbound_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (contact_id, account_id) DO UPDATE SET chat_id = EXCLUDED.chat_id, last_inbound_at = EXCLUDED.last_inbound_at`,
      [c.workspaceId, c.contactId, c.accountId, c.chatId, c.at, c.at],
    );
  },

  /** The contact behind a bot's private chat, or null. */
  async contactOfChat(db: Db, accountId: string, chatId: number): Promise<{ workspaceId: string; contactId: string } | null> {
    const row = await db('contact_chats').select('workspace_id', 'contact_id').where({ account_id: accountId, chat_id: chatId }).first();
    return row ? { workspaceId: row.workspace_id, contactId: row.contact_id } : null;
  },

  /**
   * The private chat to reach the contact through: the given account's, else the one they
   * wrote through last. Null when they never wrote to a bot of the workspace.
   */
  async chatFor(db: Db, workspaceId: string, contactId: string, accountId?: string | null): Promise<{ accountId: string; chatId: number } | null> {
    const q = db('contact_chats').select('account_id', 'chat_id').where({ workspace_id: workspaceId, contact_id: contactId });
    if (accountId) q.where('account_id', accountId);
    const row = await q.orderBy('last_inbound_at', 'desc').first();
    return row ? { accountId: row.account_id, chatId: row.chat_id } : null;
  },
};
