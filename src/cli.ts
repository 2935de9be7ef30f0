/**
 * `topicdesk <command>`: operator tasks against the same database the service uses
 * (DATABASE_URL, or the embedded server — attached to if `npm start` is running it).
 * Every failure: exit code 1 and one line on stderr.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { createServices, type Services } from './container.js';
import { openDatabase } from './db/database.js';
import { postgresReason, type Knex } from './db/knex.js';
import { migrateLatest } from './db/migrate.js';
import { systemClock } from './lib/clock.js';
import { createLogger } from './lib/logger.js';
import { presentApiKey } from './auth/api-key-service.js';
import { keyModeOf } from './auth/api-key-token.js';
import { apiKeyStore } from './auth/api-key-store.js';
import { AppError } from './kernel/errors.js';
import { seedDemo } from '../seeds/demo.js';

const USAGE = `usage: topicdesk <command>
  migrate                                   apply pending database migrations
  seed                                      load demo data (a sandbox workspace with a key)
  workspaces create --name NAME [--sandbox] [--json]
  workspaces list [--json]
  keys create --name NAME --scopes a,b,c|all [--workspace ID|default] [--expires-in 30d] [--rate-limit N] [--json]
  keys list [--workspace ID|default] [--json]
  keys revoke ID [--workspace ID|default]`;

class UsageError extends Error {}

const MAX_DURATION_MS = 100 * 366 * 86_400_000;

/** `30d`, `12h`, `90m` → milliseconds (at most about a hundred years). */
export function parseDuration(text: string): number {
  const m = /^(\d{1,9})\s*([dhm])$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'] : 0;
  if (!m || ms === 0) throw new UsageError(`--expires-in must look like 30d, 12h or 90m, got "${text}"`);
  if (ms > MAX_DURATION_MS) throw new UsageError(`--expires-in must be at most 36600d, got "${text}"`);
  return ms;
}

const workspaceId = (v: string | undefined) => (!v || v === 'default' ? 'ws_default' : v);
const print = (json: boolean, data: unknown, text: string): void => { process.stdout.write((json ? JSON.stringify(data) : text) + "\n"); };

async function runCommand(argv: string[], db: Knex, services: Services): Promise<void> {
  const { values: o, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      name: { type: 'string' }, sandbox: { type: 'boolean' }, json: { type: 'boolean' },
      scopes: { type: 'string' }, workspace: { type: 'string' }, 'expires-in': { type: 'string' },
      'rate-limit': { type: 'string' },
    },
  });
  const [group, action, arg] = positionals;
  const need = (v: string | undefined, flag: string) => {
    if (!v) throw new UsageError(`${group} ${action} needs --${flag}`);
    return v;
  };

  switch (`${group} ${action ?? ''}`.trim()) {
    case 'migrate': {
      const applied = await migrateLatest(db);
      return print(false, null, applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    }
    case 'seed': {
      const r = await seedDemo(db, services);
      return print(false, null, r.created ? `demo workspace ${r.workspaceId} created; sandbox key (shown once): ${r.token}` : `demo workspace ${r.workspaceId} already exists`);
    }
    case 'workspaces create': {
      const w = await services.workspaces.create(db, { name: need(o.name, 'name'), sandbox: !!o.sandbox });
      return print(!!o.json, { id: w.id, name: w.name, mode: w.mode }, `created ${w.mode} workspace ${w.id} (${w.name})`);
    }
    case 'workspaces list': {
      const all = await services.workspaces.list(db);
      return print(!!o.json, all.map((w) => ({ id: w.id, name: w.name, mode: w.mode })), all.map((w) => `${w.id}\t${w.mode}\t${w.name}`).join('\n'));
    }
    case 'keys create': {
      const expiresIn = o['expires-in'] ? parseDuration(o['expires-in']) : null;
      let rateLimit: number | null = null;
      if (o['rate-limit'] !== undefined) {
        rateLimit = Number(o['rate-limit']);
        if (!Number.isInteger(rateLimit) || rateLimit < 1 || rateLimit > 100000) throw new UsageError('--rate-limit must be a whole number from 1 to 100000');
      }
      const created = await services.apiKeys.create(db, {
        workspaceId: workspaceId(o.workspace),
        name: need(o.name, 'name'),
        scopes: need(o.scopes, 'scopes').split(',').map((s) => s.trim()).filter(Boolean),
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn) : null,
        rateLimitPerMinute: rateLimit,
      });
      const { key, token, mode } = created;
      return print(!!o.json, { id: key.id, token, scopes: key.scopes, workspace_id: key.workspaceId, mode },
        `created key ${key.id} in ${key.workspaceId} (${mode}), scopes: ${key.scopes.join(',')}\n${token}\nThis token is shown once: store it now.`);
    }
    case 'keys list': {
      const ws = await services.workspaces.get(db, workspaceId(o.workspace));
      const items = [];
      for (let cursor: string | undefined, more = true; more;) {
        const page = await services.apiKeys.list(db, ws.id, { limit: 200, offset: 0, cursor }, true);
        const now = new Date();
        items.push(...page.items.map((k) => presentApiKey(k, keyModeOf(ws.mode), now)));
        [more, cursor] = [page.has_more, page.next_cursor ?? undefined];
      }
      return print(!!o.json, items, items.map((k) => `${k.id}\t${k.status}\t${k.token_prefix}…\t${k.name}\t${k.scopes.join(',')}`).join('\n') || 'no keys');
    }
    case 'keys revoke': {
      if (!arg) throw new UsageError('keys revoke needs the key id');
      // Key ids are unique across workspaces: without --workspace the key is found wherever it is.
      const ws = await services.workspaces.get(db, o.workspace ? workspaceId(o.workspace) : (await apiKeyStore.workspaceOf(db, arg)) ?? 'ws_default');
      const key = await services.apiKeys.revoke(db, ws.id, arg);
      return print(!!o.json, presentApiKey(key, keyModeOf(ws.mode), new Date()), `revoked ${key.id}`);
    }
    default:
      throw new UsageError(group ? `unknown command "${positionals.join(' ')}"` : 'no command given');
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (argv.length === 0) {
    // A failure like any other (one line on stderr), with the usage on stdout to help.
    process.stdout.write(USAGE + '\n');
    throw new UsageError('no command given');
  }
  const config = loadConfig();
  // Logs go to stderr at warn and above: stdout is the command's answer (and may be JSON).
  const level = process.env.LOG_LEVEL || 'warn';
  const logger = createLogger(level, process.stderr as any);
  // A failed command is reported as one line on stderr; knex's own warnings and errors about
  // the same failure (e.g. "Acquire connection error") would add more. They are shown only
  // when the operator asks for detail (LOG_LEVEL=info or more verbose).
  const verbose = ['info', 'debug', 'trace'].includes(level);
  const database = await openDatabase(config, verbose ? logger : logger.child({}, { level: 'fatal' }), { attachIfRunning: true });
  try {
    const db = database.knex;
    if (argv[0] !== 'migrate') await migrateLatest(db);
    await runCommand(argv, db, createServices({ config, db, logger, clock: systemClock }));
    return 0;
  } finally {
    await database.close();
  }
}

/** One clear line for any failure: never SQL text, never a stack, never an empty message. */
function describeError(err: unknown): string {
  if (err instanceof UsageError) return `${err.message} (topicdesk --help shows the usage)`;
  if (err instanceof AppError) return err.detail;
  const e = err as { message?: unknown; code?: unknown; name?: unknown; severity?: unknown } | null | undefined;
  // Node reports a refused connection to a host with several addresses as an AggregateError with no message.
  if (err instanceof AggregateError && err.errors.length && !err.message) return describeError(err.errors[0]);
  const reason = postgresReason(err);
  const msg = reason !== null ? `database error ${e?.code}: ${reason}` : typeof e?.message === 'string' ? e.message : String(err);
  const line = msg.split('\n').map((l) => l.trim()).find(Boolean);
  return line || (typeof e?.code === 'string' ? e.code : '') || (typeof e?.name === 'string' ? e.name : '') || 'unexpected error';
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`topicdesk: ${describeError(err)}\n`);
    process.exit(1);
  },
);
