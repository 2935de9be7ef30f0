import { problemSchema } from './common-schemas.js';
import { ERROR_CODES } from '../kernel/errors.js';
import type { RouteDef } from './route.js';

/** Koa `/v1/api-keys/:id` → OpenAPI `/v1/api-keys/{id}`. */
const toOpenApiPath = (p: string) => p.replace(/:(\w+)/g, '{$1}');

function parameters(def: RouteDef) {
  const out: unknown[] = [];
  for (const [where, schema] of [['path', def.params], ['query', def.query]] as const) {
    const props = (schema?.properties ?? {}) as Record<string, Record<string, unknown>>;
    const required = (schema?.required ?? []) as string[];
    for (const [name, s] of Object.entries(props)) {
      const { description, ...rest } = s;
      out.push({ name, in: where, required: where === 'path' || required.includes(name), schema: rest, ...(description ? { description } : {}) });
    }
  }
  return out;
}

/** OpenAPI 3.1 built from the very route definitions the server validates with. */
export function buildOpenApi(defs: RouteDef[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of defs) {
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(def.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.schema ? { content: { [r.contentType ?? 'application/json']: { schema: r.schema } } } : {}),
      };
    }
    const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
    const mutating = def.auth === 'key' && def.method !== 'get';
    if (def.auth === 'key') {
      responses['401'] = problem('Missing, invalid, expired or revoked API key');
      if (def.scope) responses['403'] = problem(`The key lacks the scope ${def.scope}`);
      responses['429'] = problem('Rate limit exceeded (see Retry-After)');
      responses['503'] = problem('The database is unreachable (see Retry-After)');
    }
    if (mutating) {
      responses['400'] = problem('Malformed Idempotency-Key, invalid JSON or unreadable body');
      responses['409'] ??= problem('idempotency_key_reused or idempotency_key_in_progress (see Retry-After)');
    }
    if (def.body) {
      responses['413'] = problem('Body over 1 MB');
      responses['415'] = problem('Body that is not application/json');
    }
    if (def.params) responses['404'] = problem('Not found (also for ids of other workspaces)');
    if (def.body || def.query) responses['422'] = problem('Validation error');
    const idempotencyHeader = mutating
      ? [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[\\x20-\\x7E]{1,255}$' }, description: 'Replays the first response for 24 h' }]
      : [];
    paths[toOpenApiPath(def.path)] ??= {};
    paths[toOpenApiPath(def.path)][def.method] = {
      operationId: `${def.method}${def.path.replace(/[/:-](\w)/g, (_, c: string) => c.toUpperCase()).replace(/\W/g, '')}`,
      summary: def.summary,
      tags: [def.tag],
      ...(def.auth === 'key' ? { security: [{ apiKey: [] }] } : { security: [] }),
      ...(def.scope ? { 'x-required-scope': def.scope } : {}),
      parameters: [...parameters(def), ...idempotencyHeader],
      // A body whose fields are all optional may be left out altogether.
      ...(def.body ? { requestBody: { required: Array.isArray(def.body.required) && def.body.required.length > 0, content: { 'application/json': { schema: def.body } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'topicdesk API',
      version,
      description: `Support desk inside Telegram. Errors are application/problem+json with a stable \`code\`: ${Object.keys(ERROR_CODES).join(', ')}.`,
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'td_live_… or td_test_…' } },
      schemas: { Problem: { ...problemSchema, properties: { ...problemSchema.properties, code: { type: 'string', enum: Object.keys(ERROR_CODES) } } } },
    },
    paths,
  };
}
