import type { Knex } from 'knex';

// SLA clocks (SPEC §5). The sla module keeps each ticket's clocks in sla_clocks: when each one
// started, business time already elapsed, whether it is paused, and the next moment the sweep
// must look at it (check_at: the earliest warning or due moment not yet recorded), so a sweep
// reads only the tickets that are due. sla_marks records each warning and breach once per
// ticket, target and cycle: its primary key is what makes them exactly-once across replicas.
// The ticket row carries what the API shows and filters on (due times, paused, warnings,
// breaches, at risk / breached), written by the tickets module on the sla module's behalf.
// Workspaces get lead_chat_id (escalation notices, the digest) and digest_time.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE tickets
      ADD COLUMN next_response_due_at timestamptz(3),
      ADD COLUMN sla_paused boolean NOT NULL DEFAULT false,
      ADD COLUMN sla_warnings jsonb NOT NULL DEFAULT '[]',
      ADD COLUMN sla_breaches jsonb NOT NULL DEFAULT '[]',
      ADD COLUMN sla_at_risk boolean NOT NULL DEFAULT false,
      ADD COLUMN sla_breached boolean NOT NULL DEFAULT false;
    CREATE INDEX tickets_sla_at_risk ON tickets (workspace_id, created_at) WHERE sla_at_risk;
    CREATE INDEX tickets_sla_breached ON tickets (workspace_id, created_at) WHERE sla_breached;

    CREATE TABLE sla_clocks (
      ticket_id            text PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
      workspace_id         text NOT NULL,
      policy_id            text,
      first_done           boolean NOT NULL DEFAULT false,
      first_warned         boolean NOT NULL DEFAULT false,
      first_breached       boolean NOT NULL DEFAULT false,
      next_cycle           integer NOT NULL DEFAULT 0,
      next_started_at      timestamptz(3),
      next_warned          boolean NOT NULL DEFAULT false,
      next_breached        boolean NOT NULL DEFAULT false,
      res_elapsed_ms       bigint NOT NULL DEFAULT 0,
      res_running_since    timestamptz(3),
      res_done             boolean NOT NULL DEFAULT false,
      res_warned           boolean NOT NULL DEFAULT false,
      res_breached         boolean NOT NULL DEFAULT false,
      first_warn_at        timestamptz(3),
      first_due_at         timestamptz(3),
      next_warn_at         timestamptz(3),
      next_due_at          timestamptz(3),
      res_warn_at          timestamptz(3),
      res_due_at           timestamptz(3),
      check_at             timestamptz(3)
    );
    CREATE INDEX sla_clocks_check ON sla_clocks (check_at) WHERE check_at IS NOT NULL;

    CREATE TABLE sla_marks (
      ticket_id     text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
      target        text NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
      cycle         integer NOT NULL,
      kind          text NOT NULL CHECK (kind IN ('warning', 'breach')),
      at            timestamptz(3) NOT NULL,
      due_at        timestamptz(3) NOT NULL,
      recorded_at   timestamptz(3) NOT NULL,
      PRIMARY KEY (ticket_id, target, cycle, kind)
    );

    ALTER TABLE workspaces
      ADD COLUMN lead_chat_id bigint,
      ADD COLUMN digest_time text CHECK (digest_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$');

    -- The card shows the next-response due time, a paused resolution and a met first response too.
    CREATE OR REPLACE FUNCTION telegram_ticket_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      chat bigint;
    BEGIN
      IF NEW.account_id IS NULL OR (SELECT mode FROM workspaces WHERE id = NEW.workspace_id) <> 'live' THEN
        RETURN NULL;
      END IF;
      IF NEW.topic_thread_id IS NOT NULL THEN
        IF NEW.status IS DISTINCT FROM OLD.status OR NEW.subject IS DISTINCT FROM OLD.subject THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, priority, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'rename_topic', NEW.id, 1, now(), now())
          ON CONFLICT (ticket_id, op) WHERE status = 'queued' AND priority = 1 DO NOTHING;
        END IF;
        IF (NEW.status, NEW.subject, NEW.priority, NEW.category, NEW.tags, NEW.assignee_id, NEW.team_id, NEW.first_response_due_at, NEW.resolution_due_at, NEW.next_response_due_at, NEW.sla_paused, NEW.first_response_at)
           IS DISTINCT FROM (OLD.status, OLD.subject, OLD.priority, OLD.category, OLD.tags, OLD.assignee_id, OLD.team_id, OLD.first_response_due_at, OLD.resolution_due_at, OLD.next_response_due_at, OLD.sla_paused, OLD.first_response_at) THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, priority, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'edit_card', NEW.id, 1, now(), now())
          ON CONFLICT (ticket_id, op) WHERE status = 'queued' AND priority = 1 DO NOTHING;
        END IF;
        IF NEW.status = 'closed' AND OLD.status <> 'closed' THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'close_topic', NEW.id, now(), now());
        END IF;
      END IF;
      IF NEW.status = 'resolved' AND OLD.status <> 'resolved' THEN
        SELECT cc.chat_id INTO chat FROM contact_chats cc WHERE cc.contact_id = NEW.contact_id AND cc.account_id = NEW.account_id;
        IF chat IS NOT NULL THEN
          INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, next_attempt_at, created_at)
          VALUES (NEW.workspace_id, NEW.account_id, chat, 'resolution_notice', NEW.id, now(), now());
        END IF;
      END IF;
      RETURN NULL;
    END $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE sla_marks; DROP TABLE sla_clocks;
    ALTER TABLE workspaces DROP COLUMN lead_chat_id, DROP COLUMN digest_time;
    DROP INDEX tickets_sla_at_risk; DROP INDEX tickets_sla_breached;
    ALTER TABLE tickets DROP COLUMN next_response_due_at, DROP COLUMN sla_paused, DROP COLUMN sla_warnings,
      DROP COLUMN sla_breaches, DROP COLUMN sla_at_risk, DROP COLUMN sla_breached;
  `);
}
