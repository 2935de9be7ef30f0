import type { Knex } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import type { RouteDef } from './route.js';
import type { Registry } from 'prom-client';

const okSchema = { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } as const;

/** Probes, metrics and the API description: public, no key needed. */
export function systemRoutes(deps: { db: Knex; registry: Registry; beforeScrape?: () => Promise<void>; openApi: () => object; docsPage: () => string }): RouteDef[] {
  return [
    {
      method: 'get', path: '/healthz', tag: 'system', auth: 'none', summary: 'The process is up',
      responses: { 200: { description: 'Up', schema: okSchema } },
      handler(ctx) { ctx.body = { status: 'ok' }; },
    },
    {
      method: 'get', path: '/readyz', tag: 'system', auth: 'none', summary: 'The database is reachable',
      responses: { 200: { description: 'Ready', schema: okSchema }, 503: { description: 'Database unreachable' } },
      async handler(ctx) {
        try {
          // Bound the whole probe, waiting for a pooled connection included.
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            deps.db.raw('SELECT 1'),
            new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('readyz timeout')), 2000); }),
          ]).finally(() => clearTimeout(timer));
        } catch {
          throw new AppError('service_unavailable', 'The database is not reachable');
        }
        ctx.body = { status: 'ok' };
      },
    },
    {
      method: 'get', path: '/metrics', tag: 'system', auth: 'none', summary: 'Prometheus metrics',
      responses: { 200: { description: 'Metrics in the Prometheus text format', contentType: 'text/plain' } },
      async handler(ctx) {
        await deps.beforeScrape?.();
        ctx.type = deps.registry.contentType;
        ctx.body = await deps.registry.metrics();
      },
    },
    {
      method: 'get', path: '/v1/openapi.json', tag: 'system', auth: 'none', summary: 'This API as OpenAPI 3.1',
      responses: { 200: { description: 'The OpenAPI document' } },
      handler(ctx) { ctx.body = deps.openApi(); },
    },
    {
      method: 'get', path: '/docs', tag: 'system', auth: 'none', summary: 'Human-readable API docs',
      responses: { 200: { description: 'HTML', contentType: 'text/html' } },
      handler(ctx) { ctx.type = 'html'; ctx.body = deps.docsPage(); },
    },
  ];
}
