import type { FromSchema } from 'json-schema-to-ts';
import { CANNED_VARIABLES } from '../canned/canned-variables.js';
import { idRef, tagSchema, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';
import { PRIORITIES, STATUSES } from '../tickets/ticket-status.js';

/** A year of minutes: the longest time threshold a rule may set. */
export const MAX_MINUTES = 525_600;

const STRATEGIES = ['round_robin', 'least_loaded', 'skills'] as const;
const TARGETS = ['topic', 'lead_chat'] as const;

const variablesHelp = `Variables (as in canned responses): ${CANNED_VARIABLES.map((v) => `{{${v}}}`).join(' ')}; a fallback after a pipe: {{customer_first_name|there}}; {{agent_name}} is the assignee`;

const list = <const T extends object>(items: T, description: string) => ({ type: 'array', minItems: 1, maxItems: 50, uniqueItems: true, items, description }) as const;
const minutes = (description: string) => ({ type: 'integer', minimum: 0, maximum: MAX_MINUTES, description }) as const;

const conditions = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    priority_in: list({ type: 'string', enum: PRIORITIES } as const, 'The ticket\'s priority is one of these'),
    status_in: list({ type: 'string', enum: STATUSES } as const, 'The ticket\'s status is one of these. Without status_in a rule holds only for tickets that are not resolved or closed'),
    team_id_in: list(
      { type: ['string', 'null'], pattern: idRef('team').pattern } as const,
      'The ticket\'s team is one of these; null in the list stands for "no team"',
    ),
    sla: { type: 'string', enum: ['warning', 'breached'], description: 'warning: an SLA target is at risk now (past its warning point, not met, not breached); breached: the ticket has an SLA breach' },
    age_minutes_gt: minutes('More than this many minutes since the ticket was created'),
    contact_tag_in: list(tagSchema, 'The customer has one of these tags (any case)'),
    unassigned_for_minutes_gt: minutes('The ticket has had no assignee for more than this many minutes'),
  },
  description: 'All given must hold (at least one). Archived tickets never match',
} as const;

const action = {
  oneOf: [
    {
      type: 'object', additionalProperties: false, required: ['type', 'priority'],
      properties: { type: { const: 'set_priority' }, priority: { type: 'string', enum: PRIORITIES } },
    },
    {
      type: 'object', additionalProperties: false, required: ['type', 'team_id'],
      properties: { type: { const: 'assign_team' }, team_id: { ...idRef('team'), description: 'Moves the ticket to this team\'s queue (unassigned unless the team auto-assigns); nothing when already there' } },
    },
    {
      type: 'object', additionalProperties: false, required: ['type', 'agent_id'],
      properties: { type: { const: 'assign_agent' }, agent_id: { ...idRef('ag'), description: 'Refused at firing (skipped, reported) when the agent is inactive or at capacity' } },
    },
    {
      type: 'object', additionalProperties: false, required: ['type', 'strategy'],
      properties: { type: { const: 'assign' }, strategy: { type: 'string', enum: STRATEGIES, description: 'Among the ticket\'s team (else every active agent); skipped when nobody is available' } },
    },
    {
      type: 'object', additionalProperties: false, required: ['type', 'tag'],
      properties: { type: { const: 'add_tag' }, tag: tagSchema },
    },
    {
      type: 'object', additionalProperties: false, required: ['type', 'to', 'text'],
      properties: {
        type: { const: 'notify' },
        to: { type: 'array', minItems: 1, maxItems: 2, uniqueItems: true, items: { type: 'string', enum: TARGETS }, description: 'topic: the ticket\'s forum topic; lead_chat: the workspace\'s lead_chat_id' },
        text: { type: 'string', minLength: 1, maxLength: 4096, pattern: '\\S', description: variablesHelp },
      },
    },
  ],
} as const;

const actions = { type: 'array', minItems: 1, maxItems: 20, items: action, description: 'Applied in order when the rule fires; an action that is refused is skipped and reported, the others still apply' } as const;
const name = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' } as const;
const enabled = { type: 'boolean', description: 'Default true; a disabled rule is never evaluated' } as const;

export const escalationRuleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'enabled', 'conditions', 'actions', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    enabled: { type: 'boolean' },
    conditions,
    actions,
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const createEscalationRuleBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'conditions', 'actions'],
  properties: { name, enabled, conditions, actions },
} as const;

export const patchEscalationRuleBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { name, enabled, conditions, actions },
  description: 'Only the fields given change; conditions and actions are replaced whole',
} as const;

export const listEscalationRulesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    enabled: { type: 'boolean' },
  },
} as const;

export type EscalationRuleJson = FromSchema<typeof escalationRuleSchema>;
export type ConditionsJson = FromSchema<typeof conditions>;
export type ActionJson = FromSchema<typeof action>;
export type CreateEscalationRuleBody = FromSchema<typeof createEscalationRuleBody>;
export type PatchEscalationRuleBody = FromSchema<typeof patchEscalationRuleBody>;
export type ListEscalationRulesQuery = FromSchema<typeof listEscalationRulesQuery>;
