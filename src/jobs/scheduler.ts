/**
 * Cron jobs that run once per tick across all replicas (SPEC §4, ARCHITECTURE "Jobs").
 *
 * node-cron fires the tick in every replica. Each replica then:
 *  1. skips if this process is still running the job (no self-overlap);
 *  2. takes a session advisory lock for the job on the process's lock connection
 *     (src/db/session-locks.ts, not a pooled one: a job would otherwise hold two pooled
 *     connections, its lock's and its work's) — held for the whole run, so no two replicas
 *     run the same job at the same time while that connection lives (when it fails, the run's
 *     signal aborts: a job that works in batches stops and the run is recorded 'aborted', and
 *     jobs are written to survive an overlap anyway);
 *  3. claims the `(job, tick)` row in job_runs with INSERT … ON CONFLICT DO NOTHING — so a
 *     replica whose clock is late cannot run a tick another replica already ran.
 * A lock alone is not enough (a late replica would re-run a finished tick) and a row alone
 * is not enough (a slow run could overlap the next tick on another replica): we use both.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { hostname } from 'node:os';
import { LOCK_NAMESPACES, lockKey } from '../db/advisory-lock.js';
import type { Knex } from '../db/knex.js';
import { createSessionLocks, type SessionLocks } from '../db/session-locks.js';
import { linkedSignal } from '../lib/linked-signal.js';
import type { Logger } from '../lib/logger.js';

export interface JobContext {
  db: Knex;
  logger: Logger;
  tick: Date;
  /**
   * Aborted on shutdown, and when the job's lock is lost with the lock connection (another
   * replica may then run the job's next tick): long jobs should stop between batches.
   */
  signal: AbortSignal;
}

export interface Job {
  name: string;
  /** node-cron expression, seconds field first. */
  schedule: string;
  run(ctx: JobContext): Promise<void>;
}

/** 'aborted': the job ran and returned after its signal fired; what it left is the next tick's. */
export type TickOutcome = 'ran' | 'aborted' | 'failed' | 'already-ran' | 'locked-elsewhere' | 'running-here';


export interface Scheduler {
  /** Schedules every job with node-cron; a no-op when already started or stopped. */
  start(): void;
  /** Stops firing new ticks, aborts the jobs' signal and waits for running ones to finish. */
  stop(): Promise<void>;
  /**
   * Runs one tick of a job now, with the same once-only guarantees as a cron tick.
   * Rejects for an unknown job and after stop().
   */
  runTick(jobName: string, tick: Date): Promise<TickOutcome>;
}

export function createScheduler(deps: {
  db: Knex; logger: Logger; jobs: Job[]; runnerId?: string;
  /** Every tick's outcome, also 'failed' when the tick could not run at all (metrics: job failures). */
  onOutcome?: (job: string, outcome: TickOutcome) => void;
  /** The process's lock connection (shared with the bots' pollers); without one the scheduler opens its own. */
  locks?: SessionLocks;
}): Scheduler {
  const { db, jobs } = deps;
  const logger = deps.logger.child({ component: 'scheduler' });
  const ownLocks = deps.locks ? null : createSessionLocks(db, logger);
  const locks = deps.locks ?? ownLocks!;
  const runner = deps.runnerId ?? `${hostname()}:${process.pid}`;
  const running = new Map<string, Promise<TickOutcome>>();
  const abort = new AbortController();
  let tasks: ScheduledTask[] = [];
  let started = false;
  let stopped = false;

  const names = new Set<string>();
  for (const job of jobs) {
    if (!cron.validate(job.schedule)) throw new Error(`job ${job.name}: invalid cron expression "${job.schedule}"`);
    if (names.has(job.name)) throw new Error(`job ${job.name}: two jobs have this name (it keys the lock and job_runs)`);
    names.add(job.name);
  }

  /** node-cron's own messages (say, ticks missed while the event loop was blocked) as JSON log lines, not console text. */
  function cronLogger(jobName: string) {
    const l = logger.child({ job: jobName });
    const msg = (m: string | Error) => (m instanceof Error ? m.message : m);
    const err = (m: string | Error, e?: Error) => e ?? (m instanceof Error ? m : undefined);
    return {
      info: (m: string) => l.info(m),
      warn: (m: string) => l.warn(m),
      error: (m: string | Error, e?: Error) => l.error({ err: err(m, e) }, msg(m)),
      debug: (m: string | Error, e?: Error) => l.debug({ err: err(m, e) }, msg(m)),
    };
  }

  async function execute(job: Job, tick: Date): Promise<TickOutcome> {
    // Held here already only if this same job runs here, which runTick rules out first.
    const key = lockKey(LOCK_NAMESPACES.job, job.name);
    if (!(await locks.tryLock(key))) return 'locked-elsewhere';
    try {
      const claim = await db.raw(
        'INSERT INTO job_runs (job, tick, runner) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1',
        [job.name, tick, runner],
      );
      if (claim.rowCount === 0) return 'already-ran';
      const stop = linkedSignal(abort.signal, locks.lost(key));
      try {
        await job.run({ db, logger: logger.child({ job: job.name }), tick, signal: stop.signal });
        if (stop.signal.aborted) {
          const why = abort.signal.aborted ? 'stopped: the service is shutting down' : 'stopped: its lock was lost (another replica may run the next tick)';
          await db.raw(`UPDATE job_runs SET status = 'aborted', finished_at = now(), error = ? WHERE job = ? AND tick = ?`, [why, job.name, tick]);
          return 'aborted';
        }
        await db.raw(`UPDATE job_runs SET status = 'succeeded', finished_at = now() WHERE job = ? AND tick = ?`, [job.name, tick]);
        return 'ran';
      } catch (err) {
        logger.error({ err, job: job.name, tick }, 'job failed');
        await db.raw(`UPDATE job_runs SET status = 'failed', finished_at = now(), error = ? WHERE job = ? AND tick = ?`,
          [String((err as Error)?.message ?? err).slice(0, 2000), job.name, tick]);
        return 'failed';
      } finally {
        stop.dispose();
      }
    } finally {
      await locks.unlock(key);
    }
  }

  function runTick(jobName: string, tick: Date): Promise<TickOutcome> {
    const job = jobs.find((j) => j.name === jobName);
    if (!job) return Promise.reject(new Error(`no job named ${jobName}`));
    if (stopped) return Promise.reject(new Error(`scheduler is stopped: job ${jobName} not run`));
    if (running.has(jobName)) return Promise.resolve('running-here');
    // Ticks are named by their whole second so every replica names a tick alike.
    const normalised = new Date(Math.floor(tick.getTime() / 1000) * 1000);
    const p = execute(job, normalised).then(
      (outcome) => { deps.onOutcome?.(jobName, outcome); return outcome; },
      (err) => { deps.onOutcome?.(jobName, 'failed'); throw err; },
    ).finally(() => running.delete(jobName));
    running.set(jobName, p);
    return p;
  }

  return {
    runTick,
    start() {
      if (started || stopped) return;
      started = true;
      tasks = jobs.map((job) => cron.schedule(job.schedule, async (ctx) => {
        if (stopped) return;
        const outcome = await runTick(job.name, ctx.date).catch((err) => {
          logger.error({ err, job: job.name }, 'tick could not run');
          return 'failed' as const;
        });
        logger.debug({ job: job.name, tick: ctx.date, outcome }, 'tick');
      }, { name: job.name, noOverlap: false, logger: cronLogger(job.name) }));
    },
    async stop() {
      stopped = true;
      await Promise.all(tasks.map((t) => t.stop()));
      await Promise.all(tasks.map((t) => t.destroy()));
      tasks = [];
      abort.abort();
      await Promise.allSettled([...running.values()]);
      await ownLocks?.close();
    },
  };
}
