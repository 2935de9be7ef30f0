/**
 * Once per test run: a PostgreSQL server (embedded, or TEST_DATABASE_URL / DATABASE_URL),
 * and a template database with every migration applied. Each test file then clones the
 * template (CREATE DATABASE … TEMPLATE, ~50 ms) so files never see each other's rows.
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { createKnex } from '../../src/db/knex.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { freePort } from '../helpers/process.js';

process.env.NODE_ENV = 'test';

let embedded: EmbeddedPostgres | null = null;
let tmpDir: string | null = null;


function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function mochaGlobalSetup(): Promise<void> {
  const external = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  let adminUrl: string;
  if (external) {
    adminUrl = external;
  } else {
    tmpDir = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-test-'));
    chmodSync(tmpDir, 0o755); // the postgres user must reach it when we run as root
    embedded = await startEmbeddedPostgres({ dir: tmpDir, port: await freePort(), fast: true });
    adminUrl = embedded.adminUrl;
  }
  const run = `${process.pid}_${Date.now().toString(36)}`;
  const template = `td_tpl_${run}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  const knex = createKnex(withDatabase(adminUrl, template), 2);
  await migrateLatest(knex);
  await knex.destroy();
  process.env.TOPICDESK_TEST_ADMIN_URL = adminUrl;
  process.env.TOPICDESK_TEST_TEMPLATE = template;
  process.env.TOPICDESK_TEST_RUN = run;
  // Child processes started by tests (the CLI, main) use the same server.
  process.env.TOPICDESK_TEST_SERVER_URL = adminUrl;
}

export async function mochaGlobalTeardown(): Promise<void> {
  const adminUrl = process.env.TOPICDESK_TEST_ADMIN_URL;
  if (adminUrl) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    const { rows } = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`td_%${process.env.TOPICDESK_TEST_RUN}%`]);
    for (const { datname } of rows) {
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`).catch(() => undefined);
    }
    await admin.end();
  }
  await embedded?.stop();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
}
