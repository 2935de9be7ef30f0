import type { Job } from '../jobs/scheduler.js';
import type { DigestService } from './digest-service.js';

/**
 * The daily digest (every minute by default, `jobs.digest`): queues each workspace's digest once
 * its local time has reached digest_time, once per local date (digest-service.ts).
 */
export function digestJob(opts: { schedule: string; digest: DigestService }): Job {
  return {
    name: 'digest',
    schedule: opts.schedule,
    async run({ db, logger, tick, signal }) {
      const { queued } = await opts.digest.sendDue(db, tick, logger, signal);
      if (queued) logger.info({ queued }, 'daily digests queued');
    },
  };
}
