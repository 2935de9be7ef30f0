/**
 * Works off queue kicks in every replica (jobs/queue-worker.ts, loops without `run`): lease
 * the oldest kick, distribute that team's queue in one transaction, then retire the kick (or
 * free it again when a newer kick came meanwhile). A replica that dies mid-way only delays the
 * queue until the lease runs out; distributing twice is harmless (each head is locked and
 * assigned once).
 */
import type { Knex } from '../db/knex.js';
import { listen, type Listener } from '../db/notifications.js';
import { inTransaction } from '../db/transaction.js';
import { createQueueWorker, type QueueWorker } from '../jobs/queue-worker.js';
import { SYSTEM } from '../kernel/actor.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { AssignmentService } from './assignment-service.js';

export interface AssignmentWorkerSettings {
  pollIntervalMs: number;
  leaseMs: number;
  concurrency: number;
}

export const DEFAULT_ASSIGNMENT_WORKER: AssignmentWorkerSettings = { pollIntervalMs: 1_000, leaseMs: 30_000, concurrency: 1 };

/**
 * `listenUrl`: a connection string to LISTEN for kicks on (the triggers NOTIFY at commit), so
 * a queue is worked off as soon as room appears in any replica; without it, the poll finds it.
 */
export function createAssignmentWorker(deps: { db: Knex; logger: Logger; clock: Clock; assignment: AssignmentService; settings?: Partial<AssignmentWorkerSettings>; listenUrl?: string }): QueueWorker {
  const { db, assignment } = deps;
  const settings = { ...DEFAULT_ASSIGNMENT_WORKER, ...deps.settings };
  const logger = deps.logger.child({ component: 'assignment' });
  let listener: Listener | null = null;
  const worker = createQueueWorker<never>({
    async claim() {
      const kick = await assignment.claimKick(db, settings.leaseMs);
      if (!kick) return { done: 0, nextAt: await assignment.nextKickAt(db) };
      const assigned = await inTransaction(db, (tx) => assignment.distribute(tx, kick.workspaceId, kick.teamId, SYSTEM));
      await assignment.finishKick(db, kick);
      if (assigned) logger.info({ workspace_id: kick.workspaceId, team_id: kick.teamId, assigned }, 'queue distributed');
      return { done: 1 };
    },
    concurrency: settings.concurrency,
    pollIntervalMs: settings.pollIntervalMs,
    errorBackoffMs: 1_000,
    logger,
    claimErrorMessage: 'distributing a queue failed; the kick is retried after its lease',
    clock: deps.clock,
  });
  return {
    wake: () => worker.wake(),
    drain: () => worker.drain(),
    get inFlight() { return worker.inFlight; },
    start() {
      worker.start();
      if (deps.listenUrl && !listener) listener = listen(deps.listenUrl, 'topicdesk_queue_kicks', () => worker.wake(), logger);
    },
    async stop() {
      await listener?.close();
      listener = null;
      await worker.stop();
    },
  };
}
