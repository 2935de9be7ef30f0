import type { Knex } from 'knex';

// Live ticket counts per (workspace, status), excluding archived tickets, kept by a trigger.
// The ticket list answers `total` for its commonest views (everything, or some statuses)
// from here instead of counting thousands of index entries per request.
//
// The rows are rewritten on every ticket creation and move: like ticket_numbers, a low
// fillfactor and eager autovacuum keep their old versions from piling up.
//
// Deadlocks: a move changes two rows (old status -1, new status +1). The trigger always
// touches them in status-name order, so two single-move transactions can never wait on each
// other in a cycle. Transactions that move several tickets (the auto-close job) move them all
// the same way (resolved → closed) and lock their tickets up front with SKIP LOCKED.
// Contention: a move holds its two counter rows until commit, so ticket creations (the 'open'
// row) wait for moves into or out of open in the same workspace: keep those transactions short.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE ticket_counts (
      workspace_id  text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      status        text NOT NULL,
      n             bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (workspace_id, status)
    ) WITH (fillfactor = 10, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500);

    -- An increment may create the row; a decrement only updates one (the row exists, or the
    -- workspace is being deleted and its counts already are).
    CREATE FUNCTION ticket_counts_add(ws text, st text, delta integer) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      IF delta > 0 THEN
        INSERT INTO ticket_counts AS c (workspace_id, status, n) VALUES (ws, st, delta)
        ON CONFLICT (workspace_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
      ELSE
        UPDATE ticket_counts SET n = n + delta WHERE workspace_id = ws AND status = st;
      END IF;
    END $$;

    CREATE FUNCTION ticket_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      was text := CASE WHEN TG_OP <> 'INSERT' AND OLD.archived_at IS NULL THEN OLD.status END;
      now_is text := CASE WHEN TG_OP <> 'DELETE' AND NEW.archived_at IS NULL THEN NEW.status END;
      ws text := CASE WHEN TG_OP = 'DELETE' THEN OLD.workspace_id ELSE NEW.workspace_id END;
    BEGIN
      IF was IS NOT DISTINCT FROM now_is THEN RETURN NULL; END IF;
      IF was IS NOT NULL AND (now_is IS NULL OR was < now_is) THEN
        PERFORM ticket_counts_add(ws, was, -1);
        IF now_is IS NOT NULL THEN PERFORM ticket_counts_add(ws, now_is, 1); END IF;
      ELSE
        PERFORM ticket_counts_add(ws, now_is, 1);
        IF was IS NOT NULL THEN PERFORM ticket_counts_add(ws, was, -1); END IF;
      END IF;
      RETURN NULL;
    END $$;

    CREATE TRIGGER ticket_counts_insert AFTER INSERT ON tickets
      FOR EACH ROW WHEN (NEW.archived_at IS NULL) EXECUTE FUNCTION ticket_counts_track();
    CREATE TRIGGER ticket_counts_update AFTER UPDATE OF status, archived_at ON tickets
      FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL))
      EXECUTE FUNCTION ticket_counts_track();
    CREATE TRIGGER ticket_counts_delete AFTER DELETE ON tickets
      FOR EACH ROW WHEN (OLD.archived_at IS NULL) EXECUTE FUNCTION ticket_counts_track();

    -- Rebuilds one workspace's counts from the tickets (after a bulk load with triggers off).
    CREATE FUNCTION ticket_counts_rebuild(ws text) RETURNS void LANGUAGE sql AS $$
      DELETE FROM ticket_counts WHERE workspace_id = ws;
      INSERT INTO ticket_counts (workspace_id, status, n)
        SELECT workspace_id, status, count(*) FROM tickets WHERE workspace_id = ws AND archived_at IS NULL GROUP BY 1, 2;
    $$;
    INSERT INTO ticket_counts (workspace_id, status, n)
      SELECT workspace_id, status, count(*) FROM tickets WHERE archived_at IS NULL GROUP BY 1, 2;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TRIGGER ticket_counts_insert ON tickets;
    DROP TRIGGER ticket_counts_update ON tickets;
    DROP TRIGGER ticket_counts_delete ON tickets;
    DROP FUNCTION ticket_counts_track();
    DROP FUNCTION ticket_counts_rebuild(text);
    DROP FUNCTION ticket_counts_add(text, text, integer);
    DROP TABLE ticket_counts;
  `);
}
