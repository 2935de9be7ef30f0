/**
 * Agents and teams as far as tickets reference them. Creating and managing them through
 * the API (and the Telegram side registering group members) build on these.
 */
import type { Db } from '../db/knex.js';
import { newId } from '../lib/ids.js';

export interface Agent {
  id: string;
  workspaceId: string;
  telegramUserId: number | null;
  name: string;
  username: string | null;
  role: 'agent' | 'lead' | 'admin';
  active: boolean;
  skills: string[];
  /** null: no cap. */
  maxOpenTickets: number | null;
  lastAssignedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export type AutoAssign = 'round_robin' | 'least_loaded' | 'skills';

export interface Team {
  id: string;
  workspaceId: string;
  name: string;
  autoAssign: AutoAssign | null;
  paused: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export const toAgent = (r: any): Agent => ({
  id: r.id, workspaceId: r.workspace_id, telegramUserId: r.telegram_user_id === null ? null : Number(r.telegram_user_id), name: r.name,
  username: r.username, role: r.role, active: r.active, skills: r.skills ?? [], maxOpenTickets: r.max_open_tickets ?? null,
  lastAssignedAt: r.last_assigned_at ?? null, createdAt: r.created_at, updatedAt: r.updated_at,
});
export const toTeam = (r: any): Team => ({
  id: r.id, workspaceId: r.workspace_id, name: r.name, autoAssign: r.auto_assign ?? null, paused: r.paused ?? false,
  createdAt: r.created_at, updatedAt: r.updated_at,
});

export const agentStore = {
  async findById(db: Db, workspaceId: string, id: string): Promise<Agent | null> {
    const row = await db('agents').where({ workspace_id: workspaceId, id }).first();
    return row ? toAgent(row) : null;
  },

  async findByUsername(db: Db, workspaceId: string, username: string): Promise<Agent | null> {
    const row = await db('agents').where({ workspace_id: workspaceId }).whereRaw('lower(username) = ?', [username.toLowerCase()]).first();
    return row ? toAgent(row) : null;
  },

  /**
   * The agent of a Telegram user, inserted when missing (a concurrent insert of the same user
   * is absorbed by the unique index), its name and username updated when they changed.
   */
  async upsertByTelegramUser(db: Db, workspaceId: string, a: { telegramUserId: number; name: string; username: string | null; at: Date }): Promise<Agent> {
    const existing = await db('agents').where({ workspace_id: workspaceId, telegram_user_id: a.telegramUserId }).first();
    if (!existing) {
      await db('agents').insert({ id: newId('ag'), workspace_id: workspaceId, telegram_user_id: a.telegramUserId, name: a.name, username: a.username, role: 'agent', active: true, created_at: a.at, updated_at: a.at })
        .onConflict(db.raw('(workspace_id, telegram_user_id) WHERE telegram_user_id IS NOT NULL')).ignore();
    } else if (existing.name !== a.name || existing.username !== a.username) {
      await db('agents').where({ id: existing.id }).update({ name: a.name, username: a.username, updated_at: a.at });
    }
    const row = await db('agents').where({ workspace_id: workspaceId, telegram_user_id: a.telegramUserId }).first();
    return toAgent(row);
  },

  /**
   * The active agents a pick chooses among — a team's members, or every active agent of the
   * workspace — locked in id order until the transaction ends, so two picks that could choose
   * the same agent happen one after the other (capacity is never exceeded).
   */
  async lockCandidates(db: Db, workspaceId: string, teamId: string | null): Promise<Agent[]> {
    const q = db('agents as a').select('a.*').where({ 'a.workspace_id': workspaceId, 'a.active': true }).orderBy('a.id').forUpdate('a');
    if (teamId) q.join('agent_teams as m', function () { this.on('m.agent_id', 'a.id').andOnVal('m.team_id', teamId); });
    return (await q).map(toAgent);
  },

  /** Like lockCandidates, without locks (reports: how many agents could take a ticket now). */
  async listCandidates(db: Db, workspaceId: string, teamId: string | null): Promise<Agent[]> {
    const q = db('agents as a').select('a.*').where({ 'a.workspace_id': workspaceId, 'a.active': true }).orderBy('a.id');
    if (teamId) q.join('agent_teams as m', function () { this.on('m.agent_id', 'a.id').andOnVal('m.team_id', teamId); });
    return (await q).map(toAgent);
  },

  /** One agent, locked until the transaction ends (a direct assignment checking capacity). */
  async lock(db: Db, workspaceId: string, id: string): Promise<Agent | null> {
    const row = await db('agents').where({ workspace_id: workspaceId, id }).forUpdate().first();
    return row ? toAgent(row) : null;
  },

  async touchAssigned(db: Db, id: string, at: Date): Promise<void> {
    await db('agents').where({ id }).update({ last_assigned_at: at });
  },

  async insert(db: Db, a: { workspaceId: string; name: string; telegramUserId?: number | null; username?: string | null; role?: Agent['role']; active?: boolean; at: Date }): Promise<Agent> {
    const [row] = await db('agents').insert({
      id: newId('ag'), workspace_id: a.workspaceId, name: a.name, telegram_user_id: a.telegramUserId ?? null,
      username: a.username ?? null, role: a.role ?? 'agent', active: a.active ?? true, created_at: a.at, updated_at: a.at,
    }).returning('*');
    return toAgent(row);
  },
};

export const teamStore = {
  async findById(db: Db, workspaceId: string, id: string): Promise<Team | null> {
    const row = await db('teams').where({ workspace_id: workspaceId, id }).first();
    return row ? toTeam(row) : null;
  },

  /** By name, any case (names are unique per workspace regardless of case). */
  async findByName(db: Db, workspaceId: string, name: string): Promise<Team | null> {
    const row = await db('teams').where({ workspace_id: workspaceId }).whereRaw('lower(name) = lower(?)', [name]).first();
    return row ? toTeam(row) : null;
  },

  /** The workspace's teams by name. */
  async list(db: Db, workspaceId: string): Promise<Team[]> {
    return (await db('teams').where({ workspace_id: workspaceId }).orderByRaw('lower(name), id')).map(toTeam);
  },

  async insert(db: Db, t: { workspaceId: string; name: string; at: Date }): Promise<Team> {
    const [row] = await db('teams').insert({ id: newId('team'), workspace_id: t.workspaceId, name: t.name, created_at: t.at, updated_at: t.at }).returning('*');
    return toTeam(row);
  },
};
