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
  /** SLA breaches whose due time fell today, by target. */
  slaBreachesToday: Record<'first_response' | 'next_response' | 'resolution', number>;
  /** Open tickets past a warning point, not breached; open tickets with a breach. */
  slaAtRiskNow: number;
  slaBreachedOpenNow: number;
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
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first_response_at - created_at)) FILTER (WHERE first_response_at >= :day) AS median_first,
                count(*) FILTER (WHERE sla_at_risk AND status IN ('open', 'in_progress', 'waiting_on_customer')) AS at_risk,
                count(*) FILTER (WHERE sla_breached AND status IN ('open', 'in_progress', 'waiting_on_customer')) AS breached_open
           FROM tickets WHERE workspace_id = :ws AND archived_at IS NULL`,
        { day, now, ws: workspaceId },
      )).rows[0];
      const breaches = (await db.raw(
        `SELECT b->>'target' AS target, count(*) AS n
           FROM tickets, jsonb_array_elements(sla_breaches) b
          WHERE workspace_id = ? AND sla_breached AND (b->>'at')::timestamptz >= ?
          GROUP BY 1`,
        [workspaceId, day],
      )).rows as { target: keyof DayStats['slaBreachesToday']; n: string }[];
      const slaBreachesToday = { first_response: 0, next_response: 0, resolution: 0 };
      for (const b of breaches) slaBreachesToday[b.target] = Number(b.n);
      return {
        created: Number(r.created), resolved: Number(r.resolved), open: Number(r.open), unassigned: Number(r.unassigned),
        firstResponseOverdue: Number(r.overdue), medianFirstResponseSeconds: r.median_first === null ? null : Number(r.median_first),
        slaBreachesToday, slaAtRiskNow: Number(r.at_risk), slaBreachedOpenNow: Number(r.breached_open),
      };
    },
  };
}

export type MetricsService = ReturnType<typeof createMetricsService>;
