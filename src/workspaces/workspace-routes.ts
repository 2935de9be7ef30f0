import { defineRoute, type RouteDef } from '../http/route.js';
import { patchWorkspaceBody, workspaceSchema } from './workspace-schemas.js';
import { presentWorkspace, type WorkspaceService } from './workspace-service.js';

export function workspaceRoutes(workspaces: WorkspaceService): RouteDef[] {
  return [
    defineRoute({
      method: 'get', path: '/v1/workspace', tag: 'workspace', auth: 'key',
      summary: 'The workspace of the calling key and its settings',
      responses: { 200: { description: 'The workspace', schema: workspaceSchema } },
      async handler(ctx) {
        ctx.body = presentWorkspace(await workspaces.get(ctx.state.db, ctx.state.auth.workspace.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/workspace', tag: 'workspace', auth: 'key', scope: 'manage:settings',
      summary: 'Change workspace settings',
      body: patchWorkspaceBody,
      responses: { 200: { description: 'The updated workspace', schema: workspaceSchema } },
      async handler(ctx, { body }) {
        ctx.body = presentWorkspace(await workspaces.update(ctx.state.db, ctx.state.auth.workspace.id, body));
      },
    }),
  ];
}
