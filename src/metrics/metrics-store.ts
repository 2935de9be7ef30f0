/**
 * The metrics module's facts (ticket_metrics, ticket_next_responses): written when the moment
 * happens, read by the reports. Only the metrics service uses this file.
 */
import type { Db } from '../db/knex.js';

/** A measured moment of a ticket: when, how long since creation (wall and business), by whom. */
export interface MomentFact {
  ticketId: string;
  workspaceId: string;
  createdAt: Date;
  at: Date;
  businessSeconds: number;
  agentId: string | null;
  teamId: string | null;
  priority: string;
}

const wallSeconds = (f: MomentFact) => Math.max(0, (f.at.getTime() - f.createdAt.getTime()) / 1000);

export const metricsStore = {
  async upsertFirstResponse(db: Db, f: MomentFact): Promise<void> {
    await db.raw(
      `INSERT INTO ticket_metrics (ticket_id, workspace_id, created_at, first_response_at, first_response_s, first_response_business_s,
                                   first_responder_id, first_response_team_id, first_response_priority)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ticket_id) DO UPDATE SET first_response_at = EXCLUDED.first_response_at, first_response_s = EXCLUDED.first_response_s,
         first_response_business_s = EXCLUDED.first_response_business_s, first_responder_id = EXCLUDED.first_responder_id,
         first_response_team_id = EXCLUDED.first_response_team_id, first_response_priority = EXCLUDED.first_response_priority`,
      [f.ticketId, f.workspaceId, f.createdAt, f.at, wallSeconds(f), Math.max(0, f.businessSeconds), f.agentId, f.teamId, f.priority],
    );
  },

  async upsertResolution(db: Db, f: MomentFact): Promise<void> {
    await db.raw(
      `INSERT INTO ticket_metrics (ticket_id, workspace_id, created_at, resolved_at, resolution_s, resolution_business_s,
                                   resolver_id, resolution_team_id, resolution_priority)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ticket_id) DO UPDATE SET resolved_at = EXCLUDED.resolved_at, resolution_s = EXCLUDED.resolution_s,
         resolution_business_s = EXCLUDED.resolution_business_s, resolver_id = EXCLUDED.resolver_id,
         resolution_team_id = EXCLUDED.resolution_team_id, resolution_priority = EXCLUDED.resolution_priority`,
      [f.ticketId, f.workspaceId, f.createdAt, f.at, wallSeconds(f), Math.max(0, f.businessSeconds), f.agentId, f.teamId, f.priority],
    );
  },

  async clearResolution(db: Db, ticketId: string): Promise<void> {
    await db('ticket_metrics').where({ ticket_id: ticketId }).update({
      resolved_at: null, resolution_s: null, resolution_business_s: null, resolver_id: null, resolution_team_id: null, resolution_priority: null,
    });
  },

  async insertNextResponse(db: Db, r: { ticketId: string; workspaceId: string; cycle: number; dueAt: Date; answeredAt: Date }): Promise<void> {
    await db('ticket_next_responses')
      .insert({ ticket_id: r.ticketId, workspace_id: r.workspaceId, cycle: r.cycle, due_at: r.dueAt, answered_at: r.answeredAt })
      .onConflict(['ticket_id', 'cycle']).ignore();
  },
};
