/**
 * A fake Telegram Bot API server for tests (node:http only). Telegraf is pointed at it with
 * `new Telegraf(token, { telegram: { apiRoot: fake.url, webhookReply: false } })`.
 *
 * It keeps the state Telegram keeps (users, supergroups, forum topics, messages, per-bot update
 * queues), answers in the real envelope with the real error strings, enforces the flood limits,
 * and lets a test act as the humans (customers writing, agents writing in topics, pressing buttons,
 * blocking the bot, deleting a topic by hand) and inject faults: one-off (failNext, slow) or a
 * seeded share of all calls (`faults`: 429s and 5xx answers, a 5xx either before or after the
 * call took effect, and webhook answers taken for lost).
 *
 * Sources for each rule: /work/shared/research/telegram-bot-api.md (§ numbers in comments).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// ------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------

export interface Limits {
  /** Messages a bot may send into one chat in any rolling 1000 ms (FAQ: "one message per second"). */
  perChatPerSecond: number;
  /** Messages a bot may send into one group in any rolling 60 s (FAQ: "20 messages per minute"). */
  perGroupPerMinute: number;
  /** Messages a bot may send in all in any rolling 1000 ms (FAQ: "about 30 messages per second"). */
  perBotPerSecond: number;
  /** Force this retry_after instead of the computed one. */
  retryAfterSeconds?: number;
}

export const DEFAULT_LIMITS: Limits = { perChatPerSecond: 1, perGroupPerMinute: 20, perBotPerSecond: 30 };

/** The six colours createForumTopic accepts (research §1.2). */
export const TOPIC_ICON_COLORS = [0x6fb9f0, 0xffd67e, 0xcb86db, 0x8eee98, 0xff93b2, 0xfb6f5f] as const;

export interface FakeBot { id: number; username: string; firstName: string; token: string }
export interface FakeUser { id: number; firstName: string; lastName?: string; username?: string; isBot: boolean; languageCode?: string }
export interface FakeGroup { id: number; title: string; isForum: boolean }

export interface Content {
  text?: string;
  caption?: string;
  photo?: true;
  document?: { file_name: string; mime_type?: string };
  voice?: true;
  video?: true;
  sticker?: true;
}

/** A Bot API Message object, exactly as sent on the wire. */
export type Message = { message_id: number; date: number; chat: TgChat; [field: string]: any };
export type Update = { update_id: number; [field: string]: any };
export interface TgChat { id: number; type: 'private' | 'supergroup'; title?: string; is_forum?: true; first_name?: string; last_name?: string; username?: string }

export interface Call {
  method: string;
  token: string;
  params: Record<string, any>;
  /** Date.now() when the request arrived. */
  at: number;
  /** HTTP status answered (0 while still pending, e.g. a long poll). */
  status: number;
  /** The JSON body answered (or the raw text for injected >= 500 answers). */
  response: any;
  /** Set when `faults` answered this call with an error (see FaultOptions). */
  fault?: { kind: '429' | '5xx'; applied: boolean };
}

export interface FakeTopic {
  threadId: number;
  name: string;
  iconColor: number;
  iconCustomEmojiId?: string;
  closed: boolean;
  deleted: boolean;
  /** Pinned message ids in this topic, oldest first. */
  pinned: number[];
  /** What is now in the topic (service message that created it first). Empty once deleted. */
  messages: Message[];
  /** Id of the bot or user that created it. */
  createdBy: number;
}

export interface FaultError { code: number; description: string; retryAfter?: number }

/**
 * A share of calls answered with an error, decided by a seeded PRNG so a failure reproduces.
 * The decision for a call is keyed by (seed, method, params, how many identical calls came
 * before): the same call gets the same fault whatever other chats do meanwhile, and a retry of
 * it is a fresh draw.
 */
export interface FaultOptions {
  /** Share of matching calls that fail, 0-1. */
  rate: number;
  seed: number;
  /** Default both. '429': flood control (nothing done). '5xx': see `effect`. */
  kinds?: Array<'429' | '5xx'>;
  /**
   * A 5xx is ambiguous to the caller: 'before' — Telegram did nothing; 'after' — the call took
   * effect (a message posted, a topic created) and only the answer is the error; 'mixed'
   * (default) — either, by the PRNG.
   */
  effect?: 'before' | 'after' | 'mixed';
  /** Only these methods (default: all). */
  methods?: string[];
  /** Never these methods. */
  exceptMethods?: string[];
  /** retry_after of an injected 429, in seconds (default 1). */
  retryAfter?: number;
  /** At most this many faults in all (calls and webhook pushes). */
  max?: number;
  /**
   * Webhook pushes too: the bot's server gets the update and answers 2xx, but Telegram takes
   * the answer for lost (a read timeout) and delivers the update again.
   */
  webhook?: boolean;
}

/** One fault `faults` injected: a call answered with an error, or a webhook answer dropped. */
export interface InjectedFault {
  method: string;
  kind: '429' | '5xx' | 'webhook_redelivery';
  /** HTTP status answered (the push's own status for a redelivery). */
  status: number;
  /** Whether the call took effect (always for a 5xx 'after' and a redelivery; never for a 429). */
  applied: boolean;
  call?: Call;
  updateId?: number;
}

/**
 * How Telegram's front answers a 5xx, as bots see them: nginx's HTML pages and the Bot API
 * server's own JSON. Seen in the wild: nginx 502 (nickoala/telepot #31, php-telegram-bot/core
 * #353), nginx 500 (eternnoir/pyTelegramBotAPI #406), `{"error_code":500,"description":
 * "Internal Server Error: restart"}` (pyTelegramBotAPI #406, #737), `{"error_code":502,
 * "description":"Bad Gateway"}` (tdlib/telegram-bot-api #868). Telegraf reads only the status.
 */
const nginxPage = (status: number, text: string): string =>
  `<html>\r\n<head><title>${status} ${text}</title></head>\r\n<body>\r\n<center><h1>${status} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
export const SERVER_ERROR_ANSWERS = [
  { status: 502, raw: nginxPage(502, 'Bad Gateway'), statusText: 'Bad Gateway' },
  { status: 500, raw: nginxPage(500, 'Internal Server Error'), statusText: 'Internal Server Error' },
  { status: 500, body: { ok: false, error_code: 500, description: 'Internal Server Error: restart' } },
  { status: 502, body: { ok: false, error_code: 502, description: 'Bad Gateway' } },
] as const;

/** FNV-1a: a string to a 32-bit seed. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
/** mulberry32: a small seeded PRNG, floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export type ChatRights = { can_manage_topics: boolean; can_pin_messages: boolean; can_delete_messages: boolean };

export interface FakeBotApi {
  url: string;
  close(): Promise<void>;
  addBot(o?: { id?: number; username?: string; firstName?: string }): FakeBot;
  addUser(o?: { id?: number; firstName?: string; lastName?: string; username?: string; isBot?: boolean }): FakeUser;
  addGroup(o?: { id?: number; title?: string; isForum?: boolean }): FakeGroup;
  addBotToGroup(bot: FakeBot, group: FakeGroup, o?: { status?: 'administrator' | 'member'; rights?: Partial<ChatRights> }): void;
  /** A human member; `status` lets a test make them an administrator or the creator. */
  addMember(group: FakeGroup, user: FakeUser, o?: { status?: 'member' | 'administrator' | 'creator' }): void;
  /** The bot leaves/is kicked: later sends → 403 `Forbidden: bot was kicked from the supergroup chat`. */
  removeBotFromGroup(bot: FakeBot, group: FakeGroup): void;

  userSends(bot: FakeBot, user: FakeUser, content: string | Content, o?: { mediaGroupId?: string; replyTo?: number }): Message;
  userEdits(bot: FakeBot, user: FakeUser, messageId: number, content: string | Content): Message;
  userPresses(bot: FakeBot, user: FakeUser, message: { chatId: number; messageId: number }, data: string): string;
  userBlocks(bot: FakeBot, user: FakeUser): void;
  userUnblocks(bot: FakeBot, user: FakeUser): void;
  /** A non-anonymous reaction in the private chat (message_reaction update: only if allowed_updates lists it). */
  userReacts(bot: FakeBot, user: FakeUser, messageId: number, emoji: string): void;
  memberSends(group: FakeGroup, user: FakeUser, content: string | Content, o?: { threadId?: number | null; replyTo?: number; mediaGroupId?: string }): Message;
  memberEdits(group: FakeGroup, user: FakeUser, messageId: number, content: string | Content): Message;
  deleteTopicByHand(group: FakeGroup, threadId: number): void;
  closeTopicByHand(group: FakeGroup, threadId: number, by: FakeUser): void;
  reopenTopicByHand(group: FakeGroup, threadId: number, by: FakeUser): void;

  calls: Call[];
  callsTo(method: string): Call[];
  messagesIn(chatId: number, o?: { botId?: number; threadId?: number | null }): Message[];
  /** One message as it is now (private chats: give botId when several bots talk to the user). */
  message(chatId: number, messageId: number, o?: { botId?: number }): Message | undefined;
  topic(groupId: number, threadId: number): FakeTopic | undefined;
  topics(groupId: number): FakeTopic[];
  rateLimited: Call[];
  updatesFor(bot: FakeBot): Update[];
  /** Updates produced for the bot and not yet confirmed (getUpdates offset / webhook 2xx). */
  pendingUpdatesFor(bot: FakeBot): Update[];
  /** Resolves once `n` updates in all have been produced for the bot. */
  waitForUpdates(bot: FakeBot, n: number, timeoutMs?: number): Promise<Update[]>;
  /** Resolves once `n` calls to `method` have been answered. */
  waitForCalls(method: string, n: number, timeoutMs?: number): Promise<Call[]>;
  /** Answers given by answerCallbackQuery, by callback query id. */
  callbackAnswers: Map<string, { text?: string; show_alert?: boolean; url?: string }>;

  failNext(match: { method?: string; chatId?: number; times?: number }, error: FaultError): void;
  /** Turns seeded fault injection on (or off with false) from now on; see FaultOptions. */
  setFaults(f: FaultOptions | false): void;
  /** Every fault injected by `faults`, in order. */
  injectedFaults: InjectedFault[];
  slow(match: { method?: string }, ms: number): void;
  deletedTopicError: 'message thread not found' | 'TOPIC_DELETED';
  setLimits(l: Partial<Limits> | false): void;
}

// ------------------------------------------------------------------------------------------
// Errors (the exact strings the real Bot API answers; research §1.6, §2.2, §2.4)
// ------------------------------------------------------------------------------------------

export const ERR = {
  unauthorized: 'Unauthorized',
  notFound: 'Not Found',
  chatNotFound: 'Bad Request: chat not found',
  chatIdEmpty: 'Bad Request: chat_id is empty',
  textEmpty: 'Bad Request: message text is empty',
  textTooLong: 'Bad Request: message is too long',
  captionTooLong: 'Bad Request: message caption is too long',
  threadNotFound: 'Bad Request: message thread not found',
  topicDeleted: 'Bad Request: TOPIC_DELETED',
  topicClosed: 'Bad Request: TOPIC_CLOSED',
  topicNotModified: 'Bad Request: TOPIC_NOT_MODIFIED',
  notAForum: 'Bad Request: the chat is not a forum',
  noRightsCreateTopic: 'Bad Request: not enough rights to create a topic',
  noRightsManageTopic: 'Bad Request: not enough rights to manage the topic',
  noRightsDeleteTopic: 'Bad Request: not enough rights to delete the topic',
  topicNameEmpty: 'Bad Request: TOPIC_TITLE_EMPTY',
  topicNameTooLong: 'Bad Request: topic name is too long',
  iconColorInvalid: 'Bad Request: TOPIC_ICON_COLOR_INVALID',
  noRightsPin: 'Bad Request: not enough rights to manage pinned messages in the chat',
  copyNotFound: 'Bad Request: message to copy not found',
  cantCopy: "Bad Request: message can't be copied",
  forwardNotFound: 'Bad Request: message to forward not found',
  editNotFound: 'Bad Request: message to edit not found',
  cantEdit: "Bad Request: message can't be edited",
  noTextToEdit: 'Bad Request: there is no text in the message to edit',
  noCaptionToEdit: 'Bad Request: there is no caption in the message to edit',
  notModified:
    'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
  deleteNotFound: 'Bad Request: message to delete not found',
  cantDelete: "Bad Request: message can't be deleted",
  pinNotFound: 'Bad Request: message to pin not found',
  unpinNotFound: 'Bad Request: message to unpin not found',
  replyNotFound: 'Bad Request: message to be replied not found',
  idsEmpty: 'Bad Request: message identifiers are not specified',
  idsTooMany: 'Bad Request: too many message identifiers specified',
  idsOrder: 'Bad Request: message identifiers must be in a strictly increasing order',
  queryInvalid: 'Bad Request: query is too old and response timeout expired or query ID is invalid',
  userNotFound: 'Bad Request: user not found',
  secretInvalid: 'Bad Request: secret token contains unallowed characters',
  badWebhookUrl: 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook',
  blocked: 'Forbidden: bot was blocked by the user',
  cantInitiate: "Forbidden: bot can't initiate conversation with a user",
  cantSendToBots: "Forbidden: bot can't send messages to bots",
  notMember: 'Forbidden: bot is not a member of the supergroup chat',
  kicked: 'Forbidden: bot was kicked from the supergroup chat',
  webhookActive: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
  terminatedByOther: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
} as const;

class ApiError extends Error {
  constructor(readonly code: number, readonly description: string, readonly retryAfter?: number) {
    super(description);
  }
}
const bad = (description: string): ApiError => new ApiError(400, description);
const forbidden = (description: string): ApiError => new ApiError(403, description);

// ------------------------------------------------------------------------------------------
// Internal state
// ------------------------------------------------------------------------------------------

/** Update types excluded when allowed_updates is empty or never given (research §2.3). */
const NOT_BY_DEFAULT = new Set(['chat_member', 'message_reaction', 'message_reaction_count']);

interface Poller { respond: (status: number, body: unknown) => void }
interface Webhook { url: string; secret?: string; maxConnections: number; lastErrorDate?: number; lastErrorMessage?: string }

interface BotState {
  bot: FakeBot;
  nextUpdateId: number;
  produced: Update[];
  pending: Update[];
  /** Which chat FIFO an update belongs to (webhook ordering). */
  queueKey: Map<number, string>;
  allowed: string[] | null;
  webhook: Webhook | null;
  inFlight: Set<string>;
  retryTimers: Set<NodeJS.Timeout>;
  poller: Poller | null;
  sentTimes: number[];
}

interface Member { status: 'creator' | 'administrator' | 'member' | 'left' | 'kicked'; rights: ChatRights }
interface TopicState { threadId: number; name: string; iconColor: number; iconCustomEmojiId?: string; closed: boolean; deleted: boolean; pinned: number[]; createdBy: number }
interface ChatState {
  /** Telegram chat id (private: the user id). */
  id: number;
  kind: 'private' | 'group';
  /** Private chats: the bot this chat belongs to. */
  botId?: number;
  seq: number;
  messages: Map<number, Message>;
  /** Pinned message ids outside topics (private chats, General). */
  pinned: number[];
  sentTimes: Map<number, number[]>; // bot id → send times into this chat
}
interface GroupState extends ChatState {
  group: FakeGroup;
  bots: Map<number, Member>;
  members: Map<number, Member>;
  topics: Map<number, TopicState>;
  /** Bot ids that were removed (answers "kicked" instead of "not a member"). */
  kickedBots: Set<number>;
}
interface PrivateState extends ChatState { userId: number; started: boolean; blocked: boolean }

interface FailRule { method?: string; chatId?: number; times: number; error: FaultError }
interface SlowRule { method?: string; ms: number }

const nowSec = (): number => Math.floor(Date.now() / 1000);

// ------------------------------------------------------------------------------------------
// Parameters: JSON, urlencoded and multipart all arrive here; the latter two as strings.
// ------------------------------------------------------------------------------------------

type Params = Record<string, any>;

function int(p: Params, name: string): number | undefined {
  const v = p[name];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || !Number.isInteger(n)) throw bad(`Bad Request: invalid ${name} specified`);
  return n;
}
function reqInt(p: Params, name: string): number {
  const n = int(p, name);
  if (n === undefined) throw bad(`Bad Request: ${name} is empty`);
  return n;
}
function str(p: Params, name: string): string | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : String(v);
}
function bool(p: Params, name: string): boolean {
  const v = p[name];
  return v === true || v === 'true' || v === 1 || v === '1';
}
function json(p: Params, name: string): any {
  const v = p[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    throw bad(`Bad Request: can't parse ${name} JSON object`);
  }
}

function parseMultipart(body: Buffer, boundary: string): Params {
  const out: Params = {};
  const raw = body.toString('latin1');
  for (const part of raw.split(`--${boundary}`)) {
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    const head = part.slice(0, sep);
    let value = part.slice(sep + 4);
    if (value.endsWith('\r\n')) value = value.slice(0, -2);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (!name) continue;
    const filename = /filename="([^"]*)"/i.exec(head)?.[1];
    // Uploaded files are not kept: only the fact that one came (and its name).
    out[name] = filename !== undefined ? { uploaded: true, filename } : Buffer.from(value, 'latin1').toString('utf8');
  }
  return out;
}

/** Text as Telegram stores it after parse_mode (tags and escapes removed; entities not rebuilt). */
function plainText(text: string, parseMode: string | undefined): string {
  if (parseMode === 'HTML') {
    return text
      .replace(/<[^>]+>/g, '')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&amp;/g, '&');
  }
  if (parseMode === 'MarkdownV2' || parseMode === 'Markdown') {
    // eslint-disable-next-line no-control-regex -- NUL is the placeholder for an escaped character while the markup is stripped
    return text.replace(/\\(.)/g, '\u0000$1').replace(/[*_~`|]/g, '').replace(/\u0000(.)/g, '$1');
  }
  return text;
}

/** bot_command entities, as Telegram adds them to incoming text (Telegraf's bot.command() needs them). */
function commandEntities(text: string): Array<{ type: 'bot_command'; offset: number; length: number }> {
  const out: Array<{ type: 'bot_command'; offset: number; length: number }> = [];
  const re = /(^|\s)(\/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,})?)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ type: 'bot_command', offset: m.index + m[1].length, length: m[2].length });
  return out;
}

const MEDIA_FIELDS = ['photo', 'document', 'voice', 'video', 'sticker', 'audio', 'animation', 'video_note'] as const;
const isService = (m: Message): boolean =>
  ['forum_topic_created', 'forum_topic_edited', 'forum_topic_closed', 'forum_topic_reopened', 'pinned_message', 'new_chat_members', 'left_chat_member'].some(
    (k) => k in m,
  );
const hasMedia = (m: Message): boolean => MEDIA_FIELDS.some((k) => k in m);

// ------------------------------------------------------------------------------------------
// The server
// ------------------------------------------------------------------------------------------

export async function startFakeBotApi(opts: { limits?: Partial<Limits> | false; faults?: FaultOptions } = {}): Promise<FakeBotApi> {
  const botsByToken = new Map<string, BotState>();
  const botsById = new Map<number, BotState>();
  const users = new Map<number, FakeUser>();
  const groups = new Map<number, GroupState>();
  const privates = new Map<string, PrivateState>(); // `${botId}:${userId}`
  const callbackQueries = new Map<string, { botId: number; answered: boolean }>();
  const calls: Call[] = [];
  const rateLimited: Call[] = [];
  const failRules: FailRule[] = [];
  const slowRules: SlowRule[] = [];
  const callbackAnswers = new Map<string, { text?: string; show_alert?: boolean; url?: string }>();
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const aborts = new Set<AbortController>();
  let limits: Limits | false = opts.limits === false ? false : { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  let faults: FaultOptions | null = null;
  const injectedFaults: InjectedFault[] = [];
  /** How many identical calls (or pushes) the fault PRNG has seen: the n-th draw of each key. */
  const faultDraws = new Map<string, number>();
  let nextId = 1000;
  let nextFile = 1;
  let nextMediaGroup = 1;
  let closed = false;

  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  const fileId = (kind: string): { file_id: string; file_unique_id: string } => {
    const n = nextFile++;
    return { file_id: `fake-${kind}-${n}`, file_unique_id: `u${kind}${n}` };
  };

  // ---------- people and chats

  const userJson = (u: FakeUser): Record<string, unknown> => ({
    id: u.id,
    is_bot: u.isBot,
    first_name: u.firstName,
    ...(u.lastName ? { last_name: u.lastName } : {}),
    ...(u.username ? { username: u.username } : {}),
    ...(u.isBot ? {} : { language_code: u.languageCode ?? 'en' }),
  });
  const botUserJson = (b: FakeBot): Record<string, unknown> => ({ id: b.id, is_bot: true, first_name: b.firstName, username: b.username });
  const chatJson = (c: ChatState): TgChat => {
    if (c.kind === 'group') {
      const g = (c as GroupState).group;
      return { id: g.id, type: 'supergroup', title: g.title, ...(g.isForum ? { is_forum: true as const } : {}) };
    }
    const u = users.get(c.id)!;
    return { id: u.id, type: 'private', first_name: u.firstName, ...(u.lastName ? { last_name: u.lastName } : {}), ...(u.username ? { username: u.username } : {}) };
  };
  const botOf = (b: FakeBot): BotState => {
    const s = botsById.get(b.id);
    if (!s) throw new Error(`fake-bot-api: unknown bot ${b.id}`);
    return s;
  };
  const groupOf = (id: number): GroupState => {
    const g = groups.get(id);
    if (!g) throw new Error(`fake-bot-api: unknown group ${id}`);
    return g;
  };
  const privateOf = (botId: number, userId: number, create = false): PrivateState | undefined => {
    const key = `${botId}:${userId}`;
    let c = privates.get(key);
    if (!c && create) {
      c = { id: userId, kind: 'private', botId, userId, seq: 0, messages: new Map(), pinned: [], sentTimes: new Map(), started: false, blocked: false };
      privates.set(key, c);
    }
    return c;
  };

  // ---------- updates

  function produce(bs: BotState, body: Record<string, unknown>, queueKey: string): void {
    const type = Object.keys(body)[0];
    // allowed_updates filters when updates are created (getUpdates docs: "doesn't affect updates created before").
    if (bs.allowed && bs.allowed.length > 0 ? !bs.allowed.includes(type) : NOT_BY_DEFAULT.has(type)) return;
    const u: Update = { update_id: bs.nextUpdateId++, ...structuredClone(body) };
    bs.produced.push(u);
    bs.pending.push(u);
    bs.queueKey.set(u.update_id, queueKey);
    if (bs.poller) {
      const p = bs.poller;
      bs.poller = null;
      p.respond(200, { ok: true, result: takeUpdates(bs, 100) });
    }
    pumpWebhook(bs);
    notify();
  }

  /** Deliver a group message/service message to every bot in the group except `exceptBotId`. */
  function toGroupBots(g: GroupState, type: 'message' | 'edited_message', m: Message, exceptBotId?: number): void {
    // Bots never see other bots' messages; service messages reach every bot (Bot FAQ, research §1.4).
    if (m.from?.is_bot && !isService(m)) return;
    for (const [botId, mem] of g.bots) {
      if (botId === exceptBotId || (mem.status !== 'administrator' && mem.status !== 'member')) continue;
      produce(botsById.get(botId)!, { [type]: m }, `chat:${g.id}`);
    }
  }

  function takeUpdates(bs: BotState, limit: number): Update[] {
    return bs.pending.slice(0, limit);
  }

  // ---------- webhook pusher: per chat FIFO, next one only after a 2xx (research §2.3)

  function pumpWebhook(bs: BotState): void {
    const wh = bs.webhook;
    if (!wh || closed) return;
    const seen = new Set<string>();
    for (const u of bs.pending) {
      const key = bs.queueKey.get(u.update_id) ?? 'other';
      if (seen.has(key)) continue;
      seen.add(key);
      if (bs.inFlight.has(key) || bs.inFlight.size >= wh.maxConnections) continue;
      bs.inFlight.add(key);
      void pushOne(bs, wh, u, key);
    }
  }

  async function pushOne(bs: BotState, wh: Webhook, u: Update, key: string): Promise<void> {
    const ac = new AbortController();
    aborts.add(ac);
    const timer = setTimeout(() => ac.abort(), 10_000);
    let ok = false;
    let reply: string | undefined;
    try {
      const res = await fetch(wh.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(wh.secret ? { 'x-telegram-bot-api-secret-token': wh.secret } : {}) },
        body: JSON.stringify(u),
        signal: ac.signal,
      });
      reply = await res.text().catch(() => undefined);
      ok = res.status >= 200 && res.status < 300;
      if (!ok) {
        wh.lastErrorDate = nowSec();
        wh.lastErrorMessage = `Wrong response from the webhook: ${res.status} ${res.statusText}`;
      } else if (faults?.webhook && drawFault('webhook', String(u.update_id))) {
        // The bot got it and said so, but Telegram never saw the answer: the update comes again.
        ok = false;
        reply = undefined;
        injectedFaults.push({ method: 'webhook', kind: 'webhook_redelivery', status: res.status, applied: true, updateId: u.update_id });
        wh.lastErrorDate = nowSec();
        wh.lastErrorMessage = 'Read timeout expired';
      }
    } catch (e) {
      wh.lastErrorDate = nowSec();
      wh.lastErrorMessage = ac.signal.aborted ? 'Read timeout expired' : `Connection refused (${(e as Error).message})`;
    } finally {
      clearTimeout(timer);
      aborts.delete(ac);
    }
    if (closed) return;
    if (ok) {
      const i = bs.pending.findIndex((p) => p.update_id === u.update_id);
      if (i >= 0) bs.pending.splice(i, 1);
      bs.inFlight.delete(key);
      // A method in the webhook reply is executed like a call (Bot FAQ "reply directly").
      if (reply && reply.trim().startsWith('{')) {
        try {
          const body = JSON.parse(reply) as Params;
          if (typeof body.method === 'string') {
            const { method, ...params } = body;
            void handleCall(bs.bot.token, method, params);
          }
        } catch {
          /* not a method call */
        }
      }
      notify();
      pumpWebhook(bs);
    } else {
      // Real servers back off up to a minute; the fake retries after ~200 ms.
      const t = setTimeout(() => {
        bs.retryTimers.delete(t);
        bs.inFlight.delete(key);
        pumpWebhook(bs);
      }, 200);
      bs.retryTimers.add(t);
    }
  }

  // ---------- flood limits (research §3; 429 wire format §2.4)

  function checkLimits(bs: BotState, chat: ChatState, count: number, o: { perChat: boolean }): void {
    if (!limits) return;
    const now = Date.now();
    const prune = (arr: number[], windowMs: number): number[] => arr.filter((t) => t > now - windowMs);
    // A call is let through while the window still has room for one message; a multi-message
    // call (copyMessages of an album) then fills it past the limit, like Telegram's short bursts.
    const waitMs = (arr: number[], limit: number, windowMs: number): number => {
      if (arr.length < limit) return 0;
      const sorted = [...arr].sort((a, b) => a - b);
      return sorted[arr.length - limit] + windowMs - now;
    };
    bs.sentTimes = prune(bs.sentTimes, 1000);
    const chatTimes = prune(chat.sentTimes.get(bs.bot.id) ?? [], 60_000);
    chat.sentTimes.set(bs.bot.id, chatTimes);
    const lastSecond = chatTimes.filter((t) => t > now - 1000);
    let wait = 0;
    if (o.perChat) wait = Math.max(wait, waitMs(lastSecond, limits.perChatPerSecond, 1000));
    if (chat.kind === 'group') wait = Math.max(wait, waitMs(chatTimes, limits.perGroupPerMinute, 60_000));
    wait = Math.max(wait, waitMs(bs.sentTimes, limits.perBotPerSecond, 1000));
    if (wait > 0) {
      const n = limits.retryAfterSeconds ?? Math.max(1, Math.ceil(wait / 1000));
      throw new ApiError(429, `Too Many Requests: retry after ${n}`, n);
    }
    for (let i = 0; i < count; i++) {
      bs.sentTimes.push(now);
      chatTimes.push(now);
    }
  }

  // ---------- resolving the target chat of a call

  function chatIdParam(p: Params, name = 'chat_id'): number {
    const v = p[name];
    if (v === undefined || v === null || v === '') throw bad(name === 'chat_id' ? ERR.chatIdEmpty : `Bad Request: ${name} is empty`);
    const n = Number(v);
    if (!Number.isInteger(n)) throw bad(ERR.chatNotFound); // @username: no public chats here
    return n;
  }

  /** The chat a bot writes into, with Telegram's access errors. */
  function writableChat(bs: BotState, chatId: number): ChatState {
    if (chatId < 0) {
      const g = groups.get(chatId);
      if (!g) throw bad(ERR.chatNotFound);
      const mem = g.bots.get(bs.bot.id);
      if (!mem || (mem.status !== 'administrator' && mem.status !== 'member')) {
        throw forbidden(g.kickedBots.has(bs.bot.id) ? ERR.kicked : ERR.notMember);
      }
      return g;
    }
    if (botsById.has(chatId)) throw forbidden(ERR.cantSendToBots);
    if (!users.has(chatId)) throw bad(ERR.chatNotFound);
    const c = privateOf(bs.bot.id, chatId);
    if (c?.blocked) throw forbidden(ERR.blocked);
    if (!c?.started) throw forbidden(ERR.cantInitiate);
    return c;
  }

  /** A chat the bot can read from (copy/forward source, edits, getChat). */
  function readableChat(bs: BotState, chatId: number): ChatState {
    if (chatId < 0) {
      const g = groups.get(chatId);
      const mem = g?.bots.get(bs.bot.id);
      if (!g || !mem || (mem.status !== 'administrator' && mem.status !== 'member')) throw bad(ERR.chatNotFound);
      return g;
    }
    const c = privateOf(bs.bot.id, chatId);
    if (!c || !c.started) throw bad(ERR.chatNotFound);
    return c;
  }

  const rightsOf = (bs: BotState, g: GroupState): Member => g.bots.get(bs.bot.id)!;
  const isAdmin = (m: Member | undefined): boolean => m?.status === 'administrator' || m?.status === 'creator';

  /** Where a new message goes inside the chat; the thread rules of research §1.3-§1.6. */
  function placement(chat: ChatState, threadParam: number | undefined, replyTo: Message | undefined): { threadId?: number; isTopic: boolean; root?: Message } {
    if (chat.kind === 'private') return { isTopic: false }; // message_thread_id to a private chat: ignored
    const g = chat as GroupState;
    if (threadParam === undefined) {
      // General topic (or a plain supergroup): a reply carries the reply root as thread id, not is_topic_message.
      if (replyTo && replyTo.message_thread_id !== undefined && replyTo.is_topic_message) {
        return { threadId: replyTo.message_thread_id, isTopic: true, root: g.messages.get(replyTo.message_thread_id) };
      }
      if (replyTo) return { threadId: replyTo.message_thread_id ?? replyTo.message_id, isTopic: false };
      return { isTopic: false };
    }
    if (!g.group.isForum) {
      if (!g.messages.has(threadParam)) throw bad(ERR.threadNotFound);
      return { threadId: threadParam, isTopic: false };
    }
    const t = g.topics.get(threadParam);
    if (threadParam === 1 || !t) throw bad(ERR.threadNotFound); // General (id 1) is not addressable
    if (t.deleted) throw bad(api.deletedTopicError === 'TOPIC_DELETED' ? ERR.topicDeleted : ERR.threadNotFound);
    if (t.closed) throw bad(ERR.topicClosed);
    return { threadId: threadParam, isTopic: true, root: g.messages.get(threadParam) };
  }

  /** reply_to_message as Telegram nests it: one level deep. */
  const shallow = (m: Message): Message => {
    const { reply_to_message: _drop, ...rest } = m;
    void _drop;
    return structuredClone(rest) as Message;
  };

  function store(chat: ChatState, m: Omit<Message, 'message_id' | 'chat' | 'date'>, where: { threadId?: number; isTopic: boolean; root?: Message }, replyTo?: Message): Message {
    const id = ++chat.seq;
    const msg: Message = { message_id: id, ...(m as object), chat: chatJson(chat), date: nowSec() } as Message;
    // Field order roughly like Telegram's: id, thread, from, chat, date, …
    const ordered: Message = { message_id: id } as Message;
    if (where.threadId !== undefined) ordered.message_thread_id = where.threadId;
    if (msg.from) ordered.from = msg.from;
    ordered.chat = msg.chat;
    ordered.date = msg.date;
    if (where.isTopic) ordered.is_topic_message = true;
    // Inside a topic every message without an explicit reply is a reply to the topic's creation message.
    const target = replyTo ?? (where.isTopic && where.root && where.root.message_id !== id ? where.root : undefined);
    if (target) ordered.reply_to_message = shallow(target);
    for (const [k, v] of Object.entries(msg)) if (!(k in ordered) && v !== undefined) ordered[k] = v;
    chat.messages.set(id, ordered);
    return ordered;
  }

  function contentFields(content: string | Content, forEdit?: Message): Record<string, unknown> {
    const c: Content = typeof content === 'string' ? (forEdit && hasMedia(forEdit) ? { caption: content } : { text: content }) : content;
    const out: Record<string, unknown> = {};
    if (c.photo) out.photo = [{ ...fileId('photo'), width: 90, height: 90, file_size: 1200 }, { ...fileId('photo'), width: 800, height: 800, file_size: 64000 }];
    if (c.document) out.document = { ...fileId('doc'), file_name: c.document.file_name, mime_type: c.document.mime_type ?? 'application/octet-stream', file_size: 2048 };
    if (c.voice) out.voice = { ...fileId('voice'), duration: 3, mime_type: 'audio/ogg', file_size: 4000 };
    if (c.video) out.video = { ...fileId('video'), width: 640, height: 360, duration: 5, mime_type: 'video/mp4', file_size: 90000 };
    if (c.sticker) out.sticker = { ...fileId('sticker'), type: 'regular', width: 512, height: 512, is_animated: false, is_video: false, emoji: '🙂' };
    if (c.text !== undefined) {
      out.text = c.text;
      const e = commandEntities(c.text);
      if (e.length) out.entities = e;
    }
    if (c.caption !== undefined) {
      out.caption = c.caption;
      const e = commandEntities(c.caption);
      if (e.length) out.caption_entities = e;
    }
    return out;
  }

  // ---------- the Bot API methods

  type Handler = (bs: BotState, p: Params) => unknown;

  function replyTarget(chat: ChatState, p: Params): Message | undefined {
    const rp = json(p, 'reply_parameters') as { message_id?: number; allow_sending_without_reply?: boolean } | undefined;
    const id = rp?.message_id ?? int(p, 'reply_to_message_id');
    if (id === undefined) return undefined;
    const m = chat.messages.get(Number(id));
    if (!m && !(rp?.allow_sending_without_reply || bool(p, 'allow_sending_without_reply'))) throw bad(ERR.replyNotFound);
    return m;
  }

  /** Shared path of every send*: access, thread, reply, flood limit, store. */
  function send(bs: BotState, p: Params, fields: Record<string, unknown>, count = 1): Message {
    const chat = writableChat(bs, chatIdParam(p));
    const replyTo = replyTarget(chat, p);
    const where = placement(chat, int(p, 'message_thread_id'), replyTo);
    checkLimits(bs, chat, count, { perChat: true });
    const markup = json(p, 'reply_markup');
    return store(chat, { from: botUserJson(bs.bot), ...fields, ...(markup ? { reply_markup: markup } : {}) }, where, replyTo);
  }

  function textParam(p: Params, name: string): string {
    const raw = str(p, name) ?? '';
    const text = plainText(raw, str(p, 'parse_mode'));
    if (text.trim().length === 0) throw bad(ERR.textEmpty);
    if (text.length > 4096) throw bad(ERR.textTooLong);
    return text;
  }
  function captionFields(p: Params): Record<string, unknown> {
    const raw = str(p, 'caption');
    if (raw === undefined || raw === '') return {};
    const caption = plainText(raw, str(p, 'parse_mode'));
    if (caption.length > 1024) throw bad(ERR.captionTooLong);
    return { caption };
  }
  /** A file param: a file_id string (kept) or an upload (a new file id). */
  function fileParam(p: Params, name: string, kind: string): { file_id: string; file_unique_id: string } {
    const v = p[name];
    if (v === undefined || v === null || v === '') throw bad(`Bad Request: there is no ${name} in the request`);
    if (typeof v === 'string' && !v.startsWith('attach://')) return { file_id: v, file_unique_id: `u-${v}` };
    return fileId(kind);
  }

  function copyFields(src: Message, p: Params, o: { keepCaption: boolean }): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const k of [...MEDIA_FIELDS, 'text', 'entities']) if (k in src) out[k] = structuredClone(src[k]);
    if (hasMedia(src)) {
      const given = o.keepCaption ? str(p, 'caption') : undefined;
      if (given !== undefined) Object.assign(out, captionFields(p));
      else if (o.keepCaption && !bool(p, 'remove_caption') && src.caption !== undefined) {
        out.caption = src.caption;
        if (src.caption_entities) out.caption_entities = structuredClone(src.caption_entities);
      }
    }
    return out;
  }

  function copyOrForward(bs: BotState, p: Params, ids: number[], mode: 'copy' | 'forward', many: boolean): Message[] {
    if (ids.length === 0) throw bad(ERR.idsEmpty);
    if (ids.length > 100) throw bad(ERR.idsTooMany);
    for (let i = 1; i < ids.length; i++) if (ids[i] <= ids[i - 1]) throw bad(ERR.idsOrder);
    const src = readableChat(bs, chatIdParam(p, 'from_chat_id'));
    const dest = writableChat(bs, chatIdParam(p));
    const found = ids.map((id) => src.messages.get(id)).filter((m): m is Message => m !== undefined && !isService(m));
    if (!many) {
      const m = src.messages.get(ids[0]);
      if (!m) throw bad(mode === 'copy' ? ERR.copyNotFound : ERR.forwardNotFound);
      if (isService(m)) throw bad(mode === 'copy' ? ERR.cantCopy : "Bad Request: message can't be forwarded");
    }
    // copyMessages/forwardMessages skip what can't be found; with nothing left there is nothing to send.
    if (found.length === 0) throw bad(mode === 'copy' ? ERR.copyNotFound : ERR.forwardNotFound);
    const replyTo = many ? undefined : replyTarget(dest, p);
    const where = placement(dest, int(p, 'message_thread_id'), replyTo);
    checkLimits(bs, dest, found.length, { perChat: true });
    const markup = many ? undefined : json(p, 'reply_markup');
    const groupMap = new Map<string, string>(); // source media_group_id → new one (album grouping kept)
    return found.map((m) => {
      const fields = copyFields(m, p, { keepCaption: true });
      if (many && m.media_group_id) {
        if (!groupMap.has(m.media_group_id)) groupMap.set(m.media_group_id, `fake-album-${nextMediaGroup++}`);
        fields.media_group_id = groupMap.get(m.media_group_id);
      }
      if (mode === 'forward') {
        const author = m.from as { id: number; is_bot: boolean };
        fields.forward_origin = { type: 'user', sender_user: structuredClone(author), date: m.date };
        fields.forward_from = structuredClone(author);
        fields.forward_date = m.date;
      }
      return store(dest, { from: botUserJson(bs.bot), ...fields, ...(markup ? { reply_markup: markup } : {}) }, where, replyTo);
    });
  }

  function editable(bs: BotState, p: Params): { chat: ChatState; msg: Message } {
    if (p.inline_message_id !== undefined) throw bad('Bad Request: MESSAGE_ID_INVALID');
    const chat = readableChat(bs, chatIdParam(p));
    const msg = chat.messages.get(reqInt(p, 'message_id'));
    if (!msg) throw bad(ERR.editNotFound);
    if ((msg.from as { id: number } | undefined)?.id !== bs.bot.id) throw bad(ERR.cantEdit);
    return { chat, msg };
  }
  const sameMarkup = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  function applyEdit(msg: Message, changes: Record<string, unknown>, markup: unknown): Message {
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete msg[k];
      else msg[k] = v;
    }
    // An edit without reply_markup removes the inline keyboard, as on Telegram.
    if (markup === undefined) delete msg.reply_markup;
    else msg.reply_markup = markup;
    msg.edit_date = nowSec();
    return structuredClone(msg);
  }

  /** A forum topic the bot may act on (createForumTopic & co., research §1.2). */
  function forumOf(bs: BotState, p: Params): GroupState {
    const chatId = chatIdParam(p);
    if (chatId > 0) {
      readableChat(bs, chatId);
      throw bad(ERR.notAForum);
    }
    const g = writableChat(bs, chatId) as GroupState;
    if (!g.group.isForum) throw bad(ERR.notAForum);
    return g;
  }
  function topicOf(g: GroupState, p: Params): TopicState {
    const id = reqInt(p, 'message_thread_id');
    const t = g.topics.get(id);
    if (!t) throw bad(ERR.threadNotFound);
    if (t.deleted) throw bad(api.deletedTopicError === 'TOPIC_DELETED' ? ERR.topicDeleted : ERR.threadNotFound);
    return t;
  }
  function canManage(bs: BotState, g: GroupState, t: TopicState): void {
    const m = rightsOf(bs, g);
    if (t.createdBy === bs.bot.id) return; // "unless it is the creator of the topic"
    if (!isAdmin(m) || !m.rights.can_manage_topics) throw bad(ERR.noRightsManageTopic);
  }
  function topicService(bs: BotState | null, g: GroupState, t: TopicState, fields: Record<string, unknown>, from: Record<string, unknown>): Message {
    const root = g.messages.get(t.threadId);
    const m = store(g, { from, ...fields }, { threadId: t.threadId, isTopic: true, root }, undefined);
    toGroupBots(g, 'message', m, bs?.bot.id);
    return m;
  }

  function removeTopic(g: GroupState, t: TopicState): void {
    t.deleted = true;
    t.pinned = [];
    for (const [id, m] of g.messages) if (m.is_topic_message && m.message_thread_id === t.threadId) g.messages.delete(id);
  }

  const methods: Record<string, Handler> = {
    getMe: (bs) => ({ ...botUserJson(bs.bot), can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false, can_connect_to_business: false, has_main_web_app: false }),
    logOut: () => true,
    close: () => true,
    setMyCommands: () => true,
    deleteMyCommands: () => true,
    getMyCommands: () => [],
    setMyDescription: () => true,
    setMyShortDescription: () => true,
    setChatMenuButton: () => true,
    getForumTopicIconStickers: () => [],

    // Webhooks (research §2.3, §6.1)
    setWebhook: (bs, p) => {
      const url = str(p, 'url') ?? '';
      const secret = str(p, 'secret_token');
      if (secret !== undefined && secret !== '' && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) throw bad(ERR.secretInvalid);
      if (bool(p, 'drop_pending_updates')) bs.pending = [];
      const allowed = json(p, 'allowed_updates');
      if (Array.isArray(allowed)) bs.allowed = allowed;
      if (url === '') {
        bs.webhook = null;
        return withDescription(true, 'Webhook was deleted');
      }
      if (!/^https?:\/\//.test(url)) throw bad(ERR.badWebhookUrl);
      bs.webhook = { url, secret: secret || undefined, maxConnections: int(p, 'max_connections') ?? 40 };
      if (bs.poller) {
        const old = bs.poller;
        bs.poller = null;
        old.respond(409, { ok: false, error_code: 409, description: ERR.webhookActive });
      }
      pumpWebhook(bs);
      return withDescription(true, 'Webhook was set');
    },
    deleteWebhook: (bs, p) => {
      if (bool(p, 'drop_pending_updates')) bs.pending = [];
      const had = bs.webhook !== null;
      bs.webhook = null;
      return withDescription(true, had ? 'Webhook was deleted' : 'Webhook is already deleted');
    },
    getWebhookInfo: (bs) => ({
      url: bs.webhook?.url ?? '',
      has_custom_certificate: false,
      pending_update_count: bs.pending.length,
      ...(bs.webhook ? { max_connections: bs.webhook.maxConnections, ip_address: '127.0.0.1' } : {}),
      ...(bs.webhook?.lastErrorDate ? { last_error_date: bs.webhook.lastErrorDate, last_error_message: bs.webhook.lastErrorMessage } : {}),
      ...(bs.allowed && bs.allowed.length ? { allowed_updates: bs.allowed } : {}),
    }),

    // Sending (research §1.3)
    sendMessage: (bs, p) => {
      const text = textParam(p, 'text');
      const entities = json(p, 'entities');
      return send(bs, p, { text, ...(entities ? { entities } : {}) });
    },
    sendPhoto: (bs, p) => send(bs, p, { photo: [{ ...fileParam(p, 'photo', 'photo'), width: 800, height: 800, file_size: 64000 }], ...captionFields(p) }),
    sendDocument: (bs, p) => {
      const v = p.document as { filename?: string } | string | undefined;
      const name = typeof v === 'object' && v?.filename ? v.filename : 'file.dat';
      return send(bs, p, { document: { ...fileParam(p, 'document', 'doc'), file_name: name, mime_type: 'application/octet-stream', file_size: 2048 }, ...captionFields(p) });
    },
    sendVoice: (bs, p) => send(bs, p, { voice: { ...fileParam(p, 'voice', 'voice'), duration: 3, mime_type: 'audio/ogg' }, ...captionFields(p) }),
    sendVideo: (bs, p) => send(bs, p, { video: { ...fileParam(p, 'video', 'video'), width: 640, height: 360, duration: 5 }, ...captionFields(p) }),
    sendSticker: (bs, p) => send(bs, p, { sticker: { ...fileParam(p, 'sticker', 'sticker'), type: 'regular', width: 512, height: 512, is_animated: false, is_video: false } }),
    sendChatAction: (bs, p) => {
      const chat = writableChat(bs, chatIdParam(p));
      placement(chat, int(p, 'message_thread_id'), undefined);
      return true;
    },
    copyMessage: (bs, p) => ({ message_id: copyOrForward(bs, p, [reqInt(p, 'message_id')], 'copy', false)[0].message_id }),
    copyMessages: (bs, p) => copyOrForward(bs, p, idsParam(p), 'copy', true).map((m) => ({ message_id: m.message_id })),
    forwardMessage: (bs, p) => copyOrForward(bs, p, [reqInt(p, 'message_id')], 'forward', false)[0],
    forwardMessages: (bs, p) => copyOrForward(bs, p, idsParam(p), 'forward', true).map((m) => ({ message_id: m.message_id })),

    // Editing (research §1.6, §4.3)
    editMessageText: (bs, p) => {
      const { msg } = editable(bs, p);
      const text = textParam(p, 'text');
      if (msg.text === undefined) throw bad(ERR.noTextToEdit);
      const markup = json(p, 'reply_markup');
      if (msg.text === text && sameMarkup(msg.reply_markup, markup)) throw bad(ERR.notModified);
      return applyEdit(msg, { text, entities: json(p, 'entities') }, markup);
    },
    editMessageCaption: (bs, p) => {
      const { msg } = editable(bs, p);
      if (!hasMedia(msg)) throw bad(ERR.noCaptionToEdit);
      const caption = (captionFields(p).caption as string | undefined) ?? undefined;
      const markup = json(p, 'reply_markup');
      if (msg.caption === caption && sameMarkup(msg.reply_markup, markup)) throw bad(ERR.notModified);
      return applyEdit(msg, { caption, caption_entities: undefined }, markup);
    },
    editMessageReplyMarkup: (bs, p) => {
      const { msg } = editable(bs, p);
      const markup = json(p, 'reply_markup');
      if (sameMarkup(msg.reply_markup, markup)) throw bad(ERR.notModified);
      return applyEdit(msg, {}, markup);
    },
    deleteMessage: (bs, p) => {
      const chat = readableChat(bs, chatIdParam(p));
      const id = reqInt(p, 'message_id');
      const msg = chat.messages.get(id);
      if (!msg) throw bad(ERR.deleteNotFound);
      if (chat.kind === 'group') {
        const mine = (msg.from as { id: number } | undefined)?.id === bs.bot.id;
        const m = rightsOf(bs, chat as GroupState);
        if (!mine && !(isAdmin(m) && m.rights.can_delete_messages)) throw bad(ERR.cantDelete);
        if (msg.forum_topic_created) throw bad(ERR.cantDelete);
      }
      chat.messages.delete(id);
      return true;
    },

    // Forum topics (research §1.2, §1.6)
    createForumTopic: (bs, p) => {
      const g = forumOf(bs, p);
      const m = rightsOf(bs, g);
      if (!isAdmin(m) || !m.rights.can_manage_topics) throw bad(ERR.noRightsCreateTopic);
      const name = str(p, 'name') ?? '';
      if (name.trim() === '') throw bad(ERR.topicNameEmpty);
      if ([...name].length > 128) throw bad(ERR.topicNameTooLong);
      const color = int(p, 'icon_color') ?? TOPIC_ICON_COLORS[0];
      if (!(TOPIC_ICON_COLORS as readonly number[]).includes(color)) throw bad(ERR.iconColorInvalid);
      const emoji = str(p, 'icon_custom_emoji_id') || undefined;
      // It posts a service message: counts toward the group's budget (not the per-second chat one).
      checkLimits(bs, g, 1, { perChat: false });
      const threadId = g.seq + 1; // topic id == id of its forum_topic_created message
      const t: TopicState = { threadId, name, iconColor: color, iconCustomEmojiId: emoji, closed: false, deleted: false, pinned: [], createdBy: bs.bot.id };
      g.topics.set(threadId, t);
      const created = store(g, { from: botUserJson(bs.bot), forum_topic_created: { name, icon_color: color, ...(emoji ? { icon_custom_emoji_id: emoji } : {}) } }, { threadId, isTopic: true }, undefined);
      toGroupBots(g, 'message', created, bs.bot.id);
      return { message_thread_id: threadId, name, icon_color: color, ...(emoji ? { icon_custom_emoji_id: emoji } : {}) };
    },
    editForumTopic: (bs, p) => {
      const g = forumOf(bs, p);
      const t = topicOf(g, p);
      canManage(bs, g, t);
      const name = str(p, 'name');
      const emoji = str(p, 'icon_custom_emoji_id');
      if (name !== undefined && [...name].length > 128) throw bad(ERR.topicNameTooLong);
      const newName = name === undefined || name === '' ? t.name : name;
      const newEmoji = emoji === undefined ? t.iconCustomEmojiId : emoji || undefined;
      if (newName === t.name && newEmoji === t.iconCustomEmojiId) throw bad(ERR.topicNotModified);
      const edited: Record<string, unknown> = {};
      if (newName !== t.name) edited.name = newName;
      if (newEmoji !== t.iconCustomEmojiId) edited.icon_custom_emoji_id = newEmoji ?? '';
      t.name = newName;
      t.iconCustomEmojiId = newEmoji;
      topicService(bs, g, t, { forum_topic_edited: edited }, botUserJson(bs.bot));
      return true;
    },
    closeForumTopic: (bs, p) => {
      const g = forumOf(bs, p);
      const t = topicOf(g, p);
      canManage(bs, g, t);
      if (t.closed) throw bad(ERR.topicNotModified);
      t.closed = true;
      topicService(bs, g, t, { forum_topic_closed: {} }, botUserJson(bs.bot));
      return true;
    },
    reopenForumTopic: (bs, p) => {
      const g = forumOf(bs, p);
      const t = topicOf(g, p);
      canManage(bs, g, t);
      if (!t.closed) throw bad(ERR.topicNotModified);
      t.closed = false;
      topicService(bs, g, t, { forum_topic_reopened: {} }, botUserJson(bs.bot));
      return true;
    },
    deleteForumTopic: (bs, p) => {
      const g = forumOf(bs, p);
      const t = topicOf(g, p);
      const m = rightsOf(bs, g);
      if (!isAdmin(m) || !m.rights.can_delete_messages) throw bad(ERR.noRightsDeleteTopic);
      removeTopic(g, t); // no service message, no update (research §1.4)
      return true;
    },
    unpinAllForumTopicMessages: (bs, p) => {
      const g = forumOf(bs, p);
      const t = topicOf(g, p);
      const m = rightsOf(bs, g);
      if (!isAdmin(m) || !m.rights.can_pin_messages) throw bad(ERR.noRightsPin);
      t.pinned = [];
      return true;
    },

    // Pins (research §1.7)
    pinChatMessage: (bs, p) => {
      const chat = readableChat(bs, chatIdParam(p));
      if (chat.kind === 'group') {
        const m = rightsOf(bs, chat as GroupState);
        if (!isAdmin(m) || !m.rights.can_pin_messages) throw bad(ERR.noRightsPin);
      }
      const id = reqInt(p, 'message_id');
      const msg = chat.messages.get(id);
      if (!msg) throw bad(ERR.pinNotFound);
      const list = pinList(chat, msg);
      if (!list.includes(id)) list.push(id);
      // The "pinned a message" service message, in the same topic; bots do get it (even the pinner).
      const where = msg.is_topic_message ? { threadId: msg.message_thread_id as number, isTopic: true, root: chat.messages.get(msg.message_thread_id) } : { isTopic: false };
      const svc = store(chat, { from: botUserJson(bs.bot), pinned_message: shallow(msg) }, where, undefined);
      if (chat.kind === 'group') toGroupBots(chat as GroupState, 'message', svc);
      return true;
    },
    unpinChatMessage: (bs, p) => {
      const chat = readableChat(bs, chatIdParam(p));
      if (chat.kind === 'group') {
        const m = rightsOf(bs, chat as GroupState);
        if (!isAdmin(m) || !m.rights.can_pin_messages) throw bad(ERR.noRightsPin);
      }
      const id = int(p, 'message_id');
      const all = [chat.pinned, ...(chat.kind === 'group' ? [...(chat as GroupState).topics.values()].map((t) => t.pinned) : [])];
      if (id === undefined) {
        // The most recent pin of the chat.
        let best: { list: number[]; id: number } | undefined;
        for (const list of all) for (const x of list) if (!best || x > best.id) best = { list, id: x };
        if (best) best.list.splice(best.list.indexOf(best.id), 1);
        return true;
      }
      const list = all.find((l) => l.includes(id));
      if (!list) {
        if (!chat.messages.has(id)) throw bad(ERR.unpinNotFound);
        return true;
      }
      list.splice(list.indexOf(id), 1);
      return true;
    },

    // Callback queries (research §4.5)
    answerCallbackQuery: (bs, p) => {
      const id = str(p, 'callback_query_id') ?? '';
      const q = callbackQueries.get(id);
      if (!q || q.botId !== bs.bot.id || q.answered) throw bad(ERR.queryInvalid);
      q.answered = true;
      callbackAnswers.set(id, { text: str(p, 'text'), show_alert: bool(p, 'show_alert') || undefined, url: str(p, 'url') });
      return true;
    },
    setMessageReaction: (bs, p) => {
      const chat = readableChat(bs, chatIdParam(p));
      if (!chat.messages.has(reqInt(p, 'message_id'))) throw bad('Bad Request: message to react not found');
      return true;
    },

    // Getters (research §1.7)
    getChat: (bs, p) => {
      const chat = readableChat(bs, chatIdParam(p));
      const base = chatJson(chat);
      if (chat.kind === 'group') {
        return { ...base, accent_color_id: 0, max_reaction_count: 11, permissions: { can_send_messages: true, can_manage_topics: false, can_pin_messages: false } };
      }
      return { ...base, accent_color_id: 0, max_reaction_count: 11 };
    },
    getChatMember: (bs, p) => {
      const chat = readableChat(bs, chatIdParam(p));
      const userId = reqInt(p, 'user_id');
      const botTarget = botsById.get(userId);
      const person = botTarget ? botUserJson(botTarget.bot) : users.has(userId) ? userJson(users.get(userId)!) : undefined;
      if (!person) throw bad(ERR.userNotFound);
      if (chat.kind === 'private') return { status: 'member', user: person };
      const g = chat as GroupState;
      const m = botTarget ? g.bots.get(userId) : g.members.get(userId);
      if (!m || m.status === 'left') return { status: 'left', user: person };
      if (m.status === 'kicked') return { status: 'kicked', user: person, until_date: 0 };
      if (m.status === 'member') return { status: 'member', user: person };
      if (m.status === 'creator') return { status: 'creator', user: person, is_anonymous: false };
      return {
        status: 'administrator',
        user: person,
        can_be_edited: false,
        is_anonymous: false,
        can_manage_chat: true,
        can_delete_messages: m.rights.can_delete_messages,
        can_manage_video_chats: false,
        can_restrict_members: false,
        can_promote_members: false,
        can_change_info: false,
        can_invite_users: true,
        can_post_stories: false,
        can_edit_stories: false,
        can_delete_stories: false,
        can_pin_messages: m.rights.can_pin_messages,
        can_manage_topics: m.rights.can_manage_topics,
      };
    },
  };

  function pinList(chat: ChatState, msg: Message): number[] {
    if (chat.kind === 'group' && msg.is_topic_message) {
      const t = (chat as GroupState).topics.get(msg.message_thread_id);
      if (t) return t.pinned;
    }
    return chat.pinned;
  }

  function idsParam(p: Params): number[] {
    const v = json(p, 'message_ids');
    if (!Array.isArray(v)) throw bad(ERR.idsEmpty);
    return v.map(Number);
  }

  const DESCRIPTION = Symbol('description');
  function withDescription(result: unknown, description: string): unknown {
    return { [DESCRIPTION]: description, result };
  }

  // ---------- getUpdates (long polling, research §2.3)

  function getUpdates(bs: BotState, p: Params, respond: (status: number, body: unknown) => void): void {
    if (bs.webhook) return respond(409, { ok: false, error_code: 409, description: ERR.webhookActive });
    const offset = int(p, 'offset');
    if (offset !== undefined) {
      if (offset < 0) bs.pending = bs.pending.slice(offset);
      else bs.pending = bs.pending.filter((u) => u.update_id >= offset); // offset confirms older ones
    }
    const allowed = json(p, 'allowed_updates');
    if (Array.isArray(allowed)) bs.allowed = allowed;
    const limit = Math.min(100, Math.max(1, int(p, 'limit') ?? 100));
    const timeout = Math.max(0, int(p, 'timeout') ?? 0);
    if (bs.poller) {
      const old = bs.poller;
      bs.poller = null;
      old.respond(409, { ok: false, error_code: 409, description: ERR.terminatedByOther });
    }
    if (bs.pending.length > 0 || timeout === 0) return respond(200, { ok: true, result: takeUpdates(bs, limit) });
    let timer: NodeJS.Timeout | undefined;
    const poller: Poller = {
      respond: (status, body) => {
        clearTimeout(timer);
        if (status === 200) body = { ok: true, result: takeUpdates(bs, limit) };
        respond(status, body);
      },
    };
    bs.poller = poller;
    timer = setTimeout(() => {
      if (bs.poller === poller) bs.poller = null;
      respond(200, { ok: true, result: [] });
    }, timeout * 1000);
  }

  // ---------- dispatch

  function matchFail(method: string, p: Params): FaultError | undefined {
    const cid = p.chat_id !== undefined ? Number(p.chat_id) : undefined;
    const i = failRules.findIndex((r) => (r.method === undefined || r.method === method) && (r.chatId === undefined || r.chatId === cid));
    if (i < 0) return undefined;
    const r = failRules[i];
    if (--r.times <= 0) failRules.splice(i, 1);
    return r.error;
  }

  interface Answer { status: number; body: unknown; raw?: string; statusText?: string }

  /**
   * The `faults` draw for one call (or webhook push, method 'webhook'): undefined, or the
   * fault with its answer. Keyed, so the same call gets the same fault in a rerun.
   */
  function drawFault(method: string, key: string): { kind: '429' | '5xx'; applied: boolean; answer: Answer } | undefined {
    const f = faults;
    if (!f || closed) return undefined;
    const lower = method.toLowerCase();
    if (method !== 'webhook' && f.methods && !f.methods.some((m) => m.toLowerCase() === lower)) return undefined;
    if (method !== 'webhook' && f.exceptMethods?.some((m) => m.toLowerCase() === lower)) return undefined;
    if (f.max !== undefined && injectedFaults.length >= f.max) return undefined;
    const k = `${method}|${key}`;
    const n = faultDraws.get(k) ?? 0;
    faultDraws.set(k, n + 1);
    const rnd = prng(hash32(`${f.seed}|${k}|${n}`));
    if (rnd() >= f.rate) return undefined;
    const kinds = f.kinds?.length ? f.kinds : (['429', '5xx'] as const);
    const kind = kinds[Math.floor(rnd() * kinds.length)];
    if (kind === '429') {
      const after = f.retryAfter ?? 1;
      return {
        kind,
        applied: false,
        answer: { status: 429, body: { ok: false, error_code: 429, description: `Too Many Requests: retry after ${after}`, parameters: { retry_after: after } } },
      };
    }
    const effect = f.effect ?? 'mixed';
    const applied = effect === 'after' || (effect === 'mixed' && rnd() < 0.5);
    const shape = SERVER_ERROR_ANSWERS[Math.floor(rnd() * SERVER_ERROR_ANSWERS.length)];
    const answer: Answer = 'raw' in shape ? { status: shape.status, body: undefined, raw: shape.raw, statusText: shape.statusText } : { status: shape.status, body: structuredClone(shape.body) };
    return { kind, applied, answer };
  }

  function handleCall(token: string, method: string, params: Params): Promise<Answer> {
    const call: Call = { method, token, params, at: Date.now(), status: 0, response: undefined };
    calls.push(call);
    return new Promise<Answer>((resolve) => {
      const finish = (a: Answer): void => {
        const delay = slowRules.find((r) => r.method === undefined || r.method === method)?.ms ?? 0;
        // slow(): the call has taken effect; only the answer is late (so the Call is filled in then).
        const done = (): void => {
          call.status = a.status;
          call.response = a.raw ?? a.body;
          if (a.status === 429) rateLimited.push(call);
          resolve(a);
          notify();
        };
        if (delay > 0 && method !== 'getUpdates') setTimeout(done, delay);
        else done();
      };
      const fail = (e: ApiError): void =>
        finish({
          status: e.code,
          body: { ok: false, error_code: e.code, description: e.description, ...(e.retryAfter !== undefined ? { parameters: { retry_after: e.retryAfter } } : {}) },
        });
      const bs = botsByToken.get(token);
      if (!bs) return fail(new ApiError(401, ERR.unauthorized));
      const handler = methods[method] ?? Object.entries(methods).find(([k]) => k.toLowerCase() === method.toLowerCase())?.[1];
      const isGetUpdates = method.toLowerCase() === 'getupdates';
      if (!handler && !isGetUpdates) return fail(new ApiError(404, ERR.notFound));
      const injected = matchFail(method, params);
      if (injected) {
        if (injected.code >= 500) {
          // Like a proxy in front of Telegram: that status, a non-JSON body.
          return finish({ status: injected.code, body: undefined, raw: `<html><body><h1>${injected.code} ${injected.description}</h1></body></html>`, statusText: injected.description });
        }
        return fail(new ApiError(injected.code, injected.description, injected.retryAfter));
      }
      const fault = drawFault(isGetUpdates ? 'getUpdates' : method, JSON.stringify(params));
      if (fault) {
        let applied = false;
        if (fault.applied) {
          // The call is carried out (and the effect stays), only its answer is lost to the 5xx.
          try {
            if (isGetUpdates) getUpdates(bs, { ...params, timeout: 0 }, () => undefined);
            else handler!(bs, params);
            applied = true;
          } catch {
            // It failed anyway (a 400…): nothing took effect, and the 5xx hides that too.
          }
        }
        call.fault = { kind: fault.kind, applied };
        injectedFaults.push({ method, kind: fault.kind, status: fault.answer.status, applied, call });
        return finish(fault.answer);
      }
      try {
        if (isGetUpdates) return getUpdates(bs, params, (status, body) => finish({ status, body }));
        const result = handler!(bs, params);
        if (result && typeof result === 'object' && DESCRIPTION in result) {
          const r = result as { [DESCRIPTION]: string; result: unknown };
          return finish({ status: 200, body: { ok: true, result: r.result, description: r[DESCRIPTION] } });
        }
        finish({ status: 200, body: { ok: true, result } });
      } catch (e) {
        if (e instanceof ApiError) return fail(e);
        finish({ status: 500, body: { ok: false, error_code: 500, description: `Internal Server Error: ${(e as Error).message}` } });
      }
    });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
        const write = (a: Answer): void => {
          if (res.writableEnded || res.destroyed) return;
          if (a.raw !== undefined) {
            res.statusCode = a.status;
            if (a.statusText) res.statusMessage = a.statusText.replace(/[^\t\x20-\x7e]/g, '?');
            res.setHeader('content-type', 'text/html');
            res.end(a.raw);
            return;
          }
          res.writeHead(a.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(a.body));
        };
        if (!m) return write({ status: 404, body: { ok: false, error_code: 404, description: ERR.notFound } });
        let params: Params = Object.fromEntries(url.searchParams);
        const body = Buffer.concat(chunks);
        const type = String(req.headers['content-type'] ?? '');
        try {
          if (body.length > 0) {
            if (type.includes('application/json')) params = { ...params, ...(JSON.parse(body.toString('utf8')) as Params) };
            else if (type.includes('application/x-www-form-urlencoded')) params = { ...params, ...Object.fromEntries(new URLSearchParams(body.toString('utf8'))) };
            else if (type.includes('multipart/form-data')) {
              const boundary = /boundary=("?)([^";]+)\1/.exec(type)?.[2];
              if (boundary) params = { ...params, ...parseMultipart(body, boundary) };
            }
          }
        } catch {
          return write({ status: 400, body: { ok: false, error_code: 400, description: "Bad Request: can't parse JSON object" } });
        }
        write(await handleCall(decodeURIComponent(m[1]), m[2], params));
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  // ---------- the test-side API

  function requireStarted(bot: FakeBot, user: FakeUser): PrivateState {
    botOf(bot);
    const c = privateOf(bot.id, user.id, true)!;
    if (c.blocked) throw new Error(`fake-bot-api: user ${user.id} has blocked bot ${bot.id} (call userUnblocks first)`);
    c.started = true;
    return c;
  }
  function memberOf(g: GroupState, user: FakeUser): void {
    const m = g.members.get(user.id);
    if (!m || m.status === 'left' || m.status === 'kicked') throw new Error(`fake-bot-api: user ${user.id} is not a member of ${g.id}`);
  }
  function chatMemberUpdate(bs: BotState, c: PrivateState, user: FakeUser, from: string, to: string): void {
    const me = botUserJson(bs.bot);
    produce(
      bs,
      {
        my_chat_member: {
          chat: chatJson(c),
          from: userJson(user),
          date: nowSec(),
          old_chat_member: { user: me, status: from, ...(from === 'kicked' ? { until_date: 0 } : {}) },
          new_chat_member: { user: me, status: to, ...(to === 'kicked' ? { until_date: 0 } : {}) },
        },
      },
      `chat:${c.id}`,
    );
  }
  const topicView = (g: GroupState, t: TopicState): FakeTopic => ({
    threadId: t.threadId,
    name: t.name,
    iconColor: t.iconColor,
    ...(t.iconCustomEmojiId ? { iconCustomEmojiId: t.iconCustomEmojiId } : {}),
    closed: t.closed,
    deleted: t.deleted,
    pinned: [...t.pinned],
    messages: api.messagesIn(g.id, { threadId: t.threadId }),
    createdBy: t.createdBy,
  });

  const api: FakeBotApi = {
    url: `http://127.0.0.1:${port}`,
    calls,
    rateLimited,
    callbackAnswers,
    deletedTopicError: 'message thread not found',

    async close() {
      closed = true;
      for (const bs of botsById.values()) {
        bs.poller?.respond(200, { ok: true, result: [] });
        bs.poller = null;
        for (const t of bs.retryTimers) clearTimeout(t);
      }
      for (const ac of aborts) ac.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
    },

    addBot(o = {}) {
      const id = o.id ?? nextId++ * 1000 + 7;
      const username = o.username ?? `fake${id}_bot`;
      const bot: FakeBot = { id, username, firstName: o.firstName ?? 'Fake Bot', token: `${id}:AAfake${Math.random().toString(36).slice(2, 12)}${id}` };
      const bs: BotState = { bot, nextUpdateId: 1, produced: [], pending: [], queueKey: new Map(), allowed: null, webhook: null, inFlight: new Set(), retryTimers: new Set(), poller: null, sentTimes: [] };
      botsByToken.set(bot.token, bs);
      botsById.set(id, bs);
      return bot;
    },
    addUser(o = {}) {
      const id = o.id ?? nextId++ * 1000 + 1;
      const u: FakeUser = { id, firstName: o.firstName ?? `User${id}`, isBot: o.isBot ?? false, ...(o.lastName ? { lastName: o.lastName } : {}), ...(o.username ? { username: o.username } : {}) };
      users.set(id, u);
      return u;
    },
    addGroup(o = {}) {
      const id = o.id ?? -(1_000_000_000_000 + nextId++);
      if (id >= 0) throw new Error('fake-bot-api: group ids are negative (-100…)');
      const group: FakeGroup = { id, title: o.title ?? `Group ${-id}`, isForum: o.isForum ?? true };
      groups.set(id, { id, kind: 'group', group, seq: 1, messages: new Map(), pinned: [], sentTimes: new Map(), bots: new Map(), members: new Map(), topics: new Map(), kickedBots: new Set() });
      return group;
    },
    addBotToGroup(bot, group, o = {}) {
      const g = groupOf(group.id);
      botOf(bot);
      const status = o.status ?? 'administrator';
      const rights: ChatRights = status === 'administrator' ? { can_manage_topics: true, can_pin_messages: true, can_delete_messages: true, ...(o.rights ?? {}) } : { can_manage_topics: false, can_pin_messages: false, can_delete_messages: false };
      g.bots.set(bot.id, { status, rights });
      g.kickedBots.delete(bot.id);
    },
    removeBotFromGroup(bot, group) {
      const g = groupOf(group.id);
      g.bots.delete(bot.id);
      g.kickedBots.add(bot.id);
    },
    addMember(group, user, o = {}) {
      const status = o.status ?? 'member';
      const all = status !== 'member';
      groupOf(group.id).members.set(user.id, { status, rights: { can_manage_topics: all, can_pin_messages: all, can_delete_messages: all } });
    },

    userSends(bot, user, content, o = {}) {
      const c = requireStarted(bot, user);
      const replyTo = o.replyTo !== undefined ? c.messages.get(o.replyTo) : undefined;
      if (o.replyTo !== undefined && !replyTo) throw new Error(`fake-bot-api: no message ${o.replyTo} in that chat`);
      const m = store(c, { from: userJson(user), ...contentFields(content), ...(o.mediaGroupId ? { media_group_id: o.mediaGroupId } : {}) }, { isTopic: false }, replyTo);
      produce(botOf(bot), { message: m }, `chat:${c.id}`);
      return structuredClone(m);
    },
    userEdits(bot, user, messageId, content) {
      const c = requireStarted(bot, user);
      const m = c.messages.get(messageId);
      if (!m || m.from?.id !== user.id) throw new Error(`fake-bot-api: user ${user.id} has no message ${messageId} there`);
      Object.assign(m, contentFields(content, m), { edit_date: nowSec() });
      produce(botOf(bot), { edited_message: m }, `chat:${c.id}`);
      return structuredClone(m);
    },
    userPresses(bot, user, message, data) {
      const bs = botOf(bot);
      const chat = message.chatId < 0 ? groupOf(message.chatId) : privateOf(bot.id, message.chatId);
      const m = chat?.messages.get(message.messageId);
      if (!chat || !m) throw new Error(`fake-bot-api: no message ${message.messageId} in chat ${message.chatId}`);
      const id = `${bot.id}${Date.now()}${nextId++}`;
      callbackQueries.set(id, { botId: bot.id, answered: false });
      produce(bs, { callback_query: { id, from: userJson(user), message: structuredClone(m), chat_instance: `${chat.id}${bot.id}`.replace('-', '9'), data } }, `cb:${user.id}`);
      return id;
    },
    userBlocks(bot, user) {
      const c = requireStarted(bot, user);
      c.blocked = true;
      chatMemberUpdate(botOf(bot), c, user, 'member', 'kicked');
    },
    userUnblocks(bot, user) {
      const c = privateOf(bot.id, user.id, true)!;
      if (!c.blocked) return;
      c.blocked = false;
      c.started = true;
      chatMemberUpdate(botOf(bot), c, user, 'kicked', 'member');
    },
    userReacts(bot, user, messageId, emoji) {
      const c = requireStarted(bot, user);
      if (!c.messages.has(messageId)) throw new Error(`fake-bot-api: no message ${messageId} there`);
      produce(
        botOf(bot),
        { message_reaction: { chat: chatJson(c), message_id: messageId, user: userJson(user), date: nowSec(), old_reaction: [], new_reaction: [{ type: 'emoji', emoji }] } },
        `chat:${c.id}`,
      );
    },
    memberSends(group, user, content, o = {}) {
      const g = groupOf(group.id);
      memberOf(g, user);
      const replyTo = o.replyTo !== undefined ? g.messages.get(o.replyTo) : undefined;
      if (o.replyTo !== undefined && !replyTo) throw new Error(`fake-bot-api: no message ${o.replyTo} in ${g.id}`);
      let where: { threadId?: number; isTopic: boolean; root?: Message };
      if (o.threadId === undefined || o.threadId === null) {
        // General: a reply carries message_thread_id = reply root, but no is_topic_message (research §1.4 trap).
        where = replyTo && !replyTo.is_topic_message ? { threadId: replyTo.message_thread_id ?? replyTo.message_id, isTopic: false } : { isTopic: false };
      } else {
        const t = g.topics.get(o.threadId);
        if (!t || t.deleted) throw new Error(`fake-bot-api: no topic ${o.threadId} in ${g.id}`);
        if (t.closed && !isAdmin(g.members.get(user.id))) throw new Error(`fake-bot-api: topic ${o.threadId} is closed`);
        where = { threadId: t.threadId, isTopic: true, root: g.messages.get(t.threadId) };
      }
      const m = store(g, { from: userJson(user), ...contentFields(content), ...(o.mediaGroupId ? { media_group_id: o.mediaGroupId } : {}) }, where, replyTo);
      toGroupBots(g, 'message', m);
      return structuredClone(m);
    },
    memberEdits(group, user, messageId, content) {
      const g = groupOf(group.id);
      const m = g.messages.get(messageId);
      if (!m || m.from?.id !== user.id) throw new Error(`fake-bot-api: user ${user.id} has no message ${messageId} in ${g.id}`);
      Object.assign(m, contentFields(content, m), { edit_date: nowSec() });
      toGroupBots(g, 'edited_message', m);
      return structuredClone(m);
    },
    deleteTopicByHand(group, threadId) {
      const g = groupOf(group.id);
      const t = g.topics.get(threadId);
      if (!t) throw new Error(`fake-bot-api: no topic ${threadId}`);
      removeTopic(g, t); // Telegram sends no update for this
    },
    closeTopicByHand(group, threadId, by) {
      const g = groupOf(group.id);
      const t = g.topics.get(threadId);
      if (!t || t.deleted) throw new Error(`fake-bot-api: no topic ${threadId}`);
      if (t.closed) return;
      t.closed = true;
      topicService(null, g, t, { forum_topic_closed: {} }, userJson(by));
    },
    reopenTopicByHand(group, threadId, by) {
      const g = groupOf(group.id);
      const t = g.topics.get(threadId);
      if (!t || t.deleted) throw new Error(`fake-bot-api: no topic ${threadId}`);
      if (!t.closed) return;
      t.closed = false;
      topicService(null, g, t, { forum_topic_reopened: {} }, userJson(by));
    },

    callsTo(method) {
      return calls.filter((c) => c.method === method);
    },
    messagesIn(chatId, o = {}) {
      let chats: ChatState[];
      if (chatId < 0) chats = groups.has(chatId) ? [groupOf(chatId)] : [];
      else chats = [...privates.values()].filter((c) => c.userId === chatId && (o.botId === undefined || c.botId === o.botId));
      const out: Message[] = [];
      for (const c of chats) {
        for (const m of [...c.messages.values()].sort((a, b) => a.message_id - b.message_id)) {
          if (o.threadId === null && m.is_topic_message) continue;
          if (typeof o.threadId === 'number' && !(m.is_topic_message && m.message_thread_id === o.threadId)) continue;
          out.push(structuredClone(m));
        }
      }
      return out;
    },
    message(chatId, messageId, o = {}) {
      const chat = chatId < 0 ? groups.get(chatId) : [...privates.values()].find((c) => c.userId === chatId && (o.botId === undefined || c.botId === o.botId));
      const m = chat?.messages.get(messageId);
      return m ? structuredClone(m) : undefined;
    },
    topic(groupId, threadId) {
      const g = groups.get(groupId);
      const t = g?.topics.get(threadId);
      return g && t ? topicView(g, t) : undefined;
    },
    topics(groupId) {
      const g = groups.get(groupId);
      return g ? [...g.topics.values()].map((t) => topicView(g, t)) : [];
    },
    updatesFor(bot) {
      return structuredClone(botOf(bot).produced);
    },
    pendingUpdatesFor(bot) {
      return structuredClone(botOf(bot).pending);
    },
    waitForUpdates(bot, n, timeoutMs = 5000) {
      return waitFor(() => (botOf(bot).produced.length >= n ? api.updatesFor(bot) : undefined), timeoutMs, `${n} updates for bot ${bot.id}`);
    },
    waitForCalls(method, n, timeoutMs = 5000) {
      return waitFor(
        () => {
          const answered = calls.filter((c) => c.method === method && c.status !== 0);
          return answered.length >= n ? answered : undefined;
        },
        timeoutMs,
        `${n} answered ${method} calls`,
      );
    },

    failNext(match, error) {
      failRules.push({ method: match.method, chatId: match.chatId, times: match.times ?? 1, error });
    },
    setFaults(f) {
      if (f && !(f.rate >= 0 && f.rate <= 1)) throw new Error(`fake-bot-api: faults.rate must be within 0-1, got ${f.rate}`);
      faults = f ? { ...f } : null;
    },
    injectedFaults,
    slow(match, ms) {
      const i = slowRules.findIndex((r) => r.method === match.method);
      if (i >= 0) slowRules.splice(i, 1);
      if (ms > 0) slowRules.unshift({ method: match.method, ms });
    },
    setLimits(l) {
      limits = l === false ? false : { ...(limits || DEFAULT_LIMITS), ...l };
    },
  };

  function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const first = check();
      if (first !== undefined) return resolve(first);
      const w = (): void => {
        const v = check();
        if (v === undefined) return;
        clearTimeout(timer);
        waiters.delete(w);
        resolve(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`fake-bot-api: timed out waiting for ${what}`));
      }, timeoutMs);
      waiters.add(w);
    });
  }

  if (opts.faults) api.setFaults(opts.faults);
  return api;
}
