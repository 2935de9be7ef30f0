/**
 * Canned responses and their versions (canned_responses, canned_response_versions): rows ↔
 * objects. Every finder is scoped to a workspace and sees live (not archived) rows only.
 */
import type { Db } from '../db/knex.js';
import { likeEscape } from '../db/like.js';
import type { Actor } from '../kernel/actor.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';

export interface CannedResponse {
  id: string;
  workspaceId: string;
  shortcut: string;
  title: string;
  body: string;
  category: string | null;
  teamId: string | null;
  version: number;
  usageCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface CannedVersion {
  version: number;
  title: string;
  body: string;
  createdAt: Date;
  actor: Actor;
}

export interface CannedFilters {
  /** A team id, or 'none' for the workspace-wide ones. */
  teamId?: string;
  category?: string;
  q?: string;
}

export type CannedChanges = Partial<Pick<CannedResponse, 'shortcut' | 'title' | 'body' | 'category' | 'teamId' | 'version'>>;


const toCanned = (r: any): CannedResponse => ({
  id: r.id, workspaceId: r.workspace_id, shortcut: r.shortcut, title: r.title, body: r.body, category: r.category,
  teamId: r.team_id, version: r.version, usageCount: Number(r.usage_count), createdAt: r.created_at, updatedAt: r.updated_at,
});

const toVersion = (r: any): CannedVersion => ({
  version: r.version, title: r.title, body: r.body, createdAt: r.created_at, actor: { type: r.actor_type, id: r.actor_id } as Actor,
});

const live = (db: Db, workspaceId: string) => db('canned_responses').where({ workspace_id: workspaceId }).whereNull('archived_at');

export const cannedStore = {
  async insert(db: Db, c: CannedResponse): Promise<CannedResponse> {
    const [row] = await db('canned_responses').insert({
      id: c.id, workspace_id: c.workspaceId, shortcut: c.shortcut, title: c.title, body: c.body, category: c.category,
      team_id: c.teamId, version: c.version, usage_count: c.usageCount, created_at: c.createdAt, updated_at: c.updatedAt,
    }).returning('*');
    return toCanned(row);
  },

  async find(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<CannedResponse | null> {
    const q = live(db, workspaceId).where({ id }).first();
    if (opts.forUpdate) q.forUpdate();
    const row = await q;
    return row ? toCanned(row) : null;
  },

  async findByShortcut(db: Db, workspaceId: string, shortcut: string): Promise<CannedResponse | null> {
    const row = await live(db, workspaceId).where({ shortcut }).first();
    return row ? toCanned(row) : null;
  },

  async update(db: Db, id: string, c: CannedChanges, at: Date): Promise<CannedResponse> {
    const changes: Record<string, unknown> = { updated_at: at };
    if (c.shortcut !== undefined) changes.shortcut = c.shortcut;
    if (c.title !== undefined) changes.title = c.title;
    if (c.body !== undefined) changes.body = c.body;
    if (c.category !== undefined) changes.category = c.category;
    if (c.teamId !== undefined) changes.team_id = c.teamId;
    if (c.version !== undefined) changes.version = c.version;
    const [row] = await db('canned_responses').where({ id }).update(changes).returning('*');
    return toCanned(row);
  },

  async archive(db: Db, workspaceId: string, id: string, at: Date): Promise<boolean> {
    return (await live(db, workspaceId).where({ id }).update({ archived_at: at, updated_at: at })) > 0;
  },

  async countUse(db: Db, workspaceId: string, id: string): Promise<void> {
    await db('canned_responses').where({ workspace_id: workspaceId, id }).increment('usage_count', 1);
  },

  /** By shortcut, then id. */
  list(db: Db, workspaceId: string, f: CannedFilters, page: PageRequest) {
    const q = live(db, workspaceId).select('*');
    if (f.teamId === 'none') q.whereNull('team_id');
    else if (f.teamId) q.where('team_id', f.teamId);
    if (f.category) q.where('category', f.category);
    if (f.q) {
      const like = `%${likeEscape(f.q)}%`;
      q.where((w) => { w.whereRaw('shortcut ILIKE ?', [like]).orWhereRaw('title ILIKE ?', [like]).orWhereRaw('body ILIKE ?', [like]); });
    }
    return paginate(q, [['shortcut', 'asc'], ['id', 'asc']], page, toCanned);
  },

  /** Those a ticket of `teamId` may use (the team's and the workspace-wide), most used first. */
  async usableFor(db: Db, workspaceId: string, teamId: string | null, limit: number): Promise<CannedResponse[]> {
    const q = live(db, workspaceId).select('*');
    if (teamId) q.where((w) => { w.whereNull('team_id').orWhere('team_id', teamId); });
    else q.whereNull('team_id');
    return (await q.orderBy([{ column: 'usage_count', order: 'desc' }, { column: 'shortcut', order: 'asc' }]).limit(limit)).map(toCanned);
  },

  /** The shortcuts a ticket of `teamId` may use (for "did you mean"). */
  async usableShortcuts(db: Db, workspaceId: string, teamId: string | null): Promise<string[]> {
    const q = live(db, workspaceId).select('shortcut');
    if (teamId) q.where((w) => { w.whereNull('team_id').orWhere('team_id', teamId); });
    else q.whereNull('team_id');
    return (await q.orderBy('shortcut').limit(5000)).map((r: { shortcut: string }) => r.shortcut);
  },

  async insertVersion(db: Db, cannedId: string, v: CannedVersion): Promise<void> {
    await db('canned_response_versions').insert({
      canned_response_id: cannedId, version: v.version, title: v.title, body: v.body, actor_type: v.actor.type, actor_id: v.actor.id, created_at: v.createdAt,
    });
  },

  /** Newest first. */
  listVersions(db: Db, cannedId: string, page: PageRequest) {
    const q = db('canned_response_versions').select('*').where({ canned_response_id: cannedId });
    return paginate(q, [['version', 'desc']], page, toVersion);
  },
};
