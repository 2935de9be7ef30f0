import { apiActor } from '../http/actor.js';
import { idParams } from '../http/common-schemas.js';
import { defineRoute, type RouteDef } from '../http/route.js';
import { AppError } from '../kernel/errors.js';
import { ticketSchema } from '../tickets/ticket-schemas.js';
import { presentTicket } from '../tickets/ticket-service.js';
import { assignBody } from './assignment-schemas.js';
import type { AssignmentService, AssignRequest } from './assignment-service.js';

/** agent_id, team_id or strategy; team_id may come with either of the others, never all three (the API and MCP check it alike). */
export function checkAssignBody(body: AssignRequest): void {
  if (body.strategy !== undefined && body.agent_id !== undefined) {
    throw new AppError('validation_error', 'Give agent_id or strategy, not both', { details: [{ field: 'strategy', error: 'cannot be combined with agent_id' }] });
  }
  if (body.strategy === undefined && body.agent_id === undefined && body.team_id === undefined) {
    throw new AppError('validation_error', 'The body needs agent_id, team_id or strategy', {
      details: ['agent_id', 'team_id', 'strategy'].map((field) => ({ field, error: 'one of agent_id, team_id, strategy is required' })),
    });
  }
}

export function assignmentRoutes(assignment: AssignmentService): RouteDef[] {
  return [
    defineRoute({
      method: 'post', path: '/v1/tickets/:id/assign', tag: 'tickets', auth: 'key', scope: 'write:tickets',
      params: idParams('tkt'), notFoundLabel: 'Ticket',
      summary: 'Assign to an agent (capacity checked), move to a team\'s queue (auto-assigned when the team says so), or pick by strategy (409 no_agent_available); a transfer note is posted internally',
      body: assignBody,
      validate: ({ body }) => checkAssignBody(body),
      responses: { 200: { description: 'The ticket', schema: ticketSchema } },
      async handler(ctx, { params, body }) {
        const view = await assignment.assign(ctx.state.db, ctx.state.auth.workspace.id, params.id, body, apiActor(ctx));
        ctx.body = presentTicket(view.ticket, view.contact);
      },
    }),
  ];
}
