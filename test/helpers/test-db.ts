import pg from 'pg';
import { createKnex, type Knex } from '../../src/db/knex.js';

let counter = 0;

export interface TestDatabase {
  knex: Knex;
  url: string;
  name: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A fresh, fully migrated database cloned from the run's template; with `empty`, a bare
 * database with no schema (for migration and start-up tests). The global teardown drops
 * every database of the run, so a test that forgets drop() leaks nothing.
 */
export async function createTestDatabase(opts: { empty?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = process.env.TOPICDESK_TEST_ADMIN_URL!;
  const template = process.env.TOPICDESK_TEST_TEMPLATE!;
  if (!adminUrl || !template) throw new Error('test/setup/global.ts did not run (use npm test)');
  const name = `td_t_${process.env.TOPICDESK_TEST_RUN}_${++counter}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(opts.empty ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const knex = createKnex(url, 20);
  return {
    knex,
    url,
    name,
    async drop() {
      await knex.destroy();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await a.end();
    },
  };
}

/** Registers before/after hooks: one database for the whole describe block. */
export function useTestDatabase(): { readonly current: TestDatabase; readonly knex: Knex } {
  let db: TestDatabase | undefined;
  before(async () => { db = await createTestDatabase(); });
  after(async () => { await db?.drop(); });
  return {
    get current() { return db!; },
    get knex() { return db!.knex; },
  };
}
