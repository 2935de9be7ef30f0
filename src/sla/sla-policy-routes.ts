import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import type { Priority } from '../tickets/ticket-status.js';
import {
  createSlaPolicyBody, listSlaPoliciesQuery, patchSlaPolicyBody, slaPolicySchema, type SlaPolicyJson, type SlaTargetJson,
} from './sla-policy-schemas.js';
import type { SlaPolicy, SlaPolicyService, SlaTarget } from './sla-policy-service.js';

/** A target as the API shows it: next_response_minutes only when the policy sets one. */
function presentTarget(t: SlaTarget): SlaTargetJson {
  return t.nextResponseMinutes === null
    ? { first_response_minutes: t.firstResponseMinutes, resolution_minutes: t.resolutionMinutes }
    : { first_response_minutes: t.firstResponseMinutes, next_response_minutes: t.nextResponseMinutes, resolution_minutes: t.resolutionMinutes };
}

export function presentSlaPolicy(p: SlaPolicy): SlaPolicyJson {
  const targets: Partial<Record<Priority, SlaTargetJson>> = {};
  for (const [priority, t] of Object.entries(p.targets) as [Priority, SlaTarget][]) targets[priority] = presentTarget(t);
  return {
    id: p.id,
    name: p.name,
    is_default: p.isDefault,
    team_id: p.teamId,
    targets,
    warn_at_percent: p.warnAtPercent,
    pause_while_waiting_on_customer: p.pauseWhileWaitingOnCustomer,
    business_hours: p.businessHours && { timezone: p.businessHours.timezone, weekly: p.businessHours.weekly, holidays: p.businessHours.holidays },
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}

/** SLA policies (SPEC §5): every route needs manage:settings. */
export function slaPolicyRoutes(policies: SlaPolicyService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const tag = 'sla policies';
  const scope = 'manage:settings' as const;
  const one = { params: idParams('sla'), notFoundLabel: 'SLA policy' } as const;
  const written = { 200: { description: 'The SLA policy', schema: slaPolicySchema } };
  return [
    defineRoute({
      method: 'get', path: '/v1/sla-policies', tag, auth: 'key', scope,
      summary: 'List SLA policies, oldest first; filter by team_id (none: without a team) and is_default',
      query: listSlaPoliciesQuery,
      responses: { 200: { description: 'A page of SLA policies', schema: pageSchema(slaPolicySchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await policies.list(ctx.state.db, ws(ctx), query), presentSlaPolicy);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/sla-policies', tag, auth: 'key', scope,
      summary: 'Create an SLA policy; is_default: true makes it the default (the previous default is unset)',
      body: createSlaPolicyBody,
      responses: {
        201: { description: 'The SLA policy', schema: slaPolicySchema },
        404: { description: 'team_id is not a team of the workspace' },
        409: { description: 'The team already has a live SLA policy' },
      },
      async handler(ctx, { body }) {
        const p = await policies.create(ctx.state.db, ws(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/v1/sla-policies/${p.id}`);
        ctx.body = presentSlaPolicy(p);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/sla-policies/:id', tag, auth: 'key', scope, ...one,
      summary: 'One SLA policy',
      responses: written,
      async handler(ctx, { params }) {
        ctx.body = presentSlaPolicy(await policies.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/sla-policies/:id', tag, auth: 'key', scope, ...one,
      summary: 'Change an SLA policy; targets and business_hours are replaced whole; is_default: true unsets the previous default',
      body: patchSlaPolicyBody,
      responses: { ...written, 409: { description: 'The team already has a live SLA policy' } },
      async handler(ctx, { params, body }) {
        ctx.body = presentSlaPolicy(await policies.update(ctx.state.db, ws(ctx), params.id, body));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/sla-policies/:id', tag, auth: 'key', scope, ...one,
      summary: 'Archive an SLA policy: not found afterwards, kept for the tickets that used it; archiving the default leaves none',
      responses: { 204: { description: 'Archived' } },
      async handler(ctx, { params }) {
        await policies.archive(ctx.state.db, ws(ctx), params.id);
        ctx.status = 204;
      },
    }),
  ];
}
