import type { Knex } from 'knex';

// Outbound webhooks (SPEC §7): endpoints, the fan-out queue fed from the events outbox,
// and one delivery row per (event, endpoint) with its attempt log.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE webhook_endpoints (
      id                          text PRIMARY KEY,
      workspace_id                text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      url                         text NOT NULL,
      -- Event names, or {'*'} for every event.
      events                      text[] NOT NULL,
      description                 text,
      enabled                     boolean NOT NULL DEFAULT true,
      -- Kept in clear text: signing needs the secret itself (it is never returned after
      -- create/rotate and never logged).
      secret                      text NOT NULL,
      previous_secret             text,
      previous_secret_expires_at  timestamptz(3),
      -- Every period the endpoint was enabled: an event belongs to it when it happened inside
      -- one, however late the fan-out runs (and whatever was toggled since). One range per
      -- enable: small.
      enabled_periods             tstzmultirange NOT NULL DEFAULT '{}',
      disabled_reason             text,
      disabled_at                 timestamptz(3),
      -- Start of the current run of failed attempts; cleared by any success.
      failing_since               timestamptz(3),
      created_at                  timestamptz(3) NOT NULL,
      updated_at                  timestamptz(3) NOT NULL,
      UNIQUE (workspace_id, id)
    );
    CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, created_at, id);

    -- Events not yet fanned out to endpoints. A trigger fills it in the transaction that
    -- writes the event, so every insert path is covered; the fan-out deletes what it handles
    -- in the transaction that creates the deliveries. Small and short-lived: never paged by id
    -- (a slow transaction can commit a lower id later), always claimed with SKIP LOCKED.
    CREATE TABLE webhook_fanout_queue (
      event_id  text PRIMARY KEY
    );
    ALTER TABLE webhook_fanout_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

    CREATE FUNCTION queue_event_for_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO webhook_fanout_queue (event_id) VALUES (NEW.id);
      RETURN NULL;
    END $$;
    -- A ping goes to one endpoint only and is written with its delivery: never fanned out.
    CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events
      FOR EACH ROW WHEN (NEW.type <> 'ping') EXECUTE FUNCTION queue_event_for_webhooks();

    CREATE TABLE webhook_deliveries (
      id               text PRIMARY KEY,
      workspace_id     text NOT NULL,
      endpoint_id      text NOT NULL,
      event_id         text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
      event_type       text NOT NULL,
      -- pending: no attempt finished yet · failed: the last attempt failed, another is due at
      -- next_attempt_at · succeeded · dead: no automatic attempt left (replay to send again).
      status           text NOT NULL CHECK (status IN ('pending', 'failed', 'succeeded', 'dead')),
      -- Due time while pending/failed. A claimed delivery's next_attempt_at is pushed to the end
      -- of its lease, so a worker that dies mid-delivery leaves it due again (never lost).
      next_attempt_at  timestamptz(3),
      -- Set while a worker holds the delivery; still set at the next claim = that worker died.
      in_flight_since  timestamptz(3),
      -- Attempts ever started: the fencing token that keeps a late worker from recording over a newer claim.
      attempt_count    integer NOT NULL DEFAULT 0,
      -- Failed attempts since the schedule (re)started: indexes the retry schedule; a replay resets it.
      schedule_step    integer NOT NULL DEFAULT 0,
      -- Its endpoint is disabled: kept as it is, resumed when the endpoint is enabled again.
      paused           boolean NOT NULL DEFAULT false,
      -- [{at, status_code, duration_ms, error, response_excerpt}], oldest first (the last 50).
      attempts         jsonb NOT NULL DEFAULT '[]',
      created_at       timestamptz(3) NOT NULL,
      updated_at       timestamptz(3) NOT NULL,
      FOREIGN KEY (workspace_id, endpoint_id) REFERENCES webhook_endpoints (workspace_id, id) ON DELETE CASCADE,
      -- Fan-out is idempotent: one delivery per event and endpoint.
      UNIQUE (endpoint_id, event_id)
    );
    -- The workers' queue: due deliveries of enabled endpoints, in due order.
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
      WHERE status IN ('pending', 'failed') AND NOT paused;
    -- An endpoint's delivery log, newest first.
    CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
    CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
    -- Old finished deliveries are removed by the cleanup job.
    CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE status IN ('succeeded', 'dead');
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE webhook_deliveries;
    DROP TRIGGER events_webhook_fanout ON events;
    DROP FUNCTION queue_event_for_webhooks();
    DROP TABLE webhook_fanout_queue;
    DROP TABLE webhook_endpoints;
  `);
}
