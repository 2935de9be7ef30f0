import type { Knex } from 'knex';

// The transactional outbox: every domain change writes its event here in the same
// transaction. Webhooks fan out from it; the ticket timeline is read from it.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE events (
      id            text PRIMARY KEY,
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      type          text NOT NULL,
      ticket_id     text,
      contact_id    text,
      message_id    text,
      actor_type    text NOT NULL CHECK (actor_type IN ('contact', 'agent', 'api', 'system')),
      actor_id      text,
      -- The resource as the API shows it (the webhook payload's "data").
      payload       jsonb NOT NULL,
      -- What changed (from/to, note…): the timeline's "data".
      detail        jsonb NOT NULL DEFAULT '{}',
      created_at    timestamptz(3) NOT NULL DEFAULT now()
    );
    -- No foreign keys: the log outlives what it describes and must not slow the writers.
    CREATE INDEX events_ticket ON events (ticket_id, created_at, id) WHERE ticket_id IS NOT NULL;
    CREATE INDEX events_workspace ON events (workspace_id, created_at, id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE events');
}
