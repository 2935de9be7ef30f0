/**
 * GET /v1/tickets built by PostgreSQL: one statement answers a whole page — the items as the
 * API shows them (JSON text, exactly presentTicket's output, keys in its order), the total,
 * whether there is more and the last row's sort values for the cursor — so Node neither parses
 * 50 rows of dates nor re-serialises them; the route splices the items text into the body.
 *
 * The statement text depends on which filters are given, not on their values (several statuses
 * are bound as one array); the common shapes' texts are prepared statements named after their
 * hash (prepared.ts: one name, one text), the rest go unnamed (preparedShape).
 *
 * paginate() and presentTicket stay the reference (MCP's list_tickets uses them); the property
 * test test/integration/ticket-list-sql.test.ts holds this to them.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import { afterSql, checkPageRequest, cursorFromValues, decodeCursor, type PageRequest, type SortColumn } from '../kernel/pagination.js';
import type { ListTicketsQuery } from './ticket-schemas.js';
import { countedFromCounters, LIST_SORTS } from './ticket-store.js';

/**
 * A timestamptz as Date#toISOString() writes it (the columns are timestamptz(3): milliseconds
 * exact). The colons are quoted literals so that pgbench, which reads `:name` as a variable even
 * inside a string, runs the very same text (bench/limit.ts captures it for `npm run bench:tickets`).
 */
const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.MS"Z"')`;

/** SLA marks [{target, at}] as the API shows them: [{target, <key>}]. */
const marks = (col: string, key: string) =>
  `CASE WHEN ${col} = '[]'::jsonb THEN '[]'::json ELSE (SELECT json_agg(json_build_object('target', m->'target', '${key}', m->'at') ORDER BY i) FROM jsonb_array_elements(${col}) WITH ORDINALITY AS x(m, i)) END`;

/**
 * presentTicket(toTicket(row), contactOf(row)) as laterals over the page row `p`: each object
 * is a row with its keys as column names, in presentTicket's order, and row_to_json writes it
 * compactly (json_build_object would put " : " and ", " between every key and value). PostgreSQL
 * flattens the laterals into one projection, names kept. The ticket is row_to_json(j).
 */
const TICKET_JSON_FROM = `
  CROSS JOIN LATERAL (SELECT p.contact__id AS id, p.contact__telegram_user_id AS telegram_user_id, p.contact__username AS username,
         p.contact__name AS name, p.contact__first_name AS first_name, p.contact__last_name AS last_name, p.contact__email AS email,
         p.contact__phone AS phone, p.contact__tags AS tags, p.contact__custom_fields AS custom_fields, p.contact__blocked AS blocked,
         ${iso('p.contact__created_at')} AS created_at, ${iso('p.contact__updated_at')} AS updated_at) c
  CROSS JOIN LATERAL (SELECT p.topic_chat_id AS chat_id, p.topic_thread_id AS message_thread_id) tp
  CROSS JOIN LATERAL (SELECT p.sla_policy_id AS policy_id, ${iso('p.first_response_due_at')} AS first_response_due_at,
         ${iso('p.next_response_due_at')} AS next_response_due_at, ${iso('p.resolution_due_at')} AS resolution_due_at,
         p.sla_paused AS paused, ${marks('p.sla_warnings', 'warned_at')} AS warnings, ${marks('p.sla_breaches', 'breached_at')} AS breaches) s
  CROSS JOIN LATERAL (SELECT p.id AS id, p.number AS number, p.subject AS subject, p.description AS description, p.status AS status,
         p.priority AS priority, p.category AS category, p.tags AS tags, p.custom_fields AS custom_fields, row_to_json(c) AS contact,
         p.assignee_id AS assignee_id, p.team_id AS team_id, p.account_id AS account_id,
         CASE WHEN p.topic_thread_id IS NOT NULL AND p.topic_chat_id IS NOT NULL THEN row_to_json(tp) END AS topic,
         ${iso('p.created_at')} AS created_at, ${iso('p.updated_at')} AS updated_at, ${iso('p.first_response_at')} AS first_response_at,
         ${iso('p.resolved_at')} AS resolved_at, ${iso('p.closed_at')} AS closed_at, p.reopened_count AS reopened_count,
         p.archived_at IS NOT NULL AS archived, row_to_json(s) AS sla) j`;

/** The columns the JSON is built from (the page subquery carries only these). */
const PAGE_COLUMNS = [
  'id', 'number', 'subject', 'description', 'status', 'priority', 'priority_rank', 'category', 'tags', 'custom_fields',
  'assignee_id', 'team_id', 'account_id', 'topic_chat_id', 'topic_thread_id', 'created_at', 'updated_at', 'first_response_at',
  'resolved_at', 'closed_at', 'reopened_count', 'archived_at', 'sla_policy_id', 'first_response_due_at', 'next_response_due_at',
  'resolution_due_at', 'sla_due_at', 'sla_paused', 'sla_warnings', 'sla_breaches',
].map((c) => `tickets.${c}`).concat([
  'id', 'telegram_user_id', 'username', 'name', 'first_name', 'last_name', 'email', 'phone', 'tags', 'custom_fields', 'blocked',
  'created_at', 'updated_at',
].map((c) => `contacts.${c} AS contact__${c}`)).join(', ');

/** A sort value in the cursor as encodeCursor writes it: dates as ISO text, 'infinity' for the sentinel. */
function cursorValue(column: string): string {
  const c = `p.${column.split('.').pop()}`;
  if (column.endsWith('_at')) return `CASE WHEN isfinite(${c}) THEN to_json(${iso(c)}) ELSE to_json(${c}::text) END`;
  return `to_json(${c})`;
}

/** WHERE clauses and their bindings, in order. */
interface Filter { sql: string[]; bindings: Knex.RawBinding[] }

/** One value: `= ?`; several: `= ANY(?)` (a second value must not change the plan of the first). */
function inList(f: Filter, column: string, csv: string): void {
  const values = [...new Set(csv.split(','))];
  if (values.length === 1) f.sql.push(`${column} = ?`);
  else f.sql.push(`${column} = ANY(?::text[])`);
  f.bindings.push(values.length === 1 ? values[0] : values as unknown as Knex.RawBinding);
}

/** The same filters as ticketStore.listQuery, as SQL text with `?` bindings. */
function filters(workspaceId: string, f: ListTicketsQuery): Filter {
  const w: Filter = { sql: ['tickets.workspace_id = ?'], bindings: [workspaceId] };
  w.sql.push(f.archived ? 'tickets.archived_at IS NOT NULL' : 'tickets.archived_at IS NULL');
  if (f.status) inList(w, 'tickets.status', f.status);
  if (f.priority) inList(w, 'tickets.priority', f.priority);
  if (f.assignee_id === 'none') w.sql.push('tickets.assignee_id IS NULL');
  else if (f.assignee_id) { w.sql.push('tickets.assignee_id = ?'); w.bindings.push(f.assignee_id); }
  if (f.team_id === 'none') w.sql.push('tickets.team_id IS NULL');
  else if (f.team_id) { w.sql.push('tickets.team_id = ?'); w.bindings.push(f.team_id); }
  if (f.contact_id) { w.sql.push('tickets.contact_id = ?'); w.bindings.push(f.contact_id); }
  if (f.sla === 'at_risk') w.sql.push('tickets.sla_at_risk = true');
  if (f.sla === 'breached') w.sql.push('tickets.sla_breached = true');
  if (f.tag) { w.sql.push('tickets.tags @> ARRAY[?]::text[]'); w.bindings.push(f.tag.trim().toLowerCase()); }
  if (f.created_after) { w.sql.push('tickets.created_at >= ?'); w.bindings.push(f.created_after); }
  if (f.created_before) { w.sql.push('tickets.created_at < ?'); w.bindings.push(f.created_before); }
  if (f.updated_after) { w.sql.push('tickets.updated_at >= ?'); w.bindings.push(f.updated_after); }
  if (f.q) {
    const number = /^#?(\d{1,9})$/.exec(f.q.trim());
    w.sql.push(`(tickets.search @@ websearch_to_tsquery('simple', ?)
      OR tickets.id IN (SELECT ticket_id FROM messages WHERE messages.workspace_id = ? AND messages.search @@ websearch_to_tsquery('simple', ?))${number ? ' OR tickets.number = ?' : ''})`);
    w.bindings.push(f.q, workspaceId, f.q);
    if (number) w.bindings.push(Number(number[1]));
  }
  return w;
}

/** Filters that make a shape unprepared (rare views: planned each time, as before). */
const RARE_FILTERS = ['priority', 'contact_id', 'sla', 'tag', 'created_after', 'created_before', 'updated_after', 'q'] as const;

/**
 * Whether this view's statement is prepared: the status views (any sort, archived or not, by
 * offset or cursor), optionally narrowed to one assignee or one team (an agent's views). Each
 * prepared text stays in every pooled connection for its life, so the set is kept small: at most
 * 3 status forms x 2 x 4 sorts x 2 x 5 = 240 texts, a handful in practice; the rest (filter
 * combinations a client can multiply at will, full-text searches) are sent unnamed.
 */
function preparedShape(f: ListTicketsQuery): boolean {
  if (RARE_FILTERS.some((k) => f[k] !== undefined)) return false;
  return f.assignee_id === undefined || f.team_id === undefined;
}

/** A page as PostgreSQL built it: `items` is the JSON array's text. */
export interface PageJson {
  items: string;
  total: number;
  limit: number;
  offset: number;
  has_more: boolean;
  next_cursor: string | null;
}

/** The statement for a page, its bindings, and the name it is prepared under (null: unnamed). */
export function listPageStatement(workspaceId: string, f: ListTicketsQuery, req: PageRequest): { sql: string; bindings: Knex.RawBinding[]; name: string | null; order: readonly SortColumn[] } {
  checkPageRequest(req);
  const order = LIST_SORTS[f.sort ?? '-created_at'];
  const where = filters(workspaceId, f);
  const page: Filter = { sql: [...where.sql], bindings: [...where.bindings] };
  if (req.cursor) {
    const after = afterSql(order, decodeCursor(req.cursor, order));
    page.sql.push(after.sql);
    page.bindings.push(...after.bindings);
  }
  const orderBy = (prefix: (c: string) => string) => order.map(([c, d]) => `${prefix(c)} ${d.toUpperCase()}`).join(', ');
  let total: string;
  let totalBindings: Knex.RawBinding[];
  if (countedFromCounters(f)) {
    const statuses = f.status ? [...new Set(f.status.split(','))] : null;
    total = `SELECT COALESCE(sum(n), 0)::bigint FROM ticket_counts WHERE workspace_id = ?${statuses ? (statuses.length === 1 ? ' AND status = ?' : ' AND status = ANY(?::text[])') : ''}`;
    totalBindings = [workspaceId, ...(statuses ? [statuses.length === 1 ? statuses[0] : statuses as unknown as Knex.RawBinding] : [])];
  } else {
    total = `SELECT count(*) FROM tickets WHERE ${where.sql.join(' AND ')}`;
    totalBindings = where.bindings;
  }
  // The page (limit + 1 rows, to know whether there is more) is chosen on the index and
  // fetched first; only its rows are turned into JSON. The cursor is the sort values of the
  // page's last row (rn = limit), only needed when there is more.
  const sql = `WITH p AS (
  SELECT ${PAGE_COLUMNS}
    FROM tickets LEFT JOIN contacts ON contacts.id = tickets.contact_id
   WHERE ${page.sql.join(' AND ')}
   ORDER BY ${orderBy((c) => c)}
   LIMIT ? OFFSET ?
), items AS (
  SELECT row_number() OVER (ORDER BY ${orderBy((c) => `p.${c.split('.').pop()}`)}) AS rn, row_to_json(j)::text AS item,
         json_build_array(${order.map(([c]) => cursorValue(c)).join(', ')})::text AS sort_values
    FROM p${TICKET_JSON_FROM}
)
SELECT (${total}) AS total, count(*)::int AS fetched,
       COALESCE(string_agg(item, ',' ORDER BY rn) FILTER (WHERE rn <= ?), '') AS items,
       min(sort_values) FILTER (WHERE rn = ?) AS last_sort_values
  FROM items`;
  const bindings = [...page.bindings, req.limit + 1, req.cursor ? 0 : req.offset, ...totalBindings, req.limit, req.limit];
  const name = preparedShape(f) ? `tickets_list_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}` : null;
  return { sql, bindings, name, order };
}

/** One page of GET /v1/tickets in one statement, the items already JSON text. */
export async function listPageJson(db: Db, workspaceId: string, f: ListTicketsQuery, req: PageRequest): Promise<PageJson> {
  const { sql, bindings, name, order } = listPageStatement(workspaceId, f, req);
  const result = name ? await prepared(db, name, sql, bindings) : await db.raw(sql, bindings);
  const row = result.rows[0] as { total: number; fetched: number; items: string; last_sort_values: string | null };
  const hasMore = row.fetched > req.limit;
  return {
    items: `[${row.items}]`,
    total: Number(row.total),
    limit: req.limit,
    offset: req.cursor ? 0 : req.offset,
    has_more: hasMore,
    next_cursor: hasMore && row.last_sort_values ? cursorFromValues(order, JSON.parse(row.last_sort_values) as unknown[]) : null,
  };
}
