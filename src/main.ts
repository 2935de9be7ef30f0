/**
 * Start-up: config → database (embedded or DATABASE_URL) → migrations → services →
 * HTTP + scheduler. SIGTERM/SIGINT stop them in reverse order.
 */
import type { Server } from 'node:http';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createServices } from './container.js';
import { openDatabase } from './db/database.js';
import { migrateLatest } from './db/migrate.js';
import { cleanupJob } from './jobs/cleanup-job.js';
import { createScheduler } from './jobs/scheduler.js';
import { systemClock } from './lib/clock.js';
import { createLogger } from './lib/logger.js';

function fail(message: string): never {
  process.stderr.write(`topicdesk: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(`configuration error: ${err.message}`);
    throw err;
  }
  const logger = createLogger(config.logLevel);

  const database = await openDatabase(config, logger).catch((err) => fail(`database: ${(err as Error).message}`));
  const db = database.knex;
  const applied = await migrateLatest(db).catch(async (err) => {
    await database.close();
    fail(`migrations failed: ${(err as Error).message}`);
  });
  if (applied.length) logger.info({ applied }, 'migrations applied');

  const deps = { config, db, logger, clock: systemClock };
  const services = createServices(deps);
  const app = createApp(deps, { services, processMetrics: true });
  const scheduler = createScheduler({
    db, logger,
    jobs: [cleanupJob({ schedule: config.jobs.idempotencyCleanup, idempotencyRetentionHours: config.idempotency.retentionHours })],
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  }).catch(async (err) => {
    await database.close();
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  }) as Server;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ url: `http://${config.host}:${port}` }, `topicdesk listening on http://${config.host}:${port}`);
  if (config.schedulerEnabled) scheduler.start();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    await scheduler.stop();
    await database.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => fail((err as Error)?.stack ?? String(err)));
