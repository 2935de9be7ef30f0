/**
 * Agents and teams as the rest of the product uses them: looked up for assignment, and group
 * members registered as agents the first time they act in the support group. (Managing them
 * through the API — roles, teams, strategies, queues — builds on this.) Invariant: one agent
 * per (workspace, Telegram user); registering twice, also concurrently, yields the same agent.
 */
import type { Db } from '../db/knex.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { Clock } from '../lib/clock.js';
import { agentStore, teamStore, type Agent, type Team } from './agent-store.js';

/** A group member as Telegram describes them. */
export interface Member {
  telegramUserId: number;
  firstName?: string;
  lastName?: string;
  username?: string;
}

export function createAgentService(deps: { clock: Clock }) {
  const { clock } = deps;
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

    /** The agent behind a group member, registered on first use; name and username kept current. */
    async registerMember(db: Db, workspaceId: string, m: Member): Promise<Agent> {
      const name = [m.firstName, m.lastName].filter(Boolean).join(' ').slice(0, 200) || `User ${m.telegramUserId}`;
      return agentStore.upsertByTelegramUser(db, workspaceId, { telegramUserId: m.telegramUserId, name, username: m.username ?? null, at: clock.now() });
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

    /** The workspace's teams, by name. */
    listTeams: (db: Db, workspaceId: string): Promise<Team[]> => teamStore.list(db, workspaceId),

    async requireTeam(db: Db, workspaceId: string, id: string): Promise<Team> {
      const team = await teamStore.findById(db, workspaceId, id);
      if (!team) throw notFound('Team');
      return team;
    },
  };
}

export type AgentService = ReturnType<typeof createAgentService>;
