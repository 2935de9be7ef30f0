/**
 * Issue 17's Telegram fault probe, the inbound half: updates must be stored and handled once,
 * in order, whatever goes wrong on the way in.
 *
 * - Long polling: getUpdates answered 5xx after it confirmed the offset (the batch is lost with
 *   the answer), 5xx before, and 429. The poller only moves its offset past stored updates, so
 *   the next poll with the same offset gets the batch again; a failed poll waits 5 s (429:
 *   retry_after), as Telegraf's own polling does, which is why these faults are few here.
 * - Webhook: Telegram takes our 2xx for lost and delivers updates again, while 20 % of the
 *   calls the send side makes fail (429, 5xx before or after the effect). A second delivery
 *   must have no second effect.
 *
 * Seeded (TG_FAULT_SEED reruns a failure), see fault-journey.test.ts.
 */
import assert from 'node:assert/strict';
import { useTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';
import { assertDelivered, botTextsInTopic, faultSeed, faultSummary, reportOnFailure, runJourney, runJourneys, settle, until } from '../helpers/fault-journey.js';

const seed = faultSeed();


describe(`Telegram under faults: updates come in once, in order (seed ${seed})`, function () {
  this.timeout(55_000);

  describe('long polling: getUpdates answered 5xx or 429', () => {
    const harness = useTelegramHarness();
    let h: TelegramHarness;
    before(() => { h = harness.h; });
    reportOnFailure(seed, () => h);

    it('loses and repeats nothing when getUpdates fails after confirming the offset, before it, or with a 429', async () => {
      const j = await runJourney(h, 'u');
      await settle(h);
      const steps = [{ kinds: ['5xx'], effect: 'after' }, { kinds: ['5xx'], effect: 'before' }, { kinds: ['429'] }] as const;
      for (const [i, f] of steps.entries()) {
        // The next poll fails: the three messages are produced before it can arrive.
        h.fake.setFaults({ rate: 1, seed, methods: ['getUpdates'], retryAfter: 1, max: h.fake.injectedFaults.length + 1, kinds: [...f.kinds], ...('effect' in f ? { effect: f.effect } : {}) });
        const texts = [1, 2, 3].map((k) => `g${i}.${k}`);
        for (const t of texts) h.fake.userSends(h.bot, j.user, t);
        j.customerTexts.push(...texts);
        await until(() => texts.every((t) => botTextsInTopic(h, j.threadId).some((m) => m.text === t)), `${texts.join(', ')} in the topic`);
      }
      h.fake.setFaults(false);
      await settle(h);

      assert.deepEqual(h.fake.injectedFaults.map((f) => [f.method, f.kind, f.applied]), [['getUpdates', '5xx', true], ['getUpdates', '5xx', false], ['getUpdates', '429', false]]);
      // The poll answered 5xx after confirming the offset had a batch, and the next poll with that offset got it.
      const lost = h.fake.injectedFaults[0].call!;
      const retried = h.fake.callsTo('getUpdates').find((c) => c.at >= lost.at && c !== lost && c.status === 200 && c.params.offset === lost.params.offset && c.response.result.length > 0);
      assert.ok(retried, 'the same offset was asked again and answered with the updates');
      await assertDelivered(h, [j], { exact: true });
    });
  });

  describe('webhook: updates delivered again, and 20 % of calls answered 429 or 5xx', () => {
    const harness = useTelegramHarness({ webhook: true });
    let h: TelegramHarness;
    before(() => {
      h = harness.h;
      h.fake.setFaults({ rate: 0.2, seed, kinds: ['429', '5xx'], effect: 'mixed', retryAfter: 1, webhook: true });
    });
    reportOnFailure(seed, () => h);

    it('two customers at once: a redelivered update has no second effect; every message arrives, in order', async () => {
      const journeys = await runJourneys(h, 'w', 2);
      await assertDelivered(h, journeys, { exact: false });
      assert.ok(h.fake.injectedFaults.some((f) => f.kind === 'webhook_redelivery'), `updates were delivered again: ${faultSummary(h.fake.injectedFaults)}`);
      assert.equal(h.fake.callsTo('getUpdates').length, 0, 'webhook mode never polls');
    });
  });
});
