import type { Knex } from 'knex';

// Escalation rules (SPEC §5). The escalation module keeps its rules (escalation_rules), the
// condition window of each (rule, ticket) (escalation_firings: a rule fires when its conditions
// become true, not again while they stay true), a log of recent firings per ticket (the
// ping-pong guard counts them), its events-outbox queue (escalation_queue, filled by a trigger
// on events: rules are evaluated whenever a ticket changes) and the time sweep's last-checked
// moment (escalation_sweep_state). Tickets get unassigned_since, kept by a trigger, so the
// sweep finds the tickets whose "unassigned for N minutes" moment just passed by index.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE escalation_rules (
      id            text PRIMARY KEY,
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      name          text NOT NULL,
      enabled       boolean NOT NULL DEFAULT true,
      -- As the API spells them (snake_case): priority_in, status_in, team_id_in, sla, age_minutes_gt, …
      conditions    jsonb NOT NULL,
      -- [{type, …}] in the order they apply.
      actions       jsonb NOT NULL,
      created_at    timestamptz(3) NOT NULL,
      updated_at    timestamptz(3) NOT NULL,
      archived_at   timestamptz(3)
    );
    CREATE INDEX escalation_rules_workspace ON escalation_rules (workspace_id, created_at, id) WHERE archived_at IS NULL;
    -- The sweep reads only the live, enabled rules with a time threshold.
    CREATE INDEX escalation_rules_timed ON escalation_rules (workspace_id)
      WHERE archived_at IS NULL AND enabled AND (conditions->'age_minutes_gt' IS NOT NULL OR conditions->'unassigned_for_minutes_gt' IS NOT NULL);

    -- One row per (rule, ticket) once evaluated true: active while the conditions hold (the
    -- window); cleared when an evaluation finds them false; fired again only from inactive.
    CREATE TABLE escalation_firings (
      rule_id     text NOT NULL REFERENCES escalation_rules (id) ON DELETE CASCADE,
      ticket_id   text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
      active      boolean NOT NULL,
      fired_at    timestamptz(3),
      cleared_at  timestamptz(3),
      count       integer NOT NULL DEFAULT 0,
      PRIMARY KEY (rule_id, ticket_id)
    );
    CREATE INDEX escalation_firings_ticket ON escalation_firings (ticket_id);

    -- Firings of the last hour per ticket (older rows are pruned as new ones come).
    CREATE TABLE escalation_firing_log (
      ticket_id  text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
      rule_id    text NOT NULL,
      fired_at   timestamptz(3) NOT NULL
    );
    CREATE INDEX escalation_firing_log_ticket ON escalation_firing_log (ticket_id, fired_at);

    -- Events that may change whether a rule holds for a ticket (events/event-consumers.ts).
    -- contact.tagged has no ticket: the worker evaluates the contact's open tickets.
    CREATE TABLE escalation_queue (
      id            bigserial PRIMARY KEY,
      event_id      text NOT NULL,
      workspace_id  text NOT NULL,
      ticket_id     text,
      contact_id    text
    );
    ALTER TABLE escalation_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

    CREATE FUNCTION queue_event_for_escalation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO escalation_queue (event_id, workspace_id, ticket_id, contact_id) VALUES (NEW.id, NEW.workspace_id, NEW.ticket_id, NEW.contact_id);
      RETURN NULL;
    END $$;
    -- ticket.escalated is not queued: a firing must not evaluate itself (the changes its actions
    -- made are queued through their own events).
    CREATE TRIGGER events_escalation AFTER INSERT ON events
      FOR EACH ROW WHEN (NEW.type IN ('ticket.created', 'ticket.updated', 'ticket.status_changed', 'ticket.assigned',
        'ticket.resolved', 'ticket.closed', 'ticket.reopened', 'sla.warning', 'sla.breached', 'message.received', 'contact.tagged'))
      EXECUTE FUNCTION queue_event_for_escalation();

    -- The time sweep covered threshold moments up to checked_until (one row).
    CREATE TABLE escalation_sweep_state (
      id             smallint PRIMARY KEY CHECK (id = 1),
      checked_until  timestamptz(3) NOT NULL
    );

    -- Since when the ticket has had no assignee (null while assigned). The change's own time
    -- (updated_at), not now(): the time the service wrote is the one conditions are judged on.
    ALTER TABLE tickets ADD COLUMN unassigned_since timestamptz(3);
    CREATE FUNCTION tickets_unassigned_since() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.assignee_id IS NOT NULL THEN
        NEW.unassigned_since := NULL;
      ELSIF TG_OP = 'INSERT' THEN
        NEW.unassigned_since := NEW.created_at;
      ELSIF OLD.assignee_id IS NOT NULL THEN
        NEW.unassigned_since := NEW.updated_at;
      ELSE
        NEW.unassigned_since := OLD.unassigned_since;
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER tickets_unassigned_since BEFORE INSERT OR UPDATE OF assignee_id ON tickets
      FOR EACH ROW EXECUTE FUNCTION tickets_unassigned_since();
    -- Backfill: the last assignment event of an unassigned ticket is when it lost its assignee
    -- (or moved team while unassigned: later, never earlier); never assigned: its creation.
    UPDATE tickets t SET unassigned_since = COALESCE(
      (SELECT max(e.created_at) FROM events e WHERE e.ticket_id = t.id AND e.type = 'ticket.assigned'), t.created_at)
      WHERE t.assignee_id IS NULL;
    -- The sweep's "unassigned for N minutes" crossings: a range scan per workspace.
    CREATE INDEX tickets_unassigned_since ON tickets (workspace_id, unassigned_since)
      WHERE unassigned_since IS NOT NULL AND archived_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX tickets_unassigned_since;
    DROP TRIGGER tickets_unassigned_since ON tickets;
    DROP FUNCTION tickets_unassigned_since();
    ALTER TABLE tickets DROP COLUMN unassigned_since;
    DROP TABLE escalation_sweep_state;
    DROP TRIGGER events_escalation ON events;
    DROP FUNCTION queue_event_for_escalation();
    DROP TABLE escalation_queue;
    DROP TABLE escalation_firing_log;
    DROP TABLE escalation_firings;
    DROP TABLE escalation_rules;
  `);
}
