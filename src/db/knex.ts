import knexFactory, { type Knex } from 'knex';
import pg from 'pg';

export type { Knex };
/** Anything queries can run on: the pool or an open transaction. */
export type Db = Knex | Knex.Transaction;

// Return bigint (COUNT, SUM) as JS numbers: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

/** Where knex's own warnings go; without one they are dropped (knex would print to the console). */
export interface KnexLog { warn(msg: unknown): void; error(msg: unknown): void }

export function createKnex(connectionString: string, poolMax = 10, log?: KnexLog): Knex {
  const quiet = () => undefined;
  return knexFactory({
    client: 'pg',
    connection: { connectionString, application_name: 'topicdesk' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
    log: { warn: log?.warn ?? quiet, error: log?.error ?? quiet, deprecate: quiet, debug: quiet },
  });
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
