/**
 * What an attempt's result means and when the next one is due (src/webhooks/retry-policy.ts):
 * judge (2xx succeeds; 3xx, 4xx, 5xx and no answer fail; 410 disables; Retry-After on 429/503
 * within a day), retryDelayMs (the schedule with jitter, exhausted → null) and parseRetryAfter.
 */
import assert from 'node:assert/strict';
import { judge, parseRetryAfter, retryDelayMs, type AttemptResult } from '../../src/webhooks/retry-policy.js';

/** config/default.json webhooks.retryScheduleSeconds, written out: 30 s, 2 m, 10 m, 1 h, 3 h, 6 h, 12 h, 24 h. */
const SCHEDULE = [30, 120, 600, 3600, 10800, 21600, 43200, 86400] as const;
const JITTER = 0.2;

const result = (statusCode: number | null, more: Partial<AttemptResult> = {}): AttemptResult =>
  ({ statusCode, durationMs: 12, error: null, excerpt: null, retryAfterSeconds: null, ...more });

const FAILED_PLAIN = { kind: 'failed', disablesEndpoint: false, notBeforeSeconds: null } as const;

describe('webhook retry policy', () => {
  describe('judge', () => {
    for (const code of [200, 201, 202, 204, 226, 299]) {
      it(`${code} is a success`, () => assert.deepEqual(judge(result(code)), { kind: 'succeeded' }));
    }

    it('a 2xx succeeds even with a Retry-After or an error text', () => {
      assert.deepEqual(judge(result(200, { retryAfterSeconds: 60 })), { kind: 'succeeded' });
    });

    for (const code of [300, 301, 302, 303, 304, 307, 308]) {
      it(`${code} is a failure (redirects are not followed), retried on the schedule`, () => {
        assert.deepEqual(judge(result(code, { error: `redirects are not followed (${code})` })), FAILED_PLAIN);
      });
    }

    for (const code of [100, 199, 400, 401, 403, 404, 405, 408, 413, 422, 500, 501, 502, 504]) {
      it(`${code} is a failure that does not disable the endpoint`, () => assert.deepEqual(judge(result(code)), FAILED_PLAIN));
    }

    it('no answer at all (refused, timed out, SSRF guard) is a failure', () => {
      assert.deepEqual(judge(result(null, { error: 'connection refused' })), FAILED_PLAIN);
      assert.deepEqual(judge(result(null, { error: 'no answer within 10 s' })), FAILED_PLAIN);
    });

    it('410 Gone is a failure that disables the endpoint', () => {
      assert.deepEqual(judge(result(410)), { kind: 'failed', disablesEndpoint: true, notBeforeSeconds: null });
    });

    it('410 with a Retry-After still disables and ignores the Retry-After', () => {
      assert.deepEqual(judge(result(410, { retryAfterSeconds: 600 })), { kind: 'failed', disablesEndpoint: true, notBeforeSeconds: null });
    });

    for (const code of [429, 503]) {
      it(`${code} with Retry-After asks for the next attempt no sooner than that`, () => {
        assert.deepEqual(judge(result(code, { retryAfterSeconds: 120 })), { kind: 'failed', disablesEndpoint: false, notBeforeSeconds: 120 });
        assert.deepEqual(judge(result(code, { retryAfterSeconds: 0 })), { kind: 'failed', disablesEndpoint: false, notBeforeSeconds: 0 });
      });

      it(`${code} without Retry-After is a plain failure`, () => assert.deepEqual(judge(result(code)), FAILED_PLAIN));

      it(`${code}: a Retry-After beyond 24 h is capped at 24 h`, () => {
        assert.equal((judge(result(code, { retryAfterSeconds: 86_400 })) as any).notBeforeSeconds, 86_400);
        assert.equal((judge(result(code, { retryAfterSeconds: 86_401 })) as any).notBeforeSeconds, 86_400);
        assert.equal((judge(result(code, { retryAfterSeconds: 10 ** 12 })) as any).notBeforeSeconds, 86_400);
      });
    }

    for (const code of [500, 502, 400, 404]) {
      it(`a Retry-After on ${code} is ignored (only 429 and 503 honour it)`, () => {
        assert.deepEqual(judge(result(code, { retryAfterSeconds: 3600 })), FAILED_PLAIN);
      });
    }
  });

  describe('retryDelayMs', () => {
    it('with random() = 0.5 the waits are exactly the schedule', () => {
      const waits = SCHEDULE.map((_, i) => retryDelayMs(i + 1, SCHEDULE, JITTER, () => 0.5));
      assert.deepEqual(waits, [30_000, 120_000, 600_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000]);
    });

    it('adds about two days of retries in all (the issue: "over about two days")', () => {
      const total = SCHEDULE.reduce((sum, _, i) => sum + retryDelayMs(i + 1, SCHEDULE, JITTER, () => 0.5)!, 0);
      assert.equal(total, 166_350_000); // 46.2 h
      assert.ok(total > 36 * 3600_000 && total < 60 * 3600_000);
    });

    it('jitter spans ±20 %: random() = 0 gives 80 %, random() → 1 gives 120 %', () => {
      assert.equal(retryDelayMs(1, SCHEDULE, JITTER, () => 0), 24_000);
      assert.equal(retryDelayMs(8, SCHEDULE, JITTER, () => 0), 69_120_000);
      assert.equal(retryDelayMs(1, SCHEDULE, JITTER, () => 0.999_999_999), 36_000);
      assert.equal(retryDelayMs(4, SCHEDULE, JITTER, () => 0.25), 3_240_000);
      assert.equal(retryDelayMs(4, SCHEDULE, JITTER, () => 0.75), 3_960_000);
    });

    it('with the real Math.random every wait stays within the jitter bounds, and they vary', () => {
      for (let step = 1; step <= SCHEDULE.length; step++) {
        const base = SCHEDULE[step - 1] * 1000;
        const seen = new Set<number>();
        for (let i = 0; i < 200; i++) {
          const d = retryDelayMs(step, SCHEDULE, JITTER)!;
          assert.ok(Number.isInteger(d), 'whole milliseconds');
          assert.ok(d >= base * 0.8 && d <= base * 1.2, `step ${step}: ${d} ms outside ${base * 0.8}..${base * 1.2}`);
          seen.add(d);
        }
        assert.ok(seen.size > 20, `step ${step}: the jitter takes only ${seen.size} values`);
      }
    });

    it('without jitter the random value does not matter', () => {
      for (const r of [0, 0.3, 0.999]) assert.equal(retryDelayMs(2, SCHEDULE, 0, () => r), 120_000);
    });

    it('is null once the schedule is exhausted: after failure 9 the delivery is dead', () => {
      assert.notEqual(retryDelayMs(8, SCHEDULE, JITTER, () => 0.5), null);
      assert.equal(retryDelayMs(9, SCHEDULE, JITTER, () => 0.5), null);
      assert.equal(retryDelayMs(100, SCHEDULE, JITTER, () => 0.5), null);
    });

    it('is null for step 0 or below (no failure yet: nothing to wait for)', () => {
      assert.equal(retryDelayMs(0, SCHEDULE, JITTER, () => 0.5), null);
      assert.equal(retryDelayMs(-1, SCHEDULE, JITTER, () => 0.5), null);
    });

    it('follows whatever schedule it is given (config), including an empty one', () => {
      assert.equal(retryDelayMs(1, [5], 0, () => 0.5), 5000);
      assert.equal(retryDelayMs(2, [5], 0, () => 0.5), null);
      assert.equal(retryDelayMs(1, [], JITTER, () => 0.5), null);
    });
  });

  describe('parseRetryAfter', () => {
    const now = new Date('2026-11-21T12:00:00.000Z');

    it('reads delta-seconds', () => {
      assert.equal(parseRetryAfter('120', now), 120);
      assert.equal(parseRetryAfter('0', now), 0);
      assert.equal(parseRetryAfter('  45 ', now), 45);
      assert.equal(parseRetryAfter('86400000', now), 86_400_000, 'large values are read (judge caps them)');
    });

    it('reads an HTTP date (IMF-fixdate) as seconds from now, rounded up', () => {
      assert.equal(parseRetryAfter('Sat, 21 Nov 2026 12:01:30 GMT', now), 90);
      assert.equal(parseRetryAfter('Sun, 22 Nov 2026 12:00:00 GMT', now), 86_400);
      assert.equal(parseRetryAfter('Sat, 21 Nov 2026 12:01:30 GMT', new Date('2026-11-21T12:00:00.500Z')), 90, '89.5 s → 90');
    });

    it('reads the obsolete RFC 850 date form too', () => {
      assert.equal(parseRetryAfter('Saturday, 21-Nov-26 12:01:30 GMT', now), 90);
    });

    it('reads the obsolete asctime form as GMT whatever the local time zone (RFC 9110 §5.6.7)', () => {
      const saved = process.env.TZ;
      try {
        process.env.TZ = 'UTC';
        assert.equal(parseRetryAfter('Sat Nov 21 12:01:30 2026', now), 90);
        process.env.TZ = 'America/New_York';
        assert.equal(parseRetryAfter('Sat Nov 21 12:01:30 2026', now), 90, 'asctime carries no zone but means GMT');
      } finally {
        if (saved === undefined) delete process.env.TZ;
        else process.env.TZ = saved;
      }
    });

    it('a date in the past means "now": 0, never negative', () => {
      assert.equal(parseRetryAfter('Sat, 21 Nov 2026 11:00:00 GMT', now), 0);
      assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:00 GMT', now), 0);
    });

    it('is null when absent or empty', () => {
      assert.equal(parseRetryAfter(undefined, now), null);
      assert.equal(parseRetryAfter('', now), null);
      assert.equal(parseRetryAfter('   ', now), null);
    });

    it('is null for garbage', () => {
      for (const v of ['soon', 'later please', '12abc', '1e3', '0x10', 'NaN', 'Infinity']) {
        assert.equal(parseRetryAfter(v, now), null, JSON.stringify(v));
      }
    });

    it('never makes garbage delay a delivery: a value that is neither delta-seconds nor an HTTP date gives null or 0', () => {
      // Date.parse is lenient ("1.5", "-5", "+120" read as dates long past); whatever it makes
      // of them must not push the next attempt back.
      for (const v of ['1.5', '-5', '+120', 'foo 12', '99 bottles', '12 ms']) {
        const got = parseRetryAfter(v, now);
        assert.ok(got === null || got === 0, `${JSON.stringify(v)} → ${got}`);
      }
    });
  });
});
