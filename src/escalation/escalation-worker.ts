/**
 * The escalation rules' events-outbox consumer (events/event-consumers.ts), in every replica:
 * claim a batch of queued events (FOR UPDATE SKIP LOCKED), evaluate the tickets they concern
 * and delete the rows, all in one transaction, so an event's evaluation happens exactly when
 * its row goes. Two workers on one database take different rows; two rows of one ticket are
 * evaluated one after the other (the ticket is locked), and a window opens once.
 */
import type { Knex } from '../db/knex.js';
import { inTransaction } from '../db/transaction.js';
import { createQueueWorker, type QueueWorker } from '../jobs/queue-worker.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { EscalationService, Evaluation } from './escalation-service.js';

export interface EscalationWorkerSettings {
  pollIntervalMs: number;
  batchSize: number;
}

export const DEFAULT_ESCALATION_WORKER: EscalationWorkerSettings = { pollIntervalMs: 1_000, batchSize: 50 };

/** Logs what an evaluation did: each firing, and each rule the ping-pong guard held back (warn). */
export function logEvaluation(logger: Logger, e: Evaluation): void {
  for (const f of e.fired) logger.info({ rule_id: f.ruleId, ticket_id: f.ticketId, actions: f.actions.map((a) => `${a.type}:${a.outcome}`) }, 'escalation rule fired');
  for (const s of e.suppressed) {
    logger.warn({ rule_id: s.ruleId, ticket_id: s.ticketId }, 'escalation rule not fired: the ticket reached the limit of firings per hour (rules undoing each other?)');
  }
}

export function createEscalationWorker(deps: { db: Knex; logger: Logger; clock: Clock; escalations: EscalationService; settings?: Partial<EscalationWorkerSettings> }): QueueWorker {
  const { db, escalations, clock } = deps;
  const settings = { ...DEFAULT_ESCALATION_WORKER, ...deps.settings };
  const logger = deps.logger.child({ component: 'escalation' });
  return createQueueWorker<never>({
    async claim() {
      const result = await inTransaction(db, (tx) => escalations.processQueue(tx, settings.batchSize, clock.now()));
      logEvaluation(logger, result);
      return { done: result.events };
    },
    concurrency: 1,
    pollIntervalMs: settings.pollIntervalMs,
    errorBackoffMs: 1_000,
    logger,
    claimErrorMessage: 'evaluating escalation rules failed; the events stay queued and are retried',
    clock,
  });
}
