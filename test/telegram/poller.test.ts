/**
 * The poller's own loop (src/telegram/poller.ts) and its lock (src/db/session-locks.ts), against
 * Bot APIs of our own making: one that always fails, one that answers an empty long poll.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createKnex } from '../../src/db/knex.js';
import { createSessionLocks, type SessionLocks } from '../../src/db/session-locks.js';
import { systemClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import type { BotApi } from '../../src/telegram/bot-api.js';
import { startPoller, type Poller } from '../../src/telegram/poller.js';
import { useTestDatabase } from '../helpers/test-db.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = createLogger('silent');

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A Bot API whose getUpdates answers [] after `ms` (an idle long poll), counting the calls. */
function idleApi(ms = 20): { api: BotApi; calls: () => number } {
  let calls = 0;
  const api = { client: () => ({ callApi: async (method: string) => { if (method === 'getUpdates') { calls++; await sleep(ms); } return method === 'getUpdates' ? [] : true; } }) } as unknown as BotApi;
  return { api, calls: () => calls };
}

/** A Bot API whose getUpdates is a long poll of `ms` that ends early, as fetch does, when its signal aborts. */
function longPollApi(ms: number): { api: BotApi; calls: () => number; cut: () => number } {
  let calls = 0;
  let cut = 0;
  const getUpdates = (signal: AbortSignal) => new Promise<unknown[]>((resolve, reject) => {
    const t = setTimeout(() => resolve([]), ms);
    signal.addEventListener('abort', () => { clearTimeout(t); cut++; reject(Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' })); }, { once: true });
  });
  const api = {
    client: () => ({
      callApi: async (method: string, _payload: unknown, opts: { signal: AbortSignal }) => {
        if (method !== 'getUpdates') return true;
        calls++;
        return getUpdates(opts.signal);
      },
    }),
  } as unknown as BotApi;
  return { api, calls: () => calls, cut: () => cut };
}

/** A logger whose lines are kept, parsed. */
function recordingLogger(): { logger: ReturnType<typeof createLogger>; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } });
  return { logger: createLogger('debug', sink), lines };
}

describe('the poller', () => {
  const db = useTestDatabase();
  const pollers: Poller[] = [];
  const lockSets: SessionLocks[] = [];
  const locks = () => { const l = createSessionLocks(db.knex, logger, { heartbeatMs: 50 }); lockSets.push(l); return l; };
  const poll = (deps: { api: BotApi; locks: SessionLocks; accountId?: string; db?: typeof db.knex; retryMs?: number }) => {
    const p = startPoller({ db: deps.db ?? db.knex, locks: deps.locks, logger, clock: systemClock, api: deps.api, accountId: deps.accountId ?? 'acc_poller_test', token: '1:x', timeoutSeconds: 1, onStored: () => {}, retryMs: deps.retryMs ?? 20 });
    pollers.push(p);
    return p;
  };
  /** The backends holding our advisory locks, and how many each holds. */
  const lockHolders = async () => (await db.knex.raw(`SELECT a.application_name, count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() GROUP BY 1`)).rows as { application_name: string; n: number }[];

  afterEach(async () => {
    for (const p of pollers.splice(0)) await p.stop();
    for (const l of lockSets.splice(0)) await l.close();
  });

  it('retries every retryMs against a failing API and leaves no listener behind per pause', async () => {
    let calls = 0;
    const failing = { client: () => ({ callApi: async () => { calls++; throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }); } }) } as unknown as BotApi;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => { warnings.push(w); };
    process.on('warning', onWarning);
    try {
      const p = poll({ api: failing, locks: locks(), retryMs: 2 });
      await until('40 calls', () => calls >= 40);
      await p.stop();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.map((w) => w.name), [], 'no MaxListenersExceededWarning on the stop signal');
  });

  it('takes no pooled connection: ten pollers on a pool of two leave it free, their locks all on one connection', async () => {
    const small = createKnex(db.current.url, 2, undefined, { acquireTimeoutMs: 2_000 });
    try {
      const shared = locks();
      const apis = Array.from({ length: 10 }, () => idleApi(200));
      apis.forEach(({ api }, i) => poll({ api, locks: shared, accountId: `acc_many_${i}`, db: small }));
      await until('every bot polling', () => apis.every((a) => a.calls() > 0));
      const answers = await Promise.all(Array.from({ length: 4 }, () => small.raw('SELECT 1 AS one')));
      assert.equal(answers.length, 4, 'the pool still serves queries');
      assert.deepEqual(await lockHolders(), [{ application_name: 'topicdesk-locks', n: 10 }]);
    } finally {
      for (const p of pollers.splice(0)) await p.stop();
      await small.destroy();
    }
  });

  it('session locks closed while connecting leave no connection and no heartbeat behind', async () => {
    const live = new Set<unknown>();
    const realSet = global.setInterval;
    const realClear = global.clearInterval;
    global.setInterval = ((...args: Parameters<typeof setInterval>) => { const t = realSet(...args); live.add(t); return t; }) as typeof setInterval;
    global.clearInterval = ((t: Parameters<typeof clearInterval>[0]) => { live.delete(t); realClear(t); }) as typeof clearInterval;
    try {
      const l = createSessionLocks(db.knex, logger, { heartbeatMs: 20 });
      const taking = l.tryLock(4242).catch((err: Error) => err);
      await l.close();
      assert.match(String(await taking), /closed/);
      assert.equal(live.size, 0, 'no heartbeat left running');
    } finally {
      global.setInterval = realSet;
      global.clearInterval = realClear;
    }
    await until('no lock connection left', async () => (await db.knex.raw("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'topicdesk-locks' AND datname = current_database()")).rows[0].n === 0);
  });

  it('one replica polls a bot; when its lock connection dies the first\'s long poll in flight is cut at once, the other takes over, and the first stops', async () => {
    // Long polls of 30 s: a first that let its call run on would overlap the second (Telegram: 409).
    const a = longPollApi(30_000);
    const b = longPollApi(30_000);
    const first = locks();
    poll({ api: a.api, locks: first });
    await until('the first polling', () => a.calls() > 0);
    poll({ api: b.api, locks: locks() });
    await sleep(200);
    assert.equal(b.calls(), 0, 'the second waits while the first holds the lock');

    await db.knex.raw(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    await until('the first\'s call in flight to be cut', () => a.cut() === 1, 3_000);
    await until('the second polling', () => b.calls() > 0);
    const firstCalls = a.calls();
    await sleep(300);
    assert.equal(a.calls(), firstCalls, 'the first no longer polls');
  });

  it('lost(key): aborted when the lock is let go or its connection fails, already aborted when not held', async () => {
    const l = locks();
    assert.equal(l.lost(7001).aborted, true, 'not held');
    assert.equal(await l.tryLock(7001), true);
    assert.equal(await l.tryLock(7002), true);
    const first = l.lost(7001);
    const second = l.lost(7002);
    assert.equal(first.aborted, false);
    await l.unlock(7001);
    assert.equal(first.aborted, true, 'unlocked');
    assert.equal(second.aborted, false, 'the other lock is still held');
    await db.knex.raw(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'topicdesk-locks' AND datname = current_database()`);
    await until('the connection\'s failure to be noticed', () => second.aborted, 3_000);
    assert.equal(l.holds(7002), false);
    assert.equal(await l.tryLock(7002), true, 'taken again on a new connection');
    assert.equal(l.lost(7002).aborted, false);
  });

  it('two asks for one key at once take it once: one unlock lets it go on the server', async () => {
    const l = locks();
    assert.deepEqual(await Promise.all([l.tryLock(7101), l.tryLock(7101)]), [true, true]);
    await l.unlock(7101);
    assert.deepEqual(await lockHolders(), [], 'the server holds nothing (a second pg_try_advisory_lock would have counted twice)');
    const other = locks();
    assert.equal(await other.tryLock(7101), true, 'another process can take it');
  });

  it('says once, not every retry, that the lock connection cannot connect', async () => {
    const unreachable = createKnex('postgres://postgres@127.0.0.1:1/nowhere', 1);
    const { logger: recording, lines } = recordingLogger();
    const l = createSessionLocks(unreachable, recording);
    lockSets.push(l);
    try {
      const { api, calls } = idleApi();
      const p = startPoller({ db: unreachable, locks: l, logger: recording, clock: systemClock, api, accountId: 'acc_unreachable', token: '1:x', timeoutSeconds: 1, onStored: () => {}, retryMs: 5 });
      pollers.push(p);
      const attempts = () => lines.filter((x) => /polling lock/.test(x.msg)).length;
      await until('ten attempts', () => attempts() >= 10);
      await p.stop();
      assert.equal(calls(), 0, 'never polled without the lock');
      assert.equal(lines.filter((x) => /polling lock/.test(x.msg) && x.level === 40).length, 1, 'one warning');
      assert.ok(lines.filter((x) => /polling lock/.test(x.msg) && x.level === 20).length >= 9, 'the repeats at debug');
    } finally {
      await unreachable.destroy();
    }
  });
});
