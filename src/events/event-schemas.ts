import { timestamp } from '../http/common-schemas.js';
import type { TimelineEvent } from './event-outbox.js';
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

export interface TimelineEventJson {
  id: string;
  type: string;
  ticket_id: string | null;
  actor: { type: string; id: string | null };
  data: Record<string, unknown>;
  previous?: Record<string, unknown>;
  created_at: string;
}

/** A timeline entry as the API shows it. */
export function presentEvent(e: TimelineEvent): TimelineEventJson {
  return {
    id: e.id,
    type: e.type,
    ticket_id: e.ticketId,
    actor: { type: e.actor.type, id: e.actor.id },
    data: e.detail,
    ...(e.previous ? { previous: e.previous } : {}),
    created_at: e.createdAt.toISOString(),
  };
}
