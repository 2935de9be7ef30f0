import type { Knex } from 'knex';

// Fixed-window request counters shared by every replica. UNLOGGED: no WAL per request,
// and losing the counters in a crash only forgives at most one window.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE UNLOGGED TABLE rate_limit_counters (
      bucket        text NOT NULL,
      window_start  timestamptz(3) NOT NULL,
      count         integer NOT NULL,
      PRIMARY KEY (bucket, window_start)
    );
    CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE rate_limit_counters');
}
