/**
 * Start-up of the Telegram side (issue 4, SPEC §3.3): the default bot from TELEGRAM_BOT_TOKEN,
 * the check of the support group (bot-runtime.ts checkSetup) — one clear log line per problem,
 * the HTTP API unaffected — TELEGRAM_API_ROOT reaching every call, and the real service
 * (src/main.ts) running a customer journey against the fake Bot API server.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { Writable } from 'node:stream';
import supertest from 'supertest';
import { createApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices } from '../../src/container.js';
import type { Knex } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import { createTelegram, type Telegram } from '../../src/telegram/telegram.js';
import { startFakeBotApi, type FakeBot, type FakeBotApi, type FakeGroup, type FakeUser, type Message } from '../helpers/fake-bot-api.js';
import { makeKey } from '../helpers/factories.js';
import { baseEnv, startMain, type MainProcess } from '../helpers/main-process.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';

// ------------------------------------------------------------------------------------------
// A topicdesk booted from TELEGRAM_* variables against a fake set up as each test needs
// ------------------------------------------------------------------------------------------

interface LogLine { level: number; msg: string; component?: string; [k: string]: unknown }

interface Desk {
  fake: FakeBotApi;
  bot: FakeBot;
  group: FakeGroup;
  token: string;
  db: Knex;
  config: Config;
  telegram: Telegram;
  api: supertest.Agent;
  auth: string;
  logs: string[];
  lines(): LogLine[];
  stop(): Promise<void>;
}

/** Polls `check` until it returns something (an observable condition, not a timed assertion). */
async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const FAST_PACING = { perChat: { limit: 1, windowMs: 50 }, perGroup: { limit: 20, windowMs: 3000 }, perBot: { limit: 30, windowMs: 50 } };

const open: Array<() => Promise<void>> = [];

/**
 * Boots the Telegram side and the app from the environment variables an operator sets. `setup`
 * decides how the bot sits in the group (the fake starts with a forum group the bot is not in).
 */
async function bootDesk(o: { setup: (fake: FakeBotApi, bot: FakeBot, group: FakeGroup) => void; isForum?: boolean; token?: (bot: FakeBot) => string }): Promise<Desk> {
  const database: TestDatabase = await createTestDatabase();
  const fake = await startFakeBotApi({ limits: false });
  const bot = fake.addBot({ username: 'desk_bot', firstName: 'Desk' });
  const group = fake.addGroup({ title: 'Support', isForum: o.isForum ?? true });
  o.setup(fake, bot, group);
  const token = o.token ? o.token(bot) : bot.token;
  const env = { NODE_ENV: 'test', TELEGRAM_BOT_TOKEN: token, TELEGRAM_SUPPORT_CHAT_ID: String(group.id), TELEGRAM_API_ROOT: fake.url };
  const base = loadConfig(env);
  // Test speed for what only config files set; everything an operator sets comes from `env`.
  const config = {
    ...base,
    telegram: { ...base.telegram, pollTimeoutSeconds: 1, albumGatherMs: 300, sends: { ...base.telegram.sends, pollIntervalMs: 50, retryBaseMs: 50, retryMaxMs: 500, pacing: FAST_PACING }, updates: { ...base.telegram.updates, pollIntervalMs: 50 } },
  } as Config;
  const logs: string[] = [];
  const logger = createLogger('debug', new Writable({ write(chunk, _e, cb) { logs.push(chunk.toString()); cb(); } }));
  const deps = { config, db: database.knex, logger, clock: systemClock };
  const services = createServices(deps);
  let telegram: Telegram | undefined;
  const app = createApp(deps, { services, onTelegramUpdate: () => telegram?.updates.wake() });
  telegram = createTelegram({ ...deps, services });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await telegram!.stop();
    await fake.close();
    await database.drop();
  };
  open.push(stop);
  await telegram.start();
  const key = await makeKey(database.knex, services);
  return {
    fake, bot, group, token, db: database.knex, config, telegram, logs, api: supertest.agent(app.callback()), auth: key.auth,
    lines: () => logs.map((l) => JSON.parse(l) as LogLine),
    stop,
  };
}

const problems = (d: Desk) => d.lines().filter((l) => l.level >= 40);

/** The start-up check's verdict: its one warn/error line, or "Telegram ready". */
const checked = (d: Desk) => until('the start-up check to log its verdict', () =>
  d.lines().find((l) => (l.level >= 40 && l.component === 'telegram' && !/polling/.test(l.msg)) || /Telegram ready/.test(l.msg)));

/** Waits until the fake's updates are stored and handled and nothing waits to be sent. */
async function settle(d: Desk, timeoutMs = 20_000): Promise<void> {
  const account = await d.db('accounts').where({ bot_user_id: d.bot.id }).first();
  await until('the desk to settle', async () => {
    const produced = d.fake.updatesFor(d.bot);
    const pending = d.fake.pendingUpdatesFor(d.bot).length;
    const last = produced.at(-1)?.update_id;
    const stored = last === undefined || !!(await d.db('telegram_updates').where({ account_id: account.id, update_id: last }).first());
    const [{ n: updates }] = await d.db('telegram_updates').whereNull('processed_at').count({ n: '*' });
    const [{ n: sends }] = await d.db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
    return pending === 0 && stored && Number(updates) === 0 && Number(sends) === 0 && d.fake.updatesFor(d.bot).length === produced.length;
  }, timeoutMs);
}

const fromBot = (fake: FakeBotApi, bot: FakeBot, user: FakeUser): Message[] => fake.messagesIn(user.id, { botId: bot.id }).filter((m) => m.from?.id === bot.id);

/**
 * A customer fills in the default form (category, subject, description, Skip the email);
 * `step` waits until the bot has answered each move.
 */
async function customerOpensTicket(fake: FakeBotApi, bot: FakeBot, user: FakeUser, subject: string, step: () => Promise<void>): Promise<void> {
  const said = () => fromBot(fake, bot, user).length;
  const next = async (act: () => void) => {
    const before = said();
    act();
    await step();
    await until('the bot to answer', () => said() > before);
  };
  await next(() => fake.userSends(bot, user, '/start'));
  const q1 = fromBot(fake, bot, user).at(-1)!;
  await next(() => fake.userPresses(bot, user, { chatId: user.id, messageId: q1.message_id }, q1.reply_markup.inline_keyboard[0][0].callback_data));
  await next(() => fake.userSends(bot, user, subject));
  await next(() => fake.userSends(bot, user, `Details about ${subject}`));
  const q4 = fromBot(fake, bot, user).at(-1)!;
  const skip = q4.reply_markup.inline_keyboard.flat().find((b: { text: string }) => b.text === 'Skip');
  assert.ok(skip, 'the optional email question has a Skip button');
  await next(() => fake.userPresses(bot, user, { chatId: user.id, messageId: q4.message_id }, skip.callback_data));
  assert.match(fromBot(fake, bot, user).at(-1)!.text, /^Ticket #\d+ created/);
}

// ------------------------------------------------------------------------------------------

describe('Telegram start-up', function () {
  this.timeout(60_000);

  afterEach(async () => {
    for (const stop of open.splice(0)) await stop();
  });

  describe('the check of the support group', () => {
    const cases: Array<{ name: string; isForum?: boolean; setup: (fake: FakeBotApi, bot: FakeBot, group: FakeGroup) => void; token?: (bot: FakeBot) => string; says: RegExp[]; level: number }> = [
      {
        name: 'a group that is not a forum', isForum: false,
        setup: (fake, bot, group) => fake.addBotToGroup(bot, group),
        says: [/is not a forum/, /turn on Topics/], level: 50,
      },
      {
        name: 'a bot that is only a member',
        setup: (fake, bot, group) => fake.addBotToGroup(bot, group, { status: 'member' }),
        says: [/@desk_bot is not an administrator/, /promote it to admin with the Manage Topics right/], level: 50,
      },
      {
        name: 'an admin without can_manage_topics',
        setup: (fake, bot, group) => fake.addBotToGroup(bot, group, { rights: { can_manage_topics: false } }),
        says: [/without the Manage Topics right/, /turn on Manage Topics/], level: 50,
      },
      {
        name: 'a bot that is not in the group',
        setup: () => undefined,
        says: [/cannot reach the support group/, /add the bot to the group/], level: 50,
      },
      {
        name: 'a token Telegram rejects (401)',
        setup: (fake, bot, group) => fake.addBotToGroup(bot, group),
        token: (bot) => `${bot.id}:AArevokedRevokedRevokedRevoked0`,
        says: [/refuses the token/, /@BotFather/], level: 50,
      },
    ];

    for (const c of cases) {
      it(`logs one clear line naming the fix for ${c.name}, and the HTTP API keeps answering`, async () => {
        const d = await bootDesk(c);
        const verdict = await checked(d);
        assert.ok(verdict.level >= 40, `a warning or an error, not "${verdict.msg}"`);
        assert.equal(verdict.level, c.level);
        for (const re of c.says) assert.match(verdict.msg, re);
        if (!c.token) assert.match(verdict.msg, new RegExp(String(d.group.id)), 'it names the group');

        const me = await d.api.get('/v1/me').set('Authorization', d.auth);
        assert.equal(me.status, 200, 'the API answers');
        assert.equal(me.body.workspace?.id ?? me.body.workspace_id ?? 'ws_default', 'ws_default');

        const lines = problems(d).filter((l) => c.says.some((re) => re.test(l.msg)));
        assert.equal(lines.length, 1, 'said once');
        if (!c.token) assert.deepEqual(problems(d).map((l) => l.msg), [verdict.msg], 'and nothing else went wrong');
        assert.equal(d.lines().some((l) => /Telegram ready/.test(l.msg)), false);
        assert.equal(d.logs.join('').includes(d.token), false, 'the token is not logged');
      });
    }

    it('logs "Telegram ready" for a healthy setup, and nothing worse than info', async () => {
      const d = await bootDesk({ setup: (fake, bot, group) => fake.addBotToGroup(bot, group) });
      const verdict = await checked(d);
      assert.match(verdict.msg, /Telegram ready: @desk_bot creates ticket topics in "Support"/);
      assert.equal(verdict.level, 30);
      await d.api.get('/v1/me').set('Authorization', d.auth).expect(200);
      assert.deepEqual(problems(d).map((l) => l.msg), []);
      for (const m of ['getMe', 'getChat', 'getChatMember']) assert.ok(d.fake.callsTo(m).some((x) => x.status === 200), `${m} was checked`);
    });
  });

  it('creates the default workspace\'s account from TELEGRAM_BOT_TOKEN, and never returns the token', async () => {
    const d = await bootDesk({ setup: (fake, bot, group) => fake.addBotToGroup(bot, group) });
    await checked(d);
    const rows = await d.db('accounts').whereNull('deleted_at');
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.equal(row.workspace_id, 'ws_default');
    assert.equal(row.bot_token, d.token, 'the token is stored');
    assert.equal(Number(row.bot_user_id), d.bot.id);
    assert.equal(Number(row.support_chat_id), d.group.id);
    assert.equal(row.is_default, true);

    const list = await d.api.get('/v1/accounts').set('Authorization', d.auth).expect(200);
    assert.equal(list.body.items.length, 1);
    const [acc] = list.body.items;
    assert.equal(acc.id, row.id);
    assert.equal(acc.bot_user_id, d.bot.id);
    assert.equal(acc.support_chat_id, d.group.id);
    assert.equal(acc.is_default, true);
    assert.equal(acc.bot_username, 'desk_bot', 'the username from getMe');
    const one = await d.api.get(`/v1/accounts/${row.id}`).set('Authorization', d.auth).expect(200);
    const secretPart = d.token.split(':')[1];
    for (const body of [list.text, one.text]) {
      assert.equal(body.includes(secretPart), false, 'the token never comes out');
      assert.equal(/bot_token/.test(body), false);
    }

    // A restart with the same variable keeps the one account.
    await d.telegram.runtime.stop();
    await d.telegram.runtime.start();
    assert.equal((await d.db('accounts').whereNull('deleted_at')).length, 1);
  });

  it('sends every Bot API call of a journey to TELEGRAM_API_ROOT and nowhere else', async () => {
    // Every HTTP(S) request this process makes, as node-fetch (Telegraf's client) issues them.
    const seen: Array<{ protocol: string; host: string; port: string; path: string }> = [];
    const originals = { http: http.request, https: https.request };
    const wrap = (orig: typeof http.request, protocol: string) => function (this: unknown, ...args: any[]) {
      const a = args[0];
      const o = typeof a === 'string' || a instanceof URL ? new URL(String(a)) : a;
      seen.push({ protocol, host: String(o.hostname ?? o.host ?? ''), port: String(o.port ?? ''), path: String(o.path ?? o.pathname ?? '') });
      return (orig as any).apply(this, args);
    };
    (http as any).request = wrap(originals.http, 'http:');
    (https as any).request = wrap(originals.https as typeof http.request, 'https:');
    try {
      const d = await bootDesk({ setup: (fake, bot, group) => fake.addBotToGroup(bot, group) });
      await checked(d);
      const user = d.fake.addUser({ firstName: 'Uma' });
      const agent = d.fake.addUser({ firstName: 'Vic', username: 'vic' });
      d.fake.addMember(d.group, agent);
      await customerOpensTicket(d.fake, d.bot, user, 'Where is my parcel', () => settle(d));
      await settle(d);
      const [topic] = d.fake.topics(d.group.id);
      assert.ok(topic, 'the ticket got its topic');
      d.fake.userSends(d.bot, user, 'any news?');
      await settle(d);
      d.fake.memberSends(d.group, agent, 'It ships today', { threadId: topic.threadId });
      await settle(d);
      assert.equal(fromBot(d.fake, d.bot, user).at(-1)?.text, 'It ships today');

      const calls = d.fake.calls;
      assert.ok(calls.length > 0, 'the fake was called');
      for (const m of ['getMe', 'getChat', 'getChatMember', 'deleteWebhook', 'getUpdates', 'sendMessage', 'answerCallbackQuery', 'createForumTopic', 'pinChatMessage', 'copyMessage']) {
        assert.ok(calls.some((c) => c.method === m), `${m} reached the fake`);
      }
      assert.ok(calls.every((c) => c.token === d.bot.token), 'with the bot\'s token');

      const botCalls = seen.filter((r) => r.path.startsWith('/bot'));
      const fakeUrl = new URL(d.fake.url);
      assert.ok(botCalls.length >= calls.filter((c) => c.method !== 'getUpdates').length, 'every call was seen leaving');
      assert.deepEqual([...new Set(botCalls.map((r) => `${r.protocol}//${r.host}:${r.port}`))], [`${fakeUrl.protocol}//${fakeUrl.hostname}:${fakeUrl.port}`], 'all to the fake');
      assert.deepEqual(seen.filter((r) => r.protocol === 'https:' || /telegram\.org/.test(r.host)), [], 'nothing to api.telegram.org');
    } finally {
      (http as any).request = originals.http;
      (https as any).request = originals.https;
    }
  });
});

// ------------------------------------------------------------------------------------------

describe('the real service with TELEGRAM_* variables', function () {
  this.timeout(90_000);
  let proc: MainProcess | undefined;
  let database: TestDatabase | undefined;
  let fake: FakeBotApi | undefined;

  after(async () => {
    if (proc && !proc.hasExited()) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    await fake?.close();
    await database?.drop();
  });

  it('lets a customer open a ticket through the bot: topic, pinned card, and the ticket in the API', async () => {
    database = await createTestDatabase();
    fake = await startFakeBotApi({ limits: false });
    const bot = fake.addBot({ username: 'desk_bot', firstName: 'Desk' });
    const group = fake.addGroup({ title: 'Support' });
    fake.addBotToGroup(bot, group);
    const p = proc = startMain(baseEnv({
      PORT: '0', HOST: '127.0.0.1', DATABASE_URL: database.url, LOG_LEVEL: 'info',
      TELEGRAM_BOT_TOKEN: bot.token, TELEGRAM_SUPPORT_CHAT_ID: String(group.id), TELEGRAM_API_ROOT: fake.url,
    }));
    const url = await p.listening();
    await until('"Telegram ready"', () => p.lines.find((l) => /Telegram ready/.test(l.msg)), 30_000);
    await fake.waitForCalls('deleteWebhook', 1, 30_000); // the poller runs

    const user = fake.addUser({ firstName: 'Wren', username: 'wren' });
    await customerOpensTicket(fake, bot, user, 'Cannot pay by card', async () => undefined);
    const topic = await until('the topic with its pinned card', () => {
      const t = fake!.topics(group.id)[0];
      return t && t.pinned.length === 1 ? t : undefined;
    }, 30_000);
    assert.match(topic.name, /#1 · Cannot pay by card/);
    const card = topic.messages.find((m) => m.message_id === topic.pinned[0])!;
    assert.match(card.text, /Customer: Wren · @wren/);

    const services = createServices({ config: loadConfig({ NODE_ENV: 'test' }), db: database.knex, logger: createLogger('silent'), clock: systemClock });
    const key = await makeKey(database.knex, services);
    const res = await fetch(`${url}/v1/tickets`, { headers: { Authorization: key.auth } });
    assert.equal(res.status, 200);
    const body = await res.json() as { items: Array<{ number: number; subject: string; topic: { chat_id: number; message_thread_id: number } | null }> };
    assert.equal(body.items.length, 1);
    assert.equal(body.items[0].subject, 'Cannot pay by card');
    assert.deepEqual(body.items[0].topic, { chat_id: group.id, message_thread_id: topic.threadId });
    assert.equal(p.lines.filter((l) => l.level >= 50).length, 0, `no errors: ${JSON.stringify(p.lines.filter((l) => l.level >= 50))}`);

    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    assert.equal(code, 0, 'it stops cleanly with the bot running');
  });
});
