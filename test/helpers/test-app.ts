import { Writable } from 'node:stream';
import type Koa from 'koa';
import supertest from 'supertest';
import { createApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices, type Deps, type Services } from '../../src/container.js';
import type { Knex } from '../../src/db/knex.js';
import type { RouteDef } from '../../src/http/route.js';
import { systemClock, type Clock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function merge(base: any, over: any): any {
  const out: any = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) out[k] = v && typeof v === 'object' && !Array.isArray(v) ? merge(base?.[k], v) : v;
  return out;
}

export interface TestApp {
  app: Koa<any>;
  request: supertest.Agent;
  deps: Deps;
  services: Services;
  config: Config;
  /** Every log line the app wrote, as raw JSON text (for "no secrets in logs" checks). */
  logs: string[];
}

/** The real app on a test database, logging at debug level into memory. */
export function createTestApp(knex: Knex, opts: { config?: DeepPartial<Config>; clock?: Clock; extraRoutes?: RouteDef[] } = {}): TestApp {
  const config = merge(loadConfig({ NODE_ENV: 'test' }), opts.config) as Config;
  const logs: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(chunk.toString()); cb(); } });
  const logger = createLogger('debug', sink);
  const deps: Deps = { config, db: knex, logger, clock: opts.clock ?? systemClock };
  const services = createServices(deps);
  const app = createApp(deps, { services, extraRoutes: opts.extraRoutes });
  return { app, request: supertest.agent(app.callback()), deps, services, config, logs };
}
