import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import {
  agentsQuery, agentsReportSchema, backlogQuery, backlogSchema, csatSchema, durationReportSchema, rangeQuery, slaReportSchema,
} from './metrics-schemas.js';
import type { MetricsService } from './metrics-service.js';

/** Metrics for team leads (SPEC §6): every route needs read:analytics. */
export function metricsRoutes(metrics: MetricsService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const tag = 'metrics';
  const scope = 'read:analytics' as const;
  const bad = { 422: { description: 'A bad date, from ≥ to, a range over 400 days, an unknown group_by or priority, a malformed id' } };
  const unknown = { 404: { description: 'team_id or agent_id is not a team / agent of the workspace' } };
  const range = 'A ticket counts when its measured moment falls in [from, to) (default: the last 7 days; at most 400 days)';
  return [
    defineRoute({
      method: 'get', path: '/v1/metrics/first-response', tag, auth: 'key', scope,
      summary: `Time to first response (first_response_at − created_at): count, mean, exact p50/p90, max, in wall and business seconds; group_by agent (who answered first), team, priority, day, week. ${range}`,
      query: rangeQuery,
      responses: { 200: { description: 'The figures', schema: durationReportSchema }, ...unknown, ...bad },
      async handler(ctx, { query }) {
        ctx.body = await metrics.durations(ctx.state.db, ws(ctx), 'first_response', query);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/metrics/resolution', tag, auth: 'key', scope,
      summary: `Time to resolution (last resolved_at − created_at) like first-response; group_by agent = the assignee at resolution. ${range}`,
      query: rangeQuery,
      responses: { 200: { description: 'The figures', schema: durationReportSchema }, ...unknown, ...bad },
      async handler(ctx, { query }) {
        ctx.body = await metrics.durations(ctx.state.db, ws(ctx), 'resolution', query);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/metrics/sla', tag, auth: 'key', scope,
      summary: 'SLA compliance per target: targets due in [from, to) and decided (met by the due time, or breached); at risk and breached open tickets now; groups with group_by',
      query: rangeQuery,
      responses: { 200: { description: 'The figures', schema: slaReportSchema }, ...unknown, ...bad },
      async handler(ctx, { query }) {
        ctx.body = await metrics.sla(ctx.state.db, ws(ctx), query);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/metrics/backlog', tag, auth: 'key', scope,
      summary: 'The backlog now (no range): tickets not resolved/closed and not archived, by status, priority, age and team',
      query: backlogQuery,
      responses: { 200: { description: 'The backlog', schema: backlogSchema }, ...unknown, ...bad },
      async handler(ctx, { query }) {
        ctx.body = await metrics.backlog(ctx.state.db, ws(ctx), query);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/metrics/csat', tag, auth: 'key', scope,
      summary: `Customer ratings given in [from, to): count, average, distribution 1-5; groups with group_by (agent = the assignee). ${range}`,
      query: rangeQuery,
      responses: { 200: { description: 'The figures', schema: csatSchema }, ...unknown, ...bad },
      async handler(ctx, { query }) {
        ctx.body = await metrics.csat(ctx.state.db, ws(ctx), query);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/metrics/agents', tag, auth: 'key', scope,
      summary: `Per agent: assigned, resolved, open now, first response and resolution stats, average CSAT. ${range}`,
      query: agentsQuery,
      responses: { 200: { description: 'One item per agent (active, or with figures in the range)', schema: agentsReportSchema }, ...unknown, ...bad },
      async handler(ctx, { query }) {
        ctx.body = await metrics.agents(ctx.state.db, ws(ctx), query);
      },
    }),
  ];
}
