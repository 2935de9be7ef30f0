-- POST /v1/tickets with an Idempotency-Key and a contact_id, statement by statement as the
-- service sends them (issue 18), for `pgbench -M prepared -f bench/sql/ticket-create.sql`.
-- Variables (-D): ws (workspace id), kh (the API key's key_hash, hex), contact (a contact id
-- of ws). Each transaction creates one ticket with a fresh key; numbering as in the service.
\set k random(1, 9000000000000000000)

-- src/auth/api-key-store.ts authenticate(): the key, its rate-limit window, last use (autocommit).
WITH k AS (
  SELECT k.*, w.name AS ws_name, w.mode AS ws_mode
  FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
  WHERE k.key_hash = decode(:kh, 'hex') AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
), hit AS (
  INSERT INTO rate_limit_counters AS c (bucket, window_start, count)
  SELECT 'key:' || k.id, date_trunc('minute', now()), 1 FROM k
  ON CONFLICT (bucket, window_start) DO UPDATE SET count = c.count + 1
  RETURNING count, window_start
), touched AS (
  UPDATE api_keys SET last_used_at = now()
  FROM k
  WHERE api_keys.id = k.id
    AND (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => 60))
  RETURNING api_keys.id
)
SELECT k.*, hit.count AS window_count,
       ceil(extract(epoch FROM hit.window_start + interval '1 minute' - now()))::int AS window_reset_seconds
FROM k, hit;

-- src/http/idempotency.ts: inTransaction (knex transaction)
BEGIN;

-- src/http/idempotency-keys.ts CLAIM (claim())
WITH cfg AS MATERIALIZED (
  SELECT current_setting('lock_timeout') AS previous, set_config('lock_timeout', '5000ms', true) AS bounded
),
ins AS (
  INSERT INTO idempotency_keys AS i (workspace_id, key, fingerprint, method, path, response_status)
  SELECT :ws, 'pgbench-' || :k, md5(:k::text), 'POST', '/v1/tickets', 0 FROM cfg
  ON CONFLICT (workspace_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
        response_status = 0, response_type = NULL, response_headers = '{}', response_body = NULL, created_at = now()
    WHERE i.created_at < now() - make_interval(hours => 24)
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS claimed,
       set_config('lock_timeout', (SELECT previous FROM cfg) || CASE WHEN (SELECT count(*) FROM ins) >= 0 THEN '' END, true) AS restored;

-- src/http/idempotency-keys.ts attemptInSavepoint()
SAVEPOINT idempotent_handler;

-- src/accounts/account-store.ts contactWithPreferred() (ticket-service contactAndAccount)
SELECT c.*, to_jsonb(a) AS preferred_account
  FROM contacts c
  LEFT JOIN LATERAL (
    SELECT a.id, a.workspace_id, a.name, a.bot_user_id, a.bot_username, a.support_chat_id, a.is_default
      FROM accounts a
     WHERE a.workspace_id = c.workspace_id
       AND a.deleted_at IS NULL
       AND (a.is_default OR a.id = (SELECT cc.account_id FROM contact_chats cc WHERE cc.contact_id = c.id ORDER BY cc.last_inbound_at DESC LIMIT 1))
     ORDER BY a.is_default
     LIMIT 1
  ) a ON true
 WHERE c.workspace_id = :ws AND c.id = :contact;

-- src/sla/sla-policy-store.ts POLICY_DEFAULT (SLA port planNew -> policyFor, no team)
SELECT * FROM sla_policies WHERE workspace_id = :ws AND archived_at IS NULL AND is_default LIMIT 1;

-- src/tickets/ticket-store.ts INSERT_NUMBERED: number (locks ticket_numbers until COMMIT),
-- ticket, ticket.created event, SLA clocks row
WITH n AS (
  INSERT INTO ticket_numbers AS c (workspace_id, last_number) VALUES (:ws, 1)
  ON CONFLICT (workspace_id) DO UPDATE SET last_number = c.last_number + 1
  RETURNING last_number
),
t AS (
  INSERT INTO tickets (id, workspace_id, number, subject, description, status, priority, category, tags, custom_fields,
                       contact_id, team_id, assignee_id, account_id, created_at, updated_at,
                       sla_policy_id, first_response_due_at, next_response_due_at, resolution_due_at, sla_due_at, sla_paused, sla_at_risk)
  SELECT 'tkt_' || :k, :ws, n.last_number, 'Bench ticket', 'Created by the benchmark', 'open', 'high', NULL, '{bench}'::text[], '{}'::jsonb,
         :contact, NULL, NULL, NULL, now(), now(),
         NULL, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, 'infinity'::timestamptz, false, false FROM n
  RETURNING id, workspace_id, number, subject, description, status, priority, category, tags, custom_fields, contact_id, team_id, assignee_id, account_id, topic_chat_id, topic_thread_id, sla_policy_id, first_response_due_at, next_response_due_at, resolution_due_at, sla_due_at, sla_paused, sla_warnings, sla_breaches, sla_at_risk, sla_breached, unassigned_since, priority_rank, first_response_at, resolved_at, closed_at, reopened_count, archived_at, created_at, updated_at
),
e AS (
  INSERT INTO events (id, workspace_id, type, ticket_id, contact_id, message_id, actor_type, actor_id, payload, detail, created_at)
  SELECT 'evt_' || :k, :ws, 'ticket.created', t.id, :contact, NULL, 'api', 'key', jsonb_set('{"id":"x","number":0,"subject":"Bench ticket"}'::jsonb, '{number}', to_jsonb(t.number)), '{}'::jsonb, now() FROM t
),
s AS (
  INSERT INTO sla_clocks SELECT r.* FROM jsonb_populate_record(NULL::sla_clocks,
    jsonb_build_object('ticket_id', 'tkt_' || :k, 'workspace_id', :ws::text, 'policy_id', NULL, 'first_done', false, 'first_warned', false, 'first_breached', false,
      'next_cycle', 0, 'next_warned', false, 'next_breached', false, 'res_elapsed_ms', 0, 'res_running_since', now(), 'res_done', false,
      'res_warned', false, 'res_breached', false)) r WHERE r.ticket_id IS NOT NULL
)
SELECT * FROM t;

-- src/http/idempotency-keys.ts SAVE (save(): the stored response, ~1 kB of JSON)
UPDATE idempotency_keys SET response_status = 201, response_type = 'application/json', response_headers = '{"location":"/v1/tickets/x"}'::jsonb,
       response_body = repeat('x', 1000)
 WHERE workspace_id = :ws AND key = 'pgbench-' || :k;

-- src/http/idempotency.ts: end of inTransaction
COMMIT;
