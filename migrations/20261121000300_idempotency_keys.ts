import type { Knex } from 'knex';

// One row per (workspace, Idempotency-Key). The row is inserted in the same transaction
// as the request's own writes, so it exists if and only if the effect committed.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE idempotency_keys (
      workspace_id      text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      key               text NOT NULL,
      fingerprint       text NOT NULL,
      method            text NOT NULL,
      path              text NOT NULL,
      response_status   integer NOT NULL,
      response_type     text,
      response_headers  jsonb NOT NULL DEFAULT '{}',
      response_body     text,
      created_at        timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, key)
    );
    -- the cleanup job deletes by age
    CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE idempotency_keys');
}
