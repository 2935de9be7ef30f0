import type { Knex } from 'knex';

// The tenant. Every other tenant-owned table references it. A fresh install has the
// live workspace `ws_default` (reference data the product needs, so it ships here).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE workspaces (
      id                        text PRIMARY KEY,
      name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      mode                      text NOT NULL CHECK (mode IN ('live', 'sandbox')),
      timezone                  text NOT NULL DEFAULT 'UTC',
      auto_close_after_hours    integer NOT NULL DEFAULT 72 CHECK (auto_close_after_hours > 0),
      daily_send_limit          integer NOT NULL DEFAULT 50 CHECK (daily_send_limit >= 0),
      reopen_resolved_on_reply  boolean NOT NULL DEFAULT true,
      created_at                timestamptz(3) NOT NULL DEFAULT now(),
      updated_at                timestamptz(3) NOT NULL DEFAULT now()
    );
    INSERT INTO workspaces (id, name, mode) VALUES ('ws_default', 'Default', 'live');
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE workspaces');
}
