/**
 * Runs the bots: the default bot from TELEGRAM_BOT_TOKEN (kept in the accounts table like
 * the ones added through /v1/accounts, so every replica reads the same token), then for each
 * runnable bot a start-up check of its support group and its update source — a long poller,
 * or setWebhook when TELEGRAM_WEBHOOK_URL is set. Bots added or removed through the API are
 * picked up by a periodic reconcile. A misconfigured group never stops the service: one log
 * line says what to fix.
 */
import type { RunnableAccount } from '../accounts/account-store.js';
import type { AccountService } from '../accounts/account-service.js';
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { BotApi } from './bot-api.js';
import { ALLOWED_UPDATES, startPoller, type Poller } from './poller.js';
import { createSessionLocks, type SessionLocks } from '../db/session-locks.js';
import { classifyTelegramError } from './telegram-errors.js';
import { webhookSecretFor } from './webhook-secret.js';
import { inTransaction } from '../db/transaction.js';

export interface BotRuntime {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Looks for bots added, changed or removed now (tests; otherwise periodic). */
  reconcile(): Promise<void>;
}

/** TELEGRAM_BOT_TOKEN → the default workspace's bot (see AccountService.syncDefaultBot). */
export async function syncDefaultAccount(db: Knex, accounts: AccountService, config: Config, logger: Logger): Promise<void> {
  const token = config.telegram.botToken;
  if (!token) return;
  const supportChatId = config.telegram.supportChatId === null ? null : Number(config.telegram.supportChatId);
  await inTransaction(db, (tx) => accounts.syncDefaultBot(tx, token, supportChatId, logger));
}

/**
 * Checks what Telegram needs for topics (research §1.7): the group is a forum and the bot an
 * admin with Manage Topics (and Pin Messages for the card). Logs one line per problem, with
 * the fix; never throws.
 */
export async function checkSetup(db: Knex, api: BotApi, accounts: AccountService, logger: Logger, a: RunnableAccount): Promise<boolean> {
  const log = logger.child({ account_id: a.id });
  const telegram = api.client(a.token);
  let me: { id: number; username: string };
  try {
    me = await telegram.getMe();
  } catch (err) {
    const f = classifyTelegramError(err);
    if (f.kind === 'transient' || f.kind === 'rate_limited') log.warn({ reason: f.reason }, 'Telegram is not reachable at start-up: messages wait in the send queue until it is');
    else log.error({ reason: f.reason }, `Telegram refuses the token of bot ${a.botUserId}: create a new token with @BotFather and set it (TELEGRAM_BOT_TOKEN or PATCH /v1/accounts/${a.id})`);
    return false;
  }
  if (me.username !== a.botUsername) await accounts.rememberUsername(db, a.id, me.username);
  const bot = `@${me.username}`;
  if (a.supportChatId === null) {
    log.warn(`${bot} has no support group: set TELEGRAM_SUPPORT_CHAT_ID (or support_chat_id through /v1/accounts) to the forum supergroup's id; until then tickets get no topic`);
    return false;
  }
  const group = `the support group ${a.supportChatId}`;
  try {
    const chat: any = await telegram.getChat(a.supportChatId);
    if (!chat.is_forum) {
      log.error(`${group} ("${chat.title}") is not a forum: turn on Topics in the group's settings (Edit → Topics), then restart`);
      return false;
    }
    const member: any = await telegram.getChatMember(a.supportChatId, me.id);
    if (member.status !== 'administrator' && member.status !== 'creator') {
      log.error(`${bot} is not an administrator of ${group} ("${chat.title}"): promote it to admin with the Manage Topics right`);
      return false;
    }
    if (member.status === 'administrator' && !member.can_manage_topics) {
      log.error(`${bot} is an admin of ${group} ("${chat.title}") without the Manage Topics right: edit its admin rights and turn on Manage Topics`);
      return false;
    }
    if (member.status === 'administrator' && !member.can_pin_messages) {
      log.warn(`${bot} cannot pin messages in ${group}: ticket cards will not be pinned until it has the Pin Messages right`);
    }
    log.info(`Telegram ready: ${bot} creates ticket topics in "${chat.title}" (${a.supportChatId})`);
    return true;
  } catch (err) {
    const f = classifyTelegramError(err);
    if (f.kind === 'transient' || f.kind === 'rate_limited') {
      // Telegram's trouble (a 5xx, a 429, no answer), not the group's setup: say so, not "add the bot".
      log.warn({ reason: f.reason }, `Telegram did not answer the check of ${group}: not a setup problem; it is checked again at the next start, and messages wait in the send queue until Telegram answers`);
      return false;
    }
    log.error({ reason: f.reason }, `${bot} cannot reach ${group}: add the bot to the group, or check TELEGRAM_SUPPORT_CHAT_ID`);
    return false;
  }
}

export function createBotRuntime(deps: {
  db: Knex; logger: Logger; clock: Clock; api: BotApi; config: Config; accounts: AccountService; onUpdateStored: () => void; reconcileIntervalMs: number;
  /** The process's lock connection (shared with the scheduler); without one the runtime opens its own from start() to stop(). */
  locks?: SessionLocks;
}): BotRuntime {
  const { db, api, config, clock } = deps;
  const logger = deps.logger.child({ component: 'telegram' });
  const running = new Map<string, { token: string; poller: Poller | null }>();
  // The pollers' locks, on a connection that is no pool's.
  let locks: SessionLocks | null = null;
  let timer: NodeJS.Timeout | null = null;
  let reconciling: Promise<void> = Promise.resolve();

  async function startBot(a: RunnableAccount): Promise<{ token: string; poller: Poller | null }> {
    // In the background: a slow Telegram must not hold up the other bots.
    void checkSetup(db, api, deps.accounts, logger, a).catch((err) => logger.error({ err, account_id: a.id }, 'checking the bot\'s support group failed'));
    if (config.telegram.webhookUrl) {
      const url = `${config.telegram.webhookUrl}/telegram/${a.id}/webhook`;
      try {
        await api.client(a.token).callApi('setWebhook', { url, secret_token: webhookSecretFor(a.token, config.telegram.webhookSecret), allowed_updates: ALLOWED_UPDATES } as any);
        logger.info({ account_id: a.id, url }, 'Telegram webhook set');
      } catch (err) {
        logger.error({ account_id: a.id, reason: classifyTelegramError(err).reason }, 'setWebhook failed: retrying at the next check');
        throw err;
      }
      return { token: a.token, poller: null };
    }
    return {
      token: a.token,
      poller: startPoller({ db, locks: locks!, logger, clock, api, accountId: a.id, token: a.token, timeoutSeconds: config.telegram.pollTimeoutSeconds, onStored: deps.onUpdateStored }),
    };
  }

  async function reconcileOnce(): Promise<void> {
    const wanted = await deps.accounts.listRunnable(db);
    const ids = new Set(wanted.map((a) => a.id));
    for (const [id, bot] of running) {
      const now = wanted.find((a) => a.id === id);
      if (!ids.has(id) || now!.token !== bot.token) {
        await bot.poller?.stop();
        running.delete(id);
        logger.info({ account_id: id }, 'bot stopped');
      }
    }
    for (const a of wanted) {
      if (running.has(a.id)) continue;
      try {
        running.set(a.id, await startBot(a));
      } catch {
        // logged in startBot; tried again at the next reconcile
      }
    }
  }

  const runtime: BotRuntime = {
    async start() {
      locks = deps.locks ?? createSessionLocks(db, logger);
      await syncDefaultAccount(db, deps.accounts, config, logger);
      await runtime.reconcile();
      timer = setInterval(() => { void runtime.reconcile(); }, deps.reconcileIntervalMs);
      timer.unref();
    },
    reconcile() {
      reconciling = reconciling.then(reconcileOnce).catch((err) => logger.error({ err }, 'checking which bots to run failed'));
      return reconciling;
    },
    async stop() {
      if (timer) clearInterval(timer);
      await reconciling;
      await Promise.all([...running.values()].map((b) => b.poller?.stop()));
      running.clear();
      if (locks !== deps.locks) await locks?.close();
      locks = null;
    },
  };
  return runtime;
}
