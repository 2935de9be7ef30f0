/**
 * A key never hands out more than it has: a key made or rotated through the API gets at most
 * the calling key's rate limit and lives no longer than it. Asking for more is refused naming
 * the bound; what is not asked for is inherited and capped at the bound. The operator's CLI
 * has no calling key, so it is not bounded.
 */
import { AppError } from '../kernel/errors.js';

/** A key's own limits as stored: a null rate limit follows the service default, a null expiry never comes. */
export interface KeyLimits {
  rateLimitPerMinute: number | null;
  expiresAt: Date | null;
}

const effectiveRate = (limit: number | null, defaultRate: number) => limit ?? defaultRate;

/** The earlier of two expiries, null meaning never. */
const earlier = (a: Date | null, b: Date | null) => (a && b ? (a <= b ? a : b) : a ?? b);

/**
 * The new key's limits: `requested` values must lie within the grantor's (422 otherwise);
 * missing ones are taken from `inherited` (the grantor itself on create, the old key on
 * rotation), capped at the grantor's.
 */
export function boundedLimits(
  requested: { rateLimitPerMinute?: number | null; expiresAt?: Date | null },
  inherited: KeyLimits,
  grantor: KeyLimits,
  defaultRate: number,
): KeyLimits {
  const bound = effectiveRate(grantor.rateLimitPerMinute, defaultRate);
  let rateLimitPerMinute: number | null;
  if (requested.rateLimitPerMinute != null) {
    if (requested.rateLimitPerMinute > bound) {
      throw beyond('rate_limit_per_minute', `may not exceed the creating key's ${bound} per minute`, requested.rateLimitPerMinute);
    }
    rateLimitPerMinute = requested.rateLimitPerMinute;
  } else {
    // Kept as the grantor's own value (null = the default) so both follow a changed default alike.
    rateLimitPerMinute = effectiveRate(inherited.rateLimitPerMinute, defaultRate) > bound ? grantor.rateLimitPerMinute : inherited.rateLimitPerMinute;
  }

  let expiresAt: Date | null;
  if (requested.expiresAt) {
    if (grantor.expiresAt && requested.expiresAt > grantor.expiresAt) {
      throw beyond('expires_at', `may not be later than the creating key's expiry, ${grantor.expiresAt.toISOString()}`, requested.expiresAt.toISOString());
    }
    expiresAt = requested.expiresAt;
  } else {
    expiresAt = earlier(inherited.expiresAt, grantor.expiresAt);
  }
  return { rateLimitPerMinute, expiresAt };
}

function beyond(field: string, error: string, received: unknown): AppError {
  return new AppError('validation_error', `${field} ${error}`, { details: [{ field, error, received }] });
}
