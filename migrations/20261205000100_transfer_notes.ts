import type { Knex } from 'knex';

// The transfer note (SPEC §4.4): every change of a ticket's assignee or team, whatever path made
// it (API, commands, the card's Take, auto-assignment, a later job), posts one internal line in
// the ticket's topic — "Reassigned from @ann to @bob: <note>". A trigger, like the card's, so no
// path can forget it. It is cosmetic (priority 1) and coalesced: one queued row per ticket keeps
// where the burst started (from_*) and where it is now (to_*), so any number of reassignments
// before the send worker gets to it cost one message. The note itself is set on the queued row
// by the tickets service (it is not a column); sandbox workspaces and tickets without a topic
// queue nothing (their card is posted with the current state anyway).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION telegram_transfer_note() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.account_id IS NULL OR NEW.topic_thread_id IS NULL OR NEW.topic_chat_id IS NULL
         OR (SELECT mode FROM workspaces WHERE id = NEW.workspace_id) <> 'live' THEN
        RETURN NULL;
      END IF;
      INSERT INTO telegram_sends (workspace_id, account_id, chat_id, op, ticket_id, priority, payload, next_attempt_at, created_at)
      VALUES (NEW.workspace_id, NEW.account_id, NEW.topic_chat_id, 'transfer_note', NEW.id, 1,
              jsonb_build_object('from_assignee_id', OLD.assignee_id, 'from_team_id', OLD.team_id,
                                 'to_assignee_id', NEW.assignee_id, 'to_team_id', NEW.team_id),
              now(), now())
      ON CONFLICT (ticket_id, op) WHERE status = 'queued' AND priority = 1
      DO UPDATE SET payload = telegram_sends.payload || jsonb_build_object('to_assignee_id', NEW.assignee_id, 'to_team_id', NEW.team_id);
      RETURN NULL;
    END $$;
    -- A cosmetic row is claimed only while no row of the same (ticket, kind) is in flight.
    CREATE INDEX telegram_sends_in_flight ON telegram_sends (ticket_id, op) WHERE status = 'sending';
    CREATE TRIGGER tickets_transfer_note AFTER UPDATE OF assignee_id, team_id ON tickets FOR EACH ROW
      WHEN (OLD.assignee_id IS DISTINCT FROM NEW.assignee_id OR OLD.team_id IS DISTINCT FROM NEW.team_id)
      EXECUTE FUNCTION telegram_transfer_note();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER tickets_transfer_note ON tickets;
    DROP INDEX telegram_sends_in_flight;
    DROP FUNCTION telegram_transfer_note();
  `);
}
