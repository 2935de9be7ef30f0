import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import type { Clock } from '../lib/clock.js';
import { apiKeySchema, apiKeyWithTokenSchema, createApiKeyBody, listApiKeysQuery, meSchema, rotateApiKeyBody } from './api-key-schemas.js';
import { presentApiKey, type ApiKeyService, type CreatedKey } from './api-key-service.js';

/** Tokens are shown once: an Idempotency-Key replay answers token: null (the store never keeps it). */
const hideToken = (body: Record<string, unknown>) => ({ ...body, token: null });

const withToken = (c: CreatedKey, now: Date) => ({ ...presentApiKey(c.key, c.mode, now), token: c.token });

export function apiKeyRoutes(keys: ApiKeyService, clock: Clock): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const mode = (ctx: AppContext) => ctx.state.auth.mode;
  return [
    defineRoute({
      method: 'get', path: '/v1/me', tag: 'api-keys', auth: 'key',
      summary: 'The calling key: scopes, workspace, mode and rate limit',
      responses: { 200: { description: 'The key', schema: meSchema } },
      handler(ctx) {
        const a = ctx.state.auth;
        ctx.body = {
          id: a.keyId,
          name: a.keyName,
          scopes: a.scopes,
          mode: a.mode,
          expires_at: a.expiresAt?.toISOString() ?? null,
          workspace: a.workspace,
          rate_limit: { limit: a.rateLimitPerMinute, window_seconds: 60 },
        };
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/api-keys', tag: 'api-keys', auth: 'key', scope: 'manage:keys',
      summary: 'List the workspace\'s API keys (tokens are never shown again)',
      query: listApiKeysQuery,
      responses: { 200: { description: 'A page of keys', schema: pageSchema(apiKeySchema) } },
      async handler(ctx, { query }) {
        const now = clock.now();
        ctx.body = presentPage(await keys.list(ctx.state.db, ws(ctx), query, query.include_revoked), (k) => presentApiKey(k, mode(ctx), now));
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/api-keys', tag: 'api-keys', auth: 'key', scope: 'manage:keys',
      summary: 'Create an API key; the token is in this response only',
      body: createApiKeyBody,
      responses: { 201: { description: 'The new key with its token', schema: apiKeyWithTokenSchema } },
      replayBody: hideToken,
      async handler(ctx, { body: b }) {
        const created = await keys.create(ctx.state.db, {
          workspaceId: ws(ctx),
          name: b.name,
          scopes: [...b.scopes],
          expiresAt: b.expires_at ? new Date(b.expires_at) : null,
          rateLimitPerMinute: b.rate_limit_per_minute ?? null,
          grantorKeyId: ctx.state.auth.keyId,
        });
        ctx.status = 201;
        ctx.set('Location', `/v1/api-keys/${created.key.id}`);
        ctx.body = withToken(created, clock.now());
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/api-keys/:id', tag: 'api-keys', auth: 'key', scope: 'manage:keys',
      summary: 'One API key',
      params: idParams('key'), notFoundLabel: 'API key',
      responses: { 200: { description: 'The key', schema: apiKeySchema } },
      async handler(ctx, { params }) {
        ctx.body = presentApiKey(await keys.get(ctx.state.db, ws(ctx), params.id), mode(ctx), clock.now());
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/api-keys/:id', tag: 'api-keys', auth: 'key', scope: 'manage:keys',
      summary: 'Revoke an API key at once',
      params: idParams('key'), notFoundLabel: 'API key',
      responses: { 200: { description: 'The revoked key', schema: apiKeySchema } },
      async handler(ctx, { params }) {
        ctx.body = presentApiKey(await keys.revoke(ctx.state.db, ws(ctx), params.id), mode(ctx), clock.now());
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/api-keys/:id/rotate', tag: 'api-keys', auth: 'key', scope: 'manage:keys',
      summary: 'Issue a replacement key; the old one keeps working for the overlap window (24 h by default)',
      params: idParams('key'), notFoundLabel: 'API key',
      body: rotateApiKeyBody,
      responses: { 201: { description: 'The replacement key with its token', schema: apiKeyWithTokenSchema } },
      replayBody: hideToken,
      async handler(ctx, { params, body: b }) {
        const created = await keys.rotate(ctx.state.db, ws(ctx), params.id, {
          overlapHours: b.overlap_hours,
          expiresAt: b.expires_at ? new Date(b.expires_at) : null,
          grantorKeyId: ctx.state.auth.keyId,
        });
        ctx.status = 201;
        ctx.set('Location', `/v1/api-keys/${created.key.id}`);
        ctx.body = withToken(created, clock.now());
      },
    }),
  ];
}
