/**
 * The database path under network faults, piece by piece: a TCP proxy (test/helpers/tcp-proxy.ts)
 * sits between the pool (or the LISTEN connection, or a job) and the real PostgreSQL, and
 * refuses or blackholes. Bounds are short here so each fault shows in well under a second or
 * two; the asserts are "fails, with a database-unavailable error, before the fault ends" and
 * "works again afterwards", never how fast. The whole service under the same faults:
 * db-partition.test.ts.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { createKnex, unboundedKnex, type Knex } from '../../src/db/knex.js';
import { MIGRATION_LOCK_ID, migrateLatest } from '../../src/db/migrate.js';
import { listen, type Listener } from '../../src/db/notifications.js';
import { inTransaction } from '../../src/db/transaction.js';
import { isDatabaseUnavailable } from '../../src/http/errors.js';
import { createQueueWorker } from '../../src/jobs/queue-worker.js';
import { createScheduler } from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/lib/logger.js';
import { waitFor } from '../helpers/process.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { createTestDatabase, useTestDatabase } from '../helpers/test-db.js';

const logger = createLogger('silent');

/** Short bounds: a statement 300 ms, no answer 600 ms, connecting and waiting for a connection 500 ms. */
const SHORT = { statementTimeoutMs: 300, queryTimeoutMs: 600, connectTimeoutMs: 500, acquireTimeoutMs: 500, idleInTransactionTimeoutMs: 400 };

/**
 * What `p` settles to, or `{ hung: true }` if it has not settled after `ms` (the length of the
 * simulated partition: a bounded call must settle well within it).
 */
async function within<T>(ms: number, p: Promise<T>): Promise<{ hung: true } | { hung: false; value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<{ hung: true }>((resolve) => { timer = setTimeout(() => resolve({ hung: true }), ms); });
  try {
    return await Promise.race([p.then((value) => ({ hung: false as const, value }), (error) => ({ hung: false as const, error })), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** The call failed, before the partition ended, with an error the API answers 503 for. */
function assertUnavailable(r: Awaited<ReturnType<typeof within>>, what: string): void {
  assert.equal(r.hung, false, `${what} is still waiting: it hung on the database`);
  const error = (r as { error?: unknown }).error;
  assert.ok(error, `${what} should have failed`);
  assert.ok(isDatabaseUnavailable(error), `${what} failed with an error that is not "database unavailable" (it would be a 500): ${(error as Error).message}`);
}

const PARTITION_MS = 8_000;

describe('the database path under network faults', function () {
  this.timeout(30_000);
  const db = useTestDatabase();
  let proxy: TcpProxy;
  const knexes: Knex[] = [];
  const open = (poolMax = 2, bounds: Partial<typeof SHORT> = SHORT) => {
    const k = createKnex(proxy.via(db.current.url), poolMax, undefined, bounds);
    knexes.push(k);
    return k;
  };

  beforeEach(async () => {
    const u = new URL(db.current.url);
    proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
  });
  afterEach(async () => {
    proxy.setMode('pass');
    await Promise.all(knexes.splice(0).map((k) => k.destroy().catch(() => undefined)));
    await proxy.close();
  });

  describe('the pool', () => {
    it('blackhole: a query on a connection that went silent fails within the query timeout; the connection is closed, never reused; after the partition the pool works again', async () => {
      const k = open(1);
      await k.raw('SELECT 1');
      assert.equal(proxy.openConnections, 1);
      proxy.setMode('blackhole');
      assertUnavailable(await within(PARTITION_MS, k.raw('SELECT 1')), 'a query in the blackhole');
      await waitFor('the silent connection to be closed by the pool', () => proxy.openConnections === 0, 2_000);
      proxy.setMode('pass');
      assert.deepEqual((await k.raw('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
    });

    it('blackhole: a transaction fails within the query timeout too, its ROLLBACK not stuck behind the silent query', async () => {
      const k = open(1);
      await k.raw('SELECT 1');
      proxy.setMode('blackhole');
      const started = Date.now();
      const r = await within(PARTITION_MS, inTransaction(k, (tx) => tx.raw('SELECT 1')));
      assertUnavailable(r, 'a transaction in the blackhole');
      // knex gives a stuck ROLLBACK 5 s of its own: failing before that shows it did not wait for one.
      assert.ok(Date.now() - started < 5_000, `the transaction took ${Date.now() - started} ms: its ROLLBACK waited on the dead connection`);
      proxy.setMode('pass');
      assert.equal((await inTransaction(k, (tx) => tx.raw('SELECT 2 AS n'))).rows[0].n, 2);
    });

    it('blackhole: connecting fails within the connect timeout, and waiting for a busy pool within the acquire timeout', async () => {
      proxy.setMode('blackhole');
      const fresh = open(1);
      assertUnavailable(await within(PARTITION_MS, fresh.raw('SELECT 1')), 'connecting in the blackhole');

      proxy.setMode('pass');
      const busy = open(1, { ...SHORT, statementTimeoutMs: 5_000, queryTimeoutMs: 6_000 });
      await busy.raw('SELECT 1');
      const holder = busy.raw('SELECT pg_sleep(2)').then(() => undefined); // holds the only connection
      assertUnavailable(await within(PARTITION_MS, busy.raw('SELECT 1')), 'waiting for a pooled connection');
      await holder;
    });

    it('refuse: connections reset by the network fail at once, new ones too; afterwards the pool works again', async () => {
      const k = open(2);
      await Promise.all([k.raw('SELECT pg_sleep(0.05)'), k.raw('SELECT pg_sleep(0.05)')]);
      proxy.setMode('refuse');
      for (let i = 0; i < 3; i++) assertUnavailable(await within(PARTITION_MS, k.raw('SELECT 1')), `query ${i + 1} while refused`);
      proxy.setMode('pass');
      assert.deepEqual((await Promise.all([k.raw('SELECT 1 AS n'), k.raw('SELECT 1 AS n')])).map((r) => r.rows[0].n), [1, 1]);
    });
  });

  describe('the server-side bounds', () => {
    it('are every session\'s defaults: a statement past statement_timeout is cancelled (503), and the connection stays usable', async () => {
      const k = createKnex(db.current.url, 1, undefined, { statementTimeoutMs: 200, queryTimeoutMs: 2_000 });
      knexes.push(k);
      assert.equal((await k.raw('SHOW statement_timeout')).rows[0].statement_timeout, '200ms');
      const r = await within(PARTITION_MS, k.raw('SELECT pg_sleep(1)'));
      assertUnavailable(r, 'a statement past the timeout');
      assert.equal(((r as { error: { code: string } }).error).code, '57014');
      // A job may set its own bound for its transaction (above the default only up to the answer
      // timeout, or with its own query_timeout on the long query); the session default comes back after it.
      await inTransaction(k, async (tx) => {
        await tx.raw(`SET LOCAL statement_timeout = '1s'`);
        await tx.raw('SELECT pg_sleep(0.3)');
      });
      assert.equal((await k.raw('SHOW statement_timeout')).rows[0].statement_timeout, '200ms');
      assert.ok(isDatabaseUnavailable(await k.raw('SELECT pg_sleep(1)').catch((e) => e)));
    });

    it('end a transaction left idle past idle_in_transaction_session_timeout, freeing its locks; the pool replaces the connection', async () => {
      const k = createKnex(db.current.url, 1, undefined, { idleInTransactionTimeoutMs: 200 });
      knexes.push(k);
      assert.equal((await k.raw('SHOW idle_in_transaction_session_timeout')).rows[0].idle_in_transaction_session_timeout, '200ms');
      const err = await inTransaction(k, async (tx) => {
        await tx.raw('SELECT 1');
        await new Promise((r) => setTimeout(r, 600)); // a client that went quiet mid-transaction
        await tx.raw('SELECT 1');
      }).catch((e) => e);
      assert.ok(err instanceof Error, 'the server ended the idle transaction');
      assert.ok(isDatabaseUnavailable(err), `answered 503: ${err.message}`);
      assert.deepEqual((await k.raw('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
    });
  });

  describe('migrations', () => {
    it('run without our statement bounds: a replica waits for another\'s migration lock longer than the statement and answer timeouts', async () => {
      const fresh = await createTestDatabase({ empty: true });
      const holder = new pg.Client({ connectionString: fresh.url });
      await holder.connect();
      const k = createKnex(fresh.url, 2, undefined, { statementTimeoutMs: 200, queryTimeoutMs: 400 });
      try {
        const unbounded = unboundedKnex(k);
        assert.equal((await unbounded.raw('SHOW statement_timeout').finally(() => unbounded.destroy())).rows[0].statement_timeout, '0');
        await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
        const run = migrateLatest(k);
        await new Promise((r) => setTimeout(r, 1_000)); // past both bounds of `k`
        await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
        assert.ok((await run).length > 0, 'the migrations ran once the lock was free');
      } finally {
        await holder.end();
        await k.destroy();
        await fresh.drop();
      }
    });
  });

  describe('background work', () => {
    it('a queue worker keeps claiming through a partition: claims fail (logged, backed off), then succeed again', async () => {
      const k = open(2);
      let ok = 0;
      let failed = 0;
      const worker = createQueueWorker({
        async claim() {
          try {
            await k.raw('SELECT 1');
          } catch (err) {
            failed++;
            throw err;
          }
          ok++;
          return { done: 0 };
        },
        concurrency: 1, pollIntervalMs: 20, errorBackoffMs: 50, logger, claimErrorMessage: 'claim failed',
      });
      worker.start();
      try {
        await waitFor('a claim', () => ok > 0);
        proxy.setMode('blackhole');
        await waitFor('claims to fail, one after another', () => failed >= 2, PARTITION_MS);
        const okBefore = ok;
        proxy.setMode('pass');
        await waitFor('claims to succeed again', () => ok > okBefore + 2, PARTITION_MS);
      } finally {
        await worker.stop();
      }
    });

    it('a job tick in a partition fails (recorded as failed) instead of hanging, and the next tick runs', async () => {
      const k = open(3);
      const scheduler = createScheduler({
        db: k, logger, runnerId: 'faults',
        jobs: [{ name: 'probe', schedule: '0 0 1 1 *', async run({ db: jdb }) { await jdb.raw('SELECT 1'); } }],
      });
      try {
        await k.raw('SELECT 1');
        proxy.setMode('blackhole');
        const r = await within(PARTITION_MS, scheduler.runTick('probe', new Date('2026-01-01T00:00:00Z')));
        assert.equal(r.hung, false, 'the tick hung on the database');
        proxy.setMode('pass');
        assert.equal(await scheduler.runTick('probe', new Date('2026-01-01T00:01:00Z')), 'ran');
      } finally {
        await scheduler.stop();
      }
    });
  });

  describe('the LISTEN connection', () => {
    let listener: Listener | undefined;
    afterEach(async () => { await listener?.close(); listener = undefined; });

    it('notices a silent network by its heartbeat, closes the connection, and listens again after the partition', async () => {
      let notified = 0;
      listener = listen(proxy.via(db.current.url), 'td_fault_probe', () => { notified++; }, logger, { retryMs: 100, heartbeatMs: 200, timeoutMs: 300 });
      await waitFor('the first LISTEN (it notifies once on connecting)', () => notified === 1);
      const notify = () => db.knex.raw(`NOTIFY td_fault_probe`);
      await notify();
      await waitFor('a NOTIFY to arrive', () => notified === 2);

      proxy.setMode('blackhole');
      await waitFor('the heartbeat to give up on the silent connection (and retries to time out)', () => proxy.openConnections === 0, PARTITION_MS);

      proxy.setMode('pass');
      await waitFor('LISTEN again (it notifies once on reconnecting)', () => notified >= 3, PARTITION_MS);
      const n = notified;
      await notify();
      await waitFor('a NOTIFY after the partition', () => notified > n);
    });

    it('comes back after the database refused it for a while', async () => {
      let notified = 0;
      listener = listen(proxy.via(db.current.url), 'td_fault_probe2', () => { notified++; }, logger, { retryMs: 100, heartbeatMs: 200, timeoutMs: 300 });
      await waitFor('the first LISTEN', () => notified === 1);
      proxy.setMode('refuse');
      await new Promise((r) => setTimeout(r, 500));
      proxy.setMode('pass');
      await waitFor('LISTEN again', () => notified >= 2, PARTITION_MS);
      const n = notified;
      await db.knex.raw(`NOTIFY td_fault_probe2`);
      await waitFor('a NOTIFY after the refusal', () => notified > n);
    });
  });
});
