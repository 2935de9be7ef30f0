/**
 * Shared benchmark plumbing: a PostgreSQL (embedded in a temp dir, or BENCH_DATABASE_URL),
 * the real service started as its own process (so the load generator does not share its
 * event loop), and autocannon runs summarised as p50/p99/req/s.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, openSync, readFileSync, writeFileSync } from 'node:fs';
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
  /** The service process's pid (its RSS is reported with each run). */
  pid: number;
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
  // As `npm start` runs it: compiled to dist/ (built now), with its node flags.
  const server: ChildProcess = spawn(process.execPath, npmStartArgs(), {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', SCHEDULER_ENABLED: 'false', ...serviceEnv },
    stdio: ['ignore', devNull, 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
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
    async close() {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      await database.close();
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

/** autocannon against `opts.url` after a warm-up; `pid`: the service process, whose peak RSS during the measured part is reported. */
export async function run(name: string, opts: autocannon.Options & { warmupSeconds?: number; pid?: number }): Promise<BenchResult> {
  const { warmupSeconds = 2, pid, ...options } = opts;
  if (warmupSeconds > 0) await autocannon({ ...options, duration: warmupSeconds });
  const rss = pid ? watchRss(pid) : null;
  const r = await autocannon(options);
  const rssMb = rss?.stop();
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
  };
  process.stderr.write(`${name}: ${result.rps} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}${rssMb ? `, peak RSS ${rssMb} MB` : ''}\n`);
  return result;
}

export function table(results: BenchResult[]): string {
  const head = '| scenario | conns | req/s | p50 ms | p90 ms | p99 ms | non-2xx | errors | service peak RSS MB |\n|---|---|---|---|---|---|---|---|---|';
  return [head, ...results.map((r) => `| ${r.name} | ${r.connections} | ${r.rps} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.rssMb ?? ''} |`)].join('\n');
}
