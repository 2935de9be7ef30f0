/**
 * The names the OpenAPI document gives the API's shapes, and the webhook payloads of SPEC §7.
 * Lives beside app.ts because it gathers every module's schemas: http/ may not import them
 * (modules import http/, and folders must not form cycles).
 */
import { accountSchema } from './accounts/account-schemas.js';
import { agentSchema, teamSchema } from './agents/agent-schemas.js';
import { queueSchema } from './assignment/queue-schemas.js';
import { apiKeySchema, apiKeyWithTokenSchema, meSchema } from './auth/api-key-schemas.js';
import { cannedResponseSchema, cannedVersionSchema, renderedSchema } from './canned/canned-schemas.js';
import { contactSchema } from './contacts/contact-schemas.js';
import { escalationRuleSchema } from './escalation/escalation-schemas.js';
import { actorSchema, timelineEventSchema } from './events/event-schemas.js';
import { EVENT_TYPES, type EventType } from './events/event-types.js';
import { timestamp } from './http/common-schemas.js';
import type { OpenApiExtras } from './http/openapi.js';
import { intakeFormSchema } from './intake/intake-form-schemas.js';
import type { Schema } from './kernel/validation.js';
import { messageSchema, sentMessageSchema } from './messages/message-schemas.js';
import { agentsReportSchema, backlogSchema, csatSchema as csatReportSchema, durationReportSchema, slaReportSchema, statsSchema } from './metrics/metrics-schemas.js';
import { slaPolicySchema } from './sla/sla-policy-schemas.js';
import { ticketSchema } from './tickets/ticket-schemas.js';
import { deliverySchema, webhookSchema, webhookWithSecretSchema } from './webhooks/webhook-schemas.js';
import { workspaceSchema } from './workspaces/workspace-schemas.js';

/** Each shape once, by name; listed before the shapes that contain them is not needed ($refs are by equality). */
const schemas: Record<string, Schema> = {
  Ticket: ticketSchema,
  Contact: contactSchema,
  Message: messageSchema,
  SentMessage: sentMessageSchema,
  Actor: actorSchema,
  TimelineEvent: timelineEventSchema,
  Agent: agentSchema,
  Team: teamSchema,
  Queue: queueSchema,
  CannedResponse: cannedResponseSchema,
  CannedResponseVersion: cannedVersionSchema,
  RenderedCannedResponse: renderedSchema,
  SlaPolicy: slaPolicySchema,
  EscalationRule: escalationRuleSchema,
  WebhookEndpoint: webhookSchema,
  WebhookEndpointWithSecret: webhookWithSecretSchema,
  Delivery: deliverySchema,
  ApiKey: apiKeySchema,
  ApiKeyWithToken: apiKeyWithTokenSchema,
  Me: meSchema,
  Workspace: workspaceSchema,
  Account: accountSchema,
  IntakeForm: intakeFormSchema,
  DurationReport: durationReportSchema,
  DurationStats: statsSchema,
  SlaReport: slaReportSchema,
  Backlog: backlogSchema,
  CsatReport: csatReportSchema,
  AgentsReport: agentsReportSchema,
};

const idPrefixes: Record<string, string> = {
  Ticket: 'tkt', Contact: 'ct', Message: 'msg', SentMessage: 'msg', TimelineEvent: 'evt', Agent: 'ag', Team: 'team',
  CannedResponse: 'cr', SlaPolicy: 'sla', EscalationRule: 'esc', WebhookEndpoint: 'whk', WebhookEndpointWithSecret: 'whk',
  Delivery: 'dlv', ApiKey: 'key', ApiKeyWithToken: 'key', Me: 'key', Workspace: 'ws', Account: 'acc',
};

const csatSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ticket_id', 'ticket_number', 'contact_id', 'rating', 'rated_at'],
  properties: {
    ticket_id: { type: 'string' }, ticket_number: { type: 'integer' }, contact_id: { type: 'string' },
    rating: { type: 'integer', minimum: 1, maximum: 5 }, rated_at: timestamp,
  },
} as const;

const previous = { type: 'object', description: 'The changed fields\' values before the change, e.g. {"status":"open"} (SPEC §4.6)' } as const;
const slaDetails = {
  type: 'object', additionalProperties: false, required: ['target', 'due_at'],
  properties: { target: { type: 'string', enum: ['first_response', 'next_response', 'resolution'] }, due_at: timestamp },
} as const;

/** What `data` holds, and what else the payload carries, per event (SPEC §7 and §4.6). */
const EVENTS: Record<EventType, { summary: string; data: Schema; previous?: true; details?: Schema }> = {
  'ticket.created': { summary: 'A ticket was opened (from Telegram, the API or MCP)', data: ticketSchema },
  'ticket.updated': { summary: 'Ticket fields changed (subject, priority, tags, team, custom fields…)', data: ticketSchema, previous: true },
  'ticket.status_changed': { summary: 'The ticket moved in its workflow', data: ticketSchema, previous: true },
  'ticket.assigned': {
    summary: 'The ticket was assigned, transferred or unassigned', data: ticketSchema, previous: true,
    details: { type: 'object', properties: { strategy: { type: ['string', 'null'] }, note: { type: ['string', 'null'] } } },
  },
  'ticket.resolved': { summary: 'The ticket was resolved', data: ticketSchema },
  'ticket.closed': { summary: 'The ticket was closed', data: ticketSchema },
  'ticket.reopened': { summary: 'A resolved or closed ticket was reopened', data: ticketSchema },
  'ticket.escalated': {
    summary: 'An escalation rule fired on the ticket', data: ticketSchema,
    details: { type: 'object', properties: { rule_id: { type: 'string' }, actions: { type: 'array', items: { type: 'object' } } } },
  },
  'sla.warning': { summary: 'An SLA target of the ticket is about to be breached', data: ticketSchema, details: slaDetails },
  'sla.breached': { summary: 'An SLA target of the ticket was breached', data: ticketSchema, details: slaDetails },
  'message.received': { summary: 'A customer wrote (private chat with the bot)', data: messageSchema },
  'message.sent': { summary: 'A message reached the customer in Telegram', data: messageSchema },
  'message.failed': { summary: 'A message could not be delivered (see failure_reason)', data: messageSchema },
  'contact.created': { summary: 'A new contact', data: contactSchema },
  'contact.updated': { summary: 'Contact fields changed', data: contactSchema, previous: true },
  'contact.tagged': { summary: 'Tags were added to or removed from a contact', data: contactSchema },
  'csat.received': { summary: 'A customer rated a ticket (1-5)', data: csatSchema },
  'webhook.disabled': { summary: 'An endpoint was disabled (410, or failing for too long)', data: webhookSchema },
};

function payload(event: EventType): Schema {
  const e = EVENTS[event];
  return {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'event', 'created_at', 'workspace_id', 'data'],
    properties: {
      id: { type: 'string', description: 'The event id (evt_…), also the webhook-id header' },
      event: { type: 'string', const: event },
      created_at: timestamp,
      workspace_id: { type: 'string' },
      data: e.data,
      ...(e.previous ? { previous } : {}),
      ...(e.details ? { details: e.details } : {}),
    },
  };
}

export const openApiExtras: OpenApiExtras = {
  schemas,
  idPrefixes,
  webhooks: Object.fromEntries(EVENT_TYPES.map((event) => [event, { summary: EVENTS[event].summary, payload: payload(event) }])),
};
