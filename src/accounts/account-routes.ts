import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import { accountSchema, createAccountBody, listAccountsQuery, patchAccountBody } from './account-schemas.js';
import type { AccountService, WorkspaceRef } from './account-service.js';
import { presentAccount } from './account-store.js';

/** The bots of the workspace (SPEC §4.2): tokens go in, never come out. */
export function accountRoutes(accounts: AccountService): RouteDef[] {
  const tag = 'accounts';
  const scope = 'manage:settings' as const;
  const ws = (ctx: AppContext): WorkspaceRef => ({ id: ctx.state.auth.workspace.id, mode: ctx.state.auth.workspace.mode });
  const accountId = { params: idParams('acc'), notFoundLabel: 'Account' } as const;
  return [
    defineRoute({
      method: 'get', path: '/v1/accounts', tag, auth: 'key', scope,
      summary: 'List the workspace\'s bots, newest first (tokens are never shown)',
      query: listAccountsQuery,
      responses: { 200: { description: 'A page of accounts', schema: pageSchema(accountSchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await accounts.list(ctx.state.db, ws(ctx).id, query), presentAccount);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/accounts', tag, auth: 'key', scope,
      summary: 'Connect a bot by its token (checked with Telegram\'s getMe; sandbox workspaces never call Telegram)',
      body: createAccountBody,
      responses: {
        201: { description: 'The account (without its token)', schema: accountSchema },
        409: { description: 'This bot is already connected' },
        503: { description: 'telegram_unavailable: Telegram could not be reached to check the token (see Retry-After)' },
      },
      async handler(ctx, { body }) {
        const account = await accounts.create(ctx.state.db, ws(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/v1/accounts/${account.id}`);
        ctx.body = presentAccount(account);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/accounts/:id', tag, auth: 'key', scope, ...accountId,
      summary: 'One bot of the workspace',
      responses: { 200: { description: 'The account', schema: accountSchema } },
      async handler(ctx, { params }) {
        ctx.body = presentAccount(await accounts.get(ctx.state.db, ws(ctx).id, params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/accounts/:id', tag, auth: 'key', scope, ...accountId,
      summary: 'Rename, give a new token of the same bot, set the support group, or make it the default',
      body: patchAccountBody,
      responses: {
        200: { description: 'The account', schema: accountSchema },
        503: { description: 'telegram_unavailable: Telegram could not be reached to check the token (see Retry-After)' },
      },
      async handler(ctx, { params, body }) {
        ctx.body = presentAccount(await accounts.update(ctx.state.db, ws(ctx), params.id, body));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/accounts/:id', tag, auth: 'key', scope, ...accountId,
      summary: 'Remove a bot: its queued Telegram messages are cancelled; tickets keep pointing at it',
      responses: { 204: { description: 'Removed' } },
      async handler(ctx, { params }) {
        await accounts.remove(ctx.state.db, ws(ctx).id, params.id);
        ctx.status = 204;
      },
    }),
  ];
}
