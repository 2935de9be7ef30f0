/**
 * `kill -9` of the real service on its embedded PostgreSQL, with the test acting as the
 * supervisor (systemd, Docker, …) that restarts it: the PostgreSQL the killed topicdesk leaves
 * running (its own process group) must not block the restart, and idempotent retrying clients
 * must end with exactly one ticket per Idempotency-Key.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { hasEnded } from '../../src/db/postmaster-owner.js';
import { baseEnv, ROOT, startMain, type MainProcess } from '../helpers/main-process.js';
import { freePort, stopLeftover, waitFor } from '../helpers/process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/topicdesk.js', ...args], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('kill -9 of the service on its embedded PostgreSQL, restarted by a supervisor', function () {
  this.timeout(120_000);
  let dataDir: string;
  let pgData: string;
  let env: NodeJS.ProcessEnv;
  let base: string;
  const started: MainProcess[] = [];

  const postgresPid = () => Number(readFileSync(path.join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const isUp = (p: MainProcess) => p.lines.some((l) => /listening/.test(l.msg));

  /** Like a supervisor's start: in a process group of its own, as a service runs. */
  function start(extra: Record<string, string> = {}): MainProcess {
    const p = startMain({ ...env, ...extra }, { detached: true });
    started.push(p);
    return p;
  }

  /** kill -9 of topicdesk's whole process group (node and whatever it runs in it). */
  async function killHard(p: MainProcess): Promise<void> {
    process.kill(-p.child.pid!, 'SIGKILL');
    await p.exited;
  }

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'topicdesk-crash-'));
    chmodSync(dataDir, 0o755); // under root the postgres user must reach it
    pgData = path.join(dataDir, 'postgres', 'pg');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // A fixed HTTP port, so clients find each restarted service at the same address.
    env = baseEnv({ PORT: String(port), HOST: '127.0.0.1', TOPICDESK_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()), LOG_LEVEL: 'info' });
  });
  afterEach(async () => {
    for (const p of started.splice(0)) {
      if (!p.hasExited()) {
        p.child.kill('SIGTERM'); // it stops its PostgreSQL, then exits
        await Promise.race([p.exited, sleep(20_000)]);
        if (!p.hasExited()) await killHard(p);
      }
    }
    await stopLeftover(pgData); // never leave a postgres behind, orphan or not
  });
  after(() => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('restarts after kill -9 by stopping the PostgreSQL the killed one left; a second topicdesk while one lives is refused, naming TOPICDESK_DATA_DIR as set', async () => {
    const first = start();
    await first.listening(60_000);
    const orphan = postgresPid();
    await killHard(first);
    assert.equal(hasEnded(orphan), false, 'the killed topicdesk left its PostgreSQL running');

    const second = start();
    await second.listening(60_000);
    assert.equal(hasEnded(orphan), true, 'the restart stopped the orphan');
    assert.notEqual(postgresPid(), orphan, 'and runs a PostgreSQL of its own');
    const warning = second.lines.find((l) => l.level === 40 && /left running by topicdesk pid/.test(l.msg));
    assert.ok(warning, 'it says it stopped an orphan');
    assert.ok(warning.msg.includes(`pid ${orphan}`) && warning.msg.includes(`topicdesk pid ${first.child.pid}`), warning.msg);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);

    const third = start({ PORT: '0' });
    const { code } = await third.exited;
    assert.equal(code, 1);
    const lines = third.stderr().split('\n').filter(Boolean);
    assert.equal(lines.length, 1, third.stderr());
    assert.match(lines[0], /already running/);
    assert.ok(lines[0].includes(`topicdesk pid ${second.child.pid} uses TOPICDESK_DATA_DIR=${dataDir};`), lines[0]);
    assert.ok(!lines[0].includes(`TOPICDESK_DATA_DIR=${path.join(dataDir, 'postgres')}`), 'not the subdirectory it keeps PostgreSQL in');
    assert.equal((await fetch(`${base}/readyz`)).status, 200, 'the live one is untouched');

    second.child.kill('SIGTERM');
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    assert.equal(existsSync(path.join(pgData, 'postmaster.pid')), false, 'it stopped its PostgreSQL');
  });

  it('under idempotent retrying load, three kill -9: comes back every time, one ticket per key, none lost', async () => {
    const KEYS = 240;
    const WORKERS = 6;
    const KILLS = 3;

    // The supervisor: start; when it dies, start again (a real one would back off a little).
    let supervising = true;
    let current = start();
    let failedStart: string | null = null;
    const supervisor = (async () => {
      while (supervising) {
        const p = current;
        await p.exited;
        if (!supervising) break;
        if (!isUp(p)) { failedStart = p.stderr().trim() || p.stdout().slice(-500); break; }
        await sleep(100);
        current = start();
      }
    })();
    await current.listening(60_000);

    const cli = await runCli(['keys', 'create', '--name', 'crash-load', '--scopes', 'all', '--rate-limit', '100000', '--json'], env);
    assert.equal(cli.code, 0, cli.stderr);
    const auth = { Authorization: `Bearer ${JSON.parse(cli.stdout).token}`, 'Content-Type': 'application/json' };

    /**
     * POST until a 2xx, as a careful client does: the same Idempotency-Key on every retry, after
     * a connection error, a 5xx or "still in progress". Anything else fails the test.
     */
    let retries = 0;
    async function post(pathname: string, key: string, body: unknown): Promise<{ status: number; body: any; replayed: boolean }> {
      for (;;) {
        if (failedStart !== null) throw new Error(`the service did not come back: ${failedStart}`);
        let res: Response;
        let text: string;
        try {
          res = await fetch(`${base}${pathname}`, { method: 'POST', headers: { ...auth, 'Idempotency-Key': key }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
          text = await res.text();
        } catch {
          retries++; // refused, reset or cut off by the kill
          await sleep(50);
          continue;
        }
        if (res.status >= 200 && res.status < 300) return { status: res.status, body: JSON.parse(text), replayed: res.headers.get('idempotent-replayed') === 'true' };
        if (res.status >= 500 || (res.status === 409 && text.includes('idempotency_key_in_progress'))) {
          retries++;
          await sleep(50);
          continue;
        }
        throw new Error(`POST ${pathname} (${key}) answered ${res.status}: ${text}`);
      }
    }

    const contact = await post('/v1/contacts', 'crash-contact', { email: 'crash-load@example.com' });
    const run = Date.now().toString(36);
    const keys = Array.from({ length: KEYS }, (_, i) => `crash-${run}-${i}`);
    const ids = new Map<string, Set<string>>(); // every ticket id each key was ever answered with
    let done = 0;
    let next = 0;
    const workers = Array.from({ length: WORKERS }, async () => {
      while (next < keys.length) {
        const key = keys[next++];
        const r = await post('/v1/tickets', key, { contact_id: contact.body.id, subject: key });
        if (!ids.has(key)) ids.set(key, new Set());
        ids.get(key)!.add(r.body.id);
        done++;
      }
    });

    // The faults: kill -9 while requests are in flight, at a quarter, half and three quarters of the way.
    let kills = 0;
    const killer = (async () => {
      for (let k = 1; k <= KILLS; k++) {
        await waitFor(`${k}/${KILLS + 1} of the tickets`, () => failedStart !== null || (done >= (KEYS * k) / (KILLS + 1) && isUp(current) && !current.hasExited()), 60_000);
        if (failedStart !== null) return;
        await killHard(current);
        kills++;
      }
    })();

    try {
      await Promise.all([...workers, killer]);
    } finally {
      supervising = false;
    }
    assert.equal(failedStart, null, `a restart failed: ${failedStart}`);
    assert.equal(kills, KILLS);
    const services = started.slice(-(KILLS + 1));
    assert.equal(services.length, KILLS + 1);
    assert.ok(services.every(isUp), 'the service came back after every kill, on the first start');
    for (const p of services.slice(1)) {
      assert.ok(p.lines.some((l) => l.level === 40 && /left running by topicdesk pid/.test(l.msg)), 'each restart stopped the orphaned PostgreSQL');
    }
    assert.ok(retries > 0, 'the kills did hit requests in flight');

    // Each key: one ticket, the same one on every answer, and on a replay now.
    for (const key of keys) assert.equal(ids.get(key)?.size, 1, `${key}: ${[...(ids.get(key) ?? [])].join(', ')}`);
    for (let i = 0; i < keys.length; i += WORKERS) {
      await Promise.all(keys.slice(i, i + WORKERS).map(async (key) => {
        const r = await post('/v1/tickets', key, { contact_id: contact.body.id, subject: key });
        assert.equal(r.replayed, true, key);
        assert.equal(r.body.id, [...ids.get(key)!][0], `${key} replays its ticket`);
      }));
    }
    // And in the database: exactly one ticket per key, the one the client was given.
    const password = readFileSync(path.join(dataDir, 'postgres', 'embedded-pg.secret'), 'utf8').trim();
    const db = new pg.Client({ connectionString: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${env.EMBEDDED_PG_PORT}/topicdesk` });
    await db.connect();
    try {
      const { rows } = await db.query<{ subject: string; n: number; id: string }>(
        `SELECT subject, count(*)::int AS n, min(id) AS id FROM tickets WHERE subject LIKE $1 GROUP BY subject`, [`crash-${run}-%`]);
      assert.equal(rows.length, KEYS, 'no key lost');
      assert.deepEqual(rows.filter((r) => r.n !== 1), [], 'no key duplicated');
      for (const r of rows) assert.equal(r.id, [...ids.get(r.subject)!][0]);
    } finally {
      await db.end();
    }

    const last = current;
    last.child.kill('SIGTERM');
    assert.deepEqual(await last.exited, { code: 0, signal: null });
    await supervisor;
  });
});
