/**
 * Assignment (SPEC §4.4): a ticket to an agent, to a team's queue, or by strategy; and the
 * distribution of a team's queue when room appears. Invariants:
 * - a pick locks, in this order, the ticket, the rotation (round robin) and the candidate
 *   agents (in id order), then counts their open tickets in a new statement: two picks that
 *   could choose the same agent run one after the other, so capacity is never exceeded and a
 *   rotation is exact under concurrency (50 tickets at once across 5 agents → 10 each);
 * - a direct assignment to an agent checks that agent's capacity under the same lock;
 * - no eligible agent → 409 no_agent_available and nothing changes;
 * - queues are worked off from kicks (triggers write them in the transaction that made room:
 *   a ticket resolved or reassigned, capacity grown, an agent back or added to the team, a
 *   queue resumed or a ticket entering it); distributing locks each queue head with SKIP
 *   LOCKED, so replicas working the same queue hand out each ticket once.
 * The choice itself is pure: assignment.ts.
 */
import type { AgentService } from '../agents/agent-service.js';
import type { Agent } from '../agents/agent-store.js';
import type { Db } from '../db/knex.js';
import type { Actor } from '../kernel/actor.js';
import { AppError } from '../kernel/errors.js';
import type { Clock } from '../lib/clock.js';
import type { TicketService, TicketView } from '../tickets/ticket-service.js';
import { pick, type Candidate, type Strategy } from './assignment.js';
import { assignmentStore } from './assignment-store.js';

/** What POST /v1/tickets/{id}/assign takes: exactly one of agent_id, team_id, strategy (team_id may go with strategy). */
export interface AssignRequest {
  agent_id?: string | null;
  team_id?: string | null;
  strategy?: Strategy;
  note?: string;
}

const noAgent = (where: string) => new AppError('no_agent_available', `No agent is available ${where}: every eligible agent is inactive or at capacity`);

export function createAssignmentService(deps: { clock: Clock; tickets: TicketService; agents: AgentService }) {
  const { clock, tickets, agents } = deps;

  async function candidates(db: Db, workspaceId: string, teamId: string | null): Promise<Candidate[]> {
    const pool = await agents.lockCandidates(db, workspaceId, teamId);
    // A new statement after the locks: it sees every assignment committed before them.
    const open = await tickets.openCounts(db, workspaceId, pool.map((a) => a.id));
    return pool.map((a) => toCandidate(a, open.get(a.id) ?? 0));
  }

  /**
   * Picks with `strategy` among the team's agents (or every active agent) and assigns. Null
   * when nobody is eligible (nothing changed).
   */
  async function pickAndAssign(db: Db, view: TicketView, strategy: Strategy, teamId: string | null, note: string | undefined, actor: Actor): Promise<TicketView | null> {
    const { workspaceId } = view.ticket;
    const scope = teamId ?? '*';
    const last = strategy === 'round_robin' ? await assignmentStore.lockRotation(db, workspaceId, scope) : null;
    const chosen = pick(strategy, await candidates(db, workspaceId, teamId), { category: view.ticket.category, tags: view.ticket.tags }, last);
    if (!chosen) return null;
    const at = clock.now();
    const body = { agent_id: chosen.id, ...(teamId !== view.ticket.teamId ? { team_id: teamId } : {}), ...(note ? { note } : {}) };
    // The candidates were locked and seen active above: the ticket service need not read the agent again.
    const after = await tickets.assign(db, workspaceId, view.ticket.id, body, actor, { strategy, view, agentLocked: true });
    await agents.touchAssigned(db, chosen.id, at);
    if (strategy === 'round_robin') await assignmentStore.saveRotation(db, workspaceId, scope, chosen.id);
    return after;
  }

  /** Refuses an agent who is inactive (409) or at capacity (409); locks the agent meanwhile. */
  async function checkRoom(db: Db, workspaceId: string, agentId: string, ticketId: string): Promise<Agent> {
    const agent = await agents.lockActive(db, workspaceId, agentId);
    if (agent.maxOpenTickets !== null) {
      const open = (await tickets.openCounts(db, workspaceId, [agent.id])).get(agent.id) ?? 0;
      const current = await tickets.find(db, workspaceId, ticketId);
      const already = current?.assigneeId === agent.id ? 1 : 0;
      if (open - already >= agent.maxOpenTickets) {
        throw new AppError('conflict', `${agent.username ? `@${agent.username}` : agent.name} is at capacity (${agent.maxOpenTickets} open tickets)`);
      }
    }
    return agent;
  }

  const service = {
    async assign(db: Db, workspaceId: string, ticketId: string, r: AssignRequest, actor: Actor): Promise<TicketView> {
      const view = await tickets.get(db, workspaceId, ticketId, { forUpdate: true });
      if (view.ticket.status === 'closed') throw new AppError('conflict', 'A closed ticket cannot be reassigned');
      if (r.strategy) {
        const team = r.team_id ? await agents.requireTeam(db, workspaceId, r.team_id) : null;
        const teamId = team?.id ?? view.ticket.teamId;
        const done = await pickAndAssign(db, view, r.strategy, teamId, r.note, actor);
        if (!done) throw noAgent(teamId ? 'in this team' : 'in this workspace');
        return done;
      }
      if (r.agent_id !== undefined) {
        // An agent, and the team too when one is given (an agent of Billing takes it in Billing's name).
        if (r.team_id) await agents.requireTeam(db, workspaceId, r.team_id);
        if (r.agent_id !== null && r.agent_id !== view.ticket.assigneeId) await checkRoom(db, workspaceId, r.agent_id, ticketId);
        const body = { agent_id: r.agent_id, ...(r.team_id !== undefined ? { team_id: r.team_id } : {}), ...(r.note ? { note: r.note } : {}) };
        return tickets.assign(db, workspaceId, ticketId, body, actor, { view });
      }
      // A team: the ticket joins its queue, unassigned, and the team's strategy takes it from there.
      const team = r.team_id ? await agents.requireTeam(db, workspaceId, r.team_id) : null;
      const moved = await tickets.assign(db, workspaceId, ticketId, { team_id: team?.id ?? null, agent_id: null, ...(r.note ? { note: r.note } : {}) }, actor, { view });
      if (team?.autoAssign && !team.paused) return (await pickAndAssign(db, moved, team.autoAssign, team.id, undefined, actor)) ?? moved;
      return moved;
    },

    /**
     * Hands out a team's queue while its strategy finds agents: each head ticket is locked
     * (skipping ones another replica holds) and assigned, until the queue is empty or nobody
     * has room. Returns how many were assigned.
     */
    async distribute(db: Db, workspaceId: string, teamId: string, actor: Actor, limit = 100): Promise<number> {
      const team = await agents.findTeam(db, workspaceId, teamId);
      if (!team?.autoAssign || team.paused) return 0;
      let assigned = 0;
      for (let looked = 0; looked < limit; looked++) {
        // Locked heads (ours included: a ticket nobody could take stays locked by us) are skipped.
        const [head] = await tickets.queueHead(db, workspaceId, teamId, 1, { lock: true });
        if (!head) break;
        const view = await tickets.get(db, workspaceId, head.id);
        if (await pickAndAssign(db, view, team.autoAssign, team.id, undefined, actor)) assigned++;
        // Nobody has room: no later ticket will find anyone either. With skills, a later
        // ticket may ask for skills someone free has.
        else if (team.autoAssign !== 'skills') break;
      }
      return assigned;
    },

    claimKick: assignmentStore.claimKick,
    finishKick: assignmentStore.finishKick,
    nextKickAt: assignmentStore.nextKickAt,
    kick: assignmentStore.kick,
  };
  return service;
}

function toCandidate(a: Agent, openTickets: number): Candidate {
  return { id: a.id, active: a.active, skills: a.skills, maxOpenTickets: a.maxOpenTickets, openTickets, lastAssignedAt: a.lastAssignedAt };
}

export type AssignmentService = ReturnType<typeof createAssignmentService>;
