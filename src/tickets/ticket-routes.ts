import { presentEvent, timelineEventSchema } from '../events/event-schemas.js';
import { apiActor } from '../http/actor.js';
import { idParams } from '../http/common-schemas.js';
import { pageBody, pageSchema, paginationQueryProperties, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import { requireOneOf } from '../kernel/validation.js';
import { changeStatusBody, createTicketBody, listTicketsQuery, patchTicketBody, ticketSchema } from './ticket-schemas.js';
import { presentTicket, type TicketService, type TicketView, type Workspace } from './ticket-service.js';

const present = (v: TicketView) => presentTicket(v.ticket, v.contact);

export function ticketRoutes(tickets: TicketService): RouteDef[] {
  const workspace = (ctx: AppContext): Workspace => ctx.state.auth.workspace;
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const tag = 'tickets';
  const one = { params: idParams('tkt'), notFoundLabel: 'Ticket' } as const;
  const ticketResponse = { 200: { description: 'The ticket', schema: ticketSchema } };
  return [
    defineRoute({
      method: 'post', path: '/v1/tickets', tag, auth: 'key', scope: 'write:tickets',
      summary: 'Open a ticket for a contact (contact_id, or contact fields: matched or created); its forum topic is created by the bot',
      body: createTicketBody,
      validate: ({ body }) => requireOneOf(body, ['contact_id', 'contact']),
      responses: { 201: { description: 'The new ticket', schema: ticketSchema } },
      async handler(ctx, { body }) {
        const view = await tickets.create(ctx.state.db, workspace(ctx), body, apiActor(ctx));
        ctx.status = 201;
        ctx.set('Location', `/v1/tickets/${view.ticket.id}`);
        ctx.body = present(view);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/tickets', tag, auth: 'key', scope: 'read:tickets',
      summary: 'List tickets (archived ones only with archived=true), filtered and sorted',
      query: listTicketsQuery,
      responses: { 200: { description: 'A page of tickets', schema: pageSchema(ticketSchema) } },
      async handler(ctx, { query }) {
        // Items built by PostgreSQL (ticket-list.ts), spliced in as they come: no parse, no stringify.
        const page = await tickets.listJson(ctx.state.db, ws(ctx), query);
        ctx.type = 'application/json';
        ctx.body = pageBody(page);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/tickets/:id', tag, auth: 'key', scope: 'read:tickets', ...one,
      summary: 'One ticket',
      responses: ticketResponse,
      async handler(ctx, { params }) {
        ctx.body = present(await tickets.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/tickets/:id', tag, auth: 'key', scope: 'write:tickets', ...one,
      summary: 'Change subject, description, priority, category, tags, custom fields or team; archived: false restores',
      body: patchTicketBody,
      // Status and assignee have their own endpoints (workflow checks, capacity, transfer notes).
      movedFields: { status: 'POST /v1/tickets/{id}/status', assignee_id: 'POST /v1/tickets/{id}/assign', agent_id: 'POST /v1/tickets/{id}/assign' },
      responses: ticketResponse,
      async handler(ctx, { params, body }) {
        ctx.body = present(await tickets.update(ctx.state.db, ws(ctx), params.id, body, apiActor(ctx)));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/tickets/:id', tag, auth: 'key', scope: 'write:tickets', ...one,
      summary: 'Archive a ticket (hidden from lists unless archived=true)',
      responses: { 200: { description: 'The archived ticket', schema: ticketSchema } },
      async handler(ctx, { params }) {
        ctx.body = present(await tickets.archive(ctx.state.db, ws(ctx), params.id, apiActor(ctx)));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/tickets/:id/status', tag, auth: 'key', scope: 'write:tickets', ...one,
      summary: 'Move a ticket through the workflow (refused moves: 409 invalid_transition); a note is posted internally',
      body: changeStatusBody,
      responses: ticketResponse,
      async handler(ctx, { params, body }) {
        ctx.body = present(await tickets.changeStatus(ctx.state.db, ws(ctx), params.id, body.status, body.note, apiActor(ctx)));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/tickets/:id/events', tag, auth: 'key', scope: 'read:tickets', ...one,
      summary: 'The ticket\'s timeline: who changed what, from what, to what, when; oldest first',
      query: { type: 'object', additionalProperties: false, properties: paginationQueryProperties },
      responses: { 200: { description: 'A page of events', schema: pageSchema(timelineEventSchema) } },
      async handler(ctx, { params, query }) {
        ctx.body = presentPage(await tickets.timeline(ctx.state.db, ws(ctx), params.id, query), presentEvent);
      },
    }),
  ];
}
