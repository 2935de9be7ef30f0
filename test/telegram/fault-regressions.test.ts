/**
 * Defects the Telegram fault probe (fault-journey.test.ts) found, each pinned down with the
 * one fault that showed it, on the fake Bot API's fault injection (`setFaults` for the next
 * call of one method):
 * - /ticket posts the card, then pins it; a 429 or 5xx on the pin made the retry post the card
 *   again (a second card each time). A row now keeps each call's result (sendQueue.recordStep).
 * - an answerCallbackQuery that took effect but was answered 5xx was retried, refused
 *   ("query is too old … or query ID is invalid") and recorded as a send failed for good, with
 *   an error in the log. After an ambiguous attempt that refusal now ends the row quietly.
 * - a 5xx or 429 while checking the support group at start-up was logged as an error telling
 *   the operator to add the bot to the group or fix TELEGRAM_SUPPORT_CHAT_ID.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/lib/logger.js';
import { checkSetup } from '../../src/telegram/bot-runtime.js';
import type { FaultOptions } from '../helpers/fake-bot-api.js';
import { useTelegramHarness, type TelegramHarness, ticketRows } from '../helpers/telegram-harness.js';
import { botTextsInTopic, faultSeed, faultSummary, fromBot, runJourney, settle, until, waitingSends } from '../helpers/fault-journey.js';

const seed = faultSeed();

describe('Telegram faults: what the probe found', function () {
  this.timeout(40_000);
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  before(() => { h = harness.h; });
  afterEach(async function () {
    h.fake.setFaults(false);
    if (this.currentTest?.state !== 'failed') return;
    console.log(`\n  faults: ${faultSummary(h.fake.injectedFaults)}\n${await waitingSends(h)}`);
  });

  /** Faults for the next `n` calls to `method` only. */
  const failNextCalls = (method: string, n: number, f: Pick<FaultOptions, 'kinds' | 'effect'>) =>
    h.fake.setFaults({ rate: 1, seed, methods: [method], max: h.fake.injectedFaults.length + n, retryAfter: 1, ...f });

  it('/ticket: a 429 or a 5xx on pinning the new card pins it on the retry, without posting it again', async () => {
    const j = await runJourney(h, 'p');
    await settle(h);
    const cards = () => botTextsInTopic(h, j.threadId).filter((m) => m.text.startsWith(`🎫 #${j.number} `));
    assert.equal(cards().length, 1);

    for (const [i, kinds] of [['429'], ['5xx']].entries()) {
      failNextCalls('pinChatMessage', 1, { kinds: kinds as Array<'429' | '5xx'>, effect: 'before' });
      h.fake.memberSends(h.group, j.agent, '/ticket', { threadId: j.threadId });
      await until(() => h.fake.injectedFaults.some((f) => f.method === 'pinChatMessage' && f.kind === kinds[0]), `the ${kinds[0]} on pinChatMessage`);
      await settle(h);
      assert.equal(cards().length, 2 + i, `after a ${kinds[0]} on its pin, /ticket posted one card (${cards().length - 1 - i} posted)`);
      const row = await ticketRows(h.db).where('tickets.id', j.ticketId).first();
      const newest = cards().at(-1)!.message_id;
      assert.equal(Number(row.topic_card_message_id), newest, 'the ticket knows the new card');
      assert.ok(h.fake.topic(h.group.id, j.threadId)!.pinned.includes(newest), 'the new card is pinned');
    }
  });

  it('a button press whose answerCallbackQuery took effect but was answered 5xx is not a failed send', async () => {
    const u = h.fake.addUser({ firstName: 'Quinn' });
    h.fake.userSends(h.bot, u, '/start');
    const q1 = await until(() => fromBot(h, u).find((m) => /\(1\/4\)/.test(m.text ?? '')), 'the first question');
    failNextCalls('answerCallbackQuery', 1, { kinds: ['5xx'], effect: 'after' });
    const queryId = h.fake.userPresses(h.bot, u, { chatId: u.id, messageId: q1.message_id }, q1.reply_markup.inline_keyboard[0][0].callback_data);
    await until(() => fromBot(h, u).some((m) => /^\(2\/4\)/.test(m.text ?? '')), 'the second question');
    await settle(h);
    assert.ok(h.fake.callbackAnswers.has(queryId), 'Telegram has the answer (from the call answered 5xx)');
    const rows = await h.db('telegram_sends').where({ op: 'answer_callback' }).whereRaw("payload->>'callback_query_id' = ?", [queryId]).select('status', 'last_error');
    assert.equal(rows.length, 1);
    assert.notEqual(rows[0].status, 'failed', `the send is not failed: ${rows[0].last_error}`);
    assert.deepEqual(h.logs.filter((l) => l.includes('failed for good') && l.includes(queryId)), [], 'no "failed for good" error');
  });

  it('a 5xx or a 429 while checking the support group at start-up is not reported as a setup problem', async () => {
    const [account] = await h.services.accounts.listRunnable(h.db);
    const check = async () => {
      const lines: string[] = [];
      const logger = createLogger('debug', new Writable({ write(c, _e, cb) { lines.push(c.toString()); cb(); } }));
      return { ok: await checkSetup(h.db, h.telegram.api, h.services.accounts, logger, account), lines };
    };
    for (const [method, kinds] of [['getChat', ['5xx']], ['getChatMember', ['429']]] as const) {
      failNextCalls(method, 1, { kinds: [...kinds], effect: 'before' });
      const { ok, lines } = await check();
      assert.equal(ok, false, 'the check could not be made');
      assert.equal(h.fake.injectedFaults.at(-1)!.method, method);
      assert.deepEqual(lines.filter((l) => /add the bot|TELEGRAM_SUPPORT_CHAT_ID|"level":50/.test(l)), [], `a ${kinds[0]} on ${method} is not a misconfiguration`);
      assert.ok(lines.some((l) => l.includes('"level":40') && l.includes('not a setup problem')), `a warning says what happened: ${lines.join('')}`);
    }
    assert.equal((await check()).ok, true, 'the same check passes once Telegram answers');
  });
});

