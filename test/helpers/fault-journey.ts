/**
 * A whole support journey driven through the fake Bot API while it injects faults, and the
 * checks of what came out (test/telegram/fault-*.test.ts). Customers fill in the intake form
 * (a ticket and its topic), write into their ticket, agents answer in the topics, customers
 * write more — several customers at once, each step waiting only for what a person would see.
 *
 * What "delivered exactly once" can mean under faults (README "Telegram faults"):
 * - 429 and a 5xx that failed before the call took effect leave nothing behind, so every
 *   message, topic and card must be there exactly once, in order;
 * - a 5xx answered after Telegram applied the call is indistinguishable from one before it
 *   (the Bot API has no idempotency key and no way to list a chat or a forum), and the send
 *   queue retries: each such answer may leave one extra copy, right next to the original
 *   (a chat's sends are strictly one after the other), an empty extra topic, or an extra
 *   card. Never a loss, never a reordering.
 */
import assert from 'node:assert/strict';
import type { FakeUser, InjectedFault, Message } from './fake-bot-api.js';
import { waitFor } from './process.js';
import { settleConfirmed as settle, ticketRows, type TelegramHarness } from './telegram-harness.js';

export { settle };

/** A seed from TG_FAULT_SEED, else a fresh one: printed with any failure so it can be rerun. */
export function faultSeed(): number {
  const fromEnv = process.env.TG_FAULT_SEED;
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isSafeInteger(n)) throw new Error(`TG_FAULT_SEED must be an integer, got ${fromEnv}`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** waitFor (test/helpers/process.ts) with the probe first, as these journeys call it. */
export const until = <T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, timeoutMs = 30_000): Promise<T> =>
  waitFor(what, check, timeoutMs);


/** What the bot wrote in a customer's private chat, oldest first. */
export const fromBot = (h: TelegramHarness, u: FakeUser): Message[] =>
  h.fake.messagesIn(u.id, { botId: h.bot.id }).filter((m) => m.from?.id === h.bot.id);

/** The bot's text messages in a topic, oldest first (copies, cards; not service messages). */
export const botTextsInTopic = (h: TelegramHarness, threadId: number): Message[] =>
  (h.fake.topic(h.group.id, threadId)?.messages ?? []).filter((m) => m.from?.id === h.bot.id && typeof m.text === 'string');

/**
 * The bot's messages in a topic as words: a text, a caption, or an album (consecutive items of
 * one media group) as `album: <caption> | <caption>`.
 */
export function topicWords(h: TelegramHarness, threadId: number): string[] {
  const out: { words: string; group?: string }[] = [];
  for (const m of h.fake.topic(h.group.id, threadId)?.messages ?? []) {
    if (m.from?.id !== h.bot.id) continue;
    const words = m.text ?? m.caption;
    if (typeof words !== 'string') continue;
    const last = out.at(-1);
    if (last && m.media_group_id && last.group === m.media_group_id) last.words += ` | ${words}`;
    else out.push({ words: m.media_group_id ? `album: ${words}` : words, group: m.media_group_id });
  }
  return out.map((w) => w.words);
}

async function botSaid(h: TelegramHarness, u: FakeUser, re: RegExp): Promise<Message> {
  return until(() => fromBot(h, u).find((m) => re.test(m.text ?? '')), `the bot to say ${re} to ${u.firstName}`);
}

function press(h: TelegramHarness, u: FakeUser, m: Message, label: string): void {
  const b = (m.reply_markup?.inline_keyboard ?? []).flat().find((x: { text: string }) => x.text === label);
  assert.ok(b, `a button "${label}" under "${m.text}"`);
  h.fake.userPresses(h.bot, u, { chatId: u.id, messageId: m.message_id }, b.callback_data);
}

/** The bot's messages to a customer as tokens: the form's questions by number, the rest by text. */
const QUESTIONS: [string, RegExp][] = [['Q1', /\(1\/4\)/], ['Q2', /^\(2\/4\)/], ['Q3', /^\(3\/4\)/], ['Q4', /^\(4\/4\)/], ['created', /^Ticket #\d+ created/]];
const token = (text: string): string => QUESTIONS.find(([, re]) => re.test(text))?.[0] ?? text;

export interface Journey {
  user: FakeUser;
  agent: FakeUser;
  ticketId: string;
  number: number;
  threadId: number;
  /** What the customer wrote into the ticket, in order: each must reach the topic. */
  customerTexts: string[];
  /** What the topic must show of it, in order: those texts, then the album they sent. */
  topicExpected: string[];
  /** What the agent answered in the topic, in order: each must reach the customer. */
  agentTexts: string[];
  /** Originals edited afterwards (original text → new text): the copy must follow. */
  edits: Map<string, string>;
  /** The agent's `/assign me`: answered with a 👍 on it. */
  commandMessageId: number;
}

/**
 * One customer's journey with their own agent: the form, three messages, two answers; the
 * customer corrects a message, the agent corrects an answer and takes the ticket; then two
 * more messages and an album of two photos while a third answer goes the other way.
 */
export async function runJourney(h: TelegramHarness, label: string): Promise<Journey> {
  const { fake, bot, group } = h;
  const user = fake.addUser({ firstName: `Cust${label}`, username: `cust_${label}` });
  const agent = fake.addUser({ firstName: `Agent${label}`, username: `agent_${label}` });
  fake.addMember(group, agent);

  fake.userSends(bot, user, '/start');
  press(h, user, await botSaid(h, user, QUESTIONS[0][1]), 'Technical problem');
  await botSaid(h, user, QUESTIONS[1][1]);
  fake.userSends(bot, user, `Subject ${label}`);
  await botSaid(h, user, QUESTIONS[2][1]);
  fake.userSends(bot, user, `Description ${label}`);
  press(h, user, await botSaid(h, user, QUESTIONS[3][1]), 'Skip');
  const created = await botSaid(h, user, QUESTIONS[4][1]);
  const number = Number(/#(\d+)/.exec(created.text)![1]);

  const customerTexts = [1, 2, 3].map((k) => `c${label}.${k}`);
  const customerMessages = customerTexts.map((t) => fake.userSends(bot, user, t));
  const ticket = await until(async () => {
    const r = await ticketRows(h.db).where('tickets.number', number).first();
    return r?.topic_thread_id ? r : undefined;
  }, `ticket #${number}'s topic`);
  const threadId = Number(ticket.topic_thread_id);
  const edited = new Map<string, string>();
  const shown = (t: string, m: Message) => m.text === t || m.text === edited.get(t);
  const inTopic = (texts: string[]) => until(() => texts.every((t) => botTextsInTopic(h, threadId).some((m) => shown(t, m))), `${texts.join(', ')} in the topic`);
  const atCustomer = (texts: string[]) => until(() => texts.every((t) => fromBot(h, user).some((m) => shown(t, m))), `${texts.join(', ')} at the customer`);
  await inTopic(customerTexts);

  const agentTexts = [1, 2].map((k) => `a${label}.${k}`);
  const agentMessages = agentTexts.map((t) => fake.memberSends(group, agent, t, { threadId }));
  await atCustomer(agentTexts);

  const edits = new Map([[customerTexts[1], `${customerTexts[1]} (edited)`], [agentTexts[0], `${agentTexts[0]} (edited)`]]);
  for (const [from, to] of edits) edited.set(from, to);
  fake.userEdits(bot, user, customerMessages[1].message_id, edits.get(customerTexts[1])!);
  fake.memberEdits(group, agent, agentMessages[0].message_id, edits.get(agentTexts[0])!);
  const command = fake.memberSends(group, agent, '/assign me', { threadId });
  await until(() => botTextsInTopic(h, threadId).some((m) => m.text === edits.get(customerTexts[1])), 'the customer\'s edit in the topic');
  await until(() => fromBot(h, user).some((m) => m.text === edits.get(agentTexts[0])), 'the agent\'s edit at the customer');

  const more = [4, 5].map((k) => `c${label}.${k}`);
  const last = `a${label}.3`;
  for (const t of more) fake.userSends(bot, user, t);
  const album = ['a', 'b'].map((k) => `c${label}.6${k}`);
  for (const caption of album) fake.userSends(bot, user, { photo: true, caption }, { mediaGroupId: `album-${label}` });
  fake.memberSends(group, agent, last, { threadId });
  customerTexts.push(...more);
  agentTexts.push(last);
  const topicExpected = [...customerTexts, `album: ${album.join(' | ')}`];
  await inTopic(customerTexts);
  await until(() => topicWords(h, threadId).includes(topicExpected.at(-1)!), 'the album in the topic');
  await atCustomer(agentTexts);
  return { user, agent, ticketId: ticket.id, number, threadId, customerTexts, topicExpected, agentTexts, edits, commandMessageId: command.message_id };
}

/** Runs `n` journeys at once, then waits for the pipeline to be quiet. */
export async function runJourneys(h: TelegramHarness, prefix: string, n: number): Promise<Journey[]> {
  const journeys = await Promise.all(Array.from({ length: n }, (_, i) => runJourney(h, `${prefix}${i + 1}`)));
  await settle(h);
  return journeys;
}

const POSTING = new Set(['sendMessage', 'copyMessage', 'copyMessages', 'forwardMessage', 'forwardMessages', 'sendMediaGroup', 'sendPhoto', 'sendDocument']);

/** Faults of calls that posted (or would have posted) into a chat, or a topic of it. */
function postingFaults(h: TelegramHarness, chatId: number, threadId?: number): InjectedFault[] {
  return h.fake.injectedFaults.filter((f) => f.call && POSTING.has(f.method) && Number(f.call.params.chat_id) === chatId
    && (threadId === undefined || Number(f.call.params.message_thread_id) === threadId));
}

const collapse = (xs: string[]): string[] => xs.filter((x, i) => i === 0 || x !== xs[i - 1]);

/**
 * A chat's texts with each edit mapped back to its original (for the sequence), after checking
 * that the copy we keep — the last of its repeats, the one whose send succeeded — was edited.
 */
function undoEdits(texts: string[], edits: Map<string, string>, where: string): string[] {
  const back = new Map([...edits].map(([from, to]) => [to, from]));
  const out = texts.map((t) => back.get(t) ?? t);
  for (const [from, to] of edits) {
    const last = out.lastIndexOf(from);
    assert.ok(last >= 0, `${where}: "${from}" arrived`);
    assert.equal(texts[last], to, `${where}: the copy of "${from}" shows the edit`);
  }
  return out;
}

/**
 * The sequence a chat shows against the one expected. `exact`: exactly once, in order.
 * Otherwise: in order and nothing lost, a repeat only right after its original, and no more
 * repeats than 5xx answers given to calls that had taken effect in that chat.
 */
function assertSequence(actual: string[], expected: string[], o: { exact: boolean; applied: number; where: string }): void {
  if (o.exact) {
    assert.deepEqual(actual, expected, `${o.where}: every message exactly once, in order`);
    return;
  }
  assert.deepEqual(collapse(actual), expected, `${o.where}: every message, in order (repeats only right after their original)`);
  const repeats = actual.length - expected.length;
  assert.ok(repeats <= o.applied, `${o.where}: ${repeats} repeats but only ${o.applied} 5xx answers to calls that took effect there`);
}

export interface Expectation {
  /** Only 429s and 5xx before the effect were injected: everything exactly once. */
  exact: boolean;
}

/** Every journey's messages, topics and cards, and the queue and inbox left clean. */
export async function assertDelivered(h: TelegramHarness, journeys: Journey[], e: Expectation): Promise<void> {
  const applied = (fs: InjectedFault[]) => fs.filter((f) => f.kind === '5xx' && f.applied).length;
  for (const j of journeys) {
    // Agent → customer: the form, the confirmation, the agent's answers.
    const where = `${j.user.firstName}'s chat`;
    const only = (texts: string[]) => new Map([...j.edits].filter(([from]) => texts.includes(from)));
    const chat = undoEdits(fromBot(h, j.user).map((m) => token(m.text ?? '<not text>')), only(j.agentTexts), where);
    assertSequence(chat, ['Q1', 'Q2', 'Q3', 'Q4', 'created', ...j.agentTexts], { exact: e.exact, applied: applied(postingFaults(h, j.user.id)), where });

    // Customer → topic: their messages; plus the one card, pinned.
    const inTopic = botTextsInTopic(h, j.threadId);
    const cards = inTopic.filter((m) => m.text.startsWith(`🎫 #${j.number} `));
    const topic = `ticket #${j.number}'s topic`;
    const copies = undoEdits(topicWords(h, j.threadId), only(j.customerTexts), topic).filter((t) => j.topicExpected.includes(t));
    const topicFaults = postingFaults(h, h.group.id, j.threadId);
    assertSequence(copies, j.topicExpected, { exact: e.exact, applied: applied(topicFaults.filter((f) => !String(f.call!.params.text ?? '').startsWith('🎫'))), where: topic });
    const row = await ticketRows(h.db).where('tickets.id', j.ticketId).first();
    const card = Number(row.topic_card_message_id);
    assert.ok(cards.some((m) => m.message_id === card), `ticket #${j.number}'s card ${card} is in its topic`);
    assert.match(h.fake.message(h.group.id, card)!.text, new RegExp(`Assignee: ${j.agent.firstName}`), `ticket #${j.number}'s card shows who took it`);
    const reactions = h.fake.callsTo('setMessageReaction').filter((c) => c.status === 200 && Number(c.params.chat_id) === h.group.id && Number(c.params.message_id) === j.commandMessageId);
    if (e.exact) assert.equal(reactions.length, 1, `one 👍 on ticket #${j.number}'s /assign`);
    else assert.ok(reactions.length >= 1, `a 👍 on ticket #${j.number}'s /assign`);
    assert.ok(h.fake.topic(h.group.id, j.threadId)!.pinned.includes(card), `ticket #${j.number}'s card is pinned`);
    const cardRepeats = applied(topicFaults.filter((f) => String(f.call!.params.text ?? '').startsWith('🎫')));
    if (e.exact) assert.equal(cards.length, 1, `ticket #${j.number}: one card`);
    else assert.ok(cards.length >= 1 && cards.length <= 1 + cardRepeats, `ticket #${j.number}: ${cards.length} cards, ${cardRepeats} ambiguous card sends`);
  }

  // Topics: one per ticket (plus, only after ambiguous answers, empty leftovers).
  const threads = new Set(journeys.map((j) => j.threadId));
  assert.equal(threads.size, journeys.length, 'each ticket has its own topic');
  const topics = h.fake.topics(h.group.id).filter((t) => !t.deleted);
  const extra = topics.filter((t) => !threads.has(t.threadId));
  const createFaults = h.fake.injectedFaults.filter((f) => f.method === 'createForumTopic' && f.kind === '5xx' && f.applied).length;
  const created = h.fake.callsTo('createForumTopic').filter((c) => c.status === 200).length;
  if (e.exact) {
    assert.deepEqual(extra.map((t) => t.name), [], 'no topic besides the tickets\'');
    assert.equal(created, journeys.length, 'createForumTopic succeeded once per ticket');
  } else {
    assert.ok(extra.length <= createFaults, `${extra.length} extra topics, ${createFaults} ambiguous createForumTopic answers`);
    for (const t of extra) {
      assert.deepEqual(t.messages.map((m) => Object.keys(m).find((k) => k === 'forum_topic_created') ?? m.text ?? 'other'), ['forum_topic_created'], `extra topic ${t.threadId} is empty`);
    }
  }

  // The queue and the inbox: nothing failed, nothing left, every update handled once.
  const failedSends = await h.db('telegram_sends').where({ status: 'failed' }).select('op', 'chat_id', 'last_error');
  assert.deepEqual(failedSends, [], 'no send failed for good');
  const ticketIds = journeys.map((j) => j.ticketId);
  const unsent = await h.db('messages').whereIn('ticket_id', ticketIds).whereIn('status', ['queued', 'failed']).select('status', 'failure_reason', 'text');
  assert.deepEqual(unsent, [], 'every message of the tickets is sent');
  const produced = h.fake.updatesFor(h.bot).map((u) => u.update_id);
  const stored = await h.db('telegram_updates').where({ account_id: h.accountId }).orderBy('update_id').select('update_id', 'processed_at', 'last_error', 'attempts');
  assert.deepEqual(stored.map((u) => Number(u.update_id)), produced, 'every update stored once');
  assert.deepEqual(stored.filter((u) => !u.processed_at || u.last_error), [], 'every update handled, none with an error');
}

/** A short account of the faults, for the log of a failed run. */
export function faultSummary(faults: InjectedFault[]): string {
  const counts = new Map<string, number>();
  for (const f of faults) {
    const k = `${f.method} ${f.kind === '5xx' ? `${f.status} ${f.applied ? 'after' : 'before'}` : f.kind}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort().map(([k, n]) => `${n}× ${k}`).join(', ');
}

/** The sends still waiting (or failed), for the log of a failed run. */
export async function waitingSends(h: TelegramHarness): Promise<string> {
  const rows = await h.db('telegram_sends').whereIn('status', ['queued', 'sending', 'failed']).orderBy('id')
    .select('id', 'op', 'status', 'chat_id', 'ticket_id', 'priority', 'attempts', 'failures', 'next_attempt_at', 'lease_until', 'last_error');
  const windows = await h.db('telegram_rate_windows').whereNotNull('blocked_until').select('key', 'blocked_until');
  return `  sends not done: ${JSON.stringify(rows)}\n  paused: ${JSON.stringify(windows)}\n  now: ${new Date().toISOString()}`;
}

/** On failure: the seed to rerun with, the faults injected and what the service complained about. */
export function reportOnFailure(seed: number, get: () => TelegramHarness): void {
  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    const h = get();
    console.log(`\n  Telegram fault probe failed: rerun with TG_FAULT_SEED=${seed}\n  faults: ${faultSummary(h.fake.injectedFaults)}`);
    console.log(await waitingSends(h));
    console.log(h.logs.filter((l) => /"level":(40|50)/.test(l)).slice(-25).join(''));
  });
}
