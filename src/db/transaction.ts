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
import { createRequire } from 'node:module';
import type { Db, Knex } from './knex.js';
import { queueForCommit } from './pipelined-pg.js';

/** node-pg's conversion of a bound value to what goes on the wire. */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue(v: unknown): unknown };

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

/**
 * Runs `sql` (`?` placeholders) as the prepared statement `name` together with `tx`'s COMMIT:
 * one round trip for both, where a transaction holds hot locks until it ends. For the last
 * write of a transaction, whose answer nobody reads: if it fails, the transaction rolls back
 * and inTransaction throws its error. In a savepoint (or on another client) it runs at once.
 */
export async function sendWithCommit(tx: Knex.Transaction, name: string, sql: string, bindings: readonly Knex.RawBinding[]): Promise<void> {
  if (tx.isCompleted()) throw new Error(`sendWithCommit(${name}): the transaction has already ended`);
  const native = tx.raw(sql, bindings as Knex.RawBinding[]).toSQL().toNative();
  // As node-pg will send them (it throws here, not after COMMIT, for a value it cannot send).
  const values = native.bindings.map((v) => prepareValue(v));
  if (queueForCommit(tx, { name, text: native.sql, values })) return;
  await tx.raw(sql, bindings as Knex.RawBinding[]).options({ name });
}

/** PostgreSQL's refusal of a statement after an earlier one of the transaction failed. */
const IN_FAILED_TRANSACTION = '25P02';

/**
 * Awaits independent steps of one transaction started together: their queries share the
 * connection's pipeline (one round trip where they would take one each). Every step is
 * settled before this returns or throws, so none is still running when the transaction ends.
 * The error thrown is the first step's in order, skipping PostgreSQL's "transaction is aborted"
 * refusals, which only echo another step's failure.
 */
export async function together<T extends readonly unknown[]>(...steps: { [K in keyof T]: T[K] | Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(steps);
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (failures.length > 0) {
    throw failures.find((e) => (e as { code?: unknown })?.code !== IN_FAILED_TRANSACTION) ?? failures[0];
  }
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
