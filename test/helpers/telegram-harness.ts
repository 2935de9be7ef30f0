/**
 * A topicdesk with its Telegram side running against the fake Bot API server: the real app
 * (HTTP), the real update workers, send queue worker and bot runtime, on a test database.
 * Polling by default; `webhook: true` serves the app on a port and lets the fake push updates
 * to /telegram/<account>/webhook with the secret token.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import supertest from 'supertest';
import { createApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices, type Services } from '../../src/container.js';
import type { Knex } from '../../src/db/knex.js';
import { systemClock, type Clock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { createTelegram, type Telegram } from '../../src/telegram/telegram.js';
import { startFakeBotApi, type FakeBot, type FakeBotApi, type FakeGroup, type Limits } from './fake-bot-api.js';
import { makeKey } from './factories.js';
import { createTestDatabase, type TestDatabase } from './test-db.js';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function merge(base: any, over: any): any {
  const out: any = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) out[k] = v && typeof v === 'object' && !Array.isArray(v) ? merge(base?.[k], v) : v;
  return out;
}

export interface TelegramHarness {
  fake: FakeBotApi;
  bot: FakeBot;
  group: FakeGroup;
  db: Knex;
  services: Services;
  telegram: Telegram;
  config: Config;
  /** supertest against the app, with a key of every scope for the default workspace. */
  api: supertest.Agent;
  auth: string;
  /** The default workspace's bot, as the runtime created it from TELEGRAM_BOT_TOKEN. */
  accountId: string;
  logs: string[];
  /** Waits until every stored update is handled and nothing is waiting in the send queue. */
  settle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  webhook?: boolean;
  /** The fake's flood limits (off unless given). */
  limits?: Partial<Limits> | false;
  /** Pace sends by Telegram's real limits (1/s per chat…); by default tests pace 20× faster. */
  realPacing?: boolean;
  config?: DeepPartial<Config>;
  clock?: Clock;
}

/** Test-speed pacing: same shape as the real limits, windows (and the claim ahead of a slot) 20× shorter. */
const FAST_PACING = { perChat: { limit: 1, windowMs: 50 }, perGroup: { limit: 20, windowMs: 3000 }, perBot: { limit: 30, windowMs: 50 } };

/**
 * Registers before/after hooks for a describe block: a fresh database and a harness on it,
 * stopped before the database is dropped (the pollers' lock connection stays open until it stops).
 */
export function useTelegramHarness(opts: HarnessOptions = {}): { readonly h: TelegramHarness } {
  let database: TestDatabase | undefined;
  let harness: TelegramHarness | undefined;
  before(async () => {
    database = await createTestDatabase();
    harness = await startTelegramHarness(database.knex, opts);
  });
  after(async () => {
    await harness?.stop();
    await database?.drop();
  });
  return { get h() { return harness!; } };
}

export async function startTelegramHarness(db: Knex, opts: HarnessOptions = {}): Promise<TelegramHarness> {
  const fake = await startFakeBotApi({ limits: opts.limits ?? false });
  const bot = fake.addBot({ username: 'desk_bot', firstName: 'Desk' });
  const group = fake.addGroup({ title: 'Support' });
  fake.addBotToGroup(bot, group);
  const logs: string[] = [];
  const logger = createLogger('debug', new Writable({ write(chunk, _e, cb) { logs.push(chunk.toString()); cb(); } }));
  const clock = opts.clock ?? systemClock;
  const server = opts.webhook ? http.createServer() : null;
  if (server) await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const base = loadConfig({ NODE_ENV: 'test' });
  const config = merge(base, merge({
    telegram: {
      // The album window counts from handling the first item: 1 s (production: 1.5 s) keeps an
      // album whole when a loaded CI machine handles its items a few hundred ms apart.
      botToken: bot.token, supportChatId: String(group.id), apiRoot: fake.url, pollTimeoutSeconds: 1, albumGatherMs: 1000,
      webhookUrl: server ? `http://127.0.0.1:${(server.address() as AddressInfo).port}` : null,
      sends: { pollIntervalMs: 50, retryBaseMs: 50, retryMaxMs: 500, ...(opts.realPacing ? {} : { pacing: FAST_PACING, claimAheadMs: 12 }) }, updates: { pollIntervalMs: 50 },
    },
  }, opts.config)) as Config;
  const deps = { config, db, logger, clock };
  const services = createServices(deps);
  let telegram: Telegram | undefined;
  const app = createApp(deps, { services, onTelegramUpdate: () => telegram?.updates.wake() });
  if (server) server.on('request', app.callback());
  telegram = createTelegram({ config, db, logger, clock, services });
  await telegram.start();
  const account = await db('accounts').where({ bot_user_id: bot.id }).first();
  const key = await makeKey(db, services);

  /**
   * Reads the pipeline front to back, so nothing slips between the checks: every update the
   * fake produced is stored and handled, nothing is waiting to be sent, and the fake produced
   * nothing new meanwhile (a send such as createForumTopic makes new updates).
   */
  async function settle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const produced = fake.updatesFor(bot).length;
      const [{ n: handled }] = await db('telegram_updates').where({ account_id: account.id }).whereNotNull('processed_at').count({ n: '*' });
      const [{ n: unhandled }] = await db('telegram_updates').whereNull('processed_at').count({ n: '*' });
      const [{ n: sends }] = await db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
      if (Number(handled) >= produced && Number(unhandled) === 0 && Number(sends) === 0 && fake.updatesFor(bot).length === produced) return;
      if (Date.now() > deadline) throw new Error(`not settled: ${produced} updates produced, ${handled} handled, ${unhandled} unhandled, ${sends} sends waiting`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  return {
    fake, bot, group, db, services, telegram, config, logs, accountId: account.id, auth: key.auth,
    api: supertest.agent(app.callback()),
    settle,
    async stop() {
      await telegram!.stop();
      if (server) await new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
      await fake.close();
    },
  };
}

/**
 * Everything the fake produced is confirmed, stored and handled, nothing waits to be sent,
 * and the fake produced nothing new meanwhile (each stage read after the one feeding it).
 * Stricter than `h.settle()`: it also waits for the fake's own queue of updates to be confirmed
 * (faults and redeliveries keep it busy).
 */
export async function settleConfirmed(h: TelegramHarness, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const produced = h.fake.updatesFor(h.bot);
    const pending = h.fake.pendingUpdatesFor(h.bot).length;
    const last = produced.at(-1)?.update_id;
    const stored = last === undefined || !!(await h.db('telegram_updates').where({ account_id: h.accountId, update_id: last }).first());
    const [{ n: updates }] = await h.db('telegram_updates').whereNull('processed_at').count({ n: '*' });
    const [{ n: sends }] = await h.db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
    const quiet = h.fake.updatesFor(h.bot).length === produced.length;
    if (pending === 0 && stored && Number(updates) === 0 && Number(sends) === 0 && quiet) return;
    if (Date.now() > deadline) throw new Error(`not settled: ${pending} updates undelivered, stored=${stored}, ${updates} unhandled, ${sends} sends waiting`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Ticket rows with their topic's state (ticket_topics) under the columns' old names
 * (topic_name, topic_closed, topic_card_message_id, topic_card_text, topic_card_pinned).
 */
export function ticketRows(db: Knex) {
  return db('tickets').leftJoin('ticket_topics as tt', 'tt.ticket_id', 'tickets.id').select(
    'tickets.*', 'tt.name as topic_name', db.raw('coalesce(tt.closed, false) as topic_closed'), 'tt.card_message_id as topic_card_message_id',
    'tt.card_text as topic_card_text', db.raw('coalesce(tt.card_pinned, false) as topic_card_pinned'),
  );
}
