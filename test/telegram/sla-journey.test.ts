/**
 * SLA in the support group (SPEC §5): the card shows the due times and follows them, the sweep's
 * warning and breach each post one short notice in the ticket's topic, rendered when sent, and
 * a notice whose target was met before it went out is dropped. The real app and workers against
 * the fake Bot API; the sweep is run by hand at chosen moments.
 */
import assert from 'node:assert/strict';
import type { FakeUser } from '../helpers/fake-bot-api.js';
import { useTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';

describe('Telegram: SLA notices and the card (issue 14)', () => {
  const harness = useTelegramHarness();
  let h: TelegramHarness;
  let seq = 0;
  before(async () => {
    h = harness.h;
    const r = await h.api.post('/v1/sla-policies').set('Authorization', h.auth).send({
      name: 'Standard', is_default: true, warn_at_percent: 50,
      targets: { normal: { first_response_minutes: 10, resolution_minutes: 600 } },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });

  async function settle(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      await h.settle();
      const [{ n: sends }] = await h.db('telegram_sends').whereIn('status', ['queued', 'sending']).count({ n: '*' });
      const [{ n: updates }] = await h.db('telegram_updates').whereNull('processed_at').count({ n: '*' });
      if (Number(sends) === 0 && Number(updates) === 0) return;
      if (Date.now() > deadline) throw new Error(`not settled: ${sends} sends, ${updates} updates`);
    }
  }

  async function openTicket(): Promise<{ user: FakeUser; id: string; number: number; threadId: number; createdAt: number }> {
    const user = h.fake.addUser({ firstName: 'Nora', username: `nora_${++seq}` });
    h.fake.userSends(h.bot, user, '/start');
    h.fake.userSends(h.bot, user, '/cancel');
    await settle();
    const contact = await h.db('contacts').where({ telegram_user_id: user.id }).first();
    const r = await h.api.post('/v1/tickets').set('Authorization', h.auth).send({ contact_id: contact.id, subject: 'Late parcel' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await settle();
    const t = (await h.api.get(`/v1/tickets/${r.body.id}`).set('Authorization', h.auth)).body;
    return { user, id: t.id, number: t.number, threadId: t.topic.message_thread_id, createdAt: Date.parse(t.created_at) };
  }

  const cardText = async (ticketId: string) => {
    const row = await h.db('ticket_topics').where({ ticket_id: ticketId }).first();
    return h.fake.message(h.group.id, Number(row.card_message_id))!.text as string;
  };
  const botTexts = (threadId: number) => h.fake.messagesIn(h.group.id, { threadId }).filter((m) => m.from?.id === h.bot.id).map((m) => m.text as string);
  const sweepAt = async (ms: number) => { await h.services.sla.sweep(h.db, new Date(ms)); await settle(); };

  it('the card shows the due times; the warning and the breach each post one notice in the topic', async () => {
    const o = await openTicket();
    assert.match(await cardText(o.id), /\nSLA: first response by \d{4}-\d\d-\d\d \d\d:\d\d UTC · resolution by /);
    const before = botTexts(o.threadId).length;
    await sweepAt(o.createdAt + 6 * 60_000);
    const warned = botTexts(o.threadId).slice(before);
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.match(warned[0], new RegExp(`^⚠️ first response due in \\d+ min \\(#${o.number}\\)$`));
    await sweepAt(o.createdAt + 6 * 60_000); // nothing new
    await sweepAt(o.createdAt + 11 * 60_000);
    const after = botTexts(o.threadId).slice(before);
    assert.deepEqual(after.slice(1), [`🔴 first response overdue (#${o.number})`]);
    const tk = (await h.api.get(`/v1/tickets/${o.id}`).set('Authorization', h.auth)).body;
    assert.deepEqual(tk.sla.breaches.map((b: any) => b.target), ['first_response']);
  });

  it('a warning whose target was met before the notice went out posts nothing; the card ticks the first response', async () => {
    const o = await openTicket();
    const before = botTexts(o.threadId).length;
    // The warning is recorded and queued, and the first response reaches the customer in the
    // same transaction: the notice can only be sent after the target was met.
    await h.db.transaction(async (trx) => {
      await h.services.sla.sweep(trx as any, new Date(o.createdAt + 6 * 60_000));
      await h.services.tickets.recordAgentReply(trx, 'ws_default', o.id, new Date(o.createdAt + 7 * 60_000));
    });
    await settle();
    assert.equal((await h.db('telegram_sends').where({ ticket_id: o.id, op: 'sla_notice' }).first()).status, 'cancelled', 'rendered to nothing: settled without a post');
    assert.deepEqual(botTexts(o.threadId).slice(before).filter((t) => /first response/.test(t)), []);
    assert.match(await cardText(o.id), /SLA: first response ✓ · resolution (by|paused)/);
  });
});
