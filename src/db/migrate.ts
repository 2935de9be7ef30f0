import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

/** Any 64-bit number of our own; all replicas must agree on it. */
const MIGRATION_LOCK_ID = 7_340_281_901;

/** Lists migrations/*.ts in name order and imports them as ES modules. */
class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations() {
    return readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_[\w-]+\.ts$/.test(f)).sort();
  }
  getMigrationName(file: string) {
    return file;
  }
  async getMigration(file: string) {
    return (await import(pathToFileURL(path.join(MIGRATIONS_DIR, file)).href)) as Knex.Migration;
  }
}

/**
 * Applies pending migrations. A session-level advisory lock on one pinned connection
 * serialises replicas that start at once: the second waits, then finds nothing to do.
 * (knex's own lock table would instead make it fail with "Migration table is already locked".)
 */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const conn = await db.client.acquireConnection();
  try {
    await conn.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      const [, applied] = await db.migrate.latest({ migrationSource: new DirectoryMigrationSource() });
      return applied as string[];
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  } finally {
    await db.client.releaseConnection(conn);
  }
}
