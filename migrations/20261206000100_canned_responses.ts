import type { Knex } from 'knex';

// Canned responses (SPEC §4.5): reusable replies with variables, shared with the workspace or
// one team, every title/body change kept as a version (with who made it). DELETE archives: the
// row and its versions stay, and the shortcut is free again for a new response.
// Telegram's preview of one (a tap in /canned's list) lives in telegram_canned_previews: the
// rendered text an agent saw, and whether Send or Cancel settled it (a double tap sends once).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE canned_responses (
      id            text PRIMARY KEY,
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      shortcut      text NOT NULL CHECK (shortcut ~ '^[a-z0-9_-]{1,32}$'),
      title         text NOT NULL,
      body          text NOT NULL,
      category      text,
      team_id       text,
      version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
      usage_count   bigint NOT NULL DEFAULT 0,
      archived_at   timestamptz(3),
      created_at    timestamptz(3) NOT NULL,
      updated_at    timestamptz(3) NOT NULL,
      FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id),
      UNIQUE (workspace_id, id)
    );
    CREATE UNIQUE INDEX canned_responses_shortcut ON canned_responses (workspace_id, shortcut) WHERE archived_at IS NULL;
    -- /canned in a topic: the most used of a team and the workspace-wide ones.
    CREATE INDEX canned_responses_most_used ON canned_responses (workspace_id, usage_count DESC, shortcut) WHERE archived_at IS NULL;

    CREATE TABLE canned_response_versions (
      canned_response_id  text NOT NULL REFERENCES canned_responses (id) ON DELETE CASCADE,
      version             integer NOT NULL,
      title               text NOT NULL,
      body                text NOT NULL,
      actor_type          text NOT NULL,
      actor_id            text,
      created_at          timestamptz(3) NOT NULL,
      PRIMARY KEY (canned_response_id, version)
    );

    CREATE TABLE telegram_canned_previews (
      id                  bigserial PRIMARY KEY,
      workspace_id        text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      ticket_id           text NOT NULL,
      canned_response_id  text NOT NULL,
      shortcut            text NOT NULL,
      agent_id            text NOT NULL,
      text                text NOT NULL,
      state               text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'cancelled')),
      created_at          timestamptz(3) NOT NULL,
      settled_at          timestamptz(3)
    );
    CREATE INDEX telegram_canned_previews_created ON telegram_canned_previews (created_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE telegram_canned_previews; DROP TABLE canned_response_versions; DROP TABLE canned_responses;');
}
