import assert from 'node:assert/strict';
import cron from 'node-cron';
import { Writable } from 'node:stream';
import { createKnex, type Knex } from '../../src/db/knex.js';
import { createSessionLocks } from '../../src/db/session-locks.js';
import { createScheduler, type Job, type JobContext, type Scheduler} from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/lib/logger.js';
import { useTestDatabase } from '../helpers/test-db.js';
import { waitFor } from '../helpers/process.js';

const logger = createLogger('silent');

interface Deferred<T = void> { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void }
function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}


/** A settled-or-not probe for a promise, without waiting on it. */
function track<T>(p: Promise<T>): { settled: boolean; value?: T } {
  const s: { settled: boolean; value?: T } = { settled: false };
  p.then((v) => { s.settled = true; s.value = v; }, () => { s.settled = true; });
  return s;
}

interface RunRow { job: string; tick: Date; runner: string; status: string; error: string | null; finished_at: Date | null }

describe('scheduler', function () {
  this.timeout(20_000);
  const db = useTestDatabase();
  // Two "replicas": separate pools on one database, as two processes would have.
  let knexA: Knex;
  let knexB: Knex;
  const schedulers: Scheduler[] = [];
  let jobSeq = 0;

  before(() => {
    knexA = createKnex(db.current.url, 5);
    knexB = createKnex(db.current.url, 5);
  });
  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((s) => s.stop().catch(() => undefined)));
  });
  after(async () => {
    await knexA?.destroy();
    await knexB?.destroy();
  });

  /** A scheduler per replica, each with its own copy of the same job definition. */
  function replicas(job: Omit<Job, 'name'> & { name?: string }): { name: string; a: Scheduler; b: Scheduler } {
    const name = job.name ?? `job_${++jobSeq}`;
    const a = createScheduler({ db: knexA, logger, jobs: [{ ...job, name }], runnerId: 'replica-a' });
    const b = createScheduler({ db: knexB, logger, jobs: [{ ...job, name }], runnerId: 'replica-b' });
    schedulers.push(a, b);
    return { name, a, b };
  }

  async function runs(name: string): Promise<RunRow[]> {
    return db.knex('job_runs').where({ job: name }).orderBy('tick');
  }

  async function advisoryLocksHeld(): Promise<number> {
    const { rows } = await db.knex.raw(
      `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    return rows[0].n;
  }

  describe('runTick across replicas', () => {
    it('runs a tick fired by two replicas at once exactly once', async () => {
      let bodies = 0;
      const { name, a, b } = replicas({ schedule: '0 0 * * * *', async run() { bodies++; await new Promise((r) => setTimeout(r, 5)); } });
      const ticks = Array.from({ length: 10 }, (_, i) => new Date(Date.UTC(2030, 0, 1, 0, 0, i)));
      for (const tick of ticks) {
        const outcomes = await Promise.all([a.runTick(name, tick), b.runTick(name, tick)]);
        assert.equal(outcomes.filter((o) => o === 'ran').length, 1, `tick ${tick.toISOString()}: ${outcomes}`);
        const other = outcomes.find((o) => o !== 'ran');
        assert.ok(other === 'already-ran' || other === 'locked-elsewhere', `the other replica got ${other}`);
      }
      assert.equal(bodies, ticks.length);
      const rows = await runs(name);
      assert.deepEqual(rows.map((r) => r.tick.toISOString()), ticks.map((t) => t.toISOString()));
      for (const r of rows) {
        assert.equal(r.status, 'succeeded');
        assert.ok(r.finished_at instanceof Date);
        assert.ok(['replica-a', 'replica-b'].includes(r.runner));
      }
      assert.equal(await advisoryLocksHeld(), 0, 'every run released its advisory lock');
    });

    it('answers already-ran when a late replica fires a tick that has already run', async () => {
      let bodies = 0;
      const { name, a, b } = replicas({ schedule: '* * * * * *', async run() { bodies++; } });
      const tick = new Date('2030-02-01T10:00:00Z');
      assert.equal(await a.runTick(name, tick), 'ran');
      assert.equal(await b.runTick(name, tick), 'already-ran');
      assert.equal(await a.runTick(name, tick), 'already-ran');
      assert.equal(bodies, 1);
      const [row] = await runs(name);
      assert.equal(row.runner, 'replica-a');
    });

    it('names a tick by its whole second, so replicas whose clocks differ by milliseconds agree', async () => {
      let bodies = 0;
      const seen: Date[] = [];
      const { name, a, b } = replicas({ schedule: '* * * * * *', async run(ctx) { bodies++; seen.push(ctx.tick); } });
      assert.equal(await a.runTick(name, new Date('2030-03-01T00:00:05.004Z')), 'ran');
      assert.equal(await b.runTick(name, new Date('2030-03-01T00:00:05.998Z')), 'already-ran');
      assert.equal(bodies, 1);
      assert.equal(seen[0].toISOString(), '2030-03-01T00:00:05.000Z');
      assert.equal((await runs(name))[0].tick.toISOString(), '2030-03-01T00:00:05.000Z');
    });

    it('never overlaps a long run: another replica is locked out and the same replica skips', async () => {
      const started = deferred();
      const gate = deferred();
      let bodies = 0;
      const { name, a, b } = replicas({
        schedule: '* * * * * *',
        async run() {
          bodies++;
          started.resolve();
          await gate.promise;
        },
      });
      const t1 = new Date('2030-04-01T00:00:01Z');
      const t2 = new Date('2030-04-01T00:00:02Z');
      const first = a.runTick(name, t1);
      const firstState = track(first);
      await started.promise;

      assert.equal(await b.runTick(name, t2), 'locked-elsewhere', 'another replica cannot start the next tick');
      assert.equal(await b.runTick(name, t1), 'locked-elsewhere', 'nor the same tick');
      assert.equal(await a.runTick(name, t2), 'running-here', 'the same replica does not overlap itself');
      assert.equal(bodies, 1);
      assert.equal(firstState.settled, false, 'the first run is still going');
      assert.deepEqual((await runs(name)).map((r) => [r.tick.toISOString(), r.status]), [[t1.toISOString(), 'running']],
        'skipped ticks claim no row');

      gate.resolve();
      assert.equal(await first, 'ran');
      assert.equal(bodies, 1);
      // Once the run is over, either replica can take the next tick.
      assert.equal(await b.runTick(name, t2), 'ran');
      assert.equal(bodies, 2);
      assert.deepEqual((await runs(name)).map((r) => [r.tick.toISOString(), r.status, r.runner]),
        [[t1.toISOString(), 'succeeded', 'replica-a'], [t2.toISOString(), 'succeeded', 'replica-b']]);
    });

    it('records a failed run with its error, releases the lock, and still runs the next tick', async () => {
      let calls = 0;
      const { name, a, b } = replicas({
        schedule: '* * * * * *',
        async run() {
          calls++;
          if (calls === 1) throw new Error('disk on fire');
        },
      });
      const t1 = new Date('2030-05-01T00:00:01Z');
      const t2 = new Date('2030-05-01T00:00:02Z');
      assert.equal(await a.runTick(name, t1), 'failed');
      const [failed] = await runs(name);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error, 'disk on fire');
      assert.ok(failed.finished_at instanceof Date);
      assert.equal(await advisoryLocksHeld(), 0);

      assert.equal(await b.runTick(name, t2), 'ran', 'another replica runs the next tick');
      assert.equal(await a.runTick(name, new Date('2030-05-01T00:00:03Z')), 'ran', 'and so does the one whose run failed');
      assert.equal(await b.runTick(name, t1), 'already-ran', 'a failed tick is not re-run');
      assert.deepEqual((await runs(name)).map((r) => r.status), ['failed', 'succeeded', 'succeeded']);
      assert.equal(calls, 3);
    });

    it('records a thrown non-Error value and truncates long messages', async () => {
      let calls = 0;
      const { name, a } = replicas({
        schedule: '* * * * * *',
        async run() {
          calls++;
          if (calls === 1) throw 'plain string';
          throw new Error('x'.repeat(5000));
        },
      });
      assert.equal(await a.runTick(name, new Date('2030-06-01T00:00:01Z')), 'failed');
      assert.equal(await a.runTick(name, new Date('2030-06-01T00:00:02Z')), 'failed');
      const rows = await runs(name);
      assert.equal(rows[0].error, 'plain string');
      assert.equal(rows[1].error!.length, 2000);
    });

    it('passes the job its database, logger, tick and a live abort signal', async () => {
      let ctx: JobContext | undefined;
      const { name, a } = replicas({
        schedule: '* * * * * *',
        async run(c) {
          ctx = c;
          const { rows } = await c.db.raw('SELECT 1 AS one');
          assert.equal(rows[0].one, 1);
        },
      });
      const tick = new Date('2030-07-01T00:00:00Z');
      assert.equal(await a.runTick(name, tick), 'ran');
      assert.ok(ctx);
      assert.equal(ctx.tick.getTime(), tick.getTime());
      assert.equal(ctx.signal.aborted, false);
      assert.equal(typeof ctx.logger.info, 'function');
    });

    it('holds its job locks on the lock connection, not the pool: three jobs at once on a pool of ONE connection all run', async () => {
      // Before: each job's lock pinned a pooled connection for the whole run, so a job's own
      // queries waited for a second one (here: the acquire timeout, then 'failed').
      const one = createKnex(db.current.url, 1, undefined, { acquireTimeoutMs: 1_000 });
      const locks = createSessionLocks(one, logger);
      try {
        const release = deferred();
        const started: string[] = [];
        const job = (name: string): Job => ({
          name, schedule: '* * * * * *',
          async run(c) {
            started.push(name);
            await release.promise;
            await c.db.raw('SELECT pg_sleep(0.01)');
          },
        });
        const s = createScheduler({ db: one, logger, locks, jobs: ['one_a', 'one_b', 'one_c'].map(job), runnerId: 'replica-one' });
        schedulers.push(s);
        const tick = new Date('2030-07-02T00:00:00Z');
        const outcomes = Promise.all(['one_a', 'one_b', 'one_c'].map((n) => s.runTick(n, tick)));
        await waitFor('all three jobs to be running', () => started.length === 3);
        const { rows } = await db.knex.raw(
          `SELECT a.application_name, count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            GROUP BY 1`);
        assert.deepEqual(rows, [{ application_name: 'topicdesk-locks', n: 3 }], 'the three locks, on the one lock connection');
        release.resolve();
        assert.deepEqual(await outcomes, ['ran', 'ran', 'ran']);
        assert.equal(await advisoryLocksHeld(), 0);
        await s.stop();
        assert.equal(await locks.tryLock(42), true, 'a lock connection it was given stays open after stop()');
      } finally {
        await locks.close();
        await one.destroy();
      }
    });

    it('aborts a running job\'s signal when its lock goes with the lock connection (another replica may run the next tick)', async () => {
      const locks = createSessionLocks(knexA, logger, { heartbeatMs: 50 });
      try {
        let sawAbort = false;
        const running = deferred();
        const s = createScheduler({
          db: knexA, logger, locks, runnerId: 'replica-a',
          jobs: [{
            name: 'long_sweep', schedule: '* * * * * *',
            async run({ signal }) {
              if (sawAbort) return; // the next tick: nothing to wait for
              running.resolve();
              await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
              sawAbort = true;
            },
          }],
        });
        schedulers.push(s);
        const outcome = s.runTick('long_sweep', new Date('2030-07-03T00:00:00Z'));
        await running.promise;
        // Through knexA: its database is this describe's, not necessarily the current test's.
        await knexA.raw(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'topicdesk-locks' AND datname = current_database()`);
        assert.equal(await outcome, 'aborted', 'the job stopped between batches, as a long job should');
        assert.equal(sawAbort, true);
        const [cut] = await knexA('job_runs').where({ job: 'long_sweep' }).orderBy('tick');
        assert.equal(cut.status, 'aborted', 'recorded as cut short, not as done');
        assert.match(cut.error!, /lock was lost/);
        assert.equal(await s.runTick('long_sweep', new Date('2030-07-03T00:00:01Z')), 'ran', 'the next tick takes the lock on a new connection');
      } finally {
        await locks.close();
      }
    });

    it('rejects runTick for a job it does not have', async () => {
      const { a } = replicas({ schedule: '* * * * * *', async run() {} });
      await assert.rejects(a.runTick('no-such-job', new Date()), /no job named no-such-job/);
    });
  });

  describe('construction', () => {
    it('throws on an invalid cron expression, naming the job', () => {
      assert.throws(
        () => createScheduler({ db: knexA, logger, jobs: [{ name: 'broken', schedule: 'every minute please', async run() {} }] }),
        /job broken: invalid cron expression "every minute please"/,
      );
      assert.throws(
        () => createScheduler({ db: knexA, logger, jobs: [{ name: 'sixty', schedule: '61 * * * * *', async run() {} }] }),
        /job sixty: invalid cron expression/,
      );
    });

    it('throws when two jobs share a name', () => {
      const run = async () => {};
      assert.throws(
        () => createScheduler({ db: knexA, logger, jobs: [{ name: 'twin', schedule: '* * * * * *', run }, { name: 'twin', schedule: '0 * * * * *', run }] }),
        /twin/,
      );
    });
  });

  describe('with real cron ticks', () => {
    it('runs each tick once across two replicas firing every second', async () => {
      const seen: string[] = [];
      const { name, a, b } = replicas({
        schedule: '* * * * * *',
        async run(ctx) {
          seen.push(ctx.tick.toISOString());
          await new Promise((r) => setTimeout(r, 20));
        },
      });
      a.start();
      b.start();
      await waitFor('three cron ticks', async () => (await runs(name)).filter((r) => r.status !== 'running').length >= 3, 8_000);
      await Promise.all([a.stop(), b.stop()]);

      const rows = await runs(name);
      assert.ok(rows.length >= 3);
      assert.equal(seen.length, rows.length, 'the job body ran once per job_runs row');
      assert.deepEqual([...seen].sort(), rows.map((r) => r.tick.toISOString()), 'and once per tick');
      assert.equal(new Set(seen).size, seen.length, 'no tick ran twice');
      for (const r of rows) {
        assert.equal(r.status, 'succeeded');
        assert.equal(r.tick.getMilliseconds(), 0, 'ticks are whole seconds');
      }
      assert.equal(await advisoryLocksHeld(), 0);
    });

    it('logs ticks missed while the event loop was blocked as JSON through its logger, and carries on', async () => {
      const lines: string[] = [];
      const sink = new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } });
      const seen: string[] = [];
      const name = `job_${++jobSeq}`;
      const a = createScheduler({ db: knexA, logger: createLogger('info', sink), runnerId: 'replica-a',
        jobs: [{ name, schedule: '* * * * * *', async run(ctx) { seen.push(ctx.tick.toISOString()); } }] });
      schedulers.push(a);
      a.start();
      await waitFor('a first tick', () => seen.length >= 1, 5_000);
      const blockedUntil = Date.now() + 2_500;
      while (Date.now() < blockedUntil) { /* a blocking computation */ }
      const after = seen.length;
      await waitFor('a tick after the stall', () => seen.length > after, 5_000);
      await a.stop();

      const logged = lines.map((l) => JSON.parse(l));
      const missed = logged.filter((l) => /missed execution/.test(l.msg));
      assert.ok(missed.length >= 1, `missed ticks are reported: ${lines.join('')}`);
      assert.ok(missed.every((l) => l.level === 40 && l.job === name), 'as warnings naming the job');
      assert.equal(new Set(seen).size, seen.length, 'no tick ran twice');
      assert.equal((await runs(name)).length, seen.length);
    });

    it('stop() aborts the signal, waits for the running job, and no tick starts afterwards', async () => {
      const started = deferred();
      const order: string[] = [];
      let bodies = 0;
      let signal: AbortSignal | undefined;
      const { name, a } = replicas({
        schedule: '* * * * * *',
        async run(ctx) {
          bodies++;
          signal = ctx.signal;
          started.resolve();
          // A long job: works until asked to stop, then finishes its batch.
          await new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }));
          await ctx.db.raw('SELECT pg_sleep(0.2)');
          order.push('job finished');
        },
      });
      a.start();
      await started.promise;
      const stopping = a.stop().then(() => order.push('stop resolved'));
      await stopping;

      assert.ok(signal?.aborted, 'the job was told to stop');
      assert.deepEqual(order, ['job finished', 'stop resolved']);
      assert.equal(bodies, 1);
      const rows = await runs(name);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].status, 'aborted', 'the interrupted run was recorded, as cut short, before stop() resolved');
      assert.match(rows[0].error!, /shutting down/);
      assert.ok(![...cron.getTasks().values()].some((t) => t.name === name), 'its cron task is gone');
      // Negative check: give cron more than one period to (wrongly) fire again.
      await new Promise((r) => setTimeout(r, 1_300));
      assert.equal(bodies, 1);
      assert.equal((await runs(name)).length, 1);
    });

    it('refuses runTick once stopped', async () => {
      const { name, a } = replicas({ schedule: '* * * * * *', async run() {} });
      await a.stop();
      await assert.rejects(a.runTick(name, new Date('2030-08-01T00:00:00Z')), /stopped/);
      assert.equal((await runs(name)).length, 0);
    });

    it('does nothing when start() is called twice', async () => {
      const seen: string[] = [];
      const { name, a } = replicas({ schedule: '* * * * * *', async run(ctx) { seen.push(ctx.tick.toISOString()); } });
      a.start();
      a.start();
      assert.equal([...cron.getTasks().values()].filter((t) => t.name === name).length, 1, 'one cron task for the job');
      await waitFor('a cron tick', async () => (await runs(name)).some((r) => r.status === 'succeeded'), 5_000);
      await a.stop();
      assert.equal([...cron.getTasks().values()].filter((t) => t.name === name).length, 0);
      assert.equal(new Set(seen).size, seen.length);
    });

    it('skips a cron tick while another replica holds the job, and logs it as locked-elsewhere', async () => {
      const gate = deferred();
      let bodies = 0;
      const name = `job_${++jobSeq}`;
      const job: Job = { name, schedule: '* * * * * *', async run() { bodies++; await gate.promise; } };
      const a = createScheduler({ db: knexA, logger, jobs: [job], runnerId: 'replica-a' });
      const lines: string[] = [];
      const sink = new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } });
      const b = createScheduler({ db: knexB, logger: createLogger('debug', sink), jobs: [job], runnerId: 'replica-b' });
      schedulers.push(a, b);

      // A holds the job (a run on demand); B's real cron ticks meanwhile must not run it.
      const held = a.runTick(name, new Date('2030-09-01T00:00:00Z'));
      await waitFor('the held run', () => bodies === 1);
      b.start();
      const outcomes = () => lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'tick' && l.job === name).map((l) => l.outcome);
      await waitFor('a cron tick on B', () => outcomes().length >= 1, 5_000);
      await b.stop();
      gate.resolve();
      assert.equal(await held, 'ran');

      assert.ok(outcomes().every((o) => o === 'locked-elsewhere'), `B's ticks: ${outcomes()}`);
      assert.equal(bodies, 1);
      assert.deepEqual((await runs(name)).map((r) => r.runner), ['replica-a'], 'B claimed no tick');
    });
  });
});
