import type { Knex } from 'knex';

// Customers. A contact is matched on any of its identities (Telegram user id, username,
// email), each unique per workspace, case-insensitively for the text ones.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- Trigram indexes make the contact search (substring of name, username, email, phone)
    -- an index scan. pg_trgm is a trusted extension: a database owner may create it.
    CREATE EXTENSION IF NOT EXISTS pg_trgm;

    CREATE TABLE contacts (
      id                text PRIMARY KEY,
      workspace_id      text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      telegram_user_id  bigint,
      username          text,
      name              text,
      first_name        text,
      last_name         text,
      email             text,
      phone             text,
      tags              text[] NOT NULL DEFAULT '{}',
      custom_fields     jsonb NOT NULL DEFAULT '{}',
      blocked           boolean NOT NULL DEFAULT false,
      created_at        timestamptz(3) NOT NULL DEFAULT now(),
      updated_at        timestamptz(3) NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    );
    CREATE UNIQUE INDEX contacts_telegram_user ON contacts (workspace_id, telegram_user_id) WHERE telegram_user_id IS NOT NULL;
    CREATE UNIQUE INDEX contacts_username ON contacts (workspace_id, lower(username)) WHERE username IS NOT NULL;
    CREATE UNIQUE INDEX contacts_email ON contacts (workspace_id, lower(email)) WHERE email IS NOT NULL;
    CREATE INDEX contacts_list ON contacts (workspace_id, created_at DESC, id DESC);
    CREATE INDEX contacts_tags ON contacts USING gin (tags);
    CREATE INDEX contacts_search ON contacts USING gin (
      (coalesce(name, '') || ' ' || coalesce(username, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, '')) gin_trgm_ops
    );

    -- The private chats through which a contact has written to a bot of the workspace. A bot
    -- can only message someone who started it, so this is what makes a contact reachable.
    CREATE TABLE contact_chats (
      workspace_id     text NOT NULL,
      contact_id       text NOT NULL,
      account_id       text NOT NULL,
      chat_id          bigint NOT NULL,
      started_at       timestamptz(3) NOT NULL DEFAULT now(),
      last_inbound_at  timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (contact_id, account_id),
      FOREIGN KEY (workspace_id, contact_id) REFERENCES contacts (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, account_id) REFERENCES accounts (workspace_id, id) ON DELETE CASCADE
    );
    CREATE INDEX contact_chats_account ON contact_chats (account_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE contact_chats; DROP TABLE contacts');
}
