/**
 * Tickets: creation (number, contact, references), changes, the status workflow and
 * assignment. Invariants:
 * - every change runs in the caller's transaction with the ticket row locked, and writes
 *   its events (the outbox) in that transaction;
 * - ids in bodies (contact, team, agent, bot) are looked up in the caller's workspace only:
 *   another workspace's id is "not found" (and composite foreign keys make it impossible anyway);
 * - status moves follow ticket-status.ts; refused moves are 409 invalid_transition.
 */
import { accountStore, type Account } from '../accounts/account-store.js';
import { agentStore, teamStore } from '../agents/agent-store.js';
import { presentContact, type ContactService } from '../contacts/contact-service.js';
import { toContact, type Contact } from '../contacts/contact-store.js';
import type { Db } from '../db/knex.js';
import { eventRow, eventStore, type NewEvent } from '../events/event-store.js';
import { SYSTEM, type Actor } from '../kernel/actor.js';
import { AppError, notFound } from '../kernel/errors.js';
import { paginate, type PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { changedFields, MAX_CUSTOM_FIELDS, mergeCustomFields, normalizeTags } from '../lib/tags.js';
import { sendQueue } from '../send-queue/send-queue.js';
import type { CreateTicketBody, ListTicketsQuery, PatchTicketBody, TicketJson } from './ticket-schemas.js';
import { applyTransition, isReopen, refusal, type TicketStatus } from './ticket-status.js';
import { contactOf, ticketStore, toTicket, type NewTicket, type Ticket, type TicketChanges } from './ticket-store.js';

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
    sla: { policy_id: t.slaPolicyId, first_response_due_at: iso(t.firstResponseDueAt), resolution_due_at: iso(t.resolutionDueAt), breaches: [] },
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

export function createTicketService(deps: { clock: Clock; contacts: ContactService; notes: TicketNotes }) {
  const { clock, contacts, notes } = deps;

  async function teamInWorkspace(db: Db, workspaceId: string, id: string): Promise<void> {
    if (!(await teamStore.findById(db, workspaceId, id))) throw notFound('Team');
  }

  async function activeAgent(db: Db, workspaceId: string, id: string): Promise<void> {
    const agent = await agentStore.findById(db, workspaceId, id);
    if (!agent) throw notFound('Agent');
    if (!agent.active) throw new AppError('conflict', `Agent ${id} is inactive and cannot take tickets`);
  }

  /**
   * The ticket's contact (by id, or matched/created from inline fields) and its bot: the one
   * asked for, else the one the contact last wrote to, else the workspace's default.
   */
  async function contactAndAccount(db: Db, workspaceId: string, body: CreateTicketBody, actor: Actor): Promise<{ contact: Contact; account: Account | null }> {
    let contact: Contact;
    let account: Account | null;
    if (body.contact_id) {
      const found = await accountStore.contactWithPreferred(db, workspaceId, body.contact_id);
      if (!found) throw notFound('Contact');
      contact = toContact(found.contactRow);
      account = found.account;
    } else {
      contact = (await contacts.upsert(db, workspaceId, body.contact!, actor)).contact;
      account = body.account_id ? null : await accountStore.preferredFor(db, workspaceId, contact.id);
    }
    if (body.account_id) {
      account = await accountStore.findById(db, workspaceId, body.account_id);
      if (!account) throw notFound('Account');
    }
    return { contact, account };
  }

  const service = {
    async create(db: Db, ws: Workspace, body: CreateTicketBody, actor: Actor): Promise<TicketView> {
      const { contact, account } = await contactAndAccount(db, ws.id, body, actor);
      if (body.team_id) await teamInWorkspace(db, ws.id, body.team_id);
      if (body.assignee_id) await activeAgent(db, ws.id, body.assignee_id);
      const { value: customFields } = mergeCustomFields({}, body.custom_fields ?? {});
      const at = clock.now();
      const fields: NewTicket = {
        id: newId('tkt'), workspaceId: ws.id, subject: body.subject.trim(), description: body.description ?? '',
        status: 'open', priority: body.priority ?? 'normal', category: body.category ?? null,
        tags: normalizeTags(body.tags ?? []), customFields, contactId: contact.id, teamId: body.team_id ?? null,
        assigneeId: body.assignee_id ?? null, accountId: account?.id ?? null, createdAt: at, updatedAt: at,
      };
      // The forum topic is created by the Telegram workers (never inside this transaction).
      if (ws.mode === 'live' && account?.supportChatId) {
        await sendQueue.enqueue(db, { workspaceId: ws.id, accountId: account.id, chatId: account.supportChatId, op: 'create_topic', ticketId: fields.id, at });
      }
      // Last: numbering serialises the workspace's ticket creations until this transaction ends.
      const unnumbered = { ...fields, number: 0, firstResponseAt: null, resolvedAt: null, closedAt: null, reopenedCount: 0, archivedAt: null, slaPolicyId: null, firstResponseDueAt: null, resolutionDueAt: null, topicChatId: null, topicThreadId: null };
      const created = eventRow(ws.id, at, { type: 'ticket.created', actor, ticketId: fields.id, contactId: contact.id, payload: presentTicket(unnumbered, contact) });
      const ticket = await ticketStore.insertNumbered(db, fields, created);
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
    async applyChanges(db: Db, view: TicketView, changes: TicketChanges, actor: Actor): Promise<TicketView> {
      const before = view.ticket;
      const keys = (Object.keys(changes) as (keyof TicketChanges)[]).filter((k) => JSON.stringify(changes[k]) !== JSON.stringify(before[k]));
      if (keys.length === 0) return view;
      const at = clock.now();
      const after = await ticketStore.update(db, before.workspaceId, before.id, Object.fromEntries(keys.map((k) => [k, changes[k]])), at);
      const detail = changedFields(before, after, keys.filter((k) => k !== 'archivedAt'));
      if (keys.includes('archivedAt')) detail.archived = { from: before.archivedAt !== null, to: after.archivedAt !== null };
      await eventStore.record(db, before.workspaceId, at, [{ type: 'ticket.updated', actor, ticketId: after.id, contactId: after.contactId, payload: presentTicket(after, view.contact), detail: { changes: detail } }]);
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
      const fields = applyTransition(before, to, at);
      const after = await ticketStore.update(db, before.workspaceId, before.id, fields, at);
      const payload = presentTicket(after, view.contact);
      const detail = { from: before.status, to, reason, ...(note ? { note } : {}) };
      const base = { actor, ticketId: after.id, contactId: after.contactId, payload, detail };
      const events: NewEvent[] = [{ type: 'ticket.status_changed', ...base }];
      const specific = isReopen(before.status, to) ? 'ticket.reopened' : STATUS_EVENT[to];
      if (specific) events.push({ type: specific, ...base });
      await eventStore.record(db, after.workspaceId, at, events);
      return { ticket: after, contact: view.contact };
    },

    async assign(db: Db, workspaceId: string, id: string, body: { agent_id?: string | null; team_id?: string | null; note?: string }, actor: Actor): Promise<TicketView> {
      const view = await service.get(db, workspaceId, id, { forUpdate: true });
      if (body.agent_id) await activeAgent(db, workspaceId, body.agent_id);
      if (body.team_id) await teamInWorkspace(db, workspaceId, body.team_id);
      if (view.ticket.status === 'closed') throw new AppError('conflict', 'A closed ticket cannot be reassigned');
      const before = view.ticket;
      const changes: TicketChanges = {};
      if (body.agent_id !== undefined && body.agent_id !== before.assigneeId) changes.assigneeId = body.agent_id;
      if (body.team_id !== undefined && body.team_id !== before.teamId) changes.teamId = body.team_id;
      const at = clock.now();
      let after = before;
      if (Object.keys(changes).length) {
        after = await ticketStore.update(db, workspaceId, id, changes, at);
        // Both, changed or not, so a consumer never has to guess the other half.
        const detail: Record<string, unknown> = {
          assignee_id: { from: before.assigneeId, to: after.assigneeId },
          team_id: { from: before.teamId, to: after.teamId },
        };
        if (body.note) detail.note = body.note;
        await eventStore.record(db, workspaceId, at, [{ type: 'ticket.assigned', actor, ticketId: id, contactId: after.contactId, payload: presentTicket(after, view.contact), detail }]);
      }
      if (body.note) await notes.add(db, after, body.note, actor, at);
      return { ticket: after, contact: view.contact };
    },

    async timeline(db: Db, workspaceId: string, id: string, page: PageRequest) {
      await service.get(db, workspaceId, id);
      return eventStore.timeline(db, workspaceId, id, page);
    },

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
