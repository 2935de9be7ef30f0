/**
 * The loop around a database-backed queue, shared by the Telegram send and update workers and
 * the webhook fan-out and delivery workers: claim what is claimable, run it within a
 * concurrency limit, sleep until the next item is due or the poll interval passes (wake()
 * cuts the sleep short), back off after a failed claim, stop cleanly, drain for tests.
 * What is claimable, and how it is leased, stays with each queue's own claim SQL.
 *
 * A job library (pg-boss, graphile-worker) does not fit: these queues claim with their own
 * SQL (pacing windows, per-chat order, per-endpoint limits, lease fencing), so only the loop
 * around the claim is shared.
 *
 * Two shapes:
 *  - with `run`: one loop claims at most the free slots (`concurrency` minus the runs in
 *    flight) and runs the claimed items in the background; when every slot is taken it
 *    waits until `resumeWhenFree` slots are free again.
 *  - without `run`: the claim step does the work itself (say, claims and handles an update
 *    in one transaction) and reports how much it did in `done`; `concurrency` such loops
 *    run side by side, and when the queue is empty only the first polls: the others wait for
 *    a wake().
 * After a claim that found something (or says `more`), a loop claims again at once; else it
 * sleeps until `nextAt` or for `pollIntervalMs`, whichever comes first. A wake() that comes
 * while a loop is busy is kept for its next sleep, so new work never waits a poll interval.
 */
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

/** What one claim found. */
export interface Claimed<T> {
  /** Items to run (with `run`); at most the `free` the claim was given. */
  items?: readonly T[];
  /** Work the claim step did itself (without `run`): counted, takes no slot. */
  done?: number;
  /** When the next item becomes claimable, if the queue knows: the sleep ends then. */
  nextAt?: Date | null;
  /** Claim again at once. Default: when the claim found anything. */
  more?: boolean;
}

export interface QueueWorkerOptions<T> {
  /** Claims up to `free` items (1 without `run`). Runs in the queue's own SQL. */
  claim(free: number): Promise<Claimed<T>>;
  /** Runs one claimed item in the background; a rejection is logged (runs should record their own errors). */
  run?(item: T): Promise<void>;
  /** Called as an item's run settles; true means "look again now" (say, the item's chat has a next row). */
  onSettled?(item: T): boolean | void;
  /** Items in flight at once (with `run`), or loops side by side (without). */
  concurrency: number;
  /** With every slot taken, claim again once this many are free (default 1). */
  resumeWhenFree?: number;
  pollIntervalMs: number;
  /** The pause after a failed claim. */
  errorBackoffMs: number;
  logger: Logger;
  /** Logged with the error when a claim fails. */
  claimErrorMessage: string;
  /** Reads `nextAt` against this clock (default: the system clock). */
  clock?: Clock;
}

export interface QueueWorker {
  /** Starts the loop(s); a no-op while running. Can start again after stop(). */
  start(): void;
  /** Stops claiming, and waits for the runs in flight to settle. Leaves no timer behind. */
  stop(): Promise<void>;
  /** Something became claimable: a sleeping loop looks now, a busy one right after its claim. */
  wake(): void;
  /**
   * Claims and runs until nothing is claimable and nothing is in flight (tests and tools);
   * returns how many items it claimed (plus `done`). A claim error rejects it.
   */
  drain(): Promise<number>;
  /** Runs in flight now. */
  readonly inFlight: number;
}

/** A loop's sleep: wake() cuts it short, or, while the loop is busy, is kept for the next one. */
interface Pause {
  /** Sleeps `ms` (Infinity: until wake()). */
  wait(ms: number): Promise<void>;
  wake(): void;
  /** A claim is about to start: a wake from before it is answered by that claim. */
  clear(): void;
}

export function createQueueWorker<T>(opts: QueueWorkerOptions<T>): QueueWorker {
  const { run, concurrency, pollIntervalMs, errorBackoffMs, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const resumeWhenFree = opts.resumeWhenFree ?? 1;
  const inFlight = new Set<Promise<void>>();
  let running = false;
  let loops: Promise<void>[] = [];
  let pauses: Pause[] = [];
  let waitingForSlots = false;
  /** Runs settled so far: drain claims again when one settled during an empty claim. */
  let settledCount = 0;

  function createPause(): Pause {
    let cut: (() => void) | null = null;
    let pending = false;
    return {
      wait(ms) {
        if (pending || !running) {
          pending = false;
          return Promise.resolve();
        }
        return new Promise((resolve) => {
          const timer = ms === Infinity ? undefined : setTimeout(done, Math.max(0, ms));
          function done() {
            clearTimeout(timer);
            cut = null;
            resolve();
          }
          cut = done;
        });
      },
      wake() {
        if (cut) cut();
        else pending = true;
      },
      clear() {
        pending = false;
      },
    };
  }

  function wake(): void {
    for (const p of pauses) p.wake();
  }

  const free = () => (run ? concurrency - inFlight.size : 1);

  function start(item: T): void {
    let p: Promise<void>;
    try {
      p = Promise.resolve(run!(item));
    } catch (err) {
      p = Promise.reject(err);
    }
    const tracked: Promise<void> = p
      .catch((err) => logger.error({ err }, 'a queued item\'s run failed'))
      .finally(() => {
        inFlight.delete(tracked);
        settledCount++;
        let lookAgain = false;
        try {
          lookAgain = opts.onSettled?.(item) === true;
        } catch (err) {
          logger.error({ err }, 'a queued item\'s settle hook failed');
        }
        const slotsBack = waitingForSlots && (free() >= resumeWhenFree || inFlight.size === 0);
        if (lookAgain || slotsBack) wake();
      });
    inFlight.add(tracked);
  }

  /** One claim; claimed items start running. */
  async function claimOnce(slots: number): Promise<{ count: number; more: boolean; nextAt: Date | null }> {
    const claimed = await opts.claim(slots);
    const items = claimed.items ?? [];
    if (run) for (const item of items) start(item);
    const count = items.length + (claimed.done ?? 0);
    return { count, more: claimed.more ?? count > 0, nextAt: claimed.nextAt ?? null };
  }

  /**
   * One loop. Side by side (without `run`), only the first polls when the queue is empty: the
   * others sleep until a wake-up (new work in this process) — N loops polling would cost N claims
   * per poll interval while idle, for nothing the first would not find. When its polling finds
   * work (due later, or stored by another replica), it wakes the others to share it.
   */
  async function loop(pause: Pause, polls: boolean): Promise<void> {
    let polling = false; // the last claim found nothing
    while (running) {
      const slots = free();
      if (slots <= 0) {
        waitingForSlots = true;
        await pause.wait(pollIntervalMs);
        waitingForSlots = false;
        continue;
      }
      let sleepMs: number | null;
      try {
        pause.clear();
        const { more, nextAt } = await claimOnce(slots);
        if (polls && polling && more) for (const p of pauses) if (p !== pause) p.wake();
        polling = !more;
        if (more) sleepMs = null;
        else if (!polls) sleepMs = Infinity;
        else {
          const untilDue = nextAt ? nextAt.getTime() - clock.now().getTime() : pollIntervalMs;
          sleepMs = Math.min(pollIntervalMs, Math.max(1, untilDue));
        }
      } catch (err) {
        logger.error({ err }, opts.claimErrorMessage);
        sleepMs = errorBackoffMs;
      }
      if (sleepMs !== null) await pause.wait(sleepMs);
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      pauses = Array.from({ length: run ? 1 : concurrency }, createPause);
      loops = pauses.map((p, i) => loop(p, i === 0));
    },
    async stop() {
      running = false;
      wake(); // a sleeping loop ends its sleep; a busy one finds `running` false before the next
      const stopping = loops;
      loops = [];
      pauses = [];
      await Promise.all(stopping);
      await Promise.allSettled([...inFlight]);
    },
    wake,
    async drain() {
      let total = 0;
      for (;;) {
        const slots = free();
        if (slots <= 0) {
          await Promise.race([...inFlight]);
          continue;
        }
        const settledBefore = settledCount;
        const { count, more } = await claimOnce(slots);
        total += count;
        if (more) continue;
        if (inFlight.size === 0) {
          // A run that settled during the claim may have made something claimable (a chat's next row).
          if (settledCount === settledBefore) return total;
          continue;
        }
        await Promise.race([...inFlight]);
      }
    },
    get inFlight() {
      return inFlight.size;
    },
  };
}
