/**
 * What an attempt's result means and when the next attempt is due (pure: unit-tested).
 * 2xx = delivered; anything else (3xx included: redirects are not followed) is a failure
 * retried on the schedule; 410 Gone also disables the endpoint; a Retry-After on 429/503
 * pushes the next attempt back (within a day), never earlier than the schedule.
 */
export interface AttemptResult {
  /** null when no HTTP answer came (refused, timed out, blocked by the SSRF guard…). */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  /** The start of the answer's body (at most 1 KB). */
  excerpt: string | null;
  /** Retry-After of a 429/503 answer, in seconds. */
  retryAfterSeconds: number | null;
}

export type Verdict =
  | { kind: 'succeeded' }
  | { kind: 'failed'; disablesEndpoint: boolean; notBeforeSeconds: number | null };

const MAX_RETRY_AFTER_SECONDS = 24 * 3600;

export function judge(r: AttemptResult): Verdict {
  const code = r.statusCode;
  if (code !== null && code >= 200 && code < 300) return { kind: 'succeeded' };
  const honoursRetryAfter = (code === 429 || code === 503) && r.retryAfterSeconds !== null;
  return {
    kind: 'failed',
    disablesEndpoint: code === 410,
    notBeforeSeconds: honoursRetryAfter ? Math.min(r.retryAfterSeconds!, MAX_RETRY_AFTER_SECONDS) : null,
  };
}

/**
 * The wait before the next attempt after failure number `failures` (1 = the first attempt
 * failed), or null when the schedule is exhausted (the delivery is dead).
 */
export function retryDelayMs(failures: number, scheduleSeconds: readonly number[], jitter: number, random: () => number = Math.random): number | null {
  if (failures < 1 || failures > scheduleSeconds.length) return null;
  const base = scheduleSeconds[failures - 1] * 1000;
  return Math.round(base * (1 - jitter + 2 * jitter * random()));
}

/** Retry-After as seconds from `now`: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: Date): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  // An HTTP date names its month; bare numbers in other shapes ("-5", "1.5") are not dates.
  if (!/[A-Za-z]/.test(v)) return null;
  // The asctime form carries no zone and means GMT; Date.parse would read it as local time.
  const at = Date.parse(/\b(GMT|UTC)\b/.test(v) ? v : `${v} GMT`);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}
