/**
 * Tickets: creation (number, contact, references), changes, the status workflow and
 * assignment. Invariants:
 * - every change runs in the caller's transaction with the ticket row locked, and writes
 *   its events (the outbox) in that transaction;
 * - ids in bodies (contact, team, agent, bot) are looked up in the caller's workspace only:
 *   another workspace's id is "not found" (and composite foreign keys make it impossible anyway);
 * - status moves follow ticket-status.ts; refused moves are 409 invalid_transition.
 */
import type { Account } from '../accounts/account-store.js';
import type { AccountService } from '../accounts/account-service.js';
import type { AgentService } from '../agents/agent-service.js';
import { presentContact, type ContactService } from '../contacts/contact-service.js';
import type { Contact } from '../contacts/contact.js';
import type { Db } from '../db/knex.js';
import { together } from '../db/transaction.js';
import { eventRow, eventOutbox, type NewEvent } from '../events/event-outbox.js';
import { SYSTEM, type Actor } from '../kernel/actor.js';
import { AppError, notFound } from '../kernel/errors.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { changedFields, MAX_CUSTOM_FIELDS, mergeCustomFields, normalizeTags, previousValues } from '../lib/tags.js';
import { sendQueue } from '../send-queue/send-queue.js';
import { listPageJson, type PageJson } from './ticket-list.js';
import type { CreateTicketBody, ListTicketsQuery, PatchTicketBody, TicketJson } from './ticket-schemas.js';
import { applyTransition, isReopen, refusal, type TicketStatus } from './ticket-status.js';
import type { SlaMark, SlaOutcome, TicketSla } from './ticket-sla.js';
import { contactOf, newTicketRow, ticketStore, toTicket, type NewTicket, type OverdueTicket, type QueueDepth, type QueueStat, type Ticket, type TicketChanges } from './ticket-store.js';
export type { OverdueTicket } from './ticket-store.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function presentTicket(t: Ticket, contact: Contact): TicketJson {
  return {
    id: t.id,
    number: t.number,
    subject: t.subject,
    description: t.description,
    status: t.status,
    priority: t.priority,
    category: t.category,
    tags: t.tags,
    custom_fields: t.customFields as TicketJson['custom_fields'],
    contact: presentContact(contact),
    assignee_id: t.assigneeId,
    team_id: t.teamId,
    account_id: t.accountId,
    topic: t.topicThreadId !== null && t.topicChatId !== null ? { chat_id: t.topicChatId, message_thread_id: t.topicThreadId } : null,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
    first_response_at: iso(t.firstResponseAt),
    resolved_at: iso(t.resolvedAt),
    closed_at: iso(t.closedAt),
    reopened_count: t.reopenedCount,
    archived: t.archivedAt !== null,
    sla: {
      policy_id: t.slaPolicyId,
      first_response_due_at: iso(t.firstResponseDueAt),
      next_response_due_at: iso(t.nextResponseDueAt),
      resolution_due_at: iso(t.resolutionDueAt),
      paused: t.slaPaused,
      warnings: t.slaWarnings.map((w) => ({ target: w.target, warned_at: w.at })),
      breaches: t.slaBreaches.map((b) => ({ target: b.target, breached_at: b.at })),
    },
  };
}

/** A ticket with the contact it is presented with. */
export interface TicketView {
  ticket: Ticket;
  contact: Contact;
}

export interface Workspace {
  id: string;
  mode: 'live' | 'sandbox';
}

/** Why a status moved, kept in the timeline. */
export type MoveReason = 'api' | 'agent_reply' | 'customer_message' | 'auto_close';

const STATUS_EVENT: Partial<Record<TicketStatus, 'ticket.resolved' | 'ticket.closed'>> = { resolved: 'ticket.resolved', closed: 'ticket.closed' };


/**
 * Internal notes on a ticket (a status change or assignment with a note). Notes are messages,
 * which depend on tickets: the messages module provides this, wired in the container.
 */
export interface TicketNotes {
  add(db: Db, ticket: Ticket, text: string, actor: Actor, at: Date): Promise<unknown>;
}

/** The SLA fields a change writes, with the marks it recorded appended to the ticket's lists. */
function slaChanges(outcome: SlaOutcome | null): TicketChanges {
  if (!outcome) return {};
  const record = (kind: SlaMark['kind']) => outcome.marks.filter((m) => m.kind === kind).map((m) => ({ target: m.target, at: m.at.toISOString() }));
  return { ...outcome.fields, slaMarks: { warnings: record('warning'), breaches: record('breach') } };
}

/** sla.warning / sla.breached for marks just recorded: the ticket as it is now, and {target, due_at}. */
export function slaEvents(t: Ticket, contact: Contact, marks: readonly SlaMark[]): NewEvent[] {
  return marks.map((m) => {
    const details = { target: m.target, due_at: m.dueAt.toISOString() };
    return { type: m.kind === 'warning' ? 'sla.warning' : 'sla.breached', actor: SYSTEM, ticketId: t.id, contactId: t.contactId, payload: presentTicket(t, contact), detail: details, details };
  });
}

export function createTicketService(deps: { clock: Clock; contacts: ContactService; agents: AgentService; accounts: AccountService; notes: TicketNotes; sla: TicketSla }) {
  const { clock, contacts, agents, accounts, notes, sla } = deps;

  /**
   * Writes a locked ticket's changes with what they do to its SLA clocks (status, priority and
   * team move them), so the row and the events written after it carry the new due times.
   */
  async function write(db: Db, before: Ticket, fields: TicketChanges, at: Date): Promise<{ after: Ticket; marks: SlaMark[] }> {
    const proposed = { ...before, ...fields };
    const moves = proposed.status !== before.status || proposed.priority !== before.priority || proposed.teamId !== before.teamId;
    const outcome = moves ? await sla.changed(db, before, proposed, at) : null;
    const after = await ticketStore.update(db, before.workspaceId, before.id, { ...fields, ...slaChanges(outcome) }, at);
    return { after, marks: outcome?.marks ?? [] };
  }

  const teamInWorkspace = (db: Db, workspaceId: string, id: string) => agents.requireTeam(db, workspaceId, id);
  const activeAgent = (db: Db, workspaceId: string, id: string) => agents.requireActive(db, workspaceId, id);

  /**
   * The ticket's contact (by id, or matched/created from inline fields) and its bot: the one
   * asked for, else the one the contact last wrote to, else the workspace's default.
   */
  async function contactAndAccount(db: Db, workspaceId: string, body: CreateTicketBody, actor: Actor): Promise<{ contact: Contact; account: Account | null }> {
    let contact: Contact;
    let account: Account | null;
    if (body.contact_id) {
      const found = await accounts.contactWithPreferredBot(db, workspaceId, body.contact_id);
      if (!found) throw notFound('Contact');
      ({ contact, account } = found);
    } else {
      contact = (await contacts.upsert(db, workspaceId, body.contact!, actor)).contact;
      account = body.account_id ? null : await accounts.preferredFor(db, workspaceId, contact.id);
    }
    if (body.account_id) {
      account = await accounts.findById(db, workspaceId, body.account_id);
      if (!account) throw notFound('Account');
    }
    return { contact, account };
  }

  const service = {
    async create(db: Db, ws: Workspace, body: CreateTicketBody, actor: Actor): Promise<TicketView> {
      const at = clock.now();
      const id = newId('tkt');
      const priority = body.priority ?? 'normal';
      const teamId = body.team_id ?? null;
      // Independent lookups, sent together (one round trip on the pipelined connection).
      const [{ contact, account }, clocks] = await together(
        contactAndAccount(db, ws.id, body, actor),
        sla.planNew(db, { id, workspaceId: ws.id, teamId, priority, createdAt: at }),
        teamId ? teamInWorkspace(db, ws.id, teamId) : null,
        body.assignee_id ? activeAgent(db, ws.id, body.assignee_id) : null,
      );
      const { value: customFields } = mergeCustomFields({}, body.custom_fields ?? {});
      const fields: NewTicket = {
        id, workspaceId: ws.id, subject: body.subject.trim(), description: body.description ?? '',
        status: 'open', priority, category: body.category ?? null,
        tags: normalizeTags(body.tags ?? []), customFields, contactId: contact.id, teamId,
        assigneeId: body.assignee_id ?? null, accountId: account?.id ?? null, createdAt: at, updatedAt: at,
      };
      // The forum topic is created by the Telegram workers (never inside this transaction).
      if (ws.mode === 'live' && account?.supportChatId) {
        await sendQueue.enqueue(db, { workspaceId: ws.id, accountId: account.id, chatId: account.supportChatId, op: 'create_topic', ticketId: fields.id, at });
      }
      // Last: numbering serialises the workspace's ticket creations until this transaction ends.
      const unnumbered = newTicketRow(fields, clocks.fields);
      const created = eventRow(ws.id, at, { type: 'ticket.created', actor, ticketId: fields.id, contactId: contact.id, payload: presentTicket(unnumbered, contact) });
      // Its SLA clocks go in the same statement: from the number to COMMIT, no round trip of ours.
      const ticket = await ticketStore.insertNumbered(db, unnumbered, created, clocks.clocks);
      return { ticket, contact };
    },

    async get(db: Db, workspaceId: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<TicketView> {
      const found = await ticketStore.findWithContact(db, workspaceId, id, opts);
      if (!found) throw notFound('Ticket');
      return found;
    },

    list(db: Db, workspaceId: string, query: ListTicketsQuery & PageRequest) {
      const { query: q, order, count } = ticketStore.listQuery(db, workspaceId, query);
      return paginate(q, order, query, (r): TicketView => ({ ticket: toTicket(r), contact: contactOf(r) }), count);
    },

    /** The same page as list, presented by PostgreSQL: the items as JSON text (ticket-list.ts). */
    listJson: (db: Db, workspaceId: string, query: ListTicketsQuery & PageRequest): Promise<PageJson> => listPageJson(db, workspaceId, query, query),

    async update(db: Db, workspaceId: string, id: string, body: PatchTicketBody, actor: Actor): Promise<TicketView> {
      const { ticket, contact } = await service.get(db, workspaceId, id, { forUpdate: true });
      const changes: TicketChanges = {};
      if (body.subject !== undefined) changes.subject = body.subject.trim();
      if (body.description !== undefined) changes.description = body.description;
      if (body.priority !== undefined) changes.priority = body.priority;
      if (body.category !== undefined) changes.category = body.category;
      if (body.tags !== undefined) changes.tags = normalizeTags(body.tags);
      if (body.custom_fields !== undefined) {
        const { value } = mergeCustomFields(ticket.customFields, body.custom_fields);
        if (Object.keys(value).length > MAX_CUSTOM_FIELDS) {
          throw new AppError('validation_error', `A ticket holds at most ${MAX_CUSTOM_FIELDS} custom fields`, { details: [{ field: 'custom_fields', error: `would hold ${Object.keys(value).length}` }] });
        }
        changes.customFields = value;
      }
      if (body.team_id !== undefined) {
        if (body.team_id !== null) await teamInWorkspace(db, workspaceId, body.team_id);
        changes.teamId = body.team_id;
      }
      if (body.archived !== undefined && body.archived !== (ticket.archivedAt !== null)) changes.archivedAt = body.archived ? clock.now() : null;
      return service.applyChanges(db, { ticket, contact }, changes, actor);
    },

    /** DELETE: hides the ticket from lists; archiving an archived ticket changes nothing. */
    async archive(db: Db, workspaceId: string, id: string, actor: Actor): Promise<TicketView> {
      const view = await service.get(db, workspaceId, id, { forUpdate: true });
      if (view.ticket.archivedAt) return view;
      return service.applyChanges(db, view, { archivedAt: clock.now() }, actor);
    },

    /** Writes plain field changes and one ticket.updated event; nothing when nothing differs. */
    async applyChanges(db: Db, view: TicketView, changes: Omit<TicketChanges, 'slaMarks'>, actor: Actor): Promise<TicketView> {
      const before = view.ticket;
      const keys = (Object.keys(changes) as (keyof typeof changes)[]).filter((k) => JSON.stringify(changes[k]) !== JSON.stringify(before[k]));
      if (keys.length === 0) return view;
      const at = clock.now();
      const { after, marks } = await write(db, before, Object.fromEntries(keys.map((k) => [k, changes[k]])), at);
      const detail = changedFields(before, after, keys.filter((k) => k !== 'archivedAt'));
      if (keys.includes('archivedAt')) detail.archived = { from: before.archivedAt !== null, to: after.archivedAt !== null };
      await eventOutbox.record(db, before.workspaceId, at, [
        { type: 'ticket.updated', actor, ticketId: after.id, contactId: after.contactId, payload: presentTicket(after, view.contact), detail: { changes: detail }, previous: previousValues(detail) },
        ...slaEvents(after, view.contact, marks),
      ]);
      return { ticket: after, contact: view.contact };
    },

    /** POST /status: an explicit move, with an optional internal note. */
    async changeStatus(db: Db, workspaceId: string, id: string, to: TicketStatus, note: string | undefined, actor: Actor): Promise<TicketView> {
      const view = await service.get(db, workspaceId, id, { forUpdate: true });
      const why = refusal(view.ticket.status, to);
      if (why) throw new AppError('invalid_transition', why, { fields: { from: view.ticket.status, to } });
      const moved = await service.move(db, view, to, actor, 'api', note);
      if (note) await notes.add(db, moved.ticket, note, actor, clock.now());
      return moved;
    },

    /**
     * Moves a locked ticket to `to` (which must be allowed) and writes ticket.status_changed
     * plus ticket.resolved / ticket.closed / ticket.reopened where they apply.
     */
    async move(db: Db, view: TicketView, to: TicketStatus, actor: Actor, reason: MoveReason, note?: string, at: Date = clock.now()): Promise<TicketView> {
      const before = view.ticket;
      const { after, marks } = await write(db, before, applyTransition(before, to, at), at);
      const payload = presentTicket(after, view.contact);
      const detail = { from: before.status, to, reason, ...(note ? { note } : {}) };
      const base = { actor, ticketId: after.id, contactId: after.contactId, payload, detail };
      // The status and whatever the move changed with it (resolved_at, closed_at, reopened_count).
      const previous = previousValues(changedFields(before, after, ['status', 'resolvedAt', 'closedAt', 'reopenedCount']));
      const events: NewEvent[] = [{ type: 'ticket.status_changed', ...base, previous }];
      const specific = isReopen(before.status, to) ? 'ticket.reopened' : STATUS_EVENT[to];
      if (specific) events.push({ type: specific, ...base });
      await eventOutbox.record(db, after.workspaceId, at, [...events, ...slaEvents(after, view.contact, marks)]);
      return { ticket: after, contact: view.contact };
    },

    /**
     * Sets the assignee and/or team (null clears). `strategy`: the assignment strategy that
     * chose the agent, for the event's details. Capacity and eligibility are the assignment
     * module's to check; this only refuses inactive agents, unknown ids and closed tickets.
     * `view`: the ticket as the caller read it, locked. `agentLocked`: the caller has locked the
     * agent and seen it active in this transaction (a strategy's pick), so it is not read again.
     */
    async assign(db: Db, workspaceId: string, id: string, body: { agent_id?: string | null; team_id?: string | null; note?: string }, actor: Actor, opts: { strategy?: string | null; view?: TicketView; agentLocked?: boolean } = {}): Promise<TicketView> {
      const view = opts.view ?? await service.get(db, workspaceId, id, { forUpdate: true });
      if (body.agent_id && !opts.agentLocked) await activeAgent(db, workspaceId, body.agent_id);
      if (body.team_id) await teamInWorkspace(db, workspaceId, body.team_id);
      if (view.ticket.status === 'closed') throw new AppError('conflict', 'A closed ticket cannot be reassigned');
      const before = view.ticket;
      const changes: TicketChanges = {};
      if (body.agent_id !== undefined && body.agent_id !== before.assigneeId) changes.assigneeId = body.agent_id;
      if (body.team_id !== undefined && body.team_id !== before.teamId) changes.teamId = body.team_id;
      const at = clock.now();
      let after = before;
      if (Object.keys(changes).length) {
        const written = await write(db, before, changes, at);
        after = written.after;
        // Both, changed or not, so a consumer never has to guess the other half.
        const detail: Record<string, unknown> = {
          assignee_id: { from: before.assigneeId, to: after.assigneeId },
          team_id: { from: before.teamId, to: after.teamId },
        };
        if (body.note) detail.note = body.note;
        await eventOutbox.record(db, workspaceId, at, [{
          type: 'ticket.assigned', actor, ticketId: id, contactId: after.contactId, payload: presentTicket(after, view.contact), detail,
          previous: { assignee_id: before.assigneeId, team_id: before.teamId },
          details: { strategy: opts.strategy ?? null, note: body.note || null },
        }, ...slaEvents(after, view.contact, written.marks)]);
        // The topic's transfer note was queued by the change itself (trigger tickets_transfer_note).
        if (body.note) await sendQueue.noteTransfer(db, id, body.note);
      }
      if (body.note) await notes.add(db, after, body.note, actor, at);
      return { ticket: after, contact: view.contact };
    },

    /** For the SLA sweep: of these tickets, those nobody else holds, now locked. */
    lockForSla: (db: Db, ids: string[]): Promise<string[]> => ticketStore.lockAvailable(db, ids),

    /**
     * For the SLA sweep: warnings and breaches it recorded (appended to the tickets' lists) and
     * whether each is at risk now. Returns the tickets that got marks, for their events.
     */
    async applySlaMarks(db: Db, rows: { id: string; atRisk: boolean; marks: SlaMark[] }[]): Promise<TicketView[]> {
      const record = (marks: SlaMark[], kind: SlaMark['kind']) => marks.filter((m) => m.kind === kind).map((m) => ({ target: m.target, at: m.at.toISOString() }));
      const marked = await ticketStore.applySlaMarks(db, rows.map((r) => ({ id: r.id, atRisk: r.atRisk, warnings: record(r.marks, 'warning'), breaches: record(r.marks, 'breach') })));
      return ticketStore.viewsByIds(db, marked);
    },

    /** Open tickets (open, in progress, waiting) per agent. */
    openCounts: (db: Db, workspaceId: string, agentIds: string[]) => ticketStore.openCounts(db, workspaceId, agentIds),

    /** A queue's first tickets in distribution order; `lock` skips tickets in use elsewhere. */
    queueHead: (db: Db, workspaceId: string, teamId: string | null, limit: number, opts: { lock?: boolean } = {}) => ticketStore.queueHead(db, workspaceId, teamId, limit, opts),

    /** Per queue (team or null) and priority: depth and oldest created_at; teamId undefined: every queue. */
    queueStats: (db: Db, workspaceId: string, teamId?: string | null): Promise<QueueStat[]> => ticketStore.queueStats(db, workspaceId, teamId),

    /** A page of a queue in distribution order (manual rank, priority, age). */
    queuePage(db: Db, workspaceId: string, teamId: string | null, page: PageRequest) {
      const { query, order } = ticketStore.queueListQuery(db, workspaceId, teamId);
      return paginate(query, order, page, (r): TicketView => ({ ticket: toTicket(r), contact: contactOf(r) }));
    },

    /** The ids heading a queue: the first `atLeast` and every ranked one, plus one (ticketStore.queueOrder). */
    queueOrder: (db: Db, workspaceId: string, teamId: string | null, atLeast: number) => ticketStore.queueOrder(db, workspaceId, teamId, atLeast),

    /** Manual queue ranks 1..n for these tickets, in this order. */
    setQueueRanks: (db: Db, workspaceId: string, ids: string[]): Promise<void> => ticketStore.setQueueRanks(db, workspaceId, ids),

    /** Depth and oldest wait of every non-empty queue (teams' and the no-team queue), from queueStats. */
    /** The `limit` open tickets most past their SLA due time at `now` (the digest's overdue list). */
    mostOverdue: (db: Db, workspaceId: string, now: Date, limit = 5): Promise<OverdueTicket[]> => ticketStore.mostOverdue(db, workspaceId, now, limit),

    async queueDepths(db: Db, workspaceId: string): Promise<QueueDepth[]> {
      const byTeam = new Map<string | null, QueueDepth>();
      for (const s of await ticketStore.queueStats(db, workspaceId)) {
        const d = byTeam.get(s.teamId) ?? { teamId: s.teamId, depth: 0, oldestWaitingSince: null };
        d.depth += s.depth;
        const oldest = new Date(s.oldest);
        if (!d.oldestWaitingSince || oldest < d.oldestWaitingSince) d.oldestWaitingSince = oldest;
        byTeam.set(s.teamId, d);
      }
      return [...byTeam.values()];
    },

    /**
     * A public agent reply reached the customer at `at`: the ticket's first response (unless an
     * earlier one was), and the SLA clocks waiting for an answer are met. `by`: the agent who
     * wrote it (the metrics' first responder), null when it was not an agent.
     */
    async recordAgentReply(db: Db, workspaceId: string, id: string, at: Date, by: string | null = null): Promise<void> {
      const view = await service.get(db, workspaceId, id, { forUpdate: true });
      const before = view.ticket;
      const outcome = await sla.agentReplied(db, before, at, by);
      const firstResponse: TicketChanges = before.firstResponseAt === null || before.firstResponseAt > at ? { firstResponseAt: at } : {};
      const changes = { ...firstResponse, ...slaChanges(outcome) };
      if (!Object.keys(changes).length) return;
      const after = await ticketStore.update(db, workspaceId, id, changes, before.updatedAt);
      await eventOutbox.record(db, workspaceId, at, slaEvents(after, view.contact, outcome?.marks ?? []));
    },

    /** A customer message arrived at `at` (the ticket is locked by the caller): a next-response clock may start. */
    async recordCustomerMessage(db: Db, view: TicketView, at: Date): Promise<TicketView> {
      const outcome = await sla.customerWrote(db, view.ticket, at);
      if (!outcome) return view;
      const after = await ticketStore.update(db, view.ticket.workspaceId, view.ticket.id, slaChanges(outcome), view.ticket.updatedAt);
      await eventOutbox.record(db, after.workspaceId, at, slaEvents(after, view.contact, outcome.marks));
      return { ticket: after, contact: view.contact };
    },

    /** Like get, but null when there is no such ticket in the workspace. */
    findView: (db: Db, workspaceId: string, id: string): Promise<TicketView | null> => ticketStore.findWithContact(db, workspaceId, id),

    /** Like get without the contact, and null when there is no such ticket in the workspace. */
    find: (db: Db, workspaceId: string, id: string): Promise<Ticket | null> => ticketStore.findById(db, workspaceId, id),

    /** The ticket living in a forum topic, or null. */
    findByTopic: (db: Db, workspaceId: string, chatId: number, threadId: number): Promise<Ticket | null> => ticketStore.findByTopic(db, workspaceId, chatId, threadId),

    /** A customer's tickets with one bot that are not closed (nor archived), most recently active first. */
    openOfContact: (db: Db, workspaceId: string, contactId: string, accountId: string, limit = 10): Promise<Ticket[]> =>
      ticketStore.openOfContact(db, workspaceId, contactId, accountId, limit),

    /** Where the ticket's forum topic is (set by the topics module; null thread: to be recreated). */
    setTopic: (db: Db, id: string, topic: { chatId: number | null; threadId: number | null }, opts: { ifThread?: number } = {}): Promise<void> =>
      ticketStore.setTopic(db, id, topic, opts.ifThread),

    /**
     * The customer's 1-5 rating of a ticket of theirs: stored, and csat.received. False when
     * the ticket is not theirs or the rating is out of range (nothing is written).
     */
    async recordCsat(db: Db, workspaceId: string, ticketId: string, contactId: string, rating: number, at: Date = clock.now()): Promise<boolean> {
      const ticket = await ticketStore.findById(db, workspaceId, ticketId);
      if (!ticket || ticket.contactId !== contactId || !Number.isInteger(rating) || rating < 1 || rating > 5) return false;
      await ticketStore.setCsat(db, ticket.id, rating, at);
      await eventOutbox.record(db, workspaceId, at, [{
        type: 'csat.received', actor: { type: 'contact', id: contactId }, ticketId: ticket.id, contactId,
        payload: { ticket_id: ticket.id, ticket_number: ticket.number, contact_id: contactId, rating, rated_at: at.toISOString() },
        detail: { rating },
      }]);
      return true;
    },

    async timeline(db: Db, workspaceId: string, id: string, page: PageRequest) {
      await service.get(db, workspaceId, id);
      return eventOutbox.timeline(db, workspaceId, id, page);
    },

    /** For the escalation sweep: ids of live tickets whose created_at / unassigned_since is in [from, to), with one of `statuses`. */
    crossing: (db: Db, workspaceId: string, field: 'created' | 'unassigned', from: Date, to: Date, statuses: readonly TicketStatus[]): Promise<string[]> =>
      ticketStore.crossing(db, workspaceId, field, from, to, statuses),

    /** Ids of a contact's tickets that are not closed nor archived (escalation after contact.tagged). */
    openIdsOfContact: (db: Db, workspaceId: string, contactId: string): Promise<string[]> => ticketStore.openIdsOfContact(db, workspaceId, contactId),

    /** Closes resolved tickets older than their workspace's auto_close_after_hours; returns how many. */
    async autoClose(db: Db, now: Date, batchSize: number): Promise<number> {
      const due = await ticketStore.lockDueForAutoClose(db, now, batchSize);
      for (const ticket of due) {
        const contact = await contacts.get(db, ticket.workspaceId, ticket.contactId);
        await service.move(db, { ticket, contact }, 'closed', SYSTEM, 'auto_close', undefined, now);
      }
      return due.length;
    },
  };
  return service;
}

export type TicketService = ReturnType<typeof createTicketService>;
