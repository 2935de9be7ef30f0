/**
 * The MCP tools of SPEC §8: each is an API route seen by an AI agent. Its input schema is the
 * route's own query or body schema (plus the path's id as `ticket_id`/`contact_id`), its scope
 * the route's, its result the route's JSON (the same present* functions), and it calls the same
 * service. So a tool cannot drift from the endpoint it mirrors.
 */
import { checkAssignBody } from '../assignment/assignment-routes.js';
import { assignBody } from '../assignment/assignment-schemas.js';
import type { Services } from '../container.js';
import type { Db } from '../db/knex.js';
import { presentCanned } from '../canned/canned-routes.js';
import { cannedResponseSchema, listCannedQuery, type ListCannedQuery } from '../canned/canned-schemas.js';
import { contactSchema, listContactsQuery, upsertContactBody, type UpsertContactBody } from '../contacts/contact-schemas.js';
import { presentContact } from '../contacts/contact-service.js';
import { idRef } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import type { Actor } from '../kernel/actor.js';
import type { AuthContext } from '../kernel/auth-context.js';
import type { Scope } from '../kernel/scopes.js';
import { requireOneOf, type Schema } from '../kernel/validation.js';
import { messageSchema, postTicketMessageBody, sendMessageBody, sentMessageSchema, type SendMessageBody } from '../messages/message-schemas.js';
import { presentMessage } from '../messages/message-service.js';
import { changeStatusBody, listTicketsQuery, ticketSchema, type ListTicketsQuery } from '../tickets/ticket-schemas.js';
import { presentTicket, type TicketView } from '../tickets/ticket-service.js';
import type { TicketStatus } from '../tickets/ticket-status.js';
import { AppError } from '../kernel/errors.js';
import { rangeQuery, type RangeQuery } from '../metrics/metrics-schemas.js';

const METRIC_KINDS = ['first_response', 'resolution', 'sla', 'backlog', 'csat'] as const;

/** What a tool answers: the API's JSON (structuredContent) and a line or few for a human. */
export interface ToolOutput {
  json: object;
  summary: string;
}

export interface ToolDef {
  name: string;
  title: string;
  description: string;
  /** The scope of the API route the tool mirrors. */
  scope: Scope;
  /** Read tools run on the pool; write tools in one transaction, and take `idempotency_key`. */
  kind: 'read' | 'write';
  /** The route's schema with the path's ids added (and, for write tools, idempotency_key later). */
  input: Schema;
  output: Schema;
  /** Cross-field rules of the route, run after the schema. */
  validate?: (input: any) => void;
  run(db: Db, auth: AuthContext, input: any): Promise<ToolOutput>;
}

/** The route's schema with extra properties (ids from the path) in front, required. */
function withIds(
  schema: Schema & { properties: Record<string, unknown>; required?: readonly string[] },
  ids: Record<string, Schema>,
  opts: { omit?: string[]; required?: string[] } = {},
): Schema {
  const properties = { ...ids, ...schema.properties };
  for (const f of opts.omit ?? []) delete properties[f];
  return { ...schema, properties, required: [...Object.keys(ids), ...(schema.required ?? []), ...(opts.required ?? [])] };
}

const ticketId = { ...idRef('tkt'), description: 'The ticket, tkt_…' };
const apiActor = (auth: AuthContext): Actor => ({ type: 'api', id: auth.keyId });
const presentView = (v: TicketView) => presentTicket(v.ticket, v.contact);

/** How many of a ticket's latest messages get_ticket shows. */
export const GET_TICKET_MESSAGES = 50;

const ticketLine = (t: ReturnType<typeof presentView>) => `#${t.number} [${t.status}, ${t.priority}] ${t.subject} (${t.id})`;
const contactLabel = (c: ReturnType<typeof presentContact>) =>
  [c.name ?? ([c.first_name, c.last_name].filter(Boolean).join(' ') || 'unnamed'), c.username ? `@${c.username}` : null, c.email].filter(Boolean).join(', ');
const pageLine = (p: { items: unknown[]; total: number; offset: number }, what: string) =>
  `${p.items.length} of ${p.total} ${what}${p.offset ? ` from offset ${p.offset}` : ''}`;

export function mcpTools(services: Services): ToolDef[] {
  const { tickets, messages, contacts, canned, assignment, metrics } = services;
  return [
    // ---------------------------------------------------------------- read
    {
      name: 'list_tickets', title: 'List tickets', kind: 'read', scope: 'read:tickets',
      description: 'List support tickets (GET /v1/tickets): filter by status, priority, assignee, team, contact, tag, dates, SLA state, full-text q; sort; paginate with limit/offset or cursor.',
      input: listTicketsQuery,
      output: pageSchema(ticketSchema),
      async run(db, auth, query: ListTicketsQuery & { limit: number; offset: number }) {
        const page = presentPage(await tickets.list(db, auth.workspace.id, query), presentView);
        return { json: page, summary: [pageLine(page, 'tickets'), ...page.items.map(ticketLine)].join('\n') };
      },
    },
    {
      name: 'get_ticket', title: 'Get a ticket', kind: 'read', scope: 'read:tickets',
      description: `One ticket (GET /v1/tickets/{id}) with its last ${GET_TICKET_MESSAGES} messages, oldest first, internal notes included (GET /v1/tickets/{id}/messages); messages is null when the key lacks read:messages.`,
      input: { type: 'object', additionalProperties: false, required: ['ticket_id'], properties: { ticket_id: ticketId } },
      output: {
        type: 'object', additionalProperties: false, required: ['ticket', 'messages'],
        properties: { ticket: ticketSchema, messages: { anyOf: [{ type: 'null' }, pageSchema(messageSchema)] } },
      },
      async run(db, auth, { ticket_id }: { ticket_id: string }) {
        const ticket = presentView(await tickets.get(db, auth.workspace.id, ticket_id));
        // The thread needs read:messages, as GET /v1/tickets/{id}/messages does.
        let thread = null;
        if (auth.scopes.includes('read:messages')) {
          const { total } = await messages.listForTicket(db, auth.workspace.id, ticket_id, { limit: 1, offset: 0 });
          const offset = Math.max(0, total - GET_TICKET_MESSAGES);
          thread = presentPage(await messages.listForTicket(db, auth.workspace.id, ticket_id, { limit: GET_TICKET_MESSAGES, offset }), presentMessage);
        }
        const lines = [ticketLine(ticket), `Contact: ${contactLabel(ticket.contact)}; assignee: ${ticket.assignee_id ?? 'none'}`];
        if (thread) {
          lines.push(`${thread.items.length} of ${thread.total} messages:`);
          for (const m of thread.items) lines.push(`- ${m.created_at} ${m.visibility === 'internal' ? 'note' : m.direction} by ${m.author.type}: ${m.text.length > 200 ? `${m.text.slice(0, 200)}…` : m.text}`);
        } else {
          lines.push('Messages not shown: the key lacks read:messages');
        }
        return { json: { ticket, messages: thread }, summary: lines.join('\n') };
      },
    },
    {
      name: 'search_contacts', title: 'Search contacts', kind: 'read', scope: 'read:contacts',
      description: 'List contacts, newest first (GET /v1/contacts): q searches name, username, email and phone; filter by tag, blocked, dates.',
      input: listContactsQuery,
      output: pageSchema(contactSchema),
      async run(db, auth, query) {
        const page = presentPage(await contacts.list(db, auth.workspace.id, query), presentContact);
        return { json: page, summary: [pageLine(page, 'contacts'), ...page.items.map((c) => `${contactLabel(c)} (${c.id})`)].join('\n') };
      },
    },
    {
      name: 'get_contact', title: 'Get a contact', kind: 'read', scope: 'read:contacts',
      description: 'One contact (GET /v1/contacts/{id}).',
      input: { type: 'object', additionalProperties: false, required: ['contact_id'], properties: { contact_id: { ...idRef('ct'), description: 'The contact, ct_…' } } },
      output: contactSchema,
      async run(db, auth, { contact_id }: { contact_id: string }) {
        const c = presentContact(await contacts.get(db, auth.workspace.id, contact_id));
        return { json: c, summary: `${contactLabel(c)} (${c.id})${c.tags.length ? `; tags: ${c.tags.join(', ')}` : ''}` };
      },
    },
    {
      name: 'list_canned_responses', title: 'List canned responses', kind: 'read', scope: 'read:tickets',
      description: 'Canned responses by shortcut (GET /v1/canned-responses); filter by team_id, category, q. Send one with reply_to_ticket and its canned_response_id.',
      input: listCannedQuery,
      output: pageSchema(cannedResponseSchema),
      async run(db, auth, query: ListCannedQuery & { limit: number; offset: number }) {
        const page = presentPage(await canned.list(db, auth.workspace.id, query), presentCanned);
        return { json: page, summary: [pageLine(page, 'canned responses'), ...page.items.map((c) => `/${c.shortcut}: ${c.title} (${c.id})`)].join('\n') };
      },
    },
    {
      name: 'get_metrics', title: 'Get metrics', kind: 'read', scope: 'read:analytics',
      description: 'Figures for team leads (GET /v1/metrics/{kind}): kind first_response | resolution | sla | backlog | csat; from/to (default the last 7 days; backlog is now and takes no range), team_id, agent_id, priority, group_by (agent, team, priority, day, week).',
      input: { ...rangeQuery, required: ['kind'], properties: { kind: { type: 'string', enum: METRIC_KINDS, description: 'Which figures' }, ...rangeQuery.properties } },
      output: { type: 'object' },
      async run(db, auth, q: RangeQuery & { kind: (typeof METRIC_KINDS)[number] }) {
        const { kind, ...query } = q;
        const ws = auth.workspace.id;
        switch (kind) {
          case 'first_response':
          case 'resolution': {
            const r = await metrics.durations(db, ws, kind, query);
            const o = r.overall;
            return { json: r, summary: `${kind.replace('_', ' ')} ${r.from} – ${r.to}: ${o.count} tickets, median ${o.p50_seconds ?? '—'} s, p90 ${o.p90_seconds ?? '—'} s${r.groups.length ? `; ${r.groups.length} groups by ${r.group_by}` : ''}` };
          }
          case 'sla': {
            const r = await metrics.sla(db, ws, query);
            const targets = r.targets as Record<string, { due: number; breached: number; compliance_percent: number | null }>;
            const t = Object.entries(targets).map(([k, v]) => `${k.replace('_', ' ')} ${v.compliance_percent ?? '—'} % (${v.breached} breached of ${v.due})`);
            return { json: r, summary: `SLA ${r.from} – ${r.to}: ${t.join('; ')}; at risk now ${r.at_risk_now}, breached and open ${r.breached_open_now}` };
          }
          case 'backlog': {
            const { from: _from, to: _to, group_by: _groupBy, ...filters } = query;
            if (_from || _to || _groupBy) {
              throw new AppError('validation_error', 'The backlog is now: it takes no from, to or group_by', {
                details: [_from && 'from', _to && 'to', _groupBy && 'group_by'].filter(Boolean).map((field) => ({ field: field as string, error: 'is not taken by kind backlog' })),
              });
            }
            const r = await metrics.backlog(db, ws, filters);
            return { json: r, summary: `Backlog now: ${r.total} open tickets, ${r.unassigned} unassigned` };
          }
          case 'csat': {
            const r = await metrics.csat(db, ws, query);
            return { json: r, summary: `CSAT ${r.from} – ${r.to}: ${r.count} ratings, average ${r.average ?? '—'}` };
          }
        }
      },
    },
    // ---------------------------------------------------------------- write
    {
      name: 'reply_to_ticket', title: 'Reply to a ticket', kind: 'write', scope: 'write:messages',
      description: 'Reply to the customer of a ticket (POST /v1/tickets/{id}/messages): text, or canned_response_id (rendered for the ticket). Relayed to the customer in Telegram; the reply may move the ticket to waiting_on_customer.',
      input: withIds(postTicketMessageBody, { ticket_id: ticketId }, { omit: ['internal'] }),
      output: messageSchema,
      validate: (input) => requireOneOf(input, ['text', 'canned_response_id']),
      async run(db, auth, { ticket_id, ...body }: { ticket_id: string; text?: string; canned_response_id?: string }) {
        const m = presentMessage(await messages.postToTicket(db, auth.workspace, ticket_id, body, apiActor(auth)));
        return { json: m, summary: `Reply ${m.id} on ticket ${ticket_id}: ${m.status}${m.simulated ? ' (simulated, sandbox)' : ''}` };
      },
    },
    {
      name: 'add_internal_note', title: 'Add an internal note', kind: 'write', scope: 'write:messages',
      description: 'An internal note on a ticket (POST /v1/tickets/{id}/messages with internal: true): visible to agents in the topic, never sent to the customer.',
      input: { ...withIds(postTicketMessageBody, { ticket_id: ticketId }, { omit: ['internal', 'canned_response_id'], required: ['text'] }), description: 'The note\'s text' },
      output: messageSchema,
      async run(db, auth, { ticket_id, text }: { ticket_id: string; text: string }) {
        const m = presentMessage(await messages.postToTicket(db, auth.workspace, ticket_id, { text, internal: true }, apiActor(auth)));
        return { json: m, summary: `Internal note ${m.id} added to ticket ${ticket_id}` };
      },
    },
    {
      name: 'change_ticket_status', title: 'Change a ticket\'s status', kind: 'write', scope: 'write:tickets',
      description: 'Move a ticket through the workflow (POST /v1/tickets/{id}/status); a refused move is invalid_transition. The optional note is posted internally.',
      input: withIds(changeStatusBody, { ticket_id: ticketId }),
      output: ticketSchema,
      async run(db, auth, { ticket_id, status, note }: { ticket_id: string; status: TicketStatus; note?: string }) {
        const t = presentView(await tickets.changeStatus(db, auth.workspace.id, ticket_id, status, note, apiActor(auth)));
        return { json: t, summary: `Ticket #${t.number} is now ${t.status}` };
      },
    },
    {
      name: 'assign_ticket', title: 'Assign a ticket', kind: 'write', scope: 'write:tickets',
      description: 'Assign a ticket (POST /v1/tickets/{id}/assign): agent_id (null unassigns), team_id (that team\'s queue), or strategy (round_robin, least_loaded, skills; no_agent_available when nobody has room); note is posted internally.',
      input: withIds(assignBody, { ticket_id: ticketId }),
      output: ticketSchema,
      validate: ({ ticket_id: _, ...body }) => checkAssignBody(body),
      async run(db, auth, { ticket_id, ...body }) {
        const t = presentView(await assignment.assign(db, auth.workspace.id, ticket_id, body, apiActor(auth)));
        return { json: t, summary: `Ticket #${t.number}: assignee ${t.assignee_id ?? 'none'}, team ${t.team_id ?? 'none'}` };
      },
    },
    {
      name: 'upsert_contact', title: 'Create or update a contact', kind: 'write', scope: 'write:contacts',
      description: 'Create or update a contact (POST /v1/contacts), matched on telegram_user_id, username or email; at least one of those or phone is required; tags are added, custom_fields merged.',
      input: upsertContactBody,
      output: contactSchema,
      async run(db, auth, body: UpsertContactBody) {
        const { contact, created } = await contacts.upsert(db, auth.workspace.id, body, apiActor(auth));
        const c = presentContact(contact);
        return { json: c, summary: `Contact ${c.id} ${created ? 'created' : 'updated'}: ${contactLabel(c)}` };
      },
    },
    {
      name: 'send_message', title: 'Send a message', kind: 'write', scope: 'write:messages',
      description: 'A proactive message to a customer who has written to the bot (POST /v1/messages/send): to is "@username", a Telegram user id or a contact id; at most the workspace\'s daily_send_limit per bot per UTC day.',
      input: sendMessageBody,
      output: sentMessageSchema,
      async run(db, auth, body: SendMessageBody) {
        const { message, eta } = await messages.send(db, auth.workspace, body, apiActor(auth));
        const m = { ...presentMessage(message), eta: eta.toISOString() };
        return { json: m, summary: `Message ${m.id} to ${m.contact_id}: ${m.status}${m.simulated ? ' (simulated, sandbox)' : ''}, expected by ${m.eta}` };
      },
    },
  ];
}
