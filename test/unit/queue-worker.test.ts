/**
 * The queue-worker primitive (src/jobs/queue-worker.ts) against an in-memory queue, with real
 * timers. Poll intervals and backoffs are a minute wherever a test waits for a wake, so the
 * only way the loop can get going again in time is the behaviour under test; the asserts are
 * on counts and orders, never on how long something took.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createQueueWorker, type Claimed, type QueueWorker, type QueueWorkerOptions } from '../../src/jobs/queue-worker.js';
import { createLogger } from '../../src/lib/logger.js';
import { waitFor } from '../helpers/process.js';

interface Deferred<T = void> { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void; settled: boolean }
function deferred<T = void>(): Deferred<T> {
  const d = { settled: false } as Deferred<T>;
  d.promise = new Promise<T>((res, rej) => {
    d.resolve = (v) => { d.settled = true; res(v); };
    d.reject = (e) => { d.settled = true; rej(e); };
  });
  return d;
}

/** A settled-or-not probe for a promise, without waiting on it. */
function probe(p: Promise<unknown>): { settled: boolean } {
  const s = { settled: false };
  p.then(() => { s.settled = true; }, () => { s.settled = true; });
  return s;
}

/** Lets the loop run for a while; used only to check that something did NOT happen. */
const pause = (ms = 50) => new Promise((r) => setTimeout(r, ms));
const MINUTE = 60_000;
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('queue worker (src/jobs/queue-worker.ts)', function () {
  this.timeout(10_000);
  const workers: QueueWorker[] = [];
  let logs: any[] = [];
  const logger = createLogger('debug', new Writable({ write(chunk, _e, cb) { logs.push(JSON.parse(chunk.toString())); cb(); } }));

  const queues: { release(): void }[] = [];

  beforeEach(() => { logs = []; });
  afterEach(async () => {
    // stop() waits for the runs in flight: let the ones a test left waiting finish.
    const releasing = setInterval(() => { for (const q of queues) q.release(); }, 5);
    try {
      await Promise.all(workers.splice(0).map((w) => w.stop()));
    } finally {
      clearInterval(releasing);
      queues.splice(0);
    }
  });

  function worker<T>(opts: Partial<QueueWorkerOptions<T>> & Pick<QueueWorkerOptions<T>, 'claim'>): QueueWorker {
    const w = createQueueWorker<T>({
      concurrency: 1, pollIntervalMs: MINUTE, errorBackoffMs: MINUTE, logger, claimErrorMessage: 'claiming test items failed', ...opts,
    });
    workers.push(w);
    return w;
  }

  /**
   * An in-memory queue whose runs wait until the test lets them finish. `after` gives an
   * item's predecessor (same "chat"): it is claimable only once that one has finished.
   */
  function queue(initial: string[], after: Record<string, string> = {}) {
    const waiting = [...initial];
    const gates = new Map<string, Deferred>();
    const ran: string[] = [];
    const claims: { free: number; inFlight: number; got: string[] }[] = [];
    let running = 0;
    let maxRunning = 0;
    let w: QueueWorker | undefined;
    const claimable = () => waiting.filter((id) => !after[id] || ran.includes(after[id]));
    const q = {
      waiting, gates, ran, claims,
      get maxRunning() { return maxRunning; },
      bind(worker: QueueWorker) { w = worker; },
      take(free: number): string[] {
        const got = claimable().slice(0, free);
        for (const id of got) waiting.splice(waiting.indexOf(id), 1);
        claims.push({ free, inFlight: w?.inFlight ?? 0, got });
        return got;
      },
      async claim(free: number): Promise<Claimed<string>> {
        return { items: this.take(free) };
      },
      async run(id: string): Promise<void> {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const gate = deferred();
        gates.set(id, gate);
        try {
          await gate.promise;
        } finally {
          running--;
          ran.push(id);
        }
      },
      /** Lets every run that is waiting finish. */
      release() {
        for (const g of gates.values()) if (!g.settled) g.resolve();
      },
      open: () => [...gates].filter(([, g]) => !g.settled).map(([id]) => id),
    };
    queues.push(q);
    return q;
  }

  describe('with run: one loop, runs in the background', () => {
    it('never has more than `concurrency` runs in flight; each claim asks for exactly the free slots; every item runs once', async () => {
      const q = queue(Array.from({ length: 10 }, (_, i) => `i${i}`));
      const w = worker({ concurrency: 3, claim: (free) => q.claim(free), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      while (q.ran.length < 10) {
        await waitFor('a run waiting', () => q.open().length > 0 || q.ran.length === 10, 5000);
        const released = q.open();
        assert.ok(released.length <= 3, `in flight: ${released}`);
        q.release();
        await waitFor('the released runs recorded', () => released.every((id) => q.ran.includes(id)), 5000);
      }
      assert.ok(q.maxRunning <= 3, `max in flight ${q.maxRunning}`);
      assert.equal(q.maxRunning, 3, 'the slots were used');
      assert.deepEqual([...q.ran].sort(), Array.from({ length: 10 }, (_, i) => `i${i}`).sort());
      for (const c of q.claims) {
        assert.equal(c.free, 3 - c.inFlight, `a claim asked for ${c.free} with ${c.inFlight} in flight`);
        assert.ok(c.got.length <= c.free);
      }
    });

    it('a full worker claims again once `resumeWhenFree` slots are free, not at the first', async () => {
      const q = queue(Array.from({ length: 8 }, (_, i) => `i${i}`));
      const w = worker({ concurrency: 4, resumeWhenFree: 2, claim: (free) => q.claim(free), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      await waitFor('4 in flight', () => q.open().length === 4, 5000);
      assert.equal(q.claims.length, 1);
      q.gates.get('i0')!.resolve();
      await waitFor('i0 recorded', () => w.inFlight === 3, 5000);
      await pause();
      assert.equal(q.claims.length, 1, 'one free slot: still waiting');
      q.gates.get('i1')!.resolve();
      await waitFor('a second claim', () => q.claims.length === 2, 5000);
      assert.deepEqual(q.claims[1], { free: 2, inFlight: 2, got: ['i4', 'i5'] });
    });

    it('after a claim that found something it claims again at once; after an empty one it sleeps', async () => {
      const q = queue(['a', 'b']);
      // One item per claim, whatever is free.
      const w = worker({ concurrency: 5, claim: async () => ({ items: q.take(1) }), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      await waitFor('three claims', () => q.claims.length === 3, 5000);
      assert.deepEqual(q.claims.map((c) => c.got), [['a'], ['b'], []]);
      q.release();
      await pause();
      assert.equal(q.claims.length, 3, 'asleep after the empty claim (no wake, a minute to the next poll)');
    });

    it('`more: false` sleeps even after a claim that found something', async () => {
      const q = queue(['a', 'b']);
      const w = worker({ concurrency: 5, claim: async () => ({ items: q.take(1), more: false }), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      await waitFor('a claimed', () => q.claims.length === 1, 5000);
      await pause();
      assert.equal(q.claims.length, 1);
      w.wake();
      await waitFor('b claimed after the wake', () => q.claims.length === 2, 5000);
      assert.deepEqual(q.claims.map((c) => c.got), [['a'], ['b']]);
    });

    it('a finished run wakes the loop only when onSettled says so (a chat\'s next item became claimable)', async () => {
      for (const lookAgain of [false, true]) {
        const q = queue(['a1', 'a2'], { a2: 'a1' });
        const w = worker({ concurrency: 2, claim: (free) => q.claim(free), run: (id) => q.run(id), onSettled: () => lookAgain });
        q.bind(w);
        w.start();
        await waitFor('a1 claimed, then an empty claim', () => q.claims.length === 2, 5000);
        assert.deepEqual(q.claims.map((c) => c.got), [['a1'], []]);
        q.release();
        if (lookAgain) {
          await waitFor('a2 claimed', () => q.gates.has('a2'), 5000);
          assert.deepEqual(q.claims[2].got, ['a2']);
        } else {
          await waitFor('a1 recorded', () => w.inFlight === 0, 5000);
          await pause();
          assert.equal(q.claims.length, 2, 'not woken: a2 waits for the next poll');
        }
        q.release();
        await w.stop();
      }
    });

    it('a run that rejects is logged and frees its slot', async () => {
      const ran: string[] = [];
      const items = ['bad', 'good'];
      const w = worker({
        concurrency: 1,
        claim: async (free) => ({ items: items.splice(0, free) }),
        run: async (id) => { ran.push(id); if (id === 'bad') throw new Error('boom'); },
      });
      w.start();
      await waitFor('both ran', () => ran.length === 2, 5000);
      assert.deepEqual(ran, ['bad', 'good']);
      const line = logs.find((l) => l.msg === 'a queued item\'s run failed');
      assert.ok(line, 'logged');
      assert.equal(line.err.message, 'boom');
    });
  });

  describe('sleeping and waking', () => {
    it('wake() cuts a sleep short', async () => {
      const q = queue([]);
      const w = worker({ claim: (free) => q.claim(free), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      await waitFor('the first claim', () => q.claims.length === 1, 5000);
      q.waiting.push('x');
      await pause();
      assert.equal(q.claims.length, 1, 'asleep: x waits');
      w.wake();
      await waitFor('x claimed', () => q.gates.has('x'), 5000);
      assert.deepEqual(q.claims.map((c) => c.got), [[], ['x']]);
    });

    it('a wake during a claim is kept: the loop claims again instead of sleeping', async () => {
      const firstClaim = deferred<Claimed<string>>();
      const got: string[][] = [];
      let calls = 0;
      const w = worker<string>({
        claim: async () => {
          calls++;
          const r = calls === 1 ? await firstClaim.promise : { items: ['x'] };
          got.push([...(r.items ?? [])]);
          return calls === 2 ? { ...r, more: false } : r;
        },
        run: async () => undefined,
      });
      w.start();
      await waitFor('the first claim running', () => calls === 1, 5000);
      w.wake(); // something was queued after the claim looked
      firstClaim.resolve({ items: [] });
      await waitFor('a second claim', () => calls === 2, 5000);
      assert.deepEqual(got, [[], ['x']]);
      await pause();
      assert.equal(calls, 2, 'the kept wake is used up: asleep now');
    });

    it('nextAt ends the sleep when the next item is due (read against the given clock)', async () => {
      // The worker's clock runs an hour ahead less 10 ms: an item due in an hour (wall time) is due in 10 ms.
      const clock = { now: () => new Date(Date.now() + 3600_000 - 10) };
      let calls = 0;
      const w = worker<string>({
        clock,
        claim: async () => (++calls === 1 ? { items: [], nextAt: new Date(Date.now() + 3600_000) } : { items: [], nextAt: null }),
        run: async () => undefined,
      });
      w.start();
      await waitFor('a claim when the item is due', () => calls === 2, 5000);
      await pause();
      assert.equal(calls, 2, 'no nextAt: asleep for the poll interval');
    });

    it('a nextAt later than the poll interval sleeps one poll interval only; one in the past claims again at once', async () => {
      let calls = 0;
      const w = worker<string>({
        pollIntervalMs: 20,
        claim: async () => { calls++; return { items: [], nextAt: new Date(Date.now() + 3600_000) }; },
      });
      w.start();
      await waitFor('three polls', () => calls >= 3, 5000);
      await w.stop();
      let past = 0;
      const w2 = worker<string>({
        claim: async () => { past++; return { items: [], nextAt: past < 3 ? new Date(Date.now() - 1000) : null }; },
      });
      w2.start();
      await waitFor('claims again while nextAt is past', () => past === 3, 5000);
      await pause();
      assert.equal(past, 3, 'no nextAt: asleep for the poll interval');
    });
  });

  describe('errors', () => {
    it('a failed claim is logged and backed off (a wake ends the backoff), then the loop carries on', async () => {
      let calls = 0;
      const ran: string[] = [];
      const w = worker<string>({
        claim: async () => {
          calls++;
          if (calls === 1) throw new Error('connection refused');
          return { items: calls === 2 ? ['x'] : [] };
        },
        run: async (id) => { ran.push(id); },
      });
      w.start();
      await waitFor('the failed claim logged', () => logs.some((l) => l.msg === 'claiming test items failed'), 5000);
      const line = logs.find((l) => l.msg === 'claiming test items failed');
      assert.equal(line.level, 50);
      assert.equal(line.err.message, 'connection refused');
      await pause();
      assert.equal(calls, 1, 'backing off (a minute), not spinning');
      w.wake();
      await waitFor('x ran', () => ran.length === 1, 5000);
      assert.deepEqual(ran, ['x']);
    });

    it('after the backoff the loop claims again by itself', async () => {
      let calls = 0;
      const ran: string[] = [];
      const w = worker<string>({
        errorBackoffMs: 10,
        claim: async () => {
          calls++;
          if (calls <= 2) throw new Error(`failure ${calls}`);
          return { items: calls === 3 ? ['x'] : [] };
        },
        run: async (id) => { ran.push(id); },
      });
      w.start();
      await waitFor('x ran', () => ran.length === 1, 5000);
      assert.deepEqual(logs.filter((l) => l.msg === 'claiming test items failed').map((l) => l.err.message), ['failure 1', 'failure 2']);
    });
  });

  describe('stop', () => {
    it('stops claiming and waits for the runs in flight to be recorded', async () => {
      const q = queue(['a', 'b', 'c']);
      const w = worker({ concurrency: 2, claim: (free) => q.claim(free), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      await waitFor('a and b in flight', () => q.open().length === 2, 5000);
      const stopped = probe(w.stop());
      await pause();
      assert.equal(stopped.settled, false, 'stop() waits for a and b');
      q.gates.get('a')!.resolve();
      await pause();
      assert.equal(stopped.settled, false, 'stop() waits for b');
      q.gates.get('b')!.resolve();
      await waitFor('stopped', () => stopped.settled, 5000);
      assert.deepEqual(q.ran, ['a', 'b']);
      const claims = q.claims.length;
      w.wake();
      await pause();
      assert.equal(q.claims.length, claims, 'nothing claimed after stop()');
      assert.deepEqual(q.waiting, ['c']);
    });

    it('a claim running at stop() finishes, its items run and are waited for, and no claim follows', async () => {
      const claim = deferred<Claimed<string>>();
      let calls = 0;
      const gate = deferred();
      const ran: string[] = [];
      const w = worker<string>({
        concurrency: 2,
        claim: async () => { calls++; return claim.promise; },
        run: async (id) => { await gate.promise; ran.push(id); },
      });
      w.start();
      await waitFor('the claim running', () => calls === 1, 5000);
      const stopped = probe(w.stop());
      claim.resolve({ items: ['x'] });
      await pause();
      assert.equal(stopped.settled, false, 'x is in flight');
      gate.resolve();
      await waitFor('stopped', () => stopped.settled, 5000);
      assert.deepEqual(ran, ['x']);
      assert.equal(calls, 1);
    });

    it('leaves no timer behind (nothing keeps the process alive)', async () => {
      await new Promise((r) => setImmediate(r)); // mocha's own timeout timer is set by now
      const before = timers();
      let calls = 0;
      const w = worker<string>({ concurrency: 3, claim: async () => { calls++; return { done: 0 }; } });
      const w2 = worker<string>({ concurrency: 2, claim: async () => { calls++; return { items: [] }; }, run: async () => undefined });
      w.start();
      w2.start();
      // Asleep: w's first loop and w2's loop on a timer each; w's other two loops wait for a wake, timerless.
      await waitFor('every loop asleep', () => calls === 4 && timers() >= before + 2, 5000);
      await Promise.all([w.stop(), w2.stop()]);
      assert.equal(timers(), before);
    });

    it('start() after stop() claims again', async () => {
      const q = queue(['a']);
      const w = worker({ claim: (free) => q.claim(free), run: (id) => q.run(id) });
      q.bind(w);
      w.start();
      await waitFor('a claimed', () => q.gates.has('a'), 5000);
      q.release();
      await w.stop();
      q.waiting.push('b');
      w.start();
      await waitFor('b claimed', () => q.gates.has('b'), 5000);
      q.release();
      await w.stop();
      assert.deepEqual(q.ran, ['a', 'b']);
    });
  });

  describe('without run: the claim step does the work, `concurrency` loops side by side', () => {
    it('runs exactly `concurrency` claims at once; wake() wakes every sleeping loop', async () => {
      const gates: Deferred<Claimed<never>>[] = [];
      let active = 0;
      let maxActive = 0;
      const w = worker<never>({
        concurrency: 3,
        claim: async (free) => {
          assert.equal(free, 1);
          active++;
          maxActive = Math.max(maxActive, active);
          const g = deferred<Claimed<never>>();
          gates.push(g);
          try { return await g.promise; } finally { active--; }
        },
      });
      w.start();
      await waitFor('3 claims at once', () => active === 3, 5000);
      await pause();
      assert.equal(gates.length, 3, 'no fourth claim');
      for (const g of gates) g.resolve({ done: 0 });
      await waitFor('all asleep', () => active === 0, 5000);
      await pause();
      assert.equal(gates.length, 3, 'asleep: nothing done, a minute to the next poll');
      w.wake();
      await waitFor('3 woken', () => gates.length === 6, 5000);
      assert.equal(maxActive, 3);
      for (const g of gates.slice(3)) g.resolve({ done: 0 });
    });

    it('while the queue is empty only the first loop polls (no two empty claims overlap); a wake() brings them all', async () => {
      let calls = 0;
      let active = 0;
      let overlapping = 0;
      let counting = false;
      const w = worker<never>({
        concurrency: 4, pollIntervalMs: 1,
        claim: async () => {
          calls++;
          active++;
          if (counting && active > 1) overlapping++;
          await new Promise((r) => setTimeout(r, 5));
          active--;
          return { done: 0 };
        },
      });
      w.start();
      await waitFor('the first claim of every loop', () => calls >= 4 && active === 0, 5000);
      counting = true;
      const started = calls;
      await waitFor('30 polls', () => calls >= started + 30, 10_000);
      counting = false;
      assert.equal(overlapping, 0, 'one loop polls: four would overlap claims all the time');
      const before = calls;
      w.wake();
      await waitFor('every loop woken', () => active === 4 || calls >= before + 4, 5000);
    });

    it('work the polling loop finds (no wake: due later, or stored by another replica) is shared by every loop', async () => {
      let backlog = 0;
      let active = 0;
      let maxActive = 0;
      const w = worker<never>({
        concurrency: 4, pollIntervalMs: 1,
        claim: async () => {
          if (backlog <= 0) return { done: 0 };
          backlog--;
          active++;
          maxActive = Math.max(maxActive, active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
          return { done: 1 };
        },
      });
      w.start();
      await pause();
      backlog = 40;
      await waitFor('the backlog worked off', () => backlog <= 0 && active === 0, 5000);
      assert.equal(maxActive, 4, 'all four loops took part');
    });

    it('a loop that did something claims again at once', async () => {
      let work = 5;
      let calls = 0;
      const w = worker<never>({ concurrency: 2, claim: async () => { calls++; return { done: work-- > 0 ? 1 : 0 }; } });
      w.start();
      await waitFor('the work done and both loops asleep', () => work < -1, 5000);
      await pause();
      assert.equal(calls, 7, '5 claims that did something, then one empty claim per loop');
    });
  });

  describe('drain', () => {
    it('claims and runs until nothing is claimable and nothing is in flight, within `concurrency`; returns the count', async () => {
      const items = Array.from({ length: 7 }, (_, i) => `i${i}`);
      const q = queue(items);
      const w = worker({ concurrency: 2, claim: (free) => q.claim(free), run: async (id) => { const p = q.run(id); q.release(); await p; } });
      q.bind(w);
      assert.equal(await w.drain(), 7);
      assert.equal(w.inFlight, 0);
      assert.deepEqual([...q.ran].sort(), [...items].sort());
      assert.ok(q.maxRunning <= 2, `max in flight ${q.maxRunning}`);
      for (const c of q.claims) assert.equal(c.free, 2 - c.inFlight);
    });

    it('follows a chat\'s order: waits for a run to claim what it unblocks, and claims again when a run settled during an empty claim', async () => {
      const q = queue(['a1', 'a2', 'a3'], { a2: 'a1', a3: 'a2' });
      let calls = 0;
      const w = worker({
        concurrency: 2,
        claim: async (free) => {
          calls++;
          const got = q.take(free);
          // The second claim (a1 in flight, a2 blocked by it) looks before a1 finishes, then a1 finishes.
          if (calls === 2) {
            q.release();
            await waitFor('a1 settled', () => w.inFlight === 0, 5000);
          }
          return { items: got };
        },
        run: async (id) => { const p = q.run(id); if (id !== 'a1') q.release(); await p; },
      });
      q.bind(w);
      assert.equal(await w.drain(), 3);
      assert.deepEqual(q.ran, ['a1', 'a2', 'a3']);
      assert.deepEqual(q.claims.map((c) => c.got).filter((g) => g.length), [['a1'], ['a2'], ['a3']]);
    });

    it('without run: counts `done` and stops at the first claim that did nothing, or at `more: false`', async () => {
      let calls = 0;
      const w = worker<never>({ concurrency: 4, claim: async () => ({ done: ++calls <= 3 ? 2 : 0 }) });
      assert.equal(await w.drain(), 6);
      assert.equal(calls, 4, 'one at a time, then the empty claim');
      let batches = 0;
      const w2 = worker<never>({ claim: async () => { batches++; return { done: 5, more: batches < 2 }; } });
      assert.equal(await w2.drain(), 10);
      assert.equal(batches, 2);
    });

    it('a claim error rejects it', async () => {
      const w = worker<never>({ claim: async () => { throw new Error('no database'); } });
      await assert.rejects(w.drain(), /no database/);
    });
  });
});
