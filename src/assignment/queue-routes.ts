import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import { ticketSchema } from '../tickets/ticket-schemas.js';
import { presentTicket, type TicketView } from '../tickets/ticket-service.js';
import { queueListSchema, queueParams, queueSchema, queueTicketsQuery, reorderBody } from './queue-schemas.js';
import type { QueueItem, QueueService } from './queue-service.js';

export function presentQueue(q: QueueItem) {
  return {
    team_id: q.teamId, name: q.name, depth: q.depth,
    by_priority: { urgent: q.byPriority.urgent, high: q.byPriority.high, normal: q.byPriority.normal, low: q.byPriority.low },
    oldest_waiting_since: q.oldestWaitingSince?.toISOString() ?? null, paused: q.paused, eligible_agents: q.eligibleAgents,
  };
}

const presentView = (v: TicketView) => presentTicket(v.ticket, v.contact);

export function queueRoutes(queues: QueueService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const teamOf = (params: { team_id: string }) => (params.team_id === 'none' ? null : params.team_id);
  const tag = 'queues';
  const one = { params: queueParams, notFoundLabel: 'Team' } as const;
  const queueResponse = { 200: { description: 'The queue', schema: queueSchema } };
  return [
    defineRoute({
      method: 'get', path: '/v1/queues', tag, auth: 'key', scope: 'read:tickets',
      summary: 'Every team\'s queue (by name), then the queue of tickets without a team (team_id null): depth, by priority, oldest waiting, paused, eligible agents',
      responses: { 200: { description: 'The queues', schema: queueListSchema } },
      async handler(ctx) {
        ctx.body = { items: (await queues.list(ctx.state.db, ws(ctx))).map(presentQueue) };
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/queues/:team_id/tickets', tag, auth: 'key', scope: 'read:tickets', ...one,
      summary: 'A queue\'s tickets in distribution order: manually ranked first (by rank), then priority (urgent first), then oldest first; `none`: tickets without a team',
      query: queueTicketsQuery,
      responses: { 200: { description: 'A page of tickets', schema: pageSchema(ticketSchema) } },
      async handler(ctx, { params, query }) {
        ctx.body = presentPage(await queues.tickets(ctx.state.db, ws(ctx), teamOf(params), query), presentView);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/queues/:team_id/reorder', tag, auth: 'key', scope: 'manage:agents', ...one,
      summary: 'Put a ticket of the queue at a 1-based position (past the end: last); tickets ahead of it get manual ranks. 409 when the ticket is not in this queue',
      body: reorderBody,
      responses: { ...queueResponse, 409: { description: 'conflict: the ticket is not in this queue (assigned, resolved, closed, archived or in another queue); or idempotency_key_reused / idempotency_key_in_progress' } },
      async handler(ctx, { params, body }) {
        ctx.body = presentQueue(await queues.reorder(ctx.state.db, ws(ctx), teamOf(params), body.ticket_id, body.position));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/queues/:team_id/pause', tag, auth: 'key', scope: 'manage:agents', ...one,
      summary: 'Stop auto-assignment from a team\'s queue (manual assignment still works); the no-team queue has none: 409',
      responses: { ...queueResponse, 409: { description: 'conflict: the no-team queue has no auto-assignment; or an idempotency conflict' } },
      async handler(ctx, { params }) {
        ctx.body = presentQueue(await queues.setPaused(ctx.state.db, ws(ctx), teamOf(params), true));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/queues/:team_id/resume', tag, auth: 'key', scope: 'manage:agents', ...one,
      summary: 'Restart auto-assignment from a team\'s queue: its waiting tickets are handed out by the assignment worker; the no-team queue: 409',
      responses: { ...queueResponse, 409: { description: 'conflict: the no-team queue has no auto-assignment; or an idempotency conflict' } },
      async handler(ctx, { params }) {
        ctx.body = presentQueue(await queues.setPaused(ctx.state.db, ws(ctx), teamOf(params), false));
      },
    }),
  ];
}
