import type { Context } from 'koa';
import { AppError } from '../kernel/errors.js';

export interface WindowUsage {
  limit: number;
  /** Requests counted in the window so far, the current one included. */
  count: number;
  /** Seconds until the window resets (not an epoch: no clock skew for clients). */
  resetSeconds: number;
}

/**
 * Sets the X-RateLimit-* headers (and the IETF draft's RateLimit/RateLimit-Policy) and
 * throws 429 when the window's budget is spent. Counting itself happens in the
 * authentication query, in PostgreSQL, so every replica shares one budget per key.
 */
export function enforceRateLimit(ctx: Context, u: WindowUsage): void {
  const remaining = Math.max(0, u.limit - u.count);
  ctx.set('X-RateLimit-Limit', String(u.limit));
  ctx.set('X-RateLimit-Remaining', String(remaining));
  ctx.set('X-RateLimit-Reset', String(u.resetSeconds));
  ctx.set('RateLimit-Policy', `"per-key";q=${u.limit};w=60`);
  ctx.set('RateLimit', `"per-key";r=${remaining};t=${u.resetSeconds}`);
  if (u.count > u.limit) {
    throw new AppError('rate_limit_exceeded', `This key may make ${u.limit} requests per minute; try again in ${u.resetSeconds} s`, {
      headers: { 'Retry-After': String(u.resetSeconds) },
    });
  }
}
