import type { Knex } from 'knex';

// Agents, teams, assignment strategies and queues (SPEC §4.4): team membership, a team's
// auto-assignment strategy and pause switch, the round-robin rotation (one row per team, or
// per workspace for "every active agent", locked while a pick is made so concurrent picks
// queue on it), an agent's last assignment, a ticket's manual rank in its queue, and the
// queue kicks: rows that say "this team's queue may be able to hand out tickets now", written
// by triggers in the transaction of whatever made room (so no path can forget one) and worked
// off by the assignment worker in every replica.
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

    -- A team's queue may be able to hand out tickets. One row per team: a new kick while one
    -- is being worked on counts up \`kicks\`, so the worker looks again instead of deleting it.
    CREATE TABLE queue_kicks (
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      team_id       text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
      kicks         bigint NOT NULL DEFAULT 1,
      kicked_at     timestamptz(3) NOT NULL,
      leased_until  timestamptz(3),
      PRIMARY KEY (team_id)
    );
    CREATE INDEX queue_kicks_due ON queue_kicks (kicked_at);

    -- Room appears or a ticket enters a queue: kick the auto-assigning, running queues
    -- concerned, in the transaction of the change (whatever path made it: API, Telegram, jobs).
    -- NOTIFY (delivered at commit, to every replica) wakes the assignment workers at once.
    CREATE FUNCTION kick_queue(ws text, team text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO queue_kicks (workspace_id, team_id, kicked_at)
        SELECT t.workspace_id, t.id, clock_timestamp() FROM teams t WHERE t.id = team AND t.workspace_id = ws AND t.auto_assign IS NOT NULL AND NOT t.paused
      ON CONFLICT (team_id) DO UPDATE SET kicks = queue_kicks.kicks + 1;
      IF FOUND THEN
        PERFORM pg_notify('topicdesk_queue_kicks', '');
      END IF;
    END $$;
    -- plpgsql: PERFORM runs the call for every team (a SQL function's last SELECT stops at one row).
    CREATE FUNCTION kick_queues_of_agent(ws text, agent text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM kick_queue(ws, m.team_id) FROM agent_teams m WHERE m.agent_id = agent;
    END $$;

    CREATE FUNCTION tickets_kick_queues() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      open_now boolean := NEW.status IN ('open', 'in_progress', 'waiting_on_customer') AND NEW.archived_at IS NULL;
      open_before boolean := TG_OP = 'UPDATE' AND OLD.status IN ('open', 'in_progress', 'waiting_on_customer') AND OLD.archived_at IS NULL;
    BEGIN
      -- The agent who had the ticket gains room: it resolved, closed, went to someone else.
      IF open_before AND OLD.assignee_id IS NOT NULL AND (NOT open_now OR NEW.assignee_id IS DISTINCT FROM OLD.assignee_id) THEN
        PERFORM kick_queues_of_agent(OLD.workspace_id, OLD.assignee_id);
      END IF;
      -- The ticket enters its team's queue: created in it, moved to it, unassigned, reopened.
      IF open_now AND NEW.assignee_id IS NULL AND NEW.team_id IS NOT NULL
         AND (NOT open_before OR OLD.assignee_id IS NOT NULL OR OLD.team_id IS DISTINCT FROM NEW.team_id) THEN
        PERFORM kick_queue(NEW.workspace_id, NEW.team_id);
      END IF;
      RETURN NULL;
    END $$;
    -- WHEN clauses keep the function out of the common case (a ticket created without a team,
    -- an update that moves none of these): ticket creation holds the workspace's numbering lock.
    CREATE TRIGGER tickets_queues_insert AFTER INSERT ON tickets
      FOR EACH ROW WHEN (NEW.team_id IS NOT NULL AND NEW.assignee_id IS NULL) EXECUTE FUNCTION tickets_kick_queues();
    CREATE TRIGGER tickets_queues AFTER UPDATE OF assignee_id, status, team_id, archived_at ON tickets
      FOR EACH ROW WHEN (OLD.assignee_id IS DISTINCT FROM NEW.assignee_id OR OLD.status IS DISTINCT FROM NEW.status
                         OR OLD.team_id IS DISTINCT FROM NEW.team_id OR OLD.archived_at IS DISTINCT FROM NEW.archived_at)
      EXECUTE FUNCTION tickets_kick_queues();

    CREATE FUNCTION agents_kick_queues() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.active AND (NOT OLD.active OR (NEW.max_open_tickets IS NULL AND OLD.max_open_tickets IS NOT NULL)
                         OR NEW.max_open_tickets > OLD.max_open_tickets) THEN
        PERFORM kick_queues_of_agent(NEW.workspace_id, NEW.id);
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER agents_queues AFTER UPDATE OF active, max_open_tickets ON agents
      FOR EACH ROW EXECUTE FUNCTION agents_kick_queues();

    CREATE FUNCTION agent_teams_kick_queue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM kick_queue(NEW.workspace_id, NEW.team_id);
      RETURN NULL;
    END $$;
    CREATE TRIGGER agent_teams_queues AFTER INSERT ON agent_teams
      FOR EACH ROW EXECUTE FUNCTION agent_teams_kick_queue();

    CREATE FUNCTION teams_kick_queue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF (OLD.paused AND NOT NEW.paused) OR NEW.auto_assign IS DISTINCT FROM OLD.auto_assign THEN
        PERFORM kick_queue(NEW.workspace_id, NEW.id);
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER teams_queues AFTER UPDATE OF paused, auto_assign ON teams
      FOR EACH ROW EXECUTE FUNCTION teams_kick_queue();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER teams_queues ON teams; DROP FUNCTION teams_kick_queue();
    DROP TRIGGER agent_teams_queues ON agent_teams; DROP FUNCTION agent_teams_kick_queue();
    DROP TRIGGER agents_queues ON agents; DROP FUNCTION agents_kick_queues();
    DROP TRIGGER tickets_queues ON tickets; DROP TRIGGER tickets_queues_insert ON tickets; DROP FUNCTION tickets_kick_queues();
    DROP FUNCTION kick_queues_of_agent(text, text); DROP FUNCTION kick_queue(text, text);
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
