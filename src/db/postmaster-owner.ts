/**
 * Which topicdesk started a running embedded PostgreSQL, and whether that topicdesk still lives:
 * after a `kill -9` of topicdesk its PostgreSQL (in a process group of its own) keeps running,
 * and the next start must tell that orphan from the server of a live topicdesk.
 *
 * The owner is marked on the postmaster's own command line, `-c topicdesk.owner=<pid>:<start>`
 * (a custom setting PostgreSQL accepts and ignores). Why there and not elsewhere:
 * - An owner file written after the spawn is missing when topicdesk is killed in between (say
 *   during crash recovery); one written before can be overwritten by a second topicdesk whose
 *   own start then fails. The command line is exactly as old as the process it describes.
 * - /proc/<pid>/cmdline is readable by any user, also when the postmaster runs as `postgres`
 *   and we are root without CAP_SYS_PTRACE (Docker), where /proc/<pid>/environ is not.
 * - The postmaster's parent pid does not tell: once its owner dies, the parent is init or a
 *   subreaper (systemd --user, tini, a supervisor), a live process like any other.
 * `<start>` is the owner's start time (field 22 of /proc/<pid>/stat, clock ticks since boot),
 * so a process that later got the owner's pid — containers reuse low pids — is not the owner.
 *
 * Linux only (/proc): elsewhere the owner is unknown and the caller must not guess.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity { pid: number; startTime: string }

const MARK = 'topicdesk.owner';

/** /proc/<pid>/stat is "pid (comm) state ppid …"; comm may hold spaces and parentheses. */
function stat(pid: number): { state: string; startTime: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  return { state: fields[0], startTime: fields[19] };
}

/** This process, as it will be named on the command line of a PostgreSQL it starts; null without /proc. */
export function selfIdentity(): ProcessIdentity | null {
  const s = stat(process.pid);
  return s ? { pid: process.pid, startTime: s.startTime } : null;
}

/** The `-c` argument that marks a postmaster as started by `owner`. */
export function ownerSetting(owner: ProcessIdentity): string {
  return `${MARK}=${owner.pid}:${owner.startTime}`;
}

/** The topicdesk that started this postmaster, from its command line; null when unmarked or unreadable. */
export function markedOwner(postmasterPid: number): ProcessIdentity | null {
  let args: string[];
  try {
    args = readFileSync(`/proc/${postmasterPid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
  const m = args.map((a) => new RegExp(`^${MARK.replace('.', '\\.')}=(\\d+):(\\d+)$`).exec(a)).find(Boolean);
  return m ? { pid: Number(m[1]), startTime: m[2] } : null;
}

/**
 * Whether that very process still runs: same pid, same start time, and not a zombie (a killed
 * process its parent has not reaped yet is as dead as one that is gone).
 */
export function isRunning(p: ProcessIdentity): boolean {
  const s = stat(p.pid);
  return s !== null && s.startTime === p.startTime && s.state !== 'Z' && s.state !== 'X';
}

/** Whether the process with this pid has ended (gone, or a zombie); false while it runs, or without /proc. */
export function hasEnded(pid: number): boolean {
  const s = stat(pid);
  if (s) return s.state === 'Z' || s.state === 'X';
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
