import type { Knex } from 'knex';

// A run whose stop signal fired (the service stopping, or its lock lost) is recorded 'aborted':
// it returned, but may have left work for the next tick.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE job_runs DROP CONSTRAINT job_runs_status_check;
    ALTER TABLE job_runs ADD CONSTRAINT job_runs_status_check CHECK (status IN ('running', 'succeeded', 'failed', 'aborted'));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    UPDATE job_runs SET status = 'failed' WHERE status = 'aborted';
    ALTER TABLE job_runs DROP CONSTRAINT job_runs_status_check;
    ALTER TABLE job_runs ADD CONSTRAINT job_runs_status_check CHECK (status IN ('running', 'succeeded', 'failed'));
  `);
}
