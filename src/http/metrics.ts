import type { Middleware } from 'koa';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { Knex } from '../db/knex.js';
import type { Clock } from '../lib/clock.js';

export interface HttpMetrics {
  registry: Registry;
  middleware: Middleware;
  /** Reads the queue gauges: one query per scrape, run by /metrics before it renders. */
  refreshQueues(): Promise<void>;
}

/**
 * What background work reports as it happens (SLA sweep duration, job failures): kept in
 * memory by this replica (scrape each replica; sum the counters), so a scrape costs nothing.
 * Made by main.ts and handed to the app, which registers it.
 */
export interface OpsMetrics {
  /** The sla-sweep job's onSwept. */
  slaSwept(ms: number): void;
  /** The scheduler's onOutcome: a failed run counts as a job failure. */
  jobFinished(job: string, outcome: string): void;
  readonly collectors: Metric[];
}

export function createOpsMetrics(): OpsMetrics {
  const sweep = new Gauge({ name: 'topicdesk_sla_sweep_duration_seconds', help: 'How long the last SLA sweep run on this replica took', registers: [] });
  const failures = new Counter({ name: 'topicdesk_job_failures_total', help: 'Cron job runs that failed on this replica, by job', labelNames: ['job'], registers: [] });
  return {
    slaSwept: (ms) => sweep.set(ms / 1000),
    // inc by 0 on success: the job's series exists (at 0) from its first run, so rate() works.
    jobFinished: (job, outcome) => failures.inc({ job }, outcome === 'failed' ? 1 : 0),
    collectors: [sweep, failures],
  };
}

/** The queues' depths in one statement (sub-selects over the partial indexes of each queue). */
const QUEUES_SQL = `SELECT
  (SELECT count(*) FROM telegram_sends WHERE status IN ('queued', 'sending')) AS sends_pending,
  (SELECT min(created_at) FROM telegram_sends WHERE status IN ('queued', 'sending')) AS sends_oldest,
  (SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'failed')) AS webhooks_pending,
  (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead') AS webhooks_dead,
  (SELECT count(*) FROM telegram_updates WHERE processed_at IS NULL) AS updates_pending`;

/**
 * A registry per app (tests run several apps in one process), with request counts and
 * latencies by route, the queue gauges (SPEC §6) and the ops metrics.
 */
export function createHttpMetrics(opts: { processMetrics: boolean; db: Knex; clock: Clock; ops?: OpsMetrics }): HttpMetrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'topicdesk_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'topicdesk_http_request_duration_seconds',
    help: 'HTTP request latency by method and route template',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
  const sendsPending = gauge('topicdesk_telegram_sends_pending', 'Telegram calls queued or in flight');
  const sendsOldest = gauge('topicdesk_telegram_sends_oldest_pending_seconds', 'Age of the oldest Telegram call queued or in flight (0 when none)');
  const webhooksPending = gauge('topicdesk_webhook_deliveries_pending', 'Webhook deliveries waiting for a first or next attempt');
  const webhooksDead = gauge('topicdesk_webhook_deliveries_dead', 'Webhook deliveries with no automatic attempt left');
  const updatesPending = gauge('topicdesk_telegram_updates_pending', 'Telegram updates received and not yet handled');
  for (const m of (opts.ops ?? createOpsMetrics()).collectors) registry.registerMetric(m);

  // Each method, route and status's pair of series, looked up once: prom-client validates and
  // hashes a label object on every observe()/inc() otherwise. Bounded like the labels themselves.
  const children = new Map<string, { observe(seconds: number): void }>();
  const series = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) {
      const timing = duration.labels({ method, route });
      const count = requests.labels({ method, route, status: String(status) });
      child = { observe(seconds) { timing.observe(seconds); count.inc(); } };
      children.set(key, child);
    }
    return child;
  };

  return {
    registry,
    async refreshQueues() {
      try {
        const r = (await opts.db.raw(QUEUES_SQL)).rows[0];
        sendsPending.set(Number(r.sends_pending));
        sendsOldest.set(r.sends_oldest ? Math.max(0, (opts.clock.now().getTime() - new Date(r.sends_oldest).getTime()) / 1000) : 0);
        webhooksPending.set(Number(r.webhooks_pending));
        webhooksDead.set(Number(r.webhooks_dead));
        updatesPending.set(Number(r.updates_pending));
      } catch {
        // Database unreachable: say "unknown" (NaN) rather than a stale figure, and keep the rest of the scrape.
        for (const g of [sendsPending, sendsOldest, webhooksPending, webhooksDead, updatesPending]) g.set(NaN);
      }
    },
    async middleware(ctx, next) {
      const started = process.hrtime.bigint();
      try {
        await next();
      } finally {
        // The route template, never the raw path: ids must not explode label cardinality.
        const route: string = (ctx as any)._matchedRoute ?? 'unmatched';
        series(ctx.method, route, ctx.status).observe(Number(process.hrtime.bigint() - started) / 1e9);
      }
    },
  };
}
