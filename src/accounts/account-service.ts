/**
 * The bots of a workspace (SPEC §2, §4.2 /v1/accounts): connect one with its token (checked
 * with Telegram's getMe), rename it, give it a new token of the same bot, set its support
 * group, make it the default, remove it.
 *
 * - A sandbox workspace never calls Telegram (SPEC §3.3): the bot id is read from the token
 *   and the username stays unknown (null).
 * - One bot can be connected once (among accounts not removed, in any workspace): it can only
 *   be polled, or have its webhook, in one place.
 * - A workspace with bots always has exactly one default: its first bot becomes it, making
 *   another one the default moves it, removing the default hands it to the oldest bot left.
 * - Removing keeps the row (tickets and messages point at it), drops the token and cancels
 *   the Telegram calls still queued for the bot.
 *
 * Every change runs in the request's transaction; changes to a workspace's set of bots take a
 * per-workspace transaction lock, so two requests cannot both make a "first" default bot.
 * Telegram is asked before the lock is taken (getMe may take up to 5 s).
 */
import type { Config } from '../config.js';
import type { Logger } from '../lib/logger.js';
import { toContact, type Contact } from '../contacts/contact.js';
import { sendQueue } from '../send-queue/send-queue.js';
import { LOCK_NAMESPACES, lockKey } from '../db/advisory-lock.js';
import type { Db } from '../db/knex.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { PageRequest } from '../kernel/pagination.js';
import type { Clock } from '../lib/clock.js';
import type { CreateAccountBody, PatchAccountBody } from './account-schemas.js';
import { accountStore, type Account, type AccountRecord, type RunnableAccount } from './account-store.js';
import { botIdOf, verifyBotToken, type BotIdentity } from './bot-token.js';

/** lockKey namespace of the transaction lock that serialises changes to a workspace's bots. */
export const ACCOUNTS_LOCK = LOCK_NAMESPACES.accountsOfWorkspace;

/** Supergroup (and channel) chat ids are -100 followed by the chat's own id. */
const SUPERGROUP_MAX = -1_000_000_000_001;

/** The workspace a request acts in, as its API key found it. */
export interface WorkspaceRef {
  id: string;
  mode: 'live' | 'sandbox';
}

const invalid = (field: string, error: string, received?: unknown) =>
  new AppError('validation_error', `${field} ${error}`, { details: [{ field, error, ...(received !== undefined ? { received } : {}) }] });

const duplicateBot = () => new AppError('conflict', 'This bot is already connected');

function checkSupportChatId(id: number | null | undefined): void {
  if (id == null) return;
  if (id > SUPERGROUP_MAX || !Number.isSafeInteger(id)) {
    throw invalid('support_chat_id', 'must be the id of a supergroup (a negative number starting with -100)', id);
  }
}

/** The default bot stays the default until another one takes over (a workspace with bots always has one). */
function checkDefaultKept(body: PatchAccountBody, account: AccountRecord): void {
  if (body.is_default === false && account.isDefault) {
    throw invalid('is_default', 'cannot be unset on the default bot: make another bot the default instead', false);
  }
}

/** A unique index said no: another request connected the same bot meanwhile. */
function isDuplicateBot(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && e.constraint === 'accounts_bot_user';
}

export function createAccountService(deps: { clock: Clock; telegram: Pick<Config['telegram'], 'apiRoot'>; getMeTimeoutMs?: number }) {
  const { clock } = deps;

  /** Who the token's bot is: Telegram's answer (live), or only the id the token carries (sandbox). */
  async function identify(ws: WorkspaceRef, token: string): Promise<{ id: number; username: string | null }> {
    const idInToken = botIdOf(token);
    if (ws.mode !== 'live') return { id: idInToken, username: null };
    const me: BotIdentity = await verifyBotToken(token, deps.telegram.apiRoot, { timeoutMs: deps.getMeTimeoutMs });
    return { id: me.id, username: me.username ?? null };
  }

  const lockWorkspace = (db: Db, workspaceId: string) => db.raw('SELECT pg_advisory_xact_lock(?)', [lockKey(ACCOUNTS_LOCK, workspaceId)]);

  async function ensureNotConnected(db: Db, botUserId: number, exceptId?: string): Promise<void> {
    const other = await accountStore.findByBotUserId(db, botUserId);
    if (other && other.id !== exceptId) throw duplicateBot();
  }

  async function find(db: Db, workspaceId: string, id: string, opts: { lock?: boolean } = {}): Promise<AccountRecord> {
    const account = await accountStore.findRecord(db, workspaceId, id, opts);
    if (!account) throw notFound('Account');
    return account;
  }

  return {
    /** A bot of the workspace (not removed), or null. */
    findById: (db: Db, workspaceId: string, id: string): Promise<Account | null> => accountStore.findById(db, workspaceId, id),

    /** A contact and the bot a new ticket of theirs belongs to, in one round trip (ticket creation is a hot path). */
    async contactWithPreferredBot(db: Db, workspaceId: string, contactId: string): Promise<{ contact: Contact; account: Account | null } | null> {
      const found = await accountStore.contactWithPreferred(db, workspaceId, contactId);
      return found && { contact: toContact(found.contactRow), account: found.account };
    },

    /** The bot a new ticket of this contact belongs to: the one they last wrote to, else the default. */
    preferredFor: (db: Db, workspaceId: string, contactId: string): Promise<Account | null> => accountStore.preferredFor(db, workspaceId, contactId),

    /** The bot runtime's view: every bot to run (live workspaces, not removed, with a token). */
    listRunnable: (db: Db): Promise<RunnableAccount[]> => accountStore.listRunnable(db),

    /** One bot if it is runnable, else null (a removed bot's updates are dropped). */
    findRunnable: (db: Db, id: string): Promise<RunnableAccount | null> => accountStore.findRunnable(db, id),

    /** The token to call Telegram with; null for a removed bot. */
    tokenOf: (db: Db, id: string): Promise<string | null> => accountStore.tokenOf(db, id),

    /** What getMe said the bot's username is (it can change in @BotFather). */
    async rememberUsername(db: Db, id: string, username: string): Promise<void> {
      await accountStore.update(db, id, { bot_username: username });
    },

    /** Of the bots sharing a support group, the one that answers in General: the oldest connected. */
    async speakerOfGroup(db: Db, workspaceId: string, chatId: number): Promise<string | null> {
      return (await accountStore.oldestInGroup(db, workspaceId, chatId))?.id ?? null;
    },

    /** The bot that speaks for the workspace outside its groups (the digest): the default, else the oldest, with a token. */
    async speakerOfWorkspace(db: Db, workspaceId: string): Promise<string | null> {
      return (await accountStore.speakerOfWorkspace(db, workspaceId))?.id ?? null;
    },

    /**
     * TELEGRAM_BOT_TOKEN → the default workspace's bot. The bot id is the token's numeric part,
     * so this needs no call to Telegram (start-up must not depend on it being reachable).
     */
    async syncDefaultBot(db: Db, token: string, supportChatId: number | null, logger: Logger): Promise<void> {
      const botUserId = Number(token.split(':')[0]);
      const at = clock.now();
      await lockWorkspace(db, 'ws_default');
      const existing = await accountStore.findByBotUserId(db, botUserId);
      if (existing && existing.workspaceId !== 'ws_default') {
        logger.error({ account_id: existing.id }, `TELEGRAM_BOT_TOKEN is ignored: this bot is connected to workspace ${existing.workspaceId} through the API`);
        return;
      }
      if (existing) {
        await accountStore.update(db, existing.id, { bot_token: token, ...(supportChatId !== null ? { support_chat_id: supportChatId } : {}), updated_at: at });
        return;
      }
      const isDefault = !(await accountStore.hasDefault(db, 'ws_default'));
      await accountStore.insert(db, { workspaceId: 'ws_default', name: 'Default bot', botUserId, botToken: token, supportChatId, isDefault, at });
    },

    async create(db: Db, ws: WorkspaceRef, body: CreateAccountBody): Promise<AccountRecord> {
      checkSupportChatId(body.support_chat_id);
      const bot = await identify(ws, body.bot_token);
      await lockWorkspace(db, ws.id);
      await ensureNotConnected(db, bot.id);
      const now = clock.now();
      const isDefault = body.is_default === true || (await accountStore.countLive(db, ws.id)) === 0;
      if (isDefault) await accountStore.clearDefault(db, ws.id, now);
      try {
        return await accountStore.insert(db, {
          workspaceId: ws.id, name: body.name, botUserId: bot.id, botUsername: bot.username, botToken: body.bot_token,
          supportChatId: body.support_chat_id ?? null, isDefault, at: now,
        });
      } catch (err) {
        if (isDuplicateBot(err)) throw duplicateBot();
        throw err;
      }
    },

    list: (db: Db, workspaceId: string, page: PageRequest) => accountStore.list(db, workspaceId, page),

    get: (db: Db, workspaceId: string, id: string) => find(db, workspaceId, id),

    async update(db: Db, ws: WorkspaceRef, id: string, body: PatchAccountBody): Promise<AccountRecord> {
      checkSupportChatId(body.support_chat_id);
      if (body.bot_token !== undefined) botIdOf(body.bot_token);
      // Unknown (or another workspace's) account: 404 before anything is asked of Telegram.
      checkDefaultKept(body, await find(db, ws.id, id));
      const bot = body.bot_token !== undefined ? await identify(ws, body.bot_token) : null;
      await lockWorkspace(db, ws.id);
      const account = await find(db, ws.id, id, { lock: true });
      checkDefaultKept(body, account);
      const now = clock.now();
      const changes: Record<string, unknown> = { updated_at: now };
      if (body.name !== undefined) changes.name = body.name;
      if (body.support_chat_id !== undefined) changes.support_chat_id = body.support_chat_id;
      if (bot) {
        if (account.botUserId !== null && bot.id !== account.botUserId) {
          const who = bot.username ? `@${bot.username}` : `id ${bot.id}`;
          const error = `This token belongs to another bot (${who}); connect it as a new account`;
          throw new AppError('validation_error', error, { details: [{ field: 'bot_token', error }] });
        }
        // An account made before tokens were kept may not know its bot yet.
        if (account.botUserId === null) await ensureNotConnected(db, bot.id, account.id);
        Object.assign(changes, { bot_token: body.bot_token, bot_user_id: bot.id });
        if (bot.username !== null) changes.bot_username = bot.username;
      }
      if (body.is_default === true && !account.isDefault) {
        await accountStore.clearDefault(db, ws.id, now);
        changes.is_default = true;
      }
      try {
        return await accountStore.update(db, account.id, changes);
      } catch (err) {
        if (isDuplicateBot(err)) throw duplicateBot();
        throw err;
      }
    },

    async remove(db: Db, workspaceId: string, id: string): Promise<void> {
      await lockWorkspace(db, workspaceId);
      const account = await find(db, workspaceId, id, { lock: true });
      const now = clock.now();
      await accountStore.softDelete(db, account.id, now);
      await sendQueue.cancelForAccount(db, account.id, now);
      if (account.isDefault) {
        const heir = await accountStore.oldest(db, workspaceId);
        if (heir) await accountStore.update(db, heir.id, { is_default: true, updated_at: now });
      }
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
