import { timestamp } from '../http/common-schemas.js';
import { EVENT_TYPES } from './event-types.js';

export const actorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'id'],
  properties: {
    type: { type: 'string', enum: ['contact', 'agent', 'api', 'system'] },
    id: { type: ['string', 'null'] },
  },
} as const;

export const timelineEventSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'ticket_id', 'actor', 'data', 'created_at'],
  properties: {
    id: { type: 'string' },
    type: { type: 'string', enum: EVENT_TYPES },
    ticket_id: { type: ['string', 'null'] },
    actor: actorSchema,
    data: { type: 'object', description: 'What changed: e.g. {"from":"open","to":"resolved","note":…}' },
    previous: {
      type: 'object',
      description: 'ticket.updated, ticket.status_changed and ticket.assigned only: the changed fields\' values before the change, e.g. {"status":"open"}',
    },
    created_at: timestamp,
  },
} as const;
