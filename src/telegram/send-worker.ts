/**
 * The send queue's worker: claims what Telegram's limits allow now (send-queue.ts decides,
 * shared by every replica through PostgreSQL), runs the calls concurrently — at most one per
 * chat, since a chat's rows are claimed one at a time — and sleeps until the next row is due,
 * the poll interval passes, or `wake()` says something was queued in this process. A row is
 * claimed `claimAheadMs` before its pacing slot and waits for it in the executor, so the
 * claim's round trips are not added to every send.
 *
 * The loop is the queue-worker primitive (src/jobs/queue-worker.ts): `run` mode with up to
 * `concurrency` calls in flight, a claim for just the free slots, `nextAt` from the claim for
 * the sleep, and every finished call waking the loop (its chat's next row may be claimable).
 */
import type { Knex } from '../db/knex.js';
import { createQueueWorker } from '../jobs/queue-worker.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { SendExecutor } from './send-executor.js';
import { sendQueue, type PacingRules } from '../send-queue/send-queue.js';

const ERROR_BACKOFF_MS = 1_000;

export interface SendWorkerSettings {
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  /** Claims a send whose slot opens within this long; its first call waits for the slot. */
  claimAheadMs: number;
  pacing: PacingRules;
}

export interface SendWorker {
  start(): void;
  /** Stops claiming and waits for the calls in flight to be recorded. */
  stop(): Promise<void>;
  /** Something was queued: look now instead of at the next poll. */
  wake(): void;
  /** Claims and runs until nothing is sendable right now (tests and tools). */
  drain(): Promise<number>;
}

export function createSendWorker(deps: { db: Knex; logger: Logger; clock: Clock; executor: SendExecutor; settings: SendWorkerSettings }): SendWorker {
  const { db, clock, executor, settings } = deps;
  const logger = deps.logger.child({ component: 'telegram-sends' });
  const worker = createQueueWorker({
    concurrency: settings.concurrency,
    pollIntervalMs: settings.pollIntervalMs,
    errorBackoffMs: ERROR_BACKOFF_MS,
    logger,
    clock,
    claimErrorMessage: 'claiming Telegram sends failed',
    async claim(free) {
      const { claimed, nextAt } = await sendQueue.claim(db, { now: clock.now(), limit: free, leaseMs: settings.leaseMs, rules: settings.pacing, aheadMs: settings.claimAheadMs });
      return { items: claimed, nextAt };
    },
    run: (s) => executor.run(s)
      .catch((err) => logger.error({ err, send_id: s.id, op: s.op }, 'recording a send outcome failed; the row is retried after its lease')),
    onSettled: () => true, // a chat's next row may be claimable now
  });

  return {
    start: () => worker.start(),
    stop: () => worker.stop(),
    wake: () => worker.wake(),
    drain: () => worker.drain(),
  };
}
