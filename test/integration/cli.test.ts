import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ALL_SCOPES } from '../../src/kernel/scopes.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const BIN = fileURLToPath(new URL('../../bin/topicdesk.js', import.meta.url));
const DAY = 86_400_000;

interface Run { code: number | null; stdout: string; stderr: string }

/** `node bin/topicdesk.js …args` as an operator would run it (NODE_ENV unset, LOG_LEVEL=warn). */
function topicdesk(databaseUrl: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...env };
  delete childEnv.NODE_ENV;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertSucceeded(r: Run): void {
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  assert.equal(r.stderr, '');
}

/** The contract for every CLI failure: exit code 1 and exactly one `topicdesk: …` line on stderr. */
function assertFailed(r: Run, message: RegExp): void {
  assert.equal(r.code, 1, `exit ${r.code}; stdout: ${r.stdout}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n');
  assert.equal(lines.at(-1), '', 'stderr ends with a newline');
  assert.equal(lines.length, 2, `exactly one line on stderr, got: ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0], /^topicdesk: \S/);
  assert.match(lines[0], message);
  assert.doesNotMatch(lines[0], /insert into|select |returning|\bat .*:\d+:\d+/i, 'no SQL or stack in the message');
}

const json = (r: Run) => {
  assertSucceeded(r);
  assert.equal(r.stdout.trimEnd().split('\n').length, 1, 'one line of JSON');
  return JSON.parse(r.stdout);
};

describe('topicdesk CLI', function () {
  this.timeout(120_000);
  const db = useTestDatabase();
  let t: TestApp;
  const run = (...args: string[]) => topicdesk(db.current.url, args);
  const keyCount = async () => Number((await db.knex('api_keys').count({ n: '*' }))[0].n);
  before(() => { t = createTestApp(db.knex); });

  describe('keys create', () => {
    it('prints {id, token, scopes, workspace_id, mode} with --json, and the token works on /v1/me', async () => {
      const out = json(await run('keys', 'create', '--name', 'first key', '--scopes', 'all', '--json'));
      assert.deepEqual(Object.keys(out).sort(), ['id', 'mode', 'scopes', 'token', 'workspace_id']);
      assert.match(out.id, /^key_[0-9A-Z]{26}$/);
      assert.match(out.token, /^td_live_[0-9A-Za-z]{46}$/);
      assert.deepEqual(out.scopes, [...ALL_SCOPES]);
      assert.equal(out.workspace_id, 'ws_default');
      assert.equal(out.mode, 'live');
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${out.token}`).expect(200);
      assert.equal(me.body.id, out.id);
      assert.equal(me.body.name, 'first key');
      assert.equal(me.body.expires_at, null);
      assert.deepEqual(me.body.rate_limit, { limit: 600, window_seconds: 60 });
    });

    it('prints the token once, with a warning, without --json', async () => {
      const r = await run('keys', 'create', '--name', 'plain', '--scopes', 'read:tickets');
      assertSucceeded(r);
      const tokens = r.stdout.match(/td_live_[0-9A-Za-z]{46}/g) ?? [];
      assert.equal(tokens.length, 1);
      assert.match(r.stdout, /shown once/i);
      await t.request.get('/v1/me').set('Authorization', `Bearer ${tokens[0]}`).expect(200);
    });

    it('grants exactly the scopes listed in --scopes', async () => {
      const out = json(await run('keys', 'create', '--name', 'narrow', '--scopes', 'read:tickets,manage:keys', '--json'));
      assert.deepEqual(out.scopes, ['read:tickets', 'manage:keys']);
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${out.token}`).expect(200);
      assert.deepEqual(me.body.scopes, ['read:tickets', 'manage:keys']);
      const refused = await t.request.patch('/v1/workspace').set('Authorization', `Bearer ${out.token}`).send({ daily_send_limit: 5 }).expect(403);
      assert.equal(refused.body.required_scope, 'manage:settings');
    });

    it('makes a td_test_ key in a sandbox workspace made with workspaces create --sandbox', async () => {
      const ws = json(await run('workspaces', 'create', '--name', 'Staging', '--sandbox', '--json'));
      assert.match(ws.id, /^ws_[0-9A-Z]{26}$/);
      assert.equal(ws.name, 'Staging');
      assert.equal(ws.mode, 'sandbox');
      const out = json(await run('keys', 'create', '--name', 'staging key', '--scopes', 'all', '--workspace', ws.id, '--json'));
      assert.equal(out.mode, 'test');
      assert.equal(out.workspace_id, ws.id);
      assert.match(out.token, /^td_test_[0-9A-Za-z]{46}$/);
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${out.token}`).expect(200);
      assert.equal(me.body.mode, 'test');
      assert.deepEqual(me.body.workspace, { id: ws.id, name: 'Staging', mode: 'sandbox' });
    });

    it('makes a live workspace without --sandbox, and --workspace default means ws_default', async () => {
      const ws = json(await run('workspaces', 'create', '--name', 'Second live', '--json'));
      assert.equal(ws.mode, 'live');
      const live = json(await run('keys', 'create', '--name', 'l', '--scopes', 'all', '--workspace', ws.id, '--json'));
      assert.equal(live.mode, 'live');
      const dflt = json(await run('keys', 'create', '--name', 'd', '--scopes', 'all', '--workspace', 'default', '--json'));
      assert.equal(dflt.workspace_id, 'ws_default');
    });

    it('sets expires_at about 30 days out with --expires-in 30d', async () => {
      const started = Date.now();
      const out = json(await run('keys', 'create', '--name', 'expiring', '--scopes', 'all', '--expires-in', '30d', '--json'));
      const finished = Date.now();
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${out.token}`).expect(200);
      const at = Date.parse(me.body.expires_at);
      assert.ok(at >= started + 30 * DAY && at <= finished + 30 * DAY, me.body.expires_at);
      const hours = json(await run('keys', 'create', '--name', 'short', '--scopes', 'all', '--expires-in', '12h', '--json'));
      const row = await db.knex('api_keys').where({ id: hours.id }).first();
      assert.ok(Math.abs(row.expires_at.getTime() - (Date.now() + 12 * 3_600_000)) < 5 * 60_000);
    });

    it('sets a per-key rate limit with --rate-limit', async () => {
      const out = json(await run('keys', 'create', '--name', 'slow', '--scopes', 'all', '--rate-limit', '5', '--json'));
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${out.token}`).expect(200);
      assert.deepEqual(me.body.rate_limit, { limit: 5, window_seconds: 60 });
    });
  });

  describe('keys list and revoke', () => {
    it('lists the workspace\'s keys as JSON, without tokens', async () => {
      const made = json(await run('keys', 'create', '--name', 'listed', '--scopes', 'read:tickets', '--json'));
      const listed = json(await run('keys', 'list', '--json'));
      assert.ok(Array.isArray(listed));
      const item = listed.find((k: { id: string }) => k.id === made.id);
      assert.ok(item, 'the new key is listed');
      assert.equal(item.name, 'listed');
      assert.equal(item.status, 'active');
      assert.equal(item.token_prefix, made.token.slice(0, 12));
      assert.ok(listed.every((k: { workspace_id: string; token?: string }) => k.workspace_id === 'ws_default' && k.token === undefined));
      const raw = (await run('keys', 'list', '--json')).stdout;
      assert.ok(!raw.includes(made.token.slice(12)), 'no token in the listing');
    });

    it('lists another workspace\'s keys with --workspace, and prints a table without --json', async () => {
      const ws = json(await run('workspaces', 'create', '--name', 'Listed', '--sandbox', '--json'));
      const made = json(await run('keys', 'create', '--name', 'in sandbox', '--scopes', 'all', '--workspace', ws.id, '--json'));
      const listed = json(await run('keys', 'list', '--workspace', ws.id, '--json'));
      assert.deepEqual(listed.map((k: { id: string }) => k.id), [made.id]);
      assert.equal(listed[0].mode, 'test');
      const table = await run('keys', 'list', '--workspace', ws.id);
      assertSucceeded(table);
      assert.match(table.stdout, new RegExp(`^${made.id}\\tactive\\ttd_test_`, 'm'));
    });

    it('revokes a key by id: its token then gets 401, and the list shows it revoked', async () => {
      const made = json(await run('keys', 'create', '--name', 'doomed', '--scopes', 'all', '--json'));
      await t.request.get('/v1/me').set('Authorization', `Bearer ${made.token}`).expect(200);
      const r = await run('keys', 'revoke', made.id);
      assertSucceeded(r);
      assert.match(r.stdout, new RegExp(`revoked ${made.id}`));
      const refused = await t.request.get('/v1/me').set('Authorization', `Bearer ${made.token}`).expect(401);
      assert.equal(refused.body.code, 'unauthorized');
      const listed = json(await run('keys', 'list', '--json'));
      assert.equal(listed.find((k: { id: string }) => k.id === made.id).status, 'revoked');
    });

    it('revokes a key of any workspace by its id alone', async () => {
      const ws = json(await run('workspaces', 'create', '--name', 'Elsewhere', '--sandbox', '--json'));
      const made = json(await run('keys', 'create', '--name', 'far away', '--scopes', 'all', '--workspace', ws.id, '--json'));
      assertSucceeded(await run('keys', 'revoke', made.id));
      await t.request.get('/v1/me').set('Authorization', `Bearer ${made.token}`).expect(401);
    });

    it('lists workspaces as JSON', async () => {
      const listed = json(await run('workspaces', 'list', '--json'));
      assert.deepEqual(listed[0], { id: 'ws_default', name: 'Default', mode: 'live' });
      assert.ok(listed.some((w: { name: string; mode: string }) => w.name === 'Staging' && w.mode === 'sandbox'));
    });
  });

  describe('migrate, seed and help', () => {
    it('migrate says the database is up to date', async () => {
      const r = await run('migrate');
      assertSucceeded(r);
      assert.equal(r.stdout, 'database is up to date\n');
    });

    it('seed creates a demo sandbox workspace with a working key once, and says it already exists the second time', async () => {
      const first = await run('seed');
      assertSucceeded(first);
      const token = first.stdout.match(/td_test_[0-9A-Za-z]{46}/)?.[0];
      assert.ok(token, first.stdout);
      const me = await t.request.get('/v1/me').set('Authorization', `Bearer ${token}`).expect(200);
      assert.equal(me.body.mode, 'test');
      assert.deepEqual(me.body.scopes, [...ALL_SCOPES]);
      const before = await keyCount();
      const second = await run('seed');
      assertSucceeded(second);
      assert.match(second.stdout, new RegExp(`demo workspace ${me.body.workspace.id} already exists`));
      assert.doesNotMatch(second.stdout, /td_test_/);
      assert.equal(await keyCount(), before);
      const demos = await db.knex('workspaces').where({ name: 'Demo (sandbox)' });
      assert.equal(demos.length, 1);
    });

    it('prints the usage and exits 0 with --help', async () => {
      const r = await run('--help');
      assertSucceeded(r);
      assert.match(r.stdout, /^usage: topicdesk/);
      assert.match(r.stdout, /keys create --name NAME --scopes/);
    });
  });

  describe('help, version and command lists (answered without a database)', () => {
    // An unreachable database: help must not need one.
    const offline = (...args: string[]) => topicdesk('postgres://nobody@127.0.0.1:1/none', args);
    const COMMANDS: [name: string, options: string[]][] = [
      ['migrate', []],
      ['seed', []],
      ['workspaces create', ['--name NAME', '--sandbox', '--json']],
      ['workspaces list', ['--json']],
      ['keys create', ['--name NAME', '--scopes a,b,c|all', '--workspace ID|default', '--expires-in 30d', '--rate-limit N', '--json']],
      ['keys list', ['--workspace ID|default', '--json']],
      ['keys revoke', ['--workspace ID|default', '--json']],
    ];

    it('prints the version from package.json with --version', async () => {
      const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
      const r = await offline('--version');
      assertSucceeded(r);
      assert.equal(r.stdout, `topicdesk ${version}\n`);
    });

    for (const [name, options] of COMMANDS) {
      it(`topicdesk ${name} --help prints its usage and each option`, async () => {
        const r = await offline(...name.split(' '), '--help');
        assertSucceeded(r);
        assert.match(r.stdout, new RegExp(`^usage: topicdesk ${name}( |\n)`));
        for (const o of options) assert.ok(r.stdout.includes(`  ${o}`), `${o} in ${r.stdout}`);
        assert.match(r.stdout, /--help +show this help/);
      });
    }

    it('takes --help anywhere after the command, even next to a bad option', async () => {
      const r = await offline('keys', 'create', '--colour', 'red', '--help');
      assertSucceeded(r);
      assert.match(r.stdout, /^usage: topicdesk keys create --name NAME/);
    });

    for (const [group, commands] of [['keys', ['create', 'list', 'revoke']], ['workspaces', ['create', 'list']]] as const) {
      it(`topicdesk ${group} lists its commands, one line each: exit 0 with --help, 1 without`, async () => {
        const listed = (r: Run) => r.stdout.split('\n').filter((l) => l.startsWith(`  ${group} `));
        const help = await offline(group, '--help');
        assertSucceeded(help);
        assert.deepEqual(listed(help).map((l) => l.trim().split(/\s+/)[1]), [...commands]);
        assert.ok(listed(help).every((l) => /\S {2,}\S/.test(l.trim())), 'each with a summary');
        const alone = await offline(group);
        assertFailed(alone, new RegExp(`${group} needs a command: ${commands.join(', ')}`));
        assert.equal(alone.stdout, help.stdout);
      });
    }

    it('lists every command with --help', async () => {
      const r = await offline('--help');
      assertSucceeded(r);
      for (const [name] of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${name} +\\S`, 'm'));
    });
  });

  describe('failures: exit code 1 and one line on stderr', () => {
    const missingDatabase = (url: string) => {
      const u = new URL(url);
      u.pathname = '/td_no_such_database';
      return { DATABASE_URL: u.toString() };
    };
    const cases: [title: string, args: string[], message: RegExp, env?: Record<string, string> | ((url: string) => Record<string, string>)][] = [
      ['no command at all', [], /no command given/],
      ['an unknown command', ['launch', 'rockets'], /unknown command "launch rockets"/],
      ['a group without an action', ['keys'], /keys needs a command: create, list, revoke/],
      ['an unknown command in a group', ['keys', 'rotate'], /unknown command "keys rotate" \(topicdesk keys --help/],
      ['an unknown option', ['keys', 'create', '--name', 'x', '--scopes', 'all', '--colour', 'red'], /^topicdesk: unknown option --colour; usage: topicdesk keys create --name NAME --scopes/],
      ['an option another command has', ['workspaces', 'list', '--scopes', 'all'], /^topicdesk: unknown option --scopes; usage: topicdesk workspaces list \[--json\]$/],
      ['an option before the command', ['--json', 'keys', 'list'], /unknown option --json: options come after the command/],
      ['an option without its value', ['keys', 'create', '--scopes', 'all', '--name'], /^topicdesk: option --name needs a value; usage: topicdesk keys create/],
      ['a value for a flag', ['keys', 'list', '--json=yes'], /option --json takes no value/],
      ['an extra argument', ['keys', 'list', 'everything'], /unexpected argument "everything"/],
      ['keys create without --name', ['keys', 'create', '--scopes', 'all'], /needs --name/],
      ['keys create without --scopes', ['keys', 'create', '--name', 'x'], /needs --scopes/],
      ['an unknown scope', ['keys', 'create', '--name', 'x', '--scopes', 'read:tickets,read:everything'], new RegExp(`unknown scope: read:everything; valid scopes: all, ${ALL_SCOPES.join(', ')}$`)],
      ['an unknown scope next to all', ['keys', 'create', '--name', 'x', '--scopes', 'all,tickets:read'], /unknown scope: tickets:read/],
      ['an empty scope list', ['keys', 'create', '--name', 'x', '--scopes', ','], /at least one scope/],
      ['a malformed --expires-in', ['keys', 'create', '--name', 'x', '--scopes', 'all', '--expires-in', '30x'], /--expires-in must look like 30d/],
      ['a zero --expires-in', ['keys', 'create', '--name', 'x', '--scopes', 'all', '--expires-in', '0d'], /--expires-in/],
      ['an absurdly long --expires-in', ['keys', 'create', '--name', 'x', '--scopes', 'all', '--expires-in', '99999999d'], /--expires-in/],
      ['a bad --rate-limit', ['keys', 'create', '--name', 'x', '--scopes', 'all', '--rate-limit', 'fast'], /--rate-limit/],
      ['a key name over 100 characters', ['keys', 'create', '--name', 'n'.repeat(101), '--scopes', 'all'], /name must be 1-100 characters/],
      ['an unknown workspace for keys create', ['keys', 'create', '--name', 'x', '--scopes', 'all', '--workspace', 'ws_nope'], /Workspace not found/],
      ['an unknown workspace for keys list', ['keys', 'list', '--workspace', 'ws_nope'], /Workspace not found/],
      ['keys revoke of an unknown id', ['keys', 'revoke', 'key_01ARZ3NDEKTSV4RRFFQ69G5FAV'], /API key not found/],
      ['keys revoke without an id', ['keys', 'revoke'], /needs the key id/],
      ['workspaces create without --name', ['workspaces', 'create', '--sandbox'], /needs --name/],
      ['a blank workspace name', ['workspaces', 'create', '--name', '   '], /workspace name/],
      ['a DATABASE_URL that is not a URL', ['keys', 'list'], /DATABASE_URL/, { DATABASE_URL: 'not a url' }],
      ['an unreachable database', ['keys', 'list'], /ECONNREFUSED|connect/, { DATABASE_URL: 'postgres://operator:s3cret-pw@127.0.0.1:1/topicdesk' }],
      ['an unreachable database named by host name', ['keys', 'list'], /ECONNREFUSED|connect/, { DATABASE_URL: 'postgres://operator:s3cret-pw@localhost:1/topicdesk' }],
      ['a database that does not exist (a PostgreSQL error, summarised)', ['keys', 'list'], /^topicdesk: database error 3D000: database "td_no_such_database" does not exist$/, missingDatabase],
    ];
    const results = new Map<string, Run>();
    let keysBefore = 0;
    let workspacesBefore = 0;

    before(async () => {
      keysBefore = await keyCount();
      workspacesBefore = Number((await db.knex('workspaces').count({ n: '*' }))[0].n);
      // independent failures: run a few at a time
      for (let i = 0; i < cases.length; i += 6) {
        await Promise.all(cases.slice(i, i + 6).map(async ([title, args, , env]) => {
          results.set(title, await topicdesk(db.current.url, args, typeof env === 'function' ? env(db.current.url) : env));
        }));
      }
    });

    for (const [title, , message] of cases) {
      it(`fails cleanly on ${title}`, () => {
        assertFailed(results.get(title)!, message);
      });
    }

    it('never prints a database password in a failure', () => {
      for (const r of results.values()) assert.ok(!r.stderr.includes('s3cret-pw') && !r.stdout.includes('s3cret-pw'));
    });

    it('changes nothing in the database when a command fails', async () => {
      assert.equal(await keyCount(), keysBefore);
      assert.equal(Number((await db.knex('workspaces').count({ n: '*' }))[0].n), workspacesBefore);
    });
  });
});
