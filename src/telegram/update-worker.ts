/**
 * Handles stored updates (update-inbox.ts), in every replica at once: each loop claims the
 * oldest handleable update, routes it inside the claiming transaction and marks it processed
 * there, so an update's effects (tickets, messages, queued sends) commit exactly once. A
 * handler that throws rolls everything back; the update is retried with backoff and, after
 * `maxAttempts`, set aside with its error so the chat is not stuck behind it.
 *
 * The loops are the queue-worker primitive (src/jobs/queue-worker.ts) without `run`: the
 * claim step is the whole handling (claim, route, mark processed in one transaction), so
 * `concurrency` such loops run side by side; each sleeps a poll interval when nothing is
 * handleable, and `wake()` wakes them all.
 */
import type { Services } from '../container.js';
import type { Knex } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { createQueueWorker } from '../jobs/queue-worker.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { BotApi } from './bot-api.js';
import { createBotCtx } from './bot-context.js';
import { updateInbox, type StoredUpdate } from './update-inbox.js';
import { routeUpdate } from './update-router.js';

export interface UpdateWorkerSettings {
  concurrency: number;
  pollIntervalMs: number;
  maxAttempts: number;
  albumGatherMs: number;
}

export interface UpdateWorker {
  start(): void;
  stop(): Promise<void>;
  /** An update was stored in this process: handle it now. */
  wake(): void;
  /** Handles every update handleable now (tests and tools); returns how many. */
  drain(): Promise<number>;
}

export function createUpdateWorker(deps: { db: Knex; logger: Logger; clock: Clock; services: Services; api: BotApi; settings: UpdateWorkerSettings; onHandled?: () => void }): UpdateWorker {
  const { db, clock, services, api, settings } = deps;
  const logger = deps.logger.child({ component: 'telegram-updates' });

  /** Handles one update; false when none is handleable now. */
  async function handleOne(): Promise<boolean> {
    let claimed: StoredUpdate | null = null;
    const now = clock.now();
    try {
      return await inTransaction(db, async (tx) => {
        claimed = await updateInbox.claimNext(tx, now);
        if (!claimed) return false;
        const account = await services.accounts.findRunnable(tx, claimed.accountId);
        if (account) {
          const bot = createBotCtx({ db: tx, account, ws: { id: account.workspaceId, mode: 'live' }, at: now, services, albumGatherMs: settings.albumGatherMs });
          await routeUpdate(claimed.payload, bot, api.client(account.token));
        }
        await updateInbox.markProcessed(tx, claimed, now, account ? null : 'the bot was removed');
        return true;
      });
    } catch (err) {
      const u = claimed as StoredUpdate | null;
      if (!u) throw err;
      const giveUp = u.attempts + 1 >= settings.maxAttempts;
      const retryAt = giveUp ? null : new Date(now.getTime() + 1000 * 2 ** u.attempts);
      logger[giveUp ? 'error' : 'warn']({ err, account_id: u.accountId, update_id: u.updateId, attempts: u.attempts + 1 }, giveUp ? 'update could not be handled; set aside' : 'handling an update failed; will retry');
      await updateInbox.recordFailure(db, u, (err as Error)?.message ?? String(err), now, retryAt);
      return true;
    } finally {
      deps.onHandled?.();
    }
  }

  const worker = createQueueWorker({
    concurrency: settings.concurrency,
    pollIntervalMs: settings.pollIntervalMs,
    errorBackoffMs: 1000,
    logger,
    clock,
    claimErrorMessage: 'claiming Telegram updates failed',
    claim: async () => ({ done: (await handleOne()) ? 1 : 0 }),
  });

  return {
    start: () => worker.start(),
    stop: () => worker.stop(),
    wake: () => worker.wake(),
    drain: () => worker.drain(),
  };
}
