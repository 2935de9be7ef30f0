import type { FromSchema } from 'json-schema-to-ts';
import { actorSchema } from '../events/event-schemas.js';
import { idRef, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';
import { CANNED_VARIABLES } from './canned-variables.js';

/** Telegram's limit for one text message: a body never needs to be longer. */
export const MAX_BODY = 4096;

const variablesHelp = `Variables: ${CANNED_VARIABLES.map((v) => `{{${v}}}`).join(' ')}; a fallback after a pipe is used when the value is empty: {{customer_first_name|there}}`;

const shortcut = { type: 'string', pattern: '^[a-z0-9_-]{1,32}$', examples: ['refund'], description: '1-32 of a-z 0-9 _ -; unique in the workspace (/canned <shortcut> in Telegram)' } as const;
const title = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S', description: `What agents see in lists. ${variablesHelp}` } as const;
const body = { type: 'string', minLength: 1, maxLength: MAX_BODY, pattern: '\\S', description: `The reply, plain text. ${variablesHelp}` } as const;
const category = { type: ['string', 'null'], minLength: 1, maxLength: 100, pattern: '\\S', description: 'A free label to group responses (null = none)' } as const;
const teamId = { type: ['string', 'null'], pattern: idRef('team').pattern, description: 'Shared with this team only (its tickets list it in Telegram); null = the whole workspace' } as const;

export const cannedResponseSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'shortcut', 'title', 'body', 'category', 'team_id', 'version', 'usage_count', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    shortcut: { type: 'string' },
    title: { type: 'string' },
    body: { type: 'string' },
    category: { type: ['string', 'null'] },
    team_id: { type: ['string', 'null'] },
    version: { type: 'integer', minimum: 1, description: 'Grows by one with every change of title or body' },
    usage_count: { type: 'integer', minimum: 0, description: 'How many times it was sent (API or Telegram)' },
    created_at: timestamp,
    updated_at: timestamp,
  },
} as const;

export const createCannedBody = {
  type: 'object',
  additionalProperties: false,
  required: ['shortcut', 'title', 'body'],
  properties: { shortcut, title, body, category, team_id: teamId },
} as const;

export const patchCannedBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { shortcut, title, body, category, team_id: teamId },
} as const;

export const listCannedQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    team_id: { type: 'string', pattern: `^(none|${idRef('team').pattern.slice(1, -1)})$`, description: 'Only those shared with this team; none = only the workspace-wide ones' },
    category: { type: 'string', minLength: 1, maxLength: 100 },
    q: { type: 'string', minLength: 1, maxLength: 200, description: 'Substring (any case) of the shortcut, title or body' },
  },
} as const;

export const cannedVersionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'title', 'body', 'created_at', 'actor'],
  properties: {
    version: { type: 'integer', minimum: 1 },
    title: { type: 'string' },
    body: { type: 'string' },
    created_at: timestamp,
    actor: actorSchema,
  },
} as const;

export const renderCannedBody = {
  type: 'object',
  additionalProperties: false,
  required: ['ticket_id'],
  properties: {
    ticket_id: idRef('tkt'),
    agent_id: { ...idRef('ag'), description: 'Whose {{agent_name}}; default: the ticket\'s assignee' },
  },
} as const;

export const renderedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['text', 'missing_variables'],
  properties: {
    text: { type: 'string' },
    missing_variables: { type: 'array', items: { type: 'string' }, description: 'Variables that were empty and had no fallback (rendered as "")' },
  },
} as const;

export type CannedResponseJson = FromSchema<typeof cannedResponseSchema>;
export type CreateCannedBody = FromSchema<typeof createCannedBody>;
export type PatchCannedBody = FromSchema<typeof patchCannedBody>;
export type ListCannedQuery = FromSchema<typeof listCannedQuery>;
export type CannedVersionJson = FromSchema<typeof cannedVersionSchema>;
