import { idParams } from '../http/common-schemas.js';
import { pageSchema } from '../http/pagination.js';
import type { AppContext, RouteDef } from '../http/route.js';
import {
  accountSchema, createAccountBody, listAccountsQuery, patchAccountBody, type CreateAccountBody, type PatchAccountBody,
} from './account-schemas.js';
import type { AccountService, WorkspaceRef } from './account-service.js';
import { presentAccount } from './account-store.js';

/** The bots of the workspace (SPEC §4.2): tokens go in, never come out. */
export function accountRoutes(accounts: AccountService): RouteDef[] {
  const tag = 'accounts';
  const scope = 'manage:settings' as const;
  const ws = (ctx: AppContext): WorkspaceRef => ({ id: ctx.state.auth.workspace.id, mode: ctx.state.auth.workspace.mode });
  const id = (ctx: AppContext) => ctx.state.input.params.id as string;
  const accountId = { params: idParams('acc'), notFoundLabel: 'Account' } as const;
  return [
    {
      method: 'get', path: '/v1/accounts', tag, auth: 'key', scope,
      summary: 'List the workspace\'s bots, newest first (tokens are never shown)',
      query: listAccountsQuery,
      responses: { 200: { description: 'A page of accounts', schema: pageSchema(accountSchema) } },
      async handler(ctx) {
        ctx.body = await accounts.list(ctx.state.db, ws(ctx).id, ctx.state.input.query);
      },
    },
    {
      method: 'post', path: '/v1/accounts', tag, auth: 'key', scope,
      summary: 'Connect a bot by its token (checked with Telegram\'s getMe; sandbox workspaces never call Telegram)',
      body: createAccountBody,
      responses: {
        201: { description: 'The account (without its token)', schema: accountSchema },
        409: { description: 'This bot is already connected' },
        503: { description: 'telegram_unavailable: Telegram could not be reached to check the token (see Retry-After)' },
      },
      async handler(ctx) {
        const account = await accounts.create(ctx.state.db, ws(ctx), ctx.state.input.body as CreateAccountBody);
        ctx.status = 201;
        ctx.set('Location', `/v1/accounts/${account.id}`);
        ctx.body = presentAccount(account);
      },
    },
    {
      method: 'get', path: '/v1/accounts/:id', tag, auth: 'key', scope, ...accountId,
      summary: 'One bot of the workspace',
      responses: { 200: { description: 'The account', schema: accountSchema } },
      async handler(ctx) {
        ctx.body = presentAccount(await accounts.get(ctx.state.db, ws(ctx).id, id(ctx)));
      },
    },
    {
      method: 'patch', path: '/v1/accounts/:id', tag, auth: 'key', scope, ...accountId,
      summary: 'Rename, give a new token of the same bot, set the support group, or make it the default',
      body: patchAccountBody,
      responses: {
        200: { description: 'The account', schema: accountSchema },
        503: { description: 'telegram_unavailable: Telegram could not be reached to check the token (see Retry-After)' },
      },
      async handler(ctx) {
        ctx.body = presentAccount(await accounts.update(ctx.state.db, ws(ctx), id(ctx), ctx.state.input.body as PatchAccountBody));
      },
    },
    {
      method: 'delete', path: '/v1/accounts/:id', tag, auth: 'key', scope, ...accountId,
      summary: 'Remove a bot: its queued Telegram messages are cancelled; tickets keep pointing at it',
      responses: { 204: { description: 'Removed' } },
      async handler(ctx) {
        await accounts.remove(ctx.state.db, ws(ctx).id, id(ctx));
        ctx.status = 204;
      },
    },
  ];
}
