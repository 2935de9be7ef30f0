import knexFactory, { type Knex } from 'knex';
import pg from 'pg';

export type { Knex };
/** Anything queries can run on: the pool or an open transaction. */
export type Db = Knex | Knex.Transaction;

// Return bigint (COUNT, SUM) as JS numbers: our counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

export function createKnex(connectionString: string, poolMax = 10): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString, application_name: 'topicdesk' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
  });
}
