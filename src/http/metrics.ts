import type { Middleware } from 'koa';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  middleware: Middleware;
}

/** A registry per app (tests run several apps in one process), with request counts and latencies by route. */
export function createHttpMetrics(opts: { processMetrics: boolean }): HttpMetrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'topicdesk_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'topicdesk_http_request_duration_seconds',
    help: 'HTTP request latency by method and route template',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    async middleware(ctx, next) {
      const end = duration.startTimer();
      try {
        await next();
      } finally {
        // The route template, never the raw path: ids must not explode label cardinality.
        const route = (ctx as any)._matchedRoute ?? 'unmatched';
        end({ method: ctx.method, route });
        requests.inc({ method: ctx.method, route, status: String(ctx.status) });
      }
    },
  };
}
