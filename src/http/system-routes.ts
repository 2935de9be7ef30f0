import type { Knex } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import { DOCS_ASSET_CACHE, DOCS_ASSET_NAMES, DOCS_CSP, docsAsset } from './docs-page.js';
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
          // Retry-After as on every other answer that the database is away (src/http/errors.ts).
          throw new AppError('service_unavailable', 'The database is not reachable', { headers: { 'Retry-After': '5' } });
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
      handler(ctx) {
        ctx.set('Content-Security-Policy', DOCS_CSP);
        ctx.set('X-Content-Type-Options', 'nosniff');
        ctx.type = 'html';
        ctx.body = deps.docsPage();
      },
    },
    {
      method: 'get', path: '/docs/assets/:file', tag: 'system', auth: 'none', summary: 'A file of the docs renderer', undocumented: true,
      notFoundLabel: 'Asset',
      params: { type: 'object', required: ['file'], additionalProperties: false, properties: { file: { type: 'string', enum: DOCS_ASSET_NAMES } } },
      // `v` only busts caches: the page puts the versions in it.
      query: { type: 'object', additionalProperties: false, properties: { v: { type: 'string', maxLength: 100 } } },
      responses: { 200: { description: 'The file' } },
      handler(ctx) {
        const asset = docsAsset(String(ctx.params.file))!;
        ctx.set('Cache-Control', DOCS_ASSET_CACHE);
        ctx.set('Content-Security-Policy', DOCS_CSP);
        ctx.set('X-Content-Type-Options', 'nosniff');
        ctx.type = asset.type;
        ctx.body = asset.body;
      },
    },
  ];
}
