/**
 * Queues (SPEC §4.4): what waits where, in which order, and the switch that stops a team's
 * auto-assignment. A queue is a team's unassigned tickets not resolved or closed (nor
 * archived), or those without a team (`teamId` null: the no-team queue). Invariants:
 * - the figures of every queue come from one grouped query over the tickets (never one per team);
 * - a queue's order is manual rank (1 = first), then priority (urgent first), then age (oldest
 *   first); the ticket list, the distribution (assignment-service) and reorders share it;
 * - a reorder makes the order exactly the one asked for, and reorders of one queue run one
 *   after the other (an advisory lock per queue), each from the order the last one left;
 * - pausing stops auto-assignment only; resuming kicks the queue (trigger teams_queues).
 */
import type { AgentService } from '../agents/agent-service.js';
import type { Team } from '../agents/agent-store.js';
import type { Db } from '../db/knex.js';
import { AppError, notFound } from '../kernel/errors.js';
import type { Page, PageRequest } from '../kernel/pagination.js';
import type { TicketService, TicketView } from '../tickets/ticket-service.js';
import type { QueueStat, Ticket } from '../tickets/ticket-store.js';
import { PRIORITIES, type Priority } from '../tickets/ticket-status.js';
import { assignmentStore } from './assignment-store.js';

/** One queue as GET /v1/queues shows it. */
export interface QueueItem {
  teamId: string | null;
  name: string;
  depth: number;
  byPriority: Record<Priority, number>;
  /** created_at of the oldest waiting ticket; null when the queue is empty. */
  oldestWaitingSince: Date | null;
  paused: boolean;
  /** Active agents (of the team; for the no-team queue, all) with room now. */
  eligibleAgents: number;
}

export const NO_TEAM_QUEUE_NAME = 'No team';

const WAITING_STATUSES: readonly string[] = ['open', 'in_progress', 'waiting_on_customer'];

/** Why a ticket is not in the queue `teamId` (null: it is). */
function notInQueue(t: Ticket, teamId: string | null): string | null {
  const which = `Ticket #${t.number}`;
  if (t.archivedAt) return `${which} is archived: it is in no queue`;
  if (!WAITING_STATUSES.includes(t.status)) return `${which} is ${t.status}: it is in no queue`;
  if (t.assigneeId) return `${which} is assigned to an agent: it is in no queue (unassign it first)`;
  if (t.teamId !== teamId) return `${which} is in ${t.teamId ? `the queue of team ${t.teamId}` : 'the no-team queue'}, not in this one`;
  return null;
}

function toItem(team: Team | null, stats: QueueStat[], eligibleAgents: number): QueueItem {
  const byPriority = Object.fromEntries(PRIORITIES.map((p) => [p, 0])) as Record<Priority, number>;
  let oldest: Date | null = null;
  for (const s of stats) {
    byPriority[s.priority] += s.depth;
    if (!oldest || s.oldest < oldest) oldest = s.oldest;
  }
  return {
    teamId: team?.id ?? null, name: team?.name ?? NO_TEAM_QUEUE_NAME,
    depth: Object.values(byPriority).reduce((a, b) => a + b, 0), byPriority, oldestWaitingSince: oldest,
    paused: team?.paused ?? false, eligibleAgents,
  };
}

export function createQueueService(deps: { tickets: TicketService; agents: AgentService }) {
  const { tickets, agents } = deps;

  /** Of these agents, how many are under capacity given their open tickets. */
  const withRoom = (pool: { id: string; maxOpenTickets: number | null }[], open: Map<string, number>) =>
    pool.filter((a) => a.maxOpenTickets === null || (open.get(a.id) ?? 0) < a.maxOpenTickets).length;

  /** The team of a queue (404 for another workspace's team); null for the no-team queue. */
  const teamOf = (db: Db, workspaceId: string, teamId: string | null): Promise<Team | null> =>
    teamId === null ? Promise.resolve(null) : agents.requireTeam(db, workspaceId, teamId);

  const service = {
    /** Every team's queue (by team name), then the no-team queue. */
    async list(db: Db, workspaceId: string): Promise<QueueItem[]> {
      const [teams, everyone, stats] = await Promise.all([
        agents.allTeams(db, workspaceId), agents.listCandidates(db, workspaceId, null), tickets.queueStats(db, workspaceId),
      ]);
      const [open, members] = await Promise.all([
        tickets.openCounts(db, workspaceId, everyone.map((a) => a.id)),
        Promise.all(teams.map((t) => agents.listCandidates(db, workspaceId, t.id))),
      ]);
      const statsOf = (teamId: string | null) => stats.filter((s) => s.teamId === teamId);
      return [
        ...teams.map((t, i) => toItem(t, statsOf(t.id), withRoom(members[i], open))),
        toItem(null, statsOf(null), withRoom(everyone, open)),
      ];
    },

    async get(db: Db, workspaceId: string, teamId: string | null): Promise<QueueItem> {
      const team = await teamOf(db, workspaceId, teamId);
      const [stats, pool] = await Promise.all([tickets.queueStats(db, workspaceId, teamId), agents.listCandidates(db, workspaceId, teamId)]);
      const open = await tickets.openCounts(db, workspaceId, pool.map((a) => a.id));
      return toItem(team, stats, withRoom(pool, open));
    },

    /** A page of the queue in distribution order. */
    async tickets(db: Db, workspaceId: string, teamId: string | null, page: PageRequest): Promise<Page<TicketView>> {
      await teamOf(db, workspaceId, teamId);
      return tickets.queuePage(db, workspaceId, teamId, page);
    },

    /**
     * Puts the ticket at `position` (1-based; past the end: last) of its queue. The current
     * order without the ticket, the ticket inserted, and ranks 1..k for the first k: enough to
     * cover the ticket and every ticket ranked before, so the rest keep their natural order
     * (priority, age) behind them and the whole queue reads exactly as asked.
     */
    async reorder(db: Db, workspaceId: string, teamId: string | null, ticketId: string, position: number): Promise<QueueItem> {
      await teamOf(db, workspaceId, teamId);
      await assignmentStore.lockQueueOrder(db, workspaceId, teamId);
      const ticket = await tickets.find(db, workspaceId, ticketId);
      if (!ticket) throw notFound('Ticket');
      const why = notInQueue(ticket, teamId);
      if (why) throw new AppError('conflict', why);
      // Read after the lock: the order the previous reorder left.
      const { ids, ranked } = await tickets.queueOrder(db, workspaceId, teamId, position);
      const rest = ids.filter((id) => id !== ticketId);
      // Ranked tickets head the queue, so the ticket was ranked when it is among the first `ranked`.
      const index = ids.indexOf(ticketId);
      const rankedBefore = ranked - (index >= 0 && index < ranked ? 1 : 0);
      const at = Math.min(position - 1, rest.length);
      rest.splice(at, 0, ticketId);
      await tickets.setQueueRanks(db, workspaceId, rest.slice(0, Math.max(at, rankedBefore) + 1));
      return service.get(db, workspaceId, teamId);
    },

    /** Stops (true) or restarts (false) auto-assignment from a team's queue; the no-team queue has none (409). */
    async setPaused(db: Db, workspaceId: string, teamId: string | null, paused: boolean): Promise<QueueItem> {
      if (teamId === null) {
        throw new AppError('conflict', `The no-team queue is never auto-assigned, so there is nothing to ${paused ? 'pause' : 'resume'}; move tickets to a team to auto-assign them`);
      }
      await agents.setTeamPaused(db, workspaceId, teamId, paused);
      return service.get(db, workspaceId, teamId);
    },
  };
  return service;
}

export type QueueService = ReturnType<typeof createQueueService>;
