/**
 * The measuring stick (issue 18): each scenario's req/s next to pgbench running the same SQL,
 * in the same run, against the same database, with as many connections.
 *
 * 1. Capture. The service is built in this process (same services and app as src/main.ts) on a
 *    pool of its own, and every statement node-pg sends is recorded (pg.Client#query is wrapped
 *    here, in the benchmark process only: nothing in src knows). Each sample request is sent
 *    three times (a warm-up, then two captured) and the two captures are compared: a bound value
 *    that is the same in both is a constant (pgbench `-D`); one that differs is a timestamp or a
 *    JSON document (kept as captured) or an id / key that each request makes anew (an
 *    Idempotency-Key, a generated ticket id: pgbench draws a fresh random number per
 *    transaction, one variable per distinct value, so an id reused by later statements stays
 *    the same). A query of several statements without parameters (one round trip in the simple
 *    protocol) becomes a pgbench pipeline. The scripts therefore follow the code as it changes.
 * 2. Measure, interleaved, `rounds` times: the service (autocannon against the service process,
 *    after a warm-up), pgbench `-M extended` (unnamed statements, parsed and planned each time:
 *    what node-pg does without a statement name) and pgbench `-M prepared` (each statement
 *    planned once per connection). The service's peak RSS is taken during its runs.
 *
 * Settings: BENCH_LIMIT_ROUNDS (2), BENCH_SECONDS (10, each run), BENCH_WARMUP_SECONDS (2),
 * BENCH_PGBENCH (path, else pgbench on PATH or in /usr/lib/postgresql/<v>/bin),
 * BENCH_PGBENCH_THREADS (1), BENCH_LIMIT=0 (service only), BENCH_LIMIT_SQL_DIR (keep the
 * generated scripts there), BENCH_LIMIT_SHOW_SQL=1 (print them).
 */
import autocannon from 'autocannon';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createServices } from '../src/container.js';
import { createKnex } from '../src/db/knex.js';
import { createHttpServer } from '../src/http/server.js';
import { systemClock } from '../src/lib/clock.js';
import { createLogger } from '../src/lib/logger.js';
import { cpuText, postgresCpuMs, postgresProcessCount, run, settlePostgres, watchRss, type BenchResult } from './harness.js';

const ROUNDS = Number(process.env.BENCH_LIMIT_ROUNDS ?? 2);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const PGBENCH_THREADS = Number(process.env.BENCH_PGBENCH_THREADS ?? 1);
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue(v: unknown): unknown };

// ---------------------------------------------------------------------------------------------
// Capture

/** One statement as node-pg was asked to send it: text with $n placeholders, values as sent. */
export interface Statement {
  text: string;
  values: (string | null)[];
  name?: string;
  /** Rows it returned or changed, when it answered with one count. */
  rowCount?: number;
  /** Sent while an earlier statement of its connection was still unanswered (node-pg's pipeline mode). */
  pipelined?: boolean;
}

let sink: Statement[] | null = null;
let wrapped = false;
/** Statements sent and not yet answered, per connection: one sent meanwhile shares a round trip. */
const unanswered = new WeakMap<object, number>();

/** Wraps pg.Client#query (once) so that, while `sink` is set, every statement lands in it. */
function wrapPgQuery(): void {
  if (wrapped) return;
  wrapped = true;
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: object, ...args: unknown[]) {
    const [config, values] = args;
    const c = (typeof config === 'string' ? { text: config } : config) as { text?: unknown; values?: unknown; name?: unknown } | null;
    let statement: Statement | undefined;
    if (sink && c && typeof c.text === 'string') {
      const raw = Array.isArray(c.values) ? c.values : Array.isArray(values) ? values : [];
      statement = { text: c.text, values: raw.map(sendable), name: typeof c.name === 'string' ? c.name : undefined };
      if ((unanswered.get(this) ?? 0) > 0) statement.pipelined = true;
      sink.push(statement);
    }
    unanswered.set(this, (unanswered.get(this) ?? 0) + 1);
    // The rows it touched (knex passes a callback; others take the promise), for replayLimit's check.
    const answered = (r: unknown) => {
      unanswered.set(this, (unanswered.get(this) ?? 1) - 1);
      if (statement && r && typeof (r as { rowCount?: unknown }).rowCount === 'number') statement.rowCount = (r as { rowCount: number }).rowCount;
    };
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last] as (err: unknown, r: unknown) => void;
      args[last] = (err: unknown, r: unknown) => { answered(r); callback(err, r); };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(answered, () => answered(undefined));
    return result;
  };
}

/** A value as node-pg puts it on the wire (text), or null. */
function sendable(v: unknown): string | null {
  const p = prepareValue(v);
  if (p === null || p === undefined) return null;
  if (Buffer.isBuffer(p)) return `\\x${p.toString('hex')}`;
  return String(p);
}

/** Driver chatter that is not the request's work (knex checks the version on a new connection). */
const NOT_THE_REQUEST = /^\s*select version\(\);?\s*$/i;

export interface SampleRequest { method?: string; path: string; headers?: Record<string, string>; body?: string }

export interface CaptureApp {
  /** The statements one request sends (and whatever it sends within 50 ms of its answer). */
  capture(req: SampleRequest): Promise<{ status: number; statements: Statement[] }>;
  close(): Promise<void>;
}

/** The service's app in this process, on its own pool, for capturing statements. */
export async function startCaptureApp(databaseUrl: string): Promise<CaptureApp> {
  wrapPgQuery();
  const config = loadConfig({ NODE_ENV: 'production' });
  const db = createKnex(databaseUrl, 10, undefined, config.database);
  const logger = createLogger('silent');
  const deps = { config, db, logger, clock: systemClock };
  const services = createServices(deps);
  const app = createApp(deps, { services });
  const server = await new Promise<Server>((resolve) => {
    const s = createHttpServer(app.callback(), logger).listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    async capture(req) {
      const statements: Statement[] = [];
      sink = statements;
      let status: number;
      try {
        const res = await fetch(baseUrl + req.path, { method: req.method ?? 'GET', headers: req.headers, body: req.body });
        status = res.status;
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        sink = null;
      }
      return { status, statements: statements.filter((s) => !NOT_THE_REQUEST.test(s.text)) };
    },
    async close() {
      await new Promise((r) => server.close(r));
      await db.destroy();
    },
  };
}

/**
 * The statements `fn` sends through node-pg in this process (a worker's pass, a service call),
 * driver chatter left out. For work that is not a request: see `replayLimit`.
 */
export async function captureStatements<T>(fn: () => Promise<T>): Promise<{ value: T; statements: Statement[] }> {
  wrapPgQuery();
  if (sink) throw new Error('captureStatements: a capture is already running');
  const statements: Statement[] = [];
  sink = statements;
  try {
    const value = await fn();
    return { value, statements: statements.filter((s) => !NOT_THE_REQUEST.test(s.text)) };
  } finally {
    sink = null;
  }
}

// ---------------------------------------------------------------------------------------------
// pgbench scripts

export interface PgbenchScript {
  /** The script text (pgbench syntax). */
  text: string;
  /** Constants, passed as `-D name=value`. */
  defines: Record<string, string>;
  statements: number;
  /** Values drawn anew for each transaction. */
  varying: number;
  warnings: string[];
}

/** Longer constants are written into the script as literals instead of `-D` arguments. */
const LONGEST_DEFINE = 1000;
/** Statements with more parameters than this get their constants as literals (pgbench's limit: 255). */
const MOST_VARIABLES = 250;

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;

/** A piece of a statement's text: SQL, or something whose characters are not SQL to scan. */
interface SqlPiece {
  kind: 'code' | 'comment' | 'identifier' | 'dollar' | 'string';
  text: string;
  /** A string literal's prefix: E'…' (backslash escapes) or U&'…' (escapes of its own). */
  prefix?: 'E' | 'U&';
}

/** A statement's text cut into code, comments, quoted identifiers and literals: the one lexer of the two below. */
function sqlPieces(text: string): SqlPiece[] {
  const pieces: SqlPiece[] = [];
  let code = '';
  for (let i = 0; i < text.length;) {
    const ch = text[i];
    const upTo = (found: number, length: number) => (found < 0 ? text.length : found + length);
    const dollar = ch === '$' ? /^\$[A-Za-z_]*\$/.exec(text.slice(i))?.[0] : undefined;
    let piece: SqlPiece;
    let end: number;
    if (dollar) {
      end = upTo(text.indexOf(dollar, i + dollar.length), dollar.length);
      piece = { kind: 'dollar', text: '' };
    } else if (ch === '"') {
      end = upTo(text.indexOf('"', i + 1), 1);
      piece = { kind: 'identifier', text: '' };
    } else if (ch === '-' && text[i + 1] === '-') {
      end = upTo(text.indexOf('\n', i), 0);
      piece = { kind: 'comment', text: '' };
    } else if (ch === '/' && text[i + 1] === '*') {
      end = upTo(text.indexOf('*/', i + 2), 2);
      piece = { kind: 'comment', text: '' };
    } else if (ch === "'") {
      const prefix = /(^|[^A-Za-z0-9_])[eE]$/.test(code) ? 'E' : /[uU]&$/.test(code) ? 'U&' : undefined;
      let j = i + 1;
      while (j < text.length) {
        if (prefix === 'E' && text[j] === '\\') j += 2; // E'it\'s'
        else if (text[j] === "'" && text[j + 1] === "'") j += 2;
        else if (text[j] === "'") break;
        else j++;
      }
      end = Math.min(text.length, j + 1);
      piece = { kind: 'string', text: '', prefix };
    } else {
      code += ch;
      i++;
      continue;
    }
    if (code) pieces.push({ kind: 'code', text: code });
    code = '';
    pieces.push({ ...piece, text: text.slice(i, end) });
    i = end;
  }
  if (code) pieces.push({ kind: 'code', text: code });
  return pieces;
}

/** Statements of one query text, split at top-level semicolons (outside quotes and comments). */
function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const piece of sqlPieces(text)) {
    if (piece.kind !== 'code') {
      cur += piece.text;
      continue;
    }
    const [first, ...rest] = piece.text.split(';');
    cur += first;
    for (const next of rest) {
      if (cur.trim()) out.push(cur.trim());
      cur = next;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** A colon pgbench would read as the start of a variable (it takes any non-ASCII byte as a name too). */
const VARIABLE_COLON = /:(?=[A-Za-z_\u0080-\uffff])/g;
const hasVariableColon = (text: string) => new RegExp(VARIABLE_COLON.source).test(text);

/**
 * The statement with nothing pgbench would take for a variable: a `:word` inside a string literal
 * (a to_char format's `HH24:MI`) is written `\x3a` in an E'' literal — the same value — and
 * comments are left out. Quoted identifiers, dollar-quoted and U&'' strings are kept as they are
 * (a `:word` in one is then reported by pgbenchScript's check).
 */
function hideColons(text: string): string {
  return sqlPieces(text).map((p) => {
    if (p.kind === 'comment') return '';
    if (p.kind !== 'string' || p.prefix === 'U&') return p.text;
    const body = p.text.slice(1, p.text.endsWith("'") && p.text.length > 1 ? -1 : undefined);
    if (!hasVariableColon(body)) return p.text;
    const escaped = p.prefix === 'E' ? body : body.replace(/\\/g, '\\\\');
    return `${p.prefix === 'E' ? '' : 'E'}'${escaped.replace(VARIABLE_COLON, '\\x3a')}'`;
  }).join('');
}

/**
 * A pgbench script from two captures of the same request (differing only where each request
 * must differ). `prefix` keeps variable names apart when several scripts run together.
 */
export function pgbenchScript(prefix: string, a: Statement[], b: Statement[], keep: (value: string) => boolean = () => false): PgbenchScript {
  const warnings: string[] = [];
  const sameShape = a.length === b.length && a.every((s, i) => s.text === b[i].text && s.values.length === b[i].values.length);
  if (!sameShape) warnings.push(`${prefix}: the two captures sent different statements (${a.length} and ${b.length}); every value is taken as a constant`);
  const defines: Record<string, string> = {};
  const constants = new Map<string, string>();
  const fresh = new Map<string, string>();
  const lines: string[] = [];
  const constant = (v: string, inline = false) => {
    // A long value (an array of 1,000 ids, a JSON document) goes into the text as a literal: -D
    // arguments that long would not fit on pgbench's command line.
    // Escaped (E'…'): pgbench would take a `:word` in the text for a variable, `\x3a` is a colon.
    if (inline || v.length > LONGEST_DEFINE) return `E'${v.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(VARIABLE_COLON, '\\x3a')}'`;
    let name = constants.get(v);
    if (!name) {
      name = `${prefix}c${constants.size + 1}`;
      constants.set(v, name);
      defines[name] = v;
    }
    return `:${name}`;
  };
  const varying = (v: string) => {
    let name = fresh.get(v);
    if (!name) {
      name = `${prefix}v${fresh.size + 1}`;
      fresh.set(v, name);
      // Unique enough for keys and ids; a small range where the value is a number (int4 columns).
      lines.unshift(`\\set ${name} random(1, ${/^\d+$/.test(v) ? '2147483647' : '9000000000000000'})`);
    }
    return `:${name}`;
  };
  for (const [i, s] of a.entries()) {
    const other = sameShape ? b[i] : s;
    const sql = hideColons(s.text);
    // pgbench takes at most 255 variables in a statement: a longer one gets its constants as literals.
    const inline = s.values.length > MOST_VARIABLES;
    const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
      const k = Number(n) - 1;
      const va = s.values[k];
      const vb = other.values[k];
      if (va === null || va === undefined) return 'NULL';
      if (va === vb || vb === null || TIMESTAMP.test(va) || /^[[{]/.test(va) || keep(va)) return constant(va, inline);
      return varying(va);
    });
    if (inline && new Set(text.match(/:[A-Za-z_]\w*/g)).size > 255) warnings.push(`${prefix}: statement ${i + 1} has more than 255 values that differ between the captures: pgbench refuses it`);
    if (/^\s*\\/m.test(text)) warnings.push(`${prefix}: statement ${i + 1} has a backslash, which pgbench may read as a meta-command`);
    if (/(^|[^:]):[A-Za-z_\u0080-\uffff]/.test(text.replace(new RegExp(`:${prefix}[cv]\\d+`, 'g'), ''))) {
      warnings.push(`${prefix}: statement ${i + 1} has a :name pgbench would take for a variable`);
    }
    const parts = s.values.length ? [text] : splitStatements(text);
    // A pipeline: the statements of one simple query, or statements the service sent without
    // waiting for the answer to the one before (pipelined after this one).
    const joins = (k: number) => k > 0 && a[k]?.pipelined === true;
    const opens = !joins(i) && (parts.length > 1 || joins(i + 1));
    const closes = (joins(i) || parts.length > 1) && !joins(i + 1);
    if (opens) lines.push('\\startpipeline');
    lines.push(`-- ${i + 1}${s.name ? ` (named ${s.name})` : ''}${joins(i) ? ', pipelined' : ''}`);
    for (const p of parts) lines.push(`${p.trim().replace(/;\s*$/, '')};`);
    if (closes) lines.push('\\endpipeline');
  }
  return { text: `${lines.join('\n')}\n`, defines, statements: a.length, varying: fresh.size, warnings };
}

/** Captures `sample(0)` (warm-up), then `sample(1)` and `sample(2)`, and makes their script. */
export async function scriptFromRequests(app: CaptureApp, prefix: string, sample: (variant: number) => SampleRequest, keep?: (value: string) => boolean): Promise<PgbenchScript> {
  // Spaced past a key lease's life (key-leases.ts): a request soon after another of the same key
  // may be served from the lease with no auth statement; each capture sends what an unleased one does.
  const spaced = async (variant: number) => {
    if (variant > 0) await new Promise((r) => setTimeout(r, 1100));
    return app.capture(sample(variant));
  };
  const warm = await spaced(0);
  const first = await spaced(1);
  const second = await spaced(2);
  const script = pgbenchScript(prefix, first.statements, second.statements, keep);
  const failed = [warm, first, second].filter((r) => r.status >= 400).map((r) => r.status);
  if (failed.length) script.warnings.push(`${prefix}: sample requests answered ${failed.join(', ')}: the script is not what a successful request sends`);
  return script;
}

// ---------------------------------------------------------------------------------------------
// pgbench

/** pgbench's path, or null when there is none (BENCH_LIMIT=0 turns it off). */
export function findPgbench(): string | null {
  if (process.env.BENCH_LIMIT === '0') return null;
  if (process.env.BENCH_PGBENCH) return process.env.BENCH_PGBENCH;
  if (spawnSync('pgbench', ['--version']).status === 0) return 'pgbench';
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((x, y) => Number(y) - Number(x)) : [];
  for (const v of versions) if (existsSync(`${base}/${v}/bin/pgbench`)) return `${base}/${v}/bin/pgbench`;
  return null;
}

export interface PgbenchResult {
  tps: number; transactions: number; p50: number; p99: number; aborted: number; error?: string;
  /** CPU all of PostgreSQL's processes spent per transaction, ms (when its postmaster is on this machine). */
  postgresCpuMsPerTx?: number;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One pgbench run of `scripts` (equal weights): tps and latency percentiles (ms) from its per-transaction log. */
export async function runPgbench(bin: string, opts: { databaseUrl: string; scripts: PgbenchScript[]; mode: 'extended' | 'prepared'; connections: number; seconds: number; dir: string; postmasterPid?: number | null }): Promise<PgbenchResult> {
  const logDir = mkdtempSync(path.join(opts.dir, 'log-'));
  const args = ['-n', '-M', opts.mode, '-c', String(opts.connections), '-j', String(Math.min(PGBENCH_THREADS, opts.connections)), '-T', String(opts.seconds), '-l', '--log-prefix', path.join(logDir, 'tx')];
  for (const [i, s] of opts.scripts.entries()) {
    const file = path.join(opts.dir, `script-${i}.sql`);
    writeFileSync(file, s.text);
    args.push('-f', `${file}@1`);
    for (const [k, v] of Object.entries(s.defines)) args.push('-D', `${k}=${v}`);
  }
  args.push(opts.databaseUrl);
  const processes = postgresProcessCount(opts.postmasterPid);
  const cpuBefore = postgresCpuMs(opts.postmasterPid);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const code = await new Promise<number | null>((r) => child.once('close', r));
  // pgbench's backends have exited: their CPU is the postmaster's once it has waited for them.
  await settlePostgres(opts.postmasterPid, processes);
  const cpuAfter = postgresCpuMs(opts.postmasterPid);
  const latencies: number[] = [];
  for (const f of readdirSync(logDir)) {
    for (const line of readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
      const cols = line.split(' ');
      if (cols.length >= 3) latencies.push(Number(cols[2]) / 1000);
    }
  }
  rmSync(logDir, { recursive: true, force: true });
  latencies.sort((x, y) => x - y);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0);
  const aborted = (err.match(/aborted in command/g) ?? []).length;
  const error = aborted || code !== 0 ? (/ERROR:.*$/m.exec(err)?.[0] ?? err.trim().split('\n').pop()) : undefined;
  const postgresCpuMsPerTx = cpuBefore !== null && cpuAfter !== null && latencies.length ? Math.round(((cpuAfter - cpuBefore) / latencies.length) * 1000) / 1000 : undefined;
  return { tps: Math.round(tps * 1000) / 1000, transactions: latencies.length, p50: round1(percentile(latencies, 50)), p99: round1(percentile(latencies, 99)), aborted, error, postgresCpuMsPerTx };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

// ---------------------------------------------------------------------------------------------
// Interleaved scenarios

export interface LimitScenario {
  name: string;
  /** The service side: autocannon options, built once (counters in setupRequest carry over rounds). */
  load: autocannon.Options;
  /** One sample request per pgbench script (several: pgbench picks one per transaction, equal weights). */
  samples: Array<(variant: number) => SampleRequest>;
  /**
   * Values to keep as the first capture sent them although the second sent another: rows that
   * exist (the agent a round-robin pick chose), not ids each request makes anew.
   */
  keep?: (value: string) => boolean;
}

export interface LimitResult extends BenchResult {
  statements: number;
  extended?: PgbenchResult;
  prepared?: PgbenchResult;
  warnings: string[];
}

export interface LimitContext { databaseUrl: string; pid: number; postmasterPid?: number | null; connections: number; seconds: number }

/**
 * The service and pgbench (extended, then prepared), interleaved over BENCH_LIMIT_ROUNDS rounds;
 * req/s and tps are the rounds' means, latencies their means, RSS the peak.
 */
export async function runLimit(ctx: LimitContext, scenario: LimitScenario): Promise<LimitResult> {
  const bin = findPgbench();
  const warnings: string[] = [];
  let scripts: PgbenchScript[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-limit-'));
  try {
    if (bin) {
      const app = await startCaptureApp(ctx.databaseUrl);
      try {
        for (const [i, sample] of scenario.samples.entries()) scripts.push(await scriptFromRequests(app, `s${i}`, sample, scenario.keep));
      } finally {
        await app.close();
      }
      for (const s of scripts) warnings.push(...s.warnings);
      keepScripts(scenario.name, scripts);
    } else {
      warnings.push('no pgbench (BENCH_LIMIT=0, or none found): service only');
      scripts = [];
    }
    const service: BenchResult[] = [];
    const extended: PgbenchResult[] = [];
    const prepared: PgbenchResult[] = [];
    const common = { databaseUrl: ctx.databaseUrl, scripts, connections: ctx.connections, seconds: ctx.seconds, dir, postmasterPid: ctx.postmasterPid };
    for (let round = 1; round <= Math.max(1, ROUNDS); round++) {
      service.push(await run(`${scenario.name} [round ${round}]`, { ...scenario.load, connections: ctx.connections, duration: ctx.seconds, warmupSeconds: WARMUP_SECONDS, pid: ctx.pid, postmasterPid: ctx.postmasterPid }));
      if (!bin) continue;
      for (const [mode, into] of [['extended', extended], ['prepared', prepared]] as const) {
        if (WARMUP_SECONDS > 0) await runPgbench(bin, { ...common, mode, seconds: WARMUP_SECONDS });
        const r = await runPgbench(bin, { ...common, mode });
        into.push(r);
        process.stderr.write(`  pgbench -M ${mode}: ${r.tps} tps, p50 ${r.p50} ms, p99 ${r.p99} ms${cpuText({ postgresCpuMsPerRequest: r.postgresCpuMsPerTx }, 'tx')}${r.aborted ? `, ${r.aborted} clients aborted: ${r.error}` : r.error ? `, ${r.error}` : ''}\n`);
      }
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : 0);
    const meanPgbench = (rs: PgbenchResult[]): PgbenchResult | undefined => rs.length ? {
      tps: Math.round(mean(rs.map((r) => r.tps))),
      transactions: rs.reduce((x, r) => x + r.transactions, 0),
      p50: round1(mean(rs.map((r) => r.p50))),
      p99: round1(mean(rs.map((r) => r.p99))),
      aborted: rs.reduce((x, r) => x + r.aborted, 0),
      error: rs.find((r) => r.error)?.error,
      postgresCpuMsPerTx: meanOf(rs.map((r) => r.postgresCpuMsPerTx)),
    } : undefined;
    const rss = service.map((r) => r.rssMb ?? 0);
    /** The mean of the values measured (undefined when none was). */
    function meanOf(xs: (number | undefined)[]): number | undefined {
      const known = xs.filter((x): x is number => x !== undefined);
      return known.length ? Math.round(mean(known) * 1000) / 1000 : undefined;
    }
    return {
      name: scenario.name,
      connections: ctx.connections,
      seconds: ctx.seconds,
      requests: service.reduce((x, r) => x + r.requests, 0),
      rps: Math.round(mean(service.map((r) => r.rps))),
      p50: round1(mean(service.map((r) => r.p50))),
      p90: round1(mean(service.map((r) => r.p90))),
      p99: round1(mean(service.map((r) => r.p99))),
      non2xx: service.reduce((x, r) => x + r.non2xx, 0),
      errors: service.reduce((x, r) => x + r.errors, 0),
      rssMb: Math.max(...rss) || undefined,
      cpuMsPerRequest: meanOf(service.map((r) => r.cpuMsPerRequest)),
      postgresCpuMsPerRequest: meanOf(service.map((r) => r.postgresCpuMsPerRequest)),
      statements: scripts[0]?.statements ?? 0,
      extended: meanPgbench(extended),
      prepared: meanPgbench(prepared),
      warnings,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function keepScripts(name: string, scripts: PgbenchScript[]): void {
  const slug = name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase();
  for (const [i, s] of scripts.entries()) {
    const defines = Object.entries(s.defines).map(([k, v]) => `-- -D ${k}=${v.length > 200 ? `${v.slice(0, 200)}…` : v}`).join('\n');
    const text = `-- ${name}: script ${i + 1} of ${scripts.length}, ${s.statements} statements, ${s.varying} values drawn per transaction\n${defines}\n${s.text}`;
    if (process.env.BENCH_LIMIT_SQL_DIR) {
      mkdirSync(process.env.BENCH_LIMIT_SQL_DIR, { recursive: true });
      writeFileSync(path.join(process.env.BENCH_LIMIT_SQL_DIR, `${slug}${scripts.length > 1 ? `-${i + 1}` : ''}.sql`), text);
    }
    if (process.env.BENCH_LIMIT_SHOW_SQL === '1' && i === 0) process.stderr.write(`${text}\n`);
  }
}

const ratio = (service: number, limit?: PgbenchResult) => (limit?.tps ? (service / limit.tps).toFixed(2) : '');

/** The service against its limit: req/s and tps, the ratios, latencies, errors and peak RSS. */
export function limitTable(results: LimitResult[]): string {
  const head = [
    '| scenario | conns | stmts | service req/s | p50 ms | p99 ms | pgbench extended tps | p50 ms | p99 ms | ratio | pgbench prepared tps | p50 ms | p99 ms | ratio | errors (service · pgbench) | service peak RSS MB | CPU ms per request: service · PostgreSQL | PostgreSQL CPU ms per tx: extended · prepared |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const rows = results.map((r) => {
    const e = r.extended;
    const p = r.prepared;
    return `| ${r.name} | ${r.connections} | ${r.statements || ''} | ${r.rps} | ${r.p50} | ${r.p99} | ${e?.tps ?? ''} | ${e?.p50 ?? ''} | ${e?.p99 ?? ''} | ${ratio(r.rps, e)} | ${p?.tps ?? ''} | ${p?.p50 ?? ''} | ${p?.p99 ?? ''} | ${ratio(r.rps, p)} | ${r.non2xx + r.errors} · ${(e?.aborted ?? 0) + (p?.aborted ?? 0)} | ${r.rssMb ?? ''} | ${r.cpuMsPerRequest ?? ''} · ${r.postgresCpuMsPerRequest ?? ''} | ${e?.postgresCpuMsPerTx ?? ''} · ${p?.postgresCpuMsPerTx ?? ''} |`;
  });
  const notes = results.flatMap((r) => [...r.warnings, ...[r.extended, r.prepared].filter((x) => x?.error).map((x) => `pgbench: ${x!.error}`)].map((w) => `- ${r.name}: ${w}`));
  const settings = `Interleaved, ${Math.max(1, ROUNDS)} round(s) of ${results[0]?.seconds ?? ''} s each (service, pgbench -M extended, pgbench -M prepared), ${WARMUP_SECONDS} s warm-up before each; figures are the rounds' means, RSS the peak. Ratio = service req/s ÷ pgbench tps of the same statements.`;
  return [settings, '', ...head, ...rows, ...(notes.length ? ['', ...notes] : [])].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Work that is not a request (a worker's pass, a sweep, a report): its statements replayed

/**
 * Transaction control as knex sends it: the replay runs the pass in one transaction of its own.
 * ROLLBACK TO SAVEPOINT stays (it undoes part of the pass in the replay too).
 */
const TRANSACTION_CONTROL = /^\s*(begin|start transaction|commit|end|rollback(?!\s+to\b))\b[^;]*;?\s*$/i;

/**
 * The statements without BEGIN / COMMIT / ROLLBACK; one the service sent behind a statement left
 * out (the first after a pipelined BEGIN) no longer joins a pipeline.
 */
export function withoutTransactionControl(statements: readonly Statement[]): Statement[] {
  return statements.flatMap((st, i) => {
    if (TRANSACTION_CONTROL.test(st.text)) return [];
    return st.pipelined && i > 0 && TRANSACTION_CONTROL.test(statements[i - 1].text) ? [{ ...st, pipelined: false }] : [st];
  });
}

export interface ReplayResult {
  name: string;
  /** Items (deliveries, tickets, calls…) one pass handled. */
  items: number;
  /** Statements in the pass (transaction control left out) and the commits the service made. */
  statements: number;
  commits: number;
  /** The service's rate for the same work, items/s (measured by the benchmark itself). */
  serviceItemsPerSecond: number;
  /** Each pgbench run's length. */
  seconds: number;
  extended?: PgbenchResult;
  prepared?: PgbenchResult;
  warnings: string[];
}

/**
 * The limit of work that is not a request: pgbench runs the statements captured from one pass
 * (`captureStatements`), in order, on one connection, with the values as captured, over and over
 * (-M extended, then -M prepared, each after a warm-up). Writing work (`writes`) is replayed in
 * one transaction pgbench rolls back, so every run finds the state the pass found — the caller
 * puts the database back in that state first — and its inserts never collide; the commits' WAL
 * flushes are left out, so the limit is generous and the ratio conservative. A service that runs
 * items in parallel can beat one connection running them in a row: a ratio above 1 says so.
 */
export async function replayLimit(
  ctx: { databaseUrl: string; postmasterPid?: number | null; seconds: number },
  work: {
    name: string; items: number; statements: Statement[]; writes: boolean; serviceItemsPerSecond: number;
    /**
     * Run first in every pass, inside its transaction: what a rollback does not undo, put back
     * (a sequence's setval, so rows get the ids the pass gave them and later statements find them).
     */
    setup?: Statement[];
  },
): Promise<ReplayResult> {
  const body = [...(work.setup ?? []), ...withoutTransactionControl(work.statements)];
  const commits = work.statements.filter((st) => /^\s*(commit|end)\b/i.test(st.text)).length;
  const rollbacks = work.statements.filter((st) => /^\s*rollback\b(?!\s+to\b)/i.test(st.text)).length;
  const result: ReplayResult = { name: work.name, items: work.items, statements: body.length - (work.setup?.length ?? 0), commits, serviceItemsPerSecond: work.serviceItemsPerSecond, seconds: ctx.seconds, warnings: [] };
  const bin = findPgbench();
  if (!bin) {
    result.warnings.push('no pgbench (BENCH_LIMIT=0, or none found): service only');
    return result;
  }
  if (rollbacks) result.warnings.push(`the pass rolled back ${rollbacks} transaction(s): the replay keeps their writes`);
  result.warnings.push(...(await checkReplay(ctx.databaseUrl, body)));
  const script = pgbenchScript('r', body, body);
  if (work.writes) script.text = `BEGIN;\n${script.text}ROLLBACK;\n`;
  result.warnings.push(...script.warnings);
  keepScripts(work.name, [script]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-replay-'));
  try {
    const common = { databaseUrl: ctx.databaseUrl, scripts: [script], connections: 1, seconds: ctx.seconds, dir, postmasterPid: ctx.postmasterPid };
    for (const mode of ['extended', 'prepared'] as const) {
      if (WARMUP_SECONDS > 0) await runPgbench(bin, { ...common, mode, seconds: WARMUP_SECONDS });
      const r = await runPgbench(bin, { ...common, mode });
      result[mode] = r;
      if (r.error) result.warnings.push(`pgbench -M ${mode}: ${r.error}`);
      process.stderr.write(`  ${work.name}, replayed -M ${mode}: ${r.tps} passes/s (${Math.round(r.tps * work.items)} items/s), p50 ${r.p50} ms${r.error ? `, ${r.error}` : ''}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

/**
 * Runs the pass's statements once, as captured, in a transaction it rolls back, and says how far
 * the rows they touched differ from the pass's: a replay that does not do the pass's work (the
 * state was not put back, a value is not what it was) is not its limit. Claims among rows with
 * equal sort keys may take them in another order and differ a little.
 */
export async function checkReplay(databaseUrl: string, statements: Statement[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const problems: string[] = [];
  let differing = 0;
  let passRows = 0;
  let replayRows = 0;
  try {
    await client.query('BEGIN');
    for (const [i, st] of statements.entries()) {
      try {
        const r = await client.query({ text: st.text, values: st.values });
        const rows = Array.isArray(r) ? undefined : r.rowCount ?? undefined;
        if (st.rowCount === undefined || rows === undefined) continue;
        passRows += st.rowCount;
        replayRows += rows;
        if (rows !== st.rowCount) differing++;
      } catch (err) {
        problems.push(`statement ${i + 1} failed in the replay: ${(err as Error).message}`);
        break;
      }
    }
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.end();
  }
  if (differing) problems.push(`the replay touched ${replayRows} rows where the pass touched ${passRows}: ${differing} of ${statements.length} statements touched another number`);
  return problems;
}

/** Items/s pgbench reached replaying the pass (its passes/s × items per pass). */
const replayRate = (r: ReplayResult, p?: PgbenchResult) => {
  if (!p?.tps) return undefined;
  const rate = p.tps * r.items;
  return rate < 100 ? Math.round(rate * 10) / 10 : Math.round(rate);
};
const replayRatio = (r: ReplayResult, p?: PgbenchResult) => { const rate = replayRate(r, p); return rate ? (r.serviceItemsPerSecond / rate).toFixed(2) : ''; };
const perItem = (r: ReplayResult, p?: PgbenchResult) => (p?.postgresCpuMsPerTx !== undefined ? Math.round((p.postgresCpuMsPerTx / r.items) * 1000) / 1000 : '');

/** Replayed work against the service: items/s of both, the ratios, PostgreSQL's CPU per item. */
export function replayTable(results: ReplayResult[]): string {
  const head = [
    '| work | items per pass | statements · commits per pass | service items/s | pgbench extended items/s | ratio | pgbench prepared items/s | ratio | PostgreSQL CPU ms per item: extended · prepared |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const rows = results.map((r) => `| ${r.name} | ${r.items} | ${r.statements} · ${r.commits} | ${r.serviceItemsPerSecond} | ${replayRate(r, r.extended) ?? ''} | ${replayRatio(r, r.extended)} | ${replayRate(r, r.prepared) ?? ''} | ${replayRatio(r, r.prepared)} | ${perItem(r, r.extended)} · ${perItem(r, r.prepared)} |`);
  const notes = results.flatMap((r) => r.warnings.map((w) => `- ${r.name}: ${w}`));
  const settings = `pgbench replays the statements of one captured pass on one connection${results.some((r) => r.commits) ? ' (writing work inside a transaction it rolls back: the commits\' flushes are not in the limit)' : ''}, -M extended, then -M prepared, ${results[0]?.seconds ?? ''} s each after ${WARMUP_SECONDS} s of warm-up. Ratio = service items/s ÷ pgbench items/s.`;
  return [settings, '', ...head, ...rows, ...(notes.length ? ['', ...notes] : [])].join('\n');
}

/** The watchRss re-export, for benchmarks that measure something else than autocannon runs. */
export { watchRss };
