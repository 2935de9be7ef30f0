-- GET /v1/tickets?status=open&limit=50 (first page), as the service sends it since issue 18: two statements.
-- Variables (pgbench -D): key_hash (the bench key's hash as '\x<hex>'), interval (60: apiKeys.lastUsedWriteIntervalSeconds),
-- ws, status (open), limit (50), limit1 (51), offset (0).
-- Run: pgbench -n -M prepared -c 10 -T 10 -f bench/sql/ticket-list.sql -D key_hash=... -D ws=... -D status=open -D limit=50 -D limit1=51 -D offset=0 -D interval=60 <url>

-- 1. Authentication + rate limit: apiKeyStore.authenticate (src/auth/api-key-store.ts).
WITH k AS (
   SELECT k.*, w.name AS ws_name, w.mode AS ws_mode
   FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
   WHERE k.key_hash = :key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
 ), hit AS (
   INSERT INTO rate_limit_counters AS c (bucket, window_start, count)
   SELECT 'key:' || k.id, date_trunc('minute', now()), 1 FROM k
   ON CONFLICT (bucket, window_start) DO UPDATE SET count = c.count + 1
   RETURNING count, window_start
 ), touched AS (  -- runs although nothing reads it: data-modifying CTEs always do
   UPDATE api_keys SET last_used_at = now()
   FROM k
   WHERE api_keys.id = k.id
     AND (k.last_used_at IS NULL OR k.last_used_at < now() - make_interval(secs => :interval))
   RETURNING api_keys.id
 )
 SELECT k.*, hit.count AS window_count,
        ceil(extract(epoch FROM hit.window_start + interval '1 minute' - now()))::int AS window_reset_seconds
 FROM k, hit;

-- 2. The page (items as JSON text, total, whether there is more, the cursor's sort values) in one statement:
--    listPageStatement (src/tickets/ticket-list.ts), prepared by the service as tickets_list_8fd2d03580df914132d9.
WITH p AS (
  SELECT tickets.id, tickets.number, tickets.subject, tickets.description, tickets.status, tickets.priority, tickets.priority_rank, tickets.category, tickets.tags, tickets.custom_fields, tickets.assignee_id, tickets.team_id, tickets.account_id, tickets.topic_chat_id, tickets.topic_thread_id, tickets.created_at, tickets.updated_at, tickets.first_response_at, tickets.resolved_at, tickets.closed_at, tickets.reopened_count, tickets.archived_at, tickets.sla_policy_id, tickets.first_response_due_at, tickets.next_response_due_at, tickets.resolution_due_at, tickets.sla_due_at, tickets.sla_paused, tickets.sla_warnings, tickets.sla_breaches, contacts.id AS contact__id, contacts.telegram_user_id AS contact__telegram_user_id, contacts.username AS contact__username, contacts.name AS contact__name, contacts.first_name AS contact__first_name, contacts.last_name AS contact__last_name, contacts.email AS contact__email, contacts.phone AS contact__phone, contacts.tags AS contact__tags, contacts.custom_fields AS contact__custom_fields, contacts.blocked AS contact__blocked, contacts.created_at AS contact__created_at, contacts.updated_at AS contact__updated_at
    FROM tickets LEFT JOIN contacts ON contacts.id = tickets.contact_id
   WHERE tickets.workspace_id = :ws AND tickets.archived_at IS NULL AND tickets.status = :status
   ORDER BY tickets.created_at DESC, tickets.id DESC
   LIMIT :limit1 OFFSET :offset
), items AS (
  SELECT row_number() OVER (ORDER BY p.created_at DESC, p.id DESC) AS rn, row_to_json(j)::text AS item,
         json_build_array(CASE WHEN isfinite(p.created_at) THEN to_json(to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"')) ELSE to_json(p.created_at::text) END, to_json(p.id))::text AS sort_values
    FROM p
  CROSS JOIN LATERAL (SELECT p.contact__id AS id, p.contact__telegram_user_id AS telegram_user_id, p.contact__username AS username,
         p.contact__name AS name, p.contact__first_name AS first_name, p.contact__last_name AS last_name, p.contact__email AS email,
         p.contact__phone AS phone, p.contact__tags AS tags, p.contact__custom_fields AS custom_fields, p.contact__blocked AS blocked,
         to_char(p.contact__created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS created_at, to_char(p.contact__updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS updated_at) c
  CROSS JOIN LATERAL (SELECT p.topic_chat_id AS chat_id, p.topic_thread_id AS message_thread_id) tp
  CROSS JOIN LATERAL (SELECT p.sla_policy_id AS policy_id, to_char(p.first_response_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS first_response_due_at,
         to_char(p.next_response_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS next_response_due_at, to_char(p.resolution_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS resolution_due_at,
         p.sla_paused AS paused, CASE WHEN p.sla_warnings = '[]'::jsonb THEN '[]'::json ELSE (SELECT json_agg(json_build_object('target', m->'target', 'warned_at', m->'at') ORDER BY i) FROM jsonb_array_elements(p.sla_warnings) WITH ORDINALITY AS x(m, i)) END AS warnings, CASE WHEN p.sla_breaches = '[]'::jsonb THEN '[]'::json ELSE (SELECT json_agg(json_build_object('target', m->'target', 'breached_at', m->'at') ORDER BY i) FROM jsonb_array_elements(p.sla_breaches) WITH ORDINALITY AS x(m, i)) END AS breaches) s
  CROSS JOIN LATERAL (SELECT p.id AS id, p.number AS number, p.subject AS subject, p.description AS description, p.status AS status,
         p.priority AS priority, p.category AS category, p.tags AS tags, p.custom_fields AS custom_fields, row_to_json(c) AS contact,
         p.assignee_id AS assignee_id, p.team_id AS team_id, p.account_id AS account_id,
         CASE WHEN p.topic_thread_id IS NOT NULL AND p.topic_chat_id IS NOT NULL THEN row_to_json(tp) END AS topic,
         to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS created_at, to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS updated_at, to_char(p.first_response_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS first_response_at,
         to_char(p.resolved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS resolved_at, to_char(p.closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"') AS closed_at, p.reopened_count AS reopened_count,
         p.archived_at IS NOT NULL AS archived, row_to_json(s) AS sla) j
)
SELECT (SELECT COALESCE(sum(n), 0)::bigint FROM ticket_counts WHERE workspace_id = :ws AND status = :status) AS total, count(*)::int AS fetched,
       COALESCE(string_agg(item, ',' ORDER BY rn) FILTER (WHERE rn <= :limit), '') AS items,
       min(sort_values) FILTER (WHERE rn = :limit) AS last_sort_values
  FROM items;
