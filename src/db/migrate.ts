import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import { withSessionAdvisoryLock } from './advisory-lock.js';
import { postgresReason, unboundedKnex } from './knex.js';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

/** Any 64-bit number of our own; all replicas must agree on it. */
export const MIGRATION_LOCK_ID = 7_340_281_901;

/**
 * Lists the migrations in name order and imports them as ES modules: migrations/*.ts under tsx,
 * or their compiled dist/migrations/*.js (next to dist/src/db/migrate.js) under `npm start`.
 * Either way a migration is recorded by its .ts name, so both run against the same database.
 */
class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations() {
    return readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_[\w-]+\.[jt]s$/.test(f)).sort();
  }
  getMigrationName(file: string) {
    return file.replace(/\.js$/, '.ts');
  }
  async getMigration(file: string): Promise<Knex.Migration> {
    const m = (await import(pathToFileURL(path.join(MIGRATIONS_DIR, file)).href)) as Knex.Migration;
    const named = (step: (knex: Knex) => PromiseLike<unknown>) => async (knex: Knex) => {
      try {
        await step(knex);
      } catch (err) {
        throw new MigrationError(file, err);
      }
    };
    return { ...m, up: named(m.up), down: m.down && named(m.down) };
  }
}

/** A failed migration, named, with PostgreSQL's message (knex would prefix it with the whole SQL text). */
export class MigrationError extends Error {
  constructor(readonly migration: string, cause: unknown) {
    const reason = postgresReason(cause) ?? (cause as Error)?.message ?? String(cause);
    super(`migration ${migration} failed: ${reason.replace(/\s+/g, ' ').trim()}`, { cause });
    this.name = 'MigrationError';
  }
}

/**
 * Applies pending migrations. A session-level advisory lock on one pinned connection
 * serialises replicas that start at once: the second waits, then finds nothing to do.
 * (knex's own lock table would instead make it fail with "Migration table is already locked".)
 * Runs on two connections of its own (the pinned one holding the lock and one for knex)
 * without the per-statement bounds of `db`: DDL on a big table may rightly take minutes, and
 * a replica may wait as long for another's migrations.
 */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const unbounded = unboundedKnex(db, 2);
  try {
    return await withSessionAdvisoryLock(unbounded, MIGRATION_LOCK_ID, async () => {
      const migrationSource = new DirectoryMigrationSource();
      // We hold the advisory lock, so no other replica is migrating: a set knex lock row can
      // only be left by a migrator that died mid-run, and would fail every start from now on.
      await unbounded.migrate.forceFreeMigrationsLock({ migrationSource });
      const [, names] = await unbounded.migrate.latest({ migrationSource });
      return names as string[];
    });
  } finally {
    await unbounded.destroy();
  }
}
