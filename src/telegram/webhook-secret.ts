import { createHmac, timingSafeEqual, createHash } from 'node:crypto';

/**
 * The secret_token Telegram sends with every webhook update of a bot: TELEGRAM_WEBHOOK_SECRET
 * when set, else derived from the bot's token (stable across replicas and restarts, different
 * per bot, and in the alphabet Telegram allows: base64url).
 */
export function webhookSecretFor(token: string, configured: string | null): string {
  return configured ?? createHmac('sha256', token).update('topicdesk telegram webhook').digest('base64url');
}

/** Constant-time comparison that does not leak the length either (both sides hashed first). */
export function secretMatches(given: string | undefined, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given ?? ''), digest(expected)) && given !== undefined;
}
