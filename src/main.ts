/**
 * Start-up: config → database (embedded or DATABASE_URL) → migrations → services →
 * HTTP + scheduler. SIGTERM/SIGINT stop them in reverse order — also during start-up,
 * once the step in progress has finished. Start-up failures: exit 1, one line on stderr.
 *
 * `npm start` runs this compiled (scripts/build.mjs → dist/src/main.js) with
 * `--max-old-space-size=1024`. The cap is far above the live heap (~40–60 MB under load), and
 * it is there for what it does to V8's heap growth: with the default limit (a few GB here) V8
 * lets the old generation grow to up to 4× the live data before a full collection, which under
 * benchmark load meant ~125 MB of old space and ~230–240 MB RSS; with a 1 GB limit the factor is
 * about 1.6 (~50–60 MB of old space, ~150–160 MB RSS), for some more, short, full collections.
 */
import type { Server } from 'node:http';
import path from 'node:path';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createServices } from './container.js';
import { openDatabase, type Database } from './db/database.js';
import { migrateLatest } from './db/migrate.js';
import { cleanupJob } from './jobs/cleanup-job.js';
import { autoCloseJob } from './tickets/auto-close-job.js';
import { slaSweepJob } from './sla/sla-sweep-job.js';
import { createScheduler, type Scheduler } from './jobs/scheduler.js';
import type { QueueWorker } from './jobs/queue-worker.js';
import { createAssignmentWorker } from './assignment/assignment-worker.js';
import { createEscalationWorker } from './escalation/escalation-worker.js';
import { escalationSweepJob } from './escalation/escalation-sweep-job.js';
import { digestJob } from './digest/digest-job.js';
import { drainable, type Drainable } from './http/drain.js';
import { createOpsMetrics } from './http/metrics.js';
import { createHttpServer } from './http/server.js';
import { systemClock } from './lib/clock.js';
import { bufferedStdout, createLogger } from './lib/logger.js';
import { createWebhookWorker, type WebhookWorker } from './webhooks/webhook-worker.js';
import { createTelegram, type Telegram } from './telegram/telegram.js';
import { createSessionLocks, type SessionLocks } from './db/session-locks.js';

/** How long shutdown waits for in-flight requests before closing their connections. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Which database this is, for the start-up line: host and name, never the user's password. */
function describeDatabase(config: Config): { kind: 'embedded'; data_dir: string } | { kind: 'external'; host: string; database: string } {
  if (!config.databaseUrl) return { kind: 'embedded', data_dir: path.resolve(config.dataDir, 'postgres') };
  const u = new URL(config.databaseUrl);
  return { kind: 'external', host: `${u.hostname}:${u.port || '5432'}`, database: decodeURIComponent(u.pathname.slice(1)) || '(default)' };
}

/** Start-up failure: exit 1 with one line on stderr (messages from drivers may span lines). */
function fail(message: string): never {
  process.stderr.write(`topicdesk: ${message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
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
  const logger = createLogger(config.logLevel, bufferedStdout());
  // pino writes stdout asynchronously: flush first, or the last lines (say "stopped") are lost.
  const exit = (code: number): Promise<never> => new Promise(() => logger.flush(() => process.exit(code)));

  // What has started so far; a signal stops exactly that, in reverse order.
  let database: Database | undefined;
  let http: Drainable | undefined;
  let scheduler: Scheduler | undefined;
  let webhookWorker: WebhookWorker | undefined;
  let assignmentWorker: QueueWorker | undefined;
  let escalationWorker: QueueWorker | undefined;
  let telegram: Telegram | undefined;
  let locks: SessionLocks | undefined;
  let started = false;
  let stopping = false;

  const shutdown = async (): Promise<never> => {
    try {
      // Let in-flight requests finish (and take no more); after a grace period, cut what lingers.
      await http?.drain(SHUTDOWN_GRACE_MS);
      await telegram?.stop();
      await scheduler?.stop();
      await webhookWorker?.stop();
      await assignmentWorker?.stop();
      await escalationWorker?.stop();
      await locks?.close();
      await database?.close();
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      return exit(1);
    }
    logger.info('stopped');
    return exit(0);
  };
  // Installed before anything starts: a SIGTERM during start-up (say while the embedded
  // PostgreSQL initialises) must not kill us and orphan the database. Start-up finishes its
  // current step, then stops instead of carrying on.
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      void exit(1);
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    if (started) void shutdown();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // detached: a Ctrl-C in the terminal reaches only us; we stop the embedded server last.
  database = await openDatabase(config, logger, { detached: true }).catch((err) => fail(`database: ${(err as Error).message}`));
  if (stopping) return shutdown();
  const opened = database;
  closeOnCrash = () => opened.close();
  const db = opened.knex;
  const applied = await migrateLatest(db).catch(async (err) => {
    await opened.close();
    fail(`migrations failed: ${(err as Error).message}`);
  });
  if (applied.length) logger.info({ applied }, 'migrations applied');
  if (stopping) return shutdown();

  const deps = { config, db, logger, clock: systemClock };
  const services = createServices(deps);
  // One connection per replica for the long-held advisory locks: the bots' pollers' and the cron jobs'.
  locks = createSessionLocks(db, logger);
  const tg = createTelegram({ config, db, logger, clock: systemClock, services, locks });
  const ops = createOpsMetrics();
  const app = createApp(deps, { services, processMetrics: true, ops, onTelegramUpdate: () => tg.updates.wake() });
  scheduler = createScheduler({
    db, logger, locks, onOutcome: ops.jobFinished,
    jobs: [
      cleanupJob({
        schedule: config.jobs.cleanup,
        idempotencyRetentionHours: config.idempotency.retentionHours,
        webhookDeliveryRetentionDays: config.webhooks.deliveryRetentionDays,
      }),
      autoCloseJob({ schedule: config.jobs.autoClose, tickets: services.tickets }),
      slaSweepJob({ schedule: config.jobs.slaSweep, sla: services.sla, onSwept: ops.slaSwept }),
      escalationSweepJob({ schedule: config.jobs.escalationSweep, escalations: services.escalations, lookbackMs: config.escalation.firstSweepLookbackSeconds * 1000 }),
      digestJob({ schedule: config.jobs.digest, digest: services.digest }),
    ],
  });
  webhookWorker = createWebhookWorker({ db, logger, clock: systemClock, config: config.webhooks, webhooks: services.webhooks });
  assignmentWorker = createAssignmentWorker({ db, logger, clock: systemClock, assignment: services.assignment, listenUrl: opened.url });
  escalationWorker = createEscalationWorker({ db, logger, clock: systemClock, escalations: services.escalations });

  const server = await new Promise<Server>((resolve, reject) => {
    // Parser refusals (a malformed request line, oversized headers) answer problem+json too.
    const s = createHttpServer(app.callback(), logger).listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  }).catch(async (err) => {
    await opened.close();
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  });
  http = drainable(server);
  if (stopping) return shutdown();
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ url: `http://${config.host}:${port}` }, `topicdesk listening on http://${config.host}:${port}`);
  // Background work (cron jobs, webhook delivery, the Telegram bots and send queue) can be left to other replicas.
  if (config.schedulerEnabled) {
    scheduler.start();
    webhookWorker.start();
    assignmentWorker.start();
    escalationWorker.start();
    telegram = tg;
    await tg.start().catch((err) => logger.error({ err }, 'starting the Telegram bots failed'));
  }
  const baseUrl = `http://${config.host}:${port}`;
  const bots = config.schedulerEnabled ? await services.accounts.listRunnable(db).catch(() => []) : [];
  const telegramMode = !config.schedulerEnabled ? 'off (SCHEDULER_ENABLED=false: another replica runs the bots)'
    : bots.length === 0 ? 'none' : config.telegram.webhookUrl ? 'webhook' : 'polling';
  // Before the start-up line: whoever waits for that line has seen the warning too.
  if (config.webhooks.allowPrivateTargets) {
    logger.warn('WEBHOOK_ALLOW_PRIVATE_TARGETS is on: webhook endpoints may be loopback, private-network or plain-http addresses; for local development only');
  }
  const dbInfo = describeDatabase(config);
  // One line an operator can read to see what is on; ids and usernames only: never a token or password.
  logger.info({
    http: baseUrl, docs: `${baseUrl}/docs`, database: dbInfo,
    telegram: { mode: telegramMode, bots: bots.map((b) => ({ account_id: b.id, username: b.botUsername })) },
    background_work: config.schedulerEnabled,
  }, `topicdesk is up: HTTP ${baseUrl}, docs ${baseUrl}/docs, database ${dbInfo.kind === 'embedded' ? `embedded (data in ${dbInfo.data_dir})` : `external (${dbInfo.host}/${dbInfo.database})`}, Telegram ${bots.length ? `${bots.length} bot${bots.length > 1 ? 's' : ''}, ${telegramMode}` : telegramMode}`);
  started = true;
  // A signal that came during the last awaits found start-up unfinished and left the stop to us.
  if (stopping) await shutdown();
}

/** Closes the database (and stops the embedded server) if a crash happens after it opened. */
let closeOnCrash: (() => Promise<void>) | undefined;

main().catch(async (err) => {
  // A bug, not an operator error: keep the stack, but never leave an embedded PostgreSQL behind.
  await closeOnCrash?.().catch(() => undefined);
  process.stderr.write(`topicdesk: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
