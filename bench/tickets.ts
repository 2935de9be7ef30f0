/**
 * Ticket hot paths at scale: `npm run bench:tickets`.
 * Seeds 1,000,000 tickets (and 100,000 contacts) across 10 workspaces with SQL, then drives
 * the service (its own process) with autocannon at 10 connections:
 *  - POST /v1/tickets with an Idempotency-Key (a fresh key per request: full claim + create + store),
 *  - GET /v1/tickets?status=open&limit=50: the first page, a deep page by cursor, and by offset.
 * BENCH_TICKETS, BENCH_SECONDS, BENCH_CONNECTIONS and BENCH_DATABASE_URL adjust it; BENCH_ONLY=creates
 * or BENCH_ONLY=lists runs one half (an A/B of a change to one path need not wait for the other).
 * The creates and the first and deep cursor pages run against their limit (bench/limit.ts):
 * pgbench running the statements those requests send, interleaved with them, and the ratios.
 */
import { createServices } from '../src/container.js';
import { loadConfig } from '../src/config.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { run, startBenchEnv, table, type BenchResult } from './harness.js';
import { limitTable, runLimit, type LimitResult, type SampleRequest } from './limit.js';

const TICKETS = Number(process.env.BENCH_TICKETS ?? 1_000_000);
const WORKSPACES = 10;
const CONTACTS_PER_WORKSPACE = Math.max(10, Math.round(TICKETS / WORKSPACES / 10));
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const ONLY = process.env.BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'creates' && ONLY !== 'lists') throw new Error(`BENCH_ONLY is "creates" or "lists", not "${ONLY}"`);

const env = await startBenchEnv();
try {
  const { knex } = env;
  const services = createServices({ config: loadConfig({ NODE_ENV: 'production' }), db: knex, logger: createLogger('silent'), clock: systemClock });
  const started = Date.now();
  const perWorkspace = Math.floor(TICKETS / WORKSPACES);
  const workspaces: string[] = [];
  for (let w = 0; w < WORKSPACES; w++) {
    workspaces.push((await services.workspaces.create(knex, { name: `Bench ${w}`, sandbox: false })).id);
  }
  process.stderr.write(`seeding ${perWorkspace * WORKSPACES} tickets and ${CONTACTS_PER_WORKSPACE * WORKSPACES} contacts…\n`);
  for (const [w, ws] of workspaces.entries()) {
    // Ids in the public format (prefix + 26 Crockford characters; hex digits are a subset).
    await knex.raw(
      `INSERT INTO contacts (id, workspace_id, telegram_user_id, username, name, tags, created_at, updated_at)
       SELECT 'ct_' || lpad(upper(to_hex(:w::bigint * 100000000 + g)), 26, '0'), :ws, :w::bigint * 100000000 + g,
              'user_' || :w || '_' || g, 'Customer ' || g, CASE WHEN g % 10 = 0 THEN ARRAY['vip'] ELSE '{}' END,
              now() - make_interval(days => 400), now() - make_interval(days => 400)
         FROM generate_series(1, :n::int) g`,
      { w, ws, n: CONTACTS_PER_WORKSPACE },
    );
    // A realistic mix: most tickets are long closed; 10 % open, 5 % each other status.
    // Row triggers off for the bulk load (the bench connects as a superuser); counts are rebuilt after.
    await knex.transaction(async (trx) => {
      await trx.raw(`SET LOCAL session_replication_role = replica`);
      await trx.raw(
      `INSERT INTO tickets (id, workspace_id, number, subject, description, status, priority, tags, contact_id,
                            created_at, updated_at, resolved_at, closed_at)
       SELECT 'tkt_' || lpad(upper(to_hex(:w::bigint * 100000000 + g)), 26, '0'), :ws, g,
              (ARRAY['Cannot log in', 'Refund for order', 'App crashes on start', 'Change my email', 'Invoice question'])[1 + g % 5] || ' ' || g,
              'Customer wrote about problem number ' || g,
              s.status,
              (ARRAY['low', 'normal', 'normal', 'high', 'urgent'])[1 + g % 5],
              CASE WHEN g % 7 = 0 THEN ARRAY['billing'] ELSE '{}' END,
              'ct_' || lpad(upper(to_hex(:w::bigint * 100000000 + 1 + g % :contacts)), 26, '0'),
              c.created_at, c.created_at,
              CASE WHEN s.status IN ('resolved', 'closed') THEN c.created_at + interval '1 day' END,
              CASE WHEN s.status = 'closed' THEN c.created_at + interval '4 days' END
         FROM generate_series(1, :n::int) g
         CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (:n::int - g) * 30) AS created_at) c
         CROSS JOIN LATERAL (SELECT CASE WHEN g % 20 < 15 THEN 'closed' WHEN g % 20 = 15 THEN 'resolved'
                                         WHEN g % 20 = 16 THEN 'in_progress' WHEN g % 20 = 17 THEN 'waiting_on_customer'
                                         ELSE 'open' END AS status) s`,
      { w, ws, n: perWorkspace, contacts: CONTACTS_PER_WORKSPACE },
    );
    });
    await knex('ticket_numbers').insert({ workspace_id: ws, last_number: perWorkspace });
    await knex.raw('SELECT ticket_counts_rebuild(?)', [ws]);
    process.stderr.write(`  workspace ${w + 1}/${WORKSPACES} seeded\n`);
  }
  // What autovacuum would do soon after a bulk load: statistics and the visibility map
  // (index-only counts need it).
  await knex.raw('VACUUM ANALYZE tickets');
  await knex.raw('VACUUM ANALYZE contacts');
  process.stderr.write(`seeded in ${Math.round((Date.now() - started) / 1000)} s\n`);

  const keys = await Promise.all(workspaces.map(async (id) => (await services.apiKeys.create(knex, { workspaceId: id, name: 'bench', scopes: ['all'], rateLimitPerMinute: 10_000_000 })).token));
  const headers = { authorization: `Bearer ${keys[0]}` };
  const common = { connections: CONNECTIONS, duration: DURATION, pid: env.pid, postmasterPid: env.postmasterPid };
  const ctx = { databaseUrl: env.databaseUrl, pid: env.pid, postmasterPid: env.postmasterPid, connections: CONNECTIONS, seconds: DURATION };
  const limits: LimitResult[] = [];
  const limit = async (r: LimitResult) => { limits.push(r); results.push(r); };
  const url = (p: string) => env.baseUrl + p;
  const results: BenchResult[] = [];
  const contactOf = (w: number, i: number) => `ct_${(w * 100000000 + 1 + (i % CONTACTS_PER_WORKSPACE)).toString(16).toUpperCase().padStart(26, '0')}`;

  const createBody = (w: number, n: number) => JSON.stringify({ contact_id: contactOf(w, n), subject: `Bench ticket ${n}`, description: 'Created by the benchmark', priority: 'high', tags: ['bench'] });
  /** POST /v1/tickets with a fresh Idempotency-Key each time, in workspace `pick(n)`. */
  const createTickets = (pick: (n: number) => number) => {
    let n = 0;
    return {
      url: url('/v1/tickets'),
      requests: [{
        method: 'POST' as const,
        setupRequest: (req: any) => {
          const w = pick(++n);
          return {
            ...req,
            headers: { authorization: `Bearer ${keys[w]}`, 'content-type': 'application/json', 'idempotency-key': `bench-${process.pid}-${n}` },
            body: createBody(w, n),
          };
        },
      }],
    };
  };
  // pgbench's side: the statements of one create in workspace w (two captures differing only in their key).
  let sampled = 0;
  const createSample = (w: number) => (): SampleRequest => ({
    method: 'POST',
    path: '/v1/tickets',
    headers: { authorization: `Bearer ${keys[w]}`, 'content-type': 'application/json', 'idempotency-key': `limit-${process.pid}-${++sampled}` },
    body: createBody(w, 0),
  });
  if (ONLY !== 'lists') {
    await limit(await runLimit(ctx, { name: 'POST /v1/tickets + Idempotency-Key, one workspace', load: createTickets(() => 0), samples: [createSample(0)] }));
    await limit(await runLimit(ctx, {
      name: 'POST /v1/tickets + Idempotency-Key, spread over 10 workspaces',
      load: createTickets((n) => n % WORKSPACES),
      samples: workspaces.map((_, w) => createSample(w)),
    }));
  }

  let deepTotal = 0;
  if (ONLY !== 'creates') {
    const firstPage = '/v1/tickets?status=open&limit=50';
    await limit(await runLimit(ctx, { name: 'GET /v1/tickets?status=open&limit=50 (first page)', load: { url: url(firstPage), headers }, samples: [() => ({ path: firstPage, headers })] }));
    // Row 5,050 (page 101) when there are that many open tickets (1 M seeded: ~12,800); the last full page otherwise.
    const { total } = await (await fetch(url(firstPage), { headers })).json() as { total: number };
    const deepOffset = Math.max(0, Math.min(5000, Math.floor((total - 51) / 50) * 50));
    const deep = await (await fetch(url(`${firstPage}&offset=${deepOffset}`), { headers })).json() as { next_cursor: string; total: number };
    const deepPage = `${firstPage}&cursor=${deep.next_cursor}`;
    const deepRow = (deepOffset + 50).toLocaleString('en');
    await limit(await runLimit(ctx, { name: `GET … status=open deep page by cursor (row ${deepRow} of ${deep.total})`, load: { url: url(deepPage), headers }, samples: [() => ({ path: deepPage, headers })] }));
    results.push(await run(`GET … status=open deep page by offset=${deepOffset}`, { ...common, url: url(`${firstPage}&offset=${deepOffset}`), headers }));
    deepTotal = deep.total;
  }
  process.stdout.write(`\n${TICKETS.toLocaleString('en')} tickets in ${WORKSPACES} workspaces; requests go to one workspace (${perWorkspace.toLocaleString('en')} tickets, ${deepTotal.toLocaleString('en')} open).\n\n${table(results)}\n\n${limitTable(limits)}\n`);
} finally {
  await env.close();
}
