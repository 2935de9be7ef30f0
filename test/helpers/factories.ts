import type { Services } from '../../src/container.js';
import type { Knex } from '../../src/db/knex.js';

let n = 0;

/** A workspace of its own (tenant-isolation tests need two). */
export async function makeWorkspace(knex: Knex, services: Services, opts: { sandbox?: boolean; name?: string } = {}) {
  return services.workspaces.create(knex, { name: opts.name ?? `Workspace ${++n}`, sandbox: !!opts.sandbox });
}

/** An API key and its token; all scopes unless told otherwise. */
export async function makeKey(
  knex: Knex,
  services: Services,
  opts: { workspaceId?: string; scopes?: string[]; rateLimitPerMinute?: number; expiresAt?: Date; name?: string } = {},
) {
  const created = await services.apiKeys.create(knex, {
    workspaceId: opts.workspaceId ?? 'ws_default',
    name: opts.name ?? `key ${++n}`,
    scopes: opts.scopes ?? ['all'],
    rateLimitPerMinute: opts.rateLimitPerMinute ?? null,
    expiresAt: opts.expiresAt ?? null,
  });
  return { id: created.key.id, token: created.token, auth: `Bearer ${created.token}` };
}
