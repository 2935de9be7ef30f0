import { apiActor } from '../http/actor.js';
import { idParams } from '../http/common-schemas.js';
import { pageSchema, paginationQueryProperties, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import {
  cannedResponseSchema, cannedVersionSchema, createCannedBody, listCannedQuery, patchCannedBody, renderCannedBody, renderedSchema,
  type CannedResponseJson, type CannedVersionJson,
} from './canned-schemas.js';
import type { CannedService } from './canned-service.js';
import type { CannedResponse, CannedVersion } from './canned-store.js';

export function presentCanned(c: CannedResponse): CannedResponseJson {
  return {
    id: c.id,
    shortcut: c.shortcut,
    title: c.title,
    body: c.body,
    category: c.category,
    team_id: c.teamId,
    version: c.version,
    usage_count: c.usageCount,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

const presentVersion = (v: CannedVersion): CannedVersionJson => ({
  version: v.version, title: v.title, body: v.body, created_at: v.createdAt.toISOString(), actor: v.actor,
});

const versionsQuery = { type: 'object', additionalProperties: false, properties: paginationQueryProperties } as const;

/** Canned responses (SPEC §4.5): written with manage:settings, read and rendered with read:tickets. */
export function cannedRoutes(canned: CannedService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const tag = 'canned responses';
  const read = 'read:tickets' as const;
  const manage = 'manage:settings' as const;
  const one = { params: idParams('cr'), notFoundLabel: 'Canned response' } as const;
  const written = { 200: { description: 'The canned response', schema: cannedResponseSchema } };
  return [
    defineRoute({
      method: 'get', path: '/v1/canned-responses', tag, auth: 'key', scope: read,
      summary: 'List canned responses by shortcut; filter by team_id (none: workspace-wide), category, q (shortcut, title, body)',
      query: listCannedQuery,
      responses: { 200: { description: 'A page of canned responses', schema: pageSchema(cannedResponseSchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await canned.list(ctx.state.db, ws(ctx), query), presentCanned);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/canned-responses', tag, auth: 'key', scope: manage,
      summary: 'Create a canned response (version 1); unknown variables are refused, naming them',
      body: createCannedBody,
      responses: {
        201: { description: 'The canned response', schema: cannedResponseSchema },
        404: { description: 'team_id is not a team of the workspace' },
        409: { description: 'The shortcut is taken' },
      },
      async handler(ctx, { body }) {
        const c = await canned.create(ctx.state.db, ws(ctx), body, apiActor(ctx));
        ctx.status = 201;
        ctx.set('Location', `/v1/canned-responses/${c.id}`);
        ctx.body = presentCanned(c);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/canned-responses/:id', tag, auth: 'key', scope: read, ...one,
      summary: 'One canned response',
      responses: written,
      async handler(ctx, { params }) {
        ctx.body = presentCanned(await canned.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/canned-responses/:id', tag, auth: 'key', scope: manage, ...one,
      summary: 'Change a canned response; a new title or body makes a new version',
      body: patchCannedBody,
      responses: { ...written, 409: { description: 'The shortcut is taken' } },
      async handler(ctx, { params, body }) {
        ctx.body = presentCanned(await canned.update(ctx.state.db, ws(ctx), params.id, body, apiActor(ctx)));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/canned-responses/:id', tag, auth: 'key', scope: manage, ...one,
      summary: 'Archive a canned response: not found afterwards, its versions kept, its shortcut free again',
      responses: { 204: { description: 'Archived' } },
      async handler(ctx, { params }) {
        await canned.archive(ctx.state.db, ws(ctx), params.id);
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/canned-responses/:id/versions', tag, auth: 'key', scope: read, ...one,
      summary: 'Every version of the title and body, newest first, with who made it',
      query: versionsQuery,
      responses: { 200: { description: 'A page of versions', schema: pageSchema(cannedVersionSchema) } },
      async handler(ctx, { params, query }) {
        ctx.body = presentPage(await canned.versions(ctx.state.db, ws(ctx), params.id, query), presentVersion);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/canned-responses/:id/render', tag, auth: 'key', scope: read, ...one,
      summary: 'The body rendered for a ticket (and agent_id, default the assignee); empty variables without a fallback are listed',
      body: renderCannedBody,
      responses: { 200: { description: 'The text', schema: renderedSchema }, 404: { description: 'The canned response, ticket or agent is not in the workspace' } },
      async handler(ctx, { params, body }) {
        const r = await canned.render(ctx.state.db, ws(ctx), params.id, { ticketId: body.ticket_id, agentId: body.agent_id });
        ctx.body = { text: r.text, missing_variables: r.missing };
      },
    }),
  ];
}
