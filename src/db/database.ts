import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../lib/logger.js';
import { createKnex, type Knex } from './knex.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';

export interface Database {
  readonly knex: Knex;
  /** Its connection string (for the few things that need a connection of their own: LISTEN). */
  readonly url: string;
  /** Closes the pool, then stops the embedded server if we started one. */
  close(): Promise<void>;
}

/** knex's own warnings and errors, into our log. */
const knexLog = (logger: Logger) => ({
  warn: (msg: unknown) => logger.warn({ knex: String(msg) }, 'database warning'),
  error: (msg: unknown) => logger.error({ knex: String(msg) }, 'database error'),
});

/**
 * DATABASE_URL when set; otherwise an embedded PostgreSQL under TOPICDESK_DATA_DIR.
 * `detached`: see EmbeddedPostgresOptions (the service sets it; the CLI does not).
 */
export async function openDatabase(config: Config, logger: Logger, opts: { attachIfRunning?: boolean; detached?: boolean } = {}): Promise<Database> {
  if (config.databaseUrl) {
    const knex = createKnex(config.databaseUrl, 10, knexLog(logger), config.database);
    return { knex, url: config.databaseUrl, close: () => knex.destroy() };
  }
  const dir = path.join(config.dataDir, 'postgres');
  logger.info({ dir, port: config.embeddedPgPort }, 'starting embedded PostgreSQL');
  const server = await startEmbeddedPostgres({
    dir,
    port: config.embeddedPgPort,
    attachIfRunning: opts.attachIfRunning,
    detached: opts.detached,
    configuredAs: `TOPICDESK_DATA_DIR=${config.dataDir}`, // the directory as the operator set it, not ours under it
    onLog: (line) => logger.debug({ postgres: line }),
    onWarning: (msg) => logger.warn(msg),
  });
  const knex = createKnex(server.url, 10, knexLog(logger), config.database);
  return {
    knex,
    url: server.url,
    async close() {
      await knex.destroy();
      await server.stop();
    },
  };
}
