import type { Knex } from 'knex';

// Metrics facts (SPEC §6), owned by the metrics module: one row per ticket, written when the
// moment happens (first response, resolution) with wall and business seconds of the ticket's
// SLA calendar, and who/which team/priority it was at that moment. Reports read these facts
// instead of replaying history. A narrow table of its own (not columns on tickets) keeps the
// hot ticket row and its many indexes untouched, and its covering indexes make a month of
// figures an index-only scan. ticket_next_responses keeps each answered next-response cycle
// (its due time and when it was answered) for SLA compliance of that target.
// Existing tickets are backfilled: wall seconds, business = wall (the calendar then is unknown),
// the assignee as first responder and resolver.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE ticket_metrics (
      ticket_id                  text PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
      workspace_id               text NOT NULL,
      created_at                 timestamptz(3) NOT NULL,
      first_response_at          timestamptz(3),
      first_response_s           double precision,
      first_response_business_s  double precision,
      first_responder_id         text,
      first_response_team_id     text,
      first_response_priority    text,
      resolved_at                timestamptz(3),
      resolution_s               double precision,
      resolution_business_s      double precision,
      resolver_id                text,
      resolution_team_id         text,
      resolution_priority        text
    );
    CREATE INDEX ticket_metrics_first_response ON ticket_metrics (workspace_id, first_response_at)
      INCLUDE (first_response_s, first_response_business_s, first_responder_id, first_response_team_id, first_response_priority)
      WHERE first_response_at IS NOT NULL;
    CREATE INDEX ticket_metrics_resolution ON ticket_metrics (workspace_id, resolved_at)
      INCLUDE (resolution_s, resolution_business_s, resolver_id, resolution_team_id, resolution_priority)
      WHERE resolved_at IS NOT NULL;

    CREATE TABLE ticket_next_responses (
      ticket_id     text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
      cycle         integer NOT NULL,
      workspace_id  text NOT NULL,
      due_at        timestamptz(3) NOT NULL,
      answered_at   timestamptz(3) NOT NULL,
      PRIMARY KEY (ticket_id, cycle)
    );
    CREATE INDEX ticket_next_responses_due ON ticket_next_responses (workspace_id, due_at);

    -- CSAT over a range, and the SLA targets by due time.
    CREATE INDEX tickets_csat ON tickets (workspace_id, csat_at) INCLUDE (csat_rating) WHERE csat_at IS NOT NULL;
    CREATE INDEX tickets_first_response_due ON tickets (workspace_id, first_response_due_at) WHERE first_response_due_at IS NOT NULL;
    CREATE INDEX tickets_resolution_due ON tickets (workspace_id, resolution_due_at) WHERE resolution_due_at IS NOT NULL;

    INSERT INTO ticket_metrics (ticket_id, workspace_id, created_at,
        first_response_at, first_response_s, first_response_business_s, first_responder_id, first_response_team_id, first_response_priority,
        resolved_at, resolution_s, resolution_business_s, resolver_id, resolution_team_id, resolution_priority)
    SELECT id, workspace_id, created_at,
        first_response_at, fr, fr, CASE WHEN first_response_at IS NOT NULL THEN assignee_id END,
        CASE WHEN first_response_at IS NOT NULL THEN team_id END, CASE WHEN first_response_at IS NOT NULL THEN priority END,
        res_at, res, res, CASE WHEN res_at IS NOT NULL THEN assignee_id END,
        CASE WHEN res_at IS NOT NULL THEN team_id END, CASE WHEN res_at IS NOT NULL THEN priority END
      FROM (SELECT t.*, greatest(0, extract(epoch FROM first_response_at - created_at))::float8 AS fr,
                   CASE WHEN status IN ('resolved', 'closed') THEN resolved_at END AS res_at,
                   CASE WHEN status IN ('resolved', 'closed') THEN greatest(0, extract(epoch FROM resolved_at - created_at))::float8 END AS res
              FROM tickets t) t
     WHERE first_response_at IS NOT NULL OR res_at IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE ticket_next_responses; DROP TABLE ticket_metrics;
    DROP INDEX tickets_csat; DROP INDEX tickets_first_response_due; DROP INDEX tickets_resolution_due;
  `);
}
