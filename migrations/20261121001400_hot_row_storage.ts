import type { Knex } from 'knex';

// A key's rate-limit window is rewritten on every request. Measured under load, their old row versions piled up between autovacuum
// runs and every read had to step over them. Room on the page for HOT updates (fillfactor)
// and an autovacuum that comes by after a few hundred dead rows keep them short.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE rate_limit_counters SET (fillfactor = 10, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE rate_limit_counters RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold);
  `);
}
