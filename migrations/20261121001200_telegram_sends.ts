import type { Knex } from 'knex';

// The durable send queue: every outbound Telegram call is a row, written in the same
// transaction as the change that causes it. The Telegram module's workers deliver them.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE telegram_sends (
      id               bigserial PRIMARY KEY,
      workspace_id     text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      account_id       text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      chat_id          bigint,
      op               text NOT NULL,
      ticket_id        text,
      message_id       text REFERENCES messages (id) ON DELETE CASCADE,
      payload          jsonb NOT NULL DEFAULT '{}',
      status           text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
      attempts         integer NOT NULL DEFAULT 0,
      next_attempt_at  timestamptz(3) NOT NULL DEFAULT now(),
      lease_until      timestamptz(3),
      last_error       text,
      created_at       timestamptz(3) NOT NULL DEFAULT now(),
      done_at          timestamptz(3)
    );
    CREATE INDEX telegram_sends_pending ON telegram_sends (account_id, id) WHERE status IN ('queued', 'sending');
    CREATE INDEX telegram_sends_message ON telegram_sends (message_id) WHERE message_id IS NOT NULL;

    -- Proactive messages (POST /v1/messages/send) per bot per UTC day, against the
    -- workspace's daily_send_limit. account_key is the account id, or '-' when none.
    CREATE TABLE daily_send_counters (
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      account_key   text NOT NULL,
      day           date NOT NULL,
      sent          integer NOT NULL DEFAULT 0,
      PRIMARY KEY (workspace_id, account_key, day)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE daily_send_counters; DROP TABLE telegram_sends');
}
