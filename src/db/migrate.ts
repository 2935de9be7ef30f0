import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

/** Any 64-bit number of our own; all replicas must agree on it. */
export const MIGRATION_LOCK_ID = 7_340_281_901;

/** Lists migrations/*.ts in name order and imports them as ES modules. */
class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations() {
    return readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_[\w-]+\.ts$/.test(f)).sort();
  }
  getMigrationName(file: string) {
    return file;
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
    let reason = (cause as Error)?.message ?? String(cause);
    const sqlState = (cause as { code?: unknown })?.code;
    if (typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState) && reason.includes(' - ')) {
      reason = reason.slice(reason.lastIndexOf(' - ') + 3);
    }
    super(`migration ${migration} failed: ${reason.replace(/\s+/g, ' ').trim()}`, { cause });
    this.name = 'MigrationError';
  }
}

/**
 * Applies pending migrations. A session-level advisory lock on one pinned connection
 * serialises replicas that start at once: the second waits, then finds nothing to do.
 * (knex's own lock table would instead make it fail with "Migration table is already locked".)
 * Needs two pool connections: the pinned one holding the lock and one for knex.
 */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const conn = await db.client.acquireConnection();
  try {
    await conn.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      const migrationSource = new DirectoryMigrationSource();
      // We hold the advisory lock, so no other replica is migrating: a set knex lock row can
      // only be left by a migrator that died mid-run, and would fail every start from now on.
      await db.migrate.forceFreeMigrationsLock({ migrationSource });
      const [, applied] = await db.migrate.latest({ migrationSource });
      return applied as string[];
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch((err: unknown) => {
        // Never pool a session that may still hold the lock: every replica would wait on it.
        (conn as { __knex__disposed?: unknown }).__knex__disposed = err;
      });
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}
