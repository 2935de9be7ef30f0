/**
 * Shared benchmark plumbing: a PostgreSQL (embedded in a temp dir, or BENCH_DATABASE_URL),
 * the real service started as its own process (so the load generator does not share its
 * event loop), and autocannon runs summarised as p50/p99/req/s.
 */
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { createKnex, type Knex } from '../src/db/knex.js';
import { migrateLatest } from '../src/db/migrate.js';
import { npmStartArgs } from '../test/helpers/main-process.js';
import { freePort } from '../test/helpers/process.js';

export { freePort };

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');


export interface BenchEnv {
  knex: Knex;
  databaseUrl: string;
  baseUrl: string;
  /** The service process's pid (its RSS and CPU are reported with each run). */
  pid: number;
  /** PostgreSQL's postmaster, when it runs on this machine (its CPU is reported too). */
  postmasterPid: number | null;
  /** Stops the service process and leaves the database up (for work this process then does itself). */
  stopService(): Promise<void>;
  close(): Promise<void>;
}

/** A migrated database: embedded in a temp dir, or BENCH_DATABASE_URL. */
export async function startBenchDatabase(): Promise<{ knex: Knex; databaseUrl: string; close(): Promise<void> }> {
  let databaseUrl = process.env.BENCH_DATABASE_URL;
  let stopPg = async () => {};
  let dir: string | null = null;
  if (!databaseUrl) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-bench-'));
    chmodSync(dir, 0o755);
    // Durable settings, as in production: fsync and synchronous_commit stay on.
    const pg = await startEmbeddedPostgres({ dir, port: await freePort() });
    databaseUrl = pg.url;
    stopPg = () => pg.stop();
  }
  // Seeding a million rows is one long statement: no per-statement bounds for the harness itself.
  const knex = createKnex(databaseUrl, 4, undefined, { statementTimeoutMs: 0, queryTimeoutMs: 0, idleInTransactionTimeoutMs: 0 });
  await migrateLatest(knex);
  return {
    knex,
    databaseUrl,
    async close() {
      await knex.destroy();
      await stopPg();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A migrated database and the service listening on it (`serviceEnv` adds to or overrides its environment). */
export async function startBenchEnv(serviceEnv: Record<string, string> = {}): Promise<BenchEnv> {
  const database = await startBenchDatabase();
  const { knex, databaseUrl } = database;
  const port = await freePort();
  const devNull = openSync('/dev/null', 'w');
  // As `npm start` runs it: compiled to dist/ (built now), with its node flags; BENCH_SERVICE_NODE_ARGS
  // adds flags of its own (say `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const server: ChildProcess = spawn(process.execPath, [...(process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean), ...npmStartArgs()], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', SCHEDULER_ENABLED: 'false', ...serviceEnv },
    stdio: ['ignore', devNull, 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const exited = new Promise((r) => server.once('exit', r));
  const stopService = async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${baseUrl}/readyz`)).ok) break;
    } catch { /* not up yet */ }
    if (server.exitCode !== null || Date.now() > deadline) throw new Error('the service did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    knex,
    databaseUrl,
    baseUrl,
    pid: server.pid!,
    postmasterPid: await findPostmasterPid(knex),
    stopService,
    async close() {
      await stopService();
      await database.close();
    },
  };
}

/** Rows of one table a benchmark keeps and puts back: `scope` (SQL) says which. */
export interface KeptRows {
  table: string;
  scope: string;
  bindings?: readonly unknown[];
  /**
   * `replace`: rows in scope are deleted and the kept ones inserted again (queues, outboxes: rows
   * come and go). `update`: the kept rows' columns are written back by `key` (rows others point to).
   */
  how: 'replace' | 'update';
  key?: string;
}

/**
 * Keeps the rows in scope of each table (in order; put back in reverse order, so a table that
 * points to another comes first in `parts` and is emptied first) — so that a pass of work can be
 * replayed on the state it found (bench/limit.ts `replayLimit`).
 */
export async function keepRows(knex: Knex, parts: KeptRows[]): Promise<{ restore(): Promise<void> }> {
  const kept = parts.map((p, i) => ({ ...p, copy: `bench_kept_${i}` }));
  for (const k of kept) {
    await knex.raw(`DROP TABLE IF EXISTS ${k.copy}`);
    await knex.raw(`CREATE TABLE ${k.copy} AS SELECT * FROM ${k.table} WHERE ${k.scope}`, (k.bindings ?? []) as never);
  }
  const columns = async (table: string) => (await knex('information_schema.columns').select('column_name')
    .where({ table_name: table, table_schema: 'public', is_generated: 'NEVER' }).orderBy('ordinal_position')).map((r: { column_name: string }) => `"${r.column_name}"`);
  return {
    /** In one transaction, with triggers off (putting rows back must not queue work of its own). */
    async restore() {
      await knex.transaction(async (tx) => {
        await tx.raw('SET LOCAL session_replication_role = replica');
        for (const k of kept) if (k.how === 'replace') await tx.raw(`DELETE FROM ${k.table} WHERE ${k.scope}`, (k.bindings ?? []) as never);
        for (const k of [...kept].reverse()) {
          const cols = await columns(k.table);
          if (k.how === 'replace') {
            await tx.raw(`INSERT INTO ${k.table} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM ${k.copy}`);
          } else {
            const key = `"${k.key ?? 'id'}"`;
            await tx.raw(`UPDATE ${k.table} x SET (${cols.join(', ')}) = (SELECT ${cols.map((c) => `s.${c}`).join(', ')} FROM ${k.copy} s WHERE s.${key} = x.${key})
                           WHERE x.${key} IN (SELECT ${key} FROM ${k.copy})`);
          }
        }
        for (const k of kept) await tx.raw(`DROP TABLE ${k.copy}`);
      });
    },
  };
}

export interface BenchResult {
  name: string;
  connections: number;
  seconds: number;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** Peak resident memory of the service process during the run, MB (when its pid was given). */
  rssMb?: number;
  /** CPU (user + system) the service process spent per request, ms (when its pid was given). */
  cpuMsPerRequest?: number;
  /** CPU all of PostgreSQL's processes spent per request, ms (when its postmaster is on this machine). */
  postgresCpuMsPerRequest?: number;
}

/** A process's resident set from /proc, in kB: `VmRSS` now or `VmHWM` (peak since start or the last reset). */
export function procMemoryKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** /proc/<pid>/stat after the command name: state, ppid, … (field 3 onwards of proc(5)). */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU time (user + system, ms) a process has used, with its children that exited (and were
 * waited for) included; null when /proc cannot tell.
 */
export function cpuMs(pid: number): number | null {
  const f = statFields(pid);
  // utime, stime, cutime, cstime: fields 14–17 of proc(5), in clock ticks.
  return f ? ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK : null;
}

/**
 * CPU time (ms) a PostgreSQL server has used: the postmaster, the backends and workers it has
 * now and those that have exited. Null when the postmaster is not a process of this machine.
 */
export function postgresCpuMs(postmasterPid: number | null | undefined): number | null {
  if (!postmasterPid) return null;
  let total = cpuMs(postmasterPid);
  if (total === null) return null;
  for (const child of postgresChildren(postmasterPid)) total += ((Number(child[11]) + Number(child[12])) * 1000) / CLK_TCK;
  return total;
}

/** The stat fields of the postmaster's child processes (backends, workers; exited ones not yet waited for included). */
function postgresChildren(postmasterPid: number): string[][] {
  const children: string[][] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (f && Number(f[1]) === postmasterPid) children.push(f);
  }
  return children;
}

/**
 * Waits (2 s at most) until the postmaster has as few children as `count`: a client's backends
 * that exited count in the postmaster's own CPU only once it has waited for them.
 */
export async function settlePostgres(postmasterPid: number | null | undefined, count: number): Promise<void> {
  if (!postmasterPid) return;
  const deadline = Date.now() + 2000;
  while (postgresChildren(postmasterPid).length > count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** How many processes the postmaster has now (0 when it is not on this machine). */
export const postgresProcessCount = (postmasterPid: number | null | undefined): number => (postmasterPid ? postgresChildren(postmasterPid).length : 0);

/** The pid of the postmaster behind `databaseUrl` when it runs on this machine (its CPU is then measured), else null. */
export async function findPostmasterPid(knex: Knex): Promise<number | null> {
  const { rows } = await knex.raw('SELECT pg_backend_pid() AS pid');
  try {
    const m = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${rows[0].pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Watches a process's peak RSS until stop(): resets its VmHWM (`5 > /proc/pid/clear_refs`) and
 * also samples VmRSS every 100 ms (in case the reset is not allowed); stop() gives the peak in MB.
 */
export function watchRss(pid: number): { stop(): number | undefined } {
  let reset = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    reset = true;
  } catch { /* not allowed here: sampling only */ }
  let peak = procMemoryKb(pid, 'VmRSS') ?? 0;
  const timer = setInterval(() => { peak = Math.max(peak, procMemoryKb(pid, 'VmRSS') ?? 0); }, 100);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, procMemoryKb(pid, 'VmRSS') ?? 0, reset ? procMemoryKb(pid, 'VmHWM') ?? 0 : 0);
      return peak ? Math.round(peak / 1024) : undefined;
    },
  };
}

/**
 * autocannon against `opts.url` after a warm-up. `pid`: the service process, whose peak RSS and
 * CPU per request during the measured part are reported; `postmasterPid`: PostgreSQL's, likewise.
 */
export async function run(name: string, opts: autocannon.Options & { warmupSeconds?: number; pid?: number; postmasterPid?: number | null }): Promise<BenchResult> {
  const { warmupSeconds = 2, pid, postmasterPid, ...options } = opts;
  if (warmupSeconds > 0) await autocannon({ ...options, duration: warmupSeconds });
  const rss = pid ? watchRss(pid) : null;
  const cpuBefore = { service: pid ? cpuMs(pid) : null, postgres: postgresCpuMs(postmasterPid) };
  const r = await autocannon(options);
  const rssMb = rss?.stop();
  const perRequest = (before: number | null, after: number | null) =>
    before !== null && after !== null && r.requests.total > 0 ? Math.round(((after - before) / r.requests.total) * 1000) / 1000 : undefined;
  const result = {
    name,
    connections: options.connections ?? 10,
    seconds: Number(options.duration ?? 10),
    requests: r.requests.total,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    rssMb,
    cpuMsPerRequest: perRequest(cpuBefore.service, pid ? cpuMs(pid) : null),
    postgresCpuMsPerRequest: perRequest(cpuBefore.postgres, postgresCpuMs(postmasterPid)),
  };
  process.stderr.write(`${name}: ${result.rps} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}${rssMb ? `, peak RSS ${rssMb} MB` : ''}${cpuText(result)}\n`);
  return result;
}

/** `, CPU ms/request: service 0.41, PostgreSQL 0.22` for whichever was measured. */
export function cpuText(r: { cpuMsPerRequest?: number; postgresCpuMsPerRequest?: number }, per = 'request'): string {
  const parts = [r.cpuMsPerRequest !== undefined ? `service ${r.cpuMsPerRequest}` : '', r.postgresCpuMsPerRequest !== undefined ? `PostgreSQL ${r.postgresCpuMsPerRequest}` : ''].filter(Boolean);
  return parts.length ? `, CPU ms/${per}: ${parts.join(', ')}` : '';
}

export function table(results: BenchResult[]): string {
  const head = '| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | non-2xx | errors | service peak RSS MB |\n|---|---|---|---|---|---|---|---|---|';
  return [head, ...results.map((r) => `| ${r.name} | ${r.connections} | ${r.rps} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.rssMb ?? ''} |`)].join('\n');
}
