/**
 * The Telegram module assembled: the Bot API client, the send queue's worker, the update
 * workers and the bot runtime. main.ts starts it with the other background work; tests
 * build it against the fake Bot API server.
 */
import type { Config } from '../config.js';
import type { Services } from '../container.js';
import type { Knex } from '../db/knex.js';
import type { SessionLocks } from '../db/session-locks.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { createBotApi, type BotApi } from './bot-api.js';
import { createBotRuntime, type BotRuntime } from './bot-runtime.js';
import { createSendExecutor } from './send-executor.js';
import { createSendWorker, type SendWorker } from './send-worker.js';
import { createUpdateWorker, type UpdateWorker } from './update-worker.js';

export interface Telegram {
  api: BotApi;
  sends: SendWorker;
  updates: UpdateWorker;
  runtime: BotRuntime;
  /** Starts everything: bots (polling or webhook), update handling, sending. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createTelegram(deps: { config: Config; db: Knex; logger: Logger; clock: Clock; services: Services; locks?: SessionLocks }): Telegram {
  const { config, db, logger, clock, services } = deps;
  const t = config.telegram;
  const api = createBotApi({ db, accounts: services.accounts, apiRoot: t.apiRoot, timeoutMs: t.callTimeoutMs });
  const executor = createSendExecutor({
    db, logger: logger.child({ component: 'telegram-sends' }), clock, api, messages: services.messages, contacts: services.contacts, topics: services.topics, sla: services.sla,
    retry: { maxFailures: t.sends.maxFailures, baseDelayMs: t.sends.retryBaseMs, maxDelayMs: t.sends.retryMaxMs },
    pacing: t.sends.pacing,
  });
  const sends = createSendWorker({
    db, logger, clock, executor,
    settings: { concurrency: t.sends.concurrency, pollIntervalMs: t.sends.pollIntervalMs, leaseMs: t.sends.leaseMs, claimAheadMs: t.sends.claimAheadMs, pacing: t.sends.pacing },
  });
  const updates = createUpdateWorker({
    db, logger, clock, services, api, onHandled: () => sends.wake(),
    settings: { concurrency: t.updates.concurrency, pollIntervalMs: t.updates.pollIntervalMs, maxAttempts: t.updates.maxAttempts, albumGatherMs: t.albumGatherMs },
  });
  const runtime = createBotRuntime({ db, logger, clock, api, config, accounts: services.accounts, onUpdateStored: () => updates.wake(), reconcileIntervalMs: t.reconcileIntervalMs, locks: deps.locks });
  return {
    api, sends, updates, runtime,
    async start() {
      sends.start();
      updates.start();
      await runtime.start();
    },
    async stop() {
      await runtime.stop();
      await updates.stop();
      await sends.stop();
    },
  };
}
