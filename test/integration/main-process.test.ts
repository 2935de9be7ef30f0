import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { baseEnv, ROOT, startMain as spawnMain, type MainProcess } from '../helpers/main-process.js';
import { freePort, isAlive, waitFor } from '../helpers/process.js';
import { createTestDatabase } from '../helpers/test-db.js';
import { startFakeBotApi } from '../helpers/fake-bot-api.js';

/** Every migration file: the service must apply them all. */
const MIGRATION_COUNT = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) => f.endsWith('.ts')).length;




const started: MainProcess[] = [];

function startMain(env: NodeJS.ProcessEnv, opts: { detached?: boolean; compiled?: boolean } = {}): MainProcess {
  const proc = spawnMain(env, opts);
  started.push(proc);
  return proc;
}

async function terminate(p: MainProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000) {
  p.child.kill(signal);
  const result = await Promise.race([
    p.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs)),
  ]);
  return result;
}

/** An empty, unmigrated database on the test server (dropped by the global teardown). */
const freshDatabaseUrl = async () => (await createTestDatabase({ empty: true })).url;

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/topicdesk.js', ...args], { cwd: ROOT, env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('main process', function () {
  this.timeout(60_000);

  afterEach(async () => {
    // Never leave a topicdesk running: kill what a failed test left behind (by pid).
    for (const p of started.splice(0)) {
      if (!p.hasExited()) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
  });

  describe('with DATABASE_URL', () => {
    it('as `npm start` runs it (compiled to dist/): migrates under the .ts names, so tsx and the build share a database', async () => {
      const databaseUrl = await freshDatabaseUrl();
      const env = baseEnv({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' });
      const compiled = startMain(env, { compiled: true });
      const url = await compiled.listening();
      const applied = compiled.lines.find((l) => l.msg === 'migrations applied')?.applied as string[] | undefined;
      assert.equal(applied?.length, MIGRATION_COUNT);
      assert.ok(applied.every((name) => name.endsWith('.ts')), applied.join(', '));
      assert.deepEqual(await getJson(`${url}/readyz`), { status: 200, body: { status: 'ok' } });
      // Files it reads by path at run time: config/ (the port, log level…), package.json (the version), dashboard assets.
      assert.equal((await getJson(`${url}/v1/openapi.json`)).body.info.version, JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
      const css = await fetch(`${url}/dashboard/assets/dashboard.css`);
      assert.equal(css.status, 200);
      assert.equal(await css.text(), readFileSync(path.join(ROOT, 'src/dashboard/assets/dashboard.css'), 'utf8'));
      assert.deepEqual(await terminate(compiled), { code: 0, signal: null });

      // The same database under tsx: nothing left to apply (and the migration list is not "corrupt").
      const tsx = startMain(env);
      await tsx.listening();
      assert.equal(tsx.lines.find((l) => l.msg === 'migrations applied'), undefined);
      assert.deepEqual(await terminate(tsx), { code: 0, signal: null });
    });

    it('migrates a fresh database, listens, answers /healthz and /readyz, and stops on SIGTERM', async () => {
      const p = startMain(baseEnv({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: await freshDatabaseUrl(), LOG_LEVEL: 'info' }));
      const url = await p.listening();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(url, 'http://127.0.0.1:0', 'it logs the port it actually got');
      const migrated = p.lines.find((l) => l.msg === 'migrations applied');
      assert.ok(migrated, 'it logged the migrations it applied');
      assert.equal((migrated.applied as string[]).length, MIGRATION_COUNT);
      assert.ok(p.lines.indexOf(migrated) < p.lines.findIndex((l) => /listening/.test(l.msg)), 'migrations run before it listens');

      assert.deepEqual(await getJson(`${url}/healthz`), { status: 200, body: { status: 'ok' } });
      assert.deepEqual(await getJson(`${url}/readyz`), { status: 200, body: { status: 'ok' } });

      const { code, signal } = await terminate(p);
      assert.equal(signal, null);
      assert.equal(code, 0);
      const msgs = p.lines.map((l) => l.msg);
      assert.ok(msgs.includes('shutting down'));
      assert.equal(msgs.at(-1), 'stopped', 'the last line says it stopped');
      assert.equal(p.stderr(), '');
      const password = decodeURIComponent(new URL(process.env.TOPICDESK_TEST_ADMIN_URL!).password);
      if (password) assert.ok(!p.stdout().includes(password), 'the database password is never logged');
    });

    it('starts two replicas at once on one unmigrated database: both come up, migrations run once', async () => {
      const databaseUrl = await freshDatabaseUrl();
      const env = baseEnv({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' });
      const a = startMain(env);
      const b = startMain(env);
      const [urlA, urlB] = await Promise.all([a.listening(), b.listening()]);
      assert.notEqual(urlA, urlB);
      for (const url of [urlA, urlB]) assert.equal((await getJson(`${url}/readyz`)).status, 200);

      const appliers = [a, b].filter((p) => p.lines.some((l) => l.msg === 'migrations applied'));
      assert.equal(appliers.length, 1, 'one replica applied the migrations, the other found nothing to do');
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        const { rows } = await c.query('SELECT name, count(*)::int AS n FROM knex_migrations GROUP BY name');
        assert.equal(rows.length, MIGRATION_COUNT);
        assert.ok(rows.every((r) => r.n === 1), 'each migration is recorded once');
      } finally {
        await c.end();
      }

      const results = await Promise.all([terminate(a), terminate(b)]);
      assert.deepEqual(results, [{ code: 0, signal: null }, { code: 0, signal: null }]);
    });

    it('stops cleanly when a terminal Ctrl-C sends SIGINT to its whole process group', async () => {
      const p = startMain(baseEnv({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: await freshDatabaseUrl(), LOG_LEVEL: 'info' }), { detached: true });
      const url = await p.listening();
      assert.equal((await getJson(`${url}/readyz`)).status, 200);
      process.kill(-p.child.pid!, 'SIGINT');
      const { code } = await Promise.race([p.exited, new Promise<never>((_, r) => setTimeout(() => r(new Error('no exit after SIGINT')), 10_000))]);
      assert.equal(code, 0);
      assert.equal(p.lines.at(-1)?.msg, 'stopped');
      assert.equal(p.lines.find((l) => l.msg === 'shutting down')?.signal, 'SIGINT');
    });
  });

  describe('the start-up line', () => {
    /** The one line saying what is on, once everything has started. */
    const upLine = (p: MainProcess) => waitFor('the "topicdesk is up" line', () => {
      if (p.hasExited()) throw new Error(`exited; stderr: ${p.stderr()}`);
      return p.lines.find((l) => /^topicdesk is up/.test(l.msg));
    }, 30_000);

    it('names the HTTP address, the docs, the external database without its password, no bots; warns about private webhook targets', async () => {
      const u = new URL(await freshDatabaseUrl());
      // trust authentication ignores it; the point is that it never reaches the log
      if (!u.password) u.password = 'never-logged-pw';
      const password = decodeURIComponent(u.password);
      const p = startMain(baseEnv({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: u.toString(), LOG_LEVEL: 'info', WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' }));
      const url = await p.listening();
      const line = await upLine(p);
      assert.equal(line.level, 30);
      assert.equal(line.http, url);
      assert.equal(line.docs, `${url}/docs`);
      assert.deepEqual(line.database, { kind: 'external', host: `${u.hostname}:${u.port || '5432'}`, database: u.pathname.slice(1) });
      assert.deepEqual(line.telegram, { mode: 'none', bots: [] });
      assert.equal(line.msg, `topicdesk is up: HTTP ${url}, docs ${url}/docs, database external (${u.hostname}:${u.port || '5432'}${u.pathname}), Telegram none`);
      const warning = p.lines.find((l) => l.level === 40 && /WEBHOOK_ALLOW_PRIVATE_TARGETS/.test(l.msg));
      assert.ok(warning, 'a warning says private webhook targets are allowed');
      assert.equal((await fetch(`${url}/docs`)).status, 200, 'the docs URL answers');
      assert.ok(!p.stdout().includes(password), 'no database password in the logs');
      await terminate(p);
    });

    it('names the bots and their mode (polling), never the bot token; no warning when private targets are not allowed', async () => {
      const fake = await startFakeBotApi({ limits: false });
      try {
        const bot = fake.addBot({ username: 'summary_bot', firstName: 'Summary' });
        const group = fake.addGroup({ title: 'Support' });
        fake.addBotToGroup(bot, group);
        const p = startMain(baseEnv({
          PORT: '0', HOST: '127.0.0.1', DATABASE_URL: await freshDatabaseUrl(), LOG_LEVEL: 'info',
          TELEGRAM_BOT_TOKEN: bot.token, TELEGRAM_SUPPORT_CHAT_ID: String(group.id), TELEGRAM_API_ROOT: fake.url,
        }));
        await p.listening();
        const line = await upLine(p);
        const telegram = line.telegram as { mode: string; bots: { account_id: string }[] };
        assert.equal(telegram.mode, 'polling');
        assert.equal(telegram.bots.length, 1);
        assert.match(telegram.bots[0].account_id, /^acc_/);
        assert.match(line.msg, /, Telegram 1 bot, polling$/);
        assert.ok(!p.lines.some((l) => /WEBHOOK_ALLOW_PRIVATE_TARGETS/.test(l.msg)), 'no warning');
        assert.ok(!p.stdout().includes(bot.token) && !p.stdout().includes(bot.token.split(':')[1]), 'the bot token is never logged');
        await terminate(p);
      } finally {
        await fake.close();
      }
    });
  });

  describe('start-up failures', () => {
    for (const [variable, value] of [['PORT', 'abc'], ['LOG_LEVEL', 'loud'], ['DATABASE_URL', 'http://x']] as const) {
      it(`exits 1 with one stderr line naming ${variable} when ${variable}=${value}`, async () => {
        const p = startMain(baseEnv({ PORT: '0', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', [variable]: value }));
        const { code } = await p.exited;
        assert.equal(code, 1);
        const lines = p.stderr().split('\n').filter(Boolean);
        assert.equal(lines.length, 1, `stderr: ${p.stderr()}`);
        assert.match(lines[0], new RegExp(`^topicdesk: configuration error: ${variable}\\b`));
        assert.equal(p.stdout(), '', 'nothing else is printed');
      });
    }

    it('exits 1 with one stderr line when the database is unreachable, without printing its password', async () => {
      const port = await freePort();
      const p = startMain(baseEnv({ PORT: '0', DATABASE_URL: `postgres://topicdesk:s3cr3t-pw@127.0.0.1:${port}/topicdesk`, LOG_LEVEL: 'info' }));
      const { code } = await p.exited;
      assert.equal(code, 1);
      const lines = p.stderr().split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `stderr: ${p.stderr()}`);
      assert.match(lines[0], /^topicdesk: .*(ECONNREFUSED|connect)/);
      assert.ok(!(p.stdout() + p.stderr()).includes('s3cr3t-pw'));
    });

    it('exits 1 with one stderr line when a migration fails, and applies none of it', async () => {
      const databaseUrl = await freshDatabaseUrl();
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        await c.query('CREATE TABLE workspaces (id int)'); // in the way of the first migration
        const p = startMain(baseEnv({ PORT: '0', DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' }));
        const { code } = await p.exited;
        assert.equal(code, 1);
        const lines = p.stderr().split('\n').filter(Boolean);
        assert.equal(lines.length, 1, `stderr: ${p.stderr()}`);
        assert.match(lines[0], /^topicdesk: migrations failed: migration 20261121000100_workspaces\.ts failed: relation "workspaces" already exists$/);
        const { rows } = await c.query('SELECT count(*)::int AS n FROM knex_migrations');
        assert.equal(rows[0].n, 0, 'the failed migration was rolled back');
      } finally {
        await c.end();
      }
    });

    it('exits 1 naming the address when the HTTP port is taken', async () => {
      const blocker = net.createServer();
      const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)));
      try {
        const p = startMain(baseEnv({ PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: await freshDatabaseUrl(), LOG_LEVEL: 'info' }));
        const { code } = await p.exited;
        assert.equal(code, 1);
        const lines = p.stderr().split('\n').filter(Boolean);
        assert.equal(lines.length, 1, `stderr: ${p.stderr()}`);
        assert.match(lines[0], new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
      } finally {
        await new Promise((r) => blocker.close(r));
      }
    });
  });

  describe('with the embedded PostgreSQL (no DATABASE_URL)', () => {
    let dataDir: string;
    let env: NodeJS.ProcessEnv;
    const pidFile = () => path.join(dataDir, 'postgres', 'pg', 'postmaster.pid');
    const postgresPid = () => (existsSync(pidFile()) ? Number(readFileSync(pidFile(), 'utf8').split('\n')[0]) : null);

    before(async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-main-'));
      chmodSync(dataDir, 0o755); // under root the postgres user must reach it
      env = baseEnv({ PORT: '0', HOST: '127.0.0.1', TOPICDESK_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()), LOG_LEVEL: 'info' });
    });
    afterEach(async () => {
      // A failed test may leave the database child behind: stop it (our own child's child, by pid).
      for (const p of started) if (!p.hasExited()) { p.child.kill('SIGTERM'); await p.exited; }
      const pid = postgresPid();
      if (pid && isAlive(pid) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') {
        process.kill(pid, 'SIGINT');
        await waitFor('the leftover postgres to exit', () => !isAlive(pid), 20_000);
      }
    });
    after(() => {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('stops cleanly on SIGTERM that arrives during start-up, leaving no database running', async () => {
      const p = startMain(env);
      await waitFor('start-up to begin', () => p.lines.some((l) => l.msg === 'starting embedded PostgreSQL'), 30_000);
      p.child.kill('SIGTERM');
      const { code, signal } = await Promise.race([p.exited, new Promise<never>((_, r) => setTimeout(() => r(new Error('no exit')), 45_000))]);
      assert.equal(signal, null, 'it handled the signal rather than dying of it');
      assert.equal(code, 0);
      assert.ok(!p.lines.some((l) => /listening/.test(l.msg)), 'it never started serving');
      assert.equal(p.lines.at(-1)?.msg, 'stopped');
      const pid = postgresPid();
      assert.ok(pid === null || !isAlive(pid), 'the embedded PostgreSQL was stopped too');
    });

    it('starts its own PostgreSQL, serves, stops it on SIGTERM or Ctrl-C, and finds its data after a restart', async function () {
      this.timeout(90_000);
      const first = startMain(env);
      const url = await first.listening(45_000);
      assert.deepEqual(await getJson(`${url}/readyz`), { status: 200, body: { status: 'ok' } });
      const pgPid = postgresPid();
      assert.ok(pgPid && isAlive(pgPid), 'a postgres child runs');

      // The CLI attaches to the running embedded server.
      const cli = await runCli(['keys', 'create', '--name', 'x', '--scopes', 'all', '--json'], env);
      assert.equal(cli.code, 0, cli.stderr);
      const key = JSON.parse(cli.stdout);
      assert.match(key.token, /^td_live_/);
      assert.equal((await getJson(`${url}/v1/me`, { Authorization: `Bearer ${key.token}` })).status, 200);

      const stopped = await terminate(first, 'SIGTERM', 20_000);
      assert.deepEqual(stopped, { code: 0, signal: null });
      assert.equal(first.lines.at(-1)?.msg, 'stopped');
      assert.equal(isAlive(pgPid), false, 'the postgres child is gone once topicdesk has exited');
      assert.equal(existsSync(pidFile()), false, 'and it shut down cleanly');

      // Run in its own process group, as `npm start` in a terminal is.
      const second = startMain(env, { detached: true });
      const url2 = await second.listening(45_000);
      const me = await getJson(`${url2}/v1/me`, { Authorization: `Bearer ${key.token}` });
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body.id, key.id, 'the key created before the restart is still there');
      assert.ok(!second.lines.some((l) => l.msg === 'migrations applied'), 'nothing left to migrate');

      // Ctrl-C: the terminal signals the whole foreground group. The database is not in it,
      // so it keeps serving while topicdesk drains, and topicdesk then stops it.
      const pgPid2 = postgresPid()!;
      process.kill(-second.child.pid!, 'SIGINT');
      const { code } = await Promise.race([second.exited, new Promise<never>((_, r) => setTimeout(() => r(new Error('no exit after Ctrl-C')), 20_000))]);
      assert.equal(code, 0);
      assert.equal(second.lines.at(-1)?.msg, 'stopped');
      assert.equal(isAlive(pgPid2), false, 'the postgres child is gone');
      assert.equal(existsSync(pidFile()), false);
    });
  });
});
