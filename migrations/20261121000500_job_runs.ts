import type { Knex } from 'knex';

// One row per (job, tick): claiming the row is what makes a tick run once across replicas.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE job_runs (
      job          text NOT NULL,
      tick         timestamptz(3) NOT NULL,
      runner       text NOT NULL,
      started_at   timestamptz(3) NOT NULL DEFAULT now(),
      finished_at  timestamptz(3),
      status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
      error        text,
      PRIMARY KEY (job, tick)
    );
    CREATE INDEX job_runs_started_idx ON job_runs (started_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE job_runs');
}
