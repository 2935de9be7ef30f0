import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { hasEnded } from '../../src/db/postmaster-owner.js';
import { freePort, isAlive, stopLeftover, waitFor } from '../helpers/process.js';

const isRoot = process.getuid?.() === 0;


async function query<T = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

async function refusesConnections(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return false;
  } catch {
    await c.end().catch(() => undefined);
    return true;
  }
}



/** The postmaster's pid, from its lock file. */
function postmasterPid(pgData: string): number {
  return Number(readFileSync(path.join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

describe('embedded PostgreSQL', function () {
  // initdb on a busy machine can take several seconds.
  this.timeout(60_000);
  let tmp: string;
  let dir: string;
  let pgData: string;
  let port: number;
  const running: EmbeddedPostgres[] = [];
  const owners: ChildProcess[] = [];

  /**
   * Another process (a stand-in for topicdesk) that starts the server on `dir`, detached as the
   * service does, says "ready", and stops it on SIGTERM.
   */
  async function startOwner(): Promise<{ child: ChildProcess; postgresPid: number }> {
    const script = `
      const { startEmbeddedPostgres } = await import(${JSON.stringify(new URL('../../src/db/embedded-postgres.ts', import.meta.url).href)});
      const server = await startEmbeddedPostgres({ dir: ${JSON.stringify(dir)}, port: ${port}, fast: true, detached: true });
      process.on('SIGTERM', () => server.stop().then(() => process.exit(0)));
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    owners.push(child);
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { out += d; });
    await waitFor('the owner to start its server', () => {
      if (child.exitCode !== null) throw new Error(`the owner exited: ${out}`);
      return out.includes('ready');
    }, 60_000);
    return { child, postgresPid: postmasterPid(pgData) };
  }

  async function start(opts: { port?: number; attachIfRunning?: boolean; dir?: string; detached?: boolean } = {}): Promise<EmbeddedPostgres> {
    const server = await startEmbeddedPostgres({ dir: opts.dir ?? dir, port: opts.port ?? port, fast: true, attachIfRunning: opts.attachIfRunning, detached: opts.detached });
    running.push(server);
    return server;
  }

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-epg-'));
    chmodSync(tmp, 0o755); // the postgres user must reach it when we run as root
    dir = path.join(tmp, 'cluster');
    pgData = path.join(dir, 'pg');
    port = await freePort();
  });
  afterEach(async () => {
    for (const s of running.splice(0).reverse()) await s.stop();
    for (const o of owners.splice(0)) {
      if (o.exitCode === null && o.signalCode === null) {
        o.kill('SIGTERM'); // it stops its server, then exits
        await new Promise((r) => o.once('close', r));
      }
    }
    await stopLeftover(pgData);
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('initialises a cluster in a new directory, serves the topicdesk database, and stops', async () => {
    const server = await start();
    assert.match(server.url, new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/topicdesk$`));
    assert.match(server.adminUrl, new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/postgres$`));
    const [row] = await query(server.url, `SELECT current_database() AS db, current_setting('server_version_num')::int AS version`);
    assert.equal(row.db, 'topicdesk');
    assert.ok(row.version >= 150000, 'PostgreSQL 15 or newer');
    assert.ok(existsSync(path.join(pgData, 'PG_VERSION')));
    const pid = postmasterPid(pgData);

    await server.stop();
    assert.ok(await refusesConnections(server.adminUrl), 'the server is gone once stop() resolves');
    assert.equal(isAlive(pid), false, 'the postmaster has exited');
    assert.equal(existsSync(path.join(pgData, 'postmaster.pid')), false, 'it shut down cleanly');
    await server.stop(); // a second stop is harmless
  });

  it('keeps its data across a stop and a start on the same directory', async () => {
    let server = await start();
    await query(server.url, 'CREATE TABLE IF NOT EXISTS kept (v text)');
    await query(server.url, `INSERT INTO kept VALUES ('survives restarts')`);
    await server.stop();

    server = await start();
    const rows = await query(server.url, 'SELECT v FROM kept');
    assert.deepEqual(rows, [{ v: 'survives restarts' }]);
  });

  it('refuses a second start on a running directory with a clear "already running" error', async () => {
    const server = await start();
    const pid = postmasterPid(pgData);
    await assert.rejects(
      startEmbeddedPostgres({ dir, port: await freePort() }),
      (err: Error) => {
        assert.match(err.message, /already running/);
        assert.ok(err.message.includes(`(pid ${pid})`), err.message);
        assert.ok(err.message.includes(`topicdesk pid ${process.pid} uses the data directory ${dir};`), err.message);
        return true;
      },
    );
    await assert.rejects(
      startEmbeddedPostgres({ dir, port: await freePort(), configuredAs: 'TOPICDESK_DATA_DIR=/srv/td' }),
      (err: Error) => err.message.includes('uses TOPICDESK_DATA_DIR=/srv/td;'),
      'it names the directory the way the operator set it',
    );
    assert.deepEqual(await query(server.url, 'SELECT 1 AS ok'), [{ ok: 1 }], 'the running server is untouched');
  });

  it('attaches to the running server with attachIfRunning, and leaves it running on stop', async () => {
    const owner = await start();
    const attached = await startEmbeddedPostgres({ dir, port: await freePort(), attachIfRunning: true });
    assert.equal(attached.url, owner.url, 'it connects to the running server, on its port');
    assert.deepEqual(await query(attached.url, 'SELECT current_database() AS db'), [{ db: 'topicdesk' }]);
    await attached.stop();
    assert.deepEqual(await query(owner.url, 'SELECT 1 AS ok'), [{ ok: 1 }], 'the owner still runs');
  });

  it('starts normally with attachIfRunning when nothing runs', async () => {
    const server = await start({ attachIfRunning: true });
    assert.deepEqual(await query(server.url, 'SELECT 1 AS ok'), [{ ok: 1 }]);
    await server.stop();
    assert.ok(await refusesConnections(server.adminUrl), 'it owned the server, so stop() stopped it');
  });

  it('creates a database of another name on request', async () => {
    const server = await startEmbeddedPostgres({ dir, port, fast: true, database: 'other_db' });
    running.push(server);
    assert.deepEqual(await query(server.url, 'SELECT current_database() AS db'), [{ db: 'other_db' }]);
  });

  it('starts over a stale postmaster.pid whose pid now belongs to another process', async () => {
    // After a crash the lock file stays; its pid may since have been reused (here: by us).
    const pidFile = path.join(pgData, 'postmaster.pid');
    writeFileSync(pidFile, `${process.pid}\n${pgData}\n0\n${port}\n\n127.0.0.1\n`);
    try {
      const server = await start();
      assert.deepEqual(await query(server.url, 'SELECT v FROM kept'), [{ v: 'survives restarts' }]);
      assert.notEqual(postmasterPid(pgData), process.pid);
    } finally {
      if (existsSync(pidFile) && postmasterPid(pgData) === process.pid) rmSync(pidFile);
    }
  });

  it('fails with a clear error naming the port when the port is taken', async () => {
    const blocker = net.createServer();
    const taken = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)));
    try {
      await assert.rejects(start({ port: taken }), (err: Error) => {
        assert.match(err.message, new RegExp(`port ${taken}`));
        assert.match(err.message, /EMBEDDED_PG_PORT/);
        return true;
      });
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    assert.equal(existsSync(path.join(pgData, 'postmaster.pid')), false, 'no server was left running');
  });

  /** /proc/<pid>/stat: "pid (comm) state ppid pgrp …" */
  function processGroup(pid: number): number {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  }

  it('runs the server in its own process group when detached, so a terminal\'s Ctrl-C reaches only its owner', async function () {
    if (!existsSync('/proc/self/stat')) this.skip();
    await start({ detached: true });
    const pid = postmasterPid(pgData);
    assert.equal(processGroup(pid), pid);
    assert.notEqual(processGroup(pid), processGroup(process.pid));
  });

  it('by default shares our process group, so a Ctrl-C that kills us stops it too', async function () {
    if (!existsSync('/proc/self/stat')) this.skip();
    await start();
    assert.equal(processGroup(postmasterPid(pgData)), processGroup(process.pid));
  });

  it('stops the server when its owner calls process.exit without stopping it', async () => {
    const script = `
      const { startEmbeddedPostgres } = await import(${JSON.stringify(new URL('../../src/db/embedded-postgres.ts', import.meta.url).href)});
      await startEmbeddedPostgres({ dir: ${JSON.stringify(dir)}, port: ${port}, fast: true, detached: true });
      process.exit(3);`;
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
      child.on('close', (c) => resolve(c));
    });
    assert.equal(code, 3);
    try {
      await waitFor('the orphaned server to stop', () => !existsSync(path.join(pgData, 'postmaster.pid')), 20_000);
    } catch (err) {
      // Do not leave the orphan running (it is our child's child): stop it by its pid.
      const pid = postmasterPid(pgData);
      if (isAlive(pid)) process.kill(pid, 'SIGINT');
      await waitFor('the orphan to stop', () => !isAlive(pid), 20_000);
      throw err;
    }
    const server = await start();
    assert.deepEqual(await query(server.url, 'SELECT v FROM kept'), [{ v: 'survives restarts' }], 'and it shut down cleanly');
  });

  describe('a server another process started', () => {
    it('is stopped when the topicdesk that started it was killed (kill -9), and the start goes on', async () => {
      const { child, postgresPid } = await startOwner();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      assert.equal(hasEnded(postgresPid), false, 'the killed owner left its server running (an orphan)');

      const warnings: string[] = [];
      const server = await startEmbeddedPostgres({ dir, port, fast: true, onWarning: (m) => warnings.push(m) });
      running.push(server);
      assert.equal(hasEnded(postgresPid), true, 'the orphan was stopped');
      assert.notEqual(postmasterPid(pgData), postgresPid, 'a server of our own runs now');
      assert.deepEqual(await query(server.url, 'SELECT v FROM kept'), [{ v: 'survives restarts' }]);
      assert.equal(warnings.length, 1);
      assert.ok(warnings[0].includes(`pid ${postgresPid}`) && warnings[0].includes(`topicdesk pid ${child.pid}`), warnings[0]);
    });

    it('is left alone while the topicdesk that started it lives: refused, naming its pid and the directory as configured', async () => {
      const { child, postgresPid } = await startOwner();
      await assert.rejects(
        startEmbeddedPostgres({ dir, port: await freePort(), configuredAs: 'TOPICDESK_DATA_DIR=/srv/td' }),
        (err: Error) => {
          assert.match(err.message, /already running/);
          assert.ok(err.message.includes(`(pid ${postgresPid})`), err.message);
          assert.ok(err.message.includes(`topicdesk pid ${child.pid} uses TOPICDESK_DATA_DIR=/srv/td;`), err.message);
          return true;
        },
      );
      assert.equal(hasEnded(postgresPid), false, 'the server was not touched');
      assert.equal(postmasterPid(pgData), postgresPid);
    });

    it('is left alone when no topicdesk marked it (an older version, or started by hand): refused, with the pid to stop', async function () {
      if (!existsSync('/proc/self/stat')) this.skip();
      // A postmaster started as topicdesk did before it marked its owner on the command line.
      const { postgres } = await import(`@embedded-postgres/${os.platform()}-${os.arch()}`) as { postgres: string };
      const as = isRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) } : {};
      const legacy = spawn(postgres, ['-D', pgData, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='], { ...as, stdio: 'ignore', detached: true });
      try {
        await waitFor('the unmarked server to start', () => existsSync(path.join(pgData, 'postmaster.pid')) && postmasterPid(pgData) === legacy.pid, 30_000);
        await assert.rejects(startEmbeddedPostgres({ dir, port: await freePort(), configuredAs: 'TOPICDESK_DATA_DIR=/srv/td' }), (err: Error) => {
          assert.match(err.message, /already running/);
          assert.ok(err.message.includes(`if no topicdesk uses TOPICDESK_DATA_DIR=/srv/td, stop it with kill -INT ${legacy.pid}`), err.message);
          return true;
        });
        assert.equal(hasEnded(legacy.pid!), false, 'it was not touched');
      } finally {
        legacy.kill('SIGINT');
        await waitFor('the unmarked server to stop', () => legacy.exitCode !== null || legacy.signalCode !== null, 30_000);
      }
    });
  });

  describe('as root', () => {
    before(function () { if (!isRoot) this.skip(); });

    it('runs the server as the postgres user, which owns the data directory', async () => {
      await start();
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      assert.equal(statSync(pgData).uid, uid, 'the data directory belongs to postgres');
      assert.equal(statSync(pgData).mode & 0o777, 0o700);
      const status = readFileSync(`/proc/${postmasterPid(pgData)}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s`, 'm'), 'the postmaster runs as postgres');
      const secret = statSync(path.join(dir, 'embedded-pg.secret'));
      assert.equal(secret.mode & 0o777, 0o600, 'the password file is private');
      assert.equal(secret.uid, 0, 'and readable only by the user running topicdesk');
    });

    it('explains the problem when the postgres user cannot reach the data directory', async () => {
      const hidden = path.join(tmp, 'private');
      mkdirSync(hidden, { mode: 0o700 });
      chmodSync(hidden, 0o700);
      await assert.rejects(start({ dir: path.join(hidden, 'cluster'), port: await freePort() }), (err: Error) => {
        assert.match(err.message, /could not initialise embedded PostgreSQL/);
        assert.match(err.message, /postgres user must be able to reach/);
        return true;
      });
    });
  });
});
