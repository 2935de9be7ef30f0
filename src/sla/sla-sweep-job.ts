import type { Job } from '../jobs/scheduler.js';
import type { SlaService } from './sla-service.js';

/**
 * The SLA sweep (every 30 s by default, `jobs.slaSweep`): records the warnings and breaches
 * that came due, once across replicas (the scheduler runs a tick once; sla_marks' key makes a
 * mark once even if two sweeps overlapped). Reads only the due clocks.
 */
export function slaSweepJob(opts: { schedule: string; sla: SlaService; onSwept?: (ms: number) => void }): Job {
  return {
    name: 'sla-sweep',
    schedule: opts.schedule,
    async run({ db, logger, tick, signal }) {
      const started = performance.now();
      const { tickets, marks } = await opts.sla.sweep(db, tick, { signal });
      const ms = performance.now() - started;
      opts.onSwept?.(ms);
      if (marks) logger.info({ tickets, marks, ms: Math.round(ms) }, 'SLA warnings and breaches recorded');
    },
  };
}
