import type { Job } from '../jobs/scheduler.js';
import type { TicketService } from './ticket-service.js';
import { inTransaction } from '../db/transaction.js';

const BATCH = 200;

/**
 * Closes resolved tickets once their workspace's auto_close_after_hours have passed since
 * resolved_at. Each batch is one transaction; rows another replica or request holds are
 * skipped (SKIP LOCKED) and picked up on a later tick.
 */
export function autoCloseJob(opts: { schedule: string; tickets: TicketService }): Job {
  return {
    name: 'auto-close',
    schedule: opts.schedule,
    async run({ db, logger, tick, signal }) {
      let closed = 0;
      for (;;) {
        if (signal.aborted) break;
        const n = await inTransaction(db, (trx) => opts.tickets.autoClose(trx, tick, BATCH));
        closed += n;
        if (n < BATCH) break;
      }
      if (closed) logger.info({ closed }, 'auto-closed resolved tickets');
    },
  };
}
