/**
 * Metrics: figures about a workspace's tickets for team leads (`/stats` in Telegram today;
 * the metrics API, dashboard and digest build on it). Read-only: it reads tickets in
 * aggregate and writes nothing.
 */
import type { Db } from '../db/knex.js';

/** Today (UTC) so far, and the backlog now. */
export interface DayStats {
  created: number;
  resolved: number;
  open: number;
  unassigned: number;
  firstResponseOverdue: number;
  /** Median seconds to first response of tickets first answered today; null when none were. */
  medianFirstResponseSeconds: number | null;
}

export function createMetricsService() {
  return {
    async today(db: Db, workspaceId: string, now: Date): Promise<DayStats> {
      const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
      const r = (await db.raw(
        `SELECT count(*) FILTER (WHERE created_at >= :day) AS created,
                count(*) FILTER (WHERE resolved_at >= :day) AS resolved,
                count(*) FILTER (WHERE status IN ('open', 'in_progress', 'waiting_on_customer')) AS open,
                count(*) FILTER (WHERE status IN ('open', 'in_progress', 'waiting_on_customer') AND assignee_id IS NULL) AS unassigned,
                count(*) FILTER (WHERE first_response_at IS NULL AND first_response_due_at < :now AND status IN ('open', 'in_progress', 'waiting_on_customer')) AS overdue,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - created_at)) FILTER (WHERE first_response_at >= :day) AS median_first
           FROM tickets WHERE workspace_id = :ws AND archived_at IS NULL`,
        { day, now, ws: workspaceId },
      )).rows[0];
      return {
        created: Number(r.created), resolved: Number(r.resolved), open: Number(r.open), unassigned: Number(r.unassigned),
        firstResponseOverdue: Number(r.overdue), medianFirstResponseSeconds: r.median_first === null ? null : Number(r.median_first),
      };
    },
  };
}

export type MetricsService = ReturnType<typeof createMetricsService>;
