/**
 * The Telegram side never holds a pooled connection while it waits for another (a read through
 * the pool from inside a transaction: with a busy pool every holder waits for the others, and
 * nothing moves until the acquire timeout). Proof by the extreme: the whole customer journey —
 * form, ticket, topic, relays both ways — on a pool of ONE connection.
 */
import assert from 'node:assert/strict';
import { createKnex, type Knex } from '../../src/db/knex.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.js';
import { startTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';

describe('Telegram on a pool of one connection', () => {
  let database: TestDatabase;
  let db: Knex;
  let h: TelegramHarness;

  before(async () => {
    database = await createTestDatabase();
    db = createKnex(database.url, 1, undefined, { acquireTimeoutMs: 3_000 });
    h = await startTelegramHarness(db);
  });
  after(async () => {
    await h?.stop();
    await db?.destroy();
    await database?.drop();
  });

  it('runs a customer journey, every relay delivered and no wait for a connection timed out', async function () {
    this.timeout(60_000);
    const customer = h.fake.addUser({ firstName: 'Dana', username: 'dana_one_conn' });
    const agent = h.fake.addUser({ firstName: 'Alex', username: 'alex_one_conn' });
    h.fake.addMember(h.group, agent, {});
    const fromBot = () => h.fake.messagesIn(customer.id, { botId: h.bot.id }).filter((m) => m.from?.id === h.bot.id);
    const asked = async (n: number) => {
      const deadline = Date.now() + 20_000;
      while (fromBot().length < n) {
        if (Date.now() > deadline) throw new Error(`question ${n} never came`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    h.fake.userSends(h.bot, customer, '/start');
    await asked(1);
    h.fake.userPresses(h.bot, customer, { chatId: customer.id, messageId: fromBot().at(-1)!.message_id }, 'f:0:0');
    await asked(2);
    h.fake.userSends(h.bot, customer, 'Order not delivered');
    await asked(3);
    h.fake.userSends(h.bot, customer, 'It has been a week');
    await asked(4);
    h.fake.userPresses(h.bot, customer, { chatId: customer.id, messageId: fromBot().at(-1)!.message_id }, 'f:3:skip');
    await asked(5);
    await h.settle(20_000);
    const ticket = await db('tickets').whereNotNull('topic_thread_id').first();
    assert.ok(ticket, 'a ticket with its topic');

    for (let i = 0; i < 5; i++) h.fake.userSends(h.bot, customer, `follow-up ${i}`);
    h.fake.memberSends(h.group, agent, 'We are on it', { threadId: ticket.topic_thread_id });
    await h.settle(20_000);

    const copied = h.fake.callsTo('copyMessage').filter((c) => c.status === 200);
    assert.equal(copied.filter((c) => Number(c.params.chat_id) === h.group.id).length, 5, 'the five follow-ups in the topic');
    assert.equal(copied.filter((c) => Number(c.params.chat_id) === customer.id).length, 1, "the agent's answer to the customer");
    assert.deepEqual(h.logs.filter((l) => /Timeout acquiring a connection/.test(l)), []);
  });
});
