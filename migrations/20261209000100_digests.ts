import type { Knex } from 'knex';

// The daily digest (SPEC §6): one row per workspace and local date it was queued for. The
// primary key is what makes it exactly once across replicas: the row is inserted (ON CONFLICT
// DO NOTHING) in the transaction that queues the Telegram send, so a second replica, a repeated
// tick or a late clock finds the day taken and queues nothing.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE digests (
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      local_date    date NOT NULL,
      queued_at     timestamptz(3) NOT NULL,
      PRIMARY KEY (workspace_id, local_date)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE digests');
}
