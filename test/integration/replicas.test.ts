/**
 * Several replicas, as production runs them (issue 17): two real service processes
 * (src/main.ts) on one database behind a round-robin load balancer on loopback
 * (test/helpers/balancer.ts), the bot in webhook mode with Telegram (the fake Bot API)
 * pushing updates to the balancer, and an integrator's webhook receiver.
 *
 * One pair of replicas serves every test, in order: either replica answers any API request
 * and any Telegram update; the rate limit is one budget across both; each cron tick runs
 * once; and a SIGTERM to one replica under load drains it while the other carries on —
 * every request answered, every customer message copied once, every reply sent once, every
 * event delivered once, and nothing over Telegram's flood limits (the pacing is shared too).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { makeKey } from '../helpers/factories.js';
import { startFakeBotApi, type FakeBot, type FakeBotApi, type FakeGroup, type FakeUser } from '../helpers/fake-bot-api.js';
import { baseEnv, startMain, type LogLine, type MainProcess } from '../helpers/main-process.js';
import { waitFor } from '../helpers/process.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const WEBHOOK_SECRET = 'replicas-test-secret_1';

interface Replica { name: string; proc: MainProcess; url: string }

interface ApiResult { status: number; body: any; servedBy: string | null; requestId: string }

/** The access-log lines of a replica. */
const requestLines = (r: Replica): LogLine[] => r.proc.lines.filter((l) => l.msg === 'request');

describe('several replicas behind a load balancer (one database, webhook mode)', function () {
  this.timeout(60_000);

  let db: TestDatabase;
  let t: TestApp;
  let fake: FakeBotApi;
  let bot: FakeBot;
  let group: FakeGroup;
  let receiver: Receiver;
  let lb: Balancer;
  let a: Replica;
  let b: Replica;
  let auth: string;
  let endpointCreatedAt: Date;
  /** Set by the Telegram test: the customer and their ticket's topic. */
  let customer: FakeUser;
  let ticketId: string;
  let threadId: number;
  /** Until then the receiver holds every delivery it gets (they stay in flight). */
  let holdUntil = 0;
  const answerTimes: number[] = [];
  const heldDeliveries = () => answerTimes.filter((t) => t > Date.now()).length;

  async function api(method: string, path: string, body?: unknown, o: { auth?: string; idempotent?: boolean } = {}): Promise<ApiResult> {
    const requestId = `req-test-${randomUUID()}`;
    const res = await fetch(`${lb.url}${path}`, {
      method,
      headers: {
        Authorization: o.auth ?? auth, 'X-Request-Id': requestId,
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        // A client that retries sends an Idempotency-Key, and so may the balancer.
        ...(o.idempotent ?? method === 'POST' ? { 'Idempotency-Key': randomUUID() } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: any = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON (a balancer 502) */ }
    return { status: res.status, body: parsed, servedBy: res.headers.get('x-served-by'), requestId };
  }

  function replicaAt(url: string | null): Replica {
    const r = [a, b].find((x) => x.url === url);
    assert.ok(r, `answered by a replica (x-served-by: ${url})`);
    return r;
  }

  /** Waits until no update, send or delivery is left to do, and Telegram has nothing left to push. */
  async function settled(what: string, timeoutMs = 30_000): Promise<void> {
    let left = {};
    await waitFor(what, async () => {
      const last = fake.updatesFor(bot).at(-1)?.update_id;
      const count = async (q: any) => Number((await q.count({ n: '*' }))[0].n);
      left = {
        unpushed: fake.pendingUpdatesFor(bot).length,
        lastStored: last === undefined || !!(await db.knex('telegram_updates').where({ update_id: last }).first()),
        updates: await count(db.knex('telegram_updates').whereNull('processed_at')),
        sends: await count(db.knex('telegram_sends').whereIn('status', ['queued', 'sending'])),
        fanOut: await count(db.knex('webhook_fanout_queue')),
        deliveries: await count(db.knex('webhook_deliveries').whereNot({ status: 'succeeded' })),
      };
      return Object.values(left).every((v) => v === 0 || v === true);
    }, timeoutMs).catch((err) => { throw new Error(`${(err as Error).message}: ${JSON.stringify(left)}`); });
  }

  before(async function () {
    this.timeout(90_000);
    db = await createTestDatabase();
    t = createTestApp(db.knex);
    // Telegram's flood limits on: two replicas sending past them would get 429s.
    fake = await startFakeBotApi();
    bot = fake.addBot({ username: 'replicas_bot', firstName: 'Replicas' });
    group = fake.addGroup({ title: 'Support' });
    fake.addBotToGroup(bot, group);
    receiver = await startReceiver();
    receiver.respond(() => {
      const delayMs = Math.max(0, holdUntil - Date.now());
      answerTimes.push(Date.now() + delayMs);
      return { status: 200, body: 'ok', delayMs };
    });
    lb = await startBalancer();

    const env = baseEnv({
      DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', SCHEDULER_ENABLED: 'true',
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      TELEGRAM_BOT_TOKEN: bot.token, TELEGRAM_SUPPORT_CHAT_ID: String(group.id), TELEGRAM_API_ROOT: fake.url,
      // Telegram is told to push to the balancer, not to a replica.
      TELEGRAM_WEBHOOK_URL: lb.url, TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
    });
    const procA = startMain(env);
    const procB = startMain(env);
    const [urlA, urlB] = await Promise.all([procA.listening(60_000), procB.listening(60_000)]);
    a = { name: 'a', proc: procA, url: urlA };
    b = { name: 'b', proc: procB, url: urlB };
    for (const r of [a, b]) {
      await waitFor(`replica ${r.name} to be up`, () => r.proc.lines.find((l) => /^topicdesk is up/.test(l.msg)), 30_000);
      lb.add(r.url);
    }
    const setWebhook = fake.callsTo('setWebhook');
    assert.equal(setWebhook.length, 2, 'each replica set the webhook');
    for (const c of setWebhook) {
      assert.match(String(c.params.url), new RegExp(`^${lb.url}/telegram/acc_\\w+/webhook$`), 'to the balancer');
      assert.equal(c.params.secret_token, WEBHOOK_SECRET);
    }

    auth = (await makeKey(db.knex, t.services, { rateLimitPerMinute: 100_000 })).auth;
    // Every event from here on goes to the receiver, from whichever replica delivers it.
    const endpoint = await api('POST', '/v1/webhooks', { url: receiver.url, events: ['*'], description: 'replicas' });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    endpointCreatedAt = new Date(endpoint.body.created_at);
    // A one-question form: a customer's second message opens the ticket.
    const form = await api('PUT', '/v1/intake-form', { fields: [{ key: 'subject', type: 'text', question: 'What is it about?', required: true }] });
    assert.equal(form.status, 200, JSON.stringify(form.body));
  });

  afterEach(function () {
    // What the replicas were doing, when a test fails: the end of their logs.
    if (this.currentTest?.state !== 'failed') return;
    for (const r of [a, b].filter(Boolean)) {
      console.error(`--- replica ${r.name} (${r.url}), last log lines:\n${r.proc.stdout().split('\n').slice(-40).join('\n')}${r.proc.stderr()}`);
    }
  });

  after(async () => {
    for (const r of [a, b]) {
      if (r && !r.proc.hasExited()) {
        r.proc.child.kill('SIGKILL');
        await r.proc.exited;
      }
    }
    await lb?.close();
    await fake?.close();
    await receiver?.close();
    await db?.drop();
  });

  it('answers any API request from either replica, alike', async () => {
    const created = await api('POST', '/v1/contacts', { name: 'Either Replica', email: 'either@example.com' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const reads = [];
    for (let i = 0; i < 6; i++) reads.push(await api('GET', `/v1/contacts/${created.body.id}`));
    for (const r of reads) {
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, created.body, 'the same contact, whichever replica answers');
    }
    const servers = new Set(reads.map((r) => r.servedBy));
    assert.deepEqual([...servers].sort(), [a.url, b.url].sort(), 'round robin: both replicas answered');
    // Each replica's own access log has exactly the requests the balancer says it sent there.
    for (const r of [created, ...reads]) {
      const replica = replicaAt(r.servedBy);
      const other = replica === a ? b : a;
      await waitFor(`${replica.name} to log ${r.requestId}`, () => requestLines(replica).some((l) => l.request_id === r.requestId && l.status === r.status));
      assert.ok(!requestLines(other).some((l) => l.request_id === r.requestId), `${other.name} did not`);
    }
  });

  it('takes any Telegram update through either replica, and handles each once', async () => {
    customer = fake.addUser({ firstName: 'Rita' });
    fake.userSends(bot, customer, 'Hello?');
    const question = await waitFor('the form question', () => fake.messagesIn(customer.id, { botId: bot.id }).find((m) => m.from?.id === bot.id && /What is it about/.test(m.text ?? '')));
    assert.ok(question);
    fake.userSends(bot, customer, 'Replicated printer');
    const ticket = await waitFor('the ticket and its topic', async () => {
      const row = await db.knex('tickets').where({ subject: 'Replicated printer' }).first();
      return row?.topic_thread_id ? row : null;
    }, 20_000);
    ticketId = ticket.id;
    threadId = Number(ticket.topic_thread_id);
    for (const text of ['first follow-up', 'second follow-up']) fake.userSends(bot, customer, text);
    await settled('the follow-ups to be copied');

    const copies = (text: string) => (fake.topic(group.id, threadId)?.messages ?? []).filter((m) => m.from?.id === bot.id && m.text === text);
    for (const text of ['first follow-up', 'second follow-up']) assert.equal(copies(text).length, 1, `"${text}" copied once`);

    // Telegram pushed each update to the balancer, which sent them to both replicas in turn.
    const pushes = lb.log.filter((f) => f.path.startsWith('/telegram/'));
    assert.deepEqual(pushes.map((f) => f.status), fake.updatesFor(bot).map(() => 200), 'one push per update, each stored at once');
    for (const r of [a, b]) {
      const stored = requestLines(r).filter((l) => l.route === '/telegram/:id/webhook' && l.status === 200);
      assert.equal(stored.length, pushes.filter((f) => f.backend === r.url).length, `replica ${r.name} stored what the balancer sent it`);
      assert.ok(stored.length > 0, `replica ${r.name} stored some of the updates`);
    }
    const rows = await db.knex('telegram_updates').select('update_id', 'processed_at', 'attempts').orderBy('update_id');
    assert.deepEqual(rows.map((u) => u.update_id).map(Number), fake.updatesFor(bot).map((u) => u.update_id), 'each update stored once');
    assert.ok(rows.every((u) => u.processed_at !== null));
  });

  it('shares one rate-limit budget: a key limited to 20 a minute gets exactly 20 answers across both', async () => {
    const limited = await makeKey(db.knex, t.services, { rateLimitPerMinute: 20 });
    // The window is the database clock's minute: not a burst across two.
    await waitFor('the minute to have a few seconds left', async () => {
      const { rows } = await db.knex.raw(`SELECT extract(second FROM now())::float AS s`);
      return rows[0].s < 54;
    }, 10_000);
    const results: ApiResult[] = [];
    for (let round = 0; round < 6; round++) {
      results.push(...await Promise.all(Array.from({ length: 5 }, () => api('GET', '/v1/me', undefined, { auth: limited.auth }))));
    }
    const ok = results.filter((r) => r.status === 200);
    const limitedOut = results.filter((r) => r.status === 429);
    assert.equal(ok.length, 20, 'exactly the budget succeeded');
    assert.equal(limitedOut.length, 10, 'the rest were refused');
    for (const r of limitedOut) assert.equal(r.body.type, '/docs#error-rate_limit_exceeded');
    for (const replica of [a, b]) {
      assert.ok(ok.some((r) => r.servedBy === replica.url), `replica ${replica.name} answered some within the budget`);
      assert.ok(limitedOut.some((r) => r.servedBy === replica.url), `replica ${replica.name} refused some past it`);
    }
    const windows = await db.knex('rate_limit_counters').where({ bucket: `key:${limited.id}` });
    assert.equal(windows.length, 1, 'one window');
    assert.equal(windows[0].count, 30, 'every request counted once, by whichever replica');
  });

  it('runs each cron tick once, though both replicas fire it', async () => {
    const replicaOf = new Map([[`${hostname()}:${a.proc.child.pid}`, a], [`${hostname()}:${b.proc.child.pid}`, b]]);
    const upSince = Math.max(...[a, b].map((r) => Number(r.proc.lines.find((l) => /^topicdesk is up/.test(l.msg))!.time)));
    /** A replica's "tick" lines (debug) for one job's tick: node-cron fired it there, and what came of it. */
    const tickLines = (r: Replica, job: string, tick: Date) => r.proc.lines.filter((l) => l.msg === 'tick' && l.job === job
      && Math.floor(new Date(l.tick as string).getTime() / 1000) * 1000 === tick.getTime());
    const firedByBoth = (run: { job: string; tick: Date }) => tickLines(a, run.job, run.tick).length > 0 && tickLines(b, run.job, run.tick).length > 0;
    // Jobs fire at :00, :15 and :30 of each minute (config/default.json): within 31 s of start-up
    // both replicas have fired one (the tests before this one took part of that wait).
    const runs = await waitFor('a tick both replicas fired', async () => {
      const rows = await db.knex('job_runs').where('tick', '>', new Date(upSince + 1000)).whereNot({ status: 'running' }).orderBy(['tick', 'job']);
      return rows.some(firedByBoth) ? rows : null;
    }, Math.max(1_000, upSince + 36_000 - Date.now())).catch(async (err) => {
      const rows = await db.knex('job_runs').orderBy(['tick', 'job']);
      const ticks = (r: Replica) => r.proc.lines.filter((l) => l.component === 'scheduler' || /cron|tick/i.test(l.msg)).map((l) => `${l.time} ${l.msg} ${l.job} ${l.tick} ${l.outcome}`);
      throw new Error(`${(err as Error).message}; upSince ${upSince}; runs ${JSON.stringify(rows.map((r) => [r.job, r.tick, r.runner, r.status]))}; a: ${ticks(a).join(' | ')}; b: ${ticks(b).join(' | ')}`);
    });
    for (const run of runs) {
      const at = `${run.job} at ${run.tick.toISOString()}`;
      const ranBy = replicaOf.get(run.runner);
      assert.ok(ranBy, `job_runs names one of the replicas: ${run.runner}`);
      await waitFor(`${ranBy.name} to log that it ran ${at}`, () => tickLines(ranBy, run.job, run.tick).some((l) => l.outcome === 'ran'), 5_000);
      const lines = [a, b].flatMap((r) => tickLines(r, run.job, run.tick).map((line) => ({ r, outcome: line.outcome as string })));
      const summary = lines.map((l) => `${l.r.name}: ${l.outcome}`).join(', ');
      assert.deepEqual(lines.filter((l) => l.outcome === 'ran').map((l) => l.r), [ranBy], `${at} ran once (${summary})`);
      // The other replica fired it too (unless its node-cron skipped the tick) and stood back.
      for (const l of lines.filter((x) => x.outcome !== 'ran')) assert.ok(['already-ran', 'locked-elsewhere', 'running-here'].includes(l.outcome), `${at}: ${summary}`);
      assert.equal(run.status, 'succeeded');
    }
    assert.ok(runs.filter(firedByBoth).length > 0);
  });

  it('drains a replica on SIGTERM while the other carries on: every request answered, all work done once', async function () {
    this.timeout(75_000);
    const updatesBefore = fake.updatesFor(bot).length;
    const sendsBefore = Number((await db.knex('telegram_sends').count({ n: '*' }))[0].n);

    // Load through the balancer until A has stopped and B has carried on alone for a while:
    // API writes (each an event to deliver), the customer writing in Telegram (each line copied
    // into the topic), and agent replies through the API (each sent to the customer).
    const results: Array<ApiResult & { what: string }> = [];
    const replies: string[] = [];
    const followUps: string[] = [];
    const reply = (): Promise<void> => {
      const text = `Reply ${replies.length + 1}`;
      replies.push(text);
      return api('POST', `/v1/tickets/${ticketId}/messages`, { text }).then((r) => { results.push({ what: text, ...r }); });
    };
    const pendingReplies: Promise<void>[] = [];
    let stop = false;
    const apiLoad = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        results.push({ what: `contact ${worker}.${i}`, ...await api('POST', '/v1/contacts', { name: `Load ${worker}.${i}`, email: `load-${worker}-${i}@example.com` }) });
      }
    };
    // A few lines only: a support group takes 20 messages a minute (the topic and its card took 5).
    const telegramLoad = async () => {
      for (let i = 0; !stop && i < 5; i++) {
        const text = `Customer line ${i}`;
        followUps.push(text);
        fake.userSends(bot, customer, text);
        await new Promise((r) => setTimeout(r, 1500));
      }
    };
    const loads = [apiLoad(1), apiLoad(2), apiLoad(3), telegramLoad()];

    // Claimed work in flight on A: the receiver holds every delivery for a while, until more are
    // in flight than one replica can hold for one endpoint — so both replicas hold some. A claim
    // takes at most webhooks.concurrencyPerEndpoint (16, config/default.json) and an endpoint
    // with that many in flight is skipped: one replica holds at most 15 + 16 = 31.
    holdUntil = Date.now() + 8_000;
    await waitFor('deliveries in flight on both replicas', () => heldDeliveries() >= 32, 6_000)
      .catch((err) => { throw new Error(`${err.message}: ${heldDeliveries()} held, ${receiver.requests.length} received, ${results.length} requests`); });
    // Requests in flight on A: a transaction of ours locks the ticket, and replies to it wait
    // (a customer writes one message a second at most: a few replies only).
    const lock = await db.knex.transaction();
    await lock('tickets').where({ id: ticketId }).forUpdate().first();
    const heldReplyOn = (r: Replica) => lb.inFlight().some((f) => f.backend === r.url && f.path.endsWith('/messages'));
    await waitFor('replies held on both replicas', async () => {
      if (heldReplyOn(a) && heldReplyOn(b)) return true;
      if (replies.length < 8) pendingReplies.push(reply());
      await new Promise((r) => setTimeout(r, 50));
      return false;
    }, 5_000);
    const sigtermAt = Date.now();
    a.proc.child.kill('SIGTERM');
    const shuttingDown = Number((await waitFor('A to begin shutting down', () => a.proc.lines.find((l) => l.msg === 'shutting down'))).time);
    await new Promise((r) => setTimeout(r, 300));
    await lock.commit();
    assert.ok(Date.now() < holdUntil, 'the deliveries were still held when the lock was released');
    // A drains while the load goes on; then B carries on alone.
    const exit = await a.proc.exited;
    const exitedAt = Date.now();
    lb.drop(a.url); // as its health check would
    const done = results.length;
    for (let i = 0; i < 2; i++) pendingReplies.push(reply());
    await waitFor('B to carry on alone', () => results.length >= done + 12, 20_000);
    stop = true;
    await Promise.all([...loads, ...pendingReplies]);
    await settled('every update, send and delivery to be done', 45_000);

    // A finished what it had, took nothing new, and stopped cleanly.
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(a.proc.lines.at(-1)?.msg, 'stopped');
    assert.equal(a.proc.stderr(), '');
    const finishedByA = lb.log.filter((f) => f.backend === a.url && f.sentAt < sigtermAt && f.answeredAt > shuttingDown);
    assert.ok(finishedByA.some((f) => f.path.endsWith('/messages')), 'A had replies in flight at the SIGTERM');
    assert.deepEqual(finishedByA.filter((f) => f.status === null || f.status >= 300).map((f) => `${f.method} ${f.path}: ${f.status ?? f.error}`), [],
      'A answered the requests it had in flight');
    const takenLate = lb.log.filter((f) => f.backend === a.url && f.status !== null && f.sentAt > shuttingDown + 1);
    assert.deepEqual(takenLate.map((f) => `${f.method} ${f.path} sent ${f.sentAt - shuttingDown} ms into the shutdown`), [],
      'once shutting down, A takes no new request (not even on a kept-alive connection)');
    assert.ok(exitedAt >= holdUntil, 'A waited for the deliveries it had claimed');

    // Every request got its answer, and no write happened twice (the balancer retried only what
    // was safe to retry: a refused connection, or a request with an Idempotency-Key).
    const failed = results.filter((r) => r.status !== 201 && r.status !== 200);
    assert.deepEqual(failed.map((r) => `${r.what}: ${r.status} ${JSON.stringify(r.body)}`), []);
    const contacts = results.filter((r) => r.what.startsWith('contact'));
    const [{ n: loadContacts }] = await db.knex('contacts').where('email', 'like', 'load-%').count({ n: '*' });
    assert.equal(Number(loadContacts), contacts.length, 'one contact per request');
    const messages = await db.knex('messages').where({ ticket_id: ticketId, direction: 'outbound' }).whereIn('text', replies);
    assert.equal(messages.length, replies.length, 'one message per reply');
    assert.ok(messages.every((m) => m.status === 'sent'), 'every reply went out');

    // Telegram: each reply reached the customer once, each customer line reached the topic once.
    const toCustomer = fake.messagesIn(customer.id, { botId: bot.id }).filter((m) => m.from?.id === bot.id);
    for (const text of replies) assert.equal(toCustomer.filter((m) => m.text === text).length, 1, `"${text}" sent once`);
    const inTopic = (fake.topic(group.id, threadId)?.messages ?? []).filter((m) => m.from?.id === bot.id);
    for (const text of followUps) assert.equal(inTopic.filter((m) => m.text === text).length, 1, `"${text}" copied once`);
    assert.equal(fake.rateLimited.length, 0, 'no call over Telegram\'s flood limits: both replicas pace against one count');
    const updates = await db.knex('telegram_updates').where('update_id', '>', fake.updatesFor(bot)[updatesBefore - 1].update_id);
    assert.equal(updates.length, fake.updatesFor(bot).length - updatesBefore, 'every update stored once');
    const sends = await db.knex('telegram_sends').orderBy('id').offset(sendsBefore);
    // (a topic rename or card edit is dropped when a newer one says the same)
    assert.deepEqual(sends.filter((s) => !(s.status === 'sent' && s.attempts === 1) && !(s.status === 'cancelled' && s.priority === 1 && s.attempts <= 1)), [],
      'every send made once');

    // Webhooks: every event since the endpoint was made, delivered once, at the first attempt.
    const events = await db.knex('events').where('created_at', '>=', endpointCreatedAt).select('id', 'type');
    assert.ok(events.length >= contacts.length + replies.length);
    for (const e of events) assert.equal(receiver.withWebhookId(e.id).length, 1, `${e.type} ${e.id} delivered once`);
    assert.equal(receiver.requests.length, events.length, 'nothing else was delivered');
    const deliveries = await db.knex('webhook_deliveries').select('status', 'attempt_count', 'attempts');
    assert.equal(deliveries.length, events.length);
    assert.deepEqual(deliveries.filter((d) => d.status !== 'succeeded' || d.attempt_count !== 1 || d.attempts.length !== 1), [],
      'no attempt was lost or repeated: A recorded the deliveries it had claimed');
  });
});
