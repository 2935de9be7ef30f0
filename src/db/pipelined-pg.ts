/**
 * knex's PostgreSQL client, with two round trips fewer per transaction. Its connections run in
 * node-pg's pipeline mode: a query goes out while earlier ones are still being answered (each
 * with its own Sync, so one failing does not cancel the next, except that inside a transaction
 * PostgreSQL refuses everything after a failure until the transaction ends). Code that awaits
 * each query sees no difference; what uses the pipeline: `together` (src/db/transaction.ts)
 * starting a transaction's independent statements at once, and the transactions here:
 * - BEGIN is written at once and not waited for, so the transaction's first statement follows it
 *   on the wire: one round trip for both. PostgreSQL refuses BEGIN only inside a failed
 *   transaction, where it refuses what follows too; a connection whose BEGIN failed is closed at
 *   once all the same, and COMMIT fails the transaction.
 * - A statement given to sendWithCommit (src/db/transaction.ts) goes out right before COMMIT,
 *   one round trip for both. If PostgreSQL refuses it, it answers the COMMIT with a rollback, and
 *   the transaction fails with the statement's error: nothing is kept, as if it had been awaited.
 *   sendWithCommit checks its values first, so node-pg has nothing left to refuse before sending;
 *   were it to, the transaction would have committed without the statement, and fails with an
 *   error saying so.
 * Saving round trips matters most where a transaction holds a hot lock (a workspace's ticket
 * numbering is locked from the numbered insert to COMMIT).
 *
 * knex 3.x internals used (pinned in package-lock.json; test/integration/pipelined-pg.test.ts
 * fails if they change): Client_PG#transaction, Transaction#begin/commit/query, `transactor`,
 * `_resolver`, `_rejecter`, `_completed`.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';

const require = createRequire(import.meta.url);

interface KnexTransactionInternals {
  transactor: object | undefined;
  txid: string;
  trxClient: { emit(event: 'query', query: object): void };
  isolationLevel?: string;
  readOnly?: boolean;
  _completed: boolean;
  _resolver(value: unknown): void;
  _rejecter(err: unknown): void;
  query(conn: pg.Client, sql: string, status?: number, value?: unknown): Promise<unknown>;
  begin(conn: pg.Client): Promise<unknown>;
  commit(conn: pg.Client, value: unknown): Promise<unknown>;
}
type TransactionClass = new (...args: unknown[]) => KnexTransactionInternals;
type ClientClass = new (config: unknown) => { transaction(...args: unknown[]): unknown };

const PgClient = require('knex/lib/dialects/postgres/index.js') as ClientClass;
const PgTransaction = require('knex/lib/dialects/postgres/execution/pg-transaction.js') as TransactionClass;

/** A statement as node-pg sends it ($n placeholders), to go out with COMMIT. */
export interface CommitStatement { name: string; text: string; values: unknown[] }

/** Statements waiting for their transaction's COMMIT, by the transaction's knex object. */
const withCommit = new WeakMap<object, CommitStatement[]>();

/**
 * Queues `statement` to go out with `transactor`'s COMMIT. False when that transaction cannot
 * (not one of this client's, a savepoint): the caller runs the statement itself.
 */
export function queueForCommit(transactor: object & { parentTransaction?: unknown; client?: { config?: { client?: unknown } } }, statement: CommitStatement): boolean {
  if (transactor.client?.config?.client !== PipelinedPostgres || transactor.parentTransaction) return false;
  const queued = withCommit.get(transactor);
  if (queued) queued.push(statement);
  else withCommit.set(transactor, [statement]);
  return true;
}

class PipelinedTransaction extends PgTransaction {
  /** BEGIN's failure, once answered (null: it succeeded); unset when BEGIN was awaited. */
  private begun: Promise<unknown> | undefined;

  begin(conn: pg.Client): Promise<unknown> {
    if (this.isolationLevel || this.readOnly) return super.begin(conn);
    this.begun = this.send(conn, { text: 'BEGIN;' }).then(() => null, (err: unknown) => {
      (conn as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      return err;
    });
    return Promise.resolve();
  }

  /** Writes a statement now (past knex's runner, which would send it a few ticks later), telling knex's listeners as its runner does. */
  private send(conn: pg.Client & { __knexUid?: string }, q: { text: string; name?: string; values?: unknown[] }): Promise<unknown> {
    this.trxClient.emit('query', { sql: q.text, bindings: q.values ?? [], __knexUid: conn.__knexUid, __knexTxId: this.txid });
    return conn.query(q);
  }

  commit(conn: pg.Client, value: unknown): Promise<unknown> {
    const statements = (this.transactor && withCommit.get(this.transactor)) ?? [];
    if (this.transactor) withCommit.delete(this.transactor);
    if (statements.length === 0 && this.begun === undefined) return super.commit(conn, value);
    // Written before COMMIT (now, in this order), answered before it.
    const failures = statements.map((s) => this.send(conn, s).then(() => null, (err: unknown) => err));
    const committed = this.query(conn, 'COMMIT;').then(async (res) => {
      const failure = (await this.begun) ?? (await Promise.all(failures)).find((f) => f !== null);
      // PostgreSQL answers COMMIT of a failed transaction with a rollback (tag ROLLBACK, no error).
      const rolledBack = (res as { response?: { command?: string } } | undefined)?.response?.command === 'ROLLBACK';
      if (failure && !rolledBack && !(failure as { code?: unknown }).code) {
        this._rejecter(new Error(`The transaction committed without a statement sent with its COMMIT, which node-pg refused: ${String((failure as Error).message ?? failure)}`, { cause: failure }));
      } else if (failure) this._rejecter(failure);
      else if (rolledBack) this._rejecter(new Error('The transaction was rolled back at COMMIT'));
      else this._resolver(value);
      return res;
    });
    this._completed = true;
    return committed;
  }
}

/** Client_PG making PipelinedTransactions. Give it as knex's `client` (with `pipeline: true` on the connection). */
export class PipelinedPostgres extends PgClient {
  transaction(...args: unknown[]) {
    return new PipelinedTransaction(this, ...args);
  }
}

/**
 * Statements handed to a connection in one burst go out in one socket write: the socket is
 * corked at the first and uncorked once the promise callbacks that are ready have run (a
 * nextTick queued from a promise callback runs after them), by when the burst's other
 * statements — BEGIN and the first statement, lookups sent `together`, a statement sent with
 * COMMIT — are in the buffer too: one system call and one wake-up of the backend instead of
 * several (a create: 4 writes, not 8). Nothing waits for I/O or a timer: the write leaves in the
 * same turn of the event loop.
 */
export function coalesceWrites(client: pg.Client): void {
  type Socket = { cork?: () => void; uncork?: () => void; write: (...args: unknown[]) => boolean };
  const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream;
  if (typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return;
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork!();
  };
  stream.write = function (this: Socket, ...args: unknown[]) {
    if (!corked) {
      corked = true;
      stream.cork!();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  };
}
