import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './lib/project-root.js';

/** The whole runtime configuration: config/default.json, then config/<NODE_ENV>.json, then environment. */
export interface Config {
  readonly env: string;
  readonly port: number;
  readonly host: string;
  /** Where people reach this service (links the bot sends, cookie flags); default `http://HOST:PORT`. */
  readonly publicUrl: string;
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  /** Bounds on every database round trip, so an unresponsive database fails requests fast (503) instead of holding them. */
  readonly database: DatabaseBounds;
  readonly logLevel: string;
  readonly schedulerEnabled: boolean;
  /** Check every response against its declared schema (on in tests: catches contract drift). */
  readonly validateResponses: boolean;
  readonly telegram: {
    readonly botToken: string | null;
    readonly supportChatId: string | null;
    readonly apiRoot: string;
    readonly webhookUrl: string | null;
    readonly webhookSecret: string | null;
    /** Long polling: how long one getUpdates waits for news. */
    readonly pollTimeoutSeconds: number;
    /** One Bot API call's time limit. */
    readonly callTimeoutMs: number;
    /** How often bots added or removed through the API are picked up. */
    readonly reconcileIntervalMs: number;
    /** An album's items arrive as separate updates: wait this long to copy them as one. */
    readonly albumGatherMs: number;
    readonly sends: {
      readonly concurrency: number;
      readonly pollIntervalMs: number;
      /** A claimed send is re-sent by another worker after this long without an outcome. */
      readonly leaseMs: number;
      /**
       * A send whose pacing slot opens within this long is claimed now and waits for the slot,
       * so claiming it does not delay it (0: claimed when the slot has opened). Long enough for
       * a claim's transaction on a busy machine; a row claimed ahead holds its slot that much
       * before it is sent (a relay queued meanwhile takes the next one).
       */
      readonly claimAheadMs: number;
      /** 5xx/network failures before a send fails for good; waits double from retryBaseMs up to retryMaxMs. */
      readonly maxFailures: number;
      readonly retryBaseMs: number;
      readonly retryMaxMs: number;
      /**
       * Telegram's flood limits (FAQ): per chat, per group, per bot; windows carry a small margin.
       * A send counts from when its answer came (recordSent), which is after Telegram counted it
       * (on arrival), so the margin is not there for the way to Telegram: it covers the clocks
       * of replicas sharing the windows disagreeing by a few milliseconds, and a call whose
       * answer never came (its worker died) counting from its slot. The bot's 30 a second:
       * 20 ms; a chat's 1 a second and a group's 20 a minute keep their wider ones.
       */
      readonly pacing: {
        readonly perChat: { readonly limit: number; readonly windowMs: number };
        readonly perGroup: { readonly limit: number; readonly windowMs: number };
        readonly perBot: { readonly limit: number; readonly windowMs: number };
      };
    };
    readonly updates: { readonly concurrency: number; readonly pollIntervalMs: number; readonly maxAttempts: number };
  };
  readonly webhooks: {
    /** Loopback/private/link-local targets and plain http allowed (local development and tests only). */
    readonly allowPrivateTargets: boolean;
    /** A delivery attempt's whole budget: connect, send, answer. */
    readonly timeoutMs: number;
    /** Waits before each retry after a failed attempt; past the last one a delivery is dead. */
    readonly retryScheduleSeconds: readonly number[];
    /** Each wait is stretched or shrunk at random by up to this fraction (0.2 = ±20 %). */
    readonly retryJitter: number;
    /** An endpoint whose attempts have all failed for this long is disabled. */
    readonly disableAfterFailingHours: number;
    /** After a rotation the old secret signs alongside the new one for this long. */
    readonly secretOverlapHours: number;
    readonly maxEndpointsPerWorkspace: number;
    /** Deliveries in flight per process, in all and towards one endpoint. */
    readonly concurrency: number;
    readonly concurrencyPerEndpoint: number;
    /** How often an idle worker looks for new events and due deliveries. */
    readonly pollIntervalMs: number;
    readonly batchSize: number;
    /** Succeeded and dead deliveries are removed by the cleanup job after this many days. */
    readonly deliveryRetentionDays: number;
  };
  readonly http: { readonly bodyLimitBytes: number };
  readonly rateLimit: { readonly defaultPerMinute: number };
  readonly apiKeys: {
    readonly rotationOverlapHours: number;
    readonly lastUsedWriteIntervalSeconds: number;
    /** How long a busy key's chunk may serve without asking PostgreSQL (0: never; every change is seen by the next request). */
    readonly leaseMaxAgeMs: number;
  };
  readonly idempotency: { readonly retentionHours: number; readonly lockTimeoutMs: number };
  readonly jobs: { readonly cleanup: string; readonly autoClose: string; readonly slaSweep: string; readonly escalationSweep: string; readonly digest: string };
  readonly escalation: {
    /** The ping-pong guard: a ticket's rules fire at most this often in any hour, together. */
    readonly maxFiringsPerTicketPerHour: number;
    /** The first escalation sweep looks back this far (later ones: to the previous run). */
    readonly firstSweepLookbackSeconds: number;
  };
}

export interface DatabaseBounds {
  /** PostgreSQL cancels a statement running longer (statement_timeout); 0: the server's own setting. */
  readonly statementTimeoutMs: number;
  /** PostgreSQL ends a session left idle inside a transaction this long, freeing its locks; 0: the server's own setting. */
  readonly idleInTransactionTimeoutMs: number;
  /**
   * No answer at all this long after a query was sent (a silent network): the query fails and
   * its connection is dropped. Longer than statementTimeoutMs, so a slow statement is the
   * server's to cancel. Default: statementTimeoutMs + 5 s; 0: none.
   */
  readonly queryTimeoutMs: number;
  /** Opening a connection: TCP and PostgreSQL's start-up. */
  readonly connectTimeoutMs: number;
  /** Waiting for a free pooled connection. */
  readonly acquireTimeoutMs: number;
  /** TCP keepalive: the first probe after this long without traffic. */
  readonly keepAliveInitialDelayMs: number;
}

/** Bad configuration: the message names the variable and what is wrong with it. */
export class ConfigError extends Error {}

const CONFIG_DIR = path.join(PROJECT_ROOT, 'config');
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function readJson(file: string): Record<string, unknown> {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
}

function merge(base: any, over: any): any {
  const out: any = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? merge(base?.[k], v) : v;
  }
  return out;
}

/** A revoked key works on other replicas at most this long: bounded, so no setting makes revocation slow. */
const MAX_LEASE_MS = 10_000;

function integer(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function boolean(name: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function url(name: string, raw: string, protocols: string[]): string {
  let parsed: URL;
  try { parsed = new URL(raw); } catch { throw new ConfigError(`${name} is not a valid URL`); }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

/** Reads, merges and validates configuration. Throws ConfigError naming the offending variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeEnv = env.NODE_ENV || 'development';
  const c = merge(readJson(path.join(CONFIG_DIR, 'default.json')), readJson(path.join(CONFIG_DIR, `${nodeEnv}.json`)));
  c.env = nodeEnv;
  const set = (name: string, apply: (raw: string) => void) => {
    const raw = env[name];
    if (raw !== undefined && raw !== '') apply(raw);
  };
  set('PORT', (v) => { c.port = integer('PORT', v, 0, 65535); });
  set('HOST', (v) => { c.host = v; });
  set('DATABASE_URL', (v) => { c.databaseUrl = url('DATABASE_URL', v, ['postgres:', 'postgresql:']); });
  set('TOPICDESK_DATA_DIR', (v) => { c.dataDir = v; });
  set('EMBEDDED_PG_PORT', (v) => { c.embeddedPgPort = integer('EMBEDDED_PG_PORT', v, 1, 65535); });
  const HOUR_MS = 3_600_000;
  set('DATABASE_STATEMENT_TIMEOUT_MS', (v) => { c.database.statementTimeoutMs = integer('DATABASE_STATEMENT_TIMEOUT_MS', v, 0, HOUR_MS); });
  set('DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', (v) => { c.database.idleInTransactionTimeoutMs = integer('DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', v, 0, HOUR_MS); });
  set('DATABASE_QUERY_TIMEOUT_MS', (v) => { c.database.queryTimeoutMs = integer('DATABASE_QUERY_TIMEOUT_MS', v, 0, HOUR_MS); });
  set('DATABASE_CONNECT_TIMEOUT_MS', (v) => { c.database.connectTimeoutMs = integer('DATABASE_CONNECT_TIMEOUT_MS', v, 100, HOUR_MS); });
  set('DATABASE_ACQUIRE_TIMEOUT_MS', (v) => { c.database.acquireTimeoutMs = integer('DATABASE_ACQUIRE_TIMEOUT_MS', v, 100, HOUR_MS); });
  set('LOG_LEVEL', (v) => {
    if (!LOG_LEVELS.includes(v)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${v}"`);
    c.logLevel = v;
  });
  set('SCHEDULER_ENABLED', (v) => { c.schedulerEnabled = boolean('SCHEDULER_ENABLED', v); });
  set('TELEGRAM_BOT_TOKEN', (v) => {
    if (!/^\d+:[A-Za-z0-9_-]{20,}$/.test(v)) throw new ConfigError('TELEGRAM_BOT_TOKEN does not look like a bot token (123456:ABC…)');
    c.telegram.botToken = v;
  });
  set('TELEGRAM_SUPPORT_CHAT_ID', (v) => {
    if (!/^-?\d+$/.test(v)) throw new ConfigError(`TELEGRAM_SUPPORT_CHAT_ID must be a numeric chat id, got "${v}"`);
    c.telegram.supportChatId = v;
  });
  set('TELEGRAM_API_ROOT', (v) => { c.telegram.apiRoot = url('TELEGRAM_API_ROOT', v, ['http:', 'https:']).replace(/\/+$/, ''); });
  set('TELEGRAM_WEBHOOK_URL', (v) => { c.telegram.webhookUrl = url('TELEGRAM_WEBHOOK_URL', v, ['https:', 'http:']).replace(/\/+$/, ''); });
  set('TELEGRAM_WEBHOOK_SECRET', (v) => {
    // Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and -.
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(v)) throw new ConfigError('TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ or -');
    c.telegram.webhookSecret = v;
  });
  set('PUBLIC_URL', (v) => { c.publicUrl = url('PUBLIC_URL', v, ['http:', 'https:']); });
  set('WEBHOOK_ALLOW_PRIVATE_TARGETS', (v) => { c.webhooks.allowPrivateTargets = boolean('WEBHOOK_ALLOW_PRIVATE_TARGETS', v); });
  set('API_KEY_LEASE_MAX_AGE_MS', (v) => { c.apiKeys.leaseMaxAgeMs = integer('API_KEY_LEASE_MAX_AGE_MS', v, 0, MAX_LEASE_MS); });
  if (c.telegram.supportChatId && !c.telegram.botToken) {
    throw new ConfigError('TELEGRAM_SUPPORT_CHAT_ID is set but TELEGRAM_BOT_TOKEN is not');
  }
  // Links are built by appending paths: no trailing slash, and a base path is kept.
  c.publicUrl = c.publicUrl ? String(c.publicUrl).replace(/\/+$/, '') : `http://${c.host}:${c.port}`;
  checkWebhooks(c.webhooks);
  checkTelegram(c.telegram);
  checkEscalation(c.escalation);
  if (!Number.isInteger(c.apiKeys.leaseMaxAgeMs) || c.apiKeys.leaseMaxAgeMs < 0 || c.apiKeys.leaseMaxAgeMs > MAX_LEASE_MS) {
    throw new ConfigError(`apiKeys.leaseMaxAgeMs must be a whole number from 0 to ${MAX_LEASE_MS}, got ${JSON.stringify(c.apiKeys.leaseMaxAgeMs)}`);
  }
  c.database = databaseBounds(c.database, env);
  c.dataDir = path.resolve(c.dataDir);
  return deepFreeze(c) as Config;
}

/** The webhook settings come from config/*.json only: catch a value that would stall or flood the worker. */
function checkWebhooks(w: Record<string, unknown>): void {
  const whole = (key: string, min: number) => {
    const v = w[key];
    if (!Number.isInteger(v) || (v as number) < min) throw new ConfigError(`webhooks.${key} must be a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
  };
  whole('timeoutMs', 100);
  whole('concurrency', 1);
  whole('concurrencyPerEndpoint', 1);
  whole('pollIntervalMs', 10);
  whole('batchSize', 1);
  whole('maxEndpointsPerWorkspace', 1);
  whole('disableAfterFailingHours', 1);
  whole('secretOverlapHours', 0);
  whole('deliveryRetentionDays', 1);
  const schedule = w.retryScheduleSeconds;
  if (!Array.isArray(schedule) || schedule.length === 0 || !schedule.every((n) => Number.isInteger(n) && n > 0)) {
    throw new ConfigError(`webhooks.retryScheduleSeconds must be a non-empty list of positive whole seconds, got ${JSON.stringify(schedule)}`);
  }
  if (typeof w.retryJitter !== 'number' || w.retryJitter < 0 || w.retryJitter >= 1) {
    throw new ConfigError(`webhooks.retryJitter must be a fraction in [0, 1), got ${JSON.stringify(w.retryJitter)}`);
  }
}

/** A statement the server cancels at its timeout has this long to say so before the client gives up on the connection. */
const QUERY_TIMEOUT_MARGIN_MS = 5_000;

/**
 * The database bounds (config/*.json, DATABASE_*_MS): whole milliseconds; the query timeout
 * defaults to the statement timeout plus a margin, and must exceed it when both are set.
 */
function databaseBounds(d: any, env: NodeJS.ProcessEnv): DatabaseBounds {
  const whole = (key: string, min: number) => {
    if (!Number.isInteger(d?.[key]) || d[key] < min) throw new ConfigError(`database.${key} must be a whole number ≥ ${min}, got ${JSON.stringify(d?.[key])}`);
  };
  whole('statementTimeoutMs', 0);
  whole('idleInTransactionTimeoutMs', 0);
  whole('connectTimeoutMs', 100);
  whole('acquireTimeoutMs', 100);
  whole('keepAliveInitialDelayMs', 1000);
  const queryTimeoutMs = d.queryTimeoutMs ?? (d.statementTimeoutMs ? d.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS : 0);
  if (!Number.isInteger(queryTimeoutMs) || queryTimeoutMs < 0) throw new ConfigError(`database.queryTimeoutMs must be a whole number ≥ 0 or null, got ${JSON.stringify(d.queryTimeoutMs)}`);
  if (queryTimeoutMs && d.statementTimeoutMs && queryTimeoutMs <= d.statementTimeoutMs) {
    const name = env.DATABASE_QUERY_TIMEOUT_MS ? 'DATABASE_QUERY_TIMEOUT_MS' : 'database.queryTimeoutMs';
    throw new ConfigError(`${name} (${queryTimeoutMs}) must be longer than the statement timeout (${d.statementTimeoutMs}), so PostgreSQL cancels a slow statement before the connection is given up`);
  }
  return { ...d, queryTimeoutMs };
}

/** The escalation settings come from config/*.json only. */
function checkEscalation(e: any): void {
  for (const k of ['maxFiringsPerTicketPerHour', 'firstSweepLookbackSeconds']) {
    if (!Number.isInteger(e?.[k]) || e[k] < 1) throw new ConfigError(`escalation.${k} must be a whole number ≥ 1, got ${JSON.stringify(e?.[k])}`);
  }
}

/** The Telegram worker settings come from config/*.json only: the same kind of guard. */
function checkTelegram(t: any): void {
  const whole = (path: string, v: unknown, min: number) => {
    if (!Number.isInteger(v) || (v as number) < min) throw new ConfigError(`telegram.${path} must be a whole number ≥ ${min}, got ${JSON.stringify(v)}`);
  };
  whole('pollTimeoutSeconds', t.pollTimeoutSeconds, 0);
  whole('callTimeoutMs', t.callTimeoutMs, 100);
  whole('reconcileIntervalMs', t.reconcileIntervalMs, 100);
  whole('albumGatherMs', t.albumGatherMs, 0);
  for (const k of ['concurrency', 'pollIntervalMs', 'leaseMs', 'maxFailures', 'retryBaseMs', 'retryMaxMs']) whole(`sends.${k}`, t.sends?.[k], 1);
  whole('sends.claimAheadMs', t.sends?.claimAheadMs, 0);
  for (const k of ['perChat', 'perGroup', 'perBot']) {
    whole(`sends.pacing.${k}.limit`, t.sends?.pacing?.[k]?.limit, 1);
    whole(`sends.pacing.${k}.windowMs`, t.sends?.pacing?.[k]?.windowMs, 1);
  }
  for (const k of ['concurrency', 'pollIntervalMs', 'maxAttempts']) whole(`updates.${k}`, t.updates?.[k], 1);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
