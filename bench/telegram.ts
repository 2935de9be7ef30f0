/**
 * Telegram: `npm run bench:telegram`. The service runs as its own process with its bots
 * polling the fake Bot API server (test/helpers/fake-bot-api.ts, in this process), which
 * enforces Telegram's flood limits (1 msg/s per chat, 20/min per group, 30/s per bot) and
 * answers 429 when they are broken.
 *  1. Throughput: BENCH_CUSTOMERS customers (default 100) have started the bot; then
 *     BENCH_MESSAGES messages (default 1,000, spread evenly) are queued at once through the
 *     message service. Reported: messages/s from the commit to the last delivery, and the
 *     number of 429s the fake answered (the target is zero).
 *  2. Relay latency: customers with open tickets write, spread over 5 bots and their 5
 *     support groups at a rate under each group's 20/min; each message is timed from the
 *     moment the fake creates the update to the moment it receives the copyMessage into the
 *     topic (polling, handling, queueing, pacing, sending), and broken down per hop:
 *       poll   the customer writes → the fake hands the update out (getUpdates answer)
 *       store  handed out → the telegram_updates row inserted
 *       handle stored → the update marked processed (its copy queued in that transaction)
 *       claim  handled → the copy claimed by the send worker (commit, wake-up, pacing)
 *       copy   claimed → the fake receives the copyMessage
 *     The database times are clock_timestamp() taken by triggers the benchmark adds to its own
 *     database (table bench_hops), not by the service. Also reported: the service's peak RSS
 *     (VmHWM of its process).
 * BENCH_DATABASE_URL runs it on an existing PostgreSQL.
 */
import { loadConfig } from '../src/config.js';
import { createServices } from '../src/container.js';
import type { Knex } from '../src/db/knex.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { startFakeBotApi, type FakeBot, type FakeBotApi, type FakeGroup, type FakeUser } from '../test/helpers/fake-bot-api.js';
import { createKnex } from '../src/db/knex.js';
import { createTelegram } from '../src/telegram/telegram.js';
import { keepRows, procMemoryKb, startBenchEnv, type BenchEnv, type KeptRows } from './harness.js';
import { captureStatements, replayLimit, replayTable } from './limit.js';

const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 100);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1000);
const RELAY_SECONDS = Number(process.env.BENCH_RELAY_SECONDS ?? 120);
const BOTS = 5;
const CUSTOMERS_PER_BOT = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The service process (env.pid): its peak and current RSS in MB. */
function serviceMemory(pid: number): { peak_rss_mb: number; rss_mb: number } | null {
  const peak = procMemoryKb(pid, 'VmHWM');
  const rss = procMemoryKb(pid, 'VmRSS');
  return peak === null || rss === null ? null : { peak_rss_mb: Math.round(peak / 1024), rss_mb: Math.round(rss / 1024) };
}

/**
 * Triggers timing the hops of a relay in the benchmark's own database (clock_timestamp(), the
 * moment the statement runs): an update stored and marked processed, a copy queued, claimed, sent.
 */
const HOP_TRIGGERS = `
  CREATE TABLE IF NOT EXISTS bench_hops (kind text NOT NULL, key text NOT NULL, stage text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
  CREATE OR REPLACE FUNCTION bench_update_hop() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO bench_hops (kind, key, stage) VALUES ('u', NEW.account_id || ':' || NEW.update_id, 'stored');
    ELSIF NEW.processed_at IS NOT NULL AND OLD.processed_at IS NULL THEN
      INSERT INTO bench_hops (kind, key, stage) VALUES ('u', NEW.account_id || ':' || NEW.update_id, 'handled');
    END IF;
    RETURN NULL;
  END $$;
  CREATE OR REPLACE FUNCTION bench_send_hop() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO bench_hops (kind, key, stage) VALUES ('s', NEW.id::text, 'queued');
    ELSIF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('sending', 'sent') THEN
      INSERT INTO bench_hops (kind, key, stage) VALUES ('s', NEW.id::text, NEW.status);
    END IF;
    RETURN NULL;
  END $$;
  DROP TRIGGER IF EXISTS bench_update_hop ON telegram_updates;
  CREATE TRIGGER bench_update_hop AFTER INSERT OR UPDATE ON telegram_updates FOR EACH ROW EXECUTE FUNCTION bench_update_hop();
  DROP TRIGGER IF EXISTS bench_send_hop ON telegram_sends;
  CREATE TRIGGER bench_send_hop AFTER INSERT OR UPDATE ON telegram_sends FOR EACH ROW WHEN (NEW.op = 'copy_message') EXECUTE FUNCTION bench_send_hop();`;

/**
 * The rows a relay pass changes (the tables its statements write, and what their triggers
 * write): the rows it adds go, the ones it changes are put back. Tables the benchmark keeps
 * small are kept whole.
 */
const RELAY_ROWS = (since: Date): KeptRows[] => {
  const after = { scope: 'created_at >= ?', bindings: [since], how: 'replace' } as const;
  const ofEvents = (table: string): KeptRows => ({ table, scope: 'event_id IN (SELECT id FROM events WHERE created_at >= ?)', bindings: [since], how: 'replace' });
  return [
    ofEvents('webhook_fanout_queue'),
    ofEvents('escalation_queue'),
    { table: 'message_telegram_refs', scope: 'message_id IN (SELECT id FROM messages WHERE created_at >= ?)', bindings: [since], how: 'replace' },
    { table: 'telegram_sends', ...after },
    { table: 'messages', ...after },
    { table: 'events', ...after },
    { table: 'telegram_updates', scope: 'received_at >= ?', bindings: [since], how: 'replace' },
    { table: 'telegram_rate_windows', scope: 'true', how: 'replace' },
    { table: 'telegram_chats', scope: 'true', how: 'replace' },
    { table: 'contact_chats', scope: 'true', how: 'replace' },
    { table: 'accounts', scope: 'true', how: 'update' },
    { table: 'tickets', scope: 'true', how: 'update' },
    { table: 'sla_clocks', scope: 'true', how: 'update', key: 'ticket_id' },
  ];
};

const HOPS = ['poll', 'store', 'handle', 'claim', 'copy'] as const;

function newGroup(fake: FakeBotApi, bot: FakeBot, title: string): FakeGroup {
  const group = fake.addGroup({ title });
  fake.addBotToGroup(bot, group);
  return group;
}

async function main(): Promise<void> {
  const fake = await startFakeBotApi({ limits: {} });
  const mainBot = fake.addBot({ username: 'bench_desk_bot' });
  const mainGroup = newGroup(fake, mainBot, 'Support');
  const env = await startBenchEnv({
    SCHEDULER_ENABLED: 'true', TELEGRAM_BOT_TOKEN: mainBot.token, TELEGRAM_SUPPORT_CHAT_ID: String(mainGroup.id), TELEGRAM_API_ROOT: fake.url,
    LOG_LEVEL: 'warn',
  });
  const services = createServices({ config: loadConfig({ NODE_ENV: 'production' }), db: env.knex, logger: createLogger('silent'), clock: systemClock });
  const account = async (bot: FakeBot) => {
    await until(`the account of @${bot.username}`, async () => !!(await env.knex('accounts').where({ bot_user_id: bot.id }).first()), 30_000);
    return (await env.knex('accounts').where({ bot_user_id: bot.id }).first()).id as string;
  };
  try {
    // ---- 1. Throughput under the limits
    const accountId = await account(mainBot);
    await services.workspaces.update(env.knex, 'ws_default', { daily_send_limit: 100_000 } as any);
    const customers: FakeUser[] = [];
    for (let i = 0; i < CUSTOMERS; i++) customers.push(fake.addUser({ firstName: `Customer ${i}` }));
    for (const c of customers) fake.userSends(mainBot, c, '/start');
    await until('every /start answered', () => fake.callsTo('sendMessage').filter((c) => c.status === 200).length >= CUSTOMERS, 120_000);
    await until('contacts recorded', async () => Number((await env.knex('contact_chats').where({ account_id: accountId }).count({ n: '*' }))[0].n) >= CUSTOMERS, 30_000);
    await sleep(1500); // let the per-chat windows of the /start answers pass
    const before429 = fake.rateLimited.length;
    const sentBefore = fake.callsTo('sendMessage').filter((c) => c.status === 200).length;
    const contactIds: string[] = (await env.knex('contact_chats').where({ account_id: accountId }).select('contact_id')).map((r: any) => r.contact_id);
    const t0 = Date.now();
    await env.knex.transaction(async (tx) => {
      for (let i = 0; i < MESSAGES; i++) {
        await services.messages.send(tx, { id: 'ws_default', mode: 'live' }, { to: contactIds[i % contactIds.length], text: `Update ${i}` } as any, { type: 'system', id: null });
      }
    });
    const queued = Date.now();
    await until('every message delivered', () => fake.callsTo('sendMessage').filter((c) => c.status === 200).length >= sentBefore + MESSAGES, 600_000);
    // When the fake received the last one (not when this loop noticed).
    const done = Math.max(...fake.callsTo('sendMessage').filter((c) => c.status === 200).map((c) => c.at));
    const seconds = (done - queued) / 1000;
    const throughput = {
      messages: MESSAGES, customers: CUSTOMERS, queue_ms: Math.round(queued - t0), seconds: Math.round(seconds * 10) / 10,
      per_second: Math.round((MESSAGES / seconds) * 10) / 10, rate_limited_429: fake.rateLimited.length - before429,
    };
    process.stderr.write(`throughput: ${JSON.stringify(throughput)}\n`);

    // ---- 2. Relay latency: customer message in → copy into the topic out
    const bots: { bot: FakeBot; group: FakeGroup; users: FakeUser[] }[] = [];
    const key = await services.apiKeys.create(env.knex, { workspaceId: 'ws_default', name: 'bench', scopes: ['all'], rateLimitPerMinute: null, expiresAt: null });
    for (let b = 0; b < BOTS; b++) {
      const bot = fake.addBot({ username: `bench_relay_${b}_bot` });
      const group = newGroup(fake, bot, `Relay ${b}`);
      const r = await fetch(`${env.baseUrl}/v1/accounts`, {
        method: 'POST', headers: { authorization: `Bearer ${key.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `Relay ${b}`, bot_token: bot.token, support_chat_id: group.id }),
      });
      if (r.status !== 201) throw new Error(`POST /v1/accounts answered ${r.status}: ${await r.text()}`);
      bots.push({ bot, group, users: Array.from({ length: CUSTOMERS_PER_BOT }, (_, i) => fake.addUser({ firstName: `Relay ${b}.${i}` })) });
    }
    // The service picks the new bots up at its next reconcile (10 s).
    for (const { bot } of bots) await account(bot);
    await until('the new bots polling', () => bots.every(({ bot }) => fake.calls.some((c) => c.token === bot.token && c.method === 'getUpdates')), 60_000);
    // Each customer completes the form: category button, subject, description, Skip.
    const lastQuestion = (bot: FakeBot, u: FakeUser) => fake.messagesIn(u.id, { botId: bot.id }).filter((m) => m.from?.id === bot.id).at(-1);
    const answerForm = async (bot: FakeBot, u: FakeUser) => {
      const asked = () => fake.messagesIn(u.id, { botId: bot.id }).filter((m) => m.from?.id === bot.id).length;
      fake.userSends(bot, u, '/start');
      await until('question 1', () => asked() >= 1, 60_000);
      fake.userPresses(bot, u, { chatId: u.id, messageId: lastQuestion(bot, u)!.message_id }, 'f:0:0');
      await until('question 2', () => asked() >= 2, 60_000);
      fake.userSends(bot, u, 'Benchmark subject');
      await until('question 3', () => asked() >= 3, 60_000);
      fake.userSends(bot, u, 'Benchmark description');
      await until('question 4', () => asked() >= 4, 60_000);
      fake.userPresses(bot, u, { chatId: u.id, messageId: lastQuestion(bot, u)!.message_id }, 'f:3:skip');
      await until('ticket created', () => asked() >= 5, 60_000);
    };
    await Promise.all(bots.flatMap(({ bot, users }) => users.map((u) => answerForm(bot, u))));
    await until('every topic set up', () => bots.every(({ group }) => fake.topics(group.id).length >= CUSTOMERS_PER_BOT && fake.topics(group.id).every((t) => t.pinned.length > 0)), 120_000);
    await sleep(61_000); // the groups' 20/min windows start empty
    await env.knex.raw(HOP_TRIGGERS);

    // Round robin over the bots first, so each group gets one message every BOTS intervals
    // (3.3 s): under its 20/min and under the 1/s of a chat. BENCH_RELAY_ORDER=burst sends each
    // bot's customers back to back instead (5 messages 0.67 s apart into one group, faster than
    // the group's 1/s: most of the latency is then that limit's pacing, in the claim hop).
    const pairs = process.env.BENCH_RELAY_ORDER === 'burst'
      ? bots.flatMap(({ bot, users }) => users.map((u) => ({ bot, u })))
      : Array.from({ length: BOTS * CUSTOMERS_PER_BOT }, (_, i) => ({ bot: bots[i % BOTS].bot, u: bots[i % BOTS].users[Math.floor(i / BOTS)] }));
    const sent: { userId: number; messageId: number; at: number }[] = [];
    const intervalMs = 60_000 / (BOTS * 18); // each group gets 18 a minute, under its 20
    const started = Date.now();
    for (let i = 0; Date.now() - started < RELAY_SECONDS * 1000; i++) {
      const { bot, u } = pairs[i % pairs.length];
      const at = Date.now();
      sent.push({ userId: u.id, messageId: fake.userSends(bot, u, `relay ${i}`).message_id, at });
      await sleep(intervalMs);
    }
    const copyAt = () => new Map(fake.callsTo('copyMessage').filter((c) => c.status === 200).map((c) => [`${c.params.from_chat_id}:${c.params.message_id}`, c.at]));
    await until('every relay copied', () => { const copies = copyAt(); return sent.every((x) => copies.has(`${x.userId}:${x.messageId}`)); }, 180_000);
    const copies = copyAt();
    const latencies = sent.map((x) => copies.get(`${x.userId}:${x.messageId}`)! - x.at);
    latencies.sort((a, b) => a - b);
    const relay = { samples: latencies.length, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), max_ms: latencies.at(-1), rate_limited_429: fake.rateLimited.length - before429 - throughput.rate_limited_429 };
    process.stderr.write(`relay: ${JSON.stringify(relay)}\n`);
    // The target is zero: name any 429 with what that chat had been sent in the minute before it.
    for (const c of fake.rateLimited.slice(before429 + throughput.rate_limited_429)) {
      const chat = String(c.params.chat_id);
      const before = fake.calls.filter((x) => String(x.params.chat_id) === chat && x.at < c.at && x.at >= c.at - 60_000 && x.status === 200);
      process.stderr.write(`  429: ${c.method} → ${chat} (${c.response?.description}); that chat's successful calls in the minute before: ${before.length} (${[...new Set(before.map((x) => x.method))].join(', ')})\n`);
    }
    const hops = await hopBreakdown(env.knex, fake, sent, copies);
    for (const h of HOPS) process.stderr.write(`  ${h.padEnd(6)} p50 ${String(hops[h].p50_ms).padStart(5)} ms  p99 ${String(hops[h].p99_ms).padStart(5)} ms  max ${String(hops[h].max_ms).padStart(5)} ms\n`);
    const memory = serviceMemory(env.pid);
    process.stderr.write(`service memory: ${JSON.stringify(memory)}\n`);

    // ---- 3. Against the limit: the statements of relays, replayed by pgbench
    await env.stopService();
    const limit = await relayLimit(env, fake, { token: mainBot.token, chatId: mainGroup.id }, pairs, intervalMs, relay.p50_ms);
    console.log(JSON.stringify({ throughput, relay: { ...relay, hops }, memory }, null, 2));
    console.log(`\n${limit}`);
  } finally {
    await env.close();
    await fake.close();
  }
}

/**
 * The relays' limit: with the service stopped, the Telegram side runs in this process (its work
 * on one connection, besides the pollers' locks) while every relay
 * customer writes once more, paced as in 2; the rows the pass changed are put back and pgbench
 * replays its statements (bench/limit.ts `replayLimit`). Everything the Telegram side sent in
 * that time is in the pass, its idle polls included.
 */
async function relayLimit(env: BenchEnv, fake: FakeBotApi, main: { token: string; chatId: number }, pairs: { bot: FakeBot; u: FakeUser }[], intervalMs: number, relayP50Ms: number): Promise<string> {
  const { knex } = env;
  const config = loadConfig({ NODE_ENV: 'production', TELEGRAM_API_ROOT: fake.url, TELEGRAM_BOT_TOKEN: main.token, TELEGRAM_SUPPORT_CHAT_ID: String(main.chatId) });
  // One connection carries the work (the pollers' locks have one of their own, whose few
  // statements — a lock per bot, a heartbeat every 10 s — are captured too): captured in the
  // order PostgreSQL ran them, as the one-connection replay runs them.
  const db = createKnex(env.databaseUrl, 1);
  const logger = createLogger('silent');
  const services = createServices({ config, db, logger, clock: systemClock });
  const telegram = createTelegram({ config, db, logger, clock: systemClock, services });
  const since = new Date();
  const kept = await keepRows(knex, RELAY_ROWS(since));
  // Sends are numbered by a sequence, which no rollback rewinds: every replayed pass sets it back first.
  const seq = (await knex.raw('SELECT last_value, is_called FROM telegram_sends_id_seq')).rows[0] as { last_value: string; is_called: boolean };
  const setup = [{ text: `SELECT setval('telegram_sends_id_seq', ${Number(seq.last_value)}, ${seq.is_called})`, values: [] }];
  const copiesBefore = fake.callsTo('copyMessage').filter((c) => c.status === 200).length;
  await sleep(61_000); // the groups' 20/min windows start empty again
  const pass = await captureStatements(async () => {
    await telegram.start();
    for (const { bot, u } of pairs) {
      fake.userSends(bot, u, 'relay, captured');
      await sleep(intervalMs);
    }
    await until('every captured relay copied', () => fake.callsTo('copyMessage').filter((c) => c.status === 200).length >= copiesBefore + pairs.length, 120_000);
    await telegram.stop();
  });
  await db.destroy();
  const writes = new Set(pass.statements.map((st) => /^\s*(?:insert\s+into|update|delete\s+from)\s+"?(\w+)/i.exec(st.text)?.[1]).filter(Boolean));
  process.stderr.write(`captured ${pass.statements.length} statements; tables written: ${[...writes].join(', ')}\n`);
  await kept.restore();
  const result = await replayLimit(
    { databaseUrl: env.databaseUrl, postmasterPid: env.postmasterPid, seconds: Number(process.env.BENCH_REPLAY_SECONDS ?? 10) },
    { name: `${pairs.length} relays, one per customer (items: relays; service: one at a time, 1000 ÷ the relay's p50 ms)`, items: pairs.length, statements: pass.statements, setup, writes: true, serviceItemsPerSecond: Math.round((1000 / relayP50Ms) * 10) / 10 },
  );
  return replayTable([result]);
}

/** Per hop (HOPS), p50/p99/max over the relayed messages, from the fake's log and bench_hops. */
async function hopBreakdown(knex: Knex, fake: FakeBotApi, sent: { userId: number; messageId: number; at: number }[], copies: Map<string, number>) {
  const key = (chat: number | string, message: number | string) => `${chat}:${message}`;
  // Handed out: the getUpdates answer carrying it — when the poll came, or at once if it was waiting.
  const handedOut = new Map<string, number>();
  for (const c of fake.callsTo('getUpdates')) {
    if (c.status !== 200) continue;
    for (const u of c.response?.result ?? []) if (u.message) handedOut.set(key(u.message.chat.id, u.message.message_id), c.at);
  }
  const hops = (await knex.raw(`SELECT kind, key, stage, at FROM bench_hops`)).rows as { kind: string; key: string; stage: string; at: Date }[];
  const hopAt = new Map(hops.map((h) => [`${h.kind}|${h.key}|${h.stage}`, new Date(h.at).getTime()]));
  const updates = (await knex.raw(`SELECT account_id || ':' || update_id AS k, payload->'message'->'chat'->>'id' AS chat, payload->'message'->>'message_id' AS mid
    FROM telegram_updates WHERE payload->'message' IS NOT NULL`)).rows as { k: string; chat: string; mid: string }[];
  const updateOf = new Map(updates.map((u) => [key(u.chat, u.mid), u.k]));
  const sends = (await knex.raw(`SELECT id::text AS k, payload->>'from_chat_id' AS chat, payload->'message_ids'->>0 AS mid
    FROM telegram_sends WHERE op = 'copy_message'`)).rows as { k: string; chat: string; mid: string }[];
  const sendOf = new Map(sends.map((r) => [key(r.chat, r.mid), r.k]));
  const spans: Record<(typeof HOPS)[number], number[]> = { poll: [], store: [], handle: [], claim: [], copy: [] };
  for (const x of sent) {
    const k = key(x.userId, x.messageId);
    const out = handedOut.get(k);
    const stored = hopAt.get(`u|${updateOf.get(k)}|stored`);
    const handled = hopAt.get(`u|${updateOf.get(k)}|handled`);
    const claimed = hopAt.get(`s|${sendOf.get(k)}|sending`);
    const copied = copies.get(k);
    if (out === undefined || stored === undefined || handled === undefined || claimed === undefined || copied === undefined) continue;
    const given = Math.max(out, x.at);
    spans.poll.push(given - x.at);
    spans.store.push(stored - given);
    spans.handle.push(handled - stored);
    spans.claim.push(claimed - handled);
    spans.copy.push(copied - claimed);
  }
  return Object.fromEntries(HOPS.map((h) => {
    const v = spans[h].sort((a, b) => a - b);
    return [h, { samples: v.length, p50_ms: percentile(v, 50), p99_ms: percentile(v, 99), max_ms: v.at(-1) }];
  })) as Record<(typeof HOPS)[number], { samples: number; p50_ms: number; p99_ms: number; max_ms: number | undefined }>;
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
