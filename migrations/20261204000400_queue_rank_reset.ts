import type { Knex } from 'knex';

// A manual queue rank (tickets.queue_rank, POST /v1/queues/{team_id}/reorder) belongs to the
// queue it was given in: a ticket that leaves it (assigned, resolved or closed, archived, or
// moved to another team) loses its rank, so it does not jump ahead when it enters a queue again.
// Also keeps a rank from being written onto a ticket that left the queue meanwhile.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION tickets_reset_queue_rank() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.queue_rank IS NOT NULL AND (
           NEW.assignee_id IS NOT NULL
        OR NEW.status NOT IN ('open', 'in_progress', 'waiting_on_customer')
        OR NEW.archived_at IS NOT NULL
        OR NEW.team_id IS DISTINCT FROM OLD.team_id) THEN
        NEW.queue_rank := NULL;
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER tickets_queue_rank BEFORE UPDATE OF assignee_id, status, team_id, archived_at, queue_rank ON tickets
      FOR EACH ROW WHEN (NEW.queue_rank IS NOT NULL) EXECUTE FUNCTION tickets_reset_queue_rank();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER tickets_queue_rank ON tickets; DROP FUNCTION tickets_reset_queue_rank();');
}
