import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import {
  agentSchema, createAgentBody, createTeamBody, listAgentsQuery, listTeamsQuery, patchAgentBody, patchTeamBody, teamSchema,
  type AgentJson, type TeamJson,
} from './agent-schemas.js';
import type { AgentService, AgentView, TeamView } from './agent-service.js';

export function presentAgent(a: AgentView): AgentJson {
  return {
    id: a.id,
    telegram_user_id: a.telegramUserId,
    username: a.username,
    name: a.name,
    role: a.role,
    skills: a.skills,
    max_open_tickets: a.maxOpenTickets,
    active: a.active,
    team_ids: a.teamIds,
    open_tickets: a.openTickets,
    last_assigned_at: a.lastAssignedAt?.toISOString() ?? null,
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

export function presentTeam(t: TeamView): TeamJson {
  return {
    id: t.id,
    name: t.name,
    agent_ids: t.agentIds,
    auto_assign: t.autoAssign,
    paused: t.paused,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

/** Agents and teams (SPEC §4.2, §4.4): managed with manage:agents, read with read:tickets. Never deleted. */
export function agentRoutes(agents: AgentService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const read = 'read:tickets' as const;
  const manage = 'manage:agents' as const;
  const agentId = { params: idParams('ag'), notFoundLabel: 'Agent' } as const;
  const teamId = { params: idParams('team'), notFoundLabel: 'Team' } as const;
  return [
    defineRoute({
      method: 'get', path: '/v1/agents', tag: 'agents', auth: 'key', scope: read,
      summary: 'List agents, oldest first; filter by active, role, team_id, skill, search name/username with q',
      query: listAgentsQuery,
      responses: { 200: { description: 'A page of agents', schema: pageSchema(agentSchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await agents.list(ctx.state.db, ws(ctx), query), presentAgent);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/agents', tag: 'agents', auth: 'key', scope: manage,
      summary: 'Pre-register an agent by telegram_user_id or username; their first message in the support group links to it',
      body: createAgentBody,
      responses: {
        201: { description: 'The agent', schema: agentSchema },
        404: { description: 'A team in team_ids does not exist' },
        409: { description: 'An agent with this telegram_user_id or username already exists' },
      },
      async handler(ctx, { body }) {
        const agent = await agents.create(ctx.state.db, ws(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/v1/agents/${agent.id}`);
        ctx.body = presentAgent(agent);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/agents/:id', tag: 'agents', auth: 'key', scope: read, ...agentId,
      summary: 'One agent, with its teams and open tickets',
      responses: { 200: { description: 'The agent', schema: agentSchema } },
      async handler(ctx, { params }) {
        ctx.body = presentAgent(await agents.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/agents/:id', tag: 'agents', auth: 'key', scope: manage, ...agentId,
      summary: 'Change role, skills, max_open_tickets, teams (replaced) or active (false retires; agents are never deleted)',
      body: patchAgentBody,
      responses: { 200: { description: 'The agent', schema: agentSchema } },
      async handler(ctx, { params, body }) {
        ctx.body = presentAgent(await agents.update(ctx.state.db, ws(ctx), params.id, body));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/teams', tag: 'teams', auth: 'key', scope: read,
      summary: 'List teams, oldest first; search the name with q',
      query: listTeamsQuery,
      responses: { 200: { description: 'A page of teams', schema: pageSchema(teamSchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await agents.listTeams(ctx.state.db, ws(ctx), query), presentTeam);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/teams', tag: 'teams', auth: 'key', scope: manage,
      summary: 'Create a team (its queue), with members, an auto-assignment strategy and the pause switch',
      body: createTeamBody,
      responses: {
        201: { description: 'The team', schema: teamSchema },
        404: { description: 'An agent in agent_ids does not exist' },
        409: { description: 'A team of that name (any case) exists' },
      },
      async handler(ctx, { body }) {
        const team = await agents.createTeam(ctx.state.db, ws(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/v1/teams/${team.id}`);
        ctx.body = presentTeam(team);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/teams/:id', tag: 'teams', auth: 'key', scope: read, ...teamId,
      summary: 'One team, with its members',
      responses: { 200: { description: 'The team', schema: teamSchema } },
      async handler(ctx, { params }) {
        ctx.body = presentTeam(await agents.getTeam(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/teams/:id', tag: 'teams', auth: 'key', scope: manage, ...teamId,
      summary: 'Rename, set members (replaced), auto_assign or paused',
      body: patchTeamBody,
      responses: {
        200: { description: 'The team', schema: teamSchema },
        409: { description: 'A team of that name (any case) exists' },
      },
      async handler(ctx, { params, body }) {
        ctx.body = presentTeam(await agents.updateTeam(ctx.state.db, ws(ctx), params.id, body));
      },
    }),
  ];
}
