import assert from 'node:assert/strict';
import pg from 'pg';
import { createKnex, type Knex } from '../../src/db/knex.js';
import { inTransaction, sendWithCommit, together } from '../../src/db/transaction.js';
import { makeKey } from '../helpers/factories.js';
import { createTestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

/**
 * Records, while `fn` runs, when each statement is handed to node-pg and when its answer comes
 * back: "sent X" / "answered X", X the statement's first word (or a label from its text).
 */
async function wire(fn: (log: readonly string[]) => Promise<unknown>): Promise<{ log: string[]; error?: unknown }> {
  const log: string[] = [];
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const label = (config: unknown) => {
    const text = typeof config === 'string' ? config : (config as { text?: string })?.text ?? '';
    return text.match(/\/\* (\w+) \*\//)?.[1] ?? text.trim().split(/\s+/)[0].replace(/;$/, '').toUpperCase();
  };
  proto.query = function (this: unknown, ...args: unknown[]) {
    const name = label(args[0]);
    log.push(`sent ${name}`);
    // Logged in node-pg's own callback, as the answer is read (a promise's then would run later).
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last] as (err: unknown, r: unknown) => void;
      args[last] = (err: unknown, r: unknown) => { log.push(`answered ${name}`); callback(err, r); };
      return original.apply(this, args);
    }
    return new Promise((resolve, reject) => {
      original.call(this, ...args, (err: unknown, r: unknown) => {
        log.push(`answered ${name}`);
        if (err) reject(err);
        else resolve(r);
      });
    });
  };
  try {
    await fn(log);
    return { log };
  } catch (error) {
    return { log, error };
  } finally {
    proto.query = original;
  }
}

/** Counts the socket writes of the one connection of a pool made with poolMax 1 (opened now if need be). */
async function countSocketWrites(pool: Knex): Promise<{ count: number }> {
  const conn = await pool.client.acquireConnection() as { connection: { stream: Record<string, (...a: unknown[]) => unknown> } };
  await pool.client.releaseConnection(conn);
  const stream = conn.connection.stream;
  const writes = { count: 0 };
  for (const method of ['_write', '_writev']) {
    const original = stream[method];
    stream[method] = function (this: unknown, ...args: unknown[]) { writes.count++; return original.apply(this, args); };
  }
  return writes;
}

describe('pipelined transactions (src/db/pipelined-pg.ts)', () => {
  const db = useTestDatabase();
  before(async () => {
    await db.knex.raw('CREATE TABLE pipe_rows (id int PRIMARY KEY, note text NOT NULL)');
  });
  beforeEach(async () => { await db.knex.raw('TRUNCATE pipe_rows'); });
  const rows = async () => (await db.knex('pipe_rows').orderBy('id')).map((r: { id: number }) => r.id);

  it('sends the first statement behind BEGIN before BEGIN is answered: one round trip for both', async () => {
    const { log, error } = await wire(() => inTransaction(db.knex, async (trx) => { await trx.raw('SELECT /* first */ 1'); }));
    assert.equal(error, undefined);
    assert.deepEqual(log.slice(0, 2), ['sent BEGIN', 'sent first']);
    assert.ok(log.indexOf('sent first') < log.indexOf('answered BEGIN'), log.join(', '));
  });

  it('sends a sendWithCommit statement right before COMMIT, in the same round trip, and keeps its write', async () => {
    const { log, error } = await wire(() => inTransaction(db.knex, async (trx) => {
      await trx('pipe_rows').insert({ id: 1, note: 'work' });
      await sendWithCommit(trx, 'pipe_test_save', 'INSERT /* save */ INTO pipe_rows (id, note) VALUES (?, ?)', [2, 'saved']);
    }));
    assert.equal(error, undefined);
    const tail = log.slice(log.indexOf('sent save'));
    assert.deepEqual(tail, ['sent save', 'sent COMMIT', 'answered save', 'answered COMMIT']);
    assert.deepEqual(await rows(), [1, 2]);
  });

  it('a sendWithCommit statement that fails fails the transaction with its error, and nothing of it is kept', async () => {
    await db.knex('pipe_rows').insert({ id: 7, note: 'there before' });
    const { error } = await wire(() => inTransaction(db.knex, async (trx) => {
      await trx('pipe_rows').insert({ id: 1, note: 'work' });
      await sendWithCommit(trx, 'pipe_test_clash', 'INSERT INTO pipe_rows (id, note) VALUES (?, ?)', [7, 'clash']);
    }));
    assert.equal((error as { code?: string })?.code, '23505', `expected the unique violation, got ${String(error)}`);
    assert.deepEqual(await rows(), [7]);
  });

  it('a rollback drops a queued sendWithCommit statement: it is never sent', async () => {
    const { log } = await wire(() => inTransaction(db.knex, async (trx) => {
      await trx('pipe_rows').insert({ id: 1, note: 'work' });
      await sendWithCommit(trx, 'pipe_test_dropped', 'INSERT /* dropped */ INTO pipe_rows (id, note) VALUES (?, ?)', [2, 'x']);
      throw new Error('changed my mind');
    }));
    assert.ok(!log.includes('sent dropped'), log.join(', '));
    assert.deepEqual(await rows(), []);
    // The connection is clean for the next transaction (nothing queued was left behind).
    await inTransaction(db.knex, async (trx) => { await trx('pipe_rows').insert({ id: 3, note: 'next' }); });
    assert.deepEqual(await rows(), [3]);
  });

  it('in a savepoint sendWithCommit runs at once, and the savepoint keeps its usual meaning', async () => {
    const { error } = await wire((log) => inTransaction(db.knex, async (trx) => {
      await inTransaction(trx, async (sp) => {
        await sendWithCommit(sp, 'pipe_test_nested', 'INSERT /* nested */ INTO pipe_rows (id, note) VALUES (?, ?)', [1, 'nested']);
        assert.equal(log.at(-1), 'answered nested', 'answered before the savepoint ends');
      });
      await inTransaction(trx, async (sp) => {
        await sp('pipe_rows').insert({ id: 2, note: 'undone' });
        throw new Error('undo this savepoint only');
      }).catch(() => undefined);
    }));
    assert.equal(error, undefined);
    assert.deepEqual(await rows(), [1]);
  });

  it('statements sent in one burst leave in one socket write: BEGIN + first statement, a together, a statement + COMMIT', async () => {
    const one = createKnex(db.current.url, 1);
    try {
      await one.raw('SELECT 1');
      const writes = await countSocketWrites(one);
      await inTransaction(one, async (trx) => {
        await trx.raw('SELECT 1');
        await together(trx.raw('SELECT 2'), trx.raw('SELECT 3'));
        await sendWithCommit(trx, 'pipe_test_burst', 'SELECT ?::int', [4]);
      });
      assert.equal(writes.count, 3);
    } finally {
      await one.destroy();
    }
  });

  it('a statement node-pg refuses before sending it (its name taken by another text) fails the transaction, saying it committed without it', async () => {
    const one = createKnex(db.current.url, 1);
    try {
      await one.raw('SELECT 1').options({ name: 'pipe_test_taken' });
      const error = await inTransaction(one, async (trx) => {
        await trx('pipe_rows').insert({ id: 1, note: 'work' });
        await sendWithCommit(trx, 'pipe_test_taken', 'SELECT 2', []);
      }).then(() => null, (err: Error) => err);
      assert.match(String(error?.message), /committed without a statement sent with its COMMIT/);
      assert.deepEqual(await rows(), [1], 'what it says: the work was committed');
    } finally {
      await one.destroy();
    }
  });

  it('sendWithCommit refuses a value node-pg could not send, before anything is queued, and on an ended transaction', async () => {
    const unsendable = { toPostgres() { throw new Error('cannot be sent (planted)'); } };
    await assert.rejects(inTransaction(db.knex, async (trx) => {
      await trx('pipe_rows').insert({ id: 1, note: 'work' });
      await sendWithCommit(trx, 'pipe_test_unsendable', 'SELECT ?::text', [unsendable as never]);
    }), /cannot be sent \(planted\)/);
    assert.deepEqual(await rows(), []);
    let ended: Parameters<Parameters<typeof inTransaction>[1]>[0] | undefined;
    await inTransaction(db.knex, async (trx) => { ended = trx; });
    await assert.rejects(sendWithCommit(ended!, 'pipe_test_late', 'SELECT 1', []), /already ended/);
  });

  it('POST /v1/tickets with an Idempotency-Key reaches PostgreSQL in 5 writes: the key, then 4 round trips (README)', async () => {
    const one = createKnex(db.current.url, 1);
    try {
      const t = createTestApp(one);
      const key = await makeKey(one, t.services);
      const contact = await t.request.post('/v1/contacts').set('Authorization', key.auth).send({ name: 'Round trips', email: 'round-trips@example.com' }).expect(201);
      await new Promise((r) => setTimeout(r, 1100)); // past the key's lease: the auth statement is sent too
      const writes = await countSocketWrites(one);
      await t.request.post('/v1/tickets').set('Authorization', key.auth).set('Idempotency-Key', 'round-trips-1')
        .send({ contact_id: contact.body.id, subject: 'Counted' }).expect(201);
      // auth · BEGIN + key lock + key read · contact + SLA policy · numbered insert · stored response + COMMIT
      assert.equal(writes.count, 5);
    } finally {
      await one.destroy();
    }
  });

  it('a BEGIN that failed fails the transaction', async () => {
    const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      if ((args[0] as { text?: string })?.text === 'BEGIN;') return Promise.reject(Object.assign(new Error('BEGIN refused (planted)'), { code: '08006' }));
      return original.apply(this, args);
    };
    try {
      // The connection is closed at once: the statement behind BEGIN fails, and so does the transaction.
      await assert.rejects(inTransaction(db.knex, async (trx) => { await trx.raw('SELECT 1'); }));
    } finally {
      proto.query = original;
    }
  });

  it('together: independent statements go out together; the error thrown is the real one, not the aborted-transaction echo', async () => {
    const { log, error } = await wire(() => inTransaction(db.knex, async (trx) => {
      const [a, b] = await together(trx.raw('SELECT /* one */ 1 AS n'), trx.raw('SELECT /* two */ 2 AS n'));
      assert.deepEqual([a.rows[0].n, b.rows[0].n], [1, 2]);
    }));
    assert.equal(error, undefined);
    const one = log.indexOf('answered one');
    assert.ok(log.indexOf('sent two') < one, `"two" was sent before "one" was answered: ${log.join(', ')}`);

    // The failing statement goes out first; the one listed before it is refused as an echo (25P02).
    await assert.rejects(inTransaction(db.knex, async (trx) => {
      const bad = trx.raw('SELECT 1 / (SELECT count(*) FROM pipe_rows)').then((r) => r);
      const echo = trx.raw('SELECT 1').then((r) => r);
      await together(echo, bad);
    }), (err: { code?: string }) => err.code === '22012');
  });
});
