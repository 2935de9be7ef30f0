/** Domain event names (SPEC §7): the webhook `event` and the timeline `type`. */
export const EVENT_TYPES = [
  'ticket.created', 'ticket.updated', 'ticket.status_changed', 'ticket.assigned',
  'ticket.resolved', 'ticket.closed', 'ticket.reopened', 'ticket.escalated',
  'sla.warning', 'sla.breached',
  'message.received', 'message.sent', 'message.failed',
  'contact.created', 'contact.updated', 'contact.tagged',
  'csat.received',
  'webhook.disabled',
] as const;

/** A test delivery (POST /v1/webhooks/{id}/test): sent to one endpoint, never fanned out. */
export const PING = 'ping';

export type EventType = (typeof EVENT_TYPES)[number];

/** What an events row may hold. */
export type StoredEventType = EventType | typeof PING;
