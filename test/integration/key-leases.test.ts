import assert from 'node:assert/strict';
import { apiKeyStore, type AuthChunk } from '../../src/auth/api-key-store.js';
import { hashToken } from '../../src/auth/api-key-token.js';
import { createKeyLeases, RESERVE } from '../../src/auth/key-leases.js';
import type { Knex } from '../../src/db/knex.js';
import { makeKey } from '../helpers/factories.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

/** Waits out the end of the database clock's minute, so a test's requests share one window. */
async function insideOneWindow(knex: Knex, seconds = 10): Promise<void> {
  const { rows } = await knex.raw(`SELECT extract(epoch FROM date_trunc('minute', now()) + interval '1 minute' - now())::float8 AS left`);
  if (rows[0].left < seconds) await new Promise((resolve) => setTimeout(resolve, Math.ceil(rows[0].left * 1000) + 200));
}

/**
 * Leases on the real auth statement, with a clock the test moves and every statement recorded
 * (how many numbers it asked for, how many it gave back).
 */
function leasesOn(knex: Knex, opts: { maxAgeMs?: number } = {}) {
  let clock = 1_000_000;
  const statements: AuthChunk[] = [];
  let failNext = 0;
  let loseAnswer = false;
  let slowBy = 0;
  let gate: { opened: Promise<void>; held: () => void } | null = null;
  const leases = createKeyLeases({
    defaultLimit: 600,
    maxAgeMs: opts.maxAgeMs,
    now: () => clock,
    renew: async (hash, chunk) => {
      statements.push(chunk);
      if (gate && chunk.take > 1) {
        const g = gate;
        gate = null;
        g.held();
        await g.opened;
      }
      if (failNext > 0) {
        failNext--;
        throw new Error('connection lost');
      }
      const found = await apiKeyStore.authenticate(knex, hash, 60, chunk);
      if (slowBy) { clock += slowBy; slowBy = 0; }
      if (loseAnswer) {
        loseAnswer = false;
        throw new Error('connection lost after the commit');
      }
      return found;
    },
  });
  return {
    leases,
    statements,
    advance: (ms: number) => { clock += ms; },
    failNext: (n: number) => { failNext = n; },
    /** The next statement runs and commits, and its answer is lost. */
    loseNextAnswer: () => { loseAnswer = true; },
    /** The next statement takes `ms` on the test's clock. */
    slowNext: (ms: number) => { slowBy = ms; },
    /** Holds the next statement that asks for a chunk until `open()`; `held` resolves when it is waiting. */
    holdNextChunk() {
      let open!: () => void;
      let held!: () => void;
      const isHeld = new Promise<void>((r) => { held = r; });
      gate = { opened: new Promise<void>((r) => { open = r; }), held };
      return { isHeld, open };
    },
  };
}

async function counted(knex: Knex, keyId: string): Promise<number> {
  const rows = await knex('rate_limit_counters').where({ bucket: `key:${keyId}` }).orderBy('window_start', 'desc');
  return rows[0]?.count ?? 0;
}

describe('key leases (a busy key counted in chunks)', () => {
  const db = useTestDatabase();
  let t: TestApp;
  before(() => { t = createTestApp(db.knex); });
  beforeEach(() => insideOneWindow(db.knex));

  it('counts a key seen one request at a time one request per statement, as before', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 10_000 });
    const l = leasesOn(db.knex);
    for (let i = 1; i <= 5; i++) {
      const used = await l.leases.use(hashToken(key.token));
      assert.equal(used?.windowCount, i);
      l.advance(2000); // a quiet key: each lease has run out of time before the next request
    }
    assert.equal(l.statements.length, 5);
    assert.ok(l.statements.every((s) => s.take === 1 && s.giveBack === null));
    assert.equal(await counted(db.knex, key.id), 5);
  });

  it('serves a burst from few statements, every number once, and gives the unused ones back: the count stays exact', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    const used = [];
    for (let wave = 0; wave < 5; wave++) used.push(...await Promise.all(Array.from({ length: 60 }, () => l.leases.use(hash))));
    const numbers = used.map((u) => u!.windowCount).sort((a, b) => a - b);
    assert.deepEqual(numbers, Array.from({ length: 300 }, (_, i) => i + 1), 'numbers 1..300, none twice');
    assert.ok(l.statements.length <= 30, `300 requests took ${l.statements.length} statements`);
    assert.ok(l.statements.some((s) => s.take > 1), 'chunks were asked for');
    const held = await counted(db.knex, key.id);
    assert.ok(held >= 300, 'every served request was counted before it was served');
    l.advance(1001); // the lease runs out of time: the next statement gives back what it left
    const next = await l.leases.use(hash);
    assert.equal(next?.windowCount, 301);
    const last = l.statements.at(-1)!;
    assert.equal(last.giveBack?.count, held - 300);
    assert.equal(await counted(db.knex, key.id) - (last.take - 1), 301, 'given back: the count is the requests served, plus what the new lease holds');
  });

  it('never serves more than the limit across two replicas, and counts nothing ahead near it', async () => {
    const limit = 400;
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: limit });
    const hash = hashToken(key.token);
    const a = leasesOn(db.knex);
    const b = leasesOn(db.knex);
    const used = [];
    for (let wave = 0; wave < 10; wave++) {
      used.push(...await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).leases.use(hash))));
    }
    const numbers = used.map((u) => u!.windowCount);
    assert.equal(new Set(numbers).size, numbers.length, 'no number served twice, whichever replica (none was given back here)');
    const within = numbers.filter((n) => n <= limit).length;
    assert.ok(within <= limit);
    const chunk = (limit - RESERVE) / 4;
    assert.ok(within >= limit - 2 * chunk, `${within} served within the limit: at most a chunk per replica left unused`);
    for (const st of [...a.statements, ...b.statements]) assert.ok(st.take <= chunk + 30, `a chunk of ${st.take}`);
    const total = await counted(db.knex, key.id);
    assert.ok(total >= 600 && total <= 600 + 2 * chunk, `counted ${total} for 600 requests: past the limit only what was asked`);
  });

  it('concurrent requests of a key far from busy share a statement, each counted once: none waits for another\'s round trip', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 50 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    const used = await Promise.all(Array.from({ length: 20 }, () => l.leases.use(hash)));
    assert.deepEqual(used.map((u) => u!.windowCount).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.ok(l.statements.length <= 3, `20 requests at once took ${l.statements.length} statements, not one after another`);
    assert.equal(await counted(db.knex, key.id), 20, 'exactly the requests: nothing counted ahead of a small limit');
  });

  it('a lease lives at most maxAgeMs: then the statement runs again and sees a key revoked elsewhere', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)));
    // another replica revokes the key
    await db.knex('api_keys').where({ id: key.id }).update({ revoked_at: db.knex.fn.now() });
    const before = l.statements.length;
    assert.ok(await l.leases.use(hash), 'within its life the lease still serves');
    assert.equal(l.statements.length, before, '…without a statement');
    l.advance(1000);
    assert.equal(await l.leases.use(hash), null);
    assert.equal(await l.leases.use(hash), null);
  });

  it('a lease never outlives its key: one expiring sooner than maxAgeMs is asked about again at its expiry', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000, expiresAt: new Date(Date.now() + 3000) });
    const l = leasesOn(db.knex, { maxAgeMs: 30_000 });
    const hash = hashToken(key.token);
    for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)));
    const before = l.statements.length;
    l.advance(2000);
    await l.leases.use(hash);
    assert.equal(l.statements.length, before, 'before its expiry the lease serves');
    l.advance(1100);
    await l.leases.use(hash);
    assert.equal(l.statements.length, before + 1, 'at its expiry the key is looked up again');
  });

  it('forgetKey drops a key\'s lease at once, and counts nothing ahead while the change settles', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)));
    l.leases.forgetKey(key.id);
    const before = await counted(db.knex, key.id);
    // a burst right after the change: each lookup counts only the requests waiting for it
    for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 10 }, () => l.leases.use(hash)));
    assert.equal(await counted(db.knex, key.id) - before, 30, 'no chunk ahead: every number counted was a request');
    await db.knex('api_keys').where({ id: key.id }).update({ revoked_at: db.knex.fn.now() });
    assert.equal(await l.leases.use(hash), null, 'the revocation is seen by the very next request');
  });

  it('a chunk looked up while its key changes serves the requests already waiting for it, none that come later', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    const hold = l.holdNextChunk();
    // 40 at once: the first is counted alone, the second statement counts a chunk for the rest
    const wave = Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)));
    await hold.isHeld;
    const asked = l.statements.length;
    l.leases.forgetKey(key.id); // the key changes while that statement runs (it may read the old row)
    const late = Promise.all(Array.from({ length: 5 }, () => l.leases.use(hash))); // after the lookup began
    hold.open();
    assert.ok((await wave).every((u) => u !== null));
    assert.ok((await late).every((u) => u !== null));
    const after = l.statements.slice(asked);
    assert.equal(after.length, 1, 'the requests that came after the lookup began asked PostgreSQL again');
    assert.equal(after[0].take, 5, 'all five in one statement, nothing ahead');
  });

  it('a lookup that fails after it may have committed gives nothing back twice: its unused numbers are lost, never counted below what was served', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    let served = 0;
    for (let wave = 0; wave < 3; wave++) served += (await Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)))).length;
    l.advance(1001); // the lease has unused numbers, and runs out of time
    l.loseNextAnswer();
    await assert.rejects(l.leases.use(hash));
    const retry = await l.leases.use(hash);
    served += 1;
    assert.equal(l.statements.at(-1)!.giveBack, null, 'the lost statement\'s give-back is not sent again');
    assert.ok(retry!.windowCount >= served);
    assert.ok(await counted(db.knex, key.id) >= served);
  });

  it('a slow lookup\'s lease counts its life from when the lookup began', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    for (let wave = 0; wave < 2; wave++) await Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)));
    l.advance(1001);
    l.slowNext(900); // the next statement takes 900 ms (waiting on the counter row, say)
    await l.leases.use(hash);
    const slow = l.statements.at(-1)!;
    assert.ok(slow.take > 1, 'the slow statement counted a chunk, with numbers left for later requests');
    l.advance(150);
    await l.leases.use(hash);
    assert.equal(l.statements.length, l.statements.indexOf(slow) + 2, 'begun 1,050 ms ago: the lease has ended, although answered 150 ms ago');
  });

  it('forgetWorkspace drops the leases of the workspace\'s keys', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    for (let wave = 0; wave < 3; wave++) await Promise.all(Array.from({ length: 40 }, () => l.leases.use(hash)));
    await db.knex('workspaces').where({ id: 'ws_default' }).update({ name: 'Renamed' });
    l.leases.forgetWorkspace('ws_other');
    assert.notEqual((await l.leases.use(hash))?.workspace.name, 'Renamed', 'another workspace\'s change leaves the lease');
    l.leases.forgetWorkspace('ws_default');
    assert.equal((await l.leases.use(hash))?.workspace.name, 'Renamed');
  });

  it('a failed statement fails every request waiting on it at once (none retries after another), and the next request asks anew', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const l = leasesOn(db.knex);
    const hash = hashToken(key.token);
    l.failNext(1);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => l.leases.use(hash)));
    assert.deepEqual(results.map((r) => r.status), Array(5).fill('rejected'));
    assert.equal(l.statements.length, 1, 'one statement failed for all five');
    assert.equal((await l.leases.use(hash))?.windowCount, 1);
  });

  it('an unknown hash is null for every request waiting on its statement, and keeps no lease', async () => {
    const l = leasesOn(db.knex);
    const hash = hashToken('td_live_' + 'x'.repeat(40));
    assert.deepEqual(await Promise.all(Array.from({ length: 5 }, () => l.leases.use(hash))), [null, null, null, null, null]);
    assert.equal(l.statements.length, 1);
    assert.equal(l.leases.size(), 0);
  });

  it('the statement gives numbers back only to the window they were taken in', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 });
    const hash = hashToken(key.token);
    const chunk = (take: number, giveBack: AuthChunk['giveBack'] = null): AuthChunk => ({ waiting: 1, take, giveBack, defaultLimit: 600, reserve: RESERVE });
    const first = await apiKeyStore.authenticate(db.knex, hash, 60, chunk(10));
    assert.deepEqual([first?.windowCount, first?.taken], [10, 10]);
    const stale = new Date(first!.windowStart.getTime() - 60_000);
    assert.equal((await apiKeyStore.authenticate(db.knex, hash, 60, chunk(1, { windowStart: stale, count: 5 })))?.windowCount, 11);
    assert.equal((await apiKeyStore.authenticate(db.knex, hash, 60, chunk(1, { windowStart: first!.windowStart, count: 5 })))?.windowCount, 7);
  });

  it('the statement counts no chunk ahead that the shared count does not allow, whatever the replica asked for', async () => {
    const key = await makeKey(db.knex, t.services, { rateLimitPerMinute: 400 });
    const hash = hashToken(key.token);
    const ask = (waiting: number, take: number) => apiKeyStore.authenticate(db.knex, hash, 60, { waiting, take, giveBack: null, defaultLimit: 600, reserve: RESERVE });
    assert.equal((await ask(1, 50))?.taken, 50, 'far from the limit: the chunk asked for');
    // another replica counts up to 350 meanwhile; this one, still seeing 50, asks for 50 more
    assert.equal((await ask(300, 300))?.taken, 300);
    const late = await ask(2, 50);
    assert.deepEqual([late?.taken, late?.windowCount], [2, 352], 'within the reserve: only the two waiting requests');
    // and a key without a limit of its own is capped by the default limit passed in
    const plain = await makeKey(db.knex, t.services);
    const first = await apiKeyStore.authenticate(db.knex, hashToken(plain.token), 60, { waiting: 1, take: 1000, giveBack: null, defaultLimit: 600, reserve: RESERVE });
    assert.equal(first?.taken, Math.floor((600 - RESERVE) / 4));
  });
});
