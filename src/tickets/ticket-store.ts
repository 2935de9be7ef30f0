import type { Db, Knex } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import type { Contact } from '../contacts/contact.js';
import type { eventRow } from '../events/event-outbox.js';
import type { ListTicketsQuery } from './ticket-schemas.js';
import type { Priority, TicketStatus } from './ticket-status.js';

export interface Ticket {
  id: string;
  workspaceId: string;
  number: number;
  subject: string;
  description: string;
  status: TicketStatus;
  priority: Priority;
  category: string | null;
  tags: string[];
  customFields: Record<string, unknown>;
  contactId: string;
  teamId: string | null;
  assigneeId: string | null;
  accountId: string | null;
  topicChatId: number | null;
  topicThreadId: number | null;
  slaPolicyId: string | null;
  firstResponseDueAt: Date | null;
  nextResponseDueAt: Date | null;
  resolutionDueAt: Date | null;
  /** Earliest due time of a running SLA target; null: none runs. */
  slaDueAt: Date | null;
  slaPaused: boolean;
  slaWarnings: SlaRecord[];
  slaBreaches: SlaRecord[];
  slaAtRisk: boolean;
  slaBreached: boolean;
  /** Since when nobody is assigned (null while assigned); kept by a trigger (migration 20261207000400). */
  unassignedSince: Date | null;
  firstResponseAt: Date | null;
  resolvedAt: Date | null;
  closedAt: Date | null;
  reopenedCount: number;
  archivedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export type SlaTargetName = 'first_response' | 'next_response' | 'resolution';

/** A warning or breach the sla module has just recorded (once) for a ticket. */
export interface SlaMark {
  target: SlaTargetName;
  kind: 'warning' | 'breach';
  at: Date;
  dueAt: Date;
}

/** A new ticket's SLA clocks: the sla module's INSERT (two `?`: the row as jsonb, the ticket id) and the row. */
export interface NewClocks {
  insertSql: string;
  row: Record<string, unknown>;
}

/** What the ticket row shows of its clocks. */
export interface SlaFields {
  slaPolicyId: string | null;
  firstResponseDueAt: Date | null;
  nextResponseDueAt: Date | null;
  resolutionDueAt: Date | null;
  slaPaused: boolean;
  /** Earliest due time of a running target (null: none; the sla_due sort puts those last). */
  slaDueAt: Date | null;
  slaAtRisk: boolean;
}

/** A warning or breach as the ticket shows it. */
export interface SlaRecord {
  target: SlaTargetName;
  at: string;
}

/** What a new ticket is inserted with (the rest has defaults; the number is allocated). */
export type NewTicket = Pick<Ticket, 'id' | 'workspaceId' | 'subject' | 'description' | 'status' | 'priority' | 'category' | 'tags' |
  'customFields' | 'contactId' | 'teamId' | 'assigneeId' | 'accountId' | 'createdAt' | 'updatedAt'>;

/** Fields a service may change (the store maps them to columns). */
export type TicketChanges = Partial<Pick<Ticket,
  'subject' | 'description' | 'status' | 'priority' | 'category' | 'tags' | 'customFields' | 'teamId' | 'assigneeId' |
  'accountId' | 'topicChatId' | 'topicThreadId' | 'firstResponseAt' | 'resolvedAt' | 'closedAt' | 'reopenedCount' | 'archivedAt' |
  'slaPolicyId' | 'firstResponseDueAt' | 'nextResponseDueAt' | 'resolutionDueAt' | 'slaDueAt' | 'slaPaused' | 'slaAtRisk'>> & {
  /** Warnings and breaches just recorded: appended in SQL, so a stale snapshot never drops one. */
  slaMarks?: { warnings: SlaRecord[]; breaches: SlaRecord[] };
};

const COLUMN_OF: Record<Exclude<keyof TicketChanges, 'slaMarks'>, string> = {
  subject: 'subject', description: 'description', status: 'status', priority: 'priority', category: 'category',
  tags: 'tags', customFields: 'custom_fields', teamId: 'team_id', assigneeId: 'assignee_id', accountId: 'account_id',
  topicChatId: 'topic_chat_id', topicThreadId: 'topic_thread_id', firstResponseAt: 'first_response_at',
  resolvedAt: 'resolved_at', closedAt: 'closed_at', reopenedCount: 'reopened_count', archivedAt: 'archived_at',
  slaPolicyId: 'sla_policy_id', firstResponseDueAt: 'first_response_due_at', nextResponseDueAt: 'next_response_due_at',
  resolutionDueAt: 'resolution_due_at', slaDueAt: 'sla_due_at', slaPaused: 'sla_paused', slaAtRisk: 'sla_at_risk',
};

/** Column values as PostgreSQL takes them: jsonb as text, no due time as 'infinity'. */
function columnValue(k: keyof TicketChanges, v: unknown): unknown {
  if (k === 'customFields') return JSON.stringify(v);
  if (k === 'slaDueAt') return v ?? 'infinity';
  return v;
}

/** Every column but the search vector, qualified so list queries can join. */
export const TICKET_COLUMNS = [
  'id', 'workspace_id', 'number', 'subject', 'description', 'status', 'priority', 'category', 'tags', 'custom_fields',
  'contact_id', 'team_id', 'assignee_id', 'account_id', 'topic_chat_id', 'topic_thread_id', 'sla_policy_id',
  'first_response_due_at', 'next_response_due_at', 'resolution_due_at', 'sla_due_at', 'sla_paused', 'sla_warnings', 'sla_breaches',
  'sla_at_risk', 'sla_breached', 'unassigned_since', 'priority_rank', 'first_response_at', 'resolved_at', 'closed_at',
  'reopened_count', 'archived_at', 'created_at', 'updated_at',
] as const;
const SELECT_TICKET = TICKET_COLUMNS.map((c) => `tickets.${c}`);

export function toTicket(r: any): Ticket {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    number: r.number,
    subject: r.subject,
    description: r.description,
    status: r.status,
    priority: r.priority,
    category: r.category,
    tags: r.tags,
    customFields: r.custom_fields,
    contactId: r.contact_id,
    teamId: r.team_id,
    assigneeId: r.assignee_id,
    accountId: r.account_id,
    topicChatId: r.topic_chat_id,
    topicThreadId: r.topic_thread_id,
    slaPolicyId: r.sla_policy_id,
    firstResponseDueAt: r.first_response_due_at,
    nextResponseDueAt: r.next_response_due_at,
    resolutionDueAt: r.resolution_due_at,
    slaDueAt: r.sla_due_at instanceof Date ? r.sla_due_at : null,
    slaPaused: r.sla_paused,
    slaWarnings: r.sla_warnings,
    slaBreaches: r.sla_breaches,
    slaAtRisk: r.sla_at_risk,
    slaBreached: r.sla_breached,
    unassignedSince: r.unassigned_since,
    firstResponseAt: r.first_response_at,
    resolvedAt: r.resolved_at,
    closedAt: r.closed_at,
    reopenedCount: r.reopened_count,
    archivedAt: r.archived_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Contact columns selected next to a ticket's, prefixed `contact__`. */
const CONTACT_SELECT = [
  'id', 'workspace_id', 'telegram_user_id', 'username', 'name', 'first_name', 'last_name', 'email', 'phone',
  'tags', 'custom_fields', 'blocked', 'created_at', 'updated_at',
].map((c) => `contacts.${c} as contact__${c}`);

/** The contact half of a joined row (explicit: this runs for every row of every list). */
export function contactOf(r: any): Contact {
  return {
    id: r.contact__id,
    workspaceId: r.contact__workspace_id,
    telegramUserId: r.contact__telegram_user_id,
    username: r.contact__username,
    name: r.contact__name,
    firstName: r.contact__first_name,
    lastName: r.contact__last_name,
    email: r.contact__email,
    phone: r.contact__phone,
    tags: r.contact__tags,
    customFields: r.contact__custom_fields,
    blocked: r.contact__blocked,
    createdAt: r.contact__created_at,
    updatedAt: r.contact__updated_at,
  };
}

const OPEN_STATUSES = ['open', 'in_progress', 'waiting_on_customer'];

/** An open ticket past its SLA due time, with where its topic is (null: none yet). */
export interface OverdueTicket {
  id: string;
  number: number;
  subject: string;
  slaDueAt: Date;
  topicChatId: number | null;
  topicThreadId: number | null;
}

/** A queue's size: how many tickets wait in it and since when the oldest does. */
export interface QueueDepth {
  teamId: string | null;
  depth: number;
  oldestWaitingSince: Date | null;
}

/**
 * A queue: unassigned tickets not resolved or closed (nor archived) of one team, or of none;
 * with teamId undefined, every queue of the workspace.
 */
function queueQuery(db: Db, workspaceId: string, teamId: string | null | undefined): Knex.QueryBuilder {
  const q = db('tickets').where('tickets.workspace_id', workspaceId).whereNull('tickets.assignee_id')
    .whereIn('tickets.status', OPEN_STATUSES).whereNull('tickets.archived_at');
  if (teamId === null) q.whereNull('tickets.team_id');
  else if (teamId !== undefined) q.where('tickets.team_id', teamId);
  return q;
}

/** Distribution order: manually ranked first (by rank), then urgent first, then oldest first. */
const QUEUE_ORDER: readonly (readonly [string, 'asc' | 'desc'])[] = [
  ['tickets.queue_rank', 'asc'], ['tickets.priority_rank', 'desc'], ['tickets.created_at', 'asc'], ['tickets.id', 'asc'],
];

/** Where an unranked ticket sorts in its queue: after every rank (queue_rank is an integer). */
const UNRANKED = 2147483647;

/** A queue's tickets at one priority: how many, and the created_at of the oldest. */
export interface QueueStat {
  teamId: string | null;
  priority: Priority;
  depth: number;
  oldest: Date;
}

export const LIST_SORTS: Record<string, readonly (readonly [string, 'asc' | 'desc'])[]> = {
  '-created_at': [['tickets.created_at', 'desc'], ['tickets.id', 'desc']],
  created_at: [['tickets.created_at', 'asc'], ['tickets.id', 'asc']],
  priority: [['tickets.priority_rank', 'desc'], ['tickets.created_at', 'asc'], ['tickets.id', 'asc']],
  sla_due: [['tickets.sla_due_at', 'asc'], ['tickets.created_at', 'asc'], ['tickets.id', 'asc']],
};

const splitList = (v: string) => [...new Set(v.split(','))];

/** Query keys that leave the set of tickets at "these statuses, not archived". */
const COUNTABLE = new Set(['status', 'sort', 'limit', 'offset', 'cursor', 'archived']);

/** Whether this view's total comes from ticket_counts (countFromCounters). */
export function countedFromCounters(f: ListTicketsQuery): boolean {
  // An allowlist: a filter added later is counted for real until someone decides otherwise.
  return !f.archived && !Object.entries(f).some(([k, v]) => v !== undefined && !COUNTABLE.has(k));
}

/**
 * The total of the commonest views (all tickets, or some statuses, not archived) from the
 * trigger-kept ticket_counts (migration 1300), which is exact: it changes in the same
 * transactions as the tickets. Other views are counted.
 */
function countFromCounters(db: Db, workspaceId: string, f: ListTicketsQuery): (() => Promise<number>) | undefined {
  if (!countedFromCounters(f)) return undefined;
  return async () => {
    const q = db('ticket_counts').where('workspace_id', workspaceId).sum({ n: 'n' });
    if (f.status) q.whereIn('status', splitList(f.status));
    const [{ n }] = await q;
    return Number(n ?? 0);
  };
}

/**
 * The numbered insert (insertNumbered): the number, the ticket, its ticket.created event and,
 * given `clocksInsert` (the sla module's INSERT of its clocks row, handed over by the SLA
 * port), the SLA clocks, in one prepared statement, so the numbering row is locked from here
 * to COMMIT with no round trip of the create's own in between.
 */
const insertNumberedSql = (clocksInsert: string | null) => `WITH n AS (
     INSERT INTO ticket_numbers AS c (workspace_id, last_number) VALUES (?, 1)
     ON CONFLICT (workspace_id) DO UPDATE SET last_number = c.last_number + 1
     RETURNING last_number
   ),
   t AS (
     INSERT INTO tickets (id, workspace_id, number, subject, description, status, priority, category, tags, custom_fields,
                          contact_id, team_id, assignee_id, account_id, created_at, updated_at,
                          sla_policy_id, first_response_due_at, next_response_due_at, resolution_due_at, sla_due_at, sla_paused, sla_at_risk)
     SELECT ?, ?, n.last_number, ?, ?, ?, ?, ?, ?::text[], ?::jsonb, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz,
            ?, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?, ? FROM n
     RETURNING number, custom_fields
   ),
   e AS (
     INSERT INTO events (id, workspace_id, type, ticket_id, contact_id, message_id, actor_type, actor_id, payload, detail, created_at)
     SELECT ?, ?, ?, ?, ?, ?, ?, ?, jsonb_set(?::jsonb, '{number}', to_jsonb(t.number)), ?::jsonb, ?::timestamptz FROM t
   )${clocksInsert === null ? '' : `,
   s AS (${clocksInsert})`}
   SELECT number, custom_fields FROM t`;

/** One prepared statement per text: without clocks, and with the (one) clocks INSERT the port hands over. */
const INSERT_WITHOUT_CLOCKS = insertNumberedSql(null);
let withClocks: { insert: string; sql: string } | null = null;
function insertWithClocks(insert: string): string {
  if (withClocks?.insert !== insert) withClocks = { insert, sql: insertNumberedSql(insert) };
  return withClocks.sql;
}

/**
 * The row a new ticket becomes, number aside: what it is inserted with, and the defaults of
 * the other columns (migrations 20261121000900 ff.) with the unassigned_since trigger's value.
 * Its event is presented from this, and insertNumbered returns it numbered rather than
 * reading the row back (35 columns described and parsed on every create).
 */
export function newTicketRow(t: NewTicket, sla: SlaFields): Ticket {
  return {
    ...t, ...sla, number: 0, topicChatId: null, topicThreadId: null, slaWarnings: [], slaBreaches: [], slaBreached: false,
    unassignedSince: t.assigneeId ? null : t.createdAt, firstResponseAt: null, resolvedAt: null, closedAt: null,
    reopenedCount: 0, archivedAt: null,
  };
}

export const ticketStore = {
  /**
   * Inserts the ticket (newTicketRow) with the workspace's next number, and its
   * ticket.created event, in one statement. The ticket_numbers row it updates stays locked
   * until the transaction ends: numbers are handed out in commit order and a rollback gives
   * the number back, so there are no gaps and no duplicates. Every ticket creation of a
   * workspace queues on that lock, so callers do this last: between it and COMMIT as little
   * as possible should happen. `event.payload` is the presented ticket; its `number` is
   * filled in here. Returns the row: PostgreSQL's number, and custom_fields as jsonb keeps
   * them (its key order, as every read of the ticket shows them).
   */
  async insertNumbered(db: Db, t: Ticket, event: ReturnType<typeof eventRow>, clocks: NewClocks | null = null): Promise<Ticket> {
    const [name, sql] = clocks ? ['ticket_insert_numbered_clocks', insertWithClocks(clocks.insertSql)] : ['ticket_insert_numbered', INSERT_WITHOUT_CLOCKS];
    const r = await prepared(db, name, sql,
      [t.workspaceId, t.id, t.workspaceId, t.subject, t.description, t.status, t.priority, t.category, t.tags,
        JSON.stringify(t.customFields), t.contactId, t.teamId, t.assigneeId, t.accountId, t.createdAt, t.updatedAt,
        t.slaPolicyId, t.firstResponseDueAt, t.nextResponseDueAt, t.resolutionDueAt, t.slaDueAt ?? 'infinity', t.slaPaused, t.slaAtRisk,
        event.id, event.workspace_id, event.type, event.ticket_id, event.contact_id, event.message_id, event.actor_type,
        event.actor_id, event.payload, event.detail, event.created_at, ...(clocks ? [JSON.stringify(clocks.row), t.id] : [])],
    );
    const { number, custom_fields: customFields } = r.rows[0] as { number: number; custom_fields: Record<string, unknown> };
    return { ...t, number, customFields };
  },

  /** The ticket and its contact; with forUpdate the ticket row is locked until the transaction ends. */
  async findWithContact(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<{ ticket: Ticket; contact: Contact } | null> {
    const q = db('tickets').select([...SELECT_TICKET, ...CONTACT_SELECT])
      .join('contacts', 'contacts.id', 'tickets.contact_id')
      .where({ 'tickets.workspace_id': workspaceId, 'tickets.id': id }).first();
    // NO KEY UPDATE: messages referencing the ticket may still be inserted meanwhile.
    if (opts.forUpdate) q.forNoKeyUpdate('tickets');
    const row = await q;
    return row ? { ticket: toTicket(row), contact: contactOf(row) } : null;
  },

  /** Of these tickets, those not locked by someone else, now locked (NO KEY UPDATE, as changes lock). */
  async lockAvailable(db: Db, ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const { rows } = await db.raw('SELECT id FROM tickets WHERE id = ANY(?) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED', [ids]);
    return rows.map((r: { id: string }) => r.id);
  },

  /**
   * The sweep's marks in one statement: appended to the tickets' warnings and breaches, with
   * at-risk and breached set; updated_at stays (bookkeeping, not a change). Returns the ids
   * of tickets that got marks.
   */
  async applySlaMarks(db: Db, rows: { id: string; warnings: SlaRecord[]; breaches: SlaRecord[]; atRisk: boolean }[]): Promise<string[]> {
    if (!rows.length) return [];
    const { rows: updated } = await db.raw(
      `UPDATE tickets t
          SET sla_warnings = t.sla_warnings || x.warnings, sla_breaches = t.sla_breaches || x.breaches,
              sla_at_risk = x.at_risk, sla_breached = t.sla_breached OR x.breaches <> '[]'::jsonb
         FROM jsonb_to_recordset(?::jsonb) AS x(id text, warnings jsonb, breaches jsonb, at_risk boolean)
        WHERE t.id = x.id AND (x.warnings <> '[]'::jsonb OR x.breaches <> '[]'::jsonb OR t.sla_at_risk <> x.at_risk)
        RETURNING t.id, x.warnings <> '[]'::jsonb OR x.breaches <> '[]'::jsonb AS marked`,
      [JSON.stringify(rows.map((r) => ({ id: r.id, warnings: r.warnings, breaches: r.breaches, at_risk: r.atRisk })))],
    );
    return updated.filter((r: { marked: boolean }) => r.marked).map((r: { id: string }) => r.id);
  },

  /** Several tickets with their contacts (any workspace: for background work over ids it holds). */
  async viewsByIds(db: Db, ids: string[]): Promise<{ ticket: Ticket; contact: Contact }[]> {
    if (!ids.length) return [];
    const rows = await db('tickets').select([...SELECT_TICKET, ...CONTACT_SELECT])
      .join('contacts', 'contacts.id', 'tickets.contact_id')
      .whereRaw('tickets.id = ANY(?)', [ids]);
    return rows.map((r: any) => ({ ticket: toTicket(r), contact: contactOf(r) }));
  },

  async update(db: Db, workspaceId: string, id: string, changes: TicketChanges, at: Date): Promise<Ticket> {
    const { slaMarks, ...plain } = changes;
    const set: Record<string, unknown> = { updated_at: at };
    for (const [k, v] of Object.entries(plain)) {
      if (v !== undefined) set[COLUMN_OF[k as keyof typeof plain]] = columnValue(k as keyof TicketChanges, v);
    }
    if (slaMarks?.warnings.length) set.sla_warnings = db.raw('sla_warnings || ?::jsonb', [JSON.stringify(slaMarks.warnings)]);
    if (slaMarks?.breaches.length) {
      set.sla_breaches = db.raw('sla_breaches || ?::jsonb', [JSON.stringify(slaMarks.breaches)]);
      set.sla_breached = true;
    }
    const [row] = await db('tickets').where({ workspace_id: workspaceId, id }).update(set).returning(TICKET_COLUMNS as unknown as string[]);
    return toTicket(row);
  },

  /**
   * The filtered list query (contacts left-joined for presenting; PostgreSQL removes the join
   * from the count query, which uses no contact column) and its sort.
   */
  listQuery(db: Db, workspaceId: string, f: ListTicketsQuery): { query: Knex.QueryBuilder; order: readonly (readonly [string, 'asc' | 'desc'])[]; count?: () => Promise<number> } {
    const q = db('tickets').select([...SELECT_TICKET, ...CONTACT_SELECT])
      .leftJoin('contacts', 'contacts.id', 'tickets.contact_id')
      .where('tickets.workspace_id', workspaceId);
    if (f.archived) q.whereNotNull('tickets.archived_at');
    else q.whereNull('tickets.archived_at');
    if (f.status) q.whereIn('tickets.status', splitList(f.status));
    if (f.priority) q.whereIn('tickets.priority', splitList(f.priority));
    if (f.assignee_id === 'none') q.whereNull('tickets.assignee_id');
    else if (f.assignee_id) q.where('tickets.assignee_id', f.assignee_id);
    if (f.team_id === 'none') q.whereNull('tickets.team_id');
    else if (f.team_id) q.where('tickets.team_id', f.team_id);
    if (f.contact_id) q.where('tickets.contact_id', f.contact_id);
    if (f.sla === 'at_risk') q.where('tickets.sla_at_risk', true);
    if (f.sla === 'breached') q.where('tickets.sla_breached', true);
    if (f.tag) q.whereRaw('tickets.tags @> ARRAY[?]::text[]', [f.tag.trim().toLowerCase()]);
    if (f.created_after) q.where('tickets.created_at', '>=', f.created_after);
    if (f.created_before) q.where('tickets.created_at', '<', f.created_before);
    if (f.updated_after) q.where('tickets.updated_at', '>=', f.updated_after);
    if (f.q) {
      const text = f.q;
      const number = /^#?(\d{1,9})$/.exec(text.trim());
      q.where((w) => {
        w.whereRaw(`tickets.search @@ websearch_to_tsquery('simple', ?)`, [text])
          .orWhereIn('tickets.id', (sub) => sub.select('ticket_id').from('messages')
            .where('messages.workspace_id', workspaceId)
            .whereRaw(`messages.search @@ websearch_to_tsquery('simple', ?)`, [text]));
        if (number) w.orWhere('tickets.number', Number(number[1]));
      });
    }
    return { query: q, order: LIST_SORTS[f.sort ?? '-created_at'], count: countFromCounters(db, workspaceId, f) };
  },

  async findById(db: Db, workspaceId: string, id: string): Promise<Ticket | null> {
    const row = await db('tickets').select(SELECT_TICKET).where({ 'tickets.workspace_id': workspaceId, 'tickets.id': id }).first();
    return row ? toTicket(row) : null;
  },

  async findByTopic(db: Db, workspaceId: string, chatId: number, threadId: number): Promise<Ticket | null> {
    const row = await db('tickets').select(SELECT_TICKET).where({ 'tickets.workspace_id': workspaceId, 'tickets.topic_chat_id': chatId, 'tickets.topic_thread_id': threadId }).first();
    return row ? toTicket(row) : null;
  },

  /** Not closed nor archived, of this contact with this bot, most recently active first. */
  async openOfContact(db: Db, workspaceId: string, contactId: string, accountId: string, limit: number): Promise<Ticket[]> {
    const rows = await db('tickets').select(SELECT_TICKET)
      .where({ 'tickets.workspace_id': workspaceId, 'tickets.contact_id': contactId, 'tickets.account_id': accountId })
      .whereNot('tickets.status', 'closed').whereNull('tickets.archived_at')
      .orderBy('tickets.updated_at', 'desc').limit(limit);
    return rows.map(toTicket);
  },

  /**
   * The ticket's forum topic address; not a change of the ticket (updated_at stays). With
   * `ifThread`, only while the thread is still that one (a topic recreated meanwhile wins).
   */
  async setTopic(db: Db, id: string, topic: { chatId: number | null; threadId: number | null }, ifThread?: number): Promise<void> {
    const q = db('tickets').where({ id });
    if (ifThread !== undefined) q.where({ topic_thread_id: ifThread });
    await q.update({ topic_chat_id: topic.chatId, topic_thread_id: topic.threadId });
  },

  /** How many open tickets (open, in progress, waiting) each agent has. */
  async openCounts(db: Db, workspaceId: string, agentIds: string[]): Promise<Map<string, number>> {
    if (!agentIds.length) return new Map();
    const rows = await db('tickets').select('assignee_id').count({ n: '*' })
      .where('workspace_id', workspaceId).whereIn('assignee_id', agentIds).whereIn('status', OPEN_STATUSES).groupBy('assignee_id');
    return new Map(rows.map((r: any) => [r.assignee_id as string, Number(r.n)]));
  },

  /**
   * The first tickets of a queue (a team's, or with teamId null the tickets without a team) in
   * distribution order: manual rank, then priority, then age. With `lock`, locked and skipping
   * tickets another transaction holds (a replica distributing the same queue takes the next).
   */
  async queueHead(db: Db, workspaceId: string, teamId: string | null, limit: number, opts: { lock?: boolean } = {}): Promise<Ticket[]> {
    const q = queueQuery(db, workspaceId, teamId).select(SELECT_TICKET).limit(limit);
    for (const [column, dir] of QUEUE_ORDER) q.orderBy(column, dir, column === 'tickets.queue_rank' ? 'last' : undefined);
    if (opts.lock) q.forNoKeyUpdate('tickets').skipLocked();
    return (await q).map(toTicket);
  },

  /**
   * How many tickets wait in each queue (a team's, or null: no team) at each priority, and
   * since when (the oldest one's created_at): one grouped query over the tickets_queue index.
   */
  /** Open tickets (not archived) whose earliest pending SLA due time has passed, most overdue first (index tickets_sla_due). */
  async mostOverdue(db: Db, workspaceId: string, now: Date, limit: number): Promise<OverdueTicket[]> {
    const rows = await db('tickets').select('id', 'number', 'subject', 'sla_due_at', 'topic_chat_id', 'topic_thread_id')
      .where('workspace_id', workspaceId).whereIn('status', OPEN_STATUSES).whereNull('archived_at')
      .where('sla_due_at', '<', now).orderBy([{ column: 'sla_due_at', order: 'asc' }, { column: 'id', order: 'asc' }]).limit(limit);
    return rows.map((r: any) => ({
      id: r.id, number: Number(r.number), subject: r.subject, slaDueAt: r.sla_due_at,
      topicChatId: r.topic_chat_id === null ? null : Number(r.topic_chat_id), topicThreadId: r.topic_thread_id === null ? null : Number(r.topic_thread_id),
    }));
  },

  async queueStats(db: Db, workspaceId: string, teamId?: string | null): Promise<QueueStat[]> {
    const rows = await queueQuery(db, workspaceId, teamId).select('tickets.team_id', 'tickets.priority')
      .count({ n: '*' }).min({ oldest: 'tickets.created_at' }).groupBy('tickets.team_id', 'tickets.priority');
    return rows.map((r: any) => ({ teamId: r.team_id, priority: r.priority, depth: Number(r.n), oldest: r.oldest }));
  },

  /**
   * A queue with contacts, for paginate, in distribution order. Unranked tickets sort after
   * ranked ones through a non-null position (the keyset cursor cannot compare nulls), which
   * is why the query is wrapped: the cursor's WHERE needs the position as a column.
   */
  queueListQuery(db: Db, workspaceId: string, teamId: string | null): { query: Knex.QueryBuilder; order: readonly (readonly [string, 'asc' | 'desc'])[] } {
    const inner = queueQuery(db, workspaceId, teamId).join('contacts', 'contacts.id', 'tickets.contact_id')
      .select([...SELECT_TICKET, ...CONTACT_SELECT, db.raw(`COALESCE(tickets.queue_rank, ${UNRANKED}) AS queue_position`)]);
    const order = [['queue.queue_position', 'asc'], ['queue.priority_rank', 'desc'], ['queue.created_at', 'asc'], ['queue.id', 'asc']] as const;
    return { query: db.select('*').from(inner.as('queue')), order };
  },

  /**
   * The ids at the head of a queue in distribution order: the first `atLeast`, and at least
   * every manually ranked one (they come first), plus one more when there is one.
   */
  async queueOrder(db: Db, workspaceId: string, teamId: string | null, atLeast: number): Promise<{ ids: string[]; ranked: number }> {
    const [{ n }] = await queueQuery(db, workspaceId, teamId).whereNotNull('tickets.queue_rank').count({ n: '*' });
    const ranked = Number(n);
    const q = queueQuery(db, workspaceId, teamId).select('tickets.id').limit(Math.max(atLeast, ranked) + 1);
    for (const [column, dir] of QUEUE_ORDER) q.orderBy(column, dir, column === 'tickets.queue_rank' ? 'last' : undefined);
    return { ids: (await q).map((r: any) => r.id as string), ranked };
  },

  /** Ranks 1..n for these tickets, in this order (a manual queue order); updated_at stays. */
  async setQueueRanks(db: Db, workspaceId: string, ids: string[]): Promise<void> {
    if (!ids.length) return;
    await db.raw(
      `UPDATE tickets t SET queue_rank = r.rank FROM unnest(?::text[]) WITH ORDINALITY AS r(id, rank)
        WHERE t.workspace_id = ? AND t.id = r.id AND t.queue_rank IS DISTINCT FROM r.rank`,
      [ids, workspaceId],
    );
  },

  async setCsat(db: Db, id: string, rating: number, at: Date): Promise<void> {
    await db('tickets').where({ id }).update({ csat_rating: rating, csat_at: at });
  },

  /** Resolved tickets past their workspace's auto-close age, locked (skipping ones in use). */
  async lockDueForAutoClose(db: Db, now: Date, limit: number): Promise<Ticket[]> {
    const rows = await db.raw(
      `SELECT ${SELECT_TICKET.join(', ')} FROM tickets
         JOIN workspaces w ON w.id = tickets.workspace_id
        WHERE tickets.status = 'resolved'
          AND tickets.resolved_at <= ?::timestamptz - make_interval(hours => w.auto_close_after_hours)
        ORDER BY tickets.resolved_at
        LIMIT ?
        FOR NO KEY UPDATE OF tickets SKIP LOCKED`,
      [now, limit],
    );
    return rows.rows.map(toTicket);
  },

  /**
   * For the escalation sweep: ids of live tickets with one of `statuses` whose created_at (or
   * unassigned_since) is in [from, to). Index range scans: tickets_list, tickets_unassigned_since.
   */
  async crossing(db: Db, workspaceId: string, field: 'created' | 'unassigned', from: Date, to: Date, statuses: readonly string[]): Promise<string[]> {
    const column = field === 'created' ? 'created_at' : 'unassigned_since';
    const rows = await db('tickets').select('id').where({ workspace_id: workspaceId }).whereNull('archived_at')
      .where(column, '>=', from).where(column, '<', to).whereIn('status', statuses);
    return rows.map((r: { id: string }) => r.id);
  },

  /** Ids of a contact's tickets that are not closed nor archived. */
  async openIdsOfContact(db: Db, workspaceId: string, contactId: string): Promise<string[]> {
    const rows = await db('tickets').select('id').where({ workspace_id: workspaceId, contact_id: contactId })
      .whereNot('status', 'closed').whereNull('archived_at').orderBy('id');
    return rows.map((r: { id: string }) => r.id);
  },
};
