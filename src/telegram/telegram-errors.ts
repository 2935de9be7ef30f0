/**
 * What a failed Bot API call means for the send queue. Telegram's error_code and description
 * strings are the contract (research/telegram-bot-api.md §1.6, §2.4); the descriptions are
 * matched loosely (case, the "Bad Request: " prefix) because they are "subject to change".
 */
export type Failure =
  | { kind: 'rate_limited'; retryAfterSeconds: number; reason: string }
  /** Worth retrying later: 5xx, network, timeouts. */
  | { kind: 'transient'; reason: string }
  /** The forum topic was deleted (or archived): recreate it, then retry. */
  | { kind: 'topic_gone'; reason: string }
  | { kind: 'topic_closed'; reason: string }
  /** Nothing to do: the topic or message is already in the wanted state. */
  | { kind: 'not_modified'; reason: string }
  /** The customer blocked the bot or deleted their account: never retry. */
  | { kind: 'recipient_blocked'; reason: string }
  /** Retrying cannot help (bad request, missing rights, unknown chat…). */
  | { kind: 'permanent'; reason: string };

const has = (d: string, ...needles: string[]) => needles.some((n) => d.includes(n.toLowerCase()));

export function classifyTelegramError(err: unknown): Failure {
  const e = err as { code?: unknown; response?: { error_code?: number; description?: string; parameters?: { retry_after?: number } }; description?: string; message?: string; name?: string };
  // Only Telegram's answer carries an HTTP-like code; other errors' `code` (ECONNREFUSED, a
  // DOMException's 23) says nothing about the request, so they count as network trouble.
  const code = typeof e?.response?.error_code === 'number' ? e.response.error_code : null;
  const description = String(e?.response?.description ?? e?.description ?? e?.message ?? err);
  const d = description.toLowerCase();
  const reason = code ? `${code}: ${description}` : description;
  if (code === null) return { kind: 'transient', reason }; // network error, timeout, abort
  if (code === 429) return { kind: 'rate_limited', retryAfterSeconds: Math.max(1, Number(e.response?.parameters?.retry_after) || 5), reason };
  if (code >= 500) return { kind: 'transient', reason };
  if (has(d, 'message thread not found', 'topic_deleted', 'thread not found')) return { kind: 'topic_gone', reason };
  if (has(d, 'topic_closed')) return { kind: 'topic_closed', reason };
  if (has(d, 'topic_not_modified', 'message is not modified')) return { kind: 'not_modified', reason };
  if (code === 403 && has(d, 'bot was blocked by the user', 'user is deactivated', "bot can't initiate conversation")) return { kind: 'recipient_blocked', reason };
  return { kind: 'permanent', reason };
}

/** The reason shown on a failed message, in words a support agent understands. */
export function blockedReason(f: Failure): string {
  if (f.reason.includes('deactivated')) return 'The customer deleted their Telegram account';
  if (f.reason.includes("can't initiate")) return 'The customer has not started the bot';
  return 'The customer has blocked the bot';
}
