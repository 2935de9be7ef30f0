import type { Knex } from 'knex';

// Agents, teams, assignment strategies and queues (SPEC §4.4): team membership, a team's
// auto-assignment strategy and pause switch, the round-robin rotation (one row per team, or
// per workspace for "every active agent", locked while a pick is made so concurrent picks
// queue on it), an agent's last assignment, a ticket's manual rank in its queue, and the
// queue kicks: rows that say "a queue may be able to hand out tickets now", written in the
// transaction of whatever made room and consumed exactly once by the assignment worker.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE agent_teams (
      workspace_id  text NOT NULL,
      team_id       text NOT NULL,
      agent_id      text NOT NULL,
      PRIMARY KEY (team_id, agent_id),
      FOREIGN KEY (workspace_id, team_id) REFERENCES teams (workspace_id, id) ON DELETE CASCADE,
      FOREIGN KEY (workspace_id, agent_id) REFERENCES agents (workspace_id, id) ON DELETE CASCADE
    );
    CREATE INDEX agent_teams_agent ON agent_teams (agent_id);
    CREATE INDEX agent_teams_workspace ON agent_teams (workspace_id);

    ALTER TABLE agents ADD COLUMN last_assigned_at timestamptz(3);
    CREATE INDEX agents_username ON agents (workspace_id, lower(username)) WHERE username IS NOT NULL;

    ALTER TABLE teams
      ADD COLUMN auto_assign text CHECK (auto_assign IN ('round_robin', 'least_loaded', 'skills')),
      ADD COLUMN paused boolean NOT NULL DEFAULT false;

    -- scope: a team id, or '*' for the workspace's "every active agent" rotation.
    CREATE TABLE assignment_rotations (
      workspace_id   text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      scope          text NOT NULL,
      last_agent_id  text,
      PRIMARY KEY (workspace_id, scope)
    );

    -- Manually ranked tickets come first in their queue (1 = first); null = by priority, then age.
    ALTER TABLE tickets ADD COLUMN queue_rank integer CHECK (queue_rank > 0);
    -- A queue's tickets in distribution order, without scanning the workspace's tickets.
    CREATE INDEX tickets_queue ON tickets (workspace_id, team_id, queue_rank, priority_rank DESC, created_at, id)
      WHERE assignee_id IS NULL AND status IN ('open', 'in_progress', 'waiting_on_customer') AND archived_at IS NULL;
    -- An agent's open tickets (capacity, least loaded).
    CREATE INDEX tickets_open_by_assignee ON tickets (assignee_id)
      WHERE assignee_id IS NOT NULL AND status IN ('open', 'in_progress', 'waiting_on_customer');

    -- scope: a team id, or '*' for the queue of tickets without a team. One row per queue at most.
    CREATE TABLE queue_kicks (
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      scope         text NOT NULL,
      created_at    timestamptz(3) NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, scope)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE queue_kicks;
    DROP INDEX tickets_open_by_assignee;
    DROP INDEX tickets_queue;
    ALTER TABLE tickets DROP COLUMN queue_rank;
    DROP TABLE assignment_rotations;
    ALTER TABLE teams DROP COLUMN auto_assign, DROP COLUMN paused;
    DROP INDEX agents_username;
    ALTER TABLE agents DROP COLUMN last_assigned_at;
    DROP TABLE agent_teams;
  `);
}
