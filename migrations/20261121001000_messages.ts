import type { Knex } from 'knex';

// Messages: a ticket's thread (customer messages, agent replies, internal notes) and
// proactive messages sent through the API (ticket_id NULL).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE messages (
      id              text PRIMARY KEY,
      workspace_id    text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      ticket_id       text REFERENCES tickets (id) ON DELETE CASCADE,
      contact_id      text,
      account_id      text,
      direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
      visibility      text NOT NULL CHECK (visibility IN ('public', 'internal')),
      author_type     text NOT NULL CHECK (author_type IN ('contact', 'agent', 'api', 'system')),
      author_id       text,
      text            text NOT NULL DEFAULT '',
      attachments     jsonb NOT NULL DEFAULT '[]',
      status          text NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'failed')),
      failure_reason  text,
      simulated       boolean NOT NULL DEFAULT false,
      created_at      timestamptz(3) NOT NULL DEFAULT now(),
      sent_at         timestamptz(3),
      search          tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
      FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id),
      FOREIGN KEY (workspace_id, account_id) REFERENCES accounts (workspace_id, id)
    );
    CREATE INDEX messages_thread ON messages (ticket_id, created_at, id);
    CREATE INDEX messages_contact ON messages (workspace_id, contact_id, created_at);
    CREATE INDEX messages_account ON messages (account_id) WHERE account_id IS NOT NULL;
    CREATE INDEX messages_search ON messages USING gin (search);

    -- Where a message lives in Telegram: the original (the customer's or agent's message)
    -- and every copy we made of it, so an edit of one can be mirrored onto the others.
    -- Message ids are per chat, and a user's private chats with two bots share a chat id.
    CREATE TABLE message_telegram_refs (
      account_id           text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
      chat_id              bigint NOT NULL,
      telegram_message_id  bigint NOT NULL,
      message_id           text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
      role                 text NOT NULL CHECK (role IN ('original', 'copy')),
      PRIMARY KEY (account_id, chat_id, telegram_message_id)
    );
    CREATE INDEX message_telegram_refs_message ON message_telegram_refs (message_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE message_telegram_refs; DROP TABLE messages');
}
