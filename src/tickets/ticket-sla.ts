/**
 * The SLA port of the tickets module. The sla module keeps the clocks and implements this
 * (bound late in the container: sla builds on tickets); tickets calls it inside every change,
 * before it writes the row and its events, so what a change emits already carries the due
 * times that change gave the ticket.
 */
import type { Db } from '../db/knex.js';
import type { NewClocks, SlaFields, SlaMark, Ticket } from './ticket-store.js';

export type { NewClocks, SlaFields, SlaMark, SlaTargetName } from './ticket-store.js';

export interface SlaOutcome {
  fields: SlaFields;
  /** Newly recorded marks (a target met after its due time is a breach). */
  marks: SlaMark[];
}

export interface TicketSla {
  /**
   * A ticket about to be created: its fields, and its clocks, which the ticket's own insert
   * stores in the same statement (null: none to store): `insertSql` is the sla module's
   * INSERT of `row` (jsonb) for the ticket (its id), the same text every time.
   */
  planNew(db: Db, t: Pick<Ticket, 'id' | 'workspaceId' | 'teamId' | 'priority' | 'createdAt'>): Promise<{ fields: SlaFields; clocks: NewClocks | null }>;
  /** Status, priority or team changed (`after` as it will be written). */
  changed(db: Db, before: Ticket, after: Ticket, at: Date): Promise<SlaOutcome | null>;
  /** A public agent reply reached the customer at `at`; `by`: the agent who wrote it (null: not an agent, e.g. an API key). */
  agentReplied(db: Db, t: Ticket, at: Date, by?: string | null): Promise<SlaOutcome | null>;
  /** A customer message arrived at `at`. */
  customerWrote(db: Db, t: Ticket, at: Date): Promise<SlaOutcome | null>;
}
