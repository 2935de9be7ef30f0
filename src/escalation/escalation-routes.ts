import { idParams } from '../http/common-schemas.js';
import { pageSchema, presentPage } from '../http/pagination.js';
import { defineRoute, type AppContext, type RouteDef } from '../http/route.js';
import {
  createEscalationRuleBody, escalationRuleSchema, listEscalationRulesQuery, patchEscalationRuleBody, type EscalationRuleJson,
} from './escalation-schemas.js';
import type { EscalationRule, EscalationService } from './escalation-service.js';

export function presentEscalationRule(r: EscalationRule): EscalationRuleJson {
  return {
    id: r.id,
    name: r.name,
    enabled: r.enabled,
    conditions: r.conditions,
    actions: r.actions,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

/** Escalation rules (SPEC §5): every route needs manage:settings. */
export function escalationRoutes(escalations: EscalationService): RouteDef[] {
  const ws = (ctx: AppContext) => ctx.state.auth.workspace.id;
  const tag = 'escalation rules';
  const scope = 'manage:settings' as const;
  const one = { params: idParams('esc'), notFoundLabel: 'Escalation rule' } as const;
  const written = { 200: { description: 'The escalation rule', schema: escalationRuleSchema } };
  const refused = {
    404: { description: 'A team_id or agent_id of another workspace' },
    422: { description: 'Invalid; also an id that is no team or agent at all, or a notify text with an unknown variable (named)' },
  };
  return [
    defineRoute({
      method: 'get', path: '/v1/escalation-rules', tag, auth: 'key', scope,
      summary: 'List escalation rules, oldest first (the order they are evaluated in); filter by enabled',
      query: listEscalationRulesQuery,
      responses: { 200: { description: 'A page of escalation rules', schema: pageSchema(escalationRuleSchema) } },
      async handler(ctx, { query }) {
        ctx.body = presentPage(await escalations.list(ctx.state.db, ws(ctx), query), presentEscalationRule);
      },
    }),
    defineRoute({
      method: 'post', path: '/v1/escalation-rules', tag, auth: 'key', scope,
      summary: 'Create an escalation rule: it fires once per ticket each time its conditions become true',
      body: createEscalationRuleBody,
      responses: { 201: { description: 'The escalation rule', schema: escalationRuleSchema }, ...refused },
      async handler(ctx, { body }) {
        const r = await escalations.create(ctx.state.db, ws(ctx), body);
        ctx.status = 201;
        ctx.set('Location', `/v1/escalation-rules/${r.id}`);
        ctx.body = presentEscalationRule(r);
      },
    }),
    defineRoute({
      method: 'get', path: '/v1/escalation-rules/:id', tag, auth: 'key', scope, ...one,
      summary: 'One escalation rule',
      responses: written,
      async handler(ctx, { params }) {
        ctx.body = presentEscalationRule(await escalations.get(ctx.state.db, ws(ctx), params.id));
      },
    }),
    defineRoute({
      method: 'patch', path: '/v1/escalation-rules/:id', tag, auth: 'key', scope, ...one,
      summary: 'Change an escalation rule; conditions and actions are replaced whole',
      body: patchEscalationRuleBody,
      responses: { ...written, ...refused },
      async handler(ctx, { params, body }) {
        ctx.body = presentEscalationRule(await escalations.update(ctx.state.db, ws(ctx), params.id, body));
      },
    }),
    defineRoute({
      method: 'delete', path: '/v1/escalation-rules/:id', tag, auth: 'key', scope, ...one,
      summary: 'Archive an escalation rule: it no longer fires and is not found afterwards',
      responses: { 204: { description: 'Archived' } },
      async handler(ctx, { params }) {
        await escalations.archive(ctx.state.db, ws(ctx), params.id);
        ctx.status = 204;
      },
    }),
  ];
}
