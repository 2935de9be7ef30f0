import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { cleanupJob } from '../../src/jobs/cleanup-job.js';
import { createScheduler, type Job } from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/lib/logger.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('cleanup job', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let job: Job;
  let lines: string[];
  const logger = createLogger('info', new Writable({ write(chunk, _enc, cb) { lines.push(chunk.toString()); cb(); } }));

  beforeEach(async () => {
    lines = [];
    job = cleanupJob({ schedule: '0 */5 * * * *', idempotencyRetentionHours: 24, webhookDeliveryRetentionDays: 30 });
    await db.knex.raw('TRUNCATE idempotency_keys, rate_limit_counters, job_runs');
  });

  async function run(signal = new AbortController().signal): Promise<{ idempotencyKeys: number; rateWindows: number; jobRuns: number }> {
    await job.run({ db: db.knex, logger, tick: new Date(), signal });
    const done = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'cleanup done');
    assert.ok(done, 'the job logs what it deleted');
    return { idempotencyKeys: done.idempotencyKeys, rateWindows: done.rateWindows, jobRuns: done.jobRuns };
  }

  /** Inserts idempotency keys created `ageSql` ago (a PostgreSQL interval), named prefix-1..n. */
  async function idempotencyKeys(prefix: string, n: number, ageSql: string): Promise<void> {
    await db.knex.raw(`
      INSERT INTO idempotency_keys (workspace_id, key, fingerprint, method, path, response_status, created_at)
      SELECT 'ws_default', ? || '-' || i, 'fp', 'POST', '/v1/x', 201, now() - ?::interval
      FROM generate_series(1, ?) AS i`, [prefix, ageSql, n]);
  }
  async function rateWindows(prefix: string, n: number, ageSql: string): Promise<void> {
    await db.knex.raw(`
      INSERT INTO rate_limit_counters (bucket, window_start, count)
      SELECT ? || '-' || i, date_trunc('minute', now() - ?::interval), 1
      FROM generate_series(1, ?) AS i`, [prefix, ageSql, n]);
  }
  async function jobRuns(prefix: string, n: number, ageSql: string): Promise<void> {
    await db.knex.raw(`
      INSERT INTO job_runs (job, tick, runner, started_at, finished_at, status)
      SELECT ? || '-' || i, now() - ?::interval, 'test', now() - ?::interval, now() - ?::interval, 'succeeded'
      FROM generate_series(1, ?) AS i`, [prefix, ageSql, ageSql, ageSql, n]);
  }
  async function keys(table: string, column: string): Promise<string[]> {
    return (await db.knex(table).select(column).orderBy(column)).map((r: Record<string, string>) => r[column]);
  }

  it('deletes Idempotency-Keys older than the retention and keeps newer ones', async () => {
    await idempotencyKeys('old', 3, '25 hours');
    await idempotencyKeys('ancient', 2, '30 days');
    await idempotencyKeys('fresh', 2, '23 hours');
    await idempotencyKeys('new', 1, '0 seconds');
    const deleted = await run();
    assert.equal(deleted.idempotencyKeys, 5);
    assert.deepEqual(await keys('idempotency_keys', 'key'), ['fresh-1', 'fresh-2', 'new-1']);
  });

  it('uses the configured retention', async () => {
    job = cleanupJob({ schedule: '0 */5 * * * *', idempotencyRetentionHours: 1, webhookDeliveryRetentionDays: 30 });
    await idempotencyKeys('two-hours', 2, '2 hours');
    await idempotencyKeys('half-hour', 2, '30 minutes');
    await run();
    assert.deepEqual(await keys('idempotency_keys', 'key'), ['half-hour-1', 'half-hour-2']);
  });

  it('deletes rate-limit windows that started more than 2 minutes ago and keeps current ones', async () => {
    await rateWindows('ended', 4, '3 minutes');
    await rateWindows('long-ago', 1, '2 days');
    await rateWindows('previous', 1, '1 minute');
    await rateWindows('current', 2, '0 seconds');
    const deleted = await run();
    assert.equal(deleted.rateWindows, 5);
    assert.deepEqual(await keys('rate_limit_counters', 'bucket'), ['current-1', 'current-2', 'previous-1']);
  });

  it('deletes job runs older than 7 days and keeps the last week', async () => {
    await jobRuns('stale', 3, '8 days');
    await jobRuns('recent', 2, '6 days');
    await jobRuns('today', 1, '1 hour');
    const deleted = await run();
    assert.equal(deleted.jobRuns, 3);
    assert.deepEqual(await keys('job_runs', 'job'), ['recent-1', 'recent-2', 'today-1']);
  });

  it('deletes Telegram canned-response previews older than 7 days, whatever their state, and keeps the last week', async () => {
    await db.knex.raw('TRUNCATE telegram_canned_previews');
    await db.knex.raw(`
      INSERT INTO telegram_canned_previews (workspace_id, ticket_id, canned_response_id, shortcut, agent_id, text, state, created_at)
      SELECT 'ws_default', 'tkt_' || s.name, 'cr_x', 'refund', 'agt_x', 'Hi', s.state, now() - s.age::interval
      FROM (VALUES ('pending-old', 'pending', '8 days'), ('sent-old', 'sent', '30 days'), ('cancelled-old', 'cancelled', '7 days 1 minute'),
                   ('pending-recent', 'pending', '6 days'), ('sent-today', 'sent', '1 hour')) AS s (name, state, age)`);
    await run();
    const done = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'cleanup done');
    assert.equal(done.cannedPreviews, 3);
    assert.deepEqual(await keys('telegram_canned_previews', 'ticket_id'), ['tkt_pending-recent', 'tkt_sent-today']);
  });

  it('deletes in batches until every old row is gone (more rows than one batch)', async () => {
    await idempotencyKeys('old', 12_345, '2 days');
    await idempotencyKeys('keep', 3, '1 hour');
    await rateWindows('old', 10_001, '10 minutes');
    await rateWindows('keep', 2, '0 seconds');
    await jobRuns('old', 5_001, '30 days');
    await jobRuns('keep', 1, '1 day');
    const deleted = await run();
    assert.deepEqual(deleted, { idempotencyKeys: 12_345, rateWindows: 10_001, jobRuns: 5_001 });
    assert.deepEqual(await keys('idempotency_keys', 'key'), ['keep-1', 'keep-2', 'keep-3']);
    assert.deepEqual(await keys('rate_limit_counters', 'bucket'), ['keep-1', 'keep-2']);
    assert.deepEqual(await keys('job_runs', 'job'), ['keep-1']);
  });

  it('stops before its next batch once shutdown has begun', async () => {
    await idempotencyKeys('old', 10, '2 days');
    const abort = new AbortController();
    abort.abort();
    const deleted = await run(abort.signal);
    assert.deepEqual(deleted, { idempotencyKeys: 0, rateWindows: 0, jobRuns: 0 });
    assert.equal((await keys('idempotency_keys', 'key')).length, 10, 'left for the next run');
  });

  it('does nothing harmful on empty tables', async () => {
    assert.deepEqual(await run(), { idempotencyKeys: 0, rateWindows: 0, jobRuns: 0 });
  });

  it('runs under the scheduler with the configured schedule and records its run', async () => {
    const config = loadConfig({});
    const scheduled = cleanupJob({ schedule: config.jobs.cleanup, idempotencyRetentionHours: config.idempotency.retentionHours, webhookDeliveryRetentionDays: config.webhooks.deliveryRetentionDays });
    assert.equal(scheduled.name, 'cleanup');
    await idempotencyKeys('old', 2, '3 days');
    await jobRuns('old', 2, '9 days');
    const scheduler = createScheduler({ db: db.knex, logger, jobs: [scheduled], runnerId: 'test' });
    try {
      const tick = new Date();
      assert.equal(await scheduler.runTick('cleanup', tick), 'ran');
      assert.equal((await keys('idempotency_keys', 'key')).length, 0);
      const rows = await db.knex('job_runs').select('job', 'status');
      assert.deepEqual(rows, [{ job: 'cleanup', status: 'succeeded' }], 'its own fresh run record is kept');
    } finally {
      await scheduler.stop();
    }
  });
});
