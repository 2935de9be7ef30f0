/**
 * The poller's own loop (src/telegram/poller.ts), against a Bot API that always fails: it keeps
 * retrying, paced, without piling up listeners on its stop signal (one per pause was a leak: a
 * bot whose token was revoked pauses every minute for as long as the service runs).
 */
import assert from 'node:assert/strict';
import { systemClock } from '../../src/lib/clock.js';
import { createLogger } from '../../src/lib/logger.js';
import type { BotApi } from '../../src/telegram/bot-api.js';
import { startPoller } from '../../src/telegram/poller.js';
import { useTestDatabase } from '../helpers/test-db.js';

describe('the poller against a Bot API that keeps failing', () => {
  const db = useTestDatabase();

  it('retries every retryMs and leaves no listener behind per pause', async () => {
    let calls = 0;
    const failing = { client: () => ({ callApi: async () => { calls++; throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }); } }) } as unknown as BotApi;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => { warnings.push(w); };
    process.on('warning', onWarning);
    try {
      const poller = startPoller({
        db: db.knex, logger: createLogger('silent'), clock: systemClock, api: failing, accountId: 'acc_poller_test', token: '1:x',
        timeoutSeconds: 1, onStored: () => {}, retryMs: 2,
      });
      const started = Date.now();
      while (calls < 40 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 10));
      await poller.stop();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    assert.ok(calls >= 40, `it kept retrying (${calls} calls)`);
    assert.deepEqual(warnings.map((w) => w.name), [], 'no MaxListenersExceededWarning on the stop signal');
  });
});
