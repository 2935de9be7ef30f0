/**
 * The probe of issue 17, kept: the real service (src/main.ts as a child process) talks to
 * PostgreSQL through a TCP proxy that refuses, then blackholes. While the database is away,
 * every request answers 503 problem+json with Retry-After before the partition ends (it
 * never hangs for the partition's length); afterwards requests succeed again without a
 * restart, the pool is not exhausted, and the LISTEN connection is back. Bounds are set short
 * through the DATABASE_*_MS variables; asserts are on outcomes, not on timings.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { createKnex } from '../../src/db/knex.js';
import { baseEnv, startMain, type MainProcess } from '../helpers/main-process.js';
import { makeKey } from '../helpers/factories.js';
import { waitFor } from '../helpers/process.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { createTestApp } from '../helpers/test-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';

/** How long each simulated partition lasts at most: every request must have answered before it ends. */
const PARTITION_MS = 10_000;

interface Answer { status: number; type: string | null; retryAfter: string | null; body: any }

async function call(url: string, init: RequestInit): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(PARTITION_MS) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body: text ? JSON.parse(text) : null };
}

describe('the service through a database partition (TCP proxy: refuse, blackhole, heal)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let proxy: TcpProxy;
  let service: MainProcess | undefined;
  let base: string;
  let auth: string;
  let seq = 0;

  before(async () => {
    db = await createTestDatabase();
    // A pool of its own for the setup, closed after: the sessions counted below are the service's.
    const setup = createKnex(db.url, 1);
    auth = (await makeKey(setup, createTestApp(setup).services)).auth;
    await setup.destroy();
    const u = new URL(db.url);
    proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
    service = startMain(baseEnv({
      PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info',
      DATABASE_URL: proxy.via(db.url),
      DATABASE_STATEMENT_TIMEOUT_MS: '1000',
      DATABASE_QUERY_TIMEOUT_MS: '1500',
      DATABASE_CONNECT_TIMEOUT_MS: '1000',
      DATABASE_ACQUIRE_TIMEOUT_MS: '1000',
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '2000',
    }));
    base = await service.listening();
  });
  after(async () => {
    if (service && !service.hasExited()) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
    await proxy?.close();
    await db?.drop();
  });

  const list = () => call(`${base}/v1/contacts`, { headers: { Authorization: auth } });
  const create = () => call(`${base}/v1/contacts`, {
    method: 'POST', headers: { Authorization: auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ email: `probe${++seq}@example.com` }),
  });
  /** Reads and writes at once, as traffic would come: more than the pool's 10 connections. */
  const burst = () => Promise.all([...Array.from({ length: 12 }, list), ...Array.from({ length: 4 }, create)]);

  function assertAllUnavailable(answers: Answer[], mode: string): void {
    for (const a of answers) {
      assert.equal(a.status, 503, `${mode}: ${a.status} ${JSON.stringify(a.body)}`);
      assert.equal(a.type, 'application/problem+json');
      assert.equal(a.body.code, 'service_unavailable');
      assert.equal(a.retryAfter, '5');
    }
  }

  /** Connections of the service's pool (and its LISTEN connection) as PostgreSQL sees them. */
  async function sessions(): Promise<{ pool: number; listen: number }> {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        `SELECT count(*) FILTER (WHERE application_name = 'topicdesk')::int AS pool, count(*) FILTER (WHERE application_name = 'topicdesk-listen')::int AS listen
           FROM pg_stat_activity WHERE datname = current_database()`);
      return rows[0];
    } finally {
      await admin.end();
    }
  }

  it('serves while the database is reachable', async () => {
    const answers = await burst();
    assert.deepEqual([...new Set(answers.map((a) => a.status))].sort(), [200, 201]);
    await waitFor('the LISTEN connection', async () => (await sessions()).listen === 1, 15_000);
  });

  it('refuse: every request answers 503 with Retry-After, none hangs', async () => {
    proxy.setMode('refuse');
    try {
      assertAllUnavailable(await burst(), 'refused');
      assertAllUnavailable(await burst(), 'still refused');
    } finally {
      proxy.setMode('pass');
    }
    await waitFor('a request to succeed after the refusal', async () => (await list()).status === 200, 10_000);
  });

  it('blackhole: every request answers 503 with Retry-After before the partition ends, none hangs for its length', async () => {
    await burst(); // the pool holds open connections, which now go silent
    proxy.setMode('blackhole');
    try {
      assertAllUnavailable(await burst(), 'blackholed');
      assertAllUnavailable(await burst(), 'still blackholed');
    } finally {
      proxy.setMode('pass');
    }
  });

  it('after the partition: requests succeed again without a restart, the pool is not exhausted, LISTEN is back', async () => {
    await waitFor('a request to succeed after the partition', async () => (await list()).status === 200, 10_000);
    const reads = await Promise.all(Array.from({ length: 20 }, list));
    assert.deepEqual(reads.map((a) => a.status), Array(20).fill(200));
    const writes = await Promise.all(Array.from({ length: 5 }, create));
    assert.deepEqual(writes.map((a) => a.status), Array(5).fill(201));
    await waitFor('at most the pool\'s 10 connections on the database, and the LISTEN connection again', async () => {
      const s = await sessions();
      return s.pool <= 10 && s.listen === 1;
    }, 20_000);
    assert.equal(service!.hasExited(), false);
    assert.deepEqual(service!.lines.filter((l) => l.msg === 'unhandled error'), [], 'no request error went unclassified (a 500)');
    // And it still stops cleanly: nothing it holds is stuck on the network.
    service!.child.kill('SIGTERM');
    const exit = await Promise.race([service!.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    assert.deepEqual(exit, { code: 0, signal: null }, 'exits 0 on SIGTERM after the partition');
  });
});
