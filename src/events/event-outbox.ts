/**
 * The events outbox. `record` must be called with the transaction of the change the
 * event describes: the event exists exactly when the change committed. Who consumes the
 * outbox (webhooks today) and how a new consumer hooks in: event-consumers.ts.
 */
import type { Db } from '../db/knex.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import { newId } from '../lib/ids.js';
import type { Actor } from '../kernel/actor.js';
import type { StoredEventType } from './event-types.js';

export interface NewEvent {
  type: StoredEventType;
  actor: Actor;
  /** The resource as the API shows it. */
  payload: unknown;
  /** What changed, for the timeline. */
  detail?: Record<string, unknown>;
  /** The changed fields' values before the change, named and shaped as in the API (SPEC §4.6). */
  previous?: Record<string, unknown>;
  /** What the event says beyond the resource (SPEC §4.6), e.g. ticket.assigned's {strategy, note}. */
  details?: Record<string, unknown>;
  ticketId?: string | null;
  contactId?: string | null;
  messageId?: string | null;
}

/** An entry of a ticket's timeline: who changed what, when (`detail`: what changed). */
export interface TimelineEvent {
  id: string;
  type: StoredEventType;
  ticketId: string | null;
  actor: Actor;
  detail: Record<string, unknown>;
  /** Only on events that carry it (ticket.updated, ticket.status_changed, ticket.assigned; SPEC §4.6). */
  previous: Record<string, unknown> | null;
  createdAt: Date;
}

function toTimelineEvent(r: any): TimelineEvent {
  return {
    id: r.id,
    type: r.type,
    ticketId: r.ticket_id,
    actor: { type: r.actor_type, id: r.actor_id },
    detail: r.detail,
    previous: r.previous ?? null,
    createdAt: r.created_at,
  };
}

/** The events row for an event (its id is taken here, so ids follow call order). */
export function eventRow(workspaceId: string, at: Date, e: NewEvent) {
  return {
    id: newId('evt'),
    workspace_id: workspaceId,
    type: e.type,
    ticket_id: e.ticketId ?? null,
    contact_id: e.contactId ?? null,
    message_id: e.messageId ?? null,
    actor_type: e.actor.type,
    actor_id: e.actor.id,
    payload: JSON.stringify(e.payload),
    detail: JSON.stringify(e.detail ?? {}),
    previous: e.previous === undefined ? null : JSON.stringify(e.previous),
    details: e.details === undefined ? null : JSON.stringify(e.details),
    created_at: at,
  };
}

export const eventOutbox = {
  /**
   * Writes the events in one statement, in order (ids are monotonic within a process). A batch
   * travels as one JSON parameter: a multi-row VALUES list costs a bound parameter per column
   * per row, which dominated a sweep writing thousands of events.
   */
  async record(db: Db, workspaceId: string, at: Date, events: NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (events.length === 1) {
      await db('events').insert(eventRow(workspaceId, at, events[0]));
      return;
    }
    const rows = events.map((e) => ({
      id: newId('evt'), workspace_id: workspaceId, type: e.type, ticket_id: e.ticketId ?? null, contact_id: e.contactId ?? null,
      message_id: e.messageId ?? null, actor_type: e.actor.type, actor_id: e.actor.id, payload: e.payload, detail: e.detail ?? {},
      previous: e.previous ?? null, details: e.details ?? null,
    }));
    await db.raw(
      `INSERT INTO events (id, workspace_id, type, ticket_id, contact_id, message_id, actor_type, actor_id, payload, detail, previous, details, created_at)
       SELECT id, workspace_id, type, ticket_id, contact_id, message_id, actor_type, actor_id, payload, detail, previous, details, ?::timestamptz
         FROM jsonb_to_recordset(?::jsonb) AS r(id text, workspace_id text, type text, ticket_id text, contact_id text, message_id text,
              actor_type text, actor_id text, payload jsonb, detail jsonb, previous jsonb, details jsonb)`,
      [at, JSON.stringify(rows)],
    );
  },

  /** A ticket's timeline, oldest first. */
  timeline(db: Db, workspaceId: string, ticketId: string, page: PageRequest) {
    const q = db('events').select('id', 'type', 'ticket_id', 'actor_type', 'actor_id', 'detail', 'previous', 'created_at')
      .where({ workspace_id: workspaceId, ticket_id: ticketId });
    return paginate(q, [['created_at', 'asc'], ['id', 'asc']], page, toTimelineEvent);
  },
};
