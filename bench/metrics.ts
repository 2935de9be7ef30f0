/**
 * The metrics API's reads: `npm run bench:metrics`. 1,000,000 tickets created over a year (one
 * every ~32 s), 20 agents in 4 teams, ~95 % answered, resolved unless recent, ~1 % of older ones
 * still open, 30 % rated; their facts (ticket_metrics) as the sla port writes them. Timed (the
 * service, in-process; median of BENCH_RUNS runs after a warm-up):
 *  - first-response?group_by=day over the last 30 days;
 *  - backlog (now);
 *  - agents over the last 7 days.
 * Prints a table and EXPLAIN (ANALYZE, BUFFERS) of the slowest one's slowest statement, and each
 * call against its limit: pgbench replaying the statements the call sent (bench/limit.ts).
 * BENCH_TOTAL (default 1,000,000), BENCH_RUNS (default 7) and BENCH_DATABASE_URL change the
 * set-up. Loaded with triggers off (set-up, not measured). Not a test.
 */
import { loadConfig } from '../src/config.js';
import { createServices } from '../src/container.js';
import { SYSTEM } from '../src/kernel/actor.js';
import { createLogger } from '../src/lib/logger.js';
import type { Knex } from '../src/db/knex.js';
import { findPostmasterPid, startBenchDatabase } from './harness.js';
import { captureStatements, replayLimit, replayTable, type ReplayResult } from './limit.js';

const TOTAL = Number(process.env.BENCH_TOTAL ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const DAY = 86_400_000;

async function load(knex: Knex, ws: string, contact: string, agents: string[], teams: string[], now: Date): Promise<void> {
  const CHUNK = 200_000;
  const start = new Date(now.getTime() - 365 * DAY);
  const step = (365 * DAY) / TOTAL / 1000; // seconds between tickets
  for (let from = 0; from < TOTAL; from += CHUNK) {
    const to = Math.min(TOTAL, from + CHUNK);
    await knex.transaction(async (tx) => {
      await tx.raw('SET LOCAL session_replication_role = replica');
      // Recent (< 3 days) tickets and 1 % of older ones are still open; the rest resolved or closed.
      await tx.raw(
        `INSERT INTO tickets (id, workspace_id, number, subject, contact_id, status, priority, assignee_id, team_id,
                              first_response_at, resolved_at, closed_at, csat_rating, csat_at, first_response_due_at, resolution_due_at, created_at, updated_at)
         SELECT 'tkt_bench' || lpad(n::text, 21, '0'), :ws, n, 'Bench ' || n, :contact,
                CASE WHEN open THEN (ARRAY['open', 'in_progress', 'waiting_on_customer'])[1 + n % 3] WHEN n % 2 = 0 THEN 'closed' ELSE 'resolved' END,
                (ARRAY['low', 'normal', 'normal', 'high', 'urgent'])[1 + n % 5],
                CASE WHEN n % 10 = 0 THEN NULL ELSE (CAST(:agents AS text[]))[1 + n % ${agents.length}] END,
                CASE WHEN n % 5 = 0 THEN NULL ELSE (CAST(:teams AS text[]))[1 + n % ${teams.length}] END,
                CASE WHEN answered THEN c + fr END, CASE WHEN NOT open THEN c + res END, CASE WHEN NOT open AND n % 2 = 0 THEN c + res + interval '1 day' END,
                CASE WHEN NOT open AND n % 10 < 3 THEN 1 + n % 5 END, CASE WHEN NOT open AND n % 10 < 3 THEN c + res + interval '1 hour' END,
                c + interval '1 hour', c + interval '1 day', c, c
           FROM (SELECT n, c, fr, res, n % 20 <> 0 AS answered,
                        (c > CAST(:now AS timestamptz) - interval '3 days' OR n % 100 = 0) AS open
                   FROM (SELECT n, CAST(:start AS timestamptz) + make_interval(secs => n * CAST(:step AS float8)) AS c,
                                make_interval(secs => 30 + (n * 37) % 7200) AS fr, make_interval(secs => 3600 + (n * 101) % 172800) AS res
                           FROM generate_series(CAST(:from AS int), CAST(:to AS int)) n) x) y`,
        { ws, contact, agents: `{${agents.join(',')}}`, teams: `{${teams.join(',')}}`, now, start, step, from: from + 1, to },
      );
    });
  }
  // The facts, as the sla port records them (business = wall: the bench has no calendar).
  await knex.raw(
    `INSERT INTO ticket_metrics (ticket_id, workspace_id, created_at, first_response_at, first_response_s, first_response_business_s, first_responder_id,
                                 first_response_team_id, first_response_priority, resolved_at, resolution_s, resolution_business_s, resolver_id, resolution_team_id, resolution_priority)
     SELECT id, workspace_id, created_at, first_response_at, extract(epoch FROM first_response_at - created_at), extract(epoch FROM first_response_at - created_at),
            CASE WHEN first_response_at IS NOT NULL THEN assignee_id END, CASE WHEN first_response_at IS NOT NULL THEN team_id END, CASE WHEN first_response_at IS NOT NULL THEN priority END,
            resolved_at, extract(epoch FROM resolved_at - created_at), extract(epoch FROM resolved_at - created_at),
            CASE WHEN resolved_at IS NOT NULL THEN assignee_id END, CASE WHEN resolved_at IS NOT NULL THEN team_id END, CASE WHEN resolved_at IS NOT NULL THEN priority END
       FROM tickets WHERE workspace_id = ? AND (first_response_at IS NOT NULL OR resolved_at IS NOT NULL)`,
    [ws],
  );
  await knex.raw('VACUUM ANALYZE tickets');
  await knex.raw('VACUUM ANALYZE ticket_metrics');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const db = await startBenchDatabase();
  const { knex } = db;
  try {
    const now = new Date();
    const clock = { now: () => now };
    const services = createServices({ config: loadConfig({ NODE_ENV: 'production' }), db: knex, logger: createLogger('silent'), clock });
    const ws = await services.workspaces.create(knex, { name: 'bench', sandbox: true });
    await services.workspaces.update(knex, ws.id, { timezone: 'Europe/Berlin' });
    const { contact } = await services.contacts.upsert(knex, ws.id, { telegram_user_id: 4242, name: 'Bench customer' }, SYSTEM);
    const teams: string[] = [];
    for (let i = 0; i < 4; i++) teams.push((await services.agents.createTeam(knex, ws.id, { name: `Team ${i}` } as never)).id);
    const agents: string[] = [];
    for (let i = 0; i < 20; i++) agents.push((await services.agents.create(knex, ws.id, { name: `Agent ${i}`, username: `agent_${i}`, team_ids: [teams[i % 4]] } as never)).id);

    const t0 = performance.now();
    await load(knex, ws.id, contact.id, agents, teams, now);
    process.stderr.write(`loaded ${TOTAL.toLocaleString('en')} tickets and their facts in ${Math.round((performance.now() - t0) / 1000)} s\n`);

    const iso = (ms: number) => new Date(now.getTime() - ms).toISOString();
    const cases: [string, () => Promise<unknown>][] = [
      ['first-response?group_by=day, 30 days', () => services.metrics.durations(knex, ws.id, 'first_response', { from: iso(30 * DAY), to: now.toISOString(), group_by: 'day' })],
      ['backlog', () => services.metrics.backlog(knex, ws.id, {})],
      ['agents, 7 days', () => services.metrics.agents(knex, ws.id, { from: iso(7 * DAY), to: now.toISOString() })],
    ];
    const results: { name: string; ms: number; min: number; max: number; statements: Map<string, { ms: number; bindings: unknown[] }> }[] = [];
    const replays: ReplayResult[] = [];
    const postmasterPid = await findPostmasterPid(knex);
    for (const [name, fn] of cases) {
      await fn(); // warm-up
      const times: number[] = [];
      const statements = new Map<string, { ms: number; bindings: unknown[] }>();
      const started = new Map<string, number>();
      const onQuery = (q: { __knexQueryUid: string }) => started.set(q.__knexQueryUid, performance.now());
      const onResponse = (_: unknown, q: { __knexQueryUid: string; sql: string; bindings: unknown[] }) => {
        const t = started.get(q.__knexQueryUid);
        if (t !== undefined) {
          const prev = statements.get(q.sql);
          statements.set(q.sql, { ms: Math.max(prev?.ms ?? 0, performance.now() - t), bindings: q.bindings });
        }
      };
      knex.on('query', onQuery).on('query-response', onResponse);
      for (let i = 0; i < RUNS; i++) {
        const s = performance.now();
        await fn();
        times.push(performance.now() - s);
      }
      knex.removeListener('query', onQuery).removeListener('query-response', onResponse);
      results.push({ name, ms: median(times), min: Math.min(...times), max: Math.max(...times), statements });
      process.stderr.write(`${name}: median ${median(times).toFixed(1)} ms\n`);
      // Its limit: the statements of one call, replayed by pgbench on one connection (reads only).
      const captured = await captureStatements(fn);
      replays.push(await replayLimit(
        { databaseUrl: db.databaseUrl, postmasterPid, seconds: Number(process.env.BENCH_SECONDS ?? 10) },
        { name, items: 1, statements: captured.statements, writes: false, serviceItemsPerSecond: Math.round((1000 / median(times)) * 10) / 10 },
      ));
    }
    process.stdout.write(`\n${TOTAL.toLocaleString('en')} tickets, ${RUNS} runs each\n\n| call | median ms | min ms | max ms |\n|---|---|---|---|\n`);
    for (const r of results) process.stdout.write(`| ${r.name} | ${r.ms.toFixed(1)} | ${r.min.toFixed(1)} | ${r.max.toFixed(1)} |\n`);
    const slowest = [...results].sort((a, b) => b.ms - a.ms)[0];
    const [sql, st] = [...slowest.statements].sort((a, b) => b[1].ms - a[1].ms)[0];
    const plan = (await knex.raw(`EXPLAIN (ANALYZE, BUFFERS) ${sql.replace(/\$\d+/g, '?')}`, st.bindings as never)).rows.map((r: any) => r['QUERY PLAN']).join('\n');
    process.stdout.write(`\nEXPLAIN (ANALYZE, BUFFERS) of the slowest call's slowest statement (${slowest.name}):\n\n${plan}\n`);
    process.stdout.write(`\nAgainst the limit (calls, one at a time):\n\n${replayTable(replays)}\n`);
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
