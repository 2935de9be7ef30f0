import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { hasEnded } from '../../src/db/postmaster-owner.js';

/** A TCP port nobody listens on right now (on 127.0.0.1). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type Probe<T> = () => T | undefined | null | false | Promise<T | undefined | null | false>;

/** Polls until `probe` answers something truthy, and returns it; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: Probe<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Stops a PostgreSQL a failed test left running on this data directory (say the orphan of a
 * killed owner): SIGINT (fast shutdown) to the pid in its lock file, then waits for it to end.
 * Tests must never leave a postgres process behind.
 */
export async function stopLeftover(pgData: string): Promise<void> {
  const pidFile = path.join(pgData, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!(pid > 0) || hasEnded(pid)) return;
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return; // a stale file, the pid reused
  } catch { /* no /proc: trust the lock file */ }
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  await waitFor(`the leftover postgres (pid ${pid}) to stop`, () => hasEnded(pid), 30_000);
}
