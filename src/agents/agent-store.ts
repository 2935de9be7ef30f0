/**
 * Agents, teams and who is in which team (agents, teams, agent_teams): rows ↔ objects.
 * Every finder is scoped to a workspace; membership rows carry the workspace too (their
 * foreign keys make a cross-workspace membership impossible).
 */
import type { Db } from '../db/knex.js';
import { likeEscape } from '../db/like.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
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

export type AgentRole = Agent['role'];
export const AGENT_ROLES: readonly AgentRole[] = ['agent', 'lead', 'admin'];

export type AutoAssign = 'round_robin' | 'least_loaded' | 'skills';
export const AUTO_ASSIGN: readonly AutoAssign[] = ['round_robin', 'least_loaded', 'skills'];

export interface AgentFilters {
  active?: boolean;
  role?: AgentRole;
  teamId?: string;
  skill?: string;
  q?: string;
}

/** Column changes of an agent (updated_at is set by the caller). */
export interface AgentChanges {
  role?: AgentRole;
  skills?: string[];
  maxOpenTickets?: number | null;
  active?: boolean;
}

export interface TeamChanges {
  name?: string;
  autoAssign?: AutoAssign | null;
  paused?: boolean;
}

export interface Team {
  id: string;
  workspaceId: string;
  name: string;
  autoAssign: AutoAssign | null;
  paused: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** A LIKE pattern's literal text. */

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
  /** Every agent of the workspace (active or not), by name. */
  async listAll(db: Db, workspaceId: string): Promise<Agent[]> {
    return (await db('agents').where({ workspace_id: workspaceId }).orderByRaw('lower(name), id')).map(toAgent);
  },

  async findById(db: Db, workspaceId: string, id: string): Promise<Agent | null> {
    const row = await db('agents').where({ workspace_id: workspaceId, id }).first();
    return row ? toAgent(row) : null;
  },

  async findByUsername(db: Db, workspaceId: string, username: string): Promise<Agent | null> {
    // Several may share a username (a retired pre-registration, a renamed member): active and linked first.
    const row = await db('agents').where({ workspace_id: workspaceId }).whereRaw('lower(username) = ?', [username.toLowerCase()])
      .orderByRaw('active DESC, (telegram_user_id IS NULL), id').first();
    return row ? toAgent(row) : null;
  },

  async findByTelegramUser(db: Db, workspaceId: string, telegramUserId: number): Promise<Agent | null> {
    const row = await db('agents').where({ workspace_id: workspaceId, telegram_user_id: telegramUserId }).first();
    return row ? toAgent(row) : null;
  },

  /**
   * An agent another registration by this username would collide with: one linked to a
   * Telegram user, or an active pre-registration (a retired, never linked one is ignored).
   */
  async findClaimingUsername(db: Db, workspaceId: string, username: string): Promise<Agent | null> {
    const row = await db('agents').where({ workspace_id: workspaceId }).whereRaw('lower(username) = ?', [username.toLowerCase()])
      .where((w) => { w.whereNotNull('telegram_user_id').orWhere('active', true); })
      .orderBy('id').first();
    return row ? toAgent(row) : null;
  },

  /**
   * Links the oldest active pre-registered agent with this username (any case) and no Telegram
   * user yet to `telegramUserId`; null when there is none. The caller serialises registrations
   * (AGENTS_LOCK), so the unique index agents_telegram_user cannot refuse the update.
   */
  async linkPreRegistered(db: Db, workspaceId: string, a: { username: string; telegramUserId: number; name: string | null; at: Date }): Promise<Agent | null> {
    const candidate = db('agents').select('id')
      .where({ workspace_id: workspaceId, active: true }).whereNull('telegram_user_id').whereRaw('lower(username) = ?', [a.username.toLowerCase()])
      .orderBy('created_at').orderBy('id').limit(1).forUpdate();
    const [row] = await db('agents').where('id', candidate).whereNull('telegram_user_id')
      .update({ telegram_user_id: a.telegramUserId, username: a.username, ...(a.name !== null ? { name: a.name } : {}), updated_at: a.at })
      .returning('*');
    return row ? toAgent(row) : null;
  },

  /** A Telegram user's name and username as Telegram shows them now (name null: keep it). */
  async refreshIdentity(db: Db, id: string, a: { name: string | null; username: string | null; at: Date }): Promise<Agent> {
    const [row] = await db('agents').where({ id }).update({ username: a.username, ...(a.name !== null ? { name: a.name } : {}), updated_at: a.at }).returning('*');
    return toAgent(row);
  },

  /** Inserts the agent of a Telegram user; a concurrent insert of the same user is absorbed by the unique index. */
  async insertForTelegramUser(db: Db, workspaceId: string, a: { telegramUserId: number; name: string; username: string | null; at: Date }): Promise<Agent> {
    await db('agents').insert({ id: newId('ag'), workspace_id: workspaceId, telegram_user_id: a.telegramUserId, name: a.name, username: a.username, role: 'agent', active: true, created_at: a.at, updated_at: a.at })
      .onConflict(db.raw('(workspace_id, telegram_user_id) WHERE telegram_user_id IS NOT NULL')).ignore();
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

  async insert(db: Db, a: {
    workspaceId: string; name: string; telegramUserId?: number | null; username?: string | null; role?: AgentRole; active?: boolean;
    skills?: string[]; maxOpenTickets?: number | null; at: Date;
  }): Promise<Agent> {
    const [row] = await db('agents').insert({
      id: newId('ag'), workspace_id: a.workspaceId, name: a.name, telegram_user_id: a.telegramUserId ?? null,
      username: a.username ?? null, role: a.role ?? 'agent', active: a.active ?? true, skills: a.skills ?? [],
      max_open_tickets: a.maxOpenTickets ?? null, created_at: a.at, updated_at: a.at,
    }).returning('*');
    return toAgent(row);
  },

  async update(db: Db, id: string, c: AgentChanges, at: Date): Promise<Agent> {
    const changes: Record<string, unknown> = { updated_at: at };
    if (c.role !== undefined) changes.role = c.role;
    if (c.skills !== undefined) changes.skills = c.skills;
    if (c.maxOpenTickets !== undefined) changes.max_open_tickets = c.maxOpenTickets;
    if (c.active !== undefined) changes.active = c.active;
    const [row] = await db('agents').where({ id }).update(changes).returning('*');
    return toAgent(row);
  },

  /** Oldest first. */
  list(db: Db, workspaceId: string, f: AgentFilters, page: PageRequest) {
    const q = db('agents').select('*').where('workspace_id', workspaceId);
    if (f.active !== undefined) q.where('active', f.active);
    if (f.role) q.where('role', f.role);
    if (f.skill) q.whereRaw('skills @> ARRAY[?]::text[]', [f.skill]);
    if (f.teamId) q.whereExists((e) => { e.select(db.raw('1')).from('agent_teams as m').whereRaw('m.agent_id = agents.id').where('m.team_id', f.teamId!); });
    if (f.q) {
      const like = `%${likeEscape(f.q)}%`;
      q.where((w) => { w.whereRaw('name ILIKE ?', [like]).orWhereRaw('username ILIKE ?', [like]); });
    }
    return paginate(q, [['created_at', 'asc'], ['id', 'asc']], page, toAgent);
  },

  /** Which of `ids` are agents of the workspace. */
  async existingIds(db: Db, workspaceId: string, ids: readonly string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const rows = await db('agents').select('id').where('workspace_id', workspaceId).whereIn('id', ids);
    return new Set(rows.map((r: { id: string }) => r.id));
  },

  /** The workspace of each of `ids` that exists in any workspace (to tell an unknown id from another workspace's). */
  async workspacesOf(db: Db, ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const rows = await db('agents').select('id', 'workspace_id').whereIn('id', ids);
    return new Map(rows.map((r: { id: string; workspace_id: string }) => [r.id, r.workspace_id]));
  },
};

/** Who is in which team (agent_teams). Replacing a side keeps rows that stay, so only new members are "joins". */
export const membershipStore = {
  /** Each agent's team ids, in id order. */
  async teamIdsOf(db: Db, workspaceId: string, agentIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(agentIds.map((id) => [id, []]));
    if (!agentIds.length) return out;
    const rows = await db('agent_teams').select('agent_id', 'team_id').where('workspace_id', workspaceId).whereIn('agent_id', agentIds).orderBy('team_id');
    for (const r of rows) out.get(r.agent_id)!.push(r.team_id);
    return out;
  },

  /** Each team's agent ids, in id order. */
  async agentIdsOf(db: Db, workspaceId: string, teamIds: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(teamIds.map((id) => [id, []]));
    if (!teamIds.length) return out;
    const rows = await db('agent_teams').select('agent_id', 'team_id').where('workspace_id', workspaceId).whereIn('team_id', teamIds).orderBy('agent_id');
    for (const r of rows) out.get(r.team_id)!.push(r.agent_id);
    return out;
  },

  /** The agent is in exactly `teamIds` afterwards. */
  async setTeamsOfAgent(db: Db, workspaceId: string, agentId: string, teamIds: readonly string[]): Promise<void> {
    const gone = db('agent_teams').where({ workspace_id: workspaceId, agent_id: agentId });
    if (teamIds.length) gone.whereNotIn('team_id', teamIds);
    await gone.delete();
    if (teamIds.length) {
      await db('agent_teams').insert(teamIds.map((teamId) => ({ workspace_id: workspaceId, team_id: teamId, agent_id: agentId }))).onConflict(['team_id', 'agent_id']).ignore();
    }
  },

  /** The team has exactly `agentIds` afterwards. */
  async setAgentsOfTeam(db: Db, workspaceId: string, teamId: string, agentIds: readonly string[]): Promise<void> {
    const gone = db('agent_teams').where({ workspace_id: workspaceId, team_id: teamId });
    if (agentIds.length) gone.whereNotIn('agent_id', agentIds);
    await gone.delete();
    if (agentIds.length) {
      await db('agent_teams').insert(agentIds.map((agentId) => ({ workspace_id: workspaceId, team_id: teamId, agent_id: agentId }))).onConflict(['team_id', 'agent_id']).ignore();
    }
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

  /** The workspace's teams, by name. */
  async listAll(db: Db, workspaceId: string): Promise<Team[]> {
    return (await db('teams').where({ workspace_id: workspaceId }).orderByRaw('lower(name), id')).map(toTeam);
  },

  /** Pauses or resumes the team's queue (a resume kicks it: trigger teams_queues); null when there is no such team. */
  async setPaused(db: Db, workspaceId: string, id: string, paused: boolean, at: Date): Promise<Team | null> {
    const [row] = await db('teams').where({ workspace_id: workspaceId, id }).whereNot({ paused }).update({ paused, updated_at: at }).returning('*');
    return row ? toTeam(row) : teamStore.findById(db, workspaceId, id);
  },

  /** One team, locked until the transaction ends (its membership is being replaced). */
  async lock(db: Db, workspaceId: string, id: string): Promise<Team | null> {
    const row = await db('teams').where({ workspace_id: workspaceId, id }).forUpdate().first();
    return row ? toTeam(row) : null;
  },

  async insert(db: Db, t: { workspaceId: string; name: string; autoAssign?: AutoAssign | null; paused?: boolean; at: Date }): Promise<Team> {
    const [row] = await db('teams').insert({
      id: newId('team'), workspace_id: t.workspaceId, name: t.name, auto_assign: t.autoAssign ?? null, paused: t.paused ?? false,
      created_at: t.at, updated_at: t.at,
    }).returning('*');
    return toTeam(row);
  },

  async update(db: Db, id: string, c: TeamChanges, at: Date): Promise<Team> {
    const changes: Record<string, unknown> = { updated_at: at };
    if (c.name !== undefined) changes.name = c.name;
    if (c.autoAssign !== undefined) changes.auto_assign = c.autoAssign;
    if (c.paused !== undefined) changes.paused = c.paused;
    const [row] = await db('teams').where({ id }).update(changes).returning('*');
    return toTeam(row);
  },

  /** Oldest first; q: a substring of the name. */
  list(db: Db, workspaceId: string, f: { q?: string }, page: PageRequest) {
    const q = db('teams').select('*').where('workspace_id', workspaceId);
    if (f.q) q.whereRaw('name ILIKE ?', [`%${likeEscape(f.q)}%`]);
    return paginate(q, [['created_at', 'asc'], ['id', 'asc']], page, toTeam);
  },

  /** Which of `ids` are teams of the workspace. */
  async existingIds(db: Db, workspaceId: string, ids: readonly string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const rows = await db('teams').select('id').where('workspace_id', workspaceId).whereIn('id', ids);
    return new Set(rows.map((r: { id: string }) => r.id));
  },

  /** The workspace of each of `ids` that exists in any workspace (to tell an unknown id from another workspace's). */
  async workspacesOf(db: Db, ids: readonly string[]): Promise<Map<string, string>> {
    if (!ids.length) return new Map();
    const rows = await db('teams').select('id', 'workspace_id').whereIn('id', ids);
    return new Map(rows.map((r: { id: string; workspace_id: string }) => [r.id, r.workspace_id]));
  },
};
