/**
 * The ticket workflow (SPEC §2.1) as pure functions: which moves are allowed, and which
 * moves happen by themselves when an agent or a customer writes.
 */
export const STATUSES = ['open', 'in_progress', 'waiting_on_customer', 'resolved', 'closed'] as const;
export type TicketStatus = (typeof STATUSES)[number];

export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export type Priority = (typeof PRIORITIES)[number];

const ALLOWED: Record<TicketStatus, readonly TicketStatus[]> = {
  open: ['in_progress', 'waiting_on_customer', 'resolved'],
  in_progress: ['open', 'waiting_on_customer', 'resolved'],
  waiting_on_customer: ['open', 'in_progress', 'resolved'],
  resolved: ['closed', 'open'],
  closed: [],
};

export function canTransition(from: TicketStatus, to: TicketStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** Why a move is refused, in words a client can act on; null when it is allowed. */
export function refusal(from: TicketStatus, to: TicketStatus): string | null {
  if (canTransition(from, to)) return null;
  if (from === to) return `The ticket is already ${to}`;
  if (from === 'closed') return 'A closed ticket is final; the customer\'s next message starts a new ticket';
  if (to === 'closed') return 'Only a resolved ticket can be closed; resolve it first';
  return `A ${from} ticket cannot move to ${to}; from ${from} it can move to ${ALLOWED[from].join(', ')}`;
}

/** A reopen is the one move out of resolved back into work. */
export const isReopen = (from: TicketStatus, to: TicketStatus) => from === 'resolved' && to === 'open';

/** An agent's public reply puts a ticket in work on hold for the customer. */
export function statusAfterAgentReply(current: TicketStatus): TicketStatus | null {
  return current === 'open' || current === 'in_progress' ? 'waiting_on_customer' : null;
}

/**
 * A customer message brings a waiting ticket back to work (to the assignee, or to the queue
 * when nobody has it) and reopens a resolved one when the workspace says so.
 */
export function statusAfterCustomerMessage(current: TicketStatus, opts: { assigned: boolean; reopenResolved: boolean }): TicketStatus | null {
  if (current === 'waiting_on_customer') return opts.assigned ? 'in_progress' : 'open';
  if (current === 'resolved' && opts.reopenResolved) return 'open';
  return null;
}

export interface StatusFields {
  status: TicketStatus;
  resolvedAt: Date | null;
  closedAt: Date | null;
  reopenedCount: number;
}

/** The ticket fields after an allowed move at `at`. */
export function applyTransition(t: StatusFields, to: TicketStatus, at: Date): StatusFields {
  if (!canTransition(t.status, to)) throw new Error(`refused transition ${t.status} → ${to}`);
  return {
    status: to,
    resolvedAt: to === 'resolved' ? at : to === 'closed' ? t.resolvedAt : null,
    closedAt: to === 'closed' ? at : null,
    reopenedCount: t.reopenedCount + (isReopen(t.status, to) ? 1 : 0),
  };
}
