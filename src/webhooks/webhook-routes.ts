import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import type { Clock } from '../lib/clock.js';
import {
  createWebhookBody, deliverySchema, listDeliveriesQuery, listWebhooksQuery, patchWebhookBody, rotateSecretBody,
  webhookSchema, webhookWithSecretSchema,
} from './webhook-schemas.js';
import type { WebhookService, WithSecret } from './webhook-service.js';
import { presentDelivery, presentEndpoint } from './webhook-store.js';

/** Secrets are shown once: an Idempotency-Key replay answers secret: null (the store never keeps it). */
const hideSecret = (body: Record<string, unknown>) => ({ ...body, secret: null });

export function webhookRoutes(webhooks: WebhookService, clock: Clock): RouteDef[] {
  const tag = 'webhooks';
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const endpointId = { params: idParams('whk'), notFoundLabel: 'Webhook endpoint' } as const;
  const deliveryId = { params: idParams('dlv'), notFoundLabel: 'Webhook delivery' } as const;
  const withSecret = (w: WithSecret) => ({ ...presentEndpoint(w.endpoint, clock.now()), secret: w.secret });
  return [
    defineRoute({
      method: 'get', path: '/v1/webhooks', tag, auth: 'key', scope: 'manage:webhooks',
      summary: 'List webhook endpoints (secrets are never shown again)',
      query: listWebhooksQuery,
      responses: { 200: { description: 'A page of endpoints', schema: pageSchema(webhookSchema) } },
      async handler(ctx, { query }) {
        const now = clock.now();
        ctx.body = presentPage(await webhooks.list(ctx.state.db, ws(ctx), query), (e) => presentEndpoint(e, now));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/webhooks', tag, auth: 'key', scope: 'manage:webhooks',
      summary: 'Register an endpoint; its signing secret (given or generated) is in this response only',
      body: createWebhookBody,
      responses: { 201: { description: 'The endpoint with its secret', schema: webhookWithSecretSchema } },
      replayBody: hideSecret,
      async handler(ctx, { body }) {
        const created = await webhooks.create(ctx.state.db, ws(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/v1/webhooks/${created.endpoint.id}`);
        ctx.body = withSecret(created);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/webhooks/:id', tag, auth: 'key', scope: 'manage:webhooks', ...endpointId,
      summary: 'One webhook endpoint',
      responses: { 200: { description: 'The endpoint', schema: webhookSchema } },
      async handler(ctx, { params }) {
        ctx.body = presentEndpoint(await webhooks.get(ctx.state.db, ws(ctx), params.id), clock.now());
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/webhooks/:id', tag, auth: 'key', scope: 'manage:webhooks', ...endpointId,
      summary: 'Change url, events, description or enabled (enabling resumes held deliveries)',
      body: patchWebhookBody,
      // A new secret overlaps the old one for a while: only rotation does that right.
      movedFields: { secret: 'POST /v1/webhooks/{id}/rotate-secret' },
      responses: { 200: { description: 'The endpoint', schema: webhookSchema } },
      async handler(ctx, { params, body }) {
        const updated = await webhooks.update(ctx.state.db, ws(ctx), params.id, body);
        ctx.body = presentEndpoint(updated, clock.now());
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/webhooks/:id', tag, auth: 'key', scope: 'manage:webhooks', ...endpointId,
      summary: 'Delete an endpoint and its delivery log',
      responses: { 204: { description: 'Deleted' } },
      async handler(ctx, { params }) {
        await webhooks.remove(ctx.state.db, ws(ctx), params.id);
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/webhooks/:id/rotate-secret', tag, auth: 'key', scope: 'manage:webhooks', ...endpointId,
      summary: 'Replace the signing secret (given or generated); the old one keeps signing alongside for 24 h',
      body: rotateSecretBody,
      responses: { 200: { description: 'The endpoint with its new secret', schema: webhookWithSecretSchema } },
      replayBody: hideSecret,
      async handler(ctx, { params, body }) {
        ctx.body = withSecret(await webhooks.rotateSecret(ctx.state.db, ws(ctx), params.id, body));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/webhooks/:id/test', tag, auth: 'key', scope: 'manage:webhooks', ...endpointId,
      summary: 'Send a ping event to this endpoint; follow it with GET /v1/webhook-deliveries/{id}',
      responses: { 202: { description: 'The queued ping delivery', schema: deliverySchema } },
      async handler(ctx, { params }) {
        const delivery = await webhooks.sendTest(ctx.state.db, ws(ctx), params.id);
        ctx.status = 202;
        ctx.set('Location', `/v1/webhook-deliveries/${delivery.id}`);
        ctx.body = delivery;
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/webhooks/:id/deliveries', tag, auth: 'key', scope: 'manage:webhooks', ...endpointId,
      summary: 'The endpoint\'s delivery log, newest first, with every attempt',
      query: listDeliveriesQuery,
      responses: { 200: { description: 'A page of deliveries', schema: pageSchema(deliverySchema) } },
      async handler(ctx, { params, query }) {
        ctx.body = presentPage(await webhooks.listDeliveries(ctx.state.db, ws(ctx), params.id, query), presentDelivery);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/webhook-deliveries/:id', tag, auth: 'key', scope: 'manage:webhooks', ...deliveryId,
      summary: 'One delivery with its attempts',
      responses: { 200: { description: 'The delivery', schema: deliverySchema } },
      async handler(ctx, { params }) {
        ctx.body = await webhooks.getDelivery(ctx.state.db, ws(ctx), params.id);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/webhook-deliveries/:id/replay', tag, auth: 'key', scope: 'manage:webhooks', ...deliveryId,
      summary: 'Send a delivery again now, with the same webhook-id; its retry schedule starts over',
      responses: { 202: { description: 'The delivery, pending again', schema: deliverySchema } },
      async handler(ctx, { params }) {
        ctx.status = 202;
        ctx.body = await webhooks.replay(ctx.state.db, ws(ctx), params.id);
      },
    }),
  ];
}
