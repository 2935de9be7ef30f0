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
import type { Db } from '../db/knex.js';
import type { Actor } from '../kernel/actor.js';
import { AppError } from '../kernel/errors.js';
import { normalizeTags } from '../lib/tags.js';
import { PRIORITIES, STATUSES, type Priority, type TicketStatus } from '../tickets/ticket-status.js';
import { attachmentsOf, textOf, type BotCtx } from './bot-context.js';
import { CANNED_ACTIONS, cancelCanned, cannedCommand, pickCanned, sendCanned } from './canned-flow.js';
import { parseCommand, parseTagChanges } from './commands.js';
import { mirrorEdit } from './customer-flow.js';
import { CARD_ACTIONS, priorityKeyboard } from '../topics/topic-card.js';
import { inTransaction } from '../db/transaction.js';

const HELP = [
  'In a ticket topic, anything you write goes to the customer, except notes.',
  '/note <text> or //<text> — an internal note (never sent)',
  '/assign @user|me · /unassign',
  '/transfer @user <note> — assign with a note for them',
  '/team <name> — move to a team\'s queue (/team none: no team)',
  '/priority low|normal|high|urgent',
  '/status open|in_progress|waiting_on_customer|resolved',
  '/resolve · /close · /reopen',
  '/tag +a -b',
  '/canned <shortcut> — send a canned response · /canned — the most used, to preview',
  '/ticket — post the ticket card again',
  'In General: /stats — today in numbers · /queue — waiting tickets per team',
  '/dashboard — a one-time sign-in link to the dashboard (leads and admins)',
].join('\n');

const INACTIVE = 'Your agent profile is inactive, so this was not sent. Ask an admin to activate it.';

interface TopicTicket {
  id: string;
  topicChatId: number;
  contactId: string;
  number: number;
  accountId: string | null;
  status: TicketStatus;
  tags: string[];
  teamId: string | null;
}

async function ticketInTopic(c: BotCtx, chatId: number, threadId: number): Promise<TopicTicket | null> {
  const t = await c.services.topics.ticketInTopic(c.db, c.ws.id, chatId, threadId);
  return t ? { id: t.id, topicChatId: chatId, contactId: t.contactId, number: t.number, accountId: t.accountId, status: t.status, tags: t.tags, teamId: t.teamId } : null;
}

/** The agent behind a group member, registered on first use; name and username kept current. */
const agentFor = (c: BotCtx, from: any): Promise<Agent> =>
  c.services.agents.registerMember(c.db, c.ws.id, { telegramUserId: from.id, firstName: from.first_name, lastName: from.last_name, username: from.username });

/** Only one bot answers in General when several share the group: the oldest connected. */
async function speaksForGroup(c: BotCtx, chatId: number): Promise<boolean> {
  const speaker = await c.services.accounts.speakerOfGroup(c.db, c.ws.id, chatId);
  return !speaker || speaker === c.account.id;
}

async function note(db: Db, c: BotCtx, t: TopicTicket, agent: Agent, text: string): Promise<void> {
  await c.services.messages.addNote(db, { id: t.id, workspaceId: c.ws.id, contactId: t.contactId, accountId: t.accountId }, text, { type: 'agent', id: agent.id }, c.at);
}

/**
 * A reply in the ticket's topic (recreated with its card if it was deleted meanwhile). A closed
 * ticket's topic stays closed: there the answer is a 👎 on the agent's message instead.
 */
const replyIn = (c: BotCtx, m: any, t: TopicTicket, text: string, replyMarkup?: unknown) =>
  t.status === 'closed' ? c.react(m.chat.id, m.message_id, '👎') : c.say(t.topicChatId, text, { ticketId: t.id, inTopic: true, replyMarkup });

/**
 * Runs a command's change in a savepoint: a refusal (AppError) undoes only the change and
 * becomes a short reply; success gets a 👍 (or the reply the command returns).
 */
async function attempt(c: BotCtx, m: any, t: TopicTicket, fn: (db: Db) => Promise<string | void>): Promise<void> {
  let reply: string | void;
  try {
    reply = await inTransaction(c.db, (sp) => fn(sp));
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    await replyIn(c, m, t, `⚠️ ${err.message}`);
    return;
  }
  if (reply) await replyIn(c, m, t, reply);
  else await c.react(m.chat.id, m.message_id);
}

/** The agent a command names: `me`, else @username; unknown or inactive is refused with one line. */
async function targetAgent(c: BotCtx, db: Db, me: Agent, who: string): Promise<Agent> {
  if (who.toLowerCase() === 'me') return me;
  const target = await c.services.agents.findByUsername(db, c.ws.id, who);
  if (!target) throw new AppError('not_found', `${who} is not an agent yet: they become one by writing in this group`);
  if (!target.active) throw new AppError('conflict', `${target.username ? `@${target.username}` : target.name} is inactive and cannot take tickets`);
  return target;
}

/** Team names for a refusal, kept to one short line. */
function someTeams(teams: { name: string }[]): string {
  if (!teams.length) return 'There are no teams yet.';
  const names = teams.slice(0, 8).map((t) => t.name).join(', ');
  return `Teams: ${names.length > 160 ? `${names.slice(0, 159)}…` : names}${teams.length > 8 ? `, … (${teams.length} in all)` : ''}`;
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
        const target = await targetAgent(c, db, agent, who);
        await c.services.assignment.assign(db, c.ws.id, t.id, { agent_id: target.id }, actor);
      });
    }
    case 'transfer': {
      const parsed = /^(\S+)\s+([\s\S]*\S[\s\S]*)$/.exec(args.trim());
      if (!parsed) return usage('Usage: /transfer @username <note for them>');
      const [, who, text] = parsed;
      return attempt(c, m, t, async (db) => {
        const target = await targetAgent(c, db, agent, who);
        await c.services.assignment.assign(db, c.ws.id, t.id, { agent_id: target.id, note: text.trim().slice(0, 4096) }, actor);
      });
    }
    case 'team': {
      const name = args.trim();
      if (!name) return usage('Usage: /team <team name> (or /team none)');
      return attempt(c, m, t, async (db) => {
        const team = name.toLowerCase() === 'none' ? null : await c.services.agents.findTeamByName(db, c.ws.id, name);
        if (!team && name.toLowerCase() !== 'none') throw new AppError('not_found', `No team named "${name.slice(0, 60)}". ${someTeams(await c.services.agents.allTeams(db, c.ws.id))}`);
        const current = await tickets.find(db, c.ws.id, t.id);
        if (current && current.teamId === (team?.id ?? null)) return; // already there: nothing to change
        await c.services.assignment.assign(db, c.ws.id, t.id, { team_id: team?.id ?? null }, actor);
      });
    }
    case 'unassign':
      return attempt(c, m, t, async (db) => { await c.services.assignment.assign(db, c.ws.id, t.id, { agent_id: null }, actor); });
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
      return c.services.topics.repostCard(c.db, { id: t.id, workspaceId: c.ws.id, accountId: c.account.id }, m.chat.id, c.at);
    case 'help':
      return usage(HELP);
    case 'canned':
      return cannedCommand(c, t, agent, args, { reply: (text, markup) => replyIn(c, m, t, text, markup), attempt: (fn) => attempt(c, m, t, fn) });
    case 'dashboard':
      return usage(await dashboardLink(c, agent));
    case 'stats':
    case 'queue':
      return usage(`Use /${name} in the General topic.`);
    default:
      return usage(`Unknown command /${name}. /help lists the commands.`);
  }
}

/** Today so far in the workspace's time zone, in the daily digest's form (one formatter for both). */
function stats(c: BotCtx): Promise<string> {
  return c.services.digest.todayText(c.db, c.ws.id, c.at);
}

/** /dashboard: a one-time sign-in link for a lead or admin; one line of refusal for anyone else. */
async function dashboardLink(c: BotCtx, agent: Agent): Promise<string> {
  try {
    const link = await c.services.dashboard.loginLink(c.db, c.ws.id, agent);
    return `🔐 Dashboard sign-in link for ${agent.name} (works once, for 10 minutes):\n${link.url}`;
  } catch (err) {
    if (err instanceof AppError) return err.message;
    throw err;
  }
}

/** `3h 05m`, `2d 4h`, `12m`: how long the oldest ticket of a queue has waited. */
function waited(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** Every team's queue (depth, oldest wait, paused) and the no-team queue, for /queue in General. */
async function queues(c: BotCtx): Promise<string> {
  const [teams, depths] = await Promise.all([c.services.agents.allTeams(c.db, c.ws.id), c.services.tickets.queueDepths(c.db, c.ws.id)]);
  const byTeam = new Map(depths.map((d) => [d.teamId, d]));
  const line = (name: string, teamId: string | null, paused = false) => {
    const d = byTeam.get(teamId);
    const size = d ? `${d.depth} waiting · oldest ${waited(c.at.getTime() - d.oldestWaitingSince!.getTime())}` : 'empty';
    return `${name}: ${size}${paused ? ' (paused)' : ''}`;
  };
  const MAX_TEAMS = 40;
  const lines = ['📥 Queues (unassigned, not resolved)', ...teams.slice(0, MAX_TEAMS).map((team) => line(team.name, team.id, team.paused))];
  if (teams.length > MAX_TEAMS) lines.push(`… and ${teams.length - MAX_TEAMS} more teams`);
  lines.push(line('No team', null));
  return lines.join('\n');
}

export const agentFlow = {
  async message(c: BotCtx, m: any): Promise<void> {
    if (!m.from || m.from.is_bot) return;
    const command = parseCommand(m.text, c.account.botUsername);
    if (!m.is_topic_message || !m.message_thread_id) {
      // General: only /stats, /queue, /dashboard and /help mean anything here.
      if (!command || !(await speaksForGroup(c, m.chat.id))) return;
      if (command.name === 'stats') return c.say(m.chat.id, await stats(c));
      if (command.name === 'queue') return c.say(m.chat.id, await queues(c));
      if (command.name === 'dashboard') return c.say(m.chat.id, await dashboardLink(c, await agentFor(c, m.from)));
      if (command.name === 'help') return c.say(m.chat.id, HELP);
      return c.say(m.chat.id, 'Ticket commands work inside a ticket\'s topic. Here: /stats, /queue, /dashboard, /help.');
    }
    const t = await ticketInTopic(c, m.chat.id, m.message_thread_id);
    if (!t || (t.accountId && t.accountId !== c.account.id)) return;
    if (m.forum_topic_closed || m.forum_topic_reopened) {
      // Closed or reopened by hand in Telegram: remembered, so a customer message reopens it first.
      await c.services.topics.closedByHand(c.db, t.id, !!m.forum_topic_closed);
      return;
    }
    if (m.forum_topic_created || m.forum_topic_edited || m.pinned_message) return;
    const agent = await agentFor(c, m.from);
    if (!agent.active) return replyIn(c, m, t, INACTIVE);
    if (command) return runCommand(c, m, t, agent, command.name, command.args);
    const text = textOf(m);
    if (text.startsWith('//')) return attempt(c, m, t, (db) => note(db, c, t, agent, text.slice(2).trim() || text));
    const reply = await c.services.messages.replyFromTelegram(c.db, c.ws, t.id, { agentId: agent.id, text, attachments: attachmentsOf(m) });
    const source = { chatId: m.chat.id, messageId: m.message_id, mediaGroupId: m.media_group_id ?? null };
    if (reply.message && reply.chat) {
      await c.services.topics.copyToCustomer(c.db, {
        ticket: reply.view.ticket, sourceAccountId: c.account.id, chat: reply.chat, messageId: reply.message.id, source, albumGatherMs: c.albumGatherMs, at: c.at,
      });
    } else if (reply.message) {
      await c.services.topics.recordOriginal(c.db, c.account.id, source, reply.message.id);
    }
    if (reply.problem) await replyIn(c, m, t, `⚠️ ${reply.problem}`);
  },

  async edited(c: BotCtx, m: any): Promise<void> {
    if (!m.from || m.from.is_bot) return;
    const messageId = await c.services.topics.messageOfOriginal(c.db, c.account.id, m.chat.id, m.message_id);
    if (messageId) await mirrorEdit(c, messageId, m);
  },

  /** The card's buttons: Take, Resolve, Priority (and the priority choice); canned responses' list and preview. */
  async callback(c: BotCtx, q: any): Promise<void> {
    const [action, ticketId, value] = String(q.data ?? '').split(':');
    const row = ticketId ? await c.services.tickets.find(c.db, c.ws.id, ticketId) : null;
    if (!row || (row.accountId && row.accountId !== c.account.id)) {
      if (!row) await c.answer(q.id, 'This ticket is not in this workspace.', true);
      return;
    }
    const agent = await agentFor(c, q.from);
    const actor: Actor = { type: 'agent', id: agent.id };
    const { tickets } = c.services;
    const act = async (fn: (db: Db) => Promise<unknown>, done: string) => {
      try {
        await inTransaction(c.db, (sp) => fn(sp));
        await c.answer(q.id, done);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        await c.answer(q.id, err.message, true);
      }
    };
    switch (action) {
      case CARD_ACTIONS.take:
        return act((db) => c.services.assignment.assign(db, c.ws.id, row.id, { agent_id: agent.id }, actor), `#${row.number} is yours now`);
      case CARD_ACTIONS.resolve:
        return act((db) => tickets.changeStatus(db, c.ws.id, row.id, 'resolved', undefined, actor), `#${row.number} resolved`);
      case CARD_ACTIONS.priority:
        await c.answer(q.id);
        return c.say(q.message.chat.id, `Priority for #${row.number}:`, { replyMarkup: priorityKeyboard(row.id), ticketId: row.id, inTopic: true });
      case CARD_ACTIONS.setPriority:
        if (!PRIORITIES.includes(value as Priority)) return c.answer(q.id);
        return act((db) => tickets.update(db, c.ws.id, row.id, { priority: value as Priority }, actor), `Priority: ${value}`);
      case CANNED_ACTIONS.pick:
        if (!agent.active) return c.answer(q.id, INACTIVE, true);
        return pickCanned(c, q, row, agent, value);
      case CANNED_ACTIONS.send:
        if (!agent.active) return c.answer(q.id, INACTIVE, true);
        return sendCanned(c, q, row, agent, value);
      case CANNED_ACTIONS.cancel:
        return cancelCanned(c, q, row, value);
      default:
        return c.answer(q.id);
    }
  },
};
