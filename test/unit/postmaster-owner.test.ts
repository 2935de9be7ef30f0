import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hasEnded, isRunning, markedOwner, ownerSetting, selfIdentity } from '../../src/db/postmaster-owner.js';

/** A process that idles with these extra arguments on its command line. */
function idler(args: string[]): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', '--', ...args], { stdio: 'ignore' });
}

const ended = (child: ChildProcess) => new Promise<void>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) resolve();
  else child.once('exit', () => resolve());
});

describe('the owner of an embedded PostgreSQL (postmaster-owner)', () => {
  const children: ChildProcess[] = [];
  before(function () { if (!existsSync('/proc/self/stat')) this.skip(); });
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.kill('SIGKILL');
      await ended(c);
    }
  });

  it('names this process by pid and start time, and finds it running', () => {
    const self = selfIdentity()!;
    assert.equal(self.pid, process.pid);
    assert.match(self.startTime, /^\d+$/);
    assert.equal(isRunning(self), true);
    assert.equal(hasEnded(process.pid), false);
  });

  it('does not take a process that reused the owner\'s pid (another start time) for the owner', () => {
    const self = selfIdentity()!;
    assert.equal(isRunning({ pid: self.pid, startTime: String(Number(self.startTime) + 1) }), false);
  });

  it('reads the owner marked on a command line, and nothing from an unmarked one', async () => {
    const marked = idler(['-c', 'listen_addresses=127.0.0.1', '-c', ownerSetting({ pid: 4242, startTime: '987654' })]);
    const plain = idler(['-c', 'listen_addresses=127.0.0.1']);
    children.push(marked, plain);
    await new Promise((r) => setTimeout(r, 200)); // exec'd: the command line is the node's
    assert.deepEqual(markedOwner(marked.pid!), { pid: 4242, startTime: '987654' });
    assert.equal(markedOwner(plain.pid!), null);
  });

  it('finds a killed owner not running, and its pid ended', async () => {
    const child = idler([]);
    children.push(child);
    await new Promise((r) => setTimeout(r, 200));
    const owner = { pid: child.pid!, startTime: readStartTime(child.pid!) };
    assert.equal(isRunning(owner), true);
    child.kill('SIGKILL');
    await ended(child);
    assert.equal(isRunning(owner), false);
    assert.equal(hasEnded(child.pid!), true);
    assert.equal(markedOwner(child.pid!), null, 'a gone process has no command line');
  });
});

/** Field 22 of /proc/<pid>/stat, read independently of the module under test. */
function readStartTime(pid: number): string {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
}
