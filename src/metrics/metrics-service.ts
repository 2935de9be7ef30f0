/**
 * Metrics: figures about a workspace's tickets for team leads (SPEC §6; `/stats` in Telegram,
 * the metrics API, later the dashboard and digest).
 *
 * Facts, not replays: the first response and the (last) resolution of each ticket are recorded
 * when they happen, in ticket_metrics (this module's table), with wall seconds and business
 * seconds of the ticket's SLA calendar. The sla module writes them through `recordFirstResponse`
 * / `recordResolution` from its ticket port: it sees every first response and status move inside
 * the ticket's own transaction and is the one that knows the calendar, so a fact can never
 * disagree with the ticket and no other module needs the calendar. (sla → metrics; the one way
 * back, next-response breaches from sla_marks, is a port bound late in the container.)
 *
 * Reports read the facts and, for what is "now" (backlog, open, at risk, CSAT, due times), the
 * tickets table in aggregate; agent and team names come from the agents service.
 */
import type { Db } from '../db/knex.js';
import { AppError, notFound, type FieldError } from '../kernel/errors.js';
import type { Clock } from '../lib/clock.js';
import type { AgentService } from '../agents/agent-service.js';
import type { WorkspaceService } from '../workspaces/workspace-service.js';
import type { Priority } from '../tickets/ticket-status.js';
import { metricsStore, type MomentFact } from './metrics-store.js';

export type { MomentFact } from './metrics-store.js';

/** Where next-response breaches come from (the sla module's marks; bound late in the container). */
export interface SlaBreachSource {
  breachesDue(db: Db, workspaceId: string, target: 'next_response', from: Date, to: Date): Promise<{ ticketId: string; dueAt: Date }[]>;
}

export const GROUP_BY = ['agent', 'team', 'priority', 'day', 'week'] as const;
export type GroupBy = (typeof GROUP_BY)[number];
export const SLA_TARGETS = ['first_response', 'next_response', 'resolution'] as const;
export type SlaTargetName = (typeof SLA_TARGETS)[number];
const OPEN = `('open', 'in_progress', 'waiting_on_customer')`;
const MAX_RANGE_DAYS = 400;
const DEFAULT_RANGE_DAYS = 7;

export interface MetricsQuery {
  from?: string;
  to?: string;
  team_id?: string;
  agent_id?: string;
  priority?: Priority;
  group_by?: GroupBy;
}

export interface Stats {
  count: number;
  mean_seconds: number | null;
  p50_seconds: number | null;
  p90_seconds: number | null;
  max_seconds: number | null;
  business: Omit<Stats, 'business'>;
}
export interface DurationReport {
  from: string;
  to: string;
  group_by: GroupBy | null;
  overall: Stats;
  groups: ({ key: string | null; name?: string | null } & Stats)[];
}
export interface TargetFigures { due: number; met: number; breached: number; compliance_percent: number | null }
export type Targets = Record<SlaTargetName, TargetFigures>;
export type Distribution = Record<'1' | '2' | '3' | '4' | '5', number>;

/** The two durations and where their facts live. */
const MEASURES = {
  first_response: { at: 'first_response_at', s: 'first_response_s', b: 'first_response_business_s', agent: 'first_responder_id', team: 'first_response_team_id', priority: 'first_response_priority' },
  resolution: { at: 'resolved_at', s: 'resolution_s', b: 'resolution_business_s', agent: 'resolver_id', team: 'resolution_team_id', priority: 'resolution_priority' },
} as const;
export type Measure = keyof typeof MEASURES;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);

/** count, mean, p50, p90, max of `s` and of `b` (exact: percentile_cont). */
const statsColumns = (s: string, b: string) => [s, b].map((c, i) => `avg(${c}) AS mean${i}, percentile_cont(0.5) WITHIN GROUP (ORDER BY ${c}) AS p50_${i},
  percentile_cont(0.9) WITHIN GROUP (ORDER BY ${c}) AS p90_${i}, max(${c}) AS max${i}`).join(', ') + ', count(*) AS n';

function statsOf(r: any): Stats {
  const one = (i: number) => ({ count: Number(r?.n ?? 0), mean_seconds: num(r?.[`mean${i}`]), p50_seconds: num(r?.[`p50_${i}`]), p90_seconds: num(r?.[`p90_${i}`]), max_seconds: num(r?.[`max${i}`]) });
  return { ...one(0), business: one(1) };
}

/** The SQL of a group key over a moment column `at` (day and ISO week in the workspace's zone). */
function keySql(groupBy: GroupBy, cols: { at: string; agent: string; team: string; priority: string }): string {
  switch (groupBy) {
    case 'agent': return cols.agent;
    case 'team': return cols.team;
    case 'priority': return cols.priority;
    case 'day': return `to_char(${cols.at} AT TIME ZONE :tz, 'YYYY-MM-DD')`;
    case 'week': return `to_char(${cols.at} AT TIME ZONE :tz, 'IYYY-"W"IW')`;
  }
}

const PRIORITY_ORDER: Record<string, number> = { urgent: 0, high: 1, normal: 2, low: 3 };

export function createMetricsService(deps: { clock: Clock; agents: AgentService; workspaces: WorkspaceService; slaBreaches: SlaBreachSource }) {
  const { clock, agents, workspaces, slaBreaches } = deps;

  /** The range [from, to): default the last 7 days; from < to; at most 400 days. 422 otherwise. */
  function rangeOf(q: MetricsQuery): { from: Date; to: Date } {
    const now = clock.now();
    const to = q.to ? new Date(q.to) : now;
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - DEFAULT_RANGE_DAYS * 86_400_000);
    const details: FieldError[] = [];
    if (from.getTime() >= to.getTime()) details.push({ field: 'from', error: 'must be before to', received: q.from ?? from.toISOString() });
    else if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000) details.push({ field: 'to', error: `must be at most ${MAX_RANGE_DAYS} days after from`, received: q.to ?? to.toISOString() });
    if (details.length) throw new AppError('validation_error', details[0].field === 'from' ? 'from must be before to' : `The range may span at most ${MAX_RANGE_DAYS} days`, { details });
    return { from, to };
  }

  /** Filter ids must be the workspace's: another workspace's team or agent is a 404 like an unknown one. */
  async function checkFilters(db: Db, workspaceId: string, q: MetricsQuery): Promise<void> {
    if (q.team_id) await agents.requireTeam(db, workspaceId, q.team_id);
    if (q.agent_id && !(await agents.findById(db, workspaceId, q.agent_id))) throw notFound('Agent');
  }

  /** `AND …` filters on the given columns, with their named bindings. */
  function filterSql(q: MetricsQuery, cols: { team: string; agent: string; priority: string }): string {
    return [q.team_id ? ` AND ${cols.team} = :team_id` : '', q.agent_id ? ` AND ${cols.agent} = :agent_id` : '', q.priority ? ` AND ${cols.priority} = :priority` : ''].join('');
  }
  const filterBindings = (q: MetricsQuery) => ({ team_id: q.team_id ?? null, agent_id: q.agent_id ?? null, priority: q.priority ?? null });

  /** Names of agent / team group keys. */
  async function namesFor(db: Db, workspaceId: string, groupBy: GroupBy | null): Promise<Map<string, string> | null> {
    if (groupBy === 'agent') return new Map((await agents.allAgents(db, workspaceId)).map((a) => [a.id, a.name]));
    if (groupBy === 'team') return new Map((await agents.allTeams(db, workspaceId)).map((t) => [t.id, t.name]));
    return null;
  }

  function sortGroups<T extends { key: string | null }>(groups: T[], groupBy: GroupBy): T[] {
    const rank = (k: string | null) => (groupBy === 'priority' ? String(PRIORITY_ORDER[k ?? ''] ?? 9) : k ?? '\uffff');
    return groups.sort((a, b) => (rank(a.key) < rank(b.key) ? -1 : rank(a.key) > rank(b.key) ? 1 : 0));
  }

  async function prepare(db: Db, workspaceId: string, q: MetricsQuery) {
    const range = rangeOf(q);
    await checkFilters(db, workspaceId, q);
    const tz = q.group_by === 'day' || q.group_by === 'week' ? (await workspaces.get(db, workspaceId)).timezone : 'UTC';
    return { ...range, tz, bindings: { ws: workspaceId, from: range.from, to: range.to, tz, ...filterBindings(q) } };
  }

  /** Stats of one measure over [from, to), overall and per group (one scan: GROUPING SETS). */
  async function durationStats(db: Db, workspaceId: string, measure: Measure, q: MetricsQuery, range: { from: Date; to: Date; bindings: Record<string, unknown> }) {
    const m = MEASURES[measure];
    const key = q.group_by ? keySql(q.group_by, m) : 'NULL';
    const rows = (await db.raw(
      `SELECT ${q.group_by ? 'GROUPING(k) AS overall, k' : '1 AS overall, NULL AS k'}, ${statsColumns('s', 'b')}
         FROM (SELECT ${key} AS k, ${m.s} AS s, ${m.b} AS b
                 FROM ticket_metrics
                WHERE workspace_id = :ws AND ${m.at} >= :from AND ${m.at} < :to${filterSql(q, m)}) f
        GROUP BY ${q.group_by ? 'GROUPING SETS ((), (k))' : '()'}`,
      range.bindings,
    )).rows as any[];
    const overall = rows.find((r) => Number(r.overall) === 1);
    return { overall: statsOf(overall), groups: rows.filter((r) => Number(r.overall) === 0).map((r) => ({ key: r.k as string | null, stats: statsOf(r) })) };
  }

  const service = {
    // ---- facts (written by the sla module's ticket port, inside the ticket's transaction) ----

    /** A ticket's first response (an earlier one replaces a later one). */
    recordFirstResponse: (db: Db, f: MomentFact): Promise<void> => metricsStore.upsertFirstResponse(db, f),
    /** A ticket resolved: the last resolution counts. */
    recordResolution: (db: Db, f: MomentFact): Promise<void> => metricsStore.upsertResolution(db, f),
    /** A resolved ticket reopened: it is not resolved until it is again. */
    clearResolution: (db: Db, ticketId: string): Promise<void> => metricsStore.clearResolution(db, ticketId),
    /** A next-response cycle answered (its due time and when), for SLA compliance of that target. */
    recordNextResponse: (db: Db, r: { ticketId: string; workspaceId: string; cycle: number; dueAt: Date; answeredAt: Date }): Promise<void> => metricsStore.insertNextResponse(db, r),

    // ---- reports ----

    /** Tickets created in [from, to), not archived (the digest's and /stats' "new"). */
    async createdCount(db: Db, workspaceId: string, from: Date, to: Date): Promise<number> {
      const [{ n }] = await db('tickets').count({ n: '*' }).where({ workspace_id: workspaceId }).whereNull('archived_at')
        .where('created_at', '>=', from).where('created_at', '<', to);
      return Number(n);
    },

    /** GET /v1/metrics/first-response and /resolution: §4.3's shape. */
    async durations(db: Db, workspaceId: string, measure: Measure, q: MetricsQuery): Promise<DurationReport> {
      const range = await prepare(db, workspaceId, q);
      const { overall, groups } = await durationStats(db, workspaceId, measure, q, range);
      const names = await namesFor(db, workspaceId, q.group_by ?? null);
      const presented = groups.map((g) => ({ key: g.key, ...(names ? { name: g.key === null ? null : names.get(g.key) ?? null } : {}), ...g.stats }));
      return { from: range.from.toISOString(), to: range.to.toISOString(), group_by: q.group_by ?? null, overall, groups: q.group_by ? sortGroups(presented, q.group_by) : [] };
    },

    /**
     * GET /v1/metrics/sla. A target counts when its due time falls in [from, to) and it is
     * decided: met (answered / resolved by the due time) or breached (a breach was recorded).
     * Targets still running are not counted yet. compliance = met / due × 100 (null: none due).
     */
    async sla(db: Db, workspaceId: string, q: MetricsQuery) {
      const range = await prepare(db, workspaceId, q);
      const t = { at: '', agent: 't.assignee_id', team: 't.team_id', priority: 't.priority' };
      const k = (at: string) => (q.group_by ? keySql(q.group_by, { ...t, at }) : 'NULL');
      const breaches = await slaBreaches.breachesDue(db, workspaceId, 'next_response', range.from, range.to);
      const rows = (await db.raw(
        `WITH decided AS (
           SELECT 'first_response' AS target, ${k('t.first_response_due_at')} AS k,
                  NOT t.sla_breaches @> CAST(:fr AS jsonb) AND t.first_response_at <= t.first_response_due_at AS met,
                  t.sla_breaches @> CAST(:fr AS jsonb) AS breached
             FROM tickets t WHERE t.workspace_id = :ws AND t.first_response_due_at >= :from AND t.first_response_due_at < :to${filterSql(q, t)}
           UNION ALL
           SELECT 'resolution', ${k('t.resolution_due_at')},
                  NOT t.sla_breaches @> CAST(:res AS jsonb) AND t.status IN ('resolved', 'closed') AND t.resolved_at <= t.resolution_due_at,
                  t.sla_breaches @> CAST(:res AS jsonb)
             FROM tickets t WHERE t.workspace_id = :ws AND t.resolution_due_at >= :from AND t.resolution_due_at < :to${filterSql(q, t)}
           UNION ALL
           SELECT 'next_response', ${k('n.due_at')}, true, false
             FROM ticket_next_responses n JOIN tickets t ON t.id = n.ticket_id
            WHERE n.workspace_id = :ws AND n.due_at >= :from AND n.due_at < :to AND n.answered_at <= n.due_at${filterSql(q, t)}
           UNION ALL
           SELECT 'next_response', ${k('b.due_at')}, false, true
             FROM jsonb_to_recordset(CAST(:breaches AS jsonb)) AS b(ticket_id text, due_at timestamptz) JOIN tickets t ON t.id = b.ticket_id
            WHERE t.workspace_id = :ws${filterSql(q, t)}
         )
         SELECT target, ${q.group_by ? 'GROUPING(k) AS overall, k' : '1 AS overall, NULL AS k'}, count(*) FILTER (WHERE met) AS met, count(*) FILTER (WHERE breached) AS breached
           FROM decided WHERE met OR breached
          GROUP BY ${q.group_by ? 'GROUPING SETS ((target), (target, k))' : 'target'}`,
        {
          ...range.bindings, fr: JSON.stringify([{ target: 'first_response' }]), res: JSON.stringify([{ target: 'resolution' }]),
          breaches: JSON.stringify(breaches.map((b) => ({ ticket_id: b.ticketId, due_at: b.dueAt.toISOString() }))),
        },
      )).rows as any[];
      const now = (await db.raw(
        `SELECT count(*) FILTER (WHERE t.sla_at_risk AND NOT t.sla_breached) AS at_risk, count(*) FILTER (WHERE t.sla_breached) AS breached
           FROM tickets t WHERE t.workspace_id = :ws AND t.archived_at IS NULL AND t.status IN ${OPEN} AND (t.sla_at_risk OR t.sla_breached)${filterSql(q, t)}`,
        range.bindings,
      )).rows[0];
      const targetsOf = (rs: any[]): Targets => {
        const out = {} as Targets;
        for (const target of SLA_TARGETS) {
          const r = rs.find((x) => x.target === target);
          const met = Number(r?.met ?? 0);
          const breached = Number(r?.breached ?? 0);
          out[target] = { due: met + breached, met, breached, compliance_percent: met + breached ? Math.round((met / (met + breached)) * 10000) / 100 : null };
        }
        return out;
      };
      const report: Record<string, unknown> = {
        from: range.from.toISOString(), to: range.to.toISOString(), targets: targetsOf(rows.filter((r) => Number(r.overall) === 1)),
        at_risk_now: Number(now.at_risk), breached_open_now: Number(now.breached),
      };
      if (q.group_by) {
        const names = await namesFor(db, workspaceId, q.group_by);
        const keys = [...new Set(rows.filter((r) => Number(r.overall) === 0).map((r) => r.k as string | null))];
        report.group_by = q.group_by;
        report.groups = sortGroups(keys.map((key) => ({
          key, ...(names ? { name: key === null ? null : names.get(key) ?? null } : {}),
          targets: targetsOf(rows.filter((r) => Number(r.overall) === 0 && r.k === key)),
        })), q.group_by);
      }
      return report;
    },

    /** GET /v1/metrics/backlog: tickets not resolved/closed and not archived, now. */
    async backlog(db: Db, workspaceId: string, q: Omit<MetricsQuery, 'from' | 'to' | 'group_by'>) {
      await checkFilters(db, workspaceId, q);
      const asOf = clock.now();
      const t = { agent: 'assignee_id', team: 'team_id', priority: 'priority' };
      const rows = (await db.raw(
        `SELECT status, priority, team_id, assignee_id IS NULL AS unassigned,
                CASE WHEN age < interval '1 hour' THEN 'lt_1h' WHEN age < interval '4 hours' THEN 'h1_to_4'
                     WHEN age < interval '24 hours' THEN 'h4_to_24' WHEN age < interval '3 days' THEN 'd1_to_3' ELSE 'gt_3d' END AS age,
                count(*) AS n
           FROM (SELECT status, priority, team_id, assignee_id, CAST(:now AS timestamptz) - created_at AS age
                   FROM tickets WHERE workspace_id = :ws AND archived_at IS NULL AND status IN ${OPEN}${filterSql(q, t)}) b
          GROUP BY 1, 2, 3, 4, 5`,
        { ws: workspaceId, now: asOf, ...filterBindings(q) },
      )).rows as any[];
      const byStatus: Record<string, number> = { open: 0, in_progress: 0, waiting_on_customer: 0 };
      const byPriority: Record<string, number> = { low: 0, normal: 0, high: 0, urgent: 0 };
      const byAge: Record<string, number> = { lt_1h: 0, h1_to_4: 0, h4_to_24: 0, d1_to_3: 0, gt_3d: 0 };
      const byTeam = new Map<string | null, number>();
      let total = 0;
      let unassigned = 0;
      for (const r of rows) {
        const n = Number(r.n);
        total += n;
        if (r.unassigned) unassigned += n;
        byStatus[r.status] += n;
        byPriority[r.priority] += n;
        byAge[r.age] += n;
        byTeam.set(r.team_id, (byTeam.get(r.team_id) ?? 0) + n);
      }
      const names = new Map((await agents.allTeams(db, workspaceId)).map((x) => [x.id, x.name]));
      const teams = [...byTeam].map(([key, count]) => ({ key, name: key === null ? null : names.get(key) ?? null, count }))
        .sort((a, b) => b.count - a.count || (a.key ?? '\uffff').localeCompare(b.key ?? '\uffff'));
      return { as_of: asOf.toISOString(), total, unassigned, by_status: byStatus, by_priority: byPriority, by_age: byAge, by_team: teams };
    },

    /** GET /v1/metrics/csat: ratings given in [from, to) (csat_at). */
    async csat(db: Db, workspaceId: string, q: MetricsQuery) {
      const range = await prepare(db, workspaceId, q);
      const t = { at: 'csat_at', agent: 'assignee_id', team: 'team_id', priority: 'priority' };
      const rows = (await db.raw(
        `SELECT ${q.group_by ? keySql(q.group_by, t) : 'NULL'} AS k, csat_rating AS rating, count(*) AS n
           FROM tickets WHERE workspace_id = :ws AND csat_at >= :from AND csat_at < :to AND csat_rating IS NOT NULL${filterSql(q, t)}
          GROUP BY 1, 2`,
        range.bindings,
      )).rows as any[];
      const figures = (rs: any[]) => {
        const distribution: Distribution = { 1: 0, 2: 0, 3: 0, 4: 0, 5: 0 };
        let count = 0;
        let sum = 0;
        for (const r of rs) {
          const n = Number(r.n);
          distribution[String(r.rating) as keyof Distribution] += n;
          count += n;
          sum += n * Number(r.rating);
        }
        return { count, average: count ? Math.round((sum / count) * 1000) / 1000 : null, distribution };
      };
      const report: Record<string, unknown> = { from: range.from.toISOString(), to: range.to.toISOString(), ...figures(rows) };
      if (q.group_by) {
        const names = await namesFor(db, workspaceId, q.group_by);
        const keys = [...new Set(rows.map((r) => r.k as string | null))];
        report.group_by = q.group_by;
        report.groups = sortGroups(keys.map((key) => ({ key, ...(names ? { name: key === null ? null : names.get(key) ?? null } : {}), ...figures(rows.filter((r) => r.k === key)) })), q.group_by);
      }
      return report;
    },

    /**
     * GET /v1/metrics/agents, one item per agent (active, or with figures in the range):
     * assigned = tickets created in the range (not archived) that the agent holds; resolved = resolutions in
     * the range with the agent as assignee; open_now; first response (answered first) and
     * resolution stats; the average CSAT of the agent's tickets rated in the range.
     */
    async agents(db: Db, workspaceId: string, q: Omit<MetricsQuery, 'group_by'>) {
      const range = await prepare(db, workspaceId, q);
      const noAgent = { ...q, agent_id: undefined };
      const t = { agent: 'assignee_id', team: 'team_id', priority: 'priority' };
      const [fr, res] = [await durationStats(db, workspaceId, 'first_response', { ...noAgent, group_by: 'agent' }, range), await durationStats(db, workspaceId, 'resolution', { ...noAgent, group_by: 'agent' }, range)];
      const agentFilter = q.agent_id ? ' AND assignee_id = :agent_id' : ' AND assignee_id IS NOT NULL';
      const counts = (await db.raw(
        `SELECT assignee_id AS id, sum(assigned) AS assigned, sum(open_now) AS open_now, sum(rated) AS rated, sum(rating) AS rating FROM (
           SELECT assignee_id, count(*) AS assigned, 0 AS open_now, 0 AS rated, 0 AS rating FROM tickets
            WHERE workspace_id = :ws AND archived_at IS NULL AND created_at >= :from AND created_at < :to${agentFilter}${filterSql(noAgent, t)} GROUP BY 1
           UNION ALL
           SELECT assignee_id, 0, count(*), 0, 0 FROM tickets
            WHERE workspace_id = :ws AND archived_at IS NULL AND status IN ${OPEN}${agentFilter}${filterSql(noAgent, t)} GROUP BY 1
           UNION ALL
           SELECT assignee_id, 0, 0, count(*), sum(csat_rating) FROM tickets
            WHERE workspace_id = :ws AND csat_at >= :from AND csat_at < :to AND csat_rating IS NOT NULL${agentFilter}${filterSql(noAgent, t)} GROUP BY 1
         ) x GROUP BY 1`,
        range.bindings,
      )).rows as any[];
      const byId = new Map(counts.map((r) => [r.id as string, r]));
      const frOf = new Map(fr.groups.map((g) => [g.key, g.stats]));
      const resOf = new Map(res.groups.map((g) => [g.key, g.stats]));
      const items = (await agents.allAgents(db, workspaceId))
        .filter((a) => (q.agent_id ? a.id === q.agent_id : a.active || byId.has(a.id) || frOf.has(a.id) || resOf.has(a.id)))
        .map((a) => {
          const c = byId.get(a.id);
          const rated = Number(c?.rated ?? 0);
          const resolution = resOf.get(a.id) ?? statsOf(null);
          return {
            agent_id: a.id, name: a.name, assigned: Number(c?.assigned ?? 0), resolved: resolution.count, open_now: Number(c?.open_now ?? 0),
            first_response: frOf.get(a.id) ?? statsOf(null), resolution,
            csat_average: rated ? Math.round((Number(c.rating) / rated) * 1000) / 1000 : null,
          };
        });
      return { from: range.from.toISOString(), to: range.to.toISOString(), items };
    },
  };
  return service;
}

export type MetricsService = ReturnType<typeof createMetricsService>;
