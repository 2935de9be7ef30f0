import { idRef, nullableTimestamp } from '../http/common-schemas.js';
import { paginationQueryProperties } from '../http/pagination.js';

/** `{team_id}` of a queue: a team's id, or `none` for the tickets without a team. */
export const queueParams = {
  type: 'object',
  required: ['team_id'],
  additionalProperties: false,
  properties: {
    team_id: { type: 'string', pattern: `^(none|${idRef('team').pattern.slice(1, -1)})$`, description: 'A team id, or `none`: the queue of tickets without a team' },
  },
} as const;

const count = { type: 'integer', minimum: 0 } as const;

export const queueSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['team_id', 'name', 'depth', 'by_priority', 'oldest_waiting_since', 'paused', 'eligible_agents'],
  properties: {
    team_id: { type: ['string', 'null'], description: 'null: the tickets without a team' },
    name: { type: 'string' },
    depth: { ...count, description: 'Unassigned tickets not resolved, closed or archived' },
    by_priority: {
      type: 'object',
      additionalProperties: false,
      required: ['urgent', 'high', 'normal', 'low'],
      properties: { urgent: count, high: count, normal: count, low: count },
    },
    oldest_waiting_since: { ...nullableTimestamp, description: 'When the oldest waiting ticket was created; null: the queue is empty' },
    paused: { type: 'boolean', description: 'Auto-assignment from this queue is stopped (never true for the no-team queue)' },
    eligible_agents: { ...count, description: 'Active agents (of the team; for the no-team queue, all) under their max_open_tickets now' },
  },
} as const;

export const queueListSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['items'],
  properties: { items: { type: 'array', items: queueSchema } },
} as const;

export const queueTicketsQuery = { type: 'object', additionalProperties: false, properties: paginationQueryProperties } as const;

export const reorderBody = {
  type: 'object',
  additionalProperties: false,
  required: ['ticket_id', 'position'],
  properties: {
    ticket_id: { ...idRef('tkt'), description: 'A ticket of this queue' },
    position: { type: 'integer', minimum: 1, maximum: 100000, description: '1-based place in the queue; past the end puts the ticket last' },
  },
} as const;
