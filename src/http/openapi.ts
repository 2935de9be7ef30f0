import stringify from 'safe-stable-stringify';
import { problemSchema } from './common-schemas.js';
import { exampleFor } from './openapi-examples.js';
import { ERROR_CODES } from '../kernel/errors.js';
import { compile, type Schema } from '../kernel/validation.js';
import type { RouteDef } from './route.js';

/** What the document names beyond the routes; app.ts fills it from the modules (http may not import them). */
export interface OpenApiExtras {
  /**
   * Response schemas by component name (`Ticket: ticketSchema`). Each becomes
   * `components.schemas.<name>`, and every identical object in a response, a webhook or
   * another component becomes a `$ref` to it.
   */
  schemas?: Record<string, Schema>;
  /** Id prefix of each named schema's `id`, for examples (`Ticket: 'tkt'`). */
  idPrefixes?: Record<string, string>;
  /** OpenAPI 3.1 `webhooks`: what topicdesk POSTs to an endpoint, by event type. */
  webhooks?: Record<string, { summary: string; payload: Schema }>;
}

/** Koa `/v1/api-keys/:id` → OpenAPI `/v1/api-keys/{id}`. */
const toOpenApiPath = (p: string) => p.replace(/:(\w+)/g, '{$1}');
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });

const HEADERS = {
  'X-Request-Id': { description: 'The request id (yours when given, else generated); also in problem bodies', schema: { type: 'string' } },
  'X-RateLimit-Limit': { description: 'Requests allowed per minute for this key', schema: { type: 'integer' } },
  'X-RateLimit-Remaining': { description: 'Requests left in the current window', schema: { type: 'integer' } },
  'X-RateLimit-Reset': { description: 'Seconds until the window resets (not an epoch)', schema: { type: 'integer' } },
  'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } },
  'Idempotent-Replayed': { description: '`true` when this is the stored response of an earlier request with the same Idempotency-Key', schema: { type: 'string', enum: ['true'] } },
} as const;

/** Error responses every key route may give: description, and whether Retry-After comes with it. */
const PROBLEMS = {
  Unauthorized: ['Missing, invalid, expired or revoked API key', false],
  Forbidden: ['The key lacks the scope of the operation (x-required-scope), named in the body\'s required_scope', false],
  RateLimited: ['Rate limit exceeded', true],
  Unavailable: ['The database is unreachable', true],
  BadRequest: ['Malformed Idempotency-Key, invalid JSON or unreadable body', false],
  IdempotencyConflict: ['idempotency_key_reused, or idempotency_key_in_progress (see Retry-After)', true],
  PayloadTooLarge: ['Body over 1 MB', false],
  UnsupportedMediaType: ['Body that is not application/json', false],
  NotFound: ['Not found (also for ids of other workspaces)', false],
  ValidationError: ['Validation error (`details` lists the fields)', false],
} as const;

const WEBHOOK_HEADERS = [
  ['X-Signature', '`sha256=` + hex HMAC-SHA256 of the raw body with the endpoint secret (its UTF-8 bytes)'],
  ['webhook-id', 'Standard Webhooks: the event id (`evt_…`), the same on every retry and replay'],
  ['webhook-timestamp', 'Standard Webhooks: Unix seconds of this attempt'],
  ['webhook-signature', 'Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`; during a secret rotation, one signature per secret'],
] as const;

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

/**
 * Replaces every object equal to a named schema by a `$ref` (structural equality: routes
 * spread schemas as often as they share them). Data-holding keywords are left alone.
 */
function namer(schemas: Record<string, Schema>) {
  const byJson = new Map(Object.entries(schemas).map(([name, s]) => [stringify(s), name]));
  const DATA = new Set(['enum', 'const', 'default', 'examples', 'example', 'required']);
  const walk = (node: unknown, top: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => walk(n, false));
    if (!node || typeof node !== 'object') return node;
    const name = top ? undefined : byJson.get(stringify(node) ?? '');
    if (name) return ref(name);
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, DATA.has(k) ? v : walk(v, false)]));
  };
  return (schema: unknown, opts: { top?: boolean } = {}) => walk(schema, opts.top ?? false);
}

/** OpenAPI 3.1 built from the very route definitions the server validates with. */
export function buildOpenApi(defs: RouteDef[], version: string, extras: OpenApiExtras = {}) {
  const named = extras.schemas ?? {};
  const refify = namer(named);
  const prefixes = new Map(Object.entries(extras.idPrefixes ?? {}).filter(([n]) => named[n]).map(([n, p]) => [named[n] as object, p]));
  const prefixOf = (schema: unknown) => prefixes.get(schema as object) ?? [...prefixes].find(([s]) => stringify(s) === stringify(schema))?.[1];
  /** An example only when it passes the schema (and the route's cross-field rules): a wrong example is worse than none. */
  const example = (schema: Schema, request: boolean, accept: (v: unknown) => boolean = () => true, idPrefix = prefixOf(schema)) => {
    const value = exampleFor(schema, { request, prefixes, idPrefix });
    if (value === undefined) return {};
    const ok = compile(schema, request ? 'body' : 'response')(structuredClone(value)) && accept(value);
    return ok ? { example: value } : {};
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const def of defs) {
    if (def.undocumented) continue;
    const mutating = def.auth === 'key' && def.method !== 'get';
    const common = { 'X-Request-Id': headerRef('X-Request-Id') };
    const limited = def.auth === 'key'
      ? { 'X-RateLimit-Limit': headerRef('X-RateLimit-Limit'), 'X-RateLimit-Remaining': headerRef('X-RateLimit-Remaining'), 'X-RateLimit-Reset': headerRef('X-RateLimit-Reset') }
      : {};
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(def.responses)) {
      const type = r.contentType ?? 'application/json';
      const replay = mutating && Number(status) < 300 ? { 'Idempotent-Replayed': headerRef('Idempotent-Replayed') } : {};
      responses[status] = {
        description: r.description,
        headers: { ...common, ...limited, ...replay },
        ...(r.schema ? { content: { [type]: { schema: refify(r.schema), ...(type === 'application/json' ? example(r.schema, false) : {}) } } } : {}),
      };
    }
    // Key routes share their error responses (same headers): components.responses keeps the document small.
    const problem = (name: keyof typeof PROBLEMS) => (def.auth === 'key'
      ? { $ref: `#/components/responses/${name}` }
      : { description: PROBLEMS[name][0], headers: common, content: { 'application/problem+json': { schema: ref('Problem') } } });
    if (def.auth === 'key') {
      responses['401'] = problem('Unauthorized');
      if (def.scope) responses['403'] = problem('Forbidden');
      responses['429'] = problem('RateLimited');
      responses['503'] = problem('Unavailable');
    }
    if (mutating) {
      responses['400'] = problem('BadRequest');
      responses['409'] ??= problem('IdempotencyConflict');
    }
    if (def.body) {
      responses['413'] = problem('PayloadTooLarge');
      responses['415'] = problem('UnsupportedMediaType');
    }
    if (def.params) responses['404'] = problem('NotFound');
    if (def.body || def.query) responses['422'] = problem('ValidationError');
    const idempotencyHeader = mutating
      ? [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', pattern: '^[\\x20-\\x7E]{1,255}$' }, description: 'Replays the first response for 24 h' }]
      : [];
    const description = [
      `${def.summary}.`,
      def.auth === 'none' ? 'Public: no API key needed.' : def.scope ? `Requires an API key with the scope \`${def.scope}\`.` : 'Any valid API key.',
      mutating ? 'Safe to retry with an `Idempotency-Key`.' : '',
    ].filter(Boolean).join(' ');
    const bodyExample = def.body ? example(def.body, true, (body) => {
      try { def.validate?.({ params: {}, query: {}, body }); return true; } catch { return false; }
    }) : {};
    paths[toOpenApiPath(def.path)] ??= {};
    paths[toOpenApiPath(def.path)][def.method] = {
      operationId: `${def.method}${def.path.replace(/[/:-](\w)/g, (_, c: string) => c.toUpperCase()).replace(/\W/g, '')}`,
      summary: def.summary,
      description,
      tags: [def.tag],
      // The scope is named twice: as the role of the bearer requirement (OpenAPI 3.1 allows roles
      // for non-OAuth schemes) and as x-required-scope, which tests and tooling read.
      security: def.auth === 'key' ? [{ bearerAuth: def.scope ? [def.scope] : [] }] : [],
      ...(def.scope ? { 'x-required-scope': def.scope } : {}),
      parameters: [...parameters(def), ...idempotencyHeader],
      // A body whose fields are all optional may be left out altogether.
      ...(def.body ? { requestBody: { required: Array.isArray(def.body.required) && def.body.required.length > 0, content: { 'application/json': { schema: def.body, ...bodyExample } } } } : {}),
      responses,
    };
  }

  const webhooks: Record<string, unknown> = {};
  for (const [event, w] of Object.entries(extras.webhooks ?? {})) {
    webhooks[event] = {
      post: {
        operationId: `webhook${event.replace(/(^|[._])(\w)/g, (_, __, c: string) => c.toUpperCase())}`,
        summary: w.summary,
        description: `Sent to every enabled endpoint subscribed to \`${event}\`: at least once, retried with backoff for about 2 days; check a signature before trusting the body.`,
        tags: ['webhooks'],
        security: [],
        parameters: WEBHOOK_HEADERS.map(([name, description]) => ({ name, in: 'header', required: true, description, schema: { type: 'string' } })),
        requestBody: { required: true, content: { 'application/json': { schema: refify(w.payload, { top: true }), ...example(w.payload, false, undefined, 'evt') } } },
        responses: {
          200: { description: 'Any 2xx within 10 s acknowledges the delivery; anything else (redirects too) is retried' },
          410: { description: 'Disables the endpoint: no further deliveries' },
        },
      },
    };
  }

  const errorRows = Object.entries(ERROR_CODES).map(([code, [status, title]]) => `| \`${code}\` | ${status} | ${title} |`).join('\n');
  return {
    openapi: '3.1.0',
    info: {
      title: 'topicdesk API',
      version,
      license: { name: 'MIT', identifier: 'MIT' },
      description: [
        'Support desk inside Telegram: tickets are forum topics; this API and signed webhooks connect it to everything else.',
        '',
        'Authenticate with `Authorization: Bearer td_live_…` (or `td_test_…` for a sandbox workspace). Every POST/PUT/PATCH/DELETE accepts `Idempotency-Key`; lists take `limit`, `offset` or `cursor`.',
        '',
        'Errors are `application/problem+json` with a stable `code`:',
        '',
        '| code | status | title |',
        '| --- | --- | --- |',
        errorRows,
      ].join('\n'),
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    tags: [...new Set([...defs.filter((d) => !d.undocumented).map((d) => d.tag), ...(Object.keys(webhooks).length ? ['webhooks'] : [])])].map((name) => ({ name })),
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key: td_live_… or td_test_…; each operation names the scope it needs' } },
      headers: HEADERS,
      responses: Object.fromEntries(Object.entries(PROBLEMS).map(([name, [description, retry]]) => [name, {
        description,
        headers: {
          'X-Request-Id': headerRef('X-Request-Id'), 'X-RateLimit-Limit': headerRef('X-RateLimit-Limit'),
          'X-RateLimit-Remaining': headerRef('X-RateLimit-Remaining'), 'X-RateLimit-Reset': headerRef('X-RateLimit-Reset'),
          ...(retry ? { 'Retry-After': headerRef('Retry-After') } : {}),
        },
        content: { 'application/problem+json': { schema: ref('Problem') } },
      }])),
      schemas: {
        // In a 3.1 schema object `example` is deprecated: `examples` is JSON Schema's array.
        ...Object.fromEntries(Object.entries(named).map(([name, s]) => {
          const { example: value } = example(s, false) as { example?: unknown };
          return [name, { ...(refify(s, { top: true }) as object), ...(value !== undefined ? { examples: [value] } : {}) }];
        })),
        Problem: { ...problemSchema, properties: { ...problemSchema.properties, code: { type: 'string', enum: Object.keys(ERROR_CODES) } } },
      },
    },
    paths,
    webhooks,
  };
}
