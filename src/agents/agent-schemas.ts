import type { FromSchema } from 'json-schema-to-ts';
import { idRef, nullableTimestamp, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';
import { AGENT_ROLES, AUTO_ASSIGN } from './agent-store.js';

/** Telegram usernames: 4-32 letters, digits and underscores; accepted with or without `@` (as for contacts). */
const username = { type: 'string', pattern: '^@?[A-Za-z0-9_]{4,32}$', examples: ['@ada_lovelace'], description: 'Telegram username, with or without @ (stored without)' } as const;
const telegramUserId = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'The Telegram user id' } as const;
const role = { type: 'string', enum: AGENT_ROLES, description: 'agent: acts on tickets; lead and admin: also the settings commands in Telegram' } as const;
const skills = {
  type: 'array',
  maxItems: 50,
  items: { type: 'string', minLength: 1, maxLength: 100, pattern: '\\S' },
  description: 'Matched (any case) against a ticket\'s category and its skill:<name> tags by the skills strategy; stored trimmed, lower-cased, without duplicates',
} as const;
const maxOpenTickets = {
  type: ['integer', 'null'],
  minimum: 1,
  maximum: 10000,
  description: 'The most open tickets (open, in progress, waiting) assignment gives this agent; null = no cap',
} as const;
const active = { type: 'boolean', description: 'false retires the agent (never deleted: history points at it); no ticket is assigned to a retired agent' } as const;
const teamIds = {
  type: 'array',
  maxItems: 100,
  items: idRef('team'),
  description: 'The teams the agent is in; replaces the whole list (duplicates are ignored)',
} as const;
const agentIds = {
  type: 'array',
  maxItems: 1000,
  items: idRef('ag'),
  description: 'The agents in the team; replaces the whole list (duplicates are ignored)',
} as const;
const teamName = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S', description: 'Unique in the workspace, compared case-insensitively' } as const;
const autoAssign = {
  type: ['string', 'null'],
  enum: [...AUTO_ASSIGN, null],
  description: 'How tickets entering the team\'s queue are assigned: round_robin, least_loaded, skills; null = they wait for a person',
} as const;
const paused = { type: 'boolean', description: 'A paused queue assigns nothing automatically (manual assignment still works)' } as const;

export const agentSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'telegram_user_id', 'username', 'name', 'role', 'skills', 'max_open_tickets', 'active', 'team_ids', 'open_tickets', 'last_assigned_at', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    telegram_user_id: { type: ['integer', 'null'], description: 'null until a pre-registered agent first acts in the support group' },
    username: { type: ['string', 'null'], description: 'Telegram username without @' },
    name: { type: 'string', description: 'As Telegram shows the person (kept current once they act in the group)' },
    role: { type: 'string', enum: AGENT_ROLES },
    skills: { type: 'array', items: { type: 'string' } },
    max_open_tickets: { type: ['integer', 'null'] },
    active: { type: 'boolean' },
    team_ids: { type: 'array', items: { type: 'string' } },
    open_tickets: { type: 'integer', minimum: 0, description: 'The agent\'s tickets in open, in_progress and waiting_on_customer' },
    last_assigned_at: nullableTimestamp,
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const createAgentBody = {
  type: 'object',
  additionalProperties: false,
  description: 'Pre-registers an agent by telegram_user_id or username (at least one); the person\'s first message in the support group links to it',
  properties: {
    telegram_user_id: telegramUserId,
    username,
    name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S', description: 'Until Telegram tells their name; defaults to @username, else "User <id>"' },
    role,
    skills,
    max_open_tickets: maxOpenTickets,
    active,
    team_ids: teamIds,
  },
} as const;

export const patchAgentBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { role, skills, max_open_tickets: maxOpenTickets, active, team_ids: teamIds },
} as const;

export const listAgentsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    active: { type: 'boolean' },
    role,
    team_id: { ...idRef('team'), description: 'Only members of this team' },
    skill: { type: 'string', minLength: 1, maxLength: 100, description: 'Only agents with this skill' },
    q: { type: 'string', minLength: 1, maxLength: 200, description: 'Substring of name or username' },
  },
} as const;

export const teamSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'agent_ids', 'auto_assign', 'paused', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    agent_ids: { type: 'array', items: { type: 'string' } },
    auto_assign: { type: ['string', 'null'], enum: [...AUTO_ASSIGN, null] },
    paused: { type: 'boolean' },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const createTeamBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: teamName, agent_ids: agentIds, auto_assign: autoAssign, paused },
} as const;

export const patchTeamBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { name: teamName, agent_ids: agentIds, auto_assign: autoAssign, paused },
} as const;

export const listTeamsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    q: { type: 'string', minLength: 1, maxLength: 200, description: 'Substring of the name' },
  },
} as const;

export type AgentJson = FromSchema<typeof agentSchema>;
export type TeamJson = FromSchema<typeof teamSchema>;
export type CreateAgentBody = FromSchema<typeof createAgentBody, { keepDefaultedPropertiesOptional: true }>;
export type PatchAgentBody = FromSchema<typeof patchAgentBody>;
export type CreateTeamBody = FromSchema<typeof createTeamBody>;
export type PatchTeamBody = FromSchema<typeof patchTeamBody>;
export type ListAgentsQuery = FromSchema<typeof listAgentsQuery>;
