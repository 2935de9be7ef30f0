/**
 * The bots of a workspace over the HTTP API (SPEC §2, §4.2 /v1/accounts, §3.3): connecting a
 * bot by its token (checked with getMe against a fake Telegram Bot API), listing, reading,
 * changing and removing bots, the default bot, duplicate bots, sandbox workspaces (which
 * never call Telegram), scopes and tenancy — and that a token never comes back out: not in
 * an answer, an Idempotency-Key replay, an error or a log line.
 */
import assert from 'node:assert/strict';
import { accountStore } from '../../src/accounts/account-store.js';
import { verifyBotToken } from '../../src/accounts/bot-token.js';
import { AppError } from '../../src/kernel/errors.js';
import { makeAccount, makeKey, makeWorkspace } from '../helpers/factories.js';
import { startFakeBotApi, type FakeBotApi } from '../helpers/fake-bot-api.js';
import { createTestApp, type TestApp } from '../helpers/test-app.js';
import { useTestDatabase } from '../helpers/test-db.js';

const ACCOUNT_KEYS = ['id', 'name', 'bot_user_id', 'bot_username', 'support_chat_id', 'is_default', 'created_at', 'updated_at'].sort();
const UNKNOWN_ACCOUNT = `acc_${'0'.repeat(26)}`;
const SUPPORT_CHAT = -1001234567890;

type Res = { status: number; body: any; headers: Record<string, string>; text: string };

describe('accounts API', () => {
  const db = useTestDatabase();
  let fake: FakeBotApi;
  let t: TestApp;
  /** Every token a test has sent (accepted or not): none may come back in an answer or a log line. */
  const tokens = new Set<string>();
  /** Every answer's raw text, checked for tokens at the end (and as they come). */
  const answers: string[] = [];

  const secretOf = (token: string) => token.slice(token.indexOf(':') + 1);
  function assertNoToken(text: string, where: string) {
    for (const token of tokens) {
      // Only real-looking secrets: a short malformed one ("abc") could match anything.
      if (secretOf(token).length < 20) continue;
      const at = text.indexOf(secretOf(token));
      assert.ok(at < 0, `a bot token leaked into ${where}: …${text.slice(Math.max(0, at - 200), at + 100)}…`);
    }
  }

  before(async () => {
    fake = await startFakeBotApi({ limits: false });
    t = createTestApp(db.knex, { config: { telegram: { apiRoot: fake.url } } });
  });
  after(async () => {
    await fake?.close();
  });

  /** A well-formed token Telegram (the fake) has never heard of. */
  let unknownBotId = 7_000_000_000;
  const unknownToken = () => {
    const token = `${++unknownBotId}:AAH${'x'.repeat(32)}${unknownBotId}`;
    tokens.add(token);
    return token;
  };
  /** A bot the fake knows; its token is remembered. */
  function bot(o: { id?: number; username?: string } = {}) {
    const b = fake.addBot(o);
    tokens.add(b.token);
    return b;
  }
  const getMeCalls = (token?: string) => fake.callsTo('getMe').filter((c) => token === undefined || c.token === token).length;

  /** A workspace of its own with a key (every scope unless told) and request helpers. */
  async function desk(opts: { sandbox?: boolean; scopes?: string[]; app?: TestApp } = {}) {
    const app = opts.app ?? t;
    const ws = await makeWorkspace(db.knex, app.services, { sandbox: opts.sandbox });
    const key = await makeKey(db.knex, app.services, { workspaceId: ws.id, scopes: opts.scopes });
    const call = async (method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown, headers: Record<string, string> = {}) => {
      let r = app.request[method](path).set('Authorization', key.auth);
      for (const [k, v] of Object.entries(headers)) r = r.set(k, v);
      const res = (await (body === undefined ? r : r.send(body as object))) as unknown as Res;
      answers.push(res.text ?? '');
      assertNoToken(`${res.text ?? ''} ${JSON.stringify(res.headers)}`, `${method.toUpperCase()} ${path}`);
      return res;
    };
    const get = (path: string) => call('get', path);
    const post = (path: string, body?: unknown, headers?: Record<string, string>) => call('post', path, body, headers);
    const patch = (path: string, body: unknown, headers?: Record<string, string>) => call('patch', path, body, headers);
    const del = (path: string, headers?: Record<string, string>) => call('delete', path, undefined, headers);
    /** Connects a bot (a new fake one unless a token is given); asserts 201. */
    const connect = async (body: Record<string, unknown> = {}) => {
      const res = await post('/v1/accounts', { name: 'Support bot', bot_token: body.bot_token ?? bot().token, ...body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    };
    const account = async (id: string) => {
      const res = await get(`/v1/accounts/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    return { ws, key, get, post, patch, del, connect, account };
  }

  function assertProblem(res: Res, status: number, code: string) {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code, JSON.stringify(res.body));
    assert.match(res.headers['content-type'], /application\/problem\+json/);
  }

  function assertValidation(res: Res, field: string) {
    assertProblem(res, 422, 'validation_error');
    assert.ok(res.body.details.some((d: any) => d.field === field), `expected a detail for ${field}: ${JSON.stringify(res.body.details)}`);
  }

  describe('POST /v1/accounts', () => {
    it('connects a bot: getMe answers who it is, the first bot becomes the default, the token is not in the answer', async () => {
      const d = await desk();
      const b = bot({ username: 'acme_support_bot' });
      const before = getMeCalls(b.token);
      const res = await d.post('/v1/accounts', { name: 'Acme support', bot_token: b.token, support_chat_id: SUPPORT_CHAT });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(Object.keys(res.body).sort(), ACCOUNT_KEYS);
      assert.match(res.body.id, /^acc_[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.equal(res.body.name, 'Acme support');
      assert.equal(res.body.bot_user_id, b.id);
      assert.equal(res.body.bot_username, 'acme_support_bot');
      assert.equal(res.body.support_chat_id, SUPPORT_CHAT);
      assert.equal(res.body.is_default, true);
      assert.equal(res.body.created_at, res.body.updated_at);
      assert.equal(res.headers.location, `/v1/accounts/${res.body.id}`);
      assert.equal(getMeCalls(b.token), before + 1);
      assert.ok(!('bot_token' in res.body) && !res.text.includes(b.token));
      // Stored for the bot runtime, which is the only reader of the token.
      const row = await db.knex('accounts').where({ id: res.body.id }).first();
      assert.equal(row.bot_token, b.token);
      assert.equal(row.workspace_id, d.ws.id);
    });

    it('leaves support_chat_id null when absent, and makes a second bot not the default unless asked', async () => {
      const d = await desk();
      const first = await d.connect();
      const second = await d.connect({ name: 'Second' });
      assert.equal(second.support_chat_id, null);
      assert.equal(second.is_default, false);
      assert.equal((await d.account(first.id)).is_default, true);
      const third = await d.connect({ name: 'Third', is_default: false });
      assert.equal(third.is_default, false);
    });

    it('makes the first bot the default even when is_default: false is sent (a workspace with bots always has one)', async () => {
      const d = await desk();
      const first = await d.connect({ is_default: false });
      assert.equal(first.is_default, true);
    });

    it('moves the default with is_default: true (the previous default is unset in the same transaction)', async () => {
      const d = await desk();
      const first = await d.connect();
      const second = await d.connect({ is_default: true });
      assert.equal(second.is_default, true);
      const firstNow = await d.account(first.id);
      assert.equal(firstNow.is_default, false);
      assert.ok(firstNow.updated_at >= first.updated_at);
      const defaults = await db.knex('accounts').where({ workspace_id: d.ws.id, is_default: true }).whereNull('deleted_at');
      assert.deepEqual(defaults.map((r: any) => r.id), [second.id]);
    });

    it('refuses a malformed token with 422 before asking Telegram, and never echoes it', async () => {
      const d = await desk();
      const before = fake.calls.length;
      for (const token of ['', 'abc', '424242', '424242:short', ':AAHxxxxxxxxxxxxxxxxxxxxxxxxxxx', '12a:AAHxxxxxxxxxxxxxxxxxxxxxxxxxxx',
        '123456:AAH xxxxxxxxxxxxxxxxxxxxxxxxx', '123456:AAH/xxxxxxxxxxxxxxxxxxxxxxxxx', '0:AAHxxxxxxxxxxxxxxxxxxxxxxxxxxx', `${'9'.repeat(30)}:AAHxxxxxxxxxxxxxxxxxxxxxxxxxxx`]) {
        tokens.add(token);
        const res = await d.post('/v1/accounts', { name: 'Bot', bot_token: token });
        assertValidation(res, 'bot_token');
        for (const detail of res.body.details) assert.ok(!('received' in detail), JSON.stringify(detail));
        if (token) assert.ok(!res.text.includes(token), res.text);
      }
      assert.equal(fake.calls.length, before, 'a malformed token must not reach Telegram');
      assert.equal(await db.knex('accounts').where({ workspace_id: d.ws.id }).count({ n: '*' }).then(([r]: any) => Number(r.n)), 0);
    });

    it('validates the body: required fields, lengths, types, unknown fields', async () => {
      const d = await desk();
      const token = bot().token;
      const cases: Array<[unknown, string]> = [
        [{ bot_token: token }, 'name'],
        [{ name: 'Bot' }, 'bot_token'],
        [{ name: '', bot_token: token }, 'name'],
        [{ name: '   ', bot_token: token }, 'name'],
        [{ name: 'x'.repeat(201), bot_token: token }, 'name'],
        [{ name: 42, bot_token: token }, 'name'],
        [{ name: 'Bot', bot_token: 123456 }, 'bot_token'],
        [{ name: 'Bot', bot_token: token, support_chat_id: '-1001234567890' }, 'support_chat_id'],
        [{ name: 'Bot', bot_token: token, support_chat_id: 1.5 }, 'support_chat_id'],
        [{ name: 'Bot', bot_token: token, support_chat_id: 12345 }, 'support_chat_id'],
        [{ name: 'Bot', bot_token: token, support_chat_id: -12345 }, 'support_chat_id'],
        [{ name: 'Bot', bot_token: token, is_default: 'yes' }, 'is_default'],
        [{ name: 'Bot', bot_token: token, token }, 'token'],
        [{ name: 'Bot', bot_token: token, bot_username: 'x' }, 'bot_username'],
        [{ name: 'Bot', bot_token: token, id: UNKNOWN_ACCOUNT }, 'id'],
      ];
      for (const [body, field] of cases) {
        const res = await d.post('/v1/accounts', body);
        assertValidation(res, field);
        assert.ok(!res.text.includes(secretOf(token)), `token echoed for ${field}: ${res.text}`);
      }
      // A regular group id is not a supergroup: named, with the value echoed (it is no secret).
      const res = await d.post('/v1/accounts', { name: 'Bot', bot_token: token, support_chat_id: -4567 });
      assertValidation(res, 'support_chat_id');
      assert.equal(res.body.details[0].received, -4567);
      // The name's 200 characters are allowed.
      const long = await d.post('/v1/accounts', { name: 'x'.repeat(200), bot_token: token });
      assert.equal(long.status, 201, JSON.stringify(long.body));
    });

    it('answers 422 on bot_token when Telegram refuses the token (getMe 401), creating nothing', async () => {
      const d = await desk();
      const token = unknownToken();
      const res = await d.post('/v1/accounts', { name: 'Bot', bot_token: token });
      assertValidation(res, 'bot_token');
      assert.equal(res.body.detail, 'Telegram does not accept this bot token');
      assert.deepEqual(res.body.details, [{ field: 'bot_token', error: 'Telegram does not accept this bot token' }]);
      assert.equal(getMeCalls(token), 1);
      const last = fake.callsTo('getMe').at(-1)!;
      assert.equal(last.status, 401);
      assert.equal((await d.get('/v1/accounts')).body.total, 0);
    });

    it('answers 503 telegram_unavailable when Telegram answers 5xx, creating nothing', async () => {
      const d = await desk();
      const b = bot();
      fake.failNext({ method: 'getMe' }, { code: 502, description: 'Bad Gateway' });
      const res = await d.post('/v1/accounts', { name: 'Bot', bot_token: b.token });
      assertProblem(res, 503, 'telegram_unavailable');
      assert.equal(res.body.detail, 'Telegram could not be reached to check the token; try again');
      assert.ok(Number(res.headers['retry-after']) >= 1);
      assert.equal((await d.get('/v1/accounts')).body.total, 0);
      // Telegram is back: the same request works.
      assert.equal((await d.post('/v1/accounts', { name: 'Bot', bot_token: b.token })).status, 201);
    });

    it('answers 503 when Telegram cannot be reached at all (the server is down)', async () => {
      const down = await startFakeBotApi({ limits: false });
      const b = down.addBot();
      tokens.add(b.token);
      await down.close();
      const app = createTestApp(db.knex, { config: { telegram: { apiRoot: down.url } } });
      const d = await desk({ app });
      const res = await d.post('/v1/accounts', { name: 'Bot', bot_token: b.token });
      assertProblem(res, 503, 'telegram_unavailable');
      assert.equal((await d.get('/v1/accounts')).body.total, 0);
      assertNoToken(app.logs.join('\n'), 'the logs of an app whose Telegram is down');
    });

    it('gives up on getMe after the timeout (503), and a 429 from Telegram is 503 with its retry_after', async () => {
      const b = bot();
      fake.slow({ method: 'getMe' }, 1500);
      try {
        const started = Date.now();
        await assert.rejects(verifyBotToken(b.token, fake.url, { timeoutMs: 200 }), (err: unknown) => {
          assert.ok(err instanceof AppError);
          assert.equal(err.code, 'telegram_unavailable');
          assert.equal(err.status, 503);
          assert.ok(!err.message.includes(b.token));
          return true;
        });
        assert.ok(Date.now() - started < 1200, 'the timeout must cut the wait short');
      } finally {
        fake.slow({ method: 'getMe' }, 0);
      }
      fake.failNext({ method: 'getMe' }, { code: 429, description: 'Too Many Requests: retry after 7', retryAfter: 7 });
      await assert.rejects(verifyBotToken(b.token, fake.url), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.code, 'telegram_unavailable');
        assert.equal(err.extra.headers?.['Retry-After'], '7');
        return true;
      });
      // And the good answer, with a trailing slash on the root too.
      const me = await verifyBotToken(b.token, `${fake.url}/`);
      assert.equal(me.id, b.id);
      assert.equal(me.username, b.username);
      assert.equal(typeof me.firstName, 'string');
    });

    it('refuses a bot that is already connected (409), in this workspace or another; a removed one can be connected again', async () => {
      const a = await desk();
      const other = await desk();
      const b = bot();
      const first = await a.connect({ bot_token: b.token });
      const again = await a.post('/v1/accounts', { name: 'Again', bot_token: b.token });
      assertProblem(again, 409, 'conflict');
      assert.equal(again.body.detail, 'This bot is already connected');
      const elsewhere = await other.post('/v1/accounts', { name: 'Mine now', bot_token: b.token });
      assertProblem(elsewhere, 409, 'conflict');
      assert.equal(elsewhere.body.detail, 'This bot is already connected');
      assert.equal((await a.del(`/v1/accounts/${first.id}`)).status, 204);
      const reconnected = await other.connect({ bot_token: b.token });
      assert.equal(reconnected.bot_user_id, b.id);
    });

    it('keeps two concurrent connections of one bot to one account (the other gets 409)', async () => {
      const d = await desk();
      const b = bot();
      const results = await Promise.all([1, 2, 3].map((i) => d.post('/v1/accounts', { name: `Bot ${i}`, bot_token: b.token })));
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409]);
      const list = (await d.get('/v1/accounts')).body;
      assert.equal(list.total, 1);
      assert.equal(list.items[0].is_default, true);
    });

    it('makes exactly one default when several first bots are connected at once', async () => {
      const d = await desk();
      const results = await Promise.all([1, 2, 3, 4].map((i) => d.post('/v1/accounts', { name: `Bot ${i}`, bot_token: bot().token })));
      assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201]);
      assert.equal(results.filter((r) => r.body.is_default).length, 1);
    });

    it('replays an Idempotency-Key without calling Telegram again and without the token', async () => {
      const d = await desk();
      const b = bot();
      const body = { name: 'Replayed', bot_token: b.token };
      const first = await d.post('/v1/accounts', body, { 'Idempotency-Key': 'connect-1' });
      assert.equal(first.status, 201);
      const calls = getMeCalls(b.token);
      const replay = await d.post('/v1/accounts', body, { 'Idempotency-Key': 'connect-1' });
      assert.equal(replay.status, 201);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.deepEqual(replay.body, first.body);
      assert.equal(replay.headers.location, first.headers.location);
      assert.equal(getMeCalls(b.token), calls);
      assert.equal((await d.get('/v1/accounts')).body.total, 1);
      // The stored answer holds no token either.
      const stored = await db.knex('idempotency_keys').where({ workspace_id: d.ws.id, key: 'connect-1' }).first();
      assert.ok(!String(stored.response_body).includes(secretOf(b.token)));
      // A 503 is not remembered: the same key works once Telegram is back.
      const c = bot();
      fake.failNext({ method: 'getMe' }, { code: 500, description: 'Internal Server Error' });
      assert.equal((await d.post('/v1/accounts', { name: 'Later', bot_token: c.token }, { 'Idempotency-Key': 'connect-2' })).status, 503);
      assert.equal((await d.post('/v1/accounts', { name: 'Later', bot_token: c.token }, { 'Idempotency-Key': 'connect-2' })).status, 201);
    });
  });

  describe('sandbox workspaces', () => {
    it('never call Telegram: the bot id comes from the token, the username stays null', async () => {
      const d = await desk({ sandbox: true });
      const before = fake.calls.length;
      const token = unknownToken(); // Telegram would refuse it; the sandbox never asks
      const res = await d.post('/v1/accounts', { name: 'Sandbox bot', bot_token: token, support_chat_id: SUPPORT_CHAT });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.bot_user_id, Number(token.split(':')[0]));
      assert.equal(res.body.bot_username, null);
      assert.equal(res.body.is_default, true);
      // A new token of the same bot, and one of another bot.
      const sameBot = `${token.split(':')[0]}:AAH${'y'.repeat(32)}`;
      tokens.add(sameBot);
      const patched = await d.patch(`/v1/accounts/${res.body.id}`, { bot_token: sameBot });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      const otherBot = unknownToken();
      const refused = await d.patch(`/v1/accounts/${res.body.id}`, { bot_token: otherBot });
      assertValidation(refused, 'bot_token');
      assert.equal(refused.body.details[0].error, `This token belongs to another bot (id ${otherBot.split(':')[0]}); connect it as a new account`);
      assert.equal((await d.del(`/v1/accounts/${res.body.id}`)).status, 204);
      assert.equal(fake.calls.length, before, 'a sandbox workspace made a Telegram call');
      // Malformed tokens are still refused.
      assertValidation(await d.post('/v1/accounts', { name: 'Bad', bot_token: '123:nope' }), 'bot_token');
    });
  });

  describe('GET /v1/accounts', () => {
    it('lists the workspace\'s bots newest first, paged like every list, without removed ones', async () => {
      const d = await desk();
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await d.connect({ name: `Bot ${i}` }));
      await d.del(`/v1/accounts/${made[2].id}`);
      const page1 = await d.get('/v1/accounts?limit=2');
      assert.equal(page1.status, 200);
      assert.deepEqual(Object.keys(page1.body).sort(), ['has_more', 'items', 'limit', 'next_cursor', 'offset', 'total']);
      assert.equal(page1.body.total, 4);
      assert.equal(page1.body.has_more, true);
      assert.deepEqual(page1.body.items.map((a: any) => a.id), [made[4].id, made[3].id]);
      for (const item of page1.body.items) assert.deepEqual(Object.keys(item).sort(), ACCOUNT_KEYS);
      const page2 = await d.get(`/v1/accounts?limit=2&cursor=${page1.body.next_cursor}`);
      assert.deepEqual(page2.body.items.map((a: any) => a.id), [made[1].id, made[0].id]);
      assert.equal(page2.body.has_more, false);
      const byOffset = await d.get('/v1/accounts?limit=2&offset=3');
      assert.deepEqual(byOffset.body.items.map((a: any) => a.id), [made[0].id]);
    });

    it('refuses bad paging values and unknown query fields (422)', async () => {
      const d = await desk();
      for (const q of ['limit=0', 'limit=201', 'limit=abc', 'offset=-1', 'cursor=nonsense', 'sort=name']) {
        assertProblem(await d.get(`/v1/accounts?${q}`), 422, 'validation_error');
      }
    });

    it('is empty for a workspace without bots', async () => {
      const d = await desk();
      const res = await d.get('/v1/accounts');
      assert.deepEqual(res.body, { items: [], total: 0, limit: 50, offset: 0, has_more: false, next_cursor: null });
    });
  });

  describe('GET /v1/accounts/{id}', () => {
    it('answers the account, and 404 for unknown, malformed and removed ids', async () => {
      const d = await desk();
      const a = await d.connect({ support_chat_id: SUPPORT_CHAT });
      assert.deepEqual(await d.account(a.id), a);
      for (const id of [UNKNOWN_ACCOUNT, 'acc_nope', 'whk_01JD3S6Z5Q7K1M2N3P4R5S6T7V', a.id.toLowerCase()]) {
        const res = await d.get(`/v1/accounts/${id}`);
        assertProblem(res, 404, 'not_found');
        assert.equal(res.body.detail, 'Account not found');
      }
      await d.del(`/v1/accounts/${a.id}`);
      assertProblem(await d.get(`/v1/accounts/${a.id}`), 404, 'not_found');
    });
  });

  describe('PATCH /v1/accounts/{id}', () => {
    it('renames, sets and clears the support chat, without calling Telegram', async () => {
      const d = await desk();
      const a = await d.connect();
      const before = fake.calls.length;
      const renamed = await d.patch(`/v1/accounts/${a.id}`, { name: 'Renamed', support_chat_id: SUPPORT_CHAT });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
      assert.equal(renamed.body.name, 'Renamed');
      assert.equal(renamed.body.support_chat_id, SUPPORT_CHAT);
      assert.equal(renamed.body.bot_user_id, a.bot_user_id);
      assert.equal(renamed.body.created_at, a.created_at);
      const cleared = await d.patch(`/v1/accounts/${a.id}`, { support_chat_id: null });
      assert.equal(cleared.body.support_chat_id, null);
      assert.equal(cleared.body.name, 'Renamed');
      assert.equal(fake.calls.length, before);
      assert.deepEqual(await d.account(a.id), cleared.body);
    });

    it('validates the body (empty, unknown fields, types, a non-supergroup chat id)', async () => {
      const d = await desk();
      const a = await d.connect();
      const cases: Array<[unknown, string]> = [
        [{}, 'body'],
        [{ name: '' }, 'name'],
        [{ name: null }, 'name'],
        [{ is_default: null }, 'is_default'],
        [{ support_chat_id: 'x' }, 'support_chat_id'],
        [{ support_chat_id: 777 }, 'support_chat_id'],
        [{ bot_username: 'x' }, 'bot_username'],
        [{ bot_token: null }, 'bot_token'],
        [{ bot_token: 'not-a-token' }, 'bot_token'],
      ];
      for (const [body, field] of cases) {
        const res = await d.patch(`/v1/accounts/${a.id}`, body);
        assertProblem(res, 422, 'validation_error');
        if (field !== 'body') assert.ok(res.body.details.some((x: any) => x.field === field), `${field}: ${JSON.stringify(res.body)}`);
      }
      assert.deepEqual(await d.account(a.id), a);
    });

    it('takes a new token of the same bot (checked with getMe); the old one is replaced', async () => {
      const d = await desk();
      const b = bot({ username: 'rotating_bot' });
      const a = await d.connect({ bot_token: b.token });
      const renewed = fake.addBot({ id: b.id, username: 'rotating_bot' });
      tokens.add(renewed.token);
      assert.notEqual(renewed.token, b.token);
      const res = await d.patch(`/v1/accounts/${a.id}`, { bot_token: renewed.token });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.bot_user_id, b.id);
      assert.equal(getMeCalls(renewed.token), 1);
      assert.equal((await db.knex('accounts').where({ id: a.id }).first()).bot_token, renewed.token);
      assert.equal((await accountStore.findRunnable(db.knex, a.id))?.token, renewed.token);
    });

    it('refuses a token of another bot (422 naming it), one Telegram refuses (422), and 503 when Telegram is down', async () => {
      const d = await desk();
      const a = await d.connect();
      const other = bot({ username: 'someone_else_bot' });
      const res = await d.patch(`/v1/accounts/${a.id}`, { bot_token: other.token });
      assertValidation(res, 'bot_token');
      assert.equal(res.body.details[0].error, 'This token belongs to another bot (@someone_else_bot); connect it as a new account');
      assert.equal(res.body.detail, 'This token belongs to another bot (@someone_else_bot); connect it as a new account');
      const refused = await d.patch(`/v1/accounts/${a.id}`, { bot_token: unknownToken() });
      assertValidation(refused, 'bot_token');
      assert.equal(refused.body.details[0].error, 'Telegram does not accept this bot token');
      fake.failNext({ method: 'getMe' }, { code: 503, description: 'Service Unavailable' });
      assertProblem(await d.patch(`/v1/accounts/${a.id}`, { bot_token: other.token, name: 'Nope' }), 503, 'telegram_unavailable');
      const row = await db.knex('accounts').where({ id: a.id }).first();
      assert.notEqual(row.bot_token, other.token);
      assert.deepEqual(await d.account(a.id), a);
    });

    it('moves the default with is_default: true, and refuses to unset the default (422)', async () => {
      const d = await desk();
      const first = await d.connect();
      const second = await d.connect();
      const moved = await d.patch(`/v1/accounts/${second.id}`, { is_default: true });
      assert.equal(moved.status, 200);
      assert.equal(moved.body.is_default, true);
      assert.equal((await d.account(first.id)).is_default, false);
      // Already the default: nothing changes.
      assert.equal((await d.patch(`/v1/accounts/${second.id}`, { is_default: true })).body.is_default, true);
      // Unsetting a non-default is a no-op; unsetting the default is refused.
      assert.equal((await d.patch(`/v1/accounts/${first.id}`, { is_default: false })).status, 200);
      const refused = await d.patch(`/v1/accounts/${second.id}`, { is_default: false });
      assertValidation(refused, 'is_default');
      assert.equal((await d.account(second.id)).is_default, true);
    });

    it('answers 404 for unknown and removed accounts, without calling Telegram', async () => {
      const d = await desk();
      const a = await d.connect();
      await d.del(`/v1/accounts/${a.id}`);
      const before = fake.calls.length;
      const token = bot().token;
      for (const id of [UNKNOWN_ACCOUNT, a.id]) {
        assertProblem(await d.patch(`/v1/accounts/${id}`, { name: 'x' }), 404, 'not_found');
        assertProblem(await d.patch(`/v1/accounts/${id}`, { bot_token: token }), 404, 'not_found');
      }
      assert.equal(fake.calls.length, before);
    });
  });

  describe('DELETE /v1/accounts/{id}', () => {
    async function queueSend(workspaceId: string, accountId: string, status = 'queued') {
      const [row] = await db.knex('telegram_sends').insert({
        workspace_id: workspaceId, account_id: accountId, chat_id: 4242, op: 'send_message', payload: { text: 'hi' }, status,
      }).returning('*');
      return row.id;
    }

    it('removes the bot (204): gone from every route, the row kept without its token, queued sends cancelled', async () => {
      const d = await desk();
      const keep = await d.connect();
      const a = await d.connect({ is_default: false });
      const queued = await queueSend(d.ws.id, a.id);
      const sent = await queueSend(d.ws.id, a.id, 'sent');
      const otherBots = await queueSend(d.ws.id, keep.id);
      const res = await d.del(`/v1/accounts/${a.id}`);
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      const row = await db.knex('accounts').where({ id: a.id }).first();
      assert.ok(row.deleted_at instanceof Date);
      assert.equal(row.bot_token, null);
      const sends = Object.fromEntries((await db.knex('telegram_sends').whereIn('id', [queued, sent, otherBots])).map((r: any) => [r.id, r]));
      assert.equal(sends[queued].status, 'cancelled');
      assert.equal(sends[queued].last_error, 'account removed');
      assert.ok(sends[queued].done_at instanceof Date);
      assert.equal(sends[sent].status, 'sent');
      assert.equal(sends[otherBots].status, 'queued');
      assertProblem(await d.get(`/v1/accounts/${a.id}`), 404, 'not_found');
      assertProblem(await d.del(`/v1/accounts/${a.id}`), 404, 'not_found');
      assert.deepEqual((await d.get('/v1/accounts')).body.items.map((x: any) => x.id), [keep.id]);
      // The rest of the code no longer sees it either.
      assert.equal(await accountStore.findById(db.knex, d.ws.id, a.id), null);
      assert.equal(await accountStore.findRunnable(db.knex, a.id), null);
    });

    it('hands the default to the oldest bot left when the default is removed', async () => {
      const d = await desk();
      const first = await d.connect();
      const second = await d.connect();
      const third = await d.connect({ is_default: true });
      await d.del(`/v1/accounts/${third.id}`);
      assert.equal((await d.account(first.id)).is_default, true);
      assert.equal((await d.account(second.id)).is_default, false);
      await d.del(`/v1/accounts/${first.id}`);
      await d.del(`/v1/accounts/${second.id}`);
      // The next bot is the first again: it becomes the default.
      assert.equal((await d.connect()).is_default, true);
    });

    it('a contact\'s preferred bot skips a removed one and falls back to the default', async () => {
      const d = await desk();
      const main = await d.connect();
      const side = await d.connect();
      const { contact } = await t.services.contacts.upsert(db.knex, d.ws.id, { telegram_user_id: 55_501, first_name: 'Sarah' }, { type: 'system', id: null });
      await t.services.contacts.recordChat(db.knex, { workspaceId: d.ws.id, contactId: contact.id, accountId: side.id, chatId: 55_501, at: new Date() });
      assert.equal((await accountStore.preferredFor(db.knex, d.ws.id, contact.id))?.id, side.id);
      await d.del(`/v1/accounts/${side.id}`);
      assert.equal((await accountStore.preferredFor(db.knex, d.ws.id, contact.id))?.id, main.id);
    });

    it('replays an Idempotency-Key (204) without removing anything twice', async () => {
      const d = await desk();
      const a = await d.connect();
      const first = await d.del(`/v1/accounts/${a.id}`, { 'Idempotency-Key': 'remove-1' });
      assert.equal(first.status, 204);
      const replay = await d.del(`/v1/accounts/${a.id}`, { 'Idempotency-Key': 'remove-1' });
      assert.equal(replay.status, 204);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
    });
  });

  describe('scopes', () => {
    it('answers 401 without a valid key and 403 naming manage:settings without the scope, on every route', async () => {
      const owner = await desk();
      const a = await owner.connect();
      const reader = await desk({ scopes: ['read:tickets', 'manage:webhooks', 'manage:keys'] });
      const routes: Array<['get' | 'post' | 'patch' | 'delete', string, unknown?]> = [
        ['get', '/v1/accounts'],
        ['post', '/v1/accounts', { name: 'x', bot_token: bot().token }],
        ['get', `/v1/accounts/${a.id}`],
        ['patch', `/v1/accounts/${a.id}`, { name: 'x' }],
        ['delete', `/v1/accounts/${a.id}`],
      ];
      const before = fake.calls.length;
      for (const [method, path, body] of routes) {
        const anon = await (body === undefined ? t.request[method](path) : t.request[method](path).send(body as object));
        assertProblem(anon as any, 401, 'unauthorized');
        const bad = await t.request[method](path).set('Authorization', 'Bearer td_live_nope');
        assertProblem(bad as any, 401, 'unauthorized');
        const res = method === 'get' ? await reader.get(path) : method === 'delete' ? await reader.del(path)
          : method === 'post' ? await reader.post(path, body) : await reader.patch(path, body);
        assertProblem(res, 403, 'forbidden');
        assert.equal(res.body.required_scope, 'manage:settings');
      }
      assert.equal(fake.calls.length, before, 'a refused request reached Telegram');
      assert.deepEqual(await owner.account(a.id), a);
      // manage:settings alone is enough.
      const settings = await desk({ scopes: ['manage:settings'] });
      assert.equal((await settings.post('/v1/accounts', { name: 'ok', bot_token: bot().token })).status, 201);
    });
  });

  describe('tenant isolation', () => {
    it('answers another workspace\'s account exactly as an unknown one (404) on every route, changing nothing', async () => {
      const owner = await desk();
      const stranger = await desk();
      const a = await owner.connect({ support_chat_id: SUPPORT_CHAT });
      const strangersOwn = await stranger.connect();
      const before = fake.calls.length;
      const token = bot().token;
      const strip = (body: any) => ({ ...body, request_id: undefined, detail: body.detail });
      for (const [method, body] of [['get'], ['patch', { name: 'Hijacked' }], ['patch', { bot_token: token }], ['patch', { is_default: true }], ['delete']] as const) {
        const call = (id: string) => (method === 'get' ? stranger.get(`/v1/accounts/${id}`)
          : method === 'delete' ? stranger.del(`/v1/accounts/${id}`) : stranger.patch(`/v1/accounts/${id}`, body));
        const foreign = await call(a.id);
        const unknown = await call(UNKNOWN_ACCOUNT);
        assertProblem(foreign, 404, 'not_found');
        assert.deepEqual(strip(foreign.body), strip(unknown.body));
        assert.equal(foreign.headers['content-type'], unknown.headers['content-type']);
      }
      assert.equal(fake.calls.length, before, 'a foreign id reached Telegram');
      assert.deepEqual(await owner.account(a.id), a);
      assert.equal((await stranger.account(strangersOwn.id)).is_default, true);
      assert.deepEqual((await stranger.get('/v1/accounts')).body.items.map((x: any) => x.id), [strangersOwn.id]);
      assert.deepEqual((await owner.get('/v1/accounts')).body.items.map((x: any) => x.id), [a.id]);
    });

    it('keeps a list cursor inside the caller\'s workspace', async () => {
      const owner = await desk();
      const stranger = await desk();
      for (let i = 0; i < 3; i++) await owner.connect();
      const mine = await stranger.connect();
      const page = await owner.get('/v1/accounts?limit=1');
      const res = await stranger.get(`/v1/accounts?limit=5&cursor=${page.body.next_cursor}`);
      assert.equal(res.status, 200);
      for (const item of res.body.items) assert.equal(item.id, mine.id);
    });

    it('treats each workspace\'s default on its own', async () => {
      const a = await desk();
      const b = await desk();
      const aBot = await a.connect();
      const bBot = await b.connect();
      await b.connect({ is_default: true });
      assert.equal((await a.account(aBot.id)).is_default, true);
      assert.equal((await b.account(bBot.id)).is_default, false);
    });
  });

  describe('for the bot runtime', () => {
    it('listRunnable/findRunnable: bots of live workspaces, not removed, with a token', async () => {
      const live = await desk();
      const sandbox = await desk({ sandbox: true });
      const b = bot({ username: 'runnable_bot' });
      const running = await live.connect({ bot_token: b.token, support_chat_id: SUPPORT_CHAT });
      const removed = await live.connect();
      await live.del(`/v1/accounts/${removed.id}`);
      const sandboxed = await sandbox.connect({ bot_token: unknownToken() });
      const tokenless = await makeAccount(db.knex, { workspaceId: live.ws.id });

      const all = await accountStore.listRunnable(db.knex);
      const ids = all.map((r) => r.id);
      assert.ok(ids.includes(running.id));
      for (const id of [removed.id, sandboxed.id, tokenless.id]) assert.ok(!ids.includes(id), id);
      const one = await accountStore.findRunnable(db.knex, running.id);
      assert.deepEqual(one, {
        id: running.id, workspaceId: live.ws.id, token: b.token, supportChatId: SUPPORT_CHAT, botUserId: b.id, botUsername: 'runnable_bot',
      });
      assert.deepEqual(all.find((r) => r.id === running.id), one);
      for (const id of [removed.id, sandboxed.id, tokenless.id, UNKNOWN_ACCOUNT]) assert.equal(await accountStore.findRunnable(db.knex, id), null);
    });
  });

  describe('secrets', () => {
    it('every token this file sent is absent from every answer and every log line', () => {
      assert.ok(tokens.size > 10);
      assert.ok(answers.length > 50);
      assertNoToken(answers.join('\n'), 'an answer');
      assert.ok(t.logs.length > 0);
      assertNoToken(t.logs.join('\n'), 'the logs');
    });

    it('the OpenAPI document has the routes, and no token field in the account shape', async () => {
      const doc = (await t.request.get('/v1/openapi.json')).body;
      for (const [path, methods] of [['/v1/accounts', ['get', 'post']], ['/v1/accounts/{id}', ['get', 'patch', 'delete']]] as const) {
        for (const m of methods) assert.equal(doc.paths[path][m]['x-required-scope'], 'manage:settings', `${m} ${path}`);
      }
      assert.deepEqual(doc.paths['/v1/accounts/{id}'].get.responses['200'].content['application/json'].schema, { $ref: '#/components/schemas/Account' });
      const shape = doc.components.schemas.Account;
      assert.ok(shape.properties.id && !('bot_token' in shape.properties));
      assert.ok(doc.components.schemas.Problem.properties.code.enum.includes('telegram_unavailable'));
    });
  });
});
