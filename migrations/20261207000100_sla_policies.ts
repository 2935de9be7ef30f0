import type { Knex } from 'knex';

// SLA policies (SPEC §5): targets per priority, the warning point, whether waiting on the
// customer pauses the resolution clock, and optional business hours. A workspace has at most
// one live default; a team at most one live policy of its own (a default is workspace-wide,
// so it never has a team: the service refuses it and the CHECK guarantees it).
// DELETE archives: the row stays, so tickets that used the policy keep their history.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE sla_policies (
      id                               text PRIMARY KEY,
      workspace_id                     text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      name                             text NOT NULL,
      is_default                       boolean NOT NULL DEFAULT false,
      team_id                          text,
      targets                          jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'object'),
      warn_at_percent                  integer NOT NULL DEFAULT 80 CHECK (warn_at_percent BETWEEN 1 AND 99),
      pause_while_waiting_on_customer  boolean NOT NULL DEFAULT true,
      business_hours                   jsonb CHECK (business_hours IS NULL OR jsonb_typeof(business_hours) = 'object'),
      archived_at                      timestamptz(3),
      created_at                       timestamptz(3) NOT NULL,
      updated_at                       timestamptz(3) NOT NULL,
      CHECK (NOT (is_default AND team_id IS NOT NULL)),
      FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id),
      UNIQUE (workspace_id, id)
    );
    CREATE UNIQUE INDEX sla_policies_default ON sla_policies (workspace_id) WHERE is_default AND archived_at IS NULL;
    CREATE UNIQUE INDEX sla_policies_team ON sla_policies (workspace_id, team_id) WHERE team_id IS NOT NULL AND archived_at IS NULL;
    -- Lists: by created_at, id within a workspace.
    CREATE INDEX sla_policies_created ON sla_policies (workspace_id, created_at, id) WHERE archived_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE sla_policies;');
}
