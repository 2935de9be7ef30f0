/**
 * Webhook delivery: `npm run bench:webhooks`. The service runs as its own process with its
 * webhook worker; a local receiver (in this process) answers 200 at once.
 *  1. Throughput: BENCH_EVENTS events (default 10,000) committed at once for one endpoint;
 *     deliveries/s = events / (last receipt − commit). Then the same with 4 endpoints.
 *  2. Latency: tickets created through the API at BENCH_RATE per second (default 50) for
 *     BENCH_SECONDS (default 15); each ticket.created is timed from the API's answer to its
 *     arrival at the receiver.
 *  3. Against the limit: the service stopped, one pass of the webhook worker (fan-out and
 *     delivery of BENCH_REPLAY_EVENTS events, default 1,000, to one endpoint) runs in this
 *     process and its statements are captured; the rows it changed are put back and pgbench
 *     replays the statements (bench/limit.ts `replayLimit`, BENCH_REPLAY_SECONDS per mode),
 *     next to the service's deliveries/s to one endpoint from 1.
 * BENCH_DATABASE_URL runs it on an existing PostgreSQL.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config.js';
import { createServices } from '../src/container.js';
import { newId } from '../src/lib/ids.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { createKnex } from '../src/db/knex.js';
import { createWebhookWorker } from '../src/webhooks/webhook-worker.js';
import { keepRows, startBenchEnv } from './harness.js';
import { captureStatements, replayLimit, replayTable } from './limit.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const REPLAY_EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 1_000);
const REPLAY_SECONDS = Number(process.env.BENCH_REPLAY_SECONDS ?? 10);

/** A receiver that answers 200 and notes when each delivery (by webhook-id and ticket id) arrived. */
async function startReceiver() {
  const arrivals = new Map<string, number>();
  const ticketArrivals = new Map<string, number>();
  let count = 0;
  let waiter: { n: number; resolve: () => void } | null = null;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      res.end('ok');
      count++;
      arrivals.set(String(req.headers['webhook-id']), at);
      if (req.headers['x-topicdesk-event'] === 'ticket.created') {
        ticketArrivals.set(JSON.parse(Buffer.concat(chunks).toString('utf8')).data.id, at);
      }
      if (waiter && count >= waiter.n) { waiter.resolve(); waiter = null; }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    get count() { return count; },
    arrivals,
    ticketArrivals,
    reset() { count = 0; arrivals.clear(); ticketArrivals.clear(); },
    waitFor(n: number) {
      return count >= n ? Promise.resolve() : new Promise<void>((resolve) => { waiter = { n, resolve }; });
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

const env = await startBenchEnv({ SCHEDULER_ENABLED: 'true', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' });
const receiver = await startReceiver();
try {
  const { knex } = env;
  const config = loadConfig({ NODE_ENV: 'production', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' });
  const services = createServices({ config, db: knex, logger: createLogger('silent'), clock: systemClock });
  const rows: string[] = [];

  // A realistic payload: a ticket as the API shows it (about 1 KB of JSON).
  const ws = await services.workspaces.create(knex, { name: 'Bench webhooks', sandbox: false });
  const key = (await services.apiKeys.create(knex, { workspaceId: ws.id, name: 'bench', scopes: ['all'], rateLimitPerMinute: 10_000_000 })).token;
  const post = (path: string, body: unknown) => fetch(env.baseUrl + path, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const first = await post('/v1/tickets', { contact: { email: 'bench@example.com', name: 'Bench Customer' }, subject: 'Payload sample', description: 'x'.repeat(300) });
  const payload = JSON.stringify(await first.json());

  async function throughput(endpoints: number): Promise<number> {
    const ids: string[] = [];
    for (let i = 0; i < endpoints; i++) {
      const r = await post('/v1/webhooks', { url: receiver.url(`/t${endpoints}/${i}`), events: ['ticket.updated'] });
      ids.push((await r.json()).id);
    }
    receiver.reset();
    const total = EVENTS * endpoints;
    const now = new Date();
    const started = performance.now();
    await knex.raw(`
      INSERT INTO events (id, workspace_id, type, actor_type, payload, created_at)
      SELECT unnest(?::text[]), ?, 'ticket.updated', 'system', ?::jsonb, ?`,
    [Array.from({ length: EVENTS }, () => newId('evt')), ws.id, payload, now]);
    await receiver.waitFor(total);
    const seconds = (performance.now() - started) / 1000;
    const rate = Math.round(total / seconds);
    process.stderr.write(`throughput, ${endpoints} endpoint(s): ${total} deliveries in ${seconds.toFixed(1)} s = ${rate}/s\n`);
    rows.push(`| ${EVENTS} events × ${endpoints} endpoint(s), committed at once | ${total} | ${seconds.toFixed(1)} | **${rate}** | | |`);
    for (const id of ids) await fetch(`${env.baseUrl}/v1/webhooks/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
    return rate;
  }

  const oneEndpointRate = await throughput(1);
  await throughput(4);

  // Latency: ticket.created, from the API's 201 to the receiver.
  await post('/v1/webhooks', { url: receiver.url('/latency'), events: ['ticket.created'] });
  receiver.reset();
  const answered = new Map<string, number>();
  const interval = 1000 / RATE;
  const startedAt = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < RATE * SECONDS; i++) {
    const due = startedAt + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(post('/v1/tickets', { contact: { email: `c${i % 500}@example.com` }, subject: `Latency ${i}` })
      .then(async (r) => { const t = performance.now(); answered.set((await r.json()).id, t); }));
  }
  await Promise.all(pending);
  const deadline = performance.now() + 30_000;
  while (receiver.ticketArrivals.size < answered.size && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const latencies = [...answered].map(([id, t]) => (receiver.ticketArrivals.get(id) ?? Infinity) - t).sort((a, b) => a - b);
  const missing = latencies.filter((l) => l === Infinity).length;
  const p50 = Math.round(quantile(latencies, 0.5));
  const p99 = Math.round(quantile(latencies, 0.99));
  process.stderr.write(`latency at ${RATE} tickets/s: p50 ${p50} ms, p99 ${p99} ms, missing ${missing}\n`);
  rows.push(`| ticket.created at ${RATE}/s for ${SECONDS} s (API answer → receiver) | ${answered.size} | | | ${p50} | ${p99} |`);

  // 3. Against the limit: one pass of the worker in this process, the service stopped.
  const replayEndpoint = (await (await post('/v1/webhooks', { url: receiver.url('/replay'), events: ['ticket.updated'] })).json()).id as string;
  await env.stopService();
  await knex.raw(`
    INSERT INTO events (id, workspace_id, type, actor_type, payload, created_at)
    SELECT unnest(?::text[]), ?, 'ticket.updated', 'system', ?::jsonb, ?`,
  [Array.from({ length: REPLAY_EVENTS }, () => newId('evt')), ws.id, payload, new Date()]);
  const kept = await keepRows(knex, [
    { table: 'webhook_deliveries', scope: 'endpoint_id = ?', bindings: [replayEndpoint], how: 'replace' },
    { table: 'webhook_fanout_queue', scope: 'true', how: 'replace' },
    { table: 'webhook_endpoints', scope: 'id = ?', bindings: [replayEndpoint], how: 'update' },
  ]);
  // On one connection, so the statements are captured in the order PostgreSQL ran them and a
  // replay on one connection meets the rows as the pass did (with ten, claims running side by
  // side skip each other's locked rows, which one connection never sees). The work per delivery
  // (claims as large as the worker's free slots, the recording) is the service's; the rate to
  // compare with is the service's own, measured above.
  const workerDb = createKnex(env.databaseUrl, 1);
  const worker = createWebhookWorker({ db: workerDb, logger: createLogger('silent'), clock: systemClock, config: config.webhooks, webhooks: services.webhooks });
  receiver.reset();
  const t0 = performance.now();
  const pass = await captureStatements(() => worker.drain());
  const passSeconds = (performance.now() - t0) / 1000;
  await worker.stop();
  await workerDb.destroy();
  if (receiver.count !== REPLAY_EVENTS) throw new Error(`the pass delivered ${receiver.count} of ${REPLAY_EVENTS}`);
  process.stderr.write(`one worker pass in this process: ${REPLAY_EVENTS} deliveries in ${passSeconds.toFixed(2)} s\n`);
  await kept.restore();
  const replay = await replayLimit(
    { databaseUrl: env.databaseUrl, postmasterPid: env.postmasterPid, seconds: REPLAY_SECONDS },
    { name: `worker pass: fan-out + delivery of ${REPLAY_EVENTS} events to one endpoint (items: deliveries; service: the 1-endpoint throughput above)`, items: REPLAY_EVENTS, statements: pass.statements, writes: true, serviceItemsPerSecond: oneEndpointRate },
  );

  console.log('| scenario | deliveries | seconds | deliveries/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
  console.log(`\nAgainst the limit (the statements of one worker pass, captured in the benchmark process):\n\n${replayTable([replay])}`);
} finally {
  await receiver.close();
  await env.close();
}
