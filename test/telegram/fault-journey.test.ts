/**
 * Issue 17's Telegram fault probe, kept: the fake Bot API answers 20 % of the calls the send
 * side makes with a 429 (retry_after 1) or a 5xx, for whole journeys of several customers at
 * once (intake form → ticket → topic, customer ↔ agent both ways). Seeded: a failure prints
 * the seed; TG_FAULT_SEED=<seed> reruns it.
 *
 * - 'before': every 5xx failed before Telegram did anything. Exactly once, in order: every
 *   question, copy and answer, one topic and one card per ticket, nothing failed.
 * - 'after': every 5xx came after Telegram applied the call. The send queue cannot tell this
 *   from 'before' (README "Telegram faults"), so the retry may repeat the call: at most one
 *   extra copy per such answer, right after its original, an empty extra topic, an extra
 *   card — never a loss, never out of order, nothing failed.
 *
 * getUpdates is left out here (a failed poll waits 5 s before the next, as Telegraf's own
 * polling does); fault-updates.test.ts covers it, and webhook delivery, on their own.
 */
import assert from 'node:assert/strict';
import type { FaultOptions } from '../helpers/fake-bot-api.js';
import { useTelegramHarness, type TelegramHarness } from '../helpers/telegram-harness.js';
import { assertDelivered, faultSeed, faultSummary, reportOnFailure, runJourneys } from '../helpers/fault-journey.js';

const seed = faultSeed();
const SEND_SIDE: Pick<FaultOptions, 'rate' | 'kinds' | 'retryAfter' | 'exceptMethods'> = {
  rate: 0.2, kinds: ['429', '5xx'], retryAfter: 1, exceptMethods: ['getUpdates', 'deleteWebhook'],
};


describe(`Telegram under faults: 20 % of Bot API calls answered 429 or 5xx for whole journeys (seed ${seed})`, function () {
  this.timeout(55_000);

  describe("5xx before the effect: every message exactly once, in order", () => {
    const harness = useTelegramHarness();
    let h: TelegramHarness;
    before(() => {
      h = harness.h;
      h.fake.setFaults({ ...SEND_SIDE, seed, effect: 'before' });
    });
    reportOnFailure(seed, () => h);

    it('three customers at once: form, ticket, topic, messages both ways — one topic and one card each, nothing repeated, lost or failed', async () => {
      const journeys = await runJourneys(h, 'b', 3);
      await assertDelivered(h, journeys, { exact: true });
      const kinds = new Set(h.fake.injectedFaults.map((f) => f.kind));
      assert.ok(kinds.has('429') && kinds.has('5xx'), `both kinds were injected: ${faultSummary(h.fake.injectedFaults)}`);
      assert.ok(h.fake.injectedFaults.every((f) => !f.applied));
    });
  });

  describe('5xx after the effect: nothing lost or reordered, a repeat only per ambiguous answer', () => {
    const harness = useTelegramHarness();
    let h: TelegramHarness;
    before(() => {
      h = harness.h;
      h.fake.setFaults({ ...SEND_SIDE, seed, effect: 'after' });
    });
    reportOnFailure(seed, () => h);

    it('three customers at once: every message arrives, in order; repeats, extra topics and cards stay within the 5xx answers that hid an effect', async () => {
      const journeys = await runJourneys(h, 'a', 3);
      await assertDelivered(h, journeys, { exact: false });
      const posted = h.fake.injectedFaults.filter((f) => f.kind === '5xx' && f.applied && ['sendMessage', 'copyMessage'].includes(f.method));
      assert.ok(posted.length > 0, `some 5xx hid a posted message, so repeats were possible: ${faultSummary(h.fake.injectedFaults)}`);
    });
  });
});
