/**
 * Telegram's flood limits as sliding windows: at most `limit` sends in any `windowMs`.
 * A window remembers the times of its last `limit` sends, which is all an exact sliding
 * window needs. Pure: the send queue keeps the state in PostgreSQL (telegram_rate_windows)
 * so every replica paces against the same counts.
 */
export interface WindowRule {
  limit: number;
  windowMs: number;
}

export interface WindowState {
  sentAt: number[];
  blockedUntil: number | null;
}

/** The earliest time `cost` more sends fit the window (now when they fit already). */
export function earliestSlot(state: WindowState, rule: WindowRule, now: number, cost = 1): number {
  const need = Math.min(cost, rule.limit);
  const recent = state.sentAt.filter((t) => t > now - rule.windowMs).sort((a, b) => a - b);
  let at = now;
  const over = recent.length + need - rule.limit;
  if (over > 0) at = recent[over - 1] + rule.windowMs;
  if (state.blockedUntil !== null && state.blockedUntil > at) at = state.blockedUntil;
  return at;
}

/** Records `cost` sends at `at`, keeping only what the window still needs. */
export function take(state: WindowState, rule: WindowRule, at: number, cost = 1): WindowState {
  const sent = [...state.sentAt.filter((t) => t > at - rule.windowMs), ...Array(Math.min(cost, rule.limit)).fill(at)].sort((a, b) => a - b);
  return { sentAt: sent.slice(-rule.limit), blockedUntil: state.blockedUntil !== null && state.blockedUntil > at ? state.blockedUntil : null };
}
