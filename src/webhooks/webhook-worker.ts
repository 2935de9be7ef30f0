/**
 * Delivers webhooks: a fan-out loop (events outbox → deliveries) and a delivery loop
 * (claim due deliveries → POST → record), in every replica at once. Nothing is held in
 * memory that another replica would need: a delivery is claimed in the database with a
 * lease, so a replica that dies mid-delivery only delays it (at-least-once; the receiver
 * dedupes on webhook-id).
 *
 * Concurrency: at most `concurrency` deliveries in flight per process. A claim takes at most
 * `concurrencyPerEndpoint` rows, and an endpoint with that many in flight is skipped by the
 * next claims, so one slow receiver holds at most about twice its share, never every slot.
 *
 * Both loops are the queue-worker primitive (src/jobs/queue-worker.ts): fan-out without `run`
 * (its claim step writes the deliveries; a full batch means look again at once), deliveries
 * with `run` (the claim takes the free slots up to one endpoint's share, a full worker waits
 * for a quarter of its slots, and a skipped endpoint down to half its share wakes the loop).
 */
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { createQueueWorker } from '../jobs/queue-worker.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { deliveryQueue, type ClaimedDelivery } from './delivery-queue.js';
import { judge, retryDelayMs, type AttemptResult } from './retry-policy.js';
import { createWebhookSender, type WebhookSender } from './webhook-sender.js';
import type { WebhookService } from './webhook-service.js';
import { signatureHeaders } from './webhook-signing.js';
import { signingSecrets, toEndpoint } from './webhook-store.js';

/** A claim outlives the attempt's time budget by this much before another worker may take it. */
const LEASE_MARGIN_MS = 20_000;
/** After a database error, a loop waits this long before trying again. */
const ERROR_BACKOFF_MS = 1_000;

export interface WebhookWorker {
  start(): void;
  /** Stops claiming, and waits for the attempts in flight to be recorded. */
  stop(): Promise<void>;
  /**
   * One whole pass, for tests and tools: fans out every queued event, then attempts every
   * delivery due now and waits for the outcomes.
   */
  drain(): Promise<{ events: number; attempts: number }>;
}

export interface WorkerDeps {
  db: Knex;
  logger: Logger;
  clock: Clock;
  config: Config['webhooks'];
  webhooks: WebhookService;
  /** Defaults to a real sender built from config (tests inject DNS answers through their own). */
  sender?: WebhookSender;
  /** The jitter's randomness (tests pin it). */
  random?: () => number;
}

/** The JSON body of a delivery (SPEC §7): `previous` and `details` only when the event has them. */
export function deliveryBody(d: Pick<ClaimedDelivery, 'eventId' | 'eventType' | 'eventCreatedAt' | 'workspaceId' | 'payload' | 'previous' | 'details'>): string {
  return JSON.stringify({
    id: d.eventId, event: d.eventType, created_at: d.eventCreatedAt.toISOString(), workspace_id: d.workspaceId, data: d.payload,
    ...(d.previous != null ? { previous: d.previous } : {}),
    ...(d.details != null ? { details: d.details } : {}),
  });
}

export function createWebhookWorker(deps: WorkerDeps): WebhookWorker {
  const { db, clock, config, webhooks } = deps;
  const logger = deps.logger.child({ component: 'webhooks' });
  const random = deps.random ?? Math.random;
  const ownsSender = !deps.sender;
  const sender = deps.sender ?? createWebhookSender({
    allowPrivateTargets: config.allowPrivateTargets,
    timeoutMs: config.timeoutMs,
    maxSocketsPerHost: config.concurrency,
  });

  /** The attempt log entry for a result. */
  const logEntry = (started: Date, result: AttemptResult, error: string | null) => ({
    at: started.toISOString(),
    status_code: result.statusCode,
    duration_ms: result.durationMs,
    error,
    response_excerpt: result.excerpt,
  });

  async function attempt(d: ClaimedDelivery): Promise<void> {
    const started = clock.now();
    if (d.scheduleStep > config.retryScheduleSeconds.length) {
      // Every scheduled attempt was lost (no outcome recorded in time): give up without sending
      // again. Our failure, not the endpoint's: its failure streak is left alone.
      const error = 'given up: no outcome was recorded for any scheduled attempt';
      await deliveryQueue.recordAttempt(db, d, {
        status: 'dead', scheduleStep: d.scheduleStep, nextAttemptAt: null, now: started,
        attempt: logEntry(started, { statusCode: null, durationMs: 0, error, excerpt: null, retryAfterSeconds: null }, error),
      });
      return;
    }
    if (!config.allowPrivateTargets && new URL(d.url).protocol !== 'https:') {
      // Registered while plain http was allowed (WEBHOOK_ALLOW_PRIVATE_TARGETS), sent after it no longer is.
      await record(d, started, { statusCode: null, durationMs: 0, excerpt: null, retryAfterSeconds: null, error: 'plain http is refused: the endpoint must use https' });
      return;
    }
    const body = deliveryBody(d);
    const headers = {
      ...signatureHeaders(signingSecrets(d, started), { id: d.eventId, timestamp: Math.floor(started.getTime() / 1000), body }),
      'x-topicdesk-event': d.eventType,
      'x-topicdesk-delivery': d.id,
    };
    const result = await sender.post(d.url, headers, body);
    await record(d, started, result);
  }

  async function record(d: ClaimedDelivery, started: Date, result: AttemptResult): Promise<void> {
    const now = clock.now();
    const verdict = judge(result);
    const entry = logEntry(started, result, verdict.kind === 'failed' ? result.error ?? `the endpoint answered ${result.statusCode}` : null);
    if (verdict.kind === 'succeeded') {
      await recordSuccess({ claim: d, attempt: entry, now });
      return;
    }
    const step = d.scheduleStep + 1;
    const delay = retryDelayMs(step, config.retryScheduleSeconds, config.retryJitter, random);
    const next = delay === null ? null : new Date(now.getTime() + Math.max(delay, (verdict.notBeforeSeconds ?? 0) * 1000));
    const recorded = await deliveryQueue.recordAttempt(db, d, { status: next ? 'failed' : 'dead', scheduleStep: step, nextAttemptAt: next, attempt: entry, now });
    if (!recorded) return;
    // Never the URL: integrators sometimes put credentials in its query string.
    logger.info({ delivery_id: d.id, endpoint_id: d.endpointId, status_code: result.statusCode, error: entry.error, next_attempt_at: next }, 'webhook attempt failed');
    if (!next) logger.warn({ delivery_id: d.id, endpoint_id: d.endpointId, event: d.eventType }, 'webhook delivery is dead: every scheduled attempt failed');
    // Its own statement, after the delivery's has committed: never a transaction holding a
    // delivery while it waits for the endpoint (PATCH locks the endpoint, then deliveries).
    const row = await deliveryQueue.markEndpointFailing(db, d.endpointId, now);
    if (!row?.enabled) return;
    const endpoint = toEndpoint(row);
    const failingMs = now.getTime() - endpoint.failingSince!.getTime();
    const reason = verdict.disablesEndpoint
      ? 'the endpoint answered 410 Gone'
      : failingMs >= config.disableAfterFailingHours * 3600_000
        ? `every attempt has failed since ${endpoint.failingSince!.toISOString()} (${config.disableAfterFailingHours} h or more)`
        : null;
    if (!reason) return;
    const disabled = await inTransaction(db, (trx) => webhooks.disable(trx, endpoint, reason));
    if (disabled) logger.warn({ endpoint_id: endpoint.id, workspace_id: endpoint.workspaceId, reason }, 'webhook endpoint disabled');
  }

  // Successes are recorded in batches: every success that arrives while one batch is being
  // written goes into the next, so the batch size follows the load (1 when idle).
  type Success = Parameters<typeof deliveryQueue.recordSuccesses>[1][number] & { resolve(): void; reject(err: unknown): void };
  const successes: Success[] = [];
  let flushing = false;

  function recordSuccess(item: Omit<Success, 'resolve' | 'reject'>): Promise<void> {
    return new Promise((resolve, reject) => {
      successes.push({ ...item, resolve, reject });
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flushSuccesses());
      }
    });
  }

  async function writeSuccesses(batch: Success[]): Promise<void> {
    const failing = await deliveryQueue.recordSuccesses(db, batch);
    for (const endpointId of failing) await deliveryQueue.clearEndpointFailing(db, endpointId);
    for (const s of batch) s.resolve();
  }

  async function flushSuccesses(): Promise<void> {
    while (successes.length > 0) {
      const batch = successes.splice(0, 500);
      try {
        await writeSuccesses(batch);
      } catch {
        // One bad row must not cost the others their record: write them one by one.
        for (const s of batch) await writeSuccesses([s]).catch((err) => s.reject(err));
      }
    }
    flushing = false;
  }

  /** Attempts one claimed delivery; errors are logged (the lease brings it back). */
  function attemptSafely(d: ClaimedDelivery): Promise<void> {
    return attempt(d).catch((err) => logger.error({ err, delivery_id: d.id },
      'webhook attempt bookkeeping failed (an attempt left unrecorded is sent again when its lease ends)'));
  }

  const leaseUntil = (now: Date) => new Date(now.getTime() + config.timeoutMs + LEASE_MARGIN_MS);

  // ---- the loops (start/stop) -------------------------------------------------------

  /** Fan-out: the claim step writes the deliveries itself; a full batch means more are queued. */
  const fanOut = createQueueWorker({
    concurrency: 1,
    pollIntervalMs: config.pollIntervalMs,
    errorBackoffMs: ERROR_BACKOFF_MS,
    logger,
    clock,
    claimErrorMessage: 'webhook fan-out failed; trying again',
    async claim() {
      const n = await deliveryQueue.fanOut(db, config.batchSize, clock.now());
      if (n > 0) deliveries.wake();
      return { done: n, more: n >= config.batchSize };
    },
  });

  /** Deliveries in flight per endpoint. */
  const perEndpoint = new Map<string, number>();
  /** Endpoints the last claim skipped because they had `concurrencyPerEndpoint` in flight. */
  let skipped = new Set<string>();

  /** Woken when deliveries were fanned out, slots came free, or a busy endpoint freed up. */
  const deliveries = createQueueWorker({
    concurrency: config.concurrency,
    // Claim again once a quarter of the slots are free, not after every single attempt.
    resumeWhenFree: Math.max(1, config.concurrency / 4),
    pollIntervalMs: config.pollIntervalMs,
    errorBackoffMs: ERROR_BACKOFF_MS,
    logger,
    clock,
    claimErrorMessage: 'claiming webhook deliveries failed; trying again',
    async claim(free) {
      // At most one endpoint's share per claim: one endpoint's backlog cannot fill every slot.
      const limit = Math.min(free, config.batchSize, config.concurrencyPerEndpoint);
      const now = clock.now();
      const busy = [...perEndpoint].filter(([, n]) => n >= config.concurrencyPerEndpoint).map(([id]) => id);
      skipped = new Set(busy);
      const claimed = await deliveryQueue.claim(db, { now, leaseUntil: leaseUntil(now), limit, busy });
      // Fewer than asked: nothing more is due (or only for busy endpoints), so poll; fan-out and freed endpoints wake us early.
      return { items: claimed, more: claimed.length >= limit };
    },
    run(d) {
      perEndpoint.set(d.endpointId, (perEndpoint.get(d.endpointId) ?? 0) + 1);
      return attemptSafely(d);
    },
    onSettled(d) {
      const left = (perEndpoint.get(d.endpointId) ?? 1) - 1;
      if (left > 0) perEndpoint.set(d.endpointId, left);
      else perEndpoint.delete(d.endpointId);
      // Once a skipped endpoint is down to half its share, claim again so its backlog keeps flowing.
      const endpointBack = skipped.has(d.endpointId) && left <= config.concurrencyPerEndpoint / 2;
      if (endpointBack) skipped.delete(d.endpointId);
      return endpointBack;
    },
  });

  return {
    start() {
      fanOut.start();
      deliveries.start();
    },

    async stop() {
      await Promise.all([fanOut.stop(), deliveries.stop()]);
      if (ownsSender) sender.close();
    },

    async drain() {
      const events = await fanOut.drain();
      const attempts = await deliveries.drain();
      return { events, attempts };
    },
  };
}
