/** Demo data: a sandbox workspace with one all-scopes key. Running it twice changes nothing. */
import type { Knex } from 'knex';
import type { Services } from '../src/container.js';

export async function seedDemo(db: Knex, services: Services): Promise<{ created: boolean; workspaceId: string; token?: string }> {
  const existing = await db('workspaces').where({ name: 'Demo (sandbox)', mode: 'sandbox' }).first();
  if (existing) return { created: false, workspaceId: existing.id };
  return db.transaction(async (trx) => {
    const ws = await services.workspaces.create(trx, { name: 'Demo (sandbox)', sandbox: true });
    const { token } = await services.apiKeys.create(trx, { workspaceId: ws.id, name: 'demo', scopes: ['all'] });
    return { created: true, workspaceId: ws.id, token };
  });
}
