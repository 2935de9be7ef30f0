/** Demo data: a sandbox workspace with one all-scopes key. Running it twice changes nothing. */
import type { Knex } from 'knex';
import type { Services } from '../src/container.js';

/** Any 64-bit number of our own: serialises concurrent seeds so only one creates the demo. */
const SEED_LOCK_ID = 7_340_281_902;

export async function seedDemo(db: Knex, services: Services): Promise<{ created: boolean; workspaceId: string; token?: string }> {
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [SEED_LOCK_ID]);
    const existing = await trx('workspaces').where({ name: 'Demo (sandbox)', mode: 'sandbox' }).first();
    if (existing) return { created: false, workspaceId: existing.id };
    const ws = await services.workspaces.create(trx, { name: 'Demo (sandbox)', sandbox: true });
    const { token } = await services.apiKeys.create(trx, { workspaceId: ws.id, name: 'demo', scopes: ['all'] });
    return { created: true, workspaceId: ws.id, token };
  });
}
