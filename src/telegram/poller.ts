/**
 * Long polling for one bot. One replica polls a bot at a time (a session advisory lock, on
 * the process's lock connection, never a pooled one: Telegram answers 409 to a second
 * getUpdates), and the offset only moves past updates once they are stored — which is why
 * this is not Telegraf's own polling loop: that one confirms a batch even when its handler
 * failed, and a failed insert would lose the update. A poller whose lock went with its
 * connection stops at once — its long poll in flight is cut, or the replica that takes over
 * would get Telegram's 409 until it ended — and polls again once it has the lock back.
 * (A cut getUpdates loses nothing: updates are confirmed only by the next call's offset.)
 */
import { lockKey } from '../db/advisory-lock.js';
import type { Knex } from '../db/knex.js';
import type { SessionLocks } from '../db/session-locks.js';
import type { Clock } from '../lib/clock.js';
import { linkedSignal } from '../lib/linked-signal.js';
import type { Logger } from '../lib/logger.js';
import type { BotApi } from './bot-api.js';
import { POLLER_LOCK } from './bot-context.js';
import { classifyTelegramError } from './telegram-errors.js';
import { updateInbox } from './update-inbox.js';

export const ALLOWED_UPDATES = ['message', 'edited_message', 'callback_query', 'my_chat_member'];

export interface Poller {
  stop(): Promise<void>;
}

export function startPoller(deps: {
  db: Knex; locks: SessionLocks; logger: Logger; clock: Clock; api: BotApi; accountId: string; token: string;
  timeoutSeconds: number; onStored: () => void; retryMs?: number;
}): Poller {
  const { db, locks, clock, api, accountId } = deps;
  const key = lockKey(POLLER_LOCK, accountId);
  const logger = deps.logger.child({ component: 'telegram-poller', account_id: accountId });
  const telegram = api.client(deps.token);
  const abort = new AbortController();
  const retryMs = deps.retryMs ?? 5_000;
  let running = true;

  /** Waits `ms`, or until stop(); the abort listener goes with the wait (a failing bot pauses again and again). */
  const pause = (ms: number) => new Promise<void>((resolve) => {
    const onAbort = () => { clearTimeout(t); resolve(); };
    const t = setTimeout(() => { abort.signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    abort.signal.addEventListener('abort', onAbort, { once: true });
  });

  /** The last failure logged: a repeat (say a revoked token, every retry) is logged at debug only. */
  let lastFailure: string | null = null;

  /** Polls while this process holds the bot's lock. */
  async function poll(): Promise<void> {
    // Calls end on stop() or when the lock is lost, whichever comes first.
    const calls = linkedSignal(abort.signal, locks.lost(key));
    try {
      await pollWhileHeld(calls.signal);
    } finally {
      calls.dispose();
    }
  }

  async function pollWhileHeld(signal: AbortSignal): Promise<void> {
    let offset: number | undefined;
    let webhookCleared = false;
    while (running && locks.holds(key)) {
      try {
        if (!webhookCleared) {
          // getUpdates is refused while a webhook is set; pending updates are kept.
          await telegram.callApi('deleteWebhook', { drop_pending_updates: false }, { signal: signal as any });
          webhookCleared = true;
        }
        const updates = await telegram.callApi('getUpdates', { offset, timeout: deps.timeoutSeconds, allowed_updates: ALLOWED_UPDATES } as any, { signal: signal as any }) as any[];
        lastFailure = null;
        if (!updates.length) continue;
        await updateInbox.store(db, accountId, updates, clock.now());
        offset = Math.max(...updates.map((u) => u.update_id)) + 1;
        deps.onStored();
      } catch (err) {
        if (!running || signal.aborted) return;
        const f = classifyTelegramError(err);
        const conflict = /conflict/i.test(f.reason);
        // A rejected token stays rejected until someone replaces it: ask again only now and then.
        const rejected = /^(401|404):/.test(f.reason);
        const wait = f.kind === 'rate_limited' ? f.retryAfterSeconds * 1000 : rejected ? retryMs * 12 : retryMs;
        const level = f.reason === lastFailure ? 'debug' : conflict || f.kind === 'transient' ? 'warn' : 'error';
        lastFailure = f.reason;
        logger[level]({ reason: f.reason, retry_in_ms: wait },
          conflict ? 'another process is receiving this bot\'s updates (a webhook or a second poller)'
            : rejected ? 'Telegram rejects this bot\'s token: replace it (TELEGRAM_BOT_TOKEN or PATCH /v1/accounts); polling resumes by itself' : 'polling Telegram failed');
        await pause(wait);
      }
    }
  }

  // While the lock connection cannot connect, every bot fails to take its lock every retryMs: said once, until it works again.
  let lockFailing = false;
  const done = (async () => {
    while (running) {
      const mine = await locks.tryLock(key).then((ok) => { lockFailing = false; return ok; }, (err: Error) => {
        logger[lockFailing ? 'debug' : 'warn']({ reason: err.message }, 'cannot take the bot\'s polling lock: trying again');
        lockFailing = true;
        return false;
      });
      if (mine) await poll().catch((err) => logger.error({ err }, 'polling stopped by an error'));
      if (running) await pause(retryMs); // another replica polls this bot, or the lock was lost
    }
    await locks.unlock(key);
  })();

  return {
    async stop() {
      running = false;
      abort.abort();
      await done;
    },
  };
}
