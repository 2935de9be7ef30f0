/**
 * Canned responses in a ticket's topic (SPEC §4.5): `/canned <shortcut>` sends one at once;
 * `/canned` lists the most used as buttons, a tap turns the list into a preview with Send and
 * Cancel. Invariants:
 * - a response shared with one team is used only on that team's tickets;
 * - one message goes list → preview → record by editing, never posting anew: the group gets
 *   about 20 bot messages a minute;
 * - Send settles a pending preview under its row lock, so a double tap sends once; a refusal
 *   rolls the savepoint back and the preview stays pending.
 */
import type { Agent } from '../agents/agent-store.js';
import type { CannedResponse } from '../canned/canned-store.js';
import type { Db } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { AppError } from '../kernel/errors.js';
import type { Ticket } from '../tickets/ticket-store.js';
import type { BotCtx } from './bot-context.js';
import { cannedPreviewStore, type CannedPreview } from './canned-preview-store.js';

/** Callback data `<action>:<ticket id>:<value>`; `cp:` + 30 + `:` + 29 = 63 bytes, within Telegram's 64. */
export const CANNED_ACTIONS = { pick: 'cp', send: 'cs', cancel: 'cc' } as const;

const LIST_SIZE = 8;
const LABEL_MAX = 60;
const MAX_MESSAGE = 4096;
const NONE_YET = 'There are no canned responses for this ticket yet: they are created with the API (POST /v1/canned-responses).';

type TicketRef = Pick<Ticket, 'id' | 'number' | 'teamId' | 'status'>;

/** How the topic answers a command (agent-flow's reply and savepoint helpers). */
export interface TopicReplies {
  reply(text: string, replyMarkup?: unknown): Promise<void>;
  attempt(fn: (db: Db) => Promise<string | void>): Promise<void>;
}

const mention = (a: Pick<Agent, 'name' | 'username'>) => (a.username ? `@${a.username}` : a.name);

/** A head, a text and a tail in one Telegram message: the text is cut to fit. */
function fit(head: string, text: string, tail = ''): string {
  const room = MAX_MESSAGE - head.length - tail.length;
  return head + (text.length > room ? `${text.slice(0, room - 1)}…` : text) + tail;
}

const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** What agents see in the topic once the customer got it. */
const recordText = (agent: Pick<Agent, 'name' | 'username'>, shortcut: string, text: string) => fit(`✅ ${mention(agent)} sent /${shortcut}:\n\n`, text);

const usableOn = (canned: CannedResponse, t: TicketRef) => !canned.teamId || canned.teamId === t.teamId;

async function otherTeamRefusal(c: BotCtx, db: Db, canned: CannedResponse): Promise<AppError> {
  const team = canned.teamId ? await c.services.agents.findTeam(db, c.ws.id, canned.teamId) : null;
  return new AppError('conflict', `/${canned.shortcut} is shared with ${team ? `the team ${team.name}` : 'another team'} only, and this ticket is not in it.`);
}

/** `/Refund`, `refund` → `refund`. */
const shortcutOf = (args: string) => args.trim().replace(/^\/+/, '').toLowerCase();

/** One line for a shortcut that is not there: the closest ones, else how to list or create them. */
async function notFoundLine(c: BotCtx, t: TicketRef, given: string): Promise<string> {
  const close = await c.services.canned.closestTo(c.db, c.ws.id, t.teamId, given);
  const shown = `/${cut(given, 40)}`;
  if (close.length) return `No canned response ${shown}. Did you mean ${close.map((s) => `/${s}`).join(', ')}?`;
  if (!(await c.services.canned.mostUsedFor(c.db, c.ws.id, t.teamId, 1)).length) return NONE_YET;
  return `No canned response ${shown}. /canned lists them.`;
}

/** `/canned <shortcut>`: rendered for the ticket and the agent, sent like their reply, recorded in the topic. */
async function sendByShortcut(c: BotCtx, t: TicketRef, agent: Agent, given: string, r: TopicReplies): Promise<void> {
  const canned = await c.services.canned.findByShortcut(c.db, c.ws.id, given);
  if (!canned) return r.reply(await notFoundLine(c, t, given));
  return r.attempt(async (db) => {
    if (!usableOn(canned, t)) throw await otherTeamRefusal(c, db, canned);
    const sent = await c.services.messages.postToTicket(db, c.ws, t.id, { canned_response_id: canned.id }, { type: 'agent', id: agent.id });
    return recordText(agent, canned.shortcut, sent.text);
  });
}

/** A button's label: `/shortcut — title`, the title rendered when it has variables. */
async function labelOf(c: BotCtx, t: TicketRef, agent: Agent, canned: CannedResponse): Promise<string> {
  const title = canned.title.includes('{{') ? (await c.services.canned.renderForTicket(c.db, c.ws.id, canned.title, t.id, agent.id)).text : canned.title;
  return cut(`/${canned.shortcut} — ${title.replace(/\s+/g, ' ').trim()}`, LABEL_MAX);
}

/** `/canned`: one message, the most used as buttons (one a row). */
async function list(c: BotCtx, t: TicketRef, agent: Agent, r: TopicReplies): Promise<void> {
  const items = await c.services.canned.mostUsedFor(c.db, c.ws.id, t.teamId, LIST_SIZE);
  if (!items.length) return r.reply(NONE_YET);
  const rows = [];
  for (const x of items) rows.push([{ text: await labelOf(c, t, agent, x), callback_data: `${CANNED_ACTIONS.pick}:${t.id}:${x.id}` }]);
  return r.reply(`📋 Canned responses for #${t.number}, most used first: tap one to preview it.`, { inline_keyboard: rows });
}

export async function cannedCommand(c: BotCtx, t: TicketRef, agent: Agent, args: string, r: TopicReplies): Promise<void> {
  const given = shortcutOf(args);
  return given ? sendByShortcut(c, t, agent, given, r) : list(c, t, agent, r);
}

/** Runs a press's change in a savepoint: a refusal (AppError) undoes it and becomes an alert. */
async function inSavepoint<T>(c: BotCtx, q: any, fn: (db: Db) => Promise<T>): Promise<T | undefined> {
  try {
    return await inTransaction(c.db, fn);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    await c.answer(q.id, err.message, true);
    return undefined;
  }
}

function previewText(p: CannedPreview, t: TicketRef, agent: Agent, missing: string[]): string {
  const tail = missing.length ? `\n\n⚠️ Empty here: ${missing.join(', ')}` : '';
  return fit(`📝 /${p.shortcut} for #${t.number} — preview for ${mention(agent)}:\n\n`, p.text, tail);
}

const previewKeyboard = (ticketId: string, previewId: string) => ({
  inline_keyboard: [[
    { text: '✅ Send', callback_data: `${CANNED_ACTIONS.send}:${ticketId}:${previewId}` },
    { text: '✖️ Cancel', callback_data: `${CANNED_ACTIONS.cancel}:${ticketId}:${previewId}` },
  ]],
});

/** The response rendered for the ticket and the agent who tapped, kept as a pending preview. */
async function preparePreview(c: BotCtx, db: Db, t: TicketRef, agent: Agent, cannedId: string): Promise<{ preview: CannedPreview; missing: string[] }> {
  if (t.status === 'closed') throw new AppError('conflict', 'The ticket is closed: nothing can be sent to the customer.');
  const canned = await c.services.canned.get(db, c.ws.id, cannedId);
  if (!usableOn(canned, t)) throw await otherTeamRefusal(c, db, canned);
  const { text, missing } = await c.services.canned.renderForTicket(db, c.ws.id, canned.body, t.id, agent.id);
  if (!text.trim()) throw new AppError('validation_error', `/${canned.shortcut} is empty once its variables are filled in (empty: ${missing.join(', ') || 'none'}).`);
  if (text.length > MAX_MESSAGE) throw new AppError('validation_error', `/${canned.shortcut} is ${text.length} characters once its variables are filled in (at most ${MAX_MESSAGE}).`);
  const preview = await cannedPreviewStore.insert(db, { workspaceId: c.ws.id, ticketId: t.id, cannedResponseId: canned.id, shortcut: canned.shortcut, agentId: agent.id, text, at: c.at });
  return { preview, missing };
}

/** A tap in the list: the list message becomes the preview (edited, not posted). */
export async function pickCanned(c: BotCtx, q: any, t: TicketRef, agent: Agent, cannedId: string): Promise<void> {
  if (!q.message) return c.answer(q.id, 'This list is too old: use /canned again.', true);
  const made = await inSavepoint(c, q, (db) => preparePreview(c, db, t, agent, cannedId ?? ''));
  if (!made) return;
  await c.edit(q.message.chat.id, q.message.message_id, previewText(made.preview, t, agent, made.missing), previewKeyboard(t.id, made.preview.id));
  await c.answer(q.id);
}

type SendOutcome = { sent: string } | { refusal: string; alert: boolean };

/** Sends a pending preview under its lock: checks, the reply, the use counted, the preview settled. */
async function sendPreview(c: BotCtx, db: Db, t: TicketRef, agent: Agent, previewId: string): Promise<SendOutcome> {
  const p = await cannedPreviewStore.lock(db, c.ws.id, t.id, previewId);
  if (!p) return { refusal: 'This preview is gone: use /canned again.', alert: true };
  if (p.state !== 'pending') return { refusal: p.state === 'sent' ? 'Already sent' : 'Already cancelled', alert: false };
  if (p.agentId !== agent.id) {
    const owner = await c.services.agents.findById(db, c.ws.id, p.agentId);
    return { refusal: `Only ${owner ? mention(owner) : 'the agent who opened it'} can send this preview.`, alert: true };
  }
  const sent = await c.services.messages.postToTicket(db, c.ws, t.id, { text: p.text }, { type: 'agent', id: agent.id });
  await c.services.canned.countUse(db, c.ws.id, p.cannedResponseId);
  await cannedPreviewStore.settle(db, c.ws.id, t.id, p.id, 'sent', c.at);
  return { sent: recordText(agent, p.shortcut, sent.text) };
}

/** Send: the customer gets the preview's text; the preview becomes the record (no buttons). */
export async function sendCanned(c: BotCtx, q: any, t: TicketRef, agent: Agent, previewId: string): Promise<void> {
  const outcome = await inSavepoint(c, q, (db) => sendPreview(c, db, t, agent, previewId ?? ''));
  if (!outcome) return;
  if ('refusal' in outcome) return c.answer(q.id, outcome.refusal, outcome.alert);
  if (q.message) await c.edit(q.message.chat.id, q.message.message_id, outcome.sent);
  await c.answer(q.id, 'Sent');
}

/** Cancel (anyone in the group): the preview is settled and its message deleted. */
export async function cancelCanned(c: BotCtx, q: any, t: TicketRef, previewId: string): Promise<void> {
  if (await cannedPreviewStore.settle(c.db, c.ws.id, t.id, previewId ?? '', 'cancelled', c.at)) {
    if (q.message) await c.delete(q.message.chat.id, q.message.message_id);
    return c.answer(q.id, 'Cancelled');
  }
  const p = await cannedPreviewStore.find(c.db, c.ws.id, t.id, previewId ?? '');
  return c.answer(q.id, !p ? 'This preview is gone.' : p.state === 'sent' ? 'Already sent' : 'Already cancelled');
}
