import type { Knex } from 'knex';

// A Telegram bot of a workspace (SPEC §2). This issue needs the row so tickets and
// messages can say which bot they came through and the daily send cap can count per bot;
// the Telegram module adds what it needs to run the bot (token, webhook state).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE accounts (
      id               text PRIMARY KEY,
      workspace_id     text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      bot_user_id      bigint,
      bot_username     text,
      support_chat_id  bigint,
      is_default       boolean NOT NULL DEFAULT false,
      created_at       timestamptz(3) NOT NULL DEFAULT now(),
      updated_at       timestamptz(3) NOT NULL DEFAULT now(),
      -- The target of composite foreign keys: a row may only point at an account of its own workspace.
      UNIQUE (workspace_id, id)
    );
    -- At most one default bot per workspace.
    CREATE UNIQUE INDEX accounts_one_default ON accounts (workspace_id) WHERE is_default;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE accounts');
}
