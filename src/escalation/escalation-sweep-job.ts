import { inTransaction } from '../db/transaction.js';
import type { Job } from '../jobs/scheduler.js';
import type { EscalationService } from './escalation-service.js';
import { logEvaluation } from './escalation-worker.js';

/**
 * The escalation sweep (every 30 s by default, `jobs.escalationSweep`): age_minutes_gt and
 * unassigned_for_minutes_gt become true as time passes, with no event to say so. Each run
 * evaluates the tickets whose threshold moment passed since the previous run (the first run
 * looks back `lookbackMs`), in one transaction holding the last-checked moment's row.
 */
export function escalationSweepJob(opts: { schedule: string; escalations: EscalationService; lookbackMs: number }): Job {
  return {
    name: 'escalation-sweep',
    schedule: opts.schedule,
    async run({ db, logger, tick }) {
      const result = await inTransaction(db, (tx) => opts.escalations.sweep(tx, tick, opts.lookbackMs));
      logEvaluation(logger, result);
      if (result.fired.length) logger.info({ tickets: result.tickets, fired: result.fired.length }, 'escalation sweep fired rules');
    },
  };
}
