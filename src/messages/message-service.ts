/**
 * Messages: replies and notes on a ticket, proactive messages (POST /v1/messages/send), and
 * the hooks the Telegram side calls (a customer message arrived; a queued message was sent
 * or failed). Invariants:
 * - an outbound message to a customer is a row in the send queue, written in the same
 *   transaction (live workspaces); a sandbox workspace never queues: the message is marked
 *   sent with simulated: true;
 * - first_response_at is set once, by the first public agent/API reply that reached the
 *   customer (sent, not merely queued); notes, bot messages and failures never count;
 * - the automatic status moves of SPEC §2.1 happen here, through the ticket service.
 */
import type { AccountService } from '../accounts/account-service.js';
import type { CannedService } from '../canned/canned-service.js';
import type { ContactService } from '../contacts/contact-service.js';
import { type Contact } from '../contacts/contact.js';
import type { Db } from '../db/knex.js';
import { eventOutbox } from '../events/event-outbox.js';
import { SYSTEM, type Actor } from '../kernel/actor.js';
import { AppError, notFound } from '../kernel/errors.js';
import { requireOneOf } from '../kernel/validation.js';
import type { PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { sendQueue } from '../send-queue/send-queue.js';
import type { TicketService, TicketView, Workspace } from '../tickets/ticket-service.js';
import { statusAfterAgentReply, statusAfterCustomerMessage } from '../tickets/ticket-status.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import { MAX_TEXT, type SendMessageBody } from './message-schemas.js';
import { messageStore, presentMessage, type Message } from './message-store.js';
import { renderVariables } from './template.js';

/** Where an outbound message goes: a private chat through a bot, or nowhere (sandbox). */
interface Route {
  accountId: string | null;
  chatId: number | null;
  simulated: boolean;
}

const unreachable = (detail: string) => new AppError('recipient_unreachable', detail);

/** Seconds until the next UTC midnight, when the daily cap starts over. */
function secondsToUtcMidnight(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

const countsAsResponse = (m: Message) => m.ticketId !== null && m.visibility === 'public' && m.direction === 'outbound' && (m.authorType === 'agent' || m.authorType === 'api');

/** How the API shows a message; front ends other than the routes (MCP) present through the service, not the store. */
export { presentMessage };

export function createMessageService(deps: { clock: Clock; contacts: ContactService; tickets: TicketService; accounts: AccountService; workspaces: WorkspaceService; canned: CannedService }) {
  const { clock, contacts, tickets, accounts, workspaces, canned } = deps;

  /**
   * A bot may only write to someone who wrote to it first, and not to someone who blocked it.
   * In a sandbox nothing is sent, so a contact with a Telegram identity is taken as reachable.
   */
  async function routeTo(db: Db, ws: Workspace, contact: Contact, accountId: string | null): Promise<Route> {
    const who = contact.username ? `@${contact.username}` : contact.name ?? contact.id;
    if (contact.blocked) throw unreachable(`${who} has blocked the bot`);
    const chat = await contacts.chatFor(db, ws.id, contact.id, accountId);
    if (ws.mode === 'sandbox') {
      if (!chat && contact.telegramUserId === null) throw unreachable(`${who} has no Telegram account on record`);
      return { accountId: chat?.accountId ?? accountId, chatId: chat?.chatId ?? contact.telegramUserId, simulated: true };
    }
    if (!chat) throw unreachable(`${who} has never started ${accountId ? 'this bot' : 'a bot of this workspace'}; a bot cannot write first`);
    return { accountId: chat.accountId, chatId: chat.chatId, simulated: false };
  }

  /** Writes an outbound public message and queues (or, in a sandbox, simulates) its delivery. */
  async function sendOut(db: Db, ws: Workspace, m: Omit<Message, 'status' | 'failureReason' | 'simulated' | 'sentAt' | 'accountId' | 'direction' | 'visibility' | 'attachments'>, route: Route): Promise<Message> {
    const message = await messageStore.insert(db, {
      ...m, accountId: route.accountId, direction: 'outbound', visibility: 'public', attachments: [],
      status: route.simulated ? 'sent' : 'queued', failureReason: null, simulated: route.simulated,
      sentAt: route.simulated ? m.createdAt : null,
    });
    if (route.simulated) await afterSent(db, message, { type: m.authorType, id: m.authorId });
    else await sendQueue.enqueue(db, { workspaceId: ws.id, accountId: route.accountId!, chatId: route.chatId, op: 'send_message', ticketId: m.ticketId, messageId: message.id, payload: { text: message.text }, at: m.createdAt });
    return message;
  }

  /** message.sent, and the ticket's first response when this is it. */
  async function afterSent(db: Db, m: Message, actor: Actor): Promise<void> {
    await eventOutbox.record(db, m.workspaceId, m.sentAt!, [{ type: 'message.sent', actor, ticketId: m.ticketId, contactId: m.contactId, messageId: m.id, payload: presentMessage(m) }]);
    if (countsAsResponse(m)) {
      await tickets.recordAgentReply(db, m.workspaceId, m.ticketId!, m.sentAt!, m.authorType === 'agent' ? m.authorId : null);
    }
  }

  async function resolveRecipient(db: Db, workspaceId: string, to: string | number): Promise<Contact> {
    if (typeof to === 'string' && to.startsWith('ct_')) return contacts.get(db, workspaceId, to);
    const byUsername = typeof to === 'string' && to.startsWith('@');
    if (!byUsername && !Number.isSafeInteger(Number(to))) {
      throw new AppError('validation_error', 'to is not a Telegram user id', { details: [{ field: 'to', error: 'is larger than any Telegram user id', received: to }] });
    }
    const match = byUsername ? { username: to.slice(1) } : { telegramUserId: Number(to) };
    const [contact] = await contacts.lockMatching(db, workspaceId, match);
    if (!contact) throw unreachable(`${byUsername ? to : `Telegram user ${to}`} has never written to a bot of this workspace`);
    return contact;
  }

  /**
   * A canned response rendered for the ticket (an agent speaks for themselves; the API for the
   * ticket's assignee) and counted as used. Empty or too long once filled in: 422.
   */
  async function cannedText(db: Db, workspaceId: string, cannedId: string, ticketId: string, actor: Actor): Promise<string> {
    const { text, missing } = await canned.use(db, workspaceId, cannedId, ticketId, actor.type === 'agent' ? actor.id : null);
    if (text.trim() && text.length <= MAX_TEXT) return text;
    const why = text.trim() ? `is ${text.length} characters once its variables are filled in (at most ${MAX_TEXT})` : `is empty once its variables are filled in (empty: ${missing.join(', ') || 'none'})`;
    throw new AppError('validation_error', `The canned response ${why}`, { details: [{ field: 'canned_response_id', error: why, received: cannedId }] });
  }

  const service = {
    /** An internal note on a ticket: never sent to the customer. */
    addNote(db: Db, t: { id: string; workspaceId: string; contactId: string; accountId: string | null }, text: string, actor: Actor, at: Date = clock.now()): Promise<Message> {
      return messageStore.insertNote(db, { id: newId('msg'), workspaceId: t.workspaceId, ticketId: t.id, contactId: t.contactId, accountId: t.accountId, author: actor, text, at });
    },

    async get(db: Db, workspaceId: string, id: string): Promise<Message> {
      const m = await messageStore.findById(db, workspaceId, id);
      if (!m) throw notFound('Message');
      return m;
    },

    async listForTicket(db: Db, workspaceId: string, ticketId: string, q: PageRequest & { visibility?: 'public' | 'internal' }) {
      await tickets.get(db, workspaceId, ticketId);
      return messageStore.listForTicket(db, workspaceId, ticketId, q);
    },

    /**
     * A reply (public) or note (internal) on a ticket. A public reply goes to the customer
     * and puts a ticket in work on waiting_on_customer.
     */
    async postToTicket(db: Db, ws: Workspace, ticketId: string, body: { text?: string; canned_response_id?: string; internal?: boolean }, actor: Actor): Promise<Message> {
      requireOneOf(body, ['text', 'canned_response_id']);
      const view = await tickets.get(db, ws.id, ticketId, { forUpdate: true });
      const { ticket, contact } = view;
      const text = body.canned_response_id ? await cannedText(db, ws.id, body.canned_response_id, ticketId, actor) : body.text!;
      const at = clock.now();
      const base = { id: newId('msg'), workspaceId: ws.id, ticketId, contactId: contact.id, authorType: actor.type, authorId: actor.id, text, createdAt: at };
      if (body.internal) {
        return messageStore.insertNote(db, { id: base.id, workspaceId: ws.id, ticketId, contactId: contact.id, accountId: ticket.accountId, author: actor, text, at });
      }
      if (ticket.status === 'closed') throw new AppError('conflict', 'The ticket is closed; the customer\'s next message starts a new ticket');
      const message = await sendOut(db, ws, base, await routeTo(db, ws, contact, ticket.accountId));
      const next = statusAfterAgentReply(ticket.status);
      if (next) await tickets.move(db, view, next, actor, 'agent_reply');
      return message;
    },

    /** POST /v1/messages/send: a proactive message, counted against the bot's daily cap. */
    async send(db: Db, ws: Workspace, body: SendMessageBody, actor: Actor): Promise<{ message: Message; eta: Date }> {
      if (body.account_id && !(await accounts.findById(db, ws.id, body.account_id))) throw notFound('Account');
      const contact = await resolveRecipient(db, ws.id, body.to);
      const route = await routeTo(db, ws, contact, body.account_id ?? null);
      const text = renderVariables(body.text, { firstName: contact.firstName, lastName: contact.lastName, name: contact.name, username: contact.username });
      if (!text.trim() || text.length > MAX_TEXT) {
        throw new AppError('validation_error', `The text with its variables filled in must be 1-${MAX_TEXT} characters`, {
          details: [{ field: 'text', error: `is ${text.trim() ? text.length : 0} characters once variables are filled in` }],
        });
      }
      const at = clock.now();
      const settings = await workspaces.get(db, ws.id);
      const day = at.toISOString().slice(0, 10);
      if (!(await messageStore.takeDailySend(db, ws.id, route.accountId ?? '-', day, settings!.dailySendLimit))) {
        throw new AppError('daily_send_limit_exceeded', `This bot has sent its ${settings!.dailySendLimit} proactive messages for today (UTC); the count resets at midnight UTC`, {
          headers: { 'Retry-After': String(secondsToUtcMidnight(at)) },
        });
      }
      const eta = route.simulated ? at : await sendQueue.eta(db, route.accountId!, at);
      const message = await sendOut(db, ws, { id: newId('msg'), workspaceId: ws.id, ticketId: null, contactId: contact.id, authorType: actor.type, authorId: actor.id, text, createdAt: at }, route);
      return { message, eta };
    },

    /**
     * The Telegram side: a customer message for an open ticket. Records the private chat
     * (the contact is reachable from now on), writes message.received and makes the
     * automatic moves (waiting → in work; resolved → reopened when the workspace says so).
     */
    async recordInbound(db: Db, ws: Workspace, ticketId: string, m: { text: string; attachments?: Record<string, unknown>[]; accountId: string | null; chatId: number | null }): Promise<{ message: Message; ticket: TicketView }> {
      let view = await tickets.get(db, ws.id, ticketId, { forUpdate: true });
      if (view.ticket.status === 'closed') throw new AppError('conflict', 'The ticket is closed; start a new one');
      const at = clock.now();
      const actor: Actor = { type: 'contact', id: view.contact.id };
      if (m.accountId && m.chatId !== null) await contacts.recordChat(db, { workspaceId: ws.id, contactId: view.contact.id, accountId: m.accountId, chatId: m.chatId, at });
      // Writing to the bot means they unblocked it.
      if (view.contact.blocked) view = { ...view, contact: await contacts.update(db, ws.id, view.contact.id, { blocked: false }, actor) };
      const message = await messageStore.insert(db, {
        id: newId('msg'), workspaceId: ws.id, ticketId, contactId: view.contact.id, accountId: m.accountId, direction: 'inbound',
        visibility: 'public', authorType: 'contact', authorId: view.contact.id, text: m.text, attachments: m.attachments ?? [],
        status: 'received', failureReason: null, simulated: false, createdAt: at, sentAt: null,
      });
      await eventOutbox.record(db, ws.id, at, [{ type: 'message.received', actor, ticketId, contactId: view.contact.id, messageId: message.id, payload: presentMessage(message) }]);
      view = await tickets.recordCustomerMessage(db, view, at);
      const settings = await workspaces.get(db, ws.id);
      const next = statusAfterCustomerMessage(view.ticket.status, { assigned: view.ticket.assigneeId !== null, reopenResolved: settings!.reopenResolvedOnReply });
      if (next) view = await tickets.move(db, view, next, actor, 'customer_message');
      return { message, ticket: view };
    },

    /**
     * The Telegram side: an agent wrote in the ticket's topic. The message is recorded as queued
     * with the private chat it goes to (the caller queues the copy: topics.copyToCustomer). When
     * it cannot be delivered (closed ticket, blocked customer, no private chat) the reason is
     * returned for the topic; a message that was written is then stored failed.
     */
    async replyFromTelegram(db: Db, ws: Workspace, ticketId: string, r: { agentId: string; text: string; attachments: Record<string, unknown>[] }): Promise<{
      message: Message | null; view: TicketView; chat: { accountId: string; chatId: number } | null; problem: string | null;
    }> {
      const view = await tickets.get(db, ws.id, ticketId, { forUpdate: true });
      const { ticket, contact } = view;
      if (ticket.status === 'closed') return { message: null, view, chat: null, problem: 'This ticket is closed, so the customer did not get this message. Their next message opens a new ticket.' };
      const at = clock.now();
      const actor: Actor = { type: 'agent', id: r.agentId };
      const chat = contact.blocked ? null : await contacts.chatFor(db, ws.id, contact.id, ticket.accountId);
      const problem = contact.blocked ? 'The customer has blocked the bot' : chat ? null : 'The customer has never started the bot, so it cannot write to them';
      const message = await messageStore.insert(db, {
        id: newId('msg'), workspaceId: ws.id, ticketId, contactId: contact.id, accountId: chat?.accountId ?? ticket.accountId, direction: 'outbound',
        visibility: 'public', authorType: 'agent', authorId: r.agentId, text: r.text, attachments: r.attachments,
        status: problem ? 'failed' : 'queued', failureReason: problem, simulated: false, createdAt: at, sentAt: null,
      });
      if (problem) {
        await eventOutbox.record(db, ws.id, at, [{ type: 'message.failed', actor, ticketId, contactId: contact.id, messageId: message.id, payload: presentMessage(message), detail: { reason: problem } }]);
        return { message, view, chat: null, problem: `Not delivered: ${problem.charAt(0).toLowerCase()}${problem.slice(1)}.` };
      }
      const next = statusAfterAgentReply(ticket.status);
      const moved = next ? await tickets.move(db, view, next, actor, 'agent_reply') : view;
      return { message, view: moved, chat, problem: null };
    },

    /**
     * The Telegram side: the words of a message were edited (its original in Telegram).
     * Returns the message when its copies should follow (public, and the words changed).
     */
    async editText(db: Db, workspaceId: string, id: string, text: string): Promise<Message | null> {
      const m = await messageStore.findById(db, workspaceId, id);
      if (!m || m.text === text) return null;
      await messageStore.updateText(db, id, text);
      return m.visibility === 'public' ? { ...m, text } : null;
    },

    /** The Telegram side: a queued message reached the customer. Settling twice is a no-op. */
    async markSent(db: Db, messageId: string, at: Date): Promise<Message | null> {
      const m = await messageStore.settle(db, messageId, { status: 'sent', at });
      if (m) await afterSent(db, m, SYSTEM);
      return m;
    },

    /** The Telegram side: a queued message cannot be delivered (blocked, chat gone…). */
    async markFailed(db: Db, messageId: string, reason: string, at: Date): Promise<Message | null> {
      const m = await messageStore.settle(db, messageId, { status: 'failed', at, reason });
      if (m) await eventOutbox.record(db, m.workspaceId, at, [{ type: 'message.failed', actor: SYSTEM, ticketId: m.ticketId, contactId: m.contactId, messageId: m.id, payload: presentMessage(m), detail: { reason } }]);
      return m;
    },
  };
  return service;
}

export type MessageService = ReturnType<typeof createMessageService>;
