/**
 * The SLA sweep: `npm run bench:sla`. Does one tick's bookkeeping cost follow the tickets that
 * fall due, or all tickets?
 *  1. 100,000 open tickets with running SLA clocks, 1 % of them past their warning point:
 *     one sweep (records 1,000 warnings: marks, clock flags, the tickets' projection, one
 *     sla.warning event each with the ticket as payload, the webhook fan-out rows).
 *  2. 900,000 more (1,000,000 in all), 1 % of the new ones due (9,000) plus the first 1,000
 *     again (10,000): one sweep.
 * Reported per case: the tick's time, per due ticket, and the share spent waiting on
 * PostgreSQL (the time from each query's dispatch to its answer, summed): the rest is the
 * service's own work. The sweep runs in batches of 1,000 tickets, one transaction each. Then
 * each sweep against its limit: the due clocks and tickets are put back as they were and pgbench
 * replays the sweep's statements on them (bench/limit.ts `replayLimit`).
 * BENCH_TOTAL (default 1,000,000) and BENCH_DATABASE_URL change the set-up. Not a test.
 */
import { loadConfig } from '../src/config.js';
import { createServices } from '../src/container.js';
import { SYSTEM } from '../src/kernel/actor.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import type { Knex } from '../src/db/knex.js';
import { findPostmasterPid, keepRows, startBenchDatabase } from './harness.js';
import { captureStatements, replayLimit, replayTable, type ReplayResult, type Statement } from './limit.js';

const TOTAL = Number(process.env.BENCH_TOTAL ?? 1_000_000);
const FIRST = Math.round(TOTAL / 10);

/**
 * Open tickets numbered from..to-1 with clocks running: `dueEvery`-th ones past their warning
 * point at `now`, the rest due tomorrow. Loaded with triggers off (set-up, not measured).
 */
async function load(knex: Knex, ws: string, contact: string, from: number, to: number, now: Date, due: (n: number) => boolean): Promise<number> {
  const CHUNK = 100_000;
  let dueCount = 0;
  for (let start = from; start < to; start += CHUNK) {
    const end = Math.min(to, start + CHUNK);
    await knex.transaction(async (tx) => {
      await tx.raw('SET LOCAL session_replication_role = replica');
      await tx.raw(
        `INSERT INTO tickets (id, workspace_id, number, subject, contact_id, status, priority, sla_policy_id, first_response_due_at, resolution_due_at, sla_due_at, created_at, updated_at)
         SELECT 'tkt_bench' || lpad(n::text, 21, '0'), ?, n, 'Bench ' || n, ?, 'open', 'normal', 'sla_bench',
                ?::timestamptz + interval '10 minutes', ?::timestamptz + interval '1 day', ?::timestamptz + interval '10 minutes', ?::timestamptz, ?::timestamptz
           FROM generate_series(?::int, ?::int) n`,
        [ws, contact, now, now, now, now, now, start + 1, end],
      );
    });
    for (let n = start + 1; n <= end; n++) if (due(n)) dueCount++;
    await knex.raw(
      `INSERT INTO sla_clocks (ticket_id, workspace_id, policy_id, first_warn_at, first_due_at, res_running_since, res_warn_at, res_due_at, check_at)
       SELECT 'tkt_bench' || lpad(n::text, 21, '0'), ?, 'sla_bench', w.at, ?::timestamptz + interval '10 minutes',
              ?::timestamptz, ?::timestamptz + interval '20 hours', ?::timestamptz + interval '1 day', w.at
         FROM generate_series(?::int, ?::int) n,
              LATERAL (SELECT CASE WHEN n % 100 = 0 THEN ?::timestamptz - interval '1 minute' ELSE ?::timestamptz + interval '8 hours' END AS at) w`,
      [ws, now, now, now, now, start + 1, end, now, now],
    );
  }
  await knex.raw('ANALYZE tickets; ANALYZE sla_clocks');
  return dueCount;
}

/** The rows a sweep changes, kept as they are now, so pgbench can replay the sweep on the state it found. */
const keepSweptRows = (knex: Knex, now: Date) => keepRows(knex, [
  // The sweep's events, and the fan-out queue rows their trigger adds (no webhook worker runs here).
  { table: 'webhook_fanout_queue', scope: "event_id IN (SELECT id FROM events WHERE type LIKE 'sla.%')", how: 'replace' },
  { table: 'events', scope: "type LIKE 'sla.%'", how: 'replace' },
  { table: 'sla_marks', scope: 'true', how: 'replace' },
  { table: 'sla_clocks', scope: 'check_at <= ?', bindings: [now], how: 'update', key: 'ticket_id' },
  { table: 'tickets', scope: 'id IN (SELECT ticket_id FROM sla_clocks WHERE check_at <= ?)', bindings: [now], how: 'update' },
]);

async function timedSweep(knex: Knex, services: ReturnType<typeof createServices>, now: Date): Promise<{ ms: number; sqlMs: number; marks: number; statements: Statement[] }> {
  let sqlMs = 0;
  const started = new Map<string, number>();
  const byStatement = new Map<string, number>();
  const onQuery = (q: { __knexQueryUid: string }) => started.set(q.__knexQueryUid, performance.now());
  const onResponse = (_: unknown, q: { __knexQueryUid: string; sql: string }) => {
    const t = started.get(q.__knexQueryUid);
    if (t !== undefined) {
      sqlMs += performance.now() - t;
      const key = q.sql.replace(/\s+/g, ' ').slice(0, 70);
      byStatement.set(key, (byStatement.get(key) ?? 0) + performance.now() - t);
    }
    started.delete(q.__knexQueryUid);
  };
  knex.on('query', onQuery).on('query-response', onResponse);
  const t0 = performance.now();
  const { value: r, statements } = await captureStatements(() => services.sla.sweep(knex, now, { batchSize: 1000, maxBatches: 10_000 }));
  const ms = performance.now() - t0;
  if (process.env.BENCH_VERBOSE) for (const st of statements) process.stderr.write(`${st.text.replace(/\s+/g, ' ').slice(0, 100)}\n`);
  knex.removeListener('query', onQuery).removeListener('query-response', onResponse);
  if (process.env.BENCH_VERBOSE) for (const [k, v] of [...byStatement].sort((a, b) => b[1] - a[1])) process.stderr.write(`${Math.round(v)} ms  ${k}\n`);
  return { ms, sqlMs, marks: r.marks, statements };
}

async function main(): Promise<void> {
  const db = await startBenchDatabase();
  const { knex } = db;
  try {
    const services = createServices({ config: loadConfig({ NODE_ENV: 'production' }), db: knex, logger: createLogger('silent'), clock: systemClock });
    const ws = await services.workspaces.create(knex, { name: 'bench', sandbox: true });
    const { contact } = await services.contacts.upsert(knex, ws.id, { telegram_user_id: 4242, name: 'Bench customer' }, SYSTEM);
    const now = new Date();
    const rows: string[] = [];
    const replays: ReplayResult[] = [];
    const postmasterPid = await findPostmasterPid(knex);

    /** One measured sweep, then its limit: pgbench replaying its statements on the state it found. */
    const measure = async (total: number, due: number) => {
      const before = await keepSweptRows(knex, now);
      const r = await timedSweep(knex, services, now);
      report(total, due, r);
      await before.restore();
      replays.push(await replayLimit(
        { databaseUrl: db.databaseUrl, postmasterPid, seconds: Number(process.env.BENCH_SECONDS ?? 10) },
        { name: `sweep, ${total.toLocaleString('en')} open, ${due.toLocaleString('en')} due (items: marks recorded)`, items: r.marks, statements: r.statements, writes: true, serviceItemsPerSecond: Math.round(r.marks / (r.ms / 1000)) },
      ));
    };

    const report = (total: number, due: number, r: { ms: number; sqlMs: number; marks: number }) => {
      const line = `| ${total.toLocaleString('en')} | ${due.toLocaleString('en')} | ${r.marks.toLocaleString('en')} | ${Math.round(r.ms)} | ${(r.ms / Math.max(1, r.marks) * 1000).toFixed(0)} | ${Math.round(r.sqlMs)} (${Math.round((100 * r.sqlMs) / r.ms)} %) |`;
      rows.push(line);
      process.stderr.write(`${line}\n`);
    };

    let t0 = performance.now();
    const due1 = await load(knex, ws.id, contact.id, 0, FIRST, now, (n) => n % 100 === 0);
    process.stderr.write(`loaded ${FIRST} tickets in ${Math.round((performance.now() - t0) / 1000)} s\n`);
    await measure(FIRST, due1);

    t0 = performance.now();
    const due2 = await load(knex, ws.id, contact.id, FIRST, TOTAL, now, (n) => n % 100 === 0);
    process.stderr.write(`loaded ${TOTAL - FIRST} more in ${Math.round((performance.now() - t0) / 1000)} s\n`);
    // 1 % of all tickets due in this tick: the new ones' 1 % plus the first sweep's, due again (restored).
    const [{ n: dueNow }] = (await knex.raw('SELECT count(*)::int AS n FROM sla_clocks WHERE check_at <= ?', [now])).rows;
    if (dueNow !== due1 + due2) throw new Error(`expected ${due1 + due2} due clocks, found ${dueNow}`);
    await measure(TOTAL, dueNow);

    process.stdout.write(`\n| open tickets | due this tick | marks recorded | tick ms | µs per due ticket | waiting on PostgreSQL ms |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n\nAgainst the limit:\n\n${replayTable(replays)}\n`);
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
