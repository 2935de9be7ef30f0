/**
 * The benchmarks' measuring stick (bench/limit.ts): the pgbench scripts it writes from captured
 * statements must run in pgbench and do what the statements did, or every ratio in the README
 * is measured against something else.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { captureStatements, checkReplay, findPgbench, pgbenchScript, withoutTransactionControl, type PgbenchScript, type Statement } from '../../bench/limit.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('bench/limit.ts: pgbench scripts from captured statements', () => {
  const db = useTestDatabase();
  const pgbench = findPgbench();
  let dir: string;

  before(() => {
    // .ci/run installs it (postgresql-client) when the machine lacks it.
    assert.ok(pgbench, 'pgbench is needed: install postgresql-client');
    dir = mkdtempSync(path.join(os.tmpdir(), 'bench-limit-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    await db.knex.raw('DROP TABLE IF EXISTS bench_probe');
    await db.knex.raw('CREATE TABLE bench_probe (n serial PRIMARY KEY, v text)');
  });

  /** Runs the script `transactions` times on one connection (-M extended, as the benchmarks do). */
  function runOnce(script: PgbenchScript, transactions = 1): void {
    const file = path.join(dir, 'script.sql');
    writeFileSync(file, script.text);
    const defines = Object.entries(script.defines).flatMap(([k, v]) => ['-D', `${k}=${v}`]);
    const r = spawnSync(pgbench!, ['-n', '-M', 'extended', '-c', '1', '-t', String(transactions), '-f', file, ...defines, db.current.url], { encoding: 'utf8' });
    assert.equal(r.status, 0, `pgbench failed: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /aborted|ERROR/);
  }
  const probed = async () => (await db.knex('bench_probe').orderBy('n').select('v')).map((r: { v: string }) => r.v);
  const insert = (value: string): Statement => ({ text: 'INSERT INTO bench_probe (v) VALUES ($1)', values: [value] });

  it("keeps a string literal's `:word` (a to_char format) and drops a comment's", async () => {
    const st: Statement = {
      text: `INSERT INTO bench_probe (v) -- why: a comment pgbench would read :variables in
             SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || E'\\\\:x' || 'it''s:y' || ' Статус:Открыт'`,
      values: ['2026-01-02 03:04:05+00'],
    };
    const script = pgbenchScript('t', [st], [st]);
    assert.deepEqual(script.warnings, []);
    runOnce(script);
    assert.deepEqual(await probed(), ['2026-01-02T03:04:05\\:xit\'s:y Статус:Открыт']);
  });

  it('writes long constants into the text (quotes, backslashes, colons and all) and the same value arrives', async () => {
    const long = `{"a":"it's","b":"back\\\\slash","c":null,"d":":word"}`.padEnd(5000, ' ');
    const script = pgbenchScript('t', [insert(long)], [insert(long)]);
    assert.deepEqual(script.defines, {}, 'not a -D argument');
    runOnce(script);
    assert.deepEqual(await probed(), [long]);
  });

  it('writes the constants of a statement with more than 255 parameters into its text', async () => {
    const values = Array.from({ length: 300 }, (_, i) => `v${i}`);
    const st: Statement = { text: `INSERT INTO bench_probe (v) VALUES ${values.map((_, i) => `($${i + 1})`).join(', ')}`, values };
    runOnce(pgbenchScript('t', [st], [st]));
    assert.deepEqual(await probed(), values);
  });

  it('sends a query of several statements as one pipeline, split only at semicolons of SQL', async () => {
    const st: Statement = { text: "INSERT INTO bench_probe (v) VALUES ('a;b'); INSERT INTO bench_probe (v) VALUES ($x$c;d$x$) -- e;f\n;", values: [] };
    const script = pgbenchScript('t', [st], [st]);
    assert.match(script.text, /\\startpipeline\n-- 1\n.*\n.*\n\\endpipeline/);
    runOnce(script);
    assert.deepEqual(await probed(), ['a;b', 'c;d']);
  });

  it('captures statements the service pipelined (a transaction\'s BEGIN and its first statement) and sends them as one pipeline', async () => {
    const pass = await captureStatements(() => db.knex.transaction(async (trx) => {
      await trx('bench_probe').insert({ v: 'in-tx' });
      await trx('bench_probe').insert({ v: 'after' });
    }));
    const shown = pass.statements.map((s) => `${s.text.split(' ')[0]}${s.pipelined ? '+' : ''}`);
    assert.deepEqual(shown, ['BEGIN;', 'insert+', 'insert', 'COMMIT;']);
    await db.knex('bench_probe').del();
    const script = pgbenchScript('t', pass.statements, pass.statements);
    assert.match(script.text, /\\startpipeline\n-- 1\nBEGIN;\n-- 2, pipelined\ninsert [^\n]*;\n\\endpipeline\n-- 3\ninsert/);
    runOnce(script);
    assert.deepEqual(await probed(), ['in-tx', 'after']);
  });

  it('a replay leaves out transaction control, and what followed a pipelined BEGIN starts no stray pipeline', async () => {
    const pass = await captureStatements(() => db.knex.transaction(async (trx) => {
      await trx('bench_probe').insert({ v: 'replayed' });
    }));
    const body = withoutTransactionControl(pass.statements);
    assert.deepEqual(body.map((s) => [s.text.split(' ')[0], s.pipelined ?? false]), [['insert', false]]);
    await db.knex('bench_probe').del();
    const script = pgbenchScript('t', body, body);
    assert.doesNotMatch(script.text, /pipeline/);
    runOnce(script);
    assert.deepEqual(await probed(), ['replayed']);
  });

  it('draws a value that differs between the captures anew per transaction, unless kept', async () => {
    const first = [insert('key-1'), insert('agent-a')];
    const second = [insert('key-2'), insert('agent-b')];
    const script = pgbenchScript('t', first, second, (v) => v.startsWith('agent-'));
    assert.equal(script.varying, 1);
    runOnce(script, 3);
    const rows = await probed();
    assert.equal(rows.filter((v) => v === 'agent-a').length, 3, 'the kept value, as the first capture sent it');
    const drawn = rows.filter((v) => v !== 'agent-a');
    assert.equal(drawn.length, 3);
    assert.ok(drawn.every((v) => /^\d+$/.test(v)), `drawn numbers: ${drawn.join(', ')}`);
  });

  it('says when a replay would not touch the rows the captured pass touched', async () => {
    await db.knex('bench_probe').insert([{ v: 'a' }, { v: 'a' }, { v: 'b' }]);
    const pass = await captureStatements(() => db.knex('bench_probe').where({ v: 'a' }).update({ v: 'c' }));
    assert.equal(pass.statements.length, 1);
    assert.equal(pass.statements[0].rowCount, 2);
    // The pass's state is back: the replay does the same work.
    await db.knex('bench_probe').where({ v: 'c' }).update({ v: 'a' });
    assert.deepEqual(await checkReplay(db.current.url, pass.statements), []);
    assert.deepEqual(await probed(), ['a', 'a', 'b'], 'the check rolls back');
    // Not put back: the replay finds nothing to update.
    await db.knex('bench_probe').where({ v: 'a' }).update({ v: 'c' });
    assert.deepEqual(await checkReplay(db.current.url, pass.statements), ['the replay touched 0 rows where the pass touched 2: 1 of 1 statements touched another number']);
  });
});
