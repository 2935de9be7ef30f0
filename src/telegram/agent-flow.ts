/**
 * The agents' side (SPEC §3.2): the forum supergroup. In a ticket's topic a message is a
 * command, an internal note (`/note …`, `//…`) or a public reply copied to the customer.
 * Members become agents the first time they act. Invariants:
 * - a topic belongs to the bot that created it: when several bots of a workspace share the
 *   group, only the ticket's bot acts on its topic (each bot receives every message);
 * - routing trusts `is_topic_message`, never a bare message_thread_id (a reply in General
 *   carries one too — research §1.4);
 * - successful commands get a 👍 reaction, not a message: the group has 20 messages a minute.
 */
import type { Agent } from '../agents/agent-store.js';
import { agentStore } from '../agents/agent-store.js';
import type { Db } from '../db/knex.js';
import type { Actor } from '../kernel/actor.js';
import { AppError } from '../kernel/errors.js';
import { newId } from '../lib/ids.js';
import { normalizeTags } from '../lib/tags.js';
import { messageStore } from '../messages/message-store.js';
import { PRIORITIES, STATUSES, type Priority, type TicketStatus } from '../tickets/ticket-status.js';
import { attachmentsOf, textOf, type BotCtx } from './bot-context.js';
import { parseCommand, parseTagChanges } from './commands.js';
import { mirrorEdit } from './customer-flow.js';
import { sendQueue } from '../send-queue/send-queue.js';
import { CARD_ACTIONS, priorityKeyboard } from './ticket-card.js';

const HELP = [
  'In a ticket topic, anything you write goes to the customer, except notes.',
  '/note <text> or //<text> — an internal note (never sent)',
  '/assign @user|me · /unassign',
  '/priority low|normal|high|urgent',
  '/status open|in_progress|waiting_on_customer|resolved',
  '/resolve · /close · /reopen',
  '/tag +a -b',
  '/ticket — post the ticket card again',
  'In General: /stats — today in numbers',
].join('\n');

interface TopicTicket {
  id: string;
  topicChatId: number;
  contactId: string;
  number: number;
  accountId: string | null;
  status: TicketStatus;
  tags: string[];
}

async function ticketInTopic(c: BotCtx, chatId: number, threadId: number): Promise<TopicTicket | null> {
  const r = await c.db('tickets').select('id', 'number', 'account_id', 'status', 'tags', 'contact_id')
    .where({ workspace_id: c.ws.id, topic_chat_id: chatId, topic_thread_id: threadId }).first();
  return r ? { id: r.id, topicChatId: chatId, contactId: r.contact_id, number: r.number, accountId: r.account_id, status: r.status, tags: r.tags } : null;
}

/** The agent behind a group member, registered on first use; name and username kept current. */
async function agentFor(c: BotCtx, from: any): Promise<Agent> {
  const name = [from.first_name, from.last_name].filter(Boolean).join(' ').slice(0, 200) || `User ${from.id}`;
  const username = from.username ?? null;
  const existing = await c.db('agents').where({ workspace_id: c.ws.id, telegram_user_id: from.id }).first();
  if (!existing) {
    await c.db('agents').insert({ id: newId('ag'), workspace_id: c.ws.id, telegram_user_id: from.id, name, username, role: 'agent', active: true, created_at: c.at, updated_at: c.at })
      .onConflict(c.db.raw('(workspace_id, telegram_user_id) WHERE telegram_user_id IS NOT NULL')).ignore();
  } else if (existing.name !== name || existing.username !== username) {
    await c.db('agents').where({ id: existing.id }).update({ name, username, updated_at: c.at });
  }
  const row = await c.db('agents').where({ workspace_id: c.ws.id, telegram_user_id: from.id }).first();
  return (await agentStore.findById(c.db, c.ws.id, row.id))!;
}

/** Only one bot answers in General when several share the group: the oldest connected. */
async function speaksForGroup(c: BotCtx, chatId: number): Promise<boolean> {
  const first = await c.db('accounts').select('id').where({ workspace_id: c.ws.id, support_chat_id: chatId }).whereNull('deleted_at').whereNotNull('bot_token')
    .orderBy('created_at').orderBy('id').first();
  return !first || first.id === c.account.id;
}

async function note(db: Db, c: BotCtx, t: TopicTicket, agent: Agent, text: string): Promise<void> {
  await messageStore.insertNote(db, { id: newId('msg'), workspaceId: c.ws.id, ticketId: t.id, contactId: t.contactId, accountId: t.accountId, author: { type: 'agent', id: agent.id }, text, at: c.at });
}

/**
 * A reply in the ticket's topic (recreated with its card if it was deleted meanwhile). A closed
 * ticket's topic stays closed: there the answer is a 👎 on the agent's message instead.
 */
const replyIn = (c: BotCtx, m: any, t: TopicTicket, text: string) =>
  t.status === 'closed' ? c.react(m.chat.id, m.message_id, '👎') : c.say(t.topicChatId, text, { ticketId: t.id, inTopic: true });

/**
 * Runs a command's change in a savepoint: a refusal (AppError) undoes only the change and
 * becomes a short reply; success gets a 👍 (or the reply the command returns).
 */
async function attempt(c: BotCtx, m: any, t: TopicTicket, fn: (db: Db) => Promise<string | void>): Promise<void> {
  let reply: string | void;
  try {
    reply = await c.db.transaction((sp) => fn(sp));
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    await replyIn(c, m, t, `⚠️ ${err.message}`);
    return;
  }
  if (reply) await replyIn(c, m, t, reply);
  else await c.react(m.chat.id, m.message_id);
}

async function runCommand(c: BotCtx, m: any, t: TopicTicket, agent: Agent, name: string, args: string): Promise<void> {
  const actor: Actor = { type: 'agent', id: agent.id };
  const { tickets } = c.services;
  const move = (to: TicketStatus) => attempt(c, m, t, async (db) => { await tickets.changeStatus(db, c.ws.id, t.id, to, undefined, actor); });
  const usage = (text: string) => replyIn(c, m, t, text);
  switch (name) {
    case 'note':
      if (!args) return usage('Usage: /note <text>');
      return attempt(c, m, t, (db) => note(db, c, t, agent, args));
    case 'assign': {
      const who = args.trim();
      if (!who) return usage('Usage: /assign @username or /assign me');
      return attempt(c, m, t, async (db) => {
        let target: Agent | null = agent;
        if (who.toLowerCase() !== 'me') {
          const row = await db('agents').where({ workspace_id: c.ws.id }).whereRaw('lower(username) = ?', [who.replace(/^@/, '').toLowerCase()]).first();
          if (!row) throw new AppError('not_found', `${who} is not an agent yet: they become one by writing in this group`);
          target = await agentStore.findById(db, c.ws.id, row.id);
        }
        await tickets.assign(db, c.ws.id, t.id, { agent_id: target!.id }, actor);
      });
    }
    case 'unassign':
      return attempt(c, m, t, async (db) => { await tickets.assign(db, c.ws.id, t.id, { agent_id: null }, actor); });
    case 'priority': {
      const p = args.trim().toLowerCase() as Priority;
      if (!PRIORITIES.includes(p)) return usage(`Usage: /priority ${PRIORITIES.join('|')}`);
      return attempt(c, m, t, async (db) => { await tickets.update(db, c.ws.id, t.id, { priority: p }, actor); });
    }
    case 'status': {
      const s = args.trim().toLowerCase().replace(/\s+/g, '_') as TicketStatus;
      if (!STATUSES.includes(s)) return usage(`Usage: /status ${STATUSES.join('|')}`);
      return move(s);
    }
    case 'resolve': return move('resolved');
    case 'close': return move('closed');
    case 'reopen': return move('open');
    case 'tag': {
      const { add, remove } = parseTagChanges(args);
      if (!add.length && !remove.length) return usage('Usage: /tag +vip -trial');
      return attempt(c, m, t, async (db) => {
        const drop = new Set(normalizeTags(remove));
        const tags = normalizeTags([...t.tags, ...add]).filter((x) => !drop.has(x));
        await tickets.update(db, c.ws.id, t.id, { tags }, actor);
      });
    }
    case 'ticket':
      return sendQueue.enqueue(c.db, { workspaceId: c.ws.id, accountId: c.account.id, chatId: m.chat.id, op: 'post_card', ticketId: t.id, at: c.at });
    case 'help':
      return usage(HELP);
    case 'canned':
      return usage('Canned responses are not set up in this workspace yet.');
    case 'stats':
      return usage('Use /stats in the General topic.');
    default:
      return usage(`Unknown command /${name}. /help lists the commands.`);
  }
}

/** Today (UTC) in numbers, for /stats in General. */
async function stats(c: BotCtx): Promise<string> {
  const day = new Date(Date.UTC(c.at.getUTCFullYear(), c.at.getUTCMonth(), c.at.getUTCDate()));
  const r = (await c.db.raw(
    `SELECT count(*) FILTER (WHERE created_at >= :day) AS created,
            count(*) FILTER (WHERE resolved_at >= :day) AS resolved,
            count(*) FILTER (WHERE status IN ('open', 'in_progress', 'waiting_on_customer')) AS open,
            count(*) FILTER (WHERE status IN ('open', 'in_progress', 'waiting_on_customer') AND assignee_id IS NULL) AS unassigned,
            count(*) FILTER (WHERE first_response_at IS NULL AND first_response_due_at < :now AND status IN ('open', 'in_progress', 'waiting_on_customer')) AS overdue,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - created_at)) FILTER (WHERE first_response_at >= :day) AS median_first
       FROM tickets WHERE workspace_id = :ws AND archived_at IS NULL`,
    { day, now: c.at, ws: c.ws.id },
  )).rows[0];
  const minutes = r.median_first === null ? '—' : `${Math.round(Number(r.median_first) / 60)} min`;
  return [
    `📊 Today (UTC): ${r.created} new · ${r.resolved} resolved`,
    `Open now: ${r.open} (${r.unassigned} unassigned) · first response overdue: ${r.overdue}`,
    `Median first response today: ${minutes}`,
  ].join('\n');
}

export const agentFlow = {
  async message(c: BotCtx, m: any): Promise<void> {
    if (!m.from || m.from.is_bot) return;
    const command = parseCommand(m.text, c.account.botUsername);
    if (!m.is_topic_message || !m.message_thread_id) {
      // General: only /stats and /help mean anything here.
      if (!command || !(await speaksForGroup(c, m.chat.id))) return;
      if (command.name === 'stats') return c.say(m.chat.id, await stats(c));
      if (command.name === 'help') return c.say(m.chat.id, HELP);
      return c.say(m.chat.id, 'Ticket commands work inside a ticket\'s topic. Here: /stats, /help.');
    }
    const t = await ticketInTopic(c, m.chat.id, m.message_thread_id);
    if (!t || (t.accountId && t.accountId !== c.account.id)) return;
    if (m.forum_topic_closed || m.forum_topic_reopened) {
      // Closed or reopened by hand in Telegram: remembered, so a customer message reopens it first.
      await c.db('tickets').where({ id: t.id }).update({ topic_closed: !!m.forum_topic_closed });
      return;
    }
    if (m.forum_topic_created || m.forum_topic_edited || m.pinned_message) return;
    const agent = await agentFor(c, m.from);
    if (!agent.active) return replyIn(c, m, t, 'Your agent profile is inactive, so this was not sent. Ask an admin to activate it.');
    if (command) return runCommand(c, m, t, agent, command.name, command.args);
    const text = textOf(m);
    if (text.startsWith('//')) return attempt(c, m, t, (db) => note(db, c, t, agent, text.slice(2).trim() || text));
    const { problem } = await c.services.messages.replyFromTelegram(c.db, c.ws, t.id, {
      agentId: agent.id, text, attachments: attachmentsOf(m), accountId: c.account.id,
      source: { chatId: m.chat.id, messageId: m.message_id, ...(m.media_group_id ? { mediaGroupId: m.media_group_id } : {}) },
      albumGatherMs: c.albumGatherMs,
    });
    if (problem) await replyIn(c, m, t, `⚠️ ${problem}`);
  },

  async edited(c: BotCtx, m: any): Promise<void> {
    if (!m.from || m.from.is_bot) return;
    const ref = await c.db('message_telegram_refs').where({ account_id: c.account.id, chat_id: m.chat.id, telegram_message_id: m.message_id, role: 'original' }).first();
    if (ref) await mirrorEdit(c, ref.message_id, m);
  },

  /** The card's buttons: Take, Resolve, Priority (and the priority choice). */
  async callback(c: BotCtx, q: any): Promise<void> {
    const [action, ticketId, value] = String(q.data ?? '').split(':');
    const row = ticketId ? await c.db('tickets').select('id', 'number', 'account_id', 'status', 'tags').where({ workspace_id: c.ws.id, id: ticketId }).first() : null;
    if (!row || (row.account_id && row.account_id !== c.account.id)) {
      if (!row) await c.answer(q.id, 'This ticket is not in this workspace.', true);
      return;
    }
    const agent = await agentFor(c, q.from);
    const actor: Actor = { type: 'agent', id: agent.id };
    const { tickets } = c.services;
    const act = async (fn: (db: Db) => Promise<unknown>, done: string) => {
      try {
        await c.db.transaction((sp) => fn(sp));
        await c.answer(q.id, done);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        await c.answer(q.id, err.message, true);
      }
    };
    switch (action) {
      case CARD_ACTIONS.take:
        return act((db) => tickets.assign(db, c.ws.id, row.id, { agent_id: agent.id }, actor), `#${row.number} is yours now`);
      case CARD_ACTIONS.resolve:
        return act((db) => tickets.changeStatus(db, c.ws.id, row.id, 'resolved', undefined, actor), `#${row.number} resolved`);
      case CARD_ACTIONS.priority:
        await c.answer(q.id);
        return c.say(q.message.chat.id, `Priority for #${row.number}:`, { replyMarkup: priorityKeyboard(row.id), ticketId: row.id, inTopic: true });
      case CARD_ACTIONS.setPriority:
        if (!PRIORITIES.includes(value as Priority)) return c.answer(q.id);
        return act((db) => tickets.update(db, c.ws.id, row.id, { priority: value as Priority }, actor), `Priority: ${value}`);
      default:
        return c.answer(q.id);
    }
  },
};
