/**
 * The send queue's worker: claims what Telegram's limits allow now (send-queue.ts decides,
 * shared by every replica through PostgreSQL), runs the calls concurrently — at most one per
 * chat, since a chat's rows are claimed one at a time — and sleeps until the next row is due,
 * the poll interval passes, or `wake()` says something was queued in this process.
 */
import type { Knex } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { SendExecutor } from './send-executor.js';
import { sendQueue, type PacingRules } from '../send-queue/send-queue.js';

const ERROR_BACKOFF_MS = 1_000;

export interface SendWorkerSettings {
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
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
  const inFlight = new Set<Promise<void>>();
  let running = false;
  let loop: Promise<void> | null = null;
  let wakeUp: (() => void) | null = null;
  let woken = false;

  const wake = () => {
    woken = true;
    wakeUp?.();
  };

  function sleep(ms: number): Promise<void> {
    if (woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
    });
  }

  /** One claim; the rows run in the background. Returns how many were claimed and when to look again. */
  async function claimOnce(): Promise<{ claimed: number; nextAt: Date | null }> {
    const free = settings.concurrency - inFlight.size;
    if (free <= 0) return { claimed: 0, nextAt: null };
    woken = false;
    const { claimed, nextAt } = await sendQueue.claim(db, { now: clock.now(), limit: free, leaseMs: settings.leaseMs, rules: settings.pacing });
    for (const s of claimed) {
      const p = executor.run(s)
        .catch((err) => logger.error({ err, send_id: s.id, op: s.op }, 'recording a send outcome failed; the row is retried after its lease'))
        .finally(() => {
          inFlight.delete(p);
          wake(); // a chat's next row may be claimable now
        });
      inFlight.add(p);
    }
    return { claimed: claimed.length, nextAt };
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        if (inFlight.size >= settings.concurrency) {
          await Promise.race([...inFlight]);
          continue;
        }
        const { claimed, nextAt } = await claimOnce();
        if (claimed > 0) continue;
        const untilDue = nextAt ? nextAt.getTime() - clock.now().getTime() : settings.pollIntervalMs;
        await sleep(Math.min(settings.pollIntervalMs, Math.max(1, untilDue)));
      } catch (err) {
        logger.error({ err }, 'claiming Telegram sends failed');
        await sleep(ERROR_BACKOFF_MS);
      }
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake();
      await loop;
      await Promise.allSettled([...inFlight]);
    },
    wake,
    async drain() {
      let total = 0;
      for (;;) {
        const { claimed } = await claimOnce();
        total += claimed;
        if (claimed === 0 && inFlight.size === 0) return total;
        if (claimed === 0) await Promise.race([...inFlight]);
      }
    },
  };
}
