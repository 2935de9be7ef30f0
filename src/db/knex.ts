import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { DatabaseBounds } from '../config.js';
import { coalesceWrites, PipelinedPostgres } from './pipelined-pg.js';

export type { Knex };
/** Anything queries can run on: the pool or an open transaction. */
export type Db = Knex | Knex.Transaction;

// Return bigint (COUNT, SUM) as JS numbers: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

/** Where knex's own warnings go; without one they are dropped (knex would print to the console). */
export interface KnexLog { warn(msg: unknown): void; error(msg: unknown): void }

/** The bounds when none are given (config/default.json has the same). */
export const DEFAULT_DATABASE_BOUNDS: DatabaseBounds = {
  statementTimeoutMs: 15_000,
  idleInTransactionTimeoutMs: 30_000,
  queryTimeoutMs: 20_000,
  connectTimeoutMs: 5_000,
  acquireTimeoutMs: 5_000,
  keepAliveInitialDelayMs: 10_000,
};

/** How each knex was made, so unboundedKnex can open the same database without the per-statement bounds. */
const made = new WeakMap<Knex, { connectionString: string; log?: KnexLog; bounds: DatabaseBounds }>();

/**
 * A pool on `connectionString` where nothing waits for the database without a limit: opening a
 * connection, waiting for a free one, each statement (server side) and each answer (client
 * side: a silent network), and TCP keepalive underneath. A connection whose answer never came
 * is closed at once and never handed out again.
 */
export function createKnex(connectionString: string, poolMax = 10, log?: KnexLog, bounds: Partial<DatabaseBounds> = {}): Knex {
  const b = { ...DEFAULT_DATABASE_BOUNDS, ...bounds };
  const quiet = () => undefined;
  // The pool's connections by knex's id for them, to find the one a failed query ran on.
  const open = new Map<string, pg.Client>();
  const knex = knexFactory({
    // knex's pg client, whose transactions save two round trips over node-pg's pipeline mode.
    client: PipelinedPostgres as unknown as typeof knexFactory.Client,
    connection: {
      connectionString,
      application_name: 'topicdesk',
      pipeline: true,
      // Sent at start-up, so they are the session's defaults: RESET and a transaction's end come back to them.
      statement_timeout: b.statementTimeoutMs || undefined,
      idle_in_transaction_session_timeout: b.idleInTransactionTimeoutMs || undefined,
      query_timeout: b.queryTimeoutMs || undefined,
      connectionTimeoutMillis: b.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: b.keepAliveInitialDelayMs,
    } as Knex.PgConnectionConfig,
    pool: {
      min: 0,
      max: poolMax,
      afterCreate(conn: pg.Client & { __knexUid: string }, done: (err: Error | null, conn: pg.Client) => void) {
        const uid = conn.__knexUid;
        coalesceWrites(conn);
        open.set(uid, conn);
        conn.once('end', () => open.delete(uid));
        done(null, conn);
      },
    },
    acquireConnectionTimeout: b.acquireTimeoutMs,
    log: { warn: log?.warn ?? quiet, error: log?.error ?? quiet, deprecate: quiet, debug: quiet },
  });
  knex.on('query-error', (err: unknown, query: { __knexUid?: string }) => {
    const conn = query?.__knexUid ? open.get(query.__knexUid) : undefined;
    if (conn && isQueryReadTimeout(err)) discardConnection(conn, err);
  });
  made.set(knex, { connectionString, log, bounds: b });
  return knex;
}

/**
 * A pool of its own on the same database as `db`, with no statement, idle-in-transaction or
 * answer timeout of ours (the server's own settings apply): for migrations, whose DDL may
 * rightly run for minutes, and whose advisory lock may wait for another replica's. Connecting
 * and waiting for a pooled connection stay bounded. Destroy it after use.
 */
export function unboundedKnex(db: Knex, poolMax = 2): Knex {
  const { connectionString, log, bounds } = connectionOf(db);
  return createKnex(connectionString, poolMax, log, { ...bounds, statementTimeoutMs: 0, idleInTransactionTimeoutMs: 0, queryTimeoutMs: 0 });
}

/** The database `db` opens and its bounds: for a connection of one's own to the same database (outside its pool). */
export function connectionOf(db: Knex): { connectionString: string; log?: KnexLog; bounds: DatabaseBounds } {
  return made.get(db) ?? { connectionString: (db.client.config.connection as { connectionString: string }).connectionString, bounds: DEFAULT_DATABASE_BOUNDS };
}

/** pg's own error when a query had no answer within query_timeout (it carries no code). */
export function isQueryReadTimeout(err: unknown): boolean {
  return /Query read timeout/.test((err as Error)?.message ?? '');
}

/**
 * Takes a pooled connection out of use for good: the pool destroys rather than reuses it, and
 * its socket is dropped now, so whatever is still out or queued behind on it (a transaction's
 * ROLLBACK) fails fast too. (A pipelined client's end() would wait for them to be answered.)
 */
export function discardConnection(conn: unknown, reason: unknown): void {
  const c = conn as pg.Client & { __knex__disposed?: unknown; connection?: { stream?: { destroy(): void } } };
  c.__knex__disposed ??= reason;
  c.connection?.stream?.destroy();
}

/**
 * PostgreSQL's own message for a server error (it has a SQLSTATE `code` and a `severity`),
 * without the SQL text knex puts in front of it; null for anything else.
 */
export function postgresReason(err: unknown): string | null {
  const e = err as { message?: unknown; code?: unknown; severity?: unknown } | null | undefined;
  if (typeof e?.severity !== 'string' || typeof e.code !== 'string' || typeof e.message !== 'string') return null;
  const i = e.message.lastIndexOf(' - ');
  return i >= 0 ? e.message.slice(i + 3) : e.message;
}
