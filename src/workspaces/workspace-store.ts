import type { Db } from '../db/knex.js';

export interface Workspace {
  id: string;
  name: string;
  mode: 'live' | 'sandbox';
  timezone: string;
  autoCloseAfterHours: number;
  dailySendLimit: number;
  reopenResolvedOnReply: boolean;
  /** The team leads' Telegram chat (escalation notices, the digest); null = none. */
  leadChatId: number | null;
  /** "HH:MM" in the workspace's time zone; null = no digest. */
  digestTime: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type WorkspaceSettings = Partial<Pick<Workspace, 'name' | 'timezone' | 'autoCloseAfterHours' | 'dailySendLimit' | 'reopenResolvedOnReply' | 'leadChatId' | 'digestTime'>>;

function toWorkspace(r: any): Workspace {
  return {
    id: r.id,
    name: r.name,
    mode: r.mode,
    timezone: r.timezone,
    autoCloseAfterHours: r.auto_close_after_hours,
    dailySendLimit: r.daily_send_limit,
    reopenResolvedOnReply: r.reopen_resolved_on_reply,
    leadChatId: r.lead_chat_id ?? null,
    digestTime: r.digest_time ?? null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const COLUMN_OF: Record<keyof WorkspaceSettings, string> = {
  name: 'name',
  timezone: 'timezone',
  autoCloseAfterHours: 'auto_close_after_hours',
  dailySendLimit: 'daily_send_limit',
  reopenResolvedOnReply: 'reopen_resolved_on_reply',
  leadChatId: 'lead_chat_id',
  digestTime: 'digest_time',
};

export const workspaceStore = {
  async insert(db: Db, w: { id: string; name: string; mode: 'live' | 'sandbox'; createdAt: Date }): Promise<Workspace> {
    const [row] = await db('workspaces')
      .insert({ id: w.id, name: w.name, mode: w.mode, created_at: w.createdAt, updated_at: w.createdAt })
      .returning('*');
    return toWorkspace(row);
  },

  async findById(db: Db, id: string): Promise<Workspace | null> {
    const row = await db('workspaces').where({ id }).first();
    return row ? toWorkspace(row) : null;
  },

  async list(db: Db): Promise<Workspace[]> {
    return (await db('workspaces').orderBy('created_at')).map(toWorkspace);
  },

  async update(db: Db, id: string, changes: WorkspaceSettings, at: Date): Promise<Workspace | null> {
    const set: Record<string, unknown> = { updated_at: at };
    for (const [k, v] of Object.entries(changes)) if (v !== undefined) set[COLUMN_OF[k as keyof WorkspaceSettings]] = v;
    const [row] = await db('workspaces').where({ id }).update(set).returning('*');
    return row ? toWorkspace(row) : null;
  },
};
