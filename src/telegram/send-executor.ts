/**
 * Carries out one claimed send-queue row: the Bot API call(s), then, in one transaction
 * fenced by the claim, the row's outcome and what it means (message sent or failed, copy
 * references for mirroring edits, the ticket's topic state). Telegram is never called inside
 * a transaction. Failures follow telegram-errors.ts:
 * - 429: the chat (or bot) pauses for retry_after and the row waits, without counting a failure;
 * - 5xx/network: retried with exponential backoff, failed after `maxFailures`. Such an answer
 *   may hide that Telegram did the call (no idempotency key, no way to look): the retry may
 *   repeat a post (README "Telegram faults"), never lose one;
 * - a row that makes several calls keeps each one's result as Telegram confirms it (the topic,
 *   card and pin on the ticket, /ticket's card with the row), so a retry repeats none of them;
 * - topic deleted: the topic is recreated with its card and the call made again there;
 *   topic closed: reopened, then the call made again;
 * - customer blocked the bot: contact marked blocked, message failed, a note in the topic;
 * - anything else permanent: the row and its message fail with Telegram's reason.
 */
import type { SlaService } from '../sla/sla-service.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ContactService } from '../contacts/contact-service.js';
import type { Db } from '../db/knex.js';
import { SYSTEM } from '../kernel/actor.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { MessageService } from '../messages/message-service.js';
import type { TopicService, TopicTicket } from '../topics/topic-service.js';
import { AccountGone, type BotApi } from './bot-api.js';
import { blockedReason, classifyTelegramError, type Failure } from './telegram-errors.js';
import { sendQueue, botKey, chatKey, type PacingRules, type QueuedSend } from '../send-queue/send-queue.js';
import { cardKeyboard, cardText, resolutionNotice, topicName, TOPIC_COLOR } from '../topics/topic-card.js';
import { inTransaction, rollback } from '../db/transaction.js';

export interface RetrySettings {
  maxFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The outcome of the calls, recorded with the row's end. */
type Effects = (tx: Db) => Promise<void>;

class Skip {
  constructor(readonly reason: string) {}
}

/** A row rendered from a ticket that is gone, or an op that cannot be done by design. */
class Permanent extends Error {}

/** What the send queue asks the SLA module: the text of a queued notice. */
type SlaNotices = Pick<SlaService, 'noticeText'>;

export function createSendExecutor(deps: { db: Db; logger: Logger; clock: Clock; api: BotApi; messages: MessageService; contacts: ContactService; topics: TopicService; sla: SlaNotices; retry: RetrySettings; pacing: PacingRules }) {
  const { db, logger, clock, messages, contacts, topics, sla, retry } = deps;
  /**
   * Calls for one row. The first waits for the row's slot (a row claimed ahead of it). A row
   * that posts more than one message into its chat (a topic with its card, then the message)
   * spaces them by the chat's one-a-second rule.
   */
  const lastPost = new WeakMap<QueuedSend, number>();
  /** Rows that have made a call (which may have reached Telegram, whatever its answer). */
  const called = new WeakSet<QueuedSend>();
  const POSTS = new Set(['createForumTopic', 'sendMessage', 'copyMessage', 'copyMessages', 'forwardMessage']);
  const currentRow = new AsyncLocalStorage<QueuedSend>();
  const api: BotApi = {
    client: deps.api.client,
    async call(accountId, method, payload) {
      const row = currentRow.getStore();
      if (row && !called.has(row) && row.slotAt) await waitUntil(row.slotAt.getTime());
      if (row && POSTS.has(method)) {
        const last = lastPost.get(row);
        const wait = last === undefined ? 0 : last + deps.pacing.perChat.windowMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        lastPost.set(row, Date.now());
      }
      if (row) called.add(row);
      return deps.api.call(accountId, method, payload);
    },
  };

  /**
   * Until the clock reads `at`: a timer can end a millisecond before the clock turns, so it
   * looks again — a few times at most (a test's stopped clock never turns: the row then waits
   * no longer than its slot was ahead of the claim).
   */
  async function waitUntil(at: number): Promise<void> {
    for (let i = 0, wait = at - clock.now().getTime(); i < 3 && wait > 0; i++, wait = at - clock.now().getTime()) {
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * A call a row makes at most once: its result is kept with the row as soon as Telegram
   * returns it, so a retry after a later call of the row failed (a 429 or 5xx on the pin after
   * the post) reuses it instead of posting again.
   */
  async function once<T>(s: QueuedSend, step: string, call: () => Promise<T>): Promise<T> {
    const done = s.payload.done?.[step];
    if (done !== undefined && done !== null) return done as T;
    const result = await call();
    await sendQueue.recordStep(db, s, step, result);
    return result;
  }

  async function ticketOf(s: QueuedSend): Promise<TopicTicket> {
    const t = s.ticketId ? await topics.view(db, s.workspaceId, s.ticketId) : null;
    if (!t) throw new Permanent(`ticket ${s.ticketId} not found`);
    return t;
  }

  /**
   * The ticket's topic, set up to the pinned card: creates what is missing (a new ticket, or a
   * topic deleted by hand). Each step is saved as soon as Telegram confirms it, so a crash
   * between steps repeats none of the earlier ones.
   */
  async function ensureTopic(s: QueuedSend, t: TopicTicket): Promise<{ chatId: number; threadId: number; ticket: TopicTicket }> {
    let chatId = t.topicChatId ?? t.supportChatId;
    if (chatId === null) throw new Permanent('The bot has no support group (support_chat_id) to create the topic in');
    if (t.topicThreadId === null) {
      const name = topicName(t);
      const topic = await api.call<{ message_thread_id: number }>(s.accountId, 'createForumTopic', { chat_id: chatId, name, icon_color: TOPIC_COLOR[t.priority] });
      await topics.topicCreated(db, t.id, chatId, topic.message_thread_id, name);
      t = { ...t, topicChatId: chatId, topicThreadId: topic.message_thread_id, name, closed: false, cardMessageId: null, cardText: null, cardPinned: false };
      logger.info({ ticket_id: t.id, chat_id: chatId, thread_id: topic.message_thread_id }, 'forum topic created');
    }
    chatId = t.topicChatId!;
    if (t.cardMessageId === null) {
      const text = cardText(t);
      const card = await api.call<{ message_id: number }>(s.accountId, 'sendMessage', { chat_id: chatId, message_thread_id: t.topicThreadId, text, reply_markup: cardKeyboard(t) });
      await topics.shown(db, t.id, { cardMessageId: card.message_id, cardText: text, cardPinned: false });
      t = { ...t, cardMessageId: card.message_id, cardText: text, cardPinned: false };
    }
    if (!t.cardPinned) {
      try {
        await api.call(s.accountId, 'pinChatMessage', { chat_id: chatId, message_id: t.cardMessageId, disable_notification: true });
      } catch (err) {
        const f = classifyTelegramError(err);
        if (f.kind !== 'permanent') throw err;
        // Missing pin rights must not stop the ticket: the card is there, just not pinned.
        logger.warn({ ticket_id: t.id, reason: f.reason }, 'could not pin the ticket card: give the bot the right to pin messages');
      }
      await topics.shown(db, t.id, { cardPinned: true });
      t = { ...t, cardPinned: true };
    }
    return { chatId, threadId: t.topicThreadId!, ticket: t };
  }

  /** Forgets a topic Telegram says is gone (only if no one has replaced it meanwhile). */
  async function forgetTopic(t: TopicTicket, reason: string): Promise<TopicTicket> {
    await topics.topicGone(db, t);
    logger.warn({ ticket_id: t.id, thread_id: t.topicThreadId, reason }, 'forum topic is gone: recreating it');
    return { ...t, topicThreadId: null, name: null, closed: false, cardMessageId: null, cardText: null, cardPinned: false };
  }

  async function reopenTopic(s: QueuedSend, t: TopicTicket): Promise<void> {
    try {
      await api.call(s.accountId, 'reopenForumTopic', { chat_id: t.topicChatId, message_thread_id: t.topicThreadId });
    } catch (err) {
      if (classifyTelegramError(err).kind !== 'not_modified') throw err;
    }
    await topics.shown(db, t.id, { closed: false });
  }

  /**
   * A call into the ticket's topic; a deleted topic is recreated and a closed one reopened,
   * once. Returns Telegram's answer and the chat it went to.
   */
  async function callInTopic<T>(s: QueuedSend, method: string, payload: Record<string, unknown>): Promise<{ result: T; chatId: number }> {
    let t = await ticketOf(s);
    for (let attempt = 1; ; attempt++) {
      const topic = await ensureTopic(s, t);
      t = topic.ticket;
      try {
        return { result: await api.call<T>(s.accountId, method, { ...payload, chat_id: topic.chatId, message_thread_id: topic.threadId }), chatId: topic.chatId };
      } catch (err) {
        const f = classifyTelegramError(err);
        if (attempt > 1) throw err;
        if (f.kind === 'topic_gone') t = await forgetTopic(t, f.reason);
        // A closed ticket's topic stays closed (closing is final); anything else is reopened.
        else if (f.kind === 'topic_closed' && t.status !== 'closed') await reopenTopic(s, t);
        else if (f.kind === 'topic_closed') throw new Permanent('the ticket is closed and so is its topic');
        else throw err;
      }
    }
  }

  /**
   * Our message ids behind the Telegram messages a row copies (album items join a row later).
   * Read in `tx`, the transaction recording the outcome: a read through the pool from inside it
   * would hold one connection while waiting for another, and a busy pool would deadlock.
   */
  async function messageIdsOf(tx: Db, s: QueuedSend): Promise<string[]> {
    const ids = new Set<string>(s.messageId ? [s.messageId] : []);
    if (s.op === 'copy_message' && s.payload.from_chat_id !== undefined) {
      for (const id of await topics.messageIdsOf(tx, s.accountId, Number(s.payload.from_chat_id), (s.payload.message_ids ?? []).map(Number))) ids.add(id);
    }
    return [...ids];
  }

  const ops: { [op: string]: (s: QueuedSend) => Promise<Effects | Skip> } = {
    async send_message(s) {
      const body = { text: s.payload.text, ...(s.payload.reply_markup ? { reply_markup: s.payload.reply_markup } : {}) };
      const sent = s.payload.in_topic
        ? (await callInTopic<{ message_id: number; chat: { id: number } }>(s, 'sendMessage', body)).result
        : await api.call<{ message_id: number; chat: { id: number } }>(s.accountId, 'sendMessage', { chat_id: s.chatId, ...body });
      return async (tx) => {
        if (!s.messageId) return;
        await topics.recordCopy(tx, s.accountId, sent.chat.id, sent.message_id, s.messageId);
        await messages.markSent(tx, s.messageId, clock.now());
      };
    },

    async copy_message(s) {
      const ids = [...new Set<number>((s.payload.message_ids as number[]).map(Number))].sort((a, b) => a - b);
      const base = { from_chat_id: s.payload.from_chat_id };
      const call = async <T>(method: string, body: Record<string, unknown>) =>
        s.payload.in_topic ? callInTopic<T>(s, method, { ...base, ...body }) : { result: await api.call<T>(s.accountId, method, { chat_id: s.chatId, ...base, ...body }), chatId: s.chatId! };
      // One message: copyMessage. An album: copyMessages, which keeps the grouping (research §4.2).
      const sent = ids.length === 1
        ? await call<{ message_id: number }>('copyMessage', { message_id: ids[0] }).then((r) => ({ ...r, result: [r.result] }))
        : await call<{ message_id: number }[]>('copyMessages', { message_ids: ids });
      const copies = sent.result;
      const target = sent.chatId;
      // Telegram skips messages it cannot copy, so ids only pair up when nothing was skipped.
      const pairs: [number, number][] = copies.length === ids.length ? ids.map((id, i) => [id, copies[i].message_id]) : [];
      return async (tx) => {
        await topics.recordCopies(tx, s.accountId, Number(s.payload.from_chat_id), target, pairs);
        for (const id of await messageIdsOf(tx, s)) await messages.markSent(tx, id, clock.now());
      };
    },

    async edit_copy(s) {
      const copies = await topics.copiesOf(db, s.payload.message_id);
      if (!copies.length) return new Skip('no copy to edit');
      for (const c of copies) {
        const body = { chat_id: c.chatId, message_id: c.telegramMessageId };
        try {
          if (s.payload.caption !== undefined) await api.call(c.accountId, 'editMessageCaption', { ...body, caption: s.payload.caption });
          else await api.call(c.accountId, 'editMessageText', { ...body, text: s.payload.text });
        } catch (err) {
          if (classifyTelegramError(err).kind !== 'not_modified') throw err;
        }
      }
      return async () => undefined;
    },

    /** A bot message edited in place (a /canned list into its preview, a preview into its record). */
    async edit_message(s) {
      try {
        await api.call(s.accountId, 'editMessageText', {
          chat_id: s.chatId, message_id: s.payload.message_id, text: s.payload.text, ...(s.payload.reply_markup ? { reply_markup: s.payload.reply_markup } : {}),
        });
      } catch (err) {
        const f = classifyTelegramError(err);
        if (f.kind === 'not_modified') return async () => undefined;
        if (f.kind === 'permanent' && /message to edit not found/i.test(f.reason)) return new Skip('the message is gone: nothing to edit');
        throw err;
      }
      return async () => undefined;
    },

    async delete_message(s) {
      try {
        await api.call(s.accountId, 'deleteMessage', { chat_id: s.chatId, message_id: s.payload.message_id });
      } catch (err) {
        const f = classifyTelegramError(err);
        if (f.kind === 'permanent' && /message to delete not found/i.test(f.reason)) return new Skip('the message is already gone');
        throw err;
      }
      return async () => undefined;
    },

    async react(s) {
      await api.call(s.accountId, 'setMessageReaction', { chat_id: s.chatId, message_id: s.payload.message_id, reaction: [{ type: 'emoji', emoji: s.payload.emoji }] });
      return async () => undefined;
    },

    async create_topic(s) {
      await ensureTopic(s, await ticketOf(s));
      return async () => undefined;
    },

    /** /ticket: the card again, at the bottom of the topic, pinned (a retry only pins it). */
    async post_card(s) {
      const { ticket: t, chatId, threadId } = await ensureTopic(s, await ticketOf(s));
      const card = await once(s, 'card', async () => {
        const text = cardText(t);
        const sent = await api.call<{ message_id: number }>(s.accountId, 'sendMessage', { chat_id: chatId, message_thread_id: threadId, text, reply_markup: cardKeyboard(t) });
        return { message_id: sent.message_id, text };
      });
      try {
        await api.call(s.accountId, 'pinChatMessage', { chat_id: chatId, message_id: card.message_id, disable_notification: true });
      } catch (err) {
        if (classifyTelegramError(err).kind !== 'permanent') throw err;
      }
      return async (tx) => { await topics.shown(tx, t.id, { cardMessageId: card.message_id, cardText: card.text, cardPinned: true }); };
    },

    async rename_topic(s) {
      const t = await ticketOf(s);
      if (t.topicThreadId === null) return new Skip('no topic yet: it is created with the current name');
      const name = topicName(t);
      if (name === t.name) return new Skip('name unchanged');
      try {
        await api.call(s.accountId, 'editForumTopic', { chat_id: t.topicChatId, message_thread_id: t.topicThreadId, name });
      } catch (err) {
        const f = classifyTelegramError(err);
        if (f.kind === 'topic_gone') {
          await ensureTopic(s, await forgetTopic(t, f.reason));
          return async () => undefined;
        }
        if (f.kind !== 'not_modified') throw err;
      }
      return async (tx) => { await topics.shownInThread(tx, t, t.topicThreadId, { name }); };
    },

    async edit_card(s) {
      const t = await ticketOf(s);
      if (t.topicThreadId === null || t.cardMessageId === null) return new Skip('no card yet: it is posted with the current state');
      const text = cardText(t);
      if (text === t.cardText) return new Skip('card unchanged');
      try {
        await api.call(s.accountId, 'editMessageText', { chat_id: t.topicChatId, message_id: t.cardMessageId, text, reply_markup: cardKeyboard(t) ?? { inline_keyboard: [] } });
      } catch (err) {
        const f = classifyTelegramError(err);
        if (f.kind === 'not_modified') return async (tx) => { await topics.shown(tx, t.id, { cardText: text }); };
        if (f.kind === 'topic_gone') {
          await ensureTopic(s, await forgetTopic(t, f.reason));
          return async () => undefined;
        }
        if (f.kind === 'permanent' && /message to edit not found/i.test(f.reason)) {
          // The card was deleted by hand: post a new one.
          await topics.shown(db, t.id, { cardMessageId: null, cardPinned: false });
          await ensureTopic(s, { ...t, cardMessageId: null, cardPinned: false });
          return async () => undefined;
        }
        throw err;
      }
      return async (tx) => { await topics.cardShown(tx, t.id, t.cardMessageId, { cardText: text }); };
    },

    async close_topic(s) {
      return topicState(s, 'closeForumTopic', true);
    },

    async reopen_topic(s) {
      return topicState(s, 'reopenForumTopic', false);
    },

    async resolution_notice(s) {
      const t = await ticketOf(s);
      await api.call(s.accountId, 'sendMessage', { chat_id: s.chatId, ...resolutionNotice(t) });
      return async () => undefined;
    },

    /** An internal line in the topic for a change of assignee or team (a burst of them: one line, first → last). */
    async transfer_note(s) {
      const t = await ticketOf(s);
      if (t.status === 'closed') return new Skip('the ticket is closed: its topic stays closed');
      const text = await topics.transferNote(db, s.workspaceId, s.payload);
      if (!text) return new Skip('assignee and team ended where they started');
      await callInTopic(s, 'sendMessage', { text });
      return async () => undefined;
    },

    /** The SLA warnings and breaches of a ticket not yet posted: one line, rendered now (due in N min). */
    async sla_notice(s) {
      const text = await sla.noticeText(db, s.workspaceId, s.ticketId!, s.payload.marks ?? [], clock.now());
      if (!text) return new Skip('nothing left to say: the targets were met or the ticket closed');
      await callInTopic(s, 'sendMessage', { text });
      return async () => undefined;
    },

    async answer_callback(s) {
      try {
        await api.call(s.accountId, 'answerCallbackQuery', { callback_query_id: s.payload.callback_query_id, text: s.payload.text, show_alert: s.payload.show_alert ?? false });
      } catch (err) {
        // A query is answered once: after an attempt that failed without saying whether it
        // took effect (5xx, timeout), Telegram refuses the repeat with this.
        const f = classifyTelegramError(err);
        if (s.failures > 0 && f.kind === 'permanent' && /query is too old|query id is invalid/i.test(f.reason)) {
          return new Skip('answered by an earlier attempt whose answer was lost, or expired');
        }
        throw err;
      }
      return async () => undefined;
    },
  };

  async function topicState(s: QueuedSend, method: 'closeForumTopic' | 'reopenForumTopic', closed: boolean): Promise<Effects | Skip> {
    const t = await ticketOf(s);
    if (t.topicThreadId === null) return new Skip('no topic');
    try {
      await api.call(s.accountId, method, { chat_id: t.topicChatId, message_thread_id: t.topicThreadId });
    } catch (err) {
      const f = classifyTelegramError(err);
      if (f.kind === 'topic_gone') return new Skip('the topic is gone');
      if (f.kind !== 'not_modified') throw err;
    }
    return async (tx) => { await topics.shownInThread(tx, t, t.topicThreadId, { closed }); };
  }

  /** The customer blocked the bot (or left Telegram): contact blocked, messages failed, agents told in the topic. */
  async function recipientBlocked(tx: Db, s: QueuedSend, f: Failure): Promise<void> {
    const reason = blockedReason(f);
    const ids = await messageIdsOf(tx, s);
    const failed = [];
    for (const id of ids) {
      const m = await messages.markFailed(tx, id, reason, clock.now());
      if (m) failed.push(m);
    }
    if (s.chatId !== null) await contacts.setBlockedByChat(tx, s.accountId, s.chatId, true);
    const ticketId = s.ticketId ?? failed.find((m) => m.ticketId)?.ticketId ?? null;
    if (!ticketId) return;
    const t = await topics.view(tx, s.workspaceId, ticketId);
    if (!t) return;
    const text = `⚠️ Not delivered: ${reason.toLowerCase()}.`;
    await messages.addNote(tx, t, text, SYSTEM, clock.now());
    await topics.postInTopic(tx, t, text, clock.now());
  }

  async function failMessages(tx: Db, s: QueuedSend, reason: string): Promise<void> {
    for (const id of await messageIdsOf(tx, s)) await messages.markFailed(tx, id, reason, clock.now());
  }

  function backoffMs(failures: number): number {
    const base = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.max(0, failures - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** Records the outcome in one transaction; a lost lease rolls it back (the new owner records its own). */
  async function settle(s: QueuedSend, fn: (tx: Db) => Promise<boolean>): Promise<void> {
    const recorded = await inTransaction(db, async (tx) => (await fn(tx)) || rollback(false));
    if (!recorded) logger.warn({ send_id: s.id, op: s.op }, 'send outcome dropped: the lease was lost to another worker');
  }

  async function onFailure(s: QueuedSend, err: unknown): Promise<void> {
    const now = clock.now();
    if (err instanceof AccountGone) {
      return settle(s, (tx) => sendQueue.finish(tx, s, { status: 'cancelled', error: err.message, at: now }));
    }
    const f: Failure = err instanceof Permanent ? { kind: 'permanent', reason: err.message } : classifyTelegramError(err);
    const log = { send_id: s.id, op: s.op, account_id: s.accountId, chat_id: s.chatId, reason: f.reason };
    switch (f.kind) {
      case 'rate_limited': {
        const until = new Date(now.getTime() + f.retryAfterSeconds * 1000);
        logger.warn({ ...log, retry_after: f.retryAfterSeconds }, 'Telegram asked us to slow down');
        await sendQueue.pause(db, s.chatId !== null ? chatKey(s.accountId, s.chatId) : botKey(s.accountId), until);
        return settle(s, (tx) => sendQueue.retryLater(tx, s, { at: until, error: f.reason, countsAsFailure: false }));
      }
      case 'not_modified':
        return settle(s, (tx) => sendQueue.finish(tx, s, { status: 'sent', at: now }));
      case 'recipient_blocked':
        logger.info(log, 'recipient has blocked the bot');
        return settle(s, async (tx) => (await sendQueue.finish(tx, s, { status: 'failed', error: f.reason, at: now })) && (await recipientBlocked(tx, s, f), true));
      case 'transient':
      case 'topic_gone':
      case 'topic_closed':
        if (s.failures + 1 < retry.maxFailures) {
          logger.warn({ ...log, failures: s.failures + 1 }, 'Telegram call failed; will retry');
          return settle(s, (tx) => sendQueue.retryLater(tx, s, { at: new Date(now.getTime() + backoffMs(s.failures + 1)), error: f.reason, countsAsFailure: true }));
        }
        return failForGood(s, f, log, now);
      default:
        return failForGood(s, f, log, now);
    }
  }

  function failForGood(s: QueuedSend, f: Failure, log: object, now: Date): Promise<void> {
    logger.error(log, 'Telegram call failed for good');
    return settle(s, async (tx) => (await sendQueue.finish(tx, s, { status: 'failed', error: f.reason, at: now })) && (await failMessages(tx, s, f.reason), true));
  }

  return {
    /** Runs one claimed row to its end (or back into the queue); never throws for Telegram's errors. */
    async run(s: QueuedSend): Promise<void> {
      const op = ops[s.op];
      let result: Effects | Skip;
      try {
        if (!op) throw new Permanent(`unknown operation ${s.op}`);
        result = await currentRow.run(s, () => op(s));
      } catch (err) {
        // A call that failed may still have reached Telegram (a 5xx or a timeout after it took
        // effect): it counts from now, like a sent one, not from its slot.
        if (called.has(s)) await sendQueue.recordSent(db, s, deps.pacing, clock.now()).catch((e) => logger.warn({ err: e, send_id: s.id }, 'recording a failed call in the pacing windows failed'));
        return onFailure(s, err);
      }
      const now = clock.now();
      if (!(result instanceof Skip)) await sendQueue.recordSent(db, s, deps.pacing, now);
      if (result instanceof Skip) return settle(s, (tx) => sendQueue.finish(tx, s, { status: 'cancelled', error: result.reason, at: now }));
      return settle(s, async (tx) => (await sendQueue.finish(tx, s, { status: 'sent', at: now })) && (await result(tx), true));
    },
  };
}

export type SendExecutor = ReturnType<typeof createSendExecutor>;
