/**
 * Agents and teams (SPEC §4.4): managed through the API (pre-registration, roles, skills,
 * capacity, retirement, team membership from either side), looked up for assignment, and
 * group members registered as agents the first time they act in the support group.
 *
 * Invariants:
 * - one agent per (workspace, Telegram user); registering twice, also concurrently, yields the
 *   same agent, and a person pre-registered by username is linked to that agent on first use
 *   (no duplicate). Every path that gives an agent a Telegram user or creates one takes the
 *   workspace's AGENTS_LOCK, so these decisions never race;
 * - agents are never deleted (history points at them): `active: false` retires;
 * - team names are unique per workspace, any case (409);
 * - every id a body names (team_ids, agent_ids) is of the workspace, else 404 naming it.
 */
import { LOCK_NAMESPACES, lockKey } from '../db/advisory-lock.js';
import type { Db } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { Page, PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { normalizeTags } from '../lib/tags.js';
import type { CreateAgentBody, CreateTeamBody, ListAgentsQuery, PatchAgentBody, PatchTeamBody } from './agent-schemas.js';
import { agentStore, membershipStore, teamStore, type Agent, type Team } from './agent-store.js';

/** lockKey namespace of the transaction lock that serialises creating and linking a workspace's agents. */
export const AGENTS_LOCK = LOCK_NAMESPACES.agentsOfWorkspace;

/** An agent as the API shows it: with its teams and how many open tickets it has. */
export interface AgentView extends Agent {
  teamIds: string[];
  openTickets: number;
}

/** A team as the API shows it: with its members. */
export interface TeamView extends Team {
  agentIds: string[];
}

/**
 * How many open tickets (open, in progress, waiting on customer) each agent has: the tickets
 * module answers (bound in the container; tickets build on agents, so no import here).
 */
export type OpenTicketCounts = (db: Db, workspaceId: string, agentIds: string[]) => Promise<Map<string, number>>;

const conflict = (detail: string, field: string) => new AppError('conflict', detail, { details: [{ field, error: detail }] });

/** A unique index said no. */
const isUnique = (err: unknown, constraint: string) => {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && e.constraint === constraint;
};

const normalizeSkills = (skills: readonly string[]) => normalizeTags(skills);
const stripAt = (username: string) => username.replace(/^@/, '');

/** A group member as Telegram describes them. */
export interface Member {
  telegramUserId: number;
  firstName?: string;
  lastName?: string;
  username?: string;
}

export function createAgentService(deps: { clock: Clock; openTicketCounts: OpenTicketCounts }) {
  const { clock, openTicketCounts } = deps;

  const lockAgents = (db: Db, workspaceId: string) => db.raw('SELECT pg_advisory_xact_lock(?)', [lockKey(AGENTS_LOCK, workspaceId)]);

  async function viewAgents(db: Db, workspaceId: string, agents: Agent[]): Promise<AgentView[]> {
    const ids = agents.map((a) => a.id);
    const [teams, open] = await Promise.all([membershipStore.teamIdsOf(db, workspaceId, ids), openTicketCounts(db, workspaceId, ids)]);
    return agents.map((a) => ({ ...a, teamIds: teams.get(a.id) ?? [], openTickets: open.get(a.id) ?? 0 }));
  }

  async function viewTeams(db: Db, workspaceId: string, teams: Team[]): Promise<TeamView[]> {
    const members = await membershipStore.agentIdsOf(db, workspaceId, teams.map((t) => t.id));
    return teams.map((t) => ({ ...t, agentIds: members.get(t.id) ?? [] }));
  }

  /** The ids, deduplicated, each a team of the workspace (else 404: another workspace's looks like none). */
  async function requireTeams(db: Db, workspaceId: string, ids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    const found = await teamStore.existingIds(db, workspaceId, unique);
    if (unique.some((id) => !found.has(id))) throw notFound('Team');
    return unique;
  }

  async function requireAgents(db: Db, workspaceId: string, ids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    const found = await agentStore.existingIds(db, workspaceId, unique);
    if (unique.some((id) => !found.has(id))) throw notFound('Agent');
    return unique;
  }

  async function teamNamed<T>(write: () => Promise<T>, name: string | undefined): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (isUnique(err, 'teams_name')) throw conflict(`A team named "${name}" already exists`, 'name');
      throw err;
    }
  }

  return {
    findById: (db: Db, workspaceId: string, id: string): Promise<Agent | null> => agentStore.findById(db, workspaceId, id),

    /** An agent who may take tickets: exists in the workspace (404) and is active (409). */
    async requireActive(db: Db, workspaceId: string, id: string): Promise<Agent> {
      const agent = await agentStore.findById(db, workspaceId, id);
      if (!agent) throw notFound('Agent');
      if (!agent.active) throw new AppError('conflict', `Agent ${id} is inactive and cannot take tickets`);
      return agent;
    },

    /** By Telegram username (with or without @, any case). */
    findByUsername: (db: Db, workspaceId: string, username: string): Promise<Agent | null> =>
      agentStore.findByUsername(db, workspaceId, username.replace(/^@/, '')),

    /**
     * The agent behind a group member, registered on first use; name and username kept current.
     * First use links a pre-registered agent instead when there is one: active, without a
     * Telegram user, with the member's username (any case).
     */
    async registerMember(db: Db, workspaceId: string, m: Member): Promise<Agent> {
      const name = [m.firstName, m.lastName].filter(Boolean).join(' ').trim().slice(0, 200) || null;
      const username = m.username ? stripAt(m.username) : null;
      const at = clock.now();
      const known = await agentStore.findByTelegramUser(db, workspaceId, m.telegramUserId);
      if (known) {
        if ((name !== null && known.name !== name) || known.username !== username) return agentStore.refreshIdentity(db, known.id, { name, username, at });
        return known;
      }
      // First use: decided under the workspace's lock (a savepoint inside a transaction, else its own).
      return inTransaction(db, async (tx) => {
        await lockAgents(tx, workspaceId);
        const meanwhile = await agentStore.findByTelegramUser(tx, workspaceId, m.telegramUserId);
        if (meanwhile) return meanwhile;
        const linked = username ? await agentStore.linkPreRegistered(tx, workspaceId, { username, telegramUserId: m.telegramUserId, name, at }) : null;
        return linked ?? agentStore.insertForTelegramUser(tx, workspaceId, { telegramUserId: m.telegramUserId, name: name ?? `User ${m.telegramUserId}`, username, at });
      });
    },

    // ---- the API (SPEC §4.2, §4.4) -----------------------------------------------------

    async list(db: Db, workspaceId: string, query: ListAgentsQuery & PageRequest): Promise<Page<AgentView>> {
      const filters = {
        active: query.active, role: query.role, teamId: query.team_id,
        skill: query.skill?.trim().toLowerCase(), q: query.q ? stripAt(query.q) || query.q : undefined,
      };
      const page = await agentStore.list(db, workspaceId, filters, query);
      return { ...page, items: await viewAgents(db, workspaceId, page.items) };
    },

    async get(db: Db, workspaceId: string, id: string): Promise<AgentView> {
      const agent = await agentStore.findById(db, workspaceId, id);
      if (!agent) throw notFound('Agent');
      return (await viewAgents(db, workspaceId, [agent]))[0];
    },

    /**
     * Pre-registers an agent by Telegram user id or username (one is required). 409 when an
     * agent of that Telegram user exists, or one already answers to the username (linked, or
     * an active pre-registration).
     */
    async create(db: Db, workspaceId: string, body: CreateAgentBody): Promise<AgentView> {
      if (body.telegram_user_id === undefined && body.username === undefined) {
        throw new AppError('validation_error', 'Give telegram_user_id or username (or both)', {
          details: ['telegram_user_id', 'username'].map((field) => ({ field, error: 'one of telegram_user_id, username is required' })),
        });
      }
      const username = body.username !== undefined ? stripAt(body.username) : null;
      const telegramUserId = body.telegram_user_id ?? null;
      const teamIds = await requireTeams(db, workspaceId, body.team_ids ?? []);
      await lockAgents(db, workspaceId);
      if (telegramUserId !== null && (await agentStore.findByTelegramUser(db, workspaceId, telegramUserId))) {
        throw conflict(`An agent with telegram_user_id ${telegramUserId} already exists`, 'telegram_user_id');
      }
      if (username !== null && (await agentStore.findClaimingUsername(db, workspaceId, username))) {
        throw conflict(`An agent with username @${username} already exists`, 'username');
      }
      const at = clock.now();
      let agent: Agent;
      try {
        agent = await agentStore.insert(db, {
          workspaceId, telegramUserId, username, name: body.name ?? (username !== null ? `@${username}` : `User ${telegramUserId}`),
          role: body.role, active: body.active, skills: normalizeSkills(body.skills ?? []), maxOpenTickets: body.max_open_tickets ?? null, at,
        });
      } catch (err) {
        if (isUnique(err, 'agents_telegram_user')) throw conflict(`An agent with telegram_user_id ${telegramUserId} already exists`, 'telegram_user_id');
        throw err;
      }
      if (teamIds.length) await membershipStore.setTeamsOfAgent(db, workspaceId, agent.id, teamIds);
      return (await viewAgents(db, workspaceId, [agent]))[0];
    },

    /** Role, skills, capacity, active (false retires), teams (the list is replaced). */
    async update(db: Db, workspaceId: string, id: string, body: PatchAgentBody): Promise<AgentView> {
      const teamIds = body.team_ids !== undefined ? await requireTeams(db, workspaceId, body.team_ids) : undefined;
      const current = await agentStore.lock(db, workspaceId, id);
      if (!current) throw notFound('Agent');
      const agent = await agentStore.update(db, current.id, {
        role: body.role, active: body.active, maxOpenTickets: body.max_open_tickets,
        skills: body.skills !== undefined ? normalizeSkills(body.skills) : undefined,
      }, clock.now());
      if (teamIds !== undefined) await membershipStore.setTeamsOfAgent(db, workspaceId, agent.id, teamIds);
      return (await viewAgents(db, workspaceId, [agent]))[0];
    },

    async listTeams(db: Db, workspaceId: string, query: { q?: string } & PageRequest): Promise<Page<TeamView>> {
      const page = await teamStore.list(db, workspaceId, { q: query.q }, query);
      return { ...page, items: await viewTeams(db, workspaceId, page.items) };
    },

    async getTeam(db: Db, workspaceId: string, id: string): Promise<TeamView> {
      const team = await teamStore.findById(db, workspaceId, id);
      if (!team) throw notFound('Team');
      return (await viewTeams(db, workspaceId, [team]))[0];
    },

    async createTeam(db: Db, workspaceId: string, body: CreateTeamBody): Promise<TeamView> {
      const agentIds = await requireAgents(db, workspaceId, body.agent_ids ?? []);
      const team = await teamNamed(() => teamStore.insert(db, { workspaceId, name: body.name.trim(), autoAssign: body.auto_assign, paused: body.paused, at: clock.now() }), body.name.trim());
      if (agentIds.length) await membershipStore.setAgentsOfTeam(db, workspaceId, team.id, agentIds);
      return (await viewTeams(db, workspaceId, [team]))[0];
    },

    /** Name (409 when taken), auto_assign, paused, members (the list is replaced). */
    async updateTeam(db: Db, workspaceId: string, id: string, body: PatchTeamBody): Promise<TeamView> {
      const agentIds = body.agent_ids !== undefined ? await requireAgents(db, workspaceId, body.agent_ids) : undefined;
      const current = await teamStore.lock(db, workspaceId, id);
      if (!current) throw notFound('Team');
      const name = body.name?.trim();
      const team = await teamNamed(() => teamStore.update(db, current.id, { name, autoAssign: body.auto_assign, paused: body.paused }, clock.now()), name);
      if (agentIds !== undefined) await membershipStore.setAgentsOfTeam(db, workspaceId, team.id, agentIds);
      return (await viewTeams(db, workspaceId, [team]))[0];
    },

    /** An active agent of the workspace, locked until the transaction ends (404, or 409 when inactive). */
    async lockActive(db: Db, workspaceId: string, id: string): Promise<Agent> {
      const agent = await agentStore.lock(db, workspaceId, id);
      if (!agent) throw notFound('Agent');
      if (!agent.active) throw new AppError('conflict', `Agent ${id} is inactive and cannot take tickets`);
      return agent;
    },

    /** The active agents a pick may choose among (a team's, or all), locked in id order: see agentStore.lockCandidates. */
    lockCandidates: (db: Db, workspaceId: string, teamId: string | null): Promise<Agent[]> => agentStore.lockCandidates(db, workspaceId, teamId),

    /** The active agents of a team (or all), unlocked: for reports. */
    listCandidates: (db: Db, workspaceId: string, teamId: string | null): Promise<Agent[]> => agentStore.listCandidates(db, workspaceId, teamId),

    touchAssigned: (db: Db, id: string, at: Date): Promise<void> => agentStore.touchAssigned(db, id, at),

    findTeam: (db: Db, workspaceId: string, id: string): Promise<Team | null> => teamStore.findById(db, workspaceId, id),

    /** By name, any case (`/team billing`). */
    findTeamByName: (db: Db, workspaceId: string, name: string): Promise<Team | null> => teamStore.findByName(db, workspaceId, name.trim()),

    async requireTeam(db: Db, workspaceId: string, id: string): Promise<Team> {
      const team = await teamStore.findById(db, workspaceId, id);
      if (!team) throw notFound('Team');
      return team;
    },

    /**
     * The workspace each of these team and agent ids belongs to (ids that exist nowhere are
     * absent): lets a caller answer an unknown id (422) apart from another workspace's (404).
     */
    async workspacesOf(db: Db, ids: { teamIds: readonly string[]; agentIds: readonly string[] }): Promise<{ teams: Map<string, string>; agents: Map<string, string> }> {
      const [teams, agents] = await Promise.all([teamStore.workspacesOf(db, ids.teamIds), agentStore.workspacesOf(db, ids.agentIds)]);
      return { teams, agents };
    },

    /** Every agent of the workspace (active or not), by name: reports name them. */
    allAgents: (db: Db, workspaceId: string): Promise<Agent[]> => agentStore.listAll(db, workspaceId),

    /** The workspace's teams, by name. */
    allTeams: (db: Db, workspaceId: string): Promise<Team[]> => teamStore.listAll(db, workspaceId),

    /** Pauses or resumes a team's queue (auto-assignment); 404 when the team is not the workspace's. */
    async setTeamPaused(db: Db, workspaceId: string, id: string, paused: boolean): Promise<Team> {
      const team = await teamStore.setPaused(db, workspaceId, id, paused, clock.now());
      if (!team) throw notFound('Team');
      return team;
    },
  };
}

export type AgentService = ReturnType<typeof createAgentService>;
