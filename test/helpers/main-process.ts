/** The real service (src/main.ts) as a child process, for start-up, shutdown and crash tests. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './process.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The environment of a child topicdesk: ours minus everything that configures topicdesk. */
export function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(NODE_ENV|DATABASE_URL|TEST_DATABASE_URL|PORT|HOST|LOG_LEVEL|TOPICDESK_.*|EMBEDDED_PG_PORT|SCHEDULER_ENABLED|TELEGRAM_.*|WEBHOOK_.*)$/.test(k)) delete env[k];
  }
  return { ...env, ...extra };
}

export interface LogLine { level: number; msg: string; [k: string]: unknown }

export interface MainProcess {
  child: ChildProcess;
  /** Its JSON log lines so far. */
  lines: LogLine[];
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** Resolves with the base URL once the process logs that it listens. */
  listening(timeoutMs?: number): Promise<string>;
}

/**
 * The service as `npm start` runs it, read from package.json so the two cannot drift apart:
 * runs its `prestart` (the build to dist/) now and returns its `start` command's arguments
 * after `node`, for this same node binary. (The bench harness starts the service this way.)
 */
export function npmStartArgs(): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const nodeArgs = (script: string) => {
    const [node, ...args] = scripts[script].trim().split(/\s+/);
    if (node !== 'node') throw new Error(`package.json scripts.${script} does not start with node: ${scripts[script]}`);
    return args;
  };
  if (scripts.prestart) execFileSync(process.execPath, nodeArgs('prestart'), { cwd: ROOT, stdio: 'inherit' });
  return nodeArgs('start');
}

/**
 * Spawns src/main.ts under tsx; `compiled`: as `npm start` runs it instead (built to dist/ first).
 */
export function startMain(env: NodeJS.ProcessEnv, opts: { detached?: boolean; compiled?: boolean } = {}): MainProcess {
  const child = spawn(process.execPath, opts.compiled ? npmStartArgs() : ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false,
  });
  let out = '';
  let err = '';
  let buffered = '';
  const lines: LogLine[] = [];
  let done = false;
  child.stdout!.on('data', (d: Buffer) => {
    out += d;
    buffered += d;
    let i: number;
    while ((i = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      try { lines.push(JSON.parse(line)); } catch { /* not a log line */ }
    }
  });
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => { done = true; resolve({ code, signal }); });
  });
  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    hasExited: () => done,
    async listening(timeoutMs = 30_000) {
      const line = await waitFor('the "listening" log line', () => {
        if (done) throw new Error(`topicdesk exited before listening; stderr: ${err.trim()} stdout: ${out.trim().slice(-500)}`);
        return lines.find((l) => /listening/.test(l.msg));
      }, timeoutMs);
      return line.url as string;
    },
  };
}
