import type { Knex } from 'knex';

// API keys: only the SHA-256 of the token is stored (unique, the lookup path);
// `token_prefix` is the non-secret start of the token, for display and support.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE api_keys (
      id                     text PRIMARY KEY,
      workspace_id           text NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
      token_prefix           text NOT NULL,
      key_hash               bytea NOT NULL UNIQUE,
      scopes                 text[] NOT NULL,
      rate_limit_per_minute  integer CHECK (rate_limit_per_minute > 0),
      expires_at             timestamptz(3),
      revoked_at             timestamptz(3),
      last_used_at           timestamptz(3),
      rotated_from_id        text REFERENCES api_keys(id) ON DELETE SET NULL,
      created_at             timestamptz(3) NOT NULL DEFAULT now()
    );
    CREATE INDEX api_keys_workspace_idx ON api_keys (workspace_id, created_at DESC, id DESC);
    CREATE INDEX api_keys_rotated_from_idx ON api_keys (rotated_from_id) WHERE rotated_from_id IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE api_keys');
}
