/**
 * The service's buffered log (bufferedStdout): lines wait for a 4 KiB block or the 200 ms flush,
 * so what matters is that none is lost when the process ends — by an exit or by a crash.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LOGGER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/lib/logger.ts');

/** Runs `body` in a fresh node (tsx) with `log` a logger on bufferedStdout(); its stdout and exit code. */
function runWithLog(body: string): { stdout: string; status: number | null } {
  const script = `import { bufferedStdout, createLogger } from ${JSON.stringify(LOGGER)};
const log = createLogger('info', bufferedStdout());
${body}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return { stdout: r.stdout, status: r.status };
}

describe('bufferedStdout', () => {
  it('writes a line logged just before an uncaught exception ends the process', () => {
    const r = runWithLog(`log.info('before the crash'); setTimeout(() => { throw new Error('boom'); }, 10);`);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /"msg":"before the crash"/);
  });

  it('writes every line of a burst smaller than a block when the process exits on its own', () => {
    const r = runWithLog(`for (let i = 0; i < 20; i++) log.info({ i }, 'line');`);
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim().split('\n').length, 20);
  });

  it('writes a line that waits in the buffer within the periodic flush, while the process runs on', () => {
    const r = runWithLog(`log.info('waiting'); setTimeout(() => { process.stderr.write('alive'); process.kill(process.pid, 'SIGKILL'); }, 600);`);
    assert.match(r.stdout, /"msg":"waiting"/, 'flushed by the 200 ms timer before the kill, which runs no exit handler');
  });
});
