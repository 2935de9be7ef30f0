/**
 * `topicdesk <command>`: operator tasks against the same database the service uses
 * (DATABASE_URL, or the embedded server — attached to if `npm start` is running it).
 * Every failure: exit code 1 and one line on stderr. `--help` (anywhere) and `--version`
 * answer on stdout with exit 0, without touching the database; so do usage mistakes (exit 1).
 */
import { readFileSync } from 'node:fs';
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
import { ALL_SCOPES } from './kernel/scopes.js';
import { seedDemo } from '../seeds/demo.js';

interface OptionSpec {
  type: 'string' | 'boolean';
  /** How the value is shown in the usage (`NAME`); string options only. */
  value?: string;
  required?: boolean;
  help: string;
}

interface CommandContext { o: Record<string, string | boolean | undefined>; arg: string | undefined; db: Knex; services: Services }

interface CommandSpec {
  /** The positional argument, shown in the usage (`ID`). */
  arg?: string;
  summary: string;
  options: Record<string, OptionSpec>;
  run(c: CommandContext): Promise<void>;
}

const json: OptionSpec = { type: 'boolean', help: 'print the answer as one line of JSON' };
const inWorkspace: OptionSpec = { type: 'string', value: 'ID|default', help: 'the workspace (default: ws_default)' };

/** Every command: the usage, --help and option parsing are all derived from this table. */
const COMMANDS: Record<string, CommandSpec> = {
  migrate: {
    summary: 'apply pending database migrations',
    options: {},
    async run({ db }) {
      const applied = await migrateLatest(db);
      print(false, null, applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    },
  },
  seed: {
    summary: 'load demo data (a sandbox workspace with a key)',
    options: {},
    async run({ db, services }) {
      const r = await seedDemo(db, services);
      print(false, null, r.created ? `demo workspace ${r.workspaceId} created; sandbox key (shown once): ${r.token}` : `demo workspace ${r.workspaceId} already exists`);
    },
  },
  'workspaces create': {
    summary: 'create a workspace (live, or a sandbox with --sandbox)',
    options: {
      name: { type: 'string', value: 'NAME', required: true, help: 'the workspace\'s name' },
      sandbox: { type: 'boolean', help: 'a sandbox workspace: its keys are td_test_ keys' },
      json,
    },
    async run({ o, db, services }) {
      const w = await services.workspaces.create(db, { name: o.name as string, sandbox: !!o.sandbox });
      print(!!o.json, { id: w.id, name: w.name, mode: w.mode }, `created ${w.mode} workspace ${w.id} (${w.name})`);
    },
  },
  'workspaces list': {
    summary: 'list the workspaces',
    options: { json },
    async run({ o, db, services }) {
      const all = await services.workspaces.list(db);
      print(!!o.json, all.map((w) => ({ id: w.id, name: w.name, mode: w.mode })), all.map((w) => `${w.id}\t${w.mode}\t${w.name}`).join('\n'));
    },
  },
  'keys create': {
    summary: 'create an API key; its token is shown once',
    options: {
      name: { type: 'string', value: 'NAME', required: true, help: 'what the key is for (1-100 characters)' },
      scopes: { type: 'string', value: 'a,b,c|all', required: true, help: `comma-separated, or all: ${ALL_SCOPES.join(', ')}` },
      workspace: inWorkspace,
      'expires-in': { type: 'string', value: '30d', help: 'expire after this long: 30d, 12h or 90m (default: never)' },
      'rate-limit': { type: 'string', value: 'N', help: 'requests per minute, 1-100000 (default: the service\'s)' },
      json,
    },
    async run({ o, db, services }) {
      const expiresIn = o['expires-in'] ? parseDuration(o['expires-in'] as string) : null;
      let rateLimit: number | null = null;
      if (o['rate-limit'] !== undefined) {
        rateLimit = Number(o['rate-limit']);
        if (!Number.isInteger(rateLimit) || rateLimit < 1 || rateLimit > 100000) throw new UsageError('--rate-limit must be a whole number from 1 to 100000', 'keys create');
      }
      const created = await services.apiKeys.create(db, {
        workspaceId: workspaceId(o.workspace as string | undefined),
        name: o.name as string,
        scopes: (o.scopes as string).split(',').map((s) => s.trim()).filter(Boolean),
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn) : null,
        rateLimitPerMinute: rateLimit,
      });
      const { key, token, mode } = created;
      print(!!o.json, { id: key.id, token, scopes: key.scopes, workspace_id: key.workspaceId, mode },
        `created key ${key.id} in ${key.workspaceId} (${mode}), scopes: ${key.scopes.join(',')}\n${token}\nThis token is shown once: store it now.`);
    },
  },
  'keys list': {
    summary: 'list a workspace\'s API keys (never their tokens)',
    options: { workspace: inWorkspace, json },
    async run({ o, db, services }) {
      const ws = await services.workspaces.get(db, workspaceId(o.workspace as string | undefined));
      const items = [];
      for (let cursor: string | undefined, more = true; more;) {
        const page = await services.apiKeys.list(db, ws.id, { limit: 200, offset: 0, cursor }, true);
        const now = new Date();
        items.push(...page.items.map((k) => presentApiKey(k, keyModeOf(ws.mode), now)));
        [more, cursor] = [page.has_more, page.next_cursor ?? undefined];
      }
      print(!!o.json, items, items.map((k) => `${k.id}\t${k.status}\t${k.token_prefix}…\t${k.name}\t${k.scopes.join(',')}`).join('\n') || 'no keys');
    },
  },
  'keys revoke': {
    arg: 'ID',
    summary: 'revoke an API key at once',
    options: { workspace: { ...inWorkspace, help: 'the key\'s workspace (default: wherever the key is)' }, json },
    async run({ o, arg, db, services }) {
      if (!arg) throw new UsageError('keys revoke needs the key id', 'keys revoke');
      // Key ids are unique across workspaces: without --workspace the key is found wherever it is.
      const ws = await services.workspaces.get(db, o.workspace ? workspaceId(o.workspace as string) : (await apiKeyStore.workspaceOf(db, arg)) ?? 'ws_default');
      const key = await services.apiKeys.revoke(db, ws.id, arg);
      print(!!o.json, presentApiKey(key, keyModeOf(ws.mode), new Date()), `revoked ${key.id}`);
    },
  },
};

const GROUPS: Record<string, string> = { workspaces: 'workspaces', keys: 'API keys' };

const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

/** `keys create --name NAME --scopes a,b,c|all [--workspace ID|default] …` */
function synopsis(name: string): string {
  const spec = COMMANDS[name];
  const opts = Object.entries(spec.options).map(([flag, o]) => {
    const text = `--${flag}${o.value ? ` ${o.value}` : ''}`;
    return o.required ? text : `[${text}]`;
  });
  return [name, spec.arg, ...opts].filter(Boolean).join(' ');
}

const NAME_WIDTH = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
const USAGE = [
  'usage: topicdesk <command> [options]',
  ...Object.keys(COMMANDS).flatMap((name) => {
    const args = synopsis(name).slice(name.length + 1);
    return [`  ${name.padEnd(NAME_WIDTH)}  ${COMMANDS[name].summary}`, ...(args ? [`  ${' '.repeat(NAME_WIDTH)}    ${name} ${args}`] : [])];
  }),
  '',
  'topicdesk <command> --help shows a command\'s options; topicdesk --version its version.',
].join('\n');

function groupUsage(group: string): string {
  const names = Object.keys(COMMANDS).filter((n) => n.startsWith(`${group} `));
  const width = Math.max(...names.map((n) => n.length));
  return [`usage: topicdesk ${group} <command> [options]`, ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`)].join('\n');
}

function commandHelp(name: string): string {
  const spec = COMMANDS[name];
  const rows: [string, string][] = Object.entries(spec.options).map(([flag, o]) => [`--${flag}${o.value ? ` ${o.value}` : ''}`, o.help]);
  rows.push(['--help', 'show this help']);
  const width = Math.max(...rows.map(([l]) => l.length));
  return [`usage: topicdesk ${synopsis(name)}`, '', spec.summary, '', 'options:', ...rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`)].join('\n');
}

/** A mistake in the command line: `command` names the command whose usage helps. */
class UsageError extends Error {
  constructor(message: string, readonly command?: string, readonly withSynopsis = false) { super(message); }
}

const MAX_DURATION_MS = 100 * 366 * 86_400_000;

/** `30d`, `12h`, `90m` → milliseconds (at most about a hundred years). */
export function parseDuration(text: string): number {
  const m = /^(\d{1,9})\s*([dhm])$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'] : 0;
  if (!m || ms === 0) throw new UsageError(`--expires-in must look like 30d, 12h or 90m, got "${text}"`, 'keys create');
  if (ms > MAX_DURATION_MS) throw new UsageError(`--expires-in must be at most 36600d, got "${text}"`, 'keys create');
  return ms;
}

const workspaceId = (v: string | undefined) => (!v || v === 'default' ? 'ws_default' : v);
const print = (asJson: boolean, data: unknown, text: string): void => { process.stdout.write((asJson ? JSON.stringify(data) : text) + "\n"); };
const out = (text: string) => process.stdout.write(text + '\n');
const isHelp = (a: string) => a === '--help' || a === '-h';

type Parsed = { name: string; o: CommandContext['o']; arg: string | undefined } | 'done';

/**
 * The command line → a command and its options, before any database is opened: help,
 * version and every usage mistake are answered without one. 'done': help was printed.
 */
function parseCommandLine(argv: string[]): Parsed {
  const [first, second] = argv;
  if (first === undefined || first.startsWith('-')) {
    if (first !== undefined && isHelp(first)) return (out(USAGE), 'done');
    if (first === '--version') return (out(`topicdesk ${VERSION}`), 'done');
    // A failure like any other (one line on stderr), with the usage on stdout to help.
    out(USAGE);
    throw new UsageError(first === undefined ? 'no command given' : `unknown option ${first.split('=')[0]}: options come after the command`);
  }
  let name = first;
  let rest = argv.slice(1);
  if (GROUPS[first]) {
    // A group alone (or with --help) lists its commands; alone it is still a missing command.
    if (second === undefined || isHelp(second)) {
      out(groupUsage(first));
      if (second !== undefined) return 'done';
      throw new UsageError(`${first} needs a command: ${Object.keys(COMMANDS).filter((n) => n.startsWith(`${first} `)).map((n) => n.split(' ')[1]).join(', ')}`, first);
    }
    name = `${first} ${second}`;
    rest = argv.slice(2);
  }
  const spec = COMMANDS[name];
  if (!spec) {
    const firstOption = argv.findIndex((a) => a.startsWith('-'));
    const words = firstOption < 0 ? argv : argv.slice(0, firstOption);
    throw new UsageError(`unknown command "${words.join(' ')}"`, GROUPS[first] ? first : undefined);
  }
  if (rest.some(isHelp)) return (out(commandHelp(name)), 'done');
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest, allowPositionals: true, strict: true,
      options: Object.fromEntries(Object.entries(spec.options).map(([flag, o]) => [flag, { type: o.type }])),
    });
  } catch (err) {
    throw new UsageError(describeParseError(err as NodeJS.ErrnoException), name, true);
  }
  const { values, positionals } = parsed;
  const extra = positionals.slice(spec.arg ? 1 : 0);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`, name, true);
  for (const [flag, o] of Object.entries(spec.options)) {
    if (o.required && !values[flag]) throw new UsageError(`${name} needs --${flag}`, name);
  }
  return { name, o: values as CommandContext['o'], arg: positionals[0] };
}

/** node:util parseArgs errors are long and suggest `--`: say what was wrong, naming the option. */
function describeParseError(err: NodeJS.ErrnoException): string {
  const option = /'(-[^' ]*)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown option ${option ?? ''}`.trim();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message) ? `option ${option} needs a value` : `option ${option} takes no value`;
    default: return err.message.split('\n')[0];
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed === 'done') return 0;
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
    if (parsed.name !== 'migrate') await migrateLatest(db);
    await COMMANDS[parsed.name].run({ o: parsed.o, arg: parsed.arg, db, services: createServices({ config, db, logger, clock: systemClock }) });
    return 0;
  } finally {
    await database.close();
  }
}

/** One clear line for any failure: never SQL text, never a stack, never an empty message. */
function describeError(err: unknown): string {
  if (err instanceof UsageError) {
    if (err.withSynopsis && err.command) return `${err.message}; usage: topicdesk ${synopsis(err.command)}`;
    return `${err.message} (topicdesk${err.command ? ` ${err.command}` : ''} --help shows the usage)`;
  }
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
