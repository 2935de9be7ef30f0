/**
 * Who consumes the events outbox, and how a consumer hooks in. Read this before adding one
 * (SLA timers and metrics are next).
 *
 * Every event is written by `eventOutbox.record` (or, for ticket.created, in the numbering
 * statement of ticket-store.ts) in the transaction of the change it describes. A consumer never
 * polls `events` by id — ids are taken before commit, so a slow transaction can commit a lower
 * id after a higher one has been read. Instead each consumer has its own small queue table,
 * filled by an AFTER INSERT trigger on `events` in that same transaction (so no insert path,
 * SQL or TypeScript, can forget it), and a worker (jobs/queue-worker.ts) that claims rows with
 * FOR UPDATE SKIP LOCKED and deletes them in the transaction that records their effect:
 * exactly once across replicas.
 *
 * To add a consumer: a migration with the queue table and the trigger; an entry here; a claim
 * in the consumer's module and a worker on createQueueWorker. test/integration/event-consumers
 * checks that this list and the database's triggers on `events` agree.
 */
import { EVENT_TYPES, PING, type StoredEventType } from './event-types.js';

export interface EventConsumer {
  /** The module that consumes, and the file whose worker drains its queue. */
  module: string;
  drainedBy: string;
  /** The trigger on `events`, the function it runs and the queue table it fills. */
  trigger: string;
  queue: string;
  /** Event types it skips (its trigger's WHEN clause). */
  skips: readonly string[];
  /** The migration that installs it. */
  migration: string;
}

/** What the escalation rules consume: whatever may change whether a rule holds for a ticket. */
const ESCALATION_TYPES: readonly StoredEventType[] = [
  'ticket.created', 'ticket.updated', 'ticket.status_changed', 'ticket.assigned', 'ticket.resolved', 'ticket.closed',
  'ticket.reopened', 'sla.warning', 'sla.breached', 'message.received', 'contact.tagged',
];

export const EVENT_CONSUMERS: readonly EventConsumer[] = [
  {
    module: 'webhooks',
    drainedBy: 'src/webhooks/webhook-worker.ts (fan-out loop: delivery-queue.ts fanOut → webhook_deliveries)',
    trigger: 'events_webhook_fanout',
    queue: 'webhook_fanout_queue',
    skips: ['ping'],
    migration: 'migrations/20261121001500_webhooks.ts',
  },
  {
    module: 'escalation',
    drainedBy: 'src/escalation/escalation-worker.ts (escalation-service.ts processQueue: evaluates the tickets concerned)',
    trigger: 'events_escalation',
    queue: 'escalation_queue',
    // Every other type, ticket.escalated included: a firing never evaluates itself.
    skips: ([...EVENT_TYPES, PING] as StoredEventType[]).filter((t) => !ESCALATION_TYPES.includes(t)),
    migration: 'migrations/20261207000400_escalation_rules.ts',
  },
];
