/**
 * The customer's side (SPEC §3.1): a private chat with a bot. Every handler runs inside the
 * update's transaction under a per-customer lock, so two quick messages are handled one after
 * the other and can never open two tickets. Invariants:
 * - a ticket (and so a topic) exists only once the intake form is complete;
 * - a message from a customer with an open ticket of this bot goes to that ticket (several:
 *   they choose with buttons, and the choice holds for a while);
 * - the form's state lives in telegram_chats, so a restart or another replica continues it.
 */
import type { Contact } from '../contacts/contact.js';
import type { Actor } from '../kernel/actor.js';
import { SYSTEM } from '../kernel/actor.js';
import { AppError } from '../kernel/errors.js';
import { checkAnswer, questionText, ticketFromAnswers, type AnswerInput, type IntakeForm, type StoredAnswer } from '../intake/intake-form.js';
import { lockKey } from '../db/advisory-lock.js';
import { attachmentsOf, CUSTOMER_LOCK, textOf, type BotCtx } from './bot-context.js';
import { parseCommand } from './commands.js';
import { inTransaction } from '../db/transaction.js';

/** After choosing (or opening) a ticket, the customer's next messages go there for this long. */
const CHOICE_HOLDS_MS = 30 * 60_000;
/** Messages kept while the customer chooses a ticket. */
const MAX_PENDING = 20;

interface ChatState {
  chatId: number;
  form: IntakeForm | null;
  step: number | null;
  answers: Record<string, StoredAnswer>;
  chosenTicketId: string | null;
  chosenUntil: Date | null;
  pending: any[];
}

const HELP = 'Write here and our support team answers here. /start opens a new ticket, /cancel stops filling in the form.';

async function lockCustomer(c: BotCtx, userId: number): Promise<void> {
  await c.db.raw('SELECT pg_advisory_xact_lock(?)', [lockKey(CUSTOMER_LOCK, `${c.ws.id}:${userId}`)]);
}

async function loadChat(c: BotCtx, chatId: number): Promise<ChatState> {
  await c.db('telegram_chats').insert({ account_id: c.account.id, chat_id: chatId, workspace_id: c.ws.id, updated_at: c.at }).onConflict(['account_id', 'chat_id']).ignore();
  const r = await c.db('telegram_chats').where({ account_id: c.account.id, chat_id: chatId }).forUpdate().first();
  return {
    chatId, form: r.form, step: r.form_step, answers: r.form_answers ?? {}, chosenTicketId: r.chosen_ticket_id,
    chosenUntil: r.chosen_until, pending: r.pending_messages ?? [],
  };
}

async function saveChat(c: BotCtx, s: ChatState): Promise<void> {
  await c.db('telegram_chats').where({ account_id: c.account.id, chat_id: s.chatId }).update({
    form: s.form ? JSON.stringify(s.form) : null, form_step: s.step, form_answers: s.form ? JSON.stringify(s.answers) : null,
    form_started_at: s.form ? c.db.raw('COALESCE(form_started_at, ?)', [c.at]) : null,
    chosen_ticket_id: s.chosenTicketId, chosen_until: s.chosenUntil, pending_messages: JSON.stringify(s.pending), updated_at: c.at,
  });
}

/**
 * The contact behind a Telegram user, created on first contact, names kept current. Matching
 * by username as well links a contact the API created (`@sarah`) to her Telegram account; if
 * that would merge two different contacts, the Telegram id alone decides.
 */
async function contactFor(c: BotCtx, from: any): Promise<Contact> {
  const names = { first_name: from.first_name?.slice(0, 200), ...(from.last_name ? { last_name: from.last_name.slice(0, 200) } : {}) };
  try {
    return await inTransaction(c.db, async (sp) => (await c.services.contacts.upsert(sp, c.ws.id, { telegram_user_id: from.id, ...(from.username ? { username: from.username } : {}), ...names }, SYSTEM)).contact);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    return (await c.services.contacts.upsert(c.db, c.ws.id, { telegram_user_id: from.id, ...names }, SYSTEM)).contact;
  }
}

/** Tickets of this customer with this bot that are not closed, most recently active first. */
async function openTickets(c: BotCtx, contactId: string): Promise<{ id: string; number: number; subject: string }[]> {
  const open = await c.services.tickets.openOfContact(c.db, c.ws.id, contactId, c.account.id);
  return open.map((t) => ({ id: t.id, number: t.number, subject: t.subject }));
}

function formKeyboard(form: IntakeForm, step: number): unknown {
  const field = form.fields[step];
  const rows: { text: string; callback_data: string }[][] = (field.options ?? []).map((o, i) => [{ text: o.label, callback_data: `f:${step}:${i}` }]);
  if (!field.required) rows.push([{ text: 'Skip', callback_data: `f:${step}:skip` }]);
  return rows.length ? { inline_keyboard: rows } : undefined;
}

async function ask(c: BotCtx, s: ChatState, prefix = ''): Promise<void> {
  const form = s.form!;
  const step = s.step!;
  await c.say(s.chatId, `${prefix}${questionText(form.fields[step], step + 1, form.fields.length)}`, { replyMarkup: formKeyboard(form, step) });
}

async function startForm(c: BotCtx, s: ChatState, intro: string): Promise<void> {
  s.form = await c.services.intakeForms.form(c.db, c.ws.id);
  s.step = 0;
  s.answers = {};
  s.pending = [];
  await ask(c, s, `${intro}\n\n`);
}

/** Whether an earlier answer of this form was an item of album `mediaGroupId`. */
function answeredWithAlbum(s: ChatState, mediaGroupId: string): boolean {
  return Object.values(s.answers).some((v) => !!v && typeof v === 'object' && (v as { attachment?: { media_group_id?: unknown } }).attachment?.media_group_id === mediaGroupId);
}

function inputOf(m: any): AnswerInput {
  const attachments = attachmentsOf(m);
  if (attachments.length) return { kind: 'media', caption: m.caption ?? null, attachment: { ...attachments[0], telegram_message_id: m.message_id } };
  return { kind: 'text', text: m.text ?? '' };
}

/** One answer to the current question: stored and the next question asked, or the same one again. */
async function answer(c: BotCtx, s: ChatState, contact: Contact, input: AnswerInput): Promise<void> {
  const form = s.form!;
  const field = form.fields[s.step!];
  const checked = checkAnswer(field, input);
  if (!checked.ok) {
    await ask(c, s, `${checked.problem}\n\n`);
    return;
  }
  s.answers[field.key] = checked.value;
  s.step! += 1;
  if (s.step! < form.fields.length) {
    await ask(c, s);
    return;
  }
  await completeForm(c, s, contact);
}

async function completeForm(c: BotCtx, s: ChatState, contact: Contact): Promise<void> {
  const form = s.form!;
  const t = ticketFromAnswers(form, s.answers);
  const actor: Actor = { type: 'contact', id: contact.id };
  const customFields: Record<string, string> = { ...t.custom_fields };
  for (const [key, value] of [['email', t.email], ['phone', t.phone]] as const) {
    if (!value || contact[key]) continue;
    try {
      // A savepoint: an address another contact already has must not undo the ticket.
      await inTransaction(c.db, (sp) => c.services.contacts.update(sp, c.ws.id, contact.id, { [key]: value }, actor));
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      customFields[key] = value;
    }
  }
  const view = await c.services.tickets.create(c.db, c.ws, {
    contact_id: contact.id, subject: t.subject, description: t.description, priority: t.priority,
    ...(t.category ? { category: t.category } : {}), ...(Object.keys(customFields).length ? { custom_fields: customFields } : {}),
    account_id: c.account.id,
  } as any, actor);
  // Media given as answers (a screenshot as the description) follow the card into the topic.
  for (const a of t.attachments) {
    const messageId = Number(a.telegram_message_id);
    if (!Number.isSafeInteger(messageId)) continue;
    const { telegram_message_id: _omit, ...attachment } = a;
    const mediaGroupId = typeof a.media_group_id === 'string' ? a.media_group_id : null;
    await relay(c, view.ticket.id, { chatId: s.chatId, messageId, text: typeof a.caption === 'string' ? a.caption : '', attachments: [attachment], mediaGroupId });
  }
  for (const m of s.pending) await relayMessage(c, view.ticket.id, m);
  s.pending = [];
  s.form = null;
  s.step = null;
  s.answers = {};
  s.chosenTicketId = view.ticket.id;
  s.chosenUntil = new Date(c.at.getTime() + CHOICE_HOLDS_MS);
  await c.say(s.chatId, `Ticket #${view.ticket.number} created. Our team will answer here; just write to add details.`);
}

/** A customer message into a ticket: recorded (which may reopen or resume it) and copied into its topic. */
async function relay(c: BotCtx, ticketId: string, m: { chatId: number; messageId: number; text: string; attachments: Record<string, unknown>[]; mediaGroupId: string | null }): Promise<void> {
  const { message, ticket } = await c.services.messages.recordInbound(c.db, c.ws, ticketId, { text: m.text, attachments: m.attachments, accountId: c.account.id, chatId: m.chatId });
  await c.services.topics.copyIntoTopic(c.db, {
    ticket: ticket.ticket, account: c.account, messageId: message.id,
    source: { chatId: m.chatId, messageId: m.messageId, mediaGroupId: m.mediaGroupId }, albumGatherMs: c.albumGatherMs, at: c.at,
  });
}

const relayMessage = (c: BotCtx, ticketId: string, m: any) =>
  relay(c, ticketId, { chatId: m.chat.id, messageId: m.message_id, text: textOf(m), attachments: attachmentsOf(m), mediaGroupId: m.media_group_id ?? null });

async function askWhichTicket(c: BotCtx, s: ChatState, tickets: { id: string; number: number; subject: string }[]): Promise<void> {
  const label = (t: { number: number; subject: string }) => {
    const chars = Array.from(`#${t.number} · ${t.subject}`);
    return chars.length > 40 ? `${chars.slice(0, 39).join('')}…` : chars.join('');
  };
  const rows = tickets.map((t) => [{ text: label(t), callback_data: `pk:${t.id}` }]);
  rows.push([{ text: '➕ A new ticket', callback_data: 'pk:new' }]);
  await c.say(s.chatId, 'You have several open tickets. Which one is this about?', { replyMarkup: { inline_keyboard: rows } });
}

export const customerFlow = {
  async message(c: BotCtx, m: any): Promise<void> {
    if (!m.from || m.from.is_bot) return;
    await lockCustomer(c, m.from.id);
    let contact = await contactFor(c, m.from);
    await c.services.contacts.recordChat(c.db, { workspaceId: c.ws.id, contactId: contact.id, accountId: c.account.id, chatId: m.chat.id, at: c.at });
    // Writing to the bot means they have not blocked it (any more).
    if (contact.blocked) contact = await c.services.contacts.update(c.db, c.ws.id, contact.id, { blocked: false }, { type: 'contact', id: contact.id });
    const s = await loadChat(c, m.chat.id);
    const command = parseCommand(m.text, c.account.botUsername);
    if (command?.name === 'start') {
      await startForm(c, s, 'Hello! To open a ticket, please answer a few questions. Send /cancel to stop.');
    } else if (command?.name === 'cancel') {
      const had = s.form !== null;
      s.form = null;
      s.step = null;
      s.answers = {};
      await c.say(s.chatId, had ? 'Cancelled: no ticket was opened. Send /start whenever you want to open one.' : 'There is nothing to cancel. Send /start to open a ticket.');
    } else if (command?.name === 'help') {
      await c.say(s.chatId, HELP);
    } else if (s.form && m.media_group_id && answeredWithAlbum(s, m.media_group_id)) {
      // The rest of an album given as one answer: kept, and relayed with it once the ticket exists.
      if (s.pending.length < MAX_PENDING) s.pending.push(m);
    } else if (s.form) {
      await answer(c, s, contact, inputOf(m));
    } else {
      const open = await openTickets(c, contact.id);
      const chosen = s.chosenTicketId && s.chosenUntil && s.chosenUntil > c.at ? open.find((t) => t.id === s.chosenTicketId) : undefined;
      if (open.length === 0) {
        await startForm(c, s, 'Hello! You have no open ticket, so let us open one: please answer a few questions. Send /cancel to stop.');
      } else if (open.length === 1 || chosen) {
        const target = chosen ?? open[0];
        await relayMessage(c, target.id, m);
        s.chosenTicketId = target.id;
        s.chosenUntil = new Date(c.at.getTime() + CHOICE_HOLDS_MS);
      } else {
        const first = s.pending.length === 0;
        if (s.pending.length < MAX_PENDING) s.pending.push(m);
        if (first) await askWhichTicket(c, s, open);
      }
    }
    await saveChat(c, s);
  },

  /** An edit of a message already relayed: the copy in the topic is edited to match. */
  async edited(c: BotCtx, m: any): Promise<void> {
    const messageId = await c.services.topics.messageOfOriginal(c.db, c.account.id, m.chat.id, m.message_id);
    if (!messageId) return; // a form answer, or never relayed
    await mirrorEdit(c, messageId, m);
  },

  async callback(c: BotCtx, q: any): Promise<void> {
    const chatId = q.message?.chat?.id ?? q.from.id;
    await lockCustomer(c, q.from.id);
    const contact = await contactFor(c, q.from);
    const s = await loadChat(c, chatId);
    const data = String(q.data ?? '');
    const [kind, a, b] = data.split(':');
    if (kind === 'f') {
      if (!s.form || Number(a) !== s.step) {
        await c.answer(q.id, 'This question was already answered.');
      } else {
        await c.answer(q.id);
        await answer(c, s, contact, b === 'skip' ? { kind: 'skip' } : { kind: 'choice', index: Number(b) });
      }
    } else if (kind === 'pk') {
      await c.answer(q.id);
      if (a === 'new') {
        await startForm(c, s, 'Let us open a new ticket.');
      } else {
        const open = await openTickets(c, contact.id);
        const target = open.find((t) => t.id === a);
        if (!target) {
          await c.say(chatId, 'That ticket is closed now.');
          if (open.length) await askWhichTicket(c, s, open);
        } else {
          for (const m of s.pending) await relayMessage(c, target.id, m);
          s.pending = [];
          s.chosenTicketId = target.id;
          s.chosenUntil = new Date(c.at.getTime() + CHOICE_HOLDS_MS);
          await c.say(chatId, `Got it: this goes to ticket #${target.number}.`);
        }
      }
    } else if (kind === 'csat') {
      const rating = Number(b);
      if (!(await c.services.tickets.recordCsat(c.db, c.ws.id, a, contact.id, rating, c.at))) {
        await c.answer(q.id, 'This rating cannot be recorded.');
      } else {
        await c.answer(q.id, `Thank you! You rated us ${rating}/5.`);
      }
    } else {
      await c.answer(q.id);
    }
    await saveChat(c, s);
  },

  /** Blocking or unblocking the bot (my_chat_member in a private chat). */
  async membership(c: BotCtx, u: any): Promise<void> {
    await c.services.contacts.setBlockedByChat(c.db, c.account.id, u.chat.id, u.new_chat_member?.status === 'kicked');
  },
};

/**
 * An edited original (customer's or agent's) updates our message and its copies: the text,
 * or the caption of media. Telegram sends edited_message for changes we cannot see too;
 * unchanged words queue nothing.
 */
export async function mirrorEdit(c: BotCtx, messageId: string, m: any): Promise<void> {
  const text = textOf(m);
  const changed = await c.services.messages.editText(c.db, c.ws.id, messageId, text);
  if (!changed) return;
  await c.services.topics.mirrorEdit(c.db, { workspaceId: c.ws.id, ticketId: changed.ticketId, messageId, text, caption: m.caption !== undefined || m.text === undefined, at: c.at });
}
