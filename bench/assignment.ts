/**
 * Assignment: `npm run bench:assignment`. The service runs as its own process (with its
 * assignment worker); load comes from this process.
 *  1. Throughput: BENCH_TICKETS unassigned tickets (default 6,000) in a team of 10 agents;
 *     10 connections POST /v1/tickets/{id}/assign {"strategy":"round_robin"}, each request a
 *     different ticket, for BENCH_SECONDS (default 10). Every pick of the team queues on the
 *     team's rotation row, so this is the rate of one serialised pick. Interleaved with pgbench
 *     running the statements of assign requests with as many connections (bench/limit.ts;
 *     BENCH_LIMIT_ROUNDS rounds). Then the rotation's exactness on its own: every ticket
 *     unassigned, 1,000 picks at 10 connections, and the spread of the agents' counts (0: 100
 *     each).
 *  2. Distribution latency: a team that auto-assigns round robin, 5 agents with room for one
 *     ticket each, all busy, and a queue of waiting tickets. BENCH_SAMPLES times (default 200):
 *     resolve one agent's ticket through the API (room appears) and time from the API's answer
 *     until the queue's head is assigned (polled every 2 ms).
 * BENCH_DATABASE_URL runs it on an existing PostgreSQL.
 */
import autocannon from 'autocannon';
import { loadConfig } from '../src/config.js';
import { createServices } from '../src/container.js';
import { SYSTEM } from '../src/kernel/actor.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { newId } from '../src/lib/ids.js';
import { startBenchEnv } from './harness.js';
import { limitTable, runLimit } from './limit.js';

const TICKETS = Number(process.env.BENCH_TICKETS ?? 6_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
/** pgbench scripts for the throughput's limit: one per ticket (at most 128). */
const SCRIPTS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main(): Promise<void> {
  const env = await startBenchEnv({ SCHEDULER_ENABLED: 'true' });
  const { knex, baseUrl } = env;
  try {
    const services = createServices({ config: loadConfig({ NODE_ENV: 'production' }), db: knex, logger: createLogger('silent'), clock: systemClock });
    const ws = await services.workspaces.create(knex, { name: 'bench', sandbox: false });
    const token = (await services.apiKeys.create(knex, { workspaceId: ws.id, name: 'bench', scopes: ['all'], rateLimitPerMinute: 10_000_000 })).token;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const { contact } = await services.contacts.upsert(knex, ws.id, { telegram_user_id: 4242, name: 'Bench customer' }, SYSTEM);

    async function team(name: string, autoAssign: string | null, agents: number, max: number | null): Promise<{ id: string; agentIds: string[] }> {
      const id = newId('team');
      const now = new Date();
      await knex('teams').insert({ id, workspace_id: ws.id, name, auto_assign: autoAssign, created_at: now, updated_at: now });
      const agentIds = [];
      for (let i = 0; i < agents; i++) {
        const a = newId('ag');
        await knex('agents').insert({ id: a, workspace_id: ws.id, name: `${name} agent ${i}`, max_open_tickets: max, created_at: now, updated_at: now });
        await knex('agent_teams').insert({ workspace_id: ws.id, team_id: id, agent_id: a });
        agentIds.push(a);
      }
      return { id, agentIds };
    }

    async function createTickets(n: number, teamId: string): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await fetch(`${baseUrl}/v1/tickets`, { method: 'POST', headers: auth, body: JSON.stringify({ contact_id: contact.id, subject: `Bench ${i}`, team_id: teamId }) });
        if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
        ids.push(((await res.json()) as { id: string }).id);
      }
      return ids;
    }

    // 1. Throughput of round-robin picks.
    const rr = await team('Round robin', null, 10, null);
    process.stderr.write(`creating ${TICKETS} tickets…\n`);
    const ids = await createTickets(TICKETS, rr.id);
    // Against its limit (bench/limit.ts): pgbench runs the statements of an assign request with
    // as many connections, interleaved with the service. One script per ticket of the first
    // SCRIPTS (pgbench picks one per transaction): every pick queues on the rotation row either way.
    let next = 0;
    const assign = JSON.stringify({ strategy: 'round_robin' });
    const result = await runLimit({ databaseUrl: env.databaseUrl, pid: env.pid, postmasterPid: env.postmasterPid, connections: 10, seconds: SECONDS }, {
      name: 'POST /v1/tickets/{id}/assign round_robin, one team of 10',
      load: {
        url: baseUrl,
        requests: [{ method: 'POST', headers: auth, setupRequest: (req) => ({ ...req, path: `/v1/tickets/${ids[next++ % ids.length]}/assign`, body: assign }) }],
      },
      samples: ids.slice(0, SCRIPTS).map((id) => () => ({ method: 'POST', path: `/v1/tickets/${id}/assign`, headers: auth, body: assign })),
      // The agent each pick chose (the next in the rotation) is replayed as it was chosen.
      keep: (value) => rr.agentIds.includes(value),
    });
    // Exactness on its own (pgbench's replays above pick fixed agents): every ticket unassigned,
    // then 1,000 picks at 10 connections, each a different ticket: 100 per agent.
    await knex('tickets').where({ team_id: rr.id }).update({ assignee_id: null });
    let k = 0;
    const picks = Math.min(1000, ids.length);
    await autocannon({
      url: baseUrl, connections: 10, amount: picks,
      requests: [{ method: 'POST', headers: auth, setupRequest: (req) => ({ ...req, path: `/v1/tickets/${ids[k++]}/assign`, body: assign }) }],
    });
    const counts = (await knex('tickets').select('assignee_id').count({ n: '*' }).where({ team_id: rr.id }).whereNotNull('assignee_id').groupBy('assignee_id')).map((r: any) => Number(r.n));
    const spread = counts.length === rr.agentIds.length ? Math.max(...counts) - Math.min(...counts) : `only ${counts.length} agents picked`;
    const throughput = { requests: result.requests, per_second: result.rps, p50_ms: result.p50, p99_ms: result.p99, non_2xx: result.non2xx, agents_spread: spread };
    process.stderr.write(`round robin: ${JSON.stringify(throughput)}\n`);

    // 2. Room appears → the queue's head is assigned.
    const auto = await team('Auto', 'round_robin', 5, 1);
    const waiting = await createTickets(5 + SAMPLES + 5, auto.id);
    // Let the worker hand out the first five (one per agent).
    for (let i = 0; i < 500; i++) {
      const [{ n }] = await knex('tickets').where({ team_id: auto.id }).whereNotNull('assignee_id').count({ n: '*' });
      if (Number(n) === 5) break;
      await sleep(20);
    }
    const latencies: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      const busy = await knex('tickets').select('id').where({ team_id: auto.id, status: 'open' }).whereNotNull('assignee_id').orderBy('created_at').first();
      const head = await knex('tickets').select('id').where({ team_id: auto.id, status: 'open' }).whereNull('assignee_id')
        .orderBy([{ column: 'queue_rank', order: 'asc', nulls: 'last' }, { column: 'priority_rank', order: 'desc' }, { column: 'created_at', order: 'asc' }, { column: 'id', order: 'asc' }]).first();
      const res = await fetch(`${baseUrl}/v1/tickets/${busy.id}/status`, { method: 'POST', headers: auth, body: JSON.stringify({ status: 'resolved' }) });
      if (res.status !== 200) throw new Error(`resolve: ${res.status} ${await res.text()}`);
      const t0 = performance.now();
      for (;;) {
        const row = await knex('tickets').select('assignee_id').where({ id: head.id }).first();
        if (row.assignee_id) break;
        if (performance.now() - t0 > 10_000) throw new Error('the queue head was not assigned within 10 s');
        await sleep(2);
      }
      latencies.push(performance.now() - t0);
    }
    latencies.sort((a, b) => a - b);
    const distribution = { samples: latencies.length, p50_ms: Math.round(pct(latencies, 50)), p99_ms: Math.round(pct(latencies, 99)), max_ms: Math.round(latencies[latencies.length - 1]) };
    process.stderr.write(`distribution: ${JSON.stringify(distribution)}\n`);
    console.log(JSON.stringify({ throughput, distribution, waiting: waiting.length }, null, 2));
    console.log(`\n${limitTable([result])}`);
  } finally {
    await env.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
