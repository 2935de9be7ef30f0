import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { createKnex, type Knex } from '../../src/db/knex.js';
import { MIGRATION_LOCK_ID, MigrationError, migrateLatest } from '../../src/db/migrate.js';
import { waitFor } from '../helpers/process.js';
import { createTestDatabase } from '../helpers/test-db.js';

const MIGRATIONS = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) => /^\d+_[\w-]+\.ts$/.test(f)).sort();

/** A new, empty (unmigrated) database on the test server. */
const emptyDatabase = () => createTestDatabase({ empty: true });

describe('migrations', function () {
  this.timeout(30_000);
  const knexes: Knex[] = [];
  const dbs: Array<{ drop(): Promise<void> }> = [];
  const open = (url: string, poolMax = 4) => { const k = createKnex(url, poolMax); knexes.push(k); return k; };

  afterEach(async () => {
    await Promise.all(knexes.splice(0).map((k) => k.destroy()));
    await Promise.all(dbs.splice(0).map((d) => d.drop()));
  });

  async function fresh(): Promise<string> {
    const db = await emptyDatabase();
    dbs.push(db);
    return db.url;
  }

  async function appliedNames(k: Knex): Promise<string[]> {
    return (await k('knex_migrations').select('name').orderBy('id')).map((r: { name: string }) => r.name);
  }

  async function advisoryLocksHeld(k: Knex): Promise<number> {
    const { rows } = await k.raw(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
    return rows[0].n;
  }

  it('applies every migration in name order to an empty database', async () => {
    const k = open(await fresh());
    const applied = await migrateLatest(k);
    assert.deepEqual(applied, MIGRATIONS);
    assert.deepEqual(await appliedNames(k), MIGRATIONS);
    const { rows } = await k.raw(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`);
    for (const table of ['workspaces', 'api_keys', 'idempotency_keys', 'rate_limit_counters', 'job_runs']) {
      assert.ok(rows.some((r: { table_name: string }) => r.table_name === table), `table ${table} exists`);
    }
  });

  it('creates the default live workspace ws_default', async () => {
    const k = open(await fresh());
    await migrateLatest(k);
    const rows = await k('workspaces').select('id', 'name', 'mode');
    assert.deepEqual(rows, [{ id: 'ws_default', name: 'Default', mode: 'live' }]);
  });

  it('applies nothing when run again', async () => {
    const k = open(await fresh());
    await migrateLatest(k);
    assert.deepEqual(await migrateLatest(k), []);
    assert.deepEqual(await migrateLatest(open(k.client.config.connection.connectionString)), []);
    assert.deepEqual(await appliedNames(k), MIGRATIONS);
    assert.equal((await k('workspaces').count('* as n'))[0].n, 1, 'seed rows are not inserted twice');
  });

  it('serialises replicas that migrate one fresh database at once: both succeed, the schema is applied once', async () => {
    const url = await fresh();
    const replicas = [open(url), open(url), open(url)];
    const results = await Promise.all(replicas.map((k) => migrateLatest(k)));
    const nonEmpty = results.filter((r) => r.length > 0);
    assert.equal(nonEmpty.length, 1, `exactly one replica applied migrations: ${JSON.stringify(results)}`);
    assert.deepEqual(nonEmpty[0], MIGRATIONS);
    assert.deepEqual(await appliedNames(replicas[0]), MIGRATIONS, 'knex_migrations lists each migration exactly once');
    assert.equal((await replicas[0]('workspaces').count('* as n'))[0].n, 1);
    assert.equal(await advisoryLocksHeld(replicas[0]), 0, 'the migration lock is released');
  });

  it('releases its pinned connection and lock so the pool stays usable', async () => {
    const k = open(await fresh(), 2);
    await migrateLatest(k);
    await migrateLatest(k);
    assert.equal(await advisoryLocksHeld(k), 0);
    // Both pool slots are free again: two concurrent queries complete.
    await Promise.all([k.raw('SELECT pg_sleep(0.05)'), k.raw('SELECT pg_sleep(0.05)')]);
  });

  it('is not blocked by a knex migration lock left behind by a crashed migrator', async () => {
    const k = open(await fresh());
    await migrateLatest(k);
    // A process killed mid-migration leaves knex's own lock row set.
    await k('knex_migrations_lock').update({ is_locked: 1 });
    assert.deepEqual(await migrateLatest(k), []);
    assert.equal((await k('knex_migrations_lock').first('is_locked')).is_locked, 0);
  });

  it('names a failing migration with PostgreSQL\'s reason, rolls back the whole batch, and releases the lock', async () => {
    const k = open(await fresh());
    await k.raw('CREATE TABLE api_keys (id int)'); // in the way of the second migration
    await assert.rejects(migrateLatest(k), (err: Error) => {
      assert.ok(err instanceof MigrationError);
      assert.equal(err.migration, MIGRATIONS[1]);
      assert.equal(err.message, `migration ${MIGRATIONS[1]} failed: relation "api_keys" already exists`);
      return true;
    });
    assert.deepEqual(await appliedNames(k), [], 'the batch runs in one transaction: none of it stays applied');
    assert.equal((await k.raw(`SELECT to_regclass('workspaces') AS t`)).rows[0].t, null);
    assert.equal(await advisoryLocksHeld(k), 0, 'the migration lock is released');
    await k.raw('DROP TABLE api_keys');
    assert.deepEqual(await migrateLatest(k), MIGRATIONS, 'the next start applies everything');
  });

  it('waits while another replica holds the migration lock, then finds what is left to do', async () => {
    const url = await fresh();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      const k = open(url);
      let settled = false;
      const run = migrateLatest(k).finally(() => { settled = true; });
      await waitFor('the second replica to queue on the lock', async () => {
        const { rows } = await holder.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
        return rows[0].n === 1;
      });
      assert.equal(settled, false, 'it waits rather than failing or migrating concurrently');
      const { rows } = await holder.query(`SELECT to_regclass('knex_migrations') AS t`);
      assert.equal(rows[0].t, null, 'nothing was applied while the lock was held elsewhere');
      await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
      assert.deepEqual(await run, MIGRATIONS);
    } finally {
      await holder.end();
    }
  });
});
