import Router from '@koa/router';
import Koa from 'koa';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { apiKeyRoutes } from './auth/api-key-routes.js';
import { authenticate, requireScope } from './auth/authenticate-middleware.js';
import type { Deps, Services } from './container.js';
import { jsonBody } from './http/body.js';
import { renderDocsPage } from './http/docs-page.js';
import { AppError } from './kernel/errors.js';
import { renderProblem, toAppError } from './http/errors.js';
import { idempotency } from './http/idempotency.js';
import { idempotencyKeys } from './http/idempotency-keys.js';
import { createHttpMetrics, type OpsMetrics } from './http/metrics.js';
import { buildOpenApi } from './http/openapi.js';
import { openApiExtras } from './openapi-components.js';
import { requestId } from './http/request-id.js';
import { mountRoutes, type AppState, type RouteDef } from './http/route.js';
import { systemRoutes } from './http/system-routes.js';
import { workspaceRoutes } from './workspaces/workspace-routes.js';
import { contactRoutes } from './contacts/contact-routes.js';
import { cannedRoutes } from './canned/canned-routes.js';
import { slaPolicyRoutes } from './sla/sla-policy-routes.js';
import { escalationRoutes } from './escalation/escalation-routes.js';
import { messageRoutes } from './messages/message-routes.js';
import { ticketRoutes } from './tickets/ticket-routes.js';
import { assignmentRoutes } from './assignment/assignment-routes.js';
import { queueRoutes } from './assignment/queue-routes.js';
import { agentRoutes } from './agents/agent-routes.js';
import { webhookRoutes } from './webhooks/webhook-routes.js';
import { telegramRoutes } from './telegram/telegram-routes.js';
import { accountRoutes } from './accounts/account-routes.js';
import { intakeFormRoutes } from './intake/intake-form-routes.js';
import { mountMcp } from './mcp/mcp-endpoint.js';
import { mcpTools } from './mcp/mcp-tools.js';
import { metricsRoutes } from './metrics/metrics-routes.js';
import { mountDashboard } from './dashboard/dashboard-routes.js';
import { PROJECT_ROOT } from './lib/project-root.js';

const VERSION: string = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).version;

export interface AppOptions {
  services: Services;
  /** Extra routes (tests use this to exercise middleware with controlled handlers). */
  extraRoutes?: RouteDef[];
  /** Node process metrics on /metrics (off in tests: several apps share one process). */
  processMetrics?: boolean;
  /** SLA sweep duration and job failures, reported by the background work (main.ts); fresh ones otherwise. */
  ops?: OpsMetrics;
  /** Called when a Telegram update arrived through the webhook route (wakes the update workers). */
  onTelegramUpdate?: () => void;
}

/**
 * The Koa app, without listen(). Middleware, top to bottom:
 * request id → metrics → access log → problem+json errors → router
 * (per route: auth+rate limit → scope → body → validation → transaction + idempotency → handler;
 * POST /mcp: the same auth+rate limit → the MCP server) → 404.
 */
export function createApp(deps: Deps, opts: AppOptions) {
  const { config, db, logger } = deps;
  const { services } = opts;
  const app = new Koa<AppState>({ proxy: false });
  const metrics = createHttpMetrics({ processMetrics: opts.processMetrics ?? false, db, clock: deps.clock, ops: opts.ops });

  const apiRoutes: RouteDef[] = [
    ...apiKeyRoutes(services.apiKeys, deps.clock),
    ...workspaceRoutes(services.workspaces),
    ...ticketRoutes(services.tickets),
    ...assignmentRoutes(services.assignment),
    ...queueRoutes(services.queues),
    ...agentRoutes(services.agents),
    ...contactRoutes(services.contacts, logger),
    ...messageRoutes(services.messages),
    ...cannedRoutes(services.canned),
    ...slaPolicyRoutes(services.slaPolicies),
    ...escalationRoutes(services.escalations),
    ...webhookRoutes(services.webhooks, deps.clock),
    ...accountRoutes(services.accounts),
    ...intakeFormRoutes(services.intakeForms),
    ...metricsRoutes(services.metrics),
    ...(opts.extraRoutes ?? []),
  ];
  let openApiDoc: object | undefined;
  let docsHtml: string | undefined;
  const openApi = () => (openApiDoc ??= buildOpenApi(routes, VERSION, openApiExtras));
  const routes: RouteDef[] = [
    ...systemRoutes({ db, registry: metrics.registry, beforeScrape: metrics.refreshQueues, openApi, docsPage: () => (docsHtml ??= renderDocsPage({ title: 'topicdesk API', version: VERSION })) }),
    ...telegramRoutes({ db, clock: deps.clock, accounts: services.accounts, webhookSecret: config.telegram.webhookSecret, onStored: opts.onTelegramUpdate }),
    ...apiRoutes,
  ];

  const router = new Router<AppState>();
  const authenticateKey = authenticate({ db, defaultRateLimitPerMinute: config.rateLimit.defaultPerMinute, authenticateRequest: services.apiKeys.authenticateRequest });
  const parseBody = jsonBody(config.http.bodyLimitBytes);
  const idempotencyOptions = { lockTimeoutMs: config.idempotency.lockTimeoutMs, retentionHours: config.idempotency.retentionHours };
  mountRoutes(router, routes, {
    authenticate: authenticateKey,
    requireScope,
    parseBody,
    idempotency: idempotency({ db, ...idempotencyOptions }),
    validateResponses: config.validateResponses,
  });
  // MCP (SPEC §8): the same keys, rate limit, services and idempotency store as the API.
  mountMcp(router, {
    tools: mcpTools(services), authenticate: authenticateKey, parseBody, db, logger,
    keys: idempotencyKeys(idempotencyOptions), version: VERSION,
  });

  // The team leads' dashboard (SPEC §6): its page and sign-in, and the metrics routes behind its session.
  mountDashboard(router, {
    dashboard: services.dashboard, db, publicUrl: config.publicUrl, metricsRoutes: metricsRoutes(services.metrics),
    requireScope, validateResponses: config.validateResponses,
  });

  app.use(requestId());
  app.use(metrics.middleware);
  app.use(async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      logger.info({
        request_id: ctx.state.requestId, method: ctx.method, route: (ctx as any)._matchedRoute ?? null,
        status: ctx.status, ms: Math.round((performance.now() - started) * 10) / 10, key_id: ctx.state.auth?.keyId,
      }, 'request');
    }
  });
  app.use(async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body == null) throw new AppError('not_found', `No route for ${ctx.method} ${ctx.path}`);
      // allowedMethods (below, throw: false) has set the status and Allow: keep Allow (RFC 9110 wants it on a 405).
      if ((ctx.status === 405 || ctx.status === 501) && ctx.body == null) {
        const allow = ctx.response.get('Allow');
        throw new AppError('method_not_allowed', ctx.status === 405 ? `${ctx.method} is not allowed on this path; it allows ${allow}` : `${ctx.method} is not supported`, {
          headers: { Allow: allow }, status: 405,
        });
      }
    } catch (err) {
      renderProblem(ctx, toAppError(err, logger, ctx.state.requestId));
    }
  });
  app.use(router.routes());
  // Not thrown: the router then sets Allow, which a thrown error would not carry.
  app.use(router.allowedMethods({ throw: false }));
  // Koa would print errors to stderr itself; ours are logged by the problem middleware.
  app.silent = true;
  return app;
}
