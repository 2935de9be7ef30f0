/**
 * Topics: a ticket's life as a forum topic in the support group. Owns what the topic shows
 * (name, closed, the pinned card: ticket_topics), the Telegram message references behind our
 * messages (message_telegram_refs), and the relays — the one place copies between a customer's
 * private chat and a ticket's topic are queued, in both directions. Invariants:
 * - everything here runs in the caller's transaction and only queues Telegram calls (the send
 *   queue makes them after commit); nothing here calls Telegram;
 * - the topic's address (chat, thread) is part of the ticket and written through the tickets
 *   service; what it shows is ours, rendered from the ticket when a call is made;
 * - a message's copy goes out in its chat's order; an album's items join one queued copy.
 * Renames, card edits, closing the topic and the resolution notice are queued by the trigger
 * `tickets_telegram` (migration 20261121001600) on every change of a ticket, whatever path made
 * it, and the transfer note by `tickets_transfer_note` (migration 20261205000100) on every change
 * of assignee or team; the send executor renders them (`view()`, `transferNote()`) when it makes the call.
 */
import type { AccountService } from '../accounts/account-service.js';
import type { AgentService } from '../agents/agent-service.js';
import type { Db } from '../db/knex.js';
import { sendQueue } from '../send-queue/send-queue.js';
import type { TicketService } from '../tickets/ticket-service.js';
import type { Ticket } from '../tickets/ticket-store.js';
import { transferNoteText, type CardInput, type TransferSide } from './topic-card.js';
import { topicStore, type TelegramRef, type TopicState } from './topic-store.js';

/** A ticket as the send queue renders its topic: the card's input, where the topic is, what it shows. */
export interface TopicTicket extends CardInput, TopicState {
  workspaceId: string;
  accountId: string | null;
  contactId: string;
  supportChatId: number | null;
  topicChatId: number | null;
  topicThreadId: number | null;
}

/** A queued transfer note's payload (trigger tickets_transfer_note; `note` set by the tickets service). */
export interface TransferNotePayload {
  from_assignee_id?: string | null;
  from_team_id?: string | null;
  to_assignee_id?: string | null;
  to_team_id?: string | null;
  note?: string | null;
}

/** A Telegram message that is the original of one of ours. */
export interface SourceMessage {
  chatId: number;
  messageId: number;
  mediaGroupId?: string | null;
}

export function createTopicService(deps: { tickets: TicketService; agents: AgentService; accounts: AccountService }) {
  const { tickets, agents, accounts } = deps;

  /** Queues a copy of `source` into `target` (an album item joins its album's queued copy). */
  async function queueCopy(db: Db, r: {
    workspaceId: string; accountId: string; chatId: number; ticketId: string; messageId: string; source: SourceMessage;
    inTopic: boolean; albumGatherMs: number; at: Date;
  }): Promise<void> {
    const send = { workspaceId: r.workspaceId, accountId: r.accountId, chatId: r.chatId, op: 'copy_message' as const, ticketId: r.ticketId, at: r.at };
    const payload = { from_chat_id: r.source.chatId, message_ids: [r.source.messageId], ...(r.inTopic ? { in_topic: true } : {}) };
    if (r.source.mediaGroupId) {
      // Album items share a row; their message ids are found through the references.
      await sendQueue.enqueueAlbumItem(db, { ...send, messageId: r.inTopic ? undefined : r.messageId, payload: { ...payload, media_group_id: r.source.mediaGroupId } }, r.albumGatherMs);
    } else {
      await sendQueue.enqueue(db, { ...send, messageId: r.messageId, payload });
    }
  }

  const service = {
    /**
     * A customer's message (already recorded as ours) copied into the ticket's topic. A topic
     * closed by hand in Telegram is reopened first (same chat, so before the copy).
     */
    async copyIntoTopic(db: Db, r: { ticket: Ticket; account: { id: string; supportChatId: number | null }; messageId: string; source: SourceMessage; albumGatherMs: number; at: Date }): Promise<void> {
      await topicStore.addRef(db, { accountId: r.account.id, chatId: r.source.chatId, telegramMessageId: r.source.messageId, messageId: r.messageId, role: 'original' });
      const group = r.ticket.topicChatId ?? r.account.supportChatId;
      if (group === null) return;
      if ((await topicStore.find(db, r.ticket.id)).closed) {
        await sendQueue.enqueue(db, { workspaceId: r.ticket.workspaceId, accountId: r.account.id, chatId: group, op: 'reopen_topic', ticketId: r.ticket.id, at: r.at });
      }
      await queueCopy(db, { workspaceId: r.ticket.workspaceId, accountId: r.account.id, chatId: group, ticketId: r.ticket.id, messageId: r.messageId, source: r.source, inTopic: true, albumGatherMs: r.albumGatherMs, at: r.at });
    },

    /**
     * An agent's reply written in the topic (already recorded as ours) copied to the customer's
     * private chat, by the bot that holds that chat. `sourceAccountId` is the bot that saw it.
     */
    async copyToCustomer(db: Db, r: { ticket: Ticket; sourceAccountId: string; chat: { accountId: string; chatId: number }; messageId: string; source: SourceMessage; albumGatherMs: number; at: Date }): Promise<void> {
      await topicStore.addRef(db, { accountId: r.sourceAccountId, chatId: r.source.chatId, telegramMessageId: r.source.messageId, messageId: r.messageId, role: 'original' });
      await queueCopy(db, { workspaceId: r.ticket.workspaceId, accountId: r.chat.accountId, chatId: r.chat.chatId, ticketId: r.ticket.id, messageId: r.messageId, source: r.source, inTopic: false, albumGatherMs: r.albumGatherMs, at: r.at });
    },

    /** Remembers the original of an agent message that was stored but not relayed (it failed). */
    recordOriginal: (db: Db, accountId: string, source: SourceMessage, messageId: string) =>
      topicStore.addRef(db, { accountId, chatId: source.chatId, telegramMessageId: source.messageId, messageId, role: 'original' }),

    /** Our message behind an original Telegram message, or null (a form answer, a command…). */
    async messageOfOriginal(db: Db, accountId: string, chatId: number, telegramMessageId: number): Promise<string | null> {
      return (await topicStore.findRef(db, accountId, chatId, telegramMessageId, 'original'))?.messageId ?? null;
    },

    /**
     * An edited original: its copy (or the copy still queued) is edited to match. `caption`:
     * the words are a media caption rather than a text.
     */
    async mirrorEdit(db: Db, r: { workspaceId: string; ticketId: string | null; messageId: string; text: string; caption: boolean; at: Date }): Promise<void> {
      const [copy] = await topicStore.refsOfMessage(db, r.messageId, 'copy');
      // Where the copy lives (or will: the queued copy is ahead in the same chat's order).
      const target = copy ? { accountId: copy.accountId, chatId: copy.chatId } : await sendQueue.findCopyTarget(db, r.messageId);
      if (!target) return;
      await sendQueue.enqueue(db, {
        workspaceId: r.workspaceId, accountId: target.accountId, chatId: target.chatId, op: 'edit_copy', ticketId: r.ticketId,
        payload: { message_id: r.messageId, ...(r.caption ? { caption: r.text } : { text: r.text }) }, at: r.at,
      });
    },

    /** A line from the bot in the ticket's topic (a delivery problem, say); nothing without a topic's group. */
    async postInTopic(db: Db, t: { id: string; workspaceId: string; accountId: string | null; topicChatId: number | null }, text: string, at: Date): Promise<void> {
      if (!t.accountId) return;
      const chatId = t.topicChatId ?? (await accounts.findById(db, t.workspaceId, t.accountId))?.supportChatId ?? null;
      if (chatId === null) return;
      await sendQueue.enqueue(db, { workspaceId: t.workspaceId, accountId: t.accountId, chatId, op: 'send_message', ticketId: t.id, payload: { text, in_topic: true }, at });
    },

    /** The card posted again at the bottom of the topic, pinned (/ticket). */
    repostCard: (db: Db, t: { id: string; workspaceId: string; accountId: string }, chatId: number, at: Date) =>
      sendQueue.enqueue(db, { workspaceId: t.workspaceId, accountId: t.accountId, chatId, op: 'post_card', ticketId: t.id, at }),

    /** The ticket whose topic this is, or null. */
    ticketInTopic: (db: Db, workspaceId: string, chatId: number, threadId: number) => tickets.findByTopic(db, workspaceId, chatId, threadId),

    /** What the send queue renders a ticket's topic and card from; null when the ticket is gone. */
    async view(db: Db, workspaceId: string, ticketId: string): Promise<TopicTicket | null> {
      const found = await tickets.findView(db, workspaceId, ticketId);
      if (!found) return null;
      const { ticket: t, contact } = found;
      const [assignee, team, account, state] = await Promise.all([
        t.assigneeId ? agents.findById(db, workspaceId, t.assigneeId) : null,
        t.teamId ? agents.findTeam(db, workspaceId, t.teamId) : null,
        t.accountId ? accounts.findById(db, workspaceId, t.accountId) : null,
        topicStore.find(db, t.id),
      ]);
      return {
        ...state,
        id: t.id, workspaceId, accountId: t.accountId, contactId: t.contactId, number: t.number, subject: t.subject,
        description: t.description, status: t.status, priority: t.priority, category: t.category, tags: t.tags,
        customer: {
          name: contact.name ?? ([contact.firstName, contact.lastName].filter(Boolean).join(' ') || null),
          username: contact.username, telegramUserId: contact.telegramUserId === null ? null : Number(contact.telegramUserId), email: contact.email,
        },
        assignee: assignee ? { name: assignee.name, username: assignee.username } : null, team: team?.name ?? null,
        firstResponseDueAt: t.firstResponseDueAt, firstResponseAt: t.firstResponseAt, nextResponseDueAt: t.nextResponseDueAt,
        resolutionDueAt: t.resolutionDueAt, slaPaused: t.slaPaused,
        supportChatId: account?.supportChatId ?? null, topicChatId: t.topicChatId, topicThreadId: t.topicThreadId,
      };
    },

    /**
     * The transfer note's line, naming the agents and teams as they are called now; null when
     * the burst of changes it stands for ended where it started (nothing to post).
     */
    async transferNote(db: Db, workspaceId: string, p: TransferNotePayload): Promise<string | null> {
      const side = async (assigneeId: string | null | undefined, teamId: string | null | undefined): Promise<TransferSide> => {
        const [agent, team] = await Promise.all([
          assigneeId ? agents.findById(db, workspaceId, assigneeId) : null,
          teamId ? agents.findTeam(db, workspaceId, teamId) : null,
        ]);
        return {
          assignee: assigneeId ? { id: assigneeId, name: agent?.name ?? 'a removed agent', username: agent?.username ?? null } : null,
          team: teamId ? { id: teamId, name: team?.name ?? 'a removed team' } : null,
        };
      };
      const [from, to] = await Promise.all([side(p.from_assignee_id, p.from_team_id), side(p.to_assignee_id, p.to_team_id)]);
      return transferNoteText(from, to, p.note ?? null);
    },

    /** Telegram created the topic: where it is and its name; no card yet. */
    async topicCreated(db: Db, ticketId: string, chatId: number, threadId: number, name: string): Promise<void> {
      await tickets.setTopic(db, ticketId, { chatId, threadId });
      await topicStore.save(db, ticketId, { name, closed: false, cardMessageId: null, cardText: null, cardPinned: false });
    },

    /** Forgets a topic Telegram says is gone, unless another one replaced it meanwhile. */
    async topicGone(db: Db, t: { id: string; topicChatId: number | null; topicThreadId: number | null }): Promise<void> {
      if (t.topicThreadId === null) return;
      await tickets.setTopic(db, t.id, { chatId: t.topicChatId, threadId: null }, { ifThread: t.topicThreadId });
      await topicStore.save(db, t.id, { name: null, closed: false, cardMessageId: null, cardText: null, cardPinned: false });
    },

    /** What the topic shows now, as Telegram confirmed it. */
    shown: (db: Db, ticketId: string, changes: Partial<TopicState>) => topicStore.save(db, ticketId, changes),

    /** Like shown, but only while the ticket's topic is still thread `threadId` (not recreated meanwhile). */
    async shownInThread(db: Db, t: { id: string; workspaceId: string }, threadId: number | null, changes: Partial<TopicState>): Promise<void> {
      if ((await tickets.find(db, t.workspaceId, t.id))?.topicThreadId === threadId) await topicStore.save(db, t.id, changes);
    },

    /** Like shown, but only while `cardMessageId` is still the card (a newer card wins). */
    cardShown: (db: Db, ticketId: string, cardMessageId: number | null, changes: Partial<TopicState>) => topicStore.saveIfCard(db, ticketId, cardMessageId, changes),

    /** Our message ids behind Telegram messages of one chat (an album's items). */
    messageIdsOf: (db: Db, accountId: string, chatId: number, telegramMessageIds: number[]) => topicStore.messageIdsOf(db, accountId, chatId, telegramMessageIds),

    /** Where the copies of our message are. */
    copiesOf: (db: Db, messageId: string): Promise<TelegramRef[]> => topicStore.refsOfMessage(db, messageId, 'copy'),

    /** Copies Telegram made of originals in `fromChatId`: [source id, copy id] pairs into `chatId`. */
    async recordCopies(db: Db, accountId: string, fromChatId: number, chatId: number, pairs: [number, number][]): Promise<void> {
      for (const [source, copy] of pairs) {
        if (!copy) continue; // Telegram answers 0 for a video it scheduled instead of sending (research §4.1)
        const ref = await topicStore.findRef(db, accountId, fromChatId, source);
        if (ref) await topicStore.addRef(db, { accountId, chatId, telegramMessageId: copy, messageId: ref.messageId, role: 'copy' });
      }
    },

    /** The copy of one of our messages that a bot sent (a queued reply, say). */
    recordCopy: (db: Db, accountId: string, chatId: number, telegramMessageId: number, messageId: string) =>
      topicStore.addRef(db, { accountId, chatId, telegramMessageId, messageId, role: 'copy' }),

    /** The topic was closed or reopened by hand in Telegram: a customer message reopens it first. */
    closedByHand: (db: Db, ticketId: string, closed: boolean) => topicStore.save(db, ticketId, { closed }),
  };
  return service;
}

export type TopicService = ReturnType<typeof createTopicService>;
