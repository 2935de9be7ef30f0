import { apiActor } from '../http/actor.js';
import { idParams } from '../http/common-schemas.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { listTicketMessagesQuery, messageSchema, postTicketMessageBody, sendMessageBody, sentMessageSchema } from './message-schemas.js';
import type { MessageService } from './message-service.js';
import { presentMessage } from './message-store.js';

/** /v1/messages and a ticket's thread (/v1/tickets/{id}/messages). */
export function messageRoutes(messages: MessageService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  return [
    defineRoute({
      method: 'post', path: '/v1/messages/send', tag: 'messages', auth: 'key', scope: 'write:messages',
      summary: 'Send a message to a customer who has written to the bot (at most daily_send_limit per bot per UTC day)',
      body: sendMessageBody,
      responses: { 200: { description: 'The queued message (sent and simulated in a sandbox) and when it should go out', schema: sentMessageSchema } },
      async handler(ctx, { body }) {
        const { message, eta } = await messages.send(ctx.state.db, ctx.state.auth.workspace, body, apiActor(ctx));
        ctx.set('Location', `/v1/messages/${message.id}`);
        ctx.body = { ...presentMessage(message), eta: eta.toISOString() };
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/messages/:id', tag: 'messages', auth: 'key', scope: 'read:messages',
      summary: 'One message, with its delivery status and failure reason',
      params: idParams('msg'), notFoundLabel: 'Message',
      responses: { 200: { description: 'The message', schema: messageSchema } },
      async handler(ctx, { params }) {
        ctx.body = presentMessage(await messages.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/tickets/:id/messages', tag: 'tickets', auth: 'key', scope: 'read:messages', params: idParams('tkt'), notFoundLabel: 'Ticket',
      summary: 'The ticket\'s thread, oldest first (internal notes included)',
      query: listTicketMessagesQuery,
      responses: { 200: { description: 'A page of messages', schema: pageSchema(messageSchema) } },
      async handler(ctx, { params, query }) {
        ctx.body = presentPage(await messages.listForTicket(ctx.state.db, ws(ctx), params.id, query), presentMessage);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/tickets/:id/messages', tag: 'tickets', auth: 'key', scope: 'write:messages', params: idParams('tkt'), notFoundLabel: 'Ticket',
      summary: 'Reply to the customer (queued for Telegram) or, with internal: true, add a note',
      body: postTicketMessageBody,
      responses: { 201: { description: 'The message', schema: messageSchema } },
      async handler(ctx, { params, body }) {
        const m = await messages.postToTicket(ctx.state.db, ctx.state.auth.workspace, params.id, body, apiActor(ctx));
        ctx.status = 201;
        ctx.set('Location', `/v1/messages/${m.id}`);
        ctx.body = presentMessage(m);
      },
    }),
  ];
}
