/**
 * The one way work runs atomically, for every entry point alike: API requests (the idempotency
 * middleware claims its key in it), Telegram updates, send-queue outcomes, jobs and MCP tools.
 * - On the pool it is BEGIN … COMMIT, or ROLLBACK when `fn` throws.
 * - Inside a transaction it is a savepoint, so a refusal undoes only `fn`'s part (a Telegram
 *   command that fails keeps the rest of its update).
 * - `rollback(value)` undoes everything `fn` wrote and makes `inTransaction` return `value`
 *   (a response already set, a lost lease) instead of throwing.
 * Effects outside the database (Telegram calls, webhooks) are rows queued through `tx`, so they
 * exist exactly when the change committed.
 */
import type { Db, Knex } from './knex.js';

class RolledBack extends Error {
  constructor(readonly value: unknown) {
    super('rolled back');
  }
}

/** Ends the surrounding inTransaction: its writes are undone and it returns `value`. */
export function rollback(value?: unknown): never {
  throw new RolledBack(value);
}

export async function inTransaction<T>(db: Db, fn: (tx: Knex.Transaction) => Promise<T>): Promise<T> {
  try {
    return await db.transaction(fn);
  } catch (err) {
    if (err instanceof RolledBack) return err.value as T;
    throw err;
  }
}
