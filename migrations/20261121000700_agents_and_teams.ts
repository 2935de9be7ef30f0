import type { Knex } from 'knex';

// Agents (members of the support group) and teams (queues), as much as tickets need to
// reference them; membership, skills-based assignment and queues come with the assignment work.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE agents (
      id                text PRIMARY KEY,
      workspace_id      text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      telegram_user_id  bigint,
      name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      username          text,
      role              text NOT NULL DEFAULT 'agent' CHECK (role IN ('agent', 'lead', 'admin')),
      skills            text[] NOT NULL DEFAULT '{}',
      max_open_tickets  integer CHECK (max_open_tickets > 0),
      active            boolean NOT NULL DEFAULT true,
      created_at        timestamptz(3) NOT NULL DEFAULT now(),
      updated_at        timestamptz(3) NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    );
    CREATE UNIQUE INDEX agents_telegram_user ON agents (workspace_id, telegram_user_id) WHERE telegram_user_id IS NOT NULL;

    CREATE TABLE teams (
      id            text PRIMARY KEY,
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      created_at    timestamptz(3) NOT NULL DEFAULT now(),
      updated_at    timestamptz(3) NOT NULL DEFAULT now(),
      UNIQUE (workspace_id, id)
    );
    CREATE UNIQUE INDEX teams_name ON teams (workspace_id, lower(name));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE teams; DROP TABLE agents');
}
