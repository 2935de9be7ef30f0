import type { FromSchema } from 'json-schema-to-ts';
import { contactFieldsProperties, contactSchema } from '../contacts/contact-schemas.js';
import { commaList, customFieldsOutSchema, customFieldsSchema, idRef, nullableTimestamp, tagSchema, tagsSchema, timestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';
import { PRIORITIES, STATUSES } from './ticket-status.js';

const subject = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' } as const;
const description = { type: 'string', maxLength: 20000 } as const;
const category = { type: 'string', minLength: 1, maxLength: 100 } as const;
const note = { type: 'string', minLength: 1, maxLength: 4096, pattern: '\\S', description: 'Posted as an internal note on the ticket' } as const;

const SLA_TARGETS = ['first_response', 'next_response', 'resolution'] as const;

export const ticketSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'id', 'number', 'subject', 'description', 'status', 'priority', 'category', 'tags', 'custom_fields', 'contact',
    'assignee_id', 'team_id', 'account_id', 'topic', 'created_at', 'updated_at', 'first_response_at', 'resolved_at',
    'closed_at', 'reopened_count', 'archived', 'sla',
  ],
  properties: {
    id: { type: 'string' },
    number: { type: 'integer', description: 'Per workspace: 1, 2, 3…, shown as #42' },
    subject: { type: 'string' },
    description: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    priority: { type: 'string', enum: PRIORITIES },
    category: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    custom_fields: customFieldsOutSchema,
    contact: contactSchema,
    assignee_id: { type: ['string', 'null'] },
    team_id: { type: ['string', 'null'] },
    account_id: { type: ['string', 'null'] },
    topic: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object', additionalProperties: false, required: ['chat_id', 'message_thread_id'],
          properties: { chat_id: { type: 'integer' }, message_thread_id: { type: 'integer' } },
        },
      ],
    },
    created_at: timestamp,
    updated_at: timestamp,
    first_response_at: nullableTimestamp,
    resolved_at: nullableTimestamp,
    closed_at: nullableTimestamp,
    reopened_count: { type: 'integer' },
    archived: { type: 'boolean' },
    sla: {
      type: 'object',
      additionalProperties: false,
      description: 'The SLA clocks (null due times: no policy, or that target does not run); warnings and breaches are recorded once per target (per cycle for next response)',
      required: ['policy_id', 'first_response_due_at', 'next_response_due_at', 'resolution_due_at', 'paused', 'warnings', 'breaches'],
      properties: {
        policy_id: { type: ['string', 'null'] },
        first_response_due_at: nullableTimestamp,
        next_response_due_at: { ...nullableTimestamp, description: 'Set while a customer waits for an answer after an agent replied' },
        resolution_due_at: { ...nullableTimestamp, description: 'null while paused (waiting on the customer, with pause_while_waiting_on_customer)' },
        paused: { type: 'boolean', description: 'The resolution clock is paused' },
        warnings: {
          type: 'array',
          items: {
            type: 'object', additionalProperties: false, required: ['target', 'warned_at'],
            properties: { target: { type: 'string', enum: SLA_TARGETS }, warned_at: timestamp },
          },
        },
        breaches: {
          type: 'array',
          items: {
            type: 'object', additionalProperties: false, required: ['target', 'breached_at'],
            properties: { target: { type: 'string', enum: SLA_TARGETS }, breached_at: timestamp },
          },
        },
      },
    },
  },
} as const;

export const createTicketBody = {
  type: 'object',
  additionalProperties: false,
  required: ['subject'],
  description: 'Give contact_id or contact (matched on its identities, created when new), not both',
  properties: {
    contact_id: idRef('ct'),
    contact: { type: 'object', additionalProperties: false, minProperties: 1, properties: contactFieldsProperties },
    subject,
    description,
    priority: { type: 'string', enum: PRIORITIES, default: 'normal' },
    category,
    tags: tagsSchema,
    custom_fields: customFieldsSchema,
    team_id: idRef('team'),
    assignee_id: idRef('ag'),
    account_id: { ...idRef('acc'), description: 'The bot the ticket belongs to; default: the one the contact last wrote to, else the workspace\'s default bot' },
  },
} as const;

export const patchTicketBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    subject,
    description,
    priority: { type: 'string', enum: PRIORITIES },
    category: { type: ['string', 'null'], minLength: 1, maxLength: 100 },
    tags: { ...tagsSchema, description: 'Replaces the tags' },
    custom_fields: { ...customFieldsSchema, description: 'Merged; null removes a field' },
    team_id: { type: ['string', 'null'], pattern: idRef('team').pattern },
    archived: { type: 'boolean', description: 'false restores an archived ticket' },
  },
} as const;

export const changeStatusBody = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { type: 'string', enum: STATUSES }, note },
} as const;

export const TICKET_SORTS = ['-created_at', 'created_at', 'priority', 'sla_due'] as const;

export const listTicketsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...paginationQueryProperties,
    status: commaList(STATUSES),
    priority: commaList(PRIORITIES),
    assignee_id: { type: 'string', pattern: `^(none|${idRef('ag').pattern.slice(1, -1)})$`, description: 'An agent id, or none for unassigned' },
    team_id: { type: 'string', pattern: `^(none|${idRef('team').pattern.slice(1, -1)})$`, description: 'A team id, or none' },
    contact_id: idRef('ct'),
    tag: tagSchema,
    created_after: { ...timestamp, description: 'created_at ≥ this' },
    created_before: { ...timestamp, description: 'created_at < this' },
    updated_after: { ...timestamp, description: 'updated_at ≥ this' },
    q: { type: 'string', minLength: 1, maxLength: 200, description: 'Full-text search over subject, description and messages; #42 finds ticket 42' },
    archived: { type: 'boolean', default: false, description: 'true lists archived tickets instead' },
    sla: { type: 'string', enum: ['at_risk', 'breached'], description: 'at_risk: a running target is past its warning point and not breached; breached: a target was breached' },
    sort: { type: 'string', enum: TICKET_SORTS, default: '-created_at', description: 'priority: urgent first, then oldest; sla_due: earliest pending due time first (tickets without one last)' },
  },
} as const;

export type TicketJson = FromSchema<typeof ticketSchema>;
export type CreateTicketBody = FromSchema<typeof createTicketBody, { keepDefaultedPropertiesOptional: true }>;
export type PatchTicketBody = FromSchema<typeof patchTicketBody>;
export type ListTicketsQuery = FromSchema<typeof listTicketsQuery>;
