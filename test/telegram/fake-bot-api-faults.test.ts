/**
 * The fake Bot API's seeded fault injection (`faults`), as bots see it through Telegraf: 429s
 * in Telegram's exact shape, 5xx answers as nginx and the Bot API server give them, a 5xx
 * before or after the call took effect, reproducible draws, and webhook answers taken for lost.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Telegraf, TelegramError } from 'telegraf';
import type { Telegram } from 'telegraf';
import { startFakeBotApi, SERVER_ERROR_ANSWERS, type FakeBot, type FakeBotApi, type FakeUser } from '../helpers/fake-bot-api.js';

const clientFor = (fake: FakeBotApi, bot: FakeBot): Telegram => new Telegraf(bot.token, { telegram: { apiRoot: fake.url, webhookReply: false } }).telegram;

/** The call's outcome: 'ok', or Telegraf's error code. */
async function outcome(p: Promise<unknown>): Promise<'ok' | number> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof TelegramError, `a TelegramError, got ${String(e)}`);
    return e.code;
  }
}

describe('fake Telegram Bot API: seeded faults', () => {
  let fake: FakeBotApi;
  let bot: FakeBot;
  let tg: Telegram;
  let user: FakeUser;

  beforeEach(async () => {
    fake = await startFakeBotApi({ limits: false });
    bot = fake.addBot();
    tg = clientFor(fake, bot);
    user = fake.addUser({ firstName: 'Faye' });
    fake.userSends(bot, user, 'hi');
  });
  afterEach(() => fake.close());

  it('answers a 429 exactly as Telegram does, with retry_after, and nothing is sent', async () => {
    fake.setFaults({ rate: 1, seed: 1, kinds: ['429'], retryAfter: 2 });
    const res = await fetch(`${fake.url}/bot${bot.token}/sendMessage`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ chat_id: user.id, text: 'x' }),
    });
    assert.equal(res.status, 429);
    assert.deepEqual(await res.json(), { ok: false, error_code: 429, description: 'Too Many Requests: retry after 2', parameters: { retry_after: 2 } });
    const e = await tg.sendMessage(user.id, 'y').catch((err: TelegramError) => err);
    assert.ok(e instanceof TelegramError);
    assert.equal(e.code, 429);
    assert.equal(e.parameters?.retry_after, 2);
    assert.equal(fake.messagesIn(user.id).filter((m) => m.from?.is_bot).length, 0, 'a 429 posts nothing');
    assert.deepEqual(fake.injectedFaults.map((f) => [f.method, f.kind, f.status, f.applied]), [['sendMessage', '429', 429, false], ['sendMessage', '429', 429, false]]);
    assert.equal(fake.rateLimited.length, 2);
  });

  it('answers a 5xx like nginx or the Bot API server; Telegraf sees the status', async () => {
    fake.setFaults({ rate: 1, seed: 7, kinds: ['5xx'], effect: 'before' });
    const seen = new Set<string>();
    for (let i = 0; seen.size < SERVER_ERROR_ANSWERS.length && i < 200; i++) {
      const res = await fetch(`${fake.url}/bot${bot.token}/getMe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
      const text = await res.text();
      assert.ok(res.status === 500 || res.status === 502, `a 5xx, got ${res.status}`);
      if (text.startsWith('<html>')) {
        assert.match(text, new RegExp(`<title>${res.status} ${res.statusText}</title>`));
        assert.match(text, /<center>nginx<\/center>/);
        seen.add(`${res.status} html`);
      } else {
        const body = JSON.parse(text);
        assert.deepEqual(body, res.status === 500
          ? { ok: false, error_code: 500, description: 'Internal Server Error: restart' }
          : { ok: false, error_code: 502, description: 'Bad Gateway' });
        seen.add(`${res.status} json`);
      }
    }
    assert.deepEqual([...seen].sort(), ['500 html', '500 json', '502 html', '502 json']);
    const code = await outcome(tg.getMe());
    assert.ok(code === 500 || code === 502, `Telegraf's TelegramError carries the status: ${code}`);
  });

  it("a 5xx 'before' leaves no effect; 'after' posts the message and still answers the 5xx", async () => {
    fake.setFaults({ rate: 1, seed: 3, kinds: ['5xx'], effect: 'before' });
    assert.notEqual(await outcome(tg.sendMessage(user.id, 'before')), 'ok');
    assert.deepEqual(fake.messagesIn(user.id).map((m) => m.text), ['hi'], 'nothing posted');

    fake.setFaults({ rate: 1, seed: 3, kinds: ['5xx'], effect: 'after' });
    assert.notEqual(await outcome(tg.sendMessage(user.id, 'after')), 'ok');
    assert.deepEqual(fake.messagesIn(user.id).map((m) => m.text), ['hi', 'after'], 'posted although the answer was a 5xx');
    const [before, after] = fake.injectedFaults;
    assert.equal(before.applied, false);
    assert.equal(after.applied, true);
    assert.deepEqual(after.call?.fault, { kind: '5xx', applied: true });

    // A call that fails anyway (400) took no effect, whatever the 5xx says.
    assert.notEqual(await outcome(tg.sendMessage(user.id, '')), 'ok');
    assert.equal(fake.injectedFaults.at(-1)!.applied, false);

    fake.setFaults(false);
    assert.equal(await outcome(tg.sendMessage(user.id, 'fine')), 'ok');
  });

  it('creates the topic of an applied createForumTopic (a second one if the caller retries)', async () => {
    const group = fake.addGroup();
    fake.addBotToGroup(bot, group);
    fake.setFaults({ rate: 1, seed: 5, kinds: ['5xx'], effect: 'after', max: 1 });
    assert.notEqual(await outcome(tg.createForumTopic(group.id, 'Ticket')), 'ok');
    assert.equal((await tg.createForumTopic(group.id, 'Ticket')).name, 'Ticket');
    assert.equal(fake.topics(group.id).length, 2, 'the 5xx one exists too');
  });

  it('draws reproducibly: the same seed gives the same faults for the same calls; a retry is a fresh draw', async () => {
    const run = async (seed: number): Promise<Array<'ok' | number>> => {
      const f = await startFakeBotApi({ limits: false, faults: { rate: 0.3, seed, effect: 'before' } });
      try {
        const b = f.addBot({ id: 4242 });
        const u = f.addUser({ id: 777 });
        f.userSends(b, u, 'hi');
        const t = clientFor(f, b);
        const out: Array<'ok' | number> = [];
        for (let i = 0; i < 40; i++) out.push(await outcome(t.sendMessage(u.id, `m${i % 10}`)));
        return out;
      } finally {
        await f.close();
      }
    };
    const a = await run(99);
    assert.deepEqual(await run(99), a, 'same seed, same outcomes');
    assert.notDeepEqual(await run(100), a, 'another seed, other outcomes');
    const failed = a.filter((x) => x !== 'ok').length;
    assert.ok(failed >= 4 && failed <= 22, `about 30 % fail: ${failed}/40`);
    assert.ok(a.includes(429) && a.some((x) => x === 500 || x === 502), 'both kinds by default');
  });

  it('keeps to methods / exceptMethods and stops after max', async () => {
    fake.setFaults({ rate: 1, seed: 1, methods: ['sendMessage'] });
    assert.equal(await outcome(tg.getMe()), 'ok');
    assert.notEqual(await outcome(tg.sendMessage(user.id, 'x')), 'ok');
    fake.setFaults({ rate: 1, seed: 1, exceptMethods: ['getMe'] });
    assert.equal(await outcome(tg.getMe()), 'ok');
    assert.notEqual(await outcome(tg.sendMessage(user.id, 'x')), 'ok');
    fake.setFaults({ rate: 1, seed: 1, max: fake.injectedFaults.length + 1 });
    assert.notEqual(await outcome(tg.getMe()), 'ok');
    assert.equal(await outcome(tg.getMe()), 'ok');
    assert.throws(() => fake.setFaults({ rate: 2, seed: 1 }));
  });

  it("getUpdates 'after': the offset is confirmed but the batch is lost with the answer, so the same offset gets it again", async () => {
    fake.userSends(bot, user, 'second');
    const [first] = await tg.getUpdates(0, 100, 0, undefined);
    fake.setFaults({ rate: 1, seed: 1, kinds: ['5xx'], effect: 'after', max: 1 });
    assert.notEqual(await outcome(tg.getUpdates(0, 100, first.update_id + 1, undefined)), 'ok');
    assert.deepEqual(fake.pendingUpdatesFor(bot).map((u) => u.message.text), ['second'], 'the first is confirmed');
    const again = await tg.getUpdates(0, 100, first.update_id + 1, undefined);
    assert.deepEqual(again.map((u: any) => u.message.text), ['second']);
  });

  it('webhook: an update whose 2xx answer is taken for lost is delivered again', async () => {
    const received: number[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        received.push(JSON.parse(body).update_id);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await tg.deleteWebhook();
      const pending = fake.pendingUpdatesFor(bot).length;
      fake.setFaults({ rate: 1, seed: 1, webhook: true, methods: ['none'], max: 1 });
      await tg.setWebhook(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
      fake.userSends(bot, user, 'again?');
      const deadline = Date.now() + 5000;
      while (fake.pendingUpdatesFor(bot).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(fake.pendingUpdatesFor(bot).length, 0, 'everything confirmed in the end');
      const first = fake.updatesFor(bot)[0].update_id;
      assert.deepEqual(received.filter((id) => id === first), [first, first], 'the first update came twice');
      assert.equal(received.length, pending + 2);
      assert.deepEqual(fake.injectedFaults.map((f) => [f.kind, f.updateId]), [['webhook_redelivery', first]]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
