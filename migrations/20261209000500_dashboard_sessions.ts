import type { Knex } from 'knex';

// The dashboard's sign-in (SPEC §6), owned by the dashboard module. Only SHA-256 digests of the
// random tokens are stored: a database dump does not let anyone in. Both tables live in
// PostgreSQL so any replica serves any session; rows past expires_at are deleted lazily.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE dashboard_login_tokens (
      token_hash    bytea PRIMARY KEY,
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      agent_id      text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
      created_at    timestamptz(3) NOT NULL,
      expires_at    timestamptz(3) NOT NULL,
      used_at       timestamptz(3)
    );
    CREATE INDEX dashboard_login_tokens_expires ON dashboard_login_tokens (expires_at);

    CREATE TABLE dashboard_sessions (
      id_hash       bytea PRIMARY KEY,
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      agent_id      text REFERENCES agents (id) ON DELETE CASCADE,
      api_key_id    text REFERENCES api_keys (id) ON DELETE CASCADE,
      who           text NOT NULL,
      created_at    timestamptz(3) NOT NULL,
      expires_at    timestamptz(3) NOT NULL,
      -- Signed in by exactly one of: a lead's one-time link, an API key.
      CHECK ((agent_id IS NULL) <> (api_key_id IS NULL))
    );
    CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE dashboard_sessions; DROP TABLE dashboard_login_tokens;');
}
