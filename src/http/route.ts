import type Router from '@koa/router';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import type { Middleware, ParameterizedContext } from 'koa';
import type { AuthContext } from '../kernel/auth-context.js';
import type { Scope } from '../kernel/scopes.js';
import type { Db } from '../db/knex.js';
import { AppError } from '../kernel/errors.js';
import { check, compile, fieldErrors, type Schema } from '../kernel/validation.js';

export interface AppState {
  requestId: string;
  /** The authenticated API key; set on every route with `auth: 'key'`. */
  auth: AuthContext;
  /** Where this request's queries run: the pool, or the transaction of an Idempotency-Key. */
  db: Db;
  /** Validated (and for query/path, coerced and defaulted) input; the handler gets it typed. */
  input: RouteInput;
  /** The route's RouteDef.replayBody, for the idempotency middleware. */
  replayBody?: (body: Record<string, unknown>) => unknown;
}

export type AppContext = ParameterizedContext<AppState>;
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ResponseDef {
  description: string;
  schema?: Schema;
  /** Defaults to application/json. */
  contentType?: string;
}

/** A request's validated input; `unknown` where the route declares no schema. */
export interface RouteInput<P = unknown, Q = unknown, B = unknown> {
  params: P;
  query: Q;
  body: B;
}

/**
 * What passes a schema: `unknown` where the route declares none. Path and query values are
 * coerced and defaulted by ajv, so a property with a `default` is always there; bodies get
 * no defaults, so there it stays optional.
 */
type ParamsOf<S> = S extends JSONSchema ? FromSchema<S> : unknown;
type BodyOf<S> = S extends JSONSchema ? FromSchema<S, { keepDefaultedPropertiesOptional: true }> : unknown;

/** Everything about an endpoint but its input schemas and the code that reads the input. */
export interface RouteContract {
  method: HttpMethod;
  /** Koa style: `/v1/api-keys/:id`. */
  path: string;
  summary: string;
  tag: string;
  /** `none`: public. `key`: a valid API key, plus `scope` when given. */
  auth: 'none' | 'key';
  scope?: Scope;
  /** How a 404 names the resource of `:id` ("API key not found"), for malformed ids too. */
  notFoundLabel?: string;
  responses: Record<number, ResponseDef>;
  /** Left out of the OpenAPI document (the docs renderer's static files). */
  undocumented?: boolean;
  /**
   * Body fields this route refuses because another endpoint changes them, and that endpoint
   * (`status` → `POST /v1/tickets/{id}/status`): the 422 points there instead of saying "unknown".
   */
  movedFields?: Record<string, string>;
  /**
   * What an Idempotency-Key replay answers instead of the stored original body: used to
   * keep a secret that is shown once (a new key's token) out of the idempotency store.
   */
  replayBody?: (body: Record<string, unknown>) => unknown;
}

/**
 * One endpoint: its contract (schemas, scope, responses) and its handler. The same
 * definition drives request validation, response checks and the OpenAPI document.
 * Lists of routes hold this input-agnostic form; write a route with `defineRoute` to
 * have its input typed from its own schemas.
 */
export interface RouteDef extends RouteContract {
  params?: Schema;
  query?: Schema;
  body?: Schema;
  /** Cross-field rules the schemas cannot state; throws a validation_error. Runs with validation. */
  validate?: (input: RouteInput) => void;
  /**
   * A public route's own credential check (the Telegram webhook's secret token). It runs once
   * the path is checked and before the body is read: a caller without the credential gets
   * its 401 whatever it sent, and learns nothing about what the body should be.
   */
  authorize?: Middleware<AppState>;
  handler: (ctx: AppContext, input: RouteInput) => Promise<void> | void;
}

/**
 * Declares a route; `validate` and `handler` get the input typed from the route's own
 * schemas (and a route list holds the result as a plain RouteDef):
 *
 *   defineRoute({
 *     method: 'get', path: '/v1/tickets/:id/events', params: idParams('tkt'), query: { type: 'object', properties: paginationQueryProperties }, ...,
 *     async handler(ctx, { params, query }) {  // params.id: string; query.limit: number
 *       ctx.body = presentPage(await tickets.timeline(ctx.state.db, ws(ctx), params.id, query), presentEvent);
 *     },
 *   })
 *
 * P, Q and B stay unconstrained and the input type is spelled out in place: bounding them by
 * JSONSchema, or naming the input with an alias over FromSchema of a type parameter, sends
 * tsc into excessively deep instantiation (TS2589).
 */
export function defineRoute<const P = undefined, const Q = undefined, const B = undefined>(
  def: RouteContract & {
    params?: P & Schema;
    query?: Q & Schema;
    body?: B & Schema;
    validate?: (input: RouteInput<ParamsOf<P>, ParamsOf<Q>, BodyOf<B>>) => void;
    authorize?: Middleware<AppState>;
    handler: (ctx: AppContext, input: RouteInput<ParamsOf<P>, ParamsOf<Q>, BodyOf<B>>) => Promise<void> | void;
  },
): RouteDef {
  // The one place route input is cast: mountRoutes hands validate and handler only input that
  // passed these very schemas (coerced and defaulted as ParamsOf and BodyOf describe).
  return def as RouteDef;
}

/** The shared middleware a route is wrapped in, in order. */
export interface RouteKit {
  authenticate: Middleware<AppState>;
  requireScope(scope: Scope): Middleware<AppState>;
  parseBody: Middleware<AppState>;
  idempotency: Middleware<AppState>;
  validateResponses: boolean;
}

const MUTATING: ReadonlySet<HttpMethod> = new Set(['post', 'put', 'patch', 'delete']);

/** The path first (before the body is read): a bad id in it is a resource that does not exist, not a malformed request. */
function validatePath(def: RouteDef): Middleware<AppState> {
  const params = def.params && compile(def.params, 'path');
  return async (ctx, next) => {
    const input: RouteInput = { params: { ...ctx.params }, query: undefined, body: undefined };
    if (params && !params(input.params)) throw new AppError('not_found', `${def.notFoundLabel ?? 'Resource'} not found`);
    ctx.state.input = input;
    await next();
  };
}

function validateInput(def: RouteDef): Middleware<AppState> {
  const query = compile(def.query ?? { type: 'object', additionalProperties: false }, 'query');
  const body = def.body && compile(def.body, 'body');
  return async (ctx, next) => {
    const input: RouteInput = { params: ctx.state.input.params, query: { ...ctx.query }, body: ctx.request.body };
    check(query, input.query, 'query');
    if (body) {
      if (input.body === undefined) input.body = {};
      check(body, input.body, 'body', { movedFields: def.movedFields });
    }
    def.validate?.(input);
    ctx.state.input = input;
    await next();
  };
}

function checkResponse(def: RouteDef): Middleware<AppState> {
  const validators = new Map(Object.entries(def.responses).filter(([, r]) => r.schema).map(([s, r]) => [Number(s), compile(r.schema!, 'response')]));
  return async (ctx, next) => {
    await next();
    const validate = validators.get(ctx.status);
    if (!def.responses[ctx.status] && ctx.status < 400) {
      throw new Error(`${def.method.toUpperCase()} ${def.path} answered ${ctx.status}, which it does not declare`);
    }
    // A body already serialised (a list page built by the database) is checked as what it says.
    const body: unknown = typeof ctx.body === 'string' && ctx.response.is('json') ? JSON.parse(ctx.body) : ctx.body;
    if (validate && !validate(body)) {
      const details = fieldErrors(validate.errors ?? [], body, 'response');
      throw new Error(`${def.method.toUpperCase()} ${def.path} ${ctx.status} response breaks its schema: ${JSON.stringify(details)}`);
    }
  };
}

/** Registers each definition on the router with its middleware chain. */
export function mountRoutes(router: Router<AppState>, defs: RouteDef[], kit: RouteKit): void {
  for (const def of defs) {
    const chain: Middleware<AppState>[] = [];
    if (def.auth === 'key') {
      chain.push(kit.authenticate);
      if (def.scope) chain.push(kit.requireScope(def.scope));
    }
    chain.push(validatePath(def));
    if (def.authorize) chain.push(def.authorize);
    if (def.body) chain.push(kit.parseBody);
    // Validation first: a request we refuse never costs a transaction or an idempotency claim.
    chain.push(validateInput(def));
    if (def.auth === 'key' && MUTATING.has(def.method)) {
      if (def.replayBody) {
        const replayBody = def.replayBody;
        chain.push(async (ctx, next) => { ctx.state.replayBody = replayBody; await next(); });
      }
      chain.push(kit.idempotency);
    }
    if (kit.validateResponses) chain.push(checkResponse(def));
    chain.push(async (ctx) => { await def.handler(ctx, ctx.state.input); });
    router.register(def.path, [def.method.toUpperCase()], chain);
  }
}
