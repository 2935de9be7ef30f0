/**
 * What a ticket looks like in the support group: the topic's name and the pinned card with
 * its buttons. Pure: the send queue renders these from the ticket row at send time, so a
 * queued edit always shows the latest state.
 */
import type { Priority, TicketStatus } from '../tickets/ticket-status.js';

export const STATUS_EMOJI: Record<TicketStatus, string> = {
  open: '🆕', in_progress: '🛠', waiting_on_customer: '⏳', resolved: '✅', closed: '🔒',
};

/** Telegram's limit for a topic name, in characters. */
export const TOPIC_NAME_MAX = 128;

/** The six colours createForumTopic accepts; one per priority so the list reads at a glance. */
export const TOPIC_COLOR: Record<Priority, number> = { low: 0x8eee98, normal: 0x6fb9f0, high: 0xffd67e, urgent: 0xfb6f5f };

/** `<status emoji> #42 · <subject>`, cut with "…" to fit Telegram's 128 characters. */
export function topicName(t: { status: TicketStatus; number: number; subject: string }): string {
  const full = `${STATUS_EMOJI[t.status]} #${t.number} · ${t.subject.replace(/\s+/g, ' ').trim()}`;
  const chars = Array.from(full);
  return chars.length <= TOPIC_NAME_MAX ? full : `${chars.slice(0, TOPIC_NAME_MAX - 1).join('')}…`;
}

export interface CardInput {
  id: string;
  number: number;
  subject: string;
  description: string;
  status: TicketStatus;
  priority: Priority;
  category: string | null;
  tags: string[];
  customer: { name: string | null; username: string | null; telegramUserId: number | null; email: string | null };
  assignee: { name: string; username: string | null } | null;
  team: string | null;
  firstResponseDueAt: Date | null;
  firstResponseAt: Date | null;
  nextResponseDueAt: Date | null;
  resolutionDueAt: Date | null;
  /** The resolution clock is paused (waiting on the customer). */
  slaPaused: boolean;
}

const DESCRIPTION_MAX = 1500;
const when = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
const words = (s: string) => s.replace(/_/g, ' ');

/** The card's text (plain text: nothing customers typed can break its formatting). */
export function cardText(c: CardInput): string {
  const who = [c.customer.name ?? 'Customer', c.customer.username ? `@${c.customer.username}` : null, c.customer.email].filter(Boolean).join(' · ');
  const lines = [
    `🎫 #${c.number} · ${c.subject}`,
    `Customer: ${who}${c.customer.telegramUserId ? ` (id ${c.customer.telegramUserId})` : ''}`,
    `Status: ${STATUS_EMOJI[c.status]} ${words(c.status)} · Priority: ${c.priority}${c.category ? ` · Category: ${c.category}` : ''}`,
    `Assignee: ${c.assignee ? `${c.assignee.name}${c.assignee.username ? ` (@${c.assignee.username})` : ''}` : '— nobody yet'}${c.team ? ` · Team: ${c.team}` : ''}`,
  ];
  const due = [
    c.firstResponseDueAt && (c.firstResponseAt ? 'first response ✓' : `first response by ${when(c.firstResponseDueAt)}`),
    c.nextResponseDueAt && `next response by ${when(c.nextResponseDueAt)}`,
    c.slaPaused ? 'resolution paused (waiting on the customer)' : c.resolutionDueAt && `resolution by ${when(c.resolutionDueAt)}`,
  ].filter(Boolean);
  if (due.length) lines.push(`SLA: ${due.join(' · ')}`);
  if (c.tags.length) lines.push(`Tags: ${c.tags.map((t) => `#${t}`).join(' ')}`);
  const description = c.description.trim();
  if (description) {
    const chars = Array.from(description);
    lines.push('', chars.length > DESCRIPTION_MAX ? `${chars.slice(0, DESCRIPTION_MAX - 1).join('')}…` : description);
  }
  return lines.join('\n');
}

/** Telegram's limit for a message's text, in characters. */
export const MESSAGE_MAX = 4096;

/** One side of a transfer note: the assignee and team (`@username`, else the name; none is "nobody"). */
export interface TransferSide {
  assignee: { id: string; name: string; username: string | null } | null;
  team: { id: string; name: string } | null;
}

const agentName = (a: TransferSide['assignee']) => (a ? (a.username ? `@${a.username}` : a.name) : 'nobody');

/**
 * The internal line a change of assignee or team posts in the topic:
 * `🔀 Moved to team Billing · Reassigned from @ann to @bob: <note>`. Null when both sides are
 * the same (a burst of changes that ended where it started).
 */
export function transferNoteText(from: TransferSide, to: TransferSide, note: string | null): string | null {
  const parts: string[] = [];
  if (from.team?.id !== to.team?.id) {
    parts.push(!to.team ? `Removed from team ${from.team!.name}` : !from.team ? `Moved to team ${to.team.name}` : `Moved from team ${from.team.name} to team ${to.team.name}`);
  }
  if (from.assignee?.id !== to.assignee?.id) parts.push(`Reassigned from ${agentName(from.assignee)} to ${agentName(to.assignee)}`);
  if (!parts.length) return null;
  const line = `🔀 ${parts.join(' · ')}`;
  const text = note?.trim() ? `${line}: ${note.trim()}` : line;
  const chars = Array.from(text);
  return chars.length <= MESSAGE_MAX ? text : `${chars.slice(0, MESSAGE_MAX - 1).join('')}…`;
}

export interface InlineKeyboard {
  inline_keyboard: { text: string; callback_data: string }[][];
}

/** Callback data (at most 64 bytes): `<action>:<ticket id>[:<value>]`. */
export const CARD_ACTIONS = { take: 'tk', resolve: 'rs', priority: 'pr', setPriority: 'pp' } as const;

export function cardKeyboard(c: { id: string; status: TicketStatus }): InlineKeyboard | undefined {
  if (c.status === 'closed') return undefined;
  const row = [{ text: '🙋 Take', callback_data: `${CARD_ACTIONS.take}:${c.id}` }];
  if (c.status !== 'resolved') row.push({ text: '✅ Resolve', callback_data: `${CARD_ACTIONS.resolve}:${c.id}` });
  row.push({ text: '⚡ Priority', callback_data: `${CARD_ACTIONS.priority}:${c.id}` });
  return { inline_keyboard: [row] };
}

export function priorityKeyboard(ticketId: string): InlineKeyboard {
  const p: Priority[] = ['low', 'normal', 'high', 'urgent'];
  return { inline_keyboard: [p.map((x) => ({ text: x, callback_data: `${CARD_ACTIONS.setPriority}:${ticketId}:${x}` }))] };
}

/** The customer's resolution notice and its 1–5 rating keyboard (`csat:<ticket id>:<n>`). */
export function resolutionNotice(t: { id: string; number: number }): { text: string; reply_markup: InlineKeyboard } {
  return {
    text: `Your ticket #${t.number} was resolved — reply here to reopen it.\n\nHow satisfied are you with the help you got? (1 = not at all, 5 = very)`,
    reply_markup: { inline_keyboard: [[1, 2, 3, 4, 5].map((n) => ({ text: `${n} ⭐`, callback_data: `csat:${t.id}:${n}` }))] },
  };
}
