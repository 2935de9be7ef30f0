/** The one place things are constructed: plain functions, no framework. */
import type { Config } from './config.js';
import type { Knex } from './db/knex.js';
import type { Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import { createApiKeyService } from './auth/api-key-service.js';
import { createWorkspaceService } from './workspaces/workspace-service.js';

export interface Deps {
  config: Config;
  db: Knex;
  logger: Logger;
  clock: Clock;
}

export function createServices(deps: Deps) {
  return {
    workspaces: createWorkspaceService({ clock: deps.clock }),
    apiKeys: createApiKeyService({ clock: deps.clock, rotationOverlapHours: deps.config.apiKeys.rotationOverlapHours }),
  };
}

export type Services = ReturnType<typeof createServices>;
