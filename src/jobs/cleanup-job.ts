import type { Knex } from '../db/knex.js';
import type { Job } from './scheduler.js';

const BATCH = 5000;

/** Deletes in batches so no statement holds locks on many rows for long. Returns rows deleted. */
async function deleteInBatches(db: Knex, table: string, where: string, bindings: Knex.RawBinding[], signal: AbortSignal): Promise<number> {
  let total = 0;
  for (;;) {
    if (signal.aborted) return total;
    const r = await db.raw(`DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${where} LIMIT ${BATCH})`, bindings);
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < BATCH) return total;
  }
}

/**
 * Housekeeping: Idempotency-Keys past their retention, rate-limit windows that have
 * ended, job-run records older than a week, and finished webhook deliveries (succeeded or
 * dead) past their retention, and Telegram's bookkeeping: handled updates after a week
 * (Telegram never resends older ones), finished sends after a week, idle pacing windows, and
 * canned-response previews after a week (an old one's buttons are answered "gone").
 */
export function cleanupJob(opts: { schedule: string; idempotencyRetentionHours: number; webhookDeliveryRetentionDays: number }): Job {
  return {
    name: 'cleanup',
    schedule: opts.schedule,
    async run({ db, logger, signal }) {
      const idempotencyKeys = await deleteInBatches(db, 'idempotency_keys', 'created_at < now() - make_interval(hours => ?)', [opts.idempotencyRetentionHours], signal);
      const rateWindows = await deleteInBatches(db, 'rate_limit_counters', `window_start < now() - interval '2 minutes'`, [], signal);
      const jobRuns = await deleteInBatches(db, 'job_runs', `started_at < now() - interval '7 days'`, [], signal);
      const webhookDeliveries = await deleteInBatches(db, 'webhook_deliveries',
        `status IN ('succeeded', 'dead') AND updated_at < now() - make_interval(days => ?)`, [opts.webhookDeliveryRetentionDays], signal);
      const telegramUpdates = await deleteInBatches(db, 'telegram_updates', `processed_at < now() - interval '7 days'`, [], signal);
      const telegramSends = await deleteInBatches(db, 'telegram_sends', `done_at < now() - interval '7 days'`, [], signal);
      const telegramWindows = await deleteInBatches(db, 'telegram_rate_windows',
        `(blocked_until IS NULL OR blocked_until < now()) AND (cardinality(sent_at) = 0 OR sent_at[cardinality(sent_at)] < now() - interval '10 minutes')`, [], signal);
      const cannedPreviews = await deleteInBatches(db, 'telegram_canned_previews', `created_at < now() - interval '7 days'`, [], signal);
      logger.info({ idempotencyKeys, rateWindows, jobRuns, webhookDeliveries, telegramUpdates, telegramSends, telegramWindows, cannedPreviews }, 'cleanup done');
    },
  };
}
