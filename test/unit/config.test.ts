import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/config.js';

/** Runs loadConfig and returns the ConfigError it throws (fails the test if it does not throw one). */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

const TOKEN = '123456:ABCdefGHIjklMNOpqrSTUvwx_yz-0123';

describe('configuration', () => {
  describe('defaults', () => {
    it('uses the documented defaults when no variable is set', () => {
      const c = loadConfig({});
      assert.equal(c.env, 'development');
      assert.equal(c.port, 3000);
      assert.equal(c.host, '127.0.0.1');
      assert.equal(c.databaseUrl, null);
      assert.equal(c.dataDir, path.resolve('.data'));
      assert.ok(path.isAbsolute(c.dataDir));
      assert.equal(c.embeddedPgPort, 54329);
      assert.equal(c.logLevel, 'info');
      assert.equal(c.schedulerEnabled, true);
      assert.equal(c.validateResponses, false);
      const { botToken, supportChatId, apiRoot, webhookUrl, webhookSecret } = c.telegram;
      assert.deepEqual({ botToken, supportChatId, apiRoot, webhookUrl, webhookSecret }, {
        botToken: null, supportChatId: null, apiRoot: 'https://api.telegram.org', webhookUrl: null, webhookSecret: null,
      });
      // Telegram's flood limits, with a small margin.
      assert.deepEqual(c.telegram.sends.pacing, { perChat: { limit: 1, windowMs: 1050 }, perGroup: { limit: 20, windowMs: 61000 }, perBot: { limit: 30, windowMs: 1020 } });
      assert.equal(c.webhooks.allowPrivateTargets, false);
      assert.equal(c.idempotency.retentionHours, 24);
      assert.equal(c.jobs.cleanup, '0 */5 * * * *');
      assert.equal(c.jobs.escalationSweep, '*/30 * * * * *');
      assert.equal(c.jobs.digest, '15 * * * * *');
      assert.deepEqual(c.escalation, { maxFiringsPerTicketPerHour: 10, firstSweepLookbackSeconds: 30 });
      assert.deepEqual(c.database, {
        statementTimeoutMs: 15000, idleInTransactionTimeoutMs: 30000, queryTimeoutMs: 20000,
        connectTimeoutMs: 5000, acquireTimeoutMs: 5000, keepAliveInitialDelayMs: 10000,
      });
    });

    it('layers config/test.json over the defaults when NODE_ENV=test', () => {
      const c = loadConfig({ NODE_ENV: 'test' });
      assert.equal(c.env, 'test');
      assert.equal(c.logLevel, 'silent');
      assert.equal(c.schedulerEnabled, false);
      assert.equal(c.validateResponses, true);
      assert.equal(c.port, 3000, 'keys test.json does not set keep their defaults');
    });

    it('treats an empty variable as unset', () => {
      const c = loadConfig({ PORT: '', DATABASE_URL: '', LOG_LEVEL: '', SCHEDULER_ENABLED: '' });
      assert.equal(c.port, 3000);
      assert.equal(c.databaseUrl, null);
      assert.equal(c.logLevel, 'info');
      assert.equal(c.schedulerEnabled, true);
    });

    it('does not read process.env when given an environment', () => {
      const before = process.env.PORT;
      process.env.PORT = 'not-a-port';
      try {
        assert.equal(loadConfig({}).port, 3000);
      } finally {
        if (before === undefined) delete process.env.PORT; else process.env.PORT = before;
      }
    });
  });

  describe('environment variables', () => {
    it('parses PORT and HOST', () => {
      const c = loadConfig({ PORT: '8080', HOST: '0.0.0.0' });
      assert.equal(c.port, 8080);
      assert.equal(c.host, '0.0.0.0');
      assert.equal(loadConfig({ PORT: '0' }).port, 0, 'PORT=0 asks the OS for a free port');
      assert.equal(loadConfig({ PORT: '65535' }).port, 65535);
    });

    it('accepts a postgres:// or postgresql:// DATABASE_URL', () => {
      assert.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/topicdesk' }).databaseUrl, 'postgres://u:p@db:5432/topicdesk');
      assert.equal(loadConfig({ DATABASE_URL: 'postgresql://db/x' }).databaseUrl, 'postgresql://db/x');
    });

    it('resolves TOPICDESK_DATA_DIR to an absolute path', () => {
      assert.equal(loadConfig({ TOPICDESK_DATA_DIR: 'some/rel/dir' }).dataDir, path.resolve(process.cwd(), 'some/rel/dir'));
      assert.equal(loadConfig({ TOPICDESK_DATA_DIR: '/var/lib/topicdesk' }).dataDir, '/var/lib/topicdesk');
    });

    it('PUBLIC_URL: defaults to http://HOST:PORT; the environment wins, without a trailing slash', () => {
      assert.equal(loadConfig({ PORT: '8080', HOST: '0.0.0.0' }).publicUrl, 'http://0.0.0.0:8080');
      assert.equal(loadConfig({ PUBLIC_URL: 'https://desk.example.com/' }).publicUrl, 'https://desk.example.com');
      assert.equal(loadConfig({ PUBLIC_URL: 'https://example.com/desk' }).publicUrl, 'https://example.com/desk');
    });

    it('parses EMBEDDED_PG_PORT', () => {
      assert.equal(loadConfig({ EMBEDDED_PG_PORT: '55555' }).embeddedPgPort, 55555);
    });

    it('accepts every pino LOG_LEVEL', () => {
      for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
        assert.equal(loadConfig({ LOG_LEVEL: level }).logLevel, level);
      }
    });

    it('takes API_KEY_LEASE_MAX_AGE_MS (default 1000 ms, 0 to 10000) and refuses anything else, naming it', () => {
      assert.equal(loadConfig({}).apiKeys.leaseMaxAgeMs, 1000);
      assert.equal(loadConfig({ API_KEY_LEASE_MAX_AGE_MS: '0' }).apiKeys.leaseMaxAgeMs, 0);
      assert.equal(loadConfig({ API_KEY_LEASE_MAX_AGE_MS: '10000' }).apiKeys.leaseMaxAgeMs, 10_000);
      for (const bad of ['10001', '-1', '1.5', 'soon']) {
        assert.throws(() => loadConfig({ API_KEY_LEASE_MAX_AGE_MS: bad }), /API_KEY_LEASE_MAX_AGE_MS/, bad);
      }
    });

    it('parses SCHEDULER_ENABLED and WEBHOOK_ALLOW_PRIVATE_TARGETS as booleans', () => {
      for (const [raw, value] of [['true', true], ['1', true], ['yes', true], ['TRUE', true], ['false', false], ['0', false], ['no', false], ['False', false]] as const) {
        assert.equal(loadConfig({ SCHEDULER_ENABLED: raw }).schedulerEnabled, value, `SCHEDULER_ENABLED=${raw}`);
        assert.equal(loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: raw }).webhooks.allowPrivateTargets, value, `WEBHOOK_ALLOW_PRIVATE_TARGETS=${raw}`);
      }
      assert.equal(loadConfig({ NODE_ENV: 'test', SCHEDULER_ENABLED: 'true' }).schedulerEnabled, true, 'the environment wins over config/test.json');
    });

    it('parses the TELEGRAM_* variables, trimming trailing slashes from URLs', () => {
      const c = loadConfig({
        TELEGRAM_BOT_TOKEN: TOKEN,
        TELEGRAM_SUPPORT_CHAT_ID: '-1001234567890',
        TELEGRAM_API_ROOT: 'http://127.0.0.1:8081/',
        TELEGRAM_WEBHOOK_URL: 'https://desk.example.com//',
        TELEGRAM_WEBHOOK_SECRET: 'abc_DEF-123',
      });
      const { botToken, supportChatId, apiRoot, webhookUrl, webhookSecret } = c.telegram;
      assert.deepEqual({ botToken, supportChatId, apiRoot, webhookUrl, webhookSecret }, {
        botToken: TOKEN,
        supportChatId: '-1001234567890',
        apiRoot: 'http://127.0.0.1:8081',
        webhookUrl: 'https://desk.example.com',
        webhookSecret: 'abc_DEF-123',
      });
    });

    it('parses the DATABASE_*_MS bounds; the query timeout follows the statement timeout unless set', () => {
      const c = loadConfig({
        DATABASE_STATEMENT_TIMEOUT_MS: '1000', DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '2000',
        DATABASE_CONNECT_TIMEOUT_MS: '300', DATABASE_ACQUIRE_TIMEOUT_MS: '400',
      });
      assert.deepEqual(c.database, {
        statementTimeoutMs: 1000, idleInTransactionTimeoutMs: 2000, queryTimeoutMs: 6000,
        connectTimeoutMs: 300, acquireTimeoutMs: 400, keepAliveInitialDelayMs: 10000,
      });
      assert.equal(loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '1000', DATABASE_QUERY_TIMEOUT_MS: '1500' }).database.queryTimeoutMs, 1500);
      const off = loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '0', DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '0' }).database;
      assert.deepEqual([off.statementTimeoutMs, off.idleInTransactionTimeoutMs, off.queryTimeoutMs], [0, 0, 0], '0 leaves them to the server');
      assert.equal(loadConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '0', DATABASE_QUERY_TIMEOUT_MS: '3000' }).database.queryTimeoutMs, 3000);
    });

    it('accepts a bot token without a support chat', () => {
      const c = loadConfig({ TELEGRAM_BOT_TOKEN: TOKEN });
      assert.equal(c.telegram.botToken, TOKEN);
      assert.equal(c.telegram.supportChatId, null);
    });
  });

  describe('bad values', () => {
    const cases: Array<[string, NodeJS.ProcessEnv, string]> = [
      ['PORT=abc', { PORT: 'abc' }, 'PORT'],
      ['PORT=70000', { PORT: '70000' }, 'PORT'],
      ['PORT=-1', { PORT: '-1' }, 'PORT'],
      ['PORT=80.5', { PORT: '80.5' }, 'PORT'],
      ['EMBEDDED_PG_PORT=0', { EMBEDDED_PG_PORT: '0' }, 'EMBEDDED_PG_PORT'],
      ['EMBEDDED_PG_PORT=x', { EMBEDDED_PG_PORT: 'x' }, 'EMBEDDED_PG_PORT'],
      ['DATABASE_URL=http://x', { DATABASE_URL: 'http://x' }, 'DATABASE_URL'],
      ['DATABASE_URL=not a url', { DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
      ['LOG_LEVEL=loud', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      ['SCHEDULER_ENABLED=maybe', { SCHEDULER_ENABLED: 'maybe' }, 'SCHEDULER_ENABLED'],
      ['WEBHOOK_ALLOW_PRIVATE_TARGETS=perhaps', { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'perhaps' }, 'WEBHOOK_ALLOW_PRIVATE_TARGETS'],
      ['TELEGRAM_BOT_TOKEN=nope', { TELEGRAM_BOT_TOKEN: 'nope' }, 'TELEGRAM_BOT_TOKEN'],
      ['TELEGRAM_SUPPORT_CHAT_ID=abc', { TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_SUPPORT_CHAT_ID: 'abc' }, 'TELEGRAM_SUPPORT_CHAT_ID'],
      ['TELEGRAM_SUPPORT_CHAT_ID without TELEGRAM_BOT_TOKEN', { TELEGRAM_SUPPORT_CHAT_ID: '-100123' }, 'TELEGRAM_SUPPORT_CHAT_ID'],
      ['TELEGRAM_API_ROOT=ftp://x', { TELEGRAM_API_ROOT: 'ftp://x' }, 'TELEGRAM_API_ROOT'],
      ['TELEGRAM_WEBHOOK_URL=desk.example.com', { TELEGRAM_WEBHOOK_URL: 'desk.example.com' }, 'TELEGRAM_WEBHOOK_URL'],
      ['PUBLIC_URL=desk.example.com', { PUBLIC_URL: 'desk.example.com' }, 'PUBLIC_URL'],
      ['PUBLIC_URL=ftp://desk.example.com', { PUBLIC_URL: 'ftp://desk.example.com' }, 'PUBLIC_URL'],
      ['TELEGRAM_WEBHOOK_SECRET=has spaces!', { TELEGRAM_WEBHOOK_SECRET: 'has spaces!' }, 'TELEGRAM_WEBHOOK_SECRET'],
      ['DATABASE_STATEMENT_TIMEOUT_MS=15s', { DATABASE_STATEMENT_TIMEOUT_MS: '15s' }, 'DATABASE_STATEMENT_TIMEOUT_MS'],
      ['DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS=-1', { DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '-1' }, 'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS'],
      ['DATABASE_CONNECT_TIMEOUT_MS=0', { DATABASE_CONNECT_TIMEOUT_MS: '0' }, 'DATABASE_CONNECT_TIMEOUT_MS'],
      ['DATABASE_ACQUIRE_TIMEOUT_MS=soon', { DATABASE_ACQUIRE_TIMEOUT_MS: 'soon' }, 'DATABASE_ACQUIRE_TIMEOUT_MS'],
      ['DATABASE_QUERY_TIMEOUT_MS not above the statement timeout', { DATABASE_STATEMENT_TIMEOUT_MS: '2000', DATABASE_QUERY_TIMEOUT_MS: '2000' }, 'DATABASE_QUERY_TIMEOUT_MS'],
    ];
    for (const [title, env, variable] of cases) {
      it(`rejects ${title} with a ConfigError naming ${variable}`, () => {
        const err = configError(env);
        assert.match(err.message, new RegExp(`\\b${variable}\\b`));
        assert.ok(!err.message.includes('\n'), 'the message is one line');
      });
    }

    it('names both variables when TELEGRAM_SUPPORT_CHAT_ID is set without TELEGRAM_BOT_TOKEN', () => {
      const err = configError({ TELEGRAM_SUPPORT_CHAT_ID: '-100123' });
      assert.match(err.message, /TELEGRAM_SUPPORT_CHAT_ID/);
      assert.match(err.message, /TELEGRAM_BOT_TOKEN/);
    });

    it('does not echo secrets from a bad DATABASE_URL or TELEGRAM_BOT_TOKEN', () => {
      assert.ok(!configError({ DATABASE_URL: 'mysql://admin:hunter2@db/x' }).message.includes('hunter2'));
      assert.ok(!configError({ DATABASE_URL: 'postgres://admin:hunter2@[bad' }).message.includes('hunter2'));
      assert.ok(!configError({ TELEGRAM_BOT_TOKEN: 'sekrit-token-value' }).message.includes('sekrit'));
      assert.ok(!configError({ TELEGRAM_WEBHOOK_SECRET: 'sekrit value' }).message.includes('sekrit'));
    });

    it('is a ConfigError, an Error subclass main() can tell apart from crashes', () => {
      const err = configError({ PORT: 'abc' });
      assert.ok(err instanceof Error);
      assert.equal(err.message, 'PORT must be a whole number, got "abc"');
    });
  });

  describe('result', () => {
    it('is deeply frozen', () => {
      const c = loadConfig({ TELEGRAM_BOT_TOKEN: TOKEN });
      assert.ok(Object.isFrozen(c));
      assert.ok(Object.isFrozen(c.telegram));
      assert.ok(Object.isFrozen(c.webhooks));
      assert.ok(Object.isFrozen(c.jobs));
      assert.throws(() => { (c as any).port = 1; }, TypeError);
      assert.throws(() => { (c as any).telegram.botToken = 'x'; }, TypeError);
      assert.throws(() => { (c as any).extra = 1; }, TypeError);
    });

    it('returns a fresh object each call, unaffected by earlier calls', () => {
      const a = loadConfig({ PORT: '1234', TELEGRAM_BOT_TOKEN: TOKEN });
      const b = loadConfig({});
      assert.equal(a.port, 1234);
      assert.equal(b.port, 3000);
      assert.equal(b.telegram.botToken, null, 'nested defaults are not shared between calls');
    });
  });

  describe('webhook settings (config/<NODE_ENV>.json)', () => {
    const configDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config');
    const env = 'unit-webhooks-check';
    const file = path.join(configDir, `${env}.json`);
    afterEach(() => rmSync(file, { force: true }));

    const cases: Array<[string, unknown, RegExp]> = [
      ['concurrencyPerEndpoint', 0, /webhooks\.concurrencyPerEndpoint must be a whole number ≥ 1, got 0/],
      ['timeoutMs', 'soon', /webhooks\.timeoutMs must be a whole number ≥ 100/],
      ['retryScheduleSeconds', [], /webhooks\.retryScheduleSeconds must be a non-empty list/],
      ['retryScheduleSeconds', [30, -1], /webhooks\.retryScheduleSeconds must be a non-empty list/],
      ['retryJitter', 1.5, /webhooks\.retryJitter must be a fraction in \[0, 1\)/],
    ];
    for (const [key, value, message] of cases) {
      it(`refuses webhooks.${key} = ${JSON.stringify(value)} with a ConfigError naming it`, () => {
        writeFileSync(file, JSON.stringify({ webhooks: { [key]: value } }));
        assert.match(configError({ NODE_ENV: env }).message, message);
      });
    }

    for (const [key, value] of [['maxFiringsPerTicketPerHour', 0], ['firstSweepLookbackSeconds', 'soon']] as const) {
      it(`refuses escalation.${key} = ${JSON.stringify(value)} with a ConfigError naming it`, () => {
        writeFileSync(file, JSON.stringify({ escalation: { [key]: value } }));
        assert.match(configError({ NODE_ENV: env }).message, new RegExp(`escalation\\.${key} must be a whole number ≥ 1`));
      });
    }

    it('refuses database.keepAliveInitialDelayMs = "soon", and a database.queryTimeoutMs not above the statement timeout', () => {
      writeFileSync(file, JSON.stringify({ database: { keepAliveInitialDelayMs: 'soon' } }));
      assert.match(configError({ NODE_ENV: env }).message, /database\.keepAliveInitialDelayMs must be a whole number ≥ 1000/);
      writeFileSync(file, JSON.stringify({ database: { statementTimeoutMs: 5000, queryTimeoutMs: 4000 } }));
      assert.match(configError({ NODE_ENV: env }).message, /database\.queryTimeoutMs \(4000\) must be longer than the statement timeout \(5000\)/);
    });

    it('accepts the defaults and a valid override', () => {
      writeFileSync(file, JSON.stringify({ webhooks: { concurrency: 8, retryScheduleSeconds: [1, 2] } }));
      const c = loadConfig({ NODE_ENV: env });
      assert.equal(c.webhooks.concurrency, 8);
      assert.deepEqual(c.webhooks.retryScheduleSeconds, [1, 2]);
      assert.equal(c.webhooks.timeoutMs, 10_000);
    });
  });
});
